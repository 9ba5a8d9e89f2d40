//! Black-box tests of the alert engine over the real binary: churn posts
//! sent to `POST /api/ingest` raise a churn alert that is pushed on the
//! WebSocket alerts channel, listed, acknowledged and resolved over REST;
//! custom rules are created, evaluated and deleted over the API.

mod common;

use common::{call, client, ingest, next_frame, until, Starling};
use futures_util::SinkExt as _;
use serde_json::{json, Value};

fn post(id: &str, text: &str, product: Option<&str>) -> Value {
    let mut p = json!({
        "id": id,
        "platform": "twitter",
        "text": text,
        "author": {"id": format!("author-{id}"), "handle": format!("h{id}"), "followers": 10},
        "created_at": chrono::Utc::now().to_rfc3339(),
    });
    if let Some(product) = product {
        p["product"] = json!(product);
    }
    p
}

#[actix_rt::test]
async fn a_churn_post_is_pushed_listed_acknowledged_and_resolved() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Starling::start(dir.path(), &[]);
    let (_, mut ws) = client().ws(s.ws_url()).connect().await.expect("ws");
    ws.send(awc::ws::Message::Text(
        r#"{"type":"subscribe","channel":"alerts","alert_kinds":["churn"],"entity":"product:nimbus-plus"}"#
            .into(),
    ))
    .await
    .expect("subscribe");
    let ack = next_frame(&mut ws, |v| {
        v["type"] == "subscribed" || v["type"] == "error"
    })
    .await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(ack["channel"], "alerts", "{ack}");

    ingest(
        &s,
        &[
            post(
                "c1",
                "I'm cancelling my subscription today, switching to a competitor. Done with this.",
                Some("nimbus-plus"),
            ),
            post(
                "h1",
                "Loving the new dashboard, great work team",
                Some("nimbus-plus"),
            ),
        ],
    )
    .await;

    // Pushed as alert:churn, with the post as evidence.
    let frame = next_frame(&mut ws, |v| v["type"] == "alert:churn").await;
    assert_eq!(frame["event"], "raised", "{frame}");
    let alert = &frame["alert"];
    assert_eq!(
        alert["entity"],
        json!({"kind": "product", "id": "nimbus-plus"})
    );
    assert_eq!(alert["state"], "open");
    let sev = alert["severity"].as_u64().expect("severity");
    assert!((1..=10).contains(&sev), "{alert}");
    assert_eq!(alert["evidence"]["posts"][0]["id"], "c1", "{alert}");
    let id = alert["id"].as_str().expect("id").to_string();

    // Listed, filtered and fetched.
    let (_, page) = call(&s, "GET", "/api/alerts?kind=churn&state=open", None).await;
    assert_eq!(page["alerts"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["alerts"][0]["id"], id.as_str());
    let (_, none) = call(&s, "GET", "/api/alerts?kind=volume_spike", None).await;
    assert_eq!(none["alerts"], json!([]), "{none}");
    let (status, body) = call(&s, "GET", "/api/alerts?kind=weather", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_filter"))
    );
    let (status, one) = call(&s, "GET", &format!("/api/alerts/{id}"), None).await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())));
    let (status, _) = call(&s, "GET", "/api/alerts/al_nope", None).await;
    assert_eq!(status, 404);

    // Acknowledged, then resolved by hand; each change is pushed.
    let (status, acked) = call(&s, "POST", &format!("/api/alerts/{id}/ack"), None).await;
    assert_eq!(
        (status, acked["state"].as_str()),
        (200, Some("acknowledged")),
        "{acked}"
    );
    let frame = next_frame(&mut ws, |v| v["event"] == "acknowledged").await;
    assert_eq!(frame["alert"]["id"], id.as_str());
    let (status, done) = call(&s, "POST", &format!("/api/alerts/{id}/resolve"), None).await;
    assert_eq!(
        (status, done["state"].as_str()),
        (200, Some("resolved")),
        "{done}"
    );
    assert_eq!(done["resolved_by"], "user");
    let frame = next_frame(&mut ws, |v| v["event"] == "resolved").await;
    assert_eq!(frame["alert"]["id"], id.as_str());
    let (status, again) = call(&s, "POST", &format!("/api/alerts/{id}/resolve"), None).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (422, Some("alert_resolved"))
    );
    let (status, _) = call(&s, "POST", "/api/alerts/al_nope/ack", None).await;
    assert_eq!(status, 404);

    // The next churn post opens a new alert; the resolved one is kept.
    ingest(
        &s,
        &[post(
            "c2",
            "cancel my account, I want a refund",
            Some("nimbus-plus"),
        )],
    )
    .await;
    let page = until(&s, "/api/alerts?kind=churn", |b| {
        b["alerts"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    assert_eq!(page["alerts"][1]["state"], "resolved", "{page}");
    s.stop();

    // Alerts survive a restart.
    let s = Starling::start(dir.path(), &[]);
    let (_, page) = call(&s, "GET", "/api/alerts?kind=churn", None).await;
    assert_eq!(page["alerts"].as_array().map(Vec::len), Some(2), "{page}");
    s.stop();
}

#[actix_rt::test]
async fn custom_rules_are_created_evaluated_and_deleted_over_the_api() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Starling::start_with_env(
        dir.path(),
        &[],
        &[
            ("STARLING_ALERTS__BUCKET_S", "1"),
            ("STARLING_ALERTS__LATENESS_S", "1"),
            ("STARLING_ALERTS__CLEAR_BUCKETS", "2"),
        ],
    );
    let rule = json!({
        "name": "busy market",
        "metric": "volume",
        "entity": {"kind": "macro", "id": "all"},
        "comparison": "ge",
        "threshold": 3,
        "window_s": 2,
        "severity": 8
    });
    let (status, created) = call(&s, "POST", "/api/alerts/rules", Some(rule.clone())).await;
    assert_eq!(status, 201, "{created}");
    let rule_id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["cooldown_s"], 600, "defaults filled in: {created}");
    let (_, list) = call(&s, "GET", "/api/alerts/rules", None).await;
    assert_eq!(list["rules"][0]["id"], rule_id.as_str(), "{list}");

    // Refused: a window that is not whole buckets, an unwatched kind, junk.
    let mut bad = rule.clone();
    bad["window_s"] = json!(0);
    let (status, body) = call(&s, "POST", "/api/alerts/rules", Some(bad)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_rule")),
        "{body}"
    );
    let mut bad = rule.clone();
    bad["entity"] = json!({"kind": "user"});
    let (status, body) = call(&s, "POST", "/api/alerts/rules", Some(bad)).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = call(&s, "POST", "/api/alerts/rules", Some(json!({"name": "x"}))).await;
    assert_eq!(status, 400);

    // Three posts in the window: the rule fires with its fixed severity.
    ingest(
        &s,
        &(0..4)
            .map(|i| post(&format!("v{i}"), "just a post", None))
            .collect::<Vec<_>>(),
    )
    .await;
    let page = until(&s, "/api/alerts?kind=custom", |b| {
        b["alerts"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let alert = &page["alerts"][0];
    assert_eq!(alert["rule_id"], rule_id.as_str(), "{alert}");
    assert_eq!(alert["severity"], 8);
    assert_eq!(alert["entity"], json!({"kind": "macro", "id": "all"}));
    let alert_id = alert["id"].as_str().expect("id").to_string();

    // Quiet again: the condition clears and the alert resolves by itself.
    until(&s, &format!("/api/alerts/{alert_id}"), |a| {
        a["state"] == "resolved"
    })
    .await;
    let (_, a) = call(&s, "GET", &format!("/api/alerts/{alert_id}"), None).await;
    assert_eq!(a["resolved_by"], "condition", "{a}");

    let (status, _) = call(&s, "DELETE", &format!("/api/alerts/rules/{rule_id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&s, "DELETE", &format!("/api/alerts/rules/{rule_id}"), None).await;
    assert_eq!(status, 404);
    s.stop();
}
