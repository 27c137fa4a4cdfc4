//! The HTTP API (API.md).
//!
//! - `registrations`: first passkey registration (seed 000 p.4-7)
//! - `sessions`: passkey login, password + e-mail code login, logout
//! - `me`: the customer's own passkeys (status inquiry)
//! - `admin`: the core brokerage system's integration endpoints
//! - `ops`: health, readiness, the OpenAPI document, the demo page
//! - `extract`: request metadata, JSON bodies, customer and staff auth

pub mod admin;
pub mod extract;
pub mod me;
pub mod ops;
pub mod registrations;
pub mod sessions;

use axum::Router;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// The whole application router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(registrations::router())
        .merge(sessions::router())
        .merge(me::router())
        .merge(admin::router())
        .merge(ops::router())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
