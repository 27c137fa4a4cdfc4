//! Seed 000's first registration and passkey login over real HTTP, with
//! real WebAuthn data, real SMTP, on SQLite and on PostgreSQL.

use ledger_api::secrets::ExposeSecret;
use ledger_tests::harness::ORIGIN;
use ledger_tests::{Backend, SoftPasskey, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    a_customer_registers_logs_in_with_the_passkey_and_keeps_it_across_a_restart,
    password_login_is_refused_on_every_channel_once_a_passkey_exists,
    each_refusal_of_flow_2_has_its_code_and_leaves_an_event,
    wrong_codes_count_down_then_the_code_dies,
    a_code_expires_after_its_lifetime,
    a_resend_within_a_minute_is_refused,
    a_replayed_login_ceremony_is_refused,
    racing_replays_of_one_login_record_one_login_and_start_one_session,
    a_refused_assertion_uses_the_ceremony_up,
    a_counter_that_goes_backwards_is_refused_and_recorded,
    a_cloned_passkey_is_suspended_until_support_reinstates_it,
    no_password_or_code_is_stored_anywhere,
    password_login_with_an_email_code_works_before_any_passkey,
    integration_endpoints_need_an_admin_token,
    fixing_the_account_in_the_core_system_lets_registration_proceed,
);

fn passkey() -> SoftPasskey {
    SoftPasskey::new("localhost", ORIGIN)
}

async fn body(res: reqwest::Response) -> Value {
    res.json().await.expect("json body")
}

async fn error_code(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let v = body(res).await;
    (status, v["error"]["code"].as_str().unwrap_or_default().to_string())
}

async fn a_customer_registers_logs_in_with_the_passkey_and_keeps_it_across_a_restart(app: TestApp) {
    let account = app.open_account("1000001", Some("taro@example.jp"), false).await;
    let mut key = passkey();
    let registered = app.register("1000001", "taro@example.jp", &mut key).await;
    assert_eq!(registered["passkey"]["name"], "Windows のパソコン（Chrome）");
    assert_eq!(registered["passkey"]["provider"], "Google Password Manager");
    assert_eq!(registered["passkey"]["synced"], true);
    let token = registered["session"]["token"].as_str().unwrap().to_string();
    let code_mail = app.mail_to("taro@example.jp").into_iter().map(|m| m.decoded()).find(|m| m.contains("認証コード")).unwrap();
    assert!(code_mail.contains("パスキー登録のための認証コード"), "{code_mail}");

    // The very next read shows the new passkey.
    let status = body(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert_eq!(status["login_method"], "passkey");
    assert_eq!(status["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(status["passkeys"][0]["authenticator_attachment"], "platform");
    assert_eq!(status["email"], "t***@example.jp");

    let res = app.passkey_login(&mut key).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let login = body(res).await;
    assert_eq!(login["account_id"], account.as_str());
    assert_eq!(login["cross_device"], false);

    let app = app.restart().await;
    let res = app.passkey_login(&mut key).await;
    assert_eq!(res.status(), StatusCode::CREATED, "passkey login after a restart");
    let token = body(res).await["session"]["token"].as_str().unwrap().to_string();
    let status = body(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert!(status["passkeys"][0]["last_used_at"].is_string());

    let types: Vec<String> = app.events_of(&account).await.into_iter().map(|(t, _, _)| t).collect();
    for expected in [
        "AccountOpened",
        "RegistrationStarted",
        "PasswordVerified",
        "EmailCodeIssued",
        "EmailCodeVerified",
        "PasskeyRegistered",
        "PasskeyLoginSucceeded",
    ] {
        assert!(types.iter().any(|t| t == expected), "{expected} missing from {types:?}");
    }
}

async fn password_login_is_refused_on_every_channel_once_a_passkey_exists(app: TestApp) {
    app.open_account("1000002", Some("hanako@example.jp"), false).await;
    app.register("1000002", "hanako@example.jp", &mut passkey()).await;
    for channel in ["web", "mobile_web", "mobile_app", "desktop_app"] {
        let res = app
            .send(
                Method::POST,
                "/api/v1/sessions/password",
                Some(json!({ "login_id": "1000002", "password": "pass-word-1" })),
                None,
                channel,
            )
            .await;
        assert_eq!(error_code(res).await, (StatusCode::FORBIDDEN, "passkey_required".into()), "channel {channel}");
    }
}

async fn each_refusal_of_flow_2_has_its_code_and_leaves_an_event(app: TestApp) {
    let temporary = app.open_account("2000001", Some("temp@example.jp"), true).await;
    let (_, res) = app.start_registration("2000001", "pass-word-1").await;
    assert_eq!(error_code(res).await, (StatusCode::FORBIDDEN, "temporary_password".into()));

    let no_email = app.open_account("2000002", None, false).await;
    let (_, res) = app.start_registration("2000002", "pass-word-1").await;
    assert_eq!(error_code(res).await, (StatusCode::CONFLICT, "email_unreachable".into()));

    let bounced = app.open_account("2000003", Some("bounce@example.jp"), false).await;
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/admin/accounts/{bounced}/email-status"),
            Some(json!({ "reachable": false })),
            Some(&app.admin_token),
            "web",
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, res) = app.start_registration("2000003", "pass-word-1").await;
    assert_eq!(error_code(res).await, (StatusCode::CONFLICT, "email_unreachable".into()));

    let parent = app.open_account("2000004", Some("Family@Example.jp"), false).await;
    app.open_account("2000005", Some("family@example.jp"), false).await;
    let (_, res) = app.start_registration("2000004", "pass-word-1").await;
    assert_eq!(error_code(res).await, (StatusCode::CONFLICT, "email_shared_with_other_accounts".into()));

    let locked = app.open_account("2000006", Some("lock@example.jp"), false).await;
    for _ in 0..4 {
        let (_, res) = app.start_registration("2000006", "wrong-password").await;
        assert_eq!(error_code(res).await, (StatusCode::UNAUTHORIZED, "invalid_credentials".into()));
    }
    let (_, res) = app.start_registration("2000006", "wrong-password").await;
    assert_eq!(error_code(res).await, (StatusCode::LOCKED, "login_locked".into()));
    let (_, res) = app.start_registration("2000006", "pass-word-1").await;
    assert_eq!(error_code(res).await, (StatusCode::LOCKED, "login_locked".into()), "even the right password");

    let (_, res) = app.start_registration("no-such-id", "pass-word-1").await;
    assert_eq!(error_code(res).await, (StatusCode::UNAUTHORIZED, "invalid_credentials".into()), "unknown IDs look like wrong passwords");

    for (account, reason) in [
        (&temporary, "temporary_password"),
        (&no_email, "email_unreachable"),
        (&bounced, "email_unreachable"),
        (&parent, "email_shared_with_other_accounts"),
    ] {
        let refused = app
            .events_of(account)
            .await
            .into_iter()
            .any(|(t, p, _)| t == "RegistrationRefused" && p["RegistrationRefused"]["reason"] == reason);
        assert!(refused, "{reason} not recorded");
    }
    let events = app.events_of(&locked).await;
    assert_eq!(events.iter().filter(|(t, _, _)| t == "PasswordRejected").count(), 5);
    assert!(events.iter().any(|(t, _, _)| t == "LoginLocked"));
}

async fn wrong_codes_count_down_then_the_code_dies(app: TestApp) {
    let account = app.open_account("3000001", Some("code@example.jp"), false).await;
    let (flow, res) = app.start_registration("3000001", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let right = app.code_for("code@example.jp");
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for left in (1..=4).rev() {
        let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": wrong }), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let v = body(res).await;
        assert_eq!(v["error"]["code"], "invalid_code");
        assert_eq!(v["error"]["attempts_left"], left);
    }
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": wrong }), None).await;
    assert_eq!(error_code(res).await, (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts".into()));
    // API.md: the right code after that still answers 429, not "wrong step".
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": right }), None).await;
    assert_eq!(error_code(res).await, (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts".into()), "the right code no longer works");
    let events = app.events_of(&account).await;
    assert_eq!(events.iter().filter(|(t, _, _)| t == "EmailCodeRejected").count(), 5);
    assert!(events.iter().any(|(t, _, _)| t == "EmailCodeExhausted"));
}

async fn a_code_expires_after_its_lifetime(app: TestApp) {
    app.open_account("3000002", Some("late@example.jp"), false).await;
    let (flow, _) = app.start_registration("3000002", "pass-word-1").await;
    let code = app.code_for("late@example.jp");
    let mail = app.mail.last_to("late@example.jp").unwrap().decoded();
    assert!(mail.contains("(JST)"), "the expiry is given in JST: {mail}");
    app.clock.advance(chrono::Duration::seconds(5 * 60 + 1));
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": code }), None).await;
    assert_eq!(error_code(res).await, (StatusCode::GONE, "code_expired".into()));
}

async fn a_resend_within_a_minute_is_refused(app: TestApp) {
    app.open_account("3000003", Some("again@example.jp"), false).await;
    let (flow, _) = app.start_registration("3000003", "pass-word-1").await;
    let first = app.code_for("again@example.jp");
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp/resend"), json!({}), None).await;
    assert_eq!(error_code(res).await, (StatusCode::TOO_MANY_REQUESTS, "resend_too_soon".into()));
    app.clock.advance(chrono::Duration::seconds(61));
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp/resend"), json!({}), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = app.code_for("again@example.jp");
    if first != second {
        let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": first }), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the replaced code is dead");
    }
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": second }), None).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn a_replayed_login_ceremony_is_refused(app: TestApp) {
    app.open_account("4000001", Some("replay@example.jp"), false).await;
    let mut key = passkey();
    app.register("4000001", "replay@example.jp", &mut key).await;
    let options: Value = body(app.post("/api/v1/sessions/passkey/options", json!({}), None).await).await;
    let credential = key.assert(&options);
    let login = json!({ "ceremony_id": options["ceremony_id"], "credential": credential });
    assert_eq!(app.post("/api/v1/sessions/passkey", login.clone(), None).await.status(), StatusCode::CREATED);
    let res = app.post("/api/v1/sessions/passkey", login, None).await;
    assert_eq!(error_code(res).await, (StatusCode::GONE, "ceremony_expired".into()));
}

async fn racing_replays_of_one_login_record_one_login_and_start_one_session(app: TestApp) {
    let account = app.open_account("4000003", Some("race@example.jp"), false).await;
    let mut key = passkey();
    app.register("4000003", "race@example.jp", &mut key).await;
    let options: Value = body(app.post("/api/v1/sessions/passkey/options", json!({}), None).await).await;
    let login = json!({ "ceremony_id": options["ceremony_id"], "credential": key.assert(&options) });
    let finishes = (0..8).map(|_| app.post("/api/v1/sessions/passkey", login.clone(), None));
    let mut answers = Vec::new();
    for res in futures_util::future::join_all(finishes).await {
        answers.push(error_code(res).await);
    }
    let signed_in = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let expired = answers.iter().filter(|a| **a == (StatusCode::GONE, "ceremony_expired".to_string())).count();
    assert_eq!((signed_in, expired), (1, 7), "{answers:?}");
    let logins = app.events_of(&account).await.into_iter().filter(|(t, _, _)| t.starts_with("PasskeyLogin")).count();
    assert_eq!(logins, 1, "one login on record");
    let (sessions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE account_id = $1 AND method = 'passkey'")
        .bind(&account)
        .fetch_one(&app.app.db.any)
        .await
        .unwrap();
    assert_eq!(sessions, 1, "one session started");
}

/// Opens an account, registers its passkey, signs in with it at counter
/// 11, then presents a clone's assertion (counter 5) on a fresh ceremony:
/// refused `counter_regression`. Returns the account, the passkey and that
/// ceremony's options.
async fn a_cloned_assertion_refused(app: &TestApp, login_id: &str, email: &str) -> (String, SoftPasskey, Value) {
    let (account, key, options, _) = a_clone_after_a_login(app, login_id, email).await;
    (account, key, options)
}

/// [`a_cloned_assertion_refused`], with the token of the session the
/// genuine passkey opened before the clone answered.
async fn a_clone_after_a_login(app: &TestApp, login_id: &str, email: &str) -> (String, SoftPasskey, Value, String) {
    let account = app.open_account(login_id, Some(email), false).await;
    let mut key = passkey();
    app.register(login_id, email, &mut key).await;
    key.counter = 10;
    let res = app.passkey_login(&mut key).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = body(res).await["session"]["token"].as_str().unwrap().to_string();
    let options: Value = body(app.post("/api/v1/sessions/passkey/options", json!({}), None).await).await;
    let cloned = key.assert_with_counter(&options, 5);
    let res = app.post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": cloned }), None).await;
    assert_eq!(error_code(res).await, (StatusCode::UNAUTHORIZED, "counter_regression".into()));
    (account, key, options, token)
}

async fn a_refused_assertion_uses_the_ceremony_up(app: TestApp) {
    let (_, mut key, options) = a_cloned_assertion_refused(&app, "4000004", "once@example.jp").await;
    // The same ceremony with a good assertion: used up by the refusal.
    let good = key.assert(&options);
    let res = app.post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": good }), None).await;
    assert_eq!(error_code(res).await, (StatusCode::GONE, "ceremony_expired".into()));
    // An unknown credential's refusal uses it up too.
    let options: Value = body(app.post("/api/v1/sessions/passkey/options", json!({}), None).await).await;
    let stranger = passkey().assert(&options);
    let res = app.post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": stranger }), None).await;
    assert_eq!(error_code(res).await.0, StatusCode::UNAUTHORIZED);
    let res = app
        .post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": key.assert(&options) }), None)
        .await;
    assert_eq!(error_code(res).await, (StatusCode::GONE, "ceremony_expired".into()));
}

async fn a_counter_that_goes_backwards_is_refused_and_recorded(app: TestApp) {
    let (account, _, _) = a_cloned_assertion_refused(&app, "4000002", "clone@example.jp").await;
    let recorded = app
        .events_of(&account)
        .await
        .into_iter()
        .any(|(t, p, _)| t == "PasskeyLoginFailed" && p["PasskeyLoginFailed"]["reason"] == "counter_regression");
    assert!(recorded);
}

async fn a_cloned_passkey_is_suspended_until_support_reinstates_it(app: TestApp) {
    let (account, mut key, _, token) = a_clone_after_a_login(&app, "4000005", "cloned@example.jp").await;
    // What the passkey signed in to ends: one of its holders is not the customer.
    let res = app.get("/api/v1/me/passkeys", Some(&token)).await;
    assert_eq!(error_code(res).await, (StatusCode::UNAUTHORIZED, "session_ended".into()));
    // Even the genuine device, its counter moving on, is refused until support has looked.
    let res = app.passkey_login(&mut key).await;
    let refused = body(res).await;
    assert_eq!(refused["error"]["code"], "passkey_suspended");
    assert!(refused["error"]["message_ja"].as_str().unwrap().contains("サポート"), "{refused}");
    // The customer is told, by mail, in both languages.
    let told: Vec<String> = app.mail_to("cloned@example.jp").iter().map(|m| m.decoded()).filter(|m| m.contains("suspended")).collect();
    assert_eq!(told.len(), 1, "one notice of the suspension");
    assert!(told[0].contains("no other passkey to log in with") && told[0].contains("サポートデスクまでご連絡ください"), "{}", told[0]);
    let events = app.events_of(&account).await;
    let types: Vec<&str> = events.iter().map(|(t, _, _)| t.as_str()).collect();
    let at = types.iter().position(|t| *t == "PasskeySuspended").expect("suspended on record");
    assert_eq!(types[at - 1], "PasskeyLoginFailed");
    assert!(events.iter().any(|(t, p, _)| t == "SessionsEnded" && p["SessionsEnded"]["cause"] == "passkey_suspended"));
    assert!(events.iter().any(|(t, p, _)| t == "SecurityNoticeSent" && p["SecurityNoticeSent"]["kind"] == "passkey_suspended"));
    assert!(events.iter().any(|(t, p, _)| t == "PasskeyLoginFailed" && p["PasskeyLoginFailed"]["reason"] == "passkey_suspended"));

    // Support sees it suspended, and since when, in Japan time.
    let support = app.staff("Suzuki", "support").await;
    let status = body(app.get(&format!("/api/v1/staff/accounts/{account}"), Some(&support)).await).await;
    let passkey = &status["passkeys"][0];
    assert!(passkey["suspended_at"].as_str().unwrap().ends_with("+09:00"), "{status}");
    assert!(
        status["summary"]["ja"].as_str().unwrap().contains("うち1件は署名カウンターの後退により、サポートの確認まで一時停止中です"),
        "{status}"
    );
    let passkey_id = passkey["id"].as_str().unwrap().to_string();
    let history = body(app.get(&format!("/api/v1/staff/accounts/{account}/history?type=PasskeySuspended"), Some(&support)).await).await;
    assert!(history["events"][0]["line"]["ja"].as_str().unwrap().contains("一時停止しました"), "{history}");

    // A reason is required; then the suspension lifts once, on record.
    let path = format!("/api/v1/staff/accounts/{account}/passkeys/reinstate");
    for no_reason in [
        json!({ "passkey_id": passkey_id, "reason": " " }),
        json!({ "passkey_id": passkey_id }),
        json!({ "passkey_id": passkey_id, "reason": null }),
    ] {
        let res = app.post(&path, no_reason, Some(&support)).await;
        assert_eq!(error_code(res).await, (StatusCode::BAD_REQUEST, "reason_required".into()));
    }
    let compliance = app.staff("Kato", "compliance").await;
    let res = app.post(&path, json!({ "passkey_id": passkey_id, "reason": "called in" }), Some(&compliance)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.post(&path, json!({ "passkey_id": "no-such-passkey", "reason": "called in" }), Some(&support)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let reason = "the customer's own phone; no other device";
    let res = app.post(&path, json!({ "passkey_id": passkey_id, "reason": reason }), Some(&support)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.post(&path, json!({ "passkey_id": passkey_id, "reason": reason }), Some(&support)).await;
    assert_eq!(error_code(res).await, (StatusCode::CONFLICT, "not_suspended".into()));
    let reinstated = app.events_of(&account).await.into_iter().filter(|(t, _, _)| t == "PasskeyReinstated").collect::<Vec<_>>();
    assert_eq!(reinstated.len(), 1);
    assert_eq!(reinstated[0].1["PasskeyReinstated"]["reason"], reason);
    assert!(reinstated[0].2["actor"].as_str().unwrap().starts_with("staff:"), "{:?}", reinstated[0].2);
    assert_eq!(reinstated[0].1["PasskeyReinstated"]["staff"]["name"], "Suzuki");
    let lifted = app.mail_to("cloned@example.jp").iter().map(|m| m.decoded()).filter(|m| m.contains("lifted the suspension")).count();
    assert_eq!(lifted, 1, "the customer is told the passkey works again");
    let res = app.passkey_login(&mut key).await;
    assert_eq!(res.status(), StatusCode::CREATED, "the genuine device logs in again");
    let status = body(app.get(&format!("/api/v1/staff/accounts/{account}"), Some(&support)).await).await;
    assert!(status["passkeys"][0].get("suspended_at").is_none(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_the_deployment_does_not_suspend_the_passkey_keeps_working_after_a_counter_regression() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| c.policy.suspend_on_counter_regression = false).await else { return };
    let (account, mut key, _, token) = a_clone_after_a_login(&app, "4000006", "kept@example.jp").await;
    assert_eq!(app.get("/api/v1/me/passkeys", Some(&token)).await.status(), StatusCode::OK);
    assert_eq!(app.passkey_login(&mut key).await.status(), StatusCode::CREATED);
    assert!(!app.events_of(&account).await.iter().any(|(t, _, _)| t == "PasskeySuspended"));
}

async fn no_password_or_code_is_stored_anywhere(app: TestApp) {
    app.open_account("5000001", Some("secret@example.jp"), false).await;
    let mut key = passkey();
    let registered = app.register("5000001", "secret@example.jp", &mut key).await;
    let token = registered["session"]["token"].as_str().unwrap().to_string();
    let code = app.code_for("secret@example.jp");
    let everything = app
        .dump_tables(&[
            "events",
            "snapshots",
            "status_accounts",
            "status_passkeys",
            "email_registry",
            "credential_index",
            "account_secrets",
            "flows",
            "otp_codes",
            "ceremonies",
            "sessions",
            "staff",
        ])
        .await;
    for secret in ["pass-word-1", "trade-pass-1", code.as_str(), token.as_str(), app.admin_token.as_str()] {
        assert!(!everything.contains(secret), "a secret is stored in clear");
    }
}

async fn password_login_with_an_email_code_works_before_any_passkey(app: TestApp) {
    let account = app.open_account("6000001", Some("pw@example.jp"), false).await;
    let res = app.post("/api/v1/sessions/password", json!({ "login_id": "6000001", "password": "pass-word-1" }), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let flow = body(res).await["flow_id"].as_str().unwrap().to_string();
    let code = app.code_for("pw@example.jp");
    let mail = app.mail_to("pw@example.jp").last().unwrap().decoded();
    assert!(mail.contains("ログインのための認証コード") && !mail.contains("パスキー登録"), "a login code says login: {mail}");
    let res = app.post(&format!("/api/v1/sessions/password/{flow}/otp"), json!({ "code": code }), None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = body(res).await["session"]["token"].as_str().unwrap().to_string();
    let status = body(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert_eq!(status["login_method"], "password_and_email_code");
    assert_eq!(status["summary"]["ja"], "パスキーは登録されていません。");
    assert_eq!(status["registration"]["possible"], true);
    // The app channel is passkey-mandatory since 2026-06-21 18:00 JST.
    let res = app
        .send(
            Method::POST,
            "/api/v1/sessions/password",
            Some(json!({ "login_id": "6000001", "password": "pass-word-1" })),
            None,
            "mobile_app",
        )
        .await;
    assert_eq!(error_code(res).await, (StatusCode::FORBIDDEN, "passkey_required".into()));
    assert_eq!(app.send(Method::DELETE, "/api/v1/sessions/current", None, Some(&token), "web").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me/passkeys", Some(&token)).await.status(), StatusCode::UNAUTHORIZED);
    assert!(app.events_of(&account).await.iter().any(|(t, _, _)| t == "PasswordLoginSucceeded"));
}

async fn integration_endpoints_need_an_admin_token(app: TestApp) {
    let open = json!({ "login_id": "7000001", "holder_kind": "individual", "email": null, "password": "pass-word-1",
                       "password_temporary": false, "transaction_password": "trade-pass-1" });
    assert_eq!(error_code(app.post("/api/v1/admin/accounts", open.clone(), None).await).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(app.post("/api/v1/admin/accounts", open.clone(), Some("not-a-token")).await).await.0, StatusCode::UNAUTHORIZED);
    let support = ledger_api::cli::add_staff(&app.app, "Sato", "support").await.unwrap();
    assert_eq!(
        error_code(app.post("/api/v1/admin/accounts", open.clone(), Some(support.expose_secret())).await).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.post("/api/v1/admin/accounts", open.clone(), Some(&app.admin_token)).await.status(), StatusCode::CREATED);
    assert_eq!(
        error_code(app.post("/api/v1/admin/accounts", open, Some(&app.admin_token)).await).await,
        (StatusCode::CONFLICT, "login_id_taken".into())
    );
    let res = app.post("/api/v1/registrations", json!({ "login_id": "" }), None).await;
    assert_eq!(error_code(res).await, (StatusCode::BAD_REQUEST, "invalid_request".into()));
    let _ = Backend::Sqlite;
}

async fn fixing_the_account_in_the_core_system_lets_registration_proceed(app: TestApp) {
    let account = app.open_account("9000001", Some("kazoku@example.jp"), true).await;
    app.open_account("9000002", Some("kazoku@example.jp"), false).await;
    let (_, res) = app.start_registration("9000001", "pass-word-1").await;
    assert_eq!(error_code(res).await.1, "temporary_password");

    // Seed 003 §5: change the temporary password first.
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/admin/accounts/{account}/password"),
            Some(json!({ "password": "new-pass-word", "temporary": false })),
            Some(&app.admin_token),
            "web",
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, res) = app.start_registration("9000001", "new-pass-word").await;
    assert_eq!(error_code(res).await.1, "email_shared_with_other_accounts");

    // Seed 000: give each account its own address.
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/admin/accounts/{account}/email"),
            Some(json!({ "email": "jibun@example.jp" })),
            Some(&app.admin_token),
            "web",
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, res) = app.start_registration("9000001", "new-pass-word").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await["otp"]["destination"], "j***@example.jp");
    assert!(app.mail.last_to("jibun@example.jp").is_some(), "the code goes to the new address only");
}
