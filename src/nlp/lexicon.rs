//! The CPU lexicon sentiment tier: VADER (Hutto & Gilbert, 2014) through the
//! `vader_sentiment` crate, the scorer every deployment has without a model.
//!
//! Rules:
//! - The sentiment `score` is VADER's `compound` polarity in −1..1. The label
//!   uses VADER's standard thresholds: positive if the score is ≥ 0.05,
//!   negative if ≤ −0.05, neutral in between.
//! - `model` is [`LexiconScorer::MODEL`]. This tier computes sentiment only:
//!   `emotion`, `toxicity` and `churn_risk` are always `None`.
//! - Empty or whitespace-only text is neutral with score 0.0.
//! - Any UTF-8 is accepted. Before scoring, emoji presentation selectors
//!   (U+FE0E, U+FE0F) and skin-tone modifiers are dropped and zero-width
//!   joiners become spaces, and a space is put after every emoji VADER knows,
//!   so that `❤️` or `😂lol` reach VADER's emoji table and word lexicon as they
//!   would written apart.
//! - Only the first [`MAX_SCORED_BYTES`] bytes of a text are scored (cut on a
//!   character boundary), which bounds the time one pathological post takes.
//! - A score that is not finite (never seen; a guard) is reported as 0.0, and
//!   scores are clamped to −1..1.
//!
//! VADER's analyzer only holds references to its static lexicons, so
//! [`LexiconScorer`] is `Send + Sync` and is shared across workers via `Arc`.

use super::truncate;
use crate::domain::{Scores, Sentiment, SentimentLabel};
use std::borrow::Cow;
use std::fmt;
use vader_sentiment::SentimentIntensityAnalyzer;

/// Compound score at or above which a post is positive (VADER's threshold).
pub const POSITIVE_THRESHOLD: f64 = 0.05;
/// Compound score at or below which a post is negative (VADER's threshold).
pub const NEGATIVE_THRESHOLD: f64 = -0.05;
/// Longest prefix of a text that is scored, in bytes.
pub const MAX_SCORED_BYTES: usize = 64 * 1024;

/// The VADER lexicon scorer. Cheap to share: build one, wrap it in an `Arc`.
pub struct LexiconScorer {
    analyzer: SentimentIntensityAnalyzer<'static>,
}

// The classifier shares one scorer across worker threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LexiconScorer>();
};

impl LexiconScorer {
    /// Name and version written in [`Scores::model`].
    pub const MODEL: &'static str = "lexicon-vader-0.1";

    /// Builds the scorer (the lexicons are parsed once per process, lazily).
    pub fn new() -> Self {
        LexiconScorer {
            analyzer: SentimentIntensityAnalyzer::new(),
        }
    }

    /// Scores one text: sentiment only, see the module rules.
    pub fn score(&self, text: &str) -> Scores {
        let score = self.compound(text);
        Scores {
            sentiment: Sentiment {
                label: label_for(score),
                score,
                probs: None,
            },
            emotion: None,
            toxicity: None,
            churn_risk: None,
            model: Self::MODEL.to_string(),
        }
    }

    /// VADER's compound polarity of `text`, in −1..1 (0.0 for empty text).
    pub fn compound(&self, text: &str) -> f64 {
        let text = truncate(text.trim(), MAX_SCORED_BYTES);
        if text.is_empty() {
            return 0.0;
        }
        let prepared = prepare(text);
        if prepared.trim().is_empty() {
            return 0.0;
        }
        let compound = self
            .analyzer
            .polarity_scores(&prepared)
            .get("compound")
            .copied()
            .unwrap_or(0.0);
        if compound.is_finite() {
            compound.clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }
}

impl Default for LexiconScorer {
    fn default() -> Self {
        LexiconScorer::new()
    }
}

impl fmt::Debug for LexiconScorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LexiconScorer")
            .field("model", &Self::MODEL)
            .finish()
    }
}

/// The label of a compound score under VADER's thresholds.
pub fn label_for(score: f64) -> SentimentLabel {
    if score >= POSITIVE_THRESHOLD {
        SentimentLabel::Positive
    } else if score <= NEGATIVE_THRESHOLD {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    }
}

/// Normalises emoji sequences so VADER's per-character emoji table and its
/// whitespace tokenizer see them (see the module doc). ASCII text is borrowed.
fn prepare(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, c) in text.char_indices() {
        match c {
            '\u{FE0E}' | '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' => {}
            '\u{200D}' => out.push(' '),
            c if !c.is_ascii() => {
                out.push(c);
                let s = &text[i..i + c.len_utf8()];
                if vader_sentiment::EMOJI_LEXICON.contains_key(s) {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn score(text: &str) -> Scores {
        LexiconScorer::new().score(text)
    }

    #[test]
    fn clear_positive_is_positive() {
        let s = score("I love this project, the team is amazing and the update is great!");
        assert_eq!(s.sentiment.label, SentimentLabel::Positive, "{s:?}");
        assert!(s.sentiment.score > 0.5, "{s:?}");
    }

    #[test]
    fn clear_negative_is_negative() {
        let s = score("This is a terrible scam. I hate it, worst app ever, total disaster.");
        assert_eq!(s.sentiment.label, SentimentLabel::Negative, "{s:?}");
        assert!(s.sentiment.score < -0.5, "{s:?}");
    }

    #[test]
    fn negation_lowers_the_score() {
        let good = score("the new release is good").sentiment.score;
        let not_good = score("the new release is not good").sentiment.score;
        assert!(good > 0.05, "{good}");
        assert!(not_good < good, "{not_good} vs {good}");
        assert!(not_good < 0.0, "{not_good}");
    }

    #[test]
    fn emoji_carry_sentiment() {
        let joy = score("just checked my portfolio 😂😂");
        assert_eq!(joy.sentiment.label, SentimentLabel::Positive, "{joy:?}");
        let sad = score("missed the airdrop again 😢");
        assert!(sad.sentiment.score < 0.0, "{sad:?}");
    }

    #[test]
    fn emoji_glued_to_words_or_with_selectors_are_still_read() {
        // Without the preparation VADER reads "face with tears of joylol".
        let glued = score("😂lol").sentiment.score;
        let apart = score("😂 lol").sentiment.score;
        assert!((glued - apart).abs() < 1e-12, "{glued} vs {apart}");
        // "joy" must not be read as "joy\u{FE0F}".
        let plain = score("😂").sentiment.score;
        let with_selector = score("😂\u{FE0F}").sentiment.score;
        assert!(plain > 0.05, "{plain}");
        assert!(
            (with_selector - plain).abs() < 1e-12,
            "{with_selector} vs {plain}"
        );
        let thumbs = score("👍 great").sentiment.score;
        let skin_tone = score("👍🏽 great").sentiment.score;
        assert!(
            (skin_tone - thumbs).abs() < 1e-12,
            "{skin_tone} vs {thumbs}"
        );
        let zwj = score("sad\u{200D}day").sentiment.score;
        assert!(zwj < 0.0, "{zwj}");
    }

    #[test]
    fn neutral_informational_text_is_neutral() {
        let s =
            score("The validator upgrade is scheduled for Tuesday at 14:00 UTC; release notes are published on the site.");
        assert_eq!(s.sentiment.label, SentimentLabel::Neutral, "{s:?}");
        assert!(s.sentiment.score.abs() < 0.05, "{s:?}");
    }

    #[test]
    fn empty_and_whitespace_are_neutral_zero() {
        for text in ["", "   ", "\n\t  \r\n"] {
            let s = score(text);
            assert_eq!(s.sentiment.label, SentimentLabel::Neutral);
            assert_eq!(s.sentiment.score, 0.0);
        }
    }

    #[test]
    fn model_is_named_and_uncomputed_fields_are_none() {
        let s = score("good");
        assert_eq!(s.model, LexiconScorer::MODEL);
        assert!(s.emotion.is_none() && s.toxicity.is_none() && s.churn_risk.is_none());
    }

    #[test]
    fn labels_use_vader_thresholds() {
        assert_eq!(label_for(0.05), SentimentLabel::Positive);
        assert_eq!(label_for(0.049), SentimentLabel::Neutral);
        assert_eq!(label_for(-0.049), SentimentLabel::Neutral);
        assert_eq!(label_for(-0.05), SentimentLabel::Negative);
    }

    #[test]
    fn very_long_and_cjk_text_is_scored_within_bounds() {
        let long = "great 😂 東京 terrible ".repeat(20_000);
        let s = score(&long);
        assert!(s.sentiment.score.is_finite() && s.sentiment.score.abs() <= 1.0);
        let cjk = score("比特币今天涨了很多，太好了");
        assert_eq!(cjk.sentiment.score, 0.0);
        // Truncation never splits a character.
        let multibyte = "é".repeat(MAX_SCORED_BYTES);
        assert!(truncate(&multibyte, MAX_SCORED_BYTES).len() <= MAX_SCORED_BYTES);
        assert!(score(&multibyte).sentiment.score.is_finite());
    }

    proptest! {
        #[test]
        fn any_text_scores_finite_within_bounds(text in any::<String>()) {
            let s = score(&text);
            prop_assert!(s.sentiment.score.is_finite());
            prop_assert!((-1.0..=1.0).contains(&s.sentiment.score));
            prop_assert_eq!(s.sentiment.label, label_for(s.sentiment.score));
        }

        #[test]
        fn wordy_text_with_emoji_scores_within_bounds(
            text in "([a-zA-Z!?']{1,8}|😂|😢|❤️|🔥|👍🏽|[ \\n]|not|but|very|kind of){0,60}"
        ) {
            let s = score(&text);
            prop_assert!(s.sentiment.score.is_finite());
            prop_assert!((-1.0..=1.0).contains(&s.sentiment.score));
        }
    }
}
