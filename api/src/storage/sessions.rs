//! Customer sessions: only the token's hash is kept. A session is ended,
//! never deleted, so that its next request can say `session_ended`.

use chrono::{DateTime, Utc};

use ledger_projections::append::{AlsoWrite, Arg};

use super::{DbError, Store};

/// A live (unexpired) session.
pub struct SessionRow {
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub method: String,
    pub sign_in_id: Option<String>,
    pub cross_device: bool,
    pub ended: bool,
}

/// What a new session records.
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub account_id: &'a str,
    pub method: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The cross-device sign-in it came from, if any.
    pub sign_in_id: Option<&'a str>,
    /// The passkey it was opened with, if any: deleting it ends the session.
    pub passkey_id: Option<&'a str>,
}

const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_hash, account_id, method, created_at, expires_at, sign_in_id, cross_device, passkey_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

impl Store {
    pub async fn start_session(&self, session: NewSession<'_>) -> Result<(), DbError> {
        sqlx::query(INSERT_SESSION)
            .bind(session.token_hash)
            .bind(session.account_id)
            .bind(session.method)
            .bind(session.created_at.timestamp_millis())
            .bind(session.expires_at.timestamp_millis())
            .bind(session.sign_in_id.map(str::to_string))
            .bind(session.sign_in_id.is_some() as i64)
            .bind(session.passkey_id.map(str::to_string))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Starts the session in the transaction that records the login.
    pub fn starting_session(session: NewSession<'_>) -> AlsoWrite {
        AlsoWrite::new(
            INSERT_SESSION,
            vec![
                Arg::Text(session.token_hash.to_string()),
                Arg::Text(session.account_id.to_string()),
                Arg::Text(session.method.to_string()),
                Arg::Int(session.created_at.timestamp_millis()),
                Arg::Int(session.expires_at.timestamp_millis()),
                Arg::OptionalText(session.sign_in_id.map(str::to_string)),
                Arg::Int(session.sign_in_id.is_some() as i64),
                Arg::OptionalText(session.passkey_id.map(str::to_string)),
            ],
        )
    }

    /// The session of a token hash, unless it expired by `now`.
    pub async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>, DbError> {
        type Row = (String, i64, String, Option<String>, i64, Option<i64>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT account_id, created_at, method, sign_in_id, cross_device, ended_at FROM sessions
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.timestamp_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(account_id, created_at, method, sign_in_id, cross_device, ended_at)| SessionRow {
            account_id,
            created_at: ledger_projections::from_millis(created_at),
            method,
            sign_in_id,
            cross_device: cross_device != 0,
            ended: ended_at.is_some(),
        }))
    }

    /// Ends one session (logout).
    pub async fn end_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET ended_at = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends the account's open sessions opened with any of `passkey_ids`,
    /// but the one whose token hash is `except`; returns how many.
    pub async fn end_sessions_opened_with(
        &self,
        account_id: &str,
        passkey_ids: &[&str],
        except: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        let mut ended = 0;
        for passkey_id in passkey_ids {
            ended += sqlx::query(
                "UPDATE sessions SET ended_at = $3 WHERE account_id = $1 AND passkey_id = $2 AND ended_at IS NULL AND token_hash <> $4",
            )
            .bind(account_id)
            .bind(*passkey_id)
            .bind(now.timestamp_millis())
            .bind(except)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(ended)
    }

    /// Ends every open session of the account; returns how many.
    pub async fn end_sessions(&self, account_id: &str, now: DateTime<Utc>) -> Result<u64, DbError> {
        let ended = sqlx::query("UPDATE sessions SET ended_at = $2 WHERE account_id = $1 AND ended_at IS NULL")
            .bind(account_id)
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(ended.rows_affected())
    }
}
