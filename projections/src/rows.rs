//! Multi-row writes: the projector writes each read model with a few
//! `INSERT ... VALUES (...), (...), ...` statements per batch instead of one
//! statement per event. The same SQL runs on SQLite and PostgreSQL.

use sqlx::AnyConnection;

use crate::db::DbError;

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Int(v as i64)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::OptInt(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        Val::OptText(v)
    }
}

/// Bound values per statement: below SQLite's 32,766 and PostgreSQL's
/// 65,535, and small enough that one statement stays cheap to plan.
const MAX_VALUES: usize = 16_000;

/// Runs `head VALUES (...), ... tail` for all `rows`, as few statements as
/// the bind limits allow. `head` names the columns; every row has as many
/// values as it names.
pub async fn insert(conn: &mut AnyConnection, head: &str, tail: &str, rows: &[Vec<Val>]) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    let Some(width) = rows.first().map(Vec::len) else { return Ok(()) };
    if conn.backend_name() == "PostgreSQL" {
        if let Some((table, columns)) = table_and_columns(head) {
            return insert_from_json(conn, head, tail, table, &columns, rows).await;
        }
    }
    // SQLite takes `$1` as a parameter *name*, looked up among the names
    // seen so far: thousands of them make parsing quadratic. Its plain `?`
    // is numbered in order, which is what these statements need.
    let numbered = conn.backend_name() != "SQLite";
    let per_statement = (MAX_VALUES / width.max(1)).max(1);
    for chunk in rows.chunks(per_statement) {
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * width * 6);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        let mut n = 0;
        for (i, row) in chunk.iter().enumerate() {
            debug_assert_eq!(row.len(), width);
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for j in 0..row.len() {
                n += 1;
                if j > 0 {
                    sql.push_str(", ");
                }
                if numbered {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        // Each row count is a new statement text: not worth a prepared
        // statement kept per connection.
        let mut query = sqlx::query(&sql).persistent(false);
        for value in chunk.iter().flatten() {
            query = match value {
                Val::Int(v) => query.bind(*v),
                Val::OptInt(v) => query.bind(*v),
                Val::Text(v) => query.bind(v.as_str()),
                Val::OptText(v) => query.bind(v.as_deref()),
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// PostgreSQL: all the rows as one JSON parameter, turned into rows of the
/// table by `json_populate_recordset`. One short statement whatever the
/// batch size: PostgreSQL parses and plans it in no time, where a
/// `VALUES` list of thousands of parameters costs it more to plan than to
/// write.
async fn insert_from_json(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Val>],
) -> Result<(), DbError> {
    let mut json = Vec::with_capacity(rows.len() * columns.len() * 24);
    json.push(b'[');
    // The keys must be the table's column names exactly, and every row
    // must have a value for each: anything else would be a silent NULL.
    if let Some(bad) =
        columns.iter().find(|c| c.is_empty() || !c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'))
    {
        return Err(DbError::Corrupt(format!("{table}: column name {bad:?} is not a plain lowercase name")));
    }
    for (i, row) in rows.iter().enumerate() {
        if row.len() != columns.len() {
            return Err(DbError::Corrupt(format!("{table}: a row of {} values for {} columns", row.len(), columns.len())));
        }
        json.extend_from_slice(if i == 0 { b"{" } else { b",{" });
        for (j, (column, value)) in columns.iter().zip(row).enumerate() {
            if j > 0 {
                json.push(b',');
            }
            json.push(b'"');
            json.extend_from_slice(column.as_bytes());
            json.extend_from_slice(b"\":");
            match value {
                Val::Int(v) | Val::OptInt(Some(v)) => json.extend_from_slice(v.to_string().as_bytes()),
                Val::Text(v) | Val::OptText(Some(v)) => {
                    // Writing to a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut json, v);
                }
                Val::OptInt(None) | Val::OptText(None) => json.extend_from_slice(b"null"),
            }
        }
        json.push(b'}');
    }
    json.push(b']');
    let json = String::from_utf8(json).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let sql = format!("{head} SELECT {} FROM json_populate_recordset(NULL::{table}, $1::json) {tail}", columns.join(", "));
    sqlx::query(&sql).bind(json).execute(&mut *conn).await?;
    Ok(())
}

/// `INSERT INTO table (a, b, c)` -> `("table", ["a", "b", "c"])`.
fn table_and_columns(head: &str) -> Option<(&str, Vec<&str>)> {
    let rest = head.trim().strip_prefix("INSERT INTO ")?;
    let (table, columns) = rest.split_once('(')?;
    let columns = columns.trim_end().strip_suffix(')')?;
    Some((table.trim(), columns.split(',').map(str::trim).collect()))
}

/// `$1, $2, ...` (`?, ?, ...` on SQLite, see [`insert`]) for `n` values:
/// an `IN (...)` list, the statement's only parameters.
pub fn placeholders(conn: &AnyConnection, n: usize) -> String {
    if conn.backend_name() == "SQLite" {
        vec!["?"; n].join(", ")
    } else {
        (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    }
}

/// Keys per `IN (...)` lookup.
pub const LOOKUP_CHUNK: usize = 1_000;
