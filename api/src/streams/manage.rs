//! Webhook subscriptions managed by an administrator, from the command
//! line or the admin API alike: add, list, disable, replay, rotate the
//! secret. Each change is an event in the administrator's stream; the
//! secret is shown once, at `add` and `rotate-secret`, and never recorded.

use chrono::{DateTime, Utc};
use ledger_domain::staff::StaffEvent;
use ledger_domain::system::SystemEvent;
use ledger_domain::EventMetadata;
use serde::Serialize;
use utoipa::ToSchema;

use super::{message, webhook};
use crate::state::AppState;
use crate::storage::{NewSubscription, Subscription};

/// Events in one request unless the subscription says otherwise.
pub const DEFAULT_BATCH: u32 = 100;
/// The most events one request may carry.
pub const MAX_BATCH: u32 = 1000;
/// How long the previous secret signs beside the new one.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

/// Who acts: their staff stream and the metadata of the request or
/// command line.
pub struct Actor {
    pub stream: String,
    pub metadata: EventMetadata,
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The URL is refused (scheme, credentials, a destination inside).
    #[error("{0}")]
    UrlRefused(String),
    /// Another field is not valid.
    #[error("{0}")]
    Invalid(String),
    #[error("no webhook subscription with this ID")]
    NotFound,
    #[error("{0}")]
    Store(String),
}

fn store(e: impl std::fmt::Display) -> ManageError {
    ManageError::Store(e.to_string())
}

/// A new subscription as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub url: String,
    /// `cloudevents` (default) or `ocsf`.
    pub format: Option<String>,
    /// Event types; empty: all.
    pub types: Vec<String>,
    pub batch: Option<u32>,
    /// `masked` (default) or `full`.
    pub personal_data: Option<String>,
    /// The first trail position delivered (default 1: everything).
    pub from_position: Option<i64>,
}

/// A subscription as staff see it: where it is, how far behind, why not.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub subscription_id: String,
    /// `webhook` or `nats`.
    pub kind: String,
    /// The webhook's URL without its query, or the NATS stream.
    pub target: String,
    /// `cloudevents` or `ocsf`.
    pub format: String,
    pub types: Vec<String>,
    pub batch_size: i64,
    /// `masked` or `full`.
    pub personal_data: String,
    /// `active` or `disabled`.
    pub state: String,
    pub disabled_reason: Option<String>,
    /// The last trail position the receiver took.
    pub position: i64,
    /// Trail rows after it.
    pub lag: i64,
    pub failures: i64,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// During a secret rotation: until when the previous secret signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl SubscriptionView {
    pub fn of(s: &Subscription, trail_end: i64, now: DateTime<Utc>) -> SubscriptionView {
        SubscriptionView {
            subscription_id: s.subscription_id.clone(),
            kind: s.kind.clone(),
            target: if s.kind == "webhook" { webhook::shown(&s.target) } else { s.target.clone() },
            format: s.format.clone(),
            types: s.types.clone(),
            batch_size: s.batch_size,
            personal_data: s.personal_data.clone(),
            state: s.state.clone(),
            disabled_reason: s.disabled_reason.clone(),
            position: s.position,
            lag: (trail_end - s.position).max(0),
            failures: s.failures,
            failing_since: s.failing_since.map(at),
            next_attempt_at: s.next_attempt_at.map(at),
            last_error: s.last_error.clone(),
            last_delivered_at: s.last_delivered_at.map(at),
            previous_secret_until: s.previous_until.filter(|until| *until > now.timestamp_millis()).map(at),
            created_at: at(s.created_at),
        }
    }
}

/// Every subscription with its lag.
pub async fn list(app: &AppState) -> Result<Vec<SubscriptionView>, ledger_projections::DbError> {
    let subscriptions = app.store.subscriptions().await?;
    let end = super::trail_end(&app.db.any).await?;
    let now = app.clock.now();
    Ok(subscriptions.iter().map(|s| SubscriptionView::of(s, end, now)).collect())
}

/// One subscription, or `NotFound`.
async fn webhook_named(app: &AppState, id: &str) -> Result<Subscription, ManageError> {
    match app.store.subscription(id).await.map_err(store)? {
        Some(s) if s.kind == "webhook" => Ok(s),
        _ => Err(ManageError::NotFound),
    }
}

async fn view(app: &AppState, id: &str) -> Result<SubscriptionView, ManageError> {
    let s = webhook_named(app, id).await?;
    let end = super::trail_end(&app.db.any).await.map_err(store)?;
    Ok(SubscriptionView::of(&s, end, app.clock.now()))
}

async fn record(app: &AppState, actor: &Actor, event: StaffEvent) -> Result<(), ManageError> {
    app.staff_log.record(&actor.stream, event, actor.metadata.clone()).await.map(|_| ()).map_err(store)
}

/// A position to deliver from: 1 to the trail's next (nothing skipped).
async fn within_trail(app: &AppState, from_position: i64) -> Result<(), ManageError> {
    let end = super::trail_end(&app.db.any).await.map_err(store)?;
    if !(1..=end + 1).contains(&from_position) {
        return Err(ManageError::Invalid(format!("from_position {from_position}: positions run from 1 to {} (the trail's next)", end + 1)));
    }
    Ok(())
}

/// A subscription added, and its secret (shown once).
pub struct Added {
    pub subscription: SubscriptionView,
    pub secret: crate::secrets::Secret,
}

/// Adds a webhook subscription.
pub async fn add(app: &AppState, new: NewWebhook, actor: &Actor) -> Result<Added, ManageError> {
    let allow_private = app.config.streams.webhook_allow_private;
    let url = webhook::check_url(new.url.trim(), allow_private).map_err(ManageError::UrlRefused)?;
    let format = new.format.as_deref().unwrap_or("cloudevents");
    let format = message::Format::parse(format)
        .ok_or_else(|| ManageError::Invalid(format!("format {format:?}: expected cloudevents or ocsf")))?
        .name();
    let mut types = Vec::new();
    for given in new.types.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let named = ledger_domain::words::event_type_named(given)
            .ok_or_else(|| ManageError::Invalid(format!("types: {given:?} is not an event type")))?;
        if !types.iter().any(|t| t == named) {
            types.push(named.to_string());
        }
    }
    let batch = new.batch.unwrap_or(DEFAULT_BATCH);
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(ManageError::Invalid(format!("batch {batch}: expected 1 to {MAX_BATCH} events")));
    }
    let personal_data = match new.personal_data.as_deref().unwrap_or("masked") {
        p @ ("masked" | "full") => p,
        other => return Err(ManageError::Invalid(format!("personal_data {other:?}: expected masked or full"))),
    };
    let from_position = new.from_position.unwrap_or(1);
    within_trail(app, from_position).await?;
    // Resolved last, after the checks that need no network.
    webhook::check_destination(&url, allow_private).await.map_err(ManageError::UrlRefused)?;
    let id = format!("wh-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    let now = app.clock.now();
    let added = app
        .store
        .add_subscription(NewSubscription {
            subscription_id: &id,
            kind: "webhook",
            target: url.as_str(),
            format,
            types: &types,
            batch_size: i64::from(batch),
            personal_data,
            position: from_position - 1,
            created_at: now.timestamp_millis(),
        })
        .await
        .map_err(store)?;
    if !added {
        return Err(ManageError::Store("a subscription ID was drawn twice; try again".into()));
    }
    let event = StaffEvent::WebhookSubscriptionAdded {
        subscription_id: id.clone(),
        url: webhook::shown(url.as_str()),
        format: format.to_string(),
        types,
        batch_size: batch,
        personal_data: personal_data.to_string(),
        from_position,
    };
    record(app, actor, event).await?;
    let secret = webhook::whsec(&webhook::secret(app.secret_key(), &id, 1));
    Ok(Added { subscription: view(app, &id).await?, secret: secret.into() })
}

/// Stops a subscription's deliveries.
pub async fn disable(app: &AppState, id: &str, actor: &Actor) -> Result<SubscriptionView, ManageError> {
    webhook_named(app, id).await?;
    if app.store.disable_subscription(id, "disabled by an administrator").await.map_err(store)? {
        record(app, actor, StaffEvent::WebhookSubscriptionDisabled { subscription_id: id.to_string() }).await?;
    }
    view(app, id).await
}

/// Delivers again from `from_position` (active again if disabled).
pub async fn replay(app: &AppState, id: &str, from_position: i64, actor: &Actor) -> Result<SubscriptionView, ManageError> {
    webhook_named(app, id).await?;
    within_trail(app, from_position).await?;
    app.store.replay_subscription(id, from_position).await.map_err(store)?;
    record(app, actor, StaffEvent::WebhookReplayRequested { subscription_id: id.to_string(), from_position }).await?;
    view(app, id).await
}

/// A new secret; the previous one signs too for [`ROTATION_OVERLAP`].
pub async fn rotate_secret(app: &AppState, id: &str, actor: &Actor) -> Result<Added, ManageError> {
    webhook_named(app, id).await?;
    let until = app.clock.now() + ROTATION_OVERLAP;
    let generation =
        app.store.rotate_subscription_secret(id, until.timestamp_millis()).await.map_err(store)?.ok_or(ManageError::NotFound)?;
    record(app, actor, StaffEvent::WebhookSecretRotated { subscription_id: id.to_string(), previous_valid_until: until }).await?;
    let secret = webhook::whsec(&webhook::secret(app.secret_key(), id, generation));
    Ok(Added { subscription: view(app, id).await?, secret: secret.into() })
}

/// A webhook failing for too long: disabled, and an event says so.
pub(super) async fn disable_after_failures(app: &AppState, s: &Subscription, since: i64, why: &str) {
    let reason = format!("deliveries failed since {} ({why})", at(since).to_rfc3339());
    match app.store.disable_subscription(&s.subscription_id, &reason).await {
        Ok(true) => {
            tracing::error!(subscription = %s.subscription_id, error = %why, "a webhook subscription failed too long and was disabled");
            let event = SystemEvent::WebhookSubscriptionDisabledAfterFailures {
                subscription_id: s.subscription_id.clone(),
                failing_since: at(since),
                failures: u64::try_from(s.failures + 1).unwrap_or_default(),
                last_error: why.to_string(),
                position: s.position,
            };
            let stream = uuid::Uuid::new_v4().to_string();
            if let Err(e) = app.system_log.record(&stream, event, crate::bus::system_metadata(app.clock.now())).await {
                tracing::error!(error = %e, "cannot record that a webhook subscription was disabled");
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(subscription = %s.subscription_id, error = %e, "cannot disable a failing subscription"),
    }
}
