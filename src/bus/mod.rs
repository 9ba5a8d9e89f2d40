//! The bus between pipeline stages.
//!
//! Stages never call each other directly on the data path: connectors publish
//! raw posts, classifier workers consume them and publish enriched posts,
//! aggregators consume those. The [`Bus`] trait has the semantics of NATS
//! JetStream so that the in-process implementation (single-binary default,
//! [`memory::MemoryBus`]) and JetStream are interchangeable:
//!
//! - **Streams** hold messages on named subjects. A stream keeps a message
//!   until every durable consumer defined on it has acknowledged it
//!   (interest retention); when it is full, `publish` waits (back-pressure,
//!   never a silent drop).
//! - **Publish** carries a message id; an id seen again within the stream's
//!   duplicate window is acknowledged as a duplicate and not stored again.
//! - **Durable consumers** are named; every process or actor that opens the
//!   same durable shares its messages (work sharing). Each delivery must be
//!   acknowledged after its effect is durable; one not acknowledged within
//!   `ack_wait` is delivered again, and after `max_deliver` deliveries it is
//!   dead-lettered and counted.

pub mod jetstream;
pub mod memory;
pub mod merge;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Subjects of the pipeline, named once here.
///
/// Enriched posts are partitioned by entity into `bus.shards` shards
/// ([`shard_of`]): a post is published once on the subject of every shard
/// that owns one of its windowed entities, so each shard's aggregators see
/// every post they count and one entity's windows are counted by one
/// consumer. Exactly one of those copies, on the post's lowest shard, is
/// marked primary: consumers of whole posts (the live feed) read only
/// primaries and see each post once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// Posts as connectors produced them (JSON [`crate::domain::Post`]):
    /// `starling.posts.raw`.
    RawPosts,
    /// Scored and attributed posts (JSON [`crate::domain::EnrichedPost`])
    /// for one shard: `starling.posts.enriched.<shard>.p` for the primary
    /// copy, `….x` for the others.
    EnrichedPosts {
        /// The shard whose entities this copy is for.
        shard: u16,
        /// The one copy of the post that whole-post consumers read.
        primary: bool,
    },
}

const RAW_SUBJECT: &str = "starling.posts.raw";
const ENRICHED_PREFIX: &str = "starling.posts.enriched";

impl Subject {
    /// The wire name of the subject.
    pub fn name(self) -> String {
        match self {
            Subject::RawPosts => RAW_SUBJECT.to_string(),
            Subject::EnrichedPosts { shard, primary } => {
                format!(
                    "{ENRICHED_PREFIX}.{shard}.{}",
                    if primary { "p" } else { "x" }
                )
            }
        }
    }

    /// The subject named `name` (inverse of [`Subject::name`]).
    pub fn parse(name: &str) -> Option<Subject> {
        if name == RAW_SUBJECT {
            return Some(Subject::RawPosts);
        }
        let rest = name.strip_prefix(ENRICHED_PREFIX)?.strip_prefix('.')?;
        let (shard, copy) = rest.split_once('.')?;
        let primary = match copy {
            "p" => true,
            "x" => false,
            _ => return None,
        };
        let shard = shard.parse().ok()?;
        Some(Subject::EnrichedPosts { shard, primary })
    }

    /// The stream that captures this subject.
    pub fn stream(self) -> StreamName {
        match self {
            Subject::RawPosts => StreamName::Raw,
            Subject::EnrichedPosts { .. } => StreamName::Enriched,
        }
    }
}

/// The shard (of `shards`) that owns an entity's windows.
pub fn shard_of(entity: &crate::domain::EntityRef, shards: u16) -> u16 {
    shard_of_id(entity.kind, &entity.id, shards)
}

/// [`shard_of`] for an entity given by its parts.
pub fn shard_of_id(kind: crate::domain::EntityKind, id: &str, shards: u16) -> u16 {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), u64::from(kind.tag()));
    (h % u64::from(shards.max(1))) as u16
}

/// The messages that carry an enriched post (encoded as `payload`): one per
/// [`enriched_subjects`], with message id `<post id>#<shard>` (the duplicate
/// window is per stream, so each copy needs its own id).
pub fn enriched_messages(
    post: &crate::domain::EnrichedPost,
    payload: Bytes,
    shards: u16,
) -> Vec<Outgoing> {
    enriched_subjects(&post.entities, shards)
        .into_iter()
        .map(|subject| {
            let shard = match subject {
                Subject::EnrichedPosts { shard, .. } => shard,
                Subject::RawPosts => 0,
            };
            Outgoing {
                subject,
                id: format!("{}#{shard}", post.post.id),
                payload: payload.clone(),
            }
        })
        .collect()
}

/// The subjects an enriched post is published on: one per shard owning one
/// of its windowed entities, ascending, the first one primary.
pub fn enriched_subjects(entities: &[crate::domain::EntityRef], shards: u16) -> Vec<Subject> {
    let mut owners: Vec<u16> = entities
        .iter()
        .filter(|e| e.kind != crate::domain::EntityKind::Post)
        .map(|e| shard_of(e, shards))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    if owners.is_empty() {
        owners.push(0);
    }
    owners
        .into_iter()
        .enumerate()
        .map(|(i, shard)| Subject::EnrichedPosts {
            shard,
            primary: i == 0,
        })
        .collect()
}

/// Which of a stream's messages a consumer receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// Every message of the stream.
    All,
    /// The enriched copies for one shard.
    Shard(u16),
    /// The primary copy of every enriched post.
    Primary,
    /// The primary copies on one shard (the posts whose lowest shard it is).
    Primaries(u16),
}

impl Filter {
    /// Whether a message on `subject` passes.
    pub fn matches(self, subject: Subject) -> bool {
        match (self, subject) {
            (Filter::All, _) => true,
            (Filter::Shard(s), Subject::EnrichedPosts { shard, .. }) => s == shard,
            (Filter::Primary, Subject::EnrichedPosts { primary, .. }) => primary,
            (Filter::Primaries(s), Subject::EnrichedPosts { shard, primary }) => {
                primary && s == shard
            }
            _ => false,
        }
    }

    /// The NATS subject filter of a consumer on `stream`.
    pub fn pattern(self, stream: StreamName) -> String {
        match self {
            Filter::All => stream.subjects().to_string(),
            Filter::Shard(s) => format!("{ENRICHED_PREFIX}.{s}.*"),
            Filter::Primary => format!("{ENRICHED_PREFIX}.*.p"),
            Filter::Primaries(s) => format!("{ENRICHED_PREFIX}.{s}.p"),
        }
    }
}

/// Streams of the pipeline and the subjects they capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamName {
    /// Holds [`Subject::RawPosts`].
    Raw,
    /// Holds every [`Subject::EnrichedPosts`].
    Enriched,
}

impl StreamName {
    /// The pipeline's streams.
    pub const ALL: [StreamName; 2] = [StreamName::Raw, StreamName::Enriched];

    /// The stream named `name`.
    pub fn parse(name: &str) -> Option<StreamName> {
        StreamName::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The stream's name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamName::Raw => "STARLING_RAW",
            StreamName::Enriched => "STARLING_ENRICHED",
        }
    }

    /// The subjects this stream captures, as a NATS subject filter.
    pub fn subjects(self) -> &'static str {
        match self {
            StreamName::Raw => RAW_SUBJECT,
            StreamName::Enriched => "starling.posts.enriched.>",
        }
    }
}

/// A durable consumer's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerSpec {
    /// Stream consumed.
    pub stream: StreamName,
    /// Which of the stream's messages it receives.
    pub filter: Filter,
    /// Durable name; consumers opened with the same name share the work.
    pub durable: String,
    /// Time a delivery may stay unacknowledged before redelivery.
    pub ack_wait: Duration,
    /// Deliveries before a message is dead-lettered.
    pub max_deliver: u32,
    /// Most unacknowledged deliveries outstanding at once.
    pub max_ack_pending: usize,
    /// A consumer of one process (the live feed): it starts at the messages
    /// published after it is created, and the broker deletes it after this
    /// long without a fetch (the process is gone). `None`: a pipeline
    /// consumer, kept for good.
    pub expires_after: Option<Duration>,
}

/// The durable consumers of the pipeline, with their settings: the classifier
/// pool's on the raw stream; on the enriched stream the alert engine's
/// (primary copies), the post archive's per shard (that shard's primaries)
/// and one per windowed entity kind and shard. (The live feed has one
/// consumer per process: [`live_feed_consumer`].) Every process creates
/// them all before anything is published, so that no message is published
/// before the consumers that must see it exist, whichever process owns them.
pub fn pipeline_consumers(cfg: &crate::config::BusConfig) -> Vec<ConsumerSpec> {
    let spec = |stream, filter, durable: String| ConsumerSpec {
        stream,
        filter,
        durable,
        ack_wait: Duration::from_millis(cfg.ack_wait_ms),
        max_deliver: cfg.max_deliver,
        max_ack_pending: cfg.max_ack_pending,
        expires_after: None,
    };
    let mut specs = vec![
        spec(StreamName::Raw, Filter::All, CLASSIFY_DURABLE.to_string()),
        spec(
            StreamName::Enriched,
            Filter::Primary,
            ALERTS_DURABLE.to_string(),
        ),
    ];
    for shard in 0..cfg.shards.max(1) {
        specs.push(spec(
            StreamName::Enriched,
            Filter::Primaries(shard),
            archive_durable(shard),
        ));
    }
    for kind in crate::domain::EntityKind::windowed() {
        for shard in 0..cfg.shards.max(1) {
            specs.push(spec(
                StreamName::Enriched,
                Filter::Shard(shard),
                aggregate_durable(kind, shard),
            ));
        }
    }
    specs
}

/// The consumer of the live feed of this process (scored posts for its
/// WebSocket clients): every process sees every post, from when it starts.
/// It is per process because a shared consumer would split the posts
/// between the processes' clients.
pub fn live_feed_consumer(cfg: &crate::config::BusConfig) -> ConsumerSpec {
    ConsumerSpec {
        stream: StreamName::Enriched,
        filter: Filter::Primary,
        durable: format!("{LIVE_FEED_PREFIX}-{}", crate::telemetry::instance()),
        ack_wait: Duration::from_millis(cfg.ack_wait_ms),
        max_deliver: cfg.max_deliver,
        max_ack_pending: cfg.max_ack_pending,
        expires_after: Some(LIVE_FEED_EXPIRY),
    }
}

/// Name of the live feed's consumers (`live-feed-<process>`); a consumer of
/// exactly this name is the shared one of earlier versions, removed at start.
pub const LIVE_FEED_PREFIX: &str = "live-feed";

/// How long the broker keeps the live-feed consumer of a process that
/// stopped fetching (it fetches every half second while it runs).
pub const LIVE_FEED_EXPIRY: Duration = Duration::from_secs(10);

/// Durable consumer of the alert engine (primary copies: every post once).
pub const ALERTS_DURABLE: &str = "alerts";

/// Durable consumer shared by the classifier pool.
pub const CLASSIFY_DURABLE: &str = "classify";

/// Durable consumer of the post archive for one shard.
pub fn archive_durable(shard: u16) -> String {
    format!("archive-{shard}")
}

/// Durable consumer of a kind's aggregator for one shard.
pub fn aggregate_durable(kind: crate::domain::EntityKind, shard: u16) -> String {
    format!("aggregate-{kind}-{shard}")
}

/// The consumer spec named `durable` among [`pipeline_consumers`].
pub fn pipeline_consumer(cfg: &crate::config::BusConfig, durable: &str) -> Option<ConsumerSpec> {
    pipeline_consumers(cfg)
        .into_iter()
        .find(|c| c.durable == durable)
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Where.
    pub subject: Subject,
    /// De-duplication id (`Nats-Msg-Id`), unique per message within the stream.
    pub id: String,
    /// The payload.
    pub payload: Bytes,
}

/// What a publish returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishAck {
    /// Stream sequence of the message (of the original, for a duplicate).
    pub seq: u64,
    /// The message id had been seen within the duplicate window.
    pub duplicate: bool,
}

/// Bus errors.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus is shutting down or closed.
    #[error("bus closed")]
    Closed,
    /// No consumer of that name exists on the stream.
    #[error("unknown consumer {0}")]
    UnknownConsumer(String),
    /// The publish or fetch did not complete in time.
    #[error("bus operation timed out after {0:?}")]
    Timeout(Duration),
    /// The broker refused or failed the operation.
    #[error("broker: {0}")]
    Broker(String),
    /// No process serves the service called.
    #[error("no process serves {0}")]
    NoService(String),
}

/// A payload's decoded form, shared by every delivery of one stored
/// message: the in-process bus keeps one per message, so the consumers of a
/// stream (the live feed, alerts, the archive and one aggregator per entity
/// kind all read every enriched post) decode it once between them instead
/// of once each. Over NATS each delivery has its own.
#[derive(Clone, Default)]
pub struct Decoded(Arc<OnceLock<Arc<dyn Any + Send + Sync>>>);

/// One delivered message; acknowledge it once its effect is durable.
pub struct Delivery {
    /// Subject it was published on.
    pub subject: Subject,
    /// The payload as published.
    pub payload: Bytes,
    /// Stream sequence.
    pub seq: u64,
    /// How many times it has been delivered (1 on the first delivery).
    pub delivered: u32,
    decoded: Decoded,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.subject)
            .field("seq", &self.seq)
            .field("delivered", &self.delivered)
            .finish()
    }
}

impl Delivery {
    /// Builds a delivery (used by bus implementations).
    pub fn new(
        subject: Subject,
        payload: Bytes,
        seq: u64,
        delivered: u32,
        acker: Box<dyn Acker>,
    ) -> Self {
        Delivery {
            subject,
            payload,
            seq,
            delivered,
            decoded: Decoded::default(),
            acker,
        }
    }

    /// Shares `decoded` with the other deliveries of the same message.
    pub fn with_decoded(mut self, decoded: Decoded) -> Self {
        self.decoded = decoded;
        self
    }

    /// The payload decoded by `decode`, or the value another delivery of the
    /// same message already decoded as a `T`.
    pub fn decoded<T, E>(&self, decode: impl FnOnce(&[u8]) -> Result<T, E>) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
    {
        if let Some(hit) = self.already_decoded::<T>() {
            return Ok(hit);
        }
        let value = Arc::new(decode(&self.payload)?);
        // Another consumer may have set it meanwhile: same bytes, same value.
        let _ = self
            .decoded
            .0
            .set(Arc::clone(&value) as Arc<dyn Any + Send + Sync>);
        Ok(value)
    }

    /// The value another delivery of the same message decoded as a `T`, if any.
    pub fn already_decoded<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        Arc::clone(self.decoded.0.get()?).downcast::<T>().ok()
    }

    /// The payload as an enriched post (shared, see [`Decoded`]).
    pub fn enriched(&self) -> Result<Arc<crate::domain::EnrichedPost>, serde_json::Error> {
        self.decoded(|b| serde_json::from_slice(b))
    }

    /// The effect is durable: never deliver this message again.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Processing failed transiently: deliver again after `delay`.
    pub async fn nak(self, delay: Duration) -> Result<(), BusError> {
        self.acker.nak(delay).await
    }

    /// The message can never be processed: dead-letter it now with `reason`.
    pub async fn term(self, reason: &str) -> Result<(), BusError> {
        self.acker.term(reason).await
    }
}

/// Acknowledgement channel of one delivery (implemented per bus).
#[async_trait]
pub trait Acker: Send + Sync {
    /// See [`Delivery::ack`].
    async fn ack(&self) -> Result<(), BusError>;
    /// See [`Delivery::nak`].
    async fn nak(&self, delay: Duration) -> Result<(), BusError>;
    /// See [`Delivery::term`].
    async fn term(&self, reason: &str) -> Result<(), BusError>;
}

/// A handle on a durable consumer.
#[async_trait]
pub trait Consumer: Send {
    /// Up to `max` messages; waits at most `wait` for the first one and
    /// returns an empty batch when none came.
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError>;
}

/// Lag and state of one durable consumer, for `/metrics` and the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConsumerStats {
    /// Stream consumed.
    pub stream: &'static str,
    /// Durable name.
    pub durable: String,
    /// Messages in the stream not yet delivered to this consumer.
    pub pending: u64,
    /// Delivered but not yet acknowledged.
    pub ack_pending: u64,
    /// Redeliveries so far.
    pub redelivered: u64,
    /// Messages dead-lettered after max_deliver or a term (absent where the
    /// broker does not count them per consumer; see `/api/admin/dlq`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered: Option<u64>,
}

/// Stream counters, for `/metrics` and the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StreamStats {
    /// Stream name.
    pub stream: &'static str,
    /// Messages held now.
    pub messages: u64,
    /// Messages accepted so far.
    pub published: u64,
    /// Publishes recognised as duplicates (absent where the broker does not count them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u64>,
}

/// A message given up on, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Stream it was in.
    pub stream: &'static str,
    /// Consumer that gave up on it.
    pub durable: String,
    /// Its stream sequence.
    pub seq: u64,
    /// Why.
    pub reason: String,
    /// Its payload, lossily decoded as UTF-8 for display.
    pub payload: String,
}

/// The bus between stages.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` on `subject` with de-duplication id `msg_id`;
    /// waits while the stream is full.
    async fn publish(
        &self,
        subject: Subject,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<PublishAck, BusError>;

    /// Publishes several messages; returns once every one is stored, acks
    /// in the same order. Buses that can pipeline do (JetStream sends them
    /// all, then collects the acks).
    async fn publish_batch(&self, messages: &[Outgoing]) -> Result<Vec<PublishAck>, BusError> {
        let mut acks = Vec::with_capacity(messages.len());
        for m in messages {
            acks.push(self.publish(m.subject, &m.id, m.payload.clone()).await?);
        }
        Ok(acks)
    }

    /// Creates the durable consumer if it does not exist (settings are
    /// updated if it does) and returns a handle on it.
    async fn consumer(&self, spec: ConsumerSpec) -> Result<Box<dyn Consumer>, BusError>;

    /// Creates (or updates) these durable consumers without opening them:
    /// called at start, before anything is published.
    async fn ensure_consumers(&self, specs: &[ConsumerSpec]) -> Result<(), BusError>;

    /// Stream counters.
    async fn stream_stats(&self) -> Vec<StreamStats>;

    /// Consumer lag and counters.
    async fn consumer_stats(&self) -> Vec<ConsumerStats>;

    /// Recently dead-lettered messages (newest last).
    async fn dead_letters(&self) -> Vec<DeadLetter>;

    /// Publishes every dead letter again on the subject it came from (after
    /// a fix) and removes it from the dead letters; returns how many. A
    /// replayed post that some consumers had already counted is recognised
    /// by its id and counted once.
    async fn replay_dead_letters(&self) -> Result<usize, BusError>;

    /// Serves requests to `service` from the other processes (one of the
    /// processes serving it gets each request): each arrives with the
    /// channel its answer goes back on. Dropping the receiver stops serving.
    async fn serve(&self, service: &str) -> Result<Requests, BusError>;

    /// Asks the process serving `service`; its answer, or
    /// [`BusError::NoService`] / [`BusError::Timeout`].
    async fn call(
        &self,
        service: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError>;

    /// Stops the bus: pending and future calls fail with [`BusError::Closed`].
    fn close(&self);
}

/// Requests to a service this process serves ([`Bus::serve`]): the payload
/// and where its answer goes.
pub type Requests = tokio::sync::mpsc::Receiver<(Bytes, tokio::sync::oneshot::Sender<Bytes>)>;

/// Requests queued per served service before callers wait.
pub const SERVICE_QUEUE: usize = 16;

/// The subject of a service (core NATS request/reply, not a stream).
pub fn service_subject(service: &str) -> String {
    format!("starling.rpc.{service}")
}
