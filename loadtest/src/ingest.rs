//! Ingest bodies made fast enough for a load generator that must send
//! 100,000 posts/s from one core: posts of the seed's shape are serialised
//! once as templates with two holes (the id and `created_at`), and every
//! request's JSON array is the templates' text with the holes filled.
//!
//! Ids are `lt-<run>-<n>` with `n` a sequence number, so a receiver can
//! find when and in which request a post was sent.

use crate::config::SeedConfig;
use serde_json::Value;

/// The probe entity: a `$cashtag` no other post mentions.
pub const PROBE: &str = "LTPROBE";

const ID_HOLE: &str = "\u{1}ID\u{1}";
const AT_HOLE: &str = "\u{1}AT\u{1}";

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Id,
    At,
}

/// One post's JSON with its holes.
#[derive(Debug, Clone)]
struct Template(Vec<Part>);

impl Template {
    fn of(mut post: Value) -> Template {
        post["id"] = Value::String(ID_HOLE.into());
        post["created_at"] = Value::String(AT_HOLE.into());
        let text = post.to_string();
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        let hole = |s: &str| {
            [(ID_HOLE, Part::Id), (AT_HOLE, Part::At)]
                .into_iter()
                .filter_map(|(h, p)| {
                    // serde_json writes U+0001 as `\u0001`.
                    let escaped = h.replace('\u{1}', "\\u0001");
                    s.find(&escaped).map(|i| (i, escaped.len(), p))
                })
                .min_by_key(|(i, ..)| *i)
        };
        while let Some((i, len, part)) = hole(rest) {
            parts.push(Part::Text(rest[..i].to_string()));
            parts.push(part);
            rest = &rest[i + len..];
        }
        parts.push(Part::Text(rest.to_string()));
        Template(parts)
    }

    fn write(&self, out: &mut Vec<u8>, id: &str, at: &str) {
        for p in &self.0 {
            match p {
                Part::Text(t) => out.extend_from_slice(t.as_bytes()),
                Part::Id => out.extend_from_slice(id.as_bytes()),
                Part::At => out.extend_from_slice(at.as_bytes()),
            }
        }
    }
}

/// Makes `POST /api/ingest` bodies of numbered posts.
#[derive(Debug, Clone)]
pub struct Bodies {
    run: String,
    posts: Vec<Template>,
    probe: Template,
}

impl Bodies {
    /// Bodies for the run `run`, cycling through `templates` distinct posts
    /// of the seed's shape (authors, projects, topics, platforms).
    pub fn new(run: &str, templates: usize) -> Bodies {
        let cfg = SeedConfig {
            posts: templates.max(1),
            ..SeedConfig::default()
        };
        let now = chrono::Utc::now();
        let posts = (0..cfg.posts)
            .map(|i| Template::of(crate::seed::post(&cfg, run, i, now)))
            .collect();
        let mut probe = crate::seed::post(&cfg, run, 0, now);
        probe["text"] = Value::String(format!("latency probe ${PROBE} for the load test"));
        Bodies {
            run: run.to_string(),
            posts,
            probe: Template::of(probe),
        }
    }

    /// The id of post `n`.
    pub fn id(&self, n: u64) -> String {
        format!("lt-{}-{n}", self.run)
    }

    /// The sequence number of an id of this run.
    pub fn seq(&self, id: &str) -> Option<u64> {
        id.strip_prefix("lt-")?
            .strip_prefix(self.run.as_str())?
            .strip_prefix('-')?
            .parse()
            .ok()
    }

    /// A JSON array of posts `first .. first + n`, all created at `at`
    /// (RFC 3339); post `first` is the probe when `probe`.
    pub fn body(&self, first: u64, n: usize, at: &str, probe: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * 400 + 2);
        out.push(b'[');
        for k in 0..n as u64 {
            if k > 0 {
                out.push(b',');
            }
            let seq = first + k;
            let t = if probe && k == 0 {
                &self.probe
            } else {
                &self.posts[(seq % self.posts.len() as u64) as usize]
            };
            t.write(&mut out, &self.id(seq), at);
        }
        out.push(b']');
        out
    }
}

/// Now as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_arrays_of_numbered_posts() {
        let b = Bodies::new("r1", 10);
        let body = b.body(41, 3, "2026-11-22T10:00:00.000Z", true);
        let posts: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
        assert_eq!(posts.len(), 3);
        let ids: Vec<&str> = posts
            .iter()
            .map(|p| p["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, ["lt-r1-41", "lt-r1-42", "lt-r1-43"]);
        assert!(posts
            .iter()
            .all(|p| p["created_at"] == "2026-11-22T10:00:00.000Z"));
        assert!(posts[0]["text"]
            .as_str()
            .expect("text")
            .contains("$LTPROBE"));
        assert!(!posts[1]["text"].as_str().expect("text").contains("LTPROBE"));
        assert!(posts[1]["author"]["id"].is_string());
        assert_eq!(b.seq("lt-r1-42"), Some(42));
        assert_eq!(b.seq("lt-r2-42"), None);
        assert_eq!(b.seq("other"), None);
    }

    #[test]
    fn templates_cycle_and_match_the_seed() {
        let b = Bodies::new("r", 4);
        let body = b.body(0, 8, "2026-11-22T10:00:00.000Z", false);
        let posts: Vec<Value> = serde_json::from_slice(&body).expect("array");
        assert_eq!(posts[1]["text"], posts[5]["text"]);
        assert_ne!(posts[1]["text"], posts[2]["text"]);
    }
}
