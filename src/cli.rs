//! The command line: `starling run`, `starling config`, `starling migrate`
//! (ScyllaDB schema), the classifiers' `classify` and `eval`, and the
//! training commands `train` (fast tier) and `train-encoder` (encoder
//! tier's heads).

use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Starling: real-time social listening.
#[derive(Debug, Parser)]
#[command(name = "starling", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline and the web server until Ctrl-C.
    Run(Overrides),
    /// Print the effective configuration (defaults, file, environment, flags) as TOML.
    Config(Overrides),
    /// Create or upgrade the ScyllaDB keyspace and tables (`--scylla` or
    /// `store.scylla.nodes`); idempotent, says what it did.
    Migrate(Overrides),
    /// Print the SHA-256 of an API key's secret, for `[[auth.keys]]` in the config.
    HashKey {
        /// The secret.
        secret: String,
    },
    /// Classify posts, one per line (or JSON lines with a `text` field), from
    /// FILE or stdin; writes one JSON object per line to stdout.
    Classify(ClassifyArgs),
    /// Score the classifier on a labelled file: accuracy, macro-recall,
    /// macro-F1 and a confusion matrix.
    Eval(EvalArgs),
    /// Train the fast classifier's four heads and write the model directory.
    Train(TrainArgs),
    /// Measure the alert rules on simulated synthetic traffic: recall and
    /// latency per scripted episode, false alarms per hour.
    AlertsEval(AlertsEvalArgs),
    /// Train the encoder tier's four heads on MiniLM embeddings and write
    /// `heads.json` and `heads.safetensors`.
    TrainEncoder(TrainEncoderArgs),
    /// Print a summary of one entity from the stored posts (no server; the
    /// data directory must not be in use by a running starling).
    Summarize(SummarizeArgs),
}

/// Arguments of `starling summarize`.
#[derive(Debug, Args, Clone)]
pub struct SummarizeArgs {
    /// Entity kind (`project`, `topic`, `product`, …).
    #[arg(long)]
    pub kind: String,
    /// Entity id (`SOL`, `defi`, …).
    #[arg(long)]
    pub id: String,
    /// Window start, RFC 3339 or unix ms (default: the `summaries.window_s`
    /// ending with the minute of `--to`).
    #[arg(long)]
    pub from: Option<String>,
    /// Window end, RFC 3339 or unix ms (default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// A GGUF model instead of `summaries.model_path` (needs the `llm` feature).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Extractive only, even when a model is configured.
    #[arg(long, conflicts_with = "model")]
    pub extractive: bool,
    /// Print the whole summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Configuration (`[store]`, `[summaries]`, `[entities]` are used).
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Arguments of `starling classify`.
#[derive(Debug, Args, Clone)]
pub struct ClassifyArgs {
    /// Which classifier: `fast` (built in) or `encoder` (MiniLM + heads:
    /// run models/fetch-minilm.sh first); the `lexicon` tier has sentiment
    /// only and cannot fill the output.
    #[arg(long, value_enum, default_value_t = crate::config::Tier::Fast)]
    pub tier: crate::config::Tier,
    /// Load the fast model from this directory instead of the built-in one.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Input file (UTF-8, one post per line); stdin when absent.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Task of `starling eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalTask {
    /// SemEval TSV (`id<TAB>label<TAB>text`) or TweetEval `*_text.txt` (+ `*_labels.txt`).
    Sentiment,
    /// GoEmotions ekman TSV.
    Emotion,
    /// TweetEval offensive `*_text.txt` (+ `*_labels.txt`).
    Toxicity,
    /// `split<TAB>label<TAB>text` (models/data/churn/churn.tsv), `dev` rows by default.
    Churn,
}

/// Arguments of `starling eval`.
#[derive(Debug, Args, Clone)]
pub struct EvalArgs {
    /// Which classifier: `fast` (built in) or `encoder`.
    #[arg(long, value_enum, default_value_t = crate::config::Tier::Fast)]
    pub tier: crate::config::Tier,
    /// Which head to score.
    #[arg(long, value_enum)]
    pub task: EvalTask,
    /// Labelled file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Rows of this split only (churn file; default `dev`, `all` for every row).
    #[arg(long, value_name = "SPLIT")]
    pub split: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Load the fast model from this directory instead of the built-in one.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

/// Arguments of `starling train`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// The labelled data sets (`../shared/data`).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Where to write the model (`models/fast`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The churn data set (`split<TAB>label<TAB>text`).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "models/data/churn/churn.tsv"
    )]
    pub churn: PathBuf,
    /// Seed of the shuffles.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Arguments of `starling alerts-eval`.
#[derive(Debug, Args, Clone)]
pub struct AlertsEvalArgs {
    /// Hours of traffic to simulate (event time; runs far faster).
    #[arg(long, default_value_t = 6.0)]
    pub hours: f64,
    /// A steady stream: no scripted episodes (every episode-kind alert is a false alarm).
    #[arg(long)]
    pub no_episodes: bool,
    /// Seconds after an episode starts within which its alert counts.
    #[arg(long, default_value_t = 30.0)]
    pub detect_s: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Configuration (`[alerts]`, `[connectors.synthetic]`, `[entities]` are used).
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Arguments of `starling train-encoder`.
#[derive(Debug, Args, Clone)]
pub struct TrainEncoderArgs {
    /// The labelled data sets (`../shared/data`).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The all-MiniLM-L6-v2 folder (models/fetch-minilm.sh writes it).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "models/cache/all-minilm-l6-v2"
    )]
    pub model: PathBuf,
    /// Where to write the heads (`models/encoder`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The churn data set (`split<TAB>label<TAB>text`).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "models/data/churn/churn.tsv"
    )]
    pub churn: PathBuf,
    /// Cache of computed embeddings and of the held-out fast model (git-ignored).
    #[arg(long, value_name = "DIR", default_value = "models/cache/encoder-train")]
    pub cache: PathBuf,
    /// Seed of the weight initialisation and shuffles.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Flags shared by the subcommands; they override file and environment.
#[derive(Debug, Args, Clone, Default)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the web server (`127.0.0.1:8080`; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Data directory of the embedded store.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Posts per second of the synthetic generator; 0 switches it off.
    #[arg(long, value_name = "N")]
    pub synthetic_rate: Option<f64>,
    /// Run the stages over NATS JetStream at this URL (`nats://127.0.0.1:4222`)
    /// instead of the in-process bus.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// Stages to run in this process (comma-separated): all, ingest, classify,
    /// aggregate, web. Anything but `all` needs --nats.
    #[arg(long, value_name = "ROLES", value_delimiter = ',')]
    pub role: Vec<crate::config::Role>,
    /// Keep time series and summaries in ScyllaDB at these contact points
    /// (`host1:9042,host2:9042`) instead of the embedded store; run
    /// `starling migrate` first.
    #[arg(long, value_name = "NODES", value_delimiter = ',')]
    pub scylla: Vec<String>,
    /// ScyllaDB keyspace (default `starling`).
    #[arg(long, value_name = "NAME")]
    pub keyspace: Option<String>,
    /// Replay a JSONL file of posts (repeatable), as fast as the pipeline takes them.
    #[arg(long, value_name = "FILE")]
    pub replay: Vec<PathBuf>,
}

impl Overrides {
    /// Loads the configuration and applies the flags.
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(http) = &self.http {
            config.http.listen = http.clone();
        }
        if let Some(data) = &self.data {
            config.store.data_dir = data.clone();
        }
        if !self.role.is_empty() {
            config.roles = self.role.clone();
        }
        if let Some(url) = &self.nats {
            config.bus.nats_url = url.clone();
        }
        if !self.scylla.is_empty() {
            config.store.scylla.nodes = self.scylla.clone();
        }
        if let Some(ks) = &self.keyspace {
            config.store.scylla.keyspace = ks.clone();
        }
        if let Some(rate) = self.synthetic_rate {
            config.connectors.synthetic.rate = rate;
        }
        for path in &self.replay {
            config.connectors.replay.push(crate::config::ReplayConfig {
                path: path.clone(),
                rate: None,
            });
        }
        config.validate()?;
        Ok(config)
    }
}
