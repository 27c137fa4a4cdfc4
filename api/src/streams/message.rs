//! What goes out: one CloudEvents 1.0 event (JSON format) per trail row,
//! and one per signed checkpoint. `data` is the row as the JSON Lines export
//! writes it (metadata, `leaf_index` and `leaf_hash` included), or its OCSF
//! mapping; personal data masked unless the subscription asked for it.

use ledger_projections::audit::AuditRow;
use ledger_projections::checkpoint::Stored;
use serde_json::{json, Value};

/// The CloudEvents `type` of every event: this prefix and the event type.
pub const TYPE_PREFIX: &str = "jp.passkey-ledger.";

/// The CloudEvents `type` of a checkpoint.
pub const CHECKPOINT_TYPE: &str = "jp.passkey-ledger.Checkpoint";

/// The form of `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The trail row as the JSON Lines export writes it.
    CloudEvents,
    /// The row mapped to an OCSF 1.3 class (`docs/streams.md`).
    Ocsf,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "cloudevents" => Some(Format::CloudEvents),
            "ocsf" => Some(Format::Ocsf),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::CloudEvents => "cloudevents",
            Format::Ocsf => "ocsf",
        }
    }
}

/// How one subscription's messages are written.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The CloudEvents `source`: the log's origin (`LEDGER_LOG_ORIGIN`).
    pub source: String,
    pub format: Format,
    /// Personal data in full (else masked).
    pub full: bool,
}

/// The log position as CloudEvents `sequence`: zero-padded to 20 digits,
/// so that it sorts as text as it does as a number.
pub fn sequence(position: i64) -> String {
    format!("{position:020}")
}

/// The row as the JSON Lines export writes it, masked unless `full`.
pub fn row_data(row: &AuditRow, full: bool) -> Result<Value, serde_json::Error> {
    let mut data = serde_json::to_value(row)?;
    if !full {
        super::mask::mask(&mut data);
    }
    Ok(data)
}

/// One trail row as a CloudEvent.
pub fn event(row: &AuditRow, shape: &Shape) -> Result<Value, serde_json::Error> {
    let data = row_data(row, shape.full)?;
    let mut event = json!({
        "specversion": "1.0",
        "id": row.event_id,
        "source": shape.source,
        "type": format!("{TYPE_PREFIX}{}", row.event_type),
        "subject": format!("{}/{}", row.stream, row.stream_id),
        "time": row.at_utc.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "sequence": sequence(row.position),
        "datacontenttype": "application/json",
    });
    event["data"] = match shape.format {
        Format::CloudEvents => data,
        Format::Ocsf => {
            event["dataschema"] = json!(super::ocsf::SCHEMA);
            super::ocsf::map(&data)
        }
    };
    Ok(event)
}

/// A signed checkpoint as a CloudEvent: `data` holds the exact note, which
/// an auditor keeps and checks with the verifier key.
pub fn checkpoint(checkpoint: &Stored, source: &str) -> Value {
    json!({
        "specversion": "1.0",
        "id": format!("checkpoint-{}", checkpoint.tree_size),
        "source": source,
        "type": CHECKPOINT_TYPE,
        "subject": "checkpoints",
        "time": checkpoint.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "sequence": sequence(checkpoint.tree_size),
        "datacontenttype": "application/json",
        "data": {
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "note": checkpoint.note,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_sort_as_text_as_they_do_as_numbers() {
        assert_eq!(sequence(42), "00000000000000000042");
        let mut texts: Vec<String> = [10, 9, 100, 1].into_iter().map(sequence).collect();
        texts.sort();
        assert_eq!(texts, [1, 9, 10, 100].map(sequence));
    }
}
