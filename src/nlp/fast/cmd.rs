//! The `classify`, `eval`, `train` and `train-encoder` subcommands.
//!
//! `classify` and `eval` run the fast tier (built in) or, with `--tier
//! encoder`, the encoder tier, whose folders come from the configuration's
//! defaults and `STARLING_CLASSIFIER__ENCODER__…` variables (`model_dir`,
//! `heads_dir`, `device`). The encoder tier classifies `classify` input in
//! batches of [`ENCODER_BATCH`] lines, so its output comes a batch at a time.
//!
//! `classify` reads bytes, not lines of `String`: a line that is not UTF-8
//! gets an error object at its position and the run goes on. Each input line
//! gives exactly one output line, in order:
//! - a post: `{"sentiment":{…},"emotion":{…},"toxicity":…,"churn_risk":…}`;
//! - a line starting with `{` that parses as a JSON object with a string
//!   `text` field is classified by that field (any other line, including
//!   other JSON, is classified as plain text);
//! - an empty or whitespace-only line (or `text`): `{"error":"empty line"}`;
//! - invalid UTF-8: `{"error":"invalid UTF-8 at byte N of the line"}`.
//!
//! A final `\n` (and a `\r` before it) ends a line; a file's last line needs none.

use super::eval::{self, Task};
use super::train::{self, TrainOptions};
use super::FastClassifier;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Counts of a `classify` run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassifyStats {
    /// Lines classified.
    pub classified: u64,
    /// Lines answered with an error object.
    pub errors: u64,
}

/// The text to classify on one input line, or why there is none.
pub fn line_text(line: &[u8]) -> Result<std::borrow::Cow<'_, str>, String> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Err(format!(
                "invalid UTF-8 at byte {} of the line",
                e.valid_up_to()
            ))
        }
    };
    if text.trim().is_empty() {
        return Err("empty line".into());
    }
    if text.trim_start().starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) {
            if let Some(serde_json::Value::String(t)) = map.get("text") {
                if t.trim().is_empty() {
                    return Err("empty text".into());
                }
                return Ok(std::borrow::Cow::Owned(t.clone()));
            }
        }
    }
    Ok(std::borrow::Cow::Borrowed(text))
}

/// Classifies every line of `input` into one JSON line of `out`.
pub fn classify_stream<R: BufRead, W: Write>(
    clf: &FastClassifier,
    mut input: R,
    out: W,
) -> io::Result<ClassifyStats> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut buf = Vec::with_capacity(4096);
    let mut stats = ClassifyStats::default();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        match line_text(&buf) {
            Ok(text) => {
                serde_json::to_writer(&mut out, &clf.classify(&text))?;
                stats.classified += 1;
            }
            Err(why) => {
                serde_json::to_writer(&mut out, &serde_json::json!({ "error": why }))?;
                stats.errors += 1;
            }
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(stats)
}

/// Lines the encoder tier classifies per model call in `classify` and `eval`.
pub const ENCODER_BATCH: usize = 64;

/// Classifies every line of `input` into one JSON line of `out`, `batch`
/// lines per call of `classify` (which gets the lines' texts, in order).
pub fn classify_stream_batched<R, W, F>(
    mut input: R,
    out: W,
    batch: usize,
    mut classify: F,
) -> anyhow::Result<ClassifyStats>
where
    R: BufRead,
    W: Write,
    F: FnMut(&[&str]) -> anyhow::Result<Vec<super::Classification>>,
{
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut buf = Vec::with_capacity(4096);
    let mut stats = ClassifyStats::default();
    // Each line's text, or the error object it gets.
    let mut lines: Vec<Result<String, String>> = Vec::with_capacity(batch);
    let mut flush = |lines: &mut Vec<Result<String, String>>,
                     out: &mut BufWriter<W>,
                     stats: &mut ClassifyStats|
     -> anyhow::Result<()> {
        let texts: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.as_ref().ok().map(String::as_str))
            .collect();
        let mut results = if texts.is_empty() {
            Vec::new()
        } else {
            classify(&texts)?
        };
        if results.len() != texts.len() {
            anyhow::bail!("{} results for {} lines", results.len(), texts.len());
        }
        results.reverse();
        for l in lines.drain(..) {
            match l {
                Ok(_) => {
                    let c = results
                        .pop()
                        .ok_or_else(|| anyhow::anyhow!("missing result"))?;
                    serde_json::to_writer(&mut *out, &c)?;
                    stats.classified += 1;
                }
                Err(why) => {
                    serde_json::to_writer(&mut *out, &serde_json::json!({ "error": why }))?;
                    stats.errors += 1;
                }
            }
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    };
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        lines.push(line_text(&buf).map(|t| t.into_owned()));
        if lines.len() >= batch.max(1) {
            flush(&mut lines, &mut out, &mut stats)?;
        }
    }
    flush(&mut lines, &mut out, &mut stats)?;
    Ok(stats)
}

/// The encoder tier from the configuration's `[classifier.encoder]`
/// defaults and environment overrides.
#[cfg(feature = "encoder")]
pub fn load_encoder() -> anyhow::Result<crate::nlp::encoder::EncoderClassifier> {
    let cfg = crate::config::Config::load(None, std::env::vars())?
        .classifier
        .encoder;
    crate::nlp::encoder::EncoderClassifier::load(&cfg.model_dir, &cfg.heads_dir, cfg.device)
        .map_err(|e| anyhow::anyhow!("cannot load the encoder tier: {e}"))
}

fn no_model_dir_with_encoder(model_dir: Option<&Path>) -> anyhow::Result<()> {
    if model_dir.is_some() {
        anyhow::bail!(
            "--model is the fast model's folder; the encoder tier reads STARLING_CLASSIFIER__ENCODER__MODEL_DIR and __HEADS_DIR (defaults models/cache/all-minilm-l6-v2 and models/encoder)"
        );
    }
    Ok(())
}

fn model(dir: Option<&Path>) -> anyhow::Result<FastClassifier> {
    Ok(match dir {
        Some(d) => FastClassifier::load(d)?,
        None => FastClassifier::embedded()?,
    })
}

/// `starling classify`: the fast tier, or the encoder tier (`lexicon` has
/// sentiment only and cannot fill the output).
pub fn run_classify(
    tier: crate::config::Tier,
    model_dir: Option<&Path>,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    let stdout = io::stdout().lock();
    let input: Box<dyn BufRead> = match file {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Box::new(io::BufReader::with_capacity(1 << 16, f))
        }
        None => Box::new(io::stdin().lock()),
    };
    match tier {
        crate::config::Tier::Fast => {
            let clf = model(model_dir)?;
            classify_stream(&clf, input, stdout)?;
        }
        crate::config::Tier::Encoder => {
            no_model_dir_with_encoder(model_dir)?;
            #[cfg(feature = "encoder")]
            {
                let clf = load_encoder()?;
                classify_stream_batched(input, stdout, ENCODER_BATCH, |texts| {
                    Ok(clf.classify_batch(texts)?)
                })?;
            }
            #[cfg(not(feature = "encoder"))]
            anyhow::bail!("the encoder tier is not part of this build (built without the `encoder` cargo feature); use --tier fast");
        }
        crate::config::Tier::Lexicon => anyhow::bail!(
            "the lexicon tier scores sentiment only and cannot fill emotion, toxicity and churn_risk; use --tier fast"
        ),
    }
    Ok(())
}

/// `starling eval`: prints the report (text or JSON) of `task` on `file`.
/// `split` picks the churn rows (`dev` by default, `all` for every row).
pub fn run_eval(
    tier: crate::config::Tier,
    task: Task,
    file: &Path,
    split: Option<&str>,
    json: bool,
    model_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let split = match (task, split) {
        (Task::Churn, None) => Some("dev"),
        (_, Some("all")) => None,
        (_, s) => s,
    };
    let rows = eval::read_labelled(task, file, split)?;
    if rows.is_empty() {
        anyhow::bail!("{}: no labelled rows", file.display());
    }
    let mut source = file.display().to_string();
    if let (Task::Churn, Some(s)) = (task, split) {
        source.push_str(&format!(" (split {s})"));
    }
    let report = match tier {
        crate::config::Tier::Fast => eval::evaluate(&model(model_dir)?, task, &source, &rows),
        crate::config::Tier::Encoder => {
            no_model_dir_with_encoder(model_dir)?;
            #[cfg(feature = "encoder")]
            {
                let clf = load_encoder()?;
                let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
                let raws = clf.classify_raw_many(&texts, ENCODER_BATCH)?;
                let preds: Vec<usize> = raws.iter().map(|r| task.predict_raw(r)).collect();
                eval::EvalReport::from_predictions(task, &source, clf.model_id(), &rows, &preds)
            }
            #[cfg(not(feature = "encoder"))]
            anyhow::bail!("the encoder tier is not part of this build (built without the `encoder` cargo feature); use --tier fast")
        }
        crate::config::Tier::Lexicon => {
            anyhow::bail!("eval scores the fast or encoder tier; the lexicon tier has no emotion, toxicity or churn outputs")
        }
    };
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{report}")?;
    }
    Ok(())
}

/// `starling train`: trains, writes the model and prints the dev metrics.
pub fn run_train(data: PathBuf, out: &Path, churn: PathBuf, seed: u64) -> anyhow::Result<()> {
    let opts = TrainOptions::new(data, churn, seed);
    let summary = train::train(&opts, out)?;
    let mut o = io::stdout().lock();
    writeln!(o, "model written to {}", summary.out.display())?;
    for (f, n) in &summary.files {
        writeln!(o, "  {f}: {n} bytes")?;
    }
    writeln!(o, "trained in {:.1} s", summary.seconds)?;
    writeln!(o)?;
    writeln!(
        o,
        "{:10} {:45} {:>6} {:>8} {:>8} {:>8} {:>10}",
        "task", "dev split", "rows", "acc", "m-recall", "m-F1", "f32 m-F1"
    )?;
    for d in &summary.dev {
        let r = &d.report;
        writeln!(
            o,
            "{:10} {:45} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>10.4}",
            r.task.as_str(),
            d.split,
            r.n,
            r.accuracy,
            r.macro_recall,
            r.macro_f1,
            d.f32_macro_f1
        )?;
        if let Some(a) = &r.any_label {
            writeln!(
                o,
                "{:10} {:45} any-label accuracy {:.4}, macro-F1 {:.4}",
                "", "", a.accuracy, a.macro_f1
            )?;
        }
    }
    Ok(())
}

/// `starling train-encoder`: trains the encoder tier's heads, writes them
/// and prints the dev metrics.
#[cfg(feature = "encoder")]
pub fn run_train_encoder(
    opts: &crate::nlp::encoder::train::EncoderTrainOptions,
    out: &Path,
) -> anyhow::Result<()> {
    let summary = crate::nlp::encoder::train::train(opts, out)?;
    let mut o = io::stdout().lock();
    writeln!(o, "heads written to {}", summary.out.display())?;
    writeln!(o, "trained in {:.1} s", summary.seconds)?;
    let tp = summary.throughput;
    if tp.texts > 0 {
        writeln!(
            o,
            "embedded {} texts in {:.1} s: {:.0} texts/s (batch {}, CPU)",
            tp.texts,
            tp.seconds,
            tp.texts as f64 / tp.seconds.max(1e-9),
            opts.embed_batch
        )?;
    }
    writeln!(o, "blend weights of the fast tier: {:?}", summary.blend)?;
    writeln!(o)?;
    writeln!(
        o,
        "{:10} {:45} {:>6} {:>8} {:>8} {:>8} {:>12} {:>12}",
        "task", "dev split", "rows", "acc", "m-recall", "m-F1", "mlp m-R/F1", "fast m-R/F1"
    )?;
    for d in &summary.dev {
        let r = &d.report;
        writeln!(
            o,
            "{:10} {:45} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>5.3}/{:>5.3} {:>5.3}/{:>5.3}",
            r.task.as_str(),
            d.split,
            r.n,
            r.accuracy,
            r.macro_recall,
            r.macro_f1,
            d.mlp_only.macro_recall,
            d.mlp_only.macro_f1,
            d.fast_only.macro_recall,
            d.fast_only.macro_f1
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Vec<serde_json::Value> {
        let clf = FastClassifier::embedded().unwrap();
        let mut out = Vec::new();
        classify_stream(&clf, input, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn one_output_line_per_input_line_in_order() {
        let input = b"I love this\n\n{\"text\": \"worst service ever, cancelling\"}\r\n\xff\xfe bad bytes\n   \n{not json\n{\"id\": 1}\n{\"text\": \"\"}\nlast line without newline";
        let out = run(input);
        assert_eq!(out.len(), 9);
        assert_eq!(out[0]["sentiment"]["label"], "positive");
        assert_eq!(out[1]["error"], "empty line");
        assert!(out[2]["churn_risk"].as_f64().unwrap() > 0.5, "{}", out[2]);
        assert_eq!(out[3]["error"], "invalid UTF-8 at byte 0 of the line");
        assert_eq!(out[4]["error"], "empty line");
        assert!(out[5]["sentiment"].is_object()); // "{not json" is plain text
        assert!(out[6]["sentiment"].is_object()); // JSON without text: plain text
        assert_eq!(out[7]["error"], "empty text");
        assert!(out[8]["emotion"]["probs"]["joy"].is_f64());
        assert!(run(b"").is_empty());
    }

    #[test]
    fn classify_output_matches_the_api() {
        let clf = FastClassifier::embedded().unwrap();
        let mut out = Vec::new();
        classify_stream(&clf, &b"great news"[..], &mut out).unwrap();
        let line = String::from_utf8(out).unwrap();
        let want = serde_json::to_string(&clf.classify("great news")).unwrap();
        assert_eq!(line.trim_end(), want);
        assert!(line.starts_with("{\"sentiment\":{\"label\":"));
    }

    #[test]
    fn line_text_rules() {
        assert_eq!(line_text(b"hi").unwrap(), "hi");
        assert_eq!(line_text(br#"{"text":"yo","x":1}"#).unwrap(), "yo");
        assert!(line_text(b"\t").is_err());
        assert!(line_text(b"ok \xc3").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_give_one_json_line_per_input_line(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 0..8)
        ) {
            let lines: Vec<Vec<u8>> = lines
                .into_iter()
                .map(|l| l.into_iter().filter(|b| *b != b'\n').collect())
                .collect();
            let mut input = lines.join(&b'\n');
            input.push(b'\n');
            let out = run(&input);
            proptest::prop_assert_eq!(out.len(), lines.len().max(1));
            for (v, l) in out.iter().zip(&lines) {
                proptest::prop_assert!(v.get("error").is_some() || v.get("sentiment").is_some());
                let text = std::str::from_utf8(l).ok().filter(|t| !t.trim().is_empty());
                if text.is_none() {
                    proptest::prop_assert!(v.get("error").is_some());
                }
            }
        }
    }

    #[test]
    fn the_encoder_tier_refuses_a_fast_model_folder() {
        let e = run_classify(crate::config::Tier::Encoder, Some(Path::new("x")), None).unwrap_err();
        assert!(e.to_string().contains("--model"), "{e}");
    }

    #[test]
    fn batched_classification_keeps_one_line_per_input_line() {
        let clf = FastClassifier::embedded().unwrap();
        let input = b"I love this\n\n{\"text\": \"worst service ever\"}\n\xff\nok then\nlast";
        let mut calls = Vec::new();
        let mut out = Vec::new();
        let stats = classify_stream_batched(&input[..], &mut out, 2, |texts| {
            calls.push(texts.len());
            Ok(texts.iter().map(|t| clf.classify(t)).collect())
        })
        .unwrap();
        assert_eq!((stats.classified, stats.errors), (4, 2));
        assert_eq!(calls, [1, 1, 2]);
        let mut want = Vec::new();
        classify_stream(&clf, &input[..], &mut want).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }
}
