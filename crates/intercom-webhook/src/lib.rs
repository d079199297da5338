//! Intercom webhook domain logic, free of any Lambda runtime or async executor.
//!
//! The path of a notification through this crate:
//!
//! 1. [`signature::Verifier`] checks the `X-Hub-Signature` over the raw body and,
//!    only on success, hands out a [`signature::VerifiedBody`];
//! 2. [`envelope::Envelope::parse`] turns a verified body into a validated
//!    envelope with one `serde_json` parse, the same one the processor uses;
//! 3. [`topic::Topic`] places the topic in Intercom's catalogue;
//! 4. [`queue_message::QueueMessage`] builds what goes to SQS: the body byte for
//!    byte (or base64 where SQS cannot carry it), attributes, FIFO group and
//!    deduplication ids.
//!
//! On the processor's side, [`record::decode`] turns a queued body back into
//! a typed [`models::Item`] and [`dispatch::Registry`] hands it to its
//! handler, and [`destination`] names what goes to the event bus and the
//! archive beside it. [`source_filter::SourceFilter`] serves the receiver.

pub mod destination;
pub mod dispatch;
pub mod envelope;
pub mod models;
pub mod queue_message;
pub mod record;
pub mod signature;
pub mod source_filter;
pub mod synced;
pub mod topic;
