//! The adoption report: per day (Japan time, the brokerages' business day)
//! and channel, registrations, logins by method, cross-device sign-ins,
//! local passkeys added and declined, deletions, and the share of active
//! accounts that logged in with a passkey.

use chrono::{DateTime, Utc};
use ledger_domain::AccountEvent;
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::DbError;
use std::collections::HashMap;

use crate::event::Parsed;
use crate::rows::{self, Val};

/// The JST calendar day of an instant, `YYYY-MM-DD`.
pub fn jst_day(at: DateTime<Utc>) -> String {
    ledger_domain::japan::japan_day(at)
}

/// Counts a batch of account events: the day's figures summed in memory,
/// written with one upsert per table.
pub async fn apply(conn: &mut AnyConnection, batch: &[Parsed]) -> Result<(), DbError> {
    use AccountEvent as E;
    let mut counts: HashMap<(String, String, String), i64> = HashMap::new();
    let mut active: HashMap<(String, String, String), i64> = HashMap::new();
    for parsed in batch {
        let Some(event) = parsed.account()? else { continue };
        let day = jst_day(parsed.at);
        let channel = Some(parsed.channel()).filter(|c| !c.is_empty()).unwrap_or("web");
        let mut count = |metric: &str, n: i64| {
            *counts.entry((day.clone(), channel.to_string(), metric.to_string())).or_default() += n;
        };
        let logged_in = match event {
            E::PasskeyRegistered { .. } => {
                count("registrations", 1);
                None
            }
            E::CrossDeviceSignInSucceeded { .. } => {
                count("cross_device_sign_ins", 1);
                event.login_method()
            }
            E::PasskeyLoginSucceeded { .. } | E::PasswordLoginSucceeded { .. } => event.login_method(),
            E::LocalPasskeyAdded { .. } => {
                count("local_passkeys_added", 1);
                None
            }
            E::LocalPasskeyDeclined { .. } => {
                count("local_passkeys_declined", 1);
                None
            }
            E::PasskeysRevoked { passkeys, revoked_by } => {
                let metric = match revoked_by {
                    ledger_domain::account::Revoker::Customer => "passkeys_deleted",
                    ledger_domain::account::Revoker::Staff { .. } => "passkeys_deleted_by_support",
                };
                count(metric, passkeys.len() as i64);
                None
            }
            _ => None,
        };
        if let Some(method) = logged_in {
            count(&format!("logins_{}", method.as_str()), 1);
            let seen = active.entry((day.clone(), channel.to_string(), parsed.event.aggregate_id.clone())).or_default();
            *seen = (*seen).max(method.by_passkey() as i64);
        }
    }
    let rows: Vec<Vec<Val>> =
        counts.into_iter().map(|((day, channel, metric), n)| vec![day.into(), channel.into(), metric.into(), n.into()]).collect();
    rows::insert(
        conn,
        "INSERT INTO adoption_daily (day, channel, metric, count)",
        "ON CONFLICT (day, channel, metric) DO UPDATE SET count = adoption_daily.count + excluded.count",
        &rows,
    )
    .await?;
    let rows: Vec<Vec<Val>> = active
        .into_iter()
        .map(|((day, channel, account), by_passkey)| vec![day.into(), channel.into(), account.into(), by_passkey.into()])
        .collect();
    rows::insert(
        conn,
        "INSERT INTO adoption_active (day, channel, account_id, by_passkey)",
        "ON CONFLICT (day, channel, account_id) DO UPDATE
            SET by_passkey = CASE WHEN excluded.by_passkey > adoption_active.by_passkey THEN excluded.by_passkey ELSE adoption_active.by_passkey END",
        &rows,
    )
    .await
}

/// One day and channel of the report.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct DayRow {
    pub day: String,
    pub channel: String,
    pub registrations: i64,
    pub logins: std::collections::BTreeMap<String, i64>,
    pub cross_device_sign_ins: i64,
    pub local_passkeys_added: i64,
    pub local_passkeys_declined: i64,
    /// Passkeys the customers deleted themselves.
    pub passkeys_deleted: i64,
    /// Passkeys support deleted (a lost or replaced device), on the
    /// channel `staff`.
    pub passkeys_deleted_by_support: i64,
    /// Accounts that logged in that day through that channel.
    pub active_accounts: i64,
    /// Of those, the accounts that logged in with a passkey at least once.
    pub passkey_login_accounts: i64,
    /// `passkey_login_accounts / active_accounts`, 0 when none were active.
    pub passkey_login_share: f64,
}

/// The report for JST days `from..=to` (`YYYY-MM-DD`).
pub async fn report(pool: &AnyPool, from: &str, to: &str) -> Result<Vec<DayRow>, DbError> {
    let mut rows: std::collections::BTreeMap<(String, String), DayRow> = Default::default();
    let counts = sqlx::query("SELECT day, channel, metric, count FROM adoption_daily WHERE day >= $1 AND day <= $2")
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
    for r in counts {
        let (day, channel): (String, String) = (r.try_get("day")?, r.try_get("channel")?);
        let metric: String = r.try_get("metric")?;
        let n: i64 = r.try_get("count")?;
        let row = rows.entry((day.clone(), channel.clone())).or_insert_with(|| DayRow { day, channel, ..Default::default() });
        match metric.as_str() {
            "registrations" => row.registrations = n,
            "cross_device_sign_ins" => row.cross_device_sign_ins = n,
            "local_passkeys_added" => row.local_passkeys_added = n,
            "local_passkeys_declined" => row.local_passkeys_declined = n,
            "passkeys_deleted" => row.passkeys_deleted = n,
            "passkeys_deleted_by_support" => row.passkeys_deleted_by_support = n,
            m => {
                if let Some(method) = m.strip_prefix("logins_") {
                    row.logins.insert(method.to_string(), n);
                }
            }
        }
    }
    let actives = sqlx::query(
        "SELECT day, channel, COUNT(*) AS active, CAST(SUM(by_passkey) AS BIGINT) AS by_passkey FROM adoption_active
          WHERE day >= $1 AND day <= $2 GROUP BY day, channel",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    for r in actives {
        let (day, channel): (String, String) = (r.try_get("day")?, r.try_get("channel")?);
        let row = rows.entry((day.clone(), channel.clone())).or_insert_with(|| DayRow { day, channel, ..Default::default() });
        row.active_accounts = r.try_get("active")?;
        row.passkey_login_accounts = r.try_get::<Option<i64>, _>("by_passkey")?.unwrap_or(0);
        if row.active_accounts > 0 {
            row.passkey_login_share = row.passkey_login_accounts as f64 / row.active_accounts as f64;
        }
    }
    Ok(rows.into_values().collect())
}
