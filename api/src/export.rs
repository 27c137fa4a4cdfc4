//! Audit trail export, streamed page by page so memory stays flat whatever
//! the size: CSV that opens correctly in Japanese Excel (UTF-8 with BOM,
//! CRLF, every cell quoted by the csv crate, formulas neutralised) and JSON
//! Lines.

use bytes::Bytes;
use futures_util::Stream;
use ledger_projections::audit::{query, AuditFilter, AuditRow};
use sqlx::AnyPool;

/// Rows fetched per page.
const PAGE: i64 = 1000;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "jsonl" => Some(Format::Jsonl),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Jsonl => "application/x-ndjson; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

const COLUMNS: &[&str] = &[
    "position",
    "at_utc",
    "at_jst",
    "account_id",
    "login_id",
    "type",
    "actor",
    "actor_name",
    "channel",
    "ip",
    "user_agent",
    "request_id",
    "description_ja",
    "description_en",
    "hash",
    "leaf_index",
    "leaf_hash",
    "details",
];

/// A leading `= + - @`, tab or CR gets a `'` in front, so a spreadsheet
/// shows the cell as text and never runs it as a formula.
fn neutralised(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// Cells as one CSV record: every cell quoted (quotes doubled by the csv
/// crate), formulas neutralised, CRLF at the end as Excel writes it.
fn csv_line<'a>(cells: impl IntoIterator<Item = &'a str>) -> Result<String, std::io::Error> {
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(512));
    // Writing to memory does not fail; were it to, the export stops with
    // the error rather than leave a blank line in the file.
    writer.write_record(cells.into_iter().map(|c| neutralised(c).into_owned()))?;
    let bytes = writer.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

/// The header: a byte-order mark so Excel reads UTF-8, then column names.
pub fn csv_header() -> Result<String, std::io::Error> {
    Ok(format!("\u{FEFF}{}", csv_line(COLUMNS.iter().copied())?))
}

/// One row as a CSV line.
pub fn csv_row(row: &AuditRow) -> Result<String, std::io::Error> {
    // Japan time as a spreadsheet reads a date and time, to the second.
    let (position, leaf_index, at_utc, at_jst) = (
        row.position.to_string(),
        row.leaf_index.to_string(),
        row.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ledger_domain::japan::japan_seconds(row.at),
    );
    // The event itself, as JSON: what the line summarises.
    let details = row.event.to_string();
    csv_line([
        position.as_str(),
        at_utc.as_str(),
        at_jst.as_str(),
        row.account_id.as_deref().unwrap_or_default(),
        row.login_id.as_deref().unwrap_or_default(),
        row.event_type.as_str(),
        row.actor.as_str(),
        row.actor_name.as_deref().unwrap_or_default(),
        row.channel.as_str(),
        row.ip.as_str(),
        row.user_agent.as_str(),
        row.request_id.as_deref().unwrap_or_default(),
        row.line.ja.as_str(),
        row.line.en.as_str(),
        row.hash.as_str(),
        leaf_index.as_str(),
        row.leaf_hash.as_deref().unwrap_or_default(),
        details.as_str(),
    ])
}

/// One row as a JSON line.
pub fn jsonl_row(row: &AuditRow) -> Result<String, std::io::Error> {
    let mut line = serde_json::to_string(row)?;
    line.push('\n');
    Ok(line)
}

/// The export as a stream of chunks, one page at a time; `on_page` is told
/// how many rows have gone out so far.
pub fn stream(
    pool: AnyPool,
    filter: AuditFilter,
    format: Format,
    on_page: impl Fn(u64) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct State<F> {
        pool: AnyPool,
        filter: AuditFilter,
        after: i64,
        sent: u64,
        started: bool,
        done: bool,
        on_page: F,
    }
    let state = State { pool, filter, after: 0, sent: 0, started: false, done: false, on_page };
    futures_util::stream::unfold(state, move |mut s| async move {
        if s.done {
            return None;
        }
        let mut chunk = String::new();
        if !s.started {
            s.started = true;
            if format == Format::Csv {
                match csv_header() {
                    Ok(header) => chunk.push_str(&header),
                    Err(e) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                }
            }
        }
        match query(&s.pool, &s.filter, s.after, PAGE).await {
            Ok(rows) => {
                if (rows.len() as i64) < PAGE {
                    s.done = true;
                }
                for row in &rows {
                    let line = match format {
                        Format::Csv => csv_row(row),
                        Format::Jsonl => jsonl_row(row),
                    };
                    match line {
                        Ok(line) => chunk.push_str(&line),
                        Err(e) => {
                            // The export ends with the error (the download
                            // is cut short), naming the row.
                            s.done = true;
                            tracing::error!(position = row.position, error = %e, "an audit export row could not be written");
                            return Some((Err(std::io::Error::other(format!("audit row {}: {e}", row.position))), s));
                        }
                    }
                }
                if let Some(last) = rows.last() {
                    s.after = last.position;
                }
                s.sent += rows.len() as u64;
                (s.on_page)(s.sent);
                Some((Ok(Bytes::from(chunk)), s))
            }
            Err(e) => {
                s.done = true;
                Some((Err(std::io::Error::other(e.to_string())), s))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_cell(value: &str) -> String {
        csv_line([value]).unwrap().trim_end_matches("\r\n").to_string()
    }

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        assert_eq!(csv_cell("+81"), "\"'+81\"");
        assert_eq!(csv_cell("-1"), "\"'-1\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("\tx"), "\"'\tx\"");
        assert_eq!(csv_cell("日本語, \"quoted\""), "\"日本語, \"\"quoted\"\"\"");
        assert_eq!(csv_cell("line\r\nbreak"), "\"line\r\nbreak\"");
        assert_eq!(csv_line(["a", "", "b"]).unwrap(), "\"a\",\"\",\"b\"\r\n");
    }

    #[test]
    fn the_header_starts_with_a_bom_and_ends_with_crlf() {
        let h = csv_header().unwrap();
        assert!(h.starts_with('\u{FEFF}'));
        assert!(h.ends_with("\"hash\",\"leaf_index\",\"leaf_hash\",\"details\"\r\n"));
    }
}
