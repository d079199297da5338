//! `intercom-dev backfill` after a receiver outage: Intercom's stand-in sends, some notifications are lost, and the backfill queues exactly the objects that changed without one, once.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use intercom_mock::MockIntercom;
use intercom_webhook::topic::Topic;
use pipeline_tests::aws_rules::AwsRules;
use pipeline_tests::fixtures::{Request, Shape, TEST_SECRET, sign};
use pipeline_tests::function::Function;
use pipeline_tests::moto::{Moto, sqs_event};
use pipeline_tests::samples;
use serde_json::{Value, json};

const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:intercom.fifo";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

/// Runs `intercom-dev backfill` against moto and the mock; output, success.
fn backfill(endpoint: &str, intercom: &str, args: &[&str]) -> (String, bool) {
    let output = std::process::Command::new(pipeline_tests::function::binary("intercom-dev"))
        .arg("backfill")
        .args(args)
        .env_clear()
        .envs(pipeline_tests::moto::cli_env(endpoint))
        .env("INTERCOM_CLIENT_SECRET", TEST_SECRET)
        .env("INTERCOM_API_URL", intercom)
        .env("INTERCOM_ACCESS_TOKEN", "tok")
        .output()
        .expect("run intercom-dev backfill");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (text, output.status.success())
}

/// Intercom's notification of `topic` about `object` (its `type` and
/// `id`), created at `created_at`, for the mock's workspace.
fn notification(topic: Topic, id: &str, object: &Value, created_at: i64) -> Vec<u8> {
    let mut notification = samples::sample(topic);
    notification["id"] = json!(id);
    notification["app_id"] = json!(MockIntercom::app_id());
    notification["created_at"] = json!(created_at);
    notification["data"]["item"]["id"] = object["id"].clone();
    notification["data"]["item"]["updated_at"] = json!(created_at);
    serde_json::to_vec(&notification).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_queues_exactly_what_changed_without_a_notification_once() {
    let moto = Moto::start().await;
    // SQS's rules, which moto lacks: a deduplication id is remembered for
    // five minutes after the first send, deleted or not.
    let aws = AwsRules::start(moto.port).await;
    let queue = moto.create_queue("intercom.fifo").await;
    let bucket = moto.create_bucket("intercom-archive").await;
    let table = moto.create_idempotency_table("idempotency").await;
    let mock = MockIntercom::start().await;

    // The window: the last two hours, ending 30 minutes ago.
    let until = now() - 1_800;
    let since = until - 7_200;
    let at = |minutes: i64| since + minutes * 60;
    let conversation = |id: &str, updated: i64| json!({"type": "conversation", "id": id, "updated_at": updated, "state": "open"});
    // What Intercom holds now.
    let objects = [
        conversation("101", at(10)),                                  // delivered
        conversation("102", at(50)), // delivered at 20, changed again at 50: lost
        conversation("103", at(30)), // lost in the outage
        conversation("104", at(130)), // after the window
        json!({"type": "ticket", "id": "201", "updated_at": at(15)}), // delivered
        json!({"type": "ticket", "id": "202", "updated_at": at(40)}), // lost
        json!({"type": "contact", "id": "301", "updated_at": at(25)}), // delivered
        json!({"type": "contact", "id": "302", "updated_at": at(45)}), // lost
    ];
    for object in &objects {
        match object["type"].as_str() {
            Some("conversation") => mock.add_conversation(object.clone()),
            Some("ticket") => mock.add_ticket(object.clone()),
            _ => mock.add_contact(object.clone()),
        };
    }
    // And 200 updated in the hour before the window: the search's pages
    // hold them (Intercom compares by day), the backfill walks past them.
    for n in 0..200 {
        mock.add_conversation(conversation(&format!("{}", 5000 + n), since - 3_600 + n));
    }
    let by_id = |id: &str| {
        objects
            .iter()
            .find(|o| o["id"] == id)
            .expect("an object")
            .clone()
    };

    // Intercom's stand-in sends while the receiver is up: four reach the
    // pipeline, are processed, archived and recorded by freshness.
    let receiver = Function::receiver(&moto, &queue, &[("AWS_ENDPOINT_URL", aws.endpoint())]).await;
    let delivered = [
        notification(
            Topic::ConversationUserCreated,
            "notif_1",
            &by_id("101"),
            at(10),
        ),
        notification(
            Topic::ConversationUserReplied,
            "notif_2",
            &by_id("102"),
            at(20),
        ),
        notification(Topic::TicketCreated, "notif_3", &by_id("201"), at(15)),
        notification(Topic::ContactUserCreated, "notif_4", &by_id("301"), at(25)),
    ];
    for body in &delivered {
        let event = Request::signed(body).event(Shape::ApiGatewayV2);
        assert_eq!(receiver.invoke(&event).await["statusCode"], 202);
    }
    // Then the receiver is out (its queue gone, as after a bad deploy):
    // Intercom's delivery and its one retry get 503, and are dropped.
    let down = Function::receiver(
        &moto,
        &format!("{}-gone", queue.trim_end_matches(".fifo")),
        &[("AWS_ENDPOINT_URL", aws.endpoint())],
    )
    .await;
    let lost = [
        notification(
            Topic::ConversationUserReplied,
            "notif_5",
            &by_id("102"),
            at(50),
        ),
        notification(
            Topic::ConversationUserCreated,
            "notif_6",
            &by_id("103"),
            at(30),
        ),
        notification(Topic::TicketStateUpdated, "notif_7", &by_id("202"), at(40)),
        notification(Topic::ContactUserCreated, "notif_8", &by_id("302"), at(45)),
    ];
    for body in &lost {
        let event = Request::signed(body).event(Shape::ApiGatewayV2);
        for _attempt in 0..2 {
            assert_eq!(down.invoke(&event).await["statusCode"], 503);
        }
    }
    let originals = moto.drain(&queue).await;
    assert_eq!(originals.len(), 4, "only what the receiver accepted");
    let processor_env = [
        ("ARCHIVE_BUCKET", bucket.clone()),
        ("IDEMPOTENCY_TABLE", table.clone()),
        ("FRESHNESS", "tag".to_owned()),
    ];
    let processor = Function::start("topic-processor", Some(&moto), &processor_env).await;
    assert_eq!(
        processor.invoke(&sqs_event(&originals, QUEUE_ARN)).await,
        json!({"batchItemFailures": []})
    );

    let since_text = jiff::Timestamp::from_second(since)
        .expect("time")
        .to_string();
    let until_text = jiff::Timestamp::from_second(until)
        .expect("time")
        .to_string();
    let args = [
        "--since",
        since_text.as_str(),
        "--until",
        until_text.as_str(),
        "--queue-url",
        queue.as_str(),
        "--table",
        table.as_str(),
        "--function-name",
        "topic-processor",
        "--archive-bucket",
        bucket.as_str(),
    ];

    // A dry run says what it would queue, and queues nothing.
    let (output, ok) = backfill(
        &aws.endpoint(),
        &mock.url,
        &[&args[..], &["--dry-run"]].concat(),
    );
    assert!(ok, "{output}");
    assert_eq!(
        output.matches("would queue").count(),
        5,
        "4 lines and the summary: {output}"
    );
    assert!(
        output.contains(
            "7 object(s) found, 3 with their newest notification seen, 4 changed without one"
        ),
        "{output}"
    );
    assert!(
        moto.drain(&queue).await.is_empty(),
        "a dry run queues nothing"
    );

    // Intercom's rate limit met on the way: waited out.
    mock.then_on(
        "POST /conversations/search",
        intercom_mock::Fault::RateLimited {
            reset_in: std::time::Duration::from_secs(1),
        },
    );
    let (output, ok) = backfill(&aws.endpoint(), &mock.url, &args);
    assert!(ok, "{output}");
    assert!(
        output.contains("conversation: 3 updated in the window (2 page(s))"),
        "every page walked: {output}"
    );
    let statuses: Vec<u16> = mock
        .calls()
        .iter()
        .filter(|c| c.path == "/conversations/search")
        .map(|c| c.status)
        .collect();
    assert_eq!(
        statuses,
        [200, 200, 429, 200, 200],
        "the dry run's two pages, then a 429 waited out"
    );
    let synced = moto.drain(&queue).await;
    let bodies: Vec<Value> = synced
        .iter()
        .map(|m| serde_json::from_str(m.body().expect("a body")).expect("json"))
        .collect();
    let found: Vec<(String, String, i64)> = bodies
        .iter()
        .map(|b| {
            (
                b["topic"].as_str().expect("topic").to_owned(),
                b["data"]["item"]["id"].as_str().expect("id").to_owned(),
                b["created_at"].as_i64().expect("created_at"),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("synced.conversation".to_owned(), "103".to_owned(), at(30)),
            ("synced.ticket".to_owned(), "202".to_owned(), at(40)),
            ("synced.contact".to_owned(), "302".to_owned(), at(45)),
            ("synced.conversation".to_owned(), "102".to_owned(), at(50)),
        ],
        "exactly the objects that changed without a notification, oldest first: {output}"
    );
    let app = MockIntercom::app_id();
    for (message, body) in synced.iter().zip(&bodies) {
        let attributes: HashMap<String, String> = message
            .message_attributes()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.string_value?)))
            .collect();
        let text = message.body().expect("a body");
        assert_eq!(attributes["signature"], sign(text.as_bytes()), "signed");
        assert!(attributes["notification_id"].starts_with("sync_"));
        assert_eq!(
            attributes["synced"], "intercom-dev backfill",
            "marked as ours"
        );
        assert_eq!(body["synced"]["source"], "intercom-dev backfill");
        let group = message
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId))
            .cloned();
        assert_eq!(
            group,
            Some(format!(
                "{app}:{}:{}",
                body["data"]["item"]["type"].as_str().expect("type"),
                body["data"]["item"]["id"].as_str().expect("id")
            )),
            "the object's FIFO group, so its order holds"
        );
    }
    assert_eq!(
        bodies[3]["synced"]["last_seen_created_at"],
        json!(at(20)),
        "102 was seen at its first notification"
    );
    assert_eq!(bodies[0]["synced"]["last_seen_created_at"], Value::Null);

    // Again over the same window, before the processor ran them: nothing.
    let (output, ok) = backfill(&aws.endpoint(), &mock.url, &args);
    assert!(ok, "{output}");
    assert!(
        output.contains("queued 0 synced notification(s)"),
        "{output}"
    );
    assert_eq!(
        output.matches("queued by an earlier run").count(),
        4,
        "{output}"
    );
    assert!(
        moto.drain(&queue).await.is_empty(),
        "the second run queues nothing"
    );

    // The archive alone (no table, so no ledger either) tells the same
    // objects apart: what it holds is compared, not only the freshness items.
    let archive_only = [&args[..6], &args[10..], &["--dry-run"]].concat();
    assert!(!archive_only.contains(&"--table"), "{archive_only:?}");
    let (output, ok) = backfill(&aws.endpoint(), &mock.url, &archive_only);
    assert!(ok, "{output}");
    assert!(
        output.contains(
            "7 object(s) found, 3 with their newest notification seen, 4 changed without one"
        ),
        "{output}"
    );

    // The processor takes them like any notification: once processed,
    // each object's newest is its synced state.
    assert_eq!(
        processor.invoke(&sqs_event(&synced, QUEUE_ARN)).await,
        json!({"batchItemFailures": []})
    );
    let newest = moto
        .idempotency_item(
            &table,
            &format!("topic-processor#object#{app}:conversation:102"),
        )
        .await
        .expect("the object's freshness item");
    assert_eq!(newest["newest_created_at"], at(50).to_string());
    assert!(
        mock.violations().is_empty(),
        "every search is one Intercom's description takes: {:?}",
        mock.violations()
    );
}

#[tokio::test]
async fn backfill_without_anything_to_compare_with_says_so() {
    let mock = MockIntercom::start().await;
    let (output, ok) = backfill(
        "http://127.0.0.1:9",
        &mock.url,
        &[
            "--since",
            "2026-12-01",
            "--queue-url",
            "http://127.0.0.1:9/q",
        ],
    );
    assert!(!ok);
    assert!(
        output.contains("nothing to compare Intercom's objects with"),
        "{output}"
    );
    let (output, ok) = backfill(
        "http://127.0.0.1:9",
        &mock.url,
        &[
            "--since",
            "2026-12-01",
            "--type",
            "company",
            "--queue-url",
            "q",
        ],
    );
    assert!(!ok);
    assert!(
        output.contains("--type company: one of conversation, ticket, contact"),
        "{output}"
    );
}
