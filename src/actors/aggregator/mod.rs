//! Aggregators: one actor per entity kind, keeping that kind's per-entity
//! 1-second windows and committing them (with their 1-minute and 1-hour
//! rollups) through the store writer.
//!
//! Each aggregator reads its own durable consumers (`aggregate-<kind>-<shard>`,
//! one per shard this process owns, merged) of the enriched stream, so a
//! failing kind never holds back another and every kind counts every post
//! exactly once on its own. From a copy of a post published for shard `s`
//! it counts only the entities [`crate::bus::shard_of`] puts in `s`; the
//! same post's copies for other shards are told apart by hashing the post
//! id with the shard as seed.
//! - a post goes into the open window of its `created_at` second
//! - a post goes into the open window of its `created_at` second
//!   ([`open::OpenWindows`]), de-duplicated by post id;
//! - a post for a window that already closed is late: it is checked against
//!   the ids the store recorded for that window and merged into it;
//! - a message is acknowledged only after the batch that counted it is
//!   committed; a redelivered message is recognised by its post id.
//!
//! Owns: its open windows and its consumer. Mailbox: control messages only
//! (bounded, [`MAILBOX`]); the data path is the bus. Restart policy:
//! permanent; after a crash its unacknowledged messages are redelivered and
//! counted again from the store's watermark, so totals stay exact.

pub mod open;
pub mod window;

use self::open::{Admit, Closed, OpenWindows};
use self::window::{id_hash, post_key, weight_of, Contribution, Resolution, WindowMetrics};
use super::store_writer::{Apply, StoreWriter};
use super::supervisor::{run_work, LifeGuard, Slot};
use crate::bus::{
    aggregate_durable, merge, pipeline_consumer, shard_of_id, Bus, BusError, Delivery, Subject,
};
use crate::config::{AggregationConfig, BusConfig};
use crate::domain::{EnrichedPost, EntityKind};
use crate::store::{Store, WindowBatch, WindowDelta};
use crate::telemetry::metrics;
use actix::prelude::*;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Control mailbox capacity.
pub const MAILBOX: usize = 16;

/// How long an aggregator waits for a restarting store writer before failing.
const WRITER_PATIENCE: Duration = Duration::from_secs(30);

/// Errors that stop an aggregator (the supervisor restarts it).
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    /// The bus failed.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The store writer did not take the batch.
    #[error("store writer: {0}")]
    Writer(String),
}

/// Everything an aggregator needs.
#[derive(Clone)]
pub struct AggregatorDeps {
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// The store (reads: watermark and de-duplication marks).
    pub store: Arc<dyn Store>,
    /// The store writer (commits).
    pub writer: Slot<StoreWriter>,
    /// Windowing settings.
    pub cfg: AggregationConfig,
    /// Consumer settings.
    pub bus_cfg: BusConfig,
    /// The shards this process aggregates.
    pub shards: Vec<u16>,
}

/// Flushes every open window and replies once they are committed (shutdown).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Drain {
    /// First take every message left on the consumer (the in-process bus,
    /// whose messages would die with the process); otherwise stop fetching
    /// at once and leave the rest on the broker.
    pub until_empty: bool,
}

/// The aggregator of one entity kind.
pub struct Aggregator {
    kind: EntityKind,
    deps: Option<AggregatorDeps>,
    drain_tx: mpsc::UnboundedSender<(Drain, oneshot::Sender<()>)>,
    drain_rx: Option<mpsc::UnboundedReceiver<(Drain, oneshot::Sender<()>)>>,
    guard: LifeGuard,
}

impl Aggregator {
    /// An aggregator for `kind`.
    pub fn new(kind: EntityKind, deps: AggregatorDeps, guard: LifeGuard) -> Self {
        let (drain_tx, drain_rx) = mpsc::unbounded_channel();
        Aggregator {
            kind,
            deps: Some(deps),
            drain_tx,
            drain_rx: Some(drain_rx),
            guard,
        }
    }
}

impl Actor for Aggregator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (Some(deps), Some(drain_rx)) = (self.deps.take(), self.drain_rx.take()) else {
            return;
        };
        run_work(
            self,
            ctx,
            run(self.kind, deps, drain_rx),
            |a| &mut a.guard,
            // The bus closes only at shutdown: a clean end.
            |e| matches!(e, AggregatorError::Bus(BusError::Closed)),
        );
    }
}

impl Handler<Drain> for Aggregator {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, drain: Drain, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let sent = self.drain_tx.send((drain, tx)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = rx.await;
            }
        })
    }
}

/// A post's contribution to its windows, read from one delivery.
struct Item {
    ts_ms: i64,
    post: u64,
    entities: Vec<String>,
    contribution: Contribution,
}

/// The parts of an enriched post's JSON an aggregator uses; the rest (the
/// text, the other scores) is skipped without being decoded into owned
/// values, which is most of the cost of reading a post.
#[derive(serde::Deserialize)]
struct AggregateView<'a> {
    #[serde(borrow)]
    post: PostView<'a>,
    scores: ScoresView,
    #[serde(borrow)]
    entities: Vec<EntityView<'a>>,
}

#[derive(serde::Deserialize)]
struct PostView<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    author: AuthorView<'a>,
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    engagement: crate::domain::Engagement,
}

#[derive(serde::Deserialize)]
struct AuthorView<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default)]
    followers: u64,
}

#[derive(serde::Deserialize)]
struct ScoresView {
    sentiment: SentimentView,
}

#[derive(serde::Deserialize)]
struct SentimentView {
    label: crate::domain::SentimentLabel,
    score: f64,
}

#[derive(serde::Deserialize)]
struct EntityView<'a> {
    kind: EntityKind,
    #[serde(borrow)]
    id: Cow<'a, str>,
}

impl<'a> From<&'a EnrichedPost> for AggregateView<'a> {
    fn from(p: &'a EnrichedPost) -> Self {
        AggregateView {
            post: PostView {
                id: Cow::Borrowed(&p.post.id),
                author: AuthorView {
                    id: Cow::Borrowed(&p.post.author.id),
                    followers: p.post.author.followers,
                },
                created_at: p.post.created_at,
                engagement: p.post.engagement,
            },
            scores: ScoresView {
                sentiment: SentimentView {
                    label: p.scores.sentiment.label,
                    score: p.scores.sentiment.score,
                },
            },
            entities: p
                .entities
                .iter()
                .map(|e| EntityView {
                    kind: e.kind,
                    id: Cow::Borrowed(&e.id),
                })
                .collect(),
        }
    }
}

/// Reads the entities of `kind` that the delivery is for: from the post
/// another consumer already decoded (in-process bus), else from the
/// payload's bytes (only the parts an aggregator uses).
fn read_delivery(
    kind: EntityKind,
    shards: u16,
    d: &Delivery,
) -> Result<Option<Item>, serde_json::Error> {
    match d.already_decoded::<EnrichedPost>() {
        Some(p) => Ok(item_of(
            kind,
            shards,
            d.subject,
            AggregateView::from(p.as_ref()),
        )),
        None => read_item(kind, shards, d.subject, &d.payload),
    }
}

/// Reads the entities of `kind` that the copy on `subject` is for.
fn read_item(
    kind: EntityKind,
    shards: u16,
    subject: Subject,
    payload: &[u8],
) -> Result<Option<Item>, serde_json::Error> {
    let view: AggregateView<'_> = serde_json::from_slice(payload)?;
    Ok(item_of(kind, shards, subject, view))
}

/// The item of one post for `kind`, if the copy on `subject` carries any of
/// its entities.
fn item_of(kind: EntityKind, shards: u16, subject: Subject, e: AggregateView<'_>) -> Option<Item> {
    let shard = match subject {
        Subject::EnrichedPosts { shard, .. } => shard,
        Subject::RawPosts => return None,
    };
    let entities: Vec<String> = e
        .entities
        .into_iter()
        .filter(|r| r.kind == kind && shard_of_id(r.kind, &r.id, shards) == shard)
        .map(|r| r.id.into_owned())
        .collect();
    if entities.is_empty() {
        return None;
    }
    Some(Item {
        ts_ms: e.post.created_at.timestamp_millis(),
        post: post_key(&e.post.id, shard),
        contribution: Contribution {
            author_hash: id_hash(&e.post.author.id),
            engagement: e.post.engagement.total(),
            label: e.scores.sentiment.label,
            score: e.scores.sentiment.score,
            weight: weight_of(&e.post.engagement, e.post.author.followers),
        },
        entities,
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn run(
    kind: EntityKind,
    deps: AggregatorDeps,
    mut drain_rx: mpsc::UnboundedReceiver<(Drain, oneshot::Sender<()>)>,
) -> Result<(), AggregatorError> {
    let mut consumers = Vec::with_capacity(deps.shards.len());
    for &shard in &deps.shards {
        let durable = aggregate_durable(kind, shard);
        let spec =
            pipeline_consumer(&deps.bus_cfg, &durable).ok_or(BusError::UnknownConsumer(durable))?;
        consumers.push(deps.bus.consumer(spec).await?);
    }
    let mut consumer = merge::merge(consumers, deps.cfg.batch_size);
    let lateness = i64::try_from(deps.cfg.allowed_lateness_ms).unwrap_or(i64::MAX / 4);
    let stored_wm = deps.store.watermark(kind)?;
    let start_wm = stored_wm.unwrap_or(i64::MIN / 2).max(now_ms() - lateness);
    let mut windows: OpenWindows<Delivery> = OpenWindows::new(start_wm, lateness);
    tracing::info!(%kind, watermark = windows.watermark(), "aggregator started");
    let flush_every = Duration::from_millis(deps.cfg.flush_interval_ms);
    let mut last_flush = Instant::now();
    let mut drain_waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut until_empty = true;
    loop {
        while let Ok((drain, w)) = drain_rx.try_recv() {
            until_empty &= drain.until_empty;
            drain_waiters.push(w);
        }
        let draining = !drain_waiters.is_empty();
        let batch = if draining && !until_empty {
            Vec::new()
        } else if draining {
            consumer
                .fetch(deps.cfg.batch_size, Duration::from_millis(50))
                .await?
        } else {
            consumer.fetch(deps.cfg.batch_size, flush_every).await?
        };
        let fetched = batch.len();
        let mut late: Vec<(Item, Delivery)> = Vec::new();
        for d in batch {
            let item = match read_delivery(kind, deps.bus_cfg.shards, &d) {
                Ok(Some(item)) => item,
                Ok(None) => {
                    d.ack().await?;
                    continue;
                }
                Err(e) => {
                    d.term(&format!("not an enriched post: {e}")).await?;
                    continue;
                }
            };
            let ids: Vec<&str> = item.entities.iter().map(String::as_str).collect();
            match windows.admit(item.ts_ms, item.post, &ids, &item.contribution, d) {
                Admit::Counted => {}
                Admit::Duplicate(d) => {
                    metrics::AGG_DUPLICATES.inc();
                    d.ack().await?;
                }
                Admit::Late(d) => late.push((item, d)),
            }
        }
        if !late.is_empty() {
            merge_late(kind, &deps, late).await?;
        }
        if draining && fetched == 0 {
            let closed = windows.close_all();
            commit(kind, &deps, closed).await?;
            for w in drain_waiters.drain(..) {
                let _ = w.send(());
            }
            tracing::info!(%kind, "aggregator drained");
        } else if last_flush.elapsed() >= flush_every {
            last_flush = Instant::now();
            let closed = windows.close_due(now_ms());
            commit(kind, &deps, closed).await?;
        }
    }
}

/// Commits closed windows, then acknowledges the messages they counted.
async fn commit(
    kind: EntityKind,
    deps: &AggregatorDeps,
    closed: Closed<Delivery>,
) -> Result<(), AggregatorError> {
    if closed.is_empty() && closed.batch.watermark.is_none() {
        return Ok(());
    }
    let counted: u64 = closed.tokens.len() as u64;
    let mut batch = closed.batch;
    batch.kind = Some(kind);
    write(deps, batch).await?;
    metrics::AGG_COUNTED.add(counted);
    for d in closed.tokens {
        d.ack().await?;
    }
    Ok(())
}

async fn write(deps: &AggregatorDeps, batch: WindowBatch) -> Result<(), AggregatorError> {
    deps.writer
        .send(|| Apply(batch.clone()), WRITER_PATIENCE)
        .await
        .map_err(|e| AggregatorError::Writer(e.to_string()))?
        .map_err(AggregatorError::Writer)
}

/// Merges posts whose windows already closed into the stored windows,
/// skipping those the store already counted.
async fn merge_late(
    kind: EntityKind,
    deps: &AggregatorDeps,
    late: Vec<(Item, Delivery)>,
) -> Result<(), AggregatorError> {
    let mut by_window: BTreeMap<i64, Vec<(Item, Delivery)>> = BTreeMap::new();
    for (item, d) in late {
        by_window
            .entry(Resolution::Second.window_start(item.ts_ms))
            .or_default()
            .push((item, d));
    }
    let mut batch = WindowBatch {
        kind: Some(kind),
        ..WindowBatch::default()
    };
    let mut to_ack = Vec::new();
    let mut counted = 0u64;
    for (start, items) in by_window {
        let mut seen: HashSet<u64> = deps.store.seen(kind, start)?.into_iter().collect();
        let mut new_ids = Vec::new();
        let mut deltas: BTreeMap<String, WindowMetrics> = BTreeMap::new();
        for (item, d) in items {
            if seen.insert(item.post) {
                new_ids.push(item.post);
                counted += 1;
                for e in &item.entities {
                    deltas
                        .entry(e.clone())
                        .or_default()
                        .add(&item.contribution, true);
                }
            } else {
                metrics::AGG_DUPLICATES.inc();
            }
            to_ack.push(d);
        }
        batch
            .windows
            .extend(deltas.into_iter().map(|(entity, metrics)| WindowDelta {
                start_ms: start,
                entity,
                metrics,
            }));
        if !new_ids.is_empty() {
            batch.seen.push((start, new_ids));
        }
    }
    if !batch.windows.is_empty() {
        write(deps, batch).await?;
    }
    metrics::AGG_LATE.add(counted);
    metrics::AGG_COUNTED.add(counted);
    for d in to_ack {
        d.ack().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::aggregator::window::post_weight;
    use crate::domain::{fixtures, EntityRef};

    #[test]
    fn an_item_is_read_from_the_parts_of_the_post_it_needs() {
        let mut p = fixtures::post("p\"1", "a post with \"quotes\" and é");
        p.post.author.followers = 12_345;
        p.post.engagement.likes = 7;
        p.scores.sentiment.score = -0.4;
        p.entities = vec![
            EntityRef {
                kind: EntityKind::Project,
                id: "BTC".into(),
            },
            EntityRef {
                kind: EntityKind::Topic,
                id: "de\\fi".into(),
            },
            EntityRef {
                kind: EntityKind::Project,
                id: "ETH".into(),
            },
        ];
        let json = serde_json::to_vec(&p).expect("JSON");
        let subject = Subject::EnrichedPosts {
            shard: 0,
            primary: true,
        };
        let item = read_item(EntityKind::Project, 1, subject, &json)
            .expect("valid")
            .expect("project entities");
        assert_eq!(item.entities, ["BTC", "ETH"]);
        assert_eq!(item.ts_ms, fixtures::AT_MS);
        assert_eq!(item.post, post_key("p\"1", 0));
        let c = &item.contribution;
        assert_eq!(c.author_hash, id_hash(&p.post.author.id));
        assert_eq!(c.engagement, 7);
        assert_eq!((c.label, c.score), (p.scores.sentiment.label, -0.4));
        assert_eq!(c.weight, post_weight(&p.post.engagement, &p.post.author));
        let topic = read_item(EntityKind::Topic, 1, subject, &json)
            .expect("valid")
            .expect("topic");
        assert_eq!(topic.entities, ["de\\fi"]);
        assert!(read_item(EntityKind::Geo, 1, subject, &json)
            .expect("valid")
            .is_none());
        assert!(read_item(EntityKind::Project, 1, subject, b"{\"post\": 1}").is_err());
    }
}
