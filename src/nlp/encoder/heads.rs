//! The encoder tier's trained heads and how their outputs are combined with
//! the fast tier's.
//!
//! Files (`models/encoder/`, written by `starling train-encoder`):
//! - `heads.safetensors`: F32 tensors `input.mean` and `input.std` (`[d]`,
//!   the standardisation of the embedding) and, per task `t` in
//!   `sentiment`, `emotion`, `toxicity`, `churn`: `t.w1` (`[h, d]`), `t.b1`
//!   (`[h]`), `t.w2` (`[k, h]`), `t.b2` (`[k]`): a one-hidden-layer MLP
//!   with ReLU, `k` = 3, 7, 1, 1.
//! - `heads.json` ([`HeadsMeta`]): format and version, model id, the
//!   encoder weights' and fast model's checksums the heads were trained
//!   with, the blend weights, the heads file's checksum, and the training
//!   record (command, seed, rows, held-out and dev metrics).
//!
//! Combination, per task: `z = log p_mlp + w · log p_fast` (softmax tasks)
//! or `z = logit_mlp + w · logit_fast` (binary tasks), then softmax or
//! sigmoid; `w` (in `heads.json`) was chosen on a slice held out of the
//! training data.

use super::EncoderError;
use crate::nlp::fast::{self, RawOutput};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// `format` of `heads.json`.
pub const FORMAT: &str = "starling-encoder-heads";
/// `format_version` this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Metadata file of a heads folder.
pub const META_FILE: &str = "heads.json";
/// Tensor file of a heads folder.
pub const TENSORS_FILE: &str = "heads.safetensors";
/// Tasks in file order, with their class counts.
pub const TASKS: [(&str, usize); 4] = [
    ("sentiment", 3),
    ("emotion", 7),
    ("toxicity", 1),
    ("churn", 1),
];

/// Weight of the fast tier's log-probabilities (or logits) per task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blend {
    /// Sentiment.
    pub sentiment: f32,
    /// Emotion.
    pub emotion: f32,
    /// Toxicity.
    pub toxicity: f32,
    /// Churn.
    pub churn: f32,
}

impl Blend {
    /// The weight of task index `t` (order of [`TASKS`]).
    pub fn get(&self, t: usize) -> f32 {
        [self.sentiment, self.emotion, self.toxicity, self.churn][t]
    }
}

/// The contents of `heads.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadsMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Model id of the tier (`minilm-l6-heads-v1`).
    pub model_id: String,
    /// The sentence encoder the heads read (`all-MiniLM-L6-v2`).
    pub encoder: String,
    /// xxh3-64 (hex) of the encoder's `model.safetensors` at training time.
    pub encoder_weights_xxh3: String,
    /// Embedding width.
    pub dim: usize,
    /// Model id of the fast tier blended in.
    pub fast_model_id: String,
    /// `weights_xxh3` of the fast model blended in.
    pub fast_weights_xxh3: String,
    /// Fast-tier weights per task.
    pub blend: Blend,
    /// xxh3-64 (hex) of `heads.safetensors`.
    pub tensors_xxh3: String,
    /// How the heads were trained and how they scored (free-form record).
    #[serde(default)]
    pub training: serde_json::Value,
}

/// One MLP head.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// `[h, d]`.
    pub w1: Tensor,
    /// `[h]`.
    pub b1: Tensor,
    /// `[k, h]`.
    pub w2: Tensor,
    /// `[k]`.
    pub b2: Tensor,
}

impl Mlp {
    /// Logits `[n, k]` of standardised inputs `[n, d]`.
    pub fn forward(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let h = z.matmul(&self.w1.t()?)?.broadcast_add(&self.b1)?.relu()?;
        h.matmul(&self.w2.t()?)?.broadcast_add(&self.b2)
    }
}

/// The four heads, the input standardisation and the blend.
#[derive(Debug, Clone)]
pub struct Heads {
    /// `[d]`.
    pub mean: Tensor,
    /// `[d]`.
    pub std: Tensor,
    /// One per task, in [`TASKS`] order.
    pub mlps: [Mlp; 4],
    /// Metadata.
    pub meta: HeadsMeta,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EncoderError + '_ {
    move |source| EncoderError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn xxh3_hex(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

impl Heads {
    /// Loads `heads.json` and `heads.safetensors` from `dir`, checking the
    /// format, the checksum and every tensor's shape.
    pub fn load(dir: &Path, device: &Device) -> Result<Heads, EncoderError> {
        for f in [META_FILE, TENSORS_FILE] {
            if !dir.join(f).is_file() {
                return Err(EncoderError::Missing { path: dir.join(f) });
            }
        }
        let meta_path = dir.join(META_FILE);
        let meta: HeadsMeta =
            serde_json::from_slice(&std::fs::read(&meta_path).map_err(io_err(&meta_path))?)
                .map_err(|e| EncoderError::Format(format!("{META_FILE}: {e}")))?;
        if meta.format != FORMAT || meta.format_version != FORMAT_VERSION {
            return Err(EncoderError::Format(format!(
                "{META_FILE}: format {} v{} (this build reads {FORMAT} v{FORMAT_VERSION})",
                meta.format, meta.format_version
            )));
        }
        let t_path = dir.join(TENSORS_FILE);
        let bytes = std::fs::read(&t_path).map_err(io_err(&t_path))?;
        if xxh3_hex(&bytes) != meta.tensors_xxh3 {
            return Err(EncoderError::Format(format!(
                "{TENSORS_FILE}: checksum does not match {META_FILE}"
            )));
        }
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, device)?;
        Heads::from_tensors(&mut tensors, meta)
    }

    /// Builds the heads from named tensors (the names of `heads.safetensors`).
    pub fn from_tensors(
        tensors: &mut HashMap<String, Tensor>,
        meta: HeadsMeta,
    ) -> Result<Heads, EncoderError> {
        let d = meta.dim;
        // Hidden widths are read from the file.
        let mut hidden = [0usize; 4];
        for (h, (task, _)) in hidden.iter_mut().zip(TASKS) {
            *h = tensors
                .get(&format!("{task}.b1"))
                .and_then(|t| t.dims().first().copied())
                .ok_or_else(|| {
                    EncoderError::Format(format!("{TENSORS_FILE}: no tensor {task}.b1"))
                })?;
        }
        let mut take = |name: String, dims: &[usize]| -> Result<Tensor, EncoderError> {
            let t = tensors
                .remove(&name)
                .ok_or_else(|| EncoderError::Format(format!("{TENSORS_FILE}: no tensor {name}")))?;
            if t.dims() != dims || t.dtype() != DType::F32 {
                return Err(EncoderError::Format(format!(
                    "{TENSORS_FILE}: {name} is {:?} {:?}, expected F32 {dims:?}",
                    t.dtype(),
                    t.dims()
                )));
            }
            Ok(t)
        };
        let mean = take("input.mean".into(), &[d])?;
        let std = take("input.std".into(), &[d])?;
        let mut mlps = Vec::with_capacity(4);
        for ((task, k), h) in TASKS.into_iter().zip(hidden) {
            mlps.push(Mlp {
                w1: take(format!("{task}.w1"), &[h, d])?,
                b1: take(format!("{task}.b1"), &[h])?,
                w2: take(format!("{task}.w2"), &[k, h])?,
                b2: take(format!("{task}.b2"), &[k])?,
            });
        }
        let mlps: [Mlp; 4] = mlps
            .try_into()
            .map_err(|_| EncoderError::Format("four heads".into()))?;
        Ok(Heads {
            mean,
            std,
            mlps,
            meta,
        })
    }

    /// The named tensors of [`TENSORS_FILE`].
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        out.insert("input.mean".to_string(), self.mean.clone());
        out.insert("input.std".to_string(), self.std.clone());
        for ((task, _), m) in TASKS.iter().zip(&self.mlps) {
            out.insert(format!("{task}.w1"), m.w1.clone());
            out.insert(format!("{task}.b1"), m.b1.clone());
            out.insert(format!("{task}.w2"), m.w2.clone());
            out.insert(format!("{task}.b2"), m.b2.clone());
        }
        out
    }

    /// Writes both files into `dir` (the checksum in the metadata is updated).
    pub fn save(&mut self, dir: &Path) -> Result<(), EncoderError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let t_path = dir.join(TENSORS_FILE);
        candle_core::safetensors::save(&self.tensors(), &t_path)?;
        let bytes = std::fs::read(&t_path).map_err(io_err(&t_path))?;
        self.meta.tensors_xxh3 = xxh3_hex(&bytes);
        let meta_path = dir.join(META_FILE);
        let mut json = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| EncoderError::Format(e.to_string()))?;
        json.push(b'\n');
        std::fs::write(&meta_path, json).map_err(io_err(&meta_path))
    }

    /// Standardised embeddings `(e − mean) / std`.
    pub fn standardise(&self, emb: &Tensor) -> candle_core::Result<Tensor> {
        emb.broadcast_sub(&self.mean)?.broadcast_div(&self.std)
    }

    /// MLP logits per task (`[n, k]` as rows) of embeddings `[n, d]`.
    pub fn logits(&self, emb: &Tensor) -> Result<[Vec<Vec<f32>>; 4], EncoderError> {
        let z = self.standardise(emb)?;
        let mut out: [Vec<Vec<f32>>; 4] = Default::default();
        for (o, m) in out.iter_mut().zip(&self.mlps) {
            *o = m.forward(&z)?.to_vec2::<f32>()?;
        }
        Ok(out)
    }

    /// The combined outputs of one text: its MLP logits per task and the
    /// fast tier's raw output.
    pub fn combine(&self, logits: [&[f32]; 4], fast: &RawOutput) -> RawOutput {
        combine(logits, fast, &self.meta.blend)
    }
}

fn log_softmax(z: &[f32]) -> Vec<f32> {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
    z.iter().map(|v| v - lse).collect()
}

const P_MIN: f32 = 1e-7;

fn logit(p: f32) -> f32 {
    let p = p.clamp(P_MIN, 1.0 - P_MIN);
    (p / (1.0 - p)).ln()
}

/// `softmax(log_softmax(mlp) + w · log p_fast)` for a multi-class task.
pub fn blend_classes<const K: usize>(mlp: &[f32], fast: &[f32; K], w: f32) -> [f32; K] {
    let lm = log_softmax(mlp);
    let mut z = [0f32; K];
    for (k, v) in z.iter_mut().enumerate() {
        *v = lm.get(k).copied().unwrap_or(0.0) + w * fast[k].max(P_MIN).ln();
    }
    fast::softmax(&mut z);
    z
}

/// `sigmoid(mlp + w · logit(p_fast))` for a binary task.
pub fn blend_binary(mlp: f32, fast: f32, w: f32) -> f32 {
    fast::sigmoid(mlp + w * logit(fast))
}

/// Combines MLP logits (per task, [`TASKS`] order) with the fast tier's
/// output using `blend`.
pub fn combine(logits: [&[f32]; 4], fast: &RawOutput, blend: &Blend) -> RawOutput {
    RawOutput {
        sentiment: blend_classes(logits[0], &fast.sentiment, blend.sentiment),
        emotion: blend_classes(logits[1], &fast.emotion, blend.emotion),
        toxicity: blend_binary(
            logits[2].first().copied().unwrap_or(0.0),
            fast.toxicity,
            blend.toxicity,
        ),
        churn: blend_binary(
            logits[3].first().copied().unwrap_or(0.0),
            fast.churn,
            blend.churn,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blending_with_weight_zero_is_the_mlp_alone() {
        let p = blend_classes(&[2.0, 0.0, -1.0], &[0.1, 0.1, 0.8], 0.0);
        let mut want = [2.0, 0.0, -1.0];
        fast::softmax(&mut want);
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
        assert!((blend_binary(0.3, 0.99, 0.0) - fast::sigmoid(0.3)).abs() < 1e-6);
    }

    #[test]
    fn the_fast_tier_pulls_the_blend_its_way() {
        let alone = blend_classes(&[0.0, 0.0, 0.0], &[0.05, 0.05, 0.9], 1.0);
        assert!(alone[2] > 0.85, "{alone:?}");
        let s: f32 = alone.iter().sum();
        assert!((s - 1.0).abs() < 1e-5);
        assert!(blend_binary(0.0, 0.9, 1.0) > 0.85);
        // Degenerate fast outputs (0 or 1) stay finite.
        let p = blend_binary(0.0, 1.0, 2.0);
        assert!(p.is_finite() && p <= 1.0);
        let q = blend_classes(&[1.0, 1.0, 1.0], &[0.0, 0.0, 1.0], 1.0);
        assert!(q.iter().all(|v| v.is_finite()));
    }
}
