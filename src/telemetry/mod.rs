//! Logging and metrics. Every metric is declared once, in [`metrics`].

pub mod metrics;

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
