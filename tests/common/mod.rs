//! Test helpers: start the real `starling` binary on port 0 with a temporary
//! data directory, talk to it over HTTP and WebSocket, stop it with SIGINT.

#![allow(dead_code)]

pub mod cdp;
pub mod nats;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running Starling process.
pub struct Starling {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Starling {
    /// Starts `starling run` on a free port over `data`, with extra flags.
    pub fn start(data: &Path, extra: &[&str]) -> Starling {
        Starling::start_with_env(data, extra, &[])
    }

    /// Like [`Starling::start`], with extra environment variables (set last,
    /// so they override the defaults below).
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Starling {
        let mut child = Command::new(env!("CARGO_BIN_EXE_starling"))
            .args(["run", "--http", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("STARLING_LOG", "warn")
            // No synthetic stream unless a test asks for one with the flag.
            .env("STARLING_CONNECTORS__SYNTHETIC__RATE", "0")
            .env("STARLING_AGGREGATION__ALLOWED_LATENESS_MS", "500")
            .env("STARLING_AGGREGATION__FLUSH_INTERVAL_MS", "100")
            // Acks lost in a broker restart come back sooner.
            .env("STARLING_BUS__ACK_WAIT_MS", "5000")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn starling");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut http = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("starling listening on ") {
                    http = addr.trim().to_string();
                }
                if line.starts_with("starling ready") {
                    let _ = tx.send(http.clone());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("starling was not ready within 60 s");
        Starling {
            child: Some(child),
            base,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `ws://…/ws`.
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http://", "ws://", 1))
    }

    /// Sends SIGINT (Ctrl-C) and waits for a clean exit.
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        for _ in 0..600 {
            if let Some(exit) = child.try_wait().expect("wait") {
                assert!(exit.success(), "starling exited with {exit}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("starling did not stop within 60 s of SIGINT");
    }
}

impl Starling {
    /// SIGKILL: the process dies at once, with no drain.
    pub fn kill_9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
}

impl Drop for Starling {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Says loudly that a test is skipped and why: written straight to the
/// process's stderr, so `cargo test` shows it even when the test passes
/// (`eprintln!` output of a passing test is captured and hidden).
pub fn skip(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "\n*** SKIPPED: {why} ***\n");
}

/// An HTTP client with a 30 s timeout.
pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// Sends `body` (JSON, if any) with `method` to `path`; the status and the
/// JSON answer (`null` when empty).
pub async fn call(
    s: &Starling,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let req = client().request(method.parse().expect("method"), s.url(path));
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.body().await.expect("body");
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
    };
    (status, value)
}

/// The Prometheus text of `GET /metrics`.
pub async fn metrics(s: &Starling) -> String {
    let body = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .body()
        .await
        .expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

/// Posts `posts` (JSON objects) to `POST /api/ingest`; all must be accepted.
pub async fn ingest(s: &Starling, posts: &[serde_json::Value]) {
    let (status, body) = call(s, "POST", "/api/ingest", Some(serde_json::json!(posts))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], posts.len(), "{body}");
}

/// Polls `GET path` (which must answer 200) until `done` holds for its
/// body, for at most 30 s.
pub async fn until(
    s: &Starling,
    path: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = call(s, "GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        if done(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never matched: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads WebSocket frames until `want` returns true for one (skipping
/// others), or 15 s pass.
pub async fn next_frame<S>(
    ws: &mut S,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value
where
    S: futures_util::Stream<Item = Result<awc::ws::Frame, awc::error::WsProtocolError>> + Unpin,
{
    use futures_util::StreamExt as _;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        let Ok(Some(Ok(awc::ws::Frame::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(5), ws.next()).await
        else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(&text).expect("json frame");
        if want(&v) {
            return v;
        }
    }
    panic!("no matching frame within 15 s");
}
