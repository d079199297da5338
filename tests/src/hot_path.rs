//! The receiver's per-request work and its floor, without I/O, and the notification `measure` sends: one definition for the criterion benchmark (`benches/hot_paths.rs`), the callgrind target (`examples/receiver_work.rs`) and the end-to-end figures.

use std::hint::black_box;
use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::{CarriedBody, Delivery, QueueMessage};
use intercom_webhook::signature::Verifier;
use intercom_webhook::topic::Topic;
use serde::de::IgnoredAny;

use crate::fixtures::TEST_SECRET;
use crate::samples;

/// The bodies measured: a 1 KB contact tag and conversations of 5 KB and 300 KB.
pub const SIZES: [&str; 3] = ["1KB", "5KB", "300KB"];

/// The notification measured for one of [`SIZES`].
pub fn body(size: &str) -> Option<Vec<u8>> {
    match size {
        "1KB" => Some(samples::sample_body(Topic::ContactUserTagCreated)),
        "5KB" => Some(samples::conversation_of(5 * 1024)),
        "300KB" => Some(samples::conversation_of(300 * 1024)),
        _ => None,
    }
}

/// The notification `measure` sends as request `n`, end to end: a
/// conversation started by a user (about 1.8 KB), each with its own id so
/// that a FIFO queue keeps every one.
pub fn queued_body(n: usize) -> Vec<u8> {
    let mut notification = samples::sample(Topic::ConversationUserCreated);
    notification["id"] = serde_json::Value::String(format!("notif_measure_{n}"));
    serde_json::to_vec(&notification).expect("serialisable")
}

/// The verifier the work uses, keyed with the test secret.
pub fn verifier() -> Verifier {
    Verifier::new([TEST_SECRET]).expect("secret")
}

/// The delivery facts a queue message carries, fixed so runs compare.
pub fn delivery(signature: &str) -> Delivery<'_> {
    Delivery {
        signature,
        subscription_id: None,
        received_at: SystemTime::UNIX_EPOCH,
    }
}

/// The work: verify the signature, validate the envelope, build the (FIFO)
/// queue message. Returns the message's size.
pub fn work(verifier: &Verifier, body: &[u8], signature: &str) -> usize {
    let verified = verifier
        .verify(black_box(body), Some(signature.as_bytes()))
        .expect("verifies");
    let envelope = Envelope::parse(verified).expect("valid");
    QueueMessage::build(
        verified,
        CarriedBody::of(verified.as_bytes()),
        &envelope,
        &delivery(signature),
        true,
    )
    .size()
}

/// The floor: HMAC-SHA1 over the same bytes, keyed per request, plus one
/// serde_json pass with `IgnoredAny`.
pub fn floor(body: &[u8]) {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TEST_SECRET.as_bytes()).expect("key");
    mac.update(black_box(body));
    black_box(mac.finalize());
    ignored(body);
}

/// The floor's JSON pass alone.
pub fn ignored(body: &[u8]) {
    black_box(serde_json::from_slice::<IgnoredAny>(black_box(body)).expect("json"));
}
