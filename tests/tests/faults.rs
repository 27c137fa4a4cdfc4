//! Faults an operator meets: a database that is not there yet at start-up,
//! a process killed in the middle of a load.

use std::time::Duration;

use ledger_tests::harness::fresh_database;
use ledger_tests::process::{free_port, Forwarder, Served};
use ledger_tests::{Backend, TestApp};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ledger-faults-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A database (PostgreSQL here) not yet reachable when the ledger starts: it
/// waits with a log line naming the database without its password, and
/// starts when the database answers (a rolling deploy, a database
/// restarting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_waits_for_a_database_that_is_not_reachable_yet() {
    let dir = temp_dir("wait");
    let Some(real) = fresh_database(Backend::Postgres, &dir).await else { return };
    let name = real.rsplit('/').next().expect("a database name").to_string();
    // The same database behind a port where nothing listens yet.
    let port = free_port();
    let url = format!("postgres://postgres:hunter2-secret@127.0.0.1:{port}/{name}");
    let mut served = Served::start(ledger_tests::ledger_program!(), &url, &dir, &[]);
    served.wait_for_output("waiting for the database", Duration::from_secs(30)).await;
    served.wait_for_output("waiting for the database", Duration::from_secs(5)).await;
    assert!(served.exited().is_none(), "it waits instead of exiting:\n{}", served.output());
    let _database = Forwarder::start(port, "127.0.0.1:5432").await;
    served.wait_ready(Duration::from_secs(30)).await;
    let output = served.output();
    assert!(output.contains("the database answers; starting"), "{output}");
    assert!(output.contains(&format!("postgres://postgres:***@127.0.0.1:{port}/{name}")), "the database is named:\n{output}");
    assert!(!output.contains("hunter2-secret"), "never its password:\n{output}");
}

/// `Postgres://` (as some tools write it) is PostgreSQL, not a SQLite file
/// of that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_url_scheme_in_capitals_is_still_postgresql() {
    let dir = temp_dir("scheme");
    let Some(url) = fresh_database(Backend::Postgres, &dir).await else { return };
    let capitals = url.replacen("postgres://", "Postgres://", 1);
    let served = Served::start(ledger_tests::ledger_program!(), &capitals, &dir, &[]);
    served.wait_ready(Duration::from_secs(60)).await;
    let pool = sqlx::PgPool::connect(&url).await.expect("the database");
    let (migrated,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(&pool).await.expect("migrated");
    assert!(migrated > 10, "the PostgreSQL database was migrated");
    assert!(
        !dir.join("Postgres:").exists()
            && std::fs::read_dir(&dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("Postgres"))
    );
}

/// Past `LEDGER_DATABASE_WAIT_SECS` start-up gives up with the cause; a
/// failure that waiting cannot mend (no such database) ends it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_gives_up_on_an_unreachable_database_after_its_wait_and_at_once_on_a_wrong_one() {
    let dir = temp_dir("give-up");
    let closed = format!("postgres://postgres:hunter2-secret@127.0.0.1:{}/ledger", free_port());
    let started = std::time::Instant::now();
    let mut served = Served::start(ledger_tests::ledger_program!(), &closed, &dir, &[("LEDGER_DATABASE_WAIT_SECS", "2")]);
    let status = served.wait_exit(Duration::from_secs(30)).await;
    assert!(!status.success());
    let output = served.output();
    assert!(output.contains("could not be reached in") && output.contains("LEDGER_DATABASE_WAIT_SECS"), "{output}");
    assert!(output.contains("Connection refused"), "the server's own answer, not only the pool's wait: {output}");
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited");
    assert!(!output.contains("hunter2-secret"), "{output}");

    if fresh_database(Backend::Postgres, &dir).await.is_none() {
        return;
    }
    let missing = "postgres://postgres:hunter2-secret@127.0.0.1:5432/no_such_ledger_database";
    let started = std::time::Instant::now();
    let mut served = Served::start(ledger_tests::ledger_program!(), missing, &dir, &[("LEDGER_DATABASE_WAIT_SECS", "60")]);
    let status = served.wait_exit(Duration::from_secs(30)).await;
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(20), "no waiting for what waiting cannot mend");
    let output = served.output();
    assert!(output.contains("no_such_ledger_database") && !output.contains("waiting for the database"), "{output}");
    assert!(!output.contains("hunter2-secret"), "{output}");
}

ledger_tests::on_both_databases!(
    a_kill_in_the_middle_of_logins_and_registrations_loses_and_repeats_nothing,
    a_mail_outage_answers_unavailable_counts_against_no_limit_and_ends_when_the_relay_is_back,
    the_rebuild_command_runs_while_the_service_serves_and_customers_notice_nothing,
);

/// `ledger projections rebuild` as an operator runs it: beside a serving
/// `ledger serve` (another process), while customers log in and support
/// reads their accounts. Every login and read succeeds, the command shows
/// its progress and ends with its count, and the service goes on over the
/// switched-in views.
async fn the_rebuild_command_runs_while_the_service_serves_and_customers_notice_nothing(mut app: TestApp) {
    use ledger_tests::process::run_command;
    use ledger_tests::SoftPasskey;
    use reqwest::StatusCode;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut customers = Vec::new();
    for i in 0..3 {
        let (login_id, email) = (format!("66000{i:02}"), format!("rebuild-{i}@example.jp"));
        let account = app.open_account(&login_id, Some(&email), false).await;
        let mut passkey = SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
        app.register(&login_id, &email, &mut passkey).await;
        customers.push((account, passkey));
    }
    let support = app.staff("Mori", "support").await;
    // Some history: every staff read is an event.
    for _ in 0..100 {
        for (account, _) in &customers {
            assert_eq!(app.get(&format!("/api/v1/staff/accounts/{account}"), Some(&support)).await.status(), StatusCode::OK);
        }
    }
    let served = Served::start(ledger_tests::ledger_program!(), &app.database_url, &app.data_dir, &[]);
    served.wait_ready(Duration::from_secs(60)).await;
    app.hand_over(&served.base).await;
    let app = Arc::new(app);

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (account, mut passkey) in customers {
        let (app, stop, support) = (app.clone(), stop.clone(), support.clone());
        clients.push(tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) {
                let options: Value = app.post("/api/v1/sessions/passkey/options", json!({}), None).await.json().await.unwrap();
                let body = json!({ "ceremony_id": options["ceremony_id"], "credential": passkey.assert(&options) });
                let res = app.post("/api/v1/sessions/passkey", body, None).await;
                assert_eq!(res.status(), StatusCode::CREATED, "a login during the rebuild");
                let res = app.get(&format!("/api/v1/staff/accounts/{account}"), Some(&support)).await;
                let status = res.status();
                let view: Value = res.json().await.unwrap_or_default();
                assert_eq!(status, StatusCode::OK, "a support read during the rebuild: {view}");
                assert_eq!(view["passkeys"].as_array().map(Vec::len), Some(1), "the view during the rebuild: {view}");
                rounds += 1;
            }
            rounds
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = run_command(ledger_tests::ledger_program!(), &app.database_url, &app.data_dir, &["projections", "rebuild"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut rounds = 0;
    for client in clients {
        rounds += client.await.expect("no client saw a failure");
    }
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the rebuild ends well: {stdout}\n{stderr}");
    assert!(stdout.starts_with("read models rebuilt from "), "{stdout}");
    assert!(stderr.contains("rebuild: 0 of ") && stderr.contains("(100%)"), "progress is shown: {stderr}");
    assert!(rounds >= 3, "customers logged in throughout ({rounds} rounds)");

    // After the switch the service follows the log on the new tables.
    let mut lag = -1;
    for _ in 0..100 {
        let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
        lag = ready["projector_lag"].as_i64().unwrap_or(-1);
        if lag == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lag, 0, "the served instance's projector is current on the switched-in views");
    drop(served);
}

/// What one client saw: the answers it was given (2xx = acknowledged) and
/// whether a request was under way when the process died.
#[derive(Default, Debug)]
struct Seen {
    acknowledged: usize,
    unanswered: usize,
}

/// `kill -9` of `ledger serve` while customers log in and register
/// passkeys. After a restart: every acknowledged login and registration is
/// in the log, none twice (a request cut off by the kill may or may not
/// have landed, never twice), the read models are what a rebuild makes of
/// the log, and the audit chain verifies.
async fn a_kill_in_the_middle_of_logins_and_registrations_loses_and_repeats_nothing(mut app: TestApp) {
    use ledger_tests::SoftPasskey;
    use reqwest::StatusCode;
    use serde_json::{json, Value};

    let mut logging_in = Vec::new();
    for i in 0..4 {
        let login_id = format!("65000{i:02}");
        let email = format!("crash-login-{i}@example.jp");
        let account = app.open_account(&login_id, Some(&email), false).await;
        let mut passkey = SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
        app.register(&login_id, &email, &mut passkey).await;
        logging_in.push((account, passkey));
    }
    let mut registering = Vec::new();
    for i in 0..40 {
        let login_id = format!("65001{i:02}");
        let email = format!("crash-register-{i}@example.jp");
        registering.push((app.open_account(&login_id, Some(&email), false).await, login_id, email));
    }
    let smtp = format!("smtp://127.0.0.1:{}", app.mail.port);
    let mut served = Served::start(ledger_tests::ledger_program!(), &app.database_url, &app.data_dir, &[("LEDGER_SMTP_URL", &smtp)]);
    served.wait_ready(Duration::from_secs(60)).await;
    app.hand_over(&served.base).await;
    let app = std::sync::Arc::new(app);

    let post = |app: std::sync::Arc<TestApp>, path: String, body: Value| async move {
        let res = app.client.post(format!("{}{}", app.base, path)).header("user-agent", "crash-test").json(&body).send().await.ok()?;
        let status = res.status();
        Some((status, res.json::<Value>().await.unwrap_or(Value::Null)))
    };
    let mut logins = Vec::new();
    for (account, mut passkey) in logging_in {
        let app = app.clone();
        logins.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            loop {
                let Some((_, options)) = post(app.clone(), "/api/v1/sessions/passkey/options".into(), json!({})).await else { break };
                let body = json!({ "ceremony_id": options["ceremony_id"], "credential": passkey.assert(&options) });
                match post(app.clone(), "/api/v1/sessions/passkey".into(), body).await {
                    Some((StatusCode::CREATED, _)) => seen.acknowledged += 1,
                    Some((status, v)) => panic!("a login before the kill answered {status}: {v}"),
                    None => {
                        seen.unanswered += 1;
                        break;
                    }
                }
            }
            (account, seen)
        }));
    }
    // Four clients register passkeys for one opened account after another
    // until the process dies under them.
    let registered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut registrations = Vec::new();
    for share in registering.chunks(registering.len() / 4).map(<[_]>::to_vec) {
        let (app, registered) = (app.clone(), registered.clone());
        registrations.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for (account, login_id, email) in share {
                let mut seen = Seen::default();
                let mut passkey = SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
                let steps = async {
                    let (_, flow) = post(app.clone(), "/api/v1/registrations".into(), json!({ "login_id": login_id })).await?;
                    let flow = flow["flow_id"].as_str()?.to_string();
                    post(app.clone(), format!("/api/v1/registrations/{flow}/password"), json!({ "password": "pass-word-1" })).await?;
                    let code = app.mail_to(&email).iter().rev().find_map(|m| m.code())?;
                    post(app.clone(), format!("/api/v1/registrations/{flow}/otp"), json!({ "code": code })).await?;
                    let (_, options) = post(app.clone(), format!("/api/v1/registrations/{flow}/passkey/options"), json!({})).await?;
                    let credential = passkey.register(&options);
                    Some(post(app.clone(), format!("/api/v1/registrations/{flow}/passkey"), json!({ "credential": credential })).await)
                };
                let done = steps.await;
                match done {
                    Some(Some((StatusCode::CREATED, _))) => {
                        seen.acknowledged += 1;
                        registered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Some(Some((status, v))) => panic!("a registration before the kill answered {status}: {v}"),
                    // Cut off at the last step, or earlier (then nothing
                    // was registered, which the count below also allows).
                    _ => seen.unanswered += 1,
                }
                let cut = seen.unanswered > 0;
                results.push((account, seen));
                if cut {
                    break;
                }
            }
            results
        }));
    }
    // The kill comes once registrations are landing, in the middle of
    // whatever each client is doing then.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while registered.load(std::sync::atomic::Ordering::SeqCst) < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    served.kill_hard();

    let mut seen_logins = Vec::new();
    for task in logins {
        seen_logins.push(task.await.expect("login client"));
    }
    let mut seen_registrations = Vec::new();
    for task in registrations {
        seen_registrations.extend(task.await.expect("registration client"));
    }
    let acknowledged: usize = seen_logins.iter().chain(&seen_registrations).map(|(_, s)| s.acknowledged).sum();
    assert!(seen_logins.iter().all(|(_, s)| s.acknowledged > 0), "logins landed before the kill: {seen_logins:?}");
    assert!(seen_registrations.iter().any(|(_, s)| s.acknowledged > 0), "registrations landed before the kill: {seen_registrations:?}");

    // The service restarted on the same database (in process, to read it).
    let app = std::sync::Arc::try_unwrap(app).ok().expect("the clients are done").restart().await;
    assert!(app.app.projector.settle(Duration::from_secs(60)).await.unwrap(), "the projector catches up after the restart");
    for (account, seen) in &seen_logins {
        let events = app.events_of(account).await;
        let n = events.iter().filter(|(t, _, _)| t == "PasskeyLoginSucceeded").count();
        assert!(n >= seen.acknowledged && n <= seen.acknowledged + seen.unanswered, "account {account}: {n} logins in the log, {seen:?}");
    }
    for (account, seen) in &seen_registrations {
        let events = app.events_of(account).await;
        let n = events.iter().filter(|(t, _, _)| t == "PasskeyRegistered").count();
        assert!(n >= seen.acknowledged && n <= seen.acknowledged + seen.unanswered, "account {account}: {n} passkeys, {seen:?}");
    }
    let live = app.dump_tables(ledger_projections::read_models::TABLES).await;
    app.app.projector.rebuild().await.unwrap();
    let rebuilt = app.dump_tables(ledger_projections::read_models::TABLES).await;
    assert!(live == rebuilt, "the read models after the crash are what a rebuild makes of the log");
    let compliance = app.staff("Kato", "compliance").await;
    let verified: Value = app.get("/api/v1/audit/verify", Some(&compliance)).await.json().await.unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(acknowledged > 4, "{acknowledged} acknowledged writes");
}

/// SMTP down when codes are asked for: each ask is answered 503
/// `email_not_sent` with Retry-After and recorded as not delivered, none
/// counts against the customer's limits (more asks than the hour allows,
/// none sooner than a minute apart refused), and the first ask once the
/// relay is back sends a code at once.
async fn a_mail_outage_answers_unavailable_counts_against_no_limit_and_ends_when_the_relay_is_back(app: TestApp) {
    use ledger_api::config::MailTransport;
    use ledger_tests::harness::{error_code, json_of};
    use reqwest::StatusCode;
    use serde_json::json;

    let account = app.open_account("6700001", Some("outage@example.jp"), false).await;
    let sink = app.mail.port;
    let closed = free_port();
    let app = app.restart_with(|c| c.mail = MailTransport::Smtp(format!("smtp://127.0.0.1:{closed}"))).await;
    let (flow, res) = app.start_registration("6700001", "pass-word-1").await;
    let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (s, v) = json_of(res).await;
    assert_eq!((s, error_code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "email_not_sent"), "{v}");
    assert_eq!(retry_after.as_deref(), Some("30"));
    assert!(v["error"]["message_ja"].as_str().unwrap().contains("上限にも数えません"), "{v}");
    // Twelve more asks, more than the hour's ten codes and five resends,
    // back to back: every one is tried and answered the same.
    for _ in 0..12 {
        let (s, v) = json_of(app.post(&format!("/api/v1/registrations/{flow}/otp/resend"), json!({}), None).await).await;
        assert_eq!((s, error_code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "email_not_sent"), "{v}");
    }
    let events = app.events_of(&account).await;
    assert_eq!(events.iter().filter(|(t, _, _)| t == "EmailCodeNotDelivered").count(), 13);
    assert!(app.mail_to("outage@example.jp").is_empty());

    // The relay is back: the next ask sends a code, which works.
    let app = app.restart_with(|c| c.mail = MailTransport::Smtp(format!("smtp://127.0.0.1:{sink}"))).await;
    let (s, v) = json_of(app.post(&format!("/api/v1/registrations/{flow}/otp/resend"), json!({}), None).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let code = app.code_for("outage@example.jp");
    let (s, v) = json_of(app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": code }), None).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The mail carries its own Message-ID, in the sender's domain.
    let mail = app.mail_to("outage@example.jp");
    let data = &mail.last().expect("the code's mail").data;
    assert!(data.lines().any(|l| l.starts_with("Message-ID: <") && l.ends_with("@localhost>")), "{data}");
}

/// A transaction left open in another database on the same PostgreSQL
/// server holds the projector back (it reads only below the cluster's
/// oldest snapshot). Writes do not wait for it; staff reads wait a bounded
/// time, then answer with what the views hold and say they are behind
/// (`X-Ledger-Behind`, `X-Ledger-Checkpoint`); once the transaction ends
/// they are current again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_staff_reads_say_how_current_they_are_while_a_transaction_elsewhere_holds_the_projector() {
    use ledger_tests::harness::json_of;
    use reqwest::StatusCode;

    let Some(app) = TestApp::spawn_with(Backend::Postgres, |c| c.projector_stuck = Duration::from_secs(3)).await else { return };
    let compliance = app.staff("Kato", "compliance").await;
    let support = app.staff("Sato", "support").await;
    app.open_account("6800001", Some("before@example.jp"), false).await;
    let current = |res: &reqwest::Response| {
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
        (header("x-ledger-checkpoint").expect("a checkpoint"), header("x-ledger-behind").expect("how far behind"))
    };
    let res = app.get("/api/v1/audit/head", Some(&compliance)).await;
    let (before, behind) = current(&res);
    assert_eq!(behind, 0, "current while nothing holds the projector");

    // Elsewhere on the server: a transaction with an ID, left open.
    let elsewhere = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test").await.unwrap();
    let mut open = elsewhere.begin().await.unwrap();
    sqlx::query("SELECT txid_current()").execute(&mut *open).await.unwrap();

    let started = std::time::Instant::now();
    let account = app.open_account("6800002", Some("during@example.jp"), false).await;
    assert!(started.elapsed() < Duration::from_secs(4), "the write does not wait for the projector: {:?}", started.elapsed());

    let started = std::time::Instant::now();
    let res = app.get(&format!("/api/v1/audit/events?account_id={account}"), Some(&compliance)).await;
    let waited = started.elapsed();
    let (checkpoint, behind) = current(&res);
    let (s, page) = json_of(res).await;
    assert_eq!(s, StatusCode::OK);
    assert!(behind >= 1 && checkpoint >= before, "the answer says it is behind: checkpoint {checkpoint}, behind {behind}");
    assert_eq!(page["events"], serde_json::json!([]), "the new account's events are not in the views yet");
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(10), "it waited its bound, no more: {waited:?}");
    let res = app.get("/api/v1/staff/accounts?q=6800001", Some(&support)).await;
    assert!(current(&res).1 >= 1, "support's search says so too");
    // A login ID the views do not hold yet is not "no such account".
    let (s, v) = json_of(app.get("/api/v1/staff/accounts?q=6800002", Some(&support)).await).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("views_behind")), "{v}");
    // An account not in the views yet is not called unknown.
    let (s, v) = json_of(app.get(&format!("/api/v1/staff/accounts/{account}"), Some(&support)).await).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("views_behind")), "{v}");
    // One the log does not hold is unknown, behind or not.
    let (s, _) = json_of(app.get(&format!("/api/v1/staff/accounts/{}", uuid::Uuid::new_v4()), Some(&support)).await).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Behind and not moving past LEDGER_PROJECTOR_STUCK_SECS (counted from
    // the first check that saw it behind): not ready.
    let (_, ready) = json_of(app.get("/readyz", None).await).await;
    assert_eq!(ready["status"], "ready", "behind, not yet stuck: {ready}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (s, ready) = json_of(app.get("/readyz", None).await).await;
    assert_eq!((s, ready["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("stuck")), "{ready}");
    assert!(ready["projector_stalled_seconds"].as_u64().unwrap() >= 3, "{ready}");

    open.rollback().await.unwrap();
    let res = app.get(&format!("/api/v1/audit/events?account_id={account}"), Some(&compliance)).await;
    let (after, behind) = current(&res);
    let (_, page) = json_of(res).await;
    assert_eq!(behind, 0);
    assert!(after > checkpoint);
    assert_eq!(page["events"][0]["type"], "AccountOpened", "{page}");
    let (s, ready) = json_of(app.get("/readyz", None).await).await;
    assert_eq!((s, ready["status"].as_str()), (StatusCode::OK, Some("ready")), "{ready}");
}

/// What an operator's log pipeline gets with `LEDGER_LOG_FORMAT=json`: JSON
/// lines on stderr (nothing on stdout but the listening line), one access
/// line per request with its route pattern, status, time and the request
/// ID the client was given, and no login ID or address even at DEBUG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_give_one_access_line_per_request_and_nothing_personal() {
    let dir = temp_dir("logs");
    let url = format!("sqlite://{}/ledger.db", dir.display());
    let served = Served::start(
        ledger_tests::ledger_program!(),
        &url,
        &dir,
        &[("LEDGER_LOG_FORMAT", "json"), ("RUST_LOG", "debug"), ("NO_COLOR", "")],
    );
    served.wait_ready(Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let search = http
        .get(format!("{}/api/v1/staff/accounts?q=private.person@example.jp", served.base))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    let request_id = search.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(search.status(), 401);
    let start = http
        .post(format!("{}/api/v1/registrations", served.base))
        .json(&serde_json::json!({ "login_id": "8812345" }))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let output = served.output();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .filter(|l| !l.starts_with("passkey-ledger listening"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let access: Vec<&serde_json::Value> = lines.iter().filter(|l| l["target"] == "access").collect();
    let line = access.iter().find(|l| l["request_id"] == request_id.as_str()).expect("the search's access line");
    assert_eq!(
        (line["route"].as_str(), line["status"].as_u64(), line["method"].as_str()),
        (Some("/api/v1/staff/accounts"), Some(401), Some("GET"))
    );
    assert!(line["ms"].is_number());
    assert!(access.iter().any(|l| l["route"] == "/api/v1/registrations" && l["status"] == 201), "{access:?}");
    assert!(lines.iter().any(|l| l["message"] == "configuration" && l["mode"] == "Development"), "the effective configuration");
    for personal in ["private.person", "8812345"] {
        assert!(!output.contains(personal), "{personal} in the log:\n{output}");
    }
}

/// `LEDGER_ADMIN_BIND` with `LEDGER_PUBLIC_STAFF_API=off`: the public
/// address serves customers only (staff paths are unknown there), the admin
/// address serves everything, `/metrics` without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_address_serves_staff_and_metrics_and_the_public_one_customers_only() {
    let dir = temp_dir("admin-bind");
    let url = format!("sqlite://{}/ledger.db", dir.display());
    let admin_port = free_port();
    let admin_bind = format!("127.0.0.1:{admin_port}");
    let served = Served::start(
        ledger_tests::ledger_program!(),
        &url,
        &dir,
        &[
            ("LEDGER_ADMIN_BIND", &admin_bind),
            ("LEDGER_PUBLIC_STAFF_API", "off"),
            ("LEDGER_METRICS_TOKEN", "a-scraper-token-of-some-length"),
        ],
    );
    served.wait_ready(Duration::from_secs(60)).await;
    let admin = format!("http://{admin_bind}");
    let http = reqwest::Client::new();
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).bearer_auth("not-a-staff-token").send().await.unwrap().status().as_u16() }
    };
    for path in ["/api/v1/staff/accounts?q=x", "/api/v1/audit/head", "/api/v1/signals", "/metrics", "/api/v1/admin/accounts/x"] {
        assert_eq!(status(format!("{}{path}", served.base)).await, 404, "public {path}");
    }
    // Answered exactly like an unknown path: the same headers, nothing to
    // tell a prober the route exists elsewhere.
    let headers = |res: reqwest::Response| {
        let mut names: Vec<String> = res.headers().keys().map(|k| k.to_string()).filter(|k| k != "date" && k != "content-length").collect();
        names.sort();
        names
    };
    let blocked = headers(http.get(format!("{}/api/v1/admin/accounts", served.base)).send().await.unwrap());
    let unknown = headers(http.get(format!("{}/api/v1/nothing-here", served.base)).send().await.unwrap());
    assert_eq!(blocked, unknown);
    assert!(blocked.contains(&"x-request-id".to_string()) && blocked.contains(&"content-security-policy".to_string()), "{blocked:?}");
    let public_contract = http.get(format!("{}/api/openapi.json", served.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        public_contract.contains("/api/v1/registrations") && !public_contract.contains("/api/v1/admin"),
        "the public contract is the customers'"
    );
    assert_eq!(status(format!("{admin}/api/v1/staff/accounts?q=x")).await, 401, "the staff API is on the admin address");
    let metrics = http.get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "no token asked on the admin address");
    assert!(metrics.text().await.unwrap().contains("ledger_build_info"));
    let start = http
        .post(format!("{}/api/v1/registrations", served.base))
        .json(&serde_json::json!({ "login_id": "1234567" }))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 201, "customers are served on the public address");
    assert_eq!(status(format!("{}/healthz", served.base)).await, 200);
    // The public readiness says the verdict only; the figures are the operators'.
    let public: serde_json::Value = http.get(format!("{}/readyz", served.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(public, serde_json::json!({ "status": "ready" }));
    let internal: serde_json::Value = http.get(format!("{admin}/readyz")).send().await.unwrap().json().await.unwrap();
    assert!(internal["projector_lag"].is_number(), "{internal}");
}
