//! API keys, scopes and rate limits.
//!
//! Every request except `/healthz`, `/readyz`, `/metrics`, `/api/openapi.json`
//! and the dashboard's page and assets (`/`, `/assets/…`: no data) needs a scope:
//! `ingest` for `POST /api/ingest`, `admin` for `/api/admin/…` and
//! `/api/webhooks…`, `alerts` for changes under `/api/alerts…` (acknowledge,
//! resolve, rules), `read` for everything else (lookups, reading alerts and
//! `/ws`); `admin` includes the others. When
//! auth is on (`auth.mode`: `on`, or `auto` on a non-loopback address) the
//! key comes as `Authorization: Bearer KEY`, or as `?token=KEY` on the
//! WebSocket upgrade; a missing or unknown key gets `401`, a key without the
//! scope `403`. Keys are kept only as SHA-256 hashes: from the config, and
//! created through `POST /api/admin/keys` (persisted, hashed, in
//! `<data_dir>/api-keys.json`).
//!
//! Rate limits are a token bucket per key (per client address when auth is
//! off): `auth.rate_per_s` requests per second with bursts of `auth.burst`;
//! past it, `429` with `Retry-After`.

use super::error::ApiError;
use super::AppState;
use crate::config::{ApiKeyConfig, Config, Scope};
use crate::limit::RateLimiter;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _, HttpResponse};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;

/// The hex SHA-256 of a key's secret: what is stored.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A key as stored (never the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Name of the key.
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub sha256: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Where it was defined.
    pub origin: KeyOrigin,
}

/// Where a key was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyOrigin {
    /// `[[auth.keys]]` in the configuration (changed there).
    Config,
    /// `POST /api/admin/keys` (persisted, hashed, in the data directory).
    Api,
}

impl StoredKey {
    fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// Keys and rate-limit state of a server.
pub struct Auth {
    required: bool,
    keys: RwLock<HashMap<String, StoredKey>>,
    file: Option<PathBuf>,
    limiter: RateLimiter,
}

impl Auth {
    /// Builds the key registry from the config and the persisted keys.
    pub fn new(config: &Config, persist: bool) -> Self {
        let file = persist.then(|| config.store.data_dir.join("api-keys.json"));
        let mut keys: HashMap<String, StoredKey> = HashMap::new();
        if let Some(f) = &file {
            match std::fs::read(f) {
                Ok(bytes) => match serde_json::from_slice::<Vec<StoredKey>>(&bytes) {
                    Ok(stored) => keys.extend(stored.into_iter().map(|k| (k.sha256.clone(), k))),
                    Err(e) => {
                        tracing::error!(file = %f.display(), error = %e, "ignoring unreadable key file")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!(file = %f.display(), error = %e, "cannot read key file"),
            }
        }
        for ApiKeyConfig { id, sha256, scopes } in &config.auth.keys {
            let sha256 = sha256.to_ascii_lowercase();
            keys.insert(
                sha256.clone(),
                StoredKey {
                    id: id.clone(),
                    sha256,
                    scopes: scopes.clone(),
                    origin: KeyOrigin::Config,
                },
            );
        }
        let required = config.auth.required_for(&config.http.listen);
        if required && keys.is_empty() {
            tracing::warn!("auth is on but no key is configured: every API request will get 401; add [[auth.keys]] (starling hash-key SECRET)");
        }
        tracing::info!(required, keys = keys.len(), "API auth");
        Auth {
            required,
            keys: RwLock::new(keys),
            file,
            limiter: RateLimiter::new(config.auth.rate_per_s, config.auth.burst),
        }
    }

    /// Whether keys are required.
    pub fn required(&self) -> bool {
        self.required
    }

    fn lookup(&self, secret: &str) -> Option<StoredKey> {
        self.keys.read().get(&hash_key(secret)).cloned()
    }

    /// Whether requests are rate-limited at all.
    fn limits(&self) -> bool {
        self.limiter.limits()
    }

    /// Takes one token for `who`; `Err(seconds)` until the next one.
    fn take(&self, who: &str) -> Result<(), u64> {
        self.limiter.take(who)
    }

    fn add(&self, key: StoredKey) -> Result<(), ApiError> {
        let mut keys = self.keys.write();
        if keys.values().any(|k| k.id == key.id) {
            return Err(ApiError::Unprocessable(
                "key_exists",
                format!("a key named `{}` exists; delete it first", key.id),
            ));
        }
        keys.insert(key.sha256.clone(), key);
        self.persist(&keys)
    }

    fn remove(&self, id: &str) -> Result<bool, ApiError> {
        let mut keys = self.keys.write();
        let before = keys.len();
        keys.retain(|_, k| !(k.id == id && k.origin == KeyOrigin::Api));
        let removed = keys.len() != before;
        self.persist(&keys)?;
        Ok(removed)
    }

    fn persist(&self, keys: &HashMap<String, StoredKey>) -> Result<(), ApiError> {
        let Some(file) = &self.file else {
            return Err(ApiError::Unavailable(
                "this process has no data directory to keep keys in".into(),
            ));
        };
        let api: Vec<&StoredKey> = keys
            .values()
            .filter(|k| k.origin == KeyOrigin::Api)
            .collect();
        let bytes =
            serde_json::to_vec_pretty(&api).map_err(|e| ApiError::Internal(e.to_string()))?;
        let tmp = file.with_extension("json.tmp");
        std::fs::create_dir_all(file.parent().unwrap_or(std::path::Path::new(".")))
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, file))
            .map_err(|e| ApiError::Internal(format!("cannot save keys: {e}")))
    }
}

/// Who made a request, for per-key limits. Set by [`guard`] on every
/// request that needs a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An API key, by id.
    Key(String),
    /// A client address (auth off, or no valid key).
    Address(String),
}

impl Caller {
    /// The name of this caller's rate-limit bucket.
    pub fn bucket(&self) -> String {
        match self {
            Caller::Key(id) => format!("key:{id}"),
            Caller::Address(ip) => format!("addr:{ip}"),
        }
    }
}

/// The scope a request needs, if any.
pub fn required_scope(method: &actix_web::http::Method, path: &str) -> Option<Scope> {
    match path {
        p if (p == "/api/alerts" || p.starts_with("/api/alerts/"))
            && method != actix_web::http::Method::GET =>
        {
            Some(Scope::Alerts)
        }
        "/healthz" | "/readyz" | "/metrics" | "/api/openapi.json" | "/" => None,
        p if p.starts_with("/assets/") => None,
        "/api/ingest" => Some(Scope::Ingest),
        p if p == "/api/admin" || p.starts_with("/api/admin/") => Some(Scope::Admin),
        p if p == "/api/webhooks" || p.starts_with("/api/webhooks/") => Some(Scope::Admin),
        _ => Some(Scope::Read),
    }
}

fn bearer(req: &ServiceRequest) -> Option<String> {
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let v = h.to_str().ok()?.trim();
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    if req.path() == "/ws" {
        return web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("token").cloned());
    }
    None
}

/// The middleware: authenticates, authorises and rate-limits.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(scope) = required_scope(req.method(), req.path()) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let auth = &state.auth;
    let address = || {
        Caller::Address(
            req.peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
        )
    };
    // Requests without a valid key spend their address's bucket, so keys
    // cannot be guessed at the server's full speed.
    let refuse = |e: ApiError| -> actix_web::Error {
        if auth.limits() {
            if let Err(retry_after_s) = auth.take(&address().bucket()) {
                crate::telemetry::metrics::HTTP_RATE_LIMITED.inc();
                return ApiError::RateLimited { retry_after_s }.into();
            }
        }
        e.into()
    };
    let key = if auth.required() {
        let Some(secret) = bearer(&req) else {
            return Err(refuse(ApiError::Unauthorized(
                "an API key is required: send `Authorization: Bearer KEY` (or `?token=KEY` on /ws)"
                    .into(),
            )));
        };
        let Some(key) = auth.lookup(&secret) else {
            return Err(refuse(ApiError::Unauthorized("unknown API key".into())));
        };
        if !key.allows(scope) {
            return Err(ApiError::Forbidden(format!(
                "key `{}` lacks the `{}` scope",
                key.id,
                scope.as_str()
            ))
            .into());
        }
        Some(key)
    } else {
        None
    };
    // Limits apply per key; per client address when auth is off.
    let caller = match &key {
        Some(k) => Caller::Key(k.id.clone()),
        None => address(),
    };
    if auth.limits() {
        if let Err(retry_after_s) = auth.take(&caller.bucket()) {
            crate::telemetry::metrics::HTTP_RATE_LIMITED.inc();
            return Err(ApiError::RateLimited { retry_after_s }.into());
        }
    }
    req.extensions_mut().insert(caller);
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Body of `POST /api/admin/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Name of the key.
    pub id: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

/// A key as listed (never its secret or hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Name of the key.
    pub id: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Where it was defined.
    pub origin: KeyOrigin,
}

/// The keys and whether keys are required.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// Whether requests need a key (auth on).
    pub required: bool,
    /// Keys, by id.
    pub keys: Vec<KeyView>,
}

/// A created key: the secret is shown once, here.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// Name of the key.
    pub id: String,
    /// The secret to send as `Authorization: Bearer …`.
    pub key: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

/// `POST /api/admin/keys`: creates a key; the secret is in the response only.
#[utoipa::path(post, path = "/api/admin/keys", tag = "admin",
    request_body = NewKey,
    responses((status = 201, description = "Created; the secret is shown once", body = CreatedKey),
        (status = 400, description = "Bad id or scopes", body = super::error::ErrorBody),
        (status = 422, description = "The id exists (`key_exists`)", body = super::error::ErrorBody)))]
pub async fn create_key(
    state: web::Data<AppState>,
    body: web::Json<NewKey>,
) -> Result<HttpResponse, ApiError> {
    let NewKey { id, scopes } = body.into_inner();
    if id.trim().is_empty() || id.len() > 64 || scopes.is_empty() {
        return Err(ApiError::BadRequest(
            "invalid_key",
            "a key needs an id (1–64 bytes) and at least one scope".into(),
        ));
    }
    let bytes: [u8; 24] = rand::random();
    let secret = format!("stk_{}", hex::encode(bytes));
    state.auth.add(StoredKey {
        id: id.clone(),
        sha256: hash_key(&secret),
        scopes: scopes.clone(),
        origin: KeyOrigin::Api,
    })?;
    Ok(HttpResponse::Created().json(CreatedKey {
        id,
        key: secret,
        scopes,
    }))
}

/// `GET /api/admin/keys`: names and scopes (never secrets or hashes).
#[utoipa::path(get, path = "/api/admin/keys", tag = "admin",
    responses((status = 200, description = "Keys", body = KeyList)))]
pub async fn list_keys(state: web::Data<AppState>) -> HttpResponse {
    let mut keys: Vec<KeyView> = state
        .auth
        .keys
        .read()
        .values()
        .map(|k| KeyView {
            id: k.id.clone(),
            scopes: k.scopes.clone(),
            origin: k.origin,
        })
        .collect();
    keys.sort_by(|a, b| a.id.cmp(&b.id));
    HttpResponse::Ok().json(KeyList {
        required: state.auth.required(),
        keys,
    })
}

/// `DELETE /api/admin/keys/{id}`: removes a key created through the API.
#[utoipa::path(delete, path = "/api/admin/keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such key created through the API", body = super::error::ErrorBody)))]
pub async fn delete_key(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if state.auth.remove(&id)? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!(
            "no key `{id}` created through the API (keys from the config are changed there)"
        )))
    }
}
