//! Storage and read models: the event store on SQLite or PostgreSQL, the
//! projector that follows the log in global order, and the read models it
//! builds (status inquiry, e-mail registry, credential index, audit trail,
//! signals, adoption); and the command-side lookups that requests decide on.

pub mod adoption;
pub mod append;
pub mod audit;
pub mod checkpoint;
pub mod claims;
pub mod db;
pub mod event;
pub mod merkle;
pub mod projector;
pub mod read_models;
mod rows;
pub mod signals;
pub mod store;
pub mod timestamp;

pub use db::{Backend, Database, DbError};
pub use projector::Projector;
pub use store::{AccountStore, EventRepository, StaffStore, SystemStore};

/// Milliseconds since the Unix epoch, as instants are stored in read models.
pub fn millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

/// The instant a stored millisecond value stands for.
pub fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
