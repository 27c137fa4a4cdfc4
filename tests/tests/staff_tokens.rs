//! Staff tokens: expiring, revocable, rotated with the core system's token
//! file; every use of a revoked or expired one refused and on record.

use ledger_api::secrets::ExposeSecret;
use ledger_tests::harness::{error_code, json_of};
use ledger_tests::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    a_revoked_staff_token_is_refused_and_each_use_is_recorded,
    a_staff_token_expires_after_its_days,
    replacing_the_admin_token_file_rotates_the_core_systems_token,
);

/// The staff stream's event types and payloads for `staff_id`, oldest first.
async fn staff_events(app: &TestApp, staff_id: &str) -> Vec<(String, Value)> {
    let sql = match app.app.db.backend {
        ledger_projections::Backend::Sqlite => {
            "SELECT event_type, metadata FROM events WHERE aggregate_type = 'staff' AND aggregate_id = $1 ORDER BY sequence"
        }
        ledger_projections::Backend::Postgres => {
            "SELECT event_type, metadata::text FROM events WHERE aggregate_type = 'staff' AND aggregate_id = $1 ORDER BY sequence"
        }
    };
    let rows: Vec<(String, String)> = sqlx::query_as(sql).bind(staff_id).fetch_all(&app.app.db.any).await.unwrap();
    rows.into_iter().map(|(t, m)| (t, serde_json::from_str(&m).unwrap())).collect()
}

async fn staff_id_of(app: &TestApp, name: &str) -> String {
    let members = app.app.store.staff_members().await.unwrap();
    members.into_iter().find(|m| m.name == name).map(|m| m.staff_id).expect("the member")
}

async fn a_revoked_staff_token_is_refused_and_each_use_is_recorded(app: TestApp) {
    let token = app.staff("Sato", "support").await;
    let search = "/api/v1/staff/accounts?q=none@example.jp";
    assert_eq!(app.get(search, Some(&token)).await.status(), StatusCode::OK);
    let sato = staff_id_of(&app, "Sato").await;
    // The operator is named by a staff member the ledger knows (`--as`),
    // never by an environment variable alone.
    use ledger_api::cli::Operator;
    app.staff("Ops Lead", "admin").await;
    let lead = staff_id_of(&app, "Ops Lead").await;
    let unknown = Operator::named(&app.app, Some("no-such-member")).await.err().expect("refused");
    assert!(unknown.contains("--as no-such-member"), "{unknown}");
    let unnamed = Operator::named(&app.app, None).await.expect("outside production, the process's user");
    assert!(unnamed.actor.starts_with("operator:uid:"), "{}", unnamed.actor);
    let operator = Operator::named(&app.app, Some(&lead)).await.unwrap();
    ledger_api::cli::revoke_staff_token(&app.app, &sato, &operator).await.unwrap();
    let again = ledger_api::cli::revoke_staff_token(&app.app, &sato, &operator).await.unwrap_err();
    assert!(again.contains("no staff member") && again.contains(&sato), "{again}");
    let revoked_as = Operator::named(&app.app, Some(&sato)).await.err().expect("a revoked member runs nothing");
    assert!(revoked_as.contains("token in force"), "{revoked_as}");

    for _ in 0..2 {
        let (s, v) = json_of(app.get(search, Some(&token)).await).await;
        assert_eq!((s, error_code(&v)), (StatusCode::UNAUTHORIZED, "token_revoked"), "{v}");
        assert!(v["error"]["message_ja"].as_str().unwrap().contains("失効"), "{v}");
    }
    let events = staff_events(&app, &sato).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["StaffTokenRevoked", "StaffTokenRefused", "StaffTokenRefused"]);
    assert_eq!(events[0].1["actor"], format!("staff:{lead}"), "{:?}", events[0]);
    assert_eq!(events[0].1["channel"], "cli", "{:?}", events[0]);
    assert_eq!(events[1].1["ip"], "127.0.0.1", "where the revoked token came from");
    // The trail says so in plain words, and the listing shows the state.
    let listing = ledger_api::cli::list_staff(&app.app).await.unwrap();
    let line = listing.lines().find(|l| l.contains(&sato)).unwrap();
    assert!(line.contains("Sato") && line.contains("support") && line.contains("revoked"), "{listing}");
    assert!(!listing.contains(&token), "no token in the listing");
}

async fn a_staff_token_expires_after_its_days(app: TestApp) {
    let token = ledger_api::cli::add_staff_for(&app.app, "Ito", "compliance", 1).await.unwrap().1.expose_secret().to_string();
    let heads = "/api/v1/audit/head";
    assert_eq!(app.get(heads, Some(&token)).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::hours(23));
    assert_eq!(app.get(heads, Some(&token)).await.status(), StatusCode::OK, "in force for its whole day");
    app.clock.advance(chrono::Duration::hours(1));
    let (s, v) = json_of(app.get(heads, Some(&token)).await).await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNAUTHORIZED, "token_expired"), "{v}");
    let ito = staff_id_of(&app, "Ito").await;
    let types: Vec<String> = staff_events(&app, &ito).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(types.last().map(String::as_str), Some("StaffTokenRefused"), "{types:?}");
    let listing = ledger_api::cli::list_staff(&app.app).await.unwrap();
    assert!(listing.lines().any(|l| l.contains(&ito) && l.contains("expired")), "{listing}");
    // A default token lasts 90 days.
    let lasting = app.staff("Kato", "compliance").await;
    app.clock.advance(chrono::Duration::days(89));
    assert_eq!(app.get(heads, Some(&lasting)).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::days(1));
    assert_eq!(app.get(heads, Some(&lasting)).await.status(), StatusCode::UNAUTHORIZED);
}

async fn replacing_the_admin_token_file_rotates_the_core_systems_token(app: TestApp) {
    let dir = app.data_dir.join("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("admin.token");
    let (old, new) = ("an-old-core-system-token-of-forty-chars-x", "a-new-core-system-token-of-forty-chars-xx");
    let open = |token: &'static str, login_id: &'static str| {
        let body = json!({ "login_id": login_id, "holder_kind": "individual", "email": null, "password": "pass-word-1",
                           "password_temporary": false, "transaction_password": "trade-pass-1" });
        let app = &app;
        async move { json_of(app.post("/api/v1/admin/accounts", body, Some(token)).await).await }
    };
    std::fs::write(&path, old).unwrap();
    ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap();
    assert_eq!(open(old, "7200001").await.0, StatusCode::CREATED);
    std::fs::write(&path, new).unwrap();
    ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap();
    assert_eq!(open(new, "7200002").await.0, StatusCode::CREATED);
    let (s, v) = open(old, "7200003").await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNAUTHORIZED, "token_revoked"), "{v}");
    // A replica restarted with the file of before the rotation does not
    // undo it: it refuses to start, and the new token stays in force.
    std::fs::write(&path, old).unwrap();
    let refused = ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap_err();
    assert!(refused.contains("was revoked") && !refused.contains(old), "{refused}");
    // The rotation is on record in the old token's stream.
    let core: Vec<String> = app
        .app
        .store
        .staff_members()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.name == "core-system" && m.revoked_at.is_some())
        .map(|m| m.staff_id)
        .collect();
    assert_eq!(core.len(), 1);
    assert_eq!(staff_events(&app, &core[0]).await.first().map(|(t, _)| t.as_str()), Some("StaffTokenRevoked"));
    assert_eq!(open(new, "7200005").await.0, StatusCode::CREATED);
    // The core system's token does not expire: it is rotated by its file.
    app.clock.advance(chrono::Duration::days(400));
    assert_eq!(open(new, "7200004").await.0, StatusCode::CREATED);
}

/// In production a recorded command must say which staff member runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_production_a_recorded_command_names_its_staff_member() {
    let Some(app) = TestApp::spawn_with(ledger_tests::Backend::Sqlite, |c| c.run_mode = ledger_api::config::RunMode::Production).await
    else {
        return;
    };
    let refused = ledger_api::cli::Operator::named(&app.app, None).await.err().expect("refused without --as");
    assert!(refused.contains("--as <staff_id>"), "{refused}");
    app.staff("Lead", "admin").await;
    let lead = staff_id_of(&app, "Lead").await;
    let operator = ledger_api::cli::Operator::named(&app.app, Some(&lead)).await.expect("a staff member in force");
    assert_eq!(operator.actor, format!("staff:{lead}"));
    // The core system's integration token names no one.
    let file = app.data_dir.join("admin.token");
    std::fs::write(&file, "c".repeat(40)).unwrap();
    ledger_api::cli::provision_admin_token(&app.app, &file).await.unwrap();
    let core = staff_id_of(&app, "core-system").await;
    let refused = ledger_api::cli::Operator::named(&app.app, Some(&core)).await.err().expect("refused");
    assert!(refused.contains("not a person"), "{refused}");
}
