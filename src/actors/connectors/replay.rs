//! JSONL replay: publishes the posts of a file, one JSON post (the ingest
//! shape) per line, at a given rate or as fast as the pipeline takes them.
//!
//! A line that is not a valid post is counted, logged with its line number
//! and skipped; the replay goes on. A replay restarted after a crash starts
//! again from the top: its posts are de-duplicated by id downstream.
//!
//! Owns: the file reader. Mailbox: none used ([`MAILBOX`]). Restart policy:
//! transient (a replay that reached the end stays finished).

use super::{publish_posts, StopSignal};
use crate::actors::supervisor::LifeGuard;
use crate::bus::Bus;
use crate::config::{Config, ReplayConfig};
use crate::domain::Post;
use crate::telemetry::metrics;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Control mailbox capacity.
pub const MAILBOX: usize = 4;

/// Replay errors.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The bus failed.
    #[error("bus: {0}")]
    Bus(#[from] crate::bus::BusError),
}

/// What a replay incarnation takes into its task.
type ReplayWork = (ReplayConfig, Arc<dyn Bus>, Arc<Config>, StopSignal);

/// The replay actor.
pub struct Replay {
    work: Option<ReplayWork>,
    guard: LifeGuard,
}

impl Replay {
    /// A replay of `cfg.path`.
    pub fn new(
        cfg: ReplayConfig,
        bus: Arc<dyn Bus>,
        config: Arc<Config>,
        stop: StopSignal,
        guard: LifeGuard,
    ) -> Self {
        Replay {
            work: Some((cfg, bus, config, stop)),
            guard,
        }
    }
}

impl Actor for Replay {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some((cfg, bus, config, stop)) = self.work.take() else {
            return;
        };
        ctx.spawn(
            async move { replay(&cfg, bus.as_ref(), &config, stop).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    match res {
                        Ok(n) => {
                            tracing::info!(posts = n, "replay finished");
                            act.guard.finish();
                        }
                        Err(e) => act.guard.fail(e.to_string()),
                    }
                    ctx.stop();
                }),
        );
    }
}

/// Publishes every valid post of the file; returns how many were published.
pub async fn replay(
    cfg: &ReplayConfig,
    bus: &dyn Bus,
    config: &Config,
    stop: StopSignal,
) -> Result<u64, ReplayError> {
    let io = |source| ReplayError::Io {
        path: cfg.path.display().to_string(),
        source,
    };
    let file = tokio::fs::File::open(&cfg.path).await.map_err(io)?;
    let mut reader = tokio::io::BufReader::new(file);
    let rate = cfg.rate.filter(|r| *r > 0.0);
    let started = tokio::time::Instant::now();
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut published = 0u64;
    loop {
        if *stop.borrow() {
            break;
        }
        line.clear();
        if reader.read_until(b'\n', &mut line).await.map_err(io)? == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let post = match serde_json::from_slice::<Post>(&line) {
            Ok(p) => p,
            Err(e) => {
                metrics::CONNECTOR_ERRORS.inc();
                tracing::warn!(path = %cfg.path.display(), line = line_no, error = %e, "skipping invalid line");
                continue;
            }
        };
        if let Err(e) = post.validate(&config.post_limits(chrono::Utc::now())) {
            metrics::CONNECTOR_ERRORS.inc();
            tracing::warn!(path = %cfg.path.display(), line = line_no, error = %e, "skipping invalid post");
            continue;
        }
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(published as f64 / rate);
            tokio::time::sleep_until(due).await;
        }
        publish_posts(bus, std::slice::from_ref(&post)).await?;
        metrics::CONNECTOR_POSTS.inc();
        published += 1;
    }
    Ok(published)
}
