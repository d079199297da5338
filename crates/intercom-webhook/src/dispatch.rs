//! The handler API: where a user's business logic goes, and which topic goes where.
//!
//! A [`Registry`] maps topics (or whole families) to async handlers. A handler
//! asks for the model it wants, typed:
//!
//! ```
//! use intercom_webhook::dispatch::{Event, HandlerError, Registry};
//! use intercom_webhook::models::Conversation;
//! use intercom_webhook::topic::Topic;
//!
//! let mut registry = Registry::new();
//! registry.on(Topic::ConversationUserCreated, |event: Event<Conversation>| async move {
//!     let first_message = event.item.source.and_then(|s| s.body).unwrap_or_default();
//!     if first_message.is_empty() {
//!         return Err(HandlerError::permanent("a new conversation without a message"));
//!     }
//!     // ... open a ticket in your own system; a timeout there is worth a retry:
//!     // crm.open(...).await.map_err(HandlerError::retryable)?;
//!     Ok(())
//! });
//! ```
//!
//! Lookup order: the topic's handler, then its family's, then the default,
//! which logs nothing itself and reports the record [`Outcome::Unhandled`]
//! (acknowledged, never retried). Errors say whether a retry could help; the
//! processor treats both as a failed record (SQS retries it, and after the
//! redrive count it lands in the dead-letter queue), and logs which it was.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::models::{FromItem, Item};
use crate::topic::{Family, Topic};

/// A boxed future, as handlers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Facts about the notification besides its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The topic as sent (also for unknown topics).
    pub topic_name: String,
    pub topic: Topic,
    /// `notif_…`; `None` for `ping`.
    pub notification_id: Option<String>,
    /// The workspace.
    pub app_id: String,
    /// When Intercom created the notification (epoch seconds).
    pub created_at: i64,
    pub delivery_attempts: Option<u64>,
    /// The SQS message id.
    pub message_id: String,
}

/// What a handler receives: the item, typed as the handler asked, and its meta.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<T> {
    pub item: T,
    pub meta: Meta,
}

/// Why a handler did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// A retry could help (a dependency timed out, was throttled, was down).
    Retryable(String),
    /// A retry cannot help (the data is not what the handler can use). The
    /// record still fails, so it reaches the dead-letter queue for a person.
    Permanent(String),
}

impl HandlerError {
    pub fn retryable(error: impl fmt::Display) -> Self {
        Self::Retryable(error.to_string())
    }

    pub fn permanent(error: impl fmt::Display) -> Self {
        Self::Permanent(error.to_string())
    }

    /// Whether a retry could help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retryable(reason) => write!(f, "retryable: {reason}"),
            Self::Permanent(reason) => write!(f, "permanent: {reason}"),
        }
    }
}

impl std::error::Error for HandlerError {}

/// How a record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    /// No handler for the topic: acknowledged and logged, never retried.
    Unhandled,
    /// Already processed (where idempotency is on).
    Duplicate,
    Failed(Failure),
}

impl Outcome {
    /// The name logs use.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Unhandled => "unhandled",
            Self::Duplicate => "duplicate",
            Self::Failed(_) => "failed",
        }
    }
}

/// Why a record failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The message is not a valid notification (it will reach the dead-letter queue).
    Invalid(String),
    Handler(HandlerError),
    /// An earlier record of the same FIFO group failed in this batch.
    GroupHeldBack,
    /// The invocation was about to time out before this record finished.
    OutOfTime,
    /// Another processor holds this notification's idempotency lock.
    InProgress,
    /// The notification id was seen before with a different body.
    PayloadMismatch,
    /// The idempotency table could not be used, so nothing ran.
    IdempotencyUnavailable(String),
    /// A configured destination (the event bus, the archive) did not take it.
    Destination(String),
    /// The notification is over EventBridge's entry limit and no archive is
    /// configured to hold it.
    TooLargeForEventBus(usize),
    /// The message points at a body in S3 that could not be read.
    PayloadUnavailable(String),
}

impl Failure {
    /// The reason's code, as the record's log line gives it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_notification",
            Self::Handler(_) => "handler_failed",
            Self::GroupHeldBack => "group_held_back",
            Self::OutOfTime => "out_of_time",
            Self::InProgress => "in_progress",
            Self::PayloadMismatch => "payload_mismatch",
            Self::IdempotencyUnavailable(_) => "idempotency_unavailable",
            Self::Destination(_) => "destination_failed",
            Self::TooLargeForEventBus(_) => "too_large_for_event_bus",
            Self::PayloadUnavailable(_) => "payload_unavailable",
        }
    }

    /// Whether a retry could succeed (a bad notification or a permanent
    /// handler error will fail again; the rest may not).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Invalid(_) | Self::PayloadMismatch | Self::TooLargeForEventBus(_) => false,
            Self::Handler(error) => error.is_retryable(),
            Self::GroupHeldBack
            | Self::OutOfTime
            | Self::InProgress
            | Self::IdempotencyUnavailable(_)
            | Self::Destination(_)
            | Self::PayloadUnavailable(_) => true,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(reason) => write!(f, "invalid notification: {reason}"),
            Self::Handler(error) => write!(f, "handler failed ({error})"),
            Self::GroupHeldBack => {
                f.write_str("held back: an earlier record of its message group failed")
            }
            Self::OutOfTime => f.write_str("not finished before the invocation's deadline"),
            Self::InProgress => {
                f.write_str("another processor is working on this notification (idempotency lock)")
            }
            Self::PayloadMismatch => {
                f.write_str("this notification id was processed before with a different body")
            }
            Self::IdempotencyUnavailable(error) => {
                write!(f, "the idempotency table could not be used: {error}")
            }
            Self::Destination(error) => write!(f, "destination failed: {error}"),
            Self::PayloadUnavailable(error) => {
                write!(f, "the body stored in S3 could not be read: {error}")
            }
            Self::TooLargeForEventBus(size) => write!(
                f,
                "the event bus entry would be {size} bytes, over EventBridge's limit, and no archive is configured to hold the body"
            ),
        }
    }
}

type Handler = Box<dyn Fn(Item, Meta) -> BoxFuture<Result<(), HandlerError>> + Send + Sync>;

/// Which handler takes which topic.
#[derive(Default)]
pub struct Registry {
    topics: HashMap<Topic, Handler>,
    unknown_topics: HashMap<String, Handler>,
    families: HashMap<Family, Handler>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .field(
                "unknown_topics",
                &self.unknown_topics.keys().collect::<Vec<_>>(),
            )
            .field("families", &self.families.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn typed<T, F, Fut>(handler: F) -> Handler
where
    T: FromItem + Send + 'static,
    F: Fn(Event<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Box::new(move |item: Item, meta: Meta| match T::from_item(item) {
        Ok(item) => Box::pin(handler(Event { item, meta })),
        Err(item) => {
            let error = HandlerError::permanent(format!(
                "the handler for {} takes {} but the item is {}",
                meta.topic_name,
                T::NAME,
                item.model_name()
            ));
            Box::pin(std::future::ready(Err(error)))
        }
    })
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles `topic` with `handler`, which receives the item as `T`
    /// ([`Item`] for any model). Replaces an earlier handler for the topic.
    pub fn on<T, F, Fut>(&mut self, topic: Topic, handler: F) -> &mut Self
    where
        T: FromItem + Send + 'static,
        F: Fn(Event<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.topics.insert(topic, typed(handler));
        self
    }

    /// Handles a topic outside the catalogue by name (the item is [`Item::Other`]).
    pub fn on_unknown<F, Fut>(&mut self, topic_name: &str, handler: F) -> &mut Self
    where
        F: Fn(Event<Item>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.unknown_topics
            .insert(topic_name.to_owned(), typed(handler));
        self
    }

    /// Handles every topic of `family` that has no handler of its own.
    pub fn on_family<T, F, Fut>(&mut self, family: Family, handler: F) -> &mut Self
    where
        T: FromItem + Send + 'static,
        F: Fn(Event<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.families.insert(family, typed(handler));
        self
    }

    /// Whether some handler takes this topic.
    pub fn handles(&self, topic: Topic, topic_name: &str) -> bool {
        self.handler(topic, topic_name).is_some()
    }

    fn handler(&self, topic: Topic, topic_name: &str) -> Option<&Handler> {
        match topic {
            Topic::Unknown => self.unknown_topics.get(topic_name),
            known => self
                .topics
                .get(&known)
                .or_else(|| self.families.get(&known.family())),
        }
    }

    /// Runs the handler for `meta.topic` on `item`.
    pub fn dispatch(&self, item: Item, meta: Meta) -> BoxFuture<Outcome> {
        match self.handler(meta.topic, &meta.topic_name) {
            None => Box::pin(std::future::ready(Outcome::Unhandled)),
            Some(handler) => {
                let running = handler(item, meta);
                Box::pin(async move {
                    match running.await {
                        Ok(()) => Outcome::Processed,
                        Err(error) => Outcome::Failed(Failure::Handler(error)),
                    }
                })
            }
        }
    }
}
