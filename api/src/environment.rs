//! What the request says about the customer's device: the default passkey
//! name, "Chrome 148.0.0 / Windows 10.0.0" as seed 000 shows it, and the
//! environment (browser, OS, versions, device type, recommended or not) from
//! the User-Agent (parsed by woothee) and User-Agent Client Hints.

use ledger_domain::Environment;

/// The User-Agent Client Hints a request carried (Chromium browsers send
/// them; the high-entropy ones after the server's `Accept-CH`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientHints {
    /// `Sec-CH-UA-Platform`: "Windows", "Android", "macOS", ...
    pub platform: Option<String>,
    /// `Sec-CH-UA-Platform-Version`: for Windows, 13.0.0 and above is Windows 11.
    pub platform_version: Option<String>,
    /// `Sec-CH-UA-Mobile`: `?1` on phones.
    pub mobile: Option<bool>,
    /// `Sec-CH-UA-Full-Version-List`, else `Sec-CH-UA`: the brands.
    pub brands: Option<String>,
}

/// The header names the service asks browsers for (`Accept-CH`).
pub const ACCEPT_CH: &str = "Sec-CH-UA-Platform-Version, Sec-CH-UA-Full-Version-List, Sec-CH-UA-Model";

/// A header that is a Structured Field string item (RFC 9651), as the
/// Client Hints are: `"Windows"`; anything else is no hint.
fn sf_string(value: &str) -> Option<String> {
    let item: sfv::Item = sfv::Parser::new(value).parse().ok()?;
    item.bare_item.as_string().map(|s| s.as_str().to_string()).filter(|s| !s.is_empty())
}

/// A Structured Field boolean item: `?1` or `?0`.
fn sf_boolean(value: &str) -> Option<bool> {
    let item: sfv::Item = sfv::Parser::new(value).parse().ok()?;
    item.bare_item.as_boolean()
}

/// A brand list (`Sec-CH-UA`, `Sec-CH-UA-Full-Version-List`): each brand a
/// string with its version in the `v` parameter; a list that does not parse
/// gives no brand.
fn sf_brands(value: &str) -> Vec<(String, String)> {
    let Ok(list) = sfv::Parser::new(value).parse::<sfv::List>() else { return Vec::new() };
    list.iter()
        .filter_map(|entry| match entry {
            sfv::ListEntry::Item(item) => {
                let name = item.bare_item.as_string()?.as_str().to_string();
                let version = item.params.get("v")?.as_string()?.as_str().to_string();
                Some((name, version))
            }
            sfv::ListEntry::InnerList(_) => None,
        })
        .collect()
}

impl ClientHints {
    /// Reads the hints from request headers.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> ClientHints {
        const HINT_MAX: usize = 512;
        const HINT_VALUE_MAX: usize = 64;
        // Client-sent text ends up in events (the environment): capped, so
        // a header cannot bloat them.
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| v.len() <= HINT_MAX).map(str::to_string);
        let short = |v: String| (v.chars().count() <= HINT_VALUE_MAX).then_some(v);
        ClientHints {
            platform: get("sec-ch-ua-platform").and_then(|v| sf_string(&v)).and_then(short),
            platform_version: get("sec-ch-ua-platform-version").and_then(|v| sf_string(&v)).and_then(short),
            mobile: get("sec-ch-ua-mobile").and_then(|v| sf_boolean(&v)),
            brands: get("sec-ch-ua-full-version-list").or_else(|| get("sec-ch-ua")),
        }
    }

    /// The browser brand that is neither "Chromium" nor a GREASE brand, with
    /// its version: `"Google Chrome";v="148.0.7778.97"` -> ("Chrome", "148.0.7778.97").
    fn brand(&self) -> Option<(String, String)> {
        let mut fallback = None;
        for (name, version) in sf_brands(self.brands.as_deref()?) {
            if name.chars().count() > 64 || version.chars().count() > 64 {
                continue;
            }
            if name.contains("Not") && (name.contains("Brand") || name.contains("brand")) {
                continue;
            }
            if name == "Chromium" {
                fallback = Some((name, version));
                continue;
            }
            let short = match name.as_str() {
                "Google Chrome" => "Chrome".to_string(),
                "Microsoft Edge" => "Edge".to_string(),
                other => other.to_string(),
            };
            return Some((short, version));
        }
        fallback
    }
}

/// The recommended environments (seed 000 p.3), as minimum versions per
/// operating system. Windows is judged from `Sec-CH-UA-Platform-Version`
/// (a User-Agent says "Windows NT 10.0" for both 10 and 11).
#[derive(Debug, Clone, PartialEq)]
pub struct Recommended {
    /// Per operating system: the minimum version, and the browsers named
    /// (any browser when none is).
    rules: Vec<(String, Vec<u32>, Vec<String>)>,
}

/// Windows 11 releases and the `Sec-CH-UA-Platform-Version` major number
/// Chromium reports for them (13 = 21H2, 14 = 22H2 and 23H2, 15 = 24H2).
const WINDOWS_11: &[(&str, u32)] = &[("21H2", 13), ("22H2", 14), ("23H2", 14), ("24H2", 15)];

fn numbers(version: &str) -> Vec<u32> {
    version.split(['.', '_']).map_while(|p| p.trim().parse().ok()).collect()
}

fn at_least(version: &[u32], min: &[u32]) -> bool {
    let len = version.len().max(min.len());
    let pad = |v: &[u32]| (0..len).map(|i| v.get(i).copied().unwrap_or(0)).collect::<Vec<_>>();
    pad(version) >= pad(min)
}

impl Recommended {
    /// Parses `iOS 18.6.2 Safari/Chrome, Android 12 Chrome, Windows 11 24H2
    /// Edge/Chrome` (the default, seed 000 p.3): per OS a minimum version,
    /// then optionally the browsers, separated by `/`.
    pub fn parse(spec: &str) -> Result<Recommended, String> {
        let mut rules = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            // Trailing words that begin with a letter name browsers.
            let words: Vec<&str> = item.split_whitespace().collect();
            let split = words.iter().rposition(|w| !w.starts_with(|c: char| c.is_ascii_alphabetic())).map_or(1, |i| i + 1);
            let browsers: Vec<String> = words[split.max(1)..].iter().flat_map(|w| w.split('/')).map(str::to_lowercase).collect();
            let item = words[..split.max(1)].join(" ");
            let item = item.as_str();
            let (os, version) = item.split_once(' ').ok_or_else(|| format!("expected \"OS version\", got {item:?}"))?;
            let min = if os.eq_ignore_ascii_case("windows") {
                let release = version
                    .trim()
                    .strip_prefix("11")
                    .map(str::trim)
                    .ok_or_else(|| format!("only Windows 11 releases can be named, got {version:?}"))?;
                let major = WINDOWS_11
                    .iter()
                    .find(|(r, _)| r.eq_ignore_ascii_case(release))
                    .map(|(_, m)| *m)
                    .or(release.is_empty().then_some(13))
                    .ok_or_else(|| format!("unknown Windows release {version:?} (known: 11, 11 21H2 .. 11 24H2)"))?;
                vec![major]
            } else {
                let n = numbers(version);
                if n.is_empty() {
                    return Err(format!("no version number in {item:?}"));
                }
                n
            };
            rules.push((os.to_lowercase(), min, browsers));
        }
        Ok(Recommended { rules })
    }

    /// Whether some rule for `os` accepts `browser` (whatever the version).
    fn browser_listed(&self, os: &str, browser: &str) -> bool {
        let browser = browser.to_lowercase();
        self.rules.iter().any(|(name, _, browsers)| {
            name == &os.to_lowercase() && (browsers.is_empty() || browsers.iter().any(|b| browser.contains(b.as_str())))
        })
    }

    fn allows(&self, os: &str, version: &[u32], browser: &str) -> bool {
        let browser = browser.to_lowercase();
        !version.is_empty()
            && self.rules.iter().any(|(name, min, browsers)| {
                name == &os.to_lowercase()
                    && at_least(version, min)
                    && (browsers.is_empty() || browsers.iter().any(|b| browser.contains(b.as_str())))
            })
    }
}

/// Seed 000 p.3's recommended environments.
pub const RECOMMENDED_BY_SEED_000: &str = "iOS 18.6.2 Safari/Chrome, Android 12 Chrome, Windows 11 24H2 Edge/Chrome";

impl Default for Recommended {
    fn default() -> Self {
        Recommended::parse(RECOMMENDED_BY_SEED_000).unwrap_or(Recommended { rules: vec![] })
    }
}

/// The environment a request describes. Never used to refuse anything.
pub fn environment(user_agent: &str, hints: &ClientHints, recommended: &Recommended) -> Environment {
    let parser = woothee::parser::Parser::new();
    let parsed = parser.parse(user_agent).filter(|ua| ua.name != "UNKNOWN");
    let (mut browser, mut browser_version) = match &parsed {
        Some(ua) => (ua.name.to_string(), ua.version.to_string()),
        None => ("unknown".to_string(), String::new()),
    };
    if let Some((name, version)) = hints.brand() {
        if browser == "unknown" || browser == name {
            browser = name;
            browser_version = version;
        }
    }
    let (mut os, mut os_version) = parsed.as_ref().map(os_of).unwrap_or_else(|| ("unknown".into(), String::new()));
    // A reduced User-Agent freezes Android at "10; K": the real version is unknown.
    if os == "Android" && user_agent.contains("Android 10; K") {
        os_version = String::new();
    }
    let mut compare = numbers(&os_version);
    // Hints that contradict the User-Agent (an overridden UA, a proxy) are
    // not trusted; hints fill in what the UA leaves unknown.
    let hints_agree = hints.platform.as_deref().is_some_and(|p| os == "unknown" || p.eq_ignore_ascii_case(&os));
    if let Some(platform) = hints.platform.as_ref().filter(|_| hints_agree) {
        os = platform.clone();
    }
    if os == "Windows" {
        // Only Client Hints tell Windows 11 from 10.
        let major = hints.platform_version.as_deref().filter(|_| hints_agree).map(numbers).and_then(|v| v.first().copied());
        os_version = match major {
            Some(m) if m >= 13 => {
                let releases: Vec<&str> = WINDOWS_11.iter().filter(|(_, n)| *n == m).map(|(r, _)| *r).collect();
                if releases.is_empty() {
                    "11 (later than 24H2)".into()
                } else {
                    format!("11 {}", releases.join("/"))
                }
            }
            Some(_) => "10".into(),
            None => "10 or 11".into(),
        };
        compare = major.map(|m| vec![m]).unwrap_or_default();
    } else if let Some(v) = hints.platform_version.as_deref().filter(|_| hints_agree && (os != "iOS" || os_version.is_empty())) {
        // Chromium freezes the Android and macOS versions in the UA; iOS
        // browsers report the real one there.
        os_version = v.to_string();
        compare = numbers(v);
    }
    let mobile_hint = hints.mobile.filter(|_| hints_agree || hints.platform.is_none());
    let device_type = match (&parsed, mobile_hint) {
        (Some(ua), _) if ua.os == "iPad" => "tablet",
        (_, Some(true)) => "smartphone",
        (Some(ua), _) if ua.category == "smartphone" || ua.category == "mobilephone" => "smartphone",
        (Some(ua), _) if ua.category == "pc" => "pc",
        (_, Some(false)) => "pc",
        _ => "unknown",
    }
    .to_string();
    // Windows without Client Hints cannot be told from Windows 10: unknown,
    // unless the browser alone puts it outside (Firefox sends no hints).
    let recommended = if os == "Windows" && compare.is_empty() {
        if recommended.browser_listed(&os, &browser) {
            None
        } else {
            Some(false)
        }
    } else {
        Some(recommended.allows(&os, &compare, &browser))
    };
    Environment { browser, browser_version, os, os_version, device_type, recommended }
}

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

/// The app whose built-in browser sent `user_agent`, if it is one in which
/// passkeys cannot be registered (seed 001: "Google アプリやYahoo!JAPANアプリ
/// ... ブラウザのアプリ経由では、パスキーの登録およびパスキー認証によるログイン
/// が正常に行えません"). Each app marks its browser in the User-Agent.
pub fn in_app_browser(user_agent: &str) -> Option<&'static str> {
    const APPS: [(&str, &str); 6] = [
        // The Google app on iOS and Android.
        (" GSA/", "Google app"),
        // The Yahoo! JAPAN app on iOS and Android.
        ("YJApp-", "Yahoo! JAPAN app"),
        ("jp.co.yahoo.", "Yahoo! JAPAN app"),
        ("Line/", "LINE"),
        ("FBAN/", "Facebook"),
        ("Instagram ", "Instagram"),
    ];
    APPS.iter().find(|(mark, _)| user_agent.contains(mark)).map(|(_, app)| *app)
}

/// A new passkey's name until the customer changes it: the device as
/// people name it, in Japanese ("Windows のパソコン（Chrome）",
/// "iPhone（Safari）"), not a version string; "パスキー" for a client that
/// is no browser.
pub fn default_passkey_name(user_agent: &str, hints: &ClientHints) -> String {
    let device = environment(user_agent, hints, &Recommended::default());
    if device.browser == "unknown" && device.os == "unknown" {
        return "パスキー".into();
    }
    device.device_words().1
}

/// A browser's name and version, and its system's ("Chrome 148.0.0 /
/// Windows 10.0.0"), for staff screens; "Passkey" for a client that is no
/// browser.
pub fn agent_line(user_agent: &str) -> String {
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

    const CHROME_WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36";

    #[test]
    fn client_hints_are_read_as_structured_fields() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("sec-ch-ua-platform", "\"Windows\"".parse().unwrap());
        headers.insert("sec-ch-ua-platform-version", "\"15.0.0\"".parse().unwrap());
        headers.insert("sec-ch-ua-mobile", "?0".parse().unwrap());
        // A GREASE brand may hold a comma, a semicolon and an escaped quote.
        headers.insert(
            "sec-ch-ua-full-version-list",
            r#""Not,A;Brand\"";v="8.0.0.0", "Chromium";v="148.0.7778.97", "Microsoft Edge";v="148.0.3000.1""#.parse().unwrap(),
        );
        let hints = ClientHints::from_headers(&headers);
        assert_eq!(hints.platform.as_deref(), Some("Windows"));
        assert_eq!(hints.platform_version.as_deref(), Some("15.0.0"));
        assert_eq!(hints.mobile, Some(false));
        assert_eq!(hints.brand(), Some(("Edge".to_string(), "148.0.3000.1".to_string())));
        // What is not a structured field of the right type is no hint.
        let mut odd = axum::http::HeaderMap::new();
        odd.insert("sec-ch-ua-platform", "Windows".parse().unwrap());
        odd.insert("sec-ch-ua-mobile", "yes".parse().unwrap());
        odd.insert("sec-ch-ua", "Chrome 148".parse().unwrap());
        let hints = ClientHints::from_headers(&odd);
        assert_eq!((hints.platform.as_deref(), hints.mobile), (None, None));
        assert_eq!(hints.brand(), None);
        // Text that would bloat the events it ends up in is no hint either.
        let mut long = axum::http::HeaderMap::new();
        long.insert("sec-ch-ua-platform", format!("\"{}\"", "W".repeat(65)).parse().unwrap());
        long.insert("sec-ch-ua", format!("\"{}\";v=\"1\", \"Chromium\";v=\"148\"", "B".repeat(65)).parse().unwrap());
        let hints = ClientHints::from_headers(&long);
        assert_eq!(hints.platform, None);
        assert_eq!(hints.brand(), Some(("Chromium".to_string(), "148".to_string())));
    }

    fn windows_hints(version: &str) -> ClientHints {
        ClientHints {
            platform: Some("Windows".into()),
            platform_version: Some(version.into()),
            mobile: Some(false),
            brands: Some(r#""Chromium";v="148.0.7778.97", "Google Chrome";v="148.0.7778.97", "Not=A?Brand";v="99.0.0.0""#.into()),
        }
    }

    #[test]
    fn windows_11_24h2_is_told_from_windows_10_only_by_client_hints() {
        let r = Recommended::default();
        let e = environment(CHROME_WINDOWS, &windows_hints("15.0.0"), &r);
        assert_eq!((e.os.as_str(), e.os_version.as_str(), e.recommended), ("Windows", "11 24H2", Some(true)));
        assert_eq!((e.browser.as_str(), e.browser_version.as_str(), e.device_type.as_str()), ("Chrome", "148.0.7778.97", "pc"));
        let e = environment(CHROME_WINDOWS, &windows_hints("14.0.0"), &r);
        assert_eq!((e.os_version.as_str(), e.recommended), ("11 22H2/23H2", Some(false)));
        let e = environment(CHROME_WINDOWS, &windows_hints("10.0.0"), &r);
        assert_eq!((e.os_version.as_str(), e.recommended), ("10", Some(false)));
        let e = environment(CHROME_WINDOWS, &ClientHints::default(), &r);
        assert_eq!((e.os_version.as_str(), e.recommended), ("10 or 11", None), "a User-Agent alone cannot tell: unknown");
    }

    #[test]
    fn ios_from_18_6_2_and_android_from_12_are_recommended() {
        let r = Recommended::default();
        let ios = |v: &str| {
            format!("Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1")
        };
        let e = environment(&ios("18_6_2"), &ClientHints::default(), &r);
        assert_eq!((e.os.as_str(), e.device_type.as_str(), e.recommended), ("iOS", "smartphone", Some(true)));
        assert_eq!(environment(&ios("18_6_1"), &ClientHints::default(), &r).recommended, Some(false));
        assert_eq!(environment(&ios("26_1"), &ClientHints::default(), &r).recommended, Some(true));
        let android = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Mobile Safari/537.36";
        let hints =
            ClientHints { platform: Some("Android".into()), platform_version: Some("14.0.0".into()), mobile: Some(true), brands: None };
        let e = environment(android, &hints, &r);
        assert_eq!((e.os.as_str(), e.os_version.as_str(), e.recommended), ("Android", "14.0.0", Some(true)));
        assert_eq!(
            environment(android, &ClientHints::default(), &r).recommended,
            Some(false),
            "the reduced UA's \"Android 10\" is not a version"
        );
    }

    #[test]
    fn hints_that_contradict_the_user_agent_are_ignored() {
        let ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1";
        let linux = ClientHints { platform: Some("Linux".into()), platform_version: Some("".into()), mobile: Some(false), brands: None };
        let e = environment(ios, &linux, &Recommended::default());
        assert_eq!((e.os.as_str(), e.device_type.as_str(), e.recommended), ("iOS", "smartphone", Some(true)));
        let coarse = ClientHints { platform: Some("iOS".into()), platform_version: Some("18_6".into()), mobile: Some(false), brands: None };
        let e = environment(ios, &coarse, &Recommended::default());
        assert_eq!((e.os_version.as_str(), e.device_type.as_str(), e.recommended), ("18.6.2", "smartphone", Some(true)));
    }

    #[test]
    fn macos_is_outside_the_recommended_environments() {
        let mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Safari/605.1.15";
        let e = environment(mac, &ClientHints::default(), &Recommended::default());
        assert_eq!((e.os.as_str(), e.recommended), ("macOS", Some(false)));
    }

    #[test]
    fn the_browsers_seed_000_names_are_recommended_and_others_not() {
        let r = Recommended::default();
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        let hints =
            ClientHints { platform: Some("Windows".into()), platform_version: Some("15.0.0".into()), mobile: Some(false), brands: None };
        assert_eq!(environment(firefox, &hints, &r).recommended, Some(false), "Firefox is not in seed 000's table");
        assert_eq!(
            environment(firefox, &ClientHints::default(), &r).recommended,
            Some(false),
            "no hints from Firefox: outside all the same"
        );
        let edge =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36 Edg/148.0.0.0";
        assert_eq!(environment(edge, &windows_hints("15.0.0"), &r).recommended, Some(true));
        let chrome_ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/148.0.7778.97 Mobile/15E148 Safari/604.1";
        assert_eq!(environment(chrome_ios, &ClientHints::default(), &r).recommended, Some(true));
        let firefox_android = "Mozilla/5.0 (Android 14; Mobile; rv:140.0) Gecko/140.0 Firefox/140.0";
        assert_eq!(environment(firefox_android, &ClientHints::default(), &r).recommended, Some(false));
    }

    #[test]
    fn the_recommended_list_is_configuration() {
        let r = Recommended::parse("Windows 11, macOS 14").unwrap();
        assert_eq!(environment(CHROME_WINDOWS, &windows_hints("13.0.0"), &r).recommended, Some(true));
        assert!(Recommended::parse("Windows 12 25H2").is_err());
        assert!(Recommended::parse("iOS").is_err());
    }

    #[test]
    fn a_new_passkey_is_named_as_people_name_the_device() {
        let none = ClientHints::default();
        assert_eq!(default_passkey_name(CHROME_WINDOWS, &none), "Windows のパソコン（Chrome）");
        assert_eq!(default_passkey_name(CHROME_WINDOWS, &windows_hints("15.0.0")), "Windows のパソコン（Chrome）");
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1";
        assert_eq!(default_passkey_name(ua, &none), "iPhone（Safari）");
        let android =
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Mobile Safari/537.36";
        assert_eq!(default_passkey_name(android, &none), "Android スマートフォン（Chrome）");
        assert_eq!(default_passkey_name("", &none), "パスキー");
    }

    #[test]
    fn staff_screens_name_the_browser_and_system_with_versions() {
        assert_eq!(agent_line(CHROME_WINDOWS), "Chrome 148.0.0 / Windows 10.0.0");
        assert_eq!(agent_line(""), "Passkey");
    }
}

#[cfg(test)]
mod in_app_tests {
    use super::in_app_browser;

    #[test]
    fn the_google_and_yahoo_japan_apps_browsers_are_recognised() {
        let google_ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/380.0.765432 Mobile/15E148 Safari/604.1";
        let yahoo_android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Mobile Safari/537.36 YJApp-ANDROID jp.co.yahoo.android.yjtop/3.170.0";
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1";
        let chrome_android =
            "Mozilla/5.0 (Linux; Android 14; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Mobile Safari/537.36";
        assert_eq!(in_app_browser(google_ios), Some("Google app"));
        assert_eq!(in_app_browser(yahoo_android), Some("Yahoo! JAPAN app"));
        assert_eq!(in_app_browser(safari), None);
        assert_eq!(in_app_browser(chrome_android), None);
    }
}
