//! One SQS batch: decode, dispatch, and report only the failed records.
//!
//! - Standard queues: records run concurrently, at most `concurrency` at once.
//! - FIFO queues (records carry `MessageGroupId`): each group runs in order;
//!   once a record fails, the group's later records in the batch are reported
//!   failed without running, so SQS redelivers them in order. Groups run
//!   concurrently.
//! - A record that has not finished by the records' deadline (the
//!   invocation's own, less a margin) is reported failed, instead of the
//!   whole batch being lost to a timeout; every AWS call a record makes ends
//!   by then too ([`Processor::record`]). A handler cut off that way runs
//!   again on redelivery.
//! - One log line per record: `topic`, `notification_id`, `message_id`,
//!   `outcome`, `lag_ms` (since Intercom created the notification),
//!   `trace_id` (the receiver's X-Ray trace, when it came), `"stale": true`
//!   when a newer notification about its object was processed before it
//!   (`FRESHNESS`), and for a failure `reason` (a code such as
//!   `handler_failed`), `detail` and `retryable`; and the record counted in
//!   the `Records` and `Lag` metrics ([`telemetry`]).
//!
//! What happens to each record is [`Processor::record`]'s.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use futures_util::StreamExt as _;
use futures_util::stream;
use intercom_webhook::dispatch::{Failure, Outcome};

use crate::processor::Processor;
pub use crate::processor::RecordReport;
use crate::{Invocation, telemetry};

/// Processes `records` and returns what Lambda expects back.
pub async fn process_batch(
    processor: &Processor,
    records: Vec<SqsMessage>,
    invocation: &Invocation,
    concurrency: usize,
) -> SqsBatchResponse {
    let reports = run(processor, records, invocation, concurrency.max(1)).await;
    let mut response = SqsBatchResponse::default();
    for report in &reports {
        log(report);
        if matches!(report.outcome, Outcome::Failed(_)) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = report.message_id.clone();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Processes `records`, returning a report for each in batch order.
pub async fn run(
    processor: &Processor,
    records: Vec<SqsMessage>,
    invocation: &Invocation,
    concurrency: usize,
) -> Vec<RecordReport> {
    let fifo = records
        .iter()
        .any(|r| r.attributes.contains_key("MessageGroupId"));
    let mut reports: Vec<(usize, RecordReport)> = if fifo {
        let mut groups: Vec<(String, Vec<(usize, SqsMessage)>)> = Vec::new();
        for (index, record) in records.into_iter().enumerate() {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, members)) => members.push((index, record)),
                None => groups.push((group, vec![(index, record)])),
            }
        }
        stream::iter(groups)
            .map(|(_, members)| run_group(processor, members, invocation))
            .buffer_unordered(concurrency.max(1))
            .flat_map(stream::iter)
            .collect()
            .await
    } else {
        stream::iter(records.into_iter().enumerate())
            .map(
                |(index, record)| async move { (index, processor.record(&record, invocation).await) },
            )
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await
    };
    reports.sort_by_key(|(index, _)| *index);
    reports.into_iter().map(|(_, report)| report).collect()
}

async fn run_group(
    processor: &Processor,
    members: Vec<(usize, SqsMessage)>,
    invocation: &Invocation,
) -> Vec<(usize, RecordReport)> {
    let mut reports = Vec::with_capacity(members.len());
    let mut held_back = false;
    for (index, record) in members {
        let report = if held_back {
            RecordReport::of(&record, Outcome::Failed(Failure::GroupHeldBack))
        } else {
            processor.record(&record, invocation).await
        };
        held_back |= matches!(report.outcome, Outcome::Failed(_));
        reports.push((index, report));
    }
    reports
}

fn log(report: &RecordReport) {
    let now_ms = crate::millis(crate::since_epoch());
    let lag_ms = report
        .created_at
        .map(|created| now_ms.saturating_sub(created.saturating_mul(1000)));
    let topic = report.topic.as_deref();
    telemetry::record(&report.outcome, lag_ms);
    let notification_id = report.notification_id.as_deref();
    let message_id = report.message_id.as_str();
    let trace_id = report.trace_id.as_deref();
    let outcome = report.outcome.name();
    match &report.outcome {
        Outcome::Failed(failure) => {
            tracing::warn!(
                topic,
                notification_id,
                message_id,
                outcome,
                lag_ms,
                trace_id,
                retryable = failure.is_retryable(),
                reason = failure.code(),
                detail = %failure,
                "record"
            );
        }
        _ => tracing::info!(
            topic,
            notification_id,
            message_id,
            outcome,
            lag_ms,
            trace_id,
            stale = report.stale.then_some(true),
            "record"
        ),
    }
}
