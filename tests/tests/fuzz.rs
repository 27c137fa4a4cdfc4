//! The router fed generated and mutated requests in process (tower
//! `oneshot`): every route of the OpenAPI document, with JSON bodies,
//! WebAuthn credential shapes, odd paths and headers, NUL and invalid
//! UTF-8, anonymous and with real customer, staff and admin tokens. No
//! answer may be a 5xx and nothing may panic. The count and the answers'
//! statuses are printed.
//!
//! `LEDGER_FUZZ_REQUESTS` sets the count (20,000 by default, what CI runs);
//! the full run is documented in `docs/testing.md`:
//! `LEDGER_FUZZ_REQUESTS=1000000 cargo test --release -p ledger-tests --test fuzz -- --nocapture`.
//! `LEDGER_FUZZ_SEED` replays a run.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request};
use base64::Engine;
use futures_util::StreamExt;
use ledger_tests::harness::ORIGIN;
use ledger_tests::{Backend, SoftPasskey, TestApp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

/// What the generator knows of the world: real identifiers and tokens, so
/// that requests get past authentication and lookups.
struct World {
    routes: Vec<(Method, String)>,
    account_id: String,
    flow_id: String,
    passkey_id: String,
    customer: String,
    support: String,
    compliance: String,
    admin: String,
}

const FIELDS: &[&str] = &[
    "login_id",
    "password",
    "code",
    "flow_id",
    "ceremony_id",
    "credential",
    "passkey_name",
    "transaction_password",
    "reason",
    "passkey_id",
    "email",
    "holder_kind",
    "password_temporary",
    "slot",
    "note",
    "outcome",
    "temporary",
    "secret",
    "algorithm",
    "digits",
    "period",
    "reachable",
    "purpose",
    "cross_device_sign_in",
];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.gen_range(0..=max);
    (0..n).map(|_| rng.gen()).collect()
}

fn random_string(rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => String::new(),
        1 => "\u{0}".into(),
        2 => "x".repeat(rng.gen_range(200..20_000)),
        3 => "パスキー登録🔑\u{202e}\u{feff}".into(),
        4 => "' OR 1=1 --".into(),
        5 => "=HYPERLINK(\"http://x\")".into(),
        6 => "1234567".into(),
        7 => "taro@example.jp".into(),
        8 => String::from_utf8_lossy(&random_bytes(rng, 40)).into_owned(),
        _ => (0..rng.gen_range(1..30)).map(|_| rng.gen_range(' '..='~')).collect(),
    }
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen_range(-3i64..20)),
        4 => json!(rng.gen::<f64>() * 1e300),
        5 => Value::String(random_string(rng)),
        6 => Value::Array((0..rng.gen_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => random_object(rng, depth + 1),
    }
}

fn random_object(rng: &mut StdRng, depth: u32) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.gen_range(0..6) {
        let key = if rng.gen_bool(0.85) { FIELDS[rng.gen_range(0..FIELDS.len())].to_string() } else { random_string(rng) };
        let value = if key == "credential" && rng.gen_bool(0.8) { credential(rng) } else { random_value(rng, depth) };
        map.insert(key, value);
    }
    Value::Object(map)
}

/// A WebAuthn credential as a browser sends it, with any part wrong.
fn credential(rng: &mut StdRng) -> Value {
    let client_data = match rng.gen_range(0..4) {
        0 => b64(&random_bytes(rng, 200)),
        1 => b64(json!({"type": "webauthn.get", "challenge": b64(&random_bytes(rng, 32)), "origin": ORIGIN, "crossOrigin": false})
            .to_string()
            .as_bytes()),
        2 => b64(json!({"type": "webauthn.create", "challenge": random_value(rng, 3), "origin": "https://evil.example"})
            .to_string()
            .as_bytes()),
        _ => random_string(rng),
    };
    let id = b64(&random_bytes(rng, 80));
    let attachment = ["platform", "cross-platform", "", "\u{0}"][rng.gen_range(0..4)];
    let mut response = Map::new();
    response.insert("clientDataJSON".into(), Value::String(client_data));
    if rng.gen_bool(0.6) {
        response.insert("authenticatorData".into(), Value::String(b64(&random_bytes(rng, 300))));
        response.insert("signature".into(), Value::String(b64(&random_bytes(rng, 80))));
        response.insert("userHandle".into(), if rng.gen() { Value::String(b64(&random_bytes(rng, 64))) } else { Value::Null });
    } else {
        // CBOR-ish: a map header and random bytes.
        let mut cbor = vec![0xa3];
        cbor.extend(random_bytes(rng, 400));
        response.insert("attestationObject".into(), Value::String(b64(&cbor)));
        response.insert("transports".into(), json!(["internal", random_string(rng)]));
    }
    json!({
        "id": id,
        "rawId": if rng.gen_bool(0.8) { Value::String(id.clone()) } else { random_value(rng, 3) },
        "type": if rng.gen_bool(0.8) { "public-key".to_string() } else { random_string(rng) },
        "authenticatorAttachment": attachment,
        "response": Value::Object(response),
        "clientExtensionResults": {},
    })
}

fn path_value(rng: &mut StdRng, real: &str) -> String {
    match rng.gen_range(0..9) {
        0..=3 => real.to_string(),
        4 => uuid::Uuid::new_v4().to_string(),
        5 => "%00".into(),
        6 => "..%2F..%2Fetc%2Fpasswd".into(),
        7 => "%E3%83%91%E3%82%B9".repeat(rng.gen_range(1..200)),
        _ => b64(&random_bytes(rng, 40)),
    }
}

fn path(rng: &mut StdRng, world: &World, template: &str) -> String {
    if rng.gen_bool(0.05) {
        return ["/api/v1/", "//", "/api/v1/%ff%fe", "/api/v1/sessions/%00", "/.env", "/api/v1/registrations/x/y/z/w"][rng.gen_range(0..6)]
            .to_string()
            + &random_string(rng).replace(|c: char| !c.is_ascii_alphanumeric(), "");
    }
    let mut out = String::new();
    for segment in template.split('/').skip(1) {
        out.push('/');
        out.push_str(&match segment {
            "{account_id}" => path_value(rng, &world.account_id),
            "{flow_id}" => path_value(rng, &world.flow_id),
            "{passkey_id}" => path_value(rng, &world.passkey_id),
            s if s.starts_with('{') => path_value(rng, "x"),
            s => s.to_string(),
        });
    }
    if rng.gen_bool(0.2) {
        out.push_str(
            ["?limit=0", "?cursor=%00", "?q=taro@example.jp", "?account_id=x&limit=99999", "?format=xml", "?from=2026-13-45"]
                [rng.gen_range(0..6)],
        );
    }
    out
}

fn body(rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = match rng.gen_range(0..10) {
        0 => Vec::new(),
        1 => random_bytes(rng, 300),
        2 => random_value(rng, 0).to_string().into_bytes(),
        _ => random_object(rng, 0).to_string().into_bytes(),
    };
    // Mutations: a flipped byte, a NUL, invalid UTF-8, a cut.
    if !bytes.is_empty() && rng.gen_bool(0.3) {
        let at = rng.gen_range(0..bytes.len());
        match rng.gen_range(0..4) {
            0 => bytes[at] ^= 1 << rng.gen_range(0..8),
            1 => bytes.insert(at, 0),
            2 => bytes.splice(at..at, [0xff, 0xfe, 0xc3]).for_each(drop),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn request(rng: &mut StdRng, world: &World) -> Option<Request<Body>> {
    let (method, template) = &world.routes[rng.gen_range(0..world.routes.len())];
    let method = if rng.gen_bool(0.1) {
        [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS, Method::HEAD][rng.gen_range(0..7)].clone()
    } else {
        method.clone()
    };
    let mut builder = Request::builder().method(method).uri(path(rng, world, template));
    let token = match rng.gen_range(0..8) {
        0 => Some(world.customer.clone()),
        1 => Some(world.support.clone()),
        2 => Some(world.compliance.clone()),
        3 => Some(world.admin.clone()),
        4 => Some(random_string(rng)),
        _ => None,
    };
    let mut headers: Vec<(&str, Vec<u8>)> = Vec::new();
    if let Some(token) = token {
        headers.push(("authorization", format!("Bearer {token}").into_bytes()));
    }
    headers.push(("content-type", if rng.gen_bool(0.85) { b"application/json".to_vec() } else { random_string(rng).into_bytes() }));
    if rng.gen_bool(0.5) {
        headers.push(("x-channel", ["web", "mobile_app", "MOBILE", "", "\u{1}"][rng.gen_range(0..5)].as_bytes().to_vec()));
    }
    if rng.gen_bool(0.3) {
        headers.push(("x-forwarded-for", random_string(rng).into_bytes()));
    }
    if rng.gen_bool(0.3) {
        headers.push(("user-agent", random_string(rng).into_bytes()));
    }
    if rng.gen_bool(0.2) {
        headers.push(("sec-ch-ua-platform-version", random_string(rng).into_bytes()));
        headers.push(("x-request-id", random_string(rng).into_bytes()));
    }
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            builder = builder.header(name, value);
        }
    }
    let mut req = builder.body(Body::from(body(rng))).ok()?;
    let peer = SocketAddr::from(([10, rng.gen(), rng.gen(), rng.gen()], rng.gen_range(1024..65535)));
    req.extensions_mut().insert(ConnectInfo(peer));
    Some(req)
}

async fn world(app: &TestApp) -> World {
    let account_id = app.open_account("5500001", Some("fuzz@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    let registered = app.register("5500001", "fuzz@example.jp", &mut key).await;
    app.open_account("5500002", Some("fuzz-2@example.jp"), false).await;
    let (flow_id, _) = app.start_registration("5500002", "pass-word-1").await;
    let document: Value = app.get("/api/openapi.json", None).await.json().await.expect("the document");
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("operations").keys() {
            if let Ok(method) = method.to_uppercase().parse::<Method>() {
                routes.push((method, path.clone()));
            }
        }
    }
    World {
        routes,
        account_id,
        flow_id,
        passkey_id: registered["passkey"]["id"].as_str().expect("passkey").to_string(),
        customer: registered["session"]["token"].as_str().expect("session").to_string(),
        support: app.staff("Fuzz Support", "support").await,
        compliance: app.staff("Fuzz Compliance", "compliance").await,
        admin: app.admin_token.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_and_mutated_requests_never_get_a_5xx_or_a_panic_on_sqlite() {
    fuzz(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_and_mutated_requests_never_get_a_5xx_or_a_panic_on_postgres() {
    fuzz(Backend::Postgres).await;
}

async fn fuzz(backend: Backend) {
    let count: usize = std::env::var("LEDGER_FUZZ_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let seed: u64 = std::env::var("LEDGER_FUZZ_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or_else(rand::random);
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = ledger_api::client_ip::TrustedProxies::parse("10.0.0.0/8").expect("proxies");
    })
    .await
    else {
        return;
    };
    let world = world(&app).await;
    assert!(world.routes.len() > 30, "every route of the document: {}", world.routes.len());
    let router = ledger_api::http::app(app.app.clone());
    // Generated as they are sent: a million requests never sit in memory.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut generated = 0usize;
    let world_ref = &world;
    let requests = std::iter::from_fn(move || {
        while generated < count {
            generated += 1;
            if let Some(req) = request(&mut rng, world_ref) {
                return Some(req);
            }
        }
        None
    });
    let answers = futures_util::stream::iter(requests.map(|req| {
        let (router, what) = (router.clone(), format!("{} {}", req.method(), req.uri()));
        async move {
            let answered = tokio::spawn(async move {
                let res = router.oneshot(req).await.expect("infallible");
                let status = res.status();
                // The body is read (a stream that fails is a failure too),
                // and kept only when the answer is a 5xx.
                let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
                (status, if status.is_server_error() { body } else { Vec::new() })
            })
            .await;
            (what, answered)
        }
    }))
    .buffer_unordered(4);
    futures_util::pin_mut!(answers);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let (mut bad, mut sent) = (Vec::new(), 0usize);
    while let Some((what, answered)) = answers.next().await {
        sent += 1;
        match answered {
            Ok((status, body)) => {
                *statuses.entry(status.as_u16()).or_default() += 1;
                if status.is_server_error() {
                    bad.push(format!("{what} -> {status} {}", String::from_utf8_lossy(&body)));
                }
            }
            Err(e) => bad.push(format!("{what} -> panicked: {e}")),
        }
    }
    println!("fuzz ({backend:?}): seed {seed}, {sent} requests over {} routes, answers by status: {statuses:?}", world.routes.len());
    assert!(
        bad.is_empty(),
        "seed {seed}: {} of {sent} requests got a 5xx or panicked, e.g.:\n{}",
        bad.len(),
        bad[..bad.len().min(10)].join("\n")
    );
    assert!(statuses.keys().any(|s| (200..300).contains(s)), "some requests got through: {statuses:?}");
}
