//! The topology: opens the store and the bus, starts this process's stages
//! (its roles) under the supervisor, serves the web API, and on shutdown
//! drains in data-flow order so that nothing accepted is lost:
//!
//! 1. stop the sources: the web server stops accepting (in-flight requests
//!    finish and their posts are on the bus) and connectors stop producing;
//! 2. with the in-process bus, wait until the classifier has acknowledged
//!    every raw post;
//! 3. ask every aggregator to drain: close all open windows and commit them
//!    (with the in-process bus, after taking what is left on the enriched
//!    stream; over JetStream what was not fetched stays there for the next
//!    process);
//! 4. with the in-process bus, wait until the archiver has acknowledged
//!    every enriched post;
//! 5. stop the actors, close the bus and sync the store.
//!
//! The next start continues from what is on disk: totals, series and each
//! kind's watermark, so a post seen before the restart is not counted again.

use crate::actors::aggregator::{Aggregator, AggregatorDeps, Drain};
use crate::actors::alerts::{self, AlertActor, AlertDeps};
use crate::actors::archiver::{self, Archiver, ArchiverDeps};
use crate::actors::classifier::{self, ClassifierDeps, ClassifierWorker};
use crate::actors::connectors::replay::Replay;
use crate::actors::connectors::synthetic::Synthetic;
use crate::actors::hub::{self, Hub};
use crate::actors::live_feed::LiveFeed;
use crate::actors::store_writer::{self, StoreWriter};
use crate::actors::summarizer::{self, Summarizer, SummarizerDeps, SummaryCache};
use crate::actors::supervisor::{
    AddChild, ChildContext, ChildSpec, RestartPolicy, ShuttingDown, Slot, StopAll, Supervisor,
};
use crate::actors::webhooks::{self as webhook_actor, Dispatcher, WebhookDeps};
use crate::archive::{PostArchive, PostStore};
use crate::bus::jetstream::JetStreamBus;
use crate::bus::memory::MemoryBus;
use crate::bus::Bus;
use crate::config::{Config, Role};
use crate::domain::EntityKind;
use crate::nlp::{Extractor, Scorer};
use crate::store::alerts::{AlertStore, EmbeddedAlerts};
use crate::store::cache::HotCache;
use crate::store::embedded::EmbeddedStore;
use crate::store::scylla::posts::SharedPosts;
use crate::store::summaries::{EmbeddedSummaries, SummaryStore};
use crate::store::webhooks::{EmbeddedWebhooks, WebhookStore};
use crate::store::Store;
use crate::summary::service::Sources;
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

/// What the process tells its caller once it is up.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    /// Address of the web server (health and metrics always; ingest and
    /// lookups by role).
    pub http: std::net::SocketAddr,
    /// The roles it runs.
    pub roles: Vec<Role>,
}

/// Runs this process's stages until `shutdown` resolves, then drains them.
/// Must run inside an actix system. `on_ready` is called once every stage
/// is started and the web server (if any) accepts connections.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(Ready),
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let in_process = config.bus.nats_url.is_empty();
    let bus: Arc<dyn Bus> = if in_process {
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
    let shared = if config.store.scylla.enabled()
        && (config.runs(Role::Aggregate) || config.runs(Role::Web))
    {
        Some(open_scylla(&config).await?)
    } else {
        None
    };
    let (store, archive, alerts, webhooks, summaries) = if config.runs(Role::Aggregate) {
        let dir = config.store.data_dir.join("archive");
        let archive = PostArchive::open(&dir)
            .with_context(|| format!("opening the post archive in {}", dir.display()))?;
        match shared {
            // Everything in ScyllaDB but the search index of the posts this
            // process archives.
            Some(s) => (
                Some(s.series),
                Some(Arc::new(SharedPosts {
                    posts: s.posts,
                    index: Some(Arc::new(archive)),
                }) as Arc<dyn PostStore>),
                Some(s.alerts),
                Some(s.webhooks),
                Some(s.summaries),
            ),
            None => {
                let embedded = EmbeddedStore::open(&config.store).with_context(|| {
                    format!("opening the store in {}", config.store.data_dir.display())
                })?;
                let alerts: Arc<dyn AlertStore> =
                    Arc::new(EmbeddedAlerts::open(&embedded).context("opening the alert store")?);
                let webhooks: Arc<dyn WebhookStore> = Arc::new(
                    EmbeddedWebhooks::open(&embedded).context("opening the webhook store")?,
                );
                let summaries: Arc<dyn SummaryStore> = Arc::new(
                    EmbeddedSummaries::open(&embedded).context("opening the summary store")?,
                );
                let store: Arc<dyn Store> = Arc::new(embedded);
                let archive: Arc<dyn PostStore> = Arc::new(archive);
                (
                    Some(store),
                    Some(archive),
                    Some(alerts),
                    Some(webhooks),
                    Some(summaries),
                )
            }
        }
    } else if let Some(s) = shared {
        // A web-only process over the shared store: series, entities,
        // summaries, alerts, webhooks and post listings of every shard (no
        // search: the aggregating processes keep the search indexes).
        (
            Some(s.series),
            Some(Arc::new(SharedPosts {
                posts: s.posts,
                index: None,
            }) as Arc<dyn PostStore>),
            Some(s.alerts),
            Some(s.webhooks),
            Some(s.summaries),
        )
    } else {
        (None, None, None, None, None)
    };
    let cache = if config.store.scylla.enabled() {
        // Other processes write entities this one reads: cached lookups may
        // be behind by at most the TTL.
        HotCache::with_ttl(
            config.store.cache_entries,
            std::time::Duration::from_millis(config.store.scylla.cache_ttl_ms),
        )
    } else {
        HotCache::new(config.store.cache_entries)
    };
    let supervisor = Supervisor::new(config.supervisor.clone()).start();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    // Sinks first, sources last.
    let hub_slot: Slot<Hub> = Slot::default();
    let alert_slot: Slot<AlertActor> = Slot::default();
    let summarizer_slot: Slot<Summarizer> = Slot::default();
    let summary_cache: SummaryCache = moka::sync::Cache::new(config.store.cache_entries);
    let mut aggregators: Vec<Slot<Aggregator>> = Vec::new();
    let mut retention = None;
    // The pipeline's sinks run where posts are aggregated (a web-only
    // process over ScyllaDB has the stores too, to read them).
    if let (true, Some(store), Some(archive)) = (config.runs(Role::Aggregate), &store, &archive) {
        start_sinks(
            &supervisor,
            &config,
            &bus,
            store,
            &cache,
            &hub_slot,
            &mut aggregators,
        )
        .await;
        start_archiver(&supervisor, &config, &bus, archive).await;
        if let Some(alerts) = &alerts {
            start_alerts(&supervisor, &config, &bus, alerts, &hub_slot, &alert_slot).await;
        }
        if let (Some(alerts), Some(webhooks)) = (&alerts, &webhooks) {
            start_webhooks(&supervisor, &config, alerts, webhooks).await;
        }
        if let Some(summaries) = &summaries {
            let deps = SummarizerDeps {
                sources: Sources {
                    store: store.clone(),
                    archive: archive.clone(),
                },
                summaries: summaries.clone(),
                cache: summary_cache.clone(),
                hub: hub_slot.clone(),
                cfg: config.summaries.clone(),
                kol_followers: config.entities.kol_followers,
            };
            start_summarizer(&supervisor, deps, &summarizer_slot).await;
        }
        retention = Some(spawn_retention(
            store.clone(),
            archive.clone(),
            alerts.clone(),
            summaries.clone(),
            &config,
        ));
    }
    if config.runs(Role::Classify) {
        start_classifiers(&supervisor, &config, &bus).await?;
    }
    if config.runs(Role::Ingest) {
        start_connectors(&supervisor, &config, &bus, &stop_rx).await;
    }

    // Every process serves health and metrics; ingest and lookups by role.
    let server = {
        let state = actix_web::web::Data::new(
            AppState::new(
                config.clone(),
                bus.clone(),
                store.clone(),
                archive.clone(),
                cache,
                hub_slot.clone(),
                supervisor.clone(),
            )
            .with_alerts(alerts.clone(), alert_slot.clone())
            .with_webhooks(webhooks.clone())
            .with_summaries(summaries.clone(), summary_cache, summarizer_slot.clone()),
        );
        let (srv, addr) =
            web::bind(state).with_context(|| format!("binding {}", config.http.listen))?;
        (srv.handle(), actix_rt::spawn(srv), addr)
    };
    let http = server.2;
    tracing::info!(roles = ?config.roles, %http, data_dir = %config.store.data_dir.display(), "starling is running");
    on_ready(Ready {
        http,
        roles: config.roles.clone(),
    });

    let (handle, task, _) = server;
    let server_stopped = async {
        let r = task.await;
        tracing::error!(result = ?r, "web server stopped unexpectedly: draining");
    };
    tokio::select! {
        _ = shutdown => tracing::info!("shutdown requested: draining"),
        _ = server_stopped => {}
    }

    // 1. Sources (WebSocket clients are told to go first, so the server's
    //    graceful stop does not wait on them).
    supervisor.do_send(ShuttingDown);
    let _ = stop_tx.send(true);
    if let Some(hub) = hub_slot.get() {
        let _ = hub.send(hub::CloseAll).await;
    }
    handle.stop(true).await;
    // 2. Classifier (only the in-process bus loses what is left on it).
    if in_process {
        wait_until(|| async {
            bus.consumer_stats()
                .await
                .iter()
                .filter(|c| c.durable == crate::bus::CLASSIFY_DURABLE)
                .all(|c| c.pending == 0 && c.ack_pending == 0)
        })
        .await;
    }
    // 3. Aggregators.
    for slot in &aggregators {
        let drain = || Drain {
            until_empty: in_process,
        };
        if let Err(e) = slot.send(drain, DRAIN_PATIENCE).await {
            tracing::error!(error = %e, "an aggregator could not drain");
        }
    }
    // 4. Archiver.
    if in_process {
        wait_until(|| async {
            bus.consumer_stats()
                .await
                .iter()
                .filter(|c| c.durable.starts_with("archive-"))
                .all(|c| c.pending == 0 && c.ack_pending == 0)
        })
        .await;
    }
    // 5. Everything else.
    if let Some(r) = retention {
        r.abort();
    }
    let _ = supervisor.send(StopAll).await;
    bus.close();
    if let Some(store) = store {
        tokio::task::spawn_blocking(move || store.sync())
            .await
            .context("store sync task")?
            .context("syncing the store")?;
    }
    tracing::info!("drained and stopped");
    Ok(())
}

/// The stores a process shares with the others in ScyllaDB.
struct Shared {
    series: Arc<dyn Store>,
    summaries: Arc<dyn SummaryStore>,
    alerts: Arc<dyn AlertStore>,
    webhooks: Arc<dyn WebhookStore>,
    posts: crate::store::scylla::posts::ScyllaPosts,
}

/// Connects to ScyllaDB and opens the shared stores.
async fn open_scylla(config: &Arc<Config>) -> anyhow::Result<Shared> {
    let scylla = &config.store.scylla;
    tracing::info!(nodes = ?scylla.nodes, keyspace = %scylla.keyspace, "using ScyllaDB");
    let c = config.clone();
    let stores = tokio::task::spawn_blocking(move || crate::store::scylla::open(&c))
        .await
        .context("opening ScyllaDB")?
        .with_context(|| format!("opening ScyllaDB at {}", scylla.nodes.join(",")))?;
    Ok(Shared {
        series: Arc::new(stores.series),
        summaries: Arc::new(stores.summaries),
        alerts: Arc::new(stores.alerts),
        webhooks: Arc::new(stores.webhooks),
        posts: stores.posts,
    })
}

/// The hub, the store writer and one aggregator per windowed kind.
async fn start_sinks(
    supervisor: &Addr<Supervisor>,
    config: &Arc<Config>,
    bus: &Arc<dyn Bus>,
    store: &Arc<dyn Store>,
    cache: &HotCache,
    hub_slot: &Slot<Hub>,
    aggregators: &mut Vec<Slot<Aggregator>>,
) {
    let slot = hub_slot.clone();
    add(
        supervisor,
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
    let (feed_bus, feed_cfg, feed_hub) = (bus.clone(), config.bus.clone(), hub_slot.clone());
    add(
        supervisor,
        "live-feed",
        "hub",
        RestartPolicy::Permanent,
        move |c| {
            let (bus, cfg, hub) = (feed_bus.clone(), feed_cfg.clone(), feed_hub.clone());
            LiveFeed::start_in_arbiter(&c.arbiter, move |_| LiveFeed::new(bus, cfg, hub, c.guard));
            Ok(())
        },
    )
    .await;
    let writer_slot: Slot<StoreWriter> = Slot::default();
    let (slot, s, cache2, hub) = (
        writer_slot.clone(),
        store.clone(),
        cache.clone(),
        hub_slot.clone(),
    );
    add(
        supervisor,
        "store-writer",
        "store",
        RestartPolicy::Permanent,
        move |c| {
            let (store, cache, hub) = (s.clone(), cache2.clone(), hub.clone());
            let addr = StoreWriter::start_in_arbiter(&c.arbiter, move |ctx| {
                ctx.set_mailbox_capacity(store_writer::MAILBOX);
                StoreWriter::new(store, cache, hub, c.guard)
            });
            slot.set(addr);
            Ok(())
        },
    )
    .await;
    for kind in EntityKind::windowed() {
        let slot: Slot<Aggregator> = Slot::default();
        aggregators.push(slot.clone());
        let deps = AggregatorDeps {
            bus: bus.clone(),
            store: store.clone(),
            writer: writer_slot.clone(),
            cfg: config.aggregation.clone(),
            bus_cfg: config.bus.clone(),
            shards: config.owned_shards(),
        };
        let name = format!("aggregator-{kind}");
        add(
            supervisor,
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
}

/// The classifier worker pool.
async fn start_classifiers(
    supervisor: &Addr<Supervisor>,
    config: &Arc<Config>,
    bus: &Arc<dyn Bus>,
) -> anyhow::Result<()> {
    let scorer =
        Arc::new(Scorer::for_pipeline(&config.classifier).context("building the classifier tier")?);
    tracing::info!(tier = ?config.classifier.tier, model = scorer.model_id(), "classifier tier ready");
    let extractor = Arc::new(Extractor::new(&config.entities));
    for i in 0..config.classifier.workers {
        let deps = ClassifierDeps {
            bus: bus.clone(),
            scorer: scorer.clone(),
            extractor: extractor.clone(),
            cfg: config.classifier.clone(),
            bus_cfg: config.bus.clone(),
        };
        let name = format!("classifier-{i}");
        add(
            supervisor,
            &name,
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
    Ok(())
}

/// The synthetic generator (when its rate is above 0) and the replays.
async fn start_connectors(
    supervisor: &Addr<Supervisor>,
    config: &Arc<Config>,
    bus: &Arc<dyn Bus>,
    stop_rx: &tokio::sync::watch::Receiver<bool>,
) {
    if config.connectors.synthetic.rate > 0.0 {
        let (cfg, bus, stop) = (
            config.connectors.synthetic.clone(),
            bus.clone(),
            stop_rx.clone(),
        );
        add(
            supervisor,
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
        let name = format!("connector-replay-{i}");
        add(
            supervisor,
            &name,
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
}

/// The archiver, reading the primaries of the shards this process owns.
async fn start_archiver(
    supervisor: &Addr<Supervisor>,
    config: &Arc<Config>,
    bus: &Arc<dyn Bus>,
    archive: &Arc<dyn PostStore>,
) {
    let deps = ArchiverDeps {
        bus: bus.clone(),
        archive: archive.clone(),
        bus_cfg: config.bus.clone(),
        shards: config.owned_shards(),
    };
    add(
        supervisor,
        "archiver",
        "archive",
        RestartPolicy::Permanent,
        move |c| {
            let deps = deps.clone();
            Archiver::start_in_arbiter(&c.arbiter, move |ctx| {
                ctx.set_mailbox_capacity(archiver::MAILBOX);
                Archiver::new(deps, c.guard)
            });
            Ok(())
        },
    )
    .await;
}

/// The alert engine, in the process that owns the store.
async fn start_alerts(
    supervisor: &Addr<Supervisor>,
    config: &Arc<Config>,
    bus: &Arc<dyn Bus>,
    store: &Arc<dyn AlertStore>,
    hub: &Slot<Hub>,
    slot: &Slot<AlertActor>,
) {
    let deps = AlertDeps {
        bus: bus.clone(),
        store: store.clone(),
        cfg: config.alerts.clone(),
        kol_followers: config.entities.kol_followers,
        bus_cfg: config.bus.clone(),
        hub: hub.clone(),
    };
    let slot = slot.clone();
    add(
        supervisor,
        "alerts",
        "alerts",
        RestartPolicy::Permanent,
        move |c| {
            let deps = deps.clone();
            let addr = AlertActor::start_in_arbiter(&c.arbiter, move |ctx| {
                ctx.set_mailbox_capacity(alerts::MAILBOX);
                AlertActor::new(deps, c.guard)
            });
            slot.set(addr);
            Ok(())
        },
    )
    .await;
}

/// The webhook dispatcher (unless `webhooks.enabled` is off): alert events
/// to the endpoints registered over the API.
async fn start_webhooks(
    supervisor: &Addr<Supervisor>,
    config: &Arc<Config>,
    alerts: &Arc<dyn AlertStore>,
    webhooks: &Arc<dyn WebhookStore>,
) {
    if !config.webhooks.enabled {
        tracing::info!("webhook delivery is off (webhooks.enabled = false)");
        return;
    }
    let deps = WebhookDeps {
        alerts: alerts.clone(),
        store: webhooks.clone(),
        cfg: config.webhooks.clone(),
    };
    add(
        supervisor,
        "webhooks",
        "webhooks",
        RestartPolicy::Permanent,
        move |c| {
            let deps = deps.clone();
            Dispatcher::start_in_arbiter(&c.arbiter, move |ctx| {
                ctx.set_mailbox_capacity(webhook_actor::MAILBOX);
                Dispatcher::new(deps, c.guard)
            });
            Ok(())
        },
    )
    .await;
}

/// The summarizer (unless `summaries.enabled` is off), in the process that
/// owns the store.
async fn start_summarizer(
    supervisor: &Addr<Supervisor>,
    deps: SummarizerDeps,
    slot: &Slot<Summarizer>,
) {
    if !deps.cfg.enabled {
        tracing::info!("summaries are off (summaries.enabled = false)");
        return;
    }
    let slot = slot.clone();
    add(
        supervisor,
        "summarizer",
        "summarizer",
        RestartPolicy::Permanent,
        move |c| {
            let deps = deps.clone();
            let addr = Summarizer::start_in_arbiter(&c.arbiter, move |ctx| {
                ctx.set_mailbox_capacity(summarizer::MAILBOX);
                Summarizer::new(deps, c.guard)
            });
            slot.set(addr);
            Ok(())
        },
    )
    .await;
}

/// Every [`RETENTION_EVERY`], drops expired store partitions, archived
/// posts older than `retention_posts_days`, resolved alerts and alert
/// events older than `retention_1h_days` (the longest-kept series they
/// speak about), and summaries older than `summaries.retention_days`.
fn spawn_retention(
    store: Arc<dyn Store>,
    archive: Arc<dyn PostStore>,
    alerts: Option<Arc<dyn AlertStore>>,
    summaries: Option<Arc<dyn SummaryStore>>,
    config: &Config,
) -> actix_rt::task::JoinHandle<()> {
    let cfg = &config.store;
    let days_ms = |days: u64| {
        i64::try_from(days)
            .unwrap_or(i64::MAX / 86_400_000)
            .saturating_mul(86_400_000)
    };
    let (posts_ms, alerts_ms, summaries_ms) = (
        days_ms(cfg.retention_posts_days),
        days_ms(cfg.retention_1h_days),
        days_ms(config.summaries.retention_days),
    );
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(RETENTION_EVERY);
        loop {
            tick.tick().await;
            let (store, archive, alerts, summaries) = (
                store.clone(),
                archive.clone(),
                alerts.clone(),
                summaries.clone(),
            );
            let now = chrono::Utc::now().timestamp_millis();
            let expired = tokio::task::spawn_blocking(move || {
                store.expire(now)?;
                let posts = archive
                    .expire(now.saturating_sub(posts_ms))
                    .map_err(|e| anyhow::anyhow!(e))?;
                crate::telemetry::metrics::ARCHIVE_EXPIRED.add(posts);
                if let Some(alerts) = alerts {
                    alerts.expire(now.saturating_sub(alerts_ms))?;
                }
                if let Some(summaries) = summaries {
                    summaries.expire(now.saturating_sub(summaries_ms))?;
                }
                Ok::<_, anyhow::Error>(())
            });
            match expired.await {
                Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
                Err(e) => tracing::error!(error = %e, "retention task failed"),
                Ok(Ok(())) => {}
            }
        }
    })
}

async fn add(
    supervisor: &Addr<Supervisor>,
    name: &str,
    group: &'static str,
    policy: RestartPolicy,
    factory: impl Fn(ChildContext) -> Result<(), String> + Send + Sync + 'static,
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
