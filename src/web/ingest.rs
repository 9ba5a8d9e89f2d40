//! `POST /api/ingest`: posts over HTTP, as a JSON array (or one object) or
//! as NDJSON (one post per line).
//!
//! Every item is checked on its own: valid items are published and counted
//! in `accepted`, invalid ones are listed in `rejected` with their index and
//! the reason. The response is sent only after every accepted post is on the
//! bus, so an accepted post is never lost. `202` when at least one item was
//! accepted; `422` when none was; `400` when the body cannot be read at all;
//! `413` when it is too large or has too many items.

use super::error::ApiError;
use super::AppState;
use crate::actors::connectors::publish_posts;
use crate::domain::{Post, PostLimits};
use crate::telemetry::metrics;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

/// One rejected item.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rejected {
    /// Position in the array, or line index (0-based) in NDJSON.
    pub index: usize,
    /// The item's id, when it had a readable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why it was rejected.
    pub error: String,
}

/// The ingest response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestResponse {
    /// Posts accepted (published on the bus).
    pub accepted: usize,
    /// Of those, ids already seen recently (accepted again, counted once).
    pub duplicates: usize,
    /// Items rejected, with reasons.
    pub rejected: Vec<Rejected>,
}

#[derive(Serialize)]
struct NothingAccepted<'a> {
    error: ErrorDetail<'a>,
    accepted: usize,
    rejected: &'a [Rejected],
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// Splits the body into items: `(index, Ok(json value) | Err(reason))`.
/// An item of a batch: its index and its JSON, or why it could not be read.
type Item = (usize, Result<serde_json::Value, String>);

fn items(body: &[u8], ndjson: bool) -> Result<Vec<Item>, ApiError> {
    let trimmed = body.trim_ascii_start();
    if !ndjson && trimmed.first() == Some(&b'[') {
        let text = std::str::from_utf8(body).map_err(|e| {
            ApiError::BadRequest("invalid_utf8", format!("body is not valid UTF-8: {e}"))
        })?;
        let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            ApiError::BadRequest("malformed_json", format!("malformed JSON array: {e}"))
        })?;
        return Ok(values.into_iter().map(Ok).enumerate().collect());
    }
    // One JSON object, even pretty-printed over several lines (not NDJSON).
    if !ndjson && trimmed.first() == Some(&b'{') {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            return Ok(vec![(0, Ok(value))]);
        }
    }
    // NDJSON: each line on its own.
    let mut out = Vec::new();
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item = match std::str::from_utf8(line) {
            Err(e) => Err(format!("line is not valid UTF-8: {e}")),
            Ok(text) => serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}")),
        };
        out.push((index, item));
    }
    Ok(out)
}

/// The posts of a batch body: valid ones and rejected items with reasons.
#[derive(Debug)]
pub struct Batch {
    /// Valid posts, in the body's order.
    pub valid: Vec<Post>,
    /// Items that are not valid posts.
    pub rejected: Vec<Rejected>,
}

/// Reads an ingest body (a JSON array, one object, or NDJSON when
/// `ndjson`) into valid posts and rejected items; refuses an empty batch
/// and one of more than `max_items` items.
pub fn parse_batch(
    body: &[u8],
    ndjson: bool,
    max_items: usize,
    limits: &PostLimits,
) -> Result<Batch, ApiError> {
    let items = items(body, ndjson)?;
    if items.is_empty() {
        return Err(ApiError::BadRequest(
            "empty_batch",
            "the body holds no posts".into(),
        ));
    }
    if items.len() > max_items {
        return Err(ApiError::TooLarge(format!(
            "the batch has {} items; at most {max_items} are accepted per request",
            items.len()
        )));
    }
    let mut rejected = Vec::new();
    let mut valid: Vec<Post> = Vec::with_capacity(items.len());
    for (index, item) in items {
        let value = match item {
            Ok(v) => v,
            Err(error) => {
                rejected.push(Rejected {
                    index,
                    id: None,
                    error,
                });
                continue;
            }
        };
        let id = value.get("id").and_then(|v| v.as_str()).map(str::to_string);
        match serde_json::from_value::<Post>(value) {
            Err(e) => rejected.push(Rejected {
                index,
                id,
                error: format!("invalid post: {e}"),
            }),
            Ok(post) => match post.validate(limits) {
                Err(error) => rejected.push(Rejected { index, id, error }),
                Ok(()) => valid.push(post),
            },
        }
    }
    Ok(Batch { valid, rejected })
}

/// Reads the body, refusing more than `max` bytes.
async fn read_body(mut payload: web::Payload, max: usize) -> Result<web::BytesMut, ApiError> {
    use futures_util::StreamExt as _;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::BadRequest("unreadable_body", format!("cannot read the body: {e}"))
        })?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::TooLarge(format!(
                "the body is larger than {max} bytes; send smaller batches"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Accepts a batch of posts: a JSON array (or one object), or NDJSON with
/// `content-type: application/x-ndjson`. Valid items are published on the
/// bus before the answer (202); invalid ones are listed with the reason.
#[utoipa::path(post, path = "/api/ingest", tag = "ingest",
    request_body(content = Vec<crate::domain::Post>, description = "Posts (JSON array or NDJSON)"),
    responses(
        (status = 202, description = "Accepted (some items may be rejected)", body = IngestResponse),
        (status = 400, description = "Unreadable body or empty batch", body = super::error::ErrorBody),
        (status = 413, description = "Body or batch too large", body = super::error::ErrorBody),
        (status = 422, description = "No item was valid", body = super::error::ErrorBody),
        (status = 503, description = "The bus did not take the posts in time", body = super::error::ErrorBody)))]
pub async fn ingest(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.config.http.max_body_bytes).await?;
    let ndjson = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("ndjson") || ct.contains("jsonlines"));
    let limits = state.config.post_limits(chrono::Utc::now());
    let Batch { valid, rejected } =
        parse_batch(&body, ndjson, state.config.http.max_batch_items, &limits)?;
    let duplicates = publish_posts(state.bus.as_ref(), &valid)
        .await
        .map_err(|e| ApiError::Unavailable(format!("pipeline not accepting posts: {e}")))?;
    metrics::INGEST_ACCEPTED.add(valid.len() as u64);
    metrics::INGEST_REJECTED.add(rejected.len() as u64);
    if valid.is_empty() {
        return Ok(HttpResponse::UnprocessableEntity().json(NothingAccepted {
            error: ErrorDetail {
                code: "invalid_items",
                message: "no valid post in the batch; see `rejected`",
            },
            accepted: 0,
            rejected: &rejected,
        }));
    }
    Ok(HttpResponse::Accepted().json(IngestResponse {
        accepted: valid.len(),
        duplicates,
        rejected,
    }))
}
