//! The supervisor: starts every stage's actor from a factory, restarts it
//! with capped exponential back-off when it fails, counts restarts and
//! exposes each child's state (`/api/admin/actors`).
//!
//! Each child runs on its own [`Arbiter`] (thread), so blocking storage calls
//! in one stage never stall another. A child owns a [`LifeGuard`]; when the
//! actor is dropped (it stopped, or a panic unwound through it) the guard
//! tells the supervisor, which restarts it unless it finished cleanly or the
//! pipeline is shutting down. A panic kills only the task running that actor:
//! the process, the arbiter and every other actor carry on.
//!
//! Mailbox: control messages only (status, child exits), unbounded because
//! they are rare and must never be lost. Restart policy of the supervisor
//! itself: none (it owns nothing that can panic on input).

use crate::config::SupervisorConfig;
use crate::telemetry::metrics;
use actix::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What happens when a child stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicy {
    /// Restart after any exit, clean or not (consumers, the store writer).
    Permanent,
    /// Restart only after a failure (a replay that finished stays finished).
    Transient,
}

/// What the factory gets to start one incarnation of a child.
pub struct ChildContext {
    /// The arbiter to start the actor on.
    pub arbiter: ArbiterHandle,
    /// The guard the actor must own for its whole life.
    pub guard: LifeGuard,
}

/// Starts one incarnation of a child; errors are retried like a crash.
pub type Factory = Arc<dyn Fn(ChildContext) -> Result<(), String> + Send + Sync>;

/// A child's definition.
pub struct ChildSpec {
    /// Unique name (`aggregator-project`, `classifier-0`).
    pub name: String,
    /// Group, for ordered shutdown (`connector`, `classifier`, …).
    pub group: &'static str,
    /// Restart policy.
    pub policy: RestartPolicy,
    /// How to start it.
    pub factory: Factory,
}

/// Runs a consumer actor's work loop on its context and stops the actor
/// when the loop ends. `Ok`, or an error `at_shutdown` recognises (the bus
/// closing when the process stops), is a clean end; any other error is the
/// child's failure, recorded in the guard `guard` points at, and the
/// supervisor restarts it after its back-off.
pub fn run_work<A, E>(
    act: &mut A,
    ctx: &mut Context<A>,
    work: impl std::future::Future<Output = Result<(), E>> + 'static,
    guard: fn(&mut A) -> &mut LifeGuard,
    at_shutdown: fn(&E) -> bool,
) where
    A: Actor<Context = Context<A>>,
    E: std::fmt::Display + 'static,
{
    ctx.spawn(work.into_actor(act).map(move |res, act, ctx| {
        if let Err(e) = res {
            if !at_shutdown(&e) {
                guard(act).fail(e.to_string());
            }
        }
        ctx.stop();
    }));
}

/// Owned by a supervised actor; reports its end to the supervisor on drop.
pub struct LifeGuard {
    name: String,
    generation: u64,
    supervisor: Addr<Supervisor>,
    outcome: Option<String>,
    finished: bool,
}

impl LifeGuard {
    /// The child finished its work and should not be restarted (transient children).
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The child is stopping because of `error` (restart after back-off).
    pub fn fail(&mut self, error: impl Into<String>) {
        self.outcome = Some(error.into());
    }

    /// Name of the child.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for LifeGuard {
    fn drop(&mut self) {
        let panicked = std::thread::panicking();
        let exit = if panicked {
            Exit::Panicked
        } else if let Some(e) = self.outcome.take() {
            Exit::Failed(e)
        } else if self.finished {
            Exit::Finished
        } else {
            Exit::Stopped
        };
        self.supervisor.do_send(ChildExited {
            name: std::mem::take(&mut self.name),
            generation: self.generation,
            exit,
        });
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Exit {
    Panicked,
    Failed(String),
    Finished,
    Stopped,
}

/// A child's state as shown by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChildState {
    /// Running.
    Running,
    /// Waiting for its back-off before a restart.
    Restarting,
    /// Finished its work (not restarted).
    Finished,
    /// Stopped for shutdown.
    Stopped,
}

/// One child's status.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChildStatus {
    /// Name.
    pub name: String,
    /// Group.
    pub group: &'static str,
    /// Restart policy.
    pub policy: RestartPolicy,
    /// Current state.
    pub state: ChildState,
    /// Restarts so far.
    pub restarts: u64,
    /// Of those, after a panic.
    pub panics: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// Seconds since the current incarnation started.
    pub uptime_s: f64,
}

struct Child {
    spec: ChildSpec,
    arbiter: Arbiter,
    generation: u64,
    state: ChildState,
    restarts: u64,
    panics: u64,
    last_error: Option<String>,
    started_at: Instant,
    backoff: Duration,
}

/// The supervisor actor.
pub struct Supervisor {
    cfg: SupervisorConfig,
    children: BTreeMap<String, Child>,
    shutting_down: bool,
}

impl Supervisor {
    /// A supervisor with no children yet.
    pub fn new(cfg: SupervisorConfig) -> Self {
        Supervisor {
            cfg,
            children: BTreeMap::new(),
            shutting_down: false,
        }
    }

    fn start_child(&mut self, name: &str, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        child.generation += 1;
        child.started_at = Instant::now();
        let guard = LifeGuard {
            name: name.to_string(),
            generation: child.generation,
            supervisor: me,
            outcome: None,
            finished: false,
        };
        let started = (child.spec.factory)(ChildContext {
            arbiter: child.arbiter.handle(),
            guard,
        });
        match started {
            Ok(()) => {
                child.state = ChildState::Running;
                tracing::info!(child = name, generation = child.generation, "actor started");
            }
            // The guard was dropped by the factory: ChildExited(Stopped) is on its way;
            // record why so the restart shows it.
            Err(e) => {
                tracing::error!(child = name, error = %e, "actor failed to start");
                child.last_error = Some(e);
            }
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

/// Adds and starts a child.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddChild(pub ChildSpec);

impl Handler<AddChild> for Supervisor {
    type Result = ();

    fn handle(&mut self, AddChild(spec): AddChild, ctx: &mut Context<Self>) {
        let name = spec.name.clone();
        let backoff = Duration::from_millis(self.cfg.backoff_initial_ms);
        self.children.insert(
            name.clone(),
            Child {
                spec,
                arbiter: Arbiter::new(),
                generation: 0,
                state: ChildState::Restarting,
                restarts: 0,
                panics: 0,
                last_error: None,
                started_at: Instant::now(),
                backoff,
            },
        );
        self.start_child(&name, ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct ChildExited {
    name: String,
    generation: u64,
    exit: Exit,
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        let shutting_down = self.shutting_down;
        let cfg = self.cfg.clone();
        let Some(child) = self.children.get_mut(&msg.name) else {
            return;
        };
        if msg.generation != child.generation {
            return; // an older incarnation
        }
        let restart = match (&msg.exit, child.spec.policy) {
            _ if shutting_down => false,
            (Exit::Finished, _) => false,
            (Exit::Stopped, RestartPolicy::Transient) => false,
            _ => true,
        };
        match &msg.exit {
            Exit::Panicked => {
                child.panics += 1;
                child.last_error = Some("panicked".into());
                metrics::ACTOR_PANICS.inc();
                tracing::error!(child = %msg.name, "actor panicked");
            }
            Exit::Failed(e) => {
                child.last_error = Some(e.clone());
                tracing::error!(child = %msg.name, error = %e, "actor failed");
            }
            Exit::Finished | Exit::Stopped => {
                tracing::info!(child = %msg.name, exit = ?msg.exit, "actor stopped");
            }
        }
        if !restart {
            child.state = if matches!(msg.exit, Exit::Finished) {
                ChildState::Finished
            } else {
                ChildState::Stopped
            };
            return;
        }
        if child.started_at.elapsed() >= Duration::from_secs(cfg.backoff_reset_after_s) {
            child.backoff = Duration::from_millis(cfg.backoff_initial_ms);
        }
        let delay = child.backoff;
        child.backoff = (child.backoff * 2).min(Duration::from_millis(cfg.backoff_max_ms));
        child.state = ChildState::Restarting;
        child.restarts += 1;
        metrics::ACTOR_RESTARTS.inc();
        tracing::warn!(child = %msg.name, delay_ms = delay.as_millis() as u64, "restarting actor after back-off");
        let name = msg.name.clone();
        ctx.run_later(delay, move |act, ctx| {
            let still_waiting = act
                .children
                .get(&name)
                .is_some_and(|c| c.state == ChildState::Restarting);
            if still_waiting && !act.shutting_down {
                act.start_child(&name, ctx);
            }
        });
    }
}

/// The status of every child.
#[derive(Message)]
#[rtype(result = "Vec<ChildStatus>")]
pub struct GetStatus;

impl Handler<GetStatus> for Supervisor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.children
                .iter()
                .map(|(name, c)| ChildStatus {
                    name: name.clone(),
                    group: c.spec.group,
                    policy: c.spec.policy,
                    state: c.state.clone(),
                    restarts: c.restarts,
                    panics: c.panics,
                    last_error: c.last_error.clone(),
                    uptime_s: c.started_at.elapsed().as_secs_f64(),
                })
                .collect(),
        )
    }
}

/// Stop restarting children: the pipeline is shutting down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShuttingDown;

impl Handler<ShuttingDown> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: ShuttingDown, _: &mut Context<Self>) {
        self.shutting_down = true;
    }
}

/// Stops every child's arbiter (after the pipeline drained).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAll;

impl Handler<StopAll> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: StopAll, _: &mut Context<Self>) {
        self.shutting_down = true;
        for child in self.children.values_mut() {
            child.arbiter.stop();
            if child.state == ChildState::Running || child.state == ChildState::Restarting {
                child.state = ChildState::Stopped;
            }
        }
    }
}

/// The current address of a supervised actor, refreshed at every restart, so
/// that callers keep working across restarts.
pub struct Slot<A: Actor> {
    addr: Arc<parking_lot::RwLock<Option<Addr<A>>>>,
}

impl<A: Actor> Clone for Slot<A> {
    fn clone(&self) -> Self {
        Slot {
            addr: Arc::clone(&self.addr),
        }
    }
}

impl<A: Actor> Default for Slot<A> {
    fn default() -> Self {
        Slot {
            addr: Arc::new(parking_lot::RwLock::new(None)),
        }
    }
}

impl<A: Actor> Slot<A> {
    /// Records the address of a new incarnation.
    pub fn set(&self, addr: Addr<A>) {
        *self.addr.write() = Some(addr);
    }

    /// The current address, if the actor is up.
    pub fn get(&self) -> Option<Addr<A>> {
        self.addr.read().clone()
    }
}

impl<A> Slot<A>
where
    A: Actor<Context = Context<A>>,
{
    /// Sends `make()` to the current incarnation, awaiting mailbox capacity;
    /// if the actor is down (restarting), waits and tries again up to `patience`.
    pub async fn send<M>(
        &self,
        make: impl Fn() -> M,
        patience: Duration,
    ) -> Result<M::Result, MailboxError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
    {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(addr) = self.get() {
                match addr.send(make()).await {
                    Ok(r) => return Ok(r),
                    Err(MailboxError::Timeout) => return Err(MailboxError::Timeout),
                    Err(MailboxError::Closed) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(MailboxError::Closed);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
