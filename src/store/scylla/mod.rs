//! ScyllaDB as the store (`store.scylla.nodes`): the time series
//! ([`series::ScyllaStore`]), the summaries ([`summaries::ScyllaSummaries`])
//! the alerts, alert rules and alert event log ([`alerts::ScyllaAlerts`]) and
//! the webhook endpoints and outbox ([`webhooks::ScyllaWebhooks`]) and the
//! archived posts' listings ([`posts::ScyllaPosts`]) in one keyspace that `starling migrate` ([`schema`]) creates.
//!
//! [`Cluster`] is the connection every table shares: one driver session
//! (token- and shard-aware routing, the driver's default policy) on a small
//! runtime of its own, because the [`super::Store`] traits block (actors call
//! them on their own threads). Every request:
//! - is a prepared statement (prepared once, on first use);
//! - waits for one of `max_in_flight` permits first (back-pressure instead
//!   of an unbounded queue of requests);
//! - is idempotent (absolute values under deterministic keys, inserts of
//!   post ids; no counters), marked so for the driver, and retried on
//!   overload, timeouts, unavailability and broken connections, `retries`
//!   times with exponential back-off. The only lightweight transactions are
//!   the alerts' and webhook endpoints' decisions (`Cluster::cas`), written so that a retry
//!   recognises its own first attempt;
//! - counts its failures: [`Cluster::failing_since`] says since when
//!   requests have been failing, which lookups answered from the hot cache during
//!   an outage report as `stale_since`.

pub mod alerts;
pub mod posts;
pub mod schema;
pub mod series;
pub mod summaries;
pub mod webhooks;

/// `starling migrate`: connects and creates or upgrades the schema; one
/// line per keyspace and table saying what was done.
pub fn migrate(config: &crate::config::Config) -> Result<Vec<String>, StoreError> {
    let cluster = Cluster::connect(&config.store.scylla)?;
    schema::migrate(&cluster, &config.store, config.summaries.retention_days)
}

/// Prepares every statement the stores run (on a live cluster: the check
/// that the schema and the statements agree); returns those that failed,
/// with the error.
pub fn prepare_all(config: &crate::config::Config) -> Result<Vec<(String, String)>, StoreError> {
    let cluster = Cluster::connect(&config.store.scylla)?;
    let stores = Stores::new(cluster.clone(), config);
    let mut statements = stores.series.statements();
    statements.extend(stores.summaries.statements());
    statements.extend(stores.alerts.statements());
    statements.extend(stores.webhooks.statements());
    statements.extend(stores.posts.statements());
    let c = cluster.clone();
    cluster.block(async move {
        let mut failed = Vec::new();
        for cql in statements {
            if let Err(e) = c.prepare(&cql, Access::Read).await {
                failed.push((cql, e.to_string()));
            }
        }
        failed
    })
}

/// Drops the keyspace and everything in it (tests clean up with it).
pub fn drop_keyspace(config: &crate::config::Config) -> Result<(), StoreError> {
    let cluster = Cluster::connect(&config.store.scylla)?;
    let cql = format!("DROP KEYSPACE IF EXISTS {}", config.store.scylla.keyspace);
    let c = cluster.clone();
    cluster.block(async move { c.ddl(&cql).await })?
}

/// The stores of a process that keeps its data in ScyllaDB, on one session.
pub struct Stores {
    /// Time series, entities, counted posts, watermarks.
    pub series: series::ScyllaStore,
    /// Summaries.
    pub summaries: summaries::ScyllaSummaries,
    /// Alerts, alert rules and the alert event log.
    pub alerts: alerts::ScyllaAlerts,
    /// Webhook endpoints, stats and outbox.
    pub webhooks: webhooks::ScyllaWebhooks,
    /// Archived posts (the listings; search stays in each process).
    pub posts: posts::ScyllaPosts,
}

impl Stores {
    fn new(cluster: Arc<Cluster>, config: &crate::config::Config) -> Stores {
        Stores {
            series: series::ScyllaStore::new(
                cluster.clone(),
                &config.store,
                &config.owned_shards(),
            ),
            summaries: summaries::ScyllaSummaries::new(cluster.clone()),
            // Resolved alerts and the event log live as long as 1-hour windows.
            alerts: alerts::ScyllaAlerts::new(cluster.clone(), config.store.retention_1h_days),
            webhooks: webhooks::ScyllaWebhooks::new(cluster.clone()),
            posts: posts::ScyllaPosts::new(cluster, config.store.retention_posts_days),
        }
    }
}

/// The stores of a process that keeps its data in ScyllaDB: connects and
/// checks that `migrate` has created this build's schema.
pub fn open(config: &crate::config::Config) -> Result<Stores, StoreError> {
    let cluster = Cluster::connect(&config.store.scylla)?;
    match schema::check(&cluster) {
        Ok(()) => {}
        // The cluster answers but cannot serve now: start, and let writes
        // wait for it (the pipeline holds its messages meanwhile).
        Err(
            e @ StoreError::Scylla {
                transient: true, ..
            },
        ) => tracing::warn!(error = %e, "cannot check the schema now; starting anyway"),
        Err(StoreError::Scylla { message, .. }) => {
            return Err(StoreError::Schema(format!(
                "keyspace {} is not usable ({message}): run `starling migrate`",
                config.store.scylla.keyspace
            )))
        }
        Err(e) => return Err(e),
    }
    Ok(Stores::new(cluster, config))
}

use super::StoreError;
use crate::config::{parse_consistency, ScyllaConfig};
use crate::telemetry::metrics;
use futures_util::TryStreamExt;
use parking_lot::Mutex;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{
    ExecutionError, NextPageError, NextRowError, PagerExecutionError, PrepareError,
    RequestAttemptError, RequestError,
};
use scylla::frame::types::Consistency;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// A value as the JSON text stored in a `text` column (`what` names it in
/// errors).
pub(crate) fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    String::from_utf8(super::encode(what.as_bytes(), value)?)
        .map_err(|e| super::corrupt(what.as_bytes(), e))
}

/// A value from the JSON text of a `text` column.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    what: &str,
    text: &str,
) -> Result<T, StoreError> {
    super::decode(what.as_bytes(), text.as_bytes())
}

/// The wall clock in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whether a request is a read or a write (its consistency level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `read_consistency`.
    Read,
    /// `write_consistency`.
    Write,
}

/// One driver session and what every table needs to use it.
pub struct Cluster {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    session: Arc<Session>,
    cfg: ScyllaConfig,
    permits: Arc<Semaphore>,
    prepared: Mutex<HashMap<String, PreparedStatement>>,
    read: Consistency,
    write: Consistency,
    failures: AtomicU64,
    failing_since_ms: AtomicI64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.cfg.nodes)
            .field("keyspace", &self.cfg.keyspace)
            .finish()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics on an async thread.
        if let Some(rt) = self.runtime.lock().take() {
            rt.shutdown_background();
        }
    }
}

/// A failure of one request, with the statement it ran.
fn failed(what: &str, e: impl std::fmt::Display) -> StoreError {
    failure(what, e, false)
}

fn failure(what: &str, e: impl std::fmt::Display, transient: bool) -> StoreError {
    StoreError::Scylla {
        what: what.chars().take(120).collect(),
        message: e.to_string(),
        transient,
    }
}

/// How one attempt of a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Attempt {
    /// A request (or its preparation) failed.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// A page of a long read failed.
    #[error(transparent)]
    Page(#[from] RequestError),
    /// No answer within `request_timeout_ms` (this side's bound, which also
    /// covers preparing and paging).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Anything else (type mismatch, undecodable row): not retried.
    #[error("{0}")]
    Other(String),
}

impl Attempt {
    /// Whether repeating the request may succeed (idempotent requests only).
    fn transient(&self) -> bool {
        match self {
            Attempt::Execution(e) => match e {
                ExecutionError::RequestTimeout(_)
                | ExecutionError::ConnectionPoolError(_)
                | ExecutionError::EmptyPlan => true,
                ExecutionError::LastAttemptError(a) => transient(a),
                ExecutionError::PrepareError(PrepareError::AllAttemptsFailed { first_attempt }) => {
                    transient(first_attempt)
                }
                ExecutionError::PrepareError(PrepareError::ConnectionPoolError(_)) => true,
                _ => false,
            },
            Attempt::Page(e) => match e {
                RequestError::RequestTimeout(_)
                | RequestError::ConnectionPoolError(_)
                | RequestError::EmptyPlan => true,
                RequestError::LastAttemptError(a) => transient(a),
                _ => false,
            },
            Attempt::Timeout(_) => true,
            Attempt::Other(_) => false,
        }
    }
}

impl From<PagerExecutionError> for Attempt {
    fn from(e: PagerExecutionError) -> Self {
        match e {
            PagerExecutionError::PrepareError(p) => Attempt::Execution(p.into()),
            PagerExecutionError::NextPageError(NextPageError::RequestFailure(r)) => r.into(),
            other => Attempt::Other(other.to_string()),
        }
    }
}

impl From<NextRowError> for Attempt {
    fn from(e: NextRowError) -> Self {
        match e {
            NextRowError::NextPageError(NextPageError::RequestFailure(r)) => r.into(),
            other => Attempt::Other(other.to_string()),
        }
    }
}

/// Whether an attempt that the node answered may succeed when repeated.
fn transient(a: &RequestAttemptError) -> bool {
    use scylla::errors::DbError;
    match a {
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Overloaded
                | DbError::Unavailable { .. }
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::IsBootstrapping
                | DbError::ServerError
                | DbError::RateLimitReached { .. }
        ),
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => true,
        _ => false,
    }
}

impl Cluster {
    /// Connects to `cfg.nodes` (does not need the keyspace to exist).
    pub fn connect(cfg: &ScyllaConfig) -> Result<Arc<Cluster>, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("scylla")
            .enable_all()
            .build()
            .map_err(|e| failed("starting the driver's runtime", e))?;
        let handle = runtime.handle().clone();
        let (read, write) = match (
            parse_consistency(&cfg.read_consistency),
            parse_consistency(&cfg.write_consistency),
        ) {
            (Some(r), Some(w)) => (r, w),
            _ => return Err(failed("configuration", "unknown consistency level")),
        };
        let profile = ExecutionProfile::builder()
            .consistency(write)
            .request_timeout(Some(Duration::from_millis(cfg.request_timeout_ms)))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&cfg.nodes)
            .connection_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .default_execution_profile_handle(profile.into_handle())
            .metadata_request_clientside_timeout(Duration::from_millis(cfg.request_timeout_ms));
        if !cfg.username.is_empty() {
            builder = builder.user(cfg.username.clone(), cfg.password.clone());
        }
        if !cfg.datacenter.is_empty() {
            builder = builder.prefer_datacenter(cfg.datacenter.clone());
        }
        let nodes = cfg.nodes.join(",");
        // The driver retries a silent node for ever: bound the whole connect.
        let bound = Duration::from_millis(cfg.connect_timeout_ms + cfg.request_timeout_ms);
        let what = format!("connecting to {nodes}");
        let session = block_on(&handle, async move {
            tokio::time::timeout(bound, builder.build()).await
        })?
        .map_err(|_| failure(&what, format!("no session within {bound:?}"), true))?
        .map_err(|e| failure(&what, e, true))?;
        Ok(Arc::new(Cluster {
            runtime: Mutex::new(Some(runtime)),
            handle,
            session: Arc::new(session),
            permits: Arc::new(Semaphore::new(cfg.max_in_flight)),
            cfg: cfg.clone(),
            prepared: Mutex::new(HashMap::new()),
            read,
            write,
            failures: AtomicU64::new(0),
            failing_since_ms: AtomicI64::new(0),
        }))
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &ScyllaConfig {
        &self.cfg
    }

    /// `name` qualified with the keyspace.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{}", self.cfg.keyspace, name)
    }

    /// Since when (ms since the epoch) requests have been failing, if the
    /// last one failed.
    pub fn failing_since(&self) -> Option<i64> {
        let since = self.failing_since_ms.load(Ordering::Relaxed);
        (self.failures.load(Ordering::Relaxed) > 0 && since != 0).then_some(since)
    }

    fn note(&self, ok: bool) {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
        } else {
            if self.failures.fetch_add(1, Ordering::Relaxed) == 0 {
                self.failing_since_ms
                    .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
            }
            metrics::SCYLLA_FAILURES.inc();
        }
    }

    /// Runs `fut` on the driver's runtime and waits for it on this thread.
    pub(crate) fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        block_on(&self.handle, fut)
    }

    /// Runs `fut` in the background on the driver's runtime.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(fut);
    }

    /// The prepared form of `cql` (prepared on first use, with retries),
    /// marked idempotent.
    pub(crate) async fn prepare(
        self: &Arc<Self>,
        cql: &str,
        access: Access,
    ) -> Result<PreparedStatement, StoreError> {
        if let Some(p) = self.prepared.lock().get(cql) {
            return Ok(p.clone());
        }
        let mut p = self
            .retrying(cql, |s| {
                let cql = cql.to_string();
                async move { Ok(s.prepare(cql).await.map_err(ExecutionError::from)?) }
            })
            .await?;
        p.set_consistency(match access {
            Access::Read => self.read,
            Access::Write => self.write,
        });
        p.set_is_idempotent(true);
        p.set_page_size(self.cfg.page_size);
        self.prepared.lock().insert(cql.to_string(), p.clone());
        Ok(p)
    }

    /// Runs `attempt` under a permit, retrying transient failures (every
    /// request is idempotent); records the outcome for
    /// [`Cluster::failing_since`].
    async fn retrying<T, F, Fut>(self: &Arc<Self>, what: &str, attempt: F) -> Result<T, StoreError>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, Attempt>>,
    {
        let _permit = self.permits.acquire().await.map_err(|e| failed(what, e))?;
        let mut backoff = Duration::from_millis(self.cfg.retry_backoff_ms);
        let cap = backoff * 32;
        let mut tries = 0;
        let timeout = Duration::from_millis(self.cfg.request_timeout_ms);
        loop {
            let outcome = tokio::time::timeout(timeout, attempt(self.session.clone()))
                .await
                .unwrap_or(Err(Attempt::Timeout(timeout)));
            match outcome {
                Ok(v) => {
                    self.note(true);
                    return Ok(v);
                }
                Err(e) if tries < self.cfg.retries && e.transient() => {
                    tries += 1;
                    metrics::SCYLLA_RETRIES.inc();
                    tracing::debug!(statement = what, error = %e, tries, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(cap);
                }
                Err(e) => {
                    self.note(false);
                    tracing::warn!(statement = what, error = %e, tries, "scylla request failed");
                    return Err(failure(what, &e, e.transient()));
                }
            }
        }
    }

    /// Executes `cql` (unpaged: writes and single-row reads).
    pub(crate) async fn execute(
        self: &Arc<Self>,
        cql: &str,
        access: Access,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        let bound = self
            .prepare(cql, access)
            .await?
            .bind(&values)
            .map_err(|e| failed(cql, e))?;
        self.retrying(cql, |s| {
            let bound = bound.clone();
            async move { Ok(s.execute_bound_unpaged(&bound).await?) }
        })
        .await
    }

    /// Executes `cql` once per row of `rows` as one unlogged batch: the
    /// caller keeps every row in one partition (atomic and cheap there).
    pub(crate) async fn batch<V: SerializeRow + Clone + Send + Sync + 'static>(
        self: &Arc<Self>,
        cql: &str,
        rows: Vec<V>,
    ) -> Result<(), StoreError> {
        let stmt = self.prepare(cql, Access::Write).await?;
        let mut batch = Batch::new(BatchType::Unlogged);
        for _ in &rows {
            batch.append_statement(stmt.clone());
        }
        batch.set_consistency(self.write);
        batch.set_is_idempotent(true);
        let (batch, rows) = (Arc::new(batch), Arc::new(rows));
        self.retrying(cql, |s| {
            let (batch, rows) = (batch.clone(), rows.clone());
            async move { Ok(s.batch(&batch, rows.as_slice()).await.map(|_| ())?) }
        })
        .await
    }

    /// Every row `cql` selects, page by page (`page_size`).
    pub(crate) async fn select<R>(
        self: &Arc<Self>,
        cql: &str,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Send + 'static,
    {
        let bound = self
            .prepare(cql, Access::Read)
            .await?
            .bind(&values)
            .map_err(|e| failed(cql, e))?;
        self.retrying(cql, |s| {
            let bound = bound.clone();
            async move {
                let pager = s.execute_bound_iter(bound).await?;
                let rows = pager
                    .rows_stream::<R>()
                    .map_err(|e| Attempt::Other(e.to_string()))?;
                Ok(rows.try_collect::<Vec<R>>().await?)
            }
        })
        .await
    }

    /// Runs a lightweight transaction (a conditional `INSERT … IF NOT
    /// EXISTS`, `UPDATE … IF …` or `DELETE … IF …`). It is retried like
    /// every request, so a retry may find its own earlier attempt applied:
    /// every caller writes its conditions so that it can tell from the row
    /// [`Cas::row`] returns (see `alerts`).
    pub(crate) async fn cas(
        self: &Arc<Self>,
        cql: &str,
        values: impl SerializeRow,
    ) -> Result<Cas, StoreError> {
        let result = self.execute(cql, Access::Write, values).await?;
        let rows = result.into_rows_result().map_err(|e| failed(cql, e))?;
        let names: Vec<String> = rows
            .column_specs()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let row = rows
            .maybe_first_row::<scylla::value::Row>()
            .map_err(|e| failed(cql, e))?
            .ok_or_else(|| failed(cql, "no [applied] row"))?;
        let mut cas = Cas {
            applied: false,
            row: HashMap::new(),
        };
        for (name, value) in names.into_iter().zip(row.columns) {
            match (name.as_str(), value) {
                ("[applied]", Some(v)) => cas.applied = v.as_boolean().unwrap_or(false),
                (_, Some(v)) => {
                    cas.row.insert(name, v);
                }
                (_, None) => {}
            }
        }
        Ok(cas)
    }

    /// Runs a statement once, unprepared (schema changes in `migrate`).
    pub(crate) async fn ddl(self: &Arc<Self>, cql: &str) -> Result<(), StoreError> {
        self.retrying(cql, |s| {
            let cql = cql.to_string();
            async move { Ok(s.query_unpaged(cql, ()).await.map(|_| ())?) }
        })
        .await
    }
}

/// What a lightweight transaction answered: whether it was applied and,
/// when not, the current values of the row (null columns left out).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cas {
    /// `[applied]`.
    pub applied: bool,
    /// The row as it is, by column (when not applied).
    pub row: HashMap<String, scylla::value::CqlValue>,
}

impl Cas {
    /// A text column of the returned row.
    pub fn text(&self, column: &str) -> Option<&str> {
        self.row
            .get(column)
            .and_then(|v| v.as_text())
            .map(String::as_str)
    }

    /// A bigint column of the returned row.
    pub fn bigint(&self, column: &str) -> Option<i64> {
        self.row.get(column).and_then(|v| v.as_bigint())
    }
}

/// Runs `fut` on `handle`'s runtime and blocks this thread until it is
/// done: works from any thread, async or not (the result comes back over
/// a std channel, not by entering the runtime).
fn block_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| failed("driver runtime", "stopped before answering"))
}
