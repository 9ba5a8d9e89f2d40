//! Black-box tests of webhook delivery: the real binary on port 0, a real
//! receiver (an actix-web server on port 0 in the test) that fails first
//! attempts, verifies every signature independently of Starling's code and
//! de-duplicates by idempotency key.

mod common;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::Starling;
use hmac::{KeyInit as _, Mac as _};
use parking_lot::Mutex;
use serde_json::{json, Value};
use starling::alerts::model::{
    Alert, AlertEventType, AlertKind, AlertState, Evidence, ResolvedBy, Span,
};
use starling::domain::{EntityKind, EntityRef};
use starling::store::alerts::{AlertStore, EmbeddedAlerts};
use starling::store::embedded::EmbeddedStore;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks.toml");
const PAUSE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks-pause.toml");
/// How long any wait in these tests may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// What the receiver saw.
#[derive(Default)]
struct Receiver {
    /// The signing secret (from the registration).
    secret: Mutex<String>,
    /// Attempts answered 500 per key before one is accepted.
    fail_first: u32,
    /// Answer 503 to everything while false.
    up: AtomicBool,
    /// Attempts per idempotency key.
    attempts: Mutex<HashMap<String, u32>>,
    /// Accepted bodies by idempotency key (the first accepted one).
    accepted: Mutex<HashMap<String, Value>>,
    /// Deliveries accepted again after a first acceptance.
    repeats: Mutex<u32>,
    /// Requests whose signature or headers were wrong, with why.
    bad: Mutex<Vec<String>>,
}

impl Receiver {
    fn new(fail_first: u32, up: bool) -> Arc<Receiver> {
        Arc::new(Receiver {
            fail_first,
            up: AtomicBool::new(up),
            ..Default::default()
        })
    }

    fn accepted(&self) -> HashMap<String, Value> {
        self.accepted.lock().clone()
    }
}

/// Checks the signature the way a receiver would, with the hmac crate
/// directly: `v1 = hex HMAC-SHA256(secret, "<t>.<body>")`, `t` recent.
fn verify(secret: &str, header: &str, body: &[u8]) -> Result<(), String> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (t, v1) = t.zip(v1).ok_or_else(|| format!("bad header {header}"))?;
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return Err(format!("stale timestamp {t}"));
    }
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let want = hex::encode(mac.finalize().into_bytes());
    if want != v1 {
        return Err(format!("signature mismatch: got {v1}, want {want}"));
    }
    Ok(())
}

async fn hook(req: HttpRequest, body: web::Bytes, rx: web::Data<Receiver>) -> HttpResponse {
    if !rx.up.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let secret = rx.secret.lock().clone();
    if let Err(e) = verify(&secret, &header("Starling-Signature"), &body) {
        rx.bad.lock().push(e);
        return HttpResponse::Unauthorized().finish();
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        rx.bad.lock().push("body is not JSON".into());
        return HttpResponse::BadRequest().finish();
    };
    let key = header("Starling-Idempotency-Key");
    let mut problems = Vec::new();
    if header("Content-Type") != "application/json" {
        problems.push(format!("content type {}", header("Content-Type")));
    }
    if payload["id"] != key.as_str() {
        problems.push(format!("key {key} != id {}", payload["id"]));
    }
    if payload["type"] != header("Starling-Event").as_str() {
        problems.push(format!("event header != type {}", payload["type"]));
    }
    if !problems.is_empty() {
        rx.bad.lock().extend(problems);
        return HttpResponse::BadRequest().finish();
    }
    let attempt = {
        let mut attempts = rx.attempts.lock();
        let n = attempts.entry(key.clone()).or_default();
        *n += 1;
        *n
    };
    if attempt <= rx.fail_first {
        return HttpResponse::InternalServerError().body("not yet");
    }
    let mut accepted = rx.accepted.lock();
    if accepted.contains_key(&key) {
        *rx.repeats.lock() += 1; // de-duplicated: acknowledged, not processed
    } else {
        accepted.insert(key, payload);
    }
    HttpResponse::NoContent().finish()
}

/// Starts a receiver on `addr` (`127.0.0.1:0` for any port); returns its
/// base URL and the server handle.
fn receive(rx: &Arc<Receiver>, addr: &str) -> (String, actix_web::dev::ServerHandle) {
    let data = web::Data::from(rx.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(hook))
    })
    .workers(1)
    .disable_signals()
    .bind(addr)
    .expect("bind the receiver");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (format!("http://127.0.0.1:{port}/hook"), handle)
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

async fn call(s: &Starling, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = client().request(method.parse().expect("method"), s.url(path));
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.body().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
    };
    (status, value)
}

/// Registers `url`; gives the receiver the secret; returns the endpoint id.
async fn register(s: &Starling, rx: &Receiver, url: &str) -> String {
    let (status, body) = call(
        s,
        "POST",
        "/api/webhooks",
        Some(json!({"url": url, "description": "test receiver"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"].as_str().expect("secret");
    assert!(
        secret.starts_with("whsec_") && secret.len() >= 6 + 64,
        "{secret}"
    );
    *rx.secret.lock() = secret.to_string();
    assert_eq!(body["state"], "active");
    body["id"].as_str().expect("id").to_string()
}

async fn endpoint(s: &Starling, id: &str) -> Value {
    let (status, body) = call(s, "GET", &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `GET /api/webhooks/{id}` until `done` holds.
async fn wait_endpoint(s: &Starling, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let e = endpoint(s, id).await;
        if done(&e) {
            return e;
        }
        assert!(Instant::now() < deadline, "{what}: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the receiver until it accepted `n` distinct keys.
async fn wait_accepted(rx: &Receiver, n: usize) -> HashMap<String, Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = rx.accepted();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "the receiver accepted {} of {n}: {:?}; bad: {:?}",
            got.len(),
            got.keys(),
            rx.bad.lock()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alert(id: &str, kind: AlertKind, severity: u8, at_ms: i64) -> Alert {
    Alert {
        id: id.into(),
        kind,
        rule_id: None,
        severity,
        state: AlertState::Open,
        entity: EntityRef::new(EntityKind::Project, "SOL"),
        title: format!("{id} for SOL"),
        window: Span {
            from_ms: at_ms - 30_000,
            to_ms: at_ms,
        },
        evidence: Evidence {
            metric: "volume".into(),
            value: 40.0,
            threshold: 10.0,
            baseline: None,
            volume: 40,
            matched: 40,
            posts: vec![],
        },
        opened_at_ms: at_ms,
        updated_at_ms: at_ms,
        acknowledged_at_ms: None,
        resolved_at_ms: None,
        resolved_by: None,
    }
}

/// Logs alert events through the real alert store in `dir` (Starling
/// stopped: the store is one process's); returns `key → type` of each.
fn log_events(dir: &Path) -> HashMap<String, String> {
    let store = EmbeddedStore::open_at(dir, &Default::default()).expect("open store");
    let alerts = EmbeddedAlerts::open(&store).expect("open alerts");
    let now = chrono::Utc::now().timestamp_millis();
    let mut logged = HashMap::new();
    let mut log = |a: &Alert, e: AlertEventType| {
        let ev = alerts.record(a, e, now).expect("record");
        logged.insert(ev.idempotency_key(), format!("alert.{}", e.as_str()));
    };
    let mut churn = alert("churn-sol-1", AlertKind::Churn, 6, now);
    log(&churn, AlertEventType::Raised);
    churn.evidence.matched = 41;
    log(&churn, AlertEventType::Updated);
    churn.state = AlertState::Acknowledged;
    churn.acknowledged_at_ms = Some(now);
    log(&churn, AlertEventType::Acknowledged);
    churn.state = AlertState::Resolved;
    churn.resolved_at_ms = Some(now);
    churn.resolved_by = Some(ResolvedBy::User);
    log(&churn, AlertEventType::Resolved);
    log(
        &alert("spike-sol-1", AlertKind::VolumeSpike, 9, now),
        AlertEventType::Raised,
    );
    log(
        &alert("tox-sol-1", AlertKind::ToxicitySurge, 2, now),
        AlertEventType::Raised,
    );
    logged
}

#[actix_rt::test]
async fn every_alert_event_reaches_a_flaky_receiver_once_signed_after_retries() {
    let rx = Receiver::new(2, true);
    let (url, receiver) = receive(&rx, "127.0.0.1:0");
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Starling::start(dir.path(), &["--config", CONFIG]);

    // Registration is validated.
    for (bad, code) in [
        (json!({"url": "ftp://example.com/x"}), "invalid_url"),
        (json!({"url": "example.com/hook"}), "invalid_url"),
        (
            json!({"url": format!("https://example.com/{}", "a".repeat(3000))}),
            "invalid_url",
        ),
        (json!({"url": url, "min_severity": 11}), "invalid_webhook"),
        (json!({"url": url, "kinds": ["nope"]}), "invalid_body"),
    ] {
        let (status, body) = call(&s, "POST", "/api/webhooks", Some(bad.clone())).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{bad}: {body}"
        );
    }
    let id = register(&s, &rx, &url).await;
    // A second endpoint, on a receiver of its own, that wants only severe spikes.
    let severe_rx = Receiver::new(0, true);
    let (severe_url, severe_receiver) = receive(&severe_rx, "127.0.0.1:0");
    let (status, severe) = call(
        &s,
        "POST",
        "/api/webhooks",
        Some(json!({"url": severe_url, "kinds": ["volume_spike"], "min_severity": 8})),
    )
    .await;
    assert_eq!(status, 201, "{severe}");
    let severe_id = severe["id"].as_str().expect("id").to_string();
    let severe_secret = severe["secret"].as_str().expect("secret").to_string();
    assert_ne!(severe_secret, *rx.secret.lock(), "secrets are per endpoint");
    *severe_rx.secret.lock() = severe_secret;
    let (_, list) = call(&s, "GET", "/api/webhooks", None).await;
    let listed = list["webhooks"].as_array().expect("list");
    assert_eq!(listed.len(), 2, "{list}");
    assert!(
        listed.iter().all(|e| e.get("secret").is_none()),
        "secrets are shown once"
    );

    // Alert events are logged while Starling is down, then delivered.
    s.stop();
    let logged = log_events(dir.path());
    let s = Starling::start(dir.path(), &["--config", CONFIG]);
    let got = wait_accepted(&rx, logged.len()).await;
    assert_eq!(
        got.keys().collect::<std::collections::BTreeSet<_>>(),
        logged.keys().collect(),
        "every event once"
    );
    for (key, body) in &got {
        assert_eq!(body["type"], json!(logged[key]), "{key}");
        assert!(body["alert"]["id"].is_string() && body["created_at"].is_string());
    }
    assert!(rx.bad.lock().is_empty(), "{:?}", rx.bad.lock());
    let e = wait_endpoint(&s, &id, "stats after delivery", |e| {
        e["stats"]["delivered"] == logged.len() && e["stats"]["pending"] == 0
    })
    .await;
    assert!(
        e["stats"]["failed_attempts"].as_u64().expect("failed") >= 2 * logged.len() as u64,
        "{e}"
    );
    assert_eq!(e["stats"]["consecutive_failures"], 0, "{e}");
    assert_eq!(e["stats"]["last_status"], 204, "{e}");
    assert_eq!(e["state"], "active");
    // Only the severity-9 spike matches the severe endpoint.
    let severe_got = wait_accepted(&severe_rx, 1).await;
    let spike: Vec<&String> = logged.keys().filter(|k| k.starts_with("spike-")).collect();
    assert_eq!(severe_got.keys().collect::<Vec<_>>(), spike);
    assert!(
        severe_rx.bad.lock().is_empty(),
        "{:?}",
        severe_rx.bad.lock()
    );
    wait_endpoint(&s, &severe_id, "severe endpoint stats", |e| {
        e["stats"]["delivered"] == 1 && e["stats"]["pending"] == 0
    })
    .await;
    for (key, n) in rx.attempts.lock().iter() {
        assert!(*n >= 3, "{key} accepted after {n} attempts");
    }

    let (_, metrics) = {
        let mut r = client()
            .get(s.url("/metrics"))
            .send()
            .await
            .expect("metrics");
        (
            r.status(),
            String::from_utf8_lossy(&r.body().await.expect("body")).to_string(),
        )
    };
    assert!(
        metrics.contains("starling_webhook_delivered_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("starling_webhook_outbox_depth"),
        "{metrics}"
    );

    let (status, _) = call(&s, "DELETE", &format!("/api/webhooks/{severe_id}"), None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&s, "GET", &format!("/api/webhooks/{severe_id}"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    s.stop();
    receiver.stop(true).await;
    severe_receiver.stop(true).await;
}

#[actix_rt::test]
async fn a_delivery_pending_when_starling_is_killed_arrives_after_the_restart() {
    // A port nothing listens on yet: attempts get "connection refused".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let rx = Receiver::new(0, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Starling::start(dir.path(), &["--config", CONFIG]);
    let id = register(&s, &rx, &format!("http://127.0.0.1:{port}/hook")).await;
    s.stop();
    let logged = log_events(dir.path());
    let s = Starling::start(dir.path(), &["--config", CONFIG]);
    let e = wait_endpoint(&s, &id, "failed attempts while the receiver is down", |e| {
        e["stats"]["failed_attempts"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    assert_eq!(e["stats"]["delivered"], 0, "{e}");
    assert!(e["stats"]["last_error"].is_string(), "{e}");
    s.kill_9();

    let (_, receiver) = receive(&rx, &format!("127.0.0.1:{port}"));
    let s = Starling::start(dir.path(), &["--config", CONFIG]);
    let got = wait_accepted(&rx, logged.len()).await;
    assert_eq!(got.len(), logged.len());
    assert!(rx.bad.lock().is_empty(), "{:?}", rx.bad.lock());
    wait_endpoint(&s, &id, "delivered after the restart", |e| {
        e["stats"]["delivered"] == logged.len() && e["stats"]["pending"] == 0
    })
    .await;
    s.stop();
    receiver.stop(true).await;
}

#[actix_rt::test]
async fn an_endpoint_that_keeps_failing_is_paused_and_resumed_over_the_api() {
    let rx = Receiver::new(0, false);
    let (url, receiver) = receive(&rx, "127.0.0.1:0");
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Starling::start(dir.path(), &["--config", PAUSE_CONFIG]);
    let id = register(&s, &rx, &url).await;
    s.stop();
    let logged = log_events(dir.path());
    let s = Starling::start(dir.path(), &["--config", PAUSE_CONFIG]);
    let e = wait_endpoint(&s, &id, "paused", |e| e["state"] == "paused").await;
    let reason = e["paused"]["reason"].as_str().expect("reason");
    assert!(reason.contains("3 consecutive"), "{e}");
    assert_eq!(e["stats"]["last_status"], 503, "{e}");
    assert_eq!(e["stats"]["pending"], logged.len(), "deliveries stay: {e}");
    let failed = e["stats"]["failed_attempts"].as_u64().expect("failed");
    // Attempts in flight when it paused may still end; then nothing more.
    assert!((3..=3 + 4).contains(&failed), "{e}");
    let (status, body) = call(&s, "POST", "/api/webhooks/wh_nope/resume", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    rx.up.store(true, Ordering::SeqCst);
    let (status, resumed) = call(&s, "POST", &format!("/api/webhooks/{id}/resume"), None).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["state"], "active");
    assert_eq!(resumed["stats"]["consecutive_failures"], 0);
    wait_accepted(&rx, logged.len()).await;
    wait_endpoint(&s, &id, "delivered after resume", |e| {
        e["stats"]["delivered"] == logged.len() && e["stats"]["pending"] == 0
    })
    .await;
    s.stop();
    receiver.stop(true).await;
}
