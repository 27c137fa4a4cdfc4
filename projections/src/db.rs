//! Connections and migrations for the two supported databases.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyConnection, AnyPool, Connection};

/// A storage failure. Details are for the logs, never for a customer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is not what this version expects: {0}")]
    Corrupt(String),
    /// A migration failed, or the database's record of them disagrees with
    /// this version's files (a changed or unknown migration).
    #[error("migrations: {0}")]
    Migration(String),
    /// The database's address is not one the ledger can use.
    #[error("{0}")]
    Config(String),
    /// The database is fine but the operation cannot run now or as this
    /// role (another rebuild running, tables owned by another role).
    #[error("{0}")]
    Refused(String),
}

/// How long a request waits for a PostgreSQL connection before it is
/// answered `unavailable`: long past any wait a healthy pool makes, short
/// enough that an outage fails requests fast.
const POSTGRES_WAIT: Duration = Duration::from_secs(5);

impl DbError {
    /// Whether the database could not be reached or is refusing work (a
    /// connection lost or refused, the pool's wait ended, the server
    /// shutting down): a passing outage, not a fault of the request.
    pub fn is_outage(&self) -> bool {
        matches!(self, DbError::Sql(e) if is_outage(e))
    }
}

/// Whether `e` is a database outage (see [`DbError::is_outage`]).
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        // Connection exceptions (class 08), the server shutting down or not
        // yet accepting connections (57P01-57P03), too many connections, a
        // database not accepting connections.
        sqlx::Error::Database(d) => {
            d.code().is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "55000"))
        }
        _ => false,
    }
}

/// What lies behind an outage: the pool reports only that it waited in
/// vain, so one direct connection is tried for the server's own answer
/// (refused, unknown host, too many clients...).
pub async fn outage_cause(url: &str, e: &DbError) -> String {
    let lowered = url.to_ascii_lowercase();
    if matches!(e, DbError::Sql(sqlx::Error::PoolTimedOut)) && (lowered.starts_with("postgres://") || lowered.starts_with("postgresql://"))
    {
        let scheme_len = url.find("://").unwrap_or(0);
        let url = format!("{}{}", &lowered[..scheme_len], &url[scheme_len..]);
        match tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(&url)).await {
            Ok(Err(direct)) => return format!("{direct} (the pool waited {} s)", POSTGRES_WAIT.as_secs()),
            Err(_) => return format!("no answer within 3 s (the pool waited {} s)", POSTGRES_WAIT.as_secs()),
            Ok(Ok(_)) => {}
        }
    }
    e.to_string()
}

fn migrate_error(e: MigrateError) -> DbError {
    match e {
        MigrateError::Execute(e) => DbError::Sql(e),
        other => DbError::Migration(other.to_string()),
    }
}

/// Which database the ledger runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pools the ledger uses: the typed pool the event store library needs,
/// and an `Any` pool for the read models and working tables, whose SQL is the
/// same on both databases.
#[derive(Debug, Clone)]
pub struct Database {
    pub backend: Backend,
    pub any: AnyPool,
    pub typed: TypedPool,
    /// SQLite in memory: nothing on disk, nothing beside it.
    memory: bool,
}

/// The database's own pool, for what the `Any` pool cannot do (the event
/// store library, `LISTEN`).
#[derive(Debug, Clone)]
pub enum TypedPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    pub(crate) fn new(backend: Backend, any: AnyPool, typed: TypedPool, memory: bool) -> Database {
        Database { backend, any, typed, memory }
    }

    /// Whether this is SQLite in memory (`sqlite::memory:`).
    pub fn is_memory(&self) -> bool {
        self.memory
    }

    /// The PostgreSQL pool, when the ledger runs on PostgreSQL.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.typed {
            TypedPool::Postgres(pool) => Some(pool),
            TypedPool::Sqlite(_) => None,
        }
    }
}

/// The migrations of each database, embedded at build time from
/// `migrations/<database>/` (the files both share are links into
/// `migrations/shared/`). sqlx's migrator records them in
/// `_sqlx_migrations` with a checksum, refuses a changed or missing one, and
/// on PostgreSQL holds an advisory lock while it runs, so replicas starting
/// together migrate once.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

impl Database {
    /// Connects to `url`: `postgres://...` for PostgreSQL, `sqlite://path`
    /// (created when missing) for the embedded default.
    pub async fn connect(url: &str) -> Result<Database, DbError> {
        sqlx::any::install_default_drivers();
        let (scheme, _) = url.split_once(':').unwrap_or(("", ""));
        let scheme = scheme.to_ascii_lowercase();
        // Anything else would be taken for a SQLite file name and created.
        if !matches!(scheme.as_str(), "postgres" | "postgresql" | "sqlite") {
            return Err(DbError::Config(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (or be sqlite::memory:)".into(),
            ));
        }
        let lowered;
        let url = if scheme == "postgres" || scheme == "postgresql" {
            // `Postgres://` is PostgreSQL too, not a SQLite file name.
            lowered = format!("{scheme}{}", &url[scheme.len()..]);
            lowered.as_str()
        } else {
            url
        };
        if scheme == "postgres" || scheme == "postgresql" {
            let postgres = PgPoolOptions::new().max_connections(10).acquire_timeout(POSTGRES_WAIT).connect(url).await?;
            let any = AnyPoolOptions::new().max_connections(10).acquire_timeout(POSTGRES_WAIT).connect(url).await?;
            Ok(Database::new(Backend::Postgres, any, TypedPool::Postgres(postgres), false))
        } else {
            // `sqlite::memory:` (nothing on disk: the bench's ceiling) is one
            // named in-memory database that both pools share, kept alive by
            // connections that never close.
            let memory = matches!(url, "sqlite::memory:" | "sqlite://:memory:");
            let named;
            let url = if memory {
                static MEMORY_DATABASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = MEMORY_DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                named = format!("sqlite:file:ledger-memory-{}-{n}?mode=memory&cache=shared", std::process::id());
                named.as_str()
            } else {
                url
            };
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let mut typed = SqlitePoolOptions::new().max_connections(4);
            if memory {
                typed = typed.min_connections(1).idle_timeout(None).max_lifetime(None);
            }
            let sqlite = typed.connect_with(options).await?;
            // The typed pool has switched the file to WAL; the Any pool shares it.
            let mut untyped = AnyPoolOptions::new().max_connections(4);
            if memory {
                untyped = untyped.min_connections(1).idle_timeout(None).max_lifetime(None);
            }
            let any = untyped
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await?;
            Ok(Database::new(Backend::Sqlite, any, TypedPool::Sqlite(sqlite), memory))
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        }
    }

    /// Applies the migrations not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        let mut conn = self.any.acquire().await?;
        // The migrator's own lock, held across the count: it is re-entrant
        // (PostgreSQL's session advisory lock; nothing on SQLite), so the
        // migrator takes it again inside.
        conn.lock().await.map_err(migrate_error)?;
        let ran = self.migrate_locked(&mut conn).await;
        conn.unlock().await.map_err(migrate_error)?;
        ran
    }

    async fn migrate_locked(&self, conn: &mut AnyConnection) -> Result<usize, DbError> {
        conn.ensure_migrations_table().await.map_err(migrate_error)?;
        self.adopt_earlier_record(conn).await?;
        let before = conn.list_applied_migrations().await.map_err(migrate_error)?.len();
        self.migrator().run_direct(&mut *conn).await.map_err(migrate_error)?;
        let after = conn.list_applied_migrations().await.map_err(migrate_error)?.len();
        Ok(after.saturating_sub(before))
    }

    /// Databases migrated before sqlx's migrator kept their record in
    /// `ledger_migrations` (version, name); those versions are entered in
    /// the migrator's table as applied, with the checksums of the same
    /// files, and the old table goes.
    async fn adopt_earlier_record(&self, conn: &mut AnyConnection) -> Result<(), DbError> {
        let exists = match self.backend {
            Backend::Postgres => "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'ledger_migrations'",
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'ledger_migrations'",
        };
        let (n,): (i64,) = sqlx::query_as(exists).fetch_one(&mut *conn).await?;
        if n == 0 {
            return Ok(());
        }
        // Read before the transaction, so that its first statement is a
        // write: on SQLite a transaction that read first cannot take the
        // write lock once another connection has written (busy at once).
        let versions: Vec<(i64,)> = sqlx::query_as("SELECT version FROM ledger_migrations ORDER BY version").fetch_all(&mut *conn).await?;
        let mut tx = conn.begin().await?;
        for (version,) in versions {
            let m = self
                .migrator()
                .iter()
                .find(|m| m.version == version)
                .ok_or_else(|| DbError::Corrupt(format!("migration {version} was applied but this version does not know it")))?;
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES ($1, $2, TRUE, $3, 0) ON CONFLICT (version) DO NOTHING",
            )
            .bind(version)
            .bind(m.description.to_string())
            .bind(m.checksum.to_vec())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DROP TABLE ledger_migrations").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL: when this cluster's transaction counter is behind the
    /// current epoch's events (a logical restore into another cluster, a
    /// major-version upgrade), begins a new epoch so that new events sort
    /// after everything in the log. Returns the new epoch, if one began.
    pub async fn ensure_order_epoch(&self) -> Result<Option<i64>, DbError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut tx = self.any.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7400001)").execute(&mut *tx).await?;
        let (epoch, newest, now): (i64, Option<i64>, i64) = sqlx::query_as(
            "SELECT ledger_epoch(),
                    (SELECT MAX(transaction_id)::text::bigint FROM events WHERE epoch = ledger_epoch()),
                    pg_current_xact_id()::text::bigint",
        )
        .fetch_one(&mut *tx)
        .await?;
        if newest.is_none_or(|n| n < now) {
            return Ok(None);
        }
        let next = epoch + 1;
        sqlx::query("INSERT INTO ledger_epochs (epoch, reason) VALUES ($1, $2)")
            .bind(next)
            .bind(format!("transaction counter {now} behind the log's {} (restored into another cluster?)", newest.unwrap_or_default()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(next))
    }

    /// Whether every migration this version knows has been applied.
    pub async fn migrations_current(&self) -> Result<bool, DbError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(&self.any).await?;
        Ok(n as usize >= self.migrator().iter().count())
    }
}
