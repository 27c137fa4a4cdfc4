//! Staff members' API tokens (only their hashes), names, roles, expiry and
//! revocation.

use std::collections::HashMap;

use super::{DbError, Store};

/// A staff member as their token finds them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StaffRow {
    pub staff_id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
    /// None: never (the core system's token from its file).
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When an administrator disabled the member: their token and console
    /// sessions open nothing from then on.
    pub disabled_at: Option<i64>,
    /// 1 for a member without an API token (console only).
    pub no_token: i64,
}

/// A token about to be stored: only its hash.
pub struct NewStaff<'a> {
    pub staff_id: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub token_hash: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

const COLUMNS: &str = "staff_id, name, role, created_at, expires_at, revoked_at, disabled_at,
    CAST(CASE WHEN token_hash LIKE 'none:%' THEN 1 ELSE 0 END AS BIGINT) AS no_token";

impl Store {
    /// The staff member holding a token hash, revoked or expired or not:
    /// the caller decides what a revoked or expired one gets.
    pub async fn staff_by_token_hash(&self, token_hash: &str) -> Result<Option<StaffRow>, DbError> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM staff WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every staff member, oldest first.
    pub async fn staff_members(&self) -> Result<Vec<StaffRow>, DbError> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM staff ORDER BY created_at, staff_id")).fetch_all(&self.pool).await?)
    }

    /// The staff member with this ID.
    pub async fn staff_member(&self, staff_id: &str) -> Result<Option<StaffRow>, DbError> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM staff WHERE staff_id = $1")).bind(staff_id).fetch_optional(&self.pool).await?)
    }

    /// Every staff member's name by ID.
    pub async fn staff_names(&self) -> Result<HashMap<String, String>, DbError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT staff_id, name FROM staff").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().collect())
    }

    /// Stores a new staff member's token hash.
    pub async fn add_staff(&self, staff: NewStaff<'_>) -> Result<(), DbError> {
        sqlx::query("INSERT INTO staff (staff_id, name, role, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(staff.staff_id)
            .bind(staff.name)
            .bind(staff.role)
            .bind(staff.token_hash)
            .bind(staff.created_at)
            .bind(staff.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Makes `token_hash` the core system's admin token (no expiry),
    /// unless it already is someone's; the core system's tokens provisioned
    /// before it are revoked, so replacing the token file rotates the token.
    /// Returns the staff IDs of the tokens it revoked; `Ok(None)` when the
    /// token was itself revoked (a replica started with the file of before
    /// a rotation): then nothing changes, and the newer token stays in force.
    pub async fn provision_core_system(&self, staff_id: &str, token_hash: &str, now: i64) -> Result<Option<Vec<String>>, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO staff (staff_id, name, role, token_hash, created_at)
             SELECT $1, 'core-system', 'admin', $2, $3 WHERE NOT EXISTS (SELECT 1 FROM staff WHERE token_hash = $2)",
        )
        .bind(staff_id)
        .bind(token_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let (created_at, revoked_at): (i64, Option<i64>) =
            sqlx::query_as("SELECT created_at, revoked_at FROM staff WHERE token_hash = $1").bind(token_hash).fetch_one(&mut *tx).await?;
        if revoked_at.is_some() {
            tx.rollback().await?;
            return Ok(None);
        }
        let revoked: Vec<(String,)> = sqlx::query_as(
            "UPDATE staff SET revoked_at = $2
              WHERE name = 'core-system' AND role = 'admin' AND token_hash <> $1 AND revoked_at IS NULL AND expires_at IS NULL
                AND created_at <= $3
              RETURNING staff_id",
        )
        .bind(token_hash)
        .bind(now)
        .bind(created_at)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(revoked.into_iter().map(|(id,)| id).collect()))
    }

    /// Revokes a staff member's token; false when there is no such member
    /// or the token was revoked already.
    pub async fn revoke_staff_token(&self, staff_id: &str, now: i64) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE staff SET revoked_at = $2 WHERE staff_id = $1 AND revoked_at IS NULL")
            .bind(staff_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
