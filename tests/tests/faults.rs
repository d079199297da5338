//! Faults under load: the queue server hangs and its network path is cut mid-run, handlers fail and poison records arrive; nothing is lost.
//!
//! The receiver half runs a fleet of real receiver binaries against moto
//! through a proxy, freezes moto (SIGSTOP, a hung server) and later cuts the
//! proxy (the server gone: connections reset, new ones refused), then brings
//! each back. moto keeps its state in memory, so killing its process would
//! lose messages SQS had acknowledged, which no client can prevent and real
//! SQS never does; the proxy cut is how the server "goes away" here.
//!
//! The processor half runs real processor binaries as Lambda's event source
//! mapping would (receive, invoke, delete what did not fail) on a queue with
//! a redrive policy, and counts what lands in the dead-letter queue.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use intercom_webhook::topic::Topic;
use pipeline_tests::function::Function;
use pipeline_tests::load::{Fleet, mix, percentile};
use pipeline_tests::moto::{Moto, sqs_event};
use pipeline_tests::proxy::Proxy;
use pipeline_tests::samples;
use serde_json::{Value, json};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_and_a_vanished_queue_lose_nothing_and_every_answer_comes_within_3_s() {
    let count = setting("FAULT_NOTIFICATIONS", 1_000);
    let moto = Moto::start().await;
    let queue = moto.create_queue("faults.fifo").await;
    let proxy = Proxy::start(moto.port).await;
    let fleet = Fleet::start(8, &moto, &queue, &proxy.endpoint()).await;
    let deliveries = mix(count, "fault", 0xfa17);
    let drainer = moto.start_draining(&queue).await;

    let faults = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        moto.pause();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        moto.resume();
        tokio::time::sleep(Duration::from_secs(4)).await;
        proxy.cut();
        tokio::time::sleep(Duration::from_secs(2)).await;
        proxy.restore().await;
    };
    let (answers, ()) = tokio::join!(
        fleet.deliver(deliveries.iter().map(|d| d.event.clone()).collect()),
        faults
    );

    let mut unavailable = Vec::new();
    for (delivery, answer) in deliveries.iter().zip(&answers) {
        assert!(
            answer.latency < Duration::from_secs(3),
            "{} answered in {:?}",
            delivery.id,
            answer.latency
        );
        match (delivery.expected, answer.status) {
            (expected, Some(status)) if status == expected => {}
            (202, Some(503)) => unavailable.push(delivery),
            (expected, status) => panic!("{}: expected {expected}, got {status:?}", delivery.id),
        }
    }
    let latencies: Vec<Duration> = answers.iter().map(|a| a.latency).collect();
    eprintln!(
        "faults: {count} deliveries, {} answered 503 while the queue hung or was cut; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        unavailable.len(),
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        percentile(&latencies, 100.0).as_secs_f64() * 1e3,
    );
    assert!(
        !unavailable.is_empty(),
        "the faults did not hit any request; the test proves nothing"
    );

    // Intercom retries what was not acknowledged; now the queue is back.
    let retried = fleet
        .deliver(unavailable.iter().map(|d| d.event.clone()).collect())
        .await;
    for (delivery, answer) in unavailable.iter().zip(&retried) {
        assert_eq!(answer.status, Some(202), "{} on retry", delivery.id);
    }

    let messages = drainer.finish().await;
    let accepted: HashMap<&str, &[u8]> = deliveries
        .iter()
        .filter(|d| d.expected == 202)
        .map(|d| (d.id.as_str(), d.body.as_slice()))
        .collect();
    let retried_ids: HashSet<&str> = unavailable.iter().map(|d| d.id.as_str()).collect();
    let mut copies: HashMap<String, usize> = HashMap::new();
    for message in &messages {
        let id = message
            .message_attributes()
            .and_then(|a| a.get("notification_id"))
            .and_then(|v| v.string_value())
            .expect("notification_id")
            .to_owned();
        assert_eq!(
            accepted.get(id.as_str()).copied(),
            message.body().map(str::as_bytes),
            "{id}: queued but never sent, or not byte for byte"
        );
        let deduplication = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageDeduplicationId))
            .map(String::as_str);
        assert_eq!(deduplication, Some(id.as_str()), "deduplication id");
        *copies.entry(id).or_default() += 1;
    }
    let missing: Vec<_> = accepted
        .keys()
        .filter(|id| !copies.contains_key(**id))
        .collect();
    assert!(missing.is_empty(), "accepted but lost: {missing:?}");
    // An attempt the queue took but whose answer the fault swallowed is in the
    // queue and is retried too. Only those can appear twice, and every copy
    // carries the notification id as its deduplication id, so SQS (whose
    // deduplication lasts five minutes; moto's ends at deletion) keeps one.
    let extra: Vec<_> = copies
        .iter()
        .filter(|(id, n)| **n > 1 && !retried_ids.contains(id.as_str()))
        .collect();
    assert!(extra.is_empty(), "duplicated without a 503: {extra:?}");
    eprintln!(
        "faults: {} notifications queued; {} of the {} retried had also been taken by the queue before the fault",
        copies.len(),
        copies.values().filter(|n| **n > 1).count(),
        unavailable.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_and_poison_records_reach_the_dead_letter_queue_after_the_redrive_count() {
    const MAX_RECEIVES: usize = 3;
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
    let arn = "arn:aws:sqs:us-east-1:123456789012:records";
    let processors = [
        Function::start("topic-processor", None, &[]).await,
        Function::start("topic-processor", None, &[]).await,
        Function::start("topic-processor", None, &[]).await,
        Function::start("topic-processor", None, &[]).await,
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
        let mut invocations = Vec::new();
        for processor in &processors {
            let batch = sqs
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(10)
                .visibility_timeout(1)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive")
                .messages
                .unwrap_or_default();
            if batch.is_empty() {
                continue;
            }
            let (sqs, queue) = (&sqs, &queue);
            invocations.push(async move {
                let response = processor.invoke(&sqs_event(&batch, arn)).await;
                let failed: HashSet<&str> = response["batchItemFailures"]
                    .as_array()
                    .expect("batchItemFailures")
                    .iter()
                    .filter_map(|f| f["itemIdentifier"].as_str())
                    .collect();
                for message in batch
                    .iter()
                    .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
                {
                    sqs.delete_message()
                        .queue_url(queue)
                        .receipt_handle(message.receipt_handle().expect("handle"))
                        .send()
                        .await
                        .expect("delete");
                }
            });
        }
        if invocations.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        futures_util::future::join_all(invocations).await;
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
    // failed; a dead one failed exactly the redrive count and was never
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
        assert!(
            seen.len() == 1 && (seen[0] == "processed" || seen[0] == "unhandled"),
            "{id}: {seen:?}"
        );
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
