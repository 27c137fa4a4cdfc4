//! Command-side lookups: what a command must know at decision time, kept
//! current by the database in the same transaction as the events that change
//! it (migrations 0005 and 0006), never by the projector. A request that reads here
//! waits for nothing.

use sqlx::AnyPool;

use crate::db::DbError;

/// A credential ID's binding: the account that holds it, for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialClaim {
    pub credential_id: String,
    pub account_id: ledger_domain::AccountId,
    pub passkey_id: String,
    /// The verifying key as the WebAuthn library stores it (public only).
    pub public_key: serde_json::Value,
    /// The account stream's last sequence when the claim was read: read in
    /// the same round trip so that a command can tell whether an account it
    /// cached is behind (another instance wrote since) before deciding.
    pub stream_sequence: i64,
}

/// The account a credential ID was bound to, whether the passkey is still
/// active or was deleted since (the domain knows which).
pub async fn credential_claim(pool: &AnyPool, credential_id: &ledger_domain::CredentialId) -> Result<Option<CredentialClaim>, DbError> {
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT c.credential_id, c.account_id, c.passkey_id, c.public_key, \
                COALESCE((SELECT MAX(e.sequence) FROM events e \
                          WHERE e.aggregate_type = 'account' AND e.aggregate_id = c.account_id), 0) \
         FROM credential_claims c WHERE c.credential_id = $1",
    )
    .bind(credential_id.as_str())
    .fetch_optional(pool)
    .await?;
    row.map(|(credential_id, account_id, passkey_id, public_key, stream_sequence)| {
        let public_key = serde_json::from_str(&public_key).map_err(|e| DbError::Corrupt(format!("credential_claims.public_key: {e}")))?;
        let account_id =
            ledger_domain::AccountId::parse(&account_id).map_err(|e| DbError::Corrupt(format!("credential_claims.account_id: {e}")))?;
        Ok(CredentialClaim { credential_id, account_id, passkey_id, public_key, stream_sequence })
    })
    .transpose()
}

/// Whether a credential ID was ever bound to any account.
pub async fn credential_taken(pool: &AnyPool, credential_id: &str) -> Result<bool, DbError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM credential_claims WHERE credential_id = $1").bind(credential_id).fetch_optional(pool).await?;
    Ok(row.is_some())
}

/// The other accounts with `email` (normalised) among their registered
/// addresses, any slot, from the command-side index (seed 000, in bold: one
/// address, one account).
pub async fn accounts_sharing_email(pool: &AnyPool, email: &str, except: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT account_id FROM account_emails WHERE email = $1 AND account_id <> $2 ORDER BY account_id")
            .bind(email)
            .bind(except)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(a,)| a).collect())
}
