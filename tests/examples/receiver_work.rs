//! The receiver's per-request work, without I/O, in a loop: a target for
//! `valgrind --tool=callgrind`, which counts instructions repeatably.
//!
//! `receiver_work [1KB|5KB|300KB] [iterations] [work|floor|parse|ignored|build]` runs
//! what the `receiver/*` criterion benchmark measures (see
//! `benches/hot_paths.rs`), or one step: the envelope parse, the floor's
//! `IgnoredAny` pass alone, or building the queue message.
//! The command that profiles it is in `BENCHMARKS.md`.

use std::hint::black_box;
use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::{Delivery, QueueMessage};
use intercom_webhook::signature::Verifier;
use intercom_webhook::topic::Topic;
use pipeline_tests::fixtures::TEST_SECRET;
use pipeline_tests::samples;
use serde::de::IgnoredAny;

fn main() {
    let mut args = std::env::args().skip(1);
    let size = args.next().unwrap_or_else(|| "300KB".into());
    let iterations: usize = args.next().map_or(100, |n| n.parse().expect("iterations"));
    let what = args.next().unwrap_or_else(|| "work".into());
    let body = match size.as_str() {
        "1KB" => samples::sample_body(Topic::ContactUserTagCreated),
        "5KB" => samples::conversation_of(5 * 1024),
        "300KB" => samples::conversation_of(300 * 1024),
        other => panic!("unknown size {other}: 1KB, 5KB or 300KB"),
    };
    let verifier = Verifier::new([TEST_SECRET]).expect("secret");
    let signature = verifier.sign(&body);
    let verified = verifier
        .verify(&body, Some(signature.as_bytes()))
        .expect("verifies");
    let envelope = Envelope::parse(verified).expect("valid");
    for _ in 0..iterations {
        match what.as_str() {
            "parse" => {
                black_box(Envelope::parse(black_box(verified)).expect("valid"));
            }
            "ignored" => {
                black_box(serde_json::from_slice::<IgnoredAny>(black_box(&body)).expect("json"));
            }
            "build" => {
                let delivery = Delivery {
                    signature: &signature,
                    subscription_id: None,
                    received_at: SystemTime::UNIX_EPOCH,
                };
                black_box(QueueMessage::build(verified, &envelope, &delivery, true));
            }
            "work" => {
                let verified = verifier
                    .verify(black_box(&body), Some(signature.as_bytes()))
                    .expect("verifies");
                let envelope = Envelope::parse(verified).expect("valid");
                let delivery = Delivery {
                    signature: &signature,
                    subscription_id: None,
                    received_at: SystemTime::UNIX_EPOCH,
                };
                let message = QueueMessage::build(verified, &envelope, &delivery, true);
                black_box(message.size());
            }
            "floor" => {
                let mut mac =
                    Hmac::<sha1::Sha1>::new_from_slice(TEST_SECRET.as_bytes()).expect("key");
                mac.update(black_box(&body));
                black_box(mac.finalize());
                black_box(serde_json::from_slice::<IgnoredAny>(&body).expect("json"));
            }
            other => panic!("unknown mode {other}: work, floor, parse, ignored or build"),
        }
    }
}
