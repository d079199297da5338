//! An HTTP proxy in front of moto that fails chosen EventBridge entries once: the `PutEvents` partial failures real EventBridge can answer and moto never does.
//!
//! Every request is forwarded to moto as it came, except `PutEvents`: an
//! entry whose `Detail` contains one of the markers still armed is answered
//! `InternalException` by the proxy itself (and the marker disarmed, so the
//! retry goes through); the other entries go to moto, and the two answers are
//! merged back in the request's order.
//!
//! It can also hold `PutEvents` requests for a while before forwarding them
//! ([`FlakyEvents::hold_put_events`]), as a slow network or service would; a
//! held request whose client has gone away by then is never forwarded
//! (hyper drops the request with its connection), so what reaches the bus
//! is what a client still waited for.
//!
//! It also keeps the `x-amz-meta-*` headers of every S3 `PUT`, by path:
//! moto's HTTP server drops headers with an underscore in their name
//! (`x-amz-meta-received_at`), which S3 keeps, so what was sent is checked
//! here.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// The proxy; `AWS_ENDPOINT_URL` is [`FlakyEvents::endpoint`].
#[derive(Debug)]
pub struct FlakyEvents {
    pub port: u16,
    state: Arc<State>,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct State {
    armed: Mutex<HashSet<String>>,
    failed: Mutex<Vec<String>>,
    /// Entries per `PutEvents` request, in order.
    batches: Mutex<Vec<usize>>,
    /// The user metadata of each S3 `PUT`, by request path.
    metadata: Mutex<HashMap<String, HashMap<String, String>>>,
    /// How long each `PutEvents` request waits before it is forwarded.
    hold: Mutex<Option<std::time::Duration>>,
    /// `PutEvents` requests held, and those forwarded after their hold.
    held: Mutex<(usize, usize)>,
}

impl FlakyEvents {
    /// Forwards a free port to moto at `upstream`, failing once each entry
    /// whose `Detail` contains one of `markers`.
    pub async fn start(upstream: u16, markers: impl IntoIterator<Item = String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(State {
            armed: Mutex::new(markers.into_iter().collect()),
            failed: Mutex::default(),
            batches: Mutex::default(),
            metadata: Mutex::default(),
            hold: Mutex::default(),
            held: Mutex::default(),
        });
        let serving = Arc::clone(&state);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(request, upstream, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            port,
            state,
            _server: server,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many entries each `PutEvents` request carried.
    pub fn batches(&self) -> Vec<usize> {
        self.state.batches.lock().expect("lock").clone()
    }

    /// The user metadata sent with the S3 `PUT` of `path` (`/{bucket}/{key}`,
    /// as sent: the key URL-encoded), without the `x-amz-meta-` prefix.
    pub fn metadata_sent(&self, path: &str) -> Option<HashMap<String, String>> {
        self.state.metadata.lock().expect("lock").get(path).cloned()
    }

    /// Holds every `PutEvents` request from now on for `hold` before
    /// forwarding it (`None` forwards at once again).
    pub fn hold_put_events(&self, hold: Option<std::time::Duration>) {
        *self.state.hold.lock().expect("lock") = hold;
    }

    /// `PutEvents` requests held so far, and how many of them were
    /// forwarded once their hold ended (their client still waiting).
    pub fn held(&self) -> (usize, usize) {
        *self.state.held.lock().expect("lock")
    }

    /// The markers whose entries were failed, in order.
    pub fn failed(&self) -> Vec<String> {
        self.state.failed.lock().expect("lock").clone()
    }
}

async fn answer(request: Request<Incoming>, upstream: u16, state: &State) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let is_put_events = parts
        .headers
        .get("x-amz-target")
        .is_some_and(|t| t.as_bytes() == b"AWSEvents.PutEvents");
    if !is_put_events {
        if parts.method == hyper::Method::PUT {
            let metadata = parts
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    let name = name.as_str().strip_prefix("x-amz-meta-")?;
                    Some((name.to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect();
            state
                .metadata
                .lock()
                .expect("lock")
                .insert(parts.uri.path().to_owned(), metadata);
        }
        return forward(parts, body, upstream).await;
    }
    let hold = *state.hold.lock().expect("lock");
    if let Some(hold) = hold {
        state.held.lock().expect("lock").0 += 1;
        // Dropped here, with its connection, if the client goes away.
        tokio::time::sleep(hold).await;
        state.held.lock().expect("lock").1 += 1;
    }
    let mut request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let entries = request["Entries"].as_array().cloned().unwrap_or_default();
    state.batches.lock().expect("lock").push(entries.len());
    let mut failing = Vec::new();
    {
        let mut armed = state.armed.lock().expect("lock");
        for entry in &entries {
            let detail = entry["Detail"].as_str().unwrap_or_default();
            let hit = armed.iter().find(|m| detail.contains(m.as_str())).cloned();
            if let Some(marker) = &hit {
                armed.remove(marker);
                state.failed.lock().expect("lock").push(marker.clone());
            }
            failing.push(hit.is_some());
        }
    }
    let passing: Vec<Value> = entries
        .iter()
        .zip(&failing)
        .filter(|(_, fail)| !**fail)
        .map(|(entry, _)| entry.clone())
        .collect();
    let mut delivered = Vec::new();
    if !passing.is_empty() {
        request["Entries"] = Value::Array(passing);
        let response = forward(parts, Bytes::from(request.to_string()), upstream).await;
        if !response.status().is_success() {
            return response;
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let moto: Value = serde_json::from_slice(&body).unwrap_or_default();
        delivered = moto["Entries"].as_array().cloned().unwrap_or_default();
    }
    let mut delivered = delivered.into_iter();
    let merged: Vec<Value> = failing
        .iter()
        .map(|fail| {
            if *fail {
                json!({"ErrorCode": "InternalException", "ErrorMessage": "failed by the test's proxy"})
            } else {
                delivered.next().unwrap_or_else(|| json!({"ErrorCode": "InternalException"}))
            }
        })
        .collect();
    let failed = merged
        .iter()
        .filter(|e| e.get("ErrorCode").is_some())
        .count();
    Response::builder()
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(
            json!({"FailedEntryCount": failed, "Entries": merged}).to_string(),
        )))
        .expect("response")
}

/// Sends the request on to moto over a connection of its own.
pub(crate) async fn forward(
    mut parts: hyper::http::request::Parts,
    body: Bytes,
    upstream: u16,
) -> Response<Full<Bytes>> {
    let failed = |why: String| {
        Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(why)))
            .expect("response")
    };
    let stream = match TcpStream::connect(("127.0.0.1", upstream)).await {
        Ok(stream) => stream,
        Err(e) => return failed(e.to_string()),
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return failed(e.to_string()),
        };
    tokio::spawn(connection);
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(hyper::header::CONTENT_LENGTH, body.len().into());
    let response = match sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(response) => response,
        Err(e) => return failed(e.to_string()),
    };
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(hyper::header::CONTENT_LENGTH, body.len().into());
    Response::from_parts(parts, Full::new(body))
}
