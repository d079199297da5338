//! The receiver's per-request work, without I/O, in a loop: a target for
//! `valgrind --tool=callgrind`, which counts instructions repeatably.
//!
//! `receiver_work [1KB|5KB|300KB] [iterations] [work|floor|parse|ignored|build]`
//! runs what the `receiver/*` criterion benchmark measures (the same
//! `pipeline_tests::hot_path` functions), or one step: the envelope parse,
//! the floor's `IgnoredAny` pass alone, or building the queue message.
//! The command that profiles it is in `BENCHMARKS.md`.

use std::hint::black_box;

use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::{CarriedBody, QueueMessage};
use pipeline_tests::hot_path;

fn main() {
    let mut args = std::env::args().skip(1);
    let size = args.next().unwrap_or_else(|| "300KB".into());
    let iterations: usize = args.next().map_or(100, |n| n.parse().expect("iterations"));
    let what = args.next().unwrap_or_else(|| "work".into());
    let body = hot_path::body(&size)
        .unwrap_or_else(|| panic!("unknown size {size}: one of {:?}", hot_path::SIZES));
    let verifier = hot_path::verifier();
    let signature = verifier.sign(&body);
    let verified = verifier
        .verify(&body, Some(signature.as_bytes()))
        .expect("verifies");
    let envelope = Envelope::parse(verified).expect("valid");
    for _ in 0..iterations {
        match what.as_str() {
            "work" => {
                black_box(hot_path::work(&verifier, &body, &signature));
            }
            "floor" => hot_path::floor(&body),
            "ignored" => hot_path::ignored(&body),
            "parse" => {
                black_box(Envelope::parse(black_box(verified)).expect("valid"));
            }
            "build" => {
                let delivery = hot_path::delivery(&signature);
                black_box(QueueMessage::build(
                    verified,
                    CarriedBody::of(verified.as_bytes()),
                    &envelope,
                    &delivery,
                    true,
                ));
            }
            other => panic!("unknown mode {other}: work, floor, parse, ignored or build"),
        }
    }
}
