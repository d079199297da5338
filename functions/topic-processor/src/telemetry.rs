//! The processor's CloudWatch metrics and trace ids: every metric name, its dimensions, and the one place each is recorded from.
//!
//! Recorded through the `metrics` facade, a no-op unless the binary
//! installed a recorder (`lambda_init::metrics`, on unless `METRICS=off`).
//! Besides `Function`, dimension values come from fixed sets only:
//!
//! | metric | unit | dimensions |
//! |---|---|---|
//! | `Records` | Count | `Outcome` (`processed`, `unhandled`, `duplicate`, `stale`, `failed`) |
//! | `Lag` | Milliseconds | none: from the notification's `created_at` to its record's end |
//! | `HandlerTime` | Milliseconds | none: the typed handler's own run |
//! | `DestinationFailures` | Count | `Destination` (`event_bus`, `archive`) |
//!
//! `Records`, `Lag` and `HandlerTime` are recorded only with every metric on
//! (`METRICS=on`, [`describe`]'s `detailed`): no alarm reads them, only the
//! dashboard, and each is $0.30 a month. `DestinationFailures` is always
//! recorded: it appears only when a destination fails, so costs nothing on
//! a well month.
//!
//! No metric is split by topic or family: CloudWatch bills each combination
//! of dimension values as a metric ($0.30 a month), and a split by family
//! made dozens of them, most of a small stack's bill (BENCHMARKS.md, *What a
//! team pays each month*). Each record's log line carries its `topic` and
//! `outcome`; Logs Insights splits by them when needed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use intercom_webhook::dispatch::Outcome;

pub const RECORDS_METRIC: &str = "Records";
pub const LAG_METRIC: &str = "Lag";
pub const HANDLER_TIME_METRIC: &str = "HandlerTime";
pub const DESTINATION_FAILURES_METRIC: &str = "DestinationFailures";
pub const OUTCOME_DIMENSION: &str = "Outcome";
pub const DESTINATION_DIMENSION: &str = "Destination";

/// A destination, as the `Destination` dimension names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    EventBus,
    Archive,
}

impl Destination {
    pub fn name(self) -> &'static str {
        match self {
            Self::EventBus => "event_bus",
            Self::Archive => "archive",
        }
    }
}

/// Whether `Records`, `Lag` and `HandlerTime` are recorded (every metric
/// on, not only those the alarms read). Set once by [`describe`].
static DETAILED: AtomicBool = AtomicBool::new(true);

fn detailed() -> bool {
    DETAILED.load(Ordering::Relaxed)
}

/// Gives the recorder each metric's unit (CloudWatch shows none without),
/// and whether to record the metrics no alarm reads (`detailed`). Call
/// once, after installing the recorder.
pub fn describe(detailed: bool) {
    DETAILED.store(detailed, Ordering::Relaxed);
    use metrics::Unit;
    metrics::describe_counter!(RECORDS_METRIC, Unit::Count, "records by outcome");
    metrics::describe_histogram!(LAG_METRIC, Unit::Milliseconds, "created_at to processed");
    metrics::describe_histogram!(HANDLER_TIME_METRIC, Unit::Milliseconds, "handler run time");
    metrics::describe_counter!(
        DESTINATION_FAILURES_METRIC,
        Unit::Count,
        "notifications a destination did not take"
    );
}

/// Counts one record's outcome, and its lag when its `created_at` is known.
pub fn record(outcome: &Outcome, lag_ms: Option<i64>) {
    if !detailed() {
        return;
    }
    metrics::counter!(RECORDS_METRIC, OUTCOME_DIMENSION => outcome.name()).increment(1);
    if let Some(lag) = lag_ms {
        metrics::histogram!(LAG_METRIC).record(lag.max(0) as f64);
    }
}

/// How long a handler ran.
pub fn handler_time(took: Duration) {
    if !detailed() {
        return;
    }
    metrics::histogram!(HANDLER_TIME_METRIC).record(took.as_secs_f64() * 1000.0);
}

/// Counts one notification `destination` did not take.
pub fn destination_failed(destination: Destination) {
    metrics::counter!(
        DESTINATION_FAILURES_METRIC,
        DESTINATION_DIMENSION => destination.name()
    )
    .increment(1);
}

/// The trace id (`Root=…`'s value) of an X-Ray trace header such as
/// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`.
pub fn trace_id(header: &str) -> Option<&str> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .filter(|root| !root.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_the_root() {
        assert_eq!(
            trace_id("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(
            trace_id("Parent=53995c3f42cd8ad8; Root=1-5759e988-bd862e3fe1be46a994272793"),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(trace_id("Sampled=1"), None);
        assert_eq!(trace_id("Root=;Sampled=1"), None);
    }
}
