//! The calls handlers make most, typed, as Intercom's OpenAPI description (2.15) has them; [`Intercom::request`] reaches the rest.
//!
//! Calls that act in Intercom's inbox (replies, notes, assignment, state,
//! conversation tags) act as the client's admin ([`Intercom::admin_id`]):
//! the admin a notification of its echo names, so that the processor can
//! tell a handler's own action from a person's.

use hyper::Method;
use intercom_webhook::models::{Admin, Company, Contact, Conversation, Tag, Ticket};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::Intercom;
use crate::error::ApiError;

/// What a reply or note says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// Seen by the customer.
    Comment,
    /// Seen by teammates only.
    Note,
}

impl ReplyKind {
    fn message_type(self) -> &'static str {
        match self {
            Self::Comment => "comment",
            Self::Note => "note",
        }
    }
}

/// Who a conversation is assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    Admin(String),
    Team(String),
}

/// A page of tags (`GET /tags`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagList {
    #[serde(default)]
    pub data: Vec<Tag>,
}

/// Who a data event is about: one of the three ids Intercom takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSubject {
    /// The contact's Intercom id.
    ContactId(String),
    /// Your id for the user (`user_id`, the contact's `external_id`).
    UserId(String),
    Email(String),
}

/// Percent-encodes one path segment (ids are Intercom's, but a handler may
/// pass anything).
fn segment(id: &str) -> String {
    let mut encoded = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl Intercom {
    /// `GET /me`: the admin the token acts as.
    pub async fn me(&self) -> Result<Admin, ApiError> {
        self.request(Method::GET, "/me", None).await
    }

    /// `GET /conversations/{id}`: the conversation as it is now (a
    /// notification carries it as it was).
    pub async fn conversation(&self, id: &str) -> Result<Conversation, ApiError> {
        self.request(
            Method::GET,
            &format!("/conversations/{}", segment(id)),
            None,
        )
        .await
    }

    /// `POST /conversations/{id}/reply`, as the client's admin.
    pub async fn reply(
        &self,
        conversation_id: &str,
        kind: ReplyKind,
        body: &str,
    ) -> Result<Conversation, ApiError> {
        let admin_id = self.admin_id().await?;
        let request = json!({
            "message_type": kind.message_type(),
            "type": "admin",
            "admin_id": admin_id,
            "body": body,
        });
        self.request(
            Method::POST,
            &format!("/conversations/{}/reply", segment(conversation_id)),
            Some(&request),
        )
        .await
    }

    /// A note on the conversation (a reply teammates only see).
    pub async fn note(&self, conversation_id: &str, body: &str) -> Result<Conversation, ApiError> {
        self.reply(conversation_id, ReplyKind::Note, body).await
    }

    /// `POST /conversations/{id}/parts`: one of the state changes.
    async fn part(&self, conversation_id: &str, request: Value) -> Result<Conversation, ApiError> {
        self.request(
            Method::POST,
            &format!("/conversations/{}/parts", segment(conversation_id)),
            Some(&request),
        )
        .await
    }

    /// Closes the conversation, with an optional closing message.
    pub async fn close(
        &self,
        conversation_id: &str,
        body: Option<&str>,
    ) -> Result<Conversation, ApiError> {
        let admin_id = self.admin_id().await?;
        let mut request = json!({"message_type": "close", "type": "admin", "admin_id": admin_id});
        if let Some(body) = body {
            request["body"] = json!(body);
        }
        self.part(conversation_id, request).await
    }

    /// Opens (reopens, or unsnoozes) the conversation.
    pub async fn open(&self, conversation_id: &str) -> Result<Conversation, ApiError> {
        let admin_id = self.admin_id().await?;
        self.part(
            conversation_id,
            json!({"message_type": "open", "admin_id": admin_id}),
        )
        .await
    }

    /// Snoozes the conversation until `until` (epoch seconds).
    pub async fn snooze(
        &self,
        conversation_id: &str,
        until: i64,
    ) -> Result<Conversation, ApiError> {
        let admin_id = self.admin_id().await?;
        self.part(
            conversation_id,
            json!({"message_type": "snoozed", "admin_id": admin_id, "snoozed_until": until}),
        )
        .await
    }

    /// Assigns the conversation to an admin or a team.
    pub async fn assign(
        &self,
        conversation_id: &str,
        assignee: &Assignee,
    ) -> Result<Conversation, ApiError> {
        let admin_id = self.admin_id().await?;
        let (kind, assignee_id) = match assignee {
            Assignee::Admin(id) => ("admin", id),
            Assignee::Team(id) => ("team", id),
        };
        self.part(
            conversation_id,
            json!({"message_type": "assignment", "type": kind, "admin_id": admin_id,
                   "assignee_id": assignee_id}),
        )
        .await
    }

    /// `POST /conversations/{id}/tags`.
    pub async fn tag_conversation(
        &self,
        conversation_id: &str,
        tag_id: &str,
    ) -> Result<Tag, ApiError> {
        let admin_id = self.admin_id().await?;
        self.request(
            Method::POST,
            &format!("/conversations/{}/tags", segment(conversation_id)),
            Some(&json!({"id": tag_id, "admin_id": admin_id})),
        )
        .await
    }

    /// `DELETE /conversations/{id}/tags/{tag_id}`.
    pub async fn untag_conversation(
        &self,
        conversation_id: &str,
        tag_id: &str,
    ) -> Result<Tag, ApiError> {
        let admin_id = self.admin_id().await?;
        self.request(
            Method::DELETE,
            &format!(
                "/conversations/{}/tags/{}",
                segment(conversation_id),
                segment(tag_id)
            ),
            Some(&json!({"admin_id": admin_id})),
        )
        .await
    }

    /// `PUT /conversations/{id}` with `custom_attributes`. Intercom's
    /// description (2.15) takes strings, integers, dates and lists of
    /// custom objects as values, not booleans or fractions.
    pub async fn set_conversation_attributes(
        &self,
        conversation_id: &str,
        custom_attributes: &serde_json::Map<String, Value>,
    ) -> Result<Conversation, ApiError> {
        self.request(
            Method::PUT,
            &format!("/conversations/{}", segment(conversation_id)),
            Some(&json!({"custom_attributes": custom_attributes})),
        )
        .await
    }

    /// `GET /contacts/{id}`.
    pub async fn contact(&self, id: &str) -> Result<Contact, ApiError> {
        self.request(Method::GET, &format!("/contacts/{}", segment(id)), None)
            .await
    }

    /// `PUT /contacts/{id}` with the fields to change (`name`, `email`,
    /// `custom_attributes`, …).
    pub async fn update_contact(&self, id: &str, fields: &Value) -> Result<Contact, ApiError> {
        self.request(
            Method::PUT,
            &format!("/contacts/{}", segment(id)),
            Some(fields),
        )
        .await
    }

    /// `POST /contacts/{id}/tags`.
    pub async fn tag_contact(&self, contact_id: &str, tag_id: &str) -> Result<Tag, ApiError> {
        self.request(
            Method::POST,
            &format!("/contacts/{}/tags", segment(contact_id)),
            Some(&json!({"id": tag_id})),
        )
        .await
    }

    /// `DELETE /contacts/{id}/tags/{tag_id}`.
    pub async fn untag_contact(&self, contact_id: &str, tag_id: &str) -> Result<Tag, ApiError> {
        self.request(
            Method::DELETE,
            &format!("/contacts/{}/tags/{}", segment(contact_id), segment(tag_id)),
            None,
        )
        .await
    }

    /// `POST /contacts/{id}/notes`, as the client's admin.
    pub async fn note_contact(&self, contact_id: &str, body: &str) -> Result<Value, ApiError> {
        let admin_id = self.admin_id().await?;
        self.request(
            Method::POST,
            &format!("/contacts/{}/notes", segment(contact_id)),
            Some(&json!({"body": body, "admin_id": admin_id})),
        )
        .await
    }

    /// `GET /tickets/{id}`.
    pub async fn ticket(&self, id: &str) -> Result<Ticket, ApiError> {
        self.request(Method::GET, &format!("/tickets/{}", segment(id)), None)
            .await
    }

    /// `PUT /tickets/{id}` with the fields to change (`ticket_attributes`,
    /// `ticket_state_id`, `open`, …).
    pub async fn update_ticket(&self, id: &str, fields: &Value) -> Result<Ticket, ApiError> {
        self.request(
            Method::PUT,
            &format!("/tickets/{}", segment(id)),
            Some(fields),
        )
        .await
    }

    /// `POST /tickets/{id}/reply`, as the client's admin.
    pub async fn reply_to_ticket(
        &self,
        ticket_id: &str,
        kind: ReplyKind,
        body: &str,
    ) -> Result<Value, ApiError> {
        let admin_id = self.admin_id().await?;
        self.request(
            Method::POST,
            &format!("/tickets/{}/reply", segment(ticket_id)),
            Some(
                &json!({"message_type": kind.message_type(), "type": "admin",
                         "admin_id": admin_id, "body": body}),
            ),
        )
        .await
    }

    /// `GET /tags`: every tag of the workspace.
    pub async fn tags(&self) -> Result<Vec<Tag>, ApiError> {
        let list: TagList = self.request(Method::GET, "/tags", None).await?;
        Ok(list.data)
    }

    /// `POST /tags`: creates the tag, or returns the one with that name.
    pub async fn create_tag(&self, name: &str) -> Result<Tag, ApiError> {
        self.request(Method::POST, "/tags", Some(&json!({"name": name})))
            .await
    }

    /// `GET /companies/{id}`.
    pub async fn company(&self, id: &str) -> Result<Company, ApiError> {
        self.request(Method::GET, &format!("/companies/{}", segment(id)), None)
            .await
    }

    /// `POST /events`: a data event about a contact, at `created_at`
    /// (epoch seconds), with up to ten `metadata` keys.
    pub async fn submit_event(
        &self,
        event_name: &str,
        created_at: i64,
        subject: &EventSubject,
        metadata: Option<&serde_json::Map<String, Value>>,
    ) -> Result<(), ApiError> {
        let mut request = json!({"event_name": event_name, "created_at": created_at});
        match subject {
            EventSubject::ContactId(id) => request["id"] = json!(id),
            EventSubject::UserId(id) => request["user_id"] = json!(id),
            EventSubject::Email(email) => request["email"] = json!(email),
        }
        if let Some(metadata) = metadata {
            request["metadata"] = json!(metadata);
        }
        // Intercom answers 202 with an empty body.
        let _: Value = self
            .request(Method::POST, "/events", Some(&request))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(segment("215473853299345"), "215473853299345");
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
    }
}
