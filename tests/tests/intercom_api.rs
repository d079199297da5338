//! Handlers acting on Intercom, through the release processor under the Lambda Runtime API, against a stateful mock that checks every request against Intercom's OpenAPI description and keeps conversations: the refund example acts once per notification across a retry (its tag sent once, a note whose answer was lost posted once, its steps kept 18 days and more), its own echo is `own_action` while the same admin's inbox part and a user's later reply are not, `GET /me` is never asked for a notification no handler takes, a 429 is waited out inside the deadline and past it fails the record retryable, and the token comes from Secrets Manager.

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

/// A notification of `topic`, `id`, about `conversation` (as Intercom
/// sends it: the conversation with its parts).
fn about(topic: Topic, id: &str, conversation: &Value) -> Vec<u8> {
    let mut notification: Value =
        serde_json::from_slice(&samples::sample_body(topic)).expect("json");
    notification["id"] = id.into();
    notification["data"]["item"] = conversation.clone();
    serde_json::to_vec(&notification).expect("json")
}

/// `conversation` with one more part: `author` wrote `body`, with
/// `app_package_code` (null for a part typed in Intercom's inbox).
fn with_part(
    conversation: &Value,
    author: Value,
    part_type: &str,
    app_package_code: Value,
) -> Value {
    let mut conversation = conversation.clone();
    let list = &mut conversation["conversation_parts"];
    let parts = list["conversation_parts"].as_array_mut().expect("parts");
    let newest = parts
        .iter()
        .filter_map(|p| p["created_at"].as_i64())
        .max()
        .unwrap_or(0);
    parts.push(
        json!({"type": "conversation_part", "id": format!("p{}", parts.len()),
        "part_type": part_type, "body": "<p>typed</p>", "created_at": newest + 1,
        "author": author, "app_package_code": app_package_code}),
    );
    conversation
}

/// The mock, keeping the conversation of `refund_request`'s notification.
async fn mock_keeping(body: &[u8]) -> MockIntercom {
    let mock = MockIntercom::start().await;
    let notification: Value = serde_json::from_slice(body).expect("json");
    mock.add_conversation(notification["data"]["item"].clone());
    mock
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
    let (body, conversation) = refund_request("notif_refund_1");
    let mock = mock_keeping(&body).await;
    let processor = start_processor(&aws.endpoint(), &mock, &table, &[]).await;
    let note = format!("POST /conversations/{conversation}/reply");
    let tag = format!("POST /conversations/{conversation}/tags");
    let read = format!("GET /conversations/{conversation}");
    mock.then_on(&note, Fault::Status(500));

    // The tag step succeeds, the note meets a 500: the record fails.
    let response = processor.invoke(&event(&[("m-1", &body)])).await;
    assert_eq!(failed(&response), ["m-1"]);
    // SQS delivers it again: the tag is not sent again; the note's step
    // started before, so the client first looks for the note, then posts it.
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
            read.as_str(),
            note.as_str()
        ]
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
    assert!(
        mock.calls()
            .iter()
            .all(|c| c.token.as_deref() == Some("tok-inline"))
    );

    // The note's echo: the conversation as Intercom now has it, its newest
    // part the app's admin's, written through the API.
    let now = mock.conversation(&conversation).expect("kept");
    let me = MockIntercom::admin_id();
    let admin = json!({"type": "admin", "id": me});
    let user = json!({"type": "user", "id": "6318db7dfb80c614fe1792b5"});
    let typed = with_part(&now, admin.clone(), "note", Value::Null);
    let answered = with_part(&now, user, "comment", Value::Null);
    let response = processor
        .invoke(&event(&[
            (
                "m-2",
                &about(Topic::ConversationAdminNoted, "notif_echo_1", &now),
            ),
            // The same admin, typing in the inbox: a teammate.
            (
                "m-3",
                &about(Topic::ConversationAdminNoted, "notif_typed_1", &typed),
            ),
            // A user's reply after the app's note is the newest part.
            (
                "m-4",
                &about(Topic::ConversationAdminNoted, "notif_user_1", &answered),
            ),
        ]))
        .await;
    assert_eq!(failed(&response), Vec::<String>::new());
    let lines = outcomes(&processor, 5).await;
    assert_eq!(
        lines,
        [
            ("failed".to_owned(), "handler_failed".to_owned()),
            ("processed".to_owned(), String::new()),
            ("own_action".to_owned(), String::new()),
            ("processed".to_owned(), String::new()),
            ("processed".to_owned(), String::new()),
        ]
    );
    assert_eq!(
        mock.paths().iter().filter(|p| *p == "GET /me").count(),
        1,
        "GET /me once in this process"
    );

    // With INTERCOM_ADMIN_ID naming that admin: the same judgement, and
    // nobody asks GET /me.
    let named = start_processor(
        &aws.endpoint(),
        &mock,
        &table,
        &[("INTERCOM_ADMIN_ID", me.clone())],
    )
    .await;
    let before = mock.calls().len();
    let response = named
        .invoke(&event(&[
            (
                "m-5",
                &about(Topic::ConversationAdminNoted, "notif_echo_2", &now),
            ),
            (
                "m-6",
                &about(Topic::ConversationAdminNoted, "notif_typed_2", &typed),
            ),
        ]))
        .await;
    assert_eq!(failed(&response), Vec::<String>::new());
    let lines = outcomes(&named, 2).await;
    assert_eq!(
        lines,
        [
            ("own_action".to_owned(), String::new()),
            ("processed".to_owned(), String::new()),
        ]
    );
    assert_eq!(mock.calls().len(), before, "no call to Intercom");

    // The refund's steps are kept for the notification's whole life: 18
    // days at least (4 on the queue, 14 in the dead-letter queue).
    let item = moto
        .dynamodb()
        .await
        .get_item()
        .table_name(&table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(
                "topic-processor#notif_refund_1#step#tag-refund".into(),
            ),
        )
        .send()
        .await
        .expect("get")
        .item
        .expect("the step's item");
    let expiration: u64 = item["expiration"]
        .as_n()
        .expect("a number")
        .parse()
        .expect("n");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(expiration >= now_s + 18 * 86_400, "{expiration} vs {now_s}");
    assert_eq!(item["status"].as_s().map(String::as_str), Ok("COMPLETED"));
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_applied_and_then_cut_off_is_in_the_conversation_once_after_the_retry() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let (body, conversation) = refund_request("notif_refund_cut");
    let mock = mock_keeping(&body).await;
    let processor = start_processor(&moto.endpoint(), &mock, &table, &[]).await;
    let note = format!("POST /conversations/{conversation}/reply");
    // Intercom applies the note; the connection drops before its answer.
    mock.then_on(&note, Fault::AppliedThenCut);
    let response = processor.invoke(&event(&[("m-1", &body)])).await;
    assert_eq!(failed(&response), ["m-1"]);
    let response = processor.invoke(&event(&[("m-1", &body)])).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    let now = mock.conversation(&conversation).expect("kept");
    let notes: Vec<&Value> = now["conversation_parts"]["conversation_parts"]
        .as_array()
        .expect("parts")
        .iter()
        .filter(|p| p["part_type"] == "note")
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(
        mock.paths().iter().filter(|p| **p == note).count(),
        1,
        "posted once: {:?}",
        mock.paths()
    );
    let tags = format!("POST /conversations/{conversation}/tags");
    assert_eq!(mock.paths().iter().filter(|p| **p == tags).count(), 1);
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_get_me_failing_admin_notifications_no_handler_takes_succeed() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let (body, conversation) = refund_request("notif_refund_down");
    let mock = mock_keeping(&body).await;
    for _ in 0..6 {
        mock.then_on("GET /me", Fault::Status(500));
    }
    let processor = start_processor(&moto.endpoint(), &mock, &table, &[]).await;
    let admin = json!({"type": "admin", "id": MockIntercom::admin_id()});
    let now = mock.conversation(&conversation).expect("kept");
    let by_the_app = with_part(&now, admin, "comment", json!("refund-bot"));
    let records: Vec<(String, Vec<u8>)> = [
        Topic::ConversationAdminReplied,
        Topic::ConversationAdminClosed,
        Topic::ConversationAdminAssigned,
    ]
    .iter()
    .enumerate()
    .map(|(n, topic)| {
        (
            format!("m-{n}"),
            about(*topic, &format!("notif_down_{n}"), &by_the_app),
        )
    })
    .collect();
    let batch: Vec<(&str, &[u8])> = records
        .iter()
        .map(|(m, b)| (m.as_str(), b.as_slice()))
        .collect();
    let response = processor.invoke(&event(&batch)).await;
    assert_eq!(failed(&response), Vec::<String>::new());
    let lines = outcomes(&processor, 3).await;
    assert!(lines.iter().all(|(o, _)| o == "unhandled"), "{lines:?}");
    assert!(mock.calls().is_empty(), "{:?}", mock.paths());

    // A notification a handler takes needs the answer: it fails, retryable.
    let response = processor
        .invoke(&event(&[(
            "m-9",
            &about(Topic::ConversationAdminNoted, "notif_down_9", &by_the_app),
        )]))
        .await;
    assert_eq!(failed(&response), ["m-9"]);
    let line = processor
        .json_logs_when(4, |l| l["message"] == "record")
        .await
        .pop()
        .expect("a line");
    assert_eq!(line["retryable"], true, "{line}");
    assert!(
        mock.paths().iter().all(|p| p == "GET /me"),
        "{:?}",
        mock.paths()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_inside_the_deadline_and_past_it_the_record_is_retried() {
    let moto = Moto::start().await;
    let table = moto.create_idempotency_table("idempotency").await;
    let mock = mock_keeping(&refund_request("notif_refund_2").0).await;
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
    let mock = mock_keeping(&refund_request("notif_refund_4").0).await;
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
