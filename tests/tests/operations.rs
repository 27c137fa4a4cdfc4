//! Health, readiness, the OpenAPI document, metrics; an in-memory database
//! and an admin token from a file.

use ledger_tests::harness::json_of;
use ledger_tests::{Backend, SoftPasskey, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_with_the_projector_lag() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["migrations"], "applied");
    assert!(ready["projector_lag"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let doc: Value = app.get("/api/openapi.json", None).await.json().await.unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    // Every `.route("...")` in the HTTP modules, read from the source, so a
    // new route without documentation fails here.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src/http");
    let mut routes = Vec::new();
    for entry in std::fs::read_dir(dir).expect("http sources") {
        let source = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
        for part in source.split(".route(\"").skip(1) {
            routes.push(part.split('"').next().expect("path").to_string());
        }
    }
    assert!(routes.len() > 25, "found {} routes", routes.len());
    for route in routes.iter().filter(|r| r.starts_with("/api/v1") || r.starts_with("/healthz") || r.starts_with("/readyz")) {
        assert!(paths.contains_key(route), "{route} missing from the OpenAPI document");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_channel_header_gets_a_stable_error() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let res =
        app.send(reqwest::Method::POST, "/api/v1/registrations", Some(serde_json::json!({ "login_id": "1234567" })), None, "fax").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_channel");
    assert!(v["error"]["message_ja"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_events_and_signals_in_prometheus_format() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    app.open_account("9100001", Some("same@example.jp"), false).await;
    app.open_account("9100002", Some("same@example.jp"), false).await;
    app.app.projector.catch_up().await.unwrap();
    let res = app.get("/metrics", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    assert!(text.contains("ledger_events_total{type=\"AccountOpened\"} 2"), "{text}");
    assert!(text.contains("ledger_accounts 2"));
    assert!(text.contains("ledger_projector_lag 0"));
    assert!(text.contains("ledger_signals{kind=\"shared_email\",status=\"open\"} 1"), "{text}");
    assert!(!text.contains("same@example.jp"), "nothing personal");
}

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

/// A request ID from the caller is echoed and recorded with the events the
/// request wrote; a missing one is made by the ledger; one too long or with
/// odd characters is replaced, never stored (an 8 KB header would otherwise
/// be copied into every event's metadata).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_recorded_and_kept_short() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let long = "x".repeat(8 * 1024);
    for (n, sent) in [Some("ops-2026.11:42_a"), None, Some(long.as_str()), Some("two words")].into_iter().enumerate() {
        let login_id = format!("930100{n}");
        let mut req = app.client.post(format!("{}/api/v1/admin/accounts", app.base)).bearer_auth(&app.admin_token).json(&json!({
            "login_id": login_id, "holder_kind": "individual", "email": format!("rid{n}@example.jp"), "password": "pass-word-1",
            "password_temporary": false, "transaction_password": "trade-pass-1" }));
        if let Some(id) = sent {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let echoed = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let account = res.json::<Value>().await.unwrap()["account_id"].as_str().unwrap().to_string();
        match sent {
            Some(id) if n == 0 => assert_eq!(echoed, id, "a plain ID is kept"),
            _ => assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "the ledger's own ID: {echoed:.80}"),
        }
        let events = app.events_of(&account).await;
        assert_eq!(events[0].2["request_id"], echoed.as_str(), "the event carries the ID the caller was told");
    }
}
