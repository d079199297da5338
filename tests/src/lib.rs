//! Test support: fixtures, a moto server, a Lambda Runtime API harness and function processes.
//!
//! The tests themselves live in `tests/tests/`.

pub mod fixtures;
pub mod function;
pub mod moto;
pub mod runtime_api;
pub mod samples;
