//! One [`Consumer`] over several: an aggregator that owns several shards
//! reads each shard's durable consumer through one handle.
//!
//! A task per inner consumer fetches and forwards deliveries into a bounded
//! channel (its capacity bounds what is fetched ahead); [`Consumer::fetch`]
//! reads the channel. Deliveries carry their own ackers, so each is
//! acknowledged on the consumer it came from. Dropping the merged handle
//! stops the tasks; what they had fetched and not handed over is
//! redelivered after `ack_wait`, as after a crash.

use super::{BusError, Consumer, Delivery};
use async_trait::async_trait;
use std::time::Duration;
use tokio::sync::mpsc;

/// Deliveries fetched per inner fetch.
const FETCH_MAX: usize = 512;
/// How long one inner fetch waits for a message.
const FETCH_WAIT: Duration = Duration::from_millis(500);

/// Reads `consumers` as one; a single consumer is returned as it is.
/// `ahead` bounds the deliveries fetched but not yet returned.
pub fn merge(mut consumers: Vec<Box<dyn Consumer>>, ahead: usize) -> Box<dyn Consumer> {
    if consumers.len() == 1 {
        if let Some(only) = consumers.pop() {
            return only;
        }
    }
    let (tx, rx) = mpsc::channel(ahead.max(1));
    let tasks = consumers
        .into_iter()
        .map(|mut c| {
            let tx = tx.clone();
            tokio::spawn(async move {
                while !tx.is_closed() {
                    match c.fetch(FETCH_MAX, FETCH_WAIT).await {
                        Ok(batch) => {
                            for d in batch {
                                if tx.send(Ok(d)).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    Box::new(Merged { rx, tasks })
}

struct Merged {
    rx: mpsc::Receiver<Result<Delivery, BusError>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Merged {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[async_trait]
impl Consumer for Merged {
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let first = match tokio::time::timeout(wait, self.rx.recv()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(None) => return Err(BusError::Closed),
            Ok(Some(first)) => first?,
        };
        let mut out = vec![first];
        while out.len() < max.max(1) {
            match self.rx.try_recv() {
                Ok(next) => out.push(next?),
                Err(_) => break,
            }
        }
        Ok(out)
    }
}
