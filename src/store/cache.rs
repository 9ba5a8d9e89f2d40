//! The hot-metrics cache (moka): for every recently active entity, its
//! record and its latest window at each resolution, refreshed by the store
//! writer after every commit. Lookups that hit it do not touch the store.
//!
//! When other processes write the same store (ScyllaDB), an entry is fresh
//! for a bounded time only ([`HotCache::with_ttl`]); an older one is still
//! kept, to answer (marked stale) while the store is failing.

use super::{Applied, EntityRecord};
use crate::actors::aggregator::window::{Resolution, WindowMetrics};
use crate::domain::EntityKind;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The latest state of one entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityLatest {
    /// The entity's record (totals, first/last seen).
    pub record: EntityRecord,
    /// Latest stored window per resolution: `[1s, 1m, 1h]`, with its start (ms).
    pub latest: [Option<(i64, WindowMetrics)>; 3],
}

impl EntityLatest {
    /// The latest window at `resolution`.
    pub fn window(&self, resolution: Resolution) -> Option<&(i64, WindowMetrics)> {
        self.latest
            .get(usize::from(resolution.tag()))
            .and_then(Option::as_ref)
    }
}

/// A cached entity and when it was cached.
type Entry = (Instant, Arc<EntityLatest>);

/// The moka cache keyed by entity.
#[derive(Clone)]
pub struct HotCache {
    inner: Cache<(EntityKind, String), Entry>,
    /// How long an entry is fresh (`None`: until replaced; this process is
    /// the only writer).
    fresh_for: Option<Duration>,
}

impl HotCache {
    /// A cache holding at most `entries` entities.
    pub fn new(entries: u64) -> Self {
        HotCache {
            inner: Cache::new(entries),
            fresh_for: None,
        }
    }

    /// A cache whose entries are fresh for `fresh_for` after they were
    /// written (the store is shared with other processes).
    pub fn with_ttl(entries: u64, fresh_for: Duration) -> Self {
        HotCache {
            inner: Cache::new(entries),
            fresh_for: Some(fresh_for),
        }
    }

    /// Folds a committed batch of `kind` into the cache.
    pub fn update(&self, kind: EntityKind, applied: &Applied) {
        let mut touched: std::collections::HashMap<&str, EntityLatest> =
            std::collections::HashMap::new();
        for (id, record) in &applied.records {
            let mut e = self
                .inner
                .get(&(kind, id.clone()))
                .map(|(_, a)| (*a).clone())
                .unwrap_or_default();
            e.record = record.clone();
            touched.insert(id.as_str(), e);
        }
        for w in &applied.windows {
            let Some(e) = touched.get_mut(w.entity.as_str()) else {
                continue;
            };
            if let Some(slot) = e.latest.get_mut(usize::from(w.resolution.tag())) {
                // A late merge into an older window must not replace a newer one.
                if slot.as_ref().is_none_or(|(ts, _)| *ts <= w.start_ms) {
                    *slot = Some((w.start_ms, w.metrics.clone()));
                }
            }
        }
        let now = Instant::now();
        for (id, e) in touched {
            self.inner
                .insert((kind, id.to_string()), (now, Arc::new(e)));
        }
    }

    /// The cached state of an entity, if present and fresh.
    pub fn get(&self, kind: EntityKind, id: &str) -> Option<Arc<EntityLatest>> {
        let (at, latest) = self.inner.get(&(kind, id.to_string()))?;
        self.fresh_for
            .is_none_or(|ttl| at.elapsed() <= ttl)
            .then_some(latest)
    }

    /// The cached state of an entity however old (answers while the store
    /// fails).
    pub fn get_any(&self, kind: EntityKind, id: &str) -> Option<Arc<EntityLatest>> {
        self.inner.get(&(kind, id.to_string())).map(|(_, l)| l)
    }

    /// Inserts an entity loaded from the store after a miss.
    pub fn insert(&self, kind: EntityKind, id: &str, latest: EntityLatest) -> Arc<EntityLatest> {
        let latest = Arc::new(latest);
        self.inner.insert(
            (kind, id.to_string()),
            (Instant::now(), Arc::clone(&latest)),
        );
        latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_a_shared_store_go_stale_but_stay() {
        let c = HotCache::with_ttl(10, Duration::from_millis(30));
        c.insert(EntityKind::Project, "SOL", EntityLatest::default());
        assert!(c.get(EntityKind::Project, "SOL").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get(EntityKind::Project, "SOL").is_none(), "stale");
        assert!(c.get_any(EntityKind::Project, "SOL").is_some(), "kept");
        let own = HotCache::new(10);
        own.insert(EntityKind::Project, "SOL", EntityLatest::default());
        std::thread::sleep(Duration::from_millis(60));
        assert!(own.get(EntityKind::Project, "SOL").is_some());
    }
}
