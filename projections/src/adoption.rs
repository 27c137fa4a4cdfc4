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
            E::RegistrationRefused { reason, .. } => {
                count(&format!("registrations_refused:{}", reason.code()), 1);
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
                    // Deleted on the customer's own word, from the status
                    // screen or by reporting its use as not theirs.
                    ledger_domain::account::Revoker::Customer | ledger_domain::account::Revoker::ReportedByCustomer => "passkeys_deleted",
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

/// What the report counts, for a day or a whole period.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct Figures {
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
    /// First registrations refused, by reason (`email_shared_with_other_accounts`,
    /// `temporary_password`, `email_unreachable`, `login_locked`, ...).
    pub registrations_refused: std::collections::BTreeMap<String, i64>,
    /// Accounts that logged in (through that channel), each counted once.
    pub active_accounts: i64,
    /// Of those, the accounts that logged in with a passkey at least once.
    pub passkey_login_accounts: i64,
    /// `passkey_login_accounts / active_accounts`, 0 when none were active.
    pub passkey_login_share: f64,
}

impl Figures {
    /// Adds another day's counts (not its accounts: those are counted once
    /// over a period, by [`totals`]).
    fn add_counts(&mut self, other: &Figures) {
        self.registrations += other.registrations;
        self.cross_device_sign_ins += other.cross_device_sign_ins;
        self.local_passkeys_added += other.local_passkeys_added;
        self.local_passkeys_declined += other.local_passkeys_declined;
        self.passkeys_deleted += other.passkeys_deleted;
        self.passkeys_deleted_by_support += other.passkeys_deleted_by_support;
        for (method, n) in &other.logins {
            *self.logins.entry(method.clone()).or_default() += n;
        }
        for (reason, n) in &other.registrations_refused {
            *self.registrations_refused.entry(reason.clone()).or_default() += n;
        }
    }

    fn set_accounts(&mut self, active: i64, by_passkey: i64) {
        self.active_accounts = active;
        self.passkey_login_accounts = by_passkey;
        if active > 0 {
            self.passkey_login_share = by_passkey as f64 / active as f64;
        }
    }
}

/// One day and channel of the report.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct DayRow {
    pub day: String,
    pub channel: String,
    #[serde(flatten)]
    pub figures: Figures,
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
        let row = &mut rows.entry((day.clone(), channel.clone())).or_insert_with(|| DayRow { day, channel, ..Default::default() }).figures;
        match metric.as_str() {
            "registrations" => row.registrations = n,
            "cross_device_sign_ins" => row.cross_device_sign_ins = n,
            "local_passkeys_added" => row.local_passkeys_added = n,
            "local_passkeys_declined" => row.local_passkeys_declined = n,
            "passkeys_deleted" => row.passkeys_deleted = n,
            "passkeys_deleted_by_support" => row.passkeys_deleted_by_support = n,
            m if m.starts_with("registrations_refused:") => {
                row.registrations_refused.insert(m["registrations_refused:".len()..].to_string(), n);
            }
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
        row.figures.set_accounts(r.try_get("active")?, r.try_get::<Option<i64>, _>("by_passkey")?.unwrap_or(0));
    }
    Ok(rows.into_values().collect())
}

/// A whole period, per channel (`all` for every channel together): the
/// days' figures summed, and the accounts counted once however many days
/// they were active.
#[derive(Debug, Clone, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct PeriodTotals {
    pub channel: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// An account whose first registration was refused in the period and
/// that has no passkey since: whom the brokerage may contact, and why.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ToContact {
    pub account_id: String,
    pub login_id: String,
    /// The last refusal's reason code.
    pub reason: String,
    /// The same, in words.
    #[schema(value_type = crate::read_models::Summary)]
    pub reason_words: ledger_domain::account::Line,
}

/// Accounts refused registration between the Japan-time days `from` and
/// `to` that still have no passkey, with the reason of their last refusal.
pub async fn to_contact(pool: &AnyPool, from: &str, to: &str) -> Result<Vec<ToContact>, DbError> {
    let day_start = |day: &str, next: bool| -> Result<i64, DbError> {
        let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| DbError::Corrupt(e.to_string()))?;
        let date = if next { date.succ_opt().unwrap_or(date) } else { date };
        let start = date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(|| DbError::Corrupt(format!("day {day}")))?;
        Ok((start - chrono::Duration::hours(9)).timestamp_millis())
    };
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT a.account_id, s.login_id, a.event_version, a.payload FROM audit_trail a
           JOIN status_accounts s ON s.account_id = a.account_id
          WHERE a.event_type = 'RegistrationRefused' AND a.at >= $1 AND a.at < $2
            AND NOT EXISTS (SELECT 1 FROM status_passkeys p WHERE p.account_id = a.account_id AND p.revoked_at IS NULL)
          ORDER BY a.audit_position",
    )
    .bind(day_start(from, false)?)
    .bind(day_start(to, true)?)
    .fetch_all(pool)
    .await?;
    let mut last: std::collections::BTreeMap<String, ToContact> = Default::default();
    for (account_id, login_id, version, payload) in rows {
        let payload: serde_json::Value = serde_json::from_str(&payload).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let event =
            ledger_domain::account::upcast::read("RegistrationRefused", &version, &payload).map_err(|e| DbError::Corrupt(e.to_string()))?;
        if let AccountEvent::RegistrationRefused { reason, .. } = event {
            let (en, ja) = reason.words();
            let reason_words = ledger_domain::account::Line { en: en.into(), ja: ja.into() };
            last.insert(account_id.clone(), ToContact { account_id, login_id, reason: reason.code().into(), reason_words });
        }
    }
    let mut out: Vec<ToContact> = last.into_values().collect();
    out.sort_by(|a, b| (a.reason.as_str(), a.login_id.as_str()).cmp(&(b.reason.as_str(), b.login_id.as_str())));
    Ok(out)
}

/// The period's totals per channel, then for all channels (`all`).
pub async fn totals(pool: &AnyPool, days: &[DayRow], from: &str, to: &str) -> Result<Vec<PeriodTotals>, DbError> {
    let mut by_channel: std::collections::BTreeMap<String, PeriodTotals> = Default::default();
    for day in days {
        for channel in [day.channel.as_str(), "all"] {
            let t = by_channel
                .entry(channel.to_string())
                .or_insert_with(|| PeriodTotals { channel: channel.to_string(), ..Default::default() });
            t.figures.add_counts(&day.figures);
        }
    }
    let distinct = sqlx::query(
        "SELECT channel, COUNT(DISTINCT account_id) AS active,
                COUNT(DISTINCT CASE WHEN by_passkey > 0 THEN account_id END) AS by_passkey
           FROM adoption_active WHERE day >= $1 AND day <= $2 GROUP BY channel
         UNION ALL
         SELECT 'all', COUNT(DISTINCT account_id),
                COUNT(DISTINCT CASE WHEN by_passkey > 0 THEN account_id END)
           FROM adoption_active WHERE day >= $1 AND day <= $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    for r in distinct {
        let channel: String = r.try_get("channel")?;
        let active: i64 = r.try_get("active")?;
        if active == 0 {
            continue;
        }
        let t = by_channel.entry(channel.clone()).or_insert_with(|| PeriodTotals { channel, ..Default::default() });
        t.figures.set_accounts(active, r.try_get("by_passkey")?);
    }
    let all = by_channel.remove("all");
    Ok(by_channel.into_values().chain(all).collect())
}
