//! The known data set of `rest-lookups`: deterministic posts over a fixed
//! set of authors, `$PROJECT`s, `#topic`s, platforms, cities and products,
//! with `created_at` spread evenly over the minutes before the seed.

use crate::config::SeedConfig;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Cashtags used by the seed (the first `projects` of them).
pub const PROJECTS: &[&str] = &[
    "BTC", "ETH", "SOL", "DOGE", "ADA", "AVAX", "LINK", "ARB", "NEAR", "ATOM", "DOT", "XRP", "LTC",
    "UNI", "APT", "SUI", "OP", "TIA", "INJ", "SEI", "FTM", "ALGO", "HBAR", "ICP", "FIL", "AAVE",
    "MKR", "RUNE", "STX", "IMX",
];

/// Hashtags used by the seed (the first `topics` of them), lower case.
pub const TOPICS: &[&str] = &[
    "staking",
    "defi",
    "nft",
    "airdrop",
    "layer2",
    "bridge",
    "wallet",
    "mining",
    "halving",
    "memecoin",
    "dex",
    "yield",
    "governance",
    "rugpull",
    "bullrun",
    "bearmarket",
    "ai",
    "gaming",
    "metaverse",
    "privacy",
    "zk",
    "rollup",
    "oracle",
    "stablecoin",
    "lending",
    "custody",
    "tax",
    "scam",
    "launch",
    "roadmap",
    "devs",
    "onchain",
    "validator",
    "gasfees",
    "ordinals",
    "restaking",
    "depin",
    "rwa",
    "sec",
    "etf",
];

/// Platforms of the seed.
pub const PLATFORMS: &[&str] = &["twitter", "reddit", "bluesky", "telegram"];
/// Cities of the seed (`geo`, on 70 % of the posts).
pub const GEOS: &[&str] = &[
    "Paris", "Lagos", "Osaka", "Lima", "Berlin", "Austin", "Seoul", "Nairobi",
];
/// Products of the seed (`product`, on 40 % of the posts), lower case.
pub const PRODUCTS: &[&str] = &["app", "router", "card", "exchange"];

const OPENINGS: &[&str] = &[
    "Loving",
    "Really disappointed with",
    "Just bought more",
    "Not sure about",
    "Huge news for",
    "Terrible week for",
    "Thinking about",
    "So bullish on",
    "Worried about",
    "Great update from",
];

const CLOSINGS: &[&str] = &[
    "today, what a ride",
    "and the team keeps shipping",
    "after the latest outage, awful",
    "this looks like a solid long term play",
    "honestly the fees are a joke",
    "no idea where this goes next",
    "best community in the space",
    "support never answers, so frustrating",
];

/// A small deterministic generator (splitmix64), so a seed is reproducible
/// without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n as u64) as usize
    }
}

/// The entities the seed creates, to look them up afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedEntities {
    /// `(kind, id)` of every entity the seed's posts are counted under
    /// (narratives and KOLs aside).
    pub entities: Vec<(String, String)>,
}

/// The entities a seed with `cfg` creates (the ids as Starling stores them).
pub fn entities(cfg: &SeedConfig) -> SeedEntities {
    let mut e: Vec<(String, String)> = vec![("macro".into(), "all".into())];
    e.extend(
        PROJECTS[..cfg.projects]
            .iter()
            .map(|p| ("project".to_string(), p.to_string())),
    );
    e.extend(
        TOPICS[..cfg.topics]
            .iter()
            .map(|t| ("topic".to_string(), t.to_string())),
    );
    e.extend(
        PLATFORMS
            .iter()
            .map(|p| ("platform".to_string(), p.to_string())),
    );
    e.extend(GEOS.iter().map(|g| ("geo".to_string(), g.to_string())));
    e.extend(
        PRODUCTS
            .iter()
            .map(|p| ("product".to_string(), p.to_string())),
    );
    e.extend((0..cfg.authors).map(|a| ("user".to_string(), author_id(a))));
    SeedEntities { entities: e }
}

fn author_id(a: usize) -> String {
    format!("lt-u{a}")
}

/// Post number `i` of `cfg.posts`; `run` makes the ids unique per run,
/// `now` is the end of the spread.
pub fn post(cfg: &SeedConfig, run: &str, i: usize, now: DateTime<Utc>) -> Value {
    let mut rng = Rng::new(0x5EED ^ (i as u64).wrapping_mul(0x100_0000_01B3));
    let spread_ms = i64::from(cfg.spread_minutes) * 60_000;
    // Oldest first, evenly spread; the newest is one second before `now`.
    let age_ms = 1_000 + spread_ms * (cfg.posts - 1 - i) as i64 / cfg.posts.max(1) as i64;
    let created = now - chrono::Duration::milliseconds(age_ms);
    let author = rng.below(cfg.authors);
    // About 1 author in 25 is above the default KOL threshold (100k followers).
    let followers = if author.is_multiple_of(25) {
        150_000 + author * 1_000
    } else {
        (author * 7_919) % 90_000
    };
    let p1 = PROJECTS[rng.below(cfg.projects)];
    let t1 = TOPICS[rng.below(cfg.topics)];
    let mut text = format!(
        "{} ${p1} #{t1} {}",
        OPENINGS[rng.below(OPENINGS.len())],
        CLOSINGS[rng.below(CLOSINGS.len())]
    );
    if rng.below(3) == 0 {
        let p2 = PROJECTS[rng.below(cfg.projects)];
        let t2 = TOPICS[rng.below(cfg.topics)];
        text.push_str(&format!(", also watching ${p2} #{t2}"));
    }
    let platform = PLATFORMS[i % PLATFORMS.len()];
    let mut p = json!({
        "id": format!("lt-{run}-{i}"),
        "platform": platform,
        "text": text,
        "author": {"id": author_id(author), "handle": format!("loadtest_{author}"), "followers": followers},
        "created_at": created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "engagement": {"likes": rng.below(50), "reposts": rng.below(10), "replies": rng.below(5)},
        "lang": "en",
    });
    if rng.below(10) < 7 {
        p["geo"] = json!(GEOS[rng.below(GEOS.len())]);
    }
    if rng.below(10) < 4 {
        p["product"] = json!(PRODUCTS[rng.below(PRODUCTS.len())]);
    }
    p
}

/// The seed as `POST /api/ingest` bodies (JSON arrays of `batch_size` posts).
pub fn batches(cfg: &SeedConfig, run: &str, now: DateTime<Utc>) -> Vec<Vec<u8>> {
    (0..cfg.posts)
        .collect::<Vec<_>>()
        .chunks(cfg.batch_size)
        .map(|chunk| {
            let posts: Vec<Value> = chunk.iter().map(|&i| post(cfg, run, i, now)).collect();
            serde_json::to_vec(&posts).expect("JSON of plain values")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(posts: usize) -> SeedConfig {
        SeedConfig {
            posts,
            batch_size: 100,
            ..SeedConfig::default()
        }
    }

    #[test]
    fn posts_are_deterministic_and_inside_the_spread() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let c = cfg(1_000);
        assert_eq!(post(&c, "r", 7, now), post(&c, "r", 7, now));
        let first = post(&c, "r", 0, now);
        let last = post(&c, "r", 999, now);
        let t = |p: &Value| {
            DateTime::parse_from_rfc3339(p["created_at"].as_str().expect("str")).expect("time")
        };
        assert!(t(&first) >= now - chrono::Duration::minutes(31));
        assert!(t(&first) < t(&last));
        assert!(t(&last) < now);
        assert_eq!(first["id"], "lt-r-0");
        assert!(first["text"].as_str().expect("text").contains('$'));
    }

    #[test]
    fn batches_hold_every_post_once() {
        let c = cfg(250);
        let b = batches(&c, "r", Utc::now());
        assert_eq!(b.len(), 3);
        let n: usize = b
            .iter()
            .map(|body| {
                serde_json::from_slice::<Vec<Value>>(body)
                    .expect("array")
                    .len()
            })
            .sum();
        assert_eq!(n, 250);
    }

    #[test]
    fn entities_cover_the_configured_sets() {
        let e = entities(&cfg(10)).entities;
        let count = |k: &str| e.iter().filter(|(kind, _)| kind == k).count();
        assert_eq!(count("project"), 20);
        assert_eq!(count("topic"), 30);
        assert_eq!(count("user"), 500);
        assert_eq!(count("macro"), 1);
    }
}
