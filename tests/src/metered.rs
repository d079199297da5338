//! One metered run of the whole pipeline as a stack configuration deploys it: deliveries through the release receiver, the queue and the release processor, every AWS request counted in billing units at the proxy and by moto's own recorder.
//!
//! [`run`] starts moto (recording every request it is sent) behind the
//! [`AwsRules`] proxy, creates what the configuration's stack creates, and
//! runs both functions under the Runtime API harness with the template's
//! environment. Each delivery is one receiver invocation; the queue is then
//! drained as Lambda's SQS event source mapping does (receive up to 10,
//! invoke, delete what succeeded in one batch call), the mapping's
//! requests under its own caller name. The [`Usage`] it returns is what
//! [`crate::cost`] bills; [`Run::recorded`] is moto's count of the same
//! requests, so a test can hold the proxy's count to it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::aws_rules::{AwsRules, iam_action_of};
use crate::cost::{Front, Invocation, Usage, default_sampling};
use crate::event_source::EventSource;
use crate::fixtures::{Request, Shape, sign};
use crate::function::Function;
use crate::load::Delivery;
use crate::moto::{self, Moto};
use crate::samples;

/// The SDK application id the event source mapping's requests carry.
pub const EVENT_SOURCE_MAPPING: &str = "event-source-mapping";

/// A stack configuration: which of the template's features are on.
#[derive(Debug, Clone, Copy)]
pub struct Stack {
    pub name: &'static str,
    pub front: Front,
    pub fifo: bool,
    pub idempotency: bool,
    pub freshness: bool,
    pub event_bus: bool,
    pub archive: bool,
    /// The archive's stream layout (`ArchiveLayout=stream`): lines through
    /// Firehose instead of an object per notification.
    pub archive_stream: bool,
    pub large_payloads: bool,
    pub metrics: bool,
    /// `Dashboard=enabled`: the dashboard, and the metrics only it shows
    /// (`METRICS=on` instead of `alarms`).
    pub dashboard: bool,
    /// `Tracing=Active` (X-Ray records traces); `PassThrough` otherwise.
    pub tracing: bool,
    /// `EventBusArchive=enabled`: the bus's own EventBridge archive.
    pub bus_archive: bool,
    /// `TicketRuleExample=enabled`: every `ticket.*` event into a log group.
    pub ticket_rule: bool,
}

impl Stack {
    /// Whether the template's condition `name` holds for this
    /// configuration (no alarm e-mail, no Intercom token, no allowlist, the
    /// silence alarm on: the template's defaults); `None` for a condition this model does not know, so that a
    /// new one cannot go uncounted.
    pub fn condition(&self, name: &str) -> Option<bool> {
        Some(match name {
            "IsFifo" => self.fifo,
            "UseHttpApi" => self.front == Front::HttpApi,
            "UseFunctionUrl" => self.front == Front::FunctionUrl,
            "UseIdempotency" => self.idempotency,
            "UseFreshness" => self.freshness,
            "UseEventBus" => self.event_bus,
            "UseBusArchive" => self.event_bus && self.bus_archive,
            "UseTicketRuleExample" => self.event_bus && self.ticket_rule,
            "UseArchive" => self.archive,
            "UseArchiveStream" => self.archive && self.archive_stream,
            "UsePayloadBucket" => self.large_payloads,
            "UseMetrics" => self.metrics,
            "UseDashboard" => self.metrics && self.dashboard,
            "HasAlarmEmail" | "HasIntercomToken" => false,
            // SilenceAlarmMinutes=60 and SilenceAlarmDays=weekdays, the
            // defaults; no AllowedIps, so no forbidden-source alarm.
            "UseSilenceAlarm" => true,
            "SilenceAlarmEveryDay" | "UseForbiddenSourceAlarm" => false,
            _ => return None,
        })
    }

    /// The functions' `METRICS` as the template sets it: `on` with the
    /// dashboard, `alarms` without, `off` with `Metrics=disabled`.
    pub fn metrics_env(&self) -> &'static str {
        match (self.metrics, self.dashboard) {
            (false, _) => "off",
            (true, true) => "on",
            (true, false) => "alarms",
        }
    }
}

/// The template's defaults: HTTP API, FIFO, idempotency, the bus, the
/// archive (stream layout), large payloads and metrics (those the alarms
/// read) on; the dashboard, freshness, X-Ray (`PassThrough`), the bus's
/// EventBridge archive and the ticket example rule off.
pub const DEFAULTS: Stack = Stack {
    name: "defaults",
    front: Front::HttpApi,
    fifo: true,
    idempotency: true,
    freshness: false,
    event_bus: true,
    archive: true,
    archive_stream: true,
    large_payloads: true,
    metrics: true,
    dashboard: false,
    tracing: false,
    bus_archive: false,
    ticket_rule: false,
};

/// The template's `ArchiveBufferSeconds` default: how long the stream
/// gathers lines before writing an object per partition.
pub const ARCHIVE_BUFFER_SECONDS: f64 = 900.0;

/// The configurations the cost table shows.
pub const STACKS: [Stack; 6] = [
    Stack {
        name: "every feature on (Dashboard, Freshness=tag, Tracing=Active, EventBusArchive, TicketRuleExample)",
        dashboard: true,
        freshness: true,
        tracing: true,
        bus_archive: true,
        ticket_rule: true,
        ..DEFAULTS
    },
    DEFAULTS,
    Stack {
        name: "defaults with an object per notification (ArchiveLayout=object)",
        archive_stream: false,
        ..DEFAULTS
    },
    Stack {
        name: "defaults, served by a function URL",
        front: Front::FunctionUrl,
        ..DEFAULTS
    },
    Stack {
        name: "defaults without the bus and the archive",
        event_bus: false,
        archive: false,
        ..DEFAULTS
    },
    Stack {
        name: "defaults on a standard queue (QueueType=standard)",
        fifo: false,
        ..DEFAULTS
    },
];

/// What a run counted.
#[derive(Debug)]
pub struct Run {
    pub usage: Usage,
    /// Requests moto was sent by the stack, by caller and IAM action, from
    /// moto's own recording.
    pub recorded: BTreeMap<(String, String), usize>,
    /// Records the processor failed on their last receive (must be none).
    pub failed_records: usize,
}

/// The text of `infra/template.yaml`.
pub fn template_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .expect("infra/template.yaml")
}

/// The memory size the template gives `resource` (`ReceiverFunction`).
pub fn template_memory_mb(resource: &str) -> u32 {
    template_text()
        .split_once(&format!("\n  {resource}:\n"))
        .and_then(|(_, rest)| {
            rest.lines()
                .take_while(|line| !line.starts_with("  ") || line.starts_with("   "))
                .find_map(|line| line.trim().strip_prefix("MemorySize:"))
        })
        .and_then(|size| size.trim().parse().ok())
        .unwrap_or_else(|| panic!("no MemorySize for {resource} in the template"))
}

/// `deliveries` plus Intercom's retry of every `retry_every`-th accepted
/// one (the same notification, `delivery_attempts` 2, signed again), as a
/// timeout on Intercom's side makes.
pub fn with_retries(deliveries: Vec<Delivery>, retry_every: usize) -> Vec<Delivery> {
    let retries: Vec<Delivery> = deliveries
        .iter()
        .filter(|d| d.expected == 202)
        .step_by(retry_every.max(1))
        .map(|d| {
            let mut notification: Value = serde_json::from_slice(&d.body).expect("json");
            notification["delivery_attempts"] = 2.into();
            let body = serde_json::to_vec(&notification).expect("json");
            let event = Request::with_signature(&body, &sign(&body)).event(Shape::ApiGatewayV2);
            Delivery {
                id: d.id.clone(),
                event: serde_json::to_vec(&event).expect("json"),
                body,
                expected: 202,
            }
        })
        .collect();
    deliveries.into_iter().chain(retries).collect()
}

/// `count` conversation replies of `bytes` bytes each, each about its own
/// conversation.
pub fn sized(count: usize, bytes: usize, prefix: &str) -> Vec<Delivery> {
    let template: Value = serde_json::from_slice(&samples::conversation_of(bytes)).expect("json");
    (0..count)
        .map(|i| {
            let id = format!("notif_{prefix}_{i}");
            let mut notification = template.clone();
            notification["id"] = id.clone().into();
            notification["data"]["item"]["id"] = format!("{prefix}-conversation-{i}").into();
            let body = serde_json::to_vec(&notification).expect("json");
            let event = Request::signed(&body).event(Shape::ApiGatewayV2);
            Delivery {
                id,
                event: serde_json::to_vec(&event).expect("json"),
                body,
                expected: 202,
            }
        })
        .collect()
}

/// Runs `deliveries` through `stack`; `rate` (notifications a second) sets
/// the share of traces X-Ray's default sampling records.
pub async fn run(stack: &Stack, deliveries: &[Delivery], rate: f64) -> Run {
    let moto = Moto::start().await;
    let aws = AwsRules::metering(moto.port).await;
    let endpoint = aws.endpoint();
    let queue = moto
        .create_queue(if stack.fifo {
            "intercom.fifo"
        } else {
            "intercom"
        })
        .await;
    let secret = moto.create_client_secret().await;
    let metrics = stack.metrics_env();
    let mut receiver_env = vec![
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_SDK_UA_APP_ID", "webhook-receiver".to_owned()),
        ("QUEUE_URL", queue.clone()),
        ("INTERCOM_CLIENT_SECRET_ARN", secret),
        ("METRICS", metrics.to_owned()),
    ];
    if stack.large_payloads {
        receiver_env.push(("PAYLOAD_BUCKET", moto.create_bucket("payloads").await));
    }
    let mut processor_env = vec![
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_SDK_UA_APP_ID", "topic-processor".to_owned()),
        ("METRICS", metrics.to_owned()),
        ("RECORD_CONCURRENCY", "8".to_owned()),
        ("DEADLINE_MARGIN_MS", "1500".to_owned()),
    ];
    if stack.idempotency {
        processor_env.push((
            "IDEMPOTENCY_TABLE",
            moto.create_idempotency_table("idempotency").await,
        ));
    }
    if stack.freshness {
        processor_env.push(("FRESHNESS", "tag".to_owned()));
    }
    if stack.event_bus {
        // A bus with no rule: on AWS, `PutEvents` answers once the event is
        // accepted and delivers to the rules' targets afterwards (retried
        // for up to 24 hours), so a rule adds nothing to the processor's
        // wait; moto delivers to each target inside `PutEvents` (some
        // 0.3-0.5 s to an SQS target), which the processor's duration
        // would bill as its own (infra/AWS-BEHAVIOUR.md).
        let bus = moto.create_event_bus("intercom").await;
        processor_env.push(("EVENT_BUS_NAME", bus));
    }
    let archive = moto.create_bucket("archive").await;
    if stack.archive {
        processor_env.push(("ARCHIVE_BUCKET", archive.clone()));
        processor_env.push(("ARCHIVE_PREFIX", "notifications/".to_owned()));
    }
    if stack.archive && stack.archive_stream {
        let stream =
            Moto::create_archive_stream(&endpoint, "archive", &archive, "notifications/").await;
        processor_env.push(("ARCHIVE_STREAM", stream));
    }
    moto.start_recording().await;

    let receiver = Function::start("webhook-receiver", None, &receiver_env).await;
    let receiver_memory = template_memory_mb("ReceiverFunction");
    let mut receiver_invocations = Vec::new();
    let mut request_sizes = Vec::new();
    for delivery in deliveries {
        let event: Value = serde_json::from_slice(&delivery.event).expect("json");
        let started = Instant::now();
        let answer = receiver.invoke(&event).await;
        receiver_invocations.push(Invocation::of(receiver_memory, started.elapsed()));
        request_sizes.push(delivery.body.len());
        assert_eq!(
            answer["statusCode"].as_u64(),
            Some(u64::from(delivery.expected)),
            "{}: {answer}",
            delivery.id
        );
    }

    let processor = Function::start("topic-processor", None, &processor_env).await;
    let processor_memory = template_memory_mb("ProcessorFunction");
    let mapping = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(moto::REGION))
            .endpoint_url(&endpoint)
            .app_name(aws_config::AppName::new(EVENT_SOURCE_MAPPING).expect("app name"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                moto::ACCESS_KEY,
                moto::SECRET_KEY,
                None,
                None,
                "moto",
            ))
            .load()
            .await,
    );
    let mapping = EventSource {
        sqs: mapping,
        queue_arn: format!(
            "arn:aws:sqs:{}:123456789012:{}",
            moto::REGION,
            queue.rsplit('/').next().unwrap_or_default()
        ),
        queue_url: queue.clone(),
        batch_size: 10,
        visibility_seconds: 30,
    };
    let mut processor_invocations = Vec::new();
    let mut failed_records = 0;
    while let Some(polled) = mapping.poll(&processor).await {
        processor_invocations.push(Invocation::of(processor_memory, polled.duration));
        failed_records += polled.failed;
        if polled.failed > 0 {
            break;
        }
    }
    // The stream's objects, as buffer intervals write them: one object per
    // partition per interval. An interval at `rate` holds rate ×
    // ARCHIVE_BUFFER_SECONDS notifications and, taken to see the partitions
    // this run saw, writes as many objects as the run's one flush did; so
    // the run's deliveries make that many objects times their share of an
    // interval (never more than one per notification).
    let (stream_objects, stream) = if stack.archive && stack.archive_stream {
        let flushed = aws.flush_streams().await;
        let intervals = deliveries.len() as f64 / (rate * ARCHIVE_BUFFER_SECONDS);
        let objects = (flushed.keys.len() as f64 * intervals).min(deliveries.len() as f64);
        (objects, flushed)
    } else {
        (0.0, Default::default())
    };
    // Lines reach the log readers a moment after the answer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut log_bytes = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    for (name, function) in [
        ("webhook-receiver", &receiver),
        ("topic-processor", &processor),
    ] {
        for line in function.logs() {
            let what = if line.contains(r#""_aws":"#) {
                for metric in emf_metrics(&line) {
                    *metrics.entry(format!("{name} {metric}")).or_default() += 1;
                }
                "EMF documents"
            } else {
                "log lines"
            };
            *log_bytes.entry(format!("{name} {what}")).or_default() += line.len() as u64 + 1;
        }
    }
    // The events the bus took: each notification the processor handled
    // once (Intercom's retries are dropped by the FIFO queue or found
    // duplicate), as EventBridge keeps it.
    let (mut bus_event_bytes, mut ticket_event_bytes) = (0, 0);
    if stack.event_bus {
        let mut seen = std::collections::HashSet::new();
        for delivery in deliveries.iter().filter(|d| d.expected == 202) {
            let notification: Value = serde_json::from_slice(&delivery.body).unwrap_or_default();
            let topic = notification["topic"].as_str().unwrap_or_default();
            if !seen.insert(delivery.id.clone()) || topic == "ping" {
                continue;
            }
            let bytes = event_as_kept(topic, &delivery.body);
            bus_event_bytes += bytes;
            if topic.starts_with("ticket.") {
                ticket_event_bytes += bytes;
            }
        }
    }

    let billed = ["webhook-receiver", "topic-processor", EVENT_SOURCE_MAPPING];
    let calls: Vec<_> = aws
        .calls()
        .into_iter()
        .filter(|c| billed.contains(&c.caller.as_str()))
        .collect();
    let mut recorded = BTreeMap::new();
    for request in moto.recording().await {
        let header = |name: &str| {
            request["headers"]
                .as_object()
                .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, v)| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let caller = [header("x-amz-user-agent"), header("user-agent")]
            .iter()
            .flat_map(|h| h.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .find_map(|token| token.strip_prefix("app/").map(str::to_owned));
        let Some(caller) = caller.filter(|c| billed.contains(&c.as_str())) else {
            continue;
        };
        let url = request["url"].as_str().unwrap_or_default();
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map_or("/", |(_, path)| path);
        let path = format!("/{}", path.split('?').next().unwrap_or_default());
        let action = iam_action_of(
            &header("x-amz-target"),
            request["method"].as_str().unwrap_or_default(),
            &path,
        );
        *recorded.entry((caller, action)).or_default() += 1;
    }

    let traces = if stack.tracing {
        deliveries.len() as f64 * default_sampling(rate)
    } else {
        0.0
    };
    Run {
        usage: Usage {
            deliveries: deliveries.len() as u64,
            front: stack.front,
            request_sizes,
            fifo: stack.fifo,
            calls,
            invocations: BTreeMap::from([
                ("webhook-receiver".to_owned(), receiver_invocations),
                ("topic-processor".to_owned(), processor_invocations),
            ]),
            log_bytes,
            traces,
            stream_objects,
            stream_processed_bytes: stream.records_bytes,
            stream_stored_bytes: stream.objects_bytes,
            stream_partitions: stream.partitions,
            metrics,
            bus_event_bytes,
            ticket_event_bytes,
        },
        recorded,
        failed_records,
    }
}

/// The custom metrics one EMF document publishes: each metric name with
/// its dimension values, `Requests Answer=queued Function=…` (the `Function`
/// value left out: one per deployed function).
pub fn emf_metrics(line: &str) -> Vec<String> {
    let Ok(document) = serde_json::from_str::<Value>(line) else {
        return Vec::new();
    };
    let mut metrics = Vec::new();
    for directive in document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        for set in directive["Dimensions"].as_array().into_iter().flatten() {
            let mut dimensions: Vec<String> = set
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|d| *d != FUNCTION_DIMENSION)
                .map(|d| format!("{d}={}", document[d].as_str().unwrap_or_default()))
                .collect();
            dimensions.sort();
            for name in &names {
                metrics.push(
                    format!("{name} {}", dimensions.join(" "))
                        .trim_end()
                        .to_owned(),
                );
            }
        }
    }
    metrics
}

/// The dimension every metric carries (`lambda_init::metrics`): one value
/// per deployed function, so not a metric of its own per value.
const FUNCTION_DIMENSION: &str = "Function";

/// The bytes of one notification as an EventBridge event: the envelope
/// EventBridge wraps every entry in, with the notification as `detail`.
pub fn event_as_kept(topic: &str, body: &[u8]) -> u64 {
    let envelope = serde_json::json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": topic,
        "source": "intercom",
        "account": "123456789012",
        "time": "2026-12-04T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {}
    });
    (envelope.to_string().len() - 2 + body.len()) as u64
}
