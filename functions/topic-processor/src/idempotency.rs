//! Locks: a notification's handler and destinations run to completion at most once, with Powertools' DynamoDB layout and locks that know their owner (the table itself is [`crate::table`]; steps, [`crate::steps`]).
//!
//! Before a record's effects run, the processor takes the notification's
//! lock with one conditional write: the item `{id, status: INPROGRESS,
//! expiration, in_progress_expiration, validation, owner}` goes in only when
//! there is no item, the item has expired, or it is an `INPROGRESS` lock
//! whose holder's invocation has ended. Then:
//!
//! - the effects succeed: the owner marks the item `COMPLETED` (one update);
//! - they fail (or run out of time): the owner deletes the item, so a retry
//!   runs;
//! - the write is refused: the item there decides. A different `validation`
//!   (the same key for a notification that says something else) is
//!   `payload_mismatch`; a `COMPLETED` item makes the record a `duplicate`;
//!   a live `INPROGRESS` lock means another invocation has it, and the
//!   record fails, to be retried;
//! - the table cannot be reached: the record fails; nothing runs
//!   unprotected.
//!
//! **Owners.** A lock names its owner (`{request id}:{message id}`), and
//! completing or deleting it is conditional on that name, so an invocation
//! whose lock was taken over can neither complete nor release the new
//! owner's lock. The lock expires at its invocation's own deadline
//! (`in_progress_expiration`), when that invocation can no longer run; the
//! processor stops the effects earlier (see `processor`), so two owners
//! never run one notification's effects at the same time.
//!
//! **Validation** is the hash of what the notification says, not of its
//! bytes ([`intercom_webhook::envelope::content_sha256`]): Intercom's retry
//! of a notification (`delivery_attempts: 2`) is a `duplicate` of it.
//!
//! The names (`id`, `status`, `expiration` in epoch seconds as the table's
//! TTL attribute, `in_progress_expiration` in epoch milliseconds,
//! `validation`) are those of Powertools for AWS Lambda, so its tables,
//! dashboards and habits carry over; `owner` is this project's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use intercom_webhook::dispatch::StepLog;
use intercom_webhook::envelope::body_sha256;

use crate::notification::Notification;
use crate::steps::{NotificationSteps, STEPS_TTL};
use crate::{millis, since_epoch};

pub use crate::table::dynamodb::DynamoDbStore;
pub use crate::table::memory::MemoryStore;
pub use crate::table::{
    COMPLETED, Finished, INPROGRESS, LockItem, Newest, Store, StoreError, Taken, attribute,
    expiration, stands,
};

/// Why a record may not run its effects now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Completed before: the record is a duplicate.
    AlreadyDone,
    /// Another invocation holds a live lock; retry later.
    InProgress,
    /// The same key was seen for a notification that says something else.
    PayloadMismatch,
    /// The table could not be used.
    Unavailable(StoreError),
}

/// A lock this invocation holds, to be completed or released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub key: String,
    pub owner: String,
}

/// Idempotency for one function: its store, its name and how long completed
/// notifications and steps are remembered.
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn Store>,
    function_name: String,
    ttl: Duration,
    steps_ttl: Duration,
}

impl fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("function_name", &self.function_name)
            .field("ttl", &self.ttl)
            .field("steps_ttl", &self.steps_ttl)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    pub fn new(store: Arc<dyn Store>, function_name: impl Into<String>, ttl: Duration) -> Self {
        Self {
            store,
            function_name: function_name.into(),
            ttl,
            steps_ttl: STEPS_TTL,
        }
    }

    /// The same, remembering completed steps for `steps_ttl`.
    pub fn with_steps_ttl(mut self, steps_ttl: Duration) -> Self {
        self.steps_ttl = steps_ttl;
        self
    }

    /// `{function name}#{notification id}` (or `#sha256:{hex}` of the body
    /// for a notification without an id): the notification's own key,
    /// whichever run delivers it.
    fn notification_key(&self, notification: &Notification) -> String {
        let id = notification
            .meta
            .notification_id
            .clone()
            .unwrap_or_else(|| format!("sha256:{}", body_sha256(&notification.body)));
        format!("{}#{id}", self.function_name)
    }

    /// `{function name}#{notification id}`, or `{function name}#sha256:{hex}`
    /// of the body for a notification without an id. A replayed
    /// notification has its run's own key (`…#replay:{run}`), so it runs
    /// once per replay run, beside (not instead of) its first processing.
    pub fn key(&self, notification: &Notification) -> String {
        let key = self.notification_key(notification);
        match &notification.delivery.replay {
            Some(run) => format!("{key}#replay:{run}"),
            None => key,
        }
    }

    /// Takes `notification`'s lock for `owner` until `until_ms` (epoch ms,
    /// the invocation's deadline), or says why not.
    pub async fn claim(
        &self,
        notification: &Notification,
        owner: String,
        until_ms: i64,
    ) -> Result<Lock, Refusal> {
        let key = self.key(notification);
        let now = since_epoch();
        let lock = LockItem {
            id: key.clone(),
            status: INPROGRESS.to_owned(),
            expiration: expiration(now, self.ttl),
            in_progress_expiration: Some(until_ms),
            validation: Some(notification.content_sha256.clone()),
            owner: Some(owner.clone()),
        };
        match self.store.take(lock, millis(now)).await {
            Ok(Taken::Yes) => Ok(Lock { key, owner }),
            Ok(Taken::Refused(existing)) => Err(match existing {
                Some(item)
                    if item
                        .validation
                        .as_deref()
                        .is_some_and(|v| v != notification.content_sha256) =>
                {
                    Refusal::PayloadMismatch
                }
                Some(item) if item.status == COMPLETED => Refusal::AlreadyDone,
                _ => Refusal::InProgress,
            }),
            Err(error) => Err(Refusal::Unavailable(error)),
        }
    }

    /// The effects ran: remember the notification as completed.
    pub async fn complete(&self, lock: &Lock) -> Result<Finished, StoreError> {
        let expiration = expiration(since_epoch(), self.ttl);
        self.store
            .complete(lock.key.clone(), lock.owner.clone(), expiration)
            .await
    }

    /// The effects failed: let a retry run them.
    pub async fn release(&self, lock: &Lock) -> Result<Finished, StoreError> {
        self.store
            .release(lock.key.clone(), lock.owner.clone())
            .await
    }

    /// `notification`'s step log: its handler's steps (`Event::once`),
    /// each an item `{notification key}#step#{name}` of the table, kept
    /// `steps_ttl` after it was written. The key is the notification's own,
    /// never a replay run's, and the items outlive the lock (which a
    /// failure deletes): a retry, a redrive or a replay skips the steps
    /// that completed.
    pub fn steps(&self, notification: &Notification) -> Arc<dyn StepLog> {
        Arc::new(NotificationSteps {
            store: Arc::clone(&self.store),
            key: self.notification_key(notification),
            ttl: self.steps_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use intercom_webhook::record;

    use intercom_webhook::dispatch::StepState;

    use super::*;
    use crate::notification::Delivery;

    fn idempotency() -> (Idempotency, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::default());
        (
            Idempotency::new(
                Arc::clone(&store) as Arc<dyn Store>,
                "topic-processor",
                Duration::from_secs(3600),
            ),
            store,
        )
    }

    fn notification(body: &str) -> Notification {
        let decoded = record::decode(body.as_bytes(), "m-1").expect("a notification");
        Notification {
            body: body.as_bytes().to_vec(),
            meta: decoded.meta,
            content_sha256: decoded.content_sha256,
            delivery: Delivery::default(),
        }
    }

    const FIRST: &str = r#"{"type":"notification_event","topic":"contact.user.created","id":"n1","app_id":"a","created_at":5,"delivery_attempts":1,"data":{"item":{"type":"contact","id":"c1"}}}"#;

    fn later(ms: i64) -> i64 {
        millis(since_epoch()) + ms
    }

    #[test]
    fn keys_name_the_function_the_notification_and_a_replay_run() {
        let (idempotency, _) = idempotency();
        assert_eq!(idempotency.key(&notification(FIRST)), "topic-processor#n1");
        let ping = r#"{"type":"notification_event","topic":"ping","id":null,"app_id":"a","created_at":5,"data":{"item":{}}}"#;
        assert_eq!(
            idempotency.key(&notification(ping)),
            format!("topic-processor#sha256:{}", body_sha256(ping.as_bytes()))
        );
        let mut replayed = notification(FIRST);
        replayed.delivery.replay = Some("replay-1".into());
        assert_eq!(
            idempotency.key(&replayed),
            "topic-processor#n1#replay:replay-1"
        );
    }

    #[tokio::test]
    async fn a_retry_is_a_duplicate_and_a_changed_notification_a_mismatch() {
        let (idempotency, store) = idempotency();
        let first = notification(FIRST);
        let lock = idempotency
            .claim(&first, "r1:m-1".into(), later(60_000))
            .await
            .expect("first");
        let item = store.get("topic-processor#n1").expect("an item");
        assert_eq!(item.status, INPROGRESS);
        assert_eq!(item.owner.as_deref(), Some("r1:m-1"));
        assert_eq!(item.validation.as_ref(), Some(&first.content_sha256));
        assert_eq!(
            idempotency
                .claim(&first, "r2:m-2".into(), later(60_000))
                .await,
            Err(Refusal::InProgress)
        );
        assert_eq!(idempotency.complete(&lock).await, Ok(Finished::Done));
        assert_eq!(
            store.get("topic-processor#n1").expect("item").status,
            COMPLETED
        );
        // Intercom's retry: the same notification, delivered again.
        let retry = notification(&FIRST.replace(
            r#""delivery_attempts":1"#,
            r#""delivery_attempts":2,"delivered_at":9"#,
        ));
        assert_ne!(retry.body, first.body);
        assert_eq!(
            idempotency
                .claim(&retry, "r3:m-3".into(), later(60_000))
                .await,
            Err(Refusal::AlreadyDone)
        );
        // The same id saying something else.
        for changed in [
            FIRST.replace(r#""id":"c1""#, r#""id":"c2""#),
            FIRST.replace(r#""created_at":5"#, r#""created_at":6"#),
            FIRST.replace("contact.user.created", "contact.user.updated"),
            FIRST.replace(r#""app_id":"a""#, r#""app_id":"b""#),
        ] {
            assert_eq!(
                idempotency
                    .claim(&notification(&changed), "r4:m-4".into(), later(60_000))
                    .await,
                Err(Refusal::PayloadMismatch),
                "{changed}"
            );
        }
    }

    #[tokio::test]
    async fn only_the_owner_completes_or_releases_and_an_expired_lock_is_taken_over() {
        let (idempotency, store) = idempotency();
        let first = notification(FIRST);
        // Owner A's invocation ends 20 ms from now and A crashes or hangs.
        let a = idempotency
            .claim(&first, "A:m-1".into(), later(20))
            .await
            .expect("A takes it");
        tokio::time::sleep(Duration::from_millis(40)).await;
        let b = idempotency
            .claim(&first, "B:m-2".into(), later(60_000))
            .await
            .expect("B takes the abandoned lock");
        // A comes back: it can neither complete nor release B's lock.
        assert_eq!(idempotency.complete(&a).await, Ok(Finished::NotOwner));
        assert_eq!(idempotency.release(&a).await, Ok(Finished::NotOwner));
        let item = store.get("topic-processor#n1").expect("B's lock");
        assert_eq!(
            (item.status.as_str(), item.owner.as_deref()),
            (INPROGRESS, Some("B:m-2"))
        );
        // B releases its own; then a third owner takes it and completes it.
        assert_eq!(idempotency.release(&b).await, Ok(Finished::Done));
        assert_eq!(store.get("topic-processor#n1"), None);
        let c = idempotency
            .claim(&first, "C:m-3".into(), later(60_000))
            .await
            .expect("C");
        assert_eq!(idempotency.complete(&c).await, Ok(Finished::Done));
        // A completed item is nobody's lock any more.
        assert_eq!(idempotency.release(&c).await, Ok(Finished::NotOwner));
        assert_eq!(idempotency.complete(&c).await, Ok(Finished::NotOwner));
        assert_eq!(
            store.get("topic-processor#n1").expect("kept").status,
            COMPLETED
        );
    }

    #[tokio::test]
    async fn steps_are_the_notifications_kept_for_the_steps_ttl_and_a_replay_skips_them() {
        let (idempotency, store) = idempotency();
        let idempotency = idempotency.with_steps_ttl(Duration::from_secs(21 * 86_400));
        let first = notification(FIRST);
        let steps = idempotency.steps(&first);
        assert_eq!(steps.state("tag").await, Ok(None));
        steps.start("tag").await.expect("started");
        assert_eq!(steps.state("tag").await, Ok(Some(StepState::Started)));
        steps.complete("tag", r#"{"id":"7"}"#.into()).await;
        let (state, expiration) =
            store.steps.lock().expect("lock")["topic-processor#n1#step#tag"].clone();
        assert_eq!(state, StepState::Completed(r#"{"id":"7"}"#.into()));
        let kept_for = expiration - i64::try_from(since_epoch().as_secs()).expect("now");
        assert!(
            (21 * 86_400 - 5..=21 * 86_400).contains(&kept_for),
            "{kept_for}"
        );
        // A replay run has its own lock, but the notification's steps.
        let mut replayed = notification(FIRST);
        replayed.delivery.replay = Some("replay-1".into());
        assert_ne!(idempotency.key(&replayed), idempotency.key(&first));
        assert_eq!(
            idempotency.steps(&replayed).state("tag").await,
            Ok(Some(StepState::Completed(r#"{"id":"7"}"#.into())))
        );
    }

    #[test]
    fn an_expired_item_or_an_abandoned_lock_stands_no_more() {
        let completed = LockItem {
            id: "k".into(),
            status: COMPLETED.into(),
            expiration: 100,
            in_progress_expiration: Some(1),
            validation: None,
            owner: None,
        };
        assert!(stands(&completed, 99_000));
        assert!(!stands(&completed, 101_000));
        let live = LockItem {
            status: INPROGRESS.into(),
            in_progress_expiration: Some(5_000),
            expiration: 100,
            ..completed
        };
        assert!(stands(&live, 4_000));
        assert!(stands(&live, 5_000), "expires after its instant, not at it");
        assert!(!stands(&live, 5_001));
    }
}
