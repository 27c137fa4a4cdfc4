//! The trail leaves the building: webhook subscriptions receive every event
//! in the trail's order, as signed CloudEvents batches (signatures checked
//! with Python's standardwebhooks, another implementation), personal data
//! masked unless asked for; a failing receiver gets the same batch under
//! the same webhook-id until it takes it; one failing too long is disabled
//! and an event says so; a replay and a restart lose nothing; a hanging
//! receiver holds back no other; NATS JetStream gets every event with its
//! ID as `Nats-Msg-Id`, and, cut off for a while, catches up with each
//! event once; a ledger process killed with `kill -9` mid-delivery is taken
//! over by another, and the receiver misses nothing. On SQLite and on
//! PostgreSQL.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use ledger_tests::harness::{error_code, json_of};
use ledger_tests::TestApp;
use serde_json::{json, Value};

ledger_tests::on_both_databases!(
    a_subscription_receives_every_event_in_order_signed_and_masked,
    a_failing_receiver_gets_the_same_batch_until_it_takes_it_then_is_disabled_and_replayed,
    a_restart_resumes_and_a_hanging_receiver_holds_back_no_other,
    a_rotated_secret_signs_beside_the_old_one,
    nats_receives_every_event_with_its_id,
    nats_down_for_a_while_loses_nothing_and_catches_up,
    a_killed_process_is_taken_over_and_the_receiver_misses_nothing,
);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
    answered: u16,
}

/// A webhook receiver on loopback: records every request, answers 500
/// while told to fail, and hangs while told to.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
    fail_next: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    hanging: Arc<AtomicBool>,
    /// Milliseconds each request takes: a slow receiver.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let state = receiver.clone();
        let route = axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                if state.hanging.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                tokio::time::sleep(Duration::from_millis(state.delay_ms.load(Ordering::SeqCst))).await;
                let fail = state.failing.load(Ordering::SeqCst)
                    || state.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                let status = if fail { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT };
                let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                state.got.lock().unwrap().push(Delivery {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    content_type: header("content-type"),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                    answered: status.as_u16(),
                });
                status
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/hook", route)).await });
        (receiver, url)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// The CloudEvents of the requests answered 2xx, in the order received.
    fn taken(&self) -> Vec<Value> {
        self.deliveries().iter().filter(|d| d.answered < 300).flat_map(|d| serde_json::from_str::<Vec<Value>>(&d.body).unwrap()).collect()
    }

    /// The events taken (checkpoints left out).
    fn events(&self) -> Vec<Value> {
        self.taken().into_iter().filter(|e| e["type"] != "jp.passkey-ledger.Checkpoint").collect()
    }
}

/// The ledger set for tests: webhooks may reach loopback, retries come fast.
async fn streaming(app: TestApp) -> TestApp {
    app.restart_with(|c| {
        c.streams.webhook_allow_private = true;
        c.streams.webhook_retry_max = Duration::from_millis(400);
    })
    .await
}

async fn trail_end(app: &TestApp) -> i64 {
    assert!(app.app.projector.settle(Duration::from_secs(10)).await.unwrap());
    let (end,): (Option<i64>,) = sqlx::query_as("SELECT MAX(audit_position) FROM audit_trail").fetch_one(&app.app.db.any).await.unwrap();
    end.unwrap_or(0)
}

/// Waits (up to 30 s) until `done` holds.
async fn until(what: &str, done: impl FnMut() -> bool) {
    until_within(what, 30, done).await
}

async fn until_within(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    for _ in 0..seconds * 10 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("waited {seconds} s for {what}");
}

async fn code_of(res: reqwest::Response) -> String {
    let (_, v) = json_of(res).await;
    error_code(&v).to_string()
}

/// How many events of this type the log holds.
async fn count_of(app: &TestApp, event_type: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM events WHERE event_type = $1").bind(event_type).fetch_one(&app.app.db.any).await.unwrap();
    n
}

/// The sequence (log position) of a CloudEvent.
fn position(event: &Value) -> i64 {
    event["sequence"].as_str().unwrap().parse().unwrap()
}

async fn add(app: &TestApp, body: Value) -> (String, String) {
    let (status, v) = json_of(app.post("/api/v1/admin/webhooks", body, Some(&app.admin_token)).await).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (v["subscription"]["subscription_id"].as_str().unwrap().to_string(), secret)
}

async fn subscription(app: &TestApp, id: &str) -> Value {
    let (status, v) = json_of(app.get("/api/v1/admin/webhooks", Some(&app.admin_token)).await).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    v["items"].as_array().unwrap().iter().find(|s| s["subscription_id"] == id).cloned().expect("listed")
}

/// Checks each delivery's signature with Python's standardwebhooks against
/// `secret`: Ok, or which failed. None when Python or the package is
/// missing outside CI.
fn verified_by_standardwebhooks(deliveries: &[Delivery], secret: &str) -> Option<Result<(), String>> {
    let probe = std::process::Command::new("python3").args(["-c", "import standardwebhooks"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(std::env::var_os("REQUIRE_POSTGRES").is_none(), "python3 with standardwebhooks is required (scripts/test installs it)");
        eprintln!("skipping the signature check: python3 -m pip install standardwebhooks");
        return None;
    }
    let file = std::env::temp_dir().join(format!("ledger-webhooks-{}.json", uuid::Uuid::new_v4().simple()));
    let listed: Vec<Value> = deliveries
        .iter()
        .map(|d| json!({"body": d.body, "headers": {"webhook-id": d.id, "webhook-timestamp": d.timestamp, "webhook-signature": d.signature}}))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&listed).unwrap()).unwrap();
    let script = r#"
import json, sys
from standardwebhooks import Webhook
hook = Webhook(sys.argv[2])
for i, d in enumerate(json.load(open(sys.argv[1]))):
    try:
        hook.verify(d["body"], d["headers"])
    except Exception as e:
        sys.exit(f"delivery {i} ({d['headers']['webhook-id']}): {e}")
"#;
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&file).arg(secret).output().expect("python3 runs");
    let _ = std::fs::remove_file(&file);
    Some(if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).to_string()) })
}

async fn a_subscription_receives_every_event_in_order_signed_and_masked(app: TestApp) {
    let app = streaming(app).await;
    app.activity("71000").await;
    let (receiver, url) = Receiver::start().await;
    let (id, secret) = add(&app, json!({"url": url, "batch": 5})).await;
    app.activity("72000").await;
    let made = {
        trail_end(&app).await;
        ledger_api::proofs::checkpoint_now(&app.app).await.unwrap().expect("a checkpoint")
    };
    app.activity("73000").await;
    let end = trail_end(&app).await;
    until("every event", || receiver.events().len() as i64 >= end).await;

    // Every event once, in the trail's order: positions 1..=end.
    let events = receiver.events();
    let positions: Vec<i64> = events.iter().map(position).collect();
    assert_eq!(positions, (1..=end).collect::<Vec<_>>());
    // As CloudEvents 1.0, each the trail row of its position.
    let (_, rows) = json_of(app.get("/api/v1/audit/events?limit=500", Some(&app.admin_token)).await).await;
    let rows = rows["events"].as_array().unwrap().clone();
    for (event, row) in events.iter().zip(&rows) {
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["id"], row["event_id"]);
        assert_eq!(event["type"], format!("jp.passkey-ledger.{}", row["type"].as_str().unwrap()));
        assert_eq!(event["subject"], format!("{}/{}", row["stream"].as_str().unwrap(), row["stream_id"].as_str().unwrap()));
        assert_eq!(event["source"], "localhost/passkey-ledger");
        assert_eq!(event["sequence"].as_str().unwrap().len(), 20, "zero-padded");
        assert_eq!(event["data"]["leaf_hash"], row["leaf_hash"]);
        assert_eq!(event["data"]["leaf_index"], row["leaf_index"]);
        assert_eq!(event["data"]["metadata"]["actor"], row["metadata"]["actor"]);
    }
    // Personal data masked by default: no address, login ID or User-Agent.
    let bodies: String = receiver.deliveries().iter().map(|d| d.body.clone()).collect();
    for personal in ["71000@example.jp", "72000-2@example.jp", "\"720001\"", "Mozilla/5.0"] {
        assert!(!bodies.contains(personal), "{personal} went out unmasked");
    }
    assert!(bodies.contains("7***@example.jp"), "masked addresses still tell the provider");
    // Batches of at most 5, each a signed CloudEvents batch.
    for d in receiver.deliveries() {
        assert_eq!(d.content_type, "application/cloudevents-batch+json");
        assert!(serde_json::from_str::<Vec<Value>>(&d.body).unwrap().len() <= 5);
        assert!(d.signature.starts_with("v1,"), "{}", d.signature);
    }
    if let Some(checked) = verified_by_standardwebhooks(&receiver.deliveries(), &secret) {
        checked.expect("every delivery verifies with the subscription's secret");
    }
    let wrong = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    if let Some(checked) = verified_by_standardwebhooks(&receiver.deliveries()[..1], wrong) {
        assert!(checked.is_err(), "another secret does not verify");
    }
    // The checkpoint follows the last event it covers, its note exact.
    let taken = receiver.taken();
    let at = taken.iter().position(|e| e["type"] == "jp.passkey-ledger.Checkpoint").expect("the checkpoint went out");
    assert_eq!(taken[at]["data"]["note"], made.note);
    assert_eq!(position(&taken[at - 1]), made.tree_size, "right after the event of its tree size");
    assert_eq!(position(&taken[at + 1]), made.tree_size + 1);
    // Listed with no lag; its creation is in the admin's stream.
    let listed = subscription(&app, &id).await;
    assert_eq!(listed["state"], "active");
    assert_eq!(listed["lag"].as_i64().unwrap(), trail_end(&app).await - listed["position"].as_i64().unwrap());
    assert!(count_of(&app, "WebhookSubscriptionAdded").await >= 1);
    // /metrics and /readyz tell the lag.
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains(&format!("ledger_subscription_lag{{subscription=\"{id}\",kind=\"webhook\"}}")), "{metrics}");
    let (_, ready) = json_of(app.get("/readyz", None).await).await;
    assert_eq!(ready["subscriptions"][0]["subscription_id"], id.as_str());

    // Full personal data and OCSF, for a subscription that asks.
    let (ocsf, url) = Receiver::start().await;
    add(&app, json!({"url": url, "format": "ocsf", "personal_data": "full", "types": ["PasskeyLoginSucceeded"]})).await;
    until("the OCSF logins", || ocsf.events().len() == 3).await;
    for event in ocsf.events() {
        assert_eq!(event["type"], "jp.passkey-ledger.PasskeyLoginSucceeded");
        assert_eq!(event["data"]["class_uid"], 3002);
        assert_eq!(event["data"]["type_uid"], 300201);
        assert_eq!(event["data"]["auth_factors"][0]["factor_type"], "WebAuthn");
        assert!(event["data"]["user"]["name"].as_str().unwrap().starts_with("7"), "login ID in full");
        assert!(event["data"]["http_request"]["user_agent"].as_str().unwrap().contains("Mozilla"), "User-Agent in full");
    }
}

async fn a_failing_receiver_gets_the_same_batch_until_it_takes_it_then_is_disabled_and_replayed(app: TestApp) {
    let app = streaming(app).await;
    // A URL that reaches inside is refused unless the deployment allows it.
    let strict = app.restart_with(|c| c.streams.webhook_allow_private = false).await;
    for url in ["http://siem.example.com/hook", "https://127.0.0.1/hook", "https://localhost/hook", "https://10.1.2.3/hook", "ftp://x/"] {
        let res = strict.post("/api/v1/admin/webhooks", json!({"url": url}), Some(&strict.admin_token)).await;
        assert_eq!(code_of(res).await, "webhook_url_refused", "{url}");
    }
    let res = strict
        .post("/api/v1/admin/webhooks", json!({"url": "https://siem.example.com/", "types": ["NoSuchEvent"]}), Some(&strict.admin_token))
        .await;
    assert_eq!(code_of(res).await, "invalid_request");
    let app = streaming(strict).await;

    app.activity("74000").await;
    let (receiver, url) = Receiver::start().await;
    receiver.fail_next.store(3, Ordering::SeqCst);
    let (id, _) = add(&app, json!({"url": url, "batch": 4})).await;
    let end = trail_end(&app).await;
    until("every event despite failures", || receiver.events().len() as i64 >= end).await;
    let deliveries = receiver.deliveries();
    // The first batch was tried four times: the same ID and body each time.
    assert!(deliveries[..4].iter().all(|d| d.id == deliveries[0].id && d.body == deliveries[0].body), "{deliveries:?}");
    assert_eq!(deliveries[..4].iter().map(|d| d.answered).collect::<Vec<_>>(), [500, 500, 500, 204]);
    assert_eq!(receiver.events().iter().map(position).collect::<Vec<_>>(), (1..=end).collect::<Vec<_>>());

    // Failing for longer than allowed: disabled, and an event says so.
    let app = app
        .restart_with(|c| {
            c.streams.webhook_disable_after = Duration::from_secs(1);
        })
        .await;
    receiver.failing.store(true, Ordering::SeqCst);
    app.activity("75000").await;
    // (The restart's new instance takes the subscription over once the
    // stopped one's lease ran out: up to 15 s.)
    let mut disabled = Value::Null;
    for _ in 0..300 {
        disabled = subscription(&app, &id).await;
        if disabled["state"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(disabled["state"], "disabled", "{disabled}");
    assert!(disabled["last_error"].as_str().unwrap().contains("HTTP 500"), "{disabled}");
    assert_eq!(disabled["position"].as_i64().unwrap(), end, "delivered through where it stopped");
    assert!(count_of(&app, "WebhookSubscriptionDisabledAfterFailures").await == 1);
    let tried = receiver.deliveries().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.deliveries().len(), tried, "a disabled subscription is not tried");

    // A replay from where it stopped delivers the rest, in order.
    receiver.failing.store(false, Ordering::SeqCst);
    let path = format!("/api/v1/admin/webhooks/{id}/replay");
    let (status, v) = json_of(app.post(&path, json!({"from_position": end + 1}), Some(&app.admin_token)).await).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{v}");
    assert_eq!(v["state"], "active");
    let end = trail_end(&app).await;
    until("the rest after the replay", || receiver.events().last().map(position) == Some(end)).await;
    assert_eq!(receiver.events().iter().map(position).collect::<Vec<_>>(), (1..=end).collect::<Vec<_>>());
    assert!(count_of(&app, "WebhookReplayRequested").await == 1);
    let res = app.post("/api/v1/admin/webhooks/wh_none/replay", json!({"from_position": 1}), Some(&app.admin_token)).await;
    assert_eq!(code_of(res).await, "not_found");
}

async fn a_restart_resumes_and_a_hanging_receiver_holds_back_no_other(app: TestApp) {
    let app = streaming(app).await;
    let app = app.restart_with(|c| c.streams.webhook_timeout = Duration::from_secs(5)).await;
    let (slow, slow_url) = Receiver::start().await;
    slow.hanging.store(true, Ordering::SeqCst);
    let (receiver, url) = Receiver::start().await;
    add(&app, json!({"url": slow_url})).await;
    add(&app, json!({"url": url, "batch": 3})).await;
    app.activity("76000").await;
    let end = trail_end(&app).await;
    until("the prompt receiver's events", || receiver.events().len() as i64 >= end).await;
    assert!(slow.events().is_empty());

    // Stopped mid-stream and started again: it resumes where the receiver
    // stopped taking; a batch may come twice, with the same IDs.
    let app = app.restart().await;
    app.activity("77000").await;
    let end = trail_end(&app).await;
    until("the events after the restart", || receiver.events().last().map(position) == Some(end)).await;
    let mut positions: Vec<i64> = receiver.events().iter().map(position).collect();
    positions.dedup();
    assert_eq!(positions, (1..=end).collect::<Vec<_>>());
}

async fn a_rotated_secret_signs_beside_the_old_one(app: TestApp) {
    let app = streaming(app).await;
    let (receiver, url) = Receiver::start().await;
    let (id, old) = add(&app, json!({"url": url})).await;
    app.activity("78000").await;
    let (status, v) =
        json_of(app.post(&format!("/api/v1/admin/webhooks/{id}/rotate-secret"), json!({}), Some(&app.admin_token)).await).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{v}");
    let new = v["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(v["subscription"]["previous_secret_until"].is_string());
    let before = receiver.deliveries().len();
    app.activity("79000").await;
    let end = trail_end(&app).await;
    until("the events after the rotation", || receiver.events().last().map(position) == Some(end)).await;
    let after: Vec<Delivery> = receiver.deliveries()[before..].to_vec();
    assert!(after.iter().all(|d| d.signature.split(' ').count() == 2), "both signatures during the overlap");
    for secret in [&new, &old] {
        if let Some(checked) = verified_by_standardwebhooks(&after, secret) {
            checked.expect("verifies with the new and the old secret");
        }
    }
    // Neither secret is in the log.
    let log: String = sqlx::query_as::<_, (String,)>("SELECT CAST(payload AS TEXT) FROM events")
        .fetch_all(&app.app.db.any)
        .await
        .unwrap()
        .into_iter()
        .map(|(p,)| p)
        .collect();
    assert!(!log.contains(&new[6..]) && !log.contains(&old[6..]));
    assert!(count_of(&app, "WebhookSecretRotated").await == 1);
}

/// NATS at 127.0.0.1:4222, when it answers (required with REQUIRE_NATS=1).
async fn nats() -> Option<async_nats::Client> {
    match async_nats::connect("nats://127.0.0.1:4222").await {
        Ok(client) => Some(client),
        Err(e) => {
            assert!(std::env::var("REQUIRE_NATS").as_deref() != Ok("1"), "NATS is required (REQUIRE_NATS=1) but not reachable: {e}");
            eprintln!("\n!!! NATS not reachable at 127.0.0.1:4222 ({e}): SKIPPING this NATS test !!!\n");
            None
        }
    }
}

async fn nats_receives_every_event_with_its_id(app: TestApp) {
    let Some(client) = nats().await else { return };
    // Each test its own stream and subject prefix.
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let (stream, prefix) = (format!("LEDGERTEST{tag}"), format!("t{tag}"));
    app.activity("80000").await;
    let app = app
        .restart_with(|c| {
            c.streams.nats = Some(ledger_api::config::Nats {
                url: "nats://127.0.0.1:4222".into(),
                stream: stream.clone(),
                subject_prefix: prefix.clone(),
                full_personal_data: false,
            })
        })
        .await;
    app.activity("81000").await;
    let end = trail_end(&app).await;
    let made = ledger_api::proofs::checkpoint_now(&app.app).await.unwrap().expect("a checkpoint");

    let jetstream = async_nats::jetstream::new(client);
    let mut found = None;
    for _ in 0..100 {
        if let Ok(mut s) = jetstream.get_stream(&stream).await {
            if s.info().await.unwrap().state.messages as i64 > end {
                found = Some(s);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stream_handle = found.expect("the stream holds every event and the checkpoint");
    let consumer = stream_handle
        .create_consumer(async_nats::jetstream::consumer::pull::Config { durable_name: None, ..Default::default() })
        .await
        .unwrap();
    use futures_util::StreamExt;
    let mut messages = consumer.fetch().max_messages(10_000).expires(Duration::from_secs(2)).messages().await.unwrap();
    let mut got = Vec::new();
    while let Some(m) = messages.next().await {
        let m = m.unwrap();
        let id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.to_string()).unwrap();
        got.push((m.subject.to_string(), id, serde_json::from_slice::<Value>(&m.payload).unwrap()));
    }
    let (_, rows) = json_of(app.get("/api/v1/audit/events?limit=500", Some(&app.admin_token)).await).await;
    let rows = rows["events"].as_array().unwrap().clone();
    let events: Vec<_> = got.iter().filter(|(subject, _, _)| subject.contains(".events.")).collect();
    assert_eq!(events.len() as i64, end, "every event once");
    for ((subject, id, event), row) in events.iter().zip(&rows) {
        assert_eq!(subject, &format!("{prefix}.events.{}.{}", row["stream"].as_str().unwrap(), row["type"].as_str().unwrap()));
        assert_eq!(id, row["event_id"].as_str().unwrap());
        assert_eq!(event["id"], row["event_id"]);
        assert_eq!(position(event), row["position"].as_i64().unwrap(), "in the trail's order");
    }
    let all: String = got.iter().map(|(_, _, e)| e.to_string()).collect();
    assert!(!all.contains("81000@example.jp"), "masked by default");
    let checkpoint = got.iter().find(|(subject, _, _)| subject == &format!("{prefix}.checkpoints")).expect("the checkpoint");
    assert_eq!(checkpoint.2["data"]["note"], made.note);
    let listed = subscription(&app, &format!("nats:{stream}")).await;
    assert_eq!(listed["kind"], "nats");
    let _ = jetstream.delete_stream(&stream).await;
}

/// The events of a JetStream stream: (subject, Nats-Msg-Id, CloudEvent).
async fn stream_events(client: &async_nats::Client, stream: &str) -> Vec<(String, String, Value)> {
    use futures_util::StreamExt;
    let jetstream = async_nats::jetstream::new(client.clone());
    let Ok(stream) = jetstream.get_stream(stream).await else { return Vec::new() };
    let consumer =
        stream.create_consumer(async_nats::jetstream::consumer::pull::Config { durable_name: None, ..Default::default() }).await.unwrap();
    let mut messages = consumer.fetch().max_messages(10_000).expires(Duration::from_secs(1)).messages().await.unwrap();
    let mut got = Vec::new();
    while let Some(m) = messages.next().await {
        let m = m.unwrap();
        let id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.to_string()).unwrap();
        got.push((m.subject.to_string(), id, serde_json::from_slice::<Value>(&m.payload).unwrap()));
    }
    got.into_iter().filter(|(subject, _, _)| subject.contains(".events.")).collect()
}

/// NATS goes away (every connection cut, new ones refused) while customers
/// go on: the publisher records its failures, retries with backoff, and
/// once NATS is back every event is in the stream exactly once, in order.
async fn nats_down_for_a_while_loses_nothing_and_catches_up(app: TestApp) {
    let Some(client) = nats().await else { return };
    let proxy = ledger_tests::process::Proxy::start("127.0.0.1:4222").await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let (stream, prefix) = (format!("LEDGERTEST{tag}"), format!("t{tag}"));
    let url = format!("nats://127.0.0.1:{}", proxy.port);
    let app = app
        .restart_with(|c| {
            c.streams.webhook_retry_max = Duration::from_secs(1);
            c.streams.nats =
                Some(ledger_api::config::Nats { url, stream: stream.clone(), subject_prefix: prefix.clone(), full_personal_data: false })
        })
        .await;
    app.activity("83000").await;
    let end = trail_end(&app).await;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = stream_events(&client, &stream).await;
        if got.len() as i64 >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(got.len() as i64, end, "streamed before the outage");

    // NATS is down: customers are not held up, the publisher falls behind
    // and says why.
    proxy.set_up(false);
    app.activity("84000").await;
    app.activity("85000").await;
    let end = trail_end(&app).await;
    let id = format!("nats:{stream}");
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = subscription(&app, &id).await;
        if listed["failures"].as_i64().unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(listed["failures"].as_i64().unwrap() >= 2, "{listed}");
    assert!(listed["lag"].as_i64().unwrap() > 0 && listed["last_error"].is_string(), "{listed}");
    let (_, ready) = json_of(app.get("/readyz", None).await).await;
    assert!(ready.to_string().contains(&id), "/readyz names the lagging subscription: {ready}");
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Back: it catches up, each event once (JetStream drops a message
    // published again under the same ID), in the trail's order.
    proxy.set_up(true);
    for _ in 0..200 {
        got = stream_events(&client, &stream).await;
        if got.len() as i64 >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let positions: Vec<i64> = got.iter().map(|(_, _, e)| position(e)).collect();
    assert_eq!(positions, (1..=end).collect::<Vec<_>>(), "every event once, in order");
    let ids: std::collections::HashSet<&String> = got.iter().map(|(_, id, _)| id).collect();
    assert_eq!(ids.len() as i64, end);
    let mut caught_up = Value::Null;
    for _ in 0..50 {
        caught_up = subscription(&app, &id).await;
        if caught_up["lag"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!((caught_up["lag"].as_i64(), caught_up["failures"].as_i64()), (Some(0), Some(0)), "{caught_up}");
}

/// `kill -9` of the ledger process in the middle of a delivery: another
/// process takes the subscription over once the killed one's lease runs
/// out, and resumes from the last batch the receiver took. The receiver
/// misses nothing; a batch it gets twice comes with the same webhook-id
/// and the same body.
async fn a_killed_process_is_taken_over_and_the_receiver_misses_nothing(mut app: TestApp) {
    use ledger_tests::process::Served;
    let smtp = format!("smtp://127.0.0.1:{}", app.mail.port);
    let env = [("LEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "1"), ("LEDGER_WEBHOOK_RETRY_MAX_SECS", "1"), ("LEDGER_SMTP_URL", smtp.as_str())];
    let mut first = Served::start(ledger_tests::ledger_program!(), &app.database_url, &app.data_dir, &env);
    first.wait_ready(Duration::from_secs(60)).await;
    app.hand_over(&first.base).await;
    for prefix in ["86000", "87000", "88000"] {
        app.activity(prefix).await;
    }
    let (receiver, url) = Receiver::start().await;
    receiver.delay_ms.store(40, Ordering::SeqCst);
    add(&app, json!({"url": url, "batch": 1})).await;
    until("a few deliveries", || receiver.events().len() >= 5).await;
    first.kill_hard();
    let taken_before = receiver.events().len() as i64;
    let end = trail_end(&app).await;
    assert!(taken_before < end, "killed mid-stream ({taken_before} of {end})");

    let second = Served::start(ledger_tests::ledger_program!(), &app.database_url, &app.data_dir, &env);
    second.wait_ready(Duration::from_secs(60)).await;
    app.hand_over(&second.base).await;
    app.activity("89000").await;
    let end = trail_end(&app).await;
    until_within("the rest, from the second process", 90, || receiver.events().last().map(position) == Some(end)).await;
    let mut positions: Vec<i64> = receiver.events().iter().map(position).collect();
    positions.dedup();
    assert_eq!(positions, (1..=end).collect::<Vec<_>>(), "nothing skipped, in order");
    let mut bodies: std::collections::HashMap<String, String> = Default::default();
    for d in receiver.deliveries().iter().filter(|d| d.answered < 300) {
        let first_body = bodies.entry(d.id.clone()).or_insert_with(|| d.body.clone());
        assert_eq!(first_body, &d.body, "a batch sent again is the same batch under the same webhook-id");
    }
}
