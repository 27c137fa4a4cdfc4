//! Running the ledger: an in-memory database, an admin token from a file.

use ledger_tests::harness::json_of;
use ledger_tests::{Backend, SoftPasskey, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_keeps_everything_for_the_life_of_the_process() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.database_url = "sqlite::memory:".into()).await.expect("in memory");
    app.open_account("7100001", Some("mem@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
    app.register("7100001", "mem@example.jp", &mut key).await;
    // Many connections of two pools, one database: the login finds the
    // credential bound through another connection, the projector sees it all.
    for _ in 0..3 {
        assert_eq!(app.passkey_login(&mut key).await.status(), StatusCode::CREATED);
    }
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let support = app.staff("Mori", "support").await;
    let (_, found) = json_of(app.get("/api/v1/staff/accounts?q=7100001", Some(&support)).await).await;
    let account = found["accounts"][0]["account_id"].as_str().expect("found in the read models").to_string();
    let (_, history) = json_of(app.get(&format!("/api/v1/staff/accounts/{account}/history"), Some(&support)).await).await;
    let types: Vec<&str> = history["events"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.iter().filter(|t| **t == "PasskeyLoginSucceeded").count(), 3, "{types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_file_opens_the_integration_api_and_a_short_token_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let dir = std::env::temp_dir().join(format!("ledger-token-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("admin.token");
    std::fs::write(&path, "too-short\n").unwrap();
    let refused = ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap_err();
    assert!(refused.contains("at least 32 characters") && !refused.contains("too-short"), "{refused}");

    let token = "a-core-system-token-of-forty-characters-x";
    std::fs::write(&path, format!("{token}\n")).unwrap();
    ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap();
    // Provisioning again at the next start adds no second staff member.
    ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap();
    let body = json!({ "login_id": "7100002", "holder_kind": "individual", "email": "t@example.jp", "password": "pass-word-1",
                       "password_temporary": false, "transaction_password": "trade-pass-1" });
    let res = app.post("/api/v1/admin/accounts", body, Some(token)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM staff WHERE name = 'core-system'").fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(n, 1);
    let (stored,): (String,) =
        sqlx::query_as("SELECT token_hash FROM staff WHERE name = 'core-system'").fetch_one(&app.app.db.any).await.unwrap();
    assert_ne!(stored, token, "only the hash is kept");
}
