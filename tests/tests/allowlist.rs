//! The release receiver's allowlist as Lambda runs it: region names follow
//! Intercom's published ranges, read from a loopback server standing in for
//! Intercom's CDN (`INTERCOM_IP_RANGES_URL`), with the compiled addresses as
//! the fallback, and nothing fetched without a region name.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipeline_tests::fixtures::{Request, Shape};
use pipeline_tests::function::Function;
use pipeline_tests::moto::Moto;
use pipeline_tests::runtime_api::Outcome;
use pipeline_tests::samples;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the stand-in CDN answers.
#[derive(Debug, Clone)]
enum Answer {
    Json(String),
    Body(&'static str),
    Hang,
}

/// A loopback HTTP server answering every GET with one [`Answer`] and
/// remembering each request's path.
struct Cdn {
    base: String,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Cdn {
    async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!(
            "http://{}/intercom-ips",
            listener.local_addr().expect("addr")
        );
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&paths);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = Arc::clone(&seen);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                    seen.lock().expect("lock").push(path);
                    let body = match answer {
                        Answer::Json(body) => body,
                        Answer::Body(body) => body.to_owned(),
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { base, paths }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().expect("lock").clone()
    }
}

/// A published file with these `INTERCOM-OUTBOUND` ranges (and an inbound
/// one, which must not count).
fn published(ranges: &[&str]) -> String {
    let mut entries: Vec<String> = ranges
        .iter()
        .map(|r| format!(r#"{{"range":"{r}","region":"US","service":"INTERCOM-OUTBOUND"}}"#))
        .collect();
    entries.push(r#"{"range":"203.0.113.0/24","region":"US","service":"INTERCOM-INBOUND"}"#.into());
    format!(
        r#"{{"ip_ranges":[{}],"date":"2026-12-04"}}"#,
        entries.join(",")
    )
}

/// The status and `error` of a signed notification from `ip`, and how long
/// the answer took.
async fn post_from(function: &Function, ip: &str, n: usize) -> (u64, Option<String>, Duration) {
    let mut body = samples::sample(intercom_webhook::topic::Topic::ContactUserCreated);
    body["id"] = Value::String(format!("notif_allowlist_{n}"));
    let body = serde_json::to_vec(&body).expect("json");
    let event = Request::signed(&body)
        .from_ip(ip)
        .event(Shape::ApiGatewayV2);
    let started = Instant::now();
    let response = match function.api.invoke(&event, Duration::from_secs(10)).await {
        Some(Outcome::Response(response)) => response,
        other => panic!("{other:?}\n{}", function.logs().join("\n")),
    };
    let elapsed = started.elapsed();
    let status = response["statusCode"].as_u64().expect("status");
    let error = response["body"]
        .as_str()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .and_then(|b| b["error"].as_str().map(str::to_owned));
    (status, error, elapsed)
}

/// The receiver allowing `intercom-us`, its ranges read from `ranges_url`.
async fn us_receiver(moto: &Moto, queue: &str, ranges_url: &str) -> Function {
    Function::receiver(
        moto,
        queue,
        &[
            ("INTERCOM_ALLOWED_IPS", "intercom-us".to_owned()),
            ("INTERCOM_IP_RANGES_URL", ranges_url.to_owned()),
        ],
    )
    .await
}

const COMPILED_US: &str = "34.231.68.152";
const NEW_RANGE_SOURCE: &str = "198.51.100.7";
const RANGES_FILE: &str = "/intercom-ips/us/intercom-ip-ranges.json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_name_follows_intercoms_published_ranges() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("allowlist-published").await;
    let cdn = Cdn::start(Answer::Json(published(&[
        "198.51.100.0/24",
        "34.197.76.213/32",
    ])))
    .await;
    let function = us_receiver(&moto, &queue, &cdn.base).await;

    // A range Intercom published but the compiled list lacks: let in, the
    // first request waiting for the cold start's fetch if need be.
    let (status, error, _) = post_from(&function, NEW_RANGE_SOURCE, 1).await;
    assert_eq!(
        (status, error),
        (202, None),
        "{}",
        function.logs().join("\n")
    );
    assert_eq!(post_from(&function, "34.197.76.213", 2).await.0, 202);
    // Once the file is read it is the list: a compiled address it no longer
    // has is refused, and so is the inbound range.
    let (status, error, _) = post_from(&function, COMPILED_US, 3).await;
    assert_eq!((status, error.as_deref()), (403, Some("forbidden_source")));
    assert_eq!(post_from(&function, "203.0.113.5", 4).await.0, 403);
    assert_eq!(cdn.paths(), [RANGES_FILE], "one read at cold start");

    let read = function
        .json_logs_when(1, |l| l["message"] == "read intercom's published ranges")
        .await;
    assert_eq!(read.len(), 1, "{}", function.logs().join("\n"));
    assert_eq!(read[0]["region"], "intercom-us");
    assert_eq!(read[0]["ranges"], 2);
    assert_eq!(read[0]["date"], "2026-12-04");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_be_read_leaves_the_compiled_addresses() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("allowlist-fallback").await;
    for (answer, what) in [
        (Answer::Body("<html>502 Bad Gateway</html>"), "malformed"),
        (
            Answer::Json(r#"{"ip_ranges":[],"date":"2026-12-04"}"#.into()),
            "empty",
        ),
    ] {
        let cdn = Cdn::start(answer).await;
        let function = us_receiver(&moto, &queue, &cdn.base).await;
        assert_eq!(post_from(&function, COMPILED_US, 10).await.0, 202, "{what}");
        let (status, error, _) = post_from(&function, NEW_RANGE_SOURCE, 11).await;
        assert_eq!(
            (status, error.as_deref()),
            (403, Some("forbidden_source")),
            "{what}"
        );
        let warned = function
            .json_logs_when(1, |l| {
                l["level"] == "WARN" && l["kept"] == "the compiled addresses"
            })
            .await;
        assert_eq!(warned.len(), 1, "{what}: {}", function.logs().join("\n"));
        assert!(
            warned[0]["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(RANGES_FILE))
        );
        assert!(!warned[0]["error"].as_str().unwrap_or_default().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_hangs_delays_no_listed_source_and_bounds_the_others() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("allowlist-hang").await;
    let cdn = Cdn::start(Answer::Hang).await;
    let function = us_receiver(&moto, &queue, &cdn.base).await;
    let (status, _, took) = post_from(&function, COMPILED_US, 20).await;
    assert_eq!(status, 202);
    assert!(
        took < Duration::from_millis(500),
        "a listed source waited {took:?}"
    );
    // Refused after the bounded wait (1 s), well within Intercom's 5 s.
    let (status, error, took) = post_from(&function, NEW_RANGE_SOURCE, 21).await;
    assert_eq!((status, error.as_deref()), (403, Some("forbidden_source")));
    // Under the fetch's own 2 s deadline: the request's wait, not the fetch's, bounds it.
    assert!(took < Duration::from_millis(1600), "refused after {took:?}");
    assert_eq!(cdn.paths(), [RANGES_FILE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_region_name_nothing_is_fetched() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("allowlist-none").await;
    let cdn = Cdn::start(Answer::Json(published(&["198.51.100.0/24"]))).await;
    for allowed in [None, Some("34.231.68.0/24, 10.0.0.0/8")] {
        let mut env = vec![("INTERCOM_IP_RANGES_URL", cdn.base.clone())];
        if let Some(list) = allowed {
            env.push(("INTERCOM_ALLOWED_IPS", list.to_owned()));
        }
        let function = Function::receiver(&moto, &queue, &env).await;
        assert_eq!(post_from(&function, COMPILED_US, 30).await.0, 202);
        let expected = if allowed.is_some() { 403 } else { 202 };
        assert_eq!(post_from(&function, NEW_RANGE_SOURCE, 31).await.0, expected);
    }
    // `off` keeps the compiled addresses and reads nothing either.
    let function = us_receiver(&moto, &queue, "off").await;
    assert_eq!(post_from(&function, COMPILED_US, 32).await.0, 202);
    assert_eq!(post_from(&function, NEW_RANGE_SOURCE, 33).await.0, 403);
    assert!(cdn.paths().is_empty(), "{:?}", cdn.paths());

    // Plain HTTP to anything but this machine is refused at init.
    let mut function = Function::start(
        "webhook-receiver",
        Some(&moto),
        &[
            ("QUEUE_URL", queue.clone()),
            ("INTERCOM_CLIENT_SECRET", "s".to_owned()),
            ("INTERCOM_ALLOWED_IPS", "intercom-us".to_owned()),
            (
                "INTERCOM_IP_RANGES_URL",
                "http://static.intercomcdn.com/intercom-ips".to_owned(),
            ),
        ],
    )
    .await;
    function.expect_init_error("INTERCOM_IP_RANGES_URL").await;
}

/// What a region name adds to a cold start, for BENCHMARKS.md (run by hand:
/// `cargo test --release`-built receiver, `-- --ignored --nocapture`;
/// `WEBHOOK_RECEIVER_BIN` picks the build). Per configuration, the medians
/// of `ALLOWLIST_COLD_STARTS` (20) starts: init (exec to the first poll),
/// the first answer from cold (a compiled Intercom address), and the
/// process's CPU once its background read has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_what_a_region_name_adds_to_a_cold_start() {
    use pipeline_tests::process_stats::{cpu_ns, median, peak_rss_kib};
    let starts: usize = std::env::var("ALLOWLIST_COLD_STARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let moto = Moto::start().await;
    let queue = moto.create_queue("allowlist-measure").await;
    let cdn = Cdn::start(Answer::Json(published(&[
        "34.231.68.0/24",
        "198.51.100.0/24",
    ])))
    .await;
    let configurations: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no AllowedIps (the default)", vec![]),
        (
            "addresses only",
            vec![("INTERCOM_ALLOWED_IPS", "34.231.68.0/24".to_owned())],
        ),
        (
            "intercom-us, file over loopback HTTP",
            vec![
                ("INTERCOM_ALLOWED_IPS", "intercom-us".to_owned()),
                ("INTERCOM_IP_RANGES_URL", cdn.base.clone()),
            ],
        ),
        (
            "intercom-us, HTTPS (system roots loaded; connection refused)",
            vec![
                ("INTERCOM_ALLOWED_IPS", "intercom-us".to_owned()),
                (
                    "INTERCOM_IP_RANGES_URL",
                    "https://127.0.0.1:1/intercom-ips".to_owned(),
                ),
                (
                    "SSL_CERT_FILE",
                    "/etc/ssl/certs/ca-certificates.crt".to_owned(),
                ),
            ],
        ),
    ];
    for (name, env) in configurations {
        let (mut inits, mut firsts, mut cpus, mut rss) = (vec![], vec![], vec![], vec![]);
        for n in 0..starts {
            let function = Function::receiver(&moto, &queue, &env).await;
            let (status, _, _) = post_from(&function, COMPILED_US, 100 + n).await;
            let answered = function.started.elapsed();
            assert_eq!(status, 202, "{name}: {}", function.logs().join("\n"));
            let poll = function.api.first_poll().expect("polled");
            inits.push(poll.duration_since(function.started).as_secs_f64() * 1000.0);
            firsts.push(answered.as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let pid = function.pid().expect("pid");
            cpus.push(cpu_ns(pid) as f64 / 1e6);
            rss.push(peak_rss_kib(pid) as f64 / 1024.0);
        }
        eprintln!(
            "{name}: init {:.2} ms, first answer {:.2} ms, CPU {:.2} ms, peak RSS {:.1} MiB",
            median(inits),
            median(firsts),
            median(cpus),
            median(rss)
        );
    }
}
