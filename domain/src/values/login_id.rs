use serde::{Deserialize, Serialize};
use std::fmt;

use super::InvalidValue;

/// The login ID the customer types (an account number or a branch code plus
/// customer code in seed 000). Printable ASCII, 1 to 64 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LoginId(String);

impl LoginId {
    /// Parses a login ID as typed.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 64 {
            return Err(InvalidValue("login ID must be 1 to 64 characters"));
        }
        if !trimmed.chars().all(|c| c.is_ascii_graphic()) {
            return Err(InvalidValue("login ID must be printable ASCII without spaces"));
        }
        Ok(LoginId(trimmed.to_string()))
    }

    /// The login ID as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LoginId {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        LoginId::parse(&value)
    }
}

impl From<LoginId> for String {
    fn from(value: LoginId) -> Self {
        value.0
    }
}

impl fmt::Display for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_id_is_trimmed() {
        assert_eq!(LoginId::parse(" 123-4567 ").unwrap().as_str(), "123-4567");
    }

    #[test]
    fn empty_or_spaced_login_ids_are_refused() {
        assert!(LoginId::parse("  ").is_err());
        assert!(LoginId::parse("12 34").is_err());
        assert!(LoginId::parse(&"9".repeat(65)).is_err());
    }
}
