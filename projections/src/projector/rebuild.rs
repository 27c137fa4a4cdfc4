//! `ledger projections rebuild`: the read models built again from the whole
//! log.
//!
//! By default beside the live ones, which keep serving and following the
//! log meanwhile:
//!
//! - on PostgreSQL in a schema of its own, [`SHADOW_SCHEMA`], first on the
//!   search path of the rebuild's connections: the projector's SQL finds the
//!   new tables there and everything else (the log, the staff) in the live
//!   schema. The switch, one transaction, drops the live tables and moves
//!   the new ones into their schema: readers wait for that, not for the
//!   rebuild.
//! - on SQLite in a file of its own beside the database, which attaches the
//!   live file under the name `live` (SQLite looks for a name in the main
//!   file before an attached one). The switch copies the new rows over the
//!   live ones in one transaction: writes wait for the copy (readers do not).
//!
//! In place ([`RebuildMode::InPlace`], and always for an in-memory database)
//! empties the live tables first: the views are empty until it ends.

use std::path::PathBuf;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Executor, PgConnection};

use super::{read_events_after, AbortOnDrop, Batch, Checkpoint, Projector, CORE, LIVE_LOCK};
use crate::db::{Backend, Database, DbError, TypedPool};
use crate::read_models;

/// Events read per transaction by a rebuild.
const REBUILD_BATCH: i64 = 5_000;

/// Where a rebuild builds on PostgreSQL: dropped with everything in it when
/// a rebuild begins (an interrupted one's leftovers) and when it ends.
pub const SHADOW_SCHEMA: &str = "ledger_rebuild";

/// The advisory lock of a rebuild's own projector (not the live one's).
const SHADOW_LOCK: i64 = 7400003;

/// Held for a whole rebuild (a session lock): a second one is refused.
const REBUILD_LOCK: i64 = 7400004;

/// The row of `projector_checkpoints` an in-place rebuild keeps while it
/// runs (its `position` is a heartbeat, milliseconds since the epoch): the
/// live projectors of every instance stand aside, so that the rebuild alone
/// fills the emptied tables and its count and end are the real ones.
const IN_PLACE: &str = "rebuild-in-place";

/// A heartbeat older than this is a rebuild that died: the live projectors
/// take over again.
const IN_PLACE_STALE_MS: i64 = 60_000;

/// Whether an in-place rebuild is running (its heartbeat is fresh).
pub(super) async fn in_place_running(conn: &mut sqlx::AnyConnection) -> Result<bool, DbError> {
    let since = chrono::Utc::now().timestamp_millis() - IN_PLACE_STALE_MS;
    let fresh: Option<(i64,)> = sqlx::query_as("SELECT position FROM projector_checkpoints WHERE projection = $1 AND position > $2")
        .bind(IN_PLACE)
        .bind(since)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(fresh.is_some())
}

/// Marks an in-place rebuild as running, now.
async fn heartbeat(conn: &mut sqlx::AnyConnection) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (projection, epoch, transaction_id, position) VALUES ($1, 0, 0, $2)
         ON CONFLICT (projection) DO UPDATE SET position = excluded.position",
    )
    .bind(IN_PLACE)
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One rebuild at a time per database, whatever its mode: PostgreSQL's
/// session advisory lock on a connection of its own, a lock on a file
/// beside the database for SQLite (both go with the process).
enum RebuildLock {
    Postgres(PgConnection),
    Sqlite(std::fs::File, PathBuf),
    Memory,
}

impl RebuildLock {
    async fn take(db: &Database) -> Result<RebuildLock, DbError> {
        let busy = || DbError::Refused("another rebuild is running on this database; wait for it to end".into());
        match &db.typed {
            _ if db.is_memory() => Ok(RebuildLock::Memory),
            TypedPool::Postgres(pool) => {
                let mut conn = pool.acquire().await?.detach();
                let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)").bind(REBUILD_LOCK).fetch_one(&mut conn).await?;
                if got {
                    Ok(RebuildLock::Postgres(conn))
                } else {
                    Err(busy())
                }
            }
            TypedPool::Sqlite(pool) => {
                let path = PathBuf::from(format!("{}-rebuild.lock", pool.connect_options().get_filename().display()));
                let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
                match file.try_lock() {
                    Ok(()) => Ok(RebuildLock::Sqlite(file, path)),
                    Err(std::fs::TryLockError::WouldBlock) => Err(busy()),
                    Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
                }
            }
        }
    }

    async fn release(self) {
        match self {
            RebuildLock::Postgres(conn) => {
                // Closing the session ends its lock.
                let _ = conn.close().await;
            }
            RebuildLock::Sqlite(file, path) => {
                let _ = std::fs::remove_file(&path);
                drop(file);
            }
            RebuildLock::Memory => {}
        }
    }
}

fn io(e: std::io::Error) -> DbError {
    DbError::Sql(sqlx::Error::Io(e))
}

/// How the switch waits for readers and the live projector before it gives
/// up and tries again (each try catches up first).
const SWITCH_TRIES: u32 = 5;

/// How a rebuild reaches the read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RebuildMode {
    /// Into new tables beside the live ones, switched in once caught up.
    #[default]
    Beside,
    /// Empties the live tables, then fills them.
    InPlace,
}

/// How far a rebuild has got; reported after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Events applied so far.
    pub applied: usize,
    /// Events in the log when the rebuild began.
    pub total: i64,
}

/// The tables a rebuild replaces: the read models, and the failures it
/// meets anew. The checkpoint table is shared with other followers of the
/// log: only the core row is carried over.
fn replaced() -> impl Iterator<Item = &'static str> {
    read_models::TABLES.iter().copied().chain(["projection_failures"])
}

impl Projector {
    /// Builds the read models again from the whole log, beside the live
    /// ones; returns how many events it applied.
    pub async fn rebuild(&self) -> Result<usize, DbError> {
        self.rebuild_with(RebuildMode::Beside, &|_| {}).await
    }

    /// Builds the read models again from the whole log, reporting progress
    /// after each batch; returns how many events it applied.
    pub async fn rebuild_with(&self, mode: RebuildMode, report: &(dyn Fn(Progress) + Sync)) -> Result<usize, DbError> {
        let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(&self.db.any).await?;
        let report = move |applied| report(Progress { applied, total });
        let lock = RebuildLock::take(&self.db).await?;
        let outcome = if mode == RebuildMode::InPlace || self.db.is_memory() {
            self.rebuild_in_place(&report).await
        } else {
            self.rebuild_beside(&report).await
        };
        lock.release().await;
        if outcome.is_ok() {
            self.moved_on();
            self.wake.notify_one();
        }
        outcome
    }

    async fn rebuild_beside(&self, report: &(dyn Fn(usize) + Sync)) -> Result<usize, DbError> {
        let shadow = Shadow::create(&self.db).await?;
        let outcome = self.build_and_switch(&shadow, report).await;
        if let Err(e) = shadow.remove().await {
            tracing::warn!(error = %e, "cannot remove the rebuild's tables; the next rebuild removes them");
        }
        outcome
    }

    async fn build_and_switch(&self, shadow: &Shadow, report: &(dyn Fn(usize) + Sync)) -> Result<usize, DbError> {
        let beside = Projector { lock: SHADOW_LOCK, ..Projector::with_thresholds(shadow.db.clone(), self.thresholds.clone()) };
        let mut applied = beside.apply_with_read_ahead(report).await;
        applied += beside.rest_of_the_log(applied, report).await?;
        shadow.finish().await?;
        tracing::info!(applied, "rebuild: the new read models have caught up with the log; switching them in");
        let mut tries = 0;
        loop {
            tries += 1;
            match shadow.switch(&self.db, &beside, &mut applied).await {
                Ok(()) => {
                    report(applied);
                    return Ok(applied);
                }
                Err(e) if tries < SWITCH_TRIES && is_lock_wait(&e) => {
                    tracing::warn!(error = %e, tries, "rebuild: the switch waited too long for readers; trying again");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Empties the read models and fills them again from the whole log.
    /// The live projectors (of this process and of every other instance)
    /// stand aside meanwhile ([`IN_PLACE`]), so the rebuild's count and end
    /// are the real ones.
    async fn rebuild_in_place(&self, report: &(dyn Fn(usize) + Sync)) -> Result<usize, DbError> {
        let _guard = self.running.lock().await;
        {
            let mut tx = self.db.any.begin().await?;
            if self.db.backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LIVE_LOCK).execute(&mut *tx).await?;
            }
            heartbeat(&mut tx).await?;
            for table in replaced() {
                let empty = match self.db.backend {
                    Backend::Postgres => format!("TRUNCATE {table}"),
                    Backend::Sqlite => format!("DELETE FROM {table}"),
                };
                sqlx::query(&empty).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM projector_checkpoints WHERE projection = $1").bind(CORE).execute(&mut *tx).await?;
            for (name, _) in crate::audit::FILTER_INDEXES {
                sqlx::query(&format!("DROP INDEX IF EXISTS {name}")).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        // A projector of its own (another advisory lock): the live ones
        // find the marker and wait.
        let rebuilding = Projector { lock: SHADOW_LOCK, ..Projector::with_thresholds(self.db.clone(), self.thresholds.clone()) };
        let pool = self.db.any.clone();
        let beating = AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                let beat = match pool.acquire().await {
                    Ok(mut conn) => heartbeat(&mut conn).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = beat {
                    tracing::warn!(error = %e, "the in-place rebuild's heartbeat failed");
                }
            }
        }));
        let applied = rebuilding.apply_with_read_ahead(report).await;
        let rest = rebuilding.rest_of_the_log(applied, report).await;
        drop(beating);
        // Whatever happened, the filter indexes come back and the live
        // projectors take over.
        let indexes = crate::audit::ensure_filter_indexes(&self.db.any).await;
        sqlx::query("DELETE FROM projector_checkpoints WHERE projection = $1").bind(IN_PLACE).execute(&self.db.any).await?;
        indexes?;
        let applied = applied + rest?;
        report(applied);
        Ok(applied)
    }

    /// What a read-ahead left: events appended meanwhile, or from a batch
    /// that failed, which is applied again one event at a time.
    async fn rest_of_the_log(&self, mut applied: usize, report: &(dyn Fn(usize) + Sync)) -> Result<usize, DbError> {
        let before = applied;
        loop {
            let n = self.batch_holding_the_lock(REBUILD_BATCH).await?;
            applied += n;
            report(applied);
            if n < REBUILD_BATCH as usize {
                return Ok(applied - before);
            }
        }
    }

    /// The bulk of a rebuild: a reader task reads and parses the next
    /// batches on a connection of its own while this one writes, so the
    /// ledger's work and the database's overlap. Stops at the first batch
    /// that fails or does not follow the checkpoint, and at the end of the
    /// log; returns how many events it applied.
    async fn apply_with_read_ahead(&self, report: &(dyn Fn(usize) + Sync)) -> usize {
        report(0);
        let (sender, mut batches) = tokio::sync::mpsc::channel::<(Checkpoint, Batch)>(2);
        let (pool, backend) = (self.db.any.clone(), self.db.backend);
        let start = {
            let mut conn = match self.db.any.acquire().await {
                Ok(conn) => conn,
                Err(_) => return 0,
            };
            super::checkpoint(&mut conn, CORE).await.unwrap_or_default()
        };
        let reader = AbortOnDrop(tokio::spawn(async move {
            let mut after = start;
            loop {
                let events = match pool.acquire().await {
                    Ok(mut conn) => read_events_after(&mut conn, backend, after, REBUILD_BATCH).await,
                    Err(e) => Err(e.into()),
                };
                let events = match events {
                    Ok(events) => events,
                    Err(e) => {
                        tracing::warn!(error = %e, "the rebuild's read-ahead stopped; going on one batch at a time");
                        return;
                    }
                };
                let Some(last) = events.last() else { return };
                let (from, full) = (after, events.len() == REBUILD_BATCH as usize);
                after = last.checkpoint();
                if sender.send((from, Batch::read(events))).await.is_err() || !full {
                    return;
                }
            }
        }));
        let mut applied = 0;
        while let Some((from, batch)) = batches.recv().await {
            let n = batch.parsed.len();
            match self.apply_read_ahead(from, batch).await {
                Ok(true) => {
                    applied += n;
                    report(applied);
                }
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "a rebuild batch failed; going on one batch at a time");
                    break;
                }
            }
        }
        drop(reader);
        tracing::info!(applied, "rebuild: events applied while reading ahead");
        applied
    }
}

/// Whether the switch gave up waiting for a lock (readers, the live
/// projector) rather than failed: it is tried again.
fn is_lock_wait(e: &DbError) -> bool {
    match e {
        DbError::Sql(sqlx::Error::Database(d)) => {
            // PostgreSQL: lock_timeout, a deadlock; SQLite: busy, locked.
            let code = d.code().unwrap_or_default();
            matches!(code.as_ref(), "55P03" | "40P01") || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
        }
        _ => false,
    }
}

/// The tables a rebuild fills, beside the live ones.
struct Shadow {
    /// Connections whose unqualified names find the new tables first.
    db: Database,
    place: Place,
}

enum Place {
    Postgres {
        /// The live schema, quoted for SQL.
        live: String,
        /// Holds [`REBUILD_LOCK`]; closed (and the lock gone) when dropped.
        lock: tokio::sync::Mutex<PgConnection>,
        /// Indexes built once the tables are full (the trail's filters).
        deferred: Vec<String>,
    },
    Sqlite {
        file: PathBuf,
    },
}

impl Shadow {
    async fn create(db: &Database) -> Result<Shadow, DbError> {
        match &db.typed {
            TypedPool::Postgres(pool) => Shadow::create_postgres(db, pool).await,
            TypedPool::Sqlite(pool) => Shadow::create_sqlite(pool).await,
        }
    }

    async fn create_postgres(db: &Database, pool: &sqlx::PgPool) -> Result<Shadow, DbError> {
        let mut lock = pool.acquire().await?.detach();
        let (live,): (String,) = sqlx::query_as("SELECT quote_ident(current_schema())").fetch_one(&mut lock).await?;
        let tables: Vec<String> = replaced().chain(["projector_checkpoints"]).map(String::from).collect();
        let foreign: Option<(String,)> = sqlx::query_as(
            "SELECT pg_get_userbyid(c.relowner)::text FROM pg_class c
              WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1) AND NOT pg_has_role(c.relowner, 'MEMBER')
              LIMIT 1",
        )
        .bind(&tables)
        .fetch_optional(&mut lock)
        .await?;
        if let Some((owner,)) = foreign {
            return Err(DbError::Refused(format!(
                "a rebuild replaces the read models' tables, which only their owner may do: run it as {owner}"
            )));
        }
        lock.execute(format!("DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE").as_str()).await?;
        lock.execute(format!("CREATE SCHEMA {SHADOW_SCHEMA}").as_str()).await?;
        let filters: Vec<&str> = crate::audit::FILTER_INDEXES.iter().map(|(name, _)| *name).collect();
        let mut deferred = Vec::new();
        for table in &tables {
            let (ddl, indexes) = postgres_copy_of(&mut lock, &live, table).await?;
            for statement in ddl {
                lock.execute(statement.as_str()).await?;
            }
            for (name, statement) in indexes {
                if filters.contains(&name.as_str()) {
                    deferred.push(statement);
                } else {
                    lock.execute(statement.as_str()).await?;
                }
            }
        }
        let search_path: std::sync::Arc<str> = format!("SET search_path TO {SHADOW_SCHEMA}, {live}").into();
        let any = AnyPoolOptions::new()
            .max_connections(3)
            .after_connect(move |conn, _| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    conn.execute(&*search_path).await?;
                    Ok(())
                })
            })
            .connect_with((*db.any.connect_options()).clone())
            .await?;
        // Never used: the rebuild's projector tells no one.
        let typed = PgPoolOptions::new().max_connections(1).connect_lazy_with((*pool.connect_options()).clone());
        Ok(Shadow {
            db: Database::new(Backend::Postgres, any, TypedPool::Postgres(typed), false),
            place: Place::Postgres { live, lock: tokio::sync::Mutex::new(lock), deferred },
        })
    }

    async fn create_sqlite(pool: &sqlx::SqlitePool) -> Result<Shadow, DbError> {
        let live = pool.connect_options().get_filename().to_path_buf();
        let file = PathBuf::from(format!("{}-rebuild", live.display()));
        remove_sqlite_files(&file)?;
        let options = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A crash leaves nothing worth keeping: the next rebuild starts over.
            .synchronous(SqliteSynchronous::Off)
            .busy_timeout(std::time::Duration::from_secs(10));
        let attached: std::sync::Arc<str> = live.to_string_lossy().into();
        let typed = SqlitePoolOptions::new()
            .max_connections(2)
            .after_connect(move |conn, _| {
                let attached = attached.clone();
                Box::pin(async move {
                    sqlx::query("ATTACH DATABASE $1 AS live").bind(&*attached).execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        // As private as the live file.
        if let Ok(meta) = std::fs::metadata(&live) {
            std::fs::set_permissions(&file, meta.permissions()).map_err(io)?;
        }
        let url = format!("sqlite://{}", encode_path(&file));
        let attached: std::sync::Arc<str> = live.to_string_lossy().into();
        let any = AnyPoolOptions::new()
            .max_connections(2)
            .after_connect(move |conn, _| {
                let attached = attached.clone();
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA synchronous = OFF").await?;
                    sqlx::query("ATTACH DATABASE $1 AS live").bind(&*attached).execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let filters: Vec<&str> = crate::audit::FILTER_INDEXES.iter().map(|(name, _)| *name).collect();
        let mut conn = any.acquire().await?;
        for table in replaced().chain(["projector_checkpoints"]) {
            // The live file's own DDL, run unqualified: it creates in main,
            // the new file. The trail's filter indexes serve readers only.
            let ddl: Vec<(String, String)> =
                sqlx::query_as("SELECT name, sql FROM live.sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL ORDER BY type DESC, name")
                    .bind(table)
                    .fetch_all(&mut *conn)
                    .await?;
            if ddl.is_empty() {
                return Err(DbError::Corrupt(format!("the read model {table} is missing: run ledger migrate")));
            }
            for (name, sql) in ddl {
                if !filters.contains(&name.as_str()) {
                    conn.execute(sql.as_str()).await?;
                }
            }
        }
        drop(conn);
        Ok(Shadow { db: Database::new(Backend::Sqlite, any, TypedPool::Sqlite(typed), false), place: Place::Sqlite { file } })
    }

    /// Once the tables are full: the indexes left for last, and the
    /// planner's statistics (a new table has none).
    async fn finish(&self) -> Result<(), DbError> {
        if let Place::Postgres { lock, deferred, .. } = &self.place {
            tracing::info!("rebuild: building the audit trail's filter indexes and the planner's statistics");
            let mut lock = lock.lock().await;
            for statement in deferred {
                lock.execute(statement.as_str()).await?;
            }
            for table in replaced() {
                lock.execute(format!("ANALYZE {SHADOW_SCHEMA}.{table}").as_str()).await?;
            }
        }
        Ok(())
    }

    /// Catches the new tables up with the log while the live projector is
    /// held, and puts them in the place of the live ones, in one
    /// transaction.
    async fn switch(&self, live_db: &Database, beside: &Projector, applied: &mut usize) -> Result<(), DbError> {
        match &self.place {
            Place::Postgres { live, .. } => {
                let mut tx = live_db.any.begin().await?;
                tx.execute("SET LOCAL lock_timeout = '5s'").await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LIVE_LOCK).execute(&mut *tx).await?;
                *applied += beside.rest_of_the_log(*applied, &|_| {}).await?;
                for table in replaced() {
                    tx.execute(format!("DROP TABLE {live}.{table}").as_str()).await?;
                    tx.execute(format!("ALTER TABLE {SHADOW_SCHEMA}.{table} SET SCHEMA {live}").as_str()).await?;
                }
                sqlx::query(&format!("DELETE FROM {live}.projector_checkpoints WHERE projection = $1"))
                    .bind(CORE)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!(
                    "INSERT INTO {live}.projector_checkpoints (projection, epoch, transaction_id, position)
                     SELECT projection, epoch, transaction_id, position FROM {SHADOW_SCHEMA}.projector_checkpoints WHERE projection = $1"
                ))
                .bind(CORE)
                .execute(&mut *tx)
                .await?;
                tx.execute("SELECT pg_notify('ledger_projected', '')").await?;
                tx.commit().await?;
            }
            Place::Sqlite { file, .. } => {
                let TypedPool::Sqlite(pool) = &live_db.typed else {
                    return Err(DbError::Corrupt("a SQLite rebuild on another database".into()));
                };
                let mut conn = SqliteConnection::connect_with(&pool.connect_options()).await?;
                sqlx::query("ATTACH DATABASE $1 AS rebuild").bind(file.to_string_lossy().as_ref()).execute(&mut conn).await?;
                let mut tx = conn.begin().await?;
                // The live file's write lock first: appends and the live
                // projector wait from here to the commit.
                sqlx::query("UPDATE main.projector_checkpoints SET position = position WHERE projection = $1")
                    .bind(CORE)
                    .execute(&mut *tx)
                    .await?;
                *applied += beside.rest_of_the_log(*applied, &|_| {}).await?;
                for table in replaced() {
                    // Indexes built once over the copied rows are faster
                    // than kept up to date row by row.
                    let indexes: Vec<(String, String)> = sqlx::query_as(
                        "SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
                    )
                    .bind(table)
                    .fetch_all(&mut *tx)
                    .await?;
                    for (name, _) in &indexes {
                        tx.execute(format!("DROP INDEX main.{name}").as_str()).await?;
                    }
                    tx.execute(format!("DELETE FROM main.{table}").as_str()).await?;
                    tx.execute(format!("INSERT INTO main.{table} SELECT * FROM rebuild.{table}").as_str()).await?;
                    for (_, sql) in &indexes {
                        tx.execute(sql.as_str()).await?;
                    }
                }
                sqlx::query("DELETE FROM main.projector_checkpoints WHERE projection = $1").bind(CORE).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO main.projector_checkpoints (projection, epoch, transaction_id, position)
                     SELECT projection, epoch, transaction_id, position FROM rebuild.projector_checkpoints WHERE projection = $1",
                )
                .bind(CORE)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                conn.close().await?;
            }
        }
        Ok(())
    }

    /// Drops what the rebuild built (after the switch, what is left of it).
    async fn remove(self) -> Result<(), DbError> {
        self.db.any.close().await;
        match &self.db.typed {
            TypedPool::Postgres(pool) => pool.close().await,
            TypedPool::Sqlite(pool) => pool.close().await,
        }
        match self.place {
            Place::Postgres { lock, .. } => {
                let mut lock = lock.into_inner();
                lock.execute(format!("DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE").as_str()).await?;
                lock.close().await?;
            }
            Place::Sqlite { file, .. } => remove_sqlite_files(&file)?,
        }
        Ok(())
    }
}

/// The statements that make `table` of the live schema again in
/// [`SHADOW_SCHEMA`] (columns, defaults, checks, keys, owner, grants), and
/// its other indexes by name, each with the statement that makes it there.
async fn postgres_copy_of(conn: &mut PgConnection, live: &str, table: &str) -> Result<(Vec<String>, Vec<(String, String)>), DbError> {
    let qualified = format!("{live}.{table}");
    let mut ddl = vec![format!("CREATE TABLE {SHADOW_SCHEMA}.{table} (LIKE {qualified} INCLUDING ALL EXCLUDING INDEXES)")];
    let keys: Vec<(String,)> = sqlx::query_as(
        "SELECT format('ALTER TABLE %s.%I ADD CONSTRAINT %I %s', $3::text, $2::text, conname, pg_get_constraintdef(oid))
           FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname",
    )
    .bind(&qualified)
    .bind(table)
    .bind(SHADOW_SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    ddl.extend(keys.into_iter().map(|(s,)| s));
    // The live table's owner, not whoever runs the rebuild (a member of
    // that role, a superuser): migrations run as the owner afterwards.
    let (owner,): (String,) = sqlx::query_as("SELECT quote_ident(pg_get_userbyid(relowner)::text) FROM pg_class WHERE oid = $1::regclass")
        .bind(&qualified)
        .fetch_one(&mut *conn)
        .await?;
    ddl.push(format!("ALTER TABLE {SHADOW_SCHEMA}.{table} OWNER TO {owner}"));
    let grants: Vec<(String,)> = sqlx::query_as(
        "SELECT format('GRANT %s ON %s.%I TO %s', a.privilege_type, $3::text, $2::text,
                       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)::text) END)
           FROM pg_class c, aclexplode(c.relacl) a
          WHERE c.oid = $1::regclass AND a.grantee <> c.relowner",
    )
    .bind(&qualified)
    .bind(table)
    .bind(SHADOW_SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    ddl.extend(grants.into_iter().map(|(s,)| s));
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
          WHERE i.indrelid = $1::regclass
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid)
          ORDER BY 1",
    )
    .bind(&qualified)
    .fetch_all(&mut *conn)
    .await?;
    let on_live = format!(" ON {qualified} ");
    let on_shadow = format!(" ON {SHADOW_SCHEMA}.{table} ");
    let indexes = indexes
        .into_iter()
        .map(|(name, definition)| {
            if definition.contains(&on_live) {
                Ok((name, definition.replacen(&on_live, &on_shadow, 1)))
            } else {
                Err(DbError::Corrupt(format!("cannot read the definition of index {name}: {definition}")))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok((ddl, indexes))
}

/// Removes a SQLite database file and its companions, if there.
fn remove_sqlite_files(file: &std::path::Path) -> Result<(), DbError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = PathBuf::from(format!("{}{suffix}", file.display()));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DbError::Sql(sqlx::Error::Io(e))),
        }
    }
    Ok(())
}

/// A file path as the path of a `sqlite://` address (which is
/// percent-decoded).
fn encode_path(path: &std::path::Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}
