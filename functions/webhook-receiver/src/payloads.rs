//! Bodies too large for one SQS message, stored in S3 by the SDK's `PutObject`, on a client built when the first such body comes.
//!
//! The client is made from the receiver's one SDK configuration: its
//! credentials, region, endpoint settings, and its HTTP client, so the
//! connection pool and the TLS roots (`lambda_init::aws`) are the ones SQS
//! uses. It is built at the first body too large for SQS, not at the cold
//! start: a receiver that never sees one never pays for it (BENCHMARKS.md).
//! Its own timeouts: a connection within 500 ms, at most two attempts of
//! 1.2 s each (a body of several MB needs longer than the 800 ms an SQS
//! attempt gets), 2.4 s in all; the handler's answer budget bounds the
//! whole. A local S3 (an endpoint URL is set) is addressed by path.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::ByteStream;
use tokio::sync::OnceCell;

/// Attempts per object: a 5xx, a throttle or a broken connection is tried
/// again once.
const ATTEMPTS: u32 = 2;
/// One attempt's bound.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1200);

/// Where payloads go; the S3 client, once built.
#[derive(Debug, Clone)]
pub struct S3Payloads {
    bucket: String,
    sdk: aws_config::SdkConfig,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl S3Payloads {
    /// Payloads in `bucket`, with a client made from `sdk` when first needed.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: String) -> Self {
        Self {
            bucket,
            sdk: sdk.clone(),
            client: OnceCell::new(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores `body` under `key`; `Ok` once S3 acknowledged it, else what
    /// went wrong, naming the object.
    pub async fn put(&self, key: &str, body: &[u8]) -> Result<(), String> {
        let client = self
            .client
            .get_or_init(|| async { client(&self.sdk) })
            .await;
        client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "s3://{}/{key}: {}",
                    self.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })
    }
}

/// The S3 client: `sdk` with this module's timeouts and retries.
fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let sdk = sdk
        .to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(ATTEMPT_TIMEOUT * ATTEMPTS)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(ATTEMPTS))
        .build();
    lambda_init::aws::s3_client(&sdk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_waits_for_the_first_body() {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let payloads = S3Payloads::new(&sdk, "intercom-payloads".to_owned());
        assert_eq!(payloads.bucket(), "intercom-payloads");
        assert!(!payloads.client.initialized(), "no client at the start");
        let built = client(&sdk);
        let config = built.config();
        let timeouts = config.timeout_config().expect("timeouts");
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(ATTEMPT_TIMEOUT * 2));
        assert_eq!(
            config.retry_config().map(|r| r.max_attempts()),
            Some(ATTEMPTS)
        );
    }
}
