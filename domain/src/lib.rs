//! The account security ledger's domain: what a brokerage customer's account
//! knows, decides and records about passkeys, one-time codes and logins.
//!
//! Nothing here does IO. The HTTP layer verifies WebAuthn data, hashes
//! passwords, draws random codes and reads the clock, then hands the verified
//! facts to the [`account::Account`] aggregate inside a command. The aggregate
//! decides, following the brokerages' manuals (`shared/seeds/`), and answers
//! with events. Refusals are events too, so every refused attempt is on record.

pub mod account;
pub mod japan;
pub mod metadata;
pub mod policy;
pub mod staff;
pub mod system;
pub mod values;
pub mod words;

pub use account::{Account, AccountCommand, AccountError, AccountEvent, AccountServices, Refusal};
pub use metadata::EventMetadata;
pub use policy::{CodeDestination, LoginMode, Policy, SessionStepUp};
pub use values::{AccountId, Channel, CredentialId, EmailAddress, Environment, FlowId, LoginId, PasskeyName, StaffMember};
