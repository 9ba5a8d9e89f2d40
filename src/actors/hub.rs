//! The hub: fans live metric updates out to WebSocket sessions.
//!
//! The store writer tells the hub which windows each commit changed; once a
//! second the hub sends every session one `metrics:update` frame with the
//! latest 1-second and 1-minute windows that changed since the last one
//! (all kinds except per-user and per-post series, which are too many to
//! push and are read over REST).
//!
//! Owns: the session registry and the pending changes. Mailbox: bounded
//! ([`MAILBOX`]); commits arrive by `try_send` and a full mailbox drops the
//! update (counted: live views are best effort, the store has the truth).
//! Sessions get frames by `try_send` into their own bounded queues. Restart
//! policy: permanent; sessions re-join a restarted hub on their next heartbeat.

use super::aggregator::window::{MetricsView, Resolution};
use super::supervisor::LifeGuard;
use crate::domain::EntityKind;
use crate::store::StoredWindow;
use crate::telemetry::metrics;
use actix::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Mailbox capacity of the hub.
pub const MAILBOX: usize = 1_024;

/// A frame for sessions (already serialised JSON, shared).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Push(pub Arc<str>);

/// Windows changed by one commit.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Committed {
    /// Kind of every window.
    pub kind: EntityKind,
    /// Windows after the commit.
    pub windows: Vec<StoredWindow>,
}

/// Registers a session under `id` (idempotent).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    /// Session id.
    pub id: u64,
    /// Where to push frames.
    pub session: Recipient<Push>,
}

/// Unregisters a session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave(pub u64);

/// Number of sessions.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountSessions;

/// One window in a `metrics:update` frame.
#[derive(Debug, Clone, Serialize)]
pub struct WindowUpdate {
    /// Entity kind.
    pub kind: EntityKind,
    /// Entity id.
    pub id: String,
    /// Resolution.
    pub resolution: Resolution,
    /// Window start, ms since the epoch.
    pub start_ms: i64,
    /// Metrics of the window.
    pub metrics: MetricsView,
}

#[derive(Serialize)]
struct UpdateFrame<'a> {
    r#type: &'static str,
    at_ms: i64,
    windows: Vec<&'a WindowUpdate>,
}

/// The hub actor.
pub struct Hub {
    sessions: HashMap<u64, Recipient<Push>>,
    pending: BTreeMap<(EntityKind, String, Resolution), WindowUpdate>,
    _guard: LifeGuard,
}

impl Hub {
    /// An empty hub.
    pub fn new(guard: LifeGuard) -> Self {
        Hub {
            sessions: HashMap::new(),
            pending: BTreeMap::new(),
            _guard: guard,
        }
    }

    fn tick(&mut self) {
        let frame = UpdateFrame {
            r#type: "metrics:update",
            at_ms: chrono::Utc::now().timestamp_millis(),
            windows: self.pending.values().collect(),
        };
        let text: Arc<str> = match serde_json::to_string(&frame) {
            Ok(t) => t.into(),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise metrics:update");
                return;
            }
        };
        self.pending.clear();
        self.sessions
            .retain(|_, s| match s.try_send(Push(Arc::clone(&text))) {
                Ok(()) => true,
                Err(SendError::Full(_)) => {
                    metrics::HUB_EVENTS_DROPPED.inc();
                    true
                }
                Err(SendError::Closed(_)) => false,
            });
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_secs(1), |act, _| act.tick());
    }
}

impl Handler<Committed> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Context<Self>) {
        if matches!(msg.kind, EntityKind::User | EntityKind::Post) {
            return;
        }
        for w in msg.windows {
            if w.resolution == Resolution::Hour {
                continue;
            }
            let key = (msg.kind, w.entity.clone(), w.resolution);
            let newer = self
                .pending
                .get(&key)
                .is_none_or(|p| p.start_ms <= w.start_ms);
            if newer {
                self.pending.insert(
                    key,
                    WindowUpdate {
                        kind: msg.kind,
                        id: w.entity,
                        resolution: w.resolution,
                        start_ms: w.start_ms,
                        metrics: w.metrics.view(),
                    },
                );
            }
        }
    }
}

impl Handler<Join> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Join, _: &mut Context<Self>) {
        self.sessions.insert(msg.id, msg.session);
    }
}

impl Handler<Leave> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) {
        self.sessions.remove(&msg.0);
    }
}

impl Handler<CountSessions> for Hub {
    type Result = usize;

    fn handle(&mut self, _: CountSessions, _: &mut Context<Self>) -> usize {
        self.sessions.len()
    }
}
