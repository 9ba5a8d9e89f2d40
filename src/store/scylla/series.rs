//! Time series in ScyllaDB: [`ScyllaStore`] implements [`Store`].
//!
//! Every row has one writer: an entity's windows and record are written
//! only by the process that owns the entity's shard
//! (`aggregation.owned_shards`), so a window is stored as an **absolute
//! value** under a deterministic key and every write is idempotent (the
//! driver may repeat it). Counted post ids are one row each in a
//! partition per (kind, second) and are only ever inserted, so processes
//! that share a second never overwrite each other. Watermarks are kept
//! per owner.
//!
//! A [`WindowBatch`] spans many partitions, which ScyllaDB cannot commit
//! atomically without a logged batch. Instead the batch's result (the
//! merged values, not the deltas) is first written as **one row** of
//! `pending_batches` (one partition: atomic), then written out to its
//! tables, then that row is deleted. A crash in between leaves the row;
//! before the kind is read or written again the row is written out again,
//! which changes nothing already written (absolute values, inserts). So a
//! batch is either wholly lost before it was acknowledged (its posts are
//! redelivered) or wholly applied: nothing is counted twice.

use super::schema::{BLOCK_MS, DAY_MS, HOUR_MS};
use super::{Access, Cluster};
use crate::actors::aggregator::window::{Resolution, WindowMetrics};
use crate::config::StoreConfig;
use crate::domain::EntityKind;
use crate::store::{
    corrupt, Applied, EntityRecord, Merge, Store, StoreError, StoredWindow, WindowBatch,
};
use crate::telemetry::metrics;
use futures_util::future::try_join_all;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// Partitions of the entity directory per kind (an entity's bucket is a
/// hash of its id), so no partition holds every author.
const ENTITY_BUCKETS: i32 = 32;

/// Size of a batch's intent row above which a warning is logged.
const LARGE_BATCH: usize = 4 << 20;

/// Counted post ids per unlogged batch (one partition each).
const SEEN_PER_BATCH: usize = 256;

/// Span of one partition of a resolution's window table.
fn bucket_span(res: Resolution) -> i64 {
    match res {
        Resolution::Second => HOUR_MS,
        Resolution::Minute => DAY_MS,
        Resolution::Hour => BLOCK_MS,
    }
}

fn bucket_of(res: Resolution, start_ms: i64) -> i64 {
    start_ms.div_euclid(bucket_span(res))
}

fn entity_bucket(id: &str) -> i32 {
    (xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % ENTITY_BUCKETS as u64) as i32
}

fn kind_col(kind: EntityKind) -> i8 {
    kind.tag() as i8
}

fn window_table(res: Resolution) -> &'static str {
    match res {
        Resolution::Second => "windows_1s",
        Resolution::Minute => "windows_1m",
        Resolution::Hour => "windows_1h",
    }
}

/// The statements, with the keyspace filled in.
struct Cql {
    window_get: [String; 3],
    window_put: [String; 3],
    window_range: [String; 3],
    seen_put: String,
    seen_get: String,
    entity_get: String,
    entity_put: String,
    entity_bucket: String,
    watermark_get: String,
    watermark_put: String,
    pending_get: String,
    pending_put: String,
    pending_delete: String,
}

impl Cql {
    fn new(c: &Cluster) -> Cql {
        let per_res =
            |f: &dyn Fn(String) -> String| Resolution::ALL.map(|r| f(c.table(window_table(r))));
        Cql {
            window_get: per_res(&|t| {
                format!(
                    "SELECT metrics FROM {t} WHERE kind = ? AND id = ? AND bucket = ? AND start_ms = ?"
                )
            }),
            window_put: per_res(&|t| {
                format!("INSERT INTO {t} (kind, id, bucket, start_ms, metrics) VALUES (?, ?, ?, ?, ?)")
            }),
            window_range: per_res(&|t| {
                format!(
                    "SELECT start_ms, metrics FROM {t} WHERE kind = ? AND id = ? AND bucket = ? \
                     AND start_ms >= ? AND start_ms <= ?"
                )
            }),
            seen_put: format!(
                "INSERT INTO {} (kind, start_ms, hash) VALUES (?, ?, ?)",
                c.table("seen")
            ),
            seen_get: format!(
                "SELECT hash FROM {} WHERE kind = ? AND start_ms = ?",
                c.table("seen")
            ),
            entity_get: format!(
                "SELECT first_seen_ms, last_seen_ms, totals FROM {} \
                 WHERE kind = ? AND bucket = ? AND id = ?",
                c.table("entities")
            ),
            entity_put: format!(
                "INSERT INTO {} (kind, bucket, id, first_seen_ms, last_seen_ms, totals) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                c.table("entities")
            ),
            entity_bucket: format!(
                "SELECT id, first_seen_ms, last_seen_ms, totals FROM {} WHERE kind = ? AND bucket = ?",
                c.table("entities")
            ),
            watermark_get: format!(
                "SELECT watermark_ms FROM {} WHERE kind = ? AND owner = ?",
                c.table("watermarks")
            ),
            watermark_put: format!(
                "INSERT INTO {} (kind, owner, watermark_ms) VALUES (?, ?, ?)",
                c.table("watermarks")
            ),
            pending_get: format!(
                "SELECT batch FROM {} WHERE kind = ? AND owner = ?",
                c.table("pending_batches")
            ),
            pending_put: format!(
                "INSERT INTO {} (kind, owner, batch) VALUES (?, ?, ?)",
                c.table("pending_batches")
            ),
            pending_delete: format!(
                "DELETE FROM {} WHERE kind = ? AND owner = ?",
                c.table("pending_batches")
            ),
        }
    }
}

/// What a batch writes: merged absolute values (replaying it is harmless).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Outcome {
    windows: Vec<(Resolution, String, i64, WindowMetrics)>,
    records: Vec<(String, EntityRecord)>,
    seen: Vec<(i64, Vec<u64>)>,
    watermark: Option<i64>,
}

/// The ScyllaDB-backed store of time series.
pub struct ScyllaStore {
    cluster: Arc<Cluster>,
    cql: Arc<Cql>,
    /// Who writes the watermark and half-written batches (the shards it owns).
    owner: String,
    /// Kinds whose half-written batch (if any) was written out by this process.
    recovered: Mutex<HashSet<EntityKind>>,
    /// Oldest window start kept per resolution, as an age (ms): reads skip
    /// partitions the TTL has emptied.
    retention_ms: [i64; 3],
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("cluster", &self.cluster)
            .field("owner", &self.owner)
            .finish()
    }
}

type Row3 = (i64, i64, Vec<u8>);

/// An entity directory row: id, first and last seen, totals.
type EntityRow = (String, i64, i64, Vec<u8>);

/// One write of a batch, run concurrently with the others.
type Pending<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Rows one read returns, run concurrently with the others.
type Reading<'a, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<R>, StoreError>> + Send + 'a>>;

impl ScyllaStore {
    /// The store on `cluster` (schema checked by the caller), written by
    /// the process owning `shards`.
    pub fn new(cluster: Arc<Cluster>, cfg: &StoreConfig, shards: &[u16]) -> ScyllaStore {
        let hours = |h: u64| i64::try_from(h).unwrap_or(i64::MAX / HOUR_MS) * HOUR_MS;
        let owner = shards
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        ScyllaStore {
            cql: Arc::new(Cql::new(&cluster)),
            cluster,
            owner,
            recovered: Mutex::new(HashSet::new()),
            retention_ms: [
                hours(cfg.retention_1s_hours),
                hours(cfg.retention_1m_days * 24),
                hours(cfg.retention_1h_days * 24),
            ],
        }
    }

    /// Every statement it runs (`prepare_all` checks them on a live cluster).
    pub fn statements(&self) -> Vec<String> {
        let q = &self.cql;
        let mut all: Vec<String> = [&q.window_get, &q.window_put, &q.window_range]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        all.extend(
            [
                &q.seen_put,
                &q.seen_get,
                &q.entity_get,
                &q.entity_put,
                &q.entity_bucket,
                &q.watermark_get,
                &q.watermark_put,
                &q.pending_get,
                &q.pending_put,
                &q.pending_delete,
            ]
            .map(String::clone),
        );
        all
    }

    /// Writes out `kind`'s half-written batch, if one is left, once per
    /// process (and again after a failed apply).
    fn recover(&self, kind: EntityKind) -> Result<(), StoreError> {
        if self.recovered.lock().contains(&kind) {
            return Ok(());
        }
        let (c, q, owner) = (self.cluster.clone(), self.cql.clone(), self.owner.clone());
        let replayed = self.cluster.block(async move {
            let rows: Vec<(Vec<u8>,)> = c
                .select(&q.pending_get, (kind_col(kind), owner.clone()))
                .await?;
            let Some((blob,)) = rows.into_iter().next() else {
                return Ok(false);
            };
            let outcome: Outcome =
                postcard::from_bytes(&blob).map_err(|e| corrupt(b"pending_batches", e))?;
            write_out(&c, &q, kind, &owner, &outcome).await?;
            c.execute(&q.pending_delete, Access::Write, (kind_col(kind), owner))
                .await?;
            Ok::<_, StoreError>(true)
        })??;
        if replayed {
            metrics::SCYLLA_REPLAYED_BATCHES.inc();
            tracing::warn!(?kind, owner = %self.owner, "wrote out a half-written window batch");
        }
        self.recovered.lock().insert(kind);
        Ok(())
    }
}

/// Writes every row of `o` (idempotent: absolute values and inserts).
async fn write_out(
    c: &Arc<Cluster>,
    q: &Arc<Cql>,
    kind: EntityKind,
    owner: &str,
    o: &Outcome,
) -> Result<(), StoreError> {
    let k = kind_col(kind);
    let mut writes: Vec<Pending<'_>> = Vec::new();
    for (res, id, start, m) in &o.windows {
        let cql = &q.window_put[usize::from(res.tag())];
        let row = (k, id.clone(), bucket_of(*res, *start), *start, m.encode());
        writes.push(Box::pin(async move {
            c.execute(cql, Access::Write, row).await.map(drop)
        }));
    }
    for (id, r) in &o.records {
        let totals = postcard::to_allocvec(&r.totals).unwrap_or_default();
        let row = (
            k,
            entity_bucket(id),
            id.clone(),
            r.first_seen_ms,
            r.last_seen_ms,
            totals,
        );
        writes.push(Box::pin(async move {
            c.execute(&q.entity_put, Access::Write, row).await.map(drop)
        }));
    }
    for (start, hashes) in &o.seen {
        for chunk in hashes.chunks(SEEN_PER_BATCH) {
            let rows: Vec<(i8, i64, i64)> = chunk.iter().map(|h| (k, *start, *h as i64)).collect();
            writes.push(Box::pin(async move { c.batch(&q.seen_put, rows).await }));
        }
    }
    try_join_all(writes).await?;
    if let Some(wm) = o.watermark {
        c.execute(&q.watermark_put, Access::Write, (k, owner.to_string(), wm))
            .await?;
    }
    Ok(())
}

fn decode_metrics(bytes: &[u8]) -> Result<WindowMetrics, StoreError> {
    WindowMetrics::decode(bytes).map_err(|e| corrupt(b"window", e))
}

fn record_of((first, last, totals): Row3) -> Result<EntityRecord, StoreError> {
    Ok(EntityRecord {
        first_seen_ms: first,
        last_seen_ms: last,
        totals: postcard::from_bytes(&totals).map_err(|e| corrupt(b"entity", e))?,
    })
}

impl Store for ScyllaStore {
    fn apply(&self, batch: &WindowBatch) -> Result<Applied, StoreError> {
        let Some(kind) = batch.kind else {
            return Ok(Applied::default());
        };
        self.recover(kind)?;
        let (c, q, owner, batch) = (
            self.cluster.clone(),
            self.cql.clone(),
            self.owner.clone(),
            batch.clone(),
        );
        let result = self.cluster.block(async move {
            let outcome = merge(&c, &q, kind, &owner, &batch).await?;
            let blob = postcard::to_allocvec(&outcome).map_err(|e| corrupt(b"batch", e))?;
            if blob.len() > LARGE_BATCH {
                // ScyllaDB refuses a mutation over half a commit-log segment
                // (16 MiB by default) and warns from 1 MiB.
                tracing::warn!(
                    ?kind,
                    bytes = blob.len(),
                    windows = outcome.windows.len(),
                    "large window batch: flush more often (aggregation.flush_interval_ms)"
                );
            }
            c.execute(
                &q.pending_put,
                Access::Write,
                (kind_col(kind), owner.clone(), blob),
            )
            .await?;
            write_out(&c, &q, kind, &owner, &outcome).await?;
            c.execute(&q.pending_delete, Access::Write, (kind_col(kind), owner))
                .await?;
            Ok::<_, StoreError>(outcome)
        });
        match result {
            Ok(Ok(o)) => Ok(Applied {
                windows: o
                    .windows
                    .into_iter()
                    .map(|(resolution, entity, start_ms, metrics)| StoredWindow {
                        entity,
                        resolution,
                        start_ms,
                        metrics,
                    })
                    .collect(),
                records: o.records,
            }),
            Ok(Err(e)) | Err(e) => {
                // The batch may be half-written: write it out before the
                // kind is used again.
                self.recovered.lock().remove(&kind);
                Err(e)
            }
        }
    }

    fn seen(&self, kind: EntityKind, start_ms: i64) -> Result<Vec<u64>, StoreError> {
        self.recover(kind)?;
        let (c, q) = (self.cluster.clone(), self.cql.clone());
        let rows: Vec<(i64,)> = self
            .cluster
            .block(async move { c.select(&q.seen_get, (kind_col(kind), start_ms)).await })??;
        let mut out: Vec<u64> = rows.into_iter().map(|(h,)| h as u64).collect();
        out.sort_unstable();
        Ok(out)
    }

    fn watermark(&self, kind: EntityKind) -> Result<Option<i64>, StoreError> {
        self.recover(kind)?;
        let (c, q, owner) = (self.cluster.clone(), self.cql.clone(), self.owner.clone());
        let rows: Vec<(i64,)> = self
            .cluster
            .block(async move { c.select(&q.watermark_get, (kind_col(kind), owner)).await })??;
        Ok(rows.first().map(|(w,)| *w))
    }

    fn series(
        &self,
        kind: EntityKind,
        id: &str,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, WindowMetrics)>, StoreError> {
        // Partitions older than the retention are empty (TTL): skip them.
        let oldest = chrono::Utc::now().timestamp_millis()
            - self.retention_ms[usize::from(resolution.tag())]
            - bucket_span(resolution);
        let from_ms = from_ms.max(oldest);
        if from_ms > to_ms {
            return Ok(Vec::new());
        }
        let (c, q, id) = (self.cluster.clone(), self.cql.clone(), id.to_string());
        let buckets = bucket_of(resolution, from_ms)..=bucket_of(resolution, to_ms);
        let parts = self.cluster.block(async move {
            let cql = &q.window_range[usize::from(resolution.tag())];
            let c = &c;
            let mut reads: Vec<Reading<'_, (i64, Vec<u8>)>> = Vec::new();
            for b in buckets {
                let row = (kind_col(kind), id.clone(), b, from_ms, to_ms);
                reads.push(Box::pin(async move { c.select(cql, row).await }));
            }
            try_join_all(reads).await
        })??;
        let mut out = Vec::new();
        for part in parts {
            // Each partition is newest first.
            for (start, m) in part.into_iter().rev() {
                out.push((start, decode_metrics(&m)?));
            }
        }
        Ok(out)
    }

    fn entity(&self, kind: EntityKind, id: &str) -> Result<Option<EntityRecord>, StoreError> {
        let (c, q, id) = (self.cluster.clone(), self.cql.clone(), id.to_string());
        let rows: Vec<Row3> = self.cluster.block(async move {
            c.select(&q.entity_get, (kind_col(kind), entity_bucket(&id), id))
                .await
        })??;
        rows.into_iter().next().map(record_of).transpose()
    }

    fn entities(
        &self,
        kind: EntityKind,
        since_ms: i64,
    ) -> Result<Vec<(String, EntityRecord)>, StoreError> {
        let (c, q) = (self.cluster.clone(), self.cql.clone());
        let parts = self.cluster.block(async move {
            let (c, q) = (&c, &q);
            let mut reads: Vec<Reading<'_, EntityRow>> = Vec::new();
            for b in 0..ENTITY_BUCKETS {
                let row = (kind_col(kind), b);
                reads.push(Box::pin(
                    async move { c.select(&q.entity_bucket, row).await },
                ));
            }
            try_join_all(reads).await
        })??;
        let mut out = Vec::new();
        for (id, first, last, totals) in parts.into_iter().flatten() {
            if last >= since_ms {
                out.push((id, record_of((first, last, totals))?));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn expire(&self, _now_ms: i64) -> Result<usize, StoreError> {
        // Each table's default TTL expires its rows; TWCS drops whole
        // SSTables once everything in them has expired.
        Ok(0)
    }

    fn sync(&self) -> Result<(), StoreError> {
        // A write returned only once `write_consistency` replicas had it.
        Ok(())
    }

    fn failing_since(&self) -> Option<i64> {
        self.cluster.failing_since()
    }
}

/// Reads what `batch` merges into and returns the merged values.
async fn merge(
    c: &Arc<Cluster>,
    q: &Arc<Cql>,
    kind: EntityKind,
    owner: &str,
    batch: &WindowBatch,
) -> Result<Outcome, StoreError> {
    let k = kind_col(kind);
    let mut merge = Merge::of(batch);
    // Current values, read concurrently (bounded by the cluster's permits).
    let keys: Vec<(Resolution, &str, i64)> = merge.windows.keys().copied().collect();
    let mut reads: Vec<Reading<'_, (Vec<u8>,)>> = Vec::with_capacity(keys.len());
    for &(res, id, start) in &keys {
        let cql = &q.window_get[usize::from(res.tag())];
        let row = (k, id.to_string(), bucket_of(res, start), start);
        reads.push(Box::pin(async move { c.select(cql, row).await }));
    }
    let current = try_join_all(reads).await?;
    for (key, found) in keys.iter().zip(current) {
        if let (Some(slot), Some((bytes,))) = (merge.windows.get_mut(key), found.first()) {
            *slot = decode_metrics(bytes)?;
        }
    }
    let ids: Vec<&str> = merge.records.keys().copied().collect();
    let mut reads: Vec<Reading<'_, Row3>> = Vec::with_capacity(ids.len());
    for id in &ids {
        let row = (k, entity_bucket(id), id.to_string());
        reads.push(Box::pin(async move { c.select(&q.entity_get, row).await }));
    }
    let current = try_join_all(reads).await?;
    for (id, found) in ids.iter().zip(current) {
        if let Some(row) = found.into_iter().next() {
            merge.records.insert(id, Some(record_of(row)?));
        }
    }
    merge.fold();
    let watermark = match batch.watermark {
        Some(wm) => {
            let have: Vec<(i64,)> = c.select(&q.watermark_get, (k, owner.to_string())).await?;
            have.first().is_none_or(|(c,)| wm > *c).then_some(wm)
        }
        None => None,
    };
    Ok(Outcome {
        windows: merge
            .windows
            .into_iter()
            .map(|((res, id, start), m)| (res, id.to_string(), start, m))
            .collect(),
        records: merge
            .records
            .into_iter()
            .filter_map(|(id, r)| r.map(|r| (id.to_string(), r)))
            .collect(),
        seen: batch
            .seen
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .cloned()
            .collect(),
        watermark,
    })
}
