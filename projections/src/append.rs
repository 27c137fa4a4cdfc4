//! The event store's write side: a command's events, the snapshot they
//! complete, and the working-table writes that belong to the same outcome
//! (the single-use ceremony a login consumes, the session it starts), in
//! one transaction and one commit.
//!
//! Reads stay with the event store library (`cqrs-es`'s repositories read
//! the rows written here); the append is the ledger's own so that a login's
//! outcome is one commit instead of three.

use sqlx::{Any, AnyConnection, Connection};

use crate::db::{Backend, Database, DbError};

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    OptionalText(Option<String>),
    Int(i64),
    OptionalInt(Option<i64>),
}

/// A statement of the working tables, written by their owner and run in
/// the append's transaction, before the events.
#[derive(Debug, Clone)]
pub struct AlsoWrite {
    sql: &'static str,
    args: Vec<Arg>,
    /// The statement must change a row (taking a single-use record): when
    /// it changes none, nothing is written and the append answers
    /// [`AppendError::Gone`].
    takes_a_row: bool,
}

impl AlsoWrite {
    /// A write whose row count does not matter.
    pub fn new(sql: &'static str, args: Vec<Arg>) -> AlsoWrite {
        AlsoWrite { sql, args, takes_a_row: false }
    }

    /// A write that takes a single-use row: the append happens only if it
    /// changes one.
    pub fn taking(sql: &'static str, args: Vec<Arg>) -> AlsoWrite {
        AlsoWrite { sql, args, takes_a_row: true }
    }
}

/// One event to append, serialised.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub event_version: String,
    /// JSON.
    pub payload: String,
}

/// The stream's snapshot, written with the events that complete it.
#[derive(Debug, Clone)]
pub struct SnapshotWrite {
    /// The aggregate after the appended events, JSON.
    pub payload: String,
    /// This snapshot's number (the store counts them from 1).
    pub number: usize,
}

/// What to append.
pub struct Append<'a> {
    pub aggregate_type: &'static str,
    pub aggregate_id: &'a str,
    /// The stream's last sequence the command decided on.
    pub after: usize,
    pub events: Vec<NewEvent>,
    /// The request's metadata, JSON, shared by the events.
    pub metadata: String,
    pub snapshot: Option<SnapshotWrite>,
    pub also: Vec<AlsoWrite>,
}

/// Why nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to the stream first (or bound the same
    /// credential): decide again on fresh state.
    #[error("the stream changed under the command")]
    Conflict,
    /// A single-use row the outcome depends on was already taken.
    #[error("a single-use record was already taken")]
    Gone,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> AppendError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => AppendError::Conflict,
            _ => AppendError::Db(DbError::Sql(e)),
        }
    }
}

struct Statements {
    event: &'static str,
    first_snapshot: &'static str,
    next_snapshot: &'static str,
}

const POSTGRES: Statements = Statements {
    event: "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
            VALUES ($1, $2, $3, $4, $5, $6::json, $7::json)",
    first_snapshot: "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
                     VALUES ($1, $2, $3, $4, $5::json)",
    next_snapshot: "UPDATE snapshots SET last_sequence = $3, current_snapshot = $4, payload = $5::json
                    WHERE aggregate_type = $1 AND aggregate_id = $2 AND current_snapshot = $6",
};

const SQLITE: Statements = Statements {
    event: "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
            VALUES ($1, $2, $3, $4, $5, $6, $7)",
    first_snapshot: "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
                     VALUES ($1, $2, $3, $4, $5)",
    next_snapshot: "UPDATE snapshots SET last_sequence = $3, current_snapshot = $4, payload = $5
                    WHERE aggregate_type = $1 AND aggregate_id = $2 AND current_snapshot = $6",
};

/// Appends in one transaction: the working-table writes first (a taken
/// ceremony refuses the rest before anything is written), then the events
/// at the sequences after `after` (a concurrent writer's event at one of
/// them fails the append as a [`AppendError::Conflict`]), then the
/// snapshot, replacing the one the command's load counted.
pub async fn append(db: &Database, append: Append<'_>) -> Result<(), AppendError> {
    let statements = match db.backend {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    };
    let mut conn = db.any.acquire().await.map_err(DbError::Sql)?;
    let mut tx = Connection::begin(&mut *conn).await.map_err(DbError::Sql)?;
    for write in &append.also {
        let changed = bound(sqlx::query(write.sql), &write.args).execute(&mut *tx).await?.rows_affected();
        if write.takes_a_row && changed == 0 {
            tx.rollback().await.map_err(DbError::Sql)?;
            return Err(AppendError::Gone);
        }
    }
    let last = write_events(&mut tx, statements, &append).await?;
    if let Some(snapshot) = &append.snapshot {
        let first = snapshot.number == 1;
        let mut query = sqlx::query(if first { statements.first_snapshot } else { statements.next_snapshot })
            .bind(append.aggregate_type)
            .bind(append.aggregate_id)
            .bind(last as i64)
            .bind(snapshot.number as i64)
            .bind(snapshot.payload.as_str());
        if !first {
            query = query.bind(snapshot.number as i64 - 1);
        }
        let written = query.execute(&mut *tx).await?;
        if written.rows_affected() != 1 {
            // Another writer's snapshot: its events are there too.
            tx.rollback().await.map_err(DbError::Sql)?;
            return Err(AppendError::Conflict);
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn write_events(tx: &mut AnyConnection, statements: &Statements, append: &Append<'_>) -> Result<usize, AppendError> {
    let mut sequence = append.after;
    for event in &append.events {
        sequence += 1;
        sqlx::query(statements.event)
            .bind(append.aggregate_type)
            .bind(append.aggregate_id)
            .bind(sequence as i64)
            .bind(event.event_type.as_str())
            .bind(event.event_version.as_str())
            .bind(event.payload.as_str())
            .bind(append.metadata.as_str())
            .execute(&mut *tx)
            .await?;
    }
    Ok(sequence)
}

fn bound<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Text(s) => query.bind(s.as_str()),
            Arg::OptionalText(s) => query.bind(s.as_deref()),
            Arg::Int(n) => query.bind(*n),
            Arg::OptionalInt(n) => query.bind(*n),
        };
    }
    query
}
