//! The same request sent several times at once (a double tap, a retrying
//! proxy, two support agents on one call): exactly one does it, the others
//! get their error codes, none a 5xx, and the log holds one event.

use futures_util::future::join_all;
use ledger_tests::harness::{error_code, json_of, ORIGIN};
use ledger_tests::{SoftPasskey, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    one_code_sent_eight_times_at_once_is_accepted_once,
    one_registration_ceremony_finished_eight_times_at_once_registers_one_passkey,
    one_passkey_deleted_eight_times_at_once_is_deleted_once,
    two_support_agents_revoking_one_passkey_at_once_record_one_revocation,
);

/// The answers' statuses and error codes, sorted, and that none is a 5xx.
fn outcomes(answers: &[(StatusCode, Value)]) -> Vec<(u16, String)> {
    for (s, v) in answers {
        assert!(!s.is_server_error(), "no 5xx in a race: {s} {v}");
    }
    let mut out: Vec<(u16, String)> = answers.iter().map(|(s, v)| (s.as_u16(), error_code(v).to_string())).collect();
    out.sort();
    out
}

/// One success with `won`, the rest refused with `lost` and its code.
fn one_wins(won: u16, lost: (u16, &str), n: usize) -> Vec<(u16, String)> {
    std::iter::once((won, String::new())).chain(std::iter::repeat_n((lost.0, lost.1.to_string()), n - 1)).collect()
}

fn count(events: &[(String, Value, Value)], event_type: &str) -> usize {
    events.iter().filter(|(t, _, _)| t == event_type).count()
}

async fn one_code_sent_eight_times_at_once_is_accepted_once(app: TestApp) {
    let account = app.open_account("6600001", Some("race-code@example.jp"), false).await;
    let (flow, res) = app.start_registration("6600001", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let code = app.code_for("race-code@example.jp");
    let path = format!("/api/v1/registrations/{flow}/otp");
    let answers = join_all((0..8).map(|_| async { json_of(app.post(&path, json!({ "code": code }), None).await).await })).await;
    // The code is taken: the flow has moved on to the passkey step.
    assert_eq!(outcomes(&answers), one_wins(200, (409, "wrong_step"), 8), "{answers:?}");
    let events = app.events_of(&account).await;
    assert_eq!(count(&events, "EmailCodeVerified"), 1, "{:?}", events.iter().map(|e| &e.0).collect::<Vec<_>>());
    assert_eq!(count(&events, "EmailCodeRejected"), 0, "a repeat of the right code is no wrong code");
}

async fn one_registration_ceremony_finished_eight_times_at_once_registers_one_passkey(app: TestApp) {
    let account = app.open_account("6600002", Some("race-reg@example.jp"), false).await;
    let (flow, _) = app.start_registration("6600002", "pass-word-1").await;
    let code = app.code_for("race-reg@example.jp");
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": code }), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let options: Value = app.post(&format!("/api/v1/registrations/{flow}/passkey/options"), json!({}), None).await.json().await.unwrap();
    let credential = SoftPasskey::new("localhost", ORIGIN).register(&options);
    let path = format!("/api/v1/registrations/{flow}/passkey");
    let answers = join_all((0..8).map(|_| async { json_of(app.post(&path, json!({ "credential": credential }), None).await).await })).await;
    // The flow ended with its passkey.
    assert_eq!(outcomes(&answers), one_wins(201, (410, "flow_expired"), 8), "{answers:?}");
    assert_eq!(count(&app.events_of(&account).await, "PasskeyRegistered"), 1);
}

/// A signed-in customer with two passkeys (the one signed in with stays).
async fn customer_with_two_passkeys(app: &TestApp, login_id: &str, email: &str) -> (String, String, String) {
    let account = app.open_account(login_id, Some(email), false).await;
    let mut phone = SoftPasskey::new("localhost", ORIGIN);
    let registered = app.register(login_id, email, &mut phone).await;
    let token = registered["session"]["token"].as_str().unwrap().to_string();
    // A second passkey added from the session (the phone's own, kept).
    let (_, options) =
        json_of(app.post("/api/v1/me/passkeys/options", json!({ "transaction_password": "trade-pass-1" }), Some(&token)).await).await;
    let credential = SoftPasskey::new("localhost", ORIGIN).register(&options);
    let (s, added) = json_of(app.post("/api/v1/me/passkeys", json!({ "credential": credential }), Some(&token)).await).await;
    assert_eq!(s, StatusCode::CREATED, "{added}");
    let (_, mine) = json_of(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    let second = mine["passkeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] != registered["passkey"]["id"])
        .map(|p| p["id"].as_str().unwrap().to_string())
        .expect("the added passkey");
    (account, token, second)
}

async fn one_passkey_deleted_eight_times_at_once_is_deleted_once(app: TestApp) {
    let (account, token, second) = customer_with_two_passkeys(&app, "6600003", "race-del@example.jp").await;
    let path = format!("/api/v1/me/passkeys/{second}");
    let answers = join_all((0..8).map(|_| async {
        json_of(
            app.request(Method::DELETE, &path, Some(&token)).json(&json!({ "transaction_password": "trade-pass-1" })).send().await.unwrap(),
        )
        .await
    }))
    .await;
    assert_eq!(outcomes(&answers), one_wins(200, (404, "not_found"), 8), "{answers:?}");
    assert_eq!(count(&app.events_of(&account).await, "PasskeysRevoked"), 1);
}

async fn two_support_agents_revoking_one_passkey_at_once_record_one_revocation(app: TestApp) {
    let (account, _, second) = customer_with_two_passkeys(&app, "6600004", "race-support@example.jp").await;
    let (sato, suzuki) = (app.staff("Sato", "support").await, app.staff("Suzuki", "support").await);
    let path = format!("/api/v1/staff/accounts/{account}/passkeys/revoke");
    let body = json!({ "reason": "device_lost", "passkey_id": second });
    let answers = join_all([&sato, &suzuki, &sato, &suzuki].into_iter().map(|token| {
        let body = body.clone();
        let path = path.clone();
        let app = &app;
        async move { json_of(app.post(&path, body, Some(token)).await).await }
    }))
    .await;
    assert_eq!(outcomes(&answers), one_wins(200, (404, "not_found"), 4), "{answers:?}");
    let events = app.events_of(&account).await;
    assert_eq!(count(&events, "PasskeysRevoked"), 1, "{:?}", events.iter().map(|e| &e.0).collect::<Vec<_>>());
}
