//! Signed checkpoints of the trail's Merkle tree: the C2SP
//! `tlog-checkpoint` text (origin, tree size, base64 root) in a C2SP
//! `signed-note`, signed with Ed25519 by the log's key. An auditor who holds
//! the verifier key ([`LogKey::verifier_key`]) and a checkpoint can check
//! any row's inclusion proof and any later tree's consistency proof
//! without trusting the ledger (`docs/audit-proofs.md`).

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::db::DbError;
use crate::merkle::{self, Hash};
use crate::timestamp::{self, Stamp};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The signed-note signature type of Ed25519.
const ED25519_TYPE: u8 = 0x01;

/// What a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub origin: String,
    pub tree_size: u64,
    pub root: Hash,
}

impl Statement {
    /// The checkpoint's text: three lines, each ending in a newline.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.tree_size, merkle::encode(&self.root))
    }

    /// The statement of a checkpoint's text (extension lines ignored).
    pub fn parse(text: &str) -> Result<Statement, String> {
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|l| !l.is_empty()).ok_or("the checkpoint has no origin line")?;
        let tree_size = lines.next().and_then(|l| l.parse().ok()).ok_or("the checkpoint's second line is not a tree size")?;
        let root = lines.next().and_then(merkle::decode).ok_or("the checkpoint's third line is not a base64 SHA-256 root hash")?;
        Ok(Statement { origin: origin.to_string(), tree_size, root })
    }
}

fn key_id(name: &str, public: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_TYPE]);
    h.update(public);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The log's signing key. Its name is the log's origin.
pub struct LogKey {
    name: String,
    pair: Ed25519KeyPair,
    id: [u8; 4],
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey").field("name", &self.name).field("key", &"[REDACTED]").finish()
    }
}

impl LogKey {
    /// The key of `seed` (32 secret bytes), named `origin`.
    pub fn new(origin: &str, seed: &[u8; 32]) -> Result<LogKey, String> {
        if origin.is_empty() || origin.contains(char::is_whitespace) || origin.contains('+') {
            return Err(format!("the log origin {origin:?} must be one word without '+' (e.g. example.co.jp/passkey-ledger)"));
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|e| e.to_string())?;
        let id = key_id(origin, pair.public_key().as_ref());
        Ok(LogKey { name: origin.to_string(), pair, id })
    }

    pub fn origin(&self) -> &str {
        &self.name
    }

    /// `<name>+<key ID, hex>+<base64 of 0x01 || public key>`: what an
    /// auditor needs to check the checkpoints.
    pub fn verifier_key(&self) -> String {
        let mut key = vec![ED25519_TYPE];
        key.extend_from_slice(self.pair.public_key().as_ref());
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(key))
    }

    /// The verifier of this key's notes.
    pub fn verifier(&self) -> Verifier {
        Verifier { name: self.name.clone(), id: self.id, public: self.pair.public_key().as_ref().to_vec() }
    }

    /// The signed note of `statement`.
    pub fn sign(&self, statement: &Statement) -> String {
        let text = statement.text();
        let mut signature = self.id.to_vec();
        signature.extend_from_slice(self.pair.sign(text.as_bytes()).as_ref());
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(signature))
    }
}

/// A verifier key, parsed.
#[derive(Debug, Clone)]
pub struct Verifier {
    name: String,
    id: [u8; 4],
    public: Vec<u8>,
}

impl Verifier {
    pub fn parse(key: &str) -> Result<Verifier, String> {
        let mut parts = key.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(public)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("a verifier key is <name>+<key ID>+<key>".into());
        };
        let id: [u8; 4] = hex::decode(id).ok().and_then(|b| b.try_into().ok()).ok_or("the key ID is not 8 hex digits")?;
        let key = B64.decode(public).map_err(|_| "the key is not base64")?;
        let [ED25519_TYPE, public @ ..] = key.as_slice() else { return Err("not an Ed25519 verifier key".into()) };
        if public.len() != 32 || key_id(name, public) != id {
            return Err("the key ID does not match the key".into());
        }
        Ok(Verifier { name: name.to_string(), id, public: public.to_vec() })
    }

    /// The statement of `note` when this key signed it.
    pub fn open(&self, note: &str) -> Result<Statement, String> {
        let (text, signatures) = note.split_once("\n\n").ok_or("not a signed note (no blank line before the signatures)")?;
        let text = format!("{text}\n");
        let prefix = format!("\u{2014} {} ", self.name);
        for line in signatures.lines() {
            let Some(sig) = line.strip_prefix(&prefix).and_then(|b| B64.decode(b).ok()) else { continue };
            if sig.len() == 68 && sig[..4] == self.id {
                UnparsedPublicKey::new(&ED25519, &self.public)
                    .verify(text.as_bytes(), &sig[4..])
                    .map_err(|_| "the signature does not verify: the checkpoint was altered or signed by another key")?;
                let statement = Statement::parse(&text)?;
                if statement.origin != self.name {
                    return Err(format!("a checkpoint of another log ({}), not of {}", statement.origin, self.name));
                }
                return Ok(statement);
            }
        }
        Err(format!("the note carries no signature of {} (another log's checkpoint, or a file changed in transit)", self.name))
    }
}

/// A checkpoint the ledger signed, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Stored {
    pub tree_size: i64,
    /// Base64.
    pub root_hash: String,
    /// The signed note, exactly: what an auditor keeps and checks (the
    /// other fields are the ledger's index of it).
    pub note: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// What the RFC 3161 timestamp of the note states (checked when it was
    /// fetched; `ledger audit verify` checks it again); `None` while the
    /// checkpoint has none.
    pub timestamp: Option<Stamp>,
}

type Row = (i64, String, String, i64, Option<String>);

fn stored((tree_size, root_hash, note, created_at, reply): Row) -> Stored {
    let timestamp = reply.and_then(|r| B64.decode(r).ok()).and_then(|r| timestamp::inspect(&r).ok());
    Stored { tree_size, root_hash, note, created_at: crate::from_millis(created_at), timestamp }
}

const COLUMNS: &str = "tree_size, root_hash, note, created_at, timestamp_reply";

/// The checkpoints without a timestamp, newest first, at most `limit`:
/// `(tree_size, note)`.
pub async fn unstamped(pool: &AnyPool, limit: i64) -> Result<Vec<(i64, String)>, DbError> {
    Ok(sqlx::query_as("SELECT tree_size, note FROM audit_checkpoints WHERE timestamp_reply IS NULL ORDER BY tree_size DESC LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// Keeps a checkpoint's RFC 3161 time-stamp reply (DER); a checkpoint
/// already stamped keeps its first.
pub async fn stamp(pool: &AnyPool, tree_size: i64, reply: &[u8]) -> Result<(), DbError> {
    sqlx::query("UPDATE audit_checkpoints SET timestamp_reply = $1 WHERE tree_size = $2 AND timestamp_reply IS NULL")
        .bind(B64.encode(reply))
        .bind(tree_size)
        .execute(pool)
        .await?;
    Ok(())
}

/// A checkpoint's time-stamp reply (DER): `None` when there is no such
/// checkpoint, `Some(None)` when it has no timestamp.
pub async fn timestamp_reply(pool: &AnyPool, tree_size: i64) -> Result<Option<Option<Vec<u8>>>, DbError> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT timestamp_reply FROM audit_checkpoints WHERE tree_size = $1").bind(tree_size).fetch_optional(pool).await?;
    row.map(|(reply,)| {
        reply.map(|r| B64.decode(r).map_err(|_| DbError::Corrupt(format!("checkpoint {tree_size}'s timestamp is not base64")))).transpose()
    })
    .transpose()
}

/// Every timestamped checkpoint's tree size, note and reply (DER, or the
/// reason it does not decode), ascending: what `verify` checks.
pub async fn stamped(pool: &AnyPool) -> Result<Vec<(i64, String, Result<Vec<u8>, String>)>, DbError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT tree_size, note, timestamp_reply FROM audit_checkpoints WHERE timestamp_reply IS NOT NULL ORDER BY tree_size",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(size, note, reply)| (size, note, B64.decode(reply).map_err(|_| "the stored timestamp is not base64".to_string())))
        .collect())
}

/// The newest checkpoint.
pub async fn latest(pool: &AnyPool) -> Result<Option<Stored>, DbError> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")).fetch_optional(pool).await?;
    Ok(row.map(stored))
}

/// The checkpoint of a tree size.
pub async fn of_size(pool: &AnyPool, tree_size: i64) -> Result<Option<Stored>, DbError> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit_checkpoints WHERE tree_size = $1"))
        .bind(tree_size)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(stored))
}

/// Checkpoints with tree sizes `from ..= to`, oldest first, at most `limit`.
pub async fn list(pool: &AnyPool, from: i64, to: i64, limit: i64) -> Result<Vec<Stored>, DbError> {
    let rows: Vec<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit_checkpoints WHERE tree_size BETWEEN $1 AND $2 ORDER BY tree_size LIMIT $3"))
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(stored).collect())
}

/// Every stored checkpoint's tree size and the root its signed note states
/// (`None` when the note does not open with `verifier` or names another
/// size: the checkpoint table was edited), ascending: what `verify` checks.
/// Only the signed note counts; the `root_hash` column is an index.
pub async fn signed_roots(pool: &AnyPool, verifier: &Verifier) -> Result<Vec<(i64, Option<Hash>)>, DbError> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT tree_size, note FROM audit_checkpoints ORDER BY tree_size").fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(size, note)| {
            let root = verifier.open(&note).ok().filter(|s| s.tree_size as i64 == size).map(|s| s.root);
            (size, root)
        })
        .collect())
}

/// What checking the stored timestamps found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TimestampCheck {
    /// Checked against the trusted certificates.
    pub checked: u64,
    /// Only checked to be over their own note (no trusted certificates).
    pub unchecked: u64,
    /// Checkpoints without a timestamp.
    pub missing: u64,
    /// The first bad timestamp's checkpoint and why.
    pub problem: Option<(i64, String)>,
}

/// Checks every stored timestamp: against `trust` when given, otherwise
/// only that it is a granted token over its own checkpoint's note.
pub async fn verify_timestamps(pool: &AnyPool, trust: Option<&timestamp::Trust>) -> Result<TimestampCheck, DbError> {
    let (missing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_checkpoints WHERE timestamp_reply IS NULL").fetch_one(pool).await?;
    let mut check = TimestampCheck { missing: missing as u64, ..Default::default() };
    for (size, note, reply) in stamped(pool).await? {
        let verdict = reply.and_then(|reply| match trust {
            Some(trust) => timestamp::verify(&reply, &note, trust),
            None => timestamp::over(&reply, &note),
        });
        match verdict {
            Ok(_) if trust.is_some() => check.checked += 1,
            Ok(_) => check.unchecked += 1,
            Err(why) => {
                check.problem = Some((size, why));
                break;
            }
        }
    }
    Ok(check)
}

/// The tree's size now: the trail's rows that are leaves (0 before the
/// first batch after an upgrade has planted the tree).
pub async fn tree_size(pool: &AnyPool) -> Result<u64, DbError> {
    let last: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT audit_position, leaf_hash FROM audit_trail ORDER BY audit_position DESC LIMIT 1")
            .fetch_optional(pool)
            .await?;
    Ok(match last {
        Some((size, Some(_))) => size as u64,
        _ => 0,
    })
}

/// What [`make`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Made {
    /// A new checkpoint of a grown tree.
    New(Stored),
    /// The tree has not grown since the newest checkpoint.
    Unchanged(Stored),
    /// The tree is empty and no checkpoint was ever made.
    Empty,
}

/// Signs the tree as it is now when it has grown since the newest
/// checkpoint. Refuses to sign a tree that is not an extension of the
/// newest checkpoint (the trail was rewritten or cut): that is an alarm,
/// never a new statement.
pub async fn make(pool: &AnyPool, key: &LogKey) -> Result<Made, DbError> {
    let size = tree_size(pool).await?;
    let latest = latest(pool).await?;
    let mut conn = pool.acquire().await?;
    let mut tree = merkle::Reader::new(&mut conn);
    if let Some(latest) = &latest {
        let signed = latest.tree_size as u64;
        let Some(stated) = key.verifier().open(&latest.note).ok().filter(|s| s.tree_size == signed) else {
            return Err(DbError::Refused(format!(
                "the newest checkpoint (tree size {signed}) does not carry this log's signature: the checkpoint table was edited, or the secret key changed; not signing (run ledger audit verify)"
            )));
        };
        if size < signed {
            return Err(DbError::Refused(format!(
                "the audit trail has {size} rows, fewer than the {signed} of the newest checkpoint: not signing (a rebuild in place may be running; otherwise run ledger audit verify)"
            )));
        }
        if stated.root != tree.root(signed).await? {
            return Err(DbError::Refused(format!(
                "the first {signed} rows of the audit trail no longer have the root of the newest checkpoint: not signing; run ledger audit verify"
            )));
        }
        if size == signed {
            return Ok(Made::Unchanged(latest.clone()));
        }
    }
    if size == 0 {
        return Ok(Made::Empty);
    }
    let statement = Statement { origin: key.origin().to_string(), tree_size: size, root: tree.root(size).await? };
    drop(conn);
    let note = key.sign(&statement);
    let now = chrono::Utc::now().timestamp_millis();
    // Two instances signing the same tree write the same note (Ed25519 is
    // deterministic): the second insert does nothing.
    sqlx::query(
        "INSERT INTO audit_checkpoints (tree_size, root_hash, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING",
    )
    .bind(size as i64)
    .bind(merkle::encode(&statement.root))
    .bind(&note)
    .bind(now)
    .execute(pool)
    .await?;
    let made = of_size(pool, size as i64).await?.ok_or_else(|| DbError::Corrupt("the checkpoint just written is gone".into()))?;
    Ok(Made::New(made))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LogKey {
        LogKey::new("example.co.jp/passkey-ledger", &[7u8; 32]).unwrap()
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_verifier_key_and_not_when_altered() {
        let key = key();
        let statement = Statement { origin: key.origin().into(), tree_size: 42, root: merkle::leaf_hash(b"x") };
        let note = key.sign(&statement);
        let lines: Vec<&str> = note.lines().collect();
        assert_eq!(lines[0], "example.co.jp/passkey-ledger");
        assert_eq!(lines[1], "42");
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} example.co.jp/passkey-ledger "), "{note}");
        let verifier = Verifier::parse(&key.verifier_key()).unwrap();
        assert_eq!(verifier.open(&note).unwrap(), statement);
        let altered = note.replacen("\n42\n", "\n43\n", 1);
        assert!(verifier.open(&altered).unwrap_err().contains("does not verify"));
        let other = LogKey::new("example.co.jp/passkey-ledger", &[8u8; 32]).unwrap();
        assert!(Verifier::parse(&other.verifier_key()).unwrap().open(&note).is_err());
    }

    #[test]
    fn the_verifier_key_names_the_key_by_its_id() {
        let vkey = key().verifier_key();
        let parts: Vec<&str> = vkey.split('+').collect();
        assert_eq!(parts[0], "example.co.jp/passkey-ledger");
        assert_eq!(parts[1].len(), 8);
        let tampered = format!("{}+00000000+{}", parts[0], parts[2]);
        assert!(Verifier::parse(&tampered).is_err());
        assert!(LogKey::new("two words", &[1; 32]).is_err());
    }
}
