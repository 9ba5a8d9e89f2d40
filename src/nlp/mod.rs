//! Reading posts: lexicon scoring and entity extraction.
//!
//! - [`lexicon`]: the CPU sentiment tier, VADER's lexicon and rules
//!   ([`LexiconScorer`]).
//! - [`extract`]: attribution of a post to the entities it is counted under
//!   ([`Extractor`]).
//! - [`fast`]: the trained fast classifier tier: sentiment, emotion,
//!   toxicity and churn risk from one linear model over hashed features
//!   ([`FastClassifier`]).
//! - `encoder` (cargo feature `encoder`, on by default): the encoder tier,
//!   all-MiniLM-L6-v2 embeddings with trained heads blended with the fast
//!   tier (`EncoderClassifier`); same outputs, better sentiment, much slower.
//! - [`scorer`]: the tier a deployment runs, behind one interface
//!   ([`Scorer`]).
//!
//! All are plain `Send + Sync` values built once and shared by the
//! classifier workers through an `Arc`.

#[cfg(feature = "encoder")]
pub mod encoder;
pub mod extract;
pub mod fast;
pub mod lexicon;
pub mod scorer;

#[cfg(feature = "encoder")]
pub use encoder::EncoderClassifier;
pub use extract::Extractor;
pub use fast::FastClassifier;
pub use lexicon::LexiconScorer;
pub use scorer::Scorer;

/// The longest prefix of `text` of at most `max` bytes ending on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
