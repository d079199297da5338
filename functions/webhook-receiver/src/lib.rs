//! `webhook-receiver`: takes Intercom webhooks over HTTP, verifies them and queues them to SQS.
//!
//! [`handler::Receiver`] holds everything built at cold start and answers one
//! request at a time; [`bootstrap::receiver_from_env`] builds it from the
//! environment; [`queue`] sends to SQS and, for bodies beyond it, `payloads`
//! stores them in S3; [`allowlist`] keeps the source allowlist's Intercom ranges
//! fresh. The domain rules live in the `intercom-webhook` crate.

pub mod allowlist;
#[cfg(feature = "aws")]
pub mod bootstrap;
pub mod config;
pub mod handler;
pub mod http_event;
#[cfg(feature = "aws")]
pub mod payloads;
pub mod queue;
pub mod secrets;
