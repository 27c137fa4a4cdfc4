use serde::{Deserialize, Serialize};
use std::fmt;

use super::InvalidValue;

/// A customer's registered e-mail address, kept in normalised form: trimmed,
/// compatibility-normalised (NFKC: full-width `ｔａｒｏ` is `taro`),
/// lower-cased, and its domain in ASCII (an internationalised domain as its
/// punycode). Seed 000 refuses registration when "the same address" is on
/// another account; comparing normalised forms stops `Taro@Example.jp`,
/// `taro@ｅxample.jp` and `taro@example.jp` from passing as different
/// addresses. Invisible characters (a soft hyphen, a zero-width space,
/// direction marks) are refused: they make look-alikes of one address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises an address; refuses anything that is not
    /// `local@domain.tld`-shaped.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        use unicode_normalization::UnicodeNormalization;
        let folded: String = raw.trim().nfkc().collect::<String>().to_lowercase();
        if folded.chars().any(invisible) {
            return Err(InvalidValue("not a valid e-mail address"));
        }
        let (local, domain) = folded.split_once('@').ok_or(InvalidValue("e-mail address needs an @"))?;
        let domain = idna::domain_to_ascii(domain).map_err(|_| InvalidValue("not a valid e-mail address"))?;
        let normalised = format!("{local}@{domain}");
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

/// Characters that show as nothing: Unicode's default-ignorable code
/// points and the format characters (general category Cf).
fn invisible(c: char) -> bool {
    const RANGES: &[(char, char)] = &[
        ('\u{00AD}', '\u{00AD}'),
        ('\u{034F}', '\u{034F}'),
        ('\u{0600}', '\u{0605}'),
        ('\u{061C}', '\u{061C}'),
        ('\u{06DD}', '\u{06DD}'),
        ('\u{070F}', '\u{070F}'),
        ('\u{0890}', '\u{0891}'),
        ('\u{08E2}', '\u{08E2}'),
        ('\u{115F}', '\u{1160}'),
        ('\u{17B4}', '\u{17B5}'),
        ('\u{180B}', '\u{180F}'),
        ('\u{200B}', '\u{200F}'),
        ('\u{202A}', '\u{202E}'),
        ('\u{2060}', '\u{206F}'),
        ('\u{3164}', '\u{3164}'),
        ('\u{FE00}', '\u{FE0F}'),
        ('\u{FEFF}', '\u{FEFF}'),
        ('\u{FFA0}', '\u{FFA0}'),
        ('\u{FFF0}', '\u{FFFB}'),
        ('\u{110BD}', '\u{110BD}'),
        ('\u{110CD}', '\u{110CD}'),
        ('\u{13430}', '\u{1343F}'),
        ('\u{1BCA0}', '\u{1BCA3}'),
        ('\u{1D173}', '\u{1D17A}'),
        ('\u{E0000}', '\u{E0FFF}'),
    ];
    RANGES.iter().any(|(from, to)| (*from..=*to).contains(&c))
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
    fn look_alike_addresses_are_one_address_or_refused() {
        let plain = EmailAddress::parse("z@example.jp").unwrap();
        assert_eq!(EmailAddress::parse("z@ｅxample.jp").unwrap(), plain, "a full-width letter");
        assert_eq!(EmailAddress::parse("ｚ＠ｅｘａｍｐｌｅ．ｊｐ").unwrap(), plain, "all full-width");
        assert_eq!(EmailAddress::parse("k@例え.jp").unwrap(), EmailAddress::parse("k@xn--r8jz45g.jp").unwrap(), "an IDN and its punycode");
        for invisible in [
            "z@example.jp\u{00AD}",
            "z\u{200B}@example.jp",
            "z@exa\u{200D}mple.jp",
            "\u{FEFF}z@example.jp",
            "z\u{202E}@example.jp",
            "z\u{180B}@example.jp",
            "z\u{E0041}@example.jp",
            "z\u{E0100}@example.jp",
            "z\u{1D173}@example.jp",
            "z\u{0600}@example.jp",
            "z\u{1BCA0}@example.jp",
        ] {
            assert!(EmailAddress::parse(invisible).is_err(), "{invisible:?} was accepted");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in ["", "taro", "taro@", "@example.jp", "taro@example", "ta ro@example.jp", "a@b@c.jp"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
