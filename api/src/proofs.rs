//! The audit trail's proofs, in one place for the API, the console and the
//! command line: signed checkpoints of its Merkle tree (made in the
//! background and on demand), inclusion and consistency proofs, and a
//! checkpoint kept outside the ledger checked against the trail, and the
//! RFC 3161 timestamps of checkpoints.

use ledger_projections::checkpoint::{self, Made, Stored, Verifier};
use ledger_projections::merkle;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The proof that a trail row is in the tree.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Inclusion {
    /// The row's position - 1.
    pub leaf_index: i64,
    pub tree_size: i64,
    /// Base64.
    pub leaf_hash: String,
    /// Base64 hashes, from the leaf up (RFC 9162 2.1.3).
    pub proof: Vec<String>,
}

/// The proof that a smaller tree is a prefix of a larger one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Consistency {
    pub from_size: i64,
    pub to_size: i64,
    /// Base64 hashes (RFC 9162 2.1.4).
    pub proof: Vec<String>,
}

fn out_of_tree(what: String) -> ApiError {
    ApiError::saying(ErrorCode::OutOfTree, what)
}

fn encode_all(hashes: &[merkle::Hash]) -> Vec<String> {
    hashes.iter().map(merkle::encode).collect()
}

/// Signs the tree now if it has grown; the newest checkpoint (None while
/// the trail is empty).
/// With a time-stamp authority, the checkpoint is timestamped before it is
/// answered (and any earlier one the authority could not stamp then).
pub async fn checkpoint_now(app: &AppState) -> Result<Option<Stored>, ApiError> {
    let made = match checkpoint::make(&app.db.any, &app.log_key).await? {
        Made::New(made) => {
            tracing::info!(tree_size = made.tree_size, root = %made.root_hash, "signed a checkpoint of the audit trail");
            made
        }
        Made::Unchanged(latest) => latest,
        Made::Empty => return Ok(None),
    };
    if made.timestamp.is_none() && stamp_pending(app).await > 0 {
        return Ok(checkpoint::of_size(&app.db.any, made.tree_size).await?.or(Some(made)));
    }
    Ok(Some(made))
}

/// The checkpoints stamped in one go at most: a time-stamp authority that
/// was down for a day is not sent a day of requests at once.
const STAMPS_PER_ROUND: i64 = 16;

/// Asks the time-stamp authority (when there is one) to stamp the newest
/// checkpoints without a timestamp; how many it stamped. A failure is
/// logged and tried again at the next checkpoint.
pub async fn stamp_pending(app: &AppState) -> usize {
    let Some(url) = &app.config.tsa_url else { return 0 };
    let pending = match checkpoint::unstamped(&app.db.any, STAMPS_PER_ROUND).await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the checkpoints to timestamp; trying again later");
            return 0;
        }
    };
    let mut stamped = 0;
    for (tree_size, note) in pending {
        match fetch_stamp(url, app.config.tsa_trust.as_ref(), &note).await {
            Ok((reply, stamp)) => match checkpoint::stamp(&app.db.any, tree_size, &reply).await {
                Ok(()) => {
                    tracing::info!(tree_size, time = %stamp.time, serial = %stamp.serial, "timestamped a checkpoint");
                    stamped += 1;
                }
                Err(e) => tracing::warn!(tree_size, error = %e, "cannot keep a checkpoint's timestamp; trying again later"),
            },
            Err(why) => {
                tracing::warn!(tree_size, tsa = %shown(url), %why, "the time-stamp authority did not stamp a checkpoint; trying again at the next checkpoint");
                break;
            }
        }
    }
    stamped
}

/// A URL as logged: scheme, host and port (a path or query may carry a
/// credential some authorities take).
fn shown(url: &reqwest::Url) -> String {
    format!("{}://{}:{}", url.scheme(), url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or_default())
}

/// How long a time-stamp authority may take to answer.
const TSA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A reply larger than this is not a time-stamp reply.
const TSA_REPLY_MAX: usize = 64 * 1024;

/// One RFC 3161 exchange over HTTP (RFC 3161 section 3.4): the reply, once
/// it is a granted token over `note` with the request's nonce, and (with
/// `trust`) its signature and certificate check out.
async fn fetch_stamp(
    url: &reqwest::Url,
    trust: Option<&ledger_projections::timestamp::Trust>,
    note: &str,
) -> Result<(Vec<u8>, ledger_projections::timestamp::Stamp), String> {
    use ledger_projections::timestamp;
    let nonce: [u8; 8] = rand::random();
    let imprint = timestamp::imprint(note);
    let client =
        reqwest::Client::builder().timeout(TSA_TIMEOUT).redirect(reqwest::redirect::Policy::none()).build().map_err(|e| e.to_string())?;
    let mut response = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
        .body(timestamp::request(&imprint, &nonce))
        .send()
        .await
        .map_err(|e| format!("no answer: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("it answered HTTP {}", response.status().as_u16()));
    }
    let mut reply = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
        reply.extend_from_slice(&chunk);
        if reply.len() > TSA_REPLY_MAX {
            return Err("its reply is too large to be a time-stamp reply".into());
        }
    }
    let stamp = timestamp::answers(&reply, &imprint, &nonce)?;
    match trust {
        Some(trust) => {
            Ok((reply.clone(), timestamp::verify(&reply, note, trust).map_err(|e| format!("its token does not check out: {e}"))?))
        }
        None => Ok((reply, stamp)),
    }
}

/// The whole trail checked (`audit::verify`) and, with it, every stored
/// checkpoint timestamp: against `LEDGER_TSA_CA_FILE` when set, otherwise
/// only that each is over its own note. `kept_elsewhere`: the tree size and
/// root of a checkpoint kept outside the ledger, checked against the rows
/// like the stored ones.
pub async fn verify_trail(
    app: &AppState,
    kept_elsewhere: Option<(i64, merkle::Hash)>,
    progress: impl FnMut(u64),
) -> Result<ledger_projections::audit::Verification, ledger_projections::DbError> {
    let applied = app.projector.applied().await?;
    let mut signed = checkpoint::signed_roots(&app.db.any, &app.log_key.verifier()).await?;
    if let Some((size, root)) = kept_elsewhere {
        signed.push((size, Some(root)));
        signed.sort_by_key(|(size, _)| *size);
    }
    let mut result = ledger_projections::audit::verify(&app.db.any, app.db.backend, applied, &signed, progress).await?;
    let stamps = checkpoint::verify_timestamps(&app.db.any, app.config.tsa_trust.as_ref()).await?;
    result.timestamps_checked = stamps.checked;
    result.timestamps_unchecked = stamps.unchecked;
    result.timestamps_missing = stamps.missing;
    if stamps.missing > 0 && app.config.tsa_url.is_some() {
        tracing::warn!(
            missing = stamps.missing,
            "checkpoints without a timestamp although a time-stamp authority is configured (not stamped yet, or a stamp was removed)"
        );
    }
    if let Some((tree_size, why)) = stamps.problem {
        if result.ok {
            result.ok = false;
            result.problem = Some(format!("the timestamp of the checkpoint of tree size {tree_size} does not check out: {why}"));
        }
    }
    Ok(result)
}

/// The newest checkpoint; one is made when there is none yet.
pub async fn latest(app: &AppState) -> Result<Option<Stored>, ApiError> {
    match checkpoint::latest(&app.db.any).await? {
        Some(latest) => Ok(Some(latest)),
        None => checkpoint_now(app).await,
    }
}

/// The tree size a proof is for when none is asked: the newest checkpoint's.
async fn signed_size(app: &AppState) -> Result<i64, ApiError> {
    Ok(latest(app).await?.map(|c| c.tree_size).unwrap_or(0))
}

/// Leaf `leaf_index`'s inclusion proof in the tree of `tree_size` leaves
/// (default: the newest checkpoint's).
pub async fn inclusion(app: &AppState, leaf_index: i64, tree_size: Option<i64>) -> Result<Inclusion, ApiError> {
    let size = match tree_size {
        Some(size) => size,
        None => signed_size(app).await?,
    };
    let now = checkpoint::tree_size(&app.db.any).await? as i64;
    if leaf_index < 0 || leaf_index >= size || size > now {
        return Err(out_of_tree(format!("leaf_index must be 0 to tree_size - 1, and tree_size at most {now} (the tree's size now)")));
    }
    let mut conn = app.db.any.acquire().await.map_err(ledger_projections::DbError::from)?;
    let mut tree = merkle::Reader::new(&mut conn);
    let leaf = tree.perfect(0, leaf_index as u64).await?;
    let proof = tree.inclusion(leaf_index as u64, size as u64).await?;
    Ok(Inclusion { leaf_index, tree_size: size, leaf_hash: merkle::encode(&leaf), proof: encode_all(&proof) })
}

/// The consistency proof from the tree of `from_size` leaves to the tree of
/// `to_size` (default: the newest checkpoint's).
pub async fn consistency(app: &AppState, from_size: i64, to_size: Option<i64>) -> Result<Consistency, ApiError> {
    let to = match to_size {
        Some(size) => size,
        None => signed_size(app).await?,
    };
    let now = checkpoint::tree_size(&app.db.any).await? as i64;
    if from_size < 1 || from_size > to || to > now {
        return Err(out_of_tree(format!("from_size must be 1 to to_size, and to_size at most {now} (the tree's size now)")));
    }
    let mut conn = app.db.any.acquire().await.map_err(ledger_projections::DbError::from)?;
    let proof = merkle::Reader::new(&mut conn).consistency(from_size as u64, to as u64).await?;
    Ok(Consistency { from_size, to_size: to, proof: encode_all(&proof) })
}

/// What checking a checkpoint kept elsewhere found.
#[derive(Debug, Clone, Serialize)]
pub struct Against {
    pub ok: bool,
    /// The checkpoint's tree size and root, as signed.
    pub tree_size: u64,
    pub root_hash: String,
    /// The tree now.
    pub current_size: u64,
    pub current_root: String,
    /// Why not, when not.
    pub problem: Option<String>,
}

/// Checks a signed checkpoint kept outside the ledger: its signature (by
/// `verifier_key`, default the ledger's own), and the consistency proof
/// from it to the tree now.
pub async fn against(app: &AppState, note: &str, verifier_key: Option<&str>) -> Result<Against, String> {
    let key = verifier_key.map(str::to_string).unwrap_or_else(|| app.log_key.verifier_key());
    let statement = Verifier::parse(&key)?.open(note)?;
    let now = checkpoint::tree_size(&app.db.any).await.map_err(|e| e.to_string())?;
    let mut conn = app.db.any.acquire().await.map_err(|e| e.to_string())?;
    let mut tree = merkle::Reader::new(&mut conn);
    let current_root = tree.root(now).await.map_err(|e| e.to_string())?;
    let mut report = Against {
        ok: false,
        tree_size: statement.tree_size,
        root_hash: merkle::encode(&statement.root),
        current_size: now,
        current_root: merkle::encode(&current_root),
        problem: None,
    };
    if statement.tree_size > now {
        report.problem = Some(format!("the checkpoint is of {} rows; the trail has {now}: rows were removed", statement.tree_size));
        return Ok(report);
    }
    // Every tree extends the empty one, whose root is fixed.
    report.ok = if statement.tree_size == 0 {
        statement.root == merkle::empty_root()
    } else {
        let proof = tree.consistency(statement.tree_size, now).await.map_err(|e| e.to_string())?;
        merkle::verify_consistency(statement.tree_size, now, &statement.root, &current_root, &proof)
    };
    if !report.ok {
        report.problem = Some(format!(
            "the trail now is not an extension of the checkpoint of {} rows (the consistency proof fails): the log was rewritten",
            statement.tree_size
        ));
    }
    Ok(report)
}

/// Signs a checkpoint every `period` when the trail has grown. A tree that
/// no longer extends the newest checkpoint is not signed, and logged as
/// the alarm it is.
pub async fn checkpoint_every(app: AppState, period: std::time::Duration) {
    loop {
        tokio::time::sleep(period).await;
        match checkpoint::make(&app.db.any, &app.log_key).await {
            Ok(Made::New(made)) => {
                tracing::info!(tree_size = made.tree_size, root = %made.root_hash, "signed a checkpoint of the audit trail")
            }
            Ok(_) => {}
            Err(ledger_projections::DbError::Refused(why)) => tracing::error!(%why, "the audit trail's checkpoint was not signed"),
            Err(e) => tracing::warn!(error = %e, "cannot sign a checkpoint of the audit trail now; trying again later"),
        }
        stamp_pending(&app).await;
    }
}
