//! The JSON text of the WebSocket frames the hub's events become, in one
//! place (the session's own replies — `subscribed`, `error`, … — stay with
//! the session). `message:new` and `metrics:update` are serialised straight
//! from borrowed data (no intermediate `serde_json::Value` tree):
//! `message:new` is built once per post and session, so it is on the hot
//! path of the live feed.

use crate::actors::hub::WindowUpdate;
use crate::alerts::model::AlertEvent;
use crate::domain::{EnrichedPost, EntityRef, Post, Scores};
use crate::summary::model::Summary;
use serde::Serialize;
use serde_json::json;

#[derive(Serialize)]
struct MessageNew<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    subscription: u32,
    post: &'a Post,
    scores: &'a Scores,
    entities: &'a [EntityRef],
}

#[derive(Serialize)]
struct MetricsUpdate<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    subscription: u32,
    at_ms: i64,
    windows: &'a [&'a WindowUpdate],
}

/// Serialises a frame; these types have only string map keys, so it
/// cannot fail.
fn text<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).expect("frames have string keys only")
}

/// `message:new`: a scored post for subscription `subscription`.
pub fn message_new(subscription: u32, post: &EnrichedPost) -> String {
    text(&MessageNew {
        kind: "message:new",
        subscription,
        post: &post.post,
        scores: &post.scores,
        entities: &post.entities,
    })
}

/// `metrics:update`: the windows of subscription `subscription` that
/// changed before the hub's tick at `at_ms`.
pub fn metrics_update(subscription: u32, at_ms: i64, windows: &[&WindowUpdate]) -> String {
    text(&MetricsUpdate {
        kind: "metrics:update",
        subscription,
        at_ms,
        windows,
    })
}

/// `alert:<kind>`: an alert event for subscription `subscription`.
pub fn alert(subscription: u32, e: &AlertEvent) -> String {
    json!({"type": format!("alert:{}", e.alert.kind.as_str()), "subscription": subscription,
           "event": e.event, "seq": e.seq, "alert": e.alert})
    .to_string()
}

/// `summary:update`: a new entity summary for subscription `subscription`.
pub fn summary_update(subscription: u32, summary: &Summary) -> String {
    json!({"type": "summary:update", "subscription": subscription, "summary": summary}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;
    use serde_json::{json, Value};

    #[test]
    fn message_new_has_the_post_its_scores_and_entities() {
        let p = fixtures::post("p1", "hello $BTC");
        let v: Value = serde_json::from_str(&message_new(3, &p)).expect("JSON");
        // The same document the frame was built with before (json! over the parts).
        let expected = json!({"type": "message:new", "subscription": 3, "post": p.post,
            "scores": p.scores, "entities": p.entities});
        assert_eq!(v, expected);
    }
}
