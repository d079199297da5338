//! Measures what idempotency adds to a record, from outside: the release `topic-processor` with and without `IDEMPOTENCY_TABLE`, against moto's DynamoDB behind a keep-alive proxy.
//!
//! Two processor instances (one with the table, one without) take turns in
//! rounds. Each round invokes each with single-record batches (the added
//! time per record: the lock before the handler and the mark after it are
//! sequential) and with 10-record batches of a standard queue (CPU per
//! record), every notification new; then sends the idempotent instance the
//! same single-record batches again (`duplicate`s). The proxy logs each
//! request's `X-Amz-Target`, so the DynamoDB calls per record are counted
//! on the wire. Medians are shown.
//!
//! Run: `cargo build --release --bins && ./target/release/measure-idempotency`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use intercom_webhook::topic::Topic;
use pipeline_tests::function::Function;
use pipeline_tests::keepalive::KeepAliveProxy;
use pipeline_tests::load::setting;
use pipeline_tests::moto::Moto;
use pipeline_tests::process_stats::{cpu_ns, median};
use pipeline_tests::samples;
use pipeline_tests::sqs::{self, Received};
use serde_json::Value;

fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// An SQS event of notifications `first..first + count`, each with its own id.
fn batch(first: usize, count: usize) -> Value {
    let records = (first..first + count)
        .map(|n| {
            let mut notification = samples::sample(Topic::ConversationUserCreated);
            notification["id"] = format!("notif_measure_{n}").into();
            let body = serde_json::to_string(&notification).expect("json");
            sqs::record(
                &format!("m-{n}"),
                &body,
                Received::first::<&str, &str>(&[], None),
            )
        })
        .collect();
    serde_json::to_value(sqs::event(records, sqs::QUEUE_ARN)).expect("json")
}

/// Invokes `function` with `event`, expecting every record to succeed.
async fn run(function: &Function, event: &Value) -> Duration {
    let started = Instant::now();
    let response = function.invoke(event).await;
    let took = started.elapsed();
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([]),
        "{}",
        function.logs().join("\n")
    );
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = setting("MEASURE_ROUNDS", 15);
    let singles = setting("MEASURE_REQUESTS", 50);
    let moto = Moto::start().await;
    let proxy = KeepAliveProxy::start_logging(moto.port, true).await;
    let table = moto.create_idempotency_table("measure-idempotency").await;
    let start = |with_table: bool| {
        let mut env = vec![("AWS_ENDPOINT_URL", proxy.endpoint())];
        if with_table {
            env.push(("IDEMPOTENCY_TABLE", table.clone()));
        }
        async move { Function::start("topic-processor", None, &env).await }
    };
    let plain = start(false).await;
    let once = start(true).await;
    let (plain_pid, once_pid) = (plain.pid().expect("pid"), once.pid().expect("pid"));
    // Warm both: the first record pays for connections and lazy setup.
    run(&plain, &batch(0, 1)).await;
    run(&once, &batch(1, 1)).await;
    let calls_before = proxy.calls();

    let mut next = 100;
    let (mut plain_ms, mut once_ms, mut duplicate_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (mut plain_cpu, mut once_cpu) = (Vec::new(), Vec::new());
    let mut new_records = 0;
    let mut duplicates = 0;
    for _ in 0..rounds {
        let events: Vec<Value> = (0..singles).map(|n| batch(next + n, 1)).collect();
        next += singles;
        let mut took = Duration::ZERO;
        for event in &events {
            took += run(&plain, event).await;
        }
        plain_ms.push(took.as_secs_f64() * 1000.0 / singles as f64);
        let mut took = Duration::ZERO;
        for event in &events {
            took += run(&once, event).await;
        }
        once_ms.push(took.as_secs_f64() * 1000.0 / singles as f64);
        new_records += singles;
        let mut took = Duration::ZERO;
        for event in &events {
            took += run(&once, event).await;
        }
        duplicate_ms.push(took.as_secs_f64() * 1000.0 / singles as f64);
        duplicates += singles;

        for (function, pid, cpu) in [
            (&plain, plain_pid, &mut plain_cpu),
            (&once, once_pid, &mut once_cpu),
        ] {
            let events: Vec<Value> = (0..5).map(|n| batch(next + n * 10, 10)).collect();
            next += 50;
            let before = cpu_ns(pid);
            for event in &events {
                run(function, event).await;
            }
            cpu.push((cpu_ns(pid) - before) as f64 / 50.0 / 1000.0);
        }
        new_records += 50;
    }

    // Count DynamoDB calls on the wire, after nginx has logged the last one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls_after = proxy.calls();
    let called = |target: &str| {
        calls_after.get(target).copied().unwrap_or(0)
            - calls_before.get(target).copied().unwrap_or(0)
    };
    let outcomes = |function: &Function, outcome: &str| {
        function
            .json_logs()
            .iter()
            .filter(|l| l["message"] == "record" && l["outcome"] == outcome)
            .count()
    };
    assert_eq!(
        outcomes(&once, "duplicate"),
        duplicates,
        "every resend was a duplicate"
    );
    let (plain_ms, once_ms, duplicate_ms) =
        (median(plain_ms), median(once_ms), median(duplicate_ms));
    let (plain_cpu, once_cpu) = (median(plain_cpu), median(once_cpu));
    say("topic-processor, idempotency on moto's DynamoDB behind nginx keep-alive");
    say(&format!(
        "  time per single-record batch (median of {rounds} rounds of {singles}):"
    ));
    say(&format!("    without a table   {plain_ms:>6.2} ms"));
    say(&format!(
        "    new notification  {once_ms:>6.2} ms   (+{:.2} ms)",
        once_ms - plain_ms
    ));
    say(&format!(
        "    duplicate         {duplicate_ms:>6.2} ms   ({:+.2} ms; nothing runs)",
        duplicate_ms - plain_ms
    ));
    say(&format!(
        "  CPU per record in 10-record batches: {plain_cpu:.1} µs without, {once_cpu:.1} µs with (+{:.1} µs)",
        once_cpu - plain_cpu
    ));
    say(&format!(
        "  DynamoDB calls counted on the wire, for {new_records} new records and {duplicates} duplicates:"
    ));
    for target in ["PutItem", "UpdateItem", "DeleteItem", "GetItem"] {
        say(&format!(
            "    {target:<12} {:>6}",
            called(&format!("DynamoDB_20120810.{target}"))
        ));
    }
}
