use serde::{Deserialize, Serialize};
use std::fmt;

use super::InvalidValue;

/// A customer's registered e-mail address, kept in normalised form: trimmed and
/// lower-cased. Seed 000 refuses registration when "the same address" is on
/// another account; comparing normalised forms stops `Taro@Example.jp` and
/// `taro@example.jp` from passing as different addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises an address; refuses anything that is not
    /// `local@domain.tld`-shaped.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let normalised = raw.trim().to_lowercase();
        let (local, domain) = normalised.split_once('@').ok_or(InvalidValue("e-mail address needs an @"))?;
        let valid = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && normalised.len() <= 254
            && !normalised.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(EmailAddress(normalised))
        } else {
            Err(InvalidValue("not a valid e-mail address"))
        }
    }

    /// The address as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as a customer may be shown it without revealing it:
    /// first letter of the local part, then `***`, then the domain
    /// (`t***@example.jp`, as API.md shows).
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_differing_only_in_case_and_spaces_are_the_same_address() {
        assert_eq!(EmailAddress::parse(" Taro.Yamada@Example.JP ").unwrap(), EmailAddress::parse("taro.yamada@example.jp").unwrap());
    }

    #[test]
    fn the_masked_form_shows_the_first_letter_and_the_domain() {
        assert_eq!(EmailAddress::parse("taro@example.jp").unwrap().masked(), "t***@example.jp");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in ["", "taro", "taro@", "@example.jp", "taro@example", "ta ro@example.jp", "a@b@c.jp"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
