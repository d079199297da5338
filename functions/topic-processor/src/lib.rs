//! `topic-processor`: SQS batches of Intercom notifications, typed and dispatched by topic.
//!
//! [`handlers`] is where a user's code goes; [`batch`] owns the batch
//! semantics (partial failures, FIFO order, the deadline guard);
//! [`processor`] what happens to one record; [`destinations`] puts it on
//! the event bus and in the archive; [`idempotency`] runs each
//! notification's effects at most once; [`telemetry`] names and records
//! the CloudWatch metrics; [`lambda`] wires it all to the Lambda runtime.

pub mod batch;
pub mod config;
pub mod destinations;
pub mod handlers;
pub mod idempotency;
pub mod lambda;
pub mod payloads;
pub mod processor;
pub mod telemetry;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Deadlines below this (1 January 2001 in epoch ms) cannot be epoch times.
const EARLIEST_EPOCH_DEADLINE_MS: u64 = 978_307_200_000;

/// The instant `margin` before the invocation deadline Lambda gave (epoch ms).
///
/// `cargo lambda watch` sends the timeout itself (`600000`) instead of an
/// epoch time; a value too small to be an epoch time is read as the time left.
pub fn deadline(lambda_deadline_ms: u64, margin: Duration) -> tokio::time::Instant {
    let left = if lambda_deadline_ms < EARLIEST_EPOCH_DEADLINE_MS {
        Duration::from_millis(lambda_deadline_ms)
    } else {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Duration::from_millis(
            u64::try_from(u128::from(lambda_deadline_ms).saturating_sub(now_ms)).unwrap_or(0),
        )
    };
    tokio::time::Instant::now() + left.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_from_lambda_and_from_emulators() {
        let now_ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_millis(),
        )
        .expect("ms");
        let margin = Duration::from_millis(1500);
        let start = tokio::time::Instant::now();
        let real = deadline(now_ms + 30_000, margin) - start;
        assert!(
            real > Duration::from_millis(28_000) && real <= Duration::from_millis(28_500),
            "{real:?}"
        );
        assert_eq!(
            deadline(600_000, margin) - start,
            Duration::from_millis(598_500)
        );
        assert_eq!(deadline(now_ms - 1, margin), start, "already past");
    }
}
