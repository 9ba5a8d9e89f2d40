//! The embedded store: fjall (an LSM engine) in one directory.
//!
//! Layout:
//! - Windows live in keyspaces partitioned by time, one per resolution and
//!   period: `w1s.<hour>`, `w1m.<day>`, `w1h.<30-day block>`. Retention drops
//!   whole keyspaces, which costs nothing compared with deleting rows.
//!   Key: `kind tag (1) | id length (2, BE) | id | window start (8, BE, sign-flipped)`,
//!   so one entity's windows are contiguous and ordered by time.
//! - `entities`: `kind tag | id` → [`EntityRecord`].
//! - `seen.<day>`: `kind tag | window start` → sorted post-id hashes counted
//!   in that window (de-duplication of late and redelivered posts).
//! - `meta`: `wm | kind tag` → the kind's watermark.
//!
//! Values are postcard. A batch is read-merge-written under one lock and
//! committed as one fjall write batch (atomic across keyspaces), flushed to
//! the OS before `apply` returns (fsynced too with `store.fsync`).

use super::{corrupt, Applied, EntityRecord, Merge, Store, StoreError, StoredWindow, WindowBatch};
use crate::actors::aggregator::window::{Resolution, WindowMetrics};
use crate::config::StoreConfig;
use crate::domain::EntityKind;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::Path;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const BLOCK_MS: i64 = 30 * DAY_MS;

/// Which family of partitioned keyspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    Window(Resolution),
    Seen,
}

impl Family {
    const ALL: [Family; 4] = [
        Family::Window(Resolution::Second),
        Family::Window(Resolution::Minute),
        Family::Window(Resolution::Hour),
        Family::Seen,
    ];

    fn prefix(self) -> &'static str {
        match self {
            Family::Window(Resolution::Second) => "w1s",
            Family::Window(Resolution::Minute) => "w1m",
            Family::Window(Resolution::Hour) => "w1h",
            Family::Seen => "seen",
        }
    }

    /// Length of one partition.
    fn span_ms(self) -> i64 {
        match self {
            Family::Window(Resolution::Second) => HOUR_MS,
            Family::Window(Resolution::Minute) | Family::Seen => DAY_MS,
            Family::Window(Resolution::Hour) => BLOCK_MS,
        }
    }

    fn partition(self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.span_ms())
    }

    fn name(self, partition: i64) -> String {
        format!("{}.{}", self.prefix(), partition)
    }

    fn parse(name: &str) -> Option<(Family, i64)> {
        let (prefix, n) = name.split_once('.')?;
        let family = Family::ALL.into_iter().find(|f| f.prefix() == prefix)?;
        Some((family, n.parse().ok()?))
    }
}

/// The fjall-backed store.
pub struct EmbeddedStore {
    db: Database,
    entities: Keyspace,
    meta: Keyspace,
    partitions: RwLock<HashMap<(Family, i64), Keyspace>>,
    /// Serialises read-merge-write batches.
    write_lock: Mutex<()>,
    fsync: bool,
    retention_ms: HashMap<Family, i64>,
    /// Largest memtable of a keyspace, in bytes (`store.memtable_mib`).
    memtable: u64,
}

pub(super) fn ts_bytes(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn ts_from(bytes: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

pub(super) fn entity_prefix(kind: EntityKind, id: &str) -> Vec<u8> {
    let id = id.as_bytes();
    let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    let id = &id[..usize::from(len)];
    let mut k = Vec::with_capacity(3 + id.len() + 8);
    k.push(kind.tag());
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(id);
    k
}

fn window_key(kind: EntityKind, id: &str, start_ms: i64) -> Vec<u8> {
    let mut k = entity_prefix(kind, id);
    k.extend_from_slice(&ts_bytes(start_ms));
    k
}

fn record_key(kind: EntityKind, id: &str) -> Vec<u8> {
    let mut k = vec![kind.tag()];
    k.extend_from_slice(id.as_bytes());
    k
}

fn seen_key(kind: EntityKind, start_ms: i64) -> Vec<u8> {
    let mut k = vec![kind.tag()];
    k.extend_from_slice(&ts_bytes(start_ms));
    k
}

fn watermark_key(kind: EntityKind) -> Vec<u8> {
    vec![b'w', b'm', kind.tag()]
}

/// How a commit is made durable: `fsync` waits for the disk, otherwise the
/// write-ahead log is buffered (flushed by fjall in the background).
pub(crate) fn persist_mode(fsync: bool) -> fjall::PersistMode {
    if fsync {
        fjall::PersistMode::SyncAll
    } else {
        fjall::PersistMode::Buffer
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| corrupt(key, e))
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `cfg.data_dir`.
    pub fn open(cfg: &StoreConfig) -> Result<Self, StoreError> {
        Self::open_at(&cfg.data_dir, cfg)
    }

    /// The underlying fjall database, for the stores that share its
    /// directory and write-ahead log ([`super::alerts::EmbeddedAlerts`]).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// Whether commits are fsynced.
    pub(crate) fn fsync(&self) -> bool {
        self.fsync
    }

    /// Opens (or creates) the store in `dir` with `cfg`'s other settings.
    pub fn open_at(dir: &Path, cfg: &StoreConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let db = Database::builder(dir.join("fjall"))
            .cache_size(cfg.block_cache_mib * 1024 * 1024)
            .open()?;
        let memtable = cfg.memtable_mib.max(1) * 1024 * 1024;
        let options = move || KeyspaceCreateOptions::default().max_memtable_size(memtable);
        let entities = db.keyspace("entities", options)?;
        let meta = db.keyspace("meta", options)?;
        let mut partitions = HashMap::new();
        for name in db.list_keyspace_names() {
            if let Some(key) = Family::parse(&name) {
                partitions.insert(key, db.keyspace(&name, options)?);
            }
        }
        let hours = |h: u64| i64::try_from(h).unwrap_or(i64::MAX / HOUR_MS) * HOUR_MS;
        let retention_ms = HashMap::from([
            (
                Family::Window(Resolution::Second),
                hours(cfg.retention_1s_hours),
            ),
            (
                Family::Window(Resolution::Minute),
                hours(cfg.retention_1m_days * 24),
            ),
            (
                Family::Window(Resolution::Hour),
                hours(cfg.retention_1h_days * 24),
            ),
            // A post can be de-duplicated as long as any of its windows is kept.
            (Family::Seen, hours(cfg.retention_1h_days * 24)),
        ]);
        Ok(EmbeddedStore {
            db,
            entities,
            meta,
            partitions: RwLock::new(partitions),
            write_lock: Mutex::new(()),
            fsync: cfg.fsync,
            retention_ms,
            memtable,
        })
    }

    fn partition(&self, family: Family, ts_ms: i64) -> Result<Keyspace, StoreError> {
        let key = (family, family.partition(ts_ms));
        if let Some(ks) = self.partitions.read().get(&key) {
            return Ok(ks.clone());
        }
        let mut w = self.partitions.write();
        if let Some(ks) = w.get(&key) {
            return Ok(ks.clone());
        }
        let memtable = self.memtable;
        let ks = self.db.keyspace(&family.name(key.1), move || {
            KeyspaceCreateOptions::default().max_memtable_size(memtable)
        })?;
        w.insert(key, ks.clone());
        Ok(ks)
    }

    fn existing_partition(&self, family: Family, ts_ms: i64) -> Option<Keyspace> {
        self.partitions
            .read()
            .get(&(family, family.partition(ts_ms)))
            .cloned()
    }

    fn read_window(&self, ks: &Keyspace, key: &[u8]) -> Result<WindowMetrics, StoreError> {
        match ks.get(key)? {
            Some(v) => decode(key, &v),
            None => Ok(WindowMetrics::default()),
        }
    }
}

impl Store for EmbeddedStore {
    fn apply(&self, batch: &WindowBatch) -> Result<Applied, StoreError> {
        let Some(kind) = batch.kind else {
            return Ok(Applied::default());
        };
        let _guard = self.write_lock.lock();
        let mut merge = Merge::of(batch);
        let mut slots: HashMap<(Resolution, &str, i64), (Keyspace, Vec<u8>)> = HashMap::new();
        for (&(res, entity, start), m) in merge.windows.iter_mut() {
            let ks = self.partition(Family::Window(res), start)?;
            let key = window_key(kind, entity, start);
            *m = self.read_window(&ks, &key)?;
            slots.insert((res, entity, start), (ks, key));
        }
        for (entity, r) in merge.records.iter_mut() {
            let key = record_key(kind, entity);
            if let Some(v) = self.entities.get(&key)? {
                *r = Some(decode(&key, &v)?);
            }
        }
        merge.fold();
        // Every commit leaves the process before we return (a process crash
        // then loses nothing acknowledged); with `fsync` it reaches the disk.
        let mut wb = self.db.batch().durability(Some(persist_mode(self.fsync)));
        let mut applied = Applied::default();
        for (slot, metrics) in merge.windows {
            let Some((ks, key)) = slots.remove(&slot) else {
                continue;
            };
            wb.insert(&ks, key, metrics.encode());
            let (resolution, entity, start_ms) = slot;
            applied.windows.push(StoredWindow {
                entity: entity.to_string(),
                resolution,
                start_ms,
                metrics,
            });
        }
        for (entity, record) in merge.records {
            let Some(record) = record else { continue };
            wb.insert(&self.entities, record_key(kind, entity), encode(&record));
            applied.records.push((entity.to_string(), record));
        }
        for (start, hashes) in &batch.seen {
            if hashes.is_empty() {
                continue;
            }
            let ks = self.partition(Family::Seen, *start)?;
            let key = seen_key(kind, *start);
            let mut all: Vec<u64> = match ks.get(&key)? {
                Some(v) => decode(&key, &v)?,
                None => Vec::new(),
            };
            all.extend_from_slice(hashes);
            all.sort_unstable();
            all.dedup();
            wb.insert(&ks, key, encode(&all));
        }
        if let Some(wm) = batch.watermark {
            let key = watermark_key(kind);
            let current: Option<i64> = match self.meta.get(&key)? {
                Some(v) => Some(decode(&key, &v)?),
                None => None,
            };
            if current.is_none_or(|c| wm > c) {
                wb.insert(&self.meta, key, encode(&wm));
            }
        }
        wb.commit()?;
        Ok(applied)
    }

    fn seen(&self, kind: EntityKind, start_ms: i64) -> Result<Vec<u64>, StoreError> {
        let Some(ks) = self.existing_partition(Family::Seen, start_ms) else {
            return Ok(Vec::new());
        };
        let key = seen_key(kind, start_ms);
        match ks.get(&key)? {
            Some(v) => decode(&key, &v),
            None => Ok(Vec::new()),
        }
    }

    fn watermark(&self, kind: EntityKind) -> Result<Option<i64>, StoreError> {
        let key = watermark_key(kind);
        match self.meta.get(&key)? {
            Some(v) => Ok(Some(decode(&key, &v)?)),
            None => Ok(None),
        }
    }

    fn series(
        &self,
        kind: EntityKind,
        id: &str,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, WindowMetrics)>, StoreError> {
        let family = Family::Window(resolution);
        let (first, last) = (family.partition(from_ms), family.partition(to_ms));
        let mut parts: Vec<(i64, Keyspace)> = self
            .partitions
            .read()
            .iter()
            .filter(|((f, p), _)| *f == family && *p >= first && *p <= last)
            .map(|((_, p), ks)| (*p, ks.clone()))
            .collect();
        parts.sort_by_key(|(p, _)| *p);
        let lo = window_key(kind, id, from_ms);
        let hi = window_key(kind, id, to_ms);
        let mut out = Vec::new();
        for (_, ks) in parts {
            for guard in ks.range(lo.as_slice()..=hi.as_slice()) {
                let (k, v) = guard.into_inner()?;
                let ts = k
                    .len()
                    .checked_sub(8)
                    .and_then(|at| ts_from(&k[at..]))
                    .ok_or_else(|| corrupt(&k, "short key"))?;
                out.push((ts, decode(&k, &v)?));
            }
        }
        Ok(out)
    }

    fn entity(&self, kind: EntityKind, id: &str) -> Result<Option<EntityRecord>, StoreError> {
        let key = record_key(kind, id);
        match self.entities.get(&key)? {
            Some(v) => Ok(Some(decode(&key, &v)?)),
            None => Ok(None),
        }
    }

    fn entities(
        &self,
        kind: EntityKind,
        since_ms: i64,
    ) -> Result<Vec<(String, EntityRecord)>, StoreError> {
        let mut out = Vec::new();
        for guard in self.entities.prefix([kind.tag()]) {
            let (k, v) = guard.into_inner()?;
            let record: EntityRecord = decode(&k, &v)?;
            if record.last_seen_ms >= since_ms {
                let id = String::from_utf8_lossy(&k[1..]).into_owned();
                out.push((id, record));
            }
        }
        Ok(out)
    }

    fn expire(&self, now_ms: i64) -> Result<usize, StoreError> {
        let doomed: Vec<((Family, i64), Keyspace)> = {
            let parts = self.partitions.read();
            parts
                .iter()
                .filter(|((family, p), _)| {
                    let end = (p + 1).saturating_mul(family.span_ms());
                    let keep = self.retention_ms.get(family).copied().unwrap_or(i64::MAX);
                    end < now_ms.saturating_sub(keep)
                })
                .map(|(k, ks)| (*k, ks.clone()))
                .collect()
        };
        let _guard = self.write_lock.lock();
        let mut dropped = 0;
        for (key, ks) in doomed {
            self.partitions.write().remove(&key);
            self.db.delete_keyspace(ks)?;
            dropped += 1;
            tracing::info!(partition = %key.0.name(key.1), "retention dropped partition");
        }
        crate::telemetry::metrics::STORE_EXPIRED_PARTITIONS.add(dropped as u64);
        Ok(dropped)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}
