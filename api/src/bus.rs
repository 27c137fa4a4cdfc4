//! Runs account commands: load the account (from its snapshot and later
//! events), let the domain decide, append the events with the request's
//! metadata. A concurrent append to the same account is retried on fresh
//! state, never lost and never swallowed.

use std::collections::HashMap;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository};
use cqrs_es::{AggregateContext, AggregateError, EventStore};
use ledger_domain::{Account, AccountCommand, AccountError, AccountEvent, AccountServices, EventMetadata, Refusal};
use ledger_projections::append::{AlsoWrite, Append, AppendError, NewEvent, SnapshotWrite};
use ledger_projections::AccountStore;

/// What a command produced.
#[derive(Debug, Clone)]
pub struct Executed {
    pub events: Vec<AccountEvent>,
    /// The sequence in the account's stream of the first of `events` (the
    /// next one to come when there are none).
    pub first_sequence: i64,
    /// The account as the command left it: what a response needs, without
    /// loading it again.
    pub account: Account,
}

impl Executed {
    /// The decisive refusal among the events, if any: the last one, so that
    /// a fifth wrong password answers "locked", not "wrong password".
    pub fn refusal(&self) -> Option<Refusal> {
        self.events.iter().rev().find_map(AccountEvent::refusal)
    }

    /// How many passkeys the command deleted.
    pub fn passkeys_revoked(&self) -> usize {
        self.events
            .iter()
            .find_map(|e| match e {
                AccountEvent::PasskeysRevoked { passkeys, .. } => Some(passkeys.len()),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Whether an event matching `pred` was recorded.
    pub fn has(&self, pred: impl Fn(&AccountEvent) -> bool) -> bool {
        self.events.iter().any(pred)
    }
}

/// The metadata of what the ledger itself records (a notice, a mail that
/// did not go out): actor `system`, no request.
pub fn system_metadata(at: chrono::DateTime<chrono::Utc>) -> EventMetadata {
    EventMetadata::system(at)
}

/// Why a command did not run.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Domain(#[from] AccountError),
    #[error("the account kept changing under concurrent commands")]
    Contended,
    /// A single-use record the outcome depended on (a ceremony) was taken
    /// by another request: nothing was recorded.
    #[error("a single-use record was already taken")]
    Gone,
    #[error("event store: {0}")]
    Store(String),
    /// The database is out of reach (see `DbError::is_outage`).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// A storage failure as the bus reports it: an outage apart.
fn db_error(e: ledger_projections::DbError) -> BusError {
    if e.is_outage() {
        BusError::Unavailable(e.to_string())
    } else {
        BusError::Store(e.to_string())
    }
}

/// The account command bus.
pub struct Ledger {
    /// Loads accounts (snapshot and later events).
    store: AccountStore,
    /// Where the appends go.
    db: ledger_projections::Database,
    services: AccountServices,
    /// For the command-side lookups a decision needs (credential claims).
    lookups: sqlx::AnyPool,
    /// Accounts as this process last wrote them, so that a command need not
    /// read the account's snapshot and events again. A stale entry (another
    /// instance wrote since) is harmless: its append collides with the
    /// newer event's sequence, and the command decides again on a fresh load.
    cache: std::sync::Mutex<HashMap<String, Cached>>,
    /// Told of every append.
    projector: std::sync::Arc<ledger_projections::Projector>,
    /// For reading the events a cached account missed.
    events: ledger_projections::EventRepository,
}

/// An account as this process last left it.
#[derive(Clone)]
struct Cached {
    account: Account,
    sequence: usize,
    snapshot: Option<usize>,
}

/// Accounts kept in the cache; past this it starts again empty.
const CACHED_ACCOUNTS: usize = 10_000;

/// Attempts before giving up with `409 concurrent_update`.
const ATTEMPTS: usize = 16;

/// The waits between attempts after a concurrent append: each a little
/// longer, from 2 ms, with jitter (backon adds up to the delay again) so
/// racing writers spread out, at most 160 ms; ends after [`ATTEMPTS`].
fn retry_delays() -> impl Iterator<Item = std::time::Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(2))
        .with_max_delay(std::time::Duration::from_millis(80))
        .with_jitter()
        .with_max_times(ATTEMPTS)
        .build()
}

impl Ledger {
    pub fn new(
        db: &ledger_projections::Database,
        services: AccountServices,
        projector: std::sync::Arc<ledger_projections::Projector>,
    ) -> Ledger {
        Ledger {
            store: ledger_projections::EventRepository::account_store(db),
            db: db.clone(),
            services,
            lookups: db.any.clone(),
            cache: Default::default(),
            projector,
            events: ledger_projections::EventRepository::for_database(db),
        }
    }

    fn cached(&self, account_id: &str) -> Option<Cached> {
        self.cache.lock().ok()?.get(account_id).cloned()
    }

    fn remember(&self, account_id: &str, entry: Option<Cached>) {
        let Ok(mut cache) = self.cache.lock() else { return };
        match entry {
            Some(entry) => {
                if cache.len() >= CACHED_ACCOUNTS && !cache.contains_key(account_id) {
                    cache.clear();
                }
                cache.insert(account_id.to_string(), entry);
            }
            None => {
                cache.remove(account_id);
            }
        }
    }

    /// Brings the cached account up to `sequence`, the stream's last event
    /// as the database told a request in a round trip it made anyway (the
    /// credential's claim): when another instance wrote since, the events
    /// after the cached one are read and applied (one query), instead of
    /// deciding on stale state and losing the append to the other writer,
    /// or loading the snapshot and its events again. Anything unexpected
    /// drops the entry: the command then loads the account as usual.
    pub async fn catch_up_cached(&self, account_id: &str, sequence: i64) {
        let Some(mut cached) = self.cached(account_id) else { return };
        if cached.sequence as i64 >= sequence {
            return;
        }
        // The other writer wrote a snapshot if it crossed a snapshot
        // boundary, and this copy cannot know how many the store holds
        // now: deciding on it would write a snapshot as if it were the
        // first. Such an account is loaded instead.
        let from = cached.sequence;
        if snapshot_written(from, (sequence as usize).saturating_sub(from)) {
            return self.remember(account_id, None);
        }
        let events = match self.events.get_last_events::<Account>(account_id, cached.sequence).await {
            Ok(events) => events,
            Err(_) => return self.remember(account_id, None),
        };
        for event in events {
            if event.sequence != cached.sequence + 1 {
                return self.remember(account_id, None);
            }
            let Ok(event) = ledger_domain::account::upcast::read(&event.event_type, &event.event_version, &event.payload) else {
                return self.remember(account_id, None);
            };
            cqrs_es::Aggregate::apply(&mut cached.account, event);
            cached.sequence += 1;
        }
        if snapshot_written(from, cached.sequence - from) {
            // Appended meanwhile, past a snapshot boundary.
            return self.remember(account_id, None);
        }
        let Ok(mut cache) = self.cache.lock() else { return };
        // A command of this process may have moved the entry on meanwhile.
        if cache.get(account_id).is_none_or(|c| c.sequence < cached.sequence) {
            cache.insert(account_id.to_string(), cached);
        }
    }

    /// The account to decide on: from the cache, or loaded (and whether it
    /// came from the cache).
    async fn context(&self, account_id: &str) -> Result<(EventStoreAggregateContext<Account>, bool), BusError> {
        if let Some(c) = self.cached(account_id) {
            let context = EventStoreAggregateContext {
                aggregate_id: account_id.to_string(),
                aggregate: c.account,
                current_sequence: c.sequence,
                current_snapshot: c.snapshot,
            };
            return Ok((context, true));
        }
        // cqrs-es reads the snapshot and the events after it in two
        // statements: a snapshot written between them leaves the context
        // counting one snapshot too few, and its next snapshot would be
        // written as if it were that one. Such a load is read again.
        for _ in 0..3 {
            let context = self.store.load_aggregate(account_id).await.map_err(store_error)?;
            let now = ledger_projections::store::snapshot_number(&self.lookups, "account", account_id).await.map_err(db_error)?;
            if now == context.current_snapshot {
                return Ok((context, false));
            }
        }
        Err(BusError::Contended)
    }

    /// The deployment's policy.
    pub fn policy(&self) -> &ledger_domain::Policy {
        &self.services.policy
    }

    /// The other accounts holding any of `account`'s registered addresses
    /// (seed 000, in bold; seed 003, 004: up to two each), from the
    /// command-side index.
    pub async fn accounts_sharing_addresses(&self, account: &Account, account_id: &str) -> Result<Vec<String>, BusError> {
        let mut shared: Vec<String> = Vec::new();
        for email in account.registered_addresses() {
            let others =
                ledger_projections::claims::accounts_sharing_email(&self.lookups, email.as_str(), account_id).await.map_err(db_error)?;
            for other in others {
                if !shared.contains(&other) {
                    shared.push(other);
                }
            }
        }
        Ok(shared)
    }

    /// The account's current state.
    pub async fn load(&self, account_id: &str) -> Result<Account, BusError> {
        let mut context = self.store.load_aggregate(account_id).await.map_err(store_error)?;
        Ok(context.aggregate().clone())
    }

    /// Decides and appends. The domain decides on the loaded state without
    /// mutating it: cqrs-es applies the new events to the context again when
    /// it writes a snapshot, so applying them here too would double them.
    ///
    /// Facts from the command-side indexes are filled in on every attempt:
    /// the other accounts holding the account's address, for the commands
    /// that carry them (whatever the caller put there is replaced).
    ///
    /// A command that binds a credential is told, on every attempt, whether
    /// the credential ID is already bound: the database refuses a second
    /// binding in the append itself (migration 0005), which comes back here
    /// as a conflict, so a race between two bindings of one ID ends with the
    /// loser deciding again on the fresh claim and recording its refusal.
    pub async fn execute(&self, account_id: &str, command: AccountCommand, metadata: EventMetadata) -> Result<Executed, BusError> {
        self.execute_with(account_id, command, metadata, |_, _| Vec::new()).await
    }

    /// [`Ledger::execute`], with working-table writes that belong to the
    /// outcome, chosen from the decided events and the sequence the first
    /// of them will have (`also`, called on every attempt) and committed in
    /// the append's transaction: a login's
    /// ceremony taken and its session started in the same commit as the
    /// login's event. When a write that takes a single-use row finds it
    /// gone, nothing is recorded ([`BusError::Gone`]).
    pub async fn execute_with(
        &self,
        account_id: &str,
        mut command: AccountCommand,
        metadata: EventMetadata,
        also: impl Fn(&[AccountEvent], i64) -> Vec<AlsoWrite>,
    ) -> Result<Executed, BusError> {
        let metadata = serde_json::to_string(&metadata.to_map()).map_err(|e| BusError::Store(e.to_string()))?;
        let mut delays = retry_delays();
        // Every attempt that does not wait is followed by one on a fresh
        // load, so this bound is only a guard.
        for _ in 0..2 * ATTEMPTS {
            if let Some(credential_id) = command.credential_to_bind() {
                let taken = ledger_projections::claims::credential_taken(&self.lookups, credential_id).await.map_err(db_error)?;
                command.set_credential_taken(taken);
            }
            let (mut context, from_cache) = self.context(account_id).await?;
            // The shared-address rule, on the address of the state it decides on.
            if let Some(shared) = command.email_shared_with_mut() {
                *shared = self.accounts_sharing_addresses(context.aggregate(), account_id).await?;
            }
            let events = context.aggregate().decide(command.clone(), &self.services.policy)?;
            let mut account = context.aggregate().clone();
            let first_sequence = context.current_sequence as i64 + 1;
            let writes = also(&events, first_sequence);
            if events.is_empty() && writes.is_empty() {
                if from_cache {
                    // Nothing appended, so nothing proved the state current.
                    self.remember(account_id, None);
                    continue;
                }
                return Ok(Executed { events, account, first_sequence });
            }
            let (sequence, snapshot) = (context.current_sequence, context.current_snapshot);
            for event in &events {
                cqrs_es::Aggregate::apply(&mut account, event.clone());
            }
            let next_snapshot = snapshot_written(sequence, events.len()).then(|| snapshot.map_or(1, |s| s + 1));
            let appended = match serialized(&events, &account, next_snapshot) {
                Ok((serialized, snapshot)) => {
                    let append = Append {
                        aggregate_type: "account",
                        aggregate_id: account_id,
                        after: sequence,
                        events: serialized,
                        metadata: metadata.clone(),
                        snapshot,
                        also: writes,
                    };
                    ledger_projections::append::append(&self.db, append).await
                }
                Err(e) => Err(e),
            };
            match appended {
                Ok(()) => {
                    if !events.is_empty() {
                        self.projector.appended();
                    }
                    let snapshot = next_snapshot.or(snapshot);
                    self.remember(account_id, Some(Cached { account: account.clone(), sequence: sequence + events.len(), snapshot }));
                    return Ok(Executed { events, account, first_sequence });
                }
                Err(AppendError::Gone) => return Err(BusError::Gone),
                Err(AppendError::Conflict) => {
                    self.remember(account_id, None);
                    if from_cache {
                        // Most likely only the cache was behind: decide again at once.
                        continue;
                    }
                    tracing::debug!(account_id, "concurrent append; deciding again on fresh state");
                    let Some(delay) = delays.next() else { break };
                    tokio::time::sleep(delay).await;
                }
                Err(AppendError::Db(e)) => {
                    self.remember(account_id, None);
                    return Err(db_error(e));
                }
            }
        }
        Err(BusError::Contended)
    }
}

/// The events as the store keeps them, and the snapshot they complete (the
/// account after all of them).
fn serialized(
    events: &[AccountEvent],
    account: &Account,
    snapshot: Option<usize>,
) -> Result<(Vec<NewEvent>, Option<SnapshotWrite>), AppendError> {
    use cqrs_es::DomainEvent;
    let unwritable = |e: serde_json::Error| AppendError::Db(ledger_projections::DbError::Corrupt(e.to_string()));
    let events = events
        .iter()
        .map(|e| {
            Ok(NewEvent {
                event_type: e.event_type(),
                event_version: e.event_version(),
                payload: serde_json::to_string(e).map_err(unwritable)?,
            })
        })
        .collect::<Result<Vec<_>, AppendError>>()?;
    let snapshot = match snapshot {
        Some(number) => Some(SnapshotWrite { payload: serde_json::to_string(account).map_err(unwritable)?, number }),
        None => None,
    };
    Ok((events, snapshot))
}

/// Whether appending `n` events after `sequence` writes a snapshot (or, for
/// events another writer appended, wrote one): the event store's rule (every [`ledger_projections::store::SNAPSHOT_EVERY`]
/// events), so the cached context counts its snapshots as the store does.
fn snapshot_written(sequence: usize, n: usize) -> bool {
    let every = ledger_projections::store::SNAPSHOT_EVERY;
    n >= every - (sequence % every)
}

fn store_error(e: AggregateError<AccountError>) -> BusError {
    match e {
        AggregateError::UserError(d) => BusError::Domain(d),
        AggregateError::AggregateConflict => BusError::Contended,
        AggregateError::DatabaseConnectionError(e) => BusError::Unavailable(e.to_string()),
        AggregateError::UnexpectedError(e) if e.downcast_ref::<sqlx::Error>().is_some_and(ledger_projections::db::is_outage) => {
            BusError::Unavailable(e.to_string())
        }
        other => BusError::Store(other.to_string()),
    }
}

/// Records events of streams that decide nothing (staff acts, attempts
/// that belong to no account): each event is appended as it comes.
pub struct ActivityLog<A: cqrs_es::Aggregate<Command = <A as cqrs_es::Aggregate>::Event>> {
    store: cqrs_es::persist::PersistedEventStore<ledger_projections::EventRepository, A>,
    /// Told of every append.
    projector: std::sync::Arc<ledger_projections::Projector>,
}

/// Staff acts outside any account, one stream per staff member.
pub type StaffLog = ActivityLog<ledger_domain::staff::StaffActivity>;

/// Attempts that belong to no account, one stream per attempt.
pub type SystemLog = ActivityLog<ledger_domain::system::SystemActivity>;

impl<A: cqrs_es::Aggregate<Command = <A as cqrs_es::Aggregate>::Event>> ActivityLog<A> {
    pub fn new(
        store: cqrs_es::persist::PersistedEventStore<ledger_projections::EventRepository, A>,
        projector: std::sync::Arc<ledger_projections::Projector>,
    ) -> ActivityLog<A> {
        ActivityLog { store, projector }
    }

    /// Appends `event` to the stream `stream_id`; returns its sequence.
    pub async fn record(&self, stream_id: &str, event: A::Event, metadata: EventMetadata) -> Result<i64, BusError> {
        let metadata = metadata.to_map();
        let mut delays = retry_delays();
        loop {
            let context = self.store.load_aggregate(stream_id).await.map_err(|e| BusError::Store(e.to_string()))?;
            match self.store.commit(vec![event.clone()], context, metadata.clone()).await {
                Ok(envelopes) => {
                    self.projector.appended();
                    return Ok(envelopes.last().map(|e| e.sequence as i64).unwrap_or_default());
                }
                Err(AggregateError::AggregateConflict) => {
                    let Some(delay) = delays.next() else { return Err(BusError::Contended) };
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(BusError::Store(e.to_string())),
            }
        }
    }
}
