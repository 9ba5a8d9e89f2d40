//! Starling: a real-time social-listening pipeline.
//!
//! Data flows through the modules in this order: `actors::connectors` read
//! posts and publish them on the `bus`; `actors::classifier` scores them with
//! `nlp` and attributes them to entities; `actors::aggregator` keeps per-entity
//! windows and commits them through `actors::store_writer` to the `store`;
//! `actors::hub` and `web` push and serve them. `app` wires the topology
//! together and owns shutdown; `config` and `cli` say how it is set up.

pub mod actors;
pub mod alerts;
pub mod app;
pub mod archive;
pub mod bus;
pub mod cli;
pub mod config;
pub mod domain;
pub mod limit;
pub mod nlp;
pub mod store;
pub mod summary;
pub mod telemetry;
pub mod web;
