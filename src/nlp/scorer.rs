//! The classifier tier a deployment runs, behind one interface: the
//! classifier workers call [`Scorer::score_batch`] and get [`Scores`]
//! whatever the tier (`classifier.tier` in the config).
//!
//! The lexicon and fast tiers score in place; the encoder tier sends the
//! texts to the batching inference worker ([`crate::actors::inference`]),
//! which groups every worker's texts into model calls.
//!
//! [`Scorer::for_pipeline`] never stops the pipeline for the encoder tier:
//! when its files are missing (or the build lacks the `encoder` feature) it
//! runs the fast tier, logs a warning and sets the
//! `starling_classifier_tier_fallback` gauge to 1.

use super::{FastClassifier, LexiconScorer};
use crate::actors::inference::InferenceError;
use crate::config::{ClassifierConfig, Tier};
use crate::domain::Scores;
use crate::telemetry::metrics;

/// A tier that could not be built, or a batch that could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// The fast model's files are unreadable or inconsistent.
    #[error("fast model: {0}")]
    Fast(#[from] super::fast::FastModelError),
    /// The encoder tier's files are missing or inconsistent.
    #[cfg(feature = "encoder")]
    #[error("encoder tier: {0}")]
    Encoder(#[from] super::encoder::EncoderError),
    /// The tier is not part of this build.
    #[error("classifier tier `{0}` is not part of this build (built without the `{0}` cargo feature); use `fast` or `lexicon`")]
    Unavailable(&'static str),
    /// The tier needs a tokio runtime to start its inference worker.
    #[error("the encoder tier needs a tokio runtime for its inference worker")]
    NoRuntime,
    /// The inference worker could not score a batch.
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

/// The encoder tier as the pipeline runs it: the model, and the handle of
/// the batching worker that runs it.
#[cfg(feature = "encoder")]
#[derive(Debug)]
pub struct EncoderScorer {
    clf: std::sync::Arc<super::encoder::EncoderClassifier>,
    batcher: crate::actors::inference::Batcher<Scores>,
}

#[cfg(feature = "encoder")]
impl EncoderScorer {
    /// Loads the tier from `cfg` and starts its inference worker on the
    /// current tokio runtime.
    pub fn start(cfg: &crate::config::EncoderConfig) -> Result<EncoderScorer, ScorerError> {
        use crate::actors::inference::{BatchConfig, Batcher, InferFn};
        let clf = std::sync::Arc::new(super::encoder::EncoderClassifier::load(
            &cfg.model_dir,
            &cfg.heads_dir,
            cfg.device,
        )?);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ScorerError::NoRuntime);
        }
        let model = clf.clone();
        let infer: InferFn<Scores> = std::sync::Arc::new(move |texts: &[String]| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let out = model.classify_batch(&refs).map_err(|e| e.to_string())?;
            Ok(out.iter().map(|c| c.to_scores(model.model_id())).collect())
        });
        let (batcher, _worker) = Batcher::spawn(
            BatchConfig {
                max_batch: cfg.max_batch,
                max_wait: std::time::Duration::from_millis(cfg.max_wait_ms),
                queue: cfg.queue,
            },
            infer,
        );
        Ok(EncoderScorer { clf, batcher })
    }

    /// The model.
    pub fn classifier(&self) -> &super::encoder::EncoderClassifier {
        &self.clf
    }
}

/// One classifier tier, built once and shared by the workers.
#[derive(Debug)]
pub enum Scorer {
    /// VADER's lexicon: sentiment only.
    Lexicon(LexiconScorer),
    /// The trained linear model: sentiment, emotion, toxicity, churn risk.
    Fast(Box<FastClassifier>),
    /// MiniLM embeddings with trained heads, blended with the fast tier.
    #[cfg(feature = "encoder")]
    Encoder(Box<EncoderScorer>),
}

impl Scorer {
    /// The lexicon or fast tier, with the model shipped in the binary. The
    /// encoder tier needs its files and a runtime: [`Scorer::from_config`].
    pub fn new(tier: Tier) -> Result<Scorer, ScorerError> {
        match tier {
            Tier::Lexicon => Ok(Scorer::Lexicon(LexiconScorer::new())),
            Tier::Fast => Ok(Scorer::Fast(Box::new(FastClassifier::embedded()?))),
            Tier::Encoder => Self::encoder(&crate::config::EncoderConfig::default()),
        }
    }

    /// The tier `cfg` names; the encoder tier's inference worker starts on
    /// the current tokio runtime.
    pub fn from_config(cfg: &ClassifierConfig) -> Result<Scorer, ScorerError> {
        match cfg.tier {
            Tier::Encoder => Self::encoder(&cfg.encoder),
            tier => Self::new(tier),
        }
    }

    #[cfg(feature = "encoder")]
    fn encoder(cfg: &crate::config::EncoderConfig) -> Result<Scorer, ScorerError> {
        Ok(Scorer::Encoder(Box::new(EncoderScorer::start(cfg)?)))
    }

    #[cfg(not(feature = "encoder"))]
    fn encoder(_cfg: &crate::config::EncoderConfig) -> Result<Scorer, ScorerError> {
        Err(ScorerError::Unavailable("encoder"))
    }

    /// [`Scorer::from_config`] for the pipeline: if the encoder tier cannot
    /// be built, runs the fast tier instead, says so in a warning and sets
    /// the fallback gauge.
    pub fn for_pipeline(cfg: &ClassifierConfig) -> Result<Scorer, ScorerError> {
        match Self::from_config(cfg) {
            Ok(s) => {
                metrics::CLASSIFIER_TIER_FALLBACK.set(0.0);
                Ok(s)
            }
            Err(e) if cfg.tier == Tier::Encoder => {
                tracing::warn!(
                    error = %e,
                    "classifier.tier = \"encoder\" cannot run: FALLING BACK TO THE FAST TIER \
                     (scores carry model fast-linear-v1; {} = 1)",
                    metrics::CLASSIFIER_TIER_FALLBACK.name()
                );
                metrics::CLASSIFIER_TIER_FALLBACK.set(1.0);
                Self::new(Tier::Fast)
            }
            Err(e) => Err(e),
        }
    }

    /// Model id of the tier's scores.
    pub fn model_id(&self) -> &str {
        match self {
            Scorer::Lexicon(_) => LexiconScorer::MODEL,
            Scorer::Fast(f) => f.model_id(),
            #[cfg(feature = "encoder")]
            Scorer::Encoder(e) => e.clf.model_id(),
        }
    }

    /// Scores one text in place. For the encoder tier this is a blocking
    /// model call of one text (tens of milliseconds); if it fails the
    /// text gets the fast tier's scores (and that model id).
    pub fn score(&self, text: &str) -> Scores {
        match self {
            Scorer::Lexicon(l) => l.score(text),
            Scorer::Fast(f) => f.classify(text).to_scores(f.model_id()),
            #[cfg(feature = "encoder")]
            Scorer::Encoder(e) => match e.clf.classify_batch(&[text]) {
                Ok(mut c) if c.len() == 1 => c.remove(0).to_scores(e.clf.model_id()),
                other => {
                    if let Err(err) = other {
                        tracing::warn!(error = %err, "encoder tier failed on one text; fast tier used");
                    }
                    let f = e.clf.fast();
                    f.classify(text).to_scores(f.model_id())
                }
            },
        }
    }

    /// Scores a batch of texts, in order: in place for the lexicon and fast
    /// tiers, through the batching inference worker for the encoder tier.
    pub async fn score_batch(&self, texts: Vec<String>) -> Result<Vec<Scores>, ScorerError> {
        match self {
            #[cfg(feature = "encoder")]
            Scorer::Encoder(e) => Ok(e.batcher.infer(texts).await?),
            _ => Ok(texts.iter().map(|t| self.score(t)).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_scores_or_says_why_not() {
        let fast = Scorer::new(Tier::Fast).expect("the embedded model loads");
        let s = fast.score("I'm cancelling my subscription, worst service ever");
        assert!(s.churn_risk.is_some_and(|c| c > 0.5), "{s:?}");
        assert!(s.emotion.is_some() && s.toxicity.is_some() && s.sentiment.probs.is_some());
        let lexicon = Scorer::new(Tier::Lexicon).expect("lexicon");
        assert!(lexicon.score("I love this").churn_risk.is_none());
    }

    #[tokio::test]
    async fn batches_score_like_single_texts() {
        let fast = Scorer::new(Tier::Fast).unwrap();
        let texts = vec!["I love it".to_string(), "refund me now".to_string()];
        let b = fast.score_batch(texts.clone()).await.unwrap();
        assert_eq!(b, texts.iter().map(|t| fast.score(t)).collect::<Vec<_>>());
        assert_eq!(b[0].model, fast.model_id());
    }

    #[tokio::test]
    async fn a_missing_encoder_falls_back_to_fast_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ClassifierConfig {
            tier: Tier::Encoder,
            ..Default::default()
        };
        cfg.encoder.model_dir = dir.path().join("no-model");
        cfg.encoder.heads_dir = dir.path().join("no-heads");
        let err = Scorer::from_config(&cfg).unwrap_err();
        let msg = err.to_string();
        if cfg!(feature = "encoder") {
            assert!(msg.contains("fetch-minilm.sh"), "{msg}");
        } else {
            assert!(msg.contains("not part of this build"), "{msg}");
        }
        let s = Scorer::for_pipeline(&cfg).expect("falls back");
        assert!(matches!(s, Scorer::Fast(_)));
        assert_eq!(metrics::CLASSIFIER_TIER_FALLBACK.get(), 1.0);
        let text = metrics::render(&[]);
        assert!(
            text.contains("starling_classifier_tier_fallback 1"),
            "{text}"
        );
    }

    #[cfg(feature = "encoder")]
    #[tokio::test]
    async fn the_encoder_tier_scores_through_the_batching_worker() {
        let dir = tempfile::tempdir().unwrap();
        let (model, heads) = crate::nlp::encoder::test_support::write_tiny_tier(dir.path());
        let mut cfg = ClassifierConfig {
            tier: Tier::Encoder,
            ..Default::default()
        };
        cfg.encoder.model_dir = model;
        cfg.encoder.heads_dir = heads;
        cfg.encoder.max_batch = 2;
        let s = Scorer::from_config(&cfg).expect("tiny encoder tier");
        assert_eq!(s.model_id(), crate::nlp::encoder::MODEL_ID);
        let texts: Vec<String> = ["i love this app", "cancel my subscription", "", "😂 ok"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        let (a, b) = tokio::join!(
            s.score_batch(texts.clone()),
            s.score_batch(texts[..1].to_vec())
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.len(), 4);
        for (t, got) in texts.iter().zip(&a) {
            let one = s.score(t);
            assert_eq!(got.model, crate::nlp::encoder::MODEL_ID);
            assert_eq!(got.sentiment.label, one.sentiment.label);
            assert!((got.sentiment.score - one.sentiment.score).abs() < 1e-4);
        }
        assert_eq!(b[0].sentiment.label, a[0].sentiment.label);
    }
}
