//! The deterministic post generator behind the synthetic connector.
//!
//! [`Generator`] composes realistic posts from the templates and tables of
//! [`super::corpus`]: a category (crypto joy, brand anger, sarcasm, churn,
//! a narrative…) is drawn, then a template of it, whose slots are filled with
//! projects, products, numbers, emoji, hashtags and mentions; decorations
//! (openers, caps, exclamation marks, extra emoji and hashtags) vary it
//! further. Authors come from a fixed pool with heavy-tailed followers and
//! Zipf-like activity; engagement grows with followers.
//!
//! Every cycle of `episode_cycle_s` seconds plays three scripted episodes,
//! each over 15 % of the cycle and shifting the mix rather than replacing it:
//! a **churn wave** about [`corpus::CHURN_PRODUCT`] (10–25 % of the cycle), a
//! **narrative spike** of [`corpus::SPIKE_NARRATIVE`] (40–55 %), and a
//! **sentiment crash** on [`corpus::CRASH_PROJECT`] (70–85 %).
//!
//! Everything but the run id in post ids depends only on the seed and the
//! sequence of `(now, elapsed_s)` calls. Tables are parsed once in
//! [`Generator::new`]; a post costs a few microseconds at most.

use super::corpus::{self, Domain, Mood};
use crate::config::SyntheticConfig;
use crate::domain::{Author, Engagement, Post};
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::collections::HashSet;
use std::fmt::Write as _;

/// Size of the author pool.
const AUTHORS: usize = 5_000;
/// Authors with more than a million followers.
const MEGA_AUTHORS: usize = 2;
/// Authors with 100k–1M followers.
const KOL_AUTHORS: usize = 38;
/// Authors with 5k–100k followers.
const MID_AUTHORS: usize = 260;
/// Pool authors (the most followed) that other posts `@mention`.
const MENTIONABLE_AUTHORS: usize = 80;
/// Recent posts that replies and reposts may point to.
const RECENT: usize = 1_024;

/// Name of the churn-wave episode.
pub const EPISODE_CHURN: &str = "churn-wave";
/// Name of the narrative-spike episode.
pub const EPISODE_NARRATIVE: &str = "narrative-spike";
/// Name of the sentiment-crash episode.
pub const EPISODE_CRASH: &str = "sentiment-crash";

/// Episodes: name and the fraction of the cycle they occupy.
const EPISODES: [(&str, f64, f64); 3] = [
    (EPISODE_CHURN, 0.10, 0.25),
    (EPISODE_NARRATIVE, 0.40, 0.55),
    (EPISODE_CRASH, 0.70, 0.85),
];
/// Share of posts an episode takes over at its peak.
const EPISODE_PEAK: f64 = 0.5;

const PLATFORMS: [&str; 6] = [
    "twitter", "reddit", "bluesky", "mastodon", "youtube", "discord",
];
const PLATFORM_WEIGHTS_CRYPTO: [f64; 6] = [45.0, 18.0, 8.0, 3.0, 6.0, 20.0];
const PLATFORM_WEIGHTS_BRAND: [f64; 6] = [40.0, 25.0, 8.0, 5.0, 12.0, 10.0];
const PLATFORM_WEIGHTS_CHATTER: [f64; 6] = [50.0, 10.0, 15.0, 12.0, 3.0, 10.0];

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Cash,
    Name,
    Coin,
    Cash2,
    Name2,
    Prod,
    Feat,
    Issue,
    Comp,
    Rival,
    At,
    Tag,
    NTag,
    N,
    Pct,
    Price,
    Amt,
    Cost,
    City,
    Day,
    Hour,
    Since,
    Int,
    Good,
    Bad,
    Who,
    Pal,
    Xchg,
    EmoPositive,
    EmoNegative,
    EmoSarcastic,
    EmoFear,
    EmoSad,
    EmoSurprise,
    EmoDisgust,
    EmoAngry,
}

impl Slot {
    fn parse(name: &str) -> Option<Slot> {
        Some(match name {
            "cash" => Slot::Cash,
            "name" => Slot::Name,
            "coin" => Slot::Coin,
            "cash2" => Slot::Cash2,
            "name2" => Slot::Name2,
            "prod" => Slot::Prod,
            "feat" => Slot::Feat,
            "issue" => Slot::Issue,
            "comp" => Slot::Comp,
            "rival" => Slot::Rival,
            "at" => Slot::At,
            "tag" => Slot::Tag,
            "ntag" => Slot::NTag,
            "n" => Slot::N,
            "pct" => Slot::Pct,
            "price" => Slot::Price,
            "amt" => Slot::Amt,
            "cost" => Slot::Cost,
            "city" => Slot::City,
            "day" => Slot::Day,
            "hour" => Slot::Hour,
            "since" => Slot::Since,
            "int" => Slot::Int,
            "good" => Slot::Good,
            "bad" => Slot::Bad,
            "who" => Slot::Who,
            "pal" => Slot::Pal,
            "xchg" => Slot::Xchg,
            "pe" => Slot::EmoPositive,
            "ne" => Slot::EmoNegative,
            "se" => Slot::EmoSarcastic,
            "fe" => Slot::EmoFear,
            "sad" => Slot::EmoSad,
            "wow" => Slot::EmoSurprise,
            "gross" => Slot::EmoDisgust,
            "angry" => Slot::EmoAngry,
            _ => return None,
        })
    }
}

/// A piece of a parsed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg {
    Lit(&'static str),
    Slot(Slot),
}

/// Splits a template into literal text and slots. An unknown `{name}` is
/// kept as literal text (the corpus test rejects it).
fn parse_template(t: &'static str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        match Slot::parse(&rest[open + 1..close]) {
            Some(slot) => {
                if open > 0 {
                    segs.push(Seg::Lit(&rest[..open]));
                }
                segs.push(Seg::Slot(slot));
            }
            None => segs.push(Seg::Lit(&rest[..=close])),
        }
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        segs.push(Seg::Lit(rest));
    }
    segs
}

/// Cumulative weights, sampled by binary search.
#[derive(Debug, Clone)]
struct Weighted {
    cum: Vec<f64>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cum = weights
            .into_iter()
            .map(|w| {
                total += w.max(0.0);
                total
            })
            .collect();
        Weighted { cum }
    }

    /// An index in `0..len` (0 when empty or all weights are zero).
    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cum.last().copied().unwrap_or(0.0);
        if total <= 0.0 {
            return 0;
        }
        let x = rng.gen_range(0.0..total);
        self.cum
            .partition_point(|&c| c <= x)
            .min(self.cum.len() - 1)
    }
}

/// Picks an element of a non-empty static table ("" when empty).
fn pick(rng: &mut ChaCha8Rng, table: &[&'static str]) -> &'static str {
    if table.is_empty() {
        return "";
    }
    table[rng.gen_range(0..table.len())]
}

/// A category with its templates parsed.
#[derive(Debug)]
struct Cat {
    domain: Domain,
    mood: Mood,
    narrative: usize,
    templates: Vec<Vec<Seg>>,
}

/// A pool author.
#[derive(Debug, Clone)]
struct PoolAuthor {
    author: Author,
    city: usize,
}

/// What one post is about; fills the slots.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    project: usize,
    project2: usize,
    product: usize,
    narrative: usize,
    city: usize,
}

/// The scripted episode a post may belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Episode {
    Churn,
    Narrative,
    Crash,
}

/// A deterministic, realistic stream of synthetic posts.
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
    run_id: u64,
    counter: u64,
    episodes: bool,
    cycle_s: f64,
    cats: Vec<Cat>,
    baseline: Weighted,
    cat_churn: usize,
    cat_brand_negative: usize,
    cat_crash: usize,
    cat_fear: usize,
    cat_ai: usize,
    projects: Weighted,
    products: Weighted,
    churn_product: usize,
    crash_project: usize,
    platforms_crypto: Weighted,
    platforms_brand: Weighted,
    platforms_chatter: Weighted,
    authors: Vec<PoolAuthor>,
    activity: Weighted,
    mentions: Vec<String>,
    /// Recent posts: (counter, author index), a ring of `RECENT`.
    recent: Vec<(u64, usize)>,
}

impl Generator {
    /// A generator for `cfg.seed`. `run_id` makes post ids unique across
    /// process runs (the caller passes the start time in ms); everything else
    /// about the stream depends only on `cfg.seed`.
    pub fn new(cfg: &SyntheticConfig, run_id: u64) -> Self {
        let mut pool_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED_0F57_A711_4600);

        let cats: Vec<Cat> = corpus::CATEGORIES
            .iter()
            .map(|c| Cat {
                domain: c.domain,
                mood: c.mood,
                narrative: c
                    .narrative
                    .and_then(|id| corpus::NARRATIVES.iter().position(|n| n.id == id))
                    .unwrap_or(0),
                templates: c.templates.iter().map(|t| parse_template(t)).collect(),
            })
            .collect();
        let cat_index = |name: &str| {
            corpus::CATEGORIES
                .iter()
                .position(|c| c.name == name)
                .unwrap_or(0)
        };
        let baseline = Weighted::new(corpus::CATEGORIES.iter().map(|c| f64::from(c.weight)));

        let authors = make_authors(&mut pool_rng);
        // Zipf-like activity: the author at activity rank r posts ∝ 1/(r+3).
        let mut order: Vec<usize> = (0..authors.len()).collect();
        for i in (1..order.len()).rev() {
            let j = pool_rng.gen_range(0..=i);
            order.swap(i, j);
        }
        let mut activity = vec![0.0; authors.len()];
        for (rank, &a) in order.iter().enumerate() {
            activity[a] = 1.0 / (rank as f64 + 3.0).powf(1.05);
        }
        let mentions = corpus::MENTIONS
            .iter()
            .map(|m| m.to_string())
            .chain(
                authors
                    .iter()
                    .take(MENTIONABLE_AUTHORS)
                    .map(|a| format!("@{}", a.author.handle)),
            )
            .collect();

        Generator {
            rng,
            run_id,
            counter: 0,
            episodes: cfg.episodes,
            cycle_s: cfg.episode_cycle_s as f64,
            cats,
            baseline,
            cat_churn: cat_index(corpus::cat::CHURN),
            cat_brand_negative: cat_index(corpus::cat::BRAND_NEGATIVE),
            cat_crash: cat_index(corpus::cat::CRASH),
            cat_fear: cat_index(corpus::cat::CRYPTO_FEAR),
            cat_ai: cat_index(corpus::cat::NARRATIVE_AI),
            projects: Weighted::new(corpus::PROJECTS.iter().map(|p| f64::from(p.weight))),
            products: Weighted::new(corpus::PRODUCTS.iter().map(|p| f64::from(p.weight))),
            churn_product: corpus::PRODUCTS
                .iter()
                .position(|p| p.id == corpus::CHURN_PRODUCT)
                .unwrap_or(0),
            crash_project: corpus::PROJECTS
                .iter()
                .position(|p| p.id == corpus::CRASH_PROJECT)
                .unwrap_or(0),
            platforms_crypto: Weighted::new(PLATFORM_WEIGHTS_CRYPTO),
            platforms_brand: Weighted::new(PLATFORM_WEIGHTS_BRAND),
            platforms_chatter: Weighted::new(PLATFORM_WEIGHTS_CHATTER),
            activity: Weighted::new(activity),
            authors,
            mentions,
            recent: Vec::with_capacity(RECENT),
        }
    }

    /// Name of the episode active at `elapsed_s` seconds into the stream, if
    /// any: `churn-wave`, `narrative-spike` or `sentiment-crash`.
    pub fn episode_at(&self, elapsed_s: f64) -> Option<&'static str> {
        self.episode_state(elapsed_s).map(|(name, _)| name)
    }

    /// The active episode and its intensity (share of posts it takes).
    fn episode_state(&self, elapsed_s: f64) -> Option<(&'static str, f64)> {
        if !self.episodes || self.cycle_s <= 0.0 || !elapsed_s.is_finite() {
            return None;
        }
        let phase = elapsed_s.rem_euclid(self.cycle_s) / self.cycle_s;
        EPISODES.iter().find_map(|&(name, start, end)| {
            if phase < start || phase >= end {
                return None;
            }
            // Ramp up over the first fifth, plateau, ramp down over the last fifth.
            let t = (phase - start) / (end - start);
            let shape = (t / 0.2).min((1.0 - t) / 0.2).clamp(0.05, 1.0);
            Some((name, EPISODE_PEAK * shape))
        })
    }

    /// The next post. `now` becomes its `created_at`; `elapsed_s` is seconds
    /// since the stream started and drives the scripted episodes (only when
    /// `cfg.episodes` is true).
    pub fn next_post(&mut self, now: DateTime<Utc>, elapsed_s: f64) -> Post {
        let episode = match self.episode_state(elapsed_s) {
            Some((name, intensity)) if self.rng.gen_bool(intensity.clamp(0.0, 1.0)) => match name {
                EPISODE_CHURN => Some(Episode::Churn),
                EPISODE_NARRATIVE => Some(Episode::Narrative),
                _ => Some(Episode::Crash),
            },
            _ => None,
        };
        let cat_idx = match episode {
            Some(Episode::Churn) => {
                if self.rng.gen_bool(0.75) {
                    self.cat_churn
                } else {
                    self.cat_brand_negative
                }
            }
            Some(Episode::Narrative) => self.cat_ai,
            Some(Episode::Crash) => {
                if self.rng.gen_bool(0.75) {
                    self.cat_crash
                } else {
                    self.cat_fear
                }
            }
            None => self.baseline.sample(&mut self.rng),
        };

        let author_idx = self.activity.sample(&mut self.rng) % self.authors.len().max(1);
        let project = match episode {
            Some(Episode::Crash) => self.crash_project,
            _ => self.projects.sample(&mut self.rng),
        };
        let mut project2 = self.projects.sample(&mut self.rng);
        if project2 == project {
            project2 = (project2 + 1 + self.rng.gen_range(0..4)) % corpus::PROJECTS.len();
        }
        let product = match episode {
            Some(Episode::Churn) => self.churn_product,
            _ => self.products.sample(&mut self.rng),
        };
        let (domain, mood, narrative) = match self.cats.get(cat_idx) {
            Some(c) => (
                c.domain,
                c.mood,
                if c.domain == Domain::Narrative {
                    c.narrative
                } else {
                    self.rng.gen_range(0..corpus::NARRATIVES.len())
                },
            ),
            None => (Domain::Chatter, Mood::Neutral, 0),
        };
        let city = self
            .authors
            .get(author_idx)
            .map(|a| a.city)
            .unwrap_or_default();
        let ctx = Ctx {
            project,
            project2,
            product,
            narrative,
            city,
        };

        let platform_idx = match domain {
            Domain::Crypto | Domain::Narrative => self.platforms_crypto.sample(&mut self.rng),
            Domain::Brand => self.platforms_brand.sample(&mut self.rng),
            Domain::Chatter => self.platforms_chatter.sample(&mut self.rng),
        };
        let platform = PLATFORMS.get(platform_idx).copied().unwrap_or("twitter");

        // Reply or repost of a recent post.
        let mut reply_to = None;
        let mut repost_of = None;
        let mut reply_handle = None;
        if !self.recent.is_empty() {
            let roll: f64 = self.rng.gen();
            if roll < 0.15 {
                let (counter, parent_author) =
                    self.recent[self.rng.gen_range(0..self.recent.len())];
                let id = self.post_id(counter);
                if roll < 0.10 {
                    reply_to = Some(id);
                    if parent_author != author_idx
                        && matches!(platform, "twitter" | "bluesky" | "mastodon")
                    {
                        reply_handle = self
                            .authors
                            .get(parent_author)
                            .map(|a| a.author.handle.as_str());
                    }
                } else {
                    repost_of = Some(id);
                }
            }
        }

        // The text.
        let mut text = String::with_capacity(160);
        if let Some(h) = reply_handle {
            text.push('@');
            text.push_str(h);
            text.push(' ');
        }
        let body_start = text.len();
        if self.rng.gen_bool(0.08) {
            text.push_str(pick(&mut self.rng, corpus::OPENERS));
            text.push(' ');
        }
        if let Some(c) = self.cats.get(cat_idx) {
            if !c.templates.is_empty() {
                let t = self.rng.gen_range(0..c.templates.len());
                for seg in &c.templates[t] {
                    match *seg {
                        Seg::Lit(s) => text.push_str(s),
                        Seg::Slot(slot) => {
                            fill(&mut self.rng, &mut text, slot, &ctx, &self.mentions)
                        }
                    }
                }
            }
        }
        self.decorate(&mut text, body_start, domain, mood, &ctx);

        let product = (domain == Domain::Brand)
            .then(|| corpus::PRODUCTS.get(product).map(|p| p.id.to_string()))
            .flatten();
        let channel = self.channel(platform, domain, &ctx, author_idx);
        let geo = self
            .rng
            .gen_bool(0.7)
            .then(|| corpus::CITIES.get(city).map(|c| c.to_string()))
            .flatten();
        let author = self
            .authors
            .get(author_idx)
            .map(|a| a.author.clone())
            .unwrap_or_else(|| Author {
                id: "syn-u0".into(),
                handle: "anon".into(),
                followers: 0,
                verified: false,
            });
        let engagement = self.engagement(author.followers, mood, episode.is_some());

        let counter = self.counter;
        self.counter += 1;
        if self.recent.len() < RECENT {
            self.recent.push((counter, author_idx));
        } else {
            let slot = (counter as usize) % RECENT;
            self.recent[slot] = (counter, author_idx);
        }

        Post {
            id: self.post_id(counter),
            platform: platform.to_string(),
            channel,
            author,
            text,
            lang: Some("en".to_string()),
            created_at: now,
            engagement,
            geo,
            product,
            reply_to,
            repost_of,
        }
    }

    fn post_id(&self, counter: u64) -> String {
        format!("syn-{:x}-{counter}", self.run_id)
    }

    /// Openers were added already; adds caps, exclamation marks, emoji,
    /// hashtags, cashtags and closers.
    fn decorate(
        &mut self,
        text: &mut String,
        body_start: usize,
        domain: Domain,
        mood: Mood,
        ctx: &Ctx,
    ) {
        let rng = &mut self.rng;
        let emotive = matches!(
            mood,
            Mood::Positive | Mood::Negative | Mood::Angry | Mood::Fear | Mood::Surprise
        );
        if emotive && rng.gen_bool(0.06) {
            let upper = text[body_start..].to_uppercase();
            text.truncate(body_start);
            text.push_str(&upper);
        }
        if emotive
            && text
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && rng.gen_bool(0.25)
        {
            text.push_str(if rng.gen_bool(0.5) { "!!" } else { "!!!" });
        }
        if let Some(first) = text.get(body_start..body_start + 1) {
            if first.as_bytes()[0].is_ascii_lowercase() && rng.gen_bool(0.3) {
                let upper = first.to_ascii_uppercase();
                text.replace_range(body_start..body_start + 1, &upper);
            }
        }
        let emoji: &[&'static str] = match mood {
            Mood::Positive => corpus::EMOJI_POSITIVE,
            Mood::Negative => corpus::EMOJI_NEGATIVE,
            Mood::Angry => corpus::EMOJI_ANGRY,
            Mood::Fear => corpus::EMOJI_FEAR,
            Mood::Sad => corpus::EMOJI_SAD,
            Mood::Surprise => corpus::EMOJI_SURPRISE,
            Mood::Disgust => corpus::EMOJI_DISGUST,
            Mood::Sarcastic => corpus::EMOJI_SARCASTIC,
            Mood::Neutral => corpus::EMOJI_NEUTRAL,
        };
        let p_emoji = if mood == Mood::Neutral { 0.12 } else { 0.4 };
        if rng.gen_bool(p_emoji) {
            text.push(' ');
            let e = pick(rng, emoji);
            text.push_str(e);
            if rng.gen_bool(0.25) {
                text.push_str(e);
            }
        }
        if matches!(domain, Domain::Crypto | Domain::Narrative) && rng.gen_bool(0.1) {
            if let Some(p) = corpus::PROJECTS.get(ctx.project) {
                let tag_start = text.len();
                text.push_str(" $");
                text.push_str(p.id);
                if text[..tag_start].contains(&text[tag_start + 1..]) {
                    text.truncate(tag_start);
                }
            }
        }
        let tags: &[&'static str] = match domain {
            Domain::Crypto => corpus::CRYPTO_TAGS,
            Domain::Brand => corpus::BRAND_TAGS,
            Domain::Narrative => corpus::NARRATIVES
                .get(ctx.narrative)
                .map(|n| n.tags)
                .unwrap_or(corpus::CRYPTO_TAGS),
            Domain::Chatter => corpus::CHATTER_TAGS,
        };
        if rng.gen_bool(0.3) {
            let count = if rng.gen_bool(0.3) { 2 } else { 1 };
            for _ in 0..count {
                let tag_start = text.len();
                text.push(' ');
                match corpus::PROJECTS.get(ctx.project) {
                    Some(p) if domain == Domain::Crypto && rng.gen_bool(0.3) => {
                        text.push('#');
                        text.push_str(p.slug);
                    }
                    _ => text.push_str(pick(rng, tags)),
                }
                // No tag twice (case-insensitively the same topic is fine).
                if text[..tag_start].contains(&text[tag_start + 1..]) {
                    text.truncate(tag_start);
                }
            }
        }
        if domain == Domain::Crypto && rng.gen_bool(0.06) {
            text.push(' ');
            text.push_str(pick(rng, corpus::CLOSERS));
        }
    }

    /// The sub-space of the platform the post appears in.
    fn channel(
        &mut self,
        platform: &str,
        domain: Domain,
        ctx: &Ctx,
        author_idx: usize,
    ) -> Option<String> {
        let rng = &mut self.rng;
        let project = corpus::PROJECTS.get(ctx.project);
        let product = corpus::PRODUCTS.get(ctx.product);
        let narrative = corpus::NARRATIVES.get(ctx.narrative);
        match platform {
            "reddit" => Some(
                match domain {
                    Domain::Crypto => match project {
                        Some(p) if rng.gen_bool(0.6) => p.subreddit,
                        _ => pick(rng, corpus::REDDIT_CRYPTO),
                    },
                    Domain::Narrative => narrative
                        .map(|n| pick(rng, n.subreddits))
                        .unwrap_or("r/CryptoCurrency"),
                    Domain::Brand => match product {
                        Some(p) if rng.gen_bool(0.7) => p.subreddit,
                        _ => pick(rng, corpus::REDDIT_BRAND),
                    },
                    Domain::Chatter => pick(rng, corpus::REDDIT_CHATTER),
                }
                .to_string(),
            ),
            "discord" => Some(match domain {
                Domain::Crypto | Domain::Narrative => format!(
                    "{}/{}",
                    project.map(|p| p.slug).unwrap_or("crypto"),
                    pick(rng, corpus::DISCORD_CRYPTO)
                ),
                Domain::Brand => format!("nimbus/{}", pick(rng, corpus::DISCORD_BRAND)),
                Domain::Chatter => format!("lounge/{}", pick(rng, corpus::DISCORD_CHATTER)),
            }),
            "youtube" => Some(
                match domain {
                    Domain::Crypto | Domain::Narrative => pick(rng, corpus::YOUTUBE_CRYPTO),
                    Domain::Brand => pick(rng, corpus::YOUTUBE_BRAND),
                    Domain::Chatter => pick(rng, corpus::YOUTUBE_CHATTER),
                }
                .to_string(),
            ),
            "mastodon" => {
                let instances = corpus::MASTODON_INSTANCES;
                (!instances.is_empty()).then(|| instances[author_idx % instances.len()].to_string())
            }
            "bluesky" => rng.gen_bool(0.25).then(|| {
                match domain {
                    Domain::Crypto | Domain::Narrative => "feed/crypto",
                    Domain::Brand => "feed/tech",
                    Domain::Chatter => "feed/discover",
                }
                .to_string()
            }),
            _ => rng.gen_bool(0.08).then(|| {
                match domain {
                    Domain::Brand => "community/nimbus-users",
                    _ => "community/crypto-twitter",
                }
                .to_string()
            }),
        }
    }

    /// Heavy-tailed interactions growing with the author's reach.
    fn engagement(&mut self, followers: u64, mood: Mood, episode: bool) -> Engagement {
        let rng = &mut self.rng;
        let noise: f64 = rng.sample(StandardNormal);
        let mut base = 0.08 * (followers as f64 + 10.0).powf(0.7) * (1.05 * noise).exp();
        if matches!(mood, Mood::Surprise | Mood::Sarcastic) || episode {
            base *= 1.5;
        }
        if rng.gen_bool(0.003) {
            base *= 20.0; // went viral
        }
        let likes = base.round().max(0.0);
        let repost_share = rng.gen_range(0.05..0.3);
        let reply_share = match mood {
            Mood::Angry | Mood::Negative | Mood::Sarcastic | Mood::Disgust => {
                rng.gen_range(0.1..0.4)
            }
            _ => rng.gen_range(0.02..0.15),
        };
        Engagement {
            likes: likes as u64,
            reposts: (likes * repost_share).round() as u64,
            replies: (likes * reply_share).round() as u64,
        }
    }
}

/// Writes the value of one slot.
fn fill(rng: &mut ChaCha8Rng, out: &mut String, slot: Slot, ctx: &Ctx, mentions: &[String]) {
    let project = corpus::PROJECTS.get(ctx.project);
    let project2 = corpus::PROJECTS.get(ctx.project2);
    let product = corpus::PRODUCTS.get(ctx.product);
    match slot {
        Slot::Cash => push_cashtag(out, project),
        Slot::Cash2 => push_cashtag(out, project2),
        Slot::Name => out.push_str(project.map(|p| pick(rng, p.names)).unwrap_or("crypto")),
        Slot::Name2 => out.push_str(project2.map(|p| pick(rng, p.names)).unwrap_or("crypto")),
        Slot::Coin => {
            if rng.gen_bool(0.5) {
                push_cashtag(out, project);
            } else {
                out.push_str(project.map(|p| pick(rng, p.names)).unwrap_or("crypto"));
            }
        }
        Slot::Prod => out.push_str(
            product
                .map(|p| pick(rng, p.names))
                .unwrap_or(corpus::COMPANY),
        ),
        Slot::Feat => out.push_str(product.map(|p| pick(rng, p.features)).unwrap_or("the app")),
        Slot::Issue => out.push_str(
            product
                .map(|p| pick(rng, p.issues))
                .unwrap_or("keeps crashing"),
        ),
        Slot::Comp => out.push_str(corpus::COMPANY),
        Slot::Rival => out.push_str(pick(rng, corpus::RIVALS)),
        Slot::At => {
            if !mentions.is_empty() {
                out.push_str(&mentions[rng.gen_range(0..mentions.len())]);
            }
        }
        Slot::Tag => out.push_str(pick(rng, corpus::CRYPTO_TAGS)),
        Slot::NTag => out.push_str(
            corpus::NARRATIVES
                .get(ctx.narrative)
                .map(|n| pick(rng, n.tags))
                .unwrap_or("#crypto"),
        ),
        Slot::N => {
            let _ = write!(out, "{}", rng.gen_range(2..=48));
        }
        Slot::Pct => {
            if rng.gen_bool(0.6) {
                let _ = write!(out, "{}%", rng.gen_range(2..=95));
            } else {
                let _ = write!(out, "{:.1}%", rng.gen_range(0.5..40.0));
            }
        }
        Slot::Price => {
            let typical = project.map(|p| p.price).unwrap_or(1.0);
            push_usd(out, typical * rng.gen_range(0.5f64..2.5).powf(1.2));
        }
        Slot::Amt => {
            let roll: f64 = rng.gen();
            let _ = if roll < 0.25 {
                write!(out, "${}k", rng.gen_range(10..=999))
            } else if roll < 0.9 {
                write!(out, "${:.1}M", rng.gen_range(1.0..400.0))
            } else {
                write!(out, "${:.1}B", rng.gen_range(1.0..9.9))
            };
        }
        Slot::Cost => {
            let _ = if rng.gen_bool(0.6) {
                write!(out, "${}.99", rng.gen_range(1..=30))
            } else {
                write!(out, "${}", rng.gen_range(5..=400))
            };
        }
        Slot::City => out.push_str(corpus::CITIES.get(ctx.city).copied().unwrap_or("London")),
        Slot::Day => out.push_str(pick(rng, corpus::DAYS)),
        Slot::Hour => out.push_str(pick(rng, corpus::HOURS)),
        Slot::Since => out.push_str(pick(rng, corpus::SINCE)),
        Slot::Int => out.push_str(pick(rng, corpus::INTENSIFIERS)),
        Slot::Good => out.push_str(pick(rng, corpus::GOOD)),
        Slot::Bad => out.push_str(pick(rng, corpus::BAD)),
        Slot::Who => out.push_str(pick(rng, corpus::WHO)),
        Slot::Pal => out.push_str(pick(rng, corpus::PALS)),
        Slot::Xchg => out.push_str(pick(rng, corpus::EXCHANGES)),
        Slot::EmoPositive => out.push_str(pick(rng, corpus::EMOJI_POSITIVE)),
        Slot::EmoNegative => out.push_str(pick(rng, corpus::EMOJI_NEGATIVE)),
        Slot::EmoSarcastic => out.push_str(pick(rng, corpus::EMOJI_SARCASTIC)),
        Slot::EmoFear => out.push_str(pick(rng, corpus::EMOJI_FEAR)),
        Slot::EmoSad => out.push_str(pick(rng, corpus::EMOJI_SAD)),
        Slot::EmoSurprise => out.push_str(pick(rng, corpus::EMOJI_SURPRISE)),
        Slot::EmoDisgust => out.push_str(pick(rng, corpus::EMOJI_DISGUST)),
        Slot::EmoAngry => out.push_str(pick(rng, corpus::EMOJI_ANGRY)),
    }
}

/// Writes a USD price with precision fitting its size (`$68.2k`, `$142`, `$0.451`, `$0.00001234`).
fn push_usd(out: &mut String, v: f64) {
    let _ = if v >= 10_000.0 {
        write!(out, "${:.1}k", v / 1_000.0)
    } else if v >= 100.0 {
        write!(out, "${v:.0}")
    } else if v >= 1.0 {
        write!(out, "${v:.2}")
    } else if v >= 0.01 {
        write!(out, "${v:.3}")
    } else {
        write!(out, "${v:.8}")
    };
}

fn push_cashtag(out: &mut String, project: Option<&corpus::Project>) {
    out.push('$');
    out.push_str(project.map(|p| p.id).unwrap_or("BTC"));
}

/// Log-uniform in `lo..hi`.
fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (rng.gen_range(lo.ln()..hi.ln())).exp()
}

/// The author pool, most followed first: a couple of accounts above 1M
/// followers, a few dozen KOLs above 100k, a few hundred mid-size accounts,
/// and a long tail mostly under 1,000.
fn make_authors(rng: &mut ChaCha8Rng) -> Vec<PoolAuthor> {
    let mut used = HashSet::with_capacity(AUTHORS);
    (0..AUTHORS)
        .map(|i| {
            let (followers, p_verified, kol) = if i < MEGA_AUTHORS {
                (log_uniform(rng, 1.2e6, 4.5e6), 1.0, true)
            } else if i < MEGA_AUTHORS + KOL_AUTHORS {
                (log_uniform(rng, 1.0e5, 9.5e5), 0.8, true)
            } else if i < MEGA_AUTHORS + KOL_AUTHORS + MID_AUTHORS {
                (log_uniform(rng, 5.0e3, 9.5e4), 0.08, false)
            } else {
                let z: f64 = rng.sample(StandardNormal);
                ((150f64.ln() + 1.4 * z).exp().min(9.0e4), 0.005, false)
            };
            let mut handle = make_handle(rng, kol);
            while !used.insert(handle.clone()) {
                let _ = write!(handle, "{}", rng.gen_range(0..10));
            }
            PoolAuthor {
                author: Author {
                    id: format!("syn-u{i}"),
                    handle,
                    followers: followers.round() as u64,
                    verified: rng.gen_bool(p_verified),
                },
                city: rng.gen_range(0..corpus::CITIES.len()),
            }
        })
        .collect()
}

/// A plausible handle: `[A-Za-z0-9_]`, at most 15 characters where possible.
fn make_handle(rng: &mut ChaCha8Rng, kol: bool) -> String {
    let first = pick(rng, corpus::HANDLE_FIRST);
    let word = pick(rng, corpus::HANDLE_WORD);
    let noun = pick(rng, corpus::HANDLE_NOUN);
    let mut h = String::with_capacity(24);
    if kol {
        // Brand-like: CryptoCapital, AlphaResearch.
        for part in [word, noun] {
            let mut cs = part.chars();
            if let Some(c) = cs.next() {
                h.push(c.to_ascii_uppercase());
                h.push_str(cs.as_str());
            }
        }
        return h;
    }
    let _ = match rng.gen_range(0..9) {
        0 => write!(h, "{first}_{word}"),
        1 => write!(h, "{word}{noun}{}", rng.gen_range(1..100)),
        2 => write!(h, "{first}{}", rng.gen_range(1000..10_000)),
        3 => write!(h, "the{word}{noun}"),
        4 => write!(h, "{word}_{first}"),
        5 => write!(h, "0x{first}"),
        6 => write!(h, "{first}{noun}"),
        7 => write!(h, "real{first}{word}"),
        _ => write!(h, "{first}_{noun}{}", rng.gen_range(1..100)),
    };
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::HashMap;

    fn cfg(seed: u64) -> SyntheticConfig {
        SyntheticConfig {
            rate: 100.0,
            seed,
            episodes: true,
            episode_cycle_s: 600,
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0)
            .single()
            .expect("valid time")
    }

    /// `n` posts, elapsed advancing by `step` seconds per post.
    fn stream(g: &mut Generator, n: usize, step: f64) -> Vec<Post> {
        (0..n)
            .map(|i| {
                let elapsed = i as f64 * step;
                let now = t0() + chrono::Duration::milliseconds((elapsed * 1000.0) as i64);
                g.next_post(now, elapsed)
            })
            .collect()
    }

    /// Posts all generated at the same `elapsed` (one phase of the cycle).
    fn at_phase(g: &mut Generator, n: usize, elapsed: f64) -> Vec<Post> {
        (0..n).map(|_| g.next_post(t0(), elapsed)).collect()
    }

    #[test]
    fn every_template_slot_is_known() {
        for c in corpus::CATEGORIES {
            assert!(!c.templates.is_empty(), "{} has no templates", c.name);
            for t in c.templates {
                for seg in parse_template(t) {
                    if let Seg::Lit(s) = seg {
                        assert!(
                            !s.contains('{') && !s.contains('}'),
                            "unknown slot in {t:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            corpus::CATEGORIES.iter().map(|c| c.weight).sum::<u32>(),
            100
        );
    }

    #[test]
    fn at_least_20000_distinct_texts_in_50000_posts() {
        let mut g = Generator::new(&cfg(42), 1);
        let posts = stream(&mut g, 50_000, 0.012);
        let distinct: HashSet<&str> = posts.iter().map(|p| p.text.as_str()).collect();
        println!("distinct texts in 50,000 posts: {}", distinct.len());
        assert!(
            distinct.len() >= 20_000,
            "only {} distinct texts",
            distinct.len()
        );
        assert!(posts
            .iter()
            .all(|p| !p.text.is_empty() && !p.text.contains('{')));
    }

    #[test]
    fn same_seed_gives_same_stream() {
        let mut a = Generator::new(&cfg(7), 1);
        let mut b = Generator::new(&cfg(7), 0xabc);
        let pa = stream(&mut a, 3_000, 0.5);
        let pb = stream(&mut b, 3_000, 0.5);
        assert_eq!(pa[0].id, "syn-1-0");
        assert_eq!(pb[5].id, "syn-abc-5");
        for (x, y) in pa.iter().zip(&pb) {
            let mut y = y.clone();
            y.id = x.id.clone();
            y.reply_to = y.reply_to.map(|r| r.replace("syn-abc-", "syn-1-"));
            y.repost_of = y.repost_of.map(|r| r.replace("syn-abc-", "syn-1-"));
            assert_eq!(x, &y);
        }
        let mut c = Generator::new(&cfg(8), 1);
        let pc = stream(&mut c, 100, 0.5);
        assert_ne!(
            pa[..100].iter().map(|p| &p.text).collect::<Vec<_>>(),
            pc.iter().map(|p| &p.text).collect::<Vec<_>>()
        );
    }

    #[test]
    fn episodes_are_named_and_follow_the_cycle() {
        let g = Generator::new(&cfg(1), 1);
        assert_eq!(g.episode_at(10.0), None);
        assert_eq!(g.episode_at(100.0), Some(EPISODE_CHURN));
        assert_eq!(g.episode_at(300.0), Some(EPISODE_NARRATIVE));
        assert_eq!(g.episode_at(480.0), Some(EPISODE_CRASH));
        assert_eq!(g.episode_at(600.0 + 100.0), Some(EPISODE_CHURN));
        assert_eq!(g.episode_at(f64::NAN), None);
        let off = Generator::new(
            &SyntheticConfig {
                episodes: false,
                ..cfg(1)
            },
            1,
        );
        assert_eq!(off.episode_at(100.0), None);
        let zero = Generator::new(
            &SyntheticConfig {
                episode_cycle_s: 0,
                ..cfg(1)
            },
            1,
        );
        assert_eq!(zero.episode_at(100.0), None);
    }

    fn share(posts: &[Post], f: impl Fn(&Post) -> bool) -> f64 {
        posts.iter().filter(|p| f(p)).count() as f64 / posts.len() as f64
    }

    fn churny(p: &Post) -> bool {
        let t = p.text.to_lowercase();
        ["cancel", "refund", "switching to", "unsubscrib"]
            .iter()
            .any(|m| t.contains(m))
    }

    #[test]
    fn episodes_shift_the_mix() {
        let mut g = Generator::new(&cfg(3), 1);
        let outside = at_phase(&mut g, 6_000, 200.0);
        let churn = at_phase(&mut g, 6_000, 105.0);
        let spike = at_phase(&mut g, 6_000, 285.0);
        let crash = at_phase(&mut g, 6_000, 465.0);

        let (c_in, c_out) = (share(&churn, churny), share(&outside, churny));
        assert!(c_in > 3.0 * c_out, "churn share {c_in} vs {c_out}");
        let churn_product = |p: &Post| p.product.as_deref() == Some(corpus::CHURN_PRODUCT);
        assert!(share(&churn, churn_product) > 3.0 * share(&outside, churn_product));
        // Not a replacement: the baseline mix continues.
        assert!(share(&churn, |p| p.text.contains('$')) > 0.2);

        let ai = |p: &Post| {
            let t = p.text.to_lowercase();
            t.contains("#ai")
                || t.contains("ai agent")
                || t.contains("#agents")
                || t.contains("#llm")
        };
        assert!(share(&spike, ai) > 3.0 * share(&outside, ai));

        let sol_bad = |p: &Post| {
            let t = p.text.to_lowercase();
            (t.contains("$sol") || t.contains("solana"))
                && ["outage", "hack", "exploit", "crash", "down", "halt"]
                    .iter()
                    .any(|w| t.contains(w))
        };
        assert!(share(&crash, sol_bad) > 3.0 * share(&outside, sol_bad));
    }

    #[test]
    fn followers_are_heavy_tailed() {
        let g = Generator::new(&cfg(42), 1);
        let f: Vec<u64> = g.authors.iter().map(|a| a.author.followers).collect();
        assert_eq!(f.len(), AUTHORS);
        let under_1k = f.iter().filter(|&&x| x < 1_000).count();
        let kols = f.iter().filter(|&&x| x >= 100_000).count();
        let mega = f.iter().filter(|&&x| x >= 1_000_000).count();
        assert!(under_1k * 2 > f.len(), "{under_1k} under 1k");
        assert!((24..=60).contains(&kols), "{kols} KOLs");
        assert!(mega >= 2, "{mega} above 1M");
        let verified = g.authors.iter().filter(|a| a.author.verified).count();
        assert!(verified > 20 && verified < 500, "{verified} verified");
        let handles: HashSet<&str> = g.authors.iter().map(|a| a.author.handle.as_str()).collect();
        assert_eq!(handles.len(), AUTHORS);
        assert!(handles
            .iter()
            .all(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')));
    }

    #[test]
    fn stream_has_the_expected_ingredients() {
        let mut g = Generator::new(&cfg(42), 1);
        let posts = stream(&mut g, 20_000, 0.03);
        let all: String = posts
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for tag in [
            "$BTC", "$ETH", "$SOL", "$DOGE", "$ADA", "$AVAX", "$LINK", "$ARB", "$PEPE", "$WIF",
        ] {
            assert!(all.contains(tag), "missing {tag}");
        }
        for word in [
            "solana",
            "Ethereum",
            "#ai",
            "#defi",
            "#memecoins",
            "#etf",
            "@",
            "🙄",
            "not bad at all",
            "not happy with",
            "?",
            "!!",
        ] {
            assert!(all.contains(word), "missing {word}");
        }
        let lower = all.to_lowercase();
        for kw in ["outage", "refund", "cancel", "airdrop", "hack", "update"] {
            assert!(lower.contains(kw), "missing keyword {kw}");
        }
        assert!(share(&posts, |p| p.product.is_some()) > 0.1);
        let geo = share(&posts, |p| p.geo.is_some());
        assert!((0.6..0.8).contains(&geo), "geo share {geo}");
        assert!(posts.iter().all(|p| p.lang.as_deref() == Some("en")));
        let mut platforms: HashMap<&str, usize> = HashMap::new();
        for p in &posts {
            *platforms.entry(p.platform.as_str()).or_default() += 1;
        }
        assert_eq!(platforms.len(), PLATFORMS.len(), "{platforms:?}");
        assert!(posts
            .iter()
            .any(|p| p.channel.as_deref().is_some_and(|c| c.starts_with("r/"))));
        assert!(posts.iter().any(|p| p.reply_to.is_some()));
        assert!(posts.iter().any(|p| p.repost_of.is_some()));
        let ids: HashMap<&str, usize> = posts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        for (i, p) in posts.iter().enumerate() {
            for r in [&p.reply_to, &p.repost_of].into_iter().flatten() {
                assert!(
                    ids.get(r.as_str()).is_some_and(|&j| j < i),
                    "{r} not earlier"
                );
            }
        }
        // Authors post with Zipf-like frequency.
        let mut by_author: HashMap<&str, usize> = HashMap::new();
        for p in &posts {
            *by_author.entry(p.author.id.as_str()).or_default() += 1;
        }
        let mut counts: Vec<usize> = by_author.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        assert!(
            counts[0] > 20 * counts[counts.len() / 2],
            "{:?}",
            &counts[..5]
        );
        // Engagement grows with followers.
        let mean = |f: &dyn Fn(u64) -> bool| {
            let sel: Vec<u64> = posts
                .iter()
                .filter(|p| f(p.author.followers))
                .map(|p| p.engagement.total())
                .collect();
            sel.iter().sum::<u64>() as f64 / sel.len().max(1) as f64
        };
        assert!(mean(&|f| f >= 100_000) > 10.0 * mean(&|f| f < 1_000));
    }

    #[test]
    #[ignore = "timing; run with --release --ignored --nocapture"]
    fn throughput() {
        let mut g = Generator::new(&cfg(42), 1);
        let n = 200_000;
        let start = std::time::Instant::now();
        let mut bytes = 0;
        for i in 0..n {
            bytes += g.next_post(t0(), i as f64 * 0.005).text.len();
        }
        let per = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{per:.0} ns/post ({bytes} bytes)");
    }
}
