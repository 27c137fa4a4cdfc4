//! Connections and migrations for the two supported databases.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::AnyPool;

/// A storage failure. Details are for the logs, never for a customer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is not what this version expects: {0}")]
    Corrupt(String),
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
}

/// The database's own pool, for what the `Any` pool cannot do (the event
/// store library, `LISTEN`).
#[derive(Debug, Clone)]
pub enum TypedPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// The PostgreSQL pool, when the ledger runs on PostgreSQL.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.typed {
            TypedPool::Postgres(pool) => Some(pool),
            TypedPool::Sqlite(_) => None,
        }
    }
}

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const SHARED_0002: &str = include_str!("../../migrations/shared/0002_read_models.sql");
const SHARED_0003: &str = include_str!("../../migrations/shared/0003_passkey_lifecycle.sql");
const SHARED_0004: &str = include_str!("../../migrations/shared/0004_audit_signals_adoption.sql");
const SHARED_0008: &str = include_str!("../../migrations/shared/0008_otp_devices.sql");
const SHARED_0009: &str = include_str!("../../migrations/shared/0009_email_registry_slots.sql");

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "event_store",
        sqlite: include_str!("../../migrations/sqlite/0001_event_store.sql"),
        postgres: include_str!("../../migrations/postgres/0001_event_store.sql"),
    },
    Migration { version: 2, name: "read_models", sqlite: SHARED_0002, postgres: SHARED_0002 },
    Migration { version: 3, name: "passkey_lifecycle", sqlite: SHARED_0003, postgres: SHARED_0003 },
    Migration { version: 4, name: "audit_signals_adoption", sqlite: SHARED_0004, postgres: SHARED_0004 },
    Migration {
        version: 5,
        name: "credential_claims",
        sqlite: include_str!("../../migrations/sqlite/0005_credential_claims.sql"),
        postgres: include_str!("../../migrations/postgres/0005_credential_claims.sql"),
    },
    Migration {
        version: 6,
        name: "account_emails",
        sqlite: include_str!("../../migrations/sqlite/0006_account_emails.sql"),
        postgres: include_str!("../../migrations/postgres/0006_account_emails.sql"),
    },
    Migration {
        version: 7,
        name: "notifications",
        sqlite: include_str!("../../migrations/sqlite/0007_notifications.sql"),
        postgres: include_str!("../../migrations/postgres/0007_notifications.sql"),
    },
    Migration { version: 8, name: "otp_devices", sqlite: SHARED_0008, postgres: SHARED_0008 },
    Migration { version: 9, name: "email_registry_slots", sqlite: SHARED_0009, postgres: SHARED_0009 },
    Migration {
        version: 10,
        name: "order_epochs",
        sqlite: include_str!("../../migrations/sqlite/0010_order_epochs.sql"),
        postgres: include_str!("../../migrations/postgres/0010_order_epochs.sql"),
    },
    Migration {
        version: 11,
        name: "quiet_appends",
        sqlite: include_str!("../../migrations/sqlite/0011_quiet_appends.sql"),
        postgres: include_str!("../../migrations/postgres/0011_quiet_appends.sql"),
    },
    Migration {
        version: 12,
        name: "fresh_snapshots",
        sqlite: include_str!("../../migrations/sqlite/0012_fresh_snapshots.sql"),
        postgres: include_str!("../../migrations/postgres/0012_fresh_snapshots.sql"),
    },
];

impl Database {
    /// Connects to `url`: `postgres://...` for PostgreSQL, `sqlite://path`
    /// (created when missing) for the embedded default.
    pub async fn connect(url: &str) -> Result<Database, DbError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let postgres = PgPoolOptions::new().max_connections(10).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
            let any = AnyPoolOptions::new().max_connections(10).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
            Ok(Database { backend: Backend::Postgres, any, typed: TypedPool::Postgres(postgres) })
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
            Ok(Database { backend: Backend::Sqlite, any, typed: TypedPool::Sqlite(sqlite) })
        }
    }

    /// Applies the migrations not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        let mut tx = self.any.begin().await?;
        if self.backend == Backend::Postgres {
            // Two processes starting at once on an empty database must not
            // both create the table (its type would collide).
            sqlx::query("SELECT pg_advisory_xact_lock(7400001)").execute(&mut *tx).await?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS ledger_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut applied = 0;
        for m in MIGRATIONS {
            let mut tx = self.any.begin().await?;
            if self.backend == Backend::Postgres {
                // Two processes starting at once must not both migrate.
                sqlx::query("SELECT pg_advisory_xact_lock(7400001)").execute(&mut *tx).await?;
            }
            let done: Option<(i64,)> =
                sqlx::query_as("SELECT version FROM ledger_migrations WHERE version = $1").bind(m.version).fetch_optional(&mut *tx).await?;
            if done.is_some() {
                continue;
            }
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO ledger_migrations (version, name) VALUES ($1, $2)")
                .bind(m.version)
                .bind(m.name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied += 1;
        }
        Ok(applied)
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
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ledger_migrations").fetch_one(&self.any).await?;
        Ok(n as usize >= MIGRATIONS.len())
    }
}
