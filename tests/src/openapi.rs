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

def properties(schema):
    """Every property a schema declares, through references and compositions."""
    schema = resolve(schema)
    found = dict(schema.get("properties", {}))
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            for name, sub in properties(part).items():
                found.setdefault(name, sub)
    return found

def items(schema):
    schema = resolve(schema)
    if "items" in schema:
        return schema["items"]
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            found = items(part)
            if found is not None:
                return found
    return None

def undeclared(schema, value, where):
    """Fields of `value`, at any depth, that `schema` does not declare
    (free-form objects, `type: object` without properties, are skipped)."""
    out = []
    if isinstance(value, dict):
        props = properties(schema)
        if not props:
            return out
        for key, sub in value.items():
            if key not in props:
                out.append(f"{where}.{key}")
            else:
                out += undeclared(props[key], sub, f"{where}.{key}")
    elif isinstance(value, list):
        inner = items(schema)
        if inner is not None:
            for i, sub in enumerate(value):
                out += undeclared(inner, sub, f"{where}[{i}]")
    return out

failures = []
for path, method, status, body in samples:
    operation = doc["paths"][path][method]
    if status == "request":
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
    else:
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
    root = {"components": doc["components"], "allOf": [schema]}
    for error in Draft202012Validator(root).iter_errors(body):
        failures.append(f"{method} {path} {status}: {error.json_path}: {error.message}")
    extra = undeclared(schema, body, "$")
    if extra:
        failures.append(f"{method} {path} {status}: fields not in the schema: {extra}")
if failures:
    sys.exit("\n".join(failures))
"#;

/// Validates `doc`, and each `[path, method, status, body]` of `samples`
/// against the response schema the document gives for it (`status`
/// `"request"`: the request body schema), refusing fields at any depth that
/// the schema does not declare. Without the
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
