//! Test data and oracles: sample notifications, the Lambda events that wrap them, and the contract restated.
//!
//! - [`samples`] has a sample notification for every catalogued topic.
//! - [`fixtures`] wraps notifications in Lambda events, signed with the test
//!   secret (it generates `events/`), and lists the bad inputs.
//! - [`sqs`] builds the SQS records Lambda hands the processor.
//! - [`contract`] restates the contract's envelope rules as an oracle for
//!   property tests and fuzzing.
//!
//! No AWS SDK and no runtime here, so the fuzz targets build quickly.

pub mod contract;
pub mod fixtures;
pub mod samples;
pub mod sqs;
