//! Issue 3 over real HTTP with real WebAuthn data: cross-device sign-in and
//! the local passkey after it, security keys, backup state, deletion by the
//! customer, notices, environments, on SQLite and on PostgreSQL.

use ledger_tests::devices::{add_passkey_on, code, json_of, login_on, pc, phone, register_on};
use ledger_tests::harness::{CHROME_WINDOWS, ORIGIN};
use ledger_tests::{SoftPasskey, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    a_phone_passkey_signs_in_a_pc_across_devices_and_the_pc_gets_a_local_passkey,
    a_security_key_is_told_apart_from_a_phone,
    continuing_without_a_local_passkey_is_recorded,
    adding_a_passkey_needs_a_recent_login_and_room,
    a_change_of_backup_state_is_recorded,
    the_customer_deletes_passkeys_with_the_trading_password,
    wrong_trading_passwords_lock_deletion,
    a_login_from_a_new_environment_is_notified_once,
);

fn types(events: &[(String, Value, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _, _)| t.as_str()).collect()
}

async fn status(app: &TestApp, token: &str) -> Value {
    json_of(app.get("/api/v1/me/passkeys", Some(token)).await).await.1
}

async fn a_phone_passkey_signs_in_a_pc_across_devices_and_the_pc_gets_a_local_passkey(app: TestApp) {
    let mut on_phone = SoftPasskey::new("localhost", ORIGIN);
    register_on(&app, "3000001", "hanako@example.jp", &mut on_phone, phone).await;

    // The PC has no passkey: the browser shows a QR code, the phone answers
    // over hybrid, and the PC's browser reports "cross-platform".
    on_phone.attachment = "cross-platform";
    let (s, v) = login_on(&app, &mut on_phone, pc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["cross_device"], true);
    assert_eq!(v["offer_local_passkey"], true);
    assert_eq!(v["authenticator"], "cross_device");
    let sign_in_id = v["sign_in_id"].as_str().unwrap().to_string();
    let account_id = v["account_id"].as_str().unwrap().to_string();
    let pc_token = v["session"]["token"].as_str().unwrap().to_string();

    let events = app.events_of(&account_id).await;
    let (_, sign_in, meta) = events.iter().find(|(t, _, _)| t == "CrossDeviceSignInSucceeded").expect("cross-device event");
    let sign_in = &sign_in["CrossDeviceSignInSucceeded"];
    assert_eq!(sign_in["sign_in_id"], sign_in_id.as_str());
    assert_eq!(sign_in["environment"]["os"], "Windows");
    assert_eq!(sign_in["environment"]["os_version"], "11 24H2");
    assert_eq!(sign_in["environment"]["recommended"], true);
    assert_eq!(sign_in["new_environment"], true);
    assert_eq!(sign_in["assertion"]["authenticator_attachment"], "cross-platform");
    assert_eq!(meta["user_agent"], CHROME_WINDOWS);
    let view = status(&app, &pc_token).await;
    assert_eq!(sign_in["passkey_id"], view["passkeys"][0]["id"], "the phone's passkey answered");

    // "Create a new passkey on this device" (seed 000 p.12): Windows Hello.
    let (_, options) =
        json_of(pc(app.request(Method::POST, "/api/v1/me/passkeys/options", Some(&pc_token))).json(&json!({})).send().await.unwrap()).await;
    let excluded: Vec<&str> =
        options["publicKey"]["excludeCredentials"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(excluded, vec![on_phone.id()], "the phone's credential is excluded");
    let mut hello = SoftPasskey::new("localhost", ORIGIN);
    hello.backup_eligible = false;
    hello.transports = vec!["internal"];
    let (s, v) = add_passkey_on(&app, &pc_token, &mut hello, pc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["passkey"]["added_via"], "local_after_cross_device");
    assert_eq!(v["passkey"]["cross_device_sign_in"], sign_in_id.as_str());
    assert_eq!(v["passkey"]["synced"], false);
    assert_eq!(v["passkey"]["environment_recommended"], true);

    let events = app.events_of(&account_id).await;
    let (_, added, _) = events.iter().find(|(t, _, _)| t == "LocalPasskeyAdded").expect("local passkey event");
    assert_eq!(added["LocalPasskeyAdded"]["cross_device_sign_in"], sign_in_id.as_str());

    // Next time the PC logs in with its own passkey: not cross-device.
    let (s, v) = login_on(&app, &mut hello, pc).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!((v["cross_device"].clone(), v["authenticator"].clone()), (json!(false), json!("same_device")));
    let view = status(&app, v["session"]["token"].as_str().unwrap()).await;
    assert_eq!(view["passkeys"].as_array().unwrap().len(), 2);
    assert_eq!(view["last_login_environment_recommended"], true);

    // Both additions were e-mailed to the registered address, without links.
    let mails: Vec<String> = app.mail_to("hanako@example.jp").iter().map(|m| m.decoded()).collect();
    let added = mails.iter().filter(|m| m.contains("A passkey was added") || m.contains("was added to your account")).count();
    assert_eq!(added, 2, "{mails:#?}");
    assert!(mails.iter().all(|m| !m.contains("http://") && !m.contains("https://")), "no links in e-mail");
}

async fn a_security_key_is_told_apart_from_a_phone(app: TestApp) {
    let mut key = SoftPasskey::security_key("localhost", ORIGIN);
    register_on(&app, "3000002", "key@example.jp", &mut key, pc).await;
    let (s, v) = login_on(&app, &mut key, pc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["cross_device"], false);
    assert_eq!(v["offer_local_passkey"], false);
    assert_eq!(v["authenticator"], "security_key");
    let events = app.events_of(v["account_id"].as_str().unwrap()).await;
    let (_, login, _) = events.iter().rev().find(|(t, _, _)| t == "PasskeyLoginSucceeded").unwrap();
    assert_eq!(login["PasskeyLoginSucceeded"]["authenticator"], "security_key");
}

async fn continuing_without_a_local_passkey_is_recorded(app: TestApp) {
    let mut on_phone = SoftPasskey::new("localhost", ORIGIN);
    register_on(&app, "3000003", "decline@example.jp", &mut on_phone, phone).await;
    on_phone.attachment = "cross-platform";
    let (_, v) = login_on(&app, &mut on_phone, pc).await;
    let token = v["session"]["token"].as_str().unwrap();
    let res = pc(app.request(Method::POST, "/api/v1/me/passkeys/decline-local", Some(token))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let events = app.events_of(v["account_id"].as_str().unwrap()).await;
    let (_, declined, _) = events.iter().find(|(t, _, _)| t == "LocalPasskeyDeclined").expect("declined");
    assert_eq!(declined["LocalPasskeyDeclined"]["cross_device_sign_in"], v["sign_in_id"]);
}

async fn adding_a_passkey_needs_a_recent_login_and_room(app: TestApp) {
    let mut first = SoftPasskey::new("localhost", ORIGIN);
    let token = register_on(&app, "3000004", "room@example.jp", &mut first, pc).await;
    app.clock.advance(chrono::Duration::minutes(11));
    let (s, v) = add_passkey_on(&app, &token, &mut SoftPasskey::new("localhost", ORIGIN), pc).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "recent_login_required"));
    let (_, v) = login_on(&app, &mut first, pc).await;
    let fresh = v["session"]["token"].as_str().unwrap().to_string();
    for _ in 0..9 {
        let (s, v) = add_passkey_on(&app, &fresh, &mut SoftPasskey::new("localhost", ORIGIN), pc).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = add_passkey_on(&app, &fresh, &mut SoftPasskey::new("localhost", ORIGIN), pc).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "passkey_limit_reached"));
    let events = app.events_of(v_account(&app, &fresh).await.as_str()).await;
    let refused: Vec<&str> = events
        .iter()
        .filter(|(t, _, _)| t == "PasskeyAdditionRefused")
        .map(|(_, p, _)| p["PasskeyAdditionRefused"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(refused, vec!["recent_login_required", "passkey_limit_reached"]);
}

async fn v_account(app: &TestApp, token: &str) -> String {
    status(app, token).await["account_id"].as_str().unwrap().to_string()
}

async fn a_change_of_backup_state_is_recorded(app: TestApp) {
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let token = register_on(&app, "3000005", "backup@example.jp", &mut key, pc).await;
    assert_eq!(status(&app, &token).await["passkeys"][0]["backup_state"], true);
    key.backed_up = false;
    let (s, v) = login_on(&app, &mut key, pc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let events = app.events_of(v["account_id"].as_str().unwrap()).await;
    assert!(types(&events).contains(&"PasskeyBackupStateChanged"));
    let view = status(&app, v["session"]["token"].as_str().unwrap()).await;
    assert_eq!(view["passkeys"][0]["backup_state"], false);
    assert_eq!(view["passkeys"][0]["synced"], true, "backup eligibility does not change");
}

async fn delete(app: &TestApp, token: &str, path: &str, password: &str) -> (StatusCode, Value) {
    json_of(pc(app.request(Method::DELETE, path, Some(token))).json(&json!({ "transaction_password": password })).send().await.unwrap())
        .await
}

async fn the_customer_deletes_passkeys_with_the_trading_password(app: TestApp) {
    let mut first = SoftPasskey::new("localhost", ORIGIN);
    let token = register_on(&app, "3000006", "del@example.jp", &mut first, pc).await;
    let mut second = SoftPasskey::new("localhost", ORIGIN);
    add_passkey_on(&app, &token, &mut second, pc).await;
    let view = status(&app, &token).await;
    let second_id = view["passkeys"][1]["id"].as_str().unwrap().to_string();
    let account_id = view["account_id"].as_str().unwrap().to_string();

    let (s, v) = delete(&app, &token, "/api/v1/me/passkeys/no-such-passkey", "trade-pass-1").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = delete(&app, &token, &format!("/api/v1/me/passkeys/{second_id}"), "trade-pass-1").await;
    assert_eq!((s, v["deleted"].clone()), (StatusCode::OK, json!(1)));
    assert_eq!(status(&app, &token).await["passkeys"].as_array().unwrap().len(), 1);
    let (s, v) = delete(&app, &token, "/api/v1/me/passkeys", "trade-pass-1").await;
    assert_eq!((s, v["deleted"].clone()), (StatusCode::OK, json!(1)));
    let view = status(&app, &token).await;
    assert_eq!(view["passkeys"], json!([]));
    assert_eq!(view["summary"]["ja"], "パスキーは登録されていません。");
    assert_eq!(view["login_method"], "password_and_email_code");

    // The passkey stays on the device; using it is recognised as revoked.
    let (s, v) = login_on(&app, &mut first, pc).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "revoked_credential"));
    let events = app.events_of(&account_id).await;
    let (_, failed, _) = events.iter().rev().find(|(t, _, _)| t == "PasskeyLoginFailed").expect("recorded against the account");
    assert_eq!(failed["PasskeyLoginFailed"]["reason"], "revoked_credential");

    // Login is back to password + e-mail code.
    let (s, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "3000006", "password": "pass-word-1" }), None).await).await;
    assert_eq!((s, v["next"].clone()), (StatusCode::OK, json!("otp")));
    let deleted_notices = app.mail_to("del@example.jp").iter().filter(|m| m.decoded().contains("deleted from your account")).count();
    assert_eq!(deleted_notices, 2);
    // Each notice sent is on record, with the masked address.
    let events = app.events_of(&account_id).await;
    let notices: Vec<&Value> =
        events.iter().filter(|(t, _, _)| t == "SecurityNoticeSent").map(|(_, p, _)| &p["SecurityNoticeSent"]).collect();
    let kinds: Vec<&str> = notices.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["passkey_added", "passkey_added", "passkeys_deleted", "passkeys_deleted"]);
    assert!(notices.iter().all(|n| n["destination"] == "d***@example.jp" && n["sent"] == true));
}

async fn wrong_trading_passwords_lock_deletion(app: TestApp) {
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let token = register_on(&app, "3000007", "lock@example.jp", &mut key, pc).await;
    // Nothing typed is refused as a form error, and counts for nothing.
    for _ in 0..6 {
        let (s, v) = delete(&app, &token, "/api/v1/me/passkeys", " ").await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"));
    }
    for n in 1..=4 {
        let (s, v) = delete(&app, &token, "/api/v1/me/passkeys", "wrong-pass").await;
        assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_transaction_password"), "attempt {n}");
    }
    let (s, v) = delete(&app, &token, "/api/v1/me/passkeys", "wrong-pass").await;
    assert_eq!((s, code(&v)), (StatusCode::LOCKED, "deletion_locked"));
    let (s, v) = delete(&app, &token, "/api/v1/me/passkeys", "trade-pass-1").await;
    assert_eq!((s, code(&v)), (StatusCode::LOCKED, "deletion_locked"), "even the right password");
    let view = status(&app, &token).await;
    assert_eq!(view["deletion_locked"], true);
    assert_eq!(view["passkeys"].as_array().unwrap().len(), 1);
}

async fn a_login_from_a_new_environment_is_notified_once(app: TestApp) {
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    register_on(&app, "3000008", "notice@example.jp", &mut key, pc).await;
    let notices = |app: &TestApp| app.mail_to("notice@example.jp").iter().filter(|m| m.decoded().contains("logged in to")).count();
    login_on(&app, &mut key, pc).await;
    assert_eq!(notices(&app), 0, "the registering PC is not new");
    login_on(&app, &mut key, phone).await;
    assert_eq!(notices(&app), 1, "a synced passkey on a phone is a new environment");
    login_on(&app, &mut key, phone).await;
    assert_eq!(notices(&app), 1);
}
