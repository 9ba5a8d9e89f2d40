//! The store writer: the one actor that commits window batches to the store,
//! refreshes the hot cache after each commit and tells the hub what changed.
//!
//! Owns: the write side of the store. Mailbox: bounded ([`MAILBOX`]);
//! aggregators `send().await`, so a slow disk slows the aggregators, which
//! slow their bus consumers: back-pressure, never a drop. Restart policy:
//! permanent. It runs alone on its arbiter, so its blocking commits stall
//! nothing else.

use super::hub::{Committed, Hub};
use super::supervisor::{LifeGuard, Slot};
use crate::store::cache::HotCache;
use crate::store::{Store, WindowBatch};
use crate::telemetry::metrics;
use actix::prelude::*;
use std::sync::Arc;

/// Mailbox capacity of the writer.
pub const MAILBOX: usize = 64;

/// Commits a batch; replies once it is durable (or with the error).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Apply(pub WindowBatch);

/// The store writer actor.
pub struct StoreWriter {
    store: Arc<dyn Store>,
    cache: HotCache,
    hub: Slot<Hub>,
    _guard: LifeGuard,
}

impl StoreWriter {
    /// A writer over `store` that refreshes `cache` and notifies `hub`.
    pub fn new(store: Arc<dyn Store>, cache: HotCache, hub: Slot<Hub>, guard: LifeGuard) -> Self {
        StoreWriter {
            store,
            cache,
            hub,
            _guard: guard,
        }
    }
}

impl Actor for StoreWriter {
    type Context = Context<Self>;
}

impl Handler<Apply> for StoreWriter {
    type Result = Result<(), String>;

    fn handle(&mut self, Apply(batch): Apply, _: &mut Context<Self>) -> Self::Result {
        let Some(kind) = batch.kind else {
            return Ok(());
        };
        match self.store.apply(&batch) {
            Ok(applied) => {
                metrics::AGG_FLUSHES.inc();
                self.cache.update(kind, &applied);
                if let Some(hub) = self.hub.get() {
                    // Live updates are best effort: a full hub drops, counted.
                    if hub
                        .try_send(Committed {
                            kind,
                            windows: applied.windows,
                        })
                        .is_err()
                    {
                        metrics::HUB_EVENTS_DROPPED.inc();
                    }
                }
                Ok(())
            }
            Err(e) => {
                metrics::STORE_WRITE_ERRORS.inc();
                tracing::error!(error = %e, %kind, "store commit failed");
                Err(e.to_string())
            }
        }
    }
}
