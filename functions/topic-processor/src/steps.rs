//! A notification's steps (`Event::once`) in the idempotency table: each step an item `{function}#{notification id}#step#{name}`, `INPROGRESS` once started and `COMPLETED` with its result, kept `STEPS_TTL_SECONDS`.

use std::sync::Arc;
use std::time::Duration;

use intercom_webhook::dispatch::{BoxFuture, StepLog, StepState};

use crate::table::{Store, expiration};
use crate::{millis, since_epoch};

/// How long a completed step is remembered by default (`STEPS_TTL_SECONDS`):
/// 21 days, longer than a message's whole life (4 days on the queue, 14 in
/// the dead-letter queue, a redrive).
pub const STEPS_TTL: Duration = Duration::from_secs(21 * 86_400);

/// One notification's steps in the table.
pub(crate) struct NotificationSteps {
    pub(crate) store: Arc<dyn Store>,
    /// The notification's own key (never a replay run's).
    pub(crate) key: String,
    pub(crate) ttl: Duration,
}

impl NotificationSteps {
    fn id(&self, name: &str) -> String {
        format!("{}#step#{name}", self.key)
    }
}

impl StepLog for NotificationSteps {
    fn state(&self, name: &str) -> BoxFuture<Result<Option<StepState>, String>> {
        let read = self.store.step(self.id(name), millis(since_epoch()) / 1000);
        Box::pin(async move { read.await.map_err(|e| e.to_string()) })
    }

    fn start(&self, name: &str) -> BoxFuture<Result<(), String>> {
        let expiration = expiration(since_epoch(), self.ttl);
        let written = self
            .store
            .put_step(self.id(name), StepState::Started, expiration);
        Box::pin(async move { written.await.map_err(|e| e.to_string()) })
    }

    fn complete(&self, name: &str, result: String) -> BoxFuture<()> {
        let expiration = expiration(since_epoch(), self.ttl);
        let written = self
            .store
            .put_step(self.id(name), StepState::Completed(result), expiration);
        let name = name.to_owned();
        Box::pin(async move {
            if let Err(error) = written.await {
                tracing::warn!(step = %name, error = %error, "a step completed but its completion could not be kept; the next delivery runs it again, resumed");
            }
        })
    }
}
