//! The AWS SDK configuration loader both functions start from: the SDK's own settings, at the least cold-start cost.
//!
//! `aws_config::defaults` is what the functions would use otherwise, and it
//! is what [`loader`] returns, with two things it does at every cold start
//! done more cheaply, both measured in `BENCHMARKS.md`:
//!
//! - **Credentials.** Lambda puts the execution role's credentials in the
//!   environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_SESSION_TOKEN`). When they are there, they are read from there,
//!   instead of through the default chain, which builds an STS client (for
//!   web identity) and the SSO, ECS and instance-metadata providers first.
//!   Without them (a local run with a profile, say) the default chain runs.
//! - **TLS roots.** The default HTTPS client loads and parses the system's
//!   whole CA bundle (about 140 certificates) before its first connection.
//!   AWS's service endpoints all chain to Amazon Trust Services, so when the
//!   functions talk to AWS itself they trust exactly its roots: Amazon Root
//!   CA 1 to 4 and the Starfield Services root that cross-signs them
//!   (`certs/amazon-trust-services.pem`, from the Mozilla bundle). An
//!   endpoint override over plain HTTP (`AWS_ENDPOINT_URL=http://…`, a local
//!   SQS) needs no roots at all. With an `https://` endpoint override (which
//!   may use any CA) or a proxy (`HTTPS_PROXY` and the like) set, the SDK's
//!   default client, with the system's roots and its proxy support, is used
//!   as is.
//!
//! The region, the endpoint and everything else stay the SDK's own.

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

/// The roots every AWS service endpoint chains to.
pub const AMAZON_TRUST_SERVICES: &str = include_str!("../certs/amazon-trust-services.pem");

/// Proxy variables that, when set, leave the HTTPS client to the SDK's default.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What [`loader`] changes from the SDK's defaults, decided from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortcuts {
    /// Credentials from the environment rather than the default chain.
    pub environment_credentials: bool,
    /// An HTTPS client that trusts Amazon Trust Services' roots only.
    pub amazon_roots: bool,
}

impl Shortcuts {
    /// Decides from the environment's `(name, value)` pairs.
    pub fn from_vars<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut access_key = false;
        let mut secret_key = false;
        let mut default_client = false;
        for (name, value) in vars {
            let set = !value.trim().is_empty();
            match name {
                "AWS_ACCESS_KEY_ID" => access_key = set,
                "AWS_SECRET_ACCESS_KEY" => secret_key = set,
                _ if PROXY_VARIABLES.contains(&name) => default_client |= set,
                _ if name.starts_with("AWS_ENDPOINT_URL") => {
                    default_client |= value.trim().to_ascii_lowercase().starts_with("https:");
                }
                _ => {}
            }
        }
        Self {
            environment_credentials: access_key && secret_key,
            amazon_roots: !default_client,
        }
    }

    /// Decides from the process environment.
    pub fn from_env() -> Self {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::from_vars(vars.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }
}

/// `aws_config::defaults(BehaviorVersion::latest())` with the [`Shortcuts`]
/// the environment allows. Callers add their timeouts and retries, then load.
pub fn loader() -> ConfigLoader {
    let shortcuts = Shortcuts::from_env();
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if shortcuts.environment_credentials {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if shortcuts.amazon_roots {
        // The SDK's HTTPS client (rustls with aws-lc, as its default),
        // trusting Amazon Trust Services' roots only.
        let trust = TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES.as_bytes());
        let context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .unwrap_or_default();
        loader = loader.http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context)
                .build_https(),
        );
    }
    loader
}

/// An S3 client from `sdk`; a local S3 (an endpoint URL is set) is
/// addressed by path, not by a bucket host name that loopback cannot
/// resolve.
#[cfg(feature = "s3")]
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_lambda_both_shortcuts_apply() {
        let lambda = [
            ("AWS_ACCESS_KEY_ID", "ASIA..."),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_LAMBDA_FUNCTION_NAME", "webhook-receiver"),
        ];
        assert_eq!(
            Shortcuts::from_vars(lambda),
            Shortcuts {
                environment_credentials: true,
                amazon_roots: true
            }
        );
    }

    #[test]
    fn without_credentials_or_with_an_override_the_sdk_decides() {
        let profile_only = [("AWS_PROFILE", "dev"), ("AWS_ACCESS_KEY_ID", "")];
        assert!(!Shortcuts::from_vars(profile_only).environment_credentials);
        for (name, value) in [
            ("AWS_ENDPOINT_URL", "https://localstack.internal:4566"),
            ("AWS_ENDPOINT_URL_SQS", "HTTPS://sqs.example.com"),
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("all_proxy", "socks5://proxy"),
        ] {
            assert!(
                !Shortcuts::from_vars([(name, value)]).amazon_roots,
                "{name}"
            );
        }
        // A plain-HTTP endpoint makes no TLS connection, so needs no roots.
        assert!(Shortcuts::from_vars([("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]).amazon_roots);
        assert!(Shortcuts::from_vars([("HTTPS_PROXY", " ")]).amazon_roots);
    }

    #[test]
    fn the_bundled_roots_are_amazon_trust_services() {
        use rustls_pki_types::pem::PemObject as _;
        let certificates: Vec<_> =
            rustls_pki_types::CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES.as_bytes())
                .collect::<Result<_, _>>()
                .expect("valid PEM");
        assert_eq!(certificates.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        let (valid, invalid) = roots.add_parsable_certificates(certificates);
        assert_eq!((valid, invalid), (5, 0));
    }
}
