//! Alerts, alert rules and the alert event log in ScyllaDB: [`ScyllaAlerts`]
//! implements [`AlertStore`] for processes that share one cluster.
//!
//! **One writer at a time.** Alerts are changed by one alert engine, in the
//! process that holds the claim: a row of `leases` written with a TTL
//! (`store.scylla.alert_claim_ttl_ms`) and renewed every third of it. A
//! process that takes the claim **fences** the one before: it raises the
//! `epoch` of the log's head row, and every sequence number is handed out
//! by a lightweight transaction conditioned on that epoch, so a process
//! that lost its claim (paused, cut off) can log nothing more.
//!
//! **Lightweight transactions where a decision must be unique:**
//! - raising: `INSERT … IF NOT EXISTS` on the alert's row (ids are stable:
//!   the same rule on the same entity from the same moment), so an alert is
//!   raised once even when two engines see the same posts;
//! - state changes: `UPDATE … IF state = …` (acknowledge only an open
//!   alert; update or resolve only an open or acknowledged one);
//! - the event log's sequence (`alert_head`): `IF seq = n - 1 AND epoch = e`,
//!   gap-free and in commit order while one process holds the claim;
//! - the event row itself: `IF NOT EXISTS` (a new holder seals a number its
//!   predecessor took but never wrote, so that number stays empty for good).
//!
//! Every LWT is retried like any request; a retry that finds its own first
//! attempt applied recognises it from the row it gets back (the pending
//! event, the holder, the epoch). Rows written by LWT are never written
//! without one (mixing both breaks their ordering).
//!
//! **Nothing is lost between the steps.** A change is written in order:
//! the alert id into `alert_pending`, the time index, the alert's row with
//! the event as `pending` (the decision), a sequence number, the event row,
//! then `pending` cleared and the id dropped from `alert_pending`. A crash
//! anywhere leaves the id in `alert_pending`: the holder (at its claim and
//! at every renewal) logs the pending event, unless the event row at the
//! head of the log already is that event (a crash after the event row).
//!
//! Resolved alerts (and their time index rows) get the alert retention as
//! their TTL; the log's table has it as its default TTL (TWCS). `expire`
//! has nothing to do.

use super::schema::DAY_MS;
use super::{json, now_ms, parse, Access, Cas, Cluster};
use crate::alerts::model::{Alert, AlertEvent, AlertEventType, AlertState, Rule};
use crate::store::alerts::{parse_page_cursor, AlertPage, AlertQuery, AlertStore};
use crate::store::StoreError;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Name of the alert engine's claim in `leases`.
const CLAIM: &str = "alert-engine";
/// Name of the event log's head row in `alert_head`.
const HEAD: &str = "events";
/// Events per partition of `alert_log` (2^16).
const LOG_BUCKET_BITS: u32 = 16;
/// Span of one partition of `alerts_by_time`.
const TIME_BUCKET_MS: i64 = 7 * DAY_MS;
/// How often a process that does not write alerts looks for new events.
const POLL: Duration = Duration::from_secs(1);

/// Whether the alert opened at `opened` with `id` comes after `cursor` in
/// the listing's order (newest first, then by id): the embedded store's
/// order of time keys.
fn comes_after(opened: i64, id: &str, cursor: &(i64, String)) -> bool {
    opened < cursor.0 || (opened == cursor.0 && id > cursor.1.as_str())
}

fn log_bucket(seq: u64) -> i64 {
    (seq >> LOG_BUCKET_BITS) as i64
}

fn time_bucket(ms: i64) -> i64 {
    ms.div_euclid(TIME_BUCKET_MS)
}

fn conflict(m: impl Into<String>) -> StoreError {
    StoreError::Conflict(m.into())
}

/// The reads of [`AlertStore::events_after`]: sequence numbers in
/// `(after, head]`, partition by partition, until `limit` events are found.
/// Only the head can be taken and not yet written (one writer, one change
/// at a time), so a number missing below it stays missing: it is skipped,
/// as are sealed (empty) numbers.
#[derive(Debug)]
struct LogWalk {
    /// Rows after this one are read next.
    from: u64,
    head: u64,
    /// Events still wanted.
    want: usize,
    bits: u32,
}

impl LogWalk {
    fn new(after: u64, head: u64, limit: usize, bits: u32) -> LogWalk {
        LogWalk {
            from: after,
            head,
            want: limit,
            bits,
        }
    }

    /// The next read: the partition, the number the rows come after, and
    /// how many rows at most.
    fn next(&self) -> Option<(i64, u64, usize)> {
        (self.want > 0 && self.from < self.head)
            .then(|| (((self.from + 1) >> self.bits) as i64, self.from, self.want))
    }

    /// What the read asked for `asked` rows returned: `rows` rows, the last
    /// one `last`, of which `events` were events (not sealed numbers).
    fn advance(&mut self, asked: usize, rows: usize, last: Option<u64>, events: usize) {
        self.want = self.want.saturating_sub(events);
        let partition = (self.from + 1) >> self.bits;
        self.from = match last {
            // A full read may have left rows in this partition.
            Some(last) if rows >= asked => last,
            // The rest of the partition is read: on to the next.
            _ => ((partition + 1) << self.bits) - 1,
        };
    }
}

/// Every statement, on the keyspace's tables.
#[derive(Debug)]
struct Cql {
    claim_take: String,
    claim_renew: String,
    head_init: String,
    head_read: String,
    head_holder: String,
    head_fence: String,
    head_next: String,
    log_put: String,
    log_range: String,
    raise: String,
    change_open: String,
    change_live: String,
    save: String,
    clear: String,
    alert: String,
    pending_of: String,
    all: String,
    queue_add: String,
    queue_list: String,
    queue_drop: String,
    time_put: String,
    time_page: String,
    rule_put: String,
    rule_get: String,
    rule_all: String,
    rule_drop: String,
}

impl Cql {
    fn new(c: &Cluster) -> Cql {
        let (leases, head, log, alerts, queue, by_time, rules) = (
            c.table("leases"),
            c.table("alert_head"),
            c.table("alert_log"),
            c.table("alerts"),
            c.table("alert_pending"),
            c.table("alerts_by_time"),
            c.table("alert_rules"),
        );
        let change = |cond: &str| {
            format!(
                "UPDATE {alerts} USING TTL ? SET state = ?, pending = ?, alert = ? \
                 WHERE id = ? IF state {cond}"
            )
        };
        Cql {
            claim_take: format!(
                "INSERT INTO {leases} (name, holder) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
            ),
            claim_renew: format!(
                "UPDATE {leases} USING TTL ? SET holder = ? WHERE name = ? IF holder = ?"
            ),
            head_init: format!(
                "INSERT INTO {head} (name, seq, epoch, holder) VALUES (?, 0, 0, '') IF NOT EXISTS"
            ),
            head_read: format!("SELECT seq, epoch FROM {head} WHERE name = ?"),
            head_holder: format!("SELECT epoch, holder FROM {head} WHERE name = ?"),
            head_fence: format!(
                "UPDATE {head} SET epoch = ?, holder = ? WHERE name = ? IF epoch = ? AND seq = ?"
            ),
            head_next: format!("UPDATE {head} SET seq = ? WHERE name = ? IF seq = ? AND epoch = ?"),
            log_put: format!(
                "INSERT INTO {log} (bucket, seq, alert_id, event) VALUES (?, ?, ?, ?) IF NOT EXISTS"
            ),
            log_range: format!(
                "SELECT seq, event FROM {log} WHERE bucket = ? AND seq > ? AND seq <= ? LIMIT ?"
            ),
            raise: format!(
                "INSERT INTO {alerts} (id, state, pending, alert) VALUES (?, ?, ?, ?) IF NOT EXISTS"
            ),
            change_open: change("= 'open'"),
            change_live: change("IN ('open', 'acknowledged')"),
            save: format!("UPDATE {alerts} SET alert = ? WHERE id = ? IF state = ?"),
            clear: format!("UPDATE {alerts} SET pending = null WHERE id = ? IF pending = ?"),
            alert: format!("SELECT alert FROM {alerts} WHERE id = ?"),
            pending_of: format!("SELECT pending FROM {alerts} WHERE id = ?"),
            all: format!("SELECT state, alert FROM {alerts}"),
            queue_add: format!("INSERT INTO {queue} (p, id) VALUES (0, ?)"),
            queue_list: format!("SELECT id FROM {queue} WHERE p = 0"),
            queue_drop: format!("DELETE FROM {queue} WHERE p = 0 AND id = ?"),
            time_put: format!(
                "INSERT INTO {by_time} (bucket, opened_ms, id) VALUES (?, ?, ?) USING TTL ?"
            ),
            time_page: format!(
                "SELECT opened_ms, id FROM {by_time} WHERE bucket = ? AND opened_ms <= ?"
            ),
            rule_put: format!("INSERT INTO {rules} (id, rule) VALUES (?, ?)"),
            rule_get: format!("SELECT rule FROM {rules} WHERE id = ?"),
            rule_all: format!("SELECT rule FROM {rules}"),
            rule_drop: format!("DELETE FROM {rules} WHERE id = ?"),
        }
    }

    fn all_statements(&self) -> Vec<String> {
        [
            &self.claim_take,
            &self.claim_renew,
            &self.head_init,
            &self.head_read,
            &self.head_holder,
            &self.head_fence,
            &self.head_next,
            &self.log_put,
            &self.log_range,
            &self.raise,
            &self.change_open,
            &self.change_live,
            &self.save,
            &self.clear,
            &self.alert,
            &self.pending_of,
            &self.all,
            &self.queue_add,
            &self.queue_list,
            &self.queue_drop,
            &self.time_put,
            &self.time_page,
            &self.rule_put,
            &self.rule_get,
            &self.rule_all,
            &self.rule_drop,
        ]
        .map(String::clone)
        .to_vec()
    }
}

/// What this process knows of its claim.
#[derive(Debug, Default)]
struct Writer {
    /// The epoch it fenced the log with, while it holds the claim.
    epoch: Option<i64>,
    /// The next sequence number it will take.
    next_seq: u64,
    /// The holder it last saw, when another process holds the claim.
    other: Option<String>,
    /// Until when the claim surely holds: its TTL from the moment the last
    /// successful claim was sent. After it, this process writes nothing
    /// before claiming again (a paused process does not wait for the
    /// fence to stop it).
    valid_until: Option<Instant>,
}

/// The parts the driver's runtime works with.
#[derive(Debug)]
struct Inner {
    cluster: Arc<Cluster>,
    q: Cql,
    /// This process, as written in `leases` and `alert_head`.
    me: String,
    /// The claim's TTL in seconds.
    claim_ttl_s: i32,
    /// TTL of resolved alerts, in seconds.
    retention_s: i32,
}

/// Alerts, rules and the event log in the cluster's keyspace.
#[derive(Debug)]
pub struct ScyllaAlerts {
    inner: Arc<Inner>,
    /// Held while a change or a claim is written: one at a time.
    writer: Mutex<Writer>,
    /// What [`AlertStore::holds_claim`] reads without waiting for the
    /// writer: until when the claim holds, in ms since `base` (0: not held).
    held_until_ms: AtomicU64,
    base: Instant,
    seq_tx: Arc<watch::Sender<u64>>,
}

/// This store's name in the claim: the process's, and a counter (tests
/// open several stores in one process).
fn process_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        crate::telemetry::instance(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl ScyllaAlerts {
    /// The alert tables on `cluster`; resolved alerts and events are kept
    /// `retention_days`. Starts watching the log's head (see
    /// [`AlertStore::watch_seq`]).
    pub fn new(cluster: Arc<Cluster>, retention_days: u64) -> ScyllaAlerts {
        let secs = |ms: u64| i32::try_from(ms / 1_000).unwrap_or(i32::MAX);
        let claim_ttl_s = secs(cluster.config().alert_claim_ttl_ms).max(1);
        let retention_s = secs(retention_days.saturating_mul(DAY_MS as u64));
        let inner = Arc::new(Inner {
            q: Cql::new(&cluster),
            me: process_name(),
            claim_ttl_s,
            retention_s,
            cluster,
        });
        let seq_tx = Arc::new(watch::channel(0).0);
        spawn_head_watch(&inner, Arc::downgrade(&seq_tx));
        ScyllaAlerts {
            inner,
            writer: Mutex::new(Writer::default()),
            held_until_ms: AtomicU64::new(0),
            base: Instant::now(),
            seq_tx,
        }
    }

    /// Makes `w`'s claim what [`AlertStore::holds_claim`] reads.
    fn publish(&self, w: &Writer) {
        let until = match (w.epoch, w.valid_until) {
            (Some(_), Some(until)) => until.saturating_duration_since(self.base).as_millis() as u64,
            _ => 0,
        };
        self.held_until_ms.store(until, Ordering::Release);
    }

    fn claim_period(&self) -> Duration {
        Duration::from_secs(self.inner.claim_ttl_s.max(1) as u64)
    }

    /// Every statement it runs (`prepare_all` checks them on a live cluster).
    pub fn statements(&self) -> Vec<String> {
        self.inner.q.all_statements()
    }

    /// Runs `f` on the driver's runtime with the shared parts.
    fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.inner.cluster.block(f(self.inner.clone()))?
    }

    /// The epoch this process writes under, or the conflict of not holding
    /// the claim.
    fn epoch(w: &Writer) -> Result<i64, StoreError> {
        match (w.epoch, w.valid_until) {
            (Some(epoch), Some(until)) if Instant::now() < until => Ok(epoch),
            (Some(_), _) => Err(conflict(
                "this process's claim on the alert engine ran out before it was renewed",
            )),
            _ => Err(conflict(
                "this process does not hold the alert engine's claim (another one runs it)",
            )),
        }
    }
}

/// Follows the head of the log, so that processes that do not write alerts
/// (their webhook dispatchers) see new events within [`POLL`].
fn spawn_head_watch(inner: &Arc<Inner>, tx: Weak<watch::Sender<u64>>) {
    let weak = Arc::downgrade(inner);
    inner.cluster.spawn(async move {
        loop {
            let (Some(inner), Some(tx)) = (weak.upgrade(), tx.upgrade()) else {
                return;
            };
            if let Ok((seq, _)) = inner.head().await {
                advance(&tx, seq);
            }
            drop((inner, tx));
            tokio::time::sleep(POLL).await;
        }
    });
}

/// Moves the watched head to `seq` if that is later.
fn advance(tx: &watch::Sender<u64>, seq: u64) {
    tx.send_if_modified(|v| {
        let newer = seq > *v;
        if newer {
            *v = seq;
        }
        newer
    });
}

impl Inner {
    async fn cas(
        &self,
        cql: &str,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Cas, StoreError> {
        self.cluster.cas(cql, values).await
    }

    /// The log's head: last sequence number taken, and the epoch.
    async fn head(&self) -> Result<(u64, i64), StoreError> {
        let rows: Vec<(Option<i64>, Option<i64>)> =
            self.cluster.select(&self.q.head_read, (HEAD,)).await?;
        Ok(rows
            .first()
            .map(|(s, e)| (s.unwrap_or(0).max(0) as u64, e.unwrap_or(0)))
            .unwrap_or((0, 0)))
    }

    /// Takes (or renews) the claim; whether this process holds it, and the
    /// holder when another does.
    async fn take_claim(&self, renew: bool) -> Result<(bool, Option<String>), StoreError> {
        let cas = if renew {
            self.cas(
                &self.q.claim_renew,
                (self.claim_ttl_s, &self.me, CLAIM, &self.me),
            )
            .await?
        } else {
            self.cas(&self.q.claim_take, (CLAIM, &self.me, self.claim_ttl_s))
                .await?
        };
        let mine = cas.applied || cas.text("holder") == Some(self.me.as_str());
        let other = (!mine).then(|| cas.text("holder").unwrap_or("nobody").to_string());
        Ok((mine, other))
    }

    /// Fences the previous holder: raises the head's epoch. Returns the
    /// new epoch and the last sequence number taken before it.
    async fn fence(&self) -> Result<(i64, u64), StoreError> {
        self.cas(&self.q.head_init, (HEAD,)).await?;
        let (mut seq, mut epoch) = self.head().await?;
        for _ in 0..16 {
            let cas = self
                .cas(
                    &self.q.head_fence,
                    (epoch + 1, &self.me, HEAD, epoch, seq as i64),
                )
                .await?;
            if cas.applied {
                return Ok((epoch + 1, seq));
            }
            // Our own first attempt, retried?
            let rows: Vec<(Option<i64>, Option<String>)> =
                self.cluster.select(&self.q.head_holder, (HEAD,)).await?;
            if rows
                .first()
                .is_some_and(|(e, h)| *e == Some(epoch + 1) && h.as_deref() == Some(&self.me))
            {
                return Ok((epoch + 1, seq));
            }
            (seq, epoch) = (
                cas.bigint("seq").unwrap_or(0).max(0) as u64,
                cas.bigint("epoch").unwrap_or(0),
            );
        }
        Err(conflict(
            "the alert log's head keeps changing while fencing it",
        ))
    }

    /// Takes sequence number `n` (the one after `n - 1`) under `epoch`.
    async fn next_seq(&self, n: u64, epoch: i64) -> Result<(), StoreError> {
        let cas = self
            .cas(&self.q.head_next, (n as i64, HEAD, n as i64 - 1, epoch))
            .await?;
        let (seq, at) = (cas.bigint("seq"), cas.bigint("epoch"));
        if cas.applied || (seq == Some(n as i64) && at == Some(epoch)) {
            return Ok(());
        }
        Err(conflict(format!(
            "the alert log moved on (sequence {}, epoch {}; this process expected {} under {epoch}): \
             another process holds the alert engine's claim",
            seq.unwrap_or_default(),
            at.unwrap_or_default(),
            n - 1
        )))
    }

    /// Writes event `seq` (`text` is its JSON; empty seals the number).
    /// Returns the event already there, if another was.
    async fn put_event(
        &self,
        seq: u64,
        alert_id: &str,
        text: &str,
    ) -> Result<Option<String>, StoreError> {
        let cas = self
            .cas(
                &self.q.log_put,
                (log_bucket(seq), seq as i64, alert_id, text),
            )
            .await?;
        match cas.text("event") {
            Some(there) if !cas.applied && there != text => Ok(Some(there.to_string())),
            _ => Ok(None),
        }
    }

    /// Logs `pending` (an event with seq 0) as sequence number `seq`.
    async fn log(
        &self,
        seq: u64,
        epoch: i64,
        pending: &AlertEvent,
    ) -> Result<AlertEvent, StoreError> {
        self.next_seq(seq, epoch).await?;
        let mut logged = pending.clone();
        logged.seq = seq;
        let text = json("alert event", &logged)?;
        if self
            .put_event(seq, &logged.alert.id, &text)
            .await?
            .is_some()
        {
            return Err(conflict(format!(
                "event {seq} was sealed by the process that took the alert engine's claim"
            )));
        }
        Ok(logged)
    }

    /// Clears an alert's pending event and drops it from the queue.
    async fn settle(&self, id: &str, pending: &str) -> Result<(), StoreError> {
        self.cas(&self.q.clear, (id, pending)).await?;
        self.cluster
            .execute(&self.q.queue_drop, Access::Write, (id,))
            .await?;
        Ok(())
    }

    /// The alert's row decides the change (see the module doc); `pending`
    /// is the event to log.
    async fn decide(
        &self,
        alert: &Alert,
        event: AlertEventType,
        pending: &str,
    ) -> Result<(), StoreError> {
        let id = alert.id.as_str();
        let body = json("alert", alert)?;
        let state = alert.state.as_str();
        let cas = match event {
            AlertEventType::Raised => self.cas(&self.q.raise, (id, state, pending, &body)).await?,
            _ => {
                let ttl = if alert.state == AlertState::Resolved {
                    self.retention_s
                } else {
                    0
                };
                let cql = if event == AlertEventType::Acknowledged {
                    &self.q.change_open
                } else {
                    &self.q.change_live
                };
                self.cas(cql, (ttl, state, pending, &body, id)).await?
            }
        };
        if cas.applied || cas.text("pending") == Some(pending) {
            return Ok(());
        }
        // A retried update gets only the state back: read the pending event.
        let rows: Vec<(Option<String>,)> = self.cluster.select(&self.q.pending_of, (id,)).await?;
        if rows.first().and_then(|(p,)| p.as_deref()) == Some(pending) {
            return Ok(());
        }
        Err(conflict(format!(
            "alert {id} is {} in the store: it changed elsewhere",
            cas.text("state").unwrap_or("absent")
        )))
    }

    /// Logs the pending event of every alert in `alert_pending` (left by a
    /// crash or by a process that lost its claim). `head_event` is the
    /// event at sequence `next - 1` when just fenced. Returns the next
    /// sequence number.
    async fn recover(
        &self,
        epoch: i64,
        mut next: u64,
        head_event: Option<AlertEvent>,
    ) -> Result<(u64, Vec<AlertEvent>), StoreError> {
        let ids: Vec<(String,)> = self.cluster.select(&self.q.queue_list, ()).await?;
        let mut logged = Vec::new();
        for (id,) in ids {
            let rows: Vec<(Option<String>,)> = self
                .cluster
                .select(&self.q.pending_of, (id.as_str(),))
                .await?;
            let Some(text) = rows.into_iter().next().and_then(|(p,)| p) else {
                self.cluster
                    .execute(&self.q.queue_drop, Access::Write, (id.as_str(),))
                    .await?;
                continue;
            };
            let pending: AlertEvent = parse("pending alert event", &text)?;
            let already = head_event.as_ref().is_some_and(|h| {
                let mut p = pending.clone();
                p.seq = h.seq;
                *h == p
            });
            if !already {
                logged.push(self.log(next, epoch, &pending).await?);
                next += 1;
            }
            self.settle(&id, &text).await?;
        }
        Ok((next, logged))
    }
}

impl AlertStore for ScyllaAlerts {
    fn record(
        &self,
        alert: &Alert,
        event: AlertEventType,
        at_ms: i64,
    ) -> Result<AlertEvent, StoreError> {
        let mut w = self.writer.lock();
        let epoch = Self::epoch(&w)?;
        let seq = w.next_seq;
        let pending = AlertEvent {
            seq: 0,
            event,
            at_ms,
            alert: alert.clone(),
        };
        let outcome = self.run(move |i| async move {
            let text = json("alert event", &pending)?;
            let id = pending.alert.id.as_str();
            i.cluster
                .execute(&i.q.queue_add, Access::Write, (id,))
                .await?;
            let opened = pending.alert.opened_at_ms;
            let ttl = if pending.alert.state == AlertState::Resolved {
                i.retention_s
            } else {
                0
            };
            i.cluster
                .execute(
                    &i.q.time_put,
                    Access::Write,
                    (time_bucket(opened), opened, id, ttl),
                )
                .await?;
            i.decide(&pending.alert, event, &text).await?;
            let logged = i.log(seq, epoch, &pending).await?;
            i.settle(id, &text).await?;
            Ok(logged)
        });
        match outcome {
            Ok(logged) => {
                w.next_seq = seq + 1;
                advance(&self.seq_tx, seq);
                Ok(logged)
            }
            Err(e @ StoreError::Conflict(_)) => {
                // Whatever the row said, this process decides nothing more
                // until it has claimed again (and reloaded).
                w.epoch = None;
                self.publish(&w);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn save(&self, alert: &Alert) -> Result<(), StoreError> {
        let w = self.writer.lock();
        Self::epoch(&w)?;
        let alert = alert.clone();
        self.run(move |i| async move {
            let body = json("alert", &alert)?;
            let state = alert.state.as_str();
            let cas = i.cas(&i.q.save, (&body, alert.id.as_str(), state)).await?;
            if cas.applied {
                return Ok(());
            }
            let rows: Vec<(Option<String>,)> =
                i.cluster.select(&i.q.alert, (alert.id.as_str(),)).await?;
            if rows.first().and_then(|(a,)| a.as_deref()) == Some(body.as_str()) {
                return Ok(()); // a retry of our own
            }
            Err(conflict(format!(
                "alert {} is {} in the store: it changed elsewhere",
                alert.id,
                cas.text("state").unwrap_or("absent")
            )))
        })
    }

    fn alert(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        let id = id.to_string();
        self.run(move |i| async move {
            let rows: Vec<(Option<String>,)> = i.cluster.select(&i.q.alert, (id,)).await?;
            rows.into_iter()
                .next()
                .and_then(|(a,)| a)
                .map(|a| parse("alert", &a))
                .transpose()
        })
    }

    fn alerts(&self, q: &AlertQuery) -> Result<AlertPage, StoreError> {
        let q = q.clone();
        let after = q.after.as_deref().map(parse_page_cursor).transpose()?;
        self.run(move |i| async move {
            let now = now_ms();
            let top = after
                .as_ref()
                .map_or(time_bucket(now) + 1, |(o, _)| time_bucket(*o));
            let floor = q.since_ms.unwrap_or_else(|| {
                now.saturating_sub(i64::from(i.retention_s).saturating_mul(1_000))
                    .saturating_sub(TIME_BUCKET_MS)
            });
            let mut page = AlertPage::default();
            for bucket in (time_bucket(floor)..=top).rev() {
                let upper = after.as_ref().map_or(i64::MAX, |(o, _)| *o);
                let rows: Vec<(i64, String)> =
                    i.cluster.select(&i.q.time_page, (bucket, upper)).await?;
                for (opened, id) in rows {
                    if after.as_ref().is_some_and(|c| !comes_after(opened, &id, c)) {
                        continue;
                    }
                    if q.since_ms.is_some_and(|since| opened < since) {
                        return Ok(page);
                    }
                    let rows: Vec<(Option<String>,)> =
                        i.cluster.select(&i.q.alert, (id.as_str(),)).await?;
                    let Some(alert) = rows.into_iter().next().and_then(|(a,)| a) else {
                        continue; // expired between the two reads
                    };
                    let alert: Alert = parse("alert", &alert)?;
                    if q.matches(&alert) && !page.offer(alert, q.limit) {
                        return Ok(page);
                    }
                }
            }
            Ok(page)
        })
    }

    fn unresolved(&self) -> Result<Vec<Alert>, StoreError> {
        self.run(|i| async move {
            let rows: Vec<(Option<String>, Option<String>)> =
                i.cluster.select(&i.q.all, ()).await?;
            rows.into_iter()
                .filter(|(state, _)| {
                    state
                        .as_deref()
                        .is_some_and(|s| s != AlertState::Resolved.as_str())
                })
                .filter_map(|(_, a)| a)
                .map(|a| parse("alert", &a))
                .collect()
        })
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<AlertEvent>, StoreError> {
        self.run(move |i| async move {
            let (head, _) = i.head().await?;
            let mut out = Vec::new();
            let mut walk = LogWalk::new(after, head, limit, LOG_BUCKET_BITS);
            while let Some((bucket, from, n)) = walk.next() {
                let asked = i32::try_from(n).unwrap_or(i32::MAX);
                let rows: Vec<(i64, String)> = i
                    .cluster
                    .select(&i.q.log_range, (bucket, from as i64, head as i64, asked))
                    .await?;
                let before = out.len();
                for (_, text) in &rows {
                    if !text.is_empty() {
                        out.push(parse("alert event", text)?);
                    }
                }
                let last = rows.last().map(|(s, _)| *s as u64);
                walk.advance(asked as usize, rows.len(), last, out.len() - before);
            }
            Ok(out)
        })
    }

    fn watch_seq(&self) -> watch::Receiver<u64> {
        self.seq_tx.subscribe()
    }

    fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        let rule = rule.clone();
        self.run(move |i| async move {
            let text = json("rule", &rule)?;
            i.cluster
                .execute(&i.q.rule_put, Access::Write, (rule.id.as_str(), text))
                .await?;
            Ok(())
        })
    }

    fn rule(&self, id: &str) -> Result<Option<Rule>, StoreError> {
        let id = id.to_string();
        self.run(move |i| async move {
            let rows: Vec<(String,)> = i.cluster.select(&i.q.rule_get, (id,)).await?;
            rows.first().map(|(r,)| parse("rule", r)).transpose()
        })
    }

    fn rules(&self) -> Result<Vec<Rule>, StoreError> {
        self.run(|i| async move {
            let rows: Vec<(String,)> = i.cluster.select(&i.q.rule_all, ()).await?;
            let mut rules: Vec<Rule> = rows
                .iter()
                .map(|(r,)| parse("rule", r))
                .collect::<Result<_, _>>()?;
            rules.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(rules)
        })
    }

    fn delete_rule(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.rule(id)?.is_some();
        if existed {
            let id = id.to_string();
            self.run(move |i| async move {
                i.cluster
                    .execute(&i.q.rule_drop, Access::Write, (id,))
                    .await?;
                Ok(())
            })?;
        }
        Ok(existed)
    }

    fn expire(&self, _before_ms: i64) -> Result<usize, StoreError> {
        Ok(0)
    }

    fn claim(&self) -> Result<bool, StoreError> {
        let mut w = self.writer.lock();
        let held = w.epoch;
        let next = w.next_seq;
        let sent = Instant::now();
        let outcome = self.run(move |i| async move {
            let (mine, other) = i.take_claim(held.is_some()).await?;
            if !mine {
                return Ok((None, next, other, Vec::new()));
            }
            let (epoch, next, head_event) = match held {
                Some(epoch) => (epoch, next, None),
                None => {
                    let (epoch, last) = i.fence().await?;
                    // Seal the last number taken: its writer is fenced.
                    let there = if last > 0 {
                        i.put_event(last, "", "").await?
                    } else {
                        None
                    };
                    let head_event = there
                        .map(|t| parse::<AlertEvent>("alert event", &t))
                        .transpose()?;
                    tracing::info!(epoch, last_seq = last, holder = %i.me, "took the alert engine's claim");
                    (epoch, last + 1, head_event)
                }
            };
            let (next, logged) = i.recover(epoch, next, head_event).await?;
            Ok((Some(epoch), next, None, logged))
        });
        match outcome {
            Ok((epoch, next, other, logged)) => {
                if held.is_some() && epoch.is_none() {
                    tracing::warn!(holder = ?other, "lost the alert engine's claim");
                }
                w.epoch = epoch;
                w.next_seq = next;
                w.other = other;
                w.valid_until = epoch.map(|_| sent + self.claim_period());
                self.publish(&w);
                for e in &logged {
                    tracing::warn!(id = %e.alert.id, seq = e.seq, event = e.event.as_str(), "logged an alert event left pending");
                }
                if epoch.is_some() {
                    advance(&self.seq_tx, next - 1);
                }
                Ok(epoch.is_some())
            }
            Err(e) => {
                if matches!(e, StoreError::Conflict(_)) {
                    w.epoch = None;
                    self.publish(&w);
                }
                Err(e)
            }
        }
    }

    fn claim_ttl(&self) -> Option<Duration> {
        Some(self.claim_period())
    }

    fn holds_claim(&self) -> bool {
        (self.base.elapsed().as_millis() as u64) < self.held_until_ms.load(Ordering::Acquire)
    }

    fn claimed_by(&self) -> Option<String> {
        self.writer.lock().other.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::alerts::page_cursor;
    use proptest::prelude::*;

    proptest! {
        /// The listing's order is the embedded store's (its cursors sort
        /// as their time keys do).
        #[test]
        fn listing_order_is_the_embedded_order(
            a in (-5i64..5, "[a-c]{0,3}"),
            b in (-5i64..5, "[a-c]{0,3}"),
        ) {
            prop_assert_eq!(
                comes_after(a.0, &a.1, &b),
                page_cursor(a.0, &a.1) > page_cursor(b.0, &b.1)
            );
        }

        /// Reading the log partition by partition finds the first `limit`
        /// events after `after`, whatever the gaps, sealed numbers and
        /// partition edges (4 numbers per partition here).
        #[test]
        fn the_log_walk_finds_the_next_events(
            log in proptest::collection::vec(0u8..3, 1..40),
            after in 0u64..45,
            limit in 1usize..8,
        ) {
            // log[i] is number i + 1: 0 missing, 1 sealed, 2 an event.
            let head = log.len() as u64;
            let at = |seq: u64| log[(seq - 1) as usize];
            let want: Vec<u64> = (after.saturating_add(1)..=head)
                .filter(|s| at(*s) == 2)
                .take(limit)
                .collect();
            let mut walk = LogWalk::new(after, head, limit, 2);
            let mut got: Vec<u64> = Vec::new();
            let mut reads = 0;
            while let Some((bucket, from, n)) = walk.next() {
                reads += 1;
                prop_assert!(reads < 100, "the walk does not end");
                let rows: Vec<u64> = (from + 1..=head)
                    .filter(|s| (s >> 2) as i64 == bucket && at(*s) != 0)
                    .take(n)
                    .collect();
                let events: Vec<u64> = rows.iter().copied().filter(|s| at(*s) == 2).collect();
                got.extend(&events);
                walk.advance(n, rows.len(), rows.last().copied(), events.len());
            }
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn log_partitions_hold_65536_events() {
        assert_eq!(log_bucket(1), 0);
        assert_eq!(log_bucket(65_535), 0);
        assert_eq!(log_bucket(65_536), 1);
        assert_eq!(time_bucket(-1), -1);
        assert_eq!(time_bucket(TIME_BUCKET_MS), 1);
    }
}
