//! The support desk (API.md, staff): find an account, read its status and
//! its whole history in plain words, delete passkeys for a lost or replaced
//! device, unlock a locked login. Every read of an account and every action
//! is an event naming the staff member.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ledger_domain::account::describe;
use ledger_domain::{AccountCommand, AccountId, EmailAddress, StaffMember};
use ledger_projections::read_models::{status_view, StatusView};
use ledger_projections::signals::SignalView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::contract::{AccountPath, Deleted};
use super::extract::{end_sessions, execute, ApiJson, ApiPath, ApiQuery, RequestMeta, Role, Staff};
use super::freshness::Reflects;
use super::steps::RegistrationPossibility;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(find))
        .routes(routes!(status))
        .routes(routes!(history))
        .routes(routes!(revoke))
        .routes(routes!(reinstate))
        .routes(routes!(unlock))
}

pub(crate) const READERS: &[Role] = &[Role::Support, Role::Compliance];

fn member(staff: &Staff) -> StaffMember {
    StaffMember { staff_id: staff.staff_id.clone(), name: staff.name.clone() }
}

/// Puts a staff read of `account_id` on record before answering.
pub(crate) async fn record_read(app: &AppState, staff: &Staff, meta: &RequestMeta, account_id: &str, view: &str) -> Result<(), ApiError> {
    let now = app.clock.now();
    let command = AccountCommand::RecordStaffRead { staff: member(staff), view: view.to_string(), at: now };
    execute(app, account_id, command, meta.metadata(&staff.actor(), now)).await?;
    Ok(())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FindQuery {
    /// A login ID (exact or its beginning) or an e-mail address.
    #[param(required = true)]
    pub q: Option<String>,
}

/// One account a search found.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FoundAccount {
    pub account_id: String,
    pub login_id: String,
    pub holder_kind: String,
    pub email: Option<String>,
    pub locked: bool,
    pub login_method: String,
    /// How many passkeys it has.
    pub passkeys: usize,
}

#[derive(Debug, Serialize, ToSchema)]
struct Found {
    accounts: Vec<FoundAccount>,
}

/// By login ID (exact, or as a prefix) or by e-mail address (normalised).
#[utoipa::path(get, path = "/api/v1/staff/accounts", tag = "staff", security(("staff" = [])), params(FindQuery),
    responses((status = 200, body = Found), (status = "4XX", body = ErrorBody)))]
async fn find(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiQuery(query): ApiQuery<FindQuery>,
) -> Result<(Reflects, Json<Found>), ApiError> {
    let (reflects, accounts) = find_accounts(&app, &staff, &meta, query.q.as_deref().unwrap_or_default()).await?;
    Ok((reflects, Json(Found { accounts })))
}

/// The accounts a search finds, each read on record.
pub(crate) async fn find_accounts(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    q: &str,
) -> Result<(Reflects, Vec<FoundAccount>), ApiError> {
    staff.require(READERS).await?;
    let q = q.trim().to_string();
    if q.is_empty() || q.chars().count() > 254 {
        return Err(ApiError::bad_request("q must be a login ID or an e-mail address."));
    }
    // A search spans accounts: everything committed before it.
    let reflects = Reflects::after_waiting(app).await?;
    let email = EmailAddress::parse(&q).ok().map(|e| e.as_str().to_string()).unwrap_or_default();
    let ids = ledger_projections::read_models::find_accounts(&app.db.any, &q, &email).await?;
    // Nothing in views that are behind, while the command side knows the
    // login ID: the account exists, the views have not caught up with it.
    if ids.is_empty() && reflects.behind > 0 && app.store.login(&q).await?.is_some() {
        return Err(ApiError::from(ErrorCode::ViewsBehind).retry_after(super::freshness::READ_WAIT));
    }
    let mut accounts = Vec::new();
    for id in ids {
        record_read(app, staff, meta, &id, "search").await?;
        if let Some(view) = status_view(&app.db.any, &id, true).await? {
            accounts.push(FoundAccount {
                passkeys: view.passkeys.len(),
                account_id: view.account_id,
                login_id: view.login_id,
                holder_kind: view.holder_kind,
                email: view.email,
                locked: view.locked,
                login_method: view.login_method,
            });
        }
    }
    Ok((reflects, accounts))
}

/// The support desk's view of one account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountStatus {
    #[serde(flatten)]
    pub view: StatusView,
    pub registration: RegistrationPossibility,
    /// Fraud signals involving the account (a shared address, seed 000).
    pub signals: Vec<SignalView>,
    /// While the login is locked: since when, why, and from which clients.
    pub lock: Option<LockInfo>,
    /// The customer's "this wasn't me" reports whose signal is still open,
    /// newest first: what support looks at first.
    pub open_reports: Vec<OpenReport>,
}

/// A customer's report that an event was not theirs, not yet reviewed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OpenReport {
    /// The signal it raised (`customer_reported_activity`).
    pub signal_id: String,
    /// The reported event's ID (as the customer's activity gave it).
    pub event_id: String,
    /// The reported event: its sequence, type, when (Japan time) and line.
    pub sequence: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: String,
    #[schema(value_type = ledger_projections::read_models::Summary)]
    pub line: ledger_domain::account::Line,
    pub channel: String,
    pub ip: String,
    pub user_agent: String,
    /// What the customer wrote.
    pub note: Option<String>,
    pub sessions_ended: u32,
    pub passkeys_revoked: Vec<String>,
}

/// The account's reports whose signal is not reviewed (or not yet raised:
/// the projector may not have reached the report).
async fn open_reports(app: &AppState, account_id: &str, signals: &[SignalView]) -> Result<Vec<OpenReport>, ApiError> {
    let account = app.ledger.load(account_id).await.map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for report in account.reports().iter().rev() {
        let signal_id = ledger_projections::signals::reported_signal_id(account_id, report.sequence);
        if signals.iter().any(|s| s.signal_id == signal_id && s.status != "open") {
            continue;
        }
        let found = ledger_projections::projector::account_event_at(&app.db.any, app.db.backend, account_id, report.sequence).await?;
        let Some(event) = found else { continue };
        let parsed =
            ledger_domain::account::upcast::read(&event.event_type, &event.event_version, &event.payload).map_err(ApiError::internal)?;
        let meta = event.meta().ok_or_else(|| ApiError::internal("an event without its time"))?;
        out.push(OpenReport {
            signal_id,
            event_id: report.event_id.clone(),
            sequence: report.sequence,
            event_type: event.event_type.clone(),
            at: ledger_domain::japan::japan_rfc3339(meta.at),
            line: describe(&parsed),
            channel: meta.channel.unwrap_or_default(),
            ip: meta.ip.unwrap_or_default(),
            user_agent: meta.user_agent.unwrap_or_default(),
            note: report.note.clone(),
            sessions_ended: report.sessions_ended,
            passkeys_revoked: report.passkeys_revoked.clone(),
        });
    }
    Ok(out)
}

/// Why and since when a login is locked (its `LoginLocked` event).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LockInfo {
    /// When it locked, in Japan time.
    pub since: String,
    /// Wrong login passwords in a row that locked it.
    pub wrong_passwords: u32,
    /// The addresses those attempts came from.
    pub clients: Vec<String>,
    /// The same, in words.
    #[schema(value_type = ledger_projections::read_models::Summary)]
    pub line: ledger_domain::account::Line,
}

/// The lock of a locked account, read from its last `LoginLocked` event.
async fn lock_info(app: &AppState, account_id: &str) -> Result<Option<LockInfo>, ApiError> {
    let types = ledger_projections::projector::EventTypes { only: vec!["LoginLocked".into()], except: Vec::new() };
    let last = ledger_projections::projector::account_events_newest_first(&app.db.any, app.db.backend, account_id, None, 1, &types).await?;
    let Some(event) = last.first() else { return Ok(None) };
    let parsed =
        ledger_domain::account::upcast::read(&event.event_type, &event.event_version, &event.payload).map_err(ApiError::internal)?;
    let ledger_domain::AccountEvent::LoginLocked { consecutive_failures, clients } = &parsed else { return Ok(None) };
    let meta = event.meta().ok_or_else(|| ApiError::internal("an event without its time"))?;
    Ok(Some(LockInfo {
        since: ledger_domain::japan::japan_rfc3339(meta.at),
        wrong_passwords: *consecutive_failures,
        clients: clients.clone(),
        line: describe(&parsed),
    }))
}

/// The status view, with the address unmasked and deleted passkeys shown.
#[utoipa::path(get, path = "/api/v1/staff/accounts/{account_id}", tag = "staff", security(("staff" = [])), params(AccountPath),
    responses((status = 200, body = AccountStatus), (status = "4XX", body = ErrorBody)))]
async fn status(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
) -> Result<(Reflects, Json<AccountStatus>), ApiError> {
    let (reflects, status) = account_status(&app, &staff, &meta, &account_id).await?;
    Ok((reflects, Json(status)))
}

/// The support desk's view of an account, the read on record.
pub(crate) async fn account_status(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    account_id: &AccountId,
) -> Result<(Reflects, AccountStatus), ApiError> {
    staff.require(READERS).await?;
    record_read(app, staff, meta, account_id, "status").await?;
    let reflects = Reflects::for_account(app, account_id).await?;
    let view = match status_view(&app.db.any, account_id, true).await? {
        Some(view) => view,
        // In the log, not yet in the views: they are behind, it is not unknown.
        None if reflects.behind > 0 && app.projector.account_in_log(account_id).await? => {
            return Err(ApiError::from(ErrorCode::ViewsBehind).retry_after(super::freshness::READ_WAIT));
        }
        None => return Err(ApiError::not_found()),
    };
    let registration = super::steps::registration_possibility(app, account_id).await?;
    let signals = ledger_projections::signals::list(&app.db.any, None, None, Some(account_id)).await?;
    let lock = if view.locked { lock_info(app, account_id).await? } else { None };
    let open_reports = open_reports(app, account_id, &signals).await?;
    Ok((reflects, AccountStatus { view, registration, signals, lock, open_reports }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 500; 50 when absent.
    limit: Option<i64>,
    /// Only these event types: a comma list, in any case
    /// (`PasskeyLoginSucceeded,PasswordRejected`).
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// `true`: leave out the staff's own reads of the account.
    hide_staff_views: Option<bool>,
}

/// One event of an account's history, in plain words.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryEntry {
    pub sequence: i64,
    pub position: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// When, in Japan time (`2026-11-24T02:17:37.000+09:00`).
    pub at: String,
    /// The same instant in UTC.
    pub at_utc: String,
    /// `customer`, `staff:<id>`, `system` or `admin`.
    pub actor: String,
    pub actor_name: Option<String>,
    pub channel: String,
    pub ip: String,
    pub user_agent: String,
    /// The event as a readable line, in English and Japanese.
    #[schema(value_type = ledger_projections::read_models::Summary)]
    pub line: ledger_domain::account::Line,
    #[schema(value_type = Object)]
    pub event: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct History {
    pub account_id: String,
    pub events: Vec<HistoryEntry>,
    pub next_cursor: Option<String>,
}

/// Every event of the account, newest first, each as a readable line.
/// `next_cursor` pages to older events; it does not move when new events
/// are appended.
#[utoipa::path(get, path = "/api/v1/staff/accounts/{account_id}/history", tag = "staff", security(("staff" = [])),
    params(AccountPath, HistoryQuery), responses((status = 200, body = History), (status = "4XX", body = ErrorBody)))]
async fn history(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<History>, ApiError> {
    staff.require(READERS).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500."));
    }
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<i64>().map_err(|_| ApiError::bad_request("cursor is not one this API gave out."))?),
        None => None,
    };
    let only = match query.event_type.as_deref() {
        Some(types) => crate::filters::event_types(types).map_err(|e| ApiError::saying(ErrorCode::InvalidFilter, e.0))?,
        None => Vec::new(),
    };
    let except = if query.hide_staff_views == Some(true) { vec!["AccountViewedByStaff".to_string()] } else { Vec::new() };
    let types = ledger_projections::projector::EventTypes { only, except };
    Ok(Json(account_history(&app, &staff, &meta, &account_id, before, limit, &types).await?))
}

/// A page of an account's history, newest first, the read on record.
pub(crate) async fn account_history(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    account_id: &AccountId,
    before: Option<i64>,
    limit: i64,
    types: &ledger_projections::projector::EventTypes,
) -> Result<History, ApiError> {
    staff.require(READERS).await?;
    record_read(app, staff, meta, account_id, "history").await?;
    let events =
        ledger_projections::projector::account_events_newest_first(&app.db.any, app.db.backend, account_id, before, limit + 1, types)
            .await?;
    let more = events.len() as i64 > limit;
    let staff_names = app.store.staff_names().await?;
    let mut out = Vec::new();
    for event in events.iter().take(limit as usize) {
        let parsed =
            ledger_domain::account::upcast::read(&event.event_type, &event.event_version, &event.payload).map_err(ApiError::internal)?;
        let line = describe(&parsed);
        let meta = event.meta().ok_or_else(|| ApiError::internal("an event without its time"))?;
        let actor_name = meta.staff_member().and_then(|id| staff_names.get(id)).cloned();
        out.push(HistoryEntry {
            sequence: event.sequence,
            position: event.position,
            event_type: event.event_type.clone(),
            at: ledger_domain::japan::japan_rfc3339(meta.at),
            at_utc: meta.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: meta.actor,
            actor_name,
            channel: meta.channel.unwrap_or_default(),
            ip: meta.ip.unwrap_or_default(),
            user_agent: meta.user_agent.unwrap_or_default(),
            line,
            event: event.payload.clone(),
        });
    }
    let next_cursor = if more { events.get(limit as usize - 1).map(|e| e.sequence.to_string()) } else { None };
    Ok(History { account_id: account_id.to_string(), events: out, next_cursor })
}

fn reason_of(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::from(ErrorCode::ReasonRequired));
    }
    Ok(reason.to_string())
}

#[derive(Deserialize, ToSchema)]
struct RevokeBody {
    /// Why, for the record (required, at most 500 characters).
    reason: Option<String>,
    /// One passkey; all when absent.
    passkey_id: Option<String>,
}

/// Deletes one passkey or all (device lost or replaced, seed 000/002/003).
#[utoipa::path(post, path = "/api/v1/staff/accounts/{account_id}/passkeys/revoke", tag = "staff", security(("staff" = [])),
    params(AccountPath), request_body = RevokeBody, responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody)))]
async fn revoke(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted = revoke_passkeys(&app, &staff, &meta, &account_id, body.passkey_id, body.reason.as_deref().unwrap_or_default()).await?;
    Ok(Json(Deleted { deleted }))
}

/// Deletes one passkey of the account or all, for the customer; ends the
/// account's sessions and notifies the customer. Returns how many.
pub(crate) async fn revoke_passkeys(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    account_id: &str,
    passkey_id: Option<String>,
    reason: &str,
) -> Result<usize, ApiError> {
    staff.require(&[Role::Support]).await?;
    let reason = reason_of(reason)?;
    let now = app.clock.now();
    let command = AccountCommand::RevokePasskeysForCustomer { staff: member(staff), passkey_id, reason, at: now };
    let done = execute(app, account_id, command, meta.metadata(&staff.actor(), now)).await?;
    let deleted = done.passkeys_revoked();
    if deleted > 0 {
        // A lost or stolen device: whatever it had signed in to ends too.
        let cause = ledger_domain::account::SessionEndCause::PasskeysRevokedBySupport;
        end_sessions(app, account_id, cause, meta.metadata(&staff.actor(), now)).await?;
    }
    crate::notify::after(app, account_id, &done).await;
    Ok(deleted)
}

#[derive(Deserialize, ToSchema)]
struct ReinstateBody {
    /// Why, for the record (required, at most 500 characters).
    reason: Option<String>,
    /// The suspended passkey.
    passkey_id: String,
}

/// Lifts a passkey's suspension (its signature counter went backwards),
/// once support has checked with the customer that the device is theirs
/// and no copy is in use; otherwise, revoke it.
#[utoipa::path(post, path = "/api/v1/staff/accounts/{account_id}/passkeys/reinstate", tag = "staff", security(("staff" = [])),
    params(AccountPath), request_body = ReinstateBody, responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn reinstate(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(body): ApiJson<ReinstateBody>,
) -> Result<StatusCode, ApiError> {
    reinstate_passkey(&app, &staff, &meta, &account_id, body.passkey_id, body.reason.as_deref().unwrap_or_default()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a passkey's suspension and notifies the customer.
pub(crate) async fn reinstate_passkey(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    account_id: &str,
    passkey_id: String,
    reason: &str,
) -> Result<(), ApiError> {
    staff.require(&[Role::Support]).await?;
    let reason = reason_of(reason)?;
    let now = app.clock.now();
    let command = AccountCommand::ReinstatePasskey { staff: member(staff), passkey_id, reason, at: now };
    let done = execute(app, account_id, command, meta.metadata(&staff.actor(), now)).await?;
    crate::notify::after(app, account_id, &done).await;
    Ok(())
}

#[derive(Deserialize, ToSchema)]
struct UnlockBody {
    /// Why, for the record (required, at most 500 characters).
    reason: Option<String>,
}

/// Lifts the lock after wrong login passwords.
#[utoipa::path(post, path = "/api/v1/staff/accounts/{account_id}/unlock", tag = "staff", security(("staff" = [])),
    params(AccountPath), request_body = UnlockBody, responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn unlock(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(body): ApiJson<UnlockBody>,
) -> Result<StatusCode, ApiError> {
    unlock_login(&app, &staff, &meta, &account_id, body.reason.as_deref().unwrap_or_default()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts the lock after wrong login passwords.
pub(crate) async fn unlock_login(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    account_id: &str,
    reason: &str,
) -> Result<(), ApiError> {
    staff.require(&[Role::Support]).await?;
    let reason = reason_of(reason)?;
    let now = app.clock.now();
    execute(app, account_id, AccountCommand::Unlock { staff: member(staff), reason, at: now }, meta.metadata(&staff.actor(), now)).await?;
    Ok(())
}
