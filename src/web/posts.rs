//! Post lookups served from the post archive: an entity's recent posts
//! (cursor paging), its top posts and contributing authors, and full-text
//! search over every archived post.

use super::error::ApiError;
use super::queries;
use super::routes::parse_kind;
use super::AppState;
use crate::archive::{ArchiveError, SearchQuery, TimeRange};
use crate::domain::{EntityRef, SentimentLabel};
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// Largest page of posts.
pub const MAX_POSTS: usize = 100;
/// Largest page of authors.
pub const MAX_AUTHORS: usize = 1_000;

impl From<ArchiveError> for ApiError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::BadQuery(m) => ApiError::BadRequest("invalid_search", m),
            ArchiveError::BadCursor(m) => ApiError::BadRequest("invalid_cursor", m),
            ArchiveError::Store(e) => e.into(),
            ArchiveError::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Query of the post listings: a time range and a page.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PostsQuery {
    /// Page size (default 20; at most 100 posts or 1000 authors).
    limit: Option<usize>,
    /// `next_cursor` of the previous page (recent posts only).
    cursor: Option<String>,
    /// Start, RFC 3339 or unix ms (inclusive).
    from: Option<String>,
    /// End, RFC 3339 or unix ms (inclusive; default now).
    to: Option<String>,
    /// Instead of `from`: the last `15m`, `1h`, `24h`, `7d`, … before `to`.
    period: Option<String>,
}

impl PostsQuery {
    fn range(&self) -> Result<TimeRange, ApiError> {
        let to = self.to.as_deref().map(queries::parse_time).transpose()?;
        let from = match (&self.from, &self.period) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadRequest(
                    "invalid_range",
                    "give `from` or `period`, not both".into(),
                ))
            }
            (Some(f), None) => Some(queries::parse_time(f)?),
            (None, Some(p)) => queries::parse_period(p)?
                .map(|ms| to.unwrap_or_else(|| chrono::Utc::now().timestamp_millis()) - ms),
            (None, None) => None,
        };
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(ApiError::BadRequest(
                    "invalid_range",
                    "`from` is after `to`".into(),
                ));
            }
        }
        Ok(TimeRange {
            from_ms: from,
            to_ms: to,
        })
    }

    fn limit(&self, max: usize) -> Result<usize, ApiError> {
        let limit = self.limit.unwrap_or(20);
        if limit == 0 || limit > max {
            return Err(ApiError::BadRequest(
                "invalid_limit",
                format!("limit must be 1..={max}"),
            ));
        }
        Ok(limit)
    }
}

/// What an entity's post listing works from: the entity, the time range,
/// the page size, the cursor (listings that page) and the archive.
struct Listing {
    entity: EntityRef,
    range: TimeRange,
    limit: usize,
    cursor: Option<String>,
    archive: std::sync::Arc<dyn crate::archive::PostStore>,
}

impl Listing {
    /// Reads the path and query; `max` bounds the page, `paged` allows a cursor.
    fn read(
        state: &AppState,
        path: web::Path<(String, String)>,
        q: web::Query<PostsQuery>,
        max: usize,
        paged: bool,
    ) -> Result<Listing, ApiError> {
        let (kind, id) = path.into_inner();
        let entity = EntityRef::new(parse_kind(&kind)?, id);
        let (range, limit) = (q.range()?, q.limit(max)?);
        let q = q.into_inner();
        if q.cursor.is_some() && !paged {
            return Err(ApiError::BadRequest(
                "invalid_cursor",
                "this listing is not paged; use limit".into(),
            ));
        }
        Ok(Listing {
            entity,
            range,
            limit,
            cursor: q.cursor,
            archive: state.archive()?,
        })
    }
}

/// `GET /api/entities/{kind}/{id}/posts`: newest first, `next_cursor` pages on.
#[utoipa::path(get, path = "/api/entities/{kind}/{id}/posts", tag = "posts",
    params(("kind" = String, Path, description = "Entity kind"), ("id" = String, Path, description = "Entity id"), PostsQuery),
    responses((status = 404, description = "Unknown kind", body = super::error::ErrorBody), (status = 200, description = "A page of posts, newest first", body = crate::archive::Page), (status = 400, description = "Bad parameters", body = super::error::ErrorBody)))]
pub async fn recent(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<PostsQuery>,
) -> Result<HttpResponse, ApiError> {
    let l = Listing::read(&state, path, q, MAX_POSTS, true)?;
    let page = web::block(move || {
        l.archive
            .recent(&l.entity, l.range, l.cursor.as_deref(), l.limit)
    })
    .await??;
    Ok(HttpResponse::Ok().json(page))
}

/// Top posts of an entity.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TopPosts {
    /// Most engagement (likes + reposts + replies) first, then newest.
    pub posts: Vec<crate::archive::PostHit>,
}

/// `GET /api/entities/{kind}/{id}/posts/top`: most engagement first.
#[utoipa::path(get, path = "/api/entities/{kind}/{id}/posts/top", tag = "posts",
    params(("kind" = String, Path, description = "Entity kind"), ("id" = String, Path, description = "Entity id"), PostsQuery),
    responses((status = 404, description = "Unknown kind", body = super::error::ErrorBody), (status = 200, description = "Top posts by engagement", body = TopPosts), (status = 400, description = "Bad parameters", body = super::error::ErrorBody)))]
pub async fn top(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<PostsQuery>,
) -> Result<HttpResponse, ApiError> {
    let l = Listing::read(&state, path, q, MAX_POSTS, false)?;
    let posts = web::block(move || l.archive.top(&l.entity, l.range, l.limit)).await??;
    Ok(HttpResponse::Ok().json(TopPosts { posts }))
}

/// `GET /api/entities/{kind}/{id}/authors`: who posts about it, most posts first.
#[utoipa::path(get, path = "/api/entities/{kind}/{id}/authors", tag = "posts",
    params(("kind" = String, Path, description = "Entity kind"), ("id" = String, Path, description = "Entity id"), PostsQuery),
    responses((status = 404, description = "Unknown kind", body = super::error::ErrorBody), (status = 200, description = "Contributing authors with exact counts", body = crate::archive::AuthorsPage), (status = 400, description = "Bad parameters", body = super::error::ErrorBody)))]
pub async fn authors(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<PostsQuery>,
) -> Result<HttpResponse, ApiError> {
    let l = Listing::read(&state, path, q, MAX_AUTHORS, false)?;
    let page = web::block(move || l.archive.authors(&l.entity, l.range, l.limit)).await??;
    Ok(HttpResponse::Ok().json(page))
}

/// Query of `GET /api/search`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Words to find (tantivy syntax: `"exact phrase"`, `OR`, `-excluded`); every word is required by default.
    q: String,
    /// Only posts attributed to this entity, `kind:id` (e.g. `project:SOL`).
    entity: Option<String>,
    /// Only posts with this sentiment label: `positive`, `neutral`, `negative`.
    sentiment: Option<String>,
    /// Only posts from this platform.
    platform: Option<String>,
    /// Only posts in this language (ISO 639-1).
    lang: Option<String>,
    /// Page size (default 20, at most 100).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Start, RFC 3339 or unix ms.
    from: Option<String>,
    /// End, RFC 3339 or unix ms.
    to: Option<String>,
    /// Instead of `from`: the last `15m`, `1h`, `24h`, … before `to`.
    period: Option<String>,
}

/// `GET /api/search`: best matches first, with the total matched.
#[utoipa::path(get, path = "/api/search", tag = "posts", params(SearchParams),
    responses((status = 200, description = "Matching posts, best first, with `total`", body = crate::archive::Page), (status = 400, description = "Bad parameters", body = super::error::ErrorBody)))]
pub async fn search(
    state: web::Data<AppState>,
    q: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let p = q.into_inner();
    let window = PostsQuery {
        limit: p.limit,
        cursor: None,
        from: p.from,
        to: p.to,
        period: p.period,
    };
    let (range, limit) = (window.range()?, window.limit(MAX_POSTS)?);
    let entity = match p.entity.as_deref() {
        None => None,
        Some(e) => {
            let (kind, id) = e.split_once(':').ok_or_else(|| {
                ApiError::BadRequest(
                    "invalid_entity",
                    format!("entity `{e}` must be kind:id, e.g. project:SOL"),
                )
            })?;
            let kind = crate::domain::EntityKind::parse(kind).ok_or_else(|| {
                ApiError::BadRequest(
                    "invalid_entity",
                    format!("entity `{e}`: unknown kind `{kind}`"),
                )
            })?;
            Some(EntityRef::new(kind, id))
        }
    };
    let sentiment = match p.sentiment.as_deref() {
        None => None,
        Some("positive") => Some(SentimentLabel::Positive),
        Some("neutral") => Some(SentimentLabel::Neutral),
        Some("negative") => Some(SentimentLabel::Negative),
        Some(other) => {
            return Err(ApiError::BadRequest(
                "invalid_sentiment",
                format!("sentiment `{other}` must be positive, neutral or negative"),
            ))
        }
    };
    let query = SearchQuery {
        text: p.q,
        entity,
        sentiment,
        platform: p.platform,
        lang: p.lang,
        range,
    };
    let archive = state.archive()?;
    let cursor = p.cursor;
    let page = web::block(move || archive.search(&query, cursor.as_deref(), limit)).await??;
    Ok(HttpResponse::Ok().json(page))
}
