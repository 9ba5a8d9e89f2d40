//! The extractive summary: representative sentences picked from the
//! window's representative posts, with the window's numbers. It is what a
//! summary is when no model is configured, and the fallback when the model
//! fails, times out or writes something the checks refuse.
//!
//! Up to three sentences are quoted, each from a different post: the best
//! sentence of the most engaging positive post (the main praise) and of the
//! most engaging negative post (the main complaint), and the most *central*
//! sentence of the other posts (its content words are shared by the most
//! posts, engagement breaking ties: what is most discussed); then the
//! numbers sentence of [`prompt::numbers_sentence`]
//! says what changed against the previous window.

use super::model::{Change, Quote, WindowNumbers};
use super::prompt::{self, trim_chars, words, Representative};
use crate::domain::{EntityRef, SentimentLabel};
use std::collections::{HashMap, HashSet};

/// Words too common to say what a post is about.
const STOPWORDS: &[&str] = &[
    "about", "after", "again", "also", "been", "before", "being", "could", "does", "dont", "from",
    "have", "just", "like", "more", "much", "only", "really", "should", "some", "than", "that",
    "their", "them", "then", "there", "these", "they", "this", "today", "very", "what", "when",
    "where", "which", "while", "will", "with", "would", "your", "into", "over", "still", "here",
];

/// Shortest quoted sentence, in words.
const MIN_SENTENCE_WORDS: usize = 3;

/// An extractive summary's parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Extract {
    /// The text.
    pub text: String,
    /// The praise quoted, if the window has a positive post.
    pub praise: Option<Quote>,
    /// The complaint quoted, if the window has a negative post.
    pub complaint: Option<Quote>,
}

/// One candidate sentence.
struct Sentence<'a> {
    rep: &'a Representative,
    text: String,
    centrality: f64,
}

/// Splits a post into sentences.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            out.push(std::mem::take(&mut cur));
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| words(s).len() >= MIN_SENTENCE_WORDS)
        .collect()
}

fn content_words(text: &str, skip: &HashSet<String>) -> HashSet<String> {
    words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 4 && !STOPWORDS.contains(&w.as_str()) && !skip.contains(w))
        .collect()
}

/// The extractive summary of `reps` (see the module doc), at most
/// `max_chars` characters.
pub fn summarize(
    entity: &EntityRef,
    window_s: u64,
    numbers: &WindowNumbers,
    change: &Change,
    reps: &[Representative],
    max_chars: usize,
) -> Extract {
    let name_words: HashSet<String> = words(&entity.id).into_iter().collect();
    let per_post: Vec<HashSet<String>> = reps
        .iter()
        .map(|r| content_words(&r.text, &name_words))
        .collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for w in per_post.iter().flatten() {
        *df.entry(w.as_str()).or_default() += 1;
    }
    let mut candidates: Vec<Sentence> = Vec::new();
    for rep in reps {
        for text in sentences(&rep.text) {
            let cw = content_words(&text, &name_words);
            let shared: usize = cw
                .iter()
                .map(|w| df.get(w.as_str()).copied().unwrap_or(1) - 1)
                .sum();
            let centrality = shared as f64 / (cw.len().max(1) as f64).sqrt()
                + 0.1 * (1.0 + rep.engagement as f64).ln();
            candidates.push(Sentence {
                rep,
                text,
                centrality,
            });
        }
    }
    let by_centrality = |a: &&Sentence, b: &&Sentence| a.centrality.total_cmp(&b.centrality);
    // The best sentence of the most engaging post of a polarity.
    let best_of = |label: SentimentLabel| -> Option<&Sentence> {
        let rep = reps
            .iter()
            .filter(|r| r.label == label)
            .max_by_key(|r| r.engagement)?;
        candidates
            .iter()
            .filter(|s| s.rep.post_id == rep.post_id)
            .max_by(by_centrality)
    };
    let praise = best_of(SentimentLabel::Positive);
    let complaint = best_of(SentimentLabel::Negative);
    let quoted: HashSet<&str> = [praise, complaint]
        .iter()
        .flatten()
        .map(|s| s.rep.post_id.as_str())
        .collect();
    let topic = candidates
        .iter()
        .filter(|s| !quoted.contains(s.rep.post_id.as_str()))
        .max_by(by_centrality);

    let numbers_sentence = prompt::numbers_sentence(window_s, numbers, change);
    let parts = [
        ("Most discussed", topic),
        ("Praise", praise),
        ("Complaint", complaint),
    ];
    let quoted = parts.iter().filter(|(_, s)| s.is_some()).count().max(1);
    // Room per quote once the labels, handles and numbers are in.
    let per_quote =
        (max_chars.saturating_sub(numbers_sentence.chars().count() + 40 * quoted) / quoted).max(40);
    let mut text = String::new();
    for (label, s) in parts {
        if let Some(s) = s {
            text.push_str(&format!(
                "{label}: “{}” (@{}). ",
                trim_chars(&s.text, per_quote),
                s.rep.handle
            ));
        }
    }
    text.push_str(&numbers_sentence);
    let quote = |s: Option<&Sentence>| {
        s.map(|s| Quote {
            post_id: s.rep.post_id.clone(),
            handle: s.rep.handle.clone(),
            text: s.text.clone(),
            engagement: s.rep.engagement,
            sentiment: s.rep.sentiment,
        })
    };
    Extract {
        text: trim_chars(&text, max_chars),
        praise: quote(praise),
        complaint: quote(complaint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EntityKind;
    use crate::summary::prompt::{select, tests::post};
    use SentimentLabel::{Negative, Neutral, Positive};

    fn window() -> Vec<Representative> {
        let posts = vec![
            post(
                "p1",
                "alice",
                "The new $SOL wallet is fantastic. Swaps settle in a second!",
                500,
                Positive,
                10,
            ),
            post(
                "p2",
                "bob",
                "Fees on $SOL doubled since the upgrade. My swaps keep failing.",
                300,
                Negative,
                10,
            ),
            post(
                "p3",
                "carol",
                "Swaps failing again on $SOL, fees through the roof.",
                120,
                Negative,
                10,
            ),
            post(
                "p4",
                "dave",
                "Anyone else seeing failing swaps on $SOL? Fees are wild.",
                80,
                Neutral,
                10,
            ),
            post("p5", "erin", "gm", 5, Neutral, 10),
        ];
        select(&posts, 10, 10_000, 100_000)
    }

    fn numbers() -> (WindowNumbers, Change) {
        let now = WindowNumbers {
            volume: 40,
            positive: 10,
            negative: 25,
            neutral: 5,
            sentiment_index: Some(-0.3),
            ..WindowNumbers::default()
        };
        let before = WindowNumbers {
            volume: 20,
            sentiment_index: Some(0.1),
            ..WindowNumbers::default()
        };
        (now, Change::between(before, &now))
    }

    #[test]
    fn quotes_the_central_theme_the_praise_and_the_complaint_with_numbers() {
        let (now, change) = numbers();
        let sol = EntityRef::new(EntityKind::Project, "SOL");
        let e = summarize(&sol, 3_600, &now, &change, &window(), 700);
        // The theme shared by most posts: failing swaps and fees.
        assert!(e.text.starts_with("Most discussed: “"), "{}", e.text);
        let topic = e.text.split('”').next().unwrap_or_default().to_lowercase();
        assert!(
            topic.contains("swap") && topic.contains("fail"),
            "{}",
            e.text
        );
        let praise = e.praise.expect("a positive post exists");
        assert_eq!(praise.post_id, "p1");
        assert!(e.text.contains("Praise: “"), "{}", e.text);
        let complaint = e.complaint.expect("a negative post exists");
        assert_ne!(complaint.post_id, praise.post_id);
        assert!(e.text.contains("Complaint: “"), "{}", e.text);
        assert!(
            e.text.ends_with("40 posts in the last hour (10 positive, 25 negative), +100% against the hour before; sentiment index -0.30 (-0.40)."),
            "{}",
            e.text
        );
        // Every quote is a sentence of a post, not made up.
        for q in [&praise, &complaint] {
            assert!(window().iter().any(|r| r.text.contains(&q.text)), "{q:?}");
        }
    }

    #[test]
    fn one_sided_windows_and_tight_limits() {
        let posts = vec![post(
            "p1",
            "alice",
            "Great $SOL wallet, fast and cheap swaps.",
            5,
            Positive,
            10,
        )];
        let reps = select(&posts, 10, 10_000, 100_000);
        let (now, change) = numbers();
        let sol = EntityRef::new(EntityKind::Project, "SOL");
        let e = summarize(&sol, 3_600, &now, &change, &reps, 700);
        assert!(e.complaint.is_none());
        assert_eq!(e.praise.map(|p| p.post_id).as_deref(), Some("p1"));
        // The only post is the praise: it is not quoted twice.
        assert!(
            e.text.starts_with("Praise: “Great $SOL wallet"),
            "{}",
            e.text
        );
        assert!(!e.text.contains("Complaint") && !e.text.contains("Most discussed"));
        let tight = summarize(&sol, 3_600, &now, &change, &window(), 120);
        assert!(tight.text.chars().count() <= 120, "{}", tight.text);
    }

    #[test]
    fn sentence_splitting() {
        assert_eq!(
            sentences("Fees are up. Swaps fail!\nWhy is that? ok"),
            vec!["Fees are up.", "Why is that?"]
        );
        assert_eq!(
            sentences("v1.2 shipped with fixes today"),
            vec!["v1.2 shipped with fixes today"]
        );
    }
}
