//! The queue message contract: what the receiver sends to SQS for a notification.
//!
//! - The body is the request body byte for byte. Only where SQS cannot carry it
//!   as text (it is not UTF-8, or holds characters outside the XML ranges SQS
//!   allows) it is base64-encoded, and `content_encoding` says `base64`.
//! - String attributes: `topic`, `app_id`, `notification_id`, `item_type`,
//!   `item_id`, `signature`, `subscription_id`, `received_at`,
//!   `content_encoding`; each only when it has a value. Attribute values are
//!   routing hints: a character SQS cannot carry becomes U+FFFD there, while
//!   the body always keeps the exact bytes.
//! - FIFO queues: the deduplication id is the notification id (SHA-256 of the
//!   body for a null id) and the group id names the object the notification is
//!   about, `{app_id}:{item_type}:{item_id}`, falling back to `{app_id}`. An id
//!   SQS would refuse (over 128 characters, or outside its character set) is
//!   replaced by `sha256:` and its SHA-256, so that bad input never makes a
//!   send fail.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::envelope::Envelope;
use crate::signature::VerifiedBody;

/// The most SQS takes in one message: body plus attribute names, types and values.
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;

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
}

/// The value of `content_encoding` for a base64 body.
pub const BASE64_ENCODING: &str = "base64";

/// The data type of every attribute.
pub const ATTRIBUTE_DATA_TYPE: &str = "String";

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

impl<'a> QueueMessage<'a> {
    /// Builds the message for a verified, validated notification.
    pub fn build(
        body: VerifiedBody<'a>,
        envelope: &Envelope<'a>,
        delivery: &Delivery<'a>,
        fifo: bool,
    ) -> Self {
        let bytes = body.as_bytes();
        let text = if std::ptr::eq(envelope.source.as_bytes(), bytes) {
            // These very bytes parsed as JSON, so they are UTF-8 and hold no
            // raw control character but tab, LF and CR: only noncharacters
            // (inside strings) can keep SQS from carrying them.
            Some(envelope.source).filter(|text| !has_noncharacter(text))
        } else {
            crate::envelope::utf8(bytes)
                .ok()
                .filter(|text| sqs_carries(text))
        };
        let (text, base64) = match text {
            Some(text) => (Cow::Borrowed(text), false),
            None => (Cow::Owned(BASE64.encode(bytes)), true),
        };
        let received_at = rfc3339_millis(delivery.received_at);
        let mut attributes = Vec::with_capacity(9);
        let candidates: [(&'static str, Option<Cow<'a, str>>); 9] = [
            (attribute::TOPIC, Some(envelope.topic.clone())),
            (attribute::APP_ID, Some(envelope.app_id.clone())),
            (attribute::NOTIFICATION_ID, envelope.id.clone()),
            (attribute::ITEM_TYPE, envelope.item.item_type.clone()),
            (attribute::ITEM_ID, envelope.item.id.clone()),
            (
                attribute::SIGNATURE,
                Some(Cow::Borrowed(delivery.signature.trim())),
            ),
            (
                attribute::SUBSCRIPTION_ID,
                delivery.subscription_id.map(|s| Cow::Borrowed(s.trim())),
            ),
            (attribute::RECEIVED_AT, Some(Cow::Owned(received_at))),
            (
                attribute::CONTENT_ENCODING,
                base64.then_some(Cow::Borrowed(BASE64_ENCODING)),
            ),
        ];
        for (name, value) in candidates {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                attributes.push((name, sqs_attribute_value(value)));
            }
        }
        let fifo = fifo.then(|| fifo_ids(bytes, envelope));
        Self {
            body: text,
            attributes,
            fifo,
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

/// The size a body takes in a message: its length as text, or its base64
/// length where SQS cannot carry it as text.
pub fn encoded_body_len(body: &[u8]) -> usize {
    match sqs_text(body) {
        Some(text) => text.len(),
        None => base64_len(body),
    }
}

/// Whether `body` alone fits in one message, as [`encoded_body_len`] would
/// say. The length decides without reading the bytes, except for a body
/// between three quarters of the limit and the limit, whose encoding decides;
/// so it is cheap enough to run before the signature is checked, and an
/// oversized body is refused without hashing it.
pub fn body_fits(body: &[u8]) -> bool {
    if body.len() > MAX_MESSAGE_BYTES {
        false
    } else if base64_len(body) <= MAX_MESSAGE_BYTES {
        true
    } else {
        encoded_body_len(body) <= MAX_MESSAGE_BYTES
    }
}

fn base64_len(body: &[u8]) -> usize {
    body.len().div_ceil(3) * 4
}

/// The body as text when SQS can carry it: valid UTF-8 of characters in
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
pub fn sqs_text(body: &[u8]) -> Option<&str> {
    let text = crate::envelope::utf8(body).ok()?;
    sqs_carries(text).then_some(text)
}

/// Whether SQS carries all of `text` (see [`sqs_text`]).
///
/// In valid UTF-8 the only characters outside SQS's ranges are the C0
/// controls but tab, LF and CR (single bytes), and U+FFFE and U+FFFF
/// (EF BF BE, EF BF BF); surrogates cannot occur. So one pass over the bytes
/// in blocks, folding flags without branches (which the compiler turns into
/// vector instructions), finds any control byte and any block holding an EF
/// byte; only such a block, rare in text, is looked at closely.
fn sqs_carries(text: &str) -> bool {
    const BLOCK: usize = 64;
    let bytes = text.as_bytes();
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut start = 0;
    for block in blocks.by_ref() {
        let (control, lead_ef) = block_flags(block);
        if control || (lead_ef && (start..start + BLOCK).any(|i| noncharacter_at(bytes, i))) {
            return false;
        }
        start += BLOCK;
    }
    let (control, lead_ef) = block_flags(blocks.remainder());
    !(control || (lead_ef && (start..bytes.len()).any(|i| noncharacter_at(bytes, i))))
}

/// `time` in RFC 3339, UTC, with milliseconds (`2025-11-22T22:20:00.123Z`),
/// as humantime's `format_rfc3339_millis` writes it (the tests hold it to
/// that), without the formatting machinery: it runs on every request. A clock
/// before 1970 writes the epoch, and one past 9999 a longer year, where
/// humantime would panic.
fn rfc3339_millis(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    let year_width = (year.checked_ilog10().unwrap_or(0) + 1).max(4);
    let fields = [
        (year, year_width, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (of_day / 3600, 2, b':'),
        (of_day / 60 % 60, 2, b':'),
        (of_day % 60, 2, b'.'),
        (u64::from(since_epoch.subsec_millis()), 3, b'Z'),
    ];
    let mut text = String::with_capacity(24);
    for (value, width, separator) in fields {
        for place in (0..width).rev() {
            let digit = value / 10u64.pow(place) % 10;
            text.push(char::from(b'0' + digit as u8));
        }
        text.push(char::from(separator));
    }
    text
}

/// The proleptic Gregorian `(year, month, day)` of a count of days since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`, for days on or after it).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Whether `text` holds U+FFFE or U+FFFF: memchr's vectorised search for the
/// EF lead byte, which is rare in text. (For a long body; [`sqs_carries`],
/// run on short attribute values, finds EF bytes in its own block fold, as a
/// memchr call per value cost more than the values.)
fn has_noncharacter(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(0xEF, bytes).any(|i| noncharacter_at(bytes, i))
}

/// Whether U+FFFE or U+FFFF (EF BF BE, EF BF BF) starts at `bytes[i]`.
fn noncharacter_at(bytes: &[u8], i: usize) -> bool {
    bytes
        .get(i..i + 3)
        .is_some_and(|w| w[0] == 0xEF && w[1] == 0xBF && (w[2] | 1) == 0xBF)
}

/// Whether `block` holds a C0 control but tab, LF and CR, and whether it
/// holds an EF byte; branch-free, so that it compiles to vector instructions.
#[inline(always)]
fn block_flags(block: &[u8]) -> (bool, bool) {
    let (control, lead_ef) = block.iter().fold((0u8, 0u8), |(control, lead_ef), &b| {
        let is_control = (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r');
        (
            control | u8::from(is_control),
            lead_ef | u8::from(b == 0xEF),
        )
    });
    (control != 0, lead_ef != 0)
}

/// Whether SQS carries `c` in a text body or attribute value: its documented
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
pub fn sqs_allows(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn sqs_attribute_value(value: Cow<'_, str>) -> Cow<'_, str> {
    if sqs_carries(&value) {
        value
    } else {
        Cow::Owned(
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
        )
    }
}

fn fifo_ids(body: &[u8], envelope: &Envelope<'_>) -> FifoIds {
    let deduplication_id = match &envelope.id {
        Some(id) => fifo_id(Cow::Borrowed(id)),
        None => hex::encode(Sha256::digest(body)),
    };
    let group_id = match envelope.subject() {
        Some((kind, id)) => {
            let app_id = &envelope.app_id;
            let mut group = String::with_capacity(app_id.len() + kind.len() + id.len() + 2);
            for part in [app_id, ":", &kind, ":", id] {
                group.push_str(part);
            }
            fifo_id(Cow::Owned(group))
        }
        None => fifo_id(Cow::Borrowed(&envelope.app_id)),
    };
    FifoIds {
        group_id,
        deduplication_id,
    }
}

/// `candidate` when SQS accepts it as a FIFO id, otherwise `sha256:` and its hash.
fn fifo_id(candidate: Cow<'_, str>) -> String {
    // SQS's set, alphanumerics and punctuation, is exactly ASCII's graphic range.
    let acceptable = !candidate.is_empty()
        && candidate.len() <= MAX_FIFO_ID_LEN
        && candidate.bytes().all(|b| b.is_ascii_graphic());
    if acceptable {
        candidate.into_owned()
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
        subscription_id: Option<&str>,
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
            subscription_id: subscription_id.map(|s| &*s.to_owned().leak()),
            received_at: UNIX_EPOCH + Duration::from_millis(1_763_850_000_123),
        };
        (
            QueueMessage::build(verified, &envelope, &delivery, fifo),
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
        assert_eq!(encoded_body_len(body.as_bytes()), message.body.len());
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
        assert_eq!(fifo_id(Cow::Owned("x".repeat(128))), "x".repeat(128));
        let graphic: String = ('!'..='~').collect();
        assert_eq!(fifo_id(Cow::Borrowed(&graphic)), graphic);
        for refused in ["a b", "é", "tab\t", "\u{7f}"] {
            assert!(
                fifo_id(Cow::Borrowed(refused)).starts_with("sha256:"),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn size_counts_body_and_attributes() {
        let (message, _) = message(CONVERSATION.as_bytes(), false, None);
        let expected = CONVERSATION.len()
            + message
                .attributes
                .iter()
                .map(|(n, v)| n.len() + "String".len() + v.len())
                .sum::<usize>();
        assert_eq!(message.size(), expected);
        assert!(message.fits());
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
    fn byte_check_agrees_with_the_character_ranges() {
        let samples = [
            "plain",
            "tab\tlf\ncr\r",
            "bell\u{7}",
            "nul\0",
            "\u{1F}",
            "é ü 你好 👋",
            "\u{FFFD}",
            "\u{FFFE}",
            "\u{FFFF}",
            "\u{EFFFF}",
            "\u{E000}",
            "\u{D7FF}",
            "\u{10FFFF}",
        ];
        for sample in samples {
            let by_chars = sample.chars().all(sqs_allows);
            assert_eq!(
                sqs_text(sample.as_bytes()).is_some(),
                by_chars,
                "{sample:?}"
            );
        }
        assert!(sqs_text(b"\xff").is_none());
    }

    #[test]
    fn byte_check_finds_a_character_at_any_offset_from_a_block_edge() {
        // The scan works in 64-byte blocks: a noncharacter may straddle two.
        for sample in [
            "\u{7}",
            "\u{FFFE}",
            "\u{FFFF}",
            "\u{FFFD}",
            "\u{FEFF}",
            "\u{EFFFF}",
        ] {
            for offset in 0..140 {
                for tail in [0, 1, 2, 70] {
                    let text = format!("{}{sample}{}", "a".repeat(offset), "b".repeat(tail));
                    assert_eq!(
                        sqs_text(text.as_bytes()).is_some(),
                        text.chars().all(sqs_allows),
                        "{sample:?} at {offset} with {tail} after"
                    );
                }
            }
        }
    }

    #[test]
    fn encoded_len_of_text_and_binary() {
        assert_eq!(encoded_body_len(b"{}"), 2);
        assert_eq!(encoded_body_len(b"\xff\xfe\xfd"), 4);
        assert_eq!(encoded_body_len(b"\xff\xfe\xfd\xfc"), 8);
        assert_eq!(encoded_body_len(b""), 0);
    }

    #[test]
    fn receive_times_are_written_as_humantime_writes_them() {
        let mut seconds: Vec<u64> = vec![
            0,
            59,
            86_399,
            86_400,
            951_782_400,   // 2000-02-29
            951_868_800,   // 2000-03-01
            4_107_542_400, // 2100-03-01
            1_763_850_000,
            253_402_300_799, // 9999-12-31T23:59:59
        ];
        // Every day for 1,200 years, at a varying time of day.
        seconds.extend((0..438_300u64).map(|day| day * 86_400 + (day * 7_919) % 86_400));
        for s in seconds {
            for millis in [0, 7, 999] {
                let time = UNIX_EPOCH + Duration::from_millis(s * 1000 + millis);
                assert_eq!(
                    rfc3339_millis(time),
                    humantime::format_rfc3339_millis(time).to_string(),
                    "{s}.{millis}"
                );
            }
        }
        let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(rfc3339_millis(year_10000), "10000-01-01T00:00:00.000Z");
        let before_1970 = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339_millis(before_1970), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn noncharacter_search_agrees_with_the_character_ranges() {
        for sample in [
            "\u{FFFE}",
            "\u{FFFF}",
            "\u{FFFD}",
            "\u{FEFF}",
            "\u{EFFFF}",
            "\u{E000}",
            "plain",
        ] {
            for offset in [0, 1, 7, 63, 64, 65] {
                let text = format!("{}{sample}", "a".repeat(offset));
                assert_eq!(
                    has_noncharacter(&text),
                    !text.chars().all(sqs_allows),
                    "{sample:?} at {offset}"
                );
            }
        }
    }

    #[test]
    fn body_fits_agrees_with_the_encoded_length() {
        let limit = MAX_MESSAGE_BYTES;
        let text = |len: usize| vec![b'a'; len];
        let binary = |len: usize| vec![0xFF; len];
        for body in [
            text(0),
            text(limit / 2),
            text(limit * 3 / 4),
            text(limit * 3 / 4 + 3),
            text(limit),
            text(limit + 1),
            binary(limit * 3 / 4),
            binary(limit * 3 / 4 + 1),
            binary(limit),
            binary(limit + 1),
        ] {
            assert_eq!(
                body_fits(&body),
                encoded_body_len(&body) <= limit,
                "{} bytes starting {:?}",
                body.len(),
                body.first()
            );
        }
        assert!(body_fits(&text(limit)));
        assert!(!body_fits(&binary(limit * 3 / 4 + 1)));
    }
}
