//! Credential stuffing: wrong passwords for many login IDs, known or not,
//! from one client address, or from several clients of one network (an
//! IPv4 /24, an IPv6 /64), within a window. The attempts of the rules'
//! window are kept in `login_attempts`, so that a window spans batches;
//! each batch loads the rows of the clients and networks it touches, lays
//! its own attempts over them in log order, and writes them back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use ledger_domain::system::SystemEvent;
use ledger_domain::AccountEvent;
use serde_json::Value;
use sqlx::AnyConnection;

use super::{evidence_entry, Pending, Raised, Threshold};
use crate::db::DbError;
use crate::event::{Parsed, Payload};
use crate::rows::{self, Val};

/// Evidence kept on a signal, at most: the count in its summary stays exact.
const EVIDENCE_KEPT: usize = 100;

/// One failed password step, as the rules see it.
#[derive(Debug, Clone, PartialEq)]
struct Attempt {
    position: i64,
    at: i64,
    client: String,
    network: String,
    login: String,
    account_id: Option<String>,
    evidence: Value,
}

/// The client an address stands for and the network it belongs to: an
/// IPv4 address and its /24; for IPv6, its /64 (one customer's network, as
/// the throttle counts it) and its /48.
pub fn client_and_network(ip: &str) -> Option<(String, String)> {
    match ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some((v4.to_string(), format!("{a}.{b}.{c}.0/24")))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return client_and_network(&v4.to_string());
            }
            let s = v6.segments();
            Some((format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]), format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])))
        }
    }
}

/// The failed password step an event records: who was tried, and from where.
fn attempt(parsed: &Parsed) -> Option<Attempt> {
    let event = &parsed.event;
    let (login, account_id, client) = match &parsed.payload {
        Payload::Account(AccountEvent::PasswordRejected { client, .. }) => {
            let client = client.clone().or_else(|| parsed.meta.as_ref().and_then(|m| m.ip.clone()))?;
            (format!("account:{}", event.aggregate_id), Some(event.aggregate_id.clone()), client)
        }
        Payload::System(SystemEvent::UnknownLoginIdRejected { login_id, .. }) => {
            (login_id.clone(), None, parsed.meta.as_ref().and_then(|m| m.ip.clone())?)
        }
        _ => return None,
    };
    let (client, network) = client_and_network(&client)?;
    Some(Attempt {
        position: event.position,
        at: parsed.at.timestamp_millis(),
        client,
        network,
        login,
        account_id,
        evidence: evidence_entry(&event.aggregate_type, &event.aggregate_id, event.sequence, &event.event_type),
    })
}

/// The two rules' thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_client: Threshold,
    pub per_network: Threshold,
}

/// Which rule: its kind, its key in an attempt, its threshold.
#[derive(Clone, Copy)]
enum Scope {
    Client,
    Network,
}

impl Scope {
    fn kind(self) -> &'static str {
        match self {
            Scope::Client => "many_login_ids_from_one_client",
            Scope::Network => "many_login_ids_from_one_network",
        }
    }

    fn key(self, a: &Attempt) -> &str {
        match self {
            Scope::Client => &a.client,
            Scope::Network => &a.network,
        }
    }

    fn threshold(self, limits: &Limits) -> Threshold {
        match self {
            Scope::Client => limits.per_client,
            Scope::Network => limits.per_network,
        }
    }
}

/// The attempts of one client (or network) within its rule's window, with
/// running counts: each attempt costs the same however long the spray.
#[derive(Default)]
struct Window {
    attempts: VecDeque<Attempt>,
    logins: HashMap<String, usize>,
    clients: HashMap<String, usize>,
    accounts: HashMap<String, usize>,
}

/// Counts `key` in or out; a key counted out to zero is forgotten.
fn bump(map: &mut HashMap<String, usize>, key: &str, up: bool) {
    let n = map.entry(key.to_string()).or_insert(0);
    if up {
        *n += 1;
    } else {
        *n = n.saturating_sub(1);
    }
    if *n == 0 {
        map.remove(key);
    }
}

impl Window {
    /// Adds `a`, first letting go of what is older than `from`; whether its
    /// login ID is new to the window.
    fn add(&mut self, a: &Attempt, from: i64) -> bool {
        while self.attempts.front().is_some_and(|f| f.at < from) {
            if let Some(old) = self.attempts.pop_front() {
                self.count(&old, false);
            }
        }
        let new_login = !self.logins.contains_key(&a.login);
        self.count(a, true);
        self.attempts.push_back(a.clone());
        new_login
    }

    fn count(&mut self, a: &Attempt, up: bool) {
        bump(&mut self.logins, &a.login, up);
        bump(&mut self.clients, &a.client, up);
        if let Some(account) = &a.account_id {
            bump(&mut self.accounts, account, up);
        }
    }

    /// The first attempt of each login ID in the window, at most `n`.
    fn firsts(&self, n: usize) -> Vec<Value> {
        let mut seen = HashSet::new();
        self.attempts.iter().filter(|a| seen.insert(a.login.as_str())).take(n).map(|a| a.evidence.clone()).collect()
    }
}

/// The rules' state for one batch: the kept attempts of the networks the
/// batch touches, with the batch's own added in log order.
pub struct Stuffing {
    limits: Limits,
    /// Per rule and key (a client, a network), its window.
    windows: HashMap<(&'static str, String), Window>,
    new: Vec<Attempt>,
    /// The open signal of each `kind:key:` prefix looked up, raised or
    /// joined in this batch (none: looked up, there was none).
    open: HashMap<String, Option<String>>,
}

impl Stuffing {
    pub async fn load(conn: &mut AnyConnection, batch: &[Parsed], limits: Limits) -> Result<Stuffing, DbError> {
        let attempts: Vec<Attempt> = batch.iter().filter_map(attempt).collect();
        let mut stuffing = Stuffing { limits, windows: HashMap::new(), new: Vec::new(), open: HashMap::new() };
        if let Some(first) = attempts.iter().map(|a| a.at).min() {
            let networks: HashSet<&str> = attempts.iter().map(|a| a.network.as_str()).collect();
            for kept in load(conn, &networks, first - limits.longest_millis()).await? {
                for scope in [Scope::Client, Scope::Network] {
                    let from = kept.at - scope.threshold(&limits).window_secs * 1000;
                    stuffing.windows.entry((scope.kind(), scope.key(&kept).to_string())).or_default().add(&kept, from);
                }
            }
        }
        Ok(stuffing)
    }

    /// A signal was reviewed: later attempts raise a new one.
    pub fn closed(&mut self, signal_id: &str) {
        for id in self.open.values_mut() {
            if id.as_deref() == Some(signal_id) {
                *id = None;
            }
        }
    }

    /// The rules for one event of the batch, in log order.
    pub async fn on_event(&mut self, conn: &mut AnyConnection, parsed: &Parsed, pending: &mut Pending) -> Result<(), DbError> {
        let Some(now) = attempt(parsed) else { return Ok(()) };
        for scope in [Scope::Client, Scope::Network] {
            let t = scope.threshold(&self.limits);
            let key = scope.key(&now).to_string();
            let window = self.windows.entry((scope.kind(), key.clone())).or_default();
            let new_login = window.add(&now, now.at - t.window_secs * 1000);
            if !new_login {
                continue;
            }
            let n = window.logins.len();
            // A signal's ID goes in a URL path: a network's `/` is written `-`.
            let prefix = format!("{}:{}:", scope.kind(), key.replace('/', "-"));
            // A spray that goes on (an attempt within the window before this
            // one) joins its open signal, however long it lasts, with the
            // exact count.
            if window.attempts.len() > 1 {
                pending.write(conn).await?;
                let open = match self.open.get(&prefix) {
                    Some(known) => known.clone(),
                    None => open_signal(conn, scope.kind(), &prefix).await?,
                };
                self.open.insert(prefix.clone(), open.clone());
                if let Some(id) = open {
                    join(conn, &id, scope, &key, t, &now).await?;
                    continue;
                }
            }
            // One client alone is the client rule's.
            let spread = matches!(scope, Scope::Client) || window.clients.len() >= 2;
            if n < t.count || !spread {
                continue;
            }
            let mut accounts: Vec<String> = window.accounts.keys().cloned().collect();
            accounts.sort();
            let evidence = window.firsts(EVIDENCE_KEPT);
            let raised = scope.raised(&key, n, t.window_secs / 60);
            let id = format!("{prefix}{}", now.position);
            pending.raise(&id, &raised, now.at, &accounts, &evidence);
            let counted: Vec<Vec<Val>> = window.logins.keys().map(|l| vec![id.as_str().into(), l.as_str().into()]).collect();
            rows::insert(conn, "INSERT INTO stuffing_logins (signal_id, login)", "ON CONFLICT DO NOTHING", &counted).await?;
            self.open.insert(prefix, Some(id));
        }
        self.new.push(now);
        Ok(())
    }

    /// Keeps the batch's attempts, and only the window: what is older can
    /// no longer count.
    pub async fn finish(self, conn: &mut AnyConnection) -> Result<(), DbError> {
        let Some(last) = self.new.iter().map(|a| a.at).max() else { return Ok(()) };
        save(conn, &self.new).await?;
        sqlx::query("DELETE FROM login_attempts WHERE at < $1").bind(last - 2 * self.limits.longest_millis()).execute(&mut *conn).await?;
        Ok(())
    }
}

impl Limits {
    fn longest_millis(&self) -> i64 {
        self.per_client.window_secs.max(self.per_network.window_secs) * 1000
    }
}

impl Scope {
    fn raised(self, key: &str, n: usize, minutes: i64) -> Raised {
        let (en, ja) = match self {
            Scope::Client => (
                format!("Wrong passwords for {n} different login IDs came from one client ({key}) within {minutes} minutes: credential stuffing."),
                format!("{minutes}分以内に1つの接続元（{key}）から{n}件の異なるログインIDへの誤ったパスワードがありました（リスト型攻撃の可能性）。"),
            ),
            Scope::Network => (
                format!("Wrong passwords for {n} different login IDs came from the network {key} within {minutes} minutes: credential stuffing."),
                format!("{minutes}分以内にネットワーク {key} から{n}件の異なるログインIDへの誤ったパスワードがありました（リスト型攻撃の可能性）。"),
            ),
        };
        Raised { kind: self.kind(), severity: "high", evidence: vec![], en, ja, continues: None }
    }
}

/// The kept attempts of `networks` since `since` (their clients are in them).
async fn load(conn: &mut AnyConnection, networks: &HashSet<&str>, since: i64) -> Result<Vec<Attempt>, DbError> {
    let networks: Vec<&str> = networks.iter().copied().collect();
    let mut out = Vec::new();
    for chunk in networks.chunks(rows::LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT position, at, client, network, login, account_id, stream, stream_id, sequence, event_type FROM login_attempts
              WHERE at >= {since} AND network IN ({}) ORDER BY position",
            rows::placeholders(conn, chunk.len())
        );
        type Row = (i64, i64, String, String, String, Option<String>, String, String, i64, String);
        let mut query = sqlx::query_as::<_, Row>(&sql);
        for n in chunk {
            query = query.bind(*n);
        }
        for (position, at, client, network, login, account_id, stream, stream_id, sequence, event_type) in
            query.fetch_all(&mut *conn).await?
        {
            let evidence = evidence_entry(&stream, &stream_id, sequence, &event_type);
            out.push(Attempt { position, at, client, network, login, account_id, evidence });
        }
    }
    out.sort_by_key(|a| a.position);
    Ok(out)
}

async fn save(conn: &mut AnyConnection, attempts: &[Attempt]) -> Result<(), DbError> {
    let rows: Vec<Vec<Val>> = attempts
        .iter()
        .map(|a| {
            let e = &a.evidence;
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            vec![
                a.position.into(),
                a.at.into(),
                a.client.as_str().into(),
                a.network.as_str().into(),
                a.login.as_str().into(),
                a.account_id.clone().into(),
                text("stream").into(),
                text("stream_id").into(),
                e["sequence"].as_i64().unwrap_or_default().into(),
                text("type").into(),
            ]
        })
        .collect();
    rows::insert(
        conn,
        "INSERT INTO login_attempts (position, at, client, network, login, account_id, stream, stream_id, sequence, event_type)",
        "ON CONFLICT (position) DO NOTHING",
        &rows,
    )
    .await
}

/// The latest open signal of this kind and key, if any.
async fn open_signal(conn: &mut AnyConnection, kind: &str, prefix: &str) -> Result<Option<String>, DbError> {
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT signal_id FROM signals WHERE kind = $1 AND status = 'open' AND substr(signal_id, 1, CAST($2 AS INTEGER)) = $3
          ORDER BY raised_at DESC, signal_id DESC LIMIT 1",
    )
    .bind(kind)
    .bind(prefix.len() as i64)
    .bind(prefix)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.map(|(id,)| id))
}

/// A spray that goes on: its open signal counts the new login ID (once,
/// however long the spray), takes the attempt as evidence while it holds
/// fewer than [`EVIDENCE_KEPT`], and names the account tried, if any.
async fn join(conn: &mut AnyConnection, signal_id: &str, scope: Scope, key: &str, t: Threshold, now: &Attempt) -> Result<(), DbError> {
    let counted = vec![vec![signal_id.into(), now.login.as_str().into()]];
    rows::insert(conn, "INSERT INTO stuffing_logins (signal_id, login)", "ON CONFLICT DO NOTHING", &counted).await?;
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM stuffing_logins WHERE signal_id = $1").bind(signal_id).fetch_one(&mut *conn).await?;
    let (evidence, accounts): (String, String) =
        sqlx::query_as("SELECT evidence, accounts FROM signals WHERE signal_id = $1").bind(signal_id).fetch_one(&mut *conn).await?;
    let mut evidence: Vec<Value> = serde_json::from_str(&evidence).unwrap_or_default();
    if evidence.len() < EVIDENCE_KEPT && !evidence.contains(&now.evidence) {
        evidence.push(now.evidence.clone());
    }
    let mut accounts: Vec<String> = serde_json::from_str(&accounts).unwrap_or_default();
    if let Some(account) = now.account_id.as_ref().filter(|a| !accounts.contains(a)) {
        accounts.push(account.clone());
        accounts.sort();
        let row = vec![vec![signal_id.into(), account.as_str().into()]];
        rows::insert(conn, "INSERT INTO signal_accounts (signal_id, account_id)", "ON CONFLICT DO NOTHING", &row).await?;
    }
    let raised = scope.raised(key, n as usize, t.window_secs / 60);
    sqlx::query("UPDATE signals SET evidence = $2, summary_en = $3, summary_ja = $4, accounts = $5 WHERE signal_id = $1")
        .bind(signal_id)
        .bind(Value::from(evidence).to_string())
        .bind(&raised.en)
        .bind(&raised.ja)
        .bind(Value::from(accounts).to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::client_and_network;

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_a_network_a_slash_24_or_slash_48() {
        let pair = |c: &str, n: &str| Some((c.to_string(), n.to_string()));
        assert_eq!(client_and_network("192.0.2.77"), pair("192.0.2.77", "192.0.2.0/24"));
        assert_eq!(client_and_network("2001:db8:1:2:aaaa::1"), pair("2001:db8:1:2::/64", "2001:db8:1::/48"));
        assert_eq!(client_and_network("::ffff:198.51.100.9"), pair("198.51.100.9", "198.51.100.0/24"));
        assert_eq!(client_and_network("not an address"), None);
    }
}
