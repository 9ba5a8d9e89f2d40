//! The fast classifier tier: one trained linear model over hashed features
//! that gives every post a sentiment (3 classes), an emotion (7 classes), a
//! toxicity and a churn risk, on one CPU core at well over 100,000 posts/s.
//!
//! - [`features`]: tokenisation and feature hashing into a reused buffer.
//! - [`lexicon`]: the hashed lexicon table (VADER, AFINN, emoji rankings,
//!   negations, churn cues) built at training time and stored with the model.
//! - [`train`]: loading the labelled data sets and training the four heads
//!   (`starling train`).
//! - [`eval`]: labelled-file readers and metrics (`starling eval`).
//! - [`cmd`]: the `classify`, `eval` and `train` subcommands.
//!
//! The model is one table of `2^bits` rows × 16 signed bytes (one column per
//! output: 3 sentiment, 7 emotion, toxicity, churn, 4 unused), a per-column
//! scale, a bias, and a small dense weight matrix for the lexicon and count
//! features. A post's logits are `bias + scale · Σ rows / √(number of
//! hashed features) + dense · W`: a softmax over the sentiment and emotion
//! columns, a sigmoid for toxicity and churn. The churn head also reads the
//! sentiment head's p(negative) as a dense feature, so negative sentiment
//! raises churn risk by a weight learned from the churn data.
//!
//! [`FastClassifier`] is `Send + Sync` and immutable; scratch buffers are
//! per thread. Share one behind an `Arc`.

pub mod cmd;
pub mod eval;
pub mod features;
pub mod lexicon;
mod model;
pub mod train;

use crate::domain::{Emotion, Scores, Sentiment, SentimentLabel, SentimentProbs};
use features::{Scratch, DENSE_P_NEG, N_DENSE};
use lexicon::Lexicon;
pub use model::ModelMeta;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// Name and version of the model format and architecture.
pub const MODEL_ID: &str = "fast-linear-v1";
/// Output columns per hash bucket (12 used, padded to 16 bytes).
pub const COLS: usize = 16;
/// Sentiment classes, in column order.
pub const SENTIMENT_LABELS: [&str; 3] = ["negative", "neutral", "positive"];
/// Emotion classes, in column order (and JSON field order).
pub const EMOTION_LABELS: [&str; 7] = [
    "anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral",
];
/// First sentiment column.
pub const COL_SENTIMENT: usize = 0;
/// First emotion column.
pub const COL_EMOTION: usize = 3;
/// Toxicity column.
pub const COL_TOXICITY: usize = 10;
/// Churn column.
pub const COL_CHURN: usize = 11;

const EMBEDDED_META: &[u8] = include_bytes!("../../../models/fast/model.json");
const EMBEDDED_WEIGHTS: &[u8] = include_bytes!("../../../models/fast/weights.i8");
const EMBEDDED_LEXICON: &[u8] = include_bytes!("../../../models/fast/lexicon.bin");

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FastModelError {
    /// A model file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `model.json` is not valid JSON for this format.
    #[error("model.json: {0}")]
    Json(#[from] serde_json::Error),
    /// The files do not form a valid model.
    #[error("invalid fast model: {0}")]
    Format(String),
}

/// Sentiment probabilities: the pipeline's own type (same JSON fields).
pub type Probs3 = SentimentProbs;

/// Sentiment of a post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentOut {
    /// The most probable class.
    pub label: SentimentLabel,
    /// p(positive) − p(negative), in −1..1.
    pub score: f64,
    /// Class probabilities (sum to 1 up to rounding).
    pub probs: Probs3,
}

/// Emotion probabilities (a distribution over the seven classes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmotionProbs {
    /// Anger.
    pub anger: f64,
    /// Disgust.
    pub disgust: f64,
    /// Fear.
    pub fear: f64,
    /// Joy.
    pub joy: f64,
    /// Sadness.
    pub sadness: f64,
    /// Surprise.
    pub surprise: f64,
    /// No emotion.
    pub neutral: f64,
}

impl EmotionProbs {
    /// The probabilities in [`EMOTION_LABELS`] order.
    pub fn to_array(&self) -> [f64; 7] {
        [
            self.anger,
            self.disgust,
            self.fear,
            self.joy,
            self.sadness,
            self.surprise,
            self.neutral,
        ]
    }

    /// (label, probability) pairs in [`EMOTION_LABELS`] order.
    pub fn to_vec(&self) -> Vec<(String, f64)> {
        EMOTION_LABELS
            .iter()
            .zip(self.to_array())
            .map(|(l, p)| (l.to_string(), p))
            .collect()
    }
}

/// Emotion of a post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmotionOut {
    /// The most probable class, one of [`EMOTION_LABELS`].
    pub label: String,
    /// Class probabilities.
    pub probs: EmotionProbs,
}

/// Everything the fast tier says about one post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Sentiment.
    pub sentiment: SentimentOut,
    /// Emotion.
    pub emotion: EmotionOut,
    /// Probability that the post is offensive/toxic, 0..1.
    pub toxicity: f64,
    /// Probability that the author says they are leaving, cancelling,
    /// switching or asking for a refund, 0..1.
    pub churn_risk: f64,
}

impl Classification {
    /// Labels, scores and rounded probabilities from a head's raw outputs
    /// (any tier that computes [`RawOutput`]).
    pub fn from_raw(raw: &RawOutput) -> Classification {
        let [neg, neu, pos] = raw.sentiment;
        let label = match argmax(&raw.sentiment) {
            0 => SentimentLabel::Negative,
            1 => SentimentLabel::Neutral,
            _ => SentimentLabel::Positive,
        };
        let e = raw.emotion;
        Classification {
            sentiment: SentimentOut {
                label,
                score: round6(pos - neg).clamp(-1.0, 1.0),
                probs: Probs3 {
                    negative: round6(neg),
                    neutral: round6(neu),
                    positive: round6(pos),
                },
            },
            emotion: EmotionOut {
                label: EMOTION_LABELS[argmax(&e)].to_string(),
                probs: EmotionProbs {
                    anger: round6(e[0]),
                    disgust: round6(e[1]),
                    fear: round6(e[2]),
                    joy: round6(e[3]),
                    sadness: round6(e[4]),
                    surprise: round6(e[5]),
                    neutral: round6(e[6]),
                },
            },
            toxicity: round6(raw.toxicity),
            churn_risk: round6(raw.churn),
        }
    }

    /// The pipeline's [`Scores`] for this classification, produced by `model`.
    pub fn to_scores(&self, model: &str) -> Scores {
        Scores {
            sentiment: Sentiment {
                label: self.sentiment.label,
                score: self.sentiment.score,
                probs: Some(self.sentiment.probs),
            },
            emotion: Some(Emotion {
                label: self.emotion.label.clone(),
                probs: self.emotion.probs.to_vec().into_iter().collect(),
            }),
            toxicity: Some(self.toxicity),
            churn_risk: Some(self.churn_risk),
            model: model.to_string(),
        }
    }
}

/// The fast classifier: hashed-feature linear model, four heads.
#[derive(Debug, Clone)]
pub struct FastClassifier {
    meta: ModelMeta,
    weights: Cow<'static, [u8]>,
    lexicon: Lexicon,
    scale: [f32; COLS],
    bias: [f32; COLS],
    dense: [[f32; COLS]; N_DENSE],
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FastClassifier>();
};

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Raw per-column outputs: probabilities for every head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawOutput {
    /// Sentiment probabilities (negative, neutral, positive).
    pub sentiment: [f32; 3],
    /// Emotion probabilities in [`EMOTION_LABELS`] order.
    pub emotion: [f32; 7],
    /// p(toxic).
    pub toxicity: f32,
    /// p(churn).
    pub churn: f32,
}

fn round6(x: f32) -> f64 {
    (x as f64 * 1e6).round() / 1e6
}

pub(crate) fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x > xs[best] {
            best = i;
        }
    }
    best
}

pub(crate) fn softmax(z: &mut [f32]) {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl FastClassifier {
    /// The model shipped in the binary (`models/fast/` at build time).
    pub fn embedded() -> Result<Self, FastModelError> {
        Self::from_parts(
            serde_json::from_slice(EMBEDDED_META)?,
            Cow::Borrowed(EMBEDDED_WEIGHTS),
            Lexicon::from_bytes(EMBEDDED_LEXICON)?,
        )
    }

    /// Loads a model directory written by `starling train`.
    pub fn load(dir: &Path) -> Result<Self, FastModelError> {
        model::load(dir)
    }

    /// Model name and version, e.g. `fast-linear-v1`.
    pub fn model_id(&self) -> &str {
        &self.meta.model_id
    }

    /// The model's metadata (`model.json`): features, weights, training record.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// Writes the model to `dir` (`model.json`, `weights.i8`, `lexicon.bin`).
    pub fn save(&self, dir: &Path) -> Result<(), FastModelError> {
        model::save(self, dir)
    }

    pub(crate) fn from_parts(
        meta: ModelMeta,
        weights: Cow<'static, [u8]>,
        lexicon: Lexicon,
    ) -> Result<Self, FastModelError> {
        let (scale, bias, dense) = meta.validate(&weights, &lexicon)?;
        Ok(FastClassifier {
            meta,
            weights,
            lexicon,
            scale,
            bias,
            dense,
        })
    }

    /// Classifies one text.
    pub fn classify(&self, text: &str) -> Classification {
        Classification::from_raw(&self.classify_raw(text))
    }

    /// Classifies one text, returning the unrounded probabilities.
    pub fn classify_raw(&self, text: &str) -> RawOutput {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.run(text, &mut s),
            Err(_) => self.run(text, &mut Scratch::default()),
        })
    }

    fn run(&self, text: &str, s: &mut Scratch) -> RawOutput {
        features::extract(text, &self.meta.features, &self.lexicon, s);
        let (rows, _) = self.weights.as_chunks::<COLS>();
        let mut acc = [0i32; COLS];
        for (i, &id) in s.ids.iter().enumerate() {
            if let Some(&ahead) = s.ids.get(i + PREFETCH_DISTANCE) {
                prefetch(&rows[ahead as usize]);
            }
            let row = &rows[id as usize];
            for c in 0..COLS {
                acc[c] += row[c] as i8 as i32;
            }
        }
        let norm = if s.ids.is_empty() {
            0.0
        } else {
            1.0 / (s.ids.len() as f32).sqrt()
        };
        let mut z = [0f32; COLS];
        for c in 0..COLS {
            z[c] = self.bias[c] + acc[c] as f32 * self.scale[c] * norm;
        }
        // Sentiment first: its p(negative) is a dense feature of the churn head.
        s.dense[DENSE_P_NEG] = 0.0;
        let mut sent = [0f32; 3];
        for (k, v) in sent.iter_mut().enumerate() {
            let c = COL_SENTIMENT + k;
            *v = z[c] + dot_col(&s.dense, &self.dense, c);
        }
        softmax(&mut sent);
        s.dense[DENSE_P_NEG] = sent[0];
        let mut emo = [0f32; 7];
        for (k, v) in emo.iter_mut().enumerate() {
            let c = COL_EMOTION + k;
            *v = z[c] + dot_col(&s.dense, &self.dense, c);
        }
        softmax(&mut emo);
        let tox = sigmoid(z[COL_TOXICITY] + dot_col(&s.dense, &self.dense, COL_TOXICITY));
        let churn = sigmoid(z[COL_CHURN] + dot_col(&s.dense, &self.dense, COL_CHURN));
        RawOutput {
            sentiment: sent,
            emotion: emo,
            toxicity: tox,
            churn,
        }
    }
}

/// How many features ahead the weight rows are prefetched: the table is
/// larger than L2, and the rows are read in hash (random) order.
const PREFETCH_DISTANCE: usize = 12;

#[inline(always)]
fn prefetch(row: &[u8; COLS]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults and reads nothing
    // observable, and `row` is a valid reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            row.as_ptr() as *const i8
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

#[inline]
fn dot_col(x: &[f32; N_DENSE], w: &[[f32; COLS]; N_DENSE], c: usize) -> f32 {
    let mut sum = 0.0;
    for d in 0..N_DENSE {
        sum += x[d] * w[d][c];
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> FastClassifier {
        FastClassifier::embedded().expect("embedded model")
    }

    #[test]
    fn embedded_model_loads_and_is_named() {
        let m = model();
        assert_eq!(m.model_id(), MODEL_ID);
    }

    #[test]
    fn embedded_model_reads_clear_cases() {
        let m = model();
        let pos = m.classify("I love this, what a great day!");
        assert_eq!(pos.sentiment.label, SentimentLabel::Positive, "{pos:?}");
        assert!(pos.sentiment.score > 0.3, "{pos:?}");
        let neg = m.classify("This is terrible, worst service ever. I hate it.");
        assert_eq!(neg.sentiment.label, SentimentLabel::Negative, "{neg:?}");
        let churn = m.classify("I'm cancelling my subscription, worst service ever");
        assert!(churn.churn_risk > 0.5, "{churn:?}");
        let calm = m.classify("The meeting is at 3pm in room 4.");
        assert!(calm.churn_risk < 0.5, "{calm:?}");
        assert!(calm.toxicity < 0.5, "{calm:?}");
        let toxic = m.classify("@user you are a fucking idiot, shut up bitch");
        assert!(toxic.toxicity > 0.5, "{toxic:?}");
        let joy = m.classify("Haha this made my day, so happy!");
        assert_eq!(joy.emotion.label, "joy", "{joy:?}");
    }

    #[test]
    fn outputs_are_distributions_for_any_text() {
        let m = model();
        for text in [
            "",
            "   ",
            "😂😂😂",
            "a",
            &"word ".repeat(5000),
            "東京 \u{0} \u{FEFF}",
        ] {
            let c = m.classify(text);
            let p = c.sentiment.probs;
            assert!(
                (p.negative + p.neutral + p.positive - 1.0).abs() < 1e-4,
                "{c:?}"
            );
            let e: f64 = c.emotion.probs.to_array().iter().sum();
            assert!((e - 1.0).abs() < 1e-4, "{c:?}");
            assert!((-1.0..=1.0).contains(&c.sentiment.score));
            assert!((0.0..=1.0).contains(&c.toxicity) && (0.0..=1.0).contains(&c.churn_risk));
            assert!(EMOTION_LABELS.contains(&c.emotion.label.as_str()));
        }
    }

    #[test]
    fn json_shape_is_the_cli_contract() {
        let c = model().classify("I love this");
        let v = serde_json::to_value(&c).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let mut top = keys(&v);
        top.sort();
        assert_eq!(top, ["churn_risk", "emotion", "sentiment", "toxicity"]);
        let mut s = keys(&v["sentiment"]);
        s.sort();
        assert_eq!(s, ["label", "probs", "score"]);
        assert_eq!(v["sentiment"]["label"], "positive");
        let mut p = keys(&v["sentiment"]["probs"]);
        p.sort();
        assert_eq!(p, ["negative", "neutral", "positive"]);
        let mut e = keys(&v["emotion"]["probs"]);
        e.sort();
        let mut want = EMOTION_LABELS.to_vec();
        want.sort();
        assert_eq!(e, want);
        assert!(v["toxicity"].is_f64() && v["churn_risk"].is_f64());
        let back: Classification = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        let scores = c.to_scores(MODEL_ID);
        assert_eq!(scores.emotion.unwrap().probs.len(), 7);
        assert_eq!(scores.sentiment.probs, Some(c.sentiment.probs));
        assert_eq!(EMOTION_LABELS, crate::domain::EMOTIONS);
    }

    #[test]
    fn concurrent_use_is_consistent() {
        let m = std::sync::Arc::new(model());
        let want = m.classify("meh, the update broke my wallet again");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || m.classify("meh, the update broke my wallet again"))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), want);
        }
    }
}
