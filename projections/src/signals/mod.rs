//! Fraud signals: named rules over the event log, each with thresholds from
//! configuration, a severity, the evidence events and the accounts involved.
//! The rules are pure functions of one account's recent history; the
//! projector runs them as each event arrives, so a rebuild raises exactly
//! the same signals with the same ids.

use chrono::{DateTime, Utc};
use ledger_domain::account::HolderKind;
use ledger_domain::staff::{ReviewOutcome, StaffEvent};
use ledger_domain::{AccountEvent, Refusal};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::DbError;
use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::any::AnyRow;

use crate::event::{LoggedEvent, Parsed, Payload};
use crate::millis;
use crate::rows::{self, Val};

mod stuffing;

/// A count within a window: "`count` or more within `window_secs`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threshold {
    pub count: usize,
    pub window_secs: i64,
}

/// `count/seconds`, as configured.
impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.count, self.window_secs)
    }
}

impl Threshold {
    /// Parses `5/3600` (5 within an hour).
    pub fn parse(spec: &str) -> Result<Threshold, String> {
        let (c, w) = spec.split_once('/').ok_or_else(|| format!("expected count/seconds, got {spec:?}"))?;
        let count = c.trim().parse().map_err(|_| format!("bad count in {spec:?}"))?;
        let window_secs = w.trim().parse().map_err(|_| format!("bad window in {spec:?}"))?;
        if count == 0 || window_secs <= 0 {
            return Err(format!("count and window must be positive in {spec:?}"));
        }
        Ok(Threshold { count, window_secs })
    }
}

/// How grave a signal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim() {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            _ => None,
        }
    }

    /// One step graver (high stays high).
    pub fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium | Severity::High => Severity::High,
        }
    }
}

/// The severity of `shared_email` when accounts of a kind share an address
/// at opening: family and corporate accounts do so by the brokerage's own
/// design (seed 000 names them), so they start lower than individuals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedEmailSeverity {
    pub individual: Severity,
    pub family: Severity,
    pub corporate: Severity,
}

impl Default for SharedEmailSeverity {
    fn default() -> Self {
        SharedEmailSeverity { individual: Severity::Medium, family: Severity::Low, corporate: Severity::Low }
    }
}

/// `individual=medium,family=low,corporate=low`, as configured.
impl std::fmt::Display for SharedEmailSeverity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "individual={},family={},corporate={}", self.individual.as_str(), self.family.as_str(), self.corporate.as_str())
    }
}

impl SharedEmailSeverity {
    /// Parses `family=low,corporate=medium` (kinds not named keep their default).
    pub fn parse(spec: &str) -> Result<SharedEmailSeverity, String> {
        let mut out = SharedEmailSeverity::default();
        let mut named = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, severity) = part.split_once('=').ok_or_else(|| format!("expected kind=severity (e.g. family=low), got {part:?}"))?;
            let severity = Severity::parse(severity).ok_or_else(|| format!("severity must be low, medium or high, got {severity:?}"))?;
            if named.contains(&kind.trim()) {
                return Err(format!("holder kind {:?} is given twice", kind.trim()));
            }
            named.push(kind.trim());
            match kind.trim() {
                "individual" => out.individual = severity,
                "family" => out.family = severity,
                "corporate" => out.corporate = severity,
                other => return Err(format!("holder kind must be individual, family or corporate, got {other:?}")),
            }
        }
        Ok(out)
    }

    fn of(&self, kind: HolderKind) -> Severity {
        match kind {
            HolderKind::Individual => self.individual,
            HolderKind::Family => self.family,
            HolderKind::Corporate => self.corporate,
        }
    }
}

/// Every rule's thresholds (`docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Wrong e-mail codes on one account (a code dies after 5).
    pub wrong_codes: Threshold,
    /// E-mail codes issued for one account.
    pub code_requests: Threshold,
    /// A passkey added this soon after the e-mail address changed.
    pub passkey_after_email_change_secs: i64,
    /// Passkeys added to one account.
    pub passkeys_added: Threshold,
    /// Lock-outs of one account.
    pub lockouts: Threshold,
    /// Distinct clients behind one lock-out: an account attacked from many
    /// places, not a customer who mistyped.
    pub lockout_clients: u32,
    /// Distinct clients sending wrong passwords to one account within a
    /// window: spraying from many addresses, locked out or not.
    pub password_clients: Threshold,
    /// How far back "all passkeys deleted" counts for a new registration.
    pub wipe_window_secs: i64,
    /// Wrong passwords for this many login IDs (known or not) from one
    /// client address within the window: credential stuffing.
    #[serde(default = "default_login_ids_per_client")]
    pub login_ids_per_client: Threshold,
    /// The same from several clients of one network (IPv4 /24, IPv6 /48).
    #[serde(default = "default_login_ids_per_network")]
    pub login_ids_per_network: Threshold,
    /// `shared_email` at opening, by the holder kinds involved (the gravest
    /// of them); one step graver for an address changed into one another
    /// account holds, and again each time an account sharing it registers,
    /// or is refused, a passkey.
    #[serde(default)]
    pub shared_email: SharedEmailSeverity,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            wrong_codes: Threshold { count: 5, window_secs: 3600 },
            code_requests: Threshold { count: 5, window_secs: 3600 },
            passkey_after_email_change_secs: 24 * 3600,
            passkeys_added: Threshold { count: 3, window_secs: 3600 },
            lockouts: Threshold { count: 2, window_secs: 7 * 24 * 3600 },
            lockout_clients: 3,
            password_clients: Threshold { count: 5, window_secs: 3600 },
            wipe_window_secs: 30 * 24 * 3600,
            shared_email: SharedEmailSeverity::default(),
            login_ids_per_client: default_login_ids_per_client(),
            login_ids_per_network: default_login_ids_per_network(),
        }
    }
}

fn default_login_ids_per_client() -> Threshold {
    Threshold { count: 10, window_secs: 600 }
}

fn default_login_ids_per_network() -> Threshold {
    Threshold { count: 20, window_secs: 600 }
}

/// One event of an account's history, as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub sequence: i64,
    pub at: DateTime<Utc>,
    pub event: AccountEvent,
}

/// A signal a rule raised.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub kind: &'static str,
    pub severity: &'static str,
    /// Sequences of the evidence events in the account's stream.
    pub evidence: Vec<i64>,
    pub en: String,
    pub ja: String,
    /// A burst going on past its threshold: the open signal it raised
    /// (within this many seconds) takes the new evidence and count,
    /// instead of a new signal.
    pub continues: Option<i64>,
}

fn within<'a>(history: &'a [Fact], now: &Fact, secs: i64) -> impl Iterator<Item = &'a Fact> {
    let since = now.at - chrono::Duration::seconds(secs);
    let upto = now.sequence;
    history.iter().filter(move |f| f.at >= since && f.sequence <= upto)
}

/// Fires when the `count`-th matching event within the window arrives, so
/// a burst raises one signal, not one per event; and again with each later
/// one while the burst goes on, to keep that signal's count exact.
fn burst(history: &[Fact], now: &Fact, t: Threshold, matches: impl Fn(&AccountEvent) -> bool) -> Option<Vec<i64>> {
    if !matches(&now.event) {
        return None;
    }
    let seqs: Vec<i64> = within(history, now, t.window_secs).filter(|f| matches(&f.event)).map(|f| f.sequence).collect();
    (seqs.len() >= t.count).then_some(seqs)
}

fn is_addition(e: &AccountEvent) -> bool {
    matches!(e, AccountEvent::PasskeyRegistered { .. } | AccountEvent::LocalPasskeyAdded { .. })
}

fn environment_of(e: &AccountEvent) -> Option<String> {
    match e {
        AccountEvent::PasskeyRegistered { passkey, .. } | AccountEvent::LocalPasskeyAdded { passkey, .. } => {
            passkey.environment.as_ref().map(|e| e.fingerprint())
        }
        AccountEvent::PasskeyLoginSucceeded { environment, .. }
        | AccountEvent::CrossDeviceSignInSucceeded { environment, .. }
        | AccountEvent::PasswordLoginSucceeded { environment, .. } => environment.as_ref().map(|e| e.fingerprint()),
        _ => None,
    }
}

/// The deletion that left the account with no active passkey, when none
/// was bound between it and `now`.
fn emptied_by<'a>(history: &'a [Fact], now: &Fact) -> Option<&'a Fact> {
    let mut active: Vec<&str> = Vec::new();
    let mut emptied = None;
    for fact in history.iter().filter(|f| f.sequence < now.sequence) {
        match &fact.event {
            AccountEvent::PasskeyRegistered { passkey, .. } | AccountEvent::LocalPasskeyAdded { passkey, .. } => {
                active.push(&passkey.passkey_id);
                emptied = None;
            }
            AccountEvent::PasskeysRevoked { passkeys, .. } => {
                active.retain(|id| !passkeys.iter().any(|p| p.passkey_id == *id));
                if active.is_empty() {
                    emptied = Some(fact);
                }
            }
            _ => {}
        }
    }
    emptied
}

fn failed_with(e: &AccountEvent, reason: Refusal) -> Option<&str> {
    match e {
        AccountEvent::PasskeyLoginFailed { reason: r, credential_id, .. } if *r == reason => Some(credential_id),
        _ => None,
    }
}

/// The single-account rules, for the newest event `now` given the account's
/// recent `history` (oldest first, `now` included).
pub fn evaluate(history: &[Fact], now: &Fact, t: &Thresholds) -> Vec<Raised> {
    use AccountEvent as E;
    let mut out = Vec::new();
    if let Some(evidence) = burst(history, now, t.wrong_codes, |e| matches!(e, E::EmailCodeRejected { .. })) {
        let (n, window) = (evidence.len(), t.wrong_codes.window_secs);
        out.push(Raised {
            kind: "many_wrong_codes",
            severity: "high",
            continues: (n > t.wrong_codes.count).then_some(window),
            evidence,
            en: format!("{n} wrong e-mail codes within {} minutes.", window / 60),
            ja: format!("{}分以内に誤った認証コードが{n}回入力されました。", window / 60),
        });
    }
    if let Some(evidence) = burst(history, now, t.code_requests, |e| matches!(e, E::EmailCodeIssued { .. })) {
        let (n, window) = (evidence.len(), t.code_requests.window_secs);
        out.push(Raised {
            kind: "repeated_code_requests",
            severity: "medium",
            continues: (n > t.code_requests.count).then_some(window),
            evidence,
            en: format!("{n} e-mail codes requested within {} minutes.", window / 60),
            ja: format!("{}分以内に認証コードが{n}回要求されました。", window / 60),
        });
    }
    if is_addition(&now.event) {
        let changes: Vec<i64> = within(history, now, t.passkey_after_email_change_secs)
            .filter(|f| matches!(f.event, E::EmailAddressChanged { .. }))
            .map(|f| f.sequence)
            .collect();
        if let Some(last) = changes.last() {
            out.push(Raised {
                kind: "passkey_after_email_change",
                severity: "high",
                continues: None,
                evidence: vec![*last, now.sequence],
                en: "A passkey was added soon after the e-mail address was changed (a takeover path).".into(),
                ja: "メールアドレス変更の直後にパスキーが追加されました（乗っ取りの典型的な手口）。".into(),
            });
        }
    }
    if let Some(evidence) = burst(history, now, t.passkeys_added, is_addition) {
        let (n, window) = (evidence.len(), t.passkeys_added.window_secs);
        out.push(Raised {
            kind: "many_passkeys_added",
            severity: "medium",
            continues: (n > t.passkeys_added.count).then_some(window),
            evidence,
            en: format!("{n} passkeys added within {} minutes.", window / 60),
            ja: format!("{}分以内にパスキーが{n}件追加されました。", window / 60),
        });
    }
    for (reason, kind, severity, en, ja) in [
        (
            Refusal::RevokedCredential,
            "revoked_credential_used",
            "medium",
            "A deleted passkey was used to sign in.",
            "削除済みのパスキーでログインが試みられました。",
        ),
        (
            Refusal::CounterRegression,
            "counter_regression",
            "high",
            "A passkey's signature counter went backwards: a possibly cloned authenticator.",
            "パスキーの署名カウンタが逆行しました（認証器の複製の可能性）。",
        ),
    ] {
        if let Some(credential) = failed_with(&now.event, reason) {
            // Once per credential per day.
            let earlier =
                within(history, now, 24 * 3600).any(|f| f.sequence < now.sequence && failed_with(&f.event, reason) == Some(credential));
            if !earlier {
                out.push(Raised { kind, severity, evidence: vec![now.sequence], en: en.into(), ja: ja.into(), continues: None });
            }
        }
    }
    // Every path that binds a passkey feeds this rule: a first registration
    // or a passkey added from a session.
    if let E::PasskeyRegistered { passkey, .. } | E::LocalPasskeyAdded { passkey, .. } = &now.event {
        if let Some(wipe) = emptied_by(history, now).filter(|w| w.at >= now.at - chrono::Duration::seconds(t.wipe_window_secs)) {
            let known: Vec<String> =
                history.iter().filter(|f| f.sequence < wipe.sequence).filter_map(|f| environment_of(&f.event)).collect();
            let new_env = passkey.environment.as_ref().map(|e| e.fingerprint());
            if new_env.is_some_and(|e| !known.contains(&e)) {
                out.push(Raised {
                    kind: "wipe_and_reregister",
                    severity: "high",
                    continues: None,
                    evidence: vec![wipe.sequence, now.sequence],
                    en: "All passkeys were deleted, then a new one registered from an environment not seen before.".into(),
                    ja: "すべてのパスキーが削除された後、これまでにない環境から新しいパスキーが登録されました。".into(),
                });
            }
        }
    }
    if let E::LoginLocked { clients, .. } = &now.event {
        if clients.len() >= t.lockout_clients as usize {
            out.push(Raised {
                kind: "lockout_from_many_clients",
                severity: "high",
                continues: None,
                evidence: vec![now.sequence],
                en: format!(
                    "The login was locked by wrong passwords from {} different clients: an attack, not a mistyping customer.",
                    clients.len()
                ),
                ja: format!(
                    "{}か所の異なる接続元からの誤ったパスワードでログインがロックされました（入力ミスではなく攻撃の可能性）。",
                    clients.len()
                ),
            });
        }
    }
    if let E::PasswordRejected { client: Some(client), .. } = &now.event {
        // The first wrong password of each client within the window.
        let mut firsts: Vec<(&str, i64)> = Vec::new();
        for fact in within(history, now, t.password_clients.window_secs) {
            if let E::PasswordRejected { client: Some(c), .. } = &fact.event {
                if !firsts.iter().any(|(seen, _)| seen == c) {
                    firsts.push((c.as_str(), fact.sequence));
                }
            }
        }
        let new_client = firsts.iter().any(|(c, s)| c == client && *s == now.sequence);
        let n = firsts.len();
        if new_client && n >= t.password_clients.count {
            let window = t.password_clients.window_secs;
            out.push(Raised {
                kind: "wrong_passwords_from_many_clients",
                severity: "high",
                continues: (n > t.password_clients.count).then_some(window),
                evidence: firsts.iter().map(|(_, s)| *s).collect(),
                en: format!("Wrong passwords for this account came from {n} different clients within {} minutes.", window / 60),
                ja: format!("{}分以内に{n}か所の異なる接続元からこの口座への誤ったパスワードがありました。", window / 60),
            });
        }
    }
    if let Some(evidence) = burst(history, now, t.lockouts, |e| matches!(e, E::LoginLocked { .. })) {
        let (n, window) = (evidence.len(), t.lockouts.window_secs);
        out.push(Raised {
            kind: "repeated_lockouts",
            severity: "medium",
            continues: (n > t.lockouts.count).then_some(window),
            evidence,
            en: format!("The login was locked {n} times within {} days.", window / 86400),
            ja: format!("{}日以内にログインが{n}回ロックされました。", window / 86400),
        });
    }
    out
}

/// The evidence entry for an event of the log.
fn evidence_entry(aggregate_type: &str, aggregate_id: &str, sequence: i64, event_type: &str) -> Value {
    json!({ "stream": aggregate_type, "stream_id": aggregate_id, "sequence": sequence, "type": event_type })
}

/// Signals raised but not yet written, and the reviews that follow them.
#[derive(Default)]
struct Pending {
    signals: Vec<Vec<Val>>,
    accounts: Vec<Vec<Val>>,
}

impl Pending {
    fn raise(&mut self, signal_id: &str, raised: &Raised, at: i64, accounts: &[String], evidence: &[Value]) {
        self.signals.push(vec![
            signal_id.into(),
            raised.kind.into(),
            raised.severity.into(),
            at.into(),
            Value::from(accounts.to_vec()).to_string().into(),
            Value::from(evidence.to_vec()).to_string().into(),
            raised.en.as_str().into(),
            raised.ja.as_str().into(),
            "open".into(),
        ]);
        for account in accounts {
            self.accounts.push(vec![signal_id.into(), account.as_str().into()]);
        }
    }

    async fn write(&mut self, conn: &mut AnyConnection) -> Result<(), DbError> {
        let signals = std::mem::take(&mut self.signals);
        rows::insert(
            conn,
            "INSERT INTO signals (signal_id, kind, severity, raised_at, accounts, evidence, summary_en, summary_ja, status)",
            "ON CONFLICT (signal_id) DO NOTHING",
            &signals,
        )
        .await?;
        let accounts = std::mem::take(&mut self.accounts);
        rows::insert(conn, "INSERT INTO signal_accounts (signal_id, account_id)", "ON CONFLICT DO NOTHING", &accounts).await
    }
}

/// The events that may trigger a single-account rule.
fn may_trigger(event: &AccountEvent) -> bool {
    use AccountEvent as E;
    matches!(
        event,
        E::EmailCodeRejected { .. }
            | E::EmailCodeIssued { .. }
            | E::PasskeyRegistered { .. }
            | E::LocalPasskeyAdded { .. }
            | E::PasskeyLoginFailed { .. }
            | E::LoginLocked { .. }
            | E::PasswordRejected { client: Some(_), .. }
    )
}

/// The address an event registers, and in which slot.
fn registers(event: &AccountEvent) -> Option<(&str, i64)> {
    match event {
        AccountEvent::AccountOpened { email: Some(email), .. } => Some((email.as_str(), 1)),
        AccountEvent::EmailAddressChanged { email, slot, .. } => Some((email.as_str(), *slot as i64)),
        _ => None,
    }
}

/// Who holds which address, as of the event being looked at: the registry
/// as it was before the batch (the rows with the batch's addresses), with
/// the batch's own changes laid over it in log order.
#[derive(Default)]
struct Registry {
    by_slot: HashMap<(String, i64), String>,
    by_email: HashMap<String, BTreeSet<String>>,
    /// Each account's latest AccountOpened / EmailAddressChanged: the
    /// evidence of who set an address.
    last_set: HashMap<String, (i64, String)>,
    /// Holder kinds of accounts opened in the batch.
    kinds: HashMap<String, HolderKind>,
}

impl Registry {
    fn set(&mut self, account: &str, slot: i64, email: &str) {
        if let Some(old) = self.by_slot.insert((account.to_string(), slot), email.to_string()) {
            // An account has address slots 1 and 2.
            let still_held = (1..=2).any(|s| self.by_slot.get(&(account.to_string(), s)) == Some(&old));
            if !still_held {
                if let Some(set) = self.by_email.get_mut(&old) {
                    set.remove(account);
                }
            }
        }
        self.by_email.entry(email.to_string()).or_default().insert(account.to_string());
    }

    fn others(&self, email: &str, except: &str) -> Vec<String> {
        self.by_email.get(email).map(|set| set.iter().filter(|a| *a != except).cloned().collect()).unwrap_or_default()
    }
}

/// Runs the rules for a batch of logged events, in log order, inside the
/// projector's transaction. It runs before the other projections write the
/// batch: what it reads from the e-mail registry and the audit trail is the
/// state before the batch, and the batch's own events are laid over it in
/// memory, so that each event sees exactly what came before it (a rebuild
/// raises the same signals as live updating, whatever the batch size).
pub async fn apply(conn: &mut AnyConnection, batch: &[Parsed], thresholds: &Thresholds) -> Result<(), DbError> {
    let mut emails = HashSet::new();
    // Accounts whose rules look back before the batch, from which sequence.
    let mut need_history: HashMap<&str, i64> = HashMap::new();
    let mut opened_here = HashSet::new();
    // Accounts whose open shared_email signals an event may make graver.
    let mut escalating = HashSet::new();
    for parsed in batch {
        let Some(event) = parsed.account()? else { continue };
        let id = parsed.event.aggregate_id.as_str();
        if let Some((email, _)) = registers(event) {
            emails.insert(email);
        }
        if parsed.event.sequence == 1 {
            opened_here.insert(id);
        }
        if may_trigger(event) && !opened_here.contains(id) {
            need_history.entry(id).or_insert(parsed.event.sequence);
        }
        if escalates_shared_email(event) {
            escalating.insert(id);
        }
    }
    let mut registry = load_registry(conn, &emails).await?;
    let mut histories = load_histories(conn, &need_history).await?;
    let mut shared = OpenShared::load(conn, &escalating).await?;
    let limits = stuffing::Limits { per_client: thresholds.login_ids_per_client, per_network: thresholds.login_ids_per_network };
    let mut stuffing = stuffing::Stuffing::load(conn, batch, limits).await?;
    let mut pending = Pending::default();
    for parsed in batch {
        let event = &parsed.event;
        match &parsed.payload {
            Payload::Staff(StaffEvent::SignalReviewed { signal_id, outcome, note }) => {
                // The signal may have been raised earlier in this batch.
                pending.write(conn).await?;
                shared.flush(conn, signal_id).await?;
                review(conn, event, signal_id, outcome, note).await?;
                shared.closed(signal_id);
                stuffing.closed(signal_id);
            }
            Payload::System(_) => stuffing.on_event(conn, parsed, &mut pending).await?,
            Payload::Account(account_event) => {
                let id = event.aggregate_id.as_str();
                let history = histories.entry(id.to_string()).or_default();
                history.push(Fact { sequence: event.sequence, at: crate::from_millis(millis(parsed.at)), event: account_event.clone() });
                if history.len() > 2 * HISTORY {
                    history.drain(..history.len() - HISTORY);
                }
                if let AccountEvent::AccountOpened { holder_kind, .. } = account_event {
                    registry.kinds.insert(id.to_string(), *holder_kind);
                }
                if let Some((email, slot)) = registers(account_event) {
                    registry.set(id, slot, email);
                    registry.last_set.insert(id.to_string(), (event.sequence, event.event_type.clone()));
                    shared_email(conn, &mut registry, &mut pending, &mut shared, parsed, email, &thresholds.shared_email).await?;
                }
                if escalates_shared_email(account_event) {
                    shared.escalate(id, evidence_entry("account", id, event.sequence, &event.event_type));
                }
                stuffing.on_event(conn, parsed, &mut pending).await?;
                if let AccountEvent::SuspiciousActivityReported { sequence, event_type, .. } = account_event {
                    let raised = reported_by_customer(event_type);
                    let evidence = [
                        evidence_entry("account", id, *sequence, event_type),
                        evidence_entry("account", id, event.sequence, &event.event_type),
                    ];
                    pending.raise(&reported_signal_id(id, *sequence), &raised, parsed.at.timestamp_millis(), &[id.to_string()], &evidence);
                }
                if may_trigger(account_event) {
                    // The window is the account's last HISTORY sequences (a
                    // skipped, unreadable event leaves a gap, not a later start).
                    let start = history.partition_point(|f| f.sequence <= event.sequence - HISTORY as i64);
                    let history = &history[start..];
                    let now = Fact { sequence: event.sequence, at: parsed.at, event: account_event.clone() };
                    for raised in evaluate(history, &now, thresholds) {
                        let evidence: Vec<Value> = raised
                            .evidence
                            .iter()
                            .map(|s| {
                                let t = history.iter().find(|f| f.sequence == *s).map(|f| event_type_of(&f.event)).unwrap_or_default();
                                evidence_entry("account", id, *s, &t)
                            })
                            .collect();
                        if let Some(window) = raised.continues {
                            // The signal may have been raised earlier in this batch.
                            pending.write(conn).await?;
                            let since = parsed.at.timestamp_millis() - 2 * window * 1000;
                            extend(conn, &raised, id, since, &evidence).await?;
                            continue;
                        }
                        let signal_id = format!("{}:{}:{}", raised.kind, id, event.sequence);
                        pending.raise(&signal_id, &raised, parsed.at.timestamp_millis(), &[id.to_string()], &evidence);
                    }
                }
            }
            _ => {}
        }
    }
    pending.write(conn).await?;
    shared.write(conn).await?;
    stuffing.finish(conn).await
}

/// The signal a customer's "this wasn't me" report raises: one per
/// reported event, so its ID is known to the report's answer before the
/// projector writes it.
pub fn reported_signal_id(account_id: &str, reported_sequence: i64) -> String {
    format!("customer_reported_activity:{account_id}:{reported_sequence}")
}

fn reported_by_customer(event_type: &str) -> Raised {
    let (en, ja) = ledger_domain::words::event_type_words(event_type).unwrap_or((event_type, event_type));
    Raised {
        kind: "customer_reported_activity",
        severity: "high",
        continues: None,
        evidence: vec![],
        en: format!("The customer reported activity on their account as not theirs ({en}): their other sessions were ended and the passkey it used deleted."),
        ja: format!("お客様から身に覚えのない操作（{ja}）の報告がありました。他のセッションを終了し、使われたパスキーを削除しました。"),
    }
}

/// An event on an account that shares its address which makes the
/// sharing graver: a passkey bound, or refused because of the address.
fn escalates_shared_email(event: &AccountEvent) -> bool {
    matches!(event, AccountEvent::PasskeyRegistered { .. } | AccountEvent::LocalPasskeyAdded { .. })
        || event.refusal() == Some(Refusal::EmailSharedWithOtherAccounts)
}

/// An open `shared_email` signal, as the batch sees it. Its summary is
/// made from its accounts and evidence when it is written.
struct Shared {
    severity: Severity,
    accounts: Vec<String>,
    evidence: Vec<Value>,
    changed: bool,
    /// Accounts that joined it in this batch.
    joined: Vec<String>,
}

/// The open `shared_email` signals of the accounts the batch may escalate,
/// as they were before it, with the batch's own laid over them.
#[derive(Default)]
struct OpenShared {
    signals: HashMap<String, Shared>,
    /// The accounts whose open signals are loaded.
    loaded: HashSet<String>,
}

impl OpenShared {
    async fn load(conn: &mut AnyConnection, accounts: &HashSet<&str>) -> Result<OpenShared, DbError> {
        let mut out = OpenShared::default();
        out.ensure(conn, accounts.iter().copied()).await?;
        Ok(out)
    }

    /// Loads the open signals of `accounts` not loaded yet, as they were
    /// before the batch (what the batch changed in memory stays).
    async fn ensure<'a>(&mut self, conn: &mut AnyConnection, accounts: impl Iterator<Item = &'a str>) -> Result<(), DbError> {
        let accounts: Vec<&str> = accounts.filter(|a| self.loaded.insert(a.to_string())).collect();
        for chunk in accounts.chunks(rows::LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT s.signal_id, s.severity, s.accounts, s.evidence FROM signals s
                  WHERE s.kind = 'shared_email' AND s.status = 'open'
                    AND s.signal_id IN (SELECT signal_id FROM signal_accounts WHERE account_id IN ({}))",
                rows::placeholders(conn, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, String, String)>(&sql);
            for a in chunk {
                query = query.bind(*a);
            }
            for (id, severity, accounts, evidence) in query.fetch_all(&mut *conn).await? {
                self.signals.entry(id).or_insert(Shared {
                    severity: Severity::parse(&severity).unwrap_or(Severity::Medium),
                    accounts: serde_json::from_str(&accounts).unwrap_or_default(),
                    evidence: serde_json::from_str(&evidence).unwrap_or_default(),
                    changed: false,
                    joined: Vec::new(),
                });
            }
        }
        Ok(())
    }

    /// The open signal of the address `account` joins, held by `others`:
    /// one whose accounts all hold it still (a signal with an account that
    /// has since moved to another address is about that other address).
    fn of_address(&self, account: &str, others: &[String]) -> Option<String> {
        self.signals
            .iter()
            .filter(|(_, s)| s.accounts.iter().all(|a| a == account || others.contains(a)))
            .max_by_key(|(id, s)| (s.accounts.len(), id.to_string()))
            .map(|(id, _)| id.clone())
    }

    /// `account` joins the signal: as evidence, and a step graver if its
    /// holder kind makes the sharing graver.
    fn join(&mut self, signal_id: &str, account: &str, evidence: Value, severity: Severity) {
        if let Some(s) = self.signals.get_mut(signal_id) {
            if !s.accounts.iter().any(|a| a == account) {
                s.accounts.push(account.to_string());
                s.joined.push(account.to_string());
            }
            s.evidence.push(evidence);
            s.severity = s.severity.max(severity);
            s.changed = true;
        }
    }

    fn raised(&mut self, signal_id: &str, severity: Severity, accounts: &[String], evidence: &[Value]) {
        let signal = Shared { severity, accounts: accounts.to_vec(), evidence: evidence.to_vec(), changed: false, joined: Vec::new() };
        self.signals.insert(signal_id.to_string(), signal);
    }

    fn closed(&mut self, signal_id: &str) {
        self.signals.remove(signal_id);
    }

    /// One step graver, with the event as evidence, for every open signal
    /// the account is part of.
    fn escalate(&mut self, account_id: &str, evidence: Value) {
        for signal in self.signals.values_mut().filter(|s| s.accounts.iter().any(|a| a == account_id)) {
            signal.severity = signal.severity.raised();
            signal.evidence.push(evidence.clone());
            signal.changed = true;
        }
    }

    async fn write(mut self, conn: &mut AnyConnection) -> Result<(), DbError> {
        for (id, s) in self.signals.iter_mut().filter(|(_, s)| s.changed) {
            write_shared(conn, id, s).await?;
        }
        Ok(())
    }

    /// Writes what the batch changed of one signal now (before a review of it).
    async fn flush(&mut self, conn: &mut AnyConnection, signal_id: &str) -> Result<(), DbError> {
        match self.signals.get_mut(signal_id) {
            Some(s) if s.changed => write_shared(conn, signal_id, s).await,
            _ => Ok(()),
        }
    }
}

async fn write_shared(conn: &mut AnyConnection, id: &str, s: &mut Shared) -> Result<(), DbError> {
    let (en, ja) = shared_summary(s.accounts.len(), &s.evidence);
    sqlx::query("UPDATE signals SET severity = $2, evidence = $3, summary_en = $4, summary_ja = $5, accounts = $6 WHERE signal_id = $1")
        .bind(id)
        .bind(s.severity.as_str())
        .bind(Value::from(s.evidence.clone()).to_string())
        .bind(en)
        .bind(ja)
        .bind(Value::from(s.accounts.clone()).to_string())
        .execute(&mut *conn)
        .await?;
    let joined: Vec<Vec<Val>> = std::mem::take(&mut s.joined).iter().map(|a| vec![id.into(), a.as_str().into()]).collect();
    rows::insert(conn, "INSERT INTO signal_accounts (signal_id, account_id)", "ON CONFLICT DO NOTHING", &joined).await?;
    s.changed = false;
    Ok(())
}

/// A burst that goes on: its open signal (the account's latest of that
/// kind raised since `since`) takes the whole evidence and the exact count.
async fn extend(conn: &mut AnyConnection, raised: &Raised, account_id: &str, since: i64, evidence: &[Value]) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE signals SET evidence = $1, summary_en = $2, summary_ja = $3
          WHERE signal_id = (SELECT s.signal_id FROM signals s JOIN signal_accounts a ON a.signal_id = s.signal_id
                              WHERE s.kind = $4 AND a.account_id = $5 AND s.status = 'open' AND s.raised_at >= $6
                              ORDER BY s.raised_at DESC, s.signal_id DESC LIMIT 1)",
    )
    .bind(Value::from(evidence.to_vec()).to_string())
    .bind(&raised.en)
    .bind(&raised.ja)
    .bind(raised.kind)
    .bind(account_id)
    .bind(since)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// How much of an account's history the rules look at.
const HISTORY: usize = 500;

fn event_type_of(e: &AccountEvent) -> String {
    cqrs_es::DomainEvent::event_type(e)
}

/// The registry rows holding any of `emails`.
async fn load_registry(conn: &mut AnyConnection, emails: &HashSet<&str>) -> Result<Registry, DbError> {
    let mut registry = Registry::default();
    let emails: Vec<&str> = emails.iter().copied().collect();
    for chunk in emails.chunks(rows::LOOKUP_CHUNK) {
        let sql = format!("SELECT account_id, slot, email FROM email_registry WHERE email IN ({})", rows::placeholders(conn, chunk.len()));
        let mut query = sqlx::query_as::<_, (String, i64, String)>(&sql);
        for e in chunk {
            query = query.bind(*e);
        }
        for (account, slot, email) in query.fetch_all(&mut *conn).await? {
            registry.set(&account, slot, &email);
        }
    }
    Ok(registry)
}

/// The events each account's rules can still look back to from its first
/// event in the batch (the HISTORY sequences before it), oldest first. A long
/// stream is read from its window only, not from its start.
async fn load_histories(conn: &mut AnyConnection, accounts: &HashMap<&str, i64>) -> Result<HashMap<String, Vec<Fact>>, DbError> {
    let floor = |first: i64| first - 1 - HISTORY as i64;
    type Firsts<'a> = Vec<(&'a str, i64)>;
    let (long, short): (Firsts, Firsts) = accounts.iter().map(|(a, s)| (*a, *s)).partition(|(_, first)| floor(*first) > 0);
    let mut fetched: Vec<AnyRow> = Vec::new();
    for (account, first) in long {
        let rows = sqlx::query(
            "SELECT aggregate_id, sequence, event_type, event_version, payload, at FROM audit_trail
              WHERE aggregate_type = 'account' AND aggregate_id = $1 AND sequence > $2 ORDER BY sequence",
        )
        .bind(account)
        .bind(floor(first))
        .fetch_all(&mut *conn)
        .await?;
        fetched.extend(rows);
    }
    let short: Vec<&str> = short.into_iter().map(|(a, _)| a).collect();
    for chunk in short.chunks(rows::LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT aggregate_id, sequence, event_type, event_version, payload, at FROM audit_trail
              WHERE aggregate_type = 'account' AND aggregate_id IN ({})
              ORDER BY aggregate_id, sequence",
            rows::placeholders(conn, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for a in chunk {
            query = query.bind(*a);
        }
        fetched.extend(query.fetch_all(&mut *conn).await?);
    }
    let mut out: HashMap<String, Vec<Fact>> = HashMap::new();
    for r in &fetched {
        let account: String = r.try_get("aggregate_id")?;
        let sequence: i64 = r.try_get("sequence")?;
        let Some(first) = accounts.get(account.as_str()) else { continue };
        if sequence <= floor(*first) {
            continue;
        }
        let payload: Value = serde_json::from_str(&r.try_get::<String, _>("payload")?).unwrap_or(Value::Null);
        let (event_type, version): (String, String) = (r.try_get("event_type")?, r.try_get("event_version")?);
        if let Ok(event) = ledger_domain::account::upcast::read(&event_type, &version, &payload) {
            out.entry(account).or_default().push(Fact { sequence, at: crate::from_millis(r.try_get("at")?), event });
        }
    }
    Ok(out)
}

/// Seed 000, in bold: each account needs its own address. Raised when an
/// account is opened with, or changed to, an address another account has.
async fn shared_email(
    conn: &mut AnyConnection,
    registry: &mut Registry,
    pending: &mut Pending,
    shared: &mut OpenShared,
    parsed: &Parsed,
    email: &str,
    severities: &SharedEmailSeverity,
) -> Result<(), DbError> {
    let event = &parsed.event;
    let others = registry.others(email, &event.aggregate_id);
    if others.is_empty() {
        return Ok(());
    }
    let mut accounts = vec![event.aggregate_id.clone()];
    let mut evidence = vec![evidence_entry("account", &event.aggregate_id, event.sequence, &event.event_type)];
    for other in &others {
        accounts.push(other.clone());
        let set = match registry.last_set.get(other) {
            Some(set) => Some(set.clone()),
            // Before this batch: the trail holds none of its rows yet.
            None => {
                sqlx::query_as::<_, (i64, String)>(
                    "SELECT sequence, event_type FROM audit_trail
                      WHERE aggregate_type = 'account' AND aggregate_id = $1 AND event_type IN ('AccountOpened', 'EmailAddressChanged')
                      ORDER BY sequence DESC LIMIT 1",
                )
                .bind(other)
                .fetch_optional(&mut *conn)
                .await?
            }
        };
        if let Some((sequence, event_type)) = set {
            evidence.push(evidence_entry("account", other, sequence, &event_type));
        }
    }
    // The gravest of the holder kinds involved; an address changed into
    // one another account holds is graver than one shared from the opening.
    let mut severity = Severity::Low;
    for account in &accounts {
        let kind = match registry.kinds.get(account) {
            Some(kind) => Some(*kind),
            None => holder_kind(conn, account).await?,
        };
        severity = severity.max(kind.map_or(severities.individual, |k| severities.of(k)));
    }
    if event.event_type == "EmailAddressChanged" {
        severity = severity.raised();
    }
    // One open signal per address: an account joining it joins its signal.
    shared.ensure(conn, others.iter().map(String::as_str)).await?;
    if let Some(open) = shared.of_address(&event.aggregate_id, &others) {
        pending.write(conn).await?;
        shared.join(&open, &event.aggregate_id, evidence[0].clone(), severity);
        return Ok(());
    }
    let (en, ja) = shared_summary(accounts.len(), &evidence);
    let raised = Raised { kind: "shared_email", severity: severity.as_str(), continues: None, evidence: vec![], en, ja };
    let id = format!("shared_email:{}:{}", event.aggregate_id, event.sequence);
    pending.raise(&id, &raised, parsed.at.timestamp_millis(), &accounts, &evidence);
    shared.raised(&id, severity, &accounts, &evidence);
    Ok(())
}

/// The summary of a shared address on `n` accounts, with the passkey
/// registrations and attempts since (the evidence that set no address).
fn shared_summary(n: usize, evidence: &[Value]) -> (String, String) {
    let en = format!("The same e-mail address is registered on {n} accounts (each account needs its own).");
    let ja = format!("同じメールアドレスが{n}つの口座に登録されています（口座ごとに異なるアドレスが必要です）。");
    let later = evidence.iter().filter(|e| !matches!(e["type"].as_str(), Some("AccountOpened" | "EmailAddressChanged"))).count();
    if later == 0 {
        return (en, ja);
    }
    (
        format!("{en} Since then, passkey registrations or attempts on these accounts: {later}."),
        format!("{ja}その後、これらの口座でパスキーの登録または登録の試み：{later}回。"),
    )
}

/// An account's holder kind, from the views (accounts of earlier batches).
async fn holder_kind(conn: &mut AnyConnection, account_id: &str) -> Result<Option<HolderKind>, DbError> {
    let kind: Option<(String,)> =
        sqlx::query_as("SELECT holder_kind FROM status_accounts WHERE account_id = $1").bind(account_id).fetch_optional(&mut *conn).await?;
    Ok(kind.and_then(|(k,)| serde_json::from_value(Value::String(k)).ok()))
}

async fn review(
    conn: &mut AnyConnection,
    event: &LoggedEvent,
    signal_id: &str,
    outcome: &ReviewOutcome,
    note: &str,
) -> Result<(), DbError> {
    let status = serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let by = event.meta().map(|m| m.actor).unwrap_or_default();
    let at = event.at().timestamp_millis();
    let updated = sqlx::query("UPDATE signals SET status = $2, reviewed_by = $3, reviewed_at = $4, review_note = $5 WHERE signal_id = $1")
        .bind(signal_id)
        .bind(&status)
        .bind(&by)
        .bind(at)
        .bind(note)
        .execute(&mut *conn)
        .await?;
    if updated.rows_affected() > 0 {
        sqlx::query(
            "INSERT INTO signal_reviews (signal_id, position, reviewed_by, reviewed_at, outcome, note) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (signal_id, position) DO NOTHING",
        )
        .bind(signal_id)
        .bind(event.position)
        .bind(&by)
        .bind(at)
        .bind(&status)
        .bind(note)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One review of a signal.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Review {
    /// `staff:<id>`.
    pub reviewed_by: String,
    /// The reviewer's name.
    pub reviewer_name: Option<String>,
    #[serde(serialize_with = "ledger_domain::japan::serialize")]
    pub reviewed_at: DateTime<Utc>,
    /// `confirmed` or `dismissed`.
    pub outcome: String,
    pub note: String,
}

/// An account a signal involves, as support knows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SignalAccount {
    pub account_id: String,
    pub login_id: Option<String>,
    pub holder_kind: Option<String>,
}

/// A signal as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SignalView {
    pub signal_id: String,
    pub kind: String,
    pub severity: String,
    #[serde(serialize_with = "ledger_domain::japan::serialize")]
    pub raised_at: DateTime<Utc>,
    #[schema(value_type = Vec<Object>)]
    pub accounts: Value,
    #[schema(value_type = Object)]
    pub evidence: Value,
    #[schema(value_type = crate::read_models::Summary)]
    pub summary: ledger_domain::account::Line,
    pub status: String,
    pub reviewed_by: Option<String>,
    #[serde(serialize_with = "ledger_domain::japan::serialize_option")]
    pub reviewed_at: Option<DateTime<Utc>>,
    pub review_note: Option<String>,
    /// Every review, oldest first (the fields above are the latest).
    pub reviews: Vec<Review>,
    /// The accounts with their login IDs and holder kinds.
    pub account_details: Vec<SignalAccount>,
}

/// Signals filtered by status and kind (and account), newest first.
pub async fn list(pool: &AnyPool, status: Option<&str>, kind: Option<&str>, account: Option<&str>) -> Result<Vec<SignalView>, DbError> {
    let rows = sqlx::query(
        "SELECT * FROM signals s
          WHERE ($1 = '' OR s.status = $1) AND ($2 = '' OR s.kind = $2)
            AND ($3 = '' OR EXISTS (SELECT 1 FROM signal_accounts a WHERE a.signal_id = s.signal_id AND a.account_id = $3))
          ORDER BY s.raised_at DESC, s.signal_id LIMIT 1000",
    )
    .bind(status.unwrap_or(""))
    .bind(kind.unwrap_or(""))
    .bind(account.unwrap_or(""))
    .fetch_all(pool)
    .await?;
    let mut views = rows
        .iter()
        .map(|r| {
            let parse = |s: String| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null);
            Ok(SignalView {
                signal_id: r.try_get("signal_id")?,
                kind: r.try_get("kind")?,
                severity: r.try_get("severity")?,
                raised_at: crate::from_millis(r.try_get("raised_at")?),
                accounts: parse(r.try_get("accounts")?),
                evidence: parse(r.try_get("evidence")?),
                summary: ledger_domain::account::Line { en: r.try_get("summary_en")?, ja: r.try_get("summary_ja")? },
                status: r.try_get("status")?,
                reviewed_by: r.try_get("reviewed_by")?,
                reviewed_at: r.try_get::<Option<i64>, _>("reviewed_at")?.map(crate::from_millis),
                review_note: r.try_get("review_note")?,
                reviews: Vec::new(),
                account_details: Vec::new(),
            })
        })
        .collect::<Result<Vec<SignalView>, DbError>>()?;
    for view in &mut views {
        detail(pool, view).await?;
    }
    Ok(views)
}

/// What an analyst needs beside a signal: its accounts by login ID and
/// holder kind, each evidence event's time (Japan time), address, device
/// and line, and every review.
async fn detail(pool: &AnyPool, view: &mut SignalView) -> Result<(), DbError> {
    let accounts: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT a.account_id, s.login_id, s.holder_kind FROM signal_accounts a
           LEFT JOIN status_accounts s ON s.account_id = a.account_id
          WHERE a.signal_id = $1 ORDER BY s.login_id",
    )
    .bind(&view.signal_id)
    .fetch_all(pool)
    .await?;
    view.account_details =
        accounts.into_iter().map(|(account_id, login_id, holder_kind)| SignalAccount { account_id, login_id, holder_kind }).collect();
    if let Some(entries) = view.evidence.as_array_mut() {
        for entry in entries {
            let (Some(stream), Some(id), Some(sequence)) =
                (entry["stream"].as_str(), entry["stream_id"].as_str(), entry["sequence"].as_i64())
            else {
                continue;
            };
            let row: Option<(i64, String, String, String, String)> = sqlx::query_as(
                "SELECT at, ip, user_agent, line_en, line_ja FROM audit_trail
                  WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
            )
            .bind(stream)
            .bind(id)
            .bind(sequence)
            .fetch_optional(pool)
            .await?;
            if let (Some((at, ip, user_agent, en, ja)), Some(fields)) = (row, entry.as_object_mut()) {
                fields.insert("at".into(), ledger_domain::japan::japan_rfc3339(crate::from_millis(at)).into());
                fields.insert("ip".into(), ip.into());
                fields.insert("user_agent".into(), user_agent.into());
                fields.insert("line".into(), json!({ "en": en, "ja": ja }));
            }
        }
    }
    let reviews: Vec<(String, Option<String>, i64, String, String)> = sqlx::query_as(
        "SELECT r.reviewed_by, s.name, r.reviewed_at, r.outcome, r.note FROM signal_reviews r
           LEFT JOIN staff s ON 'staff:' || s.staff_id = r.reviewed_by
          WHERE r.signal_id = $1 ORDER BY r.position",
    )
    .bind(&view.signal_id)
    .fetch_all(pool)
    .await?;
    view.reviews = reviews
        .into_iter()
        .map(|(reviewed_by, reviewer_name, at, outcome, note)| Review {
            reviewed_by,
            reviewer_name,
            reviewed_at: crate::from_millis(at),
            outcome,
            note,
        })
        .collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use ledger_domain::account::{NewPasskey, RevokedPasskey, Revoker};
    use ledger_domain::{EmailAddress, Environment, PasskeyName};

    fn at(mins: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap() + chrono::Duration::minutes(mins)
    }

    /// A history built event by event; `raised` runs the rules on the last.
    struct History(Vec<Fact>);

    impl History {
        fn new() -> History {
            History(vec![])
        }
        fn add(&mut self, mins: i64, event: AccountEvent) -> Vec<Raised> {
            let fact = Fact { sequence: self.0.len() as i64 + 1, at: at(mins), event };
            self.0.push(fact.clone());
            evaluate(&self.0, &fact, &Thresholds::default())
        }
    }

    #[test]
    fn a_lock_by_many_clients_is_an_attack() {
        let locked = |clients: &[&str]| AccountEvent::LoginLocked {
            consecutive_failures: 5,
            clients: clients.iter().map(|c| c.to_string()).collect(),
        };
        let mut h = History::new();
        assert!(h.add(0, locked(&["203.0.113.1", "203.0.113.1"])).is_empty(), "one client: a customer who mistyped");
        let mut h = History::new();
        assert_eq!(kinds(&h.add(0, locked(&["203.0.113.1", "203.0.113.2", "203.0.113.3"]))), ["lockout_from_many_clients"]);
    }

    fn kinds(raised: &[Raised]) -> Vec<&str> {
        raised.iter().map(|r| r.kind).collect()
    }

    fn wrong_code() -> AccountEvent {
        AccountEvent::EmailCodeRejected { flow_id: "f".into(), code_id: "c".into(), attempts_left: 1 }
    }

    fn code_issued() -> AccountEvent {
        AccountEvent::EmailCodeIssued {
            flow_id: "f".into(),
            code_id: "c".into(),
            destination: "t***@example.jp".into(),
            slot: 1,
            issued_at: at(0),
            expires_at: at(5),
            resend: true,
        }
    }

    fn env(os: &str) -> Environment {
        Environment {
            browser: "Chrome".into(),
            browser_version: "148".into(),
            os: os.into(),
            os_version: "x".into(),
            device_type: "pc".into(),
            recommended: Some(true),
        }
    }

    fn passkey(id: &str, os: &str) -> NewPasskey {
        NewPasskey {
            passkey_id: id.into(),
            credential_id: format!("cred-{id}"),
            name: PasskeyName::parse("pc").unwrap(),
            aaguid: String::new(),
            provider: None,
            backup_eligible: true,
            backup_state: true,
            transports: vec![],
            authenticator_attachment: None,
            user_verified: true,
            counter: 0,
            public_key: Value::Null,
            environment: Some(env(os)),
        }
    }

    fn registered(id: &str, os: &str) -> AccountEvent {
        AccountEvent::PasskeyRegistered { flow_id: Some("f".into()), passkey: passkey(id, os), bound_by: String::new() }
    }

    fn added(id: &str) -> AccountEvent {
        AccountEvent::LocalPasskeyAdded { passkey: passkey(id, "Windows"), cross_device_sign_in: None }
    }

    fn failed(reason: Refusal) -> AccountEvent {
        AccountEvent::PasskeyLoginFailed { passkey_id: Some("p1".into()), credential_id: "cred-p1".into(), reason, detail: String::new() }
    }

    fn revoked_all() -> AccountEvent {
        AccountEvent::PasskeysRevoked {
            passkeys: vec![RevokedPasskey { passkey_id: "p1".into(), credential_id: "cred-p1".into(), name: None }],
            revoked_by: Revoker::Customer,
        }
    }

    #[test]
    fn wrong_passwords_from_five_clients_within_an_hour_raise_one_signal_that_grows() {
        let wrong = |client: &str| AccountEvent::PasswordRejected {
            flow_id: "f".into(),
            purpose: ledger_domain::account::FlowPurpose::PasswordLogin,
            consecutive_failures: 1,
            client: Some(client.into()),
        };
        let mut h = History::new();
        for (n, client) in ["198.51.100.1", "198.51.100.2", "198.51.100.2", "198.51.100.3", "198.51.100.4"].iter().enumerate() {
            assert!(h.add(n as i64, wrong(client)).is_empty(), "four clients are not yet many");
        }
        let raised = h.add(5, wrong("198.51.100.5"));
        assert_eq!(kinds(&raised), ["wrong_passwords_from_many_clients"]);
        assert_eq!((raised[0].evidence.clone(), raised[0].continues), (vec![1, 2, 4, 5, 6], None));
        assert!(h.add(6, wrong("198.51.100.5")).is_empty(), "a client already counted adds nothing");
        let more = h.add(7, wrong("198.51.100.6"));
        assert_eq!((more.len(), more[0].continues.is_some()), (1, true));
        assert!(more[0].en.contains("from 6 different clients"), "{:?}", more[0]);
        let mut spread = History::new();
        for n in 0..6 {
            assert!(spread.add(n * 61, wrong(&format!("198.51.100.{n}"))).is_empty(), "one an hour is not a burst");
        }
    }

    #[test]
    fn five_wrong_codes_within_an_hour_raise_one_signal() {
        let mut h = History::new();
        for n in 0..4 {
            assert!(h.add(n, wrong_code()).is_empty());
        }
        let raised = h.add(10, wrong_code());
        assert_eq!(kinds(&raised), ["many_wrong_codes"]);
        assert_eq!(raised[0].evidence, vec![1, 2, 3, 4, 5]);
        assert_eq!(raised[0].continues, None);
        // The burst goes on: its signal takes the sixth and says six.
        let more = h.add(11, wrong_code());
        assert_eq!((more.len(), more[0].continues.is_some()), (1, true), "the same burst does not raise a second signal");
        assert_eq!(more[0].evidence, vec![1, 2, 3, 4, 5, 6]);
        assert!(more[0].ja.contains("6回") && more[0].en.starts_with("6 wrong"), "{:?}", more[0]);
    }

    #[test]
    fn wrong_codes_spread_over_hours_do_not() {
        let mut h = History::new();
        for n in 0..8 {
            assert!(h.add(n * 61, wrong_code()).is_empty());
        }
    }

    #[test]
    fn codes_requested_again_and_again_raise_a_signal() {
        let mut h = History::new();
        for n in 0..4 {
            assert!(h.add(n * 2, code_issued()).is_empty());
        }
        assert_eq!(kinds(&h.add(9, code_issued())), ["repeated_code_requests"]);
    }

    #[test]
    fn a_few_codes_a_day_do_not() {
        let mut h = History::new();
        for n in 0..6 {
            assert!(h.add(n * 120, code_issued()).is_empty());
        }
    }

    #[test]
    fn a_passkey_within_24_hours_of_an_email_change_raises_a_signal() {
        let mut h = History::new();
        h.add(0, AccountEvent::EmailAddressChanged { email: EmailAddress::parse("new@example.jp").unwrap(), slot: 1, previous: None });
        let raised = h.add(23 * 60, registered("p1", "Windows"));
        assert_eq!(kinds(&raised), ["passkey_after_email_change"]);
        assert_eq!(raised[0].evidence, vec![1, 2]);
    }

    #[test]
    fn a_passkey_days_after_an_email_change_does_not() {
        let mut h = History::new();
        h.add(0, AccountEvent::EmailAddressChanged { email: EmailAddress::parse("new@example.jp").unwrap(), slot: 1, previous: None });
        assert!(h.add(25 * 60, registered("p1", "Windows")).is_empty());
    }

    #[test]
    fn a_revoked_credential_used_raises_a_signal_once_a_day() {
        let mut h = History::new();
        assert_eq!(kinds(&h.add(0, failed(Refusal::RevokedCredential))), ["revoked_credential_used"]);
        assert!(h.add(5, failed(Refusal::RevokedCredential)).is_empty());
    }

    #[test]
    fn a_wrong_signature_is_not_a_revoked_credential() {
        let mut h = History::new();
        assert!(h.add(0, failed(Refusal::InvalidCredential)).is_empty());
    }

    #[test]
    fn a_counter_going_backwards_raises_a_high_signal() {
        let mut h = History::new();
        let raised = h.add(0, failed(Refusal::CounterRegression));
        assert_eq!(kinds(&raised), ["counter_regression"]);
        assert_eq!(raised[0].severity, "high");
    }

    #[test]
    fn three_passkeys_within_an_hour_raise_a_signal() {
        let mut h = History::new();
        h.add(0, registered("p1", "Windows"));
        h.add(10, added("p2"));
        assert_eq!(kinds(&h.add(20, added("p3"))), ["many_passkeys_added"]);
    }

    #[test]
    fn three_passkeys_over_a_week_do_not() {
        let mut h = History::new();
        h.add(0, registered("p1", "Windows"));
        assert!(h.add(3 * 24 * 60, added("p2")).is_empty());
        assert!(h.add(6 * 24 * 60, added("p3")).is_empty());
    }

    #[test]
    fn all_deleted_then_a_new_passkey_from_a_new_environment_raises_a_signal() {
        let mut h = History::new();
        h.add(0, registered("p1", "Windows"));
        h.add(60, revoked_all());
        let raised = h.add(90, registered("p2", "Android"));
        assert_eq!(kinds(&raised), ["wipe_and_reregister"]);
        assert_eq!(raised[0].evidence, vec![2, 3]);
    }

    #[test]
    fn all_deleted_then_a_passkey_added_from_a_session_in_a_new_environment_raises_it_too() {
        let mut h = History::new();
        h.add(0, registered("p1", "Android"));
        h.add(60, revoked_all());
        let raised = h.add(90, added("p2"));
        assert_eq!(kinds(&raised), ["wipe_and_reregister"]);
    }

    #[test]
    fn one_of_two_deleted_then_another_added_does_not() {
        let mut h = History::new();
        h.add(0, registered("p1", "Android"));
        h.add(10, registered("p9", "Android"));
        h.add(60, revoked_all());
        assert!(h.add(90, added("p2")).is_empty(), "p9 was still active: not every passkey was deleted");
    }

    #[test]
    fn re_registering_from_the_same_environment_does_not() {
        let mut h = History::new();
        h.add(0, registered("p1", "Windows"));
        h.add(60, revoked_all());
        assert!(h.add(90, registered("p2", "Windows")).is_empty(), "a replaced device of the same kind is ordinary");
    }

    #[test]
    fn a_second_lock_out_within_a_week_raises_a_signal() {
        let mut h = History::new();
        h.add(0, AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] });
        assert_eq!(
            kinds(&h.add(3 * 24 * 60, AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] })),
            ["repeated_lockouts"]
        );
    }

    #[test]
    fn lock_outs_months_apart_do_not() {
        let mut h = History::new();
        h.add(0, AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] });
        assert!(h.add(60 * 24 * 60, AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] }).is_empty());
    }

    #[test]
    fn thresholds_parse_from_configuration() {
        assert_eq!(Threshold::parse("5/3600").unwrap(), Threshold { count: 5, window_secs: 3600 });
        assert!(Threshold::parse("0/10").is_err());
        assert!(Threshold::parse("five").is_err());
    }

    #[test]
    fn shared_email_severities_parse_by_holder_kind() {
        let parsed = SharedEmailSeverity::parse("family=high, corporate=medium").unwrap();
        assert_eq!((parsed.individual, parsed.family, parsed.corporate), (Severity::Medium, Severity::High, Severity::Medium));
        assert_eq!(SharedEmailSeverity::parse(&SharedEmailSeverity::default().to_string()).unwrap(), SharedEmailSeverity::default());
        assert!(SharedEmailSeverity::parse("family=urgent").unwrap_err().contains("low, medium or high"));
        assert!(SharedEmailSeverity::parse("trust=low").unwrap_err().contains("individual, family or corporate"));
        assert!(SharedEmailSeverity::parse("family=low,family=high").unwrap_err().contains("twice"));
        assert_eq!(Severity::Low.raised().raised().raised(), Severity::High);
    }
}
