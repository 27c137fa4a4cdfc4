//! Personal data in a copy that leaves the ledger, masked: e-mail
//! addresses, IP addresses, User-Agent strings and login IDs. A masked copy
//! still tells a security analyst what happened, from which network and to
//! which account (the account ID is the ledger's own, not personal data),
//! but not who the person is.

use std::collections::BTreeMap;

use serde_json::Value;

/// The keys whose values are personal data, wherever they occur (the
/// event's payload, its metadata, the trail row's own fields).
const PERSONAL: &[(&str, Kind)] = &[
    ("email", Kind::Email),
    ("previous", Kind::Email),
    ("login_id", Kind::LoginId),
    ("ip", Kind::Ip),
    ("client", Kind::Ip),
    ("clients", Kind::Ip),
    ("user_agent", Kind::UserAgent),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Email,
    LoginId,
    Ip,
    UserAgent,
}

/// `taro@example.jp` -> `t***@example.jp`: the provider stays, the person goes.
fn email(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".to_string(),
    }
}

/// `203.0.113.7` -> `203.0.113.0/24`, an IPv6 address to its /48: the
/// network an analyst correlates on, not the household.
fn ip(value: &str) -> String {
    match value.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) if value.is_empty() => String::new(),
        Err(_) => "***".to_string(),
    }
}

/// `12345678` -> `12******`.
fn login_id(value: &str) -> String {
    let n = value.chars().count();
    let kept: String = value.chars().take(2.min(n / 2)).collect();
    format!("{kept}{}", "*".repeat(n - kept.chars().count()))
}

fn masked(kind: Kind, value: &str) -> String {
    match kind {
        Kind::Email => email(value),
        Kind::LoginId => login_id(value),
        Kind::Ip => ip(value),
        Kind::UserAgent if value.is_empty() => String::new(),
        Kind::UserAgent => "***".to_string(),
    }
}

/// Masks the personal data of a trail row (as JSON, the JSON Lines export's
/// form) in place: the fields themselves, and every place a readable line
/// (`line.en`, `line.ja`) quotes them. Hashes and IDs are left as they are.
pub fn mask(row: &mut Value) {
    let mut replaced = BTreeMap::new();
    mask_fields(row, &mut replaced);
    // Longest first, so an address is replaced before a login ID inside it.
    let mut pairs: Vec<(String, String)> = replaced.into_iter().filter(|(from, _)| from.chars().count() >= 3).collect();
    pairs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    if let Some(line) = row.get_mut("line").filter(|_| !pairs.is_empty()) {
        mask_quotes(line, &pairs);
    }
}

/// A signal's ID names the client or network a spray came from
/// (`many_login_ids_from_one_client:203.0.113.7:...`): that part masked.
fn mask_signal_id(id: &mut String, replaced: &mut BTreeMap<String, String>) {
    let parts: Vec<String> = id
        .split(':')
        .map(|part| {
            let address = part.split('-').next().unwrap_or(part);
            if address.parse::<std::net::IpAddr>().is_ok() {
                let m = ip(address).replace('/', "-");
                replaced.insert(address.to_string(), ip(address));
                m
            } else {
                part.to_string()
            }
        })
        .collect();
    *id = parts.join(":");
}

fn kind_of(key: &str) -> Option<Kind> {
    PERSONAL.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind)
}

fn mask_fields(value: &mut Value, replaced: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (kind_of(key), v) {
                    (Some(kind), v) => mask_value(kind, v, replaced),
                    (None, Value::String(id)) if key == "signal_id" => mask_signal_id(id, replaced),
                    (None, v) => mask_fields(v, replaced),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_fields(v, replaced)),
        _ => {}
    }
}

fn mask_value(kind: Kind, value: &mut Value, replaced: &mut BTreeMap<String, String>) {
    match value {
        Value::String(s) => {
            let m = masked(kind, s);
            replaced.insert(std::mem::take(s), m.clone());
            *s = m;
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_value(kind, v, replaced)),
        // An address kept as an object (`{"address": ...}`) or anything else
        // under a personal key: every string in it.
        Value::Object(map) => map.values_mut().for_each(|v| mask_value(kind, v, replaced)),
        _ => {}
    }
}

fn mask_quotes(value: &mut Value, pairs: &[(String, String)]) {
    match value {
        Value::String(s) => {
            for (from, to) in pairs {
                if s.contains(from.as_str()) {
                    *s = s.replace(from.as_str(), to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_quotes(v, pairs)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_quotes(v, pairs)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_kind_is_masked_as_an_analyst_still_reads_it() {
        assert_eq!(email("taro.yamada@example.jp"), "t***@example.jp");
        assert_eq!(ip("203.0.113.7"), "203.0.113.0/24");
        assert_eq!(ip("2001:db8:85a3::8a2e:370:7334"), "2001:db8:85a3::/48");
        assert_eq!(ip("unknown"), "***");
        assert_eq!(login_id("12345678"), "12******");
        assert_eq!(login_id("ab"), "a*");
    }

    #[test]
    fn fields_anywhere_and_the_lines_that_quote_them_are_masked() {
        let mut row = json!({
            "login_id": "12345678",
            "ip": "198.51.100.20",
            "user_agent": "Mozilla/5.0 (iPhone)",
            "metadata": {"ip": "198.51.100.20", "user_agent": "Mozilla/5.0 (iPhone)", "actor": "customer"},
            "event": {"EmailAddressChanged": {"email": "hanako@example.jp", "previous": "old@example.jp", "slot": 1}},
            "line": {"en": "Login ID 12345678 changed its address to hanako@example.jp", "ja": "12345678 hanako@example.jp"},
            "account_id": "acc-1",
        });
        mask(&mut row);
        let text = row.to_string();
        for personal in ["12345678", "198.51.100.20", "Mozilla", "hanako@", "old@example.jp"] {
            assert!(!text.contains(personal), "{personal} left in {text}");
        }
        assert_eq!(row["line"]["en"], "Login ID 12****** changed its address to h***@example.jp");
        assert_eq!(row["metadata"]["ip"], "198.51.100.0/24");
        assert_eq!(row["account_id"], "acc-1");
        assert_eq!(row["metadata"]["actor"], "customer");
    }

    #[test]
    fn a_signal_naming_a_client_is_masked_and_hashes_are_not_touched() {
        let mut row = json!({
            "login_id": "abc",
            "hash": "abcabc", "leaf_hash": "xabcx",
            "event": {"SignalReviewed": {"signal_id": "many_login_ids_from_one_client:203.0.113.7:1795478400000", "outcome": "confirmed"}},
            "line": {"en": "Signal many_login_ids_from_one_client:203.0.113.7:1795478400000 (from 203.0.113.7) was confirmed."},
        });
        mask(&mut row);
        assert_eq!(row["event"]["SignalReviewed"]["signal_id"], "many_login_ids_from_one_client:203.0.113.0-24:1795478400000");
        assert!(!row["line"]["en"].as_str().unwrap().contains("203.0.113.7"), "{}", row["line"]);
        assert_eq!((row["hash"].clone(), row["leaf_hash"].clone()), (json!("abcabc"), json!("xabcx")));
    }

    #[test]
    fn lists_of_clients_are_masked() {
        let mut row = json!({"event": {"LoginLocked": {"clients": ["192.0.2.1", "192.0.2.2"], "consecutive_failures": 5}}});
        mask(&mut row);
        assert_eq!(row["event"]["LoginLocked"]["clients"], json!(["192.0.2.0/24", "192.0.2.0/24"]));
    }
}
