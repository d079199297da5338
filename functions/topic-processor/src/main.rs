//! Lambda entry point of `topic-processor`: wiring only.

use lambda_runtime::Error;
use topic_processor::handlers::{App, registry};
use topic_processor::lambda;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::run_with(|var| App::from_lookup(var), registry).await
}
