//! What an anonymous client on the internet can and cannot do to the
//! service and its customers.

use ledger_tests::harness::{error_code, json_of};
use ledger_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

ledger_tests::on_both_databases!(
    a_flood_of_password_attempts_is_answered_busy_not_by_exhausting_memory,
    a_lock_out_ends_the_sessions_opened_before_it,
    wrong_codes_count_per_account_not_only_per_code,
    a_nul_character_anywhere_is_refused_as_a_bad_request,
    the_client_address_comes_from_a_forwarded_header_only_through_a_trusted_proxy,
    an_unknown_login_id_locks_like_a_known_one,
    a_lock_names_its_clients_and_many_clients_raise_a_signal,
    a_spray_of_login_ids_from_one_client_or_one_network_is_credential_stuffing,
    a_client_past_its_failed_attempts_is_throttled_and_summarised,
    anonymous_registration_starts_neither_write_to_an_account_nor_push_out_its_flow,
    a_burst_of_parallel_failures_from_one_client_is_bounded,
    a_registration_answers_alike_for_a_known_and_an_unknown_id_at_every_step,
    wrong_passwords_for_one_login_id_are_throttled_before_the_lock,
);

/// Wrong passwords for one login ID, from any clients, are slowed before
/// the account locks: past the allowance (3 a minute by default) the step
/// answers 429 with Retry-After and checks nothing; a known and an unknown
/// ID alike.
async fn wrong_passwords_for_one_login_id_are_throttled_before_the_lock(app: TestApp) {
    let app = app.restart_with(|c| c.failed_passwords_per_login_id_per_minute = 3).await;
    let account = app.open_account("7300001", Some("slow@example.jp"), false).await;
    let answers = |login_id: &'static str| {
        let app = &app;
        async move {
            let mut seen = Vec::new();
            for n in 0..5 {
                let res = app
                    .client
                    .post(format!("{}/api/v1/sessions/password", app.base))
                    .header("x-forwarded-for", format!("198.51.100.{n}"))
                    .json(&json!({ "login_id": login_id, "password": "wrong-pass-1" }))
                    .send()
                    .await
                    .unwrap();
                let retry_after = res.headers().get("retry-after").is_some();
                let (status, body) = json_of(res).await;
                seen.push((status, error_code(&body).to_string(), retry_after));
            }
            seen
        }
    };
    let known = answers("7300001").await;
    let refused = (StatusCode::TOO_MANY_REQUESTS, "too_many_requests".to_string(), true);
    assert_eq!(known[3..], [refused.clone(), refused.clone()], "{known:?}");
    assert_eq!(answers("7399999").await, known, "an unknown ID alike");
    let events = app.events_of(&account).await;
    assert_eq!(events.iter().filter(|(t, _, _)| t == "PasswordRejected").count(), 3, "refused steps check nothing");
    assert!(!events.iter().any(|(t, _, _)| t == "LoginLocked"), "not locked yet");
    ledger_api::throttle::record_window(&app.app).await;
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM events WHERE event_type = 'LoginAttemptsThrottled'").fetch_one(&app.app.db.any).await.unwrap();
    assert_eq!(n, 2, "one summary per login ID");
}

/// Failures only count as their answers come back: a burst sent in
/// parallel is bounded by the attempts one client may have under way.
async fn a_burst_of_parallel_failures_from_one_client_is_bounded(app: TestApp) {
    let attempts = (0..40)
        .map(|n| app.post("/api/v1/sessions/password", json!({ "login_id": format!("burst{n}"), "password": "wrong-pass-1" }), None));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts).await.into_iter().map(|r| r.status()).collect();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(refused >= 40 - ledger_api::throttle::MAX_IN_FLIGHT as usize, "{statuses:?}");
}

/// Before its password step a registration is nobody's: every step of a
/// flow begun for a real login ID answers as one begun for a made-up ID.
async fn a_registration_answers_alike_for_a_known_and_an_unknown_id_at_every_step(app: TestApp) {
    app.open_account("7400001", Some("alike@example.jp"), false).await;
    let answers = |login_id: &'static str| {
        let app = &app;
        async move {
            let mut seen = Vec::new();
            let (_, v) = json_of(app.post("/api/v1/registrations", json!({ "login_id": login_id }), None).await).await;
            let flow = v["flow_id"].as_str().unwrap().to_string();
            for (path, body) in [
                ("otp/resend", json!({})),
                ("otp", json!({ "code": "123456" })),
                ("otp/send", json!({ "slot": 1 })),
                ("passkey/options", json!({})),
                ("passkey/abandoned", json!({ "reason": "AbortError" })),
                ("passkey", json!({ "credential": {} })),
            ] {
                let (status, v) = json_of(app.post(&format!("/api/v1/registrations/{flow}/{path}"), body, None).await).await;
                seen.push((path, status, error_code(&v).to_string()));
            }
            // The password on another channel than the flow began on.
            let res = app
                .send(
                    reqwest::Method::POST,
                    &format!("/api/v1/registrations/{flow}/password"),
                    Some(json!({ "password": "wrong-pass-1" })),
                    None,
                    "mobile_app",
                )
                .await;
            let (status, v) = json_of(res).await;
            seen.push(("password on another channel", status, error_code(&v).to_string()));
            seen
        }
    };
    let known = answers("7400001").await;
    assert_eq!(answers("7499999").await, known);
    assert_eq!(known.last().map(|(_, s, c)| (*s, c.as_str())), Some((StatusCode::CONFLICT, "wrong_channel")), "{known:?}");
}

/// Anyone can type a customer's login ID on the registration screen: those
/// starts write nothing to the account (the flow becomes the account's at
/// its password step), so a flood of them cannot pollute its history or
/// push out the flow the customer is using.
async fn anonymous_registration_starts_neither_write_to_an_account_nor_push_out_its_flow(app: TestApp) {
    let account = app.open_account("7200001", Some("busy@example.jp"), false).await;
    let (flow, res) = app.start_registration("7200001", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let before = app.events_of(&account).await.len();
    for _ in 0..25 {
        let res = app.post("/api/v1/registrations", json!({ "login_id": "7200001" }), None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert_eq!(app.events_of(&account).await.len(), before, "nothing written to the account");
    let code = app.code_for("busy@example.jp");
    let (status, body) = json_of(app.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": code }), None).await).await;
    assert_eq!(status, StatusCode::OK, "the customer's flow is still there: {body}");
}

/// A flood of failing attempts from one client: past its allowance the
/// client is answered 429 with Retry-After before any account or log is
/// touched, and the refusals are recorded as one event with their count.
async fn a_client_past_its_failed_attempts_is_throttled_and_summarised(app: TestApp) {
    let app = app.restart_with(|c| c.failed_attempts_per_client_per_minute = 3).await;
    let count = |event_type: &'static str| {
        let app = &app;
        async move {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events WHERE aggregate_type = 'system' AND event_type = $1")
                .bind(event_type)
                .fetch_one(&app.app.db.any)
                .await
                .unwrap();
            n
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let res = app.post("/api/v1/sessions/password", json!({ "login_id": "7100001", "password": "wrong-pass-1" }), None).await;
        let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        let headed = res.headers().get("cache-control").is_some() && res.headers().get("x-request-id").is_some();
        let (status, body) = json_of(res).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(headed, "a refusal carries the usual headers");
            assert_eq!(error_code(&body), "too_many_requests", "{body}");
            assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)), "{retry_after:?}");
        }
        statuses.push(status);
    }
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3], "{statuses:?}");
    assert_eq!(refused, 7, "{statuses:?}");
    assert_eq!(count("UnknownLoginIdRejected").await, 3, "a refused attempt records nothing of its own");
    ledger_api::throttle::record_window(&app.app).await;
    let (payload,): (String,) =
        sqlx::query_as("SELECT CAST(payload AS TEXT) FROM events WHERE aggregate_type = 'system' AND event_type = 'AttemptsThrottled'")
            .fetch_one(&app.app.db.any)
            .await
            .unwrap();
    let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["AttemptsThrottled"], json!({ "client": "127.0.0.1", "refused": 7, "window_secs": 60 }));
}

/// A lock records the clients whose wrong passwords caused it; wrong
/// passwords from many clients are an attack, and compliance sees a signal.
async fn a_lock_names_its_clients_and_many_clients_raise_a_signal(app: TestApp) {
    let app = app.restart_with(|c| c.trusted_proxies = ledger_api::client_ip::TrustedProxies::parse("127.0.0.0/8").unwrap()).await;
    let account = app.open_account("7000001", Some("target@example.jp"), false).await;
    for n in 1..=5 {
        let res = app
            .client
            .post(format!("{}/api/v1/sessions/password", app.base))
            .header("x-forwarded-for", format!("203.0.113.{}", n % 3))
            .json(&json!({ "login_id": "7000001", "password": "wrong-pass-1" }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error());
    }
    let events = app.events_of(&account).await;
    let locked = events.iter().find(|(t, _, _)| t == "LoginLocked").map(|(_, p, _)| p["LoginLocked"].clone()).expect("locked");
    assert_eq!(locked["clients"], json!(["203.0.113.1", "203.0.113.2", "203.0.113.0"]));
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let compliance = app.staff("Mori", "compliance").await;
    let (status, v) = json_of(app.get("/api/v1/signals", Some(&compliance)).await).await;
    assert_eq!(status, StatusCode::OK);
    let signal = v["signals"].as_array().unwrap().iter().find(|s| s["kind"] == "lockout_from_many_clients").cloned();
    let signal = signal.unwrap_or_else(|| panic!("raised: {v}"));
    assert_eq!(signal["severity"], "high");
    assert_eq!(signal["accounts"], json!([account]));

    // Spraying that never locks (a right password between): wrong
    // passwords from five clients within the hour are a signal too.
    let sprayed = app.open_account("7000002", Some("sprayed@example.jp"), false).await;
    for (client, password) in
        [(11, "wrong-pass-1"), (12, "wrong-pass-1"), (13, "wrong-pass-1"), (14, "wrong-pass-1"), (15, "pass-word-1"), (16, "wrong-pass-1")]
    {
        app.client
            .post(format!("{}/api/v1/sessions/password", app.base))
            .header("x-forwarded-for", format!("203.0.113.{client}"))
            .json(&json!({ "login_id": "7000002", "password": password }))
            .send()
            .await
            .unwrap();
    }
    assert!(!app.events_of(&sprayed).await.iter().any(|(t, _, _)| t == "LoginLocked"), "not locked");
    assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
    let (_, v) =
        json_of(app.get(&format!("/api/v1/signals?kind=wrong_passwords_from_many_clients&account_id={sprayed}"), Some(&compliance)).await)
            .await;
    let signals = v["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 1, "{v}");
    let ips: Vec<&str> = signals[0]["evidence"].as_array().unwrap().iter().map(|e| e["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14", "203.0.113.16"]);
}

/// Wrong passwords for one login ID each, from `client`.
async fn spray(app: &TestApp, client: &str, login_ids: &[&str]) {
    for login_id in login_ids {
        let res = app
            .client
            .post(format!("{}/api/v1/sessions/password", app.base))
            .header("x-forwarded-for", client)
            .json(&json!({ "login_id": login_id, "password": "wrong-pass-1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{login_id} from {client}");
    }
}

/// Wrong passwords for many login IDs, known or not, from one client or
/// from the addresses of one network, are credential stuffing: compliance
/// sees one signal per spray, with the exact count and each attempt.
async fn a_spray_of_login_ids_from_one_client_or_one_network_is_credential_stuffing(app: TestApp) {
    let app = app.restart_with(|c| c.trusted_proxies = ledger_api::client_ip::TrustedProxies::parse("127.0.0.0/8").unwrap()).await;
    let known = app.open_account("7100001", Some("known7@example.jp"), false).await;
    let compliance = app.staff("Mori", "compliance").await;
    let signals = |kind: &'static str| {
        let (app, compliance) = (&app, &compliance);
        async move {
            assert!(app.app.projector.settle(std::time::Duration::from_secs(10)).await.unwrap());
            let (status, v) = json_of(app.get(&format!("/api/v1/signals?kind={kind}"), Some(compliance)).await).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["signals"].as_array().unwrap().clone()
        }
    };
    // Nine IDs from one client: below the rule, nothing.
    let ids = ["9100001", "9100002", "山田太郎", "＝1+1", "9100005", "9100006", "9100007", "9100008", "9100009"];
    spray(&app, "198.51.100.7", &ids).await;
    // The same ID again does not count twice.
    spray(&app, "198.51.100.7", &["9100001"]).await;
    assert!(signals("many_login_ids_from_one_client").await.is_empty());
    // The tenth ID raises it; a known account's and two more join it.
    spray(&app, "198.51.100.7", &["9100010", "7100001", "9100012"]).await;
    let found = signals("many_login_ids_from_one_client").await;
    assert_eq!(found.len(), 1, "one signal per spray: {found:#?}");
    let signal = &found[0];
    assert_eq!(signal["severity"], "high");
    assert!(
        signal["summary"]["en"]
            .as_str()
            .unwrap()
            .starts_with("Wrong passwords for 12 different login IDs came from one client (198.51.100.7)"),
        "{signal}"
    );
    assert!(signal["summary"]["ja"].as_str().unwrap().contains("12件の異なるログインID"), "{signal}");
    assert_eq!(signal["accounts"], json!([known]), "the known account is named");
    let evidence = signal["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 12);
    assert!(evidence.iter().all(|e| e["ip"] == "198.51.100.7" && e["at"].as_str().unwrap().ends_with("+09:00")), "{evidence:#?}");
    let lines: Vec<&str> = evidence.iter().map(|e| e["line"]["ja"].as_str().unwrap()).collect();
    assert!(lines.iter().any(|l| l.contains("山田太郎")), "{lines:#?}");
    // One client alone is not also a network spray.
    assert!(signals("many_login_ids_from_one_network").await.is_empty());

    // The spray outlasts the window (five IDs six minutes on, five more
    // six minutes after): the same signal counts on, from 12.
    let later: Vec<String> = (1..=10).map(|n| format!("91500{n:02}")).collect();
    let later: Vec<&str> = later.iter().map(String::as_str).collect();
    app.clock.advance(chrono::Duration::minutes(6));
    spray(&app, "198.51.100.7", &later[..5]).await;
    app.clock.advance(chrono::Duration::minutes(6));
    spray(&app, "198.51.100.7", &later[5..]).await;
    let found = signals("many_login_ids_from_one_client").await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0]["summary"]["en"].as_str().unwrap().starts_with("Wrong passwords for 22 different login IDs"), "{}", found[0]);
    assert_eq!(found[0]["evidence"].as_array().unwrap().len(), 22);
    assert_eq!(found[0]["accounts"], json!([known]), "the account tried before is still named");

    // An IPv6 client is its /64, as the throttle counts it.
    let ids: Vec<String> = (1..=10).map(|n| format!("93000{n:02}")).collect();
    for (n, id) in ids.iter().enumerate() {
        spray(&app, &format!("2001:db8:7:1::{:x}", n + 1), &[id.as_str()]).await;
    }
    let found = signals("many_login_ids_from_one_client").await;
    assert!(
        found.iter().any(|s| s["signal_id"].as_str().unwrap().contains("2001:db8:7:1::-64")
            && s["summary"]["en"].as_str().unwrap().contains("(2001:db8:7:1::/64)")),
        "{found:#?}"
    );

    // Twenty neighbours of one /24, one ID each: the network rule.
    let ids: Vec<String> = (1..=20).map(|n| format!("92000{n:02}")).collect();
    for (n, id) in ids.iter().enumerate() {
        spray(&app, &format!("192.0.2.{}", n + 1), &[id.as_str()]).await;
    }
    let found = signals("many_login_ids_from_one_network").await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]["summary"]["en"].as_str().unwrap().contains("20 different login IDs came from the network 192.0.2.0/24"),
        "{}",
        found[0]
    );
    assert_eq!(signals("many_login_ids_from_one_client").await.len(), 2, "no client of 192.0.2.0/24 sent ten");
    // Reviewed by its ID as listed (no slash in it), and the line names the network.
    let id = found[0]["signal_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("many_login_ids_from_one_network:192.0.2.0-24:"), "{id}");
    let (status, v) = json_of(
        app.post(&format!("/api/v1/signals/{id}/review"), json!({ "outcome": "dismissed", "note": "our pen test" }), Some(&compliance))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let trail = json_of(app.get("/api/v1/audit/events?type=SignalReviewed", Some(&compliance)).await).await.1;
    assert!(trail["events"][0]["line"]["en"].as_str().unwrap().contains("from 192.0.2.0/24 was reviewed"), "{trail}");

    // The rules' window rebuilds to what live updating produced.
    app.assert_rebuild_matches_live().await;
}

/// Wrong passwords for an unknown login ID answer exactly as for a real
/// account: invalid credentials, then, at the same count, the lock. The
/// lock does not tell an attacker that the ID exists.
async fn an_unknown_login_id_locks_like_a_known_one(app: TestApp) {
    app.open_account("6900001", Some("known@example.jp"), false).await;
    let answers = |login_id: &'static str| {
        let app = &app;
        async move {
            let mut seen = Vec::new();
            for _ in 0..7 {
                let res = app.post("/api/v1/sessions/password", json!({ "login_id": login_id, "password": "wrong-pass-1" }), None).await;
                let (status, body) = json_of(res).await;
                seen.push((status, error_code(&body).to_string()));
            }
            seen
        }
    };
    let known = answers("6900001").await;
    let unknown = answers("6999999").await;
    assert_eq!(known[4], (StatusCode::LOCKED, "login_locked".to_string()), "{known:?}");
    assert_eq!(unknown, known, "the same answers, in the same order");
    // The registration's password step counts for the unknown ID too.
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (flow, res) = app.start_registration("6999998", "wrong-pass-1").await;
        assert!(!flow.is_empty());
        let (status, body) = json_of(res).await;
        seen.push((status, error_code(&body).to_string()));
    }
    assert_eq!(seen.last(), Some(&(StatusCode::LOCKED, "login_locked".to_string())), "{seen:?}");
}

/// The address an attempt is recorded with: the socket's peer, whatever
/// X-Forwarded-For a client sends; through a proxy the deployment trusts,
/// the right-most hop in the header that is not such a proxy.
async fn the_client_address_comes_from_a_forwarded_header_only_through_a_trusted_proxy(app: TestApp) {
    let account = app.open_account("6800001", Some("proxy@example.jp"), false).await;
    let attempt = |app: &TestApp, forwarded: &'static str| {
        app.client
            .post(format!("{}/api/v1/sessions/password", app.base))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "login_id": "6800001", "password": "wrong-pass-1" }))
            .send()
    };
    let last_ip = |events: Vec<(String, serde_json::Value, serde_json::Value)>| {
        events.iter().rev().find(|(t, _, _)| t == "PasswordRejected").map(|(_, _, m)| m["ip"].clone()).expect("recorded")
    };
    assert_eq!(attempt(&app, "203.0.113.9").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(last_ip(app.events_of(&account).await), "127.0.0.1", "a forged header changes nothing");

    let app = app.restart_with(|c| c.trusted_proxies = ledger_api::client_ip::TrustedProxies::parse("127.0.0.0/8").unwrap()).await;
    assert_eq!(attempt(&app, "198.51.100.1, 203.0.113.9").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(last_ip(app.events_of(&account).await), "203.0.113.9", "the hop the trusted proxy saw");
    // A client's own garbage (a byte that is not ASCII) to the left of what
    // the proxy appended does not hide it, nor make the proxy the client.
    let res = app
        .client
        .post(format!("{}/api/v1/sessions/password", app.base))
        .header("x-forwarded-for", reqwest::header::HeaderValue::from_bytes(b"198.51.100.66\xff, 203.0.113.11").unwrap())
        .json(&json!({ "login_id": "6800001", "password": "wrong-pass-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(last_ip(app.events_of(&account).await), "203.0.113.11");
}

/// PostgreSQL cannot keep a NUL character in text: wherever a client puts
/// one (a JSON string, a path, a query), the answer is 400 in the error
/// format, never a 500, and nothing is recorded.
async fn a_nul_character_anywhere_is_refused_as_a_bad_request(app: TestApp) {
    let account = app.open_account("6700001", Some("nul@example.jp"), false).await;
    let mut key = ledger_tests::SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
    let token = app.register("6700001", "nul@example.jp", &mut key).await["session"]["token"].as_str().unwrap().to_string();
    let support = app.staff("Ito", "support").await;
    let compliance = app.staff("Kudo", "compliance").await;
    let before = app.events_of(&account).await.len();
    let body = r#"{"reason":"identity checked\u0000by phone"}"#;
    let res = app
        .client
        .post(format!("{}/api/v1/staff/accounts/{account}/unlock", app.base))
        .bearer_auth(&support)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(res).await;
    assert_eq!((status, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"), "{v}");
    let res = app.post("/api/v1/sessions/password", json!({ "login_id": "6700001\u{0}", "password": "pass-word-1" }), None).await;
    let (status, v) = json_of(res).await;
    assert_eq!((status, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"), "{v}");
    for (path, bearer) in [
        ("/api/v1/audit/events?type=Account%00Opened", &compliance),
        ("/api/v1/me/passkeys/abc%00def", &token),
        ("/api/v1/staff/accounts?q=6700%001", &support),
    ] {
        let res = app.send(reqwest::Method::GET, path, None, Some(bearer), "web").await;
        let (status, v) = json_of(res).await;
        assert_eq!((status, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"), "{path}: {v}");
    }
    assert_eq!(app.events_of(&account).await.len(), before, "nothing recorded");
}

/// Password hashing is bounded: with one slot and a short wait, a burst of
/// parallel attempts (for a known and an unknown login ID alike) is partly
/// answered `busy` (503) instead of queueing without limit; what gets a slot
/// is checked as usual.
async fn a_flood_of_password_attempts_is_answered_busy_not_by_exhausting_memory(app: TestApp) {
    let app = app
        .restart_with(|c| {
            c.password_hash_slots = 1;
            c.password_hash_wait = std::time::Duration::from_millis(1);
        })
        .await;
    app.open_account("6400001", Some("flood@example.jp"), false).await;
    let attempts = (0..12).map(|i| {
        let login_id = if i % 2 == 0 { "6400001" } else { "6499999" };
        app.post("/api/v1/sessions/password", json!({ "login_id": login_id, "password": "wrong-pass-1" }), None)
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut busy = 0;
    for res in answers {
        let (status, body) = json_of(res).await;
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(error_code(&body), "busy", "{body}");
                assert!(body["error"]["message_ja"].is_string());
                busy += 1;
            }
            StatusCode::UNAUTHORIZED => assert_eq!(error_code(&body), "invalid_credentials", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(busy > 0, "a burst over one slot is partly refused");
    assert!(busy < 12, "one attempt at least had the slot");
}

/// A lock-out ends the sessions opened before it: whoever typed the wrong
/// passwords, nobody carries on signed in past the lock.
async fn a_lock_out_ends_the_sessions_opened_before_it(app: TestApp) {
    let account = app.open_account("6500001", Some("locked@example.jp"), false).await;
    let mut key = ledger_tests::SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
    let registered = app.register("6500001", "locked@example.jp", &mut key).await;
    let token = registered["session"]["token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/me/passkeys", Some(&token)).await.status(), StatusCode::OK);
    for _ in 0..5 {
        app.post("/api/v1/sessions/password", json!({ "login_id": "6500001", "password": "wrong-pass-1" }), None).await;
    }
    let (status, body) = json_of(app.get("/api/v1/me/passkeys", Some(&token)).await).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "session_ended"), "{body}");
    let events = app.events_of(&account).await;
    let ended = events.iter().find(|(t, _, _)| t == "SessionsEnded").map(|(_, p, m)| (p["SessionsEnded"].clone(), m["actor"].clone()));
    assert_eq!(ended, Some((json!({ "sessions": 1, "cause": "login_locked" }), json!("system"))));
}

/// Someone who has the password cannot guess codes without end by opening
/// flow after flow: wrong codes count per account, across flows.
async fn wrong_codes_count_per_account_not_only_per_code(app: TestApp) {
    let app = app.restart_with(|c| c.policy.wrong_codes_per_hour = 3).await;
    app.open_account("6600001", Some("guess@example.jp"), false).await;
    let (first, res) = app.start_registration("6600001", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let code = app.code_for("guess@example.jp");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..3 {
        let res = app.post(&format!("/api/v1/registrations/{first}/otp"), json!({ "code": wrong }), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // A new flow, a new code: still no more guesses this hour.
    app.clock.advance(chrono::Duration::seconds(61));
    let (second, res) = app.start_registration("6600001", "pass-word-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let code = app.code_for("guess@example.jp");
    let (status, body) = json_of(app.post(&format!("/api/v1/registrations/{second}/otp"), json!({ "code": code }), None).await).await;
    assert_eq!((status, error_code(&body)), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"), "{body}");
}

/// The address the test server listens on, for raw TCP clients.
fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// `/healthz` on a connection of its own, given up after `ms`.
async fn healthz_within(app: &TestApp, ms: u64) -> reqwest::Result<reqwest::Response> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_millis(ms)).build()?;
    client.get(format!("{}/healthz", app.base)).send().await
}

/// Reads until the server closes the connection or `within` passes;
/// returns what arrived and whether it closed.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// A client that never finishes its headers, or stalls its body, does not
/// hold a connection or a request; connections are bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_and_connections_are_bounded() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn(ledger_tests::Backend::Sqlite).await.expect("sqlite");
    let app = app
        .restart_with(|c| {
            c.header_timeout = std::time::Duration::from_secs(1);
            c.request_timeout = std::time::Duration::from_secs(1);
        })
        .await;
    // Headers that never end: the connection is closed.
    let mut slow = tokio::net::TcpStream::connect(address(&app)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    let (_, closed) = read_until_closed(&mut slow, std::time::Duration::from_secs(5)).await;
    assert!(closed, "a connection whose headers never end is closed");

    // A body that stalls: answered 408 in the error format.
    let mut stalled = tokio::net::TcpStream::connect(address(&app)).await.unwrap();
    stalled
        .write_all(b"POST /api/v1/sessions/password HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"login_id\":")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut stalled, std::time::Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    drop(stalled);

    // A client that asks and never reads its answers loses its connection
    // once writing to it makes no progress, so it frees its place.
    let app = app
        .restart_with(|c| {
            c.header_timeout = std::time::Duration::from_secs(60);
            c.write_timeout = std::time::Duration::from_secs(1);
            c.max_connections = 1;
        })
        .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut deaf = socket.connect(address(&app).parse().unwrap()).await.unwrap();
    let ask = b"GET /api/openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(200);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), deaf.write_all(&ask)).await;
    let res = healthz_within(&app, 10_000).await.expect("served once the deaf client's connection is dropped");
    assert_eq!(res.status(), StatusCode::OK);
    drop(deaf);

    // Two idle connections fill the bound (kept open by a long header
    // timeout): a third client waits...
    let app = app
        .restart_with(|c| {
            c.header_timeout = std::time::Duration::from_secs(60);
            c.max_connections = 2;
        })
        .await;
    let first = tokio::net::TcpStream::connect(address(&app)).await.unwrap();
    let _second = tokio::net::TcpStream::connect(address(&app)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(healthz_within(&app, 500).await.is_err(), "not served past the bound");
    // ...until one closes.
    drop(first);
    let res = healthz_within(&app, 5_000).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// PostgreSQL out of reach (connections cut, the database refusing new
/// ones): requests answer 503 `unavailable` with Retry-After, in the error
/// format, and the service recovers by itself once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_unavailable_and_the_service_recovers() {
    let Some(app) = TestApp::spawn(ledger_tests::Backend::Postgres).await else { return };
    let account = app.open_account("7500001", Some("outage@example.jp"), false).await;
    let mut key = ledger_tests::SoftPasskey::new("localhost", ledger_tests::harness::ORIGIN);
    let token = app.register("7500001", "outage@example.jp", &mut key).await["session"]["token"].as_str().unwrap().to_string();
    let database = app.database_url.rsplit('/').next().unwrap().to_string();
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test").await.unwrap();
    let allow = |allowed: bool| format!("ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS {allowed}");
    // The outage: new connections refused, open ones cut.
    let cut = || async {
        sqlx::query(&allow(false)).execute(&admin).await.unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
            .bind(&database)
            .execute(&admin)
            .await
            .unwrap();
    };
    cut().await;
    let res = app.get("/api/v1/me/passkeys", Some(&token)).await;
    let retry_after = res.headers().get("retry-after").is_some();
    let (status, body) = json_of(res).await;
    sqlx::query(&allow(true)).execute(&admin).await.unwrap();
    assert_eq!((status, error_code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"), "{body}");
    assert!(retry_after);
    // Back: the next requests are served again, with nothing lost.
    let res = app.get("/api/v1/me/passkeys", Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.passkey_login(&mut key).await.status(), StatusCode::CREATED);

    // An outage in the middle of logins: every login answered 201 is in the
    // log, and every login in the log has its session (event and session
    // are one commit), none without the other.
    let app = std::sync::Arc::new(app);
    let load = {
        let app = app.clone();
        tokio::spawn(async move {
            let (mut acknowledged, mut refused, mut outage) = (0usize, 0usize, 0usize);
            let until = std::time::Instant::now() + std::time::Duration::from_millis(1500);
            while std::time::Instant::now() < until {
                let (s, options) = json_of(app.post("/api/v1/sessions/passkey/options", json!({}), None).await).await;
                if s == StatusCode::SERVICE_UNAVAILABLE {
                    outage += 1;
                    continue;
                }
                assert_eq!(s, StatusCode::OK, "{options}");
                let login = json!({ "ceremony_id": options["ceremony_id"], "credential": key.assert(&options) });
                match app.post("/api/v1/sessions/passkey", login, None).await.status() {
                    StatusCode::CREATED => acknowledged += 1,
                    StatusCode::SERVICE_UNAVAILABLE => refused += 1,
                    other => panic!("a login during the outage answered {other}"),
                }
            }
            (acknowledged, refused, outage + refused)
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    cut().await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    sqlx::query(&allow(true)).execute(&admin).await.unwrap();
    let (acknowledged, refused, unavailable) = load.await.unwrap();
    assert!(
        acknowledged > 0 && unavailable > 0,
        "logins before, during and after the outage: {acknowledged} served, {unavailable} unavailable"
    );
    let logins = app.events_of(&account).await.iter().filter(|(t, _, _)| t == "PasskeyLoginSucceeded").count();
    // One login before the load.
    let during = logins - 1;
    assert!(during >= acknowledged && during <= acknowledged + refused, "{during} logins in the log, {acknowledged} acknowledged");
    let (sessions,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sessions WHERE account_id = $1 AND passkey_id IS NOT NULL AND method <> 'passkey_registration'",
    )
    .bind(&account)
    .fetch_one(&app.app.db.any)
    .await
    .unwrap();
    assert_eq!(sessions as usize, logins, "one session per login in the log, none half-written");
}
