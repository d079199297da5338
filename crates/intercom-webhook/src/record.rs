//! Turning a queued notification back into a typed item and its meta, as the processor does: one parse.

use serde_json::Value;

use crate::dispatch::Meta;
use crate::envelope::{Envelope, EnvelopeError, content_sha256};
use crate::models::Item;

/// A queued notification, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// `data.item`, as the model for its topic.
    pub item: Item,
    pub meta: Meta,
    /// [`content_sha256`]: what the notification says, the same for every
    /// delivery of it (the idempotency table's `validation`).
    pub content_sha256: String,
}

/// Validates `notification` (the decoded message body) as the receiver did and
/// makes its item into the model for its topic, from the same parse. The
/// error says why the message is not a notification the processor can handle.
pub fn decode(notification: &[u8], message_id: &str) -> Result<Decoded, String> {
    let value: Value = serde_json::from_slice(notification)
        .map_err(|e| EnvelopeError::NotJson(e.to_string()).to_string())?;
    let content_sha256 = content_sha256(&value);
    let envelope = Envelope::from_value(value).map_err(|e| e.to_string())?;
    let topic = envelope.known_topic();
    let object = envelope.object();
    let item = Item::from_object(topic, envelope.item).map_err(|e| e.to_string())?;
    let meta = Meta {
        topic_name: envelope.topic,
        topic,
        notification_id: envelope.id,
        app_id: envelope.app_id,
        created_at: envelope.created_at,
        delivery_attempts: envelope.delivery_attempts,
        message_id: message_id.to_owned(),
        object,
        superseded_by: None,
    };
    Ok(Decoded {
        item,
        meta,
        content_sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::Topic;

    /// Found by the `record` fuzz target: the receiver accepts an item with a
    /// field twice (the envelope is valid), so the processor must decode it
    /// too, as the receiver read it, rather than fail it into the dead-letter
    /// queue.
    #[test]
    fn an_item_field_that_appears_twice_takes_its_last_value() {
        let body = br#"{"type":"notification_event","topic":"contact.user.created","id":"n1","app_id":"a","created_at":5,"data":{"item":{"type":"contact","id":"c1","email":"old@example.com","location":{"city":"x","city":"Tokyo"},"email":"jane@example.com"}}}"#;
        let decoded = decode(body, "m-1").expect("decodes");
        let Item::Contact(contact) = decoded.item else {
            panic!("contact")
        };
        assert_eq!(contact.email.as_deref(), Some("jane@example.com"));
    }

    #[test]
    fn decodes_a_ticket_part_wrapper() {
        let body = br#"{"type":"notification_event","topic":"ticket.admin.replied","id":"n1","app_id":"a","created_at":5,"data":{"item":{"type":"ticket_ticket_part","ticket":{"id":"5","ticket_state":"in_progress"},"ticket_part":{"id":9,"body":"<p>hi</p>"}}}}"#;
        let Decoded { item, meta, .. } = decode(body, "m-1").expect("decodes");
        assert_eq!(meta.topic, Topic::TicketAdminReplied);
        assert_eq!(meta.message_id, "m-1");
        assert_eq!(meta.object.as_deref(), Some("a:ticket:5"));
        let Item::TicketWithPart(wrapper) = item else {
            panic!("wrapper")
        };
        assert_eq!(
            wrapper.ticket.and_then(|t| t.ticket_state).as_deref(),
            Some("in_progress")
        );
        assert_eq!(
            wrapper
                .ticket_part
                .and_then(|p| p.id)
                .map(|id| id.0)
                .as_deref(),
            Some("9")
        );
    }

    #[test]
    fn invalid_notifications_say_why() {
        assert!(
            decode(b"{}", "m")
                .expect_err("not an envelope")
                .contains("`type`")
        );
        let item_array = br#"{"type":"notification_event","topic":"t","id":"n","app_id":"a","created_at":1,"data":{"item":[]}}"#;
        assert!(decode(item_array, "m").is_err());
    }
}
