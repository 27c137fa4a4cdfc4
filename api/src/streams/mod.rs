//! The trail leaves the building: NATS JetStream and webhook subscriptions
//! follow the audit trail, each with its own position, in the trail's
//! order (the log's global order as the projector fixed it, late commits
//! included), never on the request path.
//!
//! Each subscription has one delivery task at a time across instances (a
//! lease in its row). A batch moves the position only once the receiver
//! took it, so a crash repeats a batch with the same IDs and skips nothing.
//! A failing receiver is retried with growing waits; a webhook that fails
//! for longer than `LEDGER_WEBHOOK_DISABLE_AFTER_SECS` is disabled, and an
//! event says so. Subscriptions do not wait on each other.

pub mod manage;
pub mod mask;
pub mod message;
pub mod nats;
pub mod ocsf;
pub mod webhook;

use std::collections::HashMap;
use std::time::Duration;

use ledger_projections::audit::{self, AuditFilter, AuditRow};
use ledger_projections::checkpoint::Stored;
use rand::Rng;

use crate::state::AppState;
use crate::storage::Subscription;

/// How long a delivery task's hold on its subscription lasts without being
/// renewed: another instance takes over this long after one stops. It
/// outlasts the longest request, so a round always ends within its lease.
fn lease(app: &AppState) -> Duration {
    Duration::from_secs(15).max(app.config.streams.webhook_timeout + Duration::from_secs(10))
}

/// How long an instance waits before looking again at a subscription
/// another instance holds.
const LOOK_AGAIN: Duration = Duration::from_secs(5);

/// How often the supervisor looks for subscriptions without a task.
const SUPERVISE_EVERY: Duration = Duration::from_secs(2);

/// A task with nothing to deliver looks again after this at the latest
/// (it is woken earlier whenever the read models move on).
const IDLE: Duration = Duration::from_secs(1);

/// The pause after a round that did not fill a batch: what a subscriber
/// waits at most for events it would otherwise get one round each.
const LINGER: Duration = Duration::from_millis(200);

/// Events per NATS round (each message its own; the acknowledgements are
/// awaited together).
const NATS_BATCH: i64 = 1000;

/// The first wait after a failed delivery; each failure doubles it, up to
/// `LEDGER_WEBHOOK_RETRY_MAX_SECS`.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// The ID of the NATS publisher's subscription.
pub fn nats_subscription_id(stream: &str) -> String {
    format!("nats:{stream}")
}

/// A task that ends when this is dropped.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs every active subscription's delivery while the service runs, as
/// `instance` (a name of this process's own, which its leases carry).
pub async fn run(app: AppState, instance: String) {
    let mut tasks: HashMap<String, Task> = HashMap::new();
    let mut nats_recorded = app.config.streams.nats.is_none();
    loop {
        if let (false, Some(nats)) = (nats_recorded, &app.config.streams.nats) {
            let id = nats_subscription_id(&nats.stream);
            let personal = if nats.full_personal_data { "full" } else { "masked" };
            match app.store.ensure_nats_subscription(&id, &nats.stream, personal, app.clock.now().timestamp_millis()).await {
                Ok(()) => nats_recorded = true,
                Err(e) => tracing::error!(error = %e, "cannot record the NATS publisher's position; retrying"),
            }
        }
        match app.store.subscriptions().await {
            Ok(subscriptions) => {
                tasks.retain(|_, task| !task.0.is_finished());
                for subscription in subscriptions.into_iter().filter(|s| s.is_active() && runs_here(&app, s)) {
                    let id = subscription.subscription_id.clone();
                    tasks.entry(id.clone()).or_insert_with(|| Task(tokio::spawn(deliver(app.clone(), id, instance.clone()))));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the subscriptions; trying again"),
        }
        tokio::time::sleep(SUPERVISE_EVERY).await;
    }
}

/// A NATS subscription is delivered by an instance configured for that
/// stream; a webhook by any.
fn runs_here(app: &AppState, subscription: &Subscription) -> bool {
    match subscription.kind.as_str() {
        "nats" => app.config.streams.nats.as_ref().is_some_and(|n| nats_subscription_id(&n.stream) == subscription.subscription_id),
        _ => true,
    }
}

/// Where a task delivers to, connected when first needed.
enum Sink {
    None,
    Nats(Box<nats::Publisher>),
    Webhook(reqwest::Client),
}

/// What a round did.
enum Round {
    /// Delivered something (or moved past what the subscription skips).
    /// `full`: a whole batch, so there may be more at once; otherwise the
    /// task lingers before the next round, so that at the morning peak it
    /// sends a few larger batches a second rather than one per login (each
    /// round costs the database a handful of statements that the logins
    /// need more).
    Moved { full: bool },
    /// Nothing to deliver.
    Idle,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Delivers one subscription until it is disabled or gone.
async fn deliver(app: AppState, id: String, instance: String) {
    let mut progress = app.projector.progress();
    let mut sink = Sink::None;
    loop {
        let now = now_ms();
        match app.store.lease_subscription(&id, &instance, now, now + lease(&app).as_millis() as i64).await {
            Ok(true) => {}
            Ok(false) => match app.store.subscription(&id).await {
                // Another instance delivers it: look again when its lease may have run out.
                Ok(Some(s)) if s.is_active() => {
                    tokio::time::sleep(LOOK_AGAIN).await;
                    continue;
                }
                _ => return,
            },
            Err(e) => {
                tracing::warn!(subscription = %id, error = %e, "cannot renew the delivery lease; trying again");
                tokio::time::sleep(IDLE).await;
                continue;
            }
        }
        let subscription = match app.store.subscription(&id).await {
            Ok(Some(s)) if s.is_active() => s,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(subscription = %id, error = %e, "cannot read the subscription; trying again");
                tokio::time::sleep(IDLE).await;
                continue;
            }
        };
        if let Some(next) = subscription.next_attempt_at {
            if next > now {
                tokio::time::sleep(Duration::from_millis((next - now) as u64).min(LOOK_AGAIN)).await;
                continue;
            }
        }
        match round(&app, &instance, &subscription, &mut sink).await {
            Ok(Round::Moved { full: true }) => {}
            Ok(Round::Moved { full: false }) => tokio::time::sleep(LINGER).await,
            Ok(Round::Idle) => {
                if tokio::time::timeout(IDLE, progress.changed()).await.is_ok_and(|changed| changed.is_err()) {
                    tokio::time::sleep(IDLE).await;
                }
            }
            Err(why) => {
                if subscription.kind == "nats" {
                    sink = Sink::None;
                }
                failed(&app, &instance, &subscription, &why).await;
            }
        }
    }
}

/// The trail's last position.
async fn trail_end(pool: &sqlx::AnyPool) -> Result<i64, ledger_projections::DbError> {
    let (end,): (Option<i64>,) = sqlx::query_as("SELECT MAX(audit_position) FROM audit_trail").fetch_one(pool).await?;
    Ok(end.unwrap_or(0))
}

/// The first checkpoint after tree size `after`.
async fn next_checkpoint(pool: &sqlx::AnyPool, after: i64) -> Result<Option<Stored>, String> {
    let listed = ledger_projections::checkpoint::list(pool, after + 1, i64::MAX, 1).await.map_err(|e| e.to_string())?;
    Ok(listed.into_iter().next())
}

/// One round: the checkpoint the delivered events cover, or the next
/// batch of events (never past the next checkpoint, so that a checkpoint
/// follows the last event it covers).
async fn round(app: &AppState, instance: &str, s: &Subscription, sink: &mut Sink) -> Result<Round, String> {
    let pool = &app.db.any;
    let checkpoint = next_checkpoint(pool, s.checkpoint_size).await?;
    if let Some(c) = checkpoint.as_ref().filter(|c| c.tree_size <= s.position) {
        send_checkpoint(app, s, sink, c).await?;
        let read = (s.checkpoint_size, s.replays);
        app.store.checkpoint_delivered(&s.subscription_id, instance, read, c.tree_size, now_ms()).await.map_err(|e| e.to_string())?;
        return Ok(Round::Moved { full: true });
    }
    let cap = match (s.pending_through, &checkpoint) {
        (Some(pending), _) => pending,
        (None, Some(c)) => trail_end(pool).await.map_err(|e| e.to_string())?.min(c.tree_size),
        (None, None) => trail_end(pool).await.map_err(|e| e.to_string())?,
    };
    if cap <= s.position {
        return Ok(Round::Idle);
    }
    let limit = if s.kind == "nats" { NATS_BATCH } else { s.batch_size };
    let filter = AuditFilter { event_types: s.types.clone(), through: Some(cap), ..Default::default() };
    let rows = audit::query(pool, &filter, s.position, limit).await.map_err(|e| e.to_string())?;
    let through = match (s.pending_through, rows.last()) {
        (Some(pending), _) => pending,
        (None, Some(last)) if rows.len() as i64 == limit => last.position,
        _ => cap,
    };
    // A webhook batch is fixed before it is sent: a retry sends the same
    // events under the same webhook-id.
    if s.pending_through.is_none() && s.kind == "webhook" && !rows.is_empty() {
        let fixed = app.store.pend_batch(&s.subscription_id, instance, s.position, through).await.map_err(|e| e.to_string())?;
        if !fixed {
            return Ok(Round::Moved { full: false });
        }
    }
    if !rows.is_empty() {
        send_events(app, s, sink, &rows, through).await?;
    }
    app.store.delivered(&s.subscription_id, instance, s.position, through, now_ms()).await.map_err(|e| e.to_string())?;
    app.metrics.streamed(&s.subscription_id, rows.len() as u64);
    Ok(Round::Moved { full: rows.len() as i64 == limit })
}

fn shape(app: &AppState, s: &Subscription) -> message::Shape {
    message::Shape {
        source: app.config.log_origin.clone(),
        format: message::Format::parse(&s.format).unwrap_or(message::Format::CloudEvents),
        full: s.full_personal_data(),
    }
}

/// The signing secrets of this moment: the current one, and the previous
/// one during a rotation.
fn secrets(app: &AppState, s: &Subscription, now: i64) -> Vec<Vec<u8>> {
    let mut secrets = vec![webhook::secret(app.secret_key(), &s.subscription_id, s.secret_generation)];
    if s.previous_until.is_some_and(|until| until > now) && s.secret_generation > 1 {
        secrets.push(webhook::secret(app.secret_key(), &s.subscription_id, s.secret_generation - 1));
    }
    secrets
}

async fn connect<'a>(app: &AppState, s: &Subscription, sink: &'a mut Sink) -> Result<&'a Sink, String> {
    if matches!(sink, Sink::None) {
        *sink = match (s.kind.as_str(), &app.config.streams.nats) {
            ("nats", Some(n)) => Sink::Nats(Box::new(nats::Publisher::connect(&n.url, &n.stream, &n.subject_prefix).await?)),
            ("nats", None) => return Err("NATS is not configured on this instance".into()),
            _ => {
                let streams = &app.config.streams;
                Sink::Webhook(webhook::client(streams.webhook_allow_private, streams.webhook_timeout)?)
            }
        };
    }
    Ok(sink)
}

async fn send_events(app: &AppState, s: &Subscription, sink: &mut Sink, rows: &[AuditRow], through: i64) -> Result<(), String> {
    let shape = shape(app, s);
    let events = rows.iter().map(|r| message::event(r, &shape)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    match connect(app, s, sink).await? {
        Sink::Nats(publisher) => {
            let prefix = app.config.streams.nats.as_ref().map(|n| n.subject_prefix.as_str()).unwrap_or("ledger");
            let mut messages = Vec::with_capacity(events.len());
            for (row, event) in rows.iter().zip(events) {
                messages.push(nats::Message {
                    subject: nats::event_subject(prefix, &row.stream, &row.event_type),
                    id: row.event_id.clone(),
                    payload: serde_json::to_vec(&event).map_err(|e| e.to_string())?.into(),
                });
            }
            publisher.publish(messages).await
        }
        Sink::Webhook(client) => {
            let body = serde_json::to_vec(&events).map_err(|e| e.to_string())?;
            let id = format!("msg_{}_{}_{}_{}", s.subscription_id, s.replays, s.position, through);
            post(app, s, client, &id, body).await
        }
        Sink::None => Err("not connected".into()),
    }
}

async fn post(app: &AppState, s: &Subscription, client: &reqwest::Client, id: &str, body: Vec<u8>) -> Result<(), String> {
    let now = now_ms();
    // A name that resolves inside is refused at each connection by the
    // client's resolver; an address written in the URL, and plain http
    // (added while private networks were allowed), here.
    if !app.config.streams.webhook_allow_private {
        if !s.target.starts_with("https://") {
            return Err("plain http is refused (LEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)".into());
        }
        if let Some(ip) = url::Url::parse(&s.target).ok().and_then(|u| u.host_str().and_then(|h| h.trim_matches(['[', ']']).parse().ok())) {
            if !webhook::is_public(ip) {
                return Err(format!("{ip} is not a public address"));
            }
        }
    }
    webhook::post(client, webhook::Request { url: &s.target, id, timestamp: now / 1000, body, secrets: secrets(app, s, now) }).await
}

async fn send_checkpoint(app: &AppState, s: &Subscription, sink: &mut Sink, checkpoint: &Stored) -> Result<(), String> {
    let event = message::checkpoint(checkpoint, &app.config.log_origin);
    let payload = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
    match connect(app, s, sink).await? {
        Sink::Nats(publisher) => {
            let prefix = app.config.streams.nats.as_ref().map(|n| n.subject_prefix.as_str()).unwrap_or("ledger");
            let id = format!("checkpoint-{}", checkpoint.tree_size);
            publisher.publish(vec![nats::Message { subject: nats::checkpoint_subject(prefix), id, payload: payload.into() }]).await
        }
        Sink::Webhook(client) => {
            let body = serde_json::to_vec(&[event]).map_err(|e| e.to_string())?;
            let id = format!("msg_{}_{}_checkpoint_{}", s.subscription_id, s.replays, checkpoint.tree_size);
            post(app, s, client, &id, body).await
        }
        Sink::None => Err("not connected".into()),
    }
}

/// The wait before attempt `failures + 1`: doubling from
/// [`FIRST_RETRY`] up to `max`, each drawn between half and all of it
/// (jitter, so that subscriptions failing together do not retry together).
fn backoff(failures: i64, max: Duration) -> Duration {
    let exponent = u32::try_from(failures.clamp(1, 30) - 1).unwrap_or(0);
    let full = FIRST_RETRY.saturating_mul(2u32.saturating_pow(exponent)).min(max);
    let millis = full.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis.max(1)))
}

/// A delivery failed: wait, and disable a webhook failing too long.
async fn failed(app: &AppState, instance: &str, s: &Subscription, why: &str) {
    let now = now_ms();
    let streams = &app.config.streams;
    let wait = backoff(s.failures + 1, streams.webhook_retry_max);
    tracing::warn!(
        subscription = %s.subscription_id,
        kind = %s.kind,
        failures = s.failures + 1,
        retry_in_ms = wait.as_millis() as u64,
        error = %why,
        "delivery failed; it will be retried"
    );
    match app.store.delivery_failed(&s.subscription_id, instance, why, now, now + wait.as_millis() as i64).await {
        Ok(true) => {}
        // Another instance holds it now: its own attempts decide.
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(subscription = %s.subscription_id, error = %e, "cannot record a failed delivery");
            return;
        }
    }
    let since = s.failing_since.unwrap_or(now);
    if s.kind == "webhook" && now - since >= streams.webhook_disable_after.as_millis() as i64 {
        manage::disable_after_failures(app, s, since, why).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest_with_jitter() {
        let max = Duration::from_secs(60);
        for failures in 1..40 {
            let full = FIRST_RETRY.saturating_mul(2u32.saturating_pow((failures.min(30) - 1) as u32)).min(max);
            let wait = backoff(failures, max);
            assert!(wait <= full && wait >= full / 2, "{failures}: {wait:?} against {full:?}");
        }
    }
}
