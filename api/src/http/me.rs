//! The customer's own passkeys: the status inquiry (seed 000 p.16-17).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use ledger_projections::read_models::{status_view, StatusView};

use super::extract::Customer;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/me/passkeys", get(my_passkeys))
}

/// Each registered passkey with its browser/OS name and registration time;
/// "no passkey registered" when there is none.
async fn my_passkeys(State(app): State<AppState>, customer: Customer) -> Result<Json<StatusView>, ApiError> {
    app.projector.catch_up().await?;
    status_view(&app.db.any, &customer.account_id, false).await?.map(Json).ok_or_else(ApiError::not_found)
}
