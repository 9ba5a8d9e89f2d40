//! The hashed lexicon table stored with the fast model.
//!
//! At training time the VADER and AFINN word lexicons, the VADER emoji
//! descriptions, the Emoji Sentiment Ranking and the built-in negation and
//! churn cue lists are folded into one table keyed by the same 64-bit token
//! hash the feature extractor computes (and, for two-word entries, by the
//! bigram hash). At run time a token costs one probe of an open-addressing
//! table: no string is compared and nothing is allocated.
//!
//! File format (`lexicon.bin`, little endian): the magic `SFLEX001`, a `u32`
//! entry count, then per entry, sorted by key: `u64` key, `f32` VADER
//! valence, `f32` AFINN valence, `f32` emoji-ranking score, `u32` flags.

use super::FastModelError;

/// The token is a negation word ("not", "never", "don't", …).
pub const NEGATION: u32 = 1;
/// The token is an ASCII emoticon looked up as a whole chunk (":)", ":-(").
pub const EMOTICON: u32 = 1 << 1;
/// The token is an emoji the lexicons know.
pub const EMOJI: u32 = 1 << 2;
/// A strong churn cue: "unsubscribe", "refund", "switching to", "done with".
pub const CHURN_STRONG: u32 = 1 << 3;
/// A weak churn cue: "leaving", "subscription", "competitor", "account".
pub const CHURN_WEAK: u32 = 1 << 4;

const MAGIC: &[u8; 8] = b"SFLEX001";
const ENTRY_BYTES: usize = 8 + 4 + 4 + 4 + 4;

/// What the lexicons say about one token or bigram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LexEntry {
    /// VADER valence (−4..4); for emoji, the summed valence of its description.
    pub vader: f32,
    /// AFINN-165 valence (−5..5).
    pub afinn: f32,
    /// Emoji Sentiment Ranking score, (positive − negative) / (occurrences + 3).
    pub emoji: f32,
    /// Bit set of [`NEGATION`], [`EMOTICON`], [`EMOJI`], [`CHURN_STRONG`], [`CHURN_WEAK`].
    pub flags: u32,
}

/// An open-addressing hash table from token hash to [`LexEntry`].
#[derive(Debug, Clone, PartialEq)]
pub struct Lexicon {
    /// Entries sorted by key (the serialized form).
    entries: Vec<(u64, LexEntry)>,
    /// Slot keys, 0 = empty; length is a power of two.
    keys: Vec<u64>,
    /// Index into `entries` per slot.
    slots: Vec<u32>,
    mask: usize,
}

/// Keys are never 0 (0 marks an empty slot).
#[inline]
fn nonzero(key: u64) -> u64 {
    if key == 0 {
        1
    } else {
        key
    }
}

impl Lexicon {
    /// Builds the table from (key, entry) pairs; entries with the same key are merged
    /// (valences: the first non-zero wins; flags: united).
    pub fn from_entries(pairs: impl IntoIterator<Item = (u64, LexEntry)>) -> Self {
        let mut entries: Vec<(u64, LexEntry)> = Vec::new();
        let mut sorted: Vec<(u64, LexEntry)> =
            pairs.into_iter().map(|(k, e)| (nonzero(k), e)).collect();
        sorted.sort_by_key(|(k, _)| *k); // stable: merge order = insertion order
        for (k, e) in sorted {
            match entries.last_mut() {
                Some((lk, le)) if *lk == k => {
                    if le.vader == 0.0 {
                        le.vader = e.vader;
                    }
                    if le.afinn == 0.0 {
                        le.afinn = e.afinn;
                    }
                    if le.emoji == 0.0 {
                        le.emoji = e.emoji;
                    }
                    le.flags |= e.flags;
                }
                _ => entries.push((k, e)),
            }
        }
        Self::index(entries)
    }

    fn index(entries: Vec<(u64, LexEntry)>) -> Self {
        let cap = (entries.len() * 2).max(16).next_power_of_two();
        let mask = cap - 1;
        let mut keys = vec![0u64; cap];
        let mut slots = vec![0u32; cap];
        for (i, (k, _)) in entries.iter().enumerate() {
            let mut s = (super::features::fmix(*k) as usize) & mask;
            while keys[s] != 0 {
                s = (s + 1) & mask;
            }
            keys[s] = *k;
            slots[s] = i as u32;
        }
        Lexicon {
            entries,
            keys,
            slots,
            mask,
        }
    }

    /// An empty lexicon.
    pub fn empty() -> Self {
        Self::index(Vec::new())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for a token or bigram hash.
    #[inline]
    pub fn get(&self, key: u64) -> Option<&LexEntry> {
        let key = nonzero(key);
        let mut s = (super::features::fmix(key) as usize) & self.mask;
        loop {
            let k = self.keys[s];
            if k == key {
                return Some(&self.entries[self.slots[s] as usize].1);
            }
            if k == 0 {
                return None;
            }
            s = (s + 1) & self.mask;
        }
    }

    /// Serializes to the `lexicon.bin` format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.entries.len() * ENTRY_BYTES);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (k, e) in &self.entries {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&e.vader.to_le_bytes());
            out.extend_from_slice(&e.afinn.to_le_bytes());
            out.extend_from_slice(&e.emoji.to_le_bytes());
            out.extend_from_slice(&e.flags.to_le_bytes());
        }
        out
    }

    /// Parses the `lexicon.bin` format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FastModelError> {
        let bad = |why: &str| FastModelError::Format(format!("lexicon.bin: {why}"));
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(bad("bad magic"));
        }
        let n = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let body = &bytes[12..];
        if body.len() != n * ENTRY_BYTES {
            return Err(bad("length does not match the entry count"));
        }
        let mut entries = Vec::with_capacity(n);
        let f32_at = |c: &[u8], i: usize| f32::from_le_bytes(c[i..i + 4].try_into().expect("4"));
        for c in body.chunks_exact(ENTRY_BYTES) {
            let k = u64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
            let e = LexEntry {
                vader: f32_at(c, 8),
                afinn: f32_at(c, 12),
                emoji: f32_at(c, 16),
                flags: u32::from_le_bytes(c[20..24].try_into().expect("4 bytes")),
            };
            if !(e.vader.is_finite() && e.afinn.is_finite() && e.emoji.is_finite()) {
                return Err(bad("non-finite valence"));
            }
            if k == 0
                || entries
                    .last()
                    .is_some_and(|(lk, _): &(u64, LexEntry)| *lk >= k)
            {
                return Err(bad("keys not strictly increasing"));
            }
            entries.push((k, e));
        }
        Ok(Self::index(entries))
    }
}

/// Negation words (VADER's list, with and without apostrophes).
pub const NEGATIONS: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
    "no",
    "nobody",
];

/// Strong churn cues: words and word pairs that on their own say the author
/// is leaving, cancelling or wants their money back.
pub const CHURN_STRONG_CUES: &[&str] = &[
    "cancel",
    "cancels",
    "cancelling",
    "canceling",
    "cancelled",
    "canceled",
    "cancellation",
    "unsubscribe",
    "unsubscribed",
    "unsubscribing",
    "unsubscribes",
    "refund",
    "refunds",
    "refunded",
    "chargeback",
    "uninstall",
    "uninstalled",
    "uninstalling",
    "churn",
    "churning",
    "switching to",
    "switch to",
    "switched to",
    "moving to",
    "moved to",
    "done with",
    "close my",
    "closing my",
    "closed my",
    "delete my",
    "deleting my",
    "deleted my",
    "cancel my",
    "terminate my",
    "terminating my",
    "money back",
    "not renewing",
    "won't renew",
    "wont renew",
    "not renew",
    "going back",
    "never again",
    "fed up",
    "had enough",
    "my business",
    "last straw",
    "goodbye",
    "leaving for",
    "quit using",
    "stop using",
    "stopped using",
    "stopping my",
    "port my",
    "porting my",
];

/// Weak churn cues: words that make churn more likely only with other evidence.
pub const CHURN_WEAK_CUES: &[&str] = &[
    "leave",
    "leaving",
    "left",
    "switch",
    "switching",
    "switched",
    "quit",
    "quitting",
    "done",
    "bye",
    "competitor",
    "competitors",
    "alternative",
    "alternatives",
    "delete",
    "deleting",
    "close",
    "closing",
    "renew",
    "renewal",
    "subscription",
    "membership",
    "account",
    "plan",
    "contract",
    "provider",
    "elsewhere",
    "instead",
    "anymore",
    "terminate",
    "downgrade",
    "downgrading",
    "overcharged",
    "charged",
    "billing",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let lex = Lexicon::from_entries((1..200u64).map(|k| {
            (
                k * 7919,
                LexEntry {
                    vader: k as f32 / 10.0,
                    afinn: -(k as f32),
                    emoji: 0.5,
                    flags: (k % 4) as u32,
                },
            )
        }));
        assert_eq!(lex.len(), 199);
        let back = Lexicon::from_bytes(&lex.to_bytes()).unwrap();
        assert_eq!(back, lex);
        assert_eq!(back.get(7919 * 3).unwrap().afinn, -3.0);
        assert!(back.get(12345).is_none());
        assert!(Lexicon::from_bytes(b"nonsense").is_err());
        let mut truncated = lex.to_bytes();
        truncated.pop();
        assert!(Lexicon::from_bytes(&truncated).is_err());
    }

    #[test]
    fn duplicates_merge() {
        let lex = Lexicon::from_entries([
            (
                5,
                LexEntry {
                    vader: 1.0,
                    flags: NEGATION,
                    ..Default::default()
                },
            ),
            (
                5,
                LexEntry {
                    afinn: 2.0,
                    flags: EMOJI,
                    ..Default::default()
                },
            ),
        ]);
        assert_eq!(lex.len(), 1);
        let e = lex.get(5).unwrap();
        assert_eq!((e.vader, e.afinn, e.flags), (1.0, 2.0, NEGATION | EMOJI));
        assert!(Lexicon::empty().get(5).is_none());
    }
}
