//! Storage of entity summaries behind [`SummaryStore`];
//! [`EmbeddedSummaries`] keeps them in the embedded store's fjall database.
//!
//! Keyspace `summaries`: `entity prefix | !to_ms (8, BE) | from_ms (8, BE)`
//! → [`Summary`] as JSON, so an entity's summaries are listed newest window
//! first with one range scan and a summary of the same window replaces the
//! previous one.

use super::embedded::{entity_prefix, persist_mode, ts_bytes, EmbeddedStore};
use super::{decode, encode, StoreError};
use crate::domain::EntityRef;
use crate::summary::model::Summary;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};

/// Stored summaries.
pub trait SummaryStore: Send + Sync + 'static {
    /// Stores a summary (replacing one of the same entity and window).
    fn save(&self, summary: &Summary) -> Result<(), StoreError>;

    /// The entity's summary whose window ends last.
    fn latest(&self, entity: &EntityRef) -> Result<Option<Summary>, StoreError>;

    /// The entity's newest summary whose window lies within
    /// `from_ms..=to_ms`.
    fn within(
        &self,
        entity: &EntityRef,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<Summary>, StoreError>;

    /// Drops summaries whose window ended before `before_ms`; returns how
    /// many.
    fn expire(&self, before_ms: i64) -> Result<usize, StoreError>;
}

/// Summaries in the embedded store's database.
pub struct EmbeddedSummaries {
    db: Database,
    summaries: Keyspace,
    fsync: bool,
}

/// Newest window end first: the bitwise complement of the order-preserving
/// timestamp bytes.
fn newest_first(to_ms: i64) -> [u8; 8] {
    ts_bytes(to_ms).map(|b| !b)
}

fn key(entity: &EntityRef, from_ms: i64, to_ms: i64) -> Vec<u8> {
    let mut k = entity_prefix(entity.kind, &entity.id);
    k.extend_from_slice(&newest_first(to_ms));
    k.extend_from_slice(&ts_bytes(from_ms));
    k
}

impl EmbeddedSummaries {
    /// Opens the summary keyspace in `store`'s database.
    pub fn open(store: &EmbeddedStore) -> Result<Self, StoreError> {
        let db = store.database().clone();
        let summaries = db.keyspace("summaries", KeyspaceCreateOptions::default)?;
        Ok(EmbeddedSummaries {
            db,
            summaries,
            fsync: store.fsync(),
        })
    }

    /// The entity's summaries, newest window end first, from the first whose
    /// window ends at or before `to_ms`.
    fn newest_from(
        &self,
        entity: &EntityRef,
        to_ms: i64,
    ) -> impl Iterator<Item = Result<Summary, StoreError>> + '_ {
        let prefix = entity_prefix(entity.kind, &entity.id);
        let mut start = prefix.clone();
        start.extend_from_slice(&newest_first(to_ms));
        self.summaries
            .range(start..)
            .map(|guard| {
                let (k, v) = guard.into_inner()?;
                Ok((k, v))
            })
            .take_while(move |kv: &Result<_, StoreError>| {
                kv.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix))
            })
            .map(|kv| kv.and_then(|(k, v)| decode(&k, &v)))
    }
}

impl SummaryStore for EmbeddedSummaries {
    fn save(&self, summary: &Summary) -> Result<(), StoreError> {
        let k = key(&summary.entity, summary.from_ms, summary.to_ms);
        let mut wb = self.db.batch().durability(Some(persist_mode(self.fsync)));
        wb.insert(&self.summaries, k.clone(), encode(&k, summary)?);
        wb.commit()?;
        Ok(())
    }

    fn latest(&self, entity: &EntityRef) -> Result<Option<Summary>, StoreError> {
        self.newest_from(entity, i64::MAX).next().transpose()
    }

    fn within(
        &self,
        entity: &EntityRef,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<Summary>, StoreError> {
        for s in self.newest_from(entity, to_ms) {
            let s = s?;
            if s.to_ms < from_ms {
                break;
            }
            if s.from_ms >= from_ms {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    fn expire(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut wb = self.db.batch().durability(Some(persist_mode(self.fsync)));
        let mut dropped = 0;
        for guard in self.summaries.iter() {
            let (k, v) = guard.into_inner()?;
            let s: Summary = decode(&k, &v)?;
            if s.to_ms < before_ms {
                wb.remove(&self.summaries, k);
                dropped += 1;
            }
        }
        if dropped > 0 {
            wb.commit()?;
        }
        Ok(dropped)
    }
}
