//! Log setup for both functions: JSON lines on stdout, honouring Lambda's log controls.
//!
//! - Format: one JSON object a line (`level`, `message` and the event's fields
//!   at the top level), unless `AWS_LAMBDA_LOG_FORMAT` is `Text`.
//! - A line logged while the processor works on a record (a handler's own
//!   `tracing::info!`, for one) carries that record as `span`
//!   (`{"name":"record","message_id":…,"topic":…,"notification_id":…}`),
//!   so a handler's lines are found by notification in CloudWatch.
//! - Level: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls) if set,
//!   else `RUST_LOG` (local runs: a level, or `target=level` directives such
//!   as `info,webhook_receiver=debug`), else `INFO`.
//!
//! The filter is tracing-subscriber's `Targets`, not `EnvFilter`: the same
//! directives bar span and field filters, without the regex engine behind
//! them, which was about a tenth of the receiver's binary (zip and cold start).
//!
//! A panic is logged the same way, as one `ERROR` line (`"message":"panic"`,
//! `panic` and `location`), instead of Rust's default text on stderr: the
//! processor catches a handler's panic and goes on (its record's line says
//! `handler_panicked`), and this line says where it happened.

use std::str::FromStr as _;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How logs are written, decided once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// JSON lines (`true`) or plain text.
    pub json: bool,
    /// `tracing` filter directives, such as `info` or `info,webhook_receiver=debug`.
    pub filter: String,
}

impl LogSettings {
    /// Reads `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG`
    /// through `var`, so tests need not touch the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let json =
            !var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.trim().eq_ignore_ascii_case("text"));
        let filter = var("AWS_LAMBDA_LOG_LEVEL")
            .filter(|level| !level.trim().is_empty())
            .map(|level| lambda_level(&level).to_owned())
            .or_else(|| var("RUST_LOG").filter(|f| !f.trim().is_empty()))
            .unwrap_or_else(|| "info".to_owned());
        Self { json, filter }
    }
}

/// Maps Lambda's level names (`TRACE` … `FATAL`) to `tracing` levels.
fn lambda_level(level: &str) -> &'static str {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "info",
    }
}

/// Installs the global subscriber from the process environment, and the
/// panic hook that logs through it. Call once, first thing in `main`.
pub fn init() {
    init_with(&LogSettings::from_lookup(|name| std::env::var(name).ok()));
    std::panic::set_hook(Box::new(|panic| {
        let location = panic
            .location()
            .map(|at| format!("{}:{}:{}", at.file(), at.line(), at.column()));
        tracing::error!(panic = %panic.payload_as_str().unwrap_or("a panic without a message"), location, "panic");
    }));
}

/// The filter `settings` ask for; directives that do not parse fall back to
/// `info` rather than stopping the function.
pub fn filter(settings: &LogSettings) -> Targets {
    Targets::from_str(&settings.filter)
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

/// Installs the global subscriber with `settings`.
pub fn init_with(settings: &LogSettings) {
    let registry = tracing_subscriber::registry().with(filter(settings));
    let installed = if settings.json {
        registry.with(json_layer(std::io::stdout)).try_init()
    } else {
        let text = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .with_target(false)
            .without_time()
            .with_ansi(false);
        registry.with(text).try_init()
    };
    // A second call (tests) keeps the first subscriber; nothing to report.
    drop(installed);
}

/// The JSON lines layer, writing to `writer`.
fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .without_time()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogSettings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn json_at_info_by_default() {
        assert_eq!(
            settings(&[]),
            LogSettings {
                json: true,
                filter: "info".into()
            }
        );
    }

    #[test]
    fn lambda_controls_win_over_rust_log() {
        let s = settings(&[
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("RUST_LOG", "trace"),
        ]);
        assert_eq!(
            s,
            LogSettings {
                json: false,
                filter: "debug".into()
            }
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter,
            "error"
        );
        assert!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).json);
    }

    #[test]
    fn rust_log_for_local_runs() {
        let local = settings(&[("RUST_LOG", "info,webhook_receiver=debug")]);
        assert_eq!(local.filter, "info,webhook_receiver=debug");
        let targets = filter(&local);
        assert!(targets.would_enable("webhook_receiver::handler", &tracing::Level::DEBUG));
        assert!(!targets.would_enable("aws_smithy_runtime", &tracing::Level::DEBUG));
        assert!(targets.would_enable("aws_smithy_runtime", &tracing::Level::INFO));
    }

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Written(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_logged_inside_a_record_carries_the_record() {
        let written = Written::default();
        let sink = written.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || sink.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let record =
                tracing::info_span!("record", message_id = "m-1", notification_id = "notif_1");
            record.in_scope(|| tracing::info!(ticket_id = "5", "posted the closed ticket"));
            tracing::info!("outside");
        });
        let text = String::from_utf8(written.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "posted the closed ticket");
        assert_eq!(
            lines[0]["ticket_id"], "5",
            "the event's fields at the top level"
        );
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["span"]["name"], "record");
        assert_eq!(lines[0]["span"]["message_id"], "m-1");
        assert_eq!(lines[0]["span"]["notification_id"], "notif_1");
        assert_eq!(lines[1]["message"], "outside");
        assert!(lines[1].get("span").is_none(), "{text}");
    }

    #[test]
    fn a_filter_that_does_not_parse_means_info() {
        let targets = filter(&settings(&[("RUST_LOG", "=nonsense=")]));
        assert!(targets.would_enable("anything", &tracing::Level::INFO));
        assert!(!targets.would_enable("anything", &tracing::Level::DEBUG));
    }
}
