use serde::{Deserialize, Serialize};

/// Why the ledger said no. Each refusal is recorded in an event and has a
/// stable snake_case code that the HTTP API returns (API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Wrong login password (or unknown login ID: the API does not tell them apart).
    InvalidCredentials,
    /// Too many consecutive wrong passwords.
    LoginLocked,
    /// The login password is a temporary one ("仮パスワード", seed 003 §5).
    TemporaryPassword,
    /// No e-mail address, or one that cannot receive mail (seed 000).
    EmailUnreachable,
    /// Another account has the same normalised address (seed 000, in bold).
    EmailSharedWithOtherAccounts,
    /// The account already has a passkey: first registration is over.
    PasskeyAlreadyRegistered,
    /// Password login is closed: a passkey exists, or the channel's
    /// passkey-mandatory instant has passed.
    PasskeyRequired,
    /// A wrong e-mail code.
    InvalidCode,
    /// The e-mail code is past its lifetime.
    CodeExpired,
    /// The code's attempts are used up.
    TooManyAttempts,
    /// A new code was asked for too soon after the last.
    ResendTooSoon,
    /// Too many codes asked for within the hour.
    ResendLimitReached,
    /// The flow is past its lifetime.
    FlowExpired,
    /// The step does not follow from where the flow is.
    WrongStep,
    /// The WebAuthn data did not verify.
    InvalidCredential,
    /// The credential was deleted from this account (it stays on the device).
    RevokedCredential,
    /// The authenticator's signature counter went backwards: a possible clone.
    CounterRegression,
    /// Adding a passkey needs a login within the last few minutes.
    RecentLoginRequired,
    /// The account holds the most passkeys the brokerage allows.
    PasskeyLimitReached,
    /// A wrong trading password ("執行パスワード") when deleting passkeys.
    InvalidTransactionPassword,
    /// Too many wrong trading passwords: deletion is locked until the
    /// trading password is reissued or support unlocks it.
    DeletionLocked,
    /// The credential ID is already bound, to this account or another, now
    /// or before: a credential is bound at most once, ever (WebAuthn §7.1
    /// step 22: "credentialId is not yet registered for any user").
    CredentialAlreadyRegistered,
    /// A step of a flow came through another channel than the flow began on.
    WrongChannel,
    /// The flow was closed by a change to the account (a new login
    /// password, a new e-mail address): start again.
    FlowClosed,
    /// Second-factor mode (seed 002): a passkey logs in only after the
    /// login ID and password.
    PasswordStepRequired,
    /// Passkey registration has not opened yet (seed 000: no registration
    /// before the launch instant).
    RegistrationNotOpen,
    /// The account has no passkey and the channel requires one: register
    /// one first (the API code stays `passkey_required`).
    PasskeyRegistrationRequired,
    /// An app's built-in browser (Google app, Yahoo! JAPAN app) cannot
    /// register a passkey (seed 001): open the device's standard browser.
    UnsupportedBrowser,
    /// The deployment lets only support delete passkeys (seed 002).
    DeletionBySupportOnly,
    /// Too many wrong trading passwords: the trading password is locked
    /// (the same lock as deletion's) until reissued or unlocked by support.
    TradingPasswordLocked,
    /// A first passkey from a signed-in session needs the deployment's
    /// confirmation first (trading password or e-mailed code).
    StepUpRequired,
}

impl Refusal {
    /// Every refusal.
    pub const ALL: &'static [Refusal] = &[
        Refusal::InvalidCredentials,
        Refusal::LoginLocked,
        Refusal::TemporaryPassword,
        Refusal::EmailUnreachable,
        Refusal::EmailSharedWithOtherAccounts,
        Refusal::PasskeyAlreadyRegistered,
        Refusal::PasskeyRequired,
        Refusal::InvalidCode,
        Refusal::CodeExpired,
        Refusal::TooManyAttempts,
        Refusal::ResendTooSoon,
        Refusal::ResendLimitReached,
        Refusal::FlowExpired,
        Refusal::WrongStep,
        Refusal::InvalidCredential,
        Refusal::RevokedCredential,
        Refusal::CounterRegression,
        Refusal::RecentLoginRequired,
        Refusal::PasskeyLimitReached,
        Refusal::InvalidTransactionPassword,
        Refusal::DeletionLocked,
        Refusal::CredentialAlreadyRegistered,
        Refusal::WrongChannel,
        Refusal::FlowClosed,
        Refusal::PasswordStepRequired,
        Refusal::RegistrationNotOpen,
        Refusal::PasskeyRegistrationRequired,
        Refusal::UnsupportedBrowser,
        Refusal::DeletionBySupportOnly,
        Refusal::TradingPasswordLocked,
        Refusal::StepUpRequired,
    ];

    /// The stable code the API answers with.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::InvalidCredentials => "invalid_credentials",
            Refusal::LoginLocked => "login_locked",
            Refusal::TemporaryPassword => "temporary_password",
            Refusal::EmailUnreachable => "email_unreachable",
            Refusal::EmailSharedWithOtherAccounts => "email_shared_with_other_accounts",
            Refusal::PasskeyAlreadyRegistered => "passkey_already_registered",
            Refusal::PasskeyRequired => "passkey_required",
            Refusal::InvalidCode => "invalid_code",
            Refusal::CodeExpired => "code_expired",
            Refusal::TooManyAttempts => "too_many_attempts",
            Refusal::ResendTooSoon => "resend_too_soon",
            Refusal::ResendLimitReached => "resend_limit_reached",
            Refusal::FlowExpired => "flow_expired",
            Refusal::WrongStep => "wrong_step",
            Refusal::InvalidCredential => "invalid_credential",
            Refusal::RevokedCredential => "revoked_credential",
            Refusal::CounterRegression => "counter_regression",
            Refusal::RecentLoginRequired => "recent_login_required",
            Refusal::PasskeyLimitReached => "passkey_limit_reached",
            Refusal::InvalidTransactionPassword => "invalid_transaction_password",
            Refusal::DeletionLocked => "deletion_locked",
            Refusal::CredentialAlreadyRegistered => "credential_already_registered",
            Refusal::WrongChannel => "wrong_channel",
            Refusal::FlowClosed => "flow_closed",
            Refusal::PasswordStepRequired => "password_step_required",
            Refusal::RegistrationNotOpen => "registration_not_open",
            Refusal::PasskeyRegistrationRequired => "passkey_required",
            Refusal::UnsupportedBrowser => "unsupported_browser",
            Refusal::DeletionBySupportOnly => "deletion_by_support_only",
            Refusal::StepUpRequired => "step_up_required",
            Refusal::TradingPasswordLocked => "trading_password_locked",
        }
    }
}
