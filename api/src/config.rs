//! Configuration: sensible embedded defaults, each overridable by an
//! environment variable (see `docs/configuration.md`).

use std::path::PathBuf;

use ledger_domain::{Channel, LoginMode, Policy};
use ledger_projections::signals::{SharedEmailSeverity, Threshold, Thresholds};

/// Where e-mail goes.
#[derive(Clone, PartialEq)]
pub enum MailTransport {
    /// Each message as one `.eml` file in this folder (the embedded default).
    Folder(PathBuf),
    /// An SMTP server: `smtp://host:port` (plain, for a local relay),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465`.
    Smtp(String),
}

/// Shows where mail goes, never the SMTP password.
impl std::fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailTransport::Folder(path) => write!(f, "folder {}", path.display()),
            MailTransport::Smtp(address) => f.write_str(&without_secrets(address)),
        }
    }
}

impl std::fmt::Display for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A server's address (a database or SMTP URL) fit for a log line: the
/// password masked, the query (which may hold one, `?password=`) dropped.
pub fn without_secrets(address: &str) -> String {
    match url::Url::parse(address) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            if url.query().is_some() {
                url.set_query(Some("..."));
            }
            url.to_string()
        }
        Err(_) => "an address that does not parse".to_string(),
    }
}

/// The database's URL; `Debug` and `Display` show it without its secrets.
#[derive(Clone, PartialEq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL itself, for connecting; never for printing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&without_secrets(&self.0))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&without_secrets(&self.0))
    }
}

/// NATS JetStream, when `LEDGER_NATS_URL` is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Nats {
    /// The server's URL; shown without its credentials.
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
    /// Personal data in full (else masked).
    pub full_personal_data: bool,
}

/// Shows the server without its credentials.
impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats")
            .field("url", &without_secrets(&self.url))
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("full_personal_data", &self.full_personal_data)
            .finish()
    }
}

/// The trail's subscribers: NATS and the webhooks' delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streams {
    pub nats: Option<Nats>,
    /// Webhooks may reach loopback, private and link-local networks, over
    /// plain http too (tests, a SIEM inside the brokerage).
    pub webhook_allow_private: bool,
    /// How long a receiver may take to answer.
    pub webhook_timeout: std::time::Duration,
    /// The longest wait between two attempts (the waits double up to it).
    pub webhook_retry_max: std::time::Duration,
    /// A subscription failing for this long is disabled.
    pub webhook_disable_after: std::time::Duration,
}

/// Personal data in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum PersonalData {
    Masked,
    Full,
}

/// `1`, `true`, `on` or `yes`; `0`, `false`, `off` or `no`.
fn flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" | "" => Ok(false),
        other => Err(format!("{other:?}: expected 1 or 0")),
    }
}

fn stream_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\')) {
        return Err(format!("{s:?}: a JetStream stream name has no spaces, dots, wildcards or slashes"));
    }
    Ok(s.to_string())
}

fn subject_prefix(s: &str) -> Result<String, String> {
    if s.is_empty()
        || s.starts_with('.')
        || s.ends_with('.')
        || s.contains("..")
        || s.chars().any(|c| c.is_whitespace() || matches!(c, '*' | '>'))
    {
        return Err(format!("{s:?}: a subject prefix is one or more dot-separated tokens without spaces or wildcards"));
    }
    Ok(s.to_string())
}

/// When a login notice is e-mailed (JSDA guideline 2025).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum LoginNotice {
    /// For a login from an environment not seen before on the account.
    NewEnvironment,
    /// For every login.
    Every,
    Off,
}

/// The brokerage as its customers know it: names, registration, support
/// desk, and the words it uses (`LEDGER_BROKERAGE_*`, `LEDGER_SUPPORT_*`,
/// `LEDGER_TRADING_PASSWORD_TERM*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brokerage {
    /// The Japanese name (`LEDGER_BROKERAGE_NAME` up to " (").
    pub name_ja: String,
    pub name_en: String,
    pub registration: String,
    pub registration_en: String,
    pub support_phone: String,
    pub support_hours_ja: String,
    pub support_hours_en: String,
    pub terms: ledger_domain::account::activity::Terms,
}

/// Everything a deployment sets.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    /// `LEDGER_ADMIN_BIND`: a second address for operators and staff
    /// (`/metrics` without a token, the staff, compliance and integration
    /// APIs); None: the public address serves everything.
    pub admin_bind: Option<String>,
    /// Whether the public address also serves the staff, compliance and
    /// integration APIs and `/metrics` (off only with an admin address).
    pub public_staff_api: bool,
    pub run_mode: RunMode,
    pub database_url: DatabaseUrl,
    /// How long start-up waits for an unreachable database before giving up.
    pub database_wait: std::time::Duration,
    /// How long the projector may be behind without moving on before
    /// `/readyz` says `stuck` (503).
    pub projector_stuck: std::time::Duration,
    pub data_dir: PathBuf,
    pub rp_id: String,
    pub rp_name: String,
    pub origin: String,
    pub mail: MailTransport,
    pub mail_from: String,
    pub mail_subject: String,
    pub login_mail_subject: String,
    pub brokerage_name: String,
    /// Who the brokerage is and how customers reach it, for the mails and
    /// pages customers read.
    pub brokerage: Brokerage,
    pub session_lifetime_secs: i64,
    /// The staff console: a session ends after this many seconds without a
    /// request, and after `console_absolute_secs` in any case.
    pub console_idle_secs: i64,
    pub console_absolute_secs: i64,
    /// The longest an SMTP exchange may take (connect, greeting, every
    /// command), so a silent relay cannot hold a request.
    pub smtp_timeout_secs: u64,
    /// The audit log's name in its signed checkpoints (`LEDGER_LOG_ORIGIN`,
    /// default `<rp id>/passkey-ledger`).
    pub log_origin: String,
    /// How often a checkpoint is signed when the trail has grown; `None`:
    /// only by `ledger audit checkpoint`.
    pub checkpoint_every: Option<std::time::Duration>,
    /// The RFC 3161 time-stamp authority that stamps each checkpoint
    /// (`LEDGER_TSA_URL`); `None`: checkpoints are not timestamped.
    pub tsa_url: Option<reqwest::Url>,
    /// The certificates a timestamp must lead to (`LEDGER_TSA_CA_FILE`,
    /// PEM), read at start.
    pub tsa_trust: Option<ledger_projections::timestamp::Trust>,
    /// Where the trail goes besides the database: NATS and webhooks.
    pub streams: Streams,
    /// How long a client may take to send a request's headers.
    pub header_timeout: std::time::Duration,
    /// How long a request may take from its headers to its answer (its
    /// body included).
    pub request_timeout: std::time::Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a write to a client may make no progress.
    pub write_timeout: std::time::Duration,
    /// Failed credential attempts a client may make a minute; 0: no limit.
    pub failed_attempts_per_client_per_minute: u32,
    /// Wrong passwords one login ID may take a minute; 0: no limit.
    pub failed_passwords_per_login_id_per_minute: u32,
    /// Argon2 computations at once, and how long a request waits for one.
    pub password_hash_slots: usize,
    pub password_hash_wait: std::time::Duration,
    pub policy: Policy,
    /// Key for the keyed hash of one-time codes and tokens; read from
    /// `LEDGER_SECRET_KEY` or generated once into `data_dir/secret.key`.
    pub secret_key_hex: Option<crate::secrets::Secret>,
    /// `LEDGER_ADMIN_TOKEN_FILE`: a file holding the core system's admin
    /// token, provisioned at start (a deployment's secret mount; the only
    /// way to reach an in-memory database's integration API).
    pub admin_token_file: Option<PathBuf>,
    /// `LEDGER_METRICS_TOKEN`: what a scraper presents to read `/metrics`.
    pub metrics_token: Option<crate::secrets::Secret>,
    /// `LEDGER_TRUSTED_PROXIES`: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// `LEDGER_CORS_ORIGINS`: the other origins whose pages may call the
    /// API from a browser; none by default.
    pub cors_origins: Vec<String>,
    pub login_notice: LoginNotice,
    /// Security notices to every reachable registered address, not only
    /// address 1 (`LEDGER_NOTICE_ADDRESSES=all`).
    pub notice_all_addresses: bool,
    pub recommended: crate::environment::Recommended,
    /// Fraud rule thresholds.
    pub signals: ledger_projections::signals::Thresholds,
}

/// Every setting, each from its environment variable (or the same-named
/// flag), with its default: `ledger --help` lists them. An environment
/// variable set to an empty string counts as unset. Cross-field rules and
/// the parsing of structured values are [`Config::try_from`]'s. No `Debug`:
/// the SMTP address may hold a password ([`Config`]'s `Debug` masks it).
#[derive(Clone, clap::Args)]
pub struct Settings {
    /// Listen address.
    #[arg(long, env = "LEDGER_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,
    /// `postgres://...` for PostgreSQL; `sqlite::memory:` keeps everything in
    /// memory; default: SQLite in the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// SQLite file, outbox, generated secret key.
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// A second address (`127.0.0.1:9090`, an internal interface) serving
    /// everything, `/metrics` without a token; for operators and staff.
    #[arg(long, env = "LEDGER_ADMIN_BIND", global = true)]
    pub admin_bind: Option<String>,
    /// `off`: the public address serves customers only (registration,
    /// login, `/me`, health and the demo page); the staff, compliance and
    /// integration APIs and `/metrics` only on `LEDGER_ADMIN_BIND`.
    #[arg(long, env = "LEDGER_PUBLIC_STAFF_API", value_enum, default_value_t = Switch::On, global = true)]
    pub public_staff_api: Switch,
    /// `production` refuses to start without an explicit `DATABASE_URL`
    /// (PostgreSQL), `LEDGER_SMTP_URL`, `LEDGER_SECRET_KEY` and an https
    /// `LEDGER_ORIGIN`: nothing falls back to a local file or a generated key.
    #[arg(long = "env", env = "LEDGER_ENV", value_enum, default_value_t = RunMode::Development, global = true)]
    pub run_mode: RunMode,
    /// WebAuthn origin the browser reports.
    #[arg(long, env = "LEDGER_ORIGIN", default_value = "http://localhost:8080", global = true)]
    pub origin: String,
    /// WebAuthn relying party ID.
    #[arg(long, env = "LEDGER_RP_ID", default_value = "localhost", global = true)]
    pub rp_id: String,
    /// Shown by the authenticator.
    #[arg(long, env = "LEDGER_RP_NAME", default_value = "passkey-ledger demo", global = true)]
    pub rp_name: String,
    /// An SMTP relay: `smtp://host:25` (plain, a local relay),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465`; default: e-mail as files in the outbox.
    #[arg(long, env = "LEDGER_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// Folder for `.eml` files; default: `outbox` in the data folder.
    #[arg(long, env = "LEDGER_OUTBOX", global = true)]
    pub outbox: Option<PathBuf>,
    /// The sender of every e-mail.
    #[arg(long, env = "LEDGER_MAIL_FROM", default_value = "no-reply@localhost", global = true)]
    pub mail_from: String,
    /// The subject of the code e-mail for a passkey registration.
    #[arg(long, env = "LEDGER_MAIL_SUBJECT", default_value = "【認証コード】パスキー登録のご案内 / Your verification code", global = true)]
    pub mail_subject: String,
    /// The subject of the code e-mail for a login (password + code, or the
    /// code while no passkey is registered in second-factor mode).
    #[arg(
        long,
        env = "LEDGER_LOGIN_MAIL_SUBJECT",
        default_value = "【認証コード】ログインのご案内 / Your login verification code",
        global = true
    )]
    pub login_mail_subject: String,
    /// The brokerage's name in the e-mails.
    #[arg(long, env = "LEDGER_BROKERAGE_NAME", default_value = "デモ証券 (Demo Securities)", global = true)]
    pub brokerage_name: String,
    /// The brokerage's name in the English part of mails and pages.
    #[arg(long, env = "LEDGER_BROKERAGE_NAME_EN", default_value = "Demo Securities", global = true)]
    pub brokerage_name_en: String,
    /// The registration line that closes every mail (金融商品取引業者 登録番号).
    #[arg(
        long,
        env = "LEDGER_BROKERAGE_REGISTRATION",
        default_value = "金融商品取引業者 関東財務局長（金商）第0000号（デモ）",
        global = true
    )]
    pub brokerage_registration: String,
    /// The same, in English.
    #[arg(
        long,
        env = "LEDGER_BROKERAGE_REGISTRATION_EN",
        default_value = "Financial Instruments Business Operator, Director-General of the Kanto Local Finance Bureau (FIBO) No. 0000 (demo)",
        global = true
    )]
    pub brokerage_registration_en: String,
    /// The support desk's telephone number, in mails and on pages.
    #[arg(long, env = "LEDGER_SUPPORT_PHONE", default_value = "0120-000-000", global = true)]
    pub support_phone: String,
    /// The support desk's hours, in Japanese.
    #[arg(long, env = "LEDGER_SUPPORT_HOURS", default_value = "平日 8:00〜17:00（土日祝・年末年始を除く）", global = true)]
    pub support_hours: String,
    /// The support desk's hours, in English.
    #[arg(long, env = "LEDGER_SUPPORT_HOURS_EN", default_value = "weekdays 8:00-17:00 JST, except holidays", global = true)]
    pub support_hours_en: String,
    /// What the brokerage calls the trading password (seed 000: 執行パスワード;
    /// many brokerages: 取引パスワード).
    #[arg(long, env = "LEDGER_TRADING_PASSWORD_TERM", default_value = "執行パスワード", global = true)]
    pub trading_password_term: String,
    /// The same, in English.
    #[arg(long, env = "LEDGER_TRADING_PASSWORD_TERM_EN", default_value = "trading password", global = true)]
    pub trading_password_term_en: String,
    /// Customer session lifetime.
    #[arg(long, env = "LEDGER_SESSION_LIFETIME_SECS", default_value_t = 30 * 60, value_parser = at_least_one_i64, global = true)]
    pub session_lifetime_secs: i64,
    /// Staff console: seconds without a request before a session ends (15 minutes).
    #[arg(long, env = "LEDGER_CONSOLE_IDLE_SECS", default_value_t = 15 * 60, value_parser = at_least_one_i64, global = true)]
    pub console_idle_secs: i64,
    /// The audit log's name in its signed checkpoints and verifier key
    /// (one word, no '+'); default: `<LEDGER_RP_ID>/passkey-ledger`.
    #[arg(long, env = "LEDGER_LOG_ORIGIN", global = true)]
    pub log_origin: Option<String>,
    /// Seconds between signed checkpoints of the audit trail's Merkle tree
    /// (one is made only when the trail has grown); 0: only by `ledger
    /// audit checkpoint`.
    #[arg(long, env = "LEDGER_CHECKPOINT_EVERY", default_value_t = 60, value_parser = seconds_up_to_a_day, global = true)]
    pub checkpoint_every: u64,
    /// An RFC 3161 time-stamp authority (http or https) that timestamps
    /// every checkpoint; unset: no timestamps.
    #[arg(long, env = "LEDGER_TSA_URL", global = true)]
    pub tsa_url: Option<String>,
    /// PEM file of the certificate(s) the TSA's certificate must be or lead
    /// to: timestamps are checked against it when fetched and by `ledger
    /// audit verify`.
    #[arg(long, env = "LEDGER_TSA_CA_FILE", global = true)]
    pub tsa_ca_file: Option<PathBuf>,
    /// NATS server to stream every event to (JetStream); unset: off.
    #[arg(long, env = "LEDGER_NATS_URL", hide_env_values = true, global = true)]
    pub nats_url: Option<String>,
    /// The JetStream stream (created if missing, file storage).
    #[arg(long, env = "LEDGER_NATS_STREAM", default_value = "LEDGER", value_parser = stream_name, global = true)]
    pub nats_stream: String,
    /// Subjects: `<prefix>.events.<stream>.<EventType>`, `<prefix>.checkpoints`.
    #[arg(long, env = "LEDGER_NATS_SUBJECT_PREFIX", default_value = "ledger", value_parser = subject_prefix, global = true)]
    pub nats_subject_prefix: String,
    /// E-mail and IP addresses, User-Agents and login IDs on NATS.
    #[arg(long, env = "LEDGER_NATS_PERSONAL_DATA", value_enum, default_value_t = PersonalData::Masked, global = true)]
    pub nats_personal_data: PersonalData,
    /// Webhooks may reach loopback, private and link-local networks (and
    /// use plain http): `1` for tests or a SIEM inside the network.
    #[arg(long, env = "LEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS", default_value = "0", value_parser = flag, global = true)]
    pub webhook_allow_private_networks: bool,
    /// Seconds a webhook receiver may take to answer.
    #[arg(long, env = "LEDGER_WEBHOOK_TIMEOUT_SECS", default_value_t = 10, value_parser = seconds_from_one_to_a_day, global = true)]
    pub webhook_timeout_secs: u64,
    /// The longest wait, in seconds, between two delivery attempts.
    #[arg(long, env = "LEDGER_WEBHOOK_RETRY_MAX_SECS", default_value_t = 300, value_parser = seconds_from_one_to_a_day, global = true)]
    pub webhook_retry_max_secs: u64,
    /// Seconds of failed deliveries after which a subscription is disabled.
    #[arg(long, env = "LEDGER_WEBHOOK_DISABLE_AFTER_SECS", default_value_t = 3 * 86400, value_parser = seconds_from_one_to_a_week, global = true)]
    pub webhook_disable_after_secs: u64,
    /// Staff console: seconds a session lasts at most, however busy (8 hours).
    #[arg(long, env = "LEDGER_CONSOLE_ABSOLUTE_SECS", default_value_t = 8 * 3600, value_parser = at_least_one_i64, global = true)]
    pub console_absolute_secs: i64,
    /// Seconds start-up waits for a database that cannot be reached (or
    /// is starting), trying again with a log line each time; 0: no wait.
    #[arg(long, env = "LEDGER_DATABASE_WAIT_SECS", default_value_t = 120, value_parser = seconds_up_to_a_day, global = true)]
    pub database_wait_secs: u64,
    /// Seconds the projector may be behind without moving on before
    /// `/readyz` answers 503 `stuck` (1 to 86400).
    #[arg(long, env = "LEDGER_PROJECTOR_STUCK_SECS", default_value_t = 120, value_parser = seconds_from_one_to_a_day, global = true)]
    pub projector_stuck_secs: u64,
    /// The longest an SMTP exchange may take (1 to 3600 seconds).
    #[arg(long, env = "LEDGER_SMTP_TIMEOUT_SECS", default_value_t = 10, value_parser = smtp_timeout, global = true)]
    pub smtp_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers (1 to 300);
    /// past it the connection is closed.
    #[arg(long, env = "LEDGER_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = seconds_up_to_300, global = true)]
    pub header_timeout_secs: u64,
    /// Seconds a request may take from its headers to its answer, its body
    /// included (1 to 600); past it the answer is 408 `request_timeout`.
    #[arg(long, env = "LEDGER_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = seconds_up_to_600, global = true)]
    pub request_timeout_secs: u64,
    /// Connections open at once (1 to 1,000,000; keep it under the open
    /// files limit); past it new connections wait to be accepted.
    #[arg(long, env = "LEDGER_MAX_CONNECTIONS", default_value_t = 4096, value_parser = max_connections, global = true)]
    pub max_connections: usize,
    /// Seconds a write to a client may make no progress (1 to 600): a
    /// client that stops reading its answers loses its connection.
    #[arg(long, env = "LEDGER_WRITE_TIMEOUT_SECS", default_value_t = 30, value_parser = seconds_up_to_600, global = true)]
    pub write_timeout_secs: u64,
    /// Failed credential attempts (a wrong password or code, an unknown ID,
    /// a refused passkey) one client may make a minute before its attempts
    /// are answered 429 `too_many_requests` (0 to 100,000; 0: no limit).
    /// Successful ones do not count, so customers behind one carrier NAT do
    /// not slow each other.
    #[arg(long, env = "LEDGER_FAILED_ATTEMPTS_PER_CLIENT_PER_MINUTE", default_value_t = 30, value_parser = attempts_per_minute, global = true)]
    pub failed_attempts_per_client_per_minute: u32,
    /// Wrong passwords one login ID may take a minute, from any clients,
    /// before its password steps are answered 429 `too_many_requests` for
    /// a while (a burst of as many, then one every 60/n seconds; 0 to 100;
    /// 0: no limit). Slows an attack towards the lock-out; a customer who
    /// mistypes waits seconds. Known and unknown IDs alike.
    #[arg(long, env = "LEDGER_FAILED_PASSWORDS_PER_LOGIN_ID_PER_MINUTE", default_value_t = 3, value_parser = passwords_per_minute, global = true)]
    pub failed_passwords_per_login_id_per_minute: u32,
    /// Hex, at least 32 bytes: the key for code hashes; default: generated
    /// into the data folder. Set it when running several instances.
    #[arg(long, env = "LEDGER_SECRET_KEY", hide_env_values = true, value_parser = secret, global = true)]
    pub secret_key: Option<crate::secrets::Secret>,
    /// A bearer token a Prometheus scraper presents to read `/metrics`;
    /// without one, only clients on this machine (loopback) may read.
    #[arg(long, env = "LEDGER_METRICS_TOKEN", hide_env_values = true, value_parser = secret, global = true)]
    pub metrics_token: Option<crate::secrets::Secret>,
    /// Reverse proxies whose X-Forwarded-For is believed (addresses and
    /// networks, comma-separated: `10.0.0.0/8,192.0.2.7`); a request from
    /// one of them is recorded with the right-most address in the header
    /// that is not one of them. Default: none; the socket's peer is the client.
    #[arg(long, env = "LEDGER_TRUSTED_PROXIES", default_value = "", value_parser = trusted_proxies, global = true)]
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// Other origins whose pages may call the API from a browser
    /// (`https://www.broker.example`, comma-separated): cross-origin
    /// requests are answered with CORS headers for them alone. Default:
    /// none, the API serves its own origin's pages only.
    #[arg(long, env = "LEDGER_CORS_ORIGINS", default_value = "", value_parser = cors_origins, global = true)]
    pub cors_origins: CorsOrigins,
    /// A file holding the core system's admin token (at least 32
    /// characters), provisioned at start as staff member `core-system`.
    #[arg(long, env = "LEDGER_ADMIN_TOKEN_FILE", global = true)]
    pub admin_token_file: Option<PathBuf>,
    /// Password hashes computed at once (each takes a core and about 19 MiB);
    /// default: the number of cores.
    #[arg(long, env = "LEDGER_PASSWORD_HASH_SLOTS", default_value_t = cores(), value_parser = at_least_one_usize, global = true)]
    pub password_hash_slots: usize,
    /// How long a request waits for a password-hash slot before it is
    /// answered `busy` (503).
    #[arg(long, env = "LEDGER_PASSWORD_HASH_WAIT_MS", default_value_t = 2000, value_parser = at_least_one_u64, global = true)]
    pub password_hash_wait_ms: u64,
    /// Consecutive wrong login passwords that lock the login.
    #[arg(long, env = "LEDGER_LOCK_AFTER_FAILED_PASSWORDS", default_value_t = Policy::default().lock_after_failed_passwords,
          value_parser = at_least_one_u32, global = true)]
    pub lock_after_failed_passwords: u32,
    /// How long an e-mailed code stays valid: 1 to 600 seconds.
    #[arg(long, env = "LEDGER_CODE_LIFETIME_SECS", default_value_t = Policy::default().code_lifetime_secs,
          value_parser = code_lifetime, global = true)]
    pub code_lifetime_secs: i64,
    /// Wrong entries allowed for one code.
    #[arg(long, env = "LEDGER_CODE_MAX_ATTEMPTS", default_value_t = Policy::default().code_max_attempts, value_parser = at_least_one_u32, global = true)]
    pub code_max_attempts: u32,
    /// The shortest wait between two codes of one flow.
    #[arg(long, env = "LEDGER_RESEND_MIN_INTERVAL_SECS", default_value_t = Policy::default().resend_min_interval_secs,
          value_parser = at_least_zero_i64, global = true)]
    pub resend_min_interval_secs: i64,
    /// Resends per account in any rolling hour.
    #[arg(long, env = "LEDGER_RESENDS_PER_HOUR", default_value_t = Policy::default().resends_per_hour, value_parser = hourly_count, global = true)]
    pub resends_per_hour: u32,
    /// Codes e-mailed to one account in an hour, across all its flows.
    #[arg(long, env = "LEDGER_CODES_PER_HOUR", default_value_t = Policy::default().codes_per_hour, value_parser = hourly_count, global = true)]
    pub codes_per_hour: u32,
    /// Wrong codes one account may type in an hour across all its flows;
    /// past it, code entry is refused (`too_many_attempts`) for the hour.
    #[arg(long, env = "LEDGER_WRONG_CODES_PER_HOUR", default_value_t = Policy::default().wrong_codes_per_hour,
          value_parser = hourly_count, global = true)]
    pub wrong_codes_per_hour: u32,
    /// How long a registration or password-login flow lives.
    #[arg(long, env = "LEDGER_FLOW_LIFETIME_SECS", default_value_t = Policy::default().flow_lifetime_secs, value_parser = at_least_one_i64, global = true)]
    pub flow_lifetime_secs: i64,
    /// Active passkeys per account.
    #[arg(long, env = "LEDGER_MAX_PASSKEYS", default_value_t = Policy::default().max_passkeys, value_parser = at_least_one_usize, global = true)]
    pub max_passkeys: usize,
    /// How recent a login must be to add a passkey.
    #[arg(long, env = "LEDGER_RECENT_LOGIN_SECS", default_value_t = Policy::default().recent_login_secs, value_parser = at_least_one_i64, global = true)]
    pub recent_login_secs: i64,
    /// Wrong trading passwords that lock passkey deletion.
    #[arg(long, env = "LEDGER_LOCK_AFTER_FAILED_TRADING_PASSWORDS",
          default_value_t = Policy::default().lock_after_failed_trading_passwords, value_parser = at_least_one_u32, global = true)]
    pub lock_after_failed_trading_passwords: u32,
    /// Per channel, the instant a passkey becomes mandatory; `none` for no
    /// channel (seed 000: the apps from 2026-06-21 18:00 JST).
    #[arg(long, env = "LEDGER_PASSKEY_MANDATORY_FROM", default_value_t = mandatory_spec(&Policy::default().passkey_mandatory_from), global = true)]
    pub passkey_mandatory_from: String,
    /// Passkey alone, or a passkey after the password (seed 002).
    #[arg(long, env = "LEDGER_LOGIN_MODE", value_enum, default_value = "passwordless", global = true)]
    pub login_mode: LoginModeSetting,
    /// RFC 3339 instant from which passkey registration opens; `none`: open.
    #[arg(long, env = "LEDGER_REGISTRATION_OPENS_AT", global = true)]
    pub registration_opens_at: Option<String>,
    /// `off`: only support deletes passkeys (seed 002).
    #[arg(long, env = "LEDGER_CUSTOMER_DELETION", value_enum, default_value = "on", global = true)]
    pub customer_deletion: Switch,
    /// `off`: a passkey whose signature counter went backwards is refused
    /// that once but not suspended until support has checked it.
    #[arg(long, env = "LEDGER_SUSPEND_ON_COUNTER_REGRESSION", value_enum, default_value = "on", global = true)]
    pub suspend_on_counter_regression: Switch,
    /// Where codes go when an account has two addresses (seed 003, 004).
    #[arg(long, env = "LEDGER_CODE_DESTINATION", value_enum, default_value = "address_1", global = true)]
    pub code_destination: CodeDestinationSetting,
    /// Security notices to address 1 only, or to every reachable address.
    #[arg(long, env = "LEDGER_NOTICE_ADDRESSES", value_enum, default_value = "address_1", global = true)]
    pub notice_addresses: NoticeAddresses,
    /// What confirms a first passkey registered from a signed-in session.
    #[arg(long, env = "LEDGER_SESSION_STEP_UP", value_enum, default_value = "trading_password", global = true)]
    pub session_step_up: StepUpSetting,
    /// When a login notice is e-mailed.
    #[arg(long, env = "LEDGER_LOGIN_NOTICE", value_enum, default_value = "new_environment", global = true)]
    pub login_notice: LoginNotice,
    /// Per OS a minimum version, then optionally the browsers (seed 000 p.3).
    #[arg(long, env = "LEDGER_RECOMMENDED_ENVIRONMENTS", default_value = crate::environment::RECOMMENDED_BY_SEED_000,
          value_parser = crate::environment::Recommended::parse, global = true)]
    pub recommended_environments: crate::environment::Recommended,
    /// Fraud rule: wrong e-mail codes per account (`count/seconds`).
    #[arg(long, env = "LEDGER_SIGNAL_WRONG_CODES", default_value_t = Thresholds::default().wrong_codes, value_parser = Threshold::parse, global = true)]
    pub signal_wrong_codes: Threshold,
    /// Fraud rule: codes issued per account (`count/seconds`).
    #[arg(long, env = "LEDGER_SIGNAL_CODE_REQUESTS", default_value_t = Thresholds::default().code_requests, value_parser = Threshold::parse, global = true)]
    pub signal_code_requests: Threshold,
    /// Fraud rule: a passkey added this soon after an address change.
    #[arg(long, env = "LEDGER_SIGNAL_PASSKEY_AFTER_EMAIL_CHANGE_SECS", default_value_t = Thresholds::default().passkey_after_email_change_secs,
          value_parser = at_least_one_i64, global = true)]
    pub signal_passkey_after_email_change_secs: i64,
    /// Fraud rule: passkeys added per account (`count/seconds`).
    #[arg(long, env = "LEDGER_SIGNAL_PASSKEYS_ADDED", default_value_t = Thresholds::default().passkeys_added, value_parser = Threshold::parse, global = true)]
    pub signal_passkeys_added: Threshold,
    /// Fraud rule: lock-outs per account (`count/seconds`).
    #[arg(long, env = "LEDGER_SIGNAL_LOCKOUTS", default_value_t = Thresholds::default().lockouts, value_parser = Threshold::parse, global = true)]
    pub signal_lockouts: Threshold,
    /// Fraud rule: distinct clients behind one lock-out that make it an attack.
    #[arg(long, env = "LEDGER_SIGNAL_LOCKOUT_CLIENTS", default_value_t = Thresholds::default().lockout_clients, value_parser = at_least_one_u32, global = true)]
    pub signal_lockout_clients: u32,
    /// Fraud rule: distinct clients sending wrong passwords to one account (`count/seconds`).
    #[arg(long, env = "LEDGER_SIGNAL_PASSWORD_CLIENTS", default_value_t = Thresholds::default().password_clients, value_parser = Threshold::parse, global = true)]
    pub signal_password_clients: Threshold,
    /// Fraud rule: look-back of "all deleted, then a new one from a new environment".
    #[arg(long, env = "LEDGER_SIGNAL_WIPE_WINDOW_SECS", default_value_t = Thresholds::default().wipe_window_secs, value_parser = at_least_one_i64, global = true)]
    pub signal_wipe_window_secs: i64,
    /// Fraud rule: `shared_email`'s severity at opening per holder kind
    /// (`individual=medium,family=low,corporate=low`).
    #[arg(long, env = "LEDGER_SIGNAL_SHARED_EMAIL_SEVERITY", default_value_t = Thresholds::default().shared_email, value_parser = SharedEmailSeverity::parse, global = true)]
    pub signal_shared_email_severity: SharedEmailSeverity,
    /// Fraud rule: wrong passwords for this many login IDs from one client address (`count/seconds`).
    #[arg(long, env = "LEDGER_SIGNAL_LOGIN_IDS_PER_CLIENT", default_value_t = Thresholds::default().login_ids_per_client, value_parser = Threshold::parse, global = true)]
    pub signal_login_ids_per_client: Threshold,
    /// Fraud rule: the same from several clients of one network (IPv4 /24, IPv6 /64).
    #[arg(long, env = "LEDGER_SIGNAL_LOGIN_IDS_PER_NETWORK", default_value_t = Thresholds::default().login_ids_per_network, value_parser = Threshold::parse, global = true)]
    pub signal_login_ids_per_network: Threshold,
}

/// A whole number from a setting, spaces and line ends around it ignored
/// (an env file saved with CRLF), at least `min` and at most `max`.
fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(value: &str, min: T, max: Option<T>) -> Result<T, String> {
    let n: T = value.trim().parse().map_err(|_| format!("{:?} is not a whole number", value.trim()))?;
    match max {
        Some(max) if n < min || n > max => Err(format!("must be between {min} and {max}, got {n}")),
        _ if n < min => Err(format!("must be at least {min}, got {n}")),
        _ => Ok(n),
    }
}

fn at_least_one_u32(value: &str) -> Result<u32, String> {
    number(value, 1, None)
}

fn at_least_one_usize(value: &str) -> Result<usize, String> {
    number(value, 1, None)
}

fn at_least_one_i64(value: &str) -> Result<i64, String> {
    number(value, 1, None)
}

/// An hourly count of codes: 1 to 100 (an account keeps its last 101 code
/// instants, `RECENT_KEPT` in the domain's account aggregate).
fn hourly_count(value: &str) -> Result<u32, String> {
    number(value, 1, Some(100))
}

fn at_least_one_u64(value: &str) -> Result<u64, String> {
    number(value, 1, None)
}

fn cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(2)
}

fn at_least_zero_i64(value: &str) -> Result<i64, String> {
    number(value, 0, None)
}

fn code_lifetime(value: &str) -> Result<i64, String> {
    number(value, 1, Some(600))
}

fn smtp_timeout(value: &str) -> Result<u64, String> {
    number(value, 1, Some(3600))
}

fn seconds_from_one_to_a_day(value: &str) -> Result<u64, String> {
    number(value, 1, Some(86_400))
}

fn seconds_from_one_to_a_week(value: &str) -> Result<u64, String> {
    number(value, 1, Some(7 * 86_400))
}

fn seconds_up_to_a_day(value: &str) -> Result<u64, String> {
    number(value, 0, Some(86_400))
}

fn seconds_up_to_300(value: &str) -> Result<u64, String> {
    number(value, 1, Some(300))
}

fn seconds_up_to_600(value: &str) -> Result<u64, String> {
    number(value, 1, Some(600))
}

fn passwords_per_minute(value: &str) -> Result<u32, String> {
    number(value, 0, Some(100))
}

fn attempts_per_minute(value: &str) -> Result<u32, String> {
    number(value, 0, Some(100_000))
}

fn max_connections(value: &str) -> Result<usize, String> {
    number(value, 1, Some(1_000_000))
}

/// The passkey-mandatory instants as the setting spells them.
fn mandatory_spec(instants: &[(Channel, chrono::DateTime<chrono::Utc>)]) -> String {
    let pairs: Vec<String> =
        instants.iter().map(|(c, at)| format!("{}={}", c.as_str(), at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))).collect();
    if pairs.is_empty() {
        "none".into()
    } else {
        pairs.join(",")
    }
}

/// Origins (`scheme://host[:port]`), comma-separated.
#[derive(Debug, Clone, Default)]
pub struct CorsOrigins(pub Vec<String>);

fn cors_origins(value: &str) -> Result<CorsOrigins, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|origin| {
            let url = url::Url::parse(origin).map_err(|_| format!("{origin:?} is not an origin (https://host[:port])"))?;
            let serialized = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "https" | "http") || serialized != origin.trim_end_matches('/') {
                return Err(format!("{origin:?} is not an origin: a scheme, a host and a port at most (https://host[:port])"));
            }
            Ok(serialized)
        })
        .collect::<Result<Vec<_>, String>>()
        .map(CorsOrigins)
}

/// `LEDGER_ENV=production`: every setting whose default is only for a
/// developer's machine must be given. All missing ones are named at once.
fn production_settings(s: &Settings) -> Result<(), String> {
    let mut missing = Vec::new();
    match s.database_url.as_deref().map(str::to_ascii_lowercase) {
        None => missing.push("DATABASE_URL (postgres://...; the embedded SQLite file is for development)"),
        Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
            missing.push("DATABASE_URL as postgres://... (SQLite is for development)")
        }
        Some(_) => {}
    }
    if s.smtp_url.is_none() {
        missing.push("LEDGER_SMTP_URL (without it codes are written to files, not mailed)");
    }
    if s.secret_key.is_none() {
        missing.push("LEDGER_SECRET_KEY (without it each instance generates its own and codes fail on the others)");
    }
    if !s.origin.starts_with("https://") {
        missing.push("LEDGER_ORIGIN as https://... (the public address customers open)");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("LEDGER_ENV=production needs: {}", missing.join("; ")))
    }
}

fn trusted_proxies(value: &str) -> Result<crate::client_ip::TrustedProxies, String> {
    crate::client_ip::TrustedProxies::parse(value)
}

fn secret(value: &str) -> Result<crate::secrets::Secret, std::convert::Infallible> {
    Ok(crate::secrets::Secret::from(value))
}

/// Whether the embedded defaults (SQLite, mail to a folder, a generated
/// key) may stand in for missing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum RunMode {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum LoginModeSetting {
    Passwordless,
    SecondFactor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodeDestinationSetting {
    #[value(name = "address_1")]
    Address1,
    #[value(name = "choose")]
    Choose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NoticeAddresses {
    #[value(name = "address_1")]
    Address1,
    #[value(name = "all")]
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StepUpSetting {
    TradingPassword,
    Code,
}

/// The settings alone, as a command of their own (`Config::from_env`).
#[derive(clap::Parser)]
#[command(name = "ledger")]
struct SettingsOnly {
    #[command(flatten)]
    settings: Settings,
}

/// Drops the environment variable of every argument whose variable is set
/// to blank, so that it counts as unset (a deployment's `LEDGER_SMTP_URL=`).
pub fn blank_env_is_unset(command: clap::Command) -> clap::Command {
    command.mut_args(|arg| {
        let blank = arg.get_env().is_some_and(|name| std::env::var_os(name).is_some_and(|v| v.to_string_lossy().trim().is_empty()));
        if blank {
            arg.env(None)
        } else {
            arg
        }
    })
}

/// clap's message about a setting, naming the environment variable beside
/// the flag: an operator sets `LEDGER_CODE_LIFETIME_SECS`, not
/// `--code-lifetime-secs`.
pub fn name_the_variable(command: &clap::Command, error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let Some(clap::error::ContextValue::String(arg)) = error.get(clap::error::ContextKind::InvalidArg) else { return rendered };
    let long = arg.trim_start_matches('-').split([' ', '=']).next().unwrap_or_default();
    let variable = command.get_arguments().find(|a| a.get_long() == Some(long)).and_then(|a| a.get_env()).map(|v| v.to_string_lossy());
    match variable {
        Some(variable) => rendered.replace(&format!("'{arg}'"), &format!("{variable} (--{long})")),
        None => rendered,
    }
}

/// A command line carrying the settings, read with the environment (a blank
/// variable counts as unset); on failure, clap's error and its message
/// naming the variable.
pub fn parse_settings<P: clap::CommandFactory + clap::FromArgMatches>(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> Result<P, (clap::Error, String)> {
    let command = blank_env_is_unset(P::command());
    command.clone().try_get_matches_from(args).and_then(|m| P::from_arg_matches(&m)).map_err(|e| {
        let message = name_the_variable(&command, &e);
        (e, message)
    })
}

impl Config {
    /// The configuration from the environment, falling back to the embedded
    /// defaults: SQLite under `./data`, e-mail to `./data/outbox`, RP ID
    /// `localhost`, origin `http://localhost:8080`.
    pub fn from_env() -> Result<Config, String> {
        let parsed: SettingsOnly = parse_settings(["ledger"]).map_err(|(_, message)| message)?;
        Config::try_from(parsed.settings)
    }
}

impl TryFrom<Settings> for Config {
    type Error = String;

    fn try_from(s: Settings) -> Result<Config, String> {
        if s.run_mode == RunMode::Production {
            production_settings(&s)?;
        }
        if s.public_staff_api == Switch::Off && s.admin_bind.is_none() {
            return Err("LEDGER_PUBLIC_STAFF_API=off needs LEDGER_ADMIN_BIND: staff would have no address left".into());
        }
        let database_url = DatabaseUrl::new(s.database_url.unwrap_or_else(|| format!("sqlite://{}/ledger.db", s.data_dir.display())));
        let mail = match s.smtp_url {
            Some(url) => MailTransport::Smtp(url),
            None => MailTransport::Folder(s.outbox.unwrap_or_else(|| s.data_dir.join("outbox"))),
        };
        let policy = Policy {
            lock_after_failed_passwords: s.lock_after_failed_passwords,
            code_lifetime_secs: s.code_lifetime_secs,
            code_max_attempts: s.code_max_attempts,
            resend_min_interval_secs: s.resend_min_interval_secs,
            resends_per_hour: s.resends_per_hour,
            codes_per_hour: s.codes_per_hour,
            wrong_codes_per_hour: s.wrong_codes_per_hour,
            flow_lifetime_secs: s.flow_lifetime_secs,
            passkey_mandatory_from: parse_mandatory(&s.passkey_mandatory_from)
                .map_err(|e| format!("LEDGER_PASSKEY_MANDATORY_FROM: {e}"))?,
            max_passkeys: s.max_passkeys,
            recent_login_secs: s.recent_login_secs,
            lock_after_failed_trading_passwords: s.lock_after_failed_trading_passwords,
            login_mode: match s.login_mode {
                LoginModeSetting::Passwordless => LoginMode::Passwordless,
                LoginModeSetting::SecondFactor => LoginMode::SecondFactor,
            },
            registration_opens_at: match s.registration_opens_at.as_deref().map(str::trim) {
                None | Some("none") => None,
                Some(at) => Some(
                    chrono::DateTime::parse_from_rfc3339(at)
                        .map_err(|_| format!("LEDGER_REGISTRATION_OPENS_AT must be an RFC 3339 instant, got {at:?}"))?
                        .with_timezone(&chrono::Utc),
                ),
            },
            customer_deletion: s.customer_deletion == Switch::On,
            suspend_on_counter_regression: s.suspend_on_counter_regression == Switch::On,
            session_step_up: match s.session_step_up {
                StepUpSetting::TradingPassword => ledger_domain::SessionStepUp::TradingPassword,
                StepUpSetting::Code => ledger_domain::SessionStepUp::EmailCode,
            },
            code_destination: match s.code_destination {
                CodeDestinationSetting::Address1 => ledger_domain::CodeDestination::Address1,
                CodeDestinationSetting::Choose => ledger_domain::CodeDestination::Choose,
            },
        };
        let recommended = s.recommended_environments;
        let signals = Thresholds {
            wrong_codes: s.signal_wrong_codes,
            code_requests: s.signal_code_requests,
            passkey_after_email_change_secs: s.signal_passkey_after_email_change_secs,
            passkeys_added: s.signal_passkeys_added,
            lockouts: s.signal_lockouts,
            lockout_clients: s.signal_lockout_clients,
            password_clients: s.signal_password_clients,
            wipe_window_secs: s.signal_wipe_window_secs,
            shared_email: s.signal_shared_email_severity,
            login_ids_per_client: s.signal_login_ids_per_client,
            login_ids_per_network: s.signal_login_ids_per_network,
        };
        let log_origin = s.log_origin.clone().unwrap_or_else(|| format!("{}/passkey-ledger", s.rp_id));
        let tsa_url = match s.tsa_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => {
                let url = reqwest::Url::parse(url).map_err(|e| format!("LEDGER_TSA_URL: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err("LEDGER_TSA_URL must be an http or https URL".into());
                }
                Some(url)
            }
            None => None,
        };
        let tsa_trust = match &s.tsa_ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| format!("LEDGER_TSA_CA_FILE {}: {e}", path.display()))?;
                Some(
                    ledger_projections::timestamp::Trust::from_pem(&pem)
                        .map_err(|e| format!("LEDGER_TSA_CA_FILE {}: {e}", path.display()))?,
                )
            }
            None => None,
        };
        Ok(Config {
            bind: s.bind,
            admin_bind: s.admin_bind,
            public_staff_api: s.public_staff_api == Switch::On,
            run_mode: s.run_mode,
            database_url,
            data_dir: s.data_dir,
            rp_id: s.rp_id,
            rp_name: s.rp_name,
            origin: s.origin,
            mail,
            mail_from: s.mail_from,
            mail_subject: s.mail_subject,
            login_mail_subject: s.login_mail_subject,
            brokerage_name: s.brokerage_name.clone(),
            brokerage: Brokerage {
                name_ja: s.brokerage_name.split(" (").next().unwrap_or(&s.brokerage_name).trim().to_string(),
                name_en: s.brokerage_name_en,
                registration: s.brokerage_registration,
                registration_en: s.brokerage_registration_en,
                support_phone: s.support_phone,
                support_hours_ja: s.support_hours,
                support_hours_en: s.support_hours_en,
                terms: ledger_domain::account::activity::Terms {
                    trading_password_ja: s.trading_password_term,
                    trading_password_en: s.trading_password_term_en,
                },
            },
            session_lifetime_secs: s.session_lifetime_secs,
            console_idle_secs: s.console_idle_secs,
            console_absolute_secs: s.console_absolute_secs,
            smtp_timeout_secs: s.smtp_timeout_secs,
            log_origin,
            checkpoint_every: (s.checkpoint_every > 0).then(|| std::time::Duration::from_secs(s.checkpoint_every)),
            tsa_url,
            tsa_trust,
            streams: Streams {
                nats: s.nats_url.filter(|u| !u.trim().is_empty()).map(|url| Nats {
                    url,
                    stream: s.nats_stream,
                    subject_prefix: s.nats_subject_prefix,
                    full_personal_data: s.nats_personal_data == PersonalData::Full,
                }),
                webhook_allow_private: s.webhook_allow_private_networks,
                webhook_timeout: std::time::Duration::from_secs(s.webhook_timeout_secs),
                webhook_retry_max: std::time::Duration::from_secs(s.webhook_retry_max_secs),
                webhook_disable_after: std::time::Duration::from_secs(s.webhook_disable_after_secs),
            },
            database_wait: std::time::Duration::from_secs(s.database_wait_secs),
            projector_stuck: std::time::Duration::from_secs(s.projector_stuck_secs),
            header_timeout: std::time::Duration::from_secs(s.header_timeout_secs),
            request_timeout: std::time::Duration::from_secs(s.request_timeout_secs),
            max_connections: s.max_connections,
            write_timeout: std::time::Duration::from_secs(s.write_timeout_secs),
            failed_attempts_per_client_per_minute: s.failed_attempts_per_client_per_minute,
            failed_passwords_per_login_id_per_minute: s.failed_passwords_per_login_id_per_minute,
            password_hash_slots: s.password_hash_slots,
            password_hash_wait: std::time::Duration::from_millis(s.password_hash_wait_ms),
            policy,
            secret_key_hex: s.secret_key,
            admin_token_file: s.admin_token_file,
            metrics_token: s.metrics_token,
            trusted_proxies: s.trusted_proxies,
            cors_origins: s.cors_origins.0,
            login_notice: s.login_notice,
            notice_all_addresses: s.notice_addresses == NoticeAddresses::All,
            recommended,
            signals,
        })
    }
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
    fn cors_origins_are_origins_and_nothing_more() {
        let parsed = cors_origins(" https://www.broker.example, http://localhost:8443 ,").unwrap();
        assert_eq!(parsed.0, vec!["https://www.broker.example", "http://localhost:8443"]);
        assert!(cors_origins("https://www.broker.example/login").unwrap_err().contains("not an origin"));
        assert!(cors_origins("*").is_err(), "no wildcard");
        assert!(cors_origins("ftp://files.example").is_err());
        assert!(cors_origins("").unwrap().0.is_empty());
    }

    #[test]
    fn printing_the_settings_shows_no_secret() {
        let smtp = MailTransport::Smtp("smtps://ledger:s3cr3t-pw@mail.example.jp:465".into());
        assert_eq!(format!("{smtp:?}"), "smtps://ledger:***@mail.example.jp:465");
        let mut config = Config::from_env().unwrap();
        config.mail = smtp;
        config.secret_key_hex = Some(crate::secrets::Secret::from("6b".repeat(32)));
        config.database_url = DatabaseUrl::new("postgres://ledger:db-pa55@db.internal:5432/ledger?sslpassword=key-pa55");
        let printed = format!("{config:?}");
        for secret in ["s3cr3t-pw", &"6b".repeat(32), "db-pa55", "key-pa55"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("postgres://ledger:***@db.internal:5432/ledger?..."), "{printed}");
        assert_eq!(config.database_url.to_string(), "postgres://ledger:***@db.internal:5432/ledger?...");
        assert_eq!(config.mail.to_string(), "smtps://ledger:***@mail.example.jp:465");
    }

    #[test]
    fn production_mode_names_every_development_default_it_refuses() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let settings = SettingsOnly::try_parse_from(std::iter::once("ledger").chain(args.iter().copied())).unwrap();
            Config::try_from(settings.settings)
        };
        let refused = parse(&["--env", "production"]).unwrap_err();
        for named in ["DATABASE_URL", "LEDGER_SMTP_URL", "LEDGER_SECRET_KEY", "LEDGER_ORIGIN"] {
            assert!(refused.contains(named), "{refused}");
        }
        let sqlite = parse(&["--env", "production", "--database-url", "sqlite://./ledger.db"]).unwrap_err();
        assert!(sqlite.contains("SQLite is for development"), "{sqlite}");
        let ready = parse(&[
            "--env",
            "production",
            "--database-url",
            "postgres://ledger:pw@db.internal/ledger",
            "--smtp-url",
            "smtps://u:p@mail.example.jp",
            "--secret-key",
            &"6b".repeat(32),
            "--origin",
            "https://www.broker.example",
            "--rp-id",
            "broker.example",
        ])
        .unwrap();
        assert_eq!(ready.run_mode, RunMode::Production);
        assert!(parse(&[]).is_ok(), "development needs nothing");
        let nowhere = parse(&["--public-staff-api", "off"]).unwrap_err();
        assert!(nowhere.contains("LEDGER_ADMIN_BIND"), "{nowhere}");
        assert!(parse(&["--public-staff-api", "off", "--admin-bind", "127.0.0.1:9090"]).is_ok());
    }

    #[test]
    fn settings_are_checked_where_they_are_read() {
        use clap::{CommandFactory, Parser};
        let parse = |args: &[&str]| SettingsOnly::try_parse_from(std::iter::once("ledger").chain(args.iter().copied()));
        assert!(parse(&["--code-lifetime-secs", "601"]).is_err(), "a code lives at most 10 minutes");
        assert!(parse(&["--smtp-timeout-secs", "0"]).is_err());
        assert!(parse(&["--login-mode", "sometimes"]).is_err());
        let settings = parse(&["--login-mode", "second_factor", "--notice-addresses", "all", "--code-destination", "choose"]).unwrap();
        let config = Config::try_from(settings.settings).unwrap();
        assert_eq!(config.policy.login_mode, LoginMode::SecondFactor);
        assert_eq!(config.policy.code_destination, ledger_domain::CodeDestination::Choose);
        assert!(config.notice_all_addresses);
        // The message names the variable an operator sets, and a stray
        // line end around a number is not an error.
        let command = SettingsOnly::command();
        let error = command.clone().try_get_matches_from(["ledger", "--code-lifetime-secs", "900"]).unwrap_err();
        let message = name_the_variable(&command, &error);
        assert!(message.contains("LEDGER_CODE_LIFETIME_SECS (--code-lifetime-secs)") && message.contains("between 1 and 600"), "{message}");
        let crlf = parse(&["--max-passkeys", "3\r"]).unwrap();
        assert_eq!(Config::try_from(crlf.settings).unwrap().policy.max_passkeys, 3);
        assert!(parse(&["--max-passkeys", "0"]).is_err());
        let late = parse(&["--registration-opens-at", "tomorrow"]).unwrap();
        assert!(Config::try_from(late.settings).unwrap_err().contains("LEDGER_REGISTRATION_OPENS_AT"));
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
