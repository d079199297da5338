//! `intercom-dev dlq`: list, show and redrive what is in the dead-letter queue, through the SDK's own settings.
//!
//! Reading a queue means receiving its messages: every command reads it
//! through a [`Reader`], which sees each message once however long reading
//! takes (a seen set by message id, holds extended while reading) and at
//! the end gives back (visibility 0) what it did not move, so the queue is
//! as it was and the counts are exact. `redrive` without filters
//! has SQS move everything (`StartMessageMoveTask`); with filters it moves
//! one received batch at a time, each message sent to the source queue with
//! its body, attributes and FIFO group and deleted from the dead-letter
//! queue only once the source acknowledged it (see [`redrive`]).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use intercom_webhook::queue_message::{self, attribute};
use serde_json::{Value, json};

use crate::replay::topic_matches;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Which messages a command takes.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Topic names, or families as `ticket.*`; empty takes every topic.
    pub topics: Vec<String>,
    /// Only messages at least this old (since first sent).
    pub older_than: Option<Duration>,
    /// Only messages younger than this.
    pub newer_than: Option<Duration>,
}

impl Filter {
    /// Whether it takes everything.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.older_than.is_none() && self.newer_than.is_none()
    }

    fn takes(&self, message: &Dead) -> bool {
        topic_matches(&self.topics, message.topic.as_deref().unwrap_or_default())
            && self.older_than.is_none_or(|age| message.age >= age)
            && self.newer_than.is_none_or(|age| message.age < age)
    }
}

/// Reads `90s`, `15m`, `2h` or `3d`.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not an age like 90s, 15m, 2h or 3d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` is not an age like 90s, 15m, 2h or 3d")),
    };
    Ok(Duration::from_secs(number * seconds))
}

/// One message of the dead-letter queue, as the commands show it.
#[derive(Debug, Clone)]
pub struct Dead {
    pub message: Message,
    pub topic: Option<String>,
    pub notification_id: Option<String>,
    pub receive_count: u32,
    /// Since the message was first sent (to the source queue).
    pub age: Duration,
}

impl Dead {
    fn of(message: Message) -> Self {
        let text = |name: &str| {
            message
                .message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .map(str::to_owned)
        };
        let system = |name: MessageSystemAttributeName| {
            message
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let sent_ms = system(MessageSystemAttributeName::SentTimestamp).unwrap_or(now_ms);
        Self {
            topic: text(attribute::TOPIC),
            notification_id: text(attribute::NOTIFICATION_ID),
            receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            age: Duration::from_millis(now_ms.saturating_sub(sent_ms)),
            message,
        }
    }

    /// The same, without what `list` does not show (body, attributes,
    /// receipt handle): a list of a large queue holds only this.
    fn without_body(mut self) -> Self {
        self.message.body = None;
        self.message.message_attributes = None;
        self.message.attributes = None;
        self.message.receipt_handle = None;
        self.message.md5_of_body = None;
        self.message.md5_of_message_attributes = None;
        self
    }

    fn id(&self) -> &str {
        self.message.message_id().unwrap_or_default()
    }

    /// Its FIFO group, on a FIFO queue.
    fn group(&self) -> Option<&str> {
        self.message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .map(String::as_str)
    }

    /// The line `list` prints.
    pub fn line(&self) -> String {
        format!(
            "{}  {:<36}  {:<40}  received {:>3}×  {} old",
            self.id(),
            self.topic.as_deref().unwrap_or("-"),
            self.notification_id.as_deref().unwrap_or("-"),
            self.receive_count,
            age_text(self.age)
        )
    }

    /// What `list --json` prints for it.
    pub fn summary(&self) -> Value {
        json!({
            "message_id": self.id(),
            "topic": self.topic,
            "notification_id": self.notification_id,
            "receive_count": self.receive_count,
            "age_seconds": self.age.as_secs(),
        })
    }

    /// What `show` prints: the notification (decoded), its attributes and
    /// its system attributes.
    pub fn detail(&self) -> Value {
        let body = self.message.body().unwrap_or_default();
        let encoding = self
            .message
            .message_attributes()
            .and_then(|a| a.get(attribute::CONTENT_ENCODING))
            .and_then(|v| v.string_value());
        let notification = queue_message::decode_body(body, encoding)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .unwrap_or_else(|| Value::String(body.to_owned()));
        let attributes: HashMap<&str, Option<&str>> = self
            .message
            .message_attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str(), value.string_value()))
            .collect();
        let system: HashMap<&str, &str> = self
            .message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        json!({
            "message_id": self.id(),
            "attributes": attributes,
            "system_attributes": system,
            "notification": notification,
        })
    }
}

fn age_text(age: Duration) -> String {
    let seconds = age.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d{:02}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// An SQS client with the SDK's usual settings.
pub async fn client() -> Client {
    Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    )
}

/// A clear word for the usual failures: no such queue, no credentials.
fn explain(queue_url: &str, error: impl std::error::Error) -> String {
    let text = aws_sdk_sqs::error::DisplayErrorContext(&error).to_string();
    if text.contains("NonExistentQueue") || text.contains("QueueDoesNotExist") {
        format!("the queue {queue_url} does not exist (check the URL and AWS_REGION)")
    } else if text.contains("credentials") || text.contains("Credentials") {
        format!(
            "no AWS credentials were found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({text})"
        )
    } else {
        format!("{queue_url}: {text}")
    }
}

/// SQS's longest visibility timeout, counted from the receive.
const MOST_INVISIBLE: Duration = Duration::from_secs(12 * 3600);

/// Reads a queue through, each message once however long reading takes.
///
/// Every message received stays invisible (held) until the end, when
/// [`Reader::release`] gives it back, or until it is forgotten (deleted):
/// a message read once never comes back to be read again, so reading
/// ends when a long-polled receive finds nothing (long polling asks every
/// SQS server, so an empty answer means no visible message is left). A
/// hold is the receive's visibility timeout: `hold` at first, then the
/// time reading looks likely to need (twice the estimated rest, from the
/// queue's approximate size and the pace so far, or from the time spent),
/// so that few holds need extending; a hold about to end is extended
/// (`ChangeMessageVisibilityBatch`) before the next receive. A message
/// that comes back all the same (an extension failed) is known by its id
/// and not read twice. Interrupted (Ctrl-C), reading ends with an error and
/// the caller gives back what was read; killed, the tool leaves messages
/// invisible for at most their hold, then SQS gives them back.
#[derive(Debug)]
pub struct Reader<'a> {
    sqs: &'a Client,
    queue_url: &'a str,
    hold: Duration,
    started: Instant,
    /// The queue's approximate size when reading began, if SQS said.
    approximate: Option<usize>,
    seen: HashSet<String>,
    /// Held messages by id: the newest receipt handle, when it was
    /// received, when its hold ends.
    held: HashMap<String, Held>,
    /// Hold ends, soonest first (entries of forgotten or re-held
    /// messages are skipped).
    ends: BinaryHeap<Reverse<(Instant, String)>>,
    /// Receives that brought a message back that was read already.
    pub repeats: usize,
    done: bool,
}

#[derive(Debug)]
struct Held {
    handle: String,
    received: Instant,
    until: Instant,
}

impl<'a> Reader<'a> {
    /// A reader of `queue_url`, holding what it reads for at least `hold`.
    pub async fn new(sqs: &'a Client, queue_url: &'a str, hold: Duration) -> Result<Self, Error> {
        let hold = hold.clamp(Duration::from_secs(1), MOST_INVISIBLE);
        let approximate = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| explain(queue_url, e))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok());
        Ok(Self {
            sqs,
            queue_url,
            hold,
            started: Instant::now(),
            approximate,
            seen: HashSet::new(),
            held: HashMap::new(),
            ends: BinaryHeap::new(),
            repeats: 0,
            done: false,
        })
    }

    /// How many messages were read.
    pub fn read(&self) -> usize {
        self.seen.len()
    }

    /// The queue's approximate size when reading began.
    pub fn approximate(&self) -> Option<usize> {
        self.approximate
    }

    /// How long a hold given now should last: `hold`, plus twice the time
    /// the rest of the reading looks likely to take.
    fn hold_now(&self) -> Duration {
        let elapsed = self.started.elapsed();
        let read = self.seen.len();
        let rest = match self.approximate {
            Some(total) if read > 0 && total > read => {
                elapsed.mul_f64((total - read) as f64 / read as f64)
            }
            _ => elapsed,
        };
        (self.hold + rest * 2).min(MOST_INVISIBLE - Duration::from_secs(60))
    }

    /// The next messages not read before; `None` once the queue is read
    /// through. Holds about to end are extended first.
    pub async fn next(&mut self) -> Result<Option<Vec<Dead>>, Error> {
        loop {
            if self.done {
                return Ok(None);
            }
            self.extend_holds().await;
            let visibility = self.hold_now();
            let receive = self
                .sqs
                .receive_message()
                .queue_url(self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(43_200))
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send();
            // Ctrl-C ends the reading; the caller gives back what was read.
            let received = tokio::select! {
                received = receive => received.map_err(|e| explain(self.queue_url, e))?,
                _ = tokio::signal::ctrl_c() => {
                    self.done = true;
                    return Err(format!(
                        "interrupted: the {} message(s) read are given back",
                        self.seen.len()
                    )
                    .into());
                }
            }
            .messages
            .unwrap_or_default();
            if received.is_empty() {
                self.done = true;
                return Ok(None);
            }
            let now = Instant::now();
            let mut fresh = Vec::new();
            for message in received {
                let dead = Dead::of(message);
                let id = dead.id().to_owned();
                let handle = dead.message.receipt_handle().unwrap_or_default().to_owned();
                let until = now + visibility;
                self.ends.push(Reverse((until, id.clone())));
                self.held.insert(
                    id.clone(),
                    Held {
                        handle,
                        received: now,
                        until,
                    },
                );
                if self.seen.insert(id) {
                    fresh.push(dead);
                } else {
                    self.repeats += 1;
                }
            }
            if !fresh.is_empty() {
                return Ok(Some(fresh));
            }
        }
    }

    /// Stops reading: the next [`Reader::next`] says the queue is read.
    pub fn stop(&mut self) {
        self.done = true;
    }

    /// The message `id` was deleted: nothing to hold or give back.
    pub fn forget(&mut self, id: &str) {
        self.held.remove(id);
    }

    /// Extends every hold that ends within half a `hold` (or sooner than
    /// the next receive could come back), ten to a call.
    async fn extend_holds(&mut self) {
        let soon = Instant::now() + self.hold / 2;
        let mut due = Vec::new();
        while let Some(Reverse((until, id))) = self.ends.peek().cloned() {
            if until > soon {
                break;
            }
            self.ends.pop();
            if self.held.get(&id).is_some_and(|h| h.until == until) {
                due.push(id);
            }
        }
        if due.is_empty() {
            return;
        }
        let extension = self.hold_now();
        let now = Instant::now();
        let mut calls = Vec::new();
        for ids in due.chunks(10) {
            let mut entries = Vec::new();
            for id in ids {
                let Some(held) = self.held.get_mut(id) else {
                    continue;
                };
                // SQS refuses a hold beyond 12 hours from the receive: such
                // a message comes back, and is known when it does.
                let most =
                    MOST_INVISIBLE.saturating_sub(now - held.received + Duration::from_secs(60));
                let timeout = extension.min(most);
                if timeout <= self.hold / 2 {
                    continue;
                }
                held.until = now + timeout;
                self.ends.push(Reverse((held.until, id.clone())));
                entries.push((held.handle.clone(), timeout));
            }
            calls.push(entries);
        }
        visibility_calls(self.sqs, self.queue_url, calls).await;
    }

    /// Gives every held message back (visible at once), ten to a call and
    /// several calls at a time. A handle that expired meanwhile fails, and
    /// its message is visible already: nothing is lost either way.
    pub async fn release(self) {
        let handles: Vec<(String, Duration)> = self
            .held
            .into_values()
            .map(|h| (h.handle, Duration::ZERO))
            .collect();
        let calls = handles.chunks(10).map(<[_]>::to_vec).collect();
        visibility_calls(self.sqs, self.queue_url, calls).await;
    }
}

/// `ChangeMessageVisibilityBatch` calls, one per list of up to ten
/// (receipt handle, new timeout), eight at a time; failures are left to
/// the seen set (a message whose hold was not extended comes back, and
/// is known).
async fn visibility_calls(sqs: &Client, queue_url: &str, calls: Vec<Vec<(String, Duration)>>) {
    let mut running = tokio::task::JoinSet::new();
    for entries in calls.into_iter().filter(|e| !e.is_empty()) {
        while running.len() >= 8 {
            running.join_next().await;
        }
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = entries
            .into_iter()
            .enumerate()
            .filter_map(|(n, (handle, timeout))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(n.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(i32::try_from(timeout.as_secs()).unwrap_or(0))
                    .build()
                    .ok()
            })
            .collect();
        let call = sqs
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries));
        running.spawn(async move {
            let _ = call.send().await;
        });
    }
    while running.join_next().await.is_some() {}
}

/// Shows reading's progress on a terminal (standard error), at most a few
/// times a second; silent when standard error is not a terminal.
#[derive(Debug)]
pub struct Progress {
    terminal: bool,
    last: Option<Instant>,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last: None,
        }
    }
}

impl Progress {
    fn show(&mut self, reader: &Reader<'_>, taken: usize) {
        if !self.terminal
            || self
                .last
                .is_some_and(|l| l.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(Instant::now());
        let of = reader
            .approximate()
            .map_or_else(String::new, |n| format!(" of about {n}"));
        let _ = write!(
            std::io::stderr(),
            "\rread {}{of} message(s), {taken} taken, {:.0?}   ",
            reader.read(),
            reader.started.elapsed()
        );
    }

    fn end(&self) {
        if self.last.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// What [`list`] found.
#[derive(Debug, Default)]
pub struct Listed {
    /// The messages the filter takes, oldest first (without their bodies).
    pub messages: Vec<Dead>,
    /// Every message read.
    pub read: usize,
    /// Whether `limit` stopped the reading before the queue's end.
    pub limited: bool,
}

/// The messages of `queue_url` that `filter` takes, oldest first, at most
/// `limit`; each message is read once and the queue is left as it was.
pub async fn list(
    sqs: &Client,
    queue_url: &str,
    filter: &Filter,
    limit: Option<usize>,
    hold: Duration,
) -> Result<Listed, Error> {
    let mut reader = Reader::new(sqs, queue_url, hold).await?;
    let mut progress = Progress::default();
    let mut listed = Listed::default();
    let outcome = async {
        while let Some(batch) = reader.next().await? {
            for dead in batch {
                if limit.is_some_and(|l| listed.messages.len() >= l) {
                    listed.limited = true;
                    reader.stop();
                } else if filter.takes(&dead) {
                    listed.messages.push(dead.without_body());
                }
            }
            progress.show(&reader, listed.messages.len());
        }
        Ok::<_, Error>(())
    }
    .await;
    progress.end();
    listed.read = reader.read();
    reader.release().await;
    outcome?;
    listed.messages.sort_by_key(|m| Reverse(m.age));
    Ok(listed)
}

/// The message `message_id` of `queue_url`, if it is there; reading stops
/// once it is found, and the queue is left as it was.
pub async fn show(
    sqs: &Client,
    queue_url: &str,
    message_id: &str,
    hold: Duration,
) -> Result<Option<Dead>, Error> {
    let mut reader = Reader::new(sqs, queue_url, hold).await?;
    let mut progress = Progress::default();
    let mut found = None;
    let outcome = async {
        while let Some(batch) = reader.next().await? {
            if let Some(dead) = batch.into_iter().find(|m| m.id() == message_id) {
                found = Some(dead);
                break;
            }
            progress.show(&reader, 0);
        }
        Ok::<_, Error>(())
    }
    .await;
    progress.end();
    reader.release().await;
    outcome?;
    Ok(found)
}

/// What a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redriven {
    pub moved: usize,
    pub failed: usize,
    /// In the queue but not taken by the filter (left there).
    pub left: usize,
}

/// The source queue of a dead-letter queue, from SQS's own record of the
/// redrive policies pointing at it.
pub async fn source_of(sqs: &Client, dlq_url: &str) -> Result<String, Error> {
    let sources = sqs
        .list_dead_letter_source_queues()
        .queue_url(dlq_url)
        .send()
        .await
        .map_err(|e| explain(dlq_url, e))?
        .queue_urls;
    match sources.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no queue names {dlq_url} as its dead-letter queue; give --to").into()),
        more => Err(format!(
            "{} queues use {dlq_url} as their dead-letter queue ({}); give --to",
            more.len(),
            more.join(", ")
        )
        .into()),
    }
}

/// What `redrive` moves, and where.
#[derive(Debug, Clone)]
pub struct RedriveOptions {
    /// The source queue's URL.
    pub to: String,
    pub filter: Filter,
    pub dry_run: bool,
    /// How long a received message stays invisible: the batch being moved
    /// needs a few seconds; a message left where it is stays out of the
    /// next receives for this long.
    pub hold: Duration,
}

/// Moves what `filter` takes from `dlq_url` back to `to`, or with `dry_run`
/// only says what it would move; `progress` hears a line per message and
/// the summary.
///
/// With no filter, SQS moves everything itself (`StartMessageMoveTask`),
/// and this waits for the task to finish. With filters, it receives one
/// batch (up to 10) at a time and moves the batch's messages before it
/// receives again, so no receipt handle outlives its visibility timeout
/// (a deletion with an expired handle fails, and the message would come
/// back as a duplicate). A message the filter leaves stays held by the
/// [`Reader`] until the end, read once, then is given back. On a FIFO queue a group moves whole, in
/// order, or, when a message of it is left or fails, its later messages
/// stay behind it and the summary names the group.
pub async fn redrive(
    sqs: &Client,
    dlq_url: &str,
    options: &RedriveOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Redriven, Error> {
    let RedriveOptions {
        to,
        filter,
        dry_run,
        hold,
    } = options;
    let (to, dry_run) = (to.as_str(), *dry_run);
    if filter.is_empty() && !dry_run {
        return move_task(sqs, dlq_url, to, progress).await;
    }
    let mut done = Redriven::default();
    let mut held_groups = BTreeSet::new();
    let mut reader = Reader::new(sqs, dlq_url, *hold).await?;
    let mut step = 0;
    // Each batch is moved before the next receive, within its own
    // receive's visibility; what is not moved stays held, read once, and
    // is given back at the end.
    let outcome = async {
        while let Some(batch) = reader.next().await? {
            for dead in batch {
                step += 1;
                let step = format!("[{step}] {}", dead.line());
                let group = dead.group().map(str::to_owned);
                let behind = group.as_ref().is_some_and(|g| held_groups.contains(g));
                if behind || !filter.takes(&dead) {
                    held_groups.extend(group);
                    done.left += 1;
                } else if dry_run {
                    progress(&format!("{step}: would move"));
                    done.moved += 1;
                } else {
                    match move_one(sqs, dlq_url, to, &dead).await {
                        Ok(()) => {
                            done.moved += 1;
                            reader.forget(dead.id());
                            progress(&format!("{step}: moved"));
                        }
                        Err(error) => {
                            done.failed += 1;
                            progress(&format!("{step}: failed: {error}"));
                            held_groups.extend(group);
                        }
                    }
                }
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    let read = reader.read();
    reader.release().await;
    outcome?;
    let verb = if dry_run { "would move" } else { "moved" };
    progress(&format!(
        "{verb} {} message(s) to {to}; {} failed (left in the dead-letter queue); {} not matching left there; {read} read",
        done.moved, done.failed, done.left
    ));
    if !held_groups.is_empty() {
        let groups: Vec<&str> = held_groups.iter().map(String::as_str).collect();
        progress(&format!(
            "FIFO group(s) {} keep a message in the dead-letter queue; any later message of theirs stays behind it, in order",
            groups.join(", "),
        ));
    }
    if dry_run && dlq_url.ends_with(".fifo") {
        progress("a dry run sees only the first message of each FIFO group");
    }
    Ok(done)
}

/// Everything in `dlq_url` back to `to` by SQS's own message move task,
/// waited for.
async fn move_task(
    sqs: &Client,
    dlq_url: &str,
    to: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Redriven, Error> {
    let source_arn = queue_arn(sqs, dlq_url).await?;
    let destination_arn = queue_arn(sqs, to).await?;
    let handle = sqs
        .start_message_move_task()
        .source_arn(&source_arn)
        .destination_arn(&destination_arn)
        .send()
        .await
        .map_err(|e| explain(dlq_url, e))?
        .task_handle
        .unwrap_or_default();
    progress(&format!(
        "SQS is moving every message of {dlq_url} to {to} (message move task {handle})"
    ));
    loop {
        let tasks = sqs
            .list_message_move_tasks()
            .source_arn(&source_arn)
            .max_results(1)
            .send()
            .await
            .map_err(|e| explain(dlq_url, e))?;
        let Some(task) = tasks.results().first() else {
            return Err(format!("SQS lists no message move task for {dlq_url}").into());
        };
        let moved = usize::try_from(task.approximate_number_of_messages_moved()).unwrap_or(0);
        match task.status().unwrap_or_default() {
            "COMPLETED" => {
                progress(&format!("moved {moved} message(s) to {to}"));
                return Ok(Redriven {
                    moved,
                    ..Redriven::default()
                });
            }
            "RUNNING" | "CANCELLING" => {
                progress(&format!("moved {moved} message(s) so far"));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => {
                return Err(format!(
                    "the message move task ended {other} after {moved} message(s): {}",
                    task.failure_reason().unwrap_or("no reason given")
                )
                .into());
            }
        }
    }
}

/// The ARN of `queue_url`.
async fn queue_arn(sqs: &Client, queue_url: &str) -> Result<String, Error> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| explain(queue_url, e))?;
    attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| format!("SQS gave no ARN for {queue_url}").into())
}

/// Sends `dead` to `to` as it was, then deletes it from the dead-letter
/// queue. On a FIFO queue it keeps its group; its deduplication id is its
/// message id in the dead-letter queue, so a move retried after a failed
/// delete is dropped by SQS, while reusing the original id would drop the
/// move itself within five minutes of the original send.
async fn move_one(sqs: &Client, dlq_url: &str, to: &str, dead: &Dead) -> Result<(), String> {
    let message = &dead.message;
    let mut send = sqs
        .send_message()
        .queue_url(to)
        .message_body(message.body().unwrap_or_default())
        .set_message_attributes(message.message_attributes().cloned());
    if to.ends_with(".fifo") {
        send = send
            .set_message_group_id(dead.group().map(str::to_owned))
            .message_deduplication_id(dead.id());
    }
    send.send().await.map_err(|e| explain(to, e))?;
    let handle = message.receipt_handle().unwrap_or_default();
    sqs.delete_message()
        .queue_url(dlq_url)
        .receipt_handle(handle)
        .send()
        .await
        .map_err(|e| {
            format!(
                "sent, but not deleted from the dead-letter queue: {}",
                explain(dlq_url, e)
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_and_print() {
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_age("3d"), Ok(Duration::from_secs(259_200)));
        for bad in ["", "h", "2", "2w", "-1h", "1.5h"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        assert_eq!(age_text(Duration::from_secs(59)), "59s");
        assert_eq!(age_text(Duration::from_secs(3_660)), "1h01m");
        assert_eq!(age_text(Duration::from_secs(90_000)), "1d01h");
    }
}
