//! Window arithmetic and the metrics of one entity in one window.
//!
//! All metrics are mergeable (`WindowMetrics::merge`), which is what makes
//! late posts, rollups and restarts exact: a 1-minute window is the merge of
//! its 1-second windows, a late post is a one-post window merged into the
//! stored one. Unique authors are exact up to [`EXACT_AUTHORS`] distinct
//! authors per window and a HyperLogLog estimate (±3.3 %) above, flagged as
//! such in the output.

use crate::domain::{Author, Engagement, SentimentLabel};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// Time resolutions of the series.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Resolution {
    /// 1-second windows.
    #[serde(rename = "1s")]
    Second,
    /// 1-minute rollups.
    #[serde(rename = "1m")]
    Minute,
    /// 1-hour rollups.
    #[serde(rename = "1h")]
    Hour,
}

impl Resolution {
    /// All resolutions, finest first.
    pub const ALL: [Resolution; 3] = [Resolution::Second, Resolution::Minute, Resolution::Hour];

    /// Window length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Resolution::Second => 1_000,
            Resolution::Minute => 60_000,
            Resolution::Hour => 3_600_000,
        }
    }

    /// Start (ms since the epoch) of the window holding `ts_ms`.
    pub fn window_start(self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.millis()) * self.millis()
    }

    /// The name used in URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Second => "1s",
            Resolution::Minute => "1m",
            Resolution::Hour => "1h",
        }
    }

    /// Parses `1s`, `1m`, `1h`.
    pub fn parse(s: &str) -> Option<Resolution> {
        Resolution::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A one-byte tag for storage.
    pub fn tag(self) -> u8 {
        match self {
            Resolution::Second => 0,
            Resolution::Minute => 1,
            Resolution::Hour => 2,
        }
    }
}

/// Distinct authors kept exactly before switching to a sketch.
pub const EXACT_AUTHORS: usize = 256;
/// HyperLogLog precision (2^10 registers: standard error 1.04/32 ≈ 3.3 %).
const HLL_BITS: u32 = 10;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

/// The set of authors of a window: exact while small, a HyperLogLog sketch
/// once large.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AuthorSet {
    /// Sorted, de-duplicated author-id hashes.
    Exact(Vec<u64>),
    /// HyperLogLog registers.
    Sketch(Vec<u8>),
}

impl Default for AuthorSet {
    fn default() -> Self {
        AuthorSet::Exact(Vec::new())
    }
}

impl AuthorSet {
    /// Adds an author by the hash of its id.
    pub fn insert(&mut self, hash: u64) {
        match self {
            AuthorSet::Exact(v) => {
                if let Err(pos) = v.binary_search(&hash) {
                    v.insert(pos, hash);
                    if v.len() > EXACT_AUTHORS {
                        *self = AuthorSet::sketch_of(v);
                    }
                }
            }
            AuthorSet::Sketch(regs) => hll_add(regs, hash),
        }
    }

    fn sketch_of(hashes: &[u64]) -> AuthorSet {
        let mut regs = vec![0u8; HLL_REGISTERS];
        for h in hashes {
            hll_add(&mut regs, *h);
        }
        AuthorSet::Sketch(regs)
    }

    /// Adds every author of `other`.
    pub fn merge(&mut self, other: &AuthorSet) {
        match other {
            AuthorSet::Exact(hashes) => {
                for h in hashes {
                    self.insert(*h);
                }
            }
            AuthorSet::Sketch(theirs) => {
                if let AuthorSet::Exact(mine) = self {
                    *self = AuthorSet::sketch_of(mine);
                }
                if let AuthorSet::Sketch(mine) = self {
                    for (m, t) in mine.iter_mut().zip(theirs) {
                        *m = (*m).max(*t);
                    }
                }
            }
        }
    }

    /// Number of distinct authors, and whether it is an estimate.
    pub fn count(&self) -> (u64, bool) {
        match self {
            AuthorSet::Exact(v) => (v.len() as u64, false),
            AuthorSet::Sketch(regs) => (hll_estimate(regs), true),
        }
    }
}

fn hll_add(regs: &mut [u8], hash: u64) {
    let idx = (hash >> (64 - HLL_BITS)) as usize;
    let rest = (hash << HLL_BITS) | (1 << (HLL_BITS - 1));
    let rank = rest.leading_zeros() as u8 + 1;
    if let Some(r) = regs.get_mut(idx) {
        *r = (*r).max(rank);
    }
}

fn hll_estimate(regs: &[u8]) -> u64 {
    let m = regs.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = regs.iter().map(|r| 2f64.powi(-i32::from(*r))).sum();
    let raw = alpha * m * m / sum;
    let zeros = regs.iter().filter(|r| **r == 0).count();
    let est = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    est.round() as u64
}

/// Stable 64-bit hash of an id (post or author), used for de-duplication
/// and author sets. Stable across runs and versions: it is stored.
pub fn id_hash(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

/// The de-duplication key of a post's copy for `shard`: the copies of one
/// post for different shards count different entities and must not be
/// taken for duplicates of each other. Shard 0 gives [`id_hash`].
pub fn post_key(id: &str, shard: u16) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), u64::from(shard))
}

/// The weight of one post in `sentiment_index`: engagement- and
/// author-weighted, `(1 + ln(1 + engagement)) · (1 + ln(1 + followers) / 10)`.
/// A post with no engagement from an author with no followers weighs 1; a
/// post with 1,000 interactions from an author with 1M followers weighs about
/// 8 · 2.4 ≈ 19, so one viral voice moves the index without owning it.
pub fn post_weight(engagement: &Engagement, author: &Author) -> f64 {
    weight_of(engagement, author.followers)
}

/// [`post_weight`] from the author's follower count.
pub fn weight_of(engagement: &Engagement, followers: u64) -> f64 {
    let e = engagement.total() as f64;
    let f = followers as f64;
    (1.0 + e.ln_1p()) * (1.0 + f.ln_1p() / 10.0)
}

/// Metrics of one entity in one window. Every field is a sum (or a set), so
/// windows merge exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowMetrics {
    /// Posts counted.
    pub volume: u64,
    /// Of those, posts that arrived after the window had closed.
    pub late: u64,
    /// Sum of likes + reposts + replies.
    pub engagement: u64,
    /// Posts labelled positive.
    pub positive: u64,
    /// Posts labelled negative.
    pub negative: u64,
    /// Posts labelled neutral.
    pub neutral: u64,
    /// Sum of sentiment scores (−1..1 each).
    pub sentiment_sum: f64,
    /// Sum of weight · score (see [`post_weight`]).
    pub weighted_sentiment_sum: f64,
    /// Sum of weights.
    pub weight_sum: f64,
    /// Distinct authors.
    pub authors: AuthorSet,
}

/// What one post contributes to a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Hash of the author id.
    pub author_hash: u64,
    /// Interactions.
    pub engagement: u64,
    /// Sentiment label.
    pub label: SentimentLabel,
    /// Sentiment score.
    pub score: f64,
    /// Weight in sentiment_index.
    pub weight: f64,
}

impl WindowMetrics {
    /// Counts one post.
    pub fn add(&mut self, c: &Contribution, late: bool) {
        self.volume += 1;
        if late {
            self.late += 1;
        }
        self.engagement = self.engagement.saturating_add(c.engagement);
        match c.label {
            SentimentLabel::Positive => self.positive += 1,
            SentimentLabel::Negative => self.negative += 1,
            SentimentLabel::Neutral => self.neutral += 1,
        }
        self.sentiment_sum += c.score;
        self.weighted_sentiment_sum += c.weight * c.score;
        self.weight_sum += c.weight;
        self.authors.insert(c.author_hash);
    }

    /// Adds every count of `other` into `self`.
    pub fn merge(&mut self, other: &WindowMetrics) {
        self.volume += other.volume;
        self.late += other.late;
        self.engagement = self.engagement.saturating_add(other.engagement);
        self.positive += other.positive;
        self.negative += other.negative;
        self.neutral += other.neutral;
        self.sentiment_sum += other.sentiment_sum;
        self.weighted_sentiment_sum += other.weighted_sentiment_sum;
        self.weight_sum += other.weight_sum;
        self.authors.merge(&other.authors);
    }

    /// Engagement- and author-weighted mean sentiment in −1..1; `None` for
    /// an empty window.
    pub fn sentiment_index(&self) -> Option<f64> {
        (self.weight_sum > 0.0)
            .then(|| (self.weighted_sentiment_sum / self.weight_sum).clamp(-1.0, 1.0))
    }

    /// The JSON view served by the API.
    pub fn view(&self) -> MetricsView {
        let (unique_authors, estimated) = self.authors.count();
        MetricsView {
            volume: self.volume,
            unique_authors,
            unique_authors_estimated: estimated,
            engagement: self.engagement,
            sentiment_index: self.sentiment_index(),
            sentiment_sum: self.sentiment_sum,
            positive: self.positive,
            negative: self.negative,
            neutral: self.neutral,
            late: self.late,
        }
    }

    /// Encodes for storage.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes from storage.
    pub fn decode(bytes: &[u8]) -> Result<WindowMetrics, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// Window metrics as served by the API (stable field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MetricsView {
    /// Posts counted.
    pub volume: u64,
    /// Distinct authors.
    pub unique_authors: u64,
    /// `unique_authors` is a HyperLogLog estimate (more than 256 authors).
    pub unique_authors_estimated: bool,
    /// Likes + reposts + replies.
    pub engagement: u64,
    /// Weighted mean sentiment in −1..1; absent for an empty window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment_index: Option<f64>,
    /// Plain sum of sentiment scores.
    pub sentiment_sum: f64,
    /// Posts labelled positive.
    pub positive: u64,
    /// Posts labelled negative.
    pub negative: u64,
    /// Posts labelled neutral.
    pub neutral: u64,
    /// Posts that arrived after their window closed (merged, not dropped).
    pub late: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contrib(author: &str, label: SentimentLabel, score: f64, engagement: u64) -> Contribution {
        Contribution {
            author_hash: id_hash(author),
            engagement,
            label,
            score,
            weight: 1.0 + (engagement as f64).ln_1p(),
        }
    }

    #[test]
    fn window_start_floors_including_negative_times() {
        assert_eq!(Resolution::Second.window_start(1_999), 1_000);
        assert_eq!(Resolution::Second.window_start(-1), -1_000);
        assert_eq!(Resolution::Minute.window_start(119_999), 60_000);
        assert_eq!(Resolution::Hour.window_start(3_600_000), 3_600_000);
    }

    #[test]
    fn merge_equals_adding_all_posts_to_one_window() {
        let posts = [
            contrib("a", SentimentLabel::Positive, 0.5, 3),
            contrib("b", SentimentLabel::Negative, -0.7, 0),
            contrib("a", SentimentLabel::Neutral, 0.0, 10),
        ];
        let mut whole = WindowMetrics::default();
        posts.iter().for_each(|p| whole.add(p, false));
        let mut left = WindowMetrics::default();
        let mut right = WindowMetrics::default();
        left.add(&posts[0], false);
        right.add(&posts[1], false);
        right.add(&posts[2], false);
        left.merge(&right);
        assert_eq!(left, whole);
        assert_eq!(whole.view().unique_authors, 2);
        assert_eq!(whole.volume, 3);
        assert_eq!((whole.positive, whole.negative, whole.neutral), (1, 1, 1));
    }

    #[test]
    fn sentiment_index_is_weighted_and_absent_when_empty() {
        assert_eq!(WindowMetrics::default().sentiment_index(), None);
        let mut w = WindowMetrics::default();
        w.add(&contrib("a", SentimentLabel::Positive, 1.0, 1000), false);
        w.add(&contrib("b", SentimentLabel::Negative, -1.0, 0), false);
        let idx = w.sentiment_index().unwrap_or_default();
        assert!(idx > 0.5, "the engaged post should dominate: {idx}");
    }

    #[test]
    fn author_set_switches_to_an_estimate_past_the_exact_limit() {
        let mut s = AuthorSet::default();
        for i in 0..EXACT_AUTHORS {
            s.insert(id_hash(&format!("u{i}")));
        }
        assert_eq!(s.count(), (EXACT_AUTHORS as u64, false));
        for i in 0..20_000 {
            s.insert(id_hash(&format!("u{i}")));
        }
        let (n, est) = s.count();
        assert!(est);
        let err = (n as f64 - 20_000.0).abs() / 20_000.0;
        assert!(err < 0.1, "estimate {n} too far from 20000");
    }

    #[test]
    fn metrics_roundtrip_through_storage_encoding() {
        let mut w = WindowMetrics::default();
        w.add(&contrib("a", SentimentLabel::Positive, 0.25, 2), true);
        assert_eq!(WindowMetrics::decode(&w.encode()).ok(), Some(w));
    }

    proptest! {
        #[test]
        fn window_start_contains_the_time(ts in -10_000_000_000_000i64..10_000_000_000_000i64) {
            for r in Resolution::ALL {
                let start = r.window_start(ts);
                prop_assert!(start <= ts && ts < start + r.millis());
                prop_assert_eq!(start.rem_euclid(r.millis()), 0);
            }
        }

        #[test]
        fn finer_windows_nest_in_coarser_ones(ts in 0i64..10_000_000_000_000i64) {
            let s = Resolution::Second.window_start(ts);
            let m = Resolution::Minute.window_start(ts);
            let h = Resolution::Hour.window_start(ts);
            prop_assert_eq!(Resolution::Minute.window_start(s), m);
            prop_assert_eq!(Resolution::Hour.window_start(m), h);
        }

        #[test]
        fn merge_is_order_independent_for_counts(split in 0usize..50, n in 1usize..50) {
            let posts: Vec<Contribution> = (0..n)
                .map(|i| contrib(&format!("u{}", i % 7), if i % 3 == 0 { SentimentLabel::Positive } else { SentimentLabel::Negative }, (i as f64 / 50.0) - 0.5, i as u64))
                .collect();
            let split = split.min(n);
            let mut a = WindowMetrics::default();
            let mut b = WindowMetrics::default();
            posts[..split].iter().for_each(|p| a.add(p, false));
            posts[split..].iter().for_each(|p| b.add(p, false));
            let mut ab = a.clone();
            ab.merge(&b);
            let mut ba = b.clone();
            ba.merge(&a);
            prop_assert_eq!(ab.volume, n as u64);
            prop_assert_eq!(ab.view().unique_authors, ba.view().unique_authors);
            prop_assert_eq!((ab.positive, ab.negative), (ba.positive, ba.negative));
            prop_assert!((ab.sentiment_sum - ba.sentiment_sum).abs() < 1e-9);
        }
    }
}
