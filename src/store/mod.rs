//! Storage of per-entity time series behind the [`Store`] trait: the
//! embedded engine ([`embedded::EmbeddedStore`], fjall, the default) and
//! ScyllaDB ([`scylla::series::ScyllaStore`]). [`cache::HotCache`] (moka) keeps the latest windows of
//! every active entity in memory for hot lookups.
//!
//! Writes come in [`WindowBatch`]es, one per flush of one entity kind, and
//! are atomic: the windows, their 1-minute and 1-hour rollups, the entity
//! directory, the ids of the posts they counted and the kind's watermark are
//! committed together or not at all. That is what lets an aggregator
//! acknowledge its messages after a commit and never count a post twice.
//! Calls block; actors call them on their own threads, web handlers through
//! a blocking pool.

pub mod alerts;
pub mod cache;
pub mod embedded;
pub mod scylla;
pub mod summaries;
pub mod webhooks;

use crate::actors::aggregator::window::{Resolution, WindowMetrics};
use crate::domain::EntityKind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded engine failed.
    #[error("storage engine: {0}")]
    Engine(#[from] fjall::Error),
    /// A stored value could not be decoded.
    #[error("corrupt value under {key}: {message}")]
    Corrupt { key: String, message: String },
    /// A ScyllaDB request failed (after its retries).
    #[error("scylla: {what}: {message}")]
    Scylla {
        /// The statement or step.
        what: String,
        /// The driver's error.
        message: String,
        /// Whether it was a failure that may pass (overloaded, timed out,
        /// unavailable, unreachable) rather than a wrong request or schema.
        transient: bool,
    },
    /// A change lost to another writer: the row changed meanwhile, or this
    /// process no longer holds the claim that lets it write (alerts in a
    /// shared store). Read again before deciding anew.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The ScyllaDB keyspace lacks this build's schema.
    #[error("scylla schema: {0}")]
    Schema(String),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    Dir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the store may answer if asked again later (ScyllaDB
    /// overloaded, timed out, unreachable): an outage, not a wrong request.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Scylla {
                transient: true,
                ..
            }
        )
    }
}

/// A [`StoreError::Corrupt`] for the value under `key`.
pub(crate) fn corrupt(key: &[u8], e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    }
}

/// Decodes a JSON value stored under `key` (alerts, webhooks, summaries:
/// small values, readable in a dump).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    key: &[u8],
    v: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| corrupt(key, e))
}

/// Encodes a value as JSON for storage under `key`.
pub(crate) fn encode<T: serde::Serialize>(key: &[u8], value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| corrupt(key, e))
}

/// Everything one entity kind's aggregator commits in one flush.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowBatch {
    /// The kind every window of the batch belongs to.
    pub kind: Option<EntityKind>,
    /// 1-second window deltas, merged into what is stored.
    pub windows: Vec<WindowDelta>,
    /// Hashes of the posts counted, per 1-second window start (ms).
    pub seen: Vec<(i64, Vec<u64>)>,
    /// New watermark of the kind: windows before it (ms) are closed.
    pub watermark: Option<i64>,
}

/// What to add to one entity's 1-second window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowDelta {
    /// Window start, ms since the epoch (a whole second).
    pub start_ms: i64,
    /// Entity id within the batch's kind.
    pub entity: String,
    /// Counts to add.
    pub metrics: WindowMetrics,
}

/// What the store knows about one entity beyond its series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityRecord {
    /// Start of the first window it appeared in (ms).
    pub first_seen_ms: i64,
    /// Start of the latest window it appeared in (ms).
    pub last_seen_ms: i64,
    /// Totals over its whole life.
    pub totals: WindowMetrics,
}

/// One stored window after a commit (for the hot cache).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWindow {
    /// Entity id.
    pub entity: String,
    /// Resolution.
    pub resolution: Resolution,
    /// Window start (ms).
    pub start_ms: i64,
    /// Metrics after the merge.
    pub metrics: WindowMetrics,
}

/// What a committed batch changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Windows as stored after the merge.
    pub windows: Vec<StoredWindow>,
    /// Entity records as stored after the merge.
    pub records: Vec<(String, EntityRecord)>,
}

/// What a batch merges into: every window it touches at every resolution
/// and every entity record. An engine fills in the stored values, then
/// [`Merge::fold`] adds the batch's deltas (several deltas may hit one
/// rollup window, so they are merged in memory before anything is written).
#[derive(Debug)]
pub(crate) struct Merge<'a> {
    batch: &'a WindowBatch,
    /// Stored, then merged, window per (resolution, entity, window start).
    pub windows: HashMap<(Resolution, &'a str, i64), WindowMetrics>,
    /// Stored (`None`: new entity), then merged, record per entity.
    pub records: HashMap<&'a str, Option<EntityRecord>>,
}

impl<'a> Merge<'a> {
    /// The rows `batch` touches, empty.
    pub fn of(batch: &'a WindowBatch) -> Self {
        let mut m = Merge {
            batch,
            windows: HashMap::new(),
            records: HashMap::new(),
        };
        for d in &batch.windows {
            for res in Resolution::ALL {
                m.windows
                    .entry((res, d.entity.as_str(), res.window_start(d.start_ms)))
                    .or_default();
            }
            m.records.entry(d.entity.as_str()).or_default();
        }
        m
    }

    /// Adds the batch's deltas to the stored values.
    pub fn fold(&mut self) {
        for d in &self.batch.windows {
            for res in Resolution::ALL {
                let key = (res, d.entity.as_str(), res.window_start(d.start_ms));
                if let Some(m) = self.windows.get_mut(&key) {
                    m.merge(&d.metrics);
                }
            }
            if let Some(slot) = self.records.get_mut(d.entity.as_str()) {
                let r = slot.get_or_insert_with(|| EntityRecord {
                    first_seen_ms: d.start_ms,
                    last_seen_ms: d.start_ms,
                    totals: WindowMetrics::default(),
                });
                r.first_seen_ms = r.first_seen_ms.min(d.start_ms);
                r.last_seen_ms = r.last_seen_ms.max(d.start_ms);
                r.totals.merge(&d.metrics);
            }
        }
    }
}

/// Storage of time series, entity records and de-duplication marks.
pub trait Store: Send + Sync + 'static {
    /// Commits a batch atomically (see the module doc); returns what changed.
    fn apply(&self, batch: &WindowBatch) -> Result<Applied, StoreError>;

    /// Hashes of the posts already counted for `kind` in the 1-second window
    /// starting at `start_ms`, sorted.
    fn seen(&self, kind: EntityKind, start_ms: i64) -> Result<Vec<u64>, StoreError>;

    /// The kind's watermark: windows starting before it are closed.
    fn watermark(&self, kind: EntityKind) -> Result<Option<i64>, StoreError>;

    /// An entity's windows at `resolution` with start in `from_ms..=to_ms`, oldest first.
    fn series(
        &self,
        kind: EntityKind,
        id: &str,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, WindowMetrics)>, StoreError>;

    /// One entity's record.
    fn entity(&self, kind: EntityKind, id: &str) -> Result<Option<EntityRecord>, StoreError>;

    /// Every entity of a kind whose latest window starts at or after `since_ms`.
    fn entities(
        &self,
        kind: EntityKind,
        since_ms: i64,
    ) -> Result<Vec<(String, EntityRecord)>, StoreError>;

    /// Drops data older than its resolution's retention; returns the number
    /// of partitions dropped.
    fn expire(&self, now_ms: i64) -> Result<usize, StoreError>;

    /// Makes everything committed durable on disk.
    fn sync(&self) -> Result<(), StoreError>;

    /// Since when (ms since the epoch) the store has been failing, if it is
    /// now: its requests fail and no later one has succeeded.
    fn failing_since(&self) -> Option<i64> {
        None
    }
}
