//! Staff members' API tokens (only their hashes) and names.

use std::collections::HashMap;

use super::{DbError, Store};

impl Store {
    /// The staff member holding a token hash: ID, name and role.
    pub async fn staff_by_token_hash(&self, token_hash: &str) -> Result<Option<(String, String, String)>, DbError> {
        Ok(sqlx::query_as("SELECT staff_id, name, role FROM staff WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every staff member's name by ID.
    pub async fn staff_names(&self) -> Result<HashMap<String, String>, DbError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT staff_id, name FROM staff").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().collect())
    }
}
