use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::{AccountCommand, IssuedCode, NewPasskey, PasskeyAssertion};
use super::events::{
    AccountEvent, CodeFactor, FlowClosure, FlowPurpose, HolderKind, LoginAuthenticator, OfferedAddress, RevokedPasskey, Revoker,
    SessionEndCause,
};
use super::refusal::Refusal;
use crate::policy::{CodeDestination, LoginMode, Policy};
use crate::values::{Channel, EmailAddress, Environment, LoginId, PasskeyName};

/// What the first passkey's binding rests on (NIST SP 800-63B rev 4: an
/// e-mailed code confirms the address, it is not a factor).
pub const FIRST_PASSKEY_BINDING: &str = "login_password+email_address_confirmation";

/// What a first passkey rests on where the customer's OTP device answered
/// the code step (seed 004's OTP service).
pub const OTP_DEVICE_BINDING: &str = "login_password+otp_device";

/// `bound_by` of a first passkey bound from a signed-in session, followed by
/// how that session was opened (e.g. `password_and_email_code`).
pub const SESSION_BINDING_PREFIX: &str = "signed_in_session:";

/// The deployment's policy, handed to every command.
#[derive(Debug, Clone, Default)]
pub struct AccountServices {
    pub policy: Policy,
}

/// Errors that are not refusals of a customer's attempt: the command makes
/// no sense for this account, so nothing is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the account does not exist")]
    AccountNotFound,
    #[error("the account is already open")]
    AlreadyOpened,
    #[error("no such flow on this account")]
    UnknownFlow,
    #[error("no such passkey on this account")]
    UnknownPasskey,
    /// Support asked to unlock an account with no lock to lift.
    #[error("the account is not locked")]
    NotLocked,
    /// Support asked to reinstate a passkey that is not suspended.
    #[error("the passkey is not suspended")]
    NotSuspended,
}

/// A customer's account as the ledger knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    pub(crate) opened: bool,
    pub(crate) login_id: Option<LoginId>,
    pub(crate) holder_kind: Option<HolderKind>,
    /// Address 1, the main one.
    pub(crate) email: Option<EmailAddress>,
    pub(crate) email_reachable: bool,
    /// Address 2 (seed 003, 004), if registered.
    #[serde(default)]
    pub(crate) email_2: Option<EmailAddress>,
    #[serde(default)]
    pub(crate) email_2_reachable: bool,
    pub(crate) password_temporary: bool,
    pub(crate) consecutive_password_failures: u32,
    /// The distinct clients of the current run of wrong passwords.
    pub(crate) password_failure_clients: Vec<String>,
    pub(crate) locked: bool,
    pub(crate) passkeys: Vec<PasskeyState>,
    pub(crate) flows: BTreeMap<String, Flow>,
    /// When codes were re-sent, newest last; only the last hour matters.
    pub(crate) resends: Vec<DateTime<Utc>>,
    /// When codes were e-mailed (first codes and resends), newest last:
    /// kept on the account, not on its flows, so that starting flows (which
    /// pushes old ones out) cannot wipe the count.
    #[serde(default)]
    pub(crate) codes_mailed: Vec<DateTime<Utc>>,
    /// When wrong codes were typed, each dated by the code it was typed
    /// against (issued at most ten minutes before), newest last.
    #[serde(default)]
    pub(crate) wrong_codes: Vec<DateTime<Utc>>,
    /// Consecutive wrong trading passwords on deletion.
    pub(crate) trading_password_failures: u32,
    pub(crate) deletion_locked: bool,
    /// The customer uses the brokerage's OTP service (seed 004): code steps
    /// ask for its one-time password, and no code is mailed.
    #[serde(default)]
    pub(crate) otp_device: bool,
    /// When the customer last confirmed with the trading password to
    /// register a first passkey from a session (used once).
    #[serde(default)]
    pub(crate) step_up_at: Option<DateTime<Utc>>,
    /// The session that confirmation serves.
    #[serde(default)]
    pub(crate) step_up_session: Option<String>,
    /// Environments (browser, OS, device type) seen on registrations and
    /// logins, for login notices from a new environment.
    pub(crate) environments: Vec<String>,
    /// Recent cross-device sign-ins (sign-in, passkey), newest last: what a
    /// passkey added after one was added through.
    #[serde(default)]
    pub(crate) cross_device_sign_ins: Vec<(String, String)>,
    /// The customer's reports ("this wasn't me"), oldest first: reporting
    /// an event again answers the first report's outcome.
    #[serde(default)]
    pub(crate) reports: Vec<ActivityReport>,
}

/// What one "this wasn't me" report did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityReport {
    /// The reported event's ID and sequence.
    pub event_id: String,
    pub sequence: i64,
    pub sessions_ended: u32,
    pub passkeys_revoked: Vec<String>,
    /// What the customer wrote, if anything.
    #[serde(default)]
    pub note: Option<String>,
}

/// One passkey ever bound to the account, active or revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasskeyState {
    pub passkey_id: String,
    pub credential_id: String,
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub revoked: bool,
    /// Refused at login until support reinstates it (a counter regression).
    #[serde(default)]
    pub suspended: bool,
    /// The passkey of the cross-device sign-in after which this one was
    /// added on the signed-in device, if it was.
    #[serde(default)]
    pub added_after_sign_in_with: Option<String>,
    #[serde(default)]
    pub name: Option<PasskeyName>,
    /// Transports and attachment reported at registration: they tell a
    /// phone's passkey (hybrid) from a security key at login.
    #[serde(default)]
    pub transports: Vec<String>,
    #[serde(default)]
    pub attachment: Option<String>,
}

impl PasskeyState {
    fn from_new(passkey: &NewPasskey) -> PasskeyState {
        PasskeyState {
            passkey_id: passkey.passkey_id.clone(),
            credential_id: passkey.credential_id.clone(),
            counter: passkey.counter,
            backup_eligible: passkey.backup_eligible,
            backup_state: passkey.backup_state,
            revoked: false,
            suspended: false,
            added_after_sign_in_with: None,
            name: Some(passkey.name.clone()),
            transports: passkey.transports.clone(),
            attachment: passkey.authenticator_attachment.clone(),
        }
    }

    /// Whether this credential lives on a phone or computer as a platform
    /// passkey (so a `cross-platform` answer with it came over hybrid from
    /// that device), rather than on a roaming security key.
    fn is_platform_passkey(&self) -> bool {
        self.attachment.as_deref() == Some("platform") || self.transports.iter().any(|t| t == "internal" || t == "hybrid")
    }

    fn revoked_record(&self) -> RevokedPasskey {
        RevokedPasskey { passkey_id: self.passkey_id.clone(), credential_id: self.credential_id.clone(), name: self.name.clone() }
    }
}

/// A registration or password-login flow in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub purpose: FlowPurpose,
    pub stage: FlowStage,
    pub started_at: DateTime<Utc>,
    pub code: Option<CodeState>,
    /// The channel the flow began on (unknown for flows recorded before
    /// the channel was).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Why the flow was closed by a change to the account, if it was.
    #[serde(default)]
    pub closed_by: Option<FlowClosure>,
    /// The session a step-up flow serves (seed 004 from the session).
    #[serde(default)]
    pub session: Option<String>,
    /// What confirmed the code step, once it was.
    #[serde(default)]
    pub verified_by: Option<CodeFactor>,
}

impl Flow {
    fn new(purpose: FlowPurpose, started_at: DateTime<Utc>, channel: Option<Channel>) -> Flow {
        Flow {
            purpose,
            stage: FlowStage::AwaitingPassword,
            started_at,
            code: None,
            channel,
            closed_by: None,
            session: None,
            verified_by: None,
        }
    }
}

/// Keeps `at` in a newest-last list of recent instants, bounded in length
/// (the settings cap the hourly counts below it).
fn remember(times: &mut Vec<DateTime<Utc>>, at: DateTime<Utc>) {
    times.push(at);
    if times.len() > RECENT_KEPT {
        times.remove(0);
    }
}

/// How many recent code instants an account keeps: above any hourly count
/// the settings allow (`LEDGER_CODES_PER_HOUR`, `LEDGER_WRONG_CODES_PER_HOUR`
/// and `LEDGER_RESENDS_PER_HOUR` are at most 100).
pub const RECENT_KEPT: usize = 101;

/// Codes e-mailed and wrong codes typed within the hour.
#[derive(Debug, Default, Clone, Copy)]
struct CodeActivity {
    issued: u32,
    wrong: u32,
}

/// The event that ends a flow refused for `reason`.
fn flow_refused(flow_id: &str, purpose: FlowPurpose, reason: Refusal) -> AccountEvent {
    match purpose {
        FlowPurpose::Registration => AccountEvent::RegistrationRefused { flow_id: flow_id.to_string(), reason },
        FlowPurpose::PasswordLogin | FlowPurpose::SecondFactorLogin => {
            AccountEvent::PasswordLoginRefused { flow_id: flow_id.to_string(), reason }
        }
    }
}

/// Where a flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowStage {
    AwaitingPassword,
    AwaitingCode,
    /// Seed 004: the customer picks the address the code goes to.
    AwaitingAddressChoice,
    CodeVerified,
    /// Second-factor mode: the password was right, a passkey must answer.
    AwaitingPasskey,
    Closed,
}

/// The e-mail code currently valid for a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeState {
    pub code_id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempts_used: u32,
    #[serde(default)]
    pub factor: CodeFactor,
    /// The registered address it went to (1 or 2).
    #[serde(default = "first_slot")]
    pub slot: u8,
}

fn first_slot() -> u8 {
    1
}

impl Account {
    /// Registered address `slot` (1 or 2), if it can receive mail.
    pub fn reachable_address(&self, slot: u8) -> Option<&EmailAddress> {
        match slot {
            1 => self.email.as_ref().filter(|_| self.email_reachable),
            2 => self.email_2.as_ref().filter(|_| self.email_2_reachable),
            _ => None,
        }
    }

    /// The addresses a code may go to: address 1 only (seed 003), or each
    /// reachable one where the customer chooses (seed 004).
    fn code_addresses(&self, policy: &Policy) -> Vec<(u8, &EmailAddress)> {
        let slots: &[u8] = match policy.code_destination {
            CodeDestination::Address1 => &[1],
            CodeDestination::Choose => &[1, 2],
        };
        slots.iter().filter_map(|s| self.reachable_address(*s).map(|a| (*s, a))).collect()
    }

    /// Whether the core system has opened the account.
    pub fn is_open(&self) -> bool {
        self.opened
    }

    /// The login ID (口座番号) the account was opened with.
    pub fn login_id(&self) -> Option<&LoginId> {
        self.login_id.as_ref()
    }

    /// Whether code steps ask the brokerage's OTP device (seed 004).
    pub fn has_otp_device(&self) -> bool {
        self.otp_device
    }

    /// Whether any passkey is active.
    pub fn has_active_passkey(&self) -> bool {
        self.passkeys.iter().any(|p| !p.revoked)
    }

    /// The passkeys not deleted.
    pub fn active_passkeys(&self) -> impl Iterator<Item = &PasskeyState> {
        self.passkeys.iter().filter(|p| !p.revoked)
    }

    /// The code a flow waits for, if it waits for one.
    pub fn code_asked(&self, flow_id: &str) -> Option<&CodeState> {
        self.flows.get(flow_id).and_then(|f| f.code.as_ref())
    }

    /// The registered addresses (slot 1, then slot 2).
    pub fn registered_addresses(&self) -> impl Iterator<Item = &EmailAddress> {
        [&self.email, &self.email_2].into_iter().flatten()
    }

    /// The customer's report of the event `event_id`, if they reported it.
    pub fn report_of(&self, event_id: &str) -> Option<&ActivityReport> {
        self.reports.iter().find(|r| r.event_id == event_id)
    }

    /// Whether a report from a session opened with `reporting` (none for
    /// a password and a code) revokes the passkey `reported` used: any
    /// active passkey but the one the reporting session was opened with
    /// (the issue's rule: the customer's phone reports the stolen PC's
    /// passkey, their PC the stolen phone's).
    fn report_may_revoke(&self, reported: &str, reporting: Option<&str>) -> bool {
        reporting != Some(reported) && self.active_passkeys().any(|p| p.passkey_id == reported)
    }

    /// Every report the customer made, oldest first.
    pub fn reports(&self) -> &[ActivityReport] {
        &self.reports
    }

    /// Whether the deployment's limit leaves room for one more passkey.
    pub fn has_room_for_passkey(&self, policy: &Policy) -> bool {
        self.active_passkeys().count() < policy.max_passkeys
    }

    /// Whether nothing like `environment` was seen on this account before.
    fn is_new_environment(&self, environment: &Option<Environment>) -> bool {
        environment.as_ref().is_some_and(|e| !self.environments.contains(&e.fingerprint()))
    }

    fn remember_environment(&mut self, environment: &Option<Environment>) {
        if let Some(e) = environment {
            let fingerprint = e.fingerprint();
            if !self.environments.contains(&fingerprint) {
                self.environments.push(fingerprint);
                if self.environments.len() > 100 {
                    self.environments.remove(0);
                }
            }
        }
    }

    fn ensure_open(&self) -> Result<(), AccountError> {
        if self.opened {
            Ok(())
        } else {
            Err(AccountError::AccountNotFound)
        }
    }

    /// What a flow of the account is for, if it has that flow.
    pub fn flow_purpose(&self, flow_id: &str) -> Option<FlowPurpose> {
        self.flows.get(flow_id).map(|f| f.purpose)
    }

    fn flow(&self, flow_id: &str) -> Result<&Flow, AccountError> {
        self.flows.get(flow_id).ok_or(AccountError::UnknownFlow)
    }

    /// Decides what a command leads to, without changing anything.
    pub fn decide(&self, command: AccountCommand, policy: &Policy) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        use AccountEvent as E;
        if !matches!(command, C::OpenAccount { .. }) {
            self.ensure_open()?;
        }
        Ok(match command {
            C::OpenAccount { login_id, holder_kind, email, password_temporary, .. } => {
                if self.opened {
                    return Err(AccountError::AlreadyOpened);
                }
                vec![E::AccountOpened { login_id, holder_kind, email, password_temporary }]
            }
            C::ChangeEmail { email, slot, at } => {
                let previous = if slot == 2 { self.email_2.clone() } else { self.email.clone() };
                if previous.as_ref() == Some(&email) {
                    // The address it already has: nothing changes, nothing is recorded.
                    return Ok(vec![]);
                }
                self.closing_open_flows(
                    vec![E::EmailAddressChanged { email, slot, previous }],
                    FlowClosure::EmailAddressChanged,
                    None,
                    at,
                    policy,
                )
            }
            C::SetEmailReachability { reachable: false, slot: 2, .. } if policy.code_destination == CodeDestination::Address1 => {
                // Address 2 takes no codes here: nothing in flight depends on it.
                vec![E::EmailReachabilityChanged { reachable: false, slot: 2 }]
            }
            C::SetEmailReachability { reachable: false, slot, at } => self.closing_open_flows(
                vec![E::EmailReachabilityChanged { reachable: false, slot }],
                FlowClosure::EmailUnreachable,
                None,
                at,
                policy,
            ),
            C::SetEmailReachability { reachable: true, slot, .. } => vec![E::EmailReachabilityChanged { reachable: true, slot }],
            C::SendCode { flow_id, slot, code, channel, at } => self.decide_send_code(flow_id, slot, code, channel, at, policy)?,
            C::ChangeLoginPassword { temporary, at } => {
                self.closing_open_flows(vec![E::LoginPasswordChanged { temporary }], FlowClosure::LoginPasswordChanged, None, at, policy)
            }
            C::RegisterOtpDevice { algorithm, digits, period, .. } => vec![E::OtpDeviceRegistered { algorithm, digits, period }],
            C::RemoveOtpDevice { .. } => vec![E::OtpDeviceRemoved {}],
            C::ChangeTradingPassword { temporary, .. } => vec![E::TradingPasswordChanged { temporary }],
            C::SubmitPassword { flow_id, purpose, channel, password_matches, email_shared_with, code, client, pending_start, at } => {
                let attempt = PasswordAttempt { matches: password_matches, client, pending_start };
                self.decide_password(flow_id, purpose, channel, attempt, &email_shared_with, code, at, policy)?
            }
            C::VerifyEmailCode { flow_id, code_id, matches, channel, email_shared_with, environment, at } => {
                self.decide_code(flow_id, code_id, matches, channel, &email_shared_with, environment, at, policy)?
            }
            C::ResendEmailCode { flow_id, code, channel, email_shared_with, at } => {
                self.decide_resend(flow_id, code, channel, &email_shared_with, at, policy)?
            }
            C::RegisterPasskey { flow_id, passkey, channel, email_shared_with, credential_taken, at } => {
                self.decide_registration(flow_id, passkey, channel, &email_shared_with, credential_taken, at, policy)?
            }
            C::RefusePasskeyRegistration { flow_id, reason, detail, .. } => {
                self.flow(&flow_id)?;
                vec![E::PasskeyRegistrationRefused { flow_id, reason, detail }]
            }
            C::RecordPasskeyLogin { credential_id, assertion, channel, environment, sign_in_id, second_factor_flow, at } => {
                self.decide_passkey_login(credential_id, assertion, channel, environment, sign_in_id, second_factor_flow, at, policy)?
            }
            C::CheckPasskeyAddition { logged_in_at, session, email_shared_with, at } => self
                .addition_refusal(logged_in_at, &session, &email_shared_with, at, policy)
                .map(|reason| E::PasskeyAdditionRefused { reason })
                .into_iter()
                .collect(),
            C::AddPasskey {
                passkey,
                logged_in_at,
                session_method,
                session,
                cross_device_sign_in,
                email_shared_with,
                credential_taken,
                at,
            } => {
                if let Some(reason) = self.addition_refusal(logged_in_at, &session, &email_shared_with, at, policy) {
                    return Ok(vec![E::PasskeyAdditionRefused { reason }]);
                }
                if credential_taken || self.holds_credential(&passkey.credential_id) {
                    return Ok(vec![E::PasskeyAdditionRefused { reason: Refusal::CredentialAlreadyRegistered }]);
                }
                if self.has_active_passkey() {
                    let added = E::LocalPasskeyAdded { passkey, cross_device_sign_in };
                    return Ok(self.closing_open_flows(vec![added], FlowClosure::PasskeyBound, None, at, policy));
                }
                // The account's first passkey: a registration, whatever the
                // path, resting on the session and its confirmation.
                let (how, flow_id) = self.session_step_up(&session, at, policy).unwrap_or(("none", None));
                let bound_by = format!("{SESSION_BINDING_PREFIX}{session_method}+{how}");
                let except = flow_id.clone();
                let registered = E::PasskeyRegistered { flow_id, passkey, bound_by };
                self.closing_open_flows(vec![registered], FlowClosure::PasskeyBound, except.as_deref(), at, policy)
            }
            C::RefusePasskeyAddition { reason, .. } => vec![E::PasskeyAdditionRefused { reason }],
            C::RecordCodeNotDelivered { flow_id, code_id, .. } => {
                self.flow(&flow_id)?;
                vec![E::EmailCodeNotDelivered { flow_id, code_id }]
            }
            C::ConfirmWithTradingPassword { trading_password_matches, session, logged_in_at, at } => {
                if at - logged_in_at > Duration::seconds(policy.recent_login_secs) {
                    vec![E::PasskeyAdditionRefused { reason: Refusal::RecentLoginRequired }]
                } else if self.deletion_locked {
                    // The trading password's lock holds here too.
                    vec![E::PasskeyAdditionRefused { reason: Refusal::TradingPasswordLocked }]
                } else if !trading_password_matches {
                    self.trading_password_rejected(policy)
                } else {
                    vec![E::SessionStepUpPassed { how: crate::policy::SessionStepUp::TradingPassword, at, session }]
                }
            }
            C::RequestStepUpCode { flow_id, channel, session, logged_in_at, slot, code, email_shared_with, at } => {
                if at - logged_in_at > Duration::seconds(policy.recent_login_secs) {
                    vec![E::PasskeyAdditionRefused { reason: Refusal::RecentLoginRequired }]
                } else {
                    self.decide_step_up_code(flow_id, channel, session, slot, code, &email_shared_with, at, policy)
                }
            }
            C::RecordCeremonyAbandoned { flow_id, reason, .. } => {
                if let Some(flow_id) = &flow_id {
                    self.flow(flow_id)?;
                }
                vec![E::PasskeyCeremonyAbandoned { flow_id, reason }]
            }
            C::DeclineLocalPasskey { cross_device_sign_in, .. } => vec![E::LocalPasskeyDeclined { cross_device_sign_in }],
            C::DeletePasskeys { passkey_id, trading_password_matches, .. } => {
                self.decide_deletion(passkey_id, trading_password_matches, policy)?
            }
            C::RevokePasskeysForCustomer { staff, passkey_id, reason, .. } => {
                let passkeys = self.passkeys_to_revoke(passkey_id.as_deref())?;
                if passkeys.is_empty() {
                    vec![]
                } else {
                    vec![E::PasskeysRevoked { passkeys, revoked_by: Revoker::Staff { staff, reason } }]
                }
            }
            C::ReinstatePasskey { staff, passkey_id, reason, .. } => {
                let passkey = self.active_passkeys().find(|p| p.passkey_id == passkey_id).ok_or(AccountError::UnknownPasskey)?;
                if !passkey.suspended {
                    return Err(AccountError::NotSuspended);
                }
                vec![E::PasskeyReinstated { passkey_id, name: passkey.name.clone(), staff, reason }]
            }
            C::Unlock { .. } if !self.locked && !self.deletion_locked => return Err(AccountError::NotLocked),
            C::Unlock { staff, reason, .. } => vec![E::LoginUnlocked { staff, reason }],
            C::RecordStaffRead { staff, view, .. } => vec![E::AccountViewedByStaff { staff, view }],
            C::RecordSessionsEnded { sessions, cause, .. } => {
                if sessions == 0 {
                    vec![]
                } else {
                    vec![E::SessionsEnded { sessions, cause }]
                }
            }
            C::RecordNotice { kind, destination, sent, .. } => vec![E::SecurityNoticeSent { kind, destination, sent }],
            C::ReportActivity { event_id, .. } if self.report_of(&event_id).is_some() => vec![],
            C::ReportActivity { event_id, sequence, event_type, passkey_id, reporting_passkey, note, sessions_ended, .. } => {
                let revoked = match passkey_id.as_deref() {
                    Some(id) if self.report_may_revoke(id, reporting_passkey.as_deref()) => self.passkeys_to_revoke(Some(id))?,
                    _ => vec![],
                };
                let mut events = vec![];
                let passkeys_revoked = revoked.iter().map(|p| p.passkey_id.clone()).collect();
                if !revoked.is_empty() {
                    events.push(E::PasskeysRevoked { passkeys: revoked, revoked_by: Revoker::ReportedByCustomer });
                }
                if sessions_ended > 0 {
                    events.push(E::SessionsEnded { sessions: sessions_ended, cause: SessionEndCause::ReportedByCustomer });
                }
                events.push(E::SuspiciousActivityReported { event_id, sequence, event_type, note, sessions_ended, passkeys_revoked });
                events
            }
        })
    }

    /// Adding a passkey from a session needs a recent login and room for one
    /// more; the account's first passkey, the rules of first registration.
    fn addition_refusal(
        &self,
        logged_in_at: DateTime<Utc>,
        session: &str,
        email_shared_with: &[String],
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Option<Refusal> {
        if at - logged_in_at > Duration::seconds(policy.recent_login_secs) {
            Some(Refusal::RecentLoginRequired)
        } else if !self.has_active_passkey() {
            self.first_passkey_refusal(email_shared_with, at, policy)
                .or_else(|| self.session_step_up(session, at, policy).is_none().then_some(Refusal::StepUpRequired))
        } else if !self.has_room_for_passkey(policy) {
            Some(Refusal::PasskeyLimitReached)
        } else {
            None
        }
    }

    /// Whether this account ever held the credential ID (deleted ones too).
    fn holds_credential(&self, credential_id: &str) -> bool {
        self.passkeys.iter().any(|p| p.credential_id == credential_id)
    }

    /// The flows still open at `at`, but `except`.
    fn open_flow_ids(&self, except: Option<&str>, at: DateTime<Utc>, policy: &Policy, also: impl Fn(&Flow) -> bool) -> Vec<String> {
        self.flows
            .iter()
            .filter(|(id, f)| {
                f.stage != FlowStage::Closed && at <= f.started_at + policy.flow_lifetime() && Some(id.as_str()) != except && also(f)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// `events`, followed by the closing of every open flow (but `except`)
    /// that the change they record ends.
    fn closing_open_flows(
        &self,
        mut events: Vec<AccountEvent>,
        because: FlowClosure,
        except: Option<&str>,
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Vec<AccountEvent> {
        // A second-factor login waiting for a passkey goes on when another
        // passkey is bound: it needs one.
        let flow_ids =
            self.open_flow_ids(except, at, policy, |f| because != FlowClosure::PasskeyBound || f.stage != FlowStage::AwaitingPasskey);
        if !flow_ids.is_empty() {
            events.push(AccountEvent::OpenFlowsClosed { flow_ids, because });
        }
        events
    }

    /// A wrong trading password, and the lock at the policy's limit.
    fn trading_password_rejected(&self, policy: &Policy) -> Vec<AccountEvent> {
        let failures = self.trading_password_failures + 1;
        let mut events = vec![AccountEvent::TradingPasswordRejected { consecutive_failures: failures }];
        if failures >= policy.lock_after_failed_trading_passwords {
            events.push(AccountEvent::PasskeyDeletionLocked { consecutive_failures: failures });
        }
        events
    }

    /// A code to confirm a first passkey from a session (seed 004): the
    /// first-registration rules, the resend limits (each such code counts
    /// as a resend), then a registration flow waiting for its code.
    #[allow(clippy::too_many_arguments)]
    fn decide_step_up_code(
        &self,
        flow_id: String,
        channel: Channel,
        session: String,
        slot: Option<u8>,
        code: IssuedCode,
        email_shared_with: &[String],
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Vec<AccountEvent> {
        use AccountEvent as E;
        if let Some(reason) = self.first_passkey_refusal(email_shared_with, at, policy) {
            return vec![E::PasskeyAdditionRefused { reason }];
        }
        // Codes asked for from a session: at most one a minute, and as many
        // an hour as resends.
        let asked: Vec<DateTime<Utc>> = self.flows.values().filter(|f| f.session.is_some()).map(|f| f.started_at).collect();
        if asked.iter().any(|t| at < *t + Duration::seconds(policy.resend_min_interval_secs)) {
            return vec![E::PasskeyAdditionRefused { reason: Refusal::ResendTooSoon }];
        }
        if asked.iter().filter(|t| **t > at - Duration::hours(1)).count() >= policy.resends_per_hour as usize
            || self.code_activity(at).issued >= policy.codes_per_hour
        {
            return vec![E::PasskeyAdditionRefused { reason: Refusal::ResendLimitReached }];
        }
        let started = E::RegistrationStarted { flow_id: flow_id.clone(), started_at: at, channel: Some(channel), session: Some(session) };
        if self.otp_device {
            return vec![started, E::OneTimePasswordRequested { flow_id, code_id: code.code_id, expires_at: code.expires_at }];
        }
        let chosen = self.code_addresses(policy).into_iter().find(|(s, _)| slot.is_none_or(|wanted| wanted == *s));
        let Some((slot, email)) = chosen else {
            return vec![E::PasskeyAdditionRefused { reason: Refusal::EmailUnreachable }];
        };
        vec![
            started,
            E::EmailCodeIssued {
                flow_id,
                code_id: code.code_id,
                destination: email.masked(),
                slot,
                issued_at: at,
                expires_at: code.expires_at,
                resend: false,
            },
        ]
    }

    /// Seed 004: the code goes to the address the customer picked; picking
    /// again later sends a new code, under the resend limits.
    fn decide_send_code(
        &self,
        flow_id: String,
        slot: u8,
        code: IssuedCode,
        channel: Channel,
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountEvent as E;
        let flow = self.flow(&flow_id)?;
        let refused = |reason| Ok(vec![E::FlowStepRefused { flow_id: flow_id.clone(), step: "send_code".into(), reason }]);
        if policy.code_destination != CodeDestination::Choose {
            return refused(Refusal::WrongStep);
        }
        if flow.code.as_ref().is_some_and(|c| c.factor == CodeFactor::Totp) {
            // The OTP device answers this flow: no e-mail stands in for it.
            return refused(Refusal::WrongStep);
        }
        let again = flow.stage == FlowStage::AwaitingCode;
        let expected = if again { FlowStage::AwaitingCode } else { FlowStage::AwaitingAddressChoice };
        if let Some(refusal) = self.flow_step_refusal(&flow_id, flow, "send_code", expected, channel, at, policy) {
            return Ok(vec![refusal]);
        }
        if let Some(reason) = self.resend_refusal(flow, at, policy).filter(|_| again) {
            return Ok(vec![E::EmailCodeResendRefused { flow_id, reason }]);
        }
        if self.code_activity(at).issued >= policy.codes_per_hour {
            return Ok(vec![E::EmailCodeResendRefused { flow_id, reason: Refusal::ResendLimitReached }]);
        }
        let Some(email) = self.reachable_address(slot) else {
            return refused(Refusal::EmailUnreachable);
        };
        Ok(vec![E::EmailCodeIssued {
            flow_id,
            code_id: code.code_id,
            destination: email.masked(),
            slot,
            issued_at: at,
            expires_at: code.expires_at,
            resend: again,
        }])
    }

    /// Seed 003's resend limits: a minute after the flow's last code, and so
    /// many codes again in any hour.
    fn resend_refusal(&self, flow: &Flow, at: DateTime<Utc>, policy: &Policy) -> Option<Refusal> {
        let last_issue = flow.code.as_ref().map(|c| c.issued_at);
        if last_issue.is_some_and(|t| at < t + Duration::seconds(policy.resend_min_interval_secs)) {
            Some(Refusal::ResendTooSoon)
        } else if self.resends.iter().filter(|t| **t > at - Duration::hours(1)).count() >= policy.resends_per_hour as usize
            || self.code_activity(at).issued >= policy.codes_per_hour
        {
            Some(Refusal::ResendLimitReached)
        } else {
            None
        }
    }

    /// Codes e-mailed and wrong codes typed within the last hour, across all
    /// the account's flows.
    fn code_activity(&self, at: DateTime<Utc>) -> CodeActivity {
        let within = |times: &[DateTime<Utc>]| times.iter().filter(|t| **t > at - Duration::hours(1)).count() as u32;
        CodeActivity { issued: within(&self.codes_mailed), wrong: within(&self.wrong_codes) }
    }

    /// What confirmed a first passkey from a session, if it was confirmed
    /// recently enough: the trading password, or a registration flow whose
    /// code was verified (its id).
    fn session_step_up(&self, session: &str, at: DateTime<Utc>, policy: &Policy) -> Option<(&'static str, Option<String>)> {
        let recent = Duration::seconds(policy.recent_login_secs);
        match policy.session_step_up {
            crate::policy::SessionStepUp::TradingPassword => self
                .step_up_at
                .filter(|t| at - *t <= recent && self.step_up_session.as_deref() == Some(session))
                .map(|_| ("trading_password", None)),
            crate::policy::SessionStepUp::EmailCode => self
                .flows
                .iter()
                .filter(|(_, f)| {
                    f.session.as_deref() == Some(session)
                        && f.stage == FlowStage::CodeVerified
                        && at <= f.started_at + policy.flow_lifetime()
                })
                .max_by_key(|(_, f)| f.started_at)
                .map(|(id, f)| (if f.verified_by == Some(CodeFactor::Totp) { "otp_device" } else { "email_code" }, Some(id.clone()))),
        }
    }

    /// The active passkeys a deletion takes: one by id, or all.
    fn set_suspended(&mut self, passkey_id: &str, suspended: bool) {
        if let Some(p) = self.passkeys.iter_mut().find(|p| p.passkey_id == passkey_id) {
            p.suspended = suspended;
        }
    }

    fn passkeys_to_revoke(&self, passkey_id: Option<&str>) -> Result<Vec<RevokedPasskey>, AccountError> {
        let chosen: Vec<RevokedPasskey> =
            self.active_passkeys().filter(|p| passkey_id.is_none_or(|id| p.passkey_id == id)).map(PasskeyState::revoked_record).collect();
        if passkey_id.is_some() && chosen.is_empty() {
            return Err(AccountError::UnknownPasskey);
        }
        Ok(chosen)
    }

    /// Deletion by the customer, with the trading password (seed 000 p.16).
    fn decide_deletion(
        &self,
        passkey_id: Option<String>,
        trading_password_matches: bool,
        policy: &Policy,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountEvent as E;
        let passkeys = self.passkeys_to_revoke(passkey_id.as_deref())?;
        if !policy.customer_deletion {
            return Ok(vec![E::PasskeyDeletionRefused { reason: Refusal::DeletionBySupportOnly }]);
        }
        if self.deletion_locked {
            return Ok(vec![E::PasskeyDeletionRefused { reason: Refusal::DeletionLocked }]);
        }
        if !trading_password_matches {
            return Ok(self.trading_password_rejected(policy));
        }
        if passkeys.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![E::PasskeysRevoked { passkeys, revoked_by: Revoker::Customer }])
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_password(
        &self,
        flow_id: String,
        purpose: FlowPurpose,
        channel: Channel,
        attempt: PasswordAttempt,
        email_shared_with: &[String],
        code: IssuedCode,
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountEvent as E;
        let PasswordAttempt { matches: password_matches, client, pending_start } = attempt;
        let refuse = |reason: Refusal| flow_refused(&flow_id, purpose, reason);
        // A registration begun anonymously becomes the account's here, when
        // the password passes, with the instant and channel it began on.
        let mut started = None;
        if purpose == FlowPurpose::Registration {
            let pending;
            let flow = match (self.flows.get(&flow_id), pending_start) {
                (Some(flow), _) => flow,
                (None, Some(start)) => {
                    pending = Flow::new(FlowPurpose::Registration, start.started_at, Some(start.channel));
                    started = Some(E::RegistrationStarted {
                        flow_id: flow_id.clone(),
                        started_at: start.started_at,
                        channel: Some(start.channel),
                        session: None,
                    });
                    &pending
                }
                (None, None) => return Err(AccountError::UnknownFlow),
            };
            if let Some(refused) = self.flow_step_refusal(&flow_id, flow, "password", FlowStage::AwaitingPassword, channel, at, policy) {
                return Ok(vec![refused]);
            }
            if started.is_some() && policy.registration_not_open(at) {
                return Ok(vec![refuse(Refusal::RegistrationNotOpen)]);
            }
        }
        // A locked login answers the same whatever password was typed.
        if self.locked {
            return Ok(vec![refuse(Refusal::LoginLocked)]);
        }
        if !password_matches {
            let failures = self.consecutive_password_failures + 1;
            let mut clients = self.password_failure_clients.clone();
            remember_client(&mut clients, client.as_deref());
            let mut events = vec![E::PasswordRejected { flow_id: flow_id.clone(), purpose, consecutive_failures: failures, client }];
            if failures >= policy.lock_after_failed_passwords {
                events.push(E::LoginLocked { consecutive_failures: failures, clients });
                return Ok(self.closing_open_flows(events, FlowClosure::LoginLocked, None, at, policy));
            }
            return Ok(events);
        }
        let mut events: Vec<AccountEvent> = started.into_iter().collect();
        events.push(E::PasswordVerified { flow_id: flow_id.clone(), purpose, at, channel: Some(channel) });
        if purpose == FlowPurpose::SecondFactorLogin && self.has_active_passkey() {
            events.push(E::SecondFactorRequired { flow_id });
            return Ok(events);
        }
        let refusal = self.flow_rule_refusal(purpose, channel, email_shared_with, at, policy);
        let addresses = self.code_addresses(policy);
        match (refusal, addresses.first()) {
            (Some(reason), _) => events.push(refuse(reason)),
            // The OTP service answers instead of a mailed code (seed 004).
            (None, _) if self.otp_device => {
                events.push(E::OneTimePasswordRequested { flow_id, code_id: code.code_id, expires_at: code.expires_at })
            }
            // Seed 004: "指定のメールアドレスを選択し、「送信」".
            (None, Some(_)) if policy.code_destination == CodeDestination::Choose => events.push(E::CodeDestinationsOffered {
                flow_id,
                addresses: addresses.iter().map(|(slot, a)| OfferedAddress { slot: *slot, destination: a.masked() }).collect(),
            }),
            (None, Some(_)) if self.code_activity(at).issued >= policy.codes_per_hour => events.push(refuse(Refusal::ResendLimitReached)),
            (None, Some((slot, email))) => events.push(E::EmailCodeIssued {
                flow_id,
                code_id: code.code_id,
                destination: email.masked(),
                slot: *slot,
                issued_at: at,
                expires_at: code.expires_at,
                resend: false,
            }),
            (None, None) => events.push(refuse(Refusal::EmailUnreachable)),
        }
        Ok(events)
    }

    /// The rule a flow of `purpose` must pass at every step that leads to a
    /// session or a bound passkey (docs/rules.md).
    fn flow_rule_refusal(
        &self,
        purpose: FlowPurpose,
        channel: Channel,
        email_shared_with: &[String],
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Option<Refusal> {
        match purpose {
            FlowPurpose::Registration => self.first_passkey_refusal(email_shared_with, at, policy),
            FlowPurpose::PasswordLogin | FlowPurpose::SecondFactorLogin => self.password_login_refusal(channel, at, policy),
        }
    }

    /// Whether the account's first passkey may be bound now (DOMAIN.md flow
    /// 2; seed 000 "パスキー登録の前に", seed 003 §5), by any path: the
    /// registration flow or a signed-in session. In the order a customer
    /// can act on them.
    pub fn first_passkey_refusal(&self, email_shared_with: &[String], at: DateTime<Utc>, policy: &Policy) -> Option<Refusal> {
        let no_address = self.code_addresses(policy).is_empty();
        if policy.registration_not_open(at) {
            Some(Refusal::RegistrationNotOpen)
        } else if self.has_active_passkey() {
            Some(Refusal::PasskeyAlreadyRegistered)
        } else if self.locked {
            Some(Refusal::LoginLocked)
        } else if self.password_temporary {
            Some(Refusal::TemporaryPassword)
        } else if no_address {
            Some(Refusal::EmailUnreachable)
        } else if !email_shared_with.is_empty() {
            Some(Refusal::EmailSharedWithOtherAccounts)
        } else {
            None
        }
    }

    /// Once a passkey exists, password login is refused on every channel
    /// (seed 000, 003); before that, it is refused on channels whose
    /// passkey-mandatory instant has passed.
    pub fn password_login_refusal(&self, channel: Channel, at: DateTime<Utc>, policy: &Policy) -> Option<Refusal> {
        if self.locked {
            Some(Refusal::LoginLocked)
        } else if self.has_active_passkey() {
            Some(Refusal::PasskeyRequired)
        } else if policy.passkey_mandatory(channel, at) {
            // No passkey yet on a passkey-only channel: register one (seed 000).
            Some(Refusal::PasskeyRegistrationRequired)
        } else if self.code_addresses(policy).is_empty() && !self.otp_device {
            Some(Refusal::EmailUnreachable)
        } else {
            None
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn flow_step_refusal(
        &self,
        flow_id: &str,
        flow: &Flow,
        step: &str,
        expected: FlowStage,
        channel: Channel,
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Option<AccountEvent> {
        let reason = if flow.stage == FlowStage::Closed {
            Some(flow.closed_by.map_or(Refusal::WrongStep, |c| c.refusal(flow.purpose)))
        } else if at > flow.started_at + policy.flow_lifetime() {
            Some(Refusal::FlowExpired)
        } else if flow.channel.is_some_and(|c| c != channel) {
            // A flow keeps the channel it began on.
            Some(Refusal::WrongChannel)
        } else if flow.stage != expected {
            Some(Refusal::WrongStep)
        } else {
            None
        };
        reason.map(|reason| AccountEvent::FlowStepRefused { flow_id: flow_id.to_string(), step: step.to_string(), reason })
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_code(
        &self,
        flow_id: String,
        code_id: String,
        matches: bool,
        channel: Channel,
        email_shared_with: &[String],
        environment: Option<Environment>,
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountEvent as E;
        let flow = self.flow(&flow_id)?;
        if let Some(refused) = self.flow_step_refusal(&flow_id, flow, "email_code", FlowStage::AwaitingCode, channel, at, policy) {
            return Ok(vec![refused]);
        }
        if let Some(reason) = self.flow_rule_refusal(flow.purpose, channel, email_shared_with, at, policy) {
            return Ok(vec![flow_refused(&flow_id, flow.purpose, reason)]);
        }
        if self.code_activity(at).wrong >= policy.wrong_codes_per_hour {
            return Ok(vec![E::FlowStepRefused { flow_id, step: "email_code".into(), reason: Refusal::TooManyAttempts }]);
        }
        let Some(code) = flow.code.as_ref().filter(|c| c.code_id == code_id) else {
            // A code that is not the flow's current one (replaced by a resend).
            return Ok(vec![E::EmailCodeRejected { flow_id, code_id, attempts_left: 0 }]);
        };
        if code.attempts_used >= policy.code_max_attempts {
            return Ok(vec![E::FlowStepRefused { flow_id, step: "email_code".into(), reason: Refusal::TooManyAttempts }]);
        }
        if at > code.expires_at {
            return Ok(vec![E::EmailCodeExpired { flow_id, code_id }]);
        }
        if matches {
            let mut events = vec![E::EmailCodeVerified { flow_id: flow_id.clone(), code_id, factor: code.factor }];
            if flow.purpose != FlowPurpose::Registration {
                let new_environment = self.is_new_environment(&environment);
                events.push(E::PasswordLoginSucceeded { flow_id, environment, new_environment });
            }
            return Ok(events);
        }
        let attempts_left = policy.code_max_attempts.saturating_sub(code.attempts_used + 1);
        let mut events = vec![E::EmailCodeRejected { flow_id: flow_id.clone(), code_id: code_id.clone(), attempts_left }];
        if attempts_left == 0 {
            events.push(E::EmailCodeExhausted { flow_id, code_id });
        }
        Ok(events)
    }

    fn decide_resend(
        &self,
        flow_id: String,
        code: IssuedCode,
        channel: Channel,
        email_shared_with: &[String],
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountEvent as E;
        let flow = self.flow(&flow_id)?;
        if let Some(refused) = self.flow_step_refusal(&flow_id, flow, "email_code_resend", FlowStage::AwaitingCode, channel, at, policy) {
            return Ok(vec![refused]);
        }
        if let Some(reason) = self.flow_rule_refusal(flow.purpose, channel, email_shared_with, at, policy) {
            return Ok(vec![flow_refused(&flow_id, flow.purpose, reason)]);
        }
        if flow.code.as_ref().is_some_and(|c| c.factor == CodeFactor::Totp) {
            // Nothing is mailed: the OTP device shows a new password by itself.
            return Ok(vec![E::EmailCodeResendRefused { flow_id, reason: Refusal::WrongStep }]);
        }
        if let Some(reason) = self.resend_refusal(flow, at, policy) {
            return Ok(vec![E::EmailCodeResendRefused { flow_id, reason }]);
        }
        // Again to the address the customer's code went to.
        let slot = flow.code.as_ref().map_or(1, |c| c.slot);
        let Some(email) = self.reachable_address(slot) else {
            return Ok(vec![E::EmailCodeResendRefused { flow_id, reason: Refusal::EmailUnreachable }]);
        };
        Ok(vec![E::EmailCodeIssued {
            slot,
            flow_id,
            code_id: code.code_id,
            destination: email.masked(),
            issued_at: at,
            expires_at: code.expires_at,
            resend: true,
        }])
    }

    /// What the passkey step of registration flow `flow_id` would answer
    /// before any credential is looked at: the step, and the rules of first
    /// registration (so that no creation options are handed out for a
    /// passkey that would be refused).
    pub fn passkey_step_refusal(
        &self,
        flow_id: &str,
        channel: Channel,
        email_shared_with: &[String],
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Option<Refusal>, AccountError> {
        let flow = self.flow(flow_id)?;
        if flow.purpose != FlowPurpose::Registration {
            return Err(AccountError::UnknownFlow);
        }
        Ok(self
            .flow_step_refusal(flow_id, flow, "passkey", FlowStage::CodeVerified, channel, at, policy)
            .and_then(|e| e.refusal())
            .or_else(|| self.first_passkey_refusal(email_shared_with, at, policy)))
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_registration(
        &self,
        flow_id: String,
        passkey: NewPasskey,
        channel: Channel,
        email_shared_with: &[String],
        credential_taken: bool,
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountEvent as E;
        let flow = self.flow(&flow_id)?;
        if flow.purpose != FlowPurpose::Registration {
            return Err(AccountError::UnknownFlow);
        }
        if let Some(refused) = self.flow_step_refusal(&flow_id, flow, "passkey", FlowStage::CodeVerified, channel, at, policy) {
            return Ok(vec![refused]);
        }
        // Another flow may have registered a passkey in the meantime, or
        // the account changed since the code.
        if let Some(reason) = self.first_passkey_refusal(email_shared_with, at, policy) {
            return Ok(vec![E::PasskeyRegistrationRefused { flow_id, reason, detail: String::new() }]);
        }
        if credential_taken || self.holds_credential(&passkey.credential_id) {
            return Ok(vec![E::PasskeyRegistrationRefused {
                flow_id,
                reason: Refusal::CredentialAlreadyRegistered,
                detail: "the credential ID is already bound to an account".into(),
            }]);
        }
        let bound_by = if flow.verified_by == Some(CodeFactor::Totp) { OTP_DEVICE_BINDING } else { FIRST_PASSKEY_BINDING };
        let registered = E::PasskeyRegistered { flow_id: Some(flow_id.clone()), passkey, bound_by: bound_by.to_string() };
        Ok(self.closing_open_flows(vec![registered], FlowClosure::PasskeyBound, Some(&flow_id), at, policy))
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_passkey_login(
        &self,
        credential_id: String,
        assertion: Result<PasskeyAssertion, String>,
        channel: Channel,
        environment: Option<Environment>,
        sign_in_id: String,
        second_factor_flow: Option<String>,
        at: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountEvent as E;
        let known = self.passkeys.iter().find(|p| p.credential_id == credential_id);
        let failed = |passkey_id: Option<String>, reason: Refusal, detail: String| {
            Ok(vec![E::PasskeyLoginFailed { passkey_id, credential_id: credential_id.clone(), reason, detail }])
        };
        match &second_factor_flow {
            Some(flow_id) => {
                let flow = self.flow(flow_id)?;
                if flow.purpose != FlowPurpose::SecondFactorLogin {
                    return Err(AccountError::UnknownFlow);
                }
                if let Some(refused) = self.flow_step_refusal(flow_id, flow, "passkey", FlowStage::AwaitingPasskey, channel, at, policy) {
                    return Ok(vec![refused]);
                }
                // The password is half of this login: a locked login stays locked.
                if self.locked {
                    return failed(known.map(|p| p.passkey_id.clone()), Refusal::LoginLocked, String::new());
                }
            }
            // Seed 002: the passkey answers after the login ID and password, never alone.
            None if policy.login_mode == LoginMode::SecondFactor => {
                return failed(known.map(|p| p.passkey_id.clone()), Refusal::PasswordStepRequired, String::new());
            }
            None => {}
        }
        let Some(passkey) = known else {
            return failed(None, Refusal::InvalidCredential, "credential not bound to this account".into());
        };
        let id = Some(passkey.passkey_id.clone());
        if passkey.revoked {
            return failed(id, Refusal::RevokedCredential, String::new());
        }
        let assertion = match assertion {
            Ok(a) => a,
            Err(detail) => return failed(id, Refusal::InvalidCredential, detail),
        };
        // Checked after the signature: a caller with the credential ID
        // alone learns nothing of it.
        if passkey.suspended {
            return failed(id, Refusal::PasskeySuspended, String::new());
        }
        // A counter that does not increase, when either value is non-zero,
        // signals a possibly cloned authenticator (WebAuthn §6.1.1): the
        // passkey is suspended until support has looked at it.
        if (assertion.counter != 0 || passkey.counter != 0) && assertion.counter <= passkey.counter {
            let mut events = failed(
                id.clone(),
                Refusal::CounterRegression,
                format!("stored counter {}, asserted {}", passkey.counter, assertion.counter),
            )?;
            if policy.suspend_on_counter_regression {
                // With it, what was added on a device it signed in to.
                let derived = self.active_passkeys().filter(|p| !p.suspended && p.added_after_sign_in_with.as_ref() == id.as_ref());
                for (p, with_passkey) in std::iter::once((passkey, None)).chain(derived.map(|p| (p, id.clone()))) {
                    events.push(E::PasskeySuspended {
                        passkey_id: p.passkey_id.clone(),
                        credential_id: p.credential_id.clone(),
                        name: p.name.clone(),
                        reason: Refusal::CounterRegression,
                        with_passkey,
                    });
                }
            }
            return Ok(events);
        }
        let new_environment = self.is_new_environment(&environment);
        let backup_changed = assertion.backup_state != passkey.backup_state;
        let backup_state = assertion.backup_state;
        let passkey_id = passkey.passkey_id.clone();
        let reported = assertion.authenticator_attachment.as_deref();
        let mut events = match reported {
            Some("cross-platform") if passkey.is_platform_passkey() => vec![E::CrossDeviceSignInSucceeded {
                sign_in_id,
                passkey_id: passkey_id.clone(),
                credential_id,
                assertion,
                environment,
                new_environment,
                second_factor_flow,
            }],
            _ => {
                let authenticator = match reported {
                    Some("cross-platform") => LoginAuthenticator::SecurityKey,
                    Some(_) => LoginAuthenticator::SameDevice,
                    None => LoginAuthenticator::NotReported,
                };
                vec![E::PasskeyLoginSucceeded {
                    passkey_id: passkey_id.clone(),
                    credential_id,
                    assertion,
                    authenticator,
                    environment,
                    new_environment,
                    second_factor_flow,
                }]
            }
        };
        if backup_changed {
            events.push(E::PasskeyBackupStateChanged { passkey_id, backup_state });
        }
        Ok(events)
    }

    fn close_flow(&mut self, flow_id: &str) {
        if let Some(flow) = self.flows.get_mut(flow_id) {
            flow.stage = FlowStage::Closed;
            flow.code = None;
        }
    }

    /// Keeps the aggregate small over years of logins: a closed flow only
    /// answers "wrong step", an abandoned one would be past its lifetime, so
    /// only the most recent flows are kept (an older one is then unknown).
    fn prune_flows(&mut self) {
        const KEEP: usize = 20;
        if self.flows.len() <= KEEP {
            return;
        }
        let mut by_age: Vec<(DateTime<Utc>, String)> = self.flows.iter().map(|(id, f)| (f.started_at, id.clone())).collect();
        by_age.sort();
        for (_, id) in by_age.into_iter().take(self.flows.len() - KEEP) {
            self.flows.remove(&id);
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = AccountServices;

    async fn handle(&mut self, command: Self::Command, services: &Self::Services, sink: &EventSink<Self>) -> Result<(), Self::Error> {
        for event in self.decide(command, &services.policy)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use AccountEvent as E;
        if let E::CrossDeviceSignInSucceeded { sign_in_id, passkey_id, .. } = &event {
            self.cross_device_sign_ins.push((sign_in_id.clone(), passkey_id.clone()));
            if self.cross_device_sign_ins.len() > RECENT_KEPT {
                self.cross_device_sign_ins.remove(0);
            }
        }
        match event {
            E::AccountOpened { login_id, holder_kind, email, password_temporary } => {
                self.opened = true;
                self.login_id = Some(login_id);
                self.holder_kind = Some(holder_kind);
                self.email = email;
                self.email_reachable = true;
                self.password_temporary = password_temporary;
            }
            E::EmailAddressChanged { email, slot: 2, .. } => {
                self.email_2 = Some(email);
                self.email_2_reachable = true;
            }
            E::EmailAddressChanged { email, .. } => {
                self.email = Some(email);
                self.email_reachable = true;
            }
            E::EmailReachabilityChanged { reachable, slot: 2 } => self.email_2_reachable = reachable,
            E::EmailReachabilityChanged { reachable, .. } => self.email_reachable = reachable,
            E::CodeDestinationsOffered { flow_id, .. } => {
                if let Some(flow) = self.flows.get_mut(&flow_id) {
                    flow.stage = FlowStage::AwaitingAddressChoice;
                }
            }
            E::LoginPasswordChanged { temporary } => {
                self.password_temporary = temporary;
                self.consecutive_password_failures = 0;
                self.password_failure_clients.clear();
                self.locked = false;
            }
            E::TradingPasswordChanged { .. } => {
                self.trading_password_failures = 0;
                self.deletion_locked = false;
            }
            E::RegistrationStarted { flow_id, started_at, channel, session } => {
                let mut flow = Flow::new(FlowPurpose::Registration, started_at, channel);
                flow.session = session;
                self.flows.insert(flow_id, flow);
            }
            E::PasswordVerified { flow_id, purpose, at, channel } => {
                self.consecutive_password_failures = 0;
                self.password_failure_clients.clear();
                // A password login's flow begins with its verified password.
                self.flows.entry(flow_id).or_insert_with(|| Flow::new(purpose, at, channel));
            }
            E::OpenFlowsClosed { flow_ids, because } => {
                for flow_id in flow_ids {
                    self.close_flow(&flow_id);
                    if let Some(flow) = self.flows.get_mut(&flow_id) {
                        flow.closed_by = Some(because);
                    }
                }
            }
            E::PasswordRejected { consecutive_failures, client, .. } => {
                if consecutive_failures <= 1 {
                    self.password_failure_clients.clear();
                }
                self.consecutive_password_failures = consecutive_failures;
                remember_client(&mut self.password_failure_clients, client.as_deref());
            }
            E::LoginLocked { .. } => self.locked = true,
            E::RegistrationRefused { flow_id, .. } | E::PasswordLoginRefused { flow_id, .. } => self.close_flow(&flow_id),
            E::EmailCodeIssued { flow_id, code_id, issued_at, expires_at, resend, slot, .. } => {
                remember(&mut self.codes_mailed, issued_at);
                if let Some(flow) = self.flows.get_mut(&flow_id) {
                    flow.stage = FlowStage::AwaitingCode;
                    flow.code = Some(CodeState { code_id, issued_at, expires_at, attempts_used: 0, factor: CodeFactor::EmailCode, slot });
                }
                if resend {
                    remember(&mut self.resends, issued_at);
                }
            }
            E::OneTimePasswordRequested { flow_id, code_id, expires_at } => {
                if let Some(flow) = self.flows.get_mut(&flow_id) {
                    flow.stage = FlowStage::AwaitingCode;
                    let issued_at = flow.started_at;
                    flow.code = Some(CodeState { code_id, issued_at, expires_at, attempts_used: 0, factor: CodeFactor::Totp, slot: 1 });
                }
            }
            E::EmailCodeNotDelivered { flow_id, code_id } => {
                if let Some(flow) = self.flows.get_mut(&flow_id) {
                    if let Some(code) = flow.code.as_ref().filter(|c| c.code_id == code_id) {
                        // No code went out: it counts against neither the
                        // hour's codes nor its resends.
                        if let Some(i) = self.codes_mailed.iter().rposition(|t| *t == code.issued_at) {
                            self.codes_mailed.remove(i);
                        }
                        if let Some(i) = self.resends.iter().rposition(|t| *t == code.issued_at) {
                            self.resends.remove(i);
                        }
                        flow.code = None;
                    }
                }
            }
            E::OtpDeviceRegistered { .. } => self.otp_device = true,
            E::OtpDeviceRemoved {} => self.otp_device = false,
            E::EmailCodeVerified { flow_id, factor, .. } => {
                if let Some(flow) = self.flows.get_mut(&flow_id) {
                    flow.stage = FlowStage::CodeVerified;
                    flow.code = None;
                    flow.verified_by = Some(factor);
                }
            }
            E::EmailCodeRejected { flow_id, code_id, .. } => {
                if let Some(flow) = self.flows.get_mut(&flow_id) {
                    let dated = flow.code.as_ref().map_or(flow.started_at, |c| c.issued_at);
                    remember(&mut self.wrong_codes, dated);
                    if let Some(code) = flow.code.as_mut().filter(|c| c.code_id == code_id) {
                        code.attempts_used += 1;
                    }
                }
            }
            E::EmailCodeExpired { .. } | E::EmailCodeResendRefused { .. } | E::FlowStepRefused { .. } => {}
            E::EmailCodeExhausted { flow_id, .. } => {
                self.close_flow(&flow_id);
                if let Some(flow) = self.flows.get_mut(&flow_id) {
                    flow.closed_by = Some(FlowClosure::CodeExhausted);
                }
            }
            E::SessionStepUpPassed { at, session, .. } => {
                self.step_up_at = Some(at);
                self.step_up_session = Some(session);
                self.trading_password_failures = 0;
            }
            E::PasskeyRegistered { flow_id, passkey, .. } => {
                self.step_up_at = None;
                self.step_up_session = None;
                if let Some(flow_id) = flow_id {
                    self.close_flow(&flow_id);
                }
                self.remember_environment(&passkey.environment);
                self.passkeys.push(PasskeyState::from_new(&passkey));
            }
            E::LocalPasskeyAdded { passkey, cross_device_sign_in } => {
                self.remember_environment(&passkey.environment);
                let mut state = PasskeyState::from_new(&passkey);
                state.added_after_sign_in_with =
                    cross_device_sign_in.and_then(|s| self.cross_device_sign_ins.iter().find(|(id, _)| *id == s).map(|(_, p)| p.clone()));
                self.passkeys.push(state);
            }
            E::PasskeyLoginSucceeded { passkey_id, assertion, environment, second_factor_flow, .. }
            | E::CrossDeviceSignInSucceeded { passkey_id, assertion, environment, second_factor_flow, .. } => {
                if let Some(p) = self.passkeys.iter_mut().find(|p| p.passkey_id == passkey_id) {
                    p.counter = assertion.counter;
                }
                self.remember_environment(&environment);
                if let Some(flow_id) = second_factor_flow {
                    self.close_flow(&flow_id);
                }
            }
            E::PasskeyBackupStateChanged { passkey_id, backup_state } => {
                if let Some(p) = self.passkeys.iter_mut().find(|p| p.passkey_id == passkey_id) {
                    p.backup_state = backup_state;
                }
            }
            E::SecondFactorRequired { flow_id } => {
                if let Some(flow) = self.flows.get_mut(&flow_id) {
                    flow.stage = FlowStage::AwaitingPasskey;
                }
            }
            E::PasswordLoginSucceeded { flow_id, environment, .. } => {
                self.close_flow(&flow_id);
                self.remember_environment(&environment);
            }
            E::TradingPasswordRejected { consecutive_failures } => self.trading_password_failures = consecutive_failures,
            E::PasskeyDeletionLocked { .. } => self.deletion_locked = true,
            E::PasskeysRevoked { passkeys, revoked_by } => {
                for revoked in passkeys {
                    if let Some(p) = self.passkeys.iter_mut().find(|p| p.passkey_id == revoked.passkey_id) {
                        p.revoked = true;
                    }
                }
                if revoked_by == Revoker::Customer {
                    self.trading_password_failures = 0;
                }
            }
            E::PasskeySuspended { passkey_id, .. } => self.set_suspended(&passkey_id, true),
            E::PasskeyReinstated { passkey_id, .. } => {
                self.set_suspended(&passkey_id, false);
                // The genuine device's counter may be below the copy's: its
                // next answer sets the counter anew.
                if let Some(p) = self.passkeys.iter_mut().find(|p| p.passkey_id == passkey_id) {
                    p.counter = 0;
                }
            }
            E::LoginUnlocked { .. } => {
                self.locked = false;
                self.consecutive_password_failures = 0;
                self.password_failure_clients.clear();
                self.deletion_locked = false;
                self.trading_password_failures = 0;
            }
            E::PasskeyRegistrationRefused { .. }
            | E::PasskeyLoginFailed { .. }
            | E::PasskeyAdditionRefused { .. }
            | E::LocalPasskeyDeclined { .. }
            | E::PasskeyCeremonyAbandoned { .. }
            | E::PasskeyDeletionRefused { .. }
            | E::AccountViewedByStaff { .. }
            | E::SessionsEnded { .. }
            | E::SecurityNoticeSent { .. } => {}
            E::SuspiciousActivityReported { event_id, sequence, sessions_ended, passkeys_revoked, note, .. } => {
                self.reports.push(ActivityReport { event_id, sequence, sessions_ended, passkeys_revoked, note });
            }
        }
        self.prune_flows();
    }
}

/// Clients a lock names, at most.
pub const LOCK_CLIENTS_KEPT: usize = 20;

/// Adds `client` to the run's distinct clients, up to [`LOCK_CLIENTS_KEPT`].
fn remember_client(clients: &mut Vec<String>, client: Option<&str>) {
    if let Some(client) = client.filter(|c| !c.is_empty()) {
        if clients.len() < LOCK_CLIENTS_KEPT && !clients.iter().any(|c| c == client) {
            clients.push(client.to_string());
        }
    }
}

/// A password as typed at a step: whether it matched, from where, and the
/// registration it may start.
struct PasswordAttempt {
    matches: bool,
    client: Option<String>,
    pending_start: Option<super::commands::PendingStart>,
}
