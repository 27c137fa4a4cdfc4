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

use axum::extract::{MatchedPath, Request};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
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
        // Ask Chromium browsers for the Client Hints that tell Windows 11
        // from 10 and give real Android versions (DOMAIN.md flow 10).
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::HeaderName::from_static("accept-ch"),
            axum::http::HeaderValue::from_static(crate::environment::ACCEPT_CH),
        ))
        // Outermost last: an unfit X-Request-Id is dropped, a missing one
        // made (a UUID), the span names it, the answer echoes it, and the
        // events the request records carry it (RequestMeta).
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unfit_request_id))
        .with_state(state)
}

/// The longest X-Request-Id kept from a client.
pub const REQUEST_ID_MAX: usize = 64;

/// A client's X-Request-Id is kept only when it is short and plain (letters,
/// digits, `-_.:`); any other is replaced by one of the ledger's own, so a
/// header can neither bloat every event's metadata nor smuggle text into
/// logs.
async fn drop_unfit_request_id(mut req: Request) -> Request {
    let fit = |v: &axum::http::HeaderValue| {
        let bytes = v.as_bytes();
        !bytes.is_empty() && bytes.len() <= REQUEST_ID_MAX && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    };
    if req.headers().get("x-request-id").is_some_and(|v| !fit(v)) {
        req.headers_mut().remove("x-request-id");
    }
    req
}

/// The span of one request: method, the route's template (never the
/// concrete path or query, which may name an account or an address) and
/// the request ID.
fn request_span(req: &Request) -> tracing::Span {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("unmatched");
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!("request", method = %req.method(), route, request_id = id)
}
