//! WebSocket subscriptions: the requests a client sends, and the filters
//! that decide which events reach it.
//!
//! Requests (JSON text frames):
//! - `{"type": "subscribe", "channel": "metrics", "kinds": ["project"], "ids": ["SOL"], "resolution": "1s"}`
//!   (every field but `channel` optional);
//! - `{"type": "subscribe", "channel": "messages", "entity": "project:SOL", "sentiment": "negative",
//!   "platform": "twitter", "lang": "en", "sample": 0.1}` (filters optional; `sample` keeps that
//!   fraction of matching posts, chosen by post id so every client sampling at a rate sees the same posts);
//! - `{"type": "subscribe", "channel": "alerts", "alert_kinds": ["churn", "volume_spike"],
//!   "entity": "product:nimbus-plus", "min_severity": 5}` (filters optional): `alert:<kind>`
//!   frames when an alert is raised, updated, acknowledged or resolved;
//! - `{"type": "subscribe", "channel": "summaries", "kinds": ["project"], "entity": "project:SOL"}`
//!   (filters optional): a `summary:update` frame whenever a new entity summary is stored;
//! - `{"type": "unsubscribe", "subscription": 3}`; `{"type": "ping"}`.
//!
//! Every connection starts with subscription 0: metrics of every kind, so a
//! client that sends nothing still gets `metrics:update` every second.

use crate::actors::aggregator::window::{id_hash, Resolution};
use crate::actors::hub::WindowUpdate;
use crate::alerts::model::{Alert, AlertKind};
use crate::domain::{EnrichedPost, EntityKind, EntityRef, SentimentLabel};
use crate::summary::model::Summary;
use serde::Deserialize;
use std::collections::HashSet;

/// A client request.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Start receiving a channel.
    Subscribe(Box<SubscribeRequest>),
    /// Stop a subscription.
    Unsubscribe {
        /// Its id.
        subscription: u32,
    },
    /// Liveness check; answered with `pong`.
    Ping,
}

/// The body of a subscribe request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// `metrics`, `messages` or `alerts`.
    pub channel: String,
    /// metrics, summaries: entity kinds.
    #[serde(default)]
    pub kinds: Option<Vec<EntityKind>>,
    /// metrics: entity ids.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// metrics: `1s` or `1m`.
    #[serde(default)]
    pub resolution: Option<String>,
    /// messages, alerts, summaries: `kind:id`.
    #[serde(default)]
    pub entity: Option<String>,
    /// alerts: alert kinds (`churn`, `sentiment_shift`, `volume_spike`,
    /// `toxicity_surge`, `kol_post`, `custom`).
    #[serde(default)]
    pub alert_kinds: Option<Vec<AlertKind>>,
    /// alerts: least severity (1–10).
    #[serde(default)]
    pub min_severity: Option<u8>,
    /// messages: `positive`, `negative` or `neutral`.
    #[serde(default)]
    pub sentiment: Option<SentimentLabel>,
    /// messages: platform.
    #[serde(default)]
    pub platform: Option<String>,
    /// messages: language code.
    #[serde(default)]
    pub lang: Option<String>,
    /// messages: fraction of matching posts to send, in (0, 1].
    #[serde(default)]
    pub sample: Option<f64>,
}

/// An active subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum Subscription {
    /// Metric windows.
    Metrics {
        /// Only these kinds (all if absent).
        kinds: Option<HashSet<EntityKind>>,
        /// Only these ids (all if absent).
        ids: Option<HashSet<String>>,
        /// Only this resolution (both if absent).
        resolution: Option<Resolution>,
    },
    /// Scored posts.
    Messages {
        /// Only posts attributed to this entity.
        entity: Option<EntityRef>,
        /// Only this sentiment.
        sentiment: Option<SentimentLabel>,
        /// Only this platform.
        platform: Option<String>,
        /// Only this language.
        lang: Option<String>,
        /// Kept fraction, as a threshold over 10,000.
        sample_per_10k: u64,
    },
    /// Alert events.
    Alerts {
        /// Only these kinds (all if absent).
        kinds: Option<HashSet<AlertKind>>,
        /// Only alerts about this entity.
        entity: Option<EntityRef>,
        /// Only alerts at least this severe.
        min_severity: u8,
    },
    /// Entity summaries.
    Summaries {
        /// Only these kinds (all if absent).
        kinds: Option<HashSet<EntityKind>>,
        /// Only this entity.
        entity: Option<EntityRef>,
    },
}

/// Parses a `kind:id` entity filter.
fn entity_filter(e: Option<String>) -> Result<Option<EntityRef>, Refusal> {
    let Some(e) = e else {
        return Ok(None);
    };
    let (kind, id) = e.split_once(':').ok_or((
        "invalid_filter",
        format!("entity `{e}` must be kind:id, e.g. project:SOL"),
    ))?;
    let kind = EntityKind::parse(kind)
        .ok_or(("invalid_filter", format!("unknown entity kind `{kind}`")))?;
    Ok(Some(EntityRef::new(kind, id)))
}

/// Why a request was refused: `(code, message)` for the error frame.
pub type Refusal = (&'static str, String);

impl Subscription {
    /// The subscription every connection starts with.
    pub fn all_metrics() -> Self {
        Subscription::Metrics {
            kinds: None,
            ids: None,
            resolution: None,
        }
    }

    /// Checks a subscribe request.
    pub fn from_request(r: SubscribeRequest) -> Result<Subscription, Refusal> {
        match r.channel.as_str() {
            "metrics" => {
                let resolution = match r.resolution.as_deref() {
                    None => None,
                    Some("1s") => Some(Resolution::Second),
                    Some("1m") => Some(Resolution::Minute),
                    Some(other) => {
                        return Err((
                            "invalid_filter",
                            format!("resolution `{other}`: live metrics are 1s or 1m"),
                        ))
                    }
                };
                Ok(Subscription::Metrics {
                    kinds: r.kinds.map(|k| k.into_iter().collect()),
                    ids: r.ids.map(|i| i.into_iter().collect()),
                    resolution,
                })
            }
            "messages" => {
                let entity = entity_filter(r.entity)?;
                let sample = r.sample.unwrap_or(1.0);
                if !(sample > 0.0 && sample <= 1.0) {
                    return Err(("invalid_filter", "sample must be in (0, 1]".into()));
                }
                Ok(Subscription::Messages {
                    entity,
                    sentiment: r.sentiment,
                    platform: r.platform.map(|p| p.to_ascii_lowercase()),
                    lang: r.lang,
                    sample_per_10k: (sample * 10_000.0).round() as u64,
                })
            }
            "alerts" => {
                let min_severity = r.min_severity.unwrap_or(1);
                if !(1..=10).contains(&min_severity) {
                    return Err(("invalid_filter", "min_severity must be 1 to 10".into()));
                }
                Ok(Subscription::Alerts {
                    kinds: r.alert_kinds.map(|k| k.into_iter().collect()),
                    entity: entity_filter(r.entity)?,
                    min_severity,
                })
            }
            "summaries" => Ok(Subscription::Summaries {
                kinds: r.kinds.map(|k| k.into_iter().collect()),
                entity: entity_filter(r.entity)?,
            }),
            other => Err((
                "unknown_channel",
                format!("unknown channel `{other}` (metrics, messages, alerts, summaries)"),
            )),
        }
    }

    /// The channel name.
    pub fn channel(&self) -> &'static str {
        match self {
            Subscription::Metrics { .. } => "metrics",
            Subscription::Messages { .. } => "messages",
            Subscription::Alerts { .. } => "alerts",
            Subscription::Summaries { .. } => "summaries",
        }
    }

    /// The windows of a metrics tick this subscription keeps (`None` for
    /// a messages subscription).
    pub fn windows<'a>(&self, windows: &'a [WindowUpdate]) -> Option<Vec<&'a WindowUpdate>> {
        let Subscription::Metrics {
            kinds,
            ids,
            resolution,
        } = self
        else {
            return None;
        };
        Some(
            windows
                .iter()
                .filter(|w| kinds.as_ref().is_none_or(|k| k.contains(&w.kind)))
                .filter(|w| ids.as_ref().is_none_or(|i| i.contains(&w.id)))
                .filter(|w| resolution.is_none_or(|r| r == w.resolution))
                .collect(),
        )
    }

    /// Whether an alert passes this (alerts) subscription.
    pub fn wants_alert(&self, alert: &Alert) -> bool {
        let Subscription::Alerts {
            kinds,
            entity,
            min_severity,
        } = self
        else {
            return false;
        };
        kinds.as_ref().is_none_or(|k| k.contains(&alert.kind))
            && entity.as_ref().is_none_or(|e| &alert.entity == e)
            && alert.severity >= *min_severity
    }

    /// Whether a summary passes this (summaries) subscription.
    pub fn wants_summary(&self, summary: &Summary) -> bool {
        let Subscription::Summaries { kinds, entity } = self else {
            return false;
        };
        kinds
            .as_ref()
            .is_none_or(|k| k.contains(&summary.entity.kind))
            && entity.as_ref().is_none_or(|e| &summary.entity == e)
    }

    /// Whether a scored post passes this (messages) subscription.
    pub fn wants(&self, post: &EnrichedPost) -> bool {
        let Subscription::Messages {
            entity,
            sentiment,
            platform,
            lang,
            sample_per_10k,
        } = self
        else {
            return false;
        };
        entity.as_ref().is_none_or(|e| post.entities.contains(e))
            && sentiment.is_none_or(|s| post.scores.sentiment.label == s)
            && platform
                .as_ref()
                .is_none_or(|p| post.post.platform.eq_ignore_ascii_case(p))
            && lang
                .as_ref()
                .is_none_or(|l| post.post.lang.as_deref() == Some(l.as_str()))
            && id_hash(&post.post.id) % 10_000 < *sample_per_10k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Subscription, Refusal> {
        match serde_json::from_str::<Request>(json) {
            Ok(Request::Subscribe(r)) => Subscription::from_request(*r),
            other => panic!("not a subscribe: {other:?}"),
        }
    }

    fn post(platform: &str, label: SentimentLabel, entities: Vec<EntityRef>) -> EnrichedPost {
        let mut p = crate::domain::fixtures::post("p1", "t");
        p.post.platform = platform.into();
        p.post.lang = None;
        p.scores.sentiment.label = label;
        p.entities = entities;
        p
    }

    #[test]
    fn message_filters_match_entity_sentiment_and_platform() {
        let sub = parse(r#"{"type":"subscribe","channel":"messages","entity":"project:SOL","sentiment":"negative","platform":"Twitter"}"#)
            .expect("valid");
        let sol = EntityRef::new(EntityKind::Project, "SOL");
        assert!(sub.wants(&post(
            "twitter",
            SentimentLabel::Negative,
            vec![sol.clone()]
        )));
        assert!(!sub.wants(&post("reddit", SentimentLabel::Negative, vec![sol.clone()])));
        assert!(!sub.wants(&post("twitter", SentimentLabel::Positive, vec![sol])));
        assert!(!sub.wants(&post("twitter", SentimentLabel::Negative, vec![])));
    }

    #[test]
    fn metrics_filters_keep_matching_windows() {
        let sub = parse(
            r#"{"type":"subscribe","channel":"metrics","kinds":["project"],"resolution":"1s"}"#,
        )
        .expect("valid");
        let w = |kind, res| WindowUpdate {
            kind,
            id: "SOL".into(),
            resolution: res,
            start_ms: 0,
            metrics: crate::actors::aggregator::window::WindowMetrics::default().view(),
        };
        let windows = vec![
            w(EntityKind::Project, Resolution::Second),
            w(EntityKind::Project, Resolution::Minute),
            w(EntityKind::Topic, Resolution::Second),
        ];
        assert_eq!(sub.windows(&windows).map(|v| v.len()), Some(1));
        assert_eq!(
            Subscription::all_metrics()
                .windows(&windows)
                .map(|v| v.len()),
            Some(3)
        );
    }

    #[test]
    fn bad_requests_are_refused_with_a_code() {
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"weather"}"#)
                .unwrap_err()
                .0,
            "unknown_channel"
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"messages","entity":"SOL"}"#)
                .unwrap_err()
                .0,
            "invalid_filter"
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"messages","sample":0}"#)
                .unwrap_err()
                .0,
            "invalid_filter"
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","channel":"metrics","resolution":"1h"}"#)
                .unwrap_err()
                .0,
            "invalid_filter"
        );
        assert!(serde_json::from_str::<Request>(r#"{"type":"dance"}"#).is_err());
    }

    #[test]
    fn sampling_keeps_about_the_asked_fraction() {
        let sub =
            parse(r#"{"type":"subscribe","channel":"messages","sample":0.25}"#).expect("valid");
        let kept = (0..4_000)
            .filter(|i| {
                let mut p = post("x", SentimentLabel::Neutral, vec![]);
                p.post.id = format!("p{i}");
                sub.wants(&p)
            })
            .count();
        assert!((800..1_200).contains(&kept), "kept {kept} of 4000");
    }
}
