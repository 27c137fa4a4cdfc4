//! Operations: liveness, readiness, metrics and the demo page. The
//! OpenAPI document is served by `http::app`, which builds it.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .route("/", get(|State(app): State<AppState>| async move { Html(front_page(&app.config.brokerage)) }))
        .route("/demo.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("../../assets/demo.js")) }))
        .route("/demo.css", get(|| async { asset("text/css; charset=utf-8", include_str!("../../assets/demo.css")) }))
}

/// The reference front end, in the deployment's words: the brokerage's
/// names, what it calls the trading password, its support desk.
fn front_page(b: &crate::config::Brokerage) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let mut page = include_str!("../../assets/demo.html").to_string();
    for (mark, value) in [
        ("{{BROKERAGE}}", &b.name_ja),
        ("{{BROKERAGE_EN}}", &b.name_en),
        ("{{TP}}", &b.terms.trading_password_ja),
        ("{{TP_EN}}", &b.terms.trading_password_en),
        ("{{SUPPORT_PHONE}}", &b.support_phone),
        ("{{SUPPORT_HOURS}}", &b.support_hours_ja),
        ("{{SUPPORT_HOURS_EN}}", &b.support_hours_en),
    ] {
        page = page.replace(mark, &escape(value));
    }
    page
}

/// `/metrics`: served where staff are (see `http::api_serving`).
pub fn metrics_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// A page's script or style sheet: served by the ledger itself (the
/// Content-Security-Policy allows nothing else), checked again on each use.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

#[derive(Debug, Serialize, ToSchema)]
struct Alive {
    /// Always `ok`.
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Alive)))]
async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// Readiness, and why not.
#[derive(Debug, Default, Serialize, ToSchema)]
struct Readiness {
    /// `ready`, `degraded` (events the read models could not take), `stuck`
    /// (the projector behind and not moving) or `not_ready`.
    status: &'static str,
    /// `ok` or `unreachable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'static str>,
    /// `applied` or `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    migrations: Option<&'static str>,
    /// Logged events not yet in the read models.
    #[serde(skip_serializing_if = "Option::is_none")]
    projector_lag: Option<i64>,
    /// Seconds the projector has been behind without moving on (0 when
    /// current); past `LEDGER_PROJECTOR_STUCK_SECS` the status is `stuck` (503).
    #[serde(skip_serializing_if = "Option::is_none")]
    projector_stalled_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    projection_failures: Option<i64>,
    /// The trail's subscribers (NATS, webhooks): how far behind, and why.
    /// A failing receiver is reported here, never a reason to take the
    /// instance out of service.
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions: Option<Vec<SubscriptionLag>>,
}

/// One subscriber in `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
struct SubscriptionLag {
    subscription_id: String,
    kind: String,
    /// `active` or `disabled`.
    state: String,
    /// Trail events not yet delivered.
    lag: i64,
    /// Failed attempts in a row.
    failures: i64,
    last_error: Option<String>,
}

/// Ready when the database answers, migrations are applied, and the
/// projector's lag is reported.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(app): State<AppState>, admin: Option<axum::Extension<super::AdminListener>>) -> (StatusCode, Json<Readiness>) {
    let (status, Json(readiness)) = readiness(&app).await;
    // With staff kept off the public address, it tells the internet no
    // more than the verdict; the figures are on the admin address.
    if admin.is_none() && !app.config.public_staff_api {
        return (status, Json(Readiness { status: readiness.status, ..Default::default() }));
    }
    (status, Json(readiness))
}

async fn readiness(app: &AppState) -> (StatusCode, Json<Readiness>) {
    // A probe gets its answer within a probe's usual timeout, even while
    // the database does not answer (each check would wait for the pool).
    let checks = async {
        let migrations = app.db.migrations_current().await;
        let lag = app.projector.lag().await;
        let failures = app.projector.failures().await;
        let subscriptions = crate::streams::manage::list(app).await;
        (migrations, lag, failures, subscriptions)
    };
    let Ok(checks) = tokio::time::timeout(READY_CHECK, checks).await else {
        tracing::warn!("readiness check timed out: the database does not answer");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness { status: "not_ready", database: Some("unreachable"), ..Default::default() }),
        );
    };
    match checks {
        (Ok(true), Ok(lag), Ok(failures), Ok(subscriptions)) => {
            let stalled = app.projector.stalled_for(lag);
            // A projector behind and not moving for minutes: the read models
            // (and so logins' views and staff reads) are going stale. Events
            // the read models could not take are reported, not a reason to
            // take the instance out of service: every route still answers.
            let (status, verdict) = match () {
                () if stalled >= app.config.projector_stuck => (StatusCode::SERVICE_UNAVAILABLE, "stuck"),
                () if failures > 0 => (StatusCode::OK, "degraded"),
                () => (StatusCode::OK, "ready"),
            };
            (
                status,
                Json(Readiness {
                    status: verdict,
                    database: Some("ok"),
                    migrations: Some("applied"),
                    projector_lag: Some(lag),
                    projector_stalled_seconds: Some(stalled.as_secs()),
                    projection_failures: Some(failures),
                    subscriptions: Some(
                        subscriptions
                            .into_iter()
                            .map(|s| SubscriptionLag {
                                subscription_id: s.subscription_id,
                                kind: s.kind,
                                state: s.state,
                                lag: s.lag,
                                failures: s.failures,
                                last_error: s.last_error,
                            })
                            .collect(),
                    ),
                }),
            )
        }
        (Ok(false), ..) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(Readiness { status: "not_ready", migrations: Some("pending"), ..Default::default() }))
        }
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Readiness { status: "not_ready", database: Some("unreachable"), ..Default::default() }))
        }
    }
}

/// Prometheus text format: events by type, projector lag, accounts,
/// active passkeys and open fraud signals. Counts only, nothing personal.
/// With `LEDGER_METRICS_TOKEN` set, the scraper presents it as a bearer
/// token; without it, only the machine itself (loopback) may read.
#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("metrics" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "`LEDGER_METRICS_TOKEN` is set and was not presented.", body = ErrorBody),
        (status = 403, description = "No `LEDGER_METRICS_TOKEN` is set and the client is not on this machine.", body = ErrorBody),
        (status = 503, description = "The database is unreachable.", body = String, content_type = "text/plain")))]
async fn metrics(State(app): State<AppState>, request: axum::extract::Request) -> axum::response::Response {
    if let Err(refused) = may_read_metrics(&app, &request) {
        return refused.into_response();
    }
    match render_metrics(&app).await {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics could not be read");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

/// The metrics token when one is set, else a loopback client (as the
/// trusted proxies name it: a request a proxy on this machine forwarded
/// comes from its client, not from loopback).
fn may_read_metrics(app: &AppState, request: &axum::extract::Request) -> Result<(), crate::error::ApiError> {
    // The admin address is the operators' own: no token asked there.
    if request.extensions().get::<super::AdminListener>().is_some() {
        return Ok(());
    }
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let peer = crate::client_ip::client_of(&app.config.trusted_proxies, request.extensions(), request.headers());
    metrics_allowed(app.config.metrics_token.as_ref(), authorization, peer)
}

fn metrics_allowed(
    token: Option<&crate::secrets::Secret>,
    authorization: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> Result<(), crate::error::ApiError> {
    use secrecy::ExposeSecret;
    match token {
        Some(token) => {
            let presented = authorization.and_then(|v| v.strip_prefix("Bearer ")).map(|p| crate::secrets::token_hash(p.trim()));
            let expected = crate::secrets::token_hash(token.expose_secret());
            match presented {
                Some(p) if crate::secrets::digests_equal(&p, &expected) => Ok(()),
                _ => Err(crate::error::ApiError::unauthorized()),
            }
        }
        None if peer.is_some_and(|ip| ip.is_loopback()) => Ok(()),
        None => Err(crate::error::ApiError::forbidden()),
    }
}

/// The longest `/readyz` takes to answer.
const READY_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

async fn render_metrics(app: &AppState) -> Result<String, ledger_projections::DbError> {
    let lag = app.projector.lag().await?;
    let census = crate::metrics::Census {
        ledger: ledger_projections::read_models::census(&app.db.any).await?,
        projector_lag: lag,
        projector_stalled_seconds: app.projector.stalled_for(lag).as_secs_f64(),
        projection_failures: app.projector.failures().await?,
        connections: (app.db.any.size(), app.db.any.num_idle()),
        subscriptions: crate::streams::manage::list(app).await?,
    };
    Ok(app.metrics.render(census))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_token_only_this_machine_reads_the_metrics() {
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let remote: std::net::IpAddr = "203.0.113.5".parse().unwrap();
        assert!(metrics_allowed(None, None, Some(local)).is_ok());
        assert!(metrics_allowed(None, None, Some("::1".parse().unwrap())).is_ok());
        assert_eq!(metrics_allowed(None, None, Some(remote)).unwrap_err().code, crate::error::ErrorCode::Forbidden);
        assert!(metrics_allowed(None, None, None).is_err());
        let token = crate::secrets::Secret::from("a-scraper-token");
        assert!(metrics_allowed(Some(&token), Some("Bearer a-scraper-token"), Some(remote)).is_ok());
        assert!(metrics_allowed(Some(&token), None, Some(local)).is_err(), "a set token is asked of everyone");
    }
}
