//! The notification envelope: parsing and validating what Intercom wraps every item in.
//!
//! [`Envelope::parse`] reads a verified body in one pass and keeps only what
//! routing needs: `topic`, `id`, `app_id`, `created_at` and the head of
//! `data.item` (its `type`, its `id`, and the ids of the objects a wrapper item
//! carries). Strings borrow from the body where JSON escapes allow; the item
//! itself is skipped over, never copied. A hand-written scanner (`scan`)
//! reads plainly valid bodies; serde_json's visitors read the rest and word
//! every error, and the two agree on every input (property tests, fuzzers).
//! Either way the body is accepted exactly when it parses into a
//! `serde_json::Value`, as a consumer will parse it. A valid envelope is exactly what the
//! contract says: a JSON object whose `type` is `"notification_event"`, with a
//! non-empty string `topic`, a string `app_id`, an integer `created_at`, an
//! object `data.item` and a string `id` (null, or absent, only for `ping`).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::signature::VerifiedBody;
use crate::topic::Topic;

mod scan;

/// The value of `type` on every notification.
pub const NOTIFICATION_TYPE: &str = "notification_event";

/// What makes a body not a valid notification envelope. The `Display` text is
/// the `detail` a sender sees: specific, lowercase, and free of body content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not UTF-8, not JSON, or JSON nested too deeply; carries the parser's words.
    NotJson(String),
    /// JSON, but not an object at the top level.
    NotAnObject,
    /// A field the envelope needs appears more than once.
    DuplicateField(&'static str),
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
            Self::DuplicateField(field) => write!(f, "`{field}` appears more than once"),
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

/// A validated notification envelope, borrowing from the verified body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The topic, as sent (unknown topics are valid).
    pub topic: Cow<'a, str>,
    /// The notification id (`notif_…`); `None` only for `ping`.
    pub id: Option<Cow<'a, str>>,
    /// The workspace the notification comes from.
    pub app_id: Cow<'a, str>,
    /// When Intercom created the notification, in epoch seconds.
    pub created_at: i64,
    /// How often Intercom has tried to deliver it, when it says.
    pub delivery_attempts: Option<u64>,
    /// What routing needs to know of `data.item`.
    pub item: ItemHead<'a>,
    /// The whole body as text, already validated as UTF-8 by the parse.
    pub(crate) source: &'a str,
}

impl<'a> Envelope<'a> {
    /// Parses and validates a verified body.
    pub fn parse(body: VerifiedBody<'a>) -> Result<Self, EnvelopeError> {
        Self::parse_unverified(body.as_bytes())
    }

    /// Parses and validates bytes whose signature was checked elsewhere (or need
    /// not be, as for a queue consumer reading what the receiver verified).
    pub fn parse_unverified(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        let text = body_text(bytes)?;
        match scan::scan(text) {
            Some(raw) => raw.validate(text),
            None => Self::parse_text_with_serde(text),
        }
    }

    /// The same parse by serde_json's visitors alone, without the hand-written
    /// fast path (`scan`) that reads plainly valid bodies first. The reference
    /// that tests and fuzzers hold the fast path to; not for production use.
    #[doc(hidden)]
    pub fn parse_with_serde(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        Self::parse_text_with_serde(body_text(bytes)?)
    }

    fn parse_text_with_serde(text: &'a str) -> Result<Self, EnvelopeError> {
        if !text.trim_start().starts_with('{') {
            // Not an object (the derive-free visitor below would also refuse, but
            // a scalar or array deserves the plainer message, and so does
            // malformed JSON that merely fails to start with `{`).
            return Err(match serde_json::from_str::<Skip>(text) {
                Ok(_) => EnvelopeError::NotAnObject,
                Err(e) => EnvelopeError::NotJson(e.to_string()),
            });
        }
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let raw = deserializer
            .deserialize_map(EnvelopeVisitor)
            .and_then(|raw| deserializer.end().map(|()| raw))
            .map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        raw.validate(text)
    }

    /// The catalogue entry for this topic (or [`Topic::Unknown`]).
    pub fn known_topic(&self) -> Topic {
        Topic::from_name(&self.topic)
    }

    /// Whether this is Intercom's `ping`.
    pub fn is_ping(&self) -> bool {
        self.topic == "ping"
    }

    /// The object this notification is about, as `(type, id)`: the item itself
    /// when it has an id, otherwise the object a wrapper item carries (the
    /// ticket of a ticket part, the contact of a contact tag, …), preferring the
    /// one the topic is named after. `None` when the item names no object.
    pub fn subject(&self) -> Option<(Cow<'_, str>, &str)> {
        let item = &self.item;
        if let Some(id) = &item.id {
            let kind = match &item.item_type {
                Some(kind) if !kind.is_empty() => Cow::Borrowed(kind.as_ref()),
                _ => Cow::Borrowed(self.known_topic().item_type()),
            };
            return Some((kind, id.as_ref()));
        }
        let prefix = self.topic.split('.').next().unwrap_or_default();
        let wrapped = |kind: Wrapper| {
            item.wrapped_id(kind)
                .map(|id| (Cow::Borrowed(kind.name()), id))
        };
        Wrapper::ALL
            .iter()
            .find(|kind| kind.name() == prefix)
            .and_then(|kind| wrapped(*kind))
            .or_else(|| Wrapper::ALL.iter().find_map(|kind| wrapped(*kind)))
    }
}

/// The head of `data.item`: its own `type` and `id`, and the ids of the objects
/// a wrapper item carries. Ids that Intercom sends as numbers become strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemHead<'a> {
    /// The item's `type`, when it has one as a string.
    pub item_type: Option<Cow<'a, str>>,
    /// The item's `id`, when it has one as a string or integer.
    pub id: Option<Cow<'a, str>>,
    ticket: Option<Cow<'a, str>>,
    conversation: Option<Cow<'a, str>>,
    contact: Option<Cow<'a, str>>,
    company: Option<Cow<'a, str>>,
}

impl<'a> ItemHead<'a> {
    fn wrapped_id(&self, kind: Wrapper) -> Option<&str> {
        match kind {
            Wrapper::Ticket => self.ticket.as_deref(),
            Wrapper::Conversation => self.conversation.as_deref(),
            Wrapper::Contact => self.contact.as_deref(),
            Wrapper::Company => self.company.as_deref(),
        }
    }

    fn wrapped_slot(&mut self, kind: Wrapper) -> &mut Option<Cow<'a, str>> {
        match kind {
            Wrapper::Ticket => &mut self.ticket,
            Wrapper::Conversation => &mut self.conversation,
            Wrapper::Contact => &mut self.contact,
            Wrapper::Company => &mut self.company,
        }
    }
}

/// Objects that wrapper items carry, in the order they are preferred as the
/// subject of a notification whose topic names none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    Ticket,
    Conversation,
    Contact,
    Company,
}

impl Wrapper {
    const ALL: [Self; 4] = [
        Self::Ticket,
        Self::Conversation,
        Self::Contact,
        Self::Company,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Ticket => "ticket",
            Self::Conversation => "conversation",
            Self::Contact => "contact",
            Self::Company => "company",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == key)
    }
}

/// The envelope's fields as found, before validation. Scalars stay raw so that
/// validation, not the parser, decides what a wrong type means.
#[derive(Default)]
struct RawEnvelope<'a> {
    kind: Option<Scalar<'a>>,
    topic: Option<Scalar<'a>>,
    id: Option<Scalar<'a>>,
    app_id: Option<Scalar<'a>>,
    created_at: Option<Scalar<'a>>,
    delivery_attempts: Option<Scalar<'a>>,
    data: Option<Shape<Option<Shape<ItemHead<'a>>>>>,
    /// The first envelope field found twice, if any.
    duplicate: Option<&'static str>,
}

impl<'a> RawEnvelope<'a> {
    fn validate(self, source: &'a str) -> Result<Envelope<'a>, EnvelopeError> {
        if let Some(field) = self.duplicate {
            return Err(EnvelopeError::DuplicateField(field));
        }
        if self.kind.and_then(Scalar::into_str).as_deref() != Some(NOTIFICATION_TYPE) {
            return Err(EnvelopeError::WrongType);
        }
        let topic = self
            .topic
            .and_then(Scalar::into_str)
            .filter(|topic| !topic.is_empty())
            .ok_or(EnvelopeError::InvalidTopic)?;
        let app_id = self
            .app_id
            .and_then(Scalar::into_str)
            .ok_or(EnvelopeError::InvalidAppId)?;
        let created_at = self
            .created_at
            .and_then(|value| value.int::<i64>())
            .ok_or(EnvelopeError::InvalidCreatedAt)?;
        let item = match self.data {
            Some(Shape::Object(Some(Shape::Object(item)))) => item,
            Some(Shape::Object(_)) => return Err(EnvelopeError::InvalidItem),
            _ => return Err(EnvelopeError::InvalidData),
        };
        let id = match self.id {
            Some(Scalar::Str(id)) => Some(id),
            Some(Scalar::Null) | None if topic == "ping" => None,
            _ => return Err(EnvelopeError::InvalidId),
        };
        let delivery_attempts = self.delivery_attempts.and_then(|value| value.int::<u64>());
        Ok(Envelope {
            topic,
            id,
            app_id,
            created_at,
            delivery_attempts,
            item,
            source,
        })
    }
}

/// `bytes` as text: validated with SIMD instructions where the processor has
/// them (several times std's speed on text that is not all ASCII), and again
/// by std, for its precise error, only when that fails.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes))
}

/// The body as text, or why it cannot be JSON.
fn body_text(bytes: &[u8]) -> Result<&str, EnvelopeError> {
    utf8(bytes).map_err(|e| EnvelopeError::NotJson(e.to_string()))
}

/// The value of a field the envelope reads (`type`, `topic`, `id`, …), checked
/// as strictly as a `serde_json::Value` parse checks it: escapes decoded and
/// surrogates paired, numbers within an `f64`, nesting within serde_json's
/// limit. (Capturing raw text instead would let such a field hold JSON that a
/// consumer cannot parse, and queue what it can only dead-letter.)
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    /// A string, borrowed from the body when it has no escapes.
    Str(Cow<'a, str>),
    /// An integer that serde_json reads as one: within `i64` or `u64`.
    Int(i128),
    Null,
    /// A boolean, a float, an array or an object.
    Other,
}

impl<'a> Scalar<'a> {
    fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Self::Str(text) => Some(text),
            _ => None,
        }
    }

    fn int<T: TryFrom<i128>>(&self) -> Option<T> {
        match self {
            Self::Int(n) => T::try_from(*n).ok(),
            _ => None,
        }
    }

    /// A string, or an integer as a string: how Intercom's ids come.
    fn into_id(self) -> Option<Cow<'a, str>> {
        match self {
            Self::Str(text) => Some(text),
            Self::Int(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v.into()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_elements(seq).map(|()| Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SkipMap.read(map).map(|()| Scalar::Other)
    }
}

/// A value that is either an object, read by `T`, or something else, skipped.
enum Shape<T> {
    Object(T),
    Other,
}

/// Reads a JSON value into [`Shape`], handing objects to a map reader.
struct ShapeSeed<R>(R);

trait MapReader<'de> {
    type Output;
    fn read<A: MapAccess<'de>>(self, map: A) -> Result<Self::Output, A::Error>;
}

impl<'de, R: MapReader<'de>> DeserializeSeed<'de> for ShapeSeed<R> {
    type Value = Shape<R::Output>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, R: MapReader<'de>> Visitor<'de> for ShapeSeed<R> {
    type Value = Shape<R::Output>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.read(map).map(Shape::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_elements(seq).map(|()| Shape::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shape::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Shape::Other)
    }
}

/// Skips a value of any kind. Unlike [`IgnoredAny`], which serde_json skips
/// without a depth limit, this descends through `deserialize_any`, so JSON
/// nested deeper than serde_json's recursion limit (128) is refused here
/// exactly as a consumer parsing the item into a `serde_json::Value` would.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ShapeSeed(SkipMap))
            .map(|_| Skip)
    }
}

/// Skips every element of an array, depth-checked.
fn skip_elements<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skip>()?.is_some() {}
    Ok(())
}

/// Reads an object by skipping all of it.
struct SkipMap;

impl<'de> MapReader<'de> for SkipMap {
    type Output = ();

    fn read<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, Skip>()?.is_some() {}
        Ok(())
    }
}

/// A map key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Stores a field's value, noting in `duplicate` when the key came before.
fn store_once<T>(
    slot: &mut Option<T>,
    value: T,
    field: &'static str,
    duplicate: &mut Option<&'static str>,
) {
    if slot.replace(value).is_some() {
        duplicate.get_or_insert(field);
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = RawEnvelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a notification envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawEnvelope::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "type" => store_once(&mut raw.kind, map.next_value()?, "type", &mut raw.duplicate),
                "topic" => store_once(
                    &mut raw.topic,
                    map.next_value()?,
                    "topic",
                    &mut raw.duplicate,
                ),
                "id" => store_once(&mut raw.id, map.next_value()?, "id", &mut raw.duplicate),
                "app_id" => store_once(
                    &mut raw.app_id,
                    map.next_value()?,
                    "app_id",
                    &mut raw.duplicate,
                ),
                "created_at" => store_once(
                    &mut raw.created_at,
                    map.next_value()?,
                    "created_at",
                    &mut raw.duplicate,
                ),
                "delivery_attempts" => raw.delivery_attempts = Some(map.next_value()?),
                "data" => {
                    let (data, item_twice) = match map.next_value_seed(ShapeSeed(DataReader))? {
                        Shape::Object((item, twice)) => (Shape::Object(item), twice),
                        Shape::Other => (Shape::Other, false),
                    };
                    if item_twice {
                        raw.duplicate.get_or_insert("data.item");
                    }
                    store_once(&mut raw.data, data, "data", &mut raw.duplicate);
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// Reads `data`, keeping the shape of `data.item` and whether it came twice.
struct DataReader;

impl<'de> MapReader<'de> for DataReader {
    type Output = (Option<Shape<ItemHead<'de>>>, bool);

    fn read<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Output, A::Error> {
        let mut item = None;
        let mut twice = false;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "item" {
                twice |= item
                    .replace(map.next_value_seed(ShapeSeed(ItemReader))?)
                    .is_some();
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok((item, twice))
    }
}

/// Reads the head of `data.item`, skipping everything else in it.
struct ItemReader;

impl<'de> MapReader<'de> for ItemReader {
    type Output = ItemHead<'de>;

    fn read<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Output, A::Error> {
        let mut head = ItemHead::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "type" => head.item_type = map.next_value::<Scalar<'de>>()?.into_str(),
                "id" => head.id = map.next_value::<Scalar<'de>>()?.into_id(),
                other => match Wrapper::from_key(other) {
                    Some(kind) => {
                        if let Shape::Object(id) = map.next_value_seed(ShapeSeed(IdReader))? {
                            *head.wrapped_slot(kind) = id;
                        }
                    }
                    None => {
                        map.next_value::<Skip>()?;
                    }
                },
            }
        }
        Ok(head)
    }
}

/// Reads only the `id` of a wrapped object.
struct IdReader;

impl<'de> MapReader<'de> for IdReader {
    type Output = Option<Cow<'de, str>>;

    fn read<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Output, A::Error> {
        let mut id = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "id" {
                id = map.next_value::<Scalar<'de>>()?.into_id();
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Envelope<'_>, EnvelopeError> {
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
        assert_eq!(envelope.item.item_type.as_deref(), Some("company"));
        assert_eq!(
            envelope.item.id.as_deref(),
            Some("531ee472cce572a6ec000006")
        );
        assert_eq!(
            envelope.subject(),
            Some((Cow::Borrowed("company"), "531ee472cce572a6ec000006"))
        );
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let envelope = parse(COMPANY_CREATED).expect("valid");
        assert!(matches!(envelope.topic, Cow::Borrowed(_)));
        assert!(matches!(envelope.app_id, Cow::Borrowed(_)));
        assert!(matches!(envelope.id, Some(Cow::Borrowed(_))));
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
        assert_eq!(envelope.subject(), Some((Cow::Borrowed("hologram"), "7")));
    }

    #[test]
    fn subject_of_wrappers_and_typeless_items() {
        let ticket_part = r#"{"type":"notification_event","topic":"ticket.note.created","id":"n","app_id":"a","created_at":1,
            "data":{"item":{"type":"ticket_ticket_part","ticket":{"type":"ticket","id":"42","ticket_parts":{"ticket_parts":[{"id":"9"}]}},"ticket_part":{"id":"9"}}}}"#;
        assert_eq!(
            parse(ticket_part).expect("valid").subject(),
            Some((Cow::Borrowed("ticket"), "42"))
        );

        let contact_tag = r#"{"type":"notification_event","topic":"contact.user.tag.created","id":"n","app_id":"a","created_at":1,
            "data":{"item":{"type":"contact_tag","created_at":1,"tag":{"id":"1287","name":"x"},"contact":{"type":"contact","id":"c1"}}}}"#;
        assert_eq!(
            parse(contact_tag).expect("valid").subject(),
            Some((Cow::Borrowed("contact"), "c1"))
        );

        // No type and no id of its own: the object the topic is named after wins.
        let attached = r#"{"type":"notification_event","topic":"company.contact.attached","id":"n","app_id":"a","created_at":1,
            "data":{"item":{"contact":{"id":"c1"},"company":{"id":"co1"}}}}"#;
        assert_eq!(
            parse(attached).expect("valid").subject(),
            Some((Cow::Borrowed("company"), "co1"))
        );

        // An id but no type: the catalogue's item type for the topic.
        let deleted = r#"{"type":"notification_event","topic":"contact.deleted","id":"n","app_id":"a","created_at":1,"data":{"item":{"id":"c9"}}}"#;
        assert_eq!(
            parse(deleted).expect("valid").subject(),
            Some((Cow::Borrowed("contact"), "c9"))
        );

        let nothing = r#"{"type":"notification_event","topic":"job.completed","id":"n","app_id":"a","created_at":1,"data":{"item":{"status":"done"}}}"#;
        assert_eq!(parse(nothing).expect("valid").subject(), None);
    }

    #[test]
    fn numeric_ids_become_strings() {
        let body = r#"{"type":"notification_event","topic":"admin.logged_in","id":"n","app_id":"a","created_at":1,"data":{"item":{"type":"admin","id":1234567890123}}}"#;
        assert_eq!(
            parse(body).expect("valid").item.id.as_deref(),
            Some("1234567890123")
        );
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
    fn duplicate_envelope_fields_are_refused() {
        let body = r#"{"type":"notification_event","topic":"a","topic":"b","id":"n","app_id":"a","created_at":1,"data":{"item":{}}}"#;
        assert_eq!(parse(body), Err(EnvelopeError::DuplicateField("topic")));
        let body = r#"{"type":"notification_event","topic":"a","id":"n","app_id":"a","created_at":1,"data":{"item":{}},"data":{"item":{}}}"#;
        assert_eq!(parse(body), Err(EnvelopeError::DuplicateField("data")));
        let body = r#"{"type":"notification_event","topic":"a","id":"n","app_id":"a","created_at":1,"data":{"item":{},"item":{}}}"#;
        assert_eq!(parse(body), Err(EnvelopeError::DuplicateField("data.item")));
        assert_eq!(
            EnvelopeError::DuplicateField("topic").to_string(),
            "`topic` appears more than once"
        );
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
