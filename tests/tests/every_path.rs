//! One rule, every path, over real HTTP on SQLite and PostgreSQL: a
//! credential ID is bound at most once, ever; the first passkey goes through
//! the rules of first registration by any path; a change to the account
//! closes the flows still open on it; a flow keeps its channel; an event the
//! read models cannot take does not stop the service.

use ledger_tests::harness::{error_code as code, json_of, ORIGIN};
use ledger_tests::{Backend, SoftPasskey, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    a_credential_id_of_another_account_is_refused_at_registration,
    a_deleted_credential_id_is_not_registered_again,
    another_customers_credential_id_is_refused_on_me_passkeys,
    the_first_passkey_from_a_session_meets_every_registration_refusal,
    the_first_passkey_from_a_session_is_a_registration,
    a_registration_at_its_passkey_step_meets_a_change_made_after_its_code,
    a_new_login_password_closes_an_open_login,
    a_lock_closes_an_open_login,
    a_registered_passkey_closes_an_older_password_login,
    a_flow_keeps_the_channel_it_began_on,
    a_credential_change_ends_the_sessions_opened_before_it,
    deleting_a_passkey_ends_the_sessions_opened_with_it_and_no_other,
    an_event_the_read_models_cannot_take_is_skipped_and_reported,
    reading_the_chain_head_is_on_record,
);

fn key() -> SoftPasskey {
    SoftPasskey::new("localhost", ORIGIN)
}

/// Another authenticator that chose the same credential ID as `of`.
fn same_id_as(of: &SoftPasskey) -> SoftPasskey {
    let mut twin = key();
    twin.credential_id = of.credential_id.clone();
    twin
}

/// Password + e-mail code up to the code being mailed; returns the flow.
async fn password_step(app: &TestApp, login_id: &str, channel: &str) -> (StatusCode, Value) {
    json_of(
        app.send(
            Method::POST,
            "/api/v1/sessions/password",
            Some(json!({ "login_id": login_id, "password": "pass-word-1" })),
            None,
            channel,
        )
        .await,
    )
    .await
}

async fn otp_step(app: &TestApp, flow: &str, email: &str, channel: &str) -> (StatusCode, Value) {
    let path = format!("/api/v1/sessions/password/{flow}/otp");
    json_of(app.send(Method::POST, &path, Some(json!({ "code": app.code_for(email) })), None, channel).await).await
}

/// A session opened by password + e-mail code (an account with no passkey).
async fn password_session(app: &TestApp, login_id: &str, email: &str) -> String {
    let (s, v) = password_step(app, login_id, "web").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = otp_step(app, v["flow_id"].as_str().unwrap(), email, "web").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["session"]["token"].as_str().unwrap().to_string()
}

/// Creation options from the session; a first passkey is confirmed with the
/// trading password (seed 000's status screen, the default).
async fn add_options(app: &TestApp, token: &str) -> (StatusCode, Value) {
    json_of(app.post("/api/v1/me/passkeys/options", json!({ "transaction_password": "trade-pass-1" }), Some(token)).await).await
}

async fn add_passkey(app: &TestApp, token: &str, key: &mut SoftPasskey, options: &Value) -> (StatusCode, Value) {
    json_of(app.post("/api/v1/me/passkeys", json!({ "credential": key.register(options) }), Some(token)).await).await
}

/// Registration up to a verified code; returns the flow.
async fn code_verified(app: &TestApp, login_id: &str, email: &str) -> String {
    let (flow, res) = app.start_registration(login_id, "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap_or_default());
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": app.code_for(email) }), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    flow
}

async fn registration_options(app: &TestApp, flow: &str) -> (StatusCode, Value) {
    json_of(app.post(&format!("/api/v1/registrations/{flow}/passkey/options"), json!({}), None).await).await
}

async fn registration_passkey(app: &TestApp, flow: &str, key: &mut SoftPasskey, options: &Value) -> (StatusCode, Value) {
    json_of(app.post(&format!("/api/v1/registrations/{flow}/passkey"), json!({ "credential": key.register(options) }), None).await).await
}

fn types(events: &[(String, Value, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _, _)| t.as_str()).collect()
}

/// Every kind of route still answers: passkey login, password login,
/// registration, the support desk, compliance, readiness; and again after
/// a restart. `key` is a passkey of `holder` that logs in.
async fn still_serves(app: TestApp, key: &mut SoftPasskey, holder: &str) -> TestApp {
    let mut app = app;
    for round in 0..2 {
        let res = app.passkey_login(key).await;
        assert_eq!(res.status(), StatusCode::CREATED, "round {round}: passkey login");
        app.open_account(&format!("99{round}0001"), Some(&format!("fresh{round}@example.jp")), false).await;
        let (s, v) = password_step(&app, &format!("99{round}0001"), "web").await;
        assert_eq!(s, StatusCode::OK, "round {round}: password login {v}");
        let res = app.post("/api/v1/registrations", json!({ "login_id": format!("99{round}0001") }), None).await;
        assert_eq!(res.status(), StatusCode::CREATED, "round {round}: registration");
        let support = app.staff("Sato", "support").await;
        let (s, v) = json_of(app.get(&format!("/api/v1/staff/accounts/{holder}/history"), Some(&support)).await).await;
        assert_eq!(s, StatusCode::OK, "round {round}: support history {v}");
        let compliance = app.staff("Kato", "compliance").await;
        let (s, v) = json_of(app.get("/api/v1/audit/events?limit=5", Some(&compliance)).await).await;
        assert_eq!(s, StatusCode::OK, "round {round}: audit trail {v}");
        let (s, v) = json_of(app.get("/readyz", None).await).await;
        assert_eq!(s, StatusCode::OK, "round {round}: {v}");
        assert_eq!(v["projection_failures"], 0, "round {round}: {v}");
        if round == 0 {
            app = app.restart().await;
        }
    }
    app
}

// --- 1. A credential ID is bound at most once, ever --------------------------------

async fn a_credential_id_of_another_account_is_refused_at_registration(app: TestApp) {
    let mut first = key();
    let holder = app.open_account("7100001", Some("ichiro@example.jp"), false).await;
    app.register("7100001", "ichiro@example.jp", &mut first).await;

    let other = app.open_account("7100002", Some("jiro@example.jp"), false).await;
    let flow = code_verified(&app, "7100002", "jiro@example.jp").await;
    let (_, options) = registration_options(&app, &flow).await;
    let mut twin = same_id_as(&first);
    let (s, v) = registration_passkey(&app, &flow, &mut twin, &options).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "credential_already_registered"), "{v}");
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("既に登録"));
    let events = app.events_of(&other).await;
    let (_, refused, _) = events.iter().find(|(t, _, _)| t == "PasskeyRegistrationRefused").expect("the refusal is recorded");
    assert_eq!(refused["PasskeyRegistrationRefused"]["reason"], "credential_already_registered");
    assert!(!types(&events).contains(&"PasskeyRegistered"));

    // The refused customer can still register with a passkey of their own.
    let (_, options) = registration_options(&app, &flow).await;
    let (s, v) = registration_passkey(&app, &flow, &mut key(), &options).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    still_serves(app, &mut first, &holder).await;
}

async fn a_deleted_credential_id_is_not_registered_again(app: TestApp) {
    let mut first = key();
    let holder = app.open_account("7200001", Some("saburo@example.jp"), false).await;
    let token = app.register("7200001", "saburo@example.jp", &mut first).await["session"]["token"].as_str().unwrap().to_string();
    let res =
        app.send(Method::DELETE, "/api/v1/me/passkeys", Some(json!({ "transaction_password": "trade-pass-1" })), Some(&token), "web").await;
    assert_eq!(res.status(), StatusCode::OK);

    // Registration again, with the credential still on the device.
    let flow = code_verified(&app, "7200001", "saburo@example.jp").await;
    let (_, options) = registration_options(&app, &flow).await;
    let (s, v) = registration_passkey(&app, &flow, &mut first, &options).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "credential_already_registered"), "{v}");

    // A new passkey is fine; the deleted one is still recognised as deleted.
    let (_, options) = registration_options(&app, &flow).await;
    let mut second = key();
    let (s, _) = registration_passkey(&app, &flow, &mut second, &options).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = json_of(app.passkey_login(&mut first).await).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "revoked_credential"));
    still_serves(app, &mut second, &holder).await;
}

async fn another_customers_credential_id_is_refused_on_me_passkeys(app: TestApp) {
    let mut first = key();
    let holder = app.open_account("7300001", Some("shiro@example.jp"), false).await;
    app.register("7300001", "shiro@example.jp", &mut first).await;

    let other = app.open_account("7300002", Some("goro@example.jp"), false).await;
    let mut own = key();
    let token = app.register("7300002", "goro@example.jp", &mut own).await["session"]["token"].as_str().unwrap().to_string();
    let (s, options) = add_options(&app, &token).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = add_passkey(&app, &token, &mut same_id_as(&first), &options).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "credential_already_registered"), "{v}");
    let events = app.events_of(&other).await;
    assert!(events
        .iter()
        .any(|(t, p, _)| t == "PasskeyAdditionRefused" && p["PasskeyAdditionRefused"]["reason"] == "credential_already_registered"));
    // Its own credential again, too.
    let (_, options) = add_options(&app, &token).await;
    let (s, v) = add_passkey(&app, &token, &mut same_id_as(&own), &options).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "credential_already_registered"), "{v}");
    still_serves(app, &mut first, &holder).await;
}

// --- The first passkey goes through the rules of first registration ---------------

/// Changes the account `account` (login `login_id`) so that rule `rule`
/// refuses a first passkey; returns the code it refuses with.
async fn break_rule(app: &TestApp, rule: &str, account: &str, login_id: &str, email: &str) -> &'static str {
    match rule {
        "temporary" => {
            let path = format!("/api/v1/admin/accounts/{account}/password");
            let res = app
                .send(Method::PUT, &path, Some(json!({ "password": "pass-word-1", "temporary": true })), Some(&app.admin_token), "web")
                .await;
            assert!(res.status().is_success());
            "temporary_password"
        }
        "unreachable" => {
            let path = format!("/api/v1/admin/accounts/{account}/email-status");
            let res = app.send(Method::PUT, &path, Some(json!({ "reachable": false })), Some(&app.admin_token), "web").await;
            assert!(res.status().is_success());
            "email_unreachable"
        }
        "shared" => {
            // A family member's account opened with the same address.
            app.open_account(&format!("{login_id}9"), Some(email), false).await;
            "email_shared_with_other_accounts"
        }
        "locked" => {
            for _ in 0..5 {
                app.post("/api/v1/sessions/password", json!({ "login_id": login_id, "password": "wrong-wrong" }), None).await;
            }
            // The lock-out ends the sessions opened before it: the session
            // itself is refused before any step is tried.
            "session_ended"
        }
        other => panic!("no rule {other}"),
    }
}

async fn the_first_passkey_from_a_session_meets_every_registration_refusal(app: TestApp) {
    for (n, rule) in ["temporary", "unreachable", "shared", "locked"].into_iter().enumerate() {
        for at_bind_step in [false, true] {
            let login_id = format!("74{n}{}001", at_bind_step as u8);
            let email = format!("family{n}{}@example.jp", at_bind_step as u8);
            // A temporary password is set before the session: setting it later
            // ends the session (a credential change), tested below.
            let account = app.open_account(&login_id, Some(&email), rule == "temporary").await;
            let token = password_session(&app, &login_id, &email).await;
            let (s, v) = if rule == "temporary" {
                let (s, v) = add_options(&app, &token).await;
                assert_eq!(code(&v), "temporary_password", "{rule} at the options: {v}");
                (s, v)
            } else if at_bind_step {
                // The options were handed out before the account changed.
                let (s, options) = add_options(&app, &token).await;
                assert_eq!(s, StatusCode::OK, "{rule}: {options}");
                let want = break_rule(&app, rule, &account, &login_id, &email).await;
                let (s, v) = add_passkey(&app, &token, &mut key(), &options).await;
                assert_eq!(code(&v), want, "{rule} at the bind step: {v}");
                (s, v)
            } else {
                let want = break_rule(&app, rule, &account, &login_id, &email).await;
                let (s, v) = add_options(&app, &token).await;
                assert_eq!(code(&v), want, "{rule} at the options: {v}");
                (s, v)
            };
            assert!(s.is_client_error(), "{rule}: {s} {v}");
            let events = app.events_of(&account).await;
            assert!(!types(&events).iter().any(|t| *t == "PasskeyRegistered" || *t == "LocalPasskeyAdded"), "{rule}: nothing bound");
            if rule != "locked" {
                assert!(types(&events).contains(&"PasskeyAdditionRefused"), "{rule}: the refusal is recorded");
            }
        }
    }
}

async fn the_first_passkey_from_a_session_is_a_registration(app: TestApp) {
    let account = app.open_account("7500001", Some("rokuro@example.jp"), false).await;
    let token = password_session(&app, "7500001", "rokuro@example.jp").await;
    let (s, options) = add_options(&app, &token).await;
    assert_eq!(s, StatusCode::OK);
    let mut k = key();
    let (s, v) = add_passkey(&app, &token, &mut k, &options).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let events = app.events_of(&account).await;
    let (_, registered, _) = events.iter().find(|(t, _, _)| t == "PasskeyRegistered").expect("recorded as a registration");
    assert_eq!(registered["PasskeyRegistered"]["bound_by"], "signed_in_session:password_and_email_code+trading_password");
    assert!(registered["PasskeyRegistered"]["flow_id"].is_null());
    assert!(!types(&events).contains(&"LocalPasskeyAdded"));
    // From now on the passkey is the way in, and password login is over.
    assert_eq!(app.passkey_login(&mut k).await.status(), StatusCode::CREATED);
    let (s, v) = password_step(&app, "7500001", "web").await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "passkey_required"));
}

async fn a_registration_at_its_passkey_step_meets_a_change_made_after_its_code(app: TestApp) {
    for (n, rule) in ["temporary", "unreachable", "shared", "locked"].into_iter().enumerate() {
        for at_bind_step in [false, true] {
            let login_id = format!("76{n}{}001", at_bind_step as u8);
            let email = format!("reg{n}{}@example.jp", at_bind_step as u8);
            let account = app.open_account(&login_id, Some(&email), false).await;
            let flow = code_verified(&app, &login_id, &email).await;
            let (s, v) = if at_bind_step {
                let (s, options) = registration_options(&app, &flow).await;
                assert_eq!(s, StatusCode::OK);
                break_rule(&app, rule, &account, &login_id, &email).await;
                registration_passkey(&app, &flow, &mut key(), &options).await
            } else {
                break_rule(&app, rule, &account, &login_id, &email).await;
                registration_options(&app, &flow).await
            };
            // The rule's own code, or flow_closed where the change ended the
            // flow (a new password, a new address): either way, no passkey.
            let allowed = ["temporary_password", "email_unreachable", "email_shared_with_other_accounts", "login_locked", "flow_closed"];
            assert!(s.is_client_error() && allowed.contains(&code(&v)), "{rule} (bind step {at_bind_step}): {s} {v}");
            let events = app.events_of(&account).await;
            assert!(!types(&events).contains(&"PasskeyRegistered"), "{rule}: nothing bound");
        }
    }
}

// --- 2. Changes close the flows still open ------------------------------------------

async fn a_new_login_password_closes_an_open_login(app: TestApp) {
    let account = app.open_account("7700001", Some("shichiro@example.jp"), false).await;
    let (_, v) = password_step(&app, "7700001", "web").await;
    let flow = v["flow_id"].as_str().unwrap().to_string();
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/admin/accounts/{account}/password"),
            Some(json!({ "password": "new-pass-9", "temporary": false })),
            Some(&app.admin_token),
            "web",
        )
        .await;
    assert!(res.status().is_success());
    let (s, v) = otp_step(&app, &flow, "shichiro@example.jp", "web").await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "flow_closed"), "{v}");
    let events = app.events_of(&account).await;
    assert!(types(&events).contains(&"OpenFlowsClosed"));
    assert!(!types(&events).contains(&"PasswordLoginSucceeded"));
}

async fn a_lock_closes_an_open_login(app: TestApp) {
    app.open_account("7800001", Some("hachiro@example.jp"), false).await;
    let (_, v) = password_step(&app, "7800001", "web").await;
    let flow = v["flow_id"].as_str().unwrap().to_string();
    for _ in 0..5 {
        app.post("/api/v1/sessions/password", json!({ "login_id": "7800001", "password": "wrong-wrong" }), None).await;
    }
    let (s, _) = password_step(&app, "7800001", "web").await;
    assert_eq!(s, StatusCode::LOCKED);
    let (s, v) = otp_step(&app, &flow, "hachiro@example.jp", "web").await;
    assert_eq!((s, code(&v)), (StatusCode::LOCKED, "login_locked"), "{v}");
}

async fn a_registered_passkey_closes_an_older_password_login(app: TestApp) {
    app.open_account("7900001", Some("kuro@example.jp"), false).await;
    let (_, v) = password_step(&app, "7900001", "web").await;
    let login_flow = v["flow_id"].as_str().unwrap().to_string();
    let login_code = app.code_for("kuro@example.jp");
    app.register("7900001", "kuro@example.jp", &mut key()).await;
    let path = format!("/api/v1/sessions/password/{login_flow}/otp");
    let (s, v) = json_of(app.post(&path, json!({ "code": login_code }), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "passkey_required"), "{v}");
}

async fn a_flow_keeps_the_channel_it_began_on(app: TestApp) {
    let account = app.open_account("8000001", Some("juro@example.jp"), false).await;
    let (s, v) = password_step(&app, "8000001", "web").await;
    assert_eq!(s, StatusCode::OK);
    let flow = v["flow_id"].as_str().unwrap().to_string();
    let (s, v) = otp_step(&app, &flow, "juro@example.jp", "mobile_app").await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "wrong_channel"), "{v}");
    let events = app.events_of(&account).await;
    assert!(!types(&events).contains(&"PasswordLoginSucceeded"));
    // On its own channel the flow goes on.
    let (s, v) = otp_step(&app, &flow, "juro@example.jp", "web").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn a_credential_change_ends_the_sessions_opened_before_it(app: TestApp) {
    // A phished password + code session, then the customer calls in and the
    // core system sets a new password and address: the session cannot go on
    // to bind a passkey.
    let account = app.open_account("8300001", Some("phished@example.jp"), false).await;
    let token = password_session(&app, "8300001", "phished@example.jp").await;
    let (s, options) = add_options(&app, &token).await;
    assert_eq!(s, StatusCode::OK);
    let path = format!("/api/v1/admin/accounts/{account}/email");
    let res = app.send(Method::PUT, &path, Some(json!({ "email": "safe@example.jp" })), Some(&app.admin_token), "web").await;
    assert!(res.status().is_success());
    let (s, v) = add_passkey(&app, &token, &mut key(), &options).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "session_ended"), "{v}");
    let token = password_session(&app, "8300001", "safe@example.jp").await;
    let path = format!("/api/v1/admin/accounts/{account}/password");
    app.send(Method::PUT, &path, Some(json!({ "password": "pass-word-1", "temporary": false })), Some(&app.admin_token), "web").await;
    let (s, v) = json_of(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "session_ended"), "{v}");
    assert!(!types(&app.events_of(&account).await).contains(&"PasskeyRegistered"));
    // Each ending is on record with its cause, by whoever caused it.
    let ended: Vec<(Value, Value)> = app
        .events_of(&account)
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "SessionsEnded")
        .map(|(_, p, m)| (p["SessionsEnded"].clone(), m["actor"].clone()))
        .collect();
    assert_eq!(
        ended,
        vec![
            (json!({ "sessions": 1, "cause": "email_changed" }), json!("core_system")),
            (json!({ "sessions": 1, "cause": "login_password_changed" }), json!("core_system")),
        ]
    );

    // A lost phone: support deletes its passkeys, and what it signed in to ends.
    let mut phone = key();
    let holder = app.open_account("8300002", Some("lost@example.jp"), false).await;
    let token = app.register("8300002", "lost@example.jp", &mut phone).await["session"]["token"].as_str().unwrap().to_string();
    let support = app.staff("Sato", "support").await;
    let path = format!("/api/v1/staff/accounts/{holder}/passkeys/revoke");
    let res = app.send(Method::POST, &path, Some(json!({ "reason": "phone lost" })), Some(&support), "web").await;
    assert_eq!(res.status(), StatusCode::OK);
    let (s, v) = json_of(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "session_ended"), "{v}");
    let events = app.events_of(&holder).await;
    let (_, ended, by) = events.iter().find(|(t, _, _)| t == "SessionsEnded").expect("recorded");
    assert_eq!(ended["SessionsEnded"]["cause"], "passkeys_revoked_by_support");
    assert!(by["actor"].as_str().unwrap().starts_with("staff:"), "{by}");
}

/// The passkey ID the account gave `key`'s credential, from the event that
/// bound it.
async fn passkey_id_of(app: &TestApp, account: &str, key: &SoftPasskey) -> String {
    app.events_of(account)
        .await
        .into_iter()
        .find_map(|(t, p, _)| {
            let passkey = &p[t.as_str()]["passkey"];
            (passkey["credential_id"] == key.id()).then(|| passkey["passkey_id"].as_str().unwrap().to_string())
        })
        .expect("the passkey was bound")
}

/// A customer with a phone passkey and a PC passkey loses the phone and
/// deletes its passkey from the PC: what the phone signed in to ends (its
/// logins and the registration that bound it), the PC's session goes on.
async fn deleting_a_passkey_ends_the_sessions_opened_with_it_and_no_other(app: TestApp) {
    let mut phone = key();
    let mut pc = key();
    let account = app.open_account("8300003", Some("two@example.jp"), false).await;
    let registered = app.register("8300003", "two@example.jp", &mut phone).await;
    let first = registered["session"]["token"].as_str().unwrap().to_string();
    let (s, options) = add_options(&app, &first).await;
    assert_eq!(s, StatusCode::OK, "{options}");
    let (s, v) = add_passkey(&app, &first, &mut pc, &options).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let session_of = |v: Value| v["session"]["token"].as_str().unwrap().to_string();
    let on_phone = session_of(json_of(app.passkey_login(&mut phone).await).await.1);
    let on_pc = session_of(json_of(app.passkey_login(&mut pc).await).await.1);
    let phone_passkey = passkey_id_of(&app, &account, &phone).await;

    let path = format!("/api/v1/me/passkeys/{phone_passkey}");
    let res = app.send(Method::DELETE, &path, Some(json!({ "transaction_password": "trade-pass-1" })), Some(&on_pc), "web").await;
    assert_eq!(res.status(), StatusCode::OK);
    // The phone's login and the registration the phone signed in with both end.
    for phone_session in [&on_phone, &first] {
        let (s, v) = json_of(app.get("/api/v1/me/passkeys", Some(phone_session)).await).await;
        assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "session_ended"), "{v}");
    }
    let (s, v) = json_of(app.get("/api/v1/me/passkeys", Some(&on_pc)).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let events = app.events_of(&account).await;
    let (_, ended, by) = events.iter().find(|(t, _, _)| t == "SessionsEnded").expect("recorded");
    assert_eq!(ended["SessionsEnded"], json!({ "sessions": 2, "cause": "passkey_deleted" }));
    assert_eq!(by["actor"], "customer");
    // Deleting the passkey this very session was opened with leaves it on
    // the status screen (it just confirmed with the trading password).
    let pc_passkey = passkey_id_of(&app, &account, &pc).await;
    let path = format!("/api/v1/me/passkeys/{pc_passkey}");
    let res = app.send(Method::DELETE, &path, Some(json!({ "transaction_password": "trade-pass-1" })), Some(&on_pc), "web").await;
    assert_eq!(res.status(), StatusCode::OK);
    let (s, v) = json_of(app.get("/api/v1/me/passkeys", Some(&on_pc)).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

// --- The projector is never wedged by one event ------------------------------------

async fn an_event_the_read_models_cannot_take_is_skipped_and_reported(app: TestApp) {
    let mut first = key();
    let holder = app.open_account("8100001", Some("eleven@example.jp"), false).await;
    app.register("8100001", "eleven@example.jp", &mut first).await;
    // A read model row in the way of the next registration's credential:
    // the read model cannot take that event.
    let mut doomed = key();
    sqlx::query("INSERT INTO credential_index (credential_id, account_id, passkey_id, public_key, counter, active) VALUES ($1, 'x', 'x', '{}', 0, 1)")
        .bind(doomed.id())
        .execute(&app.app.db.any)
        .await
        .unwrap();
    app.open_account("8100002", Some("twelve@example.jp"), false).await;
    app.register("8100002", "twelve@example.jp", &mut doomed).await;

    // The background projector meets the event, skips it and goes on.
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let (s, v) = json_of(app.get("/readyz", None).await).await;
    assert_eq!(s, StatusCode::OK, "still serving: {v}");
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["projection_failures"], 1);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("ledger_projection_failures 1"), "{metrics}");
    let (position,): (i64,) = sqlx::query_as("SELECT position FROM projection_failures").fetch_one(&app.app.db.any).await.unwrap();
    assert!(position > 0);
    // Later events are projected: a new registration shows in the status view.
    let mut later = key();
    app.open_account("8100003", Some("thirteen@example.jp"), false).await;
    let done = app.register("8100003", "thirteen@example.jp", &mut later).await;
    assert!(done["passkey"]["name"].is_string(), "{done}");
    // Every route answers, and a restart does not wait on the projector.
    let app = app.restart().await;
    assert_eq!(app.passkey_login(&mut first).await.status(), StatusCode::CREATED);
    let support = app.staff("Sato", "support").await;
    assert_eq!(app.get(&format!("/api/v1/staff/accounts/{holder}/history"), Some(&support)).await.status(), StatusCode::OK);
}

// --- Compliance reads -------------------------------------------------------------

async fn reading_the_chain_head_is_on_record(app: TestApp) {
    let compliance = app.staff("Kato", "compliance").await;
    let (s, v) = json_of(app.get("/api/v1/audit/head", Some(&compliance)).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = json_of(app.get("/api/v1/audit/events?type=AuditHeadRead", Some(&compliance)).await).await;
    let rows = v["events"].as_array().or_else(|| v["items"].as_array()).expect("rows");
    assert_eq!(rows.len(), 1, "{v}");
}

// --- 3. Second-factor mode ----------------------------------------------------------

async fn second_factor_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| c.policy.login_mode = ledger_domain::LoginMode::SecondFactor).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_mode_refuses_a_passkey_alone_on_sqlite() {
    if let Some(app) = second_factor_app(Backend::Sqlite).await {
        a_passkey_alone_does_not_log_in_and_a_lock_holds(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_mode_refuses_a_passkey_alone_on_postgres() {
    if let Some(app) = second_factor_app(Backend::Postgres).await {
        a_passkey_alone_does_not_log_in_and_a_lock_holds(app).await;
    }
}

async fn a_passkey_alone_does_not_log_in_and_a_lock_holds(app: TestApp) {
    app.open_account("8200001", Some("second@example.jp"), false).await;
    let mut k = key();
    app.register("8200001", "second@example.jp", &mut k).await;
    let (s, v) = json_of(app.post("/api/v1/sessions/passkey/options", json!({}), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "password_step_required"), "{v}");
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("パスワード"));
    // Locked after five wrong passwords: the password step says so, and no
    // passkey gets past it.
    for _ in 0..5 {
        app.post("/api/v1/sessions/password", json!({ "login_id": "8200001", "password": "wrong-wrong" }), None).await;
    }
    let (s, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "8200001", "password": "pass-word-1" }), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::LOCKED, "login_locked"));
    let (s, _) = json_of(app.post("/api/v1/sessions/passkey/options", json!({}), None).await).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
