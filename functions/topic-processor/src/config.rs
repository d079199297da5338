//! The processor's configuration, read from the environment once at cold start.
//!
//! [`Config::from_lookup`] validates every variable up front; an error names
//! the variable and becomes the Lambda init error.

use std::time::Duration;

pub const RECORD_CONCURRENCY: &str = "RECORD_CONCURRENCY";
pub const DEADLINE_MARGIN_MS: &str = "DEADLINE_MARGIN_MS";
pub const IDEMPOTENCY_TABLE: &str = "IDEMPOTENCY_TABLE";
pub const IDEMPOTENCY_TTL_SECONDS: &str = "IDEMPOTENCY_TTL_SECONDS";
pub const STEPS_TTL_SECONDS: &str = "STEPS_TTL_SECONDS";
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
pub const EVENT_SOURCE: &str = "EVENT_SOURCE";
pub const ARCHIVE_BUCKET: &str = "ARCHIVE_BUCKET";
pub const ARCHIVE_PREFIX: &str = "ARCHIVE_PREFIX";
pub const ARCHIVE_STREAM: &str = "ARCHIVE_STREAM";
pub const FRESHNESS: &str = "FRESHNESS";
/// Set by Lambda; the idempotency key starts with it.
pub const FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Records (standard queues) or message groups (FIFO) processed at once.
    pub concurrency: usize,
    /// How long before the invocation's deadline unfinished records are
    /// reported failed.
    pub deadline_margin: Duration,
    /// `None`: idempotency is off.
    pub idempotency: Option<IdempotencyConfig>,
    /// `None`: no event bus.
    pub event_bus: Option<EventBusConfig>,
    /// `None`: no archive.
    pub archive: Option<ArchiveConfig>,
    /// Whether notifications older than one already processed about the
    /// same object are told apart (`tag`) or not handled (`skip`).
    pub freshness: FreshnessMode,
    /// Intercom's API for handlers (`INTERCOM_*`, `OWN_ACTIONS`).
    pub intercom: intercom_api::ApiSettings,
}

/// `FRESHNESS`: what happens to a notification older than one already
/// processed about the same object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FreshnessMode {
    /// Not checked (the default).
    #[default]
    Off,
    /// Everything runs; the handler sees `meta.superseded_by` and the
    /// record's log line `"stale": true`.
    Tag,
    /// A stale notification's handler does not run (destinations still get
    /// it); outcome `stale`.
    Skip,
}

impl FreshnessMode {
    /// The value `FRESHNESS` takes for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Tag => "tag",
            Self::Skip => "skip",
        }
    }

    /// Reads a `FRESHNESS` value; unset or empty is `off`.
    pub fn parse(value: Option<&str>) -> Result<Self, ConfigError> {
        match value.map(str::trim).unwrap_or_default() {
            "" | "off" => Ok(Self::Off),
            "tag" => Ok(Self::Tag),
            "skip" => Ok(Self::Skip),
            other => Err(ConfigError(format!(
                "{FRESHNESS} must be off, tag or skip, not `{other}`"
            ))),
        }
    }
}

/// The EventBridge bus every valid notification is put on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBusConfig {
    /// A name or an ARN.
    pub name: String,
    /// The entries' `Source` (`intercom` by default).
    pub source: String,
}

/// The S3 bucket every valid notification's body is stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveConfig {
    pub bucket: String,
    /// Put before every key as given (empty by default).
    pub prefix: String,
    /// An Amazon Data Firehose stream (name or ARN) writing the stream
    /// layout into the bucket; `None`: one object per notification.
    pub stream: Option<String>,
}

/// Where and how long completed notifications are remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// The DynamoDB table, a name or an ARN.
    pub table: String,
    /// How long a completed notification counts as done.
    pub ttl: Duration,
    /// How long a completed step (`Event::once`) is remembered (21 days by
    /// default: a message's whole life on the queue and the dead-letter
    /// queue, and a redrive).
    pub steps_ttl: Duration,
    /// The function's name, the first part of every key.
    pub function_name: String,
}

/// A variable that is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Defaults: 8 at once, a 1,500 ms margin, no idempotency; with
    /// `IDEMPOTENCY_TABLE`, completed notifications are remembered a day.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "{name} must be a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ))
                    }),
            }
        };
        let ttl = Duration::from_secs(number(IDEMPOTENCY_TTL_SECONDS, 86_400, 60..=31_536_000)?);
        let steps_ttl = Duration::from_secs(number(STEPS_TTL_SECONDS, 1_814_400, 60..=31_536_000)?);
        let idempotency = match get(IDEMPOTENCY_TABLE) {
            None => None,
            Some(table) => Some(IdempotencyConfig {
                table,
                ttl,
                steps_ttl,
                function_name: get(FUNCTION_NAME).ok_or_else(|| {
                    ConfigError(format!(
                        "{FUNCTION_NAME} is not set; with {IDEMPOTENCY_TABLE} the keys start with it (Lambda sets it)"
                    ))
                })?,
            }),
        };
        let source = get(EVENT_SOURCE).unwrap_or_else(|| "intercom".to_owned());
        if source.len() > 256 {
            return Err(ConfigError(format!(
                "{EVENT_SOURCE} must be at most 256 characters, as EventBridge allows"
            )));
        }
        let event_bus = get(EVENT_BUS_NAME).map(|name| EventBusConfig { name, source });
        let stream = get(ARCHIVE_STREAM).map(|stream| {
            // PutRecord takes the name; an ARN ends `deliverystream/{name}`.
            stream
                .rsplit_once("deliverystream/")
                .map_or(stream.clone(), |(_, name)| name.to_owned())
        });
        let archive = get(ARCHIVE_BUCKET).map(|bucket| ArchiveConfig {
            bucket,
            prefix: var(ARCHIVE_PREFIX).unwrap_or_default().trim().to_owned(),
            stream: stream.clone(),
        });
        if stream.is_some() && archive.is_none() {
            return Err(ConfigError(format!(
                "{ARCHIVE_STREAM} is set but {ARCHIVE_BUCKET} is not: the bucket the stream writes to also holds the bodies too long for a stream record"
            )));
        }
        let freshness = FreshnessMode::parse(get(FRESHNESS).as_deref())?;
        if freshness != FreshnessMode::Off && idempotency.is_none() {
            return Err(ConfigError(format!(
                "{FRESHNESS} is set but {IDEMPOTENCY_TABLE} is not: freshness keeps each object's newest notification in the idempotency table"
            )));
        }
        let intercom = intercom_api::ApiSettings::from_lookup(&var)
            .map_err(|e| ConfigError(e.trim_start_matches("invalid configuration: ").to_owned()))?;
        Ok(Self {
            intercom,
            concurrency: usize::try_from(number(RECORD_CONCURRENCY, 8, 1..=1000)?).unwrap_or(8),
            deadline_margin: Duration::from_millis(number(DEADLINE_MARGIN_MS, 1500, 0..=60_000)?),
            idempotency,
            event_bus,
            archive,
            freshness,
        })
    }
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

    #[test]
    fn defaults_and_errors_naming_the_variable() {
        assert_eq!(
            config(&[]).expect("defaults"),
            Config {
                concurrency: 8,
                deadline_margin: Duration::from_millis(1500),
                idempotency: None,
                event_bus: None,
                archive: None,
                freshness: FreshnessMode::Off,
                intercom: intercom_api::ApiSettings {
                    token: intercom_api::TokenSource::None,
                    base_url: "https://api.intercom.io".into(),
                    version: intercom_api::API_VERSION.into(),
                    admin_id: None,
                    own_actions: intercom_api::OwnActions::Deliver,
                    connect_timeout: intercom_api::settings::CONNECT_TIMEOUT,
                    attempt_timeout: intercom_api::settings::ATTEMPT_TIMEOUT,
                    pool_idle_timeout: intercom_api::settings::POOL_IDLE_TIMEOUT,
                },
            }
        );
        for (vars, variable) in [
            (vec![(RECORD_CONCURRENCY, "0")], RECORD_CONCURRENCY),
            (vec![(DEADLINE_MARGIN_MS, "soon")], DEADLINE_MARGIN_MS),
            (
                vec![(IDEMPOTENCY_TTL_SECONDS, "-1")],
                IDEMPOTENCY_TTL_SECONDS,
            ),
            (
                vec![(IDEMPOTENCY_TABLE, "intercom-idempotency")],
                FUNCTION_NAME,
            ),
            (
                vec![(EVENT_BUS_NAME, "bus"), (EVENT_SOURCE, &"s".repeat(257))],
                EVENT_SOURCE,
            ),
            (vec![(FRESHNESS, "newest")], FRESHNESS),
            (vec![(FRESHNESS, "tag")], IDEMPOTENCY_TABLE),
            (vec![(FRESHNESS, "skip")], FRESHNESS),
            (vec![("INTERCOM_REGION", "mars")], "INTERCOM_REGION"),
            (vec![("OWN_ACTIONS", "skip")], "OWN_ACTIONS"),
            (
                vec![("INTERCOM_API_URL", "http://intercom.example.com")],
                "INTERCOM_API_URL may use http:// only for a loopback host",
            ),
            (vec![(STEPS_TTL_SECONDS, "0")], STEPS_TTL_SECONDS),
        ] {
            let err = config(&vars).expect_err(variable);
            assert!(err.to_string().contains(variable), "{err}");
        }
    }

    #[test]
    fn idempotency_with_its_table_and_ttl() {
        let config = config(&[
            (
                IDEMPOTENCY_TABLE,
                "arn:aws:dynamodb:eu-west-1:123456789012:table/intercom",
            ),
            (IDEMPOTENCY_TTL_SECONDS, "3600"),
            (FUNCTION_NAME, "topic-processor"),
        ])
        .expect("valid");
        assert_eq!(
            config.idempotency,
            Some(IdempotencyConfig {
                table: "arn:aws:dynamodb:eu-west-1:123456789012:table/intercom".into(),
                ttl: Duration::from_secs(3600),
                steps_ttl: Duration::from_secs(21 * 86_400),
                function_name: "topic-processor".into(),
            })
        );
        let steps = |value: &str| {
            self::config(&[
                (IDEMPOTENCY_TABLE, "intercom"),
                (FUNCTION_NAME, "topic-processor"),
                (STEPS_TTL_SECONDS, value),
            ])
            .map(|c| c.idempotency.map(|i| i.steps_ttl))
        };
        assert_eq!(steps("1900800"), Ok(Some(Duration::from_secs(1_900_800))));
        let error = steps("a month").expect_err("not a number");
        assert!(error.to_string().contains(STEPS_TTL_SECONDS), "{error}");
    }

    #[test]
    fn freshness_with_the_idempotency_table() {
        let with_table = |mode: &str| {
            config(&[
                (IDEMPOTENCY_TABLE, "intercom"),
                (FUNCTION_NAME, "topic-processor"),
                (FRESHNESS, mode),
            ])
            .map(|c| c.freshness)
        };
        assert_eq!(with_table("tag"), Ok(FreshnessMode::Tag));
        assert_eq!(with_table(" skip "), Ok(FreshnessMode::Skip));
        assert_eq!(with_table("off"), Ok(FreshnessMode::Off));
        assert_eq!(with_table(""), Ok(FreshnessMode::Off));
        assert!(with_table("TAG").is_err());
        assert_eq!(
            config(&[(FRESHNESS, "off")]).map(|c| c.freshness),
            Ok(FreshnessMode::Off),
            "off needs no table"
        );
    }

    #[test]
    fn destinations_with_their_defaults() {
        let config =
            config(&[(EVENT_BUS_NAME, "intercom"), (ARCHIVE_BUCKET, "archive")]).expect("valid");
        assert_eq!(
            config.event_bus,
            Some(EventBusConfig {
                name: "intercom".into(),
                source: "intercom".into(),
            })
        );
        assert_eq!(
            config.archive,
            Some(ArchiveConfig {
                bucket: "archive".into(),
                prefix: String::new(),
                stream: None,
            })
        );
        let config = config_with_source();
        assert_eq!(
            config.event_bus.expect("bus").source,
            "com.example.intercom"
        );
        assert_eq!(config.archive.expect("archive").prefix, "raw/");
    }

    #[test]
    fn the_archive_stream_needs_its_bucket_and_takes_a_name_or_an_arn() {
        let stream = |value: &str| {
            config(&[(ARCHIVE_BUCKET, "archive"), (ARCHIVE_STREAM, value)])
                .map(|c| c.archive.and_then(|a| a.stream))
        };
        assert_eq!(
            stream("intercom-archive"),
            Ok(Some("intercom-archive".into()))
        );
        assert_eq!(
            stream("arn:aws:firehose:us-east-1:123456789012:deliverystream/intercom-archive"),
            Ok(Some("intercom-archive".into()))
        );
        let error = config(&[(ARCHIVE_STREAM, "intercom-archive")]).expect_err("no bucket");
        assert!(
            error.0.contains(ARCHIVE_STREAM) && error.0.contains(ARCHIVE_BUCKET),
            "{error}"
        );
    }

    fn config_with_source() -> Config {
        config(&[
            (
                EVENT_BUS_NAME,
                "arn:aws:events:eu-west-1:123456789012:event-bus/x",
            ),
            (EVENT_SOURCE, "com.example.intercom"),
            (ARCHIVE_BUCKET, "archive"),
            (ARCHIVE_PREFIX, "raw/"),
        ])
        .expect("valid")
    }
}
