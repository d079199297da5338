//! `intercom-dev dlq` against moto's SQS: list (lines and JSON, filtered), show, redrive (dry and real, filtered, FIFO ids kept), and clear errors.

use std::process::Command;

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use intercom_webhook::topic::Topic;
use pipeline_tests::function::release_binary;
use pipeline_tests::moto::{self, Moto};
use pipeline_tests::samples;
use serde_json::{Value, json};

fn dlq(moto: &Moto, args: &[&str]) -> (String, String, bool) {
    let output = Command::new(release_binary("intercom-dev"))
        .arg("dlq")
        .args(args)
        .env_clear()
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_REGION", moto::REGION)
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
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

    let (out, err, ok) = dlq(&moto, &["list", "--queue-url", &dead]);
    assert!(ok, "{err}");
    assert!(out.contains("5 message(s)"), "{out}");
    assert!(
        out.contains("ticket.created") && out.contains("notif_dead_3"),
        "{out}"
    );
    let (out, err, ok) = dlq(
        &moto,
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
    let (out, _, _) = dlq(&moto, &["list", "--queue-url", &dead]);
    assert!(out.contains("5 message(s)"), "{out}");

    let id = listed[0]["message_id"].as_str().expect("id");
    let (out, err, ok) = dlq(&moto, &["show", id, "--queue-url", &dead]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["message_id"], id);
    assert_eq!(shown["notification"]["topic"], listed[0]["topic"]);
    assert_eq!(
        shown["attributes"]["notification_id"],
        listed[0]["notification_id"]
    );
    let (_, err, ok) = dlq(&moto, &["show", "no-such-id", "--queue-url", &dead]);
    assert!(!ok && err.contains("no message no-such-id"), "{err}");

    // A dry run moves nothing.
    let (out, err, ok) = dlq(
        &moto,
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
    assert!(
        out.contains(&format!("would move 2 message(s) to {source}")),
        "{out}"
    );
    assert!(moto.drain(&source).await.is_empty());

    // The tickets back to the source (found from the redrive policy), with
    // their attributes and FIFO ids; the rest stays.
    let (out, err, ok) = dlq(
        &moto,
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
        assert_eq!(
            system(MessageSystemAttributeName::MessageDeduplicationId).as_deref(),
            Some(notification)
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
    let (out, _, _) = dlq(&moto, &["list", "--queue-url", &dead]);
    assert!(out.contains("3 message(s)"), "{out}");
    assert!(!out.contains("ticket."), "{out}");

    // Clear errors: no such queue, no credentials.
    let missing = format!("{}/123456789012/nothing-here", moto.endpoint());
    let (_, err, ok) = dlq(&moto, &["list", "--queue-url", &missing]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let output = Command::new(release_binary("intercom-dev"))
        .args(["dlq", "list", "--queue-url", &dead])
        .env_clear()
        .env("AWS_ENDPOINT_URL", moto.endpoint())
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
