//! Latency and throughput of the LLM summarizer engine on this machine:
//! one generation of a ~20-post summary prompt (at most 60 new tokens), and
//! 4 such generations at once on one engine (mistral.rs batches them) to
//! see whether batching helps on this CPU. Before the criterion runs it
//! prints one generation's token counts and speeds (the engine's own
//! figures) and the process's resident memory.
//!
//! ```text
//! models/fetch-smollm2.sh
//! cargo bench --features llm --bench summarizer
//! ```
//!
//! The model is `STARLING_TEST_LLM_MODEL` or SmolLM2-135M-Instruct Q8_0 from
//! `models/fetch-smollm2.sh`; without it the bench says so and measures
//! nothing. Every prompt is made unique (a request number in its first
//! line) so that no run reuses another's prompt from mistral.rs's prefix
//! cache.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use starling::config::SummariesConfig;
use starling::summary::llm::LlmEngine;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MAX_NEW_TOKENS: usize = 60;
const CONCURRENT: usize = 4;

const POSTS: &[&str] = &[
    "$SOL fees are still under a cent, swapped three times today for nothing. Love it.",
    "Solana went down AGAIN during the mint. Third outage I've lived through. $SOL",
    "Firedancer client on mainnet is huge for $SOL decentralisation.",
    "My $SOL transactions keep failing with 'blockhash not found'. So annoying.",
    "Phantom wallet + Solana is the smoothest UX in crypto, not even close.",
    "Validators on $SOL need crazy hardware, that's not decentralised at all.",
    "Jupiter swaps on Solana are instant, Ethereum feels prehistoric now.",
    "Memecoin spam is clogging $SOL blocks, priority fees went through the roof.",
    "Staking $SOL at 7% and the ecosystem keeps shipping. Bullish.",
    "Lost a trade because Solana RPC was lagging for 10 minutes. Unacceptable.",
    "Breakpoint announcements were underwhelming, no real news for $SOL holders.",
    "Solana Pay at the coffee shop worked in a second. This is what crypto is for.",
    "Got rugged on a Solana memecoin again, the scams there are out of control.",
    "$SOL ETF flows looking strong this week, institutions are coming.",
    "The Solana mobile phone is a gimmick, nobody I know uses it.",
    "Devs love Anchor, building on $SOL is way easier than a year ago.",
    "Another congestion day on Solana, half my bot's transactions dropped.",
    "SOL/ETH ratio at a new high, the market has picked its winner.",
    "Support for the Solana wallet never answered my ticket, two weeks now.",
    "$SOL NFT volumes are back, Tensor is buzzing again.",
];

fn model_path() -> PathBuf {
    match std::env::var_os("STARLING_TEST_LLM_MODEL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models/cache/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf"),
    }
}

/// A summary prompt over [`POSTS`], unique by `n`.
fn prompt(n: usize) -> String {
    let mut p = format!(
        "Request {n}. Here are recent social media posts about the crypto project $SOL.\n\n"
    );
    for (i, post) in POSTS.iter().enumerate() {
        p.push_str(&format!("{}. {}\n", i + 1, post));
    }
    p.push_str(
        "\nIn two or three sentences, summarise what people are saying about $SOL: \
         the main praise and the main complaints. Do not list the posts.",
    );
    p
}

/// Resident and peak resident memory of this process, from /proc (Linux).
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let pick = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .map(|l| l[key.len()..].trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    format!("VmRSS {}, VmHWM {}", pick("VmRSS:"), pick("VmHWM:"))
}

fn bench_summarizer(c: &mut Criterion) {
    let path = model_path();
    if !path.is_file() {
        eprintln!(
            "\n*** summarizer bench SKIPPED: no model at {}; run models/fetch-smollm2.sh \
             or set STARLING_TEST_LLM_MODEL ***\n",
            path.display()
        );
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cfg = SummariesConfig {
        model_path: Some(path.clone()),
        max_batch: CONCURRENT,
        force_cpu: true,
        ..SummariesConfig::default()
    };
    let before = rss();
    let t = Instant::now();
    let engine = rt
        .block_on(LlmEngine::load(&path, &cfg))
        .expect("load the model");
    eprintln!(
        "loaded {} ({}) in {:.1?}; before load: {before}; after: {}",
        starling::summary::Generator::model(&engine),
        path.display(),
        t.elapsed(),
        rss()
    );

    let counter = AtomicUsize::new(0);
    let next = || counter.fetch_add(1, Ordering::Relaxed);

    // One generation with the engine's own figures.
    for _ in 0..2 {
        let t = Instant::now();
        let g = rt
            .block_on(engine.generate_with_stats(&prompt(next()), MAX_NEW_TOKENS))
            .expect("generate");
        eprintln!(
            "one summary: {:.2?} wall; {} prompt tokens in {:.2} s ({:.1} tok/s); \
             {} generated in {:.2} s ({:.1} tok/s); finish {:?}; {}\n---\n{}\n---",
            t.elapsed(),
            g.prompt_tokens,
            g.prompt_time_s,
            g.prompt_tok_per_s,
            g.completion_tokens,
            g.completion_time_s,
            g.completion_tok_per_s,
            g.finish_reason,
            rss(),
            g.text.trim()
        );
    }

    let mut group = c.benchmark_group("summarizer");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_summary_20_posts_60_tokens", |b| {
        b.iter(|| {
            rt.block_on(engine.generate_with_stats(&prompt(next()), MAX_NEW_TOKENS))
                .expect("generate")
        })
    });
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function(format!("{CONCURRENT}_concurrent_summaries"), |b| {
        b.iter(|| {
            rt.block_on(async {
                let prompts: Vec<String> = (0..CONCURRENT).map(|_| prompt(next())).collect();
                let runs = prompts
                    .iter()
                    .map(|p| engine.generate_with_stats(p, MAX_NEW_TOKENS));
                for g in futures_util::future::join_all(runs).await {
                    g.expect("generate");
                }
            })
        })
    });
    group.finish();
    eprintln!("after the runs: {}", rss());
}

criterion_group!(benches, bench_summarizer);
criterion_main!(benches);
