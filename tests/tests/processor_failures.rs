//! The processor under failure, black-box: release binaries under the Runtime API harness, moto, a DynamoDB that never answers, a panicking handler, two invocations racing for one expired lock, and a `PutEvents` held past its record's deadline.
//!
//! `faulty-processor` is `topic-processor`'s wiring with handlers that
//! misbehave on request (`tests/src/bin/faulty_processor.rs`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use intercom_webhook::topic::Topic;
use pipeline_tests::flaky_events::FlakyEvents;
use pipeline_tests::function::Function;
use pipeline_tests::moto::Moto;
use pipeline_tests::samples;
use pipeline_tests::silent::Silent;
use pipeline_tests::sqs::{self, Received};
use serde_json::{Value, json};
use topic_processor::idempotency::{DynamoDbStore, Finished, LockItem, Store, Taken};

/// An SQS event of `bodies`, one record each (message ids `m-0`, `m-1`, …),
/// on a standard queue.
fn event(bodies: &[Vec<u8>]) -> Value {
    let records = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            sqs::record(
                &format!("m-{n}"),
                std::str::from_utf8(body).expect("utf8"),
                Received::first::<&str, &str>(&[], None),
            )
        })
        .collect();
    serde_json::to_value(sqs::event(records, sqs::QUEUE_ARN)).expect("json")
}

/// `topic`'s sample with its own notification id.
fn notification(topic: Topic, id: &str) -> Vec<u8> {
    let mut notification = samples::sample(topic);
    notification["id"] = id.into();
    serde_json::to_vec(&notification).expect("json")
}

fn failed_ids(response: &Value) -> Vec<String> {
    let mut ids: Vec<String> = response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intercom_retry_is_a_duplicate_and_the_same_id_saying_something_else_a_mismatch() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let processor = Function::start(
        "topic-processor",
        Some(&moto),
        &[("IDEMPOTENCY_TABLE", table.clone())],
    )
    .await;
    let original = samples::sample(Topic::ConversationUserCreated);
    let mut retry = original.clone();
    retry["delivery_attempts"] = 2.into();
    retry["delivered_at"] = (original["created_at"].as_i64().expect("created_at") + 60).into();
    let mut changed = original.clone();
    changed["data"]["item"]["state"] = "closed".into();
    let bodies: Vec<Vec<u8>> = [&original, &retry, &changed]
        .iter()
        .map(|n| serde_json::to_vec(n).expect("json"))
        .collect();
    assert_ne!(bodies[0], bodies[1], "the retry's bytes differ");
    for (n, body) in bodies.iter().enumerate() {
        let response = processor.invoke(&event(std::slice::from_ref(body))).await;
        let expected_failures: &[&str] = if n == 2 { &["m-0"] } else { &[] };
        assert_eq!(failed_ids(&response), expected_failures, "delivery {n}");
    }
    let lines = processor
        .json_logs_when(3, |l| l["message"] == "record")
        .await;
    let outcomes: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["outcome"].as_str().unwrap_or_default(),
                l["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("processed", ""),
            ("duplicate", ""),
            ("failed", "payload_mismatch")
        ]
    );
    let ran = processor
        .json_logs()
        .iter()
        .filter(|l| l["message"] == "new conversation from a user")
        .count();
    assert_eq!(ran, 1, "the handler ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dynamodb_never_answering_a_six_second_batch_answers_in_time_with_every_record_failed()
{
    let silent = Silent::start().await;
    let processor = Function::start(
        "topic-processor",
        None,
        &[
            ("AWS_ENDPOINT_URL", silent.endpoint()),
            ("IDEMPOTENCY_TABLE", "idempotency".to_owned()),
        ],
    )
    .await;
    processor.api.set_timeout(Duration::from_secs(6));
    let bodies: Vec<Vec<u8>> = (0..10)
        .map(|n| notification(Topic::ConversationUserCreated, &format!("notif_hung_{n}")))
        .collect();
    let started = Instant::now();
    let answer = processor
        .api
        .invoke(&event(&bodies), Duration::from_secs(10))
        .await;
    let took = started.elapsed();
    let Some(pipeline_tests::runtime_api::Outcome::Response(response)) = answer else {
        panic!("no answer: {answer:?}\n{}", processor.logs().join("\n"))
    };
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    let expected: Vec<String> = (0..10).map(|n| format!("m-{n}")).collect();
    assert_eq!(failed_ids(&response), expected);
    let lines = processor
        .json_logs_when(10, |l| l["message"] == "record")
        .await;
    assert_eq!(lines.len(), 10);
    for line in &lines {
        assert_eq!(line["outcome"], "failed", "{line}");
        assert_eq!(line["retryable"], true, "{line}");
    }
    // Eight at a time (RECORD_CONCURRENCY): the first eight waited on the
    // table until their deadline; the last two never started.
    let reasons = |reason: &str| lines.iter().filter(|l| l["reason"] == reason).count();
    assert_eq!(reasons("idempotency_unavailable"), 8, "{lines:?}");
    assert_eq!(reasons("out_of_time"), 2, "{lines:?}");
    assert!(silent.connections() > 0, "the table was asked");
    let ran = processor
        .json_logs()
        .iter()
        .filter(|l| {
            l["message"] == "slow handler started" || l["message"] == "new conversation from a user"
        })
        .count();
    assert_eq!(ran, 0, "nothing ran unprotected");
}

/// The tests above run `faulty-processor` from the tests' own build; what
/// they show holds for the shipped binaries because the release profile
/// unwinds too (`abort` would end the process, and the batch, at the first
/// panic).
#[test]
fn the_release_profile_unwinds() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .expect("the workspace manifest");
    let release: Vec<&str> = manifest
        .lines()
        .skip_while(|l| l.trim() != "[profile.release]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(str::trim)
        .collect();
    assert!(
        release.contains(&r#"panic = "unwind""#),
        "[profile.release] must say panic = \"unwind\": {release:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_panics_fails_its_own_record_and_the_process_lives_on() {
    let processor = Function::start(
        "faulty-processor",
        None,
        &[("PANIC_ON_MESSAGE", "m-4".to_owned())],
    )
    .await;
    let bodies: Vec<Vec<u8>> = (0..10)
        .map(|n| notification(Topic::ConversationUserReplied, &format!("notif_reply_{n}")))
        .collect();
    let response = processor.invoke(&event(&bodies)).await;
    assert_eq!(failed_ids(&response), ["m-4"]);
    let lines = processor
        .json_logs_when(10, |l| l["message"] == "record")
        .await;
    let panicked: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "failed").collect();
    assert_eq!(panicked.len(), 1, "{lines:?}");
    assert_eq!(panicked[0]["message_id"], "m-4");
    assert_eq!(panicked[0]["reason"], "handler_panicked");
    assert_eq!(panicked[0]["retryable"], false);
    assert!(
        panicked[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("a reply with a body")),
        "{}",
        panicked[0]
    );
    assert_eq!(
        lines.iter().filter(|l| l["outcome"] == "processed").count(),
        9
    );
    // The panic itself is one JSON error line saying where it happened.
    let panic_lines = processor
        .json_logs_when(1, |l| l["message"] == "panic")
        .await;
    assert_eq!(panic_lines.len(), 1);
    assert_eq!(panic_lines[0]["level"], "ERROR");
    assert!(
        panic_lines[0]["location"]
            .as_str()
            .is_some_and(|l| l.contains("faulty_processor.rs")),
        "{}",
        panic_lines[0]
    );
    assert!(
        !processor.logs().iter().any(|l| l.starts_with("thread ")),
        "no text panic message on stderr"
    );

    // The same process takes the next invocation.
    assert!(processor.pid().is_some());
    let next = processor
        .invoke(&event(&[notification(
            Topic::ConversationUserReplied,
            "notif_reply_next",
        )]))
        .await;
    assert_eq!(next, json!({"batchItemFailures": []}));
}

/// An `INPROGRESS` lock of an invocation that ended (crashed) a second ago.
async fn abandoned_lock(moto: &Moto, table: &str, key: &str, body: &[u8]) {
    let content = intercom_webhook::record::decode(body, "m")
        .expect("decodes")
        .content_sha256;
    moto.dynamodb()
        .await
        .put_item()
        .table_name(table)
        .item("id", AttributeValue::S(key.to_owned()))
        .item("status", AttributeValue::S("INPROGRESS".into()))
        .item(
            "expiration",
            AttributeValue::N((now_ms() / 1000 + 3600).to_string()),
        )
        .item(
            "in_progress_expiration",
            AttributeValue::N((now_ms() - 1000).to_string()),
        )
        .item("validation", AttributeValue::S(content))
        .item("owner", AttributeValue::S("crashed-request:m-0".into()))
        .send()
        .await
        .expect("seed the lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_invocations_racing_for_one_expired_lock_run_the_handler_once() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let body = notification(Topic::ConversationUserCreated, "notif_race");
    let key = "topic-processor#notif_race";
    abandoned_lock(&moto, &table, key, &body).await;
    let env = [
        ("AWS_LAMBDA_FUNCTION_NAME", "topic-processor".to_owned()),
        ("IDEMPOTENCY_TABLE", table.clone()),
        ("SLOW_HANDLER_MS", "1500".to_owned()),
    ];
    let first = Function::start("faulty-processor", Some(&moto), &env).await;
    let second = Function::start("faulty-processor", Some(&moto), &env).await;
    let racing = event(std::slice::from_ref(&body));
    let (a, b) = tokio::join!(first.invoke(&racing), second.invoke(&racing));
    let mut outcomes: Vec<(String, String)> = Vec::new();
    for processor in [&first, &second] {
        for line in processor
            .json_logs_when(1, |l| l["message"] == "record")
            .await
        {
            outcomes.push((
                line["outcome"].as_str().unwrap_or_default().to_owned(),
                line["reason"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            ("failed".to_owned(), "in_progress".to_owned()),
            ("processed".to_owned(), String::new())
        ],
        "one took the abandoned lock, the other found it taken"
    );
    assert_eq!(failed_ids(&a).len() + failed_ids(&b).len(), 1);
    let started = [&first, &second]
        .iter()
        .flat_map(|p| p.json_logs())
        .filter(|l| l["message"] == "slow handler started")
        .count();
    assert_eq!(started, 1, "the handler ran once");
    let item = moto.idempotency_item(&table, key).await.expect("the item");
    assert_eq!(item["status"], "COMPLETED");
    assert!(
        item["owner"].ends_with(":m-0") && !item["owner"].starts_with("crashed"),
        "the winner completed it: {item:?}"
    );
}

/// The stale owner's late completion and release, against moto's DynamoDB:
/// refused by the condition on `owner`, the new owner's lock untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_over_cannot_be_completed_or_released_by_its_old_owner() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let store = DynamoDbStore::new(moto.dynamodb().await, &table);
    let lock = |owner: &str, until: i64| LockItem {
        id: "topic-processor#notif_owned".into(),
        status: "INPROGRESS".into(),
        expiration: now_ms() / 1000 + 3600,
        in_progress_expiration: Some(until),
        validation: Some("v".into()),
        owner: Some(owner.into()),
    };
    let now = now_ms();
    assert_eq!(
        store.take(lock("A:m-1", now - 1), now - 2).await,
        Ok(Taken::Yes)
    );
    assert_eq!(
        store.take(lock("B:m-2", now + 60_000), now).await,
        Ok(Taken::Yes)
    );
    let id = || "topic-processor#notif_owned".to_owned();
    assert_eq!(
        store
            .complete(id(), "A:m-1".into(), now / 1000 + 3600)
            .await,
        Ok(Finished::NotOwner)
    );
    assert_eq!(
        store.release(id(), "A:m-1".into()).await,
        Ok(Finished::NotOwner)
    );
    let item = moto
        .idempotency_item(&table, &id())
        .await
        .expect("B's lock");
    assert_eq!(
        (item["status"].as_str(), item["owner"].as_str()),
        ("INPROGRESS", "B:m-2")
    );
    // C cannot take B's live lock; B completes it.
    let Ok(Taken::Refused(Some(existing))) = store.take(lock("C:m-3", now + 60_000), now).await
    else {
        panic!("a live lock is refused with the item in the way")
    };
    assert_eq!(existing.owner.as_deref(), Some("B:m-2"));
    assert_eq!(
        store
            .complete(id(), "B:m-2".into(), now / 1000 + 3600)
            .await,
        Ok(Finished::Done)
    );
    assert_eq!(
        store.release(id(), "B:m-2".into()).await,
        Ok(Finished::NotOwner)
    );
    let item = moto
        .idempotency_item(&table, &id())
        .await
        .expect("completed");
    assert_eq!(item["status"], "COMPLETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_put_events_held_past_its_records_deadline_never_reaches_the_bus() {
    let moto = Moto::start().await;
    let consumer = moto.create_queue("bus-consumer").await;
    let bus = moto
        .create_bus_to_queue("intercom", "intercom", &consumer)
        .await;
    let flaky = FlakyEvents::start(moto.port, Vec::new()).await;
    let processor = Function::start(
        "topic-processor",
        None,
        &[
            ("AWS_ENDPOINT_URL", flaky.endpoint()),
            ("EVENT_BUS_NAME", bus),
        ],
    )
    .await;
    // 4 s to run, 1.5 s kept for the answer: the record has 2.5 s; its
    // PutEvents is held for 5.
    processor.api.set_timeout(Duration::from_secs(4));
    flaky.hold_put_events(Some(Duration::from_secs(5)));
    let held = notification(Topic::ContactUserCreated, "notif_held");
    let response = processor.invoke(&event(&[held])).await;
    assert_eq!(failed_ids(&response), ["m-0"]);
    let lines = processor
        .json_logs_when(1, |l| l["message"] == "record")
        .await;
    assert_eq!(lines[0]["reason"], "out_of_time", "{}", lines[0]);

    // The processor thaws for its next invocation after the hold is over.
    tokio::time::sleep(Duration::from_secs(6)).await;
    flaky.hold_put_events(None);
    let next = notification(Topic::ContactUserCreated, "notif_next");
    let response = processor.invoke(&event(&[next])).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Held, and given up by the SDK's attempt timeout, then by the record's
    // deadline: never forwarded, since no one waited for it any more.
    let (held, forwarded) = flaky.held();
    assert!(held >= 1, "the record's PutEvents was held");
    assert_eq!(forwarded, 0, "no held request was forwarded");
    let ids: Vec<String> = moto
        .drain(&consumer)
        .await
        .iter()
        .filter_map(|m| {
            let event: Value = serde_json::from_str(m.body().unwrap_or_default()).ok()?;
            event["detail"]["id"].as_str().map(str::to_owned)
        })
        .collect();
    assert_eq!(
        ids,
        ["notif_next"],
        "nothing of the failed record reached the bus"
    );
}

/// A handler registered with a model its topic cannot carry stops the
/// start, as the contract says of a bad setting: an init error naming the
/// topic and the model to ask for, before any record is asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_with_the_wrong_model_is_an_init_error() {
    let mut processor =
        Function::start("faulty-processor", None, &[("WRONG_MODEL", "1".to_owned())]).await;
    let error = processor.expect_init_error("ticket.closed").await;
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("Topic::TicketClosed takes Event<Ticket>")
            && message.contains("ask for Event<TicketWithPart>"),
        "{message}"
    );
}
