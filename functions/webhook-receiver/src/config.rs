//! The receiver's configuration, read from the environment once at cold start.
//!
//! [`Config::from_lookup`] validates every variable up front; an error names the
//! variable and says what is wrong with it, and becomes the Lambda init error.
//! Secrets never appear in an error message.

use std::collections::HashSet;
use std::fmt;

use intercom_webhook::signature::Verifier;
use intercom_webhook::source_filter::SourceFilter;

pub const QUEUE_URL: &str = "QUEUE_URL";
pub const CLIENT_SECRET: &str = "INTERCOM_CLIENT_SECRET";
pub const CLIENT_SECRET_ARN: &str = "INTERCOM_CLIENT_SECRET_ARN";
pub const ALLOWED_IPS: &str = "INTERCOM_ALLOWED_IPS";
pub const APP_IDS: &str = "INTERCOM_APP_IDS";
pub const FORWARD_PING: &str = "FORWARD_PING";
pub const PAYLOAD_BUCKET: &str = "PAYLOAD_BUCKET";
pub const IP_RANGES_URL: &str = "INTERCOM_IP_RANGES_URL";

/// Where the client secrets come from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// `INTERCOM_CLIENT_SECRET`, parsed into a verifier.
    Inline(Verifier),
    /// `INTERCOM_CLIENT_SECRET_ARN`: a Secrets Manager secret id (name or ARN).
    SecretsManager(String),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub queue_url: String,
    /// Whether the queue is FIFO (its URL ends in `.fifo`).
    pub fifo: bool,
    pub secrets: SecretSource,
    /// `None`: every source address is allowed.
    pub allowed_sources: Option<SourceFilter>,
    /// `None`: every workspace is allowed.
    pub allowed_app_ids: Option<HashSet<String>>,
    /// Whether `ping` notifications are queued too.
    pub forward_ping: bool,
    /// Where bodies too large for one SQS message go; `None`: they are 413.
    pub payload_bucket: Option<String>,
    /// Where Intercom's published ranges are read for the allowlist's
    /// region names (`INTERCOM_IP_RANGES_URL`, Intercom's own by default);
    /// `None` (`off`): the compiled addresses only.
    pub ip_ranges_url: Option<String>,
}

/// A variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: {} {}",
            self.variable, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

fn error(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `var`; blank values count as unset.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());

        let queue_url = get(QUEUE_URL)
            .ok_or_else(|| {
                error(
                    QUEUE_URL,
                    "is not set (the URL of the SQS queue to send notifications to)",
                )
            })?
            .trim()
            .to_owned();
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(error(
                QUEUE_URL,
                "must be a queue URL starting with https:// (or http:// for a local endpoint)",
            ));
        }
        let fifo = queue_url.ends_with(".fifo");

        let secrets = match (get(CLIENT_SECRET), get(CLIENT_SECRET_ARN)) {
            (Some(_), Some(_)) => {
                return Err(error(
                    CLIENT_SECRET,
                    format!("and {CLIENT_SECRET_ARN} are both set; set exactly one"),
                ));
            }
            (Some(secrets), None) => SecretSource::Inline(
                Verifier::from_comma_separated(&secrets)
                    .map_err(|e| error(CLIENT_SECRET, format!("is invalid: {e}")))?,
            ),
            (None, Some(id)) => SecretSource::SecretsManager(id.trim().to_owned()),
            (None, None) => {
                return Err(error(
                    CLIENT_SECRET,
                    format!(
                        "is not set: set it to the app's client secret, or set {CLIENT_SECRET_ARN}"
                    ),
                ));
            }
        };

        let allowed_sources = get(ALLOWED_IPS)
            .map(|list| {
                SourceFilter::parse(&list)
                    .map_err(|e| error(ALLOWED_IPS, format!("is invalid: {e}")))
            })
            .transpose()?;

        let allowed_app_ids = get(APP_IDS).map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect::<HashSet<_>>()
        });

        let forward_ping = match get(FORWARD_PING)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(_) => return Err(error(FORWARD_PING, "must be `true` or `false`")),
        };

        let payload_bucket = get(PAYLOAD_BUCKET).map(|bucket| bucket.trim().to_owned());
        if let Some(bucket) = &payload_bucket
            && (bucket.contains('/') || bucket.len() > 63)
        {
            return Err(error(
                PAYLOAD_BUCKET,
                "must be a bucket name (no `s3://` or key, at most 63 characters)",
            ));
        }

        let ip_ranges_url = match get(IP_RANGES_URL).map(|v| v.trim().to_owned()) {
            None => Some(crate::allowlist::INTERCOM_RANGES_BASE.to_owned()),
            Some(off) if off.eq_ignore_ascii_case("off") => None,
            Some(url) if url.starts_with("https://") || is_loopback_http(&url) => Some(url),
            Some(_) => {
                return Err(error(
                    IP_RANGES_URL,
                    "must be an https:// URL (http:// only to a loopback address), or `off`",
                ));
            }
        };

        Ok(Self {
            queue_url,
            fifo,
            secrets,
            allowed_sources,
            allowed_app_ids,
            forward_ping,
            payload_bucket,
            ip_ranges_url,
        })
    }
}

/// Whether `url` is plain HTTP to this machine (a test server).
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    const QUEUE: (&str, &str) = (
        QUEUE_URL,
        "https://sqs.eu-west-1.amazonaws.com/123456789012/intercom.fifo",
    );
    const SECRET: (&str, &str) = (CLIENT_SECRET, "s1,s2");

    #[test]
    fn minimal_configuration() {
        let config = config(&[QUEUE, SECRET]).expect("valid");
        assert!(config.fifo);
        assert!(matches!(&config.secrets, SecretSource::Inline(v) if v.secret_count() == 2));
        assert!(config.allowed_sources.is_none());
        assert!(config.allowed_app_ids.is_none());
        assert!(!config.forward_ping);
        assert_eq!(
            config.ip_ranges_url.as_deref(),
            Some("https://static.intercomcdn.com/intercom-ips")
        );
    }

    #[test]
    fn the_ranges_url_is_https_loopback_http_or_off() {
        for (value, expected) in [
            ("off", None),
            ("OFF", None),
            (
                "https://mirror.example/ips",
                Some("https://mirror.example/ips"),
            ),
            (
                "http://127.0.0.1:8080/ips",
                Some("http://127.0.0.1:8080/ips"),
            ),
            ("http://localhost:9/x", Some("http://localhost:9/x")),
            ("http://[::1]:9/x", Some("http://[::1]:9/x")),
        ] {
            let config = config(&[QUEUE, SECRET, (IP_RANGES_URL, value)]).expect(value);
            assert_eq!(config.ip_ranges_url.as_deref(), expected, "{value}");
        }
        for value in [
            "http://static.intercomcdn.com/intercom-ips",
            "http://127.0.0.1.evil.example/x",
            "ftp://127.0.0.1/x",
            "static.intercomcdn.com",
        ] {
            let err = config(&[QUEUE, SECRET, (IP_RANGES_URL, value)]).expect_err(value);
            assert_eq!(err.variable, IP_RANGES_URL, "{value}");
        }
    }

    #[test]
    fn every_option() {
        let config = config(&[
            (QUEUE_URL, "http://127.0.0.1:5000/123456789012/intercom"),
            (
                CLIENT_SECRET_ARN,
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:intercom-AbCdEf",
            ),
            (ALLOWED_IPS, "intercom-eu, 10.0.0.0/8"),
            (APP_IDS, "abc123, def456,"),
            (FORWARD_PING, "TRUE"),
        ])
        .expect("valid");
        assert!(!config.fifo);
        assert!(
            matches!(&config.secrets, SecretSource::SecretsManager(id) if id.ends_with("intercom-AbCdEf"))
        );
        assert!(config.allowed_sources.is_some());
        assert_eq!(
            config.allowed_app_ids,
            Some(HashSet::from(["abc123".to_owned(), "def456".to_owned()]))
        );
        assert!(config.forward_ping);
    }

    #[test]
    fn each_error_names_its_variable() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![SECRET], QUEUE_URL),
            (vec![(QUEUE_URL, "  "), SECRET], QUEUE_URL),
            (vec![(QUEUE_URL, "intercom-queue"), SECRET], QUEUE_URL),
            (vec![QUEUE], CLIENT_SECRET),
            (vec![QUEUE, (CLIENT_SECRET, " , ")], CLIENT_SECRET),
            (vec![QUEUE, SECRET, (CLIENT_SECRET_ARN, "x")], CLIENT_SECRET),
            (
                vec![QUEUE, SECRET, (ALLOWED_IPS, "intercom-moon")],
                ALLOWED_IPS,
            ),
            (
                vec![QUEUE, SECRET, (FORWARD_PING, "sometimes")],
                FORWARD_PING,
            ),
        ];
        for (vars, variable) in cases {
            let err = config(&vars).expect_err(variable);
            assert_eq!(err.variable, variable, "{vars:?}");
            assert!(err.to_string().contains(variable), "{err}");
        }
    }

    #[test]
    fn errors_never_show_secrets() {
        let err = config(&[
            QUEUE,
            (CLIENT_SECRET, "super-secret-value"),
            (CLIENT_SECRET_ARN, "arn"),
        ])
        .expect_err("both");
        assert!(!err.to_string().contains("super-secret-value"), "{err}");
        assert!(
            !format!(
                "{:?}",
                config(&[QUEUE, (CLIENT_SECRET, "super-secret-value")])
            )
            .contains("super-secret-value")
        );
    }
}
