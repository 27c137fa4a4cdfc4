//! WebAuthn glue around webauthn-rs: the relying party, the JSON forms the
//! browser uses, and the facts read from the authenticator data that the
//! library does not hand back (AAGUID, backup flags at registration).

use std::collections::HashMap;

use base64::Engine;
use serde_json::Value;
use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::Config;

/// Builds the relying party from the configuration.
pub fn relying_party(config: &Config) -> Result<Webauthn, String> {
    let origin = Url::parse(&config.origin).map_err(|e| format!("LEDGER_ORIGIN: {e}"))?;
    WebauthnBuilder::new(&config.rp_id, &origin)
        .map_err(|e| format!("relying party: {e:?}"))?
        .rp_name(&config.rp_name)
        .allow_any_port(false)
        .build()
        .map_err(|e| format!("relying party: {e:?}"))
}

/// The AAGUID -> provider name list (community list, names only).
pub fn providers() -> Result<HashMap<String, String>, String> {
    let providers: HashMap<String, String> = serde_json::from_str(include_str!("../assets/passkey-provider-aaguids.json"))
        .map_err(|e| format!("the passkey provider list (api/assets/passkey-provider-aaguids.json) does not read: {e}"))?;
    if providers.is_empty() {
        return Err("the passkey provider list (api/assets/passkey-provider-aaguids.json) is empty".into());
    }
    Ok(providers)
}

/// Asks for a discoverable credential (a passkey the customer can log in
/// with without typing an ID). webauthn-rs asks for none by default.
pub fn require_discoverable(options: &mut Value) {
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(Value::as_object_mut) {
        sel.insert("residentKey".into(), Value::from("required"));
        sel.insert("requireResidentKey".into(), Value::from(true));
        sel.insert("userVerification".into(), Value::from("required"));
    }
}

/// Facts the authenticator signed into its data at registration.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatorFacts {
    pub aaguid: String,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub counter: u32,
}

/// Reads the flags, counter and AAGUID from a registration response's
/// `attestationObject` (base64url CBOR with an `authData` byte string).
/// Call only after the library has verified the response.
pub fn registration_facts(credential: &Value) -> Option<AuthenticatorFacts> {
    let encoded = credential.pointer("/response/attestationObject")?.as_str()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')).ok()?;
    let object: ciborium::Value = ciborium::de::from_reader(bytes.as_slice()).ok()?;
    let auth_data = object.as_map()?.iter().find(|(k, _)| k.as_text() == Some("authData")).and_then(|(_, v)| v.as_bytes())?.clone();
    if auth_data.len() < 55 {
        return None;
    }
    let flags = auth_data[32];
    let counter = u32::from_be_bytes([auth_data[33], auth_data[34], auth_data[35], auth_data[36]]);
    let aaguid = uuid::Uuid::from_slice(&auth_data[37..53]).ok()?;
    Some(AuthenticatorFacts {
        aaguid: aaguid.hyphenated().to_string(),
        user_verified: flags & 0x04 != 0,
        backup_eligible: flags & 0x08 != 0,
        backup_state: flags & 0x10 != 0,
        counter,
    })
}

/// The transports the browser reported for a new credential.
pub fn transports(credential: &Value) -> Vec<String> {
    credential
        .pointer("/response/transports")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `authenticatorAttachment` as the client reported it. It is not signed:
/// it is recorded as reported. webauthn-rs-proto drops it, so it is read
/// from the request JSON.
pub fn reported_attachment(credential: &Value) -> Option<String> {
    credential
        .get("authenticatorAttachment")
        .and_then(Value::as_str)
        .filter(|a| matches!(*a, "platform" | "cross-platform"))
        .map(str::to_string)
}

/// The stored passkey with its counter cleared, so that the domain, which
/// holds the authoritative counter, is the one to judge a regression.
pub fn passkey_for_verification(stored: &Value) -> Option<webauthn_rs::prelude::Passkey> {
    let mut value = stored.clone();
    if let Some(counter) = value.pointer_mut("/cred/counter") {
        *counter = Value::from(0);
    }
    serde_json::from_value(value).ok()
}

#[cfg(test)]
mod provider_tests {
    #[test]
    fn the_provider_list_reads_and_names_the_common_providers() {
        let providers = super::providers().unwrap();
        assert!(providers.len() > 20, "{}", providers.len());
        assert_eq!(providers.get("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").map(String::as_str), Some("Google Password Manager"));
    }
}
