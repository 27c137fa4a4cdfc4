use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::events::{FlowPurpose, HolderKind, SessionEndCause};
use crate::values::{Channel, EmailAddress, Environment, LoginId, PasskeyName, StaffMember};

/// What may be asked of an account. Every command carries the instant it
/// happened (`at`): the domain never reads a clock. Facts that need IO (does
/// the password match, is the address on another account, did the WebAuthn
/// data verify) are established by the caller and carried in.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// The core system opens the account.
    OpenAccount { login_id: LoginId, holder_kind: HolderKind, email: Option<EmailAddress>, password_temporary: bool, at: DateTime<Utc> },
    /// The core system changes the registered address.
    /// The core system changes a registered address: slot 1 (the main one)
    /// or 2 (seed 003, 004: up to two per account).
    ChangeEmail { email: EmailAddress, slot: u8, at: DateTime<Utc> },
    /// The core system reports that the address bounces, or receives again.
    SetEmailReachability { reachable: bool, slot: u8, at: DateTime<Utc> },
    /// The customer picked the address the code goes to (seed 004).
    SendCode { flow_id: String, slot: u8, code: IssuedCode, channel: Channel, at: DateTime<Utc> },
    /// The core system sets a new login password (temporary or not).
    ChangeLoginPassword { temporary: bool, at: DateTime<Utc> },
    /// The core system registers the customer's OTP device (seed 004).
    RegisterOtpDevice { algorithm: String, digits: u32, period: u64, at: DateTime<Utc> },
    /// The core system removes it.
    RemoveOtpDevice { at: DateTime<Utc> },
    /// The core system sets a new trading password ("執行パスワード").
    ChangeTradingPassword { temporary: bool, at: DateTime<Utc> },
    /// The customer typed their login password, to register a passkey or to
    /// log in with password + e-mail code. `code` is the code to send if the
    /// password step passes.
    SubmitPassword {
        flow_id: String,
        purpose: FlowPurpose,
        channel: Channel,
        password_matches: bool,
        /// Other accounts holding the same normalised e-mail address, from
        /// the e-mail registry read model.
        email_shared_with: Vec<String>,
        code: IssuedCode,
        /// The client's address, as the request is recorded.
        client: Option<String>,
        /// A registration the service began when the login ID was typed,
        /// not yet the account's: it becomes so when this step passes.
        pending_start: Option<PendingStart>,
        at: DateTime<Utc>,
    },
    /// The mail server did not take the code's e-mail (refused, or silent
    /// past the timeout): the code is void, and the trail says so.
    RecordCodeNotDelivered { flow_id: String, code_id: String, at: DateTime<Utc> },
    /// The customer typed the e-mailed code.
    VerifyEmailCode {
        flow_id: String,
        code_id: String,
        matches: bool,
        channel: Channel,
        /// As for `SubmitPassword`: the registration rules hold at every step.
        email_shared_with: Vec<String>,
        environment: Option<Environment>,
        at: DateTime<Utc>,
    },
    /// The customer asked for a new code.
    ResendEmailCode { flow_id: String, code: IssuedCode, channel: Channel, email_shared_with: Vec<String>, at: DateTime<Utc> },
    /// The browser created a passkey and its attestation verified.
    RegisterPasskey {
        flow_id: String,
        passkey: NewPasskey,
        channel: Channel,
        email_shared_with: Vec<String>,
        /// The credential ID is already bound to an account (this one or
        /// another, active or deleted), from the command-side index.
        credential_taken: bool,
        at: DateTime<Utc>,
    },
    /// The browser's registration response did not verify.
    RefusePasskeyRegistration { flow_id: String, reason: Refusal, detail: String, at: DateTime<Utc> },
    /// A passkey assertion for one of this account's credentials, verified
    /// (or not) by the caller.
    RecordPasskeyLogin {
        credential_id: String,
        assertion: Result<PasskeyAssertion, String>,
        channel: Channel,
        environment: Option<Environment>,
        /// The id a cross-device sign-in gets, drawn by the caller, so that
        /// a local passkey added afterwards can name it.
        sign_in_id: String,
        /// In second-factor mode (seed 002), the flow whose password step
        /// asked for this assertion.
        second_factor_flow: Option<String>,
        at: DateTime<Utc>,
    },
    /// Before creation options for an additional passkey: is the login
    /// recent enough, is there room for one more?
    /// For an account with no passkey, the first-registration rules too.
    CheckPasskeyAddition { logged_in_at: DateTime<Utc>, session: String, email_shared_with: Vec<String>, at: DateTime<Utc> },
    /// A logged-in customer's browser created a passkey: one more (a local
    /// passkey on a PC after a cross-device sign-in, seed 000 p.12), or the
    /// account's first, which goes through the first-registration rules.
    AddPasskey {
        passkey: NewPasskey,
        logged_in_at: DateTime<Utc>,
        /// How the session was opened (`password_and_email_code`, `passkey`,
        /// ...): what a first passkey bound here rests on.
        session_method: String,
        /// The session's opaque reference: a confirmation of another session
        /// does not count.
        session: String,
        cross_device_sign_in: Option<String>,
        email_shared_with: Vec<String>,
        /// As for `RegisterPasskey`.
        credential_taken: bool,
        at: DateTime<Utc>,
    },
    /// A signed-in customer with no passkey typed the trading password to
    /// register one (seed 000's status screen).
    /// `session`: an opaque reference of the session it confirms (never the
    /// token); the confirmation serves that session only.
    ConfirmWithTradingPassword { trading_password_matches: bool, session: String, logged_in_at: DateTime<Utc>, at: DateTime<Utc> },
    /// A signed-in customer with no passkey asked for a code to register one
    /// (seed 004): a registration flow that begins at its code.
    /// `slot`: the address the customer picked, where the deployment lets
    /// them (seed 004); address 1 otherwise.
    RequestStepUpCode {
        flow_id: String,
        channel: Channel,
        session: String,
        logged_in_at: DateTime<Utc>,
        slot: Option<u8>,
        code: IssuedCode,
        email_shared_with: Vec<String>,
        at: DateTime<Utc>,
    },
    /// The browser's new credential for a signed-in customer did not verify
    /// (or the authenticator holds a credential the account already has).
    RefusePasskeyAddition { reason: Refusal, at: DateTime<Utc> },
    /// The page reports that the browser's passkey ceremony ended without a
    /// credential (seed 001: "パスキー登録が中断されました"), for a registration
    /// flow or a signed-in customer (no flow).
    RecordCeremonyAbandoned { flow_id: Option<String>, reason: String, at: DateTime<Utc> },
    /// "Continue without" after a cross-device sign-in (seed 000 p.11).
    DeclineLocalPasskey { cross_device_sign_in: Option<String>, at: DateTime<Utc> },
    /// The customer deletes one passkey or all, with the trading password
    /// (seed 000 p.16-17).
    DeletePasskeys { passkey_id: Option<String>, trading_password_matches: bool, at: DateTime<Utc> },
    /// Support deletes one passkey or all for a lost or replaced device.
    RevokePasskeysForCustomer { staff: StaffMember, passkey_id: Option<String>, reason: String, at: DateTime<Utc> },
    /// Support lifts a lock (login, and passkey deletion) with a reason.
    Unlock { staff: StaffMember, reason: String, at: DateTime<Utc> },
    /// Support lifts a passkey's suspension after checking with the customer.
    ReinstatePasskey { staff: StaffMember, passkey_id: String, reason: String, at: DateTime<Utc> },
    /// Sessions were ended (the ledger's record of it, after the cause).
    RecordSessionsEnded { sessions: u32, cause: SessionEndCause, at: DateTime<Utc> },
    /// A staff member read the account (status, history, search result).
    RecordStaffRead { staff: StaffMember, view: String, at: DateTime<Utc> },
    /// A security notice went to the registered address (or could not).
    RecordNotice { kind: String, destination: String, sent: bool, at: DateTime<Utc> },
    /// "This wasn't me": the customer reports the event `event_id` (at
    /// `sequence` of the stream, of type `event_type`). `passkey_id` is the
    /// passkey that event used or added; `reporting_passkey` the one the
    /// reporting session was opened with (none for a password and code).
    /// `sessions_ended` other sessions are ended in the command's
    /// transaction. An event reported before records nothing: the first
    /// report's outcome stands (see [`super::Account::report_of`]).
    ReportActivity {
        event_id: String,
        sequence: i64,
        event_type: String,
        passkey_id: Option<String>,
        reporting_passkey: Option<String>,
        note: Option<String>,
        sessions_ended: u32,
        at: DateTime<Utc>,
    },
}

use super::refusal::Refusal;

/// A registration begun by typing the login ID (an anonymous step): when
/// and on which channel, as the service kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingStart {
    pub started_at: DateTime<Utc>,
    pub channel: Channel,
}

impl AccountCommand {
    /// The credential ID a command would bind, so that the command-side
    /// index can be asked whether it is taken.
    pub fn credential_to_bind(&self) -> Option<&str> {
        match self {
            AccountCommand::RegisterPasskey { passkey, .. } | AccountCommand::AddPasskey { passkey, .. } => {
                Some(passkey.credential_id.as_str())
            }
            _ => None,
        }
    }

    /// Where the command carries the other accounts holding this account's
    /// address, the list to fill in from the command-side index.
    pub fn email_shared_with_mut(&mut self) -> Option<&mut Vec<String>> {
        use AccountCommand as C;
        match self {
            C::SubmitPassword { email_shared_with, .. }
            | C::VerifyEmailCode { email_shared_with, .. }
            | C::ResendEmailCode { email_shared_with, .. }
            | C::RegisterPasskey { email_shared_with, .. }
            | C::CheckPasskeyAddition { email_shared_with, .. }
            | C::AddPasskey { email_shared_with, .. }
            | C::RequestStepUpCode { email_shared_with, .. } => Some(email_shared_with),
            _ => None,
        }
    }

    /// Records what the command-side index says of the credential to bind.
    pub fn set_credential_taken(&mut self, taken: bool) {
        if let AccountCommand::RegisterPasskey { credential_taken, .. } | AccountCommand::AddPasskey { credential_taken, .. } = self {
            *credential_taken = taken;
        }
    }
}

/// A freshly drawn e-mail code, known to the domain only by its id and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub code_id: String,
    pub expires_at: DateTime<Utc>,
}

/// A verified new passkey, as the registration ceremony established it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPasskey {
    pub passkey_id: String,
    /// The WebAuthn credential id, base64url without padding.
    pub credential_id: String,
    pub name: PasskeyName,
    /// The authenticator's AAGUID (all zero for iCloud Keychain and many others).
    pub aaguid: String,
    /// The provider the AAGUID names, when the list knows it.
    pub provider: Option<String>,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub transports: Vec<String>,
    /// `authenticatorAttachment` as the client reported it: not signed.
    pub authenticator_attachment: Option<String>,
    pub user_verified: bool,
    pub counter: u32,
    /// The verifying key and its parameters as the WebAuthn library stores
    /// them. Public material only.
    pub public_key: serde_json::Value,
    /// The device it was created on, as the request described it.
    #[serde(default)]
    pub environment: Option<Environment>,
}

/// What a verified passkey assertion said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasskeyAssertion {
    pub counter: u32,
    pub backup_state: bool,
    pub backup_eligible: bool,
    pub user_verified: bool,
    /// `authenticatorAttachment` as the client reported it: not signed.
    pub authenticator_attachment: Option<String>,
}
