//! Every metric Starling exports, named once. `/metrics` renders them in the
//! Prometheus text format; the admin API reads the same values.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
pub struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Counter {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// Metric name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

macro_rules! counters {
    ($($ident:ident = $name:literal, $help:literal;)*) => {
        $(
            #[doc = $help]
            pub static $ident: Counter = Counter::new($name, $help);
        )*
        /// All counters, for rendering.
        pub static ALL: &[&Counter] = &[$(&$ident),*];
    };
}

counters! {
    INGEST_ACCEPTED = "starling_ingest_accepted_total", "Posts accepted by HTTP ingest.";
    INGEST_REJECTED = "starling_ingest_rejected_total", "Posts rejected by HTTP ingest (invalid items).";
    CONNECTOR_POSTS = "starling_connector_posts_total", "Posts produced by connectors (synthetic, replay).";
    CONNECTOR_ERRORS = "starling_connector_errors_total", "Connector input lines or items that could not be read.";
    BUS_PUBLISH_WAITS = "starling_bus_publish_waits_total", "Times a publisher waited because a stream was full (back-pressure).";
    BUS_REDELIVERED = "starling_bus_redelivered_total", "Messages delivered again after ack_wait or a nak.";
    BUS_DEAD_LETTERED = "starling_bus_dead_lettered_total", "Messages given up on after max_deliver or a term.";
    BUS_DUPLICATES = "starling_bus_duplicate_publishes_total", "Publishes recognised as duplicates by message id.";
    CLASSIFIED = "starling_classified_total", "Posts scored and attributed by the classifier.";
    CLASSIFY_DECODE_ERRORS = "starling_classify_decode_errors_total", "Raw messages that were not a valid post (dead-lettered).";
    AGG_COUNTED = "starling_aggregated_total", "Post-to-entity-kind contributions counted into windows.";
    AGG_DUPLICATES = "starling_aggregate_duplicates_total", "Post deliveries skipped because the post was already counted for that entity kind.";
    AGG_LATE = "starling_aggregate_late_total", "Post-to-entity-kind contributions that arrived after their window closed and were merged into the store.";
    AGG_FLUSHES = "starling_aggregate_flushes_total", "Window batches committed to the store.";
    ARCHIVED = "starling_archived_total", "Posts written to the post archive (search, recent and top posts).";
    ARCHIVE_EXPIRED = "starling_archive_expired_total", "Archived posts deleted by retention.";
    STORE_WRITE_ERRORS = "starling_store_write_errors_total", "Store batches that failed to commit (retried).";
    STORE_EXPIRED_PARTITIONS = "starling_store_expired_partitions_total", "Store partitions dropped by retention.";
    SCYLLA_RETRIES = "starling_scylla_retries_total", "ScyllaDB requests repeated after a transient failure (overloaded, timed out, unavailable, broken connection).";
    SCYLLA_FAILURES = "starling_scylla_failures_total", "ScyllaDB requests that failed after their retries.";
    SCYLLA_REPLAYED_BATCHES = "starling_scylla_replayed_batches_total", "Window batches found half-written in ScyllaDB and written again.";
    WS_FRAMES_SENT = "starling_ws_frames_sent_total", "WebSocket frames sent to clients.";
    HUB_EVENTS_DROPPED = "starling_ws_events_dropped_total", "WebSocket events dropped for slow clients (oldest first).";
    HUB_CLIENTS_DISCONNECTED_SLOW = "starling_ws_slow_disconnects_total", "WebSocket clients disconnected for staying too slow.";
    HTTP_RATE_LIMITED = "starling_http_rate_limited_total", "Requests refused with 429 by the per-key rate limit.";
    ACTOR_RESTARTS = "starling_actor_restarts_total", "Supervised actor restarts.";
    ACTOR_PANICS = "starling_actor_panics_total", "Supervised actors that panicked.";
    ALERTS_RAISED = "starling_alerts_raised_total", "Alerts raised by the alert engine (every kind).";
    ALERTS_RESOLVED = "starling_alerts_resolved_total", "Alerts resolved (condition cleared, churn group quiet, or by hand).";
    ALERT_LATE_POSTS = "starling_alert_late_posts_total", "Posts that reached the alert engine after their bucket closed (per-post rules only).";
    WEBHOOK_ENQUEUED = "starling_webhook_enqueued_total", "Webhook deliveries written to the outbox (one per matching endpoint and alert event).";
    WEBHOOK_DELIVERED = "starling_webhook_delivered_total", "Webhook deliveries answered with a 2xx (removed from the outbox).";
    WEBHOOK_FAILED_ATTEMPTS = "starling_webhook_failed_attempts_total", "Webhook delivery attempts that failed (non-2xx, timeout, connection error); retried with back-off.";
    WEBHOOK_PAUSES = "starling_webhook_pauses_total", "Webhook endpoints paused for too many consecutive failures or too old a pending delivery.";
    INFERENCE_BATCHES = "starling_inference_batches_total", "Model calls of the batching inference worker (encoder tier).";
    INFERENCE_TEXTS = "starling_inference_texts_total", "Texts run through the batching inference worker (encoder tier).";
    SUMMARIES_LLM = "starling_summaries_llm_total", "Entity summaries written by the language model (passed the output checks).";
    SUMMARIES_EXTRACTIVE = "starling_summaries_extractive_total", "Entity summaries written extractively (no model, or a fallback).";
    SUMMARY_FALLBACKS = "starling_summary_fallbacks_total", "Summaries that fell back to extractive although a model is configured (engine error, timeout, failed check, model not loaded).";
    SUMMARY_CHECK_FAILURES = "starling_summary_check_failures_total", "Model outputs refused by the output checks.";
    SUMMARY_ENGINE_ERRORS = "starling_summary_engine_errors_total", "Generations that failed in the engine.";
    SUMMARY_TIMEOUTS = "starling_summary_timeouts_total", "Generations stopped at summaries.timeout_s.";
    SUMMARY_CANCELLED = "starling_summary_cancelled_total", "Summaries cancelled because a newer window of the same entity superseded them.";
    SUMMARY_DROPPED = "starling_summary_dropped_total", "Scheduled summary requests dropped because the queue was full.";
    SUMMARY_MODEL_LOAD_FAILURES = "starling_summary_model_load_failures_total", "Failed attempts to load the summary model (retried with back-off).";
}

/// A value set by its owner, rendered as a Prometheus gauge.
pub struct Gauge {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Gauge {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Gauge {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }

    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.value.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.value.load(Ordering::Relaxed))
    }

    /// Metric name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// 1 while `classifier.tier = "encoder"` is configured but the classifier
/// runs the fast tier instead (weights missing, or a build without the
/// `encoder` feature); 0 otherwise.
pub static CLASSIFIER_TIER_FALLBACK: Gauge = Gauge::new(
    "starling_classifier_tier_fallback",
    "1 while the configured encoder classifier tier could not be loaded and the fast tier runs instead.",
);

/// Webhook endpoints currently paused (set by the webhook dispatcher).
pub static WEBHOOK_PAUSED_ENDPOINTS: Gauge = Gauge::new(
    "starling_webhook_paused_endpoints",
    "Webhook endpoints currently paused (no attempts until resumed).",
);
/// Deliveries waiting in the webhook outbox (set by the webhook dispatcher).
pub static WEBHOOK_OUTBOX_DEPTH: Gauge = Gauge::new(
    "starling_webhook_outbox_depth",
    "Webhook deliveries waiting in the outbox (pending, retrying or held by a paused endpoint).",
);

/// Summary requests waiting for a worker (set by the summarizer).
pub static SUMMARY_QUEUE_DEPTH: Gauge = Gauge::new(
    "starling_summary_queue_depth",
    "Summary requests waiting for a summarizer worker.",
);
/// 1 while a summary model is configured and loaded, 0 otherwise.
pub static SUMMARY_MODEL_LOADED: Gauge = Gauge::new(
    "starling_summary_model_loaded",
    "1 while the configured summary model is loaded (0: none configured, loading, or failed).",
);

/// Gauges kept in statics (the others are computed when rendered).
pub static STATIC_GAUGES: &[&Gauge] = &[
    &CLASSIFIER_TIER_FALLBACK,
    &SUMMARY_QUEUE_DEPTH,
    &SUMMARY_MODEL_LOADED,
    &WEBHOOK_PAUSED_ENDPOINTS,
    &WEBHOOK_OUTBOX_DEPTH,
];

/// Renders every counter plus the given gauges (name, help, labels, value)
/// in the Prometheus text format.
pub fn render(gauges: &[(&str, &str, String, f64)]) -> String {
    let mut out = String::new();
    for c in ALL {
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} counter\n{} {}\n",
            c.name,
            c.help,
            c.name,
            c.name,
            c.get()
        ));
    }
    for g in STATIC_GAUGES {
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} gauge\n{} {}\n",
            g.name,
            g.help,
            g.name,
            g.name,
            g.get()
        ));
    }
    let mut last = "";
    for (name, help, labels, value) in gauges {
        if *name != last {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            last = name;
        }
        if labels.is_empty() {
            out.push_str(&format!("{name} {value}\n"));
        } else {
            out.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
    }
    out
}

/// Gauge names, declared here with the counters.
pub mod gauges {
    /// Messages in a consumer's stream not yet delivered to it.
    pub const CONSUMER_PENDING: (&str, &str) = (
        "starling_consumer_pending",
        "Messages not yet delivered to a durable consumer (lag).",
    );
    /// Delivered, unacknowledged messages of a consumer.
    pub const CONSUMER_ACK_PENDING: (&str, &str) = (
        "starling_consumer_ack_pending",
        "Messages delivered to a durable consumer and not yet acknowledged.",
    );
    /// Messages held by a stream.
    pub const STREAM_MESSAGES: (&str, &str) =
        ("starling_stream_messages", "Messages held by a stream.");
    /// Connected WebSocket clients.
    pub const WS_CLIENTS: (&str, &str) = ("starling_ws_clients", "Connected WebSocket clients.");
}

/// Upper bounds (seconds) of the request latency histogram buckets.
pub const HTTP_LATENCY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];
/// Requests per route and status.
pub const HTTP_REQUESTS: (&str, &str) = (
    "starling_http_requests_total",
    "HTTP requests by route pattern, method and status.",
);
/// Request latency per route.
pub const HTTP_LATENCY: (&str, &str) = (
    "starling_http_request_duration_seconds",
    "HTTP request latency by route pattern.",
);

#[derive(Default)]
struct RouteLatency {
    buckets: [u64; HTTP_LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counts and latency histograms per route (recorded by the web
/// middleware, rendered by `/metrics`).
#[derive(Default)]
pub struct HttpStats {
    requests: parking_lot::Mutex<std::collections::BTreeMap<(String, String, u16), u64>>,
    latency: parking_lot::Mutex<std::collections::BTreeMap<String, RouteLatency>>,
}

impl HttpStats {
    /// Records one request.
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        let mut latency = self.latency.lock();
        let l = latency.entry(route.to_string()).or_default();
        l.count += 1;
        l.sum += seconds;
        for (bound, n) in HTTP_LATENCY_BUCKETS.iter().zip(l.buckets.iter_mut()) {
            if seconds <= *bound {
                *n += 1;
            }
        }
    }

    /// Renders both families in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# HELP {0} {1}\n# TYPE {0} counter\n",
            HTTP_REQUESTS.0, HTTP_REQUESTS.1
        );
        for ((route, method, status), n) in self.requests.lock().iter() {
            out.push_str(&format!(
                "{}{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}\n",
                HTTP_REQUESTS.0
            ));
        }
        out.push_str(&format!(
            "# HELP {0} {1}\n# TYPE {0} histogram\n",
            HTTP_LATENCY.0, HTTP_LATENCY.1
        ));
        let name = HTTP_LATENCY.0;
        for (route, l) in self.latency.lock().iter() {
            for (bound, n) in HTTP_LATENCY_BUCKETS.iter().zip(l.buckets.iter()) {
                out.push_str(&format!(
                    "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}\n"
                ));
            }
            out.push_str(&format!(
                "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n",
                l.count
            ));
            out.push_str(&format!("{name}_sum{{route=\"{route}\"}} {}\n", l.sum));
            out.push_str(&format!("{name}_count{{route=\"{route}\"}} {}\n", l.count));
        }
        out
    }
}

/// The process's HTTP statistics.
pub static HTTP: std::sync::LazyLock<HttpStats> = std::sync::LazyLock::new(HttpStats::default);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_add_up() {
        let s = HttpStats::default();
        s.record("/a", "GET", 200, 0.0007);
        s.record("/a", "GET", 200, 0.02);
        s.record("/a", "GET", 404, 9.0);
        let text = s.render();
        assert!(
            text.contains(
                r#"starling_http_requests_total{route="/a",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"starling_http_request_duration_seconds_bucket{route="/a",le="0.001"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"starling_http_request_duration_seconds_bucket{route="/a",le="0.025"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"starling_http_request_duration_seconds_bucket{route="/a",le="+Inf"} 3"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"starling_http_request_duration_seconds_count{route="/a"} 3"#),
            "{text}"
        );
    }
}
