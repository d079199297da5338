//! Measures the release `webhook-receiver` from outside, end to end, against the AWS SDK's own floor.
//!
//! Starts moto (a local SQS) behind nginx (a keep-alive proxy, so that
//! clients reuse connections as real SQS lets them), then:
//!
//! - **cold**: the receiver started as Lambda starts it (its own process, the
//!   Runtime API harness), 10 times: init (exec to its first poll) and the
//!   first queued answer (exec to the 202); beside it `sqs-floor`, a bare
//!   aws-sdk-sqs program with the same client configuration, timed from exec
//!   to its first acknowledged SendMessage;
//! - **warm**: CPU time per queued request of one receiver instance, and per
//!   `ping` (answered, not queued), and per queued request of a second
//!   instance with `METRICS=off` (the cost of metrics, issue 14), against
//!   CPU time per SendMessage of
//!   `sqs-floor` sending the same messages; CPU read in nanoseconds from
//!   `/proc/<pid>/task/*/schedstat`; the two processes take turns in 15
//!   rounds of 100, and the medians are shown;
//! - peak RSS, binary and zip sizes.
//!
//! Each figure is printed beside its goal (issue 11, BENCHMARKS.md).
//!
//! Run: `cargo build --release --bins && ./target/release/measure`.

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use pipeline_tests::fixtures::{Request, Shape, TEST_SECRET};
use pipeline_tests::function::{Function, binary};
use pipeline_tests::hot_path;
use pipeline_tests::keepalive::KeepAliveProxy;
use pipeline_tests::load::setting;
use pipeline_tests::moto::Moto;
use pipeline_tests::process_stats::{cpu_ns, median, peak_rss_kib, zipped_size};
use pipeline_tests::runtime_api::Outcome;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Goals: CPU per queued request against the floor, init, the first answer
/// from cold against the floor's, and today's RSS and zip not exceeded.
const CPU_RATIO_GOAL: f64 = 1.5;
const INIT_GOAL_MS: f64 = 3.5;
const FIRST_ANSWER_OVER_FLOOR_GOAL_MS: f64 = 2.0;
const RSS_GOAL_MIB: f64 = 8.6;
const ZIP_GOAL_MB: f64 = 3.84;
/// Metrics may add at most this much to the CPU per queued request.
const METRICS_COST_GOAL: f64 = 0.05;

fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

fn status(response: &Value) -> u64 {
    response["statusCode"].as_u64().unwrap_or(0)
}

/// `sqs-floor` as a child process, driven over its stdin and stdout.
struct Floor {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    started: Instant,
}

impl Floor {
    async fn start(count: usize, env: &[(&str, String)]) -> Self {
        let mut command = tokio::process::Command::new(binary("sqs-floor"));
        command
            .arg(count.to_string())
            .env_clear()
            .env("AWS_REGION", pipeline_tests::moto::REGION)
            .env("AWS_ACCESS_KEY_ID", pipeline_tests::moto::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", pipeline_tests::moto::SECRET_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn sqs-floor");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self {
            child,
            lines,
            started,
        }
    }

    async fn expect(&mut self, expected: &str) {
        let line = self.lines.next_line().await.expect("read sqs-floor");
        assert_eq!(line.as_deref(), Some(expected), "sqs-floor said");
    }

    async fn tell(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .await
            .expect("write sqs-floor");
        stdin.flush().await.expect("flush");
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cold_starts = setting("MEASURE_COLD_STARTS", 10);
    let requests = setting("MEASURE_REQUESTS", 100);
    let rounds = setting("MEASURE_ROUNDS", 15);
    let moto = Moto::start().await;
    let proxy = KeepAliveProxy::start(moto.port).await;
    // moto's FIFO SendMessage slows down as a queue fills (and a longer wait
    // leaves the caches colder), so the cold starts and the warm rounds use
    // queues of their own, the receiver and the floor each have one, and
    // both are emptied before every round.
    let receiver_env = |queue: &str| {
        [
            ("QUEUE_URL", queue.to_owned()),
            ("INTERCOM_CLIENT_SECRET", TEST_SECRET.to_owned()),
            ("AWS_ENDPOINT_URL", proxy.endpoint()),
        ]
    };
    let floor_env = |queue: &str| {
        [
            ("QUEUE_URL", queue.to_owned()),
            ("AWS_ENDPOINT_URL", proxy.endpoint()),
        ]
    };
    let cold_receiver_queue = moto.create_queue("measure-cold-receiver.fifo").await;
    let cold_floor_queue = moto.create_queue("measure-cold-floor.fifo").await;
    let event = |n: usize| Request::signed(&hot_path::queued_body(n)).event(Shape::ApiGatewayV2);

    // Cold starts, receiver and floor in turn.
    let (mut inits, mut firsts, mut floor_firsts) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..cold_starts {
        let function = Function::start(
            "webhook-receiver",
            Some(&moto),
            &receiver_env(&cold_receiver_queue),
        )
        .await;
        let response = function
            .api
            .invoke(&event(1_000_000 + n), Duration::from_secs(10))
            .await;
        let answered = function.started.elapsed();
        assert!(
            matches!(&response, Some(Outcome::Response(r)) if status(r) == 202),
            "{response:?}\n{}",
            function.logs().join("\n")
        );
        let first_poll = function.api.first_poll().expect("polled");
        inits.push(ms(first_poll.duration_since(function.started)));
        firsts.push(ms(answered));
        drop(function);

        let mut floor = Floor::start(0, &floor_env(&cold_floor_queue)).await;
        floor.expect("sent").await;
        floor_firsts.push(ms(floor.started.elapsed()));
    }

    // Warm: CPU per queued request, per ping, and per bare SendMessage, one
    // receiver and one floor process taking turns in short rounds, so that
    // whatever else the machine does weighs on both alike.
    let ping = samples_ping();
    let receiver_queue = moto.create_queue("measure-receiver.fifo").await;
    let unmetered_queue = moto.create_queue("measure-unmetered.fifo").await;
    let floor_queue = moto.create_queue("measure-floor.fifo").await;
    let function = Function::start(
        "webhook-receiver",
        Some(&moto),
        &receiver_env(&receiver_queue),
    )
    .await;
    let pid = function.pid().expect("pid");
    assert_eq!(status(&function.invoke(&event(2_000_000)).await), 202);
    let mut unmetered_env = receiver_env(&unmetered_queue).to_vec();
    unmetered_env.push(("METRICS", "off".to_owned()));
    let unmetered = Function::start("webhook-receiver", Some(&moto), &unmetered_env).await;
    let unmetered_pid = unmetered.pid().expect("pid");
    assert_eq!(status(&unmetered.invoke(&event(3_000_000)).await), 202);
    let mut floor = Floor::start(requests * rounds, &floor_env(&floor_queue)).await;
    floor.expect("sent").await;
    let (mut queued_cpu, mut ping_cpu, mut floor_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut unmetered_cpu = Vec::new();
    let mut walls = Vec::new();
    let sqs = moto.sqs().await;
    for round in 0..rounds {
        for queue in [&receiver_queue, &floor_queue, &unmetered_queue] {
            sqs.purge_queue()
                .queue_url(queue)
                .send()
                .await
                .expect("purge");
        }
        let offset = 2_000_001 + round * requests;
        let events: Vec<Value> = (0..requests).map(|n| event(offset + n)).collect();
        let before = cpu_ns(pid);
        let started = Instant::now();
        for event in &events {
            assert_eq!(status(&function.invoke(event).await), 202);
        }
        walls.push(ms(started.elapsed()) / requests as f64);
        queued_cpu.push((cpu_ns(pid) - before) as f64 / requests as f64 / 1000.0);

        let offset = 3_000_001 + round * requests;
        let events: Vec<Value> = (0..requests).map(|n| event(offset + n)).collect();
        let before = cpu_ns(unmetered_pid);
        for event in &events {
            assert_eq!(status(&unmetered.invoke(event).await), 202);
        }
        unmetered_cpu.push((cpu_ns(unmetered_pid) - before) as f64 / requests as f64 / 1000.0);

        let before = cpu_ns(floor.pid());
        floor.tell(&format!("go {requests}")).await;
        floor.expect("done").await;
        floor_cpu.push((cpu_ns(floor.pid()) - before) as f64 / requests as f64 / 1000.0);

        let before = cpu_ns(pid);
        for _ in 0..requests {
            assert_eq!(status(&function.invoke(&ping).await), 200);
        }
        ping_cpu.push((cpu_ns(pid) - before) as f64 / requests as f64 / 1000.0);
    }
    let rss = peak_rss_kib(pid);
    drop(function);
    drop(unmetered);
    drop(floor);

    let binary = binary("webhook-receiver");
    let binary_size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    let zip = zipped_size(&binary);

    let unmetered = median(unmetered_cpu.clone());
    let (queued, ping, floor) = (
        median(queued_cpu.clone()),
        median(ping_cpu.clone()),
        median(floor_cpu.clone()),
    );
    let (init, first, floor_first) = (
        median(inits.clone()),
        median(firsts.clone()),
        median(floor_firsts.clone()),
    );
    let rss_mib = rss as f64 / 1024.0;
    let zip_mb = zip as f64 / 1e6;
    let round = |values: &[f64]| {
        values
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    say(&format!(
        "webhook-receiver ({}), moto behind nginx keep-alive",
        binary.display()
    ));
    say(&format!(
        "  warm, CPU per request (median of {rounds} rounds of {requests}):"
    ));
    say(&format!(
        "    queued request {queued:>7.1} µs   [{}]",
        round(&queued_cpu)
    ));
    say(&format!(
        "    METRICS=off    {unmetered:>7.1} µs   [{}]",
        round(&unmetered_cpu)
    ));
    say(&format!(
        "    metrics cost {:+.1} %   goal ≤ {:.0} %: {}",
        (queued / unmetered - 1.0) * 100.0,
        METRICS_COST_GOAL * 100.0,
        verdict(queued / unmetered - 1.0 <= METRICS_COST_GOAL)
    ));
    say(&format!(
        "    ping           {ping:>7.1} µs   [{}]",
        round(&ping_cpu)
    ));
    say(&format!(
        "    sqs-floor      {floor:>7.1} µs   [{}]   (bare SendMessage, same client and messages)",
        round(&floor_cpu)
    ));
    say(&format!(
        "    ratio {:.2}× the floor   goal ≤ {CPU_RATIO_GOAL}×: {}",
        queued / floor,
        verdict(queued / floor <= CPU_RATIO_GOAL)
    ));
    say(&format!(
        "  warm wall time per queued request (moto included): {:.2} ms",
        median(walls)
    ));
    say(&format!("  cold, median of {cold_starts}:"));
    say(&format!(
        "    init (exec to first poll)            {init:>6.2} ms   goal ≤ {INIT_GOAL_MS} ms: {}   [{}]",
        verdict(init <= INIT_GOAL_MS),
        round(&inits)
    ));
    say(&format!(
        "    first queued answer (exec to 202)    {first:>6.2} ms   [{}]",
        round(&firsts)
    ));
    say(&format!(
        "    sqs-floor config + first send        {floor_first:>6.2} ms   [{}]",
        round(&floor_firsts)
    ));
    say(&format!(
        "    first answer over the floor's        {:>6.2} ms   goal ≤ {FIRST_ANSWER_OVER_FLOOR_GOAL_MS} ms: {}",
        first - floor_first,
        verdict(first - floor_first <= FIRST_ANSWER_OVER_FLOOR_GOAL_MS)
    ));
    say(&format!(
        "  peak RSS {rss_mib:.1} MiB   goal ≤ {RSS_GOAL_MIB} MiB: {}",
        verdict(rss_mib <= RSS_GOAL_MIB)
    ));
    say(&format!(
        "  binary {:.2} MB, zip {zip_mb:.2} MB   goal ≤ {ZIP_GOAL_MB} MB: {}",
        binary_size as f64 / 1e6,
        verdict(zip_mb <= ZIP_GOAL_MB)
    ));
}

/// A signed `ping`, as Intercom sends when a subscription is saved.
fn samples_ping() -> Value {
    let body = pipeline_tests::samples::sample_body(intercom_webhook::topic::Topic::Ping);
    Request::signed(&body).event(Shape::ApiGatewayV2)
}
