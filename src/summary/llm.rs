//! The LLM engine behind entity summaries: a local GGUF chat model run by
//! mistral.rs (cargo feature `llm`).
//!
//! [`LlmEngine::load`] vets the file with [`gguf::check_model`] first
//! (mistral.rs panics on an architecture it does not know), then builds the
//! model from the local file only: the tokenizer and chat template come from
//! the GGUF metadata and no model hub is ever asked (the model folder is
//! given as an absolute local path, which mistral.rs lists and reads
//! directly, and no hub token is read). It runs on the CPU unless built with
//! `cuda` and not forced to the CPU.
//!
//! [`LlmEngine::generate`] streams the answer and concatenates the chunks:
//! dropping its future drops the stream, and mistral.rs cancels the sequence
//! at its next token. (Wrapping the non-streaming `send_chat_request` in a
//! timeout does not stop the work and later panics the engine thread.)
//! Concurrent calls on one engine are batched by mistral.rs, up to
//! `max_batch` sequences at a time.

use super::gguf;
use super::{GenerateError, Generator};
use crate::config::SummariesConfig;
use futures_util::FutureExt;
use mistralrs::{GgufModelBuilder, Model, RequestBuilder, Response, TextMessageRole, TokenSource};
use std::panic::AssertUnwindSafe;
use std::path::Path;

/// A loaded GGUF chat model.
pub struct LlmEngine {
    model: Model,
    name: String,
    info: gguf::GgufInfo,
}

/// One generation with the engine's own counts and speeds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generation {
    /// The generated text, chunks concatenated.
    pub text: String,
    /// Why generation stopped, as mistral.rs says it (`stop`: end of turn,
    /// `length`: `max_tokens` reached).
    pub finish_reason: Option<String>,
    /// Prompt tokens (the chat template applied).
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub completion_tokens: usize,
    /// Prompt processing speed, tokens per second.
    pub prompt_tok_per_s: f32,
    /// Generation speed, tokens per second.
    pub completion_tok_per_s: f32,
    /// Prompt processing time, seconds.
    pub prompt_time_s: f32,
    /// Generation time, seconds.
    pub completion_time_s: f32,
}

impl LlmEngine {
    /// Checks and loads the GGUF model at `path`.
    ///
    /// Uses `cfg.max_batch` (sequences batched together) and
    /// `cfg.force_cpu`. Fails with [`GenerateError::Load`] on a missing or
    /// unreadable file, an unsupported architecture, a model without a chat
    /// template, or an engine start failure (a panic inside mistral.rs
    /// while loading included).
    pub async fn load(path: &Path, cfg: &SummariesConfig) -> Result<Self, GenerateError> {
        let load_err =
            |e: &dyn std::fmt::Display| GenerateError::Load(format!("{}: {e}", path.display()));
        let info = gguf::check_model(path).map_err(|e| match e {
            // Already names the path.
            gguf::GgufError::Open { .. } => GenerateError::Load(e.to_string()),
            e => load_err(&e),
        })?;
        // An absolute folder: mistral.rs treats a model id that exists on
        // disk as a local folder; anything else would be a hub repo id.
        let path = path.canonicalize().map_err(|e| load_err(&e))?;
        let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
            return Err(load_err(&"not a file path"));
        };
        let (Some(dir), Some(file)) = (dir.to_str(), file.to_str()) else {
            return Err(load_err(&"the path is not UTF-8"));
        };
        let name = info.name.clone().unwrap_or_else(|| {
            Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(file)
                .to_owned()
        });

        let mut builder = GgufModelBuilder::new(dir, vec![file])
            .with_token_source(TokenSource::None)
            .with_max_num_seqs(cfg.max_batch.max(1));
        if cfg.force_cpu || !cfg!(feature = "cuda") {
            builder = builder.with_force_cpu();
        }
        let model = match AssertUnwindSafe(builder.build()).catch_unwind().await {
            Ok(Ok(model)) => model,
            Ok(Err(e)) => return Err(load_err(&format!("{e:#}"))),
            Err(panic) => {
                return Err(load_err(&format!(
                    "engine panicked: {}",
                    panic_text(&panic)
                )))
            }
        };
        tracing::info!(
            model = %name,
            architecture = %info.architecture,
            path = %path.display(),
            max_batch = cfg.max_batch,
            "LLM engine loaded"
        );
        Ok(LlmEngine { model, name, info })
    }

    /// What the GGUF header says about the model.
    pub fn info(&self) -> &gguf::GgufInfo {
        &self.info
    }

    /// [`Generator::generate`] with the engine's token counts and speeds.
    /// Dropping the future stops the generation.
    pub async fn generate_with_stats(
        &self,
        prompt: &str,
        max_tokens: usize,
    ) -> Result<Generation, GenerateError> {
        // The deterministic sampler resets max_len: set it first.
        let request = RequestBuilder::new()
            .add_message(TextMessageRole::User, prompt)
            .set_deterministic_sampler()
            .set_sampler_max_len(max_tokens.max(1));
        let mut stream = self
            .model
            .stream_chat_request(request)
            .await
            .map_err(|e| GenerateError::Engine(e.to_string()))?;

        let mut out = Generation::default();
        while let Some(response) = stream.next().await {
            match response {
                Response::Chunk(chunk) => {
                    if let Some(usage) = chunk.usage {
                        out.prompt_tokens = usage.prompt_tokens;
                        out.completion_tokens = usage.completion_tokens;
                        out.prompt_tok_per_s = usage.avg_prompt_tok_per_sec;
                        out.completion_tok_per_s = usage.avg_compl_tok_per_sec;
                        out.prompt_time_s = usage.total_prompt_time_sec;
                        out.completion_time_s = usage.total_completion_time_sec;
                    }
                    for choice in chunk.choices {
                        if let Some(text) = choice.delta.content {
                            out.text.push_str(&text);
                        }
                        if choice.finish_reason.is_some() {
                            out.finish_reason = choice.finish_reason;
                        }
                    }
                    if out.finish_reason.is_some() {
                        return Ok(out);
                    }
                }
                Response::Done(done) => {
                    // Not sent to streams, but complete if it ever is.
                    if let Some(choice) = done.choices.into_iter().next() {
                        out.text = choice.message.content.unwrap_or_default();
                        out.finish_reason = Some(choice.finish_reason);
                    }
                    return Ok(out);
                }
                Response::ModelError(msg, _) => return Err(GenerateError::Engine(msg)),
                Response::InternalError(e) | Response::ValidationError(e) => {
                    return Err(GenerateError::Engine(e.to_string()))
                }
                _ => {
                    return Err(GenerateError::Engine(
                        "unexpected response kind to a chat request".into(),
                    ))
                }
            }
        }
        Err(GenerateError::Engine(
            "the engine closed the stream before the end of the answer".into(),
        ))
    }
}

#[async_trait::async_trait]
impl Generator for LlmEngine {
    fn model(&self) -> &str {
        &self.name
    }

    async fn generate(&self, prompt: &str, max_tokens: usize) -> Result<String, GenerateError> {
        Ok(self.generate_with_stats(prompt, max_tokens).await?.text)
    }
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
