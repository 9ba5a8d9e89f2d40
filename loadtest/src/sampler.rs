//! CPU and memory over time: Starling's (`/proc/<pid>/stat` and `status`,
//! when the load test started it), the load generator's own
//! (`/proc/self/…`) and the whole machine's (`/proc/stat`), once a second.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t_s: f64,
    /// What the load test was doing.
    pub phase: String,
    /// Starling's CPU over the last interval, % of one core (200 % = both of 2 cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_pct: Option<f64>,
    /// Starling's resident memory, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_mib: Option<f64>,
    /// Of that, anonymous memory (heap, stacks): what a leak grows, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_anon_mib: Option<f64>,
    /// Of that, file pages mapped (memory-mapped indexes and tables), MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_file_mib: Option<f64>,
    /// Starling's threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_threads: Option<u64>,
    /// The load generator's CPU, % of one core.
    pub loadgen_cpu_pct: f64,
    /// The load generator's resident memory, MiB.
    pub loadgen_rss_mib: f64,
    /// The whole machine's busy CPU, % of all cores (100 % = every core busy).
    pub host_cpu_pct: f64,
    /// CPU of everything else on the machine (other processes, the kernel
    /// outside these two), % of one core: the machine's busy CPU less
    /// Starling's and the load generator's.
    pub other_cpu_pct: f64,
}

/// Summary of the samples of one phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseSummary {
    /// The phase.
    pub phase: String,
    /// Samples taken in it.
    pub samples: usize,
    /// Mean and max of Starling's CPU, % of one core.
    pub server_cpu_mean_pct: Option<f64>,
    /// Max of Starling's CPU.
    pub server_cpu_max_pct: Option<f64>,
    /// Max of Starling's RSS, MiB.
    pub server_rss_max_mib: Option<f64>,
    /// Starling's RSS at the phase's last sample, MiB.
    pub server_rss_last_mib: Option<f64>,
    /// Mean of the load generator's CPU, % of one core.
    pub loadgen_cpu_mean_pct: f64,
    /// Max of the load generator's CPU.
    pub loadgen_cpu_max_pct: f64,
    /// Mean of the machine's busy CPU, % of all cores.
    pub host_cpu_mean_pct: f64,
    /// Mean CPU of everything else, % of one core.
    pub other_cpu_mean_pct: f64,
}

/// Parses `/proc/<pid>/stat`: `utime + stime`, in clock ticks.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 (index 0 here); utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Parses a `kB` line (`VmRSS`, …) of `/proc/<pid>/status`, in MiB.
pub fn parse_status_mib(status: &str, key: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// Parses the `Threads:` line of `/proc/<pid>/status`.
pub fn parse_status_threads(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Parses the `cpu` line of `/proc/stat`: `(busy, total)` jiffies.
pub fn parse_host_cpu(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

#[derive(Default)]
struct Prev {
    server: Option<u64>,
    loadgen: Option<u64>,
    host: Option<(u64, u64)>,
    at: Option<Instant>,
}

/// Samples once a second on its own thread until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    phase: Arc<Mutex<String>>,
    samples: Arc<Mutex<Vec<Sample>>>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling; `server` is Starling's pid when the load test
    /// started it, `cores` the machine's; times are seconds since `origin`.
    pub fn start(server: Option<u32>, cores: usize, origin: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(Mutex::new("start".to_string()));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, p, out) = (stop.clone(), phase.clone(), samples.clone());
        let handle = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let ticks = clock_ticks();
                let started = origin;
                let mut prev = Prev::default();
                let mut next = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now >= next {
                        let phase = p.lock().map(|g| g.clone()).unwrap_or_default();
                        if let Some(sample) = take(&mut prev, server, ticks, started, phase, cores)
                        {
                            if let Ok(mut v) = out.lock() {
                                v.push(sample);
                            }
                        }
                        next += Duration::from_secs(1);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .expect("spawn the sampler thread");
        Sampler {
            stop,
            phase,
            samples,
            handle: Some(handle),
        }
    }

    /// Labels the following samples.
    pub fn set_phase(&self, phase: &str) {
        if let Ok(mut p) = self.phase.lock() {
            *p = phase.to_string();
        }
    }

    /// The samples so far.
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stops and returns every sample.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.samples.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

fn take(
    prev: &mut Prev,
    server: Option<u32>,
    ticks: f64,
    started: Instant,
    phase: String,
    cores: usize,
) -> Option<Sample> {
    let now = Instant::now();
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let server_stat = server.and_then(|pid| read(&format!("/proc/{pid}/stat")));
    let server_status = server.and_then(|pid| read(&format!("/proc/{pid}/status")));
    let server_ticks = server_stat.as_deref().and_then(parse_stat_ticks);
    let self_ticks = read("/proc/self/stat")
        .as_deref()
        .and_then(parse_stat_ticks);
    let self_status = read("/proc/self/status").unwrap_or_default();
    let host = read("/proc/stat").as_deref().and_then(parse_host_cpu);
    let first = prev.at.is_none();
    let dt = prev.at.map(|a| (now - a).as_secs_f64()).unwrap_or(0.0);
    let pct = |cur: Option<u64>, old: Option<u64>| match (cur, old) {
        (Some(c), Some(o)) if dt > 0.0 => Some(c.saturating_sub(o) as f64 / ticks / dt * 100.0),
        _ => None,
    };
    let host_cpu_pct = match (host, prev.host) {
        (Some((b, t)), Some((pb, pt))) if t > pt => {
            b.saturating_sub(pb) as f64 / (t - pt) as f64 * 100.0
        }
        _ => 0.0,
    };
    let server_cpu_pct = pct(server_ticks, prev.server);
    let loadgen_cpu_pct = pct(self_ticks, prev.loadgen).unwrap_or(0.0);
    let sample = Sample {
        t_s: (now - started).as_secs_f64(),
        phase,
        server_cpu_pct,
        server_rss_mib: server_status
            .as_deref()
            .and_then(|s| parse_status_mib(s, "VmRSS")),
        server_rss_anon_mib: server_status
            .as_deref()
            .and_then(|s| parse_status_mib(s, "RssAnon")),
        server_rss_file_mib: server_status
            .as_deref()
            .and_then(|s| parse_status_mib(s, "RssFile")),
        server_threads: server_status.as_deref().and_then(parse_status_threads),
        loadgen_cpu_pct,
        loadgen_rss_mib: parse_status_mib(&self_status, "VmRSS").unwrap_or(0.0),
        host_cpu_pct,
        other_cpu_pct: other_cpu(host_cpu_pct, cores, server_cpu_pct, loadgen_cpu_pct),
    };
    *prev = Prev {
        server: server_ticks,
        loadgen: self_ticks,
        host,
        at: Some(now),
    };
    // The first reading only sets the baseline.
    (!first).then_some(sample)
}

/// The machine's busy CPU (% of all cores) less Starling's and the load
/// generator's (% of one core), in % of one core; never below 0.
pub fn other_cpu(host_pct: f64, cores: usize, server_pct: Option<f64>, loadgen_pct: f64) -> f64 {
    (host_pct * cores as f64 - server_pct.unwrap_or(0.0) - loadgen_pct).max(0.0)
}

/// Summaries per phase, in the order the phases first appear.
pub fn summarize(samples: &[Sample]) -> Vec<PhaseSummary> {
    let mut phases: Vec<String> = Vec::new();
    for s in samples {
        if !phases.contains(&s.phase) {
            phases.push(s.phase.clone());
        }
    }
    phases
        .into_iter()
        .map(|phase| {
            let v: Vec<&Sample> = samples.iter().filter(|s| s.phase == phase).collect();
            let n = v.len() as f64;
            let server_cpu: Vec<f64> = v.iter().filter_map(|s| s.server_cpu_pct).collect();
            let rss: Vec<f64> = v.iter().filter_map(|s| s.server_rss_mib).collect();
            PhaseSummary {
                samples: v.len(),
                server_cpu_mean_pct: (!server_cpu.is_empty())
                    .then(|| server_cpu.iter().sum::<f64>() / server_cpu.len() as f64),
                server_cpu_max_pct: server_cpu.iter().copied().reduce(f64::max),
                server_rss_max_mib: rss.iter().copied().reduce(f64::max),
                server_rss_last_mib: rss.last().copied(),
                loadgen_cpu_mean_pct: v.iter().map(|s| s.loadgen_cpu_pct).sum::<f64>() / n,
                loadgen_cpu_max_pct: v.iter().map(|s| s.loadgen_cpu_pct).fold(0.0, f64::max),
                host_cpu_mean_pct: v.iter().map(|s| s.host_cpu_pct).sum::<f64>() / n,
                other_cpu_mean_pct: v.iter().map(|s| s.other_cpu_pct).sum::<f64>() / n,
                phase,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skip_a_command_with_spaces() {
        let stat =
            "4242 (star ling) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(175));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn status_lines_give_rss_and_threads() {
        let status = "Name:\tstarling\nVmRSS:\t   204800 kB\nRssAnon:\t  153600 kB\nRssFile:\t   51200 kB\nThreads:\t12\n";
        assert_eq!(parse_status_mib(status, "VmRSS"), Some(200.0));
        assert_eq!(parse_status_mib(status, "RssAnon"), Some(150.0));
        assert_eq!(parse_status_mib(status, "RssFile"), Some(50.0));
        assert_eq!(parse_status_threads(status), Some(12));
        assert_eq!(parse_status_mib(status, "VmHWM"), None);
    }

    #[test]
    fn host_cpu_counts_idle_and_iowait_as_idle() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_host_cpu(stat), Some((150, 1000)));
    }

    #[test]
    fn other_cpu_is_what_the_two_processes_do_not_explain() {
        assert_eq!(other_cpu(100.0, 2, Some(120.0), 30.0), 50.0);
        assert_eq!(other_cpu(50.0, 2, None, 30.0), 70.0);
        assert_eq!(other_cpu(10.0, 2, Some(30.0), 0.0), 0.0);
    }

    #[test]
    fn summaries_are_per_phase() {
        let s = |phase: &str, cpu: f64, rss: f64| Sample {
            t_s: 0.0,
            phase: phase.into(),
            server_cpu_pct: Some(cpu),
            server_rss_mib: Some(rss),
            server_rss_anon_mib: None,
            server_rss_file_mib: None,
            server_threads: None,
            loadgen_cpu_pct: 10.0,
            loadgen_rss_mib: 5.0,
            host_cpu_pct: 50.0,
            other_cpu_pct: 0.0,
        };
        let sum = summarize(&[
            s("seed", 100.0, 50.0),
            s("measure", 150.0, 60.0),
            s("measure", 50.0, 70.0),
        ]);
        assert_eq!(sum.len(), 2);
        assert_eq!(sum[1].phase, "measure");
        assert_eq!(sum[1].server_cpu_mean_pct, Some(100.0));
        assert_eq!(sum[1].server_cpu_max_pct, Some(150.0));
        assert_eq!(sum[1].server_rss_max_mib, Some(70.0));
    }
}
