//! Compliance (API.md, staff): the audit trail with its filters, the
//! streamed export, tamper verification and the chain head, fraud signals
//! and their review, the adoption report. Every call is recorded in the
//! staff member's own stream before it is answered.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate};
use ledger_domain::staff::{ReviewOutcome, StaffEvent};
use ledger_projections::audit::AuditFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, RequestMeta, Role, Staff};
use crate::error::{ApiError, ErrorCode};
use crate::export::Format;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit/events", get(events))
        .route("/api/v1/audit/export", get(export))
        .route("/api/v1/audit/verify", get(verify))
        .route("/api/v1/audit/head", get(head))
        .route("/api/v1/signals", get(signals))
        .route("/api/v1/signals/{signal_id}/review", post(review))
        .route("/api/v1/reports/adoption", get(adoption))
}

/// Records a staff act in the staff member's stream.
async fn record(app: &AppState, staff: &Staff, meta: &RequestMeta, event: StaffEvent) -> Result<(), ApiError> {
    let now = app.clock.now();
    app.staff_log.record(&staff.staff_id, event, meta.metadata(&staff.actor(), now)).await.map_err(ApiError::internal)?;
    Ok(())
}

fn invalid_filter(what: &'static str) -> ApiError {
    ApiError::saying(ErrorCode::InvalidFilter, what)
}

/// The filters of the audit endpoints, as given.
#[derive(Deserialize, Default)]
struct FilterQuery {
    account_id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    actor: Option<String>,
    channel: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    format: Option<String>,
}

/// An instant: RFC 3339, or a date (the start of that day in JST).
fn instant(s: &str) -> Result<i64, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let day =
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| invalid_filter("from/to must be RFC 3339 instants or YYYY-MM-DD dates."))?;
    let start = day.and_hms_opt(0, 0, 0).ok_or_else(|| invalid_filter("bad date"))?;
    Ok((start.and_utc() - chrono::Duration::hours(9)).timestamp_millis())
}

impl FilterQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        let nonempty = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(c) = nonempty(&self.channel) {
            c.parse::<ledger_domain::Channel>()
                .map_err(|_| invalid_filter("channel must be web, mobile_web, mobile_app or desktop_app."))?;
        }
        Ok(AuditFilter {
            account_id: nonempty(&self.account_id),
            event_type: nonempty(&self.event_type),
            actor: nonempty(&self.actor),
            channel: nonempty(&self.channel),
            from: nonempty(&self.from).map(|s| instant(&s)).transpose()?,
            to: nonempty(&self.to).map(|s| instant(&s)).transpose()?,
        })
    }

    /// The filters as recorded in the staff event (no cursor, no limit).
    fn recorded(&self) -> Result<Value, ApiError> {
        serde_json::to_value(self.filter()?)
            .map(|v| {
                Value::Object(
                    v.as_object()
                        .map(|m| m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                )
            })
            .map_err(ApiError::internal)
    }
}

const COMPLIANCE: &[Role] = &[Role::Compliance];

/// How long a compliance read waits for the read models to include every
/// event committed before it.
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The trail, oldest first from `cursor`; `next_cursor` continues it and
/// stays valid however many events arrive meanwhile.
async fn events(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, ApiError> {
    staff.require(COMPLIANCE)?;
    let filter = q.filter()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(invalid_filter("limit must be between 1 and 1000."));
    }
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => c.parse::<i64>().map_err(|_| invalid_filter("cursor is not one this API gave out."))?,
        None => 0,
    };
    record(&app, &staff, &meta, StaffEvent::AuditTrailQueried { filters: q.recorded()? }).await?;
    app.projector.catch_up_to_now(WAIT).await?;
    let rows = ledger_projections::audit::query(&app.db.any, &filter, after, limit).await?;
    let next_cursor = if rows.len() as i64 == limit { rows.last().map(|r| r.position.to_string()) } else { None };
    Ok(Json(json!({ "events": rows, "next_cursor": next_cursor })))
}

/// The filtered trail as CSV or JSON Lines, streamed.
async fn export(State(app): State<AppState>, staff: Staff, meta: RequestMeta, Query(q): Query<FilterQuery>) -> Result<Response, ApiError> {
    staff.require(COMPLIANCE)?;
    let format = Format::parse(q.format.as_deref().unwrap_or("csv")).ok_or_else(|| invalid_filter("format must be csv or jsonl."))?;
    let filter = q.filter()?;
    record(&app, &staff, &meta, StaffEvent::AuditTrailExported { format: format.extension().into(), filters: q.recorded()? }).await?;
    app.projector.catch_up_to_now(WAIT).await?;
    let body = Body::from_stream(crate::export::stream(app.db.any.clone(), filter, format, |_| {}));
    let name = format!("audit-trail-{}.{}", app.clock.now().format("%Y%m%dT%H%M%SZ"), format.extension());
    Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
        .body(body)
        .map_err(ApiError::internal)
}

/// Recomputes the whole chain; `{ok, checked, first_bad_position}`.
async fn verify(State(app): State<AppState>, staff: Staff, meta: RequestMeta) -> Result<Json<Value>, ApiError> {
    staff.require(COMPLIANCE)?;
    app.projector.catch_up_to_now(WAIT).await?;
    let applied = app.projector.applied().await?;
    let result = ledger_projections::audit::verify(&app.db.any, app.db.backend, applied, |_| {}).await?;
    record(
        &app,
        &staff,
        &meta,
        StaffEvent::AuditTrailVerified { ok: result.ok, checked: result.checked, first_bad_position: result.first_bad_position },
    )
    .await?;
    Ok(Json(serde_json::to_value(result).map_err(ApiError::internal)?))
}

/// The newest row's position and hash, to anchor outside the system.
async fn head(State(app): State<AppState>, staff: Staff, meta: RequestMeta) -> Result<Json<Value>, ApiError> {
    staff.require(COMPLIANCE)?;
    app.projector.catch_up_to_now(WAIT).await?;
    let head = ledger_projections::audit::head(&app.db.any).await?;
    // Every staff read of the audit trail is on record (API.md).
    record(&app, &staff, &meta, StaffEvent::AuditHeadRead { position: head.as_ref().map(|h| h.0) }).await?;
    Ok(Json(json!({ "position": head.as_ref().map(|h| h.0), "hash": head.map(|h| h.1) })))
}

#[derive(Deserialize)]
struct SignalQuery {
    status: Option<String>,
    kind: Option<String>,
    account_id: Option<String>,
}

async fn signals(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Query(q): Query<SignalQuery>,
) -> Result<Json<Value>, ApiError> {
    staff.require(COMPLIANCE)?;
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if !matches!(s, "open" | "confirmed" | "dismissed") {
            return Err(invalid_filter("status must be open, confirmed or dismissed."));
        }
    }
    let filters = json!({ "status": q.status, "kind": q.kind, "account_id": q.account_id });
    record(&app, &staff, &meta, StaffEvent::SignalsListed { filters }).await?;
    app.projector.catch_up_to_now(WAIT).await?;
    let list = ledger_projections::signals::list(&app.db.any, q.status.as_deref(), q.kind.as_deref(), q.account_id.as_deref()).await?;
    Ok(Json(json!({ "signals": list })))
}

#[derive(Deserialize)]
struct ReviewBody {
    outcome: ReviewOutcome,
    note: String,
}

/// Compliance's verdict on a signal, as an event.
async fn review(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Path(signal_id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<Value>, ApiError> {
    staff.require(COMPLIANCE)?;
    let note = body.note.trim().to_string();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(ApiError::from(ErrorCode::NoteRequired));
    }
    app.projector.catch_up_to_now(WAIT).await?;
    let exists = ledger_projections::signals::list(&app.db.any, None, None, None).await?.into_iter().any(|s| s.signal_id == signal_id);
    if !exists {
        return Err(ApiError::not_found());
    }
    record(&app, &staff, &meta, StaffEvent::SignalReviewed { signal_id: signal_id.clone(), outcome: body.outcome, note }).await?;
    app.projector.catch_up_to_now(WAIT).await?;
    let signal = ledger_projections::signals::list(&app.db.any, None, None, None).await?.into_iter().find(|s| s.signal_id == signal_id);
    Ok(Json(json!({ "signal": signal })))
}

#[derive(Deserialize)]
struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
}

/// Per JST day and channel; the last 30 days by default.
async fn adoption(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Query(q): Query<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    staff.require(COMPLIANCE)?;
    let today = ledger_projections::adoption::jst_day(app.clock.now());
    let day = |s: Option<String>, default: String| -> Result<String, ApiError> {
        let s = s.filter(|s| !s.is_empty()).unwrap_or(default);
        NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| invalid_filter("from/to must be YYYY-MM-DD (JST days)."))?;
        Ok(s)
    };
    let month_ago = ledger_projections::adoption::jst_day(app.clock.now() - chrono::Duration::days(30));
    let (from, to) = (day(q.from, month_ago)?, day(q.to, today)?);
    record(&app, &staff, &meta, StaffEvent::AdoptionReportRead { from: from.clone(), to: to.clone() }).await?;
    app.projector.catch_up_to_now(WAIT).await?;
    let days = ledger_projections::adoption::report(&app.db.any, &from, &to).await?;
    Ok(Json(json!({ "from": from, "to": to, "timezone": "Asia/Tokyo", "days": days })))
}
