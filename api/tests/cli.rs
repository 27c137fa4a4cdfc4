//! The `ledger` binary as an operator uses it.

use std::process::Command;

fn ledger(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(args)
        .env("LEDGER_DATA_DIR", data_dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("ledger runs")
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ledger-cli-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

#[test]
fn staff_add_prints_the_token_on_the_last_line_and_stores_only_its_hash() {
    let dir = temp_dir();
    let out = ledger(&dir, &["staff", "add", "--name", "Suzuki", "--role", "support"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let token = stdout.lines().last().expect("a last line").trim().to_string();
    assert!(token.len() >= 40, "a long random token: {token}");
    let db = std::fs::read(dir.join("ledger.db")).expect("database file");
    let wal = std::fs::read(dir.join("ledger.db-wal")).unwrap_or_default();
    let haystack = [db, wal].concat();
    assert!(!haystack.windows(token.len()).any(|w| w == token.as_bytes()), "the token itself is not stored");
}

#[test]
fn an_unknown_role_is_refused() {
    let dir = temp_dir();
    let out = ledger(&dir, &["staff", "add", "--name", "X", "--role", "superuser"]);
    assert!(!out.status.success());
}

#[test]
fn migrate_then_demo_seed_create_the_demo_accounts_and_seed_twice_is_harmless() {
    let dir = temp_dir();
    assert!(ledger(&dir, &["migrate"]).status.success());
    let first = ledger(&dir, &["demo-seed"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("demo-001"));
    let second = ledger(&dir, &["demo-seed"]);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("already there"));
    assert!(ledger(&dir, &["projections", "rebuild"]).status.success());
}
