//! The post archive: every enriched post, kept in a tantivy index on disk so
//! the REST API can serve the recent posts of an entity (keyset cursor
//! paging), its top posts by engagement, the authors contributing to it, and
//! full-text search over post text with filters.
//!
//! The stored JSON of the [`EnrichedPost`] is the source of truth for a hit;
//! the other fields exist only to find, filter, rank and aggregate posts
//! (ranking and aggregation read fast fields, so no stored document is read
//! until a page is known). A post id is the upsert key: redelivered posts
//! replace the archived copy instead of duplicating it.
//!
//! Everything here blocks (disk I/O, commits); async callers should use
//! `spawn_blocking`. [`PostArchive`] is `Send + Sync`: reads run concurrently
//! on the last committed snapshot, writes are serialised behind one writer.
//! Each [`PostArchive::add`] commits, so callers should batch posts.

mod query;

pub(crate) use query::{decode_keyset, encode_keyset};

use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Serialize;
use tantivy::collector::Count;
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextOptions, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::domain::{EnrichedPost, EntityRef, SentimentLabel};
use query::{AuthorsCollector, Rank, RankCollector, Ranked};

/// Memory the index writer may buffer before it flushes a segment.
const WRITER_HEAP_BYTES: usize = 50_000_000;
/// Deepest result a search cursor may point at (deep offset paging costs
/// memory and time proportional to the offset).
pub const MAX_SEARCH_OFFSET: usize = 10_000;
/// Longest search text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

// Field names of the index schema.
const F_ID: &str = "id";
const F_TEXT: &str = "text";
const F_ENTITY: &str = "entity";
const F_PLATFORM: &str = "platform";
const F_LANG: &str = "lang";
const F_SENTIMENT: &str = "sentiment";
const F_AUTHOR: &str = "author";
const F_HANDLE: &str = "handle";
const F_FOLLOWERS: &str = "followers";
const F_CREATED: &str = "created_ms";
const F_ENGAGEMENT: &str = "engagement";
const F_SENTIMENT_SCORE: &str = "sentiment_score";
const F_DOC: &str = "doc";

/// What can go wrong in the archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The index failed (I/O, corruption, lock held by another process…).
    #[error("archive index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index directory could not be opened or created.
    #[error("cannot open archive directory {path}: {reason}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The search text is empty or not valid query syntax (a user error).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The paging cursor was not produced by this listing (a user error).
    #[error("bad cursor: {0}")]
    BadCursor(String),
    /// A stored post could not be decoded.
    #[error("archived post {id:?} is unreadable: {reason}")]
    CorruptDoc {
        /// Id of the post, as far as the index knows.
        id: String,
        /// Why it could not be decoded.
        reason: String,
    },
    /// The shared store (ScyllaDB) failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// This process does not serve the request (what serves it is said).
    #[error("{0}")]
    Unavailable(String),
    /// A post could not be encoded for storage.
    #[error("cannot encode post {id:?}: {source}")]
    Encode {
        /// Id of the post.
        id: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
}

impl ArchiveError {
    /// Whether the caller's input caused the error (answer 400, not 500).
    pub fn is_user_error(&self) -> bool {
        matches!(self, ArchiveError::BadQuery(_) | ArchiveError::BadCursor(_))
    }
}

/// An optional `created_at` window, in Unix milliseconds, both ends inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest `created_at` included.
    pub from_ms: Option<i64>,
    /// Latest `created_at` included.
    pub to_ms: Option<i64>,
}

impl TimeRange {
    /// Every post.
    pub const ALL: TimeRange = TimeRange {
        from_ms: None,
        to_ms: None,
    };

    /// Posts created in `from_ms..=to_ms`.
    pub fn between(from_ms: i64, to_ms: i64) -> Self {
        TimeRange {
            from_ms: Some(from_ms),
            to_ms: Some(to_ms),
        }
    }
}

/// One archived post in a result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PostHit {
    /// The post as archived (serialised flat: `post`, `scores`, `entities`).
    #[serde(flatten)]
    pub post: EnrichedPost,
    /// Relevance score; only for search results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

/// A page of posts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page {
    /// The posts, in the listing's order.
    pub posts: Vec<PostHit>,
    /// Opaque url-safe cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Total number of matching posts; only for search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// What one author contributed to an entity.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuthorStat {
    /// Platform-unique author id.
    pub author_id: String,
    /// Handle on the author's newest matching post.
    pub handle: String,
    /// Largest follower count seen on the matching posts.
    pub followers: u64,
    /// Number of matching posts.
    pub posts: u64,
    /// Sum of the matching posts' engagement totals.
    pub engagement: u64,
    /// Mean sentiment score (−1..1) of the matching posts.
    pub mean_sentiment: f64,
}

/// The top authors of an entity.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuthorsPage {
    /// Authors by posts, then engagement, descending.
    pub authors: Vec<AuthorStat>,
    /// Number of distinct authors matched (may exceed `authors.len()`).
    pub total_authors: u64,
}

/// A full-text search with optional filters.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Query text in tantivy syntax over the post text: words (all must
    /// match), `"phrases"`, `OR`, `-excluded`, `+required`.
    pub text: String,
    /// Only posts attributed to this entity.
    pub entity: Option<EntityRef>,
    /// Only posts with this sentiment label.
    pub sentiment: Option<SentimentLabel>,
    /// Only posts from this platform (case-insensitive).
    pub platform: Option<String>,
    /// Only posts in this language (case-insensitive).
    pub lang: Option<String>,
    /// Only posts created in this window.
    pub range: TimeRange,
}

/// Handles of the schema's fields.
#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    text: Field,
    entity: Field,
    platform: Field,
    lang: Field,
    sentiment: Field,
    author: Field,
    handle: Field,
    followers: Field,
    created: Field,
    engagement: Field,
    sentiment_score: Field,
    doc: Field,
}

impl Fields {
    fn schema() -> Schema {
        let mut b = Schema::builder();
        b.add_text_field(F_ID, STRING | STORED | FAST);
        b.add_text_field(F_TEXT, TEXT);
        b.add_text_field(F_ENTITY, STRING);
        b.add_text_field(F_PLATFORM, STRING);
        b.add_text_field(F_LANG, STRING);
        b.add_text_field(F_SENTIMENT, STRING);
        b.add_text_field(F_AUTHOR, STRING | FAST);
        b.add_text_field(F_HANDLE, TextOptions::default().set_fast(None));
        b.add_u64_field(F_FOLLOWERS, FAST);
        b.add_i64_field(F_CREATED, INDEXED | FAST);
        b.add_u64_field(F_ENGAGEMENT, FAST);
        b.add_f64_field(F_SENTIMENT_SCORE, FAST);
        b.add_bytes_field(F_DOC, STORED);
        b.build()
    }

    fn resolve(schema: &Schema) -> Result<Fields, ArchiveError> {
        let f = |name: &str| schema.get_field(name).map_err(ArchiveError::from);
        Ok(Fields {
            id: f(F_ID)?,
            text: f(F_TEXT)?,
            entity: f(F_ENTITY)?,
            platform: f(F_PLATFORM)?,
            lang: f(F_LANG)?,
            sentiment: f(F_SENTIMENT)?,
            author: f(F_AUTHOR)?,
            handle: f(F_HANDLE)?,
            followers: f(F_FOLLOWERS)?,
            created: f(F_CREATED)?,
            engagement: f(F_ENGAGEMENT)?,
            sentiment_score: f(F_SENTIMENT_SCORE)?,
            doc: f(F_DOC)?,
        })
    }
}

/// Orders authors as the listing does: by posts, then engagement,
/// descending, then author id.
pub(crate) fn rank_authors(authors: &mut [AuthorStat]) {
    authors.sort_by(|a, b| {
        (b.posts, b.engagement)
            .cmp(&(a.posts, a.engagement))
            .then_with(|| a.author_id.cmp(&b.author_id))
    });
}

/// The index value of an entity reference: `{kind}:{id}`.
fn entity_value(entity: &EntityRef) -> String {
    format!("{}:{}", entity.kind.as_str(), entity.id)
}

/// The index value of a sentiment label (its JSON name).
fn label_value(label: SentimentLabel) -> &'static str {
    match label {
        SentimentLabel::Negative => "negative",
        SentimentLabel::Neutral => "neutral",
        SentimentLabel::Positive => "positive",
    }
}

/// Where enriched posts are archived and read back: [`PostArchive`] (a
/// tantivy index of one process) or, with ScyllaDB,
/// [`crate::store::scylla::posts::SharedPosts`]. Every call blocks.
pub trait PostStore: Send + Sync + 'static {
    /// Archives `posts` (upsert by id); on `Ok` they are durable and read
    /// back by every listing.
    fn put(&self, posts: &[std::sync::Arc<EnrichedPost>]) -> Result<(), ArchiveError>;

    /// Posts attributed to `entity` within `range`, newest first (ties by
    /// id descending), paged by keyset cursor.
    fn recent(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, ArchiveError>;

    /// Posts attributed to `entity` within `range`, by engagement total
    /// descending, then newest, then id descending.
    fn top(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        limit: usize,
    ) -> Result<Vec<PostHit>, ArchiveError>;

    /// Authors of the posts attributed to `entity` within `range`, exact
    /// over every matching post.
    fn authors(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        limit: usize,
    ) -> Result<AuthorsPage, ArchiveError>;

    /// Full-text search with filters, by relevance.
    fn search(
        &self,
        q: &SearchQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, ArchiveError>;

    /// Drops posts created before `before_ms`; how many.
    fn expire(&self, before_ms: i64) -> Result<u64, ArchiveError>;
}

impl PostStore for PostArchive {
    fn put(&self, posts: &[std::sync::Arc<EnrichedPost>]) -> Result<(), ArchiveError> {
        self.add(posts)
    }

    // Posts attributed to `entity` within `range`, newest first (ties by id
    // descending). `cursor` is a `next_cursor` from a previous page: the
    // next page holds strictly older posts, with no duplicates or gaps even
    // across equal timestamps.
    fn recent(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, ArchiveError> {
        let after = cursor.map(query::decode_keyset).transpose()?;
        let mut range = range;
        if let Some(after) = &after {
            range.to_ms = Some(
                range
                    .to_ms
                    .map_or(after.created_ms, |t| t.min(after.created_ms)),
            );
        }
        let searcher = self.reader.searcher();
        let filter = Self::all_of(self.filters(Some(entity), range));
        let mut ranked = searcher.search(
            filter.as_ref(),
            &RankCollector {
                rank: Rank::Newest,
                keep: limit.saturating_add(1),
                after,
            },
        )?;
        let more = ranked.len() > limit;
        ranked.truncate(limit);
        let next_cursor = if more {
            ranked
                .last()
                .map(|last| query::encode_keyset(last.created_ms, &last.id))
        } else {
            None
        };
        Ok(Page {
            posts: self.load(&searcher, &ranked)?,
            next_cursor,
            total: None,
        })
    }

    // Posts attributed to `entity` within `range`, by engagement total
    // descending, then newest.
    fn top(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        limit: usize,
    ) -> Result<Vec<PostHit>, ArchiveError> {
        let searcher = self.reader.searcher();
        let filter = Self::all_of(self.filters(Some(entity), range));
        let ranked = searcher.search(
            filter.as_ref(),
            &RankCollector {
                rank: Rank::Engagement,
                keep: limit,
                after: None,
            },
        )?;
        self.load(&searcher, &ranked)
    }

    // Authors of the posts attributed to `entity` within `range`, exact
    // over every matching post: by posts, then engagement, descending (then
    // author id), at most `limit`, with the number of distinct authors.
    fn authors(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        limit: usize,
    ) -> Result<AuthorsPage, ArchiveError> {
        let searcher = self.reader.searcher();
        let filter = Self::all_of(self.filters(Some(entity), range));
        let per_author = searcher.search(filter.as_ref(), &AuthorsCollector)?;
        let total_authors = per_author.len() as u64;
        let mut authors: Vec<AuthorStat> = per_author
            .into_iter()
            .map(|(author_id, agg)| AuthorStat {
                author_id,
                handle: agg.handle,
                followers: agg.followers,
                posts: agg.posts,
                engagement: agg.engagement,
                mean_sentiment: if agg.posts == 0 {
                    0.0
                } else {
                    agg.sentiment_sum / agg.posts as f64
                },
            })
            .collect();
        rank_authors(&mut authors);
        authors.truncate(limit);
        Ok(AuthorsPage {
            authors,
            total_authors,
        })
    }

    // Full-text search over post text with `q`'s filters, by relevance
    // descending (ties: newest first). `cursor` is a `next_cursor` from a
    // previous page of the same search; pages end at [`MAX_SEARCH_OFFSET`].
    fn search(
        &self,
        q: &SearchQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, ArchiveError> {
        let text = q.text.trim();
        if text.is_empty() {
            return Err(ArchiveError::BadQuery("the search text is empty".into()));
        }
        if text.len() > MAX_QUERY_BYTES {
            return Err(ArchiveError::BadQuery(format!(
                "the search text is longer than {MAX_QUERY_BYTES} bytes"
            )));
        }
        let offset = cursor.map(query::decode_offset).transpose()?.unwrap_or(0);
        let parsed = self
            .parser
            .parse_query(text)
            .map_err(|e| ArchiveError::BadQuery(e.to_string()))?;
        let mut filters = self.filters(q.entity.as_ref(), q.range);
        if let Some(label) = q.sentiment {
            filters.push(self.term(self.fields.sentiment, label_value(label)));
        }
        if let Some(platform) = &q.platform {
            filters.push(self.term(self.fields.platform, &platform.trim().to_lowercase()));
        }
        if let Some(lang) = &q.lang {
            filters.push(self.term(self.fields.lang, &lang.trim().to_lowercase()));
        }
        // Filters must not change relevance: they score 0.
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, parsed)];
        clauses.extend(filters.into_iter().map(|f| {
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(f, 0.0)) as Box<dyn Query>,
            )
        }));
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let (total, ranked) = searcher.search(
            &query,
            &(
                Count,
                RankCollector {
                    rank: Rank::Relevance,
                    keep: offset.saturating_add(limit).saturating_add(1),
                    after: None,
                },
            ),
        )?;
        let mut ranked: Vec<Ranked> = ranked.into_iter().skip(offset).collect();
        let more = ranked.len() > limit;
        ranked.truncate(limit);
        let next = offset.saturating_add(limit);
        let next_cursor =
            (more && limit > 0 && next <= MAX_SEARCH_OFFSET).then(|| query::encode_offset(next));
        Ok(Page {
            posts: self.load(&searcher, &ranked)?,
            next_cursor,
            total: Some(total as u64),
        })
    }

    // Deletes the posts created before `before_ms` and commits; returns how
    // many there were.
    fn expire(&self, before_ms: i64) -> Result<u64, ArchiveError> {
        let old = || {
            RangeQuery::new(
                Bound::Unbounded,
                Bound::Excluded(Term::from_field_i64(self.fields.created, before_ms)),
            )
        };
        let mut writer = self.writer.lock();
        let count = self.reader.searcher().search(&old(), &Count)? as u64;
        if count == 0 {
            return Ok(0);
        }
        self.commit(&mut writer, "expire", |w| {
            w.delete_query(Box::new(old()))?;
            Ok(())
        })?;
        Ok(count)
    }
}

/// The archive of enriched posts. See the module documentation.
pub struct PostArchive {
    /// Directory of the index (for diagnostics).
    dir: PathBuf,
    /// Schema field handles.
    fields: Fields,
    /// The one writer; holding the lock serialises add/commit/expire.
    writer: Mutex<IndexWriter>,
    /// Reader reloaded by hand after each commit, so a successful write is
    /// visible to the next read.
    reader: IndexReader,
    /// Parses search text over the `text` field.
    parser: QueryParser,
}

impl fmt::Debug for PostArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostArchive")
            .field("dir", &self.dir)
            .field("len", &self.len())
            .finish()
    }
}

impl PostArchive {
    /// Opens the index in `dir`, creating the directory and an empty index
    /// when there is none. Fails if another process holds the index.
    pub fn open(dir: &Path) -> Result<Self, ArchiveError> {
        let open_err = |reason: String| ArchiveError::Open {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let directory = MmapDirectory::open(dir).map_err(|e| open_err(e.to_string()))?;
        let index = Index::open_or_create(directory, Fields::schema())?;
        let fields = Fields::resolve(&index.schema())?;
        let writer = index.writer(WRITER_HEAP_BYTES)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut parser = QueryParser::for_index(&index, vec![fields.text]);
        parser.set_conjunction_by_default();
        Ok(PostArchive {
            dir: dir.to_path_buf(),
            fields,
            writer: Mutex::new(writer),
            reader,
            parser,
        })
    }

    /// Archives `posts`, replacing any archived post with the same id (the
    /// last one wins when the slice repeats an id). Commits before returning:
    /// on `Ok` the posts are durable and visible to reads. On error nothing
    /// of this call is kept.
    pub fn add<P: std::borrow::Borrow<EnrichedPost>>(
        &self,
        posts: &[P],
    ) -> Result<(), ArchiveError> {
        if posts.is_empty() {
            return Ok(());
        }
        let docs = posts
            .iter()
            .map(|p| self.to_document(p.borrow()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut writer = self.writer.lock();
        self.commit(&mut writer, "add", |w| {
            for (id, doc) in docs {
                w.delete_term(id);
                w.add_document(doc)?;
            }
            Ok(())
        })
    }

    /// Makes `change` with the writer (held by the caller) and commits it,
    /// or rolls it back and returns the error (the `what` failed); on `Ok`
    /// the next read sees it.
    fn commit(
        &self,
        writer: &mut IndexWriter,
        what: &str,
        change: impl FnOnce(&mut IndexWriter) -> tantivy::Result<()>,
    ) -> Result<(), ArchiveError> {
        let done = change(writer).and_then(|()| writer.commit().map(|_| ()));
        if let Err(e) = done {
            if let Err(rollback) = writer.rollback() {
                tracing::warn!(error = %rollback, "archive rollback after a failed {what} failed");
            }
            return Err(e.into());
        }
        self.reader.reload()?;
        Ok(())
    }

    /// Number of archived posts.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the archive holds no post.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index document of a post, with its upsert (delete) term.
    fn to_document(
        &self,
        enriched: &EnrichedPost,
    ) -> Result<(Term, TantivyDocument), ArchiveError> {
        let f = &self.fields;
        let p = &enriched.post;
        let json = serde_json::to_vec(enriched).map_err(|source| ArchiveError::Encode {
            id: p.id.clone(),
            source,
        })?;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, &p.id);
        doc.add_text(f.text, &p.text);
        for entity in &enriched.entities {
            doc.add_text(f.entity, entity_value(entity));
        }
        doc.add_text(f.platform, p.platform.to_lowercase());
        if let Some(lang) = &p.lang {
            doc.add_text(f.lang, lang.to_lowercase());
        }
        doc.add_text(f.sentiment, label_value(enriched.scores.sentiment.label));
        doc.add_text(f.author, &p.author.id);
        doc.add_text(f.handle, &p.author.handle);
        doc.add_u64(f.followers, p.author.followers);
        doc.add_i64(f.created, p.created_at.timestamp_millis());
        doc.add_u64(f.engagement, p.engagement.total());
        doc.add_f64(f.sentiment_score, enriched.scores.sentiment.score);
        doc.add_bytes(f.doc, &json);
        Ok((Term::from_field_text(f.id, &p.id), doc))
    }

    /// An exact-match filter on a raw string field.
    fn term(&self, field: Field, value: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        ))
    }

    /// The entity and time-range filters.
    fn filters(&self, entity: Option<&EntityRef>, range: TimeRange) -> Vec<Box<dyn Query>> {
        let mut filters = Vec::new();
        if let Some(entity) = entity {
            filters.push(self.term(self.fields.entity, &entity_value(entity)));
        }
        if range.from_ms.is_some() || range.to_ms.is_some() {
            let bound = |ms: Option<i64>| match ms {
                Some(ms) => Bound::Included(Term::from_field_i64(self.fields.created, ms)),
                None => Bound::Unbounded,
            };
            filters.push(Box::new(RangeQuery::new(
                bound(range.from_ms),
                bound(range.to_ms),
            )));
        }
        filters
    }

    /// All `filters` at once (every post when there is none).
    fn all_of(mut filters: Vec<Box<dyn Query>>) -> Box<dyn Query> {
        match filters.len() {
            0 => Box::new(AllQuery),
            1 => filters.pop().unwrap_or_else(|| Box::new(AllQuery)),
            _ => Box::new(BooleanQuery::new(
                filters.into_iter().map(|q| (Occur::Must, q)).collect(),
            )),
        }
    }

    /// Reads the stored posts of ranked hits, in order.
    fn load(&self, searcher: &Searcher, ranked: &[Ranked]) -> Result<Vec<PostHit>, ArchiveError> {
        ranked
            .iter()
            .map(|hit| {
                let corrupt = |reason: String| ArchiveError::CorruptDoc {
                    id: hit.id.clone(),
                    reason,
                };
                let doc: TantivyDocument = searcher.doc(hit.address)?;
                let bytes = doc
                    .get_first(self.fields.doc)
                    .and_then(|v| v.as_bytes())
                    .ok_or_else(|| corrupt("no stored post".into()))?;
                let post: EnrichedPost =
                    serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
                Ok(PostHit {
                    post,
                    score: hit.score,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EntityKind, Sentiment};
    use chrono::DateTime;

    const T0: i64 = 1_795_000_000_000;

    fn sol() -> EntityRef {
        EntityRef::new(EntityKind::Project, "SOL")
    }

    fn eth() -> EntityRef {
        EntityRef::new(EntityKind::Project, "ETH")
    }

    /// A post by `author` at `T0 + dt_ms`, attributed to `entities` and macro.
    fn post(
        id: &str,
        dt_ms: i64,
        author: &str,
        text: &str,
        entities: &[EntityRef],
    ) -> EnrichedPost {
        let mut p = crate::domain::fixtures::post(id, text);
        p.post.author = crate::domain::fixtures::author(author, &format!("{author}_handle"), 100);
        p.post.created_at = DateTime::from_timestamp_millis(T0 + dt_ms).expect("time");
        p.entities = entities.to_vec();
        p.entities.push(EntityRef::macro_all());
        p
    }

    fn with_likes(mut p: EnrichedPost, likes: u64) -> EnrichedPost {
        p.post.engagement.likes = likes;
        p
    }

    fn with_sentiment(mut p: EnrichedPost, label: SentimentLabel, score: f64) -> EnrichedPost {
        p.scores.sentiment = Sentiment {
            label,
            score,
            probs: None,
        };
        p
    }

    fn ids(hits: &[PostHit]) -> Vec<&str> {
        hits.iter().map(|h| h.post.post.id.as_str()).collect()
    }

    fn open(dir: &Path) -> PostArchive {
        PostArchive::open(dir).expect("open archive")
    }

    #[test]
    fn archive_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PostArchive>();
    }

    #[test]
    fn add_counts_posts_and_upserts_by_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        assert!(archive.is_empty());
        archive
            .add(&[
                post("p1", 0, "a", "first version", &[sol()]),
                post("p2", 1, "a", "second post", &[sol()]),
            ])
            .expect("add");
        assert_eq!(archive.len(), 2);

        // Redelivered with new content, and repeated within one batch.
        archive
            .add(&[
                post("p1", 0, "a", "stale edit", &[sol()]),
                with_likes(post("p1", 0, "a", "edited version", &[sol()]), 9),
            ])
            .expect("re-add");
        assert_eq!(archive.len(), 2);
        let page = archive
            .recent(&sol(), TimeRange::ALL, None, 10)
            .expect("recent");
        assert_eq!(ids(&page.posts), ["p2", "p1"]);
        assert_eq!(page.posts[1].post.post.text, "edited version");
        assert_eq!(page.posts[1].post.post.engagement.likes, 9);
        let q = |text: &str| SearchQuery {
            text: text.into(),
            ..SearchQuery::default()
        };
        assert_eq!(
            archive.search(&q("first"), None, 10).expect("search").total,
            Some(0)
        );
        assert_eq!(
            archive.search(&q("stale"), None, 10).expect("search").total,
            Some(0)
        );
        assert_eq!(
            archive
                .search(&q("edited"), None, 10)
                .expect("search")
                .total,
            Some(1)
        );
        archive.add::<EnrichedPost>(&[]).expect("empty add");
    }

    #[test]
    fn recent_pages_newest_first_without_gaps_across_equal_timestamps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        // 25 SOL posts, three per timestamp, over two commits (two segments),
        // plus ETH posts interleaved in time.
        let sol_posts: Vec<_> = (0..25)
            .map(|i| post(&format!("s{i:02}"), (i / 3) * 10, "a", "gm", &[sol()]))
            .collect();
        archive.add(&sol_posts[..12]).expect("add");
        archive.add(&sol_posts[12..]).expect("add");
        let eth_posts: Vec<_> = (0..5)
            .map(|i| post(&format!("e{i}"), i * 10, "b", "gm", &[eth()]))
            .collect();
        archive.add(&eth_posts).expect("add");

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut sizes = Vec::new();
        loop {
            let page = archive
                .recent(&sol(), TimeRange::ALL, cursor.as_deref(), 10)
                .expect("recent");
            sizes.push(page.posts.len());
            seen.extend(page.posts.iter().map(|h| {
                (
                    h.post.post.created_at.timestamp_millis(),
                    h.post.post.id.clone(),
                )
            }));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(sizes, [10, 10, 5]);
        let mut expected: Vec<_> = sol_posts
            .iter()
            .map(|p| (p.post.created_at.timestamp_millis(), p.post.id.clone()))
            .collect();
        expected.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, expected);

        // An exact multiple of the page size ends without an empty page.
        let first = archive
            .recent(&eth(), TimeRange::ALL, None, 5)
            .expect("recent");
        assert_eq!(ids(&first.posts), ["e4", "e3", "e2", "e1", "e0"]);
        assert_eq!(first.next_cursor, None);

        // The time range applies together with the cursor.
        let range = TimeRange::between(T0 + 10, T0 + 40);
        let page = archive.recent(&sol(), range, None, 4).expect("recent");
        assert_eq!(ids(&page.posts), ["s14", "s13", "s12", "s11"]);
        let next = archive
            .recent(&sol(), range, page.next_cursor.as_deref(), 100)
            .expect("recent");
        assert_eq!(
            ids(&next.posts),
            ["s10", "s09", "s08", "s07", "s06", "s05", "s04", "s03"]
        );
        assert_eq!(next.next_cursor, None);
    }

    #[test]
    fn recent_rejects_foreign_cursors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        for bad in ["garbage", "o10", "k12.zz", ""] {
            let err = archive
                .recent(&sol(), TimeRange::ALL, Some(bad), 10)
                .expect_err("bad cursor");
            assert!(matches!(err, ArchiveError::BadCursor(_)), "{bad}: {err}");
            assert!(err.is_user_error());
        }
        assert!(archive
            .recent(&sol(), TimeRange::ALL, None, 0)
            .expect("limit 0")
            .posts
            .is_empty());
    }

    #[test]
    fn top_orders_by_engagement_then_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        archive
            .add(&[
                with_likes(post("low", 0, "a", "x", &[sol()]), 1),
                with_likes(post("high", 1, "a", "x", &[sol()]), 50),
                with_likes(post("mid-old", 2, "a", "x", &[sol()]), 10),
                with_likes(post("mid-new", 3, "a", "x", &[sol()]), 10),
                with_likes(post("other", 4, "a", "x", &[eth()]), 999),
                with_likes(post("out-of-range", 1_000, "a", "x", &[sol()]), 500),
            ])
            .expect("add");
        let range = TimeRange::between(T0, T0 + 100);
        let top = archive.top(&sol(), range, 3).expect("top");
        assert_eq!(ids(&top), ["high", "mid-new", "mid-old"]);
        assert!(top.iter().all(|h| h.score.is_none()));
        let all = archive.top(&sol(), TimeRange::ALL, 10).expect("top");
        assert_eq!(
            ids(&all),
            ["out-of-range", "high", "mid-new", "mid-old", "low"]
        );
        assert!(archive.top(&sol(), range, 0).expect("top").is_empty());
    }

    #[test]
    fn authors_are_exact_over_all_matching_posts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        let by = |id: &str, dt: i64, author: &str, likes: u64, score: f64, followers: u64| {
            let mut p = with_sentiment(
                with_likes(post(id, dt, author, "x", &[sol()]), likes),
                SentimentLabel::Neutral,
                score,
            );
            p.post.author.followers = followers;
            p
        };
        // Three commits, so the aggregation merges across segments.
        archive
            .add(&[
                by("a1", 0, "ann", 1, 0.5, 10),
                by("b1", 1, "bob", 20, -1.0, 5),
            ])
            .expect("add");
        archive
            .add(&[
                by("a2", 2, "ann", 1, 0.0, 30),
                by("c1", 3, "cat", 2, 1.0, 7),
            ])
            .expect("add");
        let mut renamed = by("a3", 4, "ann", 1, 1.0, 20);
        renamed.post.author.handle = "ann_new".into();
        archive
            .add(&[
                renamed,
                by("b2", 5, "bob", 20, 0.0, 5),
                by("c2", 6, "cat", 3, 0.0, 7),
                with_likes(post("d1", 7, "dan", "x", &[eth()]), 100),
            ])
            .expect("add");

        let page = archive
            .authors(&sol(), TimeRange::ALL, 10)
            .expect("authors");
        assert_eq!(page.total_authors, 3);
        let summary: Vec<_> = page
            .authors
            .iter()
            .map(|a| (a.author_id.as_str(), a.posts, a.engagement, a.followers))
            .collect();
        assert_eq!(
            summary,
            [("ann", 3, 3, 30), ("bob", 2, 40, 5), ("cat", 2, 5, 7)]
        );
        assert_eq!(page.authors[0].handle, "ann_new");
        assert_eq!(page.authors[2].handle, "cat_handle");
        assert!((page.authors[0].mean_sentiment - 0.5).abs() < 1e-9);
        assert!((page.authors[1].mean_sentiment + 0.5).abs() < 1e-9);

        let limited = archive.authors(&sol(), TimeRange::ALL, 1).expect("authors");
        assert_eq!(limited.total_authors, 3);
        assert_eq!(limited.authors.len(), 1);

        let ranged = archive
            .authors(&sol(), TimeRange::between(T0 + 3, T0 + 10), 10)
            .expect("authors");
        let summary: Vec<_> = ranged
            .authors
            .iter()
            .map(|a| (a.author_id.as_str(), a.posts))
            .collect();
        assert_eq!(summary, [("cat", 2), ("bob", 1), ("ann", 1)]);
    }

    #[test]
    fn search_matches_text_and_applies_each_filter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        let mut reddit = post(
            "r1",
            3,
            "c",
            "Solana outage again, validators down",
            &[sol()],
        );
        reddit.post.platform = "Reddit".into();
        reddit.post.lang = Some("de".into());
        archive
            .add(&[
                with_sentiment(
                    post("t1", 0, "a", "solana outage is bad", &[sol()]),
                    SentimentLabel::Negative,
                    -0.8,
                ),
                with_sentiment(
                    post(
                        "t2",
                        1,
                        "a",
                        "solana is fast, solana is great, solana",
                        &[sol()],
                    ),
                    SentimentLabel::Positive,
                    0.9,
                ),
                post("t3", 2, "b", "ethereum outage", &[eth()]),
                reddit,
            ])
            .expect("add");
        let q = |text: &str| SearchQuery {
            text: text.into(),
            ..SearchQuery::default()
        };
        let search = |q: &SearchQuery| archive.search(q, None, 10).expect("search");

        let page = search(&q("outage"));
        assert_eq!(page.total, Some(3));
        assert!(page.posts.iter().all(|h| h.score.is_some_and(|s| s > 0.0)));
        let scores: Vec<f32> = page.posts.iter().filter_map(|h| h.score).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        // Words are all required by default; OR is explicit.
        assert_eq!(ids(&search(&q("solana outage")).posts).len(), 2);
        assert_eq!(search(&q("fast OR ethereum")).total, Some(2));
        // The most relevant first.
        assert_eq!(ids(&search(&q("solana")).posts)[0], "t2");

        let filtered = |f: &dyn Fn(&mut SearchQuery)| {
            let mut query = q("outage");
            f(&mut query);
            let mut found: Vec<String> = search(&query)
                .posts
                .into_iter()
                .map(|h| h.post.post.id)
                .collect();
            found.sort();
            found
        };
        assert_eq!(filtered(&|q| q.entity = Some(eth())), ["t3"]);
        assert_eq!(filtered(&|q| q.entity = Some(sol())), ["r1", "t1"]);
        assert_eq!(
            filtered(&|q| q.sentiment = Some(SentimentLabel::Negative)),
            ["t1"]
        );
        assert_eq!(filtered(&|q| q.platform = Some("REDDIT".into())), ["r1"]);
        assert_eq!(
            filtered(&|q| q.platform = Some("twitter".into())),
            ["t1", "t3"]
        );
        assert_eq!(filtered(&|q| q.lang = Some("de".into())), ["r1"]);
        assert_eq!(
            filtered(&|q| q.range = TimeRange::between(T0 + 1, T0 + 2)),
            ["t3"]
        );
        assert_eq!(
            filtered(&|q| {
                q.entity = Some(sol());
                q.range = TimeRange {
                    from_ms: None,
                    to_ms: Some(T0 + 2),
                };
            }),
            ["t1"]
        );
        // Filters do not change relevance.
        let unfiltered = search(&q("outage"));
        let mut only_sol = q("outage");
        only_sol.entity = Some(sol());
        for hit in search(&only_sol).posts {
            let same = unfiltered
                .posts
                .iter()
                .find(|h| h.post.post.id == hit.post.post.id)
                .expect("in unfiltered results");
            assert_eq!(same.score, hit.score);
        }
    }

    #[test]
    fn search_pages_by_cursor_with_ties_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        let posts: Vec<_> = (0..7)
            .map(|i| post(&format!("p{i}"), i, "a", "same words here", &[sol()]))
            .collect();
        archive.add(&posts).expect("add");
        let query = SearchQuery {
            text: "words".into(),
            ..SearchQuery::default()
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = archive
                .search(&query, cursor.as_deref(), 3)
                .expect("search");
            assert_eq!(page.total, Some(7));
            seen.extend(page.posts.into_iter().map(|h| h.post.post.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, ["p6", "p5", "p4", "p3", "p2", "p1", "p0"]);
        let err = archive
            .search(&query, Some("o10001"), 3)
            .expect_err("too deep");
        assert!(matches!(err, ArchiveError::BadCursor(_)));
        let err = archive
            .search(&query, Some("k1.61"), 3)
            .expect_err("foreign cursor");
        assert!(matches!(err, ArchiveError::BadCursor(_)));
    }

    #[test]
    fn bad_or_empty_search_text_is_a_user_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        for text in [
            "",
            "   ",
            "\"unclosed phrase",
            "(solana",
            "solana AND",
            "-only_excluded",
            "nosuchfield:x",
            "doc:x",
            "created_ms:abc",
        ] {
            let q = SearchQuery {
                text: text.into(),
                ..SearchQuery::default()
            };
            let err = archive.search(&q, None, 10).expect_err(text);
            assert!(matches!(err, ArchiveError::BadQuery(_)), "{text:?}: {err}");
            assert!(err.is_user_error());
        }
        let long = SearchQuery {
            text: "a ".repeat(MAX_QUERY_BYTES),
            ..SearchQuery::default()
        };
        assert!(matches!(
            archive.search(&long, None, 10),
            Err(ArchiveError::BadQuery(_))
        ));
    }

    #[test]
    fn expire_deletes_older_posts_and_counts_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        let posts: Vec<_> = (0..10)
            .map(|i| post(&format!("p{i}"), i * 1000, "a", "words", &[sol()]))
            .collect();
        archive.add(&posts).expect("add");
        assert_eq!(archive.expire(T0 + 4000).expect("expire"), 4);
        assert_eq!(archive.len(), 6);
        assert_eq!(archive.expire(T0 + 4000).expect("expire again"), 0);
        let page = archive
            .recent(&sol(), TimeRange::ALL, None, 100)
            .expect("recent");
        assert_eq!(ids(&page.posts), ["p9", "p8", "p7", "p6", "p5", "p4"]);
        let authors = archive
            .authors(&sol(), TimeRange::ALL, 10)
            .expect("authors");
        assert_eq!(authors.authors[0].posts, 6);
    }

    #[test]
    fn reopening_the_directory_sees_committed_posts() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let archive = open(dir.path());
            archive
                .add(&[
                    post("p1", 0, "a", "durable words", &[sol()]),
                    post("p2", 1, "a", "more", &[sol()]),
                ])
                .expect("add");
        }
        let archive = open(dir.path());
        assert_eq!(archive.len(), 2);
        let page = archive
            .recent(&sol(), TimeRange::ALL, None, 10)
            .expect("recent");
        assert_eq!(ids(&page.posts), ["p2", "p1"]);
        let q = SearchQuery {
            text: "durable".into(),
            ..SearchQuery::default()
        };
        assert_eq!(archive.search(&q, None, 10).expect("search").total, Some(1));
        // Still upserts after reopening.
        archive
            .add(&[post("p1", 0, "a", "rewritten", &[sol()])])
            .expect("add");
        assert_eq!(archive.len(), 2);
    }

    #[test]
    fn concurrent_writers_and_readers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = open(dir.path());
        std::thread::scope(|s| {
            for t in 0..2 {
                let archive = &archive;
                s.spawn(move || {
                    for batch in 0..5 {
                        let posts: Vec<_> = (0..4)
                            .map(|i| {
                                post(
                                    &format!("t{t}b{batch}i{i}"),
                                    batch * 10 + i,
                                    "a",
                                    "x",
                                    &[sol()],
                                )
                            })
                            .collect();
                        archive.add(&posts).expect("add");
                        archive
                            .recent(&sol(), TimeRange::ALL, None, 5)
                            .expect("recent");
                    }
                });
            }
        });
        assert_eq!(archive.len(), 40);
    }

    #[test]
    fn hits_serialise_flat() {
        let hit = PostHit {
            post: post("p1", 0, "a", "x", &[sol()]),
            score: None,
        };
        let json = serde_json::to_value(&hit).expect("json");
        assert_eq!(json["post"]["id"], "p1");
        assert_eq!(json["scores"]["sentiment"]["label"], "neutral");
        assert_eq!(json["entities"][0]["kind"], "project");
        assert!(json.get("score").is_none());
    }
}
