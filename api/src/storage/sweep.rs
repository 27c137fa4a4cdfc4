//! Working rows outlive their use only briefly: flows, codes and sessions
//! are deleted a grace period after they expired, ceremonies as soon as
//! they expire, so that
//! anonymous calls (a `passkey/options` each) cannot grow storage forever.
//! Until then an expired row still answers as expired (`flow_expired`,
//! `session_ended`); after it, as unknown.

use chrono::{DateTime, Duration, Utc};

use super::{DbError, Store};

/// How long an expired row is kept.
pub const GRACE: Duration = Duration::hours(24);

/// How long an unknown login ID's count of wrong passwords is kept after
/// its last attempt (its "lock" with it).
pub const UNKNOWN_IDS_KEPT: Duration = Duration::days(30);

/// What one sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub ceremonies: u64,
    pub flows: u64,
    pub codes: u64,
    pub sessions: u64,
    /// Counts of wrong passwords for unknown login IDs, 30 days after the
    /// last attempt.
    pub unknown_login_ids: u64,
}

impl Swept {
    pub fn total(&self) -> u64 {
        self.ceremonies + self.flows + self.codes + self.sessions + self.unknown_login_ids
    }
}

impl Store {
    /// Deletes the working rows that expired before `now` minus [`GRACE`].
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Swept, DbError> {
        let before = (now - GRACE).timestamp_millis();
        Ok(Swept {
            // An expired ceremony answers exactly as a missing one
            // (`ceremony_expired`): no grace.
            ceremonies: self.delete_expired("DELETE FROM ceremonies WHERE expires_at < $1", now.timestamp_millis()).await?,
            flows: self.delete_expired("DELETE FROM flows WHERE expires_at < $1", before).await?,
            codes: self.delete_expired("DELETE FROM otp_codes WHERE expires_at < $1", before).await?,
            sessions: self.delete_expired("DELETE FROM sessions WHERE expires_at < $1", before).await?,
            unknown_login_ids: self
                .delete_expired("DELETE FROM unknown_login_failures WHERE last_at < $1", (now - UNKNOWN_IDS_KEPT).timestamp_millis())
                .await?,
        })
    }

    async fn delete_expired(&self, sql: &'static str, before: i64) -> Result<u64, DbError> {
        Ok(sqlx::query(sql).bind(before).execute(&self.pool).await?.rows_affected())
    }
}

/// Sweeps every `every`, for as long as the service runs (every instance:
/// the deletions are idempotent).
pub async fn sweep_every(store: Store, clock: crate::clock::Clock, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.sweep(clock.now()).await {
            Ok(swept) if swept.total() > 0 => tracing::info!(
                ceremonies = swept.ceremonies,
                flows = swept.flows,
                codes = swept.codes,
                sessions = swept.sessions,
                unknown_login_ids = swept.unknown_login_ids,
                "expired working rows deleted"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweeping expired working rows failed; trying again later"),
        }
    }
}
