//! Lambda entry point of `topic-processor`: wiring only.

use lambda_runtime::Error;
use topic_processor::{handlers, lambda};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::run(handlers::registry()).await
}
