//! The alert actor: runs the [`Engine`] on the enriched stream, persists
//! what it raises, updates and resolves ([`AlertStore`], which logs every
//! event for the webhook dispatcher), and pushes the events to WebSocket
//! subscribers through the hub.
//!
//! It reads the primary copy of every post (durable `alerts`), so it sees
//! each post once whatever the shard count. One process runs the engine:
//! the one that owns the embedded store, or, when processes share ScyllaDB,
//! the one holding the store's claim ([`AlertStore::claim`]). The others
//! stand by, claiming every third of the claim's TTL, and take over when
//! the holder stops renewing; the holder renews at the same pace and
//! reloads the rules then (any process may change them). A batch is
//! acknowledged only after the changes it caused are stored, so a crash
//! loses no alert; after a restart or a take-over the engine resumes the
//! unresolved alerts from the store (a re-delivered churn post joins its
//! group once) and rebuilds its baselines over `alerts.warmup_s`.
//!
//! Lifecycle requests from the API (acknowledge, resolve) and rule changes
//! reach the engine through [`Command`]s, answered once stored.
//!
//! Owns: the engine and its consumer. Mailbox: bounded ([`MAILBOX`]);
//! commands queue in a channel of the same bound. Restart policy: permanent.

use super::hub::{Hub, NewAlert};
use super::supervisor::{run_work, LifeGuard, Slot};
use crate::alerts::engine::{Change, Engine, LifecycleError};
use crate::alerts::model::{Alert, AlertEvent, AlertEventType};
use crate::bus::{pipeline_consumer, Bus, BusError, ALERTS_DURABLE};
use crate::config::{AlertsConfig, BusConfig};
use crate::store::alerts::AlertStore;
use crate::store::StoreError;
use crate::telemetry::metrics;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Mailbox capacity (and command queue bound).
pub const MAILBOX: usize = 64;

/// How long a fetch waits for posts before the engine looks at the clock
/// and its commands.
const FETCH_WAIT: Duration = Duration::from_millis(250);
/// How often wall time advances the engine when posts are few.
const TICK: Duration = Duration::from_secs(1);

/// Errors that stop the alert actor (the supervisor restarts it).
#[derive(Debug, thiserror::Error)]
pub enum AlertActorError {
    /// The bus failed.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A blocking store task failed.
    #[error("store task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Another process took the claim (this one stopped renewing in time).
    #[error("another process took the alert engine's claim")]
    LostClaim,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The alert is not open or acknowledged.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The change could not be stored.
    #[error("store: {0}")]
    Store(String),
    /// The engine is not running (restarting, or not in this process).
    #[error("the alert engine is not running")]
    Unavailable,
    /// Another process sharing the store runs the engine.
    #[error("the alert engine runs in another process ({0})")]
    Elsewhere(String),
}

/// A request to the engine from the API (of this process, or of another
/// one through the bus: [`ALERT_SERVICE`]).
#[derive(Debug, Clone, Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<Option<Alert>, CommandError>")]
pub enum Command {
    /// Acknowledge an alert.
    Acknowledge(String),
    /// Resolve an alert by hand.
    Resolve(String),
    /// The custom rules changed in the store: reload them.
    ReloadRules,
}

type Reply = oneshot::Sender<Result<Option<Alert>, CommandError>>;

/// What the actor needs.
#[derive(Clone)]
pub struct AlertDeps {
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// Alerts, rules and the event log.
    pub store: Arc<dyn AlertStore>,
    /// The rules' settings.
    pub cfg: AlertsConfig,
    /// Followers from which an author is a KOL.
    pub kol_followers: u64,
    /// Consumer settings.
    pub bus_cfg: BusConfig,
    /// Where events are pushed to WebSocket clients.
    pub hub: Slot<Hub>,
}

/// The alert actor.
pub struct AlertActor {
    deps: Option<AlertDeps>,
    cmd_tx: mpsc::Sender<(Command, Reply)>,
    cmd_rx: Option<mpsc::Receiver<(Command, Reply)>>,
    guard: LifeGuard,
}

impl AlertActor {
    /// An alert actor.
    pub fn new(deps: AlertDeps, guard: LifeGuard) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::channel(MAILBOX);
        AlertActor {
            deps: Some(deps),
            cmd_tx,
            cmd_rx: Some(cmd_rx),
            guard,
        }
    }
}

impl Actor for AlertActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (Some(deps), Some(rx)) = (self.deps.take(), self.cmd_rx.take()) else {
            return;
        };
        run_work(
            self,
            ctx,
            run(deps, rx),
            |a| &mut a.guard,
            |e| matches!(e, AlertActorError::Bus(BusError::Closed)),
        );
    }
}

impl Handler<Command> for AlertActor {
    type Result = ResponseFuture<Result<Option<Alert>, CommandError>>;

    fn handle(&mut self, cmd: Command, _: &mut Context<Self>) -> Self::Result {
        let tx = self.cmd_tx.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            tx.send((cmd, reply))
                .await
                .map_err(|_| CommandError::Unavailable)?;
            answer.await.map_err(|_| CommandError::Unavailable)?
        })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn run(
    deps: AlertDeps,
    mut commands: mpsc::Receiver<(Command, Reply)>,
) -> Result<(), AlertActorError> {
    if !stand_by(&deps, &mut commands).await? {
        return Ok(());
    }
    let renew_every = deps.store.claim_ttl().map(|ttl| ttl / 3);
    let mut last_renew = Instant::now();
    let store = deps.store.clone();
    let (rules, unresolved) = tokio::task::spawn_blocking(move || {
        Ok::<_, StoreError>((store.rules()?, store.unresolved()?))
    })
    .await??;
    tracing::info!(
        rules = rules.len(),
        unresolved = unresolved.len(),
        "alert engine starting"
    );
    let mut engine = Engine::new(deps.cfg.clone(), deps.kol_followers, rules, unresolved);
    let spec = pipeline_consumer(&deps.bus_cfg, ALERTS_DURABLE)
        .ok_or_else(|| BusError::UnknownConsumer(ALERTS_DURABLE.into()))?;
    let mut consumer = deps.bus.consumer(spec).await?;
    // With a shared store, the API of the other processes sends lifecycle
    // changes here.
    let mut remote = match renew_every {
        Some(_) => Some(deps.bus.serve(ALERT_SERVICE).await?),
        None => None,
    };
    let mut last_tick = Instant::now();
    loop {
        let batch = consumer.fetch(512, FETCH_WAIT).await?;
        let mut changes = Vec::new();
        let mut done = Vec::with_capacity(batch.len());
        for d in batch {
            match d.enriched() {
                Ok(p) => changes.extend(engine.on_post(&p, now_ms())),
                // The classifier wrote it: a payload that is not a post is
                // dead-lettered with the reason, not retried.
                Err(e) => {
                    d.term(&format!("not an enriched post: {e}")).await?;
                    continue;
                }
            }
            done.push(d);
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            changes.extend(engine.tick(now_ms()));
        }
        if renew_every.is_some_and(|every| last_renew.elapsed() >= every) {
            last_renew = Instant::now();
            let store = deps.store.clone();
            let (held, rules) = tokio::task::spawn_blocking(move || {
                Ok::<_, StoreError>((store.claim()?, store.rules()?))
            })
            .await??;
            if !held {
                return Err(AlertActorError::LostClaim);
            }
            // Rules may have changed in any process sharing the store.
            changes.extend(engine.set_rules(rules));
        }
        persist(&deps, changes).await?;
        for d in done {
            d.ack().await?;
        }
        while let Ok((cmd, reply)) = commands.try_recv() {
            let answer = command(&deps, &mut engine, cmd).await;
            let _ = reply.send(answer);
        }
        while let Some(Ok((payload, reply))) = remote.as_mut().map(|r| r.try_recv()) {
            let answer = match serde_json::from_slice::<Command>(&payload) {
                Ok(cmd) => Remote::from(command(&deps, &mut engine, cmd).await),
                Err(e) => Remote::Failed(format!("not a command: {e}")),
            };
            let _ = reply.send(serde_json::to_vec(&answer).unwrap_or_default().into());
        }
    }
}

/// The bus service of the process running the alert engine: lifecycle
/// changes asked on another process sharing the store.
pub const ALERT_SERVICE: &str = "alerts";

/// The answer to a [`Command`] sent over the bus.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Remote {
    /// The changed alert.
    Done(Option<Box<Alert>>),
    /// The alert is not open or acknowledged (or unknown).
    NotOpen,
    /// The engine could not do it.
    Failed(String),
}

impl From<Result<Option<Alert>, CommandError>> for Remote {
    fn from(r: Result<Option<Alert>, CommandError>) -> Self {
        match r {
            Ok(a) => Remote::Done(a.map(Box::new)),
            Err(CommandError::Lifecycle(LifecycleError::NotOpen(_))) => Remote::NotOpen,
            Err(e) => Remote::Failed(e.to_string()),
        }
    }
}

/// Asks the process running the alert engine, over the bus, to carry out
/// `cmd` (this process does not run it).
pub async fn ask_remote(
    bus: &dyn crate::bus::Bus,
    cmd: &Command,
) -> Result<Option<Alert>, CommandError> {
    let payload = serde_json::to_vec(cmd).map_err(|e| CommandError::Store(e.to_string()))?;
    let answer = bus
        .call(ALERT_SERVICE, payload.into(), REMOTE_WAIT)
        .await
        .map_err(|e| CommandError::Elsewhere(format!("it does not answer: {e}")))?;
    match serde_json::from_slice::<Remote>(&answer) {
        Ok(Remote::Done(a)) => Ok(a.map(|a| *a)),
        Ok(Remote::NotOpen) => Err(CommandError::Lifecycle(LifecycleError::NotOpen(
            match cmd {
                Command::Acknowledge(id) | Command::Resolve(id) => id.clone(),
                Command::ReloadRules => String::new(),
            },
        ))),
        Ok(Remote::Failed(m)) => Err(CommandError::Store(m)),
        Err(e) => Err(CommandError::Store(format!(
            "an answer that is not one: {e}"
        ))),
    }
}

/// How long a remote lifecycle change may take.
const REMOTE_WAIT: Duration = Duration::from_secs(5);

/// Waits until this process may run the engine (at once unless the store
/// is shared); meanwhile answers commands: lifecycle changes belong to the
/// process that runs it. `false`: the actor is going away.
async fn stand_by(
    deps: &AlertDeps,
    commands: &mut mpsc::Receiver<(Command, Reply)>,
) -> Result<bool, AlertActorError> {
    let Some(ttl) = deps.store.claim_ttl() else {
        return Ok(true);
    };
    let mut told = false;
    loop {
        let store = deps.store.clone();
        match tokio::task::spawn_blocking(move || store.claim()).await? {
            Ok(true) => return Ok(true),
            Ok(false) if !told => {
                told = true;
                tracing::info!(holder = ?deps.store.claimed_by(), "another process runs the alert engine; standing by");
            }
            Ok(false) => {}
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "cannot claim the alert engine now")
            }
            Err(e) => return Err(e.into()),
        }
        let pause = tokio::time::sleep(ttl / 3);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                cmd = commands.recv() => {
                    let Some((cmd, reply)) = cmd else { return Ok(false) };
                    let holder = deps.store.claimed_by().unwrap_or_else(|| "unknown".into());
                    let _ = reply.send(match cmd {
                        // The engine that runs reloads the rules itself.
                        Command::ReloadRules => Ok(None),
                        _ => Err(CommandError::Elsewhere(holder)),
                    });
                }
            }
        }
    }
}

async fn command(
    deps: &AlertDeps,
    engine: &mut Engine,
    cmd: Command,
) -> Result<Option<Alert>, CommandError> {
    let changes = match cmd {
        Command::Acknowledge(id) => vec![engine.acknowledge(&id, now_ms())?],
        Command::Resolve(id) => vec![engine.resolve(&id, now_ms())?],
        Command::ReloadRules => {
            let store = deps.store.clone();
            let rules = tokio::task::spawn_blocking(move || store.rules())
                .await
                .map_err(|e| CommandError::Store(e.to_string()))?
                .map_err(|e| CommandError::Store(e.to_string()))?;
            engine.set_rules(rules)
        }
    };
    let first = changes.first().map(|c| c.alert.clone());
    persist(deps, changes)
        .await
        .map_err(|e| CommandError::Store(e.to_string()))?;
    Ok(first)
}

/// Stores the changes (events logged in order) and pushes their events.
async fn persist(deps: &AlertDeps, changes: Vec<Change>) -> Result<(), AlertActorError> {
    if changes.is_empty() {
        return Ok(());
    }
    let store = deps.store.clone();
    let at = now_ms();
    let logged: Vec<AlertEvent> = tokio::task::spawn_blocking(move || {
        let mut logged = Vec::new();
        for c in changes {
            match c.event {
                Some(event) => logged.push(store.record(&c.alert, event, at)?),
                None => store.save(&c.alert)?,
            }
        }
        Ok::<_, StoreError>(logged)
    })
    .await??;
    for e in logged {
        match e.event {
            AlertEventType::Raised => {
                metrics::ALERTS_RAISED.inc();
                tracing::info!(id = %e.alert.id, kind = e.alert.kind.as_str(), entity = %format!("{}:{}", e.alert.entity.kind, e.alert.entity.id), severity = e.alert.severity, "alert raised");
            }
            AlertEventType::Resolved => metrics::ALERTS_RESOLVED.inc(),
            _ => {}
        }
        if let Some(hub) = deps.hub.get() {
            if hub.try_send(NewAlert(Arc::new(e))).is_err() {
                metrics::HUB_EVENTS_DROPPED.inc();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::{AlertEventType, Rule};
    use crate::store::alerts::{AlertPage, AlertQuery};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A shared store whose claim another process holds for the first
    /// `busy` attempts. Only the claim is used by `stand_by`.
    struct Claimed {
        busy: u32,
        tries: AtomicU32,
    }

    impl AlertStore for Claimed {
        fn record(&self, _: &Alert, _: AlertEventType, _: i64) -> Result<AlertEvent, StoreError> {
            unreachable!("standing by writes nothing")
        }
        fn save(&self, _: &Alert) -> Result<(), StoreError> {
            unreachable!()
        }
        fn alert(&self, _: &str) -> Result<Option<Alert>, StoreError> {
            unreachable!()
        }
        fn alerts(&self, _: &AlertQuery) -> Result<AlertPage, StoreError> {
            unreachable!()
        }
        fn unresolved(&self) -> Result<Vec<Alert>, StoreError> {
            unreachable!()
        }
        fn events_after(&self, _: u64, _: usize) -> Result<Vec<AlertEvent>, StoreError> {
            unreachable!()
        }
        fn watch_seq(&self) -> tokio::sync::watch::Receiver<u64> {
            unreachable!()
        }
        fn put_rule(&self, _: &Rule) -> Result<(), StoreError> {
            unreachable!()
        }
        fn rule(&self, _: &str) -> Result<Option<Rule>, StoreError> {
            unreachable!()
        }
        fn rules(&self) -> Result<Vec<Rule>, StoreError> {
            unreachable!()
        }
        fn delete_rule(&self, _: &str) -> Result<bool, StoreError> {
            unreachable!()
        }
        fn expire(&self, _: i64) -> Result<usize, StoreError> {
            unreachable!()
        }
        fn claim(&self) -> Result<bool, StoreError> {
            Ok(self.tries.fetch_add(1, Ordering::SeqCst) >= self.busy)
        }
        fn claim_ttl(&self) -> Option<Duration> {
            Some(Duration::from_millis(60))
        }
        fn claimed_by(&self) -> Option<String> {
            Some("host-b/42".into())
        }
    }

    fn deps(store: Arc<dyn AlertStore>) -> AlertDeps {
        AlertDeps {
            bus: Arc::new(crate::bus::memory::MemoryBus::new(&BusConfig::default())),
            store,
            cfg: AlertsConfig::default(),
            kol_followers: 0,
            bus_cfg: BusConfig::default(),
            hub: Slot::default(),
        }
    }

    #[tokio::test]
    async fn a_process_stands_by_while_another_runs_the_engine() {
        let store = Arc::new(Claimed {
            busy: 3,
            tries: AtomicU32::new(0),
        });
        let deps = deps(store.clone());
        let (tx, mut rx) = mpsc::channel(4);
        let standing = tokio::spawn(async move { stand_by(&deps, &mut rx).await });
        let ask = |cmd| {
            let tx = tx.clone();
            async move {
                let (reply, answer) = oneshot::channel();
                tx.send((cmd, reply)).await.expect("send");
                answer.await.expect("answer")
            }
        };
        match ask(Command::Acknowledge("al_1".into())).await {
            Err(CommandError::Elsewhere(holder)) => assert_eq!(holder, "host-b/42"),
            other => panic!("{other:?}"),
        }
        // The engine that runs reloads rules itself.
        assert!(matches!(ask(Command::ReloadRules).await, Ok(None)));
        assert!(
            standing.await.expect("join").expect("stand by"),
            "took over"
        );
        assert_eq!(store.tries.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn lifecycle_changes_reach_the_engine_of_another_process_over_the_bus() {
        let bus = crate::bus::memory::MemoryBus::new(&BusConfig::default());
        let cmd = Command::Acknowledge("al_1".into());
        // Nobody runs the engine.
        assert!(matches!(
            ask_remote(&bus, &cmd).await,
            Err(CommandError::Elsewhere(_))
        ));
        let mut requests = bus.serve(ALERT_SERVICE).await.expect("serve");
        tokio::spawn(async move {
            while let Some((payload, reply)) = requests.recv().await {
                let answer = match serde_json::from_slice::<Command>(&payload) {
                    Ok(Command::Acknowledge(id)) => {
                        Remote::from(Ok(Some(crate::alerts::model::sample_alert(
                            &id,
                            crate::alerts::model::AlertKind::Churn,
                            0,
                            3,
                        ))))
                    }
                    Ok(Command::Resolve(id)) => {
                        Remote::from(Err(CommandError::Lifecycle(LifecycleError::NotOpen(id))))
                    }
                    _ => Remote::Failed("unexpected".into()),
                };
                let _ = reply.send(serde_json::to_vec(&answer).expect("json").into());
            }
        });
        let done = ask_remote(&bus, &cmd).await.expect("answered");
        assert_eq!(done.map(|a| a.id).as_deref(), Some("al_1"));
        match ask_remote(&bus, &Command::Resolve("al_2".into())).await {
            Err(CommandError::Lifecycle(LifecycleError::NotOpen(id))) => assert_eq!(id, "al_2"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_embedded_store_needs_no_claim() {
        let dir = tempfile::tempdir().expect("tmp");
        let embedded =
            crate::store::embedded::EmbeddedStore::open_at(dir.path(), &Default::default())
                .expect("store");
        let alerts = crate::store::alerts::EmbeddedAlerts::open(&embedded).expect("alerts");
        let (_tx, mut rx) = mpsc::channel(1);
        assert!(stand_by(&deps(Arc::new(alerts)), &mut rx)
            .await
            .expect("stand by"));
    }
}
