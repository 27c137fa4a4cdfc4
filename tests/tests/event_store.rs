//! The event store and the projector on both databases: append-only for
//! real, no lost events under concurrency, global order under out-of-order
//! commits, snapshots, and rebuilds identical to live updating.

use std::sync::Arc;

use ledger_api::http::extract::RequestMeta;
use ledger_domain::{AccountCommand, Channel};
use ledger_projections::projector::read_events_after;
use ledger_projections::read_models::TABLES;
use ledger_tests::harness::ORIGIN;
use ledger_tests::{Backend, SoftPasskey, TestApp};

ledger_tests::on_both_databases!(
    the_database_itself_refuses_to_change_or_delete_an_event,
    concurrent_commands_on_one_account_never_lose_an_event,
    a_rebuild_produces_exactly_what_live_updating_produced,
    the_views_keep_serving_while_a_rebuild_runs_and_it_takes_what_came_meanwhile,
    a_snapshotted_account_loads_the_same_as_a_replayed_one,
    an_event_of_an_older_version_is_read_as_it_meant,
    a_command_whose_events_straddle_a_snapshot_loads_with_all_of_them,
    a_database_migrated_before_the_migrator_is_taken_over,
    an_account_event_without_a_time_is_a_named_failure_not_dated_1970,
);

fn meta() -> RequestMeta {
    RequestMeta {
        channel: Channel::Web,
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
        request_id: "r".into(),
        hints: Default::default(),
    }
}

async fn the_database_itself_refuses_to_change_or_delete_an_event(app: TestApp) {
    let account = app.open_account("8000001", Some("ao@example.jp"), false).await;
    let update = sqlx::query("UPDATE events SET payload = '{}' WHERE aggregate_id = $1").bind(&account).execute(&app.app.db.any).await;
    assert!(update.is_err(), "UPDATE on events must fail");
    let delete = sqlx::query("DELETE FROM events WHERE aggregate_id = $1").bind(&account).execute(&app.app.db.any).await;
    assert!(delete.is_err(), "DELETE on events must fail");
    assert_eq!(app.events_of(&account).await.len(), 1);
}

async fn concurrent_commands_on_one_account_never_lose_an_event(app: TestApp) {
    let account = app.open_account("8000002", Some("race@example.jp"), false).await;
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..24 {
        let (app, account) = (app.clone(), account.clone());
        tasks.push(tokio::spawn(async move {
            let now = app.clock.now();
            let command = AccountCommand::RecordStaffRead { staff: staff_member(n), view: "status".into(), at: now };
            app.app.ledger.execute(&account, command, meta().metadata("customer", now)).await
        }));
    }
    for t in tasks {
        if let Err(e) = t.await.expect("task") {
            panic!("a command did not land: {e}");
        }
    }
    let events = app.events_of(&account).await;
    assert_eq!(events.iter().filter(|(t, _, _)| t == "AccountViewedByStaff").count(), 24);
}

async fn a_rebuild_produces_exactly_what_live_updating_produced(app: TestApp) {
    app.open_account("8000003", Some("one@example.jp"), false).await;
    app.open_account("8000004", Some("shared@example.jp"), false).await;
    app.open_account("8000005", Some("shared@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    app.register("8000003", "one@example.jp", &mut key).await;
    app.passkey_login(&mut key).await;
    app.start_registration("8000004", "wrong-password").await;
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let live = app.dump_tables(TABLES).await;
    assert!(live.contains("Windows のパソコン（Chrome）"));
    let applied = app.app.projector.rebuild().await.unwrap();
    assert!(applied >= 10);
    assert_eq!(app.dump_tables(TABLES).await, live);
}

/// A rebuild builds beside the live read models: paused after its first
/// batch, the support desk still reads the account and a customer logs in;
/// the switched-in views hold that login, equal an in-place rebuild, and
/// nothing of the rebuild's own tables is left. The same pause in place
/// finds the views empty (what the default avoids).
async fn the_views_keep_serving_while_a_rebuild_runs_and_it_takes_what_came_meanwhile(app: TestApp) {
    use ledger_projections::projector::{Progress, RebuildMode};
    let account = app.open_account("8000103", Some("during@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    app.register("8000103", "during@example.jp", &mut key).await;
    let support = app.staff("Ito", "support").await;
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    async fn staff_view(app: &TestApp, account: &str, support: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let res = app.get(&format!("/api/v1/staff/accounts/{account}"), Some(support)).await;
        (res.status(), res.json::<serde_json::Value>().await.unwrap_or_default())
    }
    let logins_before = staff_view(&app, &account, &support).await.1["passkeys"][0]["last_used_at"].clone();

    for mode in [RebuildMode::Beside, RebuildMode::InPlace] {
        // The rebuild stops after its first batch until the test lets it go.
        let (paused_tx, paused) = std::sync::mpsc::channel::<Progress>();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let projector = app.app.projector.clone();
        let rebuild = tokio::spawn(async move {
            let first = std::sync::atomic::AtomicBool::new(true);
            projector
                .rebuild_with(mode, &|p| {
                    // Beside: once the new tables hold the log; in place:
                    // once the old ones are emptied (0 applied).
                    let due = mode == RebuildMode::InPlace || p.applied > 0;
                    if due && first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        paused_tx.send(p).unwrap();
                        tokio::task::block_in_place(|| go_rx.lock().unwrap().recv().unwrap());
                    }
                })
                .await
        });
        let progress = tokio::task::spawn_blocking(move || paused.recv().unwrap()).await.unwrap();
        assert!(progress.total >= progress.applied as i64, "{progress:?}");
        let (status, during) = staff_view(&app, &account, &support).await;
        if mode == RebuildMode::InPlace {
            assert_ne!(status, reqwest::StatusCode::OK, "in place, the views are empty meanwhile: {during}");
            // The live projector stands aside: the rebuild alone fills the
            // tables, and its count is the whole log.
            let another_instance = ledger_projections::Projector::new(app.app.db.clone());
            assert_eq!(another_instance.catch_up().await.unwrap(), 0, "a live projector waits for the in-place rebuild");
            let busy = app.app.projector.rebuild().await.unwrap_err().to_string();
            assert!(busy.contains("another rebuild is running"), "one rebuild at a time, whatever the mode: {busy}");
            go.send(()).unwrap();
            let applied = rebuild.await.unwrap().unwrap();
            let in_log = app.events_of(&account).await.len();
            assert!(applied >= in_log, "the count is the whole log ({applied} applied, {in_log} in the account alone)");
            assert_eq!(app.app.projector.lag().await.unwrap(), 0, "nothing left for the live projector");
            continue;
        }
        assert_eq!(status, reqwest::StatusCode::OK, "the live views still answer: {during}");
        assert_eq!(during["passkeys"].as_array().map(Vec::len), Some(1), "{during}");
        app.clock.advance(chrono::Duration::seconds(60));
        assert_eq!(app.passkey_login(&mut key).await.status(), reqwest::StatusCode::CREATED, "logins go on");
        assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
        let live_during = staff_view(&app, &account, &support).await.1["passkeys"][0]["last_used_at"].clone();
        assert_ne!(live_during, logins_before, "the live views follow the log during the rebuild");
        go.send(()).unwrap();
        let applied = rebuild.await.unwrap().unwrap();
        assert!(applied > progress.applied, "the login made meanwhile was applied too: {applied}");

        let (status, after) = staff_view(&app, &account, &support).await;
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_eq!(after["passkeys"][0]["last_used_at"], live_during, "the switched-in views hold the login");
        assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
        assert_eq!(app.app.projector.lag().await.unwrap(), 0);
        let switched = app.dump_tables(TABLES).await;
        match app.app.db.backend {
            ledger_projections::Backend::Postgres => {
                let (schemas,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pg_namespace WHERE nspname = $1")
                    .bind(ledger_projections::projector::SHADOW_SCHEMA)
                    .fetch_one(&app.app.db.any)
                    .await
                    .unwrap();
                assert_eq!(schemas, 0, "the rebuild's schema is gone");
            }
            ledger_projections::Backend::Sqlite => {
                let beside: Vec<_> = std::fs::read_dir(&app.data_dir).unwrap().flatten().map(|e| e.file_name()).collect();
                assert!(!beside.iter().any(|n| n.to_string_lossy().contains("-rebuild")), "the rebuild's file is gone: {beside:?}");
            }
        }
        // An in-place rebuild gives the same tables.
        app.app.projector.rebuild_with(RebuildMode::InPlace, &|_| {}).await.unwrap();
        assert_eq!(app.dump_tables(TABLES).await, switched, "beside and in place build the same read models");
    }
}

async fn a_snapshotted_account_loads_the_same_as_a_replayed_one(app: TestApp) {
    let account = app.open_account("8000006", Some("long@example.jp"), false).await;
    for n in 0..(ledger_projections::store::SNAPSHOT_EVERY + 7) {
        let now = app.clock.now();
        let command = AccountCommand::RecordStaffRead { staff: staff_member(n), view: "status".into(), at: now };
        app.app.ledger.execute(&account, command, meta().metadata("customer", now)).await.unwrap();
    }
    let (snapshots,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM snapshots WHERE aggregate_id = $1").bind(&account).fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(snapshots, 1, "a snapshot was written");
    let loaded = app.app.ledger.load(&account).await.unwrap();
    let mut replayed = ledger_domain::Account::default();
    for (_, payload, _) in app.events_of(&account).await {
        cqrs_apply(&mut replayed, serde_json::from_value(payload).unwrap());
    }
    assert_eq!(loaded, replayed);
}

/// A fifth wrong password records two events (rejected, then locked); when
/// they straddle a snapshot boundary (sequences 50 and 51), the snapshot
/// must hold both: a load that lost the lock would let passwords be tried
/// again.
async fn a_command_whose_events_straddle_a_snapshot_loads_with_all_of_them(app: TestApp) {
    let account = app.open_account("8000007", Some("straddle@example.jp"), false).await;
    let every = ledger_projections::store::SNAPSHOT_EVERY;
    let mut n = 0;
    while app.events_of(&account).await.len() < every - 5 {
        let now = app.clock.now();
        let command = AccountCommand::RecordStaffRead { staff: staff_member(n), view: "status".into(), at: now };
        app.app.ledger.execute(&account, command, meta().metadata("customer", now)).await.unwrap();
        n += 1;
    }
    for attempt in 0..5 {
        let now = app.clock.now();
        let command = AccountCommand::SubmitPassword {
            flow_id: format!("p{attempt}"),
            purpose: ledger_domain::account::FlowPurpose::PasswordLogin,
            channel: Channel::Web,
            password_matches: false,
            email_shared_with: vec![],
            code: ledger_domain::account::IssuedCode { code_id: format!("c{attempt}"), expires_at: now + chrono::Duration::minutes(5) },
            client: None,
            pending_start: None,
            at: now,
        };
        app.app.ledger.execute(&account, command, meta().metadata("customer", now)).await.unwrap();
    }
    let events = app.events_of(&account).await;
    // The fifth rejection is event 50, the snapshot's boundary; the lock, 51.
    let (fifth, lock) = (&events[every - 1], &events[every]);
    assert_eq!((fifth.0.as_str(), lock.0.as_str()), ("PasswordRejected", "LoginLocked"));
    assert_eq!(fifth.1["PasswordRejected"]["consecutive_failures"], 5);
    // A fresh load (another instance, a restart) sees the lock.
    let app = app.restart().await;
    let loaded = app.app.ledger.load(&account).await.unwrap();
    let mut replayed = ledger_domain::Account::default();
    for (_, payload, _) in app.events_of(&account).await {
        cqrs_apply(&mut replayed, serde_json::from_value(payload).unwrap());
    }
    assert_eq!(loaded, replayed);
}

fn cqrs_apply(account: &mut ledger_domain::Account, event: ledger_domain::AccountEvent) {
    use cqrs_es::Aggregate;
    account.apply(event);
}

/// Hold T1 open with an event, commit T2, poll, commit T1, poll again: both
/// delivered, once each, in commit order (ARCHITECTURE.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_event_whose_transaction_commits_late_is_not_skipped() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else { return };
    let pg = app.app.db.postgres().cloned().unwrap();
    let insert = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                  VALUES ('probe', $1, 1, 'Probe', '1', '{}', '{}')";
    let mut t1 = pg.begin().await.unwrap();
    sqlx::query(insert).bind("t1").execute(&mut *t1).await.unwrap();
    let mut t2 = pg.begin().await.unwrap();
    sqlx::query(insert).bind("t2").execute(&mut *t2).await.unwrap();
    t2.commit().await.unwrap();

    let mut conn = app.app.db.any.acquire().await.unwrap();
    let first = read_events_after(&mut conn, ledger_projections::Backend::Postgres, (0, 0, 0), 100).await.unwrap();
    let probes: Vec<&str> = first.iter().filter(|e| e.aggregate_type == "probe").map(|e| e.aggregate_id.as_str()).collect();
    assert!(probes.is_empty(), "nothing past the open transaction T1 is delivered yet: {probes:?}");

    t1.commit().await.unwrap();
    let second = read_events_after(&mut conn, ledger_projections::Backend::Postgres, (0, 0, 0), 100).await.unwrap();
    let probes: Vec<&str> = second.iter().filter(|e| e.aggregate_type == "probe").map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(probes, vec!["t1", "t2"], "both, once each, in commit-safe order");

    // And the projector, following from its checkpoint, does not stall on them.
    app.app.projector.catch_up().await.unwrap();
    assert_eq!(app.app.projector.lag().await.unwrap(), 0);
}

/// An event stored before its type gained a field (version 1 of
/// `EmailAddressChanged` had no address slot) is read as it meant, slot 1,
/// by the command side, the read models and the trail's verification.
async fn an_event_of_an_older_version_is_read_as_it_meant(app: TestApp) {
    let account = app.open_account("9300001", Some("old@example.jp"), false).await;
    let next = app.events_of(&account).await.len() as i64 + 1;
    let sql = match app.app.db.backend {
        ledger_projections::Backend::Postgres => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('account', $1, $2, 'EmailAddressChanged', '1', $3::json, $4::json)"
        }
        ledger_projections::Backend::Sqlite => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('account', $1, $2, 'EmailAddressChanged', '1', $3, $4)"
        }
    };
    sqlx::query(sql)
        .bind(&account)
        .bind(next)
        .bind(r#"{"EmailAddressChanged":{"email":"new@example.jp"}}"#)
        .bind(r#"{"at":"2026-11-23T09:00:00.000Z","actor":"core_system"}"#)
        .execute(&app.app.db.any)
        .await
        .unwrap();

    let loaded = app.app.ledger.load(&account).await.unwrap();
    assert_eq!(loaded.registered_addresses().next().map(|e| e.as_str()), Some("new@example.jp"), "the command side reads version 1");

    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let (email,): (Option<String>,) =
        sqlx::query_as("SELECT email FROM status_accounts WHERE account_id = $1").bind(&account).fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(email.as_deref(), Some("new@example.jp"), "the read models read version 1");
    let (failures,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM projection_failures").fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(failures, 0);

    // The trail verifies after a rebuild; a type that kept its shape stays at version 1.
    app.app.projector.rebuild().await.unwrap();
    let compliance = app.staff("Kato", "compliance").await;
    let verified: serde_json::Value = app.get("/api/v1/audit/verify", Some(&compliance)).await.json().await.unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    let (version,): (String,) = sqlx::query_as(
        "SELECT event_version FROM events WHERE aggregate_type = 'account' AND aggregate_id = $1 AND event_type = 'AccountOpened'",
    )
    .bind(&account)
    .fetch_one(&app.app.db.any)
    .await
    .unwrap();
    assert_eq!(version, "1", "AccountOpened has not changed shape");
}

/// A database migrated before sqlx's migrator kept (version, name) rows in
/// `ledger_migrations`: the migrator takes that record over, runs nothing
/// twice, and the service starts on it with its data.
async fn a_database_migrated_before_the_migrator_is_taken_over(app: TestApp) {
    let account_id = app.open_account("8300001", Some("kept@example.jp"), false).await;
    let db = app.app.db.clone();
    for sql in [
        "CREATE TABLE ledger_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
        "INSERT INTO ledger_migrations (version, name) SELECT version, description FROM _sqlx_migrations",
        "DROP TABLE _sqlx_migrations",
    ] {
        sqlx::query(sql).execute(&db.any).await.unwrap();
    }
    assert_eq!(db.migrate().await.unwrap(), 0, "no migration runs again");
    assert!(db.migrations_current().await.unwrap());
    assert!(sqlx::query("SELECT COUNT(*) FROM ledger_migrations").fetch_one(&db.any).await.is_err(), "the old record is gone");
    let app = app.restart().await;
    assert!(!app.events_of(&account_id).await.is_empty(), "the account is still there");
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    app.register("8300001", "kept@example.jp", &mut key).await;
    assert_eq!(app.app.db.migrate().await.unwrap(), 0);
}

/// A staff member reading the account: a command that always records one
/// event, for tests of the event store itself.
fn staff_member(n: usize) -> ledger_domain::StaffMember {
    ledger_domain::StaffMember { staff_id: format!("staff-{n}"), name: "Sato".into() }
}

/// An account event whose metadata has no readable time (written by hand,
/// or by a faulty tool) is not shown as of 1970: the projector records it
/// as a failure naming it, and its change does not reach the views.
async fn an_account_event_without_a_time_is_a_named_failure_not_dated_1970(app: TestApp) {
    let account = app.open_account("9300002", Some("dated@example.jp"), false).await;
    let next = app.events_of(&account).await.len() as i64 + 1;
    let cast = if app.app.db.backend == ledger_projections::Backend::Postgres { "::json" } else { "" };
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('account', $1, $2, 'EmailAddressChanged', '1', $3{cast}, $4{cast})"
    );
    sqlx::query(&sql)
        .bind(&account)
        .bind(next)
        .bind(r#"{"EmailAddressChanged":{"email":"undated@example.jp"}}"#)
        .bind(r#"{"actor":"core_system"}"#)
        .execute(&app.app.db.any)
        .await
        .unwrap();
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let failures: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT aggregate_id, sequence, error FROM projection_failures").fetch_all(&app.app.db.any).await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let (id, sequence, error) = &failures[0];
    assert_eq!((id, *sequence), (&account, next));
    assert!(error.contains("no readable `at`") && error.contains("EmailAddressChanged") && error.contains(&account), "{error}");
    let (email, updated_at): (Option<String>, i64) = sqlx::query_as("SELECT email, updated_at FROM status_accounts WHERE account_id = $1")
        .bind(&account)
        .fetch_one(&app.app.db.any)
        .await
        .unwrap();
    assert_eq!(email.as_deref(), Some("dated@example.jp"));
    assert!(updated_at > 0, "nothing dated 1970");
}
