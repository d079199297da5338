//! Load: 20,000 signed deliveries through a fleet of real receiver binaries into moto, every accepted one queued exactly once.
//!
//! `LOAD_NOTIFICATIONS` changes the count (20,000 by default) and
//! `LOAD_RECEIVERS` the number of receiver processes (4: with 8, moto's
//! Python server thrashes, answers SendMessage in up to seconds, and the
//! receivers rightly answer 503 past their 2.4 s SQS budget). The figures are
//! printed (`-- --nocapture`) and recorded in BENCHMARKS.md.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use pipeline_tests::emf;
use pipeline_tests::load::{Fleet, mix, percentile, setting};
use pipeline_tests::moto::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_notification_is_queued_exactly_once_under_load() {
    let count = setting("LOAD_NOTIFICATIONS", 20_000);
    let receivers = setting("LOAD_RECEIVERS", 4);
    let moto = Moto::start().await;
    let queue = moto.create_queue("load").await;
    let deliveries = mix(count, "load", 0x1c0ffee);
    let fleet = Fleet::start(receivers, &moto, &queue, &moto.endpoint()).await;

    let drainer = moto.start_draining(&queue).await;
    let started = Instant::now();
    let answers = fleet
        .deliver(deliveries.iter().map(|d| d.event.clone()).collect())
        .await;
    let elapsed = started.elapsed();

    let mut wrong = Vec::new();
    for (delivery, answer) in deliveries.iter().zip(&answers) {
        if answer.status != Some(delivery.expected) {
            wrong.push((delivery.id.as_str(), delivery.expected, answer.status));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {count} answered otherwise than the contract says, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let latencies: Vec<Duration> = answers.iter().map(|a| a.latency).collect();
    let accepted: HashMap<&str, &[u8]> = deliveries
        .iter()
        .filter(|d| d.expected == 202)
        .map(|d| (d.id.as_str(), d.body.as_slice()))
        .collect();
    let total_bytes: usize = deliveries.iter().map(|d| d.body.len()).sum();
    eprintln!(
        "load: {count} deliveries ({:.1} MiB of bodies) by {receivers} receivers in {:.1} s: {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} accepted",
        total_bytes as f64 / 1_048_576.0,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        percentile(&latencies, 100.0).as_secs_f64() * 1e3,
        accepted.len()
    );

    let messages = drainer.finish().await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for message in &messages {
        let id = message
            .message_attributes()
            .and_then(|a| a.get("notification_id"))
            .and_then(|v| v.string_value())
            .expect("notification_id attribute")
            .to_owned();
        let body = message.body().expect("body").as_bytes();
        assert_eq!(
            accepted.get(id.as_str()).copied(),
            Some(body),
            "{id}: queued but not accepted, or not byte for byte"
        );
        *seen.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "queued more than once: {twice:?}");
    let missing: Vec<_> = accepted
        .keys()
        .filter(|id| !seen.contains_key(**id))
        .collect();
    assert!(missing.is_empty(), "accepted but not queued: {missing:?}");
    assert_eq!(messages.len(), accepted.len());

    // The fleet's metrics count the same traffic: every request once, under
    // the answer it got.
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for delivery in &deliveries {
        let answer = match delivery.expected {
            202 => "queued",
            200 => "pong",
            401 => "invalid_signature",
            400 => "invalid_notification",
            other => panic!("the mix has no {other}"),
        };
        *expected.entry(answer).or_default() += 1;
    }
    let receivers: Vec<_> = fleet.functions.iter().collect();
    let documents = emf::documents_when(&receivers, |d| {
        emf::count(d, "Requests", &[]) >= count as u64
    })
    .await;
    let counted: BTreeMap<&str, u64> = expected
        .keys()
        .map(|answer| {
            (
                *answer,
                emf::count(&documents, "Requests", &[("Answer", answer)]),
            )
        })
        .collect();
    let sends = emf::values(&documents, "QueueSendTime", &[]).len();
    assert_eq!(counted, expected, "Requests by Answer across the fleet");
    assert_eq!(
        sends,
        accepted.len(),
        "one timed send per accepted notification"
    );
}
