//! Bodies the receiver stored in S3 because SQS could not carry them, read back for their records.
//!
//! A pointer message (the Amazon SQS Extended Client Library's format)
//! names a bucket and a key; the object is the body byte for byte. The S3
//! client is built on the first pointer, so a processor that never sees one
//! never pays for it. Objects are left to the bucket's lifecycle rule: a
//! copy of the message (SQS delivers at least once) may still need one.

use tokio::sync::OnceCell;

use crate::sdk::sdk_config;

/// Reads stored bodies; one S3 client, built when first needed.
#[derive(Debug, Default)]
pub struct Payloads {
    /// The function's SDK configuration, when it was loaded at start.
    sdk: Option<aws_config::SdkConfig>,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl Payloads {
    /// A reader whose client is made from `sdk`, the function's one SDK
    /// configuration; with `None` (nothing else needed one at start) it is
    /// loaded at the first pointer.
    pub fn new(sdk: Option<aws_config::SdkConfig>) -> Self {
        Self {
            sdk,
            client: OnceCell::new(),
        }
    }

    /// The bytes of `s3://{bucket}/{key}`.
    pub async fn fetch(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let client = self
            .client
            .get_or_init(|| async {
                match &self.sdk {
                    Some(sdk) => lambda_init::aws::s3_client(sdk),
                    None => lambda_init::aws::s3_client(&sdk_config().await),
                }
            })
            .await;
        let object = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "s3://{bucket}/{key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
        object
            .body
            .collect()
            .await
            .map(|data| data.to_vec())
            .map_err(|e| format!("s3://{bucket}/{key}: {e}"))
    }
}
