//! `ingest-max`: the highest rate the pipeline sustains, and whether its lag
//! stays flat at that rate.
//!
//! - `source = "http"`: `connections` closed loops each `POST /api/ingest` a
//!   JSON array of `batch_size` new posts, send the next as soon as the
//!   answer comes. Ingest answers only once the posts are on the bus, and a
//!   full stream makes it wait, so the loops run at the pipeline's pace.
//! - `source = "bus"`: Starling's synthetic connector publishes straight
//!   onto the bus at `bus_rate` posts/s, above what the pipeline takes, so
//!   it publishes as fast as the bus accepts (its generation is part of
//!   Starling's CPU).
//!
//! The rate is read from Starling's own counters once a second: posts
//! classified per second over the measured window (published, archived and
//! aggregated beside it), and the lag of the slowest durable consumer with
//! its least-squares slope.

use super::Schedule;
use crate::config::{BusKind, IngestMax, Source};
use crate::ingest::{now_rfc3339, Bodies};
use crate::pipeline::{throughput, Throughput};
use crate::report::{self, fmt_int, fmt_rate, Latency, TargetCheck};
use crate::{http, Outcome, RunContext};
use anyhow::{bail, Result};
use hdrhistogram::Histogram;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most time one ingest request may take (it waits while a stream is full).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What the HTTP loops saw.
#[derive(Debug, Clone)]
struct LoopStats {
    hist: Histogram<u64>,
    requests: u64,
    accepted_posts: u64,
    errors: u64,
    error_samples: Vec<String>,
}

impl LoopStats {
    fn new() -> Self {
        LoopStats {
            hist: report::histogram(),
            requests: 0,
            accepted_posts: 0,
            errors: 0,
            error_samples: Vec::new(),
        }
    }

    fn merge(&mut self, o: &LoopStats) {
        let _ = self.hist.add(&o.hist);
        self.requests += o.requests;
        self.accepted_posts += o.accepted_posts;
        self.errors += o.errors;
        for e in &o.error_samples {
            report::keep_error_sample(&mut self.error_samples, e.clone());
        }
    }
}

async fn ingest_loop(
    client: awc::Client,
    url: String,
    bodies: Arc<Bodies>,
    next: Arc<AtomicU64>,
    batch: usize,
    sched: Schedule,
    stats: Rc<RefCell<LoopStats>>,
) {
    loop {
        if Instant::now() >= sched.end {
            return;
        }
        let first = next.fetch_add(batch as u64, Ordering::Relaxed);
        let body = bodies.body(first, batch, &now_rfc3339(), false);
        let t0 = Instant::now();
        let answer = http::post_json(&client, &url, body).await;
        let t1 = Instant::now();
        let measured = t0 >= sched.measure && t1 <= sched.end;
        let failed = {
            let mut s = stats.borrow_mut();
            let problem = match answer {
                Ok((202, v)) => {
                    if measured {
                        s.requests += 1;
                        s.accepted_posts += v["accepted"].as_u64().unwrap_or(0);
                        report::record(&mut s.hist, (t1 - t0).as_micros() as i64);
                    }
                    None
                }
                Ok((status, v)) => Some(format!("{status}: {}", v["error"]["message"])),
                Err(e) => Some(e.to_string()),
            };
            let failed = problem.is_some();
            if let Some(p) = problem {
                s.errors += 1;
                report::keep_error_sample(&mut s.error_samples, p);
            }
            failed
        };
        if failed {
            // Do not spin on a refusing server.
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn http_load(ctx: &RunContext<'_>, cfg: &IngestMax, sched: Schedule) -> LoopStats {
    let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let bodies = Arc::new(Bodies::new(&run, 1_000));
    let next = Arc::new(AtomicU64::new(0));
    let url = format!("{}/api/ingest", ctx.base);
    let handles: Vec<_> = (0..cfg.load_threads)
        .map(|t| {
            let n = super::share(cfg.connections, cfg.load_threads, t);
            let (bodies, next, url, batch) =
                (bodies.clone(), next.clone(), url.clone(), cfg.batch_size);
            std::thread::spawn(move || {
                super::run_loops(n, REQUEST_TIMEOUT, LoopStats::new(), |_, client, stats| {
                    ingest_loop(
                        client,
                        url.clone(),
                        bodies.clone(),
                        next.clone(),
                        batch,
                        sched,
                        stats,
                    )
                })
            })
        })
        .collect();
    let mut all = LoopStats::new();
    for h in handles {
        if let Ok(s) = h.join() {
            all.merge(&s);
        }
    }
    all
}

/// Whether the lag grew: by more than one second's worth of throughput
/// (or 1,000 messages) over the measured window.
pub fn lag_grew(t: &Throughput) -> bool {
    t.lag_slope_per_s * t.seconds > t.classified_per_s.max(1_000.0)
}

/// Runs the case.
pub fn run(ctx: &RunContext<'_>, cfg: &IngestMax) -> Result<Outcome> {
    let sched = Schedule::starting_now(cfg.warmup_s, cfg.duration_s);
    ctx.sampler.set_phase("warmup");
    let from_s = (sched.measure - ctx.origin).as_secs_f64();
    let to_s = (sched.end - ctx.origin).as_secs_f64();
    let measure_phase = {
        let sampler = ctx.sampler;
        move || {
            sched.sleep_until(sched.measure);
            sampler.set_phase("measure");
        }
    };
    let loops = std::thread::scope(|scope| {
        scope.spawn(measure_phase);
        match cfg.source {
            Source::Http => Some(http_load(ctx, cfg, sched)),
            Source::Bus => {
                sched.sleep_until(sched.end);
                None
            }
        }
    });
    // The reading just after the end belongs to the window.
    std::thread::sleep(Duration::from_millis(1_200));
    let samples = ctx.pipeline.snapshot();
    let Some(t) = throughput(&samples, from_s - 0.6, to_s + 1.1) else {
        bail!("fewer than two readings of /metrics in the measured window: is /metrics reachable?");
    };
    let source = match cfg.source {
        Source::Http => format!(
            "HTTP ingest: {} closed-loop connections on {} thread(s), {} posts per `POST /api/ingest`",
            cfg.connections, cfg.load_threads, cfg.batch_size
        ),
        Source::Bus => format!(
            "the synthetic connector publishing straight onto the bus, asked for {} posts/s (as fast as the bus takes them)",
            fmt_rate(cfg.bus_rate)
        ),
    };
    let bus = match ctx.bus {
        BusKind::Memory => "the in-process bus",
        BusKind::Jetstream => {
            "NATS JetStream (nats-server started by the load test; its CPU is in *other*)"
        }
    };
    let setup = vec![
        format!("**Source:** {source}"),
        format!("**Bus:** {bus}"),
        format!(
            "**Schedule:** {} s warm-up, {} s measured; rates from Starling's `/metrics` read once a second",
            cfg.warmup_s, cfg.duration_s
        ),
    ];
    let grew = lag_grew(&t);
    let mut md = String::new();
    md.push_str("| figure | value |\n| --- | --- |\n");
    let rows = [
        ("posts published / s", fmt_rate(t.published_per_s)),
        (
            "**posts classified / s (the sustained rate)**",
            format!("**{}**", fmt_rate(t.classified_per_s)),
        ),
        ("posts archived / s", fmt_rate(t.archived_per_s)),
        (
            "entity-kind contributions aggregated / s",
            fmt_rate(t.aggregated_per_s),
        ),
        (
            "publisher waits on a full stream / s",
            fmt_rate(t.publish_waits_per_s),
        ),
        (
            "slowest consumer's lag: first / last / mean / max (messages)",
            format!(
                "{} / {} / {} / {}",
                fmt_int(t.lag_first as u64),
                fmt_int(t.lag_last as u64),
                fmt_int(t.lag_mean as u64),
                fmt_int(t.lag_max as u64)
            ),
        ),
        (
            "lag slope (messages / s)",
            format!(
                "{:+.1}{}",
                t.lag_slope_per_s,
                if grew {
                    " — **growing**"
                } else {
                    " — flat"
                }
            ),
        ),
        ("measured over (s)", format!("{:.1}", t.seconds)),
    ];
    for (k, v) in rows {
        md.push_str(&format!("| {k} | {v} |\n"));
    }
    let mut json = json!({"pipeline": t, "lag_grew": grew});
    if let Some(l) = &loops {
        let lat = Latency::of(&l.hist);
        md.push_str(&format!(
            "\nHTTP: {} requests answered 202 in the window ({} posts accepted, {} posts/s by the client's count), {} errors.\n\n",
            fmt_int(l.requests),
            fmt_int(l.accepted_posts),
            fmt_rate(l.accepted_posts as f64 / cfg.duration_s),
            fmt_int(l.errors)
        ));
        md.push_str(&report::latency_table(
            "request",
            &[],
            &report::plain_rows(&[("`POST /api/ingest`", lat.clone())]),
        ));
        for e in &l.error_samples {
            md.push_str(&format!("\n- error: {e}"));
        }
        json["http"] = json!({
            "requests": l.requests, "accepted_posts": l.accepted_posts,
            "accepted_per_s": l.accepted_posts as f64 / cfg.duration_s,
            "errors": l.errors, "error_samples": l.error_samples, "latency": lat,
        });
    }
    let target = match ctx.bus {
        BusKind::Memory => cfg.targets.memory_posts_per_s,
        BusKind::Jetstream => cfg.targets.jetstream_posts_per_s,
    };
    let targets = vec![
        TargetCheck {
            target: format!("≥ {} posts/s sustained ({bus})", fmt_rate(target)),
            measured: format!("{} posts/s classified", fmt_rate(t.classified_per_s)),
            met: t.classified_per_s >= target,
        },
        TargetCheck {
            target: "no growth in lag".into(),
            measured: format!(
                "{:+.1} messages/s over {:.0} s",
                t.lag_slope_per_s, t.seconds
            ),
            met: !grew,
        },
    ];
    Ok(Outcome {
        setup,
        markdown: md,
        targets,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(slope: f64, rate: f64) -> Throughput {
        Throughput {
            seconds: 60.0,
            published_per_s: rate,
            classified_per_s: rate,
            archived_per_s: rate,
            aggregated_per_s: rate,
            publish_waits_per_s: 0.0,
            ws_dropped: 0.0,
            lag_first: 0.0,
            lag_last: 0.0,
            lag_mean: 0.0,
            lag_max: 0.0,
            lag_slope_per_s: slope,
        }
    }

    #[test]
    fn lag_grows_when_it_gains_more_than_a_second_of_work() {
        assert!(!lag_grew(&t(0.0, 50_000.0)));
        assert!(!lag_grew(&t(500.0, 50_000.0)));
        assert!(lag_grew(&t(1_000.0, 50_000.0)));
        assert!(lag_grew(&t(20.0, 100.0)));
    }
}
