//! Login: with a passkey and no login ID typed (seed 000, 003 §4-1), or with
//! password + e-mail code where policy still allows it; and logout.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ledger_domain::account::{FlowPurpose, LoginAuthenticator, PasskeyAssertion};
use ledger_domain::{AccountCommand, AccountEvent, CredentialId, FlowId, LoginId, LoginMode, Refusal};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use webauthn_rs::prelude::{AuthenticationResult, DiscoverableAuthentication, PasskeyAuthentication, PublicKeyCredential};

use super::contract::{public_key_of, CodeBody, CodeResent, CodeStep, CredentialBody, FlowPath, PasswordAccepted, SendBody, SessionIssued};
use super::extract::{end_passkey_sessions, execute_with, new_session, start_session, ApiJson, ApiPath, Customer, RequestMeta};
use super::steps::{
    account_by_login_id, base64_url, check_code, code_outcome, create_flow, load_flow, resend_code, save_ceremony, shown_login_id,
    submit_password, take_ceremony, throttled_password_step, unknown_login_id,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(passkey_options))
        .routes(routes!(passkey_login))
        .routes(routes!(password_login))
        .routes(routes!(password_otp))
        .routes(routes!(password_resend))
        .routes(routes!(password_send))
        .routes(routes!(second_factor))
        .routes(routes!(logout))
}

/// `navigator.credentials.get()` options for a login with no login ID typed.
#[derive(Debug, Serialize, ToSchema)]
struct LoginOptions {
    /// WebAuthn `PublicKeyCredentialRequestOptions` (JSON encoding).
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    public_key: Value,
    /// Sent back with the assertion.
    ceremony_id: String,
}

/// "パスキーでログイン": a challenge for any of the customer's discoverable
/// credentials; the device lists them, no login ID is typed.
#[utoipa::path(post, path = "/api/v1/sessions/passkey/options", tag = "login",
    responses((status = 200, body = LoginOptions), (status = "4XX", body = ErrorBody)))]
async fn passkey_options(State(app): State<AppState>) -> Result<Json<LoginOptions>, ApiError> {
    // Seed 002: the passkey is the second factor, asked for after the
    // password (`POST /sessions/password`), never alone.
    if app.ledger.policy().login_mode == LoginMode::SecondFactor {
        return Err(Refusal::PasswordStepRequired.into());
    }
    let (options, state) = app.webauthn.start_discoverable_authentication().map_err(ApiError::internal)?;
    // webauthn-rs marks this as conditional (autofill) UI (its `mediation`
    // member, left out here); the pages use a button, so the browser is
    // asked in the ordinary, modal way.
    let public_key = public_key_of(&options)?;
    let ceremony_id = uuid::Uuid::new_v4().to_string();
    save_ceremony(&app, &ceremony_id, "login", None, &serde_json::to_string(&state).map_err(ApiError::internal)?, None).await?;
    Ok(Json(LoginOptions { public_key, ceremony_id }))
}

#[derive(Deserialize, ToSchema)]
struct PasskeyLoginBody {
    ceremony_id: String,
    /// The browser's assertion (`PublicKeyCredential`, JSON encoding).
    #[schema(value_type = Object)]
    credential: Value,
}

/// A customer signed in with the password and a code.
#[derive(Debug, Serialize, ToSchema)]
struct SignedIn {
    session: SessionIssued,
    #[schema(value_type = String)]
    account_id: ledger_domain::AccountId,
}

/// A customer signed in with a passkey.
#[derive(Debug, Serialize, ToSchema)]
struct SignedInWithPasskey {
    session: SessionIssued,
    account_id: String,
    /// Whether another device's passkey answered (a QR code; seed 000 p.10).
    cross_device: bool,
    /// Offer to keep a passkey on this PC (seed 000 p.11).
    offer_local_passkey: bool,
    /// The cross-device sign-in a local passkey added next is linked to.
    sign_in_id: Option<String>,
    /// `same_device`, `cross_device` or `security_key`.
    authenticator: &'static str,
    /// `platform` or `cross-platform`, as the browser reported it (unsigned).
    authenticator_attachment_reported: Option<String>,
    /// The device the login came from, judged against the recommended list.
    #[schema(value_type = Object)]
    environment: ledger_domain::Environment,
}

/// "パスキーでログイン" (seed 000 p.9-12): the assertion; the account is the
/// credential's, no login ID is typed.
#[utoipa::path(post, path = "/api/v1/sessions/passkey", tag = "login", request_body = PasskeyLoginBody,
    responses((status = 201, body = SignedInWithPasskey), (status = "4XX", body = ErrorBody)))]
async fn passkey_login(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<PasskeyLoginBody>,
) -> Result<(StatusCode, Json<SignedInWithPasskey>), ApiError> {
    // Read here, taken in the transaction that records the outcome (one
    // commit): only the request that takes it records anything.
    let Some(ceremony) = app.store.ceremony(&body.ceremony_id, "login", app.clock.now()).await? else {
        return Err(ApiError::ceremony_expired());
    };
    let answered = passkey_assertion(&app, &meta, &body, ceremony.state).await;
    if answered.is_err() {
        // A refused finish uses the ceremony up all the same.
        take_ceremony(&app, &body.ceremony_id, "login").await?;
    }
    answered
}

async fn passkey_assertion(
    app: &AppState,
    meta: &RequestMeta,
    body: &PasskeyLoginBody,
    state: String,
) -> Result<(StatusCode, Json<SignedInWithPasskey>), ApiError> {
    let state: DiscoverableAuthentication = serde_json::from_str(&state).map_err(ApiError::internal)?;
    let credential: PublicKeyCredential =
        serde_json::from_value(body.credential.clone()).map_err(|_| ApiError::from(Refusal::InvalidCredential))?;
    // An ID no authenticator makes (over 1,023 bytes) is refused before it
    // is looked up or recorded anywhere.
    let credential_id =
        CredentialId::parse(&base64_url(credential.get_credential_id())).map_err(|_| ApiError::from(Refusal::InvalidCredential))?;
    // The command-side claim, current by construction: no wait for the projector.
    let Some(claim) = ledger_projections::claims::credential_claim(&app.db.any, &credential_id).await? else {
        // Not a credential of any account: recorded in a stream of its own.
        let event = ledger_domain::system::SystemEvent::UnknownCredentialRejected { credential_id: credential_id.to_string() };
        let stream = uuid::Uuid::new_v4().to_string();
        app.system_log.record(&stream, event, meta.metadata("anonymous", app.clock.now())).await.map_err(ApiError::internal)?;
        return Err(Refusal::InvalidCredential.into());
    };
    app.ledger.catch_up_cached(&claim.account_id, claim.stream_sequence).await;
    let user_matches =
        app.webauthn.identify_discoverable_authentication(&credential).map(|(user, _)| user == claim.account_id.uuid()).unwrap_or(false);
    let verified = match crate::webauthn::passkey_for_verification(&claim.public_key) {
        None => Err("stored credential unreadable".to_string()),
        Some(_) if !user_matches => Err("user handle does not match the credential's account".to_string()),
        Some(passkey) => app.webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey).map_err(|e| format!("{e:?}")),
    };
    let ceremony = Some(body.ceremony_id.as_str());
    finish_login(app, meta, &claim.account_id, credential_id.to_string(), &body.credential, verified, None, ceremony).await
}

/// Records a verified (or failed) assertion against the account, and on
/// success starts the session and says whether it was a cross-device
/// sign-in. The login ceremony, when given, is taken in the same
/// transaction as the outcome and the session.
#[allow(clippy::too_many_arguments)]
async fn finish_login(
    app: &AppState,
    meta: &RequestMeta,
    account_id: &str,
    credential_id: String,
    raw_credential: &Value,
    verified: Result<AuthenticationResult, String>,
    second_factor_flow: Option<String>,
    ceremony: Option<&str>,
) -> Result<(StatusCode, Json<SignedInWithPasskey>), ApiError> {
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
    // The session the login starts, if it succeeds: written with its event.
    let session = new_session(app, meta);
    let also = |events: &[AccountEvent], first: i64| {
        let mut writes: Vec<_> = ceremony.map(|id| crate::storage::Store::taking_ceremony(id, "login")).into_iter().collect();
        if let Some((authenticator, method, passkey_id)) = login_outcome(events) {
            let cross_device = authenticator == "cross_device";
            let opened_by = first + events.iter().position(|e| e.login_method().is_some()).unwrap_or(0) as i64;
            writes.push(session.starting(account_id, method, passkey_id, cross_device.then_some(sign_in_id.as_str()), opened_by));
        }
        writes
    };
    let done = execute_with(app, account_id, command, meta.metadata("customer", now), also).await?;
    let Some((authenticator, _, _)) = login_outcome(&done.events) else {
        let suspended = suspended(&done.events);
        if !suspended.is_empty() {
            // One of the passkey's holders may not be the customer: what it
            // (and what was added through it) signed in to ends, and the
            // customer is told.
            let cause = ledger_domain::account::SessionEndCause::PasskeySuspended;
            end_passkey_sessions(app, account_id, &suspended, "", cause, crate::bus::system_metadata(now)).await?;
            crate::notify::after(app, account_id, &done).await;
        }
        return Err(done.refusal().unwrap_or(Refusal::InvalidCredential).into());
    };
    let cross_device = authenticator == "cross_device";
    let session = session.issued();
    crate::notify::after(app, account_id, &done).await;
    // The browser offers a passkey on this PC (seed 000 p.11) while the
    // account has room for one more.
    let room = done.account.has_room_for_passkey(app.ledger.policy());
    Ok((
        StatusCode::CREATED,
        Json(SignedInWithPasskey {
            session,
            account_id: account_id.to_string(),
            cross_device,
            offer_local_passkey: cross_device && room,
            sign_in_id: cross_device.then_some(sign_in_id),
            authenticator,
            authenticator_attachment_reported: attachment,
            environment,
        }),
    ))
}

/// The passkeys a refused login suspended.
fn suspended(events: &[AccountEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            AccountEvent::PasskeySuspended { passkey_id, .. } => Some(passkey_id.as_str()),
            _ => None,
        })
        .collect()
}

/// The authenticator as the page names it, the login method (the domain's,
/// as the status view and the adoption report name it) and the passkey
/// that answered, of a successful login's events.
fn login_outcome(events: &[AccountEvent]) -> Option<(&'static str, &'static str, &str)> {
    events.iter().find_map(|e| {
        let (authenticator, passkey_id) = match e {
            AccountEvent::CrossDeviceSignInSucceeded { passkey_id, .. } => ("cross_device", passkey_id),
            AccountEvent::PasskeyLoginSucceeded { authenticator: LoginAuthenticator::SecurityKey, passkey_id, .. } => {
                ("security_key", passkey_id)
            }
            AccountEvent::PasskeyLoginSucceeded { passkey_id, .. } => ("same_device", passkey_id),
            _ => return None,
        };
        Some((authenticator, e.login_method()?.as_str(), passkey_id.as_str()))
    })
}

#[derive(Deserialize, ToSchema)]
struct PasswordLoginBody {
    login_id: String,
    #[schema(value_type = String, format = Password)]
    password: crate::secrets::Secret,
}

/// Password + e-mail code, only where no passkey exists and the channel's
/// passkey-mandatory instant has not passed. Not phishing-resistant.
#[utoipa::path(post, path = "/api/v1/sessions/password", tag = "login", request_body = PasswordLoginBody,
    responses((status = 200, body = PasswordAccepted), (status = "4XX", body = ErrorBody)))]
async fn password_login(
    State(app): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<PasswordLoginBody>,
) -> Result<Json<PasswordAccepted>, ApiError> {
    let login_id = match LoginId::parse(&body.login_id) {
        Ok(login_id) => login_id,
        Err(_) => {
            // No account can have it; still an attempt: answered, throttled,
            // timed and recorded as for any unknown login ID.
            let shown = shown_login_id(&body.login_id);
            let answered = throttled_password_step(&app, &shown, async {
                Err::<PasswordAccepted, _>(unknown_login_id(&app, &shown, body.password, FlowPurpose::PasswordLogin, &meta).await)
            });
            return Ok(Json(answered.await?));
        }
    };
    let answered = throttled_password_step(&app, login_id.as_str(), async {
        let Some((account_id, _)) = account_by_login_id(&app, &login_id).await? else {
            return Err(unknown_login_id(&app, login_id.as_str(), body.password, FlowPurpose::PasswordLogin, &meta).await);
        };
        let flow_id = create_flow(&app, &login_id, Some(&account_id), "password_login", &meta).await?;
        let purpose = match app.ledger.policy().login_mode {
            LoginMode::Passwordless => FlowPurpose::PasswordLogin,
            LoginMode::SecondFactor => FlowPurpose::SecondFactorLogin,
        };
        submit_password(&app, &account_id, &flow_id, purpose, None, body.password, &meta).await
    });
    Ok(Json(answered.await?))
}

/// The assertion after the password in second-factor mode.
#[utoipa::path(post, path = "/api/v1/sessions/password/{flow_id}/passkey", tag = "login", params(FlowPath),
    request_body = CredentialBody, responses((status = 201, body = SignedInWithPasskey), (status = "4XX", body = ErrorBody)))]
async fn second_factor(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CredentialBody>,
) -> Result<(StatusCode, Json<SignedInWithPasskey>), ApiError> {
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
    finish_login(&app, &meta, &account_id, credential_id, &body.credential, verified, Some(flow_id.to_string()), None).await
}

/// The e-mailed code (or the OTP device's): the customer is signed in.
#[utoipa::path(post, path = "/api/v1/sessions/password/{flow_id}/otp", tag = "login", params(FlowPath),
    request_body = CodeBody, responses((status = 201, body = SignedIn), (status = "4XX", body = ErrorBody)))]
async fn password_otp(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<(StatusCode, Json<SignedIn>), ApiError> {
    let flow = load_flow(&app, &flow_id, "password_login").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    let done = check_code(&app, &account_id, &flow_id, &body.code, &meta).await?;
    code_outcome(&done)?;
    // What answered the code step names the session's method.
    let by_device = done.has(|e| matches!(e, AccountEvent::EmailCodeVerified { factor: ledger_domain::account::CodeFactor::Totp, .. }));
    let method = if by_device { "password_and_otp_device" } else { "password_and_email_code" };
    let opened_by = done.events.iter().position(|e| e.login_method().is_some()).map(|i| done.first_sequence + i as i64);
    let session = start_session(&app, &meta, &account_id, method, opened_by, None).await?;
    crate::notify::after(&app, &account_id, &done).await;
    Ok((StatusCode::CREATED, Json(SignedIn { session, account_id })))
}

/// Seed 003: a new code, no sooner than a minute after the last.
#[utoipa::path(post, path = "/api/v1/sessions/password/{flow_id}/otp/resend", tag = "login", params(FlowPath),
    responses((status = 200, body = CodeResent), (status = "4XX", body = ErrorBody)))]
async fn password_resend(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
) -> Result<Json<CodeResent>, ApiError> {
    let flow = load_flow(&app, &flow_id, "password_login").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    Ok(Json(resend_code(&app, &account_id, &flow_id, &meta).await?))
}

/// Seed 004: the code goes to the chosen registered address.
#[utoipa::path(post, path = "/api/v1/sessions/password/{flow_id}/otp/send", tag = "login", params(FlowPath),
    request_body = SendBody, responses((status = 200, body = CodeStep), (status = "4XX", body = ErrorBody)))]
async fn password_send(
    State(app): State<AppState>,
    ApiPath(flow_id): ApiPath<FlowId>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Json<CodeStep>, ApiError> {
    let flow = load_flow(&app, &flow_id, "password_login").await?;
    let account_id = flow.account_id.ok_or_else(ApiError::not_found)?;
    Ok(Json(super::steps::send_code(&app, &account_id, &flow_id, body.slot, &meta).await?))
}

/// Logout: the session's token stops working.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "login", security(("customer" = [])),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn logout(State(app): State<AppState>, customer: Customer) -> Result<StatusCode, ApiError> {
    app.store.end_session(&customer.token_hash, app.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
