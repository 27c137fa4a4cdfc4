use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::commands::{NewPasskey, PasskeyAssertion};
use super::refusal::Refusal;
use crate::values::{Channel, EmailAddress, Environment, LoginId, PasskeyName, StaffMember};

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
    /// Second-factor mode (seed 002): login ID + password, then one of the
    /// customer's passkeys (or the e-mail code while none is registered).
    SecondFactorLogin,
}

/// What kind of authenticator answered a login on the requesting device.
/// Told from the client-reported `authenticatorAttachment` (not signed) and
/// what was recorded at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoginAuthenticator {
    /// A passkey on the device making the request (`platform`), synced
    /// copies included.
    SameDevice,
    /// A roaming security key (USB, NFC, BLE): `cross-platform` for a
    /// credential that was not registered as a phone's platform passkey.
    SecurityKey,
    /// The client did not report an attachment.
    #[default]
    NotReported,
}

/// How a customer logged in: what the session, the status view and the
/// adoption report call it, worked out from the event in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// A passkey of the device making the request (or one not reported).
    Passkey,
    /// A roaming security key.
    SecurityKey,
    /// A phone's passkey for a PC, over Bluetooth (seed 000's hybrid flow).
    CrossDevice,
    /// Password, then a passkey as the second factor (seed 002).
    PasswordAndPasskey,
    /// Password and an e-mailed code (or the OTP device's password).
    PasswordAndEmailCode,
}

impl LoginMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Passkey => "passkey",
            LoginMethod::SecurityKey => "security_key",
            LoginMethod::CrossDevice => "cross_device",
            LoginMethod::PasswordAndPasskey => "password_and_passkey",
            LoginMethod::PasswordAndEmailCode => "password_and_email_code",
        }
    }

    /// Whether a passkey was used.
    pub fn by_passkey(self) -> bool {
        self != LoginMethod::PasswordAndEmailCode
    }
}

impl AccountEvent {
    /// The login this event records, if it records one.
    pub fn login_method(&self) -> Option<LoginMethod> {
        match self {
            AccountEvent::PasskeyLoginSucceeded { second_factor_flow: Some(_), .. } => Some(LoginMethod::PasswordAndPasskey),
            AccountEvent::PasskeyLoginSucceeded { authenticator: LoginAuthenticator::SecurityKey, .. } => Some(LoginMethod::SecurityKey),
            AccountEvent::PasskeyLoginSucceeded { .. } => Some(LoginMethod::Passkey),
            AccountEvent::CrossDeviceSignInSucceeded { .. } => Some(LoginMethod::CrossDevice),
            AccountEvent::PasswordLoginSucceeded { .. } => Some(LoginMethod::PasswordAndEmailCode),
            _ => None,
        }
    }
}

/// What answered a code step: an e-mailed code, or the one-time password
/// of the customer's registered OTP device (seed 004's OTP service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeFactor {
    #[default]
    EmailCode,
    Totp,
}

/// A registered address the customer may pick, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedAddress {
    pub slot: u8,
    pub destination: String,
}

/// Why open flows were closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowClosure {
    /// The core system set a new login password.
    LoginPasswordChanged,
    /// Too many wrong login passwords locked the login.
    LoginLocked,
    /// The core system changed the registered e-mail address.
    EmailAddressChanged,
    /// The registered address cannot receive mail.
    EmailUnreachable,
    /// A passkey was bound: password + code login and first registration
    /// are over for this account.
    PasskeyBound,
    /// Every entry allowed for the flow's code was wrong.
    CodeExhausted,
}

impl FlowClosure {
    /// What a later step of a flow closed for this reason answers.
    pub fn refusal(self, purpose: FlowPurpose) -> Refusal {
        match self {
            FlowClosure::LoginPasswordChanged | FlowClosure::EmailAddressChanged => Refusal::FlowClosed,
            FlowClosure::LoginLocked => Refusal::LoginLocked,
            FlowClosure::EmailUnreachable => Refusal::EmailUnreachable,
            FlowClosure::PasskeyBound if purpose == FlowPurpose::Registration => Refusal::PasskeyAlreadyRegistered,
            FlowClosure::PasskeyBound => Refusal::PasskeyRequired,
            FlowClosure::CodeExhausted => Refusal::TooManyAttempts,
        }
    }
}

/// One passkey in a deletion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokedPasskey {
    pub passkey_id: String,
    pub credential_id: String,
    pub name: Option<PasskeyName>,
}

/// Who deleted passkeys, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Revoker {
    /// The customer, from the status screen, with the trading password.
    Customer,
    /// Support, for a lost or replaced device.
    Staff { staff: StaffMember, reason: String },
    /// The ledger, on the customer's report that an event was not theirs
    /// ("this wasn't me"): the passkey that event used.
    ReportedByCustomer,
}

/// Why customer sessions were ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndCause {
    /// The core system set a new login password.
    LoginPasswordChanged,
    /// The core system changed a registered e-mail address.
    EmailChanged,
    /// Wrong login passwords locked the account.
    LoginLocked,
    /// Support deleted passkeys for a lost or replaced device: every
    /// session ends.
    PasskeysRevokedBySupport,
    /// The customer deleted the passkeys the sessions were opened with.
    PasskeyDeleted,
    /// The passkey the sessions were opened with was suspended (its
    /// counter went backwards: one of its holders may not be the customer).
    PasskeySuspended,
    /// The customer signed them out from their list of signed-in devices.
    EndedByCustomer,
    /// The customer reported an event as not theirs: every session but the
    /// one they reported from ends.
    ReportedByCustomer,
}

impl SessionEndCause {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEndCause::LoginPasswordChanged => "login_password_changed",
            SessionEndCause::EmailChanged => "email_changed",
            SessionEndCause::LoginLocked => "login_locked",
            SessionEndCause::PasskeysRevokedBySupport => "passkeys_revoked_by_support",
            SessionEndCause::PasskeyDeleted => "passkey_deleted",
            SessionEndCause::PasskeySuspended => "passkey_suspended",
            SessionEndCause::EndedByCustomer => "ended_by_customer",
            SessionEndCause::ReportedByCustomer => "reported_by_customer",
        }
    }
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
        /// 1, the main address, or 2 (seed 003, 004).
        slot: u8,
        /// The address it replaced (none when the slot was empty, and in
        /// events of versions 1 and 2).
        previous: Option<EmailAddress>,
    },
    EmailReachabilityChanged {
        reachable: bool,
        slot: u8,
    },
    /// Where the deployment lets the customer choose (seed 004): the
    /// registered, reachable addresses the code may go to, masked.
    CodeDestinationsOffered {
        flow_id: String,
        addresses: Vec<OfferedAddress>,
    },
    LoginPasswordChanged {
        temporary: bool,
    },
    /// The core system reissued the trading password (seed 003 FAQ): the
    /// passkeys stay as they are, the deletion lock is lifted.
    TradingPasswordChanged {
        temporary: bool,
    },
    RegistrationStarted {
        flow_id: String,
        started_at: DateTime<Utc>,
        /// For a registration from a signed-in session (a code step-up,
        /// seed 004), the session it serves; none when the login ID was typed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The channel the flow began on; every later step must use it.
        channel: Option<Channel>,
    },
    PasswordVerified {
        flow_id: String,
        purpose: FlowPurpose,
        at: DateTime<Utc>,
        /// The channel of the password step (a login flow begins there).
        channel: Option<Channel>,
    },
    /// A change to the account ended the flows still open on it, so that
    /// none of them can go on to open a session or bind a passkey on the
    /// strength of what no longer holds.
    OpenFlowsClosed {
        flow_ids: Vec<String>,
        because: FlowClosure,
    },
    PasswordRejected {
        flow_id: String,
        purpose: FlowPurpose,
        consecutive_failures: u32,
        /// The client's address, as the request was recorded (none before
        /// version 2).
        client: Option<String>,
    },
    LoginLocked {
        consecutive_failures: u32,
        /// The distinct clients of the wrong passwords that caused the
        /// lock (at most [`crate::account::LOCK_CLIENTS_KEPT`]).
        clients: Vec<String>,
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
        /// Which registered address (1 or 2).
        slot: u8,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        resend: bool,
    },
    /// The code's e-mail was not handed to the mail server: no code went
    /// out, and the code is void (another may be asked for at once).
    EmailCodeNotDelivered {
        flow_id: String,
        code_id: String,
    },
    EmailCodeVerified {
        flow_id: String,
        code_id: String,
        /// What confirmed the step (an e-mailed code unless said otherwise).
        factor: CodeFactor,
    },
    /// The account has an OTP device (seed 004: "ワンタイムパスワードサービスを
    /// ご利用の場合、この画面は表示されません"): no mail, its one-time password
    /// is asked for instead.
    OneTimePasswordRequested {
        flow_id: String,
        code_id: String,
        expires_at: DateTime<Utc>,
    },
    /// The core system registered the customer's OTP device (the secret is
    /// never in an event).
    OtpDeviceRegistered {
        algorithm: String,
        digits: u32,
        period: u64,
    },
    OtpDeviceRemoved {},
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
        /// The registration flow; none when the first passkey was bound from
        /// a signed-in session.
        flow_id: Option<String>,
        passkey: NewPasskey,
        /// What the binding rested on.
        bound_by: String,
    },
    PasskeyRegistrationRefused {
        flow_id: String,
        reason: Refusal,
        detail: String,
    },
    /// A passkey login on the device that holds the passkey (or with a
    /// security key): passwordless, or as the second factor (seed 002).
    PasskeyLoginSucceeded {
        passkey_id: String,
        credential_id: String,
        assertion: PasskeyAssertion,
        authenticator: LoginAuthenticator,
        environment: Option<Environment>,
        /// No earlier login or registration on this account came from an
        /// environment like this one.
        new_environment: bool,
        second_factor_flow: Option<String>,
    },
    /// Cross-device sign-in (seed 000 p.8-12, seed 003 §4-2): the requesting
    /// device (a PC) has no passkey; the customer's phone answered over
    /// hybrid (QR code + Bluetooth). The attachment is as the client
    /// reported it.
    CrossDeviceSignInSucceeded {
        sign_in_id: String,
        /// The phone's passkey that answered.
        passkey_id: String,
        credential_id: String,
        assertion: PasskeyAssertion,
        /// The requesting device's environment (the PC).
        environment: Option<Environment>,
        new_environment: bool,
        second_factor_flow: Option<String>,
    },
    /// The authenticator reported a different backup state than before
    /// (a device-bound passkey became synced, or the reverse).
    PasskeyBackupStateChanged {
        passkey_id: String,
        backup_state: bool,
    },
    /// Second-factor mode: the password was right and the account has
    /// passkeys; one of them must answer next.
    SecondFactorRequired {
        flow_id: String,
    },
    /// A logged-in customer added a passkey: a local passkey on the PC
    /// after a cross-device sign-in (seed 000 p.12), or another one.
    LocalPasskeyAdded {
        passkey: NewPasskey,
        /// The cross-device sign-in that offered it, when there was one.
        cross_device_sign_in: Option<String>,
    },
    /// Adding a passkey was refused (login not recent, limit reached).
    PasskeyAdditionRefused {
        reason: Refusal,
    },
    /// The browser's passkey creation ended without a credential, as the
    /// page reported it (e.g. `NotAllowedError`): support sees why a customer
    /// could not register.
    PasskeyCeremonyAbandoned {
        flow_id: Option<String>,
        reason: String,
    },
    /// A signed-in customer confirmed with the trading password, to register
    /// a first passkey (seed 000's status screen); valid for a few minutes.
    SessionStepUpPassed {
        how: crate::policy::SessionStepUp,
        at: DateTime<Utc>,
        /// The session it serves (an opaque reference, not the token).
        session: String,
    },
    /// "Continue without" a new passkey after a cross-device sign-in.
    LocalPasskeyDeclined {
        cross_device_sign_in: Option<String>,
    },
    /// A wrong trading password when deleting passkeys.
    TradingPasswordRejected {
        consecutive_failures: u32,
    },
    /// Deletion locked after too many wrong trading passwords.
    PasskeyDeletionLocked {
        consecutive_failures: u32,
    },
    /// A deletion attempt while deletion is locked.
    PasskeyDeletionRefused {
        reason: Refusal,
    },
    /// Passkeys deleted from the account (server side only: they stay on
    /// the device, so later attempts with them are recognised).
    PasskeysRevoked {
        passkeys: Vec<RevokedPasskey>,
        revoked_by: Revoker,
    },
    /// A passkey may no longer log in until support has looked at it: its
    /// signature counter went backwards, so a copy of the authenticator may
    /// exist (WebAuthn §6.1.1). It stays bound; support reinstates or
    /// deletes it.
    PasskeySuspended {
        passkey_id: String,
        credential_id: String,
        name: Option<PasskeyName>,
        reason: Refusal,
        /// For a passkey added after a cross-device sign-in with the one
        /// whose counter went backwards: that one (the copy may have added it).
        #[serde(default)]
        with_passkey: Option<String>,
    },
    /// Support lifted a passkey's suspension after checking with the customer.
    PasskeyReinstated {
        passkey_id: String,
        name: Option<PasskeyName>,
        staff: StaffMember,
        reason: String,
    },
    /// Support lifted the login lock (and a deletion lock).
    LoginUnlocked {
        staff: StaffMember,
        reason: String,
    },
    /// A security notice (passkey added or deleted, login) was e-mailed to
    /// the registered address (NIST SP 800-63B rev 4 4.1.2.1), or sending
    /// failed.
    SecurityNoticeSent {
        kind: String,
        /// The masked address.
        destination: String,
        sent: bool,
    },
    /// Signed-in sessions were ended by what should end them: their next
    /// request answers `session_ended`.
    SessionsEnded {
        sessions: u32,
        cause: SessionEndCause,
    },
    /// A staff member read the account: every read is on record.
    AccountViewedByStaff {
        staff: StaffMember,
        view: String,
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
        environment: Option<Environment>,
        new_environment: bool,
    },
    /// The customer reported an event of their account as not theirs ("this
    /// wasn't me"). In the same transaction the ledger ended their other
    /// sessions and revoked the passkey the event used (both recorded just
    /// before this event); the fraud signal `customer_reported_activity`
    /// follows from it, with the reported event as evidence.
    SuspiciousActivityReported {
        /// The reported event: its ID, its sequence in this account's
        /// stream and its type.
        event_id: String,
        sequence: i64,
        event_type: String,
        /// What the customer wrote, if anything (at most 500 characters).
        #[serde(default)]
        note: Option<String>,
        sessions_ended: u32,
        /// The passkeys revoked because of the report.
        #[serde(default)]
        passkeys_revoked: Vec<String>,
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
            AccountEvent::PasskeyAdditionRefused { reason } | AccountEvent::PasskeyDeletionRefused { reason } => Some(*reason),
            AccountEvent::TradingPasswordRejected { .. } => Some(Refusal::InvalidTransactionPassword),
            AccountEvent::PasskeyDeletionLocked { .. } => Some(Refusal::DeletionLocked),
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
            AccountEvent::CodeDestinationsOffered { .. } => "CodeDestinationsOffered",
            AccountEvent::LoginPasswordChanged { .. } => "LoginPasswordChanged",
            AccountEvent::TradingPasswordChanged { .. } => "TradingPasswordChanged",
            AccountEvent::RegistrationStarted { .. } => "RegistrationStarted",
            AccountEvent::PasswordVerified { .. } => "PasswordVerified",
            AccountEvent::OpenFlowsClosed { .. } => "OpenFlowsClosed",
            AccountEvent::PasswordRejected { .. } => "PasswordRejected",
            AccountEvent::LoginLocked { .. } => "LoginLocked",
            AccountEvent::RegistrationRefused { .. } => "RegistrationRefused",
            AccountEvent::PasswordLoginRefused { .. } => "PasswordLoginRefused",
            AccountEvent::EmailCodeIssued { .. } => "EmailCodeIssued",
            AccountEvent::EmailCodeVerified { .. } => "EmailCodeVerified",
            AccountEvent::EmailCodeNotDelivered { .. } => "EmailCodeNotDelivered",
            AccountEvent::OneTimePasswordRequested { .. } => "OneTimePasswordRequested",
            AccountEvent::OtpDeviceRegistered { .. } => "OtpDeviceRegistered",
            AccountEvent::OtpDeviceRemoved { .. } => "OtpDeviceRemoved",
            AccountEvent::EmailCodeRejected { .. } => "EmailCodeRejected",
            AccountEvent::EmailCodeExpired { .. } => "EmailCodeExpired",
            AccountEvent::EmailCodeExhausted { .. } => "EmailCodeExhausted",
            AccountEvent::EmailCodeResendRefused { .. } => "EmailCodeResendRefused",
            AccountEvent::FlowStepRefused { .. } => "FlowStepRefused",
            AccountEvent::PasskeyRegistered { .. } => "PasskeyRegistered",
            AccountEvent::PasskeyRegistrationRefused { .. } => "PasskeyRegistrationRefused",
            AccountEvent::PasskeyLoginSucceeded { .. } => "PasskeyLoginSucceeded",
            AccountEvent::PasskeyLoginFailed { .. } => "PasskeyLoginFailed",
            AccountEvent::SuspiciousActivityReported { .. } => "SuspiciousActivityReported",
            AccountEvent::PasswordLoginSucceeded { .. } => "PasswordLoginSucceeded",
            AccountEvent::CrossDeviceSignInSucceeded { .. } => "CrossDeviceSignInSucceeded",
            AccountEvent::PasskeyBackupStateChanged { .. } => "PasskeyBackupStateChanged",
            AccountEvent::SecondFactorRequired { .. } => "SecondFactorRequired",
            AccountEvent::LocalPasskeyAdded { .. } => "LocalPasskeyAdded",
            AccountEvent::PasskeyAdditionRefused { .. } => "PasskeyAdditionRefused",
            AccountEvent::LocalPasskeyDeclined { .. } => "LocalPasskeyDeclined",
            AccountEvent::PasskeyCeremonyAbandoned { .. } => "PasskeyCeremonyAbandoned",
            AccountEvent::SessionStepUpPassed { .. } => "SessionStepUpPassed",
            AccountEvent::TradingPasswordRejected { .. } => "TradingPasswordRejected",
            AccountEvent::PasskeyDeletionLocked { .. } => "PasskeyDeletionLocked",
            AccountEvent::PasskeyDeletionRefused { .. } => "PasskeyDeletionRefused",
            AccountEvent::PasskeysRevoked { .. } => "PasskeysRevoked",
            AccountEvent::PasskeySuspended { .. } => "PasskeySuspended",
            AccountEvent::PasskeyReinstated { .. } => "PasskeyReinstated",
            AccountEvent::LoginUnlocked { .. } => "LoginUnlocked",
            AccountEvent::SessionsEnded { .. } => "SessionsEnded",
            AccountEvent::AccountViewedByStaff { .. } => "AccountViewedByStaff",
            AccountEvent::SecurityNoticeSent { .. } => "SecurityNoticeSent",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        super::upcast::current_version(&self.event_type()).to_string()
    }
}

#[cfg(test)]
mod login_method_tests {
    use serde_json::json;

    use super::*;

    /// A stored version-1 payload (the fields added since are filled in).
    fn method(payload: serde_json::Value) -> Option<LoginMethod> {
        let event_type = payload.as_object().and_then(|o| o.keys().next()).unwrap().clone();
        super::super::upcast::read(&event_type, "1", &payload).unwrap().login_method()
    }

    #[test]
    fn each_login_has_one_method_and_the_second_factor_comes_first() {
        let assertion =
            json!({"counter": 1, "backup_state": false, "backup_eligible": false, "user_verified": true, "authenticator_attachment": null});
        let login = |extra: serde_json::Value| {
            let mut body = json!({"passkey_id": "p", "credential_id": "c", "assertion": assertion});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            json!({ "PasskeyLoginSucceeded": body })
        };
        assert_eq!(method(login(json!({}))), Some(LoginMethod::Passkey));
        assert_eq!(method(login(json!({"authenticator": "security_key"}))), Some(LoginMethod::SecurityKey));
        assert_eq!(
            method(login(json!({"authenticator": "security_key", "second_factor_flow": "f"}))),
            Some(LoginMethod::PasswordAndPasskey),
            "a security key asked for after the password is the second factor"
        );
        let cross = json!({"CrossDeviceSignInSucceeded": {"sign_in_id": "s", "passkey_id": "p", "credential_id": "c",
            "assertion": assertion, "environment": null, "new_environment": false}});
        assert_eq!(method(cross), Some(LoginMethod::CrossDevice));
        assert_eq!(method(json!({"PasswordLoginSucceeded": {"flow_id": "f"}})), Some(LoginMethod::PasswordAndEmailCode));
        assert!(!LoginMethod::PasswordAndEmailCode.by_passkey() && LoginMethod::CrossDevice.by_passkey());
    }
}
