//! The projector: follows the event log in global order from a checkpoint
//! kept in the same transaction as the read models it updates, so a crash
//! between the two can neither skip nor repeat an event. Live updating and
//! `ledger projections rebuild` are this one mechanism.

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tokio::sync::Mutex;

use crate::db::{Backend, Database, DbError};
pub use crate::event::LoggedEvent;
use crate::event::Parsed;
use crate::read_models;

mod rebuild;
pub use rebuild::{Progress, RebuildMode, SHADOW_SCHEMA};

/// The checkpoint name of the core read models.
pub const CORE: &str = "core";

/// Events read per transaction while following the log.
const BATCH: i64 = 500;

/// Follows the log and keeps the read models current.
///
/// With a background task running ([`Projector::spawn`]), a request never
/// runs the projector itself: it wakes the task and waits, woken in turn
/// whenever a batch commits in this process or, on PostgreSQL, in any
/// instance (`LISTEN ledger_projected`); appends by other instances wake the
/// task through `LISTEN ledger_appended` (sent by an instance whose own
/// projector finds the lock taken, see [`Projector::appended`]). Without
/// one (the command line), the waits catch up themselves.
pub struct Projector {
    db: Database,
    thresholds: crate::signals::Thresholds,
    /// One batch at a time within a process; across processes PostgreSQL's
    /// advisory lock does the same.
    running: Mutex<()>,
    /// Asks the background task for a batch.
    wake: tokio::sync::Notify,
    /// Bumped whenever the read models moved on (here or, on PostgreSQL,
    /// in another instance); waiters look again then, and only then.
    progressed: tokio::sync::watch::Sender<u64>,
    /// When the read models last moved on, or were found current.
    last_progress: std::sync::Mutex<std::time::Instant>,
    /// When a check first found the read models behind (None: current at
    /// the last check).
    behind_since: std::sync::Mutex<Option<std::time::Instant>>,
    background: std::sync::atomic::AtomicBool,
    /// This process appended since it last told the instance holding the
    /// projector (PostgreSQL).
    appended_here: std::sync::atomic::AtomicBool,
    /// The last batch found another instance projecting.
    held_elsewhere: std::sync::atomic::AtomicBool,
    /// The advisory lock that makes one projector at a time on PostgreSQL:
    /// [`LIVE_LOCK`] for the read models the service reads, another for a
    /// rebuild's own tables beside them.
    lock: i64,
}

/// PostgreSQL's advisory lock of the live projector: held by one batch at a
/// time across all instances, and by a rebuild's switch.
const LIVE_LOCK: i64 = 7400002;

/// After a batch that applied events, the background projector waits this
/// long before the next: appends made meanwhile wait for it together and
/// go in one transaction, instead of one transaction (and one
/// notification) per event at the morning peak. A lone append is applied
/// at once.
const PACE: Duration = Duration::from_millis(10);

/// While another instance projects, this one tells it of its appends at
/// most this often (one `NOTIFY` for all of them).
const PACE_WHILE_ELSEWHERE: Duration = Duration::from_millis(50);

/// A batch of the log, read and made ready for the projections: each
/// payload parsed, each trail row prepared (all but the chain).
struct Batch {
    parsed: Vec<Parsed>,
    audit: Vec<crate::audit::Prepared>,
}

impl Batch {
    fn read(events: Vec<LoggedEvent>) -> Batch {
        let parsed: Vec<Parsed> = events.into_iter().map(Parsed::new).collect();
        let audit = parsed.iter().map(crate::audit::prepare).collect();
        Batch { parsed, audit }
    }
}

/// A place in the global order: `(epoch, transaction_id, position)` on
/// PostgreSQL, `(0, 0, position)` on SQLite.
pub type Checkpoint = (i64, i64, i64);

/// Reads events after the checkpoint, in commit order, at most `limit`.
pub async fn read_events_after(
    conn: &mut AnyConnection,
    backend: Backend,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<LoggedEvent>, DbError> {
    let (epoch, transaction_id, position) = after;
    let rows: Vec<AnyRow> = match backend {
        Backend::Sqlite => {
            sqlx::query(
                "SELECT p.position, 0 AS epoch, 0 AS transaction_id, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type,
                        e.event_version, e.payload, e.metadata
                   FROM event_positions p
                   JOIN events e ON e.aggregate_type = p.aggregate_type AND e.aggregate_id = p.aggregate_id AND e.sequence = p.sequence
                  WHERE p.position > $1
                  ORDER BY p.position
                  LIMIT $2",
            )
            .bind(position)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        }
        Backend::Postgres => {
            // The order is the table's columns (`events.`): the output column
            // `transaction_id` is a bigint copy, and ordering by it would
            // sort the whole log instead of walking the index.
            // Only transactions older than every running one are complete:
            // an event whose transaction is still open (even with a smaller
            // position) is delivered on a later poll, never skipped. Earlier
            // epochs (a log restored from another cluster) are complete.
            sqlx::query(
                "SELECT position, epoch, transaction_id::text::bigint AS transaction_id, aggregate_type, aggregate_id, sequence,
                        event_type, event_version, payload::text AS payload, metadata::text AS metadata
                   FROM events
                  WHERE (epoch, transaction_id, position) > ($1, $2::text::xid8, $3)
                    AND (epoch < (SELECT ledger_epoch()) OR transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())))
                  ORDER BY events.epoch, events.transaction_id, events.position
                  LIMIT $4",
            )
            .bind(epoch)
            .bind(transaction_id.to_string())
            .bind(position)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.iter().map(logged_event).collect()
}

/// Which of an account's events a history shows: only these types (all
/// when empty), none of those.
#[derive(Debug, Clone, Default)]
pub struct EventTypes {
    pub only: Vec<String>,
    pub except: Vec<String>,
}

/// One account's events, newest first, those with a sequence below
/// `before` (all when None) and of the types asked for, at most `limit`:
/// the support history.
pub async fn account_events_newest_first(
    pool: &sqlx::AnyPool,
    backend: Backend,
    account_id: &str,
    before: Option<i64>,
    limit: i64,
    types: &EventTypes,
) -> Result<Vec<LoggedEvent>, DbError> {
    // $1 account, $2 before, $3 limit; the types after them.
    let mut clause = String::new();
    let mut n = 3;
    for (list, op) in [(&types.only, "IN"), (&types.except, "NOT IN")] {
        if !list.is_empty() {
            let params: Vec<String> = list
                .iter()
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            clause.push_str(&format!(" AND e.event_type {op} ({})", params.join(", ")));
        }
    }
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT COALESCE(p.position, 0) AS position, 0 AS epoch, 0 AS transaction_id, e.aggregate_type, e.aggregate_id, e.sequence,
                    e.event_type, e.event_version, e.payload, e.metadata
               FROM events e
               LEFT JOIN event_positions p
                 ON e.aggregate_type = p.aggregate_type AND e.aggregate_id = p.aggregate_id AND e.sequence = p.sequence
              WHERE e.aggregate_type = 'account' AND e.aggregate_id = $1 AND e.sequence < $2 {clause}
              ORDER BY e.sequence DESC
              LIMIT $3"
        }
        Backend::Postgres => {
            "SELECT position, epoch, transaction_id::text::bigint AS transaction_id, aggregate_type, aggregate_id, sequence,
                    event_type, event_version, payload::text AS payload, metadata::text AS metadata
               FROM events e
              WHERE aggregate_type = 'account' AND aggregate_id = $1 AND sequence < $2 {clause}
              ORDER BY sequence DESC
              LIMIT $3"
        }
    };
    let sql = sql.replace("{clause}", &clause);
    let mut query = sqlx::query(&sql).bind(account_id).bind(before.unwrap_or(i64::MAX)).bind(limit);
    for name in types.only.iter().chain(&types.except) {
        query = query.bind(name.as_str());
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(logged_event).collect()
}

/// The sequence, in the account's stream, of the event whose ID
/// ([`crate::audit::event_id`]) is `event_id`; None when the account has no
/// such event. An ID is a hash of its place, so the stream's sequences are
/// tried newest first (what a customer reports is usually recent): no
/// read model is needed, and an ID of another account is never found.
pub async fn account_sequence_of(pool: &sqlx::AnyPool, account_id: &str, event_id: &str) -> Result<Option<i64>, DbError> {
    let (last,): (Option<i64>,) = sqlx::query_as("SELECT MAX(sequence) FROM events WHERE aggregate_type = 'account' AND aggregate_id = $1")
        .bind(account_id)
        .fetch_one(pool)
        .await?;
    let wanted = event_id.to_ascii_lowercase();
    Ok((1..=last.unwrap_or(0)).rev().find(|sequence| crate::audit::event_id("account", account_id, *sequence) == wanted))
}

/// The event at `sequence` of the account's stream, if there is one.
pub async fn account_event_at(
    pool: &sqlx::AnyPool,
    backend: Backend,
    account_id: &str,
    sequence: i64,
) -> Result<Option<LoggedEvent>, DbError> {
    let events = account_events_newest_first(pool, backend, account_id, Some(sequence + 1), 1, &EventTypes::default()).await?;
    Ok(events.into_iter().find(|e| e.sequence == sequence))
}

fn logged_event(row: &AnyRow) -> Result<LoggedEvent, DbError> {
    let payload: String = row.try_get("payload")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(LoggedEvent {
        position: row.try_get("position")?,
        epoch: row.try_get("epoch")?,
        transaction_id: row.try_get("transaction_id")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: serde_json::from_str(&payload).map_err(|e| DbError::Corrupt(e.to_string()))?,
        metadata: serde_json::from_str(&metadata).map_err(|e| DbError::Corrupt(e.to_string()))?,
    })
}

impl Projector {
    /// A projector over `db`.
    pub fn new(db: Database) -> Projector {
        Projector::with_thresholds(db, crate::signals::Thresholds::default())
    }

    /// A projector whose fraud rules use `thresholds`.
    pub fn with_thresholds(db: Database, thresholds: crate::signals::Thresholds) -> Projector {
        Projector {
            db,
            thresholds,
            running: Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            progressed: tokio::sync::watch::channel(0).0,
            last_progress: std::sync::Mutex::new(std::time::Instant::now()),
            behind_since: std::sync::Mutex::new(None),
            background: std::sync::atomic::AtomicBool::new(false),
            appended_here: std::sync::atomic::AtomicBool::new(false),
            held_elsewhere: std::sync::atomic::AtomicBool::new(false),
            lock: LIVE_LOCK,
        }
    }

    /// Whether this projector keeps the live read models (not a rebuild's
    /// tables beside them): only that one tells the other instances.
    fn is_live(&self) -> bool {
        self.lock == LIVE_LOCK
    }

    /// Applies every event not yet applied; returns how many.
    pub async fn catch_up(&self) -> Result<usize, DbError> {
        let mut total = 0;
        loop {
            let n = self.run_batch().await?;
            total += n;
            if n < BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// One batch; when it fails, its events one at a time, so that one event
    /// the read models cannot take does not stop the others (it is skipped,
    /// recorded in `projection_failures`, logged with its position, and
    /// counted by `/metrics` and `/readyz`).
    async fn run_batch(&self) -> Result<usize, DbError> {
        let _guard = self.running.lock().await;
        self.batch_holding_the_lock(BATCH).await
    }

    async fn batch_holding_the_lock(&self, size: i64) -> Result<usize, DbError> {
        let error = match self.apply_batch(size).await {
            Ok(n) => return Ok(n),
            Err(e) => e,
        };
        if !is_about_the_data(&error) {
            return Err(error);
        }
        tracing::warn!(error = %error, "a projector batch failed; applying its events one at a time");
        let mut applied = 0;
        while applied < size as usize {
            let error = match self.apply_batch(1).await {
                Ok(0) => break,
                Ok(n) => {
                    applied += n;
                    continue;
                }
                Err(e) => e,
            };
            if !is_about_the_data(&error) {
                return Err(error);
            }
            // Once more, in case it was a passing conflict; then skip it.
            match self.apply_batch(1).await {
                Ok(n) => applied += n,
                Err(again) if is_about_the_data(&again) => {
                    self.skip_one(&again.to_string()).await?;
                    applied += 1;
                }
                Err(again) => return Err(again),
            }
        }
        Ok(applied)
    }

    /// Begins a projector transaction holding the projector's lock; None when
    /// another process holds it.
    async fn begin_locked(&self) -> Result<Option<sqlx::Transaction<'static, sqlx::Any>>, DbError> {
        let mut tx = self.db.any.begin().await?;
        if self.db.backend == Backend::Postgres {
            let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)").bind(self.lock).fetch_one(&mut *tx).await?;
            if !got {
                // Another process is projecting right now.
                return Ok(None);
            }
        } else {
            // Take SQLite's write lock before reading the checkpoint.
            sqlx::query("UPDATE projector_checkpoints SET position = position WHERE projection = $1").bind(CORE).execute(&mut *tx).await?;
        }
        if self.is_live() && rebuild::in_place_running(&mut tx).await? {
            // An in-place rebuild refills the read models: it alone projects.
            return Ok(None);
        }
        Ok(Some(tx))
    }

    async fn apply_batch(&self, limit: i64) -> Result<usize, DbError> {
        let Some(mut tx) = self.begin_locked().await? else {
            self.held_elsewhere.store(true, std::sync::atomic::Ordering::Relaxed);
            self.tell_the_projecting_instance().await?;
            return Ok(0);
        };
        self.held_elsewhere.store(false, std::sync::atomic::Ordering::Relaxed);
        let after = checkpoint(&mut tx, CORE).await?;
        let events = read_events_after(&mut tx, self.db.backend, after, limit).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let batch = Batch::read(events);
        let n = batch.parsed.len();
        self.apply_parsed(tx, batch).await?;
        Ok(n)
    }

    /// Applies a batch read ahead of time, the checkpoint being still
    /// `from` (false, nothing applied, when it has moved or another process
    /// holds the projector).
    async fn apply_read_ahead(&self, from: Checkpoint, batch: Batch) -> Result<bool, DbError> {
        let Some(mut tx) = self.begin_locked().await? else { return Ok(false) };
        if checkpoint(&mut tx, CORE).await? != from {
            return Ok(false);
        }
        self.apply_parsed(tx, batch).await?;
        Ok(true)
    }

    /// Every projection takes the batch, the checkpoint moves to its last
    /// event, and the transaction commits.
    async fn apply_parsed(&self, mut tx: sqlx::Transaction<'static, sqlx::Any>, batch: Batch) -> Result<(), DbError> {
        let Batch { parsed, audit } = batch;
        let Some(last) = parsed.last() else { return Ok(()) };
        let reached = last.event.checkpoint();
        // The signals first: they read the registry and the trail as they
        // were before the batch (see signals::apply).
        crate::signals::apply(&mut tx, &parsed, &self.thresholds).await?;
        crate::audit::append(&mut tx, audit).await?;
        read_models::apply(&mut tx, &parsed).await?;
        crate::adoption::apply(&mut tx, &parsed).await?;
        set_checkpoint(&mut tx, reached).await?;
        self.announce(&mut tx).await?;
        tx.commit().await?;
        self.moved_on();
        Ok(())
    }

    /// Moves past the next event, which the read models cannot take: it
    /// still gets its audit row (the trail and its chain stay whole, so a
    /// rebuild gives the same hashes), and is recorded as a failure. An event
    /// whose audit row cannot be written is not skipped: the error stands.
    async fn skip_one(&self, error: &str) -> Result<(), DbError> {
        {
            let Some(mut tx) = self.begin_locked().await? else { return Ok(()) };
            let after = checkpoint(&mut tx, CORE).await?;
            let Some(event) = read_events_after(&mut tx, self.db.backend, after, 1).await?.pop() else {
                return Ok(());
            };
            let event = Parsed::new(event);
            crate::audit::append(&mut tx, vec![crate::audit::prepare(&event)]).await?;
            let event = event.event;
            tracing::error!(
                position = event.position,
                aggregate_id = %event.aggregate_id,
                sequence = event.sequence,
                event_type = %event.event_type,
                error,
                "the projector cannot apply this event; skipped it and recorded the failure"
            );
            sqlx::query(
                "INSERT INTO projection_failures (position, transaction_id, aggregate_type, aggregate_id, sequence, event_type, error, failed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(event.position)
            .bind(event.transaction_id)
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(event.sequence)
            .bind(&event.event_type)
            .bind(error.chars().take(1000).collect::<String>())
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
            set_checkpoint(&mut tx, (event.epoch, event.transaction_id, event.position)).await?;
            self.announce(&mut tx).await?;
            tx.commit().await?;
            self.moved_on();
        }
        Ok(())
    }

    /// Changes whenever the read models moved on (in this process or, on
    /// PostgreSQL, in another instance): what the trail's subscribers wait on.
    pub fn progress(&self) -> tokio::sync::watch::Receiver<u64> {
        self.progressed.subscribe()
    }

    /// Called after this process appended to the log: wakes its projector.
    pub fn appended(&self) {
        self.appended_here.store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Another instance holds the projector: tells it (`NOTIFY
    /// ledger_appended`) of this process's appends, once for all those made
    /// since the last time. An append itself notifies nobody: a NOTIFY holds
    /// a database-wide lock from its commit until the commit ends, which
    /// would make every append commit alone.
    async fn tell_the_projecting_instance(&self) -> Result<(), DbError> {
        if self.is_live() && self.appended_here.swap(false, std::sync::atomic::Ordering::Relaxed) {
            if let Some(pool) = self.db.postgres() {
                if let Err(e) = sqlx::query("SELECT pg_notify('ledger_appended', '')").execute(pool).await {
                    // Told next time (or found by the other instance's poll).
                    self.appended_here.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Tells the other instances, at commit, that the read models moved on.
    async fn announce(&self, conn: &mut AnyConnection) -> Result<(), DbError> {
        if self.db.backend == Backend::Postgres && self.is_live() {
            sqlx::query("SELECT pg_notify('ledger_projected', '')").execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Runs a batch soon: in the background task when there is one, here otherwise.
    async fn nudge(&self) -> Result<(), DbError> {
        if self.background.load(std::sync::atomic::Ordering::Relaxed) {
            self.wake.notify_one();
        } else {
            self.catch_up().await?;
        }
        Ok(())
    }

    /// Events the projector skipped because the read models could not take
    /// them (each logged with its position when it happened).
    pub async fn failures(&self) -> Result<i64, DbError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM projection_failures").fetch_one(&self.db.any).await?;
        Ok(n)
    }

    /// Waits until the account's read models include its event `sequence`
    /// (read-your-writes), or `timeout` passes; looks again only when the
    /// read models moved on.
    pub async fn wait_for(&self, account_id: &str, sequence: i64, timeout: Duration) -> Result<bool, DbError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut progressed = self.progressed.subscribe();
        loop {
            let seen: Option<(i64,)> = sqlx::query_as("SELECT last_sequence FROM status_accounts WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(&self.db.any)
                .await?;
            if seen.is_some_and(|(s,)| s >= sequence) {
                return Ok(true);
            }
            self.nudge().await?;
            if self.background.load(std::sync::atomic::Ordering::Relaxed)
                && tokio::time::timeout_at(deadline, progressed.changed()).await.is_err()
            {
                return Ok(false);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// Whether the log holds an account with this ID (whatever the read
    /// models know of it yet).
    pub async fn account_in_log(&self, account_id: &str) -> Result<bool, DbError> {
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT sequence FROM events WHERE aggregate_type = 'account' AND aggregate_id = $1 LIMIT 1")
                .bind(account_id)
                .fetch_optional(&self.db.any)
                .await?;
        Ok(found.is_some())
    }

    /// Waits until the account's read models include every event of its
    /// stream so far: what a read of the customer's own view needs.
    pub async fn wait_for_account(&self, account_id: &str, timeout: Duration) -> Result<bool, DbError> {
        let (last,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(sequence) FROM events WHERE aggregate_type = 'account' AND aggregate_id = $1")
                .bind(account_id)
                .fetch_one(&self.db.any)
                .await?;
        match last {
            Some(sequence) => self.wait_for(account_id, sequence, timeout).await,
            None => Ok(true),
        }
    }

    /// Catches up until nothing in the log is left unapplied, or `timeout`
    /// passes (on PostgreSQL an event waits while older transactions
    /// anywhere in the cluster are still open). Returns whether it settled.
    pub async fn settle(&self, timeout: Duration) -> Result<bool, DbError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.catch_up().await?;
            if self.lag().await? == 0 {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Events in the log not yet applied.
    pub async fn lag(&self) -> Result<i64, DbError> {
        let mut conn = self.db.any.acquire().await?;
        let at = checkpoint(&mut conn, CORE).await?;
        self.lag_after(&mut conn, at).await
    }

    /// Events in the log after `at`.
    async fn lag_after(&self, conn: &mut AnyConnection, (epoch, txid, position): Checkpoint) -> Result<i64, DbError> {
        let query = match self.db.backend {
            Backend::Sqlite => sqlx::query_as("SELECT COUNT(*) FROM event_positions WHERE position > $1").bind(position),
            Backend::Postgres => {
                sqlx::query_as("SELECT COUNT(*) FROM events WHERE (epoch, transaction_id, position) > ($1, $2::text::xid8, $3)")
                    .bind(epoch)
                    .bind(txid.to_string())
                    .bind(position)
            }
        };
        let (n,): (i64,) = query.fetch_one(&mut *conn).await?;
        Ok(n)
    }

    /// The read models moved on (here or, on PostgreSQL, in another instance).
    fn moved_on(&self) {
        if let Ok(mut at) = self.last_progress.lock() {
            *at = std::time::Instant::now();
        }
        self.progressed.send_modify(|n| *n += 1);
    }

    /// How long the projector has been behind without moving on: 0 when the
    /// read models are current. Above a minute or two, it is stuck (a
    /// transaction open elsewhere on the server, a failing batch), not busy.
    /// Counted from the later of the last progress and the first check
    /// that found it behind: a quiet night before a brief lag is no stall.
    /// `lag` is what [`Projector::lag`] just read.
    pub fn stalled_for(&self, lag: i64) -> std::time::Duration {
        let Ok(mut since) = self.behind_since.lock() else { return std::time::Duration::ZERO };
        if lag == 0 {
            *since = None;
            return std::time::Duration::ZERO;
        }
        let first_seen = *since.get_or_insert_with(std::time::Instant::now);
        let progress = self.last_progress.lock().map(|at| *at).unwrap_or(first_seen);
        first_seen.max(progress).elapsed()
    }

    /// What the read models reflect: the log position of the last event
    /// they hold, and how many events in the log they do not hold yet.
    pub async fn reflects(&self) -> Result<(i64, i64), DbError> {
        let mut conn = self.db.any.acquire().await?;
        let at = checkpoint(&mut conn, CORE).await?;
        Ok((at.2, self.lag_after(&mut conn, at).await?))
    }

    /// Events at or before the checkpoint: what the read models hold.
    pub async fn applied(&self) -> Result<i64, DbError> {
        let mut conn = self.db.any.acquire().await?;
        let (epoch, txid, position) = checkpoint(&mut conn, CORE).await?;
        let query = match self.db.backend {
            Backend::Sqlite => sqlx::query_as("SELECT COUNT(*) FROM event_positions WHERE position <= $1").bind(position),
            Backend::Postgres => {
                sqlx::query_as("SELECT COUNT(*) FROM events WHERE (epoch, transaction_id, position) <= ($1, $2::text::xid8, $3)")
                    .bind(epoch)
                    .bind(txid.to_string())
                    .bind(position)
            }
        };
        let (n,): (i64,) = query.fetch_one(&mut *conn).await?;
        Ok(n)
    }

    /// Catches up at least to every event committed before this call (a
    /// global read-your-writes), or until `timeout`. Returns whether it got there.
    pub async fn catch_up_to_now(&self, timeout: Duration) -> Result<bool, DbError> {
        let mark: Option<Checkpoint> = match self.db.backend {
            Backend::Sqlite => {
                sqlx::query_as("SELECT 0, 0, position FROM event_positions ORDER BY position DESC LIMIT 1")
                    .fetch_optional(&self.db.any)
                    .await?
            }
            Backend::Postgres => {
                sqlx::query_as(
                    "SELECT epoch, transaction_id::text::bigint, position FROM events
                      ORDER BY events.epoch DESC, events.transaction_id DESC, events.position DESC LIMIT 1",
                )
                .fetch_optional(&self.db.any)
                .await?
            }
        };
        let Some(mark) = mark else { return Ok(true) };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut progressed = self.progressed.subscribe();
        loop {
            let mut conn = self.db.any.acquire().await?;
            if checkpoint(&mut conn, CORE).await? >= mark {
                return Ok(true);
            }
            drop(conn);
            self.nudge().await?;
            if self.background.load(std::sync::atomic::Ordering::Relaxed)
                && tokio::time::timeout_at(deadline, progressed.changed()).await.is_err()
            {
                return Ok(false);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// Runs in the background: catches up when woken (a request's write in
    /// this process, an append or a batch in another instance on
    /// PostgreSQL), and at least every `every` (a missed notification, or
    /// the lock freed by an instance that stopped).
    pub fn spawn(self: std::sync::Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        self.background.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(async move {
            // Stops with this task.
            let _listener = self.clone().listen().map(AbortOnDrop);
            if let Err(e) = crate::audit::ensure_filter_indexes(&self.db.any).await {
                tracing::error!(error = %e, "cannot build the audit trail's filter indexes");
            }
            loop {
                let pace = match self.catch_up().await {
                    Ok(0) if self.held_elsewhere.load(std::sync::atomic::Ordering::Relaxed) => PACE_WHILE_ELSEWHERE,
                    Ok(0) => Duration::ZERO,
                    Ok(_) => PACE,
                    Err(e) => {
                        tracing::error!(error = %e, "projector batch failed; retrying");
                        Duration::ZERO
                    }
                };
                // Wakes during the pause are kept (one permit) and answered
                // by one batch after it.
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(every) => {}
                }
            }
        })
    }

    /// On PostgreSQL, follows the other instances: their appends wake this
    /// projector, their batches wake this instance's waiters.
    fn listen(self: std::sync::Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let pool = self.db.postgres()?.clone();
        Some(tokio::spawn(async move {
            loop {
                let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for other instances; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(e) = listener.listen_all(["ledger_appended", "ledger_projected"]).await {
                    tracing::warn!(error = %e, "cannot listen for other instances; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                while let Ok(note) = listener.recv().await {
                    match note.channel() {
                        "ledger_appended" => self.wake.notify_one(),
                        _ => self.moved_on(),
                    }
                }
            }
        }))
    }
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether an error comes from the data (a constraint, a value a read model
/// cannot take) rather than from reaching the database: only then is one
/// event to blame, and worth skipping.
fn is_about_the_data(error: &DbError) -> bool {
    match error {
        DbError::Corrupt(_) => true,
        DbError::Sql(sqlx::Error::Database(e)) => {
            let code = e.code().unwrap_or_default();
            // PostgreSQL: class 22 (data exception) and 23 (integrity
            // constraint violation); SQLite: SQLITE_CONSTRAINT (19) and
            // SQLITE_MISMATCH (20) with their extended codes. Anything else
            // (a full disk, a timeout, a shutdown) is retried, never skipped.
            let data_pg = code.starts_with("22") || code.starts_with("23");
            let data_sqlite = code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 19 | 20));
            data_pg || data_sqlite
        }
        DbError::Sql(sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::TypeNotFound { .. }) => true,
        DbError::Sql(_) | DbError::Migration(_) | DbError::Config(_) | DbError::Refused(_) => false,
    }
}

async fn set_checkpoint(conn: &mut AnyConnection, (epoch, transaction_id, position): Checkpoint) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (projection, epoch, transaction_id, position) VALUES ($1, $2, $3, $4)
         ON CONFLICT (projection) DO UPDATE
            SET epoch = excluded.epoch, transaction_id = excluded.transaction_id, position = excluded.position",
    )
    .bind(CORE)
    .bind(epoch)
    .bind(transaction_id)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn checkpoint(conn: &mut AnyConnection, projection: &str) -> Result<Checkpoint, DbError> {
    let row: Option<Checkpoint> = sqlx::query_as("SELECT epoch, transaction_id, position FROM projector_checkpoints WHERE projection = $1")
        .bind(projection)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.unwrap_or((0, 0, 0)))
}
