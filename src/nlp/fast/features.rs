//! Tokenisation and feature hashing for the fast classifier.
//!
//! One pass over the text fills a reused [`Scratch`]: the tokens (lower-cased
//! into one byte buffer), then the bucket index of every hashed feature and
//! the small dense feature vector. Nothing is allocated per feature; once the
//! scratch buffers have grown to a post's size, nothing is allocated at all.
//!
//! Tokens (whitespace-separated chunks are split further):
//! - words: letters, digits and `_`, with inner apostrophes (`’` → `'`);
//!   lower-cased; every digit becomes `0`; a letter repeated more than twice
//!   is cut to two ("soooo" → "soo", flagged elongated);
//! - `#tag` is the word `tag` plus a hashtag feature; `@name` is `@user`;
//!   chunks starting with `http://`, `https://` or `www.` are `<url>`;
//! - `!` and `?` runs are tokens (`!` or `!!` for a run of two or more);
//!   `. , ; : ! ?` end a clause (negation scope);
//! - ASCII emoticons (`:)`, `:-(`, `<3`) are recognised as whole chunks
//!   through the lexicon; any other non-ASCII symbol (emoji) is a token of its
//!   own, with variation selectors, skin tones and zero-width joiners dropped.
//!
//! Hashed features (each a bucket index in `0..2^bits`):
//! - every token (xxh3 with a fixed seed), plus a negated copy of words in a
//!   negation scope (the three words after a negation word, within the
//!   clause), plus a hashtag copy for hashtags;
//! - word bigrams, with begin and end markers;
//! - byte n-grams (`char_min..=char_max`) of `<word>` for words and hashtags
//!   (words over [`MAX_NGRAM_WORD`] bytes contribute their first bytes only).
//!
//! Dense features ([`DENSE_NAMES`]) are squashed sums of lexicon valences and
//! counts, each in −1..1; see [`DENSE_NAMES`] for the list.

use super::lexicon::{self, Lexicon};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Number of dense features.
pub const N_DENSE: usize = 16;
/// Names of the dense features, in order (stored in the model for reference).
pub const DENSE_NAMES: [&str; N_DENSE] = [
    "vader_pos",
    "vader_neg",
    "vader_sum",
    "afinn_pos",
    "afinn_neg",
    "emoji_rank",
    "emoji_count",
    "exclamations",
    "questions",
    "allcaps_ratio",
    "elongated",
    "negations",
    "churn_strong",
    "churn_weak",
    "length",
    "p_negative",
];
/// Index of the dense slot that holds the sentiment head's p(negative); it is
/// filled after the sentiment head and read by the churn head only.
pub const DENSE_P_NEG: usize = 15;
/// Longest word (in bytes) whose byte n-grams are all hashed.
pub const MAX_NGRAM_WORD: usize = 24;

const SEED_TOKEN: u64 = 0x5354_4152_4c49_4e47;
const SALT_NEG: u64 = 0x9e37_79b9_7f4a_7c15;
const SALT_HASHTAG: u64 = 0xc2b2_ae3d_27d4_eb4f;
const SALT_BIGRAM: u64 = 0x1656_67b1_9e37_79f9;
const SALT_CHAR: u64 = 0xcbf2_9ce4_8422_2325;
const BOS: u64 = 0x2545_f491_4f6c_dd1d;
const EOS: u64 = 0x6a09_e667_f3bc_c909;
const URL_TOKEN: &[u8] = b"<url>";
const USER_TOKEN: &[u8] = b"@user";

/// Feature settings stored in the model (`model.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// log2 of the number of hash buckets.
    pub bits: u32,
    /// Shortest byte n-gram of a word (0 disables n-grams).
    pub char_min: usize,
    /// Longest byte n-gram of a word.
    pub char_max: usize,
    /// Longest prefix of a text read, in bytes (cut on a character boundary).
    pub max_bytes: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            bits: 17,
            char_min: 3,
            char_max: 5,
            max_bytes: 4096,
        }
    }
}

/// Murmur3's 64-bit finaliser: a cheap, well-mixing bijection.
#[inline]
pub fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Hash of a normalised token's bytes.
#[inline]
pub fn token_hash(bytes: &[u8]) -> u64 {
    xxh3_64_with_seed(bytes, SEED_TOKEN)
}

/// Hash of a pair of token hashes (ordered).
#[inline]
pub fn bigram_hash(a: u64, b: u64) -> u64 {
    fmix(a.rotate_left(23) ^ b ^ SALT_BIGRAM)
}

/// Bucket of a feature hash: Fibonacci hashing of the folded hash (one
/// multiply; the top bits of the product are well mixed).
#[inline]
fn bucket(h: u64, shift: u32) -> u32 {
    ((h ^ (h >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as u32
}

/// Kind of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A word.
    Word,
    /// The word of a `#hashtag`.
    Hashtag,
    /// `@user`.
    Mention,
    /// `<url>`.
    Url,
    /// An emoji or other symbol.
    Emoji,
    /// An ASCII emoticon known to the lexicon.
    Emoticon,
    /// `!`, `!!`, `?`, `??`.
    Punct,
}

const T_CLAUSE: u8 = 1;
const T_CAPS: u8 = 2;
const T_ELONG: u8 = 4;

/// A token: a span of [`Scratch::buf`] and its hash.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    start: u32,
    end: u32,
    /// Hash of the normalised bytes.
    pub hash: u64,
    /// What it is.
    pub kind: Kind,
    flags: u8,
}

/// Reused per-thread buffers: tokens, hashed feature buckets, dense features.
#[derive(Debug, Clone)]
pub struct Scratch {
    buf: Vec<u8>,
    tokens: Vec<Token>,
    /// Bucket index of every hashed feature occurrence.
    pub ids: Vec<u32>,
    /// Dense features; [`DENSE_P_NEG`] is left at 0.
    pub dense: [f32; N_DENSE],
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            buf: Vec::with_capacity(512),
            tokens: Vec::with_capacity(64),
            ids: Vec::with_capacity(1024),
            dense: [0.0; N_DENSE],
        }
    }
}

impl Scratch {
    /// The tokens of the last text, as normalised strings (for tests and debugging).
    pub fn token_strings(&self) -> Vec<String> {
        self.tokens
            .iter()
            .map(|t| String::from_utf8_lossy(self.token_bytes(t)).into_owned())
            .collect()
    }

    /// The tokens of the last text.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    fn token_bytes(&self, t: &Token) -> &[u8] {
        &self.buf[t.start as usize..t.end as usize]
    }
}

pub use crate::nlp::truncate;

#[inline]
fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{FE00}'..='\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{200B}'..='\u{200F}'
        | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{E0020}'..='\u{E007F}')
}

#[inline]
fn is_url(chunk: &[u8]) -> bool {
    let starts = |p: &[u8]| chunk.len() >= p.len() && chunk[..p.len()].eq_ignore_ascii_case(p);
    starts(b"http://") || starts(b"https://") || starts(b"www.")
}

/// Word being built in `Scratch::buf`.
struct Word {
    start: usize,
    kind: Kind,
    letters: u16,
    upper: u16,
    last: char,
    run: u8,
    elongated: bool,
}

impl Word {
    fn new(start: usize) -> Self {
        Word {
            start,
            kind: Kind::Word,
            letters: 0,
            upper: 0,
            last: '\0',
            run: 0,
            elongated: false,
        }
    }
}

struct Tokenizer<'a> {
    lex: &'a Lexicon,
    pending_clause: bool,
}

impl Tokenizer<'_> {
    fn push(&mut self, s: &mut Scratch, start: usize, kind: Kind, flags: u8) {
        let end = s.buf.len();
        let hash = token_hash(&s.buf[start..end]);
        let mut flags = flags;
        if self.pending_clause {
            flags |= T_CLAUSE;
            self.pending_clause = false;
        }
        s.tokens.push(Token {
            start: start as u32,
            end: end as u32,
            hash,
            kind,
            flags,
        });
    }

    fn push_bytes(&mut self, s: &mut Scratch, bytes: &[u8], kind: Kind) {
        let start = s.buf.len();
        s.buf.extend_from_slice(bytes);
        self.push(s, start, kind, 0);
    }

    fn flush(&mut self, s: &mut Scratch, w: &mut Option<Word>) {
        let Some(word) = w.take() else { return };
        match word.kind {
            Kind::Mention => {
                s.buf.truncate(word.start);
                self.push_bytes(s, USER_TOKEN, Kind::Mention);
            }
            _ if s.buf.len() == word.start => {}
            kind => {
                let mut flags = 0;
                if word.letters >= 2 && word.upper == word.letters {
                    flags |= T_CAPS;
                }
                if word.elongated {
                    flags |= T_ELONG;
                }
                self.push(s, word.start, kind, flags);
            }
        }
    }

    fn chunk(&mut self, s: &mut Scratch, chunk: &str) {
        let b = chunk.as_bytes();
        if is_url(b) {
            self.push_bytes(s, URL_TOKEN, Kind::Url);
            return;
        }
        if (2..=6).contains(&b.len())
            && chunk.is_ascii()
            && b.iter().any(|c| c.is_ascii_punctuation() && *c != b'\'')
        {
            let h = token_hash(b);
            if self
                .lex
                .get(h)
                .is_some_and(|e| e.flags & lexicon::EMOTICON != 0)
            {
                self.push_bytes(s, b, Kind::Emoticon);
                return;
            }
        }
        let mut word: Option<Word> = None;
        let mut chars = chunk.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_alphanumeric() || c == '_' {
                let w = word.get_or_insert_with(|| Word::new(s.buf.len()));
                if w.kind == Kind::Mention {
                    continue; // the name itself is not kept
                }
                if c == w.last {
                    if w.run >= 2 && !c.is_ascii_digit() {
                        w.elongated = true;
                        continue;
                    }
                    w.run += 1;
                } else {
                    w.last = c;
                    w.run = 1;
                }
                if c.is_ascii() {
                    let mut byte = c as u8;
                    if byte.is_ascii_digit() {
                        byte = b'0';
                    } else if byte.is_ascii_alphabetic() {
                        w.letters = w.letters.saturating_add(1);
                        if byte.is_ascii_uppercase() {
                            w.upper = w.upper.saturating_add(1);
                            byte = byte.to_ascii_lowercase();
                        }
                    }
                    s.buf.push(byte);
                } else {
                    if c.is_alphabetic() {
                        w.letters = w.letters.saturating_add(1);
                        if c.is_uppercase() {
                            w.upper = w.upper.saturating_add(1);
                        }
                    }
                    let mut tmp = [0u8; 4];
                    for l in c.to_lowercase() {
                        s.buf.extend_from_slice(l.encode_utf8(&mut tmp).as_bytes());
                    }
                }
                continue;
            }
            let next_is_word = chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '_');
            if (c == '\'' || c == '’') && next_is_word {
                if let Some(w) = word.as_mut() {
                    if w.kind != Kind::Mention && s.buf.len() > w.start {
                        s.buf.push(b'\'');
                        w.last = '\'';
                        w.run = 1;
                        continue;
                    }
                }
            }
            if (c == '@' || c == '#') && word.is_none() && next_is_word {
                let mut w = Word::new(s.buf.len());
                w.kind = if c == '@' {
                    Kind::Mention
                } else {
                    Kind::Hashtag
                };
                word = Some(w);
                continue;
            }
            self.flush(s, &mut word);
            match c {
                '!' | '?' => {
                    let mut run = 1;
                    while chars.peek() == Some(&c) {
                        chars.next();
                        run += 1;
                    }
                    let text: &[u8] = match (c, run) {
                        ('!', 1) => b"!",
                        ('!', _) => b"!!",
                        ('?', 1) => b"?",
                        _ => b"??",
                    };
                    self.push_bytes(s, text, Kind::Punct);
                    self.pending_clause = true;
                }
                '.' | ',' | ';' | ':' | '…' => self.pending_clause = true,
                c if (c as u32) < 0x2190 || is_ignorable(c) || c.is_whitespace() => {}
                c => {
                    let mut tmp = [0u8; 4];
                    self.push_bytes(s, c.encode_utf8(&mut tmp).as_bytes(), Kind::Emoji);
                }
            }
        }
        self.flush(s, &mut word);
    }
}

/// Splits `text` (already truncated) into tokens in `s`.
pub fn tokenize(text: &str, lex: &Lexicon, s: &mut Scratch) {
    s.buf.clear();
    s.tokens.clear();
    let mut t = Tokenizer {
        lex,
        pending_clause: false,
    };
    for chunk in text.split_whitespace() {
        t.chunk(s, chunk);
    }
}

/// Tokenises `text` and fills `s.ids` and `s.dense`.
pub fn extract(text: &str, cfg: &FeatureConfig, lex: &Lexicon, s: &mut Scratch) {
    let text = truncate(text, cfg.max_bytes);
    tokenize(text, lex, s);
    s.ids.clear();
    let shift = 64 - cfg.bits;
    let (cmin, cmax) = (cfg.char_min, cfg.char_max);
    let mut vpos = 0f32;
    let mut vneg = 0f32;
    let mut apos = 0f32;
    let mut aneg = 0f32;
    let mut emoji_rank = 0f32;
    let mut emoji_n = 0f32;
    let mut excl = 0f32;
    let mut ques = 0f32;
    let mut words = 0f32;
    let mut caps = 0f32;
    let mut elong = 0f32;
    let mut negs = 0f32;
    let mut churn_s = 0f32;
    let mut churn_w = 0f32;
    let mut neg_left = 0u8;
    let mut prev = BOS;
    let Scratch {
        buf, tokens, ids, ..
    } = s;
    for t in tokens.iter() {
        if t.flags & T_CLAUSE != 0 {
            neg_left = 0;
        }
        let is_word = matches!(t.kind, Kind::Word | Kind::Hashtag);
        let negated = is_word && neg_left > 0;
        ids.push(bucket(t.hash, shift));
        if negated {
            ids.push(bucket(t.hash ^ SALT_NEG, shift));
        }
        if t.kind == Kind::Hashtag {
            ids.push(bucket(t.hash ^ SALT_HASHTAG, shift));
        }
        let bg = bigram_hash(prev, t.hash);
        ids.push(bucket(bg, shift));
        prev = t.hash;
        if let Some(e) = lex.get(bg) {
            vpos += e.vader.max(0.0);
            vneg += (-e.vader).max(0.0);
            apos += e.afinn.max(0.0);
            aneg += (-e.afinn).max(0.0);
            if e.flags & lexicon::CHURN_STRONG != 0 {
                churn_s += 1.0;
            }
        }
        if is_word {
            words += 1.0;
            if t.flags & T_CAPS != 0 {
                caps += 1.0;
            }
            if t.flags & T_ELONG != 0 {
                elong += 1.0;
            }
            if cmin > 0 {
                let w = &buf[t.start as usize..t.end as usize];
                let w = &w[..w.len().min(MAX_NGRAM_WORD)];
                let mut padded = [0u8; MAX_NGRAM_WORD + 2];
                padded[0] = b'<';
                padded[1..=w.len()].copy_from_slice(w);
                padded[w.len() + 1] = b'>';
                let padded = &padded[..w.len() + 2];
                for i in 0..padded.len() {
                    let mut h = SALT_CHAR;
                    for (len, &byte) in padded[i..].iter().take(cmax).enumerate() {
                        h = (h ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
                        if len + 1 >= cmin {
                            ids.push(bucket(h ^ (len as u64 + 1), shift));
                        }
                    }
                }
            }
        }
        match t.kind {
            Kind::Punct => {
                let n = if t.end - t.start > 1 { 2.0 } else { 1.0 };
                if buf[t.start as usize] == b'!' {
                    excl += n;
                } else {
                    ques += n;
                }
            }
            Kind::Emoji => emoji_n += 1.0,
            _ => {}
        }
        if let Some(e) = lex.get(t.hash) {
            let mut v = e.vader;
            let mut a = e.afinn;
            if negated {
                v *= -0.74;
                a *= -0.74;
            }
            vpos += v.max(0.0);
            vneg += (-v).max(0.0);
            apos += a.max(0.0);
            aneg += (-a).max(0.0);
            emoji_rank += e.emoji;
            if e.flags & lexicon::CHURN_STRONG != 0 {
                churn_s += 1.0;
            }
            if e.flags & lexicon::CHURN_WEAK != 0 {
                churn_w += 1.0;
            }
            if e.flags & lexicon::NEGATION != 0 {
                negs += 1.0;
                neg_left = 4; // decremented below: the next three words
            }
        }
        if is_word {
            neg_left = neg_left.saturating_sub(1);
        }
    }
    ids.push(bucket(bigram_hash(prev, EOS), shift));
    let d = &mut s.dense;
    d[0] = (vpos / 4.0).tanh();
    d[1] = (vneg / 4.0).tanh();
    d[2] = ((vpos - vneg) / 4.0).tanh();
    d[3] = (apos / 5.0).tanh();
    d[4] = (aneg / 5.0).tanh();
    d[5] = emoji_rank.tanh();
    d[6] = (emoji_n / 3.0).tanh();
    d[7] = (excl / 3.0).tanh();
    d[8] = (ques / 3.0).tanh();
    d[9] = if words > 0.0 { caps / words } else { 0.0 };
    d[10] = elong.tanh();
    d[11] = (negs / 2.0).tanh();
    d[12] = churn_s.tanh();
    d[13] = (churn_w / 2.0).tanh();
    d[14] = (s.tokens.len() as f32 / 30.0).tanh();
    d[DENSE_P_NEG] = 0.0;
}

/// Normalised token strings of `text` (emoticons are recognised through `lex`).
pub fn tokens_of(text: &str, lex: &Lexicon) -> Vec<String> {
    let mut s = Scratch::default();
    tokenize(text, lex, &mut s);
    s.token_strings()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn toks(text: &str) -> Vec<String> {
        tokens_of(text, &Lexicon::empty())
    }

    #[test]
    fn tokenizer_normalises() {
        assert_eq!(
            toks("Soooo GOOD!!! @Bob #WinterIsHere https://t.co/x I’m 3.39"),
            [
                "soo",
                "good",
                "!!",
                "@user",
                "winterishere",
                "<url>",
                "i'm",
                "0",
                "00"
            ]
        );
        assert_eq!(toks("😂lol ❤️👍🏽"), ["😂", "lol", "❤", "👍"]);
        assert_eq!(toks("don't, can’t?"), ["don't", "can't", "?"]);
        assert_eq!(toks("   "), Vec::<String>::new());
        assert_eq!(toks("ÉCOLE Straße"), ["école", "straße"]);
    }

    #[test]
    fn emoticons_come_from_the_lexicon() {
        let lex = Lexicon::from_entries([(
            token_hash(b":)"),
            lexicon::LexEntry {
                vader: 2.0,
                flags: lexicon::EMOTICON,
                ..Default::default()
            },
        )]);
        assert_eq!(tokens_of("nice :) day", &lex), ["nice", ":)", "day"]);
        assert_eq!(tokens_of("nice :( day", &lex), ["nice", "day"]);
    }

    #[test]
    fn features_are_deterministic_and_in_range() {
        let cfg = FeatureConfig::default();
        let lex = Lexicon::empty();
        let mut a = Scratch::default();
        let mut b = Scratch::default();
        extract("I love this so much!", &cfg, &lex, &mut a);
        extract("totally different text first", &cfg, &lex, &mut b);
        extract("I love this so much!", &cfg, &lex, &mut b);
        assert_eq!(a.ids, b.ids);
        assert!(a.ids.iter().all(|&i| i < 1 << cfg.bits));
        // 5 words + "!": unigrams, bigrams (+EOS), n-grams.
        assert!(a.ids.len() > 12, "{}", a.ids.len());
        // Case and elongation do not change the word features.
        extract("I LOOOVE this", &cfg, &lex, &mut a);
        extract("i loove this", &cfg, &lex, &mut b);
        assert_eq!(a.ids, b.ids);
        assert!(a.dense[9] > 0.0 && a.dense[10] > 0.0);
    }

    #[test]
    fn negation_scope_and_lexicon_valence() {
        let lex = Lexicon::from_entries([
            (
                token_hash(b"not"),
                lexicon::LexEntry {
                    flags: lexicon::NEGATION,
                    ..Default::default()
                },
            ),
            (
                token_hash(b"good"),
                lexicon::LexEntry {
                    vader: 1.9,
                    ..Default::default()
                },
            ),
        ]);
        let cfg = FeatureConfig::default();
        let mut s = Scratch::default();
        extract("this is good", &cfg, &lex, &mut s);
        assert!(s.dense[0] > 0.0 && s.dense[1] == 0.0);
        extract("this is not very good", &cfg, &lex, &mut s);
        assert!(s.dense[0] == 0.0 && s.dense[1] > 0.0, "{:?}", s.dense);
        // A clause break ends the scope.
        extract("not now. good", &cfg, &lex, &mut s);
        assert!(s.dense[0] > 0.0 && s.dense[1] == 0.0, "{:?}", s.dense);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let t = "é".repeat(10);
        assert_eq!(truncate(&t, 5), "éé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    proptest! {
        #[test]
        fn never_panics_and_ids_in_range(text in any::<String>(), bits in 4u32..20) {
            let cfg = FeatureConfig { bits, char_min: 2, char_max: 6, max_bytes: 256 };
            let mut s = Scratch::default();
            extract(&text, &cfg, &Lexicon::empty(), &mut s);
            prop_assert!(s.ids.iter().all(|&i| i < 1 << bits));
            prop_assert!(s.dense.iter().all(|d| d.is_finite() && d.abs() <= 1.0));
        }

        #[test]
        fn tweetish_text_never_panics(
            text in "([a-zA-Z!?'’.,:;]{1,8}|😂|❤️|👍🏽|@[a-z]{1,5}|#[a-zA-Z]{1,6}|https://x\\.co/[a-z]{2}|[ \\n\\t]|not|:\\)){0,40}"
        ) {
            let cfg = FeatureConfig::default();
            let mut s = Scratch::default();
            extract(&text, &cfg, &Lexicon::empty(), &mut s);
            prop_assert!(!s.ids.is_empty());
            for t in s.token_strings() {
                prop_assert!(!t.is_empty());
                prop_assert!(!t.chars().any(char::is_whitespace));
            }
        }
    }
}
