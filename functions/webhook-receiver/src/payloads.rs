//! Bodies too large for one SQS message, stored in S3 with one signed `PutObject`, without the S3 SDK.
//!
//! Why not `aws-sdk-s3`: it added 1.6 MB to the binary (zip 3.64 → 4.61 MB),
//! 0.8 MiB of peak RSS and ~0.3 ms of init to every cold start of the
//! receiver, including the 99 % that never store a payload (BENCHMARKS.md).
//! A single `PutObject` is one HTTP `PUT` signed with SigV4: the signing is
//! `aws-sigv4` (the SDK's own signer), the connection is the same hyper and
//! rustls the SDK uses, trusting the same roots (`lambda_init::aws`).
//!
//! Addressing: `https://{bucket}.s3.{region}.amazonaws.com/{key}`
//! (`.amazonaws.com.cn` in China), path style for a bucket name with dots
//! and for an endpoint override (`AWS_ENDPOINT_URL_S3` or
//! `AWS_ENDPOINT_URL`, e.g. a local moto). Keys are SHA-256 hex names, so
//! they need no escaping.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Attempts per object: a 5xx or a broken connection is tried again once.
const ATTEMPTS: usize = 2;
/// One attempt's bound (the handler's answer budget bounds the whole).
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1200);

/// Where payloads go, and how to sign for them.
#[derive(Clone)]
pub struct S3Payloads {
    bucket: String,
    region: String,
    /// `scheme://host[:port]` of an endpoint override; path-style then.
    endpoint: Option<String>,
    credentials: SharedCredentialsProvider,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for S3Payloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Payloads")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Payloads {
    /// Payloads in `bucket`, with the SDK configuration's region, credentials
    /// and endpoint override.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: String) -> Result<Self, String> {
        let region = sdk
            .region()
            .map(ToString::to_string)
            .ok_or("no AWS region is configured")?;
        let credentials = sdk
            .credentials_provider()
            .ok_or("no AWS credentials provider is configured")?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .ok()
            .filter(|e| !e.trim().is_empty())
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .map(|e| e.trim().trim_end_matches('/').to_owned());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = if lambda_init::aws::Shortcuts::from_env().amazon_roots {
            let mut roots = rustls::RootCertStore::empty();
            use rustls_pki_types::pem::PemObject as _;
            for certificate in rustls_pki_types::CertificateDer::pem_slice_iter(
                lambda_init::aws::AMAZON_TRUST_SERVICES.as_bytes(),
            )
            .flatten()
            {
                roots.add(certificate).map_err(|e| e.to_string())?;
            }
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(tls)
        } else {
            builder
                .with_provider_and_native_roots(provider)
                .map_err(|e| format!("the system's TLS roots: {e}"))?
        };
        let connector = builder.https_or_http().enable_http1().build();
        Ok(Self {
            bucket,
            region,
            endpoint,
            credentials,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object's URL.
    fn url(&self, key: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{}/{key}", self.bucket),
            None => {
                let suffix = if self.region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                if self.bucket.contains('.') {
                    format!("https://s3.{}.{suffix}/{}/{key}", self.region, self.bucket)
                } else {
                    format!("https://{}.s3.{}.{suffix}/{key}", self.bucket, self.region)
                }
            }
        }
    }

    /// Stores `body` under `key`; `Ok` once S3 answered 2xx, else what
    /// went wrong, naming the object.
    pub async fn put(&self, key: &str, body: &[u8]) -> Result<(), String> {
        let url = self.url(key);
        let fail = |why: String| format!("s3://{}/{key}: {why}", self.bucket);
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let request = self.signed_put(&url, body).await.map_err(fail)?;
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.request(request)).await {
                Err(_) => last = format!("no answer within {} ms", ATTEMPT_TIMEOUT.as_millis()),
                Ok(Err(error)) => last = error.to_string(),
                Ok(Ok(response)) => {
                    let status = response.status();
                    if status.is_success() {
                        return Ok(());
                    }
                    let text = response
                        .into_body()
                        .collect()
                        .await
                        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                        .unwrap_or_default();
                    last = format!("{status}: {}", text.chars().take(300).collect::<String>());
                    if !status.is_server_error() {
                        break;
                    }
                }
            }
        }
        Err(fail(last))
    }

    async fn signed_put(
        &self,
        url: &str,
        body: &[u8],
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| format!("AWS credentials: {e}"))?;
        let identity = Identity::from(credentials);
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let length = body.len().to_string();
        let headers = [
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ];
        let signable = SignableRequest::new(
            "PUT",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut request = http::Request::builder().method("PUT").uri(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(bucket: &str, region: &str, endpoint: Option<&str>) -> S3Payloads {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKID", "SECRET", None, None, "test"),
            ))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let mut payloads = S3Payloads::new(&sdk, bucket.to_owned()).expect("payloads");
        payloads.endpoint = endpoint.map(str::to_owned);
        payloads
    }

    #[test]
    fn objects_are_addressed_as_s3_expects() {
        assert_eq!(
            payloads("intercom-payloads", "eu-west-1", None).url("ab.json"),
            "https://intercom-payloads.s3.eu-west-1.amazonaws.com/ab.json"
        );
        assert_eq!(
            payloads("my.dotted.bucket", "us-east-1", None).url("ab.json"),
            "https://s3.us-east-1.amazonaws.com/my.dotted.bucket/ab.json"
        );
        assert_eq!(
            payloads("b", "cn-north-1", None).url("ab.json"),
            "https://b.s3.cn-north-1.amazonaws.com.cn/ab.json"
        );
        assert_eq!(
            payloads("b", "us-east-1", Some("http://127.0.0.1:5000")).url("ab.json"),
            "http://127.0.0.1:5000/b/ab.json"
        );
    }

    #[tokio::test]
    async fn the_put_is_signed_for_s3_with_the_body_hash() {
        let payloads = payloads("b", "eu-west-1", None);
        let url = payloads.url("ab.json");
        let request = payloads.signed_put(&url, b"{}").await.expect("signed");
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            header("x-amz-content-sha256"),
            intercom_webhook::envelope::body_sha256(b"{}")
        );
        let authorization = header("authorization");
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKID/")
                && authorization.contains("/eu-west-1/s3/aws4_request")
                && authorization.contains(
                    "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date"
                ),
            "{authorization}"
        );
        assert_eq!(request.method(), "PUT");
    }
}
