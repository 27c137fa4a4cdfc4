//! The load generator of `scripts/bench`: a process of its own that drives a
//! running `ledger serve` over loopback HTTP with real WebAuthn data
//! (software P-256 passkeys, one per customer), and fills a database with
//! history in bulk. Every command prints one JSON object on stdout.
//!
//!     loadgen seed    --base URL --token ADMIN --smtp-port P --customers N --prefix X --keys FILE
//!     loadgen logins  --base URL[,URL] --keys FILE --clients C --seconds S
//!     loadgen long    --base URL --keys FILE --login-id ID --logins N
//!     loadgen me      --base URL --keys FILE --login-id ID --requests N
//!     loadgen history --base URL --token SUPPORT --database-url DB --requests N
//!     loadgen export  --base URL --token COMPLIANCE --pid PID
//!     loadgen fill    --database-url DB --template ACCOUNT_ID --accounts N [--copies-of-last K]
//!
//! `seed` opens accounts through the integration API and registers each
//! customer's passkey through seed 000's flow, reading the e-mailed codes
//! from an SMTP sink it runs itself; `logins` runs passkey logins (options,
//! assertion, finish) from C concurrent clients, each with customers of its
//! own, and alternates instances when given two (a ceremony begun on one is
//! finished on the other); `fill` copies a real account's stream into new
//! accounts with new ids, straight into the event table (the bulk loader).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_tests::smtp::SmtpSink;
use ledger_tests::SoftPasskey;
use serde_json::{json, Value};
use tokio::sync::Mutex;

type Res<T> = Result<T, String>;

struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> (String, Args) {
        let mut it = std::env::args().skip(1);
        let command = it.next().unwrap_or_default();
        let mut map = HashMap::new();
        while let Some(k) = it.next() {
            let v = it.next().unwrap_or_default();
            map.insert(k.trim_start_matches("--").to_string(), v);
        }
        (command, Args(map))
    }
    fn get(&self, k: &str) -> Res<&str> {
        self.0.get(k).map(String::as_str).ok_or_else(|| format!("--{k} is required"))
    }
    fn num(&self, k: &str, default: u64) -> Res<u64> {
        match self.0.get(k) {
            Some(v) => v.parse().map_err(|_| format!("--{k} must be a number")),
            None => Ok(default),
        }
    }
}

const RP_ID: &str = "localhost";

fn origin() -> String {
    std::env::var("LEDGER_ORIGIN").unwrap_or_else(|_| "http://localhost:8080".into())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(30)).build().expect("http client")
}

async fn post(http: &reqwest::Client, url: String, body: Value, token: Option<&str>) -> Res<(u16, Value)> {
    post_from(http, url, body, token, None).await
}

/// [`post`] as a customer at `client` behind the brokerage's load balancer
/// (the bench's servers trust loopback as that proxy): the morning peak
/// comes from many addresses, not from one that the throttles would slow.
async fn post_from(http: &reqwest::Client, url: String, body: Value, token: Option<&str>, client: Option<&str>) -> Res<(u16, Value)> {
    let mut req = http.post(url).header("origin", origin()).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(address) = client {
        req = req.header("x-forwarded-for", address);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[tokio::main]
async fn main() {
    let (command, args) = Args::parse();
    let result = match command.as_str() {
        "seed" => seed(&args).await,
        "logins" => logins(&args).await,
        "long" => long(&args).await,
        "me" => me(&args).await,
        "history" => history(&args).await,
        "export" => export(&args).await,
        "fill" => fill(&args).await,
        other => Err(format!("unknown command {other:?}; see the top of tests/src/bin/loadgen.rs")),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("loadgen {command}: {e}");
            std::process::exit(1);
        }
    }
}

/// Opens `customers` accounts and registers a passkey for each.
async fn seed(args: &Args) -> Res<Value> {
    let base = args.get("base")?.to_string();
    let token = args.get("token")?.to_string();
    let customers = args.num("customers", 256)? as usize;
    let prefix = args.get("prefix")?.to_string();
    let keys_file = args.get("keys")?.to_string();
    let sink = SmtpSink::start_on(args.num("smtp-port", 2525)? as u16).await;
    let http = client();
    let keys = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.num("concurrency", 4)? {
        let (http, base, token, prefix, keys, next, sink) =
            (http.clone(), base.clone(), token.clone(), prefix.clone(), keys.clone(), next.clone(), sink.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= customers {
                    return Ok::<(), String>(());
                }
                let login_id = format!("{prefix}{i:06}");
                let email = format!("{login_id}@bench.example.jp");
                let key = register_one(&http, &base, &token, &sink, &login_id, &email).await?;
                keys.lock().await.push(json!({ "login_id": login_id, "passkey": key.save() }));
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let keys = std::mem::take(&mut *keys.lock().await);
    std::fs::write(&keys_file, Value::from(keys.clone()).to_string()).map_err(|e| e.to_string())?;
    Ok(json!({ "customers": keys.len(), "seconds": round(started.elapsed().as_secs_f64()) }))
}

async fn register_one(http: &reqwest::Client, base: &str, token: &str, sink: &SmtpSink, login_id: &str, email: &str) -> Res<SoftPasskey> {
    let check = |what: &str, (status, body): (u16, Value), want: u16| {
        if status == want {
            Ok(body)
        } else {
            Err(format!("{what} for {login_id}: {status} {body}"))
        }
    };
    let open = json!({ "login_id": login_id, "holder_kind": "individual", "email": email, "password": "bench-password-1",
                       "password_temporary": false, "transaction_password": "bench-trading-1" });
    check("open", post(http, format!("{base}/api/v1/admin/accounts"), open, Some(token)).await?, 201)?;
    let flow = check("start", post(http, format!("{base}/api/v1/registrations"), json!({ "login_id": login_id }), None).await?, 201)?;
    let flow = flow["flow_id"].as_str().ok_or("no flow id")?.to_string();
    let url = |step: &str| format!("{base}/api/v1/registrations/{flow}/{step}");
    check("password", post(http, url("password"), json!({ "password": "bench-password-1" }), None).await?, 200)?;
    let mut code = None;
    for _ in 0..200 {
        code = sink.last_to(email).and_then(|m| m.code());
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let code = code.ok_or_else(|| format!("no code mailed to {email}"))?;
    check("code", post(http, url("otp"), json!({ "code": code }), None).await?, 200)?;
    let options = check("options", post(http, url("passkey/options"), json!({}), None).await?, 200)?;
    let mut key = SoftPasskey::new(RP_ID, &origin());
    let credential = key.register(&options);
    check("passkey", post(http, url("passkey"), json!({ "credential": credential }), None).await?, 201)?;
    Ok(key)
}

fn load_keys(args: &Args) -> Res<Vec<(String, SoftPasskey)>> {
    let text = std::fs::read_to_string(args.get("keys")?).map_err(|e| e.to_string())?;
    let saved: Vec<Value> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    saved
        .iter()
        .map(|s| {
            let key = SoftPasskey::restore(&s["passkey"], RP_ID, &origin()).ok_or("unreadable key")?;
            Ok((s["login_id"].as_str().unwrap_or_default().to_string(), key))
        })
        .collect()
}

fn save_keys(args: &Args, keys: &[(String, SoftPasskey)]) -> Res<()> {
    let saved: Vec<Value> = keys.iter().map(|(l, k)| json!({ "login_id": l, "passkey": k.save() })).collect();
    std::fs::write(args.get("keys")?, Value::from(saved).to_string()).map_err(|e| e.to_string())
}

/// One passkey login: options from `first`, the finish at `second`.
async fn login(http: &reqwest::Client, first: &str, second: &str, key: &mut SoftPasskey, client: Option<&str>) -> Res<bool> {
    Ok(login_session(http, first, second, key, client).await?.is_some())
}

/// A passkey login (options from `first`, finished on `second`): the session token.
async fn login_session(
    http: &reqwest::Client,
    first: &str,
    second: &str,
    key: &mut SoftPasskey,
    client: Option<&str>,
) -> Res<Option<String>> {
    let (status, options) = post_from(http, format!("{first}/api/v1/sessions/passkey/options"), json!({}), None, client).await?;
    if status != 200 {
        return Ok(None);
    }
    let credential = key.assert(&options);
    let body = json!({ "ceremony_id": options["ceremony_id"], "credential": credential });
    let (status, signed_in) = post_from(http, format!("{second}/api/v1/sessions/passkey"), body, None, client).await?;
    Ok((status == 201).then(|| signed_in["session"]["token"].as_str().map(str::to_string)).flatten())
}

/// One customer's own pages, `requests` times each: their security activity
/// (newest 20) and their signed-in devices; p50 and p99 of each.
async fn me(args: &Args) -> Res<Value> {
    let base = args.get("base")?.to_string();
    let mut keys = load_keys(args)?;
    let login_id = args.get("login-id")?;
    let n = args.num("requests", 500)? as usize;
    let index = keys.iter().position(|(l, _)| l == login_id).ok_or_else(|| format!("no customer {login_id}"))?;
    let http = client();
    let key = &mut keys.get_mut(index).ok_or("no such customer")?.1;
    let token = login_session(&http, &base, &base, key, None).await?.ok_or("the login failed")?;
    save_keys(args, &keys)?;
    let mut out = json!({ "login_id": login_id, "n": n });
    for (name, path) in [("activity", "/api/v1/me/activity"), ("sessions", "/api/v1/me/sessions")] {
        let (mut times, mut errors, mut items, mut total) = (Vec::new(), 0u64, 0usize, 0u64);
        for _ in 0..n {
            let started = Instant::now();
            let res = http.get(format!("{base}{path}")).bearer_auth(&token).send().await.map_err(|e| e.to_string())?;
            let ok = res.status().as_u16() == 200;
            let body: Value = res.json().await.unwrap_or(Value::Null);
            times.push(started.elapsed().as_secs_f64() * 1e3);
            errors += (!ok) as u64;
            items = body["items"].as_array().map_or(0, Vec::len);
            total = body["total"].as_u64().unwrap_or(items as u64);
        }
        times.sort_by(f64::total_cmp);
        out[name] = json!({ "p50_ms": round(percentile(&times, 0.5)), "p99_ms": round(percentile(&times, 0.99)), "errors": errors,
                            "items": items, "total": total });
    }
    Ok(out)
}

/// Logins from `clients` concurrent clients for `seconds` (after a second
/// of warm-up that is not counted).
async fn logins(args: &Args) -> Res<Value> {
    let bases: Vec<String> = args.get("base")?.split(',').map(str::to_string).collect();
    let clients = args.num("clients", 1)? as usize;
    let seconds = args.num("seconds", 10)?;
    let keys = load_keys(args)?;
    if keys.len() < clients {
        return Err(format!("{clients} clients need at least as many customers, got {}", keys.len()));
    }
    // Each client logs its own customers in, so no two clients write one account.
    let mut shares: Vec<Vec<(String, SoftPasskey)>> = (0..clients).map(|_| Vec::new()).collect();
    for (i, k) in keys.into_iter().enumerate() {
        shares[i % clients].push(k);
    }
    let http = client();
    let warm_until = Instant::now() + Duration::from_secs(1);
    let stop_at = warm_until + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (c, mut share) in shares.into_iter().enumerate() {
        let (http, bases) = (http.clone(), bases.clone());
        let address = format!("10.{}.{}.{}", c / 65_536 % 256, c / 256 % 256, c % 256);
        tasks.push(tokio::spawn(async move {
            let (mut times, mut errors, mut n) = (Vec::new(), 0u64, 0usize);
            while Instant::now() < stop_at {
                let i = n % share.len();
                let first = &bases[(c + n) % bases.len()];
                let second = &bases[(c + n + 1) % bases.len()];
                n += 1;
                let started = Instant::now();
                let ok = login(&http, first, second, &mut share[i].1, Some(&address)).await.unwrap_or(false);
                if started >= warm_until {
                    times.push(started.elapsed().as_secs_f64() * 1e3);
                    errors += (!ok) as u64;
                }
            }
            (times, errors, share)
        }));
    }
    let (mut times, mut errors, mut keys) = (Vec::new(), 0, Vec::new());
    for t in tasks {
        let (t, e, share) = t.await.map_err(|e| e.to_string())?;
        times.extend(t);
        errors += e;
        keys.extend(share);
    }
    save_keys(args, &keys)?;
    times.sort_by(f64::total_cmp);
    Ok(json!({
        "instances": bases.len(), "clients": clients, "n": times.len(),
        "per_s": round(times.len() as f64 / seconds as f64),
        "p50_ms": round(percentile(&times, 0.5)), "p99_ms": round(percentile(&times, 0.99)), "errors": errors,
    }))
}

/// `logins` sequential logins of one customer: their p50.
async fn long(args: &Args) -> Res<Value> {
    let base = args.get("base")?.to_string();
    let mut keys = load_keys(args)?;
    let login_id = args.get("login-id")?;
    let index = keys.iter().position(|(l, _)| l == login_id).ok_or_else(|| format!("no customer {login_id}"))?;
    let n = args.num("logins", 200)?;
    let http = client();
    let mut times = Vec::new();
    let mut errors = 0;
    {
        let key = &mut keys.get_mut(index).ok_or("no such customer")?.1;
        for _ in 0..n {
            let started = Instant::now();
            errors += (!login(&http, &base, &base, key, None).await?) as u64;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    save_keys(args, &keys)?;
    times.sort_by(f64::total_cmp);
    Ok(json!({ "login_id": keys[index].0, "n": n, "p50_ms": round(percentile(&times, 0.5)), "errors": errors }))
}

/// The support desk's history (newest 50) of random accounts.
async fn history(args: &Args) -> Res<Value> {
    let base = args.get("base")?;
    let token = args.get("token")?;
    let n = args.num("requests", 500)? as usize;
    let db = ledger_projections::Database::connect(args.get("database-url")?).await.map_err(|e| e.to_string())?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(&db.any).await.map_err(|e| e.to_string())?;
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT account_id FROM status_accounts ORDER BY account_id").fetch_all(&db.any).await.map_err(|e| e.to_string())?;
    if ids.is_empty() {
        return Err("no accounts".into());
    }
    let http = client();
    let mut times = Vec::new();
    let mut errors = 0;
    for i in 0..n {
        let id = &ids[(i * 7919) % ids.len()].0;
        let started = Instant::now();
        let res =
            http.get(format!("{base}/api/v1/staff/accounts/{id}/history")).bearer_auth(token).send().await.map_err(|e| e.to_string())?;
        let ok = res.status().as_u16() == 200;
        let _ = res.bytes().await;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        errors += (!ok) as u64;
    }
    times.sort_by(f64::total_cmp);
    Ok(json!({ "events_total": total, "accounts": ids.len(), "n": n, "p50_ms": round(percentile(&times, 0.5)),
               "p99_ms": round(percentile(&times, 0.99)), "errors": errors }))
}

fn rss_kib(pid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// The whole audit trail as CSV, watching the server's memory.
async fn export(args: &Args) -> Res<Value> {
    let base = args.get("base")?;
    let pid = args.num("pid", 0)?;
    let before = rss_kib(pid);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let watcher = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let mut res = client()
        .get(format!("{base}/api/v1/audit/export?format=csv"))
        .bearer_auth(args.get("token")?)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (mut bytes, mut lines) = (0usize, 0u64);
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    watcher.abort();
    let growth = peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(before);
    Ok(json!({ "rows": lines.saturating_sub(1), "mb": round(bytes as f64 / 1e6), "seconds": round(started.elapsed().as_secs_f64()),
               "rss_growth_mib": round(growth as f64 / 1024.0) }))
}

/// Copies the stream of account `template` into `accounts` new accounts
/// (new account, login, passkey and credential ids, new addresses), and
/// with `copies-of-last K` appends K copies of the template's last event to
/// the template itself (a long history). Straight into the event table, in
/// multi-row inserts; the triggers fill the claims as for any append.
async fn fill(args: &Args) -> Res<Value> {
    let db = ledger_projections::Database::connect(args.get("database-url")?).await.map_err(|e| e.to_string())?;
    let template = args.get("template")?;
    let accounts = args.num("accounts", 0)? as usize;
    let copies = args.num("copies-of-last", 0)? as usize;
    let postgres = db.backend == ledger_projections::Backend::Postgres;
    let sql = if postgres {
        "SELECT sequence, event_type, event_version, payload::text, metadata::text FROM events
          WHERE aggregate_type = 'account' AND aggregate_id = $1 ORDER BY sequence"
    } else {
        "SELECT sequence, event_type, event_version, payload, metadata FROM events
          WHERE aggregate_type = 'account' AND aggregate_id = $1 ORDER BY sequence"
    };
    let stream: Vec<(i64, String, String, String, String)> =
        sqlx::query_as(sql).bind(template).fetch_all(&db.any).await.map_err(|e| e.to_string())?;
    let Some(last) = stream.last().cloned() else { return Err(format!("account {template} has no events")) };
    // The identifiers to replace in each copy.
    let opened: Value = serde_json::from_str(&stream[0].3).map_err(|e| e.to_string())?;
    let login_id = opened["AccountOpened"]["login_id"].as_str().ok_or("the template does not start with AccountOpened")?.to_string();
    let email = opened["AccountOpened"]["email"].as_str().unwrap_or("none@example.jp").to_string();
    let mut ids = Vec::new();
    for (_, _, _, payload, _) in &stream {
        let v: Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
        if let Some(p) = v.get("PasskeyRegistered").and_then(|p| p.get("passkey")) {
            ids.push(p["passkey_id"].as_str().unwrap_or_default().to_string());
            ids.push(p["credential_id"].as_str().unwrap_or_default().to_string());
        }
    }
    let started = Instant::now();
    let mut rows: Vec<(String, i64, String, String, String, String)> = Vec::new();
    let mut written = 0u64;
    for n in 0..accounts {
        let account = uuid::Uuid::new_v4().to_string();
        let tag = format!("f{n:07}{}", &account[..8]);
        for (sequence, event_type, version, payload, metadata) in &stream {
            let mut payload = payload.replace(&login_id, &tag).replace(&email, &format!("{tag}@fill.example.jp"));
            for id in ids.iter().filter(|i| !i.is_empty()) {
                payload = payload.replace(id.as_str(), &format!("{tag}{}", &id[..id.len().min(8)]));
            }
            rows.push((account.clone(), *sequence, event_type.clone(), version.clone(), payload, metadata.clone()));
        }
        if rows.len() >= 2_000 {
            written += insert_events(&db, &mut rows).await?;
        }
    }
    for i in 0..copies {
        rows.push((template.to_string(), last.0 + 1 + i as i64, last.1.clone(), last.2.clone(), last.3.clone(), last.4.clone()));
        if rows.len() >= 2_000 {
            written += insert_events(&db, &mut rows).await?;
        }
    }
    written += insert_events(&db, &mut rows).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({ "events": written, "seconds": round(seconds), "per_s": round(written as f64 / seconds.max(1e-9)) }))
}

async fn insert_events(db: &ledger_projections::Database, rows: &mut Vec<(String, i64, String, String, String, String)>) -> Res<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let cast = if db.backend == ledger_projections::Backend::Postgres { "::json" } else { "" };
    let mut sql =
        String::from("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ");
    for i in 0..rows.len() {
        let b = i * 6;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("('account', ${}, ${}, ${}, ${}, ${}{cast}, ${}{cast})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6));
    }
    let mut query = sqlx::query(&sql);
    for (account, sequence, event_type, version, payload, metadata) in rows.iter() {
        query = query.bind(account).bind(*sequence).bind(event_type).bind(version).bind(payload).bind(metadata);
    }
    let n = query.execute(&db.any).await.map_err(|e| e.to_string())?.rows_affected();
    rows.clear();
    Ok(n)
}
