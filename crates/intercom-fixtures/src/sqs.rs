//! SQS records as Lambda delivers them to `topic-processor`: the one place tests, the dev tool and `events/` build them.
//!
//! Every record is an `aws_lambda_events` [`SqsMessage`], filled the way the
//! event source mapping fills it: the message id, the body, the string
//! message attributes, and the system attributes (`ApproximateReceiveCount`,
//! `SentTimestamp`, and for FIFO queues `MessageGroupId` and
//! `MessageDeduplicationId`).

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use intercom_webhook::queue_message::{ATTRIBUTE_DATA_TYPE, QueueMessage};

/// The queue records come from, unless a test names its own.
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:intercom.fifo";

/// What the event source mapping says about a message besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// SQS's system attributes (`ApproximateReceiveCount`, `MessageGroupId`, …).
    pub system: Vec<(String, String)>,
    /// The message's string attributes.
    pub attributes: Vec<(String, String)>,
}

impl Received {
    /// A first delivery of a message with these string attributes, on a
    /// standard queue, or on a FIFO queue when `fifo` has its group and
    /// deduplication ids.
    pub fn first<N: AsRef<str>, V: AsRef<str>>(
        attributes: &[(N, V)],
        fifo: Option<(&str, &str)>,
    ) -> Self {
        let mut system = vec![
            ("ApproximateReceiveCount".to_owned(), "1".to_owned()),
            ("SentTimestamp".to_owned(), "1763850004000".to_owned()),
            (
                "SenderId".to_owned(),
                "AROAEXAMPLE:webhook-receiver".to_owned(),
            ),
            (
                "ApproximateFirstReceiveTimestamp".to_owned(),
                "1763850004100".to_owned(),
            ),
        ];
        if let Some((group, deduplication)) = fifo {
            system.push(("MessageGroupId".to_owned(), group.to_owned()));
            system.push((
                "MessageDeduplicationId".to_owned(),
                deduplication.to_owned(),
            ));
        }
        Self {
            system,
            attributes: attributes
                .iter()
                .map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_owned()))
                .collect(),
        }
    }
}

#[cfg(feature = "sdk")]
impl Received {
    /// What SQS said of a message received through the SDK (with all
    /// attributes and system attributes asked for).
    pub fn from_message(message: &aws_sdk_sqs::types::Message) -> Self {
        Self {
            system: message
                .attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
                .collect(),
            attributes: message
                .message_attributes()
                .into_iter()
                .flatten()
                .filter_map(|(name, value)| Some((name.clone(), value.string_value()?.to_owned())))
                .collect(),
        }
    }
}

/// The record Lambda delivers for a message with `message_id` and `body`.
pub fn record(message_id: &str, body: &str, received: Received) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message_id.to_owned());
    record.receipt_handle = Some(format!("AQEB-{message_id}"));
    record.body = Some(body.to_owned());
    record.md5_of_body = Some(String::new());
    record.attributes = received.system.into_iter().collect();
    record.message_attributes = received
        .attributes
        .into_iter()
        .map(|(name, value)| {
            let mut attribute = SqsMessageAttribute::default();
            attribute.string_value = Some(value);
            attribute.data_type = Some(ATTRIBUTE_DATA_TYPE.to_owned());
            (name, attribute)
        })
        .collect();
    record.event_source = Some("aws:sqs".to_owned());
    record.event_source_arn = Some(QUEUE_ARN.to_owned());
    record.aws_region = Some("us-east-1".to_owned());
    record
}

/// The record Lambda delivers, on first receipt, for a message the receiver built.
pub fn record_of(message_id: &str, message: &QueueMessage<'_>) -> SqsMessage {
    let fifo = message
        .fifo
        .as_ref()
        .map(|ids| (ids.group_id.as_str(), ids.deduplication_id.as_str()));
    let attributes: Vec<(&str, &str)> = message
        .attributes
        .iter()
        .map(|(name, value)| (*name, value.as_ref()))
        .collect();
    record(
        message_id,
        &message.body,
        Received::first(&attributes, fifo),
    )
}

/// The record Lambda delivers for a message received through the SDK.
#[cfg(feature = "sdk")]
pub fn record_of_received(message: &aws_sdk_sqs::types::Message) -> SqsMessage {
    record(
        message.message_id().unwrap_or_default(),
        message.body().unwrap_or_default(),
        Received::from_message(message),
    )
}

/// The event Lambda hands the processor for `records`, from `queue_arn`.
pub fn event(records: Vec<SqsMessage>, queue_arn: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records
        .into_iter()
        .map(|mut record| {
            record.event_source_arn = Some(queue_arn.to_owned());
            record
        })
        .collect();
    event
}
