//! Black-box tests of entity summaries over the real binary (no model
//! configured, so summaries are extractive): posts sent to `POST
//! /api/ingest` are summarised on schedule and on demand, the summary is
//! stored, served by `GET …/summary` and with the entity, pushed as
//! `summary:update` on the WebSocket, and on-demand requests are limited.

mod common;

use common::{call, client, ingest, next_frame, until, Starling};
use futures_util::SinkExt as _;
use serde_json::{json, Value};

const PRAISE: &str = "The new $SOL wallet is fantastic, swaps settle in a second!";
const COMPLAINT: &str =
    "Fees on $SOL doubled since the upgrade and my swaps keep failing. Terrible week.";

fn post(id: &str, text: &str, likes: u64) -> Value {
    json!({
        "id": id,
        "platform": "twitter",
        "text": text,
        "author": {"id": format!("author-{id}"), "handle": format!("h{id}"), "followers": 10},
        "created_at": chrono::Utc::now().to_rfc3339(),
        "engagement": {"likes": likes},
    })
}

fn window_posts() -> Vec<Value> {
    let mut posts = vec![
        post("praise", PRAISE, 900),
        post("complaint", COMPLAINT, 800),
    ];
    for i in 0..10 {
        posts.push(post(
            &format!("n{i}"),
            &format!("Swaps failing again on $SOL today, fees through the roof ({i})"),
            10 + i,
        ));
    }
    posts
}

#[actix_rt::test]
async fn summaries_are_scheduled_requested_stored_served_and_pushed() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Starling::start_with_env(
        dir.path(),
        &[],
        &[
            ("STARLING_SUMMARIES__INTERVAL_S", "1"),
            ("STARLING_SUMMARIES__KINDS", r#"["project"]"#),
            ("STARLING_SUMMARIES__TOP_N", "1"),
            ("STARLING_SUMMARIES__REQUESTS_PER_MINUTE", "2"),
        ],
    );
    let (_, mut ws) = client().ws(s.ws_url()).connect().await.expect("ws");
    ws.send(awc::ws::Message::Text(
        r#"{"type":"subscribe","channel":"summaries","entity":"project:SOL"}"#.into(),
    ))
    .await
    .expect("subscribe");
    let ack = next_frame(&mut ws, |v| {
        v["type"] == "subscribed" || v["type"] == "error"
    })
    .await;
    assert_eq!(ack["channel"], "summaries", "{ack}");

    let (status, body) = call(&s, "GET", "/api/entities/project/SOL/summary", None).await;
    assert_eq!(status, 404, "{body}");
    ingest(&s, &window_posts()).await;
    until(&s, "/api/entities/project/SOL/posts?limit=50", |b| {
        b["posts"].as_array().is_some_and(|p| p.len() == 12)
    })
    .await;

    // The scheduled round picks SOL (the only project) and pushes it.
    let frame = next_frame(&mut ws, |v| {
        v["type"] == "summary:update" && v["summary"]["numbers"]["volume"] == 12
    })
    .await;
    let pushed = &frame["summary"];
    assert_eq!(pushed["entity"], json!({"kind": "project", "id": "SOL"}));
    assert_eq!(pushed["method"], "extractive");
    assert!(pushed.get("fallback_reason").is_none(), "{pushed}");
    assert_eq!(pushed["prompt_version"], 1);
    let text = pushed["text"].as_str().expect("text");
    assert!(
        text.contains("Praise: “The new $SOL wallet is fantastic"),
        "{text}"
    );
    assert!(text.contains("Complaint: “Fees on $SOL doubled"), "{text}");
    assert!(text.contains("12 posts in the last hour"), "{text}");
    assert_eq!(pushed["top_praise"]["post_id"], "praise");
    assert_eq!(pushed["top_complaint"]["post_id"], "complaint");
    assert_eq!(
        pushed["to_ms"].as_i64().expect("to") - pushed["from_ms"].as_i64().expect("from"),
        3_600_000
    );

    // Stored and served, also with the entity.
    let latest = until(&s, "/api/entities/project/SOL/summary", |b| {
        b["numbers"]["volume"] == 12
    })
    .await;
    assert_eq!(latest["text"], pushed["text"]);
    let (_, entity) = call(&s, "GET", "/api/entities/project/SOL", None).await;
    assert_eq!(entity["summary"]["numbers"]["volume"], 12, "{entity}");
    let path = format!(
        "/api/entities/project/SOL/summary?from={}&to={}",
        latest["from_ms"], latest["to_ms"]
    );
    let (status, within) = call(&s, "GET", &path, None).await;
    assert_eq!(status, 200, "{within}");
    assert_eq!(within["from_ms"], latest["from_ms"]);
    let (status, _) = call(
        &s,
        "GET",
        "/api/entities/project/SOL/summary?from=0&to=1000",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // On demand: a window of eleven whole minutes, written now.
    let now = chrono::Utc::now().timestamp_millis();
    let minute = now - now % 60_000;
    let path = format!(
        "/api/entities/project/SOL/summary?from={}&to={}",
        minute - 600_000,
        minute + 60_000
    );
    let (status, fresh) = call(&s, "POST", &path, None).await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh["numbers"]["volume"], 12, "{fresh}");
    assert!(
        fresh["text"]
            .as_str()
            .expect("text")
            .contains("12 posts in the last 11 minutes"),
        "{fresh}"
    );
    let ids: Vec<&str> = fresh["post_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ids.contains(&"praise") && ids.contains(&"complaint"),
        "{ids:?}"
    );
    // Near-duplicates of the complaint theme are quoted once, not ten times.
    assert!(ids.len() < 12, "{ids:?}");

    // Bad input, unknown entities, and the per-caller limit (2 a minute).
    let (status, body) = call(
        &s,
        "POST",
        "/api/entities/project/SOL/summary?from=10&to=5",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(&s, "POST", "/api/entities/project/NOPE/summary", None).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(&s, "POST", "/api/entities/project/SOL/summary", None).await;
    assert_eq!(status, 429, "{body}");
    let (status, _) = call(&s, "POST", "/api/entities/nonsense/SOL/summary", None).await;
    assert_eq!(status, 404);
    s.stop();
}

#[actix_rt::test]
async fn summaries_can_be_switched_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Starling::start_with_env(dir.path(), &[], &[("STARLING_SUMMARIES__ENABLED", "false")]);
    ingest(&s, &window_posts()).await;
    let (status, body) = call(&s, "POST", "/api/entities/project/SOL/summary", None).await;
    assert_eq!(status, 503, "{body}");
    s.stop();
}
