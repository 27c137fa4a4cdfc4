//! What the core system hands over and the ledger must check but never
//! record: password hashes (argon2), by account and login ID. The command
//! side's lookup of a login ID reads here, current by construction.

use super::{DbError, Store};

/// Whether a new account's secrets were kept.
pub enum Kept {
    Yes,
    /// Another account has this login ID.
    LoginIdTaken,
}

impl Store {
    /// The account a login ID names, and its password hash.
    pub async fn login(&self, login_id: &str) -> Result<Option<(String, String)>, DbError> {
        Ok(sqlx::query_as("SELECT account_id, password_hash FROM account_secrets WHERE login_id = $1")
            .bind(login_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The account's login password hash.
    pub async fn password_hash(&self, account_id: &str) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT password_hash FROM account_secrets WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(h,)| h))
    }

    /// The account's trading password hash.
    pub async fn trading_password_hash(&self, account_id: &str) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT trading_password_hash FROM account_secrets WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(h,)| h))
    }

    pub async fn keep_new_account(
        &self,
        account_id: &str,
        login_id: &str,
        password_hash: &str,
        trading_password_hash: &str,
    ) -> Result<Kept, DbError> {
        let inserted =
            sqlx::query("INSERT INTO account_secrets (account_id, login_id, password_hash, trading_password_hash) VALUES ($1, $2, $3, $4)")
                .bind(account_id)
                .bind(login_id)
                .bind(password_hash)
                .bind(trading_password_hash)
                .execute(&self.pool)
                .await;
        match inserted {
            Ok(_) => Ok(Kept::Yes),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Kept::LoginIdTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the login password's hash; false when there is no such account.
    pub async fn set_password_hash(&self, account_id: &str, hash: &str) -> Result<bool, DbError> {
        let updated = sqlx::query("UPDATE account_secrets SET password_hash = $2 WHERE account_id = $1")
            .bind(account_id)
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() > 0)
    }

    /// Replaces the trading password's hash; false when there is no such account.
    pub async fn set_trading_password_hash(&self, account_id: &str, hash: &str) -> Result<bool, DbError> {
        let updated = sqlx::query("UPDATE account_secrets SET trading_password_hash = $2 WHERE account_id = $1")
            .bind(account_id)
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() > 0)
    }
}
