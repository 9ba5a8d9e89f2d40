//! The cases. Each has a folder `loadtest/cases/<name>/` with its
//! `case.toml` and `README.md`, and a module here with its `run`.

pub mod ingest_max;
pub mod rest_lookups;
pub mod stream;
pub mod ws_fanout;

use std::time::{Duration, Instant};

/// Shown when the server cannot be reached.
pub const CONNECT_HINT: &str = "is Starling running there, with the web and ingest roles?";

/// When the load starts, when measuring starts, when it ends.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Load starts.
    pub start: Instant,
    /// Measurement starts (after the warm-up).
    pub measure: Instant,
    /// Load and measurement end.
    pub end: Instant,
}

impl Schedule {
    /// A schedule starting now.
    pub fn starting_now(warmup_s: f64, duration_s: f64) -> Schedule {
        let start = Instant::now();
        let measure = start + Duration::from_secs_f64(warmup_s);
        Schedule {
            start,
            measure,
            end: measure + Duration::from_secs_f64(duration_s),
        }
    }

    /// Blocks this thread until `at`.
    pub fn sleep_until(&self, at: Instant) {
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
    }
}
