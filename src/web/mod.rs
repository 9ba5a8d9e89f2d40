//! The web server: REST API, WebSocket feed, health and metrics.

pub mod alerts;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod frames;
pub mod ingest;
pub mod openapi;
pub mod posts;
pub mod queries;
pub mod routes;
pub mod subscriptions;
pub mod summaries;
pub mod webhooks;
pub mod ws;

use crate::actors::alerts::AlertActor;
use crate::actors::hub::Hub;
use crate::actors::summarizer::{Summarizer, SummaryCache};
use crate::actors::supervisor::{Slot, Supervisor};
use crate::archive::PostStore;
use crate::bus::Bus;
use crate::config::Config;
use crate::store::alerts::AlertStore;
use crate::store::cache::HotCache;
use crate::store::summaries::SummaryStore;
use crate::store::Store;
use actix::Addr;
use actix_web::{web, App, HttpServer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What every handler can reach.
pub struct AppState {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// The bus (ingest publishes here).
    pub bus: Arc<dyn Bus>,
    /// The store (lookups), in a process that runs the web role.
    store: Option<Arc<dyn Store>>,
    /// The post archive (posts, search), alongside the store.
    archive: Option<Arc<dyn PostStore>>,
    /// Hot metrics.
    pub cache: HotCache,
    /// The live hub.
    pub hub: Slot<Hub>,
    /// The supervisor (admin).
    pub supervisor: Addr<Supervisor>,
    /// API keys and rate limits.
    pub auth: auth::Auth,
    /// Open WebSocket connections per key.
    pub ws_connections: ws::Connections,
    /// Recent listing answers by query (`http.listing_cache_ms`).
    pub listings: moka::sync::Cache<String, Arc<queries::Ranking>>,
    /// Alerts, rules and the alert event log, beside the store.
    alerts: Option<Arc<dyn AlertStore>>,
    /// The alert engine (acknowledge, resolve, rule changes).
    pub alert_engine: Slot<AlertActor>,
    /// Webhook endpoints and their outbox, beside the store.
    webhooks: Option<Arc<dyn crate::store::webhooks::WebhookStore>>,
    /// Stored entity summaries, beside the store.
    summaries: Option<Arc<dyn SummaryStore>>,
    /// The latest summary per entity (shared with the summarizer).
    pub summary_cache: SummaryCache,
    /// The summarizer (on-demand summaries).
    pub summarizer: Slot<Summarizer>,
    /// The on-demand summary limit per caller (`summaries.requests_per_minute`).
    pub summary_requests: crate::limit::RateLimiter,
    next_session: AtomicU64,
}

impl AppState {
    /// Builds the state.
    pub fn new(
        config: Arc<Config>,
        bus: Arc<dyn Bus>,
        store: Option<Arc<dyn Store>>,
        archive: Option<Arc<dyn PostStore>>,
        cache: HotCache,
        hub: Slot<Hub>,
        supervisor: Addr<Supervisor>,
    ) -> Self {
        let auth = auth::Auth::new(&config, store.is_some());
        let per_minute = f64::from(config.summaries.requests_per_minute);
        let summary_requests = crate::limit::RateLimiter::new(per_minute / 60.0, per_minute);
        AppState {
            auth,
            ws_connections: ws::Connections::default(),
            listings: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_millis(
                    config.http.listing_cache_ms.max(1),
                ))
                .build(),
            config,
            bus,
            store,
            archive,
            cache,
            hub,
            supervisor,
            alerts: None,
            alert_engine: Slot::default(),
            webhooks: None,
            summaries: None,
            summary_cache: moka::sync::Cache::new(0),
            summarizer: Slot::default(),
            summary_requests,
            next_session: AtomicU64::new(1),
        }
    }

    /// The same state with the alert store and engine (in the process that
    /// owns the store).
    pub fn with_alerts(
        mut self,
        alerts: Option<Arc<dyn AlertStore>>,
        engine: Slot<AlertActor>,
    ) -> Self {
        self.alerts = alerts;
        self.alert_engine = engine;
        self
    }

    /// The alert store, or a 503 in a process that does not own it.
    pub fn alerts(&self) -> Result<Arc<dyn AlertStore>, error::ApiError> {
        self.alerts.clone().ok_or_else(|| {
            error::ApiError::Unavailable("this process does not serve alerts (no web role)".into())
        })
    }

    /// The same state with the webhook store (in the process that owns the store).
    pub fn with_webhooks(
        mut self,
        webhooks: Option<Arc<dyn crate::store::webhooks::WebhookStore>>,
    ) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// The same state with the summary store, cache and summarizer (in the
    /// process that owns the store).
    pub fn with_summaries(
        mut self,
        summaries: Option<Arc<dyn SummaryStore>>,
        cache: SummaryCache,
        summarizer: Slot<Summarizer>,
    ) -> Self {
        self.summaries = summaries;
        self.summary_cache = cache;
        self.summarizer = summarizer;
        self
    }

    /// The summary store, or a 503 in a process that does not own it.
    pub fn summaries(&self) -> Result<Arc<dyn SummaryStore>, error::ApiError> {
        self.summaries.clone().ok_or_else(|| {
            error::ApiError::Unavailable(
                "this process does not serve summaries (no web role)".into(),
            )
        })
    }

    /// The webhook store, or a 503 in a process that does not own it.
    pub fn webhooks(
        &self,
    ) -> Result<Arc<dyn crate::store::webhooks::WebhookStore>, error::ApiError> {
        self.webhooks.clone().ok_or_else(|| {
            error::ApiError::Unavailable(
                "this process does not serve webhooks (no web role)".into(),
            )
        })
    }

    /// The store, or a 503 in a process that does not own it.
    pub fn store(&self) -> Result<Arc<dyn Store>, error::ApiError> {
        self.store.clone().ok_or_else(|| {
            error::ApiError::Unavailable("this process does not serve lookups (no web role)".into())
        })
    }

    /// The post archive, or a 503 in a process that does not own it.
    pub fn archive(&self) -> Result<Arc<dyn PostStore>, error::ApiError> {
        self.archive.clone().ok_or_else(|| {
            error::ApiError::Unavailable("this process does not serve posts (no web role)".into())
        })
    }

    /// A fresh WebSocket session id.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}

/// CORS for `http.cors_origins` (applied only when the list is not empty:
/// with no origin configured, no CORS headers are sent and same-origin
/// requests work as always).
fn cors(origins: &[String]) -> actix_cors::Cors {
    let base = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .expose_headers([actix_web::http::header::RETRY_AFTER])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        return base.allow_any_origin();
    }
    origins.iter().fold(base, |c, o| c.allowed_origin(o))
}

/// Counts every request and its latency per route pattern (outermost, so
/// refusals by auth and rate limits are counted too).
async fn record_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let result = next.call(req).await;
    let status = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    crate::telemetry::metrics::HTTP.record(
        &route,
        &method,
        status,
        started.elapsed().as_secs_f64(),
    );
    result
}

/// Binds the server; returns it (not yet awaited) and the bound address.
pub fn bind(
    state: web::Data<AppState>,
) -> std::io::Result<(actix_web::dev::Server, std::net::SocketAddr)> {
    let cfg = state.config.http.clone();
    let mounted = routes::Mounted {
        ingest: state.config.runs(crate::config::Role::Ingest),
        web: state.config.runs(crate::config::Role::Web),
    };
    let cors_origins = cfg.cors_origins.clone();
    let allowed = routes::Allowed::new(&mounted);
    let server = HttpServer::new(move || {
        let allowed = allowed.clone();
        App::new()
            .app_data(state.clone())
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                error::ApiError::BadRequest("invalid_query", e.to_string()).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                error::ApiError::BadRequest("invalid_path", e.to_string()).into()
            }))
            .app_data(web::JsonConfig::default().error_handler(|e, _| {
                error::ApiError::BadRequest("invalid_body", e.to_string()).into()
            }))
            .configure(|c| routes::configure(c, &mounted))
            .wrap(actix_web::middleware::from_fn(auth::guard))
            .wrap(actix_web::middleware::from_fn(record_request))
            .wrap(actix_web::middleware::Condition::new(
                !cors_origins.is_empty(),
                cors(&cors_origins),
            ))
            .default_service(web::to(move |req: actix_web::HttpRequest| {
                let allowed = allowed.methods(req.path());
                async move {
                    Err::<actix_web::HttpResponse, _>(if allowed.is_empty() {
                        error::ApiError::NotFound("no such route".into())
                    } else {
                        error::ApiError::MethodNotAllowed(allowed)
                    })
                }
            }))
    })
    .disable_signals()
    .shutdown_timeout(10);
    let server = if cfg.workers > 0 {
        server.workers(cfg.workers)
    } else {
        server
    };
    let server = server.bind(&cfg.listen)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("server bound to no address"))?;
    Ok((server.run(), addr))
}
