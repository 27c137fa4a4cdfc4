//! Health, readiness, the OpenAPI document, metrics; an in-memory database
//! and an admin token from a file.

use ledger_tests::harness::json_of;
use ledger_tests::{Backend, SoftPasskey, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_with_the_projector_lag() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["migrations"], "applied");
    assert!(ready["projector_lag"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_with_its_methods_and_schemas() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let doc: Value = app.get("/api/openapi.json", None).await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let methods = ["get", "post", "put", "delete"];
    let mut operations = 0;
    for (path, item) in paths {
        // A concrete path: every parameter filled in.
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { uuid::Uuid::new_v4().to_string() } else { part.to_string() })
            .collect::<Vec<_>>()
            .join("/");
        for method in methods {
            let declared = item.get(method);
            let status = app.send(method.to_uppercase().parse().unwrap(), &concrete, None, None, "web").await.status();
            // Documented methods are routed, and every routed method is documented.
            match declared {
                Some(_) => assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed"),
                None => assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is routed but not documented"),
            }
            let Some(op) = declared else { continue };
            operations += 1;
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: responses"));
            for (code, response) in responses {
                if code == "204" {
                    assert!(response.get("content").is_none(), "{method} {path}: 204 has no body");
                    continue;
                }
                let content = response["content"].as_object().unwrap_or_else(|| panic!("{method} {path} {code}: a body schema"));
                assert!(content.values().all(|c| c.get("schema").is_some()), "{method} {path} {code}: a schema per content type");
            }
            assert!(responses.keys().any(|c| c.starts_with('2')), "{method} {path}: a success response");
            if path.starts_with("/api/v1/") {
                assert!(responses.contains_key("4XX"), "{method} {path}: the error shape");
                let channel = op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == "X-Channel"));
                assert!(channel, "{method} {path}: the X-Channel header");
            }
            if let Some(body) = op.get("requestBody") {
                assert!(body["content"]["application/json"]["schema"].is_object(), "{method} {path}: a request body schema");
            }
        }
    }
    assert!(operations >= 45, "only {operations} operations documented");
    // Every reference names a schema the document has.
    let text = doc.to_string();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    }
    // No API route is declared outside the document's macro: plain
    // `.route(` calls serve only the pages, metrics and the document.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src/http");
    for entry in std::fs::read_dir(dir).expect("http sources") {
        let source = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
        for part in source.split(".route(").skip(1) {
            let route = part.trim_start().trim_start_matches('"').split('"').next().unwrap_or_default();
            assert!(matches!(route, "/" | "/demo.js" | "/demo.css" | "/api/openapi.json"), "{route} is routed without documentation");
        }
    }
    // The document validates against the OpenAPI 3.1 specification, and
    // real answers validate against the schemas it declares for them.
    let error = app.post("/api/v1/registrations", json!({ "login_id": "" }), None).await;
    let (status, error) = json_of(error).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let account_id = app.open_account("6100001", Some("doc@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
    let (flow, res) = app.start_registration("6100001", "pass-word-1").await;
    let (_, password) = json_of(res).await;
    let code = app.code_for("doc@example.jp");
    // A wrong code first: the error's details are declared too.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, wrong_code) = json_of(app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": wrong }), None).await).await;
    assert_eq!((status, wrong_code["error"]["attempts_left"].is_number()), (StatusCode::UNAUTHORIZED, true), "{wrong_code}");
    let (_, otp) = json_of(app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": code }), None).await).await;
    let (_, options) = json_of(app.post(&format!("/api/v1/registrations/{flow}/passkey/options"), json!({}), None).await).await;
    let credential = key.register(&options);
    let (_, registered) =
        json_of(app.post(&format!("/api/v1/registrations/{flow}/passkey"), json!({ "credential": credential }), None).await).await;
    let (_, login) = json_of(app.passkey_login(&mut key).await).await;
    let token = login["session"]["token"].as_str().unwrap().to_string();
    let (_, mine) = json_of(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    let support = app.staff("Sato", "support").await;
    let (_, status_view) = json_of(app.get(&format!("/api/v1/staff/accounts/{account_id}"), Some(&support)).await).await;
    let (_, history) = json_of(app.get(&format!("/api/v1/staff/accounts/{account_id}/history"), Some(&support)).await).await;
    let compliance = app.staff("Kato", "compliance").await;
    let (_, trail) = json_of(app.get("/api/v1/audit/events", Some(&compliance)).await).await;
    let (_, adoption) = json_of(app.get("/api/v1/reports/adoption", Some(&compliance)).await).await;
    let (_, ready) = json_of(app.get("/readyz", None).await).await;
    let new_password = json!({ "password": "new-pass-word-1", "temporary": true });
    let path = format!("/api/v1/admin/accounts/{account_id}/password");
    let res = app.send(reqwest::Method::PUT, &path, Some(new_password.clone()), Some(&app.admin_token), "web").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let samples = json!([
        ["/api/v1/registrations/{flow_id}/otp", "post", "4XX", wrong_code],
        ["/api/v1/admin/accounts/{account_id}/password", "put", "request", new_password],
        ["/api/v1/registrations/{flow_id}/otp", "post", "request", { "code": code }],
        ["/api/v1/registrations", "post", "4XX", error],
        ["/api/v1/registrations/{flow_id}/password", "post", "200", password],
        ["/api/v1/registrations/{flow_id}/otp", "post", "200", otp],
        ["/api/v1/registrations/{flow_id}/passkey/options", "post", "200", options],
        ["/api/v1/registrations/{flow_id}/passkey", "post", "201", registered],
        ["/api/v1/sessions/passkey", "post", "201", login],
        ["/api/v1/me/passkeys", "get", "200", mine],
        ["/api/v1/staff/accounts/{account_id}", "get", "200", status_view],
        ["/api/v1/staff/accounts/{account_id}/history", "get", "200", history],
        ["/api/v1/audit/events", "get", "200", trail],
        ["/api/v1/reports/adoption", "get", "200", adoption],
        ["/readyz", "get", "200", ready],
    ]);
    ledger_tests::openapi::validate(&doc, &samples);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_channel_header_gets_a_stable_error() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let res =
        app.send(reqwest::Method::POST, "/api/v1/registrations", Some(serde_json::json!({ "login_id": "1234567" })), None, "fax").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_channel");
    assert!(v["error"]["message_ja"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_events_and_signals_in_prometheus_format() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    app.open_account("9100001", Some("same@example.jp"), false).await;
    app.open_account("9100002", Some("same@example.jp"), false).await;
    app.app.projector.catch_up().await.unwrap();
    let res = app.get("/metrics", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    assert!(text.contains("ledger_events_total{type=\"AccountOpened\"} 2"), "{text}");
    assert!(text.contains("ledger_accounts 2"));
    assert!(text.contains("ledger_projector_lag 0"));
    assert!(text.contains("ledger_signals{kind=\"shared_email\",status=\"open\"} 1"), "{text}");
    assert!(!text.contains("same@example.jp"), "nothing personal");
    // Requests by route template: never a concrete path.
    assert!(text.contains("ledger_http_requests_total{route=\"/api/v1/admin/accounts\",method=\"POST\",status=\"201\"} 2"), "{text}");
    assert!(text.contains("# TYPE ledger_http_request_duration_seconds histogram"), "{text}");
    // A reviewed signal is counted under its new status only.
    let compliance = app.staff("Kato", "compliance").await;
    let signals: Value = app.get("/api/v1/signals", Some(&compliance)).await.json().await.unwrap();
    let signal_id = signals["signals"][0]["signal_id"].as_str().unwrap().to_string();
    let review = json!({ "outcome": "confirmed", "note": "one family, two accounts" });
    assert_eq!(app.post(&format!("/api/v1/signals/{signal_id}/review"), review, Some(&compliance)).await.status(), StatusCode::OK);
    app.app.projector.catch_up().await.unwrap();
    let text = app.get("/metrics", None).await.text().await.unwrap();
    assert!(text.contains("ledger_signals{kind=\"shared_email\",status=\"confirmed\"} 1"), "{text}");
    assert!(!text.contains("status=\"open\""), "{text}");
    assert!(text.contains("route=\"/api/v1/signals/{signal_id}/review\""), "{text}");
    assert!(!text.contains(&signal_id), "{text}");
    // The service's own figures: the build, mail, the pool, the projector's stall.
    assert!(text.contains(&format!("ledger_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(text.contains("ledger_projector_stalled_seconds 0"), "{text}");
    assert!(text.contains("ledger_db_connections{state=\"in_use\"}"), "{text}");
    assert!(text.contains("ledger_mail_failed_total{kind=\"code\"} 0"), "present at 0 from the start: {text}");
    app.start_registration("9100003", "pass-word-1").await;
    app.open_account("9100004", Some("mailed@example.jp"), false).await;
    let (_, res) = app.start_registration("9100004", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = app.get("/metrics", None).await.text().await.unwrap();
    assert!(text.contains("ledger_mail_sent_total{kind=\"code\"} 1"), "{text}");
    // Counted as the trail grew, the same as counting the trail.
    let (in_trail,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_trail WHERE event_type = 'AccountOpened'").fetch_one(&app.app.db.any).await.unwrap();
    assert!(text.contains(&format!("ledger_events_total{{type=\"AccountOpened\"}} {in_trail}")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_keeps_everything_for_the_life_of_the_process() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.database_url = ledger_api::config::DatabaseUrl::new("sqlite::memory:"))
        .await
        .expect("in memory");
    app.open_account("7100001", Some("mem@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
    app.register("7100001", "mem@example.jp", &mut key).await;
    // Many connections of two pools, one database: the login finds the
    // credential bound through another connection, the projector sees it all.
    for _ in 0..3 {
        assert_eq!(app.passkey_login(&mut key).await.status(), StatusCode::CREATED);
    }
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let support = app.staff("Mori", "support").await;
    let (_, found) = json_of(app.get("/api/v1/staff/accounts?q=7100001", Some(&support)).await).await;
    let account = found["accounts"][0]["account_id"].as_str().expect("found in the read models").to_string();
    let (_, history) = json_of(app.get(&format!("/api/v1/staff/accounts/{account}/history"), Some(&support)).await).await;
    let types: Vec<&str> = history["events"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.iter().filter(|t| **t == "PasskeyLoginSucceeded").count(), 3, "{types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_file_opens_the_integration_api_and_a_short_token_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let dir = std::env::temp_dir().join(format!("ledger-token-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("admin.token");
    std::fs::write(&path, "too-short\n").unwrap();
    let refused = ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap_err();
    assert!(refused.contains("at least 32 characters") && !refused.contains("too-short"), "{refused}");

    let token = "a-core-system-token-of-forty-characters-x";
    std::fs::write(&path, format!("{token}\n")).unwrap();
    ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap();
    // Provisioning again at the next start adds no second staff member.
    ledger_api::cli::provision_admin_token(&app.app, &path).await.unwrap();
    let body = json!({ "login_id": "7100002", "holder_kind": "individual", "email": "t@example.jp", "password": "pass-word-1",
                       "password_temporary": false, "transaction_password": "trade-pass-1" });
    let res = app.post("/api/v1/admin/accounts", body, Some(token)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM staff WHERE name = 'core-system'").fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(n, 1);
    let (stored,): (String,) =
        sqlx::query_as("SELECT token_hash FROM staff WHERE name = 'core-system'").fetch_one(&app.app.db.any).await.unwrap();
    assert_ne!(stored, token, "only the hash is kept");
}

/// A request ID from the caller is echoed and recorded with the events the
/// request wrote; a missing one is made by the ledger; one too long or with
/// odd characters is replaced, never stored (an 8 KB header would otherwise
/// be copied into every event's metadata).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_recorded_and_kept_short() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let long = "x".repeat(8 * 1024);
    for (n, sent) in [Some("ops-2026.11:42_a"), None, Some(long.as_str()), Some("two words")].into_iter().enumerate() {
        let login_id = format!("930100{n}");
        let mut req = app.client.post(format!("{}/api/v1/admin/accounts", app.base)).bearer_auth(&app.admin_token).json(&json!({
            "login_id": login_id, "holder_kind": "individual", "email": format!("rid{n}@example.jp"), "password": "pass-word-1",
            "password_temporary": false, "transaction_password": "trade-pass-1" }));
        if let Some(id) = sent {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let echoed = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let account = res.json::<Value>().await.unwrap()["account_id"].as_str().unwrap().to_string();
        match sent {
            Some(id) if n == 0 => assert_eq!(echoed, id, "a plain ID is kept"),
            _ => assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "the ledger's own ID: {echoed:.80}"),
        }
        let events = app.events_of(&account).await;
        assert_eq!(events[0].2["request_id"], echoed.as_str(), "the event carries the ID the caller was told");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_that_do_not_parse_name_nothing_and_are_never_recorded() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let support = app.staff("Sato", "support").await;
    // A path ID that is no UUID is answered like an unknown one, in the
    // API's own error format.
    let (status, body) = json_of(app.get("/api/v1/staff/accounts/..%2Fsecrets", Some(&support)).await).await;
    assert_eq!((status, ledger_tests::harness::error_code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{body}");
    let (status, body) =
        json_of(app.post("/api/v1/registrations/not-a-flow/password", json!({ "password": "pass-word-1" }), None).await).await;
    assert_eq!((status, ledger_tests::harness::error_code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{body}");
    // An uppercase UUID is the same flow as its lowercase spelling.
    let res = app.post("/api/v1/registrations", json!({ "login_id": "6200001" }), None).await;
    let flow = res.json::<Value>().await.unwrap()["flow_id"].as_str().unwrap().to_uppercase();
    let (status, _) = json_of(app.post(&format!("/api/v1/registrations/{flow}/password"), json!({ "password": "x" }), None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the flow was found: an unknown login ID's password step fails like a wrong one");
    // A credential ID no authenticator makes (over 1,023 bytes) is refused
    // before anything is looked up or written.
    let system_events = || async {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM events WHERE aggregate_type = 'system'").fetch_one(&app.app.db.any).await.unwrap();
        n
    };
    let before = system_events().await;
    let options: Value = app.post("/api/v1/sessions/passkey/options", json!({}), None).await.json().await.unwrap();
    let mut key = SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
    let mut credential = key.assert(&options);
    let huge = "A".repeat(1400);
    credential["id"] = json!(huge);
    credential["rawId"] = json!(huge);
    let res = app.post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": credential }), None).await;
    let (status, body) = json_of(res).await;
    assert_eq!((status, ledger_tests::harness::error_code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credential"), "{body}");
    assert_eq!(system_events().await, before, "nothing recorded for it");
    // An unknown credential of a plausible size is recorded, as before.
    let options: Value = app.post("/api/v1/sessions/passkey/options", json!({}), None).await.json().await.unwrap();
    let credential = key.assert(&options);
    let res = app.post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": credential }), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(system_events().await, before + 1);
}

/// CORS is closed unless origins are configured; then it opens for them
/// alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_pages_may_call_the_api_only_from_configured_origins() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let preflight = |app: &TestApp, origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/sessions/passkey/options", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, x-channel")
            .send()
    };
    let allowed = |res: &reqwest::Response| res.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
    let call_from_the_origin = |app: &TestApp| {
        app.client
            .post(format!("{}/api/v1/sessions/passkey/options", app.base))
            .header("origin", "https://www.broker.example")
            .json(&json!({}))
            .send()
    };
    let res = preflight(&app, "https://www.broker.example").await.unwrap();
    assert_eq!(allowed(&res), None, "closed by default");
    let res = call_from_the_origin(&app).await.unwrap();
    assert_eq!(allowed(&res), None);

    let app = app.restart_with(|c| c.cors_origins = vec!["https://www.broker.example".into()]).await;
    let res = preflight(&app, "https://www.broker.example").await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(allowed(&res).as_deref(), Some("https://www.broker.example"));
    let methods = res.headers().get("access-control-allow-methods").unwrap().to_str().unwrap().to_string();
    assert!(methods.contains("POST") && methods.contains("DELETE"), "{methods}");
    assert!(res.headers().get("access-control-allow-credentials").is_none(), "bearer tokens, no cookies");
    assert_eq!(res.headers().get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "a preflight is headed too");
    assert!(res.headers().get("x-request-id").is_some());
    let res = call_from_the_origin(&app).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(allowed(&res).as_deref(), Some("https://www.broker.example"));
    let res = preflight(&app, "https://evil.example").await.unwrap();
    assert_eq!(allowed(&res), None, "another origin stays out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_api_answers_are_not_cached() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let page = app.get("/", None).await;
    let header = |res: &reqwest::Response, name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let csp = header(&page, "content-security-policy").expect("a policy on the page");
    let directive = |name: &str| csp.split(';').map(str::trim).find(|d| d.starts_with(name)).unwrap_or_default().to_string();
    assert_eq!(directive("script-src"), "script-src 'self'", "{csp}");
    assert_eq!(directive("style-src"), "style-src 'self'", "{csp}");
    assert_eq!(directive("frame-ancestors"), "frame-ancestors 'none'", "{csp}");
    assert_eq!(header(&page, "x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header(&page, "x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(header(&page, "referrer-policy").as_deref(), Some("no-referrer"));
    assert_eq!(header(&page, "strict-transport-security"), None, "no HSTS over plain http");
    // The page loads nothing inline: its script and style sheet come from the ledger.
    let html = page.text().await.unwrap();
    let handler = html.split(" on").skip(1).any(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert!(!html.contains("<style") && !html.contains("<script>") && !handler, "nothing inline");
    for asset in ["/demo.js", "/demo.css"] {
        let res = app.get(asset, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
        assert_eq!(header(&res, "cache-control").as_deref(), Some("no-cache"), "{asset}");
    }
    // An answer with a token is never stored by a browser or a proxy.
    app.open_account("6300001", Some("hdr@example.jp"), false).await;
    let mut key = SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
    app.register("6300001", "hdr@example.jp", &mut key).await;
    let login = app.passkey_login(&mut key).await;
    assert_eq!(login.status(), StatusCode::CREATED);
    assert_eq!(header(&login, "cache-control").as_deref(), Some("no-store"));
    assert!(header(&login, "content-security-policy").is_some());
    // Over https, browsers are told to stay on it.
    let https = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.origin = "https://ledger.example.jp".into();
        c.rp_id = "ledger.example.jp".into();
    })
    .await
    .expect("sqlite");
    let res = https.get("/healthz", None).await;
    assert_eq!(header(&res, "strict-transport-security").as_deref(), Some("max-age=31536000; includeSubDomains"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_in_the_error_shape_with_its_status() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let compliance = app.staff("Kato", "compliance").await;
    let check = |expected: (StatusCode, &'static str)| {
        move |(status, body): (StatusCode, Value)| {
            assert_eq!((status, ledger_tests::harness::error_code(&body)), expected, "{body}");
            assert!(body["error"]["message_ja"].is_string(), "{body}");
        }
    };
    // No such path, or no such method on a path.
    check((StatusCode::NOT_FOUND, "not_found"))(json_of(app.get("/api/v1/nothing-here", None).await).await);
    check((StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"))(json_of(app.get("/api/v1/registrations", None).await).await);
    // A query string of the wrong shape.
    let res = app.get("/api/v1/audit/events?limit=many", Some(&compliance)).await;
    check((StatusCode::BAD_REQUEST, "invalid_request"))(json_of(res).await);
    // A body over the limit (last: the server answers before reading the
    // rest of the body and closes that connection).
    let huge = json!({ "login_id": "x".repeat(3 * 1024 * 1024) });
    check((StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"))(json_of(app.post("/api/v1/registrations", huge, None).await).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_read_with_the_metrics_token_when_one_is_set() {
    let token = "metrics-scraper-token-0123456789abcdef";
    let app =
        TestApp::spawn_with(Backend::Sqlite, |c| c.metrics_token = Some(ledger_api::secrets::Secret::from(token))).await.expect("sqlite");
    let (status, body) = json_of(app.get("/metrics", None).await).await;
    assert_eq!((status, ledger_tests::harness::error_code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"), "{body}");
    let (status, _) = json_of(app.get("/metrics", Some("not-the-token")).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let res = app.get("/metrics", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("ledger_accounts 0"));
}
