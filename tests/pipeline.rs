//! Black-box tests of the whole pipeline: the real binary on port 0 with a
//! temporary data directory, driven over HTTP and a real WebSocket client.

mod common;

use common::{client, next_frame, Starling};
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use starling::nlp::Scorer;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TEXTS: &[&str] = &[
    "$SOL to the moon, I love this community 🚀",
    "I hate this #outage, cancelling my plan today",
    "Release notes for v2 are out #update",
    "not bad at all, the new router is great",
    "worst support ever, want a refund $ETH",
    "Anyone tried the app on Android?",
];

fn post(i: usize, now: chrono::DateTime<chrono::Utc>) -> Value {
    let age = if i.is_multiple_of(10) {
        chrono::Duration::hours(2)
    } else {
        chrono::Duration::milliseconds((i % 30) as i64 * 300)
    };
    let platform = ["twitter", "reddit", "bluesky"][i % 3];
    let geo = ["Paris", "Lagos", "Osaka", "Lima"][i % 4];
    let mut p = json!({
        "id": format!("t-{i}"),
        "platform": platform,
        "text": TEXTS[i % TEXTS.len()],
        "author": {"id": format!("u{}", i % 17), "handle": format!("user{}", i % 17), "followers": (i % 5) * 1000},
        "created_at": (now - age).to_rfc3339(),
        "engagement": {"likes": i % 7, "reposts": i % 3, "replies": 1},
        "geo": geo,
    });
    if i % 4 < 2 {
        let product = ["app", "router"][i % 2];
        p["product"] = json!(product);
    }
    p
}

async fn get(s: &Starling, path: &str) -> Value {
    let mut r = client().get(s.url(path)).send().await.expect("GET");
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json::<Value>().limit(16 << 20).await.expect("json")
}

async fn ingest(s: &Starling, body: impl Into<Vec<u8>>, content_type: &str) -> (u16, Value) {
    let mut r = client()
        .post(s.url("/api/ingest"))
        .insert_header(("content-type", content_type))
        .send_body(body.into())
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (
        status,
        r.json::<Value>().limit(16 << 20).await.expect("json body"),
    )
}

/// Posts a JSON array of posts.
async fn ingest_json(s: &Starling, posts: &[Value]) -> (u16, Value) {
    ingest(
        s,
        serde_json::to_string(posts).expect("json"),
        "application/json",
    )
    .await
}

/// Waits until every consumer has nothing pending or unacknowledged and the
/// overall volume is `want`.
async fn settle(s: &Starling, want: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let admin = get(s, "/api/admin/actors").await;
        let idle = admin["consumers"]
            .as_array()
            .expect("consumers")
            .iter()
            .all(|c| c["pending"] == 0 && c["ack_pending"] == 0);
        let overall = get(s, "/api/metrics/overall").await;
        if idle && overall["volume"] == want {
            return overall;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline did not settle at volume {want}: {overall}\n{admin}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Expected {
    volume: u64,
    sentiment_sum: f64,
    positive: u64,
    negative: u64,
    neutral: u64,
    platforms: HashMap<String, u64>,
    sol: u64,
}

fn expected(posts: &[Value]) -> Expected {
    // The default tier, as the pipeline runs it.
    let scorer = Scorer::new(starling::config::Tier::Fast).expect("fast model");
    let mut e = Expected {
        volume: 0,
        sentiment_sum: 0.0,
        positive: 0,
        negative: 0,
        neutral: 0,
        platforms: HashMap::new(),
        sol: 0,
    };
    for p in posts {
        let text = p["text"].as_str().expect("text");
        let s = scorer.score(text).sentiment;
        e.volume += 1;
        e.sentiment_sum += s.score;
        match s.label {
            starling::domain::SentimentLabel::Positive => e.positive += 1,
            starling::domain::SentimentLabel::Negative => e.negative += 1,
            starling::domain::SentimentLabel::Neutral => e.neutral += 1,
        }
        *e.platforms
            .entry(p["platform"].as_str().expect("platform").to_string())
            .or_default() += 1;
        if text.contains("$SOL") {
            e.sol += 1;
        }
    }
    e
}

fn check_overall(overall: &Value, e: &Expected) {
    assert_eq!(overall["volume"], e.volume, "{overall}");
    let sum = overall["sentiment_sum"].as_f64().expect("sentiment_sum");
    assert!(
        (sum - e.sentiment_sum).abs() < 1e-6,
        "sentiment sum {sum} != {}",
        e.sentiment_sum
    );
    assert_eq!(overall["positive"], e.positive);
    assert_eq!(overall["negative"], e.negative);
    assert_eq!(overall["neutral"], e.neutral);
    assert_eq!(overall["unique_authors"], 17);
}

#[actix_rt::test]
async fn counts_are_exact_over_http_and_websocket_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..240).map(|i| post(i, now)).collect();
    let e = expected(&posts);

    let s = Starling::start(dir.path(), &[]);
    assert_eq!(get(&s, "/readyz").await["status"], "ready");
    let (status, body) = ingest_json(&s, &posts).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 240);
    assert_eq!(body["rejected"], json!([]));
    let overall = settle(&s, e.volume).await;
    check_overall(&overall, &e);
    assert!(
        overall["latest"]["1h"]["volume"]
            .as_u64()
            .expect("latest 1h")
            > 0
    );

    let platforms = get(&s, "/api/metrics/platforms").await;
    let got: HashMap<String, u64> = platforms["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_string(),
                r["volume"].as_u64().expect("volume"),
            )
        })
        .collect();
    assert_eq!(got, e.platforms);
    let share: f64 = platforms["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|r| r["share_of_voice"].as_f64().expect("share"))
        .sum();
    assert!((share - 1.0).abs() < 1e-9);

    let projects = get(&s, "/api/entities/project?period=all&sort=volume").await;
    let sol = projects["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .find(|r| r["id"] == "SOL")
        .expect("SOL listed");
    assert_eq!(sol["volume"], e.sol);

    let from = (now - chrono::Duration::hours(3)).timestamp_millis();
    let to = (now + chrono::Duration::minutes(1)).to_rfc3339();
    let series = get(
        &s,
        &format!(
            "/api/entities/macro/all/series?resolution=1m&from={from}&to={}",
            urlencode(&to)
        ),
    )
    .await;
    let total: u64 = series["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["volume"].as_u64().expect("volume"))
        .sum();
    assert_eq!(total, e.volume);

    // A real WebSocket client: metrics:initial with the totals, then updates.
    let (_, mut ws) = client().ws(s.ws_url()).connect().await.expect("ws connect");
    let mut saw_initial = false;
    let mut saw_update = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(saw_initial && saw_update) && Instant::now() < deadline {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        let Ok(Some(Ok(awc::ws::Frame::Text(text)))) = frame else {
            continue;
        };
        let v: Value = serde_json::from_slice(&text).expect("json frame");
        match v["type"].as_str() {
            Some("metrics:initial") => {
                check_overall(&v["overall"], &e);
                saw_initial = true;
            }
            Some("metrics:update") => saw_update = true,
            other => panic!("unexpected frame {other:?}: {v}"),
        }
    }
    assert!(
        saw_initial && saw_update,
        "initial {saw_initial}, update {saw_update}"
    );

    // The same posts again: accepted, counted once.
    let (status, body) = ingest_json(&s, &posts).await;
    assert_eq!(status, 202);
    assert_eq!(body["duplicates"], 240);
    check_overall(&settle(&s, e.volume).await, &e);
    s.stop();

    // Restart on the same directory: nothing lost, nothing counted twice,
    // even for posts re-sent after the restart.
    let s = Starling::start(dir.path(), &[]);
    check_overall(&get(&s, "/api/metrics/overall").await, &e);
    let (status, _) = ingest_json(&s, &posts).await;
    assert_eq!(status, 202);
    check_overall(&settle(&s, e.volume).await, &e);
    let more: Vec<Value> = (240..300).map(|i| post(i, chrono::Utc::now())).collect();
    let ndjson: String = more.iter().map(|p| format!("{p}\n")).collect();
    let (status, body) = ingest(&s, ndjson, "application/x-ndjson").await;
    assert_eq!(status, 202, "{body}");
    let all: Vec<Value> = posts.iter().chain(more.iter()).cloned().collect();
    let e_all = expected(&all);
    check_overall(&settle(&s, e_all.volume).await, &e_all);
    s.stop();
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[actix_rt::test]
async fn bad_input_gets_clear_errors_and_valid_items_still_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Starling::start(
        dir.path(),
        &[
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/small-limits.toml"),
        ],
    );
    let now = chrono::Utc::now();

    let (status, body) = ingest(&s, "[{\"id\": ", "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "malformed_json");

    let (status, body) = ingest(&s, vec![b'[', 0xff, 0xfe, b']'], "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_utf8");

    let (status, body) = ingest(&s, "x".repeat(70_000), "application/json").await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");

    let mut future = post(1, now);
    future["created_at"] = json!("2999-01-01T00:00:00Z");
    let mut missing = post(2, now);
    missing.as_object_mut().expect("object").remove("text");
    let batch =
        json!([post(0, now), future, missing, post(3, now), {"id": "x", "platform": "twitter"}]);
    let (status, body) = ingest(&s, batch.to_string(), "application/json").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 2);
    let rejected = body["rejected"].as_array().expect("rejected");
    assert_eq!(
        rejected
            .iter()
            .map(|r| r["index"].as_u64().expect("index"))
            .collect::<Vec<_>>(),
        vec![1, 2, 4]
    );
    assert!(rejected[0]["error"]
        .as_str()
        .expect("error")
        .contains("future"));
    assert!(rejected[1]["error"]
        .as_str()
        .expect("error")
        .contains("text"));

    let mut lines = format!("{}\n", post(10, now));
    lines.push_str("{not json}\n");
    lines.push_str(&format!("{}\n", post(11, now)));
    let mut bytes = lines.into_bytes();
    bytes.extend_from_slice(&[0xff, b'\n']);
    let (status, body) = ingest(&s, bytes, "application/x-ndjson").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 2);
    let bad: Vec<u64> = body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| r["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(bad, vec![1, 3]);

    let (status, body) = ingest(&s, json!([{"id": ""}]).to_string(), "application/json").await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_items");

    for (path, code, status) in [
        ("/api/entities/planets", "not_found", 404),
        (
            "/api/entities/macro/all/series?resolution=5s",
            "invalid_resolution",
            400,
        ),
        (
            "/api/entities/macro/all/series?from=yesterday",
            "invalid_time",
            400,
        ),
        ("/api/entities/project?sort=loudness", "invalid_sort", 400),
        ("/nowhere", "not_found", 404),
    ] {
        let mut r = client().get(s.url(path)).send().await.expect("GET");
        assert_eq!(r.status().as_u16(), status, "{path}");
        let v: Value = r.json().await.expect("json error");
        assert_eq!(v["error"]["code"], code, "{path}: {v}");
    }

    // The four valid posts were all counted.
    settle(&s, 4).await;
    s.stop();
}

#[actix_rt::test]
async fn a_jsonl_replay_is_counted_and_bad_lines_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..50).map(|i| post(i, now)).collect();
    let mut file = String::new();
    for (i, p) in posts.iter().enumerate() {
        file.push_str(&format!("{p}\n"));
        if i == 10 {
            file.push_str("this line is not a post\n\n");
        }
    }
    // A repeated post in the file is counted once.
    file.push_str(&format!("{}\n", posts[3]));
    let path = dir.path().join("posts.jsonl");
    std::fs::write(&path, file).expect("write jsonl");
    let data = dir.path().join("data");
    let s = Starling::start(&data, &["--replay", path.to_str().expect("utf-8 path")]);
    let e = expected(&posts);
    check_overall(&settle(&s, e.volume).await, &e);
    let admin = get(&s, "/api/admin/actors").await;
    let replay = admin["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .find(|a| a["name"] == "connector-replay-0")
        .expect("replay actor listed");
    assert_eq!(replay["state"], "finished");
    let text = common::metrics(&s).await;
    assert!(text.contains("starling_connector_errors_total 1"), "{text}");
    // Requests are counted per route pattern, with a latency histogram.
    assert!(
        text.contains(r#"starling_http_requests_total{route="/api/metrics/overall",method="GET",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"starling_http_request_duration_seconds_count{route="/api/admin/actors"}"#),
        "{text}"
    );
    s.stop();
}

#[actix_rt::test]
async fn the_synthetic_stream_feeds_every_entity_kind_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Starling::start(dir.path(), &["--synthetic-rate", "300"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let kinds = [
        "user",
        "project",
        "topic",
        "narrative",
        "platform",
        "channel",
        "product",
        "geo",
        "kol",
    ];
    let mut missing: Vec<&str> = kinds.to_vec();
    while !missing.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no entities of kinds {missing:?} after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut still = Vec::new();
        for kind in missing {
            let list = get(&s, &format!("/api/entities/{kind}?period=all&limit=5")).await;
            if list["total"].as_u64().unwrap_or(0) == 0 {
                still.push(kind);
            }
        }
        missing = still;
    }
    let before = get(&s, "/api/metrics/overall").await["volume"]
        .as_u64()
        .expect("volume");
    assert!(before > 0);
    s.stop();
    // Everything produced before the stop was drained and is there after it.
    let s = Starling::start(dir.path(), &[]);
    let after = get(&s, "/api/metrics/overall").await;
    assert!(after["volume"].as_u64().expect("volume") >= before);
    let sum = after["positive"].as_u64().unwrap_or(0)
        + after["negative"].as_u64().unwrap_or(0)
        + after["neutral"].as_u64().unwrap_or(0);
    assert_eq!(sum, after["volume"].as_u64().expect("volume"));
    s.stop();
}

#[actix_rt::test]
async fn committed_windows_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..120).map(|i| post(i, now)).collect();
    let e = expected(&posts);
    let s = Starling::start(dir.path(), &[]);
    let (status, _) = ingest_json(&s, &posts).await;
    assert_eq!(status, 202);
    settle(&s, e.volume).await;
    // Everything is committed and acknowledged; now die without a drain.
    s.kill_9();
    let s = Starling::start(dir.path(), &[]);
    check_overall(&get(&s, "/api/metrics/overall").await, &e);
    // Posts re-sent after the crash are recognised and not counted again.
    let (status, _) = ingest_json(&s, &posts).await;
    assert_eq!(status, 202);
    check_overall(&settle(&s, e.volume).await, &e);
    s.stop();
}

#[actix_rt::test]
async fn over_jetstream_a_kill_9_mid_stream_loses_nothing_and_counts_nothing_twice() {
    let nats = common::nats::NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..1_200).map(|i| post(i, now)).collect();
    let e = expected(&posts);
    let s = Starling::start(dir.path(), &["--nats", &nats.url]);
    for chunk in posts.chunks(200) {
        let (status, body) = ingest_json(&s, chunk).await;
        assert_eq!(status, 202, "{body}");
    }
    // Accepted means stored in JetStream; kill the process while the
    // classifier and aggregators are still working through it.
    s.kill_9();
    let s = Starling::start(dir.path(), &["--nats", &nats.url]);
    check_overall(&settle(&s, e.volume).await, &e);
    // Re-sent posts are still recognised.
    let (status, _) = ingest_json(&s, &posts[..100]).await;
    assert_eq!(status, 202);
    check_overall(&settle(&s, e.volume).await, &e);
    s.stop();
}

#[actix_rt::test]
async fn over_jetstream_a_nats_restart_is_survived() {
    let mut nats = common::nats::NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..400).map(|i| post(i, now)).collect();
    let s = Starling::start(dir.path(), &["--nats", &nats.url]);
    let (status, _) = ingest_json(&s, &posts[..200]).await;
    assert_eq!(status, 202);
    nats.restart();
    let (status, body) = ingest_json(&s, &posts[200..]).await;
    assert_eq!(status, 202, "{body}");
    let e = expected(&posts);
    check_overall(&settle(&s, e.volume).await, &e);
    s.stop();
}

#[actix_rt::test]
async fn over_jetstream_two_classify_processes_share_the_work_and_survive_a_kill() {
    let nats = common::nats::NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let main = Starling::start(
        &dir.path().join("main"),
        &["--nats", &nats.url, "--role", "ingest,aggregate,web"],
    );
    let c1 = Starling::start(
        &dir.path().join("c1"),
        &["--nats", &nats.url, "--role", "classify"],
    );
    let c2 = Starling::start(
        &dir.path().join("c2"),
        &["--nats", &nats.url, "--role", "classify"],
    );
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..1_000).map(|i| post(i, now)).collect();
    let e = expected(&posts);
    let (status, _) = ingest_json(&main, &posts[..500]).await;
    assert_eq!(status, 202);
    // One classifier dies mid-stream: what it held is redelivered to the other.
    c1.kill_9();
    let (status, _) = ingest_json(&main, &posts[500..]).await;
    assert_eq!(status, 202);
    check_overall(&settle(&main, e.volume).await, &e);
    // A classify process serves health and metrics, not ingest or lookups.
    assert_eq!(get(&c2, "/healthz").await["status"], "ok");
    let r = client()
        .get(c2.url("/api/metrics/overall"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 404);
    c2.stop();
    main.stop();
}

#[actix_rt::test]
async fn posts_are_archived_paged_ranked_and_searchable_and_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..300).map(|i| post(i, now)).collect();
    let e = expected(&posts);
    let sol: Vec<&Value> = posts
        .iter()
        .filter(|p| p["text"].as_str().expect("text").contains("$SOL"))
        .collect();
    let s = Starling::start(dir.path(), &[]);
    let (status, _) = ingest_json(&s, &posts).await;
    assert_eq!(status, 202);
    settle(&s, e.volume).await;

    // Every $SOL post once, newest first, across cursor pages.
    let page_through = |s: &Starling| {
        let base = s.url("/api/entities/project/SOL/posts?limit=7");
        async move {
            let mut seen = Vec::new();
            let mut url = base.clone();
            loop {
                let mut r = client().get(&url).send().await.expect("GET");
                assert_eq!(r.status().as_u16(), 200);
                let page: Value = r.json().limit(16 << 20).await.expect("json");
                for p in page["posts"].as_array().expect("posts") {
                    seen.push((
                        p["post"]["created_at"].as_str().expect("time").to_string(),
                        p["post"]["id"].as_str().expect("id").to_string(),
                    ));
                }
                match page["next_cursor"].as_str() {
                    Some(c) => url = format!("{base}&cursor={}", urlencode(c)),
                    None => return seen,
                }
            }
        }
    };
    let check_pages = |seen: &Vec<(String, String)>| {
        let ids: std::collections::HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), sol.len(), "each $SOL post once");
        assert_eq!(seen.len(), sol.len());
        let times: Vec<chrono::DateTime<chrono::Utc>> = seen
            .iter()
            .map(|(t, _)| t.parse().expect("rfc3339"))
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    };
    check_pages(&page_through(&s).await);

    // The default (fast) tier fills every score.
    let one = get(&s, "/api/entities/project/SOL/posts?limit=1").await;
    let scores = &one["posts"][0]["scores"];
    assert!(
        scores["sentiment"]["probs"]["positive"].is_f64(),
        "{scores}"
    );
    assert!(scores["emotion"]["label"].is_string(), "{scores}");
    assert!(
        scores["toxicity"].is_f64() && scores["churn_risk"].is_f64(),
        "{scores}"
    );
    assert_eq!(scores["model"], "fast-linear-v1");

    // Top posts by engagement.
    let top = get(&s, "/api/entities/project/SOL/posts/top?limit=5").await;
    let engagement: Vec<u64> = top["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| {
            let en = &p["post"]["engagement"];
            en["likes"].as_u64().unwrap_or(0)
                + en["reposts"].as_u64().unwrap_or(0)
                + en["replies"].as_u64().unwrap_or(0)
        })
        .collect();
    let mut best: Vec<u64> = sol
        .iter()
        .map(|p| {
            let en = &p["engagement"];
            en["likes"].as_u64().unwrap_or(0)
                + en["reposts"].as_u64().unwrap_or(0)
                + en["replies"].as_u64().unwrap_or(0)
        })
        .collect();
    best.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(engagement, best[..5].to_vec());

    // Contributing authors: exact per-author counts.
    let authors = get(&s, "/api/entities/project/SOL/authors?limit=1000").await;
    let mut want: HashMap<String, u64> = HashMap::new();
    for p in &sol {
        *want
            .entry(p["author"]["id"].as_str().expect("author").to_string())
            .or_default() += 1;
    }
    let got: HashMap<String, u64> = authors["authors"]
        .as_array()
        .expect("authors")
        .iter()
        .map(|a| {
            (
                a["author_id"].as_str().expect("id").to_string(),
                a["posts"].as_u64().expect("posts"),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(authors["total_authors"], want.len() as u64);

    // Full-text search with filters.
    let refund = posts
        .iter()
        .filter(|p| p["text"].as_str().expect("text").contains("refund"))
        .count() as u64;
    let found = get(&s, "/api/search?q=refund&limit=100").await;
    assert_eq!(found["total"], refund, "{found}");
    let on_reddit = posts
        .iter()
        .filter(|p| {
            p["text"].as_str().expect("text").contains("refund") && p["platform"] == "reddit"
        })
        .count() as u64;
    let found = get(
        &s,
        "/api/search?q=refund&platform=reddit&entity=project:ETH&limit=100",
    )
    .await;
    assert_eq!(found["total"], on_reddit, "{found}");
    for (path, code) in [
        ("/api/search?q=%28unclosed", "invalid_search"),
        ("/api/search?q=refund&sentiment=angry", "invalid_sentiment"),
        ("/api/search?q=refund&entity=SOL", "invalid_entity"),
        (
            "/api/entities/project/SOL/posts?cursor=garbage",
            "invalid_cursor",
        ),
        ("/api/entities/project/SOL/posts?limit=0", "invalid_limit"),
        (
            "/api/entities/project/SOL/posts?period=1h&from=0",
            "invalid_range",
        ),
    ] {
        let mut r = client().get(s.url(path)).send().await.expect("GET");
        assert_eq!(r.status().as_u16(), 400, "{path}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }

    // The archive survives a kill -9, and re-sent posts are not duplicated.
    s.kill_9();
    let s = Starling::start(dir.path(), &[]);
    let (status, _) = ingest_json(&s, &posts).await;
    assert_eq!(status, 202);
    settle(&s, e.volume).await;
    check_pages(&page_through(&s).await);
    s.stop();
}

/// Per-entity volumes of a kind in one process (all time).
async fn volumes(s: &Starling, kind: &str) -> HashMap<String, u64> {
    let list = get(s, &format!("/api/entities/{kind}?period=all&limit=1000")).await;
    list["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| {
            let id = e["id"].as_str().expect("id").to_string();
            (id, e["volume"].as_u64().expect("volume"))
        })
        .collect()
}

/// Config files of a two-shard deployment: owning shard 0, shard 1, both.
fn shard_configs(dir: &std::path::Path) -> (String, String, String) {
    let config = |owned: &str| {
        let path = dir.join(format!("shards-{owned}.toml"));
        std::fs::write(
            &path,
            format!("[bus]\nshards = 2\n[aggregation]\nowned_shards = [{owned}]\n"),
        )
        .expect("write config");
        path.to_string_lossy().into_owned()
    };
    (config("0"), config("1"), config("0, 1"))
}

#[actix_rt::test]
async fn over_jetstream_two_aggregate_processes_split_entities_by_shard_and_survive_a_kill() {
    let nats = common::nats::NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (c0, c1, all) = shard_configs(dir.path());
    let front = Starling::start(
        &dir.path().join("front"),
        &[
            "--nats",
            &nats.url,
            "--role",
            "ingest,classify",
            "--config",
            &all,
        ],
    );
    let agg = |name: &str, cfg: &str| {
        Starling::start(
            &dir.path().join(name),
            &[
                "--nats",
                &nats.url,
                "--role",
                "aggregate,web",
                "--config",
                cfg,
            ],
        )
    };
    let a0 = agg("a0", &c0);
    let a1 = agg("a1", &c1);
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..1_000).map(|i| post(i, now)).collect();
    let e = expected(&posts);
    let (status, _) = ingest_json(&front, &posts[..500]).await;
    assert_eq!(status, 202);
    // The owner of shard 1 dies mid-stream and comes back on its own store.
    a1.kill_9();
    let (status, _) = ingest_json(&front, &posts[500..]).await;
    assert_eq!(status, 202);
    let a1 = agg("a1", &c1);

    let deadline = Instant::now() + Duration::from_secs(60);
    let (authors0, authors1) = loop {
        let admin = get(&a0, "/api/admin/actors").await;
        let idle = admin["consumers"]
            .as_array()
            .expect("consumers")
            .iter()
            .all(|c| c["pending"] == 0 && c["ack_pending"] == 0);
        let (v0, v1) = (volumes(&a0, "user").await, volumes(&a1, "user").await);
        let total: u64 = v0.values().chain(v1.values()).sum();
        if idle && total == e.volume {
            break (v0, v1);
        }
        assert!(
            Instant::now() < deadline,
            "shards did not settle: {total} of {} author posts\n{admin}",
            e.volume
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Each author is counted by one process only, and both have some.
    assert!(!authors0.is_empty() && !authors1.is_empty());
    assert!(authors0.keys().all(|a| !authors1.contains_key(a)));
    assert_eq!(authors0.len() + authors1.len(), 17);
    // The one `macro` entity lives in one shard, with the exact totals.
    let (o0, o1) = (
        get(&a0, "/api/metrics/overall").await,
        get(&a1, "/api/metrics/overall").await,
    );
    let (owner, other) = if o0["volume"] == 0 {
        (&o1, &o0)
    } else {
        (&o0, &o1)
    };
    check_overall(owner, &e);
    assert_eq!(other["volume"], 0);
    // Every platform's count is exact, from whichever process owns it.
    let (p0, p1) = (
        volumes(&a0, "platform").await,
        volumes(&a1, "platform").await,
    );
    let mut platforms = p0.clone();
    for (k, v) in p1 {
        assert!(platforms.insert(k, v).is_none(), "a platform in two shards");
    }
    assert_eq!(platforms, e.platforms);
    a0.stop();
    a1.stop();
    front.stop();
}

#[test]
fn a_role_split_without_nats_is_refused_with_the_reason() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_starling"))
        .args(["config", "--role", "classify"])
        .output()
        .expect("run starling config");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--nats"), "{err}");
}

#[actix_rt::test]
async fn over_jetstream_poison_messages_are_dead_lettered_listed_and_replayable() {
    let nats = common::nats::NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Starling::start(dir.path(), &["--nats", &nats.url]);
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..100).map(|i| post(i, now)).collect();
    let e = expected(&posts);
    let (status, _) = ingest_json(&s, &posts[..50]).await;
    assert_eq!(status, 202);
    // Another producer puts something that is not a post on the raw subject.
    let client = async_nats::connect(&nats.url).await.expect("nats client");
    let js = async_nats::jetstream::new(client);
    js.publish("starling.posts.raw", "{\"not\": \"a post\"}".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let (status, _) = ingest_json(&s, &posts[50..]).await;
    assert_eq!(status, 202);
    // The poison never blocks the stream: every valid post is counted.
    check_overall(&settle(&s, e.volume).await, &e);
    let dlq = get(&s, "/api/admin/dlq").await;
    let letters = dlq["dead_letters"].as_array().expect("dead_letters");
    assert_eq!(letters.len(), 1, "{dlq}");
    assert_eq!(letters[0]["durable"], "classify");
    assert!(letters[0]["reason"]
        .as_str()
        .expect("reason")
        .contains("not a post"));
    // Replayed (still broken, so it comes back, with nothing else disturbed).
    let mut r = client_post(&s, "/api/admin/dlq/replay").await;
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["replayed"], 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = get(&s, "/api/admin/dlq").await;
        if again["dead_letters"].as_array().map(Vec::len) == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replayed poison did not return to the DLQ: {again}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check_overall(&settle(&s, e.volume).await, &e);
    s.stop();
}

async fn client_post(
    s: &Starling,
    path: &str,
) -> awc::ClientResponse<
    impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>>,
> {
    client().post(s.url(path)).send().await.expect("POST")
}

async fn send_text<S>(ws: &mut S, text: &str)
where
    S: futures_util::Sink<awc::ws::Message, Error = awc::error::WsProtocolError> + Unpin,
{
    use futures_util::SinkExt as _;
    ws.send(awc::ws::Message::Text(text.to_string().into()))
        .await
        .expect("send frame");
}

#[actix_rt::test]
async fn websocket_subscriptions_filter_the_live_feed_and_a_stalled_client_stalls_no_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Starling::start(dir.path(), &[]);
    // A client that subscribes to everything and then never reads.
    let (_, mut stalled) = client().ws(s.ws_url()).connect().await.expect("ws");
    send_text(&mut stalled, r#"{"type":"subscribe","channel":"messages"}"#).await;

    let (_, mut ws) = client().ws(s.ws_url()).connect().await.expect("ws");
    next_frame(&mut ws, |v| v["type"] == "metrics:initial").await;
    send_text(
        &mut ws,
        r#"{"type":"subscribe","channel":"messages","platform":"reddit"}"#,
    )
    .await;
    let ok = next_frame(&mut ws, |v| v["type"] == "subscribed").await;
    assert_eq!(
        (ok["subscription"].as_u64(), ok["channel"].as_str()),
        (Some(1), Some("messages"))
    );

    for (bad, code) in [
        (
            r#"{"type":"subscribe","channel":"weather"}"#,
            "unknown_channel",
        ),
        (
            r#"{"type":"subscribe","channel":"messages","entity":"SOL"}"#,
            "invalid_filter",
        ),
        ("not json", "malformed_json"),
        (r#"{"type":"dance"}"#, "invalid_request"),
        (
            r#"{"type":"unsubscribe","subscription":42}"#,
            "unknown_subscription",
        ),
    ] {
        send_text(&mut ws, bad).await;
        let err = next_frame(&mut ws, |v| v["type"] == "error").await;
        assert_eq!(err["error"]["code"], code, "{bad}");
    }

    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..300).map(|i| post(i, now)).collect();
    let reddit: std::collections::HashSet<String> = posts
        .iter()
        .filter(|p| p["platform"] == "reddit")
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect();
    let (status, _) = ingest_json(&s, &posts).await;
    assert_eq!(status, 202);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < reddit.len() {
        let m = next_frame(&mut ws, |v| v["type"] == "message:new").await;
        assert_eq!(m["post"]["platform"], "reddit");
        assert_eq!(m["subscription"], 1);
        assert!(m["scores"]["sentiment"]["label"].is_string());
        seen.insert(m["post"]["id"].as_str().expect("id").to_string());
    }
    assert_eq!(seen, reddit);

    // A client that reads gets a whole burst (900 posts in one request,
    // delivered to the hub in batches of up to 512), none dropped.
    send_text(&mut ws, r#"{"type":"subscribe","channel":"messages"}"#).await;
    let all = next_frame(&mut ws, |v| v["type"] == "subscribed").await["subscription"].clone();
    let burst: Vec<Value> = (0..900)
        .map(|i| {
            let mut p = post(i, now);
            p["id"] = json!(format!("burst-{i}"));
            p
        })
        .collect();
    let (status, _) = ingest_json(&s, &burst).await;
    assert_eq!(status, 202);
    let mut got = std::collections::HashSet::new();
    while got.len() < burst.len() {
        let m = next_frame(&mut ws, |v| v["type"] == "message:new").await;
        let id = m["post"]["id"].as_str().expect("id");
        assert!(id.starts_with("burst-"), "{id}");
        got.insert(id.to_string());
    }
    send_text(
        &mut ws,
        &format!(r#"{{"type":"unsubscribe","subscription":{all}}}"#),
    )
    .await;
    next_frame(&mut ws, |v| v["type"] == "unsubscribed").await;

    send_text(&mut ws, r#"{"type":"unsubscribe","subscription":1}"#).await;
    let done = next_frame(&mut ws, |v| v["type"] == "unsubscribed").await;
    assert_eq!(done["subscription"], 1);
    send_text(&mut ws, r#"{"type":"ping"}"#).await;
    next_frame(&mut ws, |v| v["type"] == "pong").await;
    drop((stalled, ws));
    s.stop();
}

#[actix_rt::test]
async fn a_listing_answer_is_reused_for_the_same_query_within_listing_cache_ms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("cache.toml");
    std::fs::write(&cfg, "[http]\nlisting_cache_ms = 600000\n").expect("config");
    let s = Starling::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let now = chrono::Utc::now();
    let posts: Vec<Value> = (0..60).map(|i| post(i, now)).collect();
    let (status, _) = ingest_json(&s, &posts[..30]).await;
    assert_eq!(status, 202);
    settle(&s, 30).await;
    let first = get(&s, "/api/metrics/platforms").await;
    let (status, _) = ingest_json(&s, &posts[30..]).await;
    assert_eq!(status, 202);
    settle(&s, 60).await;
    // The same query within the reuse window: the same answer.
    assert_eq!(get(&s, "/api/metrics/platforms").await, first);
    // Another query is computed afresh and sees every post.
    let fresh = get(&s, "/api/metrics/platforms?limit=999").await;
    let total: u64 = fresh["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| e["volume"].as_u64().expect("volume"))
        .sum();
    assert_eq!(total, 60);
    s.stop();
}

/// Over JetStream each aggregating process has a live-feed consumer of its
/// own: the WebSocket clients of every process see every post, not a share.
#[actix_rt::test]
async fn over_jetstream_every_process_pushes_every_post_to_its_websocket_clients() {
    let nats = common::nats::NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (c0, c1, all) = shard_configs(dir.path());
    let start = |name: &str, roles: &str, cfg: &str| {
        Starling::start(
            &dir.path().join(name),
            &["--nats", &nats.url, "--role", roles, "--config", cfg],
        )
    };
    let front = start("front", "ingest,classify", &all);
    let (a0, a1) = (
        start("a0", "aggregate,web", &c0),
        start("a1", "aggregate,web", &c1),
    );
    let mut clients = Vec::new();
    for s in [&a0, &a1] {
        let (_, mut ws) = client().ws(s.ws_url()).connect().await.expect("ws");
        send_text(&mut ws, r#"{"type":"subscribe","channel":"messages"}"#).await;
        next_frame(&mut ws, |v| v["type"] == "subscribed").await;
        clients.push(ws);
    }
    let now = chrono::Utc::now();
    // Until both feeds run: a probe post reaches both clients.
    for ws in &mut clients {
        let mut n = 0;
        loop {
            let mut probe = post(n, now);
            probe["id"] = json!(format!("probe-{n}"));
            let (status, _) = ingest_json(&front, &[probe]).await;
            assert_eq!(status, 202);
            n += 1;
            let seen = tokio::time::timeout(
                Duration::from_secs(3),
                next_frame(ws, |v| v["type"] == "message:new"),
            )
            .await;
            if seen.is_ok() {
                break;
            }
            assert!(n < 20, "the live feed never started");
        }
    }
    let posts: Vec<Value> = (0..200).map(|i| post(i, now)).collect();
    let (status, _) = ingest_json(&front, &posts).await;
    assert_eq!(status, 202);
    for ws in &mut clients {
        let mut got = std::collections::HashSet::new();
        while got.len() < posts.len() {
            let m = next_frame(ws, |v| v["type"] == "message:new").await;
            let id = m["post"]["id"].as_str().expect("id");
            if id.starts_with("t-") {
                got.insert(id.to_string());
            }
        }
        assert_eq!(got.len(), 200, "every post on every process");
    }
    front.stop();
    a0.stop();
    a1.stop();
}
