//! What a summary is: the text, how it was written (LLM or extractive, with
//! which model and prompt version), the window it covers and the numbers
//! that back it. This is what is stored, cached, served and pushed.

use crate::actors::aggregator::window::WindowMetrics;
use crate::domain::EntityRef;
use serde::{Deserialize, Serialize};

/// How the text was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// By the language model, and it passed the output checks.
    Llm,
    /// Representative sentences picked from the posts (no model configured,
    /// or the model failed, timed out or wrote something that failed a check).
    Extractive,
}

impl Method {
    /// The name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Llm => "llm",
            Method::Extractive => "extractive",
        }
    }
}

/// The numbers of one window, from the store's 1-minute series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WindowNumbers {
    /// Posts counted.
    pub volume: u64,
    /// Engagement total of those posts.
    pub engagement: u64,
    /// Positive posts.
    pub positive: u64,
    /// Negative posts.
    pub negative: u64,
    /// Neutral posts.
    pub neutral: u64,
    /// Engagement- and author-weighted mean sentiment (−1..1); absent when
    /// the window is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment_index: Option<f64>,
}

impl WindowNumbers {
    /// The numbers of merged window metrics.
    pub fn of(m: &WindowMetrics) -> Self {
        WindowNumbers {
            volume: m.volume,
            engagement: m.engagement,
            positive: m.positive,
            negative: m.negative,
            neutral: m.neutral,
            sentiment_index: m.sentiment_index(),
        }
    }
}

/// How the window compares with the one before it (same length, ending
/// where it starts).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    /// The previous window's numbers.
    pub previous: WindowNumbers,
    /// Volume change in percent; absent when the previous window was empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_pct: Option<f64>,
    /// sentiment_index now minus before; absent when either is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment_delta: Option<f64>,
}

impl Change {
    /// The change from `previous` to `current`.
    pub fn between(previous: WindowNumbers, current: &WindowNumbers) -> Self {
        let volume_pct = (previous.volume > 0).then(|| {
            (current.volume as f64 - previous.volume as f64) / previous.volume as f64 * 100.0
        });
        let sentiment_delta = match (current.sentiment_index, previous.sentiment_index) {
            (Some(now), Some(before)) => Some(now - before),
            _ => None,
        };
        Change {
            previous,
            volume_pct,
            sentiment_delta,
        }
    }
}

/// A post quoted as evidence (a praise, a complaint, or a prompt input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quote {
    /// The post id.
    pub post_id: String,
    /// The author's handle.
    pub handle: String,
    /// The quoted text (a sentence of the post, or the trimmed post).
    pub text: String,
    /// The post's engagement total.
    pub engagement: u64,
    /// The post's sentiment score (−1..1).
    pub sentiment: f64,
}

/// One summary of one entity over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    /// The entity.
    pub entity: EntityRef,
    /// Window start (ms since the epoch, inclusive).
    pub from_ms: i64,
    /// Window end (ms since the epoch, exclusive).
    pub to_ms: i64,
    /// The summary text.
    pub text: String,
    /// How it was written.
    pub method: Method,
    /// The model that wrote it (LLM summaries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Version of the prompt template (and of the extractive selection).
    pub prompt_version: u32,
    /// Why an LLM was not used or its text was rejected (extractive only,
    /// when a model is configured): `timeout`, `engine: …`, `check: …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The window's numbers.
    pub numbers: WindowNumbers,
    /// Against the previous window of the same length.
    pub change: Change,
    /// The most engaging positive post of the window, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_praise: Option<Quote>,
    /// The most engaging negative post of the window, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_complaint: Option<Quote>,
    /// Ids of the posts the summary was written from.
    pub post_ids: Vec<String>,
    /// When it was written (ms since the epoch).
    pub generated_at_ms: i64,
    /// How long writing it took, in milliseconds (selection, generation, checks).
    pub took_ms: u64,
}
