//! Measures the release `topic-processor` from outside, as Lambda runs it: its cold start and size, what idempotency adds to a record (against moto's DynamoDB behind a keep-alive proxy), and what a panicking handler costs.
//!
//! - **cold**: the processor started `MEASURE_COLD_STARTS` times (no table,
//!   no destinations): init (exec to its first poll of the Runtime API);
//!   peak RSS after a 10-record batch; binary and zip sizes.
//! - **idempotency**: two processor instances (one with the table, one
//!   without) take turns in rounds. Each round invokes each with
//!   single-record batches (the added time per record: the lock before the
//!   handler and the mark after it are sequential) and with 10-record
//!   batches of a standard queue (CPU per record), every notification new;
//!   then sends the idempotent instance the same single-record batches
//!   again (`duplicate`s). The proxy logs each request's `X-Amz-Target`,
//!   so the DynamoDB calls per record are counted on the wire.
//! - **freshness**: the processor with the table and `FRESHNESS=tag`
//!   against the table alone, 10-record batches (all about one
//!   conversation, racing as a standard queue runs them),
//!   CPU per record, and the DynamoDB calls per record on the wire.
//! - **panics** (unless `MEASURE_PANICS=0`, for a `panic = "abort"` build):
//!   `faulty-processor` with every handler panicking
//!   (`PANIC_ON_MESSAGE=*`) against the same binary with none panicking,
//!   CPU per record in 10-record batches: what one unwind costs.
//!
//! Medians are shown. `TOPIC_PROCESSOR_BIN` and `FAULTY_PROCESSOR_BIN`
//! measure other builds.
//!
//! Run: `cargo build --release --bins && ./target/release/measure-processor`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use intercom_webhook::topic::Topic;
use pipeline_tests::function::{Function, binary};
use pipeline_tests::keepalive::KeepAliveProxy;
use pipeline_tests::load::setting;
use pipeline_tests::moto::Moto;
use pipeline_tests::process_stats::{cpu_ns, median, peak_rss_kib, zipped_size};
use pipeline_tests::samples;
use pipeline_tests::sqs::{self, Received};
use serde_json::Value;

fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// An SQS event of `topic` notifications `first..first + count`, each with
/// its own id and message id `m-{n}`.
fn batch_of(topic: Topic, first: usize, count: usize) -> Value {
    let records = (first..first + count)
        .map(|n| {
            let mut notification = samples::sample(topic);
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

fn batch(first: usize, count: usize) -> Value {
    batch_of(Topic::ConversationUserCreated, first, count)
}

/// Invokes `function` with `event`, expecting `failed` records to fail
/// (and every other to succeed).
async fn run_expecting(function: &Function, event: &Value, failed: usize) -> Duration {
    let started = Instant::now();
    let response = function.invoke(event).await;
    let took = started.elapsed();
    assert_eq!(
        response["batchItemFailures"].as_array().map(Vec::len),
        Some(failed),
        "{}",
        function.logs().join("\n")
    );
    took
}

async fn run(function: &Function, event: &Value) -> Duration {
    run_expecting(function, event, 0).await
}

/// CPU per record, in µs, of `function` over `events` of `records` records
/// each, `failed` of which fail per event.
async fn cpu_per_record(
    function: &Function,
    events: &[Value],
    records: usize,
    failed: usize,
) -> f64 {
    let pid = function.pid().expect("pid");
    let before = cpu_ns(pid);
    for event in events {
        run_expecting(function, event, failed).await;
    }
    (cpu_ns(pid) - before) as f64 / (events.len() * records) as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = setting("MEASURE_ROUNDS", 15);
    let singles = setting("MEASURE_REQUESTS", 50);
    let cold_starts = setting("MEASURE_COLD_STARTS", 10);
    let panics = setting("MEASURE_PANICS", 1) > 0;
    cold(cold_starts).await;
    idempotency(rounds, singles).await;
    freshness(rounds).await;
    if panics {
        unwinding(rounds).await;
    }
}

/// Init, peak RSS and size of the processor with nothing configured; then
/// its init with an Intercom token, inline and in Secrets Manager (moto
/// behind a keep-alive proxy: the SDK's load and one read).
async fn cold(starts: usize) {
    let (inits, _) = cold_starts(starts, &[]).await;
    let inline = [("INTERCOM_ACCESS_TOKEN", "tok".to_owned())];
    let (inline_inits, _) = cold_starts(starts, &inline).await;
    let moto = Moto::start().await;
    let proxy = KeepAliveProxy::start_logging(moto.port, true).await;
    let secret = moto.create_access_token("tok").await;
    let in_secret = [
        ("AWS_ENDPOINT_URL", proxy.endpoint()),
        ("INTERCOM_ACCESS_TOKEN_ARN", secret),
    ];
    let (secret_inits, _) = cold_starts(starts, &in_secret).await;
    // nginx logs a call after answering it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reads: usize = proxy
        .calls()
        .iter()
        .filter(|(target, _)| target.contains("GetSecretValue"))
        .map(|(_, count)| count)
        .sum();
    say("topic-processor, cold with an Intercom token, medians:");
    say(&format!(
        "  none {:.2} ms, inline {:.2} ms, in Secrets Manager {:.2} ms ({reads} reads in {} starts)",
        median(inits),
        median(inline_inits),
        median(secret_inits),
        starts.max(1)
    ));
}

/// `starts` cold starts with `env`, a 10-record batch each: the inits (ms)
/// and peak RSS (KiB); the first set printed with sizes when `env` is empty.
async fn cold_starts(starts: usize, env: &[(&str, String)]) -> (Vec<f64>, Vec<u64>) {
    let mut inits = Vec::new();
    let mut rss = Vec::new();
    for n in 0..starts.max(1) {
        let function = Function::start("topic-processor", None, env).await;
        // New users: the shipped handler only logs them, so with a token
        // (and no Intercom to reach) the batch measures the start alone.
        // The conversation sample asks for a refund, which would call
        // Intercom.
        run(&function, &batch_of(Topic::ContactUserCreated, n * 10, 10)).await;
        let first_poll = function.api.first_poll().expect("polled");
        inits.push(first_poll.duration_since(function.started).as_secs_f64() * 1000.0);
        rss.push(peak_rss_kib(function.pid().expect("pid")));
    }
    if !env.is_empty() {
        return (inits, rss);
    }
    let binary = binary("topic-processor");
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    say(&format!(
        "topic-processor, cold, median of {}:",
        inits.len()
    ));
    say(&format!(
        "  init (exec to first poll)   {:>6.2} ms",
        median(inits.clone())
    ));
    say(&format!(
        "  peak RSS after a batch      {:>6.1} MiB",
        median(rss.clone()) as f64 / 1024.0
    ));
    say(&format!(
        "  binary {:.2} MB, zip {:.2} MB",
        size as f64 / 1e6,
        zipped_size(&binary) as f64 / 1e6
    ));
    (inits, rss)
}

/// What the idempotency table adds to a record, and its calls on the wire.
async fn idempotency(rounds: usize, singles: usize) {
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
    // Warm both: the first record pays for connections and lazy setup.
    run(&plain, &batch(0, 1)).await;
    run(&once, &batch(1, 1)).await;
    // nginx logs a call after answering it: wait for the warm-up's last one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls_before = proxy.calls();

    let mut next = 100;
    let (mut plain_ms, mut once_ms, mut duplicate_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (mut plain_cpu, mut once_cpu) = (Vec::new(), Vec::new());
    let mut new_records = 0;
    let mut duplicates = 0;
    for _ in 0..rounds {
        let events: Vec<Value> = (0..singles).map(|n| batch(next + n, 1)).collect();
        next += singles;
        for (function, times) in [
            (&plain, &mut plain_ms),
            (&once, &mut once_ms),
            (&once, &mut duplicate_ms),
        ] {
            let mut took = Duration::ZERO;
            for event in &events {
                took += run(function, event).await;
            }
            times.push(took.as_secs_f64() * 1000.0 / singles as f64);
        }
        new_records += singles;
        duplicates += singles;

        for (function, cpu) in [(&plain, &mut plain_cpu), (&once, &mut once_cpu)] {
            let events: Vec<Value> = (0..5).map(|n| batch(next + n * 10, 10)).collect();
            next += 50;
            cpu.push(cpu_per_record(function, &events, 10, 0).await);
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

/// What `FRESHNESS=tag` adds to a record with idempotency on: CPU, and
/// DynamoDB calls counted on the wire.
async fn freshness(rounds: usize) {
    let moto = Moto::start().await;
    let proxy = KeepAliveProxy::start_logging(moto.port, true).await;
    let table = moto.create_idempotency_table("measure-freshness").await;
    let start = |freshness: &str| {
        let env = vec![
            ("AWS_ENDPOINT_URL", proxy.endpoint()),
            ("IDEMPOTENCY_TABLE", table.clone()),
            ("FRESHNESS", freshness.to_owned()),
        ];
        async move { Function::start("topic-processor", None, &env).await }
    };
    let once = start("off").await;
    let tagged = start("tag").await;
    run(&once, &batch(1_000_000, 1)).await;
    run(&tagged, &batch(2_000_000, 1)).await;
    let (mut once_cpu, mut tagged_cpu) = (Vec::new(), Vec::new());
    let mut next = 3_000_000;
    let mut calls = std::collections::BTreeMap::new();
    for _ in 0..rounds {
        for (function, cpu, counted) in [
            (&once, &mut once_cpu, false),
            (&tagged, &mut tagged_cpu, true),
        ] {
            let events: Vec<Value> = (0..5).map(|n| batch(next + n * 10, 10)).collect();
            next += 50;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = proxy.calls();
            cpu.push(cpu_per_record(function, &events, 10, 0).await);
            if counted {
                tokio::time::sleep(Duration::from_millis(200)).await;
                for (target, n) in proxy.calls() {
                    *calls.entry(target.clone()).or_insert(0) +=
                        n - before.get(&target).copied().unwrap_or(0);
                }
            }
        }
    }
    let records = rounds * 50;
    let (once_cpu, tagged_cpu) = (median(once_cpu), median(tagged_cpu));
    say(
        "topic-processor, FRESHNESS=tag beside idempotency on moto's DynamoDB behind nginx keep-alive",
    );
    say(&format!(
        "  CPU per record in 10-record batches: {once_cpu:.1} µs off, {tagged_cpu:.1} µs tag (+{:.1} µs)",
        tagged_cpu - once_cpu
    ));
    say(&format!(
        "  DynamoDB calls counted on the wire with tag, for {records} new records:"
    ));
    for target in ["PutItem", "UpdateItem", "DeleteItem", "GetItem"] {
        let n = calls
            .get(&format!("DynamoDB_20120810.{target}"))
            .copied()
            .unwrap_or(0);
        say(&format!(
            "    {target:<12} {n:>6}   ({:.2} per record)",
            n as f64 / records as f64
        ));
    }
}

/// CPU per record when every handler panics, against none panicking, in
/// the same binary and the same rounds.
async fn unwinding(rounds: usize) {
    let calm = Function::start("faulty-processor", None, &[]).await;
    let panicking = Function::start(
        "faulty-processor",
        None,
        &[("PANIC_ON_MESSAGE", "*".to_owned())],
    )
    .await;
    let replied = |first| batch_of(Topic::ConversationUserReplied, first, 10);
    run(&calm, &replied(0)).await;
    run_expecting(&panicking, &replied(0), 10).await;
    let (mut calm_cpu, mut panicking_cpu) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let events: Vec<Value> = (0..5).map(|n| replied(round * 100 + n * 10)).collect();
        calm_cpu.push(cpu_per_record(&calm, &events, 10, 0).await);
        panicking_cpu.push(cpu_per_record(&panicking, &events, 10, 10).await);
    }
    let (calm_cpu, panicking_cpu) = (median(calm_cpu), median(panicking_cpu));
    say("faulty-processor, a handler that panics (the release profile unwinds)");
    say(&format!(
        "  CPU per record in 10-record batches: {calm_cpu:.1} µs when it returns, {panicking_cpu:.1} µs when it panics (+{:.1} µs per panic)",
        panicking_cpu - calm_cpu
    ));
}
