//! The idempotency table's items and the one trait its two backends implement (DynamoDB as deployed, [`memory`] for local runs and tests): locks, objects' newest notifications (freshness) and steps share one table.

use std::fmt;
use std::time::Duration;

use intercom_webhook::dispatch::{BoxFuture, StepState};

pub mod dynamodb;
pub mod memory;

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
pub(crate) fn held_by(item: &LockItem, owner: &str) -> bool {
    item.status == INPROGRESS && item.owner.as_deref() == Some(owner)
}
