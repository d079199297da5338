//! The built-in destinations through the release binaries and moto's EventBridge and S3: every notification on the bus and in the archive, partial `PutEvents` failures, and a notification too large for the bus.
//!
//! The bus has a rule sending every `intercom` event to an SQS queue, so
//! what reached the bus is read from that queue, as a consumer would.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use intercom_webhook::destination::{EVENT_BUS_LIMIT, archive_key, event_entry_size};
use intercom_webhook::queue_message::{self, MAX_MESSAGE_BYTES};
use intercom_webhook::topic::Topic;
use pipeline_tests::aws_rules::AwsRules;
use pipeline_tests::fixtures::{TEST_SECRET, sign};
use pipeline_tests::flaky_events::FlakyEvents;
use pipeline_tests::function::Function;
use pipeline_tests::load;
use pipeline_tests::moto::{Moto, sqs_event};
use pipeline_tests::samples;
use pipeline_tests::sqs::{self, Received};
use serde_json::{Value, json};

const PREFIX: &str = "intercom/";

/// The events the bus's rule delivered to `queue`, by notification id.
async fn events_on_the_bus(moto: &Moto, queue: &str) -> Vec<Value> {
    moto.drain(queue)
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("an event"))
        .collect()
}

fn record_lines(processor: &Function) -> Vec<Value> {
    processor
        .json_logs()
        .into_iter()
        .filter(|l| l["message"] == "record")
        .collect()
}

/// An SQS event of single records of `bodies`, as the receiver queues them
/// (with their `signature` and `received_at` attributes).
fn standard_event(bodies: &[(String, Vec<u8>)]) -> Value {
    let records = bodies
        .iter()
        .map(|(message_id, body)| {
            let signature = sign(body);
            let attributes = [
                ("signature", signature.as_str()),
                ("received_at", "2026-11-30T09:00:00.000Z"),
            ];
            sqs::record(
                message_id,
                std::str::from_utf8(body).expect("utf8"),
                Received::first(&attributes, None),
            )
        })
        .collect();
    serde_json::to_value(sqs::event(records, sqs::QUEUE_ARN)).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_notification_reaches_the_bus_and_the_archive_byte_for_byte() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom").await;
    let consumer = moto.create_queue("bus-consumer").await;
    let bus = moto
        .create_bus_to_queue("intercom", "intercom", &consumer)
        .await;
    let bucket = moto.create_bucket("intercom-archive").await;
    let table = moto.create_idempotency_table("idempotency").await;

    // 136 valid notifications of the load mix: every family, a few
    // conversations with hundreds of parts, a seventh of them base64.
    let corpus: Vec<load::Delivery> = load::mix(400, "dest", 0x0D15_EA5E)
        .into_iter()
        .filter(|d| d.expected == 202)
        .take(136)
        .collect();
    assert_eq!(corpus.len(), 136);
    let receiver = Function::receiver(&moto, &queue, &[]).await;
    for delivery in &corpus {
        let event: Value = serde_json::from_slice(&delivery.event).expect("event");
        assert_eq!(
            receiver.invoke(&event).await["statusCode"],
            202,
            "{}",
            delivery.id
        );
    }
    let messages = moto.drain(&queue).await;
    assert_eq!(messages.len(), 136);

    // Through the proxy, which fails nothing here but keeps the archive's
    // metadata as sent.
    let proxy = FlakyEvents::start(moto.port, []).await;
    let processor = Function::start(
        "topic-processor",
        None,
        &[
            ("AWS_ENDPOINT_URL", proxy.endpoint()),
            ("EVENT_BUS_NAME", bus.clone()),
            ("ARCHIVE_BUCKET", bucket.clone()),
            ("ARCHIVE_PREFIX", PREFIX.to_owned()),
            ("IDEMPOTENCY_TABLE", table),
        ],
    )
    .await;
    for batch in messages.chunks(10) {
        let response = processor
            .invoke(&sqs_event(
                batch,
                "arn:aws:sqs:us-east-1:123456789012:intercom",
            ))
            .await;
        assert_eq!(
            response,
            json!({"batchItemFailures": []}),
            "{:?}",
            record_lines(&processor)
        );
    }
    let lines = processor
        .json_logs_when(136, |l| l["message"] == "record")
        .await;
    assert!(
        lines.iter().all(|l| l["outcome"] == "processed"),
        "every notification is processed, none unhandled: {lines:?}"
    );

    let sent: HashMap<&str, &load::Delivery> = corpus.iter().map(|d| (d.id.as_str(), d)).collect();
    let events = events_on_the_bus(&moto, &consumer).await;
    assert_eq!(events.len(), 136, "one event per notification");
    let mut pointers = 0;
    for event in &events {
        let id = event["detail"]["id"].as_str().expect("detail.id");
        let delivery = sent.get(id).expect("a notification that was sent");
        let notification: Value = serde_json::from_slice(&delivery.body).expect("json");
        assert_eq!(event["source"], "intercom");
        assert_eq!(event["detail-type"], notification["topic"], "{id}");
        let entry = event_entry_size(
            "intercom",
            notification["topic"].as_str().unwrap_or_default(),
            std::str::from_utf8(&delivery.body).expect("utf8"),
        );
        if entry <= EVENT_BUS_LIMIT {
            assert_eq!(
                event["detail"], notification,
                "{id}: the notification itself"
            );
        } else {
            pointers += 1;
            assert_eq!(event["detail"]["archive"]["bucket"], bucket.as_str());
        }
    }
    let mut ids: Vec<&str> = events
        .iter()
        .filter_map(|e| e["detail"]["id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 136, "each notification once");

    let objects = moto.objects(&bucket).await;
    assert_eq!(objects.len(), 136);
    let by_key: BTreeMap<&str, _> = objects
        .iter()
        .map(|(k, b, m)| (k.as_str(), (b, m)))
        .collect();
    for delivery in &corpus {
        let notification: Value = serde_json::from_slice(&delivery.body).expect("json");
        let key = archive_key(
            PREFIX,
            notification["app_id"].as_str().expect("app_id"),
            notification["topic"].as_str().expect("topic"),
            notification["created_at"].as_i64().expect("created_at"),
            Some(&delivery.id),
            &delivery.body,
        );
        let (bytes, stored) = by_key
            .get(key.as_str())
            .unwrap_or_else(|| panic!("no {key}"));
        assert_eq!(**bytes, delivery.body, "{key} byte for byte");
        assert_eq!(
            stored.get("signature"),
            Some(&sign(&delivery.body)),
            "{key}"
        );
        // moto drops `received_at` (an underscore header); S3 keeps it.
        let path = format!("/{bucket}/{}", key.replace('=', "%3D"));
        let sent = proxy
            .metadata_sent(&path)
            .unwrap_or_else(|| panic!("no PUT of {path}"));
        assert_eq!(sent.get("signature"), Some(&sign(&delivery.body)), "{key}");
        let attribute = |name: &str| {
            messages
                .iter()
                .filter_map(|m| m.message_attributes())
                .find(|a| {
                    a.get("notification_id").and_then(|v| v.string_value()) == Some(&delivery.id)
                })
                .and_then(|a| a.get(name)?.string_value().map(str::to_owned))
        };
        let received_at = attribute("received_at");
        assert!(received_at.is_some(), "{key}");
        assert_eq!(sent.get("received_at"), received_at.as_ref(), "{key}");
    }
    eprintln!("{pointers} of 136 were over the bus's limit and went as pointers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_bus_entries_fail_only_their_records_and_succeed_on_retry() {
    let moto = Moto::start().await;
    let consumer = moto.create_queue("bus-consumer").await;
    let bus = moto
        .create_bus_to_queue("intercom", "intercom", &consumer)
        .await;
    let bodies: Vec<(String, Vec<u8>)> = (0..10)
        .map(|n| {
            let mut notification = samples::sample(Topic::ALL[n * 7]);
            notification["id"] = format!("notif_flaky_{n}").into();
            (
                format!("m-{n}"),
                serde_json::to_vec(&notification).expect("json"),
            )
        })
        .collect();
    let flaky = FlakyEvents::start(
        moto.port,
        ["notif_flaky_2", "notif_flaky_5", "notif_flaky_9"].map(String::from),
    )
    .await;
    let processor = Function::start(
        "topic-processor",
        None,
        &[
            ("AWS_ENDPOINT_URL", flaky.endpoint()),
            ("EVENT_BUS_NAME", bus),
        ],
    )
    .await;

    let response = processor.invoke(&standard_event(&bodies)).await;
    let mut failed: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        ["m-2", "m-5", "m-9"],
        "{:?}",
        record_lines(&processor)
    );
    assert_eq!(flaky.failed().len(), 3);
    let lines = processor
        .json_logs_when(10, |l| l["message"] == "record")
        .await;
    for line in lines.iter().filter(|l| l["outcome"] == "failed") {
        assert_eq!(line["reason"], "destination_failed", "{line}");
        assert_eq!(line["retryable"], true, "{line}");
    }
    let batches = flaky.batches();
    assert!(
        batches.len() >= 10 && batches.iter().all(|entries| *entries == 1),
        "each record puts its own entry, inline, in its own time: {batches:?}"
    );

    // SQS redelivers the three; this time EventBridge takes them.
    let again: Vec<(String, Vec<u8>)> = bodies
        .iter()
        .filter(|(id, _)| failed.contains(&id.as_str()))
        .cloned()
        .collect();
    let response = processor.invoke(&standard_event(&again)).await;
    assert_eq!(response, json!({"batchItemFailures": []}));

    let events = events_on_the_bus(&moto, &consumer).await;
    let mut ids: Vec<String> = events
        .iter()
        .filter_map(|e| e["detail"]["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..10).map(|n| format!("notif_flaky_{n}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "every notification on the bus exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_over_the_bus_limit_goes_as_a_pointer_with_an_archive_and_fails_without() {
    let moto = Moto::start().await;
    // EventBridge refuses more than 1 MB in one PutEvents; moto takes any size.
    let aws = AwsRules::start(moto.port).await;
    let consumer = moto.create_queue("bus-consumer").await;
    let bus = moto
        .create_bus_to_queue("intercom", "intercom", &consumer)
        .await;
    let bucket = moto.create_bucket("intercom-archive").await;
    let through_rules = |extra: &[(&'static str, String)]| {
        let mut env = vec![("AWS_ENDPOINT_URL", aws.endpoint())];
        env.extend_from_slice(extra);
        env
    };

    // 600 KB, over the old 256 KB limit and under 1 MB: the bus takes it whole.
    let body = samples::conversation_of(600 * 1024);
    let processor = Function::start(
        "topic-processor",
        None,
        &through_rules(&[("EVENT_BUS_NAME", bus.clone())]),
    )
    .await;
    let event = standard_event(&[("m-600".to_owned(), body.clone())]);
    assert_eq!(
        processor.invoke(&event).await,
        json!({"batchItemFailures": []}),
        "{:?}",
        record_lines(&processor)
    );
    let events = events_on_the_bus(&moto, &consumer).await;
    assert_eq!(events.len(), 1);
    let whole: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(events[0]["detail"], whole, "the whole notification");

    // Over the limit (a body that reached the processor through the
    // payload bucket).
    let body = samples::conversation_of(EVENT_BUS_LIMIT + 1);
    let notification: Value = serde_json::from_slice(&body).expect("json");
    let id = notification["id"].as_str().expect("id").to_owned();
    let event = standard_event(&[("m-big".to_owned(), body.clone())]);

    // With an archive: the object holds the body, the event points at it.
    let processor = Function::start(
        "topic-processor",
        None,
        &through_rules(&[
            ("EVENT_BUS_NAME", bus.clone()),
            ("ARCHIVE_BUCKET", bucket.clone()),
        ]),
    )
    .await;
    assert_eq!(
        processor.invoke(&event).await,
        json!({"batchItemFailures": []}),
        "{:?}",
        record_lines(&processor)
    );
    let key = archive_key(
        "",
        notification["app_id"].as_str().expect("app_id"),
        notification["topic"].as_str().expect("topic"),
        notification["created_at"].as_i64().expect("created_at"),
        Some(&id),
        &body,
    );
    let objects = moto.objects(&bucket).await;
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].0, key);
    assert_eq!(
        objects[0].1, body,
        "the archive holds the body byte for byte"
    );
    let events = events_on_the_bus(&moto, &consumer).await;
    assert_eq!(events.len(), 1);
    let detail = &events[0]["detail"];
    assert_eq!(detail["archive"], json!({"bucket": bucket, "key": key}));
    assert_eq!(
        detail["data"]["item"],
        json!({"type": notification["data"]["item"]["type"], "id": notification["data"]["item"]["id"]})
    );
    for field in ["type", "topic", "id", "app_id", "created_at"] {
        assert_eq!(detail[field], notification[field], "{field}");
    }
    assert!(detail.to_string().len() < 4096, "the pointer is small");

    // Without one: the record fails, with the reason, and nothing is sent.
    let processor = Function::start(
        "topic-processor",
        None,
        &through_rules(&[("EVENT_BUS_NAME", bus)]),
    )
    .await;
    let response = processor.invoke(&event).await;
    assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m-big");
    let lines = processor
        .json_logs_when(1, |l| l["message"] == "record")
        .await;
    assert_eq!(lines[0]["outcome"], "failed");
    assert_eq!(lines[0]["reason"], "too_large_for_event_bus");
    assert_eq!(lines[0]["retryable"], false);
    assert!(events_on_the_bus(&moto, &consumer).await.is_empty());
}

/// An archived body over the SQS limit (one that came through the payload
/// bucket) replays as the receiver sent it: the body to the payload bucket,
/// a pointer on the queue, which the processor resolves; without a payload
/// bucket it fails and says how to fix it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_a_body_over_the_sqs_limit_through_the_payload_bucket() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom.fifo").await;
    let archive = moto.create_bucket("intercom-archive").await;
    let payloads = moto.create_bucket("intercom-payloads").await;
    let body = samples::conversation_of(MAX_MESSAGE_BYTES + 1);
    let notification: Value = serde_json::from_slice(&body).expect("json");
    let key = archive_key(
        "",
        notification["app_id"].as_str().expect("app_id"),
        notification["topic"].as_str().expect("topic"),
        notification["created_at"].as_i64().expect("created_at"),
        notification["id"].as_str(),
        &body,
    );
    moto.s3()
        .await
        .put_object()
        .bucket(&archive)
        .key(&key)
        .metadata("signature", sign(&body))
        .body(body.clone().into())
        .send()
        .await
        .expect("archive the body");
    let args = ["--bucket", archive.as_str(), "--queue-url", queue.as_str()];

    let (output, ok) = intercom_dev_replay(&moto.endpoint(), &args);
    assert!(!ok, "{output}");
    assert!(
        output.contains("more than one SQS message takes: pass --payload-bucket"),
        "{output}"
    );
    assert!(moto.drain(&queue).await.is_empty());

    let (output, ok) = intercom_dev_replay(
        &moto.endpoint(),
        &[&args[..], &["--payload-bucket", payloads.as_str()]].concat(),
    );
    assert!(ok, "{output}");
    let queued = moto.drain(&queue).await;
    assert_eq!(queued.len(), 1);
    let (bucket, object) =
        queue_message::payload_pointer(queued[0].body().expect("body")).expect("a pointer body");
    assert_eq!(bucket, payloads);
    let stored = moto.objects(&payloads).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (&stored[0].0, &stored[0].1),
        (&object, &body),
        "byte for byte"
    );
    let attributes = queued[0].message_attributes().cloned().unwrap_or_default();
    assert_eq!(
        attributes["ExtendedPayloadSize"].string_value(),
        Some(body.len().to_string().as_str())
    );
    assert!(attributes.contains_key("replay"));

    let processor = Function::start("topic-processor", Some(&moto), &[]).await;
    let arn = "arn:aws:sqs:us-east-1:123456789012:intercom.fifo";
    assert_eq!(
        processor.invoke(&sqs_event(&queued, arn)).await,
        json!({"batchItemFailures": []}),
        "{:?}",
        record_lines(&processor)
    );
}

/// Runs `intercom-dev replay` against moto with `args`; its output and success.
fn intercom_dev_replay(endpoint: &str, args: &[&str]) -> (String, bool) {
    let output = std::process::Command::new(pipeline_tests::function::binary("intercom-dev"))
        .arg("replay")
        .args(args)
        .env_clear()
        .envs(pipeline_tests::moto::cli_env(endpoint))
        .env("INTERCOM_CLIENT_SECRET", TEST_SECRET)
        .output()
        .expect("run intercom-dev replay");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (text, output.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_puts_archived_notifications_back_as_the_receiver_queued_them() {
    let moto = Moto::start().await;
    // Everything that sends goes through AWS's rules: the queue remembers
    // each deduplication id for five minutes after the first send, deleted
    // or not, as SQS does and moto does not.
    let aws = AwsRules::start(moto.port).await;
    let queue = moto.create_queue("intercom.fifo").await;
    let bucket = moto.create_bucket("intercom-archive").await;
    let table = moto.create_idempotency_table("idempotency").await;
    // 1 and 20 November 2026, midday UTC.
    let (early, late) = (1_793_534_400_i64, 1_795_176_000_i64);
    let notifications = [
        (Topic::TicketCreated, early),
        (Topic::TicketAdminReplied, late),
        (Topic::TicketStateUpdated, late),
        (Topic::ConversationUserCreated, late),
        (Topic::ContactUserCreated, late),
    ];
    let receiver = Function::receiver(&moto, &queue, &[("AWS_ENDPOINT_URL", aws.endpoint())]).await;
    for (n, (topic, created_at)) in notifications.iter().enumerate() {
        let mut notification = samples::sample(*topic);
        notification["id"] = format!("notif_replay_{n}").into();
        notification["created_at"] = (*created_at).into();
        let body = serde_json::to_vec(&notification).expect("json");
        let event = pipeline_tests::fixtures::Request::signed(&body)
            .header("intercom-webhook-subscription-id", "nsub_replay")
            .event(pipeline_tests::fixtures::Shape::ApiGatewayV2);
        assert_eq!(receiver.invoke(&event).await["statusCode"], 202);
    }
    let originals = moto.drain(&queue).await;
    assert_eq!(originals.len(), 5);
    let processor = Function::start(
        "topic-processor",
        Some(&moto),
        &[
            ("ARCHIVE_BUCKET", bucket.clone()),
            ("IDEMPOTENCY_TABLE", table),
        ],
    )
    .await;
    let arn = "arn:aws:sqs:us-east-1:123456789012:intercom.fifo";
    assert_eq!(
        processor.invoke(&sqs_event(&originals, arn)).await,
        json!({"batchItemFailures": []})
    );
    assert_eq!(moto.objects(&bucket).await.len(), 5);

    // The tickets from 10 November on: two of the three.
    let filter = [
        "--bucket",
        bucket.as_str(),
        "--queue-url",
        queue.as_str(),
        "--topic",
        "ticket.*",
        "--from",
        "2026-11-10",
        "--to",
        "2026-11-30",
    ];
    let (output, ok) =
        intercom_dev_replay(&aws.endpoint(), &[&filter[..], &["--dry-run"]].concat());
    assert!(ok, "{output}");
    assert_eq!(output.matches("would queue").count(), 2, "{output}");
    assert!(
        output.contains("would replay 2 of 2 matching notification(s)"),
        "{output}"
    );
    assert!(
        moto.drain(&queue).await.is_empty(),
        "a dry run queues nothing"
    );

    // Within five minutes of the originals: queued, under ids of the run's.
    let backfill = |run: &str| {
        intercom_dev_replay(&aws.endpoint(), &[&filter[..], &["--run-id", run]].concat())
    };
    let (output, ok) = backfill("backfill-1");
    assert!(ok, "{output}");
    assert!(output.contains("replayed 2 of 2"), "{output}");
    let replayed = moto.drain(&queue).await;
    assert_eq!(replayed.len(), 2);
    for copy in &replayed {
        let original = originals
            .iter()
            .find(|o| o.body() == copy.body())
            .expect("the same body as an original");
        let mut attributes = copy.message_attributes().cloned().unwrap_or_default();
        assert_eq!(
            attributes.remove("replay").and_then(|v| v.string_value),
            Some("backfill-1".to_owned())
        );
        // moto cannot store S3 metadata with an underscore in its name
        // (its HTTP server drops such headers; S3 keeps them), so here the
        // archive has no `received_at` or `subscription_id` to give back:
        // the replay says when it was received again, and has no
        // subscription id. Every other attribute is the original's.
        let mut expected = original.message_attributes().cloned().unwrap_or_default();
        expected.remove("subscription_id");
        let first = expected.remove("received_at").and_then(|v| v.string_value);
        let again = attributes
            .remove("received_at")
            .and_then(|v| v.string_value);
        assert!(again > first, "{again:?} after {first:?}");
        assert_eq!(attributes, expected, "the original attributes");
        use aws_sdk_sqs::types::MessageSystemAttributeName as System;
        let id = |m: &aws_sdk_sqs::types::Message, name: System| {
            m.attributes().and_then(|a| a.get(&name)).cloned()
        };
        assert!(id(copy, System::MessageGroupId).is_some());
        assert_eq!(
            id(copy, System::MessageGroupId),
            id(original, System::MessageGroupId),
            "the original's group"
        );
        assert_eq!(
            id(copy, System::MessageDeduplicationId),
            id(original, System::MessageDeduplicationId).map(|d| format!("backfill-1:{d}")),
            "a deduplication id of the run's"
        );
    }
    // The same run again within five minutes: SQS answers as if it queued
    // them, and drops them.
    let (output, ok) = backfill("backfill-1");
    assert!(ok && output.contains("replayed 2 of 2"), "{output}");
    assert!(moto.drain(&queue).await.is_empty(), "a run retried drops");

    // The processor runs a replay once, although it remembers the originals.
    let response = processor.invoke(&sqs_event(&replayed, arn)).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    let again = processor.invoke(&sqs_event(&replayed, arn)).await;
    assert_eq!(again, json!({"batchItemFailures": []}));
    let lines = processor
        .json_logs_when(9, |l| l["message"] == "record")
        .await;
    let outcomes: Vec<&str> = lines.iter().filter_map(|l| l["outcome"].as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "processed",
            "processed",
            "processed",
            "processed",
            "processed", // originals
            "processed",
            "processed", // the replay
            "duplicate",
            "duplicate", // the replay delivered twice
        ]
    );

    // A wrong secret verifies nothing, and nothing is queued.
    let output = std::process::Command::new(pipeline_tests::function::binary("intercom-dev"))
        .args([
            "replay",
            "--bucket",
            &bucket,
            "--queue-url",
            &queue,
            "--secret",
            "not-the-secret",
        ])
        .envs(pipeline_tests::moto::cli_env(&moto.endpoint()))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert_eq!(text.matches("does not verify").count(), 5, "{text}");
    assert!(moto.drain(&queue).await.is_empty());
}

/// Four notifications about one conversation, archived under four topics
/// (the listing's order is topic first: assigned, closed, replied,
/// created), one of them in a stream object of an archive written before
/// 2026-12-05 (`stream/app_id=…/topic=…/dt=…/`) and one on the day before,
/// and a notification about another conversation between them, in a stream
/// object of today's layout (`stream/app_id=…/dt=…/`): replayed onto a
/// FIFO queue, the conversation's arrive in `created_at` order, and the
/// replay says what it does day by day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_queues_each_objects_notifications_in_created_at_order() {
    use intercom_webhook::destination::{ArchiveRecord, STREAM_PREFIX};

    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let queue = moto.create_queue("intercom.fifo").await;
    let bucket = moto.create_bucket("intercom-archive").await;
    let s3 = moto.s3().await;
    // 29 November 2026, 23:59:50 UTC, then the next morning.
    let evening = 1_795_996_790_i64;
    let morning = 1_795_996_800_i64 + 9 * 3600;
    let conversation = [
        (Topic::ConversationUserCreated, evening, false),
        (Topic::ConversationAdminReplied, morning, false),
        (Topic::ConversationAdminAssigned, morning + 60, true),
        (Topic::ConversationAdminClosed, morning + 120, false),
    ];
    let mut notifications: Vec<(Value, bool)> = conversation
        .iter()
        .enumerate()
        .map(|(n, (topic, created_at, stream))| {
            let mut notification = samples::sample(*topic);
            notification["id"] = format!("notif_order_{n}").into();
            notification["created_at"] = (*created_at).into();
            notification["data"]["item"]["id"] = "conversation-order".into();
            (notification, *stream)
        })
        .collect();
    let mut other = samples::sample(Topic::ConversationAdminReplied);
    other["id"] = "notif_other".into();
    other["created_at"] = (morning + 30).into();
    other["data"]["item"]["id"] = "conversation-other".into();
    notifications.push((other, true));
    for (notification, stream) in &notifications {
        let body = serde_json::to_vec(notification).expect("json");
        let key = archive_key(
            PREFIX,
            notification["app_id"].as_str().expect("app_id"),
            notification["topic"].as_str().expect("topic"),
            notification["created_at"].as_i64().expect("created_at"),
            notification["id"].as_str(),
            &body,
        );
        let put = s3.put_object().bucket(&bucket);
        if *stream {
            let record = ArchiveRecord {
                app_id: notification["app_id"].as_str().expect("app_id").into(),
                topic: notification["topic"].as_str().expect("topic").into(),
                created_at: notification["created_at"].as_i64().expect("created_at"),
                id: notification["id"].as_str().map(str::to_owned),
                signature: Some(sign(&body)),
                received_at: None,
                subscription_id: None,
                body: Some(body.clone()),
                object: None,
            };
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gzip, record.to_line().as_bytes()).expect("gzip");
            let (mut partition, _) = key
                .strip_prefix(PREFIX)
                .and_then(|k| k.rsplit_once('/'))
                .map(|(partition, name)| (partition.to_owned(), name))
                .expect("a partition");
            if notification["id"] == "notif_other" {
                // Today's layout: every topic of the day together.
                let topic = format!("/topic={}", record.topic);
                partition = partition.replace(&topic, "");
            }
            put.key(format!(
                "{PREFIX}{STREAM_PREFIX}{partition}/intercom-archive-1-2026-11-30-09-05-00-0.gz"
            ))
            .body(gzip.finish().expect("gzip").into())
        } else {
            put.key(key)
                .metadata("signature", sign(&body))
                .body(body.into())
        }
        .send()
        .await
        .expect("archived");
    }

    let (output, ok) = intercom_dev_replay(
        &aws.endpoint(),
        &[
            "--bucket",
            &bucket,
            "--prefix",
            PREFIX,
            "--queue-url",
            &queue,
        ],
    );
    assert!(ok, "{output}");
    assert!(
        output.contains("2 day(s) of archive partitions match"),
        "{output}"
    );
    assert!(
        output.contains("[day 1/2] 2026-11-29: 1 notification(s) to queue")
            && output.contains("[day 2/2] 2026-11-30: 4 notification(s) to queue"),
        "{output}"
    );
    assert!(output.contains("replayed 5 of 5 matching"), "{output}");
    let queued: Vec<(String, i64)> = moto
        .drain(&queue)
        .await
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m.body().expect("body")).expect("json");
            (
                body["id"].as_str().expect("id").to_owned(),
                body["created_at"].as_i64().expect("created_at"),
            )
        })
        .collect();
    let order: Vec<&str> = queued
        .iter()
        .filter(|(id, _)| id.starts_with("notif_order_"))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "notif_order_0",
            "notif_order_1",
            "notif_order_2",
            "notif_order_3"
        ],
        "the conversation's notifications in created_at order: {queued:?}"
    );
    assert!(
        queued.iter().any(|(id, _)| id == "notif_other"),
        "{queued:?}"
    );

    // A dry run of the whole range says the same, day by day, and queues nothing.
    let (output, ok) = intercom_dev_replay(
        &aws.endpoint(),
        &[
            "--bucket",
            &bucket,
            "--prefix",
            PREFIX,
            "--queue-url",
            &queue,
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--dry-run",
        ],
    );
    assert!(ok, "{output}");
    let would: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("would queue"))
        .collect();
    assert_eq!(would.len(), 5, "{output}");
    assert!(would[0].contains("conversation.user.created"), "{output}");
    assert!(would[4].contains("conversation.admin.closed"), "{output}");
    assert!(
        moto.drain(&queue).await.is_empty(),
        "a dry run queues nothing"
    );
}

/// The stream layout (`ARCHIVE_STREAM`): one line per notification through
/// Firehose, gzip objects per partition once its buffer ends; the bodies
/// read back byte for byte with their signatures; a body too long for a
/// line is an object the line points to; and replay reads the layout,
/// queueing each notification once however many copies the archive holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_layout_keeps_every_body_in_its_partition_and_replays_each_once() {
    use intercom_webhook::destination::{ARCHIVE_RECORD_LIMIT, ArchiveRecord, STREAM_PREFIX};
    use std::io::Read as _;

    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let bucket = moto.create_bucket("intercom-archive").await;
    let consumer = moto.create_queue("bus-consumer").await;
    let bus = moto
        .create_bus_to_queue("intercom", "intercom", &consumer)
        .await;
    let stream =
        Moto::create_archive_stream(&aws.endpoint(), "intercom-archive", &bucket, PREFIX).await;
    let processor = Function::start(
        "topic-processor",
        None,
        &[
            ("AWS_ENDPOINT_URL", aws.endpoint()),
            ("ARCHIVE_BUCKET", bucket.clone()),
            ("ARCHIVE_PREFIX", PREFIX.to_owned()),
            ("ARCHIVE_STREAM", stream),
            ("EVENT_BUS_NAME", bus),
        ],
    )
    .await;

    let mut bodies: Vec<(String, Vec<u8>)> = [
        Topic::TicketCreated,
        Topic::ContactUserCreated,
        Topic::ConversationUserReplied,
    ]
    .iter()
    .enumerate()
    .map(|(n, topic)| {
        let mut notification = samples::sample(*topic);
        notification["id"] = format!("notif_stream_{n}").into();
        (
            format!("m-{n}"),
            serde_json::to_vec(&notification).expect("json"),
        )
    })
    .collect();
    // Pretty-printed, as a sender may: kept as a string in its line.
    let mut pretty = samples::sample(Topic::TicketStateUpdated);
    pretty["id"] = "notif_stream_pretty".into();
    bodies.push((
        "m-pretty".into(),
        serde_json::to_vec_pretty(&pretty).expect("json"),
    ));
    // Too large for the bus (an object the entry points to; the line holds
    // it too), and too long for a line (the line points to the object).
    for (name, size) in [
        ("bus", EVENT_BUS_LIMIT + 1),
        ("line", ARCHIVE_RECORD_LIMIT + 1),
    ] {
        let mut large: Value =
            serde_json::from_slice(&samples::conversation_of(size)).expect("json");
        large["id"] = format!("notif_stream_{name}").into();
        large["data"]["item"]["id"] = format!("conversation-{name}").into();
        bodies.push((
            format!("m-{name}"),
            serde_json::to_vec(&large).expect("json"),
        ));
    }
    assert_eq!(
        processor.invoke(&standard_event(&bodies)).await,
        json!({"batchItemFailures": []}),
        "{:?}",
        record_lines(&processor)
    );
    // Intercom's retry of the first: a second line of the same notification.
    let mut retried: Value = serde_json::from_slice(&bodies[0].1).expect("json");
    retried["delivery_attempts"] = 2.into();
    let retried = serde_json::to_vec(&retried).expect("json");
    assert_eq!(
        processor
            .invoke(&standard_event(&[("m-retry".into(), retried.clone())]))
            .await,
        json!({"batchItemFailures": []})
    );

    let id_of = |body: &[u8]| {
        serde_json::from_slice::<Value>(body).expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    // Before the stream's buffer ends only the two large bodies are objects.
    let objects: BTreeMap<String, Vec<u8>> = moto
        .objects(&bucket)
        .await
        .into_iter()
        .map(|(key, data, _)| (key, data))
        .collect();
    assert_eq!(objects.len(), 2, "{:?}", objects.keys());
    for (name, body) in &bodies[4..] {
        let notification: Value = serde_json::from_slice(body).expect("json");
        let key = archive_key(
            PREFIX,
            notification["app_id"].as_str().expect("app_id"),
            notification["topic"].as_str().expect("topic"),
            notification["created_at"].as_i64().expect("created_at"),
            Some(&id_of(body)),
            body,
        );
        assert_eq!(objects.get(&key), Some(body), "{name}");
    }

    let written = aws.flush_streams().await.keys;
    let mut lines: BTreeMap<String, Vec<ArchiveRecord>> = BTreeMap::new();
    let mut partitions = BTreeSet::new();
    for (key, data, _) in moto.objects(&bucket).await {
        let Some(after) = key.strip_prefix(&format!("{PREFIX}{STREAM_PREFIX}")) else {
            continue;
        };
        assert!(written.contains(&key) && key.ends_with(".gz"), "{key}");
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(data.as_slice())
            .read_to_string(&mut text)
            .expect("gzip");
        for line in text.lines() {
            let record = ArchiveRecord::parse(line).expect("an archive line");
            let partition = format!(
                "app_id={}/dt={}/",
                record.app_id,
                intercom_webhook::destination::utc_date(record.created_at)
            );
            assert!(after.starts_with(&partition), "{key} holds {partition}");
            partitions.insert(partition);
            lines
                .entry(record.id.clone().expect("id"))
                .or_default()
                .push(record);
        }
    }
    assert_eq!(
        lines.len(),
        bodies.len(),
        "a line for each notification: {:?}",
        lines.keys()
    );
    for (name, body) in &bodies {
        let id = id_of(body);
        let record = &lines[&id][0];
        assert_eq!(
            record.signature.as_deref(),
            Some(sign(body).as_str()),
            "{name}"
        );
        assert_eq!(
            record.received_at.as_deref(),
            Some("2026-11-30T09:00:00.000Z")
        );
        if name == "m-line" {
            assert_eq!(record.body, None);
            assert!(
                record
                    .object
                    .as_deref()
                    .is_some_and(|k| objects.contains_key(k)),
                "{record:?}"
            );
        } else {
            assert_eq!(
                record.body.as_deref(),
                Some(body.as_slice()),
                "{name}: byte for byte"
            );
        }
    }
    assert_eq!(
        lines[&id_of(&bodies[0].1)].len(),
        2,
        "the retry is a second line"
    );
    // Every topic of a day in one object an interval: the objects are
    // Firehose's and S3's billed units, so the stream's cost does not grow
    // with the topics a workspace subscribes to.
    let topics: BTreeSet<&str> = lines.values().flatten().map(|r| r.topic.as_str()).collect();
    assert!(
        topics.len() >= 4 && partitions.len() < topics.len(),
        "{topics:?} in {partitions:?}"
    );
    assert_eq!(
        written
            .iter()
            .filter(|k| k.starts_with(&format!("{PREFIX}{STREAM_PREFIX}")))
            .count(),
        partitions.len(),
        "one object per app and day: {written:?}"
    );

    let replay_to = |queue: &str, more: &[&str]| {
        let archive = ["--bucket", bucket.as_str(), "--prefix", PREFIX];
        let args = [&archive[..], &["--queue-url", queue], more].concat();
        intercom_dev_replay(&aws.endpoint(), &args)
    };
    // One family's replay takes its lines out of the shared partitions.
    let tickets = moto.create_queue("tickets-replayed").await;
    let (output, ok) = replay_to(&tickets, &["--topic", "ticket.*"]);
    assert!(ok, "{output}");
    assert!(
        output.contains("replayed 2 of 2 matching notification(s)"),
        "{output}"
    );
    let mut replayed: Vec<String> = moto
        .drain(&tickets)
        .await
        .iter()
        .map(|m| id_of(m.body().unwrap_or_default().as_bytes()))
        .collect();
    replayed.sort();
    assert_eq!(replayed, ["notif_stream_0", "notif_stream_pretty"]);

    // Replay reads both: each notification queued once, as archived.
    let target = moto.create_queue("replayed").await;
    let (output, ok) = replay_to(&target, &[]);
    assert!(ok, "{output}");
    let count = bodies.len();
    assert!(
        output.contains(&format!(
            "replayed {count} of {count} matching notification(s)"
        )),
        "{output}"
    );
    let mut queued: Vec<Vec<u8>> = Vec::new();
    loop {
        let batch = moto.drain(&target).await;
        if batch.is_empty() {
            break;
        }
        queued.extend(
            batch
                .iter()
                .map(|m| m.body().unwrap_or_default().as_bytes().to_vec()),
        );
    }
    let mut expected: Vec<Vec<u8>> = bodies.iter().map(|(_, b)| b.clone()).collect();
    // The first copy of the retried notification is the one replayed.
    expected.sort();
    queued.sort();
    assert_eq!(queued.len(), count);
    assert_eq!(queued, expected);
}

/// A line Firehose refuses fails its record, retryably, and says why; the
/// same record goes through once the stream takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_the_stream_refuses_fails_its_record_until_the_stream_takes_it() {
    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let bucket = moto.create_bucket("intercom-archive").await;
    let processor = Function::start(
        "topic-processor",
        None,
        &[
            ("AWS_ENDPOINT_URL", aws.endpoint()),
            ("ARCHIVE_BUCKET", bucket.clone()),
            ("ARCHIVE_STREAM", "intercom-archive".to_owned()),
        ],
    )
    .await;
    let event = standard_event(&[("m-1".to_owned(), samples::sample_body(Topic::TicketCreated))]);
    let response = processor.invoke(&event).await;
    assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m-1");
    let lines = processor
        .json_logs_when(1, |l| l["message"] == "record")
        .await;
    assert_eq!(lines[0]["reason"], "destination_failed", "{:?}", lines[0]);
    assert_eq!(lines[0]["retryable"], true);
    assert!(
        lines[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("archive stream intercom-archive")),
        "{:?}",
        lines[0]
    );

    Moto::create_archive_stream(&aws.endpoint(), "intercom-archive", &bucket, PREFIX).await;
    assert_eq!(
        processor.invoke(&event).await,
        json!({"batchItemFailures": []})
    );
    assert_eq!(aws.flush_streams().await.keys.len(), 1);
}
