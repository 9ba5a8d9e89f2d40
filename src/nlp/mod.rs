//! Reading posts: lexicon scoring and entity extraction.
//!
//! - [`lexicon`]: the CPU sentiment tier, VADER's lexicon and rules
//!   ([`LexiconScorer`]).
//! - [`extract`]: attribution of a post to the entities it is counted under
//!   ([`Extractor`]).
//!
//! Both are plain `Send + Sync` values built once and shared by the
//! classifier workers through an `Arc`.

pub mod extract;
pub mod lexicon;

pub use extract::Extractor;
pub use lexicon::LexiconScorer;
