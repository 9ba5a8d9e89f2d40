//! Archived posts in ScyllaDB, for the listings every process serves the
//! same: [`ScyllaPosts`] keeps one row per post and entity in
//! `posts_by_entity`, clustered newest first (then by post id descending,
//! the listings' tie-break).
//!
//! **Partitions.** A partition holds one entity's posts of one minute, and
//! for the market (`macro`) and platforms, which see every post or a large
//! share, one of [`WIDE_PARTS`] slices of that minute (by post id). So at
//! 10,000 posts/s the market's partitions hold 75,000 rows, and no entity's
//! partition grows past its posts of a minute. `post_minutes` lists the
//! minutes an entity has posts in (one row per entity and minute), so a
//! sparse entity's listing reads only the minutes it posted in.
//!
//! - **recent** walks those minutes newest first; in each, a multi-column
//!   keyset bound and a `LIMIT` per slice, merged: a page reads at most a
//!   page (plus one row) per slice it crosses;
//! - **top** and **authors** read the key columns of every post of the
//!   entity in the range (no post bodies) and rank or aggregate them here;
//!   then top reads the bodies of the winners. That is a scan of the range:
//!   it costs what the entity posted in it;
//! - **search** needs a full-text index, which ScyllaDB has not:
//!   [`SharedPosts`] answers it from the process's own tantivy index
//!   (the posts this process archived) and says so where there is none.
//!
//! A redelivered post writes the same rows (same keys). Retention is the
//! tables' TTL (`store.retention_posts_days`: the table's default for the
//! posts, set by `migrate`; per write for the minute list).

use super::schema::DAY_MS;
use super::{now_ms, Access, Cluster};
use crate::archive::{
    ArchiveError, AuthorStat, AuthorsPage, Page, PostArchive, PostHit, PostStore, SearchQuery,
    TimeRange,
};
use crate::domain::{EnrichedPost, EntityKind, EntityRef};
use crate::store::StoreError;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One partition's span.
const MINUTE_MS: i64 = 60_000;
/// Slices of a minute of the market's and the platforms' posts.
pub const WIDE_PARTS: i8 = 8;
/// Minutes remembered as listed in `post_minutes` (then forgotten at once:
/// listing a minute again is harmless).
const LISTED_MAX: usize = 100_000;

fn minute(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS)
}

/// How many slices a minute of `kind`'s posts has.
fn parts(kind: EntityKind) -> i8 {
    match kind {
        EntityKind::Macro | EntityKind::Platform => WIDE_PARTS,
        _ => 1,
    }
}

/// The slice a post falls in, for an entity of `kind`.
fn part(kind: EntityKind, post_id: &str) -> i8 {
    let n = parts(kind);
    if n == 1 {
        return 0;
    }
    (xxhash_rust::xxh3::xxh3_64(post_id.as_bytes()) % n as u64) as i8
}

/// The key columns of a post's row: what top and authors rank by.
type KeyRow = (i64, String, i64, String, String, i64, f64);

/// Posts in the cluster's keyspace.
#[derive(Debug)]
pub struct ScyllaPosts {
    cluster: Arc<Cluster>,
    retention_ms: i64,
    retention_s: i32,
    /// (kind, id, minute) this process has listed in `post_minutes`.
    listed: Mutex<HashSet<(i8, String, i64)>>,
    put: String,
    list: String,
    minutes: String,
    page: String,
    keys: String,
    body: String,
}

impl ScyllaPosts {
    /// The post tables on `cluster`; posts are kept `retention_days`.
    pub fn new(cluster: Arc<Cluster>, retention_days: u64) -> ScyllaPosts {
        let (t, m) = (
            cluster.table("posts_by_entity"),
            cluster.table("post_minutes"),
        );
        let key = "kind = ? AND id = ? AND minute = ? AND part = ?";
        let retention_ms = i64::try_from(retention_days)
            .unwrap_or(i64::MAX / DAY_MS)
            .saturating_mul(DAY_MS);
        ScyllaPosts {
            put: format!(
                "INSERT INTO {t} (kind, id, minute, part, created_ms, post_id, engagement, \
                 author_id, handle, followers, sentiment, post) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            list: format!("INSERT INTO {m} (kind, id, minute) VALUES (?, ?, ?) USING TTL ?"),
            minutes: format!(
                "SELECT minute FROM {m} WHERE kind = ? AND id = ? AND minute >= ? AND minute <= ?"
            ),
            page: format!(
                "SELECT created_ms, post_id, post FROM {t} WHERE {key} \
                 AND (created_ms, post_id) >= (?, ?) AND (created_ms, post_id) < (?, ?) LIMIT ?"
            ),
            keys: format!(
                "SELECT created_ms, post_id, engagement, author_id, handle, followers, sentiment \
                 FROM {t} WHERE {key} AND created_ms >= ? AND created_ms <= ?"
            ),
            body: format!("SELECT post FROM {t} WHERE {key} AND created_ms = ? AND post_id = ?"),
            retention_ms,
            retention_s: i32::try_from(retention_ms / 1_000).unwrap_or(i32::MAX),
            listed: Mutex::new(HashSet::new()),
            cluster,
        }
    }

    /// Every statement it runs (`prepare_all` checks them on a live cluster).
    pub fn statements(&self) -> Vec<String> {
        [
            &self.put,
            &self.list,
            &self.minutes,
            &self.page,
            &self.keys,
            &self.body,
        ]
        .map(String::clone)
        .to_vec()
    }

    /// The range a listing covers: what it asks, within the retention
    /// (older rows are gone with their TTL) and at most a day ahead.
    fn bounds(&self, range: TimeRange) -> (i64, i64) {
        let now = now_ms();
        (
            range
                .from_ms
                .unwrap_or(now.saturating_sub(self.retention_ms)),
            range.to_ms.unwrap_or(now.saturating_add(DAY_MS)),
        )
    }

    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, ArchiveError> {
        Ok(self.cluster.block(fut)??)
    }

    /// The key columns of every post of `entity` in `range`.
    fn key_rows(&self, entity: &EntityRef, range: TimeRange) -> Result<Vec<KeyRow>, ArchiveError> {
        let (from, to) = self.bounds(range);
        let (c, minutes, keys, entity) = (
            self.cluster.clone(),
            self.minutes.clone(),
            self.keys.clone(),
            entity.clone(),
        );
        self.run(async move {
            let kind = entity.kind.tag() as i8;
            let listed: Vec<(i64,)> = c
                .select(
                    &minutes,
                    (kind, entity.id.as_str(), minute(from), minute(to)),
                )
                .await?;
            let mut out = Vec::new();
            for (m,) in listed {
                for p in 0..parts(entity.kind) {
                    let rows: Vec<KeyRow> = c
                        .select(&keys, (kind, entity.id.as_str(), m, p, from, to))
                        .await?;
                    out.extend(rows);
                }
            }
            Ok(out)
        })
    }
}

/// The `limit` best rows by engagement, then newest, then id (descending).
fn top_keys(mut rows: Vec<KeyRow>, limit: usize) -> Vec<KeyRow> {
    rows.sort_by(|a, b| (b.2, b.0, &b.1).cmp(&(a.2, a.0, &a.1)));
    rows.truncate(limit);
    rows
}

/// The authors of `rows` (in any order; the handle is the one on an
/// author's newest post), ranked as the listing ranks them, at most `limit`.
fn author_stats(rows: Vec<KeyRow>, limit: usize) -> AuthorsPage {
    let mut per: HashMap<String, (AuthorStat, i64)> = HashMap::new();
    for (created, _, engagement, author, handle, followers, sentiment) in rows {
        let (a, newest) = per.entry(author.clone()).or_insert_with(|| {
            let blank = AuthorStat {
                author_id: author,
                handle: String::new(),
                followers: 0,
                posts: 0,
                engagement: 0,
                mean_sentiment: 0.0,
            };
            (blank, i64::MIN)
        });
        if created > *newest || a.posts == 0 {
            a.handle = handle;
            *newest = created;
        }
        a.posts += 1;
        a.engagement = a.engagement.saturating_add(engagement.max(0) as u64);
        a.followers = a.followers.max(followers.max(0) as u64);
        a.mean_sentiment += sentiment; // a sum until the end
    }
    let total_authors = per.len() as u64;
    let mut authors: Vec<AuthorStat> = per
        .into_values()
        .map(|(mut a, _)| {
            a.mean_sentiment /= a.posts.max(1) as f64;
            a
        })
        .collect();
    crate::archive::rank_authors(&mut authors);
    authors.truncate(limit);
    AuthorsPage {
        authors,
        total_authors,
    }
}

fn hit(text: &str) -> Result<PostHit, ArchiveError> {
    let post: EnrichedPost = serde_json::from_str(text).map_err(|e| ArchiveError::CorruptDoc {
        id: String::new(),
        reason: e.to_string(),
    })?;
    Ok(PostHit { post, score: None })
}

impl PostStore for ScyllaPosts {
    fn put(&self, posts: &[Arc<EnrichedPost>]) -> Result<(), ArchiveError> {
        let mut rows = Vec::new();
        let mut minutes = Vec::new();
        {
            let mut listed = self.listed.lock();
            if listed.len() > LISTED_MAX {
                listed.clear();
            }
            for p in posts {
                let text = match serde_json::to_string(p.as_ref()) {
                    Ok(t) => t,
                    Err(source) => {
                        // Minutes noted as listed above are not written.
                        listed.clear();
                        return Err(ArchiveError::Encode {
                            id: p.post.id.clone(),
                            source,
                        });
                    }
                };
                let created = p.post.created_at.timestamp_millis();
                for e in &p.entities {
                    let (kind, m) = (e.kind.tag() as i8, minute(created));
                    if listed.insert((kind, e.id.clone(), m)) {
                        minutes.push((kind, e.id.clone(), m, self.retention_s));
                    }
                    rows.push((
                        (kind, e.id.clone(), m, part(e.kind, &p.post.id)),
                        created,
                        p.post.id.clone(),
                        i64::try_from(p.post.engagement.total()).unwrap_or(i64::MAX),
                        p.post.author.id.clone(),
                        p.post.author.handle.clone(),
                        i64::try_from(p.post.author.followers).unwrap_or(i64::MAX),
                        p.scores.sentiment.score,
                        text.clone(),
                    ));
                }
            }
        }
        let (c, put, list) = (self.cluster.clone(), self.put.clone(), self.list.clone());
        let written = self.run(async move {
            // Rows of many partitions: one request each, in flight together
            // (bounded by the cluster's permits). The posts before the
            // minute list, so a listed minute has its posts.
            let writes = rows.into_iter().map(|row| {
                let (c, put) = (c.clone(), put.clone());
                let ((kind, id, m, part), created, post_id, eng, author, handle, fol, sent, text) =
                    row;
                async move {
                    c.execute(
                        &put,
                        Access::Write,
                        (
                            kind, id, m, part, created, post_id, eng, author, handle, fol, sent,
                            text,
                        ),
                    )
                    .await
                    .map(|_| ())
                }
            });
            for r in futures_util::future::join_all(writes).await {
                r?;
            }
            let lists = minutes.into_iter().map(|row| {
                let (c, list) = (c.clone(), list.clone());
                async move { c.execute(&list, Access::Write, row).await.map(|_| ()) }
            });
            for r in futures_util::future::join_all(lists).await {
                r?;
            }
            Ok(())
        });
        if written.is_err() {
            // Not sure what was listed: list again next time.
            self.listed.lock().clear();
        }
        written
    }

    fn recent(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, ArchiveError> {
        let after = cursor.map(crate::archive::decode_keyset).transpose()?;
        let (from, to) = self.bounds(range);
        // Strictly before the cursor, or up to `to` inclusive.
        let upper = match &after {
            Some(k) if k.created_ms <= to => (k.created_ms, k.id.clone()),
            _ => (to.saturating_add(1), String::new()),
        };
        let keep = limit.saturating_add(1);
        let (c, minutes, page, entity) = (
            self.cluster.clone(),
            self.minutes.clone(),
            self.page.clone(),
            entity.clone(),
        );
        let texts = self.run(async move {
            let kind = entity.kind.tag() as i8;
            let listed: Vec<(i64,)> = c
                .select(
                    &minutes,
                    (kind, entity.id.as_str(), minute(from), minute(upper.0)),
                )
                .await?;
            let mut out: Vec<String> = Vec::new();
            // Newest minute first (the list comes oldest first).
            for (m,) in listed.into_iter().rev() {
                if out.len() >= keep {
                    break;
                }
                let n = i32::try_from(keep - out.len()).unwrap_or(i32::MAX);
                let mut rows: Vec<(i64, String, String)> = Vec::new();
                for p in 0..parts(entity.kind) {
                    let slice: Vec<(i64, String, String)> = c
                        .select(
                            &page,
                            (
                                kind,
                                entity.id.as_str(),
                                m,
                                p,
                                from,
                                "",
                                upper.0,
                                upper.1.as_str(),
                                n,
                            ),
                        )
                        .await?;
                    rows.extend(slice);
                }
                rows.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
                out.extend(rows.into_iter().take(keep - out.len()).map(|(_, _, t)| t));
            }
            Ok(out)
        })?;
        let mut posts = texts
            .iter()
            .map(|t| hit(t))
            .collect::<Result<Vec<_>, _>>()?;
        let more = posts.len() > limit;
        posts.truncate(limit);
        let next_cursor = if more {
            posts.last().map(|h| {
                crate::archive::encode_keyset(
                    h.post.post.created_at.timestamp_millis(),
                    &h.post.post.id,
                )
            })
        } else {
            None
        };
        Ok(Page {
            posts,
            next_cursor,
            total: None,
        })
    }

    fn top(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        limit: usize,
    ) -> Result<Vec<PostHit>, ArchiveError> {
        let rows = top_keys(self.key_rows(entity, range)?, limit);
        let (c, cql, entity) = (self.cluster.clone(), self.body.clone(), entity.clone());
        let texts = self.run(async move {
            let kind = entity.kind.tag() as i8;
            let mut out = Vec::new();
            for (created, post_id, ..) in rows {
                let key = (
                    kind,
                    entity.id.as_str(),
                    minute(created),
                    part(entity.kind, &post_id),
                );
                let found: Vec<(String,)> = c
                    .select(
                        &cql,
                        (key.0, key.1, key.2, key.3, created, post_id.as_str()),
                    )
                    .await?;
                out.extend(found.into_iter().map(|(t,)| t));
            }
            Ok(out)
        })?;
        texts.iter().map(|t| hit(t)).collect()
    }

    fn authors(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        limit: usize,
    ) -> Result<AuthorsPage, ArchiveError> {
        Ok(author_stats(self.key_rows(entity, range)?, limit))
    }

    fn search(
        &self,
        _q: &SearchQuery,
        _cursor: Option<&str>,
        _limit: usize,
    ) -> Result<Page, ArchiveError> {
        Err(ArchiveError::Unavailable(
            "full-text search is served by the aggregating processes (each over the posts it \
             archived): this process keeps no search index"
                .into(),
        ))
    }

    fn expire(&self, _before_ms: i64) -> Result<u64, ArchiveError> {
        Ok(0)
    }
}

/// The posts of a process over ScyllaDB: the listings from the shared
/// table, search from this process's own index when it archives (the posts
/// of the shards it owns).
#[derive(Debug)]
pub struct SharedPosts {
    /// The shared table.
    pub posts: ScyllaPosts,
    /// This process's search index (aggregating processes).
    pub index: Option<Arc<PostArchive>>,
}

impl PostStore for SharedPosts {
    fn put(&self, posts: &[Arc<EnrichedPost>]) -> Result<(), ArchiveError> {
        self.posts.put(posts)?;
        if let Some(index) = &self.index {
            index.add(posts)?;
        }
        Ok(())
    }

    fn recent(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, ArchiveError> {
        self.posts.recent(entity, range, cursor, limit)
    }

    fn top(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        limit: usize,
    ) -> Result<Vec<PostHit>, ArchiveError> {
        self.posts.top(entity, range, limit)
    }

    fn authors(
        &self,
        entity: &EntityRef,
        range: TimeRange,
        limit: usize,
    ) -> Result<AuthorsPage, ArchiveError> {
        self.posts.authors(entity, range, limit)
    }

    fn search(
        &self,
        q: &SearchQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, ArchiveError> {
        match &self.index {
            Some(index) => index.search(q, cursor, limit),
            None => self.posts.search(q, cursor, limit),
        }
    }

    fn expire(&self, before_ms: i64) -> Result<u64, ArchiveError> {
        match &self.index {
            Some(index) => index.expire(before_ms),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key rows in no particular order (slices of a minute are read one
    /// after the other): (created, id, engagement, author, handle,
    /// followers, sentiment).
    fn rows() -> Vec<KeyRow> {
        [
            (2_000, "q2", 5, "ann", 0.1),
            (4_000, "q4", 2, "ann", 0.3),
            (3_000, "q3", 1, "cy", 0.0),
            (0, "q0", 5, "ann", 0.5),
            (1_000, "q1", 9, "bob", -0.5),
        ]
        .into_iter()
        .map(|(t, id, e, a, s)| {
            (
                t,
                id.to_string(),
                e,
                a.to_string(),
                format!("{a}_{id}"),
                e * 10,
                s,
            )
        })
        .collect()
    }

    #[test]
    fn top_ranks_by_engagement_then_newest() {
        let ids: Vec<String> = top_keys(rows(), 3).into_iter().map(|r| r.1).collect();
        assert_eq!(ids, vec!["q1", "q2", "q0"]);
    }

    #[test]
    fn authors_are_aggregated_over_every_row() {
        let page = author_stats(rows(), 2);
        assert_eq!(page.total_authors, 3);
        let ann = &page.authors[0];
        assert_eq!(
            (
                ann.author_id.as_str(),
                ann.handle.as_str(),
                ann.posts,
                ann.engagement,
                ann.followers
            ),
            ("ann", "ann_q4", 3, 12, 50)
        );
        assert!((ann.mean_sentiment - 0.3).abs() < 1e-9);
        assert_eq!(page.authors[1].author_id, "bob");
    }

    #[test]
    fn only_the_market_and_platforms_are_sliced_and_a_post_stays_in_its_slice() {
        assert_eq!(parts(EntityKind::Project), 1);
        assert_eq!(part(EntityKind::Project, "t-1"), 0);
        let slices: HashSet<i8> = (0..200)
            .map(|i| part(EntityKind::Macro, &format!("t-{i}")))
            .collect();
        assert_eq!(slices.len(), WIDE_PARTS as usize, "every slice is used");
        assert!(slices.iter().all(|p| (0..WIDE_PARTS).contains(p)));
        assert_eq!(
            part(EntityKind::Macro, "t-7"),
            part(EntityKind::Macro, "t-7")
        );
        assert_eq!(minute(59_999), 0);
        assert_eq!(minute(-1), -1);
    }
}
