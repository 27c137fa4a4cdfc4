//! The customer's own passkeys: the status inquiry (seed 000 p.16-17), a
//! local passkey on the PC after a cross-device sign-in (p.12) or "continue
//! without" (p.11), and deletion with the trading password (p.16-17).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use ledger_domain::{AccountCommand, AccountEvent, LoginId, Refusal, SessionStepUp};
use ledger_projections::read_models::{status_view, StatusView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::contract::{
    public_key_of, AddressChoice, ChooseAddress, CodeAccepted, CodeStep, CreationOptions, CredentialBody, Deleted, Next, PasskeyBound,
};
use super::extract::{account_view_current, execute, ApiJson, Customer, RequestMeta};
use super::steps::{
    bound_passkey_view, optional_body, passkey_name, save_ceremony, take_ceremony, verify_new_passkey, AbandonedBody, OptionsBody,
    RegistrationPossibility,
};
use crate::error::{ApiError, ErrorBody};
use crate::secrets::Secret;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_passkeys, add_passkey, delete_all))
        .routes(routes!(add_options))
        .routes(routes!(decline_local))
        .routes(routes!(abandoned))
        .routes(routes!(step_up_code))
        .routes(routes!(verify_step_up_code))
        .routes(routes!(delete_one))
}

/// The status inquiry, and whether a first passkey can be registered.
#[derive(Debug, Serialize, ToSchema)]
struct MyPasskeys {
    #[serde(flatten)]
    view: StatusView,
    registration: RegistrationPossibility,
}

/// Each registered passkey with its browser/OS name and registration time;
/// "no passkey registered" when there is none.
/// With no passkey, `registration` tells the page how a first one is
/// confirmed here (seed 000: "以下よりパスキーの登録手続きを行ってください").
#[utoipa::path(get, path = "/api/v1/me/passkeys", tag = "me", security(("customer" = [])),
    responses((status = 200, body = MyPasskeys), (status = "4XX", body = ErrorBody)))]
async fn my_passkeys(State(app): State<AppState>, customer: Customer) -> Result<Json<MyPasskeys>, ApiError> {
    account_view_current(&app, &customer.account_id).await?;
    let view: StatusView = status_view(&app.db.any, &customer.account_id, false).await?.ok_or_else(ApiError::not_found)?;
    let none_active = view.passkeys.iter().all(|p| p.revoked_at.is_some());
    let mut registration = super::steps::registration_possibility(&app, &customer.account_id).await?;
    if none_active {
        registration.step_up = Some(app.ledger.policy().session_step_up.as_str());
    }
    Ok(Json(MyPasskeys { view, registration }))
}

/// Creation options for one more passkey on this device, excluding the
/// credentials the account already has (so the browser does not create a
/// second one on an authenticator that holds one).
#[utoipa::path(post, path = "/api/v1/me/passkeys/options", tag = "me", security(("customer" = [])),
    request_body(content = Option<OptionsBody>, description = "Optional; an empty body takes the device's name."),
    responses((status = 200, body = CreationOptions), (status = "4XX", body = ErrorBody)))]
async fn add_options(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    body: axum::body::Bytes,
) -> Result<Json<CreationOptions>, ApiError> {
    let body: OptionsBody = optional_body(&body)?;
    let name = passkey_name(body.passkey_name, &meta)?;
    // The bus fills in the accounts sharing the address.
    let email_shared_with = vec![];
    let now = app.clock.now();
    if crate::environment::in_app_browser(&meta.user_agent).is_some() {
        let refused = AccountCommand::RefusePasskeyAddition { reason: Refusal::UnsupportedBrowser, at: now };
        execute(&app, &customer.account_id, refused, meta.metadata("customer", now)).await?;
        return Err(Refusal::UnsupportedBrowser.into());
    }
    if let Some(trading_password) = body.transaction_password {
        confirm_with_trading_password(&app, &customer, &meta, trading_password).await?;
    }
    let check = AccountCommand::CheckPasskeyAddition {
        logged_in_at: customer.logged_in_at,
        session: customer.session_ref(),
        email_shared_with,
        at: now,
    };
    let done = execute(&app, &customer.account_id, check, meta.metadata("customer", now)).await?;
    match (done.refusal(), app.ledger.policy().registration_opens_at) {
        (Some(Refusal::RegistrationNotOpen), Some(opens_at)) => return Err(ApiError::registration_not_open(opens_at)),
        (Some(refusal), _) => return Err(refusal.into()),
        (None, _) => {}
    }
    let account = app.ledger.load(&customer.account_id).await.map_err(ApiError::internal)?;
    account_view_current(&app, &customer.account_id).await?;
    let existing = ledger_projections::read_models::active_credentials(&app.db.any, &customer.account_id).await?;
    let exclude: Vec<_> =
        existing.iter().filter_map(|c| crate::webauthn::passkey_for_verification(&c.public_key)).map(|p| p.cred_id().clone()).collect();
    let user_id = uuid::Uuid::parse_str(&customer.account_id).map_err(ApiError::internal)?;
    let login_id = account.login_id().map(LoginId::as_str).unwrap_or_default().to_string();
    let (options, state) =
        app.webauthn.start_passkey_registration(user_id, &login_id, &login_id, Some(exclude)).map_err(ApiError::internal)?;
    let mut options = serde_json::to_value(options).map_err(ApiError::internal)?;
    crate::webauthn::require_discoverable(&mut options);
    let ceremony_id = format!("add:{}", customer.token_hash);
    save_ceremony(
        &app,
        &ceremony_id,
        "add_passkey",
        None,
        &serde_json::to_string(&state).map_err(ApiError::internal)?,
        Some(name.as_str()),
    )
    .await?;
    Ok(Json(CreationOptions { public_key: public_key_of(&options)?, passkey_name: name.as_str().to_string() }))
}

/// The browser's new credential: verified and added, linked to the
/// cross-device sign-in of this session when there was one.
#[utoipa::path(post, path = "/api/v1/me/passkeys", tag = "me", security(("customer" = [])), request_body = CredentialBody,
    responses((status = 201, body = PasskeyBound), (status = "4XX", body = ErrorBody)))]
async fn add_passkey(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CredentialBody>,
) -> Result<(StatusCode, Json<PasskeyBound>), ApiError> {
    let Some((state, name)) = take_ceremony(&app, &format!("add:{}", customer.token_hash), "add_passkey").await? else {
        return Err(ApiError::ceremony_expired());
    };
    let name = ledger_domain::PasskeyName::parse(name.as_deref().unwrap_or("Passkey")).map_err(ApiError::internal)?;
    let now = app.clock.now();
    let passkey = match verify_new_passkey(&app, &customer.account_id, &state, &body.credential, name, &meta).await {
        Ok(passkey) => passkey,
        Err(failed) => {
            tracing::info!(detail = failed.detail, "a new passkey was not taken");
            let refused = AccountCommand::RefusePasskeyAddition { reason: failed.refusal, at: now };
            execute(&app, &customer.account_id, refused, meta.metadata("customer", now)).await?;
            return Err(failed.into());
        }
    };
    // The bus fills in the accounts sharing the address.
    let email_shared_with = vec![];
    let command = AccountCommand::AddPasskey {
        passkey,
        logged_in_at: customer.logged_in_at,
        session_method: customer.method.clone(),
        session: customer.session_ref(),
        cross_device_sign_in: customer.cross_device_sign_in.clone(),
        email_shared_with,
        // The bus asks the command-side index.
        credential_taken: false,
        at: now,
    };
    let done = execute(&app, &customer.account_id, command, meta.metadata("customer", now)).await?;
    // One more passkey, or the account's first (a registration).
    if !done.has(|e| matches!(e, AccountEvent::LocalPasskeyAdded { .. } | AccountEvent::PasskeyRegistered { .. })) {
        return Err(done.refusal().unwrap_or(Refusal::InvalidCredential).into());
    }
    crate::notify::after(&app, &customer.account_id, &done).await;
    let passkey = bound_passkey_view(&done, now, &meta);
    Ok((StatusCode::CREATED, Json(PasskeyBound { passkey })))
}

/// Seed 000's status screen with no passkey: the trading password confirms
/// the registration of a first passkey from the session.
async fn confirm_with_trading_password(app: &AppState, customer: &Customer, meta: &RequestMeta, typed: Secret) -> Result<(), ApiError> {
    if app.ledger.policy().session_step_up != SessionStepUp::TradingPassword {
        return Ok(());
    }
    // Only a first passkey needs it.
    if app.ledger.load(&customer.account_id).await.map_err(ApiError::internal)?.has_active_passkey() {
        return Ok(());
    }
    let matches = trading_password_matches(app, &customer.account_id, typed).await?;
    let now = app.clock.now();
    let command = AccountCommand::ConfirmWithTradingPassword {
        trading_password_matches: matches,
        session: customer.session_ref(),
        logged_in_at: customer.logged_in_at,
        at: now,
    };
    let done = execute(app, &customer.account_id, command, meta.metadata("customer", now)).await?;
    match done.refusal() {
        Some(refusal) => Err(refusal.into()),
        None => Ok(()),
    }
}

/// Seed 004 (登録情報照会 -> パスワード関連 -> パスキー「登録」): a code to the
/// registered address confirms the registration of a first passkey from the
/// session, where the deployment says so.
#[derive(Deserialize, Default, ToSchema)]
struct StepUpCodeRequest {
    /// The registered address (1 or 2), where the customer chooses.
    #[schema(minimum = 1, maximum = 2)]
    slot: Option<u8>,
}

/// A code sent, or the addresses to choose from first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum StepUpCodeAnswer {
    Code(CodeStep),
    ChooseAddress(ChooseAddress),
}

#[utoipa::path(post, path = "/api/v1/me/passkeys/code", tag = "me", security(("customer" = [])),
    request_body(content = Option<StepUpCodeRequest>, description = "Optional."),
    responses((status = 200, body = StepUpCodeAnswer), (status = "4XX", body = ErrorBody)))]
async fn step_up_code(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    body: axum::body::Bytes,
) -> Result<Json<StepUpCodeAnswer>, ApiError> {
    if app.ledger.policy().session_step_up != SessionStepUp::EmailCode {
        return Err(ApiError::not_found());
    }
    let body: StepUpCodeRequest = optional_body(&body)?;
    // Seed 004: "指定のメールアドレスを選択し、「送信」": the page asks which
    // address first, where the deployment lets the customer choose.
    if body.slot.is_none() && app.ledger.policy().code_destination == ledger_domain::CodeDestination::Choose {
        let account = app.ledger.load(&customer.account_id).await.map_err(ApiError::internal)?;
        let addresses: Vec<AddressChoice> = [1u8, 2]
            .into_iter()
            .filter_map(|slot| account.reachable_address(slot).map(|a| AddressChoice { slot, destination: a.masked() }))
            .collect();
        if addresses.len() > 1 && !account.has_otp_device() {
            return Ok(Json(StepUpCodeAnswer::ChooseAddress(ChooseAddress { flow_id: None, next: Next::ChooseAddress, addresses })));
        }
    }
    let flow_id = ledger_domain::FlowId::generate();
    let (code, issued) = super::steps::draw_code(&app);
    let now = app.clock.now();
    // The bus fills in the accounts sharing the address.
    let command = AccountCommand::RequestStepUpCode {
        flow_id: flow_id.to_string(),
        channel: meta.channel,
        session: customer.session_ref(),
        logged_in_at: customer.logged_in_at,
        slot: body.slot,
        code: issued,
        email_shared_with: vec![],
        at: now,
    };
    let done = execute(&app, &customer.account_id, command, meta.metadata("customer", now)).await?;
    if let (Some(Refusal::RegistrationNotOpen), Some(opens_at)) = (done.refusal(), app.ledger.policy().registration_opens_at) {
        return Err(ApiError::registration_not_open(opens_at));
    }
    let otp = super::steps::deliver_code(&app, &customer.account_id, &flow_id, &code, &done).await?;
    Ok(Json(StepUpCodeAnswer::Code(CodeStep { flow_id: flow_id.to_string(), next: Next::Otp, otp })))
}

#[derive(Deserialize, ToSchema)]
struct StepUpCodeBody {
    flow_id: String,
    #[schema(value_type = String, format = Password)]
    code: crate::secrets::OtpCode,
}

#[utoipa::path(post, path = "/api/v1/me/passkeys/code/verify", tag = "me", security(("customer" = [])), request_body = StepUpCodeBody,
    responses((status = 200, body = CodeAccepted), (status = "4XX", body = ErrorBody)))]
async fn verify_step_up_code(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    ApiJson(body): ApiJson<StepUpCodeBody>,
) -> Result<Json<CodeAccepted>, ApiError> {
    let done = super::steps::check_code(&app, &customer.account_id, &body.flow_id, &body.code, &meta).await?;
    super::steps::code_outcome(&done)?;
    Ok(Json(CodeAccepted { next: Next::Passkey }))
}

/// The browser ended the creation of one more passkey without one.
#[utoipa::path(post, path = "/api/v1/me/passkeys/abandoned", tag = "me", security(("customer" = [])), request_body = AbandonedBody,
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn abandoned(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    ApiJson(body): ApiJson<AbandonedBody>,
) -> Result<StatusCode, ApiError> {
    let reason = body.reason()?;
    if take_ceremony(&app, &format!("add:{}", customer.token_hash), "add_passkey").await?.is_none() {
        return Err(ApiError::ceremony_expired());
    }
    let now = app.clock.now();
    let command = AccountCommand::RecordCeremonyAbandoned { flow_id: None, reason, at: now };
    execute(&app, &customer.account_id, command, meta.metadata("customer", now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Continue without" after a cross-device sign-in.
#[utoipa::path(post, path = "/api/v1/me/passkeys/decline-local", tag = "me", security(("customer" = [])),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn decline_local(State(app): State<AppState>, customer: Customer, meta: RequestMeta) -> Result<StatusCode, ApiError> {
    let now = app.clock.now();
    let command = AccountCommand::DeclineLocalPasskey { cross_device_sign_in: customer.cross_device_sign_in.clone(), at: now };
    execute(&app, &customer.account_id, command, meta.metadata("customer", now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletion is confirmed with the trading password (執行パスワード).
#[derive(Deserialize, ToSchema)]
struct DeleteBody {
    #[schema(value_type = String, format = Password)]
    transaction_password: Secret,
}

/// Deletes every passkey of the account (seed 000 p.16-17).
#[utoipa::path(delete, path = "/api/v1/me/passkeys", tag = "me", security(("customer" = [])), request_body = DeleteBody,
    responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody)))]
async fn delete_all(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    ApiJson(body): ApiJson<DeleteBody>,
) -> Result<Json<Deleted>, ApiError> {
    delete_passkeys(&app, &customer, &meta, None, body.transaction_password).await
}

/// Deletes one passkey.
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{passkey_id}", tag = "me", security(("customer" = [])),
    params(("passkey_id" = String, Path, description = "From the status inquiry.")), request_body = DeleteBody,
    responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody)))]
async fn delete_one(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    Path(passkey_id): Path<String>,
    ApiJson(body): ApiJson<DeleteBody>,
) -> Result<Json<Deleted>, ApiError> {
    delete_passkeys(&app, &customer, &meta, Some(passkey_id), body.transaction_password).await
}

/// Whether `typed` is the account's trading password (checked off the
/// async threads, like every password).
async fn trading_password_matches(app: &AppState, account_id: &str, typed: Secret) -> Result<bool, ApiError> {
    // Nothing typed is a mistake of the form, not a guess: refused before
    // it could count towards the lock.
    if secrecy::ExposeSecret::expose_secret(&typed).trim().is_empty() {
        return Err(ApiError::bad_request("transaction_password is empty."));
    }
    let hash =
        app.store.trading_password_hash(account_id).await?.ok_or_else(|| ApiError::internal("an account without its secrets row"))?;
    super::steps::password_matches(app, typed, hash).await
}

/// Deletion with the trading password ("執行パスワード"). The passkeys stay
/// on the device (seed 003 FAQ); later attempts with them are recognised.
async fn delete_passkeys(
    app: &AppState,
    customer: &Customer,
    meta: &RequestMeta,
    passkey_id: Option<String>,
    trading_password: Secret,
) -> Result<Json<Deleted>, ApiError> {
    let matches = trading_password_matches(app, &customer.account_id, trading_password).await?;
    let now = app.clock.now();
    let command = AccountCommand::DeletePasskeys { passkey_id, trading_password_matches: matches, at: now };
    let done = execute(app, &customer.account_id, command, meta.metadata("customer", now)).await?;
    let deleted = done.passkeys_revoked();
    if deleted == 0 {
        if let Some(refusal) = done.refusal() {
            return Err(refusal.into());
        }
    }
    // Whatever else was signed in with a deleted passkey ends; this session,
    // which confirmed the deletion with the trading password, goes on (the
    // status screen shows what is left, seed 000 p.16-17).
    let revoked: Vec<&str> = done
        .events
        .iter()
        .flat_map(|e| match e {
            AccountEvent::PasskeysRevoked { passkeys, .. } => passkeys.iter().map(|p| p.passkey_id.as_str()).collect(),
            _ => Vec::new(),
        })
        .collect();
    super::extract::end_sessions_opened_with(app, customer, &revoked, meta.metadata("customer", now)).await?;
    crate::notify::after(app, &customer.account_id, &done).await;
    Ok(Json(Deleted { deleted }))
}
