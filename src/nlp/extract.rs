//! Entity extraction: which entities a post is counted under.
//!
//! [`Extractor::extract`] returns every entity at most once, grouped by kind
//! in this order: `macro`, `user`, `kol`, projects, topics, narratives, then
//! the `platform`, `channel`, `product` and `geo` dimensions. Projects and
//! topics keep the order of their first appearance in the text; narratives
//! keep the configured order. Empty ids are skipped.
//!
//! Rules:
//! - `macro`: always, id `all`.
//! - `user`: the author id. `kol`: the author id too when the author has at
//!   least `kol_followers` followers.
//! - `project`: a `$CASHTAG` (1–10 ASCII letters, nothing else, before the
//!   next non-word character: `$BTC` and `$btc,` are `BTC`; `$100`, `$BTC2`
//!   and `$ABCDEFGHIJK` are nothing), in upper case; a configured alias
//!   matched case-insensitively on word boundaries (`solana` is `SOL`,
//!   `solanaceae` is nothing), multi-word aliases included; a `#hashtag` equal
//!   to a project id or to an alias written without spaces (`#solana`,
//!   `#sol`). Configured project ids are upper-cased.
//! - `topic`: a `#hashtag` (letters, digits and `_`, at least one letter, at
//!   most 64 characters), lower case without `#`; an `@mention` (ASCII
//!   letters, digits, `_`, and `.`/`-` inside the handle, at most 64
//!   characters) as `@handle` in lower case; a configured keyword matched
//!   case-insensitively on word boundaries, with the keyword (trimmed, lower
//!   case) as id.
//! - `narrative`: each configured narrative whose topic list contains one of
//!   the post's topic ids (compared in lower case).
//! - `platform`: the platform in lower case; `channel` and `product`, when
//!   present: trimmed, lower case; `geo`, when present: trimmed, as given.
//!
//! Tokenizing: one pass over the text, no regex. A word is a run of Unicode
//! letters, digits and `_`; everything else separates words. `$`, `#` and `@`
//! start a tag only at a word boundary (`US$5`, `C#` and `bob@mail.com` are
//! not tags), and a tag body must end on one (`$BTC2` is not `BTC`). Words
//! of a multi-word alias or keyword may be separated by whitespace and
//! hyphens only (`new-york`, `new  york`; not `new, york`); alias and keyword
//! phrases are compared on their words, punctuation ignored; phrases of more
//! than [`MAX_PHRASE_WORDS`] words are ignored. URLs (from
//! `http://`, `https://` or `www.` to the next whitespace) are skipped: their
//! paths and anchors are not tags and their words are not aliases.
//!
//! Pathological input is capped: at most [`MAX_TAGS_PER_KIND`] distinct
//! cashtags, hashtags and mentions each per post (the first ones), further
//! ones are ignored.

use crate::config::EntitiesConfig;
use crate::domain::{EntityKind, EntityRef, Post};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// Most distinct cashtags, hashtags and mentions (each) taken from one post.
pub const MAX_TAGS_PER_KIND: usize = 32;
/// Longest cashtag, in letters.
pub const MAX_CASHTAG_LEN: usize = 10;
/// Longest hashtag or mention, in characters; longer ones are ignored.
pub const MAX_TAG_CHARS: usize = 64;
/// Most words in a configured alias or keyword; longer ones are ignored.
pub const MAX_PHRASE_WORDS: usize = 8;

/// Attributes posts to entities under the configured projects, keywords and
/// narratives. Build once, share through an `Arc`.
#[derive(Clone)]
pub struct Extractor {
    kol_followers: u64,
    /// Project ids (upper case), indexed by [`Hit::Project`].
    projects: Vec<String>,
    /// Keyword topic ids (lower case), indexed by [`Hit::Keyword`].
    keywords: Vec<String>,
    /// Narrative ids, in configured order.
    narratives: Vec<String>,
    /// Normalised alias/keyword phrase (lower-case words joined by one space) → what it means.
    phrases: WordMap<Vec<Hit>>,
    /// Most words in one phrase (0 when nothing is configured).
    max_phrase_words: usize,
    /// A cheap filter before hashing: bit `min(len, 31)` of entry `b` is set
    /// when some phrase starts with byte `b` and is `len` bytes long.
    phrase_filter: [u32; 256],
    /// Lower-case hashtag (project id, alias without spaces) → projects.
    hashtag_projects: WordMap<Vec<u32>>,
    /// Lower-case topic id → narratives that contain it.
    topic_narratives: WordMap<Vec<u32>>,
}

impl fmt::Debug for Extractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extractor")
            .field("kol_followers", &self.kol_followers)
            .field("projects", &self.projects)
            .field("keywords", &self.keywords)
            .field("narratives", &self.narratives)
            .field("phrases", &self.phrases.len())
            .finish_non_exhaustive()
    }
}

// The classifier shares one extractor across worker threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Extractor>();
};

/// What a configured phrase refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    Project(u32),
    Keyword(u32),
}

/// A map keyed by short strings, hashed with xxh3. Keys come from the
/// configuration, never from posts, so a fixed hash is fine.
type WordMap<V> = HashMap<String, V, BuildHasherDefault<WordHasher>>;

#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u8(&mut self, b: u8) {
        // `str` hashing ends with a 0xff marker: mix it in without a second pass.
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Extractor {
    /// Builds the lookup tables from the entities configuration.
    pub fn new(cfg: &EntitiesConfig) -> Self {
        build(cfg)
    }

    /// Every entity `post` is attributed to, deduplicated, in the order of the
    /// module doc. Always contains `macro/all` first.
    pub fn extract(&self, post: &Post) -> Vec<EntityRef> {
        let mut found = Found {
            projects: Vec::new(),
            topics: Vec::new(),
            cashtags: 0,
            hashtags: 0,
            mentions: 0,
            project_seen: Seen::new(self.projects.len()),
            keyword_seen: Seen::new(self.keywords.len()),
        };
        self.scan(&post.text, &mut found);

        let mut narrative_seen = Seen::new(0);
        let mut narratives = 0usize;
        if !self.topic_narratives.is_empty() && !found.topics.is_empty() {
            narrative_seen = Seen::new(self.narratives.len());
            for topic in &found.topics {
                if let Some(list) = self.topic_narratives.get(topic.as_str()) {
                    for &n in list {
                        narratives += usize::from(narrative_seen.insert(n as usize));
                    }
                }
            }
        }

        let mut out =
            Vec::with_capacity(7 + found.projects.len() + found.topics.len() + narratives);
        out.push(EntityRef::macro_all());
        let author = post.author.id.as_str();
        if !author.trim().is_empty() {
            out.push(EntityRef::new(EntityKind::User, author));
            if post.author.followers >= self.kol_followers {
                out.push(EntityRef::new(EntityKind::Kol, author));
            }
        }
        out.extend(
            found
                .projects
                .into_iter()
                .map(|id| EntityRef::new(EntityKind::Project, id)),
        );
        out.extend(
            found
                .topics
                .into_iter()
                .map(|id| EntityRef::new(EntityKind::Topic, id)),
        );
        out.extend(
            self.narratives
                .iter()
                .enumerate()
                .filter(|(n, _)| narratives > 0 && narrative_seen.contains(*n))
                .map(|(_, id)| EntityRef::new(EntityKind::Narrative, id.as_str())),
        );
        push_dimension(&mut out, EntityKind::Platform, Some(&post.platform), true);
        push_dimension(&mut out, EntityKind::Channel, post.channel.as_deref(), true);
        push_dimension(&mut out, EntityKind::Product, post.product.as_deref(), true);
        push_dimension(&mut out, EntityKind::Geo, post.geo.as_deref(), false);
        out
    }

    /// The single pass over the text.
    fn scan(&self, text: &str, found: &mut Found) {
        let bytes = text.as_bytes();
        let match_words = self.max_phrase_words > 0;
        let mut chain = Chain::default();
        let mut chain_open = false;
        let mut prev_word = false;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !prev_word && matches!(b, b'$' | b'#' | b'@') {
                let body_start = i + 1;
                let end = scan_body(text, body_start, b == b'@');
                let body = &text[body_start..end];
                match b {
                    b'$' => self.cashtag(body, found),
                    b'#' => self.hashtag(body, found),
                    _ => mention(body, found),
                }
                chain_open = false;
                prev_word = end > body_start;
                i = end;
                continue;
            }
            let (c, len) = char_at(text, i);
            if is_word_char(c) {
                let end = scan_word(text, i);
                let word = &text[i..end];
                if let Some(url_end) = url_end(text, i, word) {
                    chain_open = false;
                    prev_word = false;
                    i = url_end;
                    continue;
                }
                if match_words {
                    self.word(word, chain_open, &mut chain, found);
                }
                chain_open = true;
                prev_word = true;
                i = end;
                continue;
            }
            if !(c.is_whitespace() || c == '-') {
                chain_open = false;
            }
            prev_word = false;
            i += len;
        }
    }

    /// Adds `word` to the phrase chain and looks up every phrase ending with it.
    fn word(&self, word: &str, chain_open: bool, chain: &mut Chain, found: &mut Found) {
        let max_words = self.max_phrase_words.min(MAX_PHRASE_WORDS);
        if !chain_open || max_words <= 1 {
            if max_words <= 1 && word.is_ascii() {
                // Single-word phrases only: filter before lower-casing.
                let first = word.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
                if !self.may_match(first, word.len()) {
                    return;
                }
            }
            chain.lower.clear();
            chain.len = 0;
        } else if chain.len >= max_words {
            let drop = chain.len + 1 - max_words;
            let cut = chain.starts[drop];
            chain.lower.drain(..cut);
            chain.starts.copy_within(drop..chain.len, 0);
            chain.len -= drop;
            for s in &mut chain.starts[..chain.len] {
                *s -= cut;
            }
        }
        if chain.len > 0 {
            chain.lower.push(' ');
        }
        chain.starts[chain.len] = chain.lower.len();
        chain.len += 1;
        push_lower(&mut chain.lower, word);
        for &start in &chain.starts[..chain.len] {
            let phrase = &chain.lower[start..];
            let first = phrase.as_bytes().first().copied().unwrap_or(0);
            if !self.may_match(first, phrase.len()) {
                continue;
            }
            let Some(hits) = self.phrases.get(phrase) else {
                continue;
            };
            for &hit in hits {
                match hit {
                    Hit::Project(p) => self.add_project_index(p, found),
                    Hit::Keyword(k) => {
                        let k = k as usize;
                        if found.keyword_seen.insert(k) {
                            if let Some(id) = self.keywords.get(k) {
                                push_unique(&mut found.topics, id);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether a phrase starting with byte `first` and `len` bytes long may be configured.
    #[inline]
    fn may_match(&self, first: u8, len: usize) -> bool {
        self.phrase_filter[usize::from(first)] & (1u32 << len.min(31)) != 0
    }

    fn add_project_index(&self, p: u32, found: &mut Found) {
        let p = p as usize;
        if found.project_seen.insert(p) {
            if let Some(id) = self.projects.get(p) {
                push_unique(&mut found.projects, id);
            }
        }
    }

    fn cashtag(&self, body: &str, found: &mut Found) {
        if found.cashtags >= MAX_TAGS_PER_KIND
            || body.is_empty()
            || body.len() > MAX_CASHTAG_LEN
            || !body.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return;
        }
        if !found.projects.iter().any(|p| p.eq_ignore_ascii_case(body)) {
            found.projects.push(body.to_ascii_uppercase());
            found.cashtags += 1;
        }
    }

    fn hashtag(&self, body: &str, found: &mut Found) {
        if found.hashtags >= MAX_TAGS_PER_KIND
            || body.is_empty()
            || !body.chars().any(char::is_alphabetic)
            || body.chars().nth(MAX_TAG_CHARS).is_some()
        {
            return;
        }
        let mut id = String::with_capacity(body.len());
        push_lower(&mut id, body);
        if let Some(projects) = self.hashtag_projects.get(id.as_str()) {
            for &p in projects {
                self.add_project_index(p, found);
            }
        }
        if !found.topics.contains(&id) {
            found.topics.push(id);
            found.hashtags += 1;
        }
    }
}

/// What one scan has found so far.
struct Found {
    projects: Vec<String>,
    topics: Vec<String>,
    cashtags: usize,
    hashtags: usize,
    mentions: usize,
    /// Configured projects and keywords already found.
    project_seen: Seen,
    keyword_seen: Seen,
}

/// A set of small indices; no allocation up to 64 of them.
enum Seen {
    Small(u64),
    Large(Vec<bool>),
}

impl Seen {
    fn new(n: usize) -> Self {
        if n <= 64 {
            Seen::Small(0)
        } else {
            Seen::Large(vec![false; n])
        }
    }

    /// Marks `i`; true when it was not marked yet (false when out of range).
    fn insert(&mut self, i: usize) -> bool {
        match self {
            Seen::Small(bits) => {
                if i >= 64 {
                    return false;
                }
                let new = *bits & (1 << i) == 0;
                *bits |= 1 << i;
                new
            }
            Seen::Large(v) => match v.get_mut(i) {
                Some(seen) => !std::mem::replace(seen, true),
                None => false,
            },
        }
    }

    fn contains(&self, i: usize) -> bool {
        match self {
            Seen::Small(bits) => i < 64 && *bits & (1 << i) != 0,
            Seen::Large(v) => v.get(i).copied().unwrap_or(false),
        }
    }
}

/// Lower-case words of the current phrase chain joined by one space, and
/// where each starts; at most `max_phrase_words` are kept.
#[derive(Default)]
struct Chain {
    lower: String,
    starts: [usize; MAX_PHRASE_WORDS],
    len: usize,
}

fn mention(body: &str, found: &mut Found) {
    if found.mentions >= MAX_TAGS_PER_KIND
        || body.is_empty()
        || body.len() > MAX_TAG_CHARS
        || !body.is_ascii()
    {
        return;
    }
    let mut id = String::with_capacity(body.len() + 1);
    id.push('@');
    id.extend(body.chars().map(|c| c.to_ascii_lowercase()));
    if !found.topics.contains(&id) {
        found.topics.push(id);
        found.mentions += 1;
    }
}

fn push_unique(list: &mut Vec<String>, id: &str) {
    if !list.iter().any(|x| x == id) {
        list.push(id.to_string());
    }
}

fn push_dimension(out: &mut Vec<EntityRef>, kind: EntityKind, value: Option<&str>, lower: bool) {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return;
    };
    let id = if lower && value.is_ascii() {
        value.to_ascii_lowercase()
    } else if lower {
        value.to_lowercase()
    } else {
        value.to_string()
    };
    out.push(EntityRef { kind, id });
}

/// Decodes the character starting at byte `i` (a char boundary) and its length.
#[inline]
fn char_at(text: &str, i: usize) -> (char, usize) {
    match text.as_bytes().get(i) {
        Some(&b) if b.is_ascii() => (char::from(b), 1),
        _ => text
            .get(i..)
            .and_then(|s| s.chars().next())
            .map(|c| (c, c.len_utf8()))
            .unwrap_or((' ', 1)),
    }
}

#[inline]
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        c.is_alphanumeric()
    }
}

/// End of the run of word characters starting at `i`.
fn scan_word(text: &str, mut i: usize) -> usize {
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if b.is_ascii_alphanumeric() || b == b'_' {
                i += 1;
                continue;
            }
            break;
        }
        let (c, len) = char_at(text, i);
        if !c.is_alphanumeric() {
            break;
        }
        i += len;
    }
    i
}

/// End of a tag body starting at `i`: word characters and, for mentions,
/// `.` and `-` followed by a word character.
fn scan_body(text: &str, i: usize, dotted: bool) -> usize {
    let bytes = text.as_bytes();
    let mut end = scan_word(text, i);
    if dotted {
        while end > i && matches!(bytes.get(end), Some(b'.' | b'-')) {
            let next = scan_word(text, end + 1);
            if next == end + 1 {
                break;
            }
            end = next;
        }
    }
    end
}

/// If the word at `i` starts a URL (`http://`, `https://`, `www.`), where it ends.
fn url_end(text: &str, i: usize, word: &str) -> Option<usize> {
    let rest = &text.as_bytes()[i..];
    let is_url = match word.len() {
        4 if word.eq_ignore_ascii_case("http") => rest.get(4..7) == Some(b"://"),
        5 if word.eq_ignore_ascii_case("https") => rest.get(5..8) == Some(b"://"),
        3 if word.eq_ignore_ascii_case("www") => rest.get(3) == Some(&b'.'),
        _ => false,
    };
    if !is_url {
        return None;
    }
    let end = text[i..]
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map(|(j, _)| i + j)
        .unwrap_or(text.len());
    Some(end)
}

/// Appends `word` in lower case.
#[inline]
fn push_lower(out: &mut String, word: &str) {
    if word.is_ascii() {
        let start = out.len();
        out.push_str(word);
        out[start..].make_ascii_lowercase();
    } else {
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
}

/// The words of `phrase` in lower case, joined by `sep`; and how many there are.
fn normalize_phrase(phrase: &str, sep: &str) -> (String, usize) {
    let mut out = String::with_capacity(phrase.len());
    let mut words = 0;
    let mut i = 0;
    while i < phrase.len() {
        let (c, len) = char_at(phrase, i);
        if is_word_char(c) {
            let end = scan_word(phrase, i);
            if words > 0 {
                out.push_str(sep);
            }
            push_lower(&mut out, &phrase[i..end]);
            words += 1;
            i = end;
        } else {
            i += len;
        }
    }
    (out, words)
}

fn build(cfg: &EntitiesConfig) -> Extractor {
    let mut ex = Extractor {
        kol_followers: cfg.kol_followers,
        projects: Vec::new(),
        keywords: Vec::new(),
        narratives: Vec::new(),
        phrases: WordMap::default(),
        max_phrase_words: 0,
        phrase_filter: [0; 256],
        hashtag_projects: WordMap::default(),
        topic_narratives: WordMap::default(),
    };
    let add_phrase = |ex: &mut Extractor, text: &str, hit: Hit| {
        let (key, words) = normalize_phrase(text, " ");
        if words == 0 || words > MAX_PHRASE_WORDS {
            return;
        }
        ex.max_phrase_words = ex.max_phrase_words.max(words);
        let first = key.as_bytes().first().copied().unwrap_or(0);
        ex.phrase_filter[usize::from(first)] |= 1u32 << key.len().min(31);
        let hits = ex.phrases.entry(key).or_default();
        if !hits.contains(&hit) {
            hits.push(hit);
        }
    };
    let add_hashtag = |ex: &mut Extractor, text: &str, p: u32| {
        let (key, words) = normalize_phrase(text, "");
        if words == 0 {
            return;
        }
        let list = ex.hashtag_projects.entry(key).or_default();
        if !list.contains(&p) {
            list.push(p);
        }
    };

    for project in &cfg.projects {
        let id = project.id.trim().to_uppercase();
        if id.is_empty() {
            continue;
        }
        let p = match ex.projects.iter().position(|x| *x == id) {
            Some(p) => p,
            None => {
                ex.projects.push(id.clone());
                ex.projects.len() - 1
            }
        } as u32;
        add_hashtag(&mut ex, &id, p);
        for alias in &project.aliases {
            add_phrase(&mut ex, alias, Hit::Project(p));
            add_hashtag(&mut ex, alias, p);
        }
    }
    for keyword in &cfg.keywords {
        let id = keyword.trim().to_lowercase();
        if id.is_empty() {
            continue;
        }
        let k = match ex.keywords.iter().position(|x| *x == id) {
            Some(k) => k,
            None => {
                ex.keywords.push(id.clone());
                ex.keywords.len() - 1
            }
        } as u32;
        add_phrase(&mut ex, &id, Hit::Keyword(k));
    }
    for narrative in &cfg.narratives {
        let id = narrative.id.trim().to_string();
        if id.is_empty() {
            continue;
        }
        let n = match ex.narratives.iter().position(|x| *x == id) {
            Some(n) => n,
            None => {
                ex.narratives.push(id);
                ex.narratives.len() - 1
            }
        } as u32;
        for topic in &narrative.topics {
            let topic = topic.trim().to_lowercase();
            if topic.is_empty() {
                continue;
            }
            let list = ex.topic_narratives.entry(topic).or_default();
            if !list.contains(&n) {
                list.push(n);
            }
        }
    }
    ex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NarrativeConfig, ProjectConfig};
    use crate::domain::{Author, Engagement};
    use chrono::DateTime;
    use proptest::prelude::*;

    fn post(text: &str) -> Post {
        Post {
            id: "p1".into(),
            platform: "Twitter".into(),
            channel: None,
            author: Author {
                id: "u1".into(),
                handle: "alice".into(),
                followers: 10,
                verified: false,
            },
            text: text.into(),
            lang: None,
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            engagement: Engagement::default(),
            geo: None,
            product: None,
            reply_to: None,
            repost_of: None,
        }
    }

    fn default_extractor() -> Extractor {
        Extractor::new(&EntitiesConfig::default())
    }

    fn ids(entities: &[EntityRef], kind: EntityKind) -> Vec<String> {
        entities
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.id.clone())
            .collect()
    }

    fn projects(text: &str) -> Vec<String> {
        ids(
            &default_extractor().extract(&post(text)),
            EntityKind::Project,
        )
    }

    fn topics(text: &str) -> Vec<String> {
        ids(&default_extractor().extract(&post(text)), EntityKind::Topic)
    }

    #[test]
    fn macro_user_and_platform_are_always_there_in_order() {
        let e = default_extractor().extract(&post(""));
        assert_eq!(
            e,
            vec![
                EntityRef::macro_all(),
                EntityRef::new(EntityKind::User, "u1"),
                EntityRef::new(EntityKind::Platform, "twitter"),
            ]
        );
    }

    #[test]
    fn cashtags_are_upper_case_projects_and_amounts_are_not() {
        assert_eq!(projects("$btc and $Eth, $SOL."), vec!["BTC", "ETH", "SOL"]);
        assert!(projects("I paid $100 for it").is_empty());
        assert!(projects("$BTC2 $ABCDEFGHIJK $_x $ alone").is_empty());
        assert_eq!(projects("$ABCDEFGHIJ"), vec!["ABCDEFGHIJ"]);
        // Not at a word boundary.
        assert!(projects("US$ETH").is_empty());
        assert_eq!(projects("($PEPE)"), vec!["PEPE"]);
    }

    #[test]
    fn aliases_match_on_word_boundaries_only() {
        assert_eq!(projects("Solana is fast"), vec!["SOL"]);
        assert_eq!(projects("SOLANA's fees; solana-based apps"), vec!["SOL"]);
        assert!(projects("solanaceae is a plant family").is_empty());
        assert!(projects("mysolana").is_empty());
        assert_eq!(projects("bitcoin, ethereum"), vec!["BTC", "ETH"]);
    }

    #[test]
    fn multi_word_aliases_and_keywords_match() {
        let cfg = EntitiesConfig {
            kol_followers: 100,
            projects: vec![ProjectConfig {
                id: "bnb".into(),
                aliases: vec!["BNB Chain".into(), "binance smart chain".into()],
            }],
            keywords: vec!["Customer Service".into()],
            narratives: vec![],
        };
        let ex = Extractor::new(&cfg);
        let e = ex.extract(&post(
            "BNB  chain vs the Binance Smart-Chain; customer service was slow",
        ));
        assert_eq!(ids(&e, EntityKind::Project), vec!["BNB"]);
        assert_eq!(ids(&e, EntityKind::Topic), vec!["customer service"]);
        let e = ex.extract(&post("binance smart chain"));
        assert_eq!(ids(&e, EntityKind::Project), vec!["BNB"]);
        // Punctuation breaks a phrase; a lone word of it is nothing.
        let e = ex.extract(&post("bnb, chain. customer"));
        assert!(ids(&e, EntityKind::Project).is_empty());
        assert!(ids(&e, EntityKind::Topic).is_empty());
        // A hashtag of the alias without spaces counts.
        let e = ex.extract(&post("#bnbchain"));
        assert_eq!(ids(&e, EntityKind::Project), vec!["BNB"]);
    }

    #[test]
    fn hashtags_are_lower_case_topics_and_stop_at_punctuation() {
        assert_eq!(
            topics("#DeFi, #defi; #Yield_Farming! #web3."),
            vec!["defi", "yield_farming", "web3"]
        );
        assert!(topics("#100 C#code issue#12 &#39;").is_empty());
        assert_eq!(topics("#東京"), vec!["東京"]);
        let long = format!("#{}", "a".repeat(MAX_TAG_CHARS + 1));
        assert!(topics(&long).is_empty());
    }

    #[test]
    fn hashtag_equal_to_alias_or_id_counts_for_the_project() {
        let e = default_extractor().extract(&post("#Solana #eth"));
        assert_eq!(ids(&e, EntityKind::Project), vec!["SOL", "ETH"]);
        assert_eq!(ids(&e, EntityKind::Topic), vec!["solana", "eth"]);
    }

    #[test]
    fn mentions_are_lower_case_topics() {
        assert_eq!(
            topics("hey @Alice_1, ping @bob.bsky.social. mail bob@example.com @"),
            vec!["@alice_1", "@bob.bsky.social"]
        );
        assert_eq!(topics("(@VitalikButerin)"), vec!["@vitalikbuterin"]);
    }

    #[test]
    fn keywords_match_on_word_boundaries() {
        assert_eq!(
            topics("Huge OUTAGE again, want a refund!"),
            vec!["outage", "refund"]
        );
        assert!(topics("outages refunded").is_empty());
        // Keyword and hashtag with the same id count once.
        assert_eq!(topics("#outage outage"), vec!["outage"]);
    }

    #[test]
    fn urls_are_skipped() {
        assert!(topics("see https://example.com/path#anchor?x=@me and www.solana.com").is_empty());
        assert!(projects("https://solana.com/#solana").is_empty());
        assert_eq!(topics("https://x.co #defi"), vec!["defi"]);
    }

    #[test]
    fn kol_needs_the_follower_threshold() {
        let ex = default_extractor();
        let mut p = post("gm");
        p.author.followers = 99_999;
        assert!(ids(&ex.extract(&p), EntityKind::Kol).is_empty());
        p.author.followers = 100_000;
        assert_eq!(ids(&ex.extract(&p), EntityKind::Kol), vec!["u1"]);
        assert_eq!(ids(&ex.extract(&p), EntityKind::User), vec!["u1"]);
        p.author.id = "  ".into();
        let e = ex.extract(&p);
        assert!(ids(&e, EntityKind::User).is_empty() && ids(&e, EntityKind::Kol).is_empty());
    }

    #[test]
    fn narratives_follow_topics() {
        let ex = default_extractor();
        let e = ex.extract(&post("new #ETF filing, the SEC is slow. Also #LLM #DeFi"));
        assert_eq!(
            ids(&e, EntityKind::Narrative),
            vec!["ai-agents", "defi", "regulation"]
        );
        let cfg = EntitiesConfig {
            narratives: vec![NarrativeConfig {
                id: "vitalik".into(),
                topics: vec!["@VitalikButerin".into()],
            }],
            ..EntitiesConfig::default()
        };
        let e = Extractor::new(&cfg).extract(&post("@vitalikbuterin said"));
        assert_eq!(ids(&e, EntityKind::Narrative), vec!["vitalik"]);
        assert!(ids(&ex.extract(&post("nothing here")), EntityKind::Narrative).is_empty());
    }

    #[test]
    fn dimensions_are_normalised() {
        let mut p = post("hi");
        p.platform = " Reddit ".into();
        p.channel = Some(" r/CryptoCurrency ".into());
        p.product = Some("Wallet App".into());
        p.geo = Some(" São Paulo ".into());
        let e = default_extractor().extract(&p);
        assert_eq!(ids(&e, EntityKind::Platform), vec!["reddit"]);
        assert_eq!(ids(&e, EntityKind::Channel), vec!["r/cryptocurrency"]);
        assert_eq!(ids(&e, EntityKind::Product), vec!["wallet app"]);
        assert_eq!(ids(&e, EntityKind::Geo), vec!["São Paulo"]);
        p.channel = Some("   ".into());
        p.geo = Some(String::new());
        let e = default_extractor().extract(&p);
        assert!(ids(&e, EntityKind::Channel).is_empty() && ids(&e, EntityKind::Geo).is_empty());
    }

    #[test]
    fn duplicates_are_removed_and_order_is_stable() {
        let ex = default_extractor();
        let text = "$SOL solana #solana Solana $sol #DeFi #defi @Bob @bob outage OUTAGE";
        let e = ex.extract(&post(text));
        let mut unique = e.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), e.len(), "{e:?}");
        assert_eq!(ids(&e, EntityKind::Project), vec!["SOL"]);
        assert_eq!(
            ids(&e, EntityKind::Topic),
            vec!["solana", "defi", "@bob", "outage"]
        );
        assert_eq!(
            ids(&e, EntityKind::Narrative),
            vec!["defi", "customer-churn"]
        );
        assert_eq!(e, ex.extract(&post(text)));
        let kinds: Vec<EntityKind> = e.iter().map(|e| e.kind).collect();
        let mut grouped = kinds.clone();
        grouped.dedup();
        let mut sorted = grouped.clone();
        sorted.sort_by_key(|k| {
            [
                EntityKind::Macro,
                EntityKind::User,
                EntityKind::Kol,
                EntityKind::Project,
                EntityKind::Topic,
                EntityKind::Narrative,
                EntityKind::Platform,
            ]
            .iter()
            .position(|x| x == k)
        });
        assert_eq!(grouped, sorted);
    }

    #[test]
    fn tags_are_capped_per_post() {
        let text: String = (0..100)
            .map(|i| {
                format!(
                    "#tag{i} @user{i} ${} ",
                    "ABCDEFGHIJ"
                        .chars()
                        .cycle()
                        .skip(i % 10)
                        .take(1 + i / 10)
                        .collect::<String>()
                )
            })
            .collect();
        let e = default_extractor().extract(&post(&text));
        let topics = ids(&e, EntityKind::Topic);
        assert_eq!(
            topics
                .iter()
                .filter(|t| t.starts_with('#') || t.starts_with("tag"))
                .count(),
            MAX_TAGS_PER_KIND
        );
        assert_eq!(
            topics.iter().filter(|t| t.starts_with('@')).count(),
            MAX_TAGS_PER_KIND
        );
        assert_eq!(ids(&e, EntityKind::Project).len(), MAX_TAGS_PER_KIND);
        assert_eq!(topics[0], "tag0");
    }

    #[test]
    fn empty_configuration_still_extracts_tags() {
        let cfg = EntitiesConfig {
            kol_followers: 0,
            projects: vec![],
            keywords: vec![],
            narratives: vec![],
        };
        let e = Extractor::new(&cfg).extract(&post("$BTC #btc bitcoin"));
        assert_eq!(ids(&e, EntityKind::Project), vec!["BTC"]);
        assert_eq!(ids(&e, EntityKind::Topic), vec!["btc"]);
        assert_eq!(ids(&e, EntityKind::Kol), vec!["u1"]);
    }

    #[test]
    fn large_configurations_and_long_phrases() {
        let projects = (0..100)
            .map(|i| ProjectConfig {
                id: format!("p{i}"),
                aliases: vec![format!("alias{i}")],
            })
            .collect();
        let cfg = EntitiesConfig {
            kol_followers: 1,
            projects,
            keywords: vec!["one two three four five six seven eight nine".into()],
            narratives: vec![],
        };
        let ex = Extractor::new(&cfg);
        let e = ex.extract(&post("alias99 alias3 Alias99 #p70 $P3"));
        assert_eq!(ids(&e, EntityKind::Project), vec!["P99", "P3", "P70"]);
        let e = ex.extract(&post("one two three four five six seven eight nine"));
        assert!(ids(&e, EntityKind::Topic).is_empty());
    }

    proptest! {
        #[test]
        fn extract_never_panics_and_includes_macro(text in any::<String>()) {
            let e = default_extractor().extract(&post(&text));
            prop_assert_eq!(e.first(), Some(&EntityRef::macro_all()));
            prop_assert!(e.iter().all(|x| !x.id.is_empty()));
        }

        #[test]
        fn extract_on_tag_heavy_text_is_unique(
            text in "(\\$[A-Za-z0-9]{0,12}|#[a-zA-Z0-9_é東]{0,6}|@[a-z.\\-]{0,6}|solana|bnb chain|outage|https://|www\\.|[ ,.\\-!?]|😂|é){0,80}"
        ) {
            let e = default_extractor().extract(&post(&text));
            prop_assert_eq!(e.first(), Some(&EntityRef::macro_all()));
            let mut unique = e.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), e.len());
            prop_assert!(e.iter().all(|x| !x.id.is_empty()));
        }
    }
}
