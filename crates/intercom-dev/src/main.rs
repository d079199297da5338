//! `intercom-dev`: run the pipeline locally, and sign and send Intercom notifications.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use intercom_dev::{backfill, check, deployed, dlq, fixtures, local, replay, samples, send};
use intercom_webhook::models::model_for;
use intercom_webhook::signature::Verifier;
use intercom_webhook::topic::Topic;

/// The local loop for Intercom webhooks: no AWS account needed.
///
/// Start the pipeline with `intercom-dev serve`, then, in another terminal,
/// `intercom-dev send conversation.user.created` and watch it be verified,
/// queued and handed to your handlers in functions/topic-processor/src/handlers.rs.
#[derive(Debug, Parser)]
#[command(name = "intercom-dev", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the receiver and the processor on 127.0.0.1 with the Lambdas' own code.
    ///
    /// Queues in memory, or to the SQS queue in QUEUE_URL when set (with the
    /// SDK's usual AWS_ENDPOINT_URL, AWS_REGION and credentials, e.g. a local moto).
    Serve {
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8787)]
        port: u16,
        /// Client secret(s), comma-separated.
        #[arg(long, env = "INTERCOM_CLIENT_SECRET", hide_env_values = true, default_value = fixtures::TEST_SECRET)]
        secret: String,
        /// An SQS queue URL to use instead of the embedded queue.
        #[arg(long, env = "QUEUE_URL")]
        queue_url: Option<String>,
        /// Point handlers' Intercom client at a local mock of Intercom's API
        /// (every request checked against Intercom's OpenAPI description,
        /// answered with its examples) and print each call they make.
        #[arg(long)]
        intercom_mock: bool,
    },
    /// Print the X-Hub-Signature of a body (a file, or standard input).
    Sign {
        /// The body; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// Client secret(s) to sign with, comma-separated (the first is used).
        #[arg(long, env = "INTERCOM_CLIENT_SECRET", hide_env_values = true, default_value = fixtures::TEST_SECRET)]
        secret: String,
    },
    /// Send signed notifications: sample ones by topic, every topic, or a file.
    ///
    /// Each is sent as a new notification: a fresh id and `created_at` now,
    /// so sending one twice is processed twice (`--same` sends it exactly as
    /// it is, to see a duplicate). Examples:
    ///   intercom-dev send conversation.user.created ticket.created
    ///   intercom-dev send --all
    ///   intercom-dev sample ticket.closed > closed.json   (edit it, then:)
    ///   intercom-dev send --file closed.json
    ///   intercom-dev send --same ticket.created   (twice: the second is a duplicate)
    ///   intercom-dev send --forge contact.user.created   (expect 401)
    ///   intercom-dev send --out-of-order ticket.state.updated   (the second is stale)
    #[command(verbatim_doc_comment)]
    Send {
        /// Topics to send a sample notification for (see `intercom-dev topics`).
        topics: Vec<String>,
        /// Send a sample for every topic in the catalogue.
        #[arg(long, conflicts_with_all = ["topics", "file"])]
        all: bool,
        /// Send this file's bytes as the body.
        #[arg(long, conflicts_with = "topics")]
        file: Option<PathBuf>,
        /// Where to POST.
        #[arg(long, default_value = "http://127.0.0.1:8787/webhook")]
        url: String,
        /// Client secret(s) to sign with, comma-separated (the first is used).
        #[arg(long, env = "INTERCOM_CLIENT_SECRET", hide_env_values = true, default_value = fixtures::TEST_SECRET)]
        secret: String,
        /// Sign with the wrong secret, to see a forged request refused.
        #[arg(long)]
        forge: bool,
        /// Send the sample or file exactly as it is (its own id and
        /// `created_at`): sent twice, the second is a `duplicate`.
        #[arg(long)]
        same: bool,
        /// For each topic, send a notification created now and then one
        /// about the same object created a minute earlier, as a late
        /// retry arrives: the second is stale (see FRESHNESS).
        #[arg(long, conflicts_with_all = ["all", "file", "same"])]
        out_of_order: bool,
    },
    /// Print a topic's sample notification, to edit and send back with
    /// `send --file` (which gives it a fresh id and `created_at`).
    ///
    /// Examples:
    ///   intercom-dev sample ticket.closed > closed.json
    ///   intercom-dev sample conversation.user.created --out refund.json
    #[command(verbatim_doc_comment)]
    Sample {
        /// The topic (see `intercom-dev topics`).
        topic: String,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// After deploying: is the webhook URL answering as Intercom needs?
    ///
    /// Sends a HEAD, a signed ping, a forged ping and a signed ping over
    /// 1 MiB (nothing is queued) and reports each answer and its time
    /// against the contract; exits non-zero on any mismatch. A stale client
    /// secret is named as such.
    ///
    /// With --stack, reads the stack's outputs (the URL) and its stored
    /// client secret with your AWS credentials, and reports too: whether
    /// the stored secret is the one given (--secret, the app's), the queue
    /// and dead-letter queue depth, alarms in ALARM, and whether the alarm
    /// topic has a confirmed subscription. Examples:
    ///   intercom-dev check --url https://abc.execute-api.eu-west-1.amazonaws.com/webhook --secret "$SECRET"
    ///   intercom-dev check --stack intercom-webhooks --secret "$SECRET"
    #[command(verbatim_doc_comment)]
    Check {
        /// The webhook URL (the stack's WebhookUrl output; with --stack, read from it).
        #[arg(long)]
        url: Option<String>,
        /// The app's client secret (the first of a comma-separated list);
        /// with --stack, the stored one when not given.
        #[arg(long, env = "INTERCOM_CLIENT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// The CloudFormation stack (`sam deploy`'s stack name).
        #[arg(long)]
        stack: Option<String>,
    },
    /// List every topic in the catalogue: its name, the `Topic` variant to
    /// register a handler with, the model its handler asks for
    /// (`Event<Model>`), and Intercom's item type (Preview-only topics are
    /// marked).
    Topics,
    /// Receive and delete every message now in an SQS queue, and print the SQS
    /// event Lambda would hand topic-processor for them (for
    /// `cargo lambda invoke topic-processor --data-file`); from a FIFO queue
    /// at most 10, in group order, as Lambda's FIFO batches hold.
    ///
    /// Uses the SDK's usual settings (AWS_ENDPOINT_URL, AWS_REGION, credentials).
    SqsEvent {
        /// The queue to drain.
        queue_url: String,
    },
    /// Put archived notifications back onto the queue: a topic or family, a
    /// time range, with their original attributes and FIFO ids.
    ///
    /// Reads the archive (ARCHIVE_BUCKET, ARCHIVE_PREFIX) and sends to
    /// QUEUE_URL with the SDK's usual settings (AWS_PROFILE, AWS_REGION,
    /// AWS_ENDPOINT_URL). Each body is verified again against its archived
    /// signature, so give the client secret (comma-separated during a
    /// rotation). Examples:
    ///   intercom-dev replay --topic 'ticket.*' --from 2026-11-01 --to 2026-11-30 --dry-run
    ///   intercom-dev replay --topic conversation.user.created --from 2026-11-29T08:00:00Z
    #[command(verbatim_doc_comment)]
    Replay {
        #[arg(long, env = "ARCHIVE_BUCKET")]
        bucket: String,
        #[arg(long, env = "ARCHIVE_PREFIX", default_value = "")]
        prefix: String,
        #[arg(long, env = "QUEUE_URL")]
        queue_url: String,
        /// A topic, or a family as `ticket.*` (repeatable; none takes all).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// From this date (UTC) or RFC 3339 time, inclusive.
        #[arg(long)]
        from: Option<String>,
        /// To this date, inclusive, or RFC 3339 time, exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Say what would be queued, and queue nothing.
        #[arg(long)]
        dry_run: bool,
        /// Client secret(s) the archived signatures verify with.
        #[arg(long, env = "INTERCOM_CLIENT_SECRET", hide_env_values = true)]
        secret: String,
        /// The run's id (the `replay` attribute; default `replay-` and the time).
        #[arg(long)]
        run_id: Option<String>,
        /// Where bodies too large for one SQS message go, as the receiver
        /// sends them (the stack's PayloadBucketName output).
        #[arg(long, env = "PAYLOAD_BUCKET")]
        payload_bucket: Option<String>,
    },
    /// Recover what Intercom never delivered: objects updated in a window
    /// with no notification seen, queued as synced notifications.
    ///
    /// Asks Intercom's search (INTERCOM_ACCESS_TOKEN, INTERCOM_REGION or
    /// INTERCOM_API_URL) for the conversations, tickets and contacts updated
    /// in the window, compares each with the newest notification the
    /// pipeline has seen about it (the S3 archive, and the table's freshness
    /// items), and queues one `synced.{type}` notification with the current
    /// state of each that changed without one. Uses the SDK's usual settings.
    /// Examples:
    ///   intercom-dev backfill --since 2026-12-04T08:00:00Z --dry-run
    ///   intercom-dev backfill --since 2026-12-03 --until 2026-12-04 --type ticket
    #[command(verbatim_doc_comment)]
    Backfill {
        /// From this date (UTC) or RFC 3339 time, inclusive.
        #[arg(long)]
        since: String,
        /// To this date, inclusive, or RFC 3339 time, exclusive (default:
        /// 20 minutes ago, so the archive's 15-minute buffer has landed).
        #[arg(long)]
        until: Option<String>,
        /// conversation, ticket or contact (repeatable; none takes all three).
        #[arg(long = "type")]
        types: Vec<String>,
        #[arg(long, env = "QUEUE_URL")]
        queue_url: String,
        /// The idempotency table (the stack's IdempotencyTableName output).
        #[arg(long, env = "IDEMPOTENCY_TABLE")]
        table: Option<String>,
        /// The processor's function name (the stack's ProcessorFunctionName
        /// output): with the table, its freshness items are compared too.
        #[arg(long, env = "PROCESSOR_FUNCTION_NAME")]
        function_name: Option<String>,
        /// The archive (the stack's ArchiveBucketName output).
        #[arg(long, env = "ARCHIVE_BUCKET")]
        archive_bucket: Option<String>,
        #[arg(long, env = "ARCHIVE_PREFIX", default_value = "")]
        archive_prefix: String,
        /// Client secret(s): archived signatures verify with them, and the
        /// first signs what is queued.
        #[arg(long, env = "INTERCOM_CLIENT_SECRET", hide_env_values = true)]
        secret: String,
        /// The workspace's app id (default: what GET /me says).
        #[arg(long)]
        app_id: Option<String>,
        #[arg(long, env = "PAYLOAD_BUCKET")]
        payload_bucket: Option<String>,
        /// Say what would be queued, and queue nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Work through the dead-letter queue: list, show, redrive.
    ///
    /// Uses the SDK's usual settings (AWS_PROFILE, AWS_REGION,
    /// AWS_ENDPOINT_URL). The queue is DLQ_URL (the stack's
    /// DeadLetterQueueUrl output). Examples:
    ///   intercom-dev dlq list --topic 'ticket.*'
    ///   intercom-dev dlq show 6b0c3c6e-...
    ///   intercom-dev dlq redrive --older-than 1h --dry-run
    #[command(verbatim_doc_comment)]
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
        /// The dead-letter queue's URL.
        #[arg(long, env = "DLQ_URL", global = true)]
        queue_url: Option<String>,
    },
    /// Regenerate events/ (Lambda events for cargo lambda invoke) from events/notifications/.
    Events {
        /// Only check: exit 1 if a file differs from what would be generated.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// One line per message: message id, topic, notification id, receive
    /// count, age; oldest first.
    ///
    /// Reads the whole queue, each message once however long that takes,
    /// and gives every message back at the end; on a terminal it shows its
    /// progress.
    List {
        #[command(flatten)]
        filter: DlqFilter,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
        /// Stop after this many messages (a first look at a huge queue).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// How long a message read stays invisible at first (extended
        /// while reading lasts; all are given back at the end).
        #[arg(long, value_parser = dlq::parse_age, default_value = "60s")]
        visibility_timeout: std::time::Duration,
    },
    /// One message: the notification, pretty-printed, with its attributes.
    Show {
        /// The message id (from `list`).
        message_id: String,
        /// How long a message read stays invisible at first.
        #[arg(long, value_parser = dlq::parse_age, default_value = "60s")]
        visibility_timeout: std::time::Duration,
    },
    /// Move messages back to the source queue. Without filters SQS moves
    /// everything itself (a message move task, waited for); with filters,
    /// one received batch at a time, attributes and FIFO group kept, each
    /// deleted from the dead-letter queue only once the source acknowledged
    /// it; a FIFO group moves whole or is named in the summary.
    Redrive {
        #[command(flatten)]
        filter: DlqFilter,
        /// The source queue (default: the queue whose redrive policy names
        /// this one).
        #[arg(long)]
        to: Option<String>,
        /// Say what would move, and move nothing.
        #[arg(long)]
        dry_run: bool,
        /// How long a received message stays invisible (with filters): a
        /// batch must be moved within it.
        #[arg(long, value_parser = dlq::parse_age, default_value = "120s")]
        visibility_timeout: std::time::Duration,
    },
}

#[derive(Debug, clap::Args)]
struct DlqFilter {
    /// A topic, or a family as `ticket.*` (repeatable).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Only messages at least this old (90s, 15m, 2h, 3d).
    #[arg(long, value_parser = dlq::parse_age)]
    older_than: Option<std::time::Duration>,
    /// Only messages younger than this.
    #[arg(long, value_parser = dlq::parse_age)]
    newer_than: Option<std::time::Duration>,
}

impl From<DlqFilter> for dlq::Filter {
    fn from(filter: DlqFilter) -> Self {
        Self {
            topics: filter.topics,
            older_than: filter.older_than,
            newer_than: filter.newer_than,
        }
    }
}

async fn run_dlq(queue_url: &str, command: DlqCommand) -> Result<(), String> {
    let sqs = dlq::client().await;
    match command {
        DlqCommand::List {
            filter,
            json,
            limit,
            visibility_timeout,
        } => {
            let filter: dlq::Filter = filter.into();
            let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
            let listed = dlq::list(&sqs, queue_url, &filter, limit, visibility_timeout)
                .await
                .map_err(|e| e.to_string())?;
            if json {
                let all: Vec<_> = listed.messages.iter().map(dlq::Dead::summary).collect();
                out(&serde_json::to_string_pretty(&all).unwrap_or_default());
            } else {
                for message in &listed.messages {
                    out(&message.line());
                }
                let mut summary = format!("{} message(s)", listed.messages.len());
                if !filter.is_empty() {
                    summary += &format!(" taken by the filter, of {} read", listed.read);
                }
                if listed.limited {
                    summary += "; stopped at --limit: the queue holds more";
                }
                out(&summary);
            }
        }
        DlqCommand::Show {
            message_id,
            visibility_timeout,
        } => {
            let message = dlq::show(&sqs, queue_url, &message_id, visibility_timeout)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no message {message_id} in {queue_url}"))?;
            out(&serde_json::to_string_pretty(&message.detail()).unwrap_or_default());
        }
        DlqCommand::Redrive {
            filter,
            to,
            dry_run,
            visibility_timeout,
        } => {
            let to = match to {
                Some(to) => to,
                None => dlq::source_of(&sqs, queue_url)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let options = dlq::RedriveOptions {
                to,
                filter: filter.into(),
                dry_run,
                hold: visibility_timeout,
            };
            let done = dlq::redrive(&sqs, queue_url, &options, &mut |line| out(line))
                .await
                .map_err(|e| e.to_string())?;
            if done.failed > 0 {
                return Err(format!("{} message(s) could not be moved", done.failed));
            }
        }
    }
    Ok(())
}

fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "intercom-dev: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            port,
            secret,
            queue_url,
            intercom_mock,
        } => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => return fail(&e.to_string()),
            };
            match runtime.block_on(local::serve(local::ServeOptions {
                port,
                secret,
                queue_url,
                intercom_mock,
            })) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Sign { file, secret } => {
            let Ok(verifier) = Verifier::from_comma_separated(&secret) else {
                return fail("--secret is empty");
            };
            let body = match file.filter(|f| f.as_os_str() != "-") {
                Some(path) => match std::fs::read(&path) {
                    Ok(body) => body,
                    Err(e) => return fail(&format!("{}: {e}", path.display())),
                },
                None => {
                    let mut body = Vec::new();
                    if let Err(e) = std::io::stdin().read_to_end(&mut body) {
                        return fail(&e.to_string());
                    }
                    body
                }
            };
            out(&verifier.sign(&body));
            ExitCode::SUCCESS
        }
        Command::Send {
            topics,
            all,
            file,
            url,
            secret,
            forge,
            same,
            out_of_order,
        } => send_command(
            SendWhat {
                topics,
                all,
                file,
                same,
                out_of_order,
            },
            &url,
            &secret,
            forge,
        ),
        Command::Sample { topic, out: path } => {
            let parsed = Topic::from_name(&topic);
            if parsed == Topic::Unknown {
                return fail(&format!(
                    "`{topic}` is not in the catalogue (see `intercom-dev topics`)"
                ));
            }
            let mut text =
                serde_json::to_string_pretty(&samples::sample(parsed)).unwrap_or_default();
            text.push('\n');
            match path {
                None => {
                    let mut stdout = std::io::stdout().lock();
                    let _ = stdout.write_all(text.as_bytes());
                }
                Some(path) => {
                    if let Err(e) = std::fs::write(&path, text) {
                        return fail(&format!("{}: {e}", path.display()));
                    }
                    out(&format!(
                        "wrote {} (send it with `intercom-dev send --file {}`)",
                        path.display(),
                        path.display()
                    ));
                }
            }
            ExitCode::SUCCESS
        }
        Command::Check { url, secret, stack } => check_command(url, secret, stack),
        Command::Topics => {
            out(&format!(
                "{:<38} {:<36} {:<29} {}",
                "TOPIC", "Topic::", "Event<…>", "ITEM TYPE"
            ));
            for topic in Topic::ALL.iter().chain(Topic::SYNCED) {
                let note = if topic.is_preview() {
                    " (preview)"
                } else if Topic::SYNCED.contains(topic) {
                    " (ours: intercom-dev backfill)"
                } else {
                    ""
                };
                out(&format!(
                    "{:<38} {:<36} {:<29} {}{note}",
                    topic.name(),
                    topic.variant_name(),
                    format!("Event<{}>", model_for(*topic)),
                    topic.item_type(),
                ));
            }
            ExitCode::SUCCESS
        }
        Command::SqsEvent { queue_url } => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => return fail(&e.to_string()),
            };
            match runtime.block_on(local::drain_to_event(&queue_url)) {
                Ok((event, full)) => {
                    out(&event);
                    if full {
                        let _ = writeln!(
                            std::io::stderr(),
                            "intercom-dev: a batch from a FIFO queue holds at most {} records, \
                             as Lambda's does: run again for the next",
                            local::FIFO_BATCH_MOST
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Replay {
            bucket,
            prefix,
            queue_url,
            topics,
            from,
            to,
            dry_run,
            secret,
            run_id,
            payload_bucket,
        } => {
            let bound = |text: Option<String>, end: bool, flag: &str| {
                text.map(|t| replay::parse_bound(&t, end).map_err(|e| format!("{flag}: {e}")))
                    .transpose()
            };
            let (from, to) = match (bound(from, false, "--from"), bound(to, true, "--to")) {
                (Ok(from), Ok(to)) => (from, to),
                (Err(e), _) | (_, Err(e)) => return fail(&e),
            };
            let run_id = run_id.unwrap_or_else(|| {
                format!(
                    "replay-{}",
                    jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
                )
            });
            let options = replay::ReplayOptions {
                bucket,
                prefix,
                queue_url,
                topics,
                from,
                to,
                dry_run,
                secret,
                run_id,
                payload_bucket,
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => return fail(&e.to_string()),
            };
            match runtime.block_on(replay::replay(&options, &mut |line| out(line))) {
                Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
                Ok(summary) => fail(&format!("{} notification(s) failed", summary.failed)),
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Backfill {
            since,
            until,
            types,
            queue_url,
            table,
            function_name,
            archive_bucket,
            archive_prefix,
            secret,
            app_id,
            payload_bucket,
            dry_run,
        } => {
            let since = match replay::parse_bound(&since, false) {
                Ok(since) => since,
                Err(e) => return fail(&format!("--since: {e}")),
            };
            let until = match until.map(|u| replay::parse_bound(&u, true)) {
                None => jiff::Timestamp::now().as_second() - 20 * 60,
                Some(Ok(until)) => until,
                Some(Err(e)) => return fail(&format!("--until: {e}")),
            };
            let mut kinds = Vec::new();
            for kind in &types {
                match intercom_api::Searchable::from_item_type(kind) {
                    Some(kind) => kinds.push(kind),
                    None => {
                        return fail(&format!(
                            "--type {kind}: one of conversation, ticket, contact"
                        ));
                    }
                }
            }
            if kinds.is_empty() {
                kinds = intercom_api::Searchable::ALL.to_vec();
            }
            let settings = match intercom_api::ApiSettings::from_env() {
                Ok(settings) => settings,
                Err(e) => return fail(&e),
            };
            let intercom_api::TokenSource::Inline(token) = settings.token.clone() else {
                return fail("set INTERCOM_ACCESS_TOKEN: backfill reads Intercom's REST API");
            };
            let options = backfill::BackfillOptions {
                since,
                until,
                kinds,
                queue_url,
                table,
                function_name,
                archive: archive_bucket.map(|bucket| (bucket, archive_prefix)),
                secret,
                app_id,
                payload_bucket,
                dry_run,
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => return fail(&e.to_string()),
            };
            let run = async {
                let intercom = intercom_api::Client::new(&settings, token, None)?;
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await;
                backfill::backfill(&options, &intercom, &sdk, &mut |line| out(line)).await
            };
            match runtime.block_on(run) {
                Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
                Ok(summary) => fail(&format!("{} notification(s) failed", summary.failed)),
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Dlq { command, queue_url } => {
            let Some(queue_url) = queue_url else {
                return fail("give the dead-letter queue's URL: --queue-url or DLQ_URL");
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => return fail(&e.to_string()),
            };
            match runtime.block_on(run_dlq(&queue_url, command)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Events { check } => {
            let mut stale = 0;
            for (name, event) in fixtures::generated_events() {
                let path = fixtures::events_dir().join(&name);
                let expected = fixtures::event_file_text(&event);
                if std::fs::read_to_string(&path).ok().as_deref() == Some(expected.as_str()) {
                    continue;
                }
                if check {
                    stale += 1;
                    out(&format!("stale: events/{name}"));
                } else if let Err(e) = std::fs::write(&path, expected) {
                    return fail(&format!("{}: {e}", path.display()));
                } else {
                    out(&format!("wrote events/{name}"));
                }
            }
            if stale > 0 {
                return fail(&format!(
                    "{stale} file(s) in events/ are stale: run `intercom-dev events`"
                ));
            }
            ExitCode::SUCCESS
        }
    }
}

/// `check`: the URL's answers, and with a stack what it says of itself.
fn check_command(url: Option<String>, secret: Option<String>, stack: Option<String>) -> ExitCode {
    let mut checked = Vec::new();
    let (url, secret, deployed) = match stack {
        None => (
            url.unwrap_or_else(|| "http://127.0.0.1:8787/webhook".to_owned()),
            secret.unwrap_or_else(|| fixtures::TEST_SECRET.to_owned()),
            None,
        ),
        Some(stack) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => return fail(&e.to_string()),
            };
            let read = runtime.block_on(async {
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await;
                let deployed = deployed::outputs(&sdk, &stack).await?;
                let stored = deployed::stored_secret(&sdk, &deployed).await?;
                Ok::<_, String>((sdk, deployed, stored))
            });
            let (sdk, deployed, stored) = match read {
                Ok(read) => read,
                Err(e) => return fail(&e),
            };
            let secret = match secret {
                Some(given) => {
                    checked.push(deployed::secret_line(&deployed, &stored, &given));
                    given
                }
                None => stored,
            };
            let Some(url) = url.or_else(|| deployed.webhook_url.clone()) else {
                return fail(&format!(
                    "stack {} has no WebhookUrl output (served by neither its HTTP API nor a \
                     function URL, e.g. behind a load balancer): give the webhook URL with --url",
                    deployed.stack
                ));
            };
            (url, secret, Some((runtime, sdk, deployed)))
        }
    };
    let Ok(verifier) = Verifier::from_comma_separated(&secret) else {
        return fail("the client secret is empty");
    };
    checked.extend(check::check(&send::agent(), &url, &verifier));
    if let Some((runtime, sdk, deployed)) = &deployed {
        checked.extend(runtime.block_on(deployed::health(sdk, deployed)));
    }
    for line in &checked {
        out(&line.line());
    }
    if deployed.is_some() {
        out(deployed::INTERCOM_RULES);
    }
    let wrong = checked.iter().filter(|c| c.verdict.is_err()).count();
    if wrong == 0 {
        match deployed {
            Some((_, _, deployed)) => out(&format!(
                "stack {} answers as Intercom needs, and its alarms reach somebody",
                deployed.stack
            )),
            None => out(&format!("{url} answers as Intercom needs")),
        }
        ExitCode::SUCCESS
    } else {
        fail(&format!("{wrong} of {} checks failed", checked.len()))
    }
}

/// What `send` sends.
struct SendWhat {
    topics: Vec<String>,
    all: bool,
    file: Option<PathBuf>,
    same: bool,
    out_of_order: bool,
}

fn send_command(what: SendWhat, url: &str, secret: &str, forge: bool) -> ExitCode {
    let Ok(verifier) = Verifier::from_comma_separated(secret) else {
        return fail("--secret is empty");
    };
    let SendWhat {
        topics,
        all,
        file,
        same,
        out_of_order,
    } = what;
    let bodies: Vec<(String, Vec<u8>)> = if let Some(path) = file {
        match std::fs::read(&path) {
            Ok(body) => vec![(path.display().to_string(), body)],
            Err(e) => return fail(&format!("{}: {e}", path.display())),
        }
    } else if all {
        Topic::ALL
            .iter()
            .map(|t| (t.name().to_owned(), samples::sample_body(*t)))
            .collect()
    } else if topics.is_empty() {
        return fail("name a topic, or use --all or --file (see `intercom-dev send --help`)");
    } else {
        let mut bodies = Vec::new();
        for name in topics {
            let topic = Topic::from_name(&name);
            if topic == Topic::Unknown {
                return fail(&format!(
                    "`{name}` is not in the catalogue (see `intercom-dev topics`)"
                ));
            }
            let body = samples::sample_body(topic);
            if !out_of_order {
                bodies.push((name, body));
                continue;
            }
            match send::out_of_order(&body) {
                Ok(pair) => {
                    bodies.extend(pair.map(|(which, body)| (format!("{name} ({which})"), body)))
                }
                Err(e) => return fail(&e),
            }
        }
        bodies
    };
    // --out-of-order made its own ids and times.
    let bodies: Vec<(String, Vec<u8>)> = if same || out_of_order {
        bodies
    } else {
        bodies
            .into_iter()
            .enumerate()
            .map(|(n, (label, body))| (label, send::fresh(&body, n)))
            .collect()
    };
    let agent = send::agent();
    let total = bodies.len();
    let width = total.to_string().len();
    let mut failures = 0;
    for (n, (label, body)) in bodies.iter().enumerate() {
        let signature = send::signature(&verifier, body, forge);
        let line = match send::deliver(&agent, url, body, &signature) {
            Ok(delivered) => {
                let ok = (200..300).contains(&delivered.status);
                failures += usize::from(!ok);
                format!(
                    "{} {} {label}: {}",
                    if ok { "✓" } else { "✗" },
                    delivered.status,
                    delivered.body
                )
            }
            Err(e) => {
                failures += 1;
                format!("✗ --- {label}: {e}")
            }
        };
        if total > 1 {
            out(&format!("[{:>width$}/{total}] {line}", n + 1));
        } else {
            out(&line);
        }
    }
    if total > 1 {
        out(&format!("{} accepted, {failures} not", total - failures));
    }
    if failures > 0 && !forge {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
