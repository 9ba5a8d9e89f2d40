//! The classifier tier a deployment runs, behind one interface: the
//! classifier workers call [`Scorer::score`] and get [`Scores`] whatever the
//! tier (`classifier.tier` in the config).

use super::{FastClassifier, LexiconScorer};
use crate::config::Tier;
use crate::domain::Scores;

/// A tier that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// The fast model's files are unreadable or inconsistent.
    #[error("fast model: {0}")]
    Fast(#[from] super::fast::FastModelError),
    /// The tier is not part of this build.
    #[error("classifier tier `{0}` is not built yet; use `fast` or `lexicon`")]
    Unavailable(&'static str),
}

/// One classifier tier, built once and shared by the workers.
#[derive(Debug)]
pub enum Scorer {
    /// VADER's lexicon: sentiment only.
    Lexicon(LexiconScorer),
    /// The trained linear model: sentiment, emotion, toxicity, churn risk.
    Fast(Box<FastClassifier>),
}

impl Scorer {
    /// The tier `tier`, with the model shipped in the binary.
    pub fn new(tier: Tier) -> Result<Scorer, ScorerError> {
        match tier {
            Tier::Lexicon => Ok(Scorer::Lexicon(LexiconScorer::new())),
            Tier::Fast => Ok(Scorer::Fast(Box::new(FastClassifier::embedded()?))),
            Tier::Encoder => Err(ScorerError::Unavailable("encoder")),
        }
    }

    /// Scores one text.
    pub fn score(&self, text: &str) -> Scores {
        match self {
            Scorer::Lexicon(l) => l.score(text),
            Scorer::Fast(f) => f.classify(text).to_scores(f.model_id()),
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
        let err = Scorer::new(Tier::Encoder).expect_err("not built");
        assert!(err.to_string().contains("encoder"), "{err}");
    }
}
