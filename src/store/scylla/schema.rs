//! The ScyllaDB schema and `starling migrate`, which creates or upgrades it.
//!
//! Tables follow ScyllaDB's time-series guidance:
//! - windows are partitioned by entity **and time bucket** (1-second windows
//!   by hour: at most 3,600 rows; 1-minute by day: 1,440; 1-hour by 30 days:
//!   720), clustered newest first;
//! - the tables that only grow in time (windows, counted post ids,
//!   summaries) use TimeWindowCompactionStrategy with the resolution's
//!   retention as the table's default TTL (about 20 compaction windows per
//!   retention period); nothing deletes from them, so retention never writes
//!   tombstones;
//! - the tables that are overwritten in place (entity records, watermarks,
//!   half-written batches, alerts, webhook endpoints and outbox) keep the
//!   default compaction; resolved alerts carry the alert retention as a
//!   per-row TTL, and the alert event log has it as its table TTL (TWCS).
//!
//! Values that are sets of authors or whole records are blobs in the
//! embedded store's encoding (postcard): a window's author set switches
//! from exact to a HyperLogLog sketch and has no column form.

use super::{Access, Cluster};
use crate::config::StoreConfig;
use crate::store::StoreError;
use std::sync::Arc;

/// Version of the schema this build writes (`schema_version` table).
pub const VERSION: i32 = 2;

/// How long one bucket (partition) of a window table spans.
pub const HOUR_MS: i64 = 3_600_000;
/// A day.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// The bucket of 1-hour windows.
pub const BLOCK_MS: i64 = 30 * DAY_MS;

/// One table: its name, columns and keys, and how it is compacted.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Name within the keyspace.
    pub name: &'static str,
    /// Everything between `CREATE TABLE name (` and `)`.
    pub body: &'static str,
    /// `CLUSTERING ORDER BY (…)`, if any.
    pub order: Option<&'static str>,
    /// Time-series table: TWCS with this default TTL in seconds.
    pub ttl_s: Option<i64>,
    /// Other options at creation (`gc_grace_seconds = …`).
    pub extra: Option<&'static str>,
}

impl Table {
    /// Compaction and TTL options (`WITH …`), for create and alter.
    fn options(&self) -> String {
        let mut opts = Vec::new();
        if let Some(ttl) = self.ttl_s {
            // About 20 compaction windows per retention period, at least an hour.
            let window_h = (ttl / 3_600 / 20).max(1);
            let (unit, size) = if window_h >= 24 {
                ("DAYS", window_h / 24)
            } else {
                ("HOURS", window_h)
            };
            opts.push(format!(
                "compaction = {{'class': 'TimeWindowCompactionStrategy', \
                 'compaction_window_unit': '{unit}', 'compaction_window_size': {size}}}"
            ));
            opts.push(format!("default_time_to_live = {ttl}"));
            // Rows are never deleted: expired cells need no grace period.
            opts.push("gc_grace_seconds = 0".into());
        }
        opts.extend(self.extra.map(str::to_string));
        opts.join(" AND ")
    }

    /// `CREATE TABLE IF NOT EXISTS …`.
    pub fn create(&self, keyspace: &str) -> String {
        let mut with: Vec<String> = self
            .order
            .map(|o| format!("CLUSTERING ORDER BY ({o})"))
            .into_iter()
            .collect();
        let opts = self.options();
        if !opts.is_empty() {
            with.push(opts);
        }
        let with = if with.is_empty() {
            String::new()
        } else {
            format!(" WITH {}", with.join(" AND "))
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.{} ({}){with}",
            self.name, self.body
        )
    }

    /// `ALTER TABLE … WITH` the compaction and TTL options (time-series
    /// tables only).
    pub fn alter(&self, keyspace: &str) -> Option<String> {
        self.ttl_s.map(|_| {
            format!(
                "ALTER TABLE {keyspace}.{} WITH {}",
                self.name,
                self.options()
            )
        })
    }
}

fn secs(ms: i64) -> i64 {
    ms / 1_000
}

/// Every table, with TTLs from `cfg`'s retention.
pub fn tables(cfg: &StoreConfig, summaries_days: u64) -> Vec<Table> {
    let hours = |h: u64| i64::try_from(h).unwrap_or(i64::MAX / HOUR_MS) * HOUR_MS;
    let window = |name, ttl_ms| Table {
        name,
        body: "kind tinyint, id text, bucket bigint, start_ms bigint, metrics blob, \
               PRIMARY KEY ((kind, id, bucket), start_ms)",
        order: Some("start_ms DESC"),
        ttl_s: Some(secs(ttl_ms)),
        extra: None,
    };
    vec![
        window("windows_1s", hours(cfg.retention_1s_hours)),
        window("windows_1m", hours(cfg.retention_1m_days * 24)),
        window("windows_1h", hours(cfg.retention_1h_days * 24)),
        Table {
            // A post can be de-duplicated as long as any of its windows is kept.
            name: "seen",
            body: "kind tinyint, start_ms bigint, hash bigint, \
                   PRIMARY KEY ((kind, start_ms), hash)",
            order: None,
            ttl_s: Some(secs(hours(cfg.retention_1h_days * 24))),
            extra: None,
        },
        Table {
            name: "entities",
            body: "kind tinyint, bucket int, id text, first_seen_ms bigint, \
                   last_seen_ms bigint, totals blob, PRIMARY KEY ((kind, bucket), id)",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            name: "watermarks",
            body: "kind tinyint, owner text, watermark_ms bigint, PRIMARY KEY (kind, owner)",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            name: "pending_batches",
            body: "kind tinyint, owner text, batch blob, PRIMARY KEY ((kind, owner))",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            name: "summaries",
            body: "kind tinyint, id text, to_ms bigint, from_ms bigint, summary text, \
                   PRIMARY KEY ((kind, id), to_ms, from_ms)",
            order: Some("to_ms DESC, from_ms ASC"),
            ttl_s: Some(secs(hours(summaries_days * 24))),
            extra: None,
        },
        // Alerts: one writer at a time (the process holding the claim in
        // `leases`); decisions are lightweight transactions (see `alerts`).
        Table {
            name: "alerts",
            body: "id text PRIMARY KEY, state text, pending text, alert text",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            // Rows of resolved alerts carry the alert retention as their TTL.
            name: "alerts_by_time",
            body: "bucket bigint, opened_ms bigint, id text, \
                   PRIMARY KEY ((bucket), opened_ms, id)",
            order: Some("opened_ms DESC, id ASC"),
            ttl_s: None,
            extra: None,
        },
        Table {
            // Kept as long as resolved alerts (1-hour window retention).
            name: "alert_log",
            body: "bucket bigint, seq bigint, alert_id text, event text, \
                   PRIMARY KEY ((bucket), seq)",
            order: Some("seq ASC"),
            ttl_s: Some(secs(hours(cfg.retention_1h_days * 24))),
            extra: None,
        },
        Table {
            name: "alert_head",
            body: "name text PRIMARY KEY, seq bigint, epoch bigint, holder text",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            // A queue of ids, one short partition: a resurrected entry is
            // harmless (recovery finds nothing pending), so tombstones may
            // go after an hour.
            name: "alert_pending",
            body: "p int, id text, PRIMARY KEY ((p), id)",
            order: None,
            ttl_s: None,
            extra: Some("gc_grace_seconds = 3600"),
        },
        Table {
            name: "alert_rules",
            body: "id text PRIMARY KEY, rule text",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            name: "leases",
            body: "name text PRIMARY KEY, holder text",
            order: None,
            ttl_s: None,
            extra: None,
        },
        // Webhooks: endpoints changed by any process (by LWT), the outbox,
        // stats and fan-out cursor written by the dispatcher of the process
        // holding the alert engine's claim.
        Table {
            name: "webhook_endpoints",
            body: "id text PRIMARY KEY, endpoint text, paused text, resumed_at_ms bigint",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            name: "webhook_stats",
            body: "id text PRIMARY KEY, stats text",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            // One partition per endpoint; a delivery leaves on a 2xx.
            name: "webhook_outbox",
            body: "endpoint text, seq bigint, delivery text, body blob, next_attempt_ms bigint, \
                   PRIMARY KEY ((endpoint), seq)",
            order: Some("seq ASC"),
            ttl_s: None,
            extra: None,
        },
        Table {
            name: "webhook_meta",
            body: "name text PRIMARY KEY, value bigint",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            // One row per post and entity, a partition per entity, minute
            // and slice (see `posts`).
            name: "posts_by_entity",
            body: "kind tinyint, id text, minute bigint, part tinyint, created_ms bigint, \
                   post_id text, engagement bigint, author_id text, handle text, \
                   followers bigint, sentiment double, post text, \
                   PRIMARY KEY ((kind, id, minute, part), created_ms, post_id)",
            order: Some("created_ms DESC, post_id DESC"),
            ttl_s: Some(secs(hours(cfg.retention_posts_days * 24))),
            extra: None,
        },
        Table {
            // The minutes an entity has posts in (TTL per write).
            name: "post_minutes",
            body: "kind tinyint, id text, minute bigint, PRIMARY KEY ((kind, id), minute)",
            order: None,
            ttl_s: None,
            extra: None,
        },
        Table {
            name: "schema_version",
            body: "name text PRIMARY KEY, version int, applied_ms bigint",
            order: None,
            ttl_s: None,
            extra: None,
        },
    ]
}

/// The replication map the keyspace should have.
pub fn replication(cfg: &crate::config::ScyllaConfig) -> Vec<(String, String)> {
    let dc = if cfg.datacenter.is_empty() {
        "replication_factor".to_string()
    } else {
        cfg.datacenter.clone()
    };
    vec![
        ("class".into(), "NetworkTopologyStrategy".into()),
        (dc, cfg.replication_factor.to_string()),
    ]
}

/// Whether a keyspace's replication map (from `system_schema.keyspaces`)
/// is what the config asks for. ScyllaDB expands `'replication_factor': N`
/// into one entry per data centre, so without a data centre every entry
/// must be N.
pub fn same_replication(
    have: &std::collections::HashMap<String, String>,
    cfg: &crate::config::ScyllaConfig,
) -> bool {
    let rf = cfg.replication_factor.to_string();
    let nts = have
        .get("class")
        .is_some_and(|c| c.ends_with("NetworkTopologyStrategy"));
    let factors: Vec<(&String, &String)> = have.iter().filter(|(k, _)| *k != "class").collect();
    nts && !factors.is_empty()
        && if cfg.datacenter.is_empty() {
            factors.iter().all(|(_, v)| **v == rf)
        } else {
            factors.len() == 1 && have.get(&cfg.datacenter) == Some(&rf)
        }
}

/// `CREATE KEYSPACE IF NOT EXISTS …` (or `ALTER KEYSPACE`).
pub fn keyspace_statement(cfg: &crate::config::ScyllaConfig, alter: bool) -> String {
    let map: Vec<String> = replication(cfg)
        .iter()
        .map(|(k, v)| format!("'{k}': '{v}'"))
        .collect();
    let verb = if alter {
        "ALTER KEYSPACE"
    } else {
        "CREATE KEYSPACE IF NOT EXISTS"
    };
    format!(
        "{verb} {} WITH replication = {{{}}} AND durable_writes = true",
        cfg.keyspace,
        map.join(", ")
    )
}

/// Creates or upgrades the keyspace and every table; returns one line per
/// thing it looked at, saying what it did.
pub fn migrate(
    cluster: &Arc<Cluster>,
    cfg: &StoreConfig,
    summaries_days: u64,
) -> Result<Vec<String>, StoreError> {
    let c = cluster.clone();
    let cfg = cfg.clone();
    cluster.block(async move { migrate_async(&c, &cfg, summaries_days).await })?
}

async fn migrate_async(
    c: &Arc<Cluster>,
    cfg: &StoreConfig,
    summaries_days: u64,
) -> Result<Vec<String>, StoreError> {
    let ks = cfg.scylla.keyspace.clone();
    let mut report = Vec::new();
    let existing: Vec<(std::collections::HashMap<String, String>,)> = c
        .select(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (ks.clone(),),
        )
        .await?;
    let wanted = replication(&cfg.scylla);
    match existing.first() {
        None => {
            c.ddl(&keyspace_statement(&cfg.scylla, false)).await?;
            report.push(format!("keyspace {ks}: created ({wanted:?})"));
        }
        Some((have,)) => {
            if same_replication(have, &cfg.scylla) {
                report.push(format!("keyspace {ks}: exists, replication unchanged"));
            } else {
                c.ddl(&keyspace_statement(&cfg.scylla, true)).await?;
                report.push(format!(
                    "keyspace {ks}: replication changed from {have:?} to {wanted:?} \
                     (run a full repair so existing data reaches its new replicas)"
                ));
            }
        }
    }
    for t in tables(cfg, summaries_days) {
        let have: Vec<(i32,)> = c
            .select(
                "SELECT default_time_to_live FROM system_schema.tables \
                 WHERE keyspace_name = ? AND table_name = ?",
                (ks.clone(), t.name.to_string()),
            )
            .await?;
        match (have.first(), t.alter(&ks)) {
            (None, _) => {
                c.ddl(&t.create(&ks)).await?;
                report.push(format!("table {ks}.{}: created", t.name));
            }
            (Some((ttl,)), Some(alter)) if Some(i64::from(*ttl)) != t.ttl_s => {
                c.ddl(&alter).await?;
                report.push(format!(
                    "table {ks}.{}: default TTL {ttl} s -> {} s and its compaction windows \
                     (rows already written keep their TTL)",
                    t.name,
                    t.ttl_s.unwrap_or_default()
                ));
            }
            (Some(_), _) => report.push(format!("table {ks}.{}: exists, unchanged", t.name)),
        }
    }
    c.execute(
        &format!("INSERT INTO {ks}.schema_version (name, version, applied_ms) VALUES (?, ?, ?)"),
        Access::Write,
        (
            "starling".to_string(),
            VERSION,
            chrono::Utc::now().timestamp_millis(),
        ),
    )
    .await?;
    report.push(format!("schema version {VERSION} recorded"));
    Ok(report)
}

/// Checks that the keyspace holds this build's schema (what `run` does
/// before it writes): a clear error instead of failing requests.
pub fn check(cluster: &Arc<Cluster>) -> Result<(), StoreError> {
    let c = cluster.clone();
    let ks = cluster.config().keyspace.clone();
    let rows: Vec<(i32,)> = cluster.block(async move {
        c.select(
            &format!("SELECT version FROM {ks}.schema_version WHERE name = ?"),
            ("starling".to_string(),),
        )
        .await
    })??;
    match rows.first() {
        Some((v,)) if *v == VERSION => Ok(()),
        Some((v,)) => Err(StoreError::Schema(format!(
            "keyspace {} has schema version {v}, this build needs {VERSION}: run `starling migrate`",
            cluster.config().keyspace
        ))),
        None => Err(StoreError::Schema(format!(
            "keyspace {} has no schema: run `starling migrate`",
            cluster.config().keyspace
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_series_tables_use_twcs_with_the_retention_as_ttl() {
        let cfg = StoreConfig::default();
        let t = tables(&cfg, 30);
        let w1s = t.iter().find(|t| t.name == "windows_1s").expect("table");
        let cql = w1s.create("ks");
        assert!(cql.starts_with("CREATE TABLE IF NOT EXISTS ks.windows_1s ("));
        assert!(cql.contains("PRIMARY KEY ((kind, id, bucket), start_ms)"));
        assert!(cql.contains("CLUSTERING ORDER BY (start_ms DESC)"));
        assert!(cql.contains("'TimeWindowCompactionStrategy'"));
        // 6 hours of 1-second windows: 1-hour compaction windows.
        assert!(cql.contains(&format!("default_time_to_live = {}", 6 * 3_600)));
        assert!(cql.contains("'compaction_window_unit': 'HOURS', 'compaction_window_size': 1"));
        // 400 days of 1-hour windows: 20-day compaction windows.
        let w1h = t.iter().find(|t| t.name == "windows_1h").expect("table");
        assert!(w1h
            .create("ks")
            .contains("'compaction_window_unit': 'DAYS', 'compaction_window_size': 20"));
        // Overwritten tables keep the default compaction and have no TTL.
        let e = t.iter().find(|t| t.name == "entities").expect("table");
        assert!(!e.create("ks").contains("WITH"));
        assert_eq!(e.alter("ks"), None);
    }

    #[test]
    fn replication_is_compared_as_scylladb_stores_it() {
        let map = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let nts = "org.apache.cassandra.locator.NetworkTopologyStrategy";
        let mut c = crate::config::ScyllaConfig::default();
        // 'replication_factor': 3 comes back expanded per data centre.
        assert!(same_replication(
            &map(&[("class", nts), ("dc1", "3"), ("dc2", "3")]),
            &c
        ));
        assert!(!same_replication(&map(&[("class", nts), ("dc1", "1")]), &c));
        assert!(!same_replication(
            &map(&[
                ("class", "org.apache.cassandra.locator.SimpleStrategy"),
                ("replication_factor", "3")
            ]),
            &c
        ));
        c.datacenter = "dc1".into();
        assert!(same_replication(&map(&[("class", nts), ("dc1", "3")]), &c));
        assert!(!same_replication(
            &map(&[("class", nts), ("dc1", "3"), ("dc2", "3")]),
            &c
        ));
    }

    #[test]
    fn the_keyspace_statement_follows_the_config() {
        let mut c = crate::config::ScyllaConfig::default();
        assert_eq!(
            keyspace_statement(&c, false),
            "CREATE KEYSPACE IF NOT EXISTS starling WITH replication = \
             {'class': 'NetworkTopologyStrategy', 'replication_factor': '3'} AND durable_writes = true"
        );
        c.datacenter = "dc1".into();
        c.replication_factor = 1;
        assert!(keyspace_statement(&c, true)
            .starts_with("ALTER KEYSPACE starling WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': '1'}"));
    }
}
