//! The dashboard: a live war-room page served by the binary itself at `/`,
//! its script and stylesheet embedded at compile time (no build step, no
//! CDN, works offline). The page uses only the public REST and WebSocket
//! API, with the API key the user gives when auth is on; serving the page
//! itself needs no key (it holds no data).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// The page.
const INDEX: &str = include_str!("index.html");
/// Its script.
const APP_JS: &str = include_str!("app.js");
/// Its stylesheet.
const APP_CSS: &str = include_str!("app.css");

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

/// The dashboard page.
#[utoipa::path(get, path = "/", tag = "dashboard", security(()),
    responses((status = 200, description = "The dashboard (HTML)", content_type = "text/html")))]
pub(crate) async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// The dashboard's script and stylesheet (`app.js`, `app.css`).
#[utoipa::path(get, path = "/assets/{name}", tag = "dashboard", security(()),
    params(("name" = String, Path, description = "app.js or app.css")),
    responses((status = 200, description = "The asset"), (status = 404, description = "No such asset", body = super::error::ErrorBody)))]
pub(crate) async fn assets(
    name: web::Path<String>,
) -> Result<HttpResponse, super::error::ApiError> {
    match name.as_str() {
        "app.js" => Ok(asset("text/javascript; charset=utf-8", APP_JS)),
        "app.css" => Ok(asset("text/css; charset=utf-8", APP_CSS)),
        other => Err(super::error::ApiError::NotFound(format!(
            "no asset `{other}`"
        ))),
    }
}
