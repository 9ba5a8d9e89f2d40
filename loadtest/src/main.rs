//! Starling's load generator.
//!
//! `cargo run --release -p loadtest -- <case>` runs the case in
//! `loadtest/cases/<case>/` against a Starling it starts itself (the release
//! binary `target/release/starling`, built first with `cargo build
//! --release`), or against one given by `--url http://host:port`. Results
//! (`report.json`, `summary.md`, Starling's log) go to
//! `loadtest/results/<case>-<timestamp>/`.
//!
//! Cases: `ingest-max`, `e2e-latency`, `rest-lookups`, `ws-fanout`, `soak`.

mod cases;
mod chart;
mod config;
mod http;
mod ingest;
mod nats;
mod pipeline;
mod report;
mod sampler;
mod seed;
mod starling;

use anyhow::{bail, Result};
use clap::Parser;
use config::{BusKind, CaseFile, Overrides, Source};
use pipeline::Pipeline;
use sampler::Sampler;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    about = "Runs a load-test case against Starling and writes its report to loadtest/results/"
)]
struct Cli {
    /// The case: a folder of loadtest/cases/ (ingest-max, e2e-latency,
    /// rest-lookups, ws-fanout, soak); `list` lists them.
    case: String,
    /// Test a running Starling at this address instead of starting one
    /// (its CPU and memory are then not sampled).
    #[arg(long, value_name = "http://HOST:PORT")]
    url: Option<String>,
    /// Starling binary to start (default: target/release/starling of this workspace).
    #[arg(long, value_name = "PATH")]
    starling: Option<PathBuf>,
    /// Folder of the cases (default: loadtest/cases).
    #[arg(long, value_name = "DIR")]
    cases_dir: Option<PathBuf>,
    /// Folder of the results (default: loadtest/results).
    #[arg(long, value_name = "DIR")]
    results_dir: Option<PathBuf>,
    /// Seconds measured (overrides the case).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up (overrides the case).
    #[arg(long)]
    warmup: Option<f64>,
    /// rest-lookups: connections (overrides the case).
    #[arg(long)]
    concurrency: Option<usize>,
    /// ws-fanout: WebSocket clients (overrides the case).
    #[arg(long)]
    clients: Option<usize>,
    /// Load-generator threads (overrides the case).
    #[arg(long)]
    threads: Option<usize>,
    /// rest-lookups: posts seeded (overrides the case).
    #[arg(long)]
    posts: Option<usize>,
    /// Synthetic posts per second of the Starling started (overrides the case).
    #[arg(long)]
    rate: Option<f64>,
    /// The bus of the Starling started: memory or jetstream (overrides the case).
    #[arg(long)]
    bus: Option<BusKind>,
    /// ingest-max: http or bus (overrides the case).
    #[arg(long)]
    source: Option<Source>,
    /// e2e-latency, soak: posts per second ingested (overrides the case).
    #[arg(long)]
    ingest_rate: Option<f64>,
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What the cases get: where Starling is, the sampler, the machine.
pub struct RunContext<'a> {
    /// `http://HOST:PORT`.
    pub base: String,
    /// Whether the load test started this Starling (else `--url`).
    pub started_here: bool,
    /// CPU and memory sampler.
    pub sampler: &'a Sampler,
    /// Cores of this machine.
    pub cores: usize,
    /// Open-file limit raise, when the case needs many sockets: `(before, after, hard)`.
    pub nofile: Option<(u64, u64, u64)>,
    /// Starling's pipeline counters, read once a second.
    pub pipeline: &'a Pipeline,
    /// Time zero of the samples (`t_s` of both samplers).
    pub origin: Instant,
    /// The bus Starling runs on (as the case configured it; with `--url`, unknown).
    pub bus: BusKind,
}

/// What a case hands back.
pub struct Outcome {
    /// Lines of the setup (bullets in the summary).
    pub setup: Vec<String>,
    /// The results section, in markdown.
    pub markdown: String,
    /// Targets compared.
    pub targets: Vec<report::TargetCheck>,
    /// Everything measured, for report.json.
    pub json: serde_json::Value,
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(dir) => eprintln!("loadtest: report written to {}", dir.display()),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            std::process::exit(1);
        }
    }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os("CARGO").is_some() {
        format!("cargo run --release -p loadtest -- {}", args.join(" "))
    } else {
        let argv0 = std::env::args().next().unwrap_or_else(|| "loadtest".into());
        format!("{argv0} {}", args.join(" "))
    }
}

fn run(cli: Cli) -> Result<PathBuf> {
    let cases_dir = cli
        .cases_dir
        .clone()
        .unwrap_or_else(|| manifest_dir().join("cases"));
    if cli.case == "list" {
        for name in config::KNOWN_CASES {
            let c = CaseFile::load(&cases_dir, name)?;
            println!("{name}: {}", c.description);
        }
        std::process::exit(0);
    }
    let mut case = CaseFile::load(&cases_dir, &cli.case)?;
    case.apply(&Overrides {
        duration_s: cli.duration,
        warmup_s: cli.warmup,
        concurrency: cli.concurrency,
        clients: cli.clients,
        load_threads: cli.threads,
        posts: cli.posts,
        synthetic_rate: cli.rate,
        bus: cli.bus,
        source: cli.source,
        ingest_rate: cli.ingest_rate,
    })?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Many sockets: raise the limit before Starling starts (it inherits it).
    let nofile = case.ws_fanout.is_some().then(starling::raise_nofile_limit);

    let at = chrono::Utc::now();
    let results_root = cli
        .results_dir
        .clone()
        .unwrap_or_else(|| manifest_dir().join("results"));
    let dir = report::results_dir(&results_root, &case.case, at)?;
    let result = run_case(&cli, &case, &dir, at, cores, nofile);
    if result.is_err() {
        // Only removed when empty: a Starling log stays for reading.
        let _ = std::fs::remove_dir(&dir);
    }
    result.map(|()| dir)
}

/// `chart.png`: pipeline rates and lag (when `/metrics` was read), CPU and RSS.
fn write_chart(
    dir: &Path,
    case: &str,
    samples: &[sampler::Sample],
    pipe: &[pipeline::PipelineSample],
    markers: &[chart::Marker],
) -> Result<bool> {
    use chart::{rates, Line, Panel};
    let series = |f: &dyn Fn(&pipeline::PipelineSample) -> f64| -> Vec<(f64, f64)> {
        pipe.iter().map(|s| (s.t_s, f(s))).collect()
    };
    let mut panels = Vec::new();
    if pipe.len() >= 2 {
        panels.push(Panel {
            title: "posts / s".into(),
            lines: vec![
                Line {
                    name: "published".into(),
                    points: rates(&series(&|s| s.published)),
                },
                Line {
                    name: "classified".into(),
                    points: rates(&series(&|s| s.classified)),
                },
                Line {
                    name: "archived".into(),
                    points: rates(&series(&|s| s.archived)),
                },
            ],
        });
        panels.push(Panel {
            title: "lag of the slowest durable consumer (messages)".into(),
            lines: vec![Line {
                name: "lag".into(),
                points: series(&|s| s.lag_max),
            }],
        });
    }
    let of = |f: &dyn Fn(&sampler::Sample) -> Option<f64>| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter_map(|s| Some((s.t_s, f(s)?)))
            .collect()
    };
    panels.push(Panel {
        title: "CPU, % of one core".into(),
        lines: vec![
            Line {
                name: "Starling".into(),
                points: of(&|s| s.server_cpu_pct),
            },
            Line {
                name: "load generator".into(),
                points: of(&|s| Some(s.loadgen_cpu_pct)),
            },
            Line {
                name: "other".into(),
                points: of(&|s| Some(s.other_cpu_pct)),
            },
        ],
    });
    panels.push(Panel {
        title: "resident memory, MiB".into(),
        lines: vec![
            Line {
                name: "Starling".into(),
                points: of(&|s| s.server_rss_mib),
            },
            Line {
                name: "Starling anon".into(),
                points: of(&|s| s.server_rss_anon_mib),
            },
            Line {
                name: "Starling file".into(),
                points: of(&|s| s.server_rss_file_mib),
            },
            Line {
                name: "load generator".into(),
                points: of(&|s| Some(s.loadgen_rss_mib)),
            },
        ],
    });
    chart::write(&dir.join("chart.png"), case, &panels, markers)
}

/// The machine's busy CPU over one second, % of all cores.
fn machine_busy_now() -> Option<f64> {
    let read = || {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .as_deref()
            .and_then(sampler::parse_host_cpu)
    };
    let (b0, t0) = read()?;
    std::thread::sleep(Duration::from_secs(1));
    let (b1, t1) = read()?;
    (t1 > t0).then(|| (b1 - b0) as f64 / (t1 - t0) as f64 * 100.0)
}

fn run_case(
    cli: &Cli,
    case: &CaseFile,
    dir: &Path,
    at: chrono::DateTime<chrono::Utc>,
    cores: usize,
    nofile: Option<(u64, u64, u64)>,
) -> Result<()> {
    let busy_before = machine_busy_now();
    if let Some(b) = busy_before.filter(|b| *b > 10.0) {
        eprintln!(
            "loadtest: warning: the machine is already {b:.0} % busy (other processes): figures will be lower"
        );
    }
    // The Starling to start: the case's settings, plus the bus and the
    // synthetic source when the case drives them.
    let mut settings = case.starling.clone();
    if let Some(im) = case.ingest_max.as_ref().filter(|c| c.source == Source::Bus) {
        settings.synthetic_rate = im.bus_rate;
    }
    let nats = match (settings.bus, &cli.url) {
        (BusKind::Jetstream, None) => {
            let n = nats::Nats::start(&settings.nats_server, &dir.join("nats-server.log"))?;
            eprintln!("loadtest: nats-server (JetStream) at {}", n.url);
            settings
                .env
                .insert("STARLING_BUS__NATS_URL".into(), n.url.clone());
            Some(n)
        }
        _ => None,
    };
    let (server, base) = match &cli.url {
        Some(url) => {
            let url = url.trim_end_matches('/').to_string();
            if !url.starts_with("http://") {
                bail!("--url must be http://HOST:PORT");
            }
            (None, url)
        }
        None => {
            let binary = cli
                .starling
                .clone()
                .unwrap_or_else(starling::default_binary);
            eprintln!("loadtest: starting {}", binary.display());
            let s = starling::Starling::start(&binary, &settings, &dir.join("starling.log"))?;
            let base = s.base.clone();
            (Some(s), base)
        }
    };
    eprintln!("loadtest: {} against {base}", case.case);
    let origin = Instant::now();
    let sampler = Sampler::start(server.as_ref().map(|s| s.pid), cores, origin);
    let pipeline = Pipeline::start(&base, origin);
    let ctx = RunContext {
        base: base.clone(),
        started_here: server.is_some(),
        sampler: &sampler,
        cores,
        nofile,
        pipeline: &pipeline,
        origin,
        bus: settings.bus,
    };
    let outcome = match case.case.as_str() {
        "rest-lookups" => {
            cases::rest_lookups::run(&ctx, case.rest_lookups.as_ref().expect("checked at load"))
        }
        "ws-fanout" => {
            cases::ws_fanout::run(&ctx, case.ws_fanout.as_ref().expect("checked at load"))
        }
        "ingest-max" => {
            cases::ingest_max::run(&ctx, case.ingest_max.as_ref().expect("checked at load"))
        }
        "e2e-latency" => cases::stream::run(
            &ctx,
            case.e2e_latency.as_ref().expect("checked at load"),
            false,
        ),
        "soak" => cases::stream::run(&ctx, case.soak.as_ref().expect("checked at load"), true),
        other => bail!("unknown case {other}"),
    };
    let markers: Vec<chart::Marker> = sampler
        .snapshot()
        .windows(2)
        .filter(|w| w[0].phase != w[1].phase)
        .map(|w| (w[1].t_s, w[1].phase.clone()))
        .collect();
    sampler.set_phase("stop");
    let server_info = server.as_ref().map(|s| {
        (
            s.env.clone(),
            s.log.clone(),
            s.pid,
            case.starling.args.clone(),
        )
    });
    let pipeline_samples = pipeline.finish();
    let stopped = server.map(|s| s.stop(Duration::from_secs(case.starling.stop_timeout_s)));
    drop(nats);
    let samples = sampler.finish();
    let outcome = outcome?;
    let has_font = write_chart(dir, &case.case, &samples, &pipeline_samples, &markers)?;

    let phases = sampler::summarize(&samples);
    let mut md = format!(
        "# {} — {}\n\n{}\n\n",
        case.case,
        at.format("%Y-%m-%d %H:%M:%S UTC"),
        case.description
    );
    md.push_str(&format!(
        "- **Machine:** the load generator and Starling share this one machine: {cores} cores \
         (`std::thread::available_parallelism`). Every figure includes their competition for the CPU.\n"
    ));
    if let Some(b) = busy_before {
        md.push_str(&format!(
            "- **Before the run** the machine was {b:.0} % busy (all cores, over 1 s){}\n",
            if b > 10.0 {
                ": **other processes were competing, figures are lower than on a quiet machine**"
            } else {
                " (quiet)"
            }
        ));
    }
    md.push_str(&format!("- **Command:** `{}`\n", command_line()));
    match (&server_info, &stopped) {
        (Some((env, _, pid, args)), Some(stopped)) => {
            let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            md.push_str(&format!(
                "- **Starling:** started by the load test (pid {pid}): `starling run --http 127.0.0.1:0 --data <tmp>{}` with {}; stopped: {stopped}\n",
                if args.is_empty() { String::new() } else { format!(" {}", args.join(" ")) },
                env.join(", ")
            ));
        }
        _ => md.push_str(&format!(
            "- **Starling:** given by `--url {base}`: its settings are its own (the case's `[starling]` section was not applied), and its CPU and memory were not sampled\n"
        )),
    }
    for line in &outcome.setup {
        md.push_str(&format!("- {line}\n"));
    }
    md.push_str("\n## Results\n\n");
    md.push_str(&outcome.markdown);
    if !outcome.targets.is_empty() {
        md.push_str("\n## Targets\n\n");
        for t in &outcome.targets {
            md.push_str(&t.line());
            md.push('\n');
        }
    }
    md.push_str(&format!(
        "\n![chart](chart.png)\n\n`chart.png`: posts/s published and classified, the slowest consumer's lag, CPU and RSS over the run{}.\n",
        if has_font { "" } else { " (drawn without labels: no TrueType font found)" }
    ));
    md.push_str("\n## CPU and memory\n\n");
    md.push_str(&report::resources_markdown(
        &samples,
        &phases,
        server_info.is_some(),
    ));
    let log_json = if let Some((_, log, _, _)) = &server_info {
        let (warn, error, first) = starling::log_problems(log);
        md.push_str(&format!(
            "\n## Starling's log\n\n{warn} warning and {error} error lines (`starling.log` in this folder, STARLING_LOG=warn).\n"
        ));
        for l in &first {
            md.push_str(&format!("\n    {l}"));
        }
        if !first.is_empty() {
            md.push('\n');
        }
        serde_json::json!({"warnings": warn, "errors": error, "first": first})
    } else {
        serde_json::Value::Null
    };
    let json = serde_json::json!({
        "case": case.case,
        "started_at": at.to_rfc3339(),
        "command": command_line(),
        "machine": {
            "cores": cores,
            "busy_before_pct": busy_before,
            "shared": "the load generator and Starling share this machine",
        },
        "starling": {
            "url": base,
            "started_by_loadtest": server_info.is_some(),
            "env": server_info.as_ref().map(|(env, ..)| env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>()),
            "stopped": stopped,
            "log": log_json,
        },
        "config": case,
        "setup": outcome.setup,
        "results": outcome.json,
        "targets": outcome.targets,
        "resources": {"phases": phases, "samples": samples},
        "pipeline": pipeline_samples,
    });
    report::write(dir, &json, &md)?;
    println!("{md}");
    Ok(())
}
