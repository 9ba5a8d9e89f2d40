//! The `starling` binary: parse the command line, load the configuration,
//! run. Everything else lives in the library.

use anyhow::Context as _;
use clap::Parser;
use starling::cli::{Cli, Command};

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
