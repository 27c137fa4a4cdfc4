//! Staff enrolment and sign-in with passkeys, the console session cookie,
//! and the CSRF token of its forms.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use hmac::{Hmac, Mac};
use ledger_domain::staff::StaffEvent;
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use webauthn_rs::prelude::{DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential};

use super::page::{both, layout, page, ConsoleError};
use crate::error::{ApiError, ErrorCode};
use crate::http::extract::{RequestMeta, Role, Staff};
use crate::secrets::{new_token, token_hash, ExposeSecret};
use crate::state::AppState;
use crate::storage::SessionRefusal;

/// How long an enrolment link is valid.
pub const ENROLMENT_HOURS: i64 = 24;

/// A staff member signed in to the console, with the request they made.
#[derive(Clone)]
pub struct ConsoleStaff {
    pub staff: Staff,
    /// The token every state-changing form of this session carries.
    pub csrf: String,
}

impl ConsoleStaff {
    /// Whether the member's role opens a page for `roles` (administrators
    /// open every page), without recording anything.
    pub fn may(&self, roles: &[Role]) -> bool {
        self.staff.role == Role::Admin || roles.contains(&self.staff.role)
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), ConsoleError> {
        if subtle::ConstantTimeEq::ct_eq(given.as_bytes(), self.csrf.as_bytes()).into() {
            Ok(())
        } else {
            Err(ConsoleError {
                stale_form: true,
                error: Box::new(ApiError::saying(
                    ErrorCode::Forbidden,
                    "The form has expired or did not come from this console; open the page again.",
                )),
                staff: Some(Box::new(self.clone())),
            })
        }
    }
}

/// The session cookie's name: `__Host-` (Secure, whole origin) over https.
fn cookie_name(app: &AppState) -> &'static str {
    if secure(app) {
        "__Host-ledger_console"
    } else {
        "ledger_console"
    }
}

fn secure(app: &AppState) -> bool {
    app.config.origin.starts_with("https://")
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn set_cookie(app: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(app) { "; Secure" } else { "" };
    let cookie = format!("{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}", cookie_name(app));
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The CSRF token of a session: a keyed hash of the session's hash, so it
/// is stored nowhere and differs for every session.
fn csrf_of(app: &AppState, session_hash: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app.secret_key()) else { return String::new() };
    mac.update(b"console-csrf:");
    mac.update(session_hash.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Where a request without a session goes.
fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

impl FromRequestParts<AppState> for ConsoleStaff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie_value(&parts.headers, cookie_name(app)) else { return Err(to_sign_in()) };
        let hash = token_hash(&token);
        let now = app.clock.now();
        let idle = app.config.console_idle_secs.saturating_mul(1000);
        let absolute = app.config.console_absolute_secs.saturating_mul(1000);
        let found = app.store.console_session(&hash, now.timestamp_millis(), idle, absolute).await;
        let meta = RequestMeta::from_request_parts(parts, app).await.map_err(IntoResponse::into_response)?;
        let session = match found {
            Ok(Ok(session)) => session,
            Ok(Err(SessionRefusal::Expired { staff_id, absolute })) => {
                // Ended now: on record in the member's stream, with why.
                let cause = if absolute { "expired" } else { "idle" };
                let event = StaffEvent::ConsoleSignedOut { cause: cause.into() };
                let actor = format!("staff:{staff_id}");
                if let Err(e) = app.staff_log.record(&staff_id, event, meta.metadata(&actor, now)).await {
                    tracing::warn!(error = %e, "a console session's end could not be recorded");
                }
                return Err(to_sign_in());
            }
            Ok(Err(SessionRefusal::Unknown)) => return Err(to_sign_in()),
            Err(e) => return Err(ConsoleError::from(e).into_response()),
        };
        let member = match app.store.staff_member(&session.staff_id).await {
            Ok(Some(m)) if m.disabled_at.is_none() => m,
            Ok(_) => return Err(to_sign_in()),
            Err(e) => return Err(ConsoleError::from(e).into_response()),
        };
        let Some(role) = Role::parse(&member.role) else { return Err(to_sign_in()) };
        let request = format!("{} {}", parts.method, parts.uri.path());
        let staff = Staff::signed_in(member, role, request, meta, app.clone());
        Ok(ConsoleStaff { staff, csrf: csrf_of(app, &hash) })
    }
}

/// The sign-in page: one button, the passkey does the rest.
pub async fn sign_in_page() -> Response {
    let body = html! {
        section.card {
            p { "コンソール用に登録したパスキーでサインインしてください。" }
            p lang="en" { "Sign in with the passkey you registered for the console." }
            button #sign-in type="button" data-action="sign-in" { (both("パスキーでサインイン", "Sign in with a passkey")) }
            p #message role="status" aria-live="polite" {}
        }
    };
    page(layout("サインイン", "Sign in", None, body))
}

/// The enrolment page of a link: a button to create the passkey.
pub async fn enrol_page(State(app): State<AppState>, Path(link): Path<String>) -> Result<Response, ConsoleError> {
    let staff_id = app.store.enrolment(&token_hash(&link), app.clock.now().timestamp_millis()).await?;
    let member = match staff_id {
        Some(id) => app.store.staff_member(&id).await?.filter(|m| m.disabled_at.is_none()),
        None => None,
    };
    let body = match member {
        Some(member) => html! {
            section.card {
                p { (member.name) " さん、コンソール用のパスキーを登録します。このリンクは一度だけ使えます。" }
                p lang="en" { "Register a passkey for the console, " (member.name) ". This link works once." }
                button #enrol type="button" data-action="enrol" data-link=(link) { (both("パスキーを登録", "Register a passkey")) }
                p #message role="status" aria-live="polite" {}
            }
        },
        None => html! {
            div.error role="alert" {
                p { "このリンクは使えません（使用済み、期限切れ、または無効）。管理者に新しいリンクを依頼してください。" }
                p lang="en" { "This link cannot be used (used, expired or unknown). Ask an administrator for a new one." }
            }
        },
    };
    Ok(page(layout("パスキーの登録", "Passkey enrolment", None, body)))
}

#[derive(Deserialize)]
pub struct FinishBody {
    ceremony_id: String,
    credential: Value,
}

fn options_json(options: &impl serde::Serialize, ceremony_id: &str) -> Result<Json<Value>, ApiError> {
    let mut options = serde_json::to_value(options).map_err(ApiError::internal)?;
    // A button, not autofill: the browser asks in the ordinary way.
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    Ok(Json(json!({ "ceremony_id": ceremony_id, "options": options })))
}

/// Creation options for the member of a valid link.
pub async fn enrol_options(State(app): State<AppState>, Path(link): Path<String>) -> Result<Json<Value>, ApiError> {
    let now = app.clock.now();
    let staff_id = app.store.enrolment(&token_hash(&link), now.timestamp_millis()).await?.ok_or_else(ApiError::not_found)?;
    let member = app.store.staff_member(&staff_id).await?.filter(|m| m.disabled_at.is_none()).ok_or_else(ApiError::not_found)?;
    let user = uuid::Uuid::parse_str(&member.staff_id).map_err(ApiError::internal)?;
    let (mut options, state) =
        app.webauthn.start_passkey_registration(user, &format!("staff:{}", member.name), &member.name, None).map_err(ApiError::internal)?;
    let ceremony_id = uuid::Uuid::new_v4().to_string();
    let state = serde_json::to_string(&state).map_err(ApiError::internal)?;
    crate::http::steps::save_ceremony(&app, &ceremony_id, "staff_enrolment", Some(&staff_id), &state, None).await?;
    let mut value = serde_json::to_value(&mut options).map_err(ApiError::internal)?;
    crate::webauthn::require_discoverable(&mut value);
    options_json(&value, &ceremony_id)
}

/// Verifies the new passkey, uses the link, stores the passkey and signs
/// the member in.
pub async fn enrol_finish(
    State(app): State<AppState>,
    meta: RequestMeta,
    Path(link): Path<String>,
    Json(body): Json<FinishBody>,
) -> Result<Response, ApiError> {
    let now = app.clock.now();
    let link_hash = token_hash(&link);
    let staff_id = app.store.enrolment(&link_hash, now.timestamp_millis()).await?.ok_or_else(ApiError::not_found)?;
    let (state, _) =
        crate::http::steps::take_ceremony(&app, &body.ceremony_id, "staff_enrolment").await?.ok_or_else(ApiError::ceremony_expired)?;
    let state: PasskeyRegistration = serde_json::from_str(&state).map_err(ApiError::internal)?;
    let credential: RegisterPublicKeyCredential =
        serde_json::from_value(body.credential.clone()).map_err(|_| ApiError::from(ErrorCode::InvalidCredential))?;
    let passkey =
        app.webauthn.finish_passkey_registration(&credential, &state).map_err(|_| ApiError::from(ErrorCode::InvalidCredential))?;
    let credential_id = crate::http::steps::base64_url(passkey.cred_id());
    let stored = serde_json::to_string(&passkey).map_err(ApiError::internal)?;
    if !app.store.enrol_passkey(&link_hash, &staff_id, &credential_id, &stored, now.timestamp_millis()).await? {
        return Err(ApiError::not_found());
    }
    let provider = crate::webauthn::registration_facts(&body.credential).and_then(|f| app.providers.get(&f.aaguid).cloned());
    let actor = format!("staff:{staff_id}");
    let event = StaffEvent::ConsolePasskeyEnrolled { credential_id, provider };
    app.staff_log.record(&staff_id, event, meta.metadata(&actor, now)).await.map_err(ApiError::internal)?;
    start(&app, &staff_id).await
}

/// Request options for any console passkey (discoverable).
pub async fn sign_in_options(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (options, state) = app.webauthn.start_discoverable_authentication().map_err(ApiError::internal)?;
    let ceremony_id = uuid::Uuid::new_v4().to_string();
    let state = serde_json::to_string(&state).map_err(ApiError::internal)?;
    crate::http::steps::save_ceremony(&app, &ceremony_id, "staff_sign_in", None, &state, None).await?;
    options_json(&options, &ceremony_id)
}

/// Verifies the assertion against the member's console passkeys and signs
/// them in; a refusal is on record in their stream when the passkey names
/// a member.
pub async fn sign_in_finish(State(app): State<AppState>, meta: RequestMeta, Json(body): Json<FinishBody>) -> Result<Response, ApiError> {
    let now = app.clock.now();
    let (state, _) =
        crate::http::steps::take_ceremony(&app, &body.ceremony_id, "staff_sign_in").await?.ok_or_else(ApiError::ceremony_expired)?;
    let state: DiscoverableAuthentication = serde_json::from_str(&state).map_err(ApiError::internal)?;
    let credential: PublicKeyCredential =
        serde_json::from_value(body.credential).map_err(|_| ApiError::from(ErrorCode::InvalidCredential))?;
    let refused = || ApiError::from(ErrorCode::InvalidCredential);
    let (user, credential_id) = app.webauthn.identify_discoverable_authentication(&credential).map_err(|_| refused())?;
    let staff_id = user.to_string();
    let credential_id = crate::http::steps::base64_url(credential_id);
    let Some(member) = app.store.staff_member(&staff_id).await? else { return Err(refused()) };
    let refuse = |reason: &'static str| {
        let app = app.clone();
        let meta = meta.clone();
        let staff_id = staff_id.clone();
        async move {
            let actor = format!("staff:{staff_id}");
            let event = StaffEvent::ConsoleSignInRefused { reason: reason.into() };
            app.staff_log.record(&staff_id, event, meta.metadata(&actor, now)).await.map_err(ApiError::internal)?;
            Err::<Response, ApiError>(ApiError::from(ErrorCode::InvalidCredential))
        }
    };
    if member.disabled_at.is_some() {
        return refuse("disabled").await;
    }
    let passkeys: Vec<Passkey> =
        app.store.staff_passkeys(&staff_id).await?.iter().filter_map(|p| serde_json::from_str::<Passkey>(p).ok()).collect();
    let Some(mut passkey) = passkeys.into_iter().find(|p| crate::http::steps::base64_url(p.cred_id()) == credential_id) else {
        return refuse("unknown_passkey").await;
    };
    let result = match app.webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey) {
        Ok(result) => result,
        // webauthn-rs refuses a counter that did not move forward as a
        // possible compromise: a cloned authenticator.
        Err(webauthn_rs::prelude::WebauthnError::CredentialPossibleCompromise) => return refuse("counter_regression").await,
        Err(_) => return refuse("invalid").await,
    };
    passkey.update_credential(&result);
    let stored = serde_json::to_string(&passkey).map_err(ApiError::internal)?;
    app.store.update_staff_passkey(&credential_id, &stored, now.timestamp_millis()).await?;
    let actor = format!("staff:{staff_id}");
    app.staff_log.record(&staff_id, StaffEvent::ConsoleSignedIn {}, meta.metadata(&actor, now)).await.map_err(ApiError::internal)?;
    start(&app, &staff_id).await
}

/// Starts a console session: the cookie, and where the page goes next.
async fn start(app: &AppState, staff_id: &str) -> Result<Response, ApiError> {
    let token = new_token();
    let now = app.clock.now().timestamp_millis();
    app.store.start_console_session(&token_hash(token.expose_secret()), staff_id, now).await?;
    let cookie = set_cookie(app, token.expose_secret(), app.config.console_absolute_secs);
    Ok((StatusCode::OK, [(header::SET_COOKIE, cookie)], Json(json!({ "redirect": "/console" }))).into_response())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (the cookie is cleared), on record.
pub async fn sign_out(
    State(app): State<AppState>,
    staff: ConsoleStaff,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    staff.check_csrf(&form.csrf)?;
    let now = app.clock.now();
    if let Some(token) = cookie_value(&headers, cookie_name(&app)) {
        app.store.end_console_session(&token_hash(&token), now.timestamp_millis()).await?;
    }
    let event = StaffEvent::ConsoleSignedOut { cause: "signed_out".into() };
    app.staff_log
        .record(&staff.staff.staff_id, event, staff.staff.meta().metadata(&staff.staff.actor(), now))
        .await
        .map_err(ApiError::internal)?;
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(&app, "", 0));
    Ok(response)
}

/// A one-time enrolment link for a member (only its hash is kept), and
/// when it stops working.
pub async fn issue_link(app: &AppState, staff_id: &str) -> Result<(String, chrono::DateTime<chrono::Utc>), crate::storage::DbError> {
    let token = new_token();
    let now = app.clock.now();
    let expires = now + chrono::Duration::hours(ENROLMENT_HOURS);
    app.store.issue_enrolment(&token_hash(token.expose_secret()), staff_id, now.timestamp_millis(), expires.timestamp_millis()).await?;
    let link = format!("{}/console/enrol/{}", app.config.origin.trim_end_matches('/'), token.expose_secret());
    Ok((link, expires))
}
