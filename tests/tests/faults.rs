//! Faults an operator meets: a database that is not there yet at start-up,
//! a process killed in the middle of a load.

use std::time::Duration;

use ledger_tests::harness::fresh_database;
use ledger_tests::process::{free_port, Forwarder, Served};
use ledger_tests::Backend;

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
