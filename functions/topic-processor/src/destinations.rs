//! The built-in destinations: every valid notification put on an EventBridge bus and archived to S3, beside its handler.
//!
//! [`Destinations::deliver`] takes one notification to each configured
//! destination. The archive object is the body byte for byte at
//! [`destination::archive_key`]; the bus entry's `Detail` is the body
//! itself, or, over EventBridge's limit, a pointer to the archived object
//! (without an archive that record fails, `too_large_for_event_bus`).
//!
//! Bus entries of records running at the same time share `PutEvents`
//! requests: [`EventBus`] hands entries to one publishing task, which sends
//! what has gathered (up to 10 entries and 256 KB) while the previous
//! request is in flight, and answers each entry on its own, so a failed
//! entry fails only its own record.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_s3::primitives::ByteStream;
use intercom_webhook::destination::{self, EVENT_BUS_BATCH, EVENT_BUS_LIMIT};
use intercom_webhook::dispatch::{Failure, Meta};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::telemetry::{self, Destination};

/// One notification on its way to the destinations.
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a> {
    /// The body as the receiver accepted it.
    pub body: &'a [u8],
    pub meta: &'a Meta,
    /// The `signature`, `received_at` and `subscription_id` attributes,
    /// for the archive's metadata (a replay queues them again).
    pub signature: Option<&'a str>,
    pub received_at: Option<&'a str>,
    pub subscription_id: Option<&'a str>,
}

/// The configured destinations; none by default.
#[derive(Debug, Default)]
pub struct Destinations {
    pub bus: Option<EventBus>,
    pub archive: Option<Archive>,
}

impl Destinations {
    /// Whether any destination is configured (then no valid notification
    /// is `unhandled`).
    pub fn any(&self) -> bool {
        self.bus.is_some() || self.archive.is_some()
    }

    /// Takes `notification` to every configured destination; the first
    /// failure is the record's.
    pub async fn deliver(&self, notification: Notification<'_>) -> Result<(), Failure> {
        let archived_at = self
            .archive
            .as_ref()
            .map(|archive| (archive, archive.key(notification)));
        let archived = async {
            match &archived_at {
                Some((archive, key)) => archive.put(key, notification).await,
                None => Ok(()),
            }
        };
        let Some(bus) = &self.bus else {
            return archived.await;
        };
        let detail = std::str::from_utf8(notification.body)
            .map_err(|_| Failure::Invalid("the body is not UTF-8".into()))?;
        let size =
            destination::event_entry_size(&bus.source, &notification.meta.topic_name, detail);
        if size <= EVENT_BUS_LIMIT {
            let (archived, published) = tokio::join!(
                archived,
                bus.publish(notification.meta, detail.to_owned(), size)
            );
            return archived.and(published);
        }
        // Too large for the bus: the archived object stands for it.
        let Some((archive, key)) = &archived_at else {
            telemetry::destination_failed(Destination::EventBus);
            return Err(Failure::TooLargeForEventBus(size));
        };
        archived.await?;
        let envelope: Map<String, Value> = serde_json::from_slice(notification.body)
            .map_err(|e| Failure::Invalid(e.to_string()))?;
        let pointer = destination::pointer_detail(&envelope, &archive.bucket, key);
        let size =
            destination::event_entry_size(&bus.source, &notification.meta.topic_name, &pointer);
        if size > EVENT_BUS_LIMIT {
            telemetry::destination_failed(Destination::EventBus);
            return Err(Failure::TooLargeForEventBus(size));
        }
        bus.publish(notification.meta, pointer, size).await
    }
}

/// The S3 archive: a bucket and a key prefix.
#[derive(Debug)]
pub struct Archive {
    client: aws_sdk_s3::Client,
    pub bucket: String,
    pub prefix: String,
}

impl Archive {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// Where `notification` is archived; a retry gets the same key.
    pub fn key(&self, notification: Notification<'_>) -> String {
        let meta = notification.meta;
        destination::archive_key(
            &self.prefix,
            &meta.app_id,
            &meta.topic_name,
            meta.created_at,
            meta.notification_id.as_deref(),
            notification.body,
        )
    }

    async fn put(&self, key: &str, notification: Notification<'_>) -> Result<(), Failure> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(notification.body.to_vec()));
        // S3 metadata is ASCII; both values are, as the receiver writes them.
        for (name, value) in [
            ("signature", notification.signature),
            ("received_at", notification.received_at),
            ("subscription_id", notification.subscription_id),
        ] {
            if let Some(value) = value.filter(|v| v.is_ascii()) {
                request = request.metadata(name, value);
            }
        }
        request.send().await.map(|_| ()).map_err(|error| {
            telemetry::destination_failed(Destination::Archive);
            Failure::Destination(format!(
                "archive s3://{}/{key}: {}",
                self.bucket,
                aws_sdk_s3::error::DisplayErrorContext(error)
            ))
        })
    }
}

/// An EventBridge bus, fed through one publishing task.
#[derive(Debug)]
pub struct EventBus {
    /// The entries' `Source`.
    pub source: String,
    bus_name: String,
    entries: mpsc::UnboundedSender<Pending>,
}

struct Pending {
    entry: PutEventsRequestEntry,
    size: usize,
    done: oneshot::Sender<Result<(), String>>,
}

impl EventBus {
    /// Starts the publishing task on the current Tokio runtime.
    pub fn start(client: aws_sdk_eventbridge::Client, bus_name: &str, source: &str) -> Self {
        let (entries, queued) = mpsc::unbounded_channel();
        tokio::spawn(publish(client, queued));
        Self {
            source: source.to_owned(),
            bus_name: bus_name.to_owned(),
            entries,
        }
    }

    async fn publish(&self, meta: &Meta, detail: String, size: usize) -> Result<(), Failure> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&self.source)
            .detail_type(&meta.topic_name)
            .detail(detail)
            .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                meta.created_at,
            ))
            .build();
        let (done, answer) = oneshot::channel();
        let stopped = || Failure::Destination("event bus: the publishing task stopped".into());
        let published = match self.entries.send(Pending { entry, size, done }) {
            Err(_) => Err(stopped()),
            Ok(()) => answer.await.map_err(|_| stopped()).and_then(|answered| {
                answered.map_err(|error| {
                    Failure::Destination(format!("event bus {}: {error}", self.bus_name))
                })
            }),
        };
        if published.is_err() {
            telemetry::destination_failed(Destination::EventBus);
        }
        published
    }
}

/// Sends what has gathered, one `PutEvents` request at a time, and answers
/// every entry.
async fn publish(
    client: aws_sdk_eventbridge::Client,
    mut queued: mpsc::UnboundedReceiver<Pending>,
) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match queued.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        // Let records running beside this one add their entries.
        tokio::task::yield_now().await;
        let mut size = first.size;
        let mut batch = vec![first];
        while batch.len() < EVENT_BUS_BATCH {
            let Ok(next) = queued.try_recv() else { break };
            if size + next.size > EVENT_BUS_LIMIT {
                carried = Some(next);
                break;
            }
            size += next.size;
            batch.push(next);
        }
        put(&client, batch).await;
    }
}

async fn put(client: &aws_sdk_eventbridge::Client, batch: Vec<Pending>) {
    let (entries, waiting): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|pending| (pending.entry, pending.done))
        .unzip();
    let sent = client.put_events().set_entries(Some(entries)).send().await;
    match sent {
        Ok(output) => {
            let results = output.entries();
            for (n, done) in waiting.into_iter().enumerate() {
                let result = match results.get(n) {
                    Some(entry) if entry.error_code().is_none() && entry.event_id().is_some() => {
                        Ok(())
                    }
                    Some(entry) => Err(format!(
                        "{}: {}",
                        entry.error_code().unwrap_or("no event id"),
                        entry.error_message().unwrap_or_default()
                    )),
                    None => Err("no result for this entry".to_owned()),
                };
                let _ = done.send(result);
            }
        }
        Err(error) => {
            let error = aws_sdk_eventbridge::error::DisplayErrorContext(error).to_string();
            for done in waiting {
                let _ = done.send(Err(error.clone()));
            }
        }
    }
}
