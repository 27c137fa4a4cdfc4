//! The HTTP API (API.md).
//!
//! - `registrations`: first passkey registration (seed 000 p.4-7)
//! - `sessions`: passkey login, password + e-mail code login, logout
//! - `me`: the customer's own passkeys (status inquiry)
//! - `staff`: the support desk: find, status, history, revoke, unlock
//! - `compliance`: audit trail, export, verify, signals, adoption report
//! - `admin`: the core brokerage system's integration endpoints
//! - `ops`: health, readiness, the OpenAPI document, the demo page
//! - `extract`: request metadata, JSON bodies, customer and staff auth

pub mod admin;
pub mod compliance;
pub mod extract;
pub mod me;
pub mod ops;
pub mod registrations;
pub mod sessions;
pub mod staff;
pub mod steps;

use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// The whole application router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(registrations::router())
        .merge(sessions::router())
        .merge(me::router())
        .merge(admin::router())
        .merge(staff::router())
        .merge(compliance::router())
        .merge(ops::router())
        .layer(TraceLayer::new_for_http())
        // Ask Chromium browsers for the Client Hints that tell Windows 11
        // from 10 and give real Android versions (DOMAIN.md flow 10).
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::HeaderName::from_static("accept-ch"),
            axum::http::HeaderValue::from_static(crate::environment::ACCEPT_CH),
        ))
        .with_state(state)
}
