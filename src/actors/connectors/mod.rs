//! Connectors: the sources of posts. Each is a supervised actor that
//! publishes posts on the raw subject, awaiting the bus (so a full pipeline
//! slows the source instead of growing memory), until it is told to stop
//! producing (shutdown) or runs out of input.

pub mod replay;
pub mod synthetic;

use crate::bus::{Bus, BusError, PublishAck, Subject};
use crate::domain::Post;
use bytes::Bytes;

/// Tells connectors to stop producing (shutdown): `true` means stop.
pub type StopSignal = tokio::sync::watch::Receiver<bool>;

/// Publishes one post on the raw subject, with its id as the message id.
pub async fn publish_post(bus: &dyn Bus, post: &Post) -> Result<PublishAck, BusError> {
    // Serialising a Post (strings, numbers, a timestamp) cannot fail.
    let payload = serde_json::to_vec(post).unwrap_or_default();
    let ack = bus
        .publish(Subject::RawPosts, &post.id, Bytes::from(payload))
        .await?;
    if ack.duplicate {
        crate::telemetry::metrics::BUS_DUPLICATES.inc();
    }
    Ok(ack)
}
