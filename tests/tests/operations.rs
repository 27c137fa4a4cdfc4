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
    for route in [
        "/api/v1/registrations",
        "/api/v1/registrations/{flow_id}/password",
        "/api/v1/registrations/{flow_id}/otp",
        "/api/v1/registrations/{flow_id}/otp/resend",
        "/api/v1/registrations/{flow_id}/passkey/options",
        "/api/v1/registrations/{flow_id}/passkey",
        "/api/v1/sessions/passkey/options",
        "/api/v1/sessions/passkey",
        "/api/v1/sessions/password",
        "/api/v1/sessions/password/{flow_id}/otp",
        "/api/v1/sessions/password/{flow_id}/otp/resend",
        "/api/v1/sessions/current",
        "/api/v1/me/passkeys",
        "/api/v1/admin/accounts",
        "/api/v1/admin/accounts/{account_id}/email",
        "/api/v1/admin/accounts/{account_id}/password",
        "/api/v1/admin/accounts/{account_id}/email-status",
        "/healthz",
        "/readyz",
    ] {
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
