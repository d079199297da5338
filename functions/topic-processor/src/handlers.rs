//! Your business logic: which Intercom topic goes to which handler.
//!
//! This is the file to edit. Each handler receives the item typed as it asks
//! (`Event<Conversation>`, `Event<Ticket>`, …, or `Event<Item>` for any) and
//! returns `Ok(())`, or a [`HandlerError`] saying whether a retry could help.
//! Topics without a handler are acknowledged as `unhandled` and logged.
//! The examples below only log; replace them with calls to your systems.

use intercom_webhook::dispatch::{Event, HandlerError, Registry};
use intercom_webhook::models::{Contact, Conversation, Ticket, TicketWithPart};
use intercom_webhook::topic::{Family, Topic};

/// The registry the deployed processor uses, built once at cold start.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        // When a user starts a conversation, do X.
        .on(Topic::ConversationUserCreated, |event: Event<Conversation>| async move {
            let conversation = event.item;
            let id = conversation.id.map(|id| id.0).unwrap_or_default();
            let message_length = conversation.source.and_then(|s| s.body).map_or(0, |b| b.len());
            tracing::info!(conversation_id = %id, message_length, "new conversation from a user");
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
