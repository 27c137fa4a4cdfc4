//! Wrong passwords for login IDs no account has, counted like a real
//! account's, so that an unknown ID locks too.

use chrono::{DateTime, Utc};

use super::{DbError, Store};

impl Store {
    /// Counts one more wrong password for the unknown login ID whose keyed
    /// hash is `login_id_key`; returns the count so far.
    pub async fn unknown_login_failed(&self, login_id_key: &str, now: DateTime<Utc>) -> Result<u32, DbError> {
        let (failures,): (i64,) = sqlx::query_as(
            "INSERT INTO unknown_login_failures (login_id_key, failures, last_at) VALUES ($1, 1, $2)
             ON CONFLICT (login_id_key) DO UPDATE
                SET failures = unknown_login_failures.failures + 1, last_at = excluded.last_at
             RETURNING failures",
        )
        .bind(login_id_key)
        .bind(now.timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(u32::try_from(failures).unwrap_or(u32::MAX))
    }
}
