//! The processor as a Lambda function: configuration and clients built once, then the runtime's loop.
//!
//! `main.rs` calls [`run`] with the registry of `handlers.rs`; a test
//! binary can call it with a registry of its own and be wired identically.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use intercom_api::TokenSource;
use intercom_webhook::dispatch::Registry;
use lambda_init::metrics::Metrics;
use lambda_runtime::{Error, LambdaEvent, Runtime, service_fn};

use crate::config::{Config, ConfigError, FreshnessMode};
use crate::destinations::{Archive, ArchiveStream, Destinations, EventBus};
use crate::freshness::Freshness;
use crate::idempotency::{DynamoDbStore, Idempotency, Store};
use crate::intercom::IntercomApi;
use crate::payloads::Payloads;
use crate::processor::Processor;
use crate::sdk::sdk_config;
use crate::{Invocation, batch};

/// Builds the processor from the environment: `Processor::new(registry)`,
/// with `IDEMPOTENCY_TABLE` its DynamoDB store (and with `FRESHNESS` its
/// check, in the same table), and with `EVENT_BUS_NAME` and
/// `ARCHIVE_BUCKET` (and `ARCHIVE_STREAM`) its destinations, and with an
/// Intercom access token (or `INTERCOM_ADMIN_ID`) its Intercom API
/// ([`IntercomApi`]); the clients share one SDK
/// configuration, loaded only when one of them is configured (otherwise
/// the payload reader loads it at the first pointer, if one ever comes).
pub async fn processor_from_env(
    registry: Registry,
    config: &Config,
) -> Result<Processor, ConfigError> {
    let mut processor = Processor::new(registry);
    let token_in_secret = matches!(config.intercom.token, TokenSource::Secret(_));
    if config.idempotency.is_none()
        && config.event_bus.is_none()
        && config.archive.is_none()
        && !token_in_secret
    {
        processor.intercom = IntercomApi::from_settings(&config.intercom, None).await?;
        return Ok(processor);
    }
    let sdk = sdk_config().await;
    processor.intercom = IntercomApi::from_settings(&config.intercom, Some(&sdk)).await?;
    processor.payloads = Payloads::new(Some(sdk.clone()));
    if let Some(idempotency) = &config.idempotency {
        let store: Arc<dyn Store> = Arc::new(DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &idempotency.table,
        ));
        processor = processor.with_idempotency(
            Idempotency::new(
                Arc::clone(&store),
                &idempotency.function_name,
                idempotency.ttl,
            )
            .with_steps_ttl(idempotency.steps_ttl),
        );
        if config.freshness != FreshnessMode::Off {
            processor = processor.with_freshness(Freshness::new(
                config.freshness,
                store,
                &idempotency.function_name,
                idempotency.ttl,
            ));
        }
    }
    let bus = config.event_bus.as_ref().map(|bus| {
        EventBus::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            &bus.name,
            &bus.source,
        )
    });
    let archive = config.archive.as_ref().map(|archive| {
        let s3 = lambda_init::aws::s3_client(&sdk);
        let objects = Archive::new(s3, &archive.bucket, &archive.prefix);
        match &archive.stream {
            Some(stream) => objects.with_stream(ArchiveStream::new(
                aws_sdk_firehose::Client::new(&sdk),
                stream,
            )),
            None => objects,
        }
    });
    Ok(processor.with_destinations(Destinations { bus, archive }))
}

/// Runs the processor with `registry` until the sandbox goes away.
pub async fn run(registry: Registry) -> Result<(), Error> {
    run_with(|_| Ok::<_, ConfigError>(()), |()| registry).await
}

/// Runs the processor with the registry `registry` builds from your
/// handlers' settings, which `settings` reads from the environment once,
/// at cold start (`main.rs`: `run_with(App::from_lookup, registry)`). A
/// setting `settings` refuses, or a handler registered with a model its
/// topic cannot carry, stops the start with its message (a Lambda init
/// error).
pub async fn run_with<A, E: std::fmt::Display>(
    settings: impl FnOnce(&dyn Fn(&str) -> Option<String>) -> Result<A, E>,
    registry: impl FnOnce(A) -> Registry,
) -> Result<(), Error> {
    lambda_init::logging::init();
    let app = match settings(&|name| std::env::var(name).ok()) {
        Ok(app) => app,
        Err(error) => return Err(lambda_init::fail_init(error).await),
    };
    let registry = registry(app);
    if let Err(error) = registry.check() {
        return Err(lambda_init::fail_init(error).await);
    }
    let metrics = match Metrics::from_env("topic-processor") {
        Ok(metrics) => metrics,
        Err(error) => return Err(lambda_init::fail_init(error).await),
    };
    crate::telemetry::describe(metrics.detailed());
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return Err(lambda_init::fail_init(error).await),
    };
    let processor = match processor_from_env(registry, &config).await {
        Ok(processor) => processor,
        Err(error) => return Err(lambda_init::fail_init(error).await),
    };
    let (processor, config) = (&processor, &config);
    Runtime::new(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let invocation = Invocation::from_lambda(
            &event.context.request_id,
            event.context.deadline,
            config.deadline_margin,
        );
        let response = batch::process_batch(
            processor,
            event.payload.records,
            &invocation,
            config.concurrency,
        )
        .await;
        metrics.flush();
        Ok::<_, Error>(response)
    }))
    .run()
    .await
}
