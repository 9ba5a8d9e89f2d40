//! The bus conformance suite: the semantics every `Bus` must have (see
//! `starling::bus`). Each check is a function over `Arc<dyn Bus>`; the
//! in-process bus runs them here, the JetStream bus will run the same ones.

#[path = "common/nats.rs"]
mod nats;

use bytes::Bytes;
use starling::bus::jetstream::JetStreamBus;
use starling::bus::memory::MemoryBus;
use starling::bus::{
    merge::merge, Bus, BusError, ConsumerSpec, Filter, Outgoing, StreamName, Subject,
};
use starling::config::BusConfig;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn spec(durable: &str, ack_wait_ms: u64, max_deliver: u32) -> ConsumerSpec {
    ConsumerSpec {
        stream: StreamName::Raw,
        filter: Filter::All,
        durable: durable.into(),
        ack_wait: Duration::from_millis(ack_wait_ms),
        max_deliver,
        max_ack_pending: 10_000,
        expires_after: None,
    }
}

async fn publish_n(bus: &dyn Bus, n: usize, prefix: &str) {
    for i in 0..n {
        bus.publish(
            Subject::RawPosts,
            &format!("{prefix}{i}"),
            Bytes::from(format!("{prefix}{i}")),
        )
        .await
        .expect("publish");
    }
}

async fn drain(c: &mut Box<dyn starling::bus::Consumer>, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..50 {
        if got.len() >= want {
            break;
        }
        for d in c
            .fetch(100, Duration::from_millis(100))
            .await
            .expect("fetch")
        {
            got.push(String::from_utf8_lossy(&d.payload).into_owned());
            d.ack().await.expect("ack");
        }
    }
    got
}

async fn duplicate_ids_are_stored_once(bus: Arc<dyn Bus>) {
    let mut c = bus.consumer(spec("dup", 5_000, 5)).await.expect("consumer");
    let first = bus
        .publish(Subject::RawPosts, "same", Bytes::from("a"))
        .await
        .expect("publish");
    let again = bus
        .publish(Subject::RawPosts, "same", Bytes::from("b"))
        .await
        .expect("publish");
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.seq, again.seq);
    let got = drain(&mut c, 1).await;
    assert_eq!(got, vec!["a"]);
    assert!(c
        .fetch(10, Duration::from_millis(200))
        .await
        .expect("fetch")
        .is_empty());
}

async fn a_batch_is_stored_once_each_and_acked_in_order(bus: Arc<dyn Bus>) {
    let mut c = bus
        .consumer(spec("batch", 5_000, 5))
        .await
        .expect("consumer");
    let raw = |id: String, payload: String| Outgoing {
        subject: Subject::RawPosts,
        id,
        payload: Bytes::from(payload),
    };
    let mut messages: Vec<Outgoing> = (0..600)
        .map(|i| raw(format!("b{i}"), format!("b{i}")))
        .collect();
    messages.push(raw("b7".into(), "b7 again".into()));
    let acks = bus.publish_batch(&messages).await.expect("publish_batch");
    assert_eq!(acks.len(), 601);
    assert!(acks[..600].iter().all(|a| !a.duplicate));
    assert!(acks[600].duplicate);
    assert_eq!(acks[600].seq, acks[7].seq);
    assert!(
        acks.windows(2).take(599).all(|w| w[0].seq < w[1].seq),
        "acks follow the input order"
    );
    let got = drain(&mut c, 600).await;
    assert_eq!(got.len(), 600);
    assert!(!got.contains(&"b7 again".to_string()));
}

async fn one_durable_shares_work_and_two_durables_each_get_everything(bus: Arc<dyn Bus>) {
    let mut a1 = bus
        .consumer(spec("shared", 5_000, 5))
        .await
        .expect("consumer");
    let mut a2 = bus
        .consumer(spec("shared", 5_000, 5))
        .await
        .expect("consumer");
    let mut b = bus
        .consumer(spec("other", 5_000, 5))
        .await
        .expect("consumer");
    publish_n(bus.as_ref(), 100, "w").await;
    let mut shared = HashSet::new();
    for _ in 0..50 {
        if shared.len() >= 100 {
            break;
        }
        for c in [&mut a1, &mut a2] {
            for d in c.fetch(7, Duration::from_millis(50)).await.expect("fetch") {
                assert!(
                    shared.insert(d.seq),
                    "a message went to two members of one durable"
                );
                d.ack().await.expect("ack");
            }
        }
    }
    assert_eq!(shared.len(), 100);
    assert_eq!(drain(&mut b, 100).await.len(), 100);
}

/// A process's own consumer (the live feed's) starts at the messages
/// published after it, and two of them each get every one.
async fn a_process_consumer_starts_at_new_messages(bus: Arc<dyn Bus>) {
    let mut shared = bus
        .consumer(spec("kept", 5_000, 5))
        .await
        .expect("consumer");
    publish_n(bus.as_ref(), 3, "old-").await;
    let own = |name: &str| ConsumerSpec {
        expires_after: Some(Duration::from_secs(10)),
        ..spec(name, 5_000, 5)
    };
    let mut a = bus.consumer(own("own-a")).await.expect("consumer");
    let mut b = bus.consumer(own("own-b")).await.expect("consumer");
    publish_n(bus.as_ref(), 2, "new-").await;
    assert_eq!(drain(&mut a, 2).await, vec!["new-0", "new-1"]);
    assert_eq!(drain(&mut b, 2).await, vec!["new-0", "new-1"]);
    assert_eq!(
        drain(&mut shared, 5).await.len(),
        5,
        "a pipeline consumer gets all"
    );
}

/// Request/reply between processes: a call reaches the process serving
/// the service and comes back with its answer; nobody serving is said.
async fn a_served_service_answers_calls(bus: Arc<dyn Bus>) {
    let wait = Duration::from_secs(5);
    let none = bus.call("nobody", Bytes::from("x"), wait).await;
    assert!(
        matches!(none, Err(starling::bus::BusError::NoService(_))),
        "{none:?}"
    );
    let mut requests = bus.serve("echo").await.expect("serve");
    let server = tokio::spawn(async move {
        while let Some((payload, reply)) = requests.recv().await {
            let text = format!("re: {}", String::from_utf8_lossy(&payload));
            let _ = reply.send(Bytes::from(text));
        }
    });
    for word in ["hi", "there"] {
        let answer = bus
            .call("echo", Bytes::from(word), wait)
            .await
            .expect("answer");
        assert_eq!(answer, Bytes::from(format!("re: {word}")));
    }
    // Serving stops with the receiver.
    server.abort();
    let mut gone = false;
    for _ in 0..50 {
        if let Err(starling::bus::BusError::NoService(_)) =
            bus.call("echo", Bytes::from("x"), wait).await
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the service is still answered");
}

async fn unacknowledged_messages_are_redelivered(bus: Arc<dyn Bus>) {
    let mut c = bus
        .consumer(spec("redeliver", 200, 5))
        .await
        .expect("consumer");
    publish_n(bus.as_ref(), 1, "r").await;
    let first = c.fetch(10, Duration::from_secs(2)).await.expect("fetch");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].delivered, 1);
    drop(first); // never acknowledged
    let again = c.fetch(10, Duration::from_secs(3)).await.expect("fetch");
    assert_eq!(again.len(), 1, "redelivered after ack_wait");
    assert_eq!(again[0].delivered, 2);
    let seq = again[0].seq;
    for d in again {
        d.nak(Duration::from_millis(50)).await.expect("nak");
    }
    let third = c.fetch(10, Duration::from_secs(3)).await.expect("fetch");
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].seq, seq);
    for d in third {
        d.ack().await.expect("ack");
    }
    assert!(c
        .fetch(10, Duration::from_millis(400))
        .await
        .expect("fetch")
        .is_empty());
}

async fn poison_messages_are_dead_lettered_after_max_deliver(bus: Arc<dyn Bus>) {
    let mut c = bus
        .consumer(spec("poison", 100, 2))
        .await
        .expect("consumer");
    bus.publish(Subject::RawPosts, "poison-1", Bytes::from("bad"))
        .await
        .expect("publish");
    publish_n(bus.as_ref(), 3, "fine").await;
    let mut good = 0;
    for _ in 0..40 {
        for d in c
            .fetch(10, Duration::from_millis(100))
            .await
            .expect("fetch")
        {
            if d.payload.as_ref() == b"bad" {
                drop(d); // fails every time
            } else {
                good += 1;
                d.ack().await.expect("ack");
            }
        }
    }
    assert_eq!(good, 3, "the poison message did not block the others");
    let dead = bus.dead_letters().await;
    assert!(
        dead.iter()
            .any(|d| d.payload == "bad" && d.durable == "poison"),
        "{dead:?}"
    );
    let stats = bus.consumer_stats().await;
    let s = stats.iter().find(|s| s.durable == "poison").expect("stats");
    assert!(matches!(s.dead_lettered, None | Some(1)), "{s:?}");
    assert_eq!(s.ack_pending, 0);

    // After a fix, the dead letter is replayed and processed like any message.
    assert_eq!(bus.replay_dead_letters().await.expect("replay"), 1);
    assert!(bus.dead_letters().await.is_empty());
    assert_eq!(drain(&mut c, 1).await, vec!["bad"]);
}

async fn a_full_stream_makes_publishers_wait(bus: Arc<dyn Bus>, max_msgs: usize) {
    let mut c = bus
        .consumer(spec("slow", 5_000, 5))
        .await
        .expect("consumer");
    publish_n(bus.as_ref(), max_msgs, "fill").await;
    let blocked = {
        let bus = bus.clone();
        tokio::spawn(async move {
            bus.publish(Subject::RawPosts, "one-more", Bytes::from("one-more"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !blocked.is_finished(),
        "publish must wait while the stream is full"
    );
    let got = drain(&mut c, max_msgs + 1).await;
    assert_eq!(got.len(), max_msgs + 1, "nothing was dropped");
    assert!(blocked.await.expect("join").is_ok());
}

/// A publisher waits for room no longer than `bus.publish_timeout_ms`
/// (300 ms here): then the publish fails and the caller can push back.
async fn a_full_stream_fails_a_publish_after_the_timeout(bus: Arc<dyn Bus>, max_msgs: usize) {
    let _c = bus
        .consumer(spec("stuck", 5_000, 5))
        .await
        .expect("consumer");
    publish_n(bus.as_ref(), max_msgs, "fill").await;
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        bus.publish(Subject::RawPosts, "one-more", Bytes::from("one-more")),
    )
    .await
    .expect("the publish gave up by itself");
    assert!(
        matches!(r, Err(BusError::Timeout(_))),
        "{:?}",
        r.map(|a| a.seq)
    );
}

/// Enriched copies reach the consumers of their shard, primaries reach the
/// whole-post consumers, a merged handle reads several shards, and a
/// message is dropped once every consumer it matches has acknowledged it.
async fn filters_route_copies_by_shard_and_primary(bus: Arc<dyn Bus>) {
    let enriched = |durable: &str, filter| ConsumerSpec {
        stream: StreamName::Enriched,
        filter,
        ..spec(durable, 5_000, 5)
    };
    let mut s0 = bus
        .consumer(enriched("f-s0", Filter::Shard(0)))
        .await
        .expect("consumer");
    let mut s1 = bus
        .consumer(enriched("f-s1", Filter::Shard(1)))
        .await
        .expect("consumer");
    let mut primary = bus
        .consumer(enriched("f-p", Filter::Primary))
        .await
        .expect("consumer");
    let copy = |shard, primary, body: &str| Outgoing {
        subject: Subject::EnrichedPosts { shard, primary },
        id: format!("{body}#{shard}"),
        payload: Bytes::from(body.to_string()),
    };
    let published = [
        copy(0, true, "a"),
        copy(1, true, "b"),
        copy(0, true, "c"),
        copy(1, false, "c"),
    ];
    bus.publish_batch(&published).await.expect("publish");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(drain(&mut s0, 2).await), vec!["a", "c"]);
    assert_eq!(sorted(drain(&mut s1, 2).await), vec!["b", "c"]);
    assert_eq!(sorted(drain(&mut primary, 3).await), vec!["a", "b", "c"]);

    // One handle over both shards, acknowledging on each its own.
    let mut both = merge(vec![s0, s1], 16);
    bus.publish_batch(&[copy(0, true, "d"), copy(1, true, "e"), copy(1, false, "d")])
        .await
        .expect("publish");
    let mut got = Vec::new();
    for _ in 0..50 {
        if got.len() >= 3 {
            break;
        }
        for d in both
            .fetch(10, Duration::from_millis(100))
            .await
            .expect("fetch")
        {
            let Subject::EnrichedPosts { shard, .. } = d.subject else {
                panic!("a raw subject on the enriched stream: {d:?}");
            };
            got.push(format!("{}@{shard}", String::from_utf8_lossy(&d.payload)));
            d.ack().await.expect("ack");
        }
    }
    assert_eq!(sorted(got), vec!["d@0", "d@1", "e@1"]);
    assert_eq!(sorted(drain(&mut primary, 2).await), vec!["d", "e"]);
    let mut left = u64::MAX;
    for _ in 0..40 {
        left = bus
            .stream_stats()
            .await
            .iter()
            .find(|s| s.stream == StreamName::Enriched.as_str())
            .map_or(u64::MAX, |s| s.messages);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        left, 0,
        "acknowledged by every consumer they match, messages go"
    );
}

async fn fetch_one(c: &mut Box<dyn starling::bus::Consumer>) -> starling::bus::Delivery {
    c.fetch(1, Duration::from_secs(2))
        .await
        .expect("fetch")
        .pop()
        .expect("one message")
}

/// Two durables decode the same message: each gets the payload's value.
/// Returns whether the second got the very value the first decoded
/// (shared decoding).
async fn decoded_values_are_the_payloads(bus: Arc<dyn Bus>) -> bool {
    let mut a = bus
        .consumer(spec("dec-a", 5_000, 5))
        .await
        .expect("consumer");
    let mut b = bus
        .consumer(spec("dec-b", 5_000, 5))
        .await
        .expect("consumer");
    publish_n(bus.as_ref(), 1, "decode-me-").await;
    let text = |bytes: &[u8]| Ok::<_, std::str::Utf8Error>(std::str::from_utf8(bytes)?.to_string());
    let da = fetch_one(&mut a).await;
    let va = da.decoded(text).expect("utf-8");
    assert_eq!(va.as_str(), "decode-me-0");
    let db = fetch_one(&mut b).await;
    let before = db.already_decoded::<String>();
    let vb = db.decoded(text).expect("utf-8");
    assert_eq!(vb.as_str(), "decode-me-0");
    // A value of another type is not mistaken for it.
    assert!(db.already_decoded::<Vec<u8>>().is_none());
    da.ack().await.expect("ack");
    db.ack().await.expect("ack");
    before.is_some_and(|v| Arc::ptr_eq(&v, &va))
}

fn memory(max_msgs: usize) -> Arc<dyn Bus> {
    Arc::new(MemoryBus::new(&BusConfig {
        stream_max_msgs: max_msgs,
        ..BusConfig::default()
    }))
}

/// The publish patience of the timeout tests.
fn impatient(max_msgs: usize) -> BusConfig {
    BusConfig {
        stream_max_msgs: max_msgs,
        publish_timeout_ms: 300,
        ..BusConfig::default()
    }
}

#[tokio::test]
async fn memory_duplicate_ids_are_stored_once() {
    duplicate_ids_are_stored_once(memory(1_000)).await;
}

#[tokio::test]
async fn memory_batches() {
    a_batch_is_stored_once_each_and_acked_in_order(memory(1_000)).await;
}

#[tokio::test]
async fn memory_work_sharing_and_fan_out() {
    one_durable_shares_work_and_two_durables_each_get_everything(memory(1_000)).await;
}

#[tokio::test]
async fn memory_process_consumers() {
    a_process_consumer_starts_at_new_messages(memory(1_000)).await;
}

#[tokio::test]
async fn memory_request_reply() {
    a_served_service_answers_calls(memory(1_000)).await;
}

#[tokio::test]
async fn memory_redelivery() {
    unacknowledged_messages_are_redelivered(memory(1_000)).await;
}

#[tokio::test]
async fn memory_dead_letters() {
    poison_messages_are_dead_lettered_after_max_deliver(memory(1_000)).await;
}

#[tokio::test]
async fn memory_filters_and_merge() {
    filters_route_copies_by_shard_and_primary(memory(1_000)).await;
}

#[tokio::test]
async fn memory_consumers_share_one_decoding() {
    assert!(decoded_values_are_the_payloads(memory(1_000)).await);
}

#[tokio::test]
async fn memory_back_pressure() {
    a_full_stream_makes_publishers_wait(memory(50), 50).await;
}

#[tokio::test]
async fn memory_publish_timeout() {
    let bus = Arc::new(MemoryBus::new(&impatient(20)));
    a_full_stream_fails_a_publish_after_the_timeout(bus, 20).await;
}

async fn jetstream(server: &nats::NatsServer, max_msgs: usize) -> Arc<dyn Bus> {
    Arc::new(
        JetStreamBus::connect(
            &server.url,
            &BusConfig {
                stream_max_msgs: max_msgs,
                ..BusConfig::default()
            },
        )
        .await
        .expect("connect to nats-server"),
    )
}

#[tokio::test]
async fn jetstream_duplicate_ids_are_stored_once() {
    let server = nats::NatsServer::start();
    duplicate_ids_are_stored_once(jetstream(&server, 1_000).await).await;
}

#[tokio::test]
async fn jetstream_deliveries_decode_on_their_own() {
    let server = nats::NatsServer::start();
    assert!(!decoded_values_are_the_payloads(jetstream(&server, 1_000).await).await);
}

#[tokio::test]
async fn jetstream_process_consumers() {
    let server = nats::NatsServer::start();
    a_process_consumer_starts_at_new_messages(jetstream(&server, 1_000).await).await;
}

#[tokio::test]
async fn jetstream_request_reply() {
    let server = nats::NatsServer::start();
    a_served_service_answers_calls(jetstream(&server, 1_000).await).await;
}

#[tokio::test]
async fn jetstream_batches() {
    let server = nats::NatsServer::start();
    a_batch_is_stored_once_each_and_acked_in_order(jetstream(&server, 1_000).await).await;
}

#[tokio::test]
async fn jetstream_work_sharing_and_fan_out() {
    let server = nats::NatsServer::start();
    one_durable_shares_work_and_two_durables_each_get_everything(jetstream(&server, 1_000).await)
        .await;
}

#[tokio::test]
async fn jetstream_redelivery() {
    let server = nats::NatsServer::start();
    unacknowledged_messages_are_redelivered(jetstream(&server, 1_000).await).await;
}

#[tokio::test]
async fn jetstream_dead_letters() {
    let server = nats::NatsServer::start();
    poison_messages_are_dead_lettered_after_max_deliver(jetstream(&server, 1_000).await).await;
}

#[tokio::test]
async fn jetstream_back_pressure() {
    let server = nats::NatsServer::start();
    a_full_stream_makes_publishers_wait(jetstream(&server, 50).await, 50).await;
}

#[tokio::test]
async fn jetstream_publish_timeout() {
    let server = nats::NatsServer::start();
    let bus = JetStreamBus::connect(&server.url, &impatient(20))
        .await
        .expect("connect to nats-server");
    a_full_stream_fails_a_publish_after_the_timeout(Arc::new(bus), 20).await;
}

#[tokio::test]
async fn jetstream_filters_and_merge() {
    let server = nats::NatsServer::start();
    filters_route_copies_by_shard_and_primary(jetstream(&server, 1_000).await).await;
}

#[tokio::test]
async fn jetstream_refuses_a_different_shard_count() {
    let server = nats::NatsServer::start();
    let with = |shards| BusConfig {
        shards,
        ..BusConfig::default()
    };
    JetStreamBus::connect(&server.url, &with(4))
        .await
        .expect("first process lays out 4 shards");
    JetStreamBus::connect(&server.url, &with(4))
        .await
        .expect("the same count again is fine");
    let err = JetStreamBus::connect(&server.url, &with(2))
        .await
        .err()
        .expect("another count is refused");
    assert!(err.to_string().contains("4 shards"), "{err}");
}
