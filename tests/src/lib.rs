//! Test support: fixtures, a moto server, a Lambda Runtime API harness and function processes.
//!
//! The tests themselves live in `tests/tests/`.

pub mod aws_rules;
pub mod cloudwatch_cbor;
pub mod cost;
pub mod emf;
pub mod event_source;
pub mod flaky_events;
pub mod function;
pub mod hot_path;
pub mod keepalive;
pub mod load;
pub mod metered;
pub mod monthly;
pub mod moto;
pub mod process_stats;
pub mod proxy;
pub mod runtime_api;
pub mod silent;

pub use intercom_fixtures::{contract, fixtures, samples, sqs};
