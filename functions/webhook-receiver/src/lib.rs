//! `webhook-receiver`: takes Intercom webhooks over HTTP, verifies them and queues them to SQS.
//!
//! [`handler::Receiver`] holds everything built at cold start and answers one
//! request at a time; [`bootstrap::receiver_from_env`] builds it from the
//! environment. The domain rules live in the `intercom-webhook` crate.

#[cfg(feature = "aws")]
pub mod bootstrap;
pub mod config;
pub mod handler;
pub mod http_event;
pub mod queue;
pub mod secrets;
