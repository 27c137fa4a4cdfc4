//! Everything a request handler needs, built once at start-up.

use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::Arc;

use ledger_domain::AccountServices;
use ledger_projections::{Database, EventRepository, Projector};
use rand::RngCore;
use webauthn_rs::Webauthn;

use crate::bus::Ledger;
use crate::clock::Clock;
use crate::config::Config;
use crate::email::Mailer;

/// Shared application state.
pub struct App {
    pub config: Config,
    pub db: Database,
    /// The working tables: flows, codes, ceremonies, sessions, secrets.
    pub store: crate::storage::Store,
    pub ledger: Ledger,
    pub staff_log: crate::bus::StaffLog,
    pub system_log: crate::bus::SystemLog,
    pub projector: Arc<Projector>,
    pub webauthn: Webauthn,
    pub mailer: Mailer,
    pub clock: Clock,
    pub providers: HashMap<String, String>,
    pub metrics: crate::metrics::Metrics,
    /// Bounded argon2 work: every password check and hash goes through it.
    pub password_work: crate::secrets::PasswordWork,
    /// Failed attempts per client.
    pub throttle: crate::throttle::Throttle,
    /// Wrong passwords per login ID (known or not alike).
    pub login_throttle: crate::throttle::Throttle<String>,
    secret_key: Vec<u8>,
    /// Signs the audit trail's checkpoints: derived from the secret key,
    /// so every instance sharing it signs alike.
    pub log_key: Arc<ledger_projections::checkpoint::LogKey>,
}

/// The state handle axum passes around.
pub type AppState = Arc<App>;

impl App {
    /// Connects, migrates and wires everything together.
    pub async fn start(config: Config, clock: Clock) -> Result<AppState, String> {
        // Every setting is checked before the database is touched: a typo
        // in an upgrade's settings must not migrate the database and then stop.
        let webauthn = crate::webauthn::relying_party(&config)?;
        let mailer = Mailer::from_config(&config).map_err(|e| e.to_string())?;
        let providers = crate::webauthn::providers()?;
        let secret_key = load_secret_key(&config)?;
        let log_key = Arc::new(log_key(&config, &secret_key)?);
        let (db, _) = connect_waiting(&config.database_url, config.database_wait).await?;
        if let Some(epoch) = db.ensure_order_epoch().await.map_err(|e| e.to_string())? {
            tracing::warn!(
                epoch,
                "PostgreSQL's transaction counter is behind the log (a restore into another cluster or an upgrade): \
                 a new order epoch began, so new events sort after everything restored"
            );
        }
        // The hash an unknown login ID's password is checked against, made
        // now on the blocking pool rather than by the first such request.
        tokio::task::spawn_blocking(crate::secrets::dummy_hash).await.map_err(|e| e.to_string())?;
        let projector = Arc::new(Projector::with_thresholds(db.clone(), config.signals.clone()));
        let staff_log = crate::bus::StaffLog::new(EventRepository::staff_store(&db), projector.clone());
        let system_log = crate::bus::SystemLog::new(EventRepository::system_store(&db), projector.clone());
        let policy = AccountServices { policy: config.policy.clone() };
        let ledger = Ledger::new(&db, policy, projector.clone());
        // Start-up does not wait on the read models: the background projector
        // catches up, and /readyz reports its lag and failures meanwhile.
        let password_work = crate::secrets::PasswordWork::new(config.password_hash_slots, config.password_hash_wait);
        Ok(Arc::new(App {
            password_work,
            throttle: crate::throttle::Throttle::new(config.failed_attempts_per_client_per_minute),
            login_throttle: crate::throttle::Throttle::new(config.failed_passwords_per_login_id_per_minute),
            webauthn,
            mailer,
            providers,
            config,
            store: crate::storage::Store::new(db.any.clone()),
            db,
            ledger,
            staff_log,
            system_log,
            projector,
            clock,
            metrics: crate::metrics::Metrics::default(),
            secret_key,
            log_key,
        }))
    }

    /// The key for keyed hashes of one-time codes.
    pub fn secret_key(&self) -> &[u8] {
        &self.secret_key
    }
}

/// Connects to the database and brings its schema up to date. While it
/// cannot be reached (refused, unreachable, starting up, out of
/// connections) start-up waits and tries again, each try a log line
/// naming the database (without its password) and the cause, up to
/// `wait`; any other failure (a wrong password, no such database, a
/// migration that fails) ends start-up at once with that cause.
/// Returns the database and how many migrations it applied.
pub async fn connect_waiting(url: &crate::config::DatabaseUrl, wait: std::time::Duration) -> Result<(Database, usize), String> {
    // A new SQLite database: its folder 0700 and its file 0600.
    if let Some(path) = url.expose().strip_prefix("sqlite://") {
        private_file(std::path::Path::new(path.split('?').next().unwrap_or(path)))?;
    }
    let started = tokio::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        let tried = async {
            let db = Database::connect(url.expose()).await?;
            let applied = db.migrate().await?;
            Ok::<_, ledger_projections::DbError>((db, applied))
        }
        .await;
        match tried {
            Ok(connected) => {
                if attempt > 1 {
                    tracing::info!(database = %url, attempts = attempt, "the database answers; starting");
                }
                return Ok(connected);
            }
            Err(e) if e.is_outage() && started.elapsed() + delay <= wait => {
                let cause = ledger_projections::db::outage_cause(url.expose(), &e).await;
                tracing::warn!(
                    database = %url,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    waited_secs = started.elapsed().as_secs(),
                    gives_up_after_secs = wait.as_secs(),
                    error = %cause,
                    "waiting for the database: it cannot be reached yet (LEDGER_DATABASE_WAIT_SECS)"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
                attempt += 1;
            }
            Err(e) if e.is_outage() => {
                let cause = ledger_projections::db::outage_cause(url.expose(), &e).await;
                return Err(format!(
                    "the database {url} could not be reached in {} s (LEDGER_DATABASE_WAIT_SECS): {cause}",
                    started.elapsed().as_secs()
                ));
            }
            Err(e @ ledger_projections::DbError::Config(_)) => return Err(e.to_string()),
            Err(e) => return Err(format!("the database {url}: {e}")),
        }
    }
}

/// The settings that need more than their own parsing (the relying party
/// against the origin, the SMTP address, the secret key's length), checked
/// without touching the database: a failure here is a setting to correct,
/// which restarting will not mend (the binary exits 2).
pub fn check_settings(config: &Config) -> Result<(), String> {
    crate::webauthn::relying_party(config)?;
    ledger_projections::checkpoint::LogKey::new(&config.log_origin, &[0; 32]).map_err(|e| format!("LEDGER_LOG_ORIGIN: {e}"))?;
    if let crate::config::MailTransport::Smtp(_) = config.mail {
        Mailer::from_config(config).map_err(|e| e.to_string())?;
    }
    if let Some(hex_key) = &config.secret_key_hex {
        secret_key_from_hex(hex_key)?;
    }
    Ok(())
}

/// The audit log's Ed25519 key: its seed is a keyed hash of a fixed label
/// under the secret key (never stored, never shown).
fn log_key(config: &Config, secret_key: &[u8]) -> Result<ledger_projections::checkpoint::LogKey, String> {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret_key).map_err(|e| e.to_string())?;
    mac.update(b"passkey-ledger audit log signing key, version 1");
    let seed: [u8; 32] = mac.finalize().into_bytes().into();
    ledger_projections::checkpoint::LogKey::new(&config.log_origin, &seed).map_err(|e| format!("LEDGER_LOG_ORIGIN: {e}"))
}

fn secret_key_from_hex(hex_key: &crate::secrets::Secret) -> Result<Vec<u8>, String> {
    let key = hex::decode(hex_key.expose_secret().trim()).map_err(|_| "LEDGER_SECRET_KEY must be hex".to_string())?;
    if key.len() < 32 {
        return Err("LEDGER_SECRET_KEY must be at least 32 bytes (64 hex digits)".into());
    }
    Ok(key)
}

fn load_secret_key(config: &Config) -> Result<Vec<u8>, String> {
    if let Some(hex_key) = &config.secret_key_hex {
        return secret_key_from_hex(hex_key);
    }
    let path = config.data_dir.join("secret.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let key = hex::decode(existing.trim()).map_err(|_| format!("{} is not hex", path.display()))?;
        if key.len() < 32 {
            return Err(format!("{} holds a {}-byte key; at least 32 bytes (64 hex digits) are needed", path.display(), key.len()));
        }
        return Ok(key);
    }
    let mut key = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    private_file(&path)?;
    std::fs::write(&path, hex::encode(&key)).map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the key for one-time code hashes");
    Ok(key)
}

/// Makes sure `path` exists readable by this user alone (0600, in a folder
/// made 0700 when this creates it): the key file and the SQLite database
/// (whose journal files SQLite creates with the database's permissions).
/// An existing file is left as it is.
fn private_file(path: &std::path::Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &std::path::Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn the_key_and_the_database_are_readable_by_the_service_alone() {
        let root = std::env::temp_dir().join(format!("ledger-private-{}", uuid::Uuid::new_v4().simple()));
        let data = root.join("data");
        let mut config = Config::from_env().unwrap();
        config.data_dir = data.clone();
        config.secret_key_hex = None;
        let key = load_secret_key(&config).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("secret.key")), 0o600);
        private_file(&data.join("ledger.db")).unwrap();
        assert_eq!(mode(&data.join("ledger.db")), 0o600);
        assert_eq!(load_secret_key(&config).unwrap(), key, "read back as written");

        std::fs::write(data.join("secret.key"), "abcd").unwrap();
        let refused = load_secret_key(&config).unwrap_err();
        assert!(refused.contains("2-byte key") && refused.contains("at least 32 bytes"), "{refused}");
        std::fs::write(data.join("secret.key"), "").unwrap();
        assert!(load_secret_key(&config).unwrap_err().contains("0-byte key"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
