//! The customer's own security activity and signed-in devices (API.md,
//! "my security activity and sessions"): what happened on the account, in
//! their words; the sessions open on it, each of which they can end; and
//! "this wasn't me", which ends the other sessions, revokes the passkey the
//! reported event used, raises a fraud signal and tells the customer, in
//! one command. The activity is read from the log itself, never from a
//! read model that may lag: what the customer just did is always there.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ledger_domain::account::activity::{for_customer, CustomerActivity, CUSTOMER_EVENT_TYPES};
use ledger_domain::account::SessionEndCause;
use ledger_domain::{AccountCommand, AccountEvent, Environment};
use ledger_projections::event::LoggedEvent;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{execute_with, session_id_of, ApiPath, ApiQuery, Customer, RequestMeta};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;
use crate::storage::{OpenSession, Store};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_activity))
        .routes(routes!(report))
        .routes(routes!(my_sessions, end_other_sessions))
        .routes(routes!(end_session))
}

/// A device as people name it, in both languages ("iPhone（Safari）").
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceName {
    pub ja: String,
    pub en: String,
}

fn device_of(environment: &Environment) -> DeviceName {
    let (en, ja) = environment.device_words();
    DeviceName { ja, en }
}

/// One item of the customer's security activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityItem {
    /// The event's ID: what `POST /api/v1/me/activity/{event_id}/report` takes.
    pub event_id: String,
    /// When, in UTC (`2026-11-24T00:12:03.000Z`); pages show Japan time.
    pub at: String,
    /// `login`, `login_failed`, `code_issued`, `passkey_added`,
    /// `passkey_deleted`, `locked`, `sessions_ended`, `reported`, ...
    pub kind: String,
    pub line_ja: String,
    pub line_en: String,
    /// The channel of the request (`web`, `mobile_app`, ...), if any.
    pub channel: Option<String>,
    /// The device, as the request described it ("Chrome 148 / Windows 11 (PC)").
    pub environment: Option<String>,
    /// The same device as people name it.
    pub device: Option<DeviceName>,
    pub ip: Option<String>,
    /// The login that opened the session making this request.
    pub this_session: bool,
    /// Whether "this wasn't me" can be said of it.
    pub reportable: bool,
    /// Whether the customer has reported it.
    pub reported: bool,
}

/// A page of the activity, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activity {
    pub items: Vec<ActivityItem>,
    /// Older items: pass it as `cursor`. It does not move when new events
    /// are appended. Null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ActivityQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 100; 20 when absent.
    limit: Option<i64>,
}

/// The account's events as the customer sees them, newest first: logins
/// (every method, success and failure), codes, passkeys added, declined
/// and deleted (by the support desk named as such), locks, e-mail and
/// password changes, notices sent. Staff reads are not shown.
#[utoipa::path(get, path = "/api/v1/me/activity", tag = "me", security(("customer" = [])), params(ActivityQuery),
    responses((status = 200, body = Activity), (status = "4XX", body = ErrorBody)))]
async fn my_activity(
    State(app): State<AppState>,
    customer: Customer,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<Activity>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100."));
    }
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => {
            Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::bad_request("cursor is not one this API gave out."))?)
        }
        None => None,
    };
    let types = ledger_projections::projector::EventTypes {
        only: CUSTOMER_EVENT_TYPES.iter().map(|t| t.to_string()).collect(),
        except: Vec::new(),
    };
    let events = ledger_projections::projector::account_events_newest_first(
        &app.db.any,
        app.db.backend,
        &customer.account_id,
        before,
        limit + 1,
        &types,
    )
    .await?;
    let account = app.ledger.load(&customer.account_id).await.map_err(ApiError::internal)?;
    let mut items = Vec::new();
    for event in events.iter().take(limit as usize) {
        let Some((activity, meta)) = shown(&app, event)? else { continue };
        let event_id = ledger_projections::audit::event_id("account", &customer.account_id, event.sequence);
        let this_session = customer.opened_by == Some(event.sequence);
        items.push(ActivityItem {
            reported: account.report_of(&event_id).is_some(),
            event_id,
            at: meta.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            kind: activity.kind.to_string(),
            line_ja: activity.line.ja,
            line_en: activity.line.en,
            channel: meta.channel.filter(|c| !c.is_empty()),
            environment: activity.environment.as_ref().map(Environment::describe),
            device: activity.environment.as_ref().map(device_of),
            ip: meta.ip.filter(|ip| !ip.is_empty()),
            this_session,
            reportable: activity.reportable && !this_session,
        });
    }
    let more = events.len() as i64 > limit;
    let next_cursor = if more { events.get(limit as usize - 1).map(|e| e.sequence.to_string()) } else { None };
    Ok(Json(Activity { items, next_cursor }))
}

/// A logged event as the customer's activity shows it, with its metadata.
fn shown(app: &AppState, event: &LoggedEvent) -> Result<Option<(CustomerActivity, ledger_domain::EventMetadata)>, ApiError> {
    let parsed =
        ledger_domain::account::upcast::read(&event.event_type, &event.event_version, &event.payload).map_err(ApiError::internal)?;
    let meta = event.meta().ok_or_else(|| ApiError::internal("an event without its time"))?;
    Ok(for_customer(&parsed, &app.config.brokerage.terms).map(|a| (a, meta)))
}

/// A signed-in session of the customer's.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionItem {
    /// An ID for this list and `DELETE /api/v1/me/sessions/{session_id}`;
    /// it is not the token and cannot be used as one.
    pub session_id: String,
    pub created_at: String,
    /// When it was last used (to the minute).
    pub last_seen_at: Option<String>,
    /// `passkey`, `cross_device`, `security_key`, `password_and_email_code`, ...
    pub method: String,
    pub method_ja: String,
    pub method_en: String,
    pub channel: Option<String>,
    pub environment: Option<String>,
    pub device: Option<DeviceName>,
    pub ip: Option<String>,
    /// The session making this request.
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Sessions {
    /// The newest [`SESSIONS_SHOWN`] (the current one always among them).
    pub items: Vec<SessionItem>,
    /// How many sessions are open in all.
    pub total: usize,
}

/// The most sessions the list shows: "sign out all other devices" ends the rest.
pub const SESSIONS_SHOWN: usize = 100;

fn utc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn session_item(session: &OpenSession, customer: &Customer) -> SessionItem {
    let environment: Option<Environment> = session.environment.as_deref().and_then(|e| serde_json::from_str(e).ok());
    let (method_en, method_ja) = match session.method.as_str() {
        "passkey_registration" => ("registering a passkey", "パスキーの登録"),
        other => ledger_domain::account::login_words(other),
    };
    SessionItem {
        session_id: session_id_of(&session.token_hash),
        created_at: utc(session.created_at),
        last_seen_at: session.last_seen_at.map(utc),
        method: session.method.clone(),
        method_ja: method_ja.to_string(),
        method_en: method_en.to_string(),
        channel: session.channel.clone(),
        environment: environment.as_ref().map(Environment::describe),
        device: environment.as_ref().map(device_of),
        ip: session.ip.clone(),
        current: session.token_hash == customer.token_hash,
    }
}

/// The customer's open sessions, newest first, the current one marked.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me", security(("customer" = [])),
    responses((status = 200, body = Sessions), (status = "4XX", body = ErrorBody)))]
async fn my_sessions(State(app): State<AppState>, customer: Customer) -> Result<Json<Sessions>, ApiError> {
    let open = app.store.open_sessions(&customer.account_id, app.clock.now()).await?;
    let total = open.len();
    let mut items: Vec<SessionItem> = open.iter().take(SESSIONS_SHOWN).map(|s| session_item(s, &customer)).collect();
    if !items.iter().any(|s| s.current) {
        if let Some(current) = open.iter().find(|s| s.token_hash == customer.token_hash) {
            items.pop();
            items.insert(0, session_item(current, &customer));
        }
    }
    Ok(Json(Sessions { items, total }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ScopeQuery {
    /// `others`: every session but the one making the request.
    scope: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ended {
    pub ended: usize,
}

/// Ends every session but the current one ("sign out other devices").
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "me", security(("customer" = [])), params(ScopeQuery),
    responses((status = 200, body = Ended), (status = "4XX", body = ErrorBody)))]
async fn end_other_sessions(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Json<Ended>, ApiError> {
    if query.scope.as_deref() != Some("others") {
        return Err(ApiError::bad_request("scope must be others (every session but this one)."));
    }
    let others = other_sessions(&app, &customer).await?;
    end_by_customer(&app, &customer, &meta, &others).await?;
    Ok(Json(Ended { ended: others.len() }))
}

#[derive(Deserialize)]
struct SessionPath {
    session_id: String,
}

/// Ends one session (a device the customer no longer uses, or this one).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{session_id}", tag = "me", security(("customer" = [])),
    params(("session_id" = String, Path, description = "From the list of sessions.")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
async fn end_session(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    ApiPath(path): ApiPath<SessionPath>,
) -> Result<StatusCode, ApiError> {
    let open = app.store.open_sessions(&customer.account_id, app.clock.now()).await?;
    let session = open.into_iter().find(|s| session_id_of(&s.token_hash) == path.session_id).ok_or_else(ApiError::not_found)?;
    end_by_customer(&app, &customer, &meta, &[session.token_hash]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token hashes of the customer's open sessions but the one making the request.
async fn other_sessions(app: &AppState, customer: &Customer) -> Result<Vec<String>, ApiError> {
    let open = app.store.open_sessions(&customer.account_id, app.clock.now()).await?;
    Ok(open.into_iter().filter(|s| s.token_hash != customer.token_hash).map(|s| s.token_hash).collect())
}

/// Ends the sessions of `token_hashes` and records it, in one transaction.
async fn end_by_customer(app: &AppState, customer: &Customer, meta: &RequestMeta, token_hashes: &[String]) -> Result<(), ApiError> {
    if token_hashes.is_empty() {
        return Ok(());
    }
    let now = app.clock.now();
    let sessions = u32::try_from(token_hashes.len()).unwrap_or(u32::MAX);
    let command = AccountCommand::RecordSessionsEnded { sessions, cause: SessionEndCause::EndedByCustomer, at: now };
    let also = |_: &[AccountEvent], _| token_hashes.iter().map(|h| Store::ending_session(h, now)).collect();
    execute_with(app, &customer.account_id, command, meta.metadata("customer", now), also).await?;
    Ok(())
}

/// What the customer may add to a report.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReportBody {
    /// In the customer's words, at most 500 characters.
    pub note: Option<String>,
}

/// What a report did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reported {
    /// Other sessions ended (every session but this one).
    pub sessions_ended: u32,
    /// Passkeys revoked: the one the reported event used, unless this
    /// session was opened with it.
    pub passkeys_revoked: usize,
    /// The fraud signal raised for the brokerage's staff.
    pub signal_id: String,
}

#[derive(Deserialize)]
struct EventPath {
    event_id: String,
}

/// "This wasn't me": the ledger ends every other session, revokes the
/// passkey the event used (unless this session was opened with it), raises
/// the fraud signal `customer_reported_activity`, mails the customer, and
/// answers what it did. Reporting the same event again answers the first
/// report's outcome.
#[utoipa::path(post, path = "/api/v1/me/activity/{event_id}/report", tag = "me", security(("customer" = [])),
    params(("event_id" = String, Path, description = "From the activity list.")),
    request_body(content = Option<ReportBody>, description = "Optional."),
    responses((status = 200, body = Reported), (status = "4XX", body = ErrorBody)))]
async fn report(
    State(app): State<AppState>,
    customer: Customer,
    meta: RequestMeta,
    ApiPath(path): ApiPath<EventPath>,
    body: axum::body::Bytes,
) -> Result<Json<Reported>, ApiError> {
    let body: ReportBody = super::steps::optional_body(&body)?;
    let note = match body.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > 500 => return Err(ApiError::bad_request("note is at most 500 characters.")),
        Some(n) if n.chars().any(char::is_control) => return Err(ApiError::bad_request("note may not hold control characters.")),
        n => n.map(str::to_string),
    };
    let account_id = customer.account_id.to_string();
    let signal_of = |sequence| ledger_projections::signals::reported_signal_id(&account_id, sequence);
    let answer = |r: &ledger_domain::account::ActivityReport| Reported {
        sessions_ended: r.sessions_ended,
        passkeys_revoked: r.passkeys_revoked.len(),
        signal_id: signal_of(r.sequence),
    };
    // Every ID this API gives out is a UUID: anything else is no event.
    let event_id = uuid::Uuid::parse_str(&path.event_id).map_err(|_| ApiError::not_found())?.hyphenated().to_string();
    let account = app.ledger.load(&account_id).await.map_err(ApiError::internal)?;
    if let Some(first) = account.report_of(&event_id) {
        return Ok(Json(answer(first)));
    }
    let sequence =
        ledger_projections::projector::account_sequence_of(&app.db.any, &account_id, &event_id).await?.ok_or_else(ApiError::not_found)?;
    let event = ledger_projections::projector::account_event_at(&app.db.any, app.db.backend, &account_id, sequence)
        .await?
        .ok_or_else(ApiError::not_found)?;
    // What the customer is not shown, they cannot have seen to report.
    let Some((activity, _)) = shown(&app, &event)? else { return Err(ApiError::not_found()) };
    if !activity.reportable || customer.opened_by == Some(sequence) {
        return Err(ApiError::from(ErrorCode::NotReportable));
    }
    let now = app.clock.now();
    let others = other_sessions(&app, &customer).await?;
    let command = AccountCommand::ReportActivity {
        event_id: event_id.clone(),
        sequence,
        event_type: event.event_type.clone(),
        passkey_id: activity.passkey_id,
        reporting_passkey: customer.passkey_id.clone(),
        note,
        sessions_ended: u32::try_from(others.len()).unwrap_or(u32::MAX),
        at: now,
    };
    let also = |events: &[AccountEvent], _| {
        if events.iter().any(|e| matches!(e, AccountEvent::SuspiciousActivityReported { .. })) {
            others.iter().map(|h| Store::ending_session(h, now)).collect()
        } else {
            Vec::new()
        }
    };
    let done = execute_with(&app, &account_id, command, meta.metadata("customer", now), also).await?;
    crate::notify::after(&app, &account_id, &done).await;
    let first = done.account.report_of(&event_id).ok_or_else(|| ApiError::internal("a report neither recorded nor found"))?;
    Ok(Json(answer(first)))
}
