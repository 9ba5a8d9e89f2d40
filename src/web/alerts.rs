//! Alerts and custom alert rules over REST: listing with filters and
//! paging, one alert, acknowledge and resolve; rules created, listed and
//! deleted. Lifecycle changes and rule changes go through the alert engine
//! ([`crate::actors::alerts`]), which stores them and pushes their events.

use super::error::ApiError;
use super::queries;
use super::routes::parse_kind;
use super::AppState;
use crate::actors::alerts::{ask_remote, Command, CommandError};
use crate::alerts::engine::LifecycleError;
use crate::alerts::model::{Alert, AlertKind, AlertState, Rule, RuleSpec};
use crate::domain::EntityRef;
use crate::store::alerts::AlertQuery;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

/// Largest page of alerts.
pub const MAX_ALERTS: usize = 200;
/// Most custom rules kept.
pub const MAX_RULES: usize = 1_000;

/// Filters and paging of the alert listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// Only this kind: churn, sentiment_shift, volume_spike, toxicity_surge, kol_post, custom.
    kind: Option<String>,
    /// Only this state: open, acknowledged, resolved.
    state: Option<String>,
    /// Only alerts about this entity, `kind:id` (e.g. `project:SOL`).
    entity: Option<String>,
    /// Only alerts about entities of this kind.
    entity_kind: Option<String>,
    /// Only alerts at least this severe (1–10).
    min_severity: Option<u8>,
    /// Only alerts opened at or after this time (RFC 3339 or unix ms).
    since: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (default 50, at most 200).
    limit: Option<usize>,
}

/// A page of alerts, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertsPage {
    /// The alerts.
    pub alerts: Vec<Alert>,
    /// Cursor of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The custom rules.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RulesList {
    /// Every rule, by id.
    pub rules: Vec<Rule>,
}

fn bad(code: &'static str, m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(code, m.into())
}

impl AlertsQuery {
    fn to_query(&self) -> Result<AlertQuery, ApiError> {
        let kind = self
            .kind
            .as_deref()
            .map(|k| {
                AlertKind::parse(k)
                    .ok_or_else(|| bad("invalid_filter", format!("unknown alert kind `{k}`")))
            })
            .transpose()?;
        let state = self
            .state
            .as_deref()
            .map(|s| {
                AlertState::parse(s).ok_or_else(|| {
                    bad(
                        "invalid_filter",
                        format!("unknown state `{s}` (open, acknowledged, resolved)"),
                    )
                })
            })
            .transpose()?;
        let entity = match self.entity.as_deref() {
            None => None,
            Some(e) => {
                let (k, id) = e.split_once(':').ok_or_else(|| {
                    bad("invalid_filter", format!("entity `{e}` must be kind:id"))
                })?;
                Some(EntityRef::new(parse_kind(k)?, id))
            }
        };
        let entity_kind = self.entity_kind.as_deref().map(parse_kind).transpose()?;
        if self.min_severity.is_some_and(|s| !(1..=10).contains(&s)) {
            return Err(bad("invalid_filter", "min_severity must be 1 to 10"));
        }
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_ALERTS {
            return Err(bad(
                "invalid_limit",
                format!("limit must be 1..={MAX_ALERTS}"),
            ));
        }
        if let Some(c) = &self.cursor {
            if c.len() > 1_200 || hex::decode(c).is_err() {
                return Err(bad("invalid_cursor", "not a cursor from this listing"));
            }
        }
        Ok(AlertQuery {
            kind,
            state,
            entity_kind,
            entity,
            min_severity: self.min_severity,
            since_ms: self.since.as_deref().map(queries::parse_time).transpose()?,
            after: self.cursor.clone(),
            limit,
        })
    }
}

/// Runs a blocking store call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    // A store that does not answer (shared ScyllaDB down) is a 503.
    Ok(web::block(f).await??)
}

/// Alerts, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(AlertsQuery),
    responses((status = 200, description = "A page of alerts, newest first", body = AlertsPage),
        (status = 400, description = "Bad filter, limit or cursor", body = super::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    q: web::Query<AlertsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = q.to_query()?;
    let store = state.alerts()?;
    let page = blocking(move || store.alerts(&query)).await?;
    Ok(HttpResponse::Ok().json(AlertsPage {
        alerts: page.alerts,
        next_cursor: page.next,
    }))
}

/// One alert.
#[utoipa::path(get, path = "/api/alerts/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, description = "The alert", body = Alert),
        (status = 404, description = "No such alert", body = super::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let store = state.alerts()?;
    let key = id.clone();
    match blocking(move || store.alert(&key)).await? {
        Some(a) => Ok(HttpResponse::Ok().json(a)),
        None => Err(ApiError::NotFound(format!("no alert `{id}`"))),
    }
}

async fn lifecycle(state: &AppState, cmd: Command, id: &str) -> Result<HttpResponse, ApiError> {
    let store = state.alerts()?;
    let local = match state.alert_engine.get() {
        Some(engine) => engine
            .send(cmd.clone())
            .await
            .map_err(|_| ApiError::Unavailable("the alert engine is restarting; retry".into()))?,
        None => Err(CommandError::Unavailable),
    };
    // With a shared store the engine may run in another process: ask it.
    let answer = match local {
        Err(CommandError::Elsewhere(_) | CommandError::Unavailable)
            if store.claim_ttl().is_some() =>
        {
            ask_remote(state.bus.as_ref(), &cmd).await
        }
        other => other,
    };
    match answer {
        Ok(Some(a)) => Ok(HttpResponse::Ok().json(a)),
        Ok(None) => Err(ApiError::Internal(
            "the engine answered without the alert".into(),
        )),
        Err(CommandError::Lifecycle(LifecycleError::NotOpen(_))) => {
            let key = id.to_string();
            match blocking(move || store.alert(&key)).await? {
                Some(a) => Err(ApiError::Unprocessable(
                    "alert_resolved",
                    format!("alert `{}` is {}", a.id, a.state.as_str()),
                )),
                None => Err(ApiError::NotFound(format!("no alert `{id}`"))),
            }
        }
        Err(CommandError::Unavailable) => Err(ApiError::Unavailable(
            "the alert engine is restarting; retry".into(),
        )),
        Err(CommandError::Store(m)) => Err(ApiError::Internal(m)),
        Err(e @ CommandError::Elsewhere(_)) => Err(ApiError::Unavailable(e.to_string())),
    }
}

/// Acknowledges an open alert (it still resolves when its condition clears).
#[utoipa::path(post, path = "/api/alerts/{id}/ack", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, description = "The acknowledged alert", body = Alert),
        (status = 404, description = "No such alert", body = super::error::ErrorBody),
        (status = 422, description = "The alert is already resolved", body = super::error::ErrorBody)))]
pub async fn acknowledge(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    lifecycle(&state, Command::Acknowledge(id.clone()), &id).await
}

/// Resolves an open or acknowledged alert by hand.
#[utoipa::path(post, path = "/api/alerts/{id}/resolve", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, description = "The resolved alert", body = Alert),
        (status = 404, description = "No such alert", body = super::error::ErrorBody),
        (status = 422, description = "The alert is already resolved", body = super::error::ErrorBody)))]
pub async fn resolve(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    lifecycle(&state, Command::Resolve(id.clone()), &id).await
}

/// Every custom rule.
#[utoipa::path(get, path = "/api/alerts/rules", tag = "alerts",
    responses((status = 200, description = "The rules", body = RulesList)))]
pub async fn list_rules(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.alerts()?;
    let rules = blocking(move || store.rules()).await?;
    Ok(HttpResponse::Ok().json(RulesList { rules }))
}

/// One custom rule.
#[utoipa::path(get, path = "/api/alerts/rules/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Rule id")),
    responses((status = 200, description = "The rule", body = Rule),
        (status = 404, description = "No such rule", body = super::error::ErrorBody)))]
pub async fn get_rule(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let store = state.alerts()?;
    let key = id.clone();
    match blocking(move || store.rule(&key)).await? {
        Some(r) => Ok(HttpResponse::Ok().json(r)),
        None => Err(ApiError::NotFound(format!("no rule `{id}`"))),
    }
}

async fn reload_rules(state: &AppState) {
    if let Some(engine) = state.alert_engine.get() {
        // A restarting engine reads the rules from the store when it starts.
        let _ = engine.send(Command::ReloadRules).await;
    }
}

/// Creates a custom threshold rule; it is evaluated from the next bucket on.
#[utoipa::path(post, path = "/api/alerts/rules", tag = "alerts", request_body = RuleSpec,
    responses((status = 201, description = "The rule, with its id", body = Rule),
        (status = 400, description = "Malformed rule", body = super::error::ErrorBody),
        (status = 422, description = "A value out of range, or an entity kind the engine does not watch", body = super::error::ErrorBody)))]
pub async fn create_rule(
    state: web::Data<AppState>,
    body: web::Json<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner();
    let cfg = &state.config.alerts;
    spec.validate(cfg.bucket_s.max(1))
        .map_err(|m| ApiError::Unprocessable("invalid_rule", m))?;
    if !cfg.kinds.contains(&spec.entity.kind) {
        return Err(ApiError::Unprocessable(
            "invalid_rule",
            format!(
                "the alert engine does not watch `{}` entities (alerts.kinds)",
                spec.entity.kind
            ),
        ));
    }
    let store = state.alerts()?;
    let now = chrono::Utc::now().timestamp_millis();
    let rule = Rule {
        id: format!("rule_{:016x}", rand::random::<u64>()),
        created_at_ms: now,
        spec,
    };
    let stored = rule.clone();
    blocking(move || {
        if store.rules()?.len() >= MAX_RULES {
            return Ok(false);
        }
        store.put_rule(&stored)?;
        Ok(true)
    })
    .await?
    .then_some(())
    .ok_or_else(|| {
        ApiError::Unprocessable("too_many_rules", format!("at most {MAX_RULES} rules"))
    })?;
    reload_rules(&state).await;
    Ok(HttpResponse::Created().json(rule))
}

/// Deletes a custom rule; its open alerts are resolved.
#[utoipa::path(delete, path = "/api/alerts/rules/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such rule", body = super::error::ErrorBody)))]
pub async fn delete_rule(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let store = state.alerts()?;
    let key = id.clone();
    if !blocking(move || store.delete_rule(&key)).await? {
        return Err(ApiError::NotFound(format!("no rule `{id}`")));
    }
    reload_rules(&state).await;
    Ok(HttpResponse::NoContent().finish())
}
