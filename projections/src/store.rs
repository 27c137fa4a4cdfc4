//! The event store: sqlite-es or postgres-es behind one repository type, so
//! the rest of the ledger is written once.

use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use ledger_domain::staff::StaffActivity;
use ledger_domain::system::SystemActivity;
use ledger_domain::Account;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use crate::db::{Database, TypedPool};

/// Snapshot after this many events, so a long-lived account loads as fast
/// as a new one.
pub const SNAPSHOT_EVERY: usize = 50;

/// The event repository of whichever database the ledger runs on.
pub enum EventRepository {
    Sqlite(SqliteEventRepository),
    Postgres(PostgresEventRepository),
}

/// The account event store, with snapshots.
pub type AccountStore = PersistedEventStore<EventRepository, Account>;

/// The staff activity store (audit reads, exports, reviews), with snapshots.
pub type StaffStore = PersistedEventStore<EventRepository, StaffActivity>;

/// The store of attempts that belong to no account (one-event streams).
pub type SystemStore = PersistedEventStore<EventRepository, SystemActivity>;

impl EventRepository {
    /// The repository for `db`.
    pub fn for_database(db: &Database) -> EventRepository {
        match &db.typed {
            TypedPool::Sqlite(pool) => EventRepository::Sqlite(SqliteEventRepository::new(pool.clone())),
            TypedPool::Postgres(pool) => EventRepository::Postgres(PostgresEventRepository::new(pool.clone())),
        }
    }

    /// The staff activity store over `db`.
    pub fn staff_store(db: &Database) -> StaffStore {
        PersistedEventStore::new_snapshot_store(EventRepository::for_database(db), SNAPSHOT_EVERY)
    }

    /// The system store over `db`.
    pub fn system_store(db: &Database) -> SystemStore {
        PersistedEventStore::new_event_store(EventRepository::for_database(db))
    }

    /// The account store over `db`.
    pub fn account_store(db: &Database) -> AccountStore {
        PersistedEventStore::new_snapshot_store(EventRepository::for_database(db), SNAPSHOT_EVERY)
            .with_upcasters(vec![Box::new(ledger_domain::account::upcast::AccountUpcaster)])
    }
}

/// The number of the stream's current snapshot (cqrs-es counts them from
/// 1), None before its first.
pub async fn snapshot_number(pool: &sqlx::AnyPool, aggregate_type: &str, aggregate_id: &str) -> Result<Option<usize>, crate::DbError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT current_snapshot FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2")
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(n,)| n as usize))
}

/// The snapshot a commit writes, brought up to the commit's last event.
///
/// cqrs-es 0.5 builds the snapshot from the events up to the snapshot
/// boundary only (a multiple of [`SNAPSHOT_EVERY`]), while the repositories
/// store it as of the commit's last event: a command whose events straddle a
/// boundary (a fifth wrong password: rejected, then locked) would leave a
/// snapshot without its last events, and every later load would skip them.
/// The events after the boundary are applied here before it is written.
fn complete_snapshot<A: Aggregate>(payload: Value, events: &[SerializedEvent]) -> Result<Value, PersistenceError> {
    let Some(last) = events.last() else { return Ok(payload) };
    let boundary = last.sequence / SNAPSHOT_EVERY * SNAPSHOT_EVERY;
    let after: Vec<&SerializedEvent> = events.iter().filter(|e| e.sequence > boundary).collect();
    if after.is_empty() {
        return Ok(payload);
    }
    let unreadable = |e: serde_json::Error| PersistenceError::DeserializationError(Box::new(e));
    let mut aggregate: A = serde_json::from_value(payload).map_err(unreadable)?;
    for event in after {
        // Just serialised by this commit: the current shape, no upcasting.
        aggregate.apply(serde_json::from_value(event.payload.clone()).map_err(unreadable)?);
    }
    serde_json::to_value(aggregate).map_err(|e| PersistenceError::UnknownError(Box::new(e)))
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            EventRepository::Sqlite(r) => r.get_events::<A>(aggregate_id).await,
            EventRepository::Postgres(r) => r.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            EventRepository::Sqlite(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            EventRepository::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(&self, aggregate_id: &str) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            EventRepository::Sqlite(r) => r.get_snapshot::<A>(aggregate_id).await,
            EventRepository::Postgres(r) => r.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let snapshot_update = match snapshot_update {
            Some((id, payload, n)) => Some((id, complete_snapshot::<A>(payload, events)?, n)),
            None => None,
        };
        match self {
            EventRepository::Sqlite(r) => r.persist::<A>(events, snapshot_update).await,
            EventRepository::Postgres(r) => r.persist::<A>(events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        match self {
            EventRepository::Sqlite(r) => r.stream_events::<A>(aggregate_id).await,
            EventRepository::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            EventRepository::Sqlite(r) => r.stream_all_events::<A>().await,
            EventRepository::Postgres(r) => r.stream_all_events::<A>().await,
        }
    }
}
