//! One event of the log as the projections read it: its place in the
//! global order, the stored payload and metadata, and the payload parsed
//! once into its stream's event type.

use chrono::{DateTime, Utc};
use ledger_domain::staff::StaffEvent;
use ledger_domain::system::SystemEvent;
use ledger_domain::{AccountEvent, EventMetadata};
use serde::Deserialize;
use serde_json::Value;

use crate::db::DbError;

/// One event of the log, with its place in the global order.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub position: i64,
    /// PostgreSQL's order epoch (see migration 0010); 0 on SQLite.
    pub epoch: i64,
    pub transaction_id: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

impl LoggedEvent {
    /// The metadata, typed; None when it has no readable time.
    pub fn meta(&self) -> Option<EventMetadata> {
        EventMetadata::from_stored(&self.metadata)
    }

    /// When the event happened, as the API recorded it in the metadata.
    pub fn at(&self) -> DateTime<Utc> {
        self.meta().map(|m| m.at).unwrap_or_default()
    }

    /// Where it is in the global order.
    pub fn checkpoint(&self) -> crate::projector::Checkpoint {
        (self.epoch, self.transaction_id, self.position)
    }
}

/// The payload of an event, parsed into its stream's type.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // Nearly every event is an account event.
pub enum Payload {
    Account(AccountEvent),
    Staff(StaffEvent),
    System(SystemEvent),
    /// A stream the ledger does not know, or a payload its type cannot read.
    Unreadable(String),
}

/// A logged event with its payload parsed: what every projection takes.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub event: LoggedEvent,
    pub payload: Payload,
    /// The metadata, read once; None when it has no readable time.
    pub meta: Option<EventMetadata>,
    pub at: DateTime<Utc>,
}

impl Parsed {
    /// Parses the payload once. An unreadable payload is kept as such: the
    /// audit trail records it; the account read models refuse it.
    pub fn new(event: LoggedEvent) -> Parsed {
        let payload = parse(&event.aggregate_type, &event.event_type, &event.event_version, &event.payload);
        let meta = event.meta();
        let at = meta.as_ref().map(|m| m.at).unwrap_or_default();
        Parsed { event, payload, meta, at }
    }

    /// The request's channel (`web`, `mobile_app`, ...), empty when none.
    pub fn channel(&self) -> &str {
        self.meta.as_ref().and_then(|m| m.channel.as_deref()).unwrap_or("")
    }

    /// The account event, when this is one; an account event that cannot
    /// be read is an error about the data (the projector skips it).
    pub fn account(&self) -> Result<Option<&AccountEvent>, DbError> {
        match (&self.payload, self.event.aggregate_type.as_str()) {
            (Payload::Account(e), _) => Ok(Some(e)),
            (Payload::Unreadable(why), "account") => {
                Err(DbError::Corrupt(format!("{} #{}: {why}", self.event.aggregate_id, self.event.sequence)))
            }
            _ => Ok(None),
        }
    }
}

/// Parses a stored payload by its stream.
pub fn parse(aggregate_type: &str, event_type: &str, version: &str, payload: &Value) -> Payload {
    let parsed = match aggregate_type {
        "account" => ledger_domain::account::upcast::read(event_type, version, payload).map(Payload::Account),
        "staff" => StaffEvent::deserialize(payload).map(Payload::Staff),
        "system" => SystemEvent::deserialize(payload).map(Payload::System),
        other => return Payload::Unreadable(format!("unknown stream {other:?}")),
    };
    parsed.unwrap_or_else(|e| Payload::Unreadable(e.to_string()))
}
