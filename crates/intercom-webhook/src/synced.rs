//! Synced notifications: an object's current state, read from Intercom's REST API, queued under this project's own topic.
//!
//! Intercom drops a notification it could not deliver (one retry, a minute
//! later). `intercom-dev backfill` asks the REST API for the objects updated
//! in a window and, for each that changed with no notification reaching the
//! pipeline, queues one [`Synced`] notification. It says "this is the
//! object now", not "this happened": objects also change for reasons no
//! topic reports. Its shape is Intercom's envelope (docs/contract.md,
//! *Synced notifications*):
//!
//! - `topic`: `synced.conversation`, `synced.ticket` or `synced.contact`
//!   ([`Topic::SYNCED`]), never one of Intercom's; its queue message carries
//!   the attribute `synced`, which the receiver never sets: the processor
//!   routes a `synced.*` topic without it as an unknown topic, so nothing
//!   from outside is ever taken for a synced notification;
//! - `id`: `sync_` and 32 hex digits of a SHA-256 over the app, the
//!   object's type, id and `updated_at`: the same state of the same object
//!   always gets the same id, so idempotency and FIFO deduplication treat
//!   a second copy as the duplicate it is;
//! - `created_at`: the object's `updated_at`, the time of the state it
//!   carries; freshness compares it with Intercom's notifications' times;
//! - `data.item`: the object as the REST API returned it;
//! - `synced`: who queued it and why (`source`, `updated_at`,
//!   `last_seen_created_at`: the newest notification about the object the
//!   pipeline had seen, or `null`; `since` and `until`: the window asked).

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::topic::Topic;

/// What `synced.source` says.
pub const SOURCE: &str = "intercom-dev backfill";

/// How every synced notification's id starts (Intercom's start `notif_`).
pub const ID_PREFIX: &str = "sync_";

/// Whether `topic` is one of this project's own ([`Topic::SYNCED`]), which
/// Intercom never sends.
fn is_synced_topic(topic: &str) -> bool {
    Topic::SYNCED.iter().any(|own| own.name() == topic)
}

/// Whether `body` is a synced notification as `backfill` writes them (a
/// `synced.*` topic and `synced.source`): how `intercom-dev replay` marks
/// an archived one again, since the archive keeps no queue attributes.
/// Only a holder of the client secret can have signed such a body, and
/// Intercom never sends these topics.
pub fn written_by_backfill(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|body| {
        body["topic"].as_str().is_some_and(is_synced_topic) && body["synced"]["source"] == SOURCE
    })
}

/// The object `item` is (a REST API object: `type` and `id`), as
/// `{app_id}:{type}:{id}`: the FIFO group and freshness key of the
/// notifications about it ([`crate::envelope::Envelope::object`]).
pub fn object_of(app_id: &str, item: &Map<String, Value>) -> Option<String> {
    Some(format!("{app_id}:{}:{}", item_type(item)?, item_id(item)?))
}

fn item_type(item: &Map<String, Value>) -> Option<&str> {
    item.get("type").and_then(Value::as_str)
}

/// The id as the envelope reads it ([`crate::envelope::Envelope::item_id`]),
/// so that both give one key; an empty one names no object.
fn item_id(item: &Map<String, Value>) -> Option<String> {
    crate::envelope::id_text(item.get("id")?)
        .filter(|id| !id.is_empty())
        .map(Cow::into_owned)
}

/// One object's current state, to be queued as a notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Synced<'a> {
    /// The workspace (the envelope's `app_id`).
    pub app_id: &'a str,
    /// The object as the REST API returned it (`type`, `id`, `updated_at`).
    pub item: &'a Map<String, Value>,
    /// The newest `created_at` of a notification about the object that
    /// the pipeline had seen, if any.
    pub last_seen_created_at: Option<i64>,
    /// The window asked for: `since` inclusive, `until` exclusive.
    pub since: i64,
    pub until: i64,
    /// When it is queued (epoch seconds): `first_sent_at`.
    pub queued_at: i64,
}

impl Synced<'_> {
    /// The object's type (`conversation`, `ticket`, `contact`).
    fn item_type(&self) -> Option<&str> {
        item_type(self.item)
    }

    /// The object's id, a string or an integer.
    fn item_id(&self) -> Option<String> {
        item_id(self.item)
    }

    /// The object's `updated_at` (epoch seconds).
    fn updated_at(&self) -> Option<i64> {
        self.item.get("updated_at").and_then(Value::as_i64)
    }

    /// The topic it is queued under: `synced.{type}`.
    fn topic(&self) -> Option<Topic> {
        let name = format!("synced.{}", self.item_type()?);
        Topic::SYNCED.iter().copied().find(|t| t.name() == name)
    }

    /// `sync_` and the first 32 hex digits of the SHA-256 of
    /// `{app_id}\n{type}\n{id}\n{updated_at}`.
    pub fn notification_id(&self) -> Option<String> {
        let digest = Sha256::digest(format!(
            "{}\n{}\n{}\n{}",
            self.app_id,
            self.item_type()?,
            self.item_id()?,
            self.updated_at()?
        ));
        Some(format!("{ID_PREFIX}{}", &hex::encode(digest)[..32]))
    }

    /// The notification's body, or why the object cannot make one (a
    /// type without a synced topic, no id, no `updated_at`).
    pub fn body(&self) -> Result<Vec<u8>, String> {
        let kind = self.item_type().unwrap_or("(none)");
        let topic = self
            .topic()
            .ok_or_else(|| format!("an object of type `{kind}` has no synced topic"))?;
        let id = self
            .notification_id()
            .ok_or_else(|| format!("the {kind} has no id or no `updated_at`"))?;
        let updated_at = self.updated_at().unwrap_or_default();
        let body = json!({
            "type": "notification_event",
            "app_id": self.app_id,
            "data": {"type": "notification_event_data", "item": self.item},
            "links": {},
            "id": id,
            "topic": topic.name(),
            "delivery_status": null,
            "delivery_attempts": 1,
            "delivered_at": 0,
            "first_sent_at": self.queued_at,
            "created_at": updated_at,
            "self": null,
            "synced": {
                "source": SOURCE,
                "updated_at": updated_at,
                "last_seen_created_at": self.last_seen_created_at,
                "since": self.since,
                "until": self.until,
            },
        });
        Ok(body.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::signature::Verifier;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn synced(item: &Map<String, Value>) -> Synced<'_> {
        Synced {
            app_id: "abc123",
            item,
            last_seen_created_at: Some(1_700_000_000),
            since: 1_700_000_000,
            until: 1_700_003_600,
            queued_at: 1_700_009_000,
        }
    }

    #[test]
    fn a_synced_conversation_parses_as_a_notification_about_its_object() {
        let item =
            object(json!({"type": "conversation", "id": "123", "updated_at": 1_700_000_100}));
        let body = synced(&item).body().expect("body");
        let verifier = Verifier::new(["secret"]).expect("secret");
        let signature = verifier.sign(&body);
        let verified = verifier
            .verify(&body, Some(signature.as_bytes()))
            .expect("verifies");
        let envelope = Envelope::parse(verified).expect("an envelope");
        assert_eq!(envelope.topic, "synced.conversation");
        assert_eq!(envelope.created_at, 1_700_000_100);
        assert_eq!(
            envelope.object().as_deref(),
            Some("abc123:conversation:123")
        );
        assert_eq!(object_of("abc123", &item), envelope.object(), "one key");
        let id = envelope.id.expect("an id");
        assert!(id.starts_with("sync_") && id.len() == 37, "{id}");
        assert!(is_synced_topic(&envelope.topic));
        assert!(!is_synced_topic("conversation.user.created"));
        assert!(written_by_backfill(&body));
        let mut outside: Value = serde_json::from_slice(&body).expect("json");
        outside["synced"] = Value::Null;
        assert!(!written_by_backfill(outside.to_string().as_bytes()));
    }

    #[test]
    fn the_same_state_gets_the_same_id_and_a_newer_state_another() {
        let first = object(json!({"type": "ticket", "id": 7, "updated_at": 10}));
        let again = object(json!({"type": "ticket", "id": "7", "updated_at": 10, "title": "x"}));
        let newer = object(json!({"type": "ticket", "id": 7, "updated_at": 11}));
        let other_app = Synced {
            app_id: "other",
            ..synced(&first)
        };
        let id = synced(&first).notification_id();
        assert_eq!(id, synced(&again).notification_id());
        assert_ne!(id, synced(&newer).notification_id());
        assert_ne!(id, other_app.notification_id());
        assert_eq!(synced(&first).topic(), Some(Topic::SyncedTicket));
    }

    #[test]
    fn objects_that_cannot_be_synced_say_why() {
        for (item, why) in [
            (
                json!({"type": "company", "id": "1", "updated_at": 1}),
                "type `company`",
            ),
            (json!({"id": "1", "updated_at": 1}), "type `(none)`"),
            (json!({"type": "contact", "updated_at": 1}), "no id"),
            (json!({"type": "contact", "id": "1"}), "no `updated_at`"),
        ] {
            let item = object(item);
            let error = synced(&item).body().expect_err("refused");
            assert!(error.contains(why), "{error}");
        }
    }
}
