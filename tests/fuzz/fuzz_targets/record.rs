//! The processor's record decoding: never panics, decodes only valid notifications, and carries any accepted body through the queue unchanged.
//!
//! Input: a mode byte, then the rest. Mode 0: the rest is a message body as
//! SQS delivers it (lossy UTF-8), without `content_encoding`; mode 1: the
//! same with `content_encoding: base64`; otherwise the rest is a request body
//! that, where it is a valid notification, is built into a queue message as
//! the receiver builds it and decoded back as the processor decodes it.
#![no_main]

use std::time::SystemTime;

use intercom_fixtures::contract::valid_envelope;
use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::{CarriedBody, Delivery, QueueMessage, attribute, decode_body, sqs_text};
use intercom_webhook::record;
use intercom_webhook::signature::Verifier;
use libfuzzer_sys::fuzz_target;
use pipeline_fuzz::sqs_can_carry;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 | 1 => {
            let body = String::from_utf8_lossy(rest);
            let encoding = (mode == 1).then_some("base64");
            if let Ok(bytes) = decode_body(&body, encoding)
                && let Ok(record::Decoded { meta, .. }) = record::decode(&bytes, "m-1")
            {
                assert!(
                    valid_envelope(&bytes).is_ok(),
                    "decoded an invalid notification"
                );
                assert_eq!(meta.message_id, "m-1");
            }
        }
        _ => {
            assert_eq!(
                sqs_text(rest).is_some(),
                sqs_can_carry(rest),
                "SQS text rule"
            );
            let verifier = Verifier::new(["k"]).expect("secret");
            let signature = verifier.sign(rest);
            let verified = verifier
                .verify(rest, Some(signature.as_bytes()))
                .expect("own signature");
            let Ok(envelope) = Envelope::parse(verified) else {
                return;
            };
            let delivery = Delivery {
                signature: &signature,
                subscription_id: None,
                received_at: SystemTime::UNIX_EPOCH,
            };
            let message = QueueMessage::build(verified, CarriedBody::of(verified.as_bytes()), &envelope, &delivery, mode & 2 == 2);
            let encoding = message.attribute(attribute::CONTENT_ENCODING);
            let carried = decode_body(&message.body, encoding).expect("decodable");
            assert_eq!(&carried[..], rest, "carried byte for byte");
            let record::Decoded { meta, .. } = record::decode(&carried, "m-2")
                .expect("what the receiver accepts, the processor decodes");
            assert_eq!(meta.topic_name, envelope.topic);
            assert_eq!(meta.notification_id.as_deref(), envelope.id.as_deref());
        }
    }
});
