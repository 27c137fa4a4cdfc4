//! Customer sessions: only the token's hash is kept. A session is ended,
//! never deleted, so that its next request can say `session_ended`.

use chrono::{DateTime, Utc};

use ledger_projections::append::{AlsoWrite, Arg};

use sqlx::Row;

use super::{DbError, Store};

/// A live (unexpired) session.
pub struct SessionRow {
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub method: String,
    pub sign_in_id: Option<String>,
    pub cross_device: bool,
    pub ended: bool,
    /// The passkey it was opened with, if any.
    pub passkey_id: Option<String>,
    /// The sequence of the event that opened it (its login or registration).
    pub opened_by: Option<i64>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// One of an account's open sessions, as its list of signed-in devices shows it.
pub struct OpenSession {
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub method: String,
    pub channel: Option<String>,
    pub ip: Option<String>,
    /// The device, as `ledger_domain::Environment` JSON.
    pub environment: Option<String>,
    pub passkey_id: Option<String>,
}

/// Where a session was opened from: the request that opened it.
pub struct OpenedFrom<'a> {
    pub channel: &'a str,
    pub ip: &'a str,
    /// The device, as `ledger_domain::Environment` JSON.
    pub environment: Option<String>,
    /// The sequence, in the account's stream, of the event that opened it.
    pub opened_by: Option<i64>,
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
    pub from: OpenedFrom<'a>,
}

const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_hash, account_id, method, created_at, expires_at, sign_in_id, cross_device, passkey_id,
                           channel, ip, environment, opened_by, last_seen_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $4)";

/// How often a session's `last_seen_at` is written: at most once a minute,
/// so that a busy session costs no write per request.
const LAST_SEEN_EVERY_MS: i64 = 60_000;

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
            .bind(session.from.channel.to_string())
            .bind(session.from.ip.to_string())
            .bind(session.from.environment.clone())
            .bind(session.from.opened_by)
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
                Arg::Text(session.from.channel.to_string()),
                Arg::Text(session.from.ip.to_string()),
                Arg::OptionalText(session.from.environment.clone()),
                Arg::OptionalInt(session.from.opened_by),
            ],
        )
    }

    /// The session of a token hash, unless it expired by `now`.
    pub async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRow>, DbError> {
        let row = sqlx::query(
            "SELECT account_id, created_at, method, sign_in_id, cross_device, ended_at, passkey_id, opened_by, last_seen_at
               FROM sessions
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.timestamp_millis())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionRow {
            account_id: r.try_get("account_id")?,
            created_at: ledger_projections::from_millis(r.try_get("created_at")?),
            method: r.try_get("method")?,
            sign_in_id: r.try_get("sign_in_id")?,
            cross_device: r.try_get::<i64, _>("cross_device")? != 0,
            ended: r.try_get::<Option<i64>, _>("ended_at")?.is_some(),
            passkey_id: r.try_get("passkey_id")?,
            opened_by: r.try_get("opened_by")?,
            last_seen_at: r.try_get::<Option<i64>, _>("last_seen_at")?.map(ledger_projections::from_millis),
        }))
    }

    /// Notes that the session was used at `now`, unless it was within the
    /// last minute.
    pub async fn session_seen(&self, token_hash: &str, last_seen_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), DbError> {
        let now = now.timestamp_millis();
        if last_seen_at.is_some_and(|at| now - at.timestamp_millis() < LAST_SEEN_EVERY_MS) {
            return Ok(());
        }
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1").bind(token_hash).bind(now).execute(&self.pool).await?;
        Ok(())
    }

    /// The account's open sessions (not ended, not expired), newest first.
    pub async fn open_sessions(&self, account_id: &str, now: DateTime<Utc>) -> Result<Vec<OpenSession>, DbError> {
        let rows = sqlx::query(
            "SELECT token_hash, created_at, last_seen_at, method, channel, ip, environment, passkey_id FROM sessions
              WHERE account_id = $1 AND ended_at IS NULL AND expires_at > $2
              ORDER BY created_at DESC, token_hash",
        )
        .bind(account_id)
        .bind(now.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OpenSession {
                    token_hash: r.try_get("token_hash")?,
                    created_at: ledger_projections::from_millis(r.try_get("created_at")?),
                    last_seen_at: r.try_get::<Option<i64>, _>("last_seen_at")?.map(ledger_projections::from_millis),
                    method: r.try_get("method")?,
                    channel: r.try_get("channel")?,
                    ip: r.try_get("ip")?,
                    environment: r.try_get("environment")?,
                    passkey_id: r.try_get("passkey_id")?,
                })
            })
            .collect()
    }

    /// Ends the session of `token_hash`, in the transaction of the event
    /// that records it (unless it has ended already).
    pub fn ending_session(token_hash: &str, now: DateTime<Utc>) -> AlsoWrite {
        AlsoWrite::new(
            "UPDATE sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL",
            vec![Arg::Text(token_hash.to_string()), Arg::Int(now.timestamp_millis())],
        )
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
