//! The `ledger` binary as an operator uses it.

// An integration test: its helpers may unwrap like its tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

/// Whether the data folder's database holds `secret` anywhere.
fn stored(dir: &std::path::Path, secret: &str) -> bool {
    let db = std::fs::read(dir.join("ledger.db")).expect("database file");
    let wal = std::fs::read(dir.join("ledger.db-wal")).unwrap_or_default();
    let haystack = [db, wal].concat();
    haystack.windows(secret.len()).any(|w| w == secret.as_bytes())
}

#[test]
fn staff_add_prints_an_enrolment_link_and_with_token_a_token_and_stores_only_their_hashes() {
    let dir = temp_dir();
    let out = ledger(&dir, &["staff", "add", "--name", "Suzuki", "--role", "support"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let link = stdout.lines().last().expect("a last line").trim().to_string();
    let secret =
        link.strip_prefix("http://localhost:8080/console/enrol/").unwrap_or_else(|| panic!("a console link on its own line: {stdout}"));
    assert!(secret.len() >= 40, "a long random link: {link}");
    assert!(!stored(&dir, secret), "the link itself is not stored");
    let listing = String::from_utf8(ledger(&dir, &["staff", "list"]).stdout).expect("utf-8");
    assert!(listing.lines().any(|l| l.contains("Suzuki") && l.contains("no token")), "{listing}");
    let taken = ledger(&dir, &["staff", "add", "--name", "Suzuki", "--role", "support"]);
    assert!(!taken.status.success(), "names are unique");

    let out = ledger(&dir, &["staff", "add", "--name", "Script", "--role", "compliance", "--token"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let token = stdout.lines().last().expect("a last line").trim().to_string();
    assert!(token.len() >= 40 && !token.contains('/'), "a long random token: {token}");
    assert!(!stored(&dir, &token), "the token itself is not stored");

    // A new token later, and a new link for a lost passkey.
    let out = ledger(&dir, &["staff", "token", "--name", "Suzuki"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf-8").lines().last().expect("token").trim().to_string();
    assert!(!stored(&dir, &token));
    let listing = String::from_utf8(ledger(&dir, &["staff", "list"]).stdout).expect("utf-8");
    assert!(listing.lines().any(|l| l.contains("Suzuki") && l.contains("in force")), "{listing}");
    let out = ledger(&dir, &["staff", "link", "--name", "Suzuki"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).lines().last().expect("link").contains("/console/enrol/"));
    let unknown = ledger(&dir, &["staff", "token", "--name", "Nobody"]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("no such staff member"));
    let out = ledger(&dir, &["audit", "export", "--format", "jsonl", "--out", "-", "--type", "StaffEnrolmentLinkIssued,StaffTokenIssued"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4, "three links and one token, on record");
}

#[test]
fn adding_staff_is_on_record_naming_who_added_them() {
    let dir = temp_dir();
    let first = ledger(&dir, &["staff", "add", "--name", "Lead", "--role", "admin"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    let lead = stdout.split(['(', ')']).nth(1).expect("the new member's staff_id").to_string();
    // The next member is added by the lead, named with --as.
    let second = ledger(&dir, &["--as", &lead, "staff", "add", "--name", "Kato", "--role", "compliance"]);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let refused = ledger(&dir, &["staff", "add", "--as", "nobody", "--name", "X", "--role", "support"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--as nobody"), "{}", String::from_utf8_lossy(&refused.stderr));

    let out = ledger(&dir, &["--as", &lead, "audit", "export", "--format", "jsonl", "--out", "-", "--type", "StaffMemberAdded"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:").map(|ids| ids.split_whitespace().next().unwrap().to_string()))
        .unwrap();
    assert_eq!(rows[0]["actor"], format!("operator:uid:{uid}"), "the first, by the operating system's user");
    assert_eq!((rows[1]["actor"].as_str(), rows[1]["channel"].as_str()), (Some(format!("staff:{lead}").as_str()), Some("cli")));
    assert!(rows[1]["line"]["ja"].as_str().unwrap().contains("担当者 Kato"), "{}", rows[1]["line"]);
    assert!(!rows.iter().any(|r| r.to_string().contains("token\":")), "no token in the event");
    // The export itself is recorded in the lead's stream.
    let again = ledger(
        &dir,
        &["audit", "export", "--format", "jsonl", "--out", "-", "--type", "AuditTrailExported", "--actor", &format!("staff:{lead}")],
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout).lines().count(), 1);
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

#[test]
fn audit_export_shows_progress_and_verify_catches_an_edit() {
    let dir = temp_dir();
    assert!(ledger(&dir, &["demo-seed"]).status.success());
    let csv = dir.join("trail.csv");
    let out = ledger(&dir, &["audit", "export", "--format", "csv", "--out", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("exported") && progress.contains("(100%)"), "progress on stderr: {progress}");
    let bytes = std::fs::read(&csv).unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(text.contains("基幹システムが口座 demo-001 を開設しました"));
    // Thirteen demo accounts, one line each, after the header.
    assert_eq!(text.matches(",\"AccountOpened\",").count(), 13);

    let jsonl = ledger(&dir, &["audit", "export", "--format", "jsonl", "--out", "-", "--type", "AccountOpened"]);
    assert_eq!(String::from_utf8_lossy(&jsonl.stdout).lines().count(), 13);
    // The filters read as the API reads them: a Japan-time day, types in
    // any case, an account by its login ID; an unknown type named.
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap()).format("%Y-%m-%d").to_string();
    let args = ["audit", "export", "--format", "jsonl", "--out", "-", "--from", &today, "--type", "accountopened", "--account", "demo-001"];
    let one = ledger(&dir, &args);
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&one.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["type"].as_str(), rows[0]["login_id"].as_str()), (Some("AccountOpened"), Some("demo-001")));
    let refused = ledger(&dir, &["audit", "export", "--out", "-", "--type", "AccountOpened,Nope"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unknown event type(s): Nope"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let verify = ledger(&dir, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let head = ledger(&dir, &["audit", "head"]);
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let (position, hash) = head.split_once(' ').expect("position and hash");
    assert!(position.parse::<i64>().unwrap() >= 9);
    assert_eq!(hash.len(), 64);

    // Someone edits a row in the database file.
    let db = edit_row_two(&dir.join("ledger.db"));
    assert!(db, "the edit went in");
    let verify = ledger(&dir, &["audit", "verify"]);
    assert!(!verify.status.success(), "an altered trail fails verification");
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("\"first_bad_position\": 2"), "{said}");
}

/// Edits audit row 2 directly in the SQLite file, as an intruder would.
fn edit_row_two(path: &std::path::Path) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", path.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let r = sqlx::query("UPDATE audit_trail SET line_ja = '何も起きていません' WHERE audit_position = 2").execute(&pool).await.unwrap();
        pool.close().await;
        r.rows_affected() == 1
    })
}

/// SIGTERM (what a container runtime sends) stops the service gracefully:
/// it exits 0 instead of being killed, and records the throttle's refusals
/// of the minute under way.
#[cfg(unix)]
#[test]
fn sigterm_stops_the_service_gracefully() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = temp_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("serve")
        .env("LEDGER_DATA_DIR", &dir)
        .env("LEDGER_BIND", "127.0.0.1:0")
        .env("LEDGER_FAILED_ATTEMPTS_PER_CLIENT_PER_MINUTE", "2")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ledger serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("listening on http://") {
        line.clear();
        assert!(stdout.read_line(&mut line).expect("stdout") > 0, "the service ended before it listened");
    }
    let address = line.split("http://").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("an address").to_string();
    let mut stream = std::net::TcpStream::connect(&address).expect("connects");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Two failures are the allowance: the next two are refused.
    for expected in ["HTTP/1.1 401", "HTTP/1.1 401", "HTTP/1.1 429", "HTTP/1.1 429"] {
        let body = r#"{"login_id":"nobody","password":"wrong-pass-1"}"#;
        let mut stream = std::net::TcpStream::connect(&address).expect("connects");
        let request = format!(
            "POST /api/v1/sessions/password HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with(expected), "{answer}");
    }
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "still running 20 s after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut logs = String::new();
    stdout.read_to_string(&mut logs).unwrap();
    child.stderr.take().expect("stderr").read_to_string(&mut logs).unwrap();
    assert!(status.success(), "exit {status:?}: {logs}");
    assert!(logs.contains("shutting down"), "{logs}");
    assert_eq!(
        throttled_summaries(&dir.join("ledger.db")),
        vec![r#"{"AttemptsThrottled":{"client":"127.0.0.1","refused":2,"window_secs":60}}"#]
    );
}

/// The AttemptsThrottled events in the SQLite file.
fn throttled_summaries(path: &std::path::Path) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT payload FROM events WHERE event_type = 'AttemptsThrottled'").fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.into_iter().map(|(p,)| p).collect()
    })
}

#[test]
fn staff_list_and_revoke_token_show_and_end_a_token_without_printing_it() {
    let dir = temp_dir();
    let out = ledger(&dir, &["staff", "add", "--name", "Tanaka", "--role", "compliance", "--token", "--expires-in-days", "30"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    let token = printed.lines().last().expect("the token").trim().to_string();

    let list = ledger(&dir, &["staff", "list"]);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let listing = String::from_utf8(list.stdout).expect("utf-8");
    let line = listing.lines().find(|l| l.contains("Tanaka")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains("compliance") && line.contains("in force"), "{listing}");
    assert!(!listing.contains(&token), "the listing never shows a token");
    let staff_id = line.split_whitespace().next().expect("the staff id").to_string();
    assert!(printed.contains(&format!("({staff_id})")), "staff add names the new member's id: {printed}");

    let revoked = ledger(&dir, &["staff", "revoke-token", &staff_id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let listing = String::from_utf8(ledger(&dir, &["staff", "list"]).stdout).expect("utf-8");
    assert!(listing.lines().any(|l| l.contains(&staff_id) && l.contains("revoked")), "{listing}");

    let nameless = ledger(&dir, &["staff", "add", "--name", "  ", "--role", "support"]);
    assert!(!nameless.status.success() && String::from_utf8_lossy(&nameless.stderr).contains("--name"));
    let unknown = ledger(&dir, &["staff", "revoke-token", "no-such-member"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no staff member"), "{}", String::from_utf8_lossy(&unknown.stderr));
    let too_long = ledger(&dir, &["staff", "add", "--name", "X", "--role", "support", "--token", "--expires-in-days", "400"]);
    assert!(!too_long.status.success(), "a token lasts at most a year");
}

#[test]
fn a_database_url_that_names_no_database_is_refused_and_leaves_nothing_behind() {
    let dir = temp_dir();
    for url in ["not-a-url", "mysql://root@localhost/ledger", "ledger.db"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("migrate")
            .current_dir(&dir)
            .env("LEDGER_DATA_DIR", dir.join("data"))
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("ledger runs");
        assert!(!out.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DATABASE_URL must start with postgres://, postgresql:// or sqlite://"), "{url}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").file_name()).collect();
        assert!(left.is_empty(), "{url} left {left:?} behind");
    }
}

#[test]
fn audit_head_prints_only_the_head_on_stdout_and_logs_go_to_stderr() {
    let dir = temp_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["audit", "head"])
        .env("LEDGER_DATA_DIR", &dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .output()
        .expect("ledger runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout, format!("0 {}\n", "0".repeat(64)), "only the head");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {stderr}");
    let bad = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["audit", "head"])
        .env("LEDGER_DATA_DIR", &dir)
        .env("LEDGER_LOG_FORMAT", "xml")
        .output()
        .expect("ledger runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("LEDGER_LOG_FORMAT must be text or json"));
}

/// Every setting the example deployment files use is one the binary knows
/// (`ledger serve --help` lists each with its variable), and the systemd
/// unit passes `systemd-analyze verify` where systemd is installed.
#[test]
fn the_deployment_examples_use_only_settings_the_ledger_knows() {
    let help = Command::new(env!("CARGO_BIN_EXE_ledger")).args(["serve", "--help"]).output().expect("ledger runs");
    let help = String::from_utf8(help.stdout).expect("utf-8");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for file in ["deploy/ledger.service", "deploy/ledger.env.example", "deploy/Containerfile"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let names = text
            .split(|c: char| !(c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()))
            .filter(|w| w.starts_with("LEDGER_") || *w == "DATABASE_URL");
        for name in names {
            // The log format is read before the settings, by the logger.
            if name != "LEDGER_LOG_FORMAT" {
                assert!(help.contains(&format!("[env: {name}")), "{file} uses {name}, which `ledger serve --help` does not list");
            }
            checked += 1;
        }
    }
    assert!(checked > 10, "{checked} names checked");
    let Ok(status) = Command::new("systemd-analyze").arg("--version").output() else { return };
    if !status.status.success() {
        return;
    }
    let dir = temp_dir();
    let unit = std::fs::read_to_string(root.join("deploy/ledger.service"))
        .expect("unit")
        .replace("/usr/local/bin/ledger", env!("CARGO_BIN_EXE_ledger"));
    std::fs::write(dir.join("ledger.service"), unit).expect("unit copy");
    let verify = Command::new("systemd-analyze").arg("verify").arg(dir.join("ledger.service")).output().expect("systemd-analyze");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

/// A wrong setting exits 2 before the database is touched (restarting will
/// not mend it; the systemd unit stops retrying on 2); nothing is created.
#[test]
fn a_wrong_setting_exits_2_before_touching_the_database() {
    for (name, value) in [
        ("LEDGER_SECRET_KEY", "abcd"),
        ("LEDGER_SMTP_URL", "ftp://mail.example.jp"),
        ("LEDGER_RP_ID", "other.example"),
        ("LEDGER_PUBLIC_STAFF_API", "off"),
        ("LEDGER_CODE_LIFETIME_SECS", "0"),
        ("LEDGER_LOG_FORMAT", "xml"),
    ] {
        let dir = temp_dir();
        let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["staff", "list"])
            .env("LEDGER_DATA_DIR", dir.join("data"))
            .env_remove("DATABASE_URL")
            .env(name, value)
            .output()
            .expect("ledger runs");
        assert_eq!(out.status.code(), Some(2), "{name}={value}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!dir.join("data").join("ledger.db").exists(), "{name}={value}: no database was created");
    }
}
