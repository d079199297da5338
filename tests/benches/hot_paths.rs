//! Criterion benchmarks of the per-request and per-record work, without I/O.
//!
//! - `receiver/*`: verify + validate + build the queue message, for 1 KB, 5 KB
//!   and 300 KB notifications, each beside its floor: HMAC-SHA1 over the same
//!   bytes plus one serde_json pass over them (`IgnoredAny`).
//! - `processor/*`: decode + typed parse + dispatch to a no-op handler, for a
//!   batch of 10 typical records and for one 300 KB conversation.
//!
//! Run: `cargo bench -p pipeline-tests --bench hot_paths`.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use intercom_webhook::dispatch::{Event, Registry};
use intercom_webhook::envelope::Envelope;
use intercom_webhook::models::Item;
use intercom_webhook::queue_message::{Delivery, QueueMessage};
use intercom_webhook::record;
use intercom_webhook::signature::Verifier;
use intercom_webhook::topic::Topic;
use pipeline_tests::fixtures::TEST_SECRET;
use pipeline_tests::samples;
use serde::de::IgnoredAny;

fn receiver(c: &mut Criterion) {
    let verifier = Verifier::new([TEST_SECRET]).expect("secret");
    let mut group = c.benchmark_group("receiver");
    for (label, body) in [
        ("1KB", samples::sample_body(Topic::ContactUserTagCreated)),
        ("5KB", samples::conversation_of(5 * 1024)),
        ("300KB", samples::conversation_of(300 * 1024)),
    ] {
        let signature = verifier.sign(&body);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("work", label), &body, |b, body| {
            b.iter(|| {
                let verified = verifier
                    .verify(black_box(body), Some(signature.as_bytes()))
                    .expect("verifies");
                let envelope = Envelope::parse(verified).expect("valid");
                let delivery = Delivery {
                    signature: &signature,
                    subscription_id: None,
                    received_at: SystemTime::UNIX_EPOCH,
                };
                let message = QueueMessage::build(verified, &envelope, &delivery, true);
                black_box(message.size())
            });
        });
        group.bench_with_input(BenchmarkId::new("floor", label), &body, |b, body| {
            b.iter(|| {
                let mut mac =
                    Hmac::<sha1::Sha1>::new_from_slice(TEST_SECRET.as_bytes()).expect("key");
                mac.update(black_box(body));
                black_box(mac.finalize());
                black_box(serde_json::from_slice::<IgnoredAny>(body).expect("json"));
            });
        });
    }
    group.finish();
}

fn processor(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut registry = Registry::new();
    for topic in Topic::ALL {
        registry.on(*topic, |event: Event<Item>| async move {
            black_box(event);
            Ok(())
        });
    }
    let typical: Vec<Vec<u8>> = [
        Topic::ConversationUserCreated,
        Topic::ConversationAdminReplied,
        Topic::ContactUserCreated,
        Topic::ContactUserTagCreated,
        Topic::TicketCreated,
        Topic::TicketAdminReplied,
        Topic::CompanyUpdated,
        Topic::AdminLoggedIn,
        Topic::ContentStatEmail,
        Topic::EventCreated,
    ]
    .into_iter()
    .map(samples::sample_body)
    .collect();
    let large = samples::conversation_of(300 * 1024);
    let mut group = c.benchmark_group("processor");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("batch_of_10_typical", |b| {
        b.iter(|| {
            for body in &typical {
                let (item, meta) = record::decode(black_box(body), "m").expect("decodes");
                black_box(runtime.block_on(registry.dispatch(item, meta)));
            }
        });
    });
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("conversation_300KB", |b| {
        b.iter(|| {
            let (item, meta) = record::decode(black_box(&large), "m").expect("decodes");
            black_box(runtime.block_on(registry.dispatch(item, meta)));
        });
    });
    group.finish();
}

criterion_group!(benches, receiver, processor);
criterion_main!(benches);
