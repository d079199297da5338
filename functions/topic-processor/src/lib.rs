//! `topic-processor`: SQS batches of Intercom notifications, typed and dispatched by topic.
//!
//! [`handlers`] is where a user's code goes; [`batch`] owns the batch
//! semantics (partial failures, FIFO order, the deadline guard).

pub mod batch;
pub mod config;
pub mod handlers;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The instant `margin` before the invocation deadline Lambda gave (epoch ms).
pub fn deadline(lambda_deadline_ms: u64, margin: Duration) -> tokio::time::Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let left = Duration::from_millis(
        u64::try_from(u128::from(lambda_deadline_ms).saturating_sub(now_ms)).unwrap_or(0),
    );
    tokio::time::Instant::now() + left.saturating_sub(margin)
}
