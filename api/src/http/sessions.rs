//! Login: with a passkey and no login ID typed (seed 000, 003 §4-1), or with
//! password + e-mail code where policy still allows it; and logout.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use ledger_domain::account::{FlowPurpose, LoginAuthenticator, PasskeyAssertion};
use ledger_domain::{AccountCommand, AccountEvent, LoginId, LoginMode, Refusal};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use webauthn_rs::prelude::{AuthenticationResult, DiscoverableAuthentication, PasskeyAuthentication, PublicKeyCredential};

use super::extract::{execute, start_session, start_session_after, ApiJson, Customer, RequestMeta};
use super::steps::{
    account_by_login_id, base64_url, check_code, code_outcome, create_flow, load_flow, password_matches, record_unknown_login_id,
    resend_code, save_ceremony, submit_password, take_ceremony,
};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sessions/passkey/options", post(passkey_options))
        .route("/api/v1/sessions/passkey", post(passkey_login))
        .route("/api/v1/sessions/password", post(password_login))
        .route("/api/v1/sessions/password/{flow_id}/otp", post(password_otp))
        .route("/api/v1/sessions/password/{flow_id}/otp/resend", post(password_resend))
        .route("/api/v1/sessions/password/{flow_id}/otp/send", post(password_send))
        .route("/api/v1/sessions/password/{flow_id}/passkey", post(second_factor))
        .route("/api/v1/sessions/current", delete(logout))
}

/// "パスキーでログイン": a challenge for any of the customer's discoverable
/// credentials; the device lists them, no login ID is typed.
async fn passkey_options(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    // Seed 002: the passkey is the second factor, asked for after the
    // password (`POST /sessions/password`), never alone.
    if app.ledger.policy().login_mode == LoginMode::SecondFactor {
        return Err(Refusal::PasswordStepRequired.into());
    }
    let (options, state) = app.webauthn.start_discoverable_authentication().map_err(ApiError::internal)?;
    let mut options = serde_json::to_value(options).map_err(ApiError::internal)?;
    // webauthn-rs marks this as conditional (autofill) UI; the pages use a
    // button, so the browser is asked in the ordinary, modal way.
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    let ceremony_id = uuid::Uuid::new_v4().to_string();
    save_ceremony(&app, &ceremony_id, "login", None, &serde_json::to_string(&state).map_err(ApiError::internal)?, None).await?;
    options["ceremony_id"] = json!(ceremony_id);
    Ok(Json(options))
}

#[derive(Deserialize)]
struct PasskeyLoginBody {
    ceremony_id: String,
    credential: Value,
}

async fn passkey_login(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<PasskeyLoginBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some((state, _)) = take_ceremony(&app, &body.ceremony_id, "login").await? else {
        return Err(ApiError::ceremony_expired());
    };
    let state: DiscoverableAuthentication = serde_json::from_str(&state).map_err(ApiError::internal)?;
    let credential: PublicKeyCredential =
        serde_json::from_value(body.credential.clone()).map_err(|_| ApiError::from(Refusal::InvalidCredential))?;
    let credential_id = base64_url(credential.get_credential_id());
    // The command-side claim, current by construction: no wait for the projector.
    let Some(claim) = ledger_projections::claims::credential_claim(&app.db.any, &credential_id).await? else {
        // Not a credential of any account: recorded in a stream of its own.
        let event = ledger_domain::system::SystemEvent::UnknownCredentialRejected { credential_id };
        let stream = uuid::Uuid::new_v4().to_string();
        app.system_log.record(&stream, event, meta.metadata("anonymous", app.clock.now())).await.map_err(ApiError::internal)?;
        return Err(Refusal::InvalidCredential.into());
    };
    app.ledger.catch_up_cached(&claim.account_id, claim.stream_sequence).await;
    let user_matches = app
        .webauthn
        .identify_discoverable_authentication(&credential)
        .map(|(user, _)| user.to_string() == claim.account_id)
        .unwrap_or(false);
    let verified = match crate::webauthn::passkey_for_verification(&claim.public_key) {
        None => Err("stored credential unreadable".to_string()),
        Some(_) if !user_matches => Err("user handle does not match the credential's account".to_string()),
        Some(passkey) => app.webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey).map_err(|e| format!("{e:?}")),
    };
    finish_login(&app, &meta, &claim.account_id, credential_id, &body.credential, verified, None).await
}

/// Records a verified (or failed) assertion against the account, and on
/// success starts the session and says whether it was a cross-device
/// sign-in.
async fn finish_login(
    app: &AppState,
    meta: &RequestMeta,
    account_id: &str,
    credential_id: String,
    raw_credential: &Value,
    verified: Result<AuthenticationResult, String>,
    second_factor_flow: Option<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let attachment = crate::webauthn::reported_attachment(raw_credential);
    let assertion = verified.map(|r| PasskeyAssertion {
        counter: r.counter(),
        backup_state: r.backup_state(),
        backup_eligible: r.backup_eligible(),
        user_verified: r.user_verified(),
        authenticator_attachment: attachment.clone(),
    });
    let now = app.clock.now();
    let environment = meta.environment(app);
    let sign_in_id = uuid::Uuid::new_v4().to_string();
    let command = AccountCommand::RecordPasskeyLogin {
        credential_id,
        assertion,
        channel: meta.channel,
        environment: Some(environment.clone()),
        sign_in_id: sign_in_id.clone(),
        second_factor_flow,
        at: now,
    };
    let done = execute(app, account_id, command, meta.metadata("customer", now)).await?;
    // The authenticator as the page names it, and the login method (the
    // domain's, as the status view and the adoption report name it).
    let outcome = done.events.iter().find_map(|e| {
        let authenticator = match e {
            AccountEvent::CrossDeviceSignInSucceeded { .. } => "cross_device",
            AccountEvent::PasskeyLoginSucceeded { authenticator: LoginAuthenticator::SecurityKey, .. } => "security_key",
            AccountEvent::PasskeyLoginSucceeded { .. } => "same_device",
            _ => return None,
        };
        Some((authenticator, e.login_method()?.as_str()))
    });
    let Some((authenticator, method)) = outcome else {
        return Err(done.refusal().unwrap_or(Refusal::InvalidCredential).into());
    };
    let cross_device = authenticator == "cross_device";
    let session = start_session_after(app, account_id, method, cross_device.then_some(sign_in_id.as_str())).await?;
    crate::notify::after(app, account_id, &done).await;
    // The browser offers a passkey on this PC (seed 000 p.11) while the
    // account has room for one more.
    let room = done.account.has_room_for_passkey(app.ledger.policy());
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "session": session,
            "account_id": account_id,
            "cross_device": cross_device,
            "offer_local_passkey": cross_device && room,
            "sign_in_id": cross_device.then_some(sign_in_id),
            "authenticator": authenticator,
            "authenticator_attachment_reported": attachment,
            "environment": environment,
        })),
    ))
}

#[derive(Deserialize)]
struct PasswordLoginBody {
    login_id: String,
    password: crate::secrets::Secret,
}

/// Password + e-mail code, only where no passkey exists and the channel's
/// passkey-mandatory instant has not passed. Not phishing-resistant.
async fn password_login(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<PasswordLoginBody>,
) -> Result<Json<Value>, ApiError> {
    let login_id = LoginId::parse(&body.login_id).map_err(|_| ApiError::from(Refusal::InvalidCredentials))?;
    let Some((account_id, _)) = account_by_login_id(&app, &login_id).await? else {
        password_matches(body.password.expose_secret().to_string(), crate::secrets::dummy_hash().to_string()).await?;
        record_unknown_login_id(&app, login_id.as_str(), FlowPurpose::PasswordLogin, &meta).await?;
        return Err(Refusal::InvalidCredentials.into());
    };
    let flow_id = create_flow(&app, &login_id, Some(&account_id), "password_login", &meta).await?;
    let purpose = match app.ledger.policy().login_mode {
        LoginMode::Passwordless => FlowPurpose::PasswordLogin,
        LoginMode::SecondFactor => FlowPurpose::SecondFactorLogin,
    };
    submit_password(&app, &account_id, &flow_id, purpose, body.password, &meta).await
}

#[derive(Deserialize)]
struct SecondFactorBody {
    credential: Value,
}

/// The assertion after the password in second-factor mode.
async fn second_factor(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SecondFactorBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let flow = load_flow(&app, &flow_id, "password_login").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    let state = take_ceremony(&app, &flow_id, "second_factor").await?;
    let credential: PublicKeyCredential =
        serde_json::from_value(body.credential.clone()).map_err(|_| ApiError::from(Refusal::InvalidCredential))?;
    let credential_id = base64_url(credential.get_credential_id());
    let verified = match state {
        None => Err("no pending passkey request for this flow".to_string()),
        Some((state, _)) => {
            let state: PasskeyAuthentication = serde_json::from_str(&state).map_err(ApiError::internal)?;
            app.webauthn.finish_passkey_authentication(&credential, &state).map_err(|e| format!("{e:?}"))
        }
    };
    finish_login(&app, &meta, &account_id, credential_id, &body.credential, verified, Some(flow_id)).await
}

#[derive(Deserialize)]
struct CodeBody {
    code: crate::secrets::Secret,
}

async fn password_otp(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let flow = load_flow(&app, &flow_id, "password_login").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    let done = check_code(&app, &account_id, &flow_id, body.code.expose_secret(), &meta).await?;
    code_outcome(&done)?;
    // What answered the code step names the session's method.
    let by_device = done.has(|e| matches!(e, AccountEvent::EmailCodeVerified { factor: ledger_domain::account::CodeFactor::Totp, .. }));
    let method = if by_device { "password_and_otp_device" } else { "password_and_email_code" };
    let session = start_session(&app, &account_id, method).await?;
    crate::notify::after(&app, &account_id, &done).await;
    Ok((StatusCode::CREATED, Json(json!({ "session": session, "account_id": account_id }))))
}

async fn password_resend(State(app): State<AppState>, Path(flow_id): Path<String>, meta: RequestMeta) -> Result<Json<Value>, ApiError> {
    let flow = load_flow(&app, &flow_id, "password_login").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    resend_code(&app, &account_id, &flow_id, &meta).await
}

async fn password_send(
    State(app): State<AppState>,
    Path(flow_id): Path<String>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<super::steps::SendBody>,
) -> Result<Json<Value>, ApiError> {
    let flow = load_flow(&app, &flow_id, "password_login").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    super::steps::send_code(&app, &account_id, &flow_id, body.slot(), &meta).await
}

async fn logout(State(app): State<AppState>, customer: Customer) -> Result<StatusCode, ApiError> {
    app.store.end_session(&customer.token_hash, app.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
