//! The audit trail: every event of every stream in global order, with who,
//! how, from where and a readable line, each row chained to the previous
//! one by a SHA-256 over a canonical encoding of the event. `verify`
//! recomputes everything from the stored event and the source log and
//! reports the first row that does not agree.

use ledger_domain::account::{describe, Line};
use ledger_domain::staff::describe_staff;
use ledger_domain::system::describe_system;
use ledger_domain::EventMetadata;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::{Backend, DbError};
use crate::event::{Parsed, Payload};
use crate::merkle;
use crate::rows::{self, Val};

/// The trail's indexes for the audit filters (account, type, time). A
/// rebuild drops them and builds each once at the end: sorting millions of
/// rows once is far cheaper than keeping three indexes current row by row.
/// The unique index on the event stays: the signals read each account's
/// recent rows through it while a rebuild runs (without it each batch scans
/// the whole trail).
pub const FILTER_INDEXES: &[(&str, &str)] = &[
    ("audit_trail_account", "audit_trail (account_id, audit_position)"),
    ("audit_trail_type", "audit_trail (event_type, audit_position)"),
    ("audit_trail_at", "audit_trail (at)"),
];

/// Builds the filter indexes that are missing (after a rebuild, or one
/// that was interrupted).
pub async fn ensure_filter_indexes(pool: &AnyPool) -> Result<(), DbError> {
    for (name, on) in FILTER_INDEXES {
        sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}")).execute(pool).await?;
    }
    Ok(())
}

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// JSON with object keys sorted and no whitespace: the same bytes whichever
/// database stored the event (PostgreSQL's jsonb reorders keys). It is the
/// JSON Canonicalization Scheme (RFC 8785) for the values events hold:
/// keys in the order of their UTF-16 code units, strings escaped as
/// ECMAScript does, integers in full and an integral float without its
/// fraction (events hold no other numbers); `docs/audit-proofs.md`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    // Only JSON text was written: valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// The largest integer an ECMAScript number holds exactly (2^53 - 1).
const MAX_EXACT: u64 = (1 << 53) - 1;

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        // serde_json's map (without its `preserve_order` feature) is a
        // BTreeMap: its keys come in the order of their UTF-8 bytes, which
        // is the order of their UTF-16 code units but where a key holds a
        // character from U+E000 up.
        Value::Object(map) => {
            out.push(b'{');
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if !map.keys().all(|k| k.is_ascii()) {
                entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // An integer beyond ECMAScript's exact range as ECMAScript writes
        // it (the nearest double, in full: 9223372036854776000).
        Value::Number(n) if n.as_i64().map_or(n.is_u64(), |i| i.unsigned_abs() > MAX_EXACT) => {
            out.extend_from_slice(format!("{}", n.as_f64().unwrap_or_default()).as_bytes());
        }
        // An integral float as ECMAScript writes it (1, not 1.0).
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e21) && !(n.is_i64() || n.is_u64()) => {
            let f = n.as_f64().unwrap_or_default();
            out.extend_from_slice(if f == 0.0 { "0".to_string() } else { format!("{f:.0}") }.as_bytes());
        }
        // serde_json's own text, as `Value::to_string` writes it.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// The canonical encoding of one event, as hashed.
pub fn canonical_event(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    version: &str,
    payload: &Value,
    metadata: &Value,
) -> String {
    canonical_parts(aggregate_type, aggregate_id, sequence, event_type, version, &canonical_json(payload), &canonical_json(metadata))
}

/// [`canonical_event`] from the payload and metadata already in canonical
/// form: the object's keys written in their sorted order.
fn canonical_parts(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    version: &str,
    payload: &str,
    metadata: &str,
) -> String {
    let mut out = Vec::with_capacity(payload.len() + metadata.len() + 200);
    out.extend_from_slice(b"{\"aggregate_id\":");
    write_string(aggregate_id, &mut out);
    out.extend_from_slice(b",\"aggregate_type\":");
    write_string(aggregate_type, &mut out);
    out.extend_from_slice(b",\"event_type\":");
    write_string(event_type, &mut out);
    out.extend_from_slice(b",\"event_version\":");
    write_string(version, &mut out);
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(metadata.as_bytes());
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(b",\"sequence\":");
    out.extend_from_slice(sequence.to_string().as_bytes());
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// `hash(n) = SHA-256(hash(n-1) | n | canonical event)`, hex.
pub fn chain_hash(prev: &str, position: i64, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"|");
    h.update(position.to_string().as_bytes());
    h.update(b"|");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// What a row says beyond the event itself, derived from it.
#[derive(Debug, Clone, PartialEq)]
struct Derived {
    account_id: Option<String>,
    at: i64,
    actor: String,
    actor_kind: String,
    channel: String,
    ip: String,
    user_agent: String,
    line: Line,
    staff_id: Option<String>,
}

fn derive(aggregate_type: &str, aggregate_id: &str, payload: &Payload, meta: Option<&EventMetadata>) -> Derived {
    let text = |f: fn(&EventMetadata) -> &Option<String>| meta.and_then(|m| f(m).clone()).unwrap_or_default();
    let actor = meta.map(|m| m.actor.clone()).unwrap_or_else(|| "system".to_string());
    let actor_kind = meta.map(EventMetadata::actor_kind).unwrap_or("system").to_string();
    let line = match payload {
        Payload::Account(e) => describe(e),
        Payload::Staff(e) => describe_staff(e),
        Payload::System(e) => describe_system(e),
        Payload::Unreadable(_) => Line { en: "Unreadable event.".into(), ja: "読み取れないイベントです。".into() },
    };
    let at = meta.map(|m| m.at.timestamp_millis()).unwrap_or(0);
    Derived {
        account_id: (aggregate_type == "account").then(|| aggregate_id.to_string()),
        at,
        actor,
        actor_kind,
        channel: text(|m| &m.channel),
        ip: text(|m| &m.ip),
        user_agent: text(|m| &m.user_agent),
        line,
        staff_id: meta.and_then(EventMetadata::staff_member).map(str::to_string),
    }
}

/// An event's row of the trail before it is chained: everything but its
/// place and its hashes. Preparing is most of the trail's work and needs
/// no other row, so a rebuild prepares the next batch while the previous
/// one is written.
pub struct Prepared {
    /// The canonical encoding the chain hashes.
    encoded: String,
    /// The row's columns from `aggregate_type` to `metadata`.
    values: Vec<Val>,
}

/// Prepares an event's row.
pub fn prepare(parsed: &Parsed) -> Prepared {
    let event = &parsed.event;
    let payload = canonical_json(&event.payload);
    let metadata = canonical_json(&event.metadata);
    let encoded = canonical_parts(
        &event.aggregate_type,
        &event.aggregate_id,
        event.sequence,
        &event.event_type,
        &event.event_version,
        &payload,
        &metadata,
    );
    let d = derive(&event.aggregate_type, &event.aggregate_id, &parsed.payload, parsed.meta.as_ref());
    let values = vec![
        event.aggregate_type.as_str().into(),
        event.aggregate_id.as_str().into(),
        event.sequence.into(),
        event.event_type.as_str().into(),
        event.event_version.as_str().into(),
        d.at.into(),
        d.account_id.into(),
        d.actor.into(),
        d.actor_kind.into(),
        d.channel.into(),
        d.ip.into(),
        d.user_agent.into(),
        d.line.en.into(),
        d.line.ja.into(),
        payload.into(),
        metadata.into(),
        d.staff_id.into(),
    ];
    Prepared { encoded, values }
}

/// Appends prepared rows to the trail, in order, chained to the last row
/// and added to the Merkle tree, with multi-row inserts, inside the
/// projector's transaction.
pub async fn append(conn: &mut AnyConnection, batch: Vec<Prepared>) -> Result<(), DbError> {
    let last: Option<(i64, String, Option<String>)> =
        sqlx::query_as("SELECT audit_position, hash, leaf_hash FROM audit_trail ORDER BY audit_position DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (mut position, mut prev) = match last {
        Some((p, h, leaf)) => {
            if leaf.is_none() {
                plant_the_tree(conn, p).await?;
            }
            (p, h)
        }
        None => (0, GENESIS.to_string()),
    };
    let size = position as u64;
    let mut leaves = Vec::with_capacity(batch.len());
    let mut rows = Vec::with_capacity(batch.len());
    let mut counts: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for Prepared { encoded, values } in batch {
        if let Some(Val::Text(event_type)) = values.get(3) {
            *counts.entry(event_type.clone()).or_default() += 1;
        }
        position += 1;
        let hash = chain_hash(&prev, position, &encoded);
        let leaf = merkle::leaf_hash(encoded.as_bytes());
        let mut row = Vec::with_capacity(values.len() + 4);
        row.push(Val::Int(position));
        row.extend(values);
        row.push(Val::Text(std::mem::replace(&mut prev, hash.clone())));
        row.push(hash.into());
        row.push(merkle::encode(&leaf).into());
        leaves.push(leaf);
        rows.push(row);
    }
    rows::insert(
        conn,
        "INSERT INTO audit_trail (audit_position, aggregate_type, aggregate_id, sequence, event_type, event_version, at,
                                  account_id, actor, actor_kind, channel, ip, user_agent, line_en, line_ja, payload, metadata,
                                  staff_id, prev_hash, hash, leaf_hash)",
        "",
        &rows,
    )
    .await?;
    merkle::extend(conn, size, leaves).await?;
    let counts: Vec<Vec<Val>> = counts.into_iter().map(|(event_type, n)| vec![event_type.into(), n.into()]).collect();
    rows::insert(
        conn,
        "INSERT INTO event_counts (event_type, n)",
        "ON CONFLICT (event_type) DO UPDATE SET n = event_counts.n + excluded.n",
        &counts,
    )
    .await
}

/// Plants the Merkle tree over the rows up to `last` when the newest row
/// has no leaf hash: once, in the first batch after the upgrade that made
/// the trail a tree (or after rows were written past the projector). Rows
/// without a leaf hash get theirs from their event; the stored subtrees are
/// made again from all the leaves.
async fn plant_the_tree(conn: &mut AnyConnection, last: i64) -> Result<(), DbError> {
    tracing::info!(rows = last, "building the audit trail's Merkle tree over rows written without their leaf hash");
    sqlx::query("DELETE FROM merkle_nodes").execute(&mut *conn).await?;
    let mut after = 0i64;
    while after < last {
        let rows = sqlx::query(
            "SELECT audit_position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, leaf_hash
               FROM audit_trail WHERE audit_position > $1 AND audit_position <= $2 ORDER BY audit_position LIMIT 5000",
        )
        .bind(after)
        .bind(last)
        .fetch_all(&mut *conn)
        .await?;
        let mut leaves = Vec::with_capacity(rows.len());
        for r in &rows {
            let position: i64 = r.try_get("audit_position")?;
            if position != after + 1 + leaves.len() as i64 {
                return Err(DbError::Corrupt(format!(
                    "the audit trail lacks row {}: run ledger audit verify",
                    after + 1 + leaves.len() as i64
                )));
            }
            if let Some(leaf) = r.try_get::<Option<String>, _>("leaf_hash")?.as_deref().and_then(merkle::decode) {
                leaves.push(leaf);
                continue;
            }
            let payload: Value = serde_json::from_str(&r.try_get::<String, _>("payload")?).unwrap_or(Value::Null);
            let metadata: Value = serde_json::from_str(&r.try_get::<String, _>("metadata")?).unwrap_or(Value::Null);
            let encoded = canonical_event(
                &r.try_get::<String, _>("aggregate_type")?,
                &r.try_get::<String, _>("aggregate_id")?,
                r.try_get("sequence")?,
                &r.try_get::<String, _>("event_type")?,
                &r.try_get::<String, _>("event_version")?,
                &payload,
                &metadata,
            );
            let leaf = merkle::leaf_hash(encoded.as_bytes());
            sqlx::query("UPDATE audit_trail SET leaf_hash = $1 WHERE audit_position = $2")
                .bind(merkle::encode(&leaf))
                .bind(position)
                .execute(&mut *conn)
                .await?;
            leaves.push(leaf);
        }
        let Some(n) = (!leaves.is_empty()).then_some(leaves.len() as i64) else { break };
        merkle::extend(conn, after as u64, leaves).await?;
        after += n;
        tracing::info!(rows = after, of = last, "Merkle tree: leaves planted");
    }
    Ok(())
}

/// Events in the trail by type, as the projector counted them.
pub async fn counts(pool: &AnyPool) -> Result<Vec<(String, i64)>, DbError> {
    Ok(sqlx::query_as("SELECT event_type, n FROM event_counts ORDER BY event_type").fetch_all(pool).await?)
}

/// One row of the trail as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditRow {
    /// The event's ID: the same for the same event wherever it goes (the
    /// streams' CloudEvents `id` and `Nats-Msg-Id`), see [`event_id`].
    pub event_id: String,
    pub position: i64,
    /// When, in Japan time (`2026-11-24T02:17:37.000+09:00`).
    #[serde(serialize_with = "ledger_domain::japan::serialize")]
    pub at: chrono::DateTime<chrono::Utc>,
    /// The same instant in UTC, as the trail keeps it.
    pub at_utc: chrono::DateTime<chrono::Utc>,
    pub account_id: Option<String>,
    /// The account's login ID (what the customer and support know it by).
    pub login_id: Option<String>,
    pub stream: String,
    pub stream_id: String,
    pub sequence: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's schema version.
    pub event_version: String,
    pub actor: String,
    pub actor_kind: String,
    pub actor_name: Option<String>,
    pub channel: String,
    pub ip: String,
    pub user_agent: String,
    /// The request the event came from (`X-Request-Id`), to find it in the logs.
    pub request_id: Option<String>,
    #[schema(value_type = crate::read_models::Summary)]
    pub line: Line,
    #[schema(value_type = Object)]
    pub event: Value,
    /// The event's metadata as stored (who, when, how, from where).
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub hash: String,
    /// The row's leaf in the trail's Merkle tree: `position - 1`.
    pub leaf_index: i64,
    /// `SHA-256(0x00 || canonical event)`, base64 (`docs/audit-proofs.md`).
    pub leaf_hash: Option<String>,
}

fn audit_row(r: &AnyRow) -> Result<AuditRow, DbError> {
    let payload: String = r.try_get("payload")?;
    let metadata: String = r.try_get("metadata")?;
    let metadata: Value = serde_json::from_str(&metadata).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let request_id = metadata.get("request_id").and_then(Value::as_str).map(str::to_string).filter(|id| !id.is_empty());
    let (stream, stream_id, sequence): (String, String, i64) =
        (r.try_get("aggregate_type")?, r.try_get("aggregate_id")?, r.try_get("sequence")?);
    Ok(AuditRow {
        event_id: event_id(&stream, &stream_id, sequence),
        position: r.try_get("audit_position")?,
        at: crate::from_millis(r.try_get("at")?),
        at_utc: crate::from_millis(r.try_get("at")?),
        account_id: r.try_get("account_id")?,
        login_id: r.try_get("login_id")?,
        stream,
        stream_id,
        sequence,
        event_type: r.try_get("event_type")?,
        event_version: r.try_get("event_version")?,
        actor: r.try_get("actor")?,
        actor_kind: r.try_get("actor_kind")?,
        actor_name: r.try_get("actor_name")?,
        channel: r.try_get("channel")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        request_id,
        line: Line { en: r.try_get("line_en")?, ja: r.try_get("line_ja")? },
        event: serde_json::from_str(&payload).map_err(|e| DbError::Corrupt(e.to_string()))?,
        metadata,
        hash: r.try_get("hash")?,
        leaf_index: r.try_get::<i64, _>("audit_position")? - 1,
        leaf_hash: r.try_get("leaf_hash")?,
    })
}

/// An event's ID: a UUID (version 8, RFC 9562) made from the SHA-256 of
/// its stream, stream ID and sequence, so that it is the same for the same
/// event in every copy, after a rebuild and after a restore.
pub fn event_id(stream: &str, stream_id: &str, sequence: i64) -> String {
    let digest = Sha256::digest(format!("passkey-ledger event\0{stream}\0{stream_id}\0{sequence}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The audit filters of API.md. `actor` is `customer`, `core_system`,
/// `system`, `staff` (any staff member) or `staff:<id>`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize)]
pub struct AuditFilter {
    pub account_id: Option<String>,
    /// Any of these event types (all when empty).
    #[serde(rename = "type", default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    pub actor: Option<String>,
    pub channel: Option<String>,
    /// Inclusive, milliseconds since the epoch.
    pub from: Option<i64>,
    /// Exclusive, milliseconds since the epoch.
    pub to: Option<i64>,
    /// The last position (inclusive): a subscription's batch under way.
    #[serde(skip)]
    pub through: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// Rows after `after` (a position), oldest first, at most `limit`.
pub async fn query(pool: &AnyPool, filter: &AuditFilter, after: i64, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    let mut sql = String::from(
        "SELECT a.*, s.name AS actor_name, sa.login_id AS login_id FROM audit_trail a
           LEFT JOIN staff s ON s.staff_id = COALESCE(a.staff_id, CASE WHEN a.actor_kind = 'staff' THEN substr(a.actor, 7) END)
           LEFT JOIN status_accounts sa ON sa.account_id = a.account_id
          WHERE a.audit_position > $1",
    );
    let mut binds = vec![Bind::Int(after)];
    if !filter.event_types.is_empty() {
        let mut list = Vec::new();
        for name in &filter.event_types {
            binds.push(Bind::Text(name.clone()));
            list.push(format!("${}", binds.len()));
        }
        sql.push_str(&format!(" AND a.event_type IN ({})", list.join(", ")));
    }
    let mut push = |clause: &str, bind: Bind| {
        binds.push(bind);
        sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
    };
    if let Some(v) = &filter.account_id {
        push(" AND a.account_id = ?", Bind::Text(v.clone()));
    }
    match filter.actor.as_deref() {
        Some("staff") => push(" AND a.actor_kind = ?", Bind::Text("staff".into())),
        // A staff member's own acts, and the core system's calls made
        // through their token.
        Some(v) if v.starts_with("staff:") => push(" AND (a.actor = ? OR a.staff_id = substr(?, 7))", Bind::Text(v.to_string())),
        Some(v) => push(" AND a.actor = ?", Bind::Text(v.to_string())),
        None => {}
    }
    if let Some(v) = &filter.channel {
        push(" AND a.channel = ?", Bind::Text(v.clone()));
    }
    if let Some(v) = filter.from {
        push(" AND a.at >= ?", Bind::Int(v));
    }
    if let Some(v) = filter.to {
        push(" AND a.at < ?", Bind::Int(v));
    }
    if let Some(v) = filter.through {
        push(" AND a.audit_position <= ?", Bind::Int(v));
    }
    binds.push(Bind::Int(limit));
    sql.push_str(&format!(" ORDER BY a.audit_position LIMIT ${}", binds.len()));
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    q.fetch_all(pool).await?.iter().map(audit_row).collect()
}

/// How many rows match `filter`.
pub async fn count(pool: &AnyPool, filter: &AuditFilter) -> Result<u64, DbError> {
    let mut n = 0u64;
    let mut after = 0;
    // Counted by walking positions only, with the same filter code as the
    // export, so the progress total always matches what is written.
    loop {
        let rows = query(pool, filter, after, 5000).await?;
        n += rows.len() as u64;
        match rows.last() {
            Some(last) if rows.len() == 5000 => after = last.position,
            _ => return Ok(n),
        }
    }
}

/// The newest row's position and hash: what to anchor outside the system.
pub async fn head(pool: &AnyPool) -> Result<Option<(i64, String)>, DbError> {
    Ok(sqlx::query_as("SELECT audit_position, hash FROM audit_trail ORDER BY audit_position DESC LIMIT 1").fetch_optional(pool).await?)
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Verification {
    pub ok: bool,
    pub checked: u64,
    pub first_bad_position: Option<i64>,
    /// Why the first bad row is bad.
    pub problem: Option<String>,
    pub head_position: Option<i64>,
    pub head_hash: Option<String>,
    /// The Merkle tree's root over every row checked, base64.
    pub merkle_root: Option<String>,
    /// Stored checkpoints whose root the rows reproduced.
    pub checkpoints_checked: u64,
    /// Checkpoint timestamps checked against `LEDGER_TSA_CA_FILE`.
    pub timestamps_checked: u64,
    /// Checkpoint timestamps only checked to be over their note, for want
    /// of `LEDGER_TSA_CA_FILE`.
    pub timestamps_unchecked: u64,
    /// Checkpoints without a timestamp (all of them when no time-stamp
    /// authority is configured; otherwise ones it has not stamped yet, or
    /// whose stamp was removed).
    pub timestamps_missing: u64,
}

/// Walks the whole trail: positions must run 1, 2, 3 ... without gaps;
/// each row's hash must follow from the previous hash and the row's own
/// event; the event must be the one in the source log, unchanged; the
/// derived columns must follow from it; the trail must hold at least the
/// `applied` events the projector has taken (so rows cut off the end are
/// found); each row's leaf hash must be its event's, every stored subtree
/// what the leaves make, and the root of the first `tree_size` rows the
/// root each of the `checkpoints` states (`(tree_size, root)` ascending, the
/// root as its signed note states it: `None` for a note that does not
/// carry the log's signature). `progress` is called with the rows checked
/// so far.
pub async fn verify(
    pool: &AnyPool,
    backend: Backend,
    applied: i64,
    checkpoints: &[(i64, Option<merkle::Hash>)],
    mut progress: impl FnMut(u64),
) -> Result<Verification, DbError> {
    let source = match backend {
        Backend::Sqlite => "e.payload AS src_payload, e.metadata AS src_metadata",
        Backend::Postgres => "e.payload::text AS src_payload, e.metadata::text AS src_metadata",
    };
    let sql = format!(
        "SELECT a.*, {source}, e.event_type AS src_type FROM audit_trail a
           LEFT JOIN events e ON e.aggregate_type = a.aggregate_type AND e.aggregate_id = a.aggregate_id AND e.sequence = a.sequence
          WHERE a.audit_position > $1 ORDER BY a.audit_position LIMIT 1000"
    );
    let mut prev = GENESIS.to_string();
    let mut expected = 1i64;
    let mut checked = 0u64;
    let bad = |position: i64, checked: u64, why: String| Verification {
        ok: false,
        checked,
        first_bad_position: Some(position),
        problem: Some(why),
        head_position: None,
        head_hash: None,
        merkle_root: None,
        checkpoints_checked: 0,
        timestamps_checked: 0,
        timestamps_unchecked: 0,
        timestamps_missing: 0,
    };
    let mut tree = merkle::Frontier::default();
    let mut nodes = merkle::Recomputed::default();
    let mut conn = pool.acquire().await?;
    let mut pending = checkpoints.iter().peekable();
    let mut checkpoints_checked = 0;
    loop {
        let rows = sqlx::query(&sql).bind(expected - 1).fetch_all(pool).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let position: i64 = r.try_get("audit_position")?;
            if position != expected {
                return Ok(bad(expected, checked, format!("row {expected} is missing (next is {position})")));
            }
            let stored_prev: String = r.try_get("prev_hash")?;
            let hash: String = r.try_get("hash")?;
            let (agg_type, agg_id): (String, String) = (r.try_get("aggregate_type")?, r.try_get("aggregate_id")?);
            let (sequence, event_type, version): (i64, String, String) =
                (r.try_get("sequence")?, r.try_get("event_type")?, r.try_get("event_version")?);
            let payload: Value = serde_json::from_str(&r.try_get::<String, _>("payload")?).unwrap_or(Value::Null);
            let metadata: Value = serde_json::from_str(&r.try_get::<String, _>("metadata")?).unwrap_or(Value::Null);
            let canonical = canonical_event(&agg_type, &agg_id, sequence, &event_type, &version, &payload, &metadata);
            if stored_prev != prev || chain_hash(&prev, position, &canonical) != hash {
                return Ok(bad(position, checked, "the row does not follow from the previous one (edited, inserted or reordered)".into()));
            }
            let leaf = merkle::leaf_hash(canonical.as_bytes());
            if r.try_get::<Option<String>, _>("leaf_hash")?.as_deref().and_then(merkle::decode) != Some(leaf) {
                return Ok(bad(position, checked, format!("the row's leaf hash is not its event's (leaf {})", position - 1)));
            }
            let src_payload: Option<String> = r.try_get("src_payload")?;
            let src_metadata: Option<String> = r.try_get("src_metadata")?;
            let src_type: Option<String> = r.try_get("src_type")?;
            let same_source = match (src_payload, src_metadata, src_type) {
                (Some(p), Some(m), Some(t)) => {
                    let p: Value = serde_json::from_str(&p).unwrap_or(Value::Null);
                    let m: Value = serde_json::from_str(&m).unwrap_or(Value::Null);
                    t == event_type && canonical_json(&p) == canonical_json(&payload) && canonical_json(&m) == canonical_json(&metadata)
                }
                _ => false,
            };
            if !same_source {
                return Ok(bad(position, checked, "the event differs from the source log, or is gone from it".into()));
            }
            let d = derive(
                &agg_type,
                &agg_id,
                &crate::event::parse(&agg_type, &event_type, &version, &payload),
                EventMetadata::from_stored(&metadata).as_ref(),
            );
            let stored = Derived {
                account_id: r.try_get("account_id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                actor_kind: r.try_get("actor_kind")?,
                channel: r.try_get("channel")?,
                ip: r.try_get("ip")?,
                user_agent: r.try_get("user_agent")?,
                line: Line { en: r.try_get("line_en")?, ja: r.try_get("line_ja")? },
                staff_id: r.try_get("staff_id")?,
            };
            if stored != d {
                return Ok(bad(position, checked, "a column of the row was edited".into()));
            }
            prev = hash;
            expected += 1;
            checked += 1;
            tree.push(leaf);
            nodes.push(leaf);
            while let Some((size, root)) = pending.next_if(|(size, _)| *size <= checked as i64) {
                let Some(root) = root else {
                    return Ok(bad(
                        position,
                        checked,
                        format!(
                            "the stored checkpoint of {size} rows does not carry this log's signature: the checkpoint table was edited"
                        ),
                    ));
                };
                if *size == checked as i64 && *root != tree.root() {
                    return Ok(bad(
                        position,
                        checked,
                        format!("the first {size} rows no longer have the root the ledger signed for them (checkpoint {size}): the log was rewritten at or before this position"),
                    ));
                }
                checkpoints_checked += 1;
            }
        }
        if let Some((level, index)) = nodes.compare(&mut conn).await? {
            return Ok(bad(
                expected,
                checked,
                format!("the stored Merkle subtree at level {level}, index {index} is not what the rows' leaves make (the rows agree with the log and the signed checkpoints so far): rebuild the read models"),
            ));
        }
        progress(checked);
    }
    if applied > checked as i64 {
        return Ok(bad(expected, checked, format!("{} row(s) missing at the end of the trail", applied - checked as i64)));
    }
    if let Some((size, _)) = pending.next() {
        return Ok(bad(
            expected,
            checked,
            format!("the ledger signed a checkpoint of {size} rows; the trail has {checked}: rows were removed"),
        ));
    }
    if let Some(level) = nodes.extra(&mut conn).await? {
        return Ok(bad(
            expected,
            checked,
            format!("the stored Merkle tree has subtrees at level {level} that the rows do not make: rebuild the read models"),
        ));
    }
    let root = tree.root();
    let head = head(pool).await?;
    Ok(Verification {
        ok: true,
        checked,
        first_bad_position: None,
        problem: None,
        head_position: head.as_ref().map(|h| h.0),
        head_hash: head.map(|h| h.1),
        merkle_root: Some(merkle::encode(&root)),
        checkpoints_checked,
        timestamps_checked: 0,
        timestamps_unchecked: 0,
        timestamps_missing: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_encoding_is_the_canonical_json_of_the_whole_document() {
        let payload = serde_json::json!({"b": [1, {"z": "é\"\n", "a": null}], "a": true, "ü": 1.5});
        let metadata = serde_json::json!({"at": "2026-11-23T09:00:00Z", "actor": "customer"});
        let doc = serde_json::json!({
            "aggregate_type": "account", "aggregate_id": "a-1", "sequence": 7,
            "event_type": "Ev", "event_version": "1", "payload": payload, "metadata": metadata,
        });
        assert_eq!(canonical_event("account", "a-1", 7, "Ev", "1", &payload, &metadata), canonical_json(&doc));
        assert_eq!(canonical_json(&payload), r#"{"a":true,"b":[1,{"a":null,"z":"é\"\n"}],"ü":1.5}"#);
    }

    #[test]
    fn numbers_and_keys_are_written_as_rfc_8785_writes_them() {
        let v = serde_json::json!({"big": 9223372036854775807i64, "exact": 9007199254740991i64, "neg": -9007199254740993i64, "f": 2.0, "z": -0.0});
        assert_eq!(canonical_json(&v), r#"{"big":9223372036854776000,"exact":9007199254740991,"f":2,"neg":-9007199254740992,"z":0}"#);
        // UTF-16 order: U+FF61 sorts after U+1F600 (a surrogate pair, 0xD83D).
        let v = serde_json::json!({"\u{ff61}": 1, "\u{1f600}": 2, "a": 3});
        assert_eq!(canonical_json(&v), "{\"a\":3,\"\u{1f600}\":2,\"\u{ff61}\":1}");
    }
}
