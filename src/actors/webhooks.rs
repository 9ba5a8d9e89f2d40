//! The webhook dispatcher: turns alert events into deliveries and POSTs
//! them, signed, to the endpoints registered over `/api/webhooks`.
//!
//! Two loops share one task:
//! - **fan-out**: woken by the alert log's `watch_seq` (or every
//!   `webhooks.poll_interval_ms`), it reads the events after the durable
//!   cursor and writes one delivery per matching endpoint into the outbox,
//!   moving the cursor in the same atomic batch
//!   ([`WebhookStore::enqueue`]);
//! - **delivery**: due deliveries are POSTed as JSON (see [`payload`]) with
//!   `Starling-Event`, `Starling-Idempotency-Key` and `Starling-Signature:
//!   t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` ([`sign`]). A 2xx
//!   removes the delivery; anything else (status, timeout, connection
//!   error) schedules a retry after an exponential back-off with full
//!   jitter ([`backoff_ms`]). An endpoint is paused after
//!   `max_consecutive_failures` failed attempts in a row, or at a failure
//!   when its oldest pending delivery is older than `max_age_s`; it keeps
//!   its deliveries and gets no attempts until resumed over the API.
//!
//! Each endpoint has at most `max_in_flight_per_endpoint` requests in
//! flight; requests run concurrently on this actor's arbiter, so one slow
//! endpoint holds back only its own deliveries. Delivery is at least once:
//! a crash between a 2xx and its commit sends that delivery again, with the
//! same idempotency key.
//!
//! With a shared store (ScyllaDB) every process may register endpoints, but
//! only the process running the alert engine (holding its claim,
//! [`AlertStore::holds_claim`]) delivers; the dispatchers of the others
//! stand by and take over with the claim.
//!
//! Owns: the HTTP client and the in-flight requests; the outbox and the
//! cursor are in the store, so a restart loses nothing (in-flight attempts
//! are made again). Mailbox: none used ([`MAILBOX`]); it is driven by the
//! store's watches. Restart policy: permanent; a store error stops it and
//! the supervisor restarts it after its back-off.

use super::supervisor::{run_work, LifeGuard};
use crate::alerts::model::{Alert, AlertEvent};
use crate::config::WebhooksConfig;
use crate::store::alerts::AlertStore;
use crate::store::webhooks::{event_type, Delivery, Endpoint, Failure, PausePolicy, WebhookStore};
use crate::store::StoreError;
use crate::telemetry::metrics;
use actix::prelude::*;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use hmac::{KeyInit as _, Mac as _};
use rand::Rng;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Control mailbox capacity.
pub const MAILBOX: usize = 4;
/// Most alert events turned into deliveries per store batch.
const FAN_OUT_PAGE: usize = 256;
/// `User-Agent` of deliveries.
const USER_AGENT: &str = concat!("Starling-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Errors that stop the dispatcher (the supervisor restarts it).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An event could not be turned into a payload.
    #[error("payload of event {seq}: {message}")]
    Payload {
        /// The event.
        seq: u64,
        /// Why.
        message: String,
    },
    /// The HTTPS client could not be set up.
    #[error("tls: {0}")]
    Tls(String),
    /// Another process took the alert engine's claim, and with it delivery.
    #[error("another process took the alert engine's claim")]
    LostClaim,
}

/// The JSON body of a delivery.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// The idempotency key ([`AlertEvent::idempotency_key`]).
    pub id: String,
    /// `alert.raised`, `alert.updated`, `alert.acknowledged`, `alert.resolved`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened (RFC 3339, UTC, milliseconds).
    pub created_at: String,
    /// The alert after the change.
    pub alert: &'a Alert,
}

/// The exact body sent for `event`.
pub fn payload(event: &AlertEvent) -> Result<Vec<u8>, WebhookError> {
    let created_at = chrono::DateTime::from_timestamp_millis(event.at_ms)
        .ok_or_else(|| WebhookError::Payload {
            seq: event.seq,
            message: format!("time {} ms is out of range", event.at_ms),
        })?
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::to_vec(&Payload {
        id: event.idempotency_key(),
        event_type: event_type(event),
        created_at,
        alert: &event.alert,
    })
    .map_err(|e| WebhookError::Payload {
        seq: event.seq,
        message: e.to_string(),
    })
}

/// Hex HMAC-SHA256 of `"<t>.<body>"` keyed with the endpoint's secret (the
/// whole `whsec_…` string, as bytes).
pub fn signature_v1(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `Starling-Signature` header value: `t=<t>,v1=<signature>`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", signature_v1(secret, t, body))
}

/// Wait before the next attempt after `attempts` failed ones (1, 2, …):
/// uniform in `0..=min(max_ms, base_ms · 2^(attempts−1))` (full jitter).
pub fn backoff_ms(attempts: u32, base_ms: u64, max_ms: u64, rng: &mut impl Rng) -> u64 {
    let doubling = attempts.saturating_sub(1).min(63);
    let ceiling = base_ms.saturating_mul(1u64 << doubling).min(max_ms);
    rng.gen_range(0..=ceiling)
}

/// What the dispatcher needs.
#[derive(Clone)]
pub struct WebhookDeps {
    /// The alert event log.
    pub alerts: Arc<dyn AlertStore>,
    /// Endpoints, outbox, cursor.
    pub store: Arc<dyn WebhookStore>,
    /// Settings.
    pub cfg: WebhooksConfig,
}

/// The dispatcher actor.
pub struct Dispatcher {
    deps: Option<WebhookDeps>,
    guard: LifeGuard,
}

impl Dispatcher {
    /// A dispatcher.
    pub fn new(deps: WebhookDeps, guard: LifeGuard) -> Self {
        Dispatcher {
            deps: Some(deps),
            guard,
        }
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(deps) = self.deps.take() else {
            return;
        };
        run_work(self, ctx, run(deps), |a| &mut a.guard, |_| false);
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An endpoint as the dispatcher tracks it.
struct Active {
    endpoint: Endpoint,
    /// Seqs with a request in flight.
    busy: HashSet<u64>,
    /// Don't look at its outbox before this (ms); 0 = now.
    next_scan_ms: i64,
}

/// What one attempt came to.
struct Attempted {
    endpoint_id: String,
    seq: u64,
    /// Attempts made before this one.
    attempts_before: u32,
    at_ms: i64,
    result: Result<u16, (Option<u16>, String)>,
}

/// The HTTP client: no redirects (a 3xx is a failure), rustls with the
/// system's roots for https.
fn client(cfg: &WebhooksConfig) -> Result<awc::Client, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "webhooks: could not load a system root certificate");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(
            ignored,
            "webhooks: no system root certificates: https endpoints will fail"
        );
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let timeout = Duration::from_millis(cfg.timeout_ms);
    Ok(awc::Client::builder()
        .connector(
            awc::Connector::new()
                .rustls_0_23(Arc::new(tls))
                .timeout(timeout),
        )
        .timeout(timeout)
        .disable_redirects()
        .add_default_header((awc::http::header::USER_AGENT, USER_AGENT))
        .finish())
}

/// POSTs one delivery.
async fn attempt(
    client: awc::Client,
    endpoint: Endpoint,
    delivery: Delivery,
    body: Vec<u8>,
) -> Attempted {
    let t = chrono::Utc::now().timestamp();
    let signature = sign(&endpoint.secret, t, &body);
    let sent = client
        .post(endpoint.url.as_str())
        .insert_header((awc::http::header::CONTENT_TYPE, "application/json"))
        .insert_header(("Starling-Event", delivery.event_type.as_str()))
        .insert_header((
            "Starling-Idempotency-Key",
            delivery.idempotency_key.as_str(),
        ))
        .insert_header(("Starling-Signature", signature))
        .send_body(body)
        .await;
    let result = match sent {
        Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
        Ok(resp) => Err((
            Some(resp.status().as_u16()),
            format!("HTTP {}", resp.status()),
        )),
        Err(e) => Err((None, e.to_string())),
    };
    Attempted {
        endpoint_id: delivery.endpoint_id,
        seq: delivery.seq,
        attempts_before: delivery.attempts,
        at_ms: now_ms(),
        result,
    }
}

fn load(store: &dyn WebhookStore, old: &mut HashMap<String, Active>) -> Result<(), StoreError> {
    let fresh = store.endpoints()?;
    let mut next: HashMap<String, Active> = HashMap::with_capacity(fresh.len());
    for (endpoint, _) in fresh {
        let busy = old.remove(&endpoint.id).map(|a| a.busy).unwrap_or_default();
        next.insert(
            endpoint.id.clone(),
            Active {
                endpoint,
                busy,
                next_scan_ms: 0,
            },
        );
    }
    *old = next;
    Ok(())
}

/// Turns the events after the cursor into deliveries; returns the endpoints
/// that got some.
fn fan_out(deps: &WebhookDeps) -> Result<HashSet<String>, WebhookError> {
    let mut touched = HashSet::new();
    loop {
        let cursor = deps.store.cursor()?;
        let events = deps.alerts.events_after(cursor, FAN_OUT_PAGE)?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(touched);
        };
        let mut bodies = Vec::with_capacity(events.len());
        for event in &events {
            bodies.push((event, payload(event)?));
        }
        let added = deps.store.enqueue(&bodies, last, now_ms())?;
        let n: u64 = added.iter().map(|(_, n)| n).sum();
        metrics::WEBHOOK_ENQUEUED.add(n);
        tracing::debug!(
            events = events.len(),
            deliveries = n,
            cursor = last,
            "webhook events fanned out"
        );
        touched.extend(added.into_iter().map(|(id, _)| id));
        if events.len() < FAN_OUT_PAGE {
            return Ok(touched);
        }
    }
}

fn set_gauges(store: &dyn WebhookStore) -> Result<(), StoreError> {
    let all = store.endpoints()?;
    let paused = all.iter().filter(|(e, _)| e.paused.is_some()).count();
    let depth: u64 = all.iter().map(|(_, s)| s.pending).sum();
    metrics::WEBHOOK_PAUSED_ENDPOINTS.set(paused as f64);
    metrics::WEBHOOK_OUTBOX_DEPTH.set(depth as f64);
    Ok(())
}

/// How often a standing-by dispatcher looks at the claim.
const STAND_BY: Duration = Duration::from_secs(1);

/// Waits until this process runs the alert engine (at once with a store of
/// its own).
async fn stand_by(deps: &WebhookDeps) {
    let mut told = false;
    while !deps.alerts.holds_claim() {
        if !told {
            told = true;
            tracing::info!(
                "another process runs the alert engine and delivers webhooks; standing by"
            );
        }
        tokio::time::sleep(STAND_BY).await;
    }
}

async fn run(deps: WebhookDeps) -> Result<(), WebhookError> {
    let cfg = deps.cfg.clone();
    let client = client(&cfg)?;
    let policy = PausePolicy {
        max_consecutive_failures: cfg.max_consecutive_failures,
        max_age_ms: i64::try_from(cfg.max_age_s.saturating_mul(1000)).unwrap_or(i64::MAX),
    };
    let bound = cfg.max_in_flight_per_endpoint.max(1);
    let poll = Duration::from_millis(cfg.poll_interval_ms.max(1));
    stand_by(&deps).await;
    let mut seq_rx = deps.alerts.watch_seq();
    let mut endpoints_rx = deps.store.watch_endpoints();
    endpoints_rx.borrow_and_update();
    let mut endpoints: HashMap<String, Active> = HashMap::new();
    load(deps.store.as_ref(), &mut endpoints)?;
    let mut in_flight = FuturesUnordered::new();
    let mut rng = rand::thread_rng();
    let mut gauges_at = 0i64;
    tracing::info!(endpoints = endpoints.len(), "webhook dispatcher running");
    loop {
        if !deps.alerts.holds_claim() {
            // In-flight attempts are dropped: the next holder makes them
            // again (delivery is at least once).
            return Err(WebhookError::LostClaim);
        }
        seq_rx.borrow_and_update();
        if endpoints_rx.has_changed().unwrap_or(false) {
            endpoints_rx.borrow_and_update();
            load(deps.store.as_ref(), &mut endpoints)?;
        }
        for id in fan_out(&deps)? {
            if let Some(a) = endpoints.get_mut(&id) {
                a.next_scan_ms = 0;
            }
        }
        let now = now_ms();
        let mut wake_at = now + poll.as_millis() as i64;
        for a in endpoints.values_mut() {
            if a.endpoint.paused.is_some() || a.busy.len() >= bound {
                continue;
            }
            if a.next_scan_ms > now {
                wake_at = wake_at.min(a.next_scan_ms);
                continue;
            }
            let due = deps
                .store
                .due(&a.endpoint.id, now, bound - a.busy.len(), &a.busy)?;
            for d in due.ready {
                let Some(body) = deps.store.body(&a.endpoint.id, d.seq)? else {
                    continue; // deleted meanwhile
                };
                a.busy.insert(d.seq);
                in_flight.push(attempt(client.clone(), a.endpoint.clone(), d, body));
            }
            a.next_scan_ms = match due.next_ms {
                _ if a.busy.len() >= bound => i64::MAX, // a completion rescans
                Some(n) => n.max(now + 1),
                None => i64::MAX,
            };
            wake_at = wake_at.min(a.next_scan_ms);
        }
        if now >= gauges_at {
            set_gauges(deps.store.as_ref())?;
            gauges_at = now + 1_000;
        }
        let sleep = Duration::from_millis(u64::try_from(wake_at - now).unwrap_or(0));
        tokio::select! {
            changed = seq_rx.changed() => {
                if changed.is_err() {
                    return Ok(()); // the alert store is gone: the process is stopping
                }
            }
            changed = endpoints_rx.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                endpoints_rx.borrow_and_update();
                load(deps.store.as_ref(), &mut endpoints)?;
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                finish(&deps, &cfg, &policy, &mut endpoints, &mut rng, done)?;
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Records an attempt's outcome.
fn finish(
    deps: &WebhookDeps,
    cfg: &WebhooksConfig,
    policy: &PausePolicy,
    endpoints: &mut HashMap<String, Active>,
    rng: &mut impl Rng,
    done: Attempted,
) -> Result<(), WebhookError> {
    let Attempted {
        endpoint_id,
        seq,
        attempts_before,
        at_ms,
        result,
    } = done;
    let active = match endpoints.get_mut(&endpoint_id) {
        Some(a) => {
            a.busy.remove(&seq);
            a.next_scan_ms = 0;
            Some(a)
        }
        None => None,
    };
    match result {
        Ok(status) => {
            if deps.store.delivered(&endpoint_id, seq, at_ms, status)? {
                metrics::WEBHOOK_DELIVERED.inc();
                tracing::debug!(endpoint = %endpoint_id, seq, status, "webhook delivered");
            }
        }
        Err((status, error)) => {
            metrics::WEBHOOK_FAILED_ATTEMPTS.inc();
            let attempts = attempts_before.saturating_add(1);
            let wait = backoff_ms(attempts, cfg.backoff_base_ms, cfg.backoff_max_ms, rng);
            let failure = Failure {
                at_ms,
                status,
                error: error.clone(),
                next_attempt_ms: at_ms.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX)),
            };
            tracing::warn!(endpoint = %endpoint_id, seq, attempts, retry_in_ms = wait, %error, "webhook attempt failed");
            if let Some(pause) = deps.store.failed(&endpoint_id, seq, &failure, policy)? {
                metrics::WEBHOOK_PAUSES.inc();
                tracing::warn!(endpoint = %endpoint_id, reason = %pause.reason, "webhook endpoint paused");
                if let Some(a) = active {
                    a.endpoint.paused = Some(pause);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn signatures_match_known_answers() {
        // The HMAC itself: RFC 4231, test case 2.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The scheme, against an independent computation:
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test",
        //   b"1700000000.{\"id\":\"a.1\"}", hashlib.sha256).hexdigest())'
        let body = br#"{"id":"a.1"}"#;
        assert_eq!(
            sign("whsec_test", 1_700_000_000, body),
            format!("t=1700000000,v1={}", KNOWN_V1)
        );
        assert_ne!(signature_v1("whsec_other", 1_700_000_000, body), KNOWN_V1);
        assert_ne!(signature_v1("whsec_test", 1_700_000_001, body), KNOWN_V1);
    }

    const KNOWN_V1: &str = "10bd7a640f04319da2ffedf4543679d0e5a3674064d3183fb0e0293a8c739cfd";

    #[test]
    fn backoff_doubles_to_the_cap_with_full_jitter() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for attempts in 1..=40u32 {
            let ceiling = (1_000u64 << (attempts - 1).min(30)).min(600_000);
            let draws: Vec<u64> = (0..200)
                .map(|_| backoff_ms(attempts, 1_000, 600_000, &mut rng))
                .collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "{attempts}: {draws:?}");
            // Jittered: spread over the range, not one value.
            let (lo, hi) = (
                draws.iter().copied().min().unwrap_or(0),
                draws.iter().copied().max().unwrap_or(0),
            );
            assert!(
                lo < ceiling / 4 && hi > ceiling * 3 / 4,
                "{attempts}: {lo}..{hi}"
            );
        }
        // Uniform over the range: the mean is half the ceiling (the
        // production generator, not only the seeded one).
        let mut thread = rand::thread_rng();
        for attempts in [2u32, 4, 7] {
            let ceiling = (1_000u64 << (attempts - 1)) as f64;
            let n = 20_000;
            let mean = (0..n)
                .map(|_| backoff_ms(attempts, 1_000, 600_000, &mut thread) as f64)
                .sum::<f64>()
                / n as f64;
            assert!(
                (mean / ceiling - 0.5).abs() < 0.02,
                "{attempts}: mean {mean} of ceiling {ceiling}"
            );
        }
        // No overflow at the extremes.
        let huge = backoff_ms(u32::MAX, u64::MAX / 2, u64::MAX - 1, &mut rng);
        assert!(huge < u64::MAX);
        assert_eq!(backoff_ms(5, 0, 0, &mut rng), 0);
    }

    #[test]
    fn the_payload_carries_the_key_type_time_and_alert() {
        use crate::alerts::model::{sample_alert, AlertEventType, AlertKind, AlertState};
        let event = AlertEvent {
            seq: 7,
            event: AlertEventType::Resolved,
            at_ms: 1_700_000_000_123,
            alert: Alert {
                state: AlertState::Resolved,
                resolved_at_ms: Some(1),
                ..sample_alert("churn-x", AlertKind::Churn, 0, 4)
            },
        };
        let body: serde_json::Value =
            serde_json::from_slice(&payload(&event).expect("payload")).expect("json");
        assert_eq!(body["id"], "churn-x.7");
        assert_eq!(body["type"], "alert.resolved");
        assert_eq!(body["created_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(body["alert"]["kind"], "churn");
        assert_eq!(body["alert"]["state"], "resolved");
    }
}
