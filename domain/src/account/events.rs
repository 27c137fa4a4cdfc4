use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::commands::{NewPasskey, PasskeyAssertion};
use super::refusal::Refusal;
use crate::values::{EmailAddress, LoginId};

/// Who holds the account: family and corporate accounts are where seed 000
/// sees one e-mail address shared by several accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    Individual,
    Family,
    Corporate,
}

/// What a flow that starts with the login password is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowPurpose {
    /// First passkey registration (seed 000 p.4-7).
    Registration,
    /// Login with password + e-mail code, where policy still allows it.
    PasswordLogin,
}

/// Everything that happens to an account. Names are past tense and never
/// change once stored; see `docs/events.md` for the catalogue.
///
/// No event carries a password, a code, a token or a private key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountOpened {
        login_id: LoginId,
        holder_kind: super::events::HolderKind,
        email: Option<EmailAddress>,
        password_temporary: bool,
    },
    EmailAddressChanged {
        email: EmailAddress,
    },
    EmailReachabilityChanged {
        reachable: bool,
    },
    LoginPasswordChanged {
        temporary: bool,
    },
    TradingPasswordChanged {},
    RegistrationStarted {
        flow_id: String,
        started_at: DateTime<Utc>,
    },
    PasswordVerified {
        flow_id: String,
        purpose: FlowPurpose,
        at: DateTime<Utc>,
    },
    PasswordRejected {
        flow_id: String,
        purpose: FlowPurpose,
        consecutive_failures: u32,
    },
    LoginLocked {
        consecutive_failures: u32,
    },
    RegistrationRefused {
        flow_id: String,
        reason: Refusal,
    },
    PasswordLoginRefused {
        flow_id: String,
        reason: Refusal,
    },
    EmailCodeIssued {
        flow_id: String,
        code_id: String,
        /// The masked address the code went to.
        destination: String,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        resend: bool,
    },
    EmailCodeVerified {
        flow_id: String,
        code_id: String,
    },
    EmailCodeRejected {
        flow_id: String,
        code_id: String,
        attempts_left: u32,
    },
    EmailCodeExpired {
        flow_id: String,
        code_id: String,
    },
    EmailCodeExhausted {
        flow_id: String,
        code_id: String,
    },
    EmailCodeResendRefused {
        flow_id: String,
        reason: Refusal,
    },
    /// A step was tried on a flow that cannot take it (closed, expired, or
    /// not at that step yet).
    FlowStepRefused {
        flow_id: String,
        step: String,
        reason: Refusal,
    },
    /// A passkey was bound to the account. The first one is bound on the
    /// strength of the login password plus confirmation of the registered
    /// e-mail address (an e-mail code is not an authentication factor).
    PasskeyRegistered {
        flow_id: String,
        passkey: NewPasskey,
        /// What the binding rested on.
        bound_by: String,
    },
    PasskeyRegistrationRefused {
        flow_id: String,
        reason: Refusal,
        detail: String,
    },
    PasskeyLoginSucceeded {
        passkey_id: String,
        credential_id: String,
        assertion: PasskeyAssertion,
    },
    PasskeyLoginFailed {
        passkey_id: Option<String>,
        credential_id: String,
        reason: Refusal,
        detail: String,
    },
    /// Login with password + e-mail code. Not phishing-resistant.
    PasswordLoginSucceeded {
        flow_id: String,
    },
}

impl AccountEvent {
    /// The refusal this event records, if it records one.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            AccountEvent::PasswordRejected { .. } => Some(Refusal::InvalidCredentials),
            AccountEvent::LoginLocked { .. } => Some(Refusal::LoginLocked),
            AccountEvent::RegistrationRefused { reason, .. }
            | AccountEvent::PasswordLoginRefused { reason, .. }
            | AccountEvent::EmailCodeResendRefused { reason, .. }
            | AccountEvent::FlowStepRefused { reason, .. }
            | AccountEvent::PasskeyRegistrationRefused { reason, .. }
            | AccountEvent::PasskeyLoginFailed { reason, .. } => Some(*reason),
            AccountEvent::EmailCodeRejected { .. } => Some(Refusal::InvalidCode),
            AccountEvent::EmailCodeExpired { .. } => Some(Refusal::CodeExpired),
            AccountEvent::EmailCodeExhausted { .. } => Some(Refusal::TooManyAttempts),
            _ => None,
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::AccountOpened { .. } => "AccountOpened",
            AccountEvent::EmailAddressChanged { .. } => "EmailAddressChanged",
            AccountEvent::EmailReachabilityChanged { .. } => "EmailReachabilityChanged",
            AccountEvent::LoginPasswordChanged { .. } => "LoginPasswordChanged",
            AccountEvent::TradingPasswordChanged { .. } => "TradingPasswordChanged",
            AccountEvent::RegistrationStarted { .. } => "RegistrationStarted",
            AccountEvent::PasswordVerified { .. } => "PasswordVerified",
            AccountEvent::PasswordRejected { .. } => "PasswordRejected",
            AccountEvent::LoginLocked { .. } => "LoginLocked",
            AccountEvent::RegistrationRefused { .. } => "RegistrationRefused",
            AccountEvent::PasswordLoginRefused { .. } => "PasswordLoginRefused",
            AccountEvent::EmailCodeIssued { .. } => "EmailCodeIssued",
            AccountEvent::EmailCodeVerified { .. } => "EmailCodeVerified",
            AccountEvent::EmailCodeRejected { .. } => "EmailCodeRejected",
            AccountEvent::EmailCodeExpired { .. } => "EmailCodeExpired",
            AccountEvent::EmailCodeExhausted { .. } => "EmailCodeExhausted",
            AccountEvent::EmailCodeResendRefused { .. } => "EmailCodeResendRefused",
            AccountEvent::FlowStepRefused { .. } => "FlowStepRefused",
            AccountEvent::PasskeyRegistered { .. } => "PasskeyRegistered",
            AccountEvent::PasskeyRegistrationRefused { .. } => "PasskeyRegistrationRefused",
            AccountEvent::PasskeyLoginSucceeded { .. } => "PasskeyLoginSucceeded",
            AccountEvent::PasskeyLoginFailed { .. } => "PasskeyLoginFailed",
            AccountEvent::PasswordLoginSucceeded { .. } => "PasswordLoginSucceeded",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
