//! Points the manuals make, over real HTTP on SQLite and PostgreSQL:
//! registration opens at the launch instant (seed 000), the trading password
//! reissued by the core system (seed 003 FAQ), in-app browsers and aborted
//! ceremonies (seed 001), deletion by support only (seed 002), a code that
//! lives 10 minutes (seed 002), and the message for a customer with no
//! passkey on a passkey-only channel (seed 000).

use chrono::{Duration, Utc};
use ledger_tests::harness::{error_code as code, json_of, ORIGIN};
use ledger_tests::{SoftPasskey, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn key() -> SoftPasskey {
    SoftPasskey::new("localhost", ORIGIN)
}

/// Runs `scenario` on both databases with the configuration adjusted.
macro_rules! with_config {
    ($name:ident, $adjust:expr, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = ledger_tests::TestApp::spawn_with(ledger_tests::Backend::Sqlite, $adjust).await {
                    super::$scenario(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = ledger_tests::TestApp::spawn_with(ledger_tests::Backend::Postgres, $adjust).await {
                    super::$scenario(app).await;
                }
            }
        }
    };
}

with_config!(
    registration_opens_at_the_launch_instant,
    |c| c.policy.registration_opens_at = Some(chrono::Utc::now() + chrono::Duration::hours(2)),
    registration_is_refused_before_it_opens_then_works
);
with_config!(deletion_by_support_only, |c| c.policy.customer_deletion = false, customers_are_sent_to_support_to_delete);
with_config!(a_ten_minute_code, |c| c.policy.code_lifetime_secs = 600, a_code_lives_ten_minutes);
with_config!(
    the_customer_chooses_the_address,
    |c| c.policy.code_destination = ledger_domain::CodeDestination::Choose,
    the_code_goes_to_the_chosen_address
);
with_config!(
    seed_004_from_the_session,
    |c| {
        c.policy.session_step_up = ledger_domain::SessionStepUp::EmailCode;
        c.policy.code_destination = ledger_domain::CodeDestination::Choose;
    },
    the_session_code_goes_to_the_chosen_address
);
with_config!(notices_to_every_address, |c| c.notice_all_addresses = true, notices_go_to_every_reachable_address);
with_config!(
    a_code_confirms_a_first_passkey_from_the_session,
    |c| c.policy.session_step_up = ledger_domain::SessionStepUp::EmailCode,
    the_status_screen_registers_with_a_code
);

ledger_tests::on_both_databases!(
    a_reissued_trading_password_keeps_the_passkeys_and_unlocks_deletion,
    an_in_app_browser_is_told_to_open_the_standard_browser,
    an_aborted_ceremony_is_on_record_for_support,
    a_customer_with_no_passkey_on_the_app_is_told_to_register_one,
    the_status_screen_registers_with_the_trading_password,
    the_otp_service_replaces_the_mailed_code,
    a_security_key_is_outside_the_recommended_environment,
    codes_go_to_address_1_only_and_every_address_counts_for_sharing,
);

async fn set_address(app: &TestApp, account: &str, email: &str, slot: u8) {
    let path = format!("/api/v1/admin/accounts/{account}/email");
    let res = app.send(Method::PUT, &path, Some(json!({ "email": email, "slot": slot })), Some(&app.admin_token), "web").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

/// Seed 003: "ご登録のメールアドレス 1 のみに送信されます"; seed 000: the shared-
/// address rule holds for every registered address.
async fn codes_go_to_address_1_only_and_every_address_counts_for_sharing(app: TestApp) {
    let account = app.open_account("9930001", Some("main@example.jp"), false).await;
    set_address(&app, &account, "second@example.jp", 2).await;
    let (_, res) = app.start_registration("9930001", "pass-word-1").await;
    let (_, v) = json_of(res).await;
    assert_eq!((v["otp"]["destination"].as_str(), v["otp"]["slot"].as_i64()), (Some("m***@example.jp"), Some(1)), "{v}");
    assert!(app.mail_to("second@example.jp").is_empty(), "address 2 gets no code");
    // Notices go to address 1 unless configured.
    let other = app.open_account("9930003", Some("notice-main@example.jp"), false).await;
    set_address(&app, &other, "notice-second@example.jp", 2).await;
    app.register("9930003", "notice-main@example.jp", &mut key()).await;
    assert!(app.mail_to("notice-main@example.jp").iter().any(|m| m.code().is_none()), "the passkey-added notice");
    assert!(app.mail_to("notice-second@example.jp").is_empty());
    let path = format!("/api/v1/admin/accounts/{account}/email");
    let (s, v) =
        json_of(app.send(Method::PUT, &path, Some(json!({ "email": "x@example.jp", "slot": 3 })), Some(&app.admin_token), "web").await)
            .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_slot"));
    // A family member's account whose main address is this account's address 2.
    app.open_account("9930002", Some("second@example.jp"), false).await;
    let (_, res) = app.start_registration("9930001", "pass-word-1").await;
    let (s, v) = json_of(res).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "email_shared_with_other_accounts"), "{v}");
    let (_, res) = app.start_registration("9930002", "pass-word-1").await;
    let (s, v) = json_of(res).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "email_shared_with_other_accounts"), "{v}");
    // Support's status view says why registration is not possible (address 2).
    let support = app.staff("Sato", "support").await;
    let (_, status) = json_of(app.get(&format!("/api/v1/staff/accounts/{account}"), Some(&support)).await).await;
    assert_eq!(
        status["registration"],
        json!({
            "possible": false,
            "reason": "email_shared_with_other_accounts",
            "reason_words": {
                "en": "the e-mail address is registered on other accounts too",
                "ja": "メールアドレスが他の口座にも登録されている"
            }
        }),
        "{status}"
    );
    // Compliance sees it too: the shared-address signal names both accounts.
    let compliance = app.staff("Kato", "compliance").await;
    let (_, v) = json_of(app.get("/api/v1/signals?kind=shared_email", Some(&compliance)).await).await;
    let signals = v["signals"].as_array().unwrap();
    assert!(signals.iter().any(|sig| sig["accounts"].as_array().is_some_and(|a| a.iter().any(|x| x == account.as_str()))), "{v}");
}

/// Seed 004 STEP1-6: from the session, the customer picks the address, the
/// code goes there, then the passkey is created.
async fn the_session_code_goes_to_the_chosen_address(app: TestApp) {
    let account = app.open_account("9960001", Some("s4-home@example.jp"), false).await;
    set_address(&app, &account, "s4-office@example.jp", 2).await;
    let (_, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "9960001", "password": "pass-word-1" }), None).await).await;
    let flow = v["flow_id"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/sessions/password/{flow}/otp/send"), json!({ "slot": 1 }), None).await;
    let (_, v) = json_of(
        app.post(&format!("/api/v1/sessions/password/{flow}/otp"), json!({ "code": app.code_for("s4-home@example.jp") }), None).await,
    )
    .await;
    let token = v["session"]["token"].as_str().unwrap().to_string();
    app.clock.advance(Duration::seconds(61));
    let (s, v) = json_of(app.post("/api/v1/me/passkeys/code", json!({}), Some(&token)).await).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("choose_address")), "{v}");
    let (s, v) = json_of(app.post("/api/v1/me/passkeys/code", json!({ "slot": 2 }), Some(&token)).await).await;
    assert_eq!((s, v["otp"]["destination"].as_str()), (StatusCode::OK, Some("s***@example.jp")), "{v}");
    assert_eq!(v["otp"]["slot"], 2, "{v}");
    let flow = v["flow_id"].as_str().unwrap().to_string();
    let (s, _) = json_of(
        app.post("/api/v1/me/passkeys/code/verify", json!({ "flow_id": flow, "code": app.code_for("s4-office@example.jp") }), Some(&token))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, options) = json_of(app.post("/api/v1/me/passkeys/options", json!({}), Some(&token)).await).await;
    let (s, v) = json_of(app.post("/api/v1/me/passkeys", json!({ "credential": key().register(&options) }), Some(&token)).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn notices_go_to_every_reachable_address(app: TestApp) {
    let account = app.open_account("9950001", Some("first@example.jp"), false).await;
    set_address(&app, &account, "second-inbox@example.jp", 2).await;
    app.register("9950001", "first@example.jp", &mut key()).await;
    let notice = |to: &str| app.mail_to(to).iter().filter(|m| m.code().is_none()).count();
    assert_eq!((notice("first@example.jp"), notice("second-inbox@example.jp")), (1, 1), "the passkey-added notice went to both");
}

/// Seed 004: "指定のメールアドレスを選択し、「送信」をタップします".
async fn the_code_goes_to_the_chosen_address(app: TestApp) {
    let account = app.open_account("9940001", Some("home@example.jp"), false).await;
    set_address(&app, &account, "office@example.jp", 2).await;
    let (s, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "9940001", "password": "pass-word-1" }), None).await).await;
    assert_eq!((s, v["next"].as_str()), (StatusCode::OK, Some("choose_address")), "{v}");
    let offered: Vec<(i64, &str)> =
        v["addresses"].as_array().unwrap().iter().map(|a| (a["slot"].as_i64().unwrap(), a["destination"].as_str().unwrap())).collect();
    assert_eq!(offered, vec![(1, "h***@example.jp"), (2, "o***@example.jp")]);
    assert!(app.mail_to("home@example.jp").is_empty() && app.mail_to("office@example.jp").is_empty(), "nothing before the choice");
    let flow = v["flow_id"].as_str().unwrap().to_string();
    let send = format!("/api/v1/sessions/password/{flow}/otp/send");
    let (s, v) = json_of(app.post(&send, json!({ "slot": 2 }), None).await).await;
    assert_eq!((s, v["otp"]["destination"].as_str()), (StatusCode::OK, Some("o***@example.jp")), "{v}");
    let (s, v) = json_of(
        app.post(&format!("/api/v1/sessions/password/{flow}/otp"), json!({ "code": app.code_for("office@example.jp") }), None).await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let events = app.events_of(&account).await;
    assert!(events.iter().any(|(t, p, _)| t == "EmailCodeIssued" && p["EmailCodeIssued"]["slot"] == 2));
    // An address that bounces is not offered.
    let path = format!("/api/v1/admin/accounts/{account}/email-status");
    app.send(Method::PUT, &path, Some(json!({ "reachable": false, "slot": 2 })), Some(&app.admin_token), "web").await;
    let (_, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "9940001", "password": "pass-word-1" }), None).await).await;
    assert_eq!(v["addresses"].as_array().map(Vec::len), Some(1), "{v}");
    let flow = v["flow_id"].as_str().unwrap();
    let (s, v) = json_of(app.post(&format!("/api/v1/sessions/password/{flow}/otp/send"), json!({ "slot": 2 }), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "email_unreachable"), "{v}");
}

/// Seed 002: "セキュリティキーの利用は推奨環境外となっております" — flagged, not refused.
async fn a_security_key_is_outside_the_recommended_environment(app: TestApp) {
    let account = app.open_account("9920001", Some("usb-key@example.jp"), false).await;
    let mut usb = SoftPasskey::security_key("localhost", ORIGIN);
    let done = app.register("9920001", "usb-key@example.jp", &mut usb).await;
    assert_eq!(done["passkey"]["environment_recommended"], false, "{done}");
    // A platform passkey from the same PC, without Client Hints: unknown, not "outside".
    let mut platform = key();
    let token = done["session"]["token"].as_str().unwrap();
    let options: Value = app.post("/api/v1/me/passkeys/options", json!({}), Some(token)).await.json().await.unwrap();
    let (s, v) = json_of(app.post("/api/v1/me/passkeys", json!({ "credential": platform.register(&options) }), Some(token)).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["passkey"]["environment_recommended"].is_null(), "{v}");
    let support = app.staff("Sato", "support").await;
    let (_, history) = json_of(app.get(&format!("/api/v1/staff/accounts/{account}/history"), Some(&support)).await).await;
    assert!(history.to_string().contains("推奨環境外"), "{history}");
}

const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// Seed 004: "ワンタイムパスワードサービスをご利用の場合、この画面は表示されません".
async fn the_otp_service_replaces_the_mailed_code(app: TestApp) {
    let account = app.open_account("9910001", Some("otp@example.jp"), false).await;
    let path = format!("/api/v1/admin/accounts/{account}/otp-device");
    let (s, v) = json_of(app.send(Method::PUT, &path, Some(json!({ "secret": "not base32!" })), Some(&app.admin_token), "web").await).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_otp_device"));
    let res = app.send(Method::PUT, &path, Some(json!({ "secret": RFC_SECRET, "digits": 6 })), Some(&app.admin_token), "web").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let device = ledger_api::otp::OtpDevice::new(RFC_SECRET, None, Some(6), None).unwrap();

    // Registration: the password step asks for the OTP and mails nothing.
    let mails_before = app.mail_to("otp@example.jp").len();
    let (flow, res) = app.start_registration("9910001", "pass-word-1").await;
    let (s, v) = json_of(res).await;
    assert_eq!((s, v["otp"]["factor"].as_str()), (StatusCode::OK, Some("totp")), "{v}");
    assert_eq!(app.mail_to("otp@example.jp").len(), mails_before, "no code e-mailed");
    let otp_path = format!("/api/v1/registrations/{flow}/otp");
    let (s, v) = json_of(app.post(&otp_path, json!({ "code": "000000" }), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_code"));
    // One step of clock drift is accepted.
    let drifted = device.password_at(app.clock.now() - Duration::seconds(30));
    let (s, v) = json_of(app.post(&otp_path, json!({ "code": drifted }), None).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let events = app.events_of(&account).await;
    assert!(events.iter().any(|(t, p, _)| t == "EmailCodeVerified" && p["EmailCodeVerified"]["factor"] == "totp"));
    assert!(events.iter().any(|(t, _, _)| t == "OneTimePasswordRequested"));
    assert!(!events.iter().any(|(_, p, _)| p.to_string().contains(RFC_SECRET)), "the secret is in no event");

    // A time step is taken once: the same password does not open a second flow.
    let (flow2, _) = app.start_registration("9910001", "pass-word-1").await;
    let (s, v) = json_of(app.post(&format!("/api/v1/registrations/{flow2}/otp"), json!({ "code": drifted }), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_code"), "replay refused: {v}");
    app.clock.advance(Duration::seconds(30));
    let (s, _) = json_of(
        app.post(&format!("/api/v1/registrations/{flow2}/otp"), json!({ "code": device.password_at(app.clock.now()) }), None).await,
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // The status inquiry shows the OTP service.
    let support = app.staff("Sato", "support").await;
    let (_, status) = json_of(app.get(&format!("/api/v1/staff/accounts/{account}"), Some(&support)).await).await;
    assert_eq!(status["otp_service"], true, "{status}");

    // Removed: codes are e-mailed again.
    assert_eq!(app.send(Method::DELETE, &path, None, Some(&app.admin_token), "web").await.status(), StatusCode::NO_CONTENT);
    let (_, res) = app.start_registration("9910001", "pass-word-1").await;
    let (_, v) = json_of(res).await;
    assert_eq!(v["otp"]["destination"], "o***@example.jp", "{v}");
}

/// A session opened by password + e-mail code (an account with no passkey).
async fn password_session(app: &TestApp, login_id: &str, email: &str) -> String {
    let (_, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": login_id, "password": "pass-word-1" }), None).await).await;
    let flow = v["flow_id"].as_str().unwrap();
    let (s, v) =
        json_of(app.post(&format!("/api/v1/sessions/password/{flow}/otp"), json!({ "code": app.code_for(email) }), None).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["session"]["token"].as_str().unwrap().to_string()
}

/// Seed 000's status screen with no passkey: "以下よりパスキーの登録手続きを行って
/// ください", with the trading password; its lock applies.
async fn the_status_screen_registers_with_the_trading_password(app: TestApp) {
    let account = app.open_account("9900001", Some("status@example.jp"), false).await;
    let token = password_session(&app, "9900001", "status@example.jp").await;
    let (_, view) = json_of(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert_eq!(view["registration"]["step_up"], "trading_password", "{view}");
    let (s, v) = json_of(app.post("/api/v1/me/passkeys/options", json!({}), Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "step_up_required"), "{v}");
    // Nothing typed is a form error here too, and never counts towards the lock.
    let (s, v) = json_of(app.post("/api/v1/me/passkeys/options", json!({ "transaction_password": "" }), Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"), "{v}");
    assert!(!app.events_of(&account).await.iter().any(|(t, _, _)| t == "TradingPasswordRejected"));
    let (s, v) =
        json_of(app.post("/api/v1/me/passkeys/options", json!({ "transaction_password": "wrong-wrong" }), Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_transaction_password"), "{v}");
    let (s, options) =
        json_of(app.post("/api/v1/me/passkeys/options", json!({ "transaction_password": "trade-pass-1" }), Some(&token)).await).await;
    assert_eq!(s, StatusCode::OK, "{options}");
    let mut k = key();
    let (s, v) = json_of(app.post("/api/v1/me/passkeys", json!({ "credential": k.register(&options) }), Some(&token)).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["passkey"]["added_via"], "first_registration_from_session");
    let (_, view) = json_of(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert!(view["registration"]["step_up"].is_null(), "{view}");
    let events = app.events_of(&account).await;
    assert!(events.iter().any(|(t, p, _)| t == "PasskeyRegistered"
        && p["PasskeyRegistered"]["bound_by"] == "signed_in_session:password_and_email_code+trading_password"));
    assert!(events.iter().any(|(t, _, _)| t == "SessionStepUpPassed"));

    // Five wrong trading passwords lock it, as for deletion.
    app.open_account("9900002", Some("locked-trade@example.jp"), false).await;
    let token = password_session(&app, "9900002", "locked-trade@example.jp").await;
    for _ in 0..5 {
        app.post("/api/v1/me/passkeys/options", json!({ "transaction_password": "wrong-wrong" }), Some(&token)).await;
    }
    let (s, v) =
        json_of(app.post("/api/v1/me/passkeys/options", json!({ "transaction_password": "trade-pass-1" }), Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::LOCKED, "trading_password_locked"), "{v}");
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("執行パスワードはロック"), "{v}");
}

/// Seed 004: from the session, a code to the registered address, then the passkey.
async fn the_status_screen_registers_with_a_code(app: TestApp) {
    let account = app.open_account("9900003", Some("code-step@example.jp"), false).await;
    let token = password_session(&app, "9900003", "code-step@example.jp").await;
    let (_, view) = json_of(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert_eq!(view["registration"]["step_up"], "code", "{view}");
    let (s, v) = json_of(app.post("/api/v1/me/passkeys/options", json!({}), Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "step_up_required"), "{v}");
    app.clock.advance(Duration::seconds(61));
    let (s, v) = json_of(app.post("/api/v1/me/passkeys/code", json!({}), Some(&token)).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["otp"]["destination"], "c***@example.jp");
    let flow = v["flow_id"].as_str().unwrap().to_string();
    let (s, v) =
        json_of(app.post("/api/v1/me/passkeys/code/verify", json!({ "flow_id": flow, "code": "000000" }), Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_code"), "{v}");
    let (s, v) = json_of(
        app.post("/api/v1/me/passkeys/code/verify", json!({ "flow_id": flow, "code": app.code_for("code-step@example.jp") }), Some(&token))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, options) = json_of(app.post("/api/v1/me/passkeys/options", json!({}), Some(&token)).await).await;
    assert_eq!(s, StatusCode::OK, "{options}");
    let (s, v) = json_of(app.post("/api/v1/me/passkeys", json!({ "credential": key().register(&options) }), Some(&token)).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let events = app.events_of(&account).await;
    assert!(events.iter().any(|(t, p, _)| t == "PasskeyRegistered"
        && p["PasskeyRegistered"]["bound_by"] == "signed_in_session:password_and_email_code+email_code"
        && p["PasskeyRegistered"]["flow_id"] == flow.as_str()));
}

async fn registration_is_refused_before_it_opens_then_works(app: TestApp) {
    let account = app.open_account("9200001", Some("early@example.jp"), false).await;
    let (s, v) = json_of(app.post("/api/v1/registrations", json!({ "login_id": "9200001" }), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "registration_not_open"), "{v}");
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("（日本時間）から"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("(JST)"), "{v}");
    assert!(v["error"]["opens_at"].as_str().unwrap().ends_with("+09:00"), "{v}");
    // An unknown login ID gets the same answer.
    let (s, _) = json_of(app.post("/api/v1/registrations", json!({ "login_id": "0000000" }), None).await).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // An anonymous start writes nothing to the account: the registration
    // would become the account's only at its password step.
    let events = app.events_of(&account).await;
    assert_eq!(events.len(), 1, "only the opening: {events:?}");
    // Nor from a signed-in session.
    let (_, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "9200001", "password": "pass-word-1" }), None).await).await;
    let flow = v["flow_id"].as_str().unwrap();
    let (_, v) = json_of(
        app.post(&format!("/api/v1/sessions/password/{flow}/otp"), json!({ "code": app.code_for("early@example.jp") }), None).await,
    )
    .await;
    let token = v["session"]["token"].as_str().unwrap().to_string();
    let (s, v) = json_of(app.post("/api/v1/me/passkeys/options", json!({}), Some(&token)).await).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "registration_not_open"), "{v}");
    // At the launch instant it opens.
    app.clock.advance(Duration::hours(2));
    app.register("9200001", "early@example.jp", &mut key()).await;
}

async fn a_reissued_trading_password_keeps_the_passkeys_and_unlocks_deletion(app: TestApp) {
    let account = app.open_account("9300001", Some("trade@example.jp"), false).await;
    let mut k = key();
    let token = app.register("9300001", "trade@example.jp", &mut k).await["session"]["token"].as_str().unwrap().to_string();
    for _ in 0..5 {
        app.send(Method::DELETE, "/api/v1/me/passkeys", Some(json!({ "transaction_password": "wrong-wrong" })), Some(&token), "web").await;
    }
    let (s, v) = json_of(
        app.send(Method::DELETE, "/api/v1/me/passkeys", Some(json!({ "transaction_password": "trade-pass-1" })), Some(&token), "web").await,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::LOCKED, "deletion_locked"));
    let path = format!("/api/v1/admin/accounts/{account}/trading-password");
    let res =
        app.send(Method::PUT, &path, Some(json!({ "password": "new-trade-9", "temporary": true })), Some(&app.admin_token), "web").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // "引き続きパスキー認証にてログインが可能": the passkey still logs in.
    assert_eq!(app.passkey_login(&mut k).await.status(), StatusCode::CREATED);
    // The old trading password no longer deletes; the new one does.
    let (s, v) = json_of(
        app.send(Method::DELETE, "/api/v1/me/passkeys", Some(json!({ "transaction_password": "trade-pass-1" })), Some(&token), "web").await,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_transaction_password"));
    let (s, v) = json_of(
        app.send(Method::DELETE, "/api/v1/me/passkeys", Some(json!({ "transaction_password": "new-trade-9" })), Some(&token), "web").await,
    )
    .await;
    assert_eq!((s, v["deleted"].clone()), (StatusCode::OK, json!(1)));
    let events = app.events_of(&account).await;
    assert!(events
        .iter()
        .any(|(t, p, m)| t == "TradingPasswordChanged" && p["TradingPasswordChanged"]["temporary"] == true && m["actor"] == "core_system"));
    let res = app
        .send(
            Method::PUT,
            "/api/v1/admin/accounts/nope/trading-password",
            Some(json!({ "password": "new-trade-9", "temporary": false })),
            Some(&app.admin_token),
            "web",
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

const GOOGLE_APP: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/380.0.765432 Mobile/15E148 Safari/604.1";

async fn an_in_app_browser_is_told_to_open_the_standard_browser(app: TestApp) {
    let account = app.open_account("9400001", Some("inapp@example.jp"), false).await;
    let (flow, _) = app.start_registration("9400001", "pass-word-1").await;
    app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": app.code_for("inapp@example.jp") }), None).await;
    let res = app
        .request(Method::POST, &format!("/api/v1/registrations/{flow}/passkey/options"), None)
        .header("user-agent", GOOGLE_APP)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(res).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "unsupported_browser"), "{v}");
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("標準ブラウザ"));
    let events = app.events_of(&account).await;
    let (_, refused, _) = events.iter().find(|(t, _, _)| t == "PasskeyRegistrationRefused").expect("recorded");
    assert_eq!(refused["PasskeyRegistrationRefused"]["reason"], "unsupported_browser");
    assert_eq!(refused["PasskeyRegistrationRefused"]["detail"], "Google app");
    // In the standard browser the same flow goes on.
    let (s, _) = json_of(app.post(&format!("/api/v1/registrations/{flow}/passkey/options"), json!({}), None).await).await;
    assert_eq!(s, StatusCode::OK);
}

async fn an_aborted_ceremony_is_on_record_for_support(app: TestApp) {
    let account = app.open_account("9500001", Some("aborted@example.jp"), false).await;
    let (flow, _) = app.start_registration("9500001", "pass-word-1").await;
    app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": app.code_for("aborted@example.jp") }), None).await;
    let (_, options) = json_of(app.post(&format!("/api/v1/registrations/{flow}/passkey/options"), json!({}), None).await).await;
    let path = format!("/api/v1/registrations/{flow}/passkey/abandoned");
    let (s, v) = json_of(app.post(&path, json!({ "reason": "<script>" }), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"), "{v}");
    let res = app.post(&path, json!({ "reason": "NotAllowedError" }), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The request it abandoned cannot be finished any more.
    let res = app.post(&format!("/api/v1/registrations/{flow}/passkey"), json!({ "credential": key().register(&options) }), None).await;
    assert_ne!(res.status(), StatusCode::CREATED);
    // Support reads why.
    let support = app.staff("Sato", "support").await;
    let (_, history) = json_of(app.get(&format!("/api/v1/staff/accounts/{account}/history"), Some(&support)).await).await;
    let text = history.to_string();
    assert!(text.contains("NotAllowedError") && text.contains("中断"), "{history}");
}

async fn customers_are_sent_to_support_to_delete(app: TestApp) {
    let account = app.open_account("9600001", Some("support-only@example.jp"), false).await;
    let token = app.register("9600001", "support-only@example.jp", &mut key()).await["session"]["token"].as_str().unwrap().to_string();
    let (s, v) = json_of(
        app.send(Method::DELETE, "/api/v1/me/passkeys", Some(json!({ "transaction_password": "trade-pass-1" })), Some(&token), "web").await,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "deletion_by_support_only"), "{v}");
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("カスタマーサポート"));
    let view: Value = app.get("/api/v1/me/passkeys", Some(&token)).await.json().await.unwrap();
    assert_eq!(view["passkeys"].as_array().unwrap().len(), 1, "nothing deleted");
    // Support still can.
    let support = app.staff("Sato", "support").await;
    let path = format!("/api/v1/staff/accounts/{account}/passkeys/revoke");
    let res = app.send(Method::POST, &path, Some(json!({ "reason": "phone lost" })), Some(&support), "web").await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn a_code_lives_ten_minutes(app: TestApp) {
    app.open_account("9700001", Some("ten@example.jp"), false).await;
    let (flow, res) = app.start_registration("9700001", "pass-word-1").await;
    let (_, v) = json_of(res).await;
    let expires: chrono::DateTime<Utc> = v["otp"]["expires_at"].as_str().unwrap().parse().unwrap();
    assert!((expires - app.clock.now() - Duration::minutes(10)).num_seconds().abs() <= 2, "{v}");
    let typed = app.code_for("ten@example.jp");
    let mail = app.mail_to("ten@example.jp").last().unwrap().decoded();
    assert!(mail.contains(&ledger_api::email::jst(expires)), "the mail gives the expiry in JST: {mail}");
    app.clock.advance(Duration::seconds(9 * 60 + 50));
    let res = app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": typed }), None).await;
    assert_eq!(res.status(), StatusCode::OK, "valid at 9 min 50 s");

    app.open_account("9700002", Some("eleven@example.jp"), false).await;
    let (flow, _) = app.start_registration("9700002", "pass-word-1").await;
    let typed = app.code_for("eleven@example.jp");
    app.clock.advance(Duration::seconds(10 * 60 + 10));
    let (s, v) = json_of(app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": typed }), None).await).await;
    assert_eq!((s, code(&v)), (StatusCode::GONE, "code_expired"), "expired at 10 min 10 s");
}

async fn a_customer_with_no_passkey_on_the_app_is_told_to_register_one(app: TestApp) {
    app.open_account("9800001", Some("app-user@example.jp"), false).await;
    let body = json!({ "login_id": "9800001", "password": "pass-word-1" });
    let (s, v) = json_of(app.send(Method::POST, "/api/v1/sessions/password", Some(body), None, "mobile_app").await).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "passkey_required"), "{v}");
    assert_eq!(v["error"]["next"], "register_passkey");
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("登録"), "{v}");
}

/// A relay that accepts the connection and then says nothing: the customer
/// is answered `email_not_sent` when the SMTP timeout passes, not held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_smtp_relay_does_not_hold_the_customer() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let Some(app) = TestApp::spawn_with(ledger_tests::Backend::Sqlite, move |c| {
        c.mail = ledger_api::config::MailTransport::Smtp(format!("smtp://127.0.0.1:{port}"));
        c.smtp_timeout_secs = 2;
    })
    .await
    else {
        return;
    };
    app.open_account("9970001", Some("silent@example.jp"), false).await;
    let (_, res) = tokio::time::timeout(std::time::Duration::from_secs(60), app.start_registration("9970001", "pass-word-1"))
        .await
        .expect("the password step answers instead of waiting on the relay");
    let (s, v) = json_of(res).await;
    assert_eq!((s, code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "email_not_sent"), "{v}");
    // The trail tells the truth: a code was drawn, none went out.
    let support = app.staff("Sato", "support").await;
    let (_, found) = json_of(app.get("/api/v1/staff/accounts?q=9970001", Some(&support)).await).await;
    let id = found["accounts"][0]["account_id"].as_str().unwrap().to_string();
    let events = app.events_of(&id).await;
    assert!(events.iter().any(|(t, _, _)| t == "EmailCodeNotDelivered"), "{:?}", events.iter().map(|e| &e.0).collect::<Vec<_>>());
}
