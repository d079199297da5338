//! The receiver's answers: one request in, one response out, per the contract's table.
//!
//! [`Receiver::handle`] checks, in this order, and the first that applies
//! answers: `HEAD`; any method but `POST`; the source address; the size; the
//! signature; the envelope; the workspace; `ping`; the queue. Every way a
//! request can fail is a [`Rejection`] with one status and one JSON body, so
//! clients never see internals. A 2xx for a notification is sent only after
//! SQS acknowledged it, and every answer comes within [`ANSWER_BUDGET`].
//!
//! Metrics (through the `metrics` facade; a no-op unless the binary installed
//! a recorder): `Requests` by `Answer` ([`answer_name`]: `queued`, `pong`,
//! `head` or a rejection code), and `QueueSendTime`, the milliseconds of each
//! SQS send, by the `Answer` of the request it was for (`queued`, `pong`,
//! `queue_unavailable`): one dimension set, so one EMF document a request.
//! `QueueSendTime` only with every metric on ([`describe_metrics`]'s
//! `detailed`, `METRICS=on`). With `METRICS=alarms` (the stack's default)
//! only the `Requests` the alarms read are counted ([`ALARMED_ANSWERS`]):
//! a request answered otherwise writes no EMF document at all, which was
//! the largest log line of ours per notification.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use intercom_webhook::envelope::{Envelope, EnvelopeError};
use intercom_webhook::queue_message::{
    self, CarriedBody, Delivery, MAX_MESSAGE_BYTES, QueueMessage,
};
use intercom_webhook::signature::{SIGNATURE_HEADER, SignatureError};
use serde_json::json;
use tokio::time::Instant;

use crate::allowlist::AllowList;
use crate::http_event::{BodyError, HttpRequest, HttpResponse, Origin, ResponseEvent};
use crate::queue::{Queue, QueueError};
use crate::secrets::{SecretFetcher, Secrets};

/// The time from a request's arrival by which the queue must have answered;
/// past it the receiver answers 503 rather than keep Intercom waiting (it
/// gives five seconds; the contract promises three).
pub const ANSWER_BUDGET: Duration = Duration::from_millis(2700);

/// The metric counting requests, by [`ANSWER_DIMENSION`].
pub const REQUESTS_METRIC: &str = "Requests";
/// The dimension of [`REQUESTS_METRIC`]: [`answer_name`]'s value.
pub const ANSWER_DIMENSION: &str = "Answer";
/// The metric of each SQS send's duration, in milliseconds.
pub const QUEUE_SEND_TIME_METRIC: &str = "QueueSendTime";

/// The header Intercom names the subscription with.
pub const SUBSCRIPTION_HEADER: &str = "intercom-webhook-subscription-id";

/// Why a request was not accepted: one status and one body each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not an HTTP event from API Gateway, a function URL or an ALB.
    InvalidEvent,
    MethodNotAllowed,
    ForbiddenSource,
    PayloadTooLarge,
    InvalidSignature(SignatureError),
    InvalidNotification(String),
    ForbiddenApp,
    QueueUnavailable(QueueError),
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidEvent | Self::InvalidNotification(_) => 400,
            Self::InvalidSignature(_) => 401,
            Self::ForbiddenSource | Self::ForbiddenApp => 403,
            Self::MethodNotAllowed => 405,
            Self::PayloadTooLarge => 413,
            Self::QueueUnavailable(_) => 503,
        }
    }

    /// The `error` code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidEvent => "invalid_event",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::ForbiddenSource => "forbidden_source",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::InvalidNotification(_) => "invalid_notification",
            Self::ForbiddenApp => "forbidden_app",
            Self::QueueUnavailable(_) => "queue_unavailable",
        }
    }

    fn response(&self) -> HttpResponse {
        let body = match self {
            Self::InvalidNotification(detail) => json!({ "error": self.code(), "detail": detail }),
            _ => json!({ "error": self.code() }),
        };
        let headers = match self {
            Self::MethodNotAllowed => vec![("allow", "POST, HEAD")],
            _ => Vec::new(),
        };
        HttpResponse {
            status: self.status(),
            headers,
            body: Some(body.to_string()),
        }
    }
}

impl From<EnvelopeError> for Rejection {
    fn from(error: EnvelopeError) -> Self {
        Self::InvalidNotification(error.to_string())
    }
}

/// A request that was answered with a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    Head,
    Pong,
    Queued { notification_id: Option<String> },
}

impl Accepted {
    fn response(&self) -> HttpResponse {
        let (status, body) = match self {
            Self::Head => (200, None),
            Self::Pong => (200, Some(json!({ "status": "pong" }))),
            Self::Queued { notification_id } => (
                202,
                Some(json!({ "status": "queued", "notification_id": notification_id })),
            ),
        };
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.map(|b| b.to_string()),
        }
    }
}

/// What the request log line says besides the status.
#[derive(Debug, Default)]
struct Noted {
    topic: Option<String>,
    notification_id: Option<String>,
    app_id: Option<String>,
    /// How long the SQS send took, when one finished.
    queue_send_ms: Option<f64>,
}

/// The receiver: configuration, secrets and queue, built once at cold start.
#[derive(Debug)]
pub struct Receiver<Q, F> {
    pub queue: Q,
    pub secrets: Secrets<F>,
    pub fifo: bool,
    pub allowed_sources: Option<AllowList>,
    pub allowed_app_ids: Option<HashSet<String>>,
    pub forward_ping: bool,
}

/// The answers whose `Requests` the stack's alarms read
/// (`SignatureFailuresAlarm`, `ForbiddenSourceAlarm`; a test holds the
/// template to this list): the only ones counted with `METRICS=alarms`.
pub const ALARMED_ANSWERS: [&str; 2] = ["invalid_signature", "forbidden_source"];

/// Whether every answer's `Requests` and `QueueSendTime` are recorded:
/// every metric on (`METRICS=on`), not only those the alarms read. Set
/// once by [`describe_metrics`].
static DETAILED: AtomicBool = AtomicBool::new(true);

/// Gives the recorder each metric's unit (CloudWatch shows none without),
/// and whether to record the metrics no alarm reads (`detailed`). Call
/// once, after installing the recorder.
pub fn describe_metrics(detailed: bool) {
    DETAILED.store(detailed, Ordering::Relaxed);
    metrics::describe_counter!(REQUESTS_METRIC, metrics::Unit::Count, "requests by answer");
    metrics::describe_histogram!(
        QUEUE_SEND_TIME_METRIC,
        metrics::Unit::Milliseconds,
        "duration of each SQS send"
    );
}

/// The `Answer` a request's outcome is counted under: one of a fixed set.
pub fn answer_name(outcome: &Result<Accepted, Rejection>) -> &'static str {
    match outcome {
        Ok(Accepted::Head) => "head",
        Ok(Accepted::Pong) => "pong",
        Ok(Accepted::Queued { .. }) => "queued",
        Err(rejection) => rejection.code(),
    }
}

impl<Q: Queue, F: SecretFetcher> Receiver<Q, F> {
    /// Answers a raw Lambda event with a response shaped for its origin.
    /// `trace_header` is the invocation's X-Ray trace header (Lambda's
    /// `Lambda-Runtime-Trace-Id`); a queued message carries it to SQS.
    pub async fn handle_event(&self, event: &[u8], trace_header: Option<&str>) -> ResponseEvent {
        let request = HttpRequest::from_event(event);
        let origin = request.origin;
        self.handle(&request, trace_header).await.into_event(origin)
    }

    /// Answers one request, and logs one line about it.
    pub async fn handle(&self, request: &HttpRequest, trace_header: Option<&str>) -> HttpResponse {
        let started = Instant::now();
        let mut noted = Noted::default();
        let outcome = self
            .answer(request, &mut noted, started, trace_header)
            .await;
        let response = match &outcome {
            Ok(accepted) => accepted.response(),
            Err(rejection) => rejection.response(),
        };
        // Both under the same dimensions, so that one EMF document per
        // request carries them (a document per dimension set otherwise).
        let answer = answer_name(&outcome);
        let detailed = DETAILED.load(Ordering::Relaxed);
        if detailed || ALARMED_ANSWERS.contains(&answer) {
            metrics::counter!(REQUESTS_METRIC, ANSWER_DIMENSION => answer).increment(1);
        }
        if let Some(ms) = noted.queue_send_ms.filter(|_| detailed) {
            metrics::histogram!(QUEUE_SEND_TIME_METRIC, ANSWER_DIMENSION => answer).record(ms);
        }
        log_request(
            request,
            &noted,
            &outcome,
            response.status,
            started.elapsed(),
        );
        response
    }

    async fn answer(
        &self,
        request: &HttpRequest,
        noted: &mut Noted,
        started: Instant,
        trace_header: Option<&str>,
    ) -> Result<Accepted, Rejection> {
        if request.origin == Origin::Unknown {
            return Err(Rejection::InvalidEvent);
        }
        match request.method.as_str() {
            "HEAD" => return Ok(Accepted::Head),
            "POST" => {}
            _ => return Err(Rejection::MethodNotAllowed),
        }
        if let Some(list) = &self.allowed_sources
            && !list.allows(request.source_ip).await
        {
            return Err(Rejection::ForbiddenSource);
        }
        let body = match &request.body {
            Ok(body) => body.as_slice(),
            Err(BodyError::UndecodableBase64) => {
                return Err(Rejection::InvalidNotification(
                    "body is marked base64-encoded but is not valid base64".into(),
                ));
            }
            Err(BodyError::UnknownEvent) => return Err(Rejection::InvalidEvent),
        };
        // A body longer than the limit fits in no encoding; anything else is
        // judged by how SQS would carry it. Without a payload bucket such a
        // body is refused before any hashing; with one it goes to S3.
        let offloads = self.queue.payload_bucket().is_some();
        if body.len() > MAX_MESSAGE_BYTES && !offloads {
            return Err(Rejection::PayloadTooLarge);
        }
        let carried = CarriedBody::of(body);
        let oversized = body.len() > MAX_MESSAGE_BYTES || !carried.fits();
        if oversized && !offloads {
            return Err(Rejection::PayloadTooLarge);
        }

        let signature = request.header(SIGNATURE_HEADER);
        let verified = match self
            .secrets
            .verifier()
            .verify(body, signature.map(str::as_bytes))
        {
            Ok(verified) => verified,
            Err(SignatureError::Mismatch) => match self.secrets.refresh_after_failure().await {
                Some(refreshed) => refreshed
                    .verify(body, signature.map(str::as_bytes))
                    .map_err(Rejection::InvalidSignature)?,
                None => return Err(Rejection::InvalidSignature(SignatureError::Mismatch)),
            },
            Err(other) => return Err(Rejection::InvalidSignature(other)),
        };

        let envelope = Envelope::parse(verified)?;
        noted.topic = Some(envelope.topic.clone());
        noted.notification_id = envelope.id.as_deref().map(str::to_owned);
        noted.app_id = Some(envelope.app_id.clone());
        if let Some(allowed) = &self.allowed_app_ids
            && !allowed.contains(&envelope.app_id)
        {
            return Err(Rejection::ForbiddenApp);
        }
        if envelope.is_ping() && !self.forward_ping {
            return Ok(Accepted::Pong);
        }

        let delivery = Delivery {
            signature: signature.unwrap_or_default(),
            subscription_id: request.header(SUBSCRIPTION_HEADER),
            received_at: SystemTime::now(),
        };
        let mut message = QueueMessage::build(verified, carried, &envelope, &delivery, self.fifo);
        let mut payload_key = None;
        if oversized || !message.fits() {
            let Some(bucket) = self.queue.payload_bucket() else {
                return Err(Rejection::PayloadTooLarge);
            };
            let key = queue_message::payload_key(body);
            message = message.pointing_to(bucket, &key, body.len());
            payload_key = Some(key);
        }
        // The body in S3 first (when it goes there), then the message that
        // points at it: 202 only once both are acknowledged, in one budget.
        let queued = async {
            if let Some(key) = &payload_key {
                self.queue.store_payload(key, body).await?;
            }
            let sending = Instant::now();
            let sent = self.queue.send(&message, trace_header).await;
            noted.queue_send_ms = Some(sending.elapsed().as_secs_f64() * 1000.0);
            sent
        };
        let deadline = started + ANSWER_BUDGET;
        match tokio::time::timeout_at(deadline, queued).await {
            Ok(Ok(())) if envelope.is_ping() => Ok(Accepted::Pong),
            Ok(Ok(())) => Ok(Accepted::Queued {
                notification_id: noted.notification_id.clone(),
            }),
            Ok(Err(error)) => Err(Rejection::QueueUnavailable(error)),
            Err(_) => Err(Rejection::QueueUnavailable(QueueError(format!(
                "no acknowledgement within {} ms",
                ANSWER_BUDGET.as_millis()
            )))),
        }
    }
}

fn log_request(
    request: &HttpRequest,
    noted: &Noted,
    outcome: &Result<Accepted, Rejection>,
    status: u16,
    elapsed: Duration,
) {
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let source_ip: Option<IpAddr> = request.source_ip;
    let source_ip = source_ip.map(tracing::field::display);
    let topic = noted.topic.as_deref();
    let notification_id = noted.notification_id.as_deref();
    let app_id = noted.app_id.as_deref();
    let method = request.method.as_str();
    let (error, cause, reason) = match outcome {
        Ok(_) => (None, None, None),
        Err(Rejection::QueueUnavailable(cause)) => {
            (Some("queue_unavailable"), Some(cause.to_string()), None)
        }
        Err(rejection) => {
            let reason = match rejection {
                Rejection::InvalidSignature(e) => Some(e.to_string()),
                Rejection::InvalidNotification(detail) => Some(detail.clone()),
                _ => None,
            };
            (Some(rejection.code()), None, reason)
        }
    };
    // One event with one set of fields; its level says whose move it is: a
    // queue failure is the operator's (ERROR), a rejection the sender's (WARN).
    macro_rules! request_event {
        ($level:expr) => {
            tracing::event!(
                $level,
                status,
                error,
                cause = cause.as_deref(),
                reason = reason.as_deref(),
                topic,
                notification_id,
                app_id,
                method,
                source_ip,
                duration_ms,
                "request"
            )
        };
    }
    match outcome {
        Ok(_) => request_event!(tracing::Level::INFO),
        Err(Rejection::QueueUnavailable(_)) => request_event!(tracing::Level::ERROR),
        Err(_) => request_event!(tracing::Level::WARN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// API Gateway answers a `null` response with a 502: every answer, in
    /// every origin's shape, must serialise to an object with its status.
    #[test]
    fn every_answer_serialises_to_an_object_in_every_shape() {
        let rejections = [
            Rejection::InvalidEvent,
            Rejection::MethodNotAllowed,
            Rejection::ForbiddenSource,
            Rejection::PayloadTooLarge,
            Rejection::InvalidSignature(SignatureError::Mismatch),
            Rejection::InvalidNotification("`topic` must be \"x\" \u{0}\u{FFFF}".into()),
            Rejection::ForbiddenApp,
            Rejection::QueueUnavailable(QueueError("timed out".into())),
        ];
        let accepted = [
            Accepted::Head,
            Accepted::Pong,
            Accepted::Queued {
                notification_id: Some("notif_\"1\"".into()),
            },
            Accepted::Queued {
                notification_id: None,
            },
        ];
        let responses = rejections
            .iter()
            .map(Rejection::response)
            .chain(accepted.iter().map(Accepted::response));
        for response in responses {
            for origin in [
                Origin::ApiGatewayV1,
                Origin::ApiGatewayV2,
                Origin::Alb,
                Origin::Unknown,
            ] {
                let status = response.status;
                let event = response.clone().into_event(origin);
                let json = serde_json::to_value(&event).expect("serialises");
                assert_eq!(json["statusCode"], status, "{json}");
                assert!(json["body"].is_string(), "{json}");
                let text = serde_json::to_string(&event).expect("serialises");
                assert!(text.starts_with('{'), "{text}");
                if let Some(body) = response.body.as_deref() {
                    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
                    assert!(body.is_object(), "{body}");
                }
            }
        }
    }
}
