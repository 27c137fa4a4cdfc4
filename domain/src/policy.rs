//! A deployment's rules: limits and instants that differ between brokerages.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::values::Channel;

/// How customers log in (DOMAIN.md flow 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMode {
    /// "Log in with passkey", no login ID typed (seed 000, 003).
    #[default]
    Passwordless,
    /// Login ID + password, then one of the customer's passkeys (seed 002):
    /// a passkey alone never logs in.
    SecondFactor,
}

/// Where e-mailed codes go (seed 003: "メールアドレス 1 のみ"; seed 004:
/// "指定のメールアドレスを選択し、「送信」").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeDestination {
    #[default]
    Address1,
    /// The customer picks one of the registered, reachable addresses.
    Choose,
}

/// What confirms a signed-in customer's first passkey (seed 000's status
/// screen asks for the trading password; seed 004 sends a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStepUp {
    #[default]
    TradingPassword,
    /// An e-mailed code (shown to the page as `code`).
    EmailCode,
}

impl SessionStepUp {
    /// The name the API and the events use.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStepUp::TradingPassword => "trading_password",
            SessionStepUp::EmailCode => "code",
        }
    }
}

/// The limits a brokerage sets. The defaults follow seed 000 (code valid 5
/// minutes, app and desktop tool passkey-mandatory from 2026-06-21 18:00 JST)
/// and the security rules in DOMAIN.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Consecutive wrong login passwords that lock the login.
    pub lock_after_failed_passwords: u32,
    /// How long an e-mailed code stays valid (seed 000: 5 minutes; seed 002: 10).
    pub code_lifetime_secs: i64,
    /// Wrong entries allowed for one code before it is dead.
    pub code_max_attempts: u32,
    /// Shortest wait between two codes for one flow.
    pub resend_min_interval_secs: i64,
    /// Most resends per account in any rolling hour.
    pub resends_per_hour: u32,
    /// Most codes e-mailed to an account in an hour, across all its flows,
    /// first codes and resends alike.
    pub codes_per_hour: u32,
    /// Wrong codes an account may type in an hour across all its flows;
    /// past it, code entry is refused until the hour has passed (someone
    /// with the password cannot guess five times per new flow).
    pub wrong_codes_per_hour: u32,
    /// How long a registration or password-login flow lives from its start.
    pub flow_lifetime_secs: i64,
    /// Per channel, the instant from which a passkey is mandatory: a password
    /// login through that channel is then refused and registration forced.
    pub passkey_mandatory_from: Vec<(Channel, DateTime<Utc>)>,
    /// Most active passkeys one account may hold.
    pub max_passkeys: usize,
    /// How recent a login must be to add a passkey.
    pub recent_login_secs: i64,
    /// Consecutive wrong trading passwords that lock passkey deletion.
    pub lock_after_failed_trading_passwords: u32,
    /// Passwordless passkey login, or passkey as the second factor.
    pub login_mode: LoginMode,
    /// When passkey registration opens (seed 000: 2026-06-21 18:00 JST, "事前の
    /// 設定はできません"); None: open.
    pub registration_opens_at: Option<DateTime<Utc>>,
    /// Whether customers delete their own passkeys (seed 000) or only support
    /// does (seed 002: "パスキーの削除をご希望の場合は当社カスタマーサポートまで").
    pub customer_deletion: bool,
    /// What confirms a first passkey bound from a signed-in session.
    pub session_step_up: SessionStepUp,
    /// Where codes go when an account has two addresses.
    pub code_destination: CodeDestination,
    /// Whether a passkey whose signature counter went backwards is
    /// suspended until support reinstates it (otherwise the login is
    /// refused and the passkey stays usable).
    #[serde(default = "yes")]
    pub suspend_on_counter_regression: bool,
}

fn yes() -> bool {
    true
}

impl Default for Policy {
    fn default() -> Self {
        // 2026-06-21 18:00 JST (seed 000) is 09:00 UTC.
        let apps = Utc.with_ymd_and_hms(2026, 6, 21, 9, 0, 0).single().unwrap_or_default();
        Policy {
            lock_after_failed_passwords: 5,
            code_lifetime_secs: 5 * 60,
            code_max_attempts: 5,
            resend_min_interval_secs: 60,
            resends_per_hour: 5,
            codes_per_hour: 10,
            wrong_codes_per_hour: 10,
            flow_lifetime_secs: 30 * 60,
            passkey_mandatory_from: vec![(Channel::MobileApp, apps), (Channel::DesktopApp, apps)],
            max_passkeys: 10,
            recent_login_secs: 10 * 60,
            lock_after_failed_trading_passwords: 5,
            login_mode: LoginMode::Passwordless,
            registration_opens_at: None,
            customer_deletion: true,
            session_step_up: SessionStepUp::TradingPassword,
            code_destination: CodeDestination::Address1,
            suspend_on_counter_regression: true,
        }
    }
}

impl Policy {
    /// Whether a passkey is mandatory on `channel` at `at`.
    pub fn passkey_mandatory(&self, channel: Channel, at: DateTime<Utc>) -> bool {
        self.passkey_mandatory_from.iter().any(|(c, from)| *c == channel && at >= *from)
    }

    /// Whether passkey registration has not opened yet at `at`.
    pub fn registration_not_open(&self, at: DateTime<Utc>) -> bool {
        self.registration_opens_at.is_some_and(|opens| at < opens)
    }

    /// How long a code lives.
    pub fn code_lifetime(&self) -> Duration {
        Duration::seconds(self.code_lifetime_secs)
    }

    /// How long a flow lives.
    pub fn flow_lifetime(&self) -> Duration {
        Duration::seconds(self.flow_lifetime_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_channels_are_passkey_mandatory_from_seed_000s_instant() {
        let p = Policy::default();
        let before = Utc.with_ymd_and_hms(2026, 6, 21, 8, 59, 59).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 6, 21, 9, 0, 0).unwrap();
        assert!(!p.passkey_mandatory(Channel::MobileApp, before));
        assert!(p.passkey_mandatory(Channel::MobileApp, at));
        assert!(p.passkey_mandatory(Channel::DesktopApp, at));
        assert!(!p.passkey_mandatory(Channel::Web, at));
    }
}
