//! The support desk (API.md, staff): find an account, read its status and
//! its whole history in plain words, delete passkeys for a lost or replaced
//! device, unlock a locked login. Every read of an account and every action
//! is an event naming the staff member.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger_domain::account::describe;
use ledger_domain::{AccountCommand, EmailAddress, StaffMember};
use ledger_projections::read_models::status_view;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{account_view_current, end_sessions, execute, ApiJson, RequestMeta, Role, Staff};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/staff/accounts", get(find))
        .route("/api/v1/staff/accounts/{account_id}", get(status))
        .route("/api/v1/staff/accounts/{account_id}/history", get(history))
        .route("/api/v1/staff/accounts/{account_id}/passkeys/revoke", post(revoke))
        .route("/api/v1/staff/accounts/{account_id}/unlock", post(unlock))
}

const READERS: &[Role] = &[Role::Support, Role::Compliance];

fn member(staff: &Staff) -> StaffMember {
    StaffMember { staff_id: staff.staff_id.clone(), name: staff.name.clone() }
}

/// Puts a staff read of `account_id` on record before answering.
async fn record_read(app: &AppState, staff: &Staff, meta: &RequestMeta, account_id: &str, view: &str) -> Result<(), ApiError> {
    let now = app.clock.now();
    let command = AccountCommand::RecordStaffRead { staff: member(staff), view: view.to_string(), at: now };
    execute(app, account_id, command, meta.metadata(&staff.actor(), now)).await?;
    Ok(())
}

#[derive(Deserialize)]
struct FindQuery {
    q: Option<String>,
}

/// By login ID (exact, or as a prefix) or by e-mail address (normalised).
async fn find(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Query(query): Query<FindQuery>,
) -> Result<Json<Value>, ApiError> {
    staff.require(READERS)?;
    let q = query.q.unwrap_or_default().trim().to_string();
    if q.is_empty() || q.chars().count() > 254 {
        return Err(ApiError::bad_request("q must be a login ID or an e-mail address."));
    }
    // A search spans accounts: everything committed before it.
    app.projector.catch_up_to_now(std::time::Duration::from_secs(5)).await?;
    let email = EmailAddress::parse(&q).ok().map(|e| e.as_str().to_string()).unwrap_or_default();
    let ids = ledger_projections::read_models::find_accounts(&app.db.any, &q, &email).await?;
    let mut accounts = Vec::new();
    for id in ids {
        record_read(&app, &staff, &meta, &id, "search").await?;
        if let Some(view) = status_view(&app.db.any, &id, true).await? {
            accounts.push(json!({
                "account_id": view.account_id,
                "login_id": view.login_id,
                "holder_kind": view.holder_kind,
                "email": view.email,
                "locked": view.locked,
                "login_method": view.login_method,
                "passkeys": view.passkeys.len(),
            }));
        }
    }
    Ok(Json(json!({ "accounts": accounts })))
}

/// The status view, with the address unmasked and deleted passkeys shown.
async fn status(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Path(account_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    staff.require(READERS)?;
    record_read(&app, &staff, &meta, &account_id, "status").await?;
    account_view_current(&app, &account_id).await?;
    let view = status_view(&app.db.any, &account_id, true).await?.ok_or_else(ApiError::not_found)?;
    let mut out = serde_json::to_value(view).map_err(ApiError::internal)?;
    out["registration"] = super::steps::registration_possibility(&app, &account_id).await?;
    // Fraud signals involving the account (a shared address, seed 000).
    out["signals"] = serde_json::to_value(ledger_projections::signals::list(&app.db.any, None, None, Some(&account_id)).await?)
        .map_err(ApiError::internal)?;
    Ok(Json(out))
}

#[derive(Deserialize)]
struct HistoryQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// Every event of the account, newest first, each as a readable line.
/// `next_cursor` pages to older events; it does not move when new events
/// are appended.
async fn history(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Path(account_id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    staff.require(READERS)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500."));
    }
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<i64>().map_err(|_| ApiError::bad_request("cursor is not one this API gave out."))?),
        None => None,
    };
    record_read(&app, &staff, &meta, &account_id, "history").await?;
    let events =
        ledger_projections::projector::account_events_newest_first(&app.db.any, app.db.backend, &account_id, before, limit + 1).await?;
    let more = events.len() as i64 > limit;
    let staff_names = app.store.staff_names().await?;
    let mut out = Vec::new();
    for event in events.iter().take(limit as usize) {
        let parsed =
            ledger_domain::account::upcast::read(&event.event_type, &event.event_version, &event.payload).map_err(ApiError::internal)?;
        let line = describe(&parsed);
        let meta = event.meta().ok_or_else(|| ApiError::internal("an event without its time"))?;
        let actor_name = meta.actor.strip_prefix("staff:").and_then(|id| staff_names.get(id)).cloned();
        out.push(json!({
            "sequence": event.sequence,
            "position": event.position,
            "type": event.event_type,
            "at": meta.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "actor": meta.actor,
            "actor_name": actor_name,
            "channel": meta.channel.unwrap_or_default(),
            "ip": meta.ip.unwrap_or_default(),
            "user_agent": meta.user_agent.unwrap_or_default(),
            "line": line,
            "event": event.payload,
        }));
    }
    let next_cursor = if more { events.get(limit as usize - 1).map(|e| e.sequence.to_string()) } else { None };
    Ok(Json(json!({ "account_id": account_id, "events": out, "next_cursor": next_cursor })))
}

fn reason_of(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::from(ErrorCode::ReasonRequired));
    }
    Ok(reason.to_string())
}

#[derive(Deserialize)]
struct RevokeBody {
    reason: String,
    passkey_id: Option<String>,
}

/// Deletes one passkey or all (device lost or replaced, seed 000/002/003).
async fn revoke(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Path(account_id): Path<String>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<Value>, ApiError> {
    staff.require(&[Role::Support])?;
    let reason = reason_of(&body.reason)?;
    let now = app.clock.now();
    let command = AccountCommand::RevokePasskeysForCustomer { staff: member(&staff), passkey_id: body.passkey_id, reason, at: now };
    let done = execute(&app, &account_id, command, meta.metadata(&staff.actor(), now)).await?;
    let deleted = done.passkeys_revoked();
    if deleted > 0 {
        // A lost or stolen device: whatever it had signed in to ends too.
        end_sessions(&app, &account_id).await?;
    }
    crate::notify::after(&app, &account_id, &done).await;
    Ok(Json(json!({ "deleted": deleted })))
}

#[derive(Deserialize)]
struct UnlockBody {
    reason: String,
}

async fn unlock(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Path(account_id): Path<String>,
    ApiJson(body): ApiJson<UnlockBody>,
) -> Result<StatusCode, ApiError> {
    staff.require(&[Role::Support])?;
    let reason = reason_of(&body.reason)?;
    let now = app.clock.now();
    execute(&app, &account_id, AccountCommand::Unlock { staff: member(&staff), reason, at: now }, meta.metadata(&staff.actor(), now))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
