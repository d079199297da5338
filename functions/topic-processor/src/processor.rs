//! One record, top to bottom: read it, check what can fail before anything runs, take its idempotency lock, see whether a newer notification about its object was processed, run its handler and destinations, then complete or release the lock.
//!
//! Every step is bounded by the invocation's time ([`Invocation`]), so a
//! slow or hanging dependency fails its records in time and the batch
//! always answers before Lambda's timeout:
//!
//! - everything a record does ends by `records_deadline`, Lambda's
//!   deadline less `DEADLINE_MARGIN_MS`. A step still running then is
//!   dropped with its requests: nothing a record started is still sent
//!   after its outcome was decided;
//! - with idempotency on, the steps before the lock's end (reading the
//!   body, the lock, the freshness check, the handler and destinations)
//!   stop [`FINISH_RESERVE`] earlier, which leaves the lock's completion or
//!   release its own time;
//! - the lock expires at Lambda's deadline itself, when this invocation
//!   can no longer be running, so the effects stop at least
//!   `DEADLINE_MARGIN_MS` + [`FINISH_RESERVE`] before anyone else can take
//!   the lock over.
//!
//! A handler's panic fails its own record (`Registry::dispatch`).

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use std::sync::Arc;

use intercom_webhook::dispatch::{Context, Failure, Meta, Outcome, Registry, StepLog, Superseded};
use intercom_webhook::models::Item;
use intercom_webhook::queue_message::{self, attribute};
use tokio::time::{Instant, timeout_at};
use tracing::Instrument as _;

use crate::config::FreshnessMode;
use crate::destinations::{Destinations, Plan};
use crate::freshness::Freshness;
use crate::idempotency::{Finished, Idempotency, Lock, Refusal};
use crate::intercom::IntercomApi;
use crate::notification::{Notification, message_attribute};
use crate::payloads::Payloads;
use crate::{Invocation, epoch_ms, telemetry};

/// With idempotency on, how long before the records' deadline the effects
/// stop, so that completing or releasing the lock (one DynamoDB write) has
/// time of its own.
pub const FINISH_RESERVE: Duration = Duration::from_secs(1);

/// The name of the span each record is processed in.
pub const RECORD_SPAN: &str = "record";

/// How a record ended, with what its log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReport {
    pub message_id: String,
    pub outcome: Outcome,
    pub topic: Option<String>,
    pub notification_id: Option<String>,
    pub created_at: Option<i64>,
    /// The X-Ray trace id the receiver's request ran under, from the
    /// record's `AWSTraceHeader` system attribute.
    pub trace_id: Option<String>,
    /// A newer notification about the same object was already processed
    /// (`FRESHNESS=tag` or `skip`).
    pub stale: bool,
}

impl RecordReport {
    /// A report for `record`, from its attributes alone.
    pub fn of(record: &SqsMessage, outcome: Outcome) -> Self {
        Self {
            message_id: record.message_id.clone().unwrap_or_default(),
            outcome,
            topic: message_attribute(record, attribute::TOPIC),
            notification_id: message_attribute(record, attribute::NOTIFICATION_ID),
            created_at: None,
            trace_id: record
                .attributes
                .get(queue_message::TRACE_HEADER_ATTRIBUTE)
                .and_then(|header| telemetry::trace_id(header))
                .map(str::to_owned),
            stale: false,
        }
    }

    /// The same, with what the notification itself says.
    fn about(self, meta: &Meta) -> Self {
        Self {
            topic: Some(meta.topic_name.clone()),
            notification_id: meta.notification_id.clone(),
            created_at: Some(meta.created_at),
            ..self
        }
    }
}

/// Everything built once at cold start that a record needs.
#[derive(Debug)]
pub struct Processor {
    pub registry: Registry,
    /// `None`: idempotency is off (`IDEMPOTENCY_TABLE` unset).
    pub idempotency: Option<Idempotency>,
    /// The event bus and the archive, where configured.
    pub destinations: Destinations,
    /// Reads bodies the receiver stored in S3.
    pub payloads: Payloads,
    /// `None`: freshness is off (`FRESHNESS` unset or `off`).
    pub freshness: Option<Freshness>,
    /// Intercom's API for handlers, and the own-actions rule; `None`
    /// without a token or `INTERCOM_ADMIN_ID`.
    pub intercom: Option<IntercomApi>,
}

impl Processor {
    /// A processor that hands records to `registry`'s handlers, nothing more.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            idempotency: None,
            destinations: Destinations::default(),
            payloads: Payloads::default(),
            freshness: None,
            intercom: None,
        }
    }

    /// The same, delivering every valid notification to `destinations` too.
    pub fn with_destinations(mut self, destinations: Destinations) -> Self {
        self.destinations = destinations;
        self
    }

    /// The same, running each notification's effects at most once.
    pub fn with_idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }

    /// The same, telling notifications older than one already processed
    /// about their object apart. It needs idempotency: the check runs under
    /// the notification's lock.
    pub fn with_freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = Some(freshness);
        self
    }

    /// Processes one record within `invocation`'s time, inside a
    /// `record` span (its `message_id`, and once read its `topic` and
    /// `notification_id`): what handlers log carries it, so that their
    /// lines can be told apart by notification (`intercom-dev serve` prints
    /// them under it; the JSON log lines carry it as `span`).
    pub async fn record(&self, record: &SqsMessage, invocation: &Invocation) -> RecordReport {
        let span = tracing::info_span!(
            RECORD_SPAN,
            message_id = record.message_id.as_deref().unwrap_or_default(),
            topic = tracing::field::Empty,
            notification_id = tracing::field::Empty,
        );
        self.record_in(record, invocation, &span)
            .instrument(span.clone())
            .await
    }

    async fn record_in(
        &self,
        record: &SqsMessage,
        invocation: &Invocation,
        span: &tracing::Span,
    ) -> RecordReport {
        let effects_deadline = self.effects_deadline(invocation);
        if Instant::now() >= effects_deadline {
            return RecordReport::of(record, Outcome::Failed(Failure::OutOfTime));
        }
        let read = timeout_at(effects_deadline, Notification::read(record, &self.payloads)).await;
        let (notification, item) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(failure)) => return RecordReport::of(record, Outcome::Failed(failure)),
            Err(_) => {
                let late = Failure::PayloadUnavailable(NO_ANSWER_IN_TIME.into());
                return RecordReport::of(record, Outcome::Failed(late));
            }
        };
        span.record("topic", notification.meta.topic_name.as_str());
        if let Some(id) = &notification.meta.notification_id {
            span.record("notification_id", id.as_str());
        }
        let (outcome, superseded) = self.process(&notification, item, invocation).await;
        RecordReport {
            stale: superseded.is_some(),
            ..RecordReport::of(record, outcome).about(&notification.meta)
        }
    }

    /// When the steps before the lock's completion must end.
    fn effects_deadline(&self, invocation: &Invocation) -> Instant {
        let deadline = invocation.records_deadline;
        match self.idempotency {
            Some(_) => deadline.checked_sub(FINISH_RESERVE).unwrap_or(deadline),
            None => deadline,
        }
    }

    /// The record's outcome, and the newer notification about its object
    /// when one was processed before it.
    async fn process(
        &self,
        notification: &Notification,
        item: Item,
        invocation: &Invocation,
    ) -> (Outcome, Option<Superseded>) {
        // What can fail before anything runs fails here, not beside a
        // handler that would then run once per retry.
        let plan = match self.destinations.plan(notification) {
            Ok(plan) => plan,
            Err(failure) => return (Outcome::Failed(failure), None),
        };
        let effects_deadline = self.effects_deadline(invocation);
        let Some(idempotency) = &self.idempotency else {
            let outcome = self
                .effects(notification, item, plan, None, effects_deadline, None)
                .await;
            return (outcome, None);
        };
        let owner = format!("{}:{}", invocation.request_id, notification.meta.message_id);
        let claim = idempotency.claim(notification, owner, epoch_ms(invocation.deadline));
        let lock = match timeout_at(effects_deadline, claim).await {
            Ok(Ok(lock)) => lock,
            Ok(Err(refusal)) => return (refused(refusal), None),
            Err(_) => {
                let late = Failure::IdempotencyUnavailable(NO_ANSWER_IN_TIME.into());
                return (Outcome::Failed(late), None);
            }
        };
        let (outcome, superseded) = match self.newer(notification, effects_deadline).await {
            Ok(superseded) => {
                let outcome = self
                    .effects(
                        notification,
                        item,
                        plan,
                        superseded.clone(),
                        effects_deadline,
                        Some(idempotency.steps(notification)),
                    )
                    .await;
                (outcome, superseded)
            }
            Err(failure) => (Outcome::Failed(failure), None),
        };
        finish(idempotency, &lock, &outcome, invocation.records_deadline).await;
        (outcome, superseded)
    }

    /// With freshness on, the newer notification about the same object
    /// already processed, if any (this one is recorded as the newest if
    /// not), by `deadline`.
    async fn newer(
        &self,
        notification: &Notification,
        deadline: Instant,
    ) -> Result<Option<Superseded>, Failure> {
        let Some(freshness) = &self.freshness else {
            return Ok(None);
        };
        match timeout_at(deadline, freshness.check(&notification.meta)).await {
            Ok(Ok(superseded)) => Ok(superseded),
            Ok(Err(error)) => Err(Failure::IdempotencyUnavailable(error.to_string())),
            Err(_) => Err(Failure::IdempotencyUnavailable(NO_ANSWER_IN_TIME.into())),
        }
    }

    /// The handler and the destinations, side by side, until `deadline`.
    /// With a destination configured a topic without a handler is
    /// `processed` once delivered. A stale notification (`superseded`)
    /// reaches its handler under `FRESHNESS=tag`, which can tell from its
    /// meta, and only the destinations under `skip` (outcome `stale`); so
    /// does the echo of the app's own action under `OWN_ACTIONS=skip`
    /// (outcome `own_action`). The handler's event carries Intercom's
    /// client and `steps`, the notification's step log.
    async fn effects(
        &self,
        notification: &Notification,
        item: Item,
        plan: Plan,
        superseded: Option<Superseded>,
        deadline: Instant,
        steps: Option<Arc<dyn StepLog>>,
    ) -> Outcome {
        let skipped = superseded.is_some()
            && self
                .freshness
                .as_ref()
                .is_some_and(|f| f.mode == FreshnessMode::Skip);
        let meta = Meta {
            superseded_by: superseded,
            ..notification.meta.clone()
        };
        let handled = async {
            if skipped {
                return Outcome::Stale;
            }
            let mut context = Context::default();
            if let Some(api) = &self.intercom {
                // Only a notification some handler takes waits on Intercom.
                if self.registry.handles(meta.topic, &meta.topic_name) {
                    match api.is_own_action(&item, meta.topic, deadline).await {
                        Ok(true) => return Outcome::OwnAction,
                        Ok(false) => {}
                        Err(failure) => return Outcome::Failed(failure),
                    }
                }
                if let Some(intercom) = api.for_record(deadline) {
                    context = context.with_service(intercom);
                }
            }
            if let Some(steps) = steps {
                context = context.with_steps(steps);
            }
            self.handle(item, meta, context).await
        };
        let delivered = self.destinations.deliver(plan, notification);
        match timeout_at(deadline, async { tokio::join!(handled, delivered) }).await {
            Err(_) => Outcome::Failed(Failure::OutOfTime),
            Ok((Outcome::Failed(failure), _) | (_, Err(failure))) => Outcome::Failed(failure),
            Ok((Outcome::Unhandled, Ok(()))) if self.destinations.any() => Outcome::Processed,
            Ok((outcome, Ok(()))) => outcome,
        }
    }

    /// Runs the topic's handler, timing it.
    async fn handle(&self, item: Item, meta: Meta, context: Context) -> Outcome {
        let started = Instant::now();
        let outcome = self.registry.dispatch_with(item, meta, context).await;
        // `unhandled` is the one outcome no handler ran for.
        if outcome != Outcome::Unhandled {
            telemetry::handler_time(started.elapsed());
        }
        outcome
    }
}

/// The detail of a step cut off by the record's deadline.
const NO_ANSWER_IN_TIME: &str = "no answer before the record's deadline";

/// The outcome of a record whose lock was refused.
fn refused(refusal: Refusal) -> Outcome {
    match refusal {
        Refusal::AlreadyDone => Outcome::Duplicate,
        Refusal::InProgress => Outcome::Failed(Failure::InProgress),
        Refusal::PayloadMismatch => Outcome::Failed(Failure::PayloadMismatch),
        Refusal::Unavailable(error) => {
            Outcome::Failed(Failure::IdempotencyUnavailable(error.to_string()))
        }
    }
}

/// Completes the lock after effects that succeeded, or releases it after a
/// failure, by `deadline`. The outcome stands either way: the effects ran
/// (or failed) all the same, and a lock left behind expires with the
/// invocation.
async fn finish(idempotency: &Idempotency, lock: &Lock, outcome: &Outcome, deadline: Instant) {
    let failed = matches!(outcome, Outcome::Failed(_));
    let finishing = async {
        if failed {
            idempotency.release(lock).await
        } else {
            idempotency.complete(lock).await
        }
    };
    let problem = match timeout_at(deadline, finishing).await {
        Ok(Ok(Finished::Done)) => return,
        Ok(Ok(Finished::NotOwner)) => "the lock was no longer this invocation's".to_owned(),
        Ok(Err(error)) => error.to_string(),
        Err(_) => NO_ANSWER_IN_TIME.to_owned(),
    };
    tracing::warn!(
        key = %lock.key,
        owner = %lock.owner,
        outcome = outcome.name(),
        error = %problem,
        "could not {} the idempotency lock",
        if failed { "release" } else { "complete" }
    );
}
