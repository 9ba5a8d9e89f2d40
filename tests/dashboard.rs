//! The dashboard over the real binary: the page and its assets are served
//! from the binary (no key needed, even with auth on), and everything the
//! page reads comes from the public API. (The browser end-to-end tests are
//! the next slice of the dashboard issue.)

mod common;

use common::{client, Starling};

async fn get(s: &Starling, path: &str) -> (u16, String, String) {
    let mut r = client().get(s.url(path)).send().await.expect("request");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = String::from_utf8(r.body().await.expect("body").to_vec()).expect("utf-8");
    (r.status().as_u16(), ct, body)
}

#[actix_rt::test]
async fn the_page_and_its_assets_are_served_without_a_key() {
    let dir = tempfile::tempdir().expect("tmp");
    // Auth on, with no key at all: the page still loads, the API does not.
    let s = Starling::start_with_env(dir.path(), &[], &[("STARLING_AUTH__MODE", "on")]);
    let (status, ct, html) = get(&s, "/").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    for id in [
        "panel-gauge",
        "panel-trend",
        "panel-geo",
        "panel-products",
        "panel-channels",
        "panel-emotions",
        "feed-list",
        "alert-list",
        "entity-table",
        "search-form",
        "key-dialog",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    // Nothing is fetched from elsewhere.
    assert!(!html.contains("http://") && !html.contains("https://"));
    let (status, ct, js) = get(&s, "/assets/app.js").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/javascript"), "{ct}");
    assert!(js.contains("/api/metrics/overall") && js.contains("/ws"));
    let (status, ct, _) = get(&s, "/assets/app.css").await;
    assert_eq!((status, ct.starts_with("text/css")), (200, true));
    let (status, _, _) = get(&s, "/assets/other.js").await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&s, "/api/metrics/overall").await;
    assert_eq!(status, 401);
    s.stop();
}
