//! The processor's one AWS SDK configuration: the environment's settings with attempt timeouts sized for records that have their own deadlines.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// The SDK configuration the processor's clients share: the environment's
/// settings (`lambda_init::aws::loader`), with attempts that give up a hung
/// connection for a fresh one while a record still has time (the
/// function's timeout is a minute). The record's own deadline bounds each
/// call as a whole (`processor`), so there is no operation timeout here.
/// Shorter attempts would retry calls that are only slow, adding load to a
/// service that is already slow.
pub async fn sdk_config() -> aws_config::SdkConfig {
    lambda_init::aws::loader()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}
