//! Subscriptions of the audit trail (webhooks, NATS): what each delivers,
//! how far it got, and which instance delivers it now. A subscription's
//! position moves only after its receiver acknowledged the batch, so a
//! crash repeats a batch (same IDs) and never skips one.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{DbError, Store};

/// One subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub subscription_id: String,
    /// `webhook` or `nats`.
    pub kind: String,
    /// The webhook's URL, or the NATS stream's name.
    pub target: String,
    /// `cloudevents` or `ocsf`.
    pub format: String,
    /// The event types delivered; empty: all.
    pub types: Vec<String>,
    pub batch_size: i64,
    /// Whether e-mail addresses, IP addresses, User-Agents and login IDs go
    /// out in full (`full`) or masked (`masked`).
    pub personal_data: String,
    pub secret_generation: i64,
    pub previous_until: Option<i64>,
    pub position: i64,
    pub checkpoint_size: i64,
    pub pending_through: Option<i64>,
    pub replays: i64,
    /// `active` or `disabled`.
    pub state: String,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub failures: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_delivered_at: Option<i64>,
    pub created_at: i64,
}

impl Subscription {
    pub fn is_active(&self) -> bool {
        self.state == "active"
    }

    pub fn full_personal_data(&self) -> bool {
        self.personal_data == "full"
    }
}

/// What a new subscription delivers.
pub struct NewSubscription<'a> {
    pub subscription_id: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
    pub format: &'a str,
    pub types: &'a [String],
    pub batch_size: i64,
    pub personal_data: &'a str,
    /// Where delivery starts: 0 for everything the trail holds.
    pub position: i64,
    pub created_at: i64,
}

fn subscription(r: &AnyRow) -> Result<Subscription, DbError> {
    let types: String = r.try_get("types")?;
    Ok(Subscription {
        subscription_id: r.try_get("subscription_id")?,
        kind: r.try_get("kind")?,
        target: r.try_get("target")?,
        format: r.try_get("format")?,
        types: types.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
        batch_size: r.try_get("batch_size")?,
        personal_data: r.try_get("personal_data")?,
        secret_generation: r.try_get("secret_generation")?,
        previous_until: r.try_get("previous_until")?,
        position: r.try_get("position")?,
        checkpoint_size: r.try_get("checkpoint_size")?,
        pending_through: r.try_get("pending_through")?,
        replays: r.try_get("replays")?,
        state: r.try_get("state")?,
        disabled_reason: r.try_get("disabled_reason")?,
        failing_since: r.try_get("failing_since")?,
        failures: r.try_get("failures")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        last_delivered_at: r.try_get("last_delivered_at")?,
        created_at: r.try_get("created_at")?,
    })
}

const COLUMNS: &str = "subscription_id, kind, target, format, types, CAST(batch_size AS BIGINT) AS batch_size, personal_data,
    CAST(secret_generation AS BIGINT) AS secret_generation, previous_until, position, checkpoint_size, pending_through,
    CAST(replays AS BIGINT) AS replays, state, disabled_reason, failing_since, CAST(failures AS BIGINT) AS failures,
    next_attempt_at, last_error, last_delivered_at, created_at";

impl Store {
    /// Keeps a new subscription; false when one of this ID exists already.
    pub async fn add_subscription(&self, new: NewSubscription<'_>) -> Result<bool, DbError> {
        let inserted = sqlx::query(
            "INSERT INTO subscriptions (subscription_id, kind, target, format, types, batch_size, personal_data, secret_generation,
                                        position, checkpoint_size, replays, state, failures, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, 0, 'active', 0, $9)",
        )
        .bind(new.subscription_id)
        .bind(new.kind)
        .bind(new.target)
        .bind(new.format)
        .bind(new.types.join(","))
        .bind(new.batch_size)
        .bind(new.personal_data)
        .bind(new.position)
        .bind(new.created_at)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The NATS publisher's subscription: made at its first start (from
    /// the trail's first event), its personal data as configured now.
    pub async fn ensure_nats_subscription(
        &self,
        subscription_id: &str,
        stream: &str,
        personal_data: &str,
        now: i64,
    ) -> Result<(), DbError> {
        let new = NewSubscription {
            subscription_id,
            kind: "nats",
            target: stream,
            format: "cloudevents",
            types: &[],
            batch_size: 1000,
            personal_data,
            position: 0,
            created_at: now,
        };
        if !self.add_subscription(new).await? {
            sqlx::query("UPDATE subscriptions SET personal_data = $2 WHERE subscription_id = $1")
                .bind(subscription_id)
                .bind(personal_data)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Every subscription, oldest first.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, DbError> {
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM subscriptions ORDER BY created_at, subscription_id")).fetch_all(&self.pool).await?;
        rows.iter().map(subscription).collect()
    }

    pub async fn subscription(&self, subscription_id: &str) -> Result<Option<Subscription>, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM subscriptions WHERE subscription_id = $1"))
            .bind(subscription_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscription).transpose()
    }

    /// Takes (or keeps) the right to deliver the subscription until
    /// `until`: true when this instance holds it. Another instance's lease
    /// is taken only once it has run out (that instance stopped).
    pub async fn lease_subscription(&self, subscription_id: &str, instance: &str, now: i64, until: i64) -> Result<bool, DbError> {
        let taken = sqlx::query(
            "UPDATE subscriptions SET leased_by = $2, lease_until = $4
              WHERE subscription_id = $1 AND state = 'active'
                AND (leased_by IS NULL OR leased_by = $2 OR lease_until IS NULL OR lease_until < $3)",
        )
        .bind(subscription_id)
        .bind(instance)
        .bind(now)
        .bind(until)
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Gives up every lease `instance` holds (it is stopping): another
    /// instance takes its subscriptions over at once rather than when the
    /// leases run out.
    pub async fn release_leases(&self, instance: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE subscriptions SET leased_by = NULL, lease_until = NULL WHERE leased_by = $1")
            .bind(instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Fixes the batch under way (so a retry sends it unchanged), unless a
    /// replay moved the subscription meanwhile, another batch is fixed, or
    /// this instance no longer holds the lease. The updates below take the
    /// same care: only the lease holder moves a subscription.
    pub async fn pend_batch(&self, subscription_id: &str, instance: &str, from: i64, through: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE subscriptions SET pending_through = $3
              WHERE subscription_id = $1 AND position = $2 AND pending_through IS NULL AND leased_by = $4",
        )
        .bind(subscription_id)
        .bind(from)
        .bind(through)
        .bind(instance)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The receiver took everything through `through`: the position moves
    /// on from `from` (unless a replay moved it meanwhile) and the failures
    /// are forgotten.
    pub async fn delivered(&self, subscription_id: &str, instance: &str, from: i64, through: i64, now: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE subscriptions SET position = $3, pending_through = NULL, failing_since = NULL, failures = 0,
                    next_attempt_at = NULL, last_error = NULL, last_delivered_at = $4
              WHERE subscription_id = $1 AND position = $2 AND leased_by = $5",
        )
        .bind(subscription_id)
        .bind(from)
        .bind(through)
        .bind(now)
        .bind(instance)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The receiver took the checkpoint of `tree_size` (sent after the
    /// one of `after`, before any replay since: `replays`).
    pub async fn checkpoint_delivered(
        &self,
        subscription_id: &str,
        instance: &str,
        (after, replays): (i64, i64),
        tree_size: i64,
        now: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE subscriptions SET checkpoint_size = $2, failing_since = NULL, failures = 0, next_attempt_at = NULL,
                    last_error = NULL, last_delivered_at = $3
              WHERE subscription_id = $1 AND checkpoint_size = $5 AND replays = $6 AND leased_by = $4",
        )
        .bind(subscription_id)
        .bind(tree_size)
        .bind(now)
        .bind(instance)
        .bind(after)
        .bind(replays)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A delivery failed: the next attempt waits until `next_attempt_at`.
    /// False when this instance no longer holds the lease.
    pub async fn delivery_failed(
        &self,
        subscription_id: &str,
        instance: &str,
        error: &str,
        now: i64,
        next_attempt_at: i64,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE subscriptions SET failing_since = COALESCE(failing_since, $3), failures = failures + 1,
                    next_attempt_at = $4, last_error = $2
              WHERE subscription_id = $1 AND leased_by = $5",
        )
        .bind(subscription_id)
        .bind(error)
        .bind(now)
        .bind(next_attempt_at)
        .bind(instance)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stops deliveries; true when it was active.
    pub async fn disable_subscription(&self, subscription_id: &str, reason: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE subscriptions SET state = 'disabled', disabled_reason = $2, leased_by = NULL, lease_until = NULL
              WHERE subscription_id = $1 AND state = 'active'",
        )
        .bind(subscription_id)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Delivers again from trail position `from` (and every checkpoint
    /// after it), active again if it was disabled, failures forgotten.
    pub async fn replay_subscription(&self, subscription_id: &str, from: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE subscriptions SET position = $2, checkpoint_size = $2, pending_through = NULL, replays = replays + 1,
                    state = 'active', disabled_reason = NULL, failing_since = NULL, failures = 0, next_attempt_at = NULL,
                    last_error = NULL
              WHERE subscription_id = $1",
        )
        .bind(subscription_id)
        .bind(from - 1)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A new signing secret: the next generation; the previous one's
    /// signature goes along until `previous_until`.
    pub async fn rotate_subscription_secret(&self, subscription_id: &str, previous_until: i64) -> Result<Option<i64>, DbError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET secret_generation = secret_generation + 1, previous_until = $2
              WHERE subscription_id = $1 AND kind = 'webhook'
              RETURNING CAST(secret_generation AS BIGINT)",
        )
        .bind(subscription_id)
        .bind(previous_until)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(g,)| g))
    }
}
