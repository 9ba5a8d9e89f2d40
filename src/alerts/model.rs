//! What an alert is: its kind, severity, entity, window, evidence and
//! lifecycle, the custom threshold rules users create, and the events of an
//! alert's life that are logged for delivery (WebSocket pushes, webhooks).

use crate::domain::{EntityKind, EntityRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kinds of alert.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Posts whose churn risk passes the threshold, grouped per entity.
    Churn,
    /// An entity's sentiment left its own baseline.
    SentimentShift,
    /// An entity's volume jumped against its trailing baseline.
    VolumeSpike,
    /// An entity's mean toxicity rose above its baseline.
    ToxicitySurge,
    /// A KOL posted strongly about a tracked project.
    KolPost,
    /// A user-defined threshold rule fired.
    Custom,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 6] = [
        AlertKind::Churn,
        AlertKind::SentimentShift,
        AlertKind::VolumeSpike,
        AlertKind::ToxicitySurge,
        AlertKind::KolPost,
        AlertKind::Custom,
    ];

    /// The name in JSON, URLs and WebSocket event types (`alert:<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Churn => "churn",
            AlertKind::SentimentShift => "sentiment_shift",
            AlertKind::VolumeSpike => "volume_spike",
            AlertKind::ToxicitySurge => "toxicity_surge",
            AlertKind::KolPost => "kol_post",
            AlertKind::Custom => "custom",
        }
    }

    /// Parses [`AlertKind::as_str`].
    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised and not yet seen to.
    Open,
    /// Somebody said they are on it; still resolves when the condition clears.
    Acknowledged,
    /// The condition cleared, or somebody closed it.
    Resolved,
}

impl AlertState {
    /// The name in JSON and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// Parses [`AlertState::as_str`].
    pub fn parse(s: &str) -> Option<AlertState> {
        [
            AlertState::Open,
            AlertState::Acknowledged,
            AlertState::Resolved,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A time range, ms since the epoch, `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Span {
    /// Start (ms).
    pub from_ms: i64,
    /// End (ms, exclusive).
    pub to_ms: i64,
}

/// An entity's own recent normal, against which a value is judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BaselineView {
    /// Exponentially weighted mean.
    pub mean: f64,
    /// Exponentially weighted standard deviation (before any floor).
    pub deviation: f64,
}

/// A post that backs an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidencePost {
    /// Post id.
    pub id: String,
    /// Network.
    pub platform: String,
    /// Author id.
    pub author_id: String,
    /// Author handle.
    pub author_handle: String,
    /// Author followers.
    pub followers: u64,
    /// The text, cut to 280 characters.
    pub text: String,
    /// When it was posted (ms).
    pub created_at_ms: i64,
    /// Sentiment score (−1..1).
    pub sentiment: f64,
    /// Churn risk, when the tier computes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_risk: Option<f64>,
    /// Toxicity, when the tier computes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f64>,
    /// Likes + reposts + replies.
    pub engagement: u64,
}

/// What made an alert fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// The metric judged (`churn_risk`, `sentiment_index`, `volume`, …).
    pub metric: String,
    /// Its value over the window when the alert was raised or last updated.
    pub value: f64,
    /// The threshold it passed (for baseline rules: `mean ± k·deviation`).
    pub threshold: f64,
    /// The baseline, for the rules that judge against one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineView>,
    /// Posts in the window.
    pub volume: u64,
    /// Posts that matched (churn: posts past the threshold, grouped into this alert).
    pub matched: u64,
    /// The most telling posts (highest score or engagement first), at most
    /// [`EVIDENCE_POSTS`].
    pub posts: Vec<EvidencePost>,
}

/// Most posts kept as evidence on one alert.
pub const EVIDENCE_POSTS: usize = 5;

/// Who resolved an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    /// The condition cleared (or the churn cooldown passed without new posts).
    Condition,
    /// Somebody closed it over the API.
    User,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// Stable id: the same condition raised again after a crash gets the same id.
    pub id: String,
    /// What kind of alert.
    pub kind: AlertKind,
    /// The custom rule that raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// 1 (barely past the threshold) to 10 (far past it).
    pub severity: u8,
    /// Lifecycle state.
    pub state: AlertState,
    /// The entity it is about.
    pub entity: EntityRef,
    /// One line for people.
    pub title: String,
    /// The window judged (grows while grouped posts keep arriving).
    pub window: Span,
    /// Values, baseline and top posts.
    pub evidence: Evidence,
    /// When it was raised (ms, wall clock).
    pub opened_at_ms: i64,
    /// Last change (ms).
    pub updated_at_ms: i64,
    /// When it was acknowledged (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at_ms: Option<i64>,
    /// When it was resolved (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at_ms: Option<i64>,
    /// Who resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<ResolvedBy>,
}

/// What happened to an alert: one entry of the alert event log that
/// WebSocket pushes and webhook deliveries are made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertEventType {
    /// A new alert.
    Raised,
    /// More evidence (grouped posts) or a higher severity.
    Updated,
    /// Acknowledged by somebody.
    Acknowledged,
    /// Resolved.
    Resolved,
}

impl AlertEventType {
    /// The name in JSON (`alert.raised` in webhook payloads uses it).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEventType::Raised => "raised",
            AlertEventType::Updated => "updated",
            AlertEventType::Acknowledged => "acknowledged",
            AlertEventType::Resolved => "resolved",
        }
    }
}

/// One entry of the alert event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertEvent {
    /// Position in the log (1, 2, …); gaps are possible, order is not broken.
    pub seq: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub event: AlertEventType,
    /// When (ms).
    pub at_ms: i64,
    /// The alert after the change.
    pub alert: Alert,
}

impl AlertEvent {
    /// Key receivers use to drop repeats: the same event delivered twice has
    /// the same key (`<alert id>.<seq>`).
    pub fn idempotency_key(&self) -> String {
        format!("{}.{}", self.alert.id, self.seq)
    }
}

/// A metric a custom rule can watch, over the rule's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleMetric {
    /// Posts.
    Volume,
    /// Distinct authors.
    UniqueAuthors,
    /// Likes + reposts + replies.
    Engagement,
    /// Mean sentiment score (−1..1).
    SentimentIndex,
    /// Share of posts labelled negative (0..1).
    NegativeShare,
    /// Mean toxicity (0..1).
    Toxicity,
    /// Posts past the churn threshold.
    ChurnCount,
}

impl RuleMetric {
    /// The name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleMetric::Volume => "volume",
            RuleMetric::UniqueAuthors => "unique_authors",
            RuleMetric::Engagement => "engagement",
            RuleMetric::SentimentIndex => "sentiment_index",
            RuleMetric::NegativeShare => "negative_share",
            RuleMetric::Toxicity => "toxicity",
            RuleMetric::ChurnCount => "churn_count",
        }
    }
}

/// How a custom rule compares its metric with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Value > threshold.
    Gt,
    /// Value ≥ threshold.
    Ge,
    /// Value < threshold.
    Lt,
    /// Value ≤ threshold.
    Le,
}

impl Comparison {
    /// Whether `value` passes `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
        }
    }
}

/// Which entities a custom rule watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Selector {
    /// The entity kind.
    pub kind: EntityKind,
    /// One entity; absent = every entity of the kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Selector {
    /// Whether `entity` is selected.
    pub fn matches(&self, entity: &EntityRef) -> bool {
        entity.kind == self.kind && self.id.as_deref().is_none_or(|id| id == entity.id)
    }
}

/// A rule as a user writes it (`POST /api/alerts/rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for people.
    pub name: String,
    /// The metric watched.
    pub metric: RuleMetric,
    /// Which entities.
    pub entity: Selector,
    /// How the metric is compared.
    pub comparison: Comparison,
    /// The threshold.
    pub threshold: f64,
    /// Window the metric is computed over, in seconds (10..=86400, a
    /// multiple of the engine's bucket).
    pub window_s: u64,
    /// Fewest posts in the window for the rule to be judged at all.
    #[serde(default)]
    pub min_volume: u64,
    /// Seconds after an alert resolves before the rule may raise another
    /// for the same entity.
    #[serde(default = "default_cooldown_s")]
    pub cooldown_s: u64,
    /// A fixed severity (1–10); absent = derived from how far past the
    /// threshold the value is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
    /// Whether the rule is evaluated.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_cooldown_s() -> u64 {
    600
}

fn default_true() -> bool {
    true
}

/// A stored custom rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    /// Rule id.
    pub id: String,
    /// When it was created (ms).
    pub created_at_ms: i64,
    /// The rule.
    #[serde(flatten)]
    pub spec: RuleSpec,
}

/// Longest window a custom rule may use, in seconds.
pub const MAX_RULE_WINDOW_S: u64 = 86_400;

impl RuleSpec {
    /// Checks what serde cannot; `bucket_s` is the engine's bucket length.
    pub fn validate(&self, bucket_s: u64) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("name must be 1 to 200 bytes".into());
        }
        if !self.threshold.is_finite() {
            return Err("threshold must be a finite number".into());
        }
        if self.window_s < bucket_s.max(1)
            || self.window_s > MAX_RULE_WINDOW_S
            || !self.window_s.is_multiple_of(bucket_s.max(1))
        {
            return Err(format!(
                "window_s must be a multiple of {bucket_s} between {bucket_s} and {MAX_RULE_WINDOW_S}"
            ));
        }
        if self.cooldown_s > 7 * MAX_RULE_WINDOW_S {
            return Err("cooldown_s must be at most a week".into());
        }
        if let Some(s) = self.severity {
            if !(1..=10).contains(&s) {
                return Err("severity must be between 1 and 10".into());
            }
        }
        if let Some(id) = &self.entity.id {
            if id.is_empty() || id.len() > crate::domain::MAX_ID_LEN {
                return Err("entity.id must be 1 to 256 bytes".into());
            }
        }
        Ok(())
    }
}

/// Severity 1–10 from how far past its threshold a value is: `excess` is
/// the distance past the threshold in units where 1 means "clearly past"
/// (one more deviation, or the whole span between threshold and maximum).
/// 0 → 1, 1 → 5.5, 2 or more → 10, linear in between.
pub fn severity(excess: f64) -> u8 {
    if !excess.is_finite() || excess <= 0.0 {
        return if excess.is_infinite() && excess > 0.0 {
            10
        } else {
            1
        };
    }
    (1.0 + 4.5 * excess.min(2.0)).round().clamp(1.0, 10.0) as u8
}

/// An open alert about `project:SOL` for tests.
#[cfg(test)]
pub(crate) fn sample_alert(id: &str, kind: AlertKind, opened_ms: i64, severity: u8) -> Alert {
    Alert {
        id: id.into(),
        kind,
        rule_id: None,
        severity,
        state: AlertState::Open,
        entity: EntityRef::new(EntityKind::Project, "SOL"),
        title: format!("{id} title"),
        window: Span {
            from_ms: opened_ms - 60_000,
            to_ms: opened_ms,
        },
        evidence: Evidence {
            metric: "volume".into(),
            value: 10.0,
            threshold: 5.0,
            baseline: None,
            volume: 10,
            matched: 10,
            posts: vec![],
        },
        opened_at_ms: opened_ms,
        updated_at_ms: opened_ms,
        acknowledged_at_ms: None,
        resolved_at_ms: None,
        resolved_by: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_grows_with_the_excess_and_stays_in_range() {
        assert_eq!(severity(0.0), 1);
        assert_eq!(severity(-3.0), 1);
        assert_eq!(severity(f64::NAN), 1);
        assert_eq!(severity(f64::INFINITY), 10);
        assert_eq!(severity(1.0), 6);
        assert_eq!(severity(2.0), 10);
        assert_eq!(severity(50.0), 10);
        let mut last = 0;
        for i in 0..100 {
            let s = severity(i as f64 / 40.0);
            assert!((1..=10).contains(&s) && s >= last);
            last = s;
        }
    }

    #[test]
    fn kinds_and_states_round_trip_their_names() {
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(
            AlertState::parse("acknowledged"),
            Some(AlertState::Acknowledged)
        );
        assert_eq!(AlertState::parse("closed"), None);
    }

    #[test]
    fn rule_specs_are_checked() {
        let spec: RuleSpec = serde_json::from_value(serde_json::json!({
            "name": "SOL negative",
            "metric": "negative_share",
            "entity": {"kind": "project", "id": "SOL"},
            "comparison": "gt",
            "threshold": 0.5,
            "window_s": 60,
            "min_volume": 20
        }))
        .expect("parses");
        assert_eq!(spec.cooldown_s, 600);
        assert!(spec.enabled);
        assert!(spec.validate(10).is_ok());
        let bad = RuleSpec {
            window_s: 65,
            ..spec.clone()
        };
        assert!(bad.validate(10).unwrap_err().contains("multiple of 10"));
        let bad = RuleSpec {
            severity: Some(11),
            ..spec.clone()
        };
        assert!(bad.validate(10).is_err());
        let bad = RuleSpec {
            threshold: f64::NAN,
            ..spec.clone()
        };
        assert!(bad.validate(10).is_err());
        assert!(serde_json::from_value::<RuleSpec>(serde_json::json!({"name": "x"})).is_err());
        assert!(Selector {
            kind: EntityKind::Project,
            id: None
        }
        .matches(&EntityRef::new(EntityKind::Project, "BTC")));
        assert!(Comparison::Lt.holds(-0.3, -0.2) && !Comparison::Gt.holds(1.0, 1.0));
    }
}
