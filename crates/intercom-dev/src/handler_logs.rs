//! `serve`'s view of handlers' own log lines: each line logged inside a record's span, kept to be printed under that record's line.
//!
//! The processor works on each record inside a `record` span naming its
//! SQS message id ([`topic_processor::processor::RECORD_SPAN`]). Every
//! event logged in it (a handler's `tracing::info!`, the processor's own
//! warnings) that `RUST_LOG` lets through (`info` by default) is kept,
//! with its fields, under that message id until `serve` prints the record's
//! line and takes them ([`HandlerLogs::take`]). Lines logged outside any
//! record (the SDK, the runtime) are printed at once, `WARN` and above only.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use topic_processor::processor::RECORD_SPAN;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Log lines kept by record (SQS message id), until taken.
#[derive(Debug, Clone, Default)]
pub struct HandlerLogs {
    lines: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl HandlerLogs {
    /// The lines logged while record `message_id` was processed, in order;
    /// they are forgotten here.
    pub fn take(&self, message_id: &str) -> Vec<String> {
        self.lines
            .lock()
            .map(|mut lines| lines.remove(message_id).unwrap_or_default())
            .unwrap_or_default()
    }

    fn keep(&self, message_id: &str, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.entry(message_id.to_owned()).or_default().push(line);
        }
    }

    /// A layer that keeps records' lines here and prints the others
    /// (`WARN` and above) with `print`.
    pub fn layer(&self, print: fn(&str)) -> Capture {
        Capture {
            logs: self.clone(),
            print,
        }
    }

    /// Installs [`HandlerLogs::layer`] as the global subscriber, filtered
    /// by `RUST_LOG` (`info` when unset). Keeps an earlier one, if any.
    pub fn install(&self, print: fn(&str)) {
        let settings = lambda_init::logging::LogSettings::from_lookup(|name| {
            (name == "RUST_LOG")
                .then(|| std::env::var(name).ok())
                .flatten()
        });
        let filter = lambda_init::logging::filter(&settings);
        let _ = tracing_subscriber::registry()
            .with(self.layer(print).with_filter(filter))
            .try_init();
    }
}

/// The layer [`HandlerLogs::layer`] makes.
#[derive(Debug)]
pub struct Capture {
    logs: HandlerLogs,
    print: fn(&str),
}

/// The message id of a record's span, kept in the span's extensions.
struct RecordOf(String);

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if attributes.metadata().name() != RECORD_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        let message_id = fields
            .pairs
            .into_iter()
            .find_map(|(name, value)| (name == "message_id").then_some(value));
        if let (Some(message_id), Some(span)) = (message_id, context.span(id)) {
            span.extensions_mut().insert(RecordOf(message_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let record = context.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<RecordOf>().map(|r| r.0.clone()))
        });
        let line = line(event);
        match record {
            Some(message_id) => self.logs.keep(&message_id, line),
            None if *event.metadata().level() <= Level::WARN => (self.print)(&line),
            None => {}
        }
    }
}

/// An event as `serve` prints it: indented, its level, its message, then
/// its fields as `name=value`.
fn line(event: &Event<'_>) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut line = format!(
        "    {:<5} {}",
        event.metadata().level(),
        fields.message.unwrap_or_default()
    );
    for (name, value) in fields.pairs {
        let _ = write!(line, " {name}={value}");
    }
    line
}

/// An event's or span's message and fields, as text.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.pairs.push((field.name().to_owned(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PRINTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn print(line: &str) {
        PRINTED.lock().expect("lock").push(line.to_owned());
    }

    #[test]
    fn lines_logged_in_a_record_are_kept_under_it_with_their_fields() {
        let logs = HandlerLogs::default();
        let subscriber = tracing_subscriber::registry().with(logs.layer(print));
        tracing::subscriber::with_default(subscriber, || {
            let first = tracing::info_span!(
                RECORD_SPAN,
                message_id = "m-1",
                topic = tracing::field::Empty
            );
            let second = tracing::info_span!(RECORD_SPAN, message_id = "m-2");
            first.in_scope(|| {
                tracing::info!(ticket_id = "5", title = ?"Refund", "posted the closed ticket");
                // A handler's own span inside the record's.
                tracing::info_span!("post")
                    .in_scope(|| tracing::warn!(status = 503, "endpoint down"));
            });
            second.in_scope(|| tracing::info!("another notification"));
            tracing::info!("outside any record, below WARN: not printed");
            tracing::error!(code = 7, "outside any record");
        });
        assert_eq!(
            logs.take("m-1"),
            [
                "    INFO  posted the closed ticket ticket_id=5 title=\"Refund\"",
                "    WARN  endpoint down status=503",
            ]
        );
        assert!(logs.take("m-1").is_empty(), "taken once");
        assert_eq!(logs.take("m-2"), ["    INFO  another notification"]);
        assert_eq!(
            *PRINTED.lock().expect("lock"),
            ["    ERROR outside any record code=7"]
        );
    }
}
