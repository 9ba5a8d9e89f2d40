//! Throughput of the fast classifier tier: the whole classification of a
//! post (tokenisation and hashing once, then the sentiment, emotion,
//! toxicity and churn heads), on one thread, with the model built into the
//! binary. Run with `cargo bench --bench classify`; throughput is reported in
//! posts (elements) per second.
//!
//! Texts: the 2,000 TweetEval sentiment validation tweets from
//! `../shared/data` when that folder is there (real tweets, avg. ~120
//! bytes), and always a fixed set of embedded social posts.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use starling::nlp::FastClassifier;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const SAMPLES: &[&str] = &[
    "gm",
    "$BTC breaking out 🚀🚀🚀",
    "Solana is so fast, love it! #solana $SOL",
    "This exchange is a total scam, lost everything. Never again. #rekt",
    "Another outage?? Third time this week. I want a refund. @SupportTeam",
    "The ETF decision was delayed again by the SEC. Markets barely moved.",
    "wen airdrop 😂😂😂 #airdrop",
    "New blog post: how we cut our gas costs by 40% on Arbitrum https://example.com/blog/gas#costs",
    "I'm not happy with the latest update, the app keeps crashing on login",
    "Cancelled my subscription. Too expensive and the support is useless. #cancel",
    "Honestly the customer service was great, they fixed my issue in five minutes.",
    "I paid $100 for a hardware wallet and it arrived broken 😡",
    "Happy Friday everyone! Have a great weekend ☀️😊",
    "That's kind of disappointing tbh, expected more from the v2 launch",
    "比特币今天涨了很多 $BTC 🚀",
    "Solana-based DEX volumes surpassed Ethereum's for the first time this month, according to on-chain data. Analysts attribute the shift to lower fees and a wave of new memecoin launches, although some warn that the activity is driven by short-term speculation rather than organic usage.",
    "No refund, no reply, no respect. Worst experience ever. @Acme_Help",
    "im done w this ISP fr 😤 switching to a competitor next month",
    "@user you are such an idiot lmao shut up",
    "Why does every launch have to be delayed 🙄",
];

fn tweets() -> Option<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/sentiment/tweeteval-val/val_text.txt");
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    (!lines.is_empty()).then_some(lines)
}

fn bench_classify(c: &mut Criterion) {
    let clf = FastClassifier::embedded().expect("embedded fast model");
    let mut group = c.benchmark_group("classify_fast");
    group.measurement_time(Duration::from_secs(5));
    group.sample_size(20);
    if let Some(tweets) = tweets() {
        group.throughput(Throughput::Elements(tweets.len() as u64));
        group.bench_function("tweeteval_val_2000", |b| {
            b.iter(|| {
                for t in &tweets {
                    black_box(clf.classify(black_box(t)));
                }
            })
        });
    } else {
        eprintln!("../shared/data not found: benchmarking the embedded samples only");
    }
    group.throughput(Throughput::Elements(SAMPLES.len() as u64));
    group.bench_function("embedded_samples", |b| {
        b.iter(|| {
            for t in SAMPLES {
                black_box(clf.classify(black_box(t)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_classify);
criterion_main!(benches);
