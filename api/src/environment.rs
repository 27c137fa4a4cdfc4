//! What the request says about the customer's device: the default passkey
//! name, "Chrome 148.0.0 / Windows 10.0.0" as seed 000 shows it.

/// Pads or trims a dotted version to three parts: "148.0.7778.97" -> "148.0.7778",
/// "10.0" -> "10.0.0".
fn three_part(version: &str) -> String {
    let mut parts: Vec<&str> = version.split(['.', '_']).filter(|p| !p.is_empty()).take(3).collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    parts.join(".")
}

/// The operating system's name and version from a User-Agent.
fn os_of(ua: &woothee::parser::WootheeResult<'_>) -> (String, String) {
    let raw = ua.os_version.to_string();
    let version = raw.trim_start_matches("NT ").to_string();
    let name = match ua.os {
        "iPhone" | "iPad" | "iPod" => "iOS",
        "Mac OSX" => "macOS",
        os if os.starts_with("Windows") => "Windows",
        os => os,
    };
    (name.to_string(), if version == "UNKNOWN" { "0".into() } else { version })
}

/// The passkey's default name from the User-Agent: browser and version,
/// operating system and version.
pub fn default_passkey_name(user_agent: &str) -> String {
    let parser = woothee::parser::Parser::new();
    match parser.parse(user_agent) {
        Some(ua) if ua.name != "UNKNOWN" => {
            let (os, os_version) = os_of(&ua);
            format!("{} {} / {} {}", ua.name, three_part(ua.version), os, three_part(&os_version))
        }
        _ => "Passkey".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrome_on_windows_is_named_as_seed_000_shows_it() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36";
        assert_eq!(default_passkey_name(ua), "Chrome 148.0.0 / Windows 10.0.0");
    }

    #[test]
    fn safari_on_an_iphone_is_named_with_ios() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1";
        assert_eq!(default_passkey_name(ua), "Safari 18.6.0 / iOS 18.6.2");
    }

    #[test]
    fn an_unknown_agent_gets_a_plain_name() {
        assert_eq!(default_passkey_name(""), "Passkey");
    }
}
