//! The LLM engine with a real model: SmolLM2-135M-Instruct (Q8_0 GGUF) from
//! `models/fetch-smollm2.sh`, or the GGUF file named by
//! `STARLING_TEST_LLM_MODEL`. Needs the `llm` feature and a release build
//! (an unoptimised model is unusably slow):
//!
//! ```text
//! models/fetch-smollm2.sh
//! cargo test --release --features llm --test summarizer_llm
//! ```
//!
//! Without the feature or the file every test says SKIP on stderr and passes.

mod common;

use std::path::PathBuf;

/// The model file: `STARLING_TEST_LLM_MODEL`, else what fetch-smollm2.sh writes.
fn model_path() -> PathBuf {
    match std::env::var_os("STARLING_TEST_LLM_MODEL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models/cache/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf"),
    }
}

/// Ten hand-written posts about $SOL, praise and complaints mixed.
const SOL_POSTS: &[&str] = &[
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
];

/// A chat prompt asking for a summary of [`SOL_POSTS`].
fn sol_prompt() -> String {
    let mut p =
        String::from("Here are recent social media posts about the crypto project $SOL.\n\n");
    for (i, post) in SOL_POSTS.iter().enumerate() {
        p.push_str(&format!("{}. {}\n", i + 1, post));
    }
    p.push_str(
        "\nIn two or three sentences, summarise what people are saying about $SOL: \
         the main praise and the main complaints. Do not list the posts.",
    );
    p
}

/// The GGUF header reader on the real file (no `llm` feature needed).
#[test]
fn gguf_header_of_the_model() {
    let path = model_path();
    if !path.is_file() {
        common::skip(&format!(
            "gguf_header_of_the_model: no model at {}; run models/fetch-smollm2.sh",
            path.display()
        ));
        return;
    }
    let t = std::time::Instant::now();
    let info = starling::summary::gguf::check_model(&path).expect("a supported chat model");
    eprintln!("{info:?} read in {:.1?}", t.elapsed());
    assert!(info.has_chat_template);
    assert!(starling::summary::gguf::SUPPORTED_ARCHITECTURES.contains(&info.architecture.as_str()));
    assert!(info.tensor_count > 0);
}

#[cfg(not(feature = "llm"))]
#[test]
fn llm_engine() {
    common::skip(
        "summarizer_llm: built without the `llm` feature. Run models/fetch-smollm2.sh, \
         then cargo test --release --features llm --test summarizer_llm",
    );
    let _ = (model_path(), sol_prompt());
}

#[cfg(feature = "llm")]
mod with_llm {
    use super::*;
    use starling::config::SummariesConfig;
    use starling::summary::llm::LlmEngine;
    use starling::summary::Generator;
    use std::time::{Duration, Instant};

    /// Tests using the model run one at a time (two engines on 2 cores
    /// would slow each other down and spoil the idle-CPU check).
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// Loads the test model, or prints SKIP and returns `None` when the file
    /// is absent.
    pub async fn engine() -> Option<LlmEngine> {
        let path = model_path();
        if !path.is_file() {
            super::common::skip(&format!(
                "summarizer_llm: no model at {}. Run models/fetch-smollm2.sh \
                 or set STARLING_TEST_LLM_MODEL to a GGUF chat model",
                path.display()
            ));
            return None;
        }
        let cfg = SummariesConfig {
            model_path: Some(path.clone()),
            force_cpu: true,
            ..SummariesConfig::default()
        };
        let t = Instant::now();
        let engine = LlmEngine::load(&path, &cfg).await.expect("load the model");
        eprintln!("loaded {} in {:.1?}", engine.model(), t.elapsed());
        Some(engine)
    }

    /// CPU time used by this process so far (Linux `/proc`), or `None`.
    fn cpu_time() -> Option<Duration> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name; utime and stime are
        // fields 14 and 15 (1-based), in clock ticks (100 a second on Linux).
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(Duration::from_millis((utime + stime) * 10))
    }

    #[tokio::test]
    async fn summarises_posts_within_bounds() {
        let _serial = SERIAL.lock().await;
        let Some(engine) = engine().await else { return };
        let max_tokens = 80;
        let t = Instant::now();
        let g = engine
            .generate_with_stats(&sol_prompt(), max_tokens)
            .await
            .expect("generate");
        eprintln!(
            "{:.1?}: {} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, finish {:?}\n---\n{}\n---",
            t.elapsed(),
            g.prompt_tokens,
            g.prompt_tok_per_s,
            g.completion_tokens,
            g.completion_tok_per_s,
            g.finish_reason,
            g.text
        );
        let text = g.text.trim();
        assert!(!text.is_empty(), "empty output");
        assert!(g.completion_tokens <= max_tokens, "{}", g.completion_tokens);
        assert!(
            text.chars().count() <= max_tokens * 16,
            "{} chars",
            text.len()
        );
        assert!(g.prompt_tokens > 100, "prompt tokens {}", g.prompt_tokens);

        // Deterministic: the same prompt gives the same text.
        let again = engine
            .generate(&sol_prompt(), max_tokens)
            .await
            .expect("again");
        assert_eq!(again, g.text);
    }

    #[tokio::test]
    async fn dropping_the_future_stops_generation() {
        let _serial = SERIAL.lock().await;
        let Some(engine) = engine().await else { return };
        let prompt = sol_prompt();

        // Dropped a few ms in: before or during the prompt processing.
        let r =
            tokio::time::timeout(Duration::from_millis(5), engine.generate(&prompt, 2000)).await;
        assert!(r.is_err(), "2000 tokens cannot be generated in 5 ms");

        // Dropped while generating: 2000 tokens take over a minute here.
        let r = tokio::time::timeout(Duration::from_secs(8), engine.generate(&prompt, 2000)).await;
        assert!(r.is_err(), "2000 tokens in under 8 s?");

        // The engine stops: a dropped stream is cancelled at its next token,
        // so after the prompt step in progress (seconds, more on a busy
        // machine) the process goes (nearly) idle. Uncancelled, the two
        // 2000-token generations would keep it busy for minutes.
        if cpu_time().is_some() {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let before = cpu_time().unwrap_or_default();
                tokio::time::sleep(Duration::from_secs(1)).await;
                let used = cpu_time().unwrap_or_default().saturating_sub(before);
                if used < Duration::from_millis(250) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the engine kept working after the futures were dropped: {used:?} CPU in the last second, 60 s on"
                );
            }
        }

        // And it still answers.
        let t = Instant::now();
        let text = engine
            .generate(&prompt, 20)
            .await
            .expect("generate after cancels");
        assert!(!text.trim().is_empty());
        eprintln!("after the cancels: 20 tokens in {:.1?}", t.elapsed());
    }

    #[tokio::test]
    async fn concurrent_generations_on_one_engine() {
        let _serial = SERIAL.lock().await;
        let Some(engine) = engine().await else { return };
        let prompt = sol_prompt();
        let t = Instant::now();
        let (a, b) = tokio::join!(engine.generate(&prompt, 30), engine.generate(&prompt, 30));
        let (a, b) = (a.expect("first"), b.expect("second"));
        eprintln!("two concurrent 30-token generations in {:.1?}", t.elapsed());
        assert!(!a.trim().is_empty() && !b.trim().is_empty());
    }

    /// [`SOL_POSTS`] as scored posts (labels by hand), most engaging first.
    fn sol_window() -> Vec<starling::domain::EnrichedPost> {
        use starling::domain::*;
        const LABELS: [SentimentLabel; 10] = [
            SentimentLabel::Positive,
            SentimentLabel::Negative,
            SentimentLabel::Positive,
            SentimentLabel::Negative,
            SentimentLabel::Positive,
            SentimentLabel::Negative,
            SentimentLabel::Positive,
            SentimentLabel::Negative,
            SentimentLabel::Positive,
            SentimentLabel::Negative,
        ];
        SOL_POSTS
            .iter()
            .zip(LABELS)
            .enumerate()
            .map(|(i, (text, label))| EnrichedPost {
                post: Post {
                    id: format!("sol-{i}"),
                    platform: "twitter".into(),
                    channel: None,
                    author: Author {
                        id: format!("u{i}"),
                        handle: format!("user{i}"),
                        followers: if i == 2 { 250_000 } else { 1_000 },
                        verified: false,
                    },
                    text: (*text).into(),
                    lang: Some("en".into()),
                    created_at: chrono::Utc::now(),
                    engagement: Engagement {
                        likes: 100 - i as u64 * 7,
                        reposts: 0,
                        replies: 0,
                    },
                    geo: None,
                    product: None,
                    reply_to: None,
                    repost_of: None,
                },
                scores: Scores {
                    sentiment: Sentiment {
                        label,
                        score: if label == SentimentLabel::Positive {
                            0.6
                        } else {
                            -0.6
                        },
                        probs: None,
                    },
                    emotion: None,
                    toxicity: None,
                    churn_risk: None,
                    model: "test".into(),
                },
                entities: vec![EntityRef::new(EntityKind::Project, "SOL")],
            })
            .collect()
    }

    /// The summarizer's own path with the model: representative posts, the
    /// versioned prompt, generation, the output checks, and the extractive
    /// fallback when the model's text breaks a rule.
    #[tokio::test]
    async fn the_summarizer_writes_a_checked_summary() {
        use starling::summary::check::{check, clean};
        use starling::summary::model::{Change, Method, WindowNumbers};
        use starling::summary::service::{Prepared, Window};
        let _serial = SERIAL.lock().await;
        let Some(engine) = engine().await else { return };
        let cfg = SummariesConfig::default();
        let sol = starling::domain::EntityRef::new(starling::domain::EntityKind::Project, "SOL");
        let numbers = WindowNumbers {
            volume: 10,
            engagement: 685,
            positive: 5,
            negative: 5,
            neutral: 0,
            sentiment_index: Some(-0.05),
        };
        let before = WindowNumbers {
            volume: 4,
            sentiment_index: Some(0.3),
            ..WindowNumbers::default()
        };
        let window = Window {
            entity: &sol,
            from_ms: 0,
            to_ms: 3_600_000,
            numbers,
            change: Change::between(before, &numbers),
        };
        let posts = sol_window();
        let prepared = Prepared::from_posts(window, &posts, &cfg, 100_000).expect("prepared");
        let t = Instant::now();
        let raw = engine
            .generate(&prepared.prompt, cfg.max_new_tokens)
            .await
            .expect("generate");
        let summary = prepared.from_model(&raw, engine.model());
        let quoted: Vec<&str> = prepared.reps.iter().map(|r| r.text.as_str()).collect();
        let verdict = check(&clean(&raw), &prepared.prompt, &quoted, cfg.max_chars);
        eprintln!(
            "{:.1?}; model output:\n---\n{raw}\n---\ncheck: {verdict:?}\nsummary ({:?}, {:?}):\n{}",
            t.elapsed(),
            summary.method,
            summary.fallback_reason,
            summary.text
        );
        assert!(summary.text.chars().count() <= cfg.max_chars);
        assert!(
            summary.text.ends_with("10 posts in the last hour (5 positive, 5 negative), +150% against the hour before; sentiment index -0.05 (-0.35)."),
            "{}",
            summary.text
        );
        assert_eq!(
            summary.prompt_version,
            starling::summary::prompt::PROMPT_VERSION
        );
        assert_eq!(summary.post_ids.len(), 10);
        match summary.method {
            Method::Llm => {
                assert_eq!(summary.model.as_deref(), Some(engine.model()));
                assert!(summary.fallback_reason.is_none());
                assert!(summary.text.starts_with(clean(&raw).as_str()));
            }
            Method::Extractive => {
                // Only a refused output falls back, and it says why.
                let reason = summary.fallback_reason.as_deref().unwrap_or_default();
                assert!(reason.starts_with("check: "), "{reason}");
                assert!(summary.model.is_none());
                assert!(summary.text.contains("Praise: “"), "{}", summary.text);
            }
        }
    }

    #[tokio::test]
    async fn refuses_a_file_that_is_not_a_model() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bogus.gguf");
        std::fs::write(&path, b"not a gguf file at all").expect("write");
        let cfg = SummariesConfig::default();
        match LlmEngine::load(&path, &cfg).await {
            Err(starling::summary::GenerateError::Load(msg)) => {
                assert!(msg.contains("bogus.gguf") && msg.contains("GGUF"), "{msg}")
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("loaded a bogus file"),
        }
    }
}
