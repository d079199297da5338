//! Each function's role against the AWS calls its code makes, seen on the wire: every feature on, the release binaries under the Runtime API, moto behind the AWS rules proxy, which names each request's IAM action and caller.
//!
//! The actions seen must be exactly those in `infra/iam-actions.json`, and
//! `infra/template_test.py` holds each role in the template to exactly that
//! file: a call the code starts making fails here until the file (and so
//! the role) says it, and a grant no code uses fails there.

use std::collections::{BTreeMap, BTreeSet};

use intercom_webhook::queue_message::MAX_MESSAGE_BYTES;
use intercom_webhook::topic::Topic;
use pipeline_tests::aws_rules::AwsRules;
use pipeline_tests::fixtures::{Request, Shape};
use pipeline_tests::function::Function;
use pipeline_tests::moto::{Moto, sqs_event};
use pipeline_tests::samples;

/// `infra/iam-actions.json`: the actions each function may call.
fn granted() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/iam-actions.json"
    ))
    .expect("infra/iam-actions.json");
    let file: serde_json::Value = serde_json::from_str(&text).expect("json");
    ["webhook-receiver", "topic-processor"]
        .into_iter()
        .map(|function| {
            let actions = file[function]
                .as_array()
                .expect("a list of actions")
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            (function.to_owned(), actions)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_calls_exactly_the_actions_its_role_grants() {
    let moto = Moto::start().await;
    let aws = AwsRules::start(moto.port).await;
    let queue = moto.create_queue("intercom.fifo").await;
    let payloads = moto.create_bucket("intercom-payloads").await;
    let archive = moto.create_bucket("intercom-archive").await;
    let stream =
        Moto::create_archive_stream(&aws.endpoint(), "intercom-archive", &archive, "").await;
    let table = moto.create_idempotency_table("idempotency").await;
    let consumer = moto.create_queue("bus-consumer").await;
    let bus = moto
        .create_bus_to_queue("intercom", "intercom", &consumer)
        .await;
    let secret = moto.create_client_secret().await;
    let token = moto.create_access_token("tok").await;
    let intercom = intercom_mock::MockIntercom::start().await;

    // The receiver: a secret from Secrets Manager, a notification, and one
    // too large for SQS (to the payload bucket).
    let receiver = Function::start(
        "webhook-receiver",
        None,
        &[
            ("AWS_ENDPOINT_URL", aws.endpoint()),
            ("AWS_SDK_UA_APP_ID", "webhook-receiver".to_owned()),
            ("QUEUE_URL", queue.clone()),
            ("INTERCOM_CLIENT_SECRET_ARN", secret),
            ("PAYLOAD_BUCKET", payloads),
        ],
    )
    .await;
    // About another conversation than the reply, so that on this FIFO
    // queue the reply's failure does not hold it back.
    let mut large: serde_json::Value =
        serde_json::from_slice(&samples::conversation_of(MAX_MESSAGE_BYTES + 100)).expect("json");
    large["data"]["item"]["id"] = "a-long-conversation".into();
    // A reply in another conversation, whose handler calls Intercom in a step.
    let mut other: serde_json::Value =
        serde_json::from_slice(&samples::sample_body(Topic::ConversationUserReplied))
            .expect("json");
    other["id"] = "notif_another_reply".into();
    other["data"]["item"]["id"] = "215473853299346".into();
    // The mock keeps it, as Intercom has it.
    intercom.add_conversation(other["data"]["item"].clone());
    let bodies = [
        samples::sample_body(Topic::ConversationUserReplied),
        serde_json::to_vec(&large).expect("json"),
        serde_json::to_vec(&other).expect("json"),
    ];
    assert!(bodies[1].len() > MAX_MESSAGE_BYTES);
    for body in &bodies {
        let event = Request::signed(body).event(Shape::ApiGatewayV2);
        assert_eq!(receiver.invoke(&event).await["statusCode"], 202);
    }
    let messages = moto.drain(&queue).await;
    assert_eq!(messages.len(), 3);

    // The processor wired as deployed, every feature on: the pointer read
    // back, the archive (the stream layout, and an object for the body too
    // large for the bus), the bus, idempotency and freshness, Intercom's
    // token from Secrets Manager and a handler's step; one handler panics,
    // so its lock is released.
    let replied = messages
        .iter()
        .find(|m| {
            m.message_attributes()
                .and_then(|a| a.get("notification_id"))
                .and_then(|t| t.string_value())
                == Some("notif_sample_conversation_user_replied")
        })
        .and_then(|m| m.message_id())
        .expect("the reply's message")
        .to_owned();
    let processor = Function::start(
        "faulty-processor",
        None,
        &[
            ("AWS_ENDPOINT_URL", aws.endpoint()),
            ("AWS_SDK_UA_APP_ID", "topic-processor".to_owned()),
            ("IDEMPOTENCY_TABLE", table),
            ("FRESHNESS", "tag".to_owned()),
            ("EVENT_BUS_NAME", bus),
            ("ARCHIVE_BUCKET", archive),
            ("ARCHIVE_STREAM", stream),
            ("PANIC_ON_MESSAGE", replied.clone()),
            ("INTERCOM_ACCESS_TOKEN_ARN", token),
            ("INTERCOM_API_URL", intercom.url.clone()),
        ],
    )
    .await;
    let arn = "arn:aws:sqs:us-east-1:123456789012:intercom.fifo";
    let answer = processor.invoke(&sqs_event(&messages, arn)).await;
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([{"itemIdentifier": replied}]),
        "only the panicking record fails"
    );

    // In either order: the two replies (other FIFO groups) run at once.
    let mut calls = intercom.paths();
    calls.sort();
    assert_eq!(
        calls,
        // The replies' newest part is an admin's, but not one written
        // through the API (no `app_package_code`): nobody asks GET /me.
        ["GET /conversations/215473853299346"],
        "the step called Intercom"
    );
    assert_eq!(intercom.violations(), Vec::<String>::new());
    let seen = aws.actions();
    let granted = granted();
    for function in ["webhook-receiver", "topic-processor"] {
        assert_eq!(
            seen.get(function),
            granted.get(function),
            "{function}: the actions seen on the wire against infra/iam-actions.json (all seen: {seen:?})"
        );
    }
}
