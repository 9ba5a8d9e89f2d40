//! Training the encoder tier's heads (`starling train-encoder --data
//! ../shared/data --model models/cache/all-minilm-l6-v2 --out models/encoder`).
//!
//! Data: exactly the fast tier's training and dev splits
//! ([`crate::nlp::fast::train`]): SemEval 2013–2016 minus the TweetEval
//! validation overlap and the carved SemEval dev split; GoEmotions Ekman
//! train; TweetEval offensive train; `churn.tsv` train rows.
//!
//! Steps:
//! 1. Each task's training rows are split into a fitting part and a
//!    held-out slice (`xxh3(norm_key(text)) % 10 == 0`, `% 5` for the small
//!    churn set). Only training data is held out; the dev splits are never
//!    used to fit or choose anything.
//! 2. A fast model is trained without the held-out slices (same options as
//!    the shipped one), so that its outputs on the slice are honest.
//! 3. Every text is embedded (mean-pooled, L2-normalised MiniLM vectors);
//!    the vectors are cached under `--cache` (git-ignored), keyed by the
//!    texts and the encoder weights, so reruns skip this slow step.
//!    Embedding is the slow step on a CPU, so at most 16,000 fitting rows
//!    are used for sentiment, 6,000 for emotion and toxicity, and 2,000
//!    held-out rows for emotion: fixed subsamples (lowest hash of the
//!    normalised text).
//! 4. Per task, a one-hidden-layer MLP (ReLU) over the standardised vector
//!    is trained with AdamW (candle-nn) on the fitting part, with class
//!    weights `(n / (k · n_class))^balance` and soft multi-label targets for
//!    emotion; the epoch scoring best on the held-out slice is kept.
//! 5. Per task, the fast-tier weight `w` of the blend (see
//!    [`super::heads`]) is the grid value scoring best on the held-out
//!    slice, combining the MLP with the fast model of step 2.
//! 6. The heads are written, then scored on the dev splits with the fast
//!    model shipped in the binary (the deployed combination).
//!
//! Deterministic: weights are initialised and examples shuffled by ChaCha8
//! seeded from `--seed`; the heads file's checksum is recorded.

use super::embed::{Embedder, MAX_TOKENS};
use super::heads::{self, Blend, Heads, HeadsMeta, Mlp, TASKS};
use super::{EncoderClassifier, EncoderError, ENCODER_NAME, MODEL_ID};
use crate::nlp::fast::eval::{self, round4, DataError, EvalReport, Labelled, Task};
use crate::nlp::fast::train::{self as fast_train, norm_key, TrainOptions};
use crate::nlp::fast::{FastClassifier, FastModelError, RawOutput};
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Hyper-parameters of one head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MlpHyper {
    /// Hidden units.
    pub hidden: usize,
    /// Most passes over the fitting rows (the best epoch on the held-out slice is kept).
    pub epochs: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW (decoupled) weight decay.
    pub weight_decay: f64,
    /// Rows per step.
    pub batch: usize,
    /// Class-weight exponent: 0 = none, 1 = fully balanced.
    pub balance: f32,
}

/// Everything `train-encoder` needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncoderTrainOptions {
    /// `../shared/data`.
    pub data: PathBuf,
    /// The churn TSV.
    pub churn: PathBuf,
    /// The MiniLM folder.
    pub model: PathBuf,
    /// Where the embeddings and the held-out fast model are cached.
    pub cache: PathBuf,
    /// Seed of every random choice.
    pub seed: u64,
    /// Texts per embedding batch.
    pub embed_batch: usize,
    /// Most fitting rows per task, [`TASKS`] order (a fixed subsample
    /// beyond that: embedding is the slow step on a CPU).
    pub max_fit_rows: [usize; 4],
    /// Most held-out rows per task (same subsampling); the dev splits are
    /// always complete.
    pub max_held_out_rows: [usize; 4],
    /// Heads, in [`TASKS`] order.
    pub heads: [MlpHyper; 4],
    /// Candidate fast-tier weights of the blend.
    pub blend_grid: Vec<f32>,
}

impl EncoderTrainOptions {
    /// The documented defaults.
    pub fn new(data: PathBuf, churn: PathBuf, model: PathBuf, cache: PathBuf, seed: u64) -> Self {
        let h = |epochs, balance| MlpHyper {
            hidden: 256,
            epochs,
            lr: 1e-3,
            weight_decay: 1e-2,
            batch: 128,
            balance,
        };
        EncoderTrainOptions {
            data,
            churn,
            model,
            cache,
            seed,
            embed_batch: 64,
            max_fit_rows: [16_000, 6_000, 6_000, usize::MAX],
            max_held_out_rows: [usize::MAX, 2_000, usize::MAX, usize::MAX],
            heads: [h(25, 1.0), h(25, 0.7), h(25, 1.0), h(80, 1.0)],
            blend_grid: (0..=16).map(|i| i as f32 * 0.25).collect(),
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum EncoderTrainError {
    /// The encoder or heads.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    /// A data file is missing or malformed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Training the held-out fast model failed.
    #[error("fast model without the held-out rows: {0}")]
    FastTrain(#[from] fast_train::TrainError),
    /// The fast model could not be loaded.
    #[error(transparent)]
    Fast(#[from] FastModelError),
    /// A tensor operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A cache file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Something else about the inputs.
    #[error("{0}")]
    Invalid(String),
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[train-encoder] {}", msg.as_ref());
}

// ---------------------------------------------------------------- embeddings

/// Embedding throughput of the uncached texts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Throughput {
    /// Texts embedded (not read from the cache).
    pub texts: usize,
    /// Seconds spent embedding them.
    pub seconds: f64,
}

/// Embedded batches: (chunk index, one vector per text).
type ChunkRows = Vec<(usize, Vec<Vec<f32>>)>;

/// Embeds `texts` (`[n · d]` row-major), reading and writing the cache file
/// `cache/embeddings/<name>-<key>.f32`.
fn embed_cached(
    embedder: &Embedder,
    cache: &Path,
    name: &str,
    texts: &[String],
    batch: usize,
    tp: &mut Throughput,
) -> Result<Vec<f32>, EncoderTrainError> {
    let d = embedder.dim();
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(embedder.weights_xxh3().as_bytes());
    h.update(&(MAX_TOKENS as u64).to_le_bytes());
    h.update(b"mean-pool-l2-v1");
    for t in texts {
        h.update(t.as_bytes());
        h.update(b"\n");
    }
    let dir = cache.join("embeddings");
    let path = dir.join(format!("{name}-{:016x}.f32", h.digest()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EncoderTrainError::Io { path, source }
    };
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() == texts.len() * d * 4 {
            log(format!(
                "{name}: {} embeddings from {}",
                texts.len(),
                path.display()
            ));
            return Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect());
        }
    }
    let start = Instant::now();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let chunks: Vec<&[usize]> = order.chunks(batch.max(1)).collect();
    // Batches are shared out to one thread per core: candle runs much of a
    // forward pass on the calling thread.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<ChunkRows, EncoderError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(chunk) = chunks.get(c) else { break };
                        let group: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
                        mine.push((c, embedder.embed_rows(&group)?));
                        let before =
                            done.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
                        let after = before + chunk.len();
                        if after / 2000 != before / 2000 {
                            log(format!(
                                "{name}: {after}/{} texts embedded, {:.0} texts/s",
                                texts.len(),
                                after as f64 / start.elapsed().as_secs_f64()
                            ));
                        }
                    }
                    Ok(mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(EncoderError::Format("an embedding thread panicked".into()))
                })
            })
            .collect()
    });
    let mut out = vec![0f32; texts.len() * d];
    for r in results {
        for (c, rows) in r? {
            for (&i, row) in chunks[c].iter().zip(rows) {
                out[i * d..(i + 1) * d].copy_from_slice(&row);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    tp.texts += texts.len();
    tp.seconds += secs;
    log(format!(
        "{name}: {} texts embedded in {secs:.1} s ({:.0} texts/s)",
        texts.len(),
        texts.len() as f64 / secs.max(1e-9)
    ));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut bytes = Vec::with_capacity(out.len() * 4);
    for v in &out {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(out)
}

// ---------------------------------------------------------------- data

/// One task's rows: fitting part, held-out slice, dev splits.
struct TaskRows {
    task: Task,
    fit: Vec<Labelled>,
    holdout: Vec<Labelled>,
    dev: Vec<(String, Vec<Labelled>)>,
}

/// Whether a training row goes to the held-out slice (1 in `modulus`).
pub fn is_held_out(text: &str, modulus: u64) -> bool {
    xxhash_rust::xxh3::xxh3_64(norm_key(text).as_bytes()).is_multiple_of(modulus)
}

fn split(rows: Vec<Labelled>, modulus: u64) -> (Vec<Labelled>, Vec<Labelled>) {
    rows.into_iter()
        .partition(|r| !is_held_out(&r.text, modulus))
}

/// Keeps the `max` rows whose normalised text hashes lowest (a fixed,
/// seed-independent subsample), in that order.
fn subsample(rows: &mut Vec<Labelled>, max: usize) {
    if rows.len() <= max {
        return;
    }
    let mut keyed: Vec<(u64, Labelled)> = std::mem::take(rows)
        .into_iter()
        .map(|r| {
            let k = xxhash_rust::xxh3::xxh3_64_with_seed(norm_key(&r.text).as_bytes(), 1);
            (k, r)
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.truncate(max);
    *rows = keyed.into_iter().map(|(_, r)| r).collect();
}

fn load_tasks(opts: &EncoderTrainOptions) -> Result<Vec<TaskRows>, EncoderTrainError> {
    let sent = fast_train::load_sentiment(&opts.data)?;
    let (fit, holdout) = split(sent.train, 10);
    let mut tasks = vec![TaskRows {
        task: Task::Sentiment,
        fit,
        holdout,
        dev: vec![
            ("sentiment/tweeteval-val".into(), sent.tweeteval_val),
            (
                "sentiment/semeval-dev (xxh3(id) % 10 == 0)".into(),
                sent.semeval_dev,
            ),
        ],
    }];
    let ge = opts.data.join("emotion/goemotions/ekman");
    let (fit, holdout) = split(eval::read_goemotions(&ge.join("train.tsv"))?, 10);
    tasks.push(TaskRows {
        task: Task::Emotion,
        fit,
        holdout,
        dev: vec![(
            "emotion/goemotions/ekman/dev.tsv".into(),
            eval::read_goemotions(&ge.join("dev.tsv"))?,
        )],
    });
    let off = opts.data.join("toxicity/tweeteval-offensive");
    let (fit, holdout) = split(eval::read_tweeteval(&off.join("train_text.txt"), 2)?, 10);
    tasks.push(TaskRows {
        task: Task::Toxicity,
        fit,
        holdout,
        dev: vec![(
            "toxicity/tweeteval-offensive/val".into(),
            eval::read_tweeteval(&off.join("val_text.txt"), 2)?,
        )],
    });
    let (fit, holdout) = split(eval::read_churn(&opts.churn, Some("train"))?, 5);
    tasks.push(TaskRows {
        task: Task::Churn,
        fit,
        holdout,
        dev: vec![(
            "churn.tsv dev".into(),
            eval::read_churn(&opts.churn, Some("dev"))?,
        )],
    });
    for (i, t) in tasks.iter_mut().enumerate() {
        subsample(&mut t.fit, opts.max_fit_rows[i]);
        subsample(&mut t.holdout, opts.max_held_out_rows[i]);
    }
    for t in &tasks {
        if t.fit.is_empty() || t.holdout.is_empty() {
            return Err(EncoderTrainError::Invalid(format!(
                "{}: no training rows (or none held out)",
                t.task.as_str()
            )));
        }
    }
    Ok(tasks)
}

// ---------------------------------------------------------------- heads

/// The class count of a task (1 for binary tasks).
fn k_of(task: Task) -> usize {
    match task {
        Task::Sentiment => 3,
        Task::Emotion => 7,
        Task::Toxicity | Task::Churn => 1,
    }
}

/// The figure a task is tuned for: macro-recall for sentiment, macro-F1 otherwise.
pub fn tuning_metric(task: Task, r: &EvalReport) -> f64 {
    match task {
        Task::Sentiment => r.macro_recall,
        _ => r.macro_f1,
    }
}

fn predict_logits(k: usize, logits: &[Vec<f32>]) -> Vec<usize> {
    logits
        .iter()
        .map(|l| {
            if k == 1 {
                usize::from(l.first().copied().unwrap_or(0.0) >= 0.0)
            } else {
                crate::nlp::fast::argmax(l)
            }
        })
        .collect()
}

fn targets_and_weights(rows: &[Labelled], k: usize, balance: f32) -> (Vec<f32>, Vec<f32>) {
    let classes = k.max(2);
    let mut counts = vec![0usize; classes];
    for r in rows {
        counts[r.gold[0]] += 1;
    }
    let n = rows.len() as f32;
    let cw: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (n / (classes as f32 * c as f32)).powf(balance)
            }
        })
        .collect();
    let mut t = Vec::with_capacity(rows.len() * k);
    let mut w = Vec::with_capacity(rows.len());
    for r in rows {
        if k == 1 {
            t.push(r.gold[0] as f32);
        } else {
            let start = t.len();
            t.resize(start + k, 0.0);
            for &g in &r.gold {
                t[start + g] += 1.0 / r.gold.len() as f32;
            }
        }
        w.push(cw[r.gold[0]]);
    }
    (t, w)
}

fn uniform(rng: &mut ChaCha8Rng, dims: &[usize], bound: f32) -> Result<Tensor, candle_core::Error> {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-bound..bound)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu)
}

fn loss(logits: &Tensor, t: &Tensor, w: &Tensor, k: usize) -> Result<Tensor, candle_core::Error> {
    let per_row = if k == 1 {
        // Binary cross-entropy with logits: max(z, 0) − z·t + ln(1 + e^−|z|).
        let z = logits.squeeze(1)?;
        let soft = z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
        ((z.relu()? - (&z * t)?)? + soft)?
    } else {
        let lp = candle_nn::ops::log_softmax(logits, 1)?;
        (t * lp)?.sum(1)?.neg()?
    };
    (per_row * w)?.sum_all()? / w.sum_all()?.to_scalar::<f32>()? as f64
}

/// Trained head and what choosing its epoch looked like.
struct Fitted {
    mlp: Mlp,
    best_epoch: usize,
    holdout_metric: f64,
}

/// Trains one MLP on `x` (`[n, d]`, standardised), keeping the epoch that
/// scores best on the held-out rows.
#[allow(clippy::too_many_arguments)]
fn fit_mlp(
    task: Task,
    x: &Tensor,
    fit_rows: &[Labelled],
    hx: &Tensor,
    hold_rows: &[Labelled],
    hyper: &MlpHyper,
    seed: u64,
) -> Result<Fitted, EncoderTrainError> {
    let k = k_of(task);
    let (n, d) = x.dims2()?;
    let h = hyper.hidden;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let b1 = 1.0 / (d as f32).sqrt();
    let b2 = 1.0 / (h as f32).sqrt();
    let w1 = Var::from_tensor(&uniform(&mut rng, &[h, d], b1)?)?;
    let bb1 = Var::from_tensor(&uniform(&mut rng, &[h], b1)?)?;
    let w2 = Var::from_tensor(&uniform(&mut rng, &[k, h], b2)?)?;
    let bb2 = Var::from_tensor(&uniform(&mut rng, &[k], b2)?)?;
    let mut opt = AdamW::new(
        vec![w1.clone(), bb1.clone(), w2.clone(), bb2.clone()],
        ParamsAdamW {
            lr: hyper.lr,
            weight_decay: hyper.weight_decay,
            ..Default::default()
        },
    )?;
    let (targets, weights) = targets_and_weights(fit_rows, k, hyper.balance);
    let targets = Tensor::from_vec(targets, (n, k), &Device::Cpu)?;
    let targets = if k == 1 { targets.squeeze(1)? } else { targets };
    let weights = Tensor::from_vec(weights, n, &Device::Cpu)?;
    let snapshot = || -> Result<Mlp, candle_core::Error> {
        Ok(Mlp {
            w1: w1.as_tensor().copy()?,
            b1: bb1.as_tensor().copy()?,
            w2: w2.as_tensor().copy()?,
            b2: bb2.as_tensor().copy()?,
        })
    };
    let mut best = Fitted {
        mlp: snapshot()?,
        best_epoch: 0,
        holdout_metric: f64::NEG_INFINITY,
    };
    let mut order: Vec<u32> = (0..n as u32).collect();
    for epoch in 1..=hyper.epochs {
        order.shuffle(&mut rng);
        let mut total = 0.0;
        let mut steps = 0;
        for chunk in order.chunks(hyper.batch.max(1)) {
            let idx = Tensor::from_slice(chunk, chunk.len(), &Device::Cpu)?;
            let xb = x.index_select(&idx, 0)?;
            let tb = targets.index_select(&idx, 0)?;
            let wb = weights.index_select(&idx, 0)?;
            let hid = xb
                .matmul(&w1.as_tensor().t()?)?
                .broadcast_add(bb1.as_tensor())?
                .relu()?;
            let logits = hid
                .matmul(&w2.as_tensor().t()?)?
                .broadcast_add(bb2.as_tensor())?;
            let l = loss(&logits, &tb, &wb, k)?;
            total += l.to_scalar::<f32>()? as f64;
            steps += 1;
            opt.backward_step(&l)?;
        }
        let mlp = snapshot()?;
        let preds = predict_logits(k, &mlp.forward(hx)?.to_vec2::<f32>()?);
        let r = EvalReport::from_predictions(task, "held-out", "mlp", hold_rows, &preds);
        let m = tuning_metric(task, &r);
        log(format!(
            "{} epoch {epoch}: loss {:.4}, held-out {} {:.4}",
            task.as_str(),
            total / steps.max(1) as f64,
            if task == Task::Sentiment {
                "macro-recall"
            } else {
                "macro-F1"
            },
            m
        ));
        if m > best.holdout_metric {
            best = Fitted {
                mlp,
                best_epoch: epoch,
                holdout_metric: m,
            };
        }
    }
    Ok(best)
}

fn fast_raw_preds(task: Task, raws: &[RawOutput]) -> Vec<usize> {
    raws.iter().map(|r| task.predict_raw(r)).collect()
}

/// Combined outputs for one task only (the other tasks' slots are dummies).
fn blended_preds(task: Task, logits: &[Vec<f32>], fast: &[RawOutput], w: f32) -> Vec<usize> {
    let zero = [0f32; 7];
    logits
        .iter()
        .zip(fast)
        .map(|(l, f)| {
            let mut slots: [&[f32]; 4] = [&zero[..3], &zero[..], &zero[..1], &zero[..1]];
            let t = TASKS
                .iter()
                .position(|(n, _)| *n == task.as_str())
                .unwrap_or(0);
            slots[t] = l;
            let blend = Blend {
                sentiment: w,
                emotion: w,
                toxicity: w,
                churn: w,
            };
            task.predict_raw(&heads::combine(slots, f, &blend))
        })
        .collect()
}

// ---------------------------------------------------------------- train

/// Dev figures of one split.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderDev {
    /// Which split.
    pub split: String,
    /// The encoder tier as shipped (MLP blended with the fast tier).
    pub report: EvalReport,
    /// The MLP head alone.
    pub mlp_only: EvalReport,
    /// The fast tier alone (the model in the binary).
    pub fast_only: EvalReport,
}

/// What `train-encoder` did.
#[derive(Debug, Clone, Serialize)]
pub struct EncoderTrainSummary {
    /// Where the heads were written.
    pub out: PathBuf,
    /// Dev results per split.
    pub dev: Vec<EncoderDev>,
    /// Blend weights chosen.
    pub blend: Blend,
    /// Embedding throughput of the texts not found in the cache.
    pub throughput: Throughput,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Trains the heads, writes them to `out` and scores them on the dev splits.
pub fn train(
    opts: &EncoderTrainOptions,
    out: &Path,
) -> Result<EncoderTrainSummary, EncoderTrainError> {
    let start = Instant::now();
    let device = Device::Cpu;
    let embedder = Embedder::load(&opts.model, &device)?;
    let d = embedder.dim();
    let tasks = load_tasks(opts)?;
    for t in &tasks {
        log(format!(
            "{}: {} fitting rows, {} held out, dev {}",
            t.task.as_str(),
            t.fit.len(),
            t.holdout.len(),
            t.dev
                .iter()
                .map(|(n, r)| format!("{n} ({})", r.len()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    // A fast model that has not seen the held-out rows.
    let exclude: HashSet<String> = tasks
        .iter()
        .flat_map(|t| t.holdout.iter().map(|r| norm_key(&r.text)))
        .collect();
    let fast_dir = opts.cache.join("fast-without-held-out");
    let mut fast_opts = TrainOptions::new(opts.data.clone(), opts.churn.clone(), 42);
    fast_opts.exclude = exclude;
    log("training a fast model without the held-out rows");
    fast_train::train(&fast_opts, &fast_dir)?;
    let fast_held = FastClassifier::load(&fast_dir)?;
    let fast = FastClassifier::embedded()?;

    // Embeddings (cached).
    let mut tp = Throughput::default();
    let texts =
        |rows: &[Labelled]| -> Vec<String> { rows.iter().map(|r| r.text.clone()).collect() };
    let to_tensor = |v: Vec<f32>, n: usize| Tensor::from_vec(v, (n, d), &device);
    struct Embedded {
        fit: Tensor,
        hold: Tensor,
        dev: Vec<Tensor>,
    }
    let mut embedded = Vec::new();
    for t in &tasks {
        let name = t.task.as_str();
        // Fitting and held-out rows together: the cache survives a change of the split.
        let mut all = texts(&t.fit);
        all.extend(texts(&t.holdout));
        let e = embed_cached(
            &embedder,
            &opts.cache,
            &format!("{name}-train"),
            &all,
            opts.embed_batch,
            &mut tp,
        )?;
        let (ef, eh) = e.split_at(t.fit.len() * d);
        let mut dev = Vec::new();
        for (i, (_, rows)) in t.dev.iter().enumerate() {
            let e = embed_cached(
                &embedder,
                &opts.cache,
                &format!("{name}-dev{i}"),
                &texts(rows),
                opts.embed_batch,
                &mut tp,
            )?;
            dev.push(to_tensor(e, rows.len())?);
        }
        embedded.push(Embedded {
            fit: to_tensor(ef.to_vec(), t.fit.len())?,
            hold: to_tensor(eh.to_vec(), t.holdout.len())?,
            dev,
        });
    }

    // Standardisation over every fitting row.
    let all_fit = Tensor::cat(&embedded.iter().map(|e| &e.fit).collect::<Vec<_>>(), 0)?;
    let mean = all_fit.mean(0)?;
    let std = all_fit
        .broadcast_sub(&mean)?
        .sqr()?
        .mean(0)?
        .sqrt()?
        .clamp(1e-6f32, f32::MAX)?;
    drop(all_fit);
    let standardise = |e: &Tensor| e.broadcast_sub(&mean)?.broadcast_div(&std);

    // Heads and blend weights.
    let mut mlps = Vec::new();
    let mut blend = [0f32; 4];
    let mut record_heads = Vec::new();
    for (ti, (t, e)) in tasks.iter().zip(&embedded).enumerate() {
        let hyper = &opts.heads[ti];
        let hx = standardise(&e.hold)?;
        let fitted = fit_mlp(
            t.task,
            &standardise(&e.fit)?,
            &t.fit,
            &hx,
            &t.holdout,
            hyper,
            opts.seed ^ (ti as u64 + 1),
        )?;
        let logits = fitted.mlp.forward(&hx)?.to_vec2::<f32>()?;
        let fast_raw: Vec<RawOutput> = t
            .holdout
            .iter()
            .map(|r| fast_held.classify_raw(&r.text))
            .collect();
        let score = |preds: &[usize]| {
            tuning_metric(
                t.task,
                &EvalReport::from_predictions(t.task, "held-out", "", &t.holdout, preds),
            )
        };
        let fast_alone = score(&fast_raw_preds(t.task, &fast_raw));
        let mut best = (f64::NEG_INFINITY, 0f32);
        let mut grid = Vec::new();
        for &w in &opts.blend_grid {
            let m = score(&blended_preds(t.task, &logits, &fast_raw, w));
            grid.push(serde_json::json!([w, round4(m)]));
            if m > best.0 {
                best = (m, w);
            }
        }
        log(format!(
            "{}: best epoch {} (held-out {:.4}); fast alone {:.4}; blend w = {} → {:.4}",
            t.task.as_str(),
            fitted.best_epoch,
            fitted.holdout_metric,
            fast_alone,
            best.1,
            best.0
        ));
        blend[ti] = best.1;
        record_heads.push(serde_json::json!({
            "task": t.task.as_str(),
            "classes": k_of(t.task),
            "hyper": hyper,
            "fitting_rows": t.fit.len(),
            "held_out_rows": t.holdout.len(),
            "best_epoch": fitted.best_epoch,
            "held_out": {
                "metric": if t.task == Task::Sentiment { "macro_recall" } else { "macro_f1" },
                "mlp": round4(fitted.holdout_metric),
                "fast_without_held_out": round4(fast_alone),
                "blend": round4(best.0),
                "grid": grid,
            },
        }));
        mlps.push(fitted.mlp);
    }
    let blend = Blend {
        sentiment: blend[0],
        emotion: blend[1],
        toxicity: blend[2],
        churn: blend[3],
    };
    let mlps: [Mlp; 4] = mlps
        .try_into()
        .map_err(|_| EncoderTrainError::Invalid("four heads".into()))?;
    let mut heads = Heads {
        mean,
        std,
        mlps,
        meta: HeadsMeta {
            format: heads::FORMAT.into(),
            format_version: heads::FORMAT_VERSION,
            model_id: MODEL_ID.into(),
            encoder: ENCODER_NAME.into(),
            encoder_weights_xxh3: embedder.weights_xxh3().into(),
            dim: d,
            fast_model_id: fast.model_id().into(),
            fast_weights_xxh3: fast.meta().weights_xxh3.clone(),
            blend,
            tensors_xxh3: String::new(),
            training: serde_json::Value::Null,
        },
    };

    // Dev figures of the shipped combination, the MLP alone and the fast tier alone.
    let clf = EncoderClassifier::from_parts(embedder, heads.clone(), fast)?;
    let mut dev = Vec::new();
    for (ti, (t, e)) in tasks.iter().zip(&embedded).enumerate() {
        for ((split, rows), emb) in t.dev.iter().zip(&e.dev) {
            let ts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
            let raws = clf.raw_from_embeddings(&ts, emb)?;
            let preds = fast_raw_preds(t.task, &raws);
            let report = EvalReport::from_predictions(t.task, split, MODEL_ID, rows, &preds);
            let logits = clf.heads().mlps[ti].forward(&clf.heads().standardise(emb)?)?;
            let mlp_preds = predict_logits(k_of(t.task), &logits.to_vec2::<f32>()?);
            let mlp_only =
                EvalReport::from_predictions(t.task, split, "mlp-only", rows, &mlp_preds);
            let fast_preds: Vec<usize> = ts.iter().map(|x| t.task.predict(clf.fast(), x)).collect();
            let fast_only = EvalReport::from_predictions(
                t.task,
                split,
                clf.fast().model_id(),
                rows,
                &fast_preds,
            );
            dev.push(EncoderDev {
                split: split.clone(),
                report,
                mlp_only,
                fast_only,
            });
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    heads.meta.training = serde_json::json!({
        "command": "starling train-encoder --data ../shared/data --model models/cache/all-minilm-l6-v2 --out models/encoder",
        "seed": opts.seed,
        "options": opts,
        "heads": record_heads,
        "held_out_rule": "xxh3(norm_key(text)) % 10 == 0 (churn: % 5 == 0) of each task's training rows",
        "dev": dev.iter().map(|d| {
            let mut r = d.report.dev_record(&d.split);
            r["mlp_only"] = serde_json::json!({ "macro_recall": round4(d.mlp_only.macro_recall), "macro_f1": round4(d.mlp_only.macro_f1) });
            r["fast_only"] = serde_json::json!({ "macro_recall": round4(d.fast_only.macro_recall), "macro_f1": round4(d.fast_only.macro_f1) });
            r
        }).collect::<Vec<_>>(),
        "embedding": {
            "texts_embedded_this_run": tp.texts,
            "seconds": round4(tp.seconds),
            "texts_per_s": if tp.seconds > 0.0 { round4(tp.texts as f64 / tp.seconds) } else { 0.0 },
            "batch": opts.embed_batch,
        },
    });
    heads.save(out)?;
    Ok(EncoderTrainSummary {
        out: out.to_path_buf(),
        dev,
        blend,
        throughput: tp,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(spec: &[(&str, usize)]) -> Vec<Labelled> {
        spec.iter()
            .map(|(t, y)| Labelled {
                text: t.to_string(),
                gold: vec![*y],
            })
            .collect()
    }

    #[test]
    fn an_mlp_learns_a_separable_task_deterministically() {
        // Two clusters in 8 dimensions; class = sign of the first coordinate.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 400;
        let mut x = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let y = i % 2;
            for j in 0..8 {
                let c = if j == 0 {
                    if y == 1 {
                        1.5
                    } else {
                        -1.5
                    }
                } else {
                    0.0
                };
                x.push(c + rng.gen_range(-1.0f32..1.0));
            }
            labels.push((format!("row {i}"), y));
        }
        let spec: Vec<(&str, usize)> = labels.iter().map(|(t, y)| (t.as_str(), *y)).collect();
        let all = rows(&spec);
        let xt = Tensor::from_vec(x, (n, 8), &Device::Cpu).unwrap();
        let (fx, hx) = (
            xt.narrow(0, 0, 300).unwrap(),
            xt.narrow(0, 300, 100).unwrap(),
        );
        let hyper = MlpHyper {
            hidden: 16,
            epochs: 15,
            lr: 1e-2,
            weight_decay: 1e-2,
            batch: 32,
            balance: 1.0,
        };
        let a = fit_mlp(
            Task::Toxicity,
            &fx,
            &all[..300],
            &hx,
            &all[300..],
            &hyper,
            9,
        )
        .unwrap();
        assert!(a.holdout_metric > 0.9, "{}", a.holdout_metric);
        let b = fit_mlp(
            Task::Toxicity,
            &fx,
            &all[..300],
            &hx,
            &all[300..],
            &hyper,
            9,
        )
        .unwrap();
        assert_eq!(
            a.mlp.w1.to_vec2::<f32>().unwrap(),
            b.mlp.w1.to_vec2::<f32>().unwrap()
        );
        // Multi-class with soft targets trains too.
        let y3: Vec<Labelled> = all
            .iter()
            .map(|r| Labelled {
                text: r.text.clone(),
                gold: vec![r.gold[0] * 2],
            })
            .collect();
        let c = fit_mlp(Task::Sentiment, &fx, &y3[..300], &hx, &y3[300..], &hyper, 9).unwrap();
        assert!(c.holdout_metric > 0.6, "{}", c.holdout_metric);
    }

    #[test]
    fn class_weights_balance_and_targets_spread() {
        let r = vec![
            Labelled {
                text: "a".into(),
                gold: vec![0],
            },
            Labelled {
                text: "b".into(),
                gold: vec![0],
            },
            Labelled {
                text: "c".into(),
                gold: vec![0],
            },
            Labelled {
                text: "d".into(),
                gold: vec![2, 1],
            },
        ];
        let (t, w) = targets_and_weights(&r, 3, 1.0);
        assert_eq!(&t[9..], &[0.0, 0.5, 0.5]);
        // 3 of class 0, 1 of class 2: weights 4/9 and 4/3.
        assert!((w[0] - 4.0 / 9.0).abs() < 1e-6 && (w[3] - 4.0 / 3.0).abs() < 1e-6);
        let (t, _) = targets_and_weights(&r[..1], 1, 1.0);
        assert_eq!(t, [0.0]);
    }

    #[test]
    fn blending_a_perfect_fast_tier_reaches_it() {
        let logits = vec![vec![0.0f32, 0.0, 0.0]; 2];
        let mut a = RawOutput {
            sentiment: [0.9, 0.05, 0.05],
            emotion: [1.0 / 7.0; 7],
            toxicity: 0.5,
            churn: 0.5,
        };
        let mut b = a;
        b.sentiment = [0.05, 0.05, 0.9];
        a.toxicity = 0.1;
        assert_eq!(
            blended_preds(Task::Sentiment, &logits, &[a, b], 1.0),
            [0, 2]
        );
        let bin = vec![vec![0.0f32]; 2];
        b.toxicity = 0.8;
        assert_eq!(blended_preds(Task::Toxicity, &bin, &[a, b], 1.0), [0, 1]);
    }

    #[test]
    fn the_held_out_rule_is_about_one_in_ten() {
        let n = (0..5000)
            .filter(|i| is_held_out(&format!("tweet number {i}"), 10))
            .count();
        assert!((400..600).contains(&n), "{n}");
    }
}
