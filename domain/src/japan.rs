//! Japan time, as customers and staff read it: Asia/Tokyo (UTC+9, no
//! daylight saving since 1951), from the IANA time zone database.

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Tokyo;
use chrono_tz::Tz;

/// An instant in Japan time.
pub fn japan_time(at: DateTime<Utc>) -> DateTime<Tz> {
    at.with_timezone(&Tokyo)
}

/// The Japan-time calendar day of an instant, `YYYY-MM-DD`.
pub fn japan_day(at: DateTime<Utc>) -> String {
    japan_time(at).format("%Y-%m-%d").to_string()
}

/// An instant in Japan time to the second, for readable lines:
/// `2026-11-24 02:22:37`.
pub fn japan_seconds(at: DateTime<Utc>) -> String {
    japan_time(at).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An instant in a readable line, in English and Japanese:
/// `2026-11-24 02:22:37 JST`, `2026-11-24 02:22:37（日本時間）`.
pub fn japan_time_words(at: DateTime<Utc>) -> (String, String) {
    let at = japan_seconds(at);
    (format!("{at} JST"), format!("{at}（日本時間）"))
}

/// An instant as data staff read: RFC 3339 in Japan time, to the
/// millisecond, `2026-11-24T02:22:37.000+09:00`.
pub fn japan_rfc3339(at: DateTime<Utc>) -> String {
    japan_time(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// `#[serde(serialize_with = "ledger_domain::japan::serialize")]`: an
/// instant kept in UTC, shown in Japan time ([`japan_rfc3339`]).
pub fn serialize<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&japan_rfc3339(*at))
}

/// [`serialize`] for an instant that may be absent.
pub fn serialize_option<S: serde::Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_some(&japan_rfc3339(*at)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn japan_is_nine_hours_ahead_and_its_day_turns_at_15_00_utc() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 14, 59, 59).unwrap();
        assert_eq!(japan_time(at).to_rfc3339(), "2026-11-23T23:59:59+09:00");
        assert_eq!(japan_day(at), "2026-11-23");
        assert_eq!(japan_day(at + chrono::Duration::seconds(1)), "2026-11-24");
    }
}
