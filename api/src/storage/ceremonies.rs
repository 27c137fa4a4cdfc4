//! WebAuthn ceremony state between the options call and the finish: kept
//! in the database so that any instance can finish a ceremony another one
//! began, and taken out once, so that a replayed finish fails.

use chrono::{DateTime, Utc};

use ledger_projections::append::{AlsoWrite, Arg};

use super::{DbError, Store};

/// A ceremony as it was saved.
pub struct Ceremony {
    /// webauthn-rs's serialised state.
    pub state: String,
    pub passkey_name: Option<String>,
}

impl Store {
    /// Keeps a ceremony's state until `expires_at`, replacing an earlier
    /// one of the same ID (one statement: one round trip, one commit).
    pub async fn save_ceremony(
        &self,
        ceremony_id: &str,
        kind: &str,
        flow_id: Option<&str>,
        state: &str,
        passkey_name: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO ceremonies (ceremony_id, kind, flow_id, state, passkey_name, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (ceremony_id) DO UPDATE
                SET kind = excluded.kind, flow_id = excluded.flow_id, state = excluded.state,
                    passkey_name = excluded.passkey_name, expires_at = excluded.expires_at",
        )
        .bind(ceremony_id)
        .bind(kind)
        .bind(flow_id.map(str::to_string))
        .bind(state)
        .bind(passkey_name.map(str::to_string))
        .bind(expires_at.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A ceremony's state, left in the store, for a finish that takes it in
    /// the same transaction as its outcome ([`Store::taking_ceremony`]).
    /// None when there is none, or it expired by `now`.
    pub async fn ceremony(&self, ceremony_id: &str, kind: &str, now: DateTime<Utc>) -> Result<Option<Ceremony>, DbError> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT state, passkey_name FROM ceremonies WHERE ceremony_id = $1 AND kind = $2 AND expires_at > $3")
                .bind(ceremony_id)
                .bind(kind)
                .bind(now.timestamp_millis())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(state, passkey_name)| Ceremony { state, passkey_name }))
    }

    /// Takes the ceremony in an outcome's transaction: the outcome is
    /// recorded only by the request that takes it, so a replayed finish,
    /// even one racing the first, records nothing.
    pub fn taking_ceremony(ceremony_id: &str, kind: &str) -> AlsoWrite {
        AlsoWrite::taking(
            "DELETE FROM ceremonies WHERE ceremony_id = $1 AND kind = $2",
            vec![Arg::Text(ceremony_id.to_string()), Arg::Text(kind.to_string())],
        )
    }

    /// Takes a ceremony out of the store: whoever takes it first is the only
    /// one who can finish it. None when there is none, or it expired by `now`.
    pub async fn take_ceremony(&self, ceremony_id: &str, kind: &str, now: DateTime<Utc>) -> Result<Option<Ceremony>, DbError> {
        let row: Option<(String, Option<String>, i64)> =
            sqlx::query_as("DELETE FROM ceremonies WHERE ceremony_id = $1 AND kind = $2 RETURNING state, passkey_name, expires_at")
                .bind(ceremony_id)
                .bind(kind)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .filter(|(_, _, expires_at)| *expires_at > now.timestamp_millis())
            .map(|(state, passkey_name, _)| Ceremony { state, passkey_name }))
    }
}
