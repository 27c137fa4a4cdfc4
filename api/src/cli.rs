//! The `ledger` command line.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ledger_domain::account::HolderKind;

use crate::clock::Clock;
use crate::config::Config;
use crate::http::admin::{open, OpenBody};
use crate::http::extract::RequestMeta;
use crate::secrets::{new_token, token_hash, Secret};
use crate::state::{App, AppState};

/// passkey-ledger: the account security ledger.
#[derive(Parser)]
#[command(name = "ledger", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Runs the HTTP service (SQLite under ./data by default).
    Serve,
    /// Applies database migrations and exits.
    Migrate,
    /// Creates demo accounts and prints how to log in with them.
    DemoSeed,
    /// Staff members and their tokens.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Read models.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
}

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Adds a staff member; prints their token on the last line (shown once,
    /// only its hash is stored).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "support", "compliance"])]
        role: String,
    },
}

#[derive(Subcommand)]
pub enum ProjectionsCommand {
    /// Empties the read models and rebuilds them from the whole event log.
    Rebuild,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), String> {
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let db = ledger_projections::Database::connect(&config.database_url).await.map_err(|e| e.to_string())?;
            let applied = db.migrate().await.map_err(|e| e.to_string())?;
            println!("migrations applied: {applied}");
            Ok(())
        }
        Command::DemoSeed => demo_seed(config).await,
        Command::Staff { command: StaffCommand::Add { name, role } } => {
            let app = App::start(config, Clock::default()).await?;
            let token = add_staff(&app, &name, &role).await?;
            println!("staff member {name} added with role {role}; their token (shown once):");
            println!("{}", token.expose());
            Ok(())
        }
        Command::Projections { command: ProjectionsCommand::Rebuild } => {
            let app = App::start(config, Clock::default()).await?;
            let n = app.projector.rebuild().await.map_err(|e| e.to_string())?;
            println!("read models rebuilt from {n} events");
            Ok(())
        }
    }
}

/// Adds a staff member and returns their new token.
pub async fn add_staff(app: &AppState, name: &str, role: &str) -> Result<Secret, String> {
    let token = new_token();
    sqlx::query("INSERT INTO staff (staff_id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(name)
        .bind(role)
        .bind(token_hash(token.expose()))
        .bind(app.clock.now().timestamp_millis())
        .execute(&app.db.any)
        .await
        .map_err(|e| e.to_string())?;
    Ok(token)
}

async fn serve(config: Config) -> Result<(), String> {
    let bind = config.bind.clone();
    let app = App::start(config, Clock::default()).await?;
    let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|e| format!("{bind}: {e}"))?;
    tracing::info!(address = %bind, origin = %app.config.origin, "passkey-ledger listening");
    println!("passkey-ledger listening on http://{bind} (demo page at {})", app.config.origin);
    serve_on(app, listener).await
}

/// Serves the API on `listener` until Ctrl-C, projecting in the background.
pub async fn serve_on(app: AppState, listener: tokio::net::TcpListener) -> Result<(), String> {
    let projector = app.projector.clone().spawn(Duration::from_millis(200));
    let router = crate::http::app(app).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string());
    projector.abort();
    result
}

async fn demo_seed(config: Config) -> Result<(), String> {
    let app = App::start(config, Clock::default()).await?;
    let meta = RequestMeta {
        channel: ledger_domain::Channel::Web,
        ip: String::new(),
        user_agent: "ledger demo-seed".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        hints: Default::default(),
    };
    let accounts = [
        ("demo-001", HolderKind::Individual, Some("demo-001@example.jp"), false, "ready to register a passkey"),
        ("demo-002", HolderKind::Family, Some("family@example.jp"), false, "shares its address with demo-003: registration refused"),
        ("demo-003", HolderKind::Family, Some("family@example.jp"), false, "shares its address with demo-002: registration refused"),
        ("demo-004", HolderKind::Individual, Some("demo-004@example.jp"), true, "temporary password: registration refused"),
        ("demo-005", HolderKind::Corporate, None, false, "no e-mail address: registration refused"),
        ("demo-006", HolderKind::Individual, Some("demo-006@example.jp"), false, "ready: phone only (seed 000 type 1)"),
        ("demo-007", HolderKind::Individual, Some("demo-007@example.jp"), false, "ready: PC only (type 2)"),
        ("demo-008", HolderKind::Individual, Some("demo-008@example.jp"), false, "ready: phone + PC with Bluetooth (type 3)"),
        ("demo-009", HolderKind::Individual, Some("demo-009@example.jp"), false, "ready: phone + PC without Bluetooth (type 4)"),
    ];
    println!("Demo accounts (login password for all: demo-password, trading password: demo-trading):");
    for (login_id, holder_kind, email, temporary, note) in accounts {
        let body = OpenBody {
            login_id: login_id.into(),
            holder_kind,
            email: email.map(str::to_string),
            password: Secret::new("demo-password"),
            password_temporary: temporary,
            transaction_password: Secret::new("demo-trading"),
        };
        match open(&app, body, &meta).await {
            Ok(_) => println!("  {login_id:<9} {note}"),
            Err(e) if e.code == "login_id_taken" => println!("  {login_id:<9} already there ({note})"),
            Err(e) => return Err(format!("{login_id}: {}", e.code)),
        }
    }
    println!("Open {} and register a passkey for demo-001; the e-mailed code is in {:?}.", app.config.origin, app.config.mail);
    Ok(())
}
