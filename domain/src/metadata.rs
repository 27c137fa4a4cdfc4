//! What the log records beside each event: when, who, through which channel
//! and from where. Written by the service and read by the projections with
//! this one type, stored as the event store's string map.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// The metadata of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    /// When it happened (stored as RFC 3339 UTC with milliseconds).
    pub at: DateTime<Utc>,
    /// `customer`, `core_system`, `staff:<id>`, `operator:<user>`,
    /// `anonymous` or `system`.
    pub actor: String,
    /// The channel of the request (`web`, `mobile_app`, ... or `cli`); none
    /// for what the ledger records by itself.
    pub channel: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The staff member whose token made the call, when the actor is not
    /// the member themself: the core system's integration calls
    /// (actor `core_system`) name the administrator they came through.
    pub staff_id: Option<String>,
}

impl EventMetadata {
    /// What the ledger records by itself (a notice, a mail that did not go
    /// out): actor `system`, no request.
    pub fn system(at: DateTime<Utc>) -> EventMetadata {
        EventMetadata { at, actor: "system".into(), channel: None, ip: None, user_agent: None, request_id: None, staff_id: None }
    }

    /// The same, made through the staff member `staff_id`'s token.
    pub fn through_staff(self, staff_id: &str) -> EventMetadata {
        EventMetadata { staff_id: Some(staff_id.to_string()), ..self }
    }

    /// The staff member who acted, or whose token the call came through.
    pub fn staff_member(&self) -> Option<&str> {
        self.staff_id.as_deref().or_else(|| self.actor.strip_prefix("staff:"))
    }

    /// The event store's form: a string map, absent fields left out.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            ("at".to_string(), self.at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ("actor".to_string(), self.actor.clone()),
        ]);
        for (key, value) in [
            ("channel", &self.channel),
            ("ip", &self.ip),
            ("user_agent", &self.user_agent),
            ("request_id", &self.request_id),
            ("staff_id", &self.staff_id),
        ] {
            if let Some(value) = value {
                map.insert(key.to_string(), value.clone());
            }
        }
        map
    }

    /// Reads stored metadata. None when `at` is missing or unreadable: an
    /// event without its time is not something to date 1970.
    pub fn from_stored(stored: &Value) -> Option<EventMetadata> {
        let field = |key: &str| stored.get(key).and_then(Value::as_str).map(str::to_string);
        let at = DateTime::parse_from_rfc3339(&field("at")?).ok()?.with_timezone(&Utc);
        Some(EventMetadata {
            at,
            actor: field("actor").filter(|a| !a.is_empty()).unwrap_or_else(|| "system".into()),
            channel: field("channel"),
            ip: field("ip"),
            user_agent: field("user_agent"),
            request_id: field("request_id"),
            staff_id: field("staff_id"),
        })
    }

    /// The actor's kind: `customer`, `core_system`, `anonymous`, `staff`,
    /// `operator` or `system`.
    pub fn actor_kind(&self) -> &'static str {
        match self.actor.as_str() {
            "customer" => "customer",
            "core_system" => "core_system",
            "anonymous" => "anonymous",
            a if a.starts_with("staff:") => "staff",
            a if a.starts_with("operator:") => "operator",
            _ => "system",
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn metadata_is_read_back_as_it_was_written() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap() + chrono::Duration::milliseconds(688);
        let written = EventMetadata {
            at,
            actor: "customer".into(),
            channel: Some("web".into()),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0".into()),
            request_id: Some("r-1".into()),
            staff_id: Some("s-1".into()),
        };
        let map = written.to_map();
        assert_eq!(map["at"], "2026-11-23T09:00:00.688Z");
        let stored = serde_json::to_value(&map).unwrap();
        assert_eq!(EventMetadata::from_stored(&stored), Some(written));
    }

    #[test]
    fn what_the_ledger_records_by_itself_has_no_request() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        let map = EventMetadata::system(at).to_map();
        assert_eq!(map.len(), 2, "{map:?}");
        assert_eq!(EventMetadata::system(at).actor_kind(), "system");
        assert_eq!(EventMetadata::from_stored(&serde_json::json!({"actor": "customer"})), None, "no time, no date");
    }
}
