//! The processor's batch semantics and typed dispatch, called directly with SQS records.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use intercom_webhook::dispatch::{BoxFuture, StepState};
use intercom_webhook::dispatch::{Event, Failure, HandlerError, Outcome, Registry};
use intercom_webhook::models::{
    Admin, Article, Call, Company, Contact, ContactTag, ContentStat, Conversation, Item, Ticket,
    TicketWithPart,
};
use intercom_webhook::topic::Topic;
use pipeline_tests::{samples, sqs};
use serde_json::{Value, json};
use topic_processor::Invocation;
use topic_processor::batch::{self, RecordReport};
use topic_processor::config::FreshnessMode;
use topic_processor::freshness::Freshness;
use topic_processor::idempotency::{
    self, Finished, Idempotency, MemoryStore, Newest, Store, StoreError, Taken,
};
use topic_processor::processor::Processor;

/// An SQS record as Lambda delivers it, for `body` queued by the receiver
/// (with its `topic` attribute, when the body has one).
fn record(message_id: &str, body: &[u8], group: Option<&str>) -> SqsMessage {
    let envelope: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let topic: Vec<(&str, &str)> = envelope["topic"]
        .as_str()
        .map(|topic| ("topic", topic))
        .into_iter()
        .collect();
    sqs::record(
        message_id,
        &String::from_utf8_lossy(body),
        sqs::Received::first(&topic, group.map(|group| (group, message_id))),
    )
}

/// An invocation with 30 s left and nothing kept back for the answer.
fn later() -> Invocation {
    within(Duration::from_secs(30))
}

fn within(left: Duration) -> Invocation {
    Invocation::lasting("test-request", left, Duration::ZERO)
}

fn outcomes(reports: &[RecordReport]) -> Vec<(String, &'static str)> {
    reports
        .iter()
        .map(|r| (r.message_id.clone(), r.outcome.name()))
        .collect()
}

/// A registry whose handlers record which topics ran, failing where told.
fn recording(fail_ids: &'static [&'static str]) -> (Registry, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::new();
    for topic in Topic::ALL {
        let seen = Arc::clone(&seen);
        registry.on(*topic, move |event: Event<Item>| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock()
                    .expect("lock")
                    .push(event.meta.message_id.clone());
                if fail_ids.contains(&event.meta.message_id.as_str()) {
                    return Err(HandlerError::retryable("downstream timed out"));
                }
                Ok(())
            }
        });
    }
    (registry, seen)
}

#[tokio::test]
async fn every_catalogued_topic_reaches_its_handler() {
    let (registry, seen) = recording(&[]);
    let records: Vec<SqsMessage> = Topic::ALL
        .iter()
        .map(|t| record(&format!("m-{}", t.name()), &samples::sample_body(*t), None))
        .collect();
    let processor = Processor::new(registry);
    let reports = batch::run(&processor, records, &later(), 8).await;
    assert_eq!(reports.len(), Topic::ALL.len());
    for (report, topic) in reports.iter().zip(Topic::ALL) {
        assert_eq!(report.outcome, Outcome::Processed, "{topic}");
        assert_eq!(report.topic.as_deref(), Some(topic.name()));
    }
    assert_eq!(seen.lock().expect("lock").len(), Topic::ALL.len());
}

#[tokio::test]
async fn every_family_parses_into_its_model_with_the_fields_users_act_on() {
    let parse = |topic: Topic| {
        let body = samples::sample_body(topic);
        intercom_webhook::record::decode(&body, "m")
            .expect("decodes")
            .item
    };
    let conversation = Conversation::expect_model(parse(Topic::ConversationUserCreated));
    assert_eq!(
        conversation.id.as_ref().map(|i| i.as_str()),
        Some("215473853299345")
    );
    assert_eq!(
        conversation.admin_assignee_id.as_ref().map(|i| i.as_str()),
        Some("991267"),
        "number id"
    );
    assert!(
        conversation
            .source
            .as_ref()
            .and_then(|s| s.body.as_deref())
            .is_some_and(|b| b.contains("请帮忙"))
    );
    assert_eq!(
        conversation.tags.and_then(|t| t.tags).map(|t| t.len()),
        Some(1)
    );
    assert_eq!(
        conversation
            .custom_attributes
            .as_ref()
            .map(|c| c["Région"].clone()),
        Some(json!("Île-de-France"))
    );

    let contact = Contact::expect_model(parse(Topic::ContactUserCreated));
    assert_eq!(
        contact.created_at.map(|t| t.0),
        Some(1_763_849_998),
        "ISO-8601 with Z"
    );
    assert_eq!(
        contact.updated_at.map(|t| t.0),
        Some(1_763_849_998),
        "ISO-8601 with +00:00"
    );
    // `location` is a field of Intercom's 2.15 contact, so the model names it.
    assert_eq!(
        contact.location.as_ref().map(|l| &l["city"]),
        Some(&serde_json::json!("القاهرة")),
        "objects kept as sent"
    );

    let visitor = Contact::expect_model(parse(Topic::VisitorSignedUp));
    assert_eq!(visitor.extra["type"], "user", "fields no model names kept");

    let tag = ContactTag::expect_model(parse(Topic::ContactUserTagCreated));
    assert_eq!(tag.tag.and_then(|t| t.name).as_deref(), Some("independent"));
    assert!(tag.contact.and_then(|c| c.id).is_some());

    let ticket = Ticket::expect_model(parse(Topic::TicketCreated));
    assert_eq!(ticket.admin_assignee_id.map(|i| i.0).as_deref(), Some("0"));
    let reply = TicketWithPart::expect_model(parse(Topic::TicketAdminReplied));
    assert_eq!(
        reply.ticket_part.and_then(|p| p.id).map(|i| i.0).as_deref(),
        Some("19874")
    );

    let company = Company::expect_model(parse(Topic::CompanyCreated));
    assert_eq!(company.monthly_spend, Some(1200.5));
    assert_eq!(
        Admin::expect_model(parse(Topic::AdminLoggedIn))
            .away_status_reason
            .as_deref(),
        Some("🍔 On lunch")
    );
    assert_eq!(
        Article::expect_model(parse(Topic::ArticlePublished))
            .author_id
            .map(|i| i.0)
            .as_deref(),
        Some("991267")
    );
    assert_eq!(
        Call::expect_model(parse(Topic::CallEnded))
            .ended_at
            .map(|t| t.0),
        Some(1_763_850_300)
    );
    let stat = ContentStat::expect_model(parse(Topic::ContentStatEmail));
    assert_eq!(
        stat.content_stat.and_then(|s| s.stat_type).as_deref(),
        Some("receipt")
    );
    assert_eq!(stat.created_at.map(|t| t.0), Some(1_665_500_467));
    let deleted = parse(Topic::ContactDeleted);
    assert!(
        matches!(deleted, Item::Contact(c) if c.id.as_ref().map(|i| i.as_str()) == Some("deleted-42"))
    );
}

trait ExpectModel {
    fn expect_model(item: Item) -> Self;
}

impl<T: intercom_webhook::models::FromItem> ExpectModel for T {
    fn expect_model(item: Item) -> Self {
        T::from_item(item)
            .unwrap_or_else(|item| panic!("expected {}, got {}", T::NAME, item.model_name()))
    }
}

#[tokio::test]
async fn a_conversation_with_hundreds_of_parts_parses() {
    let body = samples::large_conversation(600);
    assert!(body.len() > 150_000, "{} bytes", body.len());
    let decoded = intercom_webhook::record::decode(&body, "m").expect("decodes");
    let conversation = Conversation::expect_model(decoded.item);
    let parts = conversation
        .conversation_parts
        .and_then(|p| p.conversation_parts)
        .expect("parts");
    assert_eq!(parts.len(), 600);
    assert!(
        parts[599]
            .body
            .as_deref()
            .is_some_and(|b| b.contains("谢谢"))
    );
}

#[tokio::test]
async fn unknown_topics_are_unhandled_not_failed() {
    let registry = Registry::new();
    let unknown = samples::envelope(
        "hologram.beamed.up",
        Some("notif_new"),
        json!({"type": "hologram", "id": 1}),
    );
    let records = vec![
        record("m1", &serde_json::to_vec(&unknown).expect("json"), None),
        record(
            "m2",
            &samples::sample_body(Topic::ConversationUserCreated),
            None,
        ),
    ];
    let processor = Processor::new(registry);
    let response = batch::process_batch(&processor, records, &later(), 4).await;
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn poison_and_failing_records_fail_alone() {
    let (registry, _) = recording(&["m3"]);
    let records = vec![
        record("m1", &samples::sample_body(Topic::ContactUserCreated), None),
        record("m2", b"{\"not\":\"a notification\"}", None),
        record("m3", &samples::sample_body(Topic::TicketCreated), None),
        record("m4", b"\xff\xfe binary junk", None),
        record(
            "m5",
            &samples::sample_body(Topic::ConversationUserCreated),
            None,
        ),
    ];
    let processor = Processor::new(registry);
    let reports = batch::run(&processor, records.clone(), &later(), 2).await;
    assert_eq!(
        outcomes(&reports),
        vec![
            ("m1".into(), "processed"),
            ("m2".into(), "failed"),
            ("m3".into(), "failed"),
            ("m4".into(), "failed"),
            ("m5".into(), "processed")
        ]
    );
    assert!(matches!(
        &reports[1].outcome,
        Outcome::Failed(Failure::Invalid(_))
    ));
    assert!(
        matches!(&reports[2].outcome, Outcome::Failed(Failure::Handler(e)) if e.is_retryable())
    );
    let response = batch::process_batch(&processor, records, &later(), 2).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m2", "m3", "m4"]);
}

#[tokio::test]
async fn fifo_failure_holds_back_the_rest_of_its_group_only() {
    let (registry, seen) = recording(&["a2"]);
    let body = samples::sample_body(Topic::ConversationUserReplied);
    let records = vec![
        record("a1", &body, Some("app:conversation:1")),
        record("b1", &body, Some("app:conversation:2")),
        record("a2", &body, Some("app:conversation:1")),
        record("b2", &body, Some("app:conversation:2")),
        record("a3", &body, Some("app:conversation:1")),
        record("b3", &body, Some("app:conversation:2")),
    ];
    let processor = Processor::new(registry);
    let reports = batch::run(&processor, records, &later(), 4).await;
    assert_eq!(
        outcomes(&reports),
        vec![
            ("a1".into(), "processed"),
            ("b1".into(), "processed"),
            ("a2".into(), "failed"),
            ("b2".into(), "processed"),
            ("a3".into(), "failed"),
            ("b3".into(), "processed")
        ]
    );
    assert_eq!(reports[4].outcome, Outcome::Failed(Failure::GroupHeldBack));
    let seen = seen.lock().expect("lock").clone();
    assert!(
        !seen.contains(&"a3".to_owned()),
        "a3 must not run: {seen:?}"
    );
    let a: Vec<&String> = seen.iter().filter(|id| id.starts_with('a')).collect();
    assert_eq!(a, vec!["a1", "a2"], "in group order");
}

#[tokio::test]
async fn fifo_groups_keep_order_and_an_invalid_record_holds_back_its_group() {
    let (registry, seen) = recording(&[]);
    let body = samples::sample_body(Topic::TicketStateUpdated);
    let records = vec![
        record("t1", &body, Some("g")),
        record("t2", b"not json", Some("g")),
        record("t3", &body, Some("g")),
    ];
    let processor = Processor::new(registry);
    let reports = batch::run(&processor, records, &later(), 4).await;
    assert_eq!(
        outcomes(&reports),
        vec![
            ("t1".into(), "processed"),
            ("t2".into(), "failed"),
            ("t3".into(), "failed")
        ]
    );
    assert_eq!(seen.lock().expect("lock").clone(), vec!["t1".to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn deadline_guard_reports_unfinished_records_failed() {
    let mut registry = Registry::new();
    registry.on(
        Topic::ConversationUserCreated,
        |event: Event<Item>| async move {
            if event.meta.message_id == "slow" {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok(())
        },
    );
    let body = samples::sample_body(Topic::ConversationUserCreated);
    let records = vec![
        record("fast", &body, None),
        record("slow", &body, None),
        record("fast2", &body, None),
    ];
    let processor = Processor::new(registry);
    let reports = batch::run(
        &processor,
        records.clone(),
        &within(Duration::from_secs(5)),
        1,
    )
    .await;
    assert_eq!(
        outcomes(&reports),
        vec![
            ("fast".into(), "processed"),
            ("slow".into(), "failed"),
            ("fast2".into(), "failed")
        ]
    );
    assert_eq!(reports[1].outcome, Outcome::Failed(Failure::OutOfTime));
    assert_eq!(
        reports[2].outcome,
        Outcome::Failed(Failure::OutOfTime),
        "never started: the deadline had passed"
    );
    // With room for concurrency, only the slow one misses the deadline.
    let reports = batch::run(&processor, records, &within(Duration::from_secs(5)), 3).await;
    assert_eq!(
        outcomes(&reports),
        vec![
            ("fast".into(), "processed"),
            ("slow".into(), "failed"),
            ("fast2".into(), "processed")
        ]
    );
}

#[tokio::test]
async fn empty_and_all_failed_batches() {
    let (registry, _) = recording(&[]);
    let processor = Processor::new(registry);
    let response = batch::process_batch(&processor, Vec::new(), &later(), 4).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        serde_json::to_value(&response).expect("json"),
        json!({"batchItemFailures": []})
    );

    let records: Vec<SqsMessage> = (0..10)
        .map(|n| record(&format!("bad-{n}"), b"[]", None))
        .collect();
    let response = batch::process_batch(&processor, records, &later(), 4).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        (0..10).map(|n| format!("bad-{n}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn base64_bodies_are_decoded_and_a_wrong_model_is_a_permanent_failure() {
    let mut registry = Registry::new();
    registry.on(
        Topic::ConversationUserCreated,
        |event: Event<Conversation>| async move {
            assert!(event.item.id.is_some());
            Ok(())
        },
    );
    registry.on(Topic::ContactUserCreated, |_: Event<Ticket>| async move {
        Ok(())
    });
    let body = samples::sample_body(Topic::ConversationUserCreated);
    let mut encoded = record("b64", BASE64.encode(&body).as_bytes(), None);
    encoded.message_attributes.insert(
        "content_encoding".into(),
        serde_json::from_value(json!({"stringValue": "base64", "dataType": "String", "stringListValues": [], "binaryListValues": []}))
            .expect("attribute"),
    );
    let mismatched = record(
        "mismatch",
        &samples::sample_body(Topic::ContactUserCreated),
        None,
    );
    let processor = Processor::new(registry);
    let reports = batch::run(&processor, vec![encoded, mismatched], &later(), 2).await;
    assert_eq!(reports[0].outcome, Outcome::Processed);
    assert!(
        matches!(&reports[1].outcome, Outcome::Failed(Failure::Handler(HandlerError::Permanent(m))) if m.contains("Ticket"))
    );
}

#[tokio::test]
async fn the_shipped_registry_handles_its_examples_and_leaves_the_rest_unhandled() {
    let registry = topic_processor::handlers::registry(topic_processor::handlers::App::default());
    let cases = [
        (Topic::ConversationUserCreated, "processed"),
        (Topic::ContactUserCreated, "processed"),
        (Topic::TicketAdminReplied, "processed"),
        (Topic::TicketCreated, "processed"),
        (Topic::AdminLoggedIn, "unhandled"),
        (Topic::Ping, "unhandled"),
    ];
    let records: Vec<SqsMessage> = cases
        .iter()
        .map(|(t, _)| record(t.name(), &samples::sample_body(*t), None))
        .collect();
    let processor = Processor::new(registry);
    let reports = batch::run(&processor, records, &later(), 4).await;
    for ((topic, expected), report) in cases.iter().zip(&reports) {
        assert_eq!(report.outcome.name(), *expected, "{topic}");
    }
}

#[tokio::test]
async fn the_committed_sqs_fixture_is_processed_by_the_shipped_registry() {
    let text =
        std::fs::read_to_string(pipeline_tests::fixtures::events_dir().join("sqs-fifo-batch.json"))
            .expect("fixture");
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&text).expect("an SQS event");
    let registry = topic_processor::handlers::registry(topic_processor::handlers::App::default());
    let processor = Processor::new(registry);
    let reports = batch::run(&processor, event.records, &later(), 4).await;
    let outcomes: Vec<(Option<String>, &str)> = reports
        .iter()
        .map(|r| (r.topic.clone(), r.outcome.name()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (Some("conversation.user.created".into()), "processed"),
            (Some("contact.user.created".into()), "processed"),
            (Some("ticket.created".into()), "processed"),
            (Some("ticket.admin.replied".into()), "processed"),
            (Some("ping".into()), "unhandled"),
        ]
    );
}

/// Idempotency in memory, with the table's semantics.
fn idempotent(registry: Registry) -> (Processor, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let processor = Processor::new(registry).with_idempotency(Idempotency::new(
        Arc::clone(&store) as Arc<dyn Store>,
        "topic-processor",
        Duration::from_secs(86_400),
    ));
    (processor, store)
}

#[tokio::test]
async fn with_idempotency_a_notification_runs_once_and_its_copies_are_duplicates() {
    let (registry, seen) = recording(&[]);
    let (processor, store) = idempotent(registry);
    let body = samples::sample_body(Topic::ConversationUserCreated);
    let first = batch::run(&processor, vec![record("m-1", &body, None)], &later(), 4).await;
    assert_eq!(outcomes(&first), [("m-1".to_owned(), "processed")]);
    // The same notification again: Intercom's retry, SQS's redelivery, a replay.
    let copies = batch::run(
        &processor,
        vec![record("m-2", &body, None), record("m-3", &body, Some("g"))],
        &later(),
        4,
    )
    .await;
    assert_eq!(
        outcomes(&copies),
        [
            ("m-2".to_owned(), "duplicate"),
            ("m-3".to_owned(), "duplicate")
        ]
    );
    assert_eq!(*seen.lock().expect("lock"), ["m-1"], "the handler ran once");
    let item = store
        .get("topic-processor#notif_sample_conversation_user_created")
        .expect("an item");
    assert_eq!(item.status, "COMPLETED");
    let content = intercom_webhook::record::decode(&body, "m")
        .expect("decodes")
        .content_sha256;
    assert_eq!(item.validation.as_deref(), Some(content.as_str()));
    assert_eq!(item.owner.as_deref(), Some("test-request:m-1"));
}

#[tokio::test]
async fn with_idempotency_a_failure_releases_the_lock_and_a_changed_notification_fails() {
    let (registry, seen) = recording(&["m-1"]);
    let (processor, store) = idempotent(registry);
    let body = samples::sample_body(Topic::TicketCreated);
    let key = "topic-processor#notif_sample_ticket_created";
    let failed = batch::run(&processor, vec![record("m-1", &body, None)], &later(), 4).await;
    assert_eq!(outcomes(&failed), [("m-1".to_owned(), "failed")]);
    assert_eq!(store.get(key), None, "the lock is released");
    let retried = batch::run(&processor, vec![record("m-2", &body, None)], &later(), 4).await;
    assert_eq!(outcomes(&retried), [("m-2".to_owned(), "processed")]);
    assert_eq!(*seen.lock().expect("lock"), ["m-1", "m-2"]);

    // Intercom's own retry of it: delivered again, saying the same.
    let retry = intercom_retry(&body);
    let retried = batch::run(&processor, vec![record("m-3", &retry, None)], &later(), 4).await;
    assert_eq!(outcomes(&retried), [("m-3".to_owned(), "duplicate")]);
    // The same id saying something else.
    let mut changed: Value = serde_json::from_slice(&body).expect("json");
    changed["data"]["item"]["ticket_state"] = "resolved".into();
    let changed = serde_json::to_vec(&changed).expect("json");
    let mismatched = batch::run(&processor, vec![record("m-4", &changed, None)], &later(), 4).await;
    assert_eq!(
        mismatched[0].outcome,
        Outcome::Failed(Failure::PayloadMismatch)
    );
    assert_eq!(Failure::PayloadMismatch.code(), "payload_mismatch");
    assert!(!Failure::PayloadMismatch.is_retryable());
    assert_eq!(
        seen.lock().expect("lock").len(),
        2,
        "nothing ran for the retry or the mismatch"
    );
}

/// `body` as Intercom re-sends it a minute later: `delivery_attempts` 2
/// and a `delivered_at`, the body's bytes (and signature) different.
fn intercom_retry(body: &[u8]) -> Vec<u8> {
    let mut retry: Value = serde_json::from_slice(body).expect("json");
    retry["delivery_attempts"] = 2.into();
    retry["delivered_at"] = (retry["created_at"].as_i64().expect("created_at") + 61).into();
    let retry = serde_json::to_vec(&retry).expect("json");
    assert_ne!(retry, body);
    retry
}

/// A table whose every call fails, or never answers.
#[derive(Debug, Clone, Copy)]
enum BrokenStore {
    Refusing,
    Hanging,
}

impl BrokenStore {
    fn answer<T: Send + 'static>(self) -> BoxFuture<Result<T, StoreError>> {
        match self {
            Self::Refusing => Box::pin(std::future::ready(Err(StoreError(
                "connection refused".into(),
            )))),
            Self::Hanging => Box::pin(std::future::pending()),
        }
    }
}

impl Store for BrokenStore {
    fn take(&self, _: idempotency::LockItem, _: i64) -> BoxFuture<Result<Taken, StoreError>> {
        self.answer()
    }
    fn complete(&self, _: String, _: String, _: i64) -> BoxFuture<Result<Finished, StoreError>> {
        self.answer()
    }
    fn release(&self, _: String, _: String) -> BoxFuture<Result<Finished, StoreError>> {
        self.answer()
    }
    fn advance(
        &self,
        _: String,
        _: Newest,
        _: i64,
    ) -> BoxFuture<Result<Option<Newest>, StoreError>> {
        self.answer()
    }
    fn step(&self, _: String, _: i64) -> BoxFuture<Result<Option<StepState>, StoreError>> {
        self.answer()
    }
    fn put_step(&self, _: String, _: StepState, _: i64) -> BoxFuture<Result<(), StoreError>> {
        self.answer()
    }
}

fn with_store(registry: Registry, store: impl Store + 'static) -> Processor {
    Processor::new(registry).with_idempotency(Idempotency::new(
        Arc::new(store),
        "topic-processor",
        Duration::from_secs(60),
    ))
}

fn contact_group() -> Vec<SqsMessage> {
    vec![
        record(
            "m-1",
            &samples::sample_body(Topic::ContactUserCreated),
            Some("g"),
        ),
        record(
            "m-2",
            &samples::sample_body(Topic::ContactUserUpdated),
            Some("g"),
        ),
    ]
}

#[tokio::test]
async fn with_the_table_unreachable_nothing_runs_and_the_records_fail_to_be_retried() {
    let (registry, seen) = recording(&[]);
    let processor = with_store(registry, BrokenStore::Refusing);
    let reports = batch::run(&processor, contact_group(), &later(), 4).await;
    assert_eq!(
        reports[0].outcome,
        Outcome::Failed(Failure::IdempotencyUnavailable("connection refused".into()))
    );
    assert_eq!(
        reports[1].outcome,
        Outcome::Failed(Failure::GroupHeldBack),
        "FIFO order still holds"
    );
    assert!(reports.iter().all(|r| match &r.outcome {
        Outcome::Failed(failure) => failure.is_retryable(),
        _ => false,
    }));
    assert!(
        seen.lock().expect("lock").is_empty(),
        "nothing ran unprotected"
    );
}

#[tokio::test(start_paused = true)]
async fn a_table_that_never_answers_fails_the_records_before_the_deadline() {
    let (registry, seen) = recording(&[]);
    let processor = with_store(registry, BrokenStore::Hanging);
    let invocation = within(Duration::from_secs(6));
    let mut records = contact_group();
    records.extend((0..8).map(|n| {
        record(
            &format!("s-{n}"),
            &samples::sample_body(Topic::ConversationUserCreated),
            Some(&format!("other-{n}")),
        )
    }));
    let started = tokio::time::Instant::now();
    let reports = batch::run(&processor, records, &invocation, 10).await;
    // The lock is given up FINISH_RESERVE before the records' deadline.
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(6) - topic_processor::processor::FINISH_RESERVE
    );
    assert_eq!(reports.len(), 10);
    for report in &reports {
        let Outcome::Failed(failure) = &report.outcome else {
            panic!("{report:?}")
        };
        assert!(failure.is_retryable(), "{report:?}");
        if report.message_id != "m-2" {
            assert_eq!(failure.code(), "idempotency_unavailable", "{report:?}");
        }
    }
    assert!(seen.lock().expect("lock").is_empty(), "nothing ran");
}

/// A table that takes locks and keeps them, but whose completions and
/// releases never answer.
#[derive(Debug, Default)]
struct CompletionsHang(MemoryStore);

impl Store for CompletionsHang {
    fn take(&self, lock: idempotency::LockItem, now: i64) -> BoxFuture<Result<Taken, StoreError>> {
        self.0.take(lock, now)
    }
    fn complete(&self, _: String, _: String, _: i64) -> BoxFuture<Result<Finished, StoreError>> {
        BrokenStore::Hanging.answer()
    }
    fn release(&self, _: String, _: String) -> BoxFuture<Result<Finished, StoreError>> {
        BrokenStore::Hanging.answer()
    }
    fn advance(
        &self,
        id: String,
        newest: Newest,
        now: i64,
    ) -> BoxFuture<Result<Option<Newest>, StoreError>> {
        self.0.advance(id, newest, now)
    }
    fn step(&self, id: String, now: i64) -> BoxFuture<Result<Option<StepState>, StoreError>> {
        self.0.step(id, now)
    }
    fn put_step(
        &self,
        id: String,
        state: StepState,
        expiration: i64,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.0.put_step(id, state, expiration)
    }
}

#[tokio::test(start_paused = true)]
async fn a_completion_that_never_answers_leaves_the_outcome_and_ends_by_the_deadline() {
    let (registry, seen) = recording(&["m-2"]);
    let processor = with_store(registry, CompletionsHang::default());
    let started = tokio::time::Instant::now();
    let records = vec![
        record(
            "m-1",
            &samples::sample_body(Topic::ContactUserCreated),
            None,
        ),
        record("m-2", &samples::sample_body(Topic::TicketCreated), None),
    ];
    let reports = batch::run(&processor, records, &within(Duration::from_secs(6)), 4).await;
    assert_eq!(
        outcomes(&reports),
        [
            ("m-1".to_owned(), "processed"),
            ("m-2".to_owned(), "failed")
        ],
        "the effects decided the outcomes"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(6), "no later");
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

/// The lock of a record whose effects were cut off by the deadline is
/// released in the time kept for it, so the redelivery runs at once.
#[tokio::test(start_paused = true)]
async fn effects_cut_off_by_the_deadline_release_their_lock_in_the_time_kept_for_it() {
    let mut registry = Registry::new();
    registry.on(Topic::ContactUserCreated, |_: Event<Item>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    let (processor, store) = idempotent(registry);
    let body = samples::sample_body(Topic::ContactUserCreated);
    let started = tokio::time::Instant::now();
    let reports = batch::run(
        &processor,
        vec![record("m-1", &body, None)],
        &within(Duration::from_secs(10)),
        1,
    )
    .await;
    assert_eq!(reports[0].outcome, Outcome::Failed(Failure::OutOfTime));
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(10) - topic_processor::processor::FINISH_RESERVE,
        "the handler was stopped at the effects' deadline"
    );
    assert_eq!(
        store.get("topic-processor#notif_sample_contact_user_created"),
        None,
        "released"
    );
}

#[tokio::test]
async fn a_panicking_handler_fails_its_own_record_and_the_batch_goes_on() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::new();
    let ran = Arc::clone(&seen);
    registry.on(
        Topic::ConversationUserReplied,
        move |event: Event<Conversation>| {
            let ran = Arc::clone(&ran);
            async move {
                if event.meta.message_id == "m-5" {
                    let parts = event.item.conversation_parts.and_then(|p| p.total_count);
                    panic!("the CRM client expected {parts:?} parts");
                }
                ran.lock().expect("lock").push(event.meta.message_id);
                Ok(())
            }
        },
    );
    let body = samples::sample_body(Topic::ConversationUserReplied);
    let (processor, store) = idempotent(registry);
    let standard: Vec<SqsMessage> = (0..10)
        .map(|n| {
            let mut notification: Value = serde_json::from_slice(&body).expect("json");
            notification["id"] = format!("notif_{n}").into();
            record(
                &format!("m-{n}"),
                &serde_json::to_vec(&notification).expect("json"),
                None,
            )
        })
        .collect();
    let response = batch::process_batch(&processor, standard, &later(), 4).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-5"], "only the record whose handler panicked");
    assert_eq!(seen.lock().expect("lock").len(), 9);
    assert_eq!(
        store.get("topic-processor#notif_5"),
        None,
        "its lock released"
    );
    assert_eq!(
        store.get("topic-processor#notif_4").map(|i| i.status),
        Some("COMPLETED".to_owned())
    );
    // FIFO: the panic holds back its own group only.
    let in_group = |n: usize, group: &str| {
        let mut notification: Value = serde_json::from_slice(&body).expect("json");
        notification["id"] = format!("notif_fifo_{n}").into();
        let bytes = serde_json::to_vec(&notification).expect("json");
        record(&format!("m-{n}"), &bytes, Some(group))
    };
    let groups = vec![
        in_group(5, "panics"),
        in_group(6, "calm"),
        in_group(7, "calm"),
        in_group(9, "panics"),
    ];
    let reports = batch::run(&processor, groups, &later(), 4).await;
    let Outcome::Failed(Failure::HandlerPanicked(message)) = &reports[0].outcome else {
        panic!("{:?}", reports[0])
    };
    assert!(message.contains("the CRM client expected"), "{message}");
    assert_eq!(
        outcomes(&reports[1..]),
        [
            ("m-6".to_owned(), "processed"),
            ("m-7".to_owned(), "processed"),
            ("m-9".to_owned(), "failed")
        ]
    );
    assert_eq!(reports[3].outcome, Outcome::Failed(Failure::GroupHeldBack));
}

/// A bus no request ever reaches: `plan` decides before any call.
fn unreachable_bus() -> topic_processor::destinations::EventBus {
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:1")
        .build();
    topic_processor::destinations::EventBus::new(
        aws_sdk_eventbridge::Client::from_conf(config),
        "bus",
        "intercom",
    )
}

#[tokio::test]
async fn a_notification_the_bus_can_never_take_fails_before_its_handler_runs() {
    let (registry, seen) = recording(&[]);
    let (processor, store) = idempotent(registry);
    let processor = processor.with_destinations(topic_processor::destinations::Destinations {
        bus: Some(unreachable_bus()),
        archive: None,
    });
    let large = samples::conversation_of(intercom_webhook::destination::EVENT_BUS_LIMIT + 1);
    let reports = batch::run(&processor, vec![record("m-1", &large, None)], &later(), 1).await;
    assert!(
        matches!(
            reports[0].outcome,
            Outcome::Failed(Failure::TooLargeForEventBus(_))
        ),
        "{:?}",
        reports[0]
    );
    assert!(
        seen.lock().expect("lock").is_empty(),
        "the handler never ran"
    );
    assert_eq!(
        store.get("topic-processor#notif_large_conversation"),
        None,
        "no lock was taken"
    );
}

/// A processor with idempotency and freshness in memory, one store.
fn fresh(registry: Registry, mode: FreshnessMode) -> (Processor, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let ttl = Duration::from_secs(86_400);
    let processor = Processor::new(registry)
        .with_idempotency(Idempotency::new(
            Arc::clone(&store) as Arc<dyn Store>,
            "topic-processor",
            ttl,
        ))
        .with_freshness(Freshness::new(
            mode,
            Arc::clone(&store) as Arc<dyn Store>,
            "topic-processor",
            ttl,
        ));
    (processor, store)
}

/// A conversation notification `id`, created at `created_at`, about
/// conversation `conversation`.
fn about_conversation(id: &str, conversation: &str, created_at: i64) -> Vec<u8> {
    let mut notification: Value =
        serde_json::from_slice(&samples::sample_body(Topic::ConversationAdminReplied))
            .expect("json");
    notification["id"] = id.into();
    notification["created_at"] = created_at.into();
    notification["data"]["item"]["id"] = conversation.into();
    serde_json::to_vec(&notification).expect("json")
}

/// Runs `processor` on one record, message `message_id`, notification `id`
/// about conversation `conversation` created at `created_at`.
async fn run_one(
    processor: &Processor,
    message_id: &str,
    (id, conversation, created_at): (&str, &str, i64),
) -> Vec<RecordReport> {
    let body = about_conversation(id, conversation, created_at);
    batch::run(
        processor,
        vec![record(message_id, &body, None)],
        &later(),
        1,
    )
    .await
}

/// Each handler run: the message id, and the newer notification it was told
/// of, if any.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A registry whose `conversation.admin.replied` handler records the
/// message id and what it was told of freshness.
fn watching() -> (Registry, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::new();
    let ran = Arc::clone(&seen);
    registry.on(
        Topic::ConversationAdminReplied,
        move |event: Event<Item>| {
            let ran = Arc::clone(&ran);
            async move {
                let newer = event
                    .meta
                    .superseded_by
                    .map(|s| s.notification_id.unwrap_or_default());
                ran.lock()
                    .expect("lock")
                    .push((event.meta.message_id, newer));
                Ok(())
            }
        },
    );
    (registry, seen)
}

#[tokio::test]
async fn with_freshness_tag_an_older_notification_runs_knowing_it_is_stale() {
    let (registry, seen) = watching();
    let (processor, store) = fresh(registry, FreshnessMode::Tag);
    let batches = [
        record("m-new", &about_conversation("n-new", "7", 200), None),
        record("m-old", &about_conversation("n-old", "7", 100), None),
        record("m-same", &about_conversation("n-same", "7", 200), None),
        record("m-other", &about_conversation("n-other", "8", 50), None),
    ];
    let mut reports = Vec::new();
    for record in batches {
        reports.extend(batch::run(&processor, vec![record], &later(), 1).await);
    }
    let stale: Vec<(&str, &str, bool)> = reports
        .iter()
        .map(|r| (r.message_id.as_str(), r.outcome.name(), r.stale))
        .collect();
    assert_eq!(
        stale,
        [
            ("m-new", "processed", false),
            ("m-old", "processed", true),
            ("m-same", "processed", false),
            ("m-other", "processed", false)
        ],
        "older is stale; equal times and other objects are not"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            ("m-new".to_owned(), None),
            ("m-old".to_owned(), Some("n-new".to_owned())),
            ("m-same".to_owned(), None),
            ("m-other".to_owned(), None)
        ],
        "every handler ran, the stale one told which notification superseded it"
    );
    let object = store
        .newest("topic-processor#object#a86dr8yl:conversation:7")
        .expect("the object's newest");
    assert_eq!(
        (object.created_at, object.notification_id.as_deref()),
        (200, Some("n-same"))
    );
}

#[tokio::test]
async fn with_freshness_skip_a_stale_notification_is_not_handled() {
    let (registry, seen) = watching();
    let (processor, store) = fresh(registry, FreshnessMode::Skip);
    let newer = run_one(&processor, "m-new", ("n-new", "7", 200)).await;
    let older = run_one(&processor, "m-old", ("n-old", "7", 100)).await;
    assert_eq!(outcomes(&newer), [("m-new".to_owned(), "processed")]);
    assert_eq!(outcomes(&older), [("m-old".to_owned(), "stale")]);
    assert!(older[0].stale);
    assert_eq!(seen.lock().expect("lock").len(), 1, "only the newer ran");
    // A stale record is done: its copies are duplicates, not stale again.
    assert_eq!(
        store.get("topic-processor#n-old").map(|i| i.status),
        Some("COMPLETED".to_owned())
    );
    let again = run_one(&processor, "m-old-2", ("n-old", "7", 100)).await;
    assert_eq!(outcomes(&again), [("m-old-2".to_owned(), "duplicate")]);
}

/// On a standard queue two notifications about one object can run at
/// the same time; the object's newest only ever rises, and the newer of the
/// two is never stale, whichever order they reach the table in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_records_of_one_object_racing_on_a_standard_queue_keep_the_newest() {
    for round in 0..50 {
        let (registry, seen) = watching();
        let (processor, store) = fresh(registry, FreshnessMode::Tag);
        let older = record("m-old", &about_conversation("n-old", "7", 100), None);
        let newer = record("m-new", &about_conversation("n-new", "7", 200), None);
        let records = if round % 2 == 0 {
            vec![older, newer]
        } else {
            vec![newer, older]
        };
        let reports = batch::run(&processor, records, &later(), 8).await;
        let report = |id: &str| reports.iter().find(|r| r.message_id == id).expect(id);
        assert!(
            !report("m-new").stale,
            "round {round}: the newer is never stale"
        );
        assert_eq!(report("m-new").outcome, Outcome::Processed);
        assert_eq!(report("m-old").outcome, Outcome::Processed);
        let object = store
            .newest("topic-processor#object#a86dr8yl:conversation:7")
            .expect("newest");
        assert_eq!(object.created_at, 200, "round {round}");
        assert_eq!(seen.lock().expect("lock").len(), 2);
    }
}

/// A table that takes locks but cannot record an object's newest.
#[derive(Debug, Default)]
struct FreshnessRefused(MemoryStore);

impl Store for FreshnessRefused {
    fn take(&self, lock: idempotency::LockItem, now: i64) -> BoxFuture<Result<Taken, StoreError>> {
        self.0.take(lock, now)
    }
    fn complete(
        &self,
        id: String,
        owner: String,
        expiration: i64,
    ) -> BoxFuture<Result<Finished, StoreError>> {
        self.0.complete(id, owner, expiration)
    }
    fn release(&self, id: String, owner: String) -> BoxFuture<Result<Finished, StoreError>> {
        self.0.release(id, owner)
    }
    fn advance(
        &self,
        _: String,
        _: Newest,
        _: i64,
    ) -> BoxFuture<Result<Option<Newest>, StoreError>> {
        BrokenStore::Refusing.answer()
    }
    fn step(&self, id: String, now: i64) -> BoxFuture<Result<Option<StepState>, StoreError>> {
        self.0.step(id, now)
    }
    fn put_step(
        &self,
        id: String,
        state: StepState,
        expiration: i64,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.0.put_step(id, state, expiration)
    }
}

#[tokio::test]
async fn when_freshness_cannot_be_checked_the_record_fails_and_its_lock_is_released() {
    let (registry, seen) = watching();
    let store = Arc::new(FreshnessRefused::default());
    let ttl = Duration::from_secs(60);
    let processor = Processor::new(registry)
        .with_idempotency(Idempotency::new(
            Arc::clone(&store) as Arc<dyn Store>,
            "topic-processor",
            ttl,
        ))
        .with_freshness(Freshness::new(
            FreshnessMode::Skip,
            Arc::clone(&store) as Arc<dyn Store>,
            "topic-processor",
            ttl,
        ));
    let reports = run_one(&processor, "m-1", ("n-1", "7", 100)).await;
    assert_eq!(
        reports[0].outcome,
        Outcome::Failed(Failure::IdempotencyUnavailable("connection refused".into()))
    );
    assert!(
        seen.lock().expect("lock").is_empty(),
        "nothing ran unchecked"
    );
    assert_eq!(
        store.0.get("topic-processor#n-1"),
        None,
        "the lock is released"
    );
}

/// The Intercom API for a processor's handlers: a token, the mock's URL,
/// `extra` settings (`OWN_ACTIONS`, `INTERCOM_ADMIN_ID`).
async fn with_intercom(mut processor: Processor, url: &str, extra: &[(&str, &str)]) -> Processor {
    let mut vars: Vec<(&str, String)> = vec![
        ("INTERCOM_ACCESS_TOKEN", "tok".to_owned()),
        ("INTERCOM_API_URL", url.to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let settings = intercom_api::ApiSettings::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("settings");
    processor.intercom = topic_processor::intercom::IntercomApi::from_settings(&settings, None)
        .await
        .expect("the api");
    processor
}

/// A new conversation's handler that replies once and then tags the
/// conversation, each a step (`Event::once`).
fn replies_then_tags() -> Registry {
    use intercom_api::{ReplyKind, WithIntercom as _};
    let mut registry = Registry::new();
    registry.on(
        Topic::ConversationUserCreated,
        |event: Event<Conversation>| async move {
            let intercom = event.intercom().expect("a token is configured").clone();
            let id = event.item.id.clone().expect("an id").0;
            // What the client returns is kept as it is, and comes back on
            // a retry.
            let written: intercom_api::Written = event
                .once("reply", || async {
                    Ok(intercom
                        .reply(&id, ReplyKind::Comment, "Thanks, we are on it.")
                        .await?)
                })
                .await?;
            assert_eq!(written.id, id);
            assert!(written.part_id.is_some(), "{written:?}");
            event
                .once("tag", || async {
                    intercom.tag_conversation(&id, "17").await?;
                    Ok(())
                })
                .await
        },
    );
    registry
}

/// The mock, keeping the conversation of the sample notifications.
async fn mock_with_sample_conversation() -> intercom_mock::MockIntercom {
    let mock = intercom_mock::MockIntercom::start().await;
    let body: Value = serde_json::from_slice(&samples::sample_body(Topic::ConversationUserCreated))
        .expect("json");
    mock.add_conversation(body["data"]["item"].clone());
    mock
}

/// The conversation id of `body`'s item.
fn item_id(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).expect("json")["data"]["item"]["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

#[tokio::test]
async fn a_step_that_succeeded_is_not_run_again_when_the_record_is_retried() {
    let mock = mock_with_sample_conversation().await;
    let (processor, store) = idempotent(replies_then_tags());
    let processor = with_intercom(processor, &mock.url, &[]).await;
    let body = samples::sample_body(Topic::ConversationUserCreated);
    let conversation = item_id(&body);
    let tags = format!("POST /conversations/{conversation}/tags");
    let reply = format!("POST /conversations/{conversation}/reply");
    // The reply goes through; the tag meets Intercom's 500: the record fails.
    mock.then_on(&tags, intercom_mock::Fault::Status(500));
    let first = batch::run(&processor, vec![record("m-1", &body, None)], &later(), 1).await;
    assert_eq!(outcomes(&first), [("m-1".to_owned(), "failed")]);
    assert_eq!(mock.paths(), ["GET /me", reply.as_str(), tags.as_str()]);
    // SQS delivers the record again: the reply is not sent twice.
    let retry = batch::run(&processor, vec![record("m-1", &body, None)], &later(), 1).await;
    assert_eq!(outcomes(&retry), [("m-1".to_owned(), "processed")]);
    assert_eq!(
        mock.paths(),
        ["GET /me", reply.as_str(), tags.as_str(), tags.as_str()]
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
    let key = "topic-processor#notif_sample_conversation_user_created";
    assert_eq!(store.get(key).expect("the lock").status, "COMPLETED");
    // A third delivery is a duplicate: nothing is called.
    let again = batch::run(&processor, vec![record("m-2", &body, None)], &later(), 1).await;
    assert_eq!(outcomes(&again), [("m-2".to_owned(), "duplicate")]);
    assert_eq!(mock.calls().len(), 4);
}

#[tokio::test]
async fn without_a_table_steps_simply_run_again() {
    let mock = mock_with_sample_conversation().await;
    let processor = with_intercom(Processor::new(replies_then_tags()), &mock.url, &[]).await;
    let body = samples::sample_body(Topic::ConversationUserCreated);
    let conversation = item_id(&body);
    mock.then_on(
        &format!("POST /conversations/{conversation}/tags"),
        intercom_mock::Fault::Status(503),
    );
    for expected in ["failed", "processed"] {
        let reports = batch::run(&processor, vec![record("m-1", &body, None)], &later(), 1).await;
        assert_eq!(outcomes(&reports), [("m-1".to_owned(), expected)]);
    }
    let replies = mock
        .paths()
        .iter()
        .filter(|p| p.ends_with("/reply"))
        .count();
    assert_eq!(
        replies,
        2,
        "no table, no memory of steps: {:?}",
        mock.paths()
    );
}

/// A `conversation.admin.replied` notification `id` whose newest part admin
/// `admin_id` wrote, with `app_package_code` as given (`None`: no such
/// field, as payloads of older API versions).
fn admin_reply(id: &str, admin_id: &str, app_package_code: Option<Value>) -> Vec<u8> {
    let mut notification: Value =
        serde_json::from_slice(&samples::sample_body(Topic::ConversationAdminReplied))
            .expect("json");
    notification["id"] = id.into();
    let mut newest = json!({"type": "conversation_part", "id": "2", "part_type": "comment",
                            "created_at": 2, "author": {"type": "admin", "id": admin_id}});
    if let Some(code) = app_package_code {
        newest["app_package_code"] = code;
    }
    notification["data"]["item"]["conversation_parts"] = json!({
        "type": "conversation_part.list",
        "conversation_parts": [
            {"type": "conversation_part", "id": "1", "part_type": "comment", "created_at": 1,
             "author": {"type": "user", "id": "u1"}, "app_package_code": null},
            newest,
        ],
        "total_count": 2,
    });
    serde_json::to_vec(&notification).expect("json")
}

#[tokio::test]
async fn the_echo_of_the_apps_own_reply_is_own_action_and_me_is_asked_once() {
    let mock = intercom_mock::MockIntercom::start().await;
    let (registry, seen) = watching();
    let processor = with_intercom(Processor::new(registry), &mock.url, &[]).await;
    let me = intercom_mock::MockIntercom::admin_id();
    let api = || Some(json!("refund-bot"));
    let records = vec![
        record("m-1", &admin_reply("notif_1", &me, api()), None),
        record("m-2", &admin_reply("notif_2", "someone-else", api()), None),
        record("m-3", &admin_reply("notif_3", &me, api()), None),
        // The token's admin typing in the inbox is a teammate.
        record("m-4", &admin_reply("notif_4", &me, Some(Value::Null)), None),
        // A payload that does not say: only INTERCOM_ADMIN_ID could decide.
        record("m-5", &admin_reply("notif_5", &me, None), None),
    ];
    let reports = batch::run(&processor, records, &later(), 1).await;
    assert_eq!(
        outcomes(&reports),
        [
            ("m-1".to_owned(), "own_action"),
            ("m-2".to_owned(), "processed"),
            ("m-3".to_owned(), "own_action"),
            ("m-4".to_owned(), "processed"),
            ("m-5".to_owned(), "processed"),
        ]
    );
    let ran: Vec<String> = seen
        .lock()
        .expect("lock")
        .iter()
        .map(|(m, _)| m.clone())
        .collect();
    assert_eq!(
        ran,
        ["m-2", "m-4", "m-5"],
        "a person's reply reaches the handler"
    );
    assert_eq!(mock.paths(), ["GET /me"], "asked once, not per record");

    // OWN_ACTIONS=deliver: the handler hears its own echo; nobody asks /me.
    let mock = intercom_mock::MockIntercom::start().await;
    let (registry, seen) = watching();
    let processor = with_intercom(
        Processor::new(registry),
        &mock.url,
        &[("OWN_ACTIONS", "deliver")],
    )
    .await;
    let reports = batch::run(
        &processor,
        vec![record("m-1", &admin_reply("notif_1", &me, api()), None)],
        &later(),
        1,
    )
    .await;
    assert_eq!(outcomes(&reports), [("m-1".to_owned(), "processed")]);
    assert_eq!(seen.lock().expect("lock").len(), 1);
    assert!(mock.calls().is_empty());

    // INTERCOM_ADMIN_ID names the admin: nobody asks /me either, and a
    // payload without app_package_code is judged by its author.
    let mock = intercom_mock::MockIntercom::start().await;
    let (registry, _) = watching();
    let processor = with_intercom(
        Processor::new(registry),
        &mock.url,
        &[("INTERCOM_ADMIN_ID", "42")],
    )
    .await;
    let records = vec![
        record("m-1", &admin_reply("notif_1", "42", None), None),
        record("m-2", &admin_reply("notif_2", "42", api()), None),
        record(
            "m-3",
            &admin_reply("notif_3", "42", Some(Value::Null)),
            None,
        ),
    ];
    let reports = batch::run(&processor, records, &later(), 1).await;
    assert_eq!(
        outcomes(&reports),
        [
            ("m-1".to_owned(), "own_action"),
            ("m-2".to_owned(), "own_action"),
            ("m-3".to_owned(), "processed"),
        ]
    );
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn with_intercom_down_a_notification_no_handler_takes_never_waits_on_it() {
    let mock = intercom_mock::MockIntercom::start().await;
    let (registry, _) = watching();
    let processor = with_intercom(Processor::new(registry), &mock.url, &[]).await;
    for _ in 0..3 {
        mock.then(intercom_mock::Fault::Status(500));
    }
    let me = intercom_mock::MockIntercom::admin_id();
    let mut closed: Value =
        serde_json::from_slice(&admin_reply("notif_9", &me, Some(json!("x")))).expect("json");
    closed["topic"] = "conversation.admin.closed".into();
    let closed = serde_json::to_vec(&closed).expect("json");
    let reports = batch::run(
        &processor,
        vec![
            record("m-1", &closed, None),
            record("m-2", &admin_reply("notif_10", &me, Some(json!("x"))), None),
        ],
        &later(),
        1,
    )
    .await;
    let outcomes = outcomes(&reports);
    assert_eq!(outcomes[0], ("m-1".to_owned(), "unhandled"));
    assert_eq!(
        outcomes[1],
        ("m-2".to_owned(), "failed"),
        "its handler needs the answer"
    );
    let Outcome::Failed(failure) = &reports[1].outcome else {
        panic!("{:?}", reports[1].outcome)
    };
    assert!(failure.is_retryable(), "{failure}");
    assert_eq!(mock.paths(), ["GET /me"; 3], "only for the handled one");
}

/// A new conversation's handler that fetches the conversation as it is now.
fn fetches() -> Registry {
    use intercom_api::WithIntercom as _;
    let mut registry = Registry::new();
    registry.on(
        Topic::ConversationUserCreated,
        |event: Event<Conversation>| async move {
            let id = event.item.id.clone().expect("an id").0;
            event.intercom().expect("a token").conversation(&id).await?;
            Ok(())
        },
    );
    registry
}

#[tokio::test]
async fn a_429_is_waited_out_inside_the_deadline_and_past_it_the_record_fails_to_be_retried() {
    let mock = mock_with_sample_conversation().await;
    let processor = with_intercom(Processor::new(fetches()), &mock.url, &[]).await;
    let body = samples::sample_body(Topic::ConversationUserCreated);
    mock.then(intercom_mock::Fault::RateLimited {
        reset_in: Duration::from_millis(500),
    });
    let started = std::time::Instant::now();
    let reports = batch::run(&processor, vec![record("m-1", &body, None)], &later(), 1).await;
    assert_eq!(outcomes(&reports), [("m-1".to_owned(), "processed")]);
    assert_eq!(mock.calls().len(), 2, "the 429, then the call again");
    assert!(started.elapsed() >= Duration::from_millis(500));

    mock.then(intercom_mock::Fault::RateLimited {
        reset_in: Duration::from_secs(30),
    });
    let started = std::time::Instant::now();
    let reports = batch::run(
        &processor,
        vec![record("m-2", &body, None)],
        &within(Duration::from_secs(5)),
        1,
    )
    .await;
    let Outcome::Failed(failure) = &reports[0].outcome else {
        panic!("{:?}", reports[0].outcome)
    };
    assert!(failure.is_retryable(), "{failure}");
    assert!(failure.to_string().contains("rate limit"), "{failure}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "given up at once, not at the deadline"
    );
}

/// A `synced.*` topic is this project's own: handlers for it run only on
/// what `intercom-dev backfill` queued (the `synced` attribute, which the
/// receiver never sets). The same topic through the receiver is routed as
/// the unknown topic it is to Intercom: unhandled, not failed.
#[tokio::test]
async fn a_synced_topic_reaches_its_handler_only_from_backfill() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::new();
    let kept = Arc::clone(&seen);
    registry.on(Topic::SyncedTicket, move |event: Event<Ticket>| {
        let kept = Arc::clone(&kept);
        async move {
            kept.lock()
                .expect("lock")
                .push((event.meta.message_id.clone(), event.item.id().to_owned()));
            Ok(())
        }
    });
    let item =
        json!({"type": "ticket", "id": "42", "updated_at": 1_764_000_000, "title": "Refund"});
    let item = item.as_object().expect("an object").clone();
    let synced = intercom_webhook::synced::Synced {
        app_id: "abc",
        item: &item,
        last_seen_created_at: None,
        since: 1_763_990_000,
        until: 1_764_010_000,
        queued_at: 1_764_020_000,
    };
    let body = synced.body().expect("a body");
    let verifier =
        intercom_webhook::signature::Verifier::new([pipeline_tests::fixtures::TEST_SECRET])
            .expect("secret");
    let signature = verifier.sign(&body);
    let verified = verifier
        .verify(&body, Some(signature.as_bytes()))
        .expect("verifies");
    let envelope = intercom_webhook::envelope::Envelope::parse(verified).expect("an envelope");
    let delivery = intercom_webhook::queue_message::Delivery {
        signature: &signature,
        subscription_id: None,
        received_at: std::time::SystemTime::now(),
    };
    let carried = intercom_webhook::queue_message::CarriedBody::of(&body);
    let through_receiver = intercom_webhook::queue_message::QueueMessage::build(
        verified, carried, &envelope, &delivery, true,
    );
    let from_backfill = through_receiver.clone().synced();
    let records = vec![
        sqs::record_of("from-backfill", &from_backfill),
        sqs::record_of("through-receiver", &through_receiver),
    ];
    let processor = Processor::new(registry);
    let reports = batch::run(&processor, records, &later(), 4).await;
    let outcomes: Vec<(String, &str)> = reports
        .iter()
        .map(|r| (r.message_id.clone(), r.outcome.name()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("from-backfill".to_owned(), "processed"),
            ("through-receiver".to_owned(), "unhandled")
        ]
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [("from-backfill".to_owned(), "42".to_owned())]
    );
}
