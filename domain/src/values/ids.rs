//! Identifiers, each parsed once where it enters: an account's and a flow's
//! are UUIDs the ledger made; a credential's is the authenticator's, in
//! base64url. Each reads as a `&str` (`Deref`) wherever a plain string is
//! enough.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::InvalidValue;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as stored.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $refusal:literal) => {
        string_id!($(#[$doc])* $name);

        impl $name {
            /// A new, random identifier.
            pub fn generate() -> Self {
                $name(uuid::Uuid::new_v4().to_string())
            }

            /// A UUID in any of its spellings, kept as lowercase hyphenated.
            pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
                uuid::Uuid::parse_str(raw.trim()).map(|u| $name(u.hyphenated().to_string())).map_err(|_| InvalidValue($refusal))
            }

            /// The identifier as a UUID (WebAuthn's user handle).
            pub fn uuid(&self) -> uuid::Uuid {
                uuid::Uuid::parse_str(&self.0).unwrap_or_default()
            }
        }
    };
}

uuid_id!(
    /// An account: the UUID the ledger gave it when the core system opened it.
    AccountId,
    "an account ID is a UUID"
);

uuid_id!(
    /// A registration or password-login flow, from its first step's answer.
    FlowId,
    "a flow ID is a UUID"
);

string_id!(
    /// A WebAuthn credential's ID as the authenticator made it, in
    /// base64url without padding (at most 1,023 bytes, so 1,364 characters).
    CredentialId
);

impl CredentialId {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let ok = !raw.is_empty() && raw.len() <= 1364 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| CredentialId(raw.to_string())).ok_or(InvalidValue("a credential ID is base64url, 1 to 1,023 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_are_parsed_once_in_one_spelling() {
        let id = AccountId::generate();
        assert_eq!(AccountId::parse(&id.to_uppercase()).unwrap(), id);
        assert!(AccountId::parse("../etc/passwd").is_err());
        assert!(FlowId::parse("").is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<AccountId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<FlowId>("\"not-a-flow\"").is_err());
    }

    #[test]
    fn credential_ids_are_base64url() {
        assert_eq!(CredentialId::parse("-_8AAQ").unwrap().as_str(), "-_8AAQ");
        assert!(CredentialId::parse("YW55+w==").is_err());
        assert!(CredentialId::parse(&"A".repeat(1365)).is_err());
    }
}
