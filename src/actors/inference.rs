//! The batching inference worker: every classifier worker's texts go to one
//! worker that runs the model on batches.
//!
//! Batching rule: the worker takes queued texts, in arrival order, into a
//! batch of at most `max_batch` texts, and runs it as soon as it is full or
//! `max_wait` after the oldest text still waiting arrived, whichever comes
//! first. A request larger than `max_batch` is split over several batches;
//! a batch may hold parts of several requests. Each request gets its own
//! results back, in the order of its texts, once all of them are done.
//!
//! Inference runs off the async runtime (`spawn_blocking`), one batch at a
//! time: on a CPU the model uses every core for one batch already.
//!
//! Owns: the model function and the queue of requests. Mailbox: a request
//! channel bounded by texts, not requests: [`BatchConfig::queue`] texts may
//! be queued or in flight at once, and [`Batcher::infer`] waits for
//! capacity beyond that (back-pressure on the classifier workers, which
//! then leave posts on the bus). Restart policy: none needed, so not
//! supervised: a batch whose model call fails or panics answers each of its
//! requests with that error and the worker goes on with the next batch; the
//! worker ends when the last [`Batcher`] handle is dropped, after answering
//! what is queued.

use crate::telemetry::metrics;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The model: a batch of texts in, one output per text out, in order.
pub type InferFn<O> = Arc<dyn Fn(&[String]) -> Result<Vec<O>, String> + Send + Sync>;

/// Batching settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most texts per model call (≥ 1).
    pub max_batch: usize,
    /// Longest a queued text waits for its batch to fill.
    pub max_wait: Duration,
    /// Most texts queued or in flight; senders wait beyond it (≥ 1).
    pub queue: usize,
}

/// Why a request got no results.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceError {
    /// The worker has stopped (process shutting down).
    #[error("the inference worker has stopped")]
    Closed,
    /// The model returned an error for a batch holding the request's texts.
    #[error("inference failed: {0}")]
    Failed(String),
    /// The model panicked on a batch holding the request's texts.
    #[error("inference panicked: {0}")]
    Panicked(String),
}

struct Request<O> {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<O>, InferenceError>>,
    _permit: OwnedSemaphorePermit,
}

/// A handle to the inference worker; cheap to clone.
pub struct Batcher<O> {
    tx: mpsc::UnboundedSender<Request<O>>,
    permits: Arc<Semaphore>,
    queue: usize,
}

impl<O> Clone for Batcher<O> {
    fn clone(&self) -> Self {
        Batcher {
            tx: self.tx.clone(),
            permits: self.permits.clone(),
            queue: self.queue,
        }
    }
}

impl<O> std::fmt::Debug for Batcher<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("queue", &self.queue)
            .field("free", &self.permits.available_permits())
            .finish()
    }
}

impl<O: Send + 'static> Batcher<O> {
    /// Starts the worker on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(cfg: BatchConfig, infer: InferFn<O>) -> (Batcher<O>, tokio::task::JoinHandle<()>) {
        let cfg = BatchConfig {
            max_batch: cfg.max_batch.max(1),
            queue: cfg.queue.max(1),
            ..cfg
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(cfg.queue));
        let handle = tokio::spawn(run(cfg, infer, rx));
        (
            Batcher {
                tx,
                permits,
                queue: cfg.queue,
            },
            handle,
        )
    }

    /// Runs the model on `texts` (batched with other callers' texts) and
    /// returns one output per text, in order. Waits while the queue is full.
    pub async fn infer(&self, texts: Vec<String>) -> Result<Vec<O>, InferenceError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // A request larger than the whole queue takes all of it.
        let n = texts.len().min(self.queue);
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(u32::try_from(n).unwrap_or(u32::MAX))
            .await
            .map_err(|_| InferenceError::Closed)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                texts,
                reply,
                _permit: permit,
            })
            .map_err(|_| InferenceError::Closed)?;
        rx.await.map_err(|_| InferenceError::Closed)?
    }

    /// Texts that can be queued before a sender waits.
    pub fn free(&self) -> usize {
        self.permits.available_permits()
    }
}

/// A request being worked on: texts not yet taken into a batch start at `next`.
struct Pending<O> {
    req: Request<O>,
    arrived: Instant,
    next: usize,
    out: Vec<O>,
    error: Option<InferenceError>,
}

impl<O> Pending<O> {
    fn new(req: Request<O>) -> Self {
        let n = req.texts.len();
        Pending {
            req,
            arrived: Instant::now(),
            next: 0,
            out: Vec::with_capacity(n),
            error: None,
        }
    }

    fn untaken(&self) -> usize {
        self.req.texts.len() - self.next
    }
}

async fn run<O: Send + 'static>(
    cfg: BatchConfig,
    infer: InferFn<O>,
    mut rx: mpsc::UnboundedReceiver<Request<O>>,
) {
    let mut pending: VecDeque<Pending<O>> = VecDeque::new();
    let mut open = true;
    loop {
        if pending.is_empty() {
            if !open {
                return;
            }
            match rx.recv().await {
                Some(r) => pending.push_back(Pending::new(r)),
                None => return,
            }
        }
        // Fill the batch until it is full or the oldest waiting text is due.
        let mut queued: usize = pending.iter().map(Pending::untaken).sum();
        while open && queued < cfg.max_batch {
            let due = pending
                .iter()
                .find(|p| p.untaken() > 0)
                .map(|p| p.arrived + cfg.max_wait)
                .unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                r = rx.recv() => match r {
                    Some(r) => {
                        queued += r.texts.len();
                        pending.push_back(Pending::new(r));
                    }
                    None => open = false,
                },
                _ = tokio::time::sleep_until(due) => break,
            }
        }
        // Requests whose caller has gone need no work.
        pending.retain(|p| !p.req.reply.is_closed());
        // Take up to max_batch texts, oldest first.
        let mut batch = Vec::with_capacity(cfg.max_batch.min(queued));
        let mut parts: Vec<(usize, usize)> = Vec::new(); // (index in pending, texts)
        for (i, p) in pending.iter_mut().enumerate() {
            let room = cfg.max_batch - batch.len();
            if room == 0 {
                break;
            }
            let take = p.untaken().min(room);
            if take == 0 {
                continue;
            }
            batch.extend(
                p.req.texts[p.next..p.next + take]
                    .iter_mut()
                    .map(std::mem::take),
            );
            p.next += take;
            parts.push((i, take));
        }
        if batch.is_empty() {
            continue;
        }
        metrics::INFERENCE_BATCHES.inc();
        metrics::INFERENCE_TEXTS.add(batch.len() as u64);
        let n = batch.len();
        let f = infer.clone();
        let result = match tokio::task::spawn_blocking(move || f(&batch)).await {
            Ok(Ok(out)) if out.len() == n => Ok(out),
            Ok(Ok(out)) => Err(InferenceError::Failed(format!(
                "the model gave {} outputs for {n} texts",
                out.len()
            ))),
            Ok(Err(e)) => Err(InferenceError::Failed(e)),
            Err(e) => Err(InferenceError::Panicked(e.to_string())),
        };
        match result {
            Ok(out) => {
                let mut out = out.into_iter();
                for &(i, take) in &parts {
                    pending[i].out.extend(out.by_ref().take(take));
                }
            }
            Err(e) => {
                for &(i, _) in &parts {
                    pending[i].error = Some(e.clone());
                }
            }
        }
        // Answer the requests that are complete (they are at the front).
        while pending.front().is_some_and(|p| p.untaken() == 0) {
            let Some(p) = pending.pop_front() else { break };
            let answer = match p.error {
                Some(e) => Err(e),
                None => Ok(p.out),
            };
            let _ = p.req.reply.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    type Log = Arc<Mutex<Vec<(Duration, Vec<String>)>>>;

    /// A model that upper-cases and logs (virtual time since `t0`, batch).
    fn upper(log: Log, t0: Instant) -> InferFn<String> {
        Arc::new(move |texts: &[String]| {
            log.lock().push((t0.elapsed(), texts.to_vec()));
            Ok(texts.iter().map(|t| t.to_uppercase()).collect())
        })
    }

    fn cfg(max_batch: usize, wait_ms: u64, queue: usize) -> BatchConfig {
        BatchConfig {
            max_batch,
            max_wait: Duration::from_millis(wait_ms),
            queue,
        }
    }

    fn texts(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_runs_at_once() {
        let log: Log = Arc::default();
        let t0 = Instant::now();
        let (b, _h) = Batcher::spawn(cfg(4, 60_000, 64), upper(log.clone(), t0));
        let (x, y) = tokio::join!(b.infer(texts(&["a", "b"])), b.infer(texts(&["c", "d"])));
        assert_eq!(x.unwrap(), ["A", "B"]);
        assert_eq!(y.unwrap(), ["C", "D"]);
        let log = log.lock();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0].0, Duration::ZERO);
        assert_eq!(log[0].1, ["a", "b", "c", "d"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_request_runs_after_max_wait() {
        let log: Log = Arc::default();
        let t0 = Instant::now();
        let (b, _h) = Batcher::spawn(cfg(64, 5, 64), upper(log.clone(), t0));
        assert_eq!(b.infer(texts(&["solo"])).await.unwrap(), ["SOLO"]);
        let log = log.lock();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].0, Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn large_requests_are_split_and_answered_in_order() {
        let log: Log = Arc::default();
        let t0 = Instant::now();
        let (b, _h) = Batcher::spawn(cfg(3, 5, 64), upper(log.clone(), t0));
        let big: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        let (x, y) = tokio::join!(b.infer(big.clone()), b.infer(texts(&["z"])));
        let want: Vec<String> = big.iter().map(|t| t.to_uppercase()).collect();
        assert_eq!(x.unwrap(), want);
        assert_eq!(y.unwrap(), ["Z"]);
        assert!(b.infer(Vec::new()).await.unwrap().is_empty());
        let log = log.lock();
        let sizes: Vec<usize> = log.iter().map(|(_, b)| b.len()).collect();
        assert_eq!(sizes, [3, 3, 3], "{log:?}");
        // Full batches did not wait.
        assert!(log.iter().all(|(t, _)| *t == Duration::ZERO), "{log:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn senders_wait_for_queue_capacity() {
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate_rx));
        let infer: InferFn<usize> = Arc::new(move |t: &[String]| {
            let _ = gate.lock().recv();
            Ok(t.iter().map(String::len).collect())
        });
        let (b, _h) = Batcher::spawn(cfg(2, 1, 3), infer);
        let first = tokio::spawn({
            let b = b.clone();
            async move { b.infer(texts(&["aa", "bbb"])).await }
        });
        while b.free() > 1 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let b = b.clone();
            async move { b.infer(texts(&["c", "dd"])).await }
        });
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        // Two texts in flight, one permit left: the second request (two
        // texts) waits, holding that permit (the queue is first come, first served).
        assert_eq!(b.free(), 0);
        assert!(!second.is_finished());
        for _ in 0..4 {
            let _ = gate_tx.send(());
        }
        assert_eq!(first.await.unwrap().unwrap(), [2, 3]);
        assert_eq!(second.await.unwrap().unwrap(), [1, 2]);
        assert_eq!(b.free(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_and_panics_answer_their_batch_and_the_worker_goes_on() {
        let infer: InferFn<usize> = Arc::new(|t: &[String]| {
            if t.iter().any(|x| x == "boom") {
                panic!("boom");
            }
            if t.iter().any(|x| x == "bad") {
                return Err("bad input".into());
            }
            Ok(t.iter().map(String::len).collect())
        });
        let (b, h) = Batcher::spawn(cfg(1, 1, 8), infer);
        assert_eq!(
            b.infer(texts(&["bad"])).await,
            Err(InferenceError::Failed("bad input".into()))
        );
        assert!(matches!(
            b.infer(texts(&["boom"])).await,
            Err(InferenceError::Panicked(_))
        ));
        // A request split over batches fails as a whole when one batch fails.
        assert!(b.infer(texts(&["ok", "bad", "ok"])).await.is_err());
        assert_eq!(b.infer(texts(&["fine"])).await, Ok(vec![4]));
        drop(b);
        h.await.expect("the worker ends when the handles are gone");
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_model_answer_is_an_error_not_a_hang() {
        let infer: InferFn<usize> = Arc::new(|_: &[String]| Ok(vec![]));
        let (b, _h) = Batcher::spawn(cfg(4, 1, 8), infer);
        let e = b.infer(texts(&["a"])).await.unwrap_err();
        assert!(e.to_string().contains("0 outputs for 1"), "{e}");
    }
}
