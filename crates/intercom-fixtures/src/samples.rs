//! A realistic sample notification for every catalogued topic, shaped after Intercom's docs.
//!
//! Items carry what real deliveries carry: HTML bodies, emoji, RTL and CJK
//! text, ids as strings and numbers, ISO-8601 and epoch timestamps, wrapper
//! items, `*.deleted` items with only an id. [`large_conversation`] builds one
//! with hundreds of parts.

use intercom_webhook::topic::{Family, Topic};
use serde_json::{Value, json};

pub const APP_ID: &str = "a86dr8yl";

fn contact() -> Value {
    json!({
        "type": "contact", "id": "6318db7dfb80c614fe1792b5", "external_id": "user-42", "role": "user",
        "email": "jane@example.com", "name": "Jane Doe — ジェーン", "phone": null,
        "created_at": "2025-11-22T22:19:58.000Z", "updated_at": "2025-11-22T22:19:58+00:00",
        "signed_up_at": 1763849998, "unsubscribed_from_emails": false,
        "custom_attributes": {"plan": "pro", "seats": 12},
        "tags": {"type": "list", "data": [{"type": "tag", "id": "1287", "name": "vip"}], "has_more": false},
        "location": {"type": "location", "country": "مصر", "city": "القاهرة"}
    })
}

fn conversation(parts: usize) -> Value {
    let parts: Vec<Value> = (0..parts)
        .map(|n| {
            json!({
                "type": "conversation_part", "id": format!("{}", 9_000_000 + n), "part_type": if n % 5 == 4 { "note" } else { "comment" },
                "body": format!("<p>Part {n}: merci 🙏 — שלום — 谢谢 — <b>order #{}</b></p>", 10_000 + n),
                "created_at": 1763850000 + i64::try_from(n).unwrap_or(0), "updated_at": 1763850000, "notified_at": 1763850000,
                "assigned_to": null,
                "author": if n % 2 == 0 { json!({"type": "user", "id": "6318db7dfb80c614fe1792b5", "name": "Jane Doe", "email": "jane@example.com"}) }
                          else { json!({"type": "admin", "id": 991267, "name": "Ana", "email": "ana@example.com"}) },
                "attachments": [], "redacted": false
            })
        })
        .collect();
    let total = parts.len();
    json!({
        "type": "conversation", "id": "215473853299345", "created_at": 1763850000, "updated_at": 1763850002,
        "waiting_since": 1763850000, "snoozed_until": null, "open": true, "state": "open", "read": false,
        "priority": "not_priority", "admin_assignee_id": 991267, "team_assignee_id": "5017691", "title": null,
        "tags": {"type": "tag.list", "tags": [{"type": "tag", "id": "1287", "name": "billing", "applied_at": 1763850001}]},
        "source": {"type": "conversation", "id": "2934871045", "delivered_as": "customer_initiated", "subject": "",
                   "body": "<p>Hi 👋 my invoice shows the wrong VAT number — مرحبا — 请帮忙</p>",
                   "author": {"type": "user", "id": "6318db7dfb80c614fe1792b5", "name": "Jane Doe", "email": "jane@example.com"},
                   "attachments": [], "url": null, "redacted": false},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "6318db7dfb80c614fe1792b5", "external_id": "user-42"}]},
        "custom_attributes": {"Plan": "Pro", "Région": "Île-de-France"},
        "conversation_parts": {"type": "conversation_part.list", "conversation_parts": parts, "total_count": total}
    })
}

fn ticket() -> Value {
    json!({
        "type": "ticket", "id": "5", "ticket_id": "1", "category": "Customer",
        "ticket_attributes": {"_default_title_": "Refund request", "_default_description_": "Order #12345 arrived broken 📦"},
        "ticket_state": "submitted", "ticket_state_internal_label": "Submitted", "ticket_state_external_label": "Submitted",
        "ticket_type": {"type": "ticket_type", "id": "7", "name": "Refund", "category": "Customer"},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "6318db7dfb80c614fe1792b5"}]},
        "admin_assignee_id": "0", "team_assignee_id": "0", "open": true, "is_shared": true,
        "created_at": 1715937888, "updated_at": 1715937889, "snoozed_until": null
    })
}

/// The ticket as `ticket.closed` carries it: resolved, no longer open.
fn closed_ticket() -> Value {
    let mut ticket = ticket();
    ticket["ticket_state"] = json!("resolved");
    ticket["ticket_state_internal_label"] = json!("Resolved");
    ticket["ticket_state_external_label"] = json!("Resolved");
    ticket["open"] = json!(false);
    ticket["updated_at"] = json!(1715938000);
    ticket
}

fn company() -> Value {
    json!({
        "type": "company", "id": "531ee472cce572a6ec000006", "company_id": "6", "name": "Example Company Inc. 株式会社",
        "plan": {"type": "plan", "id": "269315", "name": "Pro"}, "size": 85, "website": "https://example.com",
        "industry": "Manufacturing", "monthly_spend": 1200.5, "user_count": 12,
        "remote_created_at": 1394531169, "created_at": 1394533506, "updated_at": "2025-11-22T22:20:00Z",
        "custom_attributes": {"tier": "gold"}
    })
}

fn admin() -> Value {
    json!({
        "type": "admin", "id": 991267, "name": "Ana Silva", "email": "ana@example.com", "job_title": "Support lead",
        "away_mode_enabled": true, "away_mode_reassign": false, "away_status_reason": "🍔 On lunch",
        "has_inbox_seat": true, "team_ids": [5017691]
    })
}

/// The first message of the `conversation.user.created` sample: it asks
/// for a refund, so that the shipped example handler tags and notes it.
pub const REFUND_REQUEST: &str =
    "<p>Hi 👋 my invoice shows the wrong VAT number — can I get a refund? — مرحبا — 请帮忙</p>";

/// The item a notification on `topic` carries.
pub fn item(topic: Topic) -> Value {
    use Topic as T;
    let name = topic.name();
    if name.ends_with(".deleted") && topic.family() != Family::Conversation {
        return json!({"type": topic.item_type(), "id": "deleted-42", "deleted": true});
    }
    match topic {
        T::CompanyContactAttached | T::CompanyContactDetached => {
            json!({"contact": contact(), "company": company()})
        }
        T::ConversationContactAttached | T::ConversationContactDetached => {
            json!({"contact": contact(), "conversation": {"type": "conversation", "id": "215473853299345"}})
        }
        T::ContactLeadTagCreated
        | T::ContactLeadTagDeleted
        | T::ContactUserTagCreated
        | T::ContactUserTagDeleted => {
            json!({"type": "contact_tag", "created_at": 1392731331, "tag": {"id": "1287", "name": "independent", "type": "tag"}, "contact": contact()})
        }
        T::ContactSubscribed
        | T::ContactUnsubscribed
        | T::GranularSubscribe
        | T::GranularUnsubscribe => json!({
            "type": "subscription", "id": "37846", "state": "opt_in", "consent_type": "opt_out",
            "subscription_type": {"type": "subscription", "id": "37846", "default_translation": {"name": "Newsletters 📰"}},
            "contact": contact()
        }),
        T::TicketNoteCreated
        | T::TicketAdminReplied
        | T::TicketAdminRepliedTranslated
        | T::TicketContactReplied
        | T::TicketClosed => json!({
            "type": "ticket_ticket_part",
            "ticket": if topic == T::TicketClosed { closed_ticket() } else { ticket() },
            "ticket_part": {"type": "ticket_part", "id": 19874, "part_type": "comment", "body": "<p>שלום! Your refund is on its way.</p>",
                            "created_at": 1715938000, "author": {"type": "admin", "id": "991267", "name": "Ana"}, "redacted": false}
        }),
        // The shipped refund example acts on it: a user asking for a refund.
        T::ConversationUserCreated => {
            let mut conversation = conversation(3);
            conversation["source"]["body"] = json!(REFUND_REQUEST);
            conversation
        }
        T::VisitorSignedUp => {
            let mut user = contact();
            user["type"] = json!("user");
            user
        }
        _ => match topic.family() {
            Family::Admin => admin(),
            Family::Article => json!({
                "type": "article", "id": "6871119", "title": "How to reset your password 🔐", "description": "パスワード",
                "body": "<p>Go to <a href=\"https://example.com\">settings</a>.</p>", "author_id": 991267, "state": "published",
                "url": "https://help.example.com/en/articles/6871119", "parent_id": 145, "created_at": 1672928359, "updated_at": "2025-11-22T22:20:00Z"
            }),
            Family::Call => json!({
                "type": "call", "id": "call_93ab", "conversation_id": "215473853299345", "state": "completed", "direction": "inbound",
                "initiated_at": 1763850000, "answered_at": 1763850005, "ended_at": 1763850300, "admin_id": 991267,
                "contact_id": "6318db7dfb80c614fe1792b5", "recording_url": "https://example.com/r.mp3", "transcription_url": null
            }),
            Family::Company => company(),
            Family::Contact | Family::Visitor => contact(),
            Family::ContentStat => json!({
                "type": name, "created_at": "2022-10-11T15:01:07.000Z",
                "content_stat": {"id": 1, "content_type": name.trim_start_matches("content_stat."), "content_id": 1, "stat_type": "receipt",
                                 "ruleset_id": 29, "content_title": "Welcome 👋", "ruleset_version_id": -1, "receipt_id": 1,
                                 "tags": {"type": "list", "has_more": false, "data": [], "total_count": 0},
                                 "series_id": 1, "series_title": null, "node_id": 3},
                "contact": contact()
            }),
            Family::Conversation => conversation(3),
            Family::ConversationPart => json!({
                "type": "conversation_part_tag", "conversation_id": "215473853299345",
                "conversation_part": {"type": "conversation_part", "id": "9000001", "part_type": "comment", "body": "<p>tagged</p>"},
                "tag": {"type": "tag", "id": "1287", "name": "bug"}
            }),
            Family::Event => json!({
                "type": "event", "id": "8a88a590-e1c3-41e2-a502-e0649dbf721c", "event_name": "invited-friend",
                "created_at": 1389913941, "user_id": "user-42", "email": "jane@example.com", "intercom_user_id": "6318db7dfb80c614fe1792b5",
                "metadata": {"invitee_email": "pi@example.org", "invite_code": "ADDAFRIEND"}
            }),
            Family::Ping => json!({"type": "ping", "message": "something something interzen"}),
            Family::Ticket => ticket(),
            Family::Audience if name.starts_with("audience.member") => {
                json!({"type": "audience_membership", "audience_id": "123", "content": {"type": "article_content", "id": "456"}})
            }
            Family::Audience => {
                json!({"type": "audience", "id": "123", "name": "VIP Customers", "predicates": [], "created_at": 1717200000, "updated_at": 1717200000})
            }
            Family::ContentSnippet => {
                json!({"type": "content_snippet", "id": 88, "title": "Refund policy", "created_at": 1717200000})
            }
            Family::ContentImportSource => {
                json!({"type": "content_import_source", "id": 33, "status": "active", "url": "https://support.example.com/us/1", "created_at": 1734537259})
            }
            Family::DataConnector => {
                json!({"type": "data_connector.execution", "id": "987654321", "action_name": "Create Ticket in System X", "success": false, "http_status": 400, "completed_at": "2025-09-16T01:10:18.536Z"})
            }
            Family::Job => {
                json!({"type": "job", "id": "job_1", "status": "completed", "created_at": 1717200000})
            }
            Family::ApiRequest => {
                json!({"type": "api_request", "id": "req_1", "status": 200, "method": "GET", "path": "/contacts"})
            }
            Family::Procedure => {
                json!({"type": "procedure.hitl_notification", "app_id": APP_ID, "conversation_id": "215473853299345", "step_id": "d5b81f72", "procedure_name": "Refund Request", "expires_at": null})
            }
            _ => json!({"type": topic.item_type(), "id": "1"}),
        },
    }
}

/// The notification for `topic`, with item `item`.
pub fn envelope(topic_name: &str, id: Option<&str>, item: Value) -> Value {
    json!({
        "type": "notification_event", "app_id": APP_ID,
        "data": {"type": "notification_event_data", "item": item},
        "links": {}, "id": id, "topic": topic_name,
        "delivery_status": if id.is_some() { json!("pending") } else { Value::Null },
        "delivery_attempts": 1, "delivered_at": 0, "first_sent_at": 1763850003, "created_at": 1763850002, "self": null
    })
}

/// A sample notification for `topic` (a unique id per topic; `null` for ping).
pub fn sample(topic: Topic) -> Value {
    let id = format!("notif_sample_{}", topic.name().replace('.', "_"));
    let id = (topic != Topic::Ping).then_some(id.as_str());
    envelope(topic.name(), id, item(topic))
}

/// The sample for `topic` as the bytes Intercom would send.
pub fn sample_body(topic: Topic) -> Vec<u8> {
    serde_json::to_vec(&sample(topic)).expect("serialisable")
}

/// `conversation.admin.replied` for a conversation with `parts` parts.
pub fn large_conversation(parts: usize) -> Vec<u8> {
    let body = envelope(
        "conversation.admin.replied",
        Some("notif_large_conversation"),
        conversation(parts),
    );
    serde_json::to_vec(&body).expect("serialisable")
}

/// The smallest [`large_conversation`] of at least `bytes` bytes (each part
/// adds bytes, so a doubling then a bisection finds it in a few builds).
pub fn conversation_of(bytes: usize) -> Vec<u8> {
    let fits = |parts: usize| large_conversation(parts).len() >= bytes;
    let mut high = 1;
    while !fits(high) {
        high *= 2;
    }
    let mut low = 0;
    while low < high {
        let middle = low + (high - low) / 2;
        if fits(middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    large_conversation(low)
}
