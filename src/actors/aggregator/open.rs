//! Open 1-second windows of one entity kind, in memory.
//!
//! A post is admitted into the window of its own `created_at` second while
//! that window is open; a window closes once `allowed_lateness` has passed
//! after its end. A post for a window that already closed is `Late`: the
//! caller merges it into the stored window instead (never dropped). A post
//! whose id was already counted in its open window is a `Duplicate`.
//! Windows before the watermark are closed; the watermark only moves forward
//! and is persisted with every flush, so after a restart nothing already
//! flushed is opened again.
//!
//! `T` is the acknowledgement token of the message that carried the post:
//! a window keeps its tokens until it is flushed, so a message is
//! acknowledged only after the window that counted it is durable.

use super::window::{Contribution, Resolution, WindowMetrics};
use crate::store::{WindowBatch, WindowDelta};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What happened to an admitted post.
#[derive(Debug)]
pub enum Admit<T> {
    /// Counted in an open window; the window holds the token.
    Counted,
    /// Already counted in its open window; acknowledge the token.
    Duplicate(T),
    /// Its window is closed; merge it into the store.
    Late(T),
}

struct Open<T> {
    entities: HashMap<String, WindowMetrics>,
    seen: HashSet<u64>,
    tokens: Vec<T>,
}

impl<T> Default for Open<T> {
    fn default() -> Self {
        Open {
            entities: HashMap::new(),
            seen: HashSet::new(),
            tokens: Vec::new(),
        }
    }
}

/// Windows closed by one flush, ready to commit.
pub struct Closed<T> {
    /// What to write (the caller sets `kind`).
    pub batch: WindowBatch,
    /// Tokens to acknowledge once the batch is committed.
    pub tokens: Vec<T>,
}

impl<T> Closed<T> {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.batch.windows.is_empty() && self.tokens.is_empty() && self.batch.seen.is_empty()
    }
}

/// The open windows of one kind.
pub struct OpenWindows<T> {
    lateness_ms: i64,
    watermark: i64,
    open: BTreeMap<i64, Open<T>>,
}

impl<T> OpenWindows<T> {
    /// Windows starting before `watermark` (ms) count as closed.
    pub fn new(watermark: i64, lateness_ms: i64) -> Self {
        OpenWindows {
            lateness_ms,
            watermark: Resolution::Second.window_start(watermark),
            open: BTreeMap::new(),
        }
    }

    /// Windows starting before this are closed.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Open windows now.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// Admits one post, created at `ts_ms`, with id hash `post`, counted for `entities`.
    pub fn admit(
        &mut self,
        ts_ms: i64,
        post: u64,
        entities: &[&str],
        contribution: &Contribution,
        token: T,
    ) -> Admit<T> {
        let start = Resolution::Second.window_start(ts_ms);
        if start < self.watermark {
            return Admit::Late(token);
        }
        let window = self.open.entry(start).or_default();
        if !window.seen.insert(post) {
            return Admit::Duplicate(token);
        }
        for e in entities {
            window
                .entities
                .entry((*e).to_string())
                .or_default()
                .add(contribution, false);
        }
        window.tokens.push(token);
        Admit::Counted
    }

    /// Closes every window whose end plus the allowed lateness is at or before `now_ms`.
    pub fn close_due(&mut self, now_ms: i64) -> Closed<T> {
        let horizon = now_ms - self.lateness_ms - Resolution::Second.millis();
        // Windows starting at or before `horizon` are due.
        let keep = self.open.split_off(&(horizon + 1));
        let due = std::mem::replace(&mut self.open, keep);
        let wm = Resolution::Second.window_start(now_ms - self.lateness_ms);
        self.close(due, Some(wm))
    }

    /// Closes every open window (shutdown).
    pub fn close_all(&mut self) -> Closed<T> {
        let all = std::mem::take(&mut self.open);
        self.close(all, None)
    }

    fn close(&mut self, due: BTreeMap<i64, Open<T>>, floor: Option<i64>) -> Closed<T> {
        let mut batch = WindowBatch::default();
        let mut tokens = Vec::new();
        let mut watermark = self.watermark;
        if let Some(f) = floor {
            // Nothing is open below the horizon any more.
            let first_open = self.open.keys().next().copied().unwrap_or(i64::MAX);
            watermark = watermark.max(f.min(first_open));
        }
        for (start, w) in due {
            watermark = watermark.max(start + Resolution::Second.millis());
            for (entity, metrics) in w.entities {
                batch.windows.push(WindowDelta {
                    start_ms: start,
                    entity,
                    metrics,
                });
            }
            let mut seen: Vec<u64> = w.seen.into_iter().collect();
            seen.sort_unstable();
            batch.seen.push((start, seen));
            tokens.extend(w.tokens);
        }
        if watermark > self.watermark {
            self.watermark = watermark;
            batch.watermark = Some(watermark);
        }
        Closed { batch, tokens }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::aggregator::window::id_hash;
    use crate::domain::SentimentLabel;
    use proptest::prelude::*;

    fn c(score: f64) -> Contribution {
        Contribution {
            author_hash: id_hash("a"),
            engagement: 1,
            label: if score > 0.0 {
                SentimentLabel::Positive
            } else {
                SentimentLabel::Negative
            },
            score,
            weight: 1.0,
        }
    }

    fn volume(closed: &Closed<u32>) -> u64 {
        closed.batch.windows.iter().map(|w| w.metrics.volume).sum()
    }

    #[test]
    fn posts_land_in_their_own_second_and_close_after_lateness() {
        let mut w = OpenWindows::new(10_000, 2_000);
        assert!(matches!(
            w.admit(10_500, 1, &["x"], &c(0.5), 1u32),
            Admit::Counted
        ));
        assert!(matches!(
            w.admit(11_200, 2, &["x"], &c(0.5), 2),
            Admit::Counted
        ));
        // 10s window ends at 11s; with 2s lateness it closes at 13s.
        assert!(w.close_due(12_999).batch.windows.is_empty());
        let closed = w.close_due(13_000);
        assert_eq!(volume(&closed), 1);
        assert_eq!(closed.tokens, vec![1]);
        assert_eq!(closed.batch.windows[0].start_ms, 10_000);
        assert_eq!(w.watermark(), 11_000);
        assert_eq!(w.open_windows(), 1);
    }

    #[test]
    fn a_post_for_a_closed_window_is_late_not_dropped() {
        let mut w = OpenWindows::new(10_000, 2_000);
        let _ = w.close_due(20_000);
        assert_eq!(w.watermark(), 18_000);
        assert!(matches!(
            w.admit(17_999, 1, &["x"], &c(0.1), 7u32),
            Admit::Late(7)
        ));
        assert!(matches!(
            w.admit(18_000, 2, &["x"], &c(0.1), 8),
            Admit::Counted
        ));
    }

    #[test]
    fn a_repeated_post_id_is_counted_once_per_window() {
        let mut w = OpenWindows::new(0, 1_000);
        assert!(matches!(
            w.admit(5_100, 42, &["x", "y"], &c(0.5), 1u32),
            Admit::Counted
        ));
        assert!(matches!(
            w.admit(5_900, 42, &["x", "y"], &c(0.5), 2),
            Admit::Duplicate(2)
        ));
        let closed = w.close_all();
        assert_eq!(volume(&closed), 2, "one post, two entities");
        assert_eq!(closed.batch.seen, vec![(5_000, vec![42])]);
    }

    #[test]
    fn close_all_advances_the_watermark_past_every_window() {
        let mut w = OpenWindows::new(0, 1_000);
        let _ = w.admit(99_500, 1, &["x"], &c(0.5), 1u32);
        let closed = w.close_all();
        assert_eq!(closed.batch.watermark, Some(100_000));
        assert!(matches!(
            w.admit(99_999, 2, &["x"], &c(0.5), 2),
            Admit::Late(2)
        ));
    }

    proptest! {
        /// Whatever the arrival order and flush times, every distinct post is
        /// counted exactly once: in an open window or as late.
        #[test]
        fn every_post_is_counted_once(
            posts in proptest::collection::vec((0i64..60_000, 0u64..200), 1..300),
            flush_every in 1usize..50,
        ) {
            let mut w = OpenWindows::new(0, 2_000);
            let mut counted = std::collections::HashSet::new();
            let mut volume_sum = 0u64;
            let mut now = 0i64;
            for (i, (ts, id)) in posts.iter().enumerate() {
                now = now.max(*ts);
                match w.admit(*ts, *id, &["e"], &c(0.5), (*ts, *id)) {
                    Admit::Counted => { prop_assert!(counted.insert((Resolution::Second.window_start(*ts), *id))); }
                    Admit::Duplicate(_) => {}
                    Admit::Late((ts, _)) => { prop_assert!(Resolution::Second.window_start(ts) < w.watermark()); }
                }
                if i % flush_every == 0 {
                    volume_sum += w.close_due(now).batch.windows.iter().map(|d| d.metrics.volume).sum::<u64>();
                }
            }
            volume_sum += w.close_all().batch.windows.iter().map(|d| d.metrics.volume).sum::<u64>();
            prop_assert_eq!(volume_sum, counted.len() as u64);
        }
    }
}
