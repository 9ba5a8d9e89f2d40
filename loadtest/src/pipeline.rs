//! Starling's pipeline over time, read from its `/metrics` once a second:
//! posts published (HTTP ingest and connectors), classified, archived and
//! aggregated, and the lag of every durable consumer (messages not yet
//! delivered plus delivered and not yet acknowledged).

use crate::http;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One reading of `/metrics`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PipelineSample {
    /// Seconds since the case's origin.
    pub t_s: f64,
    /// Posts accepted by HTTP ingest plus posts produced by connectors.
    pub published: f64,
    /// Posts scored and attributed.
    pub classified: f64,
    /// Posts written to the archive.
    pub archived: f64,
    /// Post-to-entity-kind contributions counted into windows.
    pub aggregated: f64,
    /// Times a publisher waited for a full stream (back-pressure).
    pub publish_waits: f64,
    /// WebSocket events dropped for slow clients.
    pub ws_dropped: f64,
    /// Lag of the slowest durable consumer, messages.
    pub lag_max: f64,
    /// Which consumer that is.
    pub lag_max_consumer: String,
    /// Lag of every durable consumer together, messages.
    pub lag_total: f64,
}

/// A reading of the parsed `/metrics` text.
pub fn reading(t_s: f64, m: &BTreeMap<String, f64>) -> PipelineSample {
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    let mut per_consumer: BTreeMap<&str, f64> = BTreeMap::new();
    for (key, value) in m {
        let labels = key
            .strip_prefix("starling_consumer_pending{")
            .or_else(|| key.strip_prefix("starling_consumer_ack_pending{"));
        if let Some(labels) = labels {
            *per_consumer
                .entry(labels.trim_end_matches('}'))
                .or_default() += value;
        }
    }
    let (lag_max_consumer, lag_max) = per_consumer
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, v)| (consumer_name(k), *v))
        .unwrap_or_default();
    PipelineSample {
        t_s,
        published: get("starling_ingest_accepted_total") + get("starling_connector_posts_total"),
        classified: get("starling_classified_total"),
        archived: get("starling_archived_total"),
        aggregated: get("starling_aggregated_total"),
        publish_waits: get("starling_bus_publish_waits_total"),
        ws_dropped: get("starling_ws_events_dropped_total"),
        lag_max,
        lag_max_consumer,
        lag_total: per_consumer.values().sum(),
    }
}

/// `consumer="x"` out of `stream="…",consumer="x"`.
fn consumer_name(labels: &str) -> String {
    labels
        .split(',')
        .find_map(|l| l.strip_prefix("consumer="))
        .unwrap_or(labels)
        .trim_matches('"')
        .to_string()
}

/// Reads `/metrics` every second on its own thread until [`Pipeline::finish`].
pub struct Pipeline {
    samples: Arc<Mutex<Vec<PipelineSample>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts reading `base/metrics`; times are seconds since `origin`.
    pub fn start(base: &str, origin: Instant) -> Pipeline {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, base) = (samples.clone(), stop.clone(), base.to_string());
        let handle = std::thread::spawn(move || {
            http::block_on(async move {
                let c = http::client(Duration::from_secs(5), 1);
                let mut next = Instant::now();
                while !st.load(Ordering::SeqCst) {
                    if let Ok(m) = http::server_metrics(&c, &base).await {
                        let r = reading(origin.elapsed().as_secs_f64(), &m);
                        s.lock().expect("samples lock").push(r);
                    }
                    next += Duration::from_secs(1);
                    let now = Instant::now();
                    if next > now {
                        actix_rt::time::sleep(next - now).await;
                    } else {
                        next = now;
                    }
                }
            })
        });
        Pipeline {
            samples,
            stop,
            handle: Some(handle),
        }
    }

    /// The readings so far.
    pub fn snapshot(&self) -> Vec<PipelineSample> {
        self.samples.lock().expect("samples lock").clone()
    }

    /// Stops and returns the readings.
    pub fn finish(mut self) -> Vec<PipelineSample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.samples.lock().expect("samples lock"))
    }
}

/// What the readings between `from_s` and `to_s` show.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Throughput {
    /// Seconds between the first and the last reading used.
    pub seconds: f64,
    /// Posts published per second.
    pub published_per_s: f64,
    /// Posts classified per second.
    pub classified_per_s: f64,
    /// Posts archived per second.
    pub archived_per_s: f64,
    /// Contributions aggregated per second.
    pub aggregated_per_s: f64,
    /// Publisher waits on a full stream, per second.
    pub publish_waits_per_s: f64,
    /// WebSocket events dropped in the interval.
    pub ws_dropped: f64,
    /// Slowest consumer's lag at the start and end, and its mean and max.
    pub lag_first: f64,
    /// At the end.
    pub lag_last: f64,
    /// Mean.
    pub lag_mean: f64,
    /// Max.
    pub lag_max: f64,
    /// Least-squares slope of the slowest consumer's lag, messages per second.
    pub lag_slope_per_s: f64,
}

/// Rates and lag over the readings with `from_s ≤ t_s ≤ to_s`; `None` with
/// fewer than two.
pub fn throughput(samples: &[PipelineSample], from_s: f64, to_s: f64) -> Option<Throughput> {
    let w: Vec<&PipelineSample> = samples
        .iter()
        .filter(|s| s.t_s >= from_s && s.t_s <= to_s)
        .collect();
    let (first, last) = (*w.first()?, *w.last()?);
    let dt = last.t_s - first.t_s;
    if w.len() < 2 || dt <= 0.0 {
        return None;
    }
    let rate = |f: fn(&PipelineSample) -> f64| (f(last) - f(first)) / dt;
    let lag: Vec<(f64, f64)> = w.iter().map(|s| (s.t_s, s.lag_max)).collect();
    Some(Throughput {
        seconds: dt,
        published_per_s: rate(|s| s.published),
        classified_per_s: rate(|s| s.classified),
        archived_per_s: rate(|s| s.archived),
        aggregated_per_s: rate(|s| s.aggregated),
        publish_waits_per_s: rate(|s| s.publish_waits),
        ws_dropped: last.ws_dropped - first.ws_dropped,
        lag_first: first.lag_max,
        lag_last: last.lag_max,
        lag_mean: lag.iter().map(|p| p.1).sum::<f64>() / lag.len() as f64,
        lag_max: lag.iter().map(|p| p.1).fold(0.0, f64::max),
        lag_slope_per_s: crate::report::slope(&lag).unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_sums_the_sources_and_finds_the_slowest_consumer() {
        let text = "starling_ingest_accepted_total 10\nstarling_connector_posts_total 5\n\
            starling_classified_total 12\n\
            starling_consumer_pending{stream=\"STARLING_RAW\",consumer=\"classify\"} 3\n\
            starling_consumer_ack_pending{stream=\"STARLING_RAW\",consumer=\"classify\"} 4\n\
            starling_consumer_pending{stream=\"STARLING_ENRICHED\",consumer=\"archive-0\"} 9\n";
        let r = reading(1.5, &http::parse_prometheus(text));
        assert_eq!(r.published, 15.0);
        assert_eq!(r.classified, 12.0);
        assert_eq!((r.lag_max, r.lag_max_consumer.as_str()), (9.0, "archive-0"));
        assert_eq!(r.lag_total, 16.0);
    }

    #[test]
    fn throughput_is_the_rate_between_the_ends_and_the_lag_slope() {
        let s: Vec<PipelineSample> = (0..11)
            .map(|i| PipelineSample {
                t_s: f64::from(i),
                published: 1_000.0 * f64::from(i),
                classified: 900.0 * f64::from(i),
                lag_max: 100.0 * f64::from(i),
                ..Default::default()
            })
            .collect();
        let t = throughput(&s, 2.0, 10.0).expect("enough readings");
        assert_eq!(t.seconds, 8.0);
        assert!((t.published_per_s - 1_000.0).abs() < 1e-9);
        assert!((t.classified_per_s - 900.0).abs() < 1e-9);
        assert!((t.lag_slope_per_s - 100.0).abs() < 1e-9);
        assert_eq!(
            (t.lag_first, t.lag_last, t.lag_max),
            (200.0, 1_000.0, 1_000.0)
        );
        assert!(throughput(&s, 20.0, 30.0).is_none());
    }
}
