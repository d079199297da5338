//! `topic-processor` wired exactly as deployed (`topic_processor::lambda::run`), with a handler that takes its time: for tests that stop a processor in the middle of a handler.
//!
//! `conversation.user.created` logs "slow handler started", sleeps
//! `SLOW_HANDLER_MS` (default 10,000), then logs "slow handler finished";
//! every other topic is unhandled.

use std::time::Duration;

use intercom_webhook::dispatch::{Event, Registry};
use intercom_webhook::models::Item;
use intercom_webhook::topic::Topic;
use lambda_runtime::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let pause = std::env::var("SLOW_HANDLER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let mut registry = Registry::new();
    registry.on(
        Topic::ConversationUserCreated,
        move |event: Event<Item>| async move {
            tracing::info!(notification_id = ?event.meta.notification_id, "slow handler started");
            tokio::time::sleep(pause).await;
            tracing::info!(notification_id = ?event.meta.notification_id, "slow handler finished");
            Ok(())
        },
    );
    topic_processor::lambda::run(registry).await
}
