//! The ledger on an ephemeral port over a fresh database, with its clock,
//! an admin token and an SMTP sink.

use ledger_api::secrets::ExposeSecret;
use std::path::PathBuf;

use ledger_api::clock::Clock;
use ledger_api::config::{Config, MailTransport};
use ledger_api::state::{App, AppState};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::smtp::SmtpSink;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The test origin: what the software authenticator puts in client data.
pub const ORIGIN: &str = "http://localhost:8080";

/// The User-Agent the harness sends unless a test sets another.
pub const CHROME_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36";

/// Safari on an iPhone with iOS 18.6.2 (a recommended environment).
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1";

/// A running ledger.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app: AppState,
    pub clock: Clock,
    pub mail: SmtpSink,
    pub admin_token: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

const ADMIN_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh database URL for `backend`, or None when PostgreSQL is not
/// reachable and not required (said loudly; CI sets REQUIRE_POSTGRES=1).
pub async fn fresh_database(backend: Backend, data_dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}/ledger.db", data_dir.display())),
        Backend::Postgres => {
            let url = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| ADMIN_PG.to_string());
            match sqlx::PgPool::connect(&url).await {
                Ok(pool) => {
                    let name = format!("ledger_test_{}", uuid::Uuid::new_v4().simple());
                    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("create test database");
                    pool.close().await;
                    let base = url.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(url);
                    Some(format!("{base}/{name}"))
                }
                Err(e) => {
                    if std::env::var("REQUIRE_POSTGRES").as_deref() == Ok("1") {
                        panic!("PostgreSQL is required (REQUIRE_POSTGRES=1) but not reachable at {url}: {e}");
                    }
                    eprintln!("\n!!! PostgreSQL not reachable at {url} ({e}): SKIPPING this PostgreSQL test !!!\n");
                    None
                }
            }
        }
    }
}

impl TestApp {
    /// Starts a ledger on a fresh database; None if that database is not
    /// available (PostgreSQL not running and not required).
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// As `spawn`, with the configuration adjusted first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let data_dir = std::env::temp_dir().join(format!("ledger-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir).expect("temp dir");
        let database_url = fresh_database(backend, &data_dir).await?;
        let mail = SmtpSink::start().await;
        let mut config = Config::from_env().expect("default config");
        config.database_url = ledger_api::config::DatabaseUrl::new(database_url.clone());
        config.data_dir = data_dir.clone();
        config.origin = ORIGIN.into();
        config.rp_id = "localhost".into();
        config.mail = MailTransport::Smtp(format!("smtp://127.0.0.1:{}", mail.port));
        config.secret_key_hex = None;
        // The per-login-ID throttle runs on real time, which a test's clock
        // cannot advance: tests of the lock-out rule (five quick wrong
        // passwords) run without it; its own test turns it on.
        config.failed_passwords_per_login_id_per_minute = 0;
        // Checkpoints only when a test asks (a timer firing mid-test would
        // sign whatever a tamper test had just forged).
        config.checkpoint_every = None;
        adjust(&mut config);
        let clock = Clock::default();
        Some(Self::serve(config, clock, mail, None).await)
    }

    async fn serve(config: Config, clock: Clock, mail: SmtpSink, admin_token: Option<String>) -> TestApp {
        let database_url = config.database_url.expose().to_string();
        let data_dir = config.data_dir.clone();
        let app = App::start(config, clock.clone()).await.expect("app starts");
        let admin_token = match admin_token {
            Some(t) => t,
            None => ledger_api::cli::add_staff(&app, "Integration", "admin").await.expect("admin").expose_secret().to_string(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let served = app.clone();
        let server = tokio::spawn(async move {
            let _ = ledger_api::cli::serve_on(served, listener).await;
        });
        TestApp { base, client: reqwest::Client::new(), app, clock, mail, admin_token, database_url, data_dir, server }
    }

    /// Stops this server and starts a new one on the same database: what a
    /// restart does.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// Restarts on the same database with some settings changed.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        self.server.abort();
        let _ = self.server.await;
        let mut config = self.app.config.clone();
        adjust(&mut config);
        let (clock, mail, token) = (self.clock.clone(), self.mail.clone(), self.admin_token.clone());
        drop(self.app);
        Self::serve(config, clock, mail, Some(token)).await
    }

    /// A second instance on the same database (same mail server, clock,
    /// secret key and data folder): what another replica of a deployment is.
    pub async fn another_instance(&self) -> TestApp {
        Self::serve(self.app.config.clone(), self.clock.clone(), self.mail.clone(), Some(self.admin_token.clone())).await
    }

    /// Stops the in-process server (its projector with it) and sends this
    /// app's requests to `base` instead: a `ledger serve` process on the
    /// same database ([`crate::process::Served`]). The app's state stays
    /// for reading the database.
    pub async fn hand_over(&mut self, base: &str) {
        let server = std::mem::replace(&mut self.server, tokio::spawn(async {}));
        server.abort();
        let _ = server.await;
        self.base = base.to_string();
    }

    /// Stops this instance at once, its projector with it: what a crash does.
    pub async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
    }

    /// POSTs JSON with a User-Agent, optional bearer token and channel.
    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        self.send(reqwest::Method::POST, path, Some(body), token, "web").await
    }

    /// Any request.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>, token: Option<&str>, channel: &str) -> Response {
        let mut req =
            self.client.request(method, format!("{}{}", self.base, path)).header("user-agent", CHROME_WINDOWS).header("x-channel", channel);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    /// A bare request (no User-Agent, channel web by default), for tests
    /// that describe the device themselves.
    pub fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req
    }

    /// A staff token for a new staff member with `role`.
    pub async fn staff(&self, name: &str, role: &str) -> String {
        ledger_api::cli::add_staff(&self.app, name, role).await.expect("staff").expose_secret().to_string()
    }

    /// Every message sent to `address`, oldest first.
    pub fn mail_to(&self, address: &str) -> Vec<crate::smtp::Received> {
        self.mail.all().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
    }

    /// GET with a bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.send(reqwest::Method::GET, path, None, token, "web").await
    }

    /// Opens an account through the integration API; returns its id.
    pub async fn open_account(&self, login_id: &str, email: Option<&str>, temporary: bool) -> String {
        self.open_account_of("individual", login_id, email, temporary).await
    }

    /// [`Self::open_account`] for a holder kind (`individual`, `family`, `corporate`).
    pub async fn open_account_of(&self, holder_kind: &str, login_id: &str, email: Option<&str>, temporary: bool) -> String {
        let res = self
            .post(
                "/api/v1/admin/accounts",
                json!({ "login_id": login_id, "holder_kind": holder_kind, "email": email, "password": "pass-word-1",
                        "password_temporary": temporary, "transaction_password": "trade-pass-1" }),
                Some(&self.admin_token),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "open account: {}", res.text().await.unwrap_or_default());
        res.json::<Value>().await.expect("json")["account_id"].as_str().expect("id").to_string()
    }

    /// Registration up to the code step; returns the flow id.
    pub async fn start_registration(&self, login_id: &str, password: &str) -> (String, Response) {
        let res = self.post("/api/v1/registrations", json!({ "login_id": login_id }), None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let flow = res.json::<Value>().await.expect("json")["flow_id"].as_str().expect("flow").to_string();
        let res = self.post(&format!("/api/v1/registrations/{flow}/password"), json!({ "password": password }), None).await;
        (flow, res)
    }

    /// The code last mailed to `address` (notices in between are skipped).
    pub fn code_for(&self, address: &str) -> String {
        self.mail_to(address).iter().rev().find_map(|m| m.code()).expect("a code was mailed")
    }

    /// The whole seed 000 registration; returns the session token.
    pub async fn register(&self, login_id: &str, email: &str, passkey: &mut crate::SoftPasskey) -> Value {
        let (flow, res) = self.start_registration(login_id, "pass-word-1").await;
        assert_eq!(res.status(), StatusCode::OK, "password step: {}", res.text().await.unwrap_or_default());
        let code = self.code_for(email);
        let res = self.post(&format!("/api/v1/registrations/{flow}/otp"), json!({ "code": code }), None).await;
        assert_eq!(res.status(), StatusCode::OK, "code step");
        let res = self.post(&format!("/api/v1/registrations/{flow}/passkey/options"), json!({}), None).await;
        assert_eq!(res.status(), StatusCode::OK, "options");
        let options: Value = res.json().await.expect("json");
        let credential = passkey.register(&options);
        let res = self.post(&format!("/api/v1/registrations/{flow}/passkey"), json!({ "credential": credential }), None).await;
        assert_eq!(res.status(), StatusCode::CREATED, "passkey step");
        res.json().await.expect("json")
    }

    /// A passkey login; returns the raw response.
    /// Customers doing what customers do: accounts `<prefix>1` and
    /// `<prefix>2` opened, the first registers a passkey and logs in with it.
    pub async fn activity(&self, prefix: &str) {
        let mut passkey = crate::SoftPasskey::new("localhost", ORIGIN);
        let email = format!("{prefix}@example.jp");
        self.open_account(&format!("{prefix}1"), Some(&email), false).await;
        self.open_account(&format!("{prefix}2"), Some(&format!("{prefix}-2@example.jp")), false).await;
        self.register(&format!("{prefix}1"), &email, &mut passkey).await;
        assert!(self.passkey_login(&mut passkey).await.status().is_success());
    }

    pub async fn passkey_login(&self, passkey: &mut crate::SoftPasskey) -> Response {
        let options: Value = self.post("/api/v1/sessions/passkey/options", json!({}), None).await.json().await.expect("json");
        let credential = passkey.assert(&options);
        self.post("/api/v1/sessions/passkey", json!({ "ceremony_id": options["ceremony_id"], "credential": credential }), None).await
    }

    /// Every event of an account, as (type, payload, metadata).
    pub async fn events_of(&self, account_id: &str) -> Vec<(String, Value, Value)> {
        let sql = match self.app.db.backend {
            ledger_projections::Backend::Sqlite => {
                "SELECT event_type, payload, metadata FROM events WHERE aggregate_id = $1 ORDER BY sequence"
            }
            ledger_projections::Backend::Postgres => {
                "SELECT event_type, payload::text, metadata::text FROM events WHERE aggregate_id = $1 ORDER BY sequence"
            }
        };
        let rows: Vec<(String, String, String)> = sqlx::query_as(sql).bind(account_id).fetch_all(&self.app.db.any).await.expect("events");
        rows.into_iter()
            .map(|(t, p, m)| (t, serde_json::from_str(&p).expect("payload"), serde_json::from_str(&m).expect("metadata")))
            .collect()
    }

    /// Rebuilds the read models from the log once the projector has
    /// settled, and fails naming every row that differs from what live
    /// updating produced.
    pub async fn assert_rebuild_matches_live(&self) {
        let tables = ledger_projections::read_models::TABLES;
        assert!(self.app.projector.settle(std::time::Duration::from_secs(10)).await.expect("settle"), "the projector settles");
        let live = self.dump_tables(tables).await;
        self.app.projector.rebuild().await.expect("rebuild");
        let rebuilt = self.dump_tables(tables).await;
        let only_live: Vec<&str> = live.lines().filter(|l| !rebuilt.lines().any(|r| r == *l)).collect();
        let only_rebuilt: Vec<&str> = rebuilt.lines().filter(|l| !live.lines().any(|r| r == *l)).collect();
        assert!(only_live.is_empty() && only_rebuilt.is_empty(), "live only: {only_live:#?}\nrebuilt only: {only_rebuilt:#?}");
    }

    /// Every row of every table, as text, for "no secret anywhere" checks
    /// and rebuild comparisons.
    pub async fn dump_tables(&self, tables: &[&str]) -> String {
        let mut out = String::new();
        for table in tables {
            let sql = match self.app.db.backend {
                ledger_projections::Backend::Sqlite => format!("SELECT * FROM {table}"),
                ledger_projections::Backend::Postgres => format!("SELECT row_to_json(t)::text AS j FROM {table} t"),
            };
            let rows = sqlx::query(&sql).fetch_all(&self.app.db.any).await.expect("dump");
            let mut lines: Vec<String> = rows
                .iter()
                .map(|r| {
                    use sqlx::{Row, ValueRef};
                    (0..r.columns().len())
                        .map(|i| {
                            let raw = r.try_get_raw(i).expect("raw");
                            if raw.is_null() {
                                "NULL".to_string()
                            } else {
                                r.try_get::<String, _>(i)
                                    .or_else(|_| r.try_get::<i64, _>(i).map(|n| n.to_string()))
                                    .unwrap_or_else(|_| "?".into())
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
            lines.sort();
            out.push_str(&format!("== {table}\n{}\n", lines.join("\n")));
        }
        out
    }
}

/// A response's status and JSON body (Null when there is none).
pub async fn json_of(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The API error code of a JSON body ("" when it is no error).
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}
