//! The OpenAPI 3 document of the REST API, generated from the handlers'
//! annotations (utoipa) and served at `GET /api/openapi.json`. A unit test
//! checks that it lists exactly the routes [`super::routes`] mounts.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Starling",
        description = "Real-time social listening: metric lookups, posts and search, ingest, live feeds and admin. Errors are `{\"error\": {\"code\", \"message\"}}`. Times are RFC 3339 or unix milliseconds; durations in field names carry their unit (`_ms`, `_s`). With auth on, send `Authorization: Bearer KEY` (scopes: read, ingest, alerts, admin).",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        super::routes::healthz,
        super::routes::readyz,
        super::routes::prometheus,
        document,
        super::ingest::ingest,
        super::ws::connect,
        super::dashboard::index,
        super::dashboard::assets,
        super::routes::overall,
        super::routes::dimension,
        super::routes::list_entities,
        super::routes::get_entity,
        super::routes::get_series,
        super::posts::recent,
        super::posts::top,
        super::posts::authors,
        super::summaries::get,
        super::summaries::create,
        super::posts::search,
        super::routes::admin_actors,
        super::routes::admin_dlq,
        super::routes::admin_dlq_replay,
        super::auth::list_keys,
        super::auth::create_key,
        super::auth::delete_key,
        super::alerts::list,
        super::alerts::list_rules,
        super::alerts::create_rule,
        super::alerts::get_rule,
        super::alerts::delete_rule,
        super::alerts::get,
        super::alerts::acknowledge,
        super::alerts::resolve,
        super::webhooks::list,
        super::webhooks::create,
        super::webhooks::get,
        super::webhooks::delete,
        super::webhooks::resume,
    ),
    modifiers(&Bearer),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Liveness, readiness, Prometheus"),
        (name = "dashboard", description = "The live dashboard page and its assets (no key needed)"),
        (name = "metrics", description = "Overall and per-dimension metrics"),
        (name = "entities", description = "Entity listings, lookups and time series"),
        (name = "posts", description = "Archived posts: recent, top, authors, full-text search"),
        (name = "ingest", description = "Posting posts into the pipeline"),
        (name = "live", description = "The WebSocket feed"),
        (name = "admin", description = "Actors, dead letters, API keys (admin scope)"),
        (name = "alerts", description = "Alerts (read scope to list; alerts scope to acknowledge, resolve and manage rules)"),
        (name = "webhooks", description = "Webhook endpoints alert events are delivered to (admin scope)"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI 3 document", body = Object)))]
pub(crate) async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::routes::{mounted_routes, Mounted};
    use std::collections::BTreeSet;

    #[test]
    fn the_document_lists_exactly_the_mounted_routes() {
        let doc = ApiDoc::openapi();
        let documented: BTreeSet<(String, String)> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(move |(m, _)| (m.to_string(), path.clone()))
            })
            .collect();
        let mounted: BTreeSet<(String, String)> = mounted_routes(&Mounted {
            ingest: true,
            web: true,
        })
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
        assert_eq!(
            documented.difference(&mounted).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "documented but not mounted"
        );
        assert_eq!(
            mounted.difference(&documented).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "mounted but not documented"
        );
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let schemas = &doc["components"]["schemas"];
        let mut refs = Vec::new();
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        if k == "$ref" {
                            if let Some(s) = v.as_str() {
                                out.push(s.to_string());
                            }
                        }
                        walk(v, out);
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {r}"));
            assert!(schemas.get(name).is_some(), "{r} is not defined");
        }
    }
}
