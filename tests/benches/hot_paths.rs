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
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use intercom_webhook::dispatch::{Event, Registry};
use intercom_webhook::models::Item;
use intercom_webhook::record;
use intercom_webhook::topic::Topic;
use pipeline_tests::{hot_path, samples};

fn receiver(c: &mut Criterion) {
    let verifier = hot_path::verifier();
    let mut group = c.benchmark_group("receiver");
    for label in hot_path::SIZES {
        let body = hot_path::body(label).expect("a measured size");
        let signature = verifier.sign(&body);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("work", label), &body, |b, body| {
            b.iter(|| black_box(hot_path::work(&verifier, body, &signature)));
        });
        group.bench_with_input(BenchmarkId::new("floor", label), &body, |b, body| {
            b.iter(|| hot_path::floor(body));
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
                let decoded = record::decode(black_box(body), "m").expect("decodes");
                black_box(runtime.block_on(registry.dispatch(decoded.item, decoded.meta)));
            }
        });
    });
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("conversation_300KB", |b| {
        b.iter(|| {
            let decoded = record::decode(black_box(&large), "m").expect("decodes");
            black_box(runtime.block_on(registry.dispatch(decoded.item, decoded.meta)));
        });
    });
    group.finish();
}

criterion_group!(benches, receiver, processor);
criterion_main!(benches);
