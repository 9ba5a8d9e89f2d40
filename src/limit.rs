//! Token buckets by caller: the API's rate limits (per key or address, and
//! the on-demand summary limit) and the summarizer's budget.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Instant;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets by caller: `rate_per_s` tokens a second, at most `burst`
/// saved up.
pub struct RateLimiter {
    rate_per_s: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Buckets refilled at `rate_per_s` up to `burst`.
    pub fn new(rate_per_s: f64, burst: f64) -> Self {
        RateLimiter {
            rate_per_s,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether it limits at all (a zero rate does not).
    pub fn limits(&self) -> bool {
        self.rate_per_s > 0.0
    }

    /// Takes one token for `who`; `Err(seconds)` until the next one.
    pub fn take(&self, who: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let b = buckets.entry(who.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate_per_s).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate_per_s).ceil().max(1.0) as u64)
        }
    }
}
