//! Where a notification goes beside its handler: the S3 archive key, the EventBridge entry and its size, and the pointer that replaces an oversized entry's item.
//!
//! The contract (*Destinations*): an archived body lives under
//! `{prefix}app_id={app_id}/topic={topic}/dt={YYYY-MM-DD}/{id}.json`, Hive
//! partitions that Athena reads as they are; an event bus entry carries the
//! notification as `Detail`, unless it is over EventBridge's limit, when the
//! detail is the envelope with `data.item` reduced to its `type` and `id`
//! plus `"archive":{"bucket":…,"key":…}`.
//!
//! The stream layout (several notifications per object, written by an
//! Amazon Data Firehose stream with dynamic partitioning) keeps its objects
//! under `{prefix}stream/app_id={app_id}/dt={YYYY-MM-DD}/`, every topic of a
//! day together: Firehose bills each object and S3 each PUT, one per
//! partition per buffer interval, so partitions by topic made a quiet
//! workspace's archive cost grow with the number of topics it subscribes
//! to. Each notification is one JSON line, an [`ArchiveRecord`] naming its
//! topic, the body inside it byte for byte. Archives written before
//! 2026-12-05 also have `app_id=…/topic=…/dt=…/` under `stream/`
//! ([`StreamPartition`] reads both).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::envelope::body_sha256;

/// EventBridge's limit on one `PutEvents` entry, and on a request's entries
/// together: 1 MB since 29 January 2026 (256 KB before). AWS writes "1 MB";
/// this is the smaller reading, 1,000,000 bytes, so that no entry between
/// the two readings is ever refused (infra/AWS-BEHAVIOUR.md).
pub const EVENT_BUS_LIMIT: usize = 1_000_000;

/// At most this many entries in one `PutEvents` request.
pub const EVENT_BUS_BATCH: usize = 10;

/// The archive key of a notification: `prefix` as given, then Hive-style
/// partitions. The date is `created_at`'s, in UTC (`unknown` for an epoch
/// beyond the years 0–9999); the name is the notification id, or `sha256:`
/// and the body's SHA-256 for a null id. Characters outside
/// `[A-Za-z0-9._:-]` in the values are written `%XX`, as Hive escapes them,
/// so a value can never add a path segment.
pub fn archive_key(
    prefix: &str,
    app_id: &str,
    topic: &str,
    created_at: i64,
    notification_id: Option<&str>,
    body: &[u8],
) -> String {
    let name = notification_id.map_or_else(|| format!("sha256:{}", body_sha256(body)), escape);
    format!(
        "{prefix}app_id={}/topic={}/dt={}/{name}.json",
        escape(app_id),
        escape(topic),
        utc_date(created_at)
    )
}

/// `YYYY-MM-DD` of an epoch second, in UTC.
pub fn utc_date(epoch_seconds: i64) -> String {
    jiff::Timestamp::from_second(epoch_seconds).map_or_else(
        |_| "unknown".to_owned(),
        |t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
    )
}

fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
            escaped.push(c);
        } else {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                escaped.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    escaped
}

/// The partitions of an archive key, for choosing what to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedKey {
    pub app_id: String,
    pub topic: String,
    /// `YYYY-MM-DD`.
    pub date: String,
}

impl ArchivedKey {
    /// Reads the partitions of a key written by [`archive_key`] (after its
    /// prefix); `None` for any other key.
    pub fn parse(key_after_prefix: &str) -> Option<Self> {
        let (partitions, name) = Self::with_name(key_after_prefix)?;
        name.ends_with(".json").then_some(partitions)
    }

    /// Reads a day partition's path, `app_id=…/topic=…/dt=…/` (after the
    /// prefix, slash included); `None` for any other path.
    pub fn of_partition(path_after_prefix: &str) -> Option<Self> {
        let (partitions, name) = Self::with_name(path_after_prefix)?;
        name.is_empty().then_some(partitions)
    }

    /// The partitions of `app_id=…/topic=…/dt=…/{name}`, and the name:
    /// the stream's partitions, with a topic.
    fn with_name(path: &str) -> Option<(Self, &str)> {
        let (
            StreamPartition {
                app_id,
                topic,
                date,
            },
            name,
        ) = StreamPartition::with_name(path)?;
        Some((
            Self {
                app_id,
                topic: topic?,
                date,
            },
            name,
        ))
    }
}

fn unescape(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Firehose's limit on one record (before base64): 1,000 KiB. A line
/// longer than this is archived as an object, the line pointing to it.
pub const ARCHIVE_RECORD_LIMIT: usize = 1_024_000;

/// Where, under the archive's prefix, the stream layout's objects are.
pub const STREAM_PREFIX: &str = "stream/";

/// The Firehose `Prefix` the stack gives the archive stream: the app and
/// `created_at` day of [`archive_key`], each from the line's own field
/// (`app_id`, `dt`, already escaped as [`archive_key`] escapes them) by
/// dynamic partitioning, under `{prefix}stream/`. No topic: a partition
/// holds every topic of its day, so the stream writes one object per
/// interval, not one per topic.
pub fn stream_prefix(prefix: &str) -> String {
    format!(
        "{prefix}{STREAM_PREFIX}app_id=!{{partitionKeyFromQuery:app_id}}/dt=!{{partitionKeyFromQuery:dt}}/"
    )
}

/// What the stream layout keeps of one notification, one JSON line:
/// `app_id`, `topic` and `dt` (its partitions, escaped as in
/// [`archive_key`]), `id`, `created_at`, the delivery's `signature`,
/// `received_at` and `subscription_id`, and the body byte for byte: as the
/// JSON value it is (`notification`), or as a JSON string (`body`) when it
/// has a line break or surrounding whitespace of its own, or not at all when it is too long for a
/// record and `object` names the archive object holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRecord {
    pub app_id: String,
    pub topic: String,
    pub created_at: i64,
    pub id: Option<String>,
    pub signature: Option<String>,
    pub received_at: Option<String>,
    pub subscription_id: Option<String>,
    /// The body, exactly as delivered; `None` where `object` holds it.
    pub body: Option<Vec<u8>>,
    /// The archive key of the object holding the body.
    pub object: Option<String>,
}

impl ArchiveRecord {
    /// The line, newline included. The body must be the JSON text the
    /// processor parsed (every archived body is).
    pub fn to_line(&self) -> String {
        let text = |v: &Option<String>| v.as_deref().map_or(Value::Null, Value::from);
        let mut line = Map::new();
        line.insert("app_id".into(), escape(&self.app_id).into());
        line.insert("topic".into(), escape(&self.topic).into());
        line.insert("dt".into(), utc_date(self.created_at).into());
        line.insert("id".into(), text(&self.id));
        line.insert("created_at".into(), self.created_at.into());
        line.insert("signature".into(), text(&self.signature));
        line.insert("received_at".into(), text(&self.received_at));
        line.insert("subscription_id".into(), text(&self.subscription_id));
        if let Some(object) = &self.object {
            line.insert("object".into(), object.clone().into());
        }
        let mut line = Value::Object(line).to_string();
        if let Some(body) = &self.body {
            let text = String::from_utf8_lossy(body);
            line.pop();
            // A JSON value read back gives exactly its text, without the
            // whitespace around it: bodies with any, or with a line break
            // of their own, go as a string.
            let bare = body.first() == Some(&b'{')
                && body.last() == Some(&b'}')
                && !body.contains(&b'\n')
                && !body.contains(&b'\r');
            if !bare {
                line.push_str(r#","body":"#);
                line.push_str(&Value::from(text).to_string());
            } else {
                line.push_str(r#","notification":"#);
                line.push_str(&text);
            }
            line.push('}');
        }
        line.push('\n');
        line
    }

    /// Reads one line written by [`ArchiveRecord::to_line`]; the body comes
    /// back byte for byte.
    pub fn parse(line: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Line<'a> {
            app_id: String,
            topic: String,
            created_at: i64,
            id: Option<String>,
            signature: Option<String>,
            received_at: Option<String>,
            subscription_id: Option<String>,
            #[serde(borrow)]
            notification: Option<&'a RawValue>,
            body: Option<String>,
            object: Option<String>,
        }
        let line: Line<'_> = serde_json::from_str(line.trim_end_matches(['\n', '\r']))
            .map_err(|e| format!("not an archive line: {e}"))?;
        let body = match (line.notification, line.body) {
            (Some(raw), _) => Some(raw.get().as_bytes().to_vec()),
            (None, Some(body)) => Some(body.into_bytes()),
            (None, None) => None,
        };
        if body.is_none() && line.object.is_none() {
            return Err("an archive line with neither a body nor an object".into());
        }
        Ok(Self {
            app_id: unescape(&line.app_id).ok_or("an app_id escaped wrongly")?,
            topic: unescape(&line.topic).ok_or("a topic escaped wrongly")?,
            created_at: line.created_at,
            id: line.id,
            signature: line.signature,
            received_at: line.received_at,
            subscription_id: line.subscription_id,
            body,
            object: line.object,
        })
    }
}

/// A day partition of the stream layout (a path after `{prefix}stream/`):
/// `app_id=…/dt=…/`, every topic of the day, each line naming its own; or,
/// in archives written before 2026-12-05, `app_id=…/topic=…/dt=…/`, one
/// topic's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPartition {
    pub app_id: String,
    /// The topic of an earlier archive's partition; `None` for every topic.
    pub topic: Option<String>,
    /// `YYYY-MM-DD`, of the lines' `created_at`.
    pub date: String,
}

impl StreamPartition {
    /// Reads a day partition's path (slash included); `None` for any other.
    pub fn of_partition(path: &str) -> Option<Self> {
        let (partition, name) = Self::with_name(path)?;
        name.is_empty().then_some(partition)
    }

    /// Reads the partition of an object's key (any file name under it).
    pub fn of_key(key: &str) -> Option<Self> {
        let (partition, name) = Self::with_name(key)?;
        (!name.is_empty()).then_some(partition)
    }

    fn with_name(path: &str) -> Option<(Self, &str)> {
        let mut parts = path.split('/');
        let app_id = unescape(parts.next()?.strip_prefix("app_id=")?)?;
        let mut next = parts.next()?;
        let topic = match next.strip_prefix("topic=") {
            Some(topic) => {
                next = parts.next()?;
                Some(unescape(topic)?)
            }
            None => None,
        };
        let date = next.strip_prefix("dt=")?.to_owned();
        let name = parts.next()?;
        parts.next().is_none().then_some((
            Self {
                app_id,
                topic,
                date,
            },
            name,
        ))
    }
}

/// The size EventBridge counts for an entry with a `Time`: 14 bytes for the
/// time plus the UTF-8 bytes of `Source`, `DetailType` and `Detail`.
pub fn event_entry_size(source: &str, detail_type: &str, detail: &str) -> usize {
    14 + source.len() + detail_type.len() + detail.len()
}

/// The detail that stands for a notification too large for the bus: the
/// envelope with `data.item` reduced to its `type` and `id` (where it has
/// them), and `archive` naming the object that holds the whole body.
pub fn pointer_detail(notification: &Map<String, Value>, bucket: &str, key: &str) -> String {
    let mut envelope = notification.clone();
    if let Some(Value::Object(data)) = envelope.get_mut("data")
        && let Some(Value::Object(item)) = data.get_mut("item")
    {
        item.retain(|name, _| name == "type" || name == "id");
    }
    envelope.insert(
        "archive".to_owned(),
        serde_json::json!({ "bucket": bucket, "key": key }),
    );
    Value::Object(envelope).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn archive_keys_are_hive_partitions_that_read_back() {
        let key = archive_key(
            "intercom/",
            "abc123",
            "conversation.user.created",
            1_700_000_000,
            Some("notif_1"),
            b"{}",
        );
        assert_eq!(
            key,
            "intercom/app_id=abc123/topic=conversation.user.created/dt=2023-11-14/notif_1.json"
        );
        assert_eq!(
            ArchivedKey::parse(key.strip_prefix("intercom/").expect("prefix")),
            Some(ArchivedKey {
                app_id: "abc123".into(),
                topic: "conversation.user.created".into(),
                date: "2023-11-14".into(),
            })
        );
        // The last second of a day is that day, in UTC.
        assert_eq!(utc_date(1_700_006_399), "2023-11-14");
        assert_eq!(utc_date(1_700_006_400), "2023-11-15");
        assert_eq!(utc_date(i64::MAX), "unknown");
    }

    #[test]
    fn a_null_id_is_named_by_the_body_hash_and_odd_values_stay_one_segment() {
        let key = archive_key("", "a/b é", "ping", 0, None, b"body");
        assert_eq!(
            key,
            format!(
                "app_id=a%2Fb%20%C3%A9/topic=ping/dt=1970-01-01/sha256:{}.json",
                body_sha256(b"body")
            )
        );
        let parsed = ArchivedKey::parse(&key).expect("parses");
        assert_eq!(parsed.app_id, "a/b é");
        for other in [
            "app_id=a/topic=t/dt=2024-01-01/x.txt",
            "app_id=a/topic=t/x.json",
            "topic=t/app_id=a/dt=d/x.json",
            "app_id=a/topic=t/dt=d/extra/x.json",
            "app_id=%zz/topic=t/dt=d/x.json",
        ] {
            assert_eq!(ArchivedKey::parse(other), None, "{other}");
        }
        let (day, _) = key.rsplit_once('/').expect("a partition");
        assert_eq!(ArchivedKey::of_partition(&format!("{day}/")), Some(parsed));
        for other in [day, "app_id=a/topic=t/", "app_id=a/topic=t/dt=d/x.json"] {
            assert_eq!(ArchivedKey::of_partition(other), None, "{other}");
        }
    }

    fn record(body: Option<&[u8]>) -> ArchiveRecord {
        ArchiveRecord {
            app_id: "a/b".into(),
            topic: "ticket.created".into(),
            created_at: 1_700_000_000,
            id: Some("notif_1".into()),
            signature: Some("sha1=00".into()),
            received_at: Some("2023-11-14T22:13:20Z".into()),
            subscription_id: None,
            body: body.map(<[u8]>::to_vec),
            object: None,
        }
    }

    #[test]
    fn an_archive_line_gives_back_the_body_byte_for_byte() {
        for body in [
            &br#"{"type":"notification_event","id":"notif_1","topic":"ping"}"#[..],
            br#"{ "spaced" :  [1, 2.50, "\u00e9\"q"],  "k": {} }"#,
            b"{\n  \"pretty\": true\n}\r\n",
            b" {\"padded\":1} ",
            "{\"é\":\"ü\"}".as_bytes(),
        ] {
            let line = record(Some(body)).to_line();
            assert!(
                line.ends_with('\n') && line.matches('\n').count() == 1,
                "one line: {line}"
            );
            let read = ArchiveRecord::parse(&line).expect("parses");
            assert_eq!(read, record(Some(body)), "{line}");
            let value: Value = serde_json::from_str(&line).expect("valid JSON");
            assert_eq!(value["app_id"], "a%2Fb", "partitions escaped as in keys");
            assert_eq!(value["dt"], "2023-11-14");
        }
        let compact = record(Some(br#"{"a":1}"#)).to_line();
        assert!(compact.contains(r#""notification":{"a":1}}"#), "{compact}");
    }

    #[test]
    fn a_line_points_to_the_object_holding_a_body_too_long_for_it() {
        let mut pointing = record(None);
        pointing.object = Some("raw/app_id=a/topic=t/dt=d/notif_1.json".into());
        assert_eq!(ArchiveRecord::parse(&pointing.to_line()), Ok(pointing));
        assert!(ArchiveRecord::parse(&record(None).to_line()).is_err());
        assert!(ArchiveRecord::parse("{}").is_err());
    }

    #[test]
    fn stream_keys_give_their_partitions_in_both_layouts() {
        let object = "intercom-archive-1-2023-11-14-22-13-20-uuid.gz";
        assert_eq!(
            StreamPartition::of_key(&format!("app_id=a%2Fb/dt=2023-11-14/{object}")),
            Some(StreamPartition {
                app_id: "a/b".into(),
                topic: None,
                date: "2023-11-14".into()
            })
        );
        // An archive written before 2026-12-05: one topic a partition.
        assert_eq!(
            StreamPartition::of_key(&format!("app_id=a/topic=ping/dt=2023-11-14/{object}")),
            Some(StreamPartition {
                app_id: "a".into(),
                topic: Some("ping".into()),
                date: "2023-11-14".into()
            })
        );
        for day in ["app_id=a/dt=2023-11-14/", "app_id=a/topic=t/dt=2023-11-14/"] {
            assert_eq!(StreamPartition::of_key(day), None, "{day}");
            assert!(StreamPartition::of_partition(day).is_some(), "{day}");
        }
        for other in [
            "app_id=a/dt=d",
            "app_id=a/",
            "app_id=a/topic=t/",
            "dt=d/app_id=a/",
            "app_id=a/dt=d/x/",
            "app_id=%zz/dt=d/",
            "app_id=a/topic=%zz/dt=d/",
        ] {
            assert_eq!(StreamPartition::of_partition(other), None, "{other}");
        }
        assert_eq!(
            stream_prefix("raw/"),
            "raw/stream/app_id=!{partitionKeyFromQuery:app_id}/dt=!{partitionKeyFromQuery:dt}/"
        );
        // What the stack's stream reads each line's partitions from.
        let line: Value = serde_json::from_str(&record(Some(b"{}")).to_line()).expect("JSON");
        assert_eq!(
            (&line["app_id"], &line["dt"]),
            (&json!("a%2Fb"), &json!("2023-11-14"))
        );
    }

    #[test]
    fn entry_size_counts_as_eventbridge_does() {
        assert_eq!(event_entry_size("intercom", "ping", "{}"), 14 + 8 + 4 + 2);
        assert_eq!(event_entry_size("s", "t", "\"é\""), 14 + 1 + 1 + 4);
    }

    #[test]
    fn the_pointer_keeps_the_envelope_and_only_the_items_type_and_id() {
        let notification: Map<String, Value> = serde_json::from_str(
            r#"{"type":"notification_event","topic":"conversation.admin.replied","id":"notif_1","app_id":"a","created_at":1,
                "data":{"type":"notification_event_data","item":{"type":"conversation","id":"7","conversation_parts":{"total_count":900}}}}"#,
        )
        .expect("json");
        let detail: Value =
            serde_json::from_str(&pointer_detail(&notification, "bucket", "k.json")).expect("json");
        assert_eq!(
            detail["data"]["item"],
            serde_json::json!({"type":"conversation","id":"7"})
        );
        assert_eq!(detail["data"]["type"], "notification_event_data");
        assert_eq!(detail["id"], "notif_1");
        assert_eq!(
            detail["archive"],
            serde_json::json!({"bucket":"bucket","key":"k.json"})
        );
    }
}
