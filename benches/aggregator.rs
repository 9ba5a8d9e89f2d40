//! Aggregator hot paths: admitting posts into open windows, and committing a
//! closed second to the embedded store (windows + rollups + records + ids).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use starling::actors::aggregator::open::OpenWindows;
use starling::actors::aggregator::window::{id_hash, Contribution};
use starling::config::StoreConfig;
use starling::domain::{EntityKind, SentimentLabel};
use starling::store::embedded::EmbeddedStore;
use starling::store::Store;
use std::time::Duration;

const POSTS: usize = 10_000;

fn contribution(i: usize) -> Contribution {
    Contribution {
        author_hash: id_hash(&format!("u{}", i % 3_000)),
        engagement: (i % 50) as u64,
        label: [
            SentimentLabel::Positive,
            SentimentLabel::Negative,
            SentimentLabel::Neutral,
        ][i % 3],
        score: ((i % 21) as f64 - 10.0) / 10.0,
        weight: 1.0 + (i % 9) as f64,
    }
}

/// 10,000 posts spread over 10 seconds, each attributed to one of 50 topics.
fn fill() -> OpenWindows<u32> {
    let topics: Vec<String> = (0..50).map(|t| format!("topic{t}")).collect();
    let mut w = OpenWindows::new(0, 2_000);
    for i in 0..POSTS {
        let ts = (i as i64 * 10_000) / POSTS as i64;
        let ids = [topics[i % 50].as_str()];
        let _ = w.admit(ts, id_hash(&format!("p{i}")), &ids, &contribution(i), 0);
    }
    w
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("aggregator");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(POSTS as u64));
    g.bench_function("admit_10k_posts", |b| b.iter(fill));

    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open_at(dir.path(), &StoreConfig::default()).expect("store");
    let mut base = 1_800_000_000_000i64;
    g.bench_function("close_and_commit_10k_posts", |b| {
        b.iter_batched(
            fill,
            |mut w| {
                let mut closed = w.close_all();
                for d in &mut closed.batch.windows {
                    d.start_ms += base;
                }
                for s in &mut closed.batch.seen {
                    s.0 += base;
                }
                base += 10_000;
                closed.batch.kind = Some(EntityKind::Topic);
                store.apply(&closed.batch).expect("apply");
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
