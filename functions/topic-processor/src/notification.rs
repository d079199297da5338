//! A record's notification, read once: its exact bytes, its typed item and meta, and what the receiver recorded of its delivery.
//!
//! The body is the message's own text, its base64 decoding when the
//! `content_encoding` attribute says so, or, for a pointer message (the
//! Amazon SQS Extended Client Library's format), the S3 object it names
//! ([`Payloads`]). It is then parsed once ([`record::decode`]).

use aws_lambda_events::event::sqs::SqsMessage;
use intercom_webhook::dispatch::{Failure, Meta};
use intercom_webhook::models::Item;
use intercom_webhook::queue_message::{self, attribute};
use intercom_webhook::record::{self, Decoded};
use intercom_webhook::topic::Topic;

use crate::payloads::Payloads;

/// What the receiver recorded of a notification's delivery, from the
/// message's attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The `X-Hub-Signature` the notification came with.
    pub signature: Option<String>,
    /// When the receiver took it (RFC 3339).
    pub received_at: Option<String>,
    /// The `intercom-webhook-subscription-id` header.
    pub subscription_id: Option<String>,
    /// The run of `intercom-dev replay` that queued it again, if one did.
    pub replay: Option<String>,
    /// Whether `intercom-dev backfill` queued it (a synced notification).
    pub synced: bool,
}

impl Delivery {
    pub fn of(record: &SqsMessage) -> Self {
        Self {
            signature: message_attribute(record, attribute::SIGNATURE),
            received_at: message_attribute(record, attribute::RECEIVED_AT),
            subscription_id: message_attribute(record, attribute::SUBSCRIPTION_ID),
            replay: message_attribute(record, attribute::REPLAY),
            synced: message_attribute(record, attribute::SYNCED).is_some(),
        }
    }
}

/// A valid notification, as everything after the decode works from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The bytes the receiver accepted, exactly.
    pub body: Vec<u8>,
    pub meta: Meta,
    /// What the notification says, hashed so that every delivery of it
    /// hashes alike (`intercom_webhook::envelope::content_sha256`).
    pub content_sha256: String,
    pub delivery: Delivery,
}

impl Notification {
    /// Reads `record`'s body and decodes it: the notification, and its item
    /// for the handler.
    pub async fn read(record: &SqsMessage, payloads: &Payloads) -> Result<(Self, Item), Failure> {
        let text = record.body.as_deref().unwrap_or_default();
        let body = match queue_message::payload_pointer(text) {
            Some((bucket, key)) => payloads
                .fetch(&bucket, &key)
                .await
                .map_err(Failure::PayloadUnavailable)?,
            None => {
                let encoding = message_attribute(record, attribute::CONTENT_ENCODING);
                queue_message::decode_body(text, encoding.as_deref())
                    .map_err(Failure::Invalid)?
                    .into_owned()
            }
        };
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let Decoded {
            mut item,
            mut meta,
            content_sha256,
        } = record::decode(&body, message_id).map_err(Failure::Invalid)?;
        let delivery = Delivery::of(record);
        // Only `intercom-dev backfill` marks a synced notification; a
        // `synced.*` topic that came through the receiver is not one, and
        // is routed as the unknown topic it is to Intercom.
        if Topic::SYNCED.contains(&meta.topic) && !delivery.synced {
            let raw: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Failure::Invalid(e.to_string()))?;
            let object = match &raw["data"]["item"] {
                serde_json::Value::Object(map) => map.clone(),
                _ => serde_json::Map::new(),
            };
            item = Item::from_object(Topic::Unknown, object)
                .map_err(|e| Failure::Invalid(e.to_string()))?;
            meta.topic = Topic::Unknown;
        }
        let notification = Self {
            body,
            meta,
            content_sha256,
            delivery,
        };
        Ok((notification, item))
    }
}

/// A string message attribute of `record`.
pub fn message_attribute(record: &SqsMessage, name: &str) -> Option<String> {
    record
        .message_attributes
        .get(name)
        .and_then(|a| a.string_value.clone())
}
