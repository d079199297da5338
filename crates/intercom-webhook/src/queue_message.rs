//! The queue message contract: what the receiver sends to SQS for a notification.
//!
//! - The body is the request body byte for byte. Only where SQS cannot carry it
//!   as text (it is not UTF-8, or holds characters outside the ones SQS
//!   allows) it is base64-encoded, and `content_encoding` says `base64`.
//! - String attributes: `topic`, `app_id`, `notification_id`, `item_type`,
//!   `item_id`, `signature`, `subscription_id`, `received_at`,
//!   `content_encoding`; each only when it has a value (`replay` and
//!   `synced` only on what `intercom-dev` queues). Attribute values are
//!   routing hints: a character SQS cannot carry becomes U+FFFD there, while
//!   the body always keeps the exact bytes.
//! - FIFO queues: the deduplication id is the notification id (SHA-256 of the
//!   body for a null id) and the group id names the object the notification is
//!   about, `{app_id}:{item_type}:{item_id}`, falling back to `{app_id}`. An id
//!   SQS would refuse (over 128 characters, or outside its character set) is
//!   replaced by `sha256:` and its SHA-256, so that bad input never makes a
//!   send fail. A replayed message's deduplication id is its run's and the
//!   notification's ([`QueueMessage::replayed`]).

use std::borrow::Cow;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::envelope::{Envelope, body_sha256};
use crate::signature::VerifiedBody;

/// The most SQS takes in one message: body plus attribute names, types and values.
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;

/// The most message attributes SQS takes on one message.
pub const MAX_ATTRIBUTES: usize = 10;

/// The longest FIFO group or deduplication id SQS accepts.
pub const MAX_FIFO_ID_LEN: usize = 128;

/// Attribute names, as consumers read them.
pub mod attribute {
    pub const TOPIC: &str = "topic";
    pub const APP_ID: &str = "app_id";
    pub const NOTIFICATION_ID: &str = "notification_id";
    pub const ITEM_TYPE: &str = "item_type";
    pub const ITEM_ID: &str = "item_id";
    pub const SIGNATURE: &str = "signature";
    pub const SUBSCRIPTION_ID: &str = "subscription_id";
    pub const RECEIVED_AT: &str = "received_at";
    pub const CONTENT_ENCODING: &str = "content_encoding";
    /// Set by `intercom-dev replay` only: the replay run the message belongs
    /// to (the processor runs a replayed notification once per run).
    pub const REPLAY: &str = "replay";
    /// Set by `intercom-dev backfill` only, to `intercom-dev backfill`: the
    /// message is a synced notification (`crate::synced`). The receiver
    /// never sets it, whatever a body says, so a `synced.*` topic without
    /// it did not come from `backfill`.
    pub const SYNCED: &str = "synced";
    /// On a pointer message (the body is in S3): the body's size in bytes,
    /// of data type `Number`, as the Amazon SQS Extended Client Library
    /// names it.
    pub const EXTENDED_PAYLOAD_SIZE: &str = "ExtendedPayloadSize";
}

/// The SQS system attribute the receiver puts the X-Ray trace header of its
/// invocation in, so X-Ray links a webhook's request to its processing.
/// Not a message attribute: it does not count toward the message's size.
pub const TRACE_HEADER_ATTRIBUTE: &str = "AWSTraceHeader";

/// The class name that opens an Extended Client pointer body.
pub const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";

/// The value of `content_encoding` for a base64 body.
pub const BASE64_ENCODING: &str = "base64";

/// The data type of every attribute but [`attribute::EXTENDED_PAYLOAD_SIZE`].
pub const ATTRIBUTE_DATA_TYPE: &str = "String";

/// The data type of the attribute `name`: `Number` for
/// [`attribute::EXTENDED_PAYLOAD_SIZE`], else `String` (the same length, so
/// [`QueueMessage::size`] counts either).
pub fn attribute_data_type(name: &str) -> &'static str {
    if name == attribute::EXTENDED_PAYLOAD_SIZE {
        "Number"
    } else {
        ATTRIBUTE_DATA_TYPE
    }
}

/// Facts about the delivery that are not in the body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The `X-Hub-Signature` value that verified, so a consumer can verify again.
    pub signature: &'a str,
    /// The `intercom-webhook-subscription-id` header, when it came.
    pub subscription_id: Option<&'a str>,
    /// When the receiver got the request.
    pub received_at: SystemTime,
}

/// FIFO ordering and deduplication ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoIds {
    pub group_id: String,
    pub deduplication_id: String,
}

/// A message ready for `SendMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage<'a> {
    /// The message body: the request body as text, or its base64.
    pub body: Cow<'a, str>,
    /// `(name, value)` pairs, all of data type `String`, none empty.
    pub attributes: Vec<(&'static str, Cow<'a, str>)>,
    /// Present for FIFO queues.
    pub fifo: Option<FifoIds>,
}

/// A request body as a queue message carries it: the text itself where SQS
/// can carry it, otherwise its base64 (and `content_encoding` says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarriedBody<'a> {
    Text(&'a str),
    Base64(String),
}

impl<'a> CarriedBody<'a> {
    /// How SQS will carry `bytes`.
    pub fn of(bytes: &'a [u8]) -> Self {
        match sqs_text(bytes) {
            Some(text) => Self::Text(text),
            None => Self::Base64(BASE64.encode(bytes)),
        }
    }

    /// The body's size in the message.
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message body.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Text(text) => text,
            Self::Base64(encoded) => encoded,
        }
    }

    /// Whether the body alone fits in one message (attributes not counted).
    pub fn fits(&self) -> bool {
        self.len() <= MAX_MESSAGE_BYTES
    }
}

impl<'a> QueueMessage<'a> {
    /// Builds the message for a verified, validated notification; `carried`
    /// is [`CarriedBody::of`] the same bytes (the receiver needs it before
    /// the signature is checked, to refuse a body too large for SQS first).
    pub fn build(
        body: VerifiedBody<'a>,
        carried: CarriedBody<'a>,
        envelope: &'a Envelope,
        delivery: &Delivery<'a>,
        fifo: bool,
    ) -> Self {
        let bytes = body.as_bytes();
        let (text, base64) = match carried {
            CarriedBody::Text(text) => (Cow::Borrowed(text), false),
            CarriedBody::Base64(encoded) => (Cow::Owned(encoded), true),
        };
        let candidates: [(&'static str, Option<Cow<'a, str>>); 9] = [
            (attribute::TOPIC, Some(Cow::Borrowed(&envelope.topic))),
            (attribute::APP_ID, Some(Cow::Borrowed(&envelope.app_id))),
            (
                attribute::NOTIFICATION_ID,
                envelope.id.as_deref().map(Cow::Borrowed),
            ),
            (
                attribute::ITEM_TYPE,
                envelope.item_type().map(Cow::Borrowed),
            ),
            (attribute::ITEM_ID, envelope.item_id()),
            (
                attribute::SIGNATURE,
                Some(Cow::Borrowed(delivery.signature.trim())),
            ),
            (
                attribute::SUBSCRIPTION_ID,
                delivery.subscription_id.map(|s| Cow::Borrowed(s.trim())),
            ),
            (
                attribute::RECEIVED_AT,
                Some(Cow::Owned(rfc3339_millis(delivery.received_at))),
            ),
            (
                attribute::CONTENT_ENCODING,
                base64.then_some(Cow::Borrowed(BASE64_ENCODING)),
            ),
        ];
        let attributes = candidates
            .into_iter()
            .filter_map(|(name, value)| Some((name, sqs_attribute_value(value?)?)))
            .collect();
        Self {
            body: text,
            attributes,
            fifo: fifo.then(|| fifo_ids(bytes, envelope)),
        }
    }

    /// The same message owning its strings, to keep past the request (an
    /// in-memory queue, a test's record of what was sent).
    pub fn into_owned(self) -> QueueMessage<'static> {
        QueueMessage {
            body: Cow::Owned(self.body.into_owned()),
            attributes: self
                .attributes
                .into_iter()
                .map(|(n, v)| (n, Cow::Owned(v.into_owned())))
                .collect(),
            fifo: self.fifo,
        }
    }

    /// The value of the attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The size SQS counts against [`MAX_MESSAGE_BYTES`].
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + ATTRIBUTE_DATA_TYPE.len() + value.len())
                .sum::<usize>()
    }

    /// Whether SQS would take this message.
    pub fn fits(&self) -> bool {
        self.size() <= MAX_MESSAGE_BYTES
    }

    /// The same message as `intercom-dev replay` queues it in run `run_id`:
    /// with the `replay` attribute, and on FIFO queues the deduplication id
    /// `{run_id}:{original id}` (hashed as [`fifo_id`] does when too long).
    /// SQS remembers a deduplication id for five minutes after its first
    /// send, deleted or not, and drops a second send inside that window
    /// while answering it like any other: the original id would lose a
    /// replay made soon after the notification came. Per run and
    /// notification, a second run queues again and a run retried drops
    /// what it already queued.
    pub fn replayed(mut self, run_id: &str) -> QueueMessage<'a> {
        self.attributes
            .push((attribute::REPLAY, Cow::Owned(run_id.to_owned())));
        if let Some(fifo) = &mut self.fifo {
            fifo.deduplication_id = fifo_id(&format!("{run_id}:{}", fifo.deduplication_id));
        }
        self
    }

    /// The same message marked as queued by `intercom-dev backfill`
    /// ([`attribute::SYNCED`]).
    pub fn synced(mut self) -> QueueMessage<'a> {
        self.attributes
            .push((attribute::SYNCED, Cow::Borrowed(crate::synced::SOURCE)));
        self
    }

    /// The same message with its body in S3 (`bucket`, `key`) instead: the
    /// Extended Client Library's pointer body, `ExtendedPayloadSize` = the
    /// body's `size` in bytes, every other attribute and the FIFO ids kept
    /// (but `content_encoding`: the object holds the bytes themselves).
    pub fn pointing_to(mut self, bucket: &str, key: &str, size: usize) -> QueueMessage<'a> {
        let pointer = serde_json::json!([POINTER_CLASS, {"s3BucketName": bucket, "s3Key": key}]);
        self.body = Cow::Owned(pointer.to_string());
        self.attributes
            .retain(|(name, _)| *name != attribute::CONTENT_ENCODING);
        self.attributes.push((
            attribute::EXTENDED_PAYLOAD_SIZE,
            Cow::Owned(size.to_string()),
        ));
        self
    }
}

/// The S3 key a body too large for SQS is stored under: its SHA-256, so a
/// retry of the same bytes writes the same object.
pub fn payload_key(body: &[u8]) -> String {
    format!("{}.json", body_sha256(body))
}

/// The bucket and key of an Extended Client pointer body, or `None` when
/// `body` is not one.
pub fn payload_pointer(body: &str) -> Option<(String, String)> {
    if !body.starts_with('[') {
        return None;
    }
    let serde_json::Value::Array(parts) = serde_json::from_str(body).ok()? else {
        return None;
    };
    match parts.as_slice() {
        [
            serde_json::Value::String(class),
            serde_json::Value::Object(pointer),
        ] if class == POINTER_CLASS => {
            let bucket = pointer.get("s3BucketName")?.as_str()?;
            let key = pointer.get("s3Key")?.as_str()?;
            Some((bucket.to_owned(), key.to_owned()))
        }
        _ => None,
    }
}

/// The notification bytes of a received message body: the body itself, or its
/// base64 decoding when the `content_encoding` attribute says `base64`.
pub fn decode_body<'b>(
    body: &'b str,
    content_encoding: Option<&str>,
) -> Result<Cow<'b, [u8]>, String> {
    match content_encoding {
        None => Ok(Cow::Borrowed(body.as_bytes())),
        Some(BASE64_ENCODING) => BASE64
            .decode(body.as_bytes())
            .map(Cow::Owned)
            .map_err(|e| format!("content_encoding is base64 but the body is not: {e}")),
        Some(other) => Err(format!("unknown content_encoding `{other}`")),
    }
}

/// The body as text when SQS can carry it: valid UTF-8 of characters SQS allows.
pub fn sqs_text(body: &[u8]) -> Option<&str> {
    std::str::from_utf8(body)
        .ok()
        .filter(|text| sqs_carries(text))
}

/// Whether SQS carries all of `text`: its characters are in
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
/// In UTF-8 text the only characters outside those ranges are the C0
/// controls but tab, LF and CR, and U+FFFE and U+FFFF (a `str` holds no
/// surrogates), so those are what is looked for.
fn sqs_carries(text: &str) -> bool {
    !text
        .bytes()
        .any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
        && !text.contains('\u{FFFE}')
        && !text.contains('\u{FFFF}')
}

/// Whether SQS carries the character `c` (see [`sqs_carries`]).
fn sqs_allows(c: char) -> bool {
    sqs_carries(c.encode_utf8(&mut [0; 4]))
}

/// `time` in RFC 3339, UTC, with milliseconds (`2025-11-22T22:20:00.123Z`).
/// A clock outside jiff's range (years -9999 to 9999) writes the epoch.
fn rfc3339_millis(time: SystemTime) -> String {
    let timestamp = jiff::Timestamp::try_from(time).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{timestamp:.3}")
}

/// An attribute value as SQS can carry it: `None` when empty, and every
/// character SQS refuses replaced by U+FFFD.
fn sqs_attribute_value(value: Cow<'_, str>) -> Option<Cow<'_, str>> {
    if value.is_empty() {
        None
    } else if sqs_carries(&value) {
        Some(value)
    } else {
        Some(Cow::Owned(
            value
                .chars()
                .map(|c| {
                    if sqs_allows(c) {
                        c
                    } else {
                        char::REPLACEMENT_CHARACTER
                    }
                })
                .collect(),
        ))
    }
}

fn fifo_ids(body: &[u8], envelope: &Envelope) -> FifoIds {
    let deduplication_id = match &envelope.id {
        Some(id) => fifo_id(id),
        None => body_sha256(body),
    };
    let group_id = fifo_id(&envelope.object().unwrap_or_else(|| envelope.app_id.clone()));
    FifoIds {
        group_id,
        deduplication_id,
    }
}

/// `candidate` when SQS accepts it as a FIFO id, otherwise `sha256:` and its hash.
fn fifo_id(candidate: &str) -> String {
    // SQS's set, alphanumerics and punctuation, is exactly ASCII's graphic range.
    let acceptable = !candidate.is_empty()
        && candidate.len() <= MAX_FIFO_ID_LEN
        && candidate.bytes().all(|b| b.is_ascii_graphic());
    if acceptable {
        candidate.to_owned()
    } else {
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(candidate.as_bytes()))
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::signature::Verifier;

    const SECRET: &str = "s";

    fn message(
        body: &[u8],
        fifo: bool,
        subscription_id: Option<&'static str>,
    ) -> (QueueMessage<'static>, String) {
        let body: &'static [u8] = body.to_vec().leak();
        let verifier = Verifier::new([SECRET]).expect("secret");
        let signature: &'static str = verifier.sign(body).leak();
        let verified = verifier
            .verify(body, Some(signature.as_bytes()))
            .expect("verifies");
        let envelope = Envelope::parse(verified).expect("valid envelope");
        let delivery = Delivery {
            signature,
            subscription_id,
            received_at: UNIX_EPOCH + Duration::from_millis(1_763_850_000_123),
        };
        (
            QueueMessage::build(
                verified,
                CarriedBody::of(verified.as_bytes()),
                &envelope,
                &delivery,
                fifo,
            )
            .into_owned(),
            signature.to_owned(),
        )
    }

    const CONVERSATION: &str = r#"{"type":"notification_event","topic":"conversation.user.created","id":"notif_1","app_id":"abc123","created_at":1763850000,"delivery_attempts":1,"data":{"type":"notification_event_data","item":{"type":"conversation","id":"9001","source":{"body":"<p>héllo 👋 مرحبا 你好</p>"}}}}"#;

    #[test]
    fn text_body_is_carried_byte_for_byte_with_all_attributes() {
        let (message, signature) = message(CONVERSATION.as_bytes(), false, Some("sub_7"));
        assert_eq!(message.body, CONVERSATION);
        let attributes: Vec<(&str, &str)> = message
            .attributes
            .iter()
            .map(|(n, v)| (*n, v.as_ref()))
            .collect();
        assert_eq!(
            attributes,
            vec![
                ("topic", "conversation.user.created"),
                ("app_id", "abc123"),
                ("notification_id", "notif_1"),
                ("item_type", "conversation"),
                ("item_id", "9001"),
                ("signature", signature.as_str()),
                ("subscription_id", "sub_7"),
                ("received_at", "2025-11-22T22:20:00.123Z"),
            ]
        );
        assert_eq!(message.fifo, None);
    }

    #[test]
    fn fifo_ids_name_the_object_and_the_notification() {
        let (message, _) = message(CONVERSATION.as_bytes(), true, None);
        assert_eq!(
            message.fifo,
            Some(FifoIds {
                group_id: "abc123:conversation:9001".into(),
                deduplication_id: "notif_1".into()
            })
        );
        assert_eq!(message.attribute(attribute::SUBSCRIPTION_ID), None);
    }

    #[test]
    fn ping_with_null_id_deduplicates_by_body_hash_and_groups_by_app() {
        let body = br#"{"type":"notification_event","topic":"ping","id":null,"app_id":"abc123","created_at":1,"data":{"item":{"type":"ping","message":"hi"}}}"#;
        let (message, _) = message(body, true, None);
        let fifo = message.fifo.clone().expect("fifo");
        assert_eq!(fifo.deduplication_id, hex::encode(Sha256::digest(body)));
        assert_eq!(fifo.deduplication_id.len(), 64);
        assert_eq!(fifo.group_id, "abc123");
        assert_eq!(message.attribute(attribute::NOTIFICATION_ID), None);
        assert_eq!(message.attribute(attribute::ITEM_ID), None);
    }

    #[test]
    fn ticket_part_wrapper_groups_by_its_ticket() {
        let body = br#"{"type":"notification_event","topic":"ticket.admin.replied","id":"n2","app_id":"abc123","created_at":1,"data":{"item":{"type":"ticket_ticket_part","ticket":{"type":"ticket","id":"77"},"ticket_part":{"id":"5"}}}}"#;
        let (message, _) = message(body, true, None);
        assert_eq!(
            message.fifo.as_ref().expect("fifo").group_id,
            "abc123:ticket:77"
        );
        assert_eq!(
            message.attribute(attribute::ITEM_TYPE),
            Some("ticket_ticket_part")
        );
        assert_eq!(message.attribute(attribute::ITEM_ID), None);
    }

    #[test]
    fn escaped_control_characters_are_plain_text() {
        let escaped = br#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{"item":{"note":"\u0000"}}}"#;
        let (message, _) = message(escaped, false, None);
        assert_eq!(message.attribute(attribute::CONTENT_ENCODING), None);
        assert_eq!(message.body.as_bytes(), escaped);
        assert!(
            sqs_text(b"{}\x07").is_none(),
            "a raw control character is not"
        );
    }

    #[test]
    fn base64_fallback_round_trips() {
        // JSON with a lone surrogate escape decodes, and the raw body has a
        // character (U+FFFE) SQS refuses although it is valid UTF-8.
        let body = "{\"type\":\"notification_event\",\"topic\":\"t\",\"id\":\"n\",\"app_id\":\"a\",\"created_at\":1,\"data\":{\"item\":{\"x\":\"\u{FFFE}\"}}}";
        let (message, _) = message(body.as_bytes(), false, None);
        assert_eq!(
            message.attribute(attribute::CONTENT_ENCODING),
            Some(BASE64_ENCODING)
        );
        assert_eq!(
            BASE64.decode(message.body.as_bytes()).expect("base64"),
            body.as_bytes()
        );
        assert!(CarriedBody::of(body.as_bytes()).fits());
    }

    #[test]
    fn attribute_values_sqs_cannot_carry_are_replaced_and_empty_ones_dropped() {
        let body = br#"{"type":"notification_event","topic":"odd\u0001topic","id":"n\uffff","app_id":"","created_at":1,"data":{"item":{"type":"","id":""}}}"#;
        let (message, _) = message(body, false, None);
        assert_eq!(
            message.attribute(attribute::TOPIC),
            Some("odd\u{FFFD}topic")
        );
        assert_eq!(
            message.attribute(attribute::NOTIFICATION_ID),
            Some("n\u{FFFD}")
        );
        assert_eq!(message.attribute(attribute::APP_ID), None);
        assert_eq!(message.attribute(attribute::ITEM_TYPE), None);
        assert_eq!(message.attribute(attribute::ITEM_ID), None);
    }

    #[test]
    fn no_message_carries_more_attributes_than_sqs_takes() {
        // Every attribute present, the body carried as base64 (U+FFFF is
        // valid JSON and UTF-8, not an XML character SQS carries).
        let body = "{\"type\":\"notification_event\",\"app_id\":\"a\",\"id\":\"notif_1\",\"topic\":\"conversation.user.created\",\"created_at\":1,\"data\":{\"item\":{\"type\":\"conversation\",\"id\":\"7\",\"note\":\"\u{FFFF}\"}}}";
        let (message, _) = message(body.as_bytes(), true, Some("nsub_1"));
        assert_eq!(
            message.attribute(attribute::CONTENT_ENCODING),
            Some(BASE64_ENCODING)
        );
        assert_eq!(message.attributes.len(), 9);
        let most = message.replayed("run").pointing_to("b", "k", 2_000_000);
        assert!(
            most.attributes.len() <= MAX_ATTRIBUTES,
            "{:?}",
            most.attributes
        );
    }

    #[test]
    fn a_replay_has_its_run_and_a_deduplication_id_of_its_own() {
        let body = br#"{"type":"notification_event","app_id":"a","id":"notif_1","topic":"conversation.user.created","created_at":1,"data":{"item":{"type":"conversation","id":"7"}}}"#;
        let (original, _) = message(body, true, None);
        let ids = original.fifo.clone().expect("fifo ids");
        let replayed = original.replayed("backfill-1");
        assert_eq!(replayed.attribute(attribute::REPLAY), Some("backfill-1"));
        let replayed_ids = replayed.fifo.expect("fifo ids");
        assert_eq!(replayed_ids.group_id, ids.group_id, "the same group");
        assert_eq!(replayed_ids.deduplication_id, "backfill-1:notif_1");
        let long_run = "r".repeat(MAX_FIFO_ID_LEN);
        let hashed = message(body, true, None).0.replayed(&long_run);
        let hashed = hashed.fifo.expect("fifo ids").deduplication_id;
        assert!(hashed.starts_with("sha256:") && hashed.len() <= MAX_FIFO_ID_LEN);
        let (standard, _) = message(body, false, None);
        assert_eq!(standard.replayed("backfill-1").fifo, None);
    }

    #[test]
    fn fifo_ids_sqs_would_refuse_are_hashed() {
        let long_id = "n".repeat(129);
        let body = format!(
            r#"{{"type":"notification_event","topic":"t","id":"{long_id}","app_id":"app with space","created_at":1,"data":{{"item":{{"type":"conversation","id":"1"}}}}}}"#
        );
        let (message, _) = message(body.as_bytes(), true, None);
        let fifo = message.fifo.expect("fifo");
        assert_eq!(
            fifo.deduplication_id,
            format!("sha256:{}", hex::encode(Sha256::digest(long_id.as_bytes())))
        );
        assert_eq!(
            fifo.group_id,
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(b"app with space:conversation:1"))
            )
        );
        assert!(fifo.group_id.len() <= MAX_FIFO_ID_LEN);
        assert_eq!(fifo_id(&"x".repeat(128)), "x".repeat(128));
        let graphic: String = ('!'..='~').collect();
        assert_eq!(fifo_id(&graphic), graphic);
        for refused in ["a b", "é", "tab\t", "\u{7f}"] {
            assert!(fifo_id(refused).starts_with("sha256:"), "{refused:?}");
        }
    }

    #[test]
    fn decode_body_undoes_the_base64_fallback() {
        assert_eq!(decode_body("{}", None).as_deref(), Ok(&b"{}"[..]));
        assert_eq!(
            decode_body("/w==", Some("base64")).as_deref(),
            Ok(&b"\xff"[..])
        );
        assert!(decode_body("%%", Some("base64")).is_err());
        assert!(decode_body("{}", Some("gzip")).is_err());
    }

    #[test]
    fn sqs_carries_the_documented_ranges_only() {
        for (sample, carried) in [
            ("plain", true),
            ("tab\tlf\ncr\r", true),
            ("bell\u{7}", false),
            ("nul\0", false),
            ("\u{1F}", false),
            ("é ü 你好 👋", true),
            ("\u{D7FF}", true),
            ("\u{E000}", true),
            ("\u{FFFD}", true),
            ("\u{FFFE}", false),
            ("\u{FFFF}", false),
            ("\u{10000}", true),
            ("\u{10FFFF}", true),
        ] {
            assert_eq!(sqs_text(sample.as_bytes()).is_some(), carried, "{sample:?}");
        }
        assert!(sqs_text(b"\xff").is_none(), "not UTF-8");
    }

    #[test]
    fn receive_times_are_rfc3339_utc_with_milliseconds() {
        for (millis, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_007, "2000-02-29T00:00:00.007Z"),
            (1_763_850_000_123, "2025-11-22T22:20:00.123Z"),
            (253_370_764_800_999, "9999-01-01T00:00:00.999Z"),
        ] {
            assert_eq!(
                rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)),
                text
            );
        }
        let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(rfc3339_millis(year_10000), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_body_fits_by_the_length_sqs_carries() {
        let fits = |body: &[u8]| CarriedBody::of(body).fits();
        let limit = MAX_MESSAGE_BYTES;
        assert!(fits(&vec![b'a'; limit]));
        assert!(!fits(&vec![b'a'; limit + 1]));
        // Bytes SQS cannot carry as text travel as base64, 4 bytes for 3.
        assert!(fits(&vec![0xFF; limit / 4 * 3]));
        assert!(!fits(&vec![0xFF; limit / 4 * 3 + 1]));
        let mut control = vec![b'a'; limit / 4 * 3 + 1];
        control[0] = 0x07;
        assert!(!fits(&control));
    }

    #[test]
    fn every_character_is_judged_by_the_documented_ranges() {
        let documented = |c: char| matches!(u32::from(c), 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF);
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            assert_eq!(sqs_allows(c), documented(c), "U+{:04X}", u32::from(c));
            let text = format!("ab{c}cd");
            assert_eq!(
                sqs_text(text.as_bytes()).is_some(),
                documented(c),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn a_pointer_message_reads_back_and_keeps_the_attributes() {
        let verifier = Verifier::new(["s"]).expect("secret");
        let body = br#"{"type":"notification_event","topic":"conversation.admin.replied","id":"notif_1","app_id":"a","created_at":1,"data":{"item":{"type":"conversation","id":"7"}}}"#;
        let signature = verifier.sign(body);
        let verified = verifier
            .verify(body, Some(signature.as_bytes()))
            .expect("signed");
        let envelope = Envelope::parse(verified).expect("valid");
        let delivery = Delivery {
            signature: &signature,
            subscription_id: None,
            received_at: SystemTime::UNIX_EPOCH,
        };
        let message =
            QueueMessage::build(verified, CarriedBody::of(body), &envelope, &delivery, true);
        let key = payload_key(body);
        let pointer = message.clone().pointing_to("bucket", &key, body.len());
        assert_eq!(
            payload_pointer(&pointer.body),
            Some(("bucket".to_owned(), key.clone()))
        );
        assert_eq!(pointer.fifo, message.fifo);
        assert_eq!(
            pointer.attribute(attribute::EXTENDED_PAYLOAD_SIZE),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(
            attribute_data_type(attribute::EXTENDED_PAYLOAD_SIZE),
            "Number"
        );
        for (name, value) in &message.attributes {
            assert_eq!(pointer.attribute(name), Some(value.as_ref()), "{name}");
        }
        assert_eq!(key, format!("{}.json", body_sha256(body)));
        for not_a_pointer in [
            "{}",
            "[]",
            r#"["other.Class",{"s3BucketName":"b","s3Key":"k"}]"#,
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3Key":"k"}]"#,
            "[not json",
        ] {
            assert_eq!(payload_pointer(not_a_pointer), None, "{not_a_pointer}");
        }
    }
}
