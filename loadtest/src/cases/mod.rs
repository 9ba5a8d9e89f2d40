//! The cases. Each has a folder `loadtest/cases/<name>/` with its
//! `case.toml` and `README.md`, and a module here with its `run`.

pub mod ingest_max;
pub mod rest_lookups;
pub mod stream;
pub mod ws_fanout;

use crate::http;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Connections of load thread `t` when `total` are spread evenly over `threads`.
pub fn share(total: usize, threads: usize, t: usize) -> usize {
    total / threads + usize::from(t < total % threads)
}

/// Runs `n` loops (`each(i, client, stats)`) on this thread's own event
/// loop, sharing one client (`timeout`, `n + 2` connections) and `stats`;
/// returns the stats once every loop has ended.
pub fn run_loops<S, F, Fut>(n: usize, timeout: Duration, stats: S, each: F) -> S
where
    S: Clone + 'static,
    F: Fn(usize, awc::Client, Rc<RefCell<S>>) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    http::block_on(async move {
        let stats = Rc::new(RefCell::new(stats));
        let client = http::client(timeout, n + 2);
        let tasks: Vec<_> = (0..n)
            .map(|i| actix_rt::spawn(each(i, client.clone(), stats.clone())))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        let out = stats.borrow().clone();
        out
    })
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn connections_are_spread_evenly_over_threads() {
        let spread = |total, threads| {
            (0..threads)
                .map(|t| super::share(total, threads, t))
                .collect::<Vec<_>>()
        };
        assert_eq!(spread(4, 1), [4]);
        assert_eq!(spread(5, 4), [2, 1, 1, 1]);
        assert_eq!(spread(64, 3), [22, 21, 21]);
    }
}
