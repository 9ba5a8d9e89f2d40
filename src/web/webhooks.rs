//! `/api/webhooks`: registering, listing, deleting and resuming the webhook
//! endpoints alert events are delivered to (admin scope). Delivery itself is
//! [`crate::actors::webhooks`]; storage [`crate::store::webhooks`].
//!
//! The signing secret is generated here (`whsec_` + 32 random bytes in hex)
//! and shown only in the answer to the registration.

use super::error::ApiError;
use super::AppState;
use crate::alerts::model::AlertKind;
use crate::store::webhooks::{Endpoint, EndpointStats, Pause};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

/// Longest endpoint URL, in bytes.
pub const MAX_URL_LEN: usize = 2_048;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// Body of `POST /api/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where deliveries are POSTed (`http` or `https`, at most 2048 bytes).
    pub url: String,
    /// Alert kinds to deliver; empty or absent = every kind.
    #[serde(default)]
    pub kinds: Vec<AlertKind>,
    /// Only alerts at least this severe (1–10).
    #[serde(default)]
    pub min_severity: Option<u8>,
    /// A note for people (at most 500 bytes).
    #[serde(default)]
    pub description: Option<String>,
}

/// `active` or `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    /// Deliveries are attempted.
    Active,
    /// No attempts until resumed; deliveries are kept.
    Paused,
}

/// An endpoint as listed (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    /// Id (`wh_…`).
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Alert kinds delivered; empty = every kind.
    pub kinds: Vec<AlertKind>,
    /// Only alerts at least this severe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<u8>,
    /// The note given at registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was registered (ms).
    pub created_at_ms: i64,
    /// `active` or `paused`.
    pub state: EndpointState,
    /// Why and since when it is paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
    /// Delivery counters and the last error.
    pub stats: EndpointStats,
}

impl EndpointView {
    fn new(e: Endpoint, stats: EndpointStats) -> Self {
        EndpointView {
            state: if e.paused.is_some() {
                EndpointState::Paused
            } else {
                EndpointState::Active
            },
            id: e.id,
            url: e.url,
            kinds: e.kinds,
            min_severity: e.min_severity,
            description: e.description,
            created_at_ms: e.created_at_ms,
            paused: e.paused,
            stats,
        }
    }
}

/// A registered endpoint with its signing secret (shown only here).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The HMAC-SHA256 key of `Starling-Signature` (`whsec_…`).
    pub secret: String,
}

/// Every endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    /// Endpoints, by id.
    pub webhooks: Vec<EndpointView>,
}

/// Checks an endpoint URL: `http` or `https`, a host, at most
/// [`MAX_URL_LEN`] bytes, no fragment.
pub fn validate_url(url: &str) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::BadRequest("invalid_url", m));
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return bad(format!("url must be 1 to {MAX_URL_LEN} bytes"));
    }
    if url.contains('#') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("url must not contain a fragment, spaces or control characters".into());
    }
    let uri: actix_web::http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return bad(format!("url `{url}` is not a valid URL: {e}")),
    };
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return bad(format!("url scheme must be http or https, not `{other}`")),
        None => return bad(format!("url `{url}` needs a scheme (http:// or https://)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return bad(format!("url `{url}` has no host"));
    }
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook endpoint `{id}`"))
}

/// `POST /api/webhooks`: registers an endpoint; alert events logged from
/// now on that match its kinds and severity are delivered to it.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks",
    request_body = NewEndpoint,
    responses((status = 201, description = "Registered; the secret is shown once", body = CreatedEndpoint),
        (status = 400, description = "Bad URL (`invalid_url`), severity or description (`invalid_webhook`)", body = super::error::ErrorBody),
        (status = 422, description = "As many endpoints as allowed (`too_many_webhooks`)", body = super::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    body: web::Json<NewEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let NewEndpoint {
        url,
        mut kinds,
        min_severity,
        description,
    } = body.into_inner();
    validate_url(&url)?;
    if min_severity.is_some_and(|s| !(1..=10).contains(&s)) {
        return Err(ApiError::BadRequest(
            "invalid_webhook",
            "min_severity must be between 1 and 10".into(),
        ));
    }
    if description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION_LEN)
    {
        return Err(ApiError::BadRequest(
            "invalid_webhook",
            format!("description must be at most {MAX_DESCRIPTION_LEN} bytes"),
        ));
    }
    kinds.sort();
    kinds.dedup();
    let store = state.webhooks()?;
    let from_seq = *state.alerts()?.watch_seq().borrow();
    let max = state.config.webhooks.max_endpoints;
    let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()));
    let endpoint = Endpoint {
        id: format!("wh_{}", hex::encode(rand::random::<[u8; 8]>())),
        url,
        kinds,
        min_severity,
        description,
        secret: secret.clone(),
        created_at_ms: now_ms(),
        from_seq,
        paused: None,
        resumed_at_ms: None,
    };
    let created = web::block(move || {
        if store.endpoints()?.len() >= max {
            return Ok(None);
        }
        store.create(&endpoint)?;
        Ok::<_, crate::store::StoreError>(Some(endpoint))
    })
    .await??
    .ok_or_else(|| {
        ApiError::Unprocessable(
            "too_many_webhooks",
            format!("at most {max} webhook endpoints (webhooks.max_endpoints); delete one first"),
        )
    })?;
    tracing::info!(endpoint = %created.id, url = %created.url, "webhook endpoint registered");
    Ok(HttpResponse::Created().json(CreatedEndpoint {
        endpoint: EndpointView::new(created, EndpointStats::default()),
        secret,
    }))
}

/// `GET /api/webhooks`: every endpoint with its state and delivery stats.
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks",
    responses((status = 200, description = "Endpoints", body = EndpointList)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.webhooks()?;
    let all = web::block(move || store.endpoints()).await??;
    Ok(HttpResponse::Ok().json(EndpointList {
        webhooks: all
            .into_iter()
            .map(|(e, s)| EndpointView::new(e, s))
            .collect(),
    }))
}

/// `GET /api/webhooks/{id}`: one endpoint.
#[utoipa::path(get, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "No such endpoint", body = super::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (store, id) = (state.webhooks()?, id.into_inner());
    let key = id.clone();
    match web::block(move || store.endpoint(&key)).await?? {
        Some((e, s)) => Ok(HttpResponse::Ok().json(EndpointView::new(e, s))),
        None => Err(not_found(&id)),
    }
}

/// `DELETE /api/webhooks/{id}`: removes an endpoint and drops its pending
/// deliveries.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint", body = super::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (store, id) = (state.webhooks()?, id.into_inner());
    let key = id.clone();
    if web::block(move || store.delete(&key)).await?? {
        tracing::info!(endpoint = %id, "webhook endpoint deleted");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(&id))
    }
}

/// `POST /api/webhooks/{id}/resume`: un-pauses an endpoint; its pending
/// deliveries are attempted at once (also fine on an active endpoint: it
/// retries now what was waiting for its back-off).
#[utoipa::path(post, path = "/api/webhooks/{id}/resume", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint, active", body = EndpointView),
        (status = 404, description = "No such endpoint", body = super::error::ErrorBody)))]
pub async fn resume(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (store, id) = (state.webhooks()?, id.into_inner());
    let key = id.clone();
    let found = web::block(move || {
        if store.resume(&key, now_ms())?.is_none() {
            return Ok(None);
        }
        store.endpoint(&key)
    })
    .await??;
    match found {
        Some((e, s)) => {
            tracing::info!(endpoint = %id, "webhook endpoint resumed");
            Ok(HttpResponse::Ok().json(EndpointView::new(e, s)))
        }
        None => Err(not_found(&id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_or_https_with_a_host_and_bounded() {
        for ok in [
            "http://127.0.0.1:8080/hook",
            "https://hooks.example.com/starling?x=1",
            "https://[::1]:9/h",
        ] {
            assert!(validate_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ftp://example.com/x",
            "example.com/hook",
            "/relative",
            "http://",
            "http://exa mple.com/",
            "https://example.com/#frag",
            "javascript:alert(1)",
        ] {
            let e = validate_url(bad).expect_err(bad);
            assert_eq!(e.code(), "invalid_url", "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(validate_url(&long).is_err());
    }
}
