//! One-time codes mailed to the customer: only a keyed hash is kept, never
//! the code.

use chrono::{DateTime, Utc};

use super::{DbError, Store};

impl Store {
    /// Keeps a mailed code's keyed hash.
    pub async fn keep_code(
        &self,
        code_id: &str,
        flow_id: &str,
        code_hmac: &str,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO otp_codes (code_id, flow_id, code_hmac, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(code_id)
            .bind(flow_id)
            .bind(code_hmac)
            .bind(issued_at.timestamp_millis())
            .bind(expires_at.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The flow's latest code: its ID and keyed hash.
    pub async fn current_code(&self, flow_id: &str) -> Result<Option<(String, String)>, DbError> {
        Ok(sqlx::query_as("SELECT code_id, code_hmac FROM otp_codes WHERE flow_id = $1 ORDER BY issued_at DESC, code_id LIMIT 1")
            .bind(flow_id)
            .fetch_optional(&self.pool)
            .await?)
    }
}
