//! Your own HTTP endpoints, for handlers: a JSON `POST` with a timeout, its answer told apart as done, worth a retry, or not.
//!
//! Build an [`Endpoint`] once, at cold start, in your handlers' settings
//! (`handlers.rs`'s `App::from_lookup`): its connections and TLS roots are
//! kept for every record. Then, in a handler, usually inside a step so that
//! a retry of the record does not post twice:
//!
//! ```ignore
//! event.once("post-closed-ticket", || endpoint.post(&body)).await?;
//! ```
//!
//! Answers: 2xx is done; 408, 429 and 5xx, a connection that failed and
//! no answer within the timeout are [`HandlerError::Retryable`] (the record
//! fails and SQS retries it); any other status is
//! [`HandlerError::Permanent`] (the record fails and, after the redrive
//! count, waits in the dead-letter queue for a person). Either way the
//! error names the URL and the status, and the first 200 bytes of the
//! answer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use intercom_webhook::dispatch::HandlerError;
use serde::Serialize;

use lambda_init::https::Connector;

/// How long a call waits for its answer unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One URL of yours that takes JSON. Cheap to clone (the connections are
/// shared).
#[derive(Clone, Debug)]
pub struct Endpoint {
    url: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    http: HyperClient<Connector, Full<Bytes>>,
}

impl Endpoint {
    /// An endpoint at `url` (`https://`, or `http://` for a service inside
    /// your network or a local test), with the system's TLS roots.
    pub fn new(url: &str) -> Result<Self, String> {
        let parsed: Uri = url
            .parse()
            .map_err(|e| format!("{url} is not a URL: {e}"))?;
        let plain_http = match parsed.scheme_str() {
            Some("https") => false,
            Some("http") => true,
            _ => return Err(format!("{url} is not an http:// or https:// URL")),
        };
        let connector = lambda_init::https::connector(HttpConnector::new(), plain_http)
            .map_err(|e| format!("{url}: {e}"))?;
        if parsed.host().is_none() {
            return Err(format!("{url} names no host"));
        }
        Ok(Self {
            url: parsed,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// The same, sending header `name: value` with every call (an API key).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, String> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name} is not a header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header {name} is not a header value"))?;
        self.headers.push((name, value));
        Ok(self)
    }

    /// The same, waiting at most `timeout` for an answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The URL calls go to.
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// `POST`s `body` as JSON; `Ok` on a 2xx answer.
    pub async fn post<T: Serialize + ?Sized>(&self, body: &T) -> Result<(), HandlerError> {
        let json = serde_json::to_vec(body).map_err(|e| {
            HandlerError::permanent(format!("{}: the body is not JSON: {e}", self.url))
        })?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(CONTENT_TYPE, "application/json");
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(json)))
            .map_err(|e| HandlerError::permanent(format!("{}: {e}", self.url)))?;
        let answered = tokio::time::timeout(self.timeout, async {
            let response = self.http.request(request).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((status, body))
        })
        .await;
        let (status, body) = match answered {
            Err(_) => {
                return Err(HandlerError::retryable(format!(
                    "{}: no answer within {} ms",
                    self.url,
                    self.timeout.as_millis()
                )));
            }
            Ok(Err(error)) => {
                return Err(HandlerError::retryable(format!("{}: {error}", self.url)));
            }
            Ok(Ok(answer)) => answer,
        };
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body);
        let text: String = text.chars().take(200).collect();
        let reason = format!("{} answered {}: {text}", self.url, status.as_u16());
        if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
            Err(HandlerError::retryable(reason))
        } else {
            Err(HandlerError::permanent(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_when_the_endpoint_is_built() {
        assert!(Endpoint::new("https://example.com/closed").is_ok());
        assert!(Endpoint::new("http://127.0.0.1:9/closed").is_ok());
        for bad in ["", "example.com/closed", "ftp://example.com/x", "/closed"] {
            assert!(Endpoint::new(bad).is_err(), "{bad}");
        }
        let endpoint = Endpoint::new("http://127.0.0.1:9/x").expect("url");
        assert!(endpoint.clone().with_header("x-api-key", "k").is_ok());
        assert!(endpoint.with_header("bad header", "k").is_err());
    }

    #[tokio::test]
    async fn answers_are_done_retryable_or_permanent() {
        let recorder = crate::testing::Recorder::start().await;
        let endpoint = Endpoint::new(&recorder.url)
            .expect("url")
            .with_header("x-api-key", "secret-key")
            .expect("header");
        assert_eq!(endpoint.post(&serde_json::json!({"id": "5"})).await, Ok(()));
        let requests = recorder.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].body, serde_json::json!({"id": "5"}));
        assert_eq!(requests[0].header("x-api-key"), Some("secret-key"));
        assert_eq!(requests[0].header("content-type"), Some("application/json"));
        for (status, retryable) in [
            (503, true),
            (429, true),
            (408, true),
            (400, false),
            (404, false),
        ] {
            recorder.answer(status);
            let error = endpoint.post(&1).await.expect_err("not 2xx");
            assert_eq!(error.is_retryable(), retryable, "{status}: {error}");
            assert!(
                error.to_string().contains(&format!("answered {status}")),
                "{error}"
            );
        }
        let closed = Endpoint::new("http://127.0.0.1:1/x").expect("url");
        assert!(
            closed
                .post(&1)
                .await
                .expect_err("nobody listens")
                .is_retryable()
        );
    }
}
