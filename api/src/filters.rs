//! The audit trail's filters as staff give them (the API's query string,
//! the command line's flags), read and checked the same way for both: an
//! account by its ID or its login ID, event types as a list in any case
//! (each one the catalogue knows), a channel the ledger records, instants
//! as RFC 3339 or Japan-time days, and a range that is not inverted.

use chrono::{DateTime, NaiveDate};
use ledger_projections::audit::AuditFilter;

use crate::storage::Store;

/// The filters as given, before they are read.
#[derive(Debug, Clone, Default)]
pub struct GivenFilters {
    /// An account ID, or a login ID.
    pub account: Option<String>,
    /// Event types, comma-separated, in any case.
    pub types: Option<String>,
    pub actor: Option<String>,
    pub channel: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Why filters cannot be read: a sentence for the staff member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// A storage failure while reading the filters (the login ID lookup).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Invalid(#[from] FilterError),
    #[error(transparent)]
    Storage(#[from] ledger_projections::DbError),
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// An instant: RFC 3339, or a date (the start of that day in Japan time).
pub fn instant(s: &str) -> Result<i64, FilterError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        FilterError(format!("{s:?} is neither an RFC 3339 instant (2026-11-24T09:00:00+09:00) nor a day (2026-11-24, Japan time)."))
    })?;
    let start = day.and_hms_opt(0, 0, 0).ok_or_else(|| FilterError(format!("{s:?} is not a day")))?;
    Ok((start.and_utc() - chrono::Duration::hours(9)).timestamp_millis())
}

/// Event types as the catalogue spells them; every unknown one named.
pub fn event_types(given: &str) -> Result<Vec<String>, FilterError> {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for name in given.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match ledger_domain::words::event_type_named(name) {
            Some(name) if !known.iter().any(|k| k == name) => known.push(name.to_string()),
            Some(_) => {}
            None => unknown.push(name.to_string()),
        }
    }
    if !unknown.is_empty() {
        return Err(FilterError(format!(
            "unknown event type(s): {}. The types are those of docs/events.md, e.g. PasskeyRegistered.",
            unknown.join(", ")
        )));
    }
    Ok(known)
}

/// The filters as a staff event records them: those given, instants in
/// Japan time (RFC 3339), as staff read them.
pub fn recorded(filter: &AuditFilter) -> serde_json::Value {
    use serde_json::Value;
    let instant = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map(|at| Value::from(ledger_domain::japan::japan_rfc3339(at))).unwrap_or(Value::Null)
    };
    let Ok(Value::Object(fields)) = serde_json::to_value(filter) else { return Value::Object(Default::default()) };
    Value::Object(
        fields
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match (k.as_str(), v.as_i64()) {
                ("from" | "to", Some(ms)) => (k, instant(ms)),
                _ => (k, v),
            })
            .collect(),
    )
}

impl GivenFilters {
    /// Reads the filters; a login ID is looked up on the command side.
    pub async fn read(&self, store: &Store) -> Result<AuditFilter, ReadError> {
        let channel = given(&self.channel).map(|c| c.to_ascii_lowercase());
        if let Some(channel) = &channel {
            if !matches!(channel.as_str(), "cli" | "staff" | "integration") && channel.parse::<ledger_domain::Channel>().is_err() {
                return Err(
                    FilterError("channel must be web, mobile_web, mobile_app, desktop_app, staff, integration or cli.".into()).into()
                );
            }
        }
        if let Some(actor) = given(&self.actor) {
            let known = matches!(actor.as_str(), "customer" | "core_system" | "system" | "staff" | "anonymous")
                || actor.strip_prefix("staff:").is_some_and(|id| !id.is_empty())
                || actor.strip_prefix("operator:").is_some_and(|id| !id.is_empty());
            if !known {
                return Err(FilterError(format!(
                    "unknown actor {actor:?}: customer, core_system, system, anonymous, staff, staff:<staff_id> or operator:<...>."
                ))
                .into());
            }
        }
        let from = given(&self.from).map(|s| instant(&s)).transpose()?;
        let to = given(&self.to).map(|s| instant(&s)).transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(FilterError("from must be before to (to is exclusive).".into()).into());
            }
        }
        let account_id = match given(&self.account) {
            None => None,
            Some(id) if uuid::Uuid::parse_str(&id).is_ok() => Some(id),
            Some(login_id) => match store.login(&login_id).await? {
                Some((account_id, _)) => Some(account_id),
                None => return Err(FilterError(format!("no account has the login ID {login_id:?}.")).into()),
            },
        };
        Ok(AuditFilter {
            account_id,
            event_types: given(&self.types).map(|t| event_types(&t)).transpose()?.unwrap_or_default(),
            actor: given(&self.actor),
            channel,
            from,
            to,
            through: None,
        })
    }
}
