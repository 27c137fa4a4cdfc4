//! The HTTP API (API.md).
//!
//! - `registrations`: first passkey registration (seed 000 p.4-7)
//! - `sessions`: passkey login, password + e-mail code login, logout
//! - `me`: the customer's own passkeys (status inquiry)
//! - `staff`: the support desk: find, status, history, revoke, unlock
//! - `compliance`: audit trail, export, verify, signals, adoption report
//! - `admin`: the core brokerage system's integration endpoints
//! - `ops`: health, readiness, metrics, the demo page
//! - `extract`: request metadata, JSON bodies, customer and staff auth
//! - `contract`: the request and response types routes share
//!
//! Every API route is a handler annotated with `#[utoipa::path]` and
//! registered through `utoipa_axum::routes!`, so the router and the OpenAPI
//! document served at `/api/openapi.json` come from the same declarations.

pub mod activity;
pub mod admin;
pub mod compliance;
pub mod contract;
pub mod extract;
pub mod freshness;
pub mod me;
pub mod ops;
pub mod registrations;
pub mod sessions;
pub mod staff;
pub mod steps;
pub mod webhooks;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// The parts of the OpenAPI document that no handler declares.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "passkey-ledger",
        description = "Account security ledger API. Errors: {error: {code, message, message_ja, ...details}}; codes are stable.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "registration", description = "First passkey registration (seed 000 p.4-7)."),
        (name = "login", description = "Passkey login; password and code where policy allows; logout."),
        (name = "me", description = "The customer's own passkeys: status inquiry, one more, deletion."),
        (name = "staff", description = "The support desk."),
        (name = "compliance", description = "Audit trail, export, verification, fraud signals, adoption."),
        (name = "integration", description = "The core brokerage system's integration endpoints."),
        (name = "operations", description = "Liveness and readiness."),
    )
)]
struct ApiDoc;

/// The bearer schemes, and the `X-Channel` header every API route reads.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("customer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme(
            "metrics",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("`LEDGER_METRICS_TOKEN`, when it is set.")).build(),
            ),
        );
        components.add_security_scheme(
            "staff",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("A staff token from `ledger staff add`.")).build(),
            ),
        );
        let channels = ledger_domain::Channel::ALL.iter().map(|c| c.as_str());
        let channel = ParameterBuilder::new()
            .name("X-Channel")
            .parameter_in(ParameterIn::Header)
            .description(Some("Where the customer is: recorded with every event; `web` when absent."))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(channels)).default(Some("web".into()))))
            .build();
        // `email_not_sent` (503) and `internal_error` (500) can answer any API route.
        let server_error = ResponseBuilder::new()
            .description("The service could not finish: `email_not_sent` (503), `internal_error` (500).")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/");
            for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
                if api {
                    operation.parameters.get_or_insert_with(Vec::new).push(channel.clone());
                    operation.responses.responses.insert("5XX".into(), RefOr::T(server_error.clone()));
                }
                // Handlers of different modules share names (`abandoned`): the
                // operation ID is the tag and the handler, unique in the document.
                let tag = operation.tags.as_ref().and_then(|t| t.first()).cloned();
                if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                    *id = format!("{tag}_{id}");
                }
            }
        }
    }
}

/// The API's routes and the OpenAPI document they declare.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    api_serving(true)
}

/// The routes (and their document) one address serves: all of them, or
/// without `staff` the customers' alone (with `LEDGER_PUBLIC_STAFF_API=off`
/// the staff, compliance and integration APIs and `/metrics` do not exist
/// on the public address, nor in its OpenAPI document).
fn api_serving(staff: bool) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::{Modify, OpenApi};
    let mut router = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(registrations::router())
        .merge(sessions::router())
        .merge(me::router())
        .merge(activity::router())
        .merge(ops::router());
    if staff {
        router = router
            .merge(admin::router())
            .merge(webhooks::router())
            .merge(staff::router())
            .merge(compliance::router())
            .merge(ops::metrics_router());
    }
    let (routes, mut document) = router.split_for_parts();
    Conventions.modify(&mut document);
    (routes, document)
}

/// Marks a request that came in on `LEDGER_ADMIN_BIND`.
#[derive(Debug, Clone, Copy)]
pub struct AdminListener;

/// The router of `LEDGER_ADMIN_BIND`: everything, each request marked as
/// come in there (`/metrics` needs no token on it).
pub fn admin_app(state: AppState) -> Router {
    app_serving(state, true)
}

/// The whole application router, for the public address.
pub fn app(state: AppState) -> Router {
    app_serving(state, false)
}

fn app_serving(state: AppState, admin: bool) -> Router {
    let (routes, document) = api_serving(admin || state.config.public_staff_api);
    let cors = cors(&state.config.cors_origins);
    let hsts = state.config.origin.starts_with("https://").then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    // Serialised once; the document is the same for the life of the process.
    let document = bytes::Bytes::from(serde_json::to_vec(&document).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document could not be serialised");
        b"{}".to_vec()
    }));
    let routes = if admin || state.config.public_staff_api { routes.merge(crate::console::router()) } else { routes };
    let router = routes
        .route(
            "/api/openapi.json",
            get(move || std::future::ready(([(axum::http::header::CONTENT_TYPE, "application/json")], document.clone()))),
        )
        // Every answer in the API's error format, routed or not.
        .fallback(|| async { crate::error::ApiError::not_found() })
        .method_not_allowed_fallback(|| async { crate::error::ApiError::from(crate::error::ErrorCode::MethodNotAllowed) })
        // Inside the header layers below, so that their answers carry the
        // same headers: failed attempts per client, NUL in the address, and
        // the body's arrival and the answer within the request timeout.
        .layer(axum::middleware::from_fn_with_state(state.clone(), throttle_failed_attempts))
        .layer(axum::middleware::from_fn(refuse_nul_in_uri))
        .layer(axum::middleware::from_fn_with_state(state.config.request_timeout, within_request_timeout));
    // CORS for the configured origins: inside the header layers, so that
    // preflights carry them too, and around the refusals above, so that a
    // page of a configured origin can read those.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let router = router
        // Headers on every response: the policy above, no MIME sniffing, no
        // referrer, no framing for older browsers, no caching of answers
        // that carry tokens or personal data (assets set their own
        // Cache-Control), and HSTS when the service is reached over https.
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::if_not_present(header::STRICT_TRANSPORT_SECURITY, hsts))
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
        // Internal errors log their cause themselves (ApiError::internal); a
        // 5XX the service means (503 busy under a flood) is no error line.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unfit_request_id))
        .layer(axum::middleware::from_fn_with_state(state.clone(), measure));
    let router = if admin { router.layer(axum::Extension(AdminListener)) } else { router };
    router.with_state(state)
}

/// Cross-origin access for the configured origins alone (bearer tokens, no
/// cookies: no credentials mode); None when there are none, so a browser
/// page of any other origin cannot read an answer.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("x-channel"),
                header::HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([header::HeaderName::from_static("x-request-id")])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Counts and times every answer, by route template (never the concrete
/// path), for `/metrics`.
async fn measure(
    axum::extract::State(app): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    // Standard methods only: a client cannot mint label values.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    }
    .to_string();
    let response = next.run(req).await;
    let (status, seconds) = (response.status().as_u16(), started.elapsed().as_secs_f64());
    app.metrics.request(&route, &method, status, seconds);
    // One access line per request: the route pattern, never the path or
    // query as sent (they can hold login IDs and addresses).
    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let ms = (seconds * 1e4).round() / 10.0;
    if status >= 500 {
        tracing::warn!(target: "access", method, route, status, ms, request_id, "request");
    } else {
        tracing::info!(target: "access", method, route, status, ms, request_id, "request");
    }
    response
}

/// The page's Content-Security-Policy: scripts and styles from the ledger
/// itself only (no inline script or style, no CDN), no framing (the pages
/// ask for passwords), nothing else loaded.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

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

/// The credential steps an anonymous client can take: every POST under
/// sessions and registrations, and the console's sign-in and enrolment. A client past its allowance of failures is
/// refused before the step (429 and `Retry-After`); a failed step (401,
/// 404, 423) counts against it.
async fn throttle_failed_attempts(
    axum::extract::State(app): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    let attempt = req.method() == axum::http::Method::POST
        && (path.starts_with("/api/v1/sessions")
            || path.starts_with("/api/v1/registrations")
            || path.starts_with("/console/sign-in")
            || path.starts_with("/console/enrol"));
    let client = crate::client_ip::client_of(&app.config.trusted_proxies, req.extensions(), req.headers());
    let Some(client) = client.filter(|_| attempt).map(crate::throttle::throttled_as) else { return next.run(req).await };
    let too_many = |wait| {
        axum::response::IntoResponse::into_response(
            crate::error::ApiError::from(crate::error::ErrorCode::TooManyRequests).retry_after(wait),
        )
    };
    if let Some(wait) = app.throttle.admit(client) {
        return too_many(wait);
    }
    // A burst sent in parallel is bounded too: its failures only count as
    // their answers come back.
    let Some(_attempt) = app.throttle.enter(client) else { return too_many(std::time::Duration::from_secs(1)) };
    let response = next.run(req).await;
    if matches!(
        response.status(),
        axum::http::StatusCode::UNAUTHORIZED | axum::http::StatusCode::NOT_FOUND | axum::http::StatusCode::LOCKED
    ) {
        app.throttle.failed(client);
    }
    response
}

/// A request that takes longer than `limit` from its headers to its answer
/// (a body that stalls, a handler that hangs) is answered 408
/// `request_timeout`; what it was doing is dropped.
async fn within_request_timeout(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(crate::error::ApiError::from(crate::error::ErrorCode::RequestTimeout)),
    }
}

/// A NUL character (`%00`) in the path or query names nothing the ledger
/// keeps, and PostgreSQL cannot store or compare it: refused up front, in
/// the error format, before any route sees it.
async fn refuse_nul_in_uri(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let uri = req.uri();
    let nul = |s: &str| s.as_bytes().windows(3).any(|w| w == b"%00");
    if nul(uri.path()) || uri.query().is_some_and(nul) {
        return axum::response::IntoResponse::into_response(crate::error::ApiError::bad_request(extract::NUL_REFUSED));
    }
    next.run(req).await
}

/// The span of one request: method, the route's template (never the
/// concrete path or query, which may name an account or an address) and
/// the request ID.
fn request_span(req: &Request) -> tracing::Span {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("unmatched");
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!("request", method = %req.method(), route, request_id = id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utoipa keeps one schema per name when routers merge: two types of
    /// one name would silently document one route with the other's shape.
    #[test]
    fn no_two_schemas_share_a_name() {
        let mut seen = std::collections::BTreeMap::new();
        for router in [
            registrations::router(),
            sessions::router(),
            me::router(),
            admin::router(),
            webhooks::router(),
            staff::router(),
            compliance::router(),
            ops::router(),
            ops::metrics_router(),
        ] {
            for (name, schema) in router.get_openapi().components.iter().flat_map(|c| c.schemas.iter()) {
                let shape = serde_json::to_string(schema).unwrap();
                if let Some(earlier) = seen.insert(name.clone(), shape.clone()) {
                    assert_eq!(earlier, shape, "two different schemas are named {name}");
                }
            }
        }
        assert!(seen.len() > 40, "{} schemas", seen.len());
    }
}
