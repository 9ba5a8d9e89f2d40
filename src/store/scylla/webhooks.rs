//! Webhook endpoints, their stats and their delivery outbox in ScyllaDB:
//! [`ScyllaWebhooks`] implements [`WebhookStore`] for processes that share
//! one cluster.
//!
//! Any process registers, deletes and resumes endpoints; **one** process
//! delivers: the one holding the alert engine's claim (see `alerts`), whose
//! dispatcher is the only writer of the outbox, the stats and the fan-out
//! cursor. So:
//! - the fan-out writes deliveries under deterministic keys (endpoint, seq)
//!   first and moves the cursor after: a crash in between fans the same
//!   events out again onto the same rows, before any attempt was made;
//! - `pending` is not stored: it is the count of the endpoint's outbox rows;
//! - the endpoint row is the one thing two processes change (the
//!   dispatcher pauses, a user resumes or deletes), so every write to it is
//!   a lightweight transaction: pausing is `IF paused = null`, so a resume
//!   is never undone by a pause decided before it; consecutive failures
//!   count from the last resume;
//! - a resume makes the pending deliveries due now by writing only their
//!   `next_attempt_ms` cells.
//!
//! Other processes learn of endpoint changes through a version row polled
//! every second ([`WebhookStore::watch_endpoints`]).

use super::{json, now_ms, parse, Access, Cluster};
use crate::alerts::model::AlertEvent;
use crate::store::webhooks::{
    count_added, fan_out, Delivery, Due, Endpoint, EndpointStats, Failure, Pause, PausePolicy,
    WebhookStore,
};
use crate::store::StoreError;
use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How often the version of the endpoints is polled.
const POLL: Duration = Duration::from_secs(1);
/// Names of the rows of `webhook_meta`.
const CURSOR: &str = "cursor";
const VERSION: &str = "endpoints";

/// Every statement, on the keyspace's tables.
#[derive(Debug)]
struct Cql {
    ep_create: String,
    ep_get: String,
    ep_all: String,
    ep_delete: String,
    ep_resume: String,
    ep_pause: String,
    stats_put: String,
    stats_get: String,
    stats_delete: String,
    out_put: String,
    out_list: String,
    out_count: String,
    out_seqs: String,
    out_oldest: String,
    out_get: String,
    out_body: String,
    out_retry: String,
    out_due_now: String,
    out_drop: String,
    out_drop_all: String,
    meta_get: String,
    meta_put: String,
}

impl Cql {
    fn new(c: &Cluster) -> Cql {
        let (ep, stats, out, meta) = (
            c.table("webhook_endpoints"),
            c.table("webhook_stats"),
            c.table("webhook_outbox"),
            c.table("webhook_meta"),
        );
        Cql {
            ep_create: format!(
                "INSERT INTO {ep} (id, endpoint, resumed_at_ms) VALUES (?, ?, ?) IF NOT EXISTS"
            ),
            ep_get: format!("SELECT endpoint, paused, resumed_at_ms FROM {ep} WHERE id = ?"),
            ep_all: format!("SELECT endpoint, paused, resumed_at_ms FROM {ep}"),
            ep_delete: format!("DELETE FROM {ep} WHERE id = ? IF EXISTS"),
            ep_resume: format!(
                "UPDATE {ep} SET paused = null, resumed_at_ms = ? WHERE id = ? IF EXISTS"
            ),
            ep_pause: format!("UPDATE {ep} SET paused = ? WHERE id = ? IF paused = null"),
            stats_put: format!("INSERT INTO {stats} (id, stats) VALUES (?, ?)"),
            stats_get: format!("SELECT stats FROM {stats} WHERE id = ?"),
            stats_delete: format!("DELETE FROM {stats} WHERE id = ?"),
            out_put: format!(
                "INSERT INTO {out} (endpoint, seq, delivery, body, next_attempt_ms) \
                 VALUES (?, ?, ?, ?, ?)"
            ),
            out_list: format!("SELECT delivery, next_attempt_ms FROM {out} WHERE endpoint = ?"),
            out_count: format!("SELECT COUNT(*) FROM {out} WHERE endpoint = ?"),
            out_seqs: format!("SELECT seq FROM {out} WHERE endpoint = ? AND seq >= ? AND seq <= ?"),
            out_oldest: format!(
                "SELECT delivery, next_attempt_ms FROM {out} WHERE endpoint = ? LIMIT 1"
            ),
            out_get: format!(
                "SELECT delivery, next_attempt_ms FROM {out} WHERE endpoint = ? AND seq = ?"
            ),
            out_body: format!("SELECT body FROM {out} WHERE endpoint = ? AND seq = ?"),
            out_retry: format!(
                "UPDATE {out} SET delivery = ?, next_attempt_ms = ? WHERE endpoint = ? AND seq = ?"
            ),
            out_due_now: format!(
                "UPDATE {out} SET next_attempt_ms = ? WHERE endpoint = ? AND seq = ?"
            ),
            out_drop: format!("DELETE FROM {out} WHERE endpoint = ? AND seq = ?"),
            out_drop_all: format!("DELETE FROM {out} WHERE endpoint = ?"),
            meta_get: format!("SELECT value FROM {meta} WHERE name = ?"),
            meta_put: format!("INSERT INTO {meta} (name, value) VALUES (?, ?)"),
        }
    }

    fn all_statements(&self) -> Vec<String> {
        [
            &self.ep_create,
            &self.ep_get,
            &self.ep_all,
            &self.ep_delete,
            &self.ep_resume,
            &self.ep_pause,
            &self.stats_put,
            &self.stats_get,
            &self.stats_delete,
            &self.out_put,
            &self.out_list,
            &self.out_count,
            &self.out_seqs,
            &self.out_oldest,
            &self.out_get,
            &self.out_body,
            &self.out_retry,
            &self.out_due_now,
            &self.out_drop,
            &self.out_drop_all,
            &self.meta_get,
            &self.meta_put,
        ]
        .map(String::clone)
        .to_vec()
    }
}

/// A row of `webhook_endpoints` (no endpoint: a pause that raced a delete
/// left a row without one, which is no endpoint).
type EndpointRow = (Option<String>, Option<String>, Option<i64>);
/// A row of `webhook_outbox` (the delivery and its next attempt).
type OutboxRow = (String, i64);

#[derive(Debug)]
struct Inner {
    cluster: Arc<Cluster>,
    q: Cql,
}

/// Webhooks in the cluster's keyspace.
#[derive(Debug)]
pub struct ScyllaWebhooks {
    inner: Arc<Inner>,
    changes: Arc<watch::Sender<u64>>,
}

impl ScyllaWebhooks {
    /// The webhook tables on `cluster`; starts watching the endpoints'
    /// version.
    pub fn new(cluster: Arc<Cluster>) -> ScyllaWebhooks {
        let inner = Arc::new(Inner {
            q: Cql::new(&cluster),
            cluster,
        });
        let changes = Arc::new(watch::channel(0).0);
        let (weak, tx) = (Arc::downgrade(&inner), Arc::downgrade(&changes));
        inner.cluster.spawn(watch_version(weak, tx));
        ScyllaWebhooks { inner, changes }
    }

    /// Every statement it runs (`prepare_all` checks them on a live cluster).
    pub fn statements(&self) -> Vec<String> {
        self.inner.q.all_statements()
    }

    fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.inner.cluster.block(f(self.inner.clone()))?
    }

    /// Runs `f`, then tells every process the endpoints changed.
    fn change<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let out = self.run(f)?;
        self.changed()?;
        Ok(out)
    }

    /// Tells every process (this one at once, the others by the version
    /// they poll) that the endpoints changed.
    fn changed(&self) -> Result<(), StoreError> {
        self.run(|i| async move { i.put_meta(VERSION, now_ms()).await })?;
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// Polls the endpoints' version; a new one wakes the watchers.
async fn watch_version(inner: Weak<Inner>, tx: Weak<watch::Sender<u64>>) {
    let mut seen: Option<i64> = None;
    loop {
        let (Some(i), Some(tx)) = (inner.upgrade(), tx.upgrade()) else {
            return;
        };
        if let Ok(v) = i.meta(VERSION).await {
            if seen.is_some_and(|s| s != v) {
                tx.send_modify(|n| *n += 1);
            }
            seen = Some(v);
        }
        drop((i, tx));
        tokio::time::sleep(POLL).await;
    }
}

impl Inner {
    async fn meta(&self, name: &str) -> Result<i64, StoreError> {
        let rows: Vec<(Option<i64>,)> = self.cluster.select(&self.q.meta_get, (name,)).await?;
        Ok(rows.first().and_then(|(v,)| *v).unwrap_or(0))
    }

    async fn put_meta(&self, name: &str, value: i64) -> Result<(), StoreError> {
        self.cluster
            .execute(&self.q.meta_put, Access::Write, (name, value))
            .await?;
        Ok(())
    }

    fn endpoint_of(row: EndpointRow) -> Result<Option<Endpoint>, StoreError> {
        let (Some(text), paused, resumed) = row else {
            return Ok(None);
        };
        let mut e: Endpoint = parse("webhook endpoint", &text)?;
        e.paused = paused.map(|p| parse("pause", &p)).transpose()?;
        e.resumed_at_ms = resumed.filter(|r| *r > 0);
        Ok(Some(e))
    }

    fn delivery_of(row: OutboxRow) -> Result<Delivery, StoreError> {
        let (text, next) = row;
        let mut d: Delivery = parse("webhook delivery", &text)?;
        d.next_attempt_ms = next;
        Ok(d)
    }

    async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let rows: Vec<EndpointRow> = self.cluster.select(&self.q.ep_get, (id,)).await?;
        match rows.into_iter().next() {
            Some(row) => Self::endpoint_of(row),
            None => Ok(None),
        }
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        let rows: Vec<EndpointRow> = self.cluster.select(&self.q.ep_all, ()).await?;
        let mut all = Vec::new();
        for row in rows {
            all.extend(Self::endpoint_of(row)?);
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// The stats as the dispatcher wrote them, with `pending` counted and
    /// consecutive failures counted from the last resume.
    async fn stats(&self, e: &Endpoint) -> Result<EndpointStats, StoreError> {
        let rows: Vec<(String,)> = self
            .cluster
            .select(&self.q.stats_get, (e.id.as_str(),))
            .await?;
        let mut stats: EndpointStats = match rows.first() {
            Some((s,)) => parse("webhook stats", s)?,
            None => EndpointStats::default(),
        };
        let count: Vec<(i64,)> = self
            .cluster
            .select(&self.q.out_count, (e.id.as_str(),))
            .await?;
        stats.pending = count.first().map_or(0, |(n,)| (*n).max(0) as u64);
        if e.resumed_at_ms
            .is_some_and(|r| stats.last_attempt_ms.is_none_or(|a| a <= r))
        {
            stats.consecutive_failures = 0;
        }
        Ok(stats)
    }

    async fn put_stats(&self, id: &str, stats: &EndpointStats) -> Result<(), StoreError> {
        let text = json("webhook stats", stats)?;
        self.cluster
            .execute(&self.q.stats_put, Access::Write, (id, text))
            .await?;
        Ok(())
    }

    async fn delivery(&self, endpoint: &str, seq: u64) -> Result<Option<Delivery>, StoreError> {
        let rows: Vec<OutboxRow> = self
            .cluster
            .select(&self.q.out_get, (endpoint, seq as i64))
            .await?;
        rows.into_iter().next().map(Self::delivery_of).transpose()
    }
}

impl WebhookStore for ScyllaWebhooks {
    fn create(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let mut e = endpoint.clone();
        self.change(move |i| async move {
            let resumed = e.resumed_at_ms.take().unwrap_or(0);
            e.paused = None;
            let text = json("webhook endpoint", &e)?;
            let cas = i
                .cluster
                .cas(&i.q.ep_create, (e.id.as_str(), text.as_str(), resumed))
                .await?;
            if !cas.applied && cas.text("endpoint") != Some(text.as_str()) {
                return Err(StoreError::Conflict(format!(
                    "webhook endpoint {} exists already",
                    e.id
                )));
            }
            i.put_stats(&e.id, &EndpointStats::default()).await
        })
    }

    fn endpoint(&self, id: &str) -> Result<Option<(Endpoint, EndpointStats)>, StoreError> {
        let id = id.to_string();
        self.run(move |i| async move {
            match i.endpoint(&id).await? {
                Some(e) => {
                    let stats = i.stats(&e).await?;
                    Ok(Some((e, stats)))
                }
                None => Ok(None),
            }
        })
    }

    fn endpoints(&self) -> Result<Vec<(Endpoint, EndpointStats)>, StoreError> {
        self.run(|i| async move {
            let mut out = Vec::new();
            for e in i.endpoints().await? {
                let stats = i.stats(&e).await?;
                out.push((e, stats));
            }
            Ok(out)
        })
    }

    fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.change(move |i| async move {
            let cas = i.cluster.cas(&i.q.ep_delete, (id.as_str(),)).await?;
            // Its deliveries and stats go either way (a retried delete finds
            // the endpoint gone already).
            i.cluster
                .execute(&i.q.out_drop_all, Access::Write, (id.as_str(),))
                .await?;
            i.cluster
                .execute(&i.q.stats_delete, Access::Write, (id.as_str(),))
                .await?;
            Ok(cas.applied)
        })
    }

    fn resume(&self, id: &str, now_ms: i64) -> Result<Option<Endpoint>, StoreError> {
        let id = id.to_string();
        self.change(move |i| async move {
            let cas = i.cluster.cas(&i.q.ep_resume, (now_ms, id.as_str())).await?;
            if !cas.applied {
                return Ok(None);
            }
            let rows: Vec<OutboxRow> = i.cluster.select(&i.q.out_list, (id.as_str(),)).await?;
            for row in rows {
                let d = Inner::delivery_of(row)?;
                if d.next_attempt_ms > now_ms {
                    i.cluster
                        .execute(
                            &i.q.out_due_now,
                            Access::Write,
                            (now_ms, id.as_str(), d.seq as i64),
                        )
                        .await?;
                }
            }
            i.endpoint(&id).await
        })
    }

    fn watch_endpoints(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn cursor(&self) -> Result<u64, StoreError> {
        self.run(|i| async move { Ok(i.meta(CURSOR).await?.max(0) as u64) })
    }

    fn enqueue(
        &self,
        events: &[(&AlertEvent, Vec<u8>)],
        cursor: u64,
        now_ms: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let events: Vec<(AlertEvent, Vec<u8>)> = events
            .iter()
            .map(|(e, b)| ((*e).clone(), b.clone()))
            .collect();
        self.run(move |i| async move {
            let endpoints = i.endpoints().await?;
            let refs: Vec<(&AlertEvent, Vec<u8>)> =
                events.iter().map(|(e, b)| (e, b.clone())).collect();
            let (lo, hi) = (
                events.first().map_or(0, |(e, _)| e.seq as i64),
                events.last().map_or(0, |(e, _)| e.seq as i64),
            );
            // Deliveries already there (never with one dispatcher) stay as
            // they are and are not counted again.
            let mut there: HashSet<(String, u64)> = HashSet::new();
            for e in &endpoints {
                let rows: Vec<(i64,)> = i
                    .cluster
                    .select(&i.q.out_seqs, (e.id.as_str(), lo, hi))
                    .await?;
                there.extend(rows.into_iter().map(|(s,)| (e.id.clone(), s as u64)));
            }
            let mut added = Vec::new();
            for (d, body) in fan_out(&endpoints, &refs, now_ms) {
                if there.contains(&(d.endpoint_id.clone(), d.seq)) {
                    continue;
                }
                let text = json("webhook delivery", &d)?;
                i.cluster
                    .execute(
                        &i.q.out_put,
                        Access::Write,
                        (
                            d.endpoint_id.as_str(),
                            d.seq as i64,
                            text,
                            body.to_vec(),
                            d.next_attempt_ms,
                        ),
                    )
                    .await?;
                count_added(&mut added, &d.endpoint_id);
            }
            // After the deliveries: a crash before this fans the same events
            // out again onto the same rows.
            i.put_meta(CURSOR, cursor as i64).await?;
            Ok(added)
        })
    }

    fn due(
        &self,
        endpoint: &str,
        now_ms: i64,
        limit: usize,
        busy: &HashSet<u64>,
    ) -> Result<Due, StoreError> {
        let endpoint = endpoint.to_string();
        let busy = busy.clone();
        self.run(move |i| async move {
            let rows: Vec<OutboxRow> = i.cluster.select(&i.q.out_list, (endpoint,)).await?;
            Due::collect(
                rows.into_iter().map(Inner::delivery_of),
                now_ms,
                limit,
                &busy,
            )
        })
    }

    fn body(&self, endpoint: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let endpoint = endpoint.to_string();
        self.run(move |i| async move {
            let rows: Vec<(Vec<u8>,)> = i
                .cluster
                .select(&i.q.out_body, (endpoint, seq as i64))
                .await?;
            Ok(rows.into_iter().next().map(|(b,)| b))
        })
    }

    fn delivered(
        &self,
        endpoint: &str,
        seq: u64,
        at_ms: i64,
        status: u16,
    ) -> Result<bool, StoreError> {
        let endpoint = endpoint.to_string();
        self.run(move |i| async move {
            let Some(e) = i.endpoint(&endpoint).await? else {
                return Ok(false);
            };
            if i.delivery(&endpoint, seq).await?.is_none() {
                return Ok(false);
            }
            let mut stats = i.stats(&e).await?;
            stats.succeeded(at_ms, status);
            i.cluster
                .execute(
                    &i.q.out_drop,
                    Access::Write,
                    (endpoint.as_str(), seq as i64),
                )
                .await?;
            i.put_stats(&endpoint, &stats).await?;
            Ok(true)
        })
    }

    fn failed(
        &self,
        endpoint: &str,
        seq: u64,
        failure: &Failure,
        policy: &PausePolicy,
    ) -> Result<Option<Pause>, StoreError> {
        let (endpoint, failure, policy) = (endpoint.to_string(), failure.clone(), *policy);
        let pause = self.run(move |i| async move {
            let Some(e) = i.endpoint(&endpoint).await? else {
                return Ok(None);
            };
            let Some(mut d) = i.delivery(&endpoint, seq).await? else {
                return Ok(None);
            };
            d.failed(&failure);
            let mut stats = i.stats(&e).await?;
            stats.failed(&failure);
            let text = json("webhook delivery", &d)?;
            i.cluster
                .execute(
                    &i.q.out_retry,
                    Access::Write,
                    (text, d.next_attempt_ms, endpoint.as_str(), seq as i64),
                )
                .await?;
            i.put_stats(&endpoint, &stats).await?;
            if e.paused.is_some() {
                return Ok(None);
            }
            let oldest: Vec<OutboxRow> = i
                .cluster
                .select(&i.q.out_oldest, (endpoint.as_str(),))
                .await?;
            let oldest = oldest
                .into_iter()
                .next()
                .map(Inner::delivery_of)
                .transpose()?
                .map(|o| o.created_at_ms);
            let Some(p) = policy.pause(&stats, oldest, &e, &failure) else {
                return Ok(None);
            };
            let text = json("pause", &p)?;
            let cas = i
                .cluster
                .cas(&i.q.ep_pause, (text.as_str(), endpoint.as_str()))
                .await?;
            // Not applied: resumed (or paused by our own first attempt)
            // meanwhile; either way the row says what holds.
            Ok((cas.applied || cas.text("paused") == Some(text.as_str())).then_some(p))
        })?;
        if pause.is_some() {
            self.changed()?;
        }
        Ok(pause)
    }
}
