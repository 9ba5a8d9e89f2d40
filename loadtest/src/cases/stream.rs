//! `e2e-latency` and `soak`: a steady stream through the whole pipeline,
//! measured at both ends.
//!
//! - **Ingest:** `rate` posts/s with `POST /api/ingest`, in
//!   `requests_per_s` requests per second on a fixed schedule (open loop: a
//!   slow answer does not slow the schedule; at most `max_in_flight`
//!   requests are out, and a request due beyond that waits and is counted
//!   as late). Posts are numbered; the time each was sent is kept.
//! - **Live feed:** one WebSocket client subscribed to `messages`
//!   (`sample`): *receive time − send time* of every `message:new` of this
//!   run is the ingest → live-feed latency (HTTP, bus, classifier, hub,
//!   session). With `sample = 1` every accepted post must arrive: the
//!   audit counts the missing ones (those sent in the last
//!   `audit_margin_s` aside).
//! - **REST:** every `probe_interval_ms` one post carries `$LTPROBE`, and a
//!   poller reads `GET /api/entities/project/LTPROBE` every
//!   `poll_interval_ms`: when its `volume` reaches *k*, the *k*-th probe is
//!   counted in a stored window, and *observed time − its send time* is the
//!   ingest → REST latency (to within the poll interval).
//! - **Soak** adds the trends: least-squares slopes of Starling's RSS, of
//!   the slowest consumer's lag and of the live feed's per-10-s p99 over
//!   the measured window (and RSS over its second half).

use super::{Schedule, CONNECT_HINT};
use crate::config::Stream;
use crate::ingest::{now_rfc3339, Bodies, PROBE};
use crate::pipeline::throughput;
use crate::report::{self, fmt_int, fmt_ms, fmt_rate, slope, Latency, TargetCheck};
use crate::{http, Outcome, RunContext};
use anyhow::{bail, Result};
use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seconds per bucket of the soak's latency trend.
const TREND_BUCKET_S: f64 = 10.0;

/// State shared by the ingest, WebSocket and REST threads.
struct Shared {
    /// `http://HOST:PORT`.
    base: String,
    bodies: Bodies,
    sched: Schedule,
    origin: Instant,
    /// Send time of post `n`, ns since `origin` (0 = not sent).
    sent_ns: Vec<AtomicU64>,
    /// Posts whose request was not answered 202 (never expected to arrive).
    failed: Vec<AtomicBool>,
    /// Send times of the probes, ns since `origin`, in order.
    probes: Mutex<Vec<u64>>,
    /// Set once the WebSocket client has subscribed.
    ws_ready: AtomicBool,
}

impl Shared {
    fn ns(&self, at: Instant) -> u64 {
        (at - self.origin).as_nanos() as u64
    }

    fn measured(&self, sent_ns: u64) -> bool {
        let m = self.ns(self.sched.measure);
        let e = self.ns(self.sched.end);
        sent_ns >= m && sent_ns < e
    }
}

/// What the ingest thread saw.
#[derive(Debug, Clone)]
struct IngestStats {
    hist: Histogram<u64>,
    requests: u64,
    posts_sent: u64,
    posts_accepted: u64,
    errors: u64,
    late: u64,
    error_samples: Vec<String>,
}

async fn ingest_thread(shared: Arc<Shared>, cfg: Stream) -> IngestStats {
    let stats = Rc::new(std::cell::RefCell::new(IngestStats {
        hist: report::histogram(),
        requests: 0,
        posts_sent: 0,
        posts_accepted: 0,
        errors: 0,
        late: 0,
        error_samples: Vec::new(),
    }));
    let client = http::client(Duration::from_secs(30), cfg.max_in_flight + 1);
    let url = format!("{}/api/ingest", shared.base);
    let in_flight = Rc::new(Cell::new(0usize));
    let tick = Duration::from_secs_f64(1.0 / cfg.requests_per_s);
    let mut ticker = actix_rt::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let capacity = shared.sent_ns.len() as u64;
    let mut next_seq = 0u64;
    let mut next_probe = shared.sched.start;
    let probe_every = Duration::from_millis(cfg.probe_interval_ms);
    let mut tasks = Vec::new();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        if now >= shared.sched.end {
            break;
        }
        let due = ((now - shared.sched.start).as_secs_f64() * cfg.rate) as u64;
        let due = due.min(capacity);
        if due <= next_seq {
            continue;
        }
        if in_flight.get() >= cfg.max_in_flight {
            stats.borrow_mut().late += 1;
            continue;
        }
        let n = (due - next_seq) as usize;
        let first = next_seq;
        next_seq = due;
        let probe = now >= next_probe;
        if probe {
            next_probe += probe_every;
        }
        let body = shared.bodies.body(first, n, &now_rfc3339(), probe);
        let t0 = Instant::now();
        let sent = shared.ns(t0);
        for s in first..first + n as u64 {
            shared.sent_ns[s as usize].store(sent, Ordering::Relaxed);
        }
        if probe {
            shared.probes.lock().expect("probes lock").push(sent);
        }
        in_flight.set(in_flight.get() + 1);
        let (client, url, shared2, stats2, inf) = (
            client.clone(),
            url.clone(),
            shared.clone(),
            stats.clone(),
            in_flight.clone(),
        );
        tasks.push(actix_rt::spawn(async move {
            let answer = http::post_json(&client, &url, body).await;
            let t1 = Instant::now();
            inf.set(inf.get() - 1);
            let mut s = stats2.borrow_mut();
            let measured = shared2.measured(sent);
            if measured {
                s.requests += 1;
                s.posts_sent += n as u64;
                report::record(&mut s.hist, (t1 - t0).as_micros() as i64);
            }
            let problem = match answer {
                Ok((202, v)) => {
                    if measured {
                        s.posts_accepted += v["accepted"].as_u64().unwrap_or(0);
                    }
                    None
                }
                Ok((status, v)) => Some(format!("{status}: {}", v["error"]["message"])),
                Err(e) => Some(e.to_string()),
            };
            if let Some(p) = problem {
                for q in first..first + n as u64 {
                    shared2.failed[q as usize].store(true, Ordering::Relaxed);
                }
                s.errors += 1;
                report::keep_error_sample(&mut s.error_samples, p);
            }
        }));
        tasks.retain(|t| !t.is_finished());
    }
    for t in tasks {
        let _ = t.await;
    }
    let out = stats.borrow().clone();
    out
}

/// The fields of a frame that are read.
#[derive(Debug, Deserialize)]
struct FrameView<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    post: Option<PostId<'a>>,
}

#[derive(Debug, Deserialize)]
struct PostId<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

/// What the WebSocket client saw.
#[derive(Debug, Clone)]
struct FeedStats {
    hist: Histogram<u64>,
    /// `(bucket start s, histogram)` for the trend.
    buckets: Vec<Histogram<u64>>,
    received: Vec<bool>,
    duplicates: u64,
    frames: u64,
    disconnected: Option<String>,
}

async fn feed_thread(shared: Arc<Shared>, cfg: Stream) -> Result<FeedStats, String> {
    let url = format!("{}/ws", shared.base).replacen("http", "ws", 1);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let (_, mut socket) = client
        .ws(url.as_str())
        .max_frame_size(16 << 20)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e} ({CONNECT_HINT})"))?;
    for f in [
        json!({"type": "subscribe", "channel": "messages", "sample": cfg.messages_sample}),
        json!({"type": "unsubscribe", "subscription": 0}),
    ] {
        socket
            .send(Message::Text(f.to_string().into()))
            .await
            .map_err(|e| format!("cannot subscribe: {e}"))?;
    }
    shared.ws_ready.store(true, Ordering::SeqCst);
    let total_s = (shared.sched.end - shared.sched.measure).as_secs_f64();
    let mut st = FeedStats {
        hist: report::histogram(),
        buckets: (0..(total_s / TREND_BUCKET_S).ceil() as usize)
            .map(|_| report::histogram())
            .collect(),
        received: vec![false; shared.sent_ns.len()],
        duplicates: 0,
        frames: 0,
        disconnected: None,
    };
    let measure_ns = shared.ns(shared.sched.measure);
    // Posts still in flight at the end get a few seconds to arrive.
    let stop = shared.sched.end + Duration::from_secs(3);
    while Instant::now() < stop {
        let frame = match actix_rt::time::timeout(Duration::from_millis(250), socket.next()).await {
            Err(_) => continue,
            Ok(None) => {
                st.disconnected = Some("the server ended the stream".into());
                break;
            }
            Ok(Some(Err(e))) => {
                st.disconnected = Some(format!("protocol error: {e}"));
                break;
            }
            Ok(Some(Ok(f))) => f,
        };
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Ping(p) => {
                let _ = socket.send(Message::Pong(p)).await;
                continue;
            }
            Frame::Close(r) => {
                st.disconnected = Some(format!("closed by the server: {r:?}"));
                break;
            }
            _ => continue,
        };
        let now_ns = shared.ns(Instant::now());
        st.frames += 1;
        let Ok(f) = serde_json::from_slice::<FrameView<'_>>(&text) else {
            continue;
        };
        if f.kind != "message:new" {
            continue;
        }
        let Some(seq) = f.post.and_then(|p| shared.bodies.seq(&p.id)) else {
            continue;
        };
        let Some(slot) = st.received.get_mut(seq as usize) else {
            continue;
        };
        if *slot {
            st.duplicates += 1;
            continue;
        }
        *slot = true;
        let sent = shared.sent_ns[seq as usize].load(Ordering::Relaxed);
        if sent == 0 || !shared.measured(sent) {
            continue;
        }
        let us = ((now_ns.saturating_sub(sent)) / 1_000) as i64;
        report::record(&mut st.hist, us);
        let b = ((sent - measure_ns) as f64 / 1e9 / TREND_BUCKET_S) as usize;
        if let Some(h) = st.buckets.get_mut(b) {
            report::record(h, us);
        }
    }
    Ok(st)
}

/// Probe latencies: `(histogram, probes sent in the window, probes seen)`.
async fn rest_thread(shared: Arc<Shared>, cfg: Stream) -> (Histogram<u64>, u64, u64, u64) {
    let client = http::client(Duration::from_secs(10), 2);
    let url = format!("{}/api/entities/project/{PROBE}", shared.base);
    let mut hist = report::histogram();
    let mut seen = 0usize;
    let mut errors = 0u64;
    let stop = shared.sched.end + Duration::from_secs(6);
    while Instant::now() < stop {
        match http::get(&client, &url).await {
            Ok((200, body)) => {
                let now_ns = shared.ns(Instant::now());
                let volume = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["volume"].as_u64())
                    .unwrap_or(0) as usize;
                if volume > seen {
                    let probes = shared.probes.lock().expect("probes lock").clone();
                    for &sent in probes.iter().take(volume).skip(seen) {
                        if shared.measured(sent) {
                            report::record(&mut hist, (now_ns.saturating_sub(sent) / 1_000) as i64);
                        }
                    }
                    seen = volume;
                }
            }
            Ok((404, _)) => {}
            _ => errors += 1,
        }
        actix_rt::time::sleep(Duration::from_millis(cfg.poll_interval_ms)).await;
    }
    let probes = shared.probes.lock().expect("probes lock").clone();
    let in_window = probes.iter().filter(|s| shared.measured(**s)).count() as u64;
    let seen_in_window = probes
        .iter()
        .take(seen)
        .filter(|s| shared.measured(**s))
        .count() as u64;
    (hist, in_window, seen_in_window, errors)
}

/// Runs `e2e-latency` (or `soak` with the trends).
pub fn run(ctx: &RunContext<'_>, cfg: &Stream, soak: bool) -> Result<Outcome> {
    let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let posts = (cfg.rate * (cfg.warmup_s + cfg.duration_s + 2.0)).ceil() as usize;
    let sched = Schedule::starting_now(cfg.warmup_s, cfg.duration_s);
    let shared = Arc::new(Shared {
        base: ctx.base.clone(),
        bodies: Bodies::new(&run, 1_000),
        sched,
        origin: ctx.origin,
        sent_ns: (0..posts).map(|_| AtomicU64::new(0)).collect(),
        failed: (0..posts).map(|_| AtomicBool::new(false)).collect(),
        probes: Mutex::new(Vec::new()),
        ws_ready: AtomicBool::new(false),
    });
    ctx.sampler.set_phase("warmup");
    let feed = {
        let (s, c) = (shared.clone(), cfg.clone());
        std::thread::spawn(move || http::block_on(feed_thread(s, c)))
    };
    // The client subscribes during the warm-up, before much is sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shared.ws_ready.load(Ordering::SeqCst)
        && Instant::now() < deadline
        && !feed.is_finished()
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rest = {
        let (s, c) = (shared.clone(), cfg.clone());
        std::thread::spawn(move || http::block_on(rest_thread(s, c)))
    };
    let ingest = {
        let (s, c) = (shared.clone(), cfg.clone());
        std::thread::spawn(move || http::block_on(ingest_thread(s, c)))
    };
    sched.sleep_until(sched.measure);
    ctx.sampler.set_phase("measure");
    sched.sleep_until(sched.end);
    ctx.sampler.set_phase("drain");
    let ing = ingest
        .join()
        .map_err(|_| anyhow::anyhow!("the ingest thread panicked"))?;
    let feed = match feed.join() {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => bail!("WebSocket client: {e}"),
        Err(_) => bail!("the WebSocket thread panicked"),
    };
    let (rest_hist, probes_sent, probes_seen, rest_errors) = rest
        .join()
        .map_err(|_| anyhow::anyhow!("the REST thread panicked"))?;

    // Audit: every accepted post sent in the window (less the margin) must
    // have reached the client, with sample = 1.
    let margin_ns = shared.ns(sched.end) - (cfg.audit_margin_s * 1e9) as u64;
    let (mut audited, mut missing) = (0u64, 0u64);
    if cfg.messages_sample >= 1.0 {
        for (i, sent) in shared.sent_ns.iter().enumerate() {
            let sent = sent.load(Ordering::Relaxed);
            if sent == 0 || !shared.measured(sent) || sent >= margin_ns {
                continue;
            }
            if shared.failed[i].load(Ordering::Relaxed) {
                continue;
            }
            audited += 1;
            missing += u64::from(!feed.received[i]);
        }
    }

    let from_s = (sched.measure - ctx.origin).as_secs_f64();
    let to_s = (sched.end - ctx.origin).as_secs_f64();
    let pipe = throughput(&ctx.pipeline.snapshot(), from_s - 0.6, to_s + 0.6);
    let feed_lat = Latency::of(&feed.hist);
    let rest_lat = Latency::of(&rest_hist);
    let ingest_lat = Latency::of(&ing.hist);

    let setup = vec![
        format!(
            "**Load:** {} posts/s with `POST /api/ingest` in {} requests/s of {} posts (open loop, at most {} in flight), created_at = send time; 1 post in {} ms carries `${PROBE}`",
            fmt_rate(cfg.rate),
            fmt_rate(cfg.requests_per_s),
            fmt_rate(cfg.rate / cfg.requests_per_s),
            cfg.max_in_flight,
            cfg.probe_interval_ms
        ),
        format!(
            "**Live feed:** 1 WebSocket client, `messages` with sample {}; **REST:** `GET /api/entities/project/{PROBE}` every {} ms",
            cfg.messages_sample, cfg.poll_interval_ms
        ),
        format!(
            "**Bus:** {}; {} s warm-up, {} s measured",
            match ctx.bus {
                crate::config::BusKind::Memory => "in-process",
                crate::config::BusKind::Jetstream => "NATS JetStream (nats-server's CPU is in *other*)",
            },
            cfg.warmup_s,
            cfg.duration_s
        ),
    ];
    let mut md = report::latency_table(
        "path",
        &[],
        &report::plain_rows(&[
            ("ingest → `message:new` on the WebSocket", feed_lat.clone()),
            (
                "ingest → probe counted in `GET /api/entities/project/LTPROBE`",
                rest_lat.clone(),
            ),
            ("`POST /api/ingest` answer", ingest_lat.clone()),
        ]),
    );
    md.push_str(&format!(
        "\nIngest: {} requests, {} posts sent and {} accepted in the window ({} posts/s), {} errors, {} requests due while {} were in flight (sent late).\n",
        fmt_int(ing.requests),
        fmt_int(ing.posts_sent),
        fmt_int(ing.posts_accepted),
        fmt_rate(ing.posts_accepted as f64 / cfg.duration_s),
        fmt_int(ing.errors),
        fmt_int(ing.late),
        cfg.max_in_flight
    ));
    for e in &ing.error_samples {
        md.push_str(&format!("- ingest error: {e}\n"));
    }
    md.push_str(&format!(
        "\nLive feed: {} frames, {} duplicates; audit: {}.{}\n",
        fmt_int(feed.frames),
        fmt_int(feed.duplicates),
        if cfg.messages_sample >= 1.0 {
            format!(
                "{} of {} accepted posts sent in the window (less the last {} s) never reached the client",
                fmt_int(missing),
                fmt_int(audited),
                cfg.audit_margin_s
            )
        } else {
            "not done (sample < 1)".into()
        },
        feed.disconnected
            .as_ref()
            .map(|d| format!(" **Disconnected:** {d}."))
            .unwrap_or_default()
    ));
    md.push_str(&format!(
        "\nREST: {} probes sent in the window, {} seen counted; {} poll errors. The probe is counted once its 1 s window closes (after `aggregation.allowed_lateness_ms`) and is flushed.\n",
        probes_sent, probes_seen, rest_errors
    ));
    if let Some(p) = &pipe {
        md.push_str(&format!(
            "\nPipeline ({} s): {} posts/s classified, slowest consumer's lag mean {} / max {} messages, slope {:+.1}/s; {} WebSocket events dropped.\n",
            p.seconds as u64,
            fmt_rate(p.classified_per_s),
            fmt_int(p.lag_mean as u64),
            fmt_int(p.lag_max as u64),
            p.lag_slope_per_s,
            p.ws_dropped
        ));
    }
    let mut json = json!({
        "feed": {"latency": feed_lat, "frames": feed.frames, "duplicates": feed.duplicates,
                 "audited": audited, "missing": missing, "disconnected": feed.disconnected},
        "rest": {"latency": rest_lat, "probes_sent": probes_sent, "probes_seen": probes_seen, "errors": rest_errors},
        "ingest": {"latency": ingest_lat, "requests": ing.requests, "posts_sent": ing.posts_sent,
                   "posts_accepted": ing.posts_accepted, "errors": ing.errors, "late": ing.late,
                   "error_samples": ing.error_samples},
        "pipeline": pipe,
    });
    let mut targets = Vec::new();
    if cfg.target_p99_ms > 0.0 {
        targets.push(TargetCheck {
            target: format!(
                "ingest → `message:new` p99 < {} ms at {} posts/s",
                cfg.target_p99_ms,
                fmt_rate(cfg.rate)
            ),
            measured: feed_lat.as_ref().map_or("no message arrived".into(), |l| {
                format!("{} ms", fmt_ms(l.p99_ms))
            }),
            met: feed_lat
                .as_ref()
                .is_some_and(|l| l.p99_ms < cfg.target_p99_ms)
                && missing == 0,
        });
    }
    if soak {
        let (trend_md, trend_json, flat) = trends(ctx, &feed, from_s, to_s, pipe.as_ref());
        md.push_str(&trend_md);
        json["trends"] = trend_json;
        targets.push(TargetCheck {
            target: "soak: RSS, lag and latency flat".into(),
            measured: flat.1,
            met: flat.0,
        });
    }
    Ok(Outcome {
        setup,
        markdown: md,
        targets,
        json,
    })
}

/// The soak's slopes: `(markdown, json, (flat, in words))`.
fn trends(
    ctx: &RunContext<'_>,
    feed: &FeedStats,
    from_s: f64,
    to_s: f64,
    pipe: Option<&crate::pipeline::Throughput>,
) -> (String, serde_json::Value, (bool, String)) {
    let samples = ctx.sampler.snapshot();
    let window = |f: fn(&crate::sampler::Sample) -> Option<f64>| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter(|s| s.t_s >= from_s && s.t_s <= to_s)
            .filter_map(|s| Some((s.t_s, f(s)?)))
            .collect()
    };
    let rss = window(|s| s.server_rss_mib);
    let anon = window(|s| s.server_rss_anon_mib);
    let half = (from_s + to_s) / 2.0;
    let per_min = |v: Option<f64>| v.map(|s| s * 60.0);
    // Slope per minute over the window and over its second half.
    let slopes = |points: &[(f64, f64)]| {
        let second: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 >= half).collect();
        (per_min(slope(points)), per_min(slope(&second)))
    };
    let (rss_slope, rss_slope_half) = slopes(&rss);
    let (anon_slope, anon_slope_half) = slopes(&anon);
    let p99s: Vec<(f64, f64)> = feed
        .buckets
        .iter()
        .enumerate()
        .filter_map(|(i, h)| Some((i as f64 * TREND_BUCKET_S, Latency::of(h)?.p99_ms)))
        .collect();
    let p99_slope = per_min(slope(&p99s));
    let lag_slope = pipe.map(|p| p.lag_slope_per_s * 60.0);
    let (rss_first, rss_last) = (rss.first().map(|p| p.1), rss.last().map(|p| p.1));
    let fmt = |v: Option<f64>, unit: &str| v.map_or("–".into(), |v| format!("{v:+.2} {unit}"));
    let mut md = String::from("\n### Trends over the measured window (least-squares slopes)\n\n| measure | slope | detail |\n| --- | --- | --- |\n");
    md.push_str(&format!(
        "| Starling RSS | {} | {} → {} MiB; second half {} |\n",
        fmt(rss_slope, "MiB/min"),
        rss_first.map_or("–".into(), |v| format!("{v:.0}")),
        rss_last.map_or("–".into(), |v| format!("{v:.0}")),
        fmt(rss_slope_half, "MiB/min")
    ));
    md.push_str(&format!(
        "| of which anonymous (heap) | {} | {} → {} MiB; second half {} |\n",
        fmt(anon_slope, "MiB/min"),
        anon.first().map_or("–".into(), |p| format!("{:.0}", p.1)),
        anon.last().map_or("–".into(), |p| format!("{:.0}", p.1)),
        fmt(anon_slope_half, "MiB/min")
    ));
    md.push_str(&format!(
        "| slowest consumer's lag | {} | mean {} messages |\n",
        fmt(lag_slope, "messages/min"),
        pipe.map_or("–".into(), |p| fmt_int(p.lag_mean as u64))
    ));
    md.push_str(&format!(
        "| live-feed p99 per {TREND_BUCKET_S} s | {} | {} |\n",
        fmt(p99_slope, "ms/min"),
        p99s.iter()
            .map(|p| fmt_ms(p.1))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Flat: RSS grows < 1 MiB/min over the second half, lag < 1,000
    // messages over the window, p99 < 1 ms/min.
    let minutes = (to_s - from_s) / 60.0;
    let flat_rss = rss_slope_half.is_some_and(|s| s < 1.0);
    let flat_lag = lag_slope.is_none_or(|s| s * minutes < 1_000.0);
    let flat_p99 = p99_slope.is_none_or(|s| s < 1.0);
    let words = format!(
        "RSS {} (second half), lag {}, p99 {}",
        fmt(rss_slope_half, "MiB/min"),
        fmt(lag_slope, "messages/min"),
        fmt(p99_slope, "ms/min")
    );
    let json = json!({
        "rss_mib_per_min": rss_slope, "rss_mib_per_min_second_half": rss_slope_half,
        "rss_first_mib": rss_first, "rss_last_mib": rss_last,
        "rss_anon_mib_per_min": anon_slope, "rss_anon_mib_per_min_second_half": anon_slope_half,
        "lag_messages_per_min": lag_slope, "p99_ms_per_min": p99_slope,
        "p99_per_bucket": p99s, "bucket_s": TREND_BUCKET_S,
        "flat": {"rss": flat_rss, "lag": flat_lag, "p99": flat_p99},
    });
    (md, json, (flat_rss && flat_lag && flat_p99, words))
}
