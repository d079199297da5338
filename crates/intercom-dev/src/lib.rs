//! The local loop: the pipeline on one machine, and tools to sign and send notifications.
//!
//! - [`local`] serves the receiver's handler over HTTP on 127.0.0.1 and feeds
//!   what it queues (an embedded queue, or SQS when `QUEUE_URL` is set) to the
//!   processor's handler registry: the same code as the two Lambdas.
//! - [`send`] signs and posts notifications, as Intercom does.
//! - [`samples`] has a sample notification for every catalogued topic, and
//!   [`fixtures`] wraps notifications in Lambda events (it generates `events/`).
//! - [`contract`] restates the contract's envelope rules as an oracle for
//!   property tests and fuzzing.

pub mod contract;
pub mod fixtures;
pub mod local;
pub mod samples;
pub mod send;
