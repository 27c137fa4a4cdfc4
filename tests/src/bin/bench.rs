//! Benchmarks: the ledger on an ephemeral port, driven over real HTTP with
//! real WebAuthn data, plus the event store, projector and audit trail
//! directly. Prints a Markdown table for docs/benchmarks.md.
//!
//!     cargo run --release -p ledger-tests --bin bench -- [sqlite|postgres] [events]

use std::time::{Duration, Instant};

use ledger_domain::account::HolderKind;
use ledger_domain::{AccountCommand, Channel, LoginId};
use ledger_tests::harness::ORIGIN;
use ledger_tests::{Backend, SoftPasskey, TestApp};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn row(name: &str, n: u64, elapsed: Duration, extra: String) {
    println!("| {name} | {n} | {:.2} s | {:.0}/s | {extra} |", elapsed.as_secs_f64(), n as f64 / elapsed.as_secs_f64());
}

async fn login(app: &TestApp, key: &mut SoftPasskey) -> Duration {
    let start = Instant::now();
    let res = app.passkey_login(key).await;
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    start.elapsed()
}

/// Appends `per_account` RegistrationStarted events to each of `accounts`
/// new accounts, straight through the command bus.
async fn append(app: &TestApp, accounts: usize, per_account: usize) -> (u64, Duration) {
    let meta = ledger_api::http::extract::RequestMeta {
        channel: Channel::Web,
        ip: "127.0.0.1".into(),
        user_agent: "bench".into(),
        request_id: "bench".into(),
        hints: Default::default(),
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let ledger = app.app.clone();
        let meta = meta.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            for a in (worker..accounts).step_by(4) {
                let id = uuid::Uuid::new_v4().to_string();
                let now = ledger.clock.now();
                let open = AccountCommand::OpenAccount {
                    login_id: LoginId::parse(&format!("b{a:07}")).unwrap(),
                    holder_kind: HolderKind::Individual,
                    email: None,
                    password_temporary: false,
                    at: now,
                };
                ledger.ledger.execute(&id, open, meta.metadata("core_system", now)).await.unwrap();
                n += 1;
                for _ in 1..per_account {
                    let cmd =
                        AccountCommand::StartRegistration { flow_id: uuid::Uuid::new_v4().to_string(), channel: Channel::Web, at: now };
                    ledger.ledger.execute(&id, cmd, meta.metadata("customer", now)).await.unwrap();
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total, start.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = match args.get(1).map(String::as_str) {
        Some("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let events: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let app = TestApp::spawn(backend).await.expect("database for the benchmark");
    println!(
        "backend: {backend:?}; {} cores; rss at start {} MiB\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        rss_kib() / 1024
    );
    println!("| benchmark | n | time | rate | notes |\n|---|---|---|---|---|");

    // Passkey login over HTTP: options, assertion, verification, event, session.
    app.open_account("9000001", Some("bench@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    app.register("9000001", "bench@example.jp", &mut key).await;
    for _ in 0..20 {
        login(&app, &mut key).await;
    }
    let n = 300;
    let start = Instant::now();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        times.push(login(&app, &mut key).await);
    }
    let elapsed = start.elapsed();
    times.sort();
    row(
        "passkey login, one client (HTTP, WebAuthn verify, append, session)",
        n as u64,
        elapsed,
        format!("p50 {:.1} ms, p95 {:.1} ms", percentile(&times, 0.5).as_secs_f64() * 1e3, percentile(&times, 0.95).as_secs_f64() * 1e3),
    );

    // The same with 8 customers at once.
    let mut keys = Vec::new();
    for i in 0..8 {
        let login_id = format!("90001{i:02}");
        let email = format!("bench{i}@example.jp");
        app.open_account(&login_id, Some(&email), false).await;
        let mut k = SoftPasskey::new("localhost", ORIGIN);
        app.register(&login_id, &email, &mut k).await;
        keys.push(k);
    }
    let shared = std::sync::Arc::new(app);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut k in keys {
        let app = shared.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                login(&app, &mut k).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    row("passkey login, 8 customers concurrently", 400, start.elapsed(), String::new());
    let app = std::sync::Arc::try_unwrap(shared).ok().expect("no other owner");

    // Appends through the command bus (load, decide, append with retries).
    let (n, elapsed) = append(&app, events / 50, 50).await;
    row("append through the command bus (4 writers, 50 events per account)", n, elapsed, String::new());

    // Projector: catch up, then a full rebuild of every read model.
    // (The service's own projector followed the appends as they came.)
    app.app.projector.catch_up().await.unwrap();
    let start = Instant::now();
    app.app.projector.rebuild().await.unwrap();
    let rebuilt = app.app.projector.applied().await.unwrap();
    row("projections rebuild from the log (audit chain, read models, fraud rules)", rebuilt as u64, start.elapsed(), String::new());

    // Audit verify and a streamed export, watching memory.
    let start = Instant::now();
    let applied = app.app.projector.applied().await.unwrap();
    let v = ledger_projections::audit::verify(&app.app.db.any, app.app.db.backend, applied, |_| {}).await.unwrap();
    assert!(v.ok);
    row("audit verify (chain + source log)", v.checked, start.elapsed(), String::new());

    let compliance = app.staff("Bench", "compliance").await;
    for (label, filter) in [("export CSV, AccountOpened rows only", "&type=AccountOpened"), ("export CSV, whole trail", "")] {
        let before = rss_kib();
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
        let watcher = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let start = Instant::now();
        let mut res = app.get(&format!("/api/v1/audit/export?format=csv{filter}"), Some(&compliance)).await;
        let mut bytes = 0usize;
        let mut lines = 0u64;
        while let Some(chunk) = res.chunk().await.unwrap() {
            bytes += chunk.len();
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let elapsed = start.elapsed();
        watcher.abort();
        let growth = peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(before);
        row(label, lines.saturating_sub(1), elapsed, format!("{:.1} MB out, peak RSS growth {} MiB", bytes as f64 / 1e6, growth / 1024));
    }
}
