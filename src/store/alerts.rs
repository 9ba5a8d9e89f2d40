//! Storage of alerts, custom alert rules and the alert event log, behind
//! [`AlertStore`]; [`EmbeddedAlerts`] keeps them in the embedded store's
//! fjall database (same directory, same write-ahead log), and
//! [`crate::store::scylla::alerts::ScyllaAlerts`] in ScyllaDB for processes
//! that share it.
//!
//! Every change to an alert is written together with one entry of the
//! **event log** (`seq` → [`AlertEvent`]) in one atomic batch, and sequence
//! numbers are handed out under the same lock as the commit, so the log is
//! in commit order. The log is what deliveries are made from: the webhook
//! dispatcher keeps a durable cursor into it, so an alert raised just before
//! a crash is still delivered after the restart.
//!
//! Keyspaces (values are JSON: small, few, and readable in a dump):
//! - `alerts`: id → [`Alert`];
//! - `alerts_by_time`: `!opened_ms (8, BE) | id` → `()`, newest first;
//! - `alert_events`: `seq (8, BE)` → [`AlertEvent`];
//! - `alert_rules`: id → [`Rule`].

use super::embedded::EmbeddedStore;
use super::{corrupt, decode, encode, StoreError};
use crate::alerts::model::{Alert, AlertEvent, AlertEventType, AlertKind, AlertState, Rule};
use crate::domain::{EntityKind, EntityRef};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::Mutex;
use tokio::sync::watch;

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertQuery {
    /// Only this kind.
    pub kind: Option<AlertKind>,
    /// Only this state.
    pub state: Option<AlertState>,
    /// Only alerts about entities of this kind.
    pub entity_kind: Option<EntityKind>,
    /// Only alerts about this entity.
    pub entity: Option<EntityRef>,
    /// Only alerts at least this severe.
    pub min_severity: Option<u8>,
    /// Only alerts opened at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Continue after this cursor (from a previous page's `next`).
    pub after: Option<String>,
    /// Page size.
    pub limit: usize,
}

impl AlertQuery {
    /// Whether `a` passes the filters (all but `since_ms` and `after`,
    /// which the engines apply while scanning in time order).
    pub(crate) fn matches(&self, a: &Alert) -> bool {
        self.kind.is_none_or(|k| a.kind == k)
            && self.state.is_none_or(|s| a.state == s)
            && self.entity_kind.is_none_or(|k| a.entity.kind == k)
            && self.entity.as_ref().is_none_or(|e| &a.entity == e)
            && self.min_severity.is_none_or(|s| a.severity >= s)
    }
}

/// One page of alerts, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertPage {
    /// The alerts.
    pub alerts: Vec<Alert>,
    /// Cursor of the next page, when there may be one.
    pub next: Option<String>,
}

impl AlertPage {
    /// Takes the next alert (newest first) that matches the query: keeps it
    /// while fewer than `limit` are kept; otherwise sets `next` (the page is
    /// full and more follow) and returns `false`: stop scanning.
    pub(crate) fn offer(&mut self, alert: Alert, limit: usize) -> bool {
        let limit = limit.max(1);
        if self.alerts.len() < limit {
            self.alerts.push(alert);
            return true;
        }
        let last = &self.alerts[limit - 1];
        self.next = Some(page_cursor(last.opened_at_ms, &last.id));
        false
    }
}

/// The cursor of the page that follows the alert opened at `opened_ms`
/// with `id` (the same for every engine).
pub(crate) fn page_cursor(opened_ms: i64, id: &str) -> String {
    hex::encode(time_key(opened_ms, id))
}

/// The time key a [`page_cursor`] encodes.
fn cursor_key(cursor: &str) -> Result<Vec<u8>, StoreError> {
    let k = hex::decode(cursor).map_err(|e| corrupt(cursor.as_bytes(), e))?;
    if k.len() < 8 {
        return Err(corrupt(cursor.as_bytes(), "short cursor"));
    }
    Ok(k)
}

/// The opening time and alert id a [`page_cursor`] points after.
pub(crate) fn parse_page_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let k = cursor_key(cursor)?;
    Ok((opened_of(&k), String::from_utf8_lossy(&k[8..]).into_owned()))
}

/// Storage of alerts, rules and the alert event log.
pub trait AlertStore: Send + Sync + 'static {
    /// Stores `alert` (insert or replace by id) and appends an `event` for
    /// it to the log, atomically; returns the logged event.
    fn record(
        &self,
        alert: &Alert,
        event: AlertEventType,
        at_ms: i64,
    ) -> Result<AlertEvent, StoreError>;

    /// Stores `alert` (insert or replace by id) without logging an event:
    /// a quiet change (more grouped evidence at the same severity).
    fn save(&self, alert: &Alert) -> Result<(), StoreError>;

    /// One alert.
    fn alert(&self, id: &str) -> Result<Option<Alert>, StoreError>;

    /// A page of alerts matching `q`, newest first.
    fn alerts(&self, q: &AlertQuery) -> Result<AlertPage, StoreError>;

    /// Every alert not yet resolved (what the engine resumes after a restart).
    fn unresolved(&self) -> Result<Vec<Alert>, StoreError>;

    /// Up to `limit` events with `seq > after`, in order.
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<AlertEvent>, StoreError>;

    /// Sequence number of the last logged event (0 before the first); the
    /// receiver changes whenever an event is logged.
    fn watch_seq(&self) -> watch::Receiver<u64>;

    /// Stores a rule (insert or replace by id).
    fn put_rule(&self, rule: &Rule) -> Result<(), StoreError>;

    /// One rule.
    fn rule(&self, id: &str) -> Result<Option<Rule>, StoreError>;

    /// Every rule, by id.
    fn rules(&self) -> Result<Vec<Rule>, StoreError>;

    /// Deletes a rule; whether it existed.
    fn delete_rule(&self, id: &str) -> Result<bool, StoreError>;

    /// Drops resolved alerts resolved before `before_ms` and events logged
    /// before it; returns how many entries were dropped.
    fn expire(&self, before_ms: i64) -> Result<usize, StoreError>;

    /// Makes this process the one that changes alerts (the one that runs
    /// the alert engine), or keeps it so: `false` while another process
    /// sharing the store is. A process that stops being it (its claim ran
    /// out) gets [`StoreError::Conflict`] from every change. The embedded
    /// store belongs to one process: always `true`.
    fn claim(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// How long a claim lasts unless [claimed](AlertStore::claim) again;
    /// `None`: it does not expire (one process owns the store).
    fn claim_ttl(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether this process holds the claim now (without asking the store):
    /// what the other singletons of the alert engine's process (the webhook
    /// dispatcher) go by.
    fn holds_claim(&self) -> bool {
        true
    }

    /// Which process holds the claim, when another one does (for messages).
    fn claimed_by(&self) -> Option<String> {
        None
    }
}

/// Alerts in the embedded store's database.
pub struct EmbeddedAlerts {
    db: Database,
    alerts: Keyspace,
    by_time: Keyspace,
    events: Keyspace,
    rules: Keyspace,
    fsync: bool,
    /// Next sequence number; held across the commit so the log is in order.
    next_seq: Mutex<u64>,
    seq_tx: watch::Sender<u64>,
}

fn time_key(opened_ms: i64, id: &str) -> Vec<u8> {
    // Newest first: invert the sign-flipped timestamp.
    let t = !((opened_ms as u64) ^ (1 << 63));
    let mut k = t.to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// The opening time of a [`time_key`] (at least 8 bytes long).
fn opened_of(key: &[u8]) -> i64 {
    let mut arr = [0u8; 8];
    arr.copy_from_slice(&key[..8]);
    ((!u64::from_be_bytes(arr)) ^ (1 << 63)) as i64
}

impl EmbeddedAlerts {
    /// Opens the alert keyspaces in `store`'s database.
    pub fn open(store: &EmbeddedStore) -> Result<Self, StoreError> {
        let db = store.database().clone();
        let ks = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        let alerts = ks("alerts")?;
        let by_time = ks("alerts_by_time")?;
        let events = ks("alert_events")?;
        let rules = ks("alert_rules")?;
        let last = match events.last_key_value() {
            Some(guard) => {
                let (k, _) = guard.into_inner()?;
                let arr: [u8; 8] = k.as_ref().try_into().map_err(|_| corrupt(&k, "seq key"))?;
                u64::from_be_bytes(arr)
            }
            None => 0,
        };
        let (seq_tx, _) = watch::channel(last);
        Ok(EmbeddedAlerts {
            db,
            alerts,
            by_time,
            events,
            rules,
            fsync: store.fsync(),
            next_seq: Mutex::new(last + 1),
            seq_tx,
        })
    }

    /// A write batch that stores `alert` and its place in the time index.
    fn alert_batch(&self, alert: &Alert) -> Result<fjall::OwnedWriteBatch, StoreError> {
        let mut wb = self.db.batch().durability(Some(self.mode()));
        wb.insert(
            &self.alerts,
            alert.id.as_bytes(),
            encode(alert.id.as_bytes(), alert)?,
        );
        wb.insert(&self.by_time, time_key(alert.opened_at_ms, &alert.id), b"");
        Ok(wb)
    }

    fn mode(&self) -> PersistMode {
        super::embedded::persist_mode(self.fsync)
    }
}

impl AlertStore for EmbeddedAlerts {
    fn record(
        &self,
        alert: &Alert,
        event: AlertEventType,
        at_ms: i64,
    ) -> Result<AlertEvent, StoreError> {
        let mut next = self.next_seq.lock();
        let logged = AlertEvent {
            seq: *next,
            event,
            at_ms,
            alert: alert.clone(),
        };
        let seq_key = logged.seq.to_be_bytes();
        let mut wb = self.alert_batch(alert)?;
        wb.insert(&self.events, seq_key, encode(&seq_key, &logged)?);
        wb.commit()?;
        *next += 1;
        drop(next);
        self.seq_tx.send_replace(logged.seq);
        Ok(logged)
    }

    fn save(&self, alert: &Alert) -> Result<(), StoreError> {
        let _order = self.next_seq.lock();
        self.alert_batch(alert)?.commit()?;
        Ok(())
    }

    fn alert(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        match self.alerts.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    fn alerts(&self, q: &AlertQuery) -> Result<AlertPage, StoreError> {
        let start = match &q.after {
            Some(c) => {
                let mut k = cursor_key(c)?;
                k.push(0); // strictly after
                k
            }
            None => Vec::new(),
        };
        let mut page = AlertPage::default();
        for guard in self.by_time.range(start..) {
            let (k, _) = guard.into_inner()?;
            if k.len() < 8 {
                return Err(corrupt(&k, "short time key"));
            }
            if q.since_ms.is_some_and(|since| opened_of(&k) < since) {
                break;
            }
            let Some(alert) = self.alert(&String::from_utf8_lossy(&k[8..]))? else {
                continue; // expired between the two reads
            };
            if q.matches(&alert) && !page.offer(alert, q.limit) {
                break;
            }
        }
        Ok(page)
    }

    fn unresolved(&self) -> Result<Vec<Alert>, StoreError> {
        let mut out = Vec::new();
        for guard in self.alerts.iter() {
            let (k, v) = guard.into_inner()?;
            let alert: Alert = decode(&k, &v)?;
            if alert.state != AlertState::Resolved {
                out.push(alert);
            }
        }
        Ok(out)
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<AlertEvent>, StoreError> {
        let from = after.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for guard in self.events.range(from..).take(limit) {
            let (k, v) = guard.into_inner()?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    fn watch_seq(&self) -> watch::Receiver<u64> {
        self.seq_tx.subscribe()
    }

    fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        let key = rule.id.as_bytes();
        let mut wb = self.db.batch().durability(Some(self.mode()));
        wb.insert(&self.rules, key, encode(key, rule)?);
        wb.commit()?;
        Ok(())
    }

    fn rule(&self, id: &str) -> Result<Option<Rule>, StoreError> {
        match self.rules.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    fn rules(&self) -> Result<Vec<Rule>, StoreError> {
        let mut out = Vec::new();
        for guard in self.rules.iter() {
            let (k, v) = guard.into_inner()?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    fn delete_rule(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.rules.get(id.as_bytes())?.is_some();
        if existed {
            let mut wb = self.db.batch().durability(Some(self.mode()));
            wb.remove(&self.rules, id.as_bytes());
            wb.commit()?;
        }
        Ok(existed)
    }

    fn expire(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut wb = self.db.batch().durability(Some(self.mode()));
        let mut dropped = 0;
        for guard in self.alerts.iter() {
            let (k, v) = guard.into_inner()?;
            let alert: Alert = decode(&k, &v)?;
            if alert.state == AlertState::Resolved
                && alert.resolved_at_ms.is_some_and(|t| t < before_ms)
            {
                wb.remove(&self.alerts, k.as_ref());
                wb.remove(&self.by_time, time_key(alert.opened_at_ms, &alert.id));
                dropped += 1;
            }
        }
        // The newest event always stays, so the next sequence number is
        // still known after a restart.
        let newest = *self.seq_tx.borrow();
        for guard in self.events.iter() {
            let (k, v) = guard.into_inner()?;
            let event: AlertEvent = decode(&k, &v)?;
            if event.at_ms >= before_ms || event.seq >= newest {
                break;
            }
            wb.remove(&self.events, k.as_ref());
            dropped += 1;
        }
        wb.commit()?;
        Ok(dropped)
    }
}

/// What every engine must do is in `tests/store_conformance.rs` (logging,
/// listing, rules); these are the embedded engine's own (reopening, expiry).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::sample_alert as alert;
    use crate::config::StoreConfig;

    fn open(dir: &std::path::Path) -> EmbeddedAlerts {
        let store = EmbeddedStore::open_at(dir, &StoreConfig::default()).expect("store");
        EmbeddedAlerts::open(&store).expect("alerts")
    }

    #[test]
    fn events_are_logged_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let s = open(dir.path());
            let mut watch = s.watch_seq();
            assert_eq!(*watch.borrow_and_update(), 0);
            let a = alert("a", AlertKind::Churn, 1_000, 3);
            assert_eq!(
                s.record(&a, AlertEventType::Raised, 1_000)
                    .expect("rec")
                    .seq,
                1
            );
            let mut a2 = a.clone();
            a2.state = AlertState::Resolved;
            a2.resolved_at_ms = Some(2_000);
            assert_eq!(
                s.record(&a2, AlertEventType::Resolved, 2_000)
                    .expect("rec")
                    .seq,
                2
            );
            assert!(watch.has_changed().expect("open"));
            assert_eq!(s.alert("a").expect("get"), Some(a2));
            assert!(s.unresolved().expect("unresolved").is_empty());
        }
        let s = open(dir.path());
        let b = alert("b", AlertKind::VolumeSpike, 3_000, 7);
        assert_eq!(
            s.record(&b, AlertEventType::Raised, 3_000)
                .expect("rec")
                .seq,
            3
        );
        let events = s.events_after(1, 10).expect("events");
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(events[0].idempotency_key(), "a.2");
        assert_eq!(s.unresolved().expect("unresolved"), vec![b]);
    }

    #[test]
    fn expiry_drops_old_resolved_alerts_and_events_but_keeps_the_sequence() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let s = open(dir.path());
            let mut a = alert("old", AlertKind::Churn, 1_000, 1);
            s.record(&a, AlertEventType::Raised, 1_000).expect("rec");
            a.state = AlertState::Resolved;
            a.resolved_at_ms = Some(2_000);
            s.record(&a, AlertEventType::Resolved, 2_000).expect("rec");
            let open_one = alert("open", AlertKind::Churn, 1_500, 1);
            s.record(&open_one, AlertEventType::Raised, 1_500)
                .expect("rec");
            assert_eq!(s.expire(10_000).expect("expire"), 3);
            assert_eq!(s.alert("old").expect("get"), None);
            assert!(s.alert("open").expect("get").is_some());
        }
        let s = open(dir.path());
        let c = alert("c", AlertKind::Churn, 20_000, 1);
        assert_eq!(
            s.record(&c, AlertEventType::Raised, 20_000)
                .expect("rec")
                .seq,
            4
        );
    }
}
