//! The alert engine: per-entity state and the rules, driven by scored posts
//! and by the passing of event time. Pure and synchronous: the actor
//! ([`crate::actors::alerts`]) feeds it and persists what it returns.
//!
//! **Time.** Posts are bucketed by `created_at` into buckets of
//! `alerts.bucket_s`. A bucket closes when a post `lateness_s` newer than its
//! end arrives, or, when no post arrives, once that much wall time has
//! passed ([`Engine::tick`]). A post for a bucket that already closed still
//! counts for the per-post rules, not for the series.
//!
//! **Rules**, evaluated for every tracked entity each time a bucket closes
//! (the window is the latest `window_s` of closed buckets; see
//! [`super::baseline`] for the tests):
//! - volume spike, sentiment shift, toxicity surge against the entity's own
//!   exponentially weighted baseline, once it has `warmup_s` of history; the
//!   baseline takes in each window after it is judged, at a tenth of the
//!   weight while the rule's alert is open, so that an episode does not
//!   become the new normal before it ends;
//! - custom rules: a metric over the rule's window compared with its
//!   threshold, with a minimum volume.
//!
//! An alert resolves after `clear_buckets` consecutive clear buckets; the
//! same rule may not alert on the same entity again for `cooldown_s`.
//!
//! Per post:
//! - **churn**: a post with churn risk ≥ `churn_threshold` raises (or joins)
//!   the churn alert of each product and project it is about (or of the
//!   whole market when it names none); posts within `churn_group_s` of the
//!   previous one are grouped into the open alert; a quiet `churn_group_s`
//!   resolves it. Severity grows with the highest risk and, for a churn
//!   wave, with how far the entity's churn posts in the window pass its
//!   churn baseline (beyond `volume_k` deviations, as for volume);
//! - **KOL post**: an author with at least `entities.kol_followers`
//!   followers posting with |sentiment| ≥ `kol_min_sentiment` about a
//!   project; once per KOL and project per `kol_cooldown_s`, after which it
//!   resolves.

use super::baseline::{Ewma, Test, Verdict};
use super::model::{
    severity, Alert, AlertEventType, AlertKind, AlertState, BaselineView, Evidence, EvidencePost,
    ResolvedBy, Rule, RuleMetric, Span, EVIDENCE_POSTS,
};
use crate::config::AlertsConfig;
use crate::domain::{EnrichedPost, EntityKind, EntityRef, SentimentLabel};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

/// Posts kept per bucket as candidate evidence.
const EVIDENCE_PER_BUCKET: usize = 8;
/// Post ids remembered per churn alert (re-delivered posts are not counted twice).
const CHURN_IDS: usize = 4_096;

/// One change the engine made: the alert after it, and the event to log
/// and push (`None`: a quiet change, stored without an event).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The alert after the change.
    pub alert: Alert,
    /// The event, if the change is one people are told about.
    pub event: Option<AlertEventType>,
}

/// Why a lifecycle request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// No unresolved alert has this id.
    #[error("no open or acknowledged alert `{0}`")]
    NotOpen(String),
}

/// Which rule an open alert belongs to, per entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RuleKey {
    Builtin(AlertKind),
    Custom(String),
}

impl RuleKey {
    /// The rule that raised `alert`.
    fn of(alert: &Alert) -> RuleKey {
        match (&alert.rule_id, alert.kind) {
            (Some(id), AlertKind::Custom) => RuleKey::Custom(id.clone()),
            (_, kind) => RuleKey::Builtin(kind),
        }
    }

    /// The kind of alert the rule raises.
    fn kind(&self) -> AlertKind {
        match self {
            RuleKey::Builtin(k) => *k,
            RuleKey::Custom(_) => AlertKind::Custom,
        }
    }
}

/// One bucket of an entity's recent series.
#[derive(Debug, Clone, Default)]
struct Bucket {
    volume: u64,
    engagement: u64,
    sentiment_sum: f64,
    sentiment_sq: f64,
    negative: u64,
    toxicity_sum: f64,
    toxicity_sq: f64,
    toxicity_n: u64,
    churn: u64,
    /// Sorted, de-duplicated author-id hashes.
    authors: Vec<u64>,
}

impl Bucket {
    fn add(&mut self, post: &EnrichedPost, churn_threshold: f64) {
        self.volume += 1;
        self.engagement += post.post.engagement.total();
        self.sentiment_sum += post.scores.sentiment.score;
        self.sentiment_sq += post.scores.sentiment.score * post.scores.sentiment.score;
        if post.scores.sentiment.label == SentimentLabel::Negative {
            self.negative += 1;
        }
        if let Some(t) = post.scores.toxicity {
            self.toxicity_sum += t;
            self.toxicity_sq += t * t;
            self.toxicity_n += 1;
        }
        if post.scores.churn_risk.is_some_and(|c| c >= churn_threshold) {
            self.churn += 1;
        }
        let h = xxh3_64(post.post.author.id.as_bytes());
        if let Err(at) = self.authors.binary_search(&h) {
            self.authors.insert(at, h);
        }
    }

    fn merge(&mut self, other: &Bucket) {
        self.volume += other.volume;
        self.engagement += other.engagement;
        self.sentiment_sum += other.sentiment_sum;
        self.sentiment_sq += other.sentiment_sq;
        self.negative += other.negative;
        self.toxicity_sum += other.toxicity_sum;
        self.toxicity_sq += other.toxicity_sq;
        self.toxicity_n += other.toxicity_n;
        self.churn += other.churn;
    }
}

impl Bucket {
    /// A metric of these posts (a bucket or the sum of a window's buckets).
    /// Distinct authors are not additive: [`EntityState::unique_authors`].
    fn metric(&self, m: RuleMetric) -> Option<f64> {
        let v = self.volume as f64;
        Some(match m {
            RuleMetric::Volume => v,
            RuleMetric::Engagement => self.engagement as f64,
            RuleMetric::ChurnCount => self.churn as f64,
            RuleMetric::SentimentIndex if v > 0.0 => self.sentiment_sum / v,
            RuleMetric::NegativeShare if v > 0.0 => self.negative as f64 / v,
            RuleMetric::Toxicity if self.toxicity_n > 0 => {
                self.toxicity_sum / self.toxicity_n as f64
            }
            _ => return None,
        })
    }
}

/// An open alert's bookkeeping on its entity.
#[derive(Debug, Clone)]
struct Active {
    alert_id: String,
    clear_run: u32,
}

/// What the engine keeps per tracked entity.
#[derive(Debug, Default)]
struct EntityState {
    /// Closed buckets, oldest first, the newest ending at the engine's watermark.
    closed: VecDeque<Bucket>,
    /// Buckets not yet closed, by start (ms).
    pending: BTreeMap<i64, Bucket>,
    /// Candidate evidence of the latest window's buckets (and the pending ones), by bucket start.
    posts: VecDeque<(i64, Vec<EvidencePost>)>,
    /// Closed buckets seen since the entity was first tracked.
    closed_count: u64,
    /// Event time of its latest post (ms).
    last_post_ms: i64,
    volume: Ewma,
    sentiment: Ewma,
    toxicity: Ewma,
    churn: Ewma,
    /// Per-post variance of sentiment and toxicity (for the standard error).
    sentiment_var: Ewma,
    toxicity_var: Ewma,
    active: HashMap<RuleKey, Active>,
    cooldown_until: HashMap<RuleKey, i64>,
}

impl EntityState {
    /// The sum of the latest `n` closed buckets (without their authors).
    fn window(&self, n: usize) -> Bucket {
        let mut w = Bucket::default();
        for b in self.closed.iter().rev().take(n) {
            w.merge(b);
        }
        w
    }

    /// Distinct authors of the latest `n` closed buckets, counted only
    /// when a rule asks for them.
    fn unique_authors(&self, n: usize) -> u64 {
        let mut authors: HashSet<u64> = HashSet::new();
        for b in self.closed.iter().rev().take(n) {
            authors.extend(b.authors.iter().copied());
        }
        authors.len() as u64
    }

    fn evidence(&self, order: impl Fn(&EvidencePost) -> f64) -> Vec<EvidencePost> {
        let mut all: Vec<&EvidencePost> = self.posts.iter().flat_map(|(_, p)| p.iter()).collect();
        all.sort_by(|a, b| order(b).total_cmp(&order(a)).then_with(|| a.id.cmp(&b.id)));
        all.dedup_by(|a, b| a.id == b.id);
        all.into_iter().take(EVIDENCE_POSTS).cloned().collect()
    }

    fn keep_post(&mut self, start_ms: i64, p: EvidencePost) {
        let salience = |e: &EvidencePost| {
            (e.engagement as f64 + 1.0).ln()
                + 2.0 * e.sentiment.abs()
                + 2.0 * e.toxicity.unwrap_or(0.0)
                + 2.0 * e.churn_risk.unwrap_or(0.0)
        };
        let at = match self.posts.iter().position(|(s, _)| *s == start_ms) {
            Some(at) => at,
            None => {
                let at = self.posts.partition_point(|(s, _)| *s < start_ms);
                self.posts.insert(at, (start_ms, Vec::new()));
                at
            }
        };
        let list = &mut self.posts[at].1;
        list.push(p);
        if list.len() > EVIDENCE_PER_BUCKET {
            list.sort_by(|a, b| salience(b).total_cmp(&salience(a)));
            list.truncate(EVIDENCE_PER_BUCKET);
        }
    }
}

/// A churn alert's grouping state.
#[derive(Debug)]
struct ChurnGroup {
    alert_id: String,
    last_ms: i64,
    ids: HashSet<String>,
    /// Highest severity announced since the group last calmed down (3 below
    /// it): a rise past it is an `updated` event, wobbles are not.
    peak: u8,
}

/// The alert engine (see the module doc).
#[derive(Debug)]
pub struct Engine {
    /// Shared so that evaluation can hold it while changing the engine.
    cfg: Arc<AlertsConfig>,
    kol_followers: u64,
    bucket_ms: i64,
    window_buckets: usize,
    keep_buckets: usize,
    warmup_buckets: u64,
    alpha: f64,
    /// Start of the oldest bucket still open (ms); `None` before the first post.
    watermark: Option<i64>,
    /// Newest event time seen (ms).
    newest_ms: i64,
    /// Wall time of the last post or idle advance (ms).
    last_advance_wall_ms: i64,
    tracked: HashSet<EntityKind>,
    entities: HashMap<EntityRef, EntityState>,
    churn: HashMap<EntityRef, ChurnGroup>,
    /// KOL post cooldowns: (author id, project) → event time it ends (ms).
    kol_until: HashMap<(String, String), i64>,
    /// KOL alerts to resolve: id → event time (ms).
    kol_resolve: HashMap<String, i64>,
    rules: Vec<Rule>,
    /// Every unresolved alert, by id.
    alerts: HashMap<String, Alert>,
}

impl Engine {
    /// An engine with `rules`, resuming the `unresolved` alerts of a previous run.
    pub fn new(
        cfg: AlertsConfig,
        kol_followers: u64,
        rules: Vec<Rule>,
        unresolved: Vec<Alert>,
    ) -> Self {
        let bucket_s = cfg.bucket_s.max(1);
        let window_buckets = (cfg.window_s / bucket_s).max(1) as usize;
        let mut e = Engine {
            bucket_ms: (bucket_s * 1000) as i64,
            window_buckets,
            keep_buckets: window_buckets,
            warmup_buckets: cfg.warmup_s / bucket_s,
            alpha: Ewma::alpha(bucket_s as f64, cfg.baseline_half_life_s as f64),
            tracked: cfg.kinds.iter().copied().collect(),
            kol_followers,
            cfg: Arc::new(cfg),
            watermark: None,
            newest_ms: i64::MIN,
            last_advance_wall_ms: 0,
            entities: HashMap::new(),
            churn: HashMap::new(),
            kol_until: HashMap::new(),
            kol_resolve: HashMap::new(),
            rules: Vec::new(),
            alerts: HashMap::new(),
        };
        e.set_rules(rules);
        for alert in unresolved {
            e.resume(alert);
        }
        e
    }

    /// Replaces the custom rules. Open alerts of rules that are gone or
    /// disabled are resolved.
    pub fn set_rules(&mut self, rules: Vec<Rule>) -> Vec<Change> {
        let bucket_s = self.cfg.bucket_s.max(1);
        self.rules = rules.into_iter().filter(|r| r.spec.enabled).collect();
        self.keep_buckets = self
            .rules
            .iter()
            .map(|r| (r.spec.window_s / bucket_s) as usize)
            .chain([self.window_buckets])
            .max()
            .unwrap_or(self.window_buckets);
        let live: HashSet<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
        let orphans: Vec<String> = self
            .alerts
            .values()
            .filter(|a| {
                a.kind == AlertKind::Custom
                    && a.rule_id.as_deref().is_none_or(|id| !live.contains(id))
            })
            .map(|a| a.id.clone())
            .collect();
        let now = self.last_advance_wall_ms;
        orphans
            .into_iter()
            .filter_map(|id| self.close(&id, ResolvedBy::User, now))
            .collect()
    }

    /// Whether the engine holds this alert unresolved.
    pub fn is_open(&self, id: &str) -> bool {
        self.alerts.contains_key(id)
    }

    /// Entities tracked now.
    pub fn tracked_entities(&self) -> usize {
        self.entities.len()
    }

    fn resume(&mut self, alert: Alert) {
        let entity = alert.entity.clone();
        match alert.kind {
            AlertKind::Churn => {
                self.churn.insert(
                    entity,
                    ChurnGroup {
                        alert_id: alert.id.clone(),
                        last_ms: alert.window.to_ms,
                        ids: alert.evidence.posts.iter().map(|p| p.id.clone()).collect(),
                        peak: alert.severity,
                    },
                );
            }
            AlertKind::KolPost => {
                let until = alert.window.to_ms + (self.cfg.kol_cooldown_s * 1000) as i64;
                self.kol_resolve.insert(alert.id.clone(), until);
                if let Some(p) = alert.evidence.posts.first() {
                    self.kol_until
                        .insert((p.author_id.clone(), entity.id.clone()), until);
                }
            }
            _ => {
                self.entities.entry(entity).or_default().active.insert(
                    RuleKey::of(&alert),
                    Active {
                        alert_id: alert.id.clone(),
                        clear_run: 0,
                    },
                );
            }
        }
        self.alerts.insert(alert.id.clone(), alert);
    }

    /// Takes in one scored post at wall time `wall_ms`.
    pub fn on_post(&mut self, post: &EnrichedPost, wall_ms: i64) -> Vec<Change> {
        let mut out = Vec::new();
        if !self.cfg.enabled {
            return out;
        }
        let t = post.post.created_at.timestamp_millis();
        self.last_advance_wall_ms = wall_ms;
        let start = t.div_euclid(self.bucket_ms) * self.bucket_ms;
        let watermark = *self.watermark.get_or_insert(start);
        let evidence = evidence_post(post);
        if start >= watermark {
            for entity in &post.entities {
                if !self.tracked.contains(&entity.kind) {
                    continue;
                }
                let state = self.entities.entry(entity.clone()).or_default();
                state
                    .pending
                    .entry(start)
                    .or_default()
                    .add(post, self.cfg.churn_threshold);
                state.last_post_ms = state.last_post_ms.max(t);
                state.keep_post(start, evidence.clone());
            }
        } else {
            crate::telemetry::metrics::ALERT_LATE_POSTS.inc();
        }
        self.churn_rule(post, &evidence, wall_ms, &mut out);
        self.kol_rule(post, &evidence, wall_ms, &mut out);
        if t > self.newest_ms {
            self.newest_ms = t;
            let lateness = (self.cfg.lateness_s * 1000) as i64;
            self.advance_to(t - lateness, wall_ms, &mut out);
        }
        out
    }

    /// Lets wall time pass: with no post for `lateness_s`, event time moves
    /// on with the wall clock, closing buckets and ending quiet churn groups.
    pub fn tick(&mut self, wall_ms: i64) -> Vec<Change> {
        let mut out = Vec::new();
        let lateness = (self.cfg.lateness_s * 1000) as i64;
        if self.watermark.is_none() || wall_ms - self.last_advance_wall_ms < lateness {
            return out;
        }
        let gained = wall_ms - self.last_advance_wall_ms;
        self.last_advance_wall_ms = wall_ms;
        self.newest_ms = self.newest_ms.saturating_add(gained);
        self.advance_to(self.newest_ms - lateness, wall_ms, &mut out);
        out
    }

    /// Acknowledges an unresolved alert.
    pub fn acknowledge(&mut self, id: &str, wall_ms: i64) -> Result<Change, LifecycleError> {
        let alert = self
            .alerts
            .get_mut(id)
            .ok_or_else(|| LifecycleError::NotOpen(id.to_string()))?;
        if alert.state == AlertState::Acknowledged {
            return Ok(Change {
                alert: alert.clone(),
                event: None,
            });
        }
        alert.state = AlertState::Acknowledged;
        alert.acknowledged_at_ms = Some(wall_ms);
        alert.updated_at_ms = wall_ms;
        Ok(Change {
            alert: alert.clone(),
            event: Some(AlertEventType::Acknowledged),
        })
    }

    /// Resolves an unresolved alert by hand.
    pub fn resolve(&mut self, id: &str, wall_ms: i64) -> Result<Change, LifecycleError> {
        self.close(id, ResolvedBy::User, wall_ms)
            .ok_or_else(|| LifecycleError::NotOpen(id.to_string()))
    }

    /// Closes buckets up to the one holding `until_ms` (exclusive of it).
    fn advance_to(&mut self, until_ms: i64, wall_ms: i64, out: &mut Vec<Change>) {
        let Some(mut wm) = self.watermark else {
            return;
        };
        let target = until_ms.div_euclid(self.bucket_ms) * self.bucket_ms;
        if target <= wm {
            return;
        }
        // A long gap: buckets beyond what any window keeps are all empty.
        let steps = (target - wm) / self.bucket_ms;
        let skip = steps.saturating_sub(self.keep_buckets as i64 + 1);
        if skip > 0 {
            for state in self.entities.values_mut() {
                state
                    .pending
                    .retain(|s, _| *s >= wm + skip * self.bucket_ms);
            }
            wm += skip * self.bucket_ms;
        }
        while wm < target {
            self.close_bucket(wm, wall_ms, out);
            wm += self.bucket_ms;
            self.watermark = Some(wm);
        }
        self.expire_groups(wm, wall_ms, out);
        self.evict(wm);
    }

    /// Closes the bucket starting at `start` for every entity and evaluates the rules.
    fn close_bucket(&mut self, start: i64, wall_ms: i64, out: &mut Vec<Change>) {
        let end = start + self.bucket_ms;
        let mut entities: Vec<EntityRef> = self.entities.keys().cloned().collect();
        entities.sort();
        for entity in entities {
            let Some(state) = self.entities.get_mut(&entity) else {
                continue;
            };
            let bucket = state.pending.remove(&start).unwrap_or_default();
            state.closed.push_back(bucket);
            while state.closed.len() > self.keep_buckets {
                state.closed.pop_front();
            }
            let oldest_kept = end - self.window_buckets as i64 * self.bucket_ms;
            while state.posts.front().is_some_and(|(s, _)| *s < oldest_kept) {
                state.posts.pop_front();
            }
            state.closed_count += 1;
            self.evaluate(&entity, end, wall_ms, out);
        }
    }

    fn evaluate(&mut self, entity: &EntityRef, end: i64, wall_ms: i64, out: &mut Vec<Change>) {
        let Some(state) = self.entities.get(entity) else {
            return;
        };
        let cfg = Arc::clone(&self.cfg);
        let w = state.window(self.window_buckets);
        let volume = w.volume;
        let span = Span {
            from_ms: end - self.window_buckets as i64 * self.bucket_ms,
            to_ms: end,
        };
        let warm = state.closed_count >= self.warmup_buckets.max(1);
        let enough_history = |b: &Ewma| warm && b.n >= self.warmup_buckets.max(1);
        let mut judged: Vec<(AlertKind, f64, Verdict, Ewma)> = Vec::new();
        if enough_history(&state.volume) {
            let t = Test::Spike {
                k: cfg.volume_k,
                ratio: cfg.volume_ratio,
            };
            let x = volume as f64;
            judged.push((
                AlertKind::VolumeSpike,
                x,
                t.judge(x, volume, cfg.min_volume, &state.volume),
                state.volume,
            ));
        }
        if let Some(x) = w.metric(RuleMetric::SentimentIndex) {
            if enough_history(&state.sentiment) {
                let se = (state.sentiment_var.mean.max(0.0) / volume.max(1) as f64).sqrt();
                let t = Test::Shift {
                    k: cfg.sentiment_k,
                    floor: cfg.sentiment_floor.max(se),
                };
                judged.push((
                    AlertKind::SentimentShift,
                    x,
                    t.judge(x, volume, cfg.min_volume, &state.sentiment),
                    state.sentiment,
                ));
            }
        }
        if let Some(x) = w.metric(RuleMetric::Toxicity) {
            if enough_history(&state.toxicity) {
                let se = (state.toxicity_var.mean.max(0.0) / w.toxicity_n.max(1) as f64).sqrt();
                let t = Test::Surge {
                    k: cfg.toxicity_k,
                    floor: se.max(0.02),
                    min_level: cfg.toxicity_min,
                };
                judged.push((
                    AlertKind::ToxicitySurge,
                    x,
                    t.judge(x, w.toxicity_n, cfg.min_volume, &state.toxicity),
                    state.toxicity,
                ));
            }
        }
        for (kind, x, verdict, base) in judged {
            let (metric, order): (&str, fn(&EvidencePost) -> f64) = match kind {
                AlertKind::VolumeSpike => ("volume", |p| p.engagement as f64),
                AlertKind::ToxicitySurge => ("toxicity", |p| p.toxicity.unwrap_or(0.0)),
                _ if x < base.mean => ("sentiment_index", |p| -p.sentiment),
                _ => ("sentiment_index", |p| p.sentiment),
            };
            let title = builtin_title(kind, entity, x, &base, cfg.window_s);
            let evidence = |s: &EntityState| Evidence {
                metric: metric.to_string(),
                value: x,
                threshold: verdict.threshold,
                baseline: Some(BaselineView {
                    mean: base.mean,
                    deviation: base.dev(),
                }),
                volume,
                matched: volume,
                posts: s.evidence(order),
            };
            self.apply(
                entity,
                RuleKey::Builtin(kind),
                verdict,
                severity(verdict.excess),
                span,
                title,
                evidence,
                wall_ms,
                out,
            );
        }

        // Custom rules over their own windows.
        let rules: Vec<Rule> = self
            .rules
            .iter()
            .filter(|r| r.spec.entity.matches(entity))
            .cloned()
            .collect();
        for rule in rules {
            let Some(state) = self.entities.get(entity) else {
                return;
            };
            let n = (rule.spec.window_s / self.cfg.bucket_s.max(1)) as usize;
            let rw = state.window(n);
            let enough = rw.volume >= rule.spec.min_volume;
            let value = match rule.spec.metric {
                RuleMetric::UniqueAuthors => Some(state.unique_authors(n) as f64),
                m => rw.metric(m),
            };
            let holds = value.is_some_and(|v| rule.spec.comparison.holds(v, rule.spec.threshold));
            let v = value.unwrap_or(0.0);
            let fires = enough && holds && state.closed_count >= n as u64;
            let excess = (v - rule.spec.threshold).abs() / rule.spec.threshold.abs().max(1e-9);
            let verdict = Verdict {
                fires,
                clear: !(enough && holds),
                threshold: rule.spec.threshold,
                excess: if fires { excess } else { 0.0 },
            };
            let sev = rule
                .spec
                .severity
                .unwrap_or_else(|| severity(verdict.excess));
            let title = format!(
                "Rule `{}`: {} of {} {} is {} ({} {})",
                rule.spec.name,
                rule.spec.metric.as_str(),
                entity.kind,
                entity.id,
                round3(v),
                comparison_sign(rule.spec.comparison),
                rule.spec.threshold
            );
            let span = Span {
                from_ms: end - n as i64 * self.bucket_ms,
                to_ms: end,
            };
            let metric = rule.spec.metric;
            let evidence = |s: &EntityState| Evidence {
                metric: metric.as_str().to_string(),
                value: v,
                threshold: rule.spec.threshold,
                baseline: None,
                volume: rw.volume,
                matched: rw.volume,
                posts: s.evidence(|p| p.engagement as f64),
            };
            self.apply(
                entity,
                RuleKey::Custom(rule.id.clone()),
                verdict,
                sev,
                span,
                title,
                evidence,
                wall_ms,
                out,
            );
        }

        // Baselines take the window in after it was judged.
        let alpha = self.alpha;
        let min_volume = self.cfg.min_volume;
        let window_buckets = self.window_buckets as u64;
        // Winsorise from two windows of history on, long before the rules
        // judge: an episode inside the warm-up must not become the normal.
        let warmup = 2 * window_buckets;
        let sentiment_floor = self.cfg.sentiment_floor;
        let Some(state) = self.entities.get_mut(entity) else {
            return;
        };
        if state.closed_count < window_buckets {
            return; // a partial first window would bias the baselines low
        }
        let a = |open: bool| if open { alpha * 0.1 } else { alpha };
        let open = |k: AlertKind| state.active.contains_key(&RuleKey::Builtin(k));
        let (va, sa, ta) = (
            a(open(AlertKind::VolumeSpike)),
            a(open(AlertKind::SentimentShift)),
            a(open(AlertKind::ToxicitySurge)),
        );
        const CLIP: f64 = 3.0;
        let spread = |b: &Ewma| b.dev().max(b.mean.max(0.0).sqrt()).max(1.0);
        let (vs, cs) = (spread(&state.volume), spread(&state.churn));
        state
            .volume
            .update_clipped(volume as f64, va, CLIP, vs, warmup);
        state
            .churn
            .update_clipped(w.churn as f64, alpha, CLIP, cs, warmup);
        if volume >= min_volume.max(1) {
            let n = volume as f64;
            if let Some(x) = w.metric(RuleMetric::SentimentIndex) {
                let s = state.sentiment.dev().max(sentiment_floor);
                state.sentiment.update_clipped(x, sa, CLIP, s, warmup);
                let var = (w.sentiment_sq / n - x * x).max(0.0);
                state.sentiment_var.update(var, alpha);
            }
        }
        if w.toxicity_n >= min_volume.max(1) {
            let n = w.toxicity_n as f64;
            if let Some(x) = w.metric(RuleMetric::Toxicity) {
                let s = state.toxicity.dev().max(0.02);
                state.toxicity.update_clipped(x, ta, CLIP, s, warmup);
                let var = (w.toxicity_sq / n - x * x).max(0.0);
                state.toxicity_var.update(var, alpha);
            }
        }
    }

    /// Raises, updates or resolves the alert of `key` on `entity` after a verdict.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        entity: &EntityRef,
        key: RuleKey,
        verdict: Verdict,
        sev: u8,
        span: Span,
        title: String,
        evidence: impl Fn(&EntityState) -> Evidence,
        wall_ms: i64,
        out: &mut Vec<Change>,
    ) {
        let clear_buckets = self.cfg.clear_buckets.max(1);
        let Some(state) = self.entities.get_mut(entity) else {
            return;
        };
        if let Some(active) = state.active.get_mut(&key) {
            let id = active.alert_id.clone();
            if verdict.fires {
                active.clear_run = 0;
                if let Some(alert) = self.alerts.get_mut(&id) {
                    alert.window.to_ms = span.to_ms;
                    if sev > alert.severity {
                        alert.severity = sev;
                        alert.title = title;
                        alert.evidence = evidence(state);
                        alert.updated_at_ms = wall_ms;
                        out.push(Change {
                            alert: alert.clone(),
                            event: Some(AlertEventType::Updated),
                        });
                    }
                }
            } else if verdict.clear {
                active.clear_run += 1;
                if active.clear_run >= clear_buckets {
                    if let Some(c) = self.close(&id, ResolvedBy::Condition, wall_ms) {
                        out.push(c);
                    }
                }
            } else {
                active.clear_run = 0;
            }
            return;
        }
        if !verdict.fires
            || state
                .cooldown_until
                .get(&key)
                .is_some_and(|&u| span.to_ms < u)
        {
            return;
        }
        let finding = Finding {
            kind: key.kind(),
            key: match &key {
                RuleKey::Custom(id) => Some(id.clone()),
                RuleKey::Builtin(_) => None,
            },
            severity: sev,
            title,
            window: span,
            evidence: evidence(state),
        };
        let id = self.raise(entity, finding, wall_ms, out);
        if let Some(state) = self.entities.get_mut(entity) {
            state.active.insert(
                key,
                Active {
                    alert_id: id,
                    clear_run: 0,
                },
            );
        }
    }

    /// Opens a new alert for what a rule found on `entity`: it joins the
    /// unresolved alerts and is announced as raised. Returns its id.
    fn raise(
        &mut self,
        entity: &EntityRef,
        f: Finding,
        wall_ms: i64,
        out: &mut Vec<Change>,
    ) -> String {
        let alert = Alert {
            id: alert_id(f.kind, f.key.as_deref(), entity, f.window.from_ms),
            kind: f.kind,
            rule_id: f.key.filter(|_| f.kind == AlertKind::Custom),
            severity: f.severity,
            state: AlertState::Open,
            entity: entity.clone(),
            title: f.title,
            window: f.window,
            evidence: f.evidence,
            opened_at_ms: wall_ms,
            updated_at_ms: wall_ms,
            acknowledged_at_ms: None,
            resolved_at_ms: None,
            resolved_by: None,
        };
        let id = alert.id.clone();
        self.alerts.insert(id.clone(), alert.clone());
        out.push(Change {
            alert,
            event: Some(AlertEventType::Raised),
        });
        id
    }

    /// Resolves an unresolved alert and forgets its bookkeeping.
    fn close(&mut self, id: &str, by: ResolvedBy, wall_ms: i64) -> Option<Change> {
        let mut alert = self.alerts.remove(id)?;
        alert.state = AlertState::Resolved;
        alert.resolved_at_ms = Some(wall_ms);
        alert.resolved_by = Some(by);
        alert.updated_at_ms = wall_ms;
        match alert.kind {
            AlertKind::Churn => {
                self.churn.retain(|_, g| g.alert_id != id);
            }
            AlertKind::KolPost => {
                self.kol_resolve.remove(id);
            }
            _ => {
                let cooldown = (self.cfg.cooldown_s * 1000) as i64;
                let key = RuleKey::of(&alert);
                let rule_cooldown = match &key {
                    RuleKey::Custom(rid) => self
                        .rules
                        .iter()
                        .find(|r| &r.id == rid)
                        .map(|r| (r.spec.cooldown_s * 1000) as i64)
                        .unwrap_or(cooldown),
                    RuleKey::Builtin(_) => cooldown,
                };
                if let Some(state) = self.entities.get_mut(&alert.entity) {
                    state.active.remove(&key);
                    let until = self.watermark.unwrap_or(alert.window.to_ms) + rule_cooldown;
                    state.cooldown_until.insert(key, until);
                }
            }
        }
        Some(Change {
            alert,
            event: Some(AlertEventType::Resolved),
        })
    }

    fn churn_rule(
        &mut self,
        post: &EnrichedPost,
        evidence: &EvidencePost,
        wall_ms: i64,
        out: &mut Vec<Change>,
    ) {
        let Some(risk) = post.scores.churn_risk else {
            return;
        };
        let thr = self.cfg.churn_threshold;
        if risk < thr {
            return;
        }
        let t = post.post.created_at.timestamp_millis();
        let mut targets: Vec<&EntityRef> = post
            .entities
            .iter()
            .filter(|e| matches!(e.kind, EntityKind::Product | EntityKind::Project))
            .collect();
        let market = EntityRef::macro_all();
        if targets.is_empty() {
            targets.push(&market);
        }
        let group_ms = (self.cfg.churn_group_s * 1000) as i64;
        for entity in targets {
            // Churn posts in the entity's window against its churn baseline.
            let (recent, base) = match self.entities.get(entity) {
                Some(s) => (
                    s.window(self.window_buckets).churn
                        + s.pending.values().map(|b| b.churn).sum::<u64>(),
                    s.churn,
                ),
                None => (1, Ewma::default()),
            };
            let s = base.dev().max(base.mean.max(0.0).sqrt()).max(1.0);
            // Only a burst past volume_k deviations raises the severity:
            // ordinary churn (a few posts a window) stays at the level its
            // risk gives.
            let k = self.cfg.volume_k.max(1.0);
            let burst = if base.n >= self.warmup_buckets.max(1) {
                ((recent as f64 - base.mean) / s - k).max(0.0) / k
            } else {
                0.0
            };
            let group = self
                .churn
                .get_mut(entity)
                .filter(|g| (t - g.last_ms).abs() <= group_ms);
            match group {
                Some(g) => {
                    if !g.ids.insert(post.post.id.clone()) {
                        continue; // a redelivery
                    }
                    if g.ids.len() > CHURN_IDS {
                        g.ids.clear();
                        g.ids.insert(post.post.id.clone());
                    }
                    g.last_ms = g.last_ms.max(t);
                    let Some(alert) = self.alerts.get_mut(&g.alert_id) else {
                        continue;
                    };
                    let e = &mut alert.evidence;
                    e.matched += 1;
                    e.volume += 1;
                    e.value = e.value.max(risk);
                    e.posts.push(evidence.clone());
                    e.posts.sort_by(|a, b| {
                        b.churn_risk
                            .unwrap_or(0.0)
                            .total_cmp(&a.churn_risk.unwrap_or(0.0))
                            .then_with(|| b.created_at_ms.cmp(&a.created_at_ms))
                    });
                    e.posts.truncate(EVIDENCE_POSTS);
                    alert.window.from_ms = alert.window.from_ms.min(t);
                    alert.window.to_ms = alert.window.to_ms.max(t + 1);
                    alert.title = churn_title(entity, e.matched);
                    alert.updated_at_ms = wall_ms;
                    // The severity follows the group as it is now: it rises
                    // with a wave (an update people are told about) and
                    // settles quietly after it.
                    let sev = severity((risk - thr) / (1.0 - thr).max(1e-9) + burst);
                    let event =
                        (sev > g.peak.max(alert.severity)).then_some(AlertEventType::Updated);
                    g.peak = if sev + 3 <= g.peak {
                        sev
                    } else {
                        g.peak.max(sev)
                    };
                    alert.severity = sev;
                    out.push(Change {
                        alert: alert.clone(),
                        event,
                    });
                }
                None => {
                    let (window, evidence) = one_post(t, "churn_risk", risk, thr, evidence);
                    let finding = Finding {
                        kind: AlertKind::Churn,
                        key: None,
                        severity: severity((risk - thr) / (1.0 - thr).max(1e-9) + burst),
                        title: churn_title(entity, 1),
                        window,
                        evidence,
                    };
                    let peak = finding.severity;
                    let alert_id = self.raise(entity, finding, wall_ms, out);
                    self.churn.insert(
                        entity.clone(),
                        ChurnGroup {
                            alert_id,
                            last_ms: t,
                            ids: HashSet::from([post.post.id.clone()]),
                            peak,
                        },
                    );
                }
            }
        }
    }

    fn kol_rule(
        &mut self,
        post: &EnrichedPost,
        evidence: &EvidencePost,
        wall_ms: i64,
        out: &mut Vec<Change>,
    ) {
        let author = &post.post.author;
        let score = post.scores.sentiment.score;
        let min = self.cfg.kol_min_sentiment;
        if self.kol_followers == 0 || author.followers < self.kol_followers || score.abs() < min {
            return;
        }
        let t = post.post.created_at.timestamp_millis();
        let cooldown = (self.cfg.kol_cooldown_s * 1000) as i64;
        for entity in post
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::Project)
        {
            let key = (author.id.clone(), entity.id.clone());
            if self.kol_until.get(&key).is_some_and(|&u| t < u) {
                continue;
            }
            self.kol_until.insert(key, t + cooldown);
            let reach = (author.followers as f64 / self.kol_followers as f64).log10();
            let excess = (score.abs() - min) / (1.0 - min).max(1e-9) + reach;
            let threshold = if score < 0.0 { -min } else { min };
            let (window, evidence) = one_post(t, "sentiment", score, threshold, evidence);
            let finding = Finding {
                kind: AlertKind::KolPost,
                key: Some(author.id.clone()),
                severity: severity(excess),
                title: format!(
                    "KOL @{} ({} followers) posted {} about {} {}",
                    author.handle,
                    author.followers,
                    if score < 0.0 {
                        "negatively"
                    } else {
                        "positively"
                    },
                    entity.kind,
                    entity.id
                ),
                window,
                evidence,
            };
            let id = self.raise(entity, finding, wall_ms, out);
            self.kol_resolve.insert(id, t + cooldown);
        }
    }

    /// Resolves churn groups quiet for `churn_group_s` and KOL alerts past
    /// their cooldown, as of event time `now_ms`.
    fn expire_groups(&mut self, now_ms: i64, wall_ms: i64, out: &mut Vec<Change>) {
        let group_ms = (self.cfg.churn_group_s * 1000) as i64;
        let mut done: Vec<String> = self
            .churn
            .values()
            .filter(|g| now_ms - g.last_ms > group_ms)
            .map(|g| g.alert_id.clone())
            .collect();
        done.extend(
            self.kol_resolve
                .iter()
                .filter(|(_, &until)| now_ms >= until)
                .map(|(id, _)| id.clone()),
        );
        done.sort();
        for id in done {
            if let Some(c) = self.close(&id, ResolvedBy::Condition, wall_ms) {
                out.push(c);
            }
        }
        self.kol_until.retain(|_, until| *until > now_ms);
    }

    /// Lets go of entities quiet for longer than their baselines remember,
    /// and of the least recently active beyond `max_entities`.
    fn evict(&mut self, now_ms: i64) {
        let forget_ms = (self.cfg.baseline_half_life_s * 4 + self.cfg.warmup_s) as i64 * 1000;
        self.entities
            .retain(|_, s| !s.active.is_empty() || now_ms - s.last_post_ms <= forget_ms);
        if self.entities.len() > self.cfg.max_entities {
            let mut quiet: Vec<(i64, EntityRef)> = self
                .entities
                .iter()
                .filter(|(_, s)| s.active.is_empty())
                .map(|(e, s)| (s.last_post_ms, e.clone()))
                .collect();
            quiet.sort();
            let excess = self.entities.len() - self.cfg.max_entities;
            for (_, e) in quiet.into_iter().take(excess) {
                self.entities.remove(&e);
            }
        }
    }
}

/// What a rule found when it opens an alert.
struct Finding {
    kind: AlertKind,
    /// Tells apart alerts of one kind on one entity: the custom rule's id
    /// (also the alert's `rule_id`), the KOL's author id.
    key: Option<String>,
    severity: u8,
    title: String,
    window: Span,
    evidence: Evidence,
}

/// The window and evidence of an alert raised by one post at `t` (ms).
fn one_post(
    t: i64,
    metric: &str,
    value: f64,
    threshold: f64,
    post: &EvidencePost,
) -> (Span, Evidence) {
    (
        Span {
            from_ms: t,
            to_ms: t + 1,
        },
        Evidence {
            metric: metric.to_string(),
            value,
            threshold,
            baseline: None,
            volume: 1,
            matched: 1,
            posts: vec![post.clone()],
        },
    )
}

fn evidence_post(post: &EnrichedPost) -> EvidencePost {
    let p = &post.post;
    EvidencePost {
        id: p.id.clone(),
        platform: p.platform.clone(),
        author_id: p.author.id.clone(),
        author_handle: p.author.handle.clone(),
        followers: p.author.followers,
        text: p.text.chars().take(280).collect(),
        created_at_ms: p.created_at.timestamp_millis(),
        sentiment: post.scores.sentiment.score,
        churn_risk: post.scores.churn_risk,
        toxicity: post.scores.toxicity,
        engagement: p.engagement.total(),
    }
}

/// A stable id: the same rule on the same entity from the same moment.
fn alert_id(kind: AlertKind, rule: Option<&str>, entity: &EntityRef, from_ms: i64) -> String {
    let key = format!(
        "{}|{}|{}|{}|{}",
        kind.as_str(),
        rule.unwrap_or(""),
        entity.kind,
        entity.id,
        from_ms
    );
    format!("al_{:016x}", xxh3_64(key.as_bytes()))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn comparison_sign(c: super::model::Comparison) -> &'static str {
    use super::model::Comparison::*;
    match c {
        Gt => ">",
        Ge => "≥",
        Lt => "<",
        Le => "≤",
    }
}

fn churn_title(entity: &EntityRef, posts: u64) -> String {
    format!(
        "Churn intent about {} {}: {} post{}",
        entity.kind,
        entity.id,
        posts,
        if posts == 1 { "" } else { "s" }
    )
}

fn builtin_title(
    kind: AlertKind,
    entity: &EntityRef,
    x: f64,
    base: &Ewma,
    window_s: u64,
) -> String {
    let (e, m, v) = (entity, round3(base.mean), round3(x));
    match kind {
        AlertKind::VolumeSpike => format!(
            "Volume of {} {} at {v} posts in {window_s} s (baseline {m})",
            e.kind, e.id
        ),
        AlertKind::ToxicitySurge => {
            format!("Toxicity on {} {} rose to {v} (baseline {m})", e.kind, e.id)
        }
        _ => format!(
            "Sentiment on {} {} {} to {v} (baseline {m})",
            e.kind,
            e.id,
            if x < base.mean { "fell" } else { "rose" }
        ),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
