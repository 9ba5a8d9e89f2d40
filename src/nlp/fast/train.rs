//! Training the fast model (`starling train --data ../shared/data --out models/fast`).
//!
//! Reproducible: files are read in a fixed order, examples are shuffled by a
//! ChaCha8 generator seeded from `--seed`, training is single-threaded, so
//! the same data and seed give byte-identical model files.
//!
//! Data (see `models/fast/MODEL_CARD.md` for licences and counts):
//! - sentiment: every `sentiment/semeval2013-2016/*.tsv` file, minus texts
//!   that also appear in `sentiment/tweeteval-val/` (compared by
//!   [`norm_key`]), minus the SemEval dev split (ids whose xxh3 is 0 mod 10),
//!   de-duplicated by [`norm_key`]. Dev: TweetEval validation, SemEval dev.
//! - emotion: GoEmotions `ekman/train.tsv`, multi-label rows as a soft
//!   target spread evenly over their labels. Dev: `ekman/dev.tsv`.
//! - toxicity: TweetEval offensive `train`. Dev: its `val`.
//! - churn: `models/data/churn/churn.tsv` `train` rows. Dev: its `dev` rows.
//!
//! Each head is a multinomial (sentiment, emotion) or binary (toxicity,
//! churn) logistic regression over the shared features, trained by AdaGrad
//! with an L2 penalty on the weights each example touches, and class
//! weights `(n / (k · n_class))^balance`. The churn head also reads the
//! sentiment head's p(negative) as a dense feature.

use super::eval::{self, EvalReport, Labelled, Task};
use super::features::{self, FeatureConfig, Scratch, DENSE_P_NEG, N_DENSE};
use super::lexicon::{self, LexEntry, Lexicon};
use super::model;
use super::{
    sigmoid, softmax, FastClassifier, COLS, COL_CHURN, COL_EMOTION, COL_SENTIMENT, COL_TOXICITY,
    EMOTION_LABELS, SENTIMENT_LABELS,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Hyper-parameters of one head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadHyper {
    /// Passes over the training set.
    pub epochs: usize,
    /// AdaGrad learning rate.
    pub lr: f32,
    /// L2 penalty per touched weight.
    pub l2: f32,
    /// Class-weight exponent: 0 = none, 1 = fully balanced.
    pub balance: f32,
    /// Models trained on differently seeded shuffles and averaged (≥ 1).
    pub ensemble: usize,
}

/// Everything `train` needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainOptions {
    /// `../shared/data`.
    pub data: PathBuf,
    /// The churn TSV (`split<TAB>label<TAB>text`).
    pub churn: PathBuf,
    /// Seed of every random choice.
    pub seed: u64,
    /// Feature settings.
    pub features: FeatureConfig,
    /// Sentiment head.
    pub sentiment: HeadHyper,
    /// Emotion head.
    pub emotion: HeadHyper,
    /// Toxicity head.
    pub toxicity: HeadHyper,
    /// Churn head.
    pub churn_head: HeadHyper,
    /// Also train toxicity on TweetEval hate `train` (hate = toxic).
    pub toxicity_extra_hate: bool,
    /// Also train toxicity on Davidson et al. (hate or offensive = toxic).
    pub toxicity_extra_davidson: bool,
    /// Give the toxicity head the sentiment head's p(negative) as a feature.
    pub toxicity_p_neg: bool,
    /// Training texts to leave out, by [`norm_key`] (empty for the shipped
    /// model; `starling train-encoder` trains a fast model without the
    /// slice it holds out to weigh the two tiers).
    #[serde(skip)]
    pub exclude: HashSet<String>,
}

impl TrainOptions {
    /// The documented defaults for `data`, `churn` and `seed`.
    pub fn new(data: PathBuf, churn: PathBuf, seed: u64) -> Self {
        TrainOptions {
            data,
            churn,
            seed,
            features: FeatureConfig::default(),
            sentiment: HeadHyper {
                epochs: 6,
                lr: 0.05,
                l2: 1e-4,
                balance: 1.0,
                ensemble: 1,
            },
            emotion: HeadHyper {
                epochs: 6,
                lr: 0.05,
                l2: 1e-3,
                balance: 0.7,
                ensemble: 1,
            },
            toxicity: HeadHyper {
                epochs: 10,
                lr: 0.05,
                l2: 1e-2,
                balance: 1.0,
                ensemble: 1,
            },
            churn_head: HeadHyper {
                epochs: 20,
                lr: 0.05,
                l2: 1e-4,
                balance: 1.0,
                ensemble: 1,
            },
            toxicity_extra_hate: false,
            toxicity_extra_davidson: false,
            toxicity_p_neg: false,
            exclude: HashSet::new(),
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A data file is missing or malformed.
    #[error(transparent)]
    Data(#[from] eval::DataError),
    /// The model could not be written.
    #[error(transparent)]
    Model(#[from] super::FastModelError),
    /// Something else about the inputs.
    #[error("{0}")]
    Invalid(String),
}

/// Normalised text used to find the same tweet in two data sets: lower case,
/// URLs dropped, `@mentions` as `@user`, only letters and digits kept.
pub fn norm_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for w in text.split_whitespace() {
        let lw = w.to_lowercase();
        if lw.starts_with("http") || lw.starts_with("www.") {
            continue;
        }
        if lw.starts_with('@') {
            out.push_str("user");
            continue;
        }
        out.extend(lw.chars().filter(|c| c.is_alphanumeric()));
    }
    out
}

// ---------------------------------------------------------------- lexicon

fn read_lines(path: &Path) -> Result<Vec<String>, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| eval::DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Hash key of a lexicon phrase as the extractor sees it: one token → its
/// hash, two tokens → their bigram hash, otherwise None.
fn phrase_key(phrase: &str) -> Option<u64> {
    let mut s = Scratch::default();
    features::tokenize(phrase, &Lexicon::empty(), &mut s);
    match s.tokens() {
        [t] => Some(t.hash),
        [a, b] => Some(features::bigram_hash(a.hash, b.hash)),
        _ => None,
    }
}

fn strip_emoji(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{200D}'))
        .collect()
}

fn is_emoticon(s: &str) -> bool {
    (2..=6).contains(&s.len())
        && s.is_ascii()
        && !s.contains(char::is_whitespace)
        && s.bytes().any(|c| c.is_ascii_punctuation() && c != b'\'')
}

/// Builds the hashed lexicon table from `dir` (`../shared/data/lexicons`)
/// and the built-in negation and churn cue lists.
pub fn build_lexicon(dir: &Path) -> Result<Lexicon, TrainError> {
    let mut pairs: Vec<(u64, LexEntry)> = Vec::new();
    let mut vader_words: HashMap<String, f32> = HashMap::new();
    for line in read_lines(&dir.join("vader_lexicon.txt"))? {
        let mut f = line.split('\t');
        let (Some(tok), Some(v)) = (f.next(), f.next()) else {
            continue;
        };
        let Ok(v) = v.trim().parse::<f32>() else {
            continue;
        };
        vader_words.insert(tok.to_lowercase(), v);
        let entry = |flags| LexEntry {
            vader: v,
            flags,
            ..Default::default()
        };
        if is_emoticon(tok) {
            pairs.push((
                features::token_hash(tok.as_bytes()),
                entry(lexicon::EMOTICON),
            ));
        } else if let Some(k) = phrase_key(tok) {
            pairs.push((k, entry(0)));
        }
    }
    for line in read_lines(&dir.join("AFINN-en-165.txt"))? {
        let Some((tok, v)) = line.rsplit_once('\t') else {
            continue;
        };
        let Ok(v) = v.trim().parse::<f32>() else {
            continue;
        };
        if let Some(k) = phrase_key(tok) {
            pairs.push((
                k,
                LexEntry {
                    afinn: v,
                    ..Default::default()
                },
            ));
        }
    }
    for line in read_lines(&dir.join("AFINN-emoticon-8.txt"))? {
        let Some((tok, v)) = line.rsplit_once('\t') else {
            continue;
        };
        if let (true, Ok(v)) = (is_emoticon(tok), v.trim().parse::<f32>()) {
            pairs.push((
                features::token_hash(tok.as_bytes()),
                LexEntry {
                    afinn: v,
                    flags: lexicon::EMOTICON,
                    ..Default::default()
                },
            ));
        }
    }
    // VADER reads an emoji as its description: its valence is the sum of the words'.
    for line in read_lines(&dir.join("emoji_utf8_lexicon.txt"))? {
        let Some((emoji, desc)) = line.split_once('\t') else {
            continue;
        };
        let e = strip_emoji(emoji);
        if e.chars().count() != 1 {
            continue;
        }
        let v: f32 = desc
            .split_whitespace()
            .filter_map(|w| vader_words.get(&w.to_lowercase()))
            .sum();
        pairs.push((
            features::token_hash(e.as_bytes()),
            LexEntry {
                vader: v,
                flags: lexicon::EMOJI,
                ..Default::default()
            },
        ));
    }
    for (n, line) in read_lines(&dir.join("Emoji_Sentiment_Data_v1.0.csv"))?
        .iter()
        .enumerate()
    {
        let f: Vec<&str> = line.split(',').collect();
        if n == 0 || f.len() < 7 {
            continue;
        }
        let e = strip_emoji(f[0]);
        let num = |i: usize| f[i].trim().parse::<f32>().ok();
        if let (1, Some(occ), Some(neg), Some(pos)) = (e.chars().count(), num(2), num(4), num(6)) {
            pairs.push((
                features::token_hash(e.as_bytes()),
                LexEntry {
                    emoji: (pos - neg) / (occ + 3.0),
                    flags: lexicon::EMOJI,
                    ..Default::default()
                },
            ));
        }
    }
    let mut flag = |words: &[&str], flags: u32| {
        for w in words {
            if let Some(k) = phrase_key(w) {
                pairs.push((
                    k,
                    LexEntry {
                        flags,
                        ..Default::default()
                    },
                ));
            }
        }
    };
    flag(lexicon::NEGATIONS, lexicon::NEGATION);
    flag(lexicon::CHURN_STRONG_CUES, lexicon::CHURN_STRONG);
    flag(lexicon::CHURN_WEAK_CUES, lexicon::CHURN_WEAK);
    Ok(Lexicon::from_entries(pairs))
}

// ---------------------------------------------------------------- data

/// A training or dev set: texts and soft targets (k values per row; for a
/// binary head k = 1 and the value is the label).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Texts.
    pub texts: Vec<String>,
    /// Targets, `k` per row.
    pub targets: Vec<f32>,
    /// Primary class per row (for class weights).
    pub class: Vec<usize>,
}

impl Dataset {
    fn push_class(&mut self, text: String, k: usize, gold: &[usize]) {
        let start = self.targets.len();
        if k == 1 {
            self.targets.push(gold[0] as f32);
        } else {
            self.targets.resize(start + k, 0.0);
            for &g in gold {
                self.targets[start + g] += 1.0 / gold.len() as f32;
            }
        }
        self.class.push(gold[0]);
        self.texts.push(text);
    }

    fn from_labelled(rows: &[Labelled], k: usize) -> Self {
        let mut d = Dataset::default();
        for r in rows {
            d.push_class(r.text.clone(), k, &r.gold);
        }
        d
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

/// The sentiment splits.
pub struct SentimentData {
    /// Training rows.
    pub train: Vec<Labelled>,
    /// SemEval dev split (ids with xxh3 ≡ 0 mod 10).
    pub semeval_dev: Vec<Labelled>,
    /// TweetEval validation.
    pub tweeteval_val: Vec<Labelled>,
    /// SemEval rows dropped because they are in TweetEval validation.
    pub removed_overlap: usize,
    /// SemEval rows dropped as duplicates (within train or of the SemEval dev split).
    pub removed_duplicates: usize,
}

/// Loads and splits the sentiment data under `data`.
pub fn load_sentiment(data: &Path) -> Result<SentimentData, TrainError> {
    let dir = data.join("sentiment/semeval2013-2016");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|source| eval::DataError::Io {
            path: dir.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TrainError::Invalid(format!(
            "no .tsv files in {}",
            dir.display()
        )));
    }
    let val_path = data.join("sentiment/tweeteval-val/val_text.txt");
    let tweeteval_val = eval::read_tweeteval(&val_path, 3)?;
    let val_keys: HashSet<String> = tweeteval_val.iter().map(|r| norm_key(&r.text)).collect();
    let mut rows = Vec::new();
    for f in &files {
        rows.extend(eval::read_semeval(f)?);
    }
    let mut removed_overlap = 0;
    let mut dev = Vec::new();
    let mut dev_keys = HashSet::new();
    let mut rest = Vec::new();
    for (id, y, text) in rows {
        let key = norm_key(&text);
        if val_keys.contains(&key) {
            removed_overlap += 1;
        } else if xxhash_rust::xxh3::xxh3_64(id.as_bytes()).is_multiple_of(10) {
            if dev_keys.insert(key) {
                dev.push(Labelled {
                    text,
                    gold: vec![y],
                });
            }
        } else {
            rest.push((key, y, text));
        }
    }
    let mut seen = HashSet::new();
    let mut train = Vec::new();
    let mut removed_duplicates = 0;
    for (key, y, text) in rest {
        if dev_keys.contains(&key) || !seen.insert(key) {
            removed_duplicates += 1;
        } else {
            train.push(Labelled {
                text,
                gold: vec![y],
            });
        }
    }
    Ok(SentimentData {
        train,
        semeval_dev: dev,
        tweeteval_val,
        removed_overlap,
        removed_duplicates,
    })
}

/// Reads Davidson et al.'s `labeled_data.csv` (class 0 hate, 1 offensive → toxic; 2 → not).
pub fn read_davidson(path: &Path) -> Result<Vec<Labelled>, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| eval::DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut rows = Vec::new();
    for (n, rec) in parse_csv(&text).into_iter().enumerate() {
        if n == 0 || rec.len() < 7 {
            continue;
        }
        let y = match rec[5].trim() {
            "0" | "1" => 1,
            "2" => 0,
            _ => continue,
        };
        rows.push(Labelled {
            text: rec[6].replace("&amp;", "&"),
            gold: vec![y],
        });
    }
    Ok(rows)
}

/// Minimal RFC 4180 CSV: quoted fields may hold commas, `""` and newlines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => rec.push(std::mem::take(&mut field)),
            (false, '\n') => {
                rec.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut rec));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !rec.is_empty() {
        rec.push(field);
        out.push(rec);
    }
    out
}

// ---------------------------------------------------------------- encoding

/// Fills the p(negative) dense slot of every row from the sentiment head.
fn fill_p_neg(enc: &mut Encoded, sentiment: &Head) {
    let mut p = [0f32; 3];
    for i in 0..enc.dense.len() {
        let d = enc.dense[i];
        sentiment.forward(enc.row(i), &d, &mut p);
        enc.dense[i][DENSE_P_NEG] = p[0];
    }
}

/// Features of a dataset, computed once.
struct Encoded {
    ids: Vec<u32>,
    off: Vec<usize>,
    dense: Vec<[f32; N_DENSE]>,
}

impl Encoded {
    fn new(texts: &[String], cfg: &FeatureConfig, lex: &Lexicon) -> Self {
        let mut s = Scratch::default();
        let mut e = Encoded {
            ids: Vec::new(),
            off: vec![0],
            dense: Vec::with_capacity(texts.len()),
        };
        for t in texts {
            features::extract(t, cfg, lex, &mut s);
            e.ids.extend_from_slice(&s.ids);
            e.off.push(e.ids.len());
            e.dense.push(s.dense);
        }
        e
    }

    fn row(&self, i: usize) -> &[u32] {
        &self.ids[self.off[i]..self.off[i + 1]]
    }
}

fn norm_of(n: usize) -> f32 {
    if n == 0 {
        0.0
    } else {
        1.0 / (n as f32).sqrt()
    }
}

/// One head's f32 parameters and AdaGrad state.
struct Head {
    k: usize,
    w: Vec<f32>,
    gw: Vec<f32>,
    wd: Vec<f32>,
    gwd: Vec<f32>,
    b: Vec<f32>,
    gb: Vec<f32>,
    use_p_neg: bool,
}

const G0: f32 = 1e-3;

impl Head {
    fn new(k: usize, buckets: usize, use_p_neg: bool) -> Self {
        Head {
            k,
            w: vec![0.0; buckets * k],
            gw: vec![G0; buckets * k],
            wd: vec![0.0; N_DENSE * k],
            gwd: vec![G0; N_DENSE * k],
            b: vec![0.0; k],
            gb: vec![G0; k],
            use_p_neg,
        }
    }

    /// Trains `h.ensemble` heads on differently seeded shuffles and averages them.
    fn fit(
        k: usize,
        buckets: usize,
        use_p_neg: bool,
        enc: &Encoded,
        data: &Dataset,
        h: &HeadHyper,
        seed: u64,
    ) -> Head {
        let n = h.ensemble.max(1);
        let mut avg = Head::new(k, buckets, use_p_neg);
        avg.gw = Vec::new();
        avg.gwd = Vec::new();
        avg.gb = Vec::new();
        for i in 0..n {
            let mut one = Head::new(k, buckets, use_p_neg);
            one.train(enc, data, h, seed.wrapping_add(0x100 * i as u64));
            let add = |a: &mut Vec<f32>, b: &[f32]| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y / n as f32;
                }
            };
            add(&mut avg.w, &one.w);
            add(&mut avg.wd, &one.wd);
            add(&mut avg.b, &one.b);
        }
        avg
    }

    /// Probabilities (softmax for k ≥ 2, sigmoid for k = 1) into `p`.
    fn forward(&self, ids: &[u32], dense: &[f32; N_DENSE], p: &mut [f32]) {
        let k = self.k;
        let norm = norm_of(ids.len());
        p.copy_from_slice(&self.b);
        let mut acc = vec![0f32; k];
        for &id in ids {
            let row = &self.w[id as usize * k..id as usize * k + k];
            for c in 0..k {
                acc[c] += row[c];
            }
        }
        for c in 0..k {
            p[c] += acc[c] * norm;
            for (d, x) in dense.iter().enumerate() {
                if d == DENSE_P_NEG && !self.use_p_neg {
                    continue;
                }
                p[c] += x * self.wd[d * k + c];
            }
        }
        if k == 1 {
            p[0] = sigmoid(p[0]);
        } else {
            softmax(p);
        }
    }

    fn train(&mut self, enc: &Encoded, data: &Dataset, h: &HeadHyper, seed: u64) {
        let k = self.k;
        let n = data.len();
        let n_classes = if k == 1 { 2 } else { k };
        let mut counts = vec![0usize; n_classes];
        for &c in &data.class {
            counts[c] += 1;
        }
        let cw: Vec<f32> = counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    0.0
                } else {
                    (n as f32 / (n_classes as f32 * c as f32)).powf(h.balance)
                }
            })
            .collect();
        let mean_w: f32 = data.class.iter().map(|&c| cw[c]).sum::<f32>() / n.max(1) as f32;
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut p = vec![0f32; k];
        let mut g = vec![0f32; k];
        for _ in 0..h.epochs {
            order.shuffle(&mut rng);
            for &i in &order {
                let ids = enc.row(i);
                let dense = &enc.dense[i];
                self.forward(ids, dense, &mut p);
                let weight = cw[data.class[i]] / mean_w;
                let y = &data.targets[i * k..i * k + k];
                for c in 0..k {
                    g[c] = (p[c] - y[c]) * weight;
                }
                let norm = norm_of(ids.len());
                for &id in ids {
                    let base = id as usize * k;
                    for (c, &gc) in g.iter().enumerate() {
                        let j = base + c;
                        let grad = gc * norm + h.l2 * self.w[j];
                        self.gw[j] += grad * grad;
                        self.w[j] -= h.lr * grad / self.gw[j].sqrt();
                    }
                }
                for (d, x) in dense.iter().enumerate() {
                    if d == DENSE_P_NEG && !self.use_p_neg {
                        continue;
                    }
                    for (c, &gc) in g.iter().enumerate() {
                        let j = d * k + c;
                        let grad = gc * x;
                        self.gwd[j] += grad * grad;
                        self.wd[j] -= h.lr * grad / self.gwd[j].sqrt();
                    }
                }
                for (c, &gc) in g.iter().enumerate() {
                    self.gb[c] += gc * gc;
                    self.b[c] -= h.lr * gc / self.gb[c].sqrt();
                }
            }
        }
    }

    /// Copies the head into columns `col..col + k` of the packed model.
    fn pack(
        &self,
        col: usize,
        table: &mut [f32],
        bias: &mut [f32; COLS],
        dense: &mut [[f32; COLS]; N_DENSE],
    ) {
        let k = self.k;
        for (r, row) in table.chunks_exact_mut(COLS).enumerate() {
            row[col..col + k].copy_from_slice(&self.w[r * k..r * k + k]);
        }
        bias[col..col + k].copy_from_slice(&self.b);
        for (d, drow) in dense.iter_mut().enumerate() {
            drow[col..col + k].copy_from_slice(&self.wd[d * k..d * k + k]);
        }
    }

    /// Predicted class per row (argmax, or p ≥ 0.5 for k = 1).
    fn predict(&self, enc: &Encoded) -> Vec<usize> {
        let mut p = vec![0f32; self.k];
        (0..enc.dense.len())
            .map(|i| {
                self.forward(enc.row(i), &enc.dense[i], &mut p);
                if self.k == 1 {
                    usize::from(p[0] >= 0.5)
                } else {
                    super::argmax(&p)
                }
            })
            .collect()
    }
}

/// Dev metrics of one evaluation in the training record.
#[derive(Debug, Clone, Serialize)]
pub struct DevResult {
    /// Which split.
    pub split: String,
    /// The shipped (quantised) model's report.
    pub report: EvalReport,
    /// Macro-F1 of the f32 head before quantisation (for reference).
    pub f32_macro_f1: f64,
    /// Macro-recall of the f32 head before quantisation.
    pub f32_macro_recall: f64,
}

/// What `train` did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Where the model was written.
    pub out: PathBuf,
    /// Rows per training set.
    pub train_rows: HashMap<String, usize>,
    /// Dev results.
    pub dev: Vec<DevResult>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Bytes of each model file.
    pub files: Vec<(String, u64)>,
}

fn dev_result(
    clf: &FastClassifier,
    head: &Head,
    task: Task,
    split: &str,
    rows: &[Labelled],
    cfg: &FeatureConfig,
    lex: &Lexicon,
) -> DevResult {
    let report = eval::evaluate(clf, task, split, rows);
    let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
    let mut enc = Encoded::new(&texts, cfg, lex);
    if head.use_p_neg {
        // Fill p(negative) from the packed model, as at run time.
        for (i, t) in texts.iter().enumerate() {
            enc.dense[i][DENSE_P_NEG] = clf.classify_raw(t).sentiment[0];
        }
    }
    let preds = head.predict(&enc);
    let f32_report = EvalReport::from_predictions(task, split, "f32", rows, &preds);
    DevResult {
        split: split.to_string(),
        report,
        f32_macro_f1: f32_report.macro_f1,
        f32_macro_recall: f32_report.macro_recall,
    }
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[train] {}", msg.as_ref());
}

/// Trains all four heads, writes the model to `out` and returns the dev results.
pub fn train(opts: &TrainOptions, out: &Path) -> Result<TrainSummary, TrainError> {
    let start = Instant::now();
    let cfg = opts.features;
    let buckets = 1usize << cfg.bits;
    let lex = build_lexicon(&opts.data.join("lexicons"))?;
    log(format!("lexicon: {} entries", lex.len()));

    let kept = |rows: &mut Vec<Labelled>| {
        if !opts.exclude.is_empty() {
            rows.retain(|r| !opts.exclude.contains(&norm_key(&r.text)));
        }
    };

    // Sentiment.
    let mut sent = load_sentiment(&opts.data)?;
    kept(&mut sent.train);
    log(format!(
        "sentiment: {} train, {} SemEval dev, {} TweetEval val ({} overlapping rows and {} duplicates removed)",
        sent.train.len(),
        sent.semeval_dev.len(),
        sent.tweeteval_val.len(),
        sent.removed_overlap,
        sent.removed_duplicates
    ));
    let sent_ds = Dataset::from_labelled(&sent.train, 3);
    let enc = Encoded::new(&sent_ds.texts, &cfg, &lex);
    let h_sent = Head::fit(
        3,
        buckets,
        false,
        &enc,
        &sent_ds,
        &opts.sentiment,
        opts.seed ^ 0x01,
    );
    drop(enc);
    log(format!(
        "sentiment head trained ({:.1}s)",
        start.elapsed().as_secs_f64()
    ));

    // Emotion.
    let ge = opts.data.join("emotion/goemotions/ekman");
    let mut emo_train = eval::read_goemotions(&ge.join("train.tsv"))?;
    kept(&mut emo_train);
    let emo_dev = eval::read_goemotions(&ge.join("dev.tsv"))?;
    let emo_ds = Dataset::from_labelled(&emo_train, 7);
    let enc = Encoded::new(&emo_ds.texts, &cfg, &lex);
    let h_emo = Head::fit(
        7,
        buckets,
        false,
        &enc,
        &emo_ds,
        &opts.emotion,
        opts.seed ^ 0x02,
    );
    drop(enc);
    log(format!(
        "emotion head trained on {} rows ({:.1}s)",
        emo_ds.len(),
        start.elapsed().as_secs_f64()
    ));

    // Toxicity.
    let off = opts.data.join("toxicity/tweeteval-offensive");
    let mut tox_train = eval::read_tweeteval(&off.join("train_text.txt"), 2)?;
    if opts.toxicity_extra_hate {
        tox_train.extend(eval::read_tweeteval(
            &opts.data.join("toxicity/tweeteval-hate/train_text.txt"),
            2,
        )?);
    }
    if opts.toxicity_extra_davidson {
        tox_train.extend(read_davidson(
            &opts.data.join("toxicity/davidson/labeled_data.csv"),
        )?);
    }
    kept(&mut tox_train);
    let tox_dev = eval::read_tweeteval(&off.join("val_text.txt"), 2)?;
    let tox_ds = Dataset::from_labelled(&tox_train, 1);
    let mut enc = Encoded::new(&tox_ds.texts, &cfg, &lex);
    if opts.toxicity_p_neg {
        fill_p_neg(&mut enc, &h_sent);
    }
    let h_tox = Head::fit(
        1,
        buckets,
        opts.toxicity_p_neg,
        &enc,
        &tox_ds,
        &opts.toxicity,
        opts.seed ^ 0x03,
    );
    drop(enc);
    log(format!(
        "toxicity head trained on {} rows ({:.1}s)",
        tox_ds.len(),
        start.elapsed().as_secs_f64()
    ));

    // Churn: p(negative) of the sentiment head is one of its features.
    let mut churn_train = eval::read_churn(&opts.churn, Some("train"))?;
    kept(&mut churn_train);
    let churn_dev = eval::read_churn(&opts.churn, Some("dev"))?;
    if churn_train.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{}: no train rows",
            opts.churn.display()
        )));
    }
    let churn_ds = Dataset::from_labelled(&churn_train, 1);
    let mut enc = Encoded::new(&churn_ds.texts, &cfg, &lex);
    fill_p_neg(&mut enc, &h_sent);
    let h_churn = Head::fit(
        1,
        buckets,
        true,
        &enc,
        &churn_ds,
        &opts.churn_head,
        opts.seed ^ 0x04,
    );
    drop(enc);
    log(format!(
        "churn head trained on {} rows ({:.1}s)",
        churn_ds.len(),
        start.elapsed().as_secs_f64()
    ));

    // Pack and quantise.
    let mut table = vec![0f32; buckets * COLS];
    let mut bias = [0f32; COLS];
    let mut dense = [[0f32; COLS]; N_DENSE];
    h_sent.pack(COL_SENTIMENT, &mut table, &mut bias, &mut dense);
    h_emo.pack(COL_EMOTION, &mut table, &mut bias, &mut dense);
    h_tox.pack(COL_TOXICITY, &mut table, &mut bias, &mut dense);
    h_churn.pack(COL_CHURN, &mut table, &mut bias, &mut dense);
    let (weights, scale) = model::quantize(&table);
    drop(table);
    let mut columns: Vec<String> = SENTIMENT_LABELS
        .iter()
        .map(|l| format!("sentiment:{l}"))
        .chain(EMOTION_LABELS.iter().map(|l| format!("emotion:{l}")))
        .collect();
    columns.push("toxicity".into());
    columns.push("churn".into());
    columns.resize(COLS, "unused".into());
    let meta = model::new_meta(
        cfg,
        columns.clone(),
        (scale, bias, dense),
        &weights,
        &lex,
        serde_json::Value::Null,
    );
    let mut clf = FastClassifier::from_parts(meta, Cow::Owned(weights), lex.clone())?;

    // Dev metrics of the packed model.
    let dev = vec![
        dev_result(
            &clf,
            &h_sent,
            Task::Sentiment,
            "sentiment/tweeteval-val",
            &sent.tweeteval_val,
            &cfg,
            &lex,
        ),
        dev_result(
            &clf,
            &h_sent,
            Task::Sentiment,
            "sentiment/semeval-dev (xxh3(id) % 10 == 0)",
            &sent.semeval_dev,
            &cfg,
            &lex,
        ),
        dev_result(
            &clf,
            &h_emo,
            Task::Emotion,
            "emotion/goemotions/ekman/dev.tsv",
            &emo_dev,
            &cfg,
            &lex,
        ),
        dev_result(
            &clf,
            &h_tox,
            Task::Toxicity,
            "toxicity/tweeteval-offensive/val",
            &tox_dev,
            &cfg,
            &lex,
        ),
        dev_result(
            &clf,
            &h_churn,
            Task::Churn,
            "churn.tsv dev",
            &churn_dev,
            &cfg,
            &lex,
        ),
    ];
    let mut train_rows = HashMap::new();
    train_rows.insert("sentiment".to_string(), sent_ds.len());
    train_rows.insert("emotion".to_string(), emo_ds.len());
    train_rows.insert("toxicity".to_string(), tox_ds.len());
    train_rows.insert("churn".to_string(), churn_ds.len());
    let record = serde_json::json!({
        "command": "starling train --data ../shared/data --out models/fast",
        "seed": opts.seed,
        "options": opts,
        "lexicon_entries": lex.len(),
        "train_rows": {
            "sentiment": sent_ds.len(),
            "emotion": emo_ds.len(),
            "toxicity": tox_ds.len(),
            "churn": churn_ds.len(),
        },
        "sentiment_removed": {
            "tweeteval_val_overlap": sent.removed_overlap,
            "duplicates": sent.removed_duplicates,
        },
        "dev": dev.iter().map(|d| d.report.dev_record(&d.split)).collect::<Vec<_>>(),
    });
    clf.meta.training = record;
    clf.save(out)?;
    let files = [model::META_FILE, model::WEIGHTS_FILE, model::LEXICON_FILE]
        .iter()
        .map(|f| {
            let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
            (f.to_string(), len)
        })
        .collect();
    Ok(TrainSummary {
        out: out.to_path_buf(),
        train_rows,
        dev,
        seconds: start.elapsed().as_secs_f64(),
        files,
    })
}

/// Trains one head on in-memory data and returns the packed classifier
/// (sentiment, emotion, toxicity and churn all learn from `rows` as if they
/// were the task given); used by tests on synthetic data.
pub fn train_single(
    task: Task,
    rows: &[Labelled],
    cfg: FeatureConfig,
    hyper: HeadHyper,
    seed: u64,
) -> FastClassifier {
    let lex = Lexicon::empty();
    let buckets = 1usize << cfg.bits;
    let (k, col) = match task {
        Task::Sentiment => (3, COL_SENTIMENT),
        Task::Emotion => (7, COL_EMOTION),
        Task::Toxicity => (1, COL_TOXICITY),
        Task::Churn => (1, COL_CHURN),
    };
    let ds = Dataset::from_labelled(rows, k);
    let enc = Encoded::new(&ds.texts, &cfg, &lex);
    let mut head = Head::new(k, buckets, false);
    head.train(&enc, &ds, &hyper, seed);
    let mut table = vec![0f32; buckets * COLS];
    let mut bias = [0f32; COLS];
    let mut dense = [[0f32; COLS]; N_DENSE];
    head.pack(col, &mut table, &mut bias, &mut dense);
    let (weights, scale) = model::quantize(&table);
    let columns = vec!["c".to_string(); COLS];
    let meta = model::new_meta(
        cfg,
        columns,
        (scale, bias, dense),
        &weights,
        &lex,
        serde_json::Value::Null,
    );
    FastClassifier::from_parts(meta, Cow::Owned(weights), lex).expect("consistent parts")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(seed: u64, n: usize) -> Vec<Labelled> {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pos = ["love", "great", "awesome", "happy", "best", "wonderful"];
        let neg = ["hate", "awful", "terrible", "worst", "sad", "broken"];
        let filler = [
            "the", "app", "update", "today", "my", "phone", "is", "was", "this", "service",
        ];
        (0..n)
            .map(|_| {
                let y = rng.gen_range(0..3usize);
                let mut words: Vec<&str> = (0..rng.gen_range(3..9))
                    .map(|_| filler[rng.gen_range(0..filler.len())])
                    .collect();
                let at = rng.gen_range(0..=words.len());
                match y {
                    0 => words.insert(at, neg[rng.gen_range(0..neg.len())]),
                    2 => words.insert(at, pos[rng.gen_range(0..pos.len())]),
                    _ => {}
                }
                Labelled {
                    text: words.join(" "),
                    gold: vec![y],
                }
            })
            .collect()
    }

    fn small_cfg() -> FeatureConfig {
        FeatureConfig {
            bits: 12,
            ..FeatureConfig::default()
        }
    }

    const HYPER: HeadHyper = HeadHyper {
        epochs: 5,
        lr: 0.1,
        l2: 1e-5,
        balance: 1.0,
        ensemble: 1,
    };

    #[test]
    fn tiny_training_run_learns_and_is_deterministic() {
        let train = synthetic(1, 1500);
        let dev = synthetic(2, 300);
        let a = train_single(Task::Sentiment, &train, small_cfg(), HYPER, 7);
        let r = eval::evaluate(&a, Task::Sentiment, "synthetic", &dev);
        assert!(r.accuracy > 0.95, "{r}");
        let b = train_single(Task::Sentiment, &train, small_cfg(), HYPER, 7);
        assert_eq!(a.weights, b.weights);
        assert_eq!(a.meta, b.meta);
    }

    #[test]
    fn binary_head_learns() {
        let rows: Vec<Labelled> = synthetic(3, 1200)
            .into_iter()
            .map(|mut r| {
                r.gold = vec![usize::from(r.gold[0] == 0)];
                r
            })
            .collect();
        let clf = train_single(Task::Churn, &rows[..1000], small_cfg(), HYPER, 1);
        let r = eval::evaluate(&clf, Task::Churn, "synthetic", &rows[1000..]);
        assert!(r.macro_f1 > 0.9, "{r}");
    }

    #[test]
    fn model_directory_round_trips() {
        let clf = train_single(Task::Sentiment, &synthetic(4, 300), small_cfg(), HYPER, 3);
        let dir = tempfile::tempdir().unwrap();
        clf.save(dir.path()).unwrap();
        let back = FastClassifier::load(dir.path()).unwrap();
        assert_eq!(back.meta, clf.meta);
        assert_eq!(back.weights, clf.weights);
        for t in ["love the app", "worst update", "the phone"] {
            assert_eq!(back.classify(t), clf.classify(t));
        }
        // A corrupted weights file is refused.
        let w = dir.path().join(model::WEIGHTS_FILE);
        let mut bytes = std::fs::read(&w).unwrap();
        bytes[10] ^= 0x55;
        std::fs::write(&w, &bytes).unwrap();
        assert!(matches!(
            FastClassifier::load(dir.path()),
            Err(super::super::FastModelError::Format(_))
        ));
        assert!(FastClassifier::load(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn norm_key_ignores_case_urls_mentions_and_punctuation() {
        assert_eq!(
            norm_key("@Bob Hello, WORLD! http://t.co/x"),
            norm_key("@user hello world ")
        );
        assert_ne!(norm_key("hello world"), norm_key("hello there"));
    }
}
