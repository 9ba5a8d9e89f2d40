//! `GET /ws`: the live WebSocket feed. Each connection is a [`WsSession`]
//! actor; actix-ws is the transport.
//!
//! On connect the session sends `metrics:initial` (the overall totals and
//! latest windows) and joins the hub. It starts with subscription 0 (metrics
//! of every kind) and takes `subscribe` / `unsubscribe` requests (see
//! [`super::subscriptions`]): per subscription, `metrics:update` once a
//! second with the matching windows, and `message:new` for each matching
//! scored post. Bad requests get an `error` frame with a code.
//!
//! Owns: its subscriptions and outgoing queue. Mailbox: bounded ([`MAILBOX`]);
//! the hub pushes with `try_send`. The outgoing queue holds at most
//! `http.ws_queue_len` frames: when a client reads too slowly the oldest
//! frames are dropped and counted, and a client that keeps losing frames for
//! `http.ws_slow_client_grace_s` (its queue never drains below half in that
//! time) is told why and disconnected, so one slow client never slows the
//! hub or anyone else, while a fast client that meets a burst larger than
//! its queue only loses the overflow. The server pings every
//! [`HEARTBEAT`]; a client silent for `http.ws_client_timeout_s` is
//! disconnected. Not restarted (a client reconnects).

use super::error::ApiError;
use super::subscriptions::{Request, Subscription};
use super::AppState;
use crate::actors::hub::{Hub, HubEvent, Join, Leave, Push, WantsMessages};
use crate::actors::supervisor::Slot;
use crate::telemetry::metrics;
use actix::prelude::*;
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Session mailbox capacity.
pub const MAILBOX: usize = 256;
/// Ping interval.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A WebSocket session.
pub struct WsSession {
    id: u64,
    session: Option<Session>,
    hub: Slot<Hub>,
    joined: Option<Addr<Hub>>,
    subscriptions: BTreeMap<u32, Subscription>,
    next_subscription: u32,
    max_subscriptions: usize,
    queue: VecDeque<String>,
    queue_len: usize,
    /// Since when frames have been dropped without the queue draining
    /// below half.
    dropping_since: Option<Instant>,
    slow_grace: Duration,
    sending: bool,
    last_heard: Instant,
    timeout: Duration,
    /// Frees this connection's place in its key's count when the session ends.
    _permit: Option<Permit>,
}

/// Open WebSocket connections per API key, bounded by
/// `http.ws_max_connections_per_key`.
#[derive(Debug, Default, Clone)]
pub struct Connections {
    open: std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<String, usize>>>,
}

impl Connections {
    /// Takes a place for `who` if it holds fewer than `max`.
    pub fn acquire(&self, who: &str, max: usize) -> Option<Permit> {
        let mut open = self.open.lock();
        let n = open.entry(who.to_string()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Permit {
            connections: self.clone(),
            who: who.to_string(),
        })
    }
}

/// One open connection's place; released on drop.
#[derive(Debug)]
pub struct Permit {
    connections: Connections,
    who: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock();
        if let Some(n) = open.get_mut(&self.who) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.who);
            }
        }
    }
}

impl WsSession {
    fn enqueue(&mut self, frame: String, ctx: &mut Context<Self>) {
        if self.session.is_none() {
            return; // closing: nothing more is sent or counted
        }
        if self.queue.len() >= self.queue_len {
            self.queue.pop_front();
            metrics::HUB_EVENTS_DROPPED.inc();
            self.dropping_since.get_or_insert_with(Instant::now);
            if self.too_slow(ctx) {
                return;
            }
        }
        self.queue.push_back(frame);
        self.pump(ctx);
    }

    /// Closes the connection if the client has been losing frames for longer
    /// than the grace; returns whether it did.
    fn too_slow(&mut self, ctx: &mut Context<Self>) -> bool {
        let Some(since) = self.dropping_since else {
            return false;
        };
        if since.elapsed() < self.slow_grace {
            return false;
        }
        metrics::HUB_CLIENTS_DISCONNECTED_SLOW.inc();
        tracing::warn!(
            session = self.id,
            "disconnecting a WebSocket client that stays too slow"
        );
        self.close(
            ctx,
            CloseCode::Policy,
            "too slow: the client did not keep up with the feed",
        );
        true
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.sending {
            return;
        }
        let (Some(frame), Some(session)) = (self.queue.pop_front(), self.session.clone()) else {
            return;
        };
        self.sending = true;
        let mut session = session;
        ctx.spawn(
            async move { session.text(frame).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    act.sending = false;
                    if act.queue.len() < act.queue_len / 2 {
                        act.dropping_since = None;
                    }
                    if res.is_err() {
                        ctx.stop();
                    } else {
                        metrics::WS_FRAMES_SENT.inc();
                        act.pump(ctx);
                    }
                }),
        );
    }

    fn close(&mut self, ctx: &mut Context<Self>, code: CloseCode, why: &str) {
        if let Some(session) = self.session.take() {
            let reason = CloseReason {
                code,
                description: Some(why.to_string()),
            };
            actix::spawn(async move {
                let _ = session.close(Some(reason)).await;
            });
        }
        ctx.stop();
    }

    fn wants_messages(&self) -> bool {
        self.subscriptions
            .values()
            .any(|s| matches!(s, Subscription::Messages { .. }))
    }

    fn join_hub(&mut self, ctx: &mut Context<Self>) {
        let current = self.hub.get();
        if current.is_some() && current != self.joined {
            if let Some(hub) = &current {
                hub.do_send(Join {
                    id: self.id,
                    session: ctx.address().recipient(),
                });
                hub.do_send(WantsMessages {
                    id: self.id,
                    wants: self.wants_messages(),
                });
            }
            self.joined = current;
        }
    }

    fn error_frame(code: &str, message: &str) -> String {
        json!({"type": "error", "error": {"code": code, "message": message}}).to_string()
    }

    fn request(&mut self, text: &str, ctx: &mut Context<Self>) {
        let request = match serde_json::from_str::<Request>(text) {
            Ok(r) => r,
            Err(e) => {
                let code = if serde_json::from_str::<serde_json::Value>(text).is_ok() {
                    "invalid_request"
                } else {
                    "malformed_json"
                };
                return self.enqueue(Self::error_frame(code, &e.to_string()), ctx);
            }
        };
        match request {
            Request::Ping => self.enqueue(json!({"type": "pong"}).to_string(), ctx),
            Request::Unsubscribe { subscription } => {
                let frame = if self.subscriptions.remove(&subscription).is_some() {
                    json!({"type": "unsubscribed", "subscription": subscription}).to_string()
                } else {
                    Self::error_frame(
                        "unknown_subscription",
                        &format!("no subscription {subscription}"),
                    )
                };
                self.enqueue(frame, ctx);
                self.tell_hub_interest();
            }
            Request::Subscribe(r) => {
                if self.subscriptions.len() >= self.max_subscriptions {
                    let msg = format!(
                        "at most {} subscriptions per connection",
                        self.max_subscriptions
                    );
                    return self.enqueue(Self::error_frame("too_many_subscriptions", &msg), ctx);
                }
                match Subscription::from_request(*r) {
                    Err((code, message)) => self.enqueue(Self::error_frame(code, &message), ctx),
                    Ok(sub) => {
                        let id = self.next_subscription;
                        self.next_subscription += 1;
                        let frame = json!({"type": "subscribed", "subscription": id, "channel": sub.channel()});
                        self.subscriptions.insert(id, sub);
                        self.enqueue(frame.to_string(), ctx);
                        self.tell_hub_interest();
                    }
                }
            }
        }
    }

    fn tell_hub_interest(&self) {
        if let Some(hub) = &self.joined {
            hub.do_send(WantsMessages {
                id: self.id,
                wants: self.wants_messages(),
            });
        }
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.join_hub(ctx);
        ctx.run_interval(HEARTBEAT, |act, ctx| {
            if act.last_heard.elapsed() > act.timeout {
                act.close(ctx, CloseCode::Away, "heartbeat timeout");
                return;
            }
            if act.too_slow(ctx) {
                return;
            }
            act.join_hub(ctx);
            if let Some(mut s) = act.session.clone() {
                actix::spawn(async move {
                    let _ = s.ping(b"starling").await;
                });
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(hub) = &self.joined {
            hub.do_send(Leave(self.id));
        }
    }
}

impl Handler<Push> for WsSession {
    type Result = ();

    fn handle(&mut self, Push(event): Push, ctx: &mut Context<Self>) {
        let mut frames = Vec::new();
        match event.as_ref() {
            HubEvent::Metrics { at_ms, windows } => {
                for (id, sub) in &self.subscriptions {
                    if let Some(kept) = sub.windows(windows) {
                        frames.push(super::frames::metrics_update(*id, *at_ms, &kept));
                    }
                }
            }
            HubEvent::Messages(posts) => {
                for post in posts {
                    if let Some((id, _)) = self.subscriptions.iter().find(|(_, s)| s.wants(post)) {
                        frames.push(super::frames::message_new(*id, post));
                    }
                }
            }
            HubEvent::Alert(e) => {
                if let Some((id, _)) = self
                    .subscriptions
                    .iter()
                    .find(|(_, s)| s.wants_alert(&e.alert))
                {
                    frames.push(super::frames::alert(*id, e));
                }
            }
            HubEvent::Summary(summary) => {
                if let Some((id, _)) = self
                    .subscriptions
                    .iter()
                    .find(|(_, s)| s.wants_summary(summary))
                {
                    frames.push(super::frames::summary_update(*id, summary));
                }
            }
            HubEvent::Closing => {
                self.close(ctx, CloseCode::Restart, "server shutting down");
                return;
            }
        }
        for f in frames {
            self.enqueue(f, ctx);
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_heard = Instant::now();
        match msg {
            Ok(AggregatedMessage::Ping(bytes)) => {
                if let Some(mut s) = self.session.clone() {
                    actix::spawn(async move {
                        let _ = s.pong(&bytes).await;
                    });
                }
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Text(text)) => self.request(&text, ctx),
            Ok(AggregatedMessage::Binary(_)) => {
                let frame = Self::error_frame(
                    "unsupported",
                    "binary frames are not accepted; send JSON text",
                );
                self.enqueue(frame, ctx);
            }
            Ok(AggregatedMessage::Close(_)) => ctx.stop(),
            Err(e) => {
                self.close(ctx, CloseCode::Protocol, &format!("protocol error: {e}"));
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// The `/ws` handler: upgrades and starts a session actor. The protocol
/// (subscribe/unsubscribe frames, events) is described in `docs/api.md`.
#[utoipa::path(get, path = "/ws", tag = "live",
    responses((status = 101, description = "WebSocket upgrade: JSON frames"),
        (status = 400, description = "Not a WebSocket handshake", body = super::error::ErrorBody),
        (status = 429, description = "The key holds http.ws_max_connections_per_key connections", body = super::error::ErrorBody),
        (status = 503, description = "This process runs no live feed (web role without aggregate)", body = super::error::ErrorBody)))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    // The live feed comes from the aggregators: a web-only process (over
    // ScyllaDB) has none to push.
    if !state.config.runs(crate::config::Role::Aggregate) {
        return Err(ApiError::Unavailable(
            "this process serves no live feed (it runs the web role without aggregate): \
             connect /ws to a process that aggregates"
                .into(),
        )
        .into());
    }
    // Per API key; without auth (local, single user) there is no key to count.
    let key = match req.extensions().get::<super::auth::Caller>() {
        Some(super::auth::Caller::Key(id)) => Some(id.clone()),
        _ => None,
    };
    let max_connections = state.config.http.ws_max_connections_per_key.max(1);
    let permit = match key {
        Some(id) => Some(state.ws_connections.acquire(&id, max_connections).ok_or_else(|| {
            ApiError::TooManyConnections(format!(
                "this API key already holds {max_connections} WebSocket connections (http.ws_max_connections_per_key)"
            ))
        })?),
        None => None,
    };
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::BadRequest(
            "not_websocket",
            format!("expected a WebSocket handshake: {e}"),
        )
    })?;
    let max_frame = state.config.http.ws_max_frame_bytes;
    let stream = stream
        .max_frame_size(max_frame)
        .aggregate_continuations()
        .max_continuation_size(max_frame);
    let initial = super::routes::overall_view(&state).await?;
    let frame =
        json!({"type": "metrics:initial", "subscription": 0, "overall": initial}).to_string();
    let id = state.next_session_id();
    let cfg = &state.config.http;
    let hub = state.hub.clone();
    let queue_len = cfg.ws_queue_len.max(1);
    let max_subscriptions = cfg.ws_max_subscriptions.max(1);
    let timeout = Duration::from_secs(cfg.ws_client_timeout_s.max(1));
    let slow_grace = Duration::from_secs(cfg.ws_slow_client_grace_s);
    WsSession::create(move |ctx| {
        ctx.add_stream(stream);
        let mut s = WsSession {
            id,
            session: Some(session),
            hub,
            joined: None,
            subscriptions: BTreeMap::from([(0, Subscription::all_metrics())]),
            next_subscription: 1,
            max_subscriptions,
            queue: VecDeque::new(),
            queue_len,
            dropping_since: None,
            slow_grace,
            sending: false,
            last_heard: Instant::now(),
            timeout,
            _permit: permit,
        };
        s.enqueue(frame, ctx);
        s
    });
    Ok(response)
}
