//! The vocabulary of the synthetic stream: post templates grouped by
//! category, and the tables their slots are filled from (projects, products,
//! hashtags, emoji, cities, handles…).
//!
//! This module is data only; [`super::generator`] parses the templates once
//! and composes posts from them. A template is plain text with `{slot}`
//! placeholders; each occurrence of a slot is filled independently. The slots
//! a template may use:
//!
//! | slot | filled with |
//! |---|---|
//! | `{cash}`, `{name}`, `{coin}` | the post's project as `$CASHTAG`, as a written-out name, or either |
//! | `{cash2}`, `{name2}` | a second, different project |
//! | `{prod}`, `{feat}`, `{issue}` | the post's product, one of its features, one of its failure phrases |
//! | `{comp}`, `{rival}` | the company, a competitor |
//! | `{at}`, `{tag}`, `{ntag}` | an `@mention`, a generic `#hashtag`, a hashtag of the post's narrative |
//! | `{n}`, `{pct}` | a small number, a percentage |
//! | `{price}`, `{amt}`, `{cost}` | a price of the post's project, a large amount of money, a consumer-sized amount |
//! | `{city}`, `{day}`, `{hour}`, `{since}` | the author's city, a day, a time of day, a past moment |
//! | `{int}`, `{good}`, `{bad}` | an intensifier, a positive adjective, a negative adjective |
//! | `{who}`, `{pal}`, `{xchg}` | a person, a form of address, an exchange |
//! | `{pe}`, `{ne}`, `{se}`, `{fe}`, `{sad}`, `{wow}`, `{gross}`, `{angry}` | an emoji of that mood |

/// The broad subject of a category; decides platform, channel and hashtags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Posts about crypto projects.
    Crypto,
    /// Posts about the fictional company's products (`Post.product` is set).
    Brand,
    /// Posts carried by a narrative (AI agents, DeFi, memecoins, regulation).
    Narrative,
    /// Everyday chatter that mentions no project or product.
    Chatter,
}

/// The emotional colour of a category; decides the decoration emoji and
/// whether caps and exclamation marks are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mood {
    /// Joy, enthusiasm.
    Positive,
    /// Disappointment, general negativity.
    Negative,
    /// Anger.
    Angry,
    /// Fear, anxiety.
    Fear,
    /// Sadness.
    Sad,
    /// Surprise.
    Surprise,
    /// Disgust.
    Disgust,
    /// Sarcasm: positive words, negative meaning.
    Sarcastic,
    /// Informational, questions.
    Neutral,
}

/// A group of templates sharing a subject and a mood.
#[derive(Debug, Clone, Copy)]
pub struct Category {
    /// Stable name (used by the generator to find episode categories).
    pub name: &'static str,
    /// What the posts are about.
    pub domain: Domain,
    /// How they feel.
    pub mood: Mood,
    /// For narrative posts: the id of the [`Narrative`] whose hashtags `{ntag}` uses.
    pub narrative: Option<&'static str>,
    /// Relative share of the category outside episodes (0 = episodes only).
    pub weight: u32,
    /// The templates.
    pub templates: &'static [&'static str],
}

/// A crypto project the stream talks about.
#[derive(Debug, Clone, Copy)]
pub struct Project {
    /// Ticker, written as `$ID` in cashtags.
    pub id: &'static str,
    /// Written-out names, in the spellings people use.
    pub names: &'static [&'static str],
    /// Lower-case slug: hashtag and Discord server name.
    pub slug: &'static str,
    /// Its subreddit.
    pub subreddit: &'static str,
    /// Relative share of posts about it.
    pub weight: u32,
    /// Typical price in USD; `{price}` varies around it.
    pub price: f64,
}

/// A product of the fictional company.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    /// Id put in `Post.product`.
    pub id: &'static str,
    /// How posts refer to it.
    pub names: &'static [&'static str],
    /// Features people praise or miss.
    pub features: &'static [&'static str],
    /// Failure phrases (third person: "keeps crashing").
    pub issues: &'static [&'static str],
    /// Where it is discussed on Reddit.
    pub subreddit: &'static str,
    /// Relative share of brand posts about it.
    pub weight: u32,
}

/// A narrative and the hashtags that carry it.
#[derive(Debug, Clone, Copy)]
pub struct Narrative {
    /// Narrative id, as in the default entity configuration.
    pub id: &'static str,
    /// Hashtags, with the `#`.
    pub tags: &'static [&'static str],
    /// Subreddits where it is discussed.
    pub subreddits: &'static [&'static str],
}

/// Name of the fictional company whose products the brand posts discuss.
pub const COMPANY: &str = "Nimbus";

/// Product the churn-wave episode is about.
pub const CHURN_PRODUCT: &str = "nimbus-plus";
/// Project the sentiment-crash episode is about.
pub const CRASH_PROJECT: &str = "SOL";
/// Narrative the narrative-spike episode pushes.
pub const SPIKE_NARRATIVE: &str = "ai-agents";

/// Category names the generator needs for episodes.
pub mod cat {
    /// Customer-churn posts.
    pub const CHURN: &str = "churn";
    /// Negative brand posts.
    pub const BRAND_NEGATIVE: &str = "brand-negative";
    /// Project crash posts (outage, hack).
    pub const CRASH: &str = "crash";
    /// Fearful crypto posts.
    pub const CRYPTO_FEAR: &str = "crypto-fear";
    /// AI-agents narrative posts.
    pub const NARRATIVE_AI: &str = "narrative-ai";
}

/// Projects: the eight configured by default, then a few unconfigured ones.
pub const PROJECTS: &[Project] = &[
    Project {
        id: "BTC",
        price: 65_000.0,
        names: &["bitcoin", "Bitcoin", "BITCOIN"],
        slug: "bitcoin",
        subreddit: "r/Bitcoin",
        weight: 24,
    },
    Project {
        id: "ETH",
        price: 3_200.0,
        names: &["ethereum", "Ethereum"],
        slug: "ethereum",
        subreddit: "r/ethereum",
        weight: 19,
    },
    Project {
        id: "SOL",
        price: 150.0,
        names: &["solana", "Solana", "SOLANA"],
        slug: "solana",
        subreddit: "r/solana",
        weight: 16,
    },
    Project {
        id: "DOGE",
        price: 0.15,
        names: &["dogecoin", "Dogecoin"],
        slug: "dogecoin",
        subreddit: "r/dogecoin",
        weight: 8,
    },
    Project {
        id: "ADA",
        price: 0.45,
        names: &["cardano", "Cardano"],
        slug: "cardano",
        subreddit: "r/cardano",
        weight: 6,
    },
    Project {
        id: "AVAX",
        price: 35.0,
        names: &["avalanche", "Avalanche"],
        slug: "avalanche",
        subreddit: "r/Avax",
        weight: 5,
    },
    Project {
        id: "LINK",
        price: 15.0,
        names: &["chainlink", "Chainlink"],
        slug: "chainlink",
        subreddit: "r/Chainlink",
        weight: 5,
    },
    Project {
        id: "ARB",
        price: 0.9,
        names: &["arbitrum", "Arbitrum"],
        slug: "arbitrum",
        subreddit: "r/arbitrum",
        weight: 5,
    },
    Project {
        id: "PEPE",
        price: 0.000_012,
        names: &["pepe", "Pepe"],
        slug: "pepe",
        subreddit: "r/pepecoin",
        weight: 4,
    },
    Project {
        id: "WIF",
        price: 2.5,
        names: &["dogwifhat"],
        slug: "dogwifhat",
        subreddit: "r/dogwifhat",
        weight: 3,
    },
    Project {
        id: "BONK",
        price: 0.000_02,
        names: &["bonk", "Bonk"],
        slug: "bonk",
        subreddit: "r/bonk",
        weight: 2,
    },
    Project {
        id: "TIA",
        price: 6.0,
        names: &["celestia", "Celestia"],
        slug: "celestia",
        subreddit: "r/CelestiaNetwork",
        weight: 1,
    },
    Project {
        id: "OP",
        price: 2.0,
        names: &["optimism", "Optimism"],
        slug: "optimism",
        subreddit: "r/optimism",
        weight: 2,
    },
];

/// The fictional company's products.
pub const PRODUCTS: &[Product] = &[
    Product {
        id: "nimbus-app",
        names: &["Nimbus app", "Nimbus mobile app", "Nimbus App"],
        features: &[
            "dark mode",
            "offline sync",
            "the new widget",
            "push notifications",
            "the search",
            "shared folders",
            "face unlock",
        ],
        issues: &[
            "keeps crashing",
            "logs me out every hour",
            "won't sync",
            "drains my battery",
            "freezes on launch",
            "lost all my notes",
        ],
        subreddit: "r/nimbus",
        weight: 30,
    },
    Product {
        id: "nimbus-plus",
        names: &["Nimbus Plus", "Nimbus+", "NimbusPlus"],
        features: &[
            "family sharing",
            "4K streaming",
            "the extra storage",
            "priority support",
            "ad-free mode",
            "the student discount",
        ],
        issues: &[
            "charged me twice",
            "raised the price again",
            "keeps buffering",
            "stopped working after the update",
            "locked my account",
            "billed me after I paused it",
        ],
        subreddit: "r/nimbus",
        weight: 30,
    },
    Product {
        id: "nimbus-router",
        names: &["Nimbus Router X2", "Nimbus X2", "Nimbus router"],
        features: &[
            "wifi 7",
            "mesh mode",
            "parental controls",
            "the guest network",
            "the setup app",
            "port forwarding",
        ],
        issues: &[
            "drops wifi every hour",
            "reboots randomly",
            "overheats",
            "loses the mesh connection",
            "bricked itself after the firmware update",
            "caps out at 50 Mbps",
        ],
        subreddit: "r/HomeNetworking",
        weight: 20,
    },
    Product {
        id: "nimbus-cloud",
        names: &["Nimbus Cloud", "Nimbus Cloud drive"],
        features: &[
            "photo backup",
            "version history",
            "link sharing",
            "end-to-end encryption",
            "the desktop client",
        ],
        issues: &[
            "deleted my files",
            "is stuck uploading",
            "won't let me log in",
            "is painfully slow",
            "duplicated every photo",
        ],
        subreddit: "r/nimbus",
        weight: 12,
    },
    Product {
        id: "nimbus-wallet",
        names: &["Nimbus Wallet", "Nimbus wallet app"],
        features: &[
            "the swap screen",
            "hardware wallet support",
            "multi-chain view",
            "the staking tab",
            "the portfolio chart",
        ],
        issues: &[
            "shows a zero balance",
            "failed my transfer",
            "won't connect to my ledger",
            "stuck on pending",
            "hides my tokens",
        ],
        subreddit: "r/nimbus",
        weight: 8,
    },
];

/// Competitors people switch to.
pub const RIVALS: &[&str] = &[
    "Stratus",
    "Cirrus",
    "Orbitel",
    "Vantage One",
    "Halo",
    "Skyline",
    "Fathom",
];

/// Narratives, matching the default entity configuration.
pub const NARRATIVES: &[Narrative] = &[
    Narrative {
        id: "ai-agents",
        tags: &["#ai", "#aiagents", "#agents", "#llm", "#AI"],
        subreddits: &["r/AIAgents", "r/CryptoCurrency", "r/singularity"],
    },
    Narrative {
        id: "defi",
        tags: &["#defi", "#dex", "#yield", "#staking", "#DeFi"],
        subreddits: &["r/defi", "r/CryptoCurrency"],
    },
    Narrative {
        id: "memecoins",
        tags: &["#memecoins", "#memecoin", "#doge", "#pepe"],
        subreddits: &["r/memecoins", "r/SatoshiStreetBets"],
    },
    Narrative {
        id: "regulation",
        tags: &["#etf", "#sec", "#regulation", "#mica", "#ETF"],
        subreddits: &["r/CryptoCurrency", "r/BitcoinMarkets"],
    },
];

/// Generic crypto hashtags.
pub const CRYPTO_TAGS: &[&str] = &[
    "#crypto",
    "#bitcoin",
    "#web3",
    "#altcoins",
    "#trading",
    "#bullrun",
    "#hodl",
    "#btc",
    "#eth",
    "#solana",
    "#cryptonews",
    "#blockchain",
    "#nft",
    "#airdrop",
    "#Crypto",
    "#altseason",
];

/// Brand and tech hashtags.
pub const BRAND_TAGS: &[&str] = &[
    "#nimbus",
    "#customerservice",
    "#tech",
    "#wifi",
    "#apps",
    "#fail",
    "#support",
    "#streaming",
    "#productivity",
    "#gadgets",
    "#Nimbus",
];

/// Hashtags of everyday chatter.
pub const CHATTER_TAGS: &[&str] = &[
    "#mondaymotivation",
    "#coffee",
    "#travel",
    "#weekend",
    "#photography",
    "#worklife",
];

/// Accounts people mention besides the pool's well-known authors.
pub const MENTIONS: &[&str] = &[
    "@NimbusSupport",
    "@NimbusHQ",
    "@solana",
    "@ethereum",
    "@cardano",
    "@avax",
    "@chainlink",
    "@arbitrum",
    "@dogecoin",
    "@ChainWireNews",
    "@DeFiDaily",
    "@WhaleWatchBot",
    "@OnChainOwl",
];

/// World cities (authors' home towns, `Post.geo`).
pub const CITIES: &[&str] = &[
    "New York",
    "London",
    "Tokyo",
    "Singapore",
    "Berlin",
    "Paris",
    "Lagos",
    "São Paulo",
    "Mumbai",
    "Dubai",
    "Seoul",
    "Sydney",
    "Toronto",
    "San Francisco",
    "Los Angeles",
    "Hong Kong",
    "Istanbul",
    "Mexico City",
    "Buenos Aires",
    "Madrid",
    "Amsterdam",
    "Zurich",
    "Nairobi",
    "Jakarta",
    "Bangkok",
    "Manila",
    "Lisbon",
    "Warsaw",
    "Cape Town",
    "Chicago",
];

/// Intensifiers.
pub const INTENSIFIERS: &[&str] = &[
    "so",
    "really",
    "extremely",
    "incredibly",
    "super",
    "absolutely",
    "insanely",
    "very",
    "crazy",
    "ridiculously",
];

/// Positive adjectives.
pub const GOOD: &[&str] = &[
    "amazing",
    "great",
    "fantastic",
    "excellent",
    "solid",
    "awesome",
    "incredible",
    "brilliant",
    "superb",
    "wonderful",
];

/// Negative adjectives.
pub const BAD: &[&str] = &[
    "terrible",
    "awful",
    "horrible",
    "useless",
    "pathetic",
    "garbage",
    "miserable",
    "a disaster",
];

/// People who appear in posts.
pub const WHO: &[&str] = &[
    "my brother",
    "my barber",
    "half of CT",
    "my dentist",
    "a random guy at the gym",
    "my coworker",
    "my mom",
    "my landlord",
    "the group chat",
    "every influencer",
    "my uber driver",
    "my roommate",
];

/// Forms of address.
pub const PALS: &[&str] = &[
    "ser", "anon", "frens", "guys", "fam", "folks", "everyone", "bro",
];

/// Exchanges.
pub const EXCHANGES: &[&str] = &[
    "Coinbase",
    "Binance",
    "Kraken",
    "OKX",
    "Bybit",
    "my exchange",
];

/// Days.
pub const DAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "tomorrow",
    "next week",
    "this weekend",
    "the 15th",
    "end of month",
];

/// Times of day.
pub const HOURS: &[&str] = &[
    "09:00", "12:00", "14:00", "15:30", "16:00", "18:00", "20:00", "22:00",
];

/// Past moments.
pub const SINCE: &[&str] = &[
    "last March",
    "early 2023",
    "the last bull run",
    "the 2021 top",
    "last summer",
    "the FTX collapse",
    "last Christmas",
    "January",
];

/// Emoji of joy.
pub const EMOJI_POSITIVE: &[&str] = &[
    "🚀", "🔥", "💪", "🙌", "😍", "🎉", "💚", "✨", "😄", "🥳", "📈", "💎",
];
/// Emoji of displeasure.
pub const EMOJI_NEGATIVE: &[&str] = &["👎", "💀", "📉", "😤", "😞", "😩"];
/// Emoji of sarcasm.
pub const EMOJI_SARCASTIC: &[&str] = &["🙄", "🙃", "😒", "🤡", "👏"];
/// Emoji of fear.
pub const EMOJI_FEAR: &[&str] = &["😱", "😰", "😨", "🫣", "😬"];
/// Emoji of sadness.
pub const EMOJI_SAD: &[&str] = &["😢", "😭", "💔", "🥲", "😞"];
/// Emoji of surprise.
pub const EMOJI_SURPRISE: &[&str] = &["😮", "🤯", "😲", "👀", "‼️"];
/// Emoji of disgust.
pub const EMOJI_DISGUST: &[&str] = &["🤮", "🤢", "😷", "🗑️"];
/// Emoji of anger.
pub const EMOJI_ANGRY: &[&str] = &["😡", "🤬", "😤", "💢"];
/// Emoji of informational posts.
pub const EMOJI_NEUTRAL: &[&str] = &["📊", "🧵", "👀", "📌", "🗓️", "ℹ️"];

/// Words put before a post.
pub const OPENERS: &[&str] = &[
    "ngl",
    "honestly",
    "ok so",
    "tbh",
    "real talk:",
    "fwiw",
    "update:",
    "hot take:",
    "quick one:",
    "so yeah,",
];

/// Words put after a crypto post.
pub const CLOSERS: &[&str] = &[
    "nfa",
    "dyor",
    "just saying",
    "thoughts?",
    "iykyk",
    "not financial advice",
];

/// Parts of handles: first names.
pub const HANDLE_FIRST: &[&str] = &[
    "alex", "sam", "maya", "leo", "nina", "omar", "kai", "yuki", "ivan", "zoe", "raj", "lucas",
    "emma", "chen", "ana", "tom", "fatima", "diego", "sara", "noah", "mia", "ben", "lena", "arjun",
    "sofia", "jay", "elif", "marco", "hana", "felix",
];
/// Parts of handles: words.
pub const HANDLE_WORD: &[&str] = &[
    "crypto", "chain", "degen", "moon", "block", "hodl", "alpha", "based", "sats", "gwei", "node",
    "whale", "ape", "wagmi", "onchain", "defi", "tech", "data", "pixel", "coffee", "macro", "gm",
];
/// Parts of handles: nouns.
pub const HANDLE_NOUN: &[&str] = &[
    "trader", "maxi", "dev", "builder", "hunter", "capital", "labs", "research", "fan", "guy",
    "girl", "writes", "codes", "wolf", "fox", "owl", "daily", "insider",
];

/// Discord channels by domain.
pub const DISCORD_CRYPTO: &[&str] = &["general", "trading", "price-talk", "alpha", "degen-chat"];
/// Discord channels of the company's server.
pub const DISCORD_BRAND: &[&str] = &["support", "feedback", "bug-reports", "general"];
/// Discord channels of chatter.
pub const DISCORD_CHATTER: &[&str] = &["general", "off-topic", "memes"];
/// YouTube channels by domain.
pub const YOUTUBE_CRYPTO: &[&str] = &[
    "ChainTalk Daily",
    "Altcoin Hour",
    "Degen Digest",
    "OnChain Weekly",
];
/// YouTube channels about tech.
pub const YOUTUBE_BRAND: &[&str] = &["Nimbus Official", "TechTeardown", "GadgetGuru Reviews"];
/// YouTube channels of chatter.
pub const YOUTUBE_CHATTER: &[&str] = &["Daily Vlog", "City Walks 4K"];
/// Mastodon instances (an author keeps one).
pub const MASTODON_INSTANCES: &[&str] = &[
    "mastodon.social",
    "fosstodon.org",
    "techhub.social",
    "mstdn.jp",
    "infosec.exchange",
];
/// Generic crypto subreddits.
pub const REDDIT_CRYPTO: &[&str] = &["r/CryptoCurrency", "r/CryptoMarkets", "r/SatoshiStreetBets"];
/// Subreddits of brand posts besides the product's own.
pub const REDDIT_BRAND: &[&str] = &["r/techsupport", "r/gadgets"];
/// Subreddits of chatter.
pub const REDDIT_CHATTER: &[&str] = &["r/CasualConversation", "r/AskReddit"];

/// Every template category. Weights are shares of the baseline mix (they sum to 100).
pub const CATEGORIES: &[Category] = &[
    Category {
        name: "crypto-positive",
        domain: Domain::Crypto,
        mood: Mood::Positive,
        narrative: None,
        weight: 12,
        templates: &[
            "{cash} looking {int} strong today {pe}",
            "just bought more {cash}, feeling {good} about this one",
            "{name} is the best ecosystem to build on right now, no contest",
            "wow {cash} up {pct} this week, love to see it {pe}",
            "{name} devs keep shipping. {int} bullish",
            "finally took profits on {cash} at {price}, what a ride {pe}",
            "{cash} breaking out!! {pal}, we are so back {pe}",
            "love the {name} community, best people in crypto {pe}",
            "{cash} staking rewards just hit my wallet, {good} start to the day",
            "the new {name} upgrade is {int} impressive, fees down {pct}",
            "happy to announce I'm joining the {name} ecosystem fund! excited for what's next",
            "{cash} to {price} is not a meme anymore {pe}",
            "bought the dip on {cash} at {price}, feeling {good}",
            "{who} finally got into {name} and now won't stop talking about it {pe}",
            "{name} just works. fast, cheap, {good}. that's the tweet",
            "green candles everywhere, {cash} leading the pack {pe} {tag}",
            "up {pct} on my {cash} bag, thank you {name} {pe}",
            "{cash} holders eating good tonight {pe}",
            "gm {pal}! {cash} is pumping and the sun is out in {city} {pe}",
            "{name} TVL just hit a new all-time high. {good} times",
            "the {name} ecosystem has never looked healthier. {int} proud to be early",
            "wagmi {pal}. {cash} strong, {cash2} strong, everything strong {pe}",
            "massive respect to the {name} team for the transparency, this is how you build trust",
            "just got my first {cash} airdrop, absolutely love this space {pe}",
            "{cash} chart is {int} beautiful right now {pe}",
            "{name} beat {name2} on fees and speed again. {good} work {at}",
            "rotated out of {cash2} into {cash}, best trade of my year {pe}",
        ],
    },
    Category {
        name: "crypto-negative",
        domain: Domain::Crypto,
        mood: Mood::Negative,
        narrative: None,
        weight: 9,
        templates: &[
            "{cash} dumping again. I'm so tired of this {ne}",
            "lost {pct} on {cash} this week, absolutely brutal {sad}",
            "{name} fees are {int} ridiculous today, {n} failed transactions and counting {angry}",
            "sold my {cash} at the bottom like an idiot {sad}",
            "{name} devs promised this for {n} months and delivered nothing {angry}",
            "worst week ever for my portfolio. {cash} down {pct}, {cash2} down more {sad}",
            "{xchg} froze my withdrawals right when {cash} tanked. furious {angry}",
            "{cash} is bleeding and nobody on the team says a word {ne}",
            "why does {name} always go down when I need it most {angry}",
            "{name} roadmap is a joke at this point {ne}",
            "can't believe I held {cash} through all of that just to watch it go to {price} {sad}",
            "{cash} tokenomics are {bad}. endless unlocks {ne}",
            "this market is {int} depressing. {cash} down again {sad}",
            "the {name} discord mods banned me for asking about the unlock. pathetic {angry}",
            "{cash} underperforming everything for {n} weeks straight. I hate this {ne}",
            "{who} told me to buy {cash} at the top. never again {sad}",
            "gas on {name} just cost me {cost} for a swap. insane {angry}",
            "{name} is dead money and I'm angry I didn't see it earlier {angry}",
            "{cash} liquidated my long at {price}. horrible day {sad}",
            "disappointed in {name} leadership. zero communication {ne}",
            "missed the {cash} pump and bought the top of {cash2}. classic me {sad}",
            "{name} wallet UX is {bad} in {city} and everywhere else {ne}",
        ],
    },
    Category {
        name: cat::CRYPTO_FEAR,
        domain: Domain::Crypto,
        mood: Mood::Fear,
        narrative: None,
        weight: 4,
        templates: &[
            "is anyone else scared about {cash} right now? feels like {since} all over again {fe}",
            "worried about my {cash} bag. the charts look terrifying {fe}",
            "{name} unlock next week is {amt}. nervous doesn't cover it {fe}",
            "panic selling everywhere. {cash} could drop to {price} {fe}",
            "rumors that {xchg} is insolvent again. pulling everything off, scared {fe}",
            "afraid this is the start of a bear market. {cash} looking weak {fe}",
            "the {name} bridge holds {amt} and nobody audited the new contracts. uneasy {fe}",
            "{cash} funding rates are insane, a liquidation cascade feels close {fe}",
            "my hands are shaking watching {cash} right now {fe}",
            "anxious about the {name} governance vote, could go very wrong {fe}",
            "what if {name} never recovers? genuinely scared for my savings {fe}",
            "{who} just pulled everything out of {cash}. should I be worried? {fe}",
        ],
    },
    Category {
        name: "crypto-neutral",
        domain: Domain::Crypto,
        mood: Mood::Neutral,
        narrative: None,
        weight: 12,
        templates: &[
            "{cash} trading at {price}, volume {pct} higher in 24h {tag}",
            "{name} mainnet upgrade scheduled for {day}. validators need to update by then",
            "{name} core devs call notes: {n} proposals discussed, next call in {n} days 🧵",
            "{cash} open interest at {amt} across major exchanges",
            "{xchg} lists {cash2} today, trading opens at {hour} UTC",
            "{name} weekly report: {n}k active addresses, fees {pct} lower",
            "new {name} update is live. release notes in the thread 🧵 {tag}",
            "{cash} / {cash2} ratio back to levels last seen {since}",
            "reminder: {name} testnet faucet resets {day}",
            "{name} governance proposal #{n} passed with {pct} in favor",
            "on-chain data: {n} whales moved {amt} in {cash} over the last hour",
            "the {name} airdrop snapshot is on {day}, check eligibility on the official site",
            "{cash} dominance at {pct}. {cash2} flat on the day",
            "listening to the {name} community call from {city}. notes later",
            "{name} ecosystem map updated, {n} new projects this month {tag}",
            "{cash} ETF flows today: {amt} net. #etf",
            "{cash} validator count update: {n}k nodes online",
            "writing a thread on {name} vs {name2} architecture, will post {day}",
            "{cash} token unlock countdown: {n} days",
            "hosting a space on {name} scaling at {hour} UTC, come through {tag}",
            "{cash} closed the week at {price}. {cash2} {pct} lower",
            "{name} foundation publishes its quarterly transparency report",
        ],
    },
    Category {
        name: "crypto-question",
        domain: Domain::Crypto,
        mood: Mood::Neutral,
        narrative: None,
        weight: 6,
        templates: &[
            "is {cash} a buy at {price}? asking for a friend",
            "what's the best wallet for {name} these days?",
            "anyone know why {cash} is moving today? 👀",
            "should I bridge to {name} or stay on {name2}? fees are killing me",
            "how do you stake {cash} without a CEX?",
            "thoughts on {cash} vs {cash2} for the next {n} months?",
            "is the {name} airdrop still live or did I miss it?",
            "can someone explain {name} rollups like I'm five?",
            "where are people getting {cash} yield above {pct}? seems sketchy",
            "who's going to the {name} meetup in {city}?",
            "is {xchg} down or is it just me? can't sell my {cash}",
            "real question: does anyone actually use {name} daily?",
            "{pal}, what's your {cash} price target for end of year?",
            "did {name} ever fix the validator issue from {since}?",
            "{at} any ETA on the {name} upgrade?",
        ],
    },
    Category {
        name: "crypto-sarcasm",
        domain: Domain::Crypto,
        mood: Mood::Sarcastic,
        narrative: None,
        weight: 3,
        templates: &[
            "great, another {name} outage, just what I needed {se}",
            "oh wonderful, {cash} down {pct} right after I bought. love that for me {se}",
            "wow {xchg} maintenance during the biggest {cash} move of the year, what timing {se}",
            "sure, {cash} to {price} any day now {se}",
            "thanks {name}, I really wanted to pay {cost} in fees for a tiny swap {se}",
            "nothing says 'decentralized' like {name} halting for {n} hours {se}",
            "love how every {cash} rally lasts exactly {n} minutes {se}",
            "yeah, totally normal for {cash2} to pump {pct} on no news {se}",
            "oh good, another influencer shilling {cash}. I'm sure this time it's different {se}",
            "brilliant move by the {name} team to ship on a Friday {se}",
            "can't wait for the next {name} 'minor upgrade' that breaks every wallet {se}",
            "{cash} 'stable' they said {se}",
            "amazing, {who} is giving me {cash} advice again {se}",
        ],
    },
    Category {
        name: "crypto-negation",
        domain: Domain::Crypto,
        mood: Mood::Neutral,
        narrative: None,
        weight: 4,
        templates: &[
            "not bad at all, {cash} holding {price} through all this",
            "{name} is not as dead as people say",
            "not happy with how {name} handled the unlock, at all",
            "honestly not bullish on {cash} anymore",
            "{cash} isn't going anywhere until the unlocks are done",
            "can't say I'm not impressed with {name} lately",
            "never doubted {name} for a second {pe}",
            "I don't hate the new {name} roadmap, surprisingly",
            "not a fan of the {cash} tokenomics, too much insider supply",
            "{name} fees are not great but not terrible either",
            "no way I'm selling {cash} here",
            "{cash} didn't dump on the news, which is honestly not a bad sign",
            "nobody is talking about {name} and that's not a bad thing",
            "not sure {cash2} is worth it over {cash} tbh",
            "{name} is not for me. too centralized",
        ],
    },
    Category {
        name: "crypto-surprise",
        domain: Domain::Crypto,
        mood: Mood::Surprise,
        narrative: None,
        weight: 3,
        templates: &[
            "wait, {cash} just did WHAT? {wow}",
            "did not expect {name} to flip {name2} in daily active users {wow}",
            "{cash} up {pct} in {n} minutes?? {wow}",
            "no way, {xchg} just listed {cash2} out of nowhere {wow}",
            "someone just moved {amt} of {cash} from a 2013 wallet {wow}",
            "whoa, {name} gas just went to zero for a minute {wow}",
            "unexpected: {name} partners with a major bank in {city} {wow}",
            "didn't see that coming. {cash} reclaiming {price} overnight {wow}",
            "{who} just told me they bought {cash}. I'm shocked {wow}",
            "surprise airdrop from {name}?! checking my wallet {wow}",
        ],
    },
    Category {
        name: "crypto-disgust",
        domain: Domain::Crypto,
        mood: Mood::Disgust,
        narrative: None,
        weight: 3,
        templates: &[
            "{cash2} team rugged {n}k people and walked away. disgusting {gross}",
            "the amount of scam {name} tokens in my wallet is gross {gross}",
            "fake {name} giveaway accounts everywhere. revolting {gross}",
            "insiders dumped {amt} of {cash2} before the announcement. sickening {gross}",
            "{name} influencers paid to shill {cash2} without disclosure. vile {gross}",
            "another {cash2} presale, another rug. this industry is nauseating {gross}",
            "seeing {who} fall for a {name} phishing link made me sick {gross}",
            "wash trading on {cash2} is so obvious it's embarrassing {gross}",
        ],
    },
    Category {
        name: "brand-positive",
        domain: Domain::Brand,
        mood: Mood::Positive,
        narrative: None,
        weight: 6,
        templates: &[
            "{prod} is {int} good. {feat} alone is worth it {pe}",
            "been using {prod} for {n} months and I love it {pe}",
            "shoutout to {at} for fixing my issue in {n} minutes. {good} support {pe}",
            "{feat} in {prod} is {good}. great update {pe}",
            "{prod} just works. best purchase this year {pe}",
            "moved from {rival} to {prod} last year and never looked back {pe}",
            "{comp} nailed it with {prod}. {int} happy {pe}",
            "just set up {prod} in {city} and it's {good} {pe}",
            "{prod} + {feat} = chef's kiss {pe}",
            "thank you {comp}! {prod} made my week {pe}",
            "the {prod} team actually listens to feedback. {feat} is exactly what I asked for",
            "{prod} update made everything faster. {good} job {at}",
            "{feat} on {prod} is the best thing {comp} ever shipped {pe}",
        ],
    },
    Category {
        name: cat::BRAND_NEGATIVE,
        domain: Domain::Brand,
        mood: Mood::Angry,
        narrative: None,
        weight: 6,
        templates: &[
            "{prod} {issue} again. {int} frustrating {angry}",
            "{prod} {issue} since {since}. fix it {at} {angry}",
            "{n} hours on hold with {comp} support and still no answer {angry}",
            "the latest {prod} update broke {feat}. terrible {ne}",
            "{prod} {issue}. worst experience I've had with any product {angry}",
            "paid {cost} for {prod} and it {issue}. awful {ne}",
            "{comp} support closed my ticket without reading it. useless {angry}",
            "really disappointed with {prod}. {feat} used to be great {sad}",
            "{prod} outage in {city} for {n} hours now. nobody at {comp} says anything {angry}",
            "why is {prod} so slow today? {feat} takes forever {ne}",
            "my {prod} {issue} every single day. I'm so over it {ne}",
            "the {feat} bug in {prod} has been open for {n} weeks. embarrassing {ne}",
            "sad to see {prod} get worse with every update {sad}",
            "{comp} support is {bad}. {prod} {issue} and they blame my setup {angry}",
        ],
    },
    Category {
        name: "brand-neutral",
        domain: Domain::Brand,
        mood: Mood::Neutral,
        narrative: None,
        weight: 4,
        templates: &[
            "{comp} announces {feat} for {prod}, rollout starting {day}",
            "{prod} version {n}.{n} release notes: {feat} improvements and bug fixes",
            "{prod} price goes to {cost}/month in {city} from {day}",
            "{at} says the {prod} incident from {day} is resolved",
            "comparing {prod} and {rival} for {feat}, results in the thread 🧵",
            "{comp} will host a {prod} livestream {day} at {hour} UTC",
            "{prod} is now available in {city}",
            "reviewed {prod} after {n} weeks: {feat} solid, the rest average",
            "PSA: {prod} scheduled maintenance {day} {hour} UTC",
            "{prod} {feat} walkthrough video is up",
            "{comp} is hiring {n} support agents in {city}",
        ],
    },
    Category {
        name: "brand-question",
        domain: Domain::Brand,
        mood: Mood::Neutral,
        narrative: None,
        weight: 3,
        templates: &[
            "does anyone know how to turn off {feat} in {prod}?",
            "{prod} or {rival}? need something with good {feat}",
            "is {prod} down for anyone else in {city}?",
            "{at} any update on the {feat} issue?",
            "how do I export my data from {prod}?",
            "is {prod} worth {cost} a month?",
            "has anyone tried {feat} on {prod}? is it any good?",
            "why does {prod} need so many permissions?",
            "does {prod} support {feat} yet or is that still coming?",
        ],
    },
    Category {
        name: "brand-sarcasm",
        domain: Domain::Brand,
        mood: Mood::Sarcastic,
        narrative: None,
        weight: 2,
        templates: &[
            "great, {prod} {issue} again, just what I needed {se}",
            "love paying {cost} a month for a product that {issue} {se}",
            "wow {comp} support, {n} days to reply with a copy-paste answer. amazing {se}",
            "oh cool, the {prod} update removed {feat}. exactly what nobody asked for {se}",
            "fantastic, {prod} {issue} right in the middle of my meeting {se}",
            "nothing like a surprise {prod} price hike to start the week {se}",
            "yeah sure {comp}, 'improving your experience' {se}",
            "thanks {at}, I always wanted to spend my weekend resetting {prod} {se}",
        ],
    },
    Category {
        name: "brand-negation",
        domain: Domain::Brand,
        mood: Mood::Neutral,
        narrative: None,
        weight: 2,
        templates: &[
            "{prod} is not bad at all actually",
            "not happy with {prod} lately, {feat} feels broken",
            "I don't regret buying {prod}, {feat} is solid",
            "{comp} support wasn't helpful at all",
            "can't complain about {prod}, {feat} works fine",
            "never had a problem with {prod} until this week",
            "{prod} isn't worth {cost}, not even close",
            "not impressed with {feat} on {prod}",
        ],
    },
    Category {
        name: cat::CHURN,
        domain: Domain::Brand,
        mood: Mood::Negative,
        narrative: None,
        weight: 2,
        templates: &[
            "cancelling my {prod} subscription. {n} outages in a month is too many {ne}",
            "done with {prod}. switching to {rival} {ne}",
            "I want a refund for {prod}. {comp} please {angry}",
            "how do I cancel {prod}? the button is hidden on purpose {angry}",
            "just hit cancel on {prod} after {n} years. sad it came to this {sad}",
            "switching to {rival} this weekend, {prod} lost me at the price hike",
            "done with this app. {prod} {issue} one time too many",
            "requested a refund from {at}. {prod} never worked properly",
            "cancelled {prod} today. {rival} is cheaper and {feat} actually works",
            "bye {prod}. {n} years and I'm done with {comp} {ne}",
            "whole family switching to {rival}. {prod} refund requested",
            "if {comp} doesn't fix {feat} by {day} I'm going to cancel",
            "unsubscribed from {prod}. not paying {cost} for this {ne}",
            "{comp} wants {cost} more per month for {prod}? cancel. done with it",
            "already cancelled {prod} and moved everything to {rival} {angry}",
            "refund please {at}, {prod} {issue} since day one",
            "time to cancel {prod}. {feat} has been broken for {n} weeks",
            "dear {comp}, I'm done with {prod}. switching to {rival} #cancel",
            "talked to support for {n} hours, still no refund. cancelling {prod} {angry}",
            "my whole team is switching to {rival}. {prod} just isn't reliable",
        ],
    },
    Category {
        name: cat::NARRATIVE_AI,
        domain: Domain::Narrative,
        mood: Mood::Positive,
        narrative: Some("ai-agents"),
        weight: 3,
        templates: &[
            "AI agents are about to eat crypto. {ntag} {ntag}",
            "just deployed an onchain AI agent on {name}. it traded {n} times in its first hour {ntag}",
            "{cash} integrating autonomous agents is the most bullish thing this cycle {ntag}",
            "every project is an AI agent project now {se} {ntag}",
            "the {name} AI agent meta is {int} hot right now {ntag}",
            "{n} new AI agent tokens launched on {name} today {ntag}",
            "LLM-powered trading bots on {name} are outperforming humans? {ntag}",
            "built an AI agent that tracks {cash} whale wallets, open-sourcing it {day} {ntag}",
            "ai agents + {name} = the next narrative. calling it now {ntag}",
            "my AI agent just bought {cash2} without asking me {wow} {ntag}",
            "AI agent tokens up {pct} this week. the {ntag} narrative is real {pe}",
            "skeptical of the ai agents hype. most of these are chatbots with a token {ntag}",
            "the {ntag} narrative is eating every timeline, {cash} pumping on it",
            "agents talking to agents on {name}. wild times {ntag}",
            "{at} just launched an AI agent framework for {name} {ntag}",
        ],
    },
    Category {
        name: "narrative-defi",
        domain: Domain::Narrative,
        mood: Mood::Neutral,
        narrative: Some("defi"),
        weight: 3,
        templates: &[
            "{name} DEX volume hit {amt} yesterday {ntag}",
            "earning {pct} APY staking {cash}, not financial advice {ntag}",
            "new yield vault on {name} just launched, audited by {n} firms {ntag}",
            "defi summer 2.0 on {name}? liquidity up {pct} {ntag}",
            "LP'd {cash}/{cash2} and the impermanent loss is killing me {ne} {ntag}",
            "lending rates on {name} spiking, {pct} on stables {ntag}",
            "the {name} dex wars are heating up {ntag}",
            "staking {cash} is the best decision I made this year {pe} {ntag}",
        ],
    },
    Category {
        name: "narrative-memes",
        domain: Domain::Narrative,
        mood: Mood::Positive,
        narrative: Some("memecoins"),
        weight: 3,
        templates: &[
            "memecoin season is back. {cash2} up {pct} {ntag}",
            "bought a memecoin named after my cat. up {pct} already {pe} {ntag}",
            "{cash2} and $PEPE leading the memecoin run {ntag}",
            "memecoins on {name} are pure casino right now {ntag}",
            "sold my {cash} for memes. either genius or idiot {ntag}",
            "dogecoin still the king of memes {pe} {ntag}",
            "$WIF holders refusing to sell {pe} {ntag}",
            "new memecoin launches on {name} every {n} seconds {ntag}",
            "memecoin mania is {int} unhealthy but I'm here for it {ntag}",
        ],
    },
    Category {
        name: "narrative-regulation",
        domain: Domain::Narrative,
        mood: Mood::Neutral,
        narrative: Some("regulation"),
        weight: 3,
        templates: &[
            "SEC delays another {cash} ETF decision to {day} {ntag}",
            "spot {cash} ETF approved in {city}?! {wow} {ntag}",
            "MiCA rules land in Europe {day}, exchanges scrambling {ntag}",
            "regulators in {city} cracking down on {cash2} trading {fe} {ntag}",
            "ETF inflows: {amt} into {cash} products this week {ntag}",
            "new regulation draft would ban staking rewards for {cash}? {fe} {ntag}",
            "the SEC lawsuit against {xchg} is a mess {ne} {ntag}",
            "clarity on crypto regulation is long overdue {ntag}",
        ],
    },
    Category {
        name: cat::CRASH,
        domain: Domain::Crypto,
        mood: Mood::Fear,
        narrative: None,
        weight: 0,
        templates: &[
            "{name} is down AGAIN. {n} hours of outage and counting {angry}",
            "{cash} crashing {pct} after the exploit. {amt} drained {fe}",
            "{name} bridge hacked. {amt} gone. this is a disaster {sad}",
            "halt on {name} mainnet, validators can't reach consensus. {cash} dumping {fe}",
            "I'm done with {name}. another outage, another hack, another lie {angry}",
            "{cash} in freefall. {pct} down in an hour {fe} #hack",
            "{name} outage means my funds are stuck. terrified {fe}",
            "if you're on {name} right now, revoke approvals. exploit ongoing {fe}",
            "{xchg} suspends {cash} deposits after the {name} hack {ne}",
            "{cash} holders absolutely wrecked today. {int} painful {sad}",
            "the {name} team's silence during this outage is disgusting {gross}",
            "{name} exploit confirmed: {amt} stolen. how does this keep happening {angry}",
            "liquidations everywhere. {cash} wicked to {price} {fe}",
            "{name} down, {cash} down, my portfolio down. worst day {sad}",
            "never touching {name} again after this hack {angry} #outage",
            "{cash} is a disaster. outage, exploit, and now a depeg {ne}",
            "block production on {name} stopped {n} minutes ago. not again {fe} #outage",
            "{who} lost everything in the {name} hack. {bad} {sad}",
        ],
    },
    Category {
        name: "chatter",
        domain: Domain::Chatter,
        mood: Mood::Neutral,
        narrative: None,
        weight: 7,
        templates: &[
            "gm from {city} {pe}",
            "coffee first, charts later. gm {pal}",
            "the weather in {city} is {int} nice today",
            "stuck in traffic in {city}, scrolling the timeline",
            "anyone else watching the game tonight?",
            "new week, new goals. let's go {pe}",
            "taking a break from screens {day}",
            "{city} meetup was {good}, thanks everyone who came {pe}",
            "working late again. send coffee",
            "just landed in {city}. who's around?",
            "gn {pal}, see you tomorrow",
            "my cat knocked my laptop off the desk. again {sad}",
            "{who} asked me what I do for work. still can't explain it",
            "best ramen in {city}? need recommendations",
        ],
    },
];
