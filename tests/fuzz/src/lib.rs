//! What the fuzz targets share: the contract oracle comparison and a runtime for the async receiver.

use intercom_fixtures::contract::{has_duplicate_envelope_field, valid_envelope};
use std::sync::Mutex;

use intercom_webhook::envelope::Envelope;
use intercom_webhook::queue_message::QueueMessage;
use webhook_receiver::queue::{Queue, QueueError};
use webhook_receiver::secrets::{FetchError, SecretFetcher};

/// The secrets every target verifies with (the second one, for rotation).
pub const SECRETS: [&str; 2] = [intercom_fixtures::fixtures::TEST_SECRET, "rotated-secret"];

/// Panics unless the one-pass parser and the contract agree on `bytes`: the
/// same verdict (a duplicated envelope field is always refused), and on
/// acceptance the same topic, id, app_id and created_at.
pub fn assert_envelope_agrees(bytes: &[u8]) {
    let parsed = Envelope::parse_unverified(bytes);
    if has_duplicate_envelope_field(bytes) {
        assert!(parsed.is_err(), "a duplicated envelope field was accepted");
        return;
    }
    let verdict = valid_envelope(bytes);
    assert_eq!(
        parsed.is_ok(),
        verdict.is_ok(),
        "parser {parsed:?}, contract {verdict:?}"
    );
    if let Ok(envelope) = parsed {
        let value: serde_json::Value = serde_json::from_slice(bytes).expect("valid JSON");
        assert_eq!(value["topic"].as_str(), Some(envelope.topic.as_ref()));
        assert_eq!(value["app_id"].as_str(), Some(envelope.app_id.as_ref()));
        assert_eq!(value["created_at"].as_i64(), Some(envelope.created_at));
        assert_eq!(
            value.get("id").and_then(serde_json::Value::as_str),
            envelope.id.as_deref()
        );
    }
}

/// Whether SQS can carry `bytes` as a text body, by the character rule of its
/// documentation (`#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
/// #x10000-#x10FFFF`), one character at a time.
pub fn sqs_can_carry(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        text.chars().all(|c| {
            matches!(c, '\t' | '\n' | '\r')
                || ('\u{20}'..='\u{D7FF}').contains(&c)
                || ('\u{E000}'..='\u{FFFD}').contains(&c)
                || c >= '\u{10000}'
        })
    })
}

/// One current-thread runtime per fuzzing thread.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// A queue that keeps what it is sent.
#[derive(Debug, Default)]
pub struct KeptQueue(pub Mutex<Vec<QueueMessage<'static>>>);

impl Queue for KeptQueue {
    async fn send(&self, message: &QueueMessage<'_>) -> Result<(), QueueError> {
        self.0
            .lock()
            .expect("lock")
            .push(message.clone().into_owned());
        Ok(())
    }
}

/// Secrets that come from configuration only, never fetched.
#[derive(Debug)]
pub struct NeverFetched;

impl SecretFetcher for NeverFetched {
    async fn fetch(&self) -> Result<String, FetchError> {
        Err(FetchError("no secret store in the fuzz targets".into()))
    }
}
