//! Where a notification goes beside its handler: the S3 archive key, the EventBridge entry and its size, and the pointer that replaces an oversized entry's item.
//!
//! The contract (*Destinations*): an archived body lives under
//! `{prefix}app_id={app_id}/topic={topic}/dt={YYYY-MM-DD}/{id}.json`, Hive
//! partitions that Athena reads as they are; an event bus entry carries the
//! notification as `Detail`, unless it is over EventBridge's limit, when the
//! detail is the envelope with `data.item` reduced to its `type` and `id`
//! plus `"archive":{"bucket":…,"key":…}`.

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
        let mut parts = key_after_prefix.split('/');
        let app_id = unescape(parts.next()?.strip_prefix("app_id=")?)?;
        let topic = unescape(parts.next()?.strip_prefix("topic=")?)?;
        let date = parts.next()?.strip_prefix("dt=")?.to_owned();
        let name = parts.next()?;
        (name.ends_with(".json") && parts.next().is_none()).then_some(Self {
            app_id,
            topic,
            date,
        })
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
