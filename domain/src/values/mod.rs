//! Validated value types: each parses its input once, on construction.

mod channel;
mod email_address;
mod environment;
mod ids;
mod login_id;
mod passkey_name;

pub use channel::Channel;
pub use email_address::EmailAddress;
pub use environment::{Environment, StaffMember};
pub use ids::{AccountId, CredentialId, FlowId};
pub use login_id::LoginId;
pub use passkey_name::PasskeyName;

/// Why a value was refused on construction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub &'static str);
