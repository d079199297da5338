//! End to end through the release binaries: signed notifications → `webhook-receiver` →
//! moto's SQS → messages received → `topic-processor` → batch response and log lines.

use std::collections::{BTreeSet, HashMap};

use intercom_webhook::topic::{Family, Topic};
use pipeline_tests::fixtures::{Request, Shape};
use pipeline_tests::function::Function;
use pipeline_tests::moto::{Moto, sqs_event};
use pipeline_tests::samples;
use serde_json::json;

/// One topic of every family, plus the topics the shipped handlers take.
fn topics() -> Vec<Topic> {
    let mut families = BTreeSet::new();
    let mut topics: Vec<Topic> = Topic::ALL
        .iter()
        .copied()
        .filter(|t| families.insert(t.family()))
        .collect();
    topics.extend([
        Topic::ConversationUserCreated,
        Topic::ContactUserCreated,
        Topic::TicketAdminReplied,
        Topic::TicketCreated,
    ]);
    topics.sort();
    topics.dedup();
    topics
}

/// The SQS event Lambda would deliver for `messages`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_notifications_of_every_family_are_queued_and_processed() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom.fifo").await;
    let receiver = Function::receiver(&moto, &queue, &[]).await;

    let topics = topics();
    assert!(topics.len() >= 20, "{} topics", topics.len());
    let mut queued = HashMap::new();
    for topic in &topics {
        let body = samples::sample_body(*topic);
        let response = receiver
            .invoke(&Request::signed(&body).event(Shape::ApiGatewayV2))
            .await;
        let expected = if *topic == Topic::Ping { 200 } else { 202 };
        assert_eq!(response["statusCode"], expected, "{topic}: {response}");
        if *topic != Topic::Ping {
            queued.insert(topic.name().to_owned(), body);
        }
    }
    // A forged notification is refused and never reaches the queue.
    let forged = samples::sample_body(Topic::ConversationAdminClosed);
    let forged_event = Request::with_signature(
        &forged,
        &pipeline_tests::fixtures::sign_with("forged", &forged),
    )
    .event(Shape::ApiGatewayV2);
    assert_eq!(receiver.invoke(&forged_event).await["statusCode"], 401);

    let messages = moto.drain(&queue).await;
    assert_eq!(messages.len(), queued.len());
    for message in &messages {
        let topic = message
            .message_attributes()
            .and_then(|a| a.get("topic"))
            .and_then(|v| v.string_value())
            .expect("topic");
        assert_eq!(
            message.body().map(str::as_bytes),
            queued.get(topic).map(Vec::as_slice),
            "{topic} byte for byte"
        );
    }

    let processor = Function::start("topic-processor", None, &[]).await;
    let arn = "arn:aws:sqs:us-east-1:123456789012:intercom.fifo";
    for batch in messages.chunks(10) {
        let response = processor.invoke(&sqs_event(batch, arn)).await;
        assert_eq!(
            response,
            json!({"batchItemFailures": []}),
            "{:?}",
            processor.logs()
        );
    }

    let records = processor
        .json_logs_when(messages.len(), |l| l["message"] == "record")
        .await;
    assert_eq!(records.len(), messages.len(), "one line per record");
    let handled: BTreeSet<&str> = [
        "conversation.user.created",
        "contact.user.created",
        "ticket.admin.replied",
    ]
    .into();
    for line in &records {
        let topic = line["topic"].as_str().expect("topic");
        let family = Topic::from_name(topic).family();
        let expected = if handled.contains(topic) || family == Family::Ticket {
            "processed"
        } else {
            "unhandled"
        };
        assert_eq!(line["outcome"], expected, "{line}");
        assert!(
            line["notification_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("notif_")),
            "{line}"
        );
        assert!(
            line["message_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        assert!(line["lag_ms"].as_i64().is_some_and(|lag| lag > 0), "{line}");
        assert_eq!(line["level"], "INFO");
    }
    let all = processor.logs().join("\n");
    assert!(
        !all.contains("invoice shows the wrong VAT"),
        "bodies are not logged at INFO"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_fails_alone_and_holds_back_only_its_group() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom.fifo").await;
    let sqs = moto.sqs().await;
    let good = samples::sample_body(Topic::ConversationUserCreated);
    let sends = [
        (
            "poison-group",
            "this is not a notification".to_owned(),
            "p1",
        ),
        (
            "poison-group",
            String::from_utf8(good.clone()).expect("utf8"),
            "p2",
        ),
        ("other-group", String::from_utf8(good).expect("utf8"), "o1"),
    ];
    for (group, body, dedup) in sends {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(dedup)
            .send()
            .await
            .expect("send");
    }
    let messages = moto.drain(&queue).await;
    assert_eq!(messages.len(), 3);
    let processor = Function::start("topic-processor", None, &[]).await;
    let response = processor
        .invoke(&sqs_event(
            &messages,
            "arn:aws:sqs:us-east-1:123456789012:intercom.fifo",
        ))
        .await;
    let failed: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().expect("id"))
        .collect();
    let ids: Vec<&str> = messages
        .iter()
        .map(|m| m.message_id().expect("id"))
        .collect();
    assert_eq!(
        failed,
        vec![ids[0], ids[1]],
        "the poison record and the one behind it in its group"
    );
    let outcomes: Vec<(String, String)> = processor
        .json_logs_when(3, |l| l["message"] == "record")
        .await
        .into_iter()
        .map(|l| {
            (
                l["message_id"].as_str().unwrap_or_default().to_owned(),
                l["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (ids[0].to_owned(), "failed".to_owned()),
            (ids[1].to_owned(), "failed".to_owned()),
            (ids[2].to_owned(), "processed".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_configuration_errors_are_init_errors() {
    let mut processor = Function::start(
        "topic-processor",
        None,
        &[("RECORD_CONCURRENCY", "lots".to_owned())],
    )
    .await;
    processor.expect_init_error("RECORD_CONCURRENCY").await;
}
