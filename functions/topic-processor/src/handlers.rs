//! Your business logic: which Intercom topic goes to which handler, and the settings and clients your handlers share.
//!
//! This is the file to edit (docs/handlers.md walks through it).
//!
//! - [`App`] holds your handlers' own settings and clients. The processor
//!   builds it once, at cold start ([`App::from_lookup`] on the
//!   environment), before the first record: a missing or bad setting stops
//!   the start with a message naming the variable, and a client (an
//!   [`Endpoint`], an SDK client) is built once and shared by every record.
//!   To deploy a variable of yours, add it under `YOUR HANDLERS' SETTINGS`
//!   in `infra/template.yaml` (with an IAM statement there if your handler
//!   calls AWS).
//! - [`registry`] says which handler takes which topic. Each handler is a
//!   plain `async fn` that receives the item typed as it asks
//!   (`Event<Conversation>`, `Event<TicketWithPart>`, …, or `Event<Item>`
//!   for any; `intercom-dev topics` lists the model of every topic) and
//!   returns `Ok(())`, or a [`HandlerError`] saying whether a retry could
//!   help. A handler asking for a model its topic cannot carry stops the
//!   start, naming the model to ask for.
//! - Topics without a handler are acknowledged as `unhandled` and logged.
//!   What a handler logs (`tracing::info!`) shows in `intercom-dev serve`
//!   under its notification, and in CloudWatch with the notification's id.
//! - Each action a handler takes is best a step (`event.once`), which runs
//!   once per notification however often SQS delivers it.
//!
//! The examples below log; the refund example also acts in Intercom when
//! an access token is configured (`event.intercom()`), and the closed-ticket
//! example posts to your endpoint when `CLOSED_TICKETS_URL` is set. Replace
//! them with calls to your systems; their tests are at the end of this file.

use intercom_api::WithIntercom as _;
use intercom_webhook::dispatch::{Event, HandlerError, Registry};
use intercom_webhook::models::{
    Contact, Conversation, FromItem as _, Item, Ticket, TicketWithPart,
};
use intercom_webhook::topic::{Family, Topic};

use crate::config::ConfigError;
use crate::endpoint::Endpoint;

/// Your handlers' own settings and clients, read and built once at cold
/// start and shared by every record.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// Where closed tickets are posted (`CLOSED_TICKETS_URL`); unset, the
    /// closed-ticket example is not registered.
    pub closed_tickets: Option<Endpoint>,
}

impl App {
    /// Reads your settings through `var` (the process environment when
    /// deployed and in `intercom-dev serve`; a test passes its own).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let closed_tickets = match var("CLOSED_TICKETS_URL") {
            Some(url) => Some(
                Endpoint::new(&url).map_err(|e| ConfigError(format!("CLOSED_TICKETS_URL: {e}")))?,
            ),
            None => None,
        };
        Ok(Self { closed_tickets })
    }
}

/// When a ticket is closed, POST its id and title to our own endpoint, exactly once.
pub async fn post_closed_ticket(
    endpoint: Endpoint,
    event: Event<TicketWithPart>,
) -> Result<(), HandlerError> {
    let ticket = event.item.ticket();
    let body = serde_json::json!({ "id": ticket.id(), "title": ticket.title() });
    // A step runs once per notification: a retry of this record does not post again.
    event
        .once("post-closed-ticket", || endpoint.post(&body))
        .await?;
    tracing::info!(
        ticket_id = ticket.id(),
        title = ticket.title(),
        "posted the closed ticket"
    );
    Ok(())
}

/// The registry the deployed processor uses, built once at cold start from `app`.
pub fn registry(app: App) -> Registry {
    let mut registry = Registry::new();
    if let Some(endpoint) = app.closed_tickets {
        registry.on_with(Topic::TicketClosed, endpoint, post_closed_ticket);
    }
    registry
        .on(Topic::ConversationUserCreated, tag_refund_requests)
        // A teammate's note: hand it to your own systems. The refund
        // note above comes back here too, as the newest part of its
        // conversation, written by this app's admin through the API: the
        // processor knows its own echo (`own_action`) and this handler does
        // not run for it. The same admin typing a note in the inbox is a
        // teammate, and reaches it.
        .on(Topic::ConversationAdminNoted, |event: Event<Conversation>| async move {
            let id = event.item.id();
            // your_system::note_added(id, ...).await.map_err(HandlerError::retryable)?;
            tracing::info!(conversation_id = id, "a teammate left a note");
            Ok(())
        })
        .on(Topic::ContactUserCreated, |event: Event<Contact>| async move {
            let contact = &event.item;
            tracing::info!(contact_id = contact.id(), has_email = contact.email().is_some(), "new user");
            Ok(())
        })
        .on(Topic::TicketAdminReplied, |event: Event<TicketWithPart>| async move {
            let ticket_id = event.item.ticket().id();
            if ticket_id.is_empty() {
                return Err(HandlerError::permanent("a ticket reply without its ticket"));
            }
            tracing::info!(ticket_id, "teammate replied on a ticket");
            Ok(())
        })
        .on(Topic::TicketStateUpdated, mirror_ticket_state)
        // Every other ticket topic (those that carry a ticket, and those
        // that carry a ticket part: `Event<Item>` takes both).
        .on_family(Family::Ticket, |event: Event<Item>| async move {
            if let Ok(ticket) = Ticket::from_item(event.item) {
                tracing::info!(topic = %event.meta.topic_name, ticket_id = ticket.id(), ticket_state = ticket.state(), "ticket changed");
            }
            Ok(())
        });
    registry
}

/// When a user starts a conversation that mentions a refund, tag it
/// `refund` and leave teammates a note. Each action is a step: if the note
/// fails and SQS retries the record, the tag is not sent again. The note
/// comes back as `conversation.admin.noted`, written by this app's admin:
/// the processor knows its own echo (`own_action`) and hands it to no
/// handler.
async fn tag_refund_requests(event: Event<Conversation>) -> Result<(), HandlerError> {
    let conversation = &event.item;
    let id = conversation.id();
    let message = conversation.first_message().unwrap_or_default();
    tracing::info!(
        conversation_id = id,
        message_length = message.len(),
        "new conversation from a user"
    );
    if !mentions_refund(message) {
        return Ok(());
    }
    let Some(intercom) = event.intercom() else {
        tracing::info!(
            conversation_id = id,
            "mentions a refund: would tag it `refund` and leave a note (no Intercom access token configured)"
        );
        return Ok(());
    };
    event
        .once("tag-refund", || async {
            let tag = intercom.create_tag(REFUND_TAG).await?;
            let tag_id = tag
                .id
                .ok_or_else(|| HandlerError::permanent("intercom made a tag without an id"))?;
            intercom.tag_conversation(id, tag_id.as_str()).await?;
            Ok(())
        })
        .await?;
    event
        .once("note-refund", || async {
            intercom
                .note(
                    id,
                    "<p>Refund request: see the refund policy before replying.</p>",
                )
                .await?;
            Ok(())
        })
        .await?;
    tracing::info!(conversation_id = id, "tagged `refund` and noted");
    Ok(())
}

/// Mirror a ticket's state into your own system. Intercom does not deliver
/// in order, and a retry comes a minute late: with FRESHNESS=tag the
/// processor tells a handler when a newer notification about the same
/// ticket was processed first, so an older state never overwrites a newer
/// one. (With FRESHNESS=skip this handler would not even run for it.)
async fn mirror_ticket_state(event: Event<Ticket>) -> Result<(), HandlerError> {
    let ticket_id = event.item.id();
    if let Some(newer) = &event.meta.superseded_by {
        tracing::info!(
            ticket_id,
            newer_notification = newer.notification_id.as_deref().unwrap_or("-"),
            "ticket state older than the one mirrored; left as it is"
        );
        return Ok(());
    }
    // your_system::set_ticket_state(ticket_id, event.item.state()).await.map_err(HandlerError::retryable)?;
    tracing::info!(
        ticket_id,
        ticket_state = event.item.state(),
        "ticket state mirrored"
    );
    Ok(())
}

/// The tag the refund example puts on conversations.
pub const REFUND_TAG: &str = "refund";

/// Whether a message (HTML) mentions a refund.
pub fn mentions_refund(message: &str) -> bool {
    message.to_lowercase().contains("refund")
}

#[cfg(test)]
mod tests {
    use intercom_webhook::dispatch::Outcome;
    use intercom_webhook::topic::Topic;
    use serde_json::json;

    use super::{App, registry};
    use crate::testing::{Fault, Kit, Recorder, TestEvent};

    #[tokio::test]
    async fn a_closed_ticket_is_posted_once() {
        let ours = Recorder::start().await; // our endpoint, on loopback
        let app = App::from_lookup(|name| (name == "CLOSED_TICKETS_URL").then(|| ours.url.clone()));
        let kit = Kit::new(registry(app.expect("settings"))).await;
        let closed = TestEvent::sample(Topic::TicketClosed)
            .with("/ticket/ticket_attributes/_default_title_", "Broken");
        ours.answer(503); // our endpoint is down: the record fails, SQS retries it
        assert!(kit.run(&closed).await.failed_retryably());
        ours.answer(200);
        let retried = kit.run(&closed).await;
        assert_eq!(
            (retried.outcome, retried.steps),
            (Outcome::Processed, vec!["post-closed-ticket".to_owned()])
        );
        // Intercom delivers it again: a duplicate, not posted twice.
        assert_eq!(kit.run(&closed).await.outcome, Outcome::Duplicate);
        assert_eq!(ours.taken(), [json!({ "id": "5", "title": "Broken" })]);
    }

    #[tokio::test]
    async fn a_refund_request_is_tagged_and_noted_once_even_when_the_note_fails_first() {
        let kit = Kit::new(registry(App::default())).await;
        let refund = TestEvent::sample(Topic::ConversationUserCreated);
        let conversation = "215473853299345";
        let reply = format!("POST /conversations/{conversation}/reply");
        kit.intercom().then_on(&reply, Fault::Status(503));
        let first = kit.run(&refund).await;
        assert!(first.failed_retryably(), "{first:?}");
        assert_eq!(first.steps, ["tag-refund"]);
        let retry = kit.run(&refund).await;
        assert_eq!(retry.outcome, Outcome::Processed);
        assert_eq!(retry.steps, ["note-refund"], "the tag is not sent again");
        assert_eq!(retry.calls.last(), Some(&reply));
        assert!(
            !retry.calls.iter().any(|call| call.ends_with("/tags")),
            "{:?}",
            retry.calls
        );
        assert!(
            kit.intercom().violations().is_empty(),
            "{:?}",
            kit.intercom().violations()
        );
    }

    #[tokio::test]
    async fn a_conversation_without_a_refund_is_only_logged() {
        let kit = Kit::new(registry(App::default())).await;
        let question = TestEvent::sample(Topic::ConversationUserCreated)
            .with("/source/body", "<p>Where is my order?</p>");
        let run = kit.run(&question).await;
        assert_eq!(run.outcome, Outcome::Processed);
        assert!(run.steps.is_empty() && run.calls.is_empty(), "{run:?}");
    }

    #[test]
    fn settings_are_read_once_and_a_bad_one_names_its_variable() {
        assert!(
            App::from_lookup(|_| None)
                .expect("none needed")
                .closed_tickets
                .is_none()
        );
        let error = App::from_lookup(|_| Some("not a url".to_owned())).expect_err("bad");
        assert!(error.0.starts_with("CLOSED_TICKETS_URL: "), "{error}");
    }
}
