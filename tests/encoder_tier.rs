//! The encoder tier end to end: the CLI's answer when the weights are
//! missing, and (when `models/fetch-minilm.sh` has been run) the real
//! all-MiniLM-L6-v2 weights through candle. Tests that need the weights say
//! loudly that they are skipped when `models/cache/all-minilm-l6-v2` is absent.

mod common;

use std::process::Command;

#[test]
fn classify_with_the_encoder_tier_and_no_weights_names_the_fetch_script() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_starling"))
        .args(["classify", "--tier", "encoder"])
        .env(
            "STARLING_CLASSIFIER__ENCODER__MODEL_DIR",
            dir.path().join("none"),
        )
        .env(
            "STARLING_CLASSIFIER__ENCODER__HEADS_DIR",
            dir.path().join("none"),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "encoder") {
        assert!(err.contains("models/fetch-minilm.sh"), "{err}");
    } else {
        assert!(err.contains("not part of this build"), "{err}");
    }
}

#[cfg(feature = "encoder")]
mod real_weights {
    use starling::nlp::encoder::embed::{set_batch_padding, Embedder, MAX_TOKENS};
    use std::path::{Path, PathBuf};

    fn model_dir() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/cache/all-minilm-l6-v2");
        if dir.join("model.safetensors").is_file() {
            Some(dir)
        } else {
            crate::common::skip(&format!(
                "{} is absent; run models/fetch-minilm.sh to test the real encoder weights",
                dir.display()
            ));
            None
        }
    }

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn minilm_loads_and_batch_longest_padding_matches_fixed_padding() {
        let Some(dir) = model_dir() else { return };
        let dev = candle_core::Device::Cpu;
        let e = Embedder::load(&dir, &dev).expect("the fetched model loads");
        assert_eq!(e.dim(), 384);
        let texts = [
            "I love this phone, best purchase ever",
            "I adore this phone, greatest thing I bought",
            "The train leaves the station at five",
        ];
        let rows = e.embed_rows(&texts).unwrap();
        assert!(cos(&rows[0], &rows[1]) > cos(&rows[0], &rows[2]) + 0.2);
        // The same texts padded to 128 as the shipped tokenizer.json does:
        // the attention mask makes the vectors equal.
        let cfg: candle_transformers::models::bert::Config =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let vb = candle_nn::VarBuilder::from_buffered_safetensors(
            std::fs::read(dir.join("model.safetensors")).unwrap(),
            candle_core::DType::F32,
            &dev,
        )
        .unwrap();
        let mut tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        let fixed = tok.get_padding().map(|p| p.strategy.clone());
        assert!(
            matches!(fixed, Some(tokenizers::PaddingStrategy::Fixed(128))),
            "{fixed:?}"
        );
        tok.with_truncation(Some(tokenizers::TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .unwrap();
        let padded = Embedder::from_parts(&cfg, vb, tok.clone(), &dev, String::new()).unwrap();
        let rows128 = padded.embed_rows(&texts).unwrap();
        for (a, b) in rows.iter().zip(&rows128) {
            assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4));
        }
        set_batch_padding(&mut tok, MAX_TOKENS).unwrap();
        assert!(matches!(
            tok.get_padding().map(|p| p.strategy.clone()),
            Some(tokenizers::PaddingStrategy::BatchLongest)
        ));
    }

    #[test]
    fn the_shipped_heads_read_clear_cases() {
        let Some(dir) = model_dir() else { return };
        let heads = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/encoder");
        let clf = starling::nlp::EncoderClassifier::load(
            &dir,
            &heads,
            starling::config::EncoderDevice::Cpu,
        )
        .expect("the committed heads match the fetched weights");
        let out = clf
            .classify_batch(&[
                "I love this, what a great day!",
                "This is terrible, worst service ever. I hate it.",
                "I'm cancelling my subscription and switching to a competitor",
                "The meeting is at 3pm in room 4.",
            ])
            .unwrap();
        use starling::domain::SentimentLabel::*;
        assert_eq!(out[0].sentiment.label, Positive, "{:?}", out[0]);
        assert_eq!(out[1].sentiment.label, Negative, "{:?}", out[1]);
        assert!(out[2].churn_risk > 0.5, "{:?}", out[2]);
        assert!(
            out[3].churn_risk < 0.5 && out[3].toxicity < 0.5,
            "{:?}",
            out[3]
        );
    }
}
