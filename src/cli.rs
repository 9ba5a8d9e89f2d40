//! The command line: `starling run` and `starling config`.

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
    /// Print the SHA-256 of an API key's secret, for `[[auth.keys]]` in the config.
    HashKey {
        /// The secret.
        secret: String,
    },
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
