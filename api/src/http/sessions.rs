//! Login: with a passkey and no login ID typed (seed 000, 003 §4-1), or with
//! password + e-mail code where policy still allows it; and logout.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use ledger_domain::account::{FlowPurpose, PasskeyAssertion};
use ledger_domain::{AccountCommand, AccountEvent, LoginId, Refusal};
use serde::Deserialize;
use serde_json::{json, Value};
use webauthn_rs::prelude::{DiscoverableAuthentication, PublicKeyCredential};

use super::extract::{execute, read_your_writes, start_session, ApiJson, Customer, RequestMeta};
use super::registrations::{
    account_by_login_id, base64_url, check_code, code_outcome, create_flow, load_flow, password_matches, resend_code, save_ceremony,
    submit_password, take_ceremony,
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
        .route("/api/v1/sessions/current", delete(logout))
}

/// "パスキーでログイン": a challenge for any of the customer's discoverable
/// credentials; the device lists them, no login ID is typed.
async fn passkey_options(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
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
    app.projector.catch_up().await?;
    let Some(indexed) = ledger_projections::read_models::credential(&app.db.any, &credential_id).await? else {
        // Not a credential of any account: nothing to record it against.
        tracing::info!(credential_id, "passkey login with an unknown credential");
        return Err(Refusal::InvalidCredential.into());
    };
    let user_matches = app
        .webauthn
        .identify_discoverable_authentication(&credential)
        .map(|(user, _)| user.to_string() == indexed.account_id)
        .unwrap_or(false);
    let attachment = crate::webauthn::reported_attachment(&body.credential);
    let assertion = match crate::webauthn::passkey_for_verification(&indexed.public_key) {
        None => Err("stored credential unreadable".to_string()),
        Some(_) if !user_matches => Err("user handle does not match the credential's account".to_string()),
        Some(passkey) => app
            .webauthn
            .finish_discoverable_authentication_v2(&credential, state, &passkey)
            .map(|r| PasskeyAssertion {
                counter: r.counter(),
                backup_state: r.backup_state(),
                backup_eligible: r.backup_eligible(),
                user_verified: r.user_verified(),
                authenticator_attachment: attachment.clone(),
            })
            .map_err(|e| format!("{e:?}")),
    };
    let now = app.clock.now();
    let command = AccountCommand::RecordPasskeyLogin { credential_id, assertion, channel: meta.channel, at: now };
    let done = execute(&app, &indexed.account_id, command, meta.metadata("customer", now)).await?;
    if !done.has(|e| matches!(e, AccountEvent::PasskeyLoginSucceeded { .. })) {
        return Err(done.refusal().unwrap_or(Refusal::InvalidCredential).into());
    }
    read_your_writes(&app, &indexed.account_id, &done).await?;
    let session = start_session(&app, &indexed.account_id, "passkey").await?;
    let cross_device = attachment.as_deref() == Some("cross-platform");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "session": session,
            "account_id": indexed.account_id,
            "cross_device": cross_device,
            "offer_local_passkey": cross_device,
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
        password_matches(body.password.expose().to_string(), crate::secrets::dummy_hash().to_string()).await?;
        return Err(Refusal::InvalidCredentials.into());
    };
    let flow_id = create_flow(&app, Some(&account_id), "password_login", &meta).await?;
    submit_password(&app, &account_id, &flow_id, FlowPurpose::PasswordLogin, body.password, &meta).await
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
    let done = check_code(&app, &account_id, &flow_id, body.code.expose(), &meta).await?;
    code_outcome(&done)?;
    read_your_writes(&app, &account_id, &done).await?;
    let session = start_session(&app, &account_id, "password_and_email_code").await?;
    Ok((StatusCode::CREATED, Json(json!({ "session": session, "account_id": account_id }))))
}

async fn password_resend(State(app): State<AppState>, Path(flow_id): Path<String>, meta: RequestMeta) -> Result<Json<Value>, ApiError> {
    let flow = load_flow(&app, &flow_id, "password_login").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    resend_code(&app, &account_id, &flow_id, &meta).await
}

async fn logout(State(app): State<AppState>, customer: Customer) -> Result<StatusCode, ApiError> {
    sqlx::query("UPDATE sessions SET ended_at = $2 WHERE token_hash = $1")
        .bind(&customer.token_hash)
        .bind(app.clock.now().timestamp_millis())
        .execute(&app.db.any)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
