//! Black-box tests of webhook delivery: the real binary on port 0, churn
//! posts sent to `POST /api/ingest` that the alert engine turns into churn
//! alerts, and a real receiver (an actix-web server on port 0 in the test)
//! that fails first attempts, verifies every signature independently of
//! Starling's code and de-duplicates by idempotency key. What should have
//! been delivered is read back from the alert event log in the data
//! directory once Starling is stopped.

mod common;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::{call, ingest, Starling};
use hmac::{KeyInit as _, Mac as _};
use parking_lot::Mutex;
use serde_json::{json, Value};
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
    match rx.accepted.lock().entry(key) {
        // De-duplicated: acknowledged, not processed again.
        std::collections::hash_map::Entry::Occupied(_) => *rx.repeats.lock() += 1,
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(payload);
        }
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

/// Texts the fast classifier gives a churn risk above the engine's 0.7.
const CHURN_TEXTS: &[&str] = &[
    "cancel my account, I want a refund, done with this app $SOL",
    "Thinking about cancelling my plan and moving to another provider $SOL",
    "I am leaving, closing my account and switching to another exchange $ETH",
];

/// Churn posts `from..to` (texts in turn), created now.
fn churn_posts(from: usize, to: usize) -> Vec<Value> {
    let now = chrono::Utc::now();
    (from..to)
        .map(|i| {
            json!({
                "id": format!("churn-{i}"),
                "platform": "twitter",
                "text": CHURN_TEXTS[i % CHURN_TEXTS.len()],
                "author": {"id": format!("u{i}"), "handle": format!("user{i}"), "followers": 10},
                "created_at": now.to_rfc3339(),
                "engagement": {"likes": 1, "reposts": 0, "replies": 0},
            })
        })
        .collect()
}

/// Waits until every consumer (the alert engine's included) has taken and
/// acknowledged everything: the alerts the posts raise are logged.
async fn settle(s: &Starling) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, admin) = call(s, "GET", "/api/admin/actors", None).await;
        let idle = admin["consumers"]
            .as_array()
            .expect("consumers")
            .iter()
            .all(|c| c["pending"] == 0 && c["ack_pending"] == 0);
        if idle {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline did not settle: {admin}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The alert event log of a stopped Starling's data dir: `key → type`.
fn logged_events(dir: &Path) -> HashMap<String, String> {
    let store = EmbeddedStore::open_at(dir, &Default::default()).expect("open store");
    let alerts = EmbeddedAlerts::open(&store).expect("open alerts");
    alerts
        .events_after(0, 10_000)
        .expect("events")
        .into_iter()
        .map(|e| (e.idempotency_key(), format!("alert.{}", e.event.as_str())))
        .collect()
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
    // A second endpoint, on a receiver of its own, that wants only volume
    // spikes: churn alerts are not for it.
    let spikes_rx = Receiver::new(0, true);
    let (spikes_url, spikes_receiver) = receive(&spikes_rx, "127.0.0.1:0");
    let (status, spikes) = call(
        &s,
        "POST",
        "/api/webhooks",
        Some(json!({"url": spikes_url, "kinds": ["volume_spike"], "min_severity": 8})),
    )
    .await;
    assert_eq!(status, 201, "{spikes}");
    assert_eq!(spikes["kinds"], json!(["volume_spike"]));
    let spikes_id = spikes["id"].as_str().expect("id").to_string();
    assert_ne!(
        spikes["secret"].as_str(),
        Some(rx.secret.lock().as_str()),
        "secrets are per endpoint"
    );
    let (_, list) = call(&s, "GET", "/api/webhooks", None).await;
    let listed = list["webhooks"].as_array().expect("list");
    assert_eq!(listed.len(), 2, "{list}");
    assert!(
        listed.iter().all(|e| e.get("secret").is_none()),
        "secrets are shown once"
    );

    // Churn posts about two projects raise two churn alerts (and update them).
    ingest(&s, &churn_posts(0, 6)).await;
    settle(&s).await;
    wait_accepted(&rx, 2).await;
    // What the engine logged, read from the data dir; what was not
    // delivered before the stop is delivered after the restart.
    s.stop();
    let logged = logged_events(dir.path());
    assert!(logged.len() >= 2, "{logged:?}");
    let s = Starling::start(dir.path(), &["--config", CONFIG]);
    let got = wait_accepted(&rx, logged.len()).await;
    assert_eq!(
        got.keys().collect::<std::collections::BTreeSet<_>>(),
        logged.keys().collect(),
        "every logged event, once after de-duplication"
    );
    for (key, body) in &got {
        assert_eq!(body["type"], json!(logged[key]), "{key}");
        assert_eq!(body["alert"]["kind"], "churn", "{body}");
        assert!(body["created_at"].is_string(), "{body}");
    }
    assert!(rx.bad.lock().is_empty(), "{:?}", rx.bad.lock());
    for (key, n) in rx.attempts.lock().iter() {
        assert!(*n >= 3, "{key} accepted after {n} attempts");
    }
    let e = wait_endpoint(&s, &id, "stats after delivery", |e| {
        e["stats"]["pending"] == 0 && e["stats"]["consecutive_failures"] == 0
    })
    .await;
    assert!(
        e["stats"]["delivered"].as_u64().expect("delivered") >= logged.len() as u64,
        "{e}"
    );
    assert!(
        e["stats"]["failed_attempts"].as_u64().expect("failed") >= 2 * logged.len() as u64,
        "{e}"
    );
    assert_eq!(e["stats"]["last_status"], 204, "{e}");
    assert_eq!(e["state"], "active");
    let spikes = endpoint(&s, &spikes_id).await;
    assert_eq!(
        (&spikes["stats"]["delivered"], &spikes["stats"]["pending"]),
        (&json!(0), &json!(0)),
        "{spikes}"
    );
    assert!(spikes_rx.attempts.lock().is_empty());

    let metrics = common::metrics(&s).await;
    for name in [
        "starling_webhook_delivered_total",
        "starling_webhook_failed_attempts_total",
        "starling_webhook_outbox_depth",
        "starling_webhook_paused_endpoints",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }

    let (status, _) = call(&s, "DELETE", &format!("/api/webhooks/{spikes_id}"), None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&s, "GET", &format!("/api/webhooks/{spikes_id}"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    s.stop();
    receiver.stop(true).await;
    spikes_receiver.stop(true).await;
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
    ingest(&s, &churn_posts(0, 1)).await;
    let e = wait_endpoint(&s, &id, "failed attempts while the receiver is down", |e| {
        e["stats"]["failed_attempts"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    assert_eq!(e["stats"]["delivered"], 0, "{e}");
    assert!(e["stats"]["pending"].as_u64().unwrap_or(0) >= 1, "{e}");
    assert!(e["stats"]["last_error"].is_string(), "{e}");
    s.kill_9();

    let (_, receiver) = receive(&rx, &format!("127.0.0.1:{port}"));
    let s = Starling::start(dir.path(), &["--config", CONFIG]);
    wait_accepted(&rx, 1).await;
    wait_endpoint(&s, &id, "delivered after the restart", |e| {
        e["stats"]["pending"] == 0
    })
    .await;
    s.stop();
    let logged = logged_events(dir.path());
    let got = rx.accepted();
    assert_eq!(
        got.keys().collect::<std::collections::BTreeSet<_>>(),
        logged.keys().collect()
    );
    assert!(rx.bad.lock().is_empty(), "{:?}", rx.bad.lock());
    receiver.stop(true).await;
}

#[actix_rt::test]
async fn an_endpoint_that_keeps_failing_is_paused_and_resumed_over_the_api() {
    let rx = Receiver::new(0, false);
    let (url, receiver) = receive(&rx, "127.0.0.1:0");
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Starling::start(dir.path(), &["--config", PAUSE_CONFIG]);
    let id = register(&s, &rx, &url).await;
    ingest(&s, &churn_posts(0, 1)).await;
    let e = wait_endpoint(&s, &id, "paused", |e| e["state"] == "paused").await;
    let reason = e["paused"]["reason"].as_str().expect("reason");
    assert!(reason.contains("3 consecutive"), "{e}");
    assert!(reason.contains("503"), "{e}");
    assert_eq!(e["stats"]["last_status"], 503, "{e}");
    assert!(
        e["stats"]["pending"].as_u64().unwrap_or(0) >= 1,
        "deliveries stay: {e}"
    );
    let failed = e["stats"]["failed_attempts"].as_u64().expect("failed");
    // Attempts in flight when it paused may still end; no new ones start.
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
    assert!(resumed.get("paused").is_none(), "{resumed}");
    assert_eq!(resumed["stats"]["consecutive_failures"], 0);
    wait_accepted(&rx, 1).await;
    wait_endpoint(&s, &id, "delivered after resume", |e| {
        e["stats"]["pending"] == 0 && e["stats"]["delivered"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    s.stop();
    receiver.stop(true).await;
}
