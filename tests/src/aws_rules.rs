//! An HTTP proxy in front of moto that keeps AWS rules moto does not, so that a test passes only where AWS would let it.
//!
//! - **DynamoDB writes to an item are atomic.** DynamoDB evaluates a
//!   condition expression and applies the write as one step: of two
//!   conditional writes racing on one item, the second sees the first's
//!   result. moto's threaded server evaluates and writes without a lock, so
//!   two racing writers can both pass their condition. The proxy forwards
//!   DynamoDB's write operations to one item one at a time (items named by
//!   their `Key`, or the `id` of a `PutItem`'s `Item`); writes to other
//!   items go on at once, as on AWS.
//! - **A FIFO queue remembers a deduplication id for five minutes after the
//!   first send, deleted or not**, and answers a second send inside that
//!   window like the first while dropping it. moto forgets the id once its
//!   message is deleted. The proxy remembers each `SendMessage` deduplication
//!   id per queue for [`DEDUPLICATION_WINDOW`] and answers a repeat with the
//!   first answer, forwarding nothing. A `SendMessageBatch` with
//!   deduplication ids is refused (400), not emulated, so no test can pass on
//!   moto's rule there.
//! - **SQS moves a dead-letter queue back itself** (`StartMessageMoveTask`,
//!   `ListMessageMoveTasks`), which moto does not implement. The proxy
//!   does what AWS documents: every message of the source queue to the
//!   destination, body, attributes and FIFO group kept, then reports the
//!   task `COMPLETED` with the number moved.
//! - **An eventually consistent `GetItem` may miss a write made moments
//!   ago** (a strongly consistent one, `ConsistentRead: true`, may not);
//!   moto's reads always see every write. The proxy answers an eventually
//!   consistent `GetItem` with the worst AWS allows for an item just
//!   written: no item.
//! - **EventBridge takes at most 1 MB of entries in one `PutEvents`**,
//!   counted as AWS counts them (`Time` 14 bytes, `Source`, `DetailType`,
//!   `Detail` and each of `Resources` in UTF-8); moto takes any size. Over
//!   the limit the proxy answers 400 `ValidationException`.
//! - **Amazon Data Firehose buffers records and writes them to S3 in
//!   objects, one per dynamic partition**: moto writes one object per
//!   `PutRecord`, under its own time-based prefix, ignoring the stream's
//!   `Prefix` expressions, partitioning and compression. The proxy learns
//!   each stream's S3 configuration from its `CreateDeliveryStream`
//!   (forwarded too), keeps the records of `PutRecord`/`PutRecordBatch`
//!   itself, and on [`AwsRules::flush_streams`] (a buffer interval ending)
//!   writes them as Firehose does: the metadata-extraction query's
//!   `name: .field` pairs give each record's partition keys, the `Prefix`'s
//!   `!{partitionKeyFromQuery:name}` take them, one object per partition
//!   named `{stream}-1-{time}-{n}`, gzip-compressed (`.gz`) with
//!   `CompressionFormat` `GZIP`.
//!
//! - **Every SQS call takes time**: tens of milliseconds within a region,
//!   more from a laptop; moto answers in about one. With
//!   [`AwsRules::sqs_latency`] the proxy holds each SQS request that long
//!   before forwarding it, so that a tool reading a large queue takes as
//!   long as it would on SQS, and visibility timeouts (which moto keeps)
//!   run out while it reads.
//!
//! It also records, per caller, the IAM action of every request it sees
//! ([`AwsRules::actions`]): the caller is the SDK's application id
//! (`AWS_SDK_UA_APP_ID`, which the SDK writes into its user agent as
//! `app/{id}`), so a test can compare what each function called with what
//! its role grants; and meters each request in the units AWS bills it by
//! ([`AwsRules::calls`], [`crate::cost::billed_units`]);
//! [`AwsRules::metering`] also reads a DynamoDB item's size before and
//! after each write (the proxy's tables are keyed by `id`, as the stack's
//! table is), which only the cost count needs.
//!
//! Sources are in the AWS behaviour register (`infra/AWS-BEHAVIOUR.md`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper_util::rt::TokioIo;
use intercom_webhook::destination::EVENT_BUS_LIMIT;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::cost::{self, Call};
use crate::flaky_events::forward;

/// A response header on every answer the proxy gives itself, moto never
/// seeing the request: a deduplicated send, an emulated move task, a refusal.
pub const ANSWERED_BY_PROXY: &str = "x-aws-rules-answered";

/// How long a FIFO queue remembers a deduplication id after its first send.
pub const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(5 * 60);

/// DynamoDB operations that write an item, under `x-amz-target`.
const DYNAMODB_WRITES: [&str; 5] = [
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.UpdateItem",
    "DynamoDB_20120810.DeleteItem",
    "DynamoDB_20120810.BatchWriteItem",
    "DynamoDB_20120810.TransactWriteItems",
];

/// The proxy; `AWS_ENDPOINT_URL` is [`AwsRules::endpoint`].
#[derive(Debug)]
pub struct AwsRules {
    pub port: u16,
    upstream: u16,
    rules: Arc<Rules>,
    _server: tokio::task::JoinHandle<()>,
}

impl AwsRules {
    /// Forwards a free loopback port to moto at `upstream`.
    pub async fn start(upstream: u16) -> Self {
        Self::serve(upstream, Rules::default()).await
    }

    /// [`AwsRules::start`], also reading each DynamoDB item before and
    /// after every write to it, so that its write units are billed by the
    /// item's size ([`AwsRules::calls`]); without, a write counts one unit.
    pub async fn metering(upstream: u16) -> Self {
        Self::serve(
            upstream,
            Rules {
                read_items: true,
                ..Rules::default()
            },
        )
        .await
    }

    async fn serve(upstream: u16, rules: Rules) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let rules = Arc::new(rules);
        let serving = Arc::clone(&rules);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let rules = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                        let rules = Arc::clone(&rules);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body: Bytes = BodyExt::collect(body)
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            Ok::<_, Infallible>(rules.answer(parts, body, upstream).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            port,
            upstream,
            rules,
            _server: server,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The IAM actions seen, by caller (the SDK's application id, or `-`).
    pub fn actions(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.rules.actions.lock().expect("lock").clone()
    }

    /// Every request seen so far, metered as AWS bills it.
    pub fn calls(&self) -> Vec<Call> {
        self.rules.calls.lock().expect("lock").clone()
    }

    /// Writes every record the streams hold to S3 as Firehose does when a
    /// buffer interval ends.
    pub async fn flush_streams(&self) -> Flushed {
        let held: Vec<(Stream, Vec<Bytes>)> = {
            let mut streams = self.rules.streams.lock().expect("lock");
            streams
                .values_mut()
                .map(|(stream, records)| (stream.clone(), std::mem::take(records)))
                .collect()
        };
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(
                &crate::moto::sdk_config(&format!("http://127.0.0.1:{}", self.upstream)).await,
            )
            .force_path_style(true)
            .build(),
        );
        let mut flushed = Flushed::default();
        for (stream, records) in held {
            let mut partitions: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for record in records {
                flushed.records_bytes += record.len() as u64;
                let fields: Value = serde_json::from_slice(&record).unwrap_or_default();
                let mut prefix = stream.prefix.clone();
                for (key, field) in &stream.partition_keys {
                    let value = match &fields[field] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    prefix = prefix.replace(&format!("!{{partitionKeyFromQuery:{key}}}"), &value);
                }
                let counted = flushed.partitions.entry(prefix.clone()).or_default();
                counted.0 += 1;
                counted.1 += record.len() as u64;
                partitions
                    .entry(prefix)
                    .or_default()
                    .extend_from_slice(&record);
            }
            let time = jiff::Timestamp::now()
                .strftime("%Y-%m-%d-%H-%M-%S")
                .to_string();
            for (n, (prefix, data)) in partitions.into_iter().enumerate() {
                let (data, extension) = if stream.gzip {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    std::io::Write::write_all(&mut encoder, &data).expect("gzip");
                    (encoder.finish().expect("gzip"), ".gz")
                } else {
                    (data, "")
                };
                let key = format!("{prefix}{}-1-{time}-{n}{extension}", stream.name);
                flushed.objects_bytes += data.len() as u64;
                s3.put_object()
                    .bucket(&stream.bucket)
                    .key(&key)
                    .body(data.into())
                    .send()
                    .await
                    .expect("the stream's object written");
                flushed.keys.push(key);
            }
        }
        flushed
    }

    /// Holds every `SendMessage` this long before forwarding it, as a slow
    /// network would; `None` stops holding.
    pub fn hold_sends(&self, hold: Option<Duration>) {
        *self.rules.hold_sends.lock().expect("lock") = hold;
    }

    /// Holds every SQS request this long before answering it, as SQS's
    /// own latency would; `None` answers at once.
    pub fn sqs_latency(&self, latency: Option<Duration>) {
        *self.rules.sqs_latency.lock().expect("lock") = latency;
    }
}

/// What the proxy keeps between requests.
#[derive(Debug, Default)]
struct Rules {
    /// Held while a DynamoDB write is forwarded.
    /// Per item (table and key), held while a write to it is forwarded.
    writes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The first answer to each `(queue, deduplication id)`, and when.
    deduplication: Mutex<HashMap<(String, String), (Instant, Bytes)>>,
    /// How long each `SendMessage` waits before it is forwarded.
    hold_sends: Mutex<Option<Duration>>,
    /// How long every SQS request waits before it is answered.
    sqs_latency: Mutex<Option<Duration>>,
    /// Message move tasks, by source ARN: the last one's answer.
    move_tasks: Mutex<HashMap<String, Value>>,
    /// IAM actions seen, by caller.
    actions: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Every request, metered.
    calls: Mutex<Vec<Call>>,
    /// Whether each DynamoDB write's item is read on both sides of it.
    read_items: bool,
    /// Firehose streams by name, and the records each holds.
    streams: Mutex<HashMap<String, (Stream, Vec<Bytes>)>>,
}

/// What [`AwsRules::flush_streams`] wrote.
#[derive(Debug, Default, Clone)]
pub struct Flushed {
    /// The objects' keys.
    pub keys: Vec<String>,
    /// The records' bytes, as put (what dynamic partitioning processes).
    pub records_bytes: u64,
    /// The objects' bytes, compressed (what S3 keeps).
    pub objects_bytes: u64,
    /// Records and their bytes, by the partition (object prefix) they went
    /// to: how a month's traffic spreads over partitions.
    pub partitions: BTreeMap<String, (u64, u64)>,
}

/// What the proxy knows of a Firehose stream's S3 destination.
#[derive(Debug, Clone, Default)]
struct Stream {
    name: String,
    bucket: String,
    prefix: String,
    /// Partition key name, and the record field it is read from.
    partition_keys: Vec<(String, String)>,
    gzip: bool,
}

impl Stream {
    /// From a `CreateDeliveryStream` request with an extended S3 destination.
    fn of(request: &Value) -> Self {
        let destination = &request["ExtendedS3DestinationConfiguration"];
        let query = destination["ProcessingConfiguration"]["Processors"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["Parameters"].as_array().into_iter().flatten())
            .find(|p| p["ParameterName"] == "MetadataExtractionQuery")
            .and_then(|p| p["ParameterValue"].as_str())
            .unwrap_or_default();
        // `{app_id: .app_id, topic: .topic}`: the pairs a record's fields fill.
        let partition_keys = query
            .trim_matches(['{', '}', ' '])
            .split(',')
            .filter_map(|pair| {
                let (key, field) = pair.split_once(':')?;
                Some((
                    key.trim().to_owned(),
                    field.trim().strip_prefix('.')?.to_owned(),
                ))
            })
            .collect();
        Self {
            name: request["DeliveryStreamName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            bucket: destination["BucketARN"]
                .as_str()
                .and_then(|arn| arn.rsplit(':').next())
                .unwrap_or_default()
                .to_owned(),
            prefix: destination["Prefix"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            partition_keys,
            gzip: destination["CompressionFormat"] == "GZIP",
        }
    }
}

impl Rules {
    /// Answers the request by the rules below and meters it.
    async fn answer(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
        upstream: u16,
    ) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|t| t.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let action = iam_action(&target, &parts);
        let caller = ["x-amz-user-agent", "user-agent"]
            .iter()
            .filter_map(|name| parts.headers.get(*name)?.to_str().ok())
            .flat_map(str::split_whitespace)
            .find_map(|token| token.strip_prefix("app/"))
            .unwrap_or("-")
            .to_owned();
        self.actions
            .lock()
            .expect("lock")
            .entry(caller.clone())
            .or_default()
            .insert(action.clone());
        let authorization = parts.headers.get(hyper::header::AUTHORIZATION).cloned();
        let stored_bytes = if action == "s3:PutObject" {
            parts
                .headers
                .get("x-amz-decoded-content-length")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(body.len() as u64)
        } else {
            0
        };
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let (response, items) = if DYNAMODB_WRITES.contains(&target.as_str()) {
            // One at a time per item, and the item read on each side.
            let item = format!("{}\0{}", request["TableName"], item_key(&request));
            let lock = Arc::clone(self.writes.lock().expect("lock").entry(item).or_default());
            let _one_at_a_time = lock.lock().await;
            let size = async || {
                if self.read_items {
                    stored_item_size(&request, authorization.as_ref(), upstream).await
                } else {
                    0
                }
            };
            let before = size().await;
            let response = self.respond(&target, parts, body, upstream).await;
            let after = size().await;
            (response, (before, after))
        } else {
            (self.respond(&target, parts, body, upstream).await, (0, 0))
        };
        let (response, answer) =
            if matches!(action.as_str(), "sqs:ReceiveMessage" | "dynamodb:GetItem") {
                let (parts, body) = response.into_parts();
                let body = bytes_of(body).await;
                let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
                (Response::from_parts(parts, Full::new(body)), answer)
            } else {
                (response, Value::Null)
            };
        let items = if action == "dynamodb:GetItem" {
            (cost::item_size(&answer["Item"]), 0)
        } else {
            items
        };
        self.calls.lock().expect("lock").push(Call {
            elapsed: started.elapsed(),
            forwarded: !response.headers().contains_key(ANSWERED_BY_PROXY),
            units: cost::billed_units(&action, &request, &answer, items),
            caller,
            action,
            stored_bytes,
        });
        response
    }

    /// The answer under the rules: forwarded, held, remembered or emulated.
    async fn respond(
        &self,
        target: &str,
        parts: hyper::http::request::Parts,
        body: Bytes,
        upstream: u16,
    ) -> Response<Full<Bytes>> {
        if target.starts_with("AmazonSQS.") {
            let latency = *self.sqs_latency.lock().expect("lock");
            if let Some(latency) = latency {
                tokio::time::sleep(latency).await;
            }
        }
        match target {
            "AmazonSQS.SendMessage" => {
                let hold = *self.hold_sends.lock().expect("lock");
                if let Some(hold) = hold {
                    tokio::time::sleep(hold).await;
                }
                self.send_message(parts, body, upstream).await
            }
            "AmazonSQS.StartMessageMoveTask" => self.move_messages(&body, upstream).await,
            // An eventually consistent read may miss a write made moments
            // ago; moto's never does. Such a read gets the worst AWS
            // allows for an item just written: no item.
            "DynamoDB_20120810.GetItem"
                if serde_json::from_slice::<Value>(&body).unwrap_or_default()["ConsistentRead"]
                    != Value::Bool(true) =>
            {
                json_answer(&json!({}))
            }
            "Firehose_20150804.CreateDeliveryStream" => {
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let stream = Stream::of(&request);
                self.streams
                    .lock()
                    .expect("lock")
                    .insert(stream.name.clone(), (stream, Vec::new()));
                forward(parts, body, upstream).await
            }
            "Firehose_20150804.PutRecord" | "Firehose_20150804.PutRecordBatch" => {
                self.hold_records(target, &body)
            }
            "AmazonSQS.ListMessageMoveTasks" => {
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let source = request["SourceArn"].as_str().unwrap_or_default();
                let results: Vec<Value> = self
                    .move_tasks
                    .lock()
                    .expect("lock")
                    .get(source)
                    .cloned()
                    .into_iter()
                    .collect();
                json_answer(&json!({"Results": results}))
            }
            "AmazonSQS.SendMessageBatch" => {
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let deduplicated = request["Entries"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e.get("MessageDeduplicationId").is_some()));
                if deduplicated {
                    return error(
                        "AWS.SimpleQueueService.UnsupportedOperation",
                        "the test proxy does not emulate deduplication in SendMessageBatch",
                    );
                }
                forward(parts, body, upstream).await
            }
            "AWSEvents.PutEvents" => {
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let size: usize = request["Entries"]
                    .as_array()
                    .map(|entries| entries.iter().map(cost::event_entry_size).sum())
                    .unwrap_or(0);
                if size > EVENT_BUS_LIMIT {
                    return error(
                        "ValidationException",
                        &format!(
                            "Total size of the entries in the request is over the limit ({size} bytes)"
                        ),
                    );
                }
                forward(parts, body, upstream).await
            }
            _ => forward(parts, body, upstream).await,
        }
    }

    async fn send_message(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
        upstream: u16,
    ) -> Response<Full<Bytes>> {
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let queue = request["QueueUrl"]
            .as_str()
            .and_then(|url| url.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        let Some(id) = request["MessageDeduplicationId"].as_str() else {
            return forward(parts, body, upstream).await;
        };
        let key = (queue, id.to_owned());
        if let Some((sent, first)) = self.deduplication.lock().expect("lock").get(&key)
            && sent.elapsed() < DEDUPLICATION_WINDOW
        {
            return Response::builder()
                .header("content-type", "application/x-amz-json-1.0")
                .header(ANSWERED_BY_PROXY, "deduplicated")
                .body(Full::new(first.clone()))
                .expect("response");
        }
        let response = forward(parts, body, upstream).await;
        if !response.status().is_success() {
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = bytes_of(body).await;
        self.deduplication
            .lock()
            .expect("lock")
            .insert(key, (Instant::now(), body.clone()));
        Response::from_parts(parts, Full::new(body))
    }
}

impl Rules {
    /// `PutRecord` and `PutRecordBatch`: the records kept for
    /// [`AwsRules::flush_streams`].
    fn hold_records(&self, target: &str, body: &[u8]) -> Response<Full<Bytes>> {
        use base64::Engine as _;
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let name = request["DeliveryStreamName"].as_str().unwrap_or_default();
        let records: Vec<&Value> = if target.ends_with("Batch") {
            request["Records"]
                .as_array()
                .map(|r| r.iter().collect())
                .unwrap_or_default()
        } else {
            vec![&request["Record"]]
        };
        let mut streams = self.streams.lock().expect("lock");
        let Some((_, held)) = streams.get_mut(name) else {
            return error(
                "ResourceNotFoundException",
                &format!("Firehose {name} not found."),
            );
        };
        let mut ids = Vec::new();
        for record in records {
            let data = base64::engine::general_purpose::STANDARD
                .decode(record["Data"].as_str().unwrap_or_default())
                .unwrap_or_default();
            held.push(Bytes::from(data));
            ids.push(json!({"RecordId": format!("record-{}", held.len())}));
        }
        if target.ends_with("Batch") {
            json_answer(&json!({"FailedPutCount": 0, "Encrypted": false, "RequestResponses": ids}))
        } else {
            json_answer(&json!({"RecordId": ids[0]["RecordId"], "Encrypted": false}))
        }
    }

    /// `StartMessageMoveTask`, done at once: every message of the source
    /// to the destination (or, as AWS does without one, to the queue whose
    /// redrive policy names the source), then the task is `COMPLETED`.
    async fn move_messages(&self, body: &[u8], upstream: u16) -> Response<Full<Bytes>> {
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let endpoint = format!("http://127.0.0.1:{upstream}");
        let url = |arn: &str| {
            let mut parts = arn.rsplit(':');
            let name = parts.next().unwrap_or_default();
            let account = parts.next().unwrap_or_default();
            format!("{endpoint}/{account}/{name}")
        };
        let source_arn = request["SourceArn"].as_str().unwrap_or_default().to_owned();
        let Some(destination_arn) = request["DestinationArn"].as_str() else {
            return error(
                "AWS.SimpleQueueService.UnsupportedOperation",
                "the test proxy moves only to a DestinationArn it is given",
            );
        };
        let (source, destination) = (url(&source_arn), url(destination_arn));
        let sqs = aws_sdk_sqs::Client::new(&crate::moto::sdk_config(&endpoint).await);
        let mut moved = 0_u64;
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&source)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await;
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(e) => return error("AWS.SimpleQueueService.NonExistentQueue", &e.to_string()),
            };
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let group = message
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                    })
                    .cloned();
                let mut send = sqs
                    .send_message()
                    .queue_url(&destination)
                    .message_body(message.body().unwrap_or_default())
                    .set_message_attributes(message.message_attributes().cloned());
                if destination.ends_with(".fifo") {
                    send = send
                        .set_message_group_id(group)
                        .set_message_deduplication_id(message.message_id().map(str::to_owned));
                }
                if let Err(e) = send.send().await {
                    return error("AWS.SimpleQueueService.InternalError", &e.to_string());
                }
                let _ = sqs
                    .delete_message()
                    .queue_url(&source)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await;
                moved += 1;
            }
        }
        let handle = format!("task-{}", self.move_tasks.lock().expect("lock").len() + 1);
        self.move_tasks.lock().expect("lock").insert(
            source_arn.clone(),
            json!({
                "TaskHandle": handle,
                "Status": "COMPLETED",
                "SourceArn": source_arn,
                "DestinationArn": destination_arn,
                "ApproximateNumberOfMessagesMoved": moved,
                "ApproximateNumberOfMessagesToMove": moved,
                "StartedTimestamp": 0
            }),
        );
        json_answer(&json!({"TaskHandle": handle}))
    }
}

/// The IAM action a request needs: from `x-amz-target` for the JSON
/// protocols (`AmazonSQS.SendMessage` is `sqs:SendMessage`), from the
/// method and the path-style path for S3.
fn iam_action(target: &str, parts: &hyper::http::request::Parts) -> String {
    iam_action_of(target, parts.method.as_str(), parts.uri.path())
}

/// [`iam_action`] from the request's `x-amz-target`, method and path.
pub fn iam_action_of(target: &str, method: &str, path: &str) -> String {
    if let Some((service, operation)) = target.split_once('.') {
        let service = match service {
            "AmazonSQS" => "sqs",
            "DynamoDB_20120810" => "dynamodb",
            "AWSEvents" => "events",
            "Firehose_20150804" => "firehose",
            other => &other.to_ascii_lowercase(),
        };
        return format!("{service}:{operation}");
    }
    let path = path.trim_start_matches('/');
    let object = path.split_once('/').is_some_and(|(_, key)| !key.is_empty());
    let operation = match (method, object) {
        ("PUT", true) => "PutObject",
        ("GET" | "HEAD", true) => "GetObject",
        ("DELETE", true) => "DeleteObject",
        ("GET", false) => "ListBucket",
        ("PUT", false) => "CreateBucket",
        (method, _) => return format!("s3:{method} {path}"),
    };
    format!("s3:{operation}")
}

/// The key of the item a DynamoDB write names: its `Key`, or for a
/// `PutItem` the `id` of its `Item` (the stack's tables are keyed by `id`).
fn item_key(request: &Value) -> Value {
    match request.get("Key") {
        Some(key) => key.clone(),
        None => json!({"id": request["Item"]["id"]}),
    }
}

/// The size of the DynamoDB item a write names (by its `Key`, or the
/// `id` of its `Item`), read from moto with a consistent `GetItem`; 0 when
/// there is none.
async fn stored_item_size(
    request: &Value,
    authorization: Option<&hyper::header::HeaderValue>,
    upstream: u16,
) -> usize {
    let key = item_key(request);
    let mut get = hyper::Request::post("/")
        .header("host", format!("127.0.0.1:{upstream}"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDB_20120810.GetItem");
    if let Some(authorization) = authorization {
        get = get.header(hyper::header::AUTHORIZATION, authorization);
    }
    let body = json!({"TableName": request["TableName"], "Key": key, "ConsistentRead": true});
    let (parts, _) = get.body(()).expect("request").into_parts();
    let response = forward(parts, Bytes::from(body.to_string()), upstream).await;
    let body = bytes_of(response.into_body()).await;
    let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
    cost::item_size(&answer["Item"])
}

/// A response's whole body (empty if it could not be read).
async fn bytes_of(body: Full<Bytes>) -> Bytes {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// An AWS JSON-protocol answer.
fn json_answer(body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "application/x-amz-json-1.0")
        .header(ANSWERED_BY_PROXY, "emulated")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// An AWS JSON-protocol error answer.
fn error(code: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(400)
        .header("content-type", "application/x-amz-json-1.0")
        .header(ANSWERED_BY_PROXY, "refused")
        .header("x-amzn-query-error", format!("{code};Sender"))
        .body(Full::new(Bytes::from(
            json!({"__type": code, "message": message}).to_string(),
        )))
        .expect("response")
}
