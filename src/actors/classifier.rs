//! Classifier workers: score raw posts and attribute them to entities.
//!
//! Every worker opens the same durable consumer (`classify`) on the raw
//! stream, so the pool shares the work; a worker takes a batch, scores its
//! posts with the configured tier ([`Scorer::score_batch`]: in place for the
//! fast and lexicon tiers, through the shared batching inference worker for
//! the encoder tier), extracts each post's entities, publishes the
//! enriched post on each shard subject it belongs to
//! ([`crate::bus::enriched_messages`]; message ids derive from the post id,
//! so a redelivered raw post is de-duplicated on publish) and only then
//! acknowledges the raw message.
//! A payload that is not a post is dead-lettered with the reason.
//!
//! A batch the scorer cannot score (the inference worker failed on it) is
//! not acknowledged: the worker stops with the error, is restarted, and the
//! bus redelivers the posts after `ack_wait`.
//!
//! Owns: nothing but its consumer handle (the scorer and extractor are
//! shared, read-only). Mailbox: none used (data path is the bus); capacity
//! [`MAILBOX`]. Restart policy: permanent.

use super::supervisor::{run_work, LifeGuard};
use crate::bus::{enriched_messages, pipeline_consumer, Bus, BusError, CLASSIFY_DURABLE};
use crate::config::{BusConfig, ClassifierConfig};
use crate::domain::Scores;
use crate::domain::{EnrichedPost, Post};
use crate::nlp::scorer::ScorerError;
use crate::nlp::{Extractor, Scorer};
use crate::telemetry::metrics;
use actix::prelude::*;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Control mailbox capacity.
pub const MAILBOX: usize = 16;

/// What a worker needs.
#[derive(Clone)]
pub struct ClassifierDeps {
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// Shared scorer (the configured tier).
    pub scorer: Arc<Scorer>,
    /// Shared entity extractor.
    pub extractor: Arc<Extractor>,
    /// Pool settings.
    pub cfg: ClassifierConfig,
    /// Consumer settings.
    pub bus_cfg: BusConfig,
}

/// One classifier worker.
pub struct ClassifierWorker {
    deps: Option<ClassifierDeps>,
    guard: LifeGuard,
}

impl ClassifierWorker {
    /// A worker.
    pub fn new(deps: ClassifierDeps, guard: LifeGuard) -> Self {
        ClassifierWorker {
            deps: Some(deps),
            guard,
        }
    }
}

impl Actor for ClassifierWorker {
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
            // The bus closes only at shutdown: a clean end.
            |e| matches!(e, ClassifyError::Bus(BusError::Closed)),
        );
    }
}

/// Scores and attributes one post.
pub fn enrich(post: Post, scorer: &Scorer, extractor: &Extractor) -> EnrichedPost {
    let scores = scorer.score(&post.text);
    attribute(post, scores, extractor)
}

/// Attributes one scored post.
pub fn attribute(post: Post, scores: Scores, extractor: &Extractor) -> EnrichedPost {
    let entities = extractor.extract(&post);
    EnrichedPost {
        post,
        scores,
        entities,
    }
}

/// Why a worker's loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The bus failed (or closed at shutdown).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A batch could not be scored.
    #[error("scoring a batch: {0}")]
    Score(#[from] ScorerError),
}

async fn run(deps: ClassifierDeps) -> Result<(), ClassifyError> {
    let spec = pipeline_consumer(&deps.bus_cfg, CLASSIFY_DURABLE)
        .ok_or_else(|| BusError::UnknownConsumer(CLASSIFY_DURABLE.into()))?;
    let mut consumer = deps.bus.consumer(spec).await?;
    loop {
        let batch = consumer
            .fetch(deps.cfg.batch_size, Duration::from_millis(500))
            .await?;
        let mut posts = Vec::with_capacity(batch.len());
        for d in batch {
            match serde_json::from_slice::<Post>(&d.payload) {
                Ok(p) => posts.push((p, d)),
                Err(e) => {
                    metrics::CLASSIFY_DECODE_ERRORS.inc();
                    d.term(&format!("not a post: {e}")).await?;
                }
            }
        }
        let texts = posts.iter().map(|(p, _)| p.text.clone()).collect();
        let scores = deps.scorer.score_batch(texts).await?;
        let mut enriched = Vec::with_capacity(posts.len());
        let mut done = Vec::with_capacity(posts.len());
        for ((post, d), scores) in posts.into_iter().zip(scores) {
            let e = attribute(post, scores, &deps.extractor);
            match serde_json::to_vec(&e) {
                Ok(p) => {
                    enriched.extend(enriched_messages(&e, Bytes::from(p), deps.bus_cfg.shards))
                }
                Err(err) => {
                    d.term(&format!("cannot encode enriched post: {err}"))
                        .await?;
                    continue;
                }
            }
            done.push(d);
        }
        // Publish the whole batch, then acknowledge the raw posts it came from.
        let acks = deps.bus.publish_batch(&enriched).await?;
        metrics::BUS_DUPLICATES.add(acks.iter().filter(|a| a.duplicate).count() as u64);
        metrics::CLASSIFIED.add(done.len() as u64);
        for d in done {
            d.ack().await?;
        }
    }
}
