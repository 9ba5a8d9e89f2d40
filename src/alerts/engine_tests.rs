//! Unit tests of the alert engine on hand-made series.

use super::*;
use crate::domain::Sentiment;
use chrono::{TimeZone, Utc};

const T0: i64 = 1_700_000_000_000;

fn cfg() -> AlertsConfig {
    AlertsConfig {
        bucket_s: 10,
        window_s: 30,
        baseline_half_life_s: 300,
        warmup_s: 100,
        lateness_s: 0,
        min_volume: 10,
        clear_buckets: 2,
        cooldown_s: 60,
        churn_group_s: 60,
        kol_cooldown_s: 600,
        ..AlertsConfig::default()
    }
}

struct P {
    id: String,
    at_ms: i64,
    entities: Vec<EntityRef>,
    sentiment: f64,
    churn: f64,
    toxicity: f64,
    followers: u64,
    author: String,
}

fn p(id: impl Into<String>, at_ms: i64, entity: &EntityRef) -> P {
    let id = id.into();
    P {
        author: format!("a-{id}"),
        id,
        at_ms,
        entities: vec![entity.clone(), EntityRef::macro_all()],
        sentiment: 0.2,
        churn: 0.0,
        toxicity: 0.0,
        followers: 10,
    }
}

fn post(p: P) -> EnrichedPost {
    let label = if p.sentiment < -0.05 {
        SentimentLabel::Negative
    } else if p.sentiment > 0.05 {
        SentimentLabel::Positive
    } else {
        SentimentLabel::Neutral
    };
    let mut e = crate::domain::fixtures::post(&p.id, "text");
    e.post.author = crate::domain::fixtures::author(&p.author, &p.author, p.followers);
    e.post.lang = None;
    e.post.created_at = Utc.timestamp_millis_opt(p.at_ms).single().expect("time");
    e.scores.sentiment = Sentiment {
        label,
        score: p.sentiment,
        probs: None,
    };
    e.scores.toxicity = Some(p.toxicity);
    e.scores.churn_risk = Some(p.churn);
    e.entities = p.entities;
    e
}

fn sol() -> EntityRef {
    EntityRef::new(EntityKind::Project, "SOL")
}

/// Feeds `per_bucket(i)` posts about SOL into each 10-second bucket `i` in
/// `buckets`, with `shape` setting each post; returns every change.
fn feed(
    e: &mut Engine,
    buckets: std::ops::Range<i64>,
    per_bucket: impl Fn(i64) -> usize,
    shape: impl Fn(i64, &mut P),
) -> Vec<Change> {
    let mut out = Vec::new();
    for b in buckets {
        let n = per_bucket(b);
        for j in 0..n {
            let at = T0 + b * 10_000 + (j as i64 * 10_000) / n.max(1) as i64;
            let mut q = p(format!("{b}-{j}"), at, &sol());
            shape(b, &mut q);
            out.extend(e.on_post(&post(q), at));
        }
        if n == 0 {
            out.extend(e.tick(T0 + (b + 1) * 10_000));
        }
    }
    out
}

fn raised(changes: &[Change], kind: AlertKind) -> Vec<&Alert> {
    changes
        .iter()
        .filter(|c| c.event == Some(AlertEventType::Raised) && c.alert.kind == kind)
        .map(|c| &c.alert)
        .collect()
}

fn resolved(changes: &[Change], kind: AlertKind) -> usize {
    changes
        .iter()
        .filter(|c| c.event == Some(AlertEventType::Resolved) && c.alert.kind == kind)
        .count()
}

#[test]
fn a_steady_series_raises_nothing() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    // Poisson-like 8..12 posts every 10 s for an hour.
    let changes = feed(&mut e, 0..360, |b| 8 + (b * 7 % 5) as usize, |_, _| {});
    assert!(changes.is_empty(), "{changes:#?}");
}

#[test]
fn a_volume_spike_is_raised_once_then_resolved_when_it_clears() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let changes = feed(
        &mut e,
        0..60,
        |b| if (30..36).contains(&b) { 60 } else { 10 },
        |_, _| {},
    );
    let spikes = raised(&changes, AlertKind::VolumeSpike);
    let sol_spikes: Vec<_> = spikes.iter().filter(|a| a.entity == sol()).collect();
    assert_eq!(sol_spikes.len(), 1, "{spikes:#?}");
    let a = sol_spikes[0];
    // Raised at the close of the first spiking bucket.
    assert_eq!(a.window.to_ms, T0 + 31 * 10_000);
    assert!(a.severity >= 2 && a.evidence.value >= 60.0, "{a:#?}");
    let base = a.evidence.baseline.expect("baseline");
    assert!((base.mean - 30.0).abs() < 1.0, "{base:?}");
    assert!(!a.evidence.posts.is_empty());
    assert!(resolved(&changes, AlertKind::VolumeSpike) >= 1);
    assert!(!e.is_open(&a.id));
}

#[test]
fn no_alert_before_warm_up_nor_below_the_minimum_volume() {
    // Spike inside the warm-up (100 s = 10 buckets).
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let changes = feed(&mut e, 0..20, |b| if b == 5 { 80 } else { 4 }, |_, _| {});
    assert!(raised(&changes, AlertKind::VolumeSpike).is_empty());
    // A quiet entity (one post a minute) getting 6 posts: past k·σ of its
    // baseline but below min_volume (10 in the window).
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let changes = feed(
        &mut e,
        0..80,
        |b| match b {
            60 => 6,
            b if b % 6 == 0 => 1,
            _ => 0,
        },
        |_, _| {},
    );
    let sol_spikes: Vec<_> = raised(&changes, AlertKind::VolumeSpike)
        .into_iter()
        .filter(|a| a.entity == sol())
        .collect();
    assert!(sol_spikes.is_empty(), "{sol_spikes:#?}");
}

#[test]
fn a_sentiment_crash_raises_a_shift_and_the_cooldown_holds_back_a_second() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let crash = |b: i64| (30..34).contains(&b) || (38..40).contains(&b);
    let changes = feed(
        &mut e,
        0..50,
        |_| 12,
        |b, q| {
            // Baseline alternates 0.1 / 0.3; the crash is at −0.6.
            q.sentiment = if crash(b) {
                -0.6
            } else if q.id.ends_with('0') {
                0.1
            } else {
                0.3
            };
        },
    );
    let shifts: Vec<_> = raised(&changes, AlertKind::SentimentShift)
        .into_iter()
        .filter(|a| a.entity == sol())
        .collect();
    // The second crash (38..40) comes within the 60 s cooldown after the
    // first resolved: one alert only.
    assert_eq!(shifts.len(), 1, "{shifts:#?}");
    assert!(shifts[0].title.contains("fell"), "{}", shifts[0].title);
    assert!(shifts[0].evidence.value < 0.0);
    assert!(shifts[0].evidence.posts.iter().all(|p| p.sentiment < 0.0));
}

#[test]
fn churn_posts_are_grouped_per_entity_within_the_group_time_and_resolve_when_quiet() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let product = EntityRef::new(EntityKind::Product, "nimbus-plus");
    let mut out = Vec::new();
    for i in 0..5 {
        let mut q = p(format!("c{i}"), T0 + i * 5_000, &product);
        q.churn = 0.75 + i as f64 * 0.05;
        out.extend(e.on_post(&post(q), T0 + i * 5_000));
    }
    // A re-delivered post changes nothing.
    let mut again = p("c1", T0 + 5_000, &product);
    again.churn = 0.8;
    assert!(e.on_post(&post(again), T0 + 30_000).is_empty());
    let raised_churn = raised(&out, AlertKind::Churn);
    assert_eq!(raised_churn.len(), 1, "one alert for the group");
    let id = raised_churn[0].id.clone();
    let last = out.last().expect("changes");
    assert_eq!(last.alert.evidence.matched, 5);
    assert_eq!(last.alert.evidence.posts[0].id, "c4", "highest risk first");
    assert!(last.alert.title.contains("5 posts"));
    // A post below the threshold does not join.
    let mut low = p("low", T0 + 26_000, &product);
    low.churn = 0.5;
    assert!(raised(&e.on_post(&post(low), T0 + 26_000), AlertKind::Churn).is_empty());
    // Quiet for longer than churn_group_s (60 s): resolved.
    let out = e.tick(T0 + 200_000);
    assert_eq!(resolved(&out, AlertKind::Churn), 1);
    assert!(!e.is_open(&id));
    // The next churn post opens a new alert.
    let mut q = p("c9", T0 + 300_000, &product);
    q.churn = 0.9;
    assert_eq!(
        raised(&e.on_post(&post(q), T0 + 300_000), AlertKind::Churn).len(),
        1
    );
}

#[test]
fn a_churn_post_about_no_product_goes_to_the_market() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let mut q = p("x", T0, &EntityRef::new(EntityKind::Topic, "billing"));
    q.churn = 0.95;
    let out = e.on_post(&post(q), T0);
    let a = raised(&out, AlertKind::Churn);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].entity, EntityRef::macro_all());
    let mut mild = p("y", T0, &EntityRef::new(EntityKind::Product, "router"));
    mild.churn = 0.72;
    let b = e.on_post(&post(mild), T0);
    assert!(
        a[0].severity > b[0].alert.severity,
        "0.95 is further past 0.7 than 0.72: {} vs {}",
        a[0].severity,
        b[0].alert.severity
    );
}

#[test]
fn kol_posts_alert_once_per_kol_and_project_per_cooldown() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let mk = |id: &str, at: i64, followers: u64, s: f64| {
        let mut q = p(id, at, &sol());
        q.author = "whale".into();
        q.followers = followers;
        q.sentiment = s;
        post(q)
    };
    assert!(
        e.on_post(&mk("1", T0, 50_000, -0.9), T0).is_empty(),
        "not a KOL"
    );
    assert!(
        e.on_post(&mk("2", T0, 500_000, -0.3), T0).is_empty(),
        "too mild"
    );
    let out = e.on_post(&mk("3", T0 + 1, 500_000, -0.9), T0);
    let a = raised(&out, AlertKind::KolPost);
    assert_eq!(a.len(), 1);
    assert!(a[0].title.contains("negatively") && a[0].entity == sol());
    assert!(
        e.on_post(&mk("4", T0 + 2, 500_000, 0.9), T0).is_empty(),
        "cooldown"
    );
    // After the cooldown (600 s) it resolves, and the KOL may alert again.
    let out = e.tick(T0 + 700_000);
    assert_eq!(resolved(&out, AlertKind::KolPost), 1);
    let out = e.on_post(&mk("5", T0 + 800_000, 500_000, 0.9), T0 + 800_000);
    assert_eq!(raised(&out, AlertKind::KolPost).len(), 1);
}

fn rule(metric: RuleMetric, cmp: super::super::model::Comparison, thr: f64, min: u64) -> Rule {
    Rule {
        id: "r1".into(),
        created_at_ms: 0,
        spec: super::super::model::RuleSpec {
            name: "negatives".into(),
            metric,
            entity: super::super::model::Selector {
                kind: EntityKind::Project,
                id: Some("SOL".into()),
            },
            comparison: cmp,
            threshold: thr,
            window_s: 20,
            min_volume: min,
            cooldown_s: 0,
            severity: None,
            enabled: true,
        },
    }
}

#[test]
fn custom_rules_fire_past_their_threshold_with_the_minimum_volume() {
    use super::super::model::Comparison;
    let r = rule(RuleMetric::NegativeShare, Comparison::Gt, 0.5, 10);
    let mut e = Engine::new(cfg(), 100_000, vec![r], vec![]);
    let changes = feed(
        &mut e,
        0..20,
        |b| if b < 5 { 3 } else { 10 },
        |b, q| q.sentiment = if (5..10).contains(&b) { 0.5 } else { -0.5 },
    );
    let fired: Vec<_> = raised(&changes, AlertKind::Custom);
    // Buckets 0..5 are negative but have 6 posts in 20 s (< 10): no alert.
    // From bucket 10 on they are negative with 20 posts: one alert.
    assert_eq!(fired.len(), 1, "{fired:#?}");
    assert_eq!(fired[0].rule_id.as_deref(), Some("r1"));
    assert!(
        fired[0].window.from_ms >= T0 + 100_000,
        "{:?}",
        fired[0].window
    );
    assert!(fired[0].title.contains("negative_share"));
    // Deleting the rule resolves its alert.
    let out = e.set_rules(vec![]);
    assert_eq!(resolved(&out, AlertKind::Custom), 1);
}

#[test]
fn a_fixed_severity_on_a_rule_wins() {
    use super::super::model::Comparison;
    let mut r = rule(RuleMetric::Volume, Comparison::Ge, 5.0, 0);
    r.spec.severity = Some(9);
    let mut e = Engine::new(cfg(), 100_000, vec![r], vec![]);
    let changes = feed(&mut e, 0..4, |_| 5, |_, _| {});
    let fired = raised(&changes, AlertKind::Custom);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].severity, 9);
}

#[test]
fn acknowledge_then_resolve_by_hand() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let mut q = p("x", T0, &sol());
    q.churn = 0.9;
    let id = raised(&e.on_post(&post(q), T0), AlertKind::Churn)[0]
        .id
        .clone();
    let c = e.acknowledge(&id, T0 + 1).expect("ack");
    assert_eq!(c.alert.state, AlertState::Acknowledged);
    assert_eq!(c.event, Some(AlertEventType::Acknowledged));
    assert_eq!(e.acknowledge(&id, T0 + 2).expect("again").event, None);
    let c = e.resolve(&id, T0 + 3).expect("resolve");
    assert_eq!(c.alert.state, AlertState::Resolved);
    assert_eq!(c.alert.resolved_by, Some(ResolvedBy::User));
    assert!(matches!(
        e.resolve(&id, T0 + 4),
        Err(LifecycleError::NotOpen(_))
    ));
}

#[test]
fn a_restarted_engine_resumes_open_alerts_instead_of_raising_them_again() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    let mut q = p("x", T0, &sol());
    q.churn = 0.9;
    let first = raised(&e.on_post(&post(q), T0), AlertKind::Churn)[0].clone();
    // Restart: the store hands back the unresolved alert.
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![first.clone()]);
    let mut q = p("x", T0, &sol());
    q.churn = 0.9;
    assert!(
        e.on_post(&post(q), T0).is_empty(),
        "the redelivered post is already in the group"
    );
    let mut q = p("y", T0 + 1_000, &sol());
    q.churn = 0.9;
    let out = e.on_post(&post(q), T0 + 1_000);
    assert!(raised(&out, AlertKind::Churn).is_empty());
    assert_eq!(out[0].alert.id, first.id);
    assert_eq!(out[0].alert.evidence.matched, 2);
}

#[test]
fn late_posts_do_not_reopen_closed_buckets() {
    let mut e = Engine::new(cfg(), 100_000, vec![], vec![]);
    e.on_post(&post(p("a", T0 + 50_000, &sol())), T0);
    let before = crate::telemetry::metrics::ALERT_LATE_POSTS.get();
    e.on_post(&post(p("b", T0, &sol())), T0);
    assert!(crate::telemetry::metrics::ALERT_LATE_POSTS.get() > before);
}
