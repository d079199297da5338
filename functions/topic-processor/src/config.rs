//! The processor's configuration, read from the environment once at cold start.

use std::time::Duration;

pub const RECORD_CONCURRENCY: &str = "RECORD_CONCURRENCY";
pub const DEADLINE_MARGIN_MS: &str = "DEADLINE_MARGIN_MS";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Records (standard queues) or message groups (FIFO) processed at once.
    pub concurrency: usize,
    /// How long before the invocation's deadline unfinished records are
    /// reported failed.
    pub deadline_margin: Duration,
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

    /// Defaults: 8 at once, a 1,500 ms margin.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            match var(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
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
        Ok(Self {
            concurrency: usize::try_from(number(RECORD_CONCURRENCY, 8, 1..=1000)?).unwrap_or(8),
            deadline_margin: Duration::from_millis(number(DEADLINE_MARGIN_MS, 1500, 0..=60_000)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_naming_the_variable() {
        let none = Config::from_lookup(|_| None).expect("defaults");
        assert_eq!(
            none,
            Config {
                concurrency: 8,
                deadline_margin: Duration::from_millis(1500)
            }
        );
        let err = Config::from_lookup(|n| (n == RECORD_CONCURRENCY).then(|| "0".to_owned()))
            .expect_err("zero");
        assert!(err.to_string().contains(RECORD_CONCURRENCY));
        let err = Config::from_lookup(|n| (n == DEADLINE_MARGIN_MS).then(|| "soon".to_owned()))
            .expect_err("nan");
        assert!(err.to_string().contains(DEADLINE_MARGIN_MS));
    }
}
