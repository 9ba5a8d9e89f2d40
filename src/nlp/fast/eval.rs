//! Labelled-file readers and classification metrics (`starling eval`).
//!
//! File formats (those of `../shared/data/` and `models/data/churn/`):
//! - sentiment: SemEval TSV `id<TAB>negative|neutral|positive<TAB>text`
//!   (JSON-style escapes decoded), or a TweetEval `*_text.txt` file whose
//!   labels (0 negative, 1 neutral, 2 positive) are in `*_labels.txt` beside it;
//! - emotion: GoEmotions ekman TSV `text<TAB>label ids<TAB>comment id`, ids
//!   in the order of its `labels.txt` (anger, disgust, fear, joy, neutral,
//!   sadness, surprise); multi-label;
//! - toxicity: a TweetEval `*_text.txt` + `*_labels.txt` pair (0 / 1);
//!   TweetEval texts carry the same JSON-style escapes as SemEval's
//!   (`\u2019`): they are decoded too;
//! - churn: `split<TAB>label<TAB>text` (label 1 churn, 0 not), one split.
//!
//! Metrics come from a confusion matrix (rows gold, columns predicted):
//! accuracy, per-class precision/recall/F1 (0 where undefined), their
//! unweighted means (macro-recall, macro-F1). Multi-label emotion rows count
//! their first gold label in the matrix; [`EvalReport::any_label`] also gives
//! the scores where a prediction matching any gold label is correct.

use super::{FastClassifier, EMOTION_LABELS, SENTIMENT_LABELS};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A classification task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Negative / neutral / positive.
    Sentiment,
    /// Seven Ekman emotions.
    Emotion,
    /// Offensive or not.
    Toxicity,
    /// Churn intent or not.
    Churn,
}

impl Task {
    /// Class names in label-index order.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Task::Sentiment => &SENTIMENT_LABELS,
            Task::Emotion => &EMOTION_LABELS,
            Task::Toxicity => &["not-toxic", "toxic"],
            Task::Churn => &["no-churn", "churn"],
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Sentiment => "sentiment",
            Task::Emotion => "emotion",
            Task::Toxicity => "toxicity",
            Task::Churn => "churn",
        }
    }

    /// The predicted class index of `clf` for `text`.
    pub fn predict(self, clf: &FastClassifier, text: &str) -> usize {
        self.predict_raw(&clf.classify_raw(text))
    }

    /// The predicted class index for a tier's raw outputs.
    pub fn predict_raw(self, raw: &super::RawOutput) -> usize {
        match self {
            Task::Sentiment => super::argmax(&raw.sentiment),
            Task::Emotion => super::argmax(&raw.emotion),
            Task::Toxicity => usize::from(raw.toxicity >= 0.5),
            Task::Churn => usize::from(raw.churn >= 0.5),
        }
    }
}

/// One labelled text: its gold class indices (first = primary).
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The text.
    pub text: String,
    /// Gold class indices; more than one only for multi-label emotion rows.
    pub gold: Vec<usize>,
}

/// An error reading a labelled file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not in the expected format.
    #[error("{path}:{line}: {why}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn parse_err(path: &Path, line: usize, why: impl Into<String>) -> DataError {
    DataError::Parse {
        path: path.to_path_buf(),
        line,
        why: why.into(),
    }
}

/// Decodes the JSON-style escapes of the SemEval files (`\u2019`, `\u002c`,
/// `\"`, surrogate pairs); other backslashes are kept.
pub fn decode_escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let hex4 = |i: usize| -> Option<u32> {
        let h = s.get(i..i + 4)?;
        if h.bytes().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(h, 16).ok()
        } else {
            None
        }
    };
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'u' => {
                    if let Some(cp) = hex4(i + 2) {
                        if (0xD800..0xDC00).contains(&cp) && s.get(i + 6..i + 8) == Some("\\u") {
                            if let Some(lo) = hex4(i + 8).filter(|lo| (0xDC00..0xE000).contains(lo))
                            {
                                let c = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                                i += 12;
                                continue;
                            }
                        }
                        out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        i += 6;
                        continue;
                    }
                }
                b'"' | b'\\' | b'/' => {
                    out.push(b[i + 1] as char);
                    i += 2;
                    continue;
                }
                b'n' => {
                    out.push(' ');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        let c = s[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Reads a SemEval sentiment TSV: (id, label index, decoded text).
pub fn read_semeval(path: &Path) -> Result<Vec<(String, usize, String)>, DataError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut f = line.splitn(3, '\t');
        let (Some(id), Some(label), Some(body)) = (f.next(), f.next(), f.next()) else {
            return Err(parse_err(path, n + 1, "expected id<TAB>label<TAB>text"));
        };
        let Some(k) = SENTIMENT_LABELS.iter().position(|l| *l == label.trim()) else {
            return Err(parse_err(path, n + 1, format!("unknown label {label:?}")));
        };
        out.push((id.to_string(), k, decode_escapes(body.trim())));
    }
    Ok(out)
}

/// The labels file beside a TweetEval `*_text.txt` file.
pub fn labels_path(text_path: &Path) -> Option<PathBuf> {
    let name = text_path.file_name()?.to_str()?;
    let stem = name.strip_suffix("_text.txt")?;
    Some(text_path.with_file_name(format!("{stem}_labels.txt")))
}

/// Reads a TweetEval text file and its labels file (integer labels below `k`).
pub fn read_tweeteval(text_path: &Path, k: usize) -> Result<Vec<Labelled>, DataError> {
    let lpath = labels_path(text_path).ok_or_else(|| {
        parse_err(
            text_path,
            0,
            "expected a *_text.txt file with *_labels.txt beside it",
        )
    })?;
    let texts = read_text(text_path)?;
    let labels = read_text(&lpath)?;
    let texts: Vec<&str> = texts.lines().collect();
    let labels: Vec<&str> = labels.lines().filter(|l| !l.trim().is_empty()).collect();
    if texts.len() != labels.len() {
        return Err(parse_err(
            &lpath,
            0,
            format!("{} labels for {} texts", labels.len(), texts.len()),
        ));
    }
    texts
        .iter()
        .zip(&labels)
        .enumerate()
        .map(|(n, (t, l))| match l.trim().parse::<usize>() {
            Ok(y) if y < k => Ok(Labelled {
                text: decode_escapes(t.trim()),
                gold: vec![y],
            }),
            _ => Err(parse_err(&lpath, n + 1, format!("bad label {l:?}"))),
        })
        .collect()
}

/// Maps a GoEmotions ekman label id (order of its `labels.txt`) to our emotion index.
pub fn ekman_id_to_emotion(id: usize) -> Option<usize> {
    // labels.txt: anger, disgust, fear, joy, neutral, sadness, surprise.
    const MAP: [usize; 7] = [0, 1, 2, 3, 6, 4, 5];
    MAP.get(id).copied()
}

/// Reads a GoEmotions ekman TSV (multi-label; gold order as in the file).
pub fn read_goemotions(path: &Path) -> Result<Vec<Labelled>, DataError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut f = line.split('\t');
        let (Some(body), Some(ids)) = (f.next(), f.next()) else {
            return Err(parse_err(path, n + 1, "expected text<TAB>label ids"));
        };
        let mut gold = Vec::new();
        for id in ids.split(',') {
            let y = id
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(ekman_id_to_emotion)
                .ok_or_else(|| parse_err(path, n + 1, format!("bad label id {id:?}")))?;
            if !gold.contains(&y) {
                gold.push(y);
            }
        }
        out.push(Labelled {
            text: body.to_string(),
            gold,
        });
    }
    Ok(out)
}

/// Reads `split<TAB>label<TAB>text` rows of the churn file; `split` = None keeps all.
/// A first line `split<TAB>label<TAB>text` is a header and skipped.
pub fn read_churn(path: &Path, split: Option<&str>) -> Result<Vec<Labelled>, DataError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.splitn(3, '\t');
        let (Some(s), Some(label), Some(body)) = (f.next(), f.next(), f.next()) else {
            return Err(parse_err(path, n + 1, "expected split<TAB>label<TAB>text"));
        };
        if n == 0 && s.trim() == "split" && label.trim() == "label" {
            continue;
        }
        let y = match label.trim() {
            "0" => 0,
            "1" => 1,
            other => return Err(parse_err(path, n + 1, format!("bad label {other:?}"))),
        };
        if split.is_none_or(|want| want == s.trim()) {
            out.push(Labelled {
                text: body.trim().to_string(),
                gold: vec![y],
            });
        }
    }
    Ok(out)
}

/// Reads a labelled file of `task` (format detected as described in the module doc).
pub fn read_labelled(
    task: Task,
    path: &Path,
    split: Option<&str>,
) -> Result<Vec<Labelled>, DataError> {
    match task {
        Task::Sentiment if labels_path(path).is_some() => read_tweeteval(path, 3),
        Task::Sentiment => Ok(read_semeval(path)?
            .into_iter()
            .map(|(_, y, text)| Labelled {
                text,
                gold: vec![y],
            })
            .collect()),
        Task::Emotion => read_goemotions(path),
        Task::Toxicity => read_tweeteval(path, 2),
        Task::Churn => read_churn(path, split),
    }
}

/// A K×K confusion matrix, rows gold, columns predicted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// Number of classes.
    pub k: usize,
    /// Row-major counts.
    pub counts: Vec<u64>,
}

impl Confusion {
    /// An empty matrix.
    pub fn new(k: usize) -> Self {
        Confusion {
            k,
            counts: vec![0; k * k],
        }
    }

    /// Counts one (gold, predicted) pair.
    pub fn add(&mut self, gold: usize, pred: usize) {
        self.counts[gold * self.k + pred] += 1;
    }

    /// Count of gold `g` predicted `p`.
    pub fn get(&self, g: usize, p: usize) -> u64 {
        self.counts[g * self.k + p]
    }

    /// Number of pairs.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Fraction on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let t = self.total();
        if t == 0 {
            return 0.0;
        }
        (0..self.k).map(|c| self.get(c, c)).sum::<u64>() as f64 / t as f64
    }

    fn ratio(a: u64, b: u64) -> f64 {
        if b == 0 {
            0.0
        } else {
            a as f64 / b as f64
        }
    }

    /// Recall of class `c` (0 when it has no gold rows).
    pub fn recall(&self, c: usize) -> f64 {
        Self::ratio(self.get(c, c), (0..self.k).map(|p| self.get(c, p)).sum())
    }

    /// Precision of class `c` (0 when never predicted).
    pub fn precision(&self, c: usize) -> f64 {
        Self::ratio(self.get(c, c), (0..self.k).map(|g| self.get(g, c)).sum())
    }

    /// F1 of class `c`.
    pub fn f1(&self, c: usize) -> f64 {
        let (p, r) = (self.precision(c), self.recall(c));
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Mean recall over classes.
    pub fn macro_recall(&self) -> f64 {
        (0..self.k).map(|c| self.recall(c)).sum::<f64>() / self.k as f64
    }

    /// Mean F1 over classes.
    pub fn macro_f1(&self) -> f64 {
        (0..self.k).map(|c| self.f1(c)).sum::<f64>() / self.k as f64
    }
}

/// Per-class scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    /// Class name.
    pub label: String,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// Gold rows of this class.
    pub support: u64,
}

/// Multi-label view: a prediction is right when it is any of the gold labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnyLabelScores {
    /// Rows with more than one gold label.
    pub multi_label_rows: usize,
    /// Fraction of rows whose prediction is one of its gold labels.
    pub accuracy: f64,
    /// Macro-F1 with per-class TP = predicted c and c gold, FP = predicted c
    /// and c not gold, FN = c gold and not predicted.
    pub macro_f1: f64,
}

/// The result of evaluating a model on a labelled file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Task.
    pub task: Task,
    /// Where the rows came from.
    pub source: String,
    /// Model id.
    pub model: String,
    /// Rows evaluated.
    pub n: usize,
    /// Accuracy (first gold label).
    pub accuracy: f64,
    /// Macro-averaged recall.
    pub macro_recall: f64,
    /// Macro-averaged F1.
    pub macro_f1: f64,
    /// Class names, in matrix order.
    pub labels: Vec<String>,
    /// Per-class scores.
    pub per_class: Vec<ClassScores>,
    /// Confusion matrix, rows gold, columns predicted.
    pub confusion: Vec<Vec<u64>>,
    /// Multi-label scores (emotion only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub any_label: Option<AnyLabelScores>,
}

/// `x` rounded to 4 decimals (for the figures recorded in model files).
pub fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

impl EvalReport {
    /// The figures a trained model records for this dev split in its
    /// `training` section.
    pub fn dev_record(&self, split: &str) -> serde_json::Value {
        serde_json::json!({
            "task": self.task,
            "split": split,
            "rows": self.n,
            "accuracy": round4(self.accuracy),
            "macro_recall": round4(self.macro_recall),
            "macro_f1": round4(self.macro_f1),
            "any_label_macro_f1": self.any_label.as_ref().map(|a| round4(a.macro_f1)),
        })
    }

    /// Builds the report from predictions.
    pub fn from_predictions(
        task: Task,
        source: &str,
        model: &str,
        rows: &[Labelled],
        preds: &[usize],
    ) -> Self {
        let labels = task.labels();
        let k = labels.len();
        let mut cm = Confusion::new(k);
        let mut tp = vec![0u64; k];
        let mut fp = vec![0u64; k];
        let mut fnn = vec![0u64; k];
        let mut any_right = 0usize;
        let mut multi = 0usize;
        for (row, &p) in rows.iter().zip(preds) {
            cm.add(row.gold[0], p);
            if row.gold.len() > 1 {
                multi += 1;
            }
            if row.gold.contains(&p) {
                any_right += 1;
                tp[p] += 1;
            } else {
                fp[p] += 1;
            }
            for &g in &row.gold {
                if g != p {
                    fnn[g] += 1;
                }
            }
        }
        let any_label = (task == Task::Emotion).then(|| {
            let f1: f64 = (0..k)
                .map(|c| {
                    let d = 2 * tp[c] + fp[c] + fnn[c];
                    if d == 0 {
                        0.0
                    } else {
                        2.0 * tp[c] as f64 / d as f64
                    }
                })
                .sum::<f64>()
                / k as f64;
            AnyLabelScores {
                multi_label_rows: multi,
                accuracy: if rows.is_empty() {
                    0.0
                } else {
                    any_right as f64 / rows.len() as f64
                },
                macro_f1: f1,
            }
        });
        EvalReport {
            task,
            source: source.to_string(),
            model: model.to_string(),
            n: rows.len(),
            accuracy: cm.accuracy(),
            macro_recall: cm.macro_recall(),
            macro_f1: cm.macro_f1(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            per_class: (0..k)
                .map(|c| ClassScores {
                    label: labels[c].to_string(),
                    precision: cm.precision(c),
                    recall: cm.recall(c),
                    f1: cm.f1(c),
                    support: (0..k).map(|p| cm.get(c, p)).sum(),
                })
                .collect(),
            confusion: (0..k)
                .map(|g| (0..k).map(|p| cm.get(g, p)).collect())
                .collect(),
            any_label,
        }
    }
}

/// Classifies every row and scores the predictions.
pub fn evaluate(clf: &FastClassifier, task: Task, source: &str, rows: &[Labelled]) -> EvalReport {
    let preds: Vec<usize> = rows.iter().map(|r| task.predict(clf, &r.text)).collect();
    EvalReport::from_predictions(task, source, clf.model_id(), rows, &preds)
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "task          {}", self.task.as_str())?;
        writeln!(f, "source        {}", self.source)?;
        writeln!(f, "model         {}", self.model)?;
        writeln!(f, "rows          {}", self.n)?;
        writeln!(f, "accuracy      {:.4}", self.accuracy)?;
        writeln!(f, "macro-recall  {:.4}", self.macro_recall)?;
        writeln!(f, "macro-F1      {:.4}", self.macro_f1)?;
        if let Some(a) = &self.any_label {
            writeln!(
                f,
                "any-label     accuracy {:.4}, macro-F1 {:.4} ({} multi-label rows)",
                a.accuracy, a.macro_f1, a.multi_label_rows
            )?;
        }
        let w = self
            .labels
            .iter()
            .map(|l| l.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(f)?;
        writeln!(f, "{:w$}  precision  recall      f1  support", "class")?;
        for c in &self.per_class {
            writeln!(
                f,
                "{:w$}  {:9.4}  {:6.4}  {:6.4}  {:7}",
                c.label, c.precision, c.recall, c.f1, c.support
            )?;
        }
        writeln!(f)?;
        writeln!(f, "confusion matrix (rows gold, columns predicted)")?;
        write!(f, "{:w$}", "")?;
        for l in &self.labels {
            write!(f, " {:>w$}", l)?;
        }
        writeln!(f)?;
        for (l, row) in self.labels.iter().zip(&self.confusion) {
            write!(f, "{:w$}", l)?;
            for v in row {
                write!(f, " {:>w$}", v)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_metrics_match_hand_computation() {
        // gold\pred   A  B  C
        //    A        5  3  2   (10)
        //    B        1  6  3   (10)
        //    C        0  2  8   (10)
        let mut cm = Confusion::new(3);
        for (g, p, n) in [
            (0, 0, 5),
            (0, 1, 3),
            (0, 2, 2),
            (1, 0, 1),
            (1, 1, 6),
            (1, 2, 3),
            (2, 1, 2),
            (2, 2, 8),
        ] {
            for _ in 0..n {
                cm.add(g, p);
            }
        }
        assert_eq!(cm.total(), 30);
        assert!((cm.accuracy() - 19.0 / 30.0).abs() < 1e-12);
        assert!((cm.recall(0) - 0.5).abs() < 1e-12);
        assert!((cm.precision(0) - 5.0 / 6.0).abs() < 1e-12);
        assert!((cm.precision(1) - 6.0 / 11.0).abs() < 1e-12);
        assert!((cm.precision(2) - 8.0 / 13.0).abs() < 1e-12);
        assert!((cm.macro_recall() - (0.5 + 0.6 + 0.8) / 3.0).abs() < 1e-12);
        let f1 = |p: f64, r: f64| 2.0 * p * r / (p + r);
        let want = (f1(5.0 / 6.0, 0.5) + f1(6.0 / 11.0, 0.6) + f1(8.0 / 13.0, 0.8)) / 3.0;
        assert!((cm.macro_f1() - want).abs() < 1e-12);
        // A class never predicted nor present scores 0, not NaN.
        let empty = Confusion::new(2);
        assert_eq!(empty.macro_f1(), 0.0);
        assert_eq!(empty.accuracy(), 0.0);
    }

    #[test]
    fn any_label_scores() {
        let rows = vec![
            Labelled {
                text: "a".into(),
                gold: vec![3, 6],
            },
            Labelled {
                text: "b".into(),
                gold: vec![0],
            },
        ];
        let r = EvalReport::from_predictions(Task::Emotion, "t", "m", &rows, &[6, 0]);
        assert_eq!(r.accuracy, 0.5); // first label of row 1 is joy
        let a = r.any_label.clone().unwrap();
        assert_eq!(a.accuracy, 1.0);
        assert_eq!(a.multi_label_rows, 1);
        // joy: FN 1 → F1 0; neutral: TP 1 → 1; anger: TP 1 → 1; others 0.
        assert!((a.macro_f1 - 2.0 / 7.0).abs() < 1e-12);
        assert!(r.to_string().contains("confusion matrix"));
    }

    #[test]
    fn escapes_decode() {
        assert_eq!(decode_escapes(r"I\u2019m here\u002c ok"), "I’m here, ok");
        assert_eq!(decode_escapes(r#"say \"hi\" \m"#), r#"say "hi" \m"#);
        assert_eq!(decode_escapes(r"\ud83d\ude02 \u12"), "😂 \\u12");
        assert_eq!(decode_escapes("plain"), "plain");
        assert_eq!(decode_escapes("trailing \\"), "trailing \\");
    }

    #[test]
    fn file_readers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("a.tsv"),
            "1\tpositive\tgood\\u002c yes\n2\tnegative\tbad\n",
        )
        .unwrap();
        let rows = read_labelled(Task::Sentiment, &p.join("a.tsv"), None).unwrap();
        assert_eq!(
            rows[0],
            Labelled {
                text: "good, yes".into(),
                gold: vec![2]
            }
        );
        std::fs::write(p.join("val_text.txt"), "x \ny\n").unwrap();
        std::fs::write(p.join("val_labels.txt"), "1\n0\n").unwrap();
        let rows = read_labelled(Task::Toxicity, &p.join("val_text.txt"), None).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].gold, [1]);
        assert!(read_labelled(Task::Sentiment, &p.join("val_text.txt"), None).is_ok());
        std::fs::write(p.join("e.tsv"), "so sad\t5\tid1\nwow\t6,3\tid2\n").unwrap();
        let rows = read_labelled(Task::Emotion, &p.join("e.tsv"), None).unwrap();
        assert_eq!(rows[0].gold, [4]);
        assert_eq!(rows[1].gold, [5, 3]);
        std::fs::write(
            p.join("c.tsv"),
            "split\tlabel\ttext\ntrain\t1\tbye\ndev\t0\thi\ndev\t1\tcancel\n",
        )
        .unwrap();
        assert_eq!(read_churn(&p.join("c.tsv"), Some("dev")).unwrap().len(), 2);
        assert_eq!(read_churn(&p.join("c.tsv"), None).unwrap().len(), 3);
        std::fs::write(p.join("bad.tsv"), "train\tx\ttext\n").unwrap();
        assert!(read_churn(&p.join("bad.tsv"), None).is_err());
    }
}
