//! The steps that registration, password login and the customer's own
//! passkey pages share: flows, the password step, e-mailed codes, WebAuthn
//! ceremonies and the checks of a new passkey. Handlers call these; these
//! call the domain (through the bus) and the service's storage.

use super::contract::{
    public_key_of, AddressChoice, ChooseAddress, CodeResent, CodeSent, CodeStep, DeviceFactor, Next, PasswordAccepted, SecondFactorOptions,
    SecondFactorPasskey,
};
use super::extract::{account_view_current, execute, RequestMeta};
use crate::bus::Executed;
use crate::error::{ApiError, ErrorCode};
use crate::secrets::{code_hmac, digests_equal, OtpCode};
use crate::state::AppState;
use chrono::{DateTime, Duration, Utc};
use ledger_domain::account::{CodeFactor, FlowPurpose, IssuedCode, NewPasskey};
use ledger_domain::{Account, AccountCommand, AccountEvent, CredentialId, EmailAddress, LoginId, PasskeyName, Refusal};
use ledger_projections::read_models::PasskeyView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use webauthn_rs::prelude::{PasskeyRegistration, RegisterPublicKeyCredential};

pub use crate::storage::Flow as FlowRow;

/// Opens a flow for `login_id` (its account, when there is one).
pub async fn create_flow(
    app: &AppState,
    login_id: &LoginId,
    account_id: Option<&str>,
    purpose: &str,
    meta: &RequestMeta,
) -> Result<ledger_domain::FlowId, ApiError> {
    let flow_id = ledger_domain::FlowId::generate();
    let now = app.clock.now();
    app.store
        .create_flow(crate::storage::NewFlow {
            flow_id: &flow_id,
            account_id,
            purpose,
            channel: meta.channel.as_str(),
            login_id: login_id.as_str(),
            created_at: now,
            expires_at: now + app.ledger.policy().flow_lifetime(),
        })
        .await?;
    Ok(flow_id)
}

/// The least time a password step takes to answer (argon2 alone takes
/// most of it).
pub const PASSWORD_STEP_FLOOR: std::time::Duration = std::time::Duration::from_millis(100);

/// A password step for `login_id`, throttled per login ID: past its
/// allowance of wrong passwords it is answered 429 `too_many_requests`
/// (with `Retry-After`) before any password is checked or anything
/// recorded; a wrong password or a lock counts against it. Known and
/// unknown IDs alike.
pub async fn throttled_password_step<T>(
    app: &AppState,
    login_id: &str,
    step: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    if let Some(wait) = app.login_throttle.admit(login_id.to_string()) {
        return Err(ApiError::from(ErrorCode::TooManyRequests).retry_after(wait));
    }
    let Some(_attempt) = app.login_throttle.enter(login_id.to_string()) else {
        return Err(ApiError::from(ErrorCode::TooManyRequests).retry_after(std::time::Duration::from_secs(1)));
    };
    let started = tokio::time::Instant::now();
    let answered = step.await;
    // Known and unknown IDs take different paths (an account's event, or
    // a count and an event of their own): every answer waits for the same
    // floor, so the time it takes tells nothing.
    tokio::time::sleep_until(started + PASSWORD_STEP_FLOOR).await;
    if let Err(e) = &answered {
        if matches!(e.code, ErrorCode::InvalidCredentials | ErrorCode::LoginLocked) {
            app.login_throttle.failed(login_id.to_string());
        }
    }
    answered
}

/// A login ID no account can have (spaces, a line break, full-width or
/// Japanese characters, more than 64 characters), as the trail records it:
/// trimmed, at most 64 characters, control and invisible characters escaped
/// (`\n`, `\u{3000}`), so that a line shows exactly what was sent and
/// nothing of it acts on a terminal or a log.
pub fn shown_login_id(raw: &str) -> String {
    let trimmed = raw.trim();
    let mut shown: String = trimmed
        .chars()
        .take(64)
        .flat_map(|c| {
            if c.is_control()
                || (c.is_whitespace() && c != ' ')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{feff}')
            {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if trimmed.chars().count() > 64 {
        shown.push('…');
    }
    shown
}

/// A password step for a login ID no account has: the password is checked
/// against a dummy hash (the same work as a real one), the attempt is
/// recorded in a stream of its own, and the answer is a wrong password's,
/// until as many attempts as lock a real account: from then on, the
/// lock's. Whether an ID exists shows neither in the answer nor in the lock.
pub async fn unknown_login_id(
    app: &AppState,
    login_id: &str,
    password: crate::secrets::Secret,
    purpose: FlowPurpose,
    meta: &RequestMeta,
) -> ApiError {
    let answered = async {
        password_matches(app, password, crate::secrets::dummy_hash().to_string()).await?;
        let key = crate::secrets::login_id_key(app.secret_key(), login_id).map_err(ApiError::internal)?;
        let failures = app.store.unknown_login_failed(&key, app.clock.now()).await?;
        let event = ledger_domain::system::SystemEvent::UnknownLoginIdRejected { login_id: login_id.to_string(), purpose };
        let stream = uuid::Uuid::new_v4().to_string();
        app.system_log.record(&stream, event, meta.metadata("anonymous", app.clock.now())).await.map_err(ApiError::internal)?;
        Ok::<_, ApiError>(if failures >= app.ledger.policy().lock_after_failed_passwords {
            Refusal::LoginLocked
        } else {
            Refusal::InvalidCredentials
        })
    };
    match answered.await {
        Ok(refusal) => refusal.into(),
        Err(e) => e,
    }
}

/// The flow `flow_id` of `purpose`; 404 when there is none.
pub async fn load_flow(app: &AppState, flow_id: &str, purpose: &str) -> Result<FlowRow, ApiError> {
    app.store.flow(flow_id, purpose).await?.ok_or_else(ApiError::not_found)
}

/// The account a login ID names, and its password hash (the command
/// side's lookup, current by construction).
pub async fn account_by_login_id(app: &AppState, login_id: &LoginId) -> Result<Option<(String, String)>, ApiError> {
    Ok(app.store.login(login_id.as_str()).await?)
}

/// Checks a password off the async threads (argon2 is slow on purpose), in
/// one of the bounded slots for password work: `busy` (503) when none comes
/// free in time.
pub async fn password_matches(app: &AppState, password: crate::secrets::Secret, hash: String) -> Result<bool, ApiError> {
    match app.password_work.verify(password, hash).await {
        Ok(Some(matches)) => Ok(matches),
        Ok(None) => Err(ApiError::internal("the password check failed")),
        Err(crate::secrets::Busy) => Err(ErrorCode::Busy.into()),
    }
}

/// A fresh code: the secret for the e-mail and what the domain is told.
pub fn draw_code(app: &AppState) -> (OtpCode, IssuedCode) {
    let now = app.clock.now();
    let issued = IssuedCode { code_id: uuid::Uuid::new_v4().to_string(), expires_at: now + app.ledger.policy().code_lifetime() };
    (OtpCode::draw(), issued)
}

/// When a customer whose code e-mail could not be handed to the mail
/// server is told to ask again: a relay restarting is back by then.
const MAIL_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// After the domain issued a code: keep only its keyed hash, mail it.
pub async fn deliver_code(app: &AppState, account_id: &str, flow_id: &str, code: &OtpCode, done: &Executed) -> Result<CodeSent, ApiError> {
    // The OTP service answers instead (seed 004): nothing is mailed, the
    // page asks for the device's one-time password.
    if let Some(expires_at) = done.events.iter().find_map(|e| match e {
        AccountEvent::OneTimePasswordRequested { expires_at, .. } => Some(*expires_at),
        _ => None,
    }) {
        return Ok(CodeSent::Device { factor: DeviceFactor::Totp, expires_at });
    }
    let Some((code_id, destination, issued_at, expires_at, slot)) = done.events.iter().find_map(|e| match e {
        AccountEvent::EmailCodeIssued { code_id, destination, issued_at, expires_at, slot, .. } => {
            Some((code_id.clone(), destination.clone(), *issued_at, *expires_at, *slot))
        }
        _ => None,
    }) else {
        return Err(done.refusal().map(ApiError::from).unwrap_or_else(|| ApiError::internal("no code issued and no refusal")));
    };
    let hmac = code_hmac(app.secret_key(), &code_id, code.for_mail()).map_err(ApiError::internal)?;
    app.store.keep_code(&code_id, flow_id, &hmac, issued_at, expires_at).await?;
    let to = done.account.reachable_address(slot).map(EmailAddress::as_str).unwrap_or_default().to_string();
    let purpose = done.account.flow_purpose(flow_id).unwrap_or(ledger_domain::account::FlowPurpose::Registration);
    let sent = app.mailer.send_code(&app.config, &to, code, expires_at, purpose).await;
    app.metrics.mail("code", sent.is_ok());
    if let Err(e) = sent {
        tracing::error!(error = %e, account_id, "the code e-mail could not be sent");
        // The trail says no code went out; the customer may ask again at once.
        let now = app.clock.now();
        let command = AccountCommand::RecordCodeNotDelivered { flow_id: flow_id.to_string(), code_id: code_id.clone(), at: now };
        if let Err(e) = app.ledger.execute(account_id, command, crate::bus::system_metadata(now)).await {
            tracing::error!(error = %e, account_id, "an undelivered code could not be recorded");
        }
        return Err(ApiError::from(ErrorCode::EmailNotSent).retry_after(MAIL_RETRY_AFTER));
    }
    Ok(CodeSent::Email { destination, slot, expires_at })
}

/// Checks a typed code against the flow's current code.
pub async fn check_code(
    app: &AppState,
    account_id: &str,
    flow_id: &str,
    typed: &OtpCode,
    meta: &RequestMeta,
) -> Result<Executed, ApiError> {
    let current = app.store.current_code(flow_id).await?;
    let (mut code_id, stored) = current.unwrap_or_default();
    let account = app.ledger.load(account_id).await.map_err(ApiError::internal)?;
    let asked = account.code_asked(flow_id);
    let matches = match asked {
        // The OTP device's password, each time step once.
        Some(c) if c.factor == CodeFactor::Totp => {
            code_id = c.code_id.clone();
            crate::otp::check_and_take(&app.db.any, account_id, typed, app.clock.now()).await?
        }
        _ => match typed.digits(6) {
            Some(digits) => digests_equal(&code_hmac(app.secret_key(), &code_id, digits).map_err(ApiError::internal)?, &stored),
            None => false,
        },
    };
    // The bus fills in the accounts sharing the address.
    let email_shared_with = vec![];
    let now = app.clock.now();
    let environment = Some(meta.environment(app));
    let command = AccountCommand::VerifyEmailCode {
        flow_id: flow_id.to_string(),
        code_id,
        matches,
        channel: meta.channel,
        email_shared_with,
        environment,
        at: now,
    };
    execute(app, account_id, command, meta.metadata("customer", now)).await
}

/// Maps a code check to the API's answer; `Ok(())` when the code was right.
pub fn code_outcome(done: &Executed) -> Result<(), ApiError> {
    if done.has(|e| matches!(e, AccountEvent::EmailCodeVerified { .. })) {
        return Ok(());
    }
    let attempts_left = done.events.iter().find_map(|e| match e {
        AccountEvent::EmailCodeRejected { attempts_left, .. } => Some(*attempts_left),
        _ => None,
    });
    let refusal = done.refusal().unwrap_or(Refusal::InvalidCode);
    let error = ApiError::from(refusal);
    Err(match (refusal, attempts_left) {
        (Refusal::InvalidCode, Some(left)) => error.with_attempts_left(left),
        _ => error,
    })
}

/// The password step shared by registration and password login.
pub async fn submit_password(
    app: &AppState,
    account_id: &str,
    flow_id: &str,
    purpose: FlowPurpose,
    pending_start: Option<ledger_domain::account::PendingStart>,
    password: crate::secrets::Secret,
    meta: &RequestMeta,
) -> Result<PasswordAccepted, ApiError> {
    let hash = app.store.password_hash(account_id).await?.ok_or_else(|| ApiError::internal("an account without its secrets row"))?;
    let matches = password_matches(app, password, hash).await?;
    // The bus fills in the accounts sharing the address.
    let shared = vec![];
    let (code, issued) = draw_code(app);
    let now = app.clock.now();
    let command = AccountCommand::SubmitPassword {
        flow_id: flow_id.to_string(),
        purpose,
        channel: meta.channel,
        password_matches: matches,
        email_shared_with: shared,
        code: issued,
        client: Some(meta.ip.clone()).filter(|ip| !ip.is_empty()),
        pending_start,
        at: now,
    };
    let done = execute(app, account_id, command, meta.metadata("customer", now)).await?;
    if done.has(|e| matches!(e, AccountEvent::LoginLocked { .. })) {
        // Whoever has the password wrong five times, a session opened
        // before does not carry on past the lock.
        let cause = ledger_domain::account::SessionEndCause::LoginLocked;
        super::extract::end_sessions(app, account_id, cause, meta.metadata("system", now)).await?;
    }
    if done.has(|e| matches!(e, AccountEvent::SecondFactorRequired { .. })) {
        return Ok(PasswordAccepted::SecondFactor(second_factor_options(app, account_id, flow_id).await?));
    }
    // Seed 004: the customer picks the address first.
    if let Some(addresses) = done.events.iter().find_map(|e| match e {
        AccountEvent::CodeDestinationsOffered { addresses, .. } => Some(addresses),
        _ => None,
    }) {
        let addresses = addresses.iter().map(|a| AddressChoice { slot: a.slot, destination: a.destination.clone() }).collect();
        return Ok(PasswordAccepted::ChooseAddress(ChooseAddress {
            flow_id: Some(flow_id.to_string()),
            next: Next::ChooseAddress,
            addresses,
        }));
    }
    let otp = deliver_code(app, account_id, flow_id, &code, &done).await?;
    Ok(PasswordAccepted::Code(CodeStep { flow_id: flow_id.to_string(), next: Next::Otp, otp }))
}

/// Seed 004 ("指定のメールアドレスを選択し、「送信」"): the code goes to the
/// chosen address; choosing again sends a new code (the resend limits hold).
pub async fn send_code(app: &AppState, account_id: &str, flow_id: &str, slot: u8, meta: &RequestMeta) -> Result<CodeStep, ApiError> {
    let (code, issued) = draw_code(app);
    let now = app.clock.now();
    let command = AccountCommand::SendCode { flow_id: flow_id.to_string(), slot, code: issued, channel: meta.channel, at: now };
    let done = execute(app, account_id, command, meta.metadata("customer", now)).await?;
    let otp = deliver_code(app, account_id, flow_id, &code, &done).await?;
    Ok(CodeStep { flow_id: flow_id.to_string(), next: Next::Otp, otp })
}

/// The other accounts that hold this account's registered address (seed
/// 000, in bold: each account needs its own), from the command-side index.
/// Commands get it from the bus; this is for checks before a command.
pub async fn email_shared_with(app: &AppState, account: &Account, account_id: &str) -> Result<Vec<String>, ApiError> {
    app.ledger.accounts_sharing_addresses(account, account_id).await.map_err(ApiError::internal)
}

/// Whether a first passkey could be registered now, and if not why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationPossibility {
    pub possible: bool,
    /// The refusal's error code when it is not possible.
    pub reason: Option<&'static str>,
    /// The same, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ledger_projections::read_models::Summary>)]
    pub reason_words: Option<ledger_domain::account::Line>,
    /// How a first passkey is confirmed from a session here
    /// (`trading_password` or `code`); only while the account has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_up: Option<&'static str>,
}

/// Whether a first registration could start now, and if not why: the
/// domain's own rule (every address, the opening instant, the deployment's
/// code destination), for the status views.
pub async fn registration_possibility(app: &AppState, account_id: &str) -> Result<RegistrationPossibility, ApiError> {
    let account = app.ledger.load(account_id).await.map_err(ApiError::internal)?;
    let shared = email_shared_with(app, &account, account_id).await?;
    let refusal = account.first_passkey_refusal(&shared, app.clock.now(), app.ledger.policy());
    let reason_words = refusal.map(|r| {
        let (en, ja) = r.words();
        ledger_domain::account::Line { en: en.into(), ja: ja.into() }
    });
    Ok(RegistrationPossibility { possible: refusal.is_none(), reason: refusal.map(Refusal::code), reason_words, step_up: None })
}

/// A new code (seed 003): no sooner than a minute after the last.
pub async fn resend_code(app: &AppState, account_id: &str, flow_id: &str, meta: &RequestMeta) -> Result<CodeResent, ApiError> {
    // The bus fills in the accounts sharing the address.
    let email_shared_with = vec![];
    let (code, issued) = draw_code(app);
    let now = app.clock.now();
    let command =
        AccountCommand::ResendEmailCode { flow_id: flow_id.to_string(), code: issued, channel: meta.channel, email_shared_with, at: now };
    let done = execute(app, account_id, command, meta.metadata("customer", now)).await?;
    let otp = deliver_code(app, account_id, flow_id, &code, &done).await?;
    Ok(CodeResent { otp })
}

/// Optional: the passkey's name (else the device's) and, from a session
/// with no passkey, the trading password that confirms a first one.
#[derive(Deserialize, Default, ToSchema)]
pub struct OptionsBody {
    pub passkey_name: Option<String>,
    /// From a signed-in session with no passkey, where the deployment
    /// confirms with the trading password (seed 000's status screen).
    #[schema(value_type = Option<String>, format = Password)]
    pub transaction_password: Option<crate::secrets::Secret>,
}

/// The browser ended the passkey creation without one.
#[derive(Deserialize, ToSchema)]
pub struct AbandonedBody {
    /// The DOMException's name (`NotAllowedError`, `AbortError`, ...).
    reason: String,
}

impl AbandonedBody {
    /// The reason as the browser named it, one of
    /// [`ledger_domain::account::CEREMONY_ERRORS`] (nothing free-form reaches the history).
    pub fn reason(&self) -> Result<String, ApiError> {
        ledger_domain::account::CEREMONY_ERRORS.iter().find(|e| **e == self.reason.trim()).map(|e| e.to_string()).ok_or_else(|| {
            ApiError::bad_request("reason must be the browser's error name (NotAllowedError, AbortError, InvalidStateError, ...).")
        })
    }
}

/// Keeps a ceremony's state for five minutes, replacing an earlier one.
pub async fn save_ceremony(
    app: &AppState,
    ceremony_id: &str,
    kind: &str,
    flow_id: Option<&str>,
    state: &str,
    passkey_name: Option<&str>,
) -> Result<(), ApiError> {
    let expires_at = app.clock.now() + Duration::minutes(5);
    Ok(app.store.save_ceremony(ceremony_id, kind, flow_id, state, passkey_name, expires_at).await?)
}

/// Takes a ceremony's state out of the store (single use): its state and
/// the passkey name asked for; None when there is none or it expired.
pub async fn take_ceremony(app: &AppState, ceremony_id: &str, kind: &str) -> Result<Option<(String, Option<String>)>, ApiError> {
    let taken = app.store.take_ceremony(ceremony_id, kind, app.clock.now()).await?;
    Ok(taken.map(|c| (c.state, c.passkey_name)))
}

/// Why a browser's new credential was not taken.
pub struct NotVerified {
    pub refusal: Refusal,
    /// For the refusal event; never shown to the customer.
    pub detail: String,
}

impl From<String> for NotVerified {
    fn from(detail: String) -> NotVerified {
        NotVerified { refusal: Refusal::InvalidCredential, detail }
    }
}

impl From<NotVerified> for ApiError {
    fn from(failed: NotVerified) -> ApiError {
        match failed.refusal {
            Refusal::InvalidCredential => ErrorCode::InvalidNewCredential.into(),
            other => other.into(),
        }
    }
}

/// The passkey a command bound, as the status screen will show it: built
/// from the event, so the response waits for no projector.
pub fn bound_passkey_view(done: &Executed, at: DateTime<Utc>, meta: &RequestMeta) -> Option<PasskeyView> {
    done.events.iter().find_map(|e| PasskeyView::bound_by(e, at, meta.channel.as_str()))
}

/// Verifies a browser's registration response against the ceremony state
/// and reads what the authenticator signed.
pub async fn verify_new_passkey(
    app: &AppState,
    account_id: &str,
    state: &str,
    credential: &Value,
    name: PasskeyName,
    meta: &RequestMeta,
) -> Result<NewPasskey, NotVerified> {
    let state: PasskeyRegistration = serde_json::from_str(state).map_err(|e| format!("ceremony state: {e}"))?;
    let reg =
        serde_json::from_value::<RegisterPublicKeyCredential>(credential.clone()).map_err(|e| format!("malformed credential: {e}"))?;
    let passkey = match app.webauthn.finish_passkey_registration(&reg, &state) {
        Ok(passkey) => passkey,
        // webauthn-rs refuses a credential the options excluded (one of the
        // account's own) with this generic error; only then, and only for a
        // credential of this very account, is it "already registered".
        Err(e @ webauthn_rs::prelude::WebauthnError::CredentialAlteredAlgFromRequest) => {
            let id = CredentialId::parse(&base64_url(reg.raw_id.as_ref())).map_err(|e| NotVerified::from(e.to_string()))?;
            let claim =
                ledger_projections::claims::credential_claim(&app.db.any, &id).await.map_err(|e| NotVerified::from(e.to_string()))?;
            let own = claim.is_some_and(|c| c.account_id == *account_id);
            let refusal = if own { Refusal::CredentialAlreadyRegistered } else { Refusal::InvalidCredential };
            return Err(NotVerified { refusal, detail: format!("{e:?}") });
        }
        Err(e) => return Err(NotVerified::from(format!("{e:?}"))),
    };
    let facts = crate::webauthn::registration_facts(credential).ok_or_else(|| "unreadable authenticator data".to_string())?;
    let transports = crate::webauthn::transports(credential);
    let attachment = crate::webauthn::reported_attachment(credential);
    let mut environment = meta.environment(app);
    // Seed 002: "セキュリティキーの利用は推奨環境外": a roaming key (USB, NFC,
    // BLE) is flagged like an operating system outside the list; never refused.
    let roaming = attachment.as_deref() == Some("cross-platform") && !transports.iter().any(|t| t == "internal" || t == "hybrid");
    if roaming {
        environment.recommended = Some(false);
    }
    Ok(NewPasskey {
        passkey_id: uuid::Uuid::new_v4().to_string(),
        credential_id: CredentialId::parse(&base64_url(passkey.cred_id().as_ref()))
            .map_err(|e| NotVerified::from(e.to_string()))?
            .to_string(),
        name,
        provider: app.providers.get(&facts.aaguid).cloned(),
        aaguid: facts.aaguid,
        backup_eligible: facts.backup_eligible,
        backup_state: facts.backup_state,
        transports,
        authenticator_attachment: attachment,
        user_verified: facts.user_verified,
        counter: facts.counter,
        public_key: serde_json::to_value(&passkey).map_err(|e| NotVerified::from(e.to_string()))?,
        environment: Some(environment),
    })
}

/// The passkey name from the request, or from the device (seed 002: filled
/// in from the device, editable now, never later).
pub fn passkey_name(requested: Option<String>, meta: &RequestMeta) -> Result<PasskeyName, ApiError> {
    let requested = requested.filter(|n| !n.trim().is_empty());
    PasskeyName::parse(&requested.unwrap_or_else(|| crate::environment::default_passkey_name(&meta.user_agent, &meta.hints)))
        .map_err(|_| ApiError::from(ErrorCode::InvalidPasskeyName))
}

/// An optional JSON body (`{}`, `null` or nothing at all).
pub fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        Ok(T::default())
    } else {
        serde_json::from_slice(body).map_err(|_| ApiError::bad_request("The request body is not valid JSON of the expected shape."))
    }
}

/// base64url without padding, as WebAuthn JSON uses.
pub fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Second-factor mode (seed 002): after the password, the customer's
/// passkeys, the one used last first with its last-used time, and the
/// request options naming them.
pub async fn second_factor_options(app: &AppState, account_id: &str, flow_id: &str) -> Result<SecondFactorOptions, ApiError> {
    account_view_current(app, account_id).await?;
    let view = ledger_projections::read_models::status_view(&app.db.any, account_id, false).await?.ok_or_else(ApiError::not_found)?;
    let mut listed = view.passkeys;
    listed.sort_by(|a, b| b.last_used_at.cmp(&a.last_used_at).then(b.registered_at.cmp(&a.registered_at)));
    let credentials = ledger_projections::read_models::active_credentials(&app.db.any, account_id).await?;
    let passkeys: Vec<_> = credentials.iter().filter_map(|c| crate::webauthn::passkey_for_verification(&c.public_key)).collect();
    let (options, state) = app.webauthn.start_passkey_authentication(&passkeys).map_err(ApiError::internal)?;
    save_ceremony(app, flow_id, "second_factor", Some(flow_id), &serde_json::to_string(&state).map_err(ApiError::internal)?, None).await?;
    Ok(SecondFactorOptions {
        public_key: public_key_of(&options)?,
        flow_id: flow_id.to_string(),
        next: Next::Passkey,
        passkeys: listed
            .into_iter()
            .map(|p| SecondFactorPasskey { id: p.id, name: p.name, last_used_at: p.last_used_at, registered_at: p.registered_at })
            .collect(),
    })
}
