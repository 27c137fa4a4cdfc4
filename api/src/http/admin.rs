//! Integration endpoints for the core brokerage system (role admin): the
//! ledger does not own the customer master, it is told of changes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use ledger_domain::account::{HolderKind, SessionEndCause};
use ledger_domain::{AccountCommand, AccountId, EmailAddress, LoginId};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::contract::AccountPath;
use super::extract::{end_sessions, execute, ApiJson, ApiPath, RequestMeta, Role, Staff};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::secrets::Secret;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_account))
        .routes(routes!(change_email))
        .routes(routes!(change_password))
        .routes(routes!(email_status))
        .routes(routes!(change_trading_password))
        .routes(routes!(register_otp_device, remove_otp_device))
}

pub const CORE_SYSTEM: &str = "core_system";

/// What the core system records through a staff member's admin token:
/// actor `core_system`, and the member named.
fn core_system(meta: &RequestMeta, staff: Option<&Staff>, at: DateTime<Utc>) -> ledger_domain::EventMetadata {
    let metadata = meta.metadata(CORE_SYSTEM, at);
    match staff {
        Some(staff) => metadata.through_staff(&staff.staff_id),
        None => metadata,
    }
}

fn invalid_email() -> ApiError {
    ApiError::from(ErrorCode::InvalidEmail)
}

fn weak_password() -> ApiError {
    ApiError::from(ErrorCode::InvalidPassword)
}

async fn hash(app: &AppState, password: &Secret) -> Result<String, ApiError> {
    if !(8..=128).contains(&password.expose_secret().chars().count()) {
        return Err(weak_password());
    }
    match app.password_work.hash(password.clone()).await {
        Ok(Some(hashed)) => hashed.map_err(ApiError::internal),
        Ok(None) => Err(ApiError::internal("hashing failed")),
        Err(crate::secrets::Busy) => Err(ErrorCode::Busy.into()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct Opened {
    #[schema(value_type = String)]
    account_id: AccountId,
}

/// The core system opened an account.
#[utoipa::path(post, path = "/api/v1/admin/accounts", tag = "integration", security(("staff" = [])), request_body = OpenBody,
    responses((status = 201, body = Opened), (status = "4XX", body = ErrorBody)))]
async fn open_account(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiJson(body): ApiJson<OpenBody>,
) -> Result<(StatusCode, Json<Opened>), ApiError> {
    staff.require(&[Role::Admin]).await?;
    let account_id = open(&app, body, &meta, Some(&staff)).await?;
    Ok((StatusCode::CREATED, Json(Opened { account_id })))
}

/// An account as the core system opens it.
#[derive(Deserialize, ToSchema)]
pub struct OpenBody {
    pub login_id: String,
    #[schema(value_type = super::contract::HolderKindName)]
    pub holder_kind: HolderKind,
    pub email: Option<String>,
    /// The login password, 8 to 128 characters.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
    pub password_temporary: bool,
    /// The trading password (執行パスワード), 8 to 128 characters.
    #[schema(value_type = String, format = Password)]
    pub transaction_password: Secret,
}

/// Opens an account: its password hashes in the secrets table, its opening
/// in the log. Used by the integration API and `ledger demo-seed`.
pub async fn open(app: &AppState, body: OpenBody, meta: &RequestMeta, staff: Option<&Staff>) -> Result<AccountId, ApiError> {
    let login_id = LoginId::parse(&body.login_id).map_err(|_| ApiError::bad_request("login_id must be 1 to 64 printable characters."))?;
    let email = body.email.as_deref().filter(|e| !e.trim().is_empty()).map(EmailAddress::parse).transpose().map_err(|_| invalid_email())?;
    let password_hash = hash(app, &body.password).await?;
    let trading_hash = hash(app, &body.transaction_password).await?;
    let account_id = AccountId::generate();
    if let crate::storage::Kept::LoginIdTaken =
        app.store.keep_new_account(&account_id, login_id.as_str(), &password_hash, &trading_hash).await?
    {
        return Err(ApiError::from(ErrorCode::LoginIdTaken));
    }
    let now = app.clock.now();
    let command = AccountCommand::OpenAccount {
        login_id,
        holder_kind: body.holder_kind,
        email,
        password_temporary: body.password_temporary,
        at: now,
    };
    execute(app, &account_id, command, core_system(meta, staff, now)).await?;
    Ok(account_id)
}

#[derive(Deserialize, ToSchema)]
struct EmailBody {
    email: String,
    /// 1 (the main address, the default) or 2 (seed 003, 004).
    #[schema(minimum = 1, maximum = 2)]
    slot: Option<u8>,
}

fn slot_of(slot: Option<u8>) -> Result<u8, ApiError> {
    match slot.unwrap_or(1) {
        s @ (1 | 2) => Ok(s),
        _ => Err(ApiError::from(ErrorCode::InvalidSlot)),
    }
}

/// Records a change the core system reports (reads of the account's views
/// wait for it themselves).
async fn record_change(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    account_id: &str,
    command: impl FnOnce(DateTime<Utc>) -> AccountCommand,
) -> Result<crate::bus::Executed, ApiError> {
    let now = app.clock.now();
    execute(app, account_id, command(now), core_system(meta, Some(staff), now)).await
}

/// A registered address changed in the customer master.
#[utoipa::path(put, path = "/api/v1/admin/accounts/{account_id}/email", tag = "integration", security(("staff" = [])), params(AccountPath), request_body = EmailBody,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn change_email(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<StatusCode, ApiError> {
    staff.require(&[Role::Admin]).await?;
    let email = EmailAddress::parse(&body.email).map_err(|_| invalid_email())?;
    let slot = slot_of(body.slot)?;
    let done = record_change(&app, &staff, &meta, &account_id, |at| AccountCommand::ChangeEmail { email, slot, at }).await?;
    if done.events.is_empty() {
        // The address it already had: nothing changed.
        return Ok(StatusCode::NO_CONTENT);
    }
    // The replaced address is told.
    crate::notify::after(&app, &account_id, &done).await;
    end_sessions(&app, &account_id, SessionEndCause::EmailChanged, core_system(&meta, Some(&staff), app.clock.now())).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct NewPasswordBody {
    /// 8 to 128 characters.
    #[schema(value_type = String, format = Password)]
    password: Secret,
    temporary: bool,
}

/// A new login password (a reissue, or the customer's own change).
#[utoipa::path(put, path = "/api/v1/admin/accounts/{account_id}/password", tag = "integration", security(("staff" = [])), params(AccountPath), request_body = NewPasswordBody,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn change_password(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(body): ApiJson<NewPasswordBody>,
) -> Result<StatusCode, ApiError> {
    staff.require(&[Role::Admin]).await?;
    let hashed = hash(&app, &body.password).await?;
    // The new hash first: from the event on, the old password must not
    // verify, nor open a flow the event's closing would miss.
    if !app.store.set_password_hash(&account_id, &hashed).await? {
        return Err(ApiError::not_found());
    }
    record_change(&app, &staff, &meta, &account_id, |at| AccountCommand::ChangeLoginPassword { temporary: body.temporary, at }).await?;
    end_sessions(&app, &account_id, SessionEndCause::LoginPasswordChanged, core_system(&meta, Some(&staff), app.clock.now())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The core system reissued the trading password ("執行パスワード", seed 003
/// FAQ): passkeys stay as they are ("引き続きパスキー認証にてログインが可能"),
/// and passkey deletion, if locked by wrong trading passwords, is unlocked.
#[utoipa::path(put, path = "/api/v1/admin/accounts/{account_id}/trading-password", tag = "integration", security(("staff" = [])), params(AccountPath), request_body = NewPasswordBody,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn change_trading_password(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(body): ApiJson<NewPasswordBody>,
) -> Result<StatusCode, ApiError> {
    staff.require(&[Role::Admin]).await?;
    let hashed = hash(&app, &body.password).await?;
    if !app.store.set_trading_password_hash(&account_id, &hashed).await? {
        return Err(ApiError::not_found());
    }
    record_change(&app, &staff, &meta, &account_id, |at| AccountCommand::ChangeTradingPassword { temporary: body.temporary, at }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct OtpDeviceBody {
    /// Base32, as OTP provisioning uses it. Kept out of events and logs.
    #[schema(value_type = String, format = Password)]
    secret: Secret,
    /// `SHA1` (the default) or `SHA256`.
    algorithm: Option<String>,
    /// 6 (the default) or 8.
    #[schema(minimum = 6, maximum = 8)]
    digits: Option<u32>,
    /// Seconds; 30 by default.
    period: Option<u64>,
}

/// The core system registers the customer's OTP device (seed 004's OTP
/// service, RFC 6238): from now on code steps ask for its one-time password.
#[utoipa::path(put, path = "/api/v1/admin/accounts/{account_id}/otp-device", tag = "integration", security(("staff" = [])), params(AccountPath), request_body = OtpDeviceBody,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn register_otp_device(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(body): ApiJson<OtpDeviceBody>,
) -> Result<StatusCode, ApiError> {
    staff.require(&[Role::Admin]).await?;
    let secret = body.secret.expose_secret().trim().replace(' ', "").to_uppercase();
    let device = crate::otp::OtpDevice::new(&secret, body.algorithm.as_deref(), body.digits, body.period)
        .map_err(|what| ApiError::saying(ErrorCode::InvalidOtpDevice, what))?;
    app.ledger.load(&account_id).await.map_err(ApiError::internal)?.is_open().then_some(()).ok_or_else(ApiError::not_found)?;
    crate::otp::replace_device(&app.db.any, &account_id, &secret, &device).await?;
    let (algorithm, digits, period) = (device.algorithm.clone(), device.digits, device.period);
    record_change(&app, &staff, &meta, &account_id, |at| AccountCommand::RegisterOtpDevice { algorithm, digits, period, at }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The OTP device is gone: code steps use e-mail again.
#[utoipa::path(delete, path = "/api/v1/admin/accounts/{account_id}/otp-device", tag = "integration", security(("staff" = [])), params(AccountPath),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn remove_otp_device(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
) -> Result<StatusCode, ApiError> {
    staff.require(&[Role::Admin]).await?;
    if !crate::otp::remove_device(&app.db.any, &account_id).await? {
        return Err(ApiError::not_found());
    }
    record_change(&app, &staff, &meta, &account_id, |at| AccountCommand::RemoveOtpDevice { at }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct ReachabilityBody {
    reachable: bool,
    /// 1 (the default) or 2.
    #[schema(minimum = 1, maximum = 2)]
    slot: Option<u8>,
}

/// Whether mail to a registered address arrives (bounces seen by the core system).
#[utoipa::path(put, path = "/api/v1/admin/accounts/{account_id}/email-status", tag = "integration", security(("staff" = [])), params(AccountPath), request_body = ReachabilityBody,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn email_status(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(body): ApiJson<ReachabilityBody>,
) -> Result<StatusCode, ApiError> {
    staff.require(&[Role::Admin]).await?;
    let slot = slot_of(body.slot)?;
    record_change(&app, &staff, &meta, &account_id, |at| AccountCommand::SetEmailReachability { reachable: body.reachable, slot, at })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
