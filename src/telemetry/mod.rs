//! Logging and metrics. Every metric is declared once, in [`metrics`].

pub mod metrics;

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global tracing subscriber. The filter comes from
/// `STARLING_LOG` (e.g. `debug`, `starling=trace`), default `info`.
pub fn init_logging() {
    let filter = EnvFilter::try_from_env("STARLING_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt().with_env_filter(filter).with_target(true).try_init();
}
