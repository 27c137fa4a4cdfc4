//! An RFC 3161 time-stamp authority on loopback: OpenSSL's own `openssl ts
//! -reply` behind a small HTTP server, with a root CA and a TSA certificate
//! made for the test. It can be switched to answer 503, as an authority
//! that is down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

const CONFIG: &str = include_str!("../fixtures/tsa.cnf");

pub struct Tsa {
    pub url: String,
    pub dir: PathBuf,
    down: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Tsa {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A root CA (`ca.crt`, with its key) and a certificate (`tsa.crt`) it
/// issued for time stamping, in `dir`, named `name`.
pub fn make_authority(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).expect("folder");
    std::fs::write(dir.join("tsa.cnf"), CONFIG).expect("config");
    std::fs::write(dir.join("serial"), "01\n").expect("serial");
    let root = format!("/CN={name} Root CA");
    let tsa = format!("/CN={name} TSA");
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", &root, "-days", "30"]);
    openssl(
        dir,
        &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", &tsa],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tsa.crt",
            "-days",
            "30",
            "-extfile",
            "tsa.cnf",
            "-extensions",
            "tsa_ext",
        ],
    );
}

struct Shared {
    dir: PathBuf,
    down: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
}

async fn reply(State(shared): State<Arc<Shared>>, headers: axum::http::HeaderMap, body: Bytes) -> axum::response::Response {
    if shared.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/timestamp-query") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let n = shared.answered.fetch_add(1, Ordering::SeqCst);
    let dir = shared.dir.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let (query, reply) = (format!("query-{n}.tsq"), format!("reply-{n}.tsr"));
        std::fs::write(dir.join(&query), &body).expect("query written");
        let out = Command::new("openssl")
            .args(["ts", "-reply", "-queryfile", &query, "-signer", "tsa.crt", "-inkey", "tsa.key", "-config", "tsa.cnf", "-out", &reply])
            .current_dir(&dir)
            .output()
            .expect("openssl runs");
        out.status.success().then(|| std::fs::read(dir.join(&reply)).expect("reply"))
    })
    .await
    .expect("answered");
    match answer {
        Some(der) => ([(header::CONTENT_TYPE, "application/timestamp-reply")], der).into_response(),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

impl Tsa {
    pub async fn start() -> Tsa {
        let dir = std::env::temp_dir().join(format!("ledger-tsa-{}", uuid::Uuid::new_v4().simple()));
        let made = dir.clone();
        tokio::task::spawn_blocking(move || make_authority(&made, "Test")).await.expect("authority made");
        let (down, answered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let shared = Arc::new(Shared { dir: dir.clone(), down: down.clone(), answered: answered.clone() });
        let app = axum::Router::new().route("/", axum::routing::post(reply)).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Tsa { url, dir, down, answered, server }
    }

    /// Answers 503 from now on (`true`), or again normally.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Replies made so far.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// The trusted root, PEM.
    pub fn root_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.crt")).expect("root")
    }

    /// `openssl ts -verify` of `reply` (DER) over `data`, with the root as
    /// the trust anchor and the TSA's certificate as untrusted help: its
    /// success and output.
    pub fn openssl_verify(&self, data: &[u8], reply: &[u8]) -> (bool, String) {
        let n = uuid::Uuid::new_v4().simple().to_string();
        let (data_file, reply_file) = (self.dir.join(format!("data-{n}")), self.dir.join(format!("check-{n}.tsr")));
        std::fs::write(&data_file, data).expect("data");
        std::fs::write(&reply_file, reply).expect("reply");
        let out = Command::new("openssl")
            .arg("ts")
            .arg("-verify")
            .arg("-data")
            .arg(&data_file)
            .arg("-in")
            .arg(&reply_file)
            .arg("-CAfile")
            .arg(self.dir.join("ca.crt"))
            .arg("-untrusted")
            .arg(self.dir.join("tsa.crt"))
            .output()
            .expect("openssl runs");
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}
