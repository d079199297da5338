//! Exactly-once effects: a notification's handler and destinations run to completion at most once, with Powertools' DynamoDB layout.
//!
//! Before a record's effects run, the processor takes a lock on its key with
//! one conditional write: an item `{id, status: INPROGRESS, expiration,
//! in_progress_expiration, validation}` that only goes in when there is no
//! item, the item has expired, or it is an `INPROGRESS` lock whose holder's
//! invocation has ended. Then:
//!
//! - the effects succeed: the item becomes `COMPLETED` (one update);
//! - they fail (or run out of time): the item is deleted, so a retry runs;
//! - the write is refused: the item there decides. A different `validation`
//!   (the same notification id with another body) is `payload_mismatch`; a
//!   `COMPLETED` item makes the record a `duplicate`; a live `INPROGRESS` lock
//!   means another processor has it, and the record fails to be retried.
//! - the table cannot be reached: the record fails; nothing runs unprotected.
//!
//! The names (`id`, `status`, `expiration` in epoch seconds as the table's TTL
//! attribute, `in_progress_expiration` in epoch milliseconds, `validation`)
//! are those of Powertools for AWS Lambda, so its tables, dashboards and
//! habits carry over. A crashed or timed-out holder's lock expires with its
//! invocation.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use intercom_webhook::dispatch::BoxFuture;
use intercom_webhook::envelope::body_sha256;

/// The table's partition key and attribute names.
pub mod attribute {
    pub const ID: &str = "id";
    pub const STATUS: &str = "status";
    pub const EXPIRATION: &str = "expiration";
    pub const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";
    pub const VALIDATION: &str = "validation";
}

/// `status` of a lock being worked on.
pub const INPROGRESS: &str = "INPROGRESS";
/// `status` of a notification whose effects all ran.
pub const COMPLETED: &str = "COMPLETED";

/// An item of the idempotency table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub status: String,
    /// Epoch seconds after which the item counts for nothing (the TTL).
    pub expiration: i64,
    /// Epoch milliseconds after which an `INPROGRESS` lock is abandoned.
    pub in_progress_expiration: Option<i64>,
    /// Hex SHA-256 of the notification body.
    pub validation: Option<String>,
}

/// What a conditional write of a lock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The lock is ours.
    Taken,
    /// The condition failed; the item that stands in the way, when the table said.
    Refused(Option<Record>),
}

/// The table could not be used: unreachable, missing, throttled, denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where locks live: DynamoDB as deployed, memory for local runs and tests.
pub trait Store: Send + Sync {
    /// Writes `lock` (an `INPROGRESS` record) unless an item stands in the
    /// way: one that has not expired at `now_ms` and is not an `INPROGRESS`
    /// lock past its `in_progress_expiration`.
    fn take(&self, lock: Record, now_ms: i64) -> BoxFuture<Result<Written, StoreError>>;
    /// Marks `id` `COMPLETED`, remembered until `expiration` (epoch seconds).
    fn complete(&self, id: String, expiration: i64) -> BoxFuture<Result<(), StoreError>>;
    /// Deletes `id`'s item.
    fn release(&self, id: String) -> BoxFuture<Result<(), StoreError>>;
}

/// Why a record may not run its effects now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Completed before: the record is a duplicate.
    AlreadyDone,
    /// Another processor holds a live lock; retry later.
    InProgress,
    /// The same key was seen with a different body.
    PayloadMismatch,
    /// The table could not be used.
    Unavailable(StoreError),
}

/// A lock this processor holds, to be completed or released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub key: String,
}

/// Idempotency for one function: its store, its name and how long completed
/// notifications are remembered.
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn Store>,
    function_name: String,
    ttl: Duration,
}

impl fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("function_name", &self.function_name)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Idempotency {
    pub fn new(store: Arc<dyn Store>, function_name: impl Into<String>, ttl: Duration) -> Self {
        Self {
            store,
            function_name: function_name.into(),
            ttl,
        }
    }

    /// `{function name}#{notification id}`, or `{function name}#sha256:{hex}`
    /// of the body for a notification without an id.
    pub fn key(&self, notification_id: Option<&str>, body: &[u8]) -> String {
        match notification_id {
            Some(id) => format!("{}#{id}", self.function_name),
            None => format!("{}#sha256:{}", self.function_name, body_sha256(body)),
        }
    }

    /// Takes the lock for `body`'s notification until `until` from now (the
    /// end of the invocation), or says why not.
    pub async fn claim(
        &self,
        notification_id: Option<&str>,
        body: &[u8],
        until: Duration,
    ) -> Result<Lock, Refusal> {
        let key = self.key(notification_id, body);
        let validation = body_sha256(body);
        let now = epoch();
        let lock = Record {
            id: key.clone(),
            status: INPROGRESS.to_owned(),
            expiration: i64::try_from((now + self.ttl).as_secs()).unwrap_or(i64::MAX),
            in_progress_expiration: Some(millis(now + until)),
            validation: Some(validation.clone()),
        };
        match self.store.take(lock, millis(now)).await {
            Ok(Written::Taken) => Ok(Lock { key }),
            Ok(Written::Refused(existing)) => Err(match existing {
                Some(item) if item.validation.as_deref().is_some_and(|v| v != validation) => {
                    Refusal::PayloadMismatch
                }
                Some(item) if item.status == COMPLETED => Refusal::AlreadyDone,
                _ => Refusal::InProgress,
            }),
            Err(error) => Err(Refusal::Unavailable(error)),
        }
    }

    /// The effects ran: remember the notification as completed.
    pub async fn complete(&self, lock: Lock) -> Result<(), StoreError> {
        let expiration = i64::try_from((epoch() + self.ttl).as_secs()).unwrap_or(i64::MAX);
        self.store.complete(lock.key, expiration).await
    }

    /// The effects failed: let a retry run them.
    pub async fn release(&self, lock: Lock) -> Result<(), StoreError> {
        self.store.release(lock.key).await
    }
}

/// Locks in memory, with the table's semantics: for local runs
/// (`intercom-dev serve`) and tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, Record>>,
}

impl MemoryStore {
    /// The item under `id`, if any.
    pub fn get(&self, id: &str) -> Option<Record> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

/// Whether `existing` still stands in the way of a new lock at `now_ms`.
pub fn stands(existing: &Record, now_ms: i64) -> bool {
    let expired = existing.expiration < now_ms / 1000;
    let abandoned = existing.status == INPROGRESS
        && existing
            .in_progress_expiration
            .is_some_and(|until| until < now_ms);
    !(expired || abandoned)
}

impl Store for MemoryStore {
    fn take(&self, lock: Record, now_ms: i64) -> BoxFuture<Result<Written, StoreError>> {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let written = match items.get(&lock.id) {
            Some(existing) if stands(existing, now_ms) => Written::Refused(Some(existing.clone())),
            _ => {
                items.insert(lock.id.clone(), lock);
                Written::Taken
            }
        };
        Box::pin(std::future::ready(Ok(written)))
    }

    fn complete(&self, id: String, expiration: i64) -> BoxFuture<Result<(), StoreError>> {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(item) = items.get_mut(&id) {
            item.status = COMPLETED.to_owned();
            item.expiration = expiration;
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn release(&self, id: String) -> BoxFuture<Result<(), StoreError>> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn keys_name_the_function_and_the_notification() {
        let (idempotency, _) = idempotency();
        assert_eq!(
            idempotency.key(Some("notif_1"), b"{}"),
            "topic-processor#notif_1"
        );
        assert_eq!(
            idempotency.key(None, b"{}"),
            format!("topic-processor#sha256:{}", body_sha256(b"{}"))
        );
        assert_eq!(
            body_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn once_completed_a_notification_is_a_duplicate() {
        let (idempotency, store) = idempotency();
        let lock = idempotency
            .claim(Some("n1"), b"body", MINUTE)
            .await
            .expect("first");
        let item = store.get("topic-processor#n1").expect("an item");
        assert_eq!(item.status, INPROGRESS);
        assert_eq!(
            item.validation.as_deref(),
            Some(body_sha256(b"body").as_str())
        );
        assert_eq!(
            idempotency.claim(Some("n1"), b"body", MINUTE).await,
            Err(Refusal::InProgress)
        );
        idempotency.complete(lock).await.expect("complete");
        assert_eq!(
            store.get("topic-processor#n1").expect("item").status,
            COMPLETED
        );
        assert_eq!(
            idempotency.claim(Some("n1"), b"body", MINUTE).await,
            Err(Refusal::AlreadyDone)
        );
        assert_eq!(
            idempotency.claim(Some("n1"), b"other body", MINUTE).await,
            Err(Refusal::PayloadMismatch)
        );
    }

    #[tokio::test]
    async fn a_released_or_abandoned_lock_lets_a_retry_run() {
        let (idempotency, store) = idempotency();
        let lock = idempotency
            .claim(Some("n2"), b"body", MINUTE)
            .await
            .expect("first");
        idempotency.release(lock).await.expect("release");
        assert_eq!(store.get("topic-processor#n2"), None);
        // A holder whose invocation ended (a crash) leaves a lock that is
        // already past its in-progress expiration: the next claim takes it.
        idempotency
            .claim(Some("n2"), b"body", Duration::ZERO)
            .await
            .expect("taken");
        std::thread::sleep(Duration::from_millis(5));
        idempotency
            .claim(Some("n2"), b"body", MINUTE)
            .await
            .expect("an abandoned lock is taken over");
    }

    #[test]
    fn an_expired_completed_item_stands_no_more() {
        let completed = Record {
            id: "k".into(),
            status: COMPLETED.into(),
            expiration: 100,
            in_progress_expiration: Some(1),
            validation: None,
        };
        assert!(stands(&completed, 99_000));
        assert!(!stands(&completed, 101_000));
        let live = Record {
            status: INPROGRESS.into(),
            in_progress_expiration: Some(5_000),
            expiration: 100,
            ..completed
        };
        assert!(stands(&live, 4_000));
        assert!(!stands(&live, 6_000));
    }
}

/// The idempotency table in DynamoDB (`IDEMPOTENCY_TABLE`, a name or an ARN).
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

mod dynamodb {
    use aws_sdk_dynamodb::error::DisplayErrorContext;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
    use intercom_webhook::dispatch::BoxFuture;

    use super::{
        COMPLETED, DynamoDbStore, INPROGRESS, Record, Store, StoreError, Written, attribute,
    };

    /// Powertools' condition: no item, an expired item, or an `INPROGRESS`
    /// lock whose holder's invocation has ended.
    const FREE: &str = "attribute_not_exists(#id) OR #expiration < :now \
        OR (#status = :inprogress AND attribute_exists(#in_progress_expiration) \
        AND #in_progress_expiration < :now_ms)";

    fn error(e: impl std::error::Error + 'static) -> StoreError {
        StoreError(DisplayErrorContext(e).to_string())
    }

    fn number(n: i64) -> AttributeValue {
        AttributeValue::N(n.to_string())
    }

    fn record(item: &std::collections::HashMap<String, AttributeValue>) -> Option<Record> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let int = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        Some(Record {
            id: text(attribute::ID)?,
            status: text(attribute::STATUS)?,
            expiration: int(attribute::EXPIRATION).unwrap_or(i64::MAX),
            in_progress_expiration: int(attribute::IN_PROGRESS_EXPIRATION),
            validation: text(attribute::VALIDATION),
        })
    }

    impl Store for DynamoDbStore {
        fn take(&self, lock: Record, now_ms: i64) -> BoxFuture<Result<Written, StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                let mut request = store
                    .client
                    .put_item()
                    .table_name(&store.table)
                    .item(attribute::ID, AttributeValue::S(lock.id))
                    .item(attribute::STATUS, AttributeValue::S(lock.status))
                    .item(attribute::EXPIRATION, number(lock.expiration))
                    .condition_expression(FREE)
                    .expression_attribute_names("#id", attribute::ID)
                    .expression_attribute_names("#expiration", attribute::EXPIRATION)
                    .expression_attribute_names("#status", attribute::STATUS)
                    .expression_attribute_names(
                        "#in_progress_expiration",
                        attribute::IN_PROGRESS_EXPIRATION,
                    )
                    .expression_attribute_values(":now", number(now_ms / 1000))
                    .expression_attribute_values(":now_ms", number(now_ms))
                    .expression_attribute_values(
                        ":inprogress",
                        AttributeValue::S(INPROGRESS.into()),
                    )
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                if let Some(until) = lock.in_progress_expiration {
                    request = request.item(attribute::IN_PROGRESS_EXPIRATION, number(until));
                }
                if let Some(validation) = lock.validation {
                    request = request.item(attribute::VALIDATION, AttributeValue::S(validation));
                }
                match request.send().await {
                    Ok(_) => Ok(Written::Taken),
                    Err(e) => match e.as_service_error() {
                        Some(PutItemError::ConditionalCheckFailedException(refused)) => {
                            Ok(Written::Refused(refused.item().and_then(record)))
                        }
                        _ => Err(error(e)),
                    },
                }
            })
        }

        fn complete(&self, id: String, expiration: i64) -> BoxFuture<Result<(), StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                store
                    .client
                    .update_item()
                    .table_name(&store.table)
                    .key(attribute::ID, AttributeValue::S(id))
                    .update_expression("SET #status = :completed, #expiration = :expiration")
                    .expression_attribute_names("#status", attribute::STATUS)
                    .expression_attribute_names("#expiration", attribute::EXPIRATION)
                    .expression_attribute_values(":completed", AttributeValue::S(COMPLETED.into()))
                    .expression_attribute_values(":expiration", number(expiration))
                    .send()
                    .await
                    .map(drop)
                    .map_err(error)
            })
        }

        fn release(&self, id: String) -> BoxFuture<Result<(), StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                store
                    .client
                    .delete_item()
                    .table_name(&store.table)
                    .key(attribute::ID, AttributeValue::S(id))
                    .send()
                    .await
                    .map(drop)
                    .map_err(error)
            })
        }
    }
}
