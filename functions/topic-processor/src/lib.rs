//! `topic-processor`: SQS batches of Intercom notifications, typed and dispatched by topic.
//!
//! [`handlers`] is where a user's code goes ([`endpoint`] calls their own
//! services; `testing`, with the `testing` feature or in this crate's
//! tests, is the kit to test handlers with); [`batch`] owns the batch
//! semantics (partial failures, FIFO order); [`processor`] takes one
//! record from top to bottom; [`notification`] reads it; [`destinations`]
//! puts it on the event bus and in the archive; [`idempotency`] runs each
//! notification's effects at most once; [`freshness`] tells a notification
//! older than one already processed apart; [`telemetry`] names and records
//! the CloudWatch metrics; [`sdk`] is the one AWS SDK configuration its
//! clients share; [`lambda`] wires it all to the Lambda runtime.

pub mod batch;
pub mod config;
pub mod destinations;
pub mod endpoint;
pub mod freshness;
pub mod handlers;
pub mod idempotency;
pub mod intercom;
pub mod lambda;
pub mod notification;
pub mod payloads;
pub mod processor;
pub mod sdk;
pub mod steps;
pub mod table;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Deadlines below this (1 January 2001 in epoch ms) cannot be epoch times.
const EARLIEST_EPOCH_DEADLINE_MS: u64 = 978_307_200_000;

/// The invocation a batch runs in: who it is, and when its work must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Lambda's request id; the idempotency locks this invocation takes
    /// name it as their owner.
    pub request_id: String,
    /// Lambda's deadline: nothing of this invocation runs past it, so the
    /// locks it takes expire then.
    pub deadline: Instant,
    /// `DEADLINE_MARGIN_MS` before it: every record's work has ended,
    /// its AWS calls included; what is left is for the answer.
    pub records_deadline: Instant,
}

impl Invocation {
    /// The invocation Lambda describes: its request id and deadline
    /// (epoch ms), and `margin` kept for the answer.
    ///
    /// `cargo lambda watch` sends the timeout itself (`600000`) instead of
    /// an epoch time; a value too small to be an epoch time is read as the
    /// time left.
    pub fn from_lambda(request_id: &str, lambda_deadline_ms: u64, margin: Duration) -> Self {
        let left = if lambda_deadline_ms < EARLIEST_EPOCH_DEADLINE_MS {
            Duration::from_millis(lambda_deadline_ms)
        } else {
            Duration::from_millis(lambda_deadline_ms).saturating_sub(since_epoch())
        };
        Self::lasting(request_id, left, margin)
    }

    /// An invocation with `left` to run from now and `margin` for the answer.
    pub fn lasting(request_id: &str, left: Duration, margin: Duration) -> Self {
        let deadline = Instant::now() + left;
        Self {
            request_id: request_id.to_owned(),
            deadline,
            records_deadline: deadline.checked_sub(margin).unwrap_or_else(Instant::now),
        }
    }
}

/// Time since the epoch, by the system clock.
/// The system clock's time since the Unix epoch.
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `duration` in whole milliseconds, as DynamoDB items and logs keep them.
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// `instant` in epoch milliseconds, by the system clock.
pub fn epoch_ms(instant: Instant) -> i64 {
    let now = Instant::now();
    let at = if instant >= now {
        since_epoch() + (instant - now)
    } else {
        since_epoch().saturating_sub(now - instant)
    };
    millis(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_from_lambda_and_from_emulators() {
        let now_ms = u64::try_from(since_epoch().as_millis()).expect("ms");
        let margin = Duration::from_millis(1500);
        let start = Instant::now();
        let real = Invocation::from_lambda("r-1", now_ms + 30_000, margin);
        assert_eq!(real.request_id, "r-1");
        let left = real.deadline - start;
        assert!(
            left > Duration::from_millis(29_500) && left <= Duration::from_millis(30_000),
            "{left:?}"
        );
        assert_eq!(real.deadline - real.records_deadline, margin);
        let watch = Invocation::from_lambda("r-2", 600_000, margin);
        assert_eq!(watch.deadline - start, Duration::from_millis(600_000));
        assert_eq!(
            watch.records_deadline - start,
            Duration::from_millis(598_500)
        );
        let past = Invocation::from_lambda("r-3", now_ms - 1, margin);
        assert_eq!(past.deadline, start, "already past");
        assert!(past.records_deadline < start);
    }

    #[tokio::test(start_paused = true)]
    async fn instants_convert_to_epoch_milliseconds() {
        let now = i64::try_from(since_epoch().as_millis()).expect("ms");
        let later = epoch_ms(Instant::now() + Duration::from_secs(6));
        assert!(
            (now + 5_990..=now + 6_010).contains(&later),
            "{later} vs {now}"
        );
        let earlier = epoch_ms(Instant::now() - Duration::from_secs(1));
        assert!(
            (now - 1_010..=now - 990).contains(&earlier),
            "{earlier} vs {now}"
        );
    }
}
