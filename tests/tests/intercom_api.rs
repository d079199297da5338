//! Handlers acting on Intercom, through the release processor under the Lambda Runtime API, against a mock that checks every request against Intercom's OpenAPI description: the refund example acts once per notification across a retry forced after its first step, its own echo is `own_action` with `GET /me` asked once per cold start, a 429 is waited out inside the deadline and past it fails the record retryable, and the token comes from Secrets Manager.

use std::time::{Duration, Instant};

use intercom_mock::{Fault, MockIntercom};
use intercom_webhook::topic::Topic;
use pipeline_tests::aws_rules::AwsRules;
use pipeline_tests::function::Function;
use pipeline_tests::moto::Moto;
use pipeline_tests::samples;
use pipeline_tests::sqs::{self, Received};
use serde_json::{Value, json};

/// A `conversation.user.created` notification `id` whose first message
/// asks for a refund; its conversation id.
fn refund_request(id: &str) -> (Vec<u8>, String) {
    let mut notification: Value =
        serde_json::from_slice(&samples::sample_body(Topic::ConversationUserCreated))
            .expect("json");
    notification["id"] = id.into();
    notification["data"]["item"]["source"]["body"] =
        "<p>Hi, I was charged twice. Can I get a refund?</p>".into();
    let conversation = notification["data"]["item"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    (
        serde_json::to_vec(&notification).expect("json"),
        conversation,
    )
}

/// A `conversation.admin.noted` notification `id` whose newest part admin
/// `admin_id` wrote.
fn noted_by(id: &str, admin_id: &str) -> Vec<u8> {
    let mut notification: Value =
        serde_json::from_slice(&samples::sample_body(Topic::ConversationAdminNoted)).expect("json");
    notification["id"] = id.into();
    notification["data"]["item"]["conversation_parts"] = json!({
        "type": "conversation_part.list",
        "conversation_parts": [{"type": "conversation_part", "id": "9", "part_type": "note",
            "created_at": 1_700_000_000, "author": {"type": "admin", "id": admin_id}}],
        "total_count": 1,
    });
    serde_json::to_vec(&notification).expect("json")
}

fn event(records: &[(&str, &[u8])]) -> Value {
    let records = records
        .iter()
        .map(|(message_id, body)| {
            let text = String::from_utf8(body.to_vec()).expect("utf8");
            sqs::record(message_id, &text, Received::first::<&str, &str>(&[], None))
        })
        .collect();
    serde_json::to_value(sqs::event(records, sqs::QUEUE_ARN)).expect("json")
}

fn failed(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
        .collect()
}

/// The record lines' outcomes, once `count` are there.
async fn outcomes(processor: &Function, count: usize) -> Vec<(String, String)> {
    processor
        .json_logs_when(count, |l| l["message"] == "record")
        .await
        .iter()
        .map(|l| {
            (
                l["outcome"].as_str().unwrap_or_default().to_owned(),
                l["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The release processor with the refund example, a token and `table`,
/// its AWS calls to `aws` (the AWS rules proxy, or moto itself).
async fn start_processor(
    aws: &str,
    mock: &MockIntercom,
    table: &str,
    extra: &[(&str, String)],
) -> Function {
    let mut env = vec![
        ("AWS_ENDPOINT_URL", aws.to_owned()),
        ("IDEMPOTENCY_TABLE", table.to_owned()),
        ("INTERCOM_ACCESS_TOKEN", "tok-inline".to_owned()),
        ("INTERCOM_API_URL", mock.url.clone()),
    ];
    env.extend(extra.iter().cloned());
    Function::start("topic-processor", None, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refund_example_acts_once_across_a_retry_and_ignores_its_own_echo() {
    let moto = Moto::start().await;
    // Through the AWS rules: a step's record must be read strongly
    // consistent, or its retry may not see it.
    let aws = AwsRules::start(moto.port).await;
    let table = moto.create_idempotency_table("idempotency").await;
    let mock = MockIntercom::start().await;
    let processor = start_processor(&aws.endpoint(), &mock, &table, &[]).await;
    let (body, conversation) = refund_request("notif_refund_1");
    let note = format!("POST /conversations/{conversation}/reply");
    let tag = format!("POST /conversations/{conversation}/tags");
    mock.then_on(&note, Fault::Status(500));

    // The tag step succeeds, the note meets a 500: the record fails.
    let response = processor.invoke(&event(&[("m-1", &body)])).await;
    assert_eq!(failed(&response), ["m-1"]);
    // SQS delivers it again: the tag is not sent again, the note is.
    let response = processor.invoke(&event(&[("m-1", &body)])).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert_eq!(
        mock.paths(),
        [
            "POST /tags",
            // The conversation's tag acts as the app's admin: asked first.
            "GET /me",
            tag.as_str(),
            note.as_str(),
            note.as_str()
        ]
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
    assert!(
        mock.calls()
            .iter()
            .all(|c| c.token.as_deref() == Some("tok-inline"))
    );

    // The note's echo: the app's admin wrote the newest part.
    let me = MockIntercom::admin_id();
    let response = processor
        .invoke(&event(&[
            ("m-2", &noted_by("notif_echo_1", &me)),
            ("m-3", &noted_by("notif_person_1", "another-admin")),
        ]))
        .await;
    assert_eq!(failed(&response), Vec::<String>::new());
    let lines = outcomes(&processor, 4).await;
    assert_eq!(
        lines,
        [
            ("failed".to_owned(), "handler_failed".to_owned()),
            ("processed".to_owned(), String::new()),
            ("own_action".to_owned(), String::new()),
            // No handler for conversation.admin.noted in handlers.rs.
            ("unhandled".to_owned(), String::new()),
        ]
    );
    assert_eq!(
        mock.paths().iter().filter(|p| *p == "GET /me").count(),
        1,
        "GET /me once in this process"
    );

    // A new cold start asks once more, for its first admin-written part only.
    let fresh = start_processor(&aws.endpoint(), &mock, &table, &[]).await;
    let response = fresh
        .invoke(&event(&[
            ("m-4", &noted_by("notif_echo_2", &me)),
            ("m-5", &noted_by("notif_echo_3", &me)),
        ]))
        .await;
    assert_eq!(failed(&response), Vec::<String>::new());
    let lines = outcomes(&fresh, 2).await;
    assert!(lines.iter().all(|(o, _)| o == "own_action"), "{lines:?}");
    assert_eq!(mock.paths().iter().filter(|p| *p == "GET /me").count(), 2);
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_inside_the_deadline_and_past_it_the_record_is_retried() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let mock = MockIntercom::start().await;
    let processor = start_processor(&moto.endpoint(), &mock, &table, &[]).await;

    mock.then(Fault::RateLimited {
        reset_in: Duration::from_millis(1200),
    });
    let (body, _) = refund_request("notif_refund_2");
    let started = Instant::now();
    let response = processor.invoke(&event(&[("m-1", &body)])).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for the reset"
    );
    assert_eq!(mock.paths()[..2], ["POST /tags", "POST /tags"]);

    // The reset is after the invocation's deadline: the record fails at
    // once, to be retried, and nothing more is sent.
    processor.api.set_timeout(Duration::from_secs(5));
    mock.then(Fault::RateLimited {
        reset_in: Duration::from_secs(60),
    });
    let (body, _) = refund_request("notif_refund_3");
    let before = mock.calls().len();
    let started = Instant::now();
    let response = processor.invoke(&event(&[("m-2", &body)])).await;
    assert_eq!(failed(&response), ["m-2"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(mock.calls().len(), before + 1);
    let line = processor
        .json_logs_when(2, |l| l["message"] == "record")
        .await
        .pop()
        .expect("a line");
    assert_eq!(line["reason"], "handler_failed");
    assert_eq!(line["retryable"], true, "{line}");
    assert!(
        line["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("rate limit"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_read_from_secrets_manager_at_cold_start() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let mock = MockIntercom::start().await;
    let secret = moto.create_access_token("tok-from-secret").await;
    let processor = Function::start(
        "topic-processor",
        Some(&moto),
        &[
            ("IDEMPOTENCY_TABLE", table),
            ("INTERCOM_ACCESS_TOKEN_ARN", secret),
            ("INTERCOM_API_URL", mock.url.clone()),
        ],
    )
    .await;
    let (body, _) = refund_request("notif_refund_4");
    let response = processor.invoke(&event(&[("m-1", &body)])).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    assert!(!mock.calls().is_empty());
    assert!(
        mock.calls()
            .iter()
            .all(|c| c.token.as_deref() == Some("tok-from-secret"))
    );

    // A secret that cannot be read is an init error naming the variable.
    let mut broken = Function::start(
        "topic-processor",
        Some(&moto),
        &[(
            "INTERCOM_ACCESS_TOKEN_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".to_owned(),
        )],
    )
    .await;
    broken.expect_init_error("INTERCOM_ACCESS_TOKEN_ARN").await;
}
