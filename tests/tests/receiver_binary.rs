//! The release `webhook-receiver` binary as Lambda runs it, against moto's SQS and Secrets Manager.
//!
//! Each test starts its own moto server and function process on free loopback
//! ports. Needs the release build of the functions and `pip install "moto[server]"`
//! first; the README's test command does both.

use std::time::{Duration, Instant};

use pipeline_tests::fixtures::{self, Request, Shape, TEST_SECRET, bad_inputs, notification, sign};
use pipeline_tests::function::Function;
use pipeline_tests::moto::Moto;
use serde_json::{Value, json};

const BINARY: &str = "webhook-receiver";

async fn receiver(moto: &Moto, queue_url: &str, extra: &[(&str, String)]) -> Function {
    let mut env = vec![("QUEUE_URL", queue_url.to_owned())];
    if !extra
        .iter()
        .any(|(n, _)| *n == "INTERCOM_CLIENT_SECRET_ARN")
    {
        env.push(("INTERCOM_CLIENT_SECRET", TEST_SECRET.to_owned()));
    }
    env.extend(extra.iter().cloned());
    Function::start(BINARY, Some(moto), &env).await
}

fn status_and_body(response: &Value) -> (u64, Value) {
    let status = response["statusCode"].as_u64().expect("statusCode");
    let body = response["body"].as_str().unwrap_or_default();
    (
        status,
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).expect("JSON body")
        },
    )
}

fn attribute<'m>(message: &'m aws_sdk_sqs::types::Message, name: &str) -> Option<&'m str> {
    message.message_attributes()?.get(name)?.string_value()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_byte_for_byte_with_every_attribute_and_logs_one_line() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom").await;
    let function = receiver(&moto, &queue, &[]).await;
    let body = notification("conversation.user.created");
    let event = Request::signed(&body)
        .header("intercom-webhook-subscription-id", "nsub_9")
        .event(Shape::ApiGatewayV1);
    let (status, answer) = status_and_body(&function.invoke(&event).await);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"status":"queued","notification_id":"notif_4f1e6d2a-6c1b-4d55-9d1e-2f0c3b7a8e11"})
    );

    let messages = moto.drain(&queue).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(
        message.body().map(str::as_bytes),
        Some(&body[..]),
        "byte for byte"
    );
    assert_eq!(
        attribute(message, "topic"),
        Some("conversation.user.created")
    );
    assert_eq!(attribute(message, "app_id"), Some("a86dr8yl"));
    assert_eq!(
        attribute(message, "notification_id"),
        Some("notif_4f1e6d2a-6c1b-4d55-9d1e-2f0c3b7a8e11")
    );
    assert_eq!(attribute(message, "item_type"), Some("conversation"));
    assert_eq!(attribute(message, "item_id"), Some("215473853299345"));
    assert_eq!(attribute(message, "signature"), Some(sign(&body).as_str()));
    assert_eq!(attribute(message, "subscription_id"), Some("nsub_9"));
    assert!(attribute(message, "received_at").is_some_and(|t| t.ends_with('Z') && t.len() == 24));
    assert_eq!(attribute(message, "content_encoding"), None);
    for attribute in message.message_attributes().expect("attributes").values() {
        assert_eq!(attribute.data_type(), "String");
    }

    let requests = function
        .json_logs_when(1, |l| l["message"] == "request")
        .await;
    let logs = function.json_logs();
    assert_eq!(requests.len(), 1, "{logs:?}");
    assert_eq!(requests[0]["status"], 202);
    assert_eq!(requests[0]["topic"], "conversation.user.created");
    assert_eq!(
        requests[0]["notification_id"],
        "notif_4f1e6d2a-6c1b-4d55-9d1e-2f0c3b7a8e11"
    );
    assert_eq!(requests[0]["level"], "INFO");
    let all = function.logs().join("\n");
    assert!(!all.contains(TEST_SECRET), "secret in the logs");
    assert!(
        !all.contains("invoice shows the wrong VAT"),
        "body in the logs at INFO"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_retry_is_queued_once_and_groups_follow_the_object() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom.fifo").await;
    let function = receiver(&moto, &queue, &[]).await;

    let first = notification("ticket.created");
    // Intercom's retry: same notification id, delivery_attempts 2.
    let retry = String::from_utf8(first.clone())
        .expect("utf8")
        .replace("\"delivery_attempts\":1", "\"delivery_attempts\":2")
        .into_bytes();
    assert_ne!(first, retry);
    let part = notification("ticket.admin.replied");
    let contact = notification("contact.user.created");
    for body in [&first, &retry, &part, &contact] {
        let (status, answer) = status_and_body(
            &function
                .invoke(&Request::signed(body).event(Shape::ApiGatewayV2))
                .await,
        );
        assert_eq!(status, 202, "{answer}");
    }

    let messages = moto.drain(&queue).await;
    let summary: Vec<(String, String, String)> = messages
        .iter()
        .map(|m| {
            let system = m.attributes().expect("system attributes");
            let get = |name| system.get(&name).cloned().unwrap_or_default();
            (
                attribute(m, "topic").unwrap_or_default().to_owned(),
                get(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId),
                get(aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "ticket.created".into(),
                "a86dr8yl:ticket:5".into(),
                "notif_c2441832-5d5b-48d9-8f83-f8c37d8e03e6".into()
            ),
            (
                "ticket.admin.replied".into(),
                "a86dr8yl:ticket:5".into(),
                "notif_7a2b9c1d-0e3f-4a5b-8c7d-6e5f4a3b2c1d".into()
            ),
            (
                "contact.user.created".into(),
                "a86dr8yl:contact:6318db7dfb80c614fe1792b5".into(),
                "notif_0b7d2c44-95a3-4c8e-8d0f-6a5b4e3c2d10".into()
            ),
        ],
        "the retry is deduplicated; the ticket and its part share a group"
    );
    assert_eq!(
        messages[0].body().map(str::as_bytes),
        Some(&first[..]),
        "the first delivery is what stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_refused_and_queue_hanging_give_503_within_three_seconds() {
    // Refused: the queue endpoint's port has nothing listening.
    let mut moto = Moto::start().await;
    let queue = moto.create_queue("intercom").await;
    let function = receiver(&moto, &queue, &[]).await;
    let body = notification("conversation.user.created");
    let event = Request::signed(&body).event(Shape::ApiGatewayV2);
    let (status, _) = status_and_body(&function.invoke(&event).await);
    assert_eq!(status, 202, "warm and working first");
    moto.stop().await;
    let started = Instant::now();
    let (status, answer) = status_and_body(&function.invoke(&event).await);
    let refused = started.elapsed();
    assert_eq!(
        (status, answer),
        (503, json!({"error":"queue_unavailable"}))
    );
    assert!(refused < Duration::from_secs(3), "refused took {refused:?}");

    // Hanging: a listener that accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hang_endpoint = format!("http://{}", hang.local_addr().expect("address"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = hang.accept().await {
            open.push(stream);
        }
    });
    let hanging = Function::start(
        BINARY,
        None,
        &[
            (
                "QUEUE_URL",
                "http://127.0.0.1:1/123456789012/intercom".to_owned(),
            ),
            ("INTERCOM_CLIENT_SECRET", TEST_SECRET.to_owned()),
            ("AWS_ENDPOINT_URL", hang_endpoint),
        ],
    )
    .await;
    let started = Instant::now();
    let (status, answer) = status_and_body(&hanging.invoke(&event).await);
    let hung = started.elapsed();
    assert_eq!(
        (status, answer),
        (503, json!({"error":"queue_unavailable"}))
    );
    assert!(hung < Duration::from_secs(3), "hanging took {hung:?}");
    assert!(
        hung >= Duration::from_secs(1),
        "gave up before retrying: {hung:?}"
    );
    eprintln!("refused answered in {refused:?}, hanging in {hung:?}");
    held.abort();
    let error_lines = hanging
        .json_logs_when(1, |l| l["error"] == "queue_unavailable")
        .await;
    assert_eq!(error_lines.len(), 1);
    assert_eq!(error_lines[0]["level"], "ERROR", "the operator's to fix");
    assert_eq!(error_lines[0]["status"], 503);
    assert!(
        error_lines[0]["cause"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{}",
        error_lines[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_from_secrets_manager_and_rotation_without_redeploy() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom").await;
    let secrets = moto.secrets_manager().await;
    let arn = secrets
        .create_secret()
        .name("intercom/client-secret")
        .secret_string("sm-secret-one")
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn");
    let function = receiver(
        &moto,
        &queue,
        &[("INTERCOM_CLIENT_SECRET_ARN", arn.clone())],
    )
    .await;
    let body = notification("contact.user.created");
    let signed_one = Request::with_signature(&body, &fixtures::sign_with("sm-secret-one", &body))
        .event(Shape::Alb);
    let (status, answer) = status_and_body(&function.invoke(&signed_one).await);
    assert_eq!(status, 202, "{answer}");
    let with_test_secret = Request::signed(&body).event(Shape::Alb);
    assert_eq!(
        status_and_body(&function.invoke(&with_test_secret).await).0,
        401
    );

    // Rotate: both secrets during the change-over, as the README describes.
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("sm-secret-two,sm-secret-one")
        .send()
        .await
        .expect("rotate");
    let signed_two = Request::with_signature(&body, &fixtures::sign_with("sm-secret-two", &body))
        .event(Shape::Alb);
    // Within a minute of the cold start the secret is not read again: 401.
    assert_eq!(status_and_body(&function.invoke(&signed_two).await).0, 401);
    assert_eq!(moto.drain(&queue).await.len(), 1);
    // The minute-long wait is covered in the handler tests with a paused clock;
    // here a new cold start reads the rotated secret.
    let restarted = receiver(&moto, &queue, &[("INTERCOM_CLIENT_SECRET_ARN", arn)]).await;
    assert_eq!(status_and_body(&restarted.invoke(&signed_two).await).0, 202);
    assert_eq!(status_and_body(&restarted.invoke(&signed_one).await).0, 202);
    assert_eq!(moto.drain(&queue).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_with_several_inline_secrets() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom").await;
    let function = receiver(&moto, &queue, &[]).await;
    drop(function);
    let function = Function::start(
        BINARY,
        Some(&moto),
        &[
            ("QUEUE_URL", queue.clone()),
            (
                "INTERCOM_CLIENT_SECRET",
                "new-secret, local-test-secret".to_owned(),
            ),
        ],
    )
    .await;
    let body = notification("ticket.created");
    for signature in [sign(&body), fixtures::sign_with("new-secret", &body)] {
        let (status, _) = status_and_body(
            &function
                .invoke(&Request::with_signature(&body, &signature).event(Shape::FunctionUrl))
                .await,
        );
        assert_eq!(status, 202);
    }
    let forged = fixtures::sign_with("retired-secret", &body);
    assert_eq!(
        status_and_body(
            &function
                .invoke(&Request::with_signature(&body, &forged).event(Shape::FunctionUrl))
                .await
        )
        .0,
        401
    );
    assert_eq!(moto.drain(&queue).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_status_and_queue_nothing() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom").await;
    let function = receiver(&moto, &queue, &[]).await;
    for row in bad_inputs() {
        let (status, answer) = status_and_body(&function.invoke(&row.event).await);
        assert_eq!(status, u64::from(row.status), "{}: {answer}", row.name);
        assert_eq!(answer["error"], row.error, "{}", row.name);
    }
    // Events that are not even JSON objects still get an answer, not a crash.
    for raw in [&b"[1,2,3]"[..], b"\"just a string\"", b"42"] {
        let outcome = function
            .api
            .invoke_raw(raw.to_vec(), Duration::from_secs(5))
            .await;
        match outcome {
            Some(pipeline_tests::runtime_api::Outcome::Response(response)) => {
                assert_eq!(
                    response["statusCode"],
                    400,
                    "{}",
                    String::from_utf8_lossy(raw)
                );
            }
            other => panic!("{}: {other:?}", String::from_utf8_lossy(raw)),
        }
    }
    let (status, _) = status_and_body(
        &function
            .invoke(&Request::signed(&notification("ticket.created")).event(Shape::ApiGatewayV1))
            .await,
    );
    assert_eq!(status, 202, "still serving after all of that");
    assert_eq!(
        moto.drain(&queue).await.len(),
        1,
        "only the valid notification was queued"
    );
    let panicked = function.logs().iter().any(|l| l.contains("panicked"));
    assert!(!panicked, "{:?}", function.logs());
    // Each rejection is one WARN line with its error code; a bad signature
    // or a bad notification also says why, the others need not.
    let rejections = function.json_logs_when(1, |l| l["status"] == 401).await;
    assert!(!rejections.is_empty(), "no such request line");
    assert!(
        rejections.iter().all(|l| l["level"] == "WARN"
            && l["error"] == "invalid_signature"
            && l["reason"].as_str().is_some_and(|r| !r.is_empty())
            && l.get("cause").is_none()),
        "{rejections:?}"
    );
    let invalid = function.json_logs_when(1, |l| l["status"] == 400).await;
    assert!(!invalid.is_empty(), "no such request line");
    assert!(invalid.iter().all(|l| l["level"] == "WARN"), "{invalid:?}");
    let accepted = function.json_logs_when(1, |l| l["status"] == 202).await;
    assert!(!accepted.is_empty(), "no such request line");
    assert!(
        accepted
            .iter()
            .all(|l| l["level"] == "INFO" && l.get("error").is_none() && l.get("reason").is_none()),
        "{accepted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_is_an_init_error_naming_the_variable() {
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![("INTERCOM_CLIENT_SECRET", TEST_SECRET.to_owned())],
            "QUEUE_URL",
        ),
        (
            vec![("QUEUE_URL", "http://127.0.0.1:1/1/q".to_owned())],
            "INTERCOM_CLIENT_SECRET",
        ),
        (
            vec![
                ("QUEUE_URL", "http://127.0.0.1:1/1/q".to_owned()),
                ("INTERCOM_CLIENT_SECRET", TEST_SECRET.to_owned()),
                ("INTERCOM_ALLOWED_IPS", "intercom-moon".to_owned()),
            ],
            "INTERCOM_ALLOWED_IPS",
        ),
    ];
    for (env, variable) in cases {
        let mut function = Function::start(BINARY, None, &env).await;
        function.expect_init_error(variable).await;
    }

    // A secret that cannot be read from Secrets Manager is an init error too.
    let moto = Moto::start().await;
    let mut function = Function::start(
        BINARY,
        Some(&moto),
        &[
            ("QUEUE_URL", "http://127.0.0.1:1/1/q".to_owned()),
            ("INTERCOM_CLIENT_SECRET_ARN", "no-such-secret".to_owned()),
        ],
    )
    .await;
    function
        .expect_init_error("INTERCOM_CLIENT_SECRET_ARN")
        .await;
}

/// The largest body that fits in one SQS message is queued whole, and one
/// byte more gets 413 with nothing queued, for a body SQS carries as text
/// and for one it carries as base64. The boundary is found through the
/// receiver binary (by bisection on the answers), not computed here; the
/// message that made it is then measured as SQS counts a message (the body,
/// and each attribute's name, data type and value), as moto stored it, and
/// must be exactly SQS's 1 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_body_that_fits_is_queued_and_one_byte_more_is_413() {
    const SQS_LIMIT: usize = 1_048_576;
    let moto = Moto::start().await;
    let queue = moto.create_queue("sizes").await;
    let function = receiver(&moto, &queue, &[]).await;
    // A conversation whose item holds `pad` filler bytes; the second kind
    // also holds U+FFFF, valid JSON that SQS cannot carry as text.
    let body = |pad: usize, base64: bool| -> Vec<u8> {
        let mut body = fixtures::padded_body(400 + pad);
        if base64 {
            let at = body.len() - 7;
            body.splice(at..at + 3, "\u{FFFF}".bytes());
        }
        body
    };
    let answer = |body: Vec<u8>| {
        let function = &function;
        async move {
            let event = Request::signed(&body).event(Shape::ApiGatewayV2);
            status_and_body(&function.invoke(&event).await).0
        }
    };
    for base64 in [false, true] {
        let (mut fits, mut too_big) = (0, 1_100_000);
        assert_eq!(answer(body(fits, base64)).await, 202);
        assert_eq!(answer(body(too_big, base64)).await, 413);
        while too_big - fits > 1 {
            let middle = (fits + too_big) / 2;
            match answer(body(middle, base64)).await {
                202 => fits = middle,
                413 => too_big = middle,
                other => panic!("{other} for {middle} bytes of padding"),
            }
            moto.drain(&queue).await;
        }

        let largest = body(fits, base64);
        assert_eq!(answer(largest.clone()).await, 202);
        let queued = moto.drain(&queue).await;
        assert_eq!(queued.len(), 1);
        let message = &queued[0];
        let carried = message.body().expect("a body");
        let encoding = attribute(message, "content_encoding");
        assert_eq!(encoding, base64.then_some("base64"), "base64={base64}");
        let bytes =
            intercom_webhook::queue_message::decode_body(carried, encoding).expect("decodes");
        assert_eq!(&bytes[..], &largest[..], "queued whole, byte for byte");
        let size = carried.len()
            + message
                .message_attributes()
                .expect("attributes")
                .iter()
                .map(|(name, value)| {
                    name.len()
                        + value.data_type().len()
                        + value.string_value().unwrap_or_default().len()
                })
                .sum::<usize>();
        assert_eq!(
            size, SQS_LIMIT,
            "base64={base64}: the largest that fits fills the message"
        );

        assert_eq!(answer(body(fits + 1, base64)).await, 413);
        assert!(
            moto.drain(&queue).await.is_empty(),
            "nothing queued for a 413"
        );
    }
}
