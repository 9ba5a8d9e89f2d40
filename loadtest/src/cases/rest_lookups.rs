//! `rest-lookups`: seed a known data set, wait until the pipeline has
//! counted it, then GET at a fixed concurrency (closed loop: each
//! keep-alive connection has one request in flight) and measure cached
//! lookups (entity records, overall) and uncached ones (series, listings)
//! separately.

use super::{Schedule, CONNECT_HINT};
use crate::config::RestLookups;
use crate::report::{self, fmt_int, fmt_ms, fmt_rate, Latency, Row, TargetCheck};
use crate::seed::{self, Rng};
use crate::{http, Outcome, RunContext};
use anyhow::{bail, Context as _, Result};
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::json;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /api/entities/{kind}/{id}`.
    Entity,
    /// `GET /api/metrics/overall`.
    Overall,
    /// `GET /api/entities/{kind}/{id}/series?…`.
    Series,
    /// `GET /api/entities/{kind}?period=…`.
    Listing,
}

impl Endpoint {
    /// Every kind, in table order.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::Entity,
        Endpoint::Overall,
        Endpoint::Series,
        Endpoint::Listing,
    ];

    /// The route, for tables.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Entity => "GET /api/entities/{kind}/{id}",
            Endpoint::Overall => "GET /api/metrics/overall",
            Endpoint::Series => "GET /api/entities/{kind}/{id}/series",
            Endpoint::Listing => "GET /api/entities/{kind}?period=…",
        }
    }

    /// Whether Starling serves it from its moka cache.
    pub fn cached(self) -> bool {
        matches!(self, Endpoint::Entity | Endpoint::Overall)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What the connections request: read-only, shared by the load threads.
#[derive(Debug)]
pub struct Plan {
    base: String,
    entities: Vec<(String, String)>,
    listings: Vec<String>,
    series_query: String,
    weights: [u32; 4],
}

impl Plan {
    /// A plan over `entities`; `from_ms..to_ms` is the series range.
    pub fn new(
        base: &str,
        cfg: &RestLookups,
        entities: Vec<(String, String)>,
        from_ms: i64,
        to_ms: i64,
    ) -> Plan {
        Plan {
            base: base.to_string(),
            entities,
            listings: cfg
                .listing_kinds
                .iter()
                .map(|k| format!("/api/entities/{k}?period={}", cfg.listing_period))
                .collect(),
            series_query: format!(
                "resolution={}&from={from_ms}&to={to_ms}",
                cfg.series_resolution
            ),
            weights: [
                cfg.mix.entity,
                cfg.mix.overall,
                cfg.mix.series,
                cfg.mix.listing,
            ],
        }
    }

    /// Draws the next request kind by weight.
    pub fn pick(&self, rng: &mut Rng) -> Endpoint {
        let total: u32 = self.weights.iter().sum();
        let mut x = rng.below(total as usize) as u32;
        for (e, w) in Endpoint::ALL.iter().zip(self.weights) {
            if x < w {
                return *e;
            }
            x -= w;
        }
        Endpoint::Overall
    }

    /// The URL of a request of kind `e`.
    pub fn url(&self, e: Endpoint, rng: &mut Rng) -> String {
        let entity = |rng: &mut Rng| &self.entities[rng.below(self.entities.len())];
        match e {
            Endpoint::Entity => {
                let (k, id) = entity(rng);
                format!("{}/api/entities/{k}/{id}", self.base)
            }
            Endpoint::Overall => format!("{}/api/metrics/overall", self.base),
            Endpoint::Series => {
                let (k, id) = entity(rng);
                format!(
                    "{}/api/entities/{k}/{id}/series?{}",
                    self.base, self.series_query
                )
            }
            Endpoint::Listing => format!(
                "{}{}",
                self.base,
                self.listings[rng.below(self.listings.len())]
            ),
        }
    }
}

/// Figures of one request kind.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    /// Latency of every measured request (µs), errors included.
    pub hist: Histogram<u64>,
    /// 2xx answers.
    pub ok: u64,
    /// Other answers, by status.
    pub status_errors: BTreeMap<u16, u64>,
    /// Requests that got no answer (timeout, connection error).
    pub transport_errors: u64,
    /// Body bytes of the 2xx answers.
    pub bytes: u64,
}

impl EndpointStats {
    fn new() -> Self {
        EndpointStats {
            hist: report::histogram(),
            ok: 0,
            status_errors: BTreeMap::new(),
            transport_errors: 0,
            bytes: 0,
        }
    }

    fn merge(&mut self, o: &EndpointStats) {
        self.hist.add(&o.hist).expect("same bounds");
        self.ok += o.ok;
        for (s, n) in &o.status_errors {
            *self.status_errors.entry(*s).or_default() += n;
        }
        self.transport_errors += o.transport_errors;
        self.bytes += o.bytes;
    }

    /// Requests that were not answered 2xx.
    pub fn errors(&self) -> u64 {
        self.status_errors.values().sum::<u64>() + self.transport_errors
    }
}

/// Figures of one load thread (merged at the end).
#[derive(Debug, Clone)]
pub struct LoadStats {
    /// Per request kind, in [`Endpoint::ALL`] order.
    pub endpoints: Vec<EndpointStats>,
    /// Completed requests per second since the load started (all phases).
    pub per_second: Vec<u64>,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
}

impl LoadStats {
    fn new() -> Self {
        LoadStats {
            endpoints: Endpoint::ALL.iter().map(|_| EndpointStats::new()).collect(),
            per_second: Vec::new(),
            error_samples: Vec::new(),
        }
    }

    fn merge(&mut self, o: &LoadStats) {
        for (a, b) in self.endpoints.iter_mut().zip(&o.endpoints) {
            a.merge(b);
        }
        if self.per_second.len() < o.per_second.len() {
            self.per_second.resize(o.per_second.len(), 0);
        }
        for (a, b) in self.per_second.iter_mut().zip(&o.per_second) {
            *a += b;
        }
        for e in &o.error_samples {
            report::keep_error_sample(&mut self.error_samples, e.clone());
        }
    }
}

/// One keep-alive connection's loop: a request, its answer, the next.
async fn connection(
    client: awc::Client,
    plan: Arc<Plan>,
    seed: u64,
    sched: Schedule,
    stats: Rc<RefCell<LoadStats>>,
) {
    let mut rng = Rng::new(seed);
    loop {
        let t0 = Instant::now();
        if t0 >= sched.end {
            return;
        }
        let e = plan.pick(&mut rng);
        let url = plan.url(e, &mut rng);
        let answer = async {
            let mut r = client.get(&url).send().await.map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let body = r.body().limit(64 << 20).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body.len()))
        }
        .await;
        let t1 = Instant::now();
        let failed = record(&mut stats.borrow_mut(), &sched, e, t0, t1, answer);
        if failed {
            // Do not spin on a refusing server.
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Records one answer; `true` when it was not a 2xx.
fn record(
    s: &mut LoadStats,
    sched: &Schedule,
    e: Endpoint,
    t0: Instant,
    t1: Instant,
    answer: Result<(u16, usize), String>,
) -> bool {
    let second = (t1 - sched.start).as_secs() as usize;
    if s.per_second.len() <= second {
        s.per_second.resize(second + 1, 0);
    }
    s.per_second[second] += 1;
    let measured = t0 >= sched.measure;
    let ep = &mut s.endpoints[e.index()];
    if measured {
        report::record(&mut ep.hist, (t1 - t0).as_micros() as i64);
    }
    let problem = match answer {
        Ok((status, bytes)) if (200..300).contains(&status) => {
            if measured {
                ep.ok += 1;
                ep.bytes += bytes as u64;
            }
            None
        }
        Ok((status, _)) => {
            if measured {
                *ep.status_errors.entry(status).or_default() += 1;
            }
            Some(format!("{} → {status}", e.route()))
        }
        Err(why) => {
            if measured {
                ep.transport_errors += 1;
            }
            Some(format!("{}: {why}", e.route()))
        }
    };
    let failed = problem.is_some();
    if let Some(p) = problem {
        report::keep_error_sample(&mut s.error_samples, p);
    }
    failed
}

/// Runs `connections` connections on this thread's own event loop.
fn load_thread(
    plan: Arc<Plan>,
    connections: usize,
    first_seed: u64,
    timeout: Duration,
    sched: Schedule,
) -> LoadStats {
    super::run_loops(
        connections,
        timeout,
        LoadStats::new(),
        |i, client, stats| connection(client, plan.clone(), first_seed + i as u64, sched, stats),
    )
}

/// Ingest figures.
#[derive(Debug, Default)]
struct SeedOutcome {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    failed_batches: Vec<String>,
    seconds: f64,
}

async fn ingest(base: &str, batches: Vec<Vec<u8>>, in_flight: usize) -> SeedOutcome {
    let client = http::client(Duration::from_secs(120), in_flight + 1);
    let url = format!("{base}/api/ingest");
    let started = Instant::now();
    let answers: Vec<_> = futures_util::stream::iter(batches)
        .map(|body| http::post_json(&client, &url, body))
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let mut out = SeedOutcome {
        seconds: started.elapsed().as_secs_f64(),
        ..Default::default()
    };
    for a in answers {
        match a {
            Ok((202, v)) => {
                out.accepted += v["accepted"].as_u64().unwrap_or(0);
                out.duplicates += v["duplicates"].as_u64().unwrap_or(0);
                out.rejected += v["rejected"].as_array().map_or(0, |r| r.len() as u64);
            }
            Ok((status, v)) => out.failed_batches.push(format!("{status}: {v}")),
            Err(e) => out.failed_batches.push(format!("{e:#}")),
        }
    }
    out
}

/// Waits until every consumer has nothing pending or unacknowledged (twice
/// in a row); returns the seconds waited and the consumers seen.
async fn drain(base: &str, timeout: Duration) -> Result<(f64, usize)> {
    let client = http::client(Duration::from_secs(10), 2);
    let url = format!("{base}/api/admin/actors");
    let started = Instant::now();
    let mut clean_in_a_row = 0;
    loop {
        let v = http::get_json(&client, &url).await?;
        let consumers = v["consumers"].as_array().cloned().unwrap_or_default();
        let busy = consumers.iter().any(|c| {
            c["pending"].as_u64().unwrap_or(1) > 0 || c["ack_pending"].as_u64().unwrap_or(1) > 0
        });
        clean_in_a_row = if busy { 0 } else { clean_in_a_row + 1 };
        if clean_in_a_row >= 2 {
            return Ok((started.elapsed().as_secs_f64(), consumers.len()));
        }
        if started.elapsed() > timeout {
            bail!(
                "the pipeline did not drain within {} s: {}",
                timeout.as_secs(),
                serde_json::Value::Array(consumers)
            );
        }
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Looks every entity up once (this also fills the cache); returns the
/// ones that answered 404.
async fn check_entities(base: &str, entities: &[(String, String)]) -> Result<Vec<String>> {
    let client = http::client(Duration::from_secs(30), 8);
    let answers: Vec<_> = futures_util::stream::iter(entities.iter())
        .map(|(k, id)| {
            let client = &client;
            async move {
                let url = format!("{base}/api/entities/{k}/{id}");
                (format!("{k}:{id}"), http::get(client, &url).await)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut missing = Vec::new();
    for (name, a) in answers {
        match a? {
            (200, _) => {}
            (404, _) => missing.push(name),
            (status, body) => bail!("GET entity {name}: {status}: {}", http::excerpt(&body)),
        }
    }
    missing.sort();
    Ok(missing)
}

/// Runs the case.
pub fn run(ctx: &RunContext<'_>, cfg: &RestLookups) -> Result<Outcome> {
    let base = ctx.base.as_str();
    let sc = &cfg.seed;
    // Seed.
    ctx.sampler.set_phase("seed");
    let seed_now = chrono::Utc::now();
    let run_id = seed_now.format("%Y%m%d%H%M%S").to_string();
    eprintln!(
        "loadtest: seeding {} posts in batches of {}",
        sc.posts, sc.batch_size
    );
    let batches = seed::batches(sc, &run_id, seed_now);
    let n_batches = batches.len();
    let seeded = http::block_on(ingest(base, batches, sc.in_flight));
    if seeded.accepted == 0 {
        bail!(
            "no post was accepted by {base}/api/ingest ({}): {}",
            CONNECT_HINT,
            seeded.failed_batches.join("; ")
        );
    }
    ctx.sampler.set_phase("drain");
    eprintln!(
        "loadtest: {} accepted in {:.1} s; waiting for the pipeline to drain",
        seeded.accepted, seeded.seconds
    );
    let (drain_s, consumers) =
        http::block_on(drain(base, Duration::from_secs(sc.drain_timeout_s)))?;
    let overall = http::block_on(async {
        http::get_json(
            &http::client(Duration::from_secs(10), 1),
            &format!("{base}/api/metrics/overall"),
        )
        .await
    })?;
    let overall_volume = overall["volume"].as_u64().unwrap_or(0);

    let entities = seed::entities(sc).entities;
    let missing = http::block_on(check_entities(base, &entities))
        .context("looking up the seeded entities")?;
    let present: Vec<(String, String)> = entities
        .iter()
        .filter(|(k, id)| !missing.contains(&format!("{k}:{id}")))
        .cloned()
        .collect();
    if present.is_empty() {
        bail!("none of the seeded entities can be looked up");
    }
    let before = http::block_on(async {
        http::server_metrics(&http::client(Duration::from_secs(10), 1), base).await
    })
    .unwrap_or_default();

    // Load.
    let spread_ms = i64::from(sc.spread_minutes) * 60_000;
    let to_ms = seed_now.timestamp_millis();
    let plan = Arc::new(Plan::new(
        base,
        cfg,
        present.clone(),
        to_ms - spread_ms - 60_000,
        to_ms,
    ));
    let sched = Schedule::starting_now(cfg.warmup_s, cfg.duration_s);
    eprintln!(
        "loadtest: {} connections, {:.0} s warm-up, {:.0} s measured",
        cfg.concurrency, cfg.warmup_s, cfg.duration_s
    );
    ctx.sampler.set_phase("warmup");
    let timeout = Duration::from_millis(cfg.request_timeout_ms);
    let threads: Vec<_> = (0..cfg.load_threads)
        .map(|t| {
            let conns = super::share(cfg.concurrency, cfg.load_threads, t);
            let plan = plan.clone();
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || load_thread(plan, conns, (t as u64) << 32, timeout, sched))
                .expect("spawn a load thread")
        })
        .collect();
    sched.sleep_until(sched.measure);
    ctx.sampler.set_phase("measure");
    sched.sleep_until(sched.end);
    ctx.sampler.set_phase("drain-load");
    let mut stats = LoadStats::new();
    for t in threads {
        match t.join() {
            Ok(s) => stats.merge(&s),
            Err(_) => bail!("a load thread panicked"),
        }
    }
    let after = http::block_on(async {
        http::server_metrics(&http::client(Duration::from_secs(10), 1), base).await
    })
    .unwrap_or_default();

    // Figures.
    let secs = cfg.duration_s;
    let mut classes: Vec<(&str, EndpointStats)> = vec![
        ("cached", EndpointStats::new()),
        ("uncached", EndpointStats::new()),
        ("all", EndpointStats::new()),
    ];
    for (e, s) in Endpoint::ALL.iter().zip(&stats.endpoints) {
        classes[if e.cached() { 0 } else { 1 }].1.merge(s);
        classes[2].1.merge(s);
    }
    let rps = |s: &EndpointStats| s.hist.len() as f64 / secs;
    let lat = |s: &EndpointStats| Latency::of(&s.hist);
    let class_lat: Vec<Option<Latency>> = classes.iter().map(|(_, s)| lat(s)).collect();
    let ep_lat: Vec<Option<Latency>> = stats.endpoints.iter().map(lat).collect();
    let error_cell = |s: &EndpointStats| {
        if s.errors() == 0 {
            "0".to_string()
        } else {
            let mut parts: Vec<String> = s
                .status_errors
                .iter()
                .map(|(st, n)| format!("{n}× {st}"))
                .collect();
            if s.transport_errors > 0 {
                parts.push(format!("{}× no answer", s.transport_errors));
            }
            parts.join(", ")
        }
    };
    let mut md = String::new();
    md.push_str(&format!(
        "Seed: {} posts ({} authors, {} `$PROJECT`s, {} `#topic`s, {} platforms, {} cities, {} products; `created_at` over the {} minutes before the seed) in {n_batches} `POST /api/ingest` batches of ≤ {} ({} in flight): {} accepted, {} duplicates, {} rejected, {} failed batches, in {:.1} s ({} posts/s). The pipeline drained {:.1} s later ({consumers} consumers at pending 0 and ack_pending 0); `/api/metrics/overall` volume then: {}.\n\n",
        fmt_int(sc.posts as u64), sc.authors, sc.projects, sc.topics, seed::PLATFORMS.len(), seed::GEOS.len(), seed::PRODUCTS.len(),
        sc.spread_minutes, fmt_int(sc.batch_size as u64), sc.in_flight,
        fmt_int(seeded.accepted), seeded.duplicates, seeded.rejected, seeded.failed_batches.len(),
        seeded.seconds, fmt_rate(seeded.accepted as f64 / seeded.seconds.max(1e-9)),
        drain_s, fmt_int(overall_volume),
    ));
    md.push_str(&format!(
        "Looked up: {} entities (`macro`, projects, topics, platforms, cities, products, users), each checked once before the load ({} answered 404{}).\n\n",
        present.len(),
        missing.len(),
        if missing.is_empty() { String::new() } else { format!(": {}", missing.iter().take(10).cloned().collect::<Vec<_>>().join(", ")) }
    ));
    md.push_str(&format!(
        "Load: {} keep-alive connections (closed loop: one request in flight each), {} load thread(s), mix entity {} : overall {} : series {} : listing {}, warm-up {} s, measured {} s. Latency is from sending the request to the last byte of the answer; errors are counted in the latency.\n\n",
        cfg.concurrency, cfg.load_threads, cfg.mix.entity, cfg.mix.overall, cfg.mix.series, cfg.mix.listing, cfg.warmup_s, cfg.duration_s
    ));
    let rows: Vec<Row<'_>> = classes
        .iter()
        .zip(&class_lat)
        .map(|((name, s), l)| Row {
            name,
            latency: l.as_ref(),
            extra: vec![fmt_rate(rps(s)), error_cell(s)],
        })
        .collect();
    md.push_str(&report::latency_table("class", &["req/s", "errors"], &rows));
    md.push_str("\nPer endpoint:\n\n");
    let rows: Vec<Row<'_>> = Endpoint::ALL
        .iter()
        .zip(&stats.endpoints)
        .zip(&ep_lat)
        .map(|((e, s), l)| Row {
            name: e.route(),
            latency: l.as_ref(),
            extra: vec![
                if e.cached() { "cached" } else { "uncached" }.to_string(),
                fmt_rate(rps(s)),
                error_cell(s),
                s.bytes.checked_div(s.ok).map_or("–".into(), fmt_int),
            ],
        })
        .collect();
    md.push_str(&report::latency_table(
        "endpoint",
        &["class", "req/s", "errors", "mean body B"],
        &rows,
    ));
    if !stats.error_samples.is_empty() {
        md.push_str("\nErrors seen (first distinct ones):\n\n");
        for e in &stats.error_samples {
            md.push_str(&format!("- {e}\n"));
        }
    }
    let rate_limited = http::delta(&before, &after, "starling_http_rate_limited_total");
    if rate_limited > 0.0 {
        md.push_str(&format!(
            "\nStarling refused {rate_limited} requests with 429 (rate limit).\n"
        ));
    }
    md.push_str(&format!(
        "\nCompleted requests per second (all phases): {}\n",
        report::per_second(&stats.per_second)
    ));

    let cached = &classes[0].1;
    let cached_rps = rps(cached);
    let cached_p99 = class_lat[0].as_ref().map(|l| l.p99_ms);
    let targets = vec![
        TargetCheck {
            target: format!("cached ≥ {} req/s", fmt_rate(cfg.targets.cached_rps)),
            measured: format!("{} req/s", fmt_rate(cached_rps)),
            met: cached_rps >= cfg.targets.cached_rps,
        },
        TargetCheck {
            target: format!("cached p99 < {} ms", cfg.targets.cached_p99_ms),
            measured: cached_p99.map_or("no request".into(), |p| format!("{} ms", fmt_ms(p))),
            met: cached_p99.is_some_and(|p| p < cfg.targets.cached_p99_ms),
        },
    ];

    let ep_json: Vec<_> = Endpoint::ALL
        .iter()
        .zip(&stats.endpoints)
        .zip(&ep_lat)
        .map(|((e, s), l)| {
            json!({
                "endpoint": e.route(), "cached": e.cached(), "requests": s.hist.len(),
                "req_per_s": rps(s), "ok": s.ok, "status_errors": s.status_errors,
                "transport_errors": s.transport_errors, "body_bytes": s.bytes, "latency": l,
            })
        })
        .collect();
    let class_json: Vec<_> = classes
        .iter()
        .zip(&class_lat)
        .map(|((name, s), l)| {
            json!({"class": name, "requests": s.hist.len(), "req_per_s": rps(s), "errors": s.errors(), "latency": l})
        })
        .collect();
    let json = json!({
        "seed": {
            "posts": sc.posts, "batches": n_batches, "accepted": seeded.accepted,
            "duplicates": seeded.duplicates, "rejected": seeded.rejected,
            "failed_batches": seeded.failed_batches, "ingest_seconds": seeded.seconds,
            "drain_seconds": drain_s, "consumers": consumers, "overall_volume": overall_volume,
        },
        "entities": {"looked_up": present.len(), "missing": missing},
        "load": {
            "concurrency": cfg.concurrency, "load_threads": cfg.load_threads,
            "warmup_s": cfg.warmup_s, "duration_s": cfg.duration_s,
        },
        "classes": class_json,
        "endpoints": ep_json,
        "per_second": stats.per_second,
        "error_samples": stats.error_samples,
        "server_rate_limited": rate_limited,
    });
    Ok(Outcome {
        setup: vec![format!(
            "**Load:** {} connections, {} load thread(s), warm-up {} s, measured {} s; seed {} posts",
            cfg.concurrency,
            cfg.load_threads,
            cfg.warmup_s,
            cfg.duration_s,
            fmt_int(sc.posts as u64)
        )],
        markdown: md,
        targets,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_the_weights() {
        let mut cfg = RestLookups::default();
        cfg.mix.entity = 3;
        cfg.mix.overall = 0;
        cfg.mix.series = 1;
        cfg.mix.listing = 0;
        let plan = Plan::new(
            "http://h",
            &cfg,
            vec![("project".into(), "SOL".into())],
            1,
            2,
        );
        let mut rng = Rng::new(1);
        let mut counts = [0usize; 4];
        for _ in 0..4_000 {
            counts[plan.pick(&mut rng).index()] += 1;
        }
        assert_eq!(counts[1] + counts[3], 0);
        assert!((2_800..3_200).contains(&counts[0]), "{counts:?}");
        assert_eq!(
            plan.url(Endpoint::Series, &mut rng),
            "http://h/api/entities/project/SOL/series?resolution=1m&from=1&to=2"
        );
        assert_eq!(
            plan.url(Endpoint::Listing, &mut rng),
            "http://h/api/entities/project?period=1h"
        );
    }
}
