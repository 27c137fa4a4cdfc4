//! Extractors: request metadata, JSON bodies in the API's error format,
//! customer sessions and staff tokens.

use secrecy::ExposeSecret;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::Json;
use chrono::{DateTime, Utc};
use ledger_domain::staff::TokenRefusal;
use ledger_domain::EventMetadata;
use ledger_domain::{AccountCommand, Channel};
use serde::de::DeserializeOwned;

use crate::bus::{BusError, Executed};
use crate::error::{ApiError, ErrorCode};
use crate::secrets::token_hash;
use crate::state::AppState;

/// Where a request came from: channel, IP, User-Agent, request id.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub channel: Channel,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub hints: crate::environment::ClientHints,
}

impl RequestMeta {
    /// The device this request came from, judged against the deployment's
    /// recommended environments.
    pub fn environment(&self, app: &AppState) -> ledger_domain::Environment {
        crate::environment::environment(&self.user_agent, &self.hints, &app.config.recommended)
    }

    /// The event metadata for an action by `actor` at `at`. Staff acts are
    /// on the channel `staff` and the core system's calls on `integration`,
    /// apart from the customers' own channels (`X-Channel`).
    pub fn metadata(&self, actor: &str, at: DateTime<Utc>) -> EventMetadata {
        let channel = if actor.starts_with("staff:") {
            "staff"
        } else if actor == super::admin::CORE_SYSTEM {
            "integration"
        } else {
            self.channel.as_str()
        };
        EventMetadata {
            at,
            actor: actor.to_string(),
            channel: Some(channel.to_string()),
            ip: Some(self.ip.clone()),
            user_agent: Some(self.user_agent.clone()),
            request_id: Some(self.request_id.clone()),
            staff_id: None,
        }
    }
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let channel = match header("x-channel") {
            Some(c) => c.parse().map_err(|_| ApiError::from(ErrorCode::InvalidChannel))?,
            None => Channel::Web,
        };
        let ip = crate::client_ip::client_of(&app.config.trusted_proxies, &parts.extensions, &parts.headers)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        Ok(RequestMeta {
            channel,
            ip,
            user_agent: header("user-agent").unwrap_or_default().chars().take(512).collect(),
            request_id: header("x-request-id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            hints: crate::environment::ClientHints::from_headers(&parts.headers),
        })
    }
}

/// A path parameter parsed into its type (`AccountId`, `FlowId`): one that
/// does not parse names nothing the service has, and is answered like an
/// unknown one, 404 in the API's error format, without a database read.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(_) => Err(ApiError::not_found()),
        }
    }
}

/// A query string parsed into its type; one that does not parse is
/// answered in the API's error format, not as plain text.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(_) => Err(ApiError::bad_request("The query string is not of the expected shape.")),
        }
    }
}

/// A JSON body; malformed bodies get the API's own error format.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let not_json = || ApiError::bad_request("The request body is not valid JSON of the expected shape.");
        let json = req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
        });
        if !json {
            return Err(not_json());
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ErrorCode::PayloadTooLarge.into())
            }
            Err(_) => return Err(not_json()),
        };
        if has_nul_escape(&bytes) {
            return Err(ApiError::bad_request(NUL_REFUSED));
        }
        // The rejection's text quotes the body: never logged.
        Json::<T>::from_bytes(&bytes).map(|Json(v)| ApiJson(v)).map_err(|_| not_json())
    }
}

/// The answer to text with a NUL character in it.
pub const NUL_REFUSED: &str = "Text in the request must not contain the NUL character (U+0000).";

/// Whether a JSON text has a NUL character in a string: JSON can only
/// carry it escaped (`\u0000`); an escaped backslash before `u0000` is
/// not one.
fn has_nul_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6) == Some(b"u0000".as_slice()) {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get("authorization")?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string())
}

/// A logged-in customer. A missing, unknown, expired or ended token is
/// refused, never treated as anonymous.
#[derive(Debug, Clone)]
pub struct Customer {
    pub account_id: ledger_domain::AccountId,
    pub token_hash: String,
    pub logged_in_at: DateTime<Utc>,
    /// How the session was opened (`passkey`, `password_and_email_code`, ...).
    pub method: String,
    /// The cross-device sign-in this session came from, if it did.
    pub cross_device_sign_in: Option<String>,
    /// The passkey the session was opened with, if any.
    pub passkey_id: Option<String>,
    /// The sequence, in the account's stream, of the event that opened the
    /// session (its login, or the registration that signed it in).
    pub opened_by: Option<i64>,
}

impl Customer {
    /// An opaque reference to this session for events (a confirmation that
    /// serves it): derived from the token's hash, it tells nothing of the token.
    pub fn session_ref(&self) -> String {
        session_id_of(&self.token_hash)
    }
}

/// A session's public ID (the customer's list of signed-in devices, events
/// that serve it): derived from the token's hash, it tells nothing of the
/// token and cannot be used as one.
pub fn session_id_of(token_hash_: &str) -> String {
    let derived = token_hash(&format!("session-ref:{token_hash_}"));
    derived[..16].to_string()
}

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let hash = token_hash(&token);
        let session = app.store.session(&hash, app.clock.now()).await?.ok_or_else(ApiError::unauthorized)?;
        if session.ended {
            return Err(ApiError::from(ErrorCode::SessionEnded));
        }
        let account_id = ledger_domain::AccountId::parse(&session.account_id).map_err(ApiError::internal)?;
        app.store.session_seen(&hash, session.last_seen_at, app.clock.now()).await?;
        Ok(Customer {
            account_id,
            token_hash: hash,
            logged_in_at: session.created_at,
            method: session.method,
            cross_device_sign_in: session.sign_in_id.filter(|_| session.cross_device),
            passkey_id: session.passkey_id,
            opened_by: session.opened_by,
        })
    }
}

/// Staff roles (API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Support,
    Compliance,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "support" => Some(Role::Support),
            "compliance" => Some(Role::Compliance),
            _ => None,
        }
    }
}

/// A staff member, identified by their token, with the request they made
/// (a refusal for their role is put on record).
#[derive(Clone)]
pub struct Staff {
    pub staff_id: String,
    pub name: String,
    pub role: Role,
    role_name: String,
    request: String,
    meta: RequestMeta,
    app: AppState,
}

impl Staff {
    /// Refuses unless the staff member has one of `roles` or is an
    /// administrator (who may do everything staff do); a refusal is
    /// recorded in the member's stream.
    pub async fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.role == Role::Admin || roles.contains(&self.role) {
            return Ok(());
        }
        let event = ledger_domain::staff::StaffEvent::StaffAccessRefused { role: self.role_name.clone(), request: self.request.clone() };
        let recorded = self.meta.metadata(&self.actor(), self.app.clock.now());
        self.app.staff_log.record(&self.staff_id, event, recorded).await.map_err(ApiError::internal)?;
        Err(ApiError::forbidden())
    }

    /// A member signed in to the console: `request` is the method and
    /// path they asked for (recorded if their role refuses it).
    pub fn signed_in(member: crate::storage::StaffRow, role: Role, request: String, meta: RequestMeta, app: AppState) -> Staff {
        Staff { staff_id: member.staff_id, name: member.name, role, role_name: member.role, request, meta, app }
    }

    /// The request's metadata.
    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }

    /// The actor string recorded in events.
    pub fn actor(&self) -> String {
        format!("staff:{}", self.staff_id)
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        // The token itself is never compared: its SHA-256 is looked up, so
        // a lookup's timing could tell at most a prefix of that hash of 256
        // random bits, which brings no one closer to a token.
        let row = app.store.staff_by_token_hash(&token_hash(&token)).await?;
        // A customer's session token is no staff token: 401, as for any unknown token.
        let member = row.ok_or_else(ApiError::unauthorized)?;
        let now = app.clock.now();
        let refused = match (member.revoked_at.or(member.disabled_at), member.expires_at) {
            (Some(_), _) => Some((TokenRefusal::Revoked, ErrorCode::TokenRevoked)),
            (None, Some(at)) if at <= now.timestamp_millis() => Some((TokenRefusal::Expired, ErrorCode::TokenExpired)),
            _ => None,
        };
        if let Some((reason, code)) = refused {
            // Each use is on record in the member's stream, from where it came.
            let meta = match RequestMeta::from_request_parts(parts, app).await {
                Ok(meta) => meta,
                // A channel header that does not parse: recorded as web.
                Err(_) => RequestMeta {
                    channel: Channel::Web,
                    ip: crate::client_ip::client_of(&app.config.trusted_proxies, &parts.extensions, &parts.headers)
                        .map(|ip| ip.to_string())
                        .unwrap_or_default(),
                    user_agent: String::new(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    hints: Default::default(),
                },
            };
            let event = ledger_domain::staff::StaffEvent::StaffTokenRefused { reason };
            let actor = format!("staff:{}", member.staff_id);
            app.staff_log.record(&member.staff_id, event, meta.metadata(&actor, now)).await.map_err(ApiError::internal)?;
            return Err(code.into());
        }
        let role = Role::parse(&member.role).ok_or_else(ApiError::forbidden)?;
        let meta = RequestMeta::from_request_parts(parts, app).await?;
        let request = format!("{} {}", parts.method, parts.uri.path());
        Ok(Staff { staff_id: member.staff_id, name: member.name, role, role_name: member.role, request, meta, app: app.clone() })
    }
}

/// Runs a command and maps failures that are not refusals.
pub async fn execute(app: &AppState, account_id: &str, command: AccountCommand, metadata: EventMetadata) -> Result<Executed, ApiError> {
    execute_with(app, account_id, command, metadata, |_, _| Vec::new()).await
}

/// [`execute`], with the working-table writes of the outcome in the same
/// commit (see [`crate::bus::Ledger::execute_with`]); a single-use record
/// found taken answers `ceremony_expired`.
pub async fn execute_with(
    app: &AppState,
    account_id: &str,
    command: AccountCommand,
    metadata: EventMetadata,
    also: impl Fn(&[ledger_domain::AccountEvent], i64) -> Vec<ledger_projections::append::AlsoWrite>,
) -> Result<Executed, ApiError> {
    match app.ledger.execute_with(account_id, command, metadata, also).await {
        Ok(done) => Ok(done),
        Err(BusError::Domain(ledger_domain::AccountError::AccountNotFound)) => Err(ApiError::not_found()),
        Err(BusError::Domain(ledger_domain::AccountError::UnknownFlow | ledger_domain::AccountError::UnknownPasskey)) => {
            Err(ApiError::not_found())
        }
        Err(BusError::Domain(ledger_domain::AccountError::AlreadyOpened)) => Err(ApiError::from(ErrorCode::AccountExists)),
        Err(BusError::Domain(ledger_domain::AccountError::NotLocked)) => Err(ApiError::from(ErrorCode::NotLocked)),
        Err(BusError::Domain(ledger_domain::AccountError::NotSuspended)) => Err(ApiError::from(ErrorCode::NotSuspended)),
        Err(BusError::Contended) => Err(ApiError::conflict_retry()),
        Err(BusError::Gone) => Err(ApiError::ceremony_expired()),
        Err(BusError::Unavailable(e)) => Err(ApiError::unavailable(e)),
        Err(e @ BusError::Store(_)) => Err(ApiError::internal(e)),
    }
}

/// Starts a customer session; returns the token (shown once) and expiry.
/// `opened_by` is the sequence of the event that opened it (a login, a
/// registration); `passkey_id` the passkey it was opened with, if any
/// (deleting that passkey ends the session).
pub async fn start_session(
    app: &AppState,
    meta: &RequestMeta,
    account_id: &str,
    method: &str,
    opened_by: Option<i64>,
    passkey_id: Option<&str>,
) -> Result<super::contract::SessionIssued, ApiError> {
    let session = new_session(app, meta);
    let row = crate::storage::NewSession { passkey_id, ..session.row(account_id, method, None, opened_by) };
    app.store.start_session(row).await?;
    Ok(session.issued())
}

/// A session about to start: its token is made first, so that the row can
/// be written in the transaction of the event that starts it.
pub struct PendingSession {
    token: crate::secrets::Secret,
    token_hash: String,
    created_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    channel: String,
    ip: String,
    environment: Option<String>,
}

/// A new session's token and lifetime, from now, opened by the request `meta`.
pub fn new_session(app: &AppState, meta: &RequestMeta) -> PendingSession {
    let token = crate::secrets::new_token();
    let created_at = app.clock.now();
    PendingSession {
        token_hash: token_hash(token.expose_secret()),
        token,
        created_at,
        expires_at: created_at + chrono::Duration::seconds(app.config.session_lifetime_secs),
        channel: meta.channel.as_str().to_string(),
        ip: meta.ip.clone(),
        environment: serde_json::to_string(&meta.environment(app)).ok(),
    }
}

impl PendingSession {
    fn row<'a>(
        &'a self,
        account_id: &'a str,
        method: &'a str,
        sign_in_id: Option<&'a str>,
        opened_by: Option<i64>,
    ) -> crate::storage::NewSession<'a> {
        crate::storage::NewSession {
            token_hash: &self.token_hash,
            account_id,
            method,
            created_at: self.created_at,
            expires_at: self.expires_at,
            sign_in_id,
            passkey_id: None,
            from: crate::storage::OpenedFrom { channel: &self.channel, ip: &self.ip, environment: self.environment.clone(), opened_by },
        }
    }

    /// The session's row, written in the transaction of the event that
    /// starts it: opened with `passkey_id`; `sign_in_id`, the cross-device
    /// sign-in it came from.
    pub fn starting(
        &self,
        account_id: &str,
        method: &str,
        passkey_id: &str,
        sign_in_id: Option<&str>,
        opened_by: i64,
    ) -> ledger_projections::append::AlsoWrite {
        let row = crate::storage::NewSession { passkey_id: Some(passkey_id), ..self.row(account_id, method, sign_in_id, Some(opened_by)) };
        crate::storage::Store::starting_session(row)
    }

    /// What the customer gets: the token (shown once) and expiry.
    pub fn issued(&self) -> super::contract::SessionIssued {
        super::contract::SessionIssued { token: self.token.expose_secret().to_string(), expires_at: self.expires_at }
    }
}

/// Ends every open session of the account: after a credential change (a new
/// login password or e-mail address from the core system, passkeys deleted
/// by support, a lock-out), a session opened before it must not go on to
/// bind a passkey or act for the customer (API.md: such a session answers
/// `session_ended`). Recorded, with the cause, by whoever caused it.
pub async fn end_sessions(
    app: &AppState,
    account_id: &str,
    cause: ledger_domain::account::SessionEndCause,
    recorded: EventMetadata,
) -> Result<u64, ApiError> {
    let ended = app.store.end_sessions(account_id, app.clock.now()).await?;
    record_sessions_ended(app, account_id, ended, cause, recorded).await?;
    Ok(ended)
}

/// Ends the sessions opened with any of `passkey_ids` (the customer deleted
/// them) but `customer`'s own, which has just confirmed the deletion with
/// the trading password; recorded.
pub async fn end_sessions_opened_with(
    app: &AppState,
    customer: &Customer,
    passkey_ids: &[&str],
    recorded: EventMetadata,
) -> Result<u64, ApiError> {
    let cause = ledger_domain::account::SessionEndCause::PasskeyDeleted;
    end_passkey_sessions(app, &customer.account_id, passkey_ids, &customer.token_hash, cause, recorded).await
}

/// Ends the sessions opened with any of `passkey_ids` but the one whose
/// token hash is `except` (none when empty); recorded with `cause`.
pub async fn end_passkey_sessions(
    app: &AppState,
    account_id: &str,
    passkey_ids: &[&str],
    except: &str,
    cause: ledger_domain::account::SessionEndCause,
    recorded: EventMetadata,
) -> Result<u64, ApiError> {
    let ended = app.store.end_sessions_opened_with(account_id, passkey_ids, except, app.clock.now()).await?;
    record_sessions_ended(app, account_id, ended, cause, recorded).await?;
    Ok(ended)
}

async fn record_sessions_ended(
    app: &AppState,
    account_id: &str,
    ended: u64,
    cause: ledger_domain::account::SessionEndCause,
    recorded: EventMetadata,
) -> Result<(), ApiError> {
    if ended > 0 {
        let sessions = u32::try_from(ended).unwrap_or(u32::MAX);
        let command = AccountCommand::RecordSessionsEnded { sessions, cause, at: recorded.at };
        execute(app, account_id, command, recorded).await?;
    }
    Ok(())
}

/// Waits (bounded, woken by the projector) until the account's read models
/// include every event of its stream: for reads of one account's views.
pub async fn account_view_current(app: &AppState, account_id: &str) -> Result<(), ApiError> {
    if !app.projector.wait_for_account(account_id, std::time::Duration::from_secs(5)).await? {
        tracing::warn!(account_id, "read models lag behind the account's stream");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::has_nul_escape;

    #[test]
    fn a_nul_is_found_only_where_json_escapes_one() {
        assert!(has_nul_escape(br#"{"reason":"lost\u0000phone"}"#));
        assert!(has_nul_escape(br#"["\\\u0000"]"#), "an escaped backslash, then a NUL");
        assert!(!has_nul_escape(br#"{"reason":"C:\\u0000"}"#), "a backslash, then the text u0000");
        assert!(!has_nul_escape(br#"{"reason":"u0000 \u0001"}"#));
    }
}
