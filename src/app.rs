//! The topology: opens the store and the bus, starts every stage under the
//! supervisor, serves the web API, and on shutdown drains the pipeline in
//! data-flow order so that nothing accepted is lost:
//!
//! 1. stop the sources: the web server stops accepting (in-flight requests
//!    finish and their posts are on the bus) and connectors stop producing;
//! 2. wait until the classifier has acknowledged every raw post;
//! 3. ask every aggregator to drain: take what is left on the enriched
//!    stream, close all open windows and commit them;
//! 4. stop the actors, close the bus and sync the store.
//!
//! The next start continues from what is on disk: totals, series and each
//! kind's watermark, so a post seen before the restart is not counted again.

use crate::actors::aggregator::{Aggregator, AggregatorDeps, Drain};
use crate::actors::classifier::{self, ClassifierDeps, ClassifierWorker};
use crate::actors::connectors::replay::Replay;
use crate::actors::connectors::synthetic::Synthetic;
use crate::actors::hub::{self, Hub};
use crate::actors::store_writer::{self, StoreWriter};
use crate::actors::supervisor::{
    AddChild, ChildSpec, RestartPolicy, ShuttingDown, Slot, StopAll, Supervisor,
};
use crate::bus::jetstream::JetStreamBus;
use crate::bus::memory::MemoryBus;
use crate::bus::Bus;
use crate::config::Config;
use crate::domain::EntityKind;
use crate::nlp::{Extractor, LexiconScorer};
use crate::store::cache::HotCache;
use crate::store::embedded::EmbeddedStore;
use crate::store::Store;
use crate::web::{self, AppState};
use actix::prelude::*;
use anyhow::Context as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long shutdown waits for each drain step before giving up on it.
const DRAIN_PATIENCE: Duration = Duration::from_secs(30);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Runs the whole pipeline until `shutdown` resolves, then drains it.
/// Must run inside an actix system. `on_listening` is called with the bound
/// address once the server accepts connections.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&config.store).with_context(|| {
            format!("opening the store in {}", config.store.data_dir.display())
        })?);
    let bus: Arc<dyn Bus> = if config.bus.nats_url.is_empty() {
        Arc::new(MemoryBus::new(&config.bus))
    } else {
        tracing::info!(url = %config.bus.nats_url, "using NATS JetStream");
        Arc::new(
            JetStreamBus::connect(&config.bus.nats_url, &config.bus)
                .await
                .with_context(|| format!("connecting to NATS at {}", config.bus.nats_url))?,
        )
    };
    bus.ensure_consumers(&crate::bus::pipeline_consumers(&config.bus))
        .await
        .context("creating the pipeline's consumers")?;
    let cache = HotCache::new(config.store.cache_entries);
    let supervisor = Supervisor::new(config.supervisor.clone()).start();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    // Sinks first, sources last.
    let hub_slot: Slot<Hub> = Slot::default();
    {
        let slot = hub_slot.clone();
        add(
            &supervisor,
            "hub",
            "hub",
            RestartPolicy::Permanent,
            move |c| {
                let addr = Hub::start_in_arbiter(&c.arbiter, move |ctx| {
                    ctx.set_mailbox_capacity(hub::MAILBOX);
                    Hub::new(c.guard)
                });
                slot.set(addr);
                Ok(())
            },
        )
        .await;
    }
    let writer_slot: Slot<StoreWriter> = Slot::default();
    {
        let (slot, store, cache, hub) = (
            writer_slot.clone(),
            store.clone(),
            cache.clone(),
            hub_slot.clone(),
        );
        add(
            &supervisor,
            "store-writer",
            "store",
            RestartPolicy::Permanent,
            move |c| {
                let (store, cache, hub) = (store.clone(), cache.clone(), hub.clone());
                let addr = StoreWriter::start_in_arbiter(&c.arbiter, move |ctx| {
                    ctx.set_mailbox_capacity(store_writer::MAILBOX);
                    StoreWriter::new(store, cache, hub, c.guard)
                });
                slot.set(addr);
                Ok(())
            },
        )
        .await;
    }
    let mut aggregators: Vec<Slot<Aggregator>> = Vec::new();
    for kind in EntityKind::windowed() {
        let slot: Slot<Aggregator> = Slot::default();
        aggregators.push(slot.clone());
        let deps = AggregatorDeps {
            bus: bus.clone(),
            store: store.clone(),
            writer: writer_slot.clone(),
            cfg: config.aggregation.clone(),
            bus_cfg: config.bus.clone(),
        };
        let name = format!("aggregator-{kind}");
        add(
            &supervisor,
            &name,
            "aggregator",
            RestartPolicy::Permanent,
            move |c| {
                let deps = deps.clone();
                let addr = Aggregator::start_in_arbiter(&c.arbiter, move |ctx| {
                    ctx.set_mailbox_capacity(crate::actors::aggregator::MAILBOX);
                    Aggregator::new(kind, deps, c.guard)
                });
                slot.set(addr);
                Ok(())
            },
        )
        .await;
    }
    let scorer = Arc::new(LexiconScorer::new());
    let extractor = Arc::new(Extractor::new(&config.entities));
    for i in 0..config.classifier.workers {
        let deps = ClassifierDeps {
            bus: bus.clone(),
            scorer: scorer.clone(),
            extractor: extractor.clone(),
            cfg: config.classifier.clone(),
            bus_cfg: config.bus.clone(),
        };
        add(
            &supervisor,
            &format!("classifier-{i}"),
            "classifier",
            RestartPolicy::Permanent,
            move |c| {
                let deps = deps.clone();
                ClassifierWorker::start_in_arbiter(&c.arbiter, move |ctx| {
                    ctx.set_mailbox_capacity(classifier::MAILBOX);
                    ClassifierWorker::new(deps, c.guard)
                });
                Ok(())
            },
        )
        .await;
    }
    if config.connectors.synthetic.rate > 0.0 {
        let (cfg, bus, stop) = (
            config.connectors.synthetic.clone(),
            bus.clone(),
            stop_rx.clone(),
        );
        add(
            &supervisor,
            "connector-synthetic",
            "connector",
            RestartPolicy::Permanent,
            move |c| {
                let (cfg, bus, stop) = (cfg.clone(), bus.clone(), stop.clone());
                Synthetic::start_in_arbiter(&c.arbiter, move |_| {
                    Synthetic::new(cfg, bus, stop, c.guard)
                });
                Ok(())
            },
        )
        .await;
    }
    for (i, replay) in config.connectors.replay.iter().enumerate() {
        let (cfg, bus, config2, stop) =
            (replay.clone(), bus.clone(), config.clone(), stop_rx.clone());
        add(
            &supervisor,
            &format!("connector-replay-{i}"),
            "connector",
            RestartPolicy::Transient,
            move |c| {
                let (cfg, bus, config2, stop) =
                    (cfg.clone(), bus.clone(), config2.clone(), stop.clone());
                Replay::start_in_arbiter(&c.arbiter, move |_| {
                    Replay::new(cfg, bus, config2, stop, c.guard)
                });
                Ok(())
            },
        )
        .await;
    }

    let retention = {
        let store = store.clone();
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(RETENTION_EVERY);
            loop {
                tick.tick().await;
                let store = store.clone();
                let now = chrono::Utc::now().timestamp_millis();
                match tokio::task::spawn_blocking(move || store.expire(now)).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
                    Err(e) => tracing::error!(error = %e, "retention task failed"),
                    Ok(Ok(_)) => {}
                }
            }
        })
    };

    let state = actix_web::web::Data::new(AppState::new(
        config.clone(),
        bus.clone(),
        store.clone(),
        cache,
        hub_slot,
        supervisor.clone(),
    ));
    let (server, addr) =
        web::bind(state).with_context(|| format!("binding {}", config.http.listen))?;
    let handle = server.handle();
    let server_task = actix_rt::spawn(server);
    tracing::info!(%addr, data_dir = %config.store.data_dir.display(), "starling is running");
    on_listening(addr);

    tokio::select! {
        _ = shutdown => tracing::info!("shutdown requested: draining"),
        r = server_task => tracing::error!(result = ?r, "web server stopped unexpectedly: draining"),
    }

    // 1. Sources.
    supervisor.do_send(ShuttingDown);
    let _ = stop_tx.send(true);
    handle.stop(true).await;
    // 2. Classifier.
    wait_until(|| async {
        bus.consumer_stats()
            .await
            .iter()
            .filter(|c| c.durable == crate::bus::CLASSIFY_DURABLE)
            .all(|c| c.pending == 0 && c.ack_pending == 0)
    })
    .await;
    // 3. Aggregators.
    for slot in &aggregators {
        if let Err(e) = slot.send(|| Drain, DRAIN_PATIENCE).await {
            tracing::error!(error = %e, "an aggregator could not drain");
        }
    }
    // 4. Everything else.
    retention.abort();
    let _ = supervisor.send(StopAll).await;
    bus.close();
    let store2 = store.clone();
    tokio::task::spawn_blocking(move || store2.sync())
        .await
        .context("store sync task")?
        .context("syncing the store")?;
    tracing::info!("drained and stopped");
    Ok(())
}

async fn add(
    supervisor: &Addr<Supervisor>,
    name: &str,
    group: &'static str,
    policy: RestartPolicy,
    factory: impl Fn(crate::actors::supervisor::ChildContext) -> Result<(), String>
        + Send
        + Sync
        + 'static,
) {
    let spec = ChildSpec {
        name: name.to_string(),
        group,
        policy,
        factory: Arc::new(factory),
    };
    if let Err(e) = supervisor.send(AddChild(spec)).await {
        tracing::error!(child = name, error = %e, "supervisor unavailable");
    }
}

async fn wait_until<F: Future<Output = bool>>(done: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + DRAIN_PATIENCE;
    while !done().await {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("drain step timed out; continuing shutdown");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
