//! Checks an OpenAPI document with independent implementations: the
//! `openapi-spec-validator` package validates it against the OpenAPI 3.1
//! specification, and `jsonschema` validates real answers against the
//! schemas it declares for them (`scripts/test` installs both with pip).

use serde_json::Value;

const CHECK: &str = r#"
import json, sys
from openapi_spec_validator import validate
from jsonschema import Draft202012Validator

doc = json.load(open(sys.argv[1]))
samples = json.load(open(sys.argv[2]))
validate(doc)

def resolve(schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema

def declared(schema):
    schema = resolve(schema)
    names = set(schema.get("properties", {}))
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            names |= declared(part)
    return names

failures = []
for path, method, status, body in samples:
    schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    root = {"components": doc["components"], "allOf": [schema]}
    for error in Draft202012Validator(root).iter_errors(body):
        failures.append(f"{method} {path} {status}: {error.json_path}: {error.message}")
    undeclared = set(body) - declared(schema) if isinstance(body, dict) else set()
    if undeclared:
        failures.append(f"{method} {path} {status}: fields not in the schema: {sorted(undeclared)}")
if failures:
    sys.exit("\n".join(failures))
"#;

/// Validates `doc`, and each `[path, method, status, body]` of `samples`
/// against the response schema the document gives for it. Without the
/// Python packages the check is skipped, except where `REQUIRE_POSTGRES`
/// marks a CI run that must run everything.
pub fn validate(doc: &Value, samples: &Value) {
    let probe = std::process::Command::new("python3").args(["-c", "import openapi_spec_validator, jsonschema"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("REQUIRE_POSTGRES").is_none(),
            "python3 with openapi-spec-validator is required (scripts/test installs it)"
        );
        eprintln!("skipping the OpenAPI validation: python3 -m pip install openapi-spec-validator");
        return;
    }
    let dir = tempfile_dir();
    let doc_path = dir.join("openapi.json");
    let samples_path = dir.join("samples.json");
    std::fs::write(&doc_path, doc.to_string()).expect("write the document");
    std::fs::write(&samples_path, samples.to_string()).expect("write the samples");
    let out = std::process::Command::new("python3").args(["-c", CHECK]).arg(&doc_path).arg(&samples_path).output().expect("python3 runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "OpenAPI validation failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ledger-openapi-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}
