//! Exactly-once effects: a notification's handler and destinations run to completion at most once, with Powertools' DynamoDB layout and locks that know their owner.
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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intercom_webhook::dispatch::{BoxFuture, StepLog, StepState};
use intercom_webhook::envelope::body_sha256;

use crate::notification::Notification;
use crate::{millis, since_epoch};

/// The table's partition key and attribute names.
pub mod attribute {
    pub const ID: &str = "id";
    pub const STATUS: &str = "status";
    pub const EXPIRATION: &str = "expiration";
    pub const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";
    pub const VALIDATION: &str = "validation";
    pub const OWNER: &str = "owner";
    /// An object's item (`freshness`): the newest notification's `created_at`.
    pub const NEWEST_CREATED_AT: &str = "newest_created_at";
    /// An object's item: the newest notification's id.
    pub const NEWEST_NOTIFICATION_ID: &str = "newest_notification_id";
    /// A step's item (`Event::once`): the completed step's result, as JSON.
    pub const STEP_RESULT: &str = "step_result";
}

/// `status` of a lock being worked on.
pub const INPROGRESS: &str = "INPROGRESS";
/// `status` of a notification whose effects all ran.
pub const COMPLETED: &str = "COMPLETED";

/// An item of the idempotency table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockItem {
    pub id: String,
    pub status: String,
    /// Epoch seconds after which the item counts for nothing (the TTL).
    pub expiration: i64,
    /// Epoch milliseconds after which an `INPROGRESS` lock is abandoned.
    pub in_progress_expiration: Option<i64>,
    /// The notification's content hash.
    pub validation: Option<String>,
    /// Who took the lock: `{request id}:{message id}`.
    pub owner: Option<String>,
}

/// What a conditional write of a lock came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The lock is ours.
    Yes,
    /// The condition failed; the item that stands in the way, when the table said.
    Refused(Option<LockItem>),
}

/// An object's item (`freshness`): the newest notification processed
/// about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    /// Its `created_at`, epoch seconds.
    pub created_at: i64,
    pub notification_id: Option<String>,
    /// Epoch seconds after which the item counts for nothing (the TTL).
    pub expiration: i64,
}

/// What completing or releasing a lock came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Done,
    /// The lock is no longer this owner's (it expired and was taken over):
    /// nothing was changed.
    NotOwner,
}

/// The table could not be used: unreachable, missing, throttled, denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The table's items: DynamoDB as deployed, memory for local runs and tests.
pub trait Store: Send + Sync {
    /// Writes `lock` (an `INPROGRESS` item) unless an item stands in the
    /// way: one that has not expired at `now_ms` and is not an `INPROGRESS`
    /// lock past its `in_progress_expiration` ([`stands`]).
    fn take(&self, lock: LockItem, now_ms: i64) -> BoxFuture<Result<Taken, StoreError>>;
    /// Marks `id` `COMPLETED`, remembered until `expiration` (epoch
    /// seconds), if it is an `INPROGRESS` lock of `owner`.
    fn complete(
        &self,
        id: String,
        owner: String,
        expiration: i64,
    ) -> BoxFuture<Result<Finished, StoreError>>;
    /// Deletes `id`'s item if it is an `INPROGRESS` lock of `owner`.
    fn release(&self, id: String, owner: String) -> BoxFuture<Result<Finished, StoreError>>;
    /// Writes `newest` as the object item `id` unless the item there, not
    /// expired at `now_ms`, names a later `created_at`; then returns that
    /// item (`freshness`).
    fn advance(
        &self,
        id: String,
        newest: Newest,
        now_ms: i64,
    ) -> BoxFuture<Result<Option<Newest>, StoreError>>;
    /// What the step item `id` says, unless it expired by `now_s` (epoch
    /// seconds).
    fn step(&self, id: String, now_s: i64) -> BoxFuture<Result<Option<StepState>, StoreError>>;
    /// Writes the step item `id` (`INPROGRESS` when started, `COMPLETED`
    /// with its result), kept until `expiration` (epoch seconds).
    fn put_step(
        &self,
        id: String,
        state: StepState,
        expiration: i64,
    ) -> BoxFuture<Result<(), StoreError>>;
}

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

/// How long a completed step is remembered by default (`STEPS_TTL_SECONDS`):
/// 21 days, longer than a message's whole life (4 days on the queue, 14 in
/// the dead-letter queue, a redrive).
pub const STEPS_TTL: Duration = Duration::from_secs(21 * 86_400);

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

/// One notification's steps in the table.
struct NotificationSteps {
    store: Arc<dyn Store>,
    key: String,
    ttl: Duration,
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

/// The `expiration` (TTL, epoch seconds) of an item written at `now` and
/// kept for `ttl`.
pub fn expiration(now: Duration, ttl: Duration) -> i64 {
    i64::try_from((now + ttl).as_secs()).unwrap_or(i64::MAX)
}

/// Whether `existing` still stands in the way of a new lock at `now_ms`:
/// it has not expired, and it is not an `INPROGRESS` lock past its
/// `in_progress_expiration`.
pub fn stands(existing: &LockItem, now_ms: i64) -> bool {
    let expired = existing.expiration < now_ms / 1000;
    let abandoned = existing.status == INPROGRESS
        && existing
            .in_progress_expiration
            .is_some_and(|until| until < now_ms);
    !(expired || abandoned)
}

/// Whether `item` is an `INPROGRESS` lock of `owner`.
fn held_by(item: &LockItem, owner: &str) -> bool {
    item.status == INPROGRESS && item.owner.as_deref() == Some(owner)
}

/// Locks in memory, with the table's semantics: for local runs
/// (`intercom-dev serve`) and tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, LockItem>>,
    objects: Mutex<HashMap<String, Newest>>,
    steps: Mutex<HashMap<String, (StepState, i64)>>,
}

impl MemoryStore {
    /// The item under `id`, if any.
    pub fn get(&self, id: &str) -> Option<LockItem> {
        self.items().get(id).cloned()
    }

    /// The object item under `id`, if any.
    pub fn newest(&self, id: &str) -> Option<Newest> {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<String, LockItem>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn take(&self, lock: LockItem, now_ms: i64) -> BoxFuture<Result<Taken, StoreError>> {
        let mut items = self.items();
        let taken = match items.get(&lock.id) {
            Some(existing) if stands(existing, now_ms) => Taken::Refused(Some(existing.clone())),
            _ => {
                items.insert(lock.id.clone(), lock);
                Taken::Yes
            }
        };
        Box::pin(std::future::ready(Ok(taken)))
    }

    fn complete(
        &self,
        id: String,
        owner: String,
        expiration: i64,
    ) -> BoxFuture<Result<Finished, StoreError>> {
        let finished = match self.items().get_mut(&id) {
            Some(item) if held_by(item, &owner) => {
                item.status = COMPLETED.to_owned();
                item.expiration = expiration;
                Finished::Done
            }
            _ => Finished::NotOwner,
        };
        Box::pin(std::future::ready(Ok(finished)))
    }

    fn release(&self, id: String, owner: String) -> BoxFuture<Result<Finished, StoreError>> {
        let mut items = self.items();
        let finished = match items.get(&id) {
            Some(item) if held_by(item, &owner) => {
                items.remove(&id);
                Finished::Done
            }
            _ => Finished::NotOwner,
        };
        Box::pin(std::future::ready(Ok(finished)))
    }

    fn advance(
        &self,
        id: String,
        newest: Newest,
        now_ms: i64,
    ) -> BoxFuture<Result<Option<Newest>, StoreError>> {
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let newer = match objects.get(&id) {
            Some(existing)
                if existing.expiration >= now_ms / 1000
                    && existing.created_at > newest.created_at =>
            {
                Some(existing.clone())
            }
            _ => {
                objects.insert(id, newest);
                None
            }
        };
        Box::pin(std::future::ready(Ok(newer)))
    }

    fn step(&self, id: String, now_s: i64) -> BoxFuture<Result<Option<StepState>, StoreError>> {
        let steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        let found = steps
            .get(&id)
            .filter(|(_, expiration)| *expiration >= now_s)
            .map(|(state, _)| state.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn put_step(
        &self,
        id: String,
        state: StepState,
        expiration: i64,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.steps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (state, expiration));
        Box::pin(std::future::ready(Ok(())))
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
    use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
    use intercom_webhook::dispatch::{BoxFuture, StepState};

    use super::{
        COMPLETED, DynamoDbStore, Finished, INPROGRESS, LockItem, Newest, Store, StoreError, Taken,
        attribute,
    };

    /// Powertools' condition: no item, an expired item, or an `INPROGRESS`
    /// lock whose holder's invocation has ended.
    const FREE: &str = "attribute_not_exists(#id) OR #expiration < :now \
        OR (#status = :inprogress AND attribute_exists(#in_progress_expiration) \
        AND #in_progress_expiration < :now_ms)";

    /// The lock is still the caller's.
    const HELD: &str = "#status = :inprogress AND #owner = :owner";

    /// An object's newest may be raised to `:created`: no item, an expired
    /// one, or one that names no later notification.
    const NOT_NEWER: &str =
        "attribute_not_exists(#id) OR #expiration < :now OR #newest <= :created";

    fn error(e: impl std::error::Error + 'static) -> StoreError {
        StoreError(DisplayErrorContext(e).to_string())
    }

    /// Whether `e` is DynamoDB refusing a write for its condition.
    fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
        e.as_service_error()
            .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
    }

    fn number(n: i64) -> AttributeValue {
        AttributeValue::N(n.to_string())
    }

    fn text(s: &str) -> AttributeValue {
        AttributeValue::S(s.to_owned())
    }

    type Fields = std::collections::HashMap<String, AttributeValue>;

    /// The whole number attribute `name` of an item, if it has one.
    fn integer(fields: &Fields, name: &str) -> Option<i64> {
        fields
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    }

    fn item(fields: &Fields) -> Option<LockItem> {
        let text = |name: &str| fields.get(name).and_then(|v| v.as_s().ok()).cloned();
        let int = |name: &str| integer(fields, name);
        Some(LockItem {
            id: text(attribute::ID)?,
            status: text(attribute::STATUS)?,
            expiration: int(attribute::EXPIRATION).unwrap_or(i64::MAX),
            in_progress_expiration: int(attribute::IN_PROGRESS_EXPIRATION),
            validation: text(attribute::VALIDATION),
            owner: text(attribute::OWNER),
        })
    }

    /// The object item a refused `advance` met; when the table did not say
    /// (it always does, with `ALL_OLD`), a notification newer than any.
    fn newest_of(fields: Option<&Fields>) -> Newest {
        let int = |name: &str| fields.and_then(|f| integer(f, name));
        Newest {
            created_at: int(attribute::NEWEST_CREATED_AT).unwrap_or(i64::MAX),
            notification_id: fields
                .and_then(|f| f.get(attribute::NEWEST_NOTIFICATION_ID))
                .and_then(|v| v.as_s().ok())
                .cloned(),
            expiration: int(attribute::EXPIRATION).unwrap_or(i64::MAX),
        }
    }

    impl Store for DynamoDbStore {
        fn take(&self, lock: LockItem, now_ms: i64) -> BoxFuture<Result<Taken, StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                let mut request = store
                    .client
                    .put_item()
                    .table_name(&store.table)
                    .item(attribute::ID, text(&lock.id))
                    .item(attribute::STATUS, text(&lock.status))
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
                    .expression_attribute_values(":inprogress", text(INPROGRESS))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                for (name, value) in [
                    (
                        attribute::IN_PROGRESS_EXPIRATION,
                        lock.in_progress_expiration.map(number),
                    ),
                    (attribute::VALIDATION, lock.validation.as_deref().map(text)),
                    (attribute::OWNER, lock.owner.as_deref().map(text)),
                ] {
                    if let Some(value) = value {
                        request = request.item(name, value);
                    }
                }
                match request.send().await {
                    Ok(_) => Ok(Taken::Yes),
                    Err(e) => match e.as_service_error() {
                        Some(PutItemError::ConditionalCheckFailedException(refused)) => {
                            Ok(Taken::Refused(refused.item().and_then(item)))
                        }
                        _ => Err(error(e)),
                    },
                }
            })
        }

        fn complete(
            &self,
            id: String,
            owner: String,
            expiration: i64,
        ) -> BoxFuture<Result<Finished, StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                let updated = store
                    .client
                    .update_item()
                    .table_name(&store.table)
                    .key(attribute::ID, text(&id))
                    .update_expression("SET #status = :completed, #expiration = :expiration")
                    .condition_expression(HELD)
                    .expression_attribute_names("#status", attribute::STATUS)
                    .expression_attribute_names("#expiration", attribute::EXPIRATION)
                    .expression_attribute_names("#owner", attribute::OWNER)
                    .expression_attribute_values(":completed", text(COMPLETED))
                    .expression_attribute_values(":expiration", number(expiration))
                    .expression_attribute_values(":inprogress", text(INPROGRESS))
                    .expression_attribute_values(":owner", text(&owner))
                    .send()
                    .await;
                match updated {
                    Ok(_) => Ok(Finished::Done),
                    Err(e) if condition_failed(&e) => Ok(Finished::NotOwner),
                    Err(e) => Err(error(e)),
                }
            })
        }

        fn release(&self, id: String, owner: String) -> BoxFuture<Result<Finished, StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                let deleted = store
                    .client
                    .delete_item()
                    .table_name(&store.table)
                    .key(attribute::ID, text(&id))
                    .condition_expression(HELD)
                    .expression_attribute_names("#status", attribute::STATUS)
                    .expression_attribute_names("#owner", attribute::OWNER)
                    .expression_attribute_values(":inprogress", text(INPROGRESS))
                    .expression_attribute_values(":owner", text(&owner))
                    .send()
                    .await;
                match deleted {
                    Ok(_) => Ok(Finished::Done),
                    Err(e) if condition_failed(&e) => Ok(Finished::NotOwner),
                    Err(e) => Err(error(e)),
                }
            })
        }

        fn advance(
            &self,
            id: String,
            newest: Newest,
            now_ms: i64,
        ) -> BoxFuture<Result<Option<Newest>, StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                let update = match newest.notification_id {
                    Some(_) => {
                        "SET #newest = :created, #newest_id = :newest_id, #expiration = :expiration"
                    }
                    None => "SET #newest = :created, #expiration = :expiration REMOVE #newest_id",
                };
                let mut request = store
                    .client
                    .update_item()
                    .table_name(&store.table)
                    .key(attribute::ID, text(&id))
                    .update_expression(update)
                    .condition_expression(NOT_NEWER)
                    .expression_attribute_names("#id", attribute::ID)
                    .expression_attribute_names("#newest", attribute::NEWEST_CREATED_AT)
                    .expression_attribute_names("#newest_id", attribute::NEWEST_NOTIFICATION_ID)
                    .expression_attribute_names("#expiration", attribute::EXPIRATION)
                    .expression_attribute_values(":created", number(newest.created_at))
                    .expression_attribute_values(":expiration", number(newest.expiration))
                    .expression_attribute_values(":now", number(now_ms / 1000))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                if let Some(newest_id) = &newest.notification_id {
                    request = request.expression_attribute_values(":newest_id", text(newest_id));
                }
                match request.send().await {
                    Ok(_) => Ok(None),
                    Err(e) => match e.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                            Ok(Some(newest_of(refused.item())))
                        }
                        _ => Err(error(e)),
                    },
                }
            })
        }

        fn step(&self, id: String, now_s: i64) -> BoxFuture<Result<Option<StepState>, StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                // Strongly consistent: a step recorded by the invocation
                // before must be seen by its retry.
                let read = store
                    .client
                    .get_item()
                    .table_name(&store.table)
                    .key(attribute::ID, text(&id))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(error)?;
                let Some(fields) = read.item() else {
                    return Ok(None);
                };
                let expiration = integer(fields, attribute::EXPIRATION).unwrap_or(i64::MAX);
                if expiration < now_s {
                    return Ok(None);
                }
                let completed = fields
                    .get(attribute::STATUS)
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|status| status == COMPLETED);
                let result = fields
                    .get(attribute::STEP_RESULT)
                    .and_then(|v| v.as_s().ok());
                Ok(Some(match (completed, result) {
                    (true, Some(result)) => StepState::Completed(result.clone()),
                    // Started, or (written by an earlier version) completed
                    // without its result: runs again, resumed.
                    _ => StepState::Started,
                }))
            })
        }

        fn put_step(
            &self,
            id: String,
            state: StepState,
            expiration: i64,
        ) -> BoxFuture<Result<(), StoreError>> {
            let store = self.clone();
            Box::pin(async move {
                let request = store
                    .client
                    .put_item()
                    .table_name(&store.table)
                    .item(attribute::ID, text(&id))
                    .item(attribute::EXPIRATION, number(expiration));
                let request = match state {
                    StepState::Started => request.item(attribute::STATUS, text(INPROGRESS)),
                    StepState::Completed(json) => request
                        .item(attribute::STATUS, text(COMPLETED))
                        .item(attribute::STEP_RESULT, text(&json)),
                };
                request.send().await.map_err(error)?;
                Ok(())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use intercom_webhook::record;

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
