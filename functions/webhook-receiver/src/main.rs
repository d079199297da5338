//! Lambda entry point of `webhook-receiver`: wiring only.

use lambda_init::metrics::Metrics;
use lambda_runtime::{Error, LambdaEvent, Runtime, service_fn};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_init::logging::init();
    let metrics = match Metrics::from_env("webhook-receiver") {
        Ok(metrics) => metrics,
        Err(error) => return Err(lambda_init::fail_init(error).await),
    };
    webhook_receiver::handler::describe_metrics(metrics.detailed());
    let receiver = match webhook_receiver::bootstrap::receiver_from_env().await {
        Ok(receiver) => receiver,
        Err(error) => return Err(lambda_init::fail_init(error).await),
    };
    let receiver = &receiver;
    // The runtime without `lambda_runtime::run`'s tracing layer: its span per
    // invocation costs CPU on every request and shows in no log line.
    Runtime::new(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            let trace_header = event.context.xray_trace_id.as_deref();
            let response = receiver
                .handle_event(event.payload.get().as_bytes(), trace_header)
                .await;
            metrics.flush();
            Ok::<_, Error>(response)
        },
    ))
    .run()
    .await
}
