//! `intercom-dev dlq`: list, show and redrive what is in the dead-letter queue, through the SDK's own settings.
//!
//! Reading a queue means receiving its messages: every command receives
//! them with a short visibility timeout and gives back (visibility 0) what
//! it does not move, so the queue is as it was. `redrive` without filters
//! has SQS move everything (`StartMessageMoveTask`); with filters it moves
//! one received batch at a time, each message sent to the source queue with
//! its body, attributes and FIFO group and deleted from the dead-letter
//! queue only once the source acknowledged it (see [`redrive`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
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

/// One receive of up to 10 messages of `queue_url`, invisible for `hold`;
/// `wait` long-polls a second.
async fn receive_batch(
    sqs: &Client,
    queue_url: &str,
    hold: Duration,
    wait: bool,
) -> Result<Vec<Dead>, Error> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(i32::from(wait))
        .visibility_timeout(i32::try_from(hold.as_secs()).unwrap_or(60))
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| explain(queue_url, e))?
        .messages
        .unwrap_or_default();
    Ok(received.into_iter().map(Dead::of).collect())
}

/// Every message now in `queue_url`, received with a visibility timeout of
/// `hold` so none comes twice (a FIFO group shows its first message only:
/// the rest stay behind it while it is invisible).
async fn receive_all(sqs: &Client, queue_url: &str, hold: Duration) -> Result<Vec<Dead>, Error> {
    let mut all = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let received = receive_batch(sqs, queue_url, hold, empty > 0).await?;
        if received.is_empty() {
            empty += 1;
        } else {
            empty = 0;
            all.extend(received);
        }
    }
    Ok(all)
}

/// Makes `messages` visible again at once. A handle that expired meanwhile
/// fails, and its message is visible already: nothing is lost either way.
async fn give_back(sqs: &Client, queue_url: &str, messages: &[Dead]) {
    for message in messages {
        if let Some(handle) = message.message.receipt_handle() {
            let _ = sqs
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }
}

/// The messages of `queue_url` that `filter` takes, oldest first; the
/// queue is left as it was.
pub async fn list(sqs: &Client, queue_url: &str, filter: &Filter) -> Result<Vec<Dead>, Error> {
    let all = receive_all(sqs, queue_url, Duration::from_secs(60)).await?;
    give_back(sqs, queue_url, &all).await;
    let mut taken: Vec<Dead> = all.into_iter().filter(|m| filter.takes(m)).collect();
    taken.sort_by_key(|m| std::cmp::Reverse(m.age));
    Ok(taken)
}

/// The message `message_id` of `queue_url`, if it is there.
pub async fn show(sqs: &Client, queue_url: &str, message_id: &str) -> Result<Option<Dead>, Error> {
    let all = list(sqs, queue_url, &Filter::default()).await?;
    Ok(all.into_iter().find(|m| m.id() == message_id))
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
/// back as a duplicate). A message the filter leaves stays invisible until
/// the end, then is given back. On a FIFO queue a group moves whole, in
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
    let mut seen = HashSet::new();
    // Received and not moved: given back at the end.
    let mut kept: Vec<Dead> = Vec::new();
    let mut held_groups = BTreeSet::new();
    let mut empty = 0;
    let mut step = 0;
    // Two receives in a row with nothing new: SQS samples its servers, so
    // one empty receive does not prove the queue empty.
    while empty < 2 {
        let batch = receive_batch(sqs, dlq_url, *hold, empty > 0).await?;
        let (fresh, again): (Vec<Dead>, Vec<Dead>) = batch
            .into_iter()
            .partition(|m| seen.insert(m.id().to_owned()));
        // Seen before: left by the filter, back after its hold.
        kept.extend(again);
        if fresh.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for dead in fresh {
            step += 1;
            let step = format!("[{step}] {}", dead.line());
            let group = dead.group().map(str::to_owned);
            let behind = group.as_ref().is_some_and(|g| held_groups.contains(g));
            if behind || !filter.takes(&dead) {
                held_groups.extend(group);
                done.left += 1;
                kept.push(dead);
            } else if dry_run {
                progress(&format!("{step}: would move"));
                done.moved += 1;
                kept.push(dead);
            } else {
                match move_one(sqs, dlq_url, to, &dead).await {
                    Ok(()) => {
                        done.moved += 1;
                        progress(&format!("{step}: moved"));
                    }
                    Err(error) => {
                        done.failed += 1;
                        progress(&format!("{step}: failed: {error}"));
                        held_groups.extend(group);
                        kept.push(dead);
                    }
                }
            }
        }
    }
    give_back(sqs, dlq_url, &kept).await;
    let verb = if dry_run { "would move" } else { "moved" };
    progress(&format!(
        "{verb} {} message(s) to {to}; {} failed (left in the dead-letter queue); {} not matching left there",
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
