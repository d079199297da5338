//! One record, start to end: decode, the idempotency lock, the handler, and what the record came to.
//!
//! A [`Processor`] is built once at cold start. For each record it decodes
//! the body (base64 when `content_encoding` says so; from S3 when the
//! message is a pointer the receiver sent) and parses the
//! notification once; with idempotency on it takes the notification's lock
//! (a `duplicate` stops here), runs the effects until the deadline, and then
//! marks the notification completed or releases the lock so a retry runs.
//! The effects are the topic's handler and the configured destinations.

use std::borrow::Cow;

use aws_lambda_events::event::sqs::SqsMessage;
use intercom_webhook::dispatch::{Failure, Meta, Outcome, Registry};
use intercom_webhook::envelope::body_sha256;
use intercom_webhook::models::Item;
use intercom_webhook::queue_message::{self, attribute};
use intercom_webhook::record;
use tokio::time::Instant;

use crate::destinations::{Destinations, Notification};
use crate::idempotency::{Idempotency, Refusal};
use crate::payloads::Payloads;
use crate::telemetry;

/// What one record came to, with what its log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReport {
    pub message_id: String,
    pub outcome: Outcome,
    pub topic: Option<String>,
    pub notification_id: Option<String>,
    pub created_at: Option<i64>,
    /// The X-Ray trace id the receiver's request ran under, from the
    /// record's `AWSTraceHeader` system attribute.
    pub trace_id: Option<String>,
}

impl RecordReport {
    /// A report for `record` before anything is known of its body.
    pub fn of(record: &SqsMessage, outcome: Outcome) -> Self {
        Self {
            message_id: record.message_id.clone().unwrap_or_default(),
            outcome,
            topic: message_attribute(record, attribute::TOPIC),
            notification_id: message_attribute(record, attribute::NOTIFICATION_ID),
            created_at: None,
            trace_id: record
                .attributes
                .get(queue_message::TRACE_HEADER_ATTRIBUTE)
                .and_then(|header| telemetry::trace_id(header))
                .map(str::to_owned),
        }
    }
}

/// A string message attribute of `record`.
pub fn message_attribute(record: &SqsMessage, name: &str) -> Option<String> {
    record
        .message_attributes
        .get(name)
        .and_then(|a| a.string_value.clone())
}

/// Everything built once at cold start that a record needs.
#[derive(Debug)]
pub struct Processor {
    pub registry: Registry,
    /// `None`: idempotency is off (`IDEMPOTENCY_TABLE` unset).
    pub idempotency: Option<Idempotency>,
    /// The event bus and the archive, where configured.
    pub destinations: Destinations,
    /// Reads bodies the receiver stored in S3.
    pub payloads: Payloads,
}

impl Processor {
    /// A processor that hands records to `registry`'s handlers, nothing more.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            idempotency: None,
            destinations: Destinations::default(),
            payloads: Payloads::default(),
        }
    }

    /// The same, delivering every valid notification to `destinations` too.
    pub fn with_destinations(mut self, destinations: Destinations) -> Self {
        self.destinations = destinations;
        self
    }

    /// The same, running each notification's effects at most once.
    pub fn with_idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }

    /// Processes one record; work still running at `deadline` is abandoned
    /// and the record reported failed.
    pub async fn record(&self, record: &SqsMessage, deadline: Instant) -> RecordReport {
        let mut report = RecordReport::of(record, Outcome::Failed(Failure::OutOfTime));
        if Instant::now() >= deadline {
            return report;
        }
        let raw = record.body.as_deref().unwrap_or_default();
        let encoding = message_attribute(record, attribute::CONTENT_ENCODING);
        let fetched;
        let body = if let Some((bucket, key)) = queue_message::payload_pointer(raw) {
            // The receiver stored the body in S3 (Extended Client pointer).
            let fetching = self.payloads.fetch(&bucket, &key);
            match tokio::time::timeout_at(deadline, fetching).await {
                Err(_) => return report,
                Ok(Err(error)) => {
                    report.outcome = Outcome::Failed(Failure::PayloadUnavailable(error));
                    return report;
                }
                Ok(Ok(bytes)) => {
                    fetched = bytes;
                    Cow::Borrowed(fetched.as_slice())
                }
            }
        } else {
            match queue_message::decode_body(raw, encoding.as_deref()) {
                Ok(body) => body,
                Err(reason) => {
                    report.outcome = Outcome::Failed(Failure::Invalid(reason));
                    return report;
                }
            }
        };
        let (item, meta) = match record::decode(&body, &report.message_id) {
            Ok(decoded) => decoded,
            Err(reason) => {
                report.outcome = Outcome::Failed(Failure::Invalid(reason));
                return report;
            }
        };
        report.topic = Some(meta.topic_name.clone());
        report.notification_id.clone_from(&meta.notification_id);
        report.created_at = Some(meta.created_at);
        let replay = message_attribute(record, attribute::REPLAY);
        let signature = message_attribute(record, attribute::SIGNATURE);
        let received_at = message_attribute(record, attribute::RECEIVED_AT);
        let subscription_id = message_attribute(record, attribute::SUBSCRIPTION_ID);
        let delivery = Delivery {
            signature: signature.as_deref(),
            received_at: received_at.as_deref(),
            subscription_id: subscription_id.as_deref(),
            replay: replay.as_deref(),
        };
        report.outcome = self
            .effects_once(&body, delivery, item, meta, deadline)
            .await;
        report
    }

    /// Runs the effects, under the notification's idempotency lock when on.
    async fn effects_once(
        &self,
        body: &[u8],
        delivery: Delivery<'_>,
        item: Item,
        meta: Meta,
        deadline: Instant,
    ) -> Outcome {
        let Some(idempotency) = &self.idempotency else {
            return self.effects(body, delivery, item, meta, deadline).await;
        };
        let until = deadline.saturating_duration_since(Instant::now());
        // A replayed notification runs once per replay run, beside (not
        // instead of) its original processing.
        let replayed = delivery.replay.map(|run| {
            let id = meta
                .notification_id
                .clone()
                .unwrap_or_else(|| format!("sha256:{}", body_sha256(body)));
            format!("{id}#replay:{run}")
        });
        let lock = match idempotency
            .claim(
                replayed.as_deref().or(meta.notification_id.as_deref()),
                body,
                until,
            )
            .await
        {
            Ok(lock) => lock,
            Err(Refusal::AlreadyDone) => return Outcome::Duplicate,
            Err(Refusal::InProgress) => return Outcome::Failed(Failure::InProgress),
            Err(Refusal::PayloadMismatch) => return Outcome::Failed(Failure::PayloadMismatch),
            Err(Refusal::Unavailable(error)) => {
                return Outcome::Failed(Failure::IdempotencyUnavailable(error.to_string()));
            }
        };
        let outcome = self.effects(body, delivery, item, meta, deadline).await;
        let stored = match outcome {
            Outcome::Failed(_) => idempotency.release(lock).await,
            _ => idempotency.complete(lock).await,
        };
        if let Err(error) = stored {
            // The effects ran (or failed) all the same; the lock expires
            // with this invocation. Reporting a completed record failed
            // would only run it again.
            tracing::warn!(error = %error, outcome = outcome.name(), "could not record the idempotency outcome");
        }
        outcome
    }

    /// The handler for the notification's topic and the destinations, side
    /// by side, until `deadline`. With a destination configured a topic
    /// without a handler is `processed` once delivered.
    async fn effects(
        &self,
        body: &[u8],
        delivery: Delivery<'_>,
        item: Item,
        meta: Meta,
        deadline: Instant,
    ) -> Outcome {
        let notification = Notification {
            body,
            meta: &meta,
            signature: delivery.signature,
            received_at: delivery.received_at,
            subscription_id: delivery.subscription_id,
        };
        let dispatched = async {
            let started = Instant::now();
            let outcome = self.registry.dispatch(item, meta.clone()).await;
            // `unhandled` is the one outcome no handler ran for.
            if outcome != Outcome::Unhandled {
                telemetry::handler_time(&meta.topic_name, started.elapsed());
            }
            outcome
        };
        let both = async { tokio::join!(dispatched, self.destinations.deliver(notification)) };
        match tokio::time::timeout_at(deadline, both).await {
            Err(_) => Outcome::Failed(Failure::OutOfTime),
            Ok((Outcome::Failed(failure), _) | (_, Err(failure))) => Outcome::Failed(failure),
            Ok((Outcome::Unhandled, Ok(()))) if self.destinations.any() => Outcome::Processed,
            Ok((outcome, Ok(()))) => outcome,
        }
    }
}

/// What the receiver recorded of the delivery, for the archive, and the
/// replay run of a replayed message.
#[derive(Debug, Clone, Copy)]
struct Delivery<'a> {
    signature: Option<&'a str>,
    received_at: Option<&'a str>,
    subscription_id: Option<&'a str>,
    /// The replay run, for a message `intercom-dev replay` queued.
    replay: Option<&'a str>,
}
