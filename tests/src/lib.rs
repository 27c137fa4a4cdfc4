//! Test support: a software passkey authenticator that makes real WebAuthn
//! registrations and assertions (P-256, CBOR), an SMTP server on loopback
//! that keeps what it receives, and the ledger served on an ephemeral port
//! over a fresh SQLite or PostgreSQL database.

pub mod authenticator;
pub mod harness;
pub mod smtp;

pub use authenticator::SoftPasskey;
pub use harness::{Backend, TestApp};
