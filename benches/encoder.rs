//! Throughput of the encoder tier on the CPU: posts per second through the
//! path the pipeline uses (two classifier workers' batches going through
//! the batching inference worker, `max_batch` 64, `max_wait` 5 ms), and the
//! bare embedding of one 64-text batch. Run with `cargo bench --bench encoder`
//! after `models/fetch-minilm.sh`; without the weights it says so and
//! measures nothing.
//!
//! Texts: the first 256 TweetEval sentiment validation tweets from
//! `../shared/data` when that folder is there, else a fixed set of social
//! posts repeated.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use starling::config::{ClassifierConfig, EncoderConfig, Tier};
use starling::nlp::Scorer;
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
    "I'm not happy with the latest update, the app keeps crashing on login",
    "Cancelled my subscription. Too expensive and the support is useless. #cancel",
    "Honestly the customer service was great, they fixed my issue in five minutes.",
    "Happy Friday everyone! Have a great weekend ☀️😊",
];

fn texts(n: usize) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/sentiment/tweeteval-val/val_text.txt");
    let lines: Vec<String> = std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let src: Vec<String> = if lines.is_empty() {
        SAMPLES.iter().map(|s| s.to_string()).collect()
    } else {
        lines
    };
    src.iter().cycle().take(n).cloned().collect()
}

fn bench_encoder(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let enc = EncoderConfig {
        model_dir: root.join("models/cache/all-minilm-l6-v2"),
        heads_dir: root.join("models/encoder"),
        ..EncoderConfig::default()
    };
    if !enc.model_dir.join("model.safetensors").is_file() {
        eprintln!(
            "\n*** encoder bench SKIPPED: {} is absent; run models/fetch-minilm.sh ***\n",
            enc.model_dir.display()
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = ClassifierConfig {
        tier: Tier::Encoder,
        encoder: enc,
        ..ClassifierConfig::default()
    };
    let scorer = rt.block_on(async { Scorer::from_config(&cfg) });
    let scorer = match scorer {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("\n*** encoder bench SKIPPED: {e} ***\n");
            return;
        }
    };
    let posts = texts(256);
    let mut group = c.benchmark_group("classify_encoder");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(posts.len() as u64));
    group.bench_function("batching_path_2_workers_256_posts", |b| {
        b.iter(|| {
            rt.block_on(async {
                // Two classifier workers, 128 posts each, sharing the batcher.
                let (a, z) = posts.split_at(posts.len() / 2);
                let (x, y) = tokio::join!(
                    scorer.score_batch(a.to_vec()),
                    scorer.score_batch(z.to_vec())
                );
                black_box((x.expect("scores"), y.expect("scores")))
            })
        })
    });
    if let Scorer::Encoder(e) = scorer.as_ref() {
        let batch: Vec<&str> = posts[..64].iter().map(String::as_str).collect();
        group.throughput(Throughput::Elements(64));
        group.bench_function("embed_only_batch_64", |b| {
            b.iter(|| black_box(e.classifier().embedder().embed(&batch).expect("embeds")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_encoder);
criterion_main!(benches);
