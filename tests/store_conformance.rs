//! The store conformance suite: what every `Store` must do. The embedded
//! engine always runs it; the ScyllaDB store runs the same functions
//! against the cluster at `STARLING_TEST_SCYLLA=host:9042` (a fresh keyspace
//! per test, dropped afterwards) and says SKIPPED, loudly, without one.

use starling::actors::aggregator::window::{id_hash, Contribution, Resolution, WindowMetrics};
use starling::config::StoreConfig;
use starling::domain::EntityRef;
use starling::domain::{EntityKind, SentimentLabel};
use starling::store::embedded::EmbeddedStore;
use starling::store::summaries::{EmbeddedSummaries, SummaryStore};
use starling::store::{Store, WindowBatch, WindowDelta};
use starling::summary::model::{Change, Method, Summary, WindowNumbers};

/// A whole hour, two hours ago: recent enough for every retention (the
/// ScyllaDB store does not read partitions its TTL has emptied).
fn start_hour() -> i64 {
    const HOUR: i64 = 3_600_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now / HOUR * HOUR - 2 * HOUR
}

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
    let t0 = start_hour();
    store
        .series(kind, id, res, t0 - 86_400_000, t0 + 86_400_000)
        .expect("series")
        .into_iter()
        .map(|(ts, m)| (ts, m.volume))
        .collect()
}

fn windows_merge_and_roll_up(store: &dyn Store) {
    let t0 = start_hour();
    let k = EntityKind::Project;
    store
        .apply(&batch(
            k,
            &[
                (t0, "SOL", 2),
                (t0 + 1_000, "SOL", 3),
                (t0 + 61_000, "SOL", 1),
            ],
            &[],
            None,
        ))
        .expect("apply");
    // A later merge into an existing window adds to it.
    store
        .apply(&batch(k, &[(t0, "SOL", 4)], &[], None))
        .expect("apply");
    assert_eq!(
        volumes(store, k, "SOL", Resolution::Second),
        vec![(t0, 6), (t0 + 1_000, 3), (t0 + 61_000, 1)]
    );
    assert_eq!(
        volumes(store, k, "SOL", Resolution::Minute),
        vec![(t0, 9), (t0 + 60_000, 1)]
    );
    assert_eq!(volumes(store, k, "SOL", Resolution::Hour), vec![(t0, 10)]);
    let rec = store.entity(k, "SOL").expect("entity").expect("present");
    assert_eq!(rec.totals.volume, 10);
    assert_eq!((rec.first_seen_ms, rec.last_seen_ms), (t0, t0 + 61_000));
    // Entities of one kind do not leak into another or into each other.
    assert!(volumes(store, EntityKind::Topic, "SOL", Resolution::Second).is_empty());
    assert!(volumes(store, k, "SO", Resolution::Second).is_empty());
    let listed = store.entities(k, t0).expect("entities");
    assert_eq!(listed.len(), 1);
    assert!(store
        .entities(k, t0 + 120_000)
        .expect("entities")
        .is_empty());
}

fn series_respects_the_range(store: &dyn Store) {
    let t0 = start_hour();
    let k = EntityKind::Topic;
    store
        .apply(&batch(
            k,
            &[(t0, "ai", 1), (t0 + 5_000, "ai", 1), (t0 + 10_000, "ai", 1)],
            &[],
            None,
        ))
        .expect("apply");
    let got = store
        .series(k, "ai", Resolution::Second, t0 + 1_000, t0 + 5_000)
        .expect("series");
    assert_eq!(
        got.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![t0 + 5_000]
    );
}

fn seen_marks_and_watermarks_are_kept(store: &dyn Store) {
    let t0 = start_hour();
    let k = EntityKind::Macro;
    assert_eq!(store.watermark(k).expect("wm"), None);
    store
        .apply(&batch(
            k,
            &[(t0, "all", 1)],
            &[(t0, vec![3, 1])],
            Some(t0 + 1_000),
        ))
        .expect("apply");
    store
        .apply(&batch(k, &[], &[(t0, vec![2, 3])], Some(t0)))
        .expect("apply");
    assert_eq!(store.seen(k, t0).expect("seen"), vec![1, 2, 3]);
    assert!(store.seen(EntityKind::Geo, t0).expect("seen").is_empty());
    assert_eq!(
        store.watermark(k).expect("wm"),
        Some(t0 + 1_000),
        "watermarks never go back"
    );
}

fn retention_drops_old_partitions_only(store: &dyn Store) {
    let t0 = start_hour();
    let k = EntityKind::Geo;
    store
        .apply(&batch(k, &[(t0, "Paris", 1)], &[], None))
        .expect("apply");
    // 1s retention is 6 h in the defaults; 1m is 7 days.
    let dropped = store.expire(t0 + 8 * 3_600_000).expect("expire");
    assert!(dropped >= 1);
    assert!(volumes(store, k, "Paris", Resolution::Second).is_empty());
    assert_eq!(
        volumes(store, k, "Paris", Resolution::Minute),
        vec![(t0, 1)]
    );
}

/// Two processes owning different shards write different entities of one
/// kind (and the same seconds' counted posts); each reads the other's.
fn two_writers_share_one_view(a: &dyn Store, b: &dyn Store) {
    let t0 = start_hour();
    let k = EntityKind::User;
    a.apply(&batch(k, &[(t0, "alice", 2)], &[(t0, vec![10, 11])], None))
        .expect("apply a");
    b.apply(&batch(k, &[(t0, "bob", 3)], &[(t0, vec![20])], None))
        .expect("apply b");
    a.apply(&batch(
        k,
        &[(t0 + 1_000, "alice", 1)],
        &[(t0 + 1_000, vec![12])],
        None,
    ))
    .expect("apply a");
    for s in [a, b] {
        assert_eq!(volumes(s, k, "alice", Resolution::Minute), vec![(t0, 3)]);
        assert_eq!(volumes(s, k, "bob", Resolution::Second), vec![(t0, 3)]);
        assert_eq!(s.seen(k, t0).expect("seen"), vec![10, 11, 20]);
        let ids: Vec<String> = s
            .entities(k, t0)
            .expect("entities")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, vec!["alice".to_string(), "bob".to_string()]);
        assert_eq!(
            s.entity(k, "alice")
                .expect("entity")
                .map(|r| r.totals.volume),
            Some(3)
        );
    }
}

fn summary(entity: &EntityRef, from_ms: i64, to_ms: i64, text: &str) -> Summary {
    Summary {
        entity: entity.clone(),
        from_ms,
        to_ms,
        text: text.into(),
        method: Method::Extractive,
        model: None,
        prompt_version: 1,
        fallback_reason: None,
        numbers: WindowNumbers::default(),
        change: Change::between(WindowNumbers::default(), &WindowNumbers::default()),
        top_praise: None,
        top_complaint: None,
        post_ids: vec!["p1".into()],
        generated_at_ms: to_ms,
        took_ms: 1,
    }
}

/// Summaries: newest window first, a window's summary replaced by a new
/// one, lookups within a range, entities kept apart.
fn summaries_latest_within_and_replace(s: &dyn SummaryStore) {
    let t0 = start_hour();
    let hour = 3_600_000;
    let sol = EntityRef::new(EntityKind::Project, "SOL");
    let so = EntityRef::new(EntityKind::Project, "SO");
    assert!(s.latest(&sol).expect("read").is_none());
    s.save(&summary(&sol, t0 - hour, t0, "first"))
        .expect("save");
    s.save(&summary(&sol, t0, t0 + hour, "second"))
        .expect("save");
    s.save(&summary(&so, t0, t0 + 2 * hour, "other entity"))
        .expect("save");
    s.save(&summary(&sol, t0, t0 + hour, "second again"))
        .expect("save");
    let latest = s.latest(&sol).expect("read").expect("some");
    assert_eq!(latest.text, "second again");
    assert_eq!(latest, summary(&sol, t0, t0 + hour, "second again"));
    let w = |from, to| s.within(&sol, from, to).expect("read").map(|x| x.text);
    assert_eq!(w(t0 - hour, t0).as_deref(), Some("first"));
    assert_eq!(w(t0 - hour, t0 + hour).as_deref(), Some("second again"));
    assert_eq!(w(t0 - hour + 1, t0 + hour - 1), None);
    assert_eq!(
        s.latest(&so).expect("read").map(|x| x.text).as_deref(),
        Some("other entity")
    );
}

fn open(dir: &std::path::Path) -> EmbeddedStore {
    EmbeddedStore::open_at(dir, &StoreConfig::default()).expect("open store")
}

/// The conformance functions, run against the embedded engine (always)
/// and against ScyllaDB (with `STARLING_TEST_SCYLLA`).
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    super::$name(&super::open(dir.path()));
                }
            )*
        }
        mod scylla {
            $(
                #[test]
                fn $name() {
                    let Some(ks) = super::live::Keyspace::create(stringify!($name)) else {
                        return;
                    };
                    super::$name(&ks.store(&[0]));
                }
            )*
        }
    };
}

conformance!(
    windows_merge_and_roll_up,
    series_respects_the_range,
    seen_marks_and_watermarks_are_kept,
);

/// Retention: the embedded engine drops whole partitions; ScyllaDB's
/// tables expire rows by their TTL (set by `migrate`, checked in
/// `scylla_migrate_is_idempotent_and_every_statement_prepares`).
#[test]
fn embedded_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    retention_drops_old_partitions_only(&open(dir.path()));
}

#[test]
fn embedded_summaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    summaries_latest_within_and_replace(&EmbeddedSummaries::open(&store).expect("summaries"));
}

/// Embedded only: ScyllaDB's summaries expire by their table's TTL.
#[test]
fn embedded_summaries_expire_by_window_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let s = EmbeddedSummaries::open(&store).expect("summaries");
    let sol = EntityRef::new(EntityKind::Project, "SOL");
    let so = EntityRef::new(EntityKind::Project, "SO");
    s.save(&summary(&sol, 0, 3_600_000, "first")).expect("save");
    s.save(&summary(&sol, 3_600_000, 7_200_000, "second"))
        .expect("save");
    s.save(&summary(&so, 0, 9_000_000, "other")).expect("save");
    assert_eq!(s.expire(3_600_001).expect("expire"), 1);
    assert_eq!(s.within(&sol, 0, 3_600_000).expect("read"), None);
    assert_eq!(
        s.latest(&sol).expect("read").map(|x| x.text).as_deref(),
        Some("second")
    );
    assert_eq!(
        s.latest(&so).expect("read").map(|x| x.text).as_deref(),
        Some("other")
    );
}

#[test]
fn scylla_summaries() {
    let Some(ks) = live::Keyspace::create("summaries") else {
        return;
    };
    let (_, summaries) = starling::store::scylla::open(&ks.config).expect("open");
    summaries_latest_within_and_replace(&summaries);
}

#[test]
fn embedded_two_writers_share_one_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    two_writers_share_one_view(&store, &store);
}

#[test]
fn scylla_two_writers_share_one_view() {
    let Some(ks) = live::Keyspace::create("two_writers") else {
        return;
    };
    two_writers_share_one_view(&ks.store(&[0]), &ks.store(&[1]));
}

#[test]
fn scylla_migrate_is_idempotent_and_every_statement_prepares() {
    let Some(ks) = live::Keyspace::create("migrate") else {
        return;
    };
    let again = starling::store::scylla::migrate(&ks.config).expect("migrate again");
    assert!(
        again
            .iter()
            .filter(|l| l.starts_with("table "))
            .all(|l| l.ends_with("exists, unchanged")),
        "{again:?}"
    );
    let mut changed = ks.config.clone();
    changed.store.retention_1s_hours = 12;
    let report = starling::store::scylla::migrate(&changed).expect("migrate with a new TTL");
    assert!(
        report
            .iter()
            .any(|l| l.contains("windows_1s: default TTL 21600 s -> 43200 s")),
        "{report:?}"
    );
    let failures = starling::store::scylla::prepare_all(&ks.config).expect("connect");
    assert!(
        failures.is_empty(),
        "statements that do not prepare: {failures:?}"
    );
}

/// A live ScyllaDB from `STARLING_TEST_SCYLLA`.
mod live {
    use starling::config::Config;
    use starling::store::scylla::series::ScyllaStore;
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU32, Ordering};

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// A fresh keyspace, migrated; dropped when this goes.
    pub struct Keyspace {
        pub config: Config,
    }

    impl Keyspace {
        /// `None` (and a loud SKIPPED) without `STARLING_TEST_SCYLLA`.
        pub fn create(test: &str) -> Option<Keyspace> {
            let Ok(nodes) = std::env::var("STARLING_TEST_SCYLLA") else {
                // Straight to stderr: the test harness captures eprintln!.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED scylla::{test}: NOT RUN AGAINST SCYLLADB. Set \
                     STARLING_TEST_SCYLLA=host:9042 to run the store conformance suite \
                     against a live cluster (none can be installed on this machine)."
                );
                return None;
            };
            let mut config = Config::default();
            config.store.scylla.nodes = nodes.split(',').map(str::to_string).collect();
            config.store.scylla.replication_factor = 1;
            config.store.scylla.keyspace = format!(
                "starling_test_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            starling::store::scylla::migrate(&config).expect("migrate");
            Some(Keyspace { config })
        }

        /// The store as written by the process owning `shards`.
        pub fn store(&self, shards: &[u16]) -> ScyllaStore {
            let mut config = self.config.clone();
            config.aggregation.owned_shards = shards.to_vec();
            starling::store::scylla::open(&config).expect("open").0
        }
    }

    impl Drop for Keyspace {
        fn drop(&mut self) {
            if let Err(e) = starling::store::scylla::drop_keyspace(&self.config) {
                eprintln!("could not drop {}: {e}", self.config.store.scylla.keyspace);
            }
        }
    }
}

#[test]
fn embedded_data_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = start_hour();
    {
        let store = open(dir.path());
        store
            .apply(&batch(
                EntityKind::Product,
                &[(t0, "app", 5)],
                &[(t0, vec![9])],
                Some(t0 + 1_000),
            ))
            .expect("apply");
        store.sync().expect("sync");
    }
    let store = open(dir.path());
    let t0 = start_hour();
    assert_eq!(
        volumes(&store, EntityKind::Product, "app", Resolution::Hour),
        vec![(t0, 5)]
    );
    assert_eq!(store.seen(EntityKind::Product, t0).expect("seen"), vec![9]);
    assert_eq!(
        store.watermark(EntityKind::Product).expect("wm"),
        Some(t0 + 1_000)
    );
}
