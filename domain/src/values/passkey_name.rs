use serde::{Deserialize, Serialize};
use std::fmt;

use super::InvalidValue;

/// The name a passkey is shown under on the status screen. Filled in from the
/// device as people name it ("Windows のパソコン（Chrome）"), editable by the
/// customer before registering and never afterwards (seed 002).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasskeyName(String);

impl PasskeyName {
    /// Longest name accepted, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Parses a name: trimmed, 1 to 64 characters, no control characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue("passkey name must be 1 to 64 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidValue("passkey name must not contain control characters"));
        }
        Ok(PasskeyName(trimmed.to_string()))
    }

    /// The name as shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PasskeyName {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PasskeyName::parse(&value)
    }
}

impl From<PasskeyName> for String {
    fn from(value: PasskeyName) -> Self {
        value.0
    }
}

impl fmt::Display for PasskeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_names_are_accepted() {
        assert_eq!(PasskeyName::parse("自宅のパソコン").unwrap().as_str(), "自宅のパソコン");
    }

    #[test]
    fn empty_and_overlong_names_are_refused() {
        assert!(PasskeyName::parse(" ").is_err());
        assert!(PasskeyName::parse(&"あ".repeat(65)).is_err());
        assert!(PasskeyName::parse("a\nb").is_err());
    }
}
