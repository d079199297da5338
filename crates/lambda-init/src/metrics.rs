//! CloudWatch metrics in the embedded metric format (EMF): configured once from the environment, written to stdout after each invocation.
//!
//! The functions record through the [`metrics`] facade (`metrics::counter!`,
//! `metrics::histogram!`); [`Metrics::from_env`] installs
//! `metrics_cloudwatch_embedded` as its recorder, and [`Metrics::flush`]
//! writes what gathered as EMF documents, one JSON object a line, beside the
//! logs. CloudWatch Logs turns those lines into metrics; no API call is made.
//!
//! - `METRICS`: `on` (the default), `alarms` or `off`. Off, no recorder is
//!   installed and every `counter!`/`histogram!` is a no-op. `alarms`
//!   publishes only the metrics the stack's alarms read, and those that
//!   appear only when something fails ([`Metrics::detailed`] is false, and
//!   the functions skip the rest): CloudWatch bills each metric published
//!   in an hour, and the others are read only by the dashboard.
//! - `METRICS_NAMESPACE`: the CloudWatch namespace, `IntercomWebhooks` by
//!   default.
//! - Every document has the dimension `Function`: `AWS_LAMBDA_FUNCTION_NAME`
//!   (one value per deployed function), else the binary's own name. The
//!   functions add only dimensions whose values come from fixed sets.
//! - Every document also has `"level"` and `"message": "metrics"`, so each
//!   stdout line is a log line as the contract has them. The level matters:
//!   with log-level filtering (`AWS_LAMBDA_LOG_LEVEL`, from the function's
//!   `ApplicationLogLevel`) Lambda reads a line without a level as INFO and
//!   drops it under WARN, and the metrics with it. Documents say `INFO`, or
//!   the configured level when that is higher, so they always get through.

use std::io::Write as _;

use metrics_cloudwatch_embedded::Collector;

/// `on` (default), `alarms` or `off`.
pub const METRICS: &str = "METRICS";
/// The CloudWatch namespace.
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "IntercomWebhooks";
/// The dimension every metric carries: which function wrote it.
pub const FUNCTION_DIMENSION: &str = "Function";

/// What the environment asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsSettings {
    Off,
    On {
        namespace: String,
        function: String,
        /// The `level` the documents carry: `INFO`, or Lambda's log level
        /// when that is higher (`WARN`, `ERROR`, `FATAL`).
        level: &'static str,
        /// Every metric (`on`), or only those the alarms read (`alarms`).
        detailed: bool,
    },
}

impl MetricsSettings {
    /// Reads `METRICS`, `METRICS_NAMESPACE` and `AWS_LAMBDA_FUNCTION_NAME`
    /// through `var`; `binary` names the function when Lambda does not.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>, binary: &str) -> Result<Self, String> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let detailed = match get(METRICS).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("on") => true,
            Some("alarms") => false,
            Some("off") => return Ok(Self::Off),
            Some(other) => {
                return Err(format!(
                    "invalid configuration: {METRICS} must be `on`, `alarms` or `off`, not `{other}`"
                ));
            }
        };
        let namespace = get(METRICS_NAMESPACE).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if let Some(problem) = namespace_problem(&namespace) {
            return Err(format!(
                "invalid configuration: {METRICS_NAMESPACE} {problem}"
            ));
        }
        let function = get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| binary.to_owned());
        let level = match get("AWS_LAMBDA_LOG_LEVEL")
            .map(|l| l.to_ascii_uppercase())
            .as_deref()
        {
            Some("WARN") => "WARN",
            Some("ERROR") => "ERROR",
            Some("FATAL") => "FATAL",
            _ => "INFO",
        };
        Ok(Self::On {
            namespace,
            function,
            level,
            detailed,
        })
    }
}

/// What is wrong with `namespace` as a CloudWatch namespace, if anything:
/// 1 to 255 characters of letters, digits and `. - _ / # : ` and space,
/// not starting with `AWS/` (reserved for AWS's own).
fn namespace_problem(namespace: &str) -> Option<&'static str> {
    if namespace.len() > 255 {
        return Some("is longer than 255 characters");
    }
    if namespace.starts_with("AWS/") {
        return Some("must not start with `AWS/` (reserved for AWS services)");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if !namespace.chars().all(allowed) {
        return Some("may hold only letters, digits, spaces and `.-_/#:`");
    }
    None
}

/// The installed recorder, or none when metrics are off.
#[derive(Clone, Copy)]
pub struct Metrics {
    collector: Option<&'static Collector>,
    detailed: bool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.enabled())
            .field("detailed", &self.detailed)
            .finish()
    }
}

impl Metrics {
    /// Installs the recorder the environment asks for (once per process);
    /// the error names the variable at fault.
    pub fn from_env(binary: &str) -> Result<Self, String> {
        let settings = MetricsSettings::from_lookup(|name| std::env::var(name).ok(), binary)?;
        Self::install(&settings)
    }

    /// Installs the recorder `settings` ask for.
    pub fn install(settings: &MetricsSettings) -> Result<Self, String> {
        let MetricsSettings::On {
            namespace,
            function,
            level,
            detailed,
        } = settings
        else {
            return Ok(Self {
                collector: None,
                detailed: false,
            });
        };
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(namespace.clone())
            .with_dimension(FUNCTION_DIMENSION, function.clone())
            .init()
            .map_err(|e| format!("could not install the metrics recorder: {e}"))?;
        collector
            .set_property("level", *level)
            .set_property("message", "metrics");
        Ok(Self {
            collector: Some(collector),
            detailed: *detailed,
        })
    }

    /// Whether metrics are recorded.
    pub fn enabled(&self) -> bool {
        self.collector.is_some()
    }

    /// Whether every metric is published (`METRICS=on`), not only those
    /// the alarms read (`alarms`): the functions record the others only
    /// when this holds.
    pub fn detailed(&self) -> bool {
        self.enabled() && self.detailed
    }

    /// Writes every metric recorded since the last flush to stdout, in one
    /// write, and starts afresh. Call once per invocation, before answering.
    pub fn flush(&self) {
        let Some(collector) = self.collector else {
            return;
        };
        let mut documents = Vec::with_capacity(1024);
        let written = collector
            .flush(&mut documents)
            .and_then(|()| std::io::stdout().lock().write_all(&documents));
        if let Err(error) = written {
            tracing::warn!(error = %error, "could not write metrics");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<MetricsSettings, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        MetricsSettings::from_lookup(|name| vars.get(name).cloned(), "webhook-receiver")
    }

    #[test]
    fn on_by_default_in_the_default_namespace() {
        assert_eq!(
            settings(&[]),
            Ok(MetricsSettings::On {
                namespace: "IntercomWebhooks".into(),
                function: "webhook-receiver".into(),
                level: "INFO",
                detailed: true
            })
        );
        assert_eq!(
            settings(&[
                ("METRICS", " On "),
                ("METRICS_NAMESPACE", "Acme/Intercom"),
                ("AWS_LAMBDA_FUNCTION_NAME", "prod-WebhookReceiver-1A2B")
            ]),
            Ok(MetricsSettings::On {
                namespace: "Acme/Intercom".into(),
                function: "prod-WebhookReceiver-1A2B".into(),
                level: "INFO",
                detailed: true
            })
        );
    }

    #[test]
    fn alarms_keeps_them_on_but_not_detailed() {
        assert_eq!(
            settings(&[("METRICS", "Alarms")]),
            Ok(MetricsSettings::On {
                namespace: "IntercomWebhooks".into(),
                function: "webhook-receiver".into(),
                level: "INFO",
                detailed: false
            })
        );
    }

    #[test]
    fn documents_carry_a_level_lambda_keeps() {
        let level = |configured: &str| match settings(&[("AWS_LAMBDA_LOG_LEVEL", configured)]) {
            Ok(MetricsSettings::On { level, .. }) => level,
            other => panic!("{other:?}"),
        };
        assert_eq!(level("DEBUG"), "INFO");
        assert_eq!(level("INFO"), "INFO");
        assert_eq!(level("warn"), "WARN");
        assert_eq!(level("ERROR"), "ERROR");
        assert_eq!(level("FATAL"), "FATAL");
    }

    #[test]
    fn off_turns_them_off_whatever_the_namespace() {
        assert_eq!(settings(&[("METRICS", "off")]), Ok(MetricsSettings::Off));
        assert_eq!(
            settings(&[("METRICS", "OFF"), ("METRICS_NAMESPACE", "AWS/Lambda")]),
            Ok(MetricsSettings::Off)
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("METRICS", "false")],
                "METRICS must be `on`, `alarms` or `off`, not `false`",
            ),
            (
                &[("METRICS_NAMESPACE", "AWS/Lambda")],
                "METRICS_NAMESPACE must not start with `AWS/`",
            ),
            (
                &[("METRICS_NAMESPACE", "café")],
                "METRICS_NAMESPACE may hold only",
            ),
            (
                &[("METRICS_NAMESPACE", "{}")],
                "METRICS_NAMESPACE may hold only",
            ),
        ];
        for (vars, expected) in cases {
            let error = settings(vars).expect_err("invalid");
            assert!(error.contains(expected), "{vars:?}: {error}");
        }
        let long = "n".repeat(256);
        let error = settings(&[("METRICS_NAMESPACE", &long)]).expect_err("too long");
        assert!(error.contains("longer than 255"), "{error}");
        assert!(settings(&[("METRICS_NAMESPACE", &"n".repeat(255))]).is_ok());
    }
}
