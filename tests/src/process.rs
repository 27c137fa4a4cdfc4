//! The real `ledger` binary as a process of its own, for what only a
//! process shows: start-up against a database that is not there yet, and
//! `kill -9` in the middle of a load.
//!
//! The program is `ledger-process` (`src/bin/ledger-process.rs`): the
//! ledger's own entry point, built by cargo with these tests, so they never
//! run a stale binary.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `ledger` program of this build: a test names it with
/// `env!("CARGO_BIN_EXE_ledger-process")` (set for integration tests only).
#[macro_export]
macro_rules! ledger_program {
    () => {
        env!("CARGO_BIN_EXE_ledger-process")
    };
}

/// A free loopback port (bound, then let go).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// The `ledger` program with the settings every process of a test shares.
fn ledger_command(program: &str, database_url: &str, data_dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("DATABASE_URL", database_url)
        .env("LEDGER_DATA_DIR", data_dir)
        .env("LEDGER_ORIGIN", crate::harness::ORIGIN)
        .env("LEDGER_RP_ID", "localhost")
        .env("LEDGER_SECRET_KEY", "5a".repeat(32))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Runs a one-shot `ledger` command (`args`) over the database of a
/// test, to its end: its exit status, stdout and stderr.
pub async fn run_command(program: &str, database_url: &str, data_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = ledger_command(program, database_url, data_dir);
    command.args(args);
    tokio::task::spawn_blocking(move || command.output().expect("the ledger command runs")).await.expect("it ends")
}

/// `ledger serve` running in a process of its own, its output in a file.
pub struct Served {
    child: Child,
    pub base: String,
    pub log: PathBuf,
    pub data_dir: PathBuf,
}

impl Served {
    /// Starts `ledger serve` on a free port over `database_url`, with the
    /// data folder `data_dir` and the extra settings `env`.
    pub fn start(program: &str, database_url: &str, data_dir: &Path, env: &[(&str, &str)]) -> Served {
        std::fs::create_dir_all(data_dir).expect("data folder");
        let port = free_port();
        let log = data_dir.join(format!("serve-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut command = ledger_command(program, database_url, data_dir);
        command.arg("serve").env("LEDGER_BIND", format!("127.0.0.1:{port}")).stdout(out).stderr(err);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("ledger serve starts");
        Served { child, base: format!("http://127.0.0.1:{port}"), log, data_dir: data_dir.to_path_buf() }
    }

    /// What the process has written so far.
    pub fn output(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Waits until the output contains `needle`; panics with the output
    /// after `timeout`.
    pub async fn wait_for_output(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.output().contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} within {timeout:?}; output:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/readyz` answers 200; panics with the output after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let http = reqwest::Client::new();
        loop {
            if let Ok(res) = http.get(format!("{}/readyz", self.base)).send().await {
                if res.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "not ready within {timeout:?}; output:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process has ended, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to end by itself; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}; output:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: the process ends at once, mid-request, with no shutdown.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// Forwards connections on a loopback port to `to` until dropped: a
/// database that becomes reachable when the forwarder starts.
pub struct Forwarder(tokio::task::JoinHandle<()>);

impl Forwarder {
    pub async fn start(port: u16, to: &str) -> Forwarder {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the forwarded port");
        let to = to.to_string();
        Forwarder(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = to.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }))
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A TCP proxy on loopback to `to` that can be cut (every open connection
/// closed, new ones closed at once) and restored: a server that goes down
/// and comes back, as its clients see it.
pub struct Proxy {
    pub port: u16,
    up: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(to: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a proxy port");
        let port = listener.local_addr().expect("its address").port();
        let up = std::sync::Arc::new(tokio::sync::watch::channel(true).0);
        let (to, watch) = (to.to_string(), up.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut state = watch.subscribe();
                if !*state.borrow_and_update() {
                    continue; // dropped: closed at once
                }
                let to = to.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = state.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { port, up, task }
    }

    /// Closes every connection and refuses new ones (`false`), or lets
    /// them through again (`true`).
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
