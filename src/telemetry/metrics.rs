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
    STORE_WRITE_ERRORS = "starling_store_write_errors_total", "Store batches that failed to commit (retried).";
    STORE_EXPIRED_PARTITIONS = "starling_store_expired_partitions_total", "Store partitions dropped by retention.";
    HUB_EVENTS_DROPPED = "starling_ws_events_dropped_total", "WebSocket events dropped for slow clients (oldest first).";
    HUB_CLIENTS_DISCONNECTED_SLOW = "starling_ws_slow_disconnects_total", "WebSocket clients disconnected for staying too slow.";
    HTTP_RATE_LIMITED = "starling_http_rate_limited_total", "Requests refused with 429 by the per-key rate limit.";
    ACTOR_RESTARTS = "starling_actor_restarts_total", "Supervised actor restarts.";
    ACTOR_PANICS = "starling_actor_panics_total", "Supervised actors that panicked.";
}

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
