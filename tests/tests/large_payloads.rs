//! Bodies beyond SQS's limit through S3 (the Extended Client's claim check), through the release binaries and moto's SQS and S3.

use intercom_webhook::queue_message::{self, MAX_MESSAGE_BYTES};
use pipeline_tests::fixtures::{Request, Shape, sign};
use pipeline_tests::function::Function;
use pipeline_tests::moto::{Moto, sqs_event};
use pipeline_tests::samples;
use serde_json::{Value, json};

const ARN: &str = "arn:aws:sqs:us-east-1:123456789012:intercom.fifo";

async fn receiver(moto: &Moto, queue: &str, bucket: &str) -> Function {
    Function::receiver(moto, queue, &[("PAYLOAD_BUCKET", bucket.to_owned())]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_beyond_sqs_goes_to_s3_and_the_processor_sees_it_whole() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom.fifo").await;
    let payloads = moto.create_bucket("intercom-payloads").await;
    let archive = moto.create_bucket("intercom-archive").await;
    let receiver = receiver(&moto, &queue, &payloads).await;

    // 1.5 MB: beyond one SQS message; a small one beside it stays inline.
    let large = samples::conversation_of(1_500_000);
    assert!(large.len() > MAX_MESSAGE_BYTES);
    let small = samples::sample_body(intercom_webhook::topic::Topic::ContactUserCreated);
    for body in [&large, &small] {
        let response = receiver
            .invoke(&Request::signed(body).event(Shape::ApiGatewayV2))
            .await;
        assert_eq!(response["statusCode"], 202, "{response}");
    }
    let messages = moto.drain(&queue).await;
    assert_eq!(messages.len(), 2);
    let pointer = messages
        .iter()
        .find(|m| m.body().is_some_and(|b| b.starts_with('[')))
        .expect("a pointer message");
    let inline = messages
        .iter()
        .find(|m| m.body().map(str::as_bytes) == Some(small.as_slice()))
        .expect("the small body inline");
    assert!(
        inline
            .message_attributes()
            .is_some_and(|a| !a.contains_key("ExtendedPayloadSize"))
    );

    // The Extended Client's format: the pointer body, ExtendedPayloadSize
    // (a Number), and every usual attribute and FIFO id.
    let (bucket, key) =
        queue_message::payload_pointer(pointer.body().expect("body")).expect("a pointer body");
    assert_eq!(bucket, payloads);
    assert_eq!(key, queue_message::payload_key(&large));
    let attributes = pointer.message_attributes().expect("attributes");
    let size = &attributes["ExtendedPayloadSize"];
    assert_eq!(size.data_type(), "Number");
    assert_eq!(size.string_value(), Some(large.len().to_string().as_str()));
    let text = |name: &str| attributes.get(name).and_then(|v| v.string_value());
    assert_eq!(text("topic"), Some("conversation.admin.replied"));
    assert_eq!(text("notification_id"), Some("notif_large_conversation"));
    assert_eq!(text("signature"), Some(sign(&large).as_str()));
    assert!(text("received_at").is_some());
    let system = pointer.attributes().expect("system attributes");
    assert!(system.keys().any(|k| k.as_str() == "MessageGroupId"));
    assert_eq!(
        system
            .iter()
            .find(|(k, _)| k.as_str() == "MessageDeduplicationId")
            .map(|(_, v)| v.as_str()),
        Some("notif_large_conversation")
    );
    let objects = moto.objects(&payloads).await;
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].0, key);
    assert_eq!(objects[0].1, large, "the object is the body byte for byte");

    // The processor reads it back: its destinations get the original bytes.
    let processor = Function::start(
        "topic-processor",
        Some(&moto),
        &[("ARCHIVE_BUCKET", archive.clone())],
    )
    .await;
    let response = processor.invoke(&sqs_event(&messages, ARN)).await;
    assert_eq!(
        response,
        json!({"batchItemFailures": []}),
        "{:?}",
        processor.logs()
    );
    let lines = processor
        .json_logs_when(2, |l| l["message"] == "record")
        .await;
    assert!(
        lines.iter().all(|l| l["outcome"] == "processed"),
        "{lines:?}"
    );
    let archived = moto.objects(&archive).await;
    let whole = archived
        .iter()
        .find(|(k, _, _)| k.ends_with("/notif_large_conversation.json"))
        .expect("the large notification archived");
    assert_eq!(whole.1, large, "destinations see the original bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_s3_failing_the_answer_is_503_and_nothing_is_queued() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("intercom.fifo").await;
    // A bucket that does not exist: every PutObject fails.
    let receiver = receiver(&moto, &queue, "no-such-bucket").await;
    let large = samples::conversation_of(1_200_000);
    let response = receiver
        .invoke(&Request::signed(&large).event(Shape::ApiGatewayV2))
        .await;
    assert_eq!(response["statusCode"], 503, "{response}");
    let line = receiver
        .json_logs_when(1, |l| l["message"] == "request")
        .await;
    assert_eq!(line[0]["error"], "queue_unavailable");
    assert!(
        line[0]["cause"]
            .as_str()
            .is_some_and(|c| c.contains("no-such-bucket")),
        "{line:?}"
    );
    assert!(moto.drain(&queue).await.is_empty());
    // A small body still goes straight to the queue.
    let small = samples::sample_body(intercom_webhook::topic::Topic::ContactUserCreated);
    let response = receiver
        .invoke(&Request::signed(&small).event(Shape::ApiGatewayV2))
        .await;
    assert_eq!(response["statusCode"], 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_to_a_missing_object_fails_its_record_with_the_reason() {
    let moto = Moto::start().await;
    let bucket = moto.create_bucket("intercom-payloads").await;
    let processor = Function::start("topic-processor", Some(&moto), &[]).await;
    let pointer =
        json!([queue_message::POINTER_CLASS, {"s3BucketName": bucket, "s3Key": "gone.json"}]);
    let record = pipeline_tests::sqs::record(
        "m-1",
        &pointer.to_string(),
        pipeline_tests::sqs::Received::first(&[("ExtendedPayloadSize", "2000000")], None),
    );
    let event: Value = serde_json::to_value(pipeline_tests::sqs::event(
        vec![record],
        pipeline_tests::sqs::QUEUE_ARN,
    ))
    .expect("json");
    let response = processor.invoke(&event).await;
    assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m-1");
    let lines = processor
        .json_logs_when(1, |l| l["message"] == "record")
        .await;
    assert_eq!(lines[0]["outcome"], "failed");
    assert_eq!(lines[0]["reason"], "payload_unavailable");
    assert!(
        lines[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("gone.json")),
        "{lines:?}"
    );
}
