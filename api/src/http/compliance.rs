//! Compliance (API.md, staff): the audit trail with its filters, the
//! streamed export, tamper verification and the chain head, fraud signals
//! and their review, the adoption report. Every call is recorded in the
//! staff member's own stream before it is answered.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use ledger_domain::staff::{ReviewOutcome, StaffEvent};
use ledger_projections::adoption::DayRow;
use ledger_projections::audit::{AuditFilter, AuditRow, Verification};
use ledger_projections::signals::SignalView;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, RequestMeta, Role, Staff};
use super::freshness::Reflects;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::export::Format;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(export))
        .routes(routes!(verify))
        .routes(routes!(head))
        .routes(routes!(checkpoint))
        .routes(routes!(checkpoints))
        .routes(routes!(checkpoint_timestamp))
        .routes(routes!(inclusion_proof))
        .routes(routes!(consistency_proof))
        .routes(routes!(signals))
        .routes(routes!(review))
        .routes(routes!(adoption))
}

/// Records a staff act in the staff member's stream.
pub(crate) async fn record(app: &AppState, staff: &Staff, meta: &RequestMeta, event: StaffEvent) -> Result<(), ApiError> {
    let now = app.clock.now();
    app.staff_log.record(&staff.staff_id, event, meta.metadata(&staff.actor(), now)).await.map_err(ApiError::internal)?;
    Ok(())
}

fn invalid_filter(what: &'static str) -> ApiError {
    ApiError::saying(ErrorCode::InvalidFilter, what)
}

/// The filters of the audit endpoints, as given.
#[derive(Deserialize, Default, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FilterQuery {
    /// An account ID, or the account's login ID.
    pub account_id: Option<String>,
    /// Event types, comma-separated, in any case (`PasskeyRegistered,LoginLocked`);
    /// an unknown one is refused, naming it.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// `customer`, `core_system`, `system`, `staff` or `staff:<id>`.
    pub actor: Option<String>,
    /// `web`, `mobile_web`, `mobile_app`, `desktop_app` (customers), `staff`,
    /// `integration` (the core system) or `cli`.
    pub channel: Option<String>,
    /// An RFC 3339 instant or a `YYYY-MM-DD` day (JST).
    pub from: Option<String>,
    /// An RFC 3339 instant or a `YYYY-MM-DD` day (JST).
    pub to: Option<String>,
    /// `next_cursor` of the previous page (events only).
    pub cursor: Option<String>,
    /// 1 to 1000; 100 when absent (events only).
    pub limit: Option<i64>,
    /// `csv` (the default) or `jsonl` (export only).
    pub format: Option<String>,
}

impl FilterQuery {
    /// The filters, read as the command line reads its own (`crate::filters`).
    pub(crate) async fn filter(&self, app: &AppState) -> Result<AuditFilter, ApiError> {
        let given = crate::filters::GivenFilters {
            account: self.account_id.clone(),
            types: self.event_type.clone(),
            actor: self.actor.clone(),
            channel: self.channel.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        };
        match given.read(&app.store).await {
            Ok(filter) => Ok(filter),
            Err(crate::filters::ReadError::Invalid(e)) => Err(ApiError::saying(ErrorCode::InvalidFilter, e.0)),
            Err(crate::filters::ReadError::Storage(e)) => Err(e.into()),
        }
    }
}

pub(crate) const COMPLIANCE: &[Role] = &[Role::Compliance];

/// How long a compliance read waits for the read models to include every
/// event committed before it.
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A page of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TrailPage {
    pub events: Vec<AuditRow>,
    pub next_cursor: Option<String>,
}

/// The trail, oldest first from `cursor`; `next_cursor` continues it and
/// stays valid however many events arrive meanwhile.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "compliance", security(("staff" = [])), params(FilterQuery),
    responses((status = 200, body = TrailPage), (status = "4XX", body = ErrorBody)))]
async fn events(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<(Reflects, Json<TrailPage>), ApiError> {
    let (reflects, page) = trail_page(&app, &staff, &meta, &q).await?;
    Ok((reflects, Json(page)))
}

/// A page of the filtered trail, the query on record.
pub(crate) async fn trail_page(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    q: &FilterQuery,
) -> Result<(Reflects, TrailPage), ApiError> {
    staff.require(COMPLIANCE).await?;
    let filter = q.filter(app).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(invalid_filter("limit must be between 1 and 1000."));
    }
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => c.parse::<i64>().map_err(|_| invalid_filter("cursor is not one this API gave out."))?,
        None => 0,
    };
    record(app, staff, meta, StaffEvent::AuditTrailQueried { filters: crate::filters::recorded(&filter) }).await?;
    let reflects = Reflects::after_waiting(app).await?;
    let rows = ledger_projections::audit::query(&app.db.any, &filter, after, limit).await?;
    let next_cursor = if rows.len() as i64 == limit { rows.last().map(|r| r.position.to_string()) } else { None };
    Ok((reflects, TrailPage { events: rows, next_cursor }))
}

/// The filtered trail as CSV or JSON Lines, streamed.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "compliance", security(("staff" = [])), params(FilterQuery),
    responses(
        (status = 200, description = "The filtered trail, streamed as an attachment.",
            content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = "4XX", body = ErrorBody)))]
async fn export(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<FilterQuery>,
) -> Result<Response, ApiError> {
    export_response(&app, &staff, &meta, &q).await
}

/// The filtered trail as an attachment, streamed; the export on record.
pub(crate) async fn export_response(app: &AppState, staff: &Staff, meta: &RequestMeta, q: &FilterQuery) -> Result<Response, ApiError> {
    staff.require(COMPLIANCE).await?;
    let format = Format::parse(q.format.as_deref().unwrap_or("csv")).ok_or_else(|| invalid_filter("format must be csv or jsonl."))?;
    let filter = q.filter(app).await?;
    record(
        app,
        staff,
        meta,
        StaffEvent::AuditTrailExported { format: format.extension().into(), filters: crate::filters::recorded(&filter) },
    )
    .await?;
    let reflects = Reflects::after_waiting(app).await?;
    let body = Body::from_stream(crate::export::stream(app.db.any.clone(), filter, format, |_| {}));
    let name = format!("audit-trail-{}.{}", app.clock.now().format("%Y%m%dT%H%M%SZ"), format.extension());
    let mut response = Response::builder().header(header::CONTENT_TYPE, format.content_type());
    for (name, value) in reflects.headers() {
        response = response.header(name, value);
    }
    response.header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")).body(body).map_err(ApiError::internal)
}

/// Recomputes the whole chain; `{ok, checked, first_bad_position}`.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "compliance", security(("staff" = [])),
    responses((status = 200, body = Verification), (status = "4XX", body = ErrorBody)))]
async fn verify(State(app): State<AppState>, staff: Staff, meta: RequestMeta) -> Result<(Reflects, Json<Verification>), ApiError> {
    let (reflects, result) = verification(&app, &staff, &meta).await?;
    Ok((reflects, Json(result)))
}

/// The whole chain recomputed, the verification on record.
pub(crate) async fn verification(app: &AppState, staff: &Staff, meta: &RequestMeta) -> Result<(Reflects, Verification), ApiError> {
    staff.require(COMPLIANCE).await?;
    let reflects = Reflects::after_waiting(app).await?;
    let result = crate::proofs::verify_trail(app, None, |_| {}).await?;
    record(
        app,
        staff,
        meta,
        StaffEvent::AuditTrailVerified { ok: result.ok, checked: result.checked, first_bad_position: result.first_bad_position },
    )
    .await?;
    Ok((reflects, result))
}

/// The chain's newest row; both null while the trail is empty.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Head {
    pub position: Option<i64>,
    pub hash: Option<String>,
}

/// The newest row's position and hash, to anchor outside the system.
#[utoipa::path(get, path = "/api/v1/audit/head", tag = "compliance", security(("staff" = [])),
    responses((status = 200, body = Head), (status = "4XX", body = ErrorBody)))]
async fn head(State(app): State<AppState>, staff: Staff, meta: RequestMeta) -> Result<(Reflects, Json<Head>), ApiError> {
    let (reflects, head) = chain_head(&app, &staff, &meta).await?;
    Ok((reflects, Json(head)))
}

/// The chain's head, the read on record.
pub(crate) async fn chain_head(app: &AppState, staff: &Staff, meta: &RequestMeta) -> Result<(Reflects, Head), ApiError> {
    staff.require(COMPLIANCE).await?;
    let reflects = Reflects::after_waiting(app).await?;
    let head = ledger_projections::audit::head(&app.db.any).await?;
    // Every staff read of the audit trail is on record (API.md).
    record(app, staff, meta, StaffEvent::AuditHeadRead { position: head.as_ref().map(|h| h.0) }).await?;
    Ok((reflects, Head { position: head.as_ref().map(|h| h.0), hash: head.map(|h| h.1) }))
}

/// The newest signed checkpoint of the trail's Merkle tree, exactly as
/// signed (a C2SP signed note); one is made first when there is none.
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "compliance", security(("staff" = [])),
    responses((status = 200, content_type = "text/plain", body = String), (status = "4XX", body = ErrorBody)))]
async fn checkpoint(State(app): State<AppState>, staff: Staff, meta: RequestMeta) -> Result<Response, ApiError> {
    let (reflects, latest) = newest_checkpoint(&app, &staff, &meta).await?;
    let Some(latest) = latest else {
        return Err(ApiError::saying(ErrorCode::NotFound, "The audit trail is empty: there is no checkpoint yet."));
    };
    let mut response = Response::builder().header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
    for (name, value) in reflects.headers() {
        response = response.header(name, value);
    }
    response.body(Body::from(latest.note)).map_err(ApiError::internal)
}

/// The newest checkpoint, the read on record.
pub(crate) async fn newest_checkpoint(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
) -> Result<(Reflects, Option<ledger_projections::checkpoint::Stored>), ApiError> {
    staff.require(COMPLIANCE).await?;
    let reflects = Reflects::after_waiting(app).await?;
    let latest = crate::proofs::latest(app).await?;
    record(app, staff, meta, StaffEvent::AuditCheckpointRead { tree_size: latest.as_ref().map(|c| c.tree_size), timestamp: false }).await?;
    Ok((reflects, latest))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CheckpointQuery {
    /// The smallest tree size listed (default 0).
    pub from: Option<i64>,
    /// The largest tree size listed (default: all).
    pub to: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Checkpoints {
    /// Oldest first, at most 1,000.
    checkpoints: Vec<ledger_projections::checkpoint::Stored>,
}

/// The signed checkpoints with tree sizes `from ..= to`, oldest first.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "compliance", security(("staff" = [])), params(CheckpointQuery),
    responses((status = 200, body = Checkpoints), (status = "4XX", body = ErrorBody)))]
async fn checkpoints(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<CheckpointQuery>,
) -> Result<Json<Checkpoints>, ApiError> {
    staff.require(COMPLIANCE).await?;
    // Tree sizes an ECMAScript number holds exactly: the read is recorded,
    // and every recorded number must rehash under RFC 8785.
    const MAX: i64 = (1 << 53) - 1;
    let (from, to) = (q.from.unwrap_or(0), q.to.unwrap_or(MAX));
    if from < 0 || to < from || to > MAX {
        return Err(invalid_filter("from and to are tree sizes, 0 <= from <= to <= 9007199254740991"));
    }
    let checkpoints = ledger_projections::checkpoint::list(&app.db.any, from, to, 1000).await?;
    record(&app, &staff, &meta, StaffEvent::AuditCheckpointsListed { from, to: q.to.unwrap_or(-1) }).await?;
    // Only the note is a statement; `root_hash` is the ledger's index of it.
    Ok(Json(Checkpoints { checkpoints }))
}

/// A checkpoint named in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TreeSizePath {
    /// The checkpoint's tree size.
    pub tree_size: i64,
}

/// A checkpoint's RFC 3161 time-stamp reply, exactly as the time-stamp
/// authority sent it (DER): `openssl ts -verify -data NOTE -in REPLY
/// -CAfile CA` checks it against the note the checkpoint endpoints serve.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints/{tree_size}/timestamp", tag = "compliance", security(("staff" = [])),
    params(TreeSizePath),
    responses((status = 200, content_type = "application/timestamp-reply", body = Vec<u8>), (status = "4XX", body = ErrorBody)))]
async fn checkpoint_timestamp(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(tree_size): ApiPath<i64>,
) -> Result<Response, ApiError> {
    timestamp_response(&app, &staff, &meta, tree_size).await
}

/// A checkpoint's time-stamp reply as a download, the read on record.
pub(crate) async fn timestamp_response(app: &AppState, staff: &Staff, meta: &RequestMeta, tree_size: i64) -> Result<Response, ApiError> {
    staff.require(COMPLIANCE).await?;
    let reply = match ledger_projections::checkpoint::timestamp_reply(&app.db.any, tree_size).await? {
        None => return Err(ApiError::saying(ErrorCode::NotFound, "There is no checkpoint of this tree size.")),
        Some(None) => {
            let why = if app.config.tsa_url.is_some() {
                "This checkpoint has no timestamp yet: the time-stamp authority has not answered; it is asked again at the next checkpoint."
            } else {
                "This checkpoint has no timestamp: no time-stamp authority is configured (LEDGER_TSA_URL)."
            };
            return Err(ApiError::saying(ErrorCode::NotFound, why));
        }
        Some(Some(reply)) => reply,
    };
    record(app, staff, meta, StaffEvent::AuditCheckpointRead { tree_size: Some(tree_size), timestamp: true }).await?;
    Response::builder()
        .header(header::CONTENT_TYPE, "application/timestamp-reply")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"checkpoint-{tree_size}.tsr\""))
        .body(Body::from(reply))
        .map_err(ApiError::internal)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionQuery {
    /// The row's position - 1.
    pub leaf_index: i64,
    /// Default: the newest checkpoint's.
    pub tree_size: Option<i64>,
}

/// The proof that a trail row is a leaf of the tree of `tree_size` leaves.
#[utoipa::path(get, path = "/api/v1/audit/proof/inclusion", tag = "compliance", security(("staff" = [])), params(InclusionQuery),
    responses((status = 200, body = crate::proofs::Inclusion), (status = "4XX", body = ErrorBody)))]
async fn inclusion_proof(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<(Reflects, Json<crate::proofs::Inclusion>), ApiError> {
    let (reflects, proof) = inclusion(&app, &staff, &meta, q.leaf_index, q.tree_size).await?;
    Ok((reflects, Json(proof)))
}

/// An inclusion proof, on record.
pub(crate) async fn inclusion(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    leaf_index: i64,
    tree_size: Option<i64>,
) -> Result<(Reflects, crate::proofs::Inclusion), ApiError> {
    staff.require(COMPLIANCE).await?;
    let reflects = Reflects::after_waiting(app).await?;
    let proof = crate::proofs::inclusion(app, leaf_index, tree_size).await?;
    record(app, staff, meta, StaffEvent::AuditInclusionProofRead { leaf_index, tree_size: proof.tree_size }).await?;
    Ok((reflects, proof))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyQuery {
    pub from_size: i64,
    /// Default: the newest checkpoint's.
    pub to_size: Option<i64>,
}

/// The proof that the tree of `from_size` leaves is a prefix of the tree of
/// `to_size`.
#[utoipa::path(get, path = "/api/v1/audit/proof/consistency", tag = "compliance", security(("staff" = [])), params(ConsistencyQuery),
    responses((status = 200, body = crate::proofs::Consistency), (status = "4XX", body = ErrorBody)))]
async fn consistency_proof(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<(Reflects, Json<crate::proofs::Consistency>), ApiError> {
    staff.require(COMPLIANCE).await?;
    let reflects = Reflects::after_waiting(&app).await?;
    let proof = crate::proofs::consistency(&app, q.from_size, q.to_size).await?;
    record(&app, &staff, &meta, StaffEvent::AuditConsistencyProofRead { from_size: proof.from_size, to_size: proof.to_size }).await?;
    Ok((reflects, Json(proof)))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SignalQuery {
    /// `open`, `confirmed` or `dismissed`.
    pub status: Option<String>,
    /// `shared_email`, ...
    pub kind: Option<String>,
    pub account_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Signals {
    signals: Vec<SignalView>,
}

/// Fraud signals, newest first.
#[utoipa::path(get, path = "/api/v1/signals", tag = "compliance", security(("staff" = [])), params(SignalQuery),
    responses((status = 200, body = Signals), (status = "4XX", body = ErrorBody)))]
async fn signals(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<SignalQuery>,
) -> Result<(Reflects, Json<Signals>), ApiError> {
    let (reflects, signals) = signal_list(&app, &staff, &meta, &q).await?;
    Ok((reflects, Json(Signals { signals })))
}

/// The fraud signals of the filter, newest first, the listing on record.
pub(crate) async fn signal_list(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    q: &SignalQuery,
) -> Result<(Reflects, Vec<SignalView>), ApiError> {
    staff.require(COMPLIANCE).await?;
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if !matches!(s, "open" | "confirmed" | "dismissed") {
            return Err(invalid_filter("status must be open, confirmed or dismissed."));
        }
    }
    let kind = q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty());
    if let Some(kind) = kind {
        if !ledger_domain::words::SIGNAL_KINDS.contains(&kind) {
            return Err(ApiError::saying(
                ErrorCode::InvalidFilter,
                format!("unknown signal kind {kind:?}: one of {}.", ledger_domain::words::SIGNAL_KINDS.join(", ")),
            ));
        }
    }
    // An account by its ID or its login ID, as the trail's filters read it.
    let given = crate::filters::GivenFilters { account: q.account_id.clone().filter(|a| !a.trim().is_empty()), ..Default::default() };
    let account = match given.read(&app.store).await {
        Ok(filter) => filter.account_id,
        Err(crate::filters::ReadError::Invalid(e)) => return Err(ApiError::saying(ErrorCode::InvalidFilter, e.0)),
        Err(crate::filters::ReadError::Storage(e)) => return Err(e.into()),
    };
    let filters = json!({ "status": q.status, "kind": kind, "account_id": account });
    record(app, staff, meta, StaffEvent::SignalsListed { filters }).await?;
    let reflects = Reflects::after_waiting(app).await?;
    let list =
        ledger_projections::signals::list(&app.db.any, q.status.as_deref().filter(|s| !s.is_empty()), kind, account.as_deref()).await?;
    Ok((reflects, list))
}

#[derive(Deserialize, ToSchema)]
struct ReviewBody {
    #[schema(value_type = super::contract::ReviewOutcomeName)]
    outcome: ReviewOutcome,
    /// Required, at most 2000 characters.
    note: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct Reviewed {
    signal: Option<SignalView>,
}

/// Compliance's verdict on a signal, as an event.
#[utoipa::path(post, path = "/api/v1/signals/{signal_id}/review", tag = "compliance", security(("staff" = [])),
    params(("signal_id" = String, Path, description = "From the signal list.")), request_body = ReviewBody,
    responses((status = 200, body = Reviewed), (status = "4XX", body = ErrorBody)))]
async fn review(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    Path(signal_id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<Reviewed>, ApiError> {
    let signal = review_signal(&app, &staff, &meta, &signal_id, body.outcome, &body.note).await?;
    Ok(Json(Reviewed { signal }))
}

/// Compliance's verdict on a signal, recorded; the signal as it now stands.
pub(crate) async fn review_signal(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    signal_id: &str,
    outcome: ReviewOutcome,
    note: &str,
) -> Result<Option<SignalView>, ApiError> {
    staff.require(COMPLIANCE).await?;
    let note = note.trim().to_string();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(ApiError::from(ErrorCode::NoteRequired));
    }
    app.projector.catch_up_to_now(WAIT).await?;
    let exists = ledger_projections::signals::list(&app.db.any, None, None, None).await?.into_iter().any(|s| s.signal_id == signal_id);
    if !exists {
        return Err(ApiError::not_found());
    }
    record(app, staff, meta, StaffEvent::SignalReviewed { signal_id: signal_id.to_string(), outcome, note }).await?;
    app.projector.catch_up_to_now(WAIT).await?;
    Ok(ledger_projections::signals::list(&app.db.any, None, None, None).await?.into_iter().find(|s| s.signal_id == signal_id))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReportQuery {
    /// `YYYY-MM-DD` (JST); 30 days ago when absent.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (JST); today when absent.
    pub to: Option<String>,
}

/// The adoption report.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Adoption {
    pub from: String,
    pub to: String,
    /// Always `Asia/Tokyo`.
    pub timezone: &'static str,
    pub days: Vec<DayRow>,
    /// The whole period per channel, then `all`.
    pub totals: Vec<ledger_projections::adoption::PeriodTotals>,
    /// Accounts refused registration in the period that still have no
    /// passkey: whom to contact, and why.
    pub to_contact: Vec<ledger_projections::adoption::ToContact>,
}

/// Per JST day and channel; the last 30 days by default.
#[utoipa::path(get, path = "/api/v1/reports/adoption", tag = "compliance", security(("staff" = [])), params(ReportQuery),
    responses((status = 200, body = Adoption), (status = "4XX", body = ErrorBody)))]
async fn adoption(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<(Reflects, Json<Adoption>), ApiError> {
    let (reflects, report) = adoption_report(&app, &staff, &meta, q).await?;
    Ok((reflects, Json(report)))
}

/// The adoption report of a period, the read on record.
pub(crate) async fn adoption_report(
    app: &AppState,
    staff: &Staff,
    meta: &RequestMeta,
    q: ReportQuery,
) -> Result<(Reflects, Adoption), ApiError> {
    staff.require(COMPLIANCE).await?;
    let today = ledger_projections::adoption::jst_day(app.clock.now());
    let day = |s: Option<String>, default: String| -> Result<String, ApiError> {
        let s = s.filter(|s| !s.is_empty()).unwrap_or(default);
        NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| invalid_filter("from/to must be YYYY-MM-DD (JST days)."))?;
        Ok(s)
    };
    let month_ago = ledger_projections::adoption::jst_day(app.clock.now() - chrono::Duration::days(30));
    let (from, to) = (day(q.from, month_ago)?, day(q.to, today)?);
    if from > to {
        return Err(invalid_filter("from must not be after to (both days are included)."));
    }
    record(app, staff, meta, StaffEvent::AdoptionReportRead { from: from.clone(), to: to.clone() }).await?;
    let reflects = Reflects::after_waiting(app).await?;
    let days = ledger_projections::adoption::report(&app.db.any, &from, &to).await?;
    let totals = ledger_projections::adoption::totals(&app.db.any, &days, &from, &to).await?;
    let to_contact = ledger_projections::adoption::to_contact(&app.db.any, &from, &to).await?;
    Ok((reflects, Adoption { from, to, timezone: "Asia/Tokyo", days, totals, to_contact }))
}
