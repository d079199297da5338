//! The built-in destinations: every valid notification put on an EventBridge bus and archived to S3, beside its handler.
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
//!   one `PutObject` and one `PutEvents` of one entry (after the archive
//!   when the entry points to it). Nothing is left running in the
//!   background: when the record's deadline cuts the delivery off, its
//!   requests are dropped with it, and nothing is sent after the record's
//!   outcome was decided.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_s3::primitives::ByteStream;
use intercom_webhook::destination::{self, EVENT_BUS_LIMIT};
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
        let Some(bus) = &self.bus else {
            return Ok(Plan {
                archive_key,
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
            bus_detail: Some(BusDetail::Pointer(pointer)),
        })
    }

    /// Delivers `notification` as `plan` says; the first failure is the
    /// record's.
    pub async fn deliver(&self, plan: Plan, notification: &Notification) -> Result<(), Failure> {
        let archived = async {
            match (&self.archive, &plan.archive_key) {
                (Some(archive), Some(key)) => archive.put(key, notification).await,
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
