//! What the ScyllaDB store does when the cluster fails, without a cluster:
//! `scylla-proxy` in dry mode stands in for a node (a real driver session
//! connects to it on a 127.x address). It answers the connection handshake
//! and then whatever error a test picks (overloaded, unavailable, invalid)
//! or nothing at all. For the return of the store, [`switchable_node`]
//! forges success: it prepares Starling's statements, acknowledges writes
//! and answers reads with no rows. It keeps nothing, so what is read back
//! after a write is left to the conformance suite on a live cluster.

mod common;

use bytes::Bytes;
use common::{call, ingest, Starling};
use scylla_proxy::{
    Condition, Node, Proxy, Reaction, RequestFrame, RequestOpcode, RequestReaction, RequestRule,
    ResponseFrame, ResponseOpcode,
};
use serde_json::json;
use starling::config::Config;
use starling::store::{Store, StoreError, WindowBatch};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the fake node does with requests after the handshake.
#[derive(Clone, Copy)]
enum Answer {
    Overloaded,
    Unavailable,
    Invalid,
    Nothing,
}

/// A dry-mode node on a runtime of its own (a test's own thread may block
/// in the store's calls or on the starling process); gone when dropped.
struct FakeNode {
    addr: SocketAddr,
    /// One message per PREPARE the node received.
    prepares: mpsc::UnboundedReceiver<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl FakeNode {
    /// PREPAREs received since the last call.
    fn prepares(&mut self) -> usize {
        let mut n = 0;
        while self.prepares.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

/// An address of its own on the loopback network (127.x.y.z:9042).
fn loopback() -> SocketAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let ip = std::net::Ipv4Addr::new(
        127,
        (pid % 200 + 20) as u8,
        (pid / 200 % 250) as u8,
        n as u8,
    );
    SocketAddr::new(ip.into(), 9042)
}

/// The connection handshake: an empty SUPPORTED map, READY to STARTUP and
/// REGISTER.
fn handshake() -> Vec<RequestRule> {
    let reply = |op: ResponseOpcode, body: &'static [u8]| {
        RequestReaction::forge_response(Arc::new(move |RequestFrame { params, .. }| {
            ResponseFrame::new(params.for_response(), op, Bytes::from_static(body))
        }))
    };
    vec![
        RequestRule(
            Condition::RequestOpcode(RequestOpcode::Options),
            reply(ResponseOpcode::Supported, &[0, 0]),
        ),
        RequestRule(
            Condition::RequestOpcode(RequestOpcode::Startup),
            reply(ResponseOpcode::Ready, &[]),
        ),
        RequestRule(
            Condition::RequestOpcode(RequestOpcode::Register),
            reply(ResponseOpcode::Ready, &[]),
        ),
    ]
}

/// A node that answers the handshake, then every other request with
/// `answer`.
fn fake_node(answer: Answer) -> FakeNode {
    let addr = loopback();
    let error = match answer {
        Answer::Unavailable => RequestReaction::forge().unavailable(),
        Answer::Invalid => RequestReaction::forge().invalid(),
        Answer::Overloaded | Answer::Nothing => RequestReaction::forge().overloaded(),
    };
    let (frames_tx, frames_rx) = mpsc::unbounded_channel();
    // `Nothing` leaves the first statement of `migrate` unanswered; the
    // driver's own metadata queries get errors (silence there would hold
    // up connecting, which has its own bound).
    let silent = Condition::RequestOpcode(RequestOpcode::Prepare).and(
        Condition::BodyContainsCaseSensitive(Box::new(*b"FROM system_schema.keyspaces")),
    );
    let mut rules = handshake();
    rules.extend([
        RequestRule(
            match answer {
                Answer::Nothing => silent,
                _ => Condition::False,
            },
            RequestReaction::drop_frame(),
        ),
        RequestRule(
            Condition::RequestOpcode(RequestOpcode::Prepare),
            error.clone().with_feedback_when_performed(frames_tx),
        ),
        RequestRule(Condition::True, error),
    ]);
    serve(addr, rules, frames_rx)
}

/// Runs a dry-mode node with `rules` at `addr` on a runtime of its own;
/// `frames` (the PREPAREs reported by the rules) are counted.
fn serve(
    addr: SocketAddr,
    rules: Vec<RequestRule>,
    mut frames: mpsc::UnboundedReceiver<(RequestFrame, Option<scylla_proxy::TargetShard>)>,
) -> FakeNode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (tx, prepares) = mpsc::unbounded_channel();
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let running = Proxy::new([Node::new_dry_mode(addr, Some(rules))])
            .run()
            .await;
        let _ = up_tx.send(running.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        let _keep = running;
        while frames.recv().await.is_some() {
            let _ = tx.send(());
        }
        std::future::pending::<()>().await;
    });
    up_rx
        .recv()
        .expect("proxy task")
        .expect("fake node listening");
    FakeNode {
        addr,
        prepares,
        runtime: Some(runtime),
    }
}

fn config(addr: SocketAddr, retries: u32) -> Config {
    let mut c = Config::default();
    c.store.scylla.nodes = vec![addr.to_string()];
    c.store.scylla.retries = retries;
    c.store.scylla.retry_backoff_ms = 20;
    c.store.scylla.request_timeout_ms = 300;
    c.store.scylla.connect_timeout_ms = 2_000;
    c
}

/// Runs `migrate` against the node; how long it took.
fn migrate(
    node: &FakeNode,
    retries: u32,
    backoff_ms: u64,
) -> (Result<Vec<String>, StoreError>, Duration) {
    let mut c = config(node.addr, retries);
    c.store.scylla.retry_backoff_ms = backoff_ms;
    let t = Instant::now();
    let r = starling::store::scylla::migrate(&c);
    (r, t.elapsed())
}

#[test]
fn overload_and_unavailability_are_retried_with_back_off_then_reported() {
    for (answer, expected) in [
        (Answer::Overloaded, "overloaded"),
        (Answer::Unavailable, "not enough nodes are alive"),
    ] {
        let mut node = fake_node(answer);
        let (once, _) = migrate(&node, 0, 20);
        assert!(matches!(&once, Err(e) if e.is_transient()), "{once:?}");
        let n0 = node.prepares();
        let (thrice, took) = migrate(&node, 3, 20);
        let n3 = node.prepares();
        assert!(n3 > n0, "retried: {n3} PREPAREs against {n0}");
        // Back-off 20 + 40 + 80 ms between the four attempts.
        assert!(took >= Duration::from_millis(140), "{took:?}");
        let e = thrice.expect_err("failed");
        assert!(e.is_transient());
        assert!(e.to_string().to_lowercase().contains(expected), "{e}");
    }
}

#[test]
fn a_request_the_node_rejects_is_not_retried() {
    let node = fake_node(Answer::Invalid);
    // A retry would first wait 5 s.
    let (r, took) = migrate(&node, 3, 5_000);
    assert!(
        matches!(
            r,
            Err(StoreError::Scylla {
                transient: false,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(4), "not retried: {took:?}");
}

#[test]
fn an_unanswered_request_times_out_on_each_attempt() {
    let node = fake_node(Answer::Nothing);
    let (r, took) = migrate(&node, 1, 20);
    let e = r.expect_err("no answer");
    assert!(e.is_transient());
    assert!(e.to_string().contains("no answer within 300ms"), "{e}");
    // Two attempts of 300 ms and a 20 ms back-off; bounded, not hanging.
    assert!(took >= Duration::from_millis(620), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn no_node_at_the_address_is_a_clear_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let e = starling::store::scylla::migrate(&config(addr, 0)).expect_err("nothing listens");
    assert!(e.is_transient());
    assert!(
        e.to_string().contains(&format!("connecting to {addr}")),
        "{e}"
    );
}

#[test]
fn a_failing_store_opens_and_reports_since_when_it_fails() {
    let node = fake_node(Answer::Overloaded);
    // The schema cannot be checked now: the process starts anyway.
    let store = starling::store::scylla::open(&config(node.addr, 1))
        .expect("opens")
        .series;
    let since = store.failing_since().expect("failing");
    let batch = WindowBatch {
        kind: Some(starling::domain::EntityKind::Project),
        ..WindowBatch::default()
    };
    let e = store.apply(&batch).expect_err("cannot write");
    assert!(e.is_transient(), "{e}");
    assert_eq!(store.failing_since(), Some(since), "the outage's start");
}

fn post(i: usize) -> serde_json::Value {
    json!({
        "id": format!("down-{i}"),
        "platform": "twitter",
        "text": "$SOL is great today",
        "author": {"id": format!("u{i}"), "handle": format!("user{i}")},
        "created_at": chrono::Utc::now().to_rfc3339(),
    })
}

/// Sum of a gauge or counter over its label sets whose labels contain `filter`.
fn metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Messages of the consumers named `consumer…` not yet acknowledged
/// (undelivered or delivered and unacknowledged).
fn held(text: &str, consumer: &str) -> f64 {
    metric(text, "starling_consumer_pending", consumer)
        + metric(text, "starling_consumer_ack_pending", consumer)
}

/// Polls `/metrics` until `done` holds, for at most `secs`; the text it held for.
async fn until_metrics(s: &Starling, secs: u64, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = common::metrics(s).await;
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_rt::test]
async fn with_the_store_down_the_pipeline_holds_its_posts_and_pushes_back() {
    let fake = fake_node(Answer::Overloaded);
    let dir = tempfile::tempdir().expect("tempdir");
    let node = fake.addr.to_string();
    let s = Starling::start_with_env(
        dir.path(),
        &["--scylla", &node],
        &[
            ("STARLING_STORE__SCYLLA__RETRIES", "1"),
            ("STARLING_STORE__SCYLLA__REQUEST_TIMEOUT_MS", "300"),
            ("STARLING_BUS__STREAM_MAX_MSGS", "60"),
            ("STARLING_BUS__PUBLISH_TIMEOUT_MS", "500"),
        ],
    );
    ingest(&s, &(0..20).map(post).collect::<Vec<_>>()).await;
    // Classified, but no aggregator commits: every post stays unacknowledged.
    let text = until_metrics(&s, 30, "posts not held", |t| {
        metric(t, "starling_scylla_failures_total", "") > 0.0
            && held(t, "aggregate-project") >= 20.0
    })
    .await;
    assert_eq!(held(&text, "aggregate-project"), 20.0, "{text}");
    assert_eq!(metric(&text, "starling_aggregated_total", ""), 0.0);
    // Lookups say the store is unavailable (nothing was cached).
    let (status, body) = call(&s, "GET", "/api/entities/project/SOL", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("store is unavailable")),
        "{body}"
    );
    // The stream fills up: ingest pushes back instead of losing posts.
    let mut refused = None;
    for round in 0..10 {
        let batch: Vec<_> = (100 + round * 20..120 + round * 20).map(post).collect();
        let (status, body) = call(&s, "POST", "/api/ingest", Some(json!(batch))).await;
        if status != 202 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("ingest pushed back once the stream was full");
    assert_eq!(status, 503, "{body}");
    let (status, _) = call(&s, "GET", "/healthz", None).await;
    assert_eq!(status, 200, "the process stays up");
    let (status, body) = call(&s, "GET", "/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["problems"]
            .to_string()
            .contains("the store does not answer"),
        "{body}"
    );
    s.kill_9();
}

#[actix_rt::test]
async fn a_web_only_process_reads_the_shared_store() {
    let fake = fake_node(Answer::Overloaded);
    let nats = common::nats::NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let node = fake.addr.to_string();
    let s = Starling::start_with_env(
        dir.path(),
        &["--role", "web", "--nats", &nats.url, "--scylla", &node],
        &[
            ("STARLING_STORE__SCYLLA__RETRIES", "0"),
            ("STARLING_STORE__SCYLLA__REQUEST_TIMEOUT_MS", "300"),
        ],
    );
    for (method, path, says) in [
        // Lookups, alerts and post listings go to ScyllaDB (here: down),
        // not to an embedded store.
        (
            "GET",
            "/api/entities/project/SOL/series",
            "store is unavailable",
        ),
        ("GET", "/api/alerts", "store is unavailable"),
        (
            "GET",
            "/api/entities/project/SOL/posts",
            "store is unavailable",
        ),
        // Search is not served here (no index).
        ("GET", "/api/search?q=refund", "keeps no search index"),
        // Alerts are changed by the process that runs the alert engine,
        // asked over the bus (here: none runs it).
        ("POST", "/api/alerts/al_1/ack", "no process serves alerts"),
        // No aggregators here, so no live feed: said, not an idle socket.
        ("GET", "/ws", "serves no live feed"),
    ] {
        let (status, body) = call(&s, method, path, None).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(body.to_string().contains(says), "{path}: {body}");
    }
    s.stop();
}

/// A node that, while `up` is false, answers every statement "overloaded"
/// and, while it is true, prepares Starling's statements (their column
/// types from the schema `migrate` creates), acknowledges every write and
/// answers every read with no rows, except the schema version.
fn switchable_node(up: Arc<AtomicBool>) -> FakeNode {
    let addr = loopback();
    let prepared: Arc<parking_lot::Mutex<Vec<cql::Statement>>> = Arc::default();
    let answer = RequestReaction::forge_response(Arc::new(move |frame: RequestFrame| {
        let body = if up.load(Ordering::SeqCst) {
            cql::answer(&frame, &prepared)
        } else {
            None
        };
        match body {
            Some(b) => ResponseFrame::new(frame.params.for_response(), ResponseOpcode::Result, b),
            None => ResponseFrame::new(
                frame.params.for_response(),
                ResponseOpcode::Error,
                cql::overloaded(),
            ),
        }
    }));
    let (_frames_tx, frames_rx) = mpsc::unbounded_channel();
    let mut rules = handshake();
    rules.extend([
        // The driver's own metadata queries (unprepared) fail: it goes on
        // with the contact point alone.
        RequestRule(
            Condition::RequestOpcode(RequestOpcode::Query),
            RequestReaction::forge().overloaded(),
        ),
        RequestRule(Condition::True, answer),
    ]);
    serve(addr, rules, frames_rx)
}

/// Just enough of the CQL binary protocol (v4) to answer Starling's own
/// prepared statements.
mod cql {
    use bytes::{Buf, BufMut, Bytes, BytesMut};
    use scylla_proxy::{RequestFrame, RequestOpcode};

    /// A statement prepared by the fake node.
    #[derive(Debug, Clone)]
    pub struct Statement {
        table: String,
        bind: Vec<(String, u16)>,
        result: Vec<(String, u16)>,
    }

    fn type_id(cql_type: &str) -> Option<u16> {
        Some(match cql_type {
            "bigint" => 0x0002,
            "blob" => 0x0003,
            "double" => 0x0007,
            "int" => 0x0009,
            "text" => 0x000D,
            "tinyint" => 0x0014,
            _ => return None,
        })
    }

    /// Column types of `table`, from the schema `migrate` creates.
    fn column(table: &str, name: &str) -> Option<u16> {
        let cfg = starling::config::StoreConfig::default();
        let t = starling::store::scylla::schema::tables(&cfg, 30)
            .into_iter()
            .find(|t| t.name == table)?;
        t.body.split(',').find_map(|col| {
            let mut words = col.split_whitespace();
            (words.next()? == name).then_some(())?;
            type_id(words.next()?)
        })
    }

    fn parse(query: &str) -> Option<Statement> {
        let names =
            |list: &str| -> Vec<String> { list.split(',').map(|c| c.trim().to_string()).collect() };
        let conditions = |clause: &str| -> Vec<String> {
            clause
                .split(" LIMIT")
                .next()
                .unwrap_or("")
                .split(" AND ")
                .filter_map(|c| c.split_whitespace().next().map(str::to_string))
                .collect()
        };
        let (table, bind, result) = if let Some(rest) = query.strip_prefix("INSERT INTO ") {
            let (table, rest) = rest.split_once(" (")?;
            let (cols, _) = rest.split_once(')')?;
            (table, names(cols), vec![])
        } else if let Some(rest) = query.strip_prefix("SELECT ") {
            let (cols, rest) = rest.split_once(" FROM ")?;
            let (table, clause) = rest.split_once(" WHERE ")?;
            (table, conditions(clause), names(cols))
        } else if let Some(rest) = query.strip_prefix("DELETE FROM ") {
            let (table, clause) = rest.split_once(" WHERE ")?;
            (table, conditions(clause), vec![])
        } else {
            return None;
        };
        let table = table.rsplit('.').next()?.to_string();
        let typed = |cols: Vec<String>| -> Option<Vec<(String, u16)>> {
            cols.into_iter()
                .map(|c| column(&table, &c).map(|t| (c, t)))
                .collect()
        };
        let mut bind = typed(bind)?;
        if query.contains("USING TTL ?") {
            bind.push(("[ttl]".into(), type_id("int")?));
        }
        Some(Statement {
            bind,
            result: typed(result)?,
            table,
        })
    }

    fn string(b: &mut BytesMut, s: &str) {
        b.put_u16(s.len() as u16);
        b.put_slice(s.as_bytes());
    }

    fn columns(b: &mut BytesMut, table: &str, cols: &[(String, u16)]) {
        b.put_i32(if cols.is_empty() { 0 } else { 1 }); // global table spec
        b.put_i32(cols.len() as i32);
        b.put_i32(0); // no partition key indexes: no token-aware routing
        if !cols.is_empty() {
            string(b, "ks");
            string(b, table);
        }
        for (name, t) in cols {
            string(b, name);
            b.put_u16(*t);
        }
    }

    /// The body of an ERROR "overloaded".
    pub fn overloaded() -> Bytes {
        let mut b = BytesMut::new();
        b.put_i32(0x1001);
        string(&mut b, "fake node down");
        b.freeze()
    }

    /// The RESULT body answering `frame`, or `None` for an error.
    pub fn answer(
        frame: &RequestFrame,
        prepared: &parking_lot::Mutex<Vec<Statement>>,
    ) -> Option<Bytes> {
        let mut body = frame.body.clone();
        let mut b = BytesMut::new();
        match frame.opcode {
            RequestOpcode::Prepare => {
                let len = usize::try_from(body.get_i32()).ok()?;
                let query = std::str::from_utf8(body.get(..len)?).ok()?.to_string();
                let st = parse(&query)?;
                let mut all = prepared.lock();
                let id = all.len() as u32;
                b.put_i32(0x0004);
                b.put_u16(4);
                b.put_u32(id);
                columns(&mut b, &st.table, &st.bind);
                // Result metadata: no partition key part.
                let mut result = BytesMut::new();
                columns(&mut result, &st.table, &st.result);
                let mut result = result.freeze();
                let flags = result.get_i32();
                let count = result.get_i32();
                let _pk = result.get_i32();
                b.put_i32(if st.result.is_empty() { 0x0004 } else { flags });
                b.put_i32(count);
                b.put_slice(&result);
                all.push(st);
            }
            RequestOpcode::Execute => {
                let len = usize::from(body.get_u16());
                let id = u32::from_be_bytes(body.get(..len)?.try_into().ok()?);
                let st = prepared.lock().get(id as usize)?.clone();
                if st.result.is_empty() {
                    b.put_i32(0x0001); // void
                } else {
                    b.put_i32(0x0002); // rows, with their metadata
                    b.put_i32(0x0001); // global table spec
                    b.put_i32(st.result.len() as i32);
                    string(&mut b, "ks");
                    string(&mut b, &st.table);
                    for (name, t) in &st.result {
                        string(&mut b, name);
                        b.put_u16(*t);
                    }
                    if st.table == "schema_version" {
                        b.put_i32(1);
                        b.put_i32(4);
                        b.put_i32(starling::store::scylla::schema::VERSION);
                    } else {
                        b.put_i32(0);
                    }
                }
            }
            RequestOpcode::Batch => b.put_i32(0x0001),
            _ => return None,
        }
        Some(b.freeze())
    }
}

#[actix_rt::test]
async fn posts_held_through_a_store_outage_are_committed_when_it_returns() {
    let up = Arc::new(AtomicBool::new(false));
    let fake = switchable_node(up.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let node = fake.addr.to_string();
    let s = Starling::start_with_env(
        dir.path(),
        &["--scylla", &node],
        &[
            ("STARLING_STORE__SCYLLA__RETRIES", "1"),
            ("STARLING_STORE__SCYLLA__REQUEST_TIMEOUT_MS", "300"),
            // Lookups answer from what the store writer committed (the
            // fake node's reads return nothing).
            ("STARLING_STORE__SCYLLA__CACHE_TTL_MS", "600000"),
        ],
    );
    ingest(&s, &(0..20).map(post).collect::<Vec<_>>()).await;
    // Down: every post is held.
    until_metrics(&s, 30, "posts not held", |t| {
        held(t, "aggregate-project") >= 20.0
            && metric(t, "starling_scylla_failures_total", "") > 0.0
    })
    .await;
    // Up again: the aggregators restart, take their posts again and commit.
    up.store(true, Ordering::SeqCst);
    until_metrics(&s, 60, "posts never committed", |t| {
        held(t, "aggregate-") == 0.0 && held(t, "archive-") == 0.0
    })
    .await;
    // What the store writer committed (the fake node keeps nothing, so this
    // is one commit holding all 20 posts, not a sum read back).
    let (status, body) = call(&s, "GET", "/api/entities/project/SOL", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["volume"], 20, "every held post: {body}");
    assert!(body.get("stale_since").is_none(), "{body}");
    s.stop();
}
