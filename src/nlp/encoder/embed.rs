//! Sentence embeddings: all-MiniLM-L6-v2 (a 6-layer BERT) run with candle,
//! mean-pooled over the real tokens and L2-normalised, as
//! sentence-transformers does for this model.
//!
//! The tokenizer file shipped with the model pads every text to 128 tokens;
//! [`Embedder`] overrides that to pad each batch to its longest text only
//! (much less work for short posts) and truncates at [`MAX_TOKENS`]. The
//! attention mask keeps the pads out of both the attention and the mean.
//!
//! Model folder (`models/fetch-minilm.sh` writes it): `config.json` (BERT
//! config), `model.safetensors` (F32, names without a `bert.` prefix) and
//! `tokenizer.json`.

use super::EncoderError;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use std::path::Path;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Tokens per text at most (the model was trained on 128-token inputs).
pub const MAX_TOKENS: usize = 128;
/// Bytes of a text that are tokenised at most (128 tokens never need more).
pub const MAX_BYTES: usize = 4096;
/// Weights file of a model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Tokenizer file of a model folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// BERT config file of a model folder.
pub const CONFIG_FILE: &str = "config.json";

/// A BERT encoder and its tokenizer: texts in, unit-length vectors out.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    weights_xxh3: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dim", &self.dim)
            .field("device", &self.device)
            .field("weights_xxh3", &self.weights_xxh3)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EncoderError> {
    std::fs::read(path).map_err(|source| EncoderError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Pads each batch to its longest text and truncates at `max_tokens`,
/// keeping the file's pad token.
pub fn set_batch_padding(tokenizer: &mut Tokenizer, max_tokens: usize) -> Result<(), EncoderError> {
    let mut padding = tokenizer.get_padding().cloned().unwrap_or_default();
    padding.strategy = PaddingStrategy::BatchLongest;
    tokenizer.with_padding(Some(PaddingParams { ..padding }));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..Default::default()
        }))
        .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
    Ok(())
}

impl Embedder {
    /// Loads a model folder (`config.json`, `model.safetensors`, `tokenizer.json`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, EncoderError> {
        for f in [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE] {
            if !dir.join(f).is_file() {
                return Err(EncoderError::Missing { path: dir.join(f) });
            }
        }
        let config: BertConfig = serde_json::from_slice(&read(&dir.join(CONFIG_FILE))?)
            .map_err(|e| EncoderError::Format(format!("{CONFIG_FILE}: {e}")))?;
        let weights = read(&dir.join(WEIGHTS_FILE))?;
        let weights_xxh3 = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&weights));
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, device)?;
        let mut tokenizer = Tokenizer::from_file(dir.join(TOKENIZER_FILE))
            .map_err(|e| EncoderError::Tokenizer(format!("{TOKENIZER_FILE}: {e}")))?;
        set_batch_padding(&mut tokenizer, MAX_TOKENS)?;
        Self::from_parts(&config, vb, tokenizer, device, weights_xxh3)
    }

    /// An embedder from a loaded config, weights and tokenizer (the
    /// tokenizer's padding and truncation are used as they are).
    pub fn from_parts(
        config: &BertConfig,
        vb: VarBuilder,
        tokenizer: Tokenizer,
        device: &Device,
        weights_xxh3: String,
    ) -> Result<Self, EncoderError> {
        let model = BertModel::load(vb, config)?;
        Ok(Embedder {
            model,
            tokenizer,
            device: device.clone(),
            dim: config.hidden_size,
            weights_xxh3,
        })
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// xxh3-64 (hex) of the weights file the model was loaded from.
    pub fn weights_xxh3(&self) -> &str {
        &self.weights_xxh3
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token count of each text after truncation (special tokens included).
    pub fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>, EncoderError> {
        let mut out = Vec::with_capacity(texts.len());
        for t in texts {
            let enc = self
                .tokenizer
                .encode(super::super::truncate(t, MAX_BYTES), true)
                .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
            out.push(enc.get_ids().len());
        }
        Ok(out)
    }

    /// Embeds `texts` as one batch: an `[n, dim]` tensor of unit vectors
    /// (mean over the tokens the attention mask keeps).
    pub fn embed(&self, texts: &[&str]) -> Result<Tensor, EncoderError> {
        if texts.is_empty() {
            return Ok(Tensor::zeros((0, self.dim), DType::F32, &self.device)?);
        }
        let inputs: Vec<&str> = texts
            .iter()
            .map(|t| super::super::truncate(t, MAX_BYTES))
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        let n = encodings.len();
        let len = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0);
        let mut ids = Vec::with_capacity(n * len);
        let mut types = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            if e.get_ids().len() != len {
                return Err(EncoderError::Tokenizer(
                    "the batch is not padded to one length".into(),
                ));
            }
            ids.extend_from_slice(e.get_ids());
            types.extend_from_slice(e.get_type_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let types = Tensor::from_vec(types, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        mean_pool_normalised(&hidden, &mask)
    }

    /// [`Embedder::embed`] as row vectors.
    pub fn embed_rows(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
        Ok(self.embed(texts)?.to_vec2::<f32>()?)
    }
}

/// Mean of `hidden` (`[n, t, d]`) over the positions where `mask` (`[n, t]`,
/// 0/1) is 1, then each row scaled to unit length.
pub fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> Result<Tensor, EncoderError> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    Ok(mean.broadcast_div(&norm)?)
}

/// A tiny BERT with random (seeded) weights and a WordPiece tokenizer over a
/// few dozen words, written as a model folder: the real candle code path in
/// tests and benches that cannot have the downloaded weights.
pub mod tiny {
    use super::*;
    use candle_nn::VarMap;
    use candle_transformers::models::bert::HiddenAct;
    use rand::{Rng, SeedableRng};

    /// Words of the tiny vocabulary (after the five special tokens).
    pub const WORDS: &[&str] = &[
        "i",
        "love",
        "hate",
        "this",
        "the",
        "app",
        "is",
        "great",
        "awful",
        "cancel",
        "my",
        "subscription",
        "refund",
        "happy",
        "sad",
        "angry",
        "you",
        "idiot",
        "service",
        "worst",
        "best",
        "ever",
        "update",
        "broke",
        "wallet",
        "good",
        "bad",
        "day",
        "!",
        "?",
        ".",
        ",",
        "##s",
        "##ing",
        "##ed",
    ];

    /// The tiny model's BERT config.
    pub fn config() -> BertConfig {
        BertConfig {
            vocab_size: 5 + WORDS.len(),
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            hidden_act: HiddenAct::Gelu,
            hidden_dropout_prob: 0.0,
            max_position_embeddings: MAX_TOKENS,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            position_embedding_type: Default::default(),
            use_cache: false,
            classifier_dropout: None,
            model_type: Some("bert".into()),
        }
    }

    /// The tiny model's tokenizer (BERT normaliser, pre-tokenizer and
    /// `[CLS] … [SEP]` post-processing, WordPiece), padding to 128 like the
    /// real file.
    pub fn tokenizer() -> Result<Tokenizer, EncoderError> {
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
        let vocab: serde_json::Map<String, serde_json::Value> = specials
            .iter()
            .chain(WORDS)
            .enumerate()
            .map(|(i, w)| (w.to_string(), serde_json::json!(i)))
            .collect();
        let added: Vec<serde_json::Value> = specials
            .iter()
            .enumerate()
            .map(|(i, w)| {
                serde_json::json!({"id": i, "content": w, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let json = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": {"strategy": {"Fixed": MAX_TOKENS}, "direction": "Right",
                "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
            "added_tokens": added,
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
            "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                "vocab": vocab},
        });
        json.to_string()
            .parse::<Tokenizer>()
            .map_err(|e| EncoderError::Tokenizer(e.to_string()))
    }

    /// Writes the tiny model (seeded random weights) into `dir` as a model
    /// folder [`Embedder::load`] reads. The tokenizer file pads to 128, like
    /// the real one.
    pub fn write(dir: &Path, seed: u64) -> Result<(), EncoderError> {
        let cfg = config();
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        // Creates every variable the model reads (zeros), then fills them.
        BertModel::load(vb, &cfg)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let data = varmap
            .data()
            .lock()
            .map_err(|_| EncoderError::Format("tiny model: poisoned variable map".into()))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let n = var.elem_count();
            let values: Vec<f32> = if name.ends_with("LayerNorm.weight") {
                (0..n).map(|_| 1.0 + rng.gen_range(-0.1..0.1)).collect()
            } else {
                (0..n).map(|_| rng.gen_range(-0.2..0.2)).collect()
            };
            var.set(&Tensor::from_vec(values, var.shape(), &device)?)?;
        }
        drop(data);
        std::fs::create_dir_all(dir).map_err(|source| EncoderError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        varmap.save(dir.join(WEIGHTS_FILE))?;
        let config_json = serde_json::json!({
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.hidden_size,
            "num_hidden_layers": cfg.num_hidden_layers,
            "num_attention_heads": cfg.num_attention_heads,
            "intermediate_size": cfg.intermediate_size,
            "hidden_act": "gelu",
            "hidden_dropout_prob": cfg.hidden_dropout_prob,
            "max_position_embeddings": cfg.max_position_embeddings,
            "type_vocab_size": cfg.type_vocab_size,
            "initializer_range": cfg.initializer_range,
            "layer_norm_eps": cfg.layer_norm_eps,
            "pad_token_id": cfg.pad_token_id,
            "model_type": "bert",
        });
        let write = |name: &str, bytes: Vec<u8>| {
            std::fs::write(dir.join(name), bytes).map_err(|source| EncoderError::Io {
                path: dir.join(name),
                source,
            })
        };
        write(CONFIG_FILE, config_json.to_string().into_bytes())?;
        let tok = tokenizer()?
            .to_string(false)
            .map_err(|e| EncoderError::Tokenizer(e.to_string()))?;
        write(TOKENIZER_FILE, tok.into_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (tempfile::TempDir, Embedder) {
        let dir = tempfile::tempdir().unwrap();
        tiny::write(dir.path(), 7).unwrap();
        let e = Embedder::load(dir.path(), &Device::Cpu).unwrap();
        (dir, e)
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn pads_are_masked_out_of_the_mean() {
        let (_d, e) = tiny();
        let short = "i love this app";
        let long = "the update broke my wallet, worst service ever! i hate this app, cancel my subscription";
        let alone = e.embed_rows(&[short]).unwrap();
        let batch = e.embed_rows(&[long, short, "good day"]).unwrap();
        assert_eq!(batch.len(), 3);
        assert!(
            close(&alone[0], &batch[1], 1e-5),
            "{:?}\n{:?}",
            alone[0],
            batch[1]
        );
        // Unit length, and different texts give different vectors.
        let n: f32 = batch[0].iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4, "{n}");
        assert!(!close(&batch[0], &batch[1], 1e-3));
    }

    #[test]
    fn the_file_padding_is_overridden_and_long_texts_truncated() {
        let (_d, e) = tiny();
        let counts = e
            .token_counts(&["i love this", &"good day ".repeat(400)])
            .unwrap();
        assert_eq!(counts, [5, MAX_TOKENS]);
        let rows = e
            .embed_rows(&[&"bad ".repeat(3000), "", "東京 😂"])
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows
            .iter()
            .all(|r| r.len() == 32 && r.iter().all(|x| x.is_finite())));
        assert_eq!(e.embed(&[]).unwrap().dims(), [0, 32]);
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Embedder::load(dir.path(), &Device::Cpu).unwrap_err();
        assert!(matches!(err, EncoderError::Missing { .. }), "{err}");
        assert!(err.to_string().contains(CONFIG_FILE), "{err}");
    }

    #[test]
    fn the_tiny_model_is_deterministic() {
        let (_a, e1) = tiny();
        let (_b, e2) = tiny();
        assert_eq!(e1.weights_xxh3(), e2.weights_xxh3());
        assert_eq!(
            e1.embed_rows(&["i love this"]).unwrap(),
            e2.embed_rows(&["i love this"]).unwrap()
        );
    }
}
