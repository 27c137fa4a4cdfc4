//! The read models: how each event changes them, and how the API reads them.

use chrono::{DateTime, Utc};
use ledger_domain::account::{LoginMethod, NewPasskey, Revoker, SESSION_BINDING_PREFIX};
use ledger_domain::{AccountEvent, EmailAddress, Environment};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::DbError;
use std::collections::{HashMap, HashSet};

use crate::event::Parsed;
use crate::rows::{self, Val};
use crate::{from_millis, millis};

/// The tables the projector owns, emptied by a rebuild.
pub const TABLES: &[&str] = &[
    "status_accounts",
    "status_passkeys",
    "email_registry",
    "former_emails",
    "credential_index",
    "audit_trail",
    "merkle_nodes",
    "signals",
    "signal_accounts",
    "signal_reviews",
    "login_attempts",
    "stuffing_logins",
    "adoption_daily",
    "event_counts",
    "adoption_active",
];

use serde_json::Value;

/// What the read models know of the accounts, passkeys and credentials one
/// batch touches: loaded with one query per table, changed in memory event
/// by event, written back with multi-row upserts.
#[derive(Default)]
struct Working {
    accounts: HashMap<String, AccountRow>,
    passkeys: HashMap<String, PasskeyRow>,
    credentials: HashMap<String, CredentialRow>,
    /// `(account_id, slot)` -> address.
    emails: HashMap<(String, i64), String>,
    /// Addresses replaced: `(account_id, slot, address, when)`.
    former: Vec<(String, i64, String, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
struct AccountRow {
    account_id: String,
    login_id: String,
    holder_kind: String,
    email: Option<String>,
    email_reachable: i64,
    password_temporary: i64,
    locked: i64,
    last_login_at: Option<i64>,
    last_login_method: Option<String>,
    last_sequence: i64,
    updated_at: i64,
    deletion_locked: i64,
    last_login_environment: Option<String>,
    last_login_recommended: Option<i64>,
    otp_device: i64,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for AccountRow {
    fn from_row(r: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(AccountRow {
            account_id: r.try_get("account_id")?,
            login_id: r.try_get("login_id")?,
            holder_kind: r.try_get("holder_kind")?,
            email: r.try_get("email")?,
            email_reachable: r.try_get("email_reachable")?,
            password_temporary: r.try_get("password_temporary")?,
            locked: r.try_get("locked")?,
            last_login_at: r.try_get("last_login_at")?,
            last_login_method: r.try_get("last_login_method")?,
            last_sequence: r.try_get("last_sequence")?,
            updated_at: r.try_get("updated_at")?,
            deletion_locked: r.try_get("deletion_locked")?,
            last_login_environment: r.try_get("last_login_environment")?,
            last_login_recommended: r.try_get("last_login_recommended")?,
            otp_device: r.try_get("otp_device")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct PasskeyRow {
    passkey_id: String,
    account_id: String,
    credential_id: String,
    name: String,
    aaguid: String,
    provider: Option<String>,
    backup_eligible: i64,
    backup_state: i64,
    transports: String,
    attachment: Option<String>,
    added_via: String,
    registered_at: i64,
    registered_channel: String,
    last_used_at: Option<i64>,
    last_used_channel: Option<String>,
    revoked_at: Option<i64>,
    registered_environment: Option<String>,
    environment_recommended: Option<i64>,
    revoked_by: Option<String>,
    revoked_reason: Option<String>,
    cross_device_sign_in: Option<String>,
    suspended_at: Option<i64>,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for PasskeyRow {
    fn from_row(r: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(PasskeyRow {
            passkey_id: r.try_get("passkey_id")?,
            account_id: r.try_get("account_id")?,
            credential_id: r.try_get("credential_id")?,
            name: r.try_get("name")?,
            aaguid: r.try_get("aaguid")?,
            provider: r.try_get("provider")?,
            backup_eligible: r.try_get("backup_eligible")?,
            backup_state: r.try_get("backup_state")?,
            transports: r.try_get("transports")?,
            attachment: r.try_get("attachment")?,
            added_via: r.try_get("added_via")?,
            registered_at: r.try_get("registered_at")?,
            registered_channel: r.try_get("registered_channel")?,
            last_used_at: r.try_get("last_used_at")?,
            last_used_channel: r.try_get("last_used_channel")?,
            revoked_at: r.try_get("revoked_at")?,
            registered_environment: r.try_get("registered_environment")?,
            environment_recommended: r.try_get("environment_recommended")?,
            revoked_by: r.try_get("revoked_by")?,
            revoked_reason: r.try_get("revoked_reason")?,
            cross_device_sign_in: r.try_get("cross_device_sign_in")?,
            suspended_at: r.try_get("suspended_at")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct CredentialRow {
    credential_id: String,
    account_id: String,
    passkey_id: String,
    public_key: String,
    counter: i64,
    active: i64,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for CredentialRow {
    fn from_row(r: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(CredentialRow {
            credential_id: r.try_get("credential_id")?,
            account_id: r.try_get("account_id")?,
            passkey_id: r.try_get("passkey_id")?,
            public_key: r.try_get("public_key")?,
            counter: r.try_get("counter")?,
            active: r.try_get("active")?,
        })
    }
}

const ACCOUNT_COLUMNS: &str = "account_id, login_id, holder_kind, email, email_reachable, password_temporary, locked, last_login_at,
     last_login_method, last_sequence, updated_at, deletion_locked, last_login_environment, last_login_recommended, otp_device";
const PASSKEY_COLUMNS: &str = "passkey_id, account_id, credential_id, name, aaguid, provider, backup_eligible, backup_state,
     transports, attachment, added_via, registered_at, registered_channel, last_used_at, last_used_channel, revoked_at,
     registered_environment, environment_recommended, revoked_by, revoked_reason, cross_device_sign_in, suspended_at";
const CREDENTIAL_COLUMNS: &str = "credential_id, account_id, passkey_id, public_key, counter, active";

/// The rows of `table` whose `key` is one of `keys`.
async fn load<T>(conn: &mut AnyConnection, table: &str, columns: &str, key: &str, keys: &HashSet<&str>) -> Result<Vec<T>, DbError>
where
    T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
{
    let keys: Vec<&str> = keys.iter().copied().collect();
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(rows::LOOKUP_CHUNK) {
        let sql = format!("SELECT {columns} FROM {table} WHERE {key} IN ({})", rows::placeholders(conn, chunk.len()));
        let mut query = sqlx::query_as::<_, T>(&sql);
        for k in chunk {
            query = query.bind(*k);
        }
        out.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// The passkey and credential ids an event names.
fn passkeys_named(event: &AccountEvent) -> Vec<(&str, &str)> {
    use AccountEvent as E;
    match event {
        E::PasskeyRegistered { passkey, .. } | E::LocalPasskeyAdded { passkey, .. } => {
            vec![(passkey.passkey_id.as_str(), passkey.credential_id.as_str())]
        }
        E::PasskeyLoginSucceeded { passkey_id, credential_id, .. } | E::CrossDeviceSignInSucceeded { passkey_id, credential_id, .. } => {
            vec![(passkey_id.as_str(), credential_id.as_str())]
        }
        E::PasskeyBackupStateChanged { passkey_id, .. } | E::PasskeyReinstated { passkey_id, .. } => vec![(passkey_id.as_str(), "")],
        E::PasskeySuspended { passkey_id, credential_id, .. } => vec![(passkey_id.as_str(), credential_id.as_str())],
        E::PasskeysRevoked { passkeys, .. } => passkeys.iter().map(|p| (p.passkey_id.as_str(), p.credential_id.as_str())).collect(),
        _ => vec![],
    }
}

/// A second binding of an id the read models already hold: an event the
/// read models cannot take (the projector skips it and records why).
fn duplicate(what: &str, id: &str) -> DbError {
    DbError::Corrupt(format!("{what} {id} is already in the read models"))
}

/// Applies a batch of events to the read models, inside the projector's
/// transaction: one query per table to load what the batch touches, the
/// events applied in memory in log order, one upsert per table to write.
pub async fn apply(conn: &mut AnyConnection, batch: &[Parsed]) -> Result<(), DbError> {
    // Every view dates what it shows: an account event without a readable
    // time would show as 1970. The projector records it as a failure
    // instead, naming it (its trail row is still written).
    if let Some(undated) = batch.iter().find(|p| p.event.aggregate_type == "account" && p.meta.is_none()) {
        let e = &undated.event;
        return Err(DbError::Corrupt(format!(
            "event at position {} ({} of account {} #{}) has no readable `at` in its metadata",
            e.position, e.event_type, e.aggregate_id, e.sequence
        )));
    }
    let mut accounts = HashSet::new();
    let mut passkeys = HashSet::new();
    let mut credentials = HashSet::new();
    for parsed in batch {
        if let Some(event) = parsed.account()? {
            accounts.insert(parsed.event.aggregate_id.as_str());
            for (passkey, credential) in passkeys_named(event) {
                passkeys.insert(passkey);
                if !credential.is_empty() {
                    credentials.insert(credential);
                }
            }
        }
    }
    if accounts.is_empty() {
        return Ok(());
    }
    let mut w = Working::default();
    for row in load::<AccountRow>(conn, "status_accounts", ACCOUNT_COLUMNS, "account_id", &accounts).await? {
        w.accounts.insert(row.account_id.clone(), row);
    }
    for row in load::<PasskeyRow>(conn, "status_passkeys", PASSKEY_COLUMNS, "passkey_id", &passkeys).await? {
        w.passkeys.insert(row.passkey_id.clone(), row);
    }
    for row in load::<CredentialRow>(conn, "credential_index", CREDENTIAL_COLUMNS, "credential_id", &credentials).await? {
        w.credentials.insert(row.credential_id.clone(), row);
    }
    let before = (w.accounts.clone(), w.passkeys.clone(), w.credentials.clone());
    for parsed in batch {
        if let Some(event) = parsed.account()? {
            w.apply(parsed, event)?;
        }
    }
    w.write(conn, before).await
}

impl Working {
    fn apply(&mut self, parsed: &Parsed, event: &AccountEvent) -> Result<(), DbError> {
        let id = parsed.event.aggregate_id.as_str();
        let at = millis(parsed.at);
        let channel = parsed.channel();
        use AccountEvent as E;
        match event {
            E::AccountOpened { login_id, holder_kind, email, password_temporary } => {
                if self.accounts.contains_key(id) {
                    return Err(duplicate("account", id));
                }
                self.accounts.insert(
                    id.to_string(),
                    AccountRow {
                        account_id: id.to_string(),
                        login_id: login_id.as_str().to_string(),
                        holder_kind: serde_plain(holder_kind),
                        email: email.as_ref().map(|e| e.as_str().to_string()),
                        email_reachable: 1,
                        password_temporary: *password_temporary as i64,
                        locked: 0,
                        last_login_at: None,
                        last_login_method: None,
                        last_sequence: 0,
                        updated_at: at,
                        deletion_locked: 0,
                        last_login_environment: None,
                        last_login_recommended: None,
                        otp_device: 0,
                    },
                );
                if let Some(email) = email {
                    self.emails.insert((id.to_string(), 1), email.as_str().to_string());
                }
            }
            // The status view shows address 1; the registry keeps every slot.
            E::EmailAddressChanged { email, slot, previous } => {
                if let Some(previous) = previous {
                    self.former.push((id.to_string(), *slot as i64, previous.as_str().to_string(), at));
                }
                if *slot == 1 {
                    self.account(id, |a| {
                        a.email = Some(email.as_str().to_string());
                        a.email_reachable = 1;
                    });
                }
                self.emails.insert((id.to_string(), *slot as i64), email.as_str().to_string());
            }
            E::EmailReachabilityChanged { reachable, slot: 1 } => self.account(id, |a| a.email_reachable = *reachable as i64),
            E::LoginPasswordChanged { temporary } => self.account(id, |a| {
                a.password_temporary = *temporary as i64;
                a.locked = 0;
            }),
            E::OtpDeviceRegistered { .. } => self.account(id, |a| a.otp_device = 1),
            E::OtpDeviceRemoved {} => self.account(id, |a| a.otp_device = 0),
            E::LoginLocked { .. } => self.account(id, |a| a.locked = 1),
            E::PasskeyRegistered { .. } | E::LocalPasskeyAdded { .. } => {
                if let Some((passkey, via, cross_device_sign_in)) = bound_passkey(event) {
                    self.insert_passkey(id, passkey, at, channel, via, cross_device_sign_in)?;
                    // The registration flow ends logged in; a session's binding is no login.
                    if via == "first_registration" {
                        self.record_login(id, at, "passkey_registration", &passkey.environment);
                    }
                }
            }
            E::PasskeyLoginSucceeded { passkey_id, credential_id, assertion, environment, .. } => {
                self.passkey_used(passkey_id, credential_id, assertion.counter, at, channel);
                let method = event.login_method().map_or("passkey", LoginMethod::as_str);
                self.record_login(id, at, method, environment);
            }
            E::CrossDeviceSignInSucceeded { passkey_id, credential_id, assertion, environment, .. } => {
                self.passkey_used(passkey_id, credential_id, assertion.counter, at, channel);
                self.record_login(id, at, LoginMethod::CrossDevice.as_str(), environment);
            }
            E::PasskeyBackupStateChanged { passkey_id, backup_state } => {
                if let Some(p) = self.passkeys.get_mut(passkey_id) {
                    p.backup_state = *backup_state as i64;
                }
            }
            E::PasskeysRevoked { passkeys, revoked_by } => {
                let (by, reason) = match revoked_by {
                    Revoker::Customer => ("customer".to_string(), None),
                    Revoker::ReportedByCustomer => ("customer".to_string(), Some("reported_by_customer".to_string())),
                    Revoker::Staff { staff, reason } => (format!("staff:{}", staff.staff_id), Some(reason.clone())),
                };
                for revoked in passkeys {
                    if let Some(p) = self.passkeys.get_mut(&revoked.passkey_id) {
                        p.revoked_at = Some(at);
                        p.revoked_by = Some(by.clone());
                        p.revoked_reason = reason.clone();
                    }
                    if let Some(c) = self.credentials.get_mut(&revoked.credential_id) {
                        c.active = 0;
                    }
                }
            }
            E::PasskeySuspended { passkey_id, .. } => {
                if let Some(p) = self.passkeys.get_mut(passkey_id) {
                    p.suspended_at = Some(at);
                }
            }
            E::PasskeyReinstated { passkey_id, .. } => {
                if let Some(p) = self.passkeys.get_mut(passkey_id) {
                    p.suspended_at = None;
                }
            }
            E::PasskeyDeletionLocked { .. } => self.account(id, |a| a.deletion_locked = 1),
            E::TradingPasswordChanged { .. } => self.account(id, |a| a.deletion_locked = 0),
            E::LoginUnlocked { .. } => self.account(id, |a| {
                a.locked = 0;
                a.deletion_locked = 0;
            }),
            E::PasswordLoginSucceeded { environment, .. } => {
                self.record_login(id, at, LoginMethod::PasswordAndEmailCode.as_str(), environment)
            }
            _ => {}
        }
        let sequence = parsed.event.sequence;
        self.account(id, |a| {
            a.last_sequence = sequence;
            a.updated_at = at;
        });
        Ok(())
    }

    /// Changes an account's row; an account the read models do not hold
    /// is left alone, as an UPDATE of no row would.
    fn account(&mut self, id: &str, change: impl FnOnce(&mut AccountRow)) {
        if let Some(a) = self.accounts.get_mut(id) {
            change(a);
        }
    }

    fn record_login(&mut self, id: &str, at: i64, method: &str, environment: &Option<Environment>) {
        self.account(id, |a| {
            a.last_login_at = Some(at);
            a.last_login_method = Some(method.to_string());
            a.last_login_environment = environment.as_ref().map(Environment::describe);
            a.last_login_recommended = environment.as_ref().and_then(|e| e.recommended).map(|r| r as i64);
        });
    }

    fn insert_passkey(
        &mut self,
        account_id: &str,
        passkey: &NewPasskey,
        at: i64,
        channel: &str,
        added_via: &str,
        cross_device_sign_in: Option<&str>,
    ) -> Result<(), DbError> {
        if self.passkeys.contains_key(&passkey.passkey_id) {
            return Err(duplicate("passkey", &passkey.passkey_id));
        }
        if self.credentials.contains_key(&passkey.credential_id) {
            return Err(duplicate("credential", &passkey.credential_id));
        }
        self.passkeys.insert(
            passkey.passkey_id.clone(),
            PasskeyRow {
                passkey_id: passkey.passkey_id.clone(),
                account_id: account_id.to_string(),
                credential_id: passkey.credential_id.clone(),
                name: passkey.name.as_str().to_string(),
                aaguid: passkey.aaguid.clone(),
                provider: passkey.provider.clone(),
                backup_eligible: passkey.backup_eligible as i64,
                backup_state: passkey.backup_state as i64,
                transports: passkey.transports.join(","),
                attachment: passkey.authenticator_attachment.clone(),
                added_via: added_via.to_string(),
                registered_at: at,
                registered_channel: channel.to_string(),
                last_used_at: None,
                last_used_channel: None,
                revoked_at: None,
                registered_environment: passkey.environment.as_ref().map(Environment::describe),
                environment_recommended: passkey.environment.as_ref().and_then(|e| e.recommended).map(|r| r as i64),
                revoked_by: None,
                revoked_reason: None,
                cross_device_sign_in: cross_device_sign_in.map(str::to_string),
                suspended_at: None,
            },
        );
        self.credentials.insert(
            passkey.credential_id.clone(),
            CredentialRow {
                credential_id: passkey.credential_id.clone(),
                account_id: account_id.to_string(),
                passkey_id: passkey.passkey_id.clone(),
                public_key: passkey.public_key.to_string(),
                counter: passkey.counter as i64,
                active: 1,
            },
        );
        Ok(())
    }

    fn passkey_used(&mut self, passkey_id: &str, credential_id: &str, counter: u32, at: i64, channel: &str) {
        if let Some(p) = self.passkeys.get_mut(passkey_id) {
            p.last_used_at = Some(at);
            p.last_used_channel = Some(channel.to_string());
        }
        if let Some(c) = self.credentials.get_mut(credential_id) {
            c.counter = counter as i64;
        }
    }

    /// Writes every row the batch changed.
    async fn write(
        self,
        conn: &mut AnyConnection,
        (accounts, passkeys, credentials): (HashMap<String, AccountRow>, HashMap<String, PasskeyRow>, HashMap<String, CredentialRow>),
    ) -> Result<(), DbError> {
        let changed = |id: &String, row: &AccountRow| accounts.get(id) != Some(row);
        let rows: Vec<Vec<Val>> = self
            .accounts
            .into_iter()
            .filter(|(id, row)| changed(id, row))
            .map(|(_, a)| {
                vec![
                    a.account_id.into(),
                    a.login_id.into(),
                    a.holder_kind.into(),
                    a.email.into(),
                    a.email_reachable.into(),
                    a.password_temporary.into(),
                    a.locked.into(),
                    a.last_login_at.into(),
                    a.last_login_method.into(),
                    a.last_sequence.into(),
                    a.updated_at.into(),
                    a.deletion_locked.into(),
                    a.last_login_environment.into(),
                    a.last_login_recommended.into(),
                    a.otp_device.into(),
                ]
            })
            .collect();
        rows::insert(conn, &format!("INSERT INTO status_accounts ({ACCOUNT_COLUMNS})"), &upsert("account_id", ACCOUNT_COLUMNS), &rows)
            .await?;
        let rows: Vec<Vec<Val>> = self
            .passkeys
            .into_iter()
            .filter(|(id, row)| passkeys.get(id) != Some(row))
            .map(|(_, p)| {
                vec![
                    p.passkey_id.into(),
                    p.account_id.into(),
                    p.credential_id.into(),
                    p.name.into(),
                    p.aaguid.into(),
                    p.provider.into(),
                    p.backup_eligible.into(),
                    p.backup_state.into(),
                    p.transports.into(),
                    p.attachment.into(),
                    p.added_via.into(),
                    p.registered_at.into(),
                    p.registered_channel.into(),
                    p.last_used_at.into(),
                    p.last_used_channel.into(),
                    p.revoked_at.into(),
                    p.registered_environment.into(),
                    p.environment_recommended.into(),
                    p.revoked_by.into(),
                    p.revoked_reason.into(),
                    p.cross_device_sign_in.into(),
                    p.suspended_at.into(),
                ]
            })
            .collect();
        rows::insert(conn, &format!("INSERT INTO status_passkeys ({PASSKEY_COLUMNS})"), &upsert("passkey_id", PASSKEY_COLUMNS), &rows)
            .await?;
        let rows: Vec<Vec<Val>> = self
            .credentials
            .into_iter()
            .filter(|(id, row)| credentials.get(id) != Some(row))
            .map(|(_, c)| {
                vec![
                    c.credential_id.into(),
                    c.account_id.into(),
                    c.passkey_id.into(),
                    c.public_key.into(),
                    c.counter.into(),
                    c.active.into(),
                ]
            })
            .collect();
        rows::insert(
            conn,
            &format!("INSERT INTO credential_index ({CREDENTIAL_COLUMNS})"),
            &upsert("credential_id", CREDENTIAL_COLUMNS),
            &rows,
        )
        .await?;
        let rows: Vec<Vec<Val>> =
            self.emails.into_iter().map(|((account, slot), email)| vec![account.into(), slot.into(), email.into()]).collect();
        rows::insert(
            conn,
            "INSERT INTO email_registry (account_id, slot, email)",
            "ON CONFLICT (account_id, slot) DO UPDATE SET email = excluded.email",
            &rows,
        )
        .await?;
        let rows: Vec<Vec<Val>> =
            self.former.into_iter().map(|(account, slot, email, at)| vec![account.into(), slot.into(), email.into(), at.into()]).collect();
        rows::insert(
            conn,
            "INSERT INTO former_emails (account_id, slot, email, replaced_at)",
            "ON CONFLICT (account_id, slot, email) DO UPDATE SET replaced_at = excluded.replaced_at",
            &rows,
        )
        .await
    }
}

/// `ON CONFLICT (key) DO UPDATE SET c = excluded.c, ...` for every column but the key.
fn upsert(key: &str, columns: &str) -> String {
    let set: Vec<String> = columns.split(',').map(str::trim).filter(|c| *c != key).map(|c| format!("{c} = excluded.{c}")).collect();
    format!("ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "))
}

fn serde_plain<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
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
            suspended_at: None,
        })
    }
}

/// One passkey on the status screen.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
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
    #[serde(serialize_with = "ledger_domain::japan::serialize")]
    pub registered_at: DateTime<Utc>,
    pub registered_channel: String,
    #[serde(serialize_with = "ledger_domain::japan::serialize_option")]
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_channel: Option<String>,
    /// The device it was created on ("Chrome 148.0.0 / Windows 11 24H2 (PC)").
    pub registered_environment: Option<String>,
    /// Whether that device is a recommended environment (seed 000 p.3).
    pub environment_recommended: Option<bool>,
    /// The cross-device sign-in after which it was added, for local passkeys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_device_sign_in: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ledger_domain::japan::serialize_option")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// `customer` or `staff:<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    /// Since when it is refused at login until support has checked it
    /// (its signature counter went backwards); absent when usable.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ledger_domain::japan::serialize_option")]
    pub suspended_at: Option<DateTime<Utc>>,
}

/// The status-inquiry view of one account (seed 000 p.16-17).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
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
    #[serde(serialize_with = "ledger_domain::japan::serialize_option")]
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
}

/// A line in both languages (the summary above the list, a history line).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Summary {
    pub en: String,
    pub ja: String,
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
        suspended_at: r.try_get::<Option<i64>, _>("suspended_at")?.map(from_millis),
    })
}

/// The accounts a support search finds (at most 20, by login ID): the
/// login ID itself, login IDs starting with it, or the e-mail address.
pub async fn find_accounts(pool: &AnyPool, query: &str, email: &str) -> Result<Vec<String>, DbError> {
    let prefix = format!("{}%", query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT account_id FROM status_accounts
          WHERE login_id = $1 OR login_id LIKE $2 ESCAPE '\\' OR email = $3
             OR account_id IN (SELECT account_id FROM email_registry WHERE email = $3)
             OR account_id IN (SELECT account_id FROM former_emails WHERE email = $3)
          ORDER BY login_id LIMIT 20",
    )
    .bind(query)
    .bind(&prefix)
    .bind(email)
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Counts for the operator's metrics.
pub struct Census {
    pub events_by_type: Vec<(String, i64)>,
    pub accounts: i64,
    pub passkeys_active: i64,
    /// (kind, review status, count).
    pub signals: Vec<(String, String, i64)>,
}

pub async fn census(pool: &AnyPool) -> Result<Census, DbError> {
    let events_by_type = crate::audit::counts(pool).await?;
    let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM status_accounts").fetch_one(pool).await?;
    let (passkeys_active,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM status_passkeys WHERE revoked_at IS NULL").fetch_one(pool).await?;
    let signals =
        sqlx::query_as("SELECT kind, status, COUNT(*) FROM signals GROUP BY kind, status ORDER BY kind, status").fetch_all(pool).await?;
    Ok(Census { events_by_type, accounts, passkeys_active, signals })
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
    let summary = if passkeys.is_empty() {
        Summary { en: "No passkey registered.".into(), ja: "パスキーは登録されていません。".into() }
    } else {
        let suspended = passkeys.iter().filter(|p| p.suspended_at.is_some()).count();
        let (held_en, held_ja) = if suspended > 0 {
            (
                format!(" {suspended} of them suspended until support has checked it (its counter went backwards)."),
                format!("うち{suspended}件は署名カウンターの後退により、サポートの確認まで一時停止中です。"),
            )
        } else {
            (String::new(), String::new())
        };
        Summary {
            en: format!("{} passkey(s) registered.{held_en}", passkeys.len()),
            ja: format!("{}件のパスキーが登録されています。{held_ja}", passkeys.len()),
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
