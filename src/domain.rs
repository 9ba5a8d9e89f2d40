//! The domain model shared by every stage: a post as it arrives from a
//! connector, the scores the classifier attaches to it, and the references to
//! the entities it is attributed to.
//!
//! Wire compatibility matters here: these types are the JSON accepted by
//! `POST /api/ingest` and the payloads on the bus. Unknown input fields are
//! allowed (connectors carry more than we read); optional fields that were not
//! given or not computed are absent, never filled with a made-up value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A social-network post, normalised across platforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Post {
    /// Platform-unique id; the de-duplication key everywhere downstream.
    pub id: String,
    /// Network the post came from (`twitter`, `reddit`, `bluesky`, …), lower case.
    pub platform: String,
    /// Sub-space of the platform (subreddit, Discord channel, hashtag stream…), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Who wrote it.
    pub author: Author,
    /// The post's text as written.
    pub text: String,
    /// ISO 639-1 language code when the connector knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// When the author posted it (event time: windows are keyed by this).
    pub created_at: DateTime<Utc>,
    /// Interaction counts at the time the post was read.
    #[serde(default)]
    pub engagement: Engagement,
    /// City or region the post is attributed to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<String>,
    /// Product the post is about, when the connector knows it (support desks, app reviews).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Id of the post this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Id of the post this one reposts or quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repost_of: Option<String>,
}

/// The author of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Author {
    /// Platform-unique author id.
    pub id: String,
    /// Display handle, without the leading `@`.
    pub handle: String,
    /// Follower count when the post was read; decides KOL status.
    #[serde(default)]
    pub followers: u64,
    /// Whether the platform marks the account as verified.
    #[serde(default)]
    pub verified: bool,
}

/// Interaction counts of a post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Engagement {
    /// Likes, favourites, upvotes.
    #[serde(default)]
    pub likes: u64,
    /// Reposts, retweets, boosts, shares.
    #[serde(default)]
    pub reposts: u64,
    /// Replies and comments.
    #[serde(default)]
    pub replies: u64,
}

impl Engagement {
    /// Total interactions, the `engagement` metric of a window.
    pub fn total(&self) -> u64 {
        self.likes
            .saturating_add(self.reposts)
            .saturating_add(self.replies)
    }
}

/// Sentiment polarity label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

/// Sentiment of one post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sentiment {
    /// Polarity label.
    pub label: SentimentLabel,
    /// Polarity score in −1..1 (negative to positive).
    pub score: f64,
    /// Probability of each label, from a trained tier (absent from the lexicon tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probs: Option<SentimentProbs>,
}

/// Probabilities of the three sentiment labels (they sum to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SentimentProbs {
    /// p(negative).
    pub negative: f64,
    /// p(neutral).
    pub neutral: f64,
    /// p(positive).
    pub positive: f64,
}

/// The seven emotion classes (Ekman's six and neutral).
pub const EMOTIONS: [&str; 7] = [
    "anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral",
];

/// Emotion of one post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Emotion {
    /// The most probable of [`EMOTIONS`].
    pub label: String,
    /// Probability of each of [`EMOTIONS`] (they sum to 1).
    pub probs: std::collections::BTreeMap<String, f64>,
}

/// What the classifier says about one post. Fields a classifier tier does not
/// compute are `None` and absent from the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scores {
    /// Sentiment label and score; every tier computes it.
    pub sentiment: Sentiment,
    /// Emotion, from a trained tier (absent from the lexicon tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<Emotion>,
    /// Toxicity in 0..1, once a trained toxicity model exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f64>,
    /// Churn risk in 0..1, once a trained churn model exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_risk: Option<f64>,
    /// Which model produced these scores (name and version).
    pub model: String,
}

/// The kinds of entity a post can be attributed to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    /// The post itself (archived; not windowed).
    Post,
    /// Any author.
    User,
    /// An author above the KOL follower threshold.
    Kol,
    /// A `$CASHTAG` or a configured project name/alias.
    Project,
    /// A `#hashtag`, an `@mention`ed account, or a configured keyword.
    Topic,
    /// A configured group of topics.
    Narrative,
    /// Everything: one entity, id `all`.
    Macro,
    /// Breakdown by platform.
    Platform,
    /// Breakdown by channel.
    Channel,
    /// Breakdown by product.
    Product,
    /// Breakdown by geography.
    Geo,
}

impl EntityKind {
    /// Every kind, in a stable order.
    pub const ALL: [EntityKind; 11] = [
        EntityKind::Post,
        EntityKind::User,
        EntityKind::Kol,
        EntityKind::Project,
        EntityKind::Topic,
        EntityKind::Narrative,
        EntityKind::Macro,
        EntityKind::Platform,
        EntityKind::Channel,
        EntityKind::Product,
        EntityKind::Geo,
    ];

    /// Kinds that get per-window time series: all but `post`, whose record
    /// is the archived post itself.
    pub fn windowed() -> impl Iterator<Item = EntityKind> {
        EntityKind::ALL
            .into_iter()
            .filter(|k| *k != EntityKind::Post)
    }

    /// The lower-case name used in URLs, keys and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Post => "post",
            EntityKind::User => "user",
            EntityKind::Kol => "kol",
            EntityKind::Project => "project",
            EntityKind::Topic => "topic",
            EntityKind::Narrative => "narrative",
            EntityKind::Macro => "macro",
            EntityKind::Platform => "platform",
            EntityKind::Channel => "channel",
            EntityKind::Product => "product",
            EntityKind::Geo => "geo",
        }
    }

    /// Parses the name used in URLs (`as_str`), also accepting plurals
    /// (`projects`) and the dimension aliases of the REST API (`products`,
    /// `channels`, `platforms`).
    pub fn parse(s: &str) -> Option<EntityKind> {
        let s = s.trim().to_ascii_lowercase();
        let singular = s.strip_suffix('s').unwrap_or(&s);
        EntityKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s || k.as_str() == singular)
    }

    /// A one-byte tag for storage keys.
    pub fn tag(self) -> u8 {
        EntityKind::ALL
            .iter()
            .position(|k| *k == self)
            .map(|p| p as u8)
            .unwrap_or(u8::MAX)
    }

    /// Inverse of [`EntityKind::tag`].
    pub fn from_tag(tag: u8) -> Option<EntityKind> {
        EntityKind::ALL.get(tag as usize).copied()
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference to one entity: `{kind, id}`. Ids are normalised by the
/// extractor (upper case for projects, lower case for topics, …).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct EntityRef {
    /// What kind of entity.
    pub kind: EntityKind,
    /// Its id within the kind.
    pub id: String,
}

impl EntityRef {
    /// Builds a reference.
    pub fn new(kind: EntityKind, id: impl Into<String>) -> Self {
        EntityRef {
            kind,
            id: id.into(),
        }
    }

    /// The single `macro` entity every post belongs to.
    pub fn macro_all() -> Self {
        EntityRef::new(EntityKind::Macro, MACRO_ID)
    }
}

/// Id of the one `macro` entity.
pub const MACRO_ID: &str = "all";

/// A post after classification: what travels on the `enriched` subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrichedPost {
    /// The post as received.
    pub post: Post,
    /// The classifier's scores.
    pub scores: Scores,
    /// Every entity the post is attributed to (including `macro`).
    pub entities: Vec<EntityRef>,
}

/// Limits a post must respect to enter the pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostLimits {
    /// Latest accepted `created_at`: now plus the allowed clock skew.
    pub newest: DateTime<Utc>,
    /// Earliest accepted `created_at`: as old as the longest retention.
    pub oldest: DateTime<Utc>,
}

/// Longest post id, author id, handle or platform name accepted.
pub const MAX_ID_LEN: usize = 256;
/// Longest post text accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

impl Post {
    /// Checks what serde cannot: non-empty ids, sizes, and a `created_at`
    /// within `limits`. The error says which field and why.
    pub fn validate(&self, limits: &PostLimits) -> Result<(), String> {
        let id_ok = |name: &str, v: &str| -> Result<(), String> {
            if v.trim().is_empty() {
                return Err(format!("{name} must not be empty"));
            }
            if v.len() > MAX_ID_LEN {
                return Err(format!("{name} is longer than {MAX_ID_LEN} bytes"));
            }
            if v.chars().any(char::is_control) {
                return Err(format!("{name} contains control characters"));
            }
            Ok(())
        };
        id_ok("id", &self.id)?;
        id_ok("platform", &self.platform)?;
        id_ok("author.id", &self.author.id)?;
        if self.author.handle.len() > MAX_ID_LEN {
            return Err(format!("author.handle is longer than {MAX_ID_LEN} bytes"));
        }
        for (name, v) in [
            ("channel", &self.channel),
            ("geo", &self.geo),
            ("product", &self.product),
            ("lang", &self.lang),
        ] {
            if let Some(v) = v {
                if v.len() > MAX_ID_LEN {
                    return Err(format!("{name} is longer than {MAX_ID_LEN} bytes"));
                }
            }
        }
        if self.text.len() > MAX_TEXT_BYTES {
            return Err(format!("text is longer than {MAX_TEXT_BYTES} bytes"));
        }
        if self.created_at > limits.newest {
            return Err(format!(
                "created_at {} is in the future (latest accepted {})",
                self.created_at.to_rfc3339(),
                limits.newest.to_rfc3339()
            ));
        }
        if self.created_at < limits.oldest {
            return Err(format!(
                "created_at {} is older than the retention (earliest accepted {})",
                self.created_at.to_rfc3339(),
                limits.oldest.to_rfc3339()
            ));
        }
        Ok(())
    }
}

/// Posts for unit tests, built in one place.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// `created_at` of a fixture post: 2023-11-14T22:13:20Z.
    pub(crate) const AT_MS: i64 = 1_700_000_000_000;

    /// A scored post: on twitter, in English, by `author` (0 followers) at
    /// [`AT_MS`], no engagement, neutral, attributed to nothing; tests set
    /// what they are about.
    pub(crate) fn post(id: &str, text: &str) -> EnrichedPost {
        EnrichedPost {
            post: Post {
                id: id.into(),
                platform: "twitter".into(),
                channel: None,
                author: Author {
                    id: "author".into(),
                    handle: "author".into(),
                    followers: 0,
                    verified: false,
                },
                text: text.into(),
                lang: Some("en".into()),
                created_at: DateTime::from_timestamp_millis(AT_MS).unwrap_or_default(),
                engagement: Engagement::default(),
                geo: None,
                product: None,
                reply_to: None,
                repost_of: None,
            },
            scores: Scores {
                sentiment: Sentiment {
                    label: SentimentLabel::Neutral,
                    score: 0.0,
                    probs: None,
                },
                emotion: None,
                toxicity: None,
                churn_risk: None,
                model: "test".into(),
            },
            entities: Vec::new(),
        }
    }

    /// An author with `followers`.
    pub(crate) fn author(id: &str, handle: &str, followers: u64) -> Author {
        Author {
            id: id.into(),
            handle: handle.into(),
            followers,
            verified: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post() -> Post {
        serde_json::from_str(
            r#"{"id": "p1", "platform": "twitter", "text": "hi", "author": {"id": "u1", "handle": "ann", "followers": 1200},
                "created_at": "2026-11-21T12:00:00Z", "engagement": {"likes": 3, "reposts": 0, "replies": 1}, "extra": {"x": 1}}"#,
        )
        .expect("the documented ingest shape parses")
    }

    fn limits() -> PostLimits {
        let now: DateTime<Utc> = "2026-11-21T12:00:05Z".parse().expect("time");
        PostLimits {
            newest: now + chrono::Duration::minutes(5),
            oldest: now - chrono::Duration::days(30),
        }
    }

    #[test]
    fn documented_shape_parses_and_validates() {
        let p = post();
        assert_eq!(p.engagement.total(), 4);
        assert_eq!(p.author.followers, 1200);
        p.validate(&limits()).expect("valid");
    }

    #[test]
    fn absurd_timestamps_are_rejected_with_the_reason() {
        let mut p = post();
        p.created_at = "2099-01-01T00:00:00Z".parse().expect("time");
        assert!(p.validate(&limits()).unwrap_err().contains("future"));
        p.created_at = "1970-01-01T00:00:00Z".parse().expect("time");
        assert!(p.validate(&limits()).unwrap_err().contains("older"));
    }

    #[test]
    fn empty_ids_and_control_characters_are_rejected() {
        let mut p = post();
        p.id = " ".into();
        assert!(p.validate(&limits()).unwrap_err().contains("id"));
        let mut p = post();
        p.author.id = "a\u{0}b".into();
        assert!(p.validate(&limits()).unwrap_err().contains("author.id"));
    }

    #[test]
    fn entity_kind_parses_plurals_and_round_trips_tags() {
        assert_eq!(EntityKind::parse("products"), Some(EntityKind::Product));
        assert_eq!(EntityKind::parse("geo"), Some(EntityKind::Geo));
        assert_eq!(EntityKind::parse("nope"), None);
        for k in EntityKind::ALL {
            assert_eq!(EntityKind::from_tag(k.tag()), Some(k));
        }
    }
}
