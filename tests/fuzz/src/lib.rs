//! What the fuzz targets share: the secrets, a queue and a secret store that stay in memory, and a runtime for the async receiver.

use std::sync::Mutex;

use intercom_webhook::queue_message::QueueMessage;
use webhook_receiver::queue::{Queue, QueueError};
use webhook_receiver::secrets::{FetchError, SecretFetcher};

/// The secrets every target verifies with (the second one, for rotation).
pub const SECRETS: [&str; 2] = [intercom_fixtures::fixtures::TEST_SECRET, "rotated-secret"];

/// Whether SQS can carry `bytes` as a text body, from its documentation
/// (valid UTF-8 of `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
/// #x10000-#x10FFFF`), written apart from the library's own rule.
pub fn sqs_can_carry(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        text.chars().all(|c| {
            matches!(u32::from(c), 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
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
    async fn send(&self, message: &QueueMessage<'_>, _: Option<&str>) -> Result<(), QueueError> {
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
