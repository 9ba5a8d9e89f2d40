//! The alert engine: rules that watch scored posts and per-entity series
//! and raise alerts people can act on.
//!
//! - [`model`]: alerts, their kinds, severity, evidence and lifecycle; the
//!   custom rules users create; the alert event log entries.
//! - [`baseline`]: the arithmetic: exponentially weighted baselines and the
//!   tests each rule applies.
//! - [`engine`]: per-entity state (recent buckets, baselines, open alerts)
//!   and the rules, driven by posts and by the passing of event time.
//!
//! The actor that runs the engine on the enriched stream is
//! [`crate::actors::alerts`]; storage is [`crate::store::alerts`].

pub mod baseline;
pub mod engine;
pub mod model;
pub mod synthetic_eval;
