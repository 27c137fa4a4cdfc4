//! Stored account events of an older shape, brought to the current one
//! before anything reads them. Version 2 of an event has fields that its
//! version 1 did not (a code's address slot, a login's environment, ...);
//! the upcaster writes the value a version-1 event meant. Every reader of
//! stored account events goes through [`read`] or [`AccountUpcaster`].

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::{json, Value};

use super::AccountEvent;

/// A field an event gained, and what an event without it meant.
type Added = (&'static str, fn() -> Value);

/// The fields each event gained in version 2.
fn added_in_2(event_type: &str) -> &'static [Added] {
    match event_type {
        "EmailAddressChanged" | "EmailReachabilityChanged" | "EmailCodeIssued" => &[("slot", || json!(1))],
        "TradingPasswordChanged" => &[("temporary", || json!(false))],
        "RegistrationStarted" | "PasswordVerified" => &[("channel", || Value::Null)],
        "EmailCodeVerified" => &[("factor", || json!("email_code"))],
        "PasskeyLoginSucceeded" => &[
            ("authenticator", || json!("not_reported")),
            ("environment", || Value::Null),
            ("new_environment", || json!(false)),
            ("second_factor_flow", || Value::Null),
        ],
        "CrossDeviceSignInSucceeded" => &[("second_factor_flow", || Value::Null)],
        "SessionStepUpPassed" => &[("session", || json!(""))],
        "PasswordLoginSucceeded" => &[("environment", || Value::Null), ("new_environment", || json!(false))],
        "PasswordRejected" => &[("client", || Value::Null)],
        "LoginLocked" => &[("clients", || json!([]))],
        _ => &[],
    }
}

/// The fields each event gained in version 3.
fn added_in_3(event_type: &str) -> &'static [Added] {
    match event_type {
        "EmailAddressChanged" => &[("previous", || Value::Null)],
        _ => &[],
    }
}

/// The version an event of this type is written with today.
pub fn current_version(event_type: &str) -> &'static str {
    if !added_in_3(event_type).is_empty() {
        "3"
    } else if !added_in_2(event_type).is_empty() {
        "2"
    } else {
        "1"
    }
}

/// A stored payload in the current shape: each later version's fields
/// added with what an event without them meant.
pub fn upcast(event_type: &str, version: &str, mut payload: Value) -> Value {
    let later: &[fn(&str) -> &'static [Added]] = match version {
        "1" => &[added_in_2, added_in_3],
        "2" => &[added_in_3],
        _ => &[],
    };
    if let Some(fields) = payload.get_mut(event_type).and_then(Value::as_object_mut) {
        for added in later {
            for (name, meant) in added(event_type) {
                fields.entry(name.to_string()).or_insert_with(meant);
            }
        }
    }
    payload
}

/// Reads a stored account event of any version.
pub fn read(event_type: &str, version: &str, payload: &Value) -> Result<AccountEvent, serde_json::Error> {
    serde_json::from_value(upcast(event_type, version, payload.clone()))
}

/// The event store's upcaster for account events.
pub struct AccountUpcaster;

impl EventUpcaster for AccountUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_version != current_version(event_type)
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        let payload = upcast(&event.event_type, &event.event_version, event.payload);
        SerializedEvent { payload, event_version: current_version(&event.event_type).to_string(), ..event }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{CodeFactor, LoginAuthenticator};

    #[test]
    fn a_version_1_login_reads_as_it_meant() {
        let stored = json!({"PasskeyLoginSucceeded": {"passkey_id": "p", "credential_id": "c", "assertion":
            {"counter": 3, "backup_state": true, "backup_eligible": true, "user_verified": true, "authenticator_attachment": null}}});
        let AccountEvent::PasskeyLoginSucceeded { authenticator, environment, new_environment, second_factor_flow, .. } =
            read("PasskeyLoginSucceeded", "1", &stored).unwrap()
        else {
            panic!("a login")
        };
        assert_eq!(authenticator, LoginAuthenticator::NotReported);
        assert_eq!((environment, new_environment, second_factor_flow), (None, false, None));
    }

    #[test]
    fn a_version_1_code_was_mailed_to_the_first_address() {
        let stored = json!({"EmailCodeIssued": {"flow_id": "f", "code_id": "c", "destination": "t***@example.jp",
            "issued_at": "2026-06-21T00:00:00Z", "expires_at": "2026-06-21T00:10:00Z", "resend": false}});
        let upcast = upcast("EmailCodeIssued", "1", stored);
        assert_eq!(upcast["EmailCodeIssued"]["slot"], 1);
        let verified = read("EmailCodeVerified", "1", &json!({"EmailCodeVerified": {"flow_id": "f", "code_id": "c"}}));
        assert!(matches!(verified, Ok(AccountEvent::EmailCodeVerified { factor: CodeFactor::EmailCode, .. })), "{verified:?}");
    }

    #[test]
    fn an_address_change_of_versions_1_and_2_reads_without_the_address_it_replaced() {
        assert_eq!(current_version("EmailAddressChanged"), "3");
        for (version, stored) in [
            ("1", json!({"EmailAddressChanged": {"email": "new@example.jp"}})),
            ("2", json!({"EmailAddressChanged": {"email": "new@example.jp", "slot": 1}})),
        ] {
            let read = read("EmailAddressChanged", version, &stored).unwrap();
            assert!(matches!(read, AccountEvent::EmailAddressChanged { slot: 1, previous: None, .. }), "{version}: {read:?}");
            assert!(AccountUpcaster.can_upcast("EmailAddressChanged", version));
        }
        assert!(!AccountUpcaster.can_upcast("EmailAddressChanged", "3"));
    }

    #[test]
    fn what_is_written_today_is_left_alone_and_versioned() {
        assert_eq!(current_version("PasskeyLoginSucceeded"), "2");
        assert_eq!(current_version("AccountOpened"), "1");
        let today = json!({"SessionStepUpPassed": {"session": "s-1"}});
        assert_eq!(upcast("SessionStepUpPassed", "2", today.clone()), today);
        assert!(AccountUpcaster.can_upcast("PasskeyLoginSucceeded", "1"));
        assert!(!AccountUpcaster.can_upcast("PasskeyLoginSucceeded", "2"));
        assert!(!AccountUpcaster.can_upcast("AccountOpened", "1"));
    }
}
