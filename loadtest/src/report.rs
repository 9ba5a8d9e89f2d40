//! Latency summaries from HDR histograms, markdown tables, and the results
//! folder (`report.json`, `summary.md`).

use crate::sampler::{PhaseSummary, Sample};
use anyhow::{Context as _, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Histograms record microseconds, 1 µs to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// A smaller histogram (2 significant digits) for per-client figures.
pub fn small_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid histogram bounds")
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds (`None` when empty).
    pub fn of<T: hdrhistogram::Counter>(h: &Histogram<T>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Some(Latency {
            count: h.len(),
            mean_ms: h.mean() / 1_000.0,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        })
    }
}

/// Records `us` microseconds, clamping to the histogram's range.
pub fn record<T: hdrhistogram::Counter>(h: &mut Histogram<T>, us: i64) {
    h.saturating_record(us.clamp(1, 600_000_000) as u64);
}

/// Milliseconds with a precision that suits their size (`0.412`, `12.3`, `1234`).
pub fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.3}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// An integer with thousands separators (`12,345`).
pub fn fmt_int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate (`12,345` per second, or `12.3` below 100).
pub fn fmt_rate(r: f64) -> String {
    if r < 100.0 {
        format!("{r:.1}")
    } else {
        fmt_int(r.round() as u64)
    }
}

/// One row of a latency table.
pub struct Row<'a> {
    /// First column.
    pub name: &'a str,
    /// Its percentiles (a row of dashes when none).
    pub latency: Option<&'a Latency>,
    /// Extra cells after the percentiles (throughput, errors, …).
    pub extra: Vec<String>,
}

/// Rows of names and percentiles only.
pub fn plain_rows<'a>(list: &'a [(&'a str, Option<Latency>)]) -> Vec<Row<'a>> {
    list.iter()
        .map(|(name, latency)| Row {
            name,
            latency: latency.as_ref(),
            extra: vec![],
        })
        .collect()
}

/// A per-second series, comma-separated (`1,234, 5,678, …`).
pub fn per_second(counts: &[u64]) -> String {
    counts
        .iter()
        .map(|n| fmt_int(*n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A markdown table: `first`, p50 … max, then `extra` columns.
pub fn latency_table(first: &str, extra: &[&str], rows: &[Row<'_>]) -> String {
    let mut head = vec![
        first.to_string(),
        "count".into(),
        "p50 ms".into(),
        "p90 ms".into(),
        "p99 ms".into(),
        "p99.9 ms".into(),
        "max ms".into(),
    ];
    head.extend(extra.iter().map(|e| e.to_string()));
    let mut out = format!("| {} |\n", head.join(" | "));
    out.push_str(&format!("|{}\n", " --- |".repeat(head.len())));
    for r in rows {
        let mut cells = vec![r.name.to_string()];
        match r.latency {
            Some(l) => {
                cells.push(fmt_int(l.count));
                for v in [l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms] {
                    cells.push(fmt_ms(v));
                }
            }
            None => cells.extend(std::iter::repeat_n("–".to_string(), 6)),
        }
        cells.extend(r.extra.iter().cloned());
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// A target and whether it was met.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetCheck {
    /// What is compared, e.g. `cached req/s ≥ 50,000`.
    pub target: String,
    /// What was measured, in words.
    pub measured: String,
    /// Met or not.
    pub met: bool,
}

impl TargetCheck {
    /// One markdown line.
    pub fn line(&self) -> String {
        format!(
            "- {}: **{}** (measured {})",
            self.target,
            if self.met { "met" } else { "missed" },
            self.measured
        )
    }
}

/// The resources section: per-phase summary and a per-second table.
pub fn resources_markdown(samples: &[Sample], phases: &[PhaseSummary], server: bool) -> String {
    let mut out = String::from(
        "CPU is % of one core (200 % = both of 2 cores); the machine's CPU is % of all cores; \
         *other* is the machine's busy CPU that neither Starling nor the load generator used \
         (other processes), % of one core.\n\n",
    );
    let opt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    out.push_str("| phase | samples | Starling CPU % mean / max | Starling RSS MiB max / last | load generator CPU % mean / max | machine CPU % mean | other CPU % mean |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for p in phases {
        out.push_str(&format!(
            "| {} | {} | {} / {} | {} / {} | {:.0} / {:.0} | {:.0} | {:.0} |\n",
            p.phase,
            p.samples,
            opt(p.server_cpu_mean_pct),
            opt(p.server_cpu_max_pct),
            opt(p.server_rss_max_mib),
            opt(p.server_rss_last_mib),
            p.loadgen_cpu_mean_pct,
            p.loadgen_cpu_max_pct,
            p.host_cpu_mean_pct,
            p.other_cpu_mean_pct
        ));
    }
    if !server {
        out.push_str("\nStarling's CPU and memory were not sampled (it was given by `--url`, not started by the load test).\n");
    }
    // Every sample while short; past 40, every n-th so the table stays readable.
    let step = samples.len().div_ceil(40).max(1);
    out.push_str(&format!(
        "\nOver time (every {}):\n\n| t s | phase | Starling CPU % | Starling RSS MiB | threads | load gen CPU % | machine CPU % | other CPU % |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
        if step == 1 { "second".to_string() } else { format!("{step} s") }
    ));
    for s in samples.iter().step_by(step) {
        out.push_str(&format!(
            "| {:.0} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} |\n",
            s.t_s,
            s.phase,
            opt(s.server_cpu_pct),
            opt(s.server_rss_mib),
            s.server_threads.map_or("–".into(), |t| t.to_string()),
            s.loadgen_cpu_pct,
            s.host_cpu_pct,
            s.other_cpu_pct
        ));
    }
    out
}

/// Distinct error messages kept as examples in a report.
pub const ERROR_SAMPLES: usize = 10;

/// Keeps `error` as an example unless it is already there or
/// [`ERROR_SAMPLES`] are kept.
pub fn keep_error_sample(samples: &mut Vec<String>, error: String) {
    if samples.len() < ERROR_SAMPLES && !samples.contains(&error) {
        samples.push(error);
    }
}

/// Least-squares slope of `y` over `x` (`None` with fewer than two
/// distinct `x`).
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// `loadtest/results/<case>-<UTC timestamp>/`, created.
pub fn results_dir(root: &Path, case: &str, at: chrono::DateTime<chrono::Utc>) -> Result<PathBuf> {
    let dir = root.join(format!("{case}-{}", at.format("%Y%m%dT%H%M%SZ")));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Writes `report.json` and `summary.md` into `dir`.
pub fn write(dir: &Path, json: &serde_json::Value, markdown: &str) -> Result<()> {
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(json)?)
        .context("cannot write report.json")?;
    std::fs::write(dir.join("summary.md"), markdown).context("cannot write summary.md")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut h = histogram();
        for us in 1..=1_000 {
            record(&mut h, us * 10); // 10 µs … 10 ms
        }
        let l = Latency::of(&h).expect("values");
        assert_eq!(l.count, 1_000);
        assert!((l.p50_ms - 5.0).abs() < 0.01, "{}", l.p50_ms);
        assert!((l.p99_ms - 9.9).abs() < 0.01, "{}", l.p99_ms);
        assert!((l.max_ms - 10.0).abs() < 0.01, "{}", l.max_ms);
        assert!(Latency::of(&histogram()).is_none());
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let mut h = small_histogram();
        record(&mut h, -5);
        record(&mut h, i64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
    }

    #[test]
    fn numbers_are_formatted_for_reading() {
        assert_eq!(fmt_ms(0.4123), "0.412");
        assert_eq!(fmt_ms(12.34), "12.3");
        assert_eq!(fmt_ms(1234.4), "1234");
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(1_234_567), "1,234,567");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_rate(12.34), "12.3");
        assert_eq!(fmt_rate(12_345.6), "12,346");
    }

    #[test]
    fn a_latency_table_has_one_line_per_row() {
        let l = Latency {
            count: 1_500,
            mean_ms: 1.0,
            p50_ms: 0.9,
            p90_ms: 1.5,
            p99_ms: 3.25,
            p999_ms: 12.0,
            max_ms: 250.0,
        };
        let t = latency_table(
            "class",
            &["req/s", "errors"],
            &[
                Row {
                    name: "cached",
                    latency: Some(&l),
                    extra: vec!["7,500".into(), "0".into()],
                },
                Row {
                    name: "uncached",
                    latency: None,
                    extra: vec!["0".into(), "3".into()],
                },
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "| class | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | req/s | errors |"
        );
        assert_eq!(
            lines[2],
            "| cached | 1,500 | 0.900 | 1.500 | 3.250 | 12.0 | 250 | 7,500 | 0 |"
        );
        assert!(lines[3].starts_with("| uncached | – | – |"));
    }

    #[test]
    fn error_samples_are_distinct_and_bounded() {
        let mut v = Vec::new();
        keep_error_sample(&mut v, "a".into());
        keep_error_sample(&mut v, "a".into());
        assert_eq!(v, ["a"]);
        for i in 0..20 {
            keep_error_sample(&mut v, i.to_string());
        }
        assert_eq!(v.len(), ERROR_SAMPLES);
    }

    #[test]
    fn slopes_are_least_squares() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 7.0))
            .collect();
        assert!((slope(&line).expect("slope") - 3.0).abs() < 1e-12);
        let flat_noise = [(0.0, 1.0), (1.0, -1.0), (2.0, 1.0), (3.0, -1.0), (4.0, 1.0)];
        assert!(slope(&flat_noise).expect("slope").abs() < 1e-12);
        assert_eq!(slope(&[(1.0, 2.0)]), None);
        assert_eq!(slope(&[(1.0, 2.0), (1.0, 5.0)]), None);
    }

    #[test]
    fn target_lines_say_met_or_missed() {
        let t = TargetCheck {
            target: "cached p99 < 5 ms".into(),
            measured: "7.1 ms".into(),
            met: false,
        };
        assert_eq!(
            t.line(),
            "- cached p99 < 5 ms: **missed** (measured 7.1 ms)"
        );
    }
}
