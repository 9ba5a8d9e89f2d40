//! Summaries in ScyllaDB: [`ScyllaSummaries`] implements [`SummaryStore`].
//!
//! Table `summaries`, partition per entity, clustered by window end newest
//! first: `latest` reads one row, `within` one slice. A summary of the same
//! window replaces the previous one (same key). Retention is the table's
//! TTL (`summaries.retention_days`, set by `migrate`), so `expire` has
//! nothing to do.

use super::{json, parse, Access, Cluster};
use crate::domain::EntityRef;
use crate::store::summaries::SummaryStore;
use crate::store::StoreError;
use crate::summary::model::Summary;
use std::sync::Arc;

/// Summaries in the cluster's keyspace.
#[derive(Debug)]
pub struct ScyllaSummaries {
    cluster: Arc<Cluster>,
    put: Arc<str>,
    latest: Arc<str>,
    within: Arc<str>,
}

impl ScyllaSummaries {
    /// The summary table on `cluster`.
    pub fn new(cluster: Arc<Cluster>) -> ScyllaSummaries {
        let t = cluster.table("summaries");
        ScyllaSummaries {
            put: format!(
                "INSERT INTO {t} (kind, id, to_ms, from_ms, summary) VALUES (?, ?, ?, ?, ?)"
            )
            .into(),
            latest: format!("SELECT summary FROM {t} WHERE kind = ? AND id = ? LIMIT 1").into(),
            within: format!(
                "SELECT from_ms, summary FROM {t} WHERE kind = ? AND id = ? \
                 AND to_ms >= ? AND to_ms <= ?"
            )
            .into(),
            cluster,
        }
    }

    /// Every statement it runs (`prepare_all` checks them on a live cluster).
    pub fn statements(&self) -> Vec<String> {
        [&self.put, &self.latest, &self.within]
            .map(|s| s.to_string())
            .to_vec()
    }

    fn key(entity: &EntityRef) -> (i8, String) {
        (entity.kind.tag() as i8, entity.id.clone())
    }
}

impl SummaryStore for ScyllaSummaries {
    fn save(&self, summary: &Summary) -> Result<(), StoreError> {
        let (kind, id) = Self::key(&summary.entity);
        let text = json("summary", summary)?;
        let (c, cql) = (self.cluster.clone(), self.put.clone());
        let row = (kind, id, summary.to_ms, summary.from_ms, text);
        self.cluster
            .block(async move { c.execute(&cql, Access::Write, row).await })??;
        Ok(())
    }

    fn latest(&self, entity: &EntityRef) -> Result<Option<Summary>, StoreError> {
        let (c, cql) = (self.cluster.clone(), self.latest.clone());
        let key = Self::key(entity);
        let rows: Vec<(String,)> = self
            .cluster
            .block(async move { c.select(&cql, key).await })??;
        rows.first().map(|(s,)| parse("summary", s)).transpose()
    }

    fn within(
        &self,
        entity: &EntityRef,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<Summary>, StoreError> {
        let (c, cql) = (self.cluster.clone(), self.within.clone());
        let (kind, id) = Self::key(entity);
        let rows: Vec<(i64, String)> = self
            .cluster
            .block(async move { c.select(&cql, (kind, id, from_ms, to_ms)).await })??;
        // Newest window end first; the first that starts in range.
        rows.iter()
            .find(|(from, _)| *from >= from_ms)
            .map(|(_, s)| parse("summary", s))
            .transpose()
    }

    fn expire(&self, _before_ms: i64) -> Result<usize, StoreError> {
        Ok(0)
    }
}
