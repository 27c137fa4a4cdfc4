//! Issue 4 as compliance would try it: scripted customer activity, then the
//! audit trail with its filters and cursor, the export, tamper detection,
//! fraud signals with their evidence and review, the adoption report, and
//! the access-control matrix. On SQLite and on PostgreSQL.

use chrono::Timelike;
use ledger_tests::harness::ORIGIN;
use ledger_tests::{Backend, SoftPasskey, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    the_trail_holds_every_step_with_its_actor_and_pages_stably,
    the_export_opens_in_japanese_excel_and_as_json_lines,
    verify_finds_edited_deleted_inserted_and_reordered_rows,
    the_expected_signals_are_raised_with_evidence_and_reviewed,
    a_shared_address_is_graded_by_holder_kind_and_grows_with_what_the_accounts_do,
    the_adoption_report_matches_the_activity,
    every_staff_endpoint_refuses_the_wrong_callers,
    the_read_models_rebuild_to_what_live_updating_produced,
    attempts_that_belong_to_no_account_are_in_the_trail,
);

async fn json_of(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, token: &str) -> Value {
    let (s, v) = json_of(app.get(path, Some(token)).await).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

/// Two family accounts sharing an address, a registered and logged-in
/// customer, a brute-forced code; returns (registered account, family accounts, brute-forced account).
async fn scripted_activity(app: &TestApp) -> (String, [String; 2], String) {
    let family_a = app.open_account("6000001", Some("family@example.jp"), false).await;
    let family_b = app.open_account("6000002", Some("Family@Example.jp"), false).await;
    let taro = app.open_account("6000003", Some("taro@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    app.register("6000003", "taro@example.jp", &mut key).await;
    assert_eq!(app.passkey_login(&mut key).await.status(), StatusCode::CREATED);
    let victim = app.open_account("6000004", Some("victim@example.jp"), false).await;
    let (flow, res) = app.start_registration("6000004", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    for guess in ["000000", "111111", "222222", "333333", "444444"] {
        app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": guess }), None).await;
    }
    (taro, [family_a, family_b], victim)
}

async fn the_trail_holds_every_step_with_its_actor_and_pages_stably(app: TestApp) {
    let (taro, _, _) = scripted_activity(&app).await;
    let support = app.staff("Sato", "support").await;
    get(&app, &format!("/api/v1/staff/accounts/{taro}/history"), &support).await;
    let compliance = app.staff("Kato", "compliance").await;

    let v = get(&app, &format!("/api/v1/audit/events?account_id={taro}&limit=1000"), &compliance).await;
    let rows = v["events"].as_array().unwrap();
    let types: Vec<&str> = rows.iter().map(|r| r["type"].as_str().unwrap()).collect();
    for expected in [
        "AccountOpened",
        "RegistrationStarted",
        "PasswordVerified",
        "EmailCodeIssued",
        "EmailCodeVerified",
        "PasskeyRegistered",
        "PasskeyLoginSucceeded",
        "AccountViewedByStaff",
    ] {
        assert!(types.contains(&expected), "{expected} missing from {types:?}");
    }
    let actor_of = |t: &str| rows.iter().find(|r| r["type"] == t).unwrap().clone();
    assert_eq!(actor_of("AccountOpened")["actor"], "core_system");
    // The core system's call names the administrator whose token made it,
    // and a filter on that member finds it.
    let admins: Vec<(String, String)> =
        sqlx::query_as("SELECT staff_id, name FROM staff WHERE role = 'admin'").fetch_all(&app.app.db.any).await.unwrap();
    let opened_by = actor_of("AccountOpened")["actor_name"].clone();
    let (admin_id, _) = admins.iter().find(|(_, name)| opened_by == *name).expect("the administrator is named");
    let v = get(&app, &format!("/api/v1/audit/events?actor=staff:{admin_id}"), &compliance).await;
    assert!(v["events"].as_array().unwrap().iter().any(|r| r["type"] == "AccountOpened"), "{v}");
    assert_eq!(actor_of("PasskeyLoginSucceeded")["actor"], "customer");
    assert_eq!(actor_of("PasskeyLoginSucceeded")["channel"], "web");
    assert_eq!(actor_of("AccountViewedByStaff")["channel"], "staff", "staff acts apart from the customers' web");
    assert_eq!(actor_of("AccountOpened")["channel"], "integration", "the core system's calls apart too");
    let v = get(&app, "/api/v1/audit/events?channel=staff&limit=1000", &compliance).await;
    assert!(v["events"].as_array().unwrap().iter().all(|r| r["actor_kind"] == "staff") && v["events"].as_array().unwrap().len() > 1);
    assert!(actor_of("PasskeyLoginSucceeded")["user_agent"].as_str().unwrap().contains("Chrome/148"));
    assert_eq!(actor_of("AccountViewedByStaff")["actor_kind"], "staff");
    assert_eq!(actor_of("AccountViewedByStaff")["actor_name"], "Sato");
    assert!(actor_of("PasskeyRegistered")["line"]["ja"].as_str().unwrap().contains("パスキー"));
    let positions: Vec<i64> = rows.iter().map(|r| r["position"].as_i64().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "global order");

    // Filters: type, actor, channel, time.
    let v = get(&app, "/api/v1/audit/events?type=EmailCodeRejected", &compliance).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 5);
    let v = get(&app, "/api/v1/audit/events?actor=staff", &compliance).await;
    assert!(v["events"].as_array().unwrap().iter().all(|r| r["actor_kind"] == "staff"));
    assert!(v["events"].as_array().unwrap().iter().any(|r| r["type"] == "AuditTrailQueried"), "compliance reads are on record");
    let v = get(&app, "/api/v1/audit/events?actor=core_system&channel=mobile_app", &compliance).await;
    assert_eq!(v["events"], json!([]));
    // Types as a list, in any case; an unknown one named; an account by its
    // login ID as by its ID; an inverted range refused.
    let v = get(&app, "/api/v1/audit/events?type=emailcoderejected,%20PASSKEYREGISTERED&limit=1000", &compliance).await;
    let listed: std::collections::BTreeSet<&str> = v["events"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(listed, ["EmailCodeRejected", "PasskeyRegistered"].into(), "{v}");
    let (s, v) = json_of(app.get("/api/v1/audit/events?type=PasskeyRegistered,PasskeyStolen,Nope", Some(&compliance)).await).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "invalid_filter"));
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("PasskeyStolen, Nope") && !message.contains("PasskeyRegistered,"), "{message}");
    let by_id = get(&app, &format!("/api/v1/audit/events?account_id={taro}&limit=1000"), &compliance).await;
    let by_login_id = get(&app, "/api/v1/audit/events?account_id=6000003&limit=1000", &compliance).await;
    assert_eq!(by_login_id["events"].as_array().map(Vec::len), by_id["events"].as_array().map(Vec::len));
    assert!(by_id["events"].as_array().unwrap().iter().all(|r| r["login_id"] == "6000003"), "rows name the login ID");
    let (s, v) = json_of(app.get("/api/v1/audit/events?account_id=0000000", Some(&compliance)).await).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "invalid_filter"), "{v}");
    let (s, v) = json_of(app.get("/api/v1/audit/events?from=2026-11-25&to=2026-11-24", Some(&compliance)).await).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "invalid_filter"), "{v}");
    let (s, v) = json_of(app.get("/api/v1/audit/events?actor=Staff%20member", Some(&compliance)).await).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "invalid_filter"), "an unknown actor is named: {v}");
    let v = get(&app, "/api/v1/audit/events?channel=STAFF&limit=1000", &compliance).await;
    assert!(!v["events"].as_array().unwrap().is_empty(), "a channel in any case");
    // The staff event records the filters as read, and its line reads them in words.
    let v = get(&app, "/api/v1/audit/events?type=AuditTrailQueried&actor=staff&limit=1000", &compliance).await;
    let lines: Vec<&str> = v["events"].as_array().unwrap().iter().map(|r| r["line"]["ja"].as_str().unwrap()).collect();
    assert!(lines.iter().any(|l| l.contains("種別 「認証コード誤り」・「パスキー登録」")), "{lines:#?}");
    let v = get(&app, "/api/v1/audit/events?to=2000-01-01", &compliance).await;
    assert_eq!(v["events"], json!([]));
    let (s, v) = json_of(app.get("/api/v1/audit/events?from=yesterday", Some(&compliance)).await).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "invalid_filter"));

    // Paging: a page, new activity, the next page carries on without gaps or repeats.
    let first = get(&app, "/api/v1/audit/events?limit=10", &compliance).await;
    app.open_account("6000099", None, false).await;
    let mut seen: Vec<i64> = first["events"].as_array().unwrap().iter().map(|r| r["position"].as_i64().unwrap()).collect();
    let mut cursor = first["next_cursor"].as_str().unwrap().to_string();
    loop {
        let page = get(&app, &format!("/api/v1/audit/events?limit=10&cursor={cursor}"), &compliance).await;
        seen.extend(page["events"].as_array().unwrap().iter().map(|r| r["position"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, (1..=seen.len() as i64).collect::<Vec<_>>());
}

async fn the_export_opens_in_japanese_excel_and_as_json_lines(app: TestApp) {
    let (taro, _, _) = scripted_activity(&app).await;
    // A User-Agent that a spreadsheet would run as a formula, on an
    // attempt recorded on the account (a wrong password).
    let res = app
        .request(Method::POST, "/api/v1/sessions/password", None)
        .header("user-agent", "=HYPERLINK(\"http://evil\")")
        .json(&json!({ "login_id": "6000003", "password": "wrong-pass-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let compliance = app.staff("Kato", "compliance").await;
    let res = app.get(&format!("/api/v1/audit/export?format=csv&account_id={taro}"), Some(&compliance)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 byte-order mark for Excel");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.starts_with("\"position\",\"at_utc\",\"at_jst\""));
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(!text.replace("\r\n", "").contains('\n'), "CRLF line ends only");
    assert!(text.contains("パスキー「Windows のパソコン（Chrome）」を登録しました"), "Japanese intact");
    assert!(text.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "formula neutralised and quoted");
    let total =
        get(&app, &format!("/api/v1/audit/events?account_id={taro}&limit=1000"), &compliance).await["events"].as_array().unwrap().len();
    assert_eq!(lines.len() - 1, total);
    // Read back by a CSV parser: Japan time to the second, in a form a
    // spreadsheet takes for a date and time, nine hours after the UTC column;
    // the login ID, the request and the event itself on every row.
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}: {header:?}"));
    let (login_id, request_id, details) = (column("login_id"), column("request_id"), column("details"));
    let mut rows = 0;
    for record in reader.records() {
        let record = record.expect("a CSV record");
        assert_eq!(&record[login_id], "6000003", "{record:?}");
        // Every request's event names it; the ledger's own (a notice) none.
        assert_eq!(record[request_id].is_empty(), &record[column("actor")] == "system", "{record:?}");
        let event: Value = serde_json::from_str(&record[details]).expect("details are the event as JSON");
        assert!(event.is_object(), "{record:?}");
        let utc = chrono::DateTime::parse_from_rfc3339(&record[1]).expect("at_utc is RFC 3339");
        let jst = chrono::NaiveDateTime::parse_from_str(&record[2], "%Y-%m-%d %H:%M:%S").expect("at_jst is a date and time");
        assert_eq!(jst, (utc.naive_utc() + chrono::Duration::hours(9)).with_nanosecond(0).unwrap(), "{record:?}");
        rows += 1;
    }
    assert_eq!(rows, total);

    let res = app.get("/api/v1/audit/export?format=jsonl", Some(&compliance)).await;
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/x-ndjson"));
    let body = res.text().await.unwrap();
    let parsed: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert!(parsed.iter().any(|r| r["type"] == "AuditTrailExported"), "the export itself is on record");
    for row in &parsed {
        let (at, utc) = (row["at"].as_str().unwrap(), row["at_utc"].as_str().unwrap());
        assert!(at.ends_with("+09:00") && utc.ends_with('Z'), "Japan time, UTC beside it: {row}");
        assert_eq!(chrono::DateTime::parse_from_rfc3339(at).unwrap(), chrono::DateTime::parse_from_rfc3339(utc).unwrap());
    }
    let (s, v) = json_of(app.get("/api/v1/audit/export?format=xlsx", Some(&compliance)).await).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "invalid_filter"));
}

async fn verify(app: &TestApp, token: &str) -> Value {
    get(app, "/api/v1/audit/verify", token).await
}

/// Lets the background projector take in everything so far (each audit
/// read is itself an event), so a tampering step does not race it.
async fn quiet(app: &TestApp) {
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
}

async fn exec(app: &TestApp, sql: &str) {
    quiet(app).await;
    sqlx::query(sql).execute(&app.app.db.any).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn verify_finds_edited_deleted_inserted_and_reordered_rows(app: TestApp) {
    scripted_activity(&app).await;
    let compliance = app.staff("Kato", "compliance").await;
    let ok = verify(&app, &compliance).await;
    assert_eq!(ok["ok"], true, "{ok}");
    // 19 customer and core-system events, and the notice of the new passkey.
    assert_eq!(ok["checked"], 20, "every event of the scripted activity: {ok}");
    let head = get(&app, "/api/v1/audit/head", &compliance).await;
    assert_eq!(head["hash"].as_str().unwrap().len(), 64);

    // Edited: a readable line rewritten.
    exec(&app, "UPDATE audit_trail SET line_en = 'nothing happened' WHERE audit_position = 7").await;
    let v = verify(&app, &compliance).await;
    assert_eq!((v["ok"].clone(), v["first_bad_position"].clone()), (json!(false), json!(7)), "{v}");
    app.app.projector.rebuild().await.unwrap();
    assert_eq!(verify(&app, &compliance).await["ok"], true);

    // Edited: the stored event, with its hash recomputed by the forger.
    let (target,): (i64,) = sqlx::query_as("SELECT MIN(audit_position) FROM audit_trail WHERE metadata LIKE '%Chrome%'")
        .fetch_one(&app.app.db.any)
        .await
        .unwrap();
    exec(&app, &format!("UPDATE audit_trail SET metadata = replace(metadata, 'Chrome', 'Firefox') WHERE audit_position = {target}")).await;
    let v = verify(&app, &compliance).await;
    assert_eq!(v["first_bad_position"], target, "{v}");
    app.app.projector.rebuild().await.unwrap();

    // Deleted.
    exec(&app, "DELETE FROM audit_trail WHERE audit_position = 5").await;
    assert_eq!(verify(&app, &compliance).await["first_bad_position"], 5);
    app.app.projector.rebuild().await.unwrap();

    // Reordered: rows 3 and 4 swapped.
    exec(&app, "UPDATE audit_trail SET audit_position = -1 WHERE audit_position = 3").await;
    exec(&app, "UPDATE audit_trail SET audit_position = 3 WHERE audit_position = 4").await;
    exec(&app, "UPDATE audit_trail SET audit_position = 4 WHERE audit_position = -1").await;
    assert_eq!(verify(&app, &compliance).await["first_bad_position"], 3);
    app.app.projector.rebuild().await.unwrap();

    // Inserted: a forged row at the end, chained correctly by the forger
    // but with no event behind it in the log.
    quiet(&app).await;
    let (position, head_hash) = ledger_projections::audit::head(&app.app.db.any).await.unwrap().unwrap();
    let head = json!({ "position": position, "hash": head_hash });
    let next = head["position"].as_i64().unwrap() + 1;
    let canonical = ledger_projections::audit::canonical_event("account", "forged", 1, "AccountOpened", "1", &json!({}), &json!({}));
    let hash = ledger_projections::audit::chain_hash(head["hash"].as_str().unwrap(), next, &canonical);
    exec(
        &app,
        &format!(
            "INSERT INTO audit_trail VALUES ({next}, 'account', 'forged', 1, 'AccountOpened', '1', 0, 'forged', 'system', 'system', '', '', '',
             'x', 'x', '{{}}', '{{}}', '{}', '{hash}', NULL, NULL)",
            head["hash"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(verify(&app, &compliance).await["first_bad_position"], next);
    app.app.projector.rebuild().await.unwrap();
    assert_eq!(verify(&app, &compliance).await["ok"], true);

    // The source log itself edited, past its triggers.
    match app.app.db.backend {
        ledger_projections::Backend::Sqlite => {
            exec(&app, "DROP TRIGGER events_no_update").await;
            exec(&app, "UPDATE events SET payload = replace(payload, 'individual', 'corporate') WHERE event_type = 'AccountOpened'").await;
        }
        ledger_projections::Backend::Postgres => {
            exec(&app, "ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete").await;
            exec(&app, "UPDATE events SET payload = jsonb_set(payload::jsonb, '{AccountOpened,holder_kind}', '\"corporate\"')::json WHERE event_type = 'AccountOpened'").await;
        }
    }
    let v = verify(&app, &compliance).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad_position"], 1);
}

async fn signals_of(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    get(app, &format!("/api/v1/signals?{query}"), token).await["signals"].as_array().unwrap().clone()
}

async fn the_expected_signals_are_raised_with_evidence_and_reviewed(app: TestApp) {
    let (_, [family_a, family_b], victim) = scripted_activity(&app).await;
    let compliance = app.staff("Kato", "compliance").await;
    let all = signals_of(&app, &compliance, "").await;
    let kinds: Vec<&str> = all.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["many_wrong_codes", "shared_email"], "exactly the expected signals: {all:#?}");

    let shared = all.iter().find(|s| s["kind"] == "shared_email").unwrap();
    let mut accounts: Vec<&str> = shared["accounts"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    accounts.sort();
    let mut expected = vec![family_a.as_str(), family_b.as_str()];
    expected.sort();
    assert_eq!(accounts, expected);
    let evidence: Vec<&str> = shared["evidence"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(evidence, vec!["AccountOpened", "AccountOpened"]);
    let brute = all.iter().find(|s| s["kind"] == "many_wrong_codes").unwrap();
    assert_eq!(brute["accounts"], json!([victim]));
    assert_eq!(brute["evidence"].as_array().unwrap().len(), 5);
    assert_eq!(brute["severity"], "high");
    // What an analyst acts on: the accounts by login ID and holder kind,
    // each evidence event with its time, address, device and line.
    let mut details: Vec<(String, String)> = shared["account_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["login_id"].as_str().unwrap().to_string(), a["holder_kind"].as_str().unwrap().to_string()))
        .collect();
    details.sort();
    assert_eq!(details, [("6000001".to_string(), "individual".to_string()), ("6000002".to_string(), "individual".to_string())]);
    for entry in brute["evidence"].as_array().unwrap() {
        assert!(entry["at"].as_str().unwrap().ends_with("+09:00"), "{entry}");
        assert_eq!(entry["ip"], "127.0.0.1", "{entry}");
        assert!(entry["user_agent"].as_str().unwrap().contains("Chrome"), "{entry}");
        assert!(entry["line"]["ja"].as_str().unwrap().contains("誤った認証コード"), "{entry}");
    }

    // Support sees the shared address on the account.
    let support = app.staff("Sato", "support").await;
    let view = get(&app, &format!("/api/v1/staff/accounts/{family_a}"), &support).await;
    assert_eq!(view["signals"][0]["kind"], "shared_email");

    // Review by compliance is an event, and filters follow it.
    let id = brute["signal_id"].as_str().unwrap();
    let path = format!("/api/v1/signals/{id}/review");
    let (s, v) =
        json_of(app.post(&path, json!({ "outcome": "confirmed", "note": "customer did not request codes" }), Some(&compliance)).await)
            .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signal"]["status"], "confirmed");
    // A second review keeps the first: the signal lists both.
    let (s, v) =
        json_of(app.post(&path, json!({ "outcome": "confirmed", "note": "the customer confirmed by phone" }), Some(&compliance)).await)
            .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let reviewed = signals_of(&app, &compliance, "kind=many_wrong_codes").await;
    let notes: Vec<&str> = reviewed[0]["reviews"].as_array().unwrap().iter().map(|r| r["note"].as_str().unwrap()).collect();
    assert_eq!(notes, ["customer did not request codes", "the customer confirmed by phone"]);
    assert_eq!(reviewed[0]["reviews"][0]["reviewer_name"], "Kato");
    assert_eq!(signals_of(&app, &compliance, "status=open").await.len(), 1);
    assert_eq!(signals_of(&app, &compliance, "status=confirmed&kind=many_wrong_codes").await.len(), 1);
    // An account by its login ID; an unknown kind or login ID named.
    assert_eq!(signals_of(&app, &compliance, "account_id=6000004").await.len(), 1);
    for query in ["kind=bogus", "account_id=garbage"] {
        let (s, v) = json_of(app.get(&format!("/api/v1/signals?{query}"), Some(&compliance)).await).await;
        assert_eq!((s, v["error"]["code"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "invalid_filter"), "{query}: {v}");
    }
    let (s, _) =
        json_of(app.post("/api/v1/signals/nope/review", json!({ "outcome": "dismissed", "note": "x" }), Some(&compliance)).await).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let reviews = get(&app, "/api/v1/audit/events?type=SignalReviewed", &compliance).await;
    assert_eq!(reviews["events"][0]["event"]["SignalReviewed"]["note"], "customer did not request codes");

    // An address changed to one already in use raises it again.
    let single = app.open_account("6000010", Some("own@example.jp"), false).await;
    assert_eq!(signals_of(&app, &compliance, "kind=shared_email").await.len(), 1, "a distinct address raises nothing");
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/admin/accounts/{single}/email"),
            Some(json!({ "email": "taro@example.jp" })),
            Some(&app.admin_token),
            "web",
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(signals_of(&app, &compliance, "kind=shared_email").await.len(), 2);
}

/// The one `shared_email` signal involving `account`.
async fn shared_of(app: &TestApp, token: &str, account: &str) -> Value {
    let found = signals_of(app, token, &format!("kind=shared_email&account_id={account}")).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    found[0].clone()
}

async fn a_shared_address_is_graded_by_holder_kind_and_grows_with_what_the_accounts_do(app: TestApp) {
    let compliance = app.staff("Kato", "compliance").await;
    // A family sharing one address, as seed 000's family accounts do: low.
    let parent = app.open_account_of("family", "8100001", Some("yamada@example.jp"), false).await;
    app.open_account_of("family", "8100002", Some("yamada@example.jp"), false).await;
    let family = shared_of(&app, &compliance, &parent).await;
    assert_eq!(family["severity"], "low", "{family}");
    // A company's two accounts: low too; an individual's address on a
    // family account: the gravest kind counts (medium).
    let company = app.open_account_of("corporate", "8200001", Some("kaisha@example.jp"), false).await;
    app.open_account_of("corporate", "8200002", Some("kaisha@example.jp"), false).await;
    assert_eq!(shared_of(&app, &compliance, &company).await["severity"], "low");
    let person = app.open_account("8300001", Some("hanako@example.jp"), false).await;
    app.open_account_of("family", "8300002", Some("hanako@example.jp"), false).await;
    assert_eq!(shared_of(&app, &compliance, &person).await["severity"], "medium");

    // The family then tries to register a passkey (seed 000 refuses it):
    // the signal grows a step each time, with the attempt as evidence.
    let (_, res) = app.start_registration("8100002", "pass-word-1").await;
    let (s, v) = json_of(res).await;
    assert_eq!((s, v["error"]["code"].as_str().unwrap_or_default()), (StatusCode::CONFLICT, "email_shared_with_other_accounts"), "{v}");
    let grown = shared_of(&app, &compliance, &parent).await;
    assert_eq!(grown["severity"], "medium", "{grown}");
    let evidence: Vec<&str> = grown["evidence"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(evidence, ["AccountOpened", "AccountOpened", "RegistrationRefused"]);
    assert!(grown["summary"]["en"].as_str().unwrap().ends_with("passkey registrations or attempts on these accounts: 1."), "{grown}");
    assert!(grown["summary"]["ja"].as_str().unwrap().contains("登録の試み：1回"), "{grown}");
    app.start_registration("8100001", "pass-word-1").await;
    let grown = shared_of(&app, &compliance, &parent).await;
    assert_eq!(grown["severity"], "high", "{grown}");
    assert_eq!(grown["evidence"].as_array().unwrap().len(), 4);
    assert!(grown["summary"]["en"].as_str().unwrap().ends_with(": 2."), "{grown}");
    // The other pairs are untouched.
    assert_eq!(shared_of(&app, &compliance, &company).await["severity"], "low");

    // A company account's address changed into one a family account
    // holds: a step graver than the kinds alone (low -> medium).
    let mori = app.open_account_of("family", "8400001", Some("mori@example.jp"), false).await;
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/admin/accounts/{company}/email"),
            Some(json!({ "email": "mori@example.jp" })),
            Some(&app.admin_token),
            "web",
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let changed = shared_of(&app, &compliance, &mori).await;
    assert_eq!(changed["evidence"][0]["type"], "EmailAddressChanged", "{changed}");
    assert_eq!(changed["severity"], "medium", "{changed}");

    // One open signal per address: a third account on the family's address
    // joins the family's signal instead of raising another.
    let third = app.open_account_of("family", "8100003", Some("yamada@example.jp"), false).await;
    let joined = shared_of(&app, &compliance, &third).await;
    assert_eq!(joined["signal_id"], grown["signal_id"], "{joined}");
    assert_eq!(joined["accounts"].as_array().unwrap().len(), 3);
    assert_eq!(joined["evidence"].as_array().unwrap().len(), 5);
    assert!(joined["summary"]["en"].as_str().unwrap().starts_with("The same e-mail address is registered on 3 accounts"), "{joined}");
    assert!(joined["summary"]["en"].as_str().unwrap().ends_with(": 2."), "the attempts are still counted: {joined}");

    // An account that left an address takes no old signal to its new one:
    // the new sharing is a signal of its own.
    let left = app.open_account("8500001", Some("se3@example.jp"), false).await;
    app.open_account("8500002", Some("se3@example.jp"), false).await;
    let res = app
        .send(
            Method::PUT,
            &format!("/api/v1/admin/accounts/{left}/email"),
            Some(json!({ "email": "se4@example.jp" })),
            Some(&app.admin_token),
            "web",
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let newcomer = app.open_account("8500003", Some("se4@example.jp"), false).await;
    let new = shared_of(&app, &compliance, &newcomer).await;
    let mut accounts: Vec<&str> = new["accounts"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    accounts.sort();
    let mut expected = vec![left.as_str(), newcomer.as_str()];
    expected.sort();
    assert_eq!(accounts, expected, "{new}");

    // A reviewed signal stays as reviewed: later attempts do not reopen or grow it.
    let id = grown["signal_id"].as_str().unwrap();
    let (s, _) = json_of(
        app.post(&format!("/api/v1/signals/{id}/review"), json!({ "outcome": "dismissed", "note": "a real family" }), Some(&compliance))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    app.start_registration("8100002", "pass-word-1").await;
    let reviewed = signals_of(&app, &compliance, &format!("kind=shared_email&account_id={parent}")).await;
    let same = reviewed.iter().find(|s| s["signal_id"] == id).unwrap();
    assert_eq!((same["severity"].as_str(), same["evidence"].as_array().unwrap().len()), (Some("high"), 5));

    // Raised, joined, grown and reviewed alike by a rebuild.
    app.assert_rebuild_matches_live().await;
}

async fn the_adoption_report_matches_the_activity(app: TestApp) {
    // Two customers register; one logs in twice by passkey, one by
    // cross-device sign-in and declines a local passkey; one deletes.
    let a_account = app.open_account("7000001", Some("a@example.jp"), false).await;
    app.open_account("7000002", Some("b@example.jp"), false).await;
    app.open_account("7000003", Some("c@example.jp"), false).await;
    let mut a = SoftPasskey::new("localhost", ORIGIN);
    let mut b = SoftPasskey::new("localhost", ORIGIN);
    app.register("7000001", "a@example.jp", &mut a).await;
    app.register("7000002", "b@example.jp", &mut b).await;
    app.passkey_login(&mut a).await;
    app.passkey_login(&mut a).await;
    b.attachment = "cross-platform";
    let (_, v) = json_of(app.passkey_login(&mut b).await).await;
    let b_token = v["session"]["token"].as_str().unwrap().to_string();
    app.post("/api/v1/me/passkeys/decline-local", json!({}), Some(&b_token)).await;
    let res = app
        .send(Method::DELETE, "/api/v1/me/passkeys", Some(json!({ "transaction_password": "trade-pass-1" })), Some(&b_token), "web")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The third logs in with password + code.
    let (_, v) =
        json_of(app.post("/api/v1/sessions/password", json!({ "login_id": "7000003", "password": "pass-word-1" }), None).await).await;
    let flow = v["flow_id"].as_str().unwrap();
    let code = app.code_for("c@example.jp");
    assert_eq!(
        app.post(&format!("/api/v1/sessions/password/{flow}/otp"), json!({ "code": code }), None).await.status(),
        StatusCode::CREATED
    );

    // Two are refused registration: whom the brokerage should contact.
    app.open_account("7000004", Some("temp@example.jp"), true).await;
    let (_, res) = app.start_registration("7000004", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    app.open_account("7000005", Some("a@example.jp"), false).await;
    let (_, res) = app.start_registration("7000005", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // Support deletes the first customer's passkey (a lost phone): counted
    // apart, on the staff's own channel.
    let support = app.staff("Sato", "support").await;
    let revoke = format!("/api/v1/staff/accounts/{a_account}/passkeys/revoke");
    assert_eq!(app.post(&revoke, json!({ "reason": "device_lost" }), Some(&support)).await.status(), StatusCode::OK);

    let compliance = app.staff("Kato", "compliance").await;
    let report = get(&app, "/api/v1/reports/adoption", &compliance).await;
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{report:#}");
    let by_support = days.iter().find(|d| d["channel"] == "staff").expect("a row for the staff channel");
    assert_eq!((by_support["passkeys_deleted_by_support"].as_i64(), by_support["passkeys_deleted"].as_i64()), (Some(1), Some(0)));
    let d = days.iter().find(|d| d["channel"] == "web").expect("a row for the web");
    assert_eq!(d["passkeys_deleted_by_support"], 0);
    assert_eq!(d["registrations_refused"], json!({ "email_shared_with_other_accounts": 1, "temporary_password": 1 }), "{d}");
    // The period's totals per channel, then all together.
    let totals = report["totals"].as_array().unwrap();
    let all = totals.last().unwrap();
    assert_eq!((all["channel"].as_str(), all["registrations"].as_i64(), all["active_accounts"].as_i64()), (Some("all"), Some(2), Some(3)));
    assert_eq!(all["passkeys_deleted_by_support"], 1);
    // Whom to contact: refused and still without a passkey, with the reason in words.
    let contact: Vec<(&str, &str)> =
        report["to_contact"].as_array().unwrap().iter().map(|c| (c["login_id"].as_str().unwrap(), c["reason"].as_str().unwrap())).collect();
    assert_eq!(contact, [("7000005", "email_shared_with_other_accounts"), ("7000004", "temporary_password")]);
    assert!(report["to_contact"][1]["reason_words"]["ja"].as_str().unwrap().contains("仮パスワード"));
    assert_eq!(d["registrations"], 2);
    assert_eq!(d["logins"]["passkey"], 2);
    assert_eq!(d["logins"]["cross_device"], 1);
    assert_eq!(d["logins"]["password_and_email_code"], 1);
    assert_eq!(d["cross_device_sign_ins"], 1);
    assert_eq!(d["local_passkeys_added"], 0);
    assert_eq!(d["local_passkeys_declined"], 1);
    assert_eq!(d["passkeys_deleted"], 1);
    assert_eq!(d["active_accounts"], 3);
    assert_eq!(d["passkey_login_accounts"], 2);
    assert!((d["passkey_login_share"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    let (s, _) = json_of(app.get("/api/v1/reports/adoption?from=2026/01/01", Some(&compliance)).await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = json_of(app.get("/api/v1/reports/adoption?from=2026-12-02&to=2026-12-01", Some(&compliance)).await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an inverted period");
}

async fn every_staff_endpoint_refuses_the_wrong_callers(app: TestApp) {
    let account = app.open_account("6100001", Some("m@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let customer = app.register("6100001", "m@example.jp", &mut key).await["session"]["token"].as_str().unwrap().to_string();
    let support = app.staff("S", "support").await;
    let compliance = app.staff("C", "compliance").await;
    let admin = app.admin_token.clone();
    let body = |v: Value| Some(v);
    // (method, path, body, roles allowed)
    let endpoints: Vec<(Method, String, Option<Value>, &[&str])> = vec![
        (Method::GET, "/api/v1/staff/accounts?q=6100001".into(), None, &["support", "compliance", "admin"]),
        (Method::GET, format!("/api/v1/staff/accounts/{account}"), None, &["support", "compliance", "admin"]),
        (Method::GET, format!("/api/v1/staff/accounts/{account}/history"), None, &["support", "compliance", "admin"]),
        (Method::POST, format!("/api/v1/staff/accounts/{account}/unlock"), body(json!({ "reason": "test" })), &["support", "admin"]),
        (Method::GET, "/api/v1/audit/events".into(), None, &["compliance", "admin"]),
        (Method::GET, "/api/v1/audit/export?format=jsonl".into(), None, &["compliance", "admin"]),
        (Method::GET, "/api/v1/audit/verify".into(), None, &["compliance", "admin"]),
        (Method::GET, "/api/v1/audit/head".into(), None, &["compliance", "admin"]),
        (Method::GET, "/api/v1/signals".into(), None, &["compliance", "admin"]),
        (
            Method::POST,
            "/api/v1/signals/none/review".into(),
            body(json!({ "outcome": "dismissed", "note": "n" })),
            &["compliance", "admin"],
        ),
        (Method::GET, "/api/v1/reports/adoption".into(), None, &["compliance", "admin"]),
        (Method::PUT, format!("/api/v1/admin/accounts/{account}/email-status"), body(json!({ "reachable": true })), &["admin"]),
        (Method::PUT, format!("/api/v1/admin/accounts/{account}/email"), body(json!({ "email": "m@example.jp" })), &["admin"]),
        (
            Method::PUT,
            format!("/api/v1/admin/accounts/{account}/password"),
            body(json!({ "password": "pass-word-1", "temporary": false })),
            &["admin"],
        ),
        (
            Method::POST,
            format!("/api/v1/staff/accounts/{account}/passkeys/revoke"),
            body(json!({ "reason": "device_replaced" })),
            &["support", "admin"],
        ),
    ];
    let mut refused = 0;
    for (method, path, body, allowed) in &endpoints {
        for (who, token) in [("anonymous", None), ("customer", Some(customer.as_str()))] {
            let res = app.send(method.clone(), path, body.clone(), token, "web").await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{who} on {method} {path}");
        }
        for (role, token) in [("admin", &admin), ("support", &support), ("compliance", &compliance)] {
            let status = app.send(method.clone(), path, body.clone(), Some(token), "web").await.status();
            if allowed.contains(&role) {
                // 409: the account has no lock to lift (`not_locked`).
                let answered = status.is_success() || status == StatusCode::NOT_FOUND || status == StatusCode::CONFLICT;
                assert!(answered, "{role} may call {method} {path}: {status}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} may not call {method} {path}");
                refused += 1;
            }
        }
    }
    // Opening accounts: admin only.
    let open = json!({ "login_id": "6100002", "holder_kind": "individual", "password": "pass-word-1", "password_temporary": false, "transaction_password": "trade-pass-1" });
    for token in [&support, &compliance] {
        assert_eq!(app.post("/api/v1/admin/accounts", open.clone(), Some(token)).await.status(), StatusCode::FORBIDDEN);
        refused += 1;
    }
    assert_eq!(app.post("/api/v1/admin/accounts", open, None).await.status(), StatusCode::UNAUTHORIZED);
    // Every refusal for a role is on record, naming what was asked for.
    let trail = get(&app, "/api/v1/audit/events?type=StaffAccessRefused&limit=500", &compliance).await;
    let events = trail["events"].as_array().unwrap();
    assert_eq!(events.len(), refused, "{trail}");
    let asked = events
        .iter()
        .find(|e| e["event"]["StaffAccessRefused"] == json!({ "role": "support", "request": "GET /api/v1/audit/events" }))
        .expect("on record");
    assert!(asked["line"]["ja"].as_str().unwrap().contains("サポートの役割では GET /api/v1/audit/events を利用できない"), "{asked}");
}

async fn the_read_models_rebuild_to_what_live_updating_produced(app: TestApp) {
    scripted_activity(&app).await;
    // The pair sharing an address tries to register: its signal grows.
    app.start_registration("6000001", "pass-word-1").await;
    app.start_registration("6000002", "pass-word-1").await;
    let compliance = app.staff("Kato", "compliance").await;
    let signals = signals_of(&app, &compliance, "").await;
    assert!(signals.iter().any(|s| s["kind"] == "shared_email" && s["severity"] == "high"), "{signals:#?}");
    let id = signals[0]["signal_id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/signals/{id}/review"),
        json!({ "outcome": "dismissed", "note": "family accounts, known" }),
        Some(&compliance),
    )
    .await;
    app.start_registration("6000001", "pass-word-1").await;
    get(&app, "/api/v1/reports/adoption", &compliance).await;
    // Reading the head is itself on record: read it before the live dump.
    let head = get(&app, "/api/v1/audit/head", &compliance).await;
    app.assert_rebuild_matches_live().await;
    let (hash,): (String,) = sqlx::query_as("SELECT hash FROM audit_trail WHERE audit_position = $1")
        .bind(head["position"].as_i64().unwrap())
        .fetch_one(&app.app.db.any)
        .await
        .unwrap();
    assert_eq!(hash, head["hash"].as_str().unwrap(), "the anchored head survives a rebuild");

    // After a restart the projector carries on: no event skipped or repeated.
    let app = app.restart().await;
    app.open_account("6000020", Some("after@example.jp"), false).await;
    let v = verify(&app, &compliance).await;
    assert_eq!(v["ok"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_thresholds_come_from_configuration() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.signals.wrong_codes = ledger_projections::signals::Threshold { count: 2, window_secs: 60 }
    })
    .await
    else {
        return;
    };
    app.open_account("6200001", Some("t@example.jp"), false).await;
    let (flow, _) = app.start_registration("6200001", "pass-word-1").await;
    app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": "000000" }), None).await;
    let compliance = app.staff("Kato", "compliance").await;
    assert!(signals_of(&app, &compliance, "kind=many_wrong_codes").await.is_empty());
    app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": "000001" }), None).await;
    assert_eq!(signals_of(&app, &compliance, "kind=many_wrong_codes").await.len(), 1);
    // A third in the window: the same signal, counting three.
    app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": "000002" }), None).await;
    let signals = signals_of(&app, &compliance, "kind=many_wrong_codes").await;
    assert_eq!(signals.len(), 1, "{signals:#?}");
    assert_eq!(signals[0]["evidence"].as_array().unwrap().len(), 3);
    assert!(signals[0]["summary"]["ja"].as_str().unwrap().contains("3回"), "{}", signals[0]["summary"]);
}

async fn attempts_that_belong_to_no_account_are_in_the_trail(app: TestApp) {
    // A login ID no account has: answered as a wrong password, recorded.
    let res = app.post("/api/v1/sessions/password", json!({ "login_id": "0000000", "password": "guess-guess" }), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (_, res) = app.start_registration("0000001", "guess-guess").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A passkey no account holds.
    let mut stranger = SoftPasskey::new("localhost", ORIGIN);
    stranger.user_handle = vec![1, 2, 3];
    assert_eq!(app.passkey_login(&mut stranger).await.status(), StatusCode::UNAUTHORIZED);

    let compliance = app.staff("Kato", "compliance").await;
    let rows = get(&app, "/api/v1/audit/events?actor=anonymous", &compliance).await["events"].as_array().unwrap().clone();
    let seen: Vec<(String, String)> =
        rows.iter().map(|r| (r["type"].as_str().unwrap().to_string(), r["line"]["en"].as_str().unwrap().to_string())).collect();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert!(seen[0].1.contains("0000000") && seen[1].1.contains("0000001"), "{seen:#?}");
    assert_eq!(seen[2].0, "UnknownCredentialRejected");
    assert!(rows.iter().all(|r| r["account_id"].is_null() && r["stream"] == "system"));
    assert!(rows.iter().all(|r| !r["event"].to_string().contains("guess-guess")), "the typed password is not recorded");
    assert_eq!(verify(&app, &compliance).await["ok"], true);

    // Login IDs of any shape are attempts too: answered as a wrong
    // password, and each recorded, bounded and with what is invisible escaped.
    let long = "9".repeat(100);
    let typed = ["山田太郎", "＝1+1", "1234\n567", "12 34", "\u{3000}1234567\u{200b}", long.as_str()];
    for login_id in typed {
        let res = app.post("/api/v1/sessions/password", json!({ "login_id": login_id, "password": "guess-guess" }), None).await;
        let (status, v) = json_of(res).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")), "{login_id:?}");
    }
    let rows =
        get(&app, "/api/v1/audit/events?type=UnknownLoginIdRejected&limit=100", &compliance).await["events"].as_array().unwrap().clone();
    let recorded: Vec<&str> = rows.iter().map(|r| r["event"]["UnknownLoginIdRejected"]["login_id"].as_str().unwrap()).collect();
    let expected = ["0000000", "0000001", "山田太郎", "＝1+1", "1234\\u{a}567", "12 34", "1234567\\u{200b}"];
    assert_eq!(&recorded[..expected.len()], expected, "{recorded:?}");
    let bounded = recorded.last().unwrap();
    assert_eq!((bounded.chars().count(), bounded.ends_with('…')), (65, true), "{bounded}");
    let line = rows.iter().find(|r| r["event"].to_string().contains("1234\\\\u{a}567")).map(|r| r["line"]["ja"].clone());
    assert!(line.is_some_and(|l| !l.as_str().unwrap().contains('\n')), "no line break in a line");
}
