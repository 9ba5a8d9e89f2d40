//! Logging and metrics. Every metric is declared once, in [`metrics`].

pub mod metrics;

/// This process's name where other processes see it (a consumer on the
/// bus, the holder of a claim in the store): host, pid and start time, in
/// letters, digits, `-` and `_` only.
pub fn instance() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let raw = format!(
            "{host}-{}-{:x}",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        );
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    })
}

use tracing_subscriber::{fmt, EnvFilter};

/// Log filter when `STARLING_LOG` is not set: Starling at info, the
/// storage engine and the HTTP server only when they warn.
pub const DEFAULT_LOG_FILTER: &str = "info,fjall=warn,lsm_tree=warn,actix_server=warn";

/// Installs the global tracing subscriber, writing to stderr (stdout carries
/// only the `starling listening on …` line that scripts read). The filter
/// comes from `STARLING_LOG` (e.g. `debug`, `starling=trace`).
pub fn init_logging() {
    let filter = EnvFilter::try_from_env("STARLING_LOG")
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr)
        .try_init();
}
