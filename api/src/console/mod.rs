//! The staff console at `/console`: the support desk, compliance and
//! administration in the browser, server-rendered (maud), in Japanese with
//! the English beside it. Staff sign in with passkeys of their own,
//! enrolled from a one-time link (`ledger staff add`); the session is a
//! cookie (HttpOnly, SameSite=Strict, `__Host-` and Secure over https),
//! ended after 15 idle minutes and 8 hours at most; every form that
//! changes something carries a token derived from the session (CSRF).
//!
//! Every page acts through the same functions as the staff API, so a role
//! opens the same things in both, every read and act is recorded the same
//! way, and a refusal for the role is on record as `StaffAccessRefused`.
//!
//! - `auth`: enrolment, sign-in, sign-out, the session extractor
//! - `support`: search, the account page, its actions
//! - `compliance`: audit trail, export, verification, signals, adoption
//! - `admin`: staff members, disabling, new enrolment links
//! - `page`: the layout, words and small helpers every page uses

mod admin;
mod auth;
mod compliance;
mod page;
mod support;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub use auth::{issue_link, ConsoleStaff};

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(support::home))
        .route("/console/sign-in", get(auth::sign_in_page))
        .route("/console/sign-in/options", post(auth::sign_in_options))
        .route("/console/sign-in/finish", post(auth::sign_in_finish))
        .route("/console/sign-out", post(auth::sign_out))
        .route("/console/enrol/{link}", get(auth::enrol_page))
        .route("/console/enrol/{link}/options", post(auth::enrol_options))
        .route("/console/enrol/{link}/finish", post(auth::enrol_finish))
        .route("/console/accounts", get(support::search_page).post(support::search))
        .route("/console/accounts/{account_id}", get(support::account))
        .route("/console/accounts/{account_id}/actions", post(support::action))
        .route("/console/audit", get(compliance::trail))
        .route("/console/audit/export", get(compliance::export))
        .route("/console/audit/verify", get(compliance::verify))
        .route("/console/proofs", get(compliance::proofs))
        .route("/console/proofs/{tree_size}/timestamp", get(compliance::timestamp))
        .route("/console/signals", get(compliance::signals))
        .route("/console/signals/{signal_id}", get(compliance::signal))
        .route("/console/signals/{signal_id}/review", post(compliance::review))
        .route("/console/adoption", get(compliance::adoption))
        .route("/console/staff", get(admin::staff))
        .route("/console/streams", get(admin::streams))
        .route("/console/staff/{staff_id}/disable", post(admin::disable))
        .route("/console/staff/{staff_id}/link", post(admin::link))
        .route("/console/console.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("../../assets/console.js")) }))
        .route("/console/console.css", get(|| async { asset("text/css; charset=utf-8", include_str!("../../assets/console.css")) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}
