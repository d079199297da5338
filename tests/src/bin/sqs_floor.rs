//! The floor under the receiver's queued request: a bare aws-sdk-sqs SendMessage loop.
//!
//! The same SDK configuration as the receiver (`webhook_receiver::queue::sdk_config`),
//! the same messages (built from `pipeline_tests::hot_path::queued_body`, as
//! the receiver builds them), the same endpoint, and nothing else: no Lambda
//! runtime, no HTTP event, no signature, no log line, no metrics. Each send
//! carries the trace header the receiver is invoked with, as the receiver's do. `measure` runs it as a
//! child process and reads its CPU time from outside, as it does the receiver's.
//!
//! Protocol on stdin/stdout, one line each: it builds the client and sends
//! message 0, then prints `sent`; on `go N` it sends the next N of messages
//! 1..=COUNT and prints `done`; it exits when stdin closes.
//!
//! `sqs-floor COUNT` with `QUEUE_URL` and the SDK's usual variables.

use std::io::{BufRead as _, Write as _};
use std::time::SystemTime;

use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::{CarriedBody, Delivery, QueueMessage};
use pipeline_tests::hot_path;
use pipeline_tests::runtime_api::TRACE_HEADER;
use webhook_receiver::queue::{Queue as _, SqsQueue, sdk_config};

fn line(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

fn wait_for_line() -> Option<String> {
    let mut text = String::new();
    match std::io::stdin().lock().read_line(&mut text) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(text.trim().to_owned()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let queue_url = std::env::var("QUEUE_URL").expect("QUEUE_URL");
    let fifo = queue_url.ends_with(".fifo");
    let verifier = hot_path::verifier();
    let bodies: Vec<(Vec<u8>, String)> = (0..=count)
        .map(|n| {
            let body = hot_path::queued_body(n);
            let signature = verifier.sign(&body);
            (body, signature)
        })
        .collect();
    let messages: Vec<QueueMessage<'_>> = bodies
        .iter()
        .map(|(body, signature)| {
            let verified = verifier
                .verify(body, Some(signature.as_bytes()))
                .expect("verifies");
            let envelope = Envelope::parse(verified).expect("valid");
            let delivery = Delivery {
                signature,
                subscription_id: None,
                received_at: SystemTime::now(),
            };
            QueueMessage::build(
                verified,
                CarriedBody::of(verified.as_bytes()),
                &envelope,
                &delivery,
                fifo,
            )
            .into_owned()
        })
        .collect();

    let queue = SqsQueue::new(&sdk_config().await, queue_url);
    queue
        .send(&messages[0], Some(TRACE_HEADER))
        .await
        .expect("first send");
    line("sent");
    let mut next = messages[1..].iter();
    while let Some(command) = wait_for_line() {
        let Some(n) = command
            .strip_prefix("go ")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        for message in next.by_ref().take(n) {
            queue.send(message, Some(TRACE_HEADER)).await.expect("send");
        }
        line("done");
    }
}
