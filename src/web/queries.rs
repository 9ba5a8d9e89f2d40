//! Metric lookups shared by the REST handlers and the WebSocket's initial
//! snapshot. They block on the store (call them from a blocking pool); hot
//! entity lookups are served from the moka cache.

use super::error::ApiError;
use crate::actors::aggregator::window::{MetricsView, Resolution, WindowMetrics};
use crate::domain::{EntityKind, MACRO_ID};
use crate::store::cache::{EntityLatest, HotCache};
use crate::store::Store;
use serde::Serialize;

/// Largest number of windows one series request may return.
pub const MAX_SERIES_POINTS: i64 = 10_000;
/// Largest `limit` of an entity listing.
pub const MAX_LIST: usize = 1_000;

/// Parses a time given as RFC 3339 or as unix milliseconds.
pub fn parse_time(s: &str) -> Result<i64, ApiError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            ApiError::BadRequest(
                "invalid_time",
                format!("`{s}` is neither RFC 3339 nor unix milliseconds: {e}"),
            )
        })
}

/// Parses a period such as `90s`, `15m`, `1h`, `7d`; `all` is `None`.
pub fn parse_period(s: &str) -> Result<Option<i64>, ApiError> {
    if s == "all" {
        return Ok(None);
    }
    let bad = || {
        ApiError::BadRequest(
            "invalid_period",
            format!("period `{s}` must be a number with s, m, h or d (e.g. 15m, 24h), or `all`"),
        )
    };
    let Some(unit_at) = s.char_indices().last().map(|(i, _)| i) else {
        return Err(bad());
    };
    let (num, unit) = s.split_at(unit_at);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    if n <= 0 || n > 400 * 86_400_000 / unit_ms {
        return Err(bad());
    }
    Ok(Some(n * unit_ms))
}

/// Unix milliseconds as RFC 3339 (UTC, to the millisecond); empty when out of range.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A window in a response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    /// Window start, ms since the epoch.
    pub start_ms: i64,
    /// Window start, RFC 3339.
    pub start: String,
    /// The window's metrics.
    #[serde(flatten)]
    pub metrics: MetricsView,
}

impl WindowView {
    fn new(start_ms: i64, m: &WindowMetrics) -> Self {
        WindowView {
            start_ms,
            start: rfc3339(start_ms),
            metrics: m.view(),
        }
    }
}

/// Latest window per resolution.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct LatestWindows {
    /// Latest 1-second window.
    #[serde(rename = "1s", skip_serializing_if = "Option::is_none")]
    pub s1: Option<WindowView>,
    /// Latest 1-minute window.
    #[serde(rename = "1m", skip_serializing_if = "Option::is_none")]
    pub m1: Option<WindowView>,
    /// Latest 1-hour window.
    #[serde(rename = "1h", skip_serializing_if = "Option::is_none")]
    pub h1: Option<WindowView>,
}

/// An entity's totals and latest windows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntityView {
    /// Kind.
    pub kind: EntityKind,
    /// Id.
    pub id: String,
    /// Start of its first window.
    pub first_seen: String,
    /// Start of its latest window.
    pub last_seen: String,
    /// Totals over its whole life.
    #[serde(flatten)]
    pub totals: MetricsView,
    /// Latest windows.
    pub latest: LatestWindows,
    /// The latest summary (single-entity lookups only, once one is written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::summary::model::Summary>,
    /// Set only when the store is failing and this answer comes from the
    /// cache: when the store began to fail (RFC 3339). Anything written
    /// since may be missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<String>,
}

/// An entity from the hot cache alone: never touches the store, so it can
/// run on the async threads (`None` on a miss).
pub fn entity_cached(cache: &HotCache, kind: EntityKind, id: &str) -> Option<EntityView> {
    cache.get(kind, id).map(|latest| view_of(kind, id, &latest))
}

/// Loads an entity: cache first, store on a miss (then cached). Blocks on
/// a miss: call it from a blocking pool.
pub fn entity(
    store: &dyn Store,
    cache: &HotCache,
    kind: EntityKind,
    id: &str,
) -> Result<Option<EntityView>, ApiError> {
    if let Some(hit) = entity_cached(cache, kind, id) {
        return Ok(Some(hit));
    }
    let record = match store.entity(kind, id) {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(None),
        // An outage: what the cache last held, marked stale, rather than an error.
        Err(e) if e.is_transient() => {
            let Some(old) = cache.get_any(kind, id) else {
                return Err(e.into());
            };
            let mut view = view_of(kind, id, &old);
            let since = store
                .failing_since()
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
            view.stale_since = Some(rfc3339(since));
            return Ok(Some(view));
        }
        Err(e) => return Err(e.into()),
    };
    let mut latest = EntityLatest {
        record,
        latest: Default::default(),
    };
    for res in Resolution::ALL {
        let at = latest.record.last_seen_ms;
        let window = store
            .series(kind, id, res, res.window_start(at), res.window_start(at))?
            .pop();
        if let Some(slot) = latest.latest.get_mut(usize::from(res.tag())) {
            *slot = window;
        }
    }
    let latest = cache.insert(kind, id, latest);
    Ok(Some(view_of(kind, id, &latest)))
}

fn view_of(kind: EntityKind, id: &str, latest: &EntityLatest) -> EntityView {
    let view = |res: Resolution| latest.window(res).map(|(ts, m)| WindowView::new(*ts, m));
    EntityView {
        kind,
        id: id.to_string(),
        first_seen: rfc3339(latest.record.first_seen_ms),
        last_seen: rfc3339(latest.record.last_seen_ms),
        totals: latest.record.totals.view(),
        latest: LatestWindows {
            s1: view(Resolution::Second),
            m1: view(Resolution::Minute),
            h1: view(Resolution::Hour),
        },
        summary: None,
        stale_since: None,
    }
}

/// The view of the macro entity before its first post: all zeros.
pub fn empty_overall() -> EntityView {
    EntityView {
        kind: EntityKind::Macro,
        id: MACRO_ID.into(),
        first_seen: String::new(),
        last_seen: String::new(),
        totals: WindowMetrics::default().view(),
        latest: LatestWindows::default(),
        summary: None,
        stale_since: None,
    }
}

/// How to order an entity listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Most posts first.
    Volume,
    /// Most positive sentiment_index first.
    Sentiment,
    /// Most above its own baseline first.
    Popularity,
    /// Largest share of voice first (same order as volume).
    ShareOfVoice,
    /// Largest relative volume change against the previous period first.
    Change,
    /// Largest rise of sentiment_index against the previous period first.
    SentimentChange,
}

impl SortBy {
    /// Parses `volume`, `sentiment`/`sentiment_index`, `popularity`,
    /// `share_of_voice`, `change`, `sentiment_change`.
    pub fn parse(s: &str) -> Result<SortBy, ApiError> {
        match s {
            "volume" => Ok(SortBy::Volume),
            "sentiment" | "sentiment_index" => Ok(SortBy::Sentiment),
            "popularity" => Ok(SortBy::Popularity),
            "share_of_voice" => Ok(SortBy::ShareOfVoice),
            "change" => Ok(SortBy::Change),
            "sentiment_change" => Ok(SortBy::SentimentChange),
            _ => Err(ApiError::BadRequest(
                "invalid_sort",
                format!("sort `{s}` must be volume, sentiment, popularity, share_of_voice, change or sentiment_change"),
            )),
        }
    }

    /// Whether this order needs a period (it compares with the one before).
    pub fn needs_period(self) -> bool {
        matches!(self, SortBy::Change | SortBy::SentimentChange)
    }
}

/// Which entities a listing keeps, and which page it returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// Only entities with at least this volume over the period.
    pub min_volume: u64,
    /// Only entities whose id contains this text, given in lower case
    /// (the match is case-insensitive).
    pub id_contains: Option<String>,
    /// Rows to skip (paging).
    pub offset: usize,
    /// Page size.
    pub limit: usize,
}

impl ListFilter {
    fn keeps(&self, id: &str, volume: u64) -> bool {
        volume >= self.min_volume
            && self
                .id_contains
                .as_ref()
                .is_none_or(|q| id.to_lowercase().contains(q.as_str()))
    }
}

/// One row of an entity listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RankedEntity {
    /// Id.
    pub id: String,
    /// Metrics over the period.
    #[serde(flatten)]
    pub metrics: MetricsView,
    /// Share of the kind's volume over the period, 0..1.
    pub share_of_voice: f64,
    /// Activity over the period against the entity's own baseline (the 24 h
    /// before the period, per unit of time): 1.0 is usual, 3.0 three times
    /// busier. Absent without a baseline (a new entity, or `period=all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub popularity: Option<f64>,
    /// Volume in the period of the same length just before this one
    /// (absent for `period=all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_volume: Option<u64>,
    /// Relative volume change against the previous period
    /// (`(volume − previous) / previous`; absent when the previous is 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    /// sentiment_index minus the previous period's (absent when either is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment_change: Option<f64>,
}

/// One entity's metrics over a period and the comparisons with its past.
struct Row {
    id: String,
    metrics: WindowMetrics,
    popularity: Option<f64>,
    previous: Option<WindowMetrics>,
}

/// An entity listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ranking {
    /// Kind listed.
    pub kind: EntityKind,
    /// Period covered (`all`, or e.g. `1h`).
    pub period: String,
    /// Period start (absent for `all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Period end.
    pub to: String,
    /// Entities active in the period that pass the filters.
    pub total: usize,
    /// Offset of this page.
    pub offset: usize,
    /// Offset of the next page (absent on the last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
    /// The page.
    pub entities: Vec<RankedEntity>,
}

/// Baseline span for popularity.
const BASELINE_MS: i64 = 24 * 3_600_000;

/// Lists a kind's entities over a period (`None` = all time).
pub fn rank(
    store: &dyn Store,
    kind: EntityKind,
    period_ms: Option<i64>,
    period_label: &str,
    sort: SortBy,
    filter: &ListFilter,
    now_ms: i64,
) -> Result<Ranking, ApiError> {
    let since = period_ms.map_or(i64::MIN, |p| now_ms - p);
    let records = store.entities(kind, since.saturating_sub(60_000))?;
    let mut rows: Vec<Row> = Vec::with_capacity(records.len());
    // Share of voice is of the whole kind, whatever the filters keep.
    let mut total_volume = 0u64;
    for (id, record) in records {
        match period_ms {
            None => {
                total_volume += record.totals.volume;
                if filter.keeps(&id, record.totals.volume) {
                    rows.push(Row {
                        id,
                        metrics: record.totals,
                        popularity: None,
                        previous: None,
                    });
                }
            }
            Some(p) => {
                let res = if p <= 6 * 3_600_000 {
                    Resolution::Minute
                } else {
                    Resolution::Hour
                };
                let start = res.window_start(since);
                let mut m = WindowMetrics::default();
                for (_, w) in store.series(kind, &id, res, start, now_ms)? {
                    m.merge(&w);
                }
                total_volume += m.volume;
                if m.volume == 0 || !filter.keeps(&id, m.volume) {
                    continue;
                }
                let mut previous = WindowMetrics::default();
                for (_, w) in
                    store.series(kind, &id, res, res.window_start(since - p), start - 1)?
                {
                    previous.merge(&w);
                }
                let base_from = since - BASELINE_MS;
                let baseline: u64 = store
                    .series(
                        kind,
                        &id,
                        Resolution::Hour,
                        Resolution::Hour.window_start(base_from),
                        since - 1,
                    )?
                    .iter()
                    .filter(|(ts, _)| *ts + Resolution::Hour.millis() <= since)
                    .map(|(_, w)| w.volume)
                    .sum();
                let popularity = (baseline > 0).then(|| {
                    let usual = baseline as f64 * p as f64 / BASELINE_MS as f64;
                    m.volume as f64 / usual
                });
                rows.push(Row {
                    id,
                    metrics: m,
                    popularity,
                    previous: Some(previous),
                });
            }
        }
    }
    let mut ranked: Vec<RankedEntity> = rows
        .into_iter()
        .map(|row| {
            let view = row.metrics.view();
            let before = row.previous.as_ref().map(WindowMetrics::view);
            let previous_volume = before.as_ref().map(|b| b.volume);
            RankedEntity {
                id: row.id,
                share_of_voice: if total_volume > 0 {
                    row.metrics.volume as f64 / total_volume as f64
                } else {
                    0.0
                },
                change: previous_volume
                    .filter(|v| *v > 0)
                    .map(|v| (view.volume as f64 - v as f64) / v as f64),
                sentiment_change: match (
                    view.sentiment_index,
                    before.and_then(|b| b.sentiment_index),
                ) {
                    (Some(now), Some(then)) => Some(now - then),
                    _ => None,
                },
                previous_volume,
                metrics: view,
                popularity: row.popularity,
            }
        })
        .collect();
    let key = |r: &RankedEntity| -> f64 {
        match sort {
            SortBy::Volume | SortBy::ShareOfVoice => r.metrics.volume as f64,
            SortBy::Sentiment => r.metrics.sentiment_index.unwrap_or(f64::NEG_INFINITY),
            SortBy::Popularity => r.popularity.unwrap_or(f64::NEG_INFINITY),
            // New entities (no previous volume) rank above every finite rise.
            SortBy::Change => r.change.unwrap_or(f64::INFINITY),
            SortBy::SentimentChange => r.sentiment_change.unwrap_or(f64::NEG_INFINITY),
        }
    };
    ranked.sort_by(|a, b| {
        key(b)
            .total_cmp(&key(a))
            .then_with(|| b.metrics.volume.cmp(&a.metrics.volume))
            .then_with(|| a.id.cmp(&b.id))
    });
    let total = ranked.len();
    let page: Vec<RankedEntity> = ranked
        .into_iter()
        .skip(filter.offset)
        .take(filter.limit.min(MAX_LIST))
        .collect();
    let end = filter.offset + page.len();
    Ok(Ranking {
        kind,
        period: period_label.to_string(),
        from: period_ms.map(|_| rfc3339(since)),
        to: rfc3339(now_ms),
        total,
        offset: filter.offset,
        next_offset: (end < total && !page.is_empty()).then_some(end),
        entities: page,
    })
}

/// A series response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Series {
    /// Kind.
    pub kind: EntityKind,
    /// Id.
    pub id: String,
    /// Resolution.
    pub resolution: Resolution,
    /// First window start requested (ms).
    pub from_ms: i64,
    /// Last window start requested (ms).
    pub to_ms: i64,
    /// Windows with at least one post, oldest first (empty windows are absent).
    pub points: Vec<WindowView>,
}

/// An entity's series at `resolution` between `from_ms` and `to_ms` (window starts).
pub fn series(
    store: &dyn Store,
    kind: EntityKind,
    id: &str,
    resolution: Resolution,
    from_ms: i64,
    to_ms: i64,
) -> Result<Series, ApiError> {
    if from_ms > to_ms {
        return Err(ApiError::BadRequest(
            "invalid_range",
            "`from` is after `to`".into(),
        ));
    }
    let (from, to) = (
        resolution.window_start(from_ms),
        resolution.window_start(to_ms),
    );
    if (to - from) / resolution.millis() >= MAX_SERIES_POINTS {
        return Err(ApiError::BadRequest(
            "range_too_large",
            format!(
                "the range spans more than {MAX_SERIES_POINTS} windows at {}; narrow it or use a coarser resolution",
                resolution.as_str()
            ),
        ));
    }
    let points = store
        .series(kind, id, resolution, from, to)?
        .iter()
        .map(|(ts, m)| WindowView::new(*ts, m))
        .collect();
    Ok(Series {
        kind,
        id: id.to_string(),
        resolution,
        from_ms: from,
        to_ms: to,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{EntityRecord, StoreError};

    /// A store in an outage: every read fails as ScyllaDB's do when the
    /// cluster is overloaded (the fallback under test is this module's).
    struct Down;

    impl Store for Down {
        fn apply(
            &self,
            _: &crate::store::WindowBatch,
        ) -> Result<crate::store::Applied, StoreError> {
            Err(Down::error())
        }
        fn seen(&self, _: EntityKind, _: i64) -> Result<Vec<u64>, StoreError> {
            Err(Down::error())
        }
        fn watermark(&self, _: EntityKind) -> Result<Option<i64>, StoreError> {
            Err(Down::error())
        }
        fn series(
            &self,
            _: EntityKind,
            _: &str,
            _: Resolution,
            _: i64,
            _: i64,
        ) -> Result<Vec<(i64, WindowMetrics)>, StoreError> {
            Err(Down::error())
        }
        fn entity(&self, _: EntityKind, _: &str) -> Result<Option<EntityRecord>, StoreError> {
            Err(Down::error())
        }
        fn entities(
            &self,
            _: EntityKind,
            _: i64,
        ) -> Result<Vec<(String, EntityRecord)>, StoreError> {
            Err(Down::error())
        }
        fn expire(&self, _: i64) -> Result<usize, StoreError> {
            Ok(0)
        }
        fn sync(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn failing_since(&self) -> Option<i64> {
            Some(1_000)
        }
    }

    impl Down {
        fn error() -> StoreError {
            StoreError::Scylla {
                what: "SELECT".into(),
                message: "overloaded".into(),
                transient: true,
            }
        }
    }

    #[test]
    fn an_outage_answers_from_the_cache_marked_stale_or_503() {
        let cache = HotCache::with_ttl(10, std::time::Duration::ZERO);
        let fresh = entity(&Down, &cache, EntityKind::Project, "SOL");
        assert!(
            matches!(&fresh, Err(ApiError::Unavailable(m)) if m.contains("store is unavailable")),
            "nothing cached: {fresh:?}"
        );
        let mut latest = EntityLatest::default();
        latest.record.totals.volume = 7;
        cache.insert(EntityKind::Project, "SOL", latest);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let view = entity(&Down, &cache, EntityKind::Project, "SOL")
            .expect("answered")
            .expect("known");
        assert_eq!(view.totals.volume, 7);
        assert_eq!(
            view.stale_since.as_deref(),
            Some("1970-01-01T00:00:01.000Z")
        );
    }

    #[test]
    fn times_parse_as_rfc3339_or_unix_ms() {
        assert_eq!(parse_time("1000").ok(), Some(1000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z").ok(), Some(1000));
        assert!(parse_time("yesterday").is_err());
    }

    fn window(n: u64, score: f64) -> WindowMetrics {
        use crate::actors::aggregator::window::{id_hash, Contribution};
        let mut m = WindowMetrics::default();
        for i in 0..n {
            m.add(
                &Contribution {
                    author_hash: id_hash(&format!("a{i}")),
                    engagement: 1,
                    label: crate::domain::SentimentLabel::Neutral,
                    score,
                    weight: 1.0,
                },
                false,
            );
        }
        m
    }

    #[test]
    fn listings_compare_with_the_previous_period_filter_and_page() {
        use crate::store::embedded::EmbeddedStore;
        use crate::store::{WindowBatch, WindowDelta};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open_at(dir.path(), &Default::default()).expect("store");
        let now = 1_795_000_000_000_i64;
        let hour = 3_600_000;
        // (entity, volume in the hour before the last, volume in the last hour, score)
        let plan = [
            ("RISE", 10, 20, 0.5),
            ("NEW", 0, 5, 0.1),
            ("FALL", 10, 5, -0.5),
            ("QUIET", 3, 1, 0.0),
        ];
        let mut windows = Vec::new();
        for (id, before, after, score) in plan {
            if before > 0 {
                windows.push(WindowDelta {
                    start_ms: now - hour - 30 * 60_000,
                    entity: id.into(),
                    metrics: window(before, -score),
                });
            }
            windows.push(WindowDelta {
                start_ms: now - 30 * 60_000,
                entity: id.into(),
                metrics: window(after, score),
            });
        }
        store
            .apply(&WindowBatch {
                kind: Some(EntityKind::Project),
                windows,
                ..Default::default()
            })
            .expect("apply");
        let list = |sort, filter: &ListFilter| {
            rank(
                &store,
                EntityKind::Project,
                Some(hour),
                "1h",
                sort,
                filter,
                now,
            )
            .expect("rank")
        };
        let page = |offset, limit| ListFilter {
            offset,
            limit,
            ..ListFilter::default()
        };
        let ids = |r: &Ranking| r.entities.iter().map(|e| e.id.clone()).collect::<Vec<_>>();

        let by_change = list(SortBy::Change, &page(0, 10));
        assert_eq!(ids(&by_change), ["NEW", "RISE", "FALL", "QUIET"]);
        let rise = &by_change.entities[1];
        assert_eq!(rise.previous_volume, Some(10));
        assert_eq!(rise.change, Some(1.0));
        assert!((rise.sentiment_change.expect("both periods scored") - 1.0).abs() < 1e-9);
        assert_eq!(by_change.entities[0].change, None, "no previous volume");
        assert_eq!(by_change.entities[0].previous_volume, Some(0));

        let by_sentiment_change = list(SortBy::SentimentChange, &page(0, 10));
        assert_eq!(ids(&by_sentiment_change)[0], "RISE");

        // Paging walks the same order without gaps.
        let first = list(SortBy::Volume, &page(0, 3));
        assert_eq!(first.total, 4);
        assert_eq!(first.next_offset, Some(3));
        let second = list(SortBy::Volume, &page(3, 3));
        assert_eq!(second.next_offset, None);
        assert_eq!(
            [ids(&first), ids(&second)].concat(),
            ids(&list(SortBy::Volume, &page(0, 10)))
        );

        // Filters: minimum volume and id text.
        let busy = ListFilter {
            min_volume: 5,
            id_contains: Some("i".into()),
            ..page(0, 10)
        };
        let busy = list(SortBy::Volume, &busy);
        assert_eq!(ids(&busy), ["RISE"]);
        let all: u64 = plan.iter().map(|(_, _, after, _)| after).sum();
        assert!(
            (busy.entities[0].share_of_voice - 20.0 / all as f64).abs() < 1e-9,
            "share of voice is of the whole kind, not of the filtered rows"
        );
    }

    proptest::proptest! {
        #[test]
        fn periods_never_panic(s in "\\PC{0,12}") {
            let _ = parse_period(&s);
        }
    }

    #[test]
    fn periods_parse_with_units() {
        assert!(
            parse_period("1é").is_err(),
            "a multi-byte unit is an error, not a panic"
        );
        assert_eq!(parse_period("15m").ok(), Some(Some(900_000)));
        assert_eq!(parse_period("all").ok(), Some(None));
        assert!(parse_period("15x").is_err());
        assert!(parse_period("-1h").is_err());
        assert!(parse_period("").is_err());
    }
}
