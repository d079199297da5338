//! Load for the real receiver: a realistic mix of deliveries, a fleet of receiver processes as Lambda scales them, and figures.
//!
//! [`mix`] makes signed deliveries of every topic, mostly small, some with
//! dozens of conversation parts and a few with hundreds, in all four event
//! shapes, with a few forged and a few invalid ones among them. [`Fleet`]
//! runs several `webhook-receiver` processes, each under its own Runtime
//! API and each taking one invocation at a time, as Lambda runs concurrent
//! sandboxes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use intercom_webhook::topic::{Family, Topic};
use serde_json::Value;

use crate::fixtures::{Request, Shape, sign, sign_with};
use crate::function::Function;
use crate::moto::Moto;
use crate::runtime_api::Outcome;
use crate::samples;

/// One delivery: the notification id, the body, the event wrapping it and
/// the status the contract gives it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub body: Vec<u8>,
    pub event: Vec<u8>,
    pub expected: u16,
}

/// A small deterministic generator, so a failing mix can be made again.
#[derive(Debug)]
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `count` deliveries: 98% valid notifications (40% of them conversation
/// topics, the rest any catalogued topic including `ping`; 5% with 5–40
/// conversation parts, 1% with 100–400), 1% forged, 1% signed but not a
/// valid envelope. Every notification has its own id, `notif_{prefix}_{i}`.
pub fn mix(count: usize, prefix: &str, seed: u64) -> Vec<Delivery> {
    let mut rng = Lcg(seed);
    let conversation_topics: Vec<Topic> = Topic::ALL
        .iter()
        .copied()
        .filter(|t| t.family() == Family::Conversation)
        .collect();
    (0..count)
        .map(|i| {
            let id = format!("notif_{prefix}_{i}");
            let roll = rng.below(1000);
            let topic = if rng.below(100) < 40 {
                conversation_topics[rng.below(conversation_topics.len() as u64) as usize]
            } else {
                Topic::ALL[rng.below(Topic::ALL.len() as u64) as usize]
            };
            let parts = match rng.below(100) {
                0 => Some(100 + rng.below(301) as usize),
                1..=5 => Some(5 + rng.below(36) as usize),
                _ => None,
            };
            let mut notification: Value = match parts {
                Some(parts) => serde_json::from_slice(&samples::large_conversation(parts))
                    .expect("sample JSON"),
                None => samples::sample(topic),
            };
            let ping = notification["topic"] == "ping";
            if !ping {
                notification["id"] = Value::String(id.clone());
            }
            let invalid = (10..20).contains(&roll) && !ping;
            if invalid {
                notification["created_at"] = Value::String("yesterday".into());
            }
            let body = serde_json::to_vec(&notification).expect("serialisable");
            let forged = roll < 10;
            let signature = if forged {
                sign_with("not-the-secret", &body)
            } else {
                sign(&body)
            };
            let mut request = Request::with_signature(&body, &signature);
            if i % 7 == 0 {
                request = request.base64();
            }
            let event = request.event(Shape::ALL[i % 4]);
            let expected = match (forged, invalid, ping) {
                (true, _, _) => 401,
                (_, true, _) => 400,
                (_, _, true) => 200,
                _ => 202,
            };
            Delivery {
                id,
                event: serde_json::to_vec(&event).expect("serialisable"),
                body,
                expected,
            }
        })
        .collect()
}

/// How one delivery was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub index: usize,
    /// `None` when no answer came within 10 s.
    pub status: Option<u16>,
    pub latency: Duration,
}

/// Receiver processes, each taking one invocation at a time.
#[derive(Debug)]
pub struct Fleet {
    pub functions: Vec<Function>,
}

impl Fleet {
    /// Starts `size` receivers queueing to `queue_url` through `endpoint`
    /// (moto's, or a proxy in front of it).
    pub async fn start(size: usize, moto: &Moto, queue_url: &str, endpoint: &str) -> Self {
        let mut functions = Vec::with_capacity(size);
        for _ in 0..size {
            functions.push(
                Function::start(
                    "webhook-receiver",
                    Some(moto),
                    &[
                        ("QUEUE_URL", queue_url.to_owned()),
                        (
                            "INTERCOM_CLIENT_SECRET",
                            crate::fixtures::TEST_SECRET.to_owned(),
                        ),
                        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
                        ("AWS_LAMBDA_LOG_LEVEL", "WARN".to_owned()),
                    ],
                )
                .await,
            );
        }
        Self { functions }
    }

    /// Delivers every event, each receiver taking the next one as soon as it
    /// answered the last, and returns the answers in event order.
    pub async fn deliver(&self, events: Vec<Vec<u8>>) -> Vec<Answer> {
        let total = events.len();
        let work = Arc::new(Mutex::new(events.into_iter().enumerate()));
        let mut tasks = Vec::new();
        for function in &self.functions {
            let api = function.api.clone();
            let work = Arc::clone(&work);
            tasks.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let next = work.lock().expect("lock").next();
                    let Some((index, event)) = next else {
                        return answers;
                    };
                    let started = Instant::now();
                    let outcome = api.invoke_raw(event, Duration::from_secs(10)).await;
                    let status = match outcome {
                        Some(Outcome::Response(response)) => response["statusCode"]
                            .as_u64()
                            .and_then(|s| u16::try_from(s).ok()),
                        _ => None,
                    };
                    answers.push(Answer {
                        index,
                        status,
                        latency: started.elapsed(),
                    });
                }
            }));
        }
        let mut answers = Vec::with_capacity(total);
        for task in tasks {
            answers.extend(task.await.expect("delivery task"));
        }
        answers.sort_by_key(|a| a.index);
        answers
    }
}

/// A count from the environment variable `name`, or `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p`-th percentile (0–100) of `latencies`, nearest rank.
pub fn percentile(latencies: &[Duration], p: f64) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
