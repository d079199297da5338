//! The built-in destinations: every valid notification put on an EventBridge bus and archived to S3 (an object each, or a line of a Firehose stream), beside its handler.
//!
//! Two steps, so that a record that can never be delivered fails before
//! its handler runs:
//!
//! - [`Destinations::plan`], before anything runs, decides what each
//!   configured destination gets: the archive key, and the bus entry's
//!   `Detail`, which is the body itself or, over EventBridge's limit, a
//!   pointer to the archived object. With no archive to point to, or a body
//!   the bus cannot carry as text, the record fails there
//!   (`too_large_for_event_bus`, `invalid_notification`).
//! - [`Destinations::deliver`] then does it, inside the record's own time:
//!   one `PutObject` (or, with a stream, one `PutRecord`) and one
//!   `PutEvents` of one entry (after the archive when the entry points to
//!   it). With a stream, a body too long for a stream record, or too large
//!   for the bus, is also written as its own object, which the entry and
//!   the stream's line point to. Nothing is left running in the
//!   background: when the record's deadline cuts the delivery off, its
//!   requests are dropped with it, and nothing is sent after the record's
//!   outcome was decided.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_s3::primitives::ByteStream;
use intercom_webhook::destination::{self, ARCHIVE_RECORD_LIMIT, ArchiveRecord, EVENT_BUS_LIMIT};
use intercom_webhook::dispatch::Failure;
use serde_json::{Map, Value};

use crate::notification::Notification;
use crate::telemetry::{self, Destination};

/// The configured destinations; none by default.
#[derive(Debug, Default)]
pub struct Destinations {
    pub bus: Option<EventBus>,
    pub archive: Option<Archive>,
}

/// What the destinations will do with one notification, decided before
/// anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where the archive stores the body.
    archive_key: Option<String>,
    /// Whether that object is written: always without a stream; with one,
    /// only for a body the bus entry or the stream's line points to.
    archive_object: bool,
    /// The stream's line, with a stream.
    stream_line: Option<String>,
    /// The bus entry's `Detail`.
    bus_detail: Option<BusDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BusDetail {
    /// The notification itself.
    Body(String),
    /// A pointer to the archived object, put once the object is there.
    Pointer(String),
}

impl Destinations {
    /// Whether any destination is configured (then no valid notification
    /// is `unhandled`).
    pub fn any(&self) -> bool {
        self.bus.is_some() || self.archive.is_some()
    }

    /// What each configured destination gets, or why it never can.
    pub fn plan(&self, notification: &Notification) -> Result<Plan, Failure> {
        let archive_key = self
            .archive
            .as_ref()
            .map(|archive| archive.key(notification));
        let (object, stream_line) = match (&self.archive, &archive_key) {
            (Some(Archive { stream: None, .. }), Some(_)) => (true, None),
            (
                Some(Archive {
                    stream: Some(_), ..
                }),
                Some(key),
            ) => {
                let line = ArchiveStream::line(notification, None);
                if line.len() <= ARCHIVE_RECORD_LIMIT {
                    (false, Some(line))
                } else {
                    (true, Some(ArchiveStream::line(notification, Some(key))))
                }
            }
            _ => (false, None),
        };
        let Some(bus) = &self.bus else {
            return Ok(Plan {
                archive_key,
                archive_object: object,
                stream_line,
                bus_detail: None,
            });
        };
        let topic = &notification.meta.topic_name;
        let body = std::str::from_utf8(&notification.body).map_err(|_| {
            Failure::Invalid("the body is not UTF-8, as an event's detail must be".into())
        })?;
        let size = destination::event_entry_size(&bus.source, topic, body);
        if size <= EVENT_BUS_LIMIT {
            return Ok(Plan {
                archive_key,
                archive_object: object,
                stream_line,
                bus_detail: Some(BusDetail::Body(body.to_owned())),
            });
        }
        let too_large = |size| {
            telemetry::destination_failed(Destination::EventBus);
            Failure::TooLargeForEventBus(size)
        };
        let (Some(archive), Some(key)) = (&self.archive, &archive_key) else {
            return Err(too_large(size));
        };
        let envelope: Map<String, Value> = serde_json::from_slice(&notification.body)
            .map_err(|e| Failure::Invalid(e.to_string()))?;
        let pointer = destination::pointer_detail(&envelope, &archive.bucket, key);
        let size = destination::event_entry_size(&bus.source, topic, &pointer);
        if size > EVENT_BUS_LIMIT {
            return Err(too_large(size));
        }
        Ok(Plan {
            archive_key,
            archive_object: true,
            stream_line,
            bus_detail: Some(BusDetail::Pointer(pointer)),
        })
    }

    /// Delivers `notification` as `plan` says; the first failure is the
    /// record's.
    pub async fn deliver(&self, plan: Plan, notification: &Notification) -> Result<(), Failure> {
        let archived = async {
            match (&self.archive, &plan.archive_key) {
                (Some(archive), Some(key)) => {
                    if plan.archive_object {
                        archive.put(key, notification).await?;
                    }
                    match (&archive.stream, plan.stream_line) {
                        (Some(stream), Some(line)) => stream.put(line).await,
                        _ => Ok(()),
                    }
                }
                _ => Ok(()),
            }
        };
        let Some(bus) = &self.bus else {
            return archived.await;
        };
        match plan.bus_detail {
            None => archived.await,
            Some(BusDetail::Body(detail)) => {
                let (archived, published) =
                    tokio::join!(archived, bus.publish(notification, detail));
                archived.and(published)
            }
            Some(BusDetail::Pointer(detail)) => {
                archived.await?;
                bus.publish(notification, detail).await
            }
        }
    }
}

/// The S3 archive: a bucket and a key prefix, and optionally the Firehose
/// stream that writes the stream layout into it.
#[derive(Debug)]
pub struct Archive {
    client: aws_sdk_s3::Client,
    pub bucket: String,
    pub prefix: String,
    pub stream: Option<ArchiveStream>,
}

impl Archive {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            stream: None,
        }
    }

    /// The stream layout: lines to `stream`, objects only for what a line
    /// cannot hold.
    pub fn with_stream(mut self, stream: ArchiveStream) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Where `notification` is archived; a retry gets the same key.
    pub fn key(&self, notification: &Notification) -> String {
        let meta = &notification.meta;
        destination::archive_key(
            &self.prefix,
            &meta.app_id,
            &meta.topic_name,
            meta.created_at,
            meta.notification_id.as_deref(),
            &notification.body,
        )
    }

    async fn put(&self, key: &str, notification: &Notification) -> Result<(), Failure> {
        let delivery = &notification.delivery;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(notification.body.clone()));
        // S3 metadata is ASCII; these values are, as the receiver writes them.
        for (name, value) in [
            ("signature", &delivery.signature),
            ("received_at", &delivery.received_at),
            ("subscription_id", &delivery.subscription_id),
        ] {
            if let Some(value) = value.as_deref().filter(|v| v.is_ascii()) {
                request = request.metadata(name, value);
            }
        }
        request.send().await.map(drop).map_err(|error| {
            telemetry::destination_failed(Destination::Archive);
            Failure::Destination(format!(
                "archive s3://{}/{key}: {}",
                self.bucket,
                aws_sdk_s3::error::DisplayErrorContext(error)
            ))
        })
    }
}

/// An Amazon Data Firehose stream writing the archive's stream layout:
/// one `PutRecord` of one line per notification (Firehose bills by the
/// gigabyte, each record rounded up to 5 KB, not by the request).
#[derive(Debug)]
pub struct ArchiveStream {
    client: aws_sdk_firehose::Client,
    name: String,
}

impl ArchiveStream {
    pub fn new(client: aws_sdk_firehose::Client, name: &str) -> Self {
        Self {
            client,
            name: name.to_owned(),
        }
    }

    /// `notification`'s line: the body in it, or with `object`, a pointer
    /// to the archive object that holds it.
    fn line(notification: &Notification, object: Option<&str>) -> String {
        let meta = &notification.meta;
        let delivery = &notification.delivery;
        ArchiveRecord {
            app_id: meta.app_id.clone(),
            topic: meta.topic_name.clone(),
            created_at: meta.created_at,
            id: meta.notification_id.clone(),
            signature: delivery.signature.clone(),
            received_at: delivery.received_at.clone(),
            subscription_id: delivery.subscription_id.clone(),
            body: object.is_none().then(|| notification.body.clone()),
            object: object.map(str::to_owned),
        }
        .to_line()
    }

    async fn put(&self, line: String) -> Result<(), Failure> {
        let sent = self
            .client
            .put_record()
            .delivery_stream_name(&self.name)
            .record(
                aws_sdk_firehose::types::Record::builder()
                    .data(aws_sdk_firehose::primitives::Blob::new(line.into_bytes()))
                    .build()
                    .map_err(|e| Failure::Destination(e.to_string()))?,
            )
            .send()
            .await;
        sent.map(drop).map_err(|error| {
            telemetry::destination_failed(Destination::Archive);
            Failure::Destination(format!(
                "archive stream {}: {}",
                self.name,
                aws_sdk_firehose::error::DisplayErrorContext(error)
            ))
        })
    }
}

/// An EventBridge bus.
#[derive(Debug)]
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    /// The entries' `Source`.
    pub source: String,
    bus_name: String,
}

impl EventBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: &str, source: &str) -> Self {
        Self {
            client,
            source: source.to_owned(),
            bus_name: bus_name.to_owned(),
        }
    }

    /// Puts one entry for `notification` with `detail`: `PutEvents` answers
    /// each entry on its own, and a failed entry is this record's failure.
    async fn publish(&self, notification: &Notification, detail: String) -> Result<(), Failure> {
        let meta = &notification.meta;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&self.source)
            .detail_type(&meta.topic_name)
            .detail(detail)
            .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                meta.created_at,
            ))
            .build();
        let sent = self.client.put_events().entries(entry).send().await;
        let refused = match &sent {
            Err(error) => Some(aws_sdk_eventbridge::error::DisplayErrorContext(error).to_string()),
            Ok(output) => match output.entries().first() {
                Some(entry) if entry.error_code().is_none() && entry.event_id().is_some() => None,
                Some(entry) => Some(format!(
                    "{}: {}",
                    entry.error_code().unwrap_or("no event id"),
                    entry.error_message().unwrap_or_default()
                )),
                None => Some("no result for the entry".to_owned()),
            },
        };
        match refused {
            None => Ok(()),
            Some(error) => {
                telemetry::destination_failed(Destination::EventBus);
                Err(Failure::Destination(format!(
                    "event bus {}: {error}",
                    self.bus_name
                )))
            }
        }
    }
}
