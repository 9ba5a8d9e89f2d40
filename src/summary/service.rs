//! One summary, end to end, against the store and the post archive: the
//! window's numbers (1-minute series of this window and the one before),
//! the representative posts, the prompt, the generation with its time
//! limit, the checks, and the extractive fallback. Used by the summarizer
//! actor and by `starling summarize`.
//!
//! Windows are whole minutes (the store's 1-minute series): `from` is
//! rounded down and `to` up to the minute.

use super::check::{check, clean};
use super::model::{Change, Method, Summary, WindowNumbers};
use super::prompt::{self, Representative, PROMPT_VERSION};
use super::{extractive, Generator};
use crate::actors::aggregator::window::{Resolution, WindowMetrics};
use crate::archive::{ArchiveError, PostStore, TimeRange};
use crate::config::SummariesConfig;
use crate::domain::{EnrichedPost, EntityRef};
use crate::store::{Store, StoreError};
use crate::telemetry::metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most posts read from the archive (by engagement) to pick representatives from.
const CANDIDATE_POSTS: usize = 300;
/// One minute, in milliseconds.
const MINUTE_MS: i64 = 60_000;

/// Why no summary could be made.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The archive failed.
    #[error("archive: {0}")]
    Archive(#[from] ArchiveError),
    /// Nothing was said about the entity in the window.
    #[error("no posts about {kind}:{id} in the window")]
    NoPosts {
        /// Entity kind.
        kind: String,
        /// Entity id.
        id: String,
    },
    /// The window is empty or reversed.
    #[error("the window must end after it starts")]
    BadWindow,
    /// A blocking task panicked or was cancelled.
    #[error("summary task: {0}")]
    Task(String),
}

/// What a summary reads.
#[derive(Clone)]
pub struct Sources {
    /// Time series (the numbers).
    pub store: Arc<dyn Store>,
    /// Archived posts (the representatives).
    pub archive: Arc<dyn PostStore>,
}

/// `ms` rounded up to the minute.
fn minute_up(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
        + if ms.rem_euclid(MINUTE_MS) == 0 {
            0
        } else {
            MINUTE_MS
        }
}

/// `from` rounded down and `to` up to the minute.
pub fn align(from_ms: i64, to_ms: i64) -> (i64, i64) {
    (from_ms.div_euclid(MINUTE_MS) * MINUTE_MS, minute_up(to_ms))
}

/// The window of `span_ms` (whole minutes) that ends with the minute of
/// `to_ms`: the current minute's posts are in, and it is exactly `span_ms` long.
pub fn ending_at(span_ms: i64, to_ms: i64) -> (i64, i64) {
    let to = minute_up(to_ms);
    (to - span_ms.div_euclid(MINUTE_MS).max(1) * MINUTE_MS, to)
}

/// A window and its numbers, before its posts are picked.
#[derive(Debug, Clone)]
pub struct Window<'a> {
    /// The entity.
    pub entity: &'a EntityRef,
    /// Start (ms, whole minute).
    pub from_ms: i64,
    /// End (ms, exclusive, whole minute).
    pub to_ms: i64,
    /// Its numbers.
    pub numbers: WindowNumbers,
    /// Against the window before.
    pub change: Change,
}

/// Everything a summary is written from.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The entity.
    pub entity: EntityRef,
    /// Window start (ms, whole minute).
    pub from_ms: i64,
    /// Window end (ms, exclusive, whole minute).
    pub to_ms: i64,
    /// The window's numbers.
    pub numbers: WindowNumbers,
    /// Against the previous window.
    pub change: Change,
    /// The representative posts.
    pub reps: Vec<Representative>,
    /// The prompt built from them.
    pub prompt: String,
    /// Most characters of the summary text.
    max_chars: usize,
    started: Instant,
}

fn window_numbers(
    store: &dyn Store,
    entity: &EntityRef,
    from_ms: i64,
    to_ms: i64,
) -> Result<WindowNumbers, StoreError> {
    let mut m = WindowMetrics::default();
    for (_, w) in store.series(
        entity.kind,
        &entity.id,
        Resolution::Minute,
        from_ms,
        to_ms - 1,
    )? {
        m.merge(&w);
    }
    Ok(WindowNumbers::of(&m))
}

impl Prepared {
    /// Reads the window (blocking: call it off the async threads).
    pub fn load(
        sources: &Sources,
        entity: &EntityRef,
        from_ms: i64,
        to_ms: i64,
        cfg: &SummariesConfig,
        kol_followers: u64,
    ) -> Result<Prepared, SummaryError> {
        let started = Instant::now();
        let (from_ms, to_ms) = align(from_ms, to_ms);
        if to_ms <= from_ms {
            return Err(SummaryError::BadWindow);
        }
        let numbers = window_numbers(sources.store.as_ref(), entity, from_ms, to_ms)?;
        let span = to_ms - from_ms;
        let previous = window_numbers(sources.store.as_ref(), entity, from_ms - span, from_ms)?;
        let change = Change::between(previous, &numbers);
        let posts = sources.archive.top(
            entity,
            TimeRange::between(from_ms, to_ms - 1),
            CANDIDATE_POSTS,
        )?;
        let posts: Vec<_> = posts.into_iter().map(|h| h.post).collect();
        let window = Window {
            entity,
            from_ms,
            to_ms,
            numbers,
            change,
        };
        let mut p = Prepared::from_posts(window, &posts, cfg, kol_followers)?;
        p.started = started;
        Ok(p)
    }

    /// Prepares a summary of `window` from its posts (any order): the
    /// representatives and the prompt.
    pub fn from_posts(
        window: Window<'_>,
        posts: &[EnrichedPost],
        cfg: &SummariesConfig,
        kol_followers: u64,
    ) -> Result<Prepared, SummaryError> {
        let Window {
            entity,
            from_ms,
            to_ms,
            numbers,
            change,
        } = window;
        let reps = prompt::select(posts, cfg.max_posts, cfg.prompt_tokens, kol_followers);
        if reps.is_empty() {
            return Err(SummaryError::NoPosts {
                kind: entity.kind.as_str().into(),
                id: entity.id.clone(),
            });
        }
        let window_s = ((to_ms - from_ms) / 1_000) as u64;
        let prompt = prompt::build(entity, window_s, &numbers, &change, &reps);
        Ok(Prepared {
            entity: entity.clone(),
            from_ms,
            to_ms,
            numbers,
            change,
            reps,
            prompt,
            max_chars: cfg.max_chars,
            started: Instant::now(),
        })
    }

    fn window_s(&self) -> u64 {
        ((self.to_ms - self.from_ms) / 1_000) as u64
    }

    fn extract(&self) -> extractive::Extract {
        extractive::summarize(
            &self.entity,
            self.window_s(),
            &self.numbers,
            &self.change,
            &self.reps,
            self.max_chars,
        )
    }

    fn summary(
        &self,
        text: String,
        method: Method,
        model: Option<String>,
        extract: extractive::Extract,
    ) -> Summary {
        Summary {
            entity: self.entity.clone(),
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            text,
            method,
            model,
            prompt_version: PROMPT_VERSION,
            fallback_reason: None,
            numbers: self.numbers,
            change: self.change,
            top_praise: extract.praise,
            top_complaint: extract.complaint,
            post_ids: self.reps.iter().map(|r| r.post_id.clone()).collect(),
            generated_at_ms: chrono::Utc::now().timestamp_millis(),
            took_ms: self.started.elapsed().as_millis() as u64,
        }
    }

    /// The extractive summary; `reason` says why the model's was not used
    /// (none when no model is configured).
    pub fn extractive(&self, reason: Option<String>) -> Summary {
        let e = self.extract();
        metrics::SUMMARIES_EXTRACTIVE.inc();
        if reason.is_some() {
            metrics::SUMMARY_FALLBACKS.inc();
        }
        let mut s = self.summary(e.text.clone(), Method::Extractive, None, e);
        s.fallback_reason = reason;
        s
    }

    /// The summary from a model's raw output: cleaned, checked, with the
    /// numbers sentence appended; extractive when the check fails.
    pub fn from_model(&self, raw: &str, model: &str) -> Summary {
        let numbers = prompt::numbers_sentence(self.window_s(), &self.numbers, &self.change);
        let room = self.max_chars.saturating_sub(numbers.chars().count() + 1);
        let text = clean(raw);
        let posts: Vec<&str> = self.reps.iter().map(|r| r.text.as_str()).collect();
        match check(&text, &self.prompt, &posts, room) {
            Ok(()) => {
                metrics::SUMMARIES_LLM.inc();
                self.summary(
                    format!("{text} {numbers}"),
                    Method::Llm,
                    Some(model.to_string()),
                    self.extract(),
                )
            }
            Err(e) => {
                metrics::SUMMARY_CHECK_FAILURES.inc();
                tracing::info!(entity = %format!("{}:{}", self.entity.kind, self.entity.id), reason = %e, output = %text, "model output refused: extractive summary instead");
                self.extractive(Some(format!("check: {e}")))
            }
        }
    }
}

/// Writes one summary: with `generator`, by the model within
/// `cfg.timeout_s` (extractive if it fails); without, extractive.
/// Dropping the future stops the generation.
pub async fn summarize(
    sources: &Sources,
    generator: Option<&dyn Generator>,
    entity: &EntityRef,
    from_ms: i64,
    to_ms: i64,
    cfg: &SummariesConfig,
    kol_followers: u64,
) -> Result<Summary, SummaryError> {
    let prepared = {
        let (sources, entity, cfg) = (sources.clone(), entity.clone(), cfg.clone());
        tokio::task::spawn_blocking(move || {
            Prepared::load(&sources, &entity, from_ms, to_ms, &cfg, kol_followers)
        })
        .await
        .map_err(|e| SummaryError::Task(e.to_string()))??
    };
    let Some(generator) = generator else {
        return Ok(prepared.extractive(None));
    };
    let generation = generator.generate(&prepared.prompt, cfg.max_new_tokens);
    Ok(
        match tokio::time::timeout(Duration::from_secs(cfg.timeout_s), generation).await {
            Ok(Ok(raw)) => prepared.from_model(&raw, generator.model()),
            Ok(Err(e)) => {
                metrics::SUMMARY_ENGINE_ERRORS.inc();
                tracing::warn!(error = %e, "generation failed: extractive summary instead");
                prepared.extractive(Some(format!("engine: {e}")))
            }
            Err(_) => {
                metrics::SUMMARY_TIMEOUTS.inc();
                prepared.extractive(Some(format!("timeout after {} s", cfg.timeout_s)))
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_minutes() {
        assert_eq!(align(0, 60_000), (0, 60_000));
        assert_eq!(align(59_999, 60_001), (0, 120_000));
        assert_eq!(align(-1, 1), (-60_000, 60_000));
        assert_eq!(ending_at(3_600_000, 3_600_001), (60_000, 3_660_000));
        assert_eq!(ending_at(3_600_000, 3_600_000), (0, 3_600_000));
    }
}
