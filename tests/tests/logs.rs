//! Secrets never reach the logs: every flow that handles a password, a
//! one-time code, a session token or a staff token runs with the log at
//! DEBUG for every crate, and the captured output is searched for them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ledger_tests::harness::ORIGIN;
use ledger_tests::{Backend, SoftPasskey, TestApp};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_code_or_token_is_ever_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let support = app.staff("Sato", "support").await;
    let account = app.open_account("9300001", Some("logs@example.jp"), false).await;
    // A wrong password, then the right one, a wrong code, then the right one.
    app.start_registration("9300001", "wrong-secret-pw").await;
    let (flow, _) = app.start_registration("9300001", "pass-word-1").await;
    app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": "999999" }), None).await;
    let code = app.code_for("logs@example.jp");
    app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": code }), None).await;
    let options: Value = app.post(&format!("/api/v1/registrations/{flow}/passkey/options"), json!({}), None).await.json().await.unwrap();
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let credential = key.register(&options);
    let done: Value =
        app.post(&format!("/api/v1/registrations/{flow}/passkey"), json!({ "credential": credential }), None).await.json().await.unwrap();
    let session = done["session"]["token"].as_str().expect("session").to_string();
    app.get("/api/v1/me/passkeys", Some(&session)).await;
    app.send(
        reqwest::Method::DELETE,
        "/api/v1/me/passkeys",
        Some(json!({ "transaction_password": "wrong-trading-pw" })),
        Some(&session),
        "web",
    )
    .await;
    app.get(&format!("/api/v1/staff/accounts/{account}/history"), Some(&support)).await;
    app.app.projector.catch_up().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("/api/v1/registrations"), "requests are logged at this level: {} bytes", logs.len());
    for (what, secret) in [
        ("login password", "pass-word-1"),
        ("wrong login password", "wrong-secret-pw"),
        ("trading password", "wrong-trading-pw"),
        ("one-time code", code.as_str()),
        ("session token", session.as_str()),
        ("staff token", support.as_str()),
        ("admin token", app.admin_token.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the log");
    }
}
