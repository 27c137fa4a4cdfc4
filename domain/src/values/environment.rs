use serde::{Deserialize, Serialize};

/// The customer's device as the request described it (User-Agent and Client
/// Hints), parsed by the API. Recorded on registrations and logins; never a
/// reason to refuse (seed 000 p.3: other environments may work but are not
/// supported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Environment {
    /// "Chrome", "Safari", "Edge", ... or "unknown".
    pub browser: String,
    pub browser_version: String,
    /// "Windows", "iOS", "Android", "macOS", ... or "unknown".
    pub os: String,
    /// The OS version as far as the request tells it; for Windows, the
    /// marketing version from Client Hints ("11 24H2") when they are sent.
    pub os_version: String,
    /// "pc", "smartphone", "tablet" or "unknown".
    pub device_type: String,
    /// Whether this is one of the brokerage's recommended environments
    /// (seed 000 p.3: iOS 18.6.2+ with Safari or Chrome, Android 12+ with
    /// Chrome, Windows 11 24H2+ with Edge or Chrome; seed 002: security keys
    /// are outside them). None when the request cannot tell: Windows without
    /// Client Hints says "Windows NT 10.0" for both 10 and 11.
    pub recommended: Option<bool>,
}

impl Environment {
    /// What makes two logins "the same environment" for login notices:
    /// browser, operating system and device type, without versions, so that
    /// an update does not look like a new device.
    pub fn fingerprint(&self) -> String {
        format!("{}|{}|{}", self.browser, self.os, self.device_type)
    }

    /// "Chrome 148 / Windows 11 24H2 (PC)", for readable lines: a version
    /// the browser did not tell (empty, or reported as 0) is left out.
    pub fn describe(&self) -> String {
        let device = match self.device_type.as_str() {
            "pc" => "PC",
            "smartphone" => "smartphone",
            "tablet" => "tablet",
            other => other,
        };
        format!("{} ({device})", self.versions())
    }

    /// "Chrome 148 / Windows 11 24H2": browser and system with the versions
    /// they told, words-free (for a line in any language).
    pub fn versions(&self) -> String {
        let version = |v: &str| {
            if v.is_empty() || v.split('.').all(|part| part.chars().all(|c| c == '0')) {
                String::new()
            } else {
                format!(" {v}")
            }
        };
        format!("{}{} / {}{}", self.browser, version(&self.browser_version), self.os, version(&self.os_version))
    }
}

impl Environment {
    /// The device as people name it, in English and Japanese: "iPhone
    /// (Safari)", "Windows のパソコン（Chrome）". For customers' screens,
    /// mails and default passkey names, where version strings mean nothing.
    pub fn device_words(&self) -> (String, String) {
        let (en, ja) = match (self.os.as_str(), self.device_type.as_str()) {
            ("iOS", "tablet") | ("iPadOS", _) => ("iPad", "iPad"),
            ("iOS", _) => ("iPhone", "iPhone"),
            ("Android", "tablet") => ("Android tablet", "Android タブレット"),
            ("Android", _) => ("Android phone", "Android スマートフォン"),
            ("Windows", _) => ("Windows PC", "Windows のパソコン"),
            ("macOS", _) => ("Mac", "Mac"),
            ("ChromeOS" | "Chrome OS", _) => ("Chromebook", "Chromebook"),
            ("Linux", _) => ("Linux PC", "Linux のパソコン"),
            (_, "smartphone") => ("smartphone", "スマートフォン"),
            (_, "tablet") => ("tablet", "タブレット"),
            (_, "pc") => ("computer", "パソコン"),
            _ => ("device", "端末"),
        };
        match self.browser.as_str() {
            "" | "unknown" => (en.to_string(), ja.to_string()),
            browser => (format!("{en} ({browser})"), format!("{ja}（{browser}）")),
        }
    }
}

/// A staff member as events name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    pub staff_id: String,
    pub name: String,
}
