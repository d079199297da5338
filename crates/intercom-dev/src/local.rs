//! `intercom-dev serve`: the receiver and the processor on one machine, with the Lambdas' own code.
//!
//! HTTP requests to 127.0.0.1 go through [`webhook_receiver::handler::Receiver`]
//! exactly as API Gateway events do; what it queues goes to an embedded queue
//! (or to the SQS queue `QUEUE_URL` names) and from there, as SQS records,
//! through [`topic_processor::batch`] with the registry of `handlers.rs`.
//! Each notification's effects run once: the same notification sent twice
//! is a `duplicate` (idempotency in memory here, or in the DynamoDB table
//! `IDEMPOTENCY_TABLE` names). Freshness is on too (`FRESHNESS`, `tag`
//! unless set otherwise, in memory or in that table): a notification older
//! than one already processed about the same object says so.
//! One readable line is printed per notification and per rejected request;
//! under a notification's line, what its handler logged (`tracing::info!`
//! and the like, with their fields; `RUST_LOG` filters, `info` by default).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use intercom_fixtures::sqs;
use intercom_mock::{Call, MockIntercom};
use intercom_webhook::dispatch::Outcome;
use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::{self, QueueMessage, attribute};
use intercom_webhook::signature::Verifier;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use topic_processor::Invocation;
use topic_processor::batch::{self, RecordReport};
use topic_processor::config::FreshnessMode;
use topic_processor::freshness::Freshness;
use topic_processor::idempotency::{Idempotency, MemoryStore, Store};
use topic_processor::processor::Processor;
use webhook_receiver::handler::Receiver;
use webhook_receiver::http_event::{HttpRequest, Origin};
use webhook_receiver::queue::{Queue, QueueError, SqsQueue};
use webhook_receiver::secrets::{Secrets, SecretsManagerFetcher};

use crate::handler_logs::HandlerLogs;

/// Where the local receiver queues: in memory, or a real SQS queue.
#[derive(Debug)]
pub enum LocalQueue {
    Embedded(mpsc::UnboundedSender<QueueMessage<'static>>),
    Sqs(SqsQueue),
}

impl Queue for LocalQueue {
    async fn send(
        &self,
        message: &QueueMessage<'_>,
        trace_header: Option<&str>,
    ) -> Result<(), QueueError> {
        match self {
            LocalQueue::Embedded(sender) => sender
                .send(message.clone().into_owned())
                .map_err(|_| QueueError("the embedded queue is closed".into())),
            LocalQueue::Sqs(queue) => queue.send(message, trace_header).await,
        }
    }
}

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// 0 picks a free port.
    pub port: u16,
    /// Client secrets, comma-separated.
    pub secret: String,
    /// An SQS queue to use instead of the embedded one.
    pub queue_url: Option<String>,
    /// Point handlers at a local mock of Intercom's API, and print each
    /// call they make.
    pub intercom_mock: bool,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The processor of `handlers.rs`, configured from the environment as the
/// Lambda is (so `EVENT_BUS_NAME` and `ARCHIVE_BUCKET` work against a local
/// moto too), its notifications' effects run once and their freshness
/// checked: in the DynamoDB table `IDEMPOTENCY_TABLE` names, or in memory
/// for as long as `serve` runs. Freshness is `FRESHNESS`, `tag` when unset,
/// so that an out-of-order notification shows.
async fn local_processor(
    intercom_mock: Option<&str>,
) -> Result<Processor, Box<dyn std::error::Error + Send + Sync>> {
    let app = topic_processor::handlers::App::from_lookup(|name| std::env::var(name).ok())?;
    let registry = topic_processor::handlers::registry(app);
    registry.check()?;
    let freshness = match std::env::var(topic_processor::config::FRESHNESS) {
        Ok(mode) => FreshnessMode::parse(Some(&mode))?,
        Err(_) => FreshnessMode::Tag,
    };
    let with_table = std::env::var_os(topic_processor::config::IDEMPOTENCY_TABLE).is_some();
    let config = topic_processor::config::Config::from_lookup(|name| match name {
        topic_processor::config::FUNCTION_NAME => Some("intercom-dev".to_owned()),
        topic_processor::config::FRESHNESS if with_table => Some(freshness.name().to_owned()),
        topic_processor::config::FRESHNESS => None,
        "INTERCOM_ACCESS_TOKEN" if intercom_mock.is_some() => Some("intercom-dev".to_owned()),
        "INTERCOM_ACCESS_TOKEN_ARN" if intercom_mock.is_some() => None,
        "INTERCOM_API_URL" => intercom_mock
            .map(str::to_owned)
            .or_else(|| std::env::var("INTERCOM_API_URL").ok()),
        other => std::env::var(other).ok(),
    })?;
    let processor = topic_processor::lambda::processor_from_env(registry, &config).await?;
    if processor.idempotency.is_some() {
        return Ok(processor);
    }
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let ttl = Duration::from_secs(86_400);
    let processor =
        processor.with_idempotency(Idempotency::new(Arc::clone(&store), "intercom-dev", ttl));
    Ok(match freshness {
        FreshnessMode::Off => processor,
        mode => processor.with_freshness(Freshness::new(mode, store, "intercom-dev", ttl)),
    })
}

/// `FRESHNESS` in the deployed stack unless its `Freshness` parameter says
/// otherwise (infra/template.yaml); `serve` says so when it differs.
pub const STACK_FRESHNESS: &str = "off";

/// A local invocation as the deployed processor gets one: a minute, of
/// which the last 1.5 s are kept for the answer.
fn local_invocation(request_id: &str) -> Invocation {
    Invocation::lasting(
        request_id,
        Duration::from_secs(60),
        Duration::from_millis(1500),
    )
}

/// Serves until Ctrl-C (or the process is killed).
pub async fn serve(options: ServeOptions) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let verifier =
        Verifier::from_comma_separated(&options.secret).map_err(|e| format!("--secret: {e}"))?;
    let logs = HandlerLogs::default();
    logs.install(say);
    // Kept for as long as `serve` runs.
    let mock = match options.intercom_mock {
        true => {
            let mock = MockIntercom::start().await;
            mock.on_call(|call| say(&intercom_call_line(call)));
            Some(Arc::new(mock))
        }
        false => None,
    };
    let processor = Arc::new(local_processor(mock.as_ref().map(|m| m.url.as_str())).await?);
    let (queue, mode) = match &options.queue_url {
        Some(url) => {
            let sdk = webhook_receiver::queue::sdk_config().await;
            tokio::spawn(consume_sqs(
                aws_sdk_sqs::Client::new(&sdk),
                url.clone(),
                Arc::clone(&processor),
                mock.clone(),
                logs,
            ));
            (
                LocalQueue::Sqs(SqsQueue::new(&sdk, url.clone())),
                format!("SQS queue {url}"),
            )
        }
        None => {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(consume_embedded(
                receiver,
                Arc::clone(&processor),
                mock.clone(),
                logs,
            ));
            (
                LocalQueue::Embedded(sender),
                "an embedded queue (FIFO semantics, in memory)".to_owned(),
            )
        }
    };
    let fifo = options
        .queue_url
        .as_deref()
        .is_none_or(|url| url.ends_with(".fifo"));
    let receiver: Arc<Receiver<LocalQueue, SecretsManagerFetcher>> = Arc::new(Receiver {
        queue,
        secrets: Secrets::fixed(verifier),
        fifo,
        allowed_sources: None,
        allowed_app_ids: None,
        forward_ping: false,
    });

    let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
    let address = listener.local_addr()?;
    say(&format!(
        "intercom-dev: listening on http://{address}/webhook"
    ));
    say(&format!("  client secret: {}", options.secret));
    say(&format!("  queue:         {mode}"));
    let freshness = processor
        .freshness
        .as_ref()
        .map_or("off", |freshness| freshness.mode.name());
    say(&format!(
        "  freshness:     {freshness} (FRESHNESS; try `intercom-dev send --out-of-order ticket.state.updated`)"
    ));
    if freshness != STACK_FRESHNESS {
        say(&format!(
            "                 the deployed stack's default is {STACK_FRESHNESS} (its Freshness parameter): FRESHNESS={STACK_FRESHNESS} here to match"
        ));
    }
    say(&format!(
        "  intercom api:  {}",
        match (&mock, processor.intercom.is_some()) {
            (Some(mock), _) => format!(
                "a local mock at {} (each request checked against Intercom's OpenAPI description; handlers' calls printed)",
                mock.url
            ),
            (None, true) => "Intercom itself (INTERCOM_ACCESS_TOKEN)".to_owned(),
            (None, false) =>
                "none: handlers only log what they would do (--intercom-mock to try their calls)"
                    .to_owned(),
        }
    ));
    say(
        "  send a sample: intercom-dev send --url http://ADDRESS/webhook conversation.user.created"
            .replace("ADDRESS", &address.to_string())
            .as_str(),
    );

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let receiver = Arc::clone(&receiver);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| answer(Arc::clone(&receiver), peer, request));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            _ = tokio::signal::ctrl_c() => {
                say("intercom-dev: stopped");
                return Ok(());
            }
        }
    }
}

async fn answer(
    receiver: Arc<Receiver<LocalQueue, SecretsManagerFetcher>>,
    peer: SocketAddr,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let method = request.method().as_str().to_owned();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let request = HttpRequest {
        origin: Origin::ApiGatewayV2,
        method,
        headers,
        body: Ok(body),
        source_ip: Some(peer.ip()),
    };
    let response = receiver.handle(&request, None).await;
    if response.status >= 400 {
        say(&format!(
            "✗ rejected  {} {} from {}: {}",
            response.status,
            request.method,
            peer.ip(),
            response.body.as_deref().unwrap_or_default()
        ));
    }
    let mut builder = hyper::Response::builder().status(response.status);
    if response.body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in &response.headers {
        builder = builder.header(*name, *value);
    }
    let body = Full::new(Bytes::from(response.body.unwrap_or_default()));
    Ok(builder
        .body(body)
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()))))
}

static MESSAGE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// "conversation 2154…" for a record, from its envelope.
fn subject(record: &SqsMessage) -> String {
    let encoding = record
        .message_attributes
        .get(attribute::CONTENT_ENCODING)
        .and_then(|a| a.string_value.clone());
    let Ok(bytes) = queue_message::decode_body(
        record.body.as_deref().unwrap_or_default(),
        encoding.as_deref(),
    ) else {
        return "-".into();
    };
    Envelope::parse_unverified(&bytes)
        .ok()
        .and_then(|e| e.subject().map(|(kind, id)| format!("{kind} {id}")))
        .unwrap_or_else(|| "-".into())
}

fn report_line(report: &RecordReport, subject: &str) -> String {
    let mark = match report.outcome {
        Outcome::Processed => "✓",
        Outcome::Unhandled | Outcome::Duplicate | Outcome::Stale | Outcome::OwnAction => "·",
        Outcome::Failed(_) => "✗",
    };
    let detail = match &report.outcome {
        Outcome::Failed(failure) => format!(" ({failure})"),
        Outcome::Unhandled => " (no handler in handlers.rs)".to_owned(),
        Outcome::Duplicate => " (already processed)".to_owned(),
        Outcome::Stale => " (a newer notification about it was processed: not handled)".to_owned(),
        Outcome::OwnAction => " (the echo of the app's own action: not handled)".to_owned(),
        Outcome::Processed if report.stale => {
            " (stale: a newer notification about it was processed first)".to_owned()
        }
        _ => String::new(),
    };
    format!(
        "{mark} {:<10} {} {} {}{detail}",
        report.outcome.name(),
        report.topic.as_deref().unwrap_or("?"),
        subject,
        report.notification_id.as_deref().unwrap_or("-"),
    )
}

/// With the mock, keeps the conversation `record` is about
/// ([`MockIntercom::learn`]).
fn teach(mock: Option<&MockIntercom>, record: &SqsMessage) {
    let Some(mock) = mock else { return };
    if let Some(notification) = record
        .body
        .as_deref()
        .and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok())
    {
        mock.learn(&notification);
    }
}

/// Prints a record's line, then what was logged while it was processed.
fn print_report(report: &RecordReport, subject: &str, logs: &HandlerLogs) {
    say(&report_line(report, subject));
    for line in logs.take(&report.message_id) {
        say(&line);
    }
}

async fn consume_embedded(
    mut receiver: mpsc::UnboundedReceiver<QueueMessage<'static>>,
    processor: Arc<Processor>,
    mock: Option<Arc<MockIntercom>>,
    logs: HandlerLogs,
) {
    while let Some(queued) = receiver.recv().await {
        let id = format!(
            "local-{:06}",
            MESSAGE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1
        );
        let record = sqs::record_of(&id, &queued);
        teach(mock.as_deref(), &record);
        let subject = subject(&record);
        let invocation = local_invocation(&id);
        for report in batch::run(&processor, vec![record], &invocation, 1).await {
            print_report(&report, &subject, &logs);
        }
    }
}

/// Most records Lambda hands a function in one batch from a FIFO queue.
pub const FIFO_BATCH_MOST: usize = 10;

/// Receives and deletes every message now in `queue_url` (on a FIFO queue
/// the first [`FIFO_BATCH_MOST`], as Lambda's batch from a FIFO queue
/// holds at most that many, in group order) and returns, as JSON, the SQS
/// event Lambda would hand the processor for them, and whether messages
/// were left. Each receive long-polls a second, so an empty answer means
/// the queue is empty (a short poll may miss messages).
pub async fn drain_to_event(queue_url: &str) -> Result<(String, bool), String> {
    // The SDK's own settings, not the receiver's (whose operation timeout
    // is cut for its 3-second answers, shorter than a long poll may take).
    let sqs = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    );
    let arn = queue_arn(&sqs, queue_url).await?;
    let most = if queue_url.ends_with(".fifo") {
        FIFO_BATCH_MOST
    } else {
        usize::MAX
    };
    let mut records = Vec::new();
    while records.len() < most {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .wait_time_seconds(1)
            .max_number_of_messages(i32::try_from((most - records.len()).min(10)).unwrap_or(10))
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in &messages {
            records.push(sqs::record_of_received(message));
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
            }
        }
    }
    let full = records.len() >= most;
    serde_json::to_string(&sqs::event(records, &arn))
        .map(|event| (event, full))
        .map_err(|e| e.to_string())
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<String, String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "{queue_url}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| format!("{queue_url} has no QueueArn"))
}

async fn consume_sqs(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    processor: Arc<Processor>,
    mock: Option<Arc<MockIntercom>>,
    logs: HandlerLogs,
) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                say(&format!(
                    "✗ receiving from SQS failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(error)
                ));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut records = Vec::with_capacity(messages.len());
        let mut handles = std::collections::HashMap::new();
        for message in &messages {
            let record = sqs::record_of_received(message);
            teach(mock.as_deref(), &record);
            records.push(record);
            if let (Some(id), Some(handle)) = (message.message_id(), message.receipt_handle()) {
                handles.insert(id.to_owned(), handle.to_owned());
            }
        }
        let subjects: Vec<String> = records.iter().map(subject).collect();
        let invocation = local_invocation(&format!(
            "local-batch-{:06}",
            MESSAGE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1
        ));
        for (report, subject) in batch::run(&processor, records, &invocation, 8)
            .await
            .iter()
            .zip(subjects)
        {
            print_report(report, &subject, &logs);
            // As Lambda does with ReportBatchItemFailures: delete all but the failed.
            if !matches!(report.outcome, Outcome::Failed(_))
                && let Some(handle) = handles.get(&report.message_id)
            {
                let _ = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}

/// The line `serve` prints for a handler's call to the mock.
fn intercom_call_line(call: &Call) -> String {
    let (mark, why) = match &call.violation {
        None => ("✓", String::new()),
        Some(why) => ("✗", format!(" (Intercom's description refuses it: {why})")),
    };
    let body = call
        .body
        .as_ref()
        .map(|b| format!(" {b}"))
        .unwrap_or_default();
    format!(
        "  {mark} intercom {} {} → {}{why}{body}",
        call.method, call.path, call.status
    )
}
