//! Sending queue messages to SQS, within a time budget.
//!
//! [`Queue`] is the seam the handler depends on; `SqsQueue` (feature `aws`,
//! on by default) is the real one.
//! The SDK client is built once, with its own retries (standard mode, three
//! attempts, short backoff) and timeouts sized so that a refused or hanging
//! SQS still lets the receiver answer well within Intercom's five seconds.

use std::future::Future;

use intercom_webhook::queue_message::QueueMessage;
#[cfg(doc)]
use intercom_webhook::queue_message::TRACE_HEADER_ATTRIBUTE;

#[cfg(feature = "aws")]
pub use sqs::{SqsQueue, sdk_config, sdk_timeouts};

/// The queue did not acknowledge a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueError(pub String);

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "queue did not acknowledge the message: {}", self.0)
    }
}

impl std::error::Error for QueueError {}

/// `header` if SQS would take it as [`TRACE_HEADER_ATTRIBUTE`]: an X-Ray header
/// (`Root=1-…`, printable ASCII, at most 16 KB as SQS allows). Anything
/// else is left off rather than let it fail the send.
pub fn sendable_trace_header(header: Option<&str>) -> Option<&str> {
    header.filter(|h| {
        h.starts_with("Root=1-") && h.len() <= 16 * 1024 && h.bytes().all(|b| b.is_ascii_graphic())
    })
}

/// Something that takes queue messages and says when it has them.
pub trait Queue: Send + Sync {
    /// Resolves `Ok` only once the queue acknowledged the message.
    /// `trace_header`, the invocation's X-Ray trace header, goes with it
    /// as the system attribute [`TRACE_HEADER_ATTRIBUTE`] when it is well formed.
    fn send(
        &self,
        message: &QueueMessage<'_>,
        trace_header: Option<&str>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// The S3 bucket bodies too large for one message go to
    /// (`PAYLOAD_BUCKET`); `None`, the default, means such bodies are 413.
    fn payload_bucket(&self) -> Option<&str> {
        None
    }

    /// Stores `body` under `key` in [`Queue::payload_bucket`]; `Ok` only
    /// once S3 acknowledged it.
    fn store_payload(
        &self,
        key: &str,
        body: &[u8],
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        let _ = (key, body);
        std::future::ready(Err(QueueError("no payload bucket is configured".into())))
    }
}

/// The real queue: SQS through the AWS SDK.
#[cfg(feature = "aws")]
mod sqs {
    use std::time::Duration;

    use aws_config::retry::RetryConfig;
    use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_sdk_sqs::types::{
        MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    };
    use intercom_webhook::queue_message::{QueueMessage, attribute_data_type};

    use super::{Queue, QueueError, sendable_trace_header};
    use crate::payloads::S3Payloads;

    /// Timeouts and retries for SQS calls: at most three attempts of at most 800 ms
    /// each, 2.4 s in all, so the handler's 2.7 s queue budget is never the limit
    /// that fires first unless SQS hangs.
    pub fn sdk_timeouts() -> (TimeoutConfig, RetryConfig) {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(500))
            .operation_attempt_timeout(Duration::from_millis(800))
            .operation_timeout(Duration::from_millis(2400))
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(50))
            .with_max_backoff(Duration::from_millis(200));
        (timeouts, retries)
    }

    /// The SDK configuration the receiver's clients share: the SDK's own
    /// settings from the environment (`lambda_init::aws::loader`), with
    /// [`sdk_timeouts`], and no stalled-stream protection: its throughput
    /// watch suits long transfers, while these calls are small and each
    /// attempt is bounded by its timeout anyway.
    pub async fn sdk_config() -> aws_config::SdkConfig {
        let (timeouts, retries) = sdk_timeouts();
        lambda_init::aws::loader()
            .timeout_config(timeouts)
            .retry_config(retries)
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .load()
            .await
    }

    /// The SQS queue named by `QUEUE_URL`, and the bucket of `PAYLOAD_BUCKET`.
    #[derive(Debug, Clone)]
    pub struct SqsQueue {
        client: aws_sdk_sqs::Client,
        queue_url: String,
        payloads: Option<Box<S3Payloads>>,
    }

    impl SqsQueue {
        pub fn new(sdk_config: &aws_config::SdkConfig, queue_url: String) -> Self {
            Self {
                client: aws_sdk_sqs::Client::new(sdk_config),
                queue_url,
                payloads: None,
            }
        }

        /// The same, storing bodies too large for SQS in `bucket`, with an
        /// S3 client made from `sdk_config` at the first such body.
        pub fn with_payload_bucket(
            mut self,
            sdk_config: &aws_config::SdkConfig,
            bucket: String,
        ) -> Self {
            self.payloads = Some(Box::new(S3Payloads::new(sdk_config, bucket)));
            self
        }
    }

    impl Queue for SqsQueue {
        async fn send(
            &self,
            message: &QueueMessage<'_>,
            trace_header: Option<&str>,
        ) -> Result<(), QueueError> {
            let mut request = self
                .client
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(message.body.as_ref());
            for (name, value) in &message.attributes {
                let value = MessageAttributeValue::builder()
                    .data_type(attribute_data_type(name))
                    .string_value(value.as_ref())
                    .build()
                    .map_err(|e| QueueError(e.to_string()))?;
                request = request.message_attributes(*name, value);
            }
            if let Some(header) = sendable_trace_header(trace_header) {
                let value = MessageSystemAttributeValue::builder()
                    .data_type("String")
                    .string_value(header)
                    .build()
                    .map_err(|e| QueueError(e.to_string()))?;
                request = request.message_system_attributes(
                    MessageSystemAttributeNameForSends::AwsTraceHeader,
                    value,
                );
            }
            if let Some(fifo) = &message.fifo {
                request = request
                    .message_group_id(&fifo.group_id)
                    .message_deduplication_id(&fifo.deduplication_id);
            }
            request
                .send()
                .await
                .map(drop)
                .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))
        }

        fn payload_bucket(&self) -> Option<&str> {
            self.payloads.as_deref().map(S3Payloads::bucket)
        }

        async fn store_payload(&self, key: &str, body: &[u8]) -> Result<(), QueueError> {
            match &self.payloads {
                Some(payloads) => payloads.put(key, body).await.map_err(QueueError),
                None => Err(QueueError("no payload bucket is configured".into())),
            }
        }
    }
}
