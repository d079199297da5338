//! Your business logic: which Intercom topic goes to which handler.
//!
//! This is the file to edit. Each handler receives the item typed as it asks
//! (`Event<Conversation>`, `Event<Ticket>`, …, or `Event<Item>` for any) and
//! returns `Ok(())`, or a [`HandlerError`] saying whether a retry could help.
//! Topics without a handler are acknowledged as `unhandled` and logged.
//! The examples below log; the first also acts in Intercom when an access
//! token is configured (`event.intercom()`), each action a step that runs
//! once per notification (`event.once`), however often SQS retries it.
//! Replace them with calls to your systems.

use intercom_api::WithIntercom as _;
use intercom_webhook::dispatch::{Event, HandlerError, Registry};
use intercom_webhook::models::{Contact, Conversation, Ticket, TicketWithPart};
use intercom_webhook::topic::{Family, Topic};

/// The registry the deployed processor uses, built once at cold start.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        // When a user starts a conversation that mentions a refund, tag it
        // `refund` and leave teammates a note. Each action is a step: if the
        // note fails and SQS retries the record, the tag is not sent again.
        // If the record fails after the note reached Intercom but before
        // its answer did, the retry's typed client finds the note in the
        // conversation and does not post it twice.
        .on(Topic::ConversationUserCreated, |event: Event<Conversation>| async move {
            let conversation = &event.item;
            let id = conversation.id.as_ref().map(|id| id.0.clone()).unwrap_or_default();
            let message = conversation.source.as_ref().and_then(|s| s.body.as_deref()).unwrap_or_default();
            tracing::info!(conversation_id = %id, message_length = message.len(), "new conversation from a user");
            if !mentions_refund(message) {
                return Ok(());
            }
            let Some(intercom) = event.intercom() else {
                tracing::info!(conversation_id = %id, "mentions a refund: would tag it `refund` and leave a note (no Intercom access token configured)");
                return Ok(());
            };
            event
                .once("tag-refund", || async {
                    let tag = intercom.create_tag(REFUND_TAG).await?;
                    let tag_id = tag.id.ok_or_else(|| HandlerError::permanent("intercom made a tag without an id"))?;
                    intercom.tag_conversation(&id, tag_id.as_str()).await?;
                    Ok(())
                })
                .await?;
            event
                .once("note-refund", || async {
                    intercom.note(&id, "<p>Refund request: see the refund policy before replying.</p>").await?;
                    Ok(())
                })
                .await?;
            tracing::info!(conversation_id = %id, "tagged `refund` and noted");
            Ok(())
        })
        // A teammate's note: hand it to your own systems. The refund
        // note above comes back here too, as the newest part of its
        // conversation, written by this app's admin through the API: the
        // processor knows its own echo (`own_action`) and this handler does
        // not run for it. The same admin typing a note in the inbox is a
        // teammate, and reaches it.
        .on(Topic::ConversationAdminNoted, |event: Event<Conversation>| async move {
            let id = event.item.id.map(|id| id.0).unwrap_or_default();
            // your_system::note_added(&id, ...).await.map_err(HandlerError::retryable)?;
            tracing::info!(conversation_id = %id, "a teammate left a note");
            Ok(())
        })
        .on(Topic::ContactUserCreated, |event: Event<Contact>| async move {
            let contact = event.item;
            tracing::info!(contact_id = ?contact.id.map(|id| id.0), has_email = contact.email.is_some(), "new user");
            Ok(())
        })
        .on(Topic::TicketAdminReplied, |event: Event<TicketWithPart>| async move {
            let ticket_id = event.item.ticket.and_then(|t| t.id).map(|id| id.0);
            let Some(ticket_id) = ticket_id else {
                return Err(HandlerError::permanent("a ticket reply without its ticket"));
            };
            tracing::info!(%ticket_id, "teammate replied on a ticket");
            Ok(())
        })
        // Mirror a ticket's state into your own system. Intercom does not
        // deliver in order, and a retry comes a minute late: with
        // FRESHNESS=tag the processor tells a handler when a newer
        // notification about the same ticket was processed first, so an
        // older state never overwrites a newer one. (With FRESHNESS=skip
        // this handler would not even run for it.)
        .on(Topic::TicketStateUpdated, |event: Event<Ticket>| async move {
            let ticket_id = event.item.id.map(|id| id.0).unwrap_or_default();
            if let Some(newer) = &event.meta.superseded_by {
                tracing::info!(
                    %ticket_id,
                    newer_notification = newer.notification_id.as_deref().unwrap_or("-"),
                    "ticket state older than the one mirrored; left as it is"
                );
                return Ok(());
            }
            // your_system::set_ticket_state(&ticket_id, state).await.map_err(HandlerError::retryable)?;
            tracing::info!(%ticket_id, ticket_state = ?event.item.ticket_state, "ticket state mirrored");
            Ok(())
        })
        // Every other ticket topic that carries a ticket.
        .on_family(Family::Ticket, |event: Event<intercom_webhook::models::Item>| async move {
            if let Ok(ticket) = <Ticket as intercom_webhook::models::FromItem>::from_item(event.item) {
                tracing::info!(topic = %event.meta.topic_name, ticket_state = ?ticket.ticket_state, "ticket changed");
            }
            Ok(())
        });
    registry
}

/// The tag the refund example puts on conversations.
pub const REFUND_TAG: &str = "refund";

/// Whether a message (HTML) mentions a refund.
pub fn mentions_refund(message: &str) -> bool {
    message.to_lowercase().contains("refund")
}
