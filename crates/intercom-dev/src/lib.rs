//! The local loop: the pipeline on one machine, and tools to sign and send notifications.
//!
//! - [`local`] serves the receiver's handler over HTTP on 127.0.0.1 and feeds
//!   what it queues (an embedded queue, or SQS when `QUEUE_URL` is set) to the
//!   processor's handler registry: the same code as the two Lambdas.
//! - [`handler_logs`] keeps what handlers log under the record it belongs
//!   to, for `serve` to print beneath that record's line.
//! - [`send`] signs and posts notifications, as Intercom does; [`check`]
//!   tells whether a deployed webhook URL answers as the contract says, and
//!   [`deployed`] what a deployed stack says of itself (queues, alarms).
//! - [`replay`] puts archived notifications back onto the queue; [`dlq`]
//!   lists, shows and redrives the dead-letter queue.
//! - [`samples`], [`fixtures`] and [`contract`] are re-exported from the
//!   `intercom-fixtures` crate: samples for every topic, the Lambda events
//!   that wrap them, and the contract's rules as an oracle.

pub mod backfill;
pub mod check;
pub mod deployed;
pub mod dlq;
pub mod handler_logs;
pub mod local;
pub mod replay;
pub mod send;

pub use intercom_fixtures::{contract, fixtures, samples};
