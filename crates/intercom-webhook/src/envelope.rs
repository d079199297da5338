//! The notification envelope: what Intercom wraps every item in, parsed once and validated.
//!
//! [`Envelope::parse`] reads a body with one `serde_json` parse into a
//! `Value`, exactly as a consumer of the queue will read it, and then checks
//! the contract's rules. So a body is valid exactly when a `serde_json::Value`
//! parse accepts it (nesting beyond serde_json's limit of 128 levels, numbers
//! beyond an `f64` and lone surrogate escapes are refused) and its envelope
//! fields hold: a JSON object whose `type` is `"notification_event"`, with a
//! non-empty string `topic`, a string `app_id`, an integer `created_at`, an
//! object `data.item` and a string `id` (null, or absent, only for `ping`).
//! A field that appears twice counts with its last value, as in serde_json,
//! JavaScript's `JSON.parse`, Python and Go.
//!
//! The receiver and the processor share this parse; the processor turns the
//! [`Envelope::item`] it keeps into a typed model without parsing again.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::signature::VerifiedBody;
use crate::topic::Topic;

/// The value of `type` on every notification.
pub const NOTIFICATION_TYPE: &str = "notification_event";

/// What makes a body not a valid notification envelope. The `Display` text is
/// the `detail` a sender sees: specific, lowercase, and free of body content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON (or not UTF-8, or nested too deeply); carries the parser's words.
    NotJson(String),
    /// JSON, but not an object at the top level.
    NotAnObject,
    /// `type` is missing or is not `"notification_event"`.
    WrongType,
    /// `topic` is missing, not a string, or empty.
    InvalidTopic,
    /// `app_id` is missing or not a string.
    InvalidAppId,
    /// `created_at` is missing or not an integer.
    InvalidCreatedAt,
    /// `data` is missing or not an object.
    InvalidData,
    /// `data.item` is missing or not an object.
    InvalidItem,
    /// `id` is not a string (null or absent is allowed only for `ping`).
    InvalidId,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(reason) => write!(f, "body is not valid JSON: {reason}"),
            Self::NotAnObject => f.write_str("body is not a JSON object"),
            Self::WrongType => write!(f, "`type` must be \"{NOTIFICATION_TYPE}\""),
            Self::InvalidTopic => f.write_str("`topic` must be a non-empty string"),
            Self::InvalidAppId => f.write_str("`app_id` must be a string"),
            Self::InvalidCreatedAt => f.write_str("`created_at` must be an integer"),
            Self::InvalidData => f.write_str("`data` must be an object"),
            Self::InvalidItem => f.write_str("`data.item` must be an object"),
            Self::InvalidId => f.write_str("`id` must be a string (null only for ping)"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// A validated notification envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The topic, as sent (unknown topics are valid).
    pub topic: String,
    /// The notification id (`notif_…`); `None` only for `ping`.
    pub id: Option<String>,
    /// The workspace the notification comes from.
    pub app_id: String,
    /// When Intercom created the notification, in epoch seconds.
    pub created_at: i64,
    /// How often Intercom has tried to deliver it, when it says.
    pub delivery_attempts: Option<u64>,
    /// `data.item`, as parsed.
    pub item: Map<String, Value>,
}

impl Envelope {
    /// Parses and validates a verified body.
    pub fn parse(body: VerifiedBody<'_>) -> Result<Self, EnvelopeError> {
        Self::parse_unverified(body.as_bytes())
    }

    /// Parses and validates bytes whose signature was checked elsewhere (or need
    /// not be, as for a queue consumer reading what the receiver verified).
    pub fn parse_unverified(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        Self::from_value(value)
    }

    /// Validates a notification already parsed into a `Value`, taking it apart.
    pub fn from_value(value: Value) -> Result<Self, EnvelopeError> {
        let Value::Object(mut fields) = value else {
            return Err(EnvelopeError::NotAnObject);
        };
        if fields.get("type").and_then(Value::as_str) != Some(NOTIFICATION_TYPE) {
            return Err(EnvelopeError::WrongType);
        }
        let topic = match fields.remove("topic") {
            Some(Value::String(topic)) if !topic.is_empty() => topic,
            _ => return Err(EnvelopeError::InvalidTopic),
        };
        let Some(Value::String(app_id)) = fields.remove("app_id") else {
            return Err(EnvelopeError::InvalidAppId);
        };
        let created_at = fields
            .get("created_at")
            .and_then(Value::as_i64)
            .ok_or(EnvelopeError::InvalidCreatedAt)?;
        let Some(Value::Object(mut data)) = fields.remove("data") else {
            return Err(EnvelopeError::InvalidData);
        };
        let Some(Value::Object(item)) = data.remove("item") else {
            return Err(EnvelopeError::InvalidItem);
        };
        let id = match fields.remove("id") {
            Some(Value::String(id)) => Some(id),
            Some(Value::Null) | None if topic == "ping" => None,
            _ => return Err(EnvelopeError::InvalidId),
        };
        let delivery_attempts = fields.get("delivery_attempts").and_then(Value::as_u64);
        Ok(Self {
            topic,
            id,
            app_id,
            created_at,
            delivery_attempts,
            item,
        })
    }

    /// The catalogue entry for this topic (or [`Topic::Unknown`]).
    pub fn known_topic(&self) -> Topic {
        Topic::from_name(&self.topic)
    }

    /// Whether this is Intercom's `ping`.
    pub fn is_ping(&self) -> bool {
        self.topic == "ping"
    }

    /// The item's own `type`, when it has one as a string.
    pub fn item_type(&self) -> Option<&str> {
        self.item.get("type").and_then(Value::as_str)
    }

    /// The item's own `id`, when it has one as a string or an integer.
    pub fn item_id(&self) -> Option<Cow<'_, str>> {
        self.item.get("id").and_then(id_text)
    }

    /// The object this notification is about, as `(type, id)`: the item itself
    /// when it has an id, otherwise the object a wrapper item carries (the
    /// ticket of a ticket part, the contact of a contact tag, …), preferring the
    /// one the topic is named after. `None` when the item names no object.
    pub fn subject(&self) -> Option<(&str, Cow<'_, str>)> {
        if let Some(id) = self.item_id() {
            let kind = self
                .item_type()
                .filter(|kind| !kind.is_empty())
                .unwrap_or_else(|| self.known_topic().item_type());
            return Some((kind, id));
        }
        let wrapped = |kind: &'static str| {
            self.item
                .get(kind)
                .and_then(|object| object.get("id"))
                .and_then(id_text)
                .map(|id| (kind, id))
        };
        let prefix = self.topic.split('.').next().unwrap_or_default();
        WRAPPERS
            .iter()
            .find(|kind| **kind == prefix)
            .and_then(|kind| wrapped(kind))
            .or_else(|| WRAPPERS.iter().find_map(|kind| wrapped(kind)))
    }

    /// The object this notification is about, as `{app_id}:{type}:{id}`
    /// from [`Envelope::subject`]: the receiver's FIFO message group, and the
    /// object whose notifications freshness compares. `None` when the item
    /// names no object.
    pub fn object(&self) -> Option<String> {
        self.subject()
            .map(|(kind, id)| format!("{}:{kind}:{id}", self.app_id))
    }
}

/// The hex SHA-256 of a notification's body: how a notification without an
/// id (`ping`) is told apart, as its FIFO deduplication id and its
/// idempotency key, and how the idempotency table checks that a key comes
/// back with the same body.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Envelope fields that say how a notification was delivered rather than
/// what it says: Intercom's retry of a notification changes them and
/// nothing else (`delivery_attempts` 1 → 2).
pub const DELIVERY_FIELDS: [&str; 4] = [
    "delivery_attempts",
    "delivery_status",
    "delivered_at",
    "first_sent_at",
];

/// The hex SHA-256 of what a notification says, the same for every delivery
/// of it: the idempotency table's `validation`.
///
/// The canonical form hashed is the notification object without its
/// [`DELIVERY_FIELDS`], written as compact JSON (no whitespace) with the
/// keys of every object in byte order, strings escaped and numbers written
/// as `serde_json` writes them. So two deliveries of one notification hash
/// alike however their bytes differ (field order, spacing, escapes, the
/// delivery fields), and a different `topic`, `app_id`, `created_at`,
/// `data` or any other field hashes differently.
pub fn content_sha256(notification: &Value) -> String {
    let mut canonical = Vec::new();
    write_canonical(notification, &DELIVERY_FIELDS, &mut canonical);
    hex::encode(Sha256::digest(&canonical))
}

/// Writes `value` in the canonical form, leaving out the top-level fields
/// named in `skip`.
fn write_canonical(value: &Value, skip: &[&str], out: &mut Vec<u8>) {
    match value {
        Value::Object(fields) => {
            let mut fields: Vec<(&String, &Value)> = fields
                .iter()
                .filter(|(name, _)| !skip.contains(&name.as_str()))
                .collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (n, (name, value)) in fields.into_iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_json(name, out);
                out.push(b':');
                write_canonical(value, &[], out);
            }
            out.push(b'}');
        }
        Value::Array(values) => {
            out.push(b'[');
            for (n, value) in values.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_canonical(value, &[], out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

fn write_json(scalar: &impl serde::Serialize, out: &mut Vec<u8>) {
    // Writing a string, number, bool or null into a Vec cannot fail.
    let _ = serde_json::to_writer(out, scalar);
}

/// Objects that wrapper items carry, in the order they are preferred as the
/// subject of a notification whose topic names none of them.
const WRAPPERS: [&str; 4] = ["ticket", "conversation", "contact", "company"];

/// An id as Intercom sends it: a string, or an integer (kept as its digits).
pub(crate) fn id_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(id) => Some(Cow::Borrowed(id)),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Envelope, EnvelopeError> {
        Envelope::parse_unverified(body.as_bytes())
    }

    const COMPANY_CREATED: &str = r#"{
      "type": "notification_event",
      "topic": "company.created",
      "id": "notif_ccd8a4d0-f965-11e3-a367-c779cae3e1b3",
      "app_id" : "a86dr8yl",
      "created_at": 1392731331,
      "delivery_attempts": 1,
      "first_sent_at": 1392731392,
      "data": {
        "item": {
          "type": "company",
          "id": "531ee472cce572a6ec000006",
          "name": "Example Company Inc.",
          "custom_attributes": {}
        }
      }
    }"#;

    #[test]
    fn parses_intercom_documented_example() {
        let envelope = parse(COMPANY_CREATED).expect("valid");
        assert_eq!(envelope.topic, "company.created");
        assert_eq!(
            envelope.id.as_deref(),
            Some("notif_ccd8a4d0-f965-11e3-a367-c779cae3e1b3")
        );
        assert_eq!(envelope.app_id, "a86dr8yl");
        assert_eq!(envelope.created_at, 1392731331);
        assert_eq!(envelope.delivery_attempts, Some(1));
        assert_eq!(envelope.item_type(), Some("company"));
        assert_eq!(
            envelope.item_id().as_deref(),
            Some("531ee472cce572a6ec000006")
        );
        assert_eq!(
            subject(&envelope),
            Some(("company", "531ee472cce572a6ec000006".to_owned()))
        );
        assert_eq!(envelope.item["name"], "Example Company Inc.");
    }

    fn subject(envelope: &Envelope) -> Option<(&str, String)> {
        envelope.subject().map(|(kind, id)| (kind, id.into_owned()))
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let body = r#"{"type":"notification_\u0065vent","topic":"contact.user.created","id":"notif_\u00e9","app_id":"a\"b","created_at":1,"data":{"item":{"type":"contact","id":"x"}}}"#;
        let envelope = parse(body).expect("valid");
        assert_eq!(envelope.id.as_deref(), Some("notif_é"));
        assert_eq!(envelope.app_id, "a\"b");
    }

    #[test]
    fn ping_may_have_a_null_or_absent_id() {
        let null_id = r#"{"type":"notification_event","topic":"ping","id":null,"app_id":"a","created_at":1,"data":{"item":{"type":"ping"}}}"#;
        let absent = r#"{"type":"notification_event","topic":"ping","app_id":"a","created_at":1,"data":{"item":{}}}"#;
        for body in [null_id, absent] {
            let envelope = parse(body).expect("valid ping");
            assert!(envelope.is_ping());
            assert_eq!(envelope.id, None);
        }
    }

    #[test]
    fn unknown_topics_are_valid() {
        let body = r#"{"type":"notification_event","topic":"hologram.beamed.up","id":"n1","app_id":"a","created_at":1,"data":{"item":{"type":"hologram","id":7}}}"#;
        let envelope = parse(body).expect("valid");
        assert_eq!(envelope.known_topic(), Topic::Unknown);
        assert_eq!(subject(&envelope), Some(("hologram", "7".to_owned())));
    }

    #[test]
    fn subject_of_wrappers_and_typeless_items() {
        let ticket_part = r#"{"type":"notification_event","topic":"ticket.note.created","id":"n","app_id":"a","created_at":1,
            "data":{"item":{"type":"ticket_ticket_part","ticket":{"type":"ticket","id":"42","ticket_parts":{"ticket_parts":[{"id":"9"}]}},"ticket_part":{"id":"9"}}}}"#;
        assert_eq!(
            subject(&parse(ticket_part).expect("valid")),
            Some(("ticket", "42".to_owned()))
        );

        let contact_tag = r#"{"type":"notification_event","topic":"contact.user.tag.created","id":"n","app_id":"a","created_at":1,
            "data":{"item":{"type":"contact_tag","created_at":1,"tag":{"id":"1287","name":"x"},"contact":{"type":"contact","id":"c1"}}}}"#;
        assert_eq!(
            subject(&parse(contact_tag).expect("valid")),
            Some(("contact", "c1".to_owned()))
        );

        // No type and no id of its own: the object the topic is named after wins.
        let attached = r#"{"type":"notification_event","topic":"company.contact.attached","id":"n","app_id":"a","created_at":1,
            "data":{"item":{"contact":{"id":"c1"},"company":{"id":"co1"}}}}"#;
        assert_eq!(
            subject(&parse(attached).expect("valid")),
            Some(("company", "co1".to_owned()))
        );

        // An id but no type: the catalogue's item type for the topic.
        let deleted = r#"{"type":"notification_event","topic":"contact.deleted","id":"n","app_id":"a","created_at":1,"data":{"item":{"id":"c9"}}}"#;
        assert_eq!(
            subject(&parse(deleted).expect("valid")),
            Some(("contact", "c9".to_owned()))
        );

        let nothing = r#"{"type":"notification_event","topic":"job.completed","id":"n","app_id":"a","created_at":1,"data":{"item":{"status":"done"}}}"#;
        assert_eq!(subject(&parse(nothing).expect("valid")), None);
    }

    #[test]
    fn numeric_ids_become_strings() {
        let body = r#"{"type":"notification_event","topic":"admin.logged_in","id":"n","app_id":"a","created_at":1,"data":{"item":{"type":"admin","id":1234567890123}}}"#;
        assert_eq!(
            parse(body).expect("valid").item_id().as_deref(),
            Some("1234567890123")
        );
        let float = r#"{"type":"notification_event","topic":"admin.logged_in","id":"n","app_id":"a","created_at":1,"data":{"item":{"type":"admin","id":1.5}}}"#;
        assert_eq!(parse(float).expect("valid").item_id(), None);
    }

    #[test]
    fn invalid_envelopes_table() {
        let valid_data = r#""data":{"item":{"type":"x"}}"#;
        let cases: Vec<(String, EnvelopeError)> = vec![
            ("[1,2]".into(), EnvelopeError::NotAnObject),
            ("\"notification_event\"".into(), EnvelopeError::NotAnObject),
            ("null".into(), EnvelopeError::NotAnObject),
            (format!(r#"{{"topic":"t","id":"n","app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::WrongType),
            (format!(r#"{{"type":"notification","topic":"t","id":"n","app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::WrongType),
            (format!(r#"{{"type":1,"topic":"t","id":"n","app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::WrongType),
            (format!(r#"{{"type":"notification_event","id":"n","app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::InvalidTopic),
            (format!(r#"{{"type":"notification_event","topic":"","id":"n","app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::InvalidTopic),
            (format!(r#"{{"type":"notification_event","topic":["t"],"id":"n","app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::InvalidTopic),
            (format!(r#"{{"type":"notification_event","topic":"t","id":"n","created_at":1,{valid_data}}}"#), EnvelopeError::InvalidAppId),
            (format!(r#"{{"type":"notification_event","topic":"t","id":"n","app_id":42,"created_at":1,{valid_data}}}"#), EnvelopeError::InvalidAppId),
            (format!(r#"{{"type":"notification_event","topic":"t","id":"n","app_id":"a",{valid_data}}}"#), EnvelopeError::InvalidCreatedAt),
            (format!(r#"{{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":"1392731331",{valid_data}}}"#), EnvelopeError::InvalidCreatedAt),
            (format!(r#"{{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1.5,{valid_data}}}"#), EnvelopeError::InvalidCreatedAt),
            (r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1}"#.into(), EnvelopeError::InvalidData),
            (r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":[{"item":{}}]}"#.into(), EnvelopeError::InvalidData),
            (r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{}}"#.into(), EnvelopeError::InvalidItem),
            (r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{"item":null}}"#.into(), EnvelopeError::InvalidItem),
            (r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{"item":"x"}}"#.into(), EnvelopeError::InvalidItem),
            (format!(r#"{{"type":"notification_event","topic":"t","app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::InvalidId),
            (format!(r#"{{"type":"notification_event","topic":"t","id":null,"app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::InvalidId),
            (format!(r#"{{"type":"notification_event","topic":"t","id":17,"app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::InvalidId),
            (format!(r#"{{"type":"notification_event","topic":"ping","id":17,"app_id":"a","created_at":1,{valid_data}}}"#), EnvelopeError::InvalidId),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(&body).map(|_| ()), Err(expected), "{body}");
        }
    }

    #[test]
    fn a_field_that_appears_twice_counts_with_its_last_value() {
        let body = r#"{"type":"notification_event","topic":"a","topic":"b","id":"n","app_id":"a","created_at":1,"data":{"item":{"id":1}},"data":{"item":{"id":2}}}"#;
        let envelope = parse(body).expect("valid");
        assert_eq!(envelope.topic, "b");
        assert_eq!(envelope.item_id().as_deref(), Some("2"));
        let body = r#"{"type":"notification_event","topic":"a","id":"n","app_id":"a","created_at":1,"data":{"item":{}},"created_at":"late"}"#;
        assert_eq!(parse(body), Err(EnvelopeError::InvalidCreatedAt));
    }

    #[test]
    fn what_a_value_parse_refuses_is_not_json() {
        for body in [
            r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{"item":{"n":1e400}}}"#,
            r#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{"item":{"s":"\ud800"}}}"#,
        ] {
            assert!(
                matches!(parse(body), Err(EnvelopeError::NotJson(_))),
                "{body}"
            );
        }
        let at_the_limit = format!(
            r#"{{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{{"item":{{"x":{}{}}}}}}}"#,
            "[".repeat(124),
            "]".repeat(124)
        );
        assert!(parse(&at_the_limit).is_ok(), "128 levels in all");
        let over = at_the_limit.replacen('[', "[[", 1).replacen(']', "]]", 1);
        assert!(matches!(parse(&over), Err(EnvelopeError::NotJson(_))));
    }

    #[test]
    fn malformed_json_is_not_json() {
        for body in [
            "",
            "{",
            "{\"type\":",
            "{} trailing",
            "\u{feff}{}",
            "{'a':1}",
        ] {
            assert!(
                matches!(parse(body), Err(EnvelopeError::NotJson(_))),
                "{body:?}"
            );
        }
        assert!(matches!(
            Envelope::parse_unverified(b"{\"topic\":\"\xff\"}"),
            Err(EnvelopeError::NotJson(_))
        ));
    }

    #[test]
    fn the_content_hash_ignores_how_a_notification_was_delivered() {
        let first = r#"{"type":"notification_event","topic":"contact.user.created","id":"notif_1","app_id":"a","created_at":5,"delivery_attempts":1,"first_sent_at":6,"delivery_status":"pending","data":{"type":"notification_event_data","item":{"type":"contact","id":"c1","name":"Zoë"}}}"#;
        // Intercom's retry: the delivery fields change; here the field
        // order, spacing and escapes too.
        let retry = r#"{ "data": {"item": {"name": "Zo\u00eb", "id": "c1", "type": "contact"}, "type": "notification_event_data"},
            "created_at": 5, "app_id": "a", "id": "notif_1", "topic": "contact.user.created",
            "type": "notification_event", "delivery_attempts": 2, "delivered_at": 66, "first_sent_at": 7 }"#;
        let hash = |body: &str| content_sha256(&serde_json::from_str(body).expect("json"));
        assert_eq!(hash(first), hash(retry));
        // Known answer: the canonical form is written out by hand here.
        let canonical = r#"{"app_id":"a","created_at":5,"data":{"item":{"id":"c1","name":"Zoë","type":"contact"},"type":"notification_event_data"},"id":"notif_1","topic":"contact.user.created","type":"notification_event"}"#;
        assert_eq!(hash(first), body_sha256(canonical.as_bytes()));
        // What the notification says is covered, at any depth.
        for (from, to) in [
            (
                r#""topic":"contact.user.created""#,
                r#""topic":"contact.user.updated""#,
            ),
            (r#""app_id":"a""#, r#""app_id":"b""#),
            (r#""created_at":5"#, r#""created_at":6"#),
            (r#""name":"Zoë""#, r#""name":"Zoe""#),
            (r#""id":"c1""#, r#""id":"c2""#),
            (r#""type":"notification_event_data","#, ""),
        ] {
            let changed = first.replacen(from, to, 1);
            assert_ne!(changed, first, "{from}");
            assert_ne!(hash(&changed), hash(first), "{from} → {to}");
        }
        // Delivery fields count only at the top level.
        let nested = first.replacen(
            r#""name":"Zoë""#,
            r#""name":"Zoë","delivery_attempts":3"#,
            1,
        );
        assert_ne!(hash(&nested), hash(first));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let depth = 100_000;
        let body = format!(
            r#"{{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{{"item":{{"x":{}{}}}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = parse(&body).expect_err("too deep");
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }
}
