//! Starts `starling run` on a free port over a temporary data directory,
//! waits for `starling ready`, and stops it with SIGINT.

use crate::config::StarlingSettings;
use anyhow::{anyhow, bail, Context as _, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A Starling the load test started.
pub struct Starling {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its pid.
    pub pid: u32,
    /// Its data directory (removed on stop).
    pub data: PathBuf,
    /// Where its stderr (logs) goes.
    pub log: PathBuf,
    /// The environment it was started with (`STARLING_…` only).
    pub env: Vec<(String, String)>,
}

/// The default binary: `target/release/starling` of this workspace (or of
/// `CARGO_TARGET_DIR`).
pub fn default_binary() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("release").join("starling"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("release")
            .join("starling"),
    }
}

/// The `STARLING_…` environment for the case's settings.
pub fn environment(s: &StarlingSettings) -> Vec<(String, String)> {
    let mut env = vec![
        ("STARLING_LOG".to_string(), "warn".to_string()),
        (
            "STARLING_CONNECTORS__SYNTHETIC__RATE".to_string(),
            format!("{}", s.synthetic_rate),
        ),
    ];
    env.extend(s.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

impl Starling {
    /// Starts `binary run --http 127.0.0.1:0 --data <tmp>` with the case's
    /// settings; its logs go to `log`.
    pub fn start(binary: &Path, s: &StarlingSettings, log: &Path) -> Result<Starling> {
        if !binary.is_file() {
            bail!(
                "Starling's release binary {} is missing: build it first with \
                 `cargo build --release` (from the workspace root), pass --starling PATH, \
                 or point the load test at a running Starling with --url http://HOST:PORT",
                binary.display()
            );
        }
        let data = std::env::temp_dir().join(format!(
            "starling-loadtest-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        ));
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let env = environment(s);
        let mut cmd = Command::new(binary);
        cmd.args(["run", "--http", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(&s.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        // Only the case's STARLING_ settings: none inherited from the shell.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("STARLING_")) {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        let mut log_out = std::fs::OpenOptions::new().append(true).open(log)?;
        std::thread::spawn(move || {
            let mut http = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(log_out, "[stdout] {line}");
                if let Some(addr) = line.strip_prefix("starling listening on ") {
                    http = addr.trim().to_string();
                }
                if line.starts_with("starling ready") {
                    let _ = tx.send(http.clone());
                }
            }
        });
        let mut me = Starling {
            child: Some(child),
            base: String::new(),
            pid,
            data,
            log: log.to_path_buf(),
            env,
        };
        let deadline = Instant::now() + Duration::from_secs(s.ready_timeout_s);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(base) if !base.is_empty() => {
                    me.base = base;
                    return Ok(me);
                }
                Ok(_) => bail!("starling said ready before its address"),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(exit) = me.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
                    {
                        bail!(
                            "starling exited with {exit} before it was ready; its log: {}",
                            log.display()
                        );
                    }
                    if Instant::now() > deadline {
                        bail!(
                            "starling was not ready within {} s; its log: {}",
                            s.ready_timeout_s,
                            log.display()
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!(
                    "starling closed its stdout before it was ready; its log: {}",
                    log.display()
                ),
            }
        }
    }

    /// Sends SIGINT and waits up to `timeout` for the exit (then SIGKILL).
    /// Returns how it ended, in words.
    pub fn stop(mut self, timeout: Duration) -> String {
        let Some(mut child) = self.child.take() else {
            return "not running".into();
        };
        let started = Instant::now();
        // SAFETY: kill(2) on our own child's pid; it has not been waited for.
        let sent = unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGINT) } == 0;
        let mut outcome = None;
        while sent && started.elapsed() < timeout {
            if let Ok(Some(exit)) = child.try_wait() {
                outcome = Some(format!(
                    "{exit} {:.1} s after SIGINT",
                    started.elapsed().as_secs_f64()
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let outcome = outcome.unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            format!("killed (no exit within {} s of SIGINT)", timeout.as_secs())
        });
        let _ = std::fs::remove_dir_all(&self.data);
        outcome
    }
}

impl Drop for Starling {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }
}

/// Warning and error lines of a Starling log: `(warn, error, first few)`.
pub fn log_problems(log: &Path) -> (usize, usize, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut warn, mut error, mut first) = (0, 0, Vec::new());
    for line in text.lines() {
        let line = strip_ansi(line);
        let is_warn = line.contains(" WARN ");
        let is_error = line.contains(" ERROR ") || line.contains("panicked");
        warn += usize::from(is_warn);
        error += usize::from(is_error);
        if (is_warn || is_error) && first.len() < 5 {
            first.push(line.chars().take(300).collect());
        }
    }
    (warn, error, first)
}

/// `line` without ANSI colour sequences (`ESC [ … letter`).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Raises the soft open-file limit to the hard one; returns `(before, after, hard)`.
pub fn raise_nofile_limit() -> (u64, u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return (0, 0, 0);
        }
        let before: u64 = r.rlim_cur;
        let hard: u64 = r.rlim_max;
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return (before, hard, hard);
            }
        }
        (before, before, hard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_has_the_rate_and_the_case_settings() {
        let mut s = StarlingSettings {
            synthetic_rate: 200.0,
            ..Default::default()
        };
        s.env.insert("STARLING_HTTP__WORKERS".into(), "2".into());
        let env = environment(&s);
        assert!(env.contains(&("STARLING_LOG".into(), "warn".into())));
        assert!(env.contains(&("STARLING_CONNECTORS__SYNTHETIC__RATE".into(), "200".into())));
        assert!(env.contains(&("STARLING_HTTP__WORKERS".into(), "2".into())));
    }

    #[test]
    fn ansi_colours_are_stripped() {
        assert_eq!(
            strip_ansi("2026 \u{1b}[33m WARN\u{1b}[0m \u{1b}[2mstarling\u{1b}[0m: slow"),
            "2026  WARN starling: slow"
        );
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let dir = std::env::temp_dir();
        let err = Starling::start(
            Path::new("/nonexistent/starling"),
            &StarlingSettings::default(),
            &dir.join("loadtest-unit-missing.log"),
        )
        .err()
        .expect("must fail");
        assert!(err.to_string().contains("cargo build --release"));
    }
}
