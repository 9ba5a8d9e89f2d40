//! `ws-fanout`: N WebSocket clients on `/ws`, each subscribed to live
//! metrics and a sampled message feed, over Starling's synthetic stream.
//!
//! What is measured, exactly (Starling's frames carry no send time):
//! - `metrics:update` carries `at_ms`, the hub's tick time: *receive time −
//!   `at_ms`* is the fan-out latency from the hub to the client.
//! - the newest 1 s window of a `metrics:update` ends at `start_ms + 1000`:
//!   *receive time − window end* is how fresh the live metrics are
//!   (aggregation lateness, flush, the tick and the fan-out together).
//! - `message:new` carries the post, whose `created_at` the synthetic
//!   connector sets when it generates it: *receive time − `created_at`* is the
//!   end-to-end latency of the live feed (bus, classifier, live feed, hub,
//!   session).
//!
//! Starling sends no frame when it drops events for a slow client; it counts
//! them (`starling_ws_events_dropped_total`) and closes a client that stays
//! behind. So drops are read from `/metrics` and also audited on the client
//! side: every client with the same `sample` gets the same posts (sampled by
//! post id), so a post that reached one client and not another was lost for
//! that one; and `metrics:update` comes once a second, so a gap in `at_ms`
//! is a missed tick.

use super::{Schedule, CONNECT_HINT};
use crate::config::WsFanout;
use crate::report::{self, fmt_int, fmt_rate, Latency};
use crate::{http, Outcome, RunContext};
use anyhow::{bail, Result};
use awc::ws::{CloseCode, Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Open files kept free for Starling's and the load generator's own use.
const FD_RESERVE: u64 = 256;

/// The fields of a frame that are measured (everything else is skipped).
#[derive(Debug, Deserialize)]
pub struct FrameView<'a> {
    /// `metrics:initial`, `metrics:update`, `message:new`, `subscribed`, `error`, …
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `metrics:update`: the hub's tick time, ms.
    #[serde(default)]
    pub at_ms: Option<i64>,
    /// `metrics:update`: the windows.
    #[serde(default, borrow)]
    pub windows: Option<Vec<WindowView<'a>>>,
    /// `message:new`: the post.
    #[serde(default, borrow)]
    pub post: Option<PostView<'a>>,
}

/// A window of a `metrics:update`.
#[derive(Debug, Deserialize)]
pub struct WindowView<'a> {
    /// `1s` or `1m`.
    #[serde(borrow)]
    pub resolution: Cow<'a, str>,
    /// Start, ms.
    pub start_ms: i64,
}

/// The post of a `message:new`.
#[derive(Debug, Deserialize)]
pub struct PostView<'a> {
    /// Its id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// RFC 3339.
    #[serde(borrow)]
    pub created_at: Cow<'a, str>,
}

impl FrameView<'_> {
    /// End of the newest 1 s window, ms.
    pub fn newest_second_end_ms(&self) -> Option<i64> {
        self.windows
            .as_ref()?
            .iter()
            .filter(|w| w.resolution == "1s")
            .map(|w| w.start_ms + 1_000)
            .max()
    }

    /// The post's `created_at`, ms.
    pub fn created_ms(&self) -> Option<i64> {
        let p = self.post.as_ref()?;
        chrono::DateTime::parse_from_rfc3339(&p.created_at)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

/// Ticks missing between two `at_ms` one second apart (a gap of about 2 s is one missed).
pub fn missed_ticks(previous_ms: i64, at_ms: i64) -> u64 {
    let gap = (at_ms - previous_ms) as f64 / 1_000.0;
    (gap.round() as i64 - 1).max(0) as u64
}

/// The frames a client sends after `metrics:initial`.
pub fn subscribe_frames(cfg: &WsFanout) -> Vec<String> {
    let mut frames = Vec::new();
    if !cfg.metrics_kinds.is_empty() {
        let mut sub = json!({"type": "subscribe", "channel": "metrics",
            "kinds": cfg.metrics_kinds, "resolution": cfg.metrics_resolution});
        if !cfg.metrics_ids.is_empty() {
            sub["ids"] = json!(cfg.metrics_ids);
        }
        frames.push(sub.to_string());
    }
    if cfg.messages_sample > 0.0 {
        frames.push(
            json!({"type": "subscribe", "channel": "messages", "sample": cfg.messages_sample})
                .to_string(),
        );
    }
    if !cfg.keep_default_subscription {
        frames.push(json!({"type": "unsubscribe", "subscription": 0}).to_string());
    }
    frames
}

/// When measuring happens: set once every client has connected or failed.
#[derive(Debug, Clone, Copy)]
struct Window {
    measure: Instant,
    end: Instant,
    /// Wall clock of `measure` and of the end of the audit, ms.
    measure_wall_ms: i64,
    audit_until_ms: i64,
}

struct Shared {
    url: String,
    frames: Vec<String>,
    max_frame: usize,
    connect_timeout: Duration,
    window: OnceLock<Window>,
    connect: tokio::sync::Semaphore,
    settled: AtomicUsize,
    start: Instant,
}

/// One client's figures.
#[derive(Debug, Clone)]
pub struct ClientStats {
    /// TCP connect + WebSocket handshake, µs.
    pub connect_us: Option<u64>,
    /// From the start of the connection to `metrics:initial`, µs.
    pub initial_us: Option<u64>,
    /// Why it could not connect.
    pub connect_error: Option<String>,
    /// Measured `metrics:update` frames.
    pub metrics_frames: u64,
    /// Measured `message:new` frames.
    pub message_frames: u64,
    /// Bytes of measured text frames.
    pub bytes: u64,
    /// Hub tick → client, µs.
    pub metrics_latency: Histogram<u32>,
    /// `created_at` → client, µs.
    pub message_latency: Histogram<u32>,
    /// `message:new` frames of posts created inside the audit range.
    pub audited: u64,
    /// Metric ticks missed during the measurement.
    pub missed_ticks: u64,
    /// Measured `metrics:update` frames that held no 1 s window.
    pub without_second_window: u64,
    /// Ended before the measurement did: `(seconds since the load began, why)`.
    pub disconnected: Option<(f64, String)>,
    /// `error` frames received.
    pub error_frames: u64,
    /// The first of them.
    pub first_error: Option<String>,
}

impl ClientStats {
    fn new() -> Self {
        ClientStats {
            connect_us: None,
            initial_us: None,
            connect_error: None,
            metrics_frames: 0,
            message_frames: 0,
            bytes: 0,
            metrics_latency: report::small_histogram(),
            message_latency: report::small_histogram(),
            audited: 0,
            missed_ticks: 0,
            without_second_window: 0,
            disconnected: None,
            error_frames: 0,
            first_error: None,
        }
    }
}

/// One load thread's figures over all its clients.
#[derive(Debug, Clone)]
struct ThreadStats {
    metrics_latency: Histogram<u64>,
    window_age: Histogram<u64>,
    message_latency: Histogram<u64>,
    connect: Histogram<u64>,
    initial: Histogram<u64>,
    /// Text frames received per second since the load began.
    per_second: Vec<u64>,
    /// Audited post (hash of its id) → clients that got it.
    audit: HashMap<u64, u32>,
}

impl ThreadStats {
    fn new() -> Self {
        ThreadStats {
            metrics_latency: report::histogram(),
            window_age: report::histogram(),
            message_latency: report::histogram(),
            connect: report::histogram(),
            initial: report::histogram(),
            per_second: Vec::new(),
            audit: HashMap::new(),
        }
    }

    fn merge(&mut self, o: &ThreadStats) {
        for (a, b) in [
            (&mut self.metrics_latency, &o.metrics_latency),
            (&mut self.window_age, &o.window_age),
            (&mut self.message_latency, &o.message_latency),
            (&mut self.connect, &o.connect),
            (&mut self.initial, &o.initial),
        ] {
            a.add(b).expect("same bounds");
        }
        if self.per_second.len() < o.per_second.len() {
            self.per_second.resize(o.per_second.len(), 0);
        }
        for (a, b) in self.per_second.iter_mut().zip(&o.per_second) {
            *a += b;
        }
        for (k, v) in &o.audit {
            *self.audit.entry(*k).or_default() += v;
        }
    }
}

fn wall_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn id_hash(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// Measures one text frame.
fn on_text(
    text: &[u8],
    shared: &Shared,
    me: &mut ClientStats,
    thread: &RefCell<ThreadStats>,
    last_tick: &mut Option<i64>,
) -> bool {
    let now = Instant::now();
    let recv_us = wall_us();
    let Ok(f) = serde_json::from_slice::<FrameView<'_>>(text) else {
        me.error_frames += 1;
        me.first_error
            .get_or_insert_with(|| format!("unreadable frame: {}", http::excerpt(text)));
        return false;
    };
    let window = shared.window.get();
    let measuring = window.is_some_and(|w| now >= w.measure && now < w.end);
    let mut t = thread.borrow_mut();
    let second = (now - shared.start).as_secs() as usize;
    if t.per_second.len() <= second {
        t.per_second.resize(second + 1, 0);
    }
    t.per_second[second] += 1;
    match f.kind.as_ref() {
        "metrics:initial" => return true,
        "metrics:update" => {
            let Some(at_ms) = f.at_ms else {
                return false;
            };
            if measuring {
                me.metrics_frames += 1;
                me.bytes += text.len() as u64;
                let lat = recv_us - at_ms * 1_000;
                report::record(&mut me.metrics_latency, lat);
                report::record(&mut t.metrics_latency, lat);
                match f.newest_second_end_ms() {
                    Some(end) => report::record(&mut t.window_age, recv_us - end * 1_000),
                    None => me.without_second_window += 1,
                }
            }
            // Every metrics subscription gets each tick: count each tick once.
            match *last_tick {
                Some(prev) if at_ms <= prev => {}
                Some(prev) => {
                    if measuring {
                        me.missed_ticks += missed_ticks(prev, at_ms);
                    }
                    *last_tick = Some(at_ms);
                }
                None => *last_tick = Some(at_ms),
            }
        }
        "message:new" => {
            let Some(created) = f.created_ms() else {
                return false;
            };
            if measuring {
                me.message_frames += 1;
                me.bytes += text.len() as u64;
                let lat = recv_us - created * 1_000;
                report::record(&mut me.message_latency, lat);
                report::record(&mut t.message_latency, lat);
            }
            if let (Some(w), Some(p)) = (window, f.post.as_ref()) {
                if created >= w.measure_wall_ms && created < w.audit_until_ms {
                    me.audited += 1;
                    *t.audit.entry(id_hash(&p.id)).or_default() += 1;
                }
            }
        }
        "error" => {
            me.error_frames += 1;
            me.first_error.get_or_insert_with(|| http::excerpt(text));
        }
        _ => {}
    }
    false
}

/// What a WebSocket connection is to the load generator.
trait Socket:
    futures_util::Stream<Item = Result<Frame, awc::error::WsProtocolError>>
    + futures_util::Sink<Message, Error = awc::error::WsProtocolError>
    + Unpin
{
}

impl<S> Socket for S where
    S: futures_util::Stream<Item = Result<Frame, awc::error::WsProtocolError>>
        + futures_util::Sink<Message, Error = awc::error::WsProtocolError>
        + Unpin
{
}

/// One client: connect, subscribe, read until the end.
async fn client(
    awc: awc::Client,
    shared: Arc<Shared>,
    thread: Rc<RefCell<ThreadStats>>,
) -> ClientStats {
    let mut me = ClientStats::new();
    let permit = shared.connect.acquire().await;
    let set_up = set_up(&awc, &shared, &thread, &mut me).await;
    shared.settled.fetch_add(1, Ordering::SeqCst);
    drop(permit);
    match set_up {
        Ok(socket) => read(socket, &shared, &thread, me).await,
        Err(why) => {
            me.connect_error = Some(why);
            me
        }
    }
}

/// Connects, waits for `metrics:initial`, subscribes.
async fn set_up(
    awc: &awc::Client,
    shared: &Shared,
    thread: &RefCell<ThreadStats>,
    me: &mut ClientStats,
) -> Result<impl Socket, String> {
    let t0 = Instant::now();
    let deadline = t0 + shared.connect_timeout;
    let connecting = awc
        .ws(shared.url.as_str())
        .max_frame_size(shared.max_frame)
        .connect();
    let mut socket = match actix_rt::time::timeout(shared.connect_timeout, connecting).await {
        Ok(Ok((_, socket))) => socket,
        Ok(Err(awc::error::WsClientError::InvalidResponseStatus(status))) => {
            return Err(format!("handshake answered {status}"))
        }
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "no handshake within {} s",
                shared.connect_timeout.as_secs()
            ))
        }
    };
    let us = t0.elapsed().as_micros() as i64;
    me.connect_us = Some(us as u64);
    report::record(&mut thread.borrow_mut().connect, us);
    let mut last_tick = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = match actix_rt::time::timeout(left, socket.next()).await {
            Err(_) => return Err("no metrics:initial within the connect timeout".into()),
            Ok(None) => return Err("the server ended the stream before metrics:initial".into()),
            Ok(Some(Err(e))) => return Err(format!("protocol error: {e}")),
            Ok(Some(Ok(f))) => f,
        };
        match frame {
            Frame::Text(text) => {
                if on_text(&text, shared, me, thread, &mut last_tick) {
                    break;
                }
            }
            Frame::Ping(p) => {
                let _ = socket.send(Message::Pong(p)).await;
            }
            Frame::Close(reason) => {
                return Err(format!("closed before metrics:initial: {reason:?}"))
            }
            Frame::Binary(_) | Frame::Continuation(_) | Frame::Pong(_) => {}
        }
    }
    let us = t0.elapsed().as_micros() as i64;
    me.initial_us = Some(us as u64);
    report::record(&mut thread.borrow_mut().initial, us);
    for f in &shared.frames {
        socket
            .send(Message::Text(f.clone().into()))
            .await
            .map_err(|e| format!("cannot subscribe: {e}"))?;
    }
    Ok(socket)
}

/// Reads and measures frames until the end of the measurement.
async fn read(
    mut socket: impl Socket,
    shared: &Shared,
    thread: &RefCell<ThreadStats>,
    mut me: ClientStats,
) -> ClientStats {
    let mut last_tick: Option<i64> = None;
    let mut why: Option<String> = None;
    loop {
        if let Some(w) = shared.window.get() {
            if Instant::now() >= w.end {
                break;
            }
        }
        let next = actix_rt::time::timeout(Duration::from_millis(500), socket.next()).await;
        let frame = match next {
            Err(_) => continue,
            Ok(None) => {
                why = Some("the server ended the stream".into());
                break;
            }
            Ok(Some(Err(e))) => {
                why = Some(format!("protocol error: {e}"));
                break;
            }
            Ok(Some(Ok(f))) => f,
        };
        match frame {
            Frame::Text(text) => {
                on_text(&text, shared, &mut me, thread, &mut last_tick);
            }
            Frame::Ping(p) => {
                let _ = socket.send(Message::Pong(p)).await;
            }
            Frame::Close(reason) => {
                why = Some(format!(
                    "closed by the server: {}",
                    reason.map_or("no reason".into(), |r| format!(
                        "{:?} {}",
                        r.code,
                        r.description.unwrap_or_default()
                    ))
                ));
                break;
            }
            Frame::Binary(_) | Frame::Continuation(_) | Frame::Pong(_) => {}
        }
    }
    match why {
        Some(why) => me.disconnected = Some(((Instant::now() - shared.start).as_secs_f64(), why)),
        None => {
            let _ = socket
                .send(Message::Close(Some(CloseCode::Normal.into())))
                .await;
        }
    }
    me
}

fn load_thread(shared: Arc<Shared>, clients: usize) -> (Vec<ClientStats>, ThreadStats) {
    http::block_on(async move {
        let thread = Rc::new(RefCell::new(ThreadStats::new()));
        let awc = awc::Client::builder()
            .timeout(shared.connect_timeout)
            .connector(awc::Connector::new().limit(0))
            .finish();
        let tasks: Vec<_> = (0..clients)
            .map(|_| actix_rt::spawn(client(awc.clone(), shared.clone(), thread.clone())))
            .collect();
        let mut out = Vec::with_capacity(clients);
        for t in tasks {
            if let Ok(s) = t.await {
                out.push(s);
            }
        }
        let stats = thread.borrow().clone();
        (out, stats)
    })
}

fn mean_min_max(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let sum: f64 = v.iter().sum();
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (sum / v.len() as f64, min, max)
}

fn counters(base: &str) -> BTreeMap<String, f64> {
    http::block_on(async {
        http::server_metrics(&http::client(Duration::from_secs(10), 1), base).await
    })
    .unwrap_or_default()
}

/// Runs the case.
pub fn run(ctx: &RunContext<'_>, cfg: &WsFanout) -> Result<Outcome> {
    let base = ctx.base.as_str();
    let mut notes = Vec::new();
    let mut clients = cfg.clients;
    if let Some((before, after, hard)) = ctx.nofile {
        let cap = after.saturating_sub(FD_RESERVE) as usize;
        let line = format!(
            "Open-file limit: soft {before} raised to {after} (hard {hard}); Starling, started after, inherits it{}.",
            if ctx.started_here { "" } else { " (not the one given by --url: its own limit applies)" }
        );
        notes.push(line);
        if clients > cap {
            notes.push(format!(
                "**Clients capped** at {cap} (the open-file limit {after} less {FD_RESERVE} kept free), {} were asked.",
                cfg.clients
            ));
            eprintln!("loadtest: clients capped at {cap} by the open-file limit {after}");
            clients = cap;
        }
    }
    if clients == 0 {
        bail!("the open-file limit leaves no room for a client");
    }
    let ws_url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let before = counters(base);
    if before.is_empty() {
        bail!("cannot read {base}/metrics ({CONNECT_HINT})");
    }
    let shared = Arc::new(Shared {
        url: ws_url,
        frames: subscribe_frames(cfg),
        max_frame: 16 << 20,
        connect_timeout: Duration::from_secs(cfg.connect_timeout_s),
        window: OnceLock::new(),
        connect: tokio::sync::Semaphore::new(cfg.connect_concurrency),
        settled: AtomicUsize::new(0),
        start: Instant::now(),
    });
    eprintln!(
        "loadtest: opening {clients} WebSocket clients ({} handshakes at a time)",
        cfg.connect_concurrency
    );
    ctx.sampler.set_phase("connect");
    let threads: Vec<_> = (0..cfg.load_threads)
        .map(|t| {
            let n = clients / cfg.load_threads + usize::from(t < clients % cfg.load_threads);
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("ws-{t}"))
                .spawn(move || load_thread(shared, n))
                .expect("spawn a load thread")
        })
        .collect();
    // Wait until every client is connected (or has failed).
    let mut last = (0, Instant::now());
    loop {
        let n = shared.settled.load(Ordering::SeqCst);
        if n >= clients {
            break;
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(cfg.connect_timeout_s + 5) {
            eprintln!("loadtest: {n} of {clients} clients settled; no progress, measuring anyway");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let connect_s = shared.start.elapsed().as_secs_f64();
    let sched = Schedule::starting_now(cfg.warmup_s, cfg.duration_s);
    let measure_wall_ms = chrono::Utc::now().timestamp_millis() + (cfg.warmup_s * 1_000.0) as i64;
    let audit_until_ms = measure_wall_ms + ((cfg.duration_s - cfg.audit_margin_s) * 1_000.0) as i64;
    let _ = shared.window.set(Window {
        measure: sched.measure,
        end: sched.end,
        measure_wall_ms,
        audit_until_ms,
    });
    eprintln!(
        "loadtest: connected in {connect_s:.1} s; {:.0} s warm-up, {:.0} s measured",
        cfg.warmup_s, cfg.duration_s
    );
    ctx.sampler.set_phase("warmup");
    sched.sleep_until(sched.measure);
    ctx.sampler.set_phase("measure");
    let at_measure = counters(base);
    // The clients gauge mid-way: at the end the clients are already leaving.
    sched.sleep_until(sched.measure + (sched.end - sched.measure) / 2);
    let mid = counters(base);
    sched.sleep_until(sched.end);
    let at_end = counters(base);
    ctx.sampler.set_phase("close");
    let mut all = Vec::new();
    let mut stats = ThreadStats::new();
    for t in threads {
        match t.join() {
            Ok((c, s)) => {
                all.extend(c);
                stats.merge(&s);
            }
            Err(_) => bail!("a load thread panicked"),
        }
    }
    let after = counters(base);
    Ok(summarize(
        cfg,
        clients,
        connect_s,
        &all,
        &stats,
        [&before, &at_measure, &mid, &at_end, &after],
        notes,
    ))
}

fn summarize(
    cfg: &WsFanout,
    clients: usize,
    connect_s: f64,
    all: &[ClientStats],
    stats: &ThreadStats,
    [before, at_measure, mid, at_end, after]: [&BTreeMap<String, f64>; 5],
    mut notes: Vec<String>,
) -> Outcome {
    let secs = cfg.duration_s;
    let connected: Vec<&ClientStats> = all.iter().filter(|c| c.initial_us.is_some()).collect();
    let failed: Vec<&ClientStats> = all.iter().filter(|c| c.connect_error.is_some()).collect();
    let mut failure_reasons: BTreeMap<String, usize> = BTreeMap::new();
    for c in &failed {
        *failure_reasons
            .entry(c.connect_error.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let mut disconnects: BTreeMap<String, usize> = BTreeMap::new();
    for c in &connected {
        if let Some((_, why)) = &c.disconnected {
            *disconnects.entry(why.clone()).or_default() += 1;
        }
    }
    let disconnected = connected
        .iter()
        .filter(|c| c.disconnected.is_some())
        .count();

    // Loss audit: each audited post should reach every connected client.
    let distinct = stats.audit.len() as u64;
    let missing: Vec<u64> = connected
        .iter()
        .map(|c| distinct.saturating_sub(c.audited))
        .collect();
    let clients_missing = missing.iter().filter(|m| **m > 0).count();
    let total_missing: u64 = missing.iter().sum();
    let worst_missing = missing.iter().copied().max().unwrap_or(0);
    let missed_ticks: u64 = connected.iter().map(|c| c.missed_ticks).sum();
    let without_second_window: u64 = connected.iter().map(|c| c.without_second_window).sum();
    let metrics_frames: u64 = connected.iter().map(|c| c.metrics_frames).sum();
    let clients_missing_ticks = connected.iter().filter(|c| c.missed_ticks > 0).count();

    let per_client = |f: &dyn Fn(&ClientStats) -> u64| -> Vec<f64> {
        connected.iter().map(|c| f(c) as f64 / secs).collect()
    };
    let metrics_rate = mean_min_max(&per_client(&|c| c.metrics_frames));
    let message_rate = mean_min_max(&per_client(&|c| c.message_frames));
    let bytes_rate = mean_min_max(&per_client(&|c| c.bytes));

    // The slowest client: highest message:new p99 (metrics p99 without messages).
    let key = |c: &ClientStats| {
        if cfg.messages_sample > 0.0 && !c.message_latency.is_empty() {
            c.message_latency.value_at_quantile(0.99)
        } else {
            c.metrics_latency.value_at_quantile(0.99)
        }
    };
    let slowest = connected
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.metrics_latency.is_empty() || !c.message_latency.is_empty())
        .max_by_key(|(_, c)| key(c));

    let d = |a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, n: &str| http::delta(a, b, n);
    let dropped_run = d(before, after, "starling_ws_events_dropped_total");
    let dropped_measure = d(at_measure, at_end, "starling_ws_events_dropped_total");
    let slow_run = d(before, after, "starling_ws_slow_disconnects_total");
    let frames_sent = d(at_measure, at_end, "starling_ws_frames_sent_total") / secs;
    let posts = d(at_measure, at_end, "starling_connector_posts_total") / secs;
    let ws_clients = mid.get("starling_ws_clients").copied();

    let lat = [
        (
            "metrics:update — hub tick (`at_ms`) → client",
            Latency::of(&stats.metrics_latency),
        ),
        (
            "metrics:update — end of the newest 1 s window → client",
            Latency::of(&stats.window_age),
        ),
        (
            "message:new — post `created_at` (synthetic connector) → client",
            Latency::of(&stats.message_latency),
        ),
    ];
    let connect = [
        (
            "TCP connect + WebSocket handshake",
            Latency::of(&stats.connect),
        ),
        (
            "start → `metrics:initial` received",
            Latency::of(&stats.initial),
        ),
    ];

    let mut md = String::new();
    let subs = subscribe_frames(cfg);
    md.push_str(&format!(
        "Clients: {} asked, {clients} opened by {} load thread(s), {} handshakes at a time; each sent, after `metrics:initial`:\n\n",
        cfg.clients, cfg.load_threads, cfg.connect_concurrency
    ));
    for s in &subs {
        md.push_str(&format!("    {s}\n"));
    }
    md.push_str(&format!(
        "\n{} connected in {connect_s:.1} s, {} failed{}. Warm-up {} s after the last connection, then measured {} s. Starling during the measurement: {} synthetic posts/s, {} WebSocket frames/s sent{}.\n\n",
        connected.len(),
        failed.len(),
        if failure_reasons.is_empty() { String::new() } else {
            format!(" ({})", failure_reasons.iter().take(5).map(|(w, n)| format!("{n}× {w}")).collect::<Vec<_>>().join("; "))
        },
        cfg.warmup_s, cfg.duration_s,
        fmt_rate(posts), fmt_rate(frames_sent),
        ws_clients.map_or(String::new(), |n| format!(", {n} clients connected (`starling_ws_clients` half-way)"))
    ));
    md.push_str("Connection:\n\n");
    let rows = report::plain_rows(&connect);
    md.push_str(&report::latency_table("step", &[], &rows));
    md.push_str("\nDelivery latency over all clients (receive time − the time the frame carries; one clock, same machine):\n\n");
    let rows = report::plain_rows(&lat);
    md.push_str(&report::latency_table("event", &[], &rows));
    if let Some((i, c)) = slowest {
        let m = Latency::of(&c.metrics_latency);
        let g = Latency::of(&c.message_latency);
        md.push_str(&format!(
            "\nSlowest client (#{i} of the connected, by {} p99): {:.2} metrics:update/s, {:.2} message:new/s, {} missed ticks, {} audited posts missing{}.\n\n",
            if cfg.messages_sample > 0.0 { "message:new" } else { "metrics:update" },
            c.metrics_frames as f64 / secs,
            c.message_frames as f64 / secs,
            c.missed_ticks,
            distinct.saturating_sub(c.audited),
            c.disconnected.as_ref().map_or(String::new(), |(t, w)| format!(", disconnected at {t:.1} s: {w}"))
        ));
        md.push_str(&report::latency_table(
            "event (slowest client)",
            &[],
            &report::plain_rows(&[
                ("metrics:update — hub tick → client", m),
                ("message:new — created_at → client", g),
            ]),
        ));
    }
    md.push_str(&format!(
        "\nEvents per client per second (mean / min / max over the connected clients): metrics:update {:.2} / {:.2} / {:.2}; message:new {:.2} / {:.2} / {:.2}; {} / {} / {} bytes/s.\n\n",
        metrics_rate.0, metrics_rate.1, metrics_rate.2,
        message_rate.0, message_rate.1, message_rate.2,
        fmt_int(bytes_rate.0 as u64), fmt_int(bytes_rate.1 as u64), fmt_int(bytes_rate.2 as u64),
    ));
    md.push_str("Drops and disconnects:\n\n");
    md.push_str(&format!(
        "- Starling's count (`starling_ws_events_dropped_total`): +{} during the run, +{} during the measurement; slow clients disconnected (`starling_ws_slow_disconnects_total`): +{}. Starling sends no frame when it drops.\n",
        fmt_int(dropped_run as u64), fmt_int(dropped_measure as u64), fmt_int(slow_run as u64)
    ));
    md.push_str(&format!(
        "- Client-side audit of `message:new`: {} distinct sampled posts created in the first {} s of the measurement reached at least one client; {} of {} clients missed some ({} misses in all, at most {} for one client).\n",
        fmt_int(distinct), cfg.duration_s - cfg.audit_margin_s, clients_missing, connected.len(), fmt_int(total_missing), fmt_int(worst_missing)
    ));
    md.push_str(&format!(
        "- Missed `metrics:update` ticks (gaps in `at_ms`): {missed_ticks} in all, on {clients_missing_ticks} clients.\n"
    ));
    if cfg.metrics_resolution == "1s" && without_second_window > 0 {
        md.push_str(&format!(
            "- `metrics:update` frames that carried no 1 s window (a tick with nothing new for the subscription): {} of {}.\n",
            fmt_int(without_second_window),
            fmt_int(metrics_frames)
        ));
    }
    md.push_str(&format!(
        "- Disconnected before the end: {disconnected}{}.\n",
        if disconnects.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                disconnects
                    .iter()
                    .take(5)
                    .map(|(w, n)| format!("{n}× {w}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    ));
    let error_frames: u64 = all.iter().map(|c| c.error_frames).sum();
    if error_frames > 0 {
        let first = all
            .iter()
            .find_map(|c| c.first_error.clone())
            .unwrap_or_default();
        md.push_str(&format!(
            "- `error` frames received: {error_frames} (first: {first}).\n"
        ));
    }
    md.push_str(&format!(
        "\nText frames received per second by all clients (all phases): {}\n",
        report::per_second(&stats.per_second)
    ));

    notes.insert(
        0,
        format!(
            "**Load:** {clients} WebSocket clients, {} load thread(s), warm-up {} s, measured {} s",
            cfg.load_threads, cfg.warmup_s, cfg.duration_s
        ),
    );
    let slowest_json = slowest.map(|(i, c)| {
        json!({
            "index": i,
            "metrics_latency": Latency::of(&c.metrics_latency),
            "message_latency": Latency::of(&c.message_latency),
            "metrics_per_s": c.metrics_frames as f64 / secs,
            "messages_per_s": c.message_frames as f64 / secs,
            "missed_ticks": c.missed_ticks,
            "audited_missing": distinct.saturating_sub(c.audited),
            "disconnected": c.disconnected,
        })
    });
    let json = json!({
        "clients": {"asked": cfg.clients, "opened": clients, "connected": connected.len(),
                    "failed": failed.len(), "failure_reasons": failure_reasons,
                    "disconnected": disconnected, "disconnect_reasons": disconnects,
                    "connect_seconds": connect_s},
        "subscriptions": subs,
        "connect_latency": connect.iter().map(|(n, l)| json!({"step": n, "latency": l})).collect::<Vec<_>>(),
        "delivery_latency": lat.iter().map(|(n, l)| json!({"event": n, "latency": l})).collect::<Vec<_>>(),
        "slowest_client": slowest_json,
        "per_client_per_s": {
            "metrics_update": {"mean": metrics_rate.0, "min": metrics_rate.1, "max": metrics_rate.2},
            "message_new": {"mean": message_rate.0, "min": message_rate.1, "max": message_rate.2},
            "bytes": {"mean": bytes_rate.0, "min": bytes_rate.1, "max": bytes_rate.2},
        },
        "drops": {
            "server_dropped_run": dropped_run, "server_dropped_measure": dropped_measure,
            "server_slow_disconnects": slow_run,
            "audit_distinct_posts": distinct, "audit_clients_missing": clients_missing,
            "audit_total_missing": total_missing, "audit_worst_client_missing": worst_missing,
            "missed_ticks": missed_ticks, "clients_with_missed_ticks": clients_missing_ticks,
            "metrics_frames": metrics_frames, "metrics_frames_without_1s_window": without_second_window,
        },
        "server_during_measure": {"synthetic_posts_per_s": posts, "ws_frames_sent_per_s": frames_sent, "ws_clients_half_way": ws_clients},
        "error_frames": error_frames,
        "frames_per_second": stats.per_second,
    });
    Outcome {
        setup: notes,
        markdown: md,
        targets: Vec::new(),
        json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_give_their_timestamps() {
        let update = br#"{"type":"metrics:update","subscription":1,"at_ms":5000,"windows":[
            {"kind":"macro","id":"all","resolution":"1s","start_ms":2000,"metrics":{"volume":3}},
            {"kind":"macro","id":"all","resolution":"1m","start_ms":0,"metrics":{"volume":9}},
            {"kind":"project","id":"SOL","resolution":"1s","start_ms":3000,"metrics":{}}]}"#;
        let f: FrameView<'_> = serde_json::from_slice(update).expect("parse");
        assert_eq!(f.kind, "metrics:update");
        assert_eq!(f.at_ms, Some(5_000));
        assert_eq!(f.newest_second_end_ms(), Some(4_000));
        let message = br#"{"type":"message:new","subscription":2,"post":{"id":"syn-1","platform":"x",
            "created_at":"2026-11-21T12:00:00.250Z","author":{"id":"u"}},"scores":{},"entities":[]}"#;
        let f: FrameView<'_> = serde_json::from_slice(message).expect("parse");
        assert_eq!(f.post.as_ref().map(|p| p.id.as_ref()), Some("syn-1"));
        assert_eq!(f.created_ms(), Some(1_795_262_400_250));
        let sub: FrameView<'_> = serde_json::from_slice(
            br#"{"type":"subscribed","subscription":1,"channel":"metrics"}"#,
        )
        .expect("parse");
        assert_eq!(sub.kind, "subscribed");
    }

    #[test]
    fn tick_gaps_count_missed_ticks() {
        assert_eq!(missed_ticks(1_000, 2_000), 0);
        assert_eq!(missed_ticks(1_000, 2_400), 0);
        assert_eq!(missed_ticks(1_000, 3_050), 1);
        assert_eq!(missed_ticks(1_000, 5_000), 3);
        assert_eq!(missed_ticks(5_000, 4_000), 0);
    }

    #[test]
    fn subscriptions_follow_the_config() {
        let cfg = WsFanout::default();
        let frames = subscribe_frames(&cfg);
        assert_eq!(frames.len(), 3);
        let first: serde_json::Value = serde_json::from_str(&frames[0]).expect("json");
        assert_eq!(first["channel"], "metrics");
        assert_eq!(first["kinds"], json!(["macro", "project"]));
        assert!(first.get("ids").is_none());
        assert!(frames[1].contains("\"sample\":0.1"));
        assert!(frames[2].contains("unsubscribe"));
        let none = WsFanout {
            metrics_kinds: vec![],
            messages_sample: 0.0,
            keep_default_subscription: true,
            ..WsFanout::default()
        };
        assert!(subscribe_frames(&none).is_empty());
    }
}
