//! The pipeline's stages, each a supervised actix actor.

pub mod aggregator;
pub mod alerts;
pub mod archiver;
pub mod classifier;
pub mod connectors;
pub mod hub;
pub mod inference;
pub mod live_feed;
pub mod store_writer;
pub mod summarizer;
pub mod supervisor;
pub mod webhooks;
