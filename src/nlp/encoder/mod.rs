//! The encoder classifier tier (`classifier.tier = "encoder"`):
//! all-MiniLM-L6-v2 sentence embeddings (run with candle) read by four small
//! trained MLP heads, each blended with the fast tier's output for the same
//! task. It gives the same outputs as the fast tier (sentiment, emotion,
//! toxicity, churn risk) under the model id [`MODEL_ID`].
//!
//! - [`embed`]: tokenisation (batch-longest padding, 128-token truncation),
//!   the BERT forward pass and masked mean pooling ([`Embedder`]).
//! - [`heads`]: the MLP heads, their files and the blend with the fast tier
//!   ([`Heads`]).
//! - [`train`]: `starling train-encoder`, which trains the heads on the fast
//!   tier's data and writes `models/encoder/`.
//!
//! Files: the MiniLM weights are not in the repository; `models/fetch-minilm.sh`
//! puts them in `models/cache/all-minilm-l6-v2/` (never fetched at run
//! time). The heads are small committed files in `models/encoder/`.
//!
//! [`EncoderClassifier`] is `Send + Sync` and immutable; inference is a
//! blocking call (tens of milliseconds per batch on a CPU): the pipeline
//! runs it through the batching worker in [`crate::actors::inference`].

pub mod embed;
pub mod heads;
pub mod train;

use crate::config::EncoderDevice;
use crate::nlp::fast::{Classification, FastClassifier, FastModelError, RawOutput};
use candle_core::{Device, Tensor};
pub use embed::Embedder;
pub use heads::Heads;
use std::path::{Path, PathBuf};

/// Model id of the tier (encoder + heads format and version).
pub const MODEL_ID: &str = "minilm-l6-heads-v1";
/// The sentence encoder.
pub const ENCODER_NAME: &str = "all-MiniLM-L6-v2";
/// The script that fetches the encoder weights.
pub const FETCH_SCRIPT: &str = "models/fetch-minilm.sh";

/// Why the encoder tier could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A model or heads file is not there.
    #[error("{path} is missing: run {FETCH_SCRIPT} for the MiniLM weights (the heads are in models/encoder, or train them with `starling train-encoder`)")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not in the expected format.
    #[error("invalid encoder files: {0}")]
    Format(String),
    /// The heads were trained with other encoder weights or another fast model.
    #[error("{0}: retrain the heads with `starling train-encoder`")]
    Mismatch(String),
    /// Tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A tensor operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The requested device cannot be used.
    #[error("device: {0}")]
    Device(String),
    /// The fast model blended in could not be loaded.
    #[error(transparent)]
    Fast(#[from] FastModelError),
}

/// The candle device for `kind` (`cuda` needs a build with the `cuda`
/// feature and a GPU).
pub fn device(kind: EncoderDevice) -> Result<Device, EncoderError> {
    match kind {
        EncoderDevice::Cpu => Ok(Device::Cpu),
        EncoderDevice::Cuda => Device::new_cuda(0).map_err(|e| {
            EncoderError::Device(format!(
                "cuda: {e} (the `cuda` cargo feature and an NVIDIA GPU are needed)"
            ))
        }),
    }
}

/// The encoder tier: embedder, heads and the fast model they blend with.
#[derive(Debug)]
pub struct EncoderClassifier {
    embedder: Embedder,
    heads: Heads,
    fast: FastClassifier,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EncoderClassifier>();
};

impl EncoderClassifier {
    /// Loads the encoder from `model_dir`, the heads from `heads_dir`, and
    /// blends with the fast model built into the binary.
    pub fn load(
        model_dir: &Path,
        heads_dir: &Path,
        kind: EncoderDevice,
    ) -> Result<Self, EncoderError> {
        let device = device(kind)?;
        // Heads first: they are small, and a missing file is named sooner.
        let heads = Heads::load(heads_dir, &device)?;
        let embedder = Embedder::load(model_dir, &device)?;
        Self::from_parts(embedder, heads, FastClassifier::embedded()?)
    }

    /// Puts the parts together, checking that the heads were trained with
    /// this encoder and this fast model.
    pub fn from_parts(
        embedder: Embedder,
        heads: Heads,
        fast: FastClassifier,
    ) -> Result<Self, EncoderError> {
        let m = &heads.meta;
        if m.dim != embedder.dim() {
            return Err(EncoderError::Mismatch(format!(
                "heads read {}-wide embeddings, the encoder gives {}",
                m.dim,
                embedder.dim()
            )));
        }
        if m.encoder_weights_xxh3 != embedder.weights_xxh3() {
            return Err(EncoderError::Mismatch(format!(
                "the heads were trained on encoder weights {} and these are {}",
                m.encoder_weights_xxh3,
                embedder.weights_xxh3()
            )));
        }
        if m.fast_weights_xxh3 != fast.meta().weights_xxh3 {
            return Err(EncoderError::Mismatch(format!(
                "the heads were blended with fast model weights {} and this build has {}",
                m.fast_weights_xxh3,
                fast.meta().weights_xxh3
            )));
        }
        Ok(EncoderClassifier {
            embedder,
            heads,
            fast,
        })
    }

    /// Model id (`minilm-l6-heads-v1`).
    pub fn model_id(&self) -> &str {
        &self.heads.meta.model_id
    }

    /// The embedder.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The heads.
    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    /// The fast model blended in.
    pub fn fast(&self) -> &FastClassifier {
        &self.fast
    }

    /// Raw outputs of texts whose embeddings (`[n, d]`) are already computed.
    pub fn raw_from_embeddings(
        &self,
        texts: &[&str],
        emb: &Tensor,
    ) -> Result<Vec<RawOutput>, EncoderError> {
        let logits = self.heads.logits(emb)?;
        if logits.iter().any(|l| l.len() != texts.len()) {
            return Err(EncoderError::Format(format!(
                "{} embeddings for {} texts",
                logits[0].len(),
                texts.len()
            )));
        }
        Ok(texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let fast = self.fast.classify_raw(t);
                self.heads.combine(
                    [&logits[0][i], &logits[1][i], &logits[2][i], &logits[3][i]],
                    &fast,
                )
            })
            .collect())
    }

    /// Unrounded outputs of `texts`, run as one batch.
    pub fn classify_raw_batch(&self, texts: &[&str]) -> Result<Vec<RawOutput>, EncoderError> {
        let emb = self.embedder.embed(texts)?;
        self.raw_from_embeddings(texts, &emb)
    }

    /// Outputs of `texts`, run as one batch.
    pub fn classify_batch(&self, texts: &[&str]) -> Result<Vec<Classification>, EncoderError> {
        Ok(self
            .classify_raw_batch(texts)?
            .iter()
            .map(Classification::from_raw)
            .collect())
    }

    /// Unrounded outputs of any number of texts: sorted by length into
    /// batches of `batch` (less padding), returned in input order.
    pub fn classify_raw_many(
        &self,
        texts: &[&str],
        batch: usize,
    ) -> Result<Vec<RawOutput>, EncoderError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out: Vec<Option<RawOutput>> = vec![None; texts.len()];
        for chunk in order.chunks(batch.max(1)) {
            let group: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, r) in chunk.iter().zip(self.classify_raw_batch(&group)?) {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.ok_or_else(|| EncoderError::Format("a text was not classified".into())))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A complete encoder tier over the tiny random BERT, for tests.
    use super::*;
    use crate::nlp::encoder::heads::{Blend, HeadsMeta, Mlp, TASKS};
    use candle_core::DType;
    use rand::{Rng, SeedableRng};

    /// Random heads of width `h` over `d`-wide embeddings for `embedder`.
    pub fn random_heads(embedder: &Embedder, fast: &FastClassifier, h: usize, seed: u64) -> Heads {
        let d = embedder.dim();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut t = |dims: &[usize]| {
            let n: usize = dims.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect();
            Tensor::from_vec(v, dims, &Device::Cpu).expect("shape")
        };
        let mlps = TASKS.map(|(_, k)| Mlp {
            w1: t(&[h, d]),
            b1: t(&[h]),
            w2: t(&[k, h]),
            b2: t(&[k]),
        });
        Heads {
            mean: Tensor::zeros(d, DType::F32, &Device::Cpu).expect("zeros"),
            std: Tensor::ones(d, DType::F32, &Device::Cpu).expect("ones"),
            mlps,
            meta: HeadsMeta {
                format: heads::FORMAT.into(),
                format_version: heads::FORMAT_VERSION,
                model_id: MODEL_ID.into(),
                encoder: "tiny-random-bert".into(),
                encoder_weights_xxh3: embedder.weights_xxh3().into(),
                dim: d,
                fast_model_id: fast.model_id().into(),
                fast_weights_xxh3: fast.meta().weights_xxh3.clone(),
                blend: Blend {
                    sentiment: 0.5,
                    emotion: 0.5,
                    toxicity: 0.5,
                    churn: 0.5,
                },
                tensors_xxh3: String::new(),
                training: serde_json::Value::Null,
            },
        }
    }

    /// A model folder and a heads folder for the tiny tier, in `dir`.
    pub fn write_tiny_tier(dir: &Path) -> (PathBuf, PathBuf) {
        let model = dir.join("model");
        let heads_dir = dir.join("heads");
        embed::tiny::write(&model, 11).expect("tiny model");
        let e = Embedder::load(&model, &Device::Cpu).expect("tiny model loads");
        let fast = FastClassifier::embedded().expect("fast");
        let mut h = random_heads(&e, &fast, 8, 5);
        h.save(&heads_dir).expect("heads saved");
        (model, heads_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn the_tiny_tier_classifies_batches_like_single_texts() {
        let dir = tempfile::tempdir().unwrap();
        let (model, heads) = write_tiny_tier(dir.path());
        let clf = EncoderClassifier::load(&model, &heads, EncoderDevice::Cpu).unwrap();
        assert_eq!(clf.model_id(), MODEL_ID);
        let texts = [
            "i love this app",
            "worst service ever, cancel my subscription and refund",
            "",
            "😂",
        ];
        let batch = clf.classify_raw_batch(&texts).unwrap();
        for (t, b) in texts.iter().zip(&batch) {
            let one = clf.classify_raw_batch(&[t]).unwrap();
            assert!((one[0].sentiment[0] - b.sentiment[0]).abs() < 1e-5);
            assert!((one[0].churn - b.churn).abs() < 1e-5);
            let s: f32 = b.sentiment.iter().sum();
            let e: f32 = b.emotion.iter().sum();
            assert!((s - 1.0).abs() < 1e-4 && (e - 1.0).abs() < 1e-4, "{b:?}");
            assert!((0.0..=1.0).contains(&b.toxicity) && (0.0..=1.0).contains(&b.churn));
        }
        let many = clf.classify_raw_many(&texts, 3).unwrap();
        for (a, b) in many.iter().zip(&batch) {
            assert!((a.emotion[3] - b.emotion[3]).abs() < 1e-5);
        }
        let c = clf.classify_batch(&texts[..1]).unwrap();
        assert_eq!(c[0].to_scores(clf.model_id()).model, MODEL_ID);
    }

    #[test]
    fn heads_round_trip_and_refuse_corruption_or_other_weights() {
        let dir = tempfile::tempdir().unwrap();
        let (model, heads_dir) = write_tiny_tier(dir.path());
        let h = Heads::load(&heads_dir, &Device::Cpu).unwrap();
        assert_eq!(h.meta.blend.sentiment, 0.5);
        // Other encoder weights: refused by name.
        let other = dir.path().join("other");
        embed::tiny::write(&other, 99).unwrap();
        let err = EncoderClassifier::load(&other, &heads_dir, EncoderDevice::Cpu).unwrap_err();
        assert!(matches!(err, EncoderError::Mismatch(_)), "{err}");
        // A flipped byte in the tensors file: refused.
        let p = heads_dir.join(heads::TENSORS_FILE);
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x5a;
        std::fs::write(&p, bytes).unwrap();
        let err = EncoderClassifier::load(&model, &heads_dir, EncoderDevice::Cpu).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        // Missing heads name the fetch script and the file.
        let err = EncoderClassifier::load(&model, &dir.path().join("none"), EncoderDevice::Cpu)
            .unwrap_err();
        assert!(err.to_string().contains(FETCH_SCRIPT) && err.to_string().contains("heads.json"));
    }

    #[test]
    fn cuda_is_refused_clearly_without_a_gpu_build() {
        if cfg!(feature = "cuda") {
            return;
        }
        let err = device(EncoderDevice::Cuda).unwrap_err();
        assert!(err.to_string().contains("cuda"), "{err}");
    }
}
