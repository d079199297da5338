//! An HTTP proxy in front of moto that keeps AWS rules moto does not, so that a test passes only where AWS would let it.
//!
//! - **DynamoDB writes to an item are atomic.** DynamoDB evaluates a
//!   condition expression and applies the write as one step: of two
//!   conditional writes racing on one item, the second sees the first's
//!   result. moto's threaded server evaluates and writes without a lock, so
//!   two racing writers can both pass their condition. The proxy forwards
//!   DynamoDB's write operations one at a time.
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
//! - **EventBridge takes at most 1 MB of entries in one `PutEvents`**,
//!   counted as AWS counts them (`Time` 14 bytes, `Source`, `DetailType`,
//!   `Detail` and each of `Resources` in UTF-8); moto takes any size. Over
//!   the limit the proxy answers 400 `ValidationException`.
//!
//! It also records, per caller, the IAM action of every request it sees
//! ([`AwsRules::actions`]): the caller is the SDK's application id
//! (`AWS_SDK_UA_APP_ID`, which the SDK writes into its user agent as
//! `app/{id}`), so a test can compare what each function called with what
//! its role grants.
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

use crate::flaky_events::forward;

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
    rules: Arc<Rules>,
    _server: tokio::task::JoinHandle<()>,
}

impl AwsRules {
    /// Forwards a free loopback port to moto at `upstream`.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let rules = Arc::new(Rules::default());
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

    /// Holds every `SendMessage` this long before forwarding it, as a slow
    /// network would; `None` stops holding.
    pub fn hold_sends(&self, hold: Option<Duration>) {
        *self.rules.hold_sends.lock().expect("lock") = hold;
    }
}

/// What the proxy keeps between requests.
#[derive(Debug, Default)]
struct Rules {
    /// Held while a DynamoDB write is forwarded.
    writes: tokio::sync::Mutex<()>,
    /// The first answer to each `(queue, deduplication id)`, and when.
    deduplication: Mutex<HashMap<(String, String), (Instant, Bytes)>>,
    /// How long each `SendMessage` waits before it is forwarded.
    hold_sends: Mutex<Option<Duration>>,
    /// Message move tasks, by source ARN: the last one's answer.
    move_tasks: Mutex<HashMap<String, Value>>,
    /// IAM actions seen, by caller.
    actions: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Rules {
    async fn answer(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
        upstream: u16,
    ) -> Response<Full<Bytes>> {
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|t| t.to_str().ok())
            .unwrap_or_default()
            .to_owned();
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
            .entry(caller)
            .or_default()
            .insert(iam_action(&target, &parts));
        match target.as_str() {
            t if DYNAMODB_WRITES.contains(&t) => {
                let _one_at_a_time = self.writes.lock().await;
                forward(parts, body, upstream).await
            }
            "AmazonSQS.SendMessage" => {
                let hold = *self.hold_sends.lock().expect("lock");
                if let Some(hold) = hold {
                    tokio::time::sleep(hold).await;
                }
                self.send_message(parts, body, upstream).await
            }
            "AmazonSQS.StartMessageMoveTask" => self.move_messages(&body, upstream).await,
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
                    .map(|entries| entries.iter().map(entry_size).sum())
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
                .body(Full::new(first.clone()))
                .expect("response");
        }
        let response = forward(parts, body, upstream).await;
        if !response.status().is_success() {
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        self.deduplication
            .lock()
            .expect("lock")
            .insert(key, (Instant::now(), body.clone()));
        Response::from_parts(parts, Full::new(body))
    }
}

impl Rules {
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
    if let Some((service, operation)) = target.split_once('.') {
        let service = match service {
            "AmazonSQS" => "sqs",
            "DynamoDB_20120810" => "dynamodb",
            "AWSEvents" => "events",
            other => &other.to_ascii_lowercase(),
        };
        return format!("{service}:{operation}");
    }
    let path = parts.uri.path().trim_start_matches('/');
    let object = path.split_once('/').is_some_and(|(_, key)| !key.is_empty());
    let operation = match (parts.method.as_str(), object) {
        ("PUT", true) => "PutObject",
        ("GET" | "HEAD", true) => "GetObject",
        ("DELETE", true) => "DeleteObject",
        ("GET", false) => "ListBucket",
        ("PUT", false) => "CreateBucket",
        (method, _) => return format!("s3:{method} {path}"),
    };
    format!("s3:{operation}")
}

/// An AWS JSON-protocol answer.
fn json_answer(body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// The size EventBridge counts for one `PutEvents` entry.
fn entry_size(entry: &Value) -> usize {
    let text = |field: &str| entry[field].as_str().map_or(0, str::len);
    let time = if entry.get("Time").is_some() { 14 } else { 0 };
    let resources: usize = entry["Resources"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).map(str::len).sum())
        .unwrap_or(0);
    time + text("Source") + text("DetailType") + text("Detail") + resources
}

/// An AWS JSON-protocol error answer.
fn error(code: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(400)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-query-error", format!("{code};Sender"))
        .body(Full::new(Bytes::from(
            json!({"__type": code, "message": message}).to_string(),
        )))
        .expect("response")
}
