//! The handler test kit: an `Event` for any topic from a sample or a file, run through the processor with Intercom's mock and an in-memory step log, and what it did.
//!
//! In this crate's tests it is `crate::testing`; from another crate, turn
//! on the `testing` feature (`topic-processor = { path = "…", features =
//! ["testing"] }` under `[dev-dependencies]`). A test reads:
//!
//! ```ignore
//! let kit = Kit::new(registry(App::default())).await;
//! let run = kit.run(&TestEvent::sample(Topic::ConversationUserCreated)).await;
//! assert_eq!(run.outcome, Outcome::Processed);
//! assert_eq!(run.steps, ["tag-refund", "note-refund"]);
//! assert_eq!(run.calls, ["POST /tags", "GET /me", "POST /conversations/215473853299345/tags", "POST /conversations/215473853299345/reply"]);
//! ```
//!
//! - [`TestEvent`]: a notification, from [`TestEvent::sample`] (the sample
//!   `intercom-dev sample TOPIC` prints), [`TestEvent::from_file`] or
//!   [`TestEvent::from_json`]; [`TestEvent::id`], [`TestEvent::created_at`]
//!   and [`TestEvent::with`] (any field of the item) change it.
//! - [`Kit`]: the processor as deployed with idempotency on (each
//!   notification's handler and steps in memory, as the DynamoDB table
//!   keeps them), its Intercom client pointed at a local mock of Intercom's
//!   API ([`Kit::intercom`]: every request checked against Intercom's
//!   description and answered with its examples; faults on request).
//!   [`Kit::run`] hands it one notification as an SQS record; running the
//!   same event again is a retry: after a failure, SQS's (the handler runs
//!   again; its completed steps do not), after success, Intercom's (a
//!   `duplicate`: nothing runs).
//! - [`Run`]: what one delivery did: its outcome, the steps it completed,
//!   the calls it made to Intercom.
//! - [`Recorder`]: an HTTP endpoint of yours on loopback, remembering each
//!   request, answering as told: for handlers that call your services
//!   ([`crate::endpoint::Endpoint`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intercom_api::{ApiSettings, TokenSource};
use intercom_fixtures::sqs::{Received, record};
use intercom_webhook::dispatch::{BoxFuture, Failure, Outcome, Registry, StepState};
use intercom_webhook::topic::Topic;
use serde_json::Value;

use crate::Invocation;
use crate::config::FreshnessMode;
use crate::freshness::Freshness;
use crate::idempotency::{
    Finished, Idempotency, LockItem, MemoryStore, Newest, Store, StoreError, Taken,
};
use crate::intercom::IntercomApi;
use crate::processor::Processor;

/// Faults Intercom's mock injects on request ([`Kit::intercom`]).
pub use intercom_mock::{Fault, MockIntercom};

/// A notification to hand a handler.
#[derive(Debug, Clone, PartialEq)]
pub struct TestEvent {
    notification: Value,
}

impl TestEvent {
    /// The sample notification for `topic` (what `intercom-dev sample
    /// TOPIC` prints): realistic, with a fixed id.
    pub fn sample(topic: Topic) -> Self {
        Self {
            notification: intercom_fixtures::samples::sample(topic),
        }
    }

    /// A notification from a file (one `intercom-dev sample` wrote and you
    /// edited, or one Intercom sent).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, String> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A notification from its JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let notification: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        if !notification.is_object() {
            return Err("not a JSON object".to_owned());
        }
        Ok(Self { notification })
    }

    /// The same with notification id `id`.
    pub fn id(mut self, id: &str) -> Self {
        self.notification["id"] = id.into();
        self
    }

    /// The same, created at `epoch_seconds`.
    pub fn created_at(mut self, epoch_seconds: i64) -> Self {
        self.notification["created_at"] = epoch_seconds.into();
        self
    }

    /// The same with the item's field at `pointer` (a JSON pointer into
    /// `data.item`, such as `/ticket/ticket_attributes/_default_title_`)
    /// set to `value`; objects on the way are made as needed.
    pub fn with(mut self, pointer: &str, value: impl Into<Value>) -> Self {
        let mut at = &mut self.notification["data"]["item"];
        for token in pointer.trim_start_matches('/').split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            at = match at {
                Value::Array(items) => match token.parse::<usize>() {
                    Ok(n) if n < items.len() => &mut items[n],
                    _ => panic!(
                        "{pointer}: no element {token} in an array of {}",
                        items.len()
                    ),
                },
                other => &mut other[token.as_str()],
            };
        }
        *at = value.into();
        self
    }

    /// The notification, as JSON.
    pub fn notification(&self) -> &Value {
        &self.notification
    }

    /// The body Intercom would send.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.notification).unwrap_or_default()
    }
}

/// What one delivery of a notification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// How the record ended.
    pub outcome: Outcome,
    /// The steps (`event.once` names) completed in this delivery, in order.
    pub steps: Vec<String>,
    /// The calls made to Intercom in this delivery, as `METHOD /path`.
    pub calls: Vec<String>,
    /// Whether a newer notification about the same object came first
    /// (with [`Kit::with_freshness`]).
    pub stale: bool,
}

impl Run {
    /// The failure, when the record failed.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.outcome {
            Outcome::Failed(failure) => Some(failure),
            _ => None,
        }
    }

    /// Whether the record failed in a way a retry could mend.
    pub fn failed_retryably(&self) -> bool {
        self.failure().is_some_and(Failure::is_retryable)
    }
}

/// The processor, with idempotency and steps in memory and Intercom's mock.
#[derive(Debug)]
pub struct Kit {
    processor: Processor,
    store: Arc<Watched>,
    mock: MockIntercom,
    deliveries: AtomicUsize,
}

/// The function name the kit's keys carry.
const FUNCTION: &str = "topic-processor-test";

impl Kit {
    /// The kit around `registry` (your `handlers::registry(app)`, or one of
    /// a single handler). Panics, as a test should fail, when `registry`
    /// has a handler asking for a model its topic cannot carry.
    pub async fn new(registry: Registry) -> Self {
        if let Err(wrong) = registry.check() {
            panic!("{wrong}");
        }
        let mock = MockIntercom::start().await;
        let settings = ApiSettings::from_lookup(|name| match name {
            "INTERCOM_ACCESS_TOKEN" => Some("test-token".to_owned()),
            "INTERCOM_API_URL" => Some(mock.url.clone()),
            _ => None,
        })
        .expect("settings for the mock");
        debug_assert!(matches!(settings.token, TokenSource::Inline(_)));
        let intercom = IntercomApi::from_settings(&settings, None)
            .await
            .expect("a client for the mock");
        let store = Arc::new(Watched::default());
        let shared: Arc<dyn Store> = store.clone();
        let mut processor = Processor::new(registry).with_idempotency(Idempotency::new(
            shared,
            FUNCTION,
            Duration::from_secs(86_400),
        ));
        processor.intercom = intercom;
        Self {
            processor,
            store,
            mock,
            deliveries: AtomicUsize::new(0),
        }
    }

    /// The same, telling a notification older than one already run about
    /// the same object (`FRESHNESS=tag` or `skip`).
    pub fn with_freshness(mut self, mode: FreshnessMode) -> Self {
        if mode != FreshnessMode::Off {
            let store: Arc<dyn Store> = self.store.clone();
            self.processor = self.processor.with_freshness(Freshness::new(
                mode,
                store,
                FUNCTION,
                Duration::from_secs(86_400),
            ));
        }
        self
    }

    /// Intercom's mock: its calls so far, and faults to inject
    /// (`kit.intercom().then(Fault::Status(503))`).
    pub fn intercom(&self) -> &MockIntercom {
        &self.mock
    }

    /// Delivers `event` once, as an SQS record on a standard queue, with a
    /// minute to run; running the same event again is its retry.
    pub async fn run(&self, event: &TestEvent) -> Run {
        let delivery = self.deliveries.fetch_add(1, Ordering::Relaxed) + 1;
        let notification = event.notification();
        // Intercom holds the conversation a notification is about.
        self.mock.learn(notification);
        let text = |key: &str| notification[key].as_str().map(str::to_owned);
        let mut attributes = Vec::new();
        for (name, key) in [
            ("topic", "topic"),
            ("app_id", "app_id"),
            ("notification_id", "id"),
        ] {
            if let Some(value) = text(key) {
                attributes.push((name.to_owned(), value));
            }
        }
        let body = String::from_utf8_lossy(&event.body()).into_owned();
        let message_id = format!("kit-message-{delivery}");
        let record = record(&message_id, &body, Received::first(&attributes, None));
        let invocation = Invocation::lasting(
            &format!("kit-{delivery}"),
            Duration::from_secs(60),
            Duration::from_millis(1500),
        );
        let steps_before = self.store.steps().len();
        let calls_before = self.mock.calls().len();
        let report = self.processor.record(&record, &invocation).await;
        Run {
            outcome: report.outcome,
            steps: self.store.steps().split_off(steps_before),
            calls: self
                .mock
                .calls()
                .split_off(calls_before)
                .into_iter()
                .map(|call| format!("{} {}", call.method, call.path))
                .collect(),
            stale: report.stale,
        }
    }
}

/// The in-memory table, remembering which steps completed, in order.
#[derive(Debug, Default)]
struct Watched {
    table: MemoryStore,
    steps: Mutex<Vec<String>>,
}

impl Watched {
    fn steps(&self) -> Vec<String> {
        self.steps.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Store for Watched {
    fn take(&self, lock: LockItem, now_ms: i64) -> BoxFuture<Result<Taken, StoreError>> {
        self.table.take(lock, now_ms)
    }

    fn complete(
        &self,
        id: String,
        owner: String,
        expiration: i64,
    ) -> BoxFuture<Result<Finished, StoreError>> {
        self.table.complete(id, owner, expiration)
    }

    fn release(&self, id: String, owner: String) -> BoxFuture<Result<Finished, StoreError>> {
        self.table.release(id, owner)
    }

    fn advance(
        &self,
        id: String,
        newest: Newest,
        now_ms: i64,
    ) -> BoxFuture<Result<Option<Newest>, StoreError>> {
        self.table.advance(id, newest, now_ms)
    }

    fn step(&self, id: String, now_s: i64) -> BoxFuture<Result<Option<StepState>, StoreError>> {
        self.table.step(id, now_s)
    }

    fn put_step(
        &self,
        id: String,
        state: StepState,
        expiration: i64,
    ) -> BoxFuture<Result<(), StoreError>> {
        // A step is counted when it completes, not when it starts.
        if matches!(state, StepState::Completed(_)) {
            let name = id.rsplit("#step#").next().unwrap_or_default().to_owned();
            self.steps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(name);
        }
        self.table.put_step(id, state, expiration)
    }
}

/// One request an endpoint of yours received.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Value::String` of the text when it is not JSON).
    pub body: Value,
    /// The status it was answered with.
    pub status: u16,
}

impl Request {
    /// The header `name` (any case), if it came.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP endpoint of yours on 127.0.0.1: remembers every request and
/// answers each with the status last set ([`Recorder::answer`], 200 at
/// first). Stops when dropped.
#[derive(Debug)]
pub struct Recorder {
    /// `http://127.0.0.1:PORT/endpoint` (any path is answered).
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    status: Arc<std::sync::atomic::AtomicU16>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Recorder {
    /// Listens on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a free loopback port");
        let url = format!(
            "http://{}/endpoint",
            listener.local_addr().expect("bound address")
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let (kept, answer) = (Arc::clone(&requests), Arc::clone(&status));
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (kept, answer) = (Arc::clone(&kept), Arc::clone(&answer));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        recorded(Arc::clone(&kept), Arc::clone(&answer), request)
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self {
            url,
            requests,
            status,
            server,
        }
    }

    /// Answers every request from now on with `status`.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The bodies of the requests answered with a 2xx: what your service
    /// took.
    pub fn taken(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(|r| r.body)
            .collect()
    }
}

async fn recorded(
    kept: Arc<Mutex<Vec<Request>>>,
    answer: Arc<std::sync::atomic::AtomicU16>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    use http_body_util::BodyExt as _;
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let status = answer.load(Ordering::Relaxed);
    kept.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Request {
            method,
            path,
            headers,
            body,
            status,
        });
    let mut response =
        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_from_samples_files_and_json_with_their_fields_changed() {
        let event = TestEvent::sample(Topic::TicketClosed)
            .id("notif_1")
            .created_at(1_800_000_000)
            .with("/ticket/ticket_attributes/_default_title_", "Broken order")
            .with("/ticket/brand_new/field", 7);
        let notification = event.notification();
        assert_eq!(notification["id"], "notif_1");
        assert_eq!(notification["created_at"], 1_800_000_000);
        assert_eq!(notification["topic"], "ticket.closed");
        let ticket = &notification["data"]["item"]["ticket"];
        assert_eq!(
            ticket["ticket_attributes"]["_default_title_"],
            "Broken order"
        );
        assert_eq!(ticket["brand_new"]["field"], 7);
        assert_eq!(ticket["id"], "5", "the rest as sampled");
        let file = std::env::temp_dir().join(format!("kit-{}.json", std::process::id()));
        std::fs::write(&file, event.body()).expect("write");
        assert_eq!(TestEvent::from_file(&file), Ok(event));
        let _ = std::fs::remove_file(&file);
        assert!(TestEvent::from_json(b"[1]").is_err());
        assert!(TestEvent::from_file("/no/such/file.json").is_err());
    }
}
