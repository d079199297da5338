//! Measures the release `webhook-receiver` from outside, as Lambda runs it.
//!
//! Starts moto (a local SQS) and the binary under the Runtime API harness, and
//! reports: init time (exec to first poll of the Runtime API), time to the
//! first answer for a queued notification from a cold start, CPU time per
//! queued request, peak RSS, binary and zip sizes, each beside its budget.
//!
//! Run: `cargo build --release --bins && cargo run --release -p pipeline-tests --bin measure`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use intercom_webhook::topic::Topic;
use pipeline_tests::fixtures::{Request, Shape, TEST_SECRET};
use pipeline_tests::function::{Function, release_binary};
use pipeline_tests::moto::Moto;
use pipeline_tests::runtime_api::Outcome;
use pipeline_tests::samples;

const COLD_STARTS: usize = 10;
const WARM_REQUESTS: usize = 300;

fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// utime + stime of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields after the name: state is index 0, utime 11, stime 12.
    fields
        .get(11)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("measure.fifo").await;
    let env = [
        ("QUEUE_URL", queue.clone()),
        ("INTERCOM_CLIENT_SECRET", TEST_SECRET.to_owned()),
    ];
    let body = samples::sample_body(Topic::ConversationUserCreated);
    let event = Request::signed(&body).event(Shape::ApiGatewayV2);

    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..COLD_STARTS {
        let function = Function::start("webhook-receiver", Some(&moto), &env).await;
        let response = function.api.invoke(&event, Duration::from_secs(10)).await;
        let answered = function.started.elapsed();
        assert!(
            matches!(&response, Some(Outcome::Response(r)) if r["statusCode"] == 202),
            "{response:?}"
        );
        let first_poll = function.api.first_poll().expect("polled");
        inits.push(first_poll.duration_since(function.started));
        firsts.push(answered);
    }

    let function = Function::start("webhook-receiver", Some(&moto), &env).await;
    let pid = function.pid().expect("pid");
    let _ = function.invoke(&event).await;
    let before = cpu_ticks(pid);
    let started = Instant::now();
    for n in 0..WARM_REQUESTS {
        let body = String::from_utf8(samples::sample_body(Topic::ConversationUserCreated))
            .expect("utf8")
            .replace(
                "notif_sample_conversation_user_created",
                &format!("notif_measure_{n}"),
            );
        let response = function
            .invoke(&Request::signed(body.as_bytes()).event(Shape::ApiGatewayV2))
            .await;
        assert_eq!(response["statusCode"], 202);
    }
    let wall = started.elapsed() / u32::try_from(WARM_REQUESTS).unwrap_or(1);
    let ticks = cpu_ticks(pid) - before;
    let cpu_per_request =
        Duration::from_millis(ticks * 10) / u32::try_from(WARM_REQUESTS).unwrap_or(1);
    let rss = peak_rss_kib(pid);

    let binary = release_binary("webhook-receiver");
    let binary_size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    let zip = std::process::Command::new("python3")
        .args(["-c", "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))"])
        .arg(&binary)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    say(&format!("webhook-receiver ({})", binary.display()));
    say(&format!(
        "  init (exec to first poll), median of {COLD_STARTS}: {:>10}   budget 10 ms",
        ms(median(inits.clone()))
    ));
    say(&format!(
        "  first queued answer from cold, median of {COLD_STARTS}: {:>10}   budget 15 ms",
        ms(median(firsts.clone()))
    ));
    say(&format!(
        "  warm request wall time (incl. moto), mean of {WARM_REQUESTS}: {:>10}",
        ms(wall)
    ));
    say(&format!(
        "  CPU time per queued request, mean of {WARM_REQUESTS}: {:>10}",
        ms(cpu_per_request)
    ));
    say(&format!(
        "  peak RSS: {:.1} MiB   budget 16 MiB",
        rss as f64 / 1024.0
    ));
    say(&format!(
        "  binary: {:.2} MB, zip: {:.2} MB   budget 6 MB",
        binary_size as f64 / 1e6,
        zip as f64 / 1e6
    ));
    say(&format!(
        "  init samples: {:?}",
        inits.iter().map(|d| ms(*d)).collect::<Vec<_>>()
    ));
    say(&format!(
        "  first-answer samples: {:?}",
        firsts.iter().map(|d| ms(*d)).collect::<Vec<_>>()
    ));
}
