//! Health, readiness and the OpenAPI document.

use ledger_tests::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

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
