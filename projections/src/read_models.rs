//! The read models: how each event changes them, and how the API reads them.

use chrono::{DateTime, Utc};
use ledger_domain::account::{LoginAuthenticator, NewPasskey, Revoker, SESSION_BINDING_PREFIX};
use ledger_domain::{AccountEvent, EmailAddress, Environment};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::DbError;
use crate::projector::LoggedEvent;
use crate::{from_millis, millis};

/// The tables the projector owns, emptied by a rebuild.
pub const TABLES: &[&str] = &[
    "status_accounts",
    "status_passkeys",
    "email_registry",
    "credential_index",
    "audit_trail",
    "signals",
    "signal_accounts",
    "adoption_daily",
    "adoption_active",
];

use serde_json::Value;

fn meta<'a>(event: &'a LoggedEvent, key: &str) -> &'a str {
    event.metadata.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Applies one event to the read models, inside the projector's transaction.
pub async fn apply(conn: &mut AnyConnection, event: &LoggedEvent) -> Result<(), DbError> {
    if event.aggregate_type != "account" {
        return Ok(());
    }
    let parsed: AccountEvent = serde_json::from_value(event.payload.clone())
        .map_err(|e| DbError::Corrupt(format!("{} #{}: {e}", event.aggregate_id, event.sequence)))?;
    let id = event.aggregate_id.as_str();
    crate::adoption::apply(conn, event, &parsed, event.at()).await?;
    let at = millis(event.at());
    let channel = meta(event, "channel");
    use AccountEvent as E;
    match parsed {
        E::AccountOpened { login_id, holder_kind, email, password_temporary } => {
            sqlx::query(
                "INSERT INTO status_accounts (account_id, login_id, holder_kind, email, email_reachable, password_temporary,
                                              locked, last_sequence, updated_at)
                 VALUES ($1, $2, $3, $4, 1, $5, 0, 0, $6)",
            )
            .bind(id)
            .bind(login_id.as_str())
            .bind(serde_plain(&holder_kind))
            .bind(email.as_ref().map(|e| e.as_str().to_string()))
            .bind(password_temporary as i64)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if let Some(email) = email {
                set_registered_email(conn, id, &email, 1).await?;
            }
        }
        // The status view shows address 1; the registry keeps every slot.
        E::EmailAddressChanged { email, slot } => {
            if slot == 1 {
                sqlx::query("UPDATE status_accounts SET email = $2, email_reachable = 1 WHERE account_id = $1")
                    .bind(id)
                    .bind(email.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
            set_registered_email(conn, id, &email, slot).await?;
        }
        E::EmailReachabilityChanged { reachable, slot: 1 } => {
            sqlx::query("UPDATE status_accounts SET email_reachable = $2 WHERE account_id = $1")
                .bind(id)
                .bind(reachable as i64)
                .execute(&mut *conn)
                .await?;
        }
        E::LoginPasswordChanged { temporary } => {
            sqlx::query("UPDATE status_accounts SET password_temporary = $2, locked = 0 WHERE account_id = $1")
                .bind(id)
                .bind(temporary as i64)
                .execute(&mut *conn)
                .await?;
        }
        E::OtpDeviceRegistered { .. } | E::OtpDeviceRemoved {} => {
            let on = matches!(parsed, E::OtpDeviceRegistered { .. });
            sqlx::query("UPDATE status_accounts SET otp_device = $2 WHERE account_id = $1")
                .bind(id)
                .bind(on as i64)
                .execute(&mut *conn)
                .await?;
        }
        E::LoginLocked { .. } => {
            sqlx::query("UPDATE status_accounts SET locked = 1 WHERE account_id = $1").bind(id).execute(&mut *conn).await?;
        }
        E::PasskeyRegistered { .. } | E::LocalPasskeyAdded { .. } => {
            if let Some((passkey, via, cross_device_sign_in)) = bound_passkey(&parsed) {
                insert_passkey(conn, id, passkey, at, channel, via, cross_device_sign_in).await?;
                // The registration flow ends logged in; a session's binding is no login.
                if via == "first_registration" {
                    record_login(conn, id, at, "passkey_registration", &passkey.environment).await?;
                }
            }
        }
        E::PasskeyLoginSucceeded { passkey_id, credential_id, assertion, authenticator, environment, second_factor_flow, .. } => {
            passkey_used(conn, &passkey_id, &credential_id, assertion.counter, at, channel).await?;
            let method = match (second_factor_flow.is_some(), authenticator) {
                (true, _) => "password_and_passkey",
                (false, LoginAuthenticator::SecurityKey) => "security_key",
                (false, _) => "passkey",
            };
            record_login(conn, id, at, method, &environment).await?;
        }
        E::CrossDeviceSignInSucceeded { passkey_id, credential_id, assertion, environment, .. } => {
            passkey_used(conn, &passkey_id, &credential_id, assertion.counter, at, channel).await?;
            record_login(conn, id, at, "cross_device", &environment).await?;
        }
        E::PasskeyBackupStateChanged { passkey_id, backup_state } => {
            sqlx::query("UPDATE status_passkeys SET backup_state = $2 WHERE passkey_id = $1")
                .bind(&passkey_id)
                .bind(backup_state as i64)
                .execute(&mut *conn)
                .await?;
        }
        E::PasskeysRevoked { passkeys, revoked_by } => {
            let (by, reason) = match revoked_by {
                Revoker::Customer => ("customer".to_string(), None),
                Revoker::Staff { staff, reason } => (format!("staff:{}", staff.staff_id), Some(reason)),
            };
            for p in passkeys {
                sqlx::query("UPDATE status_passkeys SET revoked_at = $2, revoked_by = $3, revoked_reason = $4 WHERE passkey_id = $1")
                    .bind(&p.passkey_id)
                    .bind(at)
                    .bind(&by)
                    .bind(reason.clone())
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("UPDATE credential_index SET active = 0 WHERE credential_id = $1")
                    .bind(&p.credential_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        E::PasskeyDeletionLocked { .. } => set_flag(conn, id, "deletion_locked", true).await?,
        E::TradingPasswordChanged { .. } => set_flag(conn, id, "deletion_locked", false).await?,
        E::LoginUnlocked { .. } => {
            set_flag(conn, id, "locked", false).await?;
            set_flag(conn, id, "deletion_locked", false).await?;
        }
        E::PasswordLoginSucceeded { environment, .. } => record_login(conn, id, at, "password_and_email_code", &environment).await?,
        _ => {}
    }
    sqlx::query("UPDATE status_accounts SET last_sequence = $2, updated_at = $3 WHERE account_id = $1")
        .bind(id)
        .bind(event.sequence)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn serde_plain<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

async fn set_registered_email(conn: &mut AnyConnection, account_id: &str, email: &EmailAddress, slot: u8) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO email_registry (account_id, slot, email) VALUES ($1, $2, $3)
         ON CONFLICT (account_id, slot) DO UPDATE SET email = excluded.email",
    )
    .bind(account_id)
    .bind(slot as i64)
    .bind(email.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn record_login(
    conn: &mut AnyConnection,
    account_id: &str,
    at: i64,
    method: &str,
    environment: &Option<Environment>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE status_accounts SET last_login_at = $2, last_login_method = $3, last_login_environment = $4,
                                    last_login_recommended = $5 WHERE account_id = $1",
    )
    .bind(account_id)
    .bind(at)
    .bind(method)
    .bind(environment.as_ref().map(Environment::describe))
    .bind(environment.as_ref().and_then(|e| e.recommended).map(|r| r as i64))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Columns set from `UPDATE ... SET <column>`: only the names written here.
async fn set_flag(conn: &mut AnyConnection, account_id: &str, column: &'static str, on: bool) -> Result<(), DbError> {
    sqlx::query(&format!("UPDATE status_accounts SET {column} = $2 WHERE account_id = $1"))
        .bind(account_id)
        .bind(on as i64)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_passkey(
    conn: &mut AnyConnection,
    account_id: &str,
    passkey: &NewPasskey,
    at: i64,
    channel: &str,
    added_via: &str,
    cross_device_sign_in: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO status_passkeys (passkey_id, account_id, credential_id, name, aaguid, provider, backup_eligible,
                                      backup_state, transports, attachment, added_via, registered_at, registered_channel,
                                      registered_environment, environment_recommended, cross_device_sign_in)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&passkey.passkey_id)
    .bind(account_id)
    .bind(&passkey.credential_id)
    .bind(passkey.name.as_str())
    .bind(&passkey.aaguid)
    .bind(passkey.provider.clone())
    .bind(passkey.backup_eligible as i64)
    .bind(passkey.backup_state as i64)
    .bind(passkey.transports.join(","))
    .bind(passkey.authenticator_attachment.clone())
    .bind(added_via)
    .bind(at)
    .bind(channel)
    .bind(passkey.environment.as_ref().map(Environment::describe))
    .bind(passkey.environment.as_ref().and_then(|e| e.recommended).map(|r| r as i64))
    .bind(cross_device_sign_in.map(str::to_string))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO credential_index (credential_id, account_id, passkey_id, public_key, counter, active)
         VALUES ($1, $2, $3, $4, $5, 1)",
    )
    .bind(&passkey.credential_id)
    .bind(account_id)
    .bind(&passkey.passkey_id)
    .bind(passkey.public_key.to_string())
    .bind(passkey.counter as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn passkey_used(
    conn: &mut AnyConnection,
    passkey_id: &str,
    credential_id: &str,
    counter: u32,
    at: i64,
    channel: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE status_passkeys SET last_used_at = $2, last_used_channel = $3 WHERE passkey_id = $1")
        .bind(passkey_id)
        .bind(at)
        .bind(channel)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE credential_index SET counter = $2 WHERE credential_id = $1")
        .bind(credential_id)
        .bind(counter as i64)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// --- Reading ---------------------------------------------------------------

/// Other accounts registered with the same normalised address (seed 000).
pub async fn accounts_sharing_email(pool: &AnyPool, email: &EmailAddress, except: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT account_id FROM email_registry WHERE email = $1 AND account_id <> $2 ORDER BY account_id")
            .bind(email.as_str())
            .bind(except)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(a,)| a).collect())
}

/// A credential the ledger has seen registered.
#[derive(Debug, Clone)]
pub struct IndexedCredential {
    pub credential_id: String,
    pub account_id: String,
    pub passkey_id: String,
    pub public_key: Value,
    pub counter: i64,
    pub active: bool,
}

/// Looks a credential up by its id.
pub async fn credential(pool: &AnyPool, credential_id: &str) -> Result<Option<IndexedCredential>, DbError> {
    let row = sqlx::query(
        "SELECT credential_id, account_id, passkey_id, public_key, counter, active FROM credential_index WHERE credential_id = $1",
    )
    .bind(credential_id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let key: String = r.try_get("public_key")?;
        Ok(IndexedCredential {
            credential_id: r.try_get("credential_id")?,
            account_id: r.try_get("account_id")?,
            passkey_id: r.try_get("passkey_id")?,
            public_key: serde_json::from_str(&key).map_err(|e| DbError::Corrupt(e.to_string()))?,
            counter: r.try_get("counter")?,
            active: r.try_get::<i64, _>("active")? == 1,
        })
    })
    .transpose()
}

/// The passkey an event binds, how it was added, and the cross-device
/// sign-in it followed, if any.
fn bound_passkey(event: &AccountEvent) -> Option<(&NewPasskey, &'static str, Option<&str>)> {
    match event {
        AccountEvent::PasskeyRegistered { passkey, bound_by, .. } if bound_by.starts_with(SESSION_BINDING_PREFIX) => {
            Some((passkey, "first_registration_from_session", None))
        }
        AccountEvent::PasskeyRegistered { passkey, .. } => Some((passkey, "first_registration", None)),
        AccountEvent::LocalPasskeyAdded { passkey, cross_device_sign_in } => {
            let via = if cross_device_sign_in.is_some() { "local_after_cross_device" } else { "added_after_login" };
            Some((passkey, via, cross_device_sign_in.as_deref()))
        }
        _ => None,
    }
}

impl PasskeyView {
    /// A passkey just bound, as the status screen shows it once projected:
    /// a response about it needs no wait for the projector.
    pub fn bound_by(event: &AccountEvent, at: DateTime<Utc>, channel: &str) -> Option<PasskeyView> {
        let (passkey, via, cross_device_sign_in) = bound_passkey(event)?;
        Some(PasskeyView {
            id: passkey.passkey_id.clone(),
            name: passkey.name.as_str().to_string(),
            provider: passkey.provider.clone(),
            aaguid: passkey.aaguid.clone(),
            synced: passkey.backup_eligible,
            backup_state: passkey.backup_state,
            transports: passkey.transports.clone(),
            authenticator_attachment: passkey.authenticator_attachment.clone(),
            added_via: via.to_string(),
            registered_at: crate::from_millis(millis(at)),
            registered_channel: channel.to_string(),
            last_used_at: None,
            last_used_channel: None,
            registered_environment: passkey.environment.as_ref().map(Environment::describe),
            environment_recommended: passkey.environment.as_ref().and_then(|e| e.recommended),
            cross_device_sign_in: cross_device_sign_in.map(str::to_string),
            revoked_at: None,
            revoked_by: None,
            revoked_reason: None,
        })
    }
}

/// One passkey on the status screen.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub provider: Option<String>,
    pub aaguid: String,
    /// Backup-eligible: a synced passkey (Google Password Manager, iCloud
    /// Keychain) rather than one bound to a single device.
    pub synced: bool,
    pub backup_state: bool,
    pub transports: Vec<String>,
    pub authenticator_attachment: Option<String>,
    pub added_via: String,
    pub registered_at: DateTime<Utc>,
    pub registered_channel: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_channel: Option<String>,
    /// The device it was created on ("Chrome 148.0.0 / Windows 11 24H2 (pc)").
    pub registered_environment: Option<String>,
    /// Whether that device is a recommended environment (seed 000 p.3).
    pub environment_recommended: Option<bool>,
    /// The cross-device sign-in after which it was added, for local passkeys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_device_sign_in: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// `customer` or `staff:<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

/// The status-inquiry view of one account (seed 000 p.16-17).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusView {
    pub account_id: String,
    pub login_id: String,
    pub holder_kind: String,
    /// `passkey` once a passkey is registered, else `password_and_email_code`.
    pub login_method: String,
    pub email: Option<String>,
    pub email_reachable: bool,
    pub password_temporary: bool,
    pub locked: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub last_login_method: Option<String>,
    /// The environment of the last login and whether it is recommended.
    pub last_login_environment: Option<String>,
    pub last_login_environment_recommended: Option<bool>,
    /// Passkey deletion locked after wrong trading passwords.
    pub deletion_locked: bool,
    /// The brokerage's OTP service is registered (seed 004's "パスワード関連").
    pub otp_service: bool,
    pub passkeys: Vec<PasskeyView>,
    /// Deleted passkeys, with who deleted them and why: staff views only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_passkeys: Option<Vec<PasskeyView>>,
    /// "no passkey registered" when empty, in both languages.
    pub summary: Summary,
    pub registration: RegistrationPossibility,
}

/// The one-line summary shown above the list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub en: String,
    pub ja: String,
}

/// Whether a first registration could start now, and if not why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RegistrationPossibility {
    pub possible: bool,
    pub reason: Option<String>,
}

fn passkey_view(r: &AnyRow) -> Result<PasskeyView, DbError> {
    let transports: String = r.try_get("transports")?;
    Ok(PasskeyView {
        id: r.try_get("passkey_id")?,
        name: r.try_get("name")?,
        provider: r.try_get("provider")?,
        aaguid: r.try_get("aaguid")?,
        synced: r.try_get::<i64, _>("backup_eligible")? == 1,
        backup_state: r.try_get::<i64, _>("backup_state")? == 1,
        transports: transports.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        authenticator_attachment: r.try_get("attachment")?,
        added_via: r.try_get("added_via")?,
        registered_at: from_millis(r.try_get("registered_at")?),
        registered_channel: r.try_get("registered_channel")?,
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(from_millis),
        last_used_channel: r.try_get("last_used_channel")?,
        registered_environment: r.try_get("registered_environment")?,
        environment_recommended: r.try_get::<Option<i64>, _>("environment_recommended")?.map(|v| v == 1),
        cross_device_sign_in: r.try_get("cross_device_sign_in")?,
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_millis),
        revoked_by: r.try_get("revoked_by")?,
        revoked_reason: r.try_get("revoked_reason")?,
    })
}

/// The status view of an account; the address masked unless `unmasked`.
pub async fn status_view(pool: &AnyPool, account_id: &str, unmasked: bool) -> Result<Option<StatusView>, DbError> {
    let Some(a) = sqlx::query("SELECT * FROM status_accounts WHERE account_id = $1").bind(account_id).fetch_optional(pool).await? else {
        return Ok(None);
    };
    let rows = sqlx::query("SELECT * FROM status_passkeys WHERE account_id = $1 AND revoked_at IS NULL ORDER BY registered_at, passkey_id")
        .bind(account_id)
        .fetch_all(pool)
        .await?;
    let passkeys = rows.iter().map(passkey_view).collect::<Result<Vec<_>, _>>()?;
    let revoked_passkeys = if unmasked {
        let rows = sqlx::query(
            "SELECT * FROM status_passkeys WHERE account_id = $1 AND revoked_at IS NOT NULL ORDER BY revoked_at DESC, passkey_id",
        )
        .bind(account_id)
        .fetch_all(pool)
        .await?;
        Some(rows.iter().map(passkey_view).collect::<Result<Vec<_>, _>>()?)
    } else {
        None
    };
    let email: Option<String> = a.try_get("email")?;
    let parsed = email.as_deref().and_then(|e| EmailAddress::parse(e).ok());
    let email_reachable = a.try_get::<i64, _>("email_reachable")? == 1;
    let password_temporary = a.try_get::<i64, _>("password_temporary")? == 1;
    let locked = a.try_get::<i64, _>("locked")? == 1;
    let shared = match &parsed {
        Some(e) => !accounts_sharing_email(pool, e, account_id).await?.is_empty(),
        None => false,
    };
    let reason = if !passkeys.is_empty() {
        Some("passkey_already_registered")
    } else if locked {
        Some("login_locked")
    } else if password_temporary {
        Some("temporary_password")
    } else if parsed.is_none() || !email_reachable {
        Some("email_unreachable")
    } else if shared {
        Some("email_shared_with_other_accounts")
    } else {
        None
    };
    let summary = if passkeys.is_empty() {
        Summary { en: "No passkey registered.".into(), ja: "パスキーは登録されていません。".into() }
    } else {
        Summary {
            en: format!("{} passkey(s) registered.", passkeys.len()),
            ja: format!("{}件のパスキーが登録されています。", passkeys.len()),
        }
    };
    Ok(Some(StatusView {
        account_id: account_id.to_string(),
        login_id: a.try_get("login_id")?,
        holder_kind: a.try_get("holder_kind")?,
        login_method: if passkeys.is_empty() { "password_and_email_code" } else { "passkey" }.into(),
        email: if unmasked { parsed.as_ref().map(|e| e.as_str().to_string()) } else { parsed.as_ref().map(EmailAddress::masked) },
        email_reachable,
        password_temporary,
        locked,
        last_login_at: a.try_get::<Option<i64>, _>("last_login_at")?.map(from_millis),
        last_login_method: a.try_get("last_login_method")?,
        last_login_environment: a.try_get("last_login_environment")?,
        last_login_environment_recommended: a.try_get::<Option<i64>, _>("last_login_recommended")?.map(|v| v == 1),
        deletion_locked: a.try_get::<i64, _>("deletion_locked")? == 1,
        otp_service: a.try_get::<i64, _>("otp_device")? == 1,
        passkeys,
        revoked_passkeys,
        summary,
        registration: RegistrationPossibility { possible: reason.is_none(), reason: reason.map(str::to_string) },
    }))
}

/// Credential ids of an account's active passkeys (to exclude on creation).
pub async fn active_credentials(pool: &AnyPool, account_id: &str) -> Result<Vec<IndexedCredential>, DbError> {
    let ids: Vec<(String,)> = sqlx::query_as("SELECT credential_id FROM credential_index WHERE account_id = $1 AND active = 1")
        .bind(account_id)
        .fetch_all(pool)
        .await?;
    let mut out = Vec::new();
    for (id,) in ids {
        if let Some(c) = credential(pool, &id).await? {
            out.push(c);
        }
    }
    Ok(out)
}
