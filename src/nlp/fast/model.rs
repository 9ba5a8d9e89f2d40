//! The on-disk model format: a directory with three files.
//!
//! - `model.json`: [`ModelMeta`]: format version, model id, feature
//!   settings, column names, per-column scale and bias, the dense weight
//!   matrix, checksums of the two binary files and the training record
//!   (command, seed, data, dev metrics).
//! - `weights.i8`: `2^bits × 16` signed bytes, row-major (one row per hash
//!   bucket, one byte per output column); the weight of bucket `r`, column `c`
//!   is `weights[r * 16 + c] as i8 as f32 * scale[c]`.
//! - `lexicon.bin`: the hashed lexicon table (see [`super::lexicon`]).

use super::features::{FeatureConfig, N_DENSE};
use super::lexicon::Lexicon;
use super::{FastClassifier, FastModelError, COLS};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::Path;
use xxhash_rust::xxh3::xxh3_64;

/// `format` value of `model.json`.
pub const FORMAT: &str = "starling-fast-linear";
/// `format_version` this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// File names inside a model directory.
pub const META_FILE: &str = "model.json";
/// Weights file name.
pub const WEIGHTS_FILE: &str = "weights.i8";
/// Lexicon file name.
pub const LEXICON_FILE: &str = "lexicon.bin";

/// The contents of `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Model name and version (`fast-linear-v1`).
    pub model_id: String,
    /// Tokenisation and hashing settings.
    pub features: FeatureConfig,
    /// Name of each of the 16 output columns (`sentiment:negative`, …, `unused`).
    pub columns: Vec<String>,
    /// Per-column dequantisation scale of `weights.i8`.
    pub scale: Vec<f32>,
    /// Per-column bias.
    pub bias: Vec<f32>,
    /// Names of the dense features, in order.
    pub dense_features: Vec<String>,
    /// Dense weights, one row of 16 columns per dense feature.
    pub dense: Vec<Vec<f32>>,
    /// xxh3-64 of `weights.i8`, hex.
    pub weights_xxh3: String,
    /// xxh3-64 of `lexicon.bin`, hex.
    pub lexicon_xxh3: String,
    /// How the model was trained and how it scored (free-form record).
    #[serde(default)]
    pub training: serde_json::Value,
}

type Parsed = ([f32; COLS], [f32; COLS], [[f32; COLS]; N_DENSE]);

impl ModelMeta {
    /// Checks the metadata against the binary parts and returns the numeric arrays.
    pub(crate) fn validate(
        &self,
        weights: &[u8],
        lexicon: &Lexicon,
    ) -> Result<Parsed, FastModelError> {
        let bad = |why: String| Err(FastModelError::Format(why));
        if self.format != FORMAT || self.format_version != FORMAT_VERSION {
            return bad(format!(
                "format {} v{} (this build reads {FORMAT} v{FORMAT_VERSION})",
                self.format, self.format_version
            ));
        }
        let f = &self.features;
        if !(4..=24).contains(&f.bits) {
            return bad(format!("bits {} out of range 4..=24", f.bits));
        }
        if f.char_min > f.char_max || f.char_max > 8 || f.max_bytes == 0 {
            return bad("invalid n-gram or length settings".into());
        }
        let want = (1usize << f.bits) * COLS;
        if weights.len() != want {
            return bad(format!(
                "weights.i8 has {} bytes, expected {want}",
                weights.len()
            ));
        }
        if format!("{:016x}", xxh3_64(weights)) != self.weights_xxh3 {
            return bad("weights.i8 checksum mismatch".into());
        }
        if format!("{:016x}", xxh3_64(&lexicon.to_bytes())) != self.lexicon_xxh3 {
            return bad("lexicon.bin checksum mismatch".into());
        }
        let arr = |v: &[f32], what: &str| -> Result<[f32; COLS], FastModelError> {
            let a: [f32; COLS] = v
                .try_into()
                .map_err(|_| FastModelError::Format(format!("{what} needs {COLS} values")))?;
            if a.iter().all(|x| x.is_finite()) {
                Ok(a)
            } else {
                Err(FastModelError::Format(format!("{what} is not finite")))
            }
        };
        let scale = arr(&self.scale, "scale")?;
        let bias = arr(&self.bias, "bias")?;
        if self.dense.len() != N_DENSE {
            return bad(format!("dense needs {N_DENSE} rows"));
        }
        let mut dense = [[0f32; COLS]; N_DENSE];
        for (d, row) in self.dense.iter().enumerate() {
            dense[d] = arr(row, "dense row")?;
        }
        if self.columns.len() != COLS {
            return bad(format!("columns needs {COLS} names"));
        }
        Ok((scale, bias, dense))
    }
}

/// Loads a model directory.
pub(crate) fn load(dir: &Path) -> Result<FastClassifier, FastModelError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| FastModelError::Io { path, source })
    };
    let meta: ModelMeta = serde_json::from_slice(&read(META_FILE)?)?;
    let weights = read(WEIGHTS_FILE)?;
    let lexicon = Lexicon::from_bytes(&read(LEXICON_FILE)?)?;
    FastClassifier::from_parts(meta, Cow::Owned(weights), lexicon)
}

/// Writes a model directory (creating it).
pub(crate) fn save(model: &FastClassifier, dir: &Path) -> Result<(), FastModelError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| FastModelError::Io { path, source })
    };
    std::fs::create_dir_all(dir).map_err(|source| FastModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write(WEIGHTS_FILE, &model.weights)?;
    write(LEXICON_FILE, &model.lexicon.to_bytes())?;
    let mut json = serde_json::to_vec_pretty(&model.meta)?;
    json.push(b'\n');
    write(META_FILE, &json)
}

/// Builds metadata for freshly trained parts (checksums filled in).
pub(crate) fn new_meta(
    features: FeatureConfig,
    columns: Vec<String>,
    (scale, bias, dense): Parsed,
    weights: &[u8],
    lexicon: &Lexicon,
    training: serde_json::Value,
) -> ModelMeta {
    ModelMeta {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        model_id: super::MODEL_ID.to_string(),
        features,
        columns,
        scale: scale.to_vec(),
        bias: bias.to_vec(),
        dense_features: super::features::DENSE_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        dense: dense.iter().map(|r| r.to_vec()).collect(),
        weights_xxh3: format!("{:016x}", xxh3_64(weights)),
        lexicon_xxh3: format!("{:016x}", xxh3_64(&lexicon.to_bytes())),
        training,
    }
}

/// Quantises a row-major `rows × COLS` f32 table to signed bytes with one
/// symmetric scale per column (the column's largest magnitude maps to 127).
pub(crate) fn quantize(table: &[f32]) -> (Vec<u8>, [f32; COLS]) {
    let mut max = [0f32; COLS];
    for row in table.chunks_exact(COLS) {
        for c in 0..COLS {
            max[c] = max[c].max(row[c].abs());
        }
    }
    let mut scale = [0f32; COLS];
    for c in 0..COLS {
        scale[c] = if max[c] > 0.0 { max[c] / 127.0 } else { 1.0 };
    }
    let mut out = Vec::with_capacity(table.len());
    for row in table.chunks_exact(COLS) {
        for c in 0..COLS {
            let q = (row[c] / scale[c]).round().clamp(-127.0, 127.0) as i8;
            out.push(q as u8);
        }
    }
    (out, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_round_trips_within_half_a_step() {
        let table: Vec<f32> = (0..64 * COLS)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
            .collect();
        let (q, scale) = quantize(&table);
        for (i, (&b, &w)) in q.iter().zip(&table).enumerate() {
            let back = b as i8 as f32 * scale[i % COLS];
            assert!((back - w).abs() <= scale[i % COLS] / 2.0 + 1e-6);
        }
    }
}
