//! The `starling` binary: parse the command line, load the configuration,
//! run. Everything else lives in the library.

use anyhow::Context as _;
use clap::Parser;
use starling::cli::{Cli, Command, EvalTask};
use starling::nlp::fast::{cmd as fast_cmd, eval::Task};

/// mimalloc instead of glibc's malloc: the pipeline allocates and frees
/// many small buffers per post on several threads, and glibc's allocator
/// took about a fifth of the CPU under `loadtest ingest-max` (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::HashKey { secret } => {
            println!("{}", starling::web::auth::hash_key(&secret));
            Ok(())
        }
        Command::Config(o) => {
            print!("{}", o.load()?.to_toml());
            Ok(())
        }
        Command::Migrate(o) => {
            let config = o.load()?;
            anyhow::ensure!(
                config.store.scylla.enabled(),
                "migrate needs ScyllaDB: --scylla host:9042 or store.scylla.nodes (the embedded store needs no migration)"
            );
            for line in starling::store::scylla::migrate(&config)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Classify(a) => {
            fast_cmd::run_classify(a.tier, a.model.as_deref(), a.file.as_deref())
        }
        Command::Eval(a) => {
            let task = match a.task {
                EvalTask::Sentiment => Task::Sentiment,
                EvalTask::Emotion => Task::Emotion,
                EvalTask::Toxicity => Task::Toxicity,
                EvalTask::Churn => Task::Churn,
            };
            fast_cmd::run_eval(
                a.tier,
                task,
                &a.file,
                a.split.as_deref(),
                a.json,
                a.model.as_deref(),
            )
        }
        Command::Train(a) => fast_cmd::run_train(a.data, &a.out, a.churn, a.seed),
        Command::AlertsEval(a) => {
            let config = a.overrides.load()?;
            let mut synthetic = config.connectors.synthetic.clone();
            synthetic.episodes = !a.no_episodes;
            let spec = starling::alerts::synthetic_eval::EvalSpec {
                hours: a.hours,
                synthetic,
                alerts: config.alerts.clone(),
                entities: config.entities.clone(),
                detect_s: a.detect_s,
                grace_s: 120.0,
            };
            let report = starling::alerts::synthetic_eval::run(&spec)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                starling::alerts::synthetic_eval::print(&report);
            }
            Ok(())
        }
        #[cfg(feature = "encoder")]
        Command::TrainEncoder(a) => {
            let opts = starling::nlp::encoder::train::EncoderTrainOptions::new(
                a.data, a.churn, a.model, a.cache, a.seed,
            );
            fast_cmd::run_train_encoder(&opts, &a.out)
        }
        #[cfg(not(feature = "encoder"))]
        Command::TrainEncoder(_) => anyhow::bail!(
            "train-encoder is not part of this build (built without the `encoder` cargo feature)"
        ),
        Command::Summarize(a) => starling::summary::cmd::run(a),
        Command::Run(o) => {
            let config = o.load()?;
            starling::telemetry::init_logging();
            actix_rt::System::new().block_on(starling::app::run(
                config,
                shutdown_signal(),
                |ready| {
                    println!("starling listening on http://{}", ready.http);
                    println!("starling ready (roles: {:?})", ready.roles);
                },
            ))
        }
    }
    .context("starling failed")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
