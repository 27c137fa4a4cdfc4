//! A trail row mapped to the Open Cybersecurity Schema Framework (OCSF
//! 1.3), for a SIEM that reads OCSF (Amazon Security Lake, Splunk's OCSF
//! add-on, Sentinel's ASIM through it). The table is in `docs/streams.md`.
//! The row's own fields the classes have no place for (leaf index and
//! hash, channel, the event itself) go under `unmapped`.

use serde_json::{json, Map, Value};

/// The OCSF version the mapping follows.
pub const VERSION: &str = "1.3.0";

/// The CloudEvents `dataschema` of an OCSF event.
pub const SCHEMA: &str = "https://schema.ocsf.io/1.3.0/";

/// An OCSF class and activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub class_uid: u32,
    pub class_name: &'static str,
    pub category_uid: u32,
    pub category_name: &'static str,
    pub activity_id: u32,
    pub activity_name: &'static str,
}

const AUTHENTICATION: (u32, &str, u32, &str) = (3002, "Authentication", 3, "Identity & Access Management");
const ACCOUNT_CHANGE: (u32, &str, u32, &str) = (3001, "Account Change", 3, "Identity & Access Management");
const API_ACTIVITY: (u32, &str, u32, &str) = (6003, "API Activity", 6, "Application Activity");
const BASE: (u32, &str, u32, &str) = (0, "Base Event", 0, "Uncategorized");

fn class(
    (class_uid, class_name, category_uid, category_name): (u32, &'static str, u32, &'static str),
    activity: (u32, &'static str),
) -> Class {
    Class { class_uid, class_name, category_uid, category_name, activity_id: activity.0, activity_name: activity.1 }
}

/// The class and activity of an event type.
pub fn class_of(event_type: &str) -> Class {
    const LOGON: (u32, &str) = (1, "Logon");
    const LOGOFF: (u32, &str) = (2, "Logoff");
    const READ: (u32, &str) = (2, "Read");
    const OTHER: (u32, &str) = (99, "Other");
    match event_type {
        "PasskeyLoginSucceeded"
        | "CrossDeviceSignInSucceeded"
        | "PasswordLoginSucceeded"
        | "PasskeyLoginFailed"
        | "PasswordRejected"
        | "PasswordLoginRefused"
        | "UnknownLoginIdRejected"
        | "UnknownCredentialRejected"
        | "ConsoleSignedIn"
        | "ConsoleSignInRefused"
        | "StaffTokenRefused" => class(AUTHENTICATION, LOGON),
        "SessionsEnded" | "ConsoleSignedOut" => class(AUTHENTICATION, LOGOFF),
        "AccountOpened" | "StaffMemberAdded" => class(ACCOUNT_CHANGE, (1, "Create")),
        "LoginPasswordChanged" | "TradingPasswordChanged" => class(ACCOUNT_CHANGE, (3, "Password Change")),
        "StaffMemberDisabled" | "StaffTokenRevoked" => class(ACCOUNT_CHANGE, (5, "Disable")),
        "LoginLocked" | "PasskeyDeletionLocked" => class(ACCOUNT_CHANGE, (9, "Lock")),
        "PasskeyRegistered" | "LocalPasskeyAdded" | "OtpDeviceRegistered" | "PasskeyReinstated" | "ConsolePasskeyEnrolled" => {
            class(ACCOUNT_CHANGE, (10, "MFA Factor Enable"))
        }
        "PasskeysRevoked" | "PasskeySuspended" | "OtpDeviceRemoved" => class(ACCOUNT_CHANGE, (11, "MFA Factor Disable")),
        "LoginUnlocked" => class(ACCOUNT_CHANGE, (12, "Unlock")),
        "EmailAddressChanged" | "EmailReachabilityChanged" | "StaffTokenIssued" | "StaffEnrolmentLinkIssued" => {
            class(ACCOUNT_CHANGE, OTHER)
        }
        "AccountViewedByStaff"
        | "AuditTrailQueried"
        | "AuditTrailExported"
        | "AuditTrailVerified"
        | "SignalsListed"
        | "AdoptionReportRead"
        | "AuditHeadRead"
        | "AuditCheckpointRead"
        | "AuditCheckpointsListed"
        | "AuditInclusionProofRead"
        | "AuditConsistencyProofRead"
        | "WebhookSubscriptionsListed" => class(API_ACTIVITY, READ),
        "SignalReviewed" | "WebhookSubscriptionDisabled" | "WebhookSecretRotated" | "WebhookReplayRequested" => {
            class(API_ACTIVITY, (3, "Update"))
        }
        "WebhookSubscriptionAdded" => class(API_ACTIVITY, (1, "Create")),
        "StaffAccessRefused" => class(API_ACTIVITY, OTHER),
        _ => class(BASE, OTHER),
    }
}

/// Whether the event records a refusal (OCSF status Failure).
fn failed(event_type: &str) -> bool {
    event_type.ends_with("Failed")
        || event_type.ends_with("Rejected")
        || event_type.ends_with("Refused")
        || matches!(
            event_type,
            "LoginLocked" | "PasskeyDeletionLocked" | "AttemptsThrottled" | "LoginAttemptsThrottled" | "EmailCodeExhausted"
        )
}

/// OCSF severity: a lock is Medium, a refusal Low, the rest Informational.
fn severity(event_type: &str) -> (u32, &'static str) {
    match event_type {
        "LoginLocked" | "PasskeyDeletionLocked" | "AttemptsThrottled" | "LoginAttemptsThrottled" | "PasskeysRevoked" => (3, "Medium"),
        t if failed(t) => (2, "Low"),
        _ => (1, "Informational"),
    }
}

/// The authentication factors of a login, as OCSF `auth_factors`.
fn auth_factors(event_type: &str, payload: &Value) -> (Vec<Value>, bool) {
    let webauthn = json!({"factor_type_id": 10, "factor_type": "WebAuthn"});
    let password = json!({"factor_type_id": 11, "factor_type": "Password"});
    let email = json!({"factor_type_id": 8, "factor_type": "Email"});
    match event_type {
        "PasskeyLoginSucceeded" | "PasskeyLoginFailed" | "ConsoleSignedIn" | "ConsoleSignInRefused" => {
            // A passkey used as the second step after a password.
            if payload.get("second_factor_flow").is_some_and(|f| !f.is_null()) {
                (vec![password, webauthn], true)
            } else {
                (vec![webauthn], true)
            }
        }
        "CrossDeviceSignInSucceeded" => (vec![webauthn], true),
        "PasswordLoginSucceeded" => (vec![password, email], false),
        "PasswordRejected" | "PasswordLoginRefused" | "UnknownLoginIdRejected" => (vec![password], false),
        "UnknownCredentialRejected" => (vec![webauthn], false),
        _ => (vec![], false),
    }
}

/// The row (the JSON Lines form, masked or not) as an OCSF event.
pub fn map(row: &Value) -> Value {
    let text = |key: &str| row.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let event_type = text("type");
    // The payload is `{"<EventType>": {...}}` as stored.
    let payload = row.get("event").and_then(|e| e.get(&event_type)).cloned().unwrap_or(Value::Null);
    let class = class_of(&event_type);
    let (severity_id, severity) = severity(&event_type);
    let (status_id, status) = if failed(&event_type) { (2, "Failure") } else { (1, "Success") };
    let at = row.get("at_utc").and_then(Value::as_str).unwrap_or_default();
    let time = chrono::DateTime::parse_from_rfc3339(at).map(|t| t.timestamp_millis()).unwrap_or_default();

    let mut out = Map::new();
    out.insert("class_uid".into(), json!(class.class_uid));
    out.insert("class_name".into(), json!(class.class_name));
    out.insert("category_uid".into(), json!(class.category_uid));
    out.insert("category_name".into(), json!(class.category_name));
    out.insert("activity_id".into(), json!(class.activity_id));
    out.insert("activity_name".into(), json!(class.activity_name));
    out.insert("type_uid".into(), json!(class.class_uid * 100 + class.activity_id));
    out.insert("type_name".into(), json!(format!("{}: {}", class.class_name, class.activity_name)));
    out.insert("severity_id".into(), json!(severity_id));
    out.insert("severity".into(), json!(severity));
    out.insert("status_id".into(), json!(status_id));
    out.insert("status".into(), json!(status));
    out.insert("time".into(), json!(time));
    out.insert("message".into(), row.pointer("/line/en").cloned().unwrap_or(Value::Null));
    out.insert(
        "metadata".into(),
        json!({
            "version": VERSION,
            "uid": text("event_id"),
            "log_name": "audit_trail",
            "sequence": row.get("position"),
            "original_time": at,
            "product": {"name": "passkey-ledger", "vendor_name": "passkey-ledger", "version": env!("CARGO_PKG_VERSION")},
        }),
    );
    // The customer the event is about; for staff streams, the member.
    let mut user = Map::new();
    match row.get("account_id").and_then(Value::as_str) {
        Some(account) => {
            user.insert("uid".into(), json!(account));
            if let Some(login_id) = row.get("login_id").and_then(Value::as_str) {
                user.insert("name".into(), json!(login_id));
            }
            user.insert("type".into(), json!("User"));
            user.insert("type_id".into(), json!(1));
        }
        None => {
            user.insert("uid".into(), json!(text("stream_id")));
            user.insert("type".into(), json!(if text("stream") == "staff" { "Admin" } else { "System" }));
            user.insert("type_id".into(), json!(if text("stream") == "staff" { 2 } else { 3 }));
        }
    }
    out.insert("user".into(), Value::Object(user));
    let actor_kind = text("actor_kind");
    if actor_kind == "staff" || actor_kind == "core_system" || actor_kind == "operator" {
        out.insert("actor".into(), json!({"user": {"uid": text("actor"), "name": row.get("actor_name"), "type": "Admin", "type_id": 2}}));
    }
    let ip = text("ip");
    if !ip.is_empty() {
        // A masked address is a network (`203.0.113.0/24`), not an address.
        let endpoint = if ip.contains('/') { json!({"subnet_uid": ip}) } else { json!({"ip": ip}) };
        out.insert("src_endpoint".into(), endpoint);
    }
    let user_agent = text("user_agent");
    if !user_agent.is_empty() {
        out.insert("http_request".into(), json!({"user_agent": user_agent}));
    }
    if class.class_uid == AUTHENTICATION.0 {
        let (factors, is_mfa) = auth_factors(&event_type, &payload);
        out.insert("auth_factors".into(), Value::Array(factors));
        out.insert("is_mfa".into(), json!(is_mfa));
        out.insert("auth_protocol_id".into(), json!(99));
        out.insert("auth_protocol".into(), json!(if event_type.starts_with("Password") { "Password" } else { "FIDO2 WebAuthn" }));
    }
    if class.class_uid == API_ACTIVITY.0 {
        out.insert("api".into(), json!({"operation": event_type}));
    }
    out.insert(
        "unmapped".into(),
        json!({
            "event_type": event_type,
            "channel": row.get("channel"),
            "leaf_index": row.get("leaf_index"),
            "leaf_hash": row.get("leaf_hash"),
            "event": row.get("event"),
        }),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passkey_login_is_an_authentication_logon_with_the_webauthn_factor() {
        let row = json!({
            "event_id": "e1", "position": 7, "type": "PasskeyLoginSucceeded", "at_utc": "2026-11-24T00:00:00.000Z",
            "account_id": "acc-1", "login_id": "12******", "ip": "203.0.113.0/24", "user_agent": "***", "actor_kind": "customer",
            "event": {"PasskeyLoginSucceeded": {"passkey_id": "p"}}, "line": {"en": "Signed in with a passkey."},
        });
        let ocsf = map(&row);
        assert_eq!(ocsf["class_uid"], 3002);
        assert_eq!(ocsf["category_uid"], 3);
        assert_eq!(ocsf["type_uid"], 300201);
        assert_eq!(ocsf["status_id"], 1);
        assert_eq!(ocsf["auth_factors"][0]["factor_type_id"], 10);
        assert_eq!(ocsf["is_mfa"], true);
        assert_eq!(ocsf["user"]["uid"], "acc-1");
        assert_eq!(ocsf["src_endpoint"]["subnet_uid"], "203.0.113.0/24");
        assert_eq!(ocsf["metadata"]["version"], "1.3.0");
        assert_eq!(ocsf["metadata"]["product"]["name"], "passkey-ledger");
        assert_eq!(ocsf["time"], 1_795_478_400_000i64);
    }

    #[test]
    fn a_failed_login_and_a_lock_are_failures_of_their_class() {
        let failed = map(&json!({"type": "PasskeyLoginFailed", "event": {}, "ip": "198.51.100.1"}));
        assert_eq!((failed["class_uid"].clone(), failed["status_id"].clone()), (json!(3002), json!(2)));
        assert_eq!(failed["src_endpoint"]["ip"], "198.51.100.1");
        let locked = map(&json!({"type": "LoginLocked", "event": {}}));
        assert_eq!((locked["type_uid"].clone(), locked["severity_id"].clone()), (json!(300109), json!(3)));
        assert_eq!(map(&json!({"type": "PasskeyRegistered"}))["activity_name"], "MFA Factor Enable");
        assert_eq!(map(&json!({"type": "LoginUnlocked"}))["type_uid"], 300112);
        assert_eq!(map(&json!({"type": "AuditTrailExported"}))["type_uid"], 600302);
        assert_eq!(map(&json!({"type": "EmailCodeIssued"}))["type_uid"], 99);
    }
}
