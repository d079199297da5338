//! Lambda entry point of `topic-processor`: wiring only.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use topic_processor::{batch, config::Config, deadline, handlers};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_init::logging::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return Err(lambda_init::fail_init(error).await),
    };
    let registry = handlers::registry();
    let (registry, config) = (&registry, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline(event.context.deadline, config.deadline_margin);
        let budget_ms = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_millis();
        tracing::debug!(
            deadline_ms = event.context.deadline,
            budget_ms,
            records = event.payload.records.len(),
            "batch"
        );
        Ok::<_, Error>(
            batch::process_batch(
                registry,
                event.payload.records,
                deadline,
                config.concurrency,
            )
            .await,
        )
    }))
    .await
}
