//! Failing handlers and poison records under load: exactly they reach the dead-letter queue, after the redrive count, and nothing else is processed twice.
//!
//! Real processor binaries, with idempotency on (moto's DynamoDB), are fed as
//! Lambda's event source mapping would (receive, invoke, delete what did not
//! fail) from a moto queue with a redrive policy; moto moves a message to the
//! dead-letter queue once it has been received the maximum number of times.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use intercom_webhook::topic::Topic;
use pipeline_tests::event_source::EventSource;
use pipeline_tests::function::Function;
use pipeline_tests::load::setting;
use pipeline_tests::moto::Moto;
use pipeline_tests::samples;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_and_poison_records_reach_the_dead_letter_queue_after_the_redrive_count() {
    const MAX_RECEIVES: usize = 3;
    // Long enough that a record is never redelivered while its batch is
    // still being processed (moto answers slowly under load, and a record
    // seen again after its visibility timeout is SQS's at-least-once, not a
    // fault of ours); failed records come back after it.
    const VISIBILITY_SECONDS: i32 = 8;
    let count = setting("FAULT_RECORDS", 600);
    let moto = Moto::start().await;
    let sqs = moto.sqs().await;
    let dlq = moto.create_queue("records-dlq").await;
    let dlq_arn = "arn:aws:sqs:us-east-1:123456789012:records-dlq";
    let queue = moto.create_queue("records").await;
    sqs.set_queue_attributes()
        .queue_url(&queue)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}).to_string(),
        )
        .send()
        .await
        .expect("redrive policy");

    // 5% poison (not a notification), 5% a ticket reply without its ticket
    // (the shipped handler fails it permanently), the rest samples of every
    // topic, each with its own id.
    let mut poison = HashSet::new();
    let mut failing = HashSet::new();
    let mut good = HashSet::new();
    let mut bodies = Vec::new();
    for i in 0..count {
        let id = format!("notif_record_{i}");
        let body = match i % 20 {
            0 => {
                poison.insert(format!("poison {i}"));
                format!("poison {i}: this is not a notification")
            }
            1 => {
                failing.insert(id.clone());
                samples::envelope(
                    "ticket.admin.replied",
                    Some(&id),
                    json!({"type": "ticket_ticket_part", "ticket_part": {"id": "1"}}),
                )
                .to_string()
            }
            _ => {
                let topic = Topic::ALL[i % Topic::ALL.len()];
                let mut sample = samples::sample(topic);
                if topic != Topic::Ping {
                    sample["id"] = Value::String(id.clone());
                    good.insert(id);
                }
                sample.to_string()
            }
        };
        bodies.push(body);
    }
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(n, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .message_body(body)
                    .build()
                    .expect("entry")
            })
            .collect();
        let sent = sqs
            .send_message_batch()
            .queue_url(&queue)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("send batch");
        assert!(sent.failed.is_empty());
    }

    // The event source mapping: receive up to 10, invoke, delete what did not
    // fail; failed records come back after their visibility timeout.
    // Idempotency is on, as the stack deploys it: a failing record's lock is
    // released each time, so every retry runs until the redrive count.
    let table = moto.create_idempotency_table("records-idempotency").await;
    let source = EventSource {
        sqs: sqs.clone(),
        queue_url: queue.clone(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:records".into(),
        batch_size: 10,
        visibility_seconds: VISIBILITY_SECONDS,
    };
    let env = [("IDEMPOTENCY_TABLE", table.clone())];
    let processors = [
        Function::start("topic-processor", Some(&moto), &env).await,
        Function::start("topic-processor", Some(&moto), &env).await,
        Function::start("topic-processor", Some(&moto), &env).await,
        Function::start("topic-processor", Some(&moto), &env).await,
    ];
    let expected_dead = poison.len() + failing.len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let mut dead = Vec::new();
    while dead.len() < expected_dead {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {expected_dead} reached the dead-letter queue in time",
            dead.len()
        );
        if source.round(&processors).await == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        dead.extend(moto.drain(&dlq).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dead.extend(moto.drain(&dlq).await);
    assert!(moto.drain(&queue).await.is_empty(), "the queue is empty");

    let dead_bodies: Vec<&str> = dead.iter().filter_map(|m| m.body()).collect();
    let dead_poison: HashSet<String> = dead_bodies
        .iter()
        .filter_map(|b| b.split(':').next().filter(|p| p.starts_with("poison")))
        .map(str::to_owned)
        .collect();
    let dead_failing: HashSet<String> = dead_bodies
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(dead.len(), expected_dead, "nothing else is dead");
    assert_eq!(dead_poison, poison);
    assert_eq!(dead_failing, failing);

    // Every record's log lines: a good one is processed once and never
    // failed (when moto is slow, SQS may deliver it again after its
    // visibility timeout; idempotency makes every later delivery a
    // `duplicate`); a dead one failed exactly the redrive count and was never
    // processed.
    let mut outcomes: HashMap<String, Vec<String>> = HashMap::new();
    for processor in &processors {
        for line in processor
            .json_logs()
            .into_iter()
            .filter(|l| l["message"] == "record")
        {
            let key = line["notification_id"]
                .as_str()
                .or(line["message_id"].as_str())
                .unwrap_or_default()
                .to_owned();
            outcomes
                .entry(key)
                .or_default()
                .push(line["outcome"].as_str().unwrap_or_default().to_owned());
        }
    }
    for id in &good {
        let seen = outcomes.get(id).cloned().unwrap_or_default();
        let ran: Vec<&String> = seen.iter().filter(|o| *o != "duplicate").collect();
        assert!(
            ran.len() == 1 && (ran[0] == "processed" || ran[0] == "unhandled"),
            "{id}: {seen:?}"
        );
        let item = moto
            .idempotency_item(&table, &format!("topic-processor#{id}"))
            .await
            .unwrap_or_default();
        assert_eq!(
            item.get("status").map(String::as_str),
            Some("COMPLETED"),
            "{id}"
        );
    }
    for id in &failing {
        let item = moto
            .idempotency_item(&table, &format!("topic-processor#{id}"))
            .await;
        assert_eq!(item, None, "{id}: a failed record's lock is released");
    }
    for id in &failing {
        assert_eq!(outcomes.get(id).map(Vec::len), Some(MAX_RECEIVES), "{id}");
        assert!(outcomes[id].iter().all(|o| o == "failed"), "{id}");
    }
    let failed_lines: usize = outcomes
        .values()
        .flatten()
        .filter(|o| *o == "failed")
        .count();
    assert_eq!(failed_lines, expected_dead * MAX_RECEIVES, "failed lines");
    eprintln!(
        "faults: {count} records by 4 processors: {} processed or unhandled once each, {} poison and {} failing reached the dead-letter queue after {MAX_RECEIVES} receives each",
        good.len(),
        poison.len(),
        failing.len()
    );
}
