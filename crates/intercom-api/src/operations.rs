//! The calls handlers make most, typed, as Intercom's OpenAPI description (2.15) has them; [`Intercom::request`] reaches the rest.
//!
//! Calls that act in Intercom's inbox (replies, notes, assignment, state,
//! conversation tags) act as the client's admin ([`Intercom::admin_id`]):
//! the admin a notification of its echo names, so that the processor can
//! tell a handler's own action from a person's.
//!
//! **Writes in steps.** Intercom has no idempotency key: a POST whose
//! answer was lost may have been applied. In a resumed step (one that
//! started on an earlier delivery and did not complete,
//! [`intercom_webhook::dispatch::current_step`]) the writes that can be
//! checked are, before they are made again:
//! - a reply or note (conversation or ticket): a part by the app's admin,
//!   of that kind, with the same text, created since the notification, is
//!   the earlier write, returned instead of posting again;
//! - close, open, snooze, assign: a conversation already in that state (or
//!   with that assignee) is not changed again.
//!
//! Tagging (`POST /tags`, a conversation's or contact's tag), untagging and
//! the `PUT` updates are naturally idempotent: applied twice, they leave
//! what applying once does. A contact's note and a data event
//! (`POST /events`) cannot be checked, and may be written twice when their
//! answer was lost. The writes return a compact [`Written`], which a step
//! can keep.

use hyper::Method;
use intercom_webhook::dispatch::current_step;
use intercom_webhook::models::{
    Admin, Author, Company, Contact, Conversation, Tag, Ticket, Timestamp,
};
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

/// A compact record of a write to a conversation or ticket: what a step
/// keeps (a few dozen bytes, where the answer is the whole conversation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The conversation's or ticket's id.
    pub id: String,
    /// The part the write added, when the answer shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_id: Option<String>,
    /// The write was found already applied (a resumed step whose earlier
    /// answer was lost) and was not made again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub found: bool,
}

/// A part, as conversations and tickets list them, for [`find_part`].
struct Part<'a> {
    id: Option<&'a str>,
    part_type: Option<&'a str>,
    body: Option<&'a str>,
    created_at: Option<Timestamp>,
    author: Option<&'a Author>,
}

/// Whether `author` is admin `admin_id`.
fn is_admin(author: Option<&Author>, admin_id: &str) -> bool {
    author.is_some_and(|a| {
        a.kind.as_deref() == Some("admin") && a.id.as_ref().is_some_and(|id| id.0 == admin_id)
    })
}

/// A body's text: its HTML tags dropped and its white space collapsed, as
/// Intercom may store `hi` as `<p>hi</p>`.
fn text_of(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The id of the newest of `parts` that admin `admin_id` wrote as
/// `part_type` with `body`'s text, created at or after `since` (epoch
/// seconds); `Some(None)` for such a part without an id.
fn find_part<'a>(
    parts: impl Iterator<Item = Part<'a>>,
    admin_id: &str,
    part_type: &str,
    body: &str,
    since: i64,
) -> Option<Option<String>> {
    let text = text_of(body);
    parts
        .filter(|p| {
            is_admin(p.author, admin_id)
                && p.part_type == Some(part_type)
                && p.created_at.is_some_and(|at| at.0 >= since)
                && p.body.is_some_and(|b| text_of(b) == text)
        })
        .max_by_key(|p| p.created_at)
        .map(|p| p.id.map(str::to_owned))
}

/// The parts of `conversation`.
fn conversation_parts(conversation: &Conversation) -> impl Iterator<Item = Part<'_>> {
    conversation.parts().iter().map(|p| Part {
        id: p.id.as_ref().map(|id| id.0.as_str()),
        part_type: p.part_type.as_deref(),
        body: p.body.as_deref(),
        created_at: p.created_at,
        author: p.author.as_ref(),
    })
}

/// The parts of `ticket`.
fn ticket_parts(ticket: &Ticket) -> impl Iterator<Item = Part<'_>> {
    ticket.parts().iter().map(|p| Part {
        id: p.id.as_ref().map(|id| id.0.as_str()),
        part_type: p.part_type.as_deref(),
        body: p.body.as_deref(),
        created_at: p.created_at,
        author: p.author.as_ref(),
    })
}

/// The id of the newest part admin `admin_id` wrote among `parts`.
fn newest_by<'a>(parts: impl Iterator<Item = Part<'a>>, admin_id: &str) -> Option<String> {
    parts
        .enumerate()
        .filter(|(_, p)| is_admin(p.author, admin_id))
        .max_by_key(|(n, p)| (p.created_at, *n))
        .and_then(|(_, p)| p.id.map(str::to_owned))
}

/// The epoch seconds since which a resumed step's earlier write would be
/// found: `Some` only inside a resumed step.
fn resumed_since() -> Option<i64> {
    current_step()
        .filter(|step| step.resumed)
        .map(|step| step.since)
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

    /// `POST /conversations/{id}/reply`, as the client's admin. In a
    /// resumed step, the same reply already in the conversation (by the
    /// app's admin, since the notification) is returned instead of posted
    /// again.
    pub async fn reply(
        &self,
        conversation_id: &str,
        kind: ReplyKind,
        body: &str,
    ) -> Result<Written, ApiError> {
        let admin_id = self.admin_id().await?;
        if let Some(since) = resumed_since() {
            let now = self.conversation(conversation_id).await?;
            let parts = conversation_parts(&now);
            if let Some(part_id) = find_part(parts, &admin_id, kind.message_type(), body, since) {
                return Ok(Written {
                    id: conversation_id.to_owned(),
                    part_id,
                    found: true,
                });
            }
        }
        let request = json!({
            "message_type": kind.message_type(),
            "type": "admin",
            "admin_id": admin_id,
            "body": body,
        });
        self.post_part(conversation_id, "reply", &request, &admin_id)
            .await
    }

    /// A note on the conversation (a reply teammates only see).
    pub async fn note(&self, conversation_id: &str, body: &str) -> Result<Written, ApiError> {
        self.reply(conversation_id, ReplyKind::Note, body).await
    }

    /// `POST /conversations/{id}/parts`: one of the state changes, unless,
    /// in a resumed step, the conversation is already as `done` says.
    async fn part(
        &self,
        conversation_id: &str,
        request: Value,
        done: impl Fn(&Conversation) -> bool,
    ) -> Result<Written, ApiError> {
        if resumed_since().is_some() && done(&self.conversation(conversation_id).await?) {
            return Ok(Written {
                id: conversation_id.to_owned(),
                part_id: None,
                found: true,
            });
        }
        let admin_id = self.admin_id().await?;
        self.post_part(conversation_id, "parts", &request, &admin_id)
            .await
    }

    /// `POST /conversations/{id}/{action}`; what it wrote: the newest part
    /// by `admin_id` in the conversation it answers with.
    async fn post_part(
        &self,
        conversation_id: &str,
        action: &str,
        request: &Value,
        admin_id: &str,
    ) -> Result<Written, ApiError> {
        let answer: Conversation = self
            .request(
                Method::POST,
                &format!("/conversations/{}/{action}", segment(conversation_id)),
                Some(request),
            )
            .await?;
        Ok(Written {
            id: conversation_id.to_owned(),
            part_id: newest_by(conversation_parts(&answer), admin_id),
            found: false,
        })
    }

    /// Closes the conversation, with an optional closing message.
    pub async fn close(
        &self,
        conversation_id: &str,
        body: Option<&str>,
    ) -> Result<Written, ApiError> {
        let admin_id = self.admin_id().await?;
        let mut request = json!({"message_type": "close", "type": "admin", "admin_id": admin_id});
        if let Some(body) = body {
            request["body"] = json!(body);
        }
        self.part(conversation_id, request, |c| in_state(c, "closed"))
            .await
    }

    /// Opens (reopens, or unsnoozes) the conversation.
    pub async fn open(&self, conversation_id: &str) -> Result<Written, ApiError> {
        let admin_id = self.admin_id().await?;
        self.part(
            conversation_id,
            json!({"message_type": "open", "admin_id": admin_id}),
            |c| in_state(c, "open"),
        )
        .await
    }

    /// Snoozes the conversation until `until` (epoch seconds).
    pub async fn snooze(&self, conversation_id: &str, until: i64) -> Result<Written, ApiError> {
        let admin_id = self.admin_id().await?;
        self.part(
            conversation_id,
            json!({"message_type": "snoozed", "admin_id": admin_id, "snoozed_until": until}),
            |c| in_state(c, "snoozed"),
        )
        .await
    }

    /// Assigns the conversation to an admin or a team.
    pub async fn assign(
        &self,
        conversation_id: &str,
        assignee: &Assignee,
    ) -> Result<Written, ApiError> {
        let admin_id = self.admin_id().await?;
        let (kind, assignee_id) = match assignee {
            Assignee::Admin(id) => ("admin", id),
            Assignee::Team(id) => ("team", id),
        };
        let assigned = |c: &Conversation| {
            let current = match assignee {
                Assignee::Admin(_) => &c.admin_assignee_id,
                Assignee::Team(_) => &c.team_assignee_id,
            };
            current.as_ref().is_some_and(|id| id.0 == *assignee_id)
        };
        self.part(
            conversation_id,
            json!({"message_type": "assignment", "type": kind, "admin_id": admin_id,
                   "assignee_id": assignee_id}),
            assigned,
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

    /// `POST /tickets/{id}/reply`, as the client's admin. In a resumed
    /// step, the same reply already among the ticket's parts is returned
    /// instead of posted again.
    pub async fn reply_to_ticket(
        &self,
        ticket_id: &str,
        kind: ReplyKind,
        body: &str,
    ) -> Result<Written, ApiError> {
        let admin_id = self.admin_id().await?;
        if let Some(since) = resumed_since() {
            let now = self.ticket(ticket_id).await?;
            let parts = ticket_parts(&now);
            if let Some(part_id) = find_part(parts, &admin_id, kind.message_type(), body, since) {
                return Ok(Written {
                    id: ticket_id.to_owned(),
                    part_id,
                    found: true,
                });
            }
        }
        let answer: Value = self
            .request(
                Method::POST,
                &format!("/tickets/{}/reply", segment(ticket_id)),
                Some(
                    &json!({"message_type": kind.message_type(), "type": "admin",
                             "admin_id": admin_id, "body": body}),
                ),
            )
            .await?;
        // The answer is the ticket part written.
        Ok(Written {
            id: ticket_id.to_owned(),
            part_id: answer["id"].as_str().map(str::to_owned),
            found: false,
        })
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

/// Whether `conversation`'s `state` is `state`.
fn in_state(conversation: &Conversation, state: &str) -> bool {
    conversation.state.as_deref() == Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_found_by_its_admin_kind_text_and_time() {
        let parts: Vec<intercom_webhook::models::ConversationPart> =
            serde_json::from_value(json!([
                {"id": "1", "part_type": "note", "body": "<p>Refund</p>", "created_at": 90,
                 "author": {"type": "admin", "id": "7"}},
                {"id": "2", "part_type": "note", "body": "<p>Refund  </p>", "created_at": 100,
                 "author": {"type": "admin", "id": "7"}},
                {"id": "3", "part_type": "comment", "body": "Refund", "created_at": 101,
                 "author": {"type": "admin", "id": "7"}},
                {"id": "4", "part_type": "note", "body": "Refund", "created_at": 102,
                 "author": {"type": "user", "id": "7"}},
            ]))
            .expect("parts");
        let mut conversation = Conversation::default();
        conversation.conversation_parts =
            Some(serde_json::from_value(json!({"conversation_parts": parts})).expect("a list"));
        let found = |body: &str, kind: &str, since: i64| {
            find_part(conversation_parts(&conversation), "7", kind, body, since)
        };
        assert_eq!(found("Refund", "note", 95), Some(Some("2".into())));
        assert_eq!(found("Refund", "comment", 95), Some(Some("3".into())));
        assert_eq!(
            found("Refund", "note", 101),
            None,
            "older than the notification"
        );
        assert_eq!(found("Refunds", "note", 0), None);
        assert_eq!(text_of("<p>a <b>b</b></p>\n<p>c</p>"), "a b c");
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(segment("215473853299345"), "215473853299345");
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
    }
}
