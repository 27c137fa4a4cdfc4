//! Registration and password-login flows: which account a flow belongs to
//! and until when. What happens in a flow is in the account's events.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{DbError, Store};

/// A flow as the service keeps it.
pub struct Flow {
    pub flow_id: ledger_domain::FlowId,
    /// None when the login ID was unknown: the flow fails at the password
    /// step like a wrong password, so unknown IDs are not revealed.
    pub account_id: Option<ledger_domain::AccountId>,
    /// The login ID as typed.
    pub login_id: Option<String>,
    /// When and on which channel it began.
    pub created_at: DateTime<Utc>,
    pub channel: String,
    pub expires_at: DateTime<Utc>,
}

/// What a new flow records.
pub struct NewFlow<'a> {
    pub flow_id: &'a str,
    pub account_id: Option<&'a str>,
    pub purpose: &'a str,
    pub channel: &'a str,
    pub login_id: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    pub async fn create_flow(&self, flow: NewFlow<'_>) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO flows (flow_id, account_id, purpose, channel, created_at, expires_at, login_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(flow.flow_id)
        .bind(flow.account_id.map(str::to_string))
        .bind(flow.purpose)
        .bind(flow.channel)
        .bind(flow.created_at.timestamp_millis())
        .bind(flow.expires_at.timestamp_millis())
        .bind(flow.login_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The flow `flow_id` of `purpose`, if there is one.
    pub async fn flow(&self, flow_id: &str, purpose: &str) -> Result<Option<Flow>, DbError> {
        let row = sqlx::query(
            "SELECT flow_id, account_id, login_id, created_at, channel, expires_at FROM flows WHERE flow_id = $1 AND purpose = $2",
        )
        .bind(flow_id)
        .bind(purpose)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let corrupt = |e: ledger_domain::values::InvalidValue| DbError::Corrupt(e.to_string());
        let account_id: Option<String> = row.try_get("account_id")?;
        Ok(Some(Flow {
            flow_id: ledger_domain::FlowId::parse(&row.try_get::<String, _>("flow_id")?).map_err(corrupt)?,
            account_id: account_id.as_deref().map(ledger_domain::AccountId::parse).transpose().map_err(corrupt)?,
            login_id: row.try_get("login_id")?,
            created_at: ledger_projections::from_millis(row.try_get("created_at")?),
            channel: row.try_get("channel")?,
            expires_at: ledger_projections::from_millis(row.try_get("expires_at")?),
        }))
    }
}
