//! First passkey registration, step by step as seed 000 p.4-7 shows it:
//! login ID -> login password -> e-mailed code -> "create passkey" -> the
//! device's own verification -> registered and logged in.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use ledger_domain::account::{CodeFactor, FlowPurpose, IssuedCode, NewPasskey};
use ledger_domain::{Account, AccountCommand, AccountEvent, EmailAddress, LoginId, PasskeyName, Refusal};
use ledger_projections::read_models::PasskeyView;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use webauthn_rs::prelude::{PasskeyRegistration, RegisterPublicKeyCredential};

use super::extract::{execute, start_session, ApiJson, RequestMeta};
use crate::bus::Executed;
use crate::error::{ApiError, ErrorCode};
use crate::secrets::{code_hmac, digests_equal, new_code, verify_password};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/registrations", post(start))
        .route("/api/v1/registrations/{flow_id}/password", post(password))
        .route("/api/v1/registrations/{flow_id}/otp", post(otp))
        .route("/api/v1/registrations/{flow_id}/otp/resend", post(resend))
        .route("/api/v1/registrations/{flow_id}/otp/send", post(send))
        .route("/api/v1/registrations/{flow_id}/passkey/options", post(passkey_options))
        .route("/api/v1/registrations/{flow_id}/passkey", post(passkey))
        .route("/api/v1/registrations/{flow_id}/passkey/abandoned", post(abandoned))
}

/// A registration or password-login flow as the API keeps it.
pub struct FlowRow {
    pub flow_id: String,
    /// None when the login ID was unknown: the flow fails at the password
    /// step like a wrong password, so unknown IDs are not revealed.
    pub account_id: Option<String>,
    pub expires_at: DateTime<Utc>,
}

pub async fn create_flow(
    app: &AppState,
    login_id: &LoginId,
    account_id: Option<&str>,
    purpose: &str,
    meta: &RequestMeta,
) -> Result<String, ApiError> {
    let flow_id = uuid::Uuid::new_v4().to_string();
    let now = app.clock.now();
    sqlx::query(
        "INSERT INTO flows (flow_id, account_id, purpose, channel, created_at, expires_at, login_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&flow_id)
    .bind(account_id.map(str::to_string))
    .bind(purpose)
    .bind(meta.channel.as_str())
    .bind(now.timestamp_millis())
    .bind((now + app.ledger.policy().flow_lifetime()).timestamp_millis())
    .bind(login_id.as_str())
    .execute(&app.db.any)
    .await?;
    Ok(flow_id)
}

/// Records a password step for a login ID no account has, in a stream of
/// its own, after answering it like a wrong password.
pub async fn record_unknown_login_id(app: &AppState, login_id: &str, purpose: FlowPurpose, meta: &RequestMeta) -> Result<(), ApiError> {
    let event = ledger_domain::system::SystemEvent::UnknownLoginIdRejected { login_id: login_id.to_string(), purpose };
    let stream = uuid::Uuid::new_v4().to_string();
    app.system_log.record(&stream, event, meta.metadata("anonymous", app.clock.now())).await.map_err(ApiError::internal)?;
    Ok(())
}

pub async fn load_flow(app: &AppState, flow_id: &str, purpose: &str) -> Result<FlowRow, ApiError> {
    let row = sqlx::query("SELECT flow_id, account_id, expires_at FROM flows WHERE flow_id = $1 AND purpose = $2")
        .bind(flow_id)
        .bind(purpose)
        .fetch_optional(&app.db.any)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(FlowRow {
        flow_id: row.try_get("flow_id")?,
        account_id: row.try_get("account_id")?,
        expires_at: ledger_projections::from_millis(row.try_get("expires_at")?),
    })
}

pub async fn account_by_login_id(app: &AppState, login_id: &LoginId) -> Result<Option<(String, String)>, ApiError> {
    Ok(sqlx::query_as("SELECT account_id, password_hash FROM account_secrets WHERE login_id = $1")
        .bind(login_id.as_str())
        .fetch_optional(&app.db.any)
        .await?)
}

/// Checks a password off the async threads (argon2 is slow on purpose).
pub async fn password_matches(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.map_err(ApiError::internal)
}

/// A fresh code: the secret for the e-mail and what the domain is told.
pub fn draw_code(app: &AppState) -> (crate::secrets::Secret, IssuedCode) {
    let now = app.clock.now();
    let issued = IssuedCode { code_id: uuid::Uuid::new_v4().to_string(), expires_at: now + app.ledger.policy().code_lifetime() };
    (new_code(), issued)
}

/// After the domain issued a code: keep only its keyed hash, mail it.
pub async fn deliver_code(
    app: &AppState,
    account_id: &str,
    flow_id: &str,
    code: &crate::secrets::Secret,
    done: &Executed,
) -> Result<Value, ApiError> {
    // The OTP service answers instead (seed 004): nothing is mailed, the
    // page asks for the device's one-time password.
    if let Some(expires_at) = done.events.iter().find_map(|e| match e {
        AccountEvent::OneTimePasswordRequested { expires_at, .. } => Some(*expires_at),
        _ => None,
    }) {
        return Ok(json!({ "factor": "totp", "expires_at": expires_at }));
    }
    let Some((code_id, destination, issued_at, expires_at, slot)) = done.events.iter().find_map(|e| match e {
        AccountEvent::EmailCodeIssued { code_id, destination, issued_at, expires_at, slot, .. } => {
            Some((code_id.clone(), destination.clone(), *issued_at, *expires_at, *slot))
        }
        _ => None,
    }) else {
        return Err(done.refusal().map(ApiError::from).unwrap_or_else(|| ApiError::internal("no code issued and no refusal")));
    };
    sqlx::query("INSERT INTO otp_codes (code_id, flow_id, code_hmac, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&code_id)
        .bind(flow_id)
        .bind(code_hmac(app.secret_key(), &code_id, code.expose()))
        .bind(issued_at.timestamp_millis())
        .bind(expires_at.timestamp_millis())
        .execute(&app.db.any)
        .await?;
    let to = done.account.reachable_address(slot).map(EmailAddress::as_str).unwrap_or_default().to_string();
    if let Err(e) = app.mailer.send_code(&app.config, &to, code, expires_at).await {
        tracing::error!(error = %e, account_id, "the code e-mail could not be sent");
        // The trail says no code went out; the customer may ask again at once.
        let now = app.clock.now();
        let command = AccountCommand::RecordCodeNotDelivered { flow_id: flow_id.to_string(), code_id: code_id.clone(), at: now };
        if let Err(e) = app.ledger.execute(account_id, command, crate::bus::system_metadata(now)).await {
            tracing::error!(error = %e, account_id, "an undelivered code could not be recorded");
        }
        return Err(ApiError::from(ErrorCode::EmailNotSent));
    }
    Ok(json!({ "destination": destination, "slot": slot, "expires_at": expires_at }))
}

/// Checks a typed code against the flow's current code.
pub async fn check_code(app: &AppState, account_id: &str, flow_id: &str, typed: &str, meta: &RequestMeta) -> Result<Executed, ApiError> {
    let current: Option<(String, String)> =
        sqlx::query_as("SELECT code_id, code_hmac FROM otp_codes WHERE flow_id = $1 ORDER BY issued_at DESC, code_id LIMIT 1")
            .bind(flow_id)
            .fetch_optional(&app.db.any)
            .await?;
    let (mut code_id, stored) = current.unwrap_or_default();
    let account = app.ledger.load(account_id).await.map_err(ApiError::internal)?;
    let asked = account.flows.get(flow_id).and_then(|f| f.code.as_ref());
    let matches = match asked {
        // The OTP device's password, each time step once.
        Some(c) if c.factor == CodeFactor::Totp => {
            code_id = c.code_id.clone();
            crate::otp::check_and_take(&app.db.any, account_id, typed, app.clock.now()).await?
        }
        _ => {
            let well_formed = typed.trim().len() == 6 && typed.trim().chars().all(|c| c.is_ascii_digit());
            well_formed && digests_equal(&code_hmac(app.secret_key(), &code_id, typed), &stored)
        }
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
        (Refusal::InvalidCode, Some(left)) => error.with("attempts_left", left),
        _ => error,
    })
}

#[derive(Deserialize)]
struct StartBody {
    login_id: String,
}

/// Step 1 (seed 000 p.4 "口座番号を入力"): the login ID.
async fn start(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let login_id = LoginId::parse(&body.login_id).map_err(|_| ApiError::bad_request("login_id must be 1 to 64 printable characters."))?;
    let account = account_by_login_id(&app, &login_id).await?;
    let account_id = account.as_ref().map(|(id, _)| id.as_str());
    let flow_id = create_flow(&app, &login_id, account_id, "registration", &meta).await?;
    let now = app.clock.now();
    if let Some(account_id) = account_id {
        let command = AccountCommand::StartRegistration { flow_id: flow_id.clone(), channel: meta.channel, at: now };
        execute(&app, account_id, command, meta.metadata("customer", now)).await?;
    }
    // Seed 000: registration opens at the launch instant, not before. The
    // same answer for an unknown login ID, which reveals nothing.
    if let Some(opens_at) = app.ledger.policy().registration_opens_at.filter(|_| app.ledger.policy().registration_not_open(now)) {
        return Err(ApiError::registration_not_open(opens_at));
    }
    Ok((StatusCode::CREATED, Json(json!({ "flow_id": flow_id, "next": "password" }))))
}

#[derive(Deserialize)]
struct PasswordBody {
    password: crate::secrets::Secret,
}

/// Step 2 (p.4 "パスワードを入力"): the login password; the checks of
/// "パスキー登録の前に" (p.2); then the code goes to the registered address.
async fn password(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<Value>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let Some(account_id) = flow.account_id else {
        password_matches(body.password.expose().to_string(), crate::secrets::dummy_hash().to_string()).await?;
        let typed: Option<(Option<String>,)> =
            sqlx::query_as("SELECT login_id FROM flows WHERE flow_id = $1").bind(&flow_id).fetch_optional(&app.db.any).await?;
        let typed = typed.and_then(|(l,)| l).unwrap_or_default();
        record_unknown_login_id(&app, &typed, FlowPurpose::Registration, &meta).await?;
        return Err(Refusal::InvalidCredentials.into());
    };
    submit_password(&app, &account_id, &flow.flow_id, FlowPurpose::Registration, body.password, &meta).await
}

/// The password step shared by registration and password login.
pub async fn submit_password(
    app: &AppState,
    account_id: &str,
    flow_id: &str,
    purpose: FlowPurpose,
    password: crate::secrets::Secret,
    meta: &RequestMeta,
) -> Result<Json<Value>, ApiError> {
    let hash: (String,) =
        sqlx::query_as("SELECT password_hash FROM account_secrets WHERE account_id = $1").bind(account_id).fetch_one(&app.db.any).await?;
    let matches = password_matches(password.expose().to_string(), hash.0).await?;
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
        at: now,
    };
    let done = execute(app, account_id, command, meta.metadata("customer", now)).await?;
    if done.has(|e| matches!(e, AccountEvent::SecondFactorRequired { .. })) {
        return super::sessions::second_factor_options(app, account_id, flow_id).await;
    }
    // Seed 004: the customer picks the address first.
    if let Some(addresses) = done.events.iter().find_map(|e| match e {
        AccountEvent::CodeDestinationsOffered { addresses, .. } => Some(addresses),
        _ => None,
    }) {
        let addresses: Vec<Value> = addresses.iter().map(|a| json!({ "slot": a.slot, "destination": a.destination })).collect();
        return Ok(Json(json!({ "flow_id": flow_id, "next": "choose_address", "addresses": addresses })));
    }
    let otp = deliver_code(app, account_id, flow_id, &code, &done).await?;
    Ok(Json(json!({ "flow_id": flow_id, "next": "otp", "otp": otp })))
}

#[derive(Deserialize)]
pub struct SendBody {
    slot: u8,
}

impl SendBody {
    pub fn slot(&self) -> u8 {
        self.slot
    }
}

/// Seed 004 ("指定のメールアドレスを選択し、「送信」"): the code goes to the
/// chosen address; choosing again sends a new code (the resend limits hold).
pub async fn send_code(app: &AppState, account_id: &str, flow_id: &str, slot: u8, meta: &RequestMeta) -> Result<Json<Value>, ApiError> {
    let (code, issued) = draw_code(app);
    let now = app.clock.now();
    let command = AccountCommand::SendCode { flow_id: flow_id.to_string(), slot, code: issued, channel: meta.channel, at: now };
    let done = execute(app, account_id, command, meta.metadata("customer", now)).await?;
    let otp = deliver_code(app, account_id, flow_id, &code, &done).await?;
    Ok(Json(json!({ "flow_id": flow_id, "next": "otp", "otp": otp })))
}

async fn send(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Json<Value>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    send_code(&app, &account_id, &flow_id, body.slot(), &meta).await
}

#[derive(Deserialize)]
struct CodeBody {
    code: crate::secrets::Secret,
}

/// The other accounts that hold this account's registered address (seed
/// 000, in bold: each account needs its own), from the command-side index.
/// Commands get it from the bus; this is for checks before a command.
pub async fn email_shared_with(app: &AppState, account: &Account, account_id: &str) -> Result<Vec<String>, ApiError> {
    app.ledger.accounts_sharing_addresses(account, account_id).await.map_err(ApiError::internal)
}

/// Whether a first registration could start now, and if not why: the
/// domain's own rule (every address, the opening instant, the deployment's
/// code destination), for the status views.
pub async fn registration_possibility(app: &AppState, account_id: &str) -> Result<Value, ApiError> {
    let account = app.ledger.load(account_id).await.map_err(ApiError::internal)?;
    let shared = email_shared_with(app, &account, account_id).await?;
    let refusal = account.first_passkey_refusal(&shared, app.clock.now(), app.ledger.policy());
    Ok(json!({ "possible": refusal.is_none(), "reason": refusal.map(Refusal::code) }))
}

/// Step 3 (p.4 "認証コードを入力"): the e-mailed code.
async fn otp(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    let done = check_code(&app, &account_id, &flow_id, body.code.expose(), &meta).await?;
    code_outcome(&done)?;
    Ok(Json(json!({ "next": "passkey" })))
}

/// A new code (seed 003): no sooner than a minute after the last.
pub async fn resend_code(app: &AppState, account_id: &str, flow_id: &str, meta: &RequestMeta) -> Result<Json<Value>, ApiError> {
    // The bus fills in the accounts sharing the address.
    let email_shared_with = vec![];
    let (code, issued) = draw_code(app);
    let now = app.clock.now();
    let command =
        AccountCommand::ResendEmailCode { flow_id: flow_id.to_string(), code: issued, channel: meta.channel, email_shared_with, at: now };
    let done = execute(app, account_id, command, meta.metadata("customer", now)).await?;
    let otp = deliver_code(app, account_id, flow_id, &code, &done).await?;
    Ok(Json(json!({ "otp": otp })))
}

async fn resend(State(app): State<AppState>, Path(flow_id): Path<String>, meta: RequestMeta) -> Result<Json<Value>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    resend_code(&app, &account_id, &flow_id, &meta).await
}

#[derive(Deserialize, Default)]
pub struct OptionsBody {
    pub passkey_name: Option<String>,
    /// From a signed-in session with no passkey, where the deployment
    /// confirms with the trading password (seed 000's status screen).
    pub transaction_password: Option<crate::secrets::Secret>,
}

/// Step 4 (p.5 "パスキーを作成"): the creation options for the browser.
async fn passkey_options(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    if let Some(in_app) = crate::environment::in_app_browser(&meta.user_agent) {
        let now = app.clock.now();
        let refused = AccountCommand::RefusePasskeyRegistration {
            flow_id: flow_id.clone(),
            reason: Refusal::UnsupportedBrowser,
            detail: in_app.into(),
            at: now,
        };
        execute(&app, &account_id, refused, meta.metadata("customer", now)).await?;
        return Err(Refusal::UnsupportedBrowser.into());
    }
    let account = app.ledger.load(&account_id).await.map_err(ApiError::internal)?;
    let shared = email_shared_with(&app, &account, &account_id).await?;
    // No options for a passkey the next step would refuse: the device would
    // keep a credential the ledger never bound.
    let refusal = account
        .passkey_step_refusal(&flow_id, meta.channel, &shared, app.clock.now(), app.ledger.policy())
        .map_err(|_| ApiError::not_found())?;
    if let Some(refusal) = refusal {
        let now = app.clock.now();
        let refused = AccountCommand::RefusePasskeyRegistration {
            flow_id: flow_id.clone(),
            reason: refusal,
            detail: "creation options refused".into(),
            at: now,
        };
        execute(&app, &account_id, refused, meta.metadata("customer", now)).await?;
        return Err(refusal.into());
    }
    // The name comes from the device and may be edited now, never later (seed 002).
    let body: OptionsBody = optional_body(&body)?;
    let name = passkey_name(body.passkey_name, &meta)?;
    let user_id = uuid::Uuid::parse_str(&account_id).map_err(ApiError::internal)?;
    let login_id = account.login_id.as_ref().map(LoginId::as_str).unwrap_or_default().to_string();
    let (options, state) = app.webauthn.start_passkey_registration(user_id, &login_id, &login_id, None).map_err(ApiError::internal)?;
    let mut options = serde_json::to_value(options).map_err(ApiError::internal)?;
    crate::webauthn::require_discoverable(&mut options);
    save_ceremony(
        &app,
        &flow_id,
        "registration",
        Some(&flow_id),
        &serde_json::to_string(&state).map_err(ApiError::internal)?,
        Some(name.as_str()),
    )
    .await?;
    let mut out = options;
    out["passkey_name"] = json!(name.as_str());
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct AbandonedBody {
    reason: String,
}

/// The DOMException names `navigator.credentials.create` rejects with: the
/// only reasons a page may report (nothing free-form reaches the history).
const CEREMONY_ERRORS: [&str; 8] = [
    "NotAllowedError",
    "AbortError",
    "InvalidStateError",
    "SecurityError",
    "NotSupportedError",
    "ConstraintError",
    "TimeoutError",
    "UnknownError",
];

impl AbandonedBody {
    /// The reason as the browser named it, one of [`CEREMONY_ERRORS`].
    pub fn reason(&self) -> Result<String, ApiError> {
        CEREMONY_ERRORS.iter().find(|e| **e == self.reason.trim()).map(|e| e.to_string()).ok_or_else(|| {
            ApiError::bad_request("reason must be the browser's error name (NotAllowedError, AbortError, InvalidStateError, ...).")
        })
    }
}

/// The page reports that the browser ended passkey creation without a
/// passkey (seed 001: "パスキー登録が中断されました"): recorded, so support can
/// see why the customer could not register; the pending request is dropped.
async fn abandoned(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<AbandonedBody>,
) -> Result<StatusCode, ApiError> {
    let reason = body.reason()?;
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    // Only a ceremony that was handed out and not finished can be abandoned,
    // once: nobody writes into a history by calling this at will.
    if take_ceremony(&app, &flow_id, "registration").await?.is_none() {
        return Err(ApiError::ceremony_expired());
    }
    let now = app.clock.now();
    let command = AccountCommand::RecordCeremonyAbandoned { flow_id: Some(flow_id), reason, at: now };
    execute(&app, &account_id, command, meta.metadata("customer", now)).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let expires_at = (app.clock.now() + Duration::minutes(5)).timestamp_millis();
    // One statement: a login's ceremony costs one round trip and one commit.
    sqlx::query(
        "INSERT INTO ceremonies (ceremony_id, kind, flow_id, state, passkey_name, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (ceremony_id) DO UPDATE
            SET kind = excluded.kind, flow_id = excluded.flow_id, state = excluded.state,
                passkey_name = excluded.passkey_name, expires_at = excluded.expires_at",
    )
    .bind(ceremony_id)
    .bind(kind)
    .bind(flow_id.map(str::to_string))
    .bind(state)
    .bind(passkey_name.map(str::to_string))
    .bind(expires_at)
    .execute(&app.db.any)
    .await?;
    Ok(())
}

/// Takes a ceremony's state out of the store: whoever takes it first is the
/// only one who can finish it, so a replayed finish fails.
pub async fn take_ceremony(app: &AppState, ceremony_id: &str, kind: &str) -> Result<Option<(String, Option<String>)>, ApiError> {
    let row: Option<(String, Option<String>, i64)> =
        sqlx::query_as("DELETE FROM ceremonies WHERE ceremony_id = $1 AND kind = $2 RETURNING state, passkey_name, expires_at")
            .bind(ceremony_id)
            .bind(kind)
            .fetch_optional(&app.db.any)
            .await?;
    Ok(row.filter(|(_, _, exp)| *exp > app.clock.now().timestamp_millis()).map(|(s, n, _)| (s, n)))
}

#[derive(Deserialize)]
struct PasskeyBody {
    credential: Value,
}

/// Step 5 (p.5 "パスキーを追加"): the browser's new credential; verified,
/// bound, and the customer is logged in.
async fn passkey(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<PasskeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    let now = app.clock.now();
    let refuse =
        |reason: Refusal, detail: String| AccountCommand::RefusePasskeyRegistration { flow_id: flow_id.clone(), reason, detail, at: now };
    let Some((state, name)) = take_ceremony(&app, &flow_id, "registration").await? else {
        execute(&app, &account_id, refuse(Refusal::FlowExpired, "no pending passkey request".into()), meta.metadata("customer", now))
            .await?;
        return Err(Refusal::FlowExpired.into());
    };
    let name = PasskeyName::parse(name.as_deref().unwrap_or("Passkey")).map_err(ApiError::internal)?;
    let new_passkey = match verify_new_passkey(&app, &account_id, &state, &body.credential, name, &meta).await {
        Ok(v) => v,
        Err(failed) => {
            execute(&app, &account_id, refuse(failed.refusal, failed.detail.clone()), meta.metadata("customer", now)).await?;
            return Err(failed.into());
        }
    };
    // The bus fills in the accounts sharing the address.
    let email_shared_with = vec![];
    let command = AccountCommand::RegisterPasskey {
        flow_id: flow_id.clone(),
        passkey: new_passkey,
        channel: meta.channel,
        email_shared_with,
        // The bus asks the command-side index.
        credential_taken: false,
        at: now,
    };
    let done = execute(&app, &account_id, command, meta.metadata("customer", now)).await?;
    if !done.has(|e| matches!(e, AccountEvent::PasskeyRegistered { .. })) {
        return Err(done.refusal().map(ApiError::from).unwrap_or_else(|| ApiError::internal("passkey neither registered nor refused")));
    }
    let session = start_session(&app, &account_id, "passkey_registration").await?;
    crate::notify::after(&app, &account_id, &done).await;
    let passkey = bound_passkey_view(&done, now, &meta);
    Ok((StatusCode::CREATED, Json(json!({ "passkey": passkey, "session": session, "account_id": account_id }))))
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
            let id = base64_url(reg.raw_id.as_ref());
            let claim =
                ledger_projections::claims::credential_claim(&app.db.any, &id).await.map_err(|e| NotVerified::from(e.to_string()))?;
            let own = claim.is_some_and(|c| c.account_id == account_id);
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
        credential_id: base64_url(passkey.cred_id().as_ref()),
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
    PasskeyName::parse(&requested.unwrap_or_else(|| crate::environment::default_passkey_name(&meta.user_agent))).map_err(|_| {
        ApiError::from(ErrorCode::InvalidPasskeyName)
    })
}

/// An optional JSON body (`{}` or nothing at all).
pub fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
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
