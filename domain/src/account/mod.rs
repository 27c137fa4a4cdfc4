//! The customer account: its login password state, e-mail address, passkeys,
//! and the registration and login flows running on it.

pub mod activity;
mod aggregate;
mod commands;
mod describe;
mod events;
mod refusal;
#[cfg(test)]
mod tests;
pub mod upcast;

pub use aggregate::{
    Account, AccountError, AccountServices, ActivityReport, Flow, FlowStage, PasskeyState, FIRST_PASSKEY_BINDING, LOCK_CLIENTS_KEPT,
    OTP_DEVICE_BINDING, SESSION_BINDING_PREFIX,
};
pub use commands::{AccountCommand, IssuedCode, NewPasskey, PasskeyAssertion, PendingStart};
pub use describe::{describe, login_words, Line, CEREMONY_ERRORS};
pub use events::{
    AccountEvent, CodeFactor, FlowClosure, FlowPurpose, HolderKind, LoginAuthenticator, LoginMethod, OfferedAddress, RevokedPasskey,
    Revoker, SessionEndCause,
};
pub use refusal::Refusal;
