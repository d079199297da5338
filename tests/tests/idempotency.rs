//! Exactly-once effects through real processor binaries and moto's DynamoDB: concurrency, a crash mid-handler, replays, a changed body, and the table down.
//!
//! The shipped handler for `conversation.user.created` logs "new
//! conversation from a user" each time it runs; `faulty-processor` is the same
//! Lambda wiring with a handler that sleeps, to be killed mid-handler.

use std::time::{Duration, Instant};

use intercom_webhook::topic::Topic;
use pipeline_tests::event_source::EventSource;
use pipeline_tests::function::Function;
use pipeline_tests::moto::Moto;
use pipeline_tests::samples;
use pipeline_tests::sqs::{self, Received};
use serde_json::Value;

const KEY: &str = "topic-processor#notif_sample_conversation_user_created";

fn body() -> Vec<u8> {
    samples::sample_body(Topic::ConversationUserCreated)
}

/// The SQS event for one record of `body`.
fn event(message_id: &str, body: &[u8]) -> Value {
    let text = String::from_utf8(body.to_vec()).expect("utf8");
    let record = sqs::record(message_id, &text, Received::first::<&str, &str>(&[], None));
    serde_json::to_value(sqs::event(vec![record], sqs::QUEUE_ARN)).expect("json")
}

/// Each record line's outcome and reason, over `processors`.
fn record_lines(processors: &[&Function]) -> Vec<(String, String)> {
    processors
        .iter()
        .flat_map(|p| p.json_logs())
        .filter(|l| l["message"] == "record")
        .map(|l| {
            (
                l["outcome"].as_str().unwrap_or_default().to_owned(),
                l["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn handler_runs(processors: &[&Function]) -> usize {
    processors
        .iter()
        .flat_map(|p| p.json_logs())
        .filter(|l| l["message"] == "new conversation from a user")
        .count()
}

async fn processor(moto: &Moto, table: &str) -> Function {
    Function::start(
        "topic-processor",
        Some(moto),
        &[("IDEMPOTENCY_TABLE", table.to_owned())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_notification_three_times_to_four_processors_runs_once() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let sqs = moto.sqs().await;
    let queue = moto.create_queue("notifications").await;
    let body = String::from_utf8(body()).expect("utf8");
    for _ in 0..3 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(&body)
            .send()
            .await
            .expect("send");
    }
    let processors = [
        processor(&moto, &table).await,
        processor(&moto, &table).await,
        processor(&moto, &table).await,
        processor(&moto, &table).await,
    ];
    // One record per invocation, so the three copies go to three processors
    // at once; a copy that finds the lock held fails and comes back.
    let source = EventSource {
        sqs: sqs.clone(),
        queue_url: queue.clone(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:notifications".into(),
        batch_size: 1,
        visibility_seconds: 1,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the queue did not empty");
        if source.round(&processors).await == 0 {
            let left = sqs
                .get_queue_attributes()
                .queue_url(&queue)
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                )
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                )
                .send()
                .await
                .expect("attributes");
            let counts: u64 = left
                .attributes()
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.parse::<u64>().ok())
                .sum();
            if counts == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let all: Vec<&Function> = processors.iter().collect();
    // Lines can still be in flight from the processes' pipes.
    let settled = Instant::now() + Duration::from_secs(5);
    while record_lines(&all)
        .iter()
        .filter(|(o, _)| o == "processed" || o == "duplicate")
        .count()
        < 3
        && Instant::now() < settled
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = record_lines(&all);
    let processed = lines.iter().filter(|(o, _)| o == "processed").count();
    let duplicates = lines.iter().filter(|(o, _)| o == "duplicate").count();
    let others: Vec<_> = lines
        .iter()
        .filter(|(o, r)| {
            o != "processed" && o != "duplicate" && !(o == "failed" && r == "in_progress")
        })
        .collect();
    assert_eq!(processed, 1, "{lines:?}");
    assert_eq!(duplicates, 2, "{lines:?}");
    assert!(others.is_empty(), "{lines:?}");
    assert_eq!(handler_runs(&all), 1, "the handler ran exactly once");
    let item = moto.idempotency_item(&table, KEY).await.expect("an item");
    assert_eq!(item["status"], "COMPLETED");
    // What the notification says, hashed (the delivery fields left out).
    assert_eq!(
        item["validation"],
        intercom_webhook::record::decode(body.as_bytes(), "m")
            .expect("decodes")
            .content_sha256
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_processor_killed_mid_handler_leaves_a_lock_that_expires_with_its_invocation() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let body = body();
    let mut slow = Function::start(
        "faulty-processor",
        Some(&moto),
        &[
            // The same function as the retry's, which crashed.
            ("AWS_LAMBDA_FUNCTION_NAME", "topic-processor".into()),
            ("IDEMPOTENCY_TABLE", table.clone()),
            ("SLOW_HANDLER_MS", "60000".into()),
            ("DEADLINE_MARGIN_MS", "0".into()),
        ],
    )
    .await;
    slow.api.set_timeout(Duration::from_secs(6));
    let api = slow.api.clone();
    let first = event("m-1", &body);
    let invocation = tokio::spawn(async move { api.invoke(&first, Duration::from_secs(30)).await });
    let started = slow
        .json_logs_when(1, |l| l["message"] == "slow handler started")
        .await;
    assert_eq!(started.len(), 1, "{:?}", slow.logs());
    let locked_at = Instant::now();
    slow.kill().await;
    invocation.abort();

    let item = moto.idempotency_item(&table, KEY).await.expect("a lock");
    assert_eq!(item["status"], "INPROGRESS");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let until: u128 = item["in_progress_expiration"].parse().expect("epoch ms");
    assert!(
        until > now_ms && until <= now_ms + 6_000,
        "the lock lasts as long as the invocation would have: {until} vs now {now_ms}"
    );

    // Redelivered while the crashed invocation's time has not run out: it
    // fails, to be retried, and nothing runs.
    let retry = processor(&moto, &table).await;
    let response = retry.invoke(&event("m-2", &body)).await;
    assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m-2");
    let failed = retry.json_logs_when(1, |l| l["message"] == "record").await;
    assert_eq!(failed[0]["reason"], "in_progress");
    assert_eq!(failed[0]["retryable"], true);
    assert_eq!(handler_runs(&[&retry]), 0);

    // Once that time has passed, the lock is abandoned and the record runs.
    let expires = Duration::from_millis(u64::try_from(until - now_ms).unwrap_or(0) + 200);
    tokio::time::sleep_until((locked_at + expires).into()).await;
    let response = retry.invoke(&event("m-3", &body)).await;
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    retry.json_logs_when(2, |l| l["message"] == "record").await;
    assert_eq!(handler_runs(&[&retry]), 1);
    let item = moto.idempotency_item(&table, KEY).await.expect("an item");
    assert_eq!(item["status"], "COMPLETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_old_replay_is_a_duplicate_and_a_changed_body_a_mismatch() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let processor = processor(&moto, &table).await;
    // A notification Intercom created an hour ago, processed then...
    let mut notification = samples::sample(Topic::ConversationUserCreated);
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 3600;
    notification["created_at"] = an_hour_ago.into();
    let body = serde_json::to_vec(&notification).expect("json");
    assert!(
        processor.invoke(&event("m-1", &body)).await["batchItemFailures"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    // ...and replayed now, long past SQS's five-minute deduplication: the
    // same bytes are a duplicate, and nothing runs again.
    assert!(
        processor.invoke(&event("m-2", &body)).await["batchItemFailures"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    // The same notification id with a different body fails, and keeps failing.
    notification["data"]["item"]["state"] = "closed".into();
    let changed = serde_json::to_vec(&notification).expect("json");
    let response = processor.invoke(&event("m-3", &changed)).await;
    assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m-3");

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
    assert_eq!(lines[2]["retryable"], false);
    assert_eq!(handler_runs(&[&processor]), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_table_missing_or_unreachable_records_fail_to_be_retried_and_nothing_runs() {
    let moto = Moto::start().await;
    let missing = processor(&moto, "no-such-table").await;
    let unreachable = Function::start(
        "topic-processor",
        Some(&moto),
        &[
            ("IDEMPOTENCY_TABLE", "idempotency".to_owned()),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1".to_owned()),
        ],
    )
    .await;
    for processor in [&missing, &unreachable] {
        let response = processor.invoke(&event("m-1", &body())).await;
        assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m-1");
        let lines = processor
            .json_logs_when(1, |l| l["message"] == "record")
            .await;
        assert_eq!(lines[0]["outcome"], "failed");
        assert_eq!(lines[0]["reason"], "idempotency_unavailable");
        assert_eq!(lines[0]["retryable"], true);
        assert_eq!(handler_runs(&[processor]), 0, "nothing ran unprotected");
    }
    // And nothing was marked: once the table is there, the record runs.
    let table = moto.create_idempotency_table("no-such-table").await;
    assert_eq!(moto.idempotency_item(&table, KEY).await, None);
    let response = missing.invoke(&event("m-2", &body())).await;
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    missing
        .json_logs_when(2, |l| l["message"] == "record")
        .await;
    assert_eq!(handler_runs(&[&missing]), 1);
}
