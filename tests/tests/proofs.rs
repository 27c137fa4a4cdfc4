//! The trail's proofs as an auditor uses them: every row a leaf whose hash
//! follows from the row alone, inclusion proofs against a signed
//! checkpoint, consistency between checkpoints through growth and a
//! rebuild, and an edited log caught by all three. The auditor's own
//! script from docs/audit-proofs.md checks a row with other
//! implementations (Python's rfc8785 and cryptography). Checkpoints are
//! timestamped by an RFC 3161 authority (OpenSSL's, on loopback) and the
//! tokens checked by `openssl ts -verify`. On SQLite and on PostgreSQL.

use ledger_projections::checkpoint::{Statement, Verifier};
use ledger_projections::merkle::{self, verify_consistency, verify_inclusion};
use ledger_tests::harness::{error_code, json_of};
use ledger_tests::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

ledger_tests::on_both_databases!(
    every_row_is_a_leaf_an_auditor_proves_against_a_signed_checkpoint,
    checkpoints_stay_consistent_through_growth_and_a_rebuild,
    an_edited_log_is_named_and_no_longer_proves_against_the_published_checkpoint,
    checkpoints_are_timestamped_by_an_rfc_3161_authority_and_openssl_agrees,
);

async fn settle(app: &TestApp) {
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
}

fn verifier(app: &TestApp) -> Verifier {
    Verifier::parse(&app.app.log_key.verifier_key()).expect("the ledger's verifier key parses")
}

/// The newest checkpoint as the API serves it, opened with the verifier key.
async fn published(app: &TestApp, token: &str) -> (String, Statement) {
    let res = app.get("/api/v1/audit/checkpoint", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let note = res.text().await.unwrap();
    let statement = verifier(app).open(&note).expect("the checkpoint's signature verifies");
    (note, statement)
}

/// A new checkpoint signed now, as `ledger audit checkpoint` makes it.
async fn sign_now(app: &TestApp) -> Statement {
    settle(app).await;
    let made = ledger_api::proofs::checkpoint_now(&app.app).await.expect("signs").expect("a tree to sign");
    verifier(app).open(&made.note).expect("opens")
}

async fn get(app: &TestApp, path: &str, token: &str) -> Value {
    let (status, v) = json_of(app.get(path, Some(token)).await).await;
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
    v
}

fn hashes(v: &Value) -> Vec<merkle::Hash> {
    v.as_array().unwrap().iter().map(|h| merkle::decode(h.as_str().unwrap()).expect("base64 hash")).collect()
}

/// The JSON Lines export, row by row.
async fn export(app: &TestApp, token: &str) -> Vec<Value> {
    let res = app.get("/api/v1/audit/export?format=jsonl", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// The leaf hash of an export row, from the row alone.
fn leaf_of(row: &Value) -> merkle::Hash {
    let canonical = ledger_projections::audit::canonical_event(
        row["stream"].as_str().unwrap(),
        row["stream_id"].as_str().unwrap(),
        row["sequence"].as_i64().unwrap(),
        row["type"].as_str().unwrap(),
        row["event_version"].as_str().unwrap(),
        &row["event"],
        &row["metadata"],
    );
    merkle::leaf_hash(canonical.as_bytes())
}

async fn every_row_is_a_leaf_an_auditor_proves_against_a_signed_checkpoint(app: TestApp) {
    app.activity("p").await;
    settle(&app).await;
    let compliance = app.staff("Kato", "compliance").await;
    let support = app.staff("Sato", "support").await;
    let (note, signed) = published(&app, &compliance).await;
    assert_eq!(signed.origin, "localhost/passkey-ledger");
    assert!(signed.tree_size >= 8, "{signed:?}");

    let rows = export(&app, &compliance).await;
    for row in rows.iter().filter(|r| r["position"].as_u64().unwrap() <= signed.tree_size) {
        let index = row["leaf_index"].as_u64().unwrap();
        assert_eq!(index + 1, row["position"].as_u64().unwrap());
        let leaf = leaf_of(row);
        assert_eq!(row["leaf_hash"], merkle::encode(&leaf), "the row's leaf hash follows from the row: {row}");
        let proof = get(&app, &format!("/api/v1/audit/proof/inclusion?leaf_index={index}"), &compliance).await;
        assert_eq!(proof["tree_size"], signed.tree_size, "the default size is the newest checkpoint's");
        assert_eq!(proof["leaf_hash"], row["leaf_hash"]);
        assert!(verify_inclusion(index, signed.tree_size, &leaf, &hashes(&proof["proof"]), &signed.root), "leaf {index}");
        assert!(!verify_inclusion(index, signed.tree_size, &merkle::leaf_hash(b"forged"), &hashes(&proof["proof"]), &signed.root));
    }

    // The auditor's script from the docs, with other implementations.
    let row = rows.iter().find(|r| r["type"] == "PasskeyRegistered").expect("a registration in the trail");
    let proof = get(&app, &format!("/api/v1/audit/proof/inclusion?leaf_index={}", row["leaf_index"]), &compliance).await;
    let key = app.app.log_key.verifier_key();
    if let Some(out) = auditor_script(&[&format!("{row}\n"), &proof.to_string(), &note, &key]) {
        let out = out.expect("the auditor's script accepts the row");
        let expected = format!("is leaf {} of the {}-leaf tree localhost/passkey-ledger signed", row["leaf_index"], signed.tree_size);
        assert!(out.contains(&expected), "{out}");
        // The same script refuses a row whose event was changed, and a
        // checkpoint whose tree size was changed, each for its reason.
        let mut edited = row.clone();
        edited["event"]["PasskeyRegistered"]["name"] = Value::from("edited");
        let refused = auditor_script(&[&format!("{edited}\n"), &proof.to_string(), &note, &key]).unwrap().unwrap_err();
        assert!(refused.contains("the row's leaf hash is not its event's"), "{refused}");
        let resized = note.replacen(&format!("\n{}\n", signed.tree_size), &format!("\n{}\n", signed.tree_size + 1), 1);
        let refused = auditor_script(&[&format!("{row}\n"), &proof.to_string(), &resized, &key]).unwrap().unwrap_err();
        assert!(refused.contains("InvalidSignature"), "{refused}");
    }
    // Whatever the key's base64 holds ('+' among it), the script reads it.
    for seed in 0..8u8 {
        let other = ledger_projections::checkpoint::LogKey::new("localhost/passkey-ledger", &[seed; 32]).unwrap();
        let note = other.sign(&signed);
        if let Some(out) = auditor_script(&[&format!("{row}\n"), &proof.to_string(), &note, &other.verifier_key()]) {
            out.unwrap_or_else(|e| panic!("key {}: {e}", other.verifier_key()));
        }
    }

    // Outside the tree, and the wrong callers.
    let (status, v) =
        json_of(app.get(&format!("/api/v1/audit/proof/inclusion?leaf_index={}", signed.tree_size), Some(&compliance)).await).await;
    assert_eq!((status, error_code(&v)), (StatusCode::BAD_REQUEST, "out_of_tree"), "{v}");
    let (status, v) = json_of(app.get("/api/v1/audit/proof/inclusion?leaf_index=0&tree_size=999999", Some(&compliance)).await).await;
    assert_eq!((status, error_code(&v)), (StatusCode::BAD_REQUEST, "out_of_tree"), "{v}");
    let (status, v) = json_of(app.get("/api/v1/audit/proof/consistency?from_size=0", Some(&compliance)).await).await;
    assert_eq!((status, error_code(&v)), (StatusCode::BAD_REQUEST, "out_of_tree"), "{v}");
    for path in ["/api/v1/audit/checkpoint", "/api/v1/audit/checkpoints", "/api/v1/audit/proof/inclusion?leaf_index=0"] {
        assert_eq!(app.get(path, Some(&support)).await.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(app.get(path, None).await.status(), StatusCode::UNAUTHORIZED, "{path}");
    }

    // Each read is on record in the reader's own stream.
    settle(&app).await;
    let types = get(&app, "/api/v1/audit/events?type=AuditCheckpointRead,AuditInclusionProofRead&limit=1000", &compliance).await;
    let lines: Vec<&str> = types["events"].as_array().unwrap().iter().map(|r| r["line"]["en"].as_str().unwrap()).collect();
    assert!(lines.iter().any(|l| l.starts_with("A signed checkpoint of the audit trail was read (tree size")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("An inclusion proof was read (leaf 0 in a tree of")), "{lines:?}");
}

/// Runs the auditor's script of docs/audit-proofs.md on the given files:
/// its output when it succeeds, its error output when it fails; None when
/// Python or its packages are missing outside CI.
fn auditor_script(files: &[&str]) -> Option<Result<String, String>> {
    let probe = std::process::Command::new("python3").args(["-c", "import rfc8785, cryptography"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("REQUIRE_POSTGRES").is_none(),
            "python3 with rfc8785 and cryptography is required (scripts/test installs them)"
        );
        eprintln!("skipping the auditor's script: python3 -m pip install rfc8785 cryptography");
        return None;
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/audit-proofs.md")).expect("the doc");
    let script = doc.split("```python\n").nth(1).and_then(|s| s.split("```").next()).expect("the doc's script");
    assert!(script.lines().count() <= 40, "the auditor's script stays short");
    let dir = std::env::temp_dir().join(format!("ledger-proof-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = Vec::new();
    for (i, content) in files.iter().enumerate() {
        let path = dir.join(format!("arg{i}"));
        std::fs::write(&path, content).unwrap();
        args.push(path);
    }
    let out = std::process::Command::new("python3").arg("-c").arg(script).args(&args).output().expect("python3 runs");
    let _ = std::fs::remove_dir_all(&dir);
    Some(if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    })
}

async fn checkpoints_stay_consistent_through_growth_and_a_rebuild(app: TestApp) {
    app.activity("c").await;
    let compliance = app.staff("Kato", "compliance").await;
    let first = sign_now(&app).await;
    app.activity("d").await;
    let second = sign_now(&app).await;
    assert!(second.tree_size > first.tree_size);

    let proof = get(&app, &format!("/api/v1/audit/proof/consistency?from_size={}", first.tree_size), &compliance).await;
    assert_eq!(proof["to_size"], second.tree_size, "to the newest checkpoint by default");
    let path = hashes(&proof["proof"]);
    assert!(verify_consistency(first.tree_size, second.tree_size, &first.root, &second.root, &path));
    assert!(!verify_consistency(first.tree_size, second.tree_size, &merkle::leaf_hash(b"x"), &second.root, &path));

    let listed = get(&app, "/api/v1/audit/checkpoints", &compliance).await;
    let sizes: Vec<u64> = listed["checkpoints"].as_array().unwrap().iter().map(|c| c["tree_size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [first.tree_size, second.tree_size]);
    let only_first = get(&app, &format!("/api/v1/audit/checkpoints?to={}", first.tree_size), &compliance).await;
    assert_eq!(only_first["checkpoints"].as_array().unwrap().len(), 1);

    // A rebuild gives the same tree: the old checkpoints still prove.
    app.assert_rebuild_matches_live().await;
    let proof = get(&app, &format!("/api/v1/audit/proof/inclusion?leaf_index=0&tree_size={}", first.tree_size), &compliance).await;
    let leaf = merkle::decode(proof["leaf_hash"].as_str().unwrap()).unwrap();
    assert!(verify_inclusion(0, first.tree_size, &leaf, &hashes(&proof["proof"]), &first.root));
    let proof =
        get(&app, &format!("/api/v1/audit/proof/consistency?from_size={}&to_size={}", first.tree_size, second.tree_size), &compliance)
            .await;
    assert!(verify_consistency(first.tree_size, second.tree_size, &first.root, &second.root, &hashes(&proof["proof"])));
    let v = get(&app, "/api/v1/audit/verify", &compliance).await;
    assert_eq!((v["ok"].as_bool(), v["checkpoints_checked"].as_u64()), (Some(true), Some(2)), "{v}");

    // A signed checkpoint kept elsewhere, checked against the trail now.
    let kept = ledger_projections::checkpoint::of_size(&app.app.db.any, first.tree_size as i64).await.unwrap().unwrap().note;
    let against = ledger_api::proofs::against(&app.app, &kept, None).await.unwrap();
    assert!(against.ok, "{against:?}");
    let forged = kept.replacen(&format!("\n{}\n", first.tree_size), &format!("\n{}\n", first.tree_size - 1), 1);
    assert!(ledger_api::proofs::against(&app.app, &forged, None).await.unwrap_err().contains("does not verify"));

    // A stored subtree edited: verify names it (and a rebuild mends it).
    settle(&app).await;
    sqlx::query("UPDATE merkle_nodes SET hash = $1 WHERE level = 4 AND idx = 0")
        .bind(merkle::encode(&merkle::leaf_hash(b"x")))
        .execute(&app.app.db.any)
        .await
        .unwrap();
    let v = get(&app, "/api/v1/audit/verify", &compliance).await;
    assert!(v["problem"].as_str().unwrap().contains("subtree at level 4, index 0"), "{v}");
    app.app.projector.rebuild().await.unwrap();
    assert_eq!(get(&app, "/api/v1/audit/verify", &compliance).await["ok"], true);
}

async fn an_edited_log_is_named_and_no_longer_proves_against_the_published_checkpoint(app: TestApp) {
    app.activity("t").await;
    let compliance = app.staff("Kato", "compliance").await;
    let signed = sign_now(&app).await;
    let note = ledger_projections::checkpoint::latest(&app.app.db.any).await.unwrap().unwrap().note;
    let rows = export(&app, &compliance).await;
    let opened = rows.iter().find(|r| r["type"] == "AccountOpened").expect("an opening").clone();
    let index = opened["leaf_index"].as_u64().unwrap();
    settle(&app).await;

    // A superuser edits the stored event, past the log's triggers.
    let (disable, edit) = match app.app.db.backend {
        ledger_projections::Backend::Sqlite => (
            "DROP TRIGGER events_no_update",
            "UPDATE events SET payload = replace(payload, 'individual', 'corporate') WHERE event_type = 'AccountOpened'",
        ),
        ledger_projections::Backend::Postgres => (
            "ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete",
            "UPDATE events SET payload = jsonb_set(payload::jsonb, '{AccountOpened,holder_kind}', '\"corporate\"')::json WHERE event_type = 'AccountOpened'",
        ),
    };
    for sql in [disable, edit] {
        sqlx::query(sql).execute(&app.app.db.any).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    // verify names the row (and so the leaf).
    let v = get(&app, "/api/v1/audit/verify", &compliance).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad_position"].as_u64(), Some(index + 1), "{v}");

    // The event as the log now holds it is not a leaf of the signed tree.
    let mut edited = opened.clone();
    let payload: (String,) = sqlx::query_as(match app.app.db.backend {
        ledger_projections::Backend::Sqlite => "SELECT payload FROM events WHERE aggregate_id = $1 AND sequence = $2",
        ledger_projections::Backend::Postgres => "SELECT payload::text FROM events WHERE aggregate_id = $1 AND sequence = $2",
    })
    .bind(opened["stream_id"].as_str().unwrap())
    .bind(opened["sequence"].as_i64().unwrap())
    .fetch_one(&app.app.db.any)
    .await
    .unwrap();
    edited["event"] = serde_json::from_str(&payload.0).unwrap();
    assert_eq!(edited["event"]["AccountOpened"]["holder_kind"], "corporate");
    let proof = get(&app, &format!("/api/v1/audit/proof/inclusion?leaf_index={index}&tree_size={}", signed.tree_size), &compliance).await;
    let path = hashes(&proof["proof"]);
    assert!(verify_inclusion(index, signed.tree_size, &leaf_of(&opened), &path, &signed.root), "the event as signed");
    assert!(!verify_inclusion(index, signed.tree_size, &leaf_of(&edited), &path, &signed.root), "the event as edited");

    // The forger rebuilds the trail from the edited log: the trail agrees
    // with itself again, but not with what was signed and published.
    app.app.projector.rebuild().await.unwrap();
    settle(&app).await;
    let v = get(&app, "/api/v1/audit/verify", &compliance).await;
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["problem"].as_str().unwrap().contains("no longer have the root the ledger signed"), "{v}");
    let against = ledger_api::proofs::against(&app.app, &note, None).await.unwrap();
    assert!(!against.ok && against.problem.as_deref().unwrap_or_default().contains("rewritten"), "{against:?}");
    let now = ledger_projections::checkpoint::tree_size(&app.app.db.any).await.unwrap();
    let proof = get(&app, &format!("/api/v1/audit/proof/consistency?from_size={}&to_size={now}", signed.tree_size), &compliance).await;
    let mut conn = app.app.db.any.acquire().await.unwrap();
    let root_now = merkle::Reader::new(&mut conn).root(now).await.unwrap();
    assert!(!verify_consistency(signed.tree_size, now, &signed.root, &root_now, &hashes(&proof["proof"])));
    // And the ledger will not sign the rewritten tree, even when the
    // forger also edits the checkpoint table's index of the root: only the
    // signed note counts.
    drop(conn);
    assert!(ledger_api::proofs::checkpoint_now(&app.app).await.is_err(), "no checkpoint over a rewritten trail");
    let rewritten =
        merkle::encode(&merkle::Reader::new(&mut app.app.db.any.acquire().await.unwrap()).root(signed.tree_size).await.unwrap());
    sqlx::query("UPDATE audit_checkpoints SET root_hash = $1 WHERE tree_size = $2")
        .bind(&rewritten)
        .bind(signed.tree_size as i64)
        .execute(&app.app.db.any)
        .await
        .unwrap();
    assert_eq!(get(&app, "/api/v1/audit/verify", &compliance).await["ok"], false);
    assert!(ledger_api::proofs::checkpoint_now(&app.app).await.is_err(), "still no checkpoint");
    // A note rewritten to the new root no longer carries the log's signature.
    let forged = note.replacen(&merkle::encode(&signed.root), &rewritten, 1);
    sqlx::query("UPDATE audit_checkpoints SET note = $1 WHERE tree_size = $2")
        .bind(&forged)
        .bind(signed.tree_size as i64)
        .execute(&app.app.db.any)
        .await
        .unwrap();
    let v = get(&app, "/api/v1/audit/verify", &compliance).await;
    assert!(v["problem"].as_str().unwrap().contains("does not carry this log's signature"), "{v}");
    assert!(ledger_api::proofs::checkpoint_now(&app.app).await.is_err(), "nor over an edited checkpoint");
}

/// An RFC 3161 authority stamps each checkpoint: the token is served as
/// `application/timestamp-reply`, OpenSSL's own verifier accepts it over
/// the exact note, and `verify` (the API and `ledger audit verify`) checks
/// it against the authority's root. An authority that is down delays a
/// stamp and loses none; a token swapped or checked against another root
/// is named.
async fn checkpoints_are_timestamped_by_an_rfc_3161_authority_and_openssl_agrees(app: TestApp) {
    use ledger_projections::timestamp::Trust;
    let tsa = ledger_tests::tsa::Tsa::start().await;
    let trust = Trust::from_pem(&tsa.root_pem()).expect("the root parses");
    let url = tsa.url.clone();
    // The secret key the one-shot command below is given too.
    let app = app
        .restart_with(|c| {
            c.tsa_url = Some(url.parse().unwrap());
            c.tsa_trust = Some(trust);
            c.secret_key_hex = Some(ledger_api::secrets::Secret::from("5a".repeat(32)));
        })
        .await;
    app.activity("t").await;
    let compliance = app.staff("Kato", "compliance").await;
    settle(&app).await;
    let (note, first) = published(&app, &compliance).await;
    assert_eq!(tsa.answered(), 1, "the checkpoint was stamped when it was made");

    // Listed with what the token states.
    let listed = get(&app, "/api/v1/audit/checkpoints", &compliance).await;
    let entry = listed["checkpoints"].as_array().unwrap().iter().find(|c| c["tree_size"] == first.tree_size).unwrap().clone();
    assert_eq!(entry["timestamp"]["policy"], "1.2.3.4.1", "{entry}");
    let stamped_at = chrono::DateTime::parse_from_rfc3339(entry["timestamp"]["time"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now() - stamped_at.to_utc()).num_minutes().abs() < 5, "{entry}");

    // The token, exactly as the authority sent it, checked by OpenSSL.
    let res = app.get(&format!("/api/v1/audit/checkpoints/{}/timestamp", first.tree_size), Some(&compliance)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/timestamp-reply");
    let token = res.bytes().await.unwrap().to_vec();
    let (ok, said) = tsa.openssl_verify(note.as_bytes(), &token);
    assert!(ok && said.contains("Verification: OK"), "{said}");
    let (ok, _) = tsa.openssl_verify(note.replacen('\n', "\n\n", 1).as_bytes(), &token);
    assert!(!ok, "not over another text");
    let v = get(&app, "/api/v1/audit/verify", &compliance).await;
    assert_eq!((v["ok"].as_bool(), v["timestamps_checked"].as_u64()), (Some(true), Some(1)), "{v}");
    // The read is on record.
    settle(&app).await;
    let reads = get(&app, "/api/v1/audit/events?type=AuditCheckpointRead&limit=1000", &compliance).await;
    assert!(reads["events"].as_array().unwrap().iter().any(|r| r["event"]["AuditCheckpointRead"]["timestamp"] == true), "{reads}");

    // The authority is down: the checkpoint is made without a stamp, and
    // gets it once the authority answers again.
    tsa.set_down(true);
    app.activity("u").await;
    let second = sign_now(&app).await;
    let res = app.get(&format!("/api/v1/audit/checkpoints/{}/timestamp", second.tree_size), Some(&compliance)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, body) = json_of(res).await;
    assert_eq!(error_code(&body), "not_found");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("has not answered"), "{body}");
    tsa.set_down(false);
    ledger_api::proofs::stamp_pending(&app.app).await;
    let res = app.get(&format!("/api/v1/audit/checkpoints/{}/timestamp", second.tree_size), Some(&compliance)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second_token = res.bytes().await.unwrap().to_vec();
    let second_note = ledger_projections::checkpoint::of_size(&app.app.db.any, second.tree_size as i64).await.unwrap().unwrap().note;
    assert!(tsa.openssl_verify(second_note.as_bytes(), &second_token).0);

    // `ledger audit checkpoint`, the operator's command, has its
    // checkpoint stamped at once.
    app.activity("v").await;
    settle(&app).await;
    let answered = tsa.answered();
    let program = ledger_tests::ledger_program!();
    let out =
        ledger_tests::process::run_command(program, &app.database_url, &app.data_dir, &["audit", "checkpoint", "--tsa-url", &tsa.url])
            .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tsa.answered(), answered + 1, "stamped by the command itself");
    let third = ledger_projections::checkpoint::latest(&app.app.db.any).await.unwrap().unwrap();
    assert!(third.tree_size > second.tree_size as i64 && third.timestamp.is_some(), "{third:?}");

    // `ledger audit verify`, the operator's command, checks every token.
    let ca_file = tsa.dir.join("ca.crt");
    let ca = ca_file.to_str().unwrap();
    let verify_command = ["audit", "verify", "--tsa-ca-file", ca];
    let run = || ledger_tests::process::run_command(program, &app.database_url, &app.data_dir, &verify_command);
    let out = run().await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("\"timestamps_checked\": 3") && said.contains("\"timestamps_missing\": 0"), "{said}");

    // A token swapped onto another checkpoint is named, by the API and the command.
    sqlx::query("UPDATE audit_checkpoints SET timestamp_reply = (SELECT timestamp_reply FROM audit_checkpoints WHERE tree_size = $1) WHERE tree_size = $2")
        .bind(second.tree_size as i64)
        .bind(first.tree_size as i64)
        .execute(&app.app.db.any)
        .await
        .unwrap();
    let v = get(&app, "/api/v1/audit/verify", &compliance).await;
    assert_eq!(v["ok"], false, "{v}");
    let problem = v["problem"].as_str().unwrap();
    assert!(problem.contains(&format!("tree size {}", first.tree_size)) && problem.contains("another text"), "{v}");
    let out = run().await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"), "{}", String::from_utf8_lossy(&out.stderr));

    // Against another authority's root, the genuine tokens do not check out.
    sqlx::query("UPDATE audit_checkpoints SET timestamp_reply = NULL WHERE tree_size = $1")
        .bind(first.tree_size as i64)
        .execute(&app.app.db.any)
        .await
        .unwrap();
    let other = tsa.dir.join("other");
    ledger_tests::tsa::make_authority(&other, "Other");
    let other_trust = Trust::from_pem(&std::fs::read(other.join("ca.crt")).unwrap()).unwrap();
    let check = ledger_projections::checkpoint::verify_timestamps(&app.app.db.any, Some(&other_trust)).await.unwrap();
    let (size, why) = check.problem.expect("refused");
    assert_eq!(size, second.tree_size as i64);
    assert_eq!(check.missing, 1, "the removed stamp is counted");
    assert!(why.contains("does not lead to a certificate in LEDGER_TSA_CA_FILE"), "{why}");
    // Without a root, a token is only checked to be over its note.
    let check = ledger_projections::checkpoint::verify_timestamps(&app.app.db.any, None).await.unwrap();
    assert_eq!((check.checked, check.unchecked, check.missing, check.problem), (0, 2, 1, None));
}
