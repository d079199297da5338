//! A Lambda Runtime API on loopback, to run the real function binaries as Lambda does.
//!
//! It serves `GET /runtime/invocation/next` (long-polled until a test invokes),
//! takes `…/response`, `…/error` and `/runtime/init/error`, and records when
//! the function first polled (its init time).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

const PREFIX: &str = "/2018-06-01/runtime";

/// The X-Ray trace header (`Lambda-Runtime-Trace-Id`) every invocation gets
/// unless a test gives its own ([`RuntimeApi::invoke_traced`]).
pub const TRACE_HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct State {
    /// Request id, event, trace header.
    pending: Mutex<VecDeque<(String, Vec<u8>, String)>>,
    pending_changed: Notify,
    outcomes: Mutex<HashMap<String, Outcome>>,
    outcome_arrived: Notify,
    init_error: Mutex<Option<Value>>,
    first_poll: Mutex<Option<Instant>>,
    next_id: Mutex<u64>,
    /// How long each invocation may run (Lambda's timeout); 30 s unless set.
    timeout: Mutex<Option<Duration>>,
}

/// The Runtime API server. Dropping it stops nothing; the test process ends it.
#[derive(Clone)]
pub struct RuntimeApi {
    address: SocketAddr,
    state: Arc<State>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address)
            .finish()
    }
}

impl RuntimeApi {
    /// Starts serving on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let state = Arc::new(State::default());
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        serve(Arc::clone(&state), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { address, state }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Gives the invocations handed out from now on `timeout` to run, as a
    /// function's configured timeout does (the default is 30 s).
    pub fn set_timeout(&self, timeout: Duration) {
        *self.state.timeout.lock().expect("lock") = Some(timeout);
    }

    /// When the function first asked for an invocation.
    pub fn first_poll(&self) -> Option<Instant> {
        *self.state.first_poll.lock().expect("lock")
    }

    /// Queues an event and waits up to `timeout` for the function's answer.
    pub async fn invoke(&self, event: &Value, timeout: Duration) -> Option<Outcome> {
        let body = serde_json::to_vec(event).expect("serialisable event");
        self.invoke_raw(body, timeout).await
    }

    /// Queues raw event bytes and waits up to `timeout` for the function's answer.
    pub async fn invoke_raw(&self, event: Vec<u8>, timeout: Duration) -> Option<Outcome> {
        self.invoke_traced(event, TRACE_HEADER, timeout).await
    }

    /// The same, the invocation running under `trace_header`.
    pub async fn invoke_traced(
        &self,
        event: Vec<u8>,
        trace_header: &str,
        timeout: Duration,
    ) -> Option<Outcome> {
        let id = {
            let mut next = self.state.next_id.lock().expect("lock");
            *next += 1;
            format!("req-{next:06}")
        };
        self.state.pending.lock().expect("lock").push_back((
            id.clone(),
            event,
            trace_header.to_owned(),
        ));
        self.state.pending_changed.notify_waiters();
        self.state.pending_changed.notify_one();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.outcome_arrived.notified();
            if let Some(outcome) = self.state.outcomes.lock().expect("lock").remove(&id) {
                return Some(outcome);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }

    /// Waits up to `timeout` for an init error report.
    pub async fn init_error(&self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.outcome_arrived.notified();
            if let Some(error) = self.state.init_error.lock().expect("lock").clone() {
                return Some(error);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }
}

async fn serve(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    if method == Method::GET && route == "/invocation/next" {
        state
            .first_poll
            .lock()
            .expect("lock")
            .get_or_insert_with(Instant::now);
        loop {
            let changed = state.pending_changed.notified();
            if let Some((id, event, trace_header)) = state.pending.lock().expect("lock").pop_front()
            {
                let timeout = state
                    .timeout
                    .lock()
                    .expect("lock")
                    .unwrap_or(Duration::from_secs(30));
                let deadline = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    + timeout;
                let response = Response::builder()
                    .header("lambda-runtime-aws-request-id", &id)
                    .header(
                        "lambda-runtime-deadline-ms",
                        deadline.as_millis().to_string(),
                    )
                    .header(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:under-test",
                    )
                    .header("lambda-runtime-trace-id", trace_header)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(event)))
                    .expect("valid response");
                return Ok(response);
            }
            changed.await;
        }
    }
    if method == Method::POST && route == "/init/error" {
        let error = serde_json::from_slice(&body).unwrap_or(Value::Null);
        *state.init_error.lock().expect("lock") = Some(error);
        state.outcome_arrived.notify_waiters();
        return Ok(status(StatusCode::ACCEPTED));
    }
    if method == Method::POST
        && let Some(rest) = route.strip_prefix("/invocation/")
        && let Some((id, kind)) = rest.split_once('/')
    {
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let outcome = match kind {
            "response" => Outcome::Response(value),
            "error" => Outcome::Error(value),
            _ => return Ok(status(StatusCode::NOT_FOUND)),
        };
        state
            .outcomes
            .lock()
            .expect("lock")
            .insert(id.to_owned(), outcome);
        state.outcome_arrived.notify_waiters();
        return Ok(status(StatusCode::ACCEPTED));
    }
    Ok(status(StatusCode::NOT_FOUND))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
