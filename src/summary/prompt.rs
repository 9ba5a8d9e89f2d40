//! The prompt of a summary: which posts of the window represent it, and the
//! versioned template that puts them and the window's numbers before the
//! model.
//!
//! Selection ([`select`]): originals only (no reposts), URLs removed, texts
//! trimmed to [`MAX_QUOTE_CHARS`]; exact and near duplicates (same words, or
//! word sets at least 80 % alike) are skipped; then posts are taken in turn
//! from four queues, each by engagement: negative, positive, KOL authors,
//! any — so both polarities and the influential voices are heard even when
//! one side dominates engagement — until `max_posts` are taken or the token
//! budget (4 bytes a token) is spent.

use super::model::{Change, WindowNumbers};
use crate::domain::{EnrichedPost, EntityKind, EntityRef, SentimentLabel};
use std::collections::HashSet;

/// Version of the template below and of the selection; stored with every
/// summary. Bump it whenever either changes.
pub const PROMPT_VERSION: u32 = 1;

/// Longest quoted post, in characters.
pub const MAX_QUOTE_CHARS: usize = 280;

/// Word sets at least this alike (Jaccard) are near duplicates.
const NEAR_DUPLICATE: f64 = 0.8;

/// A post chosen to represent the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Representative {
    /// Post id.
    pub post_id: String,
    /// Author handle.
    pub handle: String,
    /// Cleaned, trimmed text.
    pub text: String,
    /// Engagement total.
    pub engagement: u64,
    /// Sentiment score (−1..1).
    pub sentiment: f64,
    /// Sentiment label.
    pub label: SentimentLabel,
    /// The author has at least `kol_followers` followers.
    pub kol: bool,
}

/// Approximate tokens of a text (4 bytes a token, as for English BPE).
pub fn approx_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// Removes URLs and collapses whitespace.
pub fn clean_text(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| {
            let l = w.to_ascii_lowercase();
            !(l.starts_with("http://") || l.starts_with("https://") || l.starts_with("www."))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Cuts `text` to at most `max` characters, at a word boundary when one is
/// near, marking the cut with `…`.
pub fn trim_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > cut.len() / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

/// Lower-case words of a text (letters and digits), for comparisons.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// Picks the posts that represent a window (see the module doc). `posts`
/// may come in any order.
pub fn select(
    posts: &[EnrichedPost],
    max_posts: usize,
    token_budget: usize,
    kol_followers: u64,
) -> Vec<Representative> {
    let mut candidates: Vec<&EnrichedPost> = posts
        .iter()
        .filter(|p| p.post.repost_of.is_none())
        .collect();
    candidates.sort_by(|a, b| {
        (b.post.engagement.total(), b.post.created_at, &b.post.id).cmp(&(
            a.post.engagement.total(),
            a.post.created_at,
            &a.post.id,
        ))
    });
    let is_kol = |p: &EnrichedPost| p.post.author.followers >= kol_followers;
    let label = |p: &EnrichedPost| p.scores.sentiment.label;
    let queues: [Vec<&EnrichedPost>; 4] = [
        candidates
            .iter()
            .copied()
            .filter(|p| label(p) == SentimentLabel::Negative)
            .collect(),
        candidates
            .iter()
            .copied()
            .filter(|p| label(p) == SentimentLabel::Positive)
            .collect(),
        candidates.iter().copied().filter(|p| is_kol(p)).collect(),
        candidates,
    ];
    let mut next = [0usize; 4];
    let mut taken_ids: HashSet<&str> = HashSet::new();
    let mut taken_words: Vec<HashSet<String>> = Vec::new();
    let mut out: Vec<Representative> = Vec::new();
    let mut tokens = 0usize;
    while out.len() < max_posts {
        let mut progressed = false;
        for (q, queue) in queues.iter().enumerate() {
            if out.len() >= max_posts {
                break;
            }
            while let Some(p) = queue.get(next[q]) {
                next[q] += 1;
                if taken_ids.contains(p.post.id.as_str()) {
                    continue;
                }
                let text = trim_chars(&clean_text(&p.post.text), MAX_QUOTE_CHARS);
                let w: HashSet<String> = words(&text).into_iter().collect();
                if w.is_empty() || taken_words.iter().any(|t| jaccard(t, &w) >= NEAR_DUPLICATE) {
                    // A duplicate stays a duplicate: never look at it again.
                    taken_ids.insert(p.post.id.as_str());
                    continue;
                }
                let cost = approx_tokens(&text) + approx_tokens(&p.post.author.handle) + 4;
                if tokens + cost > token_budget {
                    continue;
                }
                tokens += cost;
                taken_ids.insert(p.post.id.as_str());
                taken_words.push(w);
                out.push(Representative {
                    post_id: p.post.id.clone(),
                    handle: p.post.author.handle.clone(),
                    text,
                    engagement: p.post.engagement.total(),
                    sentiment: p.scores.sentiment.score,
                    label: p.scores.sentiment.label,
                    kol: is_kol(p),
                });
                progressed = true;
                break;
            }
        }
        if !progressed {
            break;
        }
    }
    out.sort_by(|a, b| (b.engagement, &b.post_id).cmp(&(a.engagement, &a.post_id)));
    out
}

/// How an entity is named in a summary.
pub fn display_name(entity: &EntityRef) -> String {
    let id = &entity.id;
    match entity.kind {
        EntityKind::Project => format!("${id}"),
        EntityKind::Topic if id.starts_with('@') => id.clone(),
        EntityKind::Topic => format!("#{id}"),
        EntityKind::Macro => "the whole market".into(),
        EntityKind::Narrative => format!("the {id} narrative"),
        EntityKind::Product => format!("the product {id}"),
        EntityKind::User | EntityKind::Kol => format!("the author {id}"),
        EntityKind::Platform => format!("{id} (platform)"),
        EntityKind::Channel => format!("the channel {id}"),
        EntityKind::Geo => format!("{id} (region)"),
        EntityKind::Post => format!("post {id}"),
    }
}

/// "hour", "6 hours", "day", "90 minutes": the window in words.
pub fn window_words(window_s: u64) -> String {
    match window_s {
        3_600 => "hour".into(),
        86_400 => "day".into(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

/// The window's numbers in one sentence, with the change against the
/// previous window where it is known. Only computed values appear.
pub fn numbers_sentence(window_s: u64, numbers: &WindowNumbers, change: &Change) -> String {
    let span = window_words(window_s);
    let mut s = format!(
        "{} posts in the last {span} ({} positive, {} negative)",
        numbers.volume, numbers.positive, numbers.negative
    );
    if let Some(pct) = change.volume_pct {
        s.push_str(&format!(", {pct:+.0}% against the {span} before"));
    }
    if let Some(si) = numbers.sentiment_index {
        s.push_str(&format!("; sentiment index {si:+.2}"));
        if let Some(d) = change.sentiment_delta {
            s.push_str(&format!(" ({d:+.2})"));
        }
    }
    s.push('.');
    s
}

/// The prompt of template version [`PROMPT_VERSION`].
pub fn build(
    entity: &EntityRef,
    window_s: u64,
    numbers: &WindowNumbers,
    change: &Change,
    reps: &[Representative],
) -> String {
    let name = display_name(entity);
    let span = window_words(window_s);
    let mut p = format!(
        "Summarise what people said about {name} on social media in the last {span}, for a market analyst. \
         Write 2 or 3 plain sentences: the main topic, the main praise, the main complaint, and what changed. \
         Use only the posts and numbers below. Do not list or copy the posts.\n\n\
         Numbers: {}\n\n\
         Posts ([+] positive, [-] negative, [=] neutral):\n",
        numbers_sentence(window_s, numbers, change)
    );
    for r in reps {
        let mark = match r.label {
            SentimentLabel::Positive => "+",
            SentimentLabel::Negative => "-",
            SentimentLabel::Neutral => "=",
        };
        let kol = if r.kol { " (KOL)" } else { "" };
        p.push_str(&format!("[{mark}] @{}{kol}: {}\n", r.handle, r.text));
    }
    p.push_str("\nSummary:");
    p
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::Sentiment;

    /// A scored post for hand-made windows.
    pub(crate) fn post(
        id: &str,
        handle: &str,
        text: &str,
        likes: u64,
        label: SentimentLabel,
        followers: u64,
    ) -> EnrichedPost {
        let mut p = crate::domain::fixtures::post(id, text);
        p.post.author = crate::domain::fixtures::author(&format!("u-{handle}"), handle, followers);
        p.post.engagement.likes = likes;
        p.scores.sentiment = Sentiment {
            label,
            score: match label {
                SentimentLabel::Positive => 0.7,
                SentimentLabel::Negative => -0.7,
                SentimentLabel::Neutral => 0.0,
            },
            probs: None,
        };
        p.entities = vec![EntityRef::new(EntityKind::Project, "SOL")];
        p
    }

    use SentimentLabel::{Negative, Neutral, Positive};

    #[test]
    fn both_polarities_and_kols_are_heard_when_one_side_dominates() {
        let mut posts: Vec<EnrichedPost> = (0..30)
            .map(|i| {
                post(
                    &format!("p{i}"),
                    &format!("fan{i}"),
                    &format!("$SOL is great: alpha{i} beta{i} gamma{i} delta{i}"),
                    1_000 - i,
                    Positive,
                    10,
                )
            })
            .collect();
        posts.push(post(
            "n1",
            "angry",
            "$SOL outage again, my swap failed",
            3,
            Negative,
            10,
        ));
        posts.push(post(
            "k1",
            "whale",
            "Watching $SOL validators closely",
            1,
            Neutral,
            500_000,
        ));
        let reps = select(&posts, 4, 10_000, 100_000);
        let ids: Vec<&str> = reps.iter().map(|r| r.post_id.as_str()).collect();
        assert_eq!(reps.len(), 4);
        assert!(ids.contains(&"n1"), "{ids:?}");
        assert!(ids.contains(&"k1"), "{ids:?}");
        assert!(ids.contains(&"p0"), "{ids:?}");
        assert!(reps
            .iter()
            .find(|r| r.post_id == "k1")
            .is_some_and(|r| r.kol));
        // Most engaging first.
        assert!(reps.windows(2).all(|w| w[0].engagement >= w[1].engagement));
    }

    #[test]
    fn duplicates_reposts_and_urls_are_dropped() {
        let mut repost = post(
            "r1",
            "bot",
            "$SOL to the moon https://x.co/abc",
            900,
            Positive,
            10,
        );
        repost.post.repost_of = Some("p1".into());
        let posts = vec![
            post(
                "p1",
                "a",
                "$SOL to the moon https://x.co/abc",
                800,
                Positive,
                10,
            ),
            post(
                "p2",
                "b",
                "$sol TO the moon!! https://x.co/zzz",
                700,
                Positive,
                10,
            ),
            post("p3", "c", "Fees on $SOL went up today", 10, Negative, 10),
            repost,
        ];
        let reps = select(&posts, 10, 10_000, 100_000);
        let ids: Vec<&str> = reps.iter().map(|r| r.post_id.as_str()).collect();
        assert_eq!(ids, vec!["p1", "p3"]);
        assert_eq!(reps[0].text, "$SOL to the moon");
    }

    #[test]
    fn token_budget_and_quote_length_are_respected() {
        let long = "word ".repeat(200);
        let posts: Vec<EnrichedPost> = (0..20)
            .map(|i| {
                post(
                    &format!("p{i}"),
                    "h",
                    &format!("{i} {long}"),
                    100 - i,
                    Positive,
                    1,
                )
            })
            .collect();
        let reps = select(&posts, 20, 200, 100_000);
        let used: usize = reps.iter().map(|r| approx_tokens(&r.text) + 5).sum();
        assert!(!reps.is_empty() && used <= 200, "{used}");
        assert!(reps
            .iter()
            .all(|r| r.text.chars().count() <= MAX_QUOTE_CHARS));
        assert!(reps[0].text.ends_with('…'));
        // Each quote costs about 75 tokens: two fit in 200.
        assert_eq!(reps.len(), 2);
    }

    #[test]
    fn prompt_has_numbers_posts_and_version_fields() {
        let reps = select(
            &[
                post("p1", "alice", "Love the new $SOL wallet", 50, Positive, 10),
                post("p2", "bob", "$SOL fees are too high", 40, Negative, 200_000),
            ],
            10,
            1_000,
            100_000,
        );
        let now = WindowNumbers {
            volume: 120,
            engagement: 900,
            positive: 70,
            negative: 30,
            neutral: 20,
            sentiment_index: Some(0.25),
        };
        let before = WindowNumbers {
            volume: 100,
            sentiment_index: Some(0.4),
            ..WindowNumbers::default()
        };
        let change = Change::between(before, &now);
        let p = build(
            &EntityRef::new(EntityKind::Project, "SOL"),
            3_600,
            &now,
            &change,
            &reps,
        );
        assert!(p.contains("about $SOL"), "{p}");
        assert!(p.contains("120 posts in the last hour (70 positive, 30 negative), +20% against the hour before; sentiment index +0.25 (-0.15)."), "{p}");
        assert!(p.contains("[+] @alice: Love the new $SOL wallet\n"), "{p}");
        assert!(
            p.contains("[-] @bob (KOL): $SOL fees are too high\n"),
            "{p}"
        );
        assert!(p.ends_with("Summary:"));
    }

    #[test]
    fn numbers_sentence_leaves_out_what_is_unknown() {
        let now = WindowNumbers {
            volume: 5,
            ..WindowNumbers::default()
        };
        let s = numbers_sentence(
            7_200,
            &now,
            &Change::between(WindowNumbers::default(), &now),
        );
        assert_eq!(s, "5 posts in the last 2 hours (0 positive, 0 negative).");
    }
}
