//! What a team pays each month: a metered run's counts scaled to a monthly volume, the items that depend on the rate modelled at it, and what the template creates whatever the traffic.
//!
//! [`month`] turns one [`Usage`] (a run of one configuration, counted on the
//! wire by [`crate::metered`]) into the bill of a month of `volume`
//! notifications arriving steadily, line by line:
//!
//! - **per request**: every line of [`Usage::bill`] that does not depend on
//!   the rate (HTTP requests, the receiver's invocations, durations, sends,
//!   DynamoDB, EventBridge, Firehose bytes, log lines), scaled;
//! - **rate**: what AWS's documented behaviour makes depend on the rate:
//!   X-Ray's fixed Lambda sampling (the first request each second, 5 % of
//!   the rest), the archive stream's objects (one per partition per buffer
//!   interval, the partitions from the run's own spread), the queue's
//!   batches (a long poll returns with what is there, so at a few
//!   notifications a second each batch holds one), the event source's
//!   empty receives around the clock, and the custom metrics (each billed
//!   for the hours it is published in);
//! - **fixed**: what the template creates, read from `infra/template.yaml`
//!   resource by resource, each under its `Condition`: alarms, the
//!   dashboard, the KMS key, the secrets.
//!
//! Every template resource is in [`RESOURCES`], billed by a line or named
//! free with the reason; the tests fail on a resource this model does not
//! know. Prices are [`PRICES`]; each assumption's source is in
//! `infra/AWS-BEHAVIOUR.md` (*What a month costs*).

use std::collections::BTreeMap;

use crate::cost::{GIB, PRICES, Price, Usage, default_sampling};
use crate::metered::{ARCHIVE_BUFFER_SECONDS, Stack};

/// The monthly volumes the bill is given at.
pub const VOLUMES: [f64; 4] = [1e5, 1e6, 1e7, 1e8];
/// AWS prices a month as 730 hours.
pub const HOURS_PER_MONTH: f64 = 730.0;
pub const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;
/// Pollers the SQS event source keeps on a quiet queue: five, since with
/// `MaximumConcurrency` set (the template sets it) Lambda does not scale
/// them down to two.
pub const IDLE_POLLERS: f64 = 5.0;
/// A poller's long-poll wait, SQS's maximum (an empty receive per 20 s
/// per poller at most; a shorter wait would cost more).
pub const LONG_POLL_SECONDS: f64 = 20.0;
/// The template's `BatchSize`.
pub const BATCH_SIZE: f64 = 10.0;
/// Firehose writes a partition's buffer at 128 MB too (the template's
/// `SizeInMBs`).
pub const STREAM_BUFFER_BYTES: f64 = 128.0 * 1024.0 * 1024.0;
/// The template's retention defaults: `LogRetentionDays`,
/// `ArchiveExpirationDays`, the payload bucket's 30 days.
pub const LOG_RETENTION_DAYS: f64 = 30.0;
pub const ARCHIVE_EXPIRATION_DAYS: f64 = 400.0;
pub const PAYLOAD_EXPIRATION_DAYS: f64 = 30.0;
pub const BUS_ARCHIVE_DAYS: f64 = 30.0;
const DAYS_PER_MONTH: f64 = HOURS_PER_MONTH / 24.0;

/// What drives a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The same per notification at any volume (counted on the wire).
    PerRequest,
    /// Modelled at the volume's rate from AWS's documented behaviour.
    Rate,
    /// Whatever the traffic.
    Fixed,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::PerRequest => "per request",
            Self::Rate => "rate",
            Self::Fixed => "fixed",
        }
    }
}

/// One line of a month's bill.
#[derive(Debug, Clone)]
pub struct MonthLine {
    pub component: String,
    pub kind: Kind,
    /// The functions' own share: their duration, logs and metrics (the rest
    /// is what AWS charges for the features themselves).
    pub ours: bool,
    pub dollars: f64,
}

/// A month's bill.
#[derive(Debug, Clone)]
pub struct Month {
    pub volume: f64,
    pub lines: Vec<MonthLine>,
}

impl Month {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.dollars).sum()
    }

    pub fn per_million(&self) -> f64 {
        self.total() / self.volume * 1e6
    }

    /// The functions' own share of the bill, 0 to 1.
    pub fn ours(&self) -> f64 {
        self.lines
            .iter()
            .filter(|l| l.ours)
            .map(|l| l.dollars)
            .sum::<f64>()
            / self.total()
    }

    pub fn line(&self, component: &str) -> Option<&MonthLine> {
        self.lines.iter().find(|l| l.component == component)
    }
}

/// Lines of [`Usage::bill`] that depend on the rate; [`month`] models them
/// instead of scaling the run's.
const MODELLED: [&str; 7] = [
    "X-Ray traces",
    "Firehose objects delivered",
    "S3 PUT by Firehose",
    "Lambda topic-processor: requests",
    "SQS sqs:ReceiveMessage",
    "SQS sqs:DeleteMessageBatch",
    "CloudWatch Logs: topic-processor EMF documents",
];

/// The functions' own lines among the run's.
fn ours(component: &str) -> bool {
    component.starts_with("CloudWatch Logs: webhook-receiver")
        || component.starts_with("CloudWatch Logs: topic-processor")
        || (component.starts_with("Lambda ") && component.ends_with("duration"))
}

/// Notifications per processor invocation at `rate` a second: a long poll
/// returns as soon as a message is there, so a poller takes what arrived
/// for it while it was busy with its last batch (`busy` seconds), at least
/// one and at most [`BATCH_SIZE`].
pub fn batch(rate: f64, busy: f64) -> f64 {
    (1.0 + rate / IDLE_POLLERS * busy).clamp(1.0, BATCH_SIZE)
}

/// Empty receives a month at `rate`: each poller waits up to
/// [`LONG_POLL_SECONDS`] for its share of the traffic; a wait with nothing
/// in it ends empty.
pub fn empty_receives(rate: f64) -> f64 {
    let per_poller = rate / IDLE_POLLERS;
    let empty = (-per_poller * LONG_POLL_SECONDS).exp();
    let wait = if per_poller > 0.0 {
        (1.0 - empty) / per_poller
    } else {
        LONG_POLL_SECONDS
    };
    IDLE_POLLERS * SECONDS_PER_MONTH / wait * empty
}

/// Objects the archive stream writes in a month of `records` lines spread
/// over partitions as `partitions` (records and bytes each): per buffer
/// interval, one for each partition that got a line in it (the expected
/// number of distinct partitions among an interval's lines, from the
/// run's own spread), and one more per 128 MB a partition took.
///
/// Partitions that differ only by their day (`dt=`, the notification's
/// `created_at` date) are one: in steady traffic an interval's
/// notifications were all created that day, whatever days the run's
/// samples carry.
pub fn stream_objects(records: f64, partitions: &BTreeMap<String, (u64, u64)>) -> f64 {
    let mut by_partition: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (prefix, (n, bytes)) in partitions {
        let key = prefix
            .split('/')
            .filter(|segment| !segment.starts_with("dt="))
            .collect::<Vec<_>>()
            .join("/");
        let entry = by_partition.entry(key).or_default();
        entry.0 += n;
        entry.1 += bytes;
    }
    let partitions = &by_partition;
    let total: u64 = partitions.values().map(|(n, _)| n).sum();
    if total == 0 || records <= 0.0 {
        return 0.0;
    }
    let intervals = SECONDS_PER_MONTH / ARCHIVE_BUFFER_SECONDS;
    let per_interval = records / intervals;
    let objects: f64 = partitions
        .values()
        .map(|(n, bytes)| {
            let share = *n as f64 / total as f64;
            let present = 1.0 - (1.0 - share).powf(per_interval);
            let filled = per_interval * share * (*bytes as f64 / *n as f64) / STREAM_BUFFER_BYTES;
            present.max(filled)
        })
        .sum();
    (objects * intervals).min(records)
}

/// The probability that a metric seen `frequency` times per notification
/// is published in a given hour of a month of `volume` notifications: the
/// share of its $0.30 a month CloudWatch bills.
pub fn hours_published(frequency: f64, volume: f64) -> f64 {
    1.0 - (-frequency * volume / HOURS_PER_MONTH).exp()
}

/// One HTTP API access log line as the template's `Format` writes it, for
/// a typical request: its bytes are what CloudWatch Logs ingests for each.
pub fn access_log_line() -> String {
    let template = crate::metered::template_text();
    let format = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("Format: '"))
        .and_then(|f| f.strip_suffix('\''))
        .expect("the stage's access log Format");
    let typical = [
        ("$context.requestId", "Jq3mBhV4oAMEV2Q="),
        ("$context.identity.sourceIp", "34.231.68.152"),
        ("$context.httpMethod", "POST"),
        ("$context.path", "/webhook"),
        ("$context.status", "202"),
        ("$context.responseLatency", "38"),
        ("$context.integrationStatus", "200"),
        ("$context.integrationErrorMessage", "-"),
    ];
    let mut line = format.to_owned();
    for (variable, value) in typical {
        line = line.replace(variable, value);
    }
    assert!(
        !line.contains("$context"),
        "a variable with no value: {line}"
    );
    line
}

/// The month's bill of `stack` at `volume` notifications, from `usage` (a
/// run of that configuration; the features the run does not exercise,
/// tracing, the bus's archive and the ticket rule, come from `stack`).
pub fn month(usage: &Usage, stack: &Stack, volume: f64) -> Month {
    let deliveries = usage.deliveries as f64;
    let scale = volume / deliveries;
    let rate = volume / SECONDS_PER_MONTH;
    let mut lines = Vec::new();
    let mut add = |component: &str, kind: Kind, ours: bool, dollars: f64| {
        lines.push(MonthLine {
            component: component.to_owned(),
            kind,
            ours,
            dollars,
        });
    };

    for line in usage.bill() {
        if !MODELLED.contains(&line.component.as_str()) {
            add(
                &line.component,
                Kind::PerRequest,
                ours(&line.component),
                line.per_million * volume / 1e6,
            );
        }
    }

    // The queue's batches at this rate.
    let invocations = &usage.invocations["topic-processor"];
    let run_batches = invocations.len().max(1) as f64;
    let busy = invocations.iter().map(|i| i.billed_ms as f64).sum::<f64>() / 1000.0 / run_batches;
    // The records the processor took: the receiver's sends the queue kept
    // (a FIFO queue drops Intercom's retries within its window).
    let records = usage
        .calls
        .iter()
        .filter(|c| c.caller == "webhook-receiver" && c.action == "sqs:SendMessage" && c.forwarded)
        .count() as f64;
    let per_notification = records.max(run_batches) / deliveries;
    let batches = volume * per_notification / batch(rate, busy);
    let sqs = if stack.fifo {
        &PRICES.sqs_fifo_request
    } else {
        &PRICES.sqs_standard_request
    };
    add(
        "Lambda topic-processor: requests (one per batch)",
        Kind::Rate,
        false,
        PRICES.lambda_request.of(batches),
    );
    add(
        "SQS receives and batch deletes (one each per batch)",
        Kind::Rate,
        false,
        sqs.of(2.0 * batches),
    );
    add(
        "SQS empty receives (the event source's pollers)",
        Kind::Rate,
        false,
        sqs.of(empty_receives(rate)),
    );
    let emf = usage
        .log_bytes
        .get("topic-processor EMF documents")
        .copied()
        .unwrap_or(0) as f64;
    add(
        "CloudWatch Logs: topic-processor EMF documents (one set per batch)",
        Kind::Rate,
        true,
        PRICES
            .logs_ingested_gb
            .of(emf / run_batches * batches / GIB),
    );

    if stack.tracing {
        add(
            "X-Ray traces (fixed Lambda sampling)",
            Kind::Rate,
            false,
            PRICES.xray_trace.of(volume * default_sampling(rate)),
        );
    }

    if stack.archive && stack.archive_stream {
        // Lines put (calls, not the bytes `units` bills them by).
        let lines = usage
            .calls
            .iter()
            .filter(|c| c.action == "firehose:PutRecord")
            .count() as f64;
        let records = lines / deliveries * volume;
        let objects = stream_objects(records, &usage.stream_partitions);
        add(
            "Firehose objects delivered (per partition per interval)",
            Kind::Rate,
            false,
            PRICES.firehose_object.of(objects),
        );
        add(
            "S3 PUT by Firehose",
            Kind::Rate,
            false,
            PRICES.s3_put_request.of(objects),
        );
    }

    // The functions' custom metrics, each for the hours it is published.
    let metric_hours: f64 = usage
        .metrics
        .iter()
        .map(|(metric, documents)| {
            let mut frequency = *documents as f64 / deliveries;
            if metric.starts_with("topic-processor") {
                // One document per batch: more batches, more documents.
                frequency *= batches / volume / (run_batches / deliveries);
            }
            hours_published(frequency.min(1.0), volume)
        })
        .sum();
    if stack.metrics {
        add(
            "CloudWatch custom metrics (the functions' EMF)",
            Kind::Rate,
            true,
            PRICES.custom_metric_month.of(metric_hours),
        );
    }

    // Log storage for the retention, the functions' logs.
    let function_log_bytes: u64 = usage.log_bytes.values().sum();
    add(
        "CloudWatch Logs storage (the functions' logs, 30 days)",
        Kind::PerRequest,
        true,
        PRICES.logs_stored_gb_month.of(function_log_bytes as f64
            * scale
            * LOG_RETENTION_DAYS.min(DAYS_PER_MONTH)
            / DAYS_PER_MONTH
            / GIB),
    );

    // What S3 keeps, at the steady state of its expiry.
    let stored = |caller: &str| -> f64 {
        usage
            .calls
            .iter()
            .filter(|c| c.caller == caller && c.action == "s3:PutObject")
            .map(|c| c.stored_bytes)
            .sum::<u64>() as f64
            * scale
    };
    if stack.archive {
        let bytes = stored("topic-processor") + usage.stream_stored_bytes as f64 * scale;
        add(
            "S3 storage: the archive (400 days kept)",
            Kind::PerRequest,
            false,
            PRICES
                .s3_storage_gb_month
                .of(bytes * ARCHIVE_EXPIRATION_DAYS / DAYS_PER_MONTH / GIB),
        );
    }
    if stack.large_payloads {
        add(
            "S3 storage: bodies over 1 MiB (30 days kept)",
            Kind::PerRequest,
            false,
            PRICES
                .s3_storage_gb_month
                .of(stored("webhook-receiver") * PAYLOAD_EXPIRATION_DAYS / DAYS_PER_MONTH / GIB),
        );
    }

    if stack.condition("UseBusArchive") == Some(true) {
        let bytes = usage.bus_event_bytes as f64 * scale;
        add(
            "EventBridge archive (events archived and kept 30 days)",
            Kind::PerRequest,
            false,
            PRICES.events_archived_gb.of(bytes / GIB)
                + PRICES
                    .events_archive_gb_month
                    .of(bytes * BUS_ARCHIVE_DAYS / DAYS_PER_MONTH / GIB),
        );
    }
    if stack.condition("UseTicketRuleExample") == Some(true) {
        let bytes = usage.ticket_event_bytes as f64 * scale;
        add(
            "Ticket example rule: ticket.* events into CloudWatch Logs",
            Kind::PerRequest,
            false,
            PRICES.logs_ingested_gb.of(bytes / GIB) + PRICES.logs_stored_gb_month.of(bytes / GIB),
        );
    }
    if stack.condition("UseHttpApi") == Some(true) {
        let bytes = (access_log_line().len() + 1) as f64 * volume;
        add(
            "API Gateway access logs",
            Kind::PerRequest,
            false,
            PRICES.logs_ingested_gb.of(bytes / GIB) + PRICES.logs_stored_gb_month.of(bytes / GIB),
        );
    }

    // What the template creates, resource by resource.
    let mut fixed: BTreeMap<&str, f64> = BTreeMap::new();
    for resource in template_resources() {
        let present = resource.condition.as_deref().is_none_or(|c| {
            stack
                .condition(c)
                .unwrap_or_else(|| panic!("{}: an unknown condition {c}", resource.id))
        });
        if !present {
            continue;
        }
        let (line, price): (&str, &Price) = match resource.kind.as_str() {
            "AWS::CloudWatch::Alarm" => ("CloudWatch alarms", &PRICES.alarm_month),
            "AWS::CloudWatch::Dashboard" => ("CloudWatch dashboard", &PRICES.dashboard_month),
            "AWS::KMS::Key" => ("KMS key (the alarm topic's)", &PRICES.kms_key_month),
            "AWS::SecretsManager::Secret" => ("Secrets Manager secrets", &PRICES.secret_month),
            "AWS::Logs::MetricFilter" => {
                // A custom metric published only when a log line matches
                // (no DefaultValue): an hour with a 429 in it. A run has
                // none (`metered::run` holds every answer to its
                // delivery's expected status, never 429), so steady
                // traffic publishes it in no hour.
                let throttled_per_notification = 0.0;
                *fixed
                    .entry("CloudWatch custom metric Throttled429 (access-log filter)")
                    .or_default() += PRICES
                    .custom_metric_month
                    .of(hours_published(throttled_per_notification, volume));
                continue;
            }
            _ => continue,
        };
        *fixed.entry(line).or_default() += price.of(1.0);
    }
    for (line, dollars) in fixed {
        let kind = if line.contains("Throttled429") {
            Kind::Rate
        } else {
            Kind::Fixed
        };
        add(line, kind, false, dollars);
    }
    Month { volume, lines }
}

/// What AWS's always-free tier would take off `month`'s bill, if nothing
/// else in the account used it: Lambda's 1 million requests and 400,000
/// GB-seconds, SQS's 1 million requests, CloudWatch's 10 custom metrics,
/// 10 alarms, 3 dashboards and 5 GB of logs (ingested, and stored), X-Ray's
/// 100,000 traces. (API Gateway's and S3's free tiers last 12 months only;
/// DynamoDB on demand, EventBridge's custom events, KMS keys and secrets
/// have none.)
pub fn always_free(month: &Month, stack: &Stack) -> f64 {
    let units = |filter: &dyn Fn(&str) -> bool, price: &Price| -> f64 {
        month
            .lines
            .iter()
            .filter(|l| filter(&l.component))
            .map(|l| l.dollars / price.dollars * price.per)
            .sum()
    };
    let free = |used: f64, allowance: f64, price: &Price| price.of(used.min(allowance));
    let sqs = if stack.fifo {
        &PRICES.sqs_fifo_request
    } else {
        &PRICES.sqs_standard_request
    };
    let lambda_requests = units(
        &|c| c.starts_with("Lambda ") && c.contains("requests"),
        &PRICES.lambda_request,
    );
    let gb_seconds = units(
        &|c| c.starts_with("Lambda ") && c.ends_with("duration"),
        &PRICES.lambda_gb_second_arm64,
    );
    let sqs_requests = units(&|c| c.starts_with("SQS "), sqs);
    let metrics = units(
        &|c| c.starts_with("CloudWatch custom metric"),
        &PRICES.custom_metric_month,
    );
    let alarms = units(&|c| c == "CloudWatch alarms", &PRICES.alarm_month);
    let dashboards = units(&|c| c == "CloudWatch dashboard", &PRICES.dashboard_month);
    let logs_ingested = |c: &str| {
        c.starts_with("CloudWatch Logs: ")
            || c.starts_with("API Gateway access logs")
            || c.starts_with("Ticket example rule")
    };
    let log_gb = units(&logs_ingested, &PRICES.logs_ingested_gb);
    let traces = units(&|c| c.starts_with("X-Ray"), &PRICES.xray_trace);
    free(lambda_requests, 1e6, &PRICES.lambda_request)
        + free(gb_seconds, 4e5, &PRICES.lambda_gb_second_arm64)
        + free(sqs_requests, 1e6, sqs)
        + free(metrics, 10.0, &PRICES.custom_metric_month)
        + free(alarms, 10.0, &PRICES.alarm_month)
        + free(dashboards, 3.0, &PRICES.dashboard_month)
        // Log lines of access logs and the ticket rule carry their storage in
        // the same line: counted as ingestion here, a slight overstatement of
        // the free tier's worth at most 5 GB x $0.03.
        + free(log_gb, 5.0, &PRICES.logs_ingested_gb)
        + free(traces, 1e5, &PRICES.xray_trace)
}

/// A resource of `infra/template.yaml`: its logical id, type and condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub kind: String,
    pub condition: Option<String>,
}

/// Every resource the template declares, read off its text.
pub fn template_resources() -> Vec<Resource> {
    let template = crate::metered::template_text();
    let body = template
        .split_once("\nResources:\n")
        .and_then(|(_, rest)| rest.split_once("\nOutputs:\n"))
        .map(|(resources, _)| resources)
        .expect("Resources and Outputs");
    let mut resources: Vec<Resource> = Vec::new();
    for line in body.lines() {
        if let Some(id) = line
            .strip_prefix("  ")
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#'))
            .and_then(|l| l.strip_suffix(':'))
        {
            resources.push(Resource {
                id: id.to_owned(),
                kind: String::new(),
                condition: None,
            });
        } else if let Some(resource) = resources.last_mut() {
            if let Some(kind) = line.strip_prefix("    Type: ") {
                resource.kind = kind.trim().to_owned();
            } else if let Some(condition) = line.strip_prefix("    Condition: ") {
                resource.condition = Some(condition.trim().to_owned());
            }
        }
    }
    resources
}

/// How a template resource is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// By the bill line whose component starts with this.
    Billed(&'static str),
    /// Free, and why.
    Free(&'static str),
}

/// Every resource of the template, each billed or named free.
pub const RESOURCES: &[(&str, Charge)] = &[
    (
        "ClientSecretStore",
        Charge::Billed("Secrets Manager secrets"),
    ),
    (
        "IntercomAccessTokenSecret",
        Charge::Billed("Secrets Manager secrets"),
    ),
    (
        "DeadLetterQueue",
        Charge::Free(
            "SQS bills requests only; nothing touches it unless a record fails five times",
        ),
    ),
    ("NotificationQueue", Charge::Billed("SQS sqs:SendMessage")),
    ("IdempotencyTable", Charge::Billed("DynamoDB writes")),
    ("NotificationBus", Charge::Billed("EventBridge PutEvents")),
    (
        "NotificationBusArchive",
        Charge::Billed("EventBridge archive"),
    ),
    (
        "TicketEventsLogGroup",
        Charge::Billed("Ticket example rule"),
    ),
    (
        "TicketEventsLogPolicy",
        Charge::Free(
            "a resource policy; CloudWatch Logs bills what it lets in (the ticket rule's line)",
        ),
    ),
    ("TicketEventsRule", Charge::Billed("Ticket example rule")),
    ("ArchiveBucket", Charge::Billed("S3 storage: the archive")),
    ("ArchiveBucketPolicy", Charge::Free("a bucket policy")),
    ("ArchiveStreamRole", Charge::Free("an IAM role")),
    ("ArchiveStream", Charge::Billed("Firehose ingestion")),
    (
        "PayloadBucket",
        Charge::Billed("S3 storage: bodies over 1 MiB"),
    ),
    ("PayloadBucketPolicy", Charge::Free("a bucket policy")),
    (
        "ReceiverLogGroup",
        Charge::Billed("CloudWatch Logs: webhook-receiver"),
    ),
    (
        "ProcessorLogGroup",
        Charge::Billed("CloudWatch Logs: topic-processor"),
    ),
    (
        "ReceiverFunction",
        Charge::Billed("Lambda webhook-receiver"),
    ),
    (
        "ProcessorFunction",
        Charge::Billed("Lambda topic-processor"),
    ),
    ("WebhookApi", Charge::Billed("API Gateway HTTP API")),
    (
        "WebhookIntegration",
        Charge::Free("part of the HTTP API, billed by its requests"),
    ),
    (
        "WebhookPostRoute",
        Charge::Free("part of the HTTP API, billed by its requests"),
    ),
    (
        "WebhookHeadRoute",
        Charge::Free("part of the HTTP API, billed by its requests"),
    ),
    (
        "WebhookApiAccessLogs",
        Charge::Billed("API Gateway access logs"),
    ),
    (
        "WebhookApiStage",
        Charge::Free("part of the HTTP API; its access logs are WebhookApiAccessLogs' line"),
    ),
    ("WebhookApiPermission", Charge::Free("a Lambda permission")),
    (
        "WebhookFunctionUrl",
        Charge::Free("a function URL adds no charge to the function's invocations"),
    ),
    (
        "WebhookFunctionUrlPermission",
        Charge::Free("a Lambda permission"),
    ),
    (
        "WebhookFunctionUrlInvokePermission",
        Charge::Free("a Lambda permission"),
    ),
    ("AlarmTopicKey", Charge::Billed("KMS key")),
    (
        "AlarmTopic",
        Charge::Free(
            "SNS bills publishes and deliveries: one per alarm state change, $0.50 a million",
        ),
    ),
    (
        "AlarmEmailSubscription",
        Charge::Free("e-mail deliveries, one per alarm state change ($2.00 per 100,000)"),
    ),
    (
        "DeadLetterQueueNotEmptyAlarm",
        Charge::Billed("CloudWatch alarms"),
    ),
    ("OldestMessageAgeAlarm", Charge::Billed("CloudWatch alarms")),
    ("ReceiverErrorsAlarm", Charge::Billed("CloudWatch alarms")),
    (
        "ReceiverServerErrorsAlarm",
        Charge::Billed("CloudWatch alarms"),
    ),
    (
        "ReceiverUrlServerErrorsAlarm",
        Charge::Billed("CloudWatch alarms"),
    ),
    (
        "ApiThrottledMetric",
        Charge::Billed("CloudWatch custom metric Throttled429"),
    ),
    ("ApiThrottledAlarm", Charge::Billed("CloudWatch alarms")),
    (
        "ReceiverThrottlesAlarm",
        Charge::Billed("CloudWatch alarms"),
    ),
    ("RequestRateAlarm", Charge::Billed("CloudWatch alarms")),
    ("ProcessorErrorsAlarm", Charge::Billed("CloudWatch alarms")),
    (
        "ProcessorThrottlesAlarm",
        Charge::Billed("CloudWatch alarms"),
    ),
    ("HealthDashboard", Charge::Billed("CloudWatch dashboard")),
    (
        "SignatureFailuresAlarm",
        Charge::Billed("CloudWatch alarms"),
    ),
    // Reads SQS's NumberOfMessagesSent, which SQS publishes free.
    ("SilenceAlarm", Charge::Billed("CloudWatch alarms")),
    // Only with an allowlist (AllowedIps); reads the receiver's Requests.
    ("ForbiddenSourceAlarm", Charge::Billed("CloudWatch alarms")),
];

/// The resources of the template that `stack` deploys, each with its
/// charge: a resource missing from [`RESOURCES`] or under a condition
/// [`Stack::condition`] does not know is an error, naming it.
pub fn deployed(stack: &Stack) -> Result<Vec<(Resource, Charge)>, String> {
    let mut out = Vec::new();
    for resource in template_resources() {
        let charge = RESOURCES
            .iter()
            .find(|(id, _)| *id == resource.id)
            .map(|(_, charge)| *charge)
            .ok_or_else(|| {
                format!(
                    "{} ({}) is in the template but not in monthly::RESOURCES: bill it or name it free",
                    resource.id, resource.kind
                )
            })?;
        let present = match resource.condition.as_deref() {
            None => true,
            Some(c) => stack.condition(c).ok_or_else(|| {
                format!("{}: condition {c} unknown to Stack::condition", resource.id)
            })?,
        };
        if present {
            out.push((resource, charge));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metered::{DEFAULTS, STACKS, Stack};

    #[test]
    fn every_template_resource_is_billed_or_named_free() {
        let resources = template_resources();
        assert!(resources.len() > 40, "{resources:?}");
        for resource in &resources {
            assert!(!resource.kind.is_empty(), "{resource:?}");
        }
        for stack in STACKS {
            deployed(&stack).unwrap_or_else(|e| panic!("{}: {e}", stack.name));
        }
        // And no entry for a resource the template no longer has.
        for (id, _) in RESOURCES {
            assert!(
                resources.iter().any(|r| r.id == *id),
                "{id} is in RESOURCES but not in the template"
            );
        }
        // A resource added without a cost entry fails.
        let mut with_new = resources.clone();
        with_new.push(Resource {
            id: "NewQueue".into(),
            kind: "AWS::SQS::Queue".into(),
            condition: None,
        });
        assert!(
            !with_new
                .iter()
                .all(|r| RESOURCES.iter().any(|(id, _)| *id == r.id))
        );
    }

    #[test]
    fn the_defaults_here_are_the_templates() {
        let template = crate::metered::template_text();
        let default = |parameter: &str| {
            template
                .split_once(&format!("\n  {parameter}:\n"))
                .and_then(|(_, rest)| {
                    rest.lines()
                        .take_while(|l| l.starts_with("    "))
                        .find_map(|l| l.trim().strip_prefix("Default: "))
                })
                .unwrap_or_else(|| panic!("no default for {parameter}"))
                .trim_matches('"')
                .to_owned()
        };
        assert_eq!(
            default("Tracing"),
            if DEFAULTS.tracing {
                "Active"
            } else {
                "PassThrough"
            }
        );
        let enabled = |on: bool| if on { "enabled" } else { "disabled" };
        assert_eq!(default("EventBusArchive"), enabled(DEFAULTS.bus_archive));
        assert_eq!(default("TicketRuleExample"), enabled(DEFAULTS.ticket_rule));
        assert_eq!(default("EventBus"), enabled(DEFAULTS.event_bus));
        assert_eq!(default("Archive"), enabled(DEFAULTS.archive));
        assert_eq!(default("Idempotency"), enabled(DEFAULTS.idempotency));
        assert_eq!(default("LargePayloads"), enabled(DEFAULTS.large_payloads));
        assert_eq!(default("Metrics"), enabled(DEFAULTS.metrics));
        assert_eq!(default("Dashboard"), enabled(DEFAULTS.dashboard));
        // The functions' METRICS as the template sets it, for every
        // combination the model runs.
        let expression = format!(
            "METRICS: !If [UseMetrics, !If [UseDashboard, \"{}\", \"{}\"], \"{}\"]",
            Stack {
                dashboard: true,
                ..DEFAULTS
            }
            .metrics_env(),
            Stack {
                dashboard: false,
                ..DEFAULTS
            }
            .metrics_env(),
            Stack {
                metrics: false,
                ..DEFAULTS
            }
            .metrics_env(),
        );
        assert!(template.contains(&expression), "{expression}");
        assert_eq!(
            default("ArchiveLayout"),
            if DEFAULTS.archive_stream {
                "stream"
            } else {
                "object"
            }
        );
        assert_eq!(
            default("QueueType"),
            if DEFAULTS.fifo { "fifo" } else { "standard" }
        );
        assert_eq!(default("ServeWith"), "HttpApi");
        assert_eq!(
            default("ArchiveBufferSeconds").parse::<f64>(),
            Ok(ARCHIVE_BUFFER_SECONDS)
        );
        assert_eq!(
            default("LogRetentionDays").parse::<f64>(),
            Ok(LOG_RETENTION_DAYS)
        );
        assert_eq!(
            default("ArchiveExpirationDays").parse::<f64>(),
            Ok(ARCHIVE_EXPIRATION_DAYS)
        );
        assert_eq!(
            default("EventBusArchiveDays").parse::<f64>(),
            Ok(BUS_ARCHIVE_DAYS)
        );
        assert_eq!(default("BatchSize").parse::<f64>(), Ok(BATCH_SIZE));
    }

    #[test]
    fn the_defaults_deploy_eleven_alarms_a_key_a_secret_and_no_dashboard() {
        let deployed = deployed(&DEFAULTS).expect("known");
        let count = |kind: &str| deployed.iter().filter(|(r, _)| r.kind == kind).count();
        // The silence alarm on (SilenceAlarmMinutes=60); no forbidden-source
        // alarm without an allowlist.
        assert_eq!(count("AWS::CloudWatch::Alarm"), 11);
        assert_eq!(count("AWS::KMS::Key"), 1);
        assert_eq!(count("AWS::SecretsManager::Secret"), 1);
        assert_eq!(
            count("AWS::CloudWatch::Dashboard"),
            0,
            "the dashboard is off by default"
        );
        let with_dashboard = super::deployed(&Stack {
            dashboard: true,
            ..DEFAULTS
        })
        .expect("known");
        assert_eq!(
            with_dashboard
                .iter()
                .filter(|(r, _)| r.kind == "AWS::CloudWatch::Dashboard")
                .count(),
            1
        );
        assert_eq!(
            count("AWS::Events::Archive"),
            0,
            "no second archive by default"
        );
        assert_eq!(
            count("AWS::Events::Rule"),
            0,
            "the ticket example is off by default"
        );
    }

    #[test]
    fn rates_shape_batches_receives_objects_and_metric_hours() {
        // A quiet queue: one message a batch, and five pollers' empty
        // receives around the clock (3 a minute each at most).
        assert_eq!(batch(0.04, 0.5), 1.0 + 0.04 / 5.0 * 0.5);
        assert_eq!(batch(1000.0, 0.5), BATCH_SIZE);
        let idle = empty_receives(0.0);
        assert!(
            (idle - 5.0 * SECONDS_PER_MONTH / 20.0).abs() < 1.0,
            "{idle}"
        );
        assert!(empty_receives(0.4) < idle && empty_receives(40.0) < 1.0);
        // Two partitions, one with 90 % of the lines: at one line an
        // interval, about one object each; at many, one per partition.
        let partitions = BTreeMap::from([
            ("a".to_owned(), (90, 90 * 4096)),
            ("b".to_owned(), (10, 10 * 4096)),
        ]);
        let intervals = SECONDS_PER_MONTH / ARCHIVE_BUFFER_SECONDS;
        assert!((stream_objects(intervals, &partitions) - intervals).abs() / intervals < 0.01);
        let many = stream_objects(intervals * 1000.0, &partitions);
        assert!((many - 2.0 * intervals).abs() / intervals < 0.01, "{many}");
        assert!(stream_objects(10.0, &partitions) <= 10.0);
        // Days are one partition in steady traffic: the same app on two
        // days writes what one partition does.
        let days = BTreeMap::from([
            ("stream/app_id=a/dt=2023-11-14/".to_owned(), (50, 50 * 4096)),
            ("stream/app_id=a/dt=2024-01-02/".to_owned(), (50, 50 * 4096)),
        ]);
        let one = stream_objects(intervals * 1000.0, &days);
        assert!((one - intervals).abs() / intervals < 0.01, "{one}");
        // A metric in every notification is billed whole from a few an
        // hour; one in a million, a share of its hours.
        assert!(hours_published(1.0, 1e5) > 0.999);
        assert!((hours_published(1e-6, 1e6) - (1.0 - (-1.0f64 / 730.0).exp())).abs() < 1e-12);
    }

    #[test]
    fn an_access_log_line_is_what_the_stage_format_writes() {
        let line = access_log_line();
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(parsed["status"], "202");
        assert_eq!(parsed.as_object().map(|o| o.len()), Some(8), "{line}");
        assert!(
            (150..250).contains(&line.len()),
            "{} bytes: {line}",
            line.len()
        );
    }
}
