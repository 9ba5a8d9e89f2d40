//! The store conformance suite: what every `Store` must do. The embedded
//! engine runs it here; the ScyllaDB store will run the same functions
//! (against `STARLING_TEST_SCYLLA`, skipped loudly without one).

use starling::actors::aggregator::window::{id_hash, Contribution, Resolution, WindowMetrics};
use starling::config::StoreConfig;
use starling::domain::{EntityKind, SentimentLabel};
use starling::store::embedded::EmbeddedStore;
use starling::store::{Store, WindowBatch, WindowDelta};

const T0: i64 = 1_794_999_600_000; // a whole hour (2026-11-18T05:00Z)

fn metrics(n: u64, author: &str) -> WindowMetrics {
    let mut m = WindowMetrics::default();
    for i in 0..n {
        m.add(
            &Contribution {
                author_hash: id_hash(&format!("{author}{i}")),
                engagement: 2,
                label: SentimentLabel::Positive,
                score: 0.5,
                weight: 1.0,
            },
            false,
        );
    }
    m
}

fn batch(
    kind: EntityKind,
    windows: &[(i64, &str, u64)],
    seen: &[(i64, Vec<u64>)],
    wm: Option<i64>,
) -> WindowBatch {
    WindowBatch {
        kind: Some(kind),
        windows: windows
            .iter()
            .map(|(ts, e, n)| WindowDelta {
                start_ms: *ts,
                entity: e.to_string(),
                metrics: metrics(*n, e),
            })
            .collect(),
        seen: seen.to_vec(),
        watermark: wm,
    }
}

fn volumes(store: &dyn Store, kind: EntityKind, id: &str, res: Resolution) -> Vec<(i64, u64)> {
    store
        .series(kind, id, res, T0 - 86_400_000, T0 + 86_400_000)
        .expect("series")
        .into_iter()
        .map(|(ts, m)| (ts, m.volume))
        .collect()
}

fn windows_merge_and_roll_up(store: &dyn Store) {
    let k = EntityKind::Project;
    store
        .apply(&batch(
            k,
            &[
                (T0, "SOL", 2),
                (T0 + 1_000, "SOL", 3),
                (T0 + 61_000, "SOL", 1),
            ],
            &[],
            None,
        ))
        .expect("apply");
    // A later merge into an existing window adds to it.
    store
        .apply(&batch(k, &[(T0, "SOL", 4)], &[], None))
        .expect("apply");
    assert_eq!(
        volumes(store, k, "SOL", Resolution::Second),
        vec![(T0, 6), (T0 + 1_000, 3), (T0 + 61_000, 1)]
    );
    assert_eq!(
        volumes(store, k, "SOL", Resolution::Minute),
        vec![(T0, 9), (T0 + 60_000, 1)]
    );
    assert_eq!(volumes(store, k, "SOL", Resolution::Hour), vec![(T0, 10)]);
    let rec = store.entity(k, "SOL").expect("entity").expect("present");
    assert_eq!(rec.totals.volume, 10);
    assert_eq!((rec.first_seen_ms, rec.last_seen_ms), (T0, T0 + 61_000));
    // Entities of one kind do not leak into another or into each other.
    assert!(volumes(store, EntityKind::Topic, "SOL", Resolution::Second).is_empty());
    assert!(volumes(store, k, "SO", Resolution::Second).is_empty());
    let listed = store.entities(k, T0).expect("entities");
    assert_eq!(listed.len(), 1);
    assert!(store
        .entities(k, T0 + 120_000)
        .expect("entities")
        .is_empty());
}

fn series_respects_the_range(store: &dyn Store) {
    let k = EntityKind::Topic;
    store
        .apply(&batch(
            k,
            &[(T0, "ai", 1), (T0 + 5_000, "ai", 1), (T0 + 10_000, "ai", 1)],
            &[],
            None,
        ))
        .expect("apply");
    let got = store
        .series(k, "ai", Resolution::Second, T0 + 1_000, T0 + 5_000)
        .expect("series");
    assert_eq!(
        got.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![T0 + 5_000]
    );
}

fn seen_marks_and_watermarks_are_kept(store: &dyn Store) {
    let k = EntityKind::Macro;
    assert_eq!(store.watermark(k).expect("wm"), None);
    store
        .apply(&batch(
            k,
            &[(T0, "all", 1)],
            &[(T0, vec![3, 1])],
            Some(T0 + 1_000),
        ))
        .expect("apply");
    store
        .apply(&batch(k, &[], &[(T0, vec![2, 3])], Some(T0)))
        .expect("apply");
    assert_eq!(store.seen(k, T0).expect("seen"), vec![1, 2, 3]);
    assert!(store.seen(EntityKind::Geo, T0).expect("seen").is_empty());
    assert_eq!(
        store.watermark(k).expect("wm"),
        Some(T0 + 1_000),
        "watermarks never go back"
    );
}

fn retention_drops_old_partitions_only(store: &dyn Store) {
    let k = EntityKind::Geo;
    store
        .apply(&batch(k, &[(T0, "Paris", 1)], &[], None))
        .expect("apply");
    // 1s retention is 6 h in the defaults; 1m is 7 days.
    let dropped = store.expire(T0 + 8 * 3_600_000).expect("expire");
    assert!(dropped >= 1);
    assert!(volumes(store, k, "Paris", Resolution::Second).is_empty());
    assert_eq!(
        volumes(store, k, "Paris", Resolution::Minute),
        vec![(T0, 1)]
    );
}

fn open(dir: &std::path::Path) -> EmbeddedStore {
    EmbeddedStore::open_at(dir, &StoreConfig::default()).expect("open store")
}

#[test]
fn embedded_windows_merge_and_roll_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    windows_merge_and_roll_up(&open(dir.path()));
}

#[test]
fn embedded_series_respects_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    series_respects_the_range(&open(dir.path()));
}

#[test]
fn embedded_seen_marks_and_watermarks() {
    let dir = tempfile::tempdir().expect("tempdir");
    seen_marks_and_watermarks_are_kept(&open(dir.path()));
}

#[test]
fn embedded_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    retention_drops_old_partitions_only(&open(dir.path()));
}

#[test]
fn embedded_data_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        store
            .apply(&batch(
                EntityKind::Product,
                &[(T0, "app", 5)],
                &[(T0, vec![9])],
                Some(T0 + 1_000),
            ))
            .expect("apply");
        store.sync().expect("sync");
    }
    let store = open(dir.path());
    assert_eq!(
        volumes(&store, EntityKind::Product, "app", Resolution::Hour),
        vec![(T0, 5)]
    );
    assert_eq!(store.seen(EntityKind::Product, T0).expect("seen"), vec![9]);
    assert_eq!(
        store.watermark(EntityKind::Product).expect("wm"),
        Some(T0 + 1_000)
    );
}
