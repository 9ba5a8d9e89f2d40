//! Throughput of the CPU tier: VADER lexicon scoring and entity extraction
//! over a fixed set of realistic posts (varied lengths, emoji, cashtags,
//! hashtags, mentions). Run with `cargo bench --bench scorer`; throughput is
//! reported in posts (elements) per second.

use chrono::DateTime;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use starling::config::EntitiesConfig;
use starling::domain::{Author, Engagement, Post};
use starling::nlp::{Extractor, LexiconScorer, Scorer};
use std::hint::black_box;
use std::time::Duration;

const SAMPLES: &[&str] = &[
    "gm",
    "$BTC breaking out 🚀🚀🚀",
    "Solana is so fast, love it! #solana $SOL",
    "This exchange is a total scam, lost everything. Never again. #rekt",
    "Just bought more $ETH, not selling until 10k 💎🙌",
    "Another outage?? Third time this week. I want a refund. @SupportTeam",
    "The ETF decision was delayed again by the SEC. Markets barely moved.",
    "wen airdrop 😂😂😂 #airdrop",
    "New blog post: how we cut our gas costs by 40% on Arbitrum https://example.com/blog/gas#costs",
    "I'm not happy with the latest update, the app keeps crashing on login",
    "Cardano devs shipped the upgrade on time, impressive work by the team 👏",
    "$DOGE to the moon 🐕🌕 #memecoins #doge",
    "@VitalikButerin thoughts on the new rollup roadmap? #ethereum #L2",
    "Avalanche subnets are underrated. Change my mind.",
    "Chainlink oracles went down for 10 minutes, several DeFi protocols paused. #defi #outage",
    "lol this market 😭",
    "Honestly the customer service was great, they fixed my issue in five minutes.",
    "Cancelled my subscription. Too expensive and the support is useless. #cancel",
    "BREAKING: major exchange hacked, $200M drained. Withdrawals halted. #hack",
    "Staking yields dropped to 3% on most platforms, is it still worth it? #staking #yield",
    "$PEPE $WIF $BONK all pumping, memecoin season is back 🐸🔥",
    "Thread 🧵 on why AI agents will run on-chain: 1/ autonomous wallets 2/ agent-to-agent payments #AIagents #LLM",
    "Bitcoin ETF inflows hit a record today. Bullish.",
    "I paid $100 for a hardware wallet and it arrived broken 😡",
    "The new dashboard looks clean, nice job @design_team",
    "meh",
    "Is anyone else getting errors when bridging from Ethereum to Arbitrum? Funds stuck for 2 hours.",
    "Regulation is coming whether we like it or not. MiCA goes live next year in the EU. #regulation #mica",
    "Happy Friday everyone! Have a great weekend ☀️😊",
    "That's kind of disappointing tbh, expected more from the v2 launch",
    "$LINK holders, what's the plan? Accumulate or wait?",
    "The app update broke notifications. Please fix ASAP!!!",
    "比特币今天涨了很多 $BTC 🚀",
    "Solana-based DEX volumes surpassed Ethereum's for the first time this month, according to on-chain data. Analysts attribute the shift to lower fees and a wave of new memecoin launches, although some warn that the activity is driven by short-term speculation rather than organic usage.",
    "No refund, no reply, no respect. Worst experience ever. @Acme_Help",
    "Can't believe how smooth the onboarding was. 10/10 would recommend",
    "Airdrop checker is live, connect your wallet at www.example.org to see your allocation",
    "The team just announced a partnership with a major bank. Not sure how I feel about it.",
    "#DeFi summer 2.0? TVL is up 40% in a month. #yield #dex",
    "Why does every launch have to be delayed 🙄",
    "Great AMA with @solana founders today, lots of alpha on the roadmap",
    "Our validator was slashed due to a misconfiguration. Post-mortem coming soon.",
    "Love the community here ❤️ you all are the best",
    "hmm interesting",
    "$ARB unlock next week, expecting volatility. Hedged my position.",
    "If you're still using a CEX for everything you're ngmi",
    "Support resolved my ticket but it took 9 days. Not great, not terrible.",
    "Ethereum gas fees are finally reasonable again 🙏 #ethereum",
    "Hackers drained the bridge, users furious, team silent. This is how projects die. #hack #bridge",
    "Reminder: never share your seed phrase. Nobody from support will DM you first. Stay safe out there 🔐",
];

fn posts() -> Vec<Post> {
    let created_at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    SAMPLES
        .iter()
        .enumerate()
        .map(|(i, text)| Post {
            id: format!("p{i}"),
            platform: if i.is_multiple_of(3) {
                "twitter"
            } else {
                "Reddit"
            }
            .to_string(),
            channel: (!i.is_multiple_of(3)).then(|| "r/CryptoCurrency".to_string()),
            author: Author {
                id: format!("u{}", i % 17),
                handle: format!("user{i}"),
                followers: (i as u64) * 7_919,
                verified: i.is_multiple_of(5),
            },
            text: text.to_string(),
            lang: Some("en".into()),
            created_at,
            engagement: Engagement::default(),
            geo: i.is_multiple_of(4).then(|| "Berlin".to_string()),
            product: i.is_multiple_of(6).then(|| "Wallet App".to_string()),
            reply_to: None,
            repost_of: None,
        })
        .collect()
}

fn bench_score(c: &mut Criterion) {
    let scorer = LexiconScorer::new();
    let posts = posts();
    // Parse VADER's lexicons before timing.
    black_box(scorer.score("warm up"));
    let mut group = c.benchmark_group("score");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(posts.len() as u64));
    group.bench_function("lexicon_vader", |b| {
        b.iter(|| {
            for post in &posts {
                black_box(scorer.score(black_box(&post.text)));
            }
        })
    });
    let fast = Scorer::new(starling::config::Tier::Fast).expect("fast model");
    group.bench_function("fast_linear_scores", |b| {
        b.iter(|| {
            for post in &posts {
                black_box(fast.score(black_box(&post.text)));
            }
        })
    });
    group.finish();
}

fn bench_extract(c: &mut Criterion) {
    let extractor = Extractor::new(&EntitiesConfig::default());
    let posts = posts();
    let mut group = c.benchmark_group("extract");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(posts.len() as u64));
    group.bench_function("default_config", |b| {
        b.iter(|| {
            for post in &posts {
                black_box(extractor.extract(black_box(post)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_score, bench_extract);
criterion_main!(benches);
