//! Starling's load generator. The cases (ingest-max, e2e-latency, rest-lookups,
//! ws-fanout, soak) arrive with the load-test issue; until then this binary only
//! says so, so that the workspace builds.

fn main() {
    eprintln!("loadtest: no cases yet (see the load-test issue); nothing was measured");
    std::process::exit(2);
}
