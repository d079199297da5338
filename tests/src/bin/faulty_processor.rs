//! `topic-processor` wired exactly as deployed (`topic_processor::lambda::run`), with handlers that misbehave on request: for tests of a processor under failure.
//!
//! - `conversation.user.created` logs "slow handler started", sleeps
//!   `SLOW_HANDLER_MS` (default 10,000), then logs "slow handler finished";
//! - `conversation.user.replied` panics for the record whose message id is
//!   `PANIC_ON_MESSAGE` (`*`: every record), and otherwise, with an
//!   Intercom token configured, fetches the conversation in a step
//!   (`Event::once`), then logs "replied handler ran";
//!
//! - with `WRONG_MODEL` set, `ticket.closed` is registered with
//!   `Event<Ticket>`, a model it cannot carry: the start must fail;
//!
//! every other topic is unhandled.

use std::time::Duration;

use intercom_api::WithIntercom as _;
use intercom_webhook::dispatch::{Event, Registry};
use intercom_webhook::models::Item;
use intercom_webhook::topic::Topic;
use lambda_runtime::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let pause = std::env::var("SLOW_HANDLER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let panic_on = std::env::var("PANIC_ON_MESSAGE").unwrap_or_default();
    let mut registry = Registry::new();
    registry
        .on(
            Topic::ConversationUserCreated,
            move |event: Event<Item>| async move {
                tracing::info!(notification_id = ?event.meta.notification_id, "slow handler started");
                tokio::time::sleep(pause).await;
                tracing::info!(notification_id = ?event.meta.notification_id, "slow handler finished");
                Ok(())
            },
        )
        .on(Topic::ConversationUserReplied, move |event: Event<Item>| {
            let panics = panic_on == "*" || event.meta.message_id == panic_on;
            async move {
                if panics {
                    let reply: Option<&str> = std::hint::black_box(None);
                    let text = reply.expect("a reply with a body");
                    tracing::info!(text, "unreachable");
                }
                if let Some(intercom) = event.intercom() {
                    let id = match &event.item {
                        Item::Conversation(conversation) => conversation.id.clone(),
                        _ => None,
                    }
                    .map(|id| id.0)
                    .unwrap_or_default();
                    event
                        .once("fetch", || async {
                            intercom.conversation(&id).await?;
                            Ok(())
                        })
                        .await?;
                }
                tracing::info!(message_id = %event.meta.message_id, "replied handler ran");
                Ok(())
            }
        });
    if std::env::var_os("WRONG_MODEL").is_some() {
        registry.on(
            Topic::TicketClosed,
            |_: Event<intercom_webhook::models::Ticket>| async { Ok(()) },
        );
    }
    topic_processor::lambda::run(registry).await
}
