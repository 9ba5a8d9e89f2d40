//! The synthetic connector: a deterministic, realistic social stream
//! ([`generator::Generator`] over the tables of [`corpus`]) published at a
//! configured rate.
//!
//! Owns: its generator. Mailbox: none used ([`MAILBOX`]). Restart policy:
//! permanent; a restarted generator gets a fresh run id, so its post ids
//! never collide with the previous incarnation's.

pub mod corpus;
pub mod generator;

use super::{publish_posts, StopSignal};
use crate::actors::supervisor::LifeGuard;
use crate::bus::Bus;
use crate::config::SyntheticConfig;
use crate::telemetry::metrics;
use actix::prelude::*;
use generator::Generator;
use std::sync::Arc;
use std::time::Duration;

/// Control mailbox capacity.
pub const MAILBOX: usize = 4;

/// How often the generator wakes to produce what is due.
const TICK: Duration = Duration::from_millis(10);

/// The synthetic connector actor.
pub struct Synthetic {
    work: Option<(SyntheticConfig, Arc<dyn Bus>, StopSignal)>,
    guard: LifeGuard,
}

impl Synthetic {
    /// A generator publishing `cfg.rate` posts per second on `bus`.
    pub fn new(
        cfg: SyntheticConfig,
        bus: Arc<dyn Bus>,
        stop: StopSignal,
        guard: LifeGuard,
    ) -> Self {
        Synthetic {
            work: Some((cfg, bus, stop)),
            guard,
        }
    }
}

impl Actor for Synthetic {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some((cfg, bus, stop)) = self.work.take() else {
            return;
        };
        ctx.spawn(
            async move { generate(cfg, bus, stop).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    match res {
                        Ok(()) => act.guard.finish(),
                        Err(e) => act.guard.fail(e.to_string()),
                    }
                    ctx.stop();
                }),
        );
    }
}

async fn generate(
    cfg: SyntheticConfig,
    bus: Arc<dyn Bus>,
    stop: StopSignal,
) -> Result<(), crate::bus::BusError> {
    let run_id = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
    let mut generator = Generator::new(&cfg, run_id);
    let started = tokio::time::Instant::now();
    let mut produced: u64 = 0;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut episode = None;
    loop {
        ticker.tick().await;
        if *stop.borrow() {
            return Ok(());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut due = (elapsed * cfg.rate) as u64;
        // After a stall (a full pipeline), do not burst more than a second's worth.
        let backlog_cap = cfg.rate.ceil() as u64;
        if due.saturating_sub(produced) > backlog_cap {
            produced = due - backlog_cap;
        }
        let now_episode = generator.episode_at(elapsed);
        if now_episode != episode {
            tracing::info!(episode = now_episode.unwrap_or("none"), "synthetic episode");
            episode = now_episode;
        }
        due = due.max(produced);
        let now = chrono::Utc::now();
        let posts: Vec<_> = (produced..due)
            .map(|_| generator.next_post(now, elapsed))
            .collect();
        publish_posts(bus.as_ref(), &posts).await?;
        metrics::CONNECTOR_POSTS.add(posts.len() as u64);
        produced = due;
    }
}
