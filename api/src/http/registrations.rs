//! First passkey registration, step by step as seed 000 p.4-7 shows it:
//! login ID -> login password -> e-mailed code -> "create passkey" -> the
//! device's own verification -> registered and logged in.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ledger_domain::account::FlowPurpose;
use ledger_domain::{AccountCommand, AccountEvent, FlowId, LoginId, PasskeyName, Refusal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::contract::{
    public_key_of, CodeAccepted, CodeBody, CodeResent, CodeStep, CreationOptions, CredentialBody, FlowPath, FlowStep, Next,
    PasskeyNameBody, PasswordAccepted, SendBody, SessionIssued,
};
use super::extract::{execute, start_session, ApiJson, ApiPath, RequestMeta};
use super::steps::{
    account_by_login_id, bound_passkey_view, check_code, code_outcome, create_flow, email_shared_with, load_flow, optional_body,
    passkey_name, resend_code, save_ceremony, send_code, submit_password, take_ceremony, throttled_password_step, unknown_login_id,
    verify_new_passkey, AbandonedBody,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(password))
        .routes(routes!(otp))
        .routes(routes!(resend))
        .routes(routes!(send))
        .routes(routes!(passkey_options))
        .routes(routes!(passkey))
        .routes(routes!(abandoned))
}

#[derive(Deserialize, ToSchema)]
struct StartBody {
    /// The login ID (口座番号), 1 to 64 printable characters.
    login_id: String,
}

/// Step 1 (seed 000 p.4 "口座番号を入力"): the login ID.
#[utoipa::path(post, path = "/api/v1/registrations", tag = "registration", request_body = StartBody,
    responses((status = 201, body = FlowStep), (status = "4XX", body = ErrorBody)))]
async fn start(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<(StatusCode, Json<FlowStep>), ApiError> {
    let login_id = LoginId::parse(&body.login_id)
        .map_err(|_| ApiError::bad_request("login_id must be 1 to 64 letters, digits or ASCII symbols, without spaces."))?;
    let account = account_by_login_id(&app, &login_id).await?;
    let account_id = account.as_ref().map(|(id, _)| id.as_str());
    // The flow is kept here only: it becomes the account's (its
    // RegistrationStarted) when the password step passes, so that anonymous
    // starts write nothing to the account and cannot push out a flow the
    // customer is using. Known and unknown IDs take the same path.
    let flow_id = create_flow(&app, &login_id, account_id, "registration", &meta).await?;
    let now = app.clock.now();
    // Seed 000: registration opens at the launch instant, not before. The
    // same answer for an unknown login ID, which reveals nothing.
    if let Some(opens_at) = app.ledger.policy().registration_opens_at.filter(|_| app.ledger.policy().registration_not_open(now)) {
        return Err(ApiError::registration_not_open(opens_at));
    }
    Ok((StatusCode::CREATED, Json(FlowStep { flow_id: flow_id.to_string(), next: Next::Password })))
}

#[derive(Deserialize, ToSchema)]
struct RegistrationPasswordBody {
    #[schema(value_type = String, format = Password)]
    password: crate::secrets::Secret,
}

/// Step 2 (p.4 "パスワードを入力"): the login password; the checks of
/// "パスキー登録の前に" (p.2); then the code goes to the registered address.
#[utoipa::path(post, path = "/api/v1/registrations/{flow_id}/password", tag = "registration", params(FlowPath),
    request_body = RegistrationPasswordBody, responses((status = 200, body = PasswordAccepted), (status = "4XX", body = ErrorBody)))]
async fn password(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RegistrationPasswordBody>,
) -> Result<Json<PasswordAccepted>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let login_id = flow.login_id.clone().unwrap_or_default();
    let answered = throttled_password_step(&app, &login_id, async {
        let Some(account_id) = flow.account_id else {
            // The refusals a real account's flow meets before its password
            // is checked, in the domain's order: an unknown ID meets them too.
            if app.clock.now() > flow.created_at + app.ledger.policy().flow_lifetime() {
                return Err(Refusal::FlowExpired.into());
            }
            if flow.channel != meta.channel.as_str() {
                return Err(Refusal::WrongChannel.into());
            }
            return Err(unknown_login_id(&app, &login_id, body.password, FlowPurpose::Registration, &meta).await);
        };
        let channel = flow.channel.parse().map_err(ApiError::internal)?;
        let pending = ledger_domain::account::PendingStart { started_at: flow.created_at, channel };
        submit_password(&app, &account_id, &flow.flow_id, FlowPurpose::Registration, Some(pending), body.password, &meta).await
    });
    Ok(Json(answered.await?))
}

/// Seed 004: the code goes to the chosen registered address.
#[utoipa::path(post, path = "/api/v1/registrations/{flow_id}/otp/send", tag = "registration", params(FlowPath),
    request_body = SendBody, responses((status = 200, body = CodeStep), (status = "4XX", body = ErrorBody)))]
async fn send(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Json<CodeStep>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    Ok(Json(send_code(&app, &account_id, &flow_id, body.slot, &meta).await?))
}

/// Step 3 (p.4 "認証コードを入力"): the e-mailed code.
#[utoipa::path(post, path = "/api/v1/registrations/{flow_id}/otp", tag = "registration", params(FlowPath),
    request_body = CodeBody, responses((status = 200, body = CodeAccepted), (status = "4XX", body = ErrorBody)))]
async fn otp(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<CodeAccepted>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    let done = check_code(&app, &account_id, &flow_id, &body.code, &meta).await?;
    code_outcome(&done)?;
    Ok(Json(CodeAccepted { next: Next::Passkey }))
}

/// Seed 003: a new code, no sooner than a minute after the last.
#[utoipa::path(post, path = "/api/v1/registrations/{flow_id}/otp/resend", tag = "registration", params(FlowPath),
    responses((status = 200, body = CodeResent), (status = "4XX", body = ErrorBody)))]
async fn resend(State(app): State<AppState>, ApiPath(flow_id): ApiPath<FlowId>, meta: RequestMeta) -> Result<Json<CodeResent>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    Ok(Json(resend_code(&app, &account_id, &flow_id, &meta).await?))
}

/// Step 4 (p.5 "パスキーを作成"): the creation options for the browser.
#[utoipa::path(post, path = "/api/v1/registrations/{flow_id}/passkey/options", tag = "registration", params(FlowPath),
    request_body(content = Option<PasskeyNameBody>, description = "Optional; an empty body takes the device's name."),
    responses((status = 200, body = CreationOptions), (status = "4XX", body = ErrorBody)))]
async fn passkey_options(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    body: axum::body::Bytes,
) -> Result<Json<CreationOptions>, ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    if let Some(in_app) = crate::environment::in_app_browser(&meta.user_agent) {
        let now = app.clock.now();
        let refused = AccountCommand::RefusePasskeyRegistration {
            flow_id: flow_id.to_string(),
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
            flow_id: flow_id.to_string(),
            reason: refusal,
            detail: "creation options refused".into(),
            at: now,
        };
        execute(&app, &account_id, refused, meta.metadata("customer", now)).await?;
        return Err(refusal.into());
    }
    // The name comes from the device and may be edited now, never later (seed 002).
    let body: PasskeyNameBody = optional_body(&body)?;
    let name = passkey_name(body.passkey_name, &meta)?;
    let user_id = uuid::Uuid::parse_str(&account_id).map_err(ApiError::internal)?;
    let login_id = account.login_id().map(LoginId::as_str).unwrap_or_default().to_string();
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
    Ok(Json(CreationOptions { public_key: public_key_of(&options)?, passkey_name: name.as_str().to_string() }))
}

/// The page reports that the browser ended passkey creation without a
/// passkey (seed 001: "パスキー登録が中断されました"): recorded, so support can
/// see why the customer could not register; the pending request is dropped.
#[utoipa::path(post, path = "/api/v1/registrations/{flow_id}/passkey/abandoned", tag = "registration", params(FlowPath),
    request_body = AbandonedBody, responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn abandoned(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<AbandonedBody>,
) -> Result<StatusCode, ApiError> {
    let reason = body.reason()?;
    let flow = load_flow(&app, &flow_id, "registration").await?;
    // Only a ceremony that was handed out and not finished can be abandoned,
    // once: nobody writes into a history by calling this at will. (A flow
    // for an unknown ID never has one: the same answer.)
    if take_ceremony(&app, &flow_id, "registration").await?.is_none() {
        return Err(ApiError::ceremony_expired());
    }
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    let now = app.clock.now();
    let command = AccountCommand::RecordCeremonyAbandoned { flow_id: Some(flow_id.to_string()), reason, at: now };
    execute(&app, &account_id, command, meta.metadata("customer", now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A first passkey bound: the customer is logged in.
#[derive(Debug, Serialize, ToSchema)]
struct Registered {
    passkey: Option<ledger_projections::read_models::PasskeyView>,
    session: SessionIssued,
    #[schema(value_type = String)]
    account_id: ledger_domain::AccountId,
}

/// Step 5 (p.5 "パスキーを追加"): the browser's new credential; verified,
/// bound, and the customer is logged in.
#[utoipa::path(post, path = "/api/v1/registrations/{flow_id}/passkey", tag = "registration", params(FlowPath),
    request_body = CredentialBody, responses((status = 201, body = Registered), (status = "4XX", body = ErrorBody)))]
async fn passkey(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CredentialBody>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let flow = load_flow(&app, &flow_id, "registration").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    let now = app.clock.now();
    let refuse = |reason: Refusal, detail: String| AccountCommand::RefusePasskeyRegistration {
        flow_id: flow_id.to_string(),
        reason,
        detail,
        at: now,
    };
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
        flow_id: flow_id.to_string(),
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
    // The session goes with the passkey just registered: deleting it ends
    // the session, and the activity shows the registration as this session's.
    let registered = done.events.iter().enumerate().find_map(|(i, e)| match e {
        AccountEvent::PasskeyRegistered { passkey, .. } => Some((done.first_sequence + i as i64, passkey.passkey_id.as_str())),
        _ => None,
    });
    let session = start_session(&app, &meta, &account_id, "passkey_registration", registered.map(|r| r.0), registered.map(|r| r.1)).await?;
    crate::notify::after(&app, &account_id, &done).await;
    let passkey = bound_passkey_view(&done, now, &meta);
    Ok((StatusCode::CREATED, Json(Registered { passkey, session, account_id })))
}
