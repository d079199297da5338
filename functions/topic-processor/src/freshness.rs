//! Freshness: per object, the newest notification processed, so that a notification older than one already processed is known as such.
//!
//! Intercom does not deliver in order, and its retry of a failed delivery
//! comes a minute late, after newer notifications about the same
//! conversation may have been processed. With `FRESHNESS=tag` or `skip`,
//! the idempotency table also keeps, for each object (the FIFO group's
//! `{app_id}:{item_type}:{item_id}`), the `created_at` and id of the newest
//! notification processed about it, under `{function name}#object#{object}`
//! with the idempotency items' `expiration` (TTL).
//!
//! One conditional `UpdateItem` per record decides, after the idempotency
//! lock and before the handler: it raises the object's newest to this
//! notification's `created_at` unless the item names a later one, in which
//! case this notification is stale and the item says which notification
//! superseded it. DynamoDB applies conditional writes to one item one at a
//! time, so two records of one object running at once (a standard queue)
//! can never lower it. Equal times are not stale (Intercom's times are in
//! seconds); a notification without an object is never stale; a duplicate
//! is decided by idempotency first; a replay is judged like any other.
//!
//! The newest is raised when the record starts, not when it succeeds: a
//! newer notification that fails and is retried still makes older ones
//! stale meanwhile, so an older state never lands after a newer one that
//! is still on its way.

use std::sync::Arc;
use std::time::Duration;

use intercom_webhook::dispatch::{Meta, Superseded};

use crate::config::FreshnessMode;
use crate::idempotency::{Newest, Store, StoreError, expiration};
use crate::{millis, since_epoch};

/// The freshness check of one function: its mode (`tag` or `skip`), its
/// table and how long an object's newest is remembered.
#[derive(Clone)]
pub struct Freshness {
    pub mode: FreshnessMode,
    store: Arc<dyn Store>,
    function_name: String,
    ttl: Duration,
}

impl std::fmt::Debug for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Freshness")
            .field("mode", &self.mode)
            .field("function_name", &self.function_name)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Freshness {
    pub fn new(
        mode: FreshnessMode,
        store: Arc<dyn Store>,
        function_name: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            mode,
            store,
            function_name: function_name.into(),
            ttl,
        }
    }

    /// `{function name}#object#{object}`.
    pub fn key(&self, object: &str) -> String {
        format!("{}#object#{object}", self.function_name)
    }

    /// Records `meta`'s notification as the newest about its object, or
    /// says which newer one was processed before it.
    pub async fn check(&self, meta: &Meta) -> Result<Option<Superseded>, StoreError> {
        let Some(object) = &meta.object else {
            return Ok(None);
        };
        let now = since_epoch();
        let newest = Newest {
            created_at: meta.created_at,
            notification_id: meta.notification_id.clone(),
            expiration: expiration(now, self.ttl),
        };
        let newer = self
            .store
            .advance(self.key(object), newest, millis(now))
            .await?;
        Ok(newer.map(|newer| Superseded {
            notification_id: newer.notification_id,
            created_at: newer.created_at,
        }))
    }
}

#[cfg(test)]
mod tests {
    use intercom_webhook::topic::Topic;

    use super::*;
    use crate::idempotency::MemoryStore;

    fn meta(id: &str, object: Option<&str>, created_at: i64) -> Meta {
        Meta {
            topic_name: "conversation.admin.replied".into(),
            topic: Topic::ConversationAdminReplied,
            notification_id: Some(id.into()),
            app_id: "a".into(),
            created_at,
            delivery_attempts: Some(1),
            message_id: format!("m-{id}"),
            object: object.map(str::to_owned),
            superseded_by: None,
        }
    }

    #[tokio::test]
    async fn an_older_notification_about_the_same_object_is_stale() {
        let store = Arc::new(MemoryStore::default());
        let freshness = Freshness::new(
            FreshnessMode::Tag,
            Arc::clone(&store) as Arc<dyn Store>,
            "topic-processor",
            Duration::from_secs(3600),
        );
        let conversation = Some("a:conversation:1");
        assert_eq!(
            freshness.check(&meta("n2", conversation, 200)).await,
            Ok(None)
        );
        assert_eq!(
            freshness.check(&meta("n1", conversation, 100)).await,
            Ok(Some(Superseded {
                notification_id: Some("n2".into()),
                created_at: 200
            })),
            "older than one already processed"
        );
        assert_eq!(
            freshness.check(&meta("n3", conversation, 200)).await,
            Ok(None),
            "equal times are not stale"
        );
        assert_eq!(
            freshness
                .check(&meta("n4", Some("a:conversation:2"), 50))
                .await,
            Ok(None),
            "another object"
        );
        assert_eq!(
            freshness.check(&meta("n5", None, 1)).await,
            Ok(None),
            "no object"
        );
        let item = store
            .newest("topic-processor#object#a:conversation:1")
            .expect("the object's item");
        assert_eq!(item.created_at, 200);
        assert_eq!(item.notification_id.as_deref(), Some("n3"));
        assert!(item.expiration > 3_000, "a TTL an hour out");
    }
}
