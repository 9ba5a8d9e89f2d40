//! The in-process bus: the single-binary default, with JetStream's semantics
//! (see the module doc of [`crate::bus`]) kept in memory.
//!
//! Each stream is a sequence-ordered map behind a mutex, with a
//! [`tokio::sync::Notify`] that wakes fetchers (new or due messages) and
//! publishers (space freed). Time is `tokio::time::Instant`, so tests can
//! pause it. What it does not give: durability across a process crash (the
//! JetStream bus does); a clean shutdown drains it instead.

use super::{
    Acker, Bus, BusError, Consumer, ConsumerSpec, ConsumerStats, DeadLetter, Delivery, PublishAck,
    StreamName, StreamStats, Subject,
};
use crate::config::BusConfig;
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Dead letters kept for inspection.
const DEAD_LETTERS_KEPT: usize = 1_000;

/// The in-process bus.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    streams: HashMap<StreamName, Arc<Stream>>,
    closed: AtomicBool,
    dead: Mutex<VecDeque<Kept>>,
    /// Served services (one process: the last to serve one gets it).
    services: Mutex<HashMap<String, tokio::sync::mpsc::Sender<ServiceRequest>>>,
}

type ServiceRequest = (Bytes, tokio::sync::oneshot::Sender<Bytes>);

/// A dead letter as kept: the exact payload, for a replay.
#[derive(Clone)]
struct Kept {
    stream: StreamName,
    /// Where it was published (`None` if it was gone when dead-lettered).
    subject: Option<Subject>,
    durable: String,
    seq: u64,
    reason: String,
    payload: Bytes,
}

impl Kept {
    fn letter(&self) -> DeadLetter {
        DeadLetter {
            stream: self.stream.as_str(),
            durable: self.durable.clone(),
            seq: self.seq,
            reason: self.reason.clone(),
            payload: String::from_utf8_lossy(&self.payload).into_owned(),
        }
    }
}

struct Stream {
    name: StreamName,
    max_msgs: usize,
    /// How long a publish waits for room in a full stream (`bus.publish_timeout_ms`).
    publish_timeout: Duration,
    duplicate_window: Duration,
    state: Mutex<StreamState>,
    changed: Notify,
}

struct Stored {
    subject: Subject,
    payload: Bytes,
    decoded: super::Decoded,
}

#[derive(Default)]
struct StreamState {
    msgs: BTreeMap<u64, Stored>,
    next_seq: u64,
    dedupe: HashMap<String, u64>,
    dedupe_order: VecDeque<(Instant, String)>,
    consumers: HashMap<String, ConsumerState>,
    published: u64,
    duplicates: u64,
}

struct ConsumerState {
    spec: ConsumerSpec,
    /// Next sequence never delivered to this consumer.
    next_seq: u64,
    /// Delivered, not yet acknowledged: seq -> (redelivery deadline, deliveries).
    pending: BTreeMap<u64, (Instant, u32)>,
    redelivered: u64,
    dead_lettered: u64,
}

impl ConsumerState {
    /// Every sequence below this has been acknowledged (or dead-lettered).
    fn ack_floor(&self) -> u64 {
        self.pending
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_seq)
            .min(self.next_seq)
    }
}

impl MemoryBus {
    /// A bus with the pipeline's streams, sized by `cfg`.
    pub fn new(cfg: &BusConfig) -> Self {
        let streams = StreamName::ALL
            .into_iter()
            .map(|name| {
                let stream = Stream {
                    name,
                    max_msgs: cfg.stream_max_msgs,
                    publish_timeout: Duration::from_millis(cfg.publish_timeout_ms),
                    duplicate_window: Duration::from_secs(cfg.duplicate_window_s),
                    state: Mutex::new(StreamState {
                        next_seq: 1,
                        ..StreamState::default()
                    }),
                    changed: Notify::new(),
                };
                (name, Arc::new(stream))
            })
            .collect();
        MemoryBus {
            inner: Arc::new(Inner {
                streams,
                closed: AtomicBool::new(false),
                dead: Mutex::new(VecDeque::new()),
                services: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn stream(&self, name: StreamName) -> Arc<Stream> {
        // Every StreamName is created in `new`.
        Arc::clone(&self.inner.streams[&name])
    }

    /// Creates the consumer if missing (updating its settings otherwise).
    fn define(&self, spec: &ConsumerSpec) -> Result<Arc<Stream>, BusError> {
        if self.inner.is_closed() {
            return Err(BusError::Closed);
        }
        let stream = self.stream(spec.stream);
        {
            let mut st = stream.state.lock();
            // A process's own consumer starts at what comes next.
            let first = match spec.expires_after {
                Some(_) => st.next_seq,
                None => st.msgs.keys().next().copied().unwrap_or(st.next_seq),
            };
            match st.consumers.get_mut(&spec.durable) {
                Some(existing) => existing.spec = spec.clone(),
                None => {
                    st.consumers.insert(
                        spec.durable.clone(),
                        ConsumerState {
                            spec: spec.clone(),
                            next_seq: first,
                            pending: BTreeMap::new(),
                            redelivered: 0,
                            dead_lettered: 0,
                        },
                    );
                }
            }
        }
        Ok(stream)
    }
}

impl Inner {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn dead_letter(
        &self,
        stream: &Stream,
        st: &mut StreamState,
        durable: &str,
        seq: u64,
        reason: String,
    ) {
        let (subject, payload) = st
            .msgs
            .get(&seq)
            .map(|m| (Some(m.subject), m.payload.clone()))
            .unwrap_or((None, Bytes::new()));
        if let Some(c) = st.consumers.get_mut(durable) {
            c.pending.remove(&seq);
            c.dead_lettered += 1;
        }
        crate::telemetry::metrics::BUS_DEAD_LETTERED.inc();
        tracing::warn!(stream = stream.name.as_str(), durable, seq, %reason, "message dead-lettered");
        let mut dead = self.dead.lock();
        if dead.len() >= DEAD_LETTERS_KEPT {
            dead.pop_front();
        }
        dead.push_back(Kept {
            stream: stream.name,
            subject,
            durable: durable.to_string(),
            seq,
            reason,
            payload,
        });
    }
}

impl Stream {
    /// Drops the oldest messages that every consumer they match has
    /// acknowledged. With no consumer defined, messages are kept until one
    /// is (no data is lost at start-up).
    fn trim(st: &mut StreamState) -> bool {
        if st.consumers.is_empty() {
            return false;
        }
        let before = st.msgs.len();
        while let Some((&seq, m)) = st.msgs.first_key_value() {
            let done = st
                .consumers
                .values()
                .all(|c| !c.spec.filter.matches(m.subject) || seq < c.ack_floor());
            if !done {
                break;
            }
            st.msgs.pop_first();
        }
        st.msgs.len() != before
    }

    fn expire_dedupe(&self, st: &mut StreamState, now: Instant) {
        while let Some((at, _)) = st.dedupe_order.front() {
            if now.duration_since(*at) < self.duplicate_window {
                break;
            }
            if let Some((_, id)) = st.dedupe_order.pop_front() {
                st.dedupe.remove(&id);
            }
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(
        &self,
        subject: Subject,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<PublishAck, BusError> {
        let stream = self.stream(subject.stream());
        let deadline = tokio::time::Instant::now() + stream.publish_timeout;
        loop {
            if self.inner.is_closed() {
                return Err(BusError::Closed);
            }
            let notified = stream.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = stream.state.lock();
                let now = Instant::now();
                stream.expire_dedupe(&mut st, now);
                if let Some(&seq) = st.dedupe.get(msg_id) {
                    st.duplicates += 1;
                    return Ok(PublishAck {
                        seq,
                        duplicate: true,
                    });
                }
                if st.msgs.len() < stream.max_msgs {
                    let seq = st.next_seq;
                    st.next_seq += 1;
                    st.msgs.insert(
                        seq,
                        Stored {
                            subject,
                            payload,
                            decoded: super::Decoded::default(),
                        },
                    );
                    st.dedupe.insert(msg_id.to_string(), seq);
                    st.dedupe_order.push_back((now, msg_id.to_string()));
                    st.published += 1;
                    drop(st);
                    stream.changed.notify_waiters();
                    return Ok(PublishAck {
                        seq,
                        duplicate: false,
                    });
                }
            }
            // Full: wait for consumers to acknowledge (back-pressure), as
            // long as the broker's publishers would.
            crate::telemetry::metrics::BUS_PUBLISH_WAITS.inc();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(BusError::Timeout(stream.publish_timeout));
            }
        }
    }

    async fn ensure_consumers(&self, specs: &[ConsumerSpec]) -> Result<(), BusError> {
        for spec in specs {
            self.define(spec)?;
        }
        Ok(())
    }

    async fn consumer(&self, spec: ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        let stream = self.define(&spec)?;
        Ok(Box::new(MemoryConsumer {
            bus: Arc::clone(&self.inner),
            stream,
            durable: spec.durable,
        }))
    }

    async fn stream_stats(&self) -> Vec<StreamStats> {
        let mut out: Vec<StreamStats> = self
            .inner
            .streams
            .values()
            .map(|s| {
                let st = s.state.lock();
                StreamStats {
                    stream: s.name.as_str(),
                    messages: st.msgs.len() as u64,
                    published: st.published,
                    duplicates: Some(st.duplicates),
                }
            })
            .collect();
        out.sort_by_key(|s| s.stream);
        out
    }

    async fn consumer_stats(&self) -> Vec<ConsumerStats> {
        let mut out = Vec::new();
        for s in self.inner.streams.values() {
            let st = s.state.lock();
            for (name, c) in &st.consumers {
                let pending = st
                    .msgs
                    .range(c.next_seq..)
                    .filter(|(_, m)| c.spec.filter.matches(m.subject))
                    .count();
                out.push(ConsumerStats {
                    stream: s.name.as_str(),
                    durable: name.clone(),
                    pending: pending as u64,
                    ack_pending: c.pending.len() as u64,
                    redelivered: c.redelivered,
                    dead_lettered: Some(c.dead_lettered),
                });
            }
        }
        out.sort_by(|a, b| (a.stream, &a.durable).cmp(&(b.stream, &b.durable)));
        out
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        self.inner.dead.lock().iter().map(Kept::letter).collect()
    }

    async fn replay_dead_letters(&self) -> Result<usize, BusError> {
        // One at a time, removed only once republished: a failed publish
        // leaves the rest where they were.
        let n = self.inner.dead.lock().len();
        for replayed in 0..n {
            let Some(kept) = self.inner.dead.lock().front().cloned() else {
                return Ok(replayed);
            };
            let id = format!(
                "replay-{}-{}-{}",
                kept.stream.as_str(),
                kept.durable,
                kept.seq
            );
            if let Some(subject) = kept.subject {
                self.publish(subject, &id, kept.payload).await?;
            }
            self.inner.dead.lock().pop_front();
        }
        Ok(n)
    }

    async fn serve(&self, service: &str) -> Result<super::Requests, BusError> {
        let (tx, rx) = tokio::sync::mpsc::channel(super::SERVICE_QUEUE);
        self.inner.services.lock().insert(service.to_string(), tx);
        Ok(rx)
    }

    async fn call(
        &self,
        service: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let tx = self.inner.services.lock().get(service).cloned();
        let no_service = || BusError::NoService(service.to_string());
        let tx = tx.ok_or_else(no_service)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let asked = async {
            tx.send((payload, reply)).await.map_err(|_| no_service())?;
            answer.await.map_err(|_| no_service())
        };
        tokio::time::timeout(timeout, asked)
            .await
            .map_err(|_| BusError::Timeout(timeout))?
    }

    fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for s in self.inner.streams.values() {
            s.changed.notify_waiters();
        }
    }
}

struct MemoryConsumer {
    bus: Arc<Inner>,
    stream: Arc<Stream>,
    durable: String,
}

impl MemoryConsumer {
    /// Takes what is due now; returns the deliveries and, when there are
    /// none, the earliest redelivery deadline.
    fn take(&self, max: usize) -> Result<(Vec<Delivery>, Option<Instant>), BusError> {
        let stream = &self.stream;
        let mut st = stream.state.lock();
        let now = Instant::now();
        let (spec, due) = {
            let c = st
                .consumers
                .get(&self.durable)
                .ok_or_else(|| BusError::UnknownConsumer(self.durable.clone()))?;
            let due: Vec<(u64, u32)> = c
                .pending
                .iter()
                .filter(|(_, (deadline, _))| *deadline <= now)
                .map(|(seq, (_, n))| (*seq, *n))
                .collect();
            (c.spec.clone(), due)
        };
        let mut out = Vec::new();
        // Redeliveries first, oldest first.
        for (seq, delivered) in due {
            if out.len() >= max {
                break;
            }
            if delivered >= spec.max_deliver {
                let reason = format!("not acknowledged after {delivered} deliveries");
                self.bus
                    .dead_letter(stream, &mut st, &self.durable, seq, reason);
                continue;
            }
            let Some((subject, payload, decoded)) = st
                .msgs
                .get(&seq)
                .map(|m| (m.subject, m.payload.clone(), m.decoded.clone()))
            else {
                continue;
            };
            if let Some(c) = st.consumers.get_mut(&self.durable) {
                c.pending.insert(seq, (now + spec.ack_wait, delivered + 1));
                c.redelivered += 1;
            }
            crate::telemetry::metrics::BUS_REDELIVERED.inc();
            out.push(
                self.delivery(subject, seq, delivered + 1, payload)
                    .with_decoded(decoded),
            );
        }
        // Then new messages, within max_ack_pending.
        let next_stream_seq = st.next_seq;
        while out.len() < max {
            let (next, pending_len) = match st.consumers.get(&self.durable) {
                Some(c) => (c.next_seq, c.pending.len()),
                None => break,
            };
            if next >= next_stream_seq || pending_len >= spec.max_ack_pending {
                break;
            }
            // Messages gone or outside the filter are skipped.
            let wanted = st
                .msgs
                .get(&next)
                .filter(|m| spec.filter.matches(m.subject))
                .map(|m| (m.subject, m.payload.clone(), m.decoded.clone()));
            if let Some(c) = st.consumers.get_mut(&self.durable) {
                c.next_seq = next + 1;
                if wanted.is_some() {
                    c.pending.insert(next, (now + spec.ack_wait, 1));
                }
            }
            if let Some((subject, payload, decoded)) = wanted {
                out.push(
                    self.delivery(subject, next, 1, payload)
                        .with_decoded(decoded),
                );
            }
        }
        let trimmed = Stream::trim(&mut st);
        let earliest = st
            .consumers
            .get(&self.durable)
            .and_then(|c| c.pending.values().map(|(d, _)| *d).min());
        drop(st);
        if trimmed {
            stream.changed.notify_waiters();
        }
        Ok((out, earliest))
    }

    fn delivery(&self, subject: Subject, seq: u64, delivered: u32, payload: Bytes) -> Delivery {
        Delivery::new(
            subject,
            payload,
            seq,
            delivered,
            Box::new(MemoryAcker {
                bus: Arc::clone(&self.bus),
                stream: Arc::clone(&self.stream),
                durable: self.durable.clone(),
                seq,
            }),
        )
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let until = Instant::now() + wait;
        loop {
            if self.bus.is_closed() {
                return Err(BusError::Closed);
            }
            let notified = self.stream.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (batch, earliest) = self.take(max.max(1))?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(Vec::new());
            }
            let wake = earliest.map_or(until, |d| d.min(until));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

struct MemoryAcker {
    bus: Arc<Inner>,
    stream: Arc<Stream>,
    durable: String,
    seq: u64,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<(), BusError> {
        let mut st = self.stream.state.lock();
        if let Some(c) = st.consumers.get_mut(&self.durable) {
            c.pending.remove(&self.seq);
        }
        let trimmed = Stream::trim(&mut st);
        drop(st);
        if trimmed {
            self.stream.changed.notify_waiters();
        }
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        let mut st = self.stream.state.lock();
        if let Some(c) = st.consumers.get_mut(&self.durable) {
            if let Some(entry) = c.pending.get_mut(&self.seq) {
                entry.0 = Instant::now() + delay;
            }
        }
        drop(st);
        self.stream.changed.notify_waiters();
        Ok(())
    }

    async fn term(&self, reason: &str) -> Result<(), BusError> {
        let mut st = self.stream.state.lock();
        self.bus.dead_letter(
            &self.stream,
            &mut st,
            &self.durable,
            self.seq,
            reason.to_string(),
        );
        let trimmed = Stream::trim(&mut st);
        drop(st);
        if trimmed {
            self.stream.changed.notify_waiters();
        }
        Ok(())
    }
}
