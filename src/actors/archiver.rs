//! The archiver: writes every enriched post into the post archive
//! ([`crate::archive::PostArchive`]), which serves recent posts, top posts,
//! contributing authors and full-text search.
//!
//! It reads the primary copy of each post from the shards this process owns
//! (durables `archive-<shard>`, merged), so every post is archived once, by
//! the process that owns its lowest shard. A batch is committed to the index
//! before its messages are acknowledged; a redelivered post replaces its
//! archived copy (the post id is the key), so a crash neither loses nor
//! duplicates a post. A payload that is not an enriched post is
//! dead-lettered with the reason.
//!
//! Owns: its consumers. Mailbox: none used ([`MAILBOX`]); the data path is
//! the bus. Restart policy: permanent; a failed commit stops the actor and
//! its unacknowledged messages come again.

use super::supervisor::{run_work, LifeGuard};
use crate::archive::{ArchiveError, PostStore};
use crate::bus::{archive_durable, merge, pipeline_consumer, Bus, BusError};
use crate::config::BusConfig;
use crate::telemetry::metrics;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Control mailbox capacity.
pub const MAILBOX: usize = 4;
/// Most posts committed to the index at once.
const BATCH: usize = 8_192;
/// How long posts gather before a commit. Each commit writes a segment that
/// tantivy later merges, so commits are kept few (well inside `ack_wait`).
const COMMIT_EVERY: Duration = Duration::from_secs(2);
/// Longest wait of one fetch.
const FETCH_WAIT: Duration = Duration::from_millis(250);

/// Errors that stop the archiver (the supervisor restarts it).
#[derive(Debug, thiserror::Error)]
pub enum ArchiverError {
    /// The bus failed.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// The index failed.
    #[error("archive: {0}")]
    Archive(#[from] ArchiveError),
    /// The blocking task running the commit died.
    #[error("archive task: {0}")]
    Task(String),
}

/// What the archiver needs.
#[derive(Clone)]
pub struct ArchiverDeps {
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// The archive.
    pub archive: Arc<dyn PostStore>,
    /// Consumer settings.
    pub bus_cfg: BusConfig,
    /// The shards this process owns.
    pub shards: Vec<u16>,
}

/// The archiver actor.
pub struct Archiver {
    deps: Option<ArchiverDeps>,
    guard: LifeGuard,
}

impl Archiver {
    /// An archiver.
    pub fn new(deps: ArchiverDeps, guard: LifeGuard) -> Self {
        Archiver {
            deps: Some(deps),
            guard,
        }
    }
}

impl Actor for Archiver {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(deps) = self.deps.take() else {
            return;
        };
        run_work(
            self,
            ctx,
            run(deps),
            |a| &mut a.guard,
            |e| matches!(e, ArchiverError::Bus(BusError::Closed)),
        );
    }
}

async fn run(deps: ArchiverDeps) -> Result<(), ArchiverError> {
    let mut consumers = Vec::with_capacity(deps.shards.len());
    for &shard in &deps.shards {
        let durable = archive_durable(shard);
        let spec =
            pipeline_consumer(&deps.bus_cfg, &durable).ok_or(BusError::UnknownConsumer(durable))?;
        consumers.push(deps.bus.consumer(spec).await?);
    }
    let mut consumer = merge::merge(consumers, BATCH);
    loop {
        // Gather for COMMIT_EVERY from the first post, or until BATCH (the
        // loop ends only once a post has come).
        let mut posts = Vec::new();
        let mut done = Vec::new();
        let mut first_at: Option<tokio::time::Instant> = None;
        while posts.len() < BATCH && first_at.is_none_or(|t| t.elapsed() < COMMIT_EVERY) {
            let batch = consumer.fetch(BATCH - posts.len(), FETCH_WAIT).await?;
            for d in batch {
                match d.enriched() {
                    Ok(p) => {
                        first_at.get_or_insert_with(tokio::time::Instant::now);
                        posts.push(p);
                        done.push(d);
                    }
                    Err(e) => d.term(&format!("not an enriched post: {e}")).await?,
                }
            }
        }
        let archive = deps.archive.clone();
        let n = posts.len() as u64;
        tokio::task::spawn_blocking(move || archive.put(&posts))
            .await
            .map_err(|e| ArchiverError::Task(e.to_string()))??;
        metrics::ARCHIVED.add(n);
        for d in done {
            d.ack().await?;
        }
    }
}
