//! Configuration: sensible embedded defaults, each overridable by an
//! environment variable (see `docs/configuration.md`).

use std::path::PathBuf;

use ledger_domain::{Channel, LoginMode, Policy};

/// Where e-mail goes.
#[derive(Clone, PartialEq)]
pub enum MailTransport {
    /// Each message as one `.eml` file in this folder (the embedded default).
    Folder(PathBuf),
    /// An SMTP server: `smtp://host:port` (plain, for a local relay),
    /// `smtp+starttls://user:pass@host:587` or `smtps://user:pass@host:465`.
    Smtp(String),
}

/// Shows where mail goes, never the SMTP password.
impl std::fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailTransport::Folder(path) => write!(f, "folder {}", path.display()),
            MailTransport::Smtp(address) => match url::Url::parse(address) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    write!(f, "{url}")
                }
                Err(_) => f.write_str("an SMTP address that does not parse"),
            },
        }
    }
}

/// When a login notice is e-mailed (JSDA guideline 2025).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginNotice {
    /// For a login from an environment not seen before on the account.
    NewEnvironment,
    /// For every login.
    Every,
    Off,
}

/// Everything a deployment sets.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub rp_id: String,
    pub rp_name: String,
    pub origin: String,
    pub mail: MailTransport,
    pub mail_from: String,
    pub mail_subject: String,
    pub brokerage_name: String,
    pub session_lifetime_secs: i64,
    /// The longest an SMTP exchange may take (connect, greeting, every
    /// command), so a silent relay cannot hold a request.
    pub smtp_timeout_secs: u64,
    pub policy: Policy,
    /// Key for the keyed hash of one-time codes and tokens; read from
    /// `LEDGER_SECRET_KEY` or generated once into `data_dir/secret.key`.
    pub secret_key_hex: Option<crate::secrets::Secret>,
    /// `LEDGER_ADMIN_TOKEN_FILE`: a file holding the core system's admin
    /// token, provisioned at start (a deployment's secret mount; the only
    /// way to reach an in-memory database's integration API).
    pub admin_token_file: Option<PathBuf>,
    pub login_notice: LoginNotice,
    /// Security notices to every reachable registered address, not only
    /// address 1 (`LEDGER_NOTICE_ADDRESSES=all`).
    pub notice_all_addresses: bool,
    pub recommended: crate::environment::Recommended,
    /// Fraud rule thresholds.
    pub signals: ledger_projections::signals::Thresholds,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match env(name) {
        Some(v) => v.trim().parse().map_err(|_| format!("{name} must be a number, got {v:?}")),
        None => Ok(default),
    }
}

impl Config {
    /// The configuration from the environment, falling back to the embedded
    /// defaults: SQLite under `./data`, e-mail to `./data/outbox`, RP ID
    /// `localhost`, origin `http://localhost:8080`.
    pub fn from_env() -> Result<Config, String> {
        let data_dir = PathBuf::from(env("LEDGER_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = env("DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}/ledger.db", data_dir.display()));
        let mail = match env("LEDGER_SMTP_URL") {
            Some(url) => MailTransport::Smtp(url),
            None => MailTransport::Folder(env("LEDGER_OUTBOX").map(PathBuf::from).unwrap_or_else(|| data_dir.join("outbox"))),
        };
        let defaults = Policy::default();
        let mut policy = Policy {
            lock_after_failed_passwords: env_num("LEDGER_LOCK_AFTER_FAILED_PASSWORDS", defaults.lock_after_failed_passwords)?,
            code_lifetime_secs: env_num("LEDGER_CODE_LIFETIME_SECS", defaults.code_lifetime_secs)?,
            code_max_attempts: env_num("LEDGER_CODE_MAX_ATTEMPTS", defaults.code_max_attempts)?,
            resend_min_interval_secs: env_num("LEDGER_RESEND_MIN_INTERVAL_SECS", defaults.resend_min_interval_secs)?,
            resends_per_hour: env_num("LEDGER_RESENDS_PER_HOUR", defaults.resends_per_hour)?,
            flow_lifetime_secs: env_num("LEDGER_FLOW_LIFETIME_SECS", defaults.flow_lifetime_secs)?,
            passkey_mandatory_from: defaults.passkey_mandatory_from.clone(),
            max_passkeys: env_num("LEDGER_MAX_PASSKEYS", defaults.max_passkeys)?,
            recent_login_secs: env_num("LEDGER_RECENT_LOGIN_SECS", defaults.recent_login_secs)?,
            lock_after_failed_trading_passwords: env_num(
                "LEDGER_LOCK_AFTER_FAILED_TRADING_PASSWORDS",
                defaults.lock_after_failed_trading_passwords,
            )?,
            login_mode: defaults.login_mode,
            registration_opens_at: None,
            customer_deletion: true,
            session_step_up: defaults.session_step_up,
            code_destination: defaults.code_destination,
        };
        policy.login_mode = match env("LEDGER_LOGIN_MODE").as_deref() {
            None | Some("passwordless") => LoginMode::Passwordless,
            Some("second_factor") => LoginMode::SecondFactor,
            Some(other) => return Err(format!("LEDGER_LOGIN_MODE must be passwordless or second_factor, got {other:?}")),
        };
        let notice_all_addresses = match env("LEDGER_NOTICE_ADDRESSES").as_deref() {
            None | Some("address_1") => false,
            Some("all") => true,
            Some(other) => return Err(format!("LEDGER_NOTICE_ADDRESSES must be address_1 or all, got {other:?}")),
        };
        let login_notice = match env("LEDGER_LOGIN_NOTICE").as_deref() {
            None | Some("new_environment") => LoginNotice::NewEnvironment,
            Some("every") => LoginNotice::Every,
            Some("off") => LoginNotice::Off,
            Some(other) => return Err(format!("LEDGER_LOGIN_NOTICE must be new_environment, every or off, got {other:?}")),
        };
        let recommended = match env("LEDGER_RECOMMENDED_ENVIRONMENTS") {
            Some(spec) => crate::environment::Recommended::parse(&spec).map_err(|e| format!("LEDGER_RECOMMENDED_ENVIRONMENTS: {e}"))?,
            None => crate::environment::Recommended::default(),
        };
        if policy.code_lifetime_secs > 600 {
            return Err("LEDGER_CODE_LIFETIME_SECS may be at most 600 (10 minutes)".into());
        }
        policy.session_step_up = match env("LEDGER_SESSION_STEP_UP").as_deref() {
            None | Some("trading_password") => ledger_domain::SessionStepUp::TradingPassword,
            Some("code") => ledger_domain::SessionStepUp::EmailCode,
            Some(other) => return Err(format!("LEDGER_SESSION_STEP_UP must be trading_password or code, got {other:?}")),
        };
        policy.code_destination = match env("LEDGER_CODE_DESTINATION").as_deref() {
            None | Some("address_1") => ledger_domain::CodeDestination::Address1,
            Some("choose") => ledger_domain::CodeDestination::Choose,
            Some(other) => return Err(format!("LEDGER_CODE_DESTINATION must be address_1 or choose, got {other:?}")),
        };
        policy.customer_deletion = match env("LEDGER_CUSTOMER_DELETION").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => return Err(format!("LEDGER_CUSTOMER_DELETION must be on or off, got {other:?}")),
        };
        policy.registration_opens_at = match env("LEDGER_REGISTRATION_OPENS_AT").as_deref() {
            None | Some("none") => None,
            Some(at) => Some(
                chrono::DateTime::parse_from_rfc3339(at.trim())
                    .map_err(|_| format!("LEDGER_REGISTRATION_OPENS_AT must be an RFC 3339 instant, got {at:?}"))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        if let Some(spec) = env("LEDGER_PASSKEY_MANDATORY_FROM") {
            policy.passkey_mandatory_from = parse_mandatory(&spec)?;
        }
        let signals = signal_thresholds()?;
        let bind = env("LEDGER_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        Ok(Config {
            origin: env("LEDGER_ORIGIN").unwrap_or_else(|| "http://localhost:8080".into()),
            rp_id: env("LEDGER_RP_ID").unwrap_or_else(|| "localhost".into()),
            rp_name: env("LEDGER_RP_NAME").unwrap_or_else(|| "passkey-ledger demo".into()),
            bind,
            database_url,
            data_dir,
            mail,
            mail_from: env("LEDGER_MAIL_FROM").unwrap_or_else(|| "no-reply@localhost".into()),
            mail_subject: env("LEDGER_MAIL_SUBJECT")
                .unwrap_or_else(|| "【認証コード】パスキー登録のご案内 / Your verification code".into()),
            brokerage_name: env("LEDGER_BROKERAGE_NAME").unwrap_or_else(|| "デモ証券 (Demo Securities)".into()),
            session_lifetime_secs: env_num("LEDGER_SESSION_LIFETIME_SECS", 30 * 60)?,
            smtp_timeout_secs: match env_num("LEDGER_SMTP_TIMEOUT_SECS", 10u64)? {
                0 => return Err("LEDGER_SMTP_TIMEOUT_SECS must be at least 1".into()),
                n => n,
            },
            policy,
            secret_key_hex: env("LEDGER_SECRET_KEY").map(crate::secrets::Secret::from),
            admin_token_file: env("LEDGER_ADMIN_TOKEN_FILE").map(PathBuf::from),
            login_notice,
            notice_all_addresses,
            recommended,
            signals,
        })
    }
}

/// The fraud rules' thresholds: `count/seconds` or seconds per rule.
fn signal_thresholds() -> Result<ledger_projections::signals::Thresholds, String> {
    use ledger_projections::signals::Threshold;
    let d = ledger_projections::signals::Thresholds::default();
    let t = |name: &str, default: Threshold| match env(name) {
        Some(v) => Threshold::parse(&v).map_err(|e| format!("{name}: {e}")),
        None => Ok(default),
    };
    Ok(ledger_projections::signals::Thresholds {
        wrong_codes: t("LEDGER_SIGNAL_WRONG_CODES", d.wrong_codes)?,
        code_requests: t("LEDGER_SIGNAL_CODE_REQUESTS", d.code_requests)?,
        passkey_after_email_change_secs: env_num("LEDGER_SIGNAL_PASSKEY_AFTER_EMAIL_CHANGE_SECS", d.passkey_after_email_change_secs)?,
        passkeys_added: t("LEDGER_SIGNAL_PASSKEYS_ADDED", d.passkeys_added)?,
        lockouts: t("LEDGER_SIGNAL_LOCKOUTS", d.lockouts)?,
        wipe_window_secs: env_num("LEDGER_SIGNAL_WIPE_WINDOW_SECS", d.wipe_window_secs)?,
    })
}

/// Parses `mobile_app=2026-06-21T09:00:00Z,web=2027-01-04T00:00:00Z`; an
/// empty string means no channel is passkey-mandatory.
pub fn parse_mandatory(spec: &str) -> Result<Vec<(Channel, chrono::DateTime<chrono::Utc>)>, String> {
    spec.split(',')
        .filter(|s| !s.trim().is_empty() && s.trim() != "none")
        .map(|pair| {
            let (c, t) = pair.split_once('=').ok_or_else(|| format!("expected channel=instant, got {pair:?}"))?;
            let channel: Channel = c.parse().map_err(|e| format!("{e}"))?;
            let at = chrono::DateTime::parse_from_rfc3339(t.trim()).map_err(|e| format!("{t:?}: {e}"))?;
            Ok((channel, at.with_timezone(&chrono::Utc)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_the_settings_shows_no_secret() {
        let smtp = MailTransport::Smtp("smtps://ledger:s3cr3t-pw@mail.example.jp:465".into());
        assert_eq!(format!("{smtp:?}"), "smtps://ledger:***@mail.example.jp:465");
        let mut config = Config::from_env().unwrap();
        config.mail = smtp;
        config.secret_key_hex = Some(crate::secrets::Secret::from("6b".repeat(32)));
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cr3t-pw") && !printed.contains(&"6b".repeat(32)), "{printed}");
    }

    #[test]
    fn mandatory_instants_parse_per_channel() {
        let parsed = parse_mandatory("mobile_app=2026-06-21T18:00:00+09:00, web=2027-01-04T00:00:00Z").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0, Channel::MobileApp);
        assert_eq!(parsed[0].1.to_rfc3339(), "2026-06-21T09:00:00+00:00");
    }

    #[test]
    fn a_malformed_mandatory_instant_is_refused() {
        assert!(parse_mandatory("fax=2026-01-01T00:00:00Z").is_err());
        assert!(parse_mandatory("web").is_err());
        assert_eq!(parse_mandatory("none").unwrap(), vec![]);
    }
}
