//! The summarizer: writes entity summaries off the data path, so the LLM
//! never holds back the pipeline (it only reads the store and the archive).
//!
//! Every `summaries.interval_s` it queues the `top_n` entities of each
//! configured kind by volume over the last `window_s`; `POST
//! …/summary` queues one entity on demand and waits for it. A pool of
//! `workers` workers takes requests from the queue, each with its own
//! engine (a [`Generator`]), at most `max_per_minute` started per minute.
//! A finished summary is stored, cached (the latest per entity) and pushed
//! to the hub (`summary:update`).
//!
//! - **Superseding.** A request for an entity already queued replaces the
//!   queued one (its waiters get the newer summary); one for a later window
//!   than a summary in progress cancels that generation (counted).
//! - **Failures.** A model that fails to load is retried with doubling
//!   back-off (`load_backoff_s` … `load_backoff_max_s`), counted; until it
//!   loads, summaries are extractive with the reason. Generation errors,
//!   timeouts and refused outputs fall back to extractive per summary.
//!   Nothing here panics the process.
//!
//! Owns: the queue, the engines and the budget (a [`RateLimiter`] bucket). Mailbox: bounded
//! ([`MAILBOX`]); the queue holds at most `summaries.queue` requests, a full
//! queue drops scheduled requests (counted) and refuses on-demand ones.
//! Restart policy: permanent (in-flight generations are aborted on stop).

use super::hub::{Hub, NewSummary};
use super::supervisor::{LifeGuard, Slot};
use crate::actors::aggregator::window::{Resolution, WindowMetrics};
use crate::config::SummariesConfig;
use crate::domain::{EntityKind, EntityRef};
use crate::limit::RateLimiter;
use crate::store::summaries::SummaryStore;
use crate::store::Store;
use crate::summary::model::Summary;
use crate::summary::service::{self, Sources, SummaryError};
use crate::summary::{load_generator, GenerateError, Generator};
use crate::telemetry::metrics;
use actix::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Mailbox capacity.
pub const MAILBOX: usize = 256;

/// Most entities per kind whose window volume is read to rank them.
const RANK_CANDIDATES: usize = 200;

/// The latest summary of every entity that has one, shared with the web
/// handlers.
pub type SummaryCache = moka::sync::Cache<EntityRef, Arc<Summary>>;

/// Why a waiter got no summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryFailure {
    /// Nothing was said about the entity in the window.
    #[error("{0}")]
    NoPosts(String),
    /// Reading the window or storing the summary failed.
    #[error("{0}")]
    Failed(String),
}

/// What a waiter gets: the summary, or why there is none.
pub type SummaryReply = Result<Arc<Summary>, SummaryFailure>;

/// What the summarizer needs.
#[derive(Clone)]
pub struct SummarizerDeps {
    /// Store and archive.
    pub sources: Sources,
    /// Where summaries are kept.
    pub summaries: Arc<dyn SummaryStore>,
    /// Latest summary per entity.
    pub cache: SummaryCache,
    /// Live pushes.
    pub hub: Slot<Hub>,
    /// Settings.
    pub cfg: SummariesConfig,
    /// KOL threshold (representative posts).
    pub kol_followers: u64,
}

/// Why an on-demand request was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The queue is full.
    #[error("the summary queue is full; try again later")]
    QueueFull,
}

/// Summarise `entity` over `from_ms..to_ms`; the receiver gets the result.
#[derive(Message)]
#[rtype(result = "Result<oneshot::Receiver<SummaryReply>, Refused>")]
pub struct Summarize {
    /// The entity.
    pub entity: EntityRef,
    /// Window start (ms).
    pub from_ms: i64,
    /// Window end (ms).
    pub to_ms: i64,
}

/// A queued request.
struct Job {
    entity: EntityRef,
    from_ms: i64,
    to_ms: i64,
    waiters: Vec<oneshot::Sender<SummaryReply>>,
}

/// A request being written.
struct Running {
    /// Tells this run from a later one of the same entity.
    id: u64,
    to_ms: i64,
    worker: usize,
    abort: tokio::task::AbortHandle,
    waiters: Vec<oneshot::Sender<SummaryReply>>,
}

/// A worker's engine.
enum Engine {
    /// No model configured: extractive summaries.
    None,
    /// Loading (first time or retry).
    Loading,
    /// Failed to load; retried later. Holds the error.
    Failed(String),
    /// Loaded.
    Ready(Arc<dyn Generator>),
}

struct Worker {
    engine: Engine,
    busy: bool,
    /// Back-off before the next load attempt.
    backoff: Duration,
}

/// The summarizer actor.
pub struct Summarizer {
    deps: SummarizerDeps,
    queue: VecDeque<Job>,
    running: HashMap<EntityRef, Running>,
    workers: Vec<Worker>,
    /// The budget: `max_per_minute` summaries started a minute.
    budget: RateLimiter,
    /// A pump is scheduled for when the budget refills.
    pump_scheduled: bool,
    next_run: u64,
    _guard: LifeGuard,
}

impl Summarizer {
    /// A summarizer with empty queue and engines not yet loaded.
    pub fn new(deps: SummarizerDeps, guard: LifeGuard) -> Self {
        let configured = deps.cfg.model_path.is_some();
        let workers = (0..deps.cfg.workers)
            .map(|_| Worker {
                engine: if configured {
                    Engine::Loading
                } else {
                    Engine::None
                },
                busy: false,
                backoff: Duration::from_secs(deps.cfg.load_backoff_s),
            })
            .collect();
        Summarizer {
            budget: RateLimiter::new(
                f64::from(deps.cfg.max_per_minute) / 60.0,
                f64::from(deps.cfg.max_per_minute),
            ),
            deps,
            queue: VecDeque::new(),
            running: HashMap::new(),
            workers,
            pump_scheduled: false,
            next_run: 0,
            _guard: guard,
        }
    }

    fn set_gauges(&self) {
        metrics::SUMMARY_QUEUE_DEPTH.set(self.queue.len() as f64);
        let loaded = self
            .workers
            .iter()
            .any(|w| matches!(w.engine, Engine::Ready(_)));
        metrics::SUMMARY_MODEL_LOADED.set(if loaded { 1.0 } else { 0.0 });
    }

    /// Starts loading worker `i`'s engine.
    fn load(&mut self, i: usize, ctx: &mut Context<Self>) {
        self.workers[i].engine = Engine::Loading;
        let cfg = self.deps.cfg.clone();
        ctx.spawn(
            async move { load_generator(&cfg).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    let w = &mut act.workers[i];
                    match res {
                        Ok(Some(g)) => {
                            tracing::info!(worker = i, model = g.model(), "summary model loaded");
                            w.engine = Engine::Ready(g);
                            w.backoff = Duration::from_secs(act.deps.cfg.load_backoff_s);
                        }
                        Ok(None) => w.engine = Engine::None,
                        Err(e @ GenerateError::NotBuilt) => {
                            // Retrying cannot help: the binary lacks the feature.
                            metrics::SUMMARY_MODEL_LOAD_FAILURES.inc();
                            tracing::error!(worker = i, error = %e, "summaries stay extractive");
                            w.engine = Engine::Failed(e.to_string());
                        }
                        Err(e) => {
                            metrics::SUMMARY_MODEL_LOAD_FAILURES.inc();
                            let wait = w.backoff;
                            tracing::error!(worker = i, error = %e, retry_in_s = wait.as_secs(), "summary model failed to load: extractive summaries until it does");
                            w.engine = Engine::Failed(e.to_string());
                            w.backoff = (wait * 2)
                                .min(Duration::from_secs(act.deps.cfg.load_backoff_max_s));
                            ctx.run_later(wait, move |act, ctx| act.load(i, ctx));
                        }
                    }
                    act.set_gauges();
                    act.pump(ctx);
                }),
        );
    }

    /// Queues a request, superseding what is queued or running for the
    /// same entity. `Err` gives the job back when the queue is full.
    fn enqueue(&mut self, mut job: Job) -> Result<(), Job> {
        if let Some(r) = self.running.get(&job.entity) {
            if job.to_ms > r.to_ms {
                if let Some(r) = self.running.remove(&job.entity) {
                    r.abort.abort();
                    metrics::SUMMARY_CANCELLED.inc();
                    self.workers[r.worker].busy = false;
                    job.waiters.extend(r.waiters);
                }
            }
        }
        if let Some(q) = self.queue.iter_mut().find(|q| q.entity == job.entity) {
            if job.to_ms >= q.to_ms {
                q.from_ms = job.from_ms;
                q.to_ms = job.to_ms;
            }
            q.waiters.append(&mut job.waiters);
            return Ok(());
        }
        if self.queue.len() >= self.deps.cfg.queue {
            return Err(job);
        }
        self.queue.push_back(job);
        Ok(())
    }

    /// Starts queued requests on free workers while the budget allows.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while !self.queue.is_empty() {
            let Some(worker) = self.workers.iter().position(|w| !w.busy) else {
                break;
            };
            // Requests for an entity being written wait for it.
            let Some(at) = self
                .queue
                .iter()
                .position(|j| !self.running.contains_key(&j.entity))
            else {
                break;
            };
            if let Err(wait_s) = self.budget.take("") {
                if !self.pump_scheduled {
                    self.pump_scheduled = true;
                    ctx.run_later(Duration::from_secs(wait_s), |act, ctx| {
                        act.pump_scheduled = false;
                        act.pump(ctx);
                    });
                }
                break;
            }
            let Some(job) = self.queue.remove(at) else {
                break;
            };
            self.start(worker, job, ctx);
        }
        self.set_gauges();
    }

    fn start(&mut self, worker: usize, job: Job, ctx: &mut Context<Self>) {
        let (generator, reason) = match &self.workers[worker].engine {
            Engine::Ready(g) => (Some(g.clone()), None),
            Engine::None => (None, None),
            Engine::Loading => (None, Some("model not loaded yet".to_string())),
            Engine::Failed(e) => (None, Some(format!("model not loaded: {e}"))),
        };
        self.workers[worker].busy = true;
        let (deps, entity) = (self.deps.clone(), job.entity.clone());
        let (from_ms, to_ms) = (job.from_ms, job.to_ms);
        let task = actix_rt::spawn(async move {
            let mut summary = service::summarize(
                &deps.sources,
                generator.as_deref(),
                &entity,
                from_ms,
                to_ms,
                &deps.cfg,
                deps.kol_followers,
            )
            .await?;
            if summary.fallback_reason.is_none() && reason.is_some() {
                metrics::SUMMARY_FALLBACKS.inc();
                summary.fallback_reason = reason;
            }
            let summary = Arc::new(summary);
            let store = deps.summaries.clone();
            let stored = summary.clone();
            tokio::task::spawn_blocking(move || store.save(&stored))
                .await
                .map_err(|e| SummaryError::Task(e.to_string()))??;
            Ok::<_, SummaryError>(summary)
        });
        self.next_run += 1;
        let id = self.next_run;
        self.running.insert(
            job.entity.clone(),
            Running {
                id,
                to_ms: job.to_ms,
                worker,
                abort: task.abort_handle(),
                waiters: job.waiters,
            },
        );
        let entity = job.entity;
        ctx.spawn(task.into_actor(self).map(move |res, act, ctx| {
            let Ok(res) = res else {
                // Aborted: superseded (its worker and waiters moved on) or
                // stopping.
                return;
            };
            if act.running.get(&entity).is_none_or(|r| r.id != id) {
                // Superseded after it finished: the newer run owns the entry.
                return;
            }
            let Some(run) = act.running.remove(&entity) else {
                return;
            };
            act.workers[run.worker].busy = false;
            let reply: SummaryReply = match res {
                Ok(summary) => {
                    act.deps.cache.insert(entity.clone(), summary.clone());
                    if let Some(hub) = act.deps.hub.get() {
                        hub.do_send(NewSummary(summary.clone()));
                    }
                    Ok(summary)
                }
                Err(e @ SummaryError::NoPosts { .. }) => {
                    tracing::debug!(error = %e, "no summary");
                    Err(SummaryFailure::NoPosts(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(entity = %format!("{}:{}", entity.kind, entity.id), error = %e, "summary failed");
                    Err(SummaryFailure::Failed(e.to_string()))
                }
            };
            for w in run.waiters {
                let _ = w.send(reply.clone());
            }
            act.pump(ctx);
        }));
    }

    /// Queues the most active entities of every configured kind.
    fn schedule_round(&mut self, ctx: &mut Context<Self>) {
        let now = chrono::Utc::now().timestamp_millis();
        let (from_ms, to_ms) = service::ending_at(self.deps.cfg.window_s as i64 * 1_000, now);
        let (store, kinds, top_n) = (
            self.deps.sources.store.clone(),
            self.deps.cfg.kinds.clone(),
            self.deps.cfg.top_n,
        );
        let ranked = tokio::task::spawn_blocking(move || {
            kinds
                .into_iter()
                .map(|kind| most_active(store.as_ref(), kind, from_ms, to_ms, top_n))
                .collect::<Result<Vec<_>, _>>()
        });
        ctx.spawn(ranked.into_actor(self).map(move |res, act, ctx| {
            let entities = match res {
                Ok(Ok(lists)) => lists.into_iter().flatten().collect::<Vec<_>>(),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "ranking entities for summaries failed");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ranking task failed");
                    return;
                }
            };
            for entity in entities {
                let job = Job {
                    entity,
                    from_ms,
                    to_ms,
                    waiters: Vec::new(),
                };
                if act.enqueue(job).is_err() {
                    metrics::SUMMARY_DROPPED.inc();
                }
            }
            act.pump(ctx);
        }));
    }
}

/// The `n` entities of `kind` with the most posts in `from_ms..to_ms`
/// (among the [`RANK_CANDIDATES`] with most posts ever that were seen in
/// the window), most active first; entities without posts in it are left
/// out.
pub fn most_active(
    store: &dyn Store,
    kind: EntityKind,
    from_ms: i64,
    to_ms: i64,
    n: usize,
) -> Result<Vec<EntityRef>, crate::store::StoreError> {
    let mut seen = store.entities(kind, from_ms)?;
    seen.sort_by(|a, b| {
        b.1.totals
            .volume
            .cmp(&a.1.totals.volume)
            .then(a.0.cmp(&b.0))
    });
    seen.truncate(RANK_CANDIDATES);
    let mut ranked = Vec::with_capacity(seen.len());
    for (id, _) in seen {
        let mut m = WindowMetrics::default();
        for (_, w) in store.series(kind, &id, Resolution::Minute, from_ms, to_ms - 1)? {
            m.merge(&w);
        }
        if m.volume > 0 {
            ranked.push((m.volume, id));
        }
    }
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(ranked
        .into_iter()
        .take(n)
        .map(|(_, id)| EntityRef::new(kind, id))
        .collect())
}

impl Actor for Summarizer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for i in 0..self.workers.len() {
            if matches!(self.workers[i].engine, Engine::Loading) {
                self.load(i, ctx);
            }
        }
        self.set_gauges();
        let every = Duration::from_secs(self.deps.cfg.interval_s);
        ctx.run_interval(every, |act, ctx| act.schedule_round(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for (_, r) in self.running.drain() {
            r.abort.abort();
        }
        metrics::SUMMARY_QUEUE_DEPTH.set(0.0);
    }
}

impl Handler<Summarize> for Summarizer {
    type Result = Result<oneshot::Receiver<SummaryReply>, Refused>;

    fn handle(&mut self, msg: Summarize, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            entity: msg.entity,
            from_ms: msg.from_ms,
            to_ms: msg.to_ms,
            waiters: vec![tx],
        };
        self.enqueue(job).map_err(|_| Refused::QueueFull)?;
        self.pump(ctx);
        Ok(rx)
    }
}
