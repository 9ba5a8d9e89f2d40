//! The live feed: reads scored posts from the enriched stream and hands
//! them to the hub for `message:new` WebSocket events.
//!
//! It has a consumer of its own per process (`live-feed-<process>`, so
//! every process's clients see every post; the broker drops it once the
//! process is gone) and acknowledges at once:
//! the live view is best effort (the hub drops, counted, when a session is
//! slow), the store holds the truth. Owns: its consumer. Mailbox: none used
//! ([`MAILBOX`]). Restart policy: permanent.

use super::hub::{Hub, NewMessages};
use super::supervisor::{run_work, LifeGuard, Slot};
use crate::bus::{live_feed_consumer, Bus, BusError};
use crate::config::BusConfig;
use crate::telemetry::metrics;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Control mailbox capacity.
pub const MAILBOX: usize = 4;

/// The live-feed actor.
pub struct LiveFeed {
    work: Option<(Arc<dyn Bus>, BusConfig, Slot<Hub>)>,
    guard: LifeGuard,
}

impl LiveFeed {
    /// A feed from `bus` to `hub`.
    pub fn new(bus: Arc<dyn Bus>, cfg: BusConfig, hub: Slot<Hub>, guard: LifeGuard) -> Self {
        LiveFeed {
            work: Some((bus, cfg, hub)),
            guard,
        }
    }
}

impl Actor for LiveFeed {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some((bus, cfg, hub)) = self.work.take() else {
            return;
        };
        run_work(
            self,
            ctx,
            run(bus, cfg, hub),
            |a| &mut a.guard,
            |e| matches!(e, BusError::Closed),
        );
    }
}

async fn run(bus: Arc<dyn Bus>, cfg: BusConfig, hub: Slot<Hub>) -> Result<(), BusError> {
    let mut consumer = bus.consumer(live_feed_consumer(&cfg)).await?;
    loop {
        let batch = consumer.fetch(512, Duration::from_millis(500)).await?;
        let mut posts = Vec::with_capacity(batch.len());
        for d in batch {
            if let Ok(p) = d.enriched() {
                posts.push(p);
            }
            d.ack().await?;
        }
        if posts.is_empty() {
            continue;
        }
        if let Some(h) = hub.get() {
            if h.try_send(NewMessages(posts)).is_err() {
                metrics::HUB_EVENTS_DROPPED.inc();
            }
        }
    }
}
