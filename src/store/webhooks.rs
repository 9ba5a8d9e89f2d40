//! Storage of webhook endpoints and their delivery outbox, behind
//! [`WebhookStore`]; [`EmbeddedWebhooks`] keeps them in the embedded store's
//! fjall database (same directory, same write-ahead log as the alerts), and
//! [`crate::store::scylla::webhooks::ScyllaWebhooks`] in ScyllaDB.
//!
//! The **outbox** is durable: an alert event becomes one delivery per
//! matching endpoint, and those deliveries are written in the same atomic
//! batch as the **fan-out cursor** (the last alert event seq turned into
//! deliveries). A crash before the commit leaves both as they were (the
//! events are fanned out again); after it, both moved together. So every
//! event is turned into deliveries exactly once, and a delivery leaves the
//! outbox only when its endpoint answered 2xx or the endpoint is deleted.
//!
//! Every read-modify-write (fan-out, attempt results, resume, delete) runs
//! under one lock, so per-endpoint stats stay consistent with the outbox.
//!
//! Keyspaces (values are JSON except bodies and the cursor):
//! - `webhook_endpoints`: id → [`Endpoint`] (with its secret);
//! - `webhook_stats`: id → [`EndpointStats`];
//! - `webhook_outbox`: `endpoint id | 0 | seq (8, BE)` → [`Delivery`];
//! - `webhook_bodies`: same key → the exact JSON body that is signed and sent
//!   (the same bytes on every retry, even after the alert log expired);
//! - `webhook_meta`: `cursor` → seq (8, BE).

use super::embedded::EmbeddedStore;
use super::{corrupt, decode, encode, StoreError};
use crate::alerts::model::{AlertEvent, AlertKind};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tokio::sync::watch;

/// Why and since when an endpoint gets no more attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pause {
    /// When it was paused (ms).
    pub at_ms: i64,
    /// Why (`10 consecutive failed attempts`, `oldest pending delivery is …`).
    pub reason: String,
}

/// A registered webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Id (`wh_…`).
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Alert kinds delivered; empty = every kind.
    pub kinds: Vec<AlertKind>,
    /// Only alerts at least this severe (1–10).
    pub min_severity: Option<u8>,
    /// A note for people.
    pub description: Option<String>,
    /// The HMAC key deliveries are signed with.
    pub secret: String,
    /// When it was registered (ms).
    pub created_at_ms: i64,
    /// Events with a seq above this are delivered to it (the log's last seq
    /// when it was registered: it gets what happens after).
    pub from_seq: u64,
    /// Set while it is paused.
    pub paused: Option<Pause>,
    /// Last time it was resumed (ms); pending age is counted from here.
    pub resumed_at_ms: Option<i64>,
}

impl Endpoint {
    /// Whether `event` is delivered to this endpoint.
    pub fn wants(&self, event: &AlertEvent) -> bool {
        event.seq > self.from_seq
            && (self.kinds.is_empty() || self.kinds.contains(&event.alert.kind))
            && self.min_severity.is_none_or(|s| event.alert.severity >= s)
    }
}

/// Delivery counters of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndpointStats {
    /// Deliveries answered with a 2xx.
    pub delivered: u64,
    /// Attempts that failed (non-2xx, timeout, connection error).
    pub failed_attempts: u64,
    /// Failed attempts since the last success (or resume).
    pub consecutive_failures: u32,
    /// Deliveries in the outbox.
    pub pending: u64,
    /// Last 2xx (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_ms: Option<i64>,
    /// Last attempt (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_ms: Option<i64>,
    /// HTTP status of the last attempt that got a response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One pending delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The endpoint.
    pub endpoint_id: String,
    /// The alert event's seq.
    pub seq: u64,
    /// `alert.raised`, `alert.updated`, …
    pub event_type: String,
    /// [`AlertEvent::idempotency_key`].
    pub idempotency_key: String,
    /// When it entered the outbox (ms).
    pub created_at_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not attempted before this (ms).
    pub next_attempt_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl EndpointStats {
    /// Counts a 2xx at `at_ms` (one delivery left the outbox).
    pub fn succeeded(&mut self, at_ms: i64, status: u16) {
        self.delivered += 1;
        self.pending = self.pending.saturating_sub(1);
        self.consecutive_failures = 0;
        self.last_success_ms = Some(at_ms);
        self.last_attempt_ms = Some(at_ms);
        self.last_status = Some(status);
    }

    /// Counts a failed attempt.
    pub fn failed(&mut self, failure: &Failure) {
        self.failed_attempts += 1;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_attempt_ms = Some(failure.at_ms);
        if failure.status.is_some() {
            self.last_status = failure.status;
        }
        self.last_error = Some(failure.error.clone());
    }
}

impl Delivery {
    /// A new delivery of `event` to `endpoint`, due at `now_ms`.
    pub fn new(endpoint: &str, event: &AlertEvent, now_ms: i64) -> Delivery {
        Delivery {
            endpoint_id: endpoint.to_string(),
            seq: event.seq,
            event_type: event_type(event),
            idempotency_key: event.idempotency_key(),
            created_at_ms: now_ms,
            attempts: 0,
            next_attempt_ms: now_ms,
            last_error: None,
        }
    }

    /// Records a failed attempt and when to try again.
    pub fn failed(&mut self, failure: &Failure) {
        self.attempts = self.attempts.saturating_add(1);
        self.next_attempt_ms = failure.next_attempt_ms;
        self.last_error = Some(failure.error.clone());
    }
}

/// `alert.<event>`: a delivery's type (the payload's `type`, the
/// `Starling-Event` header).
pub fn event_type(event: &AlertEvent) -> String {
    format!("alert.{}", event.event.as_str())
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// When (ms).
    pub at_ms: i64,
    /// The response status, when there was a response.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: String,
    /// When to try again (ms).
    pub next_attempt_ms: i64,
}

/// When an endpoint is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PausePolicy {
    /// Consecutive failed attempts that pause it.
    pub max_consecutive_failures: u32,
    /// Age of the oldest pending delivery (counted from the resume, if
    /// later) that pauses it at a failure, ms.
    pub max_age_ms: i64,
}

impl PausePolicy {
    /// Why an endpoint with `stats` whose oldest pending delivery was
    /// created at `oldest_ms` (counted from `resumed_ms` when later) should
    /// be paused at `now_ms`, if it should.
    pub fn reason(
        &self,
        stats: &EndpointStats,
        oldest_ms: Option<i64>,
        resumed_ms: Option<i64>,
        now_ms: i64,
    ) -> Option<String> {
        if stats.consecutive_failures >= self.max_consecutive_failures {
            return Some(format!(
                "{} consecutive failed attempts (last: {})",
                stats.consecutive_failures,
                stats.last_error.as_deref().unwrap_or("unknown")
            ));
        }
        let since = oldest_ms?.max(resumed_ms.unwrap_or(i64::MIN));
        let age = now_ms.saturating_sub(since);
        (age >= self.max_age_ms).then(|| {
            format!(
                "oldest pending delivery is {} s old (limit {} s)",
                age / 1000,
                self.max_age_ms / 1000
            )
        })
    }

    /// The pause of `endpoint` after `failure`, when [`Self::reason`] gives
    /// one (`stats` already count the failure).
    pub fn pause(
        &self,
        stats: &EndpointStats,
        oldest_ms: Option<i64>,
        endpoint: &Endpoint,
        failure: &Failure,
    ) -> Option<Pause> {
        self.reason(stats, oldest_ms, endpoint.resumed_at_ms, failure.at_ms)
            .map(|reason| Pause {
                at_ms: failure.at_ms,
                reason,
            })
    }
}

/// What is due for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// Deliveries due now, oldest seq first, at most the asked limit.
    pub ready: Vec<Delivery>,
    /// The earliest `next_attempt_ms` of the pending deliveries not
    /// returned and not busy; `Some(now)` or less when more are due.
    pub next_ms: Option<i64>,
}

impl Due {
    /// What is due at `now_ms` among an endpoint's `pending` deliveries
    /// (oldest seq first), at most `limit`, skipping the `busy` seqs.
    pub fn collect(
        pending: impl IntoIterator<Item = Result<Delivery, StoreError>>,
        now_ms: i64,
        limit: usize,
        busy: &HashSet<u64>,
    ) -> Result<Due, StoreError> {
        let mut due = Due::default();
        for d in pending {
            let d = d?;
            if busy.contains(&d.seq) {
                continue;
            }
            if d.next_attempt_ms <= now_ms && due.ready.len() < limit {
                due.ready.push(d);
                continue;
            }
            due.next_ms = Some(
                due.next_ms
                    .map_or(d.next_attempt_ms, |n| n.min(d.next_attempt_ms)),
            );
            if due.next_ms.is_some_and(|n| n <= now_ms) {
                break; // more are due than asked for; no need to look further
            }
        }
        Ok(due)
    }
}

/// The deliveries `events` make: one per event and endpoint that
/// [wants](Endpoint::wants) it, with the body paired with the event.
pub fn fan_out<'a>(
    endpoints: &'a [Endpoint],
    events: &'a [(&AlertEvent, Vec<u8>)],
    now_ms: i64,
) -> impl Iterator<Item = (Delivery, &'a [u8])> + 'a {
    events.iter().flat_map(move |(event, body)| {
        endpoints
            .iter()
            .filter(|e| e.wants(event))
            .map(move |e| (Delivery::new(&e.id, event, now_ms), body.as_slice()))
    })
}

/// Counts one more delivery for `endpoint` in `added` (what
/// [`WebhookStore::enqueue`] returns).
pub fn count_added(added: &mut Vec<(String, u64)>, endpoint: &str) {
    match added.iter_mut().find(|(e, _)| e == endpoint) {
        Some((_, n)) => *n += 1,
        None => added.push((endpoint.to_string(), 1)),
    }
}

/// Storage of webhook endpoints, their outbox, stats and the fan-out cursor.
pub trait WebhookStore: Send + Sync + 'static {
    /// Registers an endpoint (fresh stats).
    fn create(&self, endpoint: &Endpoint) -> Result<(), StoreError>;

    /// One endpoint and its stats.
    fn endpoint(&self, id: &str) -> Result<Option<(Endpoint, EndpointStats)>, StoreError>;

    /// Every endpoint and its stats, by id.
    fn endpoints(&self) -> Result<Vec<(Endpoint, EndpointStats)>, StoreError>;

    /// Deletes an endpoint, its stats and its pending deliveries; whether it
    /// existed.
    fn delete(&self, id: &str) -> Result<bool, StoreError>;

    /// Un-pauses an endpoint: clears the pause and the consecutive failures
    /// and makes its pending deliveries due now. `None`: no such endpoint.
    fn resume(&self, id: &str, now_ms: i64) -> Result<Option<Endpoint>, StoreError>;

    /// Changes whenever an endpoint is created, deleted or resumed.
    fn watch_endpoints(&self) -> watch::Receiver<u64>;

    /// The last alert event seq turned into deliveries (0 before any).
    fn cursor(&self) -> Result<u64, StoreError>;

    /// Fans `events` out: one delivery (due at `now_ms`, sending the body
    /// paired with the event) per event and endpoint that
    /// [wants](Endpoint::wants) it, judged against the endpoints as they are
    /// at the commit; moves the cursor to `cursor` in the same atomic batch.
    /// Returns how many deliveries were added per endpoint.
    fn enqueue(
        &self,
        events: &[(&AlertEvent, Vec<u8>)],
        cursor: u64,
        now_ms: i64,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    /// Up to `limit` deliveries of `endpoint` due at `now_ms`, skipping the
    /// seqs in `busy` (in flight).
    fn due(
        &self,
        endpoint: &str,
        now_ms: i64,
        limit: usize,
        busy: &HashSet<u64>,
    ) -> Result<Due, StoreError>;

    /// The body of a pending delivery.
    fn body(&self, endpoint: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records a 2xx: the delivery leaves the outbox. Whether it was there
    /// (not when the endpoint was deleted meanwhile).
    fn delivered(
        &self,
        endpoint: &str,
        seq: u64,
        at_ms: i64,
        status: u16,
    ) -> Result<bool, StoreError>;

    /// Records a failed attempt and schedules the next; pauses the endpoint
    /// when `policy` says so and returns the pause.
    fn failed(
        &self,
        endpoint: &str,
        seq: u64,
        failure: &Failure,
        policy: &PausePolicy,
    ) -> Result<Option<Pause>, StoreError>;
}

/// Webhooks in the embedded store's database.
pub struct EmbeddedWebhooks {
    db: Database,
    endpoints: Keyspace,
    stats: Keyspace,
    outbox: Keyspace,
    bodies: Keyspace,
    meta: Keyspace,
    fsync: bool,
    /// Serialises every read-modify-write.
    write: Mutex<()>,
    changes: watch::Sender<u64>,
}

const CURSOR_KEY: &[u8] = b"cursor";

fn prefix(endpoint: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(endpoint.len() + 9);
    k.extend_from_slice(endpoint.as_bytes());
    k.push(0);
    k
}

fn outbox_key(endpoint: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(endpoint);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

impl EmbeddedWebhooks {
    /// Opens the webhook keyspaces in `store`'s database.
    pub fn open(store: &EmbeddedStore) -> Result<Self, StoreError> {
        let db = store.database().clone();
        let ks = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        Ok(EmbeddedWebhooks {
            endpoints: ks("webhook_endpoints")?,
            stats: ks("webhook_stats")?,
            outbox: ks("webhook_outbox")?,
            bodies: ks("webhook_bodies")?,
            meta: ks("webhook_meta")?,
            fsync: store.fsync(),
            write: Mutex::new(()),
            changes: watch::channel(0).0,
            db,
        })
    }

    fn mode(&self) -> PersistMode {
        super::embedded::persist_mode(self.fsync)
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        ks: &Keyspace,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match ks.get(key)? {
            Some(v) => Ok(Some(decode(key, &v)?)),
            None => Ok(None),
        }
    }

    fn stats_of(&self, id: &str) -> Result<EndpointStats, StoreError> {
        Ok(self.get(&self.stats, id.as_bytes())?.unwrap_or_default())
    }

    /// The oldest pending delivery of `endpoint` (lowest seq).
    fn oldest(&self, endpoint: &str) -> Result<Option<Delivery>, StoreError> {
        match self.outbox.prefix(prefix(endpoint)).next() {
            Some(guard) => {
                let (k, v) = guard.into_inner()?;
                Ok(Some(decode(&k, &v)?))
            }
            None => Ok(None),
        }
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

impl WebhookStore for EmbeddedWebhooks {
    fn create(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let key = endpoint.id.as_bytes();
        {
            let _w = self.write.lock();
            let mut wb = self.db.batch().durability(Some(self.mode()));
            wb.insert(&self.endpoints, key, encode(key, endpoint)?);
            wb.insert(&self.stats, key, encode(key, &EndpointStats::default())?);
            wb.commit()?;
        }
        self.changed();
        Ok(())
    }

    fn endpoint(&self, id: &str) -> Result<Option<(Endpoint, EndpointStats)>, StoreError> {
        match self.get::<Endpoint>(&self.endpoints, id.as_bytes())? {
            Some(e) => Ok(Some((e, self.stats_of(id)?))),
            None => Ok(None),
        }
    }

    fn endpoints(&self) -> Result<Vec<(Endpoint, EndpointStats)>, StoreError> {
        let mut out = Vec::new();
        for guard in self.endpoints.iter() {
            let (k, v) = guard.into_inner()?;
            let e: Endpoint = decode(&k, &v)?;
            let stats = self.stats_of(&e.id)?;
            out.push((e, stats));
        }
        Ok(out)
    }

    fn delete(&self, id: &str) -> Result<bool, StoreError> {
        {
            let _w = self.write.lock();
            if self.endpoints.get(id.as_bytes())?.is_none() {
                return Ok(false);
            }
            let mut wb = self.db.batch().durability(Some(self.mode()));
            wb.remove(&self.endpoints, id.as_bytes());
            wb.remove(&self.stats, id.as_bytes());
            for guard in self.outbox.prefix(prefix(id)) {
                let k = guard.key()?;
                wb.remove(&self.outbox, k.as_ref());
                wb.remove(&self.bodies, k.as_ref());
            }
            wb.commit()?;
        }
        self.changed();
        Ok(true)
    }

    fn resume(&self, id: &str, now_ms: i64) -> Result<Option<Endpoint>, StoreError> {
        let resumed = {
            let _w = self.write.lock();
            let key = id.as_bytes();
            let Some(mut endpoint) = self.get::<Endpoint>(&self.endpoints, key)? else {
                return Ok(None);
            };
            endpoint.paused = None;
            endpoint.resumed_at_ms = Some(now_ms);
            let mut stats = self.stats_of(id)?;
            stats.consecutive_failures = 0;
            let mut wb = self.db.batch().durability(Some(self.mode()));
            wb.insert(&self.endpoints, key, encode(key, &endpoint)?);
            wb.insert(&self.stats, key, encode(key, &stats)?);
            for guard in self.outbox.prefix(prefix(id)) {
                let (k, v) = guard.into_inner()?;
                let mut d: Delivery = decode(&k, &v)?;
                if d.next_attempt_ms > now_ms {
                    d.next_attempt_ms = now_ms;
                    wb.insert(&self.outbox, k.as_ref(), encode(&k, &d)?);
                }
            }
            wb.commit()?;
            endpoint
        };
        self.changed();
        Ok(Some(resumed))
    }

    fn watch_endpoints(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn cursor(&self) -> Result<u64, StoreError> {
        match self.meta.get(CURSOR_KEY)? {
            Some(v) => {
                let arr: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| corrupt(CURSOR_KEY, "cursor"))?;
                Ok(u64::from_be_bytes(arr))
            }
            None => Ok(0),
        }
    }

    fn enqueue(
        &self,
        events: &[(&AlertEvent, Vec<u8>)],
        cursor: u64,
        now_ms: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let _w = self.write.lock();
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for guard in self.endpoints.iter() {
            let (k, v) = guard.into_inner()?;
            endpoints.push(decode(&k, &v)?);
        }
        let mut added: Vec<(String, u64)> = Vec::new();
        let mut wb = self.db.batch().durability(Some(self.mode()));
        for (delivery, body) in fan_out(&endpoints, events, now_ms) {
            let key = outbox_key(&delivery.endpoint_id, delivery.seq);
            if self.outbox.get(&key)?.is_some() {
                continue; // already fanned out (never with one dispatcher)
            }
            wb.insert(&self.outbox, key.as_slice(), encode(&key, &delivery)?);
            wb.insert(&self.bodies, key.as_slice(), body.to_vec());
            count_added(&mut added, &delivery.endpoint_id);
        }
        for (id, n) in &added {
            let mut stats = self.stats_of(id)?;
            stats.pending += n;
            wb.insert(&self.stats, id.as_bytes(), encode(id.as_bytes(), &stats)?);
        }
        wb.insert(&self.meta, CURSOR_KEY, cursor.to_be_bytes());
        wb.commit()?;
        Ok(added)
    }

    fn due(
        &self,
        endpoint: &str,
        now_ms: i64,
        limit: usize,
        busy: &HashSet<u64>,
    ) -> Result<Due, StoreError> {
        let pending = self.outbox.prefix(prefix(endpoint)).map(|guard| {
            let (k, v) = guard.into_inner()?;
            decode::<Delivery>(&k, &v)
        });
        Due::collect(pending, now_ms, limit, busy)
    }

    fn body(&self, endpoint: &str, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .bodies
            .get(outbox_key(endpoint, seq))?
            .map(|v| v.as_ref().to_vec()))
    }

    fn delivered(
        &self,
        endpoint: &str,
        seq: u64,
        at_ms: i64,
        status: u16,
    ) -> Result<bool, StoreError> {
        let _w = self.write.lock();
        let key = outbox_key(endpoint, seq);
        if self.outbox.get(&key)?.is_none() {
            return Ok(false);
        }
        let mut stats = self.stats_of(endpoint)?;
        stats.succeeded(at_ms, status);
        let mut wb = self.db.batch().durability(Some(self.mode()));
        wb.remove(&self.outbox, key.as_slice());
        wb.remove(&self.bodies, key.as_slice());
        wb.insert(
            &self.stats,
            endpoint.as_bytes(),
            encode(endpoint.as_bytes(), &stats)?,
        );
        wb.commit()?;
        Ok(true)
    }

    fn failed(
        &self,
        endpoint: &str,
        seq: u64,
        failure: &Failure,
        policy: &PausePolicy,
    ) -> Result<Option<Pause>, StoreError> {
        let pause = {
            let _w = self.write.lock();
            let key = outbox_key(endpoint, seq);
            let Some(mut d) = self.get::<Delivery>(&self.outbox, &key)? else {
                return Ok(None);
            };
            let Some(mut ep) = self.get::<Endpoint>(&self.endpoints, endpoint.as_bytes())? else {
                return Ok(None);
            };
            d.failed(failure);
            let mut stats = self.stats_of(endpoint)?;
            stats.failed(failure);
            let mut wb = self.db.batch().durability(Some(self.mode()));
            wb.insert(&self.outbox, key.as_slice(), encode(&key, &d)?);
            let mut pause = None;
            if ep.paused.is_none() {
                let oldest = self.oldest(endpoint)?.map(|o| o.created_at_ms);
                if let Some(p) = policy.pause(&stats, oldest, &ep, failure) {
                    ep.paused = Some(p.clone());
                    wb.insert(
                        &self.endpoints,
                        endpoint.as_bytes(),
                        encode(endpoint.as_bytes(), &ep)?,
                    );
                    pause = Some(p);
                }
            }
            wb.insert(
                &self.stats,
                endpoint.as_bytes(),
                encode(endpoint.as_bytes(), &stats)?,
            );
            wb.commit()?;
            pause
        };
        if pause.is_some() {
            self.changed();
        }
        Ok(pause)
    }
}

/// What every engine must do is in `tests/store_conformance.rs` (fan-out,
/// due lists, attempts, pauses, deletes); these are the pure rules.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::{sample_alert, AlertEventType};

    pub(crate) fn endpoint(id: &str) -> Endpoint {
        Endpoint {
            id: id.into(),
            url: "http://127.0.0.1:1/hook".into(),
            kinds: vec![],
            min_severity: None,
            description: None,
            secret: "whsec_test".into(),
            created_at_ms: 1_000,
            from_seq: 0,
            paused: None,
            resumed_at_ms: None,
        }
    }

    fn event(seq: u64, kind: AlertKind, severity: u8) -> AlertEvent {
        AlertEvent {
            seq,
            event: AlertEventType::Raised,
            at_ms: 5,
            alert: sample_alert("a", kind, 0, severity),
        }
    }

    #[test]
    fn endpoints_match_by_kind_severity_and_registration_seq() {
        let mut e = endpoint("wh_a");
        assert!(e.wants(&event(1, AlertKind::Churn, 1)));
        e.kinds = vec![AlertKind::VolumeSpike];
        e.min_severity = Some(5);
        e.from_seq = 3;
        assert!(!e.wants(&event(4, AlertKind::Churn, 9)));
        assert!(!e.wants(&event(4, AlertKind::VolumeSpike, 4)));
        assert!(!e.wants(&event(3, AlertKind::VolumeSpike, 9)));
        assert!(e.wants(&event(4, AlertKind::VolumeSpike, 5)));
    }

    #[test]
    fn the_pause_rule_counts_failures_and_age_from_the_last_resume() {
        let policy = PausePolicy {
            max_consecutive_failures: 3,
            max_age_ms: 10_000,
        };
        let mut stats = EndpointStats {
            consecutive_failures: 2,
            last_error: Some("HTTP 502".into()),
            ..Default::default()
        };
        assert_eq!(policy.reason(&stats, Some(0), None, 9_999), None);
        assert!(policy
            .reason(&stats, Some(0), None, 10_000)
            .is_some_and(|r| r.contains("10 s old")));
        assert_eq!(policy.reason(&stats, Some(0), Some(5_000), 10_000), None);
        assert_eq!(policy.reason(&stats, None, None, i64::MAX), None);
        stats.consecutive_failures = 3;
        assert!(policy
            .reason(&stats, None, None, 0)
            .is_some_and(|r| r.contains("3 consecutive") && r.contains("HTTP 502")));
    }
}
