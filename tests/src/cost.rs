//! What AWS bills: the units each request counts as (by AWS's own counting rules), the us-east-1 price table, and the bill per million notifications.
//!
//! [`billed_units`] turns one request seen at the [`AwsRules`] proxy into
//! the units its service bills (SQS requests by 64 KiB chunk, EventBridge
//! events by 64 KiB chunk, DynamoDB write and read units by item size, S3
//! requests by tier); [`Usage`] adds the units no proxy sees (HTTP requests,
//! Lambda invocations and billed milliseconds, log bytes, sampled traces);
//! [`Usage::bill`] multiplies by [`PRICES`]. Each rule's source is in the AWS
//! behaviour register (`infra/AWS-BEHAVIOUR.md`, *What AWS bills*).
//!
//! [`AwsRules`]: crate::aws_rules::AwsRules

use std::collections::BTreeMap;

use serde_json::Value;

/// When [`PRICES`] were read off AWS's pricing pages.
pub const PRICES_DATED: &str = "2026-12-02";

/// One price: what it is for, in dollars per `per` units, and its page.
#[derive(Debug, Clone, Copy)]
pub struct Price {
    pub dollars: f64,
    pub per: f64,
    pub source: &'static str,
}

impl Price {
    const fn new(dollars: f64, per: f64, source: &'static str) -> Self {
        Self {
            dollars,
            per,
            source,
        }
    }

    pub fn of(&self, units: f64) -> f64 {
        units * self.dollars / self.per
    }
}

/// us-east-1 list prices, on-demand, past every free tier; the only place
/// prices are written.
#[derive(Debug)]
pub struct Prices {
    /// HTTP API requests, each 512 KB of request counted as one (first 300 M a month).
    pub http_api_request: Price,
    pub lambda_request: Price,
    /// Lambda duration, arm64 (the stack's default architecture).
    pub lambda_gb_second_arm64: Price,
    pub sqs_fifo_request: Price,
    pub sqs_standard_request: Price,
    /// DynamoDB on-demand write and read request units.
    pub dynamodb_write_unit: Price,
    pub dynamodb_read_unit: Price,
    /// EventBridge custom events, each 64 KB chunk of an entry one event.
    pub eventbridge_event: Price,
    /// S3 Standard PUT, COPY, POST and LIST requests; GET and all others.
    pub s3_put_request: Price,
    pub s3_get_request: Price,
    pub s3_storage_gb_month: Price,
    /// CloudWatch Logs ingestion, Standard log class.
    pub logs_ingested_gb: Price,
    /// X-Ray traces recorded.
    pub xray_trace: Price,
    pub secrets_manager_call: Price,
    /// Amazon Data Firehose Direct PUT ingestion, each record rounded up to
    /// 5 KB; dynamic partitioning by the gigabyte and by the object
    /// delivered.
    pub firehose_ingested_gb: Price,
    pub firehose_partitioned_gb: Price,
    pub firehose_object: Price,
    /// Monthly items (`tests/src/monthly.rs`): a custom metric a month,
    /// prorated by the hour it is published (first 10,000).
    pub custom_metric_month: Price,
    /// A standard-resolution alarm a month (each metric it reads).
    pub alarm_month: Price,
    pub dashboard_month: Price,
    /// A customer managed KMS key a month (rotation included).
    pub kms_key_month: Price,
    pub secret_month: Price,
    /// EventBridge archive: events archived, by the gigabyte, and kept.
    pub events_archived_gb: Price,
    pub events_archive_gb_month: Price,
    /// CloudWatch Logs storage (archival), per GB-month.
    pub logs_stored_gb_month: Price,
}

pub const PRICES: Prices = Prices {
    http_api_request: Price::new(1.00, 1e6, "https://aws.amazon.com/api-gateway/pricing/"),
    lambda_request: Price::new(0.20, 1e6, "https://aws.amazon.com/lambda/pricing/"),
    lambda_gb_second_arm64: Price::new(
        0.000_013_333_4,
        1.0,
        "https://aws.amazon.com/lambda/pricing/",
    ),
    sqs_fifo_request: Price::new(0.50, 1e6, "https://aws.amazon.com/sqs/pricing/"),
    sqs_standard_request: Price::new(0.40, 1e6, "https://aws.amazon.com/sqs/pricing/"),
    dynamodb_write_unit: Price::new(
        0.625,
        1e6,
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    dynamodb_read_unit: Price::new(
        0.125,
        1e6,
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    eventbridge_event: Price::new(1.00, 1e6, "https://aws.amazon.com/eventbridge/pricing/"),
    s3_put_request: Price::new(0.005, 1e3, "https://aws.amazon.com/s3/pricing/"),
    s3_get_request: Price::new(0.0004, 1e3, "https://aws.amazon.com/s3/pricing/"),
    s3_storage_gb_month: Price::new(0.023, 1.0, "https://aws.amazon.com/s3/pricing/"),
    logs_ingested_gb: Price::new(0.50, 1.0, "https://aws.amazon.com/cloudwatch/pricing/"),
    xray_trace: Price::new(5.00, 1e6, "https://aws.amazon.com/xray/pricing/"),
    secrets_manager_call: Price::new(0.05, 1e4, "https://aws.amazon.com/secrets-manager/pricing/"),
    firehose_ingested_gb: Price::new(0.029, 1.0, "https://aws.amazon.com/firehose/pricing/"),
    firehose_partitioned_gb: Price::new(0.020, 1.0, "https://aws.amazon.com/firehose/pricing/"),
    firehose_object: Price::new(0.005, 1e3, "https://aws.amazon.com/firehose/pricing/"),
    custom_metric_month: Price::new(0.30, 1.0, "https://aws.amazon.com/cloudwatch/pricing/"),
    alarm_month: Price::new(0.10, 1.0, "https://aws.amazon.com/cloudwatch/pricing/"),
    dashboard_month: Price::new(3.00, 1.0, "https://aws.amazon.com/cloudwatch/pricing/"),
    kms_key_month: Price::new(1.00, 1.0, "https://aws.amazon.com/kms/pricing/"),
    secret_month: Price::new(0.40, 1.0, "https://aws.amazon.com/secrets-manager/pricing/"),
    events_archived_gb: Price::new(0.10, 1.0, "https://aws.amazon.com/eventbridge/pricing/"),
    events_archive_gb_month: Price::new(0.023, 1.0, "https://aws.amazon.com/eventbridge/pricing/"),
    logs_stored_gb_month: Price::new(0.03, 1.0, "https://aws.amazon.com/cloudwatch/pricing/"),
};

/// Firehose bills each record's size rounded up to 5 KB.
pub const FIREHOSE_RECORD_UNIT: usize = 5 * 1024;

/// SQS and EventBridge bill each 64 KiB of payload as one request or event.
pub const CHUNK: usize = 64 * 1024;
/// API Gateway bills each 512 KB of an HTTP API request as one request.
pub const HTTP_API_CHUNK: usize = 512 * 1024;
/// DynamoDB: one write unit per 1 KB of item, one read unit per 4 KB.
const WRITE_UNIT: usize = 1024;
const READ_UNIT: usize = 4 * 1024;
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Whole chunks of `size` bytes `bytes` takes, at least one.
pub fn chunks(bytes: usize, size: usize) -> u64 {
    bytes.div_ceil(size).max(1) as u64
}

/// The units AWS bills for one request: `action` is its IAM action
/// (`sqs:SendMessage`), `request` and `response` the JSON bodies (empty for
/// S3), `items` the sizes of the DynamoDB item it wrote or read, before and
/// after. Every other action bills one unit per request.
pub fn billed_units(action: &str, request: &Value, response: &Value, items: (usize, usize)) -> f64 {
    match action {
        "sqs:SendMessage" => chunks(message_size(request), CHUNK) as f64,
        "sqs:SendMessageBatch" => chunks(
            request["Entries"]
                .as_array()
                .map_or(0, |e| e.iter().map(message_size).sum()),
            CHUNK,
        ) as f64,
        "sqs:ReceiveMessage" => chunks(
            response["Messages"]
                .as_array()
                .map_or(0, |m| m.iter().map(message_size).sum()),
            CHUNK,
        ) as f64,
        "events:PutEvents" => request["Entries"].as_array().map_or(0, |e| {
            e.iter().map(|e| chunks(event_entry_size(e), CHUNK)).sum()
        }) as f64,
        // A write, conditional or not, failed condition included, bills the
        // larger of the item before and after, by whole kilobytes.
        "dynamodb:PutItem" | "dynamodb:UpdateItem" | "dynamodb:DeleteItem" => {
            chunks(items.0.max(items.1), WRITE_UNIT) as f64
        }
        // A read bills by 4 KB of the item read; an eventually consistent
        // read half of that.
        "dynamodb:GetItem" => {
            let units = chunks(items.0, READ_UNIT) as f64;
            if request["ConsistentRead"] == Value::Bool(true) {
                units
            } else {
                units / 2.0
            }
        }
        // The bytes Firehose bills: each record rounded up to 5 KB.
        "firehose:PutRecord" => {
            (chunks(record_size(&request["Record"]), FIREHOSE_RECORD_UNIT) as usize
                * FIREHOSE_RECORD_UNIT) as f64
        }
        "firehose:PutRecordBatch" => request["Records"].as_array().map_or(0, |records| {
            records
                .iter()
                .map(|r| {
                    chunks(record_size(r), FIREHOSE_RECORD_UNIT) as usize * FIREHOSE_RECORD_UNIT
                })
                .sum()
        }) as f64,
        _ => 1.0,
    }
}

/// A Firehose record's size: its `Data`, base64-decoded.
pub fn record_size(record: &Value) -> usize {
    record["Data"]
        .as_str()
        .map_or(0, |data| data.trim_end_matches('=').len() * 3 / 4)
}

/// The size SQS counts for one message: its body, and each attribute's
/// name, data type and value.
pub fn message_size(message: &Value) -> usize {
    let body = message["MessageBody"]
        .as_str()
        .or_else(|| message["Body"].as_str())
        .map_or(0, str::len);
    let attributes: usize = message["MessageAttributes"]
        .as_object()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| {
                    let text = |field: &str| value[field].as_str().map_or(0, str::len);
                    name.len()
                        + text("DataType")
                        + text("StringValue")
                        + text("BinaryValue") * 3 / 4
                })
                .sum()
        })
        .unwrap_or(0);
    body + attributes
}

/// The size EventBridge counts for one `PutEvents` entry: `Time` 14 bytes,
/// `Source`, `DetailType`, `Detail` and each of `Resources` in UTF-8.
/// Read off the request itself, not by the processor's own
/// `destination::event_entry_size`, so that the proxy holds the code to
/// AWS's rule and not to the code.
pub fn event_entry_size(entry: &Value) -> usize {
    let text = |field: &str| entry[field].as_str().map_or(0, str::len);
    let time = if entry.get("Time").is_some() { 14 } else { 0 };
    let resources: usize = entry["Resources"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).map(str::len).sum())
        .unwrap_or(0);
    time + text("Source") + text("DetailType") + text("Detail") + resources
}

/// The size DynamoDB counts for an item in its JSON wire form
/// (`{"id": {"S": "…"}, …}`): each attribute's name and value.
pub fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, |attributes| {
        attributes
            .iter()
            .map(|(name, value)| name.len() + value_size(value))
            .sum()
    })
}

/// One typed attribute value's size, as DynamoDB's item-size rules count it.
fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let number = |n: &str| {
        let digits = n.trim_start_matches('-').replace('.', "");
        let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
        significant.div_ceil(2) + 1
    };
    let binary = |b: &str| b.len() * 3 / 4;
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(0, number),
        "B" => inner.as_str().map_or(0, binary),
        "BOOL" | "NULL" => 1,
        "SS" => strings(inner).map(str::len).sum(),
        "NS" => strings(inner).map(number).sum(),
        "BS" => strings(inner).map(binary).sum(),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |l| l.iter().map(|v| 1 + value_size(v)).sum())
        }
        "M" => {
            3 + inner.as_object().map_or(0, |m| {
                m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum()
            })
        }
        _ => 0,
    }
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// One AWS request seen on the wire, by caller, with the units it bills.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The SDK's application id (`AWS_SDK_UA_APP_ID`), or `-`.
    pub caller: String,
    /// The IAM action, `sqs:SendMessage`.
    pub action: String,
    pub units: f64,
    /// Bytes an S3 `PutObject` stored.
    pub stored_bytes: u64,
    /// Whether moto saw it (the proxy answers a few requests itself, as AWS
    /// would, and AWS bills those too).
    pub forwarded: bool,
    /// How long the answer took, at the proxy (moto's time, not AWS's).
    pub elapsed: std::time::Duration,
}

/// How the receiver is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    HttpApi,
    FunctionUrl,
}

/// A Lambda invocation: its function's memory and its billed milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Invocation {
    pub memory_mb: u32,
    pub billed_ms: u64,
}

impl Invocation {
    /// Lambda bills duration rounded up to the millisecond.
    pub fn of(memory_mb: u32, duration: std::time::Duration) -> Self {
        Self {
            memory_mb,
            billed_ms: duration.as_micros().div_ceil(1000) as u64,
        }
    }

    fn gb_seconds(&self) -> f64 {
        f64::from(self.memory_mb) / 1024.0 * self.billed_ms as f64 / 1000.0
    }
}

/// Everything one run used, counted.
#[derive(Debug, Clone)]
pub struct Usage {
    /// Deliveries Intercom made: the bill is per million of these.
    pub deliveries: u64,
    pub front: Front,
    /// The size of each HTTP request the front took.
    pub request_sizes: Vec<usize>,
    pub fifo: bool,
    /// AWS requests made by the stack (the functions and the event source
    /// mapping), as the proxy saw them.
    pub calls: Vec<Call>,
    /// By function.
    pub invocations: BTreeMap<String, Vec<Invocation>>,
    /// Bytes both functions wrote to their logs (CloudWatch ingests them).
    /// By what wrote them: `webhook-receiver log lines`,
    /// `topic-processor EMF documents`...
    pub log_bytes: BTreeMap<String, u64>,
    /// Traces X-Ray records: the receiver's invocations it samples.
    pub traces: f64,
    /// Objects the archive stream delivers (each also an S3 PUT).
    pub stream_objects: f64,
    /// Bytes of the records the stream took (what dynamic partitioning
    /// bills), and of the gzip objects it wrote (what S3 keeps).
    pub stream_processed_bytes: u64,
    pub stream_stored_bytes: u64,
    /// The stream's records and their bytes by partition (object prefix).
    pub stream_partitions: BTreeMap<String, (u64, u64)>,
    /// Every custom metric the functions' EMF documents published (its
    /// function, name and dimension values, `webhook-receiver Requests
    /// Answer=queued`), with how many documents carried it.
    pub metrics: BTreeMap<String, u64>,
    /// Bytes of the events the bus took, as EventBridge keeps them (the
    /// notification as `detail` in EventBridge's envelope), and of those of
    /// `ticket.*` topics (what the ticket example rule copies to its logs).
    pub bus_event_bytes: u64,
    pub ticket_event_bytes: u64,
}

/// One line of a bill: a component, its units per notification and its
/// dollars per million notifications.
#[derive(Debug, Clone)]
pub struct Line {
    pub component: String,
    pub unit: &'static str,
    pub per_notification: f64,
    pub per_million: f64,
}

impl Usage {
    /// Units of `action` (any action of a service with `service:*`).
    pub fn units(&self, action: &str) -> f64 {
        let service = action.strip_suffix('*');
        self.calls
            .iter()
            .filter(|c| match service {
                Some(prefix) => c.action.starts_with(prefix),
                None => c.action == action,
            })
            .map(|c| c.units)
            .sum()
    }

    /// The bill, line by line, per million deliveries.
    pub fn bill(&self) -> Vec<Line> {
        let per = |units: f64| units / self.deliveries as f64;
        let per_byte = |price: &Price| Price {
            per: price.per * GIB,
            ..*price
        };
        let mut lines = Vec::new();
        let mut line = |component: &str, unit: &'static str, units: f64, price: &Price| {
            if units > 0.0 {
                lines.push(Line {
                    component: component.to_owned(),
                    unit,
                    per_notification: per(units),
                    per_million: price.of(per(units) * 1e6),
                });
            }
        };
        if self.front == Front::HttpApi {
            let requests: u64 = self
                .request_sizes
                .iter()
                .map(|s| chunks(*s, HTTP_API_CHUNK))
                .sum();
            line(
                "API Gateway HTTP API",
                "requests",
                requests as f64,
                &PRICES.http_api_request,
            );
        }
        for (function, invocations) in &self.invocations {
            line(
                &format!("Lambda {function}: requests"),
                "invocations",
                invocations.len() as f64,
                &PRICES.lambda_request,
            );
            line(
                &format!("Lambda {function}: duration"),
                "GB-seconds",
                invocations.iter().map(Invocation::gb_seconds).sum(),
                &PRICES.lambda_gb_second_arm64,
            );
        }
        let sqs = if self.fifo {
            &PRICES.sqs_fifo_request
        } else {
            &PRICES.sqs_standard_request
        };
        let mut sqs_actions: BTreeMap<&str, f64> = BTreeMap::new();
        for call in self.calls.iter().filter(|c| c.action.starts_with("sqs:")) {
            *sqs_actions.entry(call.action.as_str()).or_default() += call.units;
        }
        for (action, units) in sqs_actions {
            line(&format!("SQS {action}"), "64 KiB requests", units, sqs);
        }
        line(
            "DynamoDB writes",
            "write units",
            self.units("dynamodb:PutItem")
                + self.units("dynamodb:UpdateItem")
                + self.units("dynamodb:DeleteItem"),
            &PRICES.dynamodb_write_unit,
        );
        line(
            "DynamoDB reads",
            "read units",
            self.units("dynamodb:GetItem"),
            &PRICES.dynamodb_read_unit,
        );
        line(
            "EventBridge PutEvents",
            "64 KiB events",
            self.units("events:PutEvents"),
            &PRICES.eventbridge_event,
        );
        line(
            "S3 PUT and LIST",
            "requests",
            self.units("s3:PutObject") + self.units("s3:ListBucket"),
            &PRICES.s3_put_request,
        );
        line(
            "S3 GET",
            "requests",
            self.units("s3:GetObject"),
            &PRICES.s3_get_request,
        );
        line(
            "Secrets Manager",
            "calls",
            self.units("secretsmanager:*"),
            &PRICES.secrets_manager_call,
        );
        for (what, bytes) in &self.log_bytes {
            line(
                &format!("CloudWatch Logs: {what}"),
                "bytes",
                *bytes as f64,
                &per_byte(&PRICES.logs_ingested_gb),
            );
        }
        line(
            "Firehose ingestion (5 KB steps)",
            "bytes",
            self.units("firehose:*"),
            &per_byte(&PRICES.firehose_ingested_gb),
        );
        line(
            "Firehose dynamic partitioning",
            "bytes",
            self.stream_processed_bytes as f64,
            &per_byte(&PRICES.firehose_partitioned_gb),
        );
        line(
            "Firehose objects delivered",
            "objects",
            self.stream_objects,
            &PRICES.firehose_object,
        );
        line(
            "S3 PUT by Firehose",
            "requests",
            self.stream_objects,
            &PRICES.s3_put_request,
        );
        line("X-Ray traces", "traces", self.traces, &PRICES.xray_trace);
        lines
    }

    /// Dollars per million deliveries.
    pub fn total(&self) -> f64 {
        self.bill().iter().map(|l| l.per_million).sum()
    }

    /// Bytes S3 keeps per million deliveries, and what a month of them costs.
    pub fn storage_per_million(&self) -> (f64, f64) {
        let bytes: u64 =
            self.calls.iter().map(|c| c.stored_bytes).sum::<u64>() + self.stream_stored_bytes;
        let per_million = bytes as f64 / self.deliveries as f64 * 1e6;
        (
            per_million,
            PRICES.s3_storage_gb_month.of(per_million / GIB),
        )
    }
}

/// The share of requests X-Ray's default sampling rule records at a steady
/// `rate` per second: the first each second, then 5% of the rest.
pub fn default_sampling(rate: f64) -> f64 {
    if rate <= 1.0 {
        1.0
    } else {
        (1.0 + 0.05 * (rate - 1.0)) / rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sqs_bills_each_64_kib_of_a_message_as_one_request() {
        let message = |bytes: usize| json!({"MessageBody": "x".repeat(bytes)});
        let units = |bytes| billed_units("sqs:SendMessage", &message(bytes), &json!({}), (0, 0));
        assert_eq!(units(1), 1.0);
        assert_eq!(units(CHUNK), 1.0);
        assert_eq!(units(CHUNK + 1), 2.0);
        assert_eq!(units(256 * 1024), 4.0);
        let with_attribute = json!({
            "MessageBody": "x".repeat(CHUNK - 10),
            "MessageAttributes": {"topic": {"DataType": "String", "StringValue": "ping"}}
        });
        assert_eq!(message_size(&with_attribute), CHUNK - 10 + 5 + 6 + 4);
        assert_eq!(
            billed_units("sqs:SendMessage", &with_attribute, &json!({}), (0, 0)),
            2.0
        );
        let received =
            json!({"Messages": [{"Body": "x".repeat(40_000)}, {"Body": "x".repeat(40_000)}]});
        assert_eq!(
            billed_units("sqs:ReceiveMessage", &json!({}), &received, (0, 0)),
            2.0
        );
        assert_eq!(
            billed_units("sqs:ReceiveMessage", &json!({}), &json!({}), (0, 0)),
            1.0,
            "an empty receive is billed too"
        );
    }

    #[test]
    fn dynamodb_bills_writes_by_the_larger_item_and_reads_by_4_kb() {
        let write = |before, after| {
            billed_units(
                "dynamodb:UpdateItem",
                &json!({}),
                &json!({}),
                (before, after),
            )
        };
        assert_eq!(write(0, 0), 1.0);
        assert_eq!(write(0, 1024), 1.0);
        assert_eq!(write(1025, 10), 2.0);
        let read = |consistent: bool, size| {
            billed_units(
                "dynamodb:GetItem",
                &json!({"ConsistentRead": consistent}),
                &json!({}),
                (size, 0),
            )
        };
        assert_eq!(read(true, 4096), 1.0);
        assert_eq!(read(true, 4097), 2.0);
        assert_eq!(read(false, 100), 0.5);
    }

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        let item = json!({
            "id": {"S": "fn#notif_1"},
            "expiration": {"N": "1767225600"},
            "done": {"BOOL": true},
            "tags": {"SS": ["ab", "c"]},
            "m": {"M": {"k": {"S": "vv"}}}
        });
        // id 2+10; expiration 10 + 8 significant digits (trailing zeros
        // trimmed) / 2 + 1; done 4+1; tags 4+3; m 1 + 3 + (1 + 1 + 2).
        assert_eq!(item_size(&item), 12 + 10 + 5 + 5 + 7 + 1 + 3 + 4);
    }

    #[test]
    fn eventbridge_bills_each_64_kib_of_an_entry() {
        let entry = |detail: usize| json!({"Source": "intercom", "DetailType": "ping", "Detail": "x".repeat(detail), "Time": "t"});
        let request = json!({"Entries": [entry(10), entry(CHUNK)]});
        assert_eq!(
            billed_units("events:PutEvents", &request, &json!({}), (0, 0)),
            3.0
        );
    }

    #[test]
    fn firehose_bills_each_record_by_5_kb() {
        use base64::Engine as _;
        let record = |bytes: usize| json!({"Data": base64::engine::general_purpose::STANDARD.encode(vec![b'x'; bytes])});
        for (bytes, billed) in [(1, 5120), (5120, 5120), (5121, 10240), (4097, 5120)] {
            assert_eq!(record_size(&record(bytes)), bytes);
            assert_eq!(
                billed_units(
                    "firehose:PutRecord",
                    &json!({"Record": record(bytes)}),
                    &json!({}),
                    (0, 0)
                ),
                billed as f64
            );
        }
    }

    #[test]
    fn sampling_records_one_a_second_then_five_percent() {
        assert_eq!(default_sampling(0.5), 1.0);
        assert!((default_sampling(100.0) - 0.0595).abs() < 1e-9);
    }
}
