//! The receiver's handler on any Lambda event: never panics, answers only the contract's statuses, and queues exactly what it accepts.
//!
//! Input: a mode byte, then the rest. An even mode byte: the rest is the raw
//! event. An odd one: the rest is a request body, signed with one of the
//! configured secrets and wrapped (base64) in an event of one of the four
//! shapes; then the answer must be exactly what the contract says of the
//! body, and a 202 must have queued the body byte for byte.
#![no_main]

use intercom_fixtures::contract::valid_envelope;
use intercom_fixtures::fixtures::{Request, Shape, sign_with};
use intercom_webhook::queue_message::{attribute, decode_body};
use intercom_webhook::signature::Verifier;
use libfuzzer_sys::fuzz_target;
use pipeline_fuzz::{KeptQueue, NeverFetched, SECRETS, block_on};
use webhook_receiver::handler::Receiver;
use webhook_receiver::secrets::Secrets;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let receiver: Receiver<KeptQueue, NeverFetched> = Receiver {
        queue: KeptQueue::default(),
        secrets: Secrets::fixed(Verifier::new(SECRETS).expect("secrets")),
        fifo: mode & 0x40 != 0,
        allowed_sources: None,
        allowed_app_ids: None,
        forward_ping: false,
    };
    let signed = mode & 1 == 1;
    let event = if signed {
        let shape = Shape::ALL[usize::from(mode >> 1) % 4];
        let secret = SECRETS[usize::from(mode >> 3) & 1];
        let event = Request::with_signature(rest, &sign_with(secret, rest))
            .base64()
            .event(shape);
        serde_json::to_vec(&event).expect("serialisable")
    } else {
        rest.to_vec()
    };

    let response = block_on(receiver.handle_event(&event, None));
    let status = response.status_code;
    let json = serde_json::to_value(&response).expect("serialises");
    assert_eq!(json["statusCode"], status, "never null: {json}");
    assert!(
        [200, 202, 400, 401, 403, 405, 413].contains(&status),
        "status {status}"
    );
    let messages = std::mem::take(&mut *receiver.queue.0.lock().expect("lock"));
    assert_eq!(
        messages.len(),
        usize::from(status == 202),
        "queued per status {status}"
    );

    if signed {
        let valid = valid_envelope(rest).is_ok();
        let ping = valid
            && serde_json::from_slice::<serde_json::Value>(rest).expect("JSON")["topic"] == "ping";
        let expected = match (valid, ping) {
            (false, _) => 400,
            (true, true) => 200,
            (true, false) => 202,
        };
        assert_eq!(status, expected, "signed body");
        if let Some(message) = messages.first() {
            let encoding = message.attribute(attribute::CONTENT_ENCODING);
            let carried = decode_body(&message.body, encoding).expect("decodable");
            assert_eq!(&carried[..], rest, "queued byte for byte");
            assert_eq!(encoding.is_none(), pipeline_fuzz::sqs_can_carry(rest));
        }
    }
});
