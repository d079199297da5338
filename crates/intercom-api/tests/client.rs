//! The client against a scripted Intercom on loopback: what every call carries, rate limits waited out or not, retries only where safe, the deadline, a rotated token, typed errors.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use intercom_api::{ApiError, ApiSettings, Client, ReplyKind, Token, TokenRefresh};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// One scripted answer.
#[derive(Debug, Clone)]
enum Answer {
    Json {
        status: u16,
        body: Value,
        headers: Vec<(&'static str, String)>,
    },
    /// Never answers.
    Hang,
}

fn ok(body: Value) -> Answer {
    Answer::Json {
        status: 200,
        body,
        headers: vec![],
    }
}

fn status(status: u16, body: Value) -> Answer {
    Answer::Json {
        status,
        body,
        headers: vec![],
    }
}

/// What the mock saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: String,
    version: String,
    accept: String,
    body: Value,
    at: SystemTime,
}

/// A scripted Intercom: `GET /me` answers admin 991 unless scripted; every
/// other request takes the next scripted answer (200 `{}` when none is left).
#[derive(Clone, Default)]
struct Mock {
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    async fn start(script: Vec<Answer>) -> (Self, String) {
        let mock = Self {
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let serving = mock.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mock = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let mock = mock.clone();
                        async move { Ok::<_, Infallible>(mock.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (mock, url)
    }

    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let path = parts.uri.path().to_owned();
        self.seen.lock().expect("lock").push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            authorization: header("authorization"),
            version: header("intercom-version"),
            accept: header("accept"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            at: SystemTime::now(),
        });
        let scripted = self.script.lock().expect("lock").pop_front();
        let answer = match scripted {
            Some(answer) => answer,
            None if path == "/me" => ok(json!({"type": "admin", "id": "991", "name": "Bot"})),
            None => ok(json!({})),
        };
        match answer {
            Answer::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                unreachable!("hung")
            }
            Answer::Json {
                status,
                body,
                headers,
            } => {
                let mut response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json");
                for (name, value) in headers {
                    response = response.header(name, value);
                }
                response
                    .body(Full::new(Bytes::from(body.to_string())))
                    .expect("response")
            }
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn paths(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }
}

fn settings(url: &str, vars: &[(&str, &str)]) -> ApiSettings {
    let mut all: Vec<(&str, String)> = vec![("INTERCOM_API_URL", url.to_owned())];
    all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
    ApiSettings::from_lookup(|name| all.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
        .expect("settings")
}

fn client(url: &str, refresher: Option<Arc<dyn TokenRefresh>>) -> Client {
    Client::new(
        &settings(url, &[]),
        Token::new("tok-1").expect("token"),
        refresher,
    )
    .expect("client")
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn limited(status: u16, remaining: u64, reset_at: u64) -> Answer {
    Answer::Json {
        status,
        body: if status == 429 {
            json!({"type": "error.list", "errors": [{"code": "rate_limit_exceeded",
                   "message": "Exceeded rate limit of 167 in 10_seconds"}]})
        } else {
            json!({"type": "conversation", "id": "1"})
        },
        headers: vec![
            ("X-RateLimit-Limit", "167".to_owned()),
            ("X-RateLimit-Remaining", remaining.to_string()),
            ("X-RateLimit-Reset", reset_at.to_string()),
        ],
    }
}

#[tokio::test]
async fn every_call_carries_the_token_the_version_and_asks_for_json() {
    let (mock, url) = Mock::start(vec![ok(json!({
        "type": "conversation", "id": 215473853299345_u64, "state": "open"
    }))])
    .await;
    let intercom = client(&url, None).until(Instant::now() + Duration::from_secs(5));
    let conversation = intercom
        .conversation("215473853299345")
        .await
        .expect("conversation");
    assert_eq!(
        conversation.id.map(|id| id.0).as_deref(),
        Some("215473853299345")
    );
    let seen = mock.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/conversations/215473853299345");
    assert_eq!(seen[0].authorization, "Bearer tok-1");
    assert_eq!(seen[0].version, "2.15");
    assert_eq!(seen[0].accept, "application/json");
}

#[tokio::test]
async fn calls_that_act_in_the_inbox_act_as_me_asked_once_per_process() {
    let (mock, url) = Mock::start(vec![]).await;
    let client = client(&url, None);
    for n in 0..3 {
        let intercom = client.until(Instant::now() + Duration::from_secs(5));
        intercom
            .reply("42", ReplyKind::Comment, &format!("reply {n}"))
            .await
            .expect("reply");
    }
    client
        .until(Instant::now() + Duration::from_secs(5))
        .close("42", None)
        .await
        .expect("close");
    assert_eq!(
        mock.paths(),
        [
            "GET /me",
            "POST /conversations/42/reply",
            "POST /conversations/42/reply",
            "POST /conversations/42/reply",
            "POST /conversations/42/parts",
        ]
    );
    let seen = mock.seen();
    assert_eq!(
        seen[1].body,
        json!({"message_type": "comment", "type": "admin", "admin_id": "991", "body": "reply 0"})
    );
    assert_eq!(
        seen[4].body,
        json!({"message_type": "close", "type": "admin", "admin_id": "991"})
    );

    // INTERCOM_ADMIN_ID: never asked.
    let (mock, url) = Mock::start(vec![]).await;
    let client = Client::new(
        &settings(&url, &[("INTERCOM_ADMIN_ID", "7")]),
        Token::new("tok").expect("token"),
        None,
    )
    .expect("client");
    client
        .until(Instant::now() + Duration::from_secs(5))
        .note("42", "seen")
        .await
        .expect("note");
    assert_eq!(mock.paths(), ["POST /conversations/42/reply"]);
    assert_eq!(mock.seen()[0].body["admin_id"], "7");
    assert_eq!(mock.seen()[0].body["message_type"], "note");
}

#[tokio::test]
async fn a_429_is_waited_out_until_the_reset_when_the_deadline_allows() {
    let reset_at = epoch_now() + 1;
    let (mock, url) = Mock::start(vec![
        limited(429, 0, reset_at),
        ok(json!({"type": "conversation", "id": "1"})),
    ])
    .await;
    let intercom = client(&url, None).until(Instant::now() + Duration::from_secs(5));
    intercom.conversation("1").await.expect("waited out");
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].at >= UNIX_EPOCH + Duration::from_secs(reset_at),
        "the retry came before the reset"
    );
}

#[tokio::test]
async fn a_429_past_the_deadline_fails_at_once_and_retryable() {
    let reset_at = epoch_now() + 8;
    let (mock, url) = Mock::start(vec![
        ok(json!({"type": "admin", "id": "991"})),
        limited(429, 0, reset_at),
    ])
    .await;
    let started = Instant::now();
    let intercom = client(&url, None).until(started + Duration::from_secs(2));
    let error = intercom
        .reply("42", ReplyKind::Comment, "hi")
        .await
        .expect_err("limited");
    assert_eq!(
        error,
        ApiError::RateLimited {
            reset_at: Some(reset_at)
        }
    );
    assert!(error.is_retryable());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(mock.paths(), ["GET /me", "POST /conversations/42/reply"]);
}

#[tokio::test]
async fn with_nothing_remaining_the_next_call_waits_for_the_reset_instead_of_a_429() {
    let reset_at = epoch_now() + 1;
    let (mock, url) = Mock::start(vec![limited(200, 0, reset_at), ok(json!({"id": "2"}))]).await;
    let client = client(&url, None);
    let deadline = Instant::now() + Duration::from_secs(5);
    client
        .until(deadline)
        .conversation("1")
        .await
        .expect("first");
    client
        .until(deadline)
        .conversation("2")
        .await
        .expect("second");
    let seen = mock.seen();
    assert!(seen[1].at >= UNIX_EPOCH + Duration::from_secs(reset_at));

    // When the reset is past the deadline, the call is not made at all.
    let reset_at = epoch_now() + 30;
    let (mock, url) = Mock::start(vec![limited(200, 0, reset_at)]).await;
    let client = self::client(&url, None);
    client
        .until(deadline)
        .conversation("1")
        .await
        .expect("first");
    let error = client
        .until(Instant::now() + Duration::from_secs(1))
        .conversation("2")
        .await
        .expect_err("would wait past the deadline");
    assert_eq!(
        error,
        ApiError::RateLimited {
            reset_at: Some(reset_at)
        }
    );
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test]
async fn a_5xx_is_retried_for_a_read_and_never_for_a_post() {
    let (mock, url) = Mock::start(vec![
        status(503, json!({})),
        status(502, json!({})),
        ok(json!({"type": "contact", "id": "c1"})),
    ])
    .await;
    let client = client(&url, None);
    let deadline = Instant::now() + Duration::from_secs(5);
    let contact = client
        .until(deadline)
        .contact("c1")
        .await
        .expect("third time");
    assert_eq!(contact.id.map(|id| id.0).as_deref(), Some("c1"));
    assert_eq!(mock.seen().len(), 3);

    let (mock, url) = Mock::start(vec![
        ok(json!({"type": "admin", "id": "991"})),
        status(500, json!({})),
    ])
    .await;
    let error = self::client(&url, None)
        .until(deadline)
        .reply("42", ReplyKind::Comment, "hi")
        .await
        .expect_err("not retried");
    assert_eq!(error, ApiError::Server { status: 500 });
    assert!(error.is_retryable(), "the record may be retried, by SQS");
    assert_eq!(mock.paths(), ["GET /me", "POST /conversations/42/reply"]);

    // Three 5xx in a row: the read gives up after three attempts.
    let (mock, url) = Mock::start(vec![status(500, json!({})); 5]).await;
    let error = self::client(&url, None)
        .until(deadline)
        .ticket("t")
        .await
        .expect_err("gave up");
    assert_eq!(error, ApiError::Server { status: 500 });
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn a_hung_intercom_is_given_up_at_the_deadline() {
    let (_mock, url) = Mock::start(vec![Answer::Hang]).await;
    let started = Instant::now();
    let error = client(&url, None)
        .until(started + Duration::from_millis(400))
        .contact("c1")
        .await
        .expect_err("hung");
    assert_eq!(error, ApiError::Deadline);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(900),
        "{took:?}"
    );
}

#[derive(Debug)]
struct Rotated(Mutex<u32>);

impl TokenRefresh for Rotated {
    fn refresh(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Token, String>> + Send + '_>> {
        Box::pin(async move {
            *self.0.lock().expect("lock") += 1;
            Ok(Token::new("tok-2").expect("token"))
        })
    }
}

#[tokio::test]
async fn after_a_401_the_token_is_read_again_once_a_minute_at_most() {
    let unauthorized = || {
        status(
            401,
            json!({"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]}),
        )
    };
    let (mock, url) = Mock::start(vec![
        unauthorized(),
        ok(json!({"id": "c1"})),
        unauthorized(),
    ])
    .await;
    let rotated = Arc::new(Rotated(Mutex::new(0)));
    let client = client(&url, Some(rotated.clone()));
    let deadline = Instant::now() + Duration::from_secs(5);
    client
        .until(deadline)
        .contact("c1")
        .await
        .expect("with the new token");
    let seen = mock.seen();
    assert_eq!(seen[0].authorization, "Bearer tok-1");
    assert_eq!(seen[1].authorization, "Bearer tok-2");

    let error = client
        .until(deadline)
        .contact("c1")
        .await
        .expect_err("401 again");
    let ApiError::Unauthorized(errors) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(errors[0].code, "unauthorized");
    assert!(error.is_retryable());
    assert_eq!(
        *rotated.0.lock().expect("lock"),
        1,
        "read again once in the minute"
    );
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn refusals_are_typed_with_intercoms_error_list() {
    let (_mock, url) = Mock::start(vec![
        status(404, json!({"type": "error.list", "errors": [{"code": "not_found", "message": "Resource Not Found"}]})),
        status(422, json!({"type": "error.list", "errors": [{"code": "parameter_invalid", "field": "email"}]})),
        status(403, json!({"type": "error.list", "errors": [{"code": "api_plan_restricted"}]})),
    ])
    .await;
    let client = client(&url, None);
    let deadline = Instant::now() + Duration::from_secs(5);
    let not_found = client.until(deadline).company("x").await.expect_err("404");
    assert!(matches!(&not_found, ApiError::NotFound(e) if e[0].code == "not_found"));
    assert!(!not_found.is_retryable());
    let invalid = client
        .until(deadline)
        .update_contact("c", &json!({"email": "nope"}))
        .await
        .expect_err("422");
    assert_eq!(
        invalid.to_string(),
        "intercom refused the request (422): parameter_invalid (email)"
    );
    let forbidden = client.until(deadline).tags().await.expect_err("403");
    assert!(matches!(forbidden, ApiError::Forbidden(_)));
}

/// A server whose first connection answers one request and then goes
/// silent without closing (a connection gone stale while the sandbox was
/// frozen); every later connection answers. The connections it accepted.
async fn stale_after_one() -> (String, Arc<Mutex<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let connections = Arc::new(Mutex::new(0_u32));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let connection = {
                let mut n = counted.lock().expect("lock");
                *n += 1;
                *n
            };
            let served = Arc::new(Mutex::new(0_u32));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| {
                    let served = Arc::clone(&served);
                    async move {
                        let n = {
                            let mut n = served.lock().expect("lock");
                            *n += 1;
                            *n
                        };
                        if connection == 1 && n > 1 {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(200)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(r#"{"type":"contact","id":"c1"}"#)))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, connections)
}

#[tokio::test]
async fn a_stale_pooled_connection_fails_its_attempt_fast_and_a_read_is_retried() {
    let (url, connections) = stale_after_one().await;
    let mut settings = settings(&url, &[]);
    settings.attempt_timeout = Duration::from_millis(300);
    let client = Client::new(&settings, Token::new("tok").expect("token"), None).expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    client.until(deadline).contact("c1").await.expect("first");
    // The pooled connection answers no more: the attempt ends after 300 ms
    // and the read goes again on a new connection, long before the deadline.
    let started = Instant::now();
    let contact = client
        .until(deadline)
        .contact("c1")
        .await
        .expect("retried on a new connection");
    assert_eq!(contact.id.map(|id| id.0).as_deref(), Some("c1"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(*connections.lock().expect("lock"), 2);

    // A write is not sent twice: its attempt's timeout fails it, retryable.
    let (url, _) = stale_after_one().await;
    let mut settings = self::settings(&url, &[("INTERCOM_ADMIN_ID", "7")]);
    settings.attempt_timeout = Duration::from_millis(300);
    let client = Client::new(&settings, Token::new("tok").expect("token"), None).expect("client");
    client.until(deadline).contact("c1").await.expect("first");
    let error = client
        .until(deadline)
        .note("42", "seen")
        .await
        .expect_err("cut off");
    assert!(matches!(error, ApiError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_408_is_retried_for_a_read() {
    let (mock, url) = Mock::start(vec![
        status(408, json!({})),
        ok(json!({"type": "contact", "id": "c1"})),
    ])
    .await;
    let contact = client(&url, None)
        .until(Instant::now() + Duration::from_secs(5))
        .contact("c1")
        .await
        .expect("second time");
    assert_eq!(contact.id.map(|id| id.0).as_deref(), Some("c1"));
    assert_eq!(mock.seen().len(), 2);
}
