//! The support desk and second-factor mode over real HTTP: staff find an
//! account, read its status and history (each read on record), delete
//! passkeys for a lost device and unlock; seed 002's password-then-passkey
//! login. On SQLite and on PostgreSQL.

use ledger_tests::harness::{error_code, ORIGIN};
use ledger_tests::{Backend, SoftPasskey, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    support_finds_reads_and_deletes_passkeys_for_a_lost_device,
    support_unlocks_a_locked_login,
    history_pages_newest_first_with_a_stable_cursor,
    staff_endpoints_refuse_customers_anonymous_callers_and_wrong_roles,
    a_changed_address_is_told_recorded_with_the_old_one_and_found_by_either,
);

/// The core system changes a registered address: the old address is told
/// (not the new one only: a takeover starts there), the event keeps both,
/// the line shows both masked, and support finds the account by either.
async fn a_changed_address_is_told_recorded_with_the_old_one_and_found_by_either(app: TestApp) {
    let account = app.open_account("4000010", Some("old.address@example.jp"), false).await;
    // The core system's call, as its integration makes it.
    let app = &app;
    let change_email = |email: &'static str| {
        let path = format!("/api/v1/admin/accounts/{account}/email");
        async move { app.send(Method::PUT, &path, Some(json!({ "email": email })), Some(&app.admin_token), "web").await.status() }
    };
    assert_eq!(change_email("new.address@example.jp").await, StatusCode::NO_CONTENT);
    // The same address again changes nothing and records nothing.
    let before = app.events_of(&account).await.len();
    assert_eq!(change_email("new.address@example.jp").await, StatusCode::NO_CONTENT);
    assert_eq!(app.events_of(&account).await.len(), before, "a no-op change is not recorded");

    let told = app.mail_to("old.address@example.jp");
    let notice = told.iter().map(|m| m.decoded()).find(|m| m.contains("変更されました")).expect("the old address is told");
    assert!(notice.contains("n***@example.jp") && !notice.contains("new.address@example.jp"), "the new address masked: {notice}");
    let events = app.events_of(&account).await;
    let (_, changed, _) = events.iter().find(|(t, _, _)| t == "EmailAddressChanged").unwrap();
    assert_eq!(changed["EmailAddressChanged"]["previous"], "old.address@example.jp");
    let (_, notice_event, _) = events.iter().find(|(t, _, _)| t == "SecurityNoticeSent").unwrap();
    assert_eq!(notice_event["SecurityNoticeSent"]["kind"], "email_changed");
    assert_eq!(notice_event["SecurityNoticeSent"]["destination"], "o***@example.jp");

    let support = app.staff("Mori", "support").await;
    for address in ["old.address@example.jp", "NEW.ADDRESS@example.jp"] {
        let (s, v) = get(app, &format!("/api/v1/staff/accounts?q={address}"), &support).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["accounts"][0]["account_id"], account.as_str(), "found by {address}: {v}");
    }
    let (_, history) = get(app, &format!("/api/v1/staff/accounts/{account}/history?type=EmailAddressChanged"), &support).await;
    let line = &history["events"][0]["line"];
    assert!(line["en"].as_str().unwrap().contains("from o***@example.jp to n***@example.jp"), "{line}");
    assert!(line["ja"].as_str().unwrap().contains("o***@example.jp から n***@example.jp に変更"), "{line}");
}

async fn json_of(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    json_of(app.get(path, Some(token)).await).await
}

async fn support_finds_reads_and_deletes_passkeys_for_a_lost_device(app: TestApp) {
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let account = app.open_account("4000001", Some("Lost.Phone@Example.jp"), false).await;
    app.register("4000001", "lost.phone@example.jp", &mut key).await;
    let support = app.staff("Sato Hanako", "support").await;

    let (s, v) = get(&app, "/api/v1/staff/accounts?q=4000001", &support).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accounts"][0]["account_id"], account.as_str());
    let (_, v) = get(&app, "/api/v1/staff/accounts?q=LOST.PHONE@example.jp", &support).await;
    assert_eq!(v["accounts"][0]["account_id"], account.as_str(), "found by the normalised address");

    let (s, view) = get(&app, &format!("/api/v1/staff/accounts/{account}"), &support).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(view["email"], "lost.phone@example.jp", "unmasked for staff");
    let passkey_id = view["passkeys"][0]["id"].as_str().unwrap().to_string();

    let path = format!("/api/v1/staff/accounts/{account}/passkeys/revoke");
    let (s, v) = json_of(app.post(&path, json!({ "reason": "" }), Some(&support)).await).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "reason_required"));
    let (s, v) = json_of(app.post(&path, json!({ "reason": "device_lost", "passkey_id": passkey_id }), Some(&support)).await).await;
    assert_eq!((s, v["deleted"].clone()), (StatusCode::OK, json!(1)));

    let (_, view) = get(&app, &format!("/api/v1/staff/accounts/{account}"), &support).await;
    assert_eq!(view["passkeys"], json!([]));
    assert_eq!(view["revoked_passkeys"][0]["revoked_reason"], "device_lost");
    let revoked_at = view["revoked_passkeys"][0]["revoked_at"].as_str().unwrap();
    assert!(revoked_at.ends_with("+09:00"), "staff read Japan time: {revoked_at}");
    assert_eq!(view["registration"]["possible"], true, "the customer can register again");

    // The customer's old passkey is recognised as revoked.
    let res = app.passkey_login(&mut key).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The history tells it in plain words, naming the staff member, newest first.
    let (_, history) = get(&app, &format!("/api/v1/staff/accounts/{account}/history"), &support).await;
    let lines: Vec<&str> = history["events"].as_array().unwrap().iter().map(|e| e["line"]["en"].as_str().unwrap()).collect();
    assert!(lines[0].contains("Sato Hanako") && lines[0].contains("history"), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("Support (Sato Hanako) deleted passkey(s)") && l.contains("the device was lost")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("Passkey login failed: the passkey was deleted from the account.")), "{lines:#?}");
    assert!(lines.last().unwrap().contains("opened by the core system"));
    let ja: Vec<&str> = history["events"].as_array().unwrap().iter().map(|e| e["line"]["ja"].as_str().unwrap()).collect();
    assert!(ja.iter().any(|l| l.contains("サポート担当（Sato Hanako）がパスキー")), "{ja:#?}");
    assert!(ja.iter().any(|l| l.contains("パスキーでのログインに失敗しました（削除済みのパスキー）")), "{ja:#?}");
    assert!(ja[0].contains("が操作履歴を閲覧しました"), "the read itself, in words: {ja:#?}");
    assert!(!ja.iter().chain(&lines).any(|l| l.contains("_credential") || l.contains("UTC")), "no codes, Japan time: {ja:#?}");
    for entry in history["events"].as_array().unwrap() {
        let (at, utc) = (entry["at"].as_str().unwrap(), entry["at_utc"].as_str().unwrap());
        assert!(at.ends_with("+09:00") && utc.ends_with('Z'), "Japan time, UTC beside it: {entry}");
    }
    let revoke = history["events"].as_array().unwrap().iter().find(|e| e["type"] == "PasskeysRevoked").unwrap();
    assert_eq!(revoke["actor_name"], "Sato Hanako");

    // Every staff read is an event naming the staff member.
    let events = app.events_of(&account).await;
    let reads: Vec<&str> = events
        .iter()
        .filter(|(t, _, _)| t == "AccountViewedByStaff")
        .map(|(_, p, _)| p["AccountViewedByStaff"]["view"].as_str().unwrap())
        .collect();
    assert_eq!(reads, vec!["search", "search", "status", "status", "history"]);
    let notice = app.mail_to("lost.phone@example.jp").into_iter().rev().find(|m| m.decoded().contains("by our support desk"));
    assert!(notice.is_some(), "the customer is told of the deletion");
}

async fn support_unlocks_a_locked_login(app: TestApp) {
    let account = app.open_account("4000002", Some("locked@example.jp"), false).await;
    for _ in 0..5 {
        app.post("/api/v1/sessions/password", json!({ "login_id": "4000002", "password": "wrong-password" }), None).await;
    }
    let res = app.post("/api/v1/sessions/password", json!({ "login_id": "4000002", "password": "pass-word-1" }), None).await;
    assert_eq!(res.status(), StatusCode::LOCKED);
    let support = app.staff("Suzuki", "support").await;
    // The status says since when, why and from where it is locked.
    let (_, view) = get(&app, &format!("/api/v1/staff/accounts/{account}"), &support).await;
    assert_eq!(view["locked"], true);
    let lock = &view["lock"];
    assert_eq!((lock["wrong_passwords"].as_u64(), lock["clients"].clone()), (Some(5), json!(["127.0.0.1"])), "{view}");
    assert!(lock["since"].as_str().unwrap().ends_with("+09:00"), "{lock}");
    assert!(lock["line"]["ja"].as_str().unwrap().contains("接続元 127.0.0.1"), "{lock}");
    // The history shows only what is asked for, without the staff's reads.
    let history_path = |query: &str| format!("/api/v1/staff/accounts/{account}/history?{query}");
    let (_, only) = get(&app, &history_path("type=passwordrejected,LOGINLOCKED&hide_staff_views=true"), &support).await;
    let types: Vec<&str> = only["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["LoginLocked", "PasswordRejected", "PasswordRejected", "PasswordRejected", "PasswordRejected", "PasswordRejected"]);
    let (_, all) = get(&app, &history_path("hide_staff_views=true"), &support).await;
    assert!(all["events"].as_array().unwrap().iter().all(|e| e["type"] != "AccountViewedByStaff"), "{all}");
    let (_, with_reads) = get(&app, &history_path(""), &support).await;
    assert!(with_reads["events"].as_array().unwrap().iter().any(|e| e["type"] == "AccountViewedByStaff"));
    let (status, v) = get(&app, &history_path("type=LoginLocked,Nope"), &support).await;
    assert_eq!((status, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_filter"), "{v}");
    let path = format!("/api/v1/staff/accounts/{account}/unlock");
    let res = app.post(&path, json!({ "reason": "identity confirmed by phone" }), Some(&support)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.post("/api/v1/sessions/password", json!({ "login_id": "4000002", "password": "pass-word-1" }), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (_, view) = get(&app, &format!("/api/v1/staff/accounts/{account}"), &support).await;
    assert_eq!((view["locked"].clone(), view["lock"].clone()), (json!(false), Value::Null), "{view}");
    let events = app.events_of(&account).await;
    let (_, unlocked, meta) = events.iter().find(|(t, _, _)| t == "LoginUnlocked").unwrap();
    assert_eq!(unlocked["LoginUnlocked"]["staff"]["name"], "Suzuki");
    assert_eq!(unlocked["LoginUnlocked"]["reason"], "identity confirmed by phone");
    assert!(meta["actor"].as_str().unwrap().starts_with("staff:"));

    // Unlocking again lifts nothing: refused, and nothing recorded.
    let before = app.events_of(&account).await.len();
    let (status, v) = json_of(app.post(&path, json!({ "reason": "again" }), Some(&support)).await).await;
    assert_eq!((status, error_code(&v)), (StatusCode::CONFLICT, "not_locked"), "{v}");
    assert!(v["error"]["message_ja"].as_str().is_some_and(|m| m.contains("ロックされていません")), "{v}");
    assert_eq!(app.events_of(&account).await.len(), before);
}

async fn history_pages_newest_first_with_a_stable_cursor(app: TestApp) {
    let account = app.open_account("4000003", Some("pages@example.jp"), false).await;
    // Six reads of the account's status by support: six events.
    let support = app.staff("Abe", "support").await;
    let status_path = format!("/api/v1/staff/accounts/{account}");
    let read_status = || app.get(&status_path, Some(&support));
    for _ in 0..6 {
        assert_eq!(read_status().await.status(), StatusCode::OK);
    }
    let compliance = app.staff("Tanaka", "compliance").await;
    let path = format!("/api/v1/staff/accounts/{account}/history?limit=3");
    let (_, first) = get(&app, &path, &compliance).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let seqs = |v: &Value| v["events"].as_array().unwrap().iter().map(|e| e["sequence"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(seqs(&first), vec![8, 7, 6], "the read itself (8) comes first");
    // New events arrive meanwhile; the next page carries on where it left off.
    read_status().await;
    let (_, second) = get(&app, &format!("{path}&cursor={cursor}"), &compliance).await;
    assert_eq!(seqs(&second), vec![5, 4, 3]);
    let (_, last) = get(&app, &format!("{path}&cursor={}", second["next_cursor"].as_str().unwrap()), &compliance).await;
    assert_eq!(seqs(&last), vec![2, 1]);
    assert_eq!(last["next_cursor"], Value::Null);
    let (s, _) = get(&app, &format!("{path}&cursor=abc"), &compliance).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

async fn staff_endpoints_refuse_customers_anonymous_callers_and_wrong_roles(app: TestApp) {
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let account = app.open_account("4000004", Some("acl@example.jp"), false).await;
    let customer = app.register("4000004", "acl@example.jp", &mut key).await["session"]["token"].as_str().unwrap().to_string();
    let support = app.staff("S", "support").await;
    let compliance = app.staff("C", "compliance").await;
    let admin = app.admin_token.clone();
    let reads = [
        (Method::GET, "/api/v1/staff/accounts?q=4000004".to_string(), None),
        (Method::GET, format!("/api/v1/staff/accounts/{account}"), None),
        (Method::GET, format!("/api/v1/staff/accounts/{account}/history"), None),
    ];
    let writes = [
        (Method::POST, format!("/api/v1/staff/accounts/{account}/passkeys/revoke"), Some(json!({ "reason": "device_replaced" }))),
        (Method::POST, format!("/api/v1/staff/accounts/{account}/unlock"), Some(json!({ "reason": "test" }))),
    ];
    for (method, path, body) in reads.iter().chain(writes.iter()) {
        for (who, token, expected) in [("anonymous", None, 401), ("customer", Some(customer.as_str()), 401)] {
            let res = app.send(method.clone(), path, body.clone(), token, "web").await;
            assert_eq!(res.status().as_u16(), expected, "{who} on {method} {path}");
        }
    }
    // Administrators may do everything staff do (the console's admin sees all).
    for (method, path, body) in &reads {
        for token in [&support, &compliance, &admin] {
            assert_eq!(app.send(method.clone(), path, body.clone(), Some(token), "web").await.status(), StatusCode::OK, "{path}");
        }
    }
    for (method, path, body) in &writes {
        let res = app.send(method.clone(), path, body.clone(), Some(&compliance), "web").await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "compliance may not act: {path}");
    }
    // Support may not call the integration endpoints.
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/admin/accounts/{account}/email"),
            Some(json!({ "email": "x@example.jp" })),
            Some(&support),
            "web",
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

// --- Second-factor mode (seed 002) ---------------------------------------------------

async fn second_factor_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| c.policy.login_mode = ledger_domain::LoginMode::SecondFactor).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_mode_on_sqlite() {
    if let Some(app) = second_factor_app(Backend::Sqlite).await {
        the_password_then_one_of_the_customers_passkeys(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_mode_on_postgres() {
    if let Some(app) = second_factor_app(Backend::Postgres).await {
        the_password_then_one_of_the_customers_passkeys(app).await;
    }
}

async fn the_password_then_one_of_the_customers_passkeys(app: TestApp) {
    let account = app.open_account("5000001", Some("neo@example.jp"), false).await;
    let mut first = SoftPasskey::new("localhost", ORIGIN);
    let token = app.register("5000001", "neo@example.jp", &mut first).await["session"]["token"].as_str().unwrap().to_string();
    let mut second = SoftPasskey::new("localhost", ORIGIN);
    let options: Value =
        app.post("/api/v1/me/passkeys/options", json!({ "passkey_name": "Windows" }), Some(&token)).await.json().await.unwrap();
    let res = app.post("/api/v1/me/passkeys", json!({ "credential": second.register(&options) }), Some(&token)).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // First login: ID + password, then the list (no passkey used yet).
    let (s, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "5000001", "password": "pass-word-1" }), None).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["next"], "passkey");
    let flow = v["flow_id"].as_str().unwrap().to_string();
    let allowed: Vec<&str> = v["publicKey"]["allowCredentials"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(allowed.len(), 2);
    let path = format!("/api/v1/sessions/password/{flow}/passkey");
    let (s, done) = json_of(app.post(&path, json!({ "credential": second.assert(&v) }), None).await).await;
    assert_eq!(s, StatusCode::CREATED, "{done}");
    // The same flow cannot be finished twice.
    let (s, _) = json_of(app.post(&path, json!({ "credential": second.assert(&v) }), None).await).await;
    assert_ne!(s, StatusCode::CREATED);

    // Next time the passkey used last is listed first, with its last use.
    let (_, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "5000001", "password": "pass-word-1" }), None).await).await;
    assert_eq!(v["passkeys"][0]["name"], "Windows");
    assert!(v["passkeys"][0]["last_used_at"].is_string());
    assert!(v["passkeys"][1]["last_used_at"].is_null());

    let events = app.events_of(&account).await;
    let (_, ok, _) = events.iter().find(|(t, _, _)| t == "PasskeyLoginSucceeded").unwrap();
    assert_eq!(ok["PasskeyLoginSucceeded"]["second_factor_flow"], flow.as_str());
    assert!(events.iter().any(|(t, _, _)| t == "SecondFactorRequired"));
    // A wrong password never reaches the passkey step.
    let (s, _) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "5000001", "password": "nope-nope" }), None).await).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
