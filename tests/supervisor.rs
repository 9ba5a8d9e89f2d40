//! A panicking actor is restarted with back-off and takes nothing else down.

use actix::prelude::*;
use starling::actors::supervisor::{
    AddChild, ChildSpec, ChildState, GetStatus, LifeGuard, RestartPolicy, Slot, Supervisor,
};
use starling::config::SupervisorConfig;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Stands in for a connector with a bug: panics when told to.
struct Flaky {
    _guard: LifeGuard,
}

impl Actor for Flaky {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Explode;

impl Handler<Explode> for Flaky {
    type Result = ();
    fn handle(&mut self, _: Explode, _: &mut Context<Self>) {
        panic!("connector bug (deliberate, from the test)");
    }
}

/// A healthy sibling that keeps counting.
struct Ticker {
    ticks: Arc<AtomicU64>,
    _guard: LifeGuard,
}

impl Actor for Ticker {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_millis(10), |act, _| {
            act.ticks.fetch_add(1, Ordering::Relaxed);
        });
    }
}

async fn status(sup: &Addr<Supervisor>, name: &str) -> starling::actors::supervisor::ChildStatus {
    sup.send(GetStatus)
        .await
        .expect("supervisor answers")
        .into_iter()
        .find(|c| c.name == name)
        .expect("child listed")
}

#[actix_rt::test]
async fn a_panicking_actor_is_restarted_and_its_sibling_keeps_running() {
    let sup = Supervisor::new(SupervisorConfig {
        backoff_initial_ms: 50,
        backoff_max_ms: 200,
        backoff_reset_after_s: 60,
    })
    .start();
    let flaky: Slot<Flaky> = Slot::default();
    let slot = flaky.clone();
    sup.send(AddChild(ChildSpec {
        name: "connector-flaky".into(),
        group: "connector",
        policy: RestartPolicy::Permanent,
        factory: Arc::new(move |c| {
            slot.set(Flaky::start_in_arbiter(&c.arbiter, move |_| Flaky {
                _guard: c.guard,
            }));
            Ok(())
        }),
    }))
    .await
    .expect("add");
    let ticks = Arc::new(AtomicU64::new(0));
    let t = ticks.clone();
    sup.send(AddChild(ChildSpec {
        name: "aggregator-healthy".into(),
        group: "aggregator",
        policy: RestartPolicy::Permanent,
        factory: Arc::new(move |c| {
            let ticks = t.clone();
            Ticker::start_in_arbiter(&c.arbiter, move |_| Ticker {
                ticks,
                _guard: c.guard,
            });
            Ok(())
        }),
    }))
    .await
    .expect("add");

    for round in 1..=3u64 {
        let before = flaky.get().expect("flaky is up");
        // The panic surfaces to the sender as a closed mailbox, not as a crash.
        let _ = before.send(Explode).await;
        // Wait for the restart (a new address in the slot).
        let mut restarted = false;
        for _ in 0..200 {
            if flaky.get().is_some_and(|a| a != before) {
                restarted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(restarted, "round {round}: the actor was not restarted");
        let s = status(&sup, "connector-flaky").await;
        assert_eq!(s.panics, round);
        assert_eq!(s.restarts, round);
    }
    let s = status(&sup, "connector-flaky").await;
    assert_eq!(s.state, ChildState::Running);
    assert_eq!(s.last_error.as_deref(), Some("panicked"));

    let sibling = status(&sup, "aggregator-healthy").await;
    assert_eq!((sibling.restarts, sibling.state), (0, ChildState::Running));
    let before = ticks.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        ticks.load(Ordering::Relaxed) > before,
        "the sibling kept working"
    );
}
