//! The hub: fans live events out to WebSocket sessions.
//!
//! The store writer tells the hub which windows each commit changed; once a
//! second the hub sends every session the latest 1-second and 1-minute
//! windows that changed since the last tick (all kinds except per-user and
//! per-post series, which are too many to push and are read over REST). The
//! live feed hands it scored posts, which go to the sessions that subscribed
//! to messages; the alert actor hands it alert events, which go to every
//! session, and the summarizer new entity summaries, likewise. Sessions
//! filter and serialise what they subscribed to.
//!
//! Owns: the session registry and the pending changes. Mailbox: bounded
//! ([`MAILBOX`]); commits arrive by `try_send` and a full mailbox drops the
//! update (counted: live views are best effort, the store has the truth).
//! Sessions get frames by `try_send` into their own bounded queues. Restart
//! policy: permanent; sessions re-join a restarted hub on their next heartbeat.

use super::aggregator::window::{MetricsView, Resolution};
use super::supervisor::LifeGuard;
use crate::alerts::model::AlertEvent;
use crate::domain::{EnrichedPost, EntityKind};
use crate::store::StoredWindow;
use crate::summary::model::Summary;
use crate::telemetry::metrics;
use actix::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Mailbox capacity of the hub.
pub const MAILBOX: usize = 1_024;

/// An event for sessions, shared between them.
#[derive(Debug)]
pub enum HubEvent {
    /// The windows that changed since the last tick (sent every second, possibly empty).
    Metrics {
        /// When the tick happened (ms).
        at_ms: i64,
        /// The changed windows.
        windows: Vec<WindowUpdate>,
    },
    /// Scored posts, for message subscribers (one event per batch, so a
    /// burst takes one mailbox slot, not one per post).
    Messages(Vec<Arc<EnrichedPost>>),
    /// An alert was raised, updated, acknowledged or resolved (sent to
    /// every session; alerts subscriptions filter it).
    Alert(Arc<AlertEvent>),
    /// A new entity summary was stored (sent to every session; summaries
    /// subscriptions filter it).
    Summary(Arc<Summary>),
    /// The server is shutting down: close the connection.
    Closing,
}

/// Tells every session to close (shutdown), so that the web server's
/// graceful stop does not wait on open WebSockets.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll;

/// Delivers an event to a session.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Push(pub Arc<HubEvent>);

/// Scored posts from the live feed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NewMessages(pub Vec<Arc<EnrichedPost>>);

/// An alert event from the alert engine.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NewAlert(pub Arc<AlertEvent>);

/// A new entity summary from the summarizer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NewSummary(pub Arc<Summary>);

/// Whether a session wants `message:new` events (has a messages subscription).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WantsMessages {
    /// Session id.
    pub id: u64,
    /// Wants them.
    pub wants: bool,
}

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

/// The hub actor.
pub struct Hub {
    sessions: HashMap<u64, Recipient<Push>>,
    message_subscribers: HashSet<u64>,
    pending: BTreeMap<(EntityKind, String, Resolution), WindowUpdate>,
    _guard: LifeGuard,
}

impl Hub {
    /// An empty hub.
    pub fn new(guard: LifeGuard) -> Self {
        Hub {
            sessions: HashMap::new(),
            message_subscribers: HashSet::new(),
            pending: BTreeMap::new(),
            _guard: guard,
        }
    }

    fn tick(&mut self) {
        let windows = std::mem::take(&mut self.pending).into_values().collect();
        self.push_all(HubEvent::Metrics {
            at_ms: chrono::Utc::now().timestamp_millis(),
            windows,
        });
    }

    /// Sends `event` to every session.
    fn push_all(&mut self, event: HubEvent) {
        let all: Vec<u64> = self.sessions.keys().copied().collect();
        self.push(&all, &Arc::new(event));
    }

    fn push(&mut self, to: &[u64], event: &Arc<HubEvent>) {
        for id in to {
            let Some(s) = self.sessions.get(id) else {
                continue;
            };
            match s.try_send(Push(Arc::clone(event))) {
                Ok(()) => {}
                Err(SendError::Full(_)) => metrics::HUB_EVENTS_DROPPED.inc(),
                Err(SendError::Closed(_)) => {
                    self.sessions.remove(id);
                    self.message_subscribers.remove(id);
                }
            }
        }
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
        self.message_subscribers.remove(&msg.0);
    }
}

impl Handler<WantsMessages> for Hub {
    type Result = ();

    fn handle(&mut self, msg: WantsMessages, _: &mut Context<Self>) {
        if msg.wants {
            self.message_subscribers.insert(msg.id);
        } else {
            self.message_subscribers.remove(&msg.id);
        }
    }
}

impl Handler<NewMessages> for Hub {
    type Result = ();

    fn handle(&mut self, NewMessages(posts): NewMessages, _: &mut Context<Self>) {
        if self.message_subscribers.is_empty() {
            return;
        }
        let to: Vec<u64> = self.message_subscribers.iter().copied().collect();
        self.push(&to, &Arc::new(HubEvent::Messages(posts)));
    }
}

impl Handler<NewAlert> for Hub {
    type Result = ();

    fn handle(&mut self, NewAlert(event): NewAlert, _: &mut Context<Self>) {
        self.push_all(HubEvent::Alert(event));
    }
}

impl Handler<NewSummary> for Hub {
    type Result = ();

    fn handle(&mut self, NewSummary(summary): NewSummary, _: &mut Context<Self>) {
        self.push_all(HubEvent::Summary(summary));
    }
}

impl Handler<CloseAll> for Hub {
    type Result = ();

    fn handle(&mut self, _: CloseAll, _: &mut Context<Self>) {
        let closing = Arc::new(HubEvent::Closing);
        for s in self.sessions.values() {
            // Past the mailbox bound: a full mailbox must not keep it open.
            s.do_send(Push(Arc::clone(&closing)));
        }
    }
}

impl Handler<CountSessions> for Hub {
    type Result = usize;

    fn handle(&mut self, _: CountSessions, _: &mut Context<Self>) -> usize {
        self.sessions.len()
    }
}
