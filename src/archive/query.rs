//! Ordering, aggregation and paging for archive reads: the collectors that
//! rank matching posts by fast fields (so no stored document is read until
//! the page is known), the exact per-author aggregation, and the opaque
//! cursors handed to API clients.

use std::cmp::{Ordering, Reverse};
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::io;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use super::{ArchiveError, F_AUTHOR, F_CREATED, F_ENGAGEMENT, F_FOLLOWERS, F_HANDLE, F_ID};
use super::{F_SENTIMENT_SCORE, MAX_SEARCH_OFFSET};

/// How a [`RankCollector`] orders hits. Every order ends with newest first,
/// then post id descending, so that ties are broken the same way on every
/// call (a `DocAddress` would change when segments merge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rank {
    /// Newest first.
    Newest,
    /// Engagement total descending.
    Engagement,
    /// Relevance score descending.
    Relevance,
}

/// The keyset position of a `recent` cursor: only posts strictly older than
/// it in (created_ms, id) order are returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keyset {
    /// `created_ms` of the last post returned.
    pub created_ms: i64,
    /// Id of the last post returned.
    pub id: String,
}

/// One ranked hit, before its stored document is read.
#[derive(Debug, Clone)]
pub(super) struct Ranked {
    /// The primary sort key (engagement, relevance bits, or 0).
    pub primary: u64,
    /// When the post was created.
    pub created_ms: i64,
    /// The post id (final tie-break and keyset cursor).
    pub id: String,
    /// Where its stored document is.
    pub address: DocAddress,
    /// Relevance score, for [`Rank::Relevance`].
    pub score: Option<f32>,
}

impl Ranked {
    /// Descending order of the ranking: the first hit sorts first.
    fn cmp_desc(&self, other: &Ranked) -> Ordering {
        (other.primary, other.created_ms, &other.id).cmp(&(self.primary, self.created_ms, &self.id))
    }
}

/// Maps a relevance score onto `u64` preserving order (including negative
/// scores and NaN, which sorts last).
fn score_key(score: Score) -> u64 {
    if score.is_nan() {
        return 0;
    }
    let bits = score.to_bits();
    let ordered = if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    u64::from(ordered)
}

/// Collects the best `keep` hits of a query in a [`Rank`] order, skipping
/// those at or before a keyset position. Reads only fast fields.
pub(super) struct RankCollector {
    /// The order.
    pub rank: Rank,
    /// How many hits to keep (offset + page + one to know there is more).
    pub keep: usize,
    /// Only hits strictly after this position (newest-first order) count.
    pub after: Option<Keyset>,
}

/// A hit within one segment: (primary, created_ms, id ordinal, doc, score
/// bits). Ordinals order like the ids within a segment, so the tuple order is
/// the ranking order.
type SegmentHit = (u64, i64, u64, DocId, u32);

/// Per-segment state of a [`RankCollector`].
pub(super) struct RankSegment {
    rank: Rank,
    keep: usize,
    after: Option<Keyset>,
    segment_ord: SegmentOrdinal,
    created: Column<i64>,
    engagement: Column<u64>,
    ids: StrColumn,
    /// Min-heap of kept hits: the worst on top.
    heap: BinaryHeap<Reverse<SegmentHit>>,
    /// Scratch buffer for id look-ups.
    buf: String,
    /// First read error; reported at harvest (collect cannot fail).
    error: Option<io::Error>,
}

fn str_column(segment: &SegmentReader, field: &str) -> tantivy::Result<StrColumn> {
    segment.fast_fields().str(field)?.ok_or_else(|| {
        tantivy::TantivyError::SchemaError(format!("`{field}` is not a string fast field"))
    })
}

impl Collector for RankCollector {
    type Fruit = Vec<Ranked>;
    type Child = RankSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<RankSegment> {
        let ff = segment.fast_fields();
        Ok(RankSegment {
            rank: self.rank,
            keep: self.keep,
            after: self.after.clone(),
            segment_ord,
            created: ff.i64(F_CREATED)?,
            engagement: ff.u64(F_ENGAGEMENT)?,
            ids: str_column(segment, F_ID)?,
            heap: BinaryHeap::new(),
            buf: String::new(),
            error: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        self.rank == Rank::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<io::Result<Vec<Ranked>>>) -> tantivy::Result<Vec<Ranked>> {
        let mut all = Vec::new();
        for fruit in fruits {
            all.extend(fruit?);
        }
        all.sort_by(Ranked::cmp_desc);
        all.truncate(self.keep);
        Ok(all)
    }
}

impl RankSegment {
    /// Whether a hit lies strictly after the keyset position, i.e. is older
    /// (or equally old with a smaller id).
    fn is_after(&mut self, created_ms: i64, ord: u64) -> bool {
        let Some(after) = &self.after else {
            return true;
        };
        match created_ms.cmp(&after.created_ms) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => match self.ids.ord_to_str(ord, &mut self.buf) {
                Ok(true) => self.buf.as_str() < after.id.as_str(),
                Ok(false) => false,
                Err(e) => {
                    self.error.get_or_insert(e);
                    false
                }
            },
        }
    }
}

impl SegmentCollector for RankSegment {
    type Fruit = io::Result<Vec<Ranked>>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.keep == 0 {
            return;
        }
        let Some(ord) = self.ids.ords().first(doc) else {
            return;
        };
        let created_ms = self.created.first(doc).unwrap_or(i64::MIN);
        if !self.is_after(created_ms, ord) {
            return;
        }
        let primary = match self.rank {
            Rank::Newest => 0,
            Rank::Engagement => self.engagement.first(doc).unwrap_or(0),
            Rank::Relevance => score_key(score),
        };
        let entry = Reverse((primary, created_ms, ord, doc, score.to_bits()));
        if self.heap.len() < self.keep {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if entry < *worst {
                *worst = entry;
            }
        }
    }

    fn harvest(self) -> io::Result<Vec<Ranked>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut out = Vec::with_capacity(self.heap.len());
        let mut id = String::new();
        for Reverse((primary, created_ms, ord, doc, score_bits)) in self.heap {
            if !self.ids.ord_to_str(ord, &mut id)? {
                return Err(io::Error::other(format!(
                    "post id ordinal {ord} missing from the dictionary"
                )));
            }
            out.push(Ranked {
                primary,
                created_ms,
                id: id.clone(),
                address: DocAddress::new(self.segment_ord, doc),
                score: (self.rank == Rank::Relevance).then(|| f32::from_bits(score_bits)),
            });
        }
        Ok(out)
    }
}

/// Exact aggregate of one author's matching posts.
#[derive(Debug, Clone, Default)]
pub(super) struct AuthorAgg {
    /// Handle on the author's newest matching post.
    pub handle: String,
    /// `created_ms` of that post (decides which handle wins).
    pub newest_ms: i64,
    /// Matching posts.
    pub posts: u64,
    /// Sum of their engagement totals.
    pub engagement: u64,
    /// Largest follower count seen.
    pub followers: u64,
    /// Sum of their sentiment scores (mean = sum / posts).
    pub sentiment_sum: f64,
}

impl AuthorAgg {
    fn merge(&mut self, other: AuthorAgg) {
        if other.newest_ms > self.newest_ms || self.posts == 0 {
            self.handle = other.handle;
            self.newest_ms = other.newest_ms;
        }
        self.posts += other.posts;
        self.engagement = self.engagement.saturating_add(other.engagement);
        self.followers = self.followers.max(other.followers);
        self.sentiment_sum += other.sentiment_sum;
    }
}

/// Visits every matching post and aggregates per author id, from fast fields.
pub(super) struct AuthorsCollector;

/// Per-segment state of [`AuthorsCollector`], keyed by author ordinal.
pub(super) struct AuthorsSegment {
    authors: StrColumn,
    handles: StrColumn,
    created: Column<i64>,
    engagement: Column<u64>,
    followers: Column<u64>,
    sentiment: Column<f64>,
    /// Author ordinal → (aggregate, ordinal of the newest handle).
    per_author: HashMap<u64, (AuthorAgg, Option<u64>)>,
}

impl Collector for AuthorsCollector {
    type Fruit = HashMap<String, AuthorAgg>;
    type Child = AuthorsSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<AuthorsSegment> {
        let ff = segment.fast_fields();
        Ok(AuthorsSegment {
            authors: str_column(segment, F_AUTHOR)?,
            handles: str_column(segment, F_HANDLE)?,
            created: ff.i64(F_CREATED)?,
            engagement: ff.u64(F_ENGAGEMENT)?,
            followers: ff.u64(F_FOLLOWERS)?,
            sentiment: ff.f64(F_SENTIMENT_SCORE)?,
            per_author: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<io::Result<HashMap<String, AuthorAgg>>>,
    ) -> tantivy::Result<HashMap<String, AuthorAgg>> {
        let mut all: HashMap<String, AuthorAgg> = HashMap::new();
        for fruit in fruits {
            for (author, agg) in fruit? {
                match all.entry(author) {
                    Entry::Occupied(mut e) => e.get_mut().merge(agg),
                    Entry::Vacant(e) => {
                        e.insert(agg);
                    }
                }
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for AuthorsSegment {
    type Fruit = io::Result<HashMap<String, AuthorAgg>>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let Some(author) = self.authors.ords().first(doc) else {
            return;
        };
        let created_ms = self.created.first(doc).unwrap_or(i64::MIN);
        let handle = self.handles.ords().first(doc);
        let (agg, handle_ord) = self.per_author.entry(author).or_default();
        if agg.posts == 0 || created_ms > agg.newest_ms {
            agg.newest_ms = created_ms;
            *handle_ord = handle;
        }
        agg.posts += 1;
        agg.engagement = agg
            .engagement
            .saturating_add(self.engagement.first(doc).unwrap_or(0));
        agg.followers = agg.followers.max(self.followers.first(doc).unwrap_or(0));
        agg.sentiment_sum += self.sentiment.first(doc).unwrap_or(0.0);
    }

    fn harvest(self) -> io::Result<HashMap<String, AuthorAgg>> {
        let mut out = HashMap::with_capacity(self.per_author.len());
        for (author_ord, (mut agg, handle_ord)) in self.per_author {
            let mut author = String::new();
            if !self.authors.ord_to_str(author_ord, &mut author)? {
                return Err(io::Error::other(format!(
                    "author ordinal {author_ord} missing from the dictionary"
                )));
            }
            if let Some(ord) = handle_ord {
                self.handles.ord_to_str(ord, &mut agg.handle)?;
            }
            out.insert(author, agg);
        }
        Ok(out)
    }
}

/// Prefix of `recent` cursors.
const KEYSET_TAG: char = 'k';
/// Prefix of `search` cursors.
const OFFSET_TAG: char = 'o';

/// Encodes a keyset position as a url-safe string: `k{created_ms}.{hex id}`.
pub(crate) fn encode_keyset(created_ms: i64, id: &str) -> String {
    format!("{KEYSET_TAG}{created_ms}.{}", hex::encode(id))
}

/// Decodes a cursor made by [`encode_keyset`].
pub(crate) fn decode_keyset(cursor: &str) -> Result<Keyset, ArchiveError> {
    let bad = || ArchiveError::BadCursor("not a cursor returned by this listing".into());
    let rest = cursor.strip_prefix(KEYSET_TAG).ok_or_else(bad)?;
    let (ms, id) = rest.split_once('.').ok_or_else(bad)?;
    let created_ms = ms.parse::<i64>().map_err(|_| bad())?;
    let id = hex::decode(id).map_err(|_| bad())?;
    let id = String::from_utf8(id).map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Keyset { created_ms, id })
}

/// Encodes a search offset as a url-safe string: `o{offset}`.
pub(super) fn encode_offset(offset: usize) -> String {
    format!("{OFFSET_TAG}{offset}")
}

/// Decodes a cursor made by [`encode_offset`]; offsets past
/// [`MAX_SEARCH_OFFSET`] are refused.
pub(super) fn decode_offset(cursor: &str) -> Result<usize, ArchiveError> {
    let bad = || ArchiveError::BadCursor("not a cursor returned by this search".into());
    let offset = cursor
        .strip_prefix(OFFSET_TAG)
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(bad)?;
    if offset > MAX_SEARCH_OFFSET {
        return Err(ArchiveError::BadCursor(format!(
            "search pages end at {MAX_SEARCH_OFFSET} results; narrow the query"
        )));
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_key_preserves_order() {
        let scores = [-3.5f32, -0.0, 0.0, 0.1, 1.0, 7.25, f32::MAX];
        for w in scores.windows(2) {
            assert!(score_key(w[0]) <= score_key(w[1]), "{w:?}");
        }
        assert!(score_key(f32::NAN) < score_key(-1e30));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_keyset(-5, "a/b?c");
        assert!(c
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-._~".contains(ch)));
        assert_eq!(
            decode_keyset(&c).expect("round trip"),
            Keyset {
                created_ms: -5,
                id: "a/b?c".into()
            }
        );
        for bad in ["", "k", "k1", "k1.zz", "x1.61", "o10", "k1."] {
            assert!(
                matches!(decode_keyset(bad), Err(ArchiveError::BadCursor(_))),
                "{bad}"
            );
        }
        assert_eq!(decode_offset(&encode_offset(40)).expect("offset"), 40);
        for bad in ["", "o", "o-1", "k1.61", "o10001"] {
            assert!(
                matches!(decode_offset(bad), Err(ArchiveError::BadCursor(_))),
                "{bad}"
            );
        }
    }
}
