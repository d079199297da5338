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
    /// its completion and its result are kept (in the idempotency table,
    /// under the notification's own key, for `STEPS_TTL_SECONDS`), and
    /// when the record comes again (an SQS retry after a later step
    /// failed, a dead-letter redrive, a replay) the step does not run: its
    /// kept result is returned instead. Without a step log (no idempotency
    /// table) steps simply run.
    ///
    /// A step that started before and did not complete (its record failed
    /// or ran out of time while it ran) runs again as a *resumed* step
    /// ([`current_step`]): the typed Intercom client then checks whether
    /// its write was applied before writing again.
    ///
    /// The result is kept as JSON, at most [`STEP_RESULT_LIMIT`] bytes:
    /// what the typed client's writes return fits. A larger result is
    /// refused when the step completes (a permanent error naming the
    /// limit), never on a later delivery. A failed step keeps nothing.
    pub async fn once<R, F, Fut>(&self, name: &str, step: F) -> Result<R, HandlerError>
    where
        R: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R, HandlerError>>,
    {
        let run = |resumed| StepRun {
            name: name.to_owned(),
            since: self.meta.created_at,
            resumed,
        };
        let Some(steps) = &self.context.steps else {
            return STEP.scope(run(false), step()).await;
        };
        let resumed = match steps.state(name).await {
            Ok(Some(StepState::Completed(json))) => {
                return serde_json::from_str(&json).map_err(|e| {
                    HandlerError::permanent(format!(
                        "step {name} completed before, and its kept result does not read as \
                         what it returns now: {e}"
                    ))
                });
            }
            Ok(Some(StepState::Started)) => true,
            Ok(None) => false,
            Err(error) => {
                return Err(HandlerError::retryable(format!(
                    "could not read whether step {name} ran: {error}"
                )));
            }
        };
        if !resumed {
            steps.start(name).await.map_err(|error| {
                HandlerError::retryable(format!("could not note that step {name} starts: {error}"))
            })?;
        }
        let result = STEP.scope(run(resumed), step()).await?;
        let json = serde_json::to_string(&result).map_err(|e| {
            HandlerError::permanent(format!("step {name}'s result is not JSON: {e}"))
        })?;
        if json.len() > STEP_RESULT_LIMIT {
            return Err(HandlerError::permanent(format!(
                "step {name} returned {} bytes of JSON, over the {STEP_RESULT_LIMIT} a step \
                 can keep: return an id or a compact record of what it did",
                json.len()
            )));
        }
        // Best effort: the step ran either way; failing the record now
        // would only make its retry run the (resumed) step again.
        steps.complete(name, json).await;
        Ok(result)
    }
}

/// The largest step result kept, in bytes of JSON.
pub const STEP_RESULT_LIMIT: usize = 4096;

/// What the step log holds of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    /// It started and did not complete: its effects may have been applied.
    Started,
    /// It completed, with this result (JSON).
    Completed(String),
}

/// Where one notification's steps are kept.
pub trait StepLog: Send + Sync {
    /// What is kept of step `name`, if anything.
    fn state(&self, name: &str) -> BoxFuture<Result<Option<StepState>, String>>;
    /// Notes that step `name` starts (before it runs).
    fn start(&self, name: &str) -> BoxFuture<Result<(), String>>;
    /// Keeps step `name`'s result; logs (does not return) a failure.
    fn complete(&self, name: &str, result: String) -> BoxFuture<()>;
}

/// The step being run ([`Event::once`]), for the code it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRun {
    pub name: String,
    /// The notification's `created_at` (epoch seconds): what the step
    /// wrote before, if anything, is no older.
    pub since: i64,
    /// The step started before and did not complete: a write it makes may
    /// already have been applied, and is to be checked before it is made
    /// again.
    pub resumed: bool,
}

tokio::task_local! {
    static STEP: StepRun;
}

/// The step the calling code runs in, if any: the typed Intercom client
/// reads it to check, in a resumed step, whether a write was applied.
pub fn current_step() -> Option<StepRun> {
    STEP.try_with(Clone::clone).ok()
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
        for topic in Topic::ALL.iter().chain(Topic::SYNCED) {
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
        kept: Mutex<HashMap<String, StepState>>,
        unreadable: bool,
    }

    impl StepLog for MemorySteps {
        fn state(&self, name: &str) -> BoxFuture<Result<Option<StepState>, String>> {
            let found = if self.unreadable {
                Err("table unreachable".to_owned())
            } else {
                Ok(self.kept.lock().expect("lock").get(name).cloned())
            };
            Box::pin(std::future::ready(found))
        }

        fn start(&self, name: &str) -> BoxFuture<Result<(), String>> {
            self.kept
                .lock()
                .expect("lock")
                .insert(name.to_owned(), StepState::Started);
            Box::pin(std::future::ready(Ok(())))
        }

        fn complete(&self, name: &str, result: String) -> BoxFuture<()> {
            self.kept
                .lock()
                .expect("lock")
                .insert(name.to_owned(), StepState::Completed(result));
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
    /// `runs`, notes whether it ran resumed, and returns `result`.
    fn step(
        event: &Event<()>,
        name: &str,
        runs: &Mutex<Vec<bool>>,
        result: Result<String, HandlerError>,
    ) -> Result<String, HandlerError> {
        event
            .once(name, || async {
                let run = current_step().expect("inside a step");
                assert_eq!((run.name.as_str(), run.since), (name, 1));
                runs.lock().expect("lock").push(run.resumed);
                result
            })
            .now_or_never()
            .expect("ready")
    }

    #[test]
    fn a_step_runs_once_per_notification_and_its_result_comes_back() {
        let log = Arc::new(MemorySteps::default());
        let event = event(Context::default().with_steps(log.clone()));
        let runs = Mutex::new(vec![]);
        assert_eq!(
            step(&event, "reply", &runs, Ok("part-1".into())),
            Ok("part-1".into())
        );
        // The record's retry: the step does not run; its result is returned.
        assert_eq!(
            step(&event, "reply", &runs, Ok("part-2".into())),
            Ok("part-1".into())
        );
        assert_eq!(*runs.lock().expect("lock"), [false]);
        // Another step is its own.
        assert_eq!(step(&event, "tag", &runs, Ok("t".into())), Ok("t".into()));
        assert_eq!(*runs.lock().expect("lock"), [false, false]);
        assert_eq!(current_step(), None, "outside a step");
    }

    #[test]
    fn a_failed_step_keeps_nothing_and_runs_again_resumed() {
        let log = Arc::new(MemorySteps::default());
        let event = event(Context::default().with_steps(log.clone()));
        let runs = Mutex::new(vec![]);
        let failed = step(&event, "reply", &runs, Err(HandlerError::retryable("503")));
        assert_eq!(failed, Err(HandlerError::retryable("503")));
        assert_eq!(
            log.kept.lock().expect("lock").get("reply"),
            Some(&StepState::Started)
        );
        assert_eq!(
            step(&event, "reply", &runs, Ok("sent".into())),
            Ok("sent".into())
        );
        // The second run knows its write may have been applied.
        assert_eq!(*runs.lock().expect("lock"), [false, true]);
    }

    #[test]
    fn without_a_log_steps_simply_run() {
        let event = event(Context::default());
        let runs = Mutex::new(vec![]);
        for _ in 0..2 {
            assert_eq!(step(&event, "reply", &runs, Ok("x".into())), Ok("x".into()));
        }
        assert_eq!(*runs.lock().expect("lock"), [false, false]);
    }

    #[test]
    fn a_log_that_cannot_be_read_runs_nothing_and_is_retryable() {
        let log = Arc::new(MemorySteps {
            unreadable: true,
            ..MemorySteps::default()
        });
        let event = event(Context::default().with_steps(log));
        let runs = Mutex::new(vec![]);
        let error = step(&event, "reply", &runs, Ok("x".into())).expect_err("unreadable");
        assert!(error.is_retryable(), "{error}");
        assert!(runs.lock().expect("lock").is_empty());
    }

    #[test]
    fn a_result_too_large_to_keep_is_refused_when_the_step_completes() {
        let log = Arc::new(MemorySteps::default());
        let event = event(Context::default().with_steps(log.clone()));
        let runs = Mutex::new(vec![]);
        let large = "x".repeat(STEP_RESULT_LIMIT);
        let error = step(&event, "fetch", &runs, Ok(large)).expect_err("too large");
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("over the 4096"), "{error}");
        // Not kept as completed: nothing on a later delivery pretends it was.
        assert_eq!(
            log.kept.lock().expect("lock").get("fetch"),
            Some(&StepState::Started)
        );
        let fits = "x".repeat(STEP_RESULT_LIMIT - 2);
        assert_eq!(step(&event, "small", &runs, Ok(fits.clone())), Ok(fits));
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
