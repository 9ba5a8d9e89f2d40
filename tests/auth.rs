//! API keys, scopes and rate limits, against the real binary.

mod common;

use common::{client, Starling};
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use starling::web::auth::hash_key;
use std::path::Path;
use std::time::Duration;

fn write_config(dir: &Path, extra: &str) -> String {
    let path = dir.join("starling.toml");
    let config = format!(
        r#"
[auth]
mode = "on"
{extra}

[[auth.keys]]
id = "reader"
sha256 = "{}"
scopes = ["read"]

[[auth.keys]]
id = "ingester"
sha256 = "{}"
scopes = ["ingest"]

[[auth.keys]]
id = "root"
sha256 = "{}"
scopes = ["admin"]
"#,
        hash_key("read-secret"),
        hash_key("ingest-secret"),
        hash_key("admin-secret")
    );
    std::fs::write(&path, config).expect("write config");
    path.to_str().expect("utf-8").to_string()
}

async fn status(
    s: &Starling,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = match method {
        "POST" => client().post(s.url(path)),
        "DELETE" => client().delete(s.url(path)),
        _ => client().get(s.url(path)),
    };
    if let Some(k) = key {
        req = req.insert_header(("authorization", format!("Bearer {k}")));
    }
    let mut resp = match body {
        Some(b) => req.send_json(&b).await.expect("request"),
        None => req.send().await.expect("request"),
    };
    let code = resp.status().as_u16();
    let bytes = resp.body().await.expect("body");
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The status of a request without a body.
async fn status_of(s: &Starling, method: &str, path: &str, key: Option<&str>) -> u16 {
    status(s, method, path, key, None).await.0
}

fn one_post() -> Value {
    json!([{"id": "a1", "platform": "twitter", "text": "fine", "author": {"id": "u1", "handle": "ann"},
            "created_at": chrono::Utc::now().to_rfc3339()}])
}

#[actix_rt::test]
async fn keys_and_scopes_decide_who_may_do_what() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    let data = dir.path().join("data");
    let s = Starling::start(&data, &["--config", &config]);

    assert_eq!(
        status_of(&s, "GET", "/healthz", None).await,
        200,
        "health needs no key"
    );
    let (code, body) = status(&s, "GET", "/api/metrics/overall", None, None).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(
        status_of(&s, "GET", "/api/metrics/overall", Some("wrong")).await,
        401
    );
    let (code, body) = status(
        &s,
        "GET",
        "/api/metrics/overall",
        Some("ingest-secret"),
        None,
    )
    .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(
        status_of(&s, "GET", "/api/metrics/overall", Some("read-secret")).await,
        200
    );
    assert_eq!(
        status_of(&s, "GET", "/api/metrics/overall", Some("admin-secret")).await,
        200
    );

    assert_eq!(
        status(
            &s,
            "POST",
            "/api/ingest",
            Some("read-secret"),
            Some(one_post())
        )
        .await
        .0,
        403
    );
    assert_eq!(
        status(
            &s,
            "POST",
            "/api/ingest",
            Some("ingest-secret"),
            Some(one_post())
        )
        .await
        .0,
        202
    );
    assert_eq!(
        status_of(&s, "GET", "/api/admin/actors", Some("read-secret")).await,
        403
    );
    assert_eq!(
        status_of(&s, "GET", "/api/admin/actors", Some("admin-secret")).await,
        200
    );

    // WebSocket: the key as a query token.
    assert!(
        client().ws(s.ws_url()).connect().await.is_err(),
        "no token, no socket"
    );
    let with_token = format!("{}?token=read-secret", s.ws_url());
    assert!(client().ws(with_token).connect().await.is_ok());

    // An admin creates a key; its secret is shown once and works at once.
    let (code, created) = status(
        &s,
        "POST",
        "/api/admin/keys",
        Some("admin-secret"),
        Some(json!({"id": "dash", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let secret = created["key"].as_str().expect("key").to_string();
    assert_eq!(
        status_of(&s, "GET", "/api/entities/project", Some(&secret)).await,
        200
    );
    let (_, listed) = status(&s, "GET", "/api/admin/keys", Some("admin-secret"), None).await;
    assert!(
        !listed.to_string().contains(&secret),
        "secrets are never listed"
    );
    assert!(
        !listed.to_string().contains(&hash_key(&secret)),
        "nor their hashes"
    );
    s.stop();

    // Created keys survive a restart (stored hashed), and can be deleted.
    let stored = std::fs::read_to_string(data.join("api-keys.json")).expect("key file");
    assert!(!stored.contains(&secret) && stored.contains(&hash_key(&secret)));
    let s = Starling::start(&data, &["--config", &config]);
    assert_eq!(
        status_of(&s, "GET", "/api/entities/project", Some(&secret)).await,
        200
    );
    assert_eq!(
        status_of(&s, "DELETE", "/api/admin/keys/dash", Some("admin-secret")).await,
        204
    );
    assert_eq!(
        status_of(&s, "GET", "/api/entities/project", Some(&secret)).await,
        401
    );
    s.stop();
}

#[actix_rt::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "rate_per_s = 0.5\nburst = 3.0");
    let s = Starling::start(&dir.path().join("data"), &["--config", &config]);
    for _ in 0..3 {
        assert_eq!(
            status_of(&s, "GET", "/api/metrics/overall", Some("read-secret")).await,
            200
        );
    }
    let resp = client()
        .get(s.url("/api/metrics/overall"))
        .insert_header(("authorization", "Bearer read-secret"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!((1..=2).contains(&retry), "retry after {retry}");
    // Another key has its own bucket.
    assert_eq!(
        status_of(&s, "GET", "/api/metrics/overall", Some("admin-secret")).await,
        200
    );
    // Guessing keys spends the address's bucket: 401s, then 429.
    let mut guesses = Vec::new();
    for i in 0..5 {
        let guess = format!("guess-{i}");
        guesses.push(status_of(&s, "GET", "/api/metrics/overall", Some(&guess)).await);
    }
    assert_eq!(guesses[..3], [401, 401, 401], "{guesses:?}");
    assert_eq!(guesses[3..], [429, 429], "{guesses:?}");
    // A valid key is not held back by its address's failures.
    assert_eq!(
        status_of(&s, "GET", "/api/metrics/overall", Some("admin-secret")).await,
        200
    );
    s.stop();
}

#[actix_rt::test]
async fn cors_allows_only_the_configured_origins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cors.toml");
    std::fs::write(&path, "[http]\ncors_origins = [\"https://dash.example\"]\n").expect("write");
    let s = Starling::start(
        &dir.path().join("data"),
        &["--config", path.to_str().expect("utf-8")],
    );
    let preflight = |origin: &'static str| {
        client()
            .request(awc::http::Method::OPTIONS, s.url("/api/metrics/overall"))
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "GET"))
            .insert_header(("access-control-request-headers", "authorization"))
            .send()
    };
    let ok = preflight("https://dash.example").await.expect("preflight");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://dash.example")
    );
    let other = preflight("https://evil.example").await.expect("preflight");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    s.stop();

    // Without origins configured no CORS headers are sent, and a request
    // carrying its own Origin still works (same-origin pages).
    let s = Starling::start(&dir.path().join("data2"), &[]);
    let r = client()
        .get(s.url("/api/metrics/overall"))
        .insert_header(("origin", s.base.clone()))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    s.stop();
}

/// Fills a documented path with values that exist after `one_post`.
fn concrete(path: &str) -> String {
    path.replace("{kind}", "user")
        .replace("{id}", "u1")
        .replace("{dimension}", "platforms")
}

/// Walks the served OpenAPI document: every operation answers with a status
/// it documents, errors have the documented shape, and auth matches the
/// document (401 without a key where a key is needed, 403 with a read key
/// on admin, webhook, alert-changing and ingest operations).
#[actix_rt::test]
async fn the_openapi_document_validates_and_every_operation_answers_as_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let s = Starling::start(&dir.path().join("data"), &["--config", &cfg]);
    let (code, _) = status(
        &s,
        "POST",
        "/api/ingest",
        Some("ingest-secret"),
        Some(one_post()),
    )
    .await;
    assert_eq!(code, 202);

    let (code, doc) = status(&s, "GET", "/api/openapi.json", None, None).await;
    assert_eq!(code, 200, "the document is open");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(doc["security"], json!([{"bearer": []}]), "a key by default");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let mut walked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let method = method.to_uppercase();
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                !responses.is_empty(),
                "{method} {path} documents no response"
            );
            let documented = |code: u16| responses.contains_key(&code.to_string());
            // Open operations say so (`security: [{}]`); the rest inherit the bearer key.
            let open = op["security"] == json!([{}]);
            let url = concrete(path);
            // Required query parameters get a value.
            let query: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| format!("{}=refund", p["name"].as_str().expect("name")))
                .collect();
            let url = if query.is_empty() {
                url
            } else {
                format!("{url}?{}", query.join("&"))
            };
            let body = match (method.as_str(), path.as_str()) {
                ("POST", "/api/ingest") => Some(one_post()),
                ("POST", "/api/admin/keys") => Some(json!({"id": "walker", "scopes": ["read"]})),
                _ => None,
            };
            // The right key for the operation: admin for /api/admin and
            // /api/webhooks, and for changes under /api/alerts (the `alerts`
            // scope, which admin includes).
            let key = if path.starts_with("/api/admin")
                || path.starts_with("/api/webhooks")
                || (path.starts_with("/api/alerts") && method != "GET")
            {
                "admin-secret"
            } else if path == "/api/ingest" {
                "ingest-secret"
            } else {
                "read-secret"
            };
            let (code, answer) = status(&s, &method, &url, Some(key), body.clone()).await;
            assert!(
                documented(code),
                "{method} {url} answered {code}, which the document does not list: {answer}"
            );
            if code >= 400 {
                assert!(
                    answer["error"]["code"].is_string() && answer["error"]["message"].is_string(),
                    "{method} {url}: error without the documented shape: {answer}"
                );
            }
            // Auth as documented.
            let (anonymous, _) = status(&s, &method, &url, None, body.clone()).await;
            if open {
                assert_ne!(anonymous, 401, "{method} {url} is documented as open");
            } else {
                assert_eq!(anonymous, 401, "{method} {url} without a key");
            }
            if key != "read-secret" {
                let (reader, _) = status(&s, &method, &url, Some("read-secret"), body).await;
                assert_eq!(reader, 403, "{method} {url} with a read key");
            }
            walked += 1;
        }
    }
    assert!(walked >= 21, "walked {walked} operations");
    s.stop();
}

#[actix_rt::test]
async fn websocket_connections_are_limited_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "\n[http]\nws_max_connections_per_key = 2\n");
    let s = Starling::start(&dir.path().join("data"), &["--config", &cfg]);
    let url = |key: &str| format!("{}?token={key}", s.ws_url());
    let (_, first) = client()
        .ws(url("read-secret"))
        .connect()
        .await
        .expect("first");
    let (_, second) = client()
        .ws(url("read-secret"))
        .connect()
        .await
        .expect("second");
    match client().ws(url("read-secret")).connect().await {
        Err(awc::error::WsClientError::InvalidResponseStatus(code)) => {
            assert_eq!(code.as_u16(), 429)
        }
        Err(e) => panic!("a third connection must be refused with 429, not {e:?}"),
        Ok(_) => panic!("a third connection for the key must be refused"),
    }
    // The refusal is an ordinary JSON error over plain HTTP.
    let (code, body) = status(&s, "GET", "/ws?token=read-secret", None, None).await;
    assert_eq!(
        (code, &body["error"]["code"]),
        (429, &json!("too_many_connections"))
    );
    // Another key has its own count.
    let (_, admin) = client()
        .ws(url("admin-secret"))
        .connect()
        .await
        .expect("other key");
    // Closing one frees its place.
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok((_, ws)) = client().ws(url("read-secret")).connect().await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reopened.is_some(),
        "a closed connection's place is given back"
    );
    drop((second, reopened));
    // A clean stop closes the connections still open (1012: restarting).
    s.stop();
    let mut admin = admin;
    let mut closed = None;
    while let Some(frame) = admin.next().await {
        if let Ok(awc::ws::Frame::Close(reason)) = frame {
            closed = Some(reason);
            break;
        }
    }
    let reason = closed.flatten().expect("a close frame with a reason");
    assert_eq!(reason.code, awc::ws::CloseCode::Restart);
}

#[actix_rt::test]
async fn scheme_case_body_errors_and_pretty_objects_are_handled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let s = Starling::start(&dir.path().join("data"), &["--config", &cfg]);
    // The auth scheme is case-insensitive.
    let r = client()
        .get(s.url("/api/metrics/overall"))
        .insert_header(("authorization", "bearer read-secret"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    // A wrong method on a known path is 405 with Allow; an unknown path 404.
    let r = client()
        .delete(s.url("/api/metrics/overall"))
        .insert_header(("authorization", "Bearer read-secret"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    let keys = client()
        .put(s.url("/api/admin/keys"))
        .insert_header(("authorization", "Bearer admin-secret"))
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        keys.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );
    assert_eq!(
        status_of(&s, "GET", "/api/nothing", Some("read-secret")).await,
        404
    );
    // A JSON body that does not fit gets the JSON error shape.
    let (code, body) = status(
        &s,
        "POST",
        "/api/admin/keys",
        Some("admin-secret"),
        Some(json!({"id": "x", "scopes": ["superuser"]})),
    )
    .await;
    assert_eq!(
        (code, &body["error"]["code"]),
        (400, &json!("invalid_body")),
        "{body}"
    );
    // One pretty-printed object is one post.
    let mut pretty = one_post()[0].clone();
    pretty["id"] = json!("pretty-1");
    let mut r = client()
        .post(s.url("/api/ingest"))
        .insert_header(("authorization", "Bearer ingest-secret"))
        .insert_header(("content-type", "application/json"))
        .send_body(serde_json::to_string_pretty(&pretty).expect("json"))
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 202);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["accepted"], 1, "{answer}");
    s.stop();
}
