//! The trail's webhook subscriptions through the admin API (role admin):
//! the same operations as `ledger webhooks`, recorded alike.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, RequestMeta, Role, Staff};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::secrets::ExposeSecret;
use crate::state::AppState;
use crate::streams::manage::{self, Actor, ManageError, NewWebhook, SubscriptionView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, add)).routes(routes!(disable)).routes(routes!(replay)).routes(routes!(rotate_secret))
}

impl From<ManageError> for ApiError {
    fn from(e: ManageError) -> ApiError {
        match e {
            ManageError::UrlRefused(why) => ApiError::saying(ErrorCode::WebhookUrlRefused, why),
            ManageError::Invalid(why) => ApiError::saying(ErrorCode::InvalidRequest, why),
            ManageError::NotFound => ErrorCode::NotFound.into(),
            ManageError::Store(why) => ApiError::internal(why),
        }
    }
}

async fn admin(app: &AppState, staff: &Staff, meta: &RequestMeta) -> Result<Actor, ApiError> {
    staff.require(&[Role::Admin]).await?;
    Ok(Actor { stream: staff.staff_id.clone(), metadata: meta.metadata(&staff.actor(), app.clock.now()) })
}

#[derive(Debug, Serialize, ToSchema)]
struct Subscriptions {
    items: Vec<SubscriptionView>,
}

/// The trail's subscriptions (webhooks, and NATS when configured) with
/// their position, lag and last error.
#[utoipa::path(get, path = "/api/v1/admin/webhooks", tag = "integration", security(("staff" = [])),
    responses((status = 200, body = Subscriptions), (status = "4XX", body = ErrorBody)))]
async fn list(State(app): State<AppState>, staff: Staff) -> Result<Json<Subscriptions>, ApiError> {
    staff.require(&[Role::Admin]).await?;
    Ok(Json(Subscriptions { items: manage::list(&app).await? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddBody {
    /// https on the public internet (see `LEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
    url: String,
    /// `cloudevents` (default: the trail row as `data`) or `ocsf`.
    format: Option<String>,
    /// Only these event types (default: all).
    #[serde(default)]
    types: Vec<String>,
    /// Events per request, 1 to 1000 (default 100).
    batch: Option<u32>,
    /// `masked` (default) or `full`.
    personal_data: Option<String>,
    /// The first trail position delivered (default 1: the whole trail).
    from_position: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct WithSecret {
    subscription: SubscriptionView,
    /// The signing secret (`whsec_...`): shown this once.
    secret: String,
}

/// Adds a webhook subscription; the answer holds its secret, once.
#[utoipa::path(post, path = "/api/v1/admin/webhooks", tag = "integration", security(("staff" = [])), request_body = AddBody,
    responses((status = 201, body = WithSecret), (status = "4XX", body = ErrorBody)))]
async fn add(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiJson(body): ApiJson<AddBody>,
) -> Result<(StatusCode, Json<WithSecret>), ApiError> {
    let actor = admin(&app, &staff, &meta).await?;
    let new = NewWebhook {
        url: body.url,
        format: body.format,
        types: body.types,
        batch: body.batch,
        personal_data: body.personal_data,
        from_position: body.from_position,
    };
    let added = manage::add(&app, new, &actor).await?;
    let secret = added.secret.expose_secret().to_string();
    Ok((StatusCode::CREATED, Json(WithSecret { subscription: added.subscription, secret })))
}

#[derive(Deserialize, ToSchema)]
struct SubscriptionPath {
    subscription_id: String,
}

/// Stops a subscription's deliveries.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/{subscription_id}/disable", tag = "integration", security(("staff" = [])),
    params(("subscription_id" = String, Path)),
    responses((status = 200, body = SubscriptionView), (status = "4XX", body = ErrorBody)))]
async fn disable(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(path): ApiPath<SubscriptionPath>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let actor = admin(&app, &staff, &meta).await?;
    Ok(Json(manage::disable(&app, &path.subscription_id, &actor).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// The first trail position delivered again.
    from_position: i64,
}

/// Delivers again from a trail position; a disabled subscription becomes
/// active again.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/{subscription_id}/replay", tag = "integration", security(("staff" = [])),
    params(("subscription_id" = String, Path)), request_body = ReplayBody,
    responses((status = 200, body = SubscriptionView), (status = "4XX", body = ErrorBody)))]
async fn replay(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(path): ApiPath<SubscriptionPath>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let actor = admin(&app, &staff, &meta).await?;
    Ok(Json(manage::replay(&app, &path.subscription_id, body.from_position, &actor).await?))
}

/// A new signing secret, shown once; the previous one signs too for 24 hours.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/{subscription_id}/rotate-secret", tag = "integration", security(("staff" = [])),
    params(("subscription_id" = String, Path)),
    responses((status = 200, body = WithSecret), (status = "4XX", body = ErrorBody)))]
async fn rotate_secret(
    State(app): State<AppState>,
    staff: Staff,
    meta: RequestMeta,
    ApiPath(path): ApiPath<SubscriptionPath>,
) -> Result<Json<WithSecret>, ApiError> {
    let actor = admin(&app, &staff, &meta).await?;
    let rotated = manage::rotate_secret(&app, &path.subscription_id, &actor).await?;
    let secret = rotated.secret.expose_secret().to_string();
    Ok(Json(WithSecret { subscription: rotated.subscription, secret }))
}
