//! The JetStream bus: the same [`Bus`] semantics over NATS JetStream
//! (async-nats), for deployments where stages must survive a crash or run
//! in several processes.
//!
//! - Streams `STARLING_RAW` and `STARLING_ENRICHED` use interest retention
//!   (a message is kept until every durable consumer has acknowledged it)
//!   and `discard: new`: a full stream refuses publishes, and `publish`
//!   retries with back-off until there is room (back-pressure) or
//!   `bus.publish_timeout_ms` passes. Both are created or updated at start,
//!   together with every pipeline consumer, before anything is published.
//!   The enriched stream records `bus.shards` in its metadata; a process
//!   configured with another count is refused (the subjects would not match).
//! - Consumers filter by subject ([`super::Filter::pattern`]): a shard's
//!   aggregators see only that shard's copies, the live feed only primaries.
//! - Publishes carry `Nats-Msg-Id`; the stream's duplicate window drops
//!   repeats. A publish returns only once the stream has stored it.
//! - Consumers are durable pull consumers with explicit acks, `ack_wait`,
//!   `max_deliver` and `max_ack_pending` from the config.
//! - Dead letters go to the `STARLING_DLQ` stream (`starling.dlq.<stream>.<consumer>`)
//!   with the reason and the original subject (for a replay) in headers: on `term`, and when the server reports a
//!   message that reached `max_deliver` (its advisory).
//! - A lost connection is retried by the client; every broker call is
//!   bounded in time, and publishes and fetches retry until it is back.

use super::{
    Acker, Bus, BusError, Consumer, ConsumerSpec, ConsumerStats, DeadLetter, Delivery, Outgoing,
    PublishAck, StreamName, StreamStats, Subject,
};
use crate::config::BusConfig;
use crate::telemetry::metrics;
use async_nats::jetstream::{self, consumer, stream, AckKind};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::future::IntoFuture as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The dead-letter stream.
pub const DLQ_STREAM: &str = "STARLING_DLQ";
/// Prefix of dead-letter subjects.
const DLQ_PREFIX: &str = "starling.dlq";
/// Header carrying why a message was dead-lettered.
const REASON_HEADER: &str = "Starling-Reason";
/// Header carrying the original stream sequence.
const SEQ_HEADER: &str = "Starling-Seq";
/// Header carrying the subject a dead letter was published on (for a replay).
const SUBJECT_HEADER: &str = "Starling-Subject";
/// Stream metadata key recording the shard count the subjects were laid out for.
const SHARDS_METADATA: &str = "starling.shards";
/// Dead letters kept in the DLQ stream.
const DLQ_MAX_MSGS: i64 = 10_000;
/// Longest wait for one broker call (a publish's send or its ack, an ack).
const BROKER_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long past its `expires` a fetch may take before we stop waiting.
const FETCH_GRACE: Duration = Duration::from_secs(2);
/// Publishes sent before their acks are collected, in `publish_batch`.
const PUBLISH_WINDOW: usize = 256;
/// Dead letters listed by `dead_letters`.
const DLQ_LISTED: u64 = 1_000;

fn broker(e: impl std::fmt::Display) -> BusError {
    BusError::Broker(e.to_string())
}

/// Awaits one broker call for at most [`BROKER_CALL_TIMEOUT`]: during a
/// reconnection a call can otherwise wait forever.
async fn bounded<T, E: std::fmt::Display>(
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BusError> {
    match tokio::time::timeout(BROKER_CALL_TIMEOUT, call).await {
        Ok(r) => r.map_err(broker),
        Err(_) => Err(BusError::Timeout(BROKER_CALL_TIMEOUT)),
    }
}

/// Where a dead letter came from, read off its subject
/// (`starling.dlq.<stream>.<consumer>`).
fn dlq_origin(subject: &str) -> (Option<StreamName>, &str) {
    let mut parts = subject.splitn(4, '.').skip(2);
    let stream = parts.next().and_then(StreamName::parse);
    (stream, parts.next().unwrap_or_default())
}

/// The JetStream bus.
#[derive(Clone)]
pub struct JetStreamBus {
    js: jetstream::Context,
    cfg: BusConfig,
    closed: Arc<AtomicBool>,
}

impl JetStreamBus {
    /// Connects to `url`, then creates or updates the streams.
    pub async fn connect(url: &str, cfg: &BusConfig) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("starling")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                tracing::info!(%event, "nats connection event");
            })
            .connect(url)
            .await
            .map_err(broker)?;
        let js = jetstream::new(client.clone());
        let bus = JetStreamBus {
            js,
            cfg: cfg.clone(),
            closed: Arc::new(AtomicBool::new(false)),
        };
        let shards = cfg.shards.max(1).to_string();
        if let Ok(mut existing) = bus.js.get_stream(StreamName::Enriched.as_str()).await {
            let info = existing.info().await.map_err(broker)?;
            if let Some(laid_out) = info.config.metadata.get(SHARDS_METADATA) {
                if *laid_out != shards {
                    return Err(BusError::Broker(format!(
                        "the enriched stream on this NATS is partitioned into {laid_out} shards, \
                         and bus.shards is {shards}: every process must use the same count \
                         (to change it, drain the pipeline and delete the STARLING_ streams)"
                    )));
                }
            }
        }
        for name in StreamName::ALL {
            bus.js
                .create_or_update_stream(stream::Config {
                    name: name.as_str().to_string(),
                    subjects: vec![name.subjects().to_string()],
                    metadata: [(SHARDS_METADATA.to_string(), shards.clone())].into(),
                    retention: stream::RetentionPolicy::Interest,
                    discard: stream::DiscardPolicy::New,
                    max_messages: i64::try_from(cfg.stream_max_msgs).unwrap_or(i64::MAX),
                    duplicate_window: Duration::from_secs(cfg.duplicate_window_s),
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(broker)?;
        }
        bus.js
            .create_or_update_stream(stream::Config {
                name: DLQ_STREAM.to_string(),
                subjects: vec![format!("{DLQ_PREFIX}.>")],
                retention: stream::RetentionPolicy::Limits,
                discard: stream::DiscardPolicy::Old,
                max_messages: DLQ_MAX_MSGS,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(broker)?;
        bus.watch_max_deliveries(client).await?;
        Ok(bus)
    }

    async fn define(&self, spec: &ConsumerSpec) -> Result<consumer::PullConsumer, BusError> {
        let stream = self
            .js
            .get_stream(spec.stream.as_str())
            .await
            .map_err(broker)?;
        let config = consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject: spec.filter.pattern(spec.stream),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: if spec.expires_after.is_some() {
                consumer::DeliverPolicy::New
            } else {
                consumer::DeliverPolicy::All
            },
            inactive_threshold: spec.expires_after.unwrap_or_default(),
            ack_wait: spec.ack_wait,
            max_deliver: i64::from(spec.max_deliver),
            max_ack_pending: i64::try_from(spec.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        match stream.create_consumer(config.clone()).await {
            Ok(c) => Ok(c),
            // Exists with other settings: update them.
            Err(_) => stream.update_consumer(config).await.map_err(broker),
        }
    }

    /// Copies every message the server gives up on (max_deliver reached)
    /// to the dead-letter stream, with the reason.
    async fn watch_max_deliveries(&self, client: async_nats::Client) -> Result<(), BusError> {
        let mut sub = client
            .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>")
            .await
            .map_err(broker)?;
        let bus = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Ok(advisory) = serde_json::from_slice::<serde_json::Value>(&msg.payload) else {
                    continue;
                };
                let stream = advisory["stream"].as_str().unwrap_or_default().to_string();
                let consumer = advisory["consumer"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let seq = advisory["stream_seq"].as_u64().unwrap_or_default();
                let deliveries = advisory["deliveries"].as_u64().unwrap_or_default();
                let (subject, payload) = match bus.js.get_stream(&stream).await {
                    Ok(s) => s
                        .get_raw_message(seq)
                        .await
                        .map(|m| (m.subject.to_string(), m.payload))
                        .unwrap_or_default(),
                    Err(_) => Default::default(),
                };
                let reason = format!("not acknowledged after {deliveries} deliveries");
                let letter = Letter {
                    stream: &stream,
                    consumer: &consumer,
                    seq,
                    subject: &subject,
                };
                if let Err(e) = bus.dead_letter(&letter, &reason, payload).await {
                    tracing::error!(error = %e, stream, consumer, seq, "cannot record a dead letter");
                }
            }
        });
        Ok(())
    }

    async fn dead_letter(
        &self,
        letter: &Letter<'_>,
        reason: &str,
        payload: Bytes,
    ) -> Result<(), BusError> {
        let Letter {
            stream,
            consumer,
            seq,
            subject,
        } = *letter;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(REASON_HEADER, reason);
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
        headers.insert(SUBJECT_HEADER, subject);
        let dlq_subject = format!("{DLQ_PREFIX}.{stream}.{consumer}");
        let ack = bounded(self.js.publish_with_headers(dlq_subject, headers, payload)).await?;
        bounded(ack.into_future()).await?;
        metrics::BUS_DEAD_LETTERED.inc();
        tracing::warn!(
            stream,
            consumer,
            seq,
            subject,
            reason,
            "message dead-lettered"
        );
        Ok(())
    }
}

#[async_trait]
impl Bus for JetStreamBus {
    async fn publish(
        &self,
        subject: Subject,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<PublishAck, BusError> {
        let message = Outgoing {
            subject,
            id: msg_id.to_string(),
            payload,
        };
        self.publish_batch(std::slice::from_ref(&message))
            .await?
            .pop()
            .ok_or_else(|| BusError::Broker("publish returned no acknowledgement".into()))
    }

    async fn publish_batch(&self, messages: &[Outgoing]) -> Result<Vec<PublishAck>, BusError> {
        let patience = Duration::from_millis(self.cfg.publish_timeout_ms);
        let deadline = tokio::time::Instant::now() + patience;
        let mut backoff = Duration::from_millis(5);
        let mut acks: Vec<Option<PublishAck>> = vec![None; messages.len()];
        let mut todo: Vec<usize> = (0..messages.len()).collect();
        while !todo.is_empty() {
            if self.closed.load(Ordering::Acquire) {
                return Err(BusError::Closed);
            }
            let mut failed = Vec::new();
            for window in todo.chunks(PUBLISH_WINDOW) {
                // Send the whole window, then collect its acks.
                let mut in_flight = Vec::with_capacity(window.len());
                for &i in window {
                    let m = &messages[i];
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(async_nats::header::NATS_MESSAGE_ID, m.id.as_str());
                    let send =
                        self.js
                            .publish_with_headers(m.subject.name(), headers, m.payload.clone());
                    match bounded(send).await {
                        Ok(ack) => in_flight.push((i, ack)),
                        Err(_) => failed.push(i),
                    }
                }
                for (i, ack) in in_flight {
                    match bounded(ack.into_future()).await {
                        Ok(a) => {
                            acks[i] = Some(PublishAck {
                                seq: a.sequence,
                                duplicate: a.duplicate,
                            })
                        }
                        Err(_) => failed.push(i),
                    }
                }
            }
            if failed.is_empty() {
                break;
            }
            // A full stream (discard: new) or a broker away: wait and retry.
            metrics::BUS_PUBLISH_WAITS.inc();
            if tokio::time::Instant::now() + backoff > deadline {
                tracing::warn!(unstored = failed.len(), "publish gave up");
                return Err(BusError::Timeout(patience));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
            failed.sort_unstable();
            todo = failed;
        }
        Ok(acks.into_iter().flatten().collect())
    }

    async fn consumer(&self, spec: ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        let consumer = self.define(&spec).await?;
        Ok(Box::new(JetStreamConsumer {
            bus: self.clone(),
            consumer,
            spec,
        }))
    }

    async fn serve(&self, service: &str) -> Result<crate::bus::Requests, BusError> {
        let client = self.js.client();
        // A queue group: one of the processes serving it gets each request.
        let mut sub = client
            .queue_subscribe(crate::bus::service_subject(service), "starling".into())
            .await
            .map_err(broker)?;
        // Served once the server has the subscription.
        client.flush().await.map_err(broker)?;
        let (tx, rx) = tokio::sync::mpsc::channel(crate::bus::SERVICE_QUEUE);
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    msg = sub.next() => msg,
                    _ = tx.closed() => None,
                };
                let Some(msg) = msg else { break };
                let Some(reply_to) = msg.reply else { continue };
                let (reply, answer) = tokio::sync::oneshot::channel();
                if tx.send((msg.payload, reply)).await.is_err() {
                    break;
                }
                let client = client.clone();
                tokio::spawn(async move {
                    if let Ok(body) = answer.await {
                        let _ = client.publish(reply_to, body).await;
                    }
                });
            }
            let _ = sub.unsubscribe().await;
        });
        Ok(rx)
    }

    async fn call(
        &self,
        service: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let client = self.js.client();
        let asked = client.request(crate::bus::service_subject(service), payload);
        match tokio::time::timeout(timeout, asked).await {
            Err(_) => Err(BusError::Timeout(timeout)),
            Ok(Ok(msg)) => Ok(msg.payload),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                Err(BusError::NoService(service.to_string()))
            }
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => {
                Err(BusError::Timeout(timeout))
            }
            Ok(Err(e)) => Err(broker(e)),
        }
    }

    async fn ensure_consumers(&self, specs: &[ConsumerSpec]) -> Result<(), BusError> {
        for spec in specs {
            self.define(spec).await?;
        }
        // The live feed's shared consumer of earlier versions would keep
        // every post for good (interest retention): remove it.
        if let Ok(stream) = self.js.get_stream(StreamName::Enriched.as_str()).await {
            let _ = stream.delete_consumer(crate::bus::LIVE_FEED_PREFIX).await;
        }
        Ok(())
    }

    async fn stream_stats(&self) -> Vec<StreamStats> {
        let mut out = Vec::new();
        for name in StreamName::ALL {
            let Ok(mut s) = self.js.get_stream(name.as_str()).await else {
                continue;
            };
            if let Ok(info) = s.info().await {
                out.push(StreamStats {
                    stream: name.as_str(),
                    messages: info.state.messages,
                    published: info.state.last_sequence,
                    duplicates: None,
                });
            }
        }
        out
    }

    async fn consumer_stats(&self) -> Vec<ConsumerStats> {
        let mut out = Vec::new();
        for name in StreamName::ALL {
            let Ok(s) = self.js.get_stream(name.as_str()).await else {
                continue;
            };
            let mut infos = s.consumers();
            while let Some(Ok(info)) = infos.next().await {
                out.push(ConsumerStats {
                    stream: name.as_str(),
                    durable: info.name.clone(),
                    pending: info.num_pending,
                    ack_pending: info.num_ack_pending as u64,
                    redelivered: info.num_redelivered as u64,
                    dead_lettered: None,
                });
            }
        }
        out.sort_by(|a, b| (a.stream, &a.durable).cmp(&(b.stream, &b.durable)));
        out
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        let Ok(mut s) = self.js.get_stream(DLQ_STREAM).await else {
            return Vec::new();
        };
        let Ok(info) = s.info().await else {
            return Vec::new();
        };
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let mut out = Vec::new();
        if info.state.messages == 0 {
            return out;
        }
        for seq in first.max(last.saturating_sub(DLQ_LISTED - 1))..=last {
            let Ok(m) = s.get_raw_message(seq).await else {
                continue;
            };
            let header = |name: &str| {
                m.headers
                    .get(name)
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default()
            };
            let (stream, durable) = dlq_origin(m.subject.as_str());
            out.push(DeadLetter {
                stream: stream.map_or(DLQ_STREAM, StreamName::as_str),
                durable: durable.to_string(),
                seq: header(SEQ_HEADER).parse().unwrap_or_default(),
                reason: header(REASON_HEADER),
                payload: String::from_utf8_lossy(&m.payload).into_owned(),
            });
        }
        out
    }

    async fn replay_dead_letters(&self) -> Result<usize, BusError> {
        let mut dlq = self.js.get_stream(DLQ_STREAM).await.map_err(broker)?;
        let info = dlq.info().await.map_err(broker)?;
        if info.state.messages == 0 {
            return Ok(0);
        }
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let mut replayed = 0;
        for seq in first..=last {
            let Ok(m) = dlq.get_raw_message(seq).await else {
                continue; // already replayed or removed
            };
            let original = m
                .headers
                .get(SUBJECT_HEADER)
                .and_then(|v| Subject::parse(v.as_str()));
            let Some(subject) = original else {
                tracing::warn!(
                    seq,
                    "dead letter without its original subject; left in the DLQ"
                );
                continue;
            };
            let id =
                format!("replay-{}", m.subject.as_str().replace('.', "-")) + &format!("-{seq}");
            self.publish(subject, &id, m.payload.clone()).await?;
            dlq.delete_message(seq).await.map_err(broker)?;
            replayed += 1;
        }
        Ok(replayed)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

struct JetStreamConsumer {
    bus: JetStreamBus,
    consumer: consumer::PullConsumer,
    spec: ConsumerSpec,
}

#[async_trait]
impl Consumer for JetStreamConsumer {
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        if self.bus.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed);
        }
        let wait = wait.max(Duration::from_millis(10));
        let mut batch = match self
            .consumer
            .fetch()
            .max_messages(max.max(1))
            .expires(wait)
            .messages()
            .await
        {
            Ok(b) => b,
            Err(e) => {
                // Broker away (restart, network): the client reconnects; try later.
                tracing::warn!(error = %e, durable = %self.spec.durable, "fetch failed; retrying");
                tokio::time::sleep(wait).await;
                return Ok(Vec::new());
            }
        };
        let mut messages = Vec::new();
        // A pull request lost with a server restart is never answered: bound
        // the wait ourselves and keep what arrived (anything delivered but
        // not returned comes back after ack_wait).
        let collect = async {
            while let Some(next) = batch.next().await {
                match next {
                    Ok(m) => messages.push(m),
                    Err(e) => {
                        tracing::warn!(error = %e, durable = %self.spec.durable, "fetch interrupted");
                        break;
                    }
                }
            }
        };
        if tokio::time::timeout(wait + FETCH_GRACE, collect)
            .await
            .is_err()
        {
            tracing::warn!(durable = %self.spec.durable, "fetch got no answer in time (broker restart?); retrying");
        }
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            let subject_name = message.subject.to_string();
            let (seq, delivered) = match message.info() {
                Ok(i) => (
                    i.stream_sequence,
                    u32::try_from(i.delivered).unwrap_or(u32::MAX),
                ),
                Err(_) => (0, 1),
            };
            if delivered > 1 {
                metrics::BUS_REDELIVERED.inc();
            }
            let (message, acker) = message.split();
            let acker = JetStreamAcker {
                bus: self.bus.clone(),
                acker,
                stream: self.spec.stream,
                durable: self.spec.durable.clone(),
                seq,
                subject: subject_name,
                payload: message.payload.clone(),
            };
            // Someone published on the stream by hand, outside the layout.
            let Some(subject) = Subject::parse(&acker.subject) else {
                let reason = format!("unknown subject `{}`", acker.subject);
                acker.term(&reason).await?;
                continue;
            };
            out.push(Delivery::new(
                subject,
                message.payload,
                seq,
                delivered,
                Box::new(acker),
            ));
        }
        Ok(out)
    }
}

struct JetStreamAcker {
    bus: JetStreamBus,
    acker: jetstream::message::Acker,
    stream: StreamName,
    durable: String,
    seq: u64,
    subject: String,
    payload: Bytes,
}

/// Where a dead letter came from.
#[derive(Clone, Copy)]
struct Letter<'a> {
    stream: &'a str,
    consumer: &'a str,
    seq: u64,
    subject: &'a str,
}

#[async_trait]
impl Acker for JetStreamAcker {
    async fn ack(&self) -> Result<(), BusError> {
        // A lost ack only means a redelivery, which the consumers de-duplicate.
        if let Err(e) = bounded(self.acker.ack()).await {
            tracing::warn!(error = %e, durable = %self.durable, seq = self.seq, "ack lost; the message will come again");
        }
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        match bounded(self.acker.ack_with(AckKind::Nak(Some(delay)))).await {
            // Unanswered: redelivered after ack_wait anyway.
            Err(BusError::Timeout(_)) => Ok(()),
            r => r,
        }
    }

    async fn term(&self, reason: &str) -> Result<(), BusError> {
        let letter = Letter {
            stream: self.stream.as_str(),
            consumer: &self.durable,
            seq: self.seq,
            subject: &self.subject,
        };
        self.bus
            .dead_letter(&letter, reason, self.payload.clone())
            .await?;
        bounded(self.acker.ack_with(AckKind::Term)).await
    }
}
