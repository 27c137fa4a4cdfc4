//! The adoption report: per day (Japan time, the brokerages' business day)
//! and channel, registrations, logins by method, cross-device sign-ins,
//! local passkeys added and declined, deletions, and the share of active
//! accounts that logged in with a passkey.

use chrono::{DateTime, FixedOffset, Utc};
use ledger_domain::account::LoginAuthenticator;
use ledger_domain::AccountEvent;
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::DbError;
use crate::projector::LoggedEvent;

/// The JST calendar day of an instant, `YYYY-MM-DD`.
pub fn jst_day(at: DateTime<Utc>) -> String {
    let jst = FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| unreachable!("+09:00 is a valid offset"));
    at.with_timezone(&jst).format("%Y-%m-%d").to_string()
}

async fn count(conn: &mut AnyConnection, day: &str, channel: &str, metric: &str, n: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO adoption_daily (day, channel, metric, count) VALUES ($1, $2, $3, $4)
         ON CONFLICT (day, channel, metric) DO UPDATE SET count = adoption_daily.count + excluded.count",
    )
    .bind(day)
    .bind(channel)
    .bind(metric)
    .bind(n)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn active(conn: &mut AnyConnection, day: &str, channel: &str, account_id: &str, by_passkey: bool) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO adoption_active (day, channel, account_id, by_passkey) VALUES ($1, $2, $3, $4)
         ON CONFLICT (day, channel, account_id) DO UPDATE
            SET by_passkey = CASE WHEN excluded.by_passkey > adoption_active.by_passkey THEN excluded.by_passkey ELSE adoption_active.by_passkey END",
    )
    .bind(day)
    .bind(channel)
    .bind(account_id)
    .bind(by_passkey as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Counts one account event.
pub async fn apply(conn: &mut AnyConnection, event: &LoggedEvent, parsed: &AccountEvent, at: DateTime<Utc>) -> Result<(), DbError> {
    use AccountEvent as E;
    let day = jst_day(at);
    let channel = event.metadata.get("channel").and_then(Value::as_str).unwrap_or("web").to_string();
    let account = event.aggregate_id.as_str();
    let login = |method: &'static str, by_passkey: bool| Some((method, by_passkey));
    let logged_in = match parsed {
        E::PasskeyRegistered { .. } => {
            count(conn, &day, &channel, "registrations", 1).await?;
            None
        }
        E::PasskeyLoginSucceeded { second_factor_flow: Some(_), .. } => login("password_and_passkey", true),
        E::PasskeyLoginSucceeded { authenticator: LoginAuthenticator::SecurityKey, .. } => login("security_key", true),
        E::PasskeyLoginSucceeded { .. } => login("passkey", true),
        E::CrossDeviceSignInSucceeded { .. } => {
            count(conn, &day, &channel, "cross_device_sign_ins", 1).await?;
            login("cross_device", true)
        }
        E::PasswordLoginSucceeded { .. } => login("password_and_email_code", false),
        E::LocalPasskeyAdded { .. } => {
            count(conn, &day, &channel, "local_passkeys_added", 1).await?;
            None
        }
        E::LocalPasskeyDeclined { .. } => {
            count(conn, &day, &channel, "local_passkeys_declined", 1).await?;
            None
        }
        E::PasskeysRevoked { passkeys, .. } => {
            count(conn, &day, &channel, "passkeys_deleted", passkeys.len() as i64).await?;
            None
        }
        _ => None,
    };
    if let Some((method, by_passkey)) = logged_in {
        count(conn, &day, &channel, &format!("logins_{method}"), 1).await?;
        active(conn, &day, &channel, account, by_passkey).await?;
    }
    Ok(())
}

/// One day and channel of the report.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct DayRow {
    pub day: String,
    pub channel: String,
    pub registrations: i64,
    pub logins: std::collections::BTreeMap<String, i64>,
    pub cross_device_sign_ins: i64,
    pub local_passkeys_added: i64,
    pub local_passkeys_declined: i64,
    pub passkeys_deleted: i64,
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
