//! Several instances on one PostgreSQL: any instance finishes a ceremony
//! begun on another, one projects at a time and another takes over when it
//! stops, nothing is lost or applied twice; instances starting together on
//! an empty database migrate it once.

use ledger_projections::Database;
use ledger_tests::harness::{fresh_database, ORIGIN};
use ledger_tests::{Backend, SoftPasskey, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_postgresql_and_hand_over_the_projector() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else { return };
    let b = a.another_instance().await;

    // Registered on A; the passkey login begins on A and ends on B.
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let account = a.open_account("9100001", Some("replica@example.jp"), false).await;
    a.register("9100001", "replica@example.jp", &mut key).await;
    let options: Value = a.post("/api/v1/sessions/passkey/options", json!({}), None).await.json().await.unwrap();
    let credential = key.assert(&options);
    let res = b.post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": credential }), None).await;
    assert_eq!(res.status(), StatusCode::CREATED, "a ceremony begun on A finishes on B");
    let token = res.json::<Value>().await.unwrap()["session"]["token"].as_str().unwrap().to_string();
    // The same ceremony cannot be finished twice, on either instance.
    let again = a.post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": credential }), None).await;
    assert_ne!(again.status(), StatusCode::CREATED);
    // B's session works on A, and A shows what B recorded.
    let view: Value = a.get("/api/v1/me/passkeys", Some(&token)).await.json().await.unwrap();
    assert!(view["passkeys"][0]["last_used_at"].is_string(), "{view}");

    // A stops as a crash would; B's projector takes the work over.
    a.stop().await;
    let mut later = SoftPasskey::new("localhost", ORIGIN);
    b.open_account("9100002", Some("after-crash@example.jp"), false).await;
    let done = b.register("9100002", "after-crash@example.jp", &mut later).await;
    let token = done["session"]["token"].as_str().unwrap();
    let view: Value = b.get("/api/v1/me/passkeys", Some(token)).await.json().await.unwrap();
    assert_eq!(view["passkeys"].as_array().map(Vec::len), Some(1), "B projected after A stopped: {view}");

    // Every event in the trail exactly once, and the chain intact.
    assert!(b.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let (events,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(&b.app.db.any).await.unwrap();
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT (aggregate_type, aggregate_id, sequence)) FROM audit_trail")
            .fetch_one(&b.app.db.any)
            .await
            .unwrap();
    assert_eq!((rows, distinct), (events, events));
    let compliance = b.staff("Kato", "compliance").await;
    let verified: Value = b.get("/api/v1/audit/verify", Some(&compliance)).await.json().await.unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    let events = b.events_of(&account).await;
    assert!(events.iter().any(|(t, _, _)| t == "PasskeyLoginSucceeded"));
}

/// Each instance keeps the accounts it wrote last; when the other instance
/// wrote since, the first catches its copy up before deciding. A passkey
/// support deleted on B no longer signs in on A, whose copy still had it,
/// and every login on either instance lands in order in one stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_decides_on_what_the_other_recorded_since_it_last_wrote() {
    let Some(a) = TestApp::spawn(Backend::Postgres).await else { return };
    let b = a.another_instance().await;
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let account = a.open_account("9100101", Some("alternating@example.jp"), false).await;
    a.register("9100101", "alternating@example.jp", &mut key).await;
    // Past several snapshots (one every 50 events), written by either: two
    // logins on A for each on B, so that each crosses some boundaries.
    let mut n = 0;
    while b.events_of(&account).await.len() < 260 {
        let instance = if n % 3 == 2 { &b } else { &a };
        let res = instance.passkey_login(&mut key).await;
        assert_eq!(res.status(), StatusCode::CREATED, "login {n}: {}", res.text().await.unwrap());
        n += 1;
    }
    let logins = b.events_of(&account).await.into_iter().filter(|(t, _, _)| t == "PasskeyLoginSucceeded").count();
    assert_eq!(logins, n);
    // One snapshot of the account, at the last boundary it passed.
    let snapshots: Vec<(i64, i64)> = sqlx::query_as("SELECT last_sequence, current_snapshot FROM snapshots WHERE aggregate_id = $1")
        .bind(&account)
        .fetch_all(&a.app.db.any)
        .await
        .unwrap();
    assert_eq!(snapshots, vec![(250, 5)], "{snapshots:?}");

    let support = b.staff("Sato", "support").await;
    let path = format!("/api/v1/staff/accounts/{account}/passkeys/revoke");
    let res = b.post(&path, json!({ "reason": "device_lost" }), Some(&support)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = a.passkey_login(&mut key).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "A knows of B's deletion");
    let events = a.events_of(&account).await;
    assert!(!events.iter().rev().take(1).any(|(t, _, _)| t == "PasskeyLoginSucceeded"), "{events:?}");
}

/// A logical restore into another cluster whose transaction counter is
/// behind the restored log (simulated: the log's transaction ids moved a
/// billion ahead, past the triggers, as a restore would leave them relative
/// to the new cluster's counter). New events must still be projected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_restored_ahead_of_the_clusters_counter_keeps_being_projected() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else { return };
    let mut first = SoftPasskey::new("localhost", ORIGIN);
    app.open_account("9200101", Some("before-restore@example.jp"), false).await;
    app.register("9200101", "before-restore@example.jp", &mut first).await;
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    for sql in [
        "ALTER TABLE events DISABLE TRIGGER USER",
        "UPDATE events SET transaction_id = ((transaction_id::text::bigint) + 1000000000)::text::xid8",
        "ALTER TABLE events ENABLE TRIGGER USER",
        "UPDATE projector_checkpoints SET transaction_id = transaction_id + 1000000000",
    ] {
        sqlx::query(sql).execute(&app.app.db.any).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // Started on the restored database: the counter is behind, loudly noticed.
    let app = app.restart().await;
    let (epoch,): (i64,) = sqlx::query_as("SELECT ledger_epoch()").fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(epoch, 1, "a new order epoch began");

    let mut second = SoftPasskey::new("localhost", ORIGIN);
    app.open_account("9200102", Some("after-restore@example.jp"), false).await;
    let done = app.register("9200102", "after-restore@example.jp", &mut second).await;
    let token = done["session"]["token"].as_str().unwrap();
    let view: Value = app.get("/api/v1/me/passkeys", Some(token)).await.json().await.unwrap();
    assert_eq!(view["passkeys"].as_array().map(Vec::len), Some(1), "the new passkey is projected: {view}");
    assert_eq!(app.passkey_login(&mut first).await.status(), StatusCode::CREATED);
    assert_eq!(app.passkey_login(&mut second).await.status(), StatusCode::CREATED);
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    assert_eq!(app.app.projector.lag().await.unwrap(), 0);
    let compliance = app.staff("Kato", "compliance").await;
    let verified: Value = app.get("/api/v1/audit/verify", Some(&compliance)).await.json().await.unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    // A rebuild after the restore takes in every epoch: no account is lost.
    app.app.projector.rebuild().await.unwrap();
    let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM status_accounts").fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(accounts, 2, "both accounts, restored and new, in the rebuilt read models");
    // A second start on the same cluster begins no further epoch.
    let app = app.restart().await;
    let (epoch,): (i64,) = sqlx::query_as("SELECT ledger_epoch()").fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(epoch, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_on_an_empty_database_migrate_it_once() {
    let dir = std::env::temp_dir().join(format!("ledger-test-{}", uuid::Uuid::new_v4().simple()));
    let Some(url) = fresh_database(Backend::Postgres, &dir).await else { return };
    let (one, two) = tokio::join!(Database::connect(&url), Database::connect(&url));
    let (one, two) = (one.unwrap(), two.unwrap());
    let (ran_one, ran_two) = tokio::join!(one.migrate(), two.migrate());
    let (ran_one, ran_two) = (ran_one.expect("first instance migrates"), ran_two.expect("second instance migrates"));
    assert!(one.migrations_current().await.unwrap());
    let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(&one.any).await.unwrap();
    assert_eq!(ran_one + ran_two, applied as usize, "each migration ran once");
}

/// A rebuild on PostgreSQL as the operations guide sets it up: run by the
/// tables' owner, the service's role keeps its rights on the switched-in
/// tables; run by the service's role it is refused with the owner's name
/// before anything changes; a second rebuild while one runs is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_rebuild_keeps_the_service_roles_rights_and_runs_once_at_a_time() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else { return };
    app.open_account("9100301", Some("roles@example.jp"), false).await;
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let owner = &app.app.db.any;
    let role = format!("ledger_app_{}", uuid::Uuid::new_v4().simple());
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        sqlx::query(&sql).execute(owner).await.unwrap();
    }
    let (_, database) = app.database_url.rsplit_once('/').unwrap();
    let as_app = Database::connect(&format!("postgres://{role}@127.0.0.1:5432/{database}")).await.unwrap();

    let refused = ledger_projections::Projector::new(as_app.clone()).rebuild().await.unwrap_err().to_string();
    assert!(refused.contains("only their owner") && refused.contains("postgres"), "{refused}");

    let lock = ledger_projections::Database::connect(&app.database_url).await.unwrap();
    let mut held = lock.any.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(7400004)").execute(&mut *held).await.unwrap();
    let busy = app.app.projector.rebuild().await.unwrap_err().to_string();
    assert!(busy.contains("another rebuild is running"), "{busy}");
    sqlx::query("SELECT pg_advisory_unlock(7400004)").execute(&mut *held).await.unwrap();
    drop(held);

    app.app.projector.rebuild().await.unwrap();
    let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM status_accounts").fetch_one(&as_app.any).await.unwrap();
    assert_eq!(accounts, 1, "the service's role reads the switched-in tables");
    sqlx::query("DELETE FROM signals WHERE signal_id = 'none'").execute(&as_app.any).await.expect("and writes them");

    as_app.any.close().await;

    // Run by someone else with the right (a superuser here, or a member of
    // the owner role), the tables keep their owner: migrations run as the
    // owner afterwards.
    let table_owner = format!("ledger_owner_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE ROLE {table_owner}")).execute(owner).await.unwrap();
    for table in ledger_projections::read_models::TABLES.iter().chain(&["projection_failures"]) {
        sqlx::query(&format!("ALTER TABLE {table} OWNER TO {table_owner}")).execute(owner).await.unwrap();
    }
    app.app.projector.rebuild().await.unwrap();
    let owners: Vec<(String, String)> = sqlx::query_as(
        "SELECT tablename::text, tableowner::text FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY($1)",
    )
    .bind(ledger_projections::read_models::TABLES.iter().map(|t| t.to_string()).collect::<Vec<_>>())
    .fetch_all(app.app.db.postgres().unwrap())
    .await
    .unwrap();
    assert_eq!(owners.len(), ledger_projections::read_models::TABLES.len());
    assert!(owners.iter().all(|(_, o)| *o == table_owner), "{owners:?}");

    for sql in [
        format!("DROP OWNED BY {role}"),
        format!("DROP ROLE {role}"),
        format!("REASSIGN OWNED BY {table_owner} TO postgres"),
        format!("DROP ROLE {table_owner}"),
    ] {
        sqlx::query(&sql).execute(owner).await.unwrap();
    }
}
