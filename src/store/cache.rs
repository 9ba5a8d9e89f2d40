//! The hot-metrics cache (moka): for every recently active entity, its
//! record and its latest window at each resolution, refreshed by the store
//! writer after every commit. Lookups that hit it do not touch the store.

use super::{Applied, EntityRecord};
use crate::actors::aggregator::window::{Resolution, WindowMetrics};
use crate::domain::EntityKind;
use moka::sync::Cache;
use std::sync::Arc;

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

/// The moka cache keyed by entity.
#[derive(Clone)]
pub struct HotCache {
    inner: Cache<(EntityKind, String), Arc<EntityLatest>>,
}

impl HotCache {
    /// A cache holding at most `entries` entities.
    pub fn new(entries: u64) -> Self {
        HotCache {
            inner: Cache::new(entries),
        }
    }

    /// A cache whose entries expire `ttl` after they were written (the
    /// store is shared with other processes).
    pub fn with_ttl(entries: u64, ttl: std::time::Duration) -> Self {
        HotCache {
            inner: Cache::builder()
                .max_capacity(entries)
                .time_to_live(ttl)
                .build(),
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
                .map(|a| (*a).clone())
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
        for (id, e) in touched {
            self.inner.insert((kind, id.to_string()), Arc::new(e));
        }
    }

    /// The cached state of an entity, if present.
    pub fn get(&self, kind: EntityKind, id: &str) -> Option<Arc<EntityLatest>> {
        self.inner.get(&(kind, id.to_string()))
    }

    /// Inserts an entity loaded from the store after a miss.
    pub fn insert(&self, kind: EntityKind, id: &str, latest: EntityLatest) -> Arc<EntityLatest> {
        let latest = Arc::new(latest);
        self.inner
            .insert((kind, id.to_string()), Arc::clone(&latest));
        latest
    }
}
