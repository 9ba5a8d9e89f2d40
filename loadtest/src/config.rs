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
pub const KNOWN_CASES: &[&str] = &["rest-lookups", "ws-fanout"];

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
}

impl Default for StarlingSettings {
    fn default() -> Self {
        StarlingSettings {
            synthetic_rate: 0.0,
            env: BTreeMap::new(),
            args: Vec::new(),
            ready_timeout_s: 120,
            stop_timeout_s: 60,
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
        assert!(err("case = \"soak\"\ndescription = \"d\"\n", "soak").contains("unknown case"));
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
