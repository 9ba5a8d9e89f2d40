//! Entity summaries: a few sentences on what people are saying about an
//! entity over a window, the main praises and complaints, and what changed
//! against the previous window, with the numbers that back it.
//!
//! The flow of one summary:
//! 1. [`prompt`] picks representative posts of the window from the archive
//!    (highest engagement, both polarities, KOLs, de-duplicated, trimmed to
//!    a token budget) and builds a versioned prompt with the window's
//!    numbers from the store;
//! 2. a [`Generator`] (a local GGUF model through mistral.rs, cargo feature
//!    `llm`) writes the text;
//! 3. [`check`] verifies it (non-empty, bounded, no entity names or numbers
//!    that the input does not contain);
//! 4. when there is no model, or generation fails, times out or the check
//!    fails, [`extractive`] picks representative sentences instead. Every
//!    [`model::Summary`] records which of the two it is, and why.
//!
//! [`service`] runs these steps against the store and the archive; the
//! summarizer actor (`actors::summarizer`) schedules them.

pub mod check;
pub mod cmd;
pub mod extractive;
pub mod gguf;
#[cfg(feature = "llm")]
pub mod llm;
pub mod model;
pub mod prompt;
pub mod service;

use crate::config::SummariesConfig;
use std::sync::Arc;

/// Why a generation produced no text.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The model could not be loaded (missing file, unsupported GGUF
    /// architecture, engine start failure).
    #[error("model load: {0}")]
    Load(String),
    /// The engine failed on a request.
    #[error("generation: {0}")]
    Engine(String),
    /// A model is configured but this binary was built without the `llm`
    /// feature.
    #[error("summaries.model_path is set but this binary was built without the `llm` feature")]
    NotBuilt,
}

/// A text generator behind the summarizer: an LLM engine.
///
/// Dropping the future returned by [`Generator::generate`] must stop the
/// generation (the summarizer drops it on timeout and when a newer window
/// supersedes the request).
#[async_trait::async_trait]
pub trait Generator: Send + Sync + 'static {
    /// The model's name, recorded with every summary it writes.
    fn model(&self) -> &str;

    /// Answers the chat message `prompt` (one user turn) with at most
    /// `max_tokens` generated tokens, deterministically (greedy sampling).
    async fn generate(&self, prompt: &str, max_tokens: usize) -> Result<String, GenerateError>;
}

/// Loads the configured model: `Ok(None)` when none is configured.
pub async fn load_generator(
    cfg: &SummariesConfig,
) -> Result<Option<Arc<dyn Generator>>, GenerateError> {
    let Some(path) = &cfg.model_path else {
        return Ok(None);
    };
    #[cfg(feature = "llm")]
    {
        let engine = llm::LlmEngine::load(path, cfg).await?;
        Ok(Some(Arc::new(engine)))
    }
    #[cfg(not(feature = "llm"))]
    {
        let _ = path;
        Err(GenerateError::NotBuilt)
    }
}
