//! Connectors: the sources of posts. Each is a supervised actor that
//! publishes posts on the raw subject, awaiting the bus (so a full pipeline
//! slows the source instead of growing memory), until it is told to stop
//! producing (shutdown) or runs out of input.

pub mod replay;
pub mod synthetic;

use crate::bus::{Bus, BusError, Outgoing, Subject};
use crate::domain::Post;
use bytes::Bytes;

/// Tells connectors to stop producing (shutdown): `true` means stop.
pub type StopSignal = tokio::sync::watch::Receiver<bool>;

/// Publishes posts on the raw subject (ids as message ids), pipelined where
/// the bus can; returns how many were duplicates of recent ids.
pub async fn publish_posts(bus: &dyn Bus, posts: &[Post]) -> Result<usize, BusError> {
    let messages: Vec<Outgoing> = posts
        .iter()
        .map(|p| Outgoing {
            subject: Subject::RawPosts,
            id: p.id.clone(),
            payload: Bytes::from(serde_json::to_vec(p).unwrap_or_default()),
        })
        .collect();
    let acks = bus.publish_batch(&messages).await?;
    let duplicates = acks.iter().filter(|a| a.duplicate).count();
    crate::telemetry::metrics::BUS_DUPLICATES.add(duplicates as u64);
    Ok(duplicates)
}
