//! The cost count (`measure-cost`) on a small run: every request the stack made, counted at the proxy, is in moto's own log, each configuration bills what its design says, and every resource the template deploys is on the month's bill or named free.

use std::collections::BTreeMap;

use pipeline_tests::cost::{Front, Usage};
use pipeline_tests::load::mix;
use pipeline_tests::metered::{self, DEFAULTS, EVENT_SOURCE_MAPPING, STACKS, Stack};
use pipeline_tests::monthly::{self, Charge};

/// Every resource of the template `stack` deploys is billed by a line of
/// its month (or named free in `monthly::RESOURCES`).
fn every_deployed_resource_is_on_the_bill(stack: &Stack, usage: &Usage) {
    let month = monthly::month(usage, stack, 1e6);
    let deployed = monthly::deployed(stack).unwrap_or_else(|e| panic!("{}: {e}", stack.name));
    for (resource, charge) in deployed {
        if let Charge::Billed(line) = charge {
            assert!(
                month.lines.iter().any(|l| l.component.starts_with(line)),
                "{}: {} is billed by {line:?}, not on the bill {:?}",
                stack.name,
                resource.id,
                month
                    .lines
                    .iter()
                    .map(|l| l.component.as_str())
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Requests the proxy forwarded, by caller and action.
fn forwarded(run: &metered::Run) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for call in run.usage.calls.iter().filter(|c| c.forwarded) {
        *counts
            .entry((call.caller.clone(), call.action.clone()))
            .or_default() += 1;
    }
    counts
}

fn count(run: &metered::Run, caller: &str, action: &str) -> usize {
    run.usage
        .calls
        .iter()
        .filter(|c| c.caller == caller && c.action == action)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaults_bill_counted_at_the_proxy_is_moto_s_own_count() {
    let deliveries = metered::with_retries(mix(60, "cost_test", 7), 5);
    let accepted = deliveries.iter().filter(|d| d.expected == 202).count();
    let retries = accepted
        - mix(60, "cost_test", 7)
            .iter()
            .filter(|d| d.expected == 202)
            .count();
    assert!(retries > 0);
    let run = metered::run(&DEFAULTS, &deliveries, 100.0).await;
    assert_eq!(run.failed_records, 0);
    assert_eq!(
        forwarded(&run),
        run.recorded,
        "every request the proxy forwarded, and no other, is in moto's log"
    );

    // Every accepted delivery is one billed SendMessage; Intercom's retries
    // are billed too, and the FIFO queue (the proxy keeping AWS's window)
    // drops them without moto seeing them.
    let sends = count(&run, "webhook-receiver", "sqs:SendMessage");
    assert_eq!(sends, accepted);
    let dropped = run
        .usage
        .calls
        .iter()
        .filter(|c| c.action == "sqs:SendMessage" && !c.forwarded)
        .count();
    assert_eq!(dropped, retries);

    // Each notification that reached the processor: one line to the
    // archive stream, one bus entry, a lock and its completion in the table;
    // an archive object only for a body too large for the bus.
    let processed = accepted - retries;
    let large = deliveries
        .iter()
        .filter(|d| d.expected == 202 && d.body.len() > 1024 * 1024)
        .count();
    let over_bus = deliveries
        .iter()
        .filter(|d| {
            d.expected == 202 && d.body.len() > intercom_webhook::destination::EVENT_BUS_LIMIT
        })
        .count();
    assert_eq!(
        count(&run, "topic-processor", "firehose:PutRecord"),
        processed
    );
    assert_eq!(count(&run, "topic-processor", "s3:PutObject"), over_bus);
    assert!(run.usage.stream_objects > 0.0 && run.usage.stream_objects < processed as f64);
    assert_eq!(
        count(&run, "webhook-receiver", "s3:PutObject"),
        large,
        "only bodies over SQS's limit go through the payload bucket"
    );
    let entries: f64 = run.usage.units("events:PutEvents");
    assert!(entries >= processed as f64);
    assert_eq!(
        count(&run, "topic-processor", "dynamodb:PutItem"),
        processed
    );
    assert_eq!(
        count(&run, "topic-processor", "dynamodb:UpdateItem"),
        processed
    );
    let write_units = run.usage.units("dynamodb:PutItem") + run.usage.units("dynamodb:UpdateItem");
    assert_eq!(
        write_units,
        2.0 * processed as f64,
        "every idempotency item is under 1 KB"
    );

    // The event source mapping: a receive per batch (and the last, empty
    // one), a batch delete per batch.
    let invocations = run.usage.invocations["topic-processor"].len();
    assert_eq!(
        count(&run, EVENT_SOURCE_MAPPING, "sqs:ReceiveMessage"),
        invocations + 1
    );
    assert_eq!(
        count(&run, EVENT_SOURCE_MAPPING, "sqs:DeleteMessageBatch"),
        invocations
    );

    // Messages over 64 KiB bill more than one request each.
    let big = deliveries
        .iter()
        .filter(|d| d.expected == 202 && d.body.len() > 64 * 1024)
        .count();
    assert!(run.usage.units("sqs:SendMessage") >= (sends + big) as f64);

    let bill = run.usage.bill();
    let components: Vec<&str> = bill.iter().map(|l| l.component.as_str()).collect();
    for expected in [
        "API Gateway HTTP API",
        "EventBridge PutEvents",
        "Firehose ingestion (5 KB steps)",
        "Firehose objects delivered",
        "DynamoDB writes",
        "CloudWatch Logs: webhook-receiver log lines",
        "CloudWatch Logs: webhook-receiver EMF documents",
        "CloudWatch Logs: topic-processor log lines",
    ] {
        assert!(
            components.contains(&expected),
            "{expected} in {components:?}"
        );
    }
    // X-Ray is PassThrough by default: no traces recorded, none billed.
    assert!(!components.contains(&"X-Ray traces"), "{components:?}");
    let api = bill
        .iter()
        .find(|l| l.component == "API Gateway HTTP API")
        .expect("api");
    assert!(
        (api.per_million - 1.0).abs() < 1e-9,
        "one HTTP API request per delivery: {api:?}"
    );

    // The custom metrics the run published: without the dashboard, only
    // what the alarms read (the receiver's requests for the answers an
    // alarm counts) and what appears only on a failure (a destination's),
    // from bounded sets (no family, no topic). The mix's queued, invalid
    // and ping deliveries publish nothing.
    let metrics: Vec<&String> = run.usage.metrics.keys().collect();
    assert_eq!(DEFAULTS.metrics_env(), "alarms");
    assert!(
        metrics
            .iter()
            .any(|m| m.as_str() == "webhook-receiver Requests Answer=invalid_signature"),
        "the signature alarm's metric: {metrics:?}"
    );
    for metric in &metrics {
        let alarmed = webhook_receiver::handler::ALARMED_ANSWERS
            .iter()
            .any(|answer| metric.as_str() == format!("webhook-receiver Requests Answer={answer}"));
        assert!(
            alarmed || metric.starts_with("topic-processor DestinationFailures Destination="),
            "{metric} is published, and no alarm reads it: {metrics:?}"
        );
    }

    // The month: every deployed resource on the bill, with the defaults and
    // with every feature the run does not exercise turned on.
    every_deployed_resource_is_on_the_bill(&DEFAULTS, &run.usage);
    let all_on = Stack {
        dashboard: true,
        tracing: true,
        bus_archive: true,
        ticket_rule: true,
        ..DEFAULTS
    };
    every_deployed_resource_is_on_the_bill(&all_on, &run.usage);
    let quiet = monthly::month(&run.usage, &DEFAULTS, 1e5);
    let busy = monthly::month(&run.usage, &DEFAULTS, 1e8);
    assert!(
        quiet.per_million() > busy.per_million(),
        "fixed costs weigh on a quiet month"
    );
    let with_all = monthly::month(&run.usage, &all_on, 1e6);
    assert!(
        monthly::month(&run.usage, &DEFAULTS, 1e6)
            .line("CloudWatch dashboard")
            .is_none()
    );
    for line in [
        "CloudWatch dashboard",
        "X-Ray traces (fixed Lambda sampling)",
        "EventBridge archive (events archived and kept 30 days)",
        "Ticket example rule: ticket.* events into CloudWatch Logs",
    ] {
        assert!(
            with_all.line(line).is_some_and(|l| l.dollars > 0.0),
            "{line}"
        );
    }
    // X-Ray records nearly every request at 1 M a month (0.4 a second).
    let traces = with_all
        .line("X-Ray traces (fixed Lambda sampling)")
        .expect("x-ray");
    assert!((traces.dollars - 5.0).abs() < 0.01, "{traces:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_layout_a_function_url_and_no_destinations_bill_what_they_use() {
    let deliveries = mix(40, "cost_test_small", 11);
    let objects = STACKS
        .iter()
        .find(|s| s.archive && !s.archive_stream)
        .expect("stack");
    let url = STACKS
        .iter()
        .find(|s| s.front == Front::FunctionUrl)
        .expect("stack");
    let bare = STACKS
        .iter()
        .find(|s| !s.event_bus && !s.archive)
        .expect("stack");
    for stack in [objects, url, bare] {
        let run = metered::run(stack, &deliveries, 100.0).await;
        assert_eq!(run.failed_records, 0);
        assert_eq!(forwarded(&run), run.recorded);
        let components: Vec<String> = run.usage.bill().into_iter().map(|l| l.component).collect();
        let has = |c: &str| components.iter().any(|x| x == c);
        assert_eq!(
            has("API Gateway HTTP API"),
            stack.front == Front::HttpApi,
            "{}",
            stack.name
        );
        assert_eq!(
            has("EventBridge PutEvents"),
            stack.event_bus,
            "{}",
            stack.name
        );
        // One entry for each notification processed, in a call of its own.
        let processed = count(&run, "topic-processor", "events:PutEvents");
        assert_eq!(
            count(&run, "topic-processor", "s3:PutObject") > 0,
            stack.archive && !stack.archive_stream,
            "{}",
            stack.name
        );
        if stack.archive && !stack.archive_stream {
            assert_eq!(
                count(&run, "topic-processor", "s3:PutObject"),
                processed,
                "an object each"
            );
        }
        assert_eq!(
            has("Firehose ingestion (5 KB steps)"),
            stack.archive && stack.archive_stream
        );
        every_deployed_resource_is_on_the_bill(stack, &run.usage);
    }
}
