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
//!
//! Handlers are user code, so [`Registry::dispatch`] expects them to panic:
//! a panic while the handler builds its future or while it runs becomes
//! [`Failure::HandlerPanicked`] for its own record, and the rest of the
//! batch goes on (this needs the release profile's `panic = "unwind"`).

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

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
    /// The object the notification is about, `{app_id}:{type}:{id}` (the
    /// ticket of a ticket part, the contact of a contact tag; the FIFO
    /// message group); `None` when the item names none.
    pub object: Option<String>,
    /// With `FRESHNESS=tag`: the newer notification about the same object
    /// that was already processed, when there is one. A handler that
    /// mirrors the object's state should then leave it as it is.
    pub superseded_by: Option<Superseded>,
}

impl Meta {
    /// Whether a newer notification about the same object was already
    /// processed (`FRESHNESS=tag`; always `false` when freshness is off).
    pub fn is_stale(&self) -> bool {
        self.superseded_by.is_some()
    }
}

/// The newer notification that makes one stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superseded {
    /// Its id (`None` for a notification without one).
    pub notification_id: Option<String>,
    /// Its `created_at` (epoch seconds), later than the stale one's.
    pub created_at: i64,
}

/// What a handler receives: the item, typed as the handler asked, its meta,
/// and what the processor gives each record besides ([`Context`]).
#[derive(Debug, Clone)]
pub struct Event<T> {
    pub item: T,
    pub meta: Meta,
    pub context: Context,
}

impl<T> Event<T> {
    /// Runs `step`, named `name`, at most once for this notification:
    /// its success and its result are recorded (in the idempotency table,
    /// under the notification's key), and when SQS retries the record after
    /// a later step failed, the step is not run again: its recorded result
    /// is returned instead. Without a step log (no idempotency table)
    /// steps simply run.
    ///
    /// Keep results small (an id, a flag): they are stored with the record
    /// (at most [`STEP_RESULT_LIMIT`] bytes of JSON; a larger one is
    /// recorded as done without it, and a retry then fails permanently
    /// rather than run the step again). A failed step records nothing.
    pub async fn once<R, F, Fut>(&self, name: &str, step: F) -> Result<R, HandlerError>
    where
        R: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R, HandlerError>>,
    {
        let Some(steps) = &self.context.steps else {
            return step().await;
        };
        match steps.recorded(name).await {
            Ok(Some(Recorded::Result(json))) => {
                return serde_json::from_str(&json).map_err(|e| {
                    HandlerError::permanent(format!(
                        "step {name} ran before, and its recorded result does not read as what \
                         it returns now: {e}"
                    ))
                });
            }
            Ok(Some(Recorded::TooLarge)) => {
                return Err(HandlerError::permanent(format!(
                    "step {name} ran before, and its result was too large to record: return \
                     something smaller from it (an id)"
                )));
            }
            Ok(None) => {}
            Err(error) => {
                return Err(HandlerError::retryable(format!(
                    "could not read whether step {name} ran: {error}"
                )));
            }
        }
        let result = step().await?;
        let recorded = match serde_json::to_string(&result) {
            Ok(json) if json.len() <= STEP_RESULT_LIMIT => Recorded::Result(json),
            _ => Recorded::TooLarge,
        };
        // Best effort: the step ran either way; failing the record now
        // would only make its retry run the step again.
        steps.record(name, recorded).await;
        Ok(result)
    }
}

/// The largest step result recorded, in bytes of JSON.
pub const STEP_RESULT_LIMIT: usize = 4096;

/// A step's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The step's result, as JSON.
    Result(String),
    /// The step ran; its result was over [`STEP_RESULT_LIMIT`].
    TooLarge,
}

/// Where one record's completed steps are kept.
pub trait StepLog: Send + Sync {
    /// The record of step `name`, if it completed before.
    fn recorded(&self, name: &str) -> BoxFuture<Result<Option<Recorded>, String>>;
    /// Records that step `name` completed; logs (does not return) a failure.
    fn record(&self, name: &str, recorded: Recorded) -> BoxFuture<()>;
}

/// What the processor gives a record's handler besides the item: its
/// services (Intercom's API client, bounded by the record's deadline) and
/// its step log. Handlers reach them through `Event`'s methods
/// ([`Event::once`]; `intercom_api::WithIntercom::intercom`).
#[derive(Clone, Default)]
pub struct Context {
    services: Vec<Arc<dyn Any + Send + Sync>>,
    steps: Option<Arc<dyn StepLog>>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("services", &self.services.len())
            .field("steps", &self.steps.is_some())
            .finish()
    }
}

impl Context {
    /// With `service`, found again by its type ([`Context::service`]).
    pub fn with_service<S: Any + Send + Sync>(mut self, service: S) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// The service of type `S`, if the processor gave one.
    pub fn service<S: Any + Send + Sync>(&self) -> Option<&S> {
        self.services.iter().find_map(|s| s.downcast_ref::<S>())
    }

    /// With the record's step log.
    pub fn with_steps(mut self, steps: Arc<dyn StepLog>) -> Self {
        self.steps = Some(steps);
        self
    }
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

    /// The same error, saying what was being done: `{doing}: {reason}`.
    pub fn context(self, doing: &str) -> Self {
        match self {
            Self::Retryable(reason) => Self::Retryable(format!("{doing}: {reason}")),
            Self::Permanent(reason) => Self::Permanent(format!("{doing}: {reason}")),
        }
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
    /// A newer notification about the same object was already processed,
    /// and `FRESHNESS=skip` kept the handler from running.
    Stale,
    /// The echo of the app's own action (its admin wrote the newest part),
    /// and `OWN_ACTIONS=skip` kept the handler from running.
    OwnAction,
    Failed(Failure),
}

impl Outcome {
    /// The name logs use.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Unhandled => "unhandled",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
            Self::OwnAction => "own_action",
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
    /// The handler panicked; the panic's message.
    HandlerPanicked(String),
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
            Self::HandlerPanicked(_) => "handler_panicked",
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

    /// Whether a retry could succeed (a bad notification, a permanent
    /// handler error or a panic, a bug that the same data meets again, will
    /// fail again; the rest may not).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Invalid(_)
            | Self::HandlerPanicked(_)
            | Self::PayloadMismatch
            | Self::TooLargeForEventBus(_) => false,
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
            Self::HandlerPanicked(message) => write!(f, "handler panicked: {message}"),
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

type Run = Box<dyn Fn(Item, Meta, Context) -> BoxFuture<Result<(), HandlerError>> + Send + Sync>;

/// A registered handler, and the model it asks for.
struct Handler {
    run: Run,
    /// [`FromItem::NAME`] of the model (`"Item"`: any).
    model: &'static str,
}

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
    let run: Run =
        Box::new(
            move |item: Item, meta: Meta, context: Context| match T::from_item(item) {
                Ok(item) => Box::pin(handler(Event {
                    item,
                    meta,
                    context,
                })),
                Err(item) => {
                    let error = HandlerError::permanent(format!(
                        "the handler for {} takes {} but the item is {}",
                        meta.topic_name,
                        T::NAME,
                        item.model_name()
                    ));
                    Box::pin(std::future::ready(Err(error)))
                }
            },
        );
    Handler {
        run,
        model: T::NAME,
    }
}

/// Handlers registered with a model their topics cannot carry: each would
/// fail every record of its topic. [`Registry::check`] finds them at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongModels(pub Vec<WrongModel>);

/// One topic whose handler asks for a model the topic does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongModel {
    pub topic: Topic,
    /// What the handler asks for.
    pub asked: &'static str,
    /// What the topic carries, the model to ask for.
    pub carried: &'static str,
    /// The family, when the handler was registered for a whole family.
    pub family: Option<Family>,
}

impl fmt::Display for WrongModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registered = match self.family {
            Some(family) => format!("the handler for family {family}"),
            None => format!("the handler for Topic::{}", self.topic.variant_name()),
        };
        write!(
            f,
            "{registered} takes Event<{}>, but {} carries {}: ask for Event<{}> (or Event<Item> for any model)",
            self.asked,
            self.topic.name(),
            self.carried,
            self.carried
        )
    }
}

impl fmt::Display for WrongModels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, wrong) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{wrong}")?;
        }
        f.write_str(" (`intercom-dev topics` lists the model of every topic)")
    }
}

impl std::error::Error for WrongModels {}

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

    /// Handles `topic` with `handler`, a plain `async fn` that receives a
    /// clone of `state` (your settings and clients, built once at cold
    /// start; an `Arc` or a cheap-to-clone client) and the item as `T`:
    ///
    /// ```ignore
    /// async fn post_closed_ticket(endpoint: Endpoint, event: Event<TicketWithPart>) -> Result<(), HandlerError> { … }
    /// registry.on_with(Topic::TicketClosed, endpoint, post_closed_ticket);
    /// ```
    pub fn on_with<S, T, F, Fut>(&mut self, topic: Topic, state: S, handler: F) -> &mut Self
    where
        S: Clone + Send + Sync + 'static,
        T: FromItem + Send + 'static,
        F: Fn(S, Event<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on(topic, move |event: Event<T>| handler(state.clone(), event))
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

    /// Every handler that asks for a model its topic cannot carry (a
    /// family handler: for a topic of the family without a handler of its
    /// own), named with the model to ask for. Such a handler would fail
    /// each of its records; the processor refuses to start with one
    /// instead (a Lambda init error naming the topic), and so does
    /// `intercom-dev serve`.
    pub fn check(&self) -> Result<(), WrongModels> {
        let mut wrong = Vec::new();
        for topic in Topic::ALL {
            let (handler, family) = match self.topics.get(topic) {
                Some(handler) => (handler, None),
                None => match self.families.get(&topic.family()) {
                    Some(handler) => (handler, Some(topic.family())),
                    None => continue,
                },
            };
            let carried = crate::models::model_for(*topic);
            if handler.model != Item::NAME && handler.model != carried {
                wrong.push(WrongModel {
                    topic: *topic,
                    asked: handler.model,
                    carried,
                    family,
                });
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(WrongModels(wrong))
        }
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

    /// Runs the handler for `meta.topic` on `item`, with no services. A
    /// panic in the handler, while it builds its future or while that runs,
    /// is this record's [`Failure::HandlerPanicked`].
    pub fn dispatch(&self, item: Item, meta: Meta) -> BoxFuture<Outcome> {
        self.dispatch_with(item, meta, Context::default())
    }

    /// [`Registry::dispatch`], the handler's event carrying `context`.
    pub fn dispatch_with(&self, item: Item, meta: Meta, context: Context) -> BoxFuture<Outcome> {
        let Some(handler) = self.handler(meta.topic, &meta.topic_name) else {
            return Box::pin(std::future::ready(Outcome::Unhandled));
        };
        let running =
            match std::panic::catch_unwind(AssertUnwindSafe(|| (handler.run)(item, meta, context)))
            {
                Ok(running) => running,
                Err(panic) => return Box::pin(std::future::ready(panicked(&*panic))),
            };
        Box::pin(async move {
            match AssertUnwindSafe(running).catch_unwind().await {
                Ok(Ok(())) => Outcome::Processed,
                Ok(Err(error)) => Outcome::Failed(Failure::Handler(error)),
                Err(panic) => panicked(&*panic),
            }
        })
    }
}

/// The outcome of a handler that panicked with `payload`.
fn panicked(payload: &(dyn Any + Send)) -> Outcome {
    let message = payload
        .downcast_ref::<&str>()
        .map(|m| (*m).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    Outcome::Failed(Failure::HandlerPanicked(message))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Steps in memory; `unreadable` makes every read fail.
    #[derive(Default)]
    struct MemorySteps {
        recorded: Mutex<HashMap<String, Recorded>>,
        unreadable: bool,
    }

    impl StepLog for MemorySteps {
        fn recorded(&self, name: &str) -> BoxFuture<Result<Option<Recorded>, String>> {
            let found = if self.unreadable {
                Err("table unreachable".to_owned())
            } else {
                Ok(self.recorded.lock().expect("lock").get(name).cloned())
            };
            Box::pin(std::future::ready(found))
        }

        fn record(&self, name: &str, recorded: Recorded) -> BoxFuture<()> {
            self.recorded
                .lock()
                .expect("lock")
                .insert(name.to_owned(), recorded);
            Box::pin(std::future::ready(()))
        }
    }

    fn event(context: Context) -> Event<()> {
        Event {
            item: (),
            meta: meta(Topic::ConversationUserCreated),
            context,
        }
    }

    /// Runs `event.once(name, …)` with a step that counts its runs into
    /// `runs` and returns `result`.
    fn step(
        event: &Event<()>,
        name: &str,
        runs: &Mutex<u32>,
        result: Result<String, HandlerError>,
    ) -> Result<String, HandlerError> {
        event
            .once(name, || async {
                *runs.lock().expect("lock") += 1;
                result
            })
            .now_or_never()
            .expect("ready")
    }

    #[test]
    fn a_step_runs_once_per_notification_and_its_result_comes_back() {
        let log = Arc::new(MemorySteps::default());
        let event = event(Context::default().with_steps(log.clone()));
        let runs = Mutex::new(0);
        assert_eq!(
            step(&event, "reply", &runs, Ok("part-1".into())),
            Ok("part-1".into())
        );
        // The record's retry: the step does not run; its result is returned.
        assert_eq!(
            step(&event, "reply", &runs, Ok("part-2".into())),
            Ok("part-1".into())
        );
        assert_eq!(*runs.lock().expect("lock"), 1);
        // Another step is its own.
        assert_eq!(step(&event, "tag", &runs, Ok("t".into())), Ok("t".into()));
        assert_eq!(*runs.lock().expect("lock"), 2);
    }

    #[test]
    fn a_failed_step_records_nothing_and_runs_again() {
        let log = Arc::new(MemorySteps::default());
        let event = event(Context::default().with_steps(log.clone()));
        let runs = Mutex::new(0);
        let failed = step(&event, "reply", &runs, Err(HandlerError::retryable("503")));
        assert_eq!(failed, Err(HandlerError::retryable("503")));
        assert!(log.recorded.lock().expect("lock").is_empty());
        assert_eq!(
            step(&event, "reply", &runs, Ok("sent".into())),
            Ok("sent".into())
        );
        assert_eq!(*runs.lock().expect("lock"), 2);
    }

    #[test]
    fn without_a_log_steps_simply_run() {
        let event = event(Context::default());
        let runs = Mutex::new(0);
        for _ in 0..2 {
            assert_eq!(step(&event, "reply", &runs, Ok("x".into())), Ok("x".into()));
        }
        assert_eq!(*runs.lock().expect("lock"), 2);
    }

    #[test]
    fn a_log_that_cannot_be_read_runs_nothing_and_is_retryable() {
        let log = Arc::new(MemorySteps {
            unreadable: true,
            ..MemorySteps::default()
        });
        let event = event(Context::default().with_steps(log));
        let runs = Mutex::new(0);
        let error = step(&event, "reply", &runs, Ok("x".into())).expect_err("unreadable");
        assert!(error.is_retryable(), "{error}");
        assert_eq!(*runs.lock().expect("lock"), 0);
    }

    #[test]
    fn a_result_too_large_to_record_is_done_and_never_run_again() {
        let log = Arc::new(MemorySteps::default());
        let event = event(Context::default().with_steps(log.clone()));
        let runs = Mutex::new(0);
        let large = "x".repeat(STEP_RESULT_LIMIT);
        assert_eq!(
            step(&event, "fetch", &runs, Ok(large.clone())),
            Ok(large.clone())
        );
        let error = step(&event, "fetch", &runs, Ok(large)).expect_err("too large before");
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("too large to record"), "{error}");
        assert_eq!(*runs.lock().expect("lock"), 1);
    }

    #[test]
    fn services_are_found_by_their_type() {
        #[derive(Debug, PartialEq)]
        struct Crm(&'static str);
        let context = Context::default()
            .with_service(Crm("acme"))
            .with_service(7_u32);
        assert_eq!(context.service::<Crm>(), Some(&Crm("acme")));
        assert_eq!(context.service::<u32>(), Some(&7));
        assert_eq!(context.service::<String>(), None);
    }

    fn meta(topic: Topic) -> Meta {
        Meta {
            topic_name: topic.name().to_owned(),
            topic,
            notification_id: Some("notif_1".into()),
            app_id: "a".into(),
            created_at: 1,
            delivery_attempts: Some(1),
            message_id: "m-1".into(),
            object: None,
            superseded_by: None,
        }
    }

    fn run(registry: &Registry, topic: Topic) -> Outcome {
        let item = Item::Other(serde_json::Value::Null);
        registry
            .dispatch(item, meta(topic))
            .now_or_never()
            .expect("these handlers finish on their first poll")
    }

    #[test]
    fn a_handler_asking_for_a_model_its_topic_cannot_carry_is_refused_at_start() {
        let mut registry = Registry::new();
        registry
            .on(
                Topic::TicketCreated,
                |_: Event<crate::models::Ticket>| async { Ok(()) },
            )
            .on(
                Topic::TicketClosed,
                |_: Event<crate::models::Ticket>| async { Ok(()) },
            )
            .on(Topic::ContactUserCreated, |_: Event<Item>| async { Ok(()) });
        let wrong = registry
            .check()
            .expect_err("ticket.closed carries a ticket part");
        assert_eq!(
            wrong.0,
            [WrongModel {
                topic: Topic::TicketClosed,
                asked: "Ticket",
                carried: "TicketWithPart",
                family: None,
            }]
        );
        let message = wrong.to_string();
        assert!(
            message.starts_with(
                "the handler for Topic::TicketClosed takes Event<Ticket>, but ticket.closed \
                 carries TicketWithPart: ask for Event<TicketWithPart>"
            ),
            "{message}"
        );
        // Registered right, it starts.
        registry.on(
            Topic::TicketClosed,
            |_: Event<crate::models::TicketWithPart>| async { Ok(()) },
        );
        assert_eq!(registry.check(), Ok(()));
        // A family handler must fit every topic of the family it takes.
        registry.on_family(Family::Ticket, |_: Event<crate::models::Ticket>| async {
            Ok(())
        });
        let wrong = registry
            .check()
            .expect_err("ticket replies carry a ticket part");
        let topics: Vec<Topic> = wrong.0.iter().map(|w| w.topic).collect();
        assert_eq!(
            topics,
            [
                Topic::TicketNoteCreated,
                Topic::TicketAdminReplied,
                Topic::TicketAdminRepliedTranslated,
                Topic::TicketContactReplied,
            ]
        );
        assert!(wrong.0.iter().all(|w| w.family == Some(Family::Ticket)));
        registry.on_family(Family::Ticket, |_: Event<Item>| async { Ok(()) });
        assert_eq!(registry.check(), Ok(()));
    }

    #[test]
    fn a_handler_with_state_gets_it_on_every_record() {
        async fn count(
            calls: Arc<Mutex<Vec<String>>>,
            event: Event<Item>,
        ) -> Result<(), HandlerError> {
            calls.lock().expect("lock").push(event.meta.topic_name);
            Ok(())
        }
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new();
        registry.on_with(Topic::ContactUserCreated, Arc::clone(&calls), count);
        assert_eq!(
            run(&registry, Topic::ContactUserCreated),
            Outcome::Processed
        );
        assert_eq!(
            run(&registry, Topic::ContactUserCreated),
            Outcome::Processed
        );
        assert_eq!(*calls.lock().expect("lock"), ["contact.user.created"; 2]);
    }

    #[test]
    fn every_way_a_handler_ends_is_an_outcome() {
        let mut registry = Registry::new();
        registry
            .on(Topic::ContactUserCreated, |_: Event<Item>| async { Ok(()) })
            .on(Topic::ContactUserUpdated, |_: Event<Item>| async {
                Err(HandlerError::retryable("crm timed out"))
            })
            .on(Topic::ContactDeleted, |event: Event<Item>| async move {
                panic!("no email for {}: ?", event.meta.app_id);
            })
            .on(Topic::ContactLeadCreated, |_: Event<Item>| {
                // A panic before the handler's future exists.
                let attempts: Vec<u8> = Vec::new();
                let first = attempts[0];
                async move {
                    if first > 0 {
                        Ok(())
                    } else {
                        Err(HandlerError::permanent("zero"))
                    }
                }
            })
            .on(Topic::ContactLeadUpdated, |_: Event<Item>| async {
                std::panic::panic_any(42_u32)
            });
        assert_eq!(
            run(&registry, Topic::ContactUserCreated),
            Outcome::Processed
        );
        assert_eq!(
            run(&registry, Topic::ContactUserUpdated),
            Outcome::Failed(Failure::Handler(HandlerError::Retryable(
                "crm timed out".into()
            )))
        );
        assert_eq!(
            run(&registry, Topic::ContactDeleted),
            Outcome::Failed(Failure::HandlerPanicked("no email for a: ?".into()))
        );
        let Outcome::Failed(Failure::HandlerPanicked(message)) =
            run(&registry, Topic::ContactLeadCreated)
        else {
            panic!("a panic while building the future is caught too")
        };
        assert!(message.contains("index out of bounds"), "{message}");
        assert_eq!(
            run(&registry, Topic::ContactLeadUpdated),
            Outcome::Failed(Failure::HandlerPanicked("a panic without a message".into()))
        );
        assert_eq!(
            run(&registry, Topic::AdminAddedToWorkspace),
            Outcome::Unhandled
        );
        // The registry is as good as before for the next record.
        assert_eq!(
            run(&registry, Topic::ContactUserCreated),
            Outcome::Processed
        );
        let panicked = Failure::HandlerPanicked("x".into());
        assert_eq!(panicked.code(), "handler_panicked");
        assert!(!panicked.is_retryable());
        assert_eq!(panicked.to_string(), "handler panicked: x");
    }
}
