//! Checks on what a model wrote before it is stored as a summary.
//!
//! [`clean`] first tidies the raw output: whitespace collapsed, a leading
//! `Summary:` label and wrapping quotes removed, and a sentence cut off by
//! the token limit dropped (when at least one whole sentence remains).
//! [`check`] then refuses it when:
//! - it is empty or shorter than three words;
//! - it is longer than `max_chars` characters;
//! - it lists posts (two or more lines starting with a list marker);
//! - it copies the posts: more than half of its 6-word runs occur verbatim
//!   in the quoted posts;
//! - it names something the input does not: every `$cashtag`, `#hashtag`,
//!   `@mention`, all-capitals word and capitalised word inside a sentence
//!   must occur (case-insensitively, as a word) in the prompt, which holds
//!   the entity's name and the posts;
//! - it has a number the prompt does not have (a misquoted count).

use super::prompt::words;
use std::collections::HashSet;

/// Why a model's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckFailure {
    /// Nothing (or almost nothing) was written.
    #[error("empty output")]
    Empty,
    /// Longer than allowed.
    #[error("{chars} characters, more than {max}")]
    TooLong {
        /// Characters written.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A list of posts instead of a summary.
    #[error("lists posts")]
    Listing,
    /// Mostly copied from the posts.
    #[error("copies the posts")]
    Copied,
    /// A name that is not in the input.
    #[error("names `{0}`, which the posts do not")]
    UnknownName(String),
    /// A number that is not in the input.
    #[error("has the number `{0}`, which the input does not")]
    UnknownNumber(String),
}

/// Words that may be capitalised inside a sentence without being names.
const NOT_NAMES: &[&str] = &["i", "i'm", "i've", "ok", "kol", "kols", "ai", "usd", "n/a"];

/// Tidies raw model output (see the module doc).
pub fn clean(raw: &str) -> String {
    let mut text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    for label in ["Summary:", "summary:", "SUMMARY:"] {
        if let Some(rest) = text.strip_prefix(label) {
            text = rest.trim_start().to_string();
        }
    }
    let quoted = |t: &str| {
        (t.starts_with('"') && t.ends_with('"')) || (t.starts_with('“') && t.ends_with('”'))
    };
    if text.chars().count() >= 2 && quoted(&text) {
        let mut chars = text.chars();
        chars.next();
        chars.next_back();
        text = chars.as_str().trim().to_string();
    }
    // A quote opened and never closed (the closing one was cut off).
    for q in ['"', '“'] {
        if text.starts_with(q) && text.matches(q).count() == 1 && !text.contains('”') {
            text = text[q.len_utf8()..].trim_start().to_string();
        }
    }
    if !text.ends_with(['.', '!', '?']) {
        if let Some(end) = text.rfind(['.', '!', '?']) {
            // Keep the whole sentences, unless the cut would leave a stub.
            if end >= text.len() / 3 {
                text.truncate(end + 1);
            }
        }
    }
    text
}

/// Refuses `text` (already [`clean`]ed) when it breaks a rule of the module
/// doc. `prompt` is the whole prompt; `posts` are the quoted post texts.
pub fn check(
    text: &str,
    prompt: &str,
    posts: &[&str],
    max_chars: usize,
) -> Result<(), CheckFailure> {
    if words(text).len() < 3 {
        return Err(CheckFailure::Empty);
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(CheckFailure::TooLong {
            chars,
            max: max_chars,
        });
    }
    let list_lines = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("- ")
                || l.starts_with("* ")
                || l.split_once(". ")
                    .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .count();
    if list_lines >= 2 {
        return Err(CheckFailure::Listing);
    }
    if copied_fraction(text, posts) > 0.5 {
        return Err(CheckFailure::Copied);
    }
    let known: HashSet<String> = words(prompt).into_iter().collect();
    for name in names(text) {
        let name_words = words(&name);
        if name_words.is_empty() || NOT_NAMES.contains(&name.to_lowercase().as_str()) {
            continue;
        }
        if !name_words.iter().all(|w| known.contains(w)) {
            return Err(CheckFailure::UnknownName(name));
        }
    }
    let prompt_numbers: HashSet<String> = numbers(prompt).into_iter().collect();
    for n in numbers(text) {
        if !prompt_numbers.contains(&n) {
            return Err(CheckFailure::UnknownNumber(n));
        }
    }
    Ok(())
}

/// The fraction of `text`'s 6-word runs that occur verbatim in a post.
fn copied_fraction(text: &str, posts: &[&str]) -> f64 {
    const N: usize = 6;
    let grams = |t: &str| -> Vec<String> {
        let w = words(t);
        w.windows(N).map(|g| g.join(" ")).collect()
    };
    let mine = grams(text);
    if mine.is_empty() {
        return 0.0;
    }
    let theirs: HashSet<String> = posts.iter().flat_map(|p| grams(p)).collect();
    mine.iter().filter(|g| theirs.contains(*g)).count() as f64 / mine.len() as f64
}

/// Name-like tokens: tags, all-capitals words (two letters or more) and
/// capitalised words that do not start a sentence.
fn names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    for raw in text.split_whitespace() {
        let token = raw.trim_matches(|c: char| !(c.is_alphanumeric() || "$#@".contains(c)));
        let token = token.trim_end_matches(|c: char| !c.is_alphanumeric());
        let starts = sentence_start;
        sentence_start = raw.ends_with(['.', '!', '?', ':']);
        if token.is_empty() {
            continue;
        }
        let first = token.chars().next().unwrap_or(' ');
        let letters: Vec<char> = token.chars().filter(|c| c.is_alphabetic()).collect();
        let tag = "$#@".contains(first) && token.chars().count() > 1;
        let all_caps = letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase());
        let capitalised = first.is_uppercase() && !starts;
        if tag || all_caps || capitalised {
            out.push(token.to_string());
        }
    }
    out
}

/// Numbers in a text, normalised: digits with an optional decimal part,
/// without sign, `%`, or thousands separators.
fn numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_is_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        let decimal_point = c == '.' && !cur.is_empty() && next_is_digit && !cur.contains('.');
        if c.is_ascii_digit() || decimal_point {
            cur.push(c);
        } else if c == ',' && !cur.is_empty() && next_is_digit {
            // Thousands separator.
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "Summarise what people said about $SOL on social media in the last hour. \
        Numbers: 120 posts in the last hour (70 positive, 30 negative), +20% against the hour before; sentiment index +0.25 (-0.15).\n\
        Posts:\n[+] @alice: Love the new Phantom wallet on $SOL\n[-] @bob (KOL): $SOL fees are too high after the Firedancer upgrade\n\nSummary:";
    const POSTS: &[&str] = &[
        "Love the new Phantom wallet on $SOL",
        "$SOL fees are too high after the Firedancer upgrade",
    ];

    fn ok(text: &str) -> Result<(), CheckFailure> {
        check(&clean(text), PROMPT, POSTS, 400)
    }

    #[test]
    fn a_faithful_summary_passes() {
        ok("People like the new Phantom wallet on $SOL, but some complain that fees rose after the Firedancer upgrade. Volume rose 20% and the sentiment index fell by 0.15 to 0.25.")
            .expect("passes");
    }

    #[test]
    fn cleaning_strips_labels_quotes_and_a_cut_sentence() {
        assert_eq!(
            clean("  Summary: \"People like the wallet.  Fees are a worry. And then the"),
            "People like the wallet. Fees are a worry."
        );
        assert_eq!(clean("“Fees rose.”"), "Fees rose.");
        // A single unfinished sentence is kept rather than emptied.
        assert_eq!(clean("People say that fees"), "People say that fees");
    }

    #[test]
    fn empty_long_listing_and_copying_are_refused() {
        assert_eq!(ok("   "), Err(CheckFailure::Empty));
        assert_eq!(ok("Fees."), Err(CheckFailure::Empty));
        let long = "People talk about fees. ".repeat(30);
        assert!(matches!(ok(&long), Err(CheckFailure::TooLong { .. })));
        assert_eq!(
            check("1. Love the wallet\n2. Fees are high", PROMPT, POSTS, 400),
            Err(CheckFailure::Listing)
        );
        assert_eq!(
            ok("Love the new Phantom wallet on $SOL. $SOL fees are too high after the Firedancer upgrade."),
            Err(CheckFailure::Copied)
        );
    }

    #[test]
    fn invented_names_and_numbers_are_refused() {
        assert_eq!(
            ok("People compare $SOL with $ETH and complain about fees."),
            Err(CheckFailure::UnknownName("$ETH".into()))
        );
        assert_eq!(
            ok("Users say the wallet from Binance is great and fees rose."),
            Err(CheckFailure::UnknownName("Binance".into()))
        );
        assert_eq!(
            ok("People complain about NFT fees on the wallet."),
            Err(CheckFailure::UnknownName("NFT".into()))
        );
        assert_eq!(
            ok("Volume rose 45% as people discussed the wallet."),
            Err(CheckFailure::UnknownNumber("45".into()))
        );
        // Sentence-initial capitals and the words of the prompt are fine.
        ok("Users like the Phantom wallet. Some KOLs complain about fees.").expect("passes");
    }

    #[test]
    fn numbers_are_normalised() {
        assert_eq!(
            numbers("1,234 posts, +0.25 and 20%."),
            vec!["1234", "0.25", "20"]
        );
    }
}
