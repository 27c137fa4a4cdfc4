//! The staff console's working tables: enrolment links (only their hash),
//! the members' console passkeys, and console sessions (only the hash of
//! the cookie), with the idle and absolute limits checked on each use.

use super::{DbError, Store};

/// A console session as a request finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSession {
    pub staff_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// Why a console cookie opens nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRefusal {
    /// No such session, or signed out, or ended by an administrator.
    Unknown,
    /// Idle longer than the idle limit, or (`absolute`) older than the
    /// absolute one: ended now.
    Expired { staff_id: String, absolute: bool },
}

impl Store {
    /// Keeps a new enrolment link's hash for `staff_id`; an earlier link
    /// not used yet stops working (one link in force per member).
    pub async fn issue_enrolment(&self, link_hash: &str, staff_id: &str, now: i64, expires_at: i64) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE staff_enrolments SET expires_at = $2 WHERE staff_id = $1 AND used_at IS NULL AND expires_at > $2")
            .bind(staff_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO staff_enrolments (link_hash, staff_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(link_hash)
            .bind(staff_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The member an enrolment link is for, while it is unused and valid.
    pub async fn enrolment(&self, link_hash: &str, now: i64) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT staff_id FROM staff_enrolments WHERE link_hash = $1 AND used_at IS NULL AND expires_at > $2")
                .bind(link_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Uses an enrolment link and stores the passkey it registered, in one
    /// transaction: false (nothing stored) when the link was used or
    /// expired meanwhile, so a link registers one passkey.
    pub async fn enrol_passkey(
        &self,
        link_hash: &str,
        staff_id: &str,
        credential_id: &str,
        passkey: &str,
        now: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(
            "UPDATE staff_enrolments SET used_at = $3 WHERE link_hash = $1 AND staff_id = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(link_hash)
        .bind(staff_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("INSERT INTO staff_passkeys (credential_id, staff_id, passkey, created_at) VALUES ($1, $2, $3, $4)")
            .bind(credential_id)
            .bind(staff_id)
            .bind(passkey)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A member's console passkeys (webauthn-rs's serialised form).
    pub async fn staff_passkeys(&self, staff_id: &str) -> Result<Vec<String>, DbError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT passkey FROM staff_passkeys WHERE staff_id = $1 ORDER BY created_at")
            .bind(staff_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(p,)| p).collect())
    }

    /// How many console passkeys each member has.
    pub async fn staff_passkey_counts(&self) -> Result<std::collections::HashMap<String, i64>, DbError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT staff_id, COUNT(*) FROM staff_passkeys GROUP BY staff_id").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().collect())
    }

    /// Stores a console passkey's state after a sign-in (its counter).
    pub async fn update_staff_passkey(&self, credential_id: &str, passkey: &str, now: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE staff_passkeys SET passkey = $2, last_used_at = $3 WHERE credential_id = $1")
            .bind(credential_id)
            .bind(passkey)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Starts a console session.
    pub async fn start_console_session(&self, session_hash: &str, staff_id: &str, now: i64) -> Result<(), DbError> {
        sqlx::query("INSERT INTO console_sessions (session_hash, staff_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3)")
            .bind(session_hash)
            .bind(staff_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The session of a cookie's hash, if it is open, not idle longer than
    /// `idle_ms` and not older than `absolute_ms`; its last use moves to
    /// `now`. An expired one is ended.
    pub async fn console_session(
        &self,
        session_hash: &str,
        now: i64,
        idle_ms: i64,
        absolute_ms: i64,
    ) -> Result<Result<ConsoleSession, SessionRefusal>, DbError> {
        let row: Option<(String, i64, i64, Option<i64>)> =
            sqlx::query_as("SELECT staff_id, created_at, last_seen_at, ended_at FROM console_sessions WHERE session_hash = $1")
                .bind(session_hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some((staff_id, created_at, last_seen_at, ended_at)) = row else { return Ok(Err(SessionRefusal::Unknown)) };
        if ended_at.is_some() {
            return Ok(Err(SessionRefusal::Unknown));
        }
        if now - last_seen_at > idle_ms || now - created_at > absolute_ms {
            self.end_console_session(session_hash, now).await?;
            return Ok(Err(SessionRefusal::Expired { absolute: now - created_at > absolute_ms, staff_id }));
        }
        sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE session_hash = $1")
            .bind(session_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(Ok(ConsoleSession { staff_id, created_at, last_seen_at: now }))
    }

    /// Ends one console session (sign-out, expiry); false when it was not open.
    pub async fn end_console_session(&self, session_hash: &str, now: i64) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE console_sessions SET ended_at = $2 WHERE session_hash = $1 AND ended_at IS NULL")
            .bind(session_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Disables a member: their token and every console session stop at
    /// once. Returns how many console sessions ended; None when there is
    /// no such member or they were disabled already.
    pub async fn disable_staff(&self, staff_id: &str, now: i64) -> Result<Option<u64>, DbError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE staff SET disabled_at = $2 WHERE staff_id = $1 AND disabled_at IS NULL")
            .bind(staff_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let ended = sqlx::query("UPDATE console_sessions SET ended_at = $2 WHERE staff_id = $1 AND ended_at IS NULL")
            .bind(staff_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE staff_enrolments SET expires_at = $2 WHERE staff_id = $1 AND used_at IS NULL AND expires_at > $2")
            .bind(staff_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(ended.rows_affected()))
    }

    /// Removes a member's console passkeys (lost) and ends their console
    /// sessions; returns how many passkeys were removed.
    pub async fn remove_staff_passkeys(&self, staff_id: &str, now: i64) -> Result<u64, DbError> {
        let mut tx = self.pool.begin().await?;
        let removed = sqlx::query("DELETE FROM staff_passkeys WHERE staff_id = $1").bind(staff_id).execute(&mut *tx).await?;
        sqlx::query("UPDATE console_sessions SET ended_at = $2 WHERE staff_id = $1 AND ended_at IS NULL")
            .bind(staff_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed.rows_affected())
    }

    /// Gives a member a new API token (replacing the one they had).
    pub async fn replace_staff_token(&self, staff_id: &str, token_hash: &str, expires_at: i64) -> Result<bool, DbError> {
        let done =
            sqlx::query("UPDATE staff SET token_hash = $2, expires_at = $3, revoked_at = NULL WHERE staff_id = $1 AND disabled_at IS NULL")
                .bind(staff_id)
                .bind(token_hash)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}
