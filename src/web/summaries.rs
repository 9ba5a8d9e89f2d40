//! Entity summaries over REST: `GET /api/entities/{kind}/{id}/summary`
//! (the latest, or the newest within a window) and `POST …/summary` (a
//! fresh one now, waited for; `read` scope, limited per caller by
//! `summaries.requests_per_minute` on top of the general rate limit).

use super::error::ApiError;
use super::queries::parse_time;
use super::routes::parse_kind;
use super::AppState;
use crate::actors::summarizer::{Refused, Summarize, SummaryFailure};
use crate::domain::EntityRef;
use crate::summary::model::Summary;
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Longest window a summary may cover (7 days).
const MAX_WINDOW_MS: i64 = 7 * 86_400_000;
/// How much longer than a generation's time limit a request waits (queue,
/// reading the window, storing).
const WAIT_SLACK: Duration = Duration::from_secs(60);

/// The window of a summary request or lookup.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// Window start, RFC 3339 or unix ms (GET: default none, the latest
    /// summary; POST: the `summaries.window_s` ending with the minute of `to`).
    from: Option<String>,
    /// Window end, RFC 3339 or unix ms (default: now).
    to: Option<String>,
}

/// The entity of the path.
fn entity(path: (String, String)) -> Result<EntityRef, ApiError> {
    let (kind, id) = path;
    Ok(EntityRef::new(parse_kind(&kind)?, id))
}

/// `from..to` of a query; without `from`, the `default_span_ms` that ends
/// with the minute of `to`.
fn window(q: &WindowQuery, default_span_ms: i64) -> Result<(i64, i64), ApiError> {
    let to = match &q.to {
        Some(t) => parse_time(t)?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let (from, to) = match &q.from {
        Some(f) => (parse_time(f)?, to),
        None => crate::summary::service::ending_at(default_span_ms, to),
    };
    if from >= to {
        return Err(ApiError::BadRequest(
            "invalid_window",
            "`from` must be before `to`".into(),
        ));
    }
    if to - from > MAX_WINDOW_MS {
        return Err(ApiError::BadRequest(
            "invalid_window",
            "a summary covers at most 7 days".into(),
        ));
    }
    Ok((from, to))
}

/// The latest summary of an entity: the cache, else the store (then cached).
pub(crate) async fn latest(
    state: &AppState,
    entity: &EntityRef,
) -> Result<Option<Arc<Summary>>, ApiError> {
    if let Some(hit) = state.summary_cache.get(entity) {
        return Ok(Some(hit));
    }
    let (store, key) = (state.summaries()?, entity.clone());
    let found = web::block(move || store.latest(&key)).await??.map(Arc::new);
    if let Some(s) = &found {
        state.summary_cache.insert(entity.clone(), s.clone());
    }
    Ok(found)
}

/// An entity's latest summary, or with `from`/`to` the newest whose window lies within them.
#[utoipa::path(get, path = "/api/entities/{kind}/{id}/summary", tag = "entities",
    params(("kind" = String, Path, description = "Entity kind"), ("id" = String, Path, description = "Entity id"), WindowQuery),
    responses((status = 200, description = "The summary", body = Summary), (status = 400, description = "Bad parameters", body = super::error::ErrorBody),
        (status = 404, description = "No summary (yet)", body = super::error::ErrorBody)))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    let entity = entity(path.into_inner())?;
    let q = q.into_inner();
    let found = if q.from.is_none() && q.to.is_none() {
        latest(&state, &entity).await?
    } else {
        let (from, to) = window(&q, MAX_WINDOW_MS)?;
        let (store, key) = (state.summaries()?, entity.clone());
        web::block(move || store.within(&key, from, to))
            .await??
            .map(Arc::new)
    };
    match found {
        Some(s) => Ok(HttpResponse::Ok().json(s.as_ref())),
        None => Err(ApiError::NotFound(format!(
            "no summary of {} `{}` yet{}",
            entity.kind,
            entity.id,
            if q.from.is_some() || q.to.is_some() {
                " in that window"
            } else {
                ""
            }
        ))),
    }
}

/// Writes a summary of an entity now (default window: the last `summaries.window_s`) and returns it.
#[utoipa::path(post, path = "/api/entities/{kind}/{id}/summary", tag = "entities",
    params(("kind" = String, Path, description = "Entity kind"), ("id" = String, Path, description = "Entity id"), WindowQuery),
    responses((status = 200, description = "The new summary (stored, and pushed as summary:update)", body = Summary),
        (status = 400, description = "Bad parameters", body = super::error::ErrorBody),
        (status = 404, description = "No posts about the entity in the window", body = super::error::ErrorBody),
        (status = 429, description = "Over the on-demand summary limit", body = super::error::ErrorBody),
        (status = 503, description = "Summaries off, queue full, or not done in time", body = super::error::ErrorBody)))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    let entity = entity(path.into_inner())?;
    let cfg = &state.config.summaries;
    let (from_ms, to_ms) = window(&q.into_inner(), cfg.window_s as i64 * 1_000)?;
    let caller = req
        .extensions()
        .get::<super::auth::Caller>()
        .map(|c| c.bucket())
        .unwrap_or_default();
    if let Err(retry_after_s) = state.summary_requests.take(&caller) {
        crate::telemetry::metrics::HTTP_RATE_LIMITED.inc();
        return Err(ApiError::RateLimited { retry_after_s });
    }
    let Some(summarizer) = state.summarizer.get() else {
        return Err(ApiError::Unavailable(
            "summaries are off here (summaries.enabled = false, or no web role)".into(),
        ));
    };
    let rx = summarizer
        .send(Summarize {
            entity,
            from_ms,
            to_ms,
        })
        .await
        .map_err(|e| ApiError::Unavailable(format!("summarizer unavailable: {e}")))?
        .map_err(|Refused::QueueFull| {
            ApiError::Unavailable("the summary queue is full; try again later".into())
        })?;
    let wait = Duration::from_secs(cfg.timeout_s) + WAIT_SLACK;
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(Ok(summary))) => Ok(HttpResponse::Ok().json(summary.as_ref())),
        Ok(Ok(Err(SummaryFailure::NoPosts(m)))) => Err(ApiError::NotFound(m)),
        Ok(Ok(Err(SummaryFailure::Failed(m)))) => Err(ApiError::Internal(m)),
        Ok(Err(_)) => Err(ApiError::Unavailable(
            "the summarizer restarted before the summary was written; try again".into(),
        )),
        Err(_) => Err(ApiError::Unavailable(
            "the summary was not written in time; it may still be stored: GET it later".into(),
        )),
    }
}
