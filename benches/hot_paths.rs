//! Hot paths not covered by the other benches: reading an ingest batch
//! (JSON → validated posts), a hot-cache hit (the entity lookup behind
//! `GET /api/entities/{kind}/{id}`), and the JSON of the WebSocket frames
//! (`message:new` per post and session, `metrics:update` per tick).
//! Scoring and extraction are in `scorer` and `classify`, window updates and
//! store write batches in `aggregator`, the bus in `bus`.
//!
//! Run with `cargo bench --bench hot_paths`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use starling::actors::aggregator::window::{id_hash, Contribution, Resolution, WindowMetrics};
use starling::actors::classifier::enrich;
use starling::actors::hub::WindowUpdate;
use starling::config::{Config, EntitiesConfig, Tier};
use starling::domain::{EntityKind, Post, SentimentLabel};
use starling::nlp::scorer::Scorer;
use starling::nlp::Extractor;
use starling::store::cache::{EntityLatest, HotCache};
use starling::store::EntityRecord;
use starling::web::{frames, ingest, queries};
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 1_000;
const TEXTS: &[&str] = &[
    "Just bought more $ETH, not selling until 10k 💎🙌 #staking",
    "Another outage?? Third time this week. I want a refund. @SupportTeam",
    "$SOL fees are tiny and the app is fast, love it #defi",
    "Cancelled my subscription. Too expensive and the support is useless.",
    "BREAKING: exchange hacked, withdrawals halted #hack $BTC",
];

/// A JSON array of `BATCH` posts in the ingest shape, created now.
fn batch_body() -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let posts: Vec<serde_json::Value> = (0..BATCH)
        .map(|i| {
            serde_json::json!({
                "id": format!("bench-{i}"), "platform": "twitter",
                "text": TEXTS[i % TEXTS.len()],
                "author": {"id": format!("u{}", i % 300), "handle": format!("user{}", i % 300), "followers": i * 37 % 200_000},
                "created_at": now,
                "engagement": {"likes": i % 50, "reposts": i % 7, "replies": i % 3},
                "lang": "en", "geo": "US", "product": "wallet",
            })
        })
        .collect();
    serde_json::to_vec(&posts).expect("JSON")
}

fn metrics(i: u64) -> WindowMetrics {
    let mut w = WindowMetrics::default();
    for k in 0..20 {
        w.add(
            &Contribution {
                author_hash: id_hash(&format!("u{k}")),
                engagement: i + k,
                label: [
                    SentimentLabel::Positive,
                    SentimentLabel::Negative,
                    SentimentLabel::Neutral,
                ][(k % 3) as usize],
                score: 0.1 * (k % 5) as f64,
                weight: 1.0,
            },
            false,
        );
    }
    w
}

fn bench(c: &mut Criterion) {
    let config = Config::default();
    let body = batch_body();
    let mut g = c.benchmark_group("hot_paths");
    g.sample_size(30).measurement_time(Duration::from_secs(4));

    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("ingest_parse_1000_posts", |b| {
        b.iter(|| {
            let limits = config.post_limits(chrono::Utc::now());
            let batch = ingest::parse_batch(black_box(&body), false, 10_000, &limits)
                .expect("a valid batch");
            assert_eq!(batch.valid.len(), BATCH);
            batch
        })
    });

    // A hot cache of 10,000 entities; look up ids round-robin.
    let cache = HotCache::new(100_000);
    let ids: Vec<String> = (0..10_000).map(|i| format!("TOKEN{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let m = metrics(i as u64);
        cache.insert(
            EntityKind::Project,
            id,
            EntityLatest {
                record: EntityRecord {
                    first_seen_ms: 1_800_000_000_000,
                    last_seen_ms: 1_800_000_060_000,
                    totals: m.clone(),
                },
                latest: [
                    Some((1_800_000_059_000, m.clone())),
                    Some((1_800_000_000_000, m)),
                    None,
                ],
            },
        );
    }
    g.throughput(Throughput::Elements(1));
    let mut n = 0usize;
    g.bench_function("cache_hit_entity_view", |b| {
        b.iter(|| {
            n = (n + 1) % ids.len();
            queries::entity_cached(&cache, EntityKind::Project, black_box(&ids[n])).expect("a hit")
        })
    });
    g.bench_function("cache_hit_entity_view_json", |b| {
        b.iter(|| {
            n = (n + 1) % ids.len();
            let v = queries::entity_cached(&cache, EntityKind::Project, black_box(&ids[n]))
                .expect("a hit");
            serde_json::to_vec(&v).expect("JSON")
        })
    });

    // Frames: one scored post, one tick of 50 windows.
    let scorer = Scorer::new(Tier::Fast).expect("the fast model");
    let extractor = Extractor::new(&EntitiesConfig::default());
    let post: Post = serde_json::from_slice::<Vec<Post>>(&body)
        .expect("posts")
        .remove(0);
    let enriched = enrich(post, &scorer, &extractor);
    g.bench_function("frame_message_new", |b| {
        b.iter(|| frames::message_new(1, black_box(&enriched)))
    });
    let windows: Vec<WindowUpdate> = (0..50)
        .map(|i| WindowUpdate {
            kind: EntityKind::Project,
            id: ids[i].clone(),
            resolution: Resolution::Second,
            start_ms: 1_800_000_059_000,
            metrics: metrics(i as u64).view(),
        })
        .collect();
    let refs: Vec<&WindowUpdate> = windows.iter().collect();
    g.throughput(Throughput::Elements(refs.len() as u64));
    g.bench_function("frame_metrics_update_50_windows", |b| {
        b.iter(|| frames::metrics_update(1, 1_800_000_060_000, black_box(&refs)))
    });
    g.finish();

    // Parsing alone, without validation, for comparison with the batch above.
    let mut g = c.benchmark_group("hot_paths_parts");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("serde_json_vec_post_1000", |b| {
        b.iter_batched(
            || body.clone(),
            |body| serde_json::from_slice::<Vec<Post>>(&body).expect("posts"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
