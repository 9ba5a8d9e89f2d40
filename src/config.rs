//! Configuration: serde structs whose defaults are the single-binary mode
//! (in-process bus, embedded store in `./data`, synthetic stream on, web on
//! 127.0.0.1:8080).
//!
//! Precedence, lowest first: defaults, the TOML file given by `--config`,
//! `STARLING_…` environment variables, command-line flags. Every field can be
//! set from the environment: the variable name is `STARLING_` followed by the
//! field path in upper case with sections joined by `__`, e.g.
//! `STARLING_CONNECTORS__SYNTHETIC__RATE=200` or `STARLING_HTTP__LISTEN=0.0.0.0:9000`.
//! Values are read as TOML (`200`, `true`, `["a", "b"]`) and fall back to a
//! plain string. Unknown fields, in the file or the environment, are rejected
//! with the name that was not understood.

use crate::domain::EntityKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Environment variables with this prefix configure Starling.
pub const ENV_PREFIX: &str = "STARLING_";

/// `STARLING_` variables that are not configuration (read by tests and
/// logging) and so are not checked against the config fields.
const ENV_NOT_CONFIG: &[&str] = &["STARLING_LOG", "STARLING_TEST_"];

/// Errors while loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown/ill-typed fields.
    #[error("invalid config file {path}: {message}")]
    File { path: PathBuf, message: String },
    /// An environment override names an unknown field or has a wrong type.
    #[error("invalid environment override {var}: {message}")]
    Env { var: String, message: String },
    /// The merged configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A group of stages one process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every stage (the single-binary default).
    All,
    /// Connectors and `POST /api/ingest`: publishes raw posts.
    Ingest,
    /// Classifier workers: raw → enriched.
    Classify,
    /// Aggregators, the store writer, the hub and retention: owns the store.
    Aggregate,
    /// The REST and WebSocket API (reads the store: with the embedded store
    /// it runs in the process that aggregates; with ScyllaDB it may run
    /// alone, answering series, entities and summaries of every shard).
    Web,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Stages this process runs (`["all"]`, or e.g. `["classify"]`); any
    /// split needs the JetStream bus (`bus.nats_url`).
    pub roles: Vec<Role>,
    /// Web server (REST, WebSocket, health).
    pub http: HttpConfig,
    /// API keys, scopes and rate limits.
    pub auth: AuthConfig,
    /// Where and how data is stored.
    pub store: StoreConfig,
    /// The message bus between stages.
    pub bus: BusConfig,
    /// Sources of posts.
    pub connectors: ConnectorsConfig,
    /// Scoring workers.
    pub classifier: ClassifierConfig,
    /// How posts are attributed to entities.
    pub entities: EntitiesConfig,
    /// Windowing of per-entity time series.
    pub aggregation: AggregationConfig,
    /// Actor supervision.
    pub supervisor: SupervisorConfig,
    /// The alert engine's rules.
    pub alerts: AlertsConfig,
    /// Delivery of alert events to registered webhook endpoints.
    pub webhooks: WebhooksConfig,
    /// Per-entity summaries (LLM, or extractive without a model).
    pub summaries: SummariesConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            roles: vec![Role::All],
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            store: StoreConfig::default(),
            bus: BusConfig::default(),
            connectors: ConnectorsConfig::default(),
            classifier: ClassifierConfig::default(),
            entities: EntitiesConfig::default(),
            aggregation: AggregationConfig::default(),
            supervisor: SupervisorConfig::default(),
            alerts: AlertsConfig::default(),
            webhooks: WebhooksConfig::default(),
            summaries: SummariesConfig::default(),
        }
    }
}

/// Web server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port (printed at start).
    pub listen: String,
    /// Largest accepted request body, in bytes (ingest batches).
    pub max_body_bytes: usize,
    /// Most posts accepted in one ingest request.
    pub max_batch_items: usize,
    /// Web worker threads (0 = one per core).
    pub workers: usize,
    /// Largest WebSocket frame accepted from a client, in bytes.
    pub ws_max_frame_bytes: usize,
    /// Outgoing events queued per WebSocket client before the oldest are dropped.
    pub ws_queue_len: usize,
    /// Seconds a WebSocket client may keep losing frames (its queue never
    /// draining below half) before it is disconnected as too slow.
    pub ws_slow_client_grace_s: u64,
    /// Subscriptions one WebSocket connection may hold.
    pub ws_max_subscriptions: usize,
    /// WebSocket connections one API key may hold open at once; more are
    /// refused with 429 (no limit when auth is off).
    pub ws_max_connections_per_key: usize,
    /// Seconds without a pong before a WebSocket client is disconnected.
    pub ws_client_timeout_s: u64,
    /// How far in the future a post's `created_at` may be (clock skew), in seconds.
    pub max_future_skew_s: i64,
    /// Browser origins allowed to call the API (CORS), e.g.
    /// `["https://dash.example.com"]`; `["*"]` allows any; empty (default)
    /// sends no CORS headers, so only same-origin pages can call it.
    pub cors_origins: Vec<String>,
    /// How long an entity listing's answer is reused for the same query, in
    /// milliseconds (a listing reads every entity's series; dashboards ask
    /// the same one often). 0 computes every request.
    pub listing_cache_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_items: 10_000,
            workers: 0,
            ws_max_frame_bytes: 64 * 1024,
            ws_queue_len: 1_024,
            ws_slow_client_grace_s: 10,
            ws_max_subscriptions: 16,
            ws_max_connections_per_key: 256,
            ws_client_timeout_s: 30,
            max_future_skew_s: 300,
            cors_origins: Vec::new(),
            listing_cache_ms: 1_000,
        }
    }
}

/// Whether API keys are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Required when `http.listen` is not a loopback address.
    Auto,
    /// Always required.
    On,
    /// Never required (local single-user runs).
    Off,
}

/// What a key may do. `admin` includes the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Lookups, search and the WebSocket feed.
    Read,
    /// `POST /api/ingest`.
    Ingest,
    /// Acknowledging and resolving alerts, managing alert rules (reading
    /// them needs `read`).
    Alerts,
    /// Admin endpoints (actors, consumers, dead letters, keys), and everything else.
    Admin,
}

/// One API key from the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for the key (shown in logs and the admin API, never the secret).
    pub id: String,
    /// SHA-256 of the secret, in hex (`starling hash-key SECRET` prints it).
    pub sha256: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
}

impl Scope {
    /// The name used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Ingest => "ingest",
            Scope::Alerts => "alerts",
            Scope::Admin => "admin",
        }
    }
}

/// API keys and rate limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `auto` (on when listening beyond loopback), `on` or `off`.
    pub mode: AuthMode,
    /// Keys accepted besides those created through `POST /api/admin/keys`.
    pub keys: Vec<ApiKeyConfig>,
    /// Requests per second allowed per key (per client address when auth is
    /// off); 0 = unlimited.
    pub rate_per_s: f64,
    /// Requests a key may make at once above its rate (token bucket size).
    pub burst: f64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Auto,
            keys: Vec::new(),
            rate_per_s: 0.0,
            burst: 100.0,
        }
    }
}

impl AuthConfig {
    /// Whether keys are required for a server listening on `listen`.
    pub fn required_for(&self, listen: &str) -> bool {
        match self.mode {
            AuthMode::On => true,
            AuthMode::Off => false,
            AuthMode::Auto => {
                let host = listen
                    .rsplit_once(':')
                    .map_or(listen, |(h, _)| h)
                    .trim_matches(['[', ']']);
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                !loopback
            }
        }
    }
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the embedded store; created if missing.
    pub data_dir: PathBuf,
    /// Sync every committed batch to disk before acknowledging the messages it
    /// counted (survives power loss; slower). Without it every commit is still
    /// handed to the OS before the acknowledgement, so a process crash loses
    /// nothing committed; a power loss may lose the last second of windows.
    pub fsync: bool,
    /// How long 1-second windows are kept, in hours.
    pub retention_1s_hours: u64,
    /// How long 1-minute windows are kept, in days.
    pub retention_1m_days: u64,
    /// How long 1-hour windows are kept, in days; resolved alerts and the
    /// alert event log are kept as long.
    pub retention_1h_days: u64,
    /// How long archived posts (recent posts, top posts, authors, search)
    /// are kept, in days.
    pub retention_posts_days: u64,
    /// Entries in the hot-metrics cache (moka).
    pub cache_entries: u64,
    /// Block cache of the embedded engine, in MiB.
    pub block_cache_mib: u64,
    /// Largest write buffer (memtable) of one keyspace of the embedded
    /// engine before it is flushed to disk, in MiB. The keyspaces written
    /// at a time (entity records, the current period of each window
    /// resolution and of the counted post ids) each hold up to this much
    /// memory, so it bounds the store's share of the heap with the block
    /// cache. fjall's own default is 64. fjall records it when a keyspace
    /// is created: in an existing data directory it applies to the window
    /// periods created from then on, not to keyspaces that already exist.
    pub memtable_mib: u64,
    /// ScyllaDB instead of the embedded engine, when `nodes` is set.
    pub scylla: ScyllaConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("./data"),
            fsync: false,
            retention_1s_hours: 6,
            retention_1m_days: 7,
            retention_1h_days: 400,
            retention_posts_days: 7,
            cache_entries: 100_000,
            block_cache_mib: 64,
            memtable_mib: 16,
            scylla: ScyllaConfig::default(),
        }
    }
}

/// ScyllaDB as the shared store of time series, summaries, alerts, alert
/// rules and the alert event log (`starling migrate` creates the schema). Retention comes from `[store]`: each table's
/// default TTL is its resolution's retention, set when `migrate` runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScyllaConfig {
    /// Contact points (`host:9042`); empty = the embedded store.
    pub nodes: Vec<String>,
    /// Keyspace of every table.
    pub keyspace: String,
    /// Replication factor of the keyspace (`migrate`; 3 in production,
    /// 1 for a single test node).
    pub replication_factor: u32,
    /// Data centre: the keyspace is replicated there
    /// (NetworkTopologyStrategy) and requests prefer its nodes. Empty =
    /// every data centre with `replication_factor`, no preference.
    pub datacenter: String,
    /// Consistency of writes: `one`, `local_quorum`, `quorum`, `all`, ….
    pub write_consistency: String,
    /// Consistency of reads.
    pub read_consistency: String,
    /// Client-side timeout of one request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Timeout of opening a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Retries of a failed idempotent request (overloaded, timed out,
    /// unavailable, broken connection) after the driver's own, with
    /// exponential back-off from `retry_backoff_ms`.
    pub retries: u32,
    /// First back-off between retries, in milliseconds (doubles, at most
    /// 32 times this).
    pub retry_backoff_ms: u64,
    /// Requests in flight at once from this process; more wait (back-pressure).
    pub max_in_flight: usize,
    /// Rows per page of long reads.
    pub page_size: i32,
    /// How long a lookup served from the hot cache may be behind the store,
    /// in milliseconds: another process may have written the entity.
    pub cache_ttl_ms: u64,
    /// How long the claim of the process that runs the alert engine lasts
    /// without being renewed, in milliseconds (it renews every third of it).
    /// One process at a time runs the engine; when it dies, another takes
    /// over after at most this long.
    pub alert_claim_ttl_ms: u64,
    /// User name (password authentication); empty = none.
    pub username: String,
    /// Password (`starling config` does not print it).
    pub password: String,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        ScyllaConfig {
            nodes: Vec::new(),
            keyspace: "starling".into(),
            replication_factor: 3,
            datacenter: String::new(),
            write_consistency: "local_quorum".into(),
            read_consistency: "local_quorum".into(),
            request_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
            retries: 3,
            retry_backoff_ms: 50,
            max_in_flight: 256,
            page_size: 1_000,
            cache_ttl_ms: 1_000,
            alert_claim_ttl_ms: 10_000,
            username: String::new(),
            password: String::new(),
        }
    }
}

impl ScyllaConfig {
    /// Whether ScyllaDB is the store.
    pub fn enabled(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("store.scylla.{m}")));
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 48
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !ident(&self.keyspace) {
            return bad("keyspace must be a letter then letters, digits or _ (at most 48)");
        }
        if !self.datacenter.is_empty()
            && !self
                .datacenter
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return bad("datacenter may hold letters, digits, _ - . only");
        }
        if self.replication_factor == 0 {
            return bad("replication_factor must be at least 1");
        }
        for (name, v) in [
            ("write_consistency", &self.write_consistency),
            ("read_consistency", &self.read_consistency),
        ] {
            if parse_consistency(v).is_none() {
                return bad(&format!(
                    "{name}: {v:?} is not one of any, one, two, three, quorum, all, \
                     local_quorum, each_quorum, local_one"
                ));
            }
        }
        if self.request_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return bad("request_timeout_ms and connect_timeout_ms must be at least 1");
        }
        if self.retry_backoff_ms == 0 || self.max_in_flight == 0 || self.page_size < 1 {
            return bad("retry_backoff_ms, max_in_flight and page_size must be at least 1");
        }
        if self.alert_claim_ttl_ms < 1_000 {
            return bad("alert_claim_ttl_ms must be at least 1000");
        }
        Ok(())
    }
}

/// A consistency level by its CQL name (`local_quorum`, case-insensitive).
pub fn parse_consistency(name: &str) -> Option<scylla::frame::types::Consistency> {
    use scylla::frame::types::Consistency as C;
    Some(match name.to_ascii_lowercase().as_str() {
        "any" => C::Any,
        "one" => C::One,
        "two" => C::Two,
        "three" => C::Three,
        "quorum" => C::Quorum,
        "all" => C::All,
        "local_quorum" => C::LocalQuorum,
        "each_quorum" => C::EachQuorum,
        "local_one" => C::LocalOne,
        _ => return None,
    })
}

/// The bus between stages: in-process by default, NATS JetStream when
/// `nats_url` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// NATS server URL (`nats://127.0.0.1:4222`); empty = the in-process bus.
    pub nats_url: String,
    /// How long a publish keeps retrying a full stream or an absent broker
    /// before it fails, in milliseconds.
    pub publish_timeout_ms: u64,
    /// Messages a stream holds before publishers wait for consumers (back-pressure).
    pub stream_max_msgs: usize,
    /// A message id seen again within this many seconds is a duplicate and dropped.
    pub duplicate_window_s: u64,
    /// Milliseconds a consumer may hold a message unacknowledged before it is redelivered.
    pub ack_wait_ms: u64,
    /// Deliveries before a message that is never acknowledged is dead-lettered.
    pub max_deliver: u32,
    /// Unacknowledged messages one durable consumer may have outstanding.
    pub max_ack_pending: usize,
    /// Shards the enriched posts are partitioned into by entity (1..=1024):
    /// one subject and one durable consumer per kind and shard, so that
    /// aggregation can be spread over processes (`aggregation.owned_shards`).
    /// Every process on the same NATS must use the same count (checked at start).
    pub shards: u16,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            nats_url: String::new(),
            publish_timeout_ms: 30_000,
            stream_max_msgs: 200_000,
            duplicate_window_s: 120,
            ack_wait_ms: 30_000,
            max_deliver: 5,
            max_ack_pending: 100_000,
            shards: 1,
        }
    }
}

/// Sources of posts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorsConfig {
    /// The synthetic stream generator.
    pub synthetic: SyntheticConfig,
    /// Replays of JSONL files (one post per line).
    pub replay: Vec<ReplayConfig>,
}

/// The synthetic generator: a deterministic, realistic social stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// Posts per second; 0 switches the generator off.
    pub rate: f64,
    /// Seed of the generator; the same seed gives the same stream.
    pub seed: u64,
    /// Play the scripted episodes (churn wave, narrative spike, project crash).
    pub episodes: bool,
    /// Length of one episode cycle in seconds (episodes repeat every cycle).
    pub episode_cycle_s: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            rate: 50.0,
            seed: 42,
            episodes: true,
            episode_cycle_s: 600,
        }
    }
}

/// One JSONL replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// File with one post (ingest JSON shape) per line.
    pub path: PathBuf,
    /// Posts per second; absent or 0 = as fast as the pipeline takes them.
    #[serde(default)]
    pub rate: Option<f64>,
}

/// Scoring workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    /// The classifier tier: `fast` (trained linear model: sentiment,
    /// emotion, toxicity, churn risk; the default), `lexicon` (VADER,
    /// sentiment only) or `encoder` (MiniLM embeddings + trained heads
    /// blended with the fast tier: same outputs, slower, better sentiment;
    /// falls back to `fast`, with a warning, when its files are missing).
    pub tier: Tier,
    /// Worker actors sharing the `classify` consumer.
    pub workers: usize,
    /// Most posts a worker takes from the bus at once.
    pub batch_size: usize,
    /// The encoder tier's files and batching (used when `tier = "encoder"`).
    pub encoder: EncoderConfig,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            tier: Tier::Fast,
            workers: 2,
            batch_size: 512,
            encoder: EncoderConfig::default(),
        }
    }
}

/// The encoder tier (`[classifier.encoder]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    /// Folder with all-MiniLM-L6-v2's `config.json`, `model.safetensors`
    /// and `tokenizer.json` (`models/fetch-minilm.sh` writes it).
    pub model_dir: PathBuf,
    /// Folder with the trained heads (`heads.json`, `heads.safetensors`).
    pub heads_dir: PathBuf,
    /// Most texts per model call; the classifier workers' posts are
    /// batched together up to this size.
    pub max_batch: usize,
    /// Longest a text waits for its batch to fill, in milliseconds.
    pub max_wait_ms: u64,
    /// Most texts queued for (or in) inference; classifier workers wait
    /// beyond it.
    pub queue: usize,
    /// Where the model runs: `cpu`, or `cuda` (a build with the `cuda`
    /// feature and an NVIDIA GPU).
    pub device: EncoderDevice,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            model_dir: PathBuf::from("models/cache/all-minilm-l6-v2"),
            heads_dir: PathBuf::from("models/encoder"),
            max_batch: 64,
            max_wait_ms: 5,
            queue: 1024,
            device: EncoderDevice::Cpu,
        }
    }
}

/// Where the encoder tier runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EncoderDevice {
    /// The CPU.
    Cpu,
    /// The first CUDA GPU.
    Cuda,
}

/// A classifier tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The trained linear model (CPU, fast).
    Fast,
    /// VADER's lexicon (sentiment only).
    Lexicon,
    /// MiniLM embeddings with trained heads, blended with the fast tier.
    Encoder,
}

/// Attribution of posts to entities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntitiesConfig {
    /// Authors with at least this many followers are also counted as `kol`.
    pub kol_followers: u64,
    /// Named projects and the words that refer to them (besides `$ID`).
    pub projects: Vec<ProjectConfig>,
    /// Keywords that count as topics when they appear in a post (lower case).
    pub keywords: Vec<String>,
    /// Narratives: named groups of topics.
    pub narratives: Vec<NarrativeConfig>,
}

/// A project and its aliases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project id, upper case (`SOL`).
    pub id: String,
    /// Words or phrases that mean this project (`solana`), matched case-insensitively on word boundaries.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A narrative: a group of topics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NarrativeConfig {
    /// Narrative id (`ai-agents`).
    pub id: String,
    /// Topic ids (hashtags without `#`, keywords), lower case.
    pub topics: Vec<String>,
}

impl Default for EntitiesConfig {
    fn default() -> Self {
        let project = |id: &str, aliases: &[&str]| ProjectConfig {
            id: id.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        };
        let narrative = |id: &str, topics: &[&str]| NarrativeConfig {
            id: id.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
        };
        EntitiesConfig {
            kol_followers: 100_000,
            projects: vec![
                project("BTC", &["bitcoin"]),
                project("ETH", &["ethereum"]),
                project("SOL", &["solana"]),
                project("DOGE", &["dogecoin"]),
                project("ADA", &["cardano"]),
                project("AVAX", &["avalanche"]),
                project("LINK", &["chainlink"]),
                project("ARB", &["arbitrum"]),
            ],
            keywords: [
                "outage", "refund", "cancel", "airdrop", "etf", "hack", "update",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            narratives: vec![
                narrative("ai-agents", &["ai", "aiagents", "agents", "llm"]),
                narrative("memecoins", &["memecoin", "memecoins", "doge", "pepe"]),
                narrative("defi", &["defi", "dex", "yield", "staking"]),
                narrative("regulation", &["sec", "etf", "regulation", "mica"]),
                narrative("customer-churn", &["cancel", "refund", "outage"]),
            ],
        }
    }
}

/// Windowing of per-entity time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregationConfig {
    /// How long a 1-second window stays open in memory after it ends, in
    /// milliseconds. Posts arriving later are merged into the stored window
    /// and counted as late; they are never dropped.
    pub allowed_lateness_ms: u64,
    /// How often closed windows are flushed to the store, in milliseconds.
    pub flush_interval_ms: u64,
    /// Most posts an aggregator takes from the bus at once.
    pub batch_size: usize,
    /// The shards (of `bus.shards`) this process aggregates; empty = all.
    /// Give each aggregating process its own disjoint set: a shard's
    /// entities are then counted by exactly one process.
    pub owned_shards: Vec<u16>,
}

impl Default for AggregationConfig {
    fn default() -> Self {
        AggregationConfig {
            allowed_lateness_ms: 2_000,
            flush_interval_ms: 250,
            batch_size: 2_048,
            owned_shards: Vec::new(),
        }
    }
}

/// The alert engine: built-in rules and their thresholds. Custom rules are
/// created over the API (`/api/alerts/rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate rules at all (when false, posts are read and let go).
    pub enabled: bool,
    /// Entity kinds whose series the baseline and custom rules watch
    /// (per-user and per-post series are too many to watch).
    pub kinds: Vec<EntityKind>,
    /// Length of one bucket of an entity's recent series, in seconds; rules
    /// are evaluated each time a bucket closes.
    pub bucket_s: u64,
    /// Window the built-in rules judge (sum of the latest buckets), seconds.
    pub window_s: u64,
    /// Half-life of the exponentially weighted baselines, seconds.
    pub baseline_half_life_s: u64,
    /// History an entity needs before the baseline rules judge it, seconds
    /// (baselines live in memory and are rebuilt after a restart).
    pub warmup_s: u64,
    /// Event-time slack: a bucket closes once posts this much newer arrive
    /// (or, with no posts, this much wall time passes).
    pub lateness_s: u64,
    /// Fewest posts in the window for a baseline rule to judge it.
    pub min_volume: u64,
    /// Deviations past the baseline for a sentiment shift.
    pub sentiment_k: f64,
    /// Least deviation of the sentiment baseline (sentiment is −1..1).
    pub sentiment_floor: f64,
    /// Deviations past the baseline for a volume spike (deviation at least √mean).
    pub volume_k: f64,
    /// A volume spike is also at least this multiple of the baseline mean.
    pub volume_ratio: f64,
    /// Deviations past the baseline for a toxicity surge.
    pub toxicity_k: f64,
    /// Least mean toxicity of a window that can be a surge.
    pub toxicity_min: f64,
    /// Consecutive clear buckets that resolve a baseline or custom alert.
    pub clear_buckets: u32,
    /// Seconds after a baseline alert resolves before the same rule may
    /// alert on the same entity again.
    pub cooldown_s: u64,
    /// Churn risk from which a post raises a churn alert.
    pub churn_threshold: f64,
    /// Churn posts about an entity within this many seconds of the last one
    /// are grouped into its open churn alert; a quiet period this long
    /// resolves it.
    pub churn_group_s: u64,
    /// Absolute sentiment from which a KOL's post about a project alerts.
    pub kol_min_sentiment: f64,
    /// Seconds before the same KOL may alert on the same project again.
    pub kol_cooldown_s: u64,
    /// Entities tracked at most (the least recently active are let go first).
    pub max_entities: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            kinds: vec![
                EntityKind::Kol,
                EntityKind::Project,
                EntityKind::Topic,
                EntityKind::Narrative,
                EntityKind::Macro,
                EntityKind::Platform,
                EntityKind::Channel,
                EntityKind::Product,
                EntityKind::Geo,
            ],
            bucket_s: 5,
            window_s: 30,
            baseline_half_life_s: 600,
            warmup_s: 600,
            lateness_s: 2,
            min_volume: 15,
            sentiment_k: 5.0,
            sentiment_floor: 0.05,
            volume_k: 5.0,
            volume_ratio: 2.0,
            toxicity_k: 5.0,
            toxicity_min: 0.3,
            clear_buckets: 6,
            cooldown_s: 300,
            churn_threshold: 0.7,
            churn_group_s: 300,
            kol_min_sentiment: 0.6,
            kol_cooldown_s: 3_600,
            max_entities: 20_000,
        }
    }
}

/// Delivery of alert events to the webhook endpoints registered over the
/// API (`/api/webhooks`): retries, back-off and when an endpoint is paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Run the dispatcher (when false, endpoints can still be registered and
    /// alert events are turned into deliveries once it runs again).
    pub enabled: bool,
    /// Back-off after a first failed attempt, in milliseconds; it doubles
    /// with every further failure of the same delivery, and the actual wait
    /// is drawn uniformly between 0 and that (full jitter).
    pub backoff_base_ms: u64,
    /// Cap of the back-off before jitter, in milliseconds.
    pub backoff_max_ms: u64,
    /// Time limit of one delivery attempt (connect, send, response head), in
    /// milliseconds; past it the attempt counts as failed.
    pub timeout_ms: u64,
    /// Consecutive failed attempts after which an endpoint is paused (no
    /// more attempts until `POST /api/webhooks/{id}/resume`).
    pub max_consecutive_failures: u32,
    /// An endpoint whose oldest pending delivery is older than this, in
    /// seconds, is paused at its next failed attempt.
    pub max_age_s: u64,
    /// Deliveries in flight at once per endpoint (endpoints never wait on
    /// each other).
    pub max_in_flight_per_endpoint: usize,
    /// How often the alert event log and the outbox are looked at when
    /// nothing woke the dispatcher, in milliseconds.
    pub poll_interval_ms: u64,
    /// Most endpoints that can be registered.
    pub max_endpoints: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            enabled: true,
            backoff_base_ms: 1_000,
            backoff_max_ms: 600_000,
            timeout_ms: 10_000,
            max_consecutive_failures: 10,
            max_age_s: 86_400,
            max_in_flight_per_endpoint: 4,
            poll_interval_ms: 1_000,
            max_endpoints: 100,
        }
    }
}

impl WebhooksConfig {
    /// Checks values the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("webhooks.{m}")));
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            return bad(
                "backoff_base_ms must be at least 1 and backoff_max_ms at least backoff_base_ms",
            );
        }
        if self.timeout_ms == 0 || self.poll_interval_ms == 0 {
            return bad("timeout_ms and poll_interval_ms must be at least 1");
        }
        if self.max_consecutive_failures == 0 || self.max_age_s == 0 {
            return bad("max_consecutive_failures and max_age_s must be at least 1");
        }
        if !(1..=64).contains(&self.max_in_flight_per_endpoint) {
            return bad("max_in_flight_per_endpoint must be 1..=64");
        }
        if self.max_endpoints == 0 {
            return bad("max_endpoints must be at least 1");
        }
        Ok(())
    }
}

/// Per-entity summaries: what is said about an entity over a window, by a
/// local LLM (cargo feature `llm`, a GGUF file) or, without one, extractive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SummariesConfig {
    /// Run the summarizer (scheduled summaries and `POST …/summary`).
    pub enabled: bool,
    /// A local GGUF chat model (llama, mistral, phi2/3, qwen2/3,
    /// starcoder2 architectures; `models/fetch-smollm2.sh` prints one).
    /// Absent: every summary is extractive. Needs the `llm` cargo feature.
    pub model_path: Option<PathBuf>,
    /// Summarizer workers, each with its own engine (on 2 CPU cores one is
    /// fastest: concurrent generations slow each other down).
    pub workers: usize,
    /// Sequences one engine batches together (mistral.rs `max_num_seqs`).
    pub max_batch: usize,
    /// Run the model on the CPU even when built with `cuda`.
    pub force_cpu: bool,
    /// Requests waiting for a worker; past it scheduled requests are dropped
    /// (counted) and on-demand ones refused with 503.
    pub queue: usize,
    /// Most summaries started per minute, scheduled and on-demand together.
    pub max_per_minute: u32,
    /// Time limit of one generation, in seconds; past it the generation is
    /// stopped and the summary falls back to extractive.
    pub timeout_s: u64,
    /// The window a summary covers, in seconds (ending now).
    pub window_s: u64,
    /// How often the most active entities are summarised, in seconds.
    pub interval_s: u64,
    /// How many entities per kind each round summarises (by volume over the window).
    pub top_n: usize,
    /// Kinds summarised each round (any entity can be asked for on demand).
    pub kinds: Vec<EntityKind>,
    /// Most posts quoted in a prompt.
    pub max_posts: usize,
    /// Token budget of the quoted posts (approximated as 4 bytes a token).
    pub prompt_tokens: usize,
    /// Most tokens generated.
    pub max_new_tokens: usize,
    /// Longest accepted summary text, in characters.
    pub max_chars: usize,
    /// First wait before retrying a model that failed to load, in seconds
    /// (doubles on every failure up to `load_backoff_max_s`).
    pub load_backoff_s: u64,
    /// Cap of that wait, in seconds.
    pub load_backoff_max_s: u64,
    /// On-demand summaries (`POST …/summary`) per minute per caller.
    pub requests_per_minute: u32,
    /// Stored summaries are kept this many days.
    pub retention_days: u64,
}

impl Default for SummariesConfig {
    fn default() -> Self {
        SummariesConfig {
            enabled: true,
            model_path: None,
            workers: 1,
            max_batch: 4,
            force_cpu: false,
            queue: 256,
            max_per_minute: 30,
            timeout_s: 60,
            window_s: 3_600,
            interval_s: 300,
            top_n: 5,
            kinds: vec![
                EntityKind::Project,
                EntityKind::Topic,
                EntityKind::Narrative,
                EntityKind::Product,
            ],
            max_posts: 20,
            prompt_tokens: 600,
            max_new_tokens: 120,
            max_chars: 700,
            load_backoff_s: 5,
            load_backoff_max_s: 600,
            requests_per_minute: 6,
            retention_days: 30,
        }
    }
}

impl SummariesConfig {
    /// Checks values the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("summaries.{m}")));
        if !(1..=64).contains(&self.workers) || !(1..=256).contains(&self.max_batch) {
            return bad("workers must be 1..=64 and max_batch 1..=256");
        }
        if self.queue == 0 || self.max_per_minute == 0 || self.requests_per_minute == 0 {
            return bad("queue, max_per_minute and requests_per_minute must be at least 1");
        }
        if self.timeout_s == 0 || self.window_s < 60 || self.interval_s == 0 {
            return bad("timeout_s and interval_s must be at least 1, window_s at least 60");
        }
        if self.max_posts == 0 || self.prompt_tokens < 50 || self.max_new_tokens < 16 {
            return bad("max_posts must be at least 1, prompt_tokens 50, max_new_tokens 16");
        }
        if self.max_chars < 80 {
            return bad("max_chars must be at least 80");
        }
        if self.load_backoff_s == 0 || self.load_backoff_max_s < self.load_backoff_s {
            return bad("load_backoff_s must be at least 1 and at most load_backoff_max_s");
        }
        if self.retention_days == 0 {
            return bad("retention_days must be at least 1");
        }
        Ok(())
    }
}

/// Actor supervision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// First restart delay after a failure, in milliseconds (doubles each time).
    pub backoff_initial_ms: u64,
    /// Cap of the restart delay, in milliseconds.
    pub backoff_max_ms: u64,
    /// A child that ran this long without failing has its back-off reset, in seconds.
    pub backoff_reset_after_s: u64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            backoff_initial_ms: 100,
            backoff_max_ms: 30_000,
            backoff_reset_after_s: 60,
        }
    }
}

impl Config {
    /// Loads defaults, then the file (if any), then `STARLING_…` variables
    /// from `env`. Flags are applied by the caller afterwards, and the
    /// caller validates the result ([`Config::validate`]): a flag may be what
    /// makes the file's settings consistent (`--nats` for a role split).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut tree = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                // Parse once against the structs so that unknown fields in the
                // file are reported against the file, not the merged tree.
                let parsed: Config = toml::from_str(&text).map_err(|e| ConfigError::File {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
                to_tree(&parsed)?
            }
            None => to_tree(&Config::default())?,
        };
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .filter(|(k, _)| !ENV_NOT_CONFIG.iter().any(|p| k.starts_with(p)))
            .collect();
        overrides.sort();
        for (var, value) in overrides {
            apply_env(&mut tree, &var, &value)?;
            // Check after each variable so the error names the culprit.
            tree.clone()
                .try_into::<Config>()
                .map_err(|e| ConfigError::Env {
                    var: var.clone(),
                    message: e.to_string(),
                })?;
        }
        let config: Config = tree
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        Ok(config)
    }

    /// Whether this process runs `role` (directly or through `all`).
    pub fn runs(&self, role: Role) -> bool {
        self.roles.iter().any(|r| *r == role || *r == Role::All)
    }

    /// Checks values the types cannot.
    /// The shards this process aggregates, ascending, without repeats.
    pub fn owned_shards(&self) -> Vec<u16> {
        if self.aggregation.owned_shards.is_empty() {
            return (0..self.bus.shards.max(1)).collect();
        }
        let mut owned = self.aggregation.owned_shards.clone();
        owned.sort_unstable();
        owned.dedup();
        owned
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        let rate_ok = self.auth.rate_per_s.is_finite() && self.auth.rate_per_s >= 0.0;
        let burst_ok = self.auth.burst.is_finite() && self.auth.burst >= 1.0;
        if !(rate_ok && burst_ok) {
            return bad("auth.rate_per_s must be >= 0 and auth.burst >= 1");
        }
        for key in &self.auth.keys {
            if key.sha256.len() != 64 || !key.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ConfigError::Invalid(format!(
                    "auth.keys `{}`: sha256 must be 64 hex digits (starling hash-key SECRET prints it)",
                    key.id
                )));
            }
        }
        if self.roles.is_empty() {
            return bad("roles must name at least one of all, ingest, classify, aggregate, web");
        }
        let everything = [Role::Ingest, Role::Classify, Role::Aggregate, Role::Web]
            .into_iter()
            .all(|r| self.runs(r));
        if !everything && self.bus.nats_url.is_empty() {
            return bad("running only some roles needs the JetStream bus (--nats URL): the in-process bus cannot reach other processes");
        }
        if self.runs(Role::Web) && !self.runs(Role::Aggregate) && !self.store.scylla.enabled() {
            return bad("the web role reads the embedded store, which only the aggregate process can open: run web and aggregate in one process (or share ScyllaDB: --scylla)");
        }
        if !(self.connectors.synthetic.rate.is_finite() && self.connectors.synthetic.rate >= 0.0) {
            return bad("connectors.synthetic.rate must be a number >= 0");
        }
        let enc = &self.classifier.encoder;
        if enc.max_batch == 0 || enc.queue == 0 {
            return bad(
                "classifier.encoder.max_batch and classifier.encoder.queue must be at least 1",
            );
        }
        if self.classifier.workers == 0 {
            return bad("classifier.workers must be at least 1");
        }
        if self.classifier.batch_size == 0 || self.aggregation.batch_size == 0 {
            return bad("batch sizes must be at least 1");
        }
        if self.bus.stream_max_msgs == 0 || self.bus.max_ack_pending == 0 {
            return bad("bus.stream_max_msgs and bus.max_ack_pending must be at least 1");
        }
        if self.bus.shards == 0 || self.bus.shards > 1024 {
            return bad("bus.shards must be 1..=1024");
        }
        if let Some(s) = self
            .aggregation
            .owned_shards
            .iter()
            .find(|s| **s >= self.bus.shards)
        {
            return Err(ConfigError::Invalid(format!(
                "aggregation.owned_shards: shard {s} does not exist (bus.shards is {})",
                self.bus.shards
            )));
        }
        if self.owned_shards().len() < usize::from(self.bus.shards) && self.bus.nats_url.is_empty()
        {
            return bad("aggregation.owned_shards leaves shards to other processes, which needs the JetStream bus (--nats URL)");
        }
        if self.bus.max_deliver == 0 {
            return bad("bus.max_deliver must be at least 1");
        }
        if self.aggregation.flush_interval_ms == 0 {
            return bad("aggregation.flush_interval_ms must be at least 1");
        }
        if self.bus.ack_wait_ms
            <= self.aggregation.allowed_lateness_ms + self.aggregation.flush_interval_ms
        {
            return bad("bus.ack_wait_ms must exceed aggregation.allowed_lateness_ms + flush_interval_ms, or open windows would be redelivered");
        }
        if self.store.retention_1s_hours == 0
            || self.store.retention_1m_days == 0
            || self.store.retention_1h_days == 0
            || self.store.retention_posts_days == 0
        {
            return bad("retention must be at least 1 for every resolution and for posts");
        }
        self.webhooks.validate()?;
        self.summaries.validate()?;
        self.store.scylla.validate()?;
        Ok(())
    }

    /// The effective configuration as TOML (what `starling config` prints).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if !shown.store.scylla.password.is_empty() {
            shown.store.scylla.password = "(set, not shown)".into();
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

fn to_tree(config: &Config) -> Result<toml::Table, ConfigError> {
    toml::Table::try_from(config).map_err(|e| ConfigError::Invalid(e.to_string()))
}

/// Sets the field named by `var` (`STARLING_A__B`) in `tree`.
fn apply_env(tree: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Env {
        var: var.to_string(),
        message,
    };
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(err("empty field name".into()));
    }
    let (last, sections) = path
        .split_last()
        .ok_or_else(|| err("empty field name".into()))?;
    let mut table = tree;
    for section in sections {
        table = match table.get_mut(section) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(err(format!("`{section}` is not a section"))),
            None => return Err(err(format!("unknown section `{section}`"))),
        };
    }
    let parsed = parse_env_value(value);
    let current = table.get(last);
    let value = match (current, parsed) {
        (None, _) => return Err(err(format!("unknown field `{last}`"))),
        // Keep strings as strings even when they look like numbers or booleans.
        (Some(toml::Value::String(_)), _) => toml::Value::String(value.to_string()),
        (Some(toml::Value::Float(_)), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
        (_, parsed) => parsed,
    };
    table.insert(last.clone(), value);
    Ok(())
}

fn parse_env_value(value: &str) -> toml::Value {
    let doc = format!("v = {value}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(value.into())),
        Err(_) => toml::Value::String(value.to_string()),
    }
}

impl Config {
    /// The `created_at` range a post must fall in at `now` to be accepted:
    /// no further in the future than the allowed clock skew, no older than
    /// the longest retention.
    pub fn post_limits(&self, now: chrono::DateTime<chrono::Utc>) -> crate::domain::PostLimits {
        let days = i64::try_from(self.store.retention_1h_days)
            .unwrap_or(36_500)
            .min(36_500);
        crate::domain::PostLimits {
            newest: now + chrono::Duration::seconds(self.http.max_future_skew_s.max(0)),
            oldest: now - chrono::Duration::days(days),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn example_config_parses_and_matches_defaults_where_it_says_so() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("starling.example.toml");
        let config = Config::load(Some(&path), env(&[])).expect("example config must load");
        config.validate().expect("example config validates");
        assert_eq!(config.http.listen, "127.0.0.1:8080");
        assert!(!config.entities.projects.is_empty());
    }

    #[test]
    fn auth_auto_is_on_beyond_loopback_only() {
        let auto = AuthConfig::default();
        assert!(!auto.required_for("127.0.0.1:8080"));
        assert!(!auto.required_for("localhost:0"));
        assert!(!auto.required_for("[::1]:8080"));
        assert!(auto.required_for("0.0.0.0:8080"));
        assert!(auto.required_for("10.1.2.3:80"));
        let off = AuthConfig {
            mode: AuthMode::Off,
            ..AuthConfig::default()
        };
        assert!(!off.required_for("0.0.0.0:8080"));
        let on = AuthConfig {
            mode: AuthMode::On,
            ..AuthConfig::default()
        };
        assert!(on.required_for("127.0.0.1:8080"));
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults validate");
    }

    #[test]
    fn scylla_settings_come_from_the_environment_and_the_password_is_not_printed() {
        let c = Config::load(
            None,
            env(&[
                ("STARLING_STORE__SCYLLA__NODES", r#"["a:9042", "b:9042"]"#),
                ("STARLING_STORE__SCYLLA__PASSWORD", "hunter2"),
                ("STARLING_STORE__SCYLLA__WRITE_CONSISTENCY", "QUORUM"),
            ]),
        )
        .expect("loads");
        assert!(c.store.scylla.enabled());
        assert_eq!(c.store.scylla.nodes, vec!["a:9042", "b:9042"]);
        assert!(!c.to_toml().contains("hunter2"));
        let e = Config::load(
            None,
            env(&[("STARLING_STORE__SCYLLA__READ_CONSISTENCY", "most")]),
        )
        .expect("loads")
        .validate()
        .expect_err("unknown level");
        assert!(e.to_string().contains("read_consistency"), "{e}");
    }

    #[test]
    fn env_overrides_nested_fields_with_types() {
        let c = Config::load(
            None,
            env(&[
                ("STARLING_CONNECTORS__SYNTHETIC__RATE", "250"),
                ("STARLING_HTTP__LISTEN", "0.0.0.0:9000"),
                ("STARLING_STORE__FSYNC", "true"),
                ("STARLING_ENTITIES__KEYWORDS", r#"["a", "b"]"#),
                ("STARLING_LOG", "debug"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("overrides apply");
        assert_eq!(c.connectors.synthetic.rate, 250.0);
        assert_eq!(c.http.listen, "0.0.0.0:9000");
        assert!(c.store.fsync);
        assert_eq!(c.entities.keywords, vec!["a", "b"]);
    }

    #[test]
    fn unknown_env_field_is_rejected_by_name() {
        let e = Config::load(None, env(&[("STARLING_HTTP__LISTN", "x")])).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("STARLING_HTTP__LISTN") && msg.contains("listn"),
            "{msg}"
        );
    }

    #[test]
    fn ill_typed_env_value_is_rejected() {
        let e = Config::load(None, env(&[("STARLING_CLASSIFIER__WORKERS", "many")])).unwrap_err();
        assert!(
            e.to_string().contains("STARLING_CLASSIFIER__WORKERS"),
            "{e}"
        );
    }

    #[test]
    fn unknown_file_field_is_rejected_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:1\"\nbogus = 3\n").expect("write");
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn invalid_values_are_rejected() {
        let c = Config::load(None, env(&[("STARLING_CLASSIFIER__WORKERS", "0")])).expect("parses");
        assert!(c.validate().unwrap_err().to_string().contains("workers"));
        let c = Config::load(None, env(&[("STARLING_AGGREGATION__OWNED_SHARDS", "[2]")]))
            .expect("parses");
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("shard 2 does not exist"), "{e}");
        let mut c = Config::load(
            None,
            env(&[
                ("STARLING_BUS__SHARDS", "4"),
                ("STARLING_AGGREGATION__OWNED_SHARDS", "[3, 1, 3]"),
            ]),
        )
        .expect("parses");
        assert!(c.validate().unwrap_err().to_string().contains("--nats"));
        c.bus.nats_url = "nats://127.0.0.1:4222".into();
        c.validate().expect("a shard subset over NATS is fine");
        assert_eq!(c.owned_shards(), vec![1, 3]);
    }

    #[test]
    fn the_encoder_section_has_defaults_and_env_overrides() {
        let c = Config::load(
            None,
            env(&[
                ("STARLING_CLASSIFIER__TIER", "encoder"),
                ("STARLING_CLASSIFIER__ENCODER__MAX_BATCH", "16"),
                ("STARLING_CLASSIFIER__ENCODER__DEVICE", "cuda"),
                ("STARLING_CLASSIFIER__ENCODER__MODEL_DIR", "/m"),
            ]),
        )
        .expect("overrides apply");
        assert_eq!(c.classifier.tier, Tier::Encoder);
        let e = &c.classifier.encoder;
        assert_eq!((e.max_batch, e.max_wait_ms, e.queue), (16, 5, 1024));
        assert_eq!(e.device, EncoderDevice::Cuda);
        assert_eq!(e.model_dir, PathBuf::from("/m"));
        assert_eq!(e.heads_dir, PathBuf::from("models/encoder"));
        c.validate().expect("the encoder tier is a valid choice");
        let c = Config::load(None, env(&[("STARLING_CLASSIFIER__ENCODER__QUEUE", "0")]))
            .expect("parses");
        assert!(c.validate().unwrap_err().to_string().contains("queue"));
        let e = Config::load(
            None,
            env(&[("STARLING_CLASSIFIER__ENCODER__DEVICE", "tpu")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("DEVICE"), "{e}");
    }
}
