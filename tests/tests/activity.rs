//! The customer's side over real HTTP with real WebAuthn data, on SQLite
//! and PostgreSQL: recent security activity in their words, signed-in
//! devices and signing them out, and "this wasn't me" from the phone about
//! a login from a PC.

use ledger_tests::devices::{add_passkey_on, code, json_of, login_on, pc, phone, register_on};
use ledger_tests::harness::ORIGIN;
use ledger_tests::{SoftPasskey, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    the_activity_is_in_the_customers_words_newest_first_without_staff_reads,
    signing_out_the_other_devices_ends_their_sessions,
    a_report_from_the_phone_signs_the_pc_out_and_revokes_the_passkey_it_used,
    a_customer_cannot_read_or_report_another_customers_events,
    the_activity_pages_without_gaps_or_repeats_while_new_events_arrive,
);

async fn get_on(
    app: &TestApp,
    path: &str,
    token: &str,
    device: fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (StatusCode, Value) {
    json_of(device(app.request(Method::GET, path, Some(token))).send().await.unwrap()).await
}

async fn activity(app: &TestApp, token: &str) -> Vec<Value> {
    let (s, v) = get_on(app, "/api/v1/me/activity?limit=100", token, phone).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

fn token_of(v: &Value) -> String {
    v["session"]["token"].as_str().unwrap().to_string()
}

/// Seed 000 on two devices: registered on the phone, signed in on the PC
/// with the phone's passkey (cross-device), a local passkey created on the
/// PC and used to log in there, then a login on the phone. Returns (phone
/// token, PC token of the local-passkey login, account ID).
async fn phone_and_pc(app: &TestApp, login_id: &str, email: &str) -> (String, String, String, SoftPasskey) {
    let mut on_phone = SoftPasskey::new("localhost", ORIGIN);
    register_on(app, login_id, email, &mut on_phone, phone).await;
    on_phone.attachment = "cross-platform";
    let (s, v) = login_on(app, &mut on_phone, pc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let account_id = v["account_id"].as_str().unwrap().to_string();
    let mut hello = SoftPasskey::new("localhost", ORIGIN);
    hello.backup_eligible = false;
    hello.transports = vec!["internal"];
    let (s, v) = add_passkey_on(app, &token_of(&v), &mut hello, pc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = login_on(app, &mut hello, pc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pc_token = token_of(&v);
    on_phone.attachment = "platform";
    let (s, v) = login_on(app, &mut on_phone, phone).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (token_of(&v), pc_token, account_id, hello)
}

async fn the_activity_is_in_the_customers_words_newest_first_without_staff_reads(app: TestApp) {
    let (phone_token, _pc_token, account_id, _) = phone_and_pc(&app, "5100001", "aoi@example.jp").await;
    // Support reads the account: the customer does not see that.
    let support = app.staff("Suzuki Ichiro", "support").await;
    assert_eq!(app.get(&format!("/api/v1/staff/accounts/{account_id}"), Some(&support)).await.status(), StatusCode::OK);

    let items = activity(&app, &phone_token).await;
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    // Newest first: the phone's login, the PC's login with its own passkey,
    // the passkey added on the PC, the PC's cross-device sign-in, ...
    assert_eq!(kinds[0], "login", "{kinds:?}");
    let ats: Vec<&str> = items.iter().map(|i| i["at"].as_str().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "newest first: {ats:?}");
    assert!(ats.iter().all(|a| a.ends_with('Z')), "UTC: {ats:?}");
    for kind in ["passkey_added", "code_issued", "notice_sent"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let text = serde_json::to_string(&items).unwrap();
    assert!(!text.contains("Suzuki") && !text.contains("担当者"), "no staff read, no staff name: {text}");

    let mine = &items[0];
    assert_eq!((mine["this_session"].clone(), mine["reportable"].clone()), (json!(true), json!(false)), "{mine}");
    assert_eq!(mine["channel"], "mobile_web");
    assert_eq!(mine["line_ja"], "パスキーでログインしました（iPhone（Safari））。");

    let pc_login = &items[1];
    assert_eq!(pc_login["kind"], "login");
    assert_eq!((pc_login["this_session"].clone(), pc_login["reportable"].clone()), (json!(false), json!(true)));
    assert_eq!(pc_login["device"]["ja"], "Windows のパソコン（Chrome）");
    assert!(pc_login["environment"].as_str().unwrap().contains("Windows 11"), "{pc_login}");
    assert_eq!(pc_login["channel"], "web");
    assert!(!pc_login["ip"].as_str().unwrap_or_default().is_empty());
    let cross = items.iter().find(|i| i["line_en"].as_str().unwrap().contains("cross-device")).expect("the cross-device sign-in");
    assert!(cross["line_ja"].as_str().unwrap().contains("クロスデバイス認証"), "{cross}");
    let mailed = items.iter().find(|i| i["kind"] == "code_issued").unwrap();
    assert!(mailed["line_ja"].as_str().unwrap().contains("a***@example.jp"), "masked: {mailed}");

    // Support deletes the PC's passkey for a lost device: named as the support desk.
    let res = app
        .post(
            &format!("/api/v1/staff/accounts/{account_id}/passkeys/revoke"),
            json!({ "reason": "device_lost", "passkey_id": null }),
            Some(&support),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap_or_default());
    let fresh = app.passkey_login(&mut SoftPasskey::new("localhost", ORIGIN)).await;
    assert_eq!(fresh.status(), StatusCode::UNAUTHORIZED);
    let (s, v) = get_on(&app, "/api/v1/me/activity", &phone_token, phone).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "session_ended"), "support's deletion ends every session: {v}");
}

async fn signing_out_the_other_devices_ends_their_sessions(app: TestApp) {
    let (phone_token, pc_token, account_id, _) = phone_and_pc(&app, "5100002", "ren@example.jp").await;
    let (s, v) = get_on(&app, "/api/v1/me/sessions", &phone_token, phone).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sessions = v["items"].as_array().unwrap().clone();
    assert!(sessions.len() >= 3, "registration, the PC's two, the phone's login: {sessions:?}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device"]["ja"], "iPhone（Safari）");
    assert_eq!(current[0]["method"], "passkey");
    let cross = sessions.iter().find(|s| s["method"] == "cross_device").expect("the PC's cross-device session");
    assert_eq!((cross["channel"].clone(), cross["device"]["en"].clone()), (json!("web"), json!("Windows PC (Chrome)")));
    assert!(sessions.iter().all(|s| s["session_id"].as_str().unwrap().len() == 16 && !s.to_string().contains(&phone_token)));

    // One session by its ID; an unknown ID is not found; a bad scope is refused.
    let id = cross["session_id"].as_str().unwrap();
    let res = phone(app.request(Method::DELETE, &format!("/api/v1/me/sessions/{id}"), Some(&phone_token))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = phone(app.request(Method::DELETE, &format!("/api/v1/me/sessions/{id}"), Some(&phone_token))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "ended already");
    let (s, v) =
        json_of(phone(app.request(Method::DELETE, "/api/v1/me/sessions?scope=all", Some(&phone_token))).send().await.unwrap()).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"));

    // Everything but this phone.
    let (s, v) = get_on(&app, "/api/v1/me/passkeys", &pc_token, pc).await;
    assert_eq!(s, StatusCode::OK, "the PC is signed in: {v}");
    let (s, v) =
        json_of(phone(app.request(Method::DELETE, "/api/v1/me/sessions?scope=others", Some(&phone_token))).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ended"].as_u64().unwrap() as usize, sessions.len() - 2);
    let (s, v) = get_on(&app, "/api/v1/me/passkeys", &pc_token, pc).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "session_ended"), "{v}");
    let (_, v) = get_on(&app, "/api/v1/me/sessions", &phone_token, phone).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    let (s, v) =
        json_of(phone(app.request(Method::DELETE, "/api/v1/me/sessions?scope=others", Some(&phone_token))).send().await.unwrap()).await;
    assert_eq!((s, v["ended"].clone()), (StatusCode::OK, json!(0)));

    let ended: Vec<Value> = app
        .events_of(&account_id)
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "SessionsEnded")
        .map(|(_, p, _)| p["SessionsEnded"].clone())
        .collect();
    assert_eq!(ended.len(), 2, "one event per sign-out that ended something: {ended:?}");
    assert!(ended.iter().all(|e| e["cause"] == "ended_by_customer"));
    let items = activity(&app, &phone_token).await;
    assert!(items[0]["line_ja"].as_str().unwrap().contains("ログアウトしました"), "{}", items[0]);
}

async fn a_report_from_the_phone_signs_the_pc_out_and_revokes_the_passkey_it_used(app: TestApp) {
    let (phone_token, pc_token, account_id, mut hello) = phone_and_pc(&app, "5100003", "sora@example.jp").await;
    let (_, v) = get_on(&app, "/api/v1/me/sessions", &phone_token, phone).await;
    let others = v["items"].as_array().unwrap().len() - 1;
    let items = activity(&app, &phone_token).await;
    let pc_login = items
        .iter()
        .find(|i| {
            i["kind"] == "login" && i["device"]["en"] == "Windows PC (Chrome)" && i["line_en"].as_str().unwrap().contains("a passkey")
        })
        .expect("the PC's login with its own passkey")
        .clone();
    let event_id = pc_login["event_id"].as_str().unwrap();
    let mails_before = app.mail_to("sora@example.jp").len();

    let report = |note: Value| {
        phone(app.request(Method::POST, &format!("/api/v1/me/activity/{event_id}/report"), Some(&phone_token)))
            .json(&json!({ "note": note }))
            .send()
    };
    let (s, first) = json_of(report(json!("深夜にログインしていません")).await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["sessions_ended"].as_u64().unwrap() as usize, others);
    assert_eq!(first["passkeys_revoked"], 1);
    let signal_id = first["signal_id"].as_str().unwrap().to_string();
    assert!(signal_id.starts_with("customer_reported_activity:"), "{signal_id}");

    // The PC is signed out, and its passkey no longer logs in.
    let (s, v) = get_on(&app, "/api/v1/me/passkeys", &pc_token, pc).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "session_ended"), "{v}");
    let (s, v) = login_on(&app, &mut hello, pc).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "revoked_credential"), "{v}");
    // The phone goes on, with its own passkey.
    let (s, v) = get_on(&app, "/api/v1/me/passkeys", &phone_token, phone).await;
    assert_eq!(s, StatusCode::OK);
    let active: Vec<&Value> = v["passkeys"].as_array().unwrap().iter().filter(|p| p["revoked_at"].is_null()).collect();
    assert_eq!(active.len(), 1, "{v}");

    // Reported twice: the first answer, nothing more done.
    let (s, again) = json_of(report(Value::Null).await.unwrap()).await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    let reports = app.events_of(&account_id).await.into_iter().filter(|(t, _, _)| t == "SuspiciousActivityReported").count();
    assert_eq!(reports, 1);

    // The customer is told, with no link.
    let mails: Vec<String> = app.mail_to("sora@example.jp")[mails_before..].iter().map(|m| m.decoded()).collect();
    let notice = mails.iter().find(|m| m.contains("身に覚えのない操作のご報告を受け付けました")).unwrap_or_else(|| panic!("{mails:#?}"));
    assert!(!notice.contains("http://") && !notice.contains("https://"), "{notice}");
    assert_eq!(mails.iter().filter(|m| m.contains("パスキーが削除されました")).count(), 0, "one notice for the report: {mails:#?}");

    // The activity says so; the item is marked reported.
    let items = activity(&app, &phone_token).await;
    assert_eq!(items.iter().find(|i| i["event_id"] == event_id).unwrap()["reported"], true);
    assert!(items.iter().any(|i| i["kind"] == "reported"), "{items:?}");

    // Compliance sees a high signal with the reported event as evidence;
    // support sees the open report at the top of the account.
    app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap();
    let compliance = app.staff("Kato", "compliance").await;
    let (s, v) = json_of(app.get("/api/v1/signals?kind=customer_reported_activity", Some(&compliance)).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let signals = v["signals"].as_array().or(v["items"].as_array()).unwrap_or_else(|| panic!("{v}")).clone();
    assert_eq!(signals.len(), 1, "{v}");
    assert_eq!((signals[0]["signal_id"].as_str(), signals[0]["severity"].as_str()), (Some(signal_id.as_str()), Some("high")));
    assert_eq!(signals[0]["evidence"][0]["type"], "PasskeyLoginSucceeded");
    let support = app.staff("Sato", "support").await;
    let (_, v) = json_of(app.get(&format!("/api/v1/staff/accounts/{account_id}"), Some(&support)).await).await;
    let open = &v["open_reports"][0];
    assert_eq!((open["signal_id"].as_str(), open["type"].as_str()), (Some(signal_id.as_str()), Some("PasskeyLoginSucceeded")), "{v}");
    assert_eq!(open["note"], "深夜にログインしていません");
    assert!(open["line"]["en"].as_str().unwrap().contains("Windows"), "{open}");
}

async fn a_customer_cannot_read_or_report_another_customers_events(app: TestApp) {
    let (phone_token, _pc, _account, _) = phone_and_pc(&app, "5100004", "mio@example.jp").await;
    let mut other = SoftPasskey::new("localhost", ORIGIN);
    let registering = register_on(&app, "5100005", "kai@example.jp", &mut other, phone).await;
    // The session a registration opened: the registration is its own, not
    // something to report (its passkey would go with it).
    let own = activity(&app, &registering).await;
    let registered = own.iter().find(|i| i["kind"] == "passkey_added").unwrap();
    assert_eq!((registered["this_session"].clone(), registered["reportable"].clone()), (json!(true), json!(false)), "{registered}");
    let res = phone(app.request(
        Method::POST,
        &format!("/api/v1/me/activity/{}/report", registered["event_id"].as_str().unwrap()),
        Some(&registering),
    ))
    .json(&json!({}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let (_, v) = login_on(&app, &mut other, phone).await;
    let other_token = token_of(&v);

    let mine = activity(&app, &phone_token).await;
    let theirs = activity(&app, &other_token).await;
    assert!(mine.iter().all(|m| theirs.iter().all(|t| t["event_id"] != m["event_id"])), "each sees their own");

    let report = |token: &str, event_id: &str| {
        phone(app.request(Method::POST, &format!("/api/v1/me/activity/{event_id}/report"), Some(token))).json(&json!({})).send()
    };
    let reportable = mine.iter().find(|i| i["reportable"] == true).unwrap()["event_id"].as_str().unwrap().to_string();
    let (s, v) = json_of(report(&other_token, &reportable).await.unwrap()).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "another customer's event: {v}");
    let (s, v) = json_of(report(&other_token, "00000000-0000-8000-8000-000000000000").await.unwrap()).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    // One's own session's login, and a refusal, are not reportable.
    let own = mine.iter().find(|i| i["this_session"] == true).unwrap()["event_id"].as_str().unwrap().to_string();
    let (s, v) = json_of(report(&phone_token, &own).await.unwrap()).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "not_reportable"), "{v}");
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("サポートデスク"), "{v}");
    // Without a session, nothing.
    let res = app.request(Method::GET, "/api/v1/me/activity", None).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (s, v) = get_on(&app, "/api/v1/me/activity?limit=0", &phone_token, phone).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"));
    let (s, v) = get_on(&app, "/api/v1/me/activity?cursor=abc", &phone_token, phone).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"));
    // A long note is refused and reports nothing.
    let res = phone(app.request(Method::POST, &format!("/api/v1/me/activity/{reportable}/report"), Some(&phone_token)))
        .json(&json!({ "note": "x".repeat(501) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let items = activity(&app, &phone_token).await;
    assert!(items.iter().all(|i| i["reported"] == false));
}

async fn the_activity_pages_without_gaps_or_repeats_while_new_events_arrive(app: TestApp) {
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let token = register_on(&app, "5100006", "nagi@example.jp", &mut key, phone).await;
    for _ in 0..8 {
        let (s, _) = login_on(&app, &mut key, phone).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let all = activity(&app, &token).await;
    let ids: Vec<String> = all.iter().map(|i| i["event_id"].as_str().unwrap().to_string()).collect();
    assert!(ids.len() >= 10, "{ids:?}");

    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, v) = get_on(&app, &format!("/api/v1/me/activity?limit=3&cursor={cursor}"), &token, phone).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        paged.extend(v["items"].as_array().unwrap().iter().map(|i| i["event_id"].as_str().unwrap().to_string()));
        // New events keep arriving while the customer pages.
        let (s, _) = login_on(&app, &mut key, phone).await;
        assert_eq!(s, StatusCode::CREATED);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(paged, ids, "the pages are the list as it was when paging began");
}
