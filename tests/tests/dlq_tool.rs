//! `intercom-dev dlq` against moto behind the AWS rules proxy: list (lines and JSON, filtered, limited), show, redrive (dry and real, filtered batch by batch, unfiltered by a message move task), a list and a redrive longer than the visibility timeout, FIFO groups moved whole or named, and clear errors.

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use intercom_webhook::topic::Topic;
use pipeline_tests::aws_rules::AwsRules;
use pipeline_tests::function::binary;
use pipeline_tests::moto::{self, Moto};
use pipeline_tests::samples;
use serde_json::{Value, json};

/// Runs `intercom-dev dlq` with `args` against `endpoint` (the AWS rules
/// proxy in front of moto, or moto); its stdout, stderr and success. A run
/// that has not ended after two minutes is stopped (`timeout`) and fails.
fn dlq(endpoint: &str, args: &[&str]) -> (String, String, bool) {
    let output = Command::new("timeout")
        .arg("120")
        .arg(binary("intercom-dev"))
        .arg("dlq")
        .args(args)
        .env_clear()
        .envs(moto::cli_env(endpoint))
        .output()
        .expect("run intercom-dev dlq");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_redrive_the_dead_letter_queue() {
    let moto = Moto::start().await;
    // Message move tasks and FIFO deduplication as SQS does them.
    let aws = AwsRules::start(moto.port).await;
    let endpoint = aws.endpoint();
    let sqs = moto.sqs().await;
    let dead = moto.create_queue("intercom-dlq.fifo").await;
    let source = moto.create_queue("intercom.fifo").await;
    sqs.set_queue_attributes()
        .queue_url(&source)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:intercom-dlq.fifo", "maxReceiveCount": 5}).to_string(),
        )
        .send()
        .await
        .expect("redrive policy");
    // Five dead messages as the receiver queued them: two tickets, a
    // conversation, a contact, and a poison body.
    let topics = [
        Some(Topic::TicketCreated),
        Some(Topic::TicketAdminReplied),
        Some(Topic::ConversationUserCreated),
        Some(Topic::ContactUserCreated),
        None,
    ];
    for (n, topic) in topics.iter().enumerate() {
        let (body, name) = match topic {
            Some(topic) => {
                let mut notification = samples::sample(*topic);
                notification["id"] = format!("notif_dead_{n}").into();
                (notification.to_string(), topic.name())
            }
            None => ("not a notification".to_owned(), "ping"),
        };
        let text = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .expect("attribute")
        };
        sqs.send_message()
            .queue_url(&dead)
            .message_body(body)
            .message_attributes("topic", text(name))
            .message_attributes("notification_id", text(&format!("notif_dead_{n}")))
            .message_group_id(format!("app:ticket:{n}"))
            .message_deduplication_id(format!("notif_dead_{n}"))
            .send()
            .await
            .expect("send");
    }

    let (out, err, ok) = dlq(&endpoint, &["list", "--queue-url", &dead]);
    assert!(ok, "{err}");
    assert!(out.contains("5 message(s)"), "{out}");
    assert!(
        out.contains("ticket.created") && out.contains("notif_dead_3"),
        "{out}"
    );
    let (out, err, ok) = dlq(
        &endpoint,
        &[
            "list",
            "--queue-url",
            &dead,
            "--topic",
            "ticket.*",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let listed: Vec<Value> = serde_json::from_str(&out).expect("JSON");
    assert_eq!(listed.len(), 2);
    for message in &listed {
        assert!(
            message["topic"]
                .as_str()
                .is_some_and(|t| t.starts_with("ticket."))
        );
        for field in [
            "message_id",
            "notification_id",
            "receive_count",
            "age_seconds",
        ] {
            assert!(!message[field].is_null(), "{field}: {message}");
        }
    }
    // Listing gave every message back: a second look sees all five.
    let (out, _, _) = dlq(&endpoint, &["list", "--queue-url", &dead]);
    assert!(out.contains("5 message(s)"), "{out}");

    let id = listed[0]["message_id"].as_str().expect("id");
    let (out, err, ok) = dlq(&endpoint, &["show", id, "--queue-url", &dead]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["message_id"], id);
    assert_eq!(shown["notification"]["topic"], listed[0]["topic"]);
    assert_eq!(
        shown["attributes"]["notification_id"],
        listed[0]["notification_id"]
    );
    let (_, err, ok) = dlq(&endpoint, &["show", "no-such-id", "--queue-url", &dead]);
    assert!(!ok && err.contains("no message no-such-id"), "{err}");

    // A dry run moves nothing.
    let (out, err, ok) = dlq(
        &endpoint,
        &[
            "redrive",
            "--queue-url",
            &dead,
            "--topic",
            "ticket.*",
            "--dry-run",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.matches("would move\n").count(), 2, "{out}");
    // The source found from the redrive policy, named as the proxy's SQS
    // names it.
    assert!(
        out.contains("would move 2 message(s) to http") && out.contains("/intercom.fifo;"),
        "{out}"
    );
    assert!(moto.drain(&source).await.is_empty());

    // The tickets back to the source (found from the redrive policy), with
    // their attributes and FIFO group, deduplicated by their message id in
    // the dead-letter queue; the rest stays.
    let (out, err, ok) = dlq(
        &endpoint,
        &["redrive", "--queue-url", &dead, "--topic", "ticket.*"],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("moved 2 message(s)"), "{out}");
    let moved = moto.drain(&source).await;
    assert_eq!(moved.len(), 2);
    for message in &moved {
        let attributes = message.message_attributes().expect("attributes");
        let notification = attributes["notification_id"].string_value().expect("id");
        let system = |name: MessageSystemAttributeName| {
            message.attributes().and_then(|a| a.get(&name)).cloned()
        };
        let dead_ids: Vec<&str> = listed
            .iter()
            .filter_map(|m| m["message_id"].as_str())
            .collect();
        let deduplication = system(MessageSystemAttributeName::MessageDeduplicationId);
        assert!(
            deduplication
                .as_deref()
                .is_some_and(|id| dead_ids.contains(&id)),
            "{deduplication:?} among {dead_ids:?}"
        );
        let n = notification.trim_start_matches("notif_dead_");
        assert_eq!(
            system(MessageSystemAttributeName::MessageGroupId),
            Some(format!("app:ticket:{n}"))
        );
        assert!(
            attributes["topic"]
                .string_value()
                .is_some_and(|t| t.starts_with("ticket."))
        );
    }
    let (out, _, _) = dlq(&endpoint, &["list", "--queue-url", &dead]);
    assert!(out.contains("3 message(s)"), "{out}");
    assert!(!out.contains("ticket."), "{out}");

    // Without a filter SQS moves the rest itself, and the tool waits.
    let (out, err, ok) = dlq(&endpoint, &["redrive", "--queue-url", &dead]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("message move task"), "{out}");
    assert!(out.contains("moved 3 message(s)"), "{out}");
    assert_eq!(moto.drain(&source).await.len(), 3);
    let (out, _, _) = dlq(&endpoint, &["list", "--queue-url", &dead]);
    assert!(out.contains("0 message(s)"), "{out}");

    // Clear errors: no such queue, no credentials.
    let missing = format!("{}/123456789012/nothing-here", moto.endpoint());
    let (_, err, ok) = dlq(&endpoint, &["list", "--queue-url", &missing]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let output = Command::new(binary("intercom-dev"))
        .args(["dlq", "list", "--queue-url", &dead])
        .env_clear()
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && err.contains("no AWS credentials"),
        "{err}"
    );
}

/// Puts notification `n` of `topic` in the queue `queue` as the receiver
/// would have queued it, in FIFO group `group` on a FIFO queue.
async fn put_dead(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    n: usize,
    topic: Topic,
    group: Option<&str>,
) {
    let mut notification = samples::sample(topic);
    notification["id"] = format!("notif_dead_{n}").into();
    let text = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .expect("attribute")
    };
    sqs.send_message()
        .queue_url(queue)
        .message_body(notification.to_string())
        .message_attributes("topic", text(topic.name()))
        .message_attributes("notification_id", text(&format!("notif_dead_{n}")))
        .set_message_group_id(group.map(str::to_owned))
        .set_message_deduplication_id(group.map(|_| format!("notif_dead_{n}")))
        .send()
        .await
        .expect("send");
}

/// The `notification_id` attributes of `messages`, in order.
fn notification_ids(messages: &[aws_sdk_sqs::types::Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| {
            m.message_attributes()?
                .get("notification_id")?
                .string_value()
        })
        .map(str::to_owned)
        .collect()
}

/// A redrive that lasts twice the visibility timeout (every send held 150
/// ms): each batch is moved and deleted within its own receive's
/// visibility, so every message arrives once and none is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_longer_than_the_visibility_timeout_moves_each_message_once() {
    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let sqs = moto.sqs().await;
    let dead = moto.create_queue("big-dlq").await;
    let source = moto.create_queue("big-source").await;
    for n in 0..40 {
        put_dead(&sqs, &dead, n, Topic::TicketCreated, None).await;
    }
    aws.hold_sends(Some(std::time::Duration::from_millis(150)));
    let started = std::time::Instant::now();
    let (out, err, ok) = dlq(
        &aws.endpoint(),
        &[
            "redrive",
            "--queue-url",
            &dead,
            "--to",
            &source,
            "--topic",
            "ticket.*",
            "--visibility-timeout",
            "3s",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(6),
        "the run lasted {:?}, not twice the visibility timeout",
        started.elapsed()
    );
    assert!(out.contains("moved 40 message(s)"), "{out}");
    let moved = notification_ids(&moto.drain(&source).await);
    let mut distinct = moved.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((moved.len(), distinct.len()), (40, 40), "{moved:?}");
    assert!(moto.drain(&dead).await.is_empty(), "nothing left behind");
}

/// A FIFO dead-letter queue with a group of 25 (more than one receive
/// returns): the group moves whole and in order. A group whose middle
/// message the filter leaves moves its first message only, keeps the rest
/// in order behind the one left, and is named in the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_group_moves_whole_and_in_order_or_is_named() {
    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let sqs = moto.sqs().await;
    let dead = moto.create_queue("fifo-dlq.fifo").await;
    let source = moto.create_queue("fifo-source.fifo").await;
    for n in 0..25 {
        put_dead(&sqs, &dead, n, Topic::TicketCreated, Some("app:ticket:big")).await;
    }
    for (n, topic) in [
        (100, Topic::TicketCreated),
        (101, Topic::ConversationUserCreated),
        (102, Topic::TicketAdminReplied),
    ] {
        put_dead(&sqs, &dead, n, topic, Some("app:ticket:mixed")).await;
    }
    let (out, err, ok) = dlq(
        &aws.endpoint(),
        &[
            "redrive",
            "--queue-url",
            &dead,
            "--to",
            &source,
            "--topic",
            "ticket.*",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("moved 26 message(s)"), "{out}");
    assert!(
        out.contains("FIFO group(s) app:ticket:mixed keep a message"),
        "{out}"
    );
    let moved = notification_ids(&moto.drain(&source).await);
    let big: Vec<String> = moved
        .iter()
        .filter(|id| id.trim_start_matches("notif_dead_").len() < 3)
        .cloned()
        .collect();
    let expected: Vec<String> = (0..25).map(|n| format!("notif_dead_{n}")).collect();
    assert_eq!(big, expected, "the whole group, in order");
    assert!(moved.contains(&"notif_dead_100".to_owned()), "{moved:?}");
    assert_eq!(
        notification_ids(&moto.drain(&dead).await),
        ["notif_dead_101", "notif_dead_102"],
        "the rest of the mixed group stays, in order"
    );
}

/// A queue whose reading lasts longer than the tool's hold (every SQS call
/// takes 150 ms, the hold is 2 s): `list` ends, lists each of the 200
/// messages once and leaves every one in the queue; `--limit` stops early
/// and says so; a filtered redrive as slow moves what it takes and counts
/// exactly what it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_longer_than_its_hold_reads_each_message_once_and_leaves_them_all() {
    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let sqs = moto.sqs().await;
    let dead = moto.create_queue("slow-dlq").await;
    let source = moto.create_queue("slow-source").await;
    let count = 200;
    for n in 0..count {
        let topic = if n % 2 == 0 {
            Topic::TicketCreated
        } else {
            Topic::ContactUserCreated
        };
        put_dead(&sqs, &dead, n, topic, None).await;
    }
    let everyone: Vec<String> = {
        let mut ids: Vec<String> = (0..count).map(|n| format!("notif_dead_{n}")).collect();
        ids.sort();
        ids
    };
    aws.sqs_latency(Some(std::time::Duration::from_millis(150)));
    let before = aws.calls().len();
    let started = std::time::Instant::now();
    let (out, err, ok) = dlq(
        &aws.endpoint(),
        &[
            "list",
            "--queue-url",
            &dead,
            "--json",
            "--visibility-timeout",
            "2s",
        ],
    );
    let took = started.elapsed();
    assert!(ok, "{err}");
    assert!(
        took > std::time::Duration::from_secs(3),
        "the reading took {took:?}, not longer than the 2 s hold"
    );
    let listed: Vec<Value> = serde_json::from_str(&out).expect("JSON");
    let mut ids: Vec<String> = listed
        .iter()
        .map(|m| m["notification_id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, everyone, "each message listed once");
    // No hold ran out: each message was received once (20 full receives
    // and the empty one that ends the reading), holds were extended and
    // given back in batches.
    let calls = aws.calls();
    let count_of = |action: &str| {
        calls[before..]
            .iter()
            .filter(|c| c.action == action)
            .count()
    };
    assert_eq!(count_of("sqs:ReceiveMessage"), count / 10 + 1);
    assert!(count_of("sqs:ChangeMessageVisibilityBatch") > count / 10);
    aws.sqs_latency(None);
    let mut left = notification_ids(&moto.drain(&dead).await);
    left.sort();
    assert_eq!(left, everyone, "every message left in the queue, visible");
    for n in 0..count {
        let topic = if n % 2 == 0 {
            Topic::TicketCreated
        } else {
            Topic::ContactUserCreated
        };
        put_dead(&sqs, &dead, n, topic, None).await;
    }

    let (out, err, ok) = dlq(
        &aws.endpoint(),
        &["list", "--queue-url", &dead, "--limit", "15"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("15 message(s); stopped at --limit: the queue holds more"),
        "{out}"
    );
    let (_, err, ok) = dlq(
        &aws.endpoint(),
        &["list", "--queue-url", &dead, "--limit", "0"],
    );
    assert!(!ok && err.contains("--limit"), "{err}");

    aws.sqs_latency(Some(std::time::Duration::from_millis(40)));
    let (out, err, ok) = dlq(
        &aws.endpoint(),
        &[
            "redrive",
            "--queue-url",
            &dead,
            "--to",
            &source,
            "--topic",
            "ticket.*",
            "--visibility-timeout",
            "2s",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!(
            "moved {} message(s) to {source}; 0 failed (left in the dead-letter queue); {} not matching left there; {count} read",
            count / 2,
            count / 2
        )),
        "{out}"
    );
    aws.sqs_latency(None);
    let moved = notification_ids(&moto.drain(&source).await);
    let left = notification_ids(&moto.drain(&dead).await);
    assert_eq!((moved.len(), left.len()), (count / 2, count / 2));
    let mut all: Vec<String> = moved.into_iter().chain(left).collect();
    all.sort();
    assert_eq!(all, everyone, "each message once, moved or left");
}

/// A benchmark, not run by default: `dlq list` on a dead-letter queue of
/// `DLQ_BENCH_MESSAGES` messages (100,000) through the rules proxy with
/// every SQS call held `DLQ_BENCH_LATENCY_MS` (20 ms, SQS's usual answer
/// within a region). Prints the time, the calls by action and the tool's
/// peak memory; checks that each message is listed once and all are left.
/// BENCHMARKS.md has the figures and the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark (BENCHMARKS.md): minutes"]
async fn benchmark_dlq_list_on_a_large_queue() {
    let count: usize = std::env::var("DLQ_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let latency: u64 = std::env::var("DLQ_BENCH_LATENCY_MS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let sqs = moto.sqs().await;
    let dead = moto.create_queue("bench-dlq").await;
    let filling = std::time::Instant::now();
    let mut notification = samples::sample(Topic::TicketCreated);
    let text = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .expect("attribute")
    };
    let mut sends = tokio::task::JoinSet::new();
    for first in (0..count).step_by(10) {
        let mut entries = Vec::new();
        for n in first..(first + 10).min(count) {
            notification["id"] = format!("notif_bench_{n}").into();
            entries.push(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .message_body(notification.to_string())
                    .message_attributes("topic", text("ticket.created"))
                    .message_attributes("notification_id", text(&format!("notif_bench_{n}")))
                    .build()
                    .expect("entry"),
            );
        }
        let send = sqs
            .send_message_batch()
            .queue_url(&dead)
            .set_entries(Some(entries));
        while sends.len() >= 8 {
            sends.join_next().await;
        }
        sends.spawn(async move { send.send().await.expect("send a batch") });
    }
    while sends.join_next().await.is_some() {}
    eprintln!("filled {count} messages in {:.1?}", filling.elapsed());

    aws.sqs_latency(Some(std::time::Duration::from_millis(latency)));
    let before = aws.calls().len();
    let started = std::time::Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(binary("intercom-dev"))
        .args(["dlq", "list", "--queue-url", &dead])
        .env_clear()
        .envs(moto::cli_env(&aws.endpoint()))
        .output()
        .expect("run intercom-dev dlq list");
    let took = started.elapsed();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    let peak_kib = err.lines().last().unwrap_or_default().trim().to_owned();
    // Calls by action, and the time their answers took at the proxy (the
    // latency added, and moto's own time).
    let mut calls: BTreeMap<String, (usize, std::time::Duration)> = BTreeMap::new();
    for call in &aws.calls()[before..] {
        let entry = calls.entry(call.action.clone()).or_default();
        entry.0 += 1;
        entry.1 += call.elapsed;
    }
    let mut ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|id| id.starts_with("notif_bench_"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "each message listed once");
    assert!(
        out.contains(&format!("\n{count} message(s)")),
        "{}",
        &out[out.len().saturating_sub(300)..]
    );
    eprintln!(
        "dlq list: {count} messages, {latency} ms per SQS call: {took:.1?}; peak RSS {peak_kib} KiB; calls {calls:?}"
    );
    aws.sqs_latency(None);
    let left = moto.drain(&dead).await.len();
    assert_eq!(left, count, "every message left in the queue");
}
