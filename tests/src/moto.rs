//! A real SQS- and Secrets Manager-compatible server: moto in server mode, on a free loopback port.
//!
//! Needs `pip install "moto[server]"`; the test command installs it. Each
//! [`Moto`] is its own server process, killed when dropped.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use intercom_fixtures::sqs;
use serde_json::Value;
use tokio::process::{Child, Command};

/// Credentials and region moto accepts; nothing here reaches AWS.
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

/// The environment a command-line tool (`intercom-dev`) needs to reach the
/// AWS stand-in at `endpoint` with the SDK's usual settings, and nothing
/// from the machine's own AWS configuration: pass to `envs` after
/// `env_clear`.
pub fn cli_env(endpoint: &str) -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// The SDK configuration for moto (or a proxy in front of it) at `endpoint`.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "moto",
        ))
        .load()
        .await
}

/// `python3 -m moto.server`, with its request recorder made safe for
/// concurrent requests: moto's threaded server appends each recorded
/// request to the file in as many writes as the entry takes (8 KB each),
/// so two large requests recorded at once interleave into one unreadable
/// line and both are lost to the count (`metered`). One lock around each
/// entry keeps them whole.
const SERVER: &str = "\
import sys, threading
from moto.moto_api._internal.recorder.models import Recorder
lock = threading.Lock()
record = Recorder._record_request
def record_whole(self, *args, **kwargs):
    with lock:
        return record(self, *args, **kwargs)
Recorder._record_request = record_whole
from moto.server import main
main(sys.argv[1:])
";

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub async fn start() -> Self {
        let port = free_port();
        let mut moto = Self { child: None, port };
        moto.restart().await;
        moto
    }

    /// The endpoint URL for the SDKs (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Freezes the server process (SIGSTOP): connections are accepted by the
    /// kernel but nothing is answered, as when a server hangs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT); it then answers what waited.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().and_then(Child::id).expect("moto runs");
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Kills the server; its state is lost.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port (after [`Moto::stop`]).
    pub async fn restart(&mut self) {
        self.stop().await;
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .args([
                "-c",
                SERVER,
                "-H",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .env("MOTO_RECORDER_FILEPATH", self.recording_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 -m moto.server (pip install \"moto[server]\")");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto did not start on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where moto records requests once [`Moto::start_recording`] was called.
    fn recording_path(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "moto-recording-{}-{}",
            std::process::id(),
            self.port
        ))
    }

    /// From now on moto records every request it is sent (its recorder:
    /// method, URL, headers and body of each).
    pub async fn start_recording(&self) {
        let _ = std::fs::remove_file(self.recording_path());
        self.moto_api("POST", "/moto-api/recorder/start-recording")
            .await;
    }

    /// Every request recorded since [`Moto::start_recording`], in order.
    pub async fn recording(&self) -> Vec<Value> {
        self.moto_api("POST", "/moto-api/recorder/stop-recording")
            .await;
        std::fs::read_to_string(self.recording_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// One request to moto's own API.
    async fn moto_api(&self, method: &str, path: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("moto answers");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
            "{path}: {answer}"
        );
    }

    /// SDK configuration pointing at this server.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(&self.endpoint()).await
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }

    /// Creates an idempotency table as the stack does (string partition key
    /// `id`, on demand) and returns its name.
    pub async fn create_idempotency_table(&self, name: &str) -> String {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        self.dynamodb()
            .await
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .send()
            .await
            .expect("create table");
        name.to_owned()
    }

    /// The idempotency table's item under `id`, as strings (numbers too).
    pub async fn idempotency_item(
        &self,
        table: &str,
        id: &str,
    ) -> Option<std::collections::HashMap<String, String>> {
        let item = self
            .dynamodb()
            .await
            .get_item()
            .table_name(table)
            .key(
                "id",
                aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item?;
        Some(
            item.into_iter()
                .filter_map(|(name, value)| {
                    let text = value.as_s().or(value.as_n()).ok()?.clone();
                    Some((name, text))
                })
                .collect(),
        )
    }

    /// An S3 client addressing buckets by path, as a loopback server needs.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub async fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk_config().await)
    }

    /// Creates a bucket and returns its name.
    pub async fn create_bucket(&self, name: &str) -> String {
        self.s3()
            .await
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create bucket");
        name.to_owned()
    }

    /// Every object of `bucket`: key, bytes and user metadata.
    pub async fn objects(
        &self,
        bucket: &str,
    ) -> Vec<(String, Vec<u8>, std::collections::HashMap<String, String>)> {
        let s3 = self.s3().await;
        let mut keys = Vec::new();
        let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.expect("list objects");
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        let mut objects = Vec::new();
        for key in keys {
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("get object");
            let metadata = object.metadata().cloned().unwrap_or_default();
            let bytes = object.body.collect().await.expect("read object").to_vec();
            objects.push((key, bytes, metadata));
        }
        objects
    }

    /// Creates an event bus with no rule on it (as the template's, whose
    /// only rule is the example, off by default), and returns its name.
    pub async fn create_event_bus(&self, bus: &str) -> String {
        self.eventbridge()
            .await
            .create_event_bus()
            .name(bus)
            .send()
            .await
            .expect("create event bus");
        bus.to_owned()
    }

    /// Creates an event bus with a rule that sends every event from `source`
    /// to the SQS queue `queue_url`, and returns the bus name.
    pub async fn create_bus_to_queue(&self, bus: &str, source: &str, queue_url: &str) -> String {
        self.create_event_bus(bus).await;
        let events = self.eventbridge().await;
        events
            .put_rule()
            .name("all-intercom")
            .event_bus_name(bus)
            .event_pattern(serde_json::json!({ "source": [source] }).to_string())
            .send()
            .await
            .expect("put rule");
        let arn = self
            .sqs()
            .await
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        events
            .put_targets()
            .rule("all-intercom")
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("put targets");
        bus.to_owned()
    }

    /// A Firehose stream configured as the template's `ArchiveStream`
    /// (dynamic partitioning by each line's `app_id`, `topic` and `dt`,
    /// gzip) writing the stream layout into `bucket` under `prefix`,
    /// created through `endpoint` (the [`crate::aws_rules::AwsRules`]
    /// proxy, which delivers it as Firehose does). Returns its name.
    pub async fn create_archive_stream(
        endpoint: &str,
        name: &str,
        bucket: &str,
        prefix: &str,
    ) -> String {
        use aws_sdk_firehose::types::{
            CompressionFormat, DynamicPartitioningConfiguration,
            ExtendedS3DestinationConfiguration, ProcessingConfiguration, Processor,
            ProcessorParameter, ProcessorParameterName, ProcessorType,
        };
        let parameter = |name, value: &str| {
            ProcessorParameter::builder()
                .parameter_name(name)
                .parameter_value(value)
                .build()
                .expect("parameter")
        };
        let destination = ExtendedS3DestinationConfiguration::builder()
            .bucket_arn(format!("arn:aws:s3:::{bucket}"))
            .role_arn("arn:aws:iam::123456789012:role/archive-stream")
            .prefix(intercom_webhook::destination::stream_prefix(prefix))
            .compression_format(CompressionFormat::Gzip)
            .dynamic_partitioning_configuration(
                DynamicPartitioningConfiguration::builder()
                    .enabled(true)
                    .build(),
            )
            .processing_configuration(
                ProcessingConfiguration::builder()
                    .enabled(true)
                    .processors(
                        Processor::builder()
                            .r#type(ProcessorType::MetadataExtraction)
                            .parameters(parameter(
                                ProcessorParameterName::MetadataExtractionQuery,
                                "{app_id: .app_id, topic: .topic, dt: .dt}",
                            ))
                            .parameters(parameter(
                                ProcessorParameterName::JsonParsingEngine,
                                "JQ-1.6",
                            ))
                            .build()
                            .expect("processor"),
                    )
                    .build(),
            )
            .build()
            .expect("destination");
        aws_sdk_firehose::Client::new(&sdk_config(endpoint).await)
            .create_delivery_stream()
            .delivery_stream_name(name)
            .extended_s3_destination_configuration(destination)
            .send()
            .await
            .expect("create the archive stream");
        name.to_owned()
    }

    /// The client secret in Secrets Manager, as the stack keeps it; its ARN.
    pub async fn create_client_secret(&self) -> String {
        self.create_secret("intercom/client-secret", crate::fixtures::TEST_SECRET)
            .await
    }

    /// An Intercom access token in Secrets Manager, as the stack keeps
    /// `IntercomAccessToken`; its ARN.
    pub async fn create_access_token(&self, token: &str) -> String {
        self.create_secret("intercom/access-token", token).await
    }

    async fn create_secret(&self, name: &str, value: &str) -> String {
        self.secrets_manager()
            .await
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("create secret")
            .arn
            .expect("arn")
    }

    pub async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    /// Creates a queue (FIFO when `name` ends in `.fifo`) and returns its URL.
    pub async fn create_queue(&self, name: &str) -> String {
        let mut request = self.sqs().await.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            request = request.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
        }
        request
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url")
    }

    /// Starts receiving and deleting `queue_url`'s messages in the background,
    /// as a consumer would, until [`Drainer::finish`]. moto's receive costs
    /// time in proportion to the queue's length (it recounts the queue for
    /// every message it returns), so load tests keep the queue short this way.
    pub async fn start_draining(&self, queue_url: &str) -> Drainer {
        let done = Arc::new(AtomicBool::new(false));
        let sqs = self.sqs().await;
        let queue_url = queue_url.to_owned();
        let stop = Arc::clone(&done);
        let task = tokio::spawn(async move {
            let mut messages = Vec::new();
            loop {
                let finishing = stop.load(Ordering::SeqCst);
                let batch =
                    receive_and_delete(&sqs, &queue_url, if finishing { 0 } else { 1 }).await;
                if batch.is_empty() && finishing {
                    return messages;
                }
                messages.extend(batch);
            }
        });
        Drainer { done, task }
    }

    /// Receives and deletes every message now in the queue (with all
    /// attributes).
    pub async fn drain(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let sqs = self.sqs().await;
        let mut messages = Vec::new();
        loop {
            let batch = receive_and_delete(&sqs, queue_url, 0).await;
            if batch.is_empty() {
                return messages;
            }
            messages.extend(batch);
        }
    }
}

/// A background consumer started by [`Moto::start_draining`].
#[derive(Debug)]
pub struct Drainer {
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<aws_sdk_sqs::types::Message>>,
}

impl Drainer {
    /// Receives what is left, stops, and returns every message received.
    pub async fn finish(self) -> Vec<aws_sdk_sqs::types::Message> {
        self.done.store(true, Ordering::SeqCst);
        self.task.await.expect("drainer")
    }
}

/// One receive of up to 10 messages (all attributes), deleted at once.
/// Deleting matters for FIFO queues, which hold back a group's later
/// messages while earlier ones are in flight.
async fn receive_and_delete(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait_seconds: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    let batch = receive(sqs, queue_url, wait_seconds, 300).await;
    delete(sqs, queue_url, &batch).await;
    batch
}

/// One receive of up to 10 messages with all their attributes, hidden from
/// other consumers for `visibility_seconds`.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait_seconds: i32,
    visibility_seconds: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .message_attribute_names("All")
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .visibility_timeout(visibility_seconds)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default()
}

/// Deletes up to 10 received `messages` in one call.
pub async fn delete<'m>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: impl IntoIterator<Item = &'m aws_sdk_sqs::types::Message>,
) {
    let entries: Vec<_> = messages
        .into_iter()
        .enumerate()
        .filter_map(|(i, message)| {
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(message.receipt_handle()?)
                .build()
                .ok()
        })
        .collect();
    if entries.is_empty() {
        return;
    }
    let deleted = sqs
        .delete_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .expect("delete");
    assert!(deleted.failed.is_empty(), "delete failed: {deleted:?}");
}

/// The SQS event Lambda would deliver for `messages` received from `queue_arn`.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Value {
    let records = messages.iter().map(sqs::record_of_received).collect();
    serde_json::to_value(sqs::event(records, queue_arn)).expect("serialisable")
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
