//! Operations: liveness, readiness, the OpenAPI document and the demo page.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .route("/api/openapi.json", get(openapi))
        .route("/", get(|| async { Html(include_str!("../../assets/demo.html")) }))
        .route(
            "/demo.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../assets/demo.js")) }),
        )
}

/// Ready when the database answers, migrations are applied, and the
/// projector's lag is reported.
async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let migrations = app.db.migrations_current().await;
    let lag = app.projector.lag().await;
    match (migrations, lag) {
        (Ok(true), Ok(lag)) => {
            (StatusCode::OK, Json(json!({ "status": "ready", "database": "ok", "migrations": "applied", "projector_lag": lag })))
        }
        (Ok(false), _) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not_ready", "migrations": "pending" }))),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not_ready", "database": "unreachable" })))
        }
    }
}

async fn openapi() -> Json<Value> {
    Json(serde_json::from_str(include_str!("../../assets/openapi.json")).unwrap_or(Value::Null))
}
