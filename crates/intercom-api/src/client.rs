//! The client: built once per process from the settings and the token, and a handle per record ([`Intercom`]) bounded by that record's deadline.
//!
//! Every call:
//! - carries `Authorization: Bearer …`, `Intercom-Version` and
//!   `Accept: application/json` (and a JSON body when it has one);
//! - waits for the rate limit's reset before calling when the last answer
//!   said nothing remains, and waits out a 429 until `X-RateLimit-Reset`,
//!   both only while the deadline allows ([`crate::rate_limit`]);
//! - retries 5xx and 408 answers, failed connections and attempts that
//!   took longer than the settings' `attempt_timeout` with backoff, for
//!   `GET`, `PUT` and `DELETE` only: a `POST` (a reply, a note) that may
//!   have reached Intercom is never sent twice by the client (a resumed
//!   step checks first, [`crate::operations`]);
//! - connects within `connect_timeout`, and keeps an idle connection
//!   `pool_idle_timeout` at most, shorter than the keep-alive of the
//!   servers in front of Intercom, so that a connection gone stale while
//!   Lambda froze the sandbox is not reused (and if one is, the attempt's
//!   timeout ends it);
//! - after a 401, reads the token again from its secret (at most once a
//!   minute) and tries once more;
//! - ends by the deadline: an answer that has not come is given up
//!   (the request is dropped with its connection), never sent later.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::{ApiError, error_items};
use crate::rate_limit::RateLimit;
use crate::settings::{ApiSettings, Token};

/// Reads the token again after a 401 (a rotated token in its secret).
pub trait TokenRefresh: Send + Sync + std::fmt::Debug {
    fn refresh(&self)
    -> std::pin::Pin<Box<dyn Future<Output = Result<Token, String>> + Send + '_>>;
}

/// At most one token refresh in this time.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Attempts of an idempotent call that meets a 5xx or a failed connection.
pub const ATTEMPTS: u32 = 3;
/// The first backoff; doubled after each attempt.
pub const BACKOFF: Duration = Duration::from_millis(100);

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One per process; cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base_url: String,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    pool_idle_timeout: Duration,
    version: HeaderValue,
    token: RwLock<Token>,
    refresher: Option<Arc<dyn TokenRefresh>>,
    last_refresh: Mutex<Option<Instant>>,
    limit: Mutex<RateLimit>,
    /// `INTERCOM_ADMIN_ID`, or `GET /me`'s id once asked.
    admin_id: tokio::sync::OnceCell<String>,
    /// Built at the first call: loading the system's CA roots is a cold
    /// start's cost only for processes that call Intercom.
    http: std::sync::OnceLock<Result<HyperClient<Connector, Full<Bytes>>, String>>,
}

impl Client {
    /// A client for `settings`'s server calling with `token`; `refresher`
    /// reads the token again after a 401. Nothing is loaded or connected
    /// until the first call.
    pub fn new(
        settings: &ApiSettings,
        token: Token,
        refresher: Option<Arc<dyn TokenRefresh>>,
    ) -> Result<Self, String> {
        let admin_id = tokio::sync::OnceCell::new_with(settings.admin_id.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                base_url: settings.base_url.clone(),
                connect_timeout: settings.connect_timeout,
                attempt_timeout: settings.attempt_timeout,
                pool_idle_timeout: settings.pool_idle_timeout,
                version: HeaderValue::from_str(&settings.version)
                    .map_err(|_| "INTERCOM_API_VERSION is not a header value".to_owned())?,
                token: RwLock::new(token),
                refresher,
                last_refresh: Mutex::new(None),
                limit: Mutex::new(RateLimit::default()),
                admin_id,
                http: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The HTTP client: for a local mock (`http://`) without TLS, so
    /// without roots to load; for Intercom itself over TLS, trusting the
    /// system's roots.
    fn http_client(inner: &Inner) -> Result<HyperClient<Connector, Full<Bytes>>, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(inner.connect_timeout));
        http.set_nodelay(true);
        let connector = if inner.base_url.starts_with("http://") {
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        } else {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
                .map_err(|e| format!("loading the system's CA roots for intercom: {e}"))?
                .https_only()
                .enable_http1()
                .wrap_connector(http)
        };
        Ok(HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(inner.pool_idle_timeout)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector))
    }

    /// A handle for one record: every call through it ends by `deadline`.
    pub fn until(&self, deadline: Instant) -> Intercom {
        Intercom {
            client: self.clone(),
            deadline,
        }
    }

    /// The rate limit Intercom last reported.
    pub fn rate_limit(&self) -> RateLimit {
        *self.inner.limit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The client for one record, bounded by its deadline.
#[derive(Clone, Debug)]
pub struct Intercom {
    client: Client,
    deadline: Instant,
}

impl Intercom {
    /// The record's deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The admin this app acts as: `INTERCOM_ADMIN_ID`, or the id of
    /// `GET /me`, asked once per process.
    pub async fn admin_id(&self) -> Result<String, ApiError> {
        self.client
            .inner
            .admin_id
            .get_or_try_init(|| async {
                let me: intercom_webhook::models::Admin =
                    self.request(Method::GET, "/me", None).await?;
                me.id
                    .map(|id| id.0)
                    .ok_or_else(|| ApiError::Decode("GET /me names no admin id".to_owned()))
            })
            .await
            .cloned()
    }

    /// Any call: `method` on `path` (from the base URL, with its query),
    /// with a JSON `body`, its answer decoded as `T` (`serde_json::Value`
    /// for anything).
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ApiError> {
        let answer = self.send(method, path, body).await?;
        let body: &[u8] = if answer.is_empty() { b"null" } else { &answer };
        serde_json::from_slice(body).map_err(|e| ApiError::Decode(format!("{path}: {e}")))
    }

    /// Sends, retrying and waiting as the module says; the body of the
    /// 2xx answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Bytes, ApiError> {
        let inner = &self.client.inner;
        // A search is a POST that only reads: as safe to send again as a GET.
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE)
            || (method == Method::POST && path.ends_with("/search"));
        let uri = format!("{}{path}", inner.base_url);
        let body = body.map(|b| Bytes::from(b.to_string()));
        let mut failures = 0;
        let mut refreshed = false;
        loop {
            let limit = *inner.limit.lock().unwrap_or_else(|e| e.into_inner());
            let wait = limit.wait_before_call(SystemTime::now());
            if !wait.is_zero() {
                self.sleep_within(wait)
                    .await
                    .map_err(|()| ApiError::RateLimited {
                        reset_at: limit.reset_at,
                    })?;
            }
            let token = inner
                .token
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .bearer();
            let mut request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header(AUTHORIZATION, token)
                .header(ACCEPT, "application/json")
                .header("Intercom-Version", inner.version.clone());
            if body.is_some() {
                request = request.header(CONTENT_TYPE, "application/json");
            }
            let request = request
                .body(Full::new(body.clone().unwrap_or_default()))
                .map_err(|e| ApiError::Transport(format!("{uri}: {e}")))?;
            let http = inner
                .http
                .get_or_init(|| Client::http_client(inner))
                .as_ref()
                .map_err(|e| ApiError::Transport(e.clone()))?;
            let sent = async {
                let response = http.request(request).await.map_err(|e| e.to_string())?;
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
                Ok::<_, String>((parts, body))
            };
            let attempt_deadline = self.deadline.min(Instant::now() + inner.attempt_timeout);
            let (parts, answer) = match tokio::time::timeout_at(attempt_deadline, sent).await {
                Err(_) if attempt_deadline >= self.deadline => return Err(ApiError::Deadline),
                Err(_) => {
                    // The attempt took too long (a stale connection, a
                    // stuck server): a read is tried again on a new
                    // connection; a write may have been applied.
                    failures += 1;
                    if idempotent && failures < ATTEMPTS && self.backoff(failures).await {
                        continue;
                    }
                    return Err(ApiError::Transport(format!(
                        "no answer within {} ms",
                        inner.attempt_timeout.as_millis()
                    )));
                }
                Ok(Err(error)) => {
                    failures += 1;
                    if idempotent && failures < ATTEMPTS && self.backoff(failures).await {
                        continue;
                    }
                    return Err(ApiError::Transport(error));
                }
                Ok(Ok(answered)) => answered,
            };
            let reported = RateLimit::from_headers(&parts.headers);
            if let Some(reported) = reported {
                *inner.limit.lock().unwrap_or_else(|e| e.into_inner()) = reported;
            }
            let status = parts.status;
            tracing::debug!(%method, path, status = status.as_u16(), "intercom call");
            match status {
                s if s.is_success() => return Ok(answer),
                StatusCode::TOO_MANY_REQUESTS => {
                    let reported = reported.unwrap_or_default();
                    // Nothing was done: any method may be sent again.
                    let wait = reported.wait_after_429(SystemTime::now());
                    if self.sleep_within(wait).await.is_err() {
                        return Err(ApiError::RateLimited {
                            reset_at: reported.reset_at,
                        });
                    }
                }
                StatusCode::UNAUTHORIZED => {
                    if refreshed || !self.refresh_token().await {
                        return Err(ApiError::Unauthorized(error_items(&answer)));
                    }
                    refreshed = true;
                }
                StatusCode::FORBIDDEN => return Err(ApiError::Forbidden(error_items(&answer))),
                StatusCode::NOT_FOUND => return Err(ApiError::NotFound(error_items(&answer))),
                s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                    failures += 1;
                    if idempotent && failures < ATTEMPTS && self.backoff(failures).await {
                        continue;
                    }
                    return Err(ApiError::Server { status: s.as_u16() });
                }
                s => {
                    return Err(ApiError::Invalid {
                        status: s.as_u16(),
                        errors: error_items(&answer),
                    });
                }
            }
        }
    }

    /// Sleeps `wait` unless that ends past the deadline (`Err`, at once).
    async fn sleep_within(&self, wait: Duration) -> Result<(), ()> {
        let until = Instant::now() + wait;
        if until >= self.deadline {
            return Err(());
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    /// The backoff after the `failures`-th failure; `false` when it would
    /// end past the deadline.
    async fn backoff(&self, failures: u32) -> bool {
        self.sleep_within(BACKOFF * 2u32.pow(failures - 1))
            .await
            .is_ok()
    }

    /// Reads the token again, unless that was done in the last minute or
    /// nothing can; whether there is a new one to try.
    async fn refresh_token(&self) -> bool {
        let inner = &self.client.inner;
        let Some(refresher) = &inner.refresher else {
            return false;
        };
        {
            let mut last = inner.last_refresh.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match tokio::time::timeout_at(self.deadline, refresher.refresh()).await {
            Ok(Ok(token)) => {
                let mut current = inner.token.write().unwrap_or_else(|e| e.into_inner());
                let changed = *current != token;
                *current = token;
                changed
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "could not read the intercom access token again");
                false
            }
            Err(_) => false,
        }
    }
}
