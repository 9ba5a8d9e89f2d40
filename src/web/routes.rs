//! REST handlers: health, Prometheus metrics, metric lookups, admin.

use super::error::ApiError;
use super::queries::{self, SortBy};
use super::AppState;
use crate::actors::aggregator::window::Resolution;
use crate::actors::hub::CountSessions;
use crate::actors::supervisor::GetStatus;
use crate::domain::EntityKind;
use crate::telemetry::metrics::{self, gauges};
use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

/// Which groups of routes a process mounts (from its roles).
#[derive(Debug, Clone, Copy)]
pub struct Mounted {
    /// `POST /api/ingest`.
    pub ingest: bool,
    /// Lookups, admin and `/ws`.
    pub web: bool,
}

/// The routes of this process: health and metrics always, ingest with the
/// ingest role, lookups, admin and the WebSocket with the web role.
pub fn configure(cfg: &mut web::ServiceConfig, mounted: &Mounted) {
    for (method, path, route) in table(mounted) {
        cfg.route(path, route.method(method));
    }
}

/// Method and path pattern of every route `configure` mounts (the OpenAPI
/// document is checked against this list).
pub fn mounted_routes(mounted: &Mounted) -> Vec<(Method, &'static str)> {
    table(mounted)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The methods each mounted path pattern answers, to tell a wrong method
/// (405) from an unknown path (404).
#[derive(Debug, Clone)]
pub struct Allowed(Vec<(Method, actix_web::dev::ResourceDef)>);

impl Allowed {
    /// For the routes `mounted` mounts.
    pub fn new(mounted: &Mounted) -> Self {
        Allowed(
            mounted_routes(mounted)
                .into_iter()
                .map(|(m, p)| (m, actix_web::dev::ResourceDef::new(p)))
                .collect(),
        )
    }

    /// The methods `path` answers (empty: no such path).
    pub fn methods(&self, path: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .0
            .iter()
            .filter(|(_, def)| def.is_match(path))
            .map(|(m, _)| m.to_string())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Every route, once: method, path pattern, handler.
fn table(mounted: &Mounted) -> Vec<(Method, &'static str, actix_web::Route)> {
    let mut t = vec![
        (Method::GET, "/healthz", web::to(healthz)),
        (Method::GET, "/readyz", web::to(readyz)),
        (Method::GET, "/metrics", web::to(prometheus)),
        (
            Method::GET,
            "/api/openapi.json",
            web::to(super::openapi::document),
        ),
    ];
    if mounted.ingest {
        t.push((Method::POST, "/api/ingest", web::to(super::ingest::ingest)));
    }
    if !mounted.web {
        return t;
    }
    t.extend([
        (Method::GET, "/", web::to(super::dashboard::index)),
        (
            Method::GET,
            "/assets/{name}",
            web::to(super::dashboard::assets),
        ),
        (Method::GET, "/ws", web::to(super::ws::connect)),
        (Method::GET, "/api/metrics/overall", web::to(overall)),
        (Method::GET, "/api/metrics/{dimension}", web::to(dimension)),
        (Method::GET, "/api/entities/{kind}", web::to(list_entities)),
        (
            Method::GET,
            "/api/entities/{kind}/{id}",
            web::to(get_entity),
        ),
        (
            Method::GET,
            "/api/entities/{kind}/{id}/series",
            web::to(get_series),
        ),
        (
            Method::GET,
            "/api/entities/{kind}/{id}/posts",
            web::to(super::posts::recent),
        ),
        (
            Method::GET,
            "/api/entities/{kind}/{id}/posts/top",
            web::to(super::posts::top),
        ),
        (
            Method::GET,
            "/api/entities/{kind}/{id}/authors",
            web::to(super::posts::authors),
        ),
        (
            Method::GET,
            "/api/entities/{kind}/{id}/summary",
            web::to(super::summaries::get),
        ),
        (
            Method::POST,
            "/api/entities/{kind}/{id}/summary",
            web::to(super::summaries::create),
        ),
        (Method::GET, "/api/search", web::to(super::posts::search)),
        (Method::GET, "/api/admin/actors", web::to(admin_actors)),
        (Method::GET, "/api/admin/dlq", web::to(admin_dlq)),
        (
            Method::POST,
            "/api/admin/dlq/replay",
            web::to(admin_dlq_replay),
        ),
        (
            Method::GET,
            "/api/admin/keys",
            web::to(super::auth::list_keys),
        ),
        (
            Method::POST,
            "/api/admin/keys",
            web::to(super::auth::create_key),
        ),
        (
            Method::DELETE,
            "/api/admin/keys/{id}",
            web::to(super::auth::delete_key),
        ),
        (Method::GET, "/api/alerts", web::to(super::alerts::list)),
        (
            Method::GET,
            "/api/alerts/rules",
            web::to(super::alerts::list_rules),
        ),
        (
            Method::POST,
            "/api/alerts/rules",
            web::to(super::alerts::create_rule),
        ),
        (
            Method::GET,
            "/api/alerts/rules/{id}",
            web::to(super::alerts::get_rule),
        ),
        (
            Method::DELETE,
            "/api/alerts/rules/{id}",
            web::to(super::alerts::delete_rule),
        ),
        (Method::GET, "/api/alerts/{id}", web::to(super::alerts::get)),
        (
            Method::POST,
            "/api/alerts/{id}/ack",
            web::to(super::alerts::acknowledge),
        ),
        (
            Method::POST,
            "/api/alerts/{id}/resolve",
            web::to(super::alerts::resolve),
        ),
        (Method::GET, "/api/webhooks", web::to(super::webhooks::list)),
        (
            Method::POST,
            "/api/webhooks",
            web::to(super::webhooks::create),
        ),
        (
            Method::GET,
            "/api/webhooks/{id}",
            web::to(super::webhooks::get),
        ),
        (
            Method::DELETE,
            "/api/webhooks/{id}",
            web::to(super::webhooks::delete),
        ),
        (
            Method::POST,
            "/api/webhooks/{id}/resume",
            web::to(super::webhooks::resume),
        ),
    ]);
    t
}

/// `{"status": "ok"}` and `{"status": "ready" | "not_ready", "problems"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not_ready`.
    pub status: &'static str,
    /// Why the process is not ready (readiness only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process is up", body = Health)))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        problems: Vec::new(),
    })
}

/// Ready when the bus answers, the store (in a process that has one)
/// answers, and every supervised actor is running; `503` with the reasons
/// otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses(
    (status = 200, description = "Bus, store and actors are up", body = Health),
    (status = 503, description = "Not ready, with the reasons", body = Health)))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut problems: Vec<String> = Vec::new();
    if state.bus.stream_stats().await.is_empty() {
        problems.push("the bus does not answer".into());
    }
    if let Ok(store) = state.store() {
        let check = web::block(move || store.watermark(EntityKind::Macro)).await;
        if !matches!(check, Ok(Ok(_))) {
            problems.push("the store does not answer".into());
        }
    }
    match state.supervisor.send(GetStatus).await {
        Ok(actors) => problems.extend(
            actors
                .iter()
                .filter(|a| {
                    !matches!(
                        a.state,
                        crate::actors::supervisor::ChildState::Running
                            | crate::actors::supervisor::ChildState::Finished
                    )
                })
                .map(|a| format!("actor {} is {:?}", a.name, a.state)),
        ),
        Err(e) => problems.push(format!("the supervisor does not answer: {e}")),
    }
    if problems.is_empty() {
        HttpResponse::Ok().json(Health {
            status: "ready",
            problems,
        })
    } else {
        HttpResponse::ServiceUnavailable().json(Health {
            status: "not_ready",
            problems,
        })
    }
}

/// The entity kind named in a path, or a 404 listing the kinds.
pub(crate) fn parse_kind(s: &str) -> Result<EntityKind, ApiError> {
    EntityKind::parse(s).ok_or_else(|| {
        ApiError::NotFound(format!(
            "unknown entity kind `{s}` (kinds: {})",
            EntityKind::ALL.map(EntityKind::as_str).join(", ")
        ))
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The whole market (`macro/all`): totals and latest windows.
#[utoipa::path(get, path = "/api/metrics/overall", tag = "metrics",
    responses((status = 200, description = "Totals and latest 1s/1m/1h windows", body = queries::EntityView)))]
pub(crate) async fn overall(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(overall_view(&state).await?))
}

/// One entity: from the hot cache on the async thread when it is there (no
/// thread hop), else from the store on the blocking pool.
pub(crate) async fn lookup(
    state: &AppState,
    kind: EntityKind,
    id: &str,
) -> Result<Option<queries::EntityView>, ApiError> {
    if let Some(hit) = queries::entity_cached(&state.cache, kind, id) {
        return Ok(Some(hit));
    }
    let (store, cache, id) = (state.store()?, state.cache.clone(), id.to_string());
    web::block(move || queries::entity(store.as_ref(), &cache, kind, &id)).await?
}

/// The whole market; all zeros before the first post.
pub(crate) async fn overall_view(state: &AppState) -> Result<queries::EntityView, ApiError> {
    Ok(lookup(state, EntityKind::Macro, crate::domain::MACRO_ID)
        .await?
        .unwrap_or_else(queries::empty_overall))
}

/// Query of the listings.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `volume` (default), `sentiment`, `popularity`, `share_of_voice`,
    /// `change` (volume against the previous period), `sentiment_change`.
    sort: Option<String>,
    /// Page size (default 20, at most 1000).
    limit: Option<usize>,
    /// Rows to skip: the `next_offset` of the previous page.
    offset: Option<usize>,
    /// Period: `all` or e.g. `15m`, `1h` (default), `24h`.
    period: Option<String>,
    /// Only entities with at least this volume over the period.
    min_volume: Option<u64>,
    /// Only entities whose id contains this text (case-insensitive).
    q: Option<String>,
}

async fn ranked(
    state: web::Data<AppState>,
    kind: EntityKind,
    q: ListQuery,
    default_period: &str,
) -> Result<HttpResponse, ApiError> {
    let sort = SortBy::parse(q.sort.as_deref().unwrap_or("volume"))?;
    let label = q.period.unwrap_or_else(|| default_period.to_string());
    let period = queries::parse_period(&label)?;
    if period.is_none() && sort.needs_period() {
        return Err(ApiError::BadRequest(
            "invalid_sort",
            "change sorts compare with the previous period: give a period (e.g. 1h)".into(),
        ));
    }
    let limit = q.limit.unwrap_or(20);
    if limit == 0 || limit > queries::MAX_LIST {
        return Err(ApiError::BadRequest(
            "invalid_limit",
            format!("limit must be 1..={}", queries::MAX_LIST),
        ));
    }
    let filter = queries::ListFilter {
        min_volume: q.min_volume.unwrap_or(0),
        id_contains: q.q.filter(|t| !t.is_empty()).map(|t| t.to_lowercase()),
        offset: q.offset.unwrap_or(0),
        limit,
    };
    let reuse = state.config.http.listing_cache_ms > 0;
    let key = format!("{kind}|{label}|{sort:?}|{filter:?}");
    if let Some(hit) = state.listings.get(&key).filter(|_| reuse) {
        return Ok(HttpResponse::Ok().json(hit.as_ref()));
    }
    let store = state.store()?;
    let ranking = web::block(move || {
        queries::rank(
            store.as_ref(),
            kind,
            period,
            &label,
            sort,
            &filter,
            now_ms(),
        )
    })
    .await??;
    let ranking = std::sync::Arc::new(ranking);
    if reuse {
        state.listings.insert(key, ranking.clone());
    }
    Ok(HttpResponse::Ok().json(ranking.as_ref()))
}

/// A breakdown ranked over a period (default `all`).
#[utoipa::path(get, path = "/api/metrics/{dimension}", tag = "metrics",
    params(("dimension" = String, Path, description = "geo, products, channels or platforms"), ListQuery),
    responses((status = 200, description = "Ranked breakdown", body = queries::Ranking), (status = 400, description = "Bad parameters", body = super::error::ErrorBody),
        (status = 404, description = "Unknown dimension", body = super::error::ErrorBody)))]
pub(crate) async fn dimension(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let kind = match name.as_str() {
        "geo" | "geos" => EntityKind::Geo,
        "products" | "product" => EntityKind::Product,
        "channels" | "channel" => EntityKind::Channel,
        "platforms" | "platform" => EntityKind::Platform,
        _ => {
            return Err(ApiError::NotFound(format!(
                "unknown dimension `{name}` (dimensions: geo, products, channels, platforms)"
            )))
        }
    };
    ranked(state, kind, q.into_inner(), "all").await
}

/// A kind's entities ranked over a period (default `1h`), filtered and paged.
#[utoipa::path(get, path = "/api/entities/{kind}", tag = "entities",
    params(("kind" = String, Path, description = "user, kol, project, topic, narrative, macro, platform, channel, product, geo"), ListQuery),
    responses((status = 200, description = "Ranked entities", body = queries::Ranking), (status = 400, description = "Bad parameters", body = super::error::ErrorBody),
        (status = 404, description = "Unknown kind", body = super::error::ErrorBody)))]
pub(crate) async fn list_entities(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let kind = parse_kind(&path.into_inner())?;
    ranked(state, kind, q.into_inner(), "1h").await
}

/// One entity: totals over its life and its latest 1s/1m/1h windows.
#[utoipa::path(get, path = "/api/entities/{kind}/{id}", tag = "entities",
    params(("kind" = String, Path, description = "Entity kind"), ("id" = String, Path, description = "Entity id")),
    responses((status = 200, description = "The entity", body = queries::EntityView),
        (status = 404, description = "Never seen", body = super::error::ErrorBody)))]
pub(crate) async fn get_entity(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let kind = parse_kind(&kind)?;
    match lookup(&state, kind, &id).await? {
        Some(mut v) => {
            let entity = crate::domain::EntityRef::new(kind, id);
            v.summary = super::summaries::latest(&state, &entity)
                .await
                .ok()
                .flatten()
                .map(|s| s.as_ref().clone());
            Ok(HttpResponse::Ok().json(v))
        }
        None => Err(ApiError::NotFound(format!(
            "no {kind} `{id}` has been seen"
        ))),
    }
}

/// Query of a series.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// `1s`, `1m` (default) or `1h`.
    resolution: Option<String>,
    /// Start, RFC 3339 or unix ms (default: 300 windows before `to`).
    from: Option<String>,
    /// End, RFC 3339 or unix ms (default: now).
    to: Option<String>,
}

/// An entity's windows at 1s, 1m or 1h between two times (empty windows absent).
#[utoipa::path(get, path = "/api/entities/{kind}/{id}/series", tag = "entities",
    params(("kind" = String, Path, description = "Entity kind"), ("id" = String, Path, description = "Entity id"), SeriesQuery),
    responses((status = 200, description = "The series", body = queries::Series), (status = 400, description = "Bad parameters", body = super::error::ErrorBody),
        (status = 404, description = "Unknown kind", body = super::error::ErrorBody)))]
pub(crate) async fn get_series(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<SeriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let kind = parse_kind(&kind)?;
    let q = q.into_inner();
    let res_name = q.resolution.unwrap_or_else(|| "1m".into());
    let resolution = Resolution::parse(&res_name).ok_or_else(|| {
        ApiError::BadRequest(
            "invalid_resolution",
            format!("resolution `{res_name}` must be 1s, 1m or 1h"),
        )
    })?;
    let to = match q.to {
        Some(t) => queries::parse_time(&t)?,
        None => now_ms(),
    };
    let from = match q.from {
        Some(f) => queries::parse_time(&f)?,
        None => to - 299 * resolution.millis(),
    };
    let store = state.store()?;
    let series =
        web::block(move || queries::series(store.as_ref(), kind, &id, resolution, from, to))
            .await??;
    Ok(HttpResponse::Ok().json(series))
}

/// Prometheus metrics (text format): counters, per-route request counts and
/// latency histograms, consumer lag, WebSocket clients.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn prometheus(state: web::Data<AppState>) -> HttpResponse {
    let mut g: Vec<(&str, &str, String, f64)> = Vec::new();
    for c in state.bus.consumer_stats().await {
        let labels = format!("stream=\"{}\",consumer=\"{}\"", c.stream, c.durable);
        g.push((
            gauges::CONSUMER_PENDING.0,
            gauges::CONSUMER_PENDING.1,
            labels.clone(),
            c.pending as f64,
        ));
        g.push((
            gauges::CONSUMER_ACK_PENDING.0,
            gauges::CONSUMER_ACK_PENDING.1,
            labels,
            c.ack_pending as f64,
        ));
    }
    g.sort_by(|a, b| a.0.cmp(b.0));
    for s in state.bus.stream_stats().await {
        g.push((
            gauges::STREAM_MESSAGES.0,
            gauges::STREAM_MESSAGES.1,
            format!("stream=\"{}\"", s.stream),
            s.messages as f64,
        ));
    }
    if let Some(hub) = state.hub.get() {
        if let Ok(n) = hub.send(CountSessions).await {
            g.push((
                gauges::WS_CLIENTS.0,
                gauges::WS_CLIENTS.1,
                String::new(),
                n as f64,
            ));
        }
    }
    let mut text = metrics::render(&g);
    text.push_str(&metrics::HTTP.render());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}

/// Supervised actors, consumer lag and stream counters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminActors {
    /// Every supervised actor.
    pub actors: Vec<crate::actors::supervisor::ChildStatus>,
    /// Lag per durable consumer.
    pub consumers: Vec<crate::bus::ConsumerStats>,
    /// Counters per stream.
    pub streams: Vec<crate::bus::StreamStats>,
}

/// Dead letters, newest last.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetters {
    /// The letters.
    pub dead_letters: Vec<crate::bus::DeadLetter>,
}

/// Result of a replay.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// Dead letters published again.
    pub replayed: usize,
}

/// Actors, consumers and streams (admin scope).
#[utoipa::path(get, path = "/api/admin/actors", tag = "admin",
    responses((status = 200, description = "State of the process", body = AdminActors)))]
pub(crate) async fn admin_actors(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let actors = state
        .supervisor
        .send(GetStatus)
        .await
        .map_err(|e| ApiError::Unavailable(format!("supervisor: {e}")))?;
    Ok(HttpResponse::Ok().json(AdminActors {
        actors,
        consumers: state.bus.consumer_stats().await,
        streams: state.bus.stream_stats().await,
    }))
}

/// Messages given up on after `max_deliver` deliveries or a failure that
/// cannot pass, with the reason (admin scope).
#[utoipa::path(get, path = "/api/admin/dlq", tag = "admin",
    responses((status = 200, description = "Dead letters", body = DeadLetters)))]
pub(crate) async fn admin_dlq(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(DeadLetters {
        dead_letters: state.bus.dead_letters().await,
    })
}

/// Publishes every dead letter again on its original subject (after a fix);
/// posts already counted are recognised and counted once (admin scope).
#[utoipa::path(post, path = "/api/admin/dlq/replay", tag = "admin",
    responses((status = 200, description = "How many were replayed", body = Replayed),
        (status = 503, description = "The bus refused", body = super::error::ErrorBody)))]
pub(crate) async fn admin_dlq_replay(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let replayed = state
        .bus
        .replay_dead_letters()
        .await
        .map_err(|e| ApiError::Unavailable(format!("replay failed: {e}")))?;
    Ok(HttpResponse::Ok().json(Replayed { replayed }))
}
