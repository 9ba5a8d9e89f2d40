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

/// Headless Chromium against a running Starling with the synthetic stream:
/// every war-room panel shows numbers from the API, the trend and the feed
/// move with the WebSocket, clicking an entity opens its page, an alert is
/// acknowledged from the page (and the API says so), a dropped WebSocket
/// reconnects, and a phone-width window gets one column with nothing
/// wider than the screen. Screenshots go to `target/tmp/dashboard-e2e/`.
#[actix_rt::test]
async fn the_dashboard_works_in_a_real_browser() {
    let Some(mut b) = common::cdp::Browser::launch().await else {
        return;
    };
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-e2e");
    let dir = tempfile::tempdir().expect("tmp");
    let s = Starling::start(dir.path(), &["--synthetic-rate", "50"]);
    b.navigate(&s.url("/")).await;

    // War room: real numbers in every panel.
    let gauge = b
        .wait_for("document.querySelector('#gauge-value')?.textContent.match(/sentiment index . -?[0-9.]+/)?.[0]", 20)
        .await;
    assert!(
        gauge
            .as_str()
            .is_some_and(|g| g.starts_with("sentiment index")),
        "{gauge}"
    );
    for panel in ["geo", "products", "channels", "emotions"] {
        b.wait_for(
            &format!("document.querySelectorAll('#{panel} .row').length > 0"),
            20,
        )
        .await;
    }
    let (_, overall) = common::call(&s, "GET", "/api/metrics/overall", None).await;
    let shown = b
        .eval("Number(document.querySelector('#gauge p.muted').textContent.match(/^([0-9]+) posts/)[1])")
        .await;
    let shown = shown.as_u64().expect("posts shown");
    assert!(
        shown > 0 && shown <= overall["volume"].as_u64().unwrap_or(0),
        "{shown} vs {overall}"
    );
    // The trend and the feed move with the WebSocket.
    b.wait_for(
        "trend.length >= 3 && document.querySelector('#trend polyline') !== null",
        20,
    )
    .await;
    let first = "document.querySelector('#feed-list li')?.dataset.id";
    let top = b.wait_for(first, 20).await;
    b.wait_for(&format!("{first} !== {top}"), 20).await;
    b.screenshot(&shots.join("warroom.png")).await;

    // Entities: the table, then one entity's page.
    b.eval("document.querySelector('nav button[data-tab=entities]').click()")
        .await;
    b.wait_for(
        "document.querySelectorAll('#entity-table tbody tr td.num').length > 0",
        20,
    )
    .await;
    // Sorting by a column heading ranks by it.
    b.eval("document.querySelector('#entity-table th[data-sort=sentiment]').click()")
        .await;
    b.wait_for(
        "(() => { const v = [...document.querySelectorAll('#entity-table tbody tr td:nth-child(3)')].map(td => parseFloat(td.textContent.replace(/[^0-9.+-]/g, ''))).filter(x => !Number.isNaN(x)); return v.length > 1 && v.every((x, i) => i === 0 || v[i - 1] >= x); })()",
        20,
    )
    .await;
    let id = b
        .eval("document.querySelector('#entity-table tbody tr td').textContent")
        .await;
    b.eval("document.querySelector('#entity-table tbody tr').click()")
        .await;
    let page = b
        .wait_for("!document.querySelector('#entity-page').hidden && document.querySelector('#entity-series svg') && document.querySelector('#entity-page').innerText", 20)
        .await;
    let id = id.as_str().expect("entity id");
    assert!(
        page.as_str()
            .is_some_and(|p| p.contains(&format!("project:{id}")) && p.contains("Top posts")),
        "{page}"
    );
    b.screenshot(&shots.join("entity.png")).await;

    // Alerts: a churn post raises one; acknowledging it on the page is seen by the API.
    common::ingest(
        &s,
        &[serde_json::json!({
            "id": "e2e-churn",
            "platform": "twitter",
            "text": "I'm cancelling my subscription today, switching to a competitor. Done with this.",
            "author": {"id": "e2e", "handle": "e2e", "followers": 10},
            "created_at": chrono::Utc::now().to_rfc3339(),
            "product": "nimbus-e2e",
        })],
    )
    .await;
    let alert = common::until(&s, "/api/alerts?entity=product:nimbus-e2e", |v| {
        v["alerts"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let alert_id = alert["alerts"][0]["id"]
        .as_str()
        .expect("alert id")
        .to_string();
    b.eval("document.querySelector('nav button[data-tab=alerts]').click()")
        .await;
    let button = format!("document.querySelector('li[data-id=\"{alert_id}\"] button')");
    b.wait_for(
        &format!("{button} && {button}.textContent === 'Acknowledge'"),
        20,
    )
    .await;
    b.eval(&format!("{button}.click()")).await;
    common::until(&s, &format!("/api/alerts/{alert_id}"), |v| {
        v["state"] != "open"
    })
    .await;
    let (_, a) = common::call(&s, "GET", &format!("/api/alerts/{alert_id}"), None).await;
    assert_eq!(a["state"], "acknowledged", "{a}");
    b.screenshot(&shots.join("alerts.png")).await;

    // A dropped WebSocket reconnects and the feed goes on.
    b.eval("document.querySelector('nav button[data-tab=feed]').click(); ws.close()")
        .await;
    b.wait_for(
        "document.querySelector('#conn').textContent === 'live' && ws.readyState === 1",
        20,
    )
    .await;
    let top = b.wait_for(first, 20).await;
    b.wait_for(&format!("{first} !== {top}"), 20).await;

    // A phone-width window: one column, nothing wider than the screen.
    b.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    )
    .await;
    b.eval("document.querySelector('nav button[data-tab=warroom]').click()")
        .await;
    b.wait_for(
        "document.documentElement.scrollWidth <= window.innerWidth + 1 && document.querySelector('#panel-gauge').getBoundingClientRect().width > 300",
        10,
    )
    .await;
    b.screenshot(&shots.join("phone.png")).await;
    s.stop();
}
