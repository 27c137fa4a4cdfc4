//! The `ledger` command line.

use secrecy::ExposeSecret;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ledger_domain::account::HolderKind;
use ledger_domain::staff::StaffEvent;
use ledger_projections::projector::{Progress, RebuildMode};

use crate::clock::Clock;
use crate::config::{Config, Settings};
use crate::error::ErrorCode;
use crate::http::admin::{open, OpenBody};
use crate::http::extract::RequestMeta;
use crate::secrets::{new_token, token_hash, Secret};
use crate::state::{App, AppState};

mod webhooks;

/// passkey-ledger: the account security ledger.
#[derive(Parser)]
#[command(name = "ledger", version)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    /// The staff member running a command that is recorded (audit export,
    /// verify, head; staff add and revoke-token), by their `staff_id`
    /// (`ledger staff list`), their token in force: the trail names them.
    /// Required in production; otherwise the operating system's user ID is
    /// recorded.
    #[arg(long = "as", value_name = "STAFF_ID", global = true)]
    pub operator: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line and the environment; a blank environment variable
    /// counts as unset. Exits with clap's message on a bad setting.
    pub fn from_env_and_args() -> Cli {
        use clap::error::ErrorKind;
        match crate::config::parse_settings::<Cli>(std::env::args_os()) {
            Ok(cli) => cli,
            Err((e, _))
                if matches!(
                    e.kind(),
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) =>
            {
                e.exit()
            }
            Err((_, message)) => {
                eprint!("{message}");
                std::process::exit(2)
            }
        }
    }
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
    /// The audit trail: export, verify, chain head.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The audit trail's webhook subscriptions (signed CloudEvents batches).
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Writes the trail (filtered) as CSV for Excel or JSON Lines, showing
    /// progress on stderr.
    Export {
        #[arg(long, value_parser = ["csv", "jsonl"], default_value = "csv")]
        format: String,
        /// Output file (default: audit-trail-<time>.<format>); `-` for stdout.
        #[arg(long)]
        out: Option<String>,
        /// The account's ID or login ID.
        #[arg(long, visible_alias = "account")]
        account_id: Option<String>,
        /// Event types, comma-separated, in any case (PasskeyRegistered,LoginLocked).
        #[arg(long = "type")]
        event_type: Option<String>,
        /// customer, core_system, system, staff or staff:<id>.
        #[arg(long)]
        actor: Option<String>,
        /// web, mobile_web, mobile_app, desktop_app or cli.
        #[arg(long)]
        channel: Option<String>,
        /// From (inclusive): an RFC 3339 instant or a day, 2026-11-24 (Japan time).
        #[arg(long)]
        from: Option<String>,
        /// To (exclusive): an RFC 3339 instant or a day, 2026-11-24 (Japan time).
        #[arg(long)]
        to: Option<String>,
    },
    /// Recomputes the hash chain, the leaves and the Merkle tree from the
    /// log, and checks every signed checkpoint; exits with 1 at the first
    /// bad row.
    Verify {
        /// A signed checkpoint kept outside the ledger: its signature and
        /// the consistency proof from it to the trail now are checked too.
        #[arg(long, value_name = "FILE")]
        against: Option<std::path::PathBuf>,
        /// The verifier key the checkpoint was signed with (default: this
        /// ledger's, as `ledger audit verifier-key` prints it).
        #[arg(long, value_name = "VERIFIER_KEY", requires = "against")]
        key: Option<String>,
    },
    /// Prints the chain head (position and hash) for anchoring elsewhere.
    Head,
    /// Signs a checkpoint of the trail's Merkle tree now (when it has grown
    /// since the newest) and prints it, exactly as signed.
    Checkpoint,
    /// Prints the verifier key of the log's checkpoints, to hand to auditors.
    VerifierKey,
    /// Prints the inclusion proof of a trail row (JSON).
    Prove {
        /// The row's position - 1.
        #[arg(long)]
        leaf_index: i64,
        /// Default: the newest checkpoint's tree size.
        #[arg(long)]
        tree_size: Option<i64>,
    },
    /// Prints the consistency proof from one tree size to a larger (JSON;
    /// the second default: the newest checkpoint's tree size).
    ProveConsistency { from_size: i64, to_size: Option<i64> },
}

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Adds a staff member; prints, on the last line, a one-time link
    /// (valid 24 hours) where they register a passkey for the console at
    /// `/console`. Only its hash is stored.
    Add {
        /// The member's name as staff and the audit trail show it (unique).
        #[arg(long)]
        name: String,
        /// What the member may do: the support desk, compliance, or
        /// everything (admin, also the integration API).
        #[arg(long, value_parser = ["admin", "support", "compliance"])]
        role: String,
        /// Also an API token for scripts, printed on the last line after
        /// the link (shown once; `ledger staff token` gives one later).
        #[arg(long)]
        token: bool,
        /// Days that token lasts (1 to 366; 90 by default).
        #[arg(long, default_value_t = STAFF_TOKEN_DAYS, value_parser = clap::value_parser!(u32).range(1..=366), requires = "token")]
        expires_in_days: u32,
    },
    /// Gives a member a new API token for scripts (the staff API's bearer
    /// token), replacing the one they had; prints it on the last line
    /// (shown once, only its hash is stored).
    Token {
        /// The member's name, as `ledger staff list` shows it.
        #[arg(long)]
        name: String,
        /// Days the token lasts (1 to 366; 90 by default).
        #[arg(long, default_value_t = STAFF_TOKEN_DAYS, value_parser = clap::value_parser!(u32).range(1..=366))]
        expires_in_days: u32,
    },
    /// A new one-time console enrolment link for a member who lost their
    /// passkey: their earlier console passkeys stop working. Printed on
    /// the last line.
    Link {
        /// The member's name, as `ledger staff list` shows it.
        #[arg(long)]
        name: String,
    },
    /// Lists staff members and whether each token is in force, revoked or
    /// expired (never the tokens).
    List,
    /// Revokes a staff member's token at once; every later use of it is
    /// refused and recorded.
    RevokeToken {
        /// The member's `staff_id`, as `ledger staff list` shows it.
        staff_id: String,
    },
}

#[derive(Subcommand)]
pub enum ProjectionsCommand {
    /// Builds the read models again from the whole event log, beside the
    /// live ones (which keep serving), and switches them in once caught up.
    Rebuild {
        /// Empty the live read models first and refill them: faster and no
        /// room needed beside them, but the views are empty until it ends.
        #[arg(long)]
        in_place: bool,
    },
}

/// The `ledger` program: logs as `RUST_LOG` says (info by default), runs
/// the command line, and exits 1 with the error on stderr. The binary's
/// `main` is this and the allocator.
///
/// Exit codes: 2 for a setting that is wrong (as clap's own refusals), which
/// restarting will not mend; 1 for anything else.
pub async fn main() {
    if let Err(e) = init_logs() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let cli = Cli::from_env_and_args();
    let (command, operator) = (cli.command, cli.operator);
    let config = match Config::try_from(cli.settings).and_then(|c| crate::state::check_settings(&c).map(|()| c)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run_with(config, command, operator).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Logs go to stderr (stdout is for what a command prints): text, in
/// colour only on a terminal, or JSON lines with `LEDGER_LOG_FORMAT=json`;
/// `RUST_LOG` filters (info by default).
fn init_logs() -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("LEDGER_LOG_FORMAT").ok().filter(|v| !v.trim().is_empty()).as_deref().map(str::trim) {
        None | Some("text") => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        Some("json") => builder.json().flatten_event(true).with_current_span(false).init(),
        Some(other) => return Err(format!("LEDGER_LOG_FORMAT must be text or json, got {other:?}")),
    }
    Ok(())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), String> {
    run_with(Config::try_from(cli.settings)?, cli.command, cli.operator).await
}

/// Runs a command with its configuration.
pub async fn run_with(config: Config, command: Command, operator: Option<String>) -> Result<(), String> {
    let as_staff = operator.as_deref();
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let (_, applied) = crate::state::connect_waiting(&config.database_url, config.database_wait).await?;
            println!("migrations applied: {applied}");
            Ok(())
        }
        Command::DemoSeed => demo_seed(config).await,
        Command::Staff { command: StaffCommand::Add { name, role, token, expires_in_days } } => {
            let app = App::start(config, Clock::default()).await?;
            let operator = Operator::named(&app, as_staff).await?;
            let name = name.trim().to_string();
            if app.store.staff_members().await.map_err(|e| e.to_string())?.iter().any(|m| m.name == name) {
                return Err(format!("--name {name:?}: a staff member of this name exists already (`ledger staff list`)"));
            }
            let (staff_id, token, expires_at) = if token {
                let (staff_id, token) = add_staff_for(&app, &name, &role, expires_in_days).await?;
                (staff_id, Some(token), Some(app.clock.now() + chrono::Duration::days(i64::from(expires_in_days))))
            } else {
                (add_staff_without_token(&app, &name, &role).await?, None, None)
            };
            let event = StaffEvent::StaffMemberAdded { staff_id: staff_id.clone(), name: name.clone(), role: role.clone(), expires_at };
            app.staff_log.record(&operator.stream, event, operator.metadata(&app)).await.map_err(|e| e.to_string())?;
            let link = enrolment_link(&app, &operator, &staff_id, &name).await?;
            println!("staff member {name} ({staff_id}) added with role {role}; their console enrolment link (single use, valid 24 hours):");
            println!("{link}");
            if let Some(token) = token {
                println!("their API token, valid {expires_in_days} days (shown once):");
                println!("{}", token.expose_secret());
            }
            Ok(())
        }
        Command::Staff { command: StaffCommand::Token { name, expires_in_days } } => {
            let app = App::start(config, Clock::default()).await?;
            let operator = Operator::named(&app, as_staff).await?;
            let member = member_named(&app, &name).await?;
            let token = new_token();
            let expires_at = app.clock.now() + chrono::Duration::days(i64::from(expires_in_days));
            let replaced = app
                .store
                .replace_staff_token(&member.staff_id, &token_hash(token.expose_secret()), expires_at.timestamp_millis())
                .await
                .map_err(|e| e.to_string())?;
            if !replaced {
                return Err(format!("--name {name:?}: that member is disabled"));
            }
            let event = StaffEvent::StaffTokenIssued { staff_id: member.staff_id.clone(), name: member.name.clone(), expires_at };
            app.staff_log.record(&operator.stream, event, operator.metadata(&app)).await.map_err(|e| e.to_string())?;
            println!(
                "a new API token for {} ({}), valid {expires_in_days} days; any earlier token stops working; the token (shown once):",
                member.name, member.staff_id
            );
            println!("{}", token.expose_secret());
            Ok(())
        }
        Command::Staff { command: StaffCommand::Link { name } } => {
            let app = App::start(config, Clock::default()).await?;
            let operator = Operator::named(&app, as_staff).await?;
            let member = member_named(&app, &name).await?;
            if member.disabled_at.is_some() {
                return Err(format!("--name {name:?}: that member is disabled"));
            }
            app.store.remove_staff_passkeys(&member.staff_id, app.clock.now().timestamp_millis()).await.map_err(|e| e.to_string())?;
            let link = enrolment_link(&app, &operator, &member.staff_id, &member.name).await?;
            println!(
                "a new console enrolment link for {} (single use, valid 24 hours); their earlier console passkeys stop working:",
                member.name
            );
            println!("{link}");
            Ok(())
        }
        Command::Staff { command: StaffCommand::List } => {
            let app = App::start(config, Clock::default()).await?;
            print!("{}", list_staff(&app).await?);
            Ok(())
        }
        Command::Staff { command: StaffCommand::RevokeToken { staff_id } } => {
            let app = App::start(config, Clock::default()).await?;
            let operator = Operator::named(&app, as_staff).await?;
            revoke_staff_token(&app, &staff_id, &operator).await?;
            println!("the token of staff member {staff_id} is revoked");
            Ok(())
        }
        Command::Audit { command } => audit(config, command, as_staff).await,
        Command::Webhooks { command } => {
            let app = App::start(config, Clock::default()).await?;
            webhooks::run(&app, command, as_staff).await
        }
        Command::Projections { command: ProjectionsCommand::Rebuild { in_place } } => {
            let app = App::start(config, Clock::default()).await?;
            let mode = if in_place { RebuildMode::InPlace } else { RebuildMode::Beside };
            let shown = ProgressLine::default();
            let n = app.projector.rebuild_with(mode, &|p| shown.report(p)).await.map_err(|e| e.to_string())?;
            println!("read models rebuilt from {n} events");
            Ok(())
        }
    }
}

/// A rebuild's progress on stderr, at most every two seconds and at the
/// end: how many events of how many, how fast, and how long is left.
struct ProgressLine {
    started: std::time::Instant,
    /// When a line was last shown, and the count it showed.
    last: std::sync::Mutex<Option<(std::time::Instant, usize)>>,
}

impl Default for ProgressLine {
    fn default() -> ProgressLine {
        ProgressLine { started: std::time::Instant::now(), last: std::sync::Mutex::new(None) }
    }
}

impl ProgressLine {
    fn report(&self, Progress { applied, total }: Progress) {
        let Ok(mut last) = self.last.lock() else { return };
        let done = applied >= total.max(0) as usize;
        if let Some((at, shown)) = *last {
            // The line at 100% once; events appended meanwhile are in the
            // final count on stdout.
            let shown_done = shown >= total.max(0) as usize;
            if applied == shown || shown_done || (!done && at.elapsed() < std::time::Duration::from_secs(2)) {
                return;
            }
        }
        *last = Some((std::time::Instant::now(), applied));
        if applied == 0 {
            eprintln!("rebuild: 0 of {total} events");
            return;
        }
        let rate = applied as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        if done {
            eprintln!("rebuild: {total} of {total} events (100%), {rate:.0} events/s; then the events appended meanwhile");
        } else {
            let percent = applied as f64 * 100.0 / total as f64;
            let left = (total as f64 - applied as f64) / rate;
            eprintln!("rebuild: {applied} of {total} events ({percent:.0}%), {rate:.0} events/s, about {left:.0} s left");
        }
    }
}

/// Who runs a command line that is recorded: the staff member `--as`
/// names (their token in force), or, outside production, this process's
/// operating-system user ID. Never an environment variable alone: `$USER`
/// is kept only as what the user claimed, beside the ID.
pub struct Operator {
    /// The staff stream the act is recorded in.
    pub stream: String,
    /// The actor the trail names (`staff:<id>`, `operator:uid:<n>`).
    pub actor: String,
    /// What `$USER` said, unverified.
    claimed_user: Option<String>,
}

impl Operator {
    /// The operator of this command line.
    pub async fn named(app: &AppState, as_staff: Option<&str>) -> Result<Operator, String> {
        let claimed_user = std::env::var("USER").ok().filter(|u| !u.trim().is_empty());
        if let Some(staff_id) = as_staff.map(str::trim) {
            let now = app.clock.now().timestamp_millis();
            let members = app.store.staff_members().await.map_err(|e| e.to_string())?;
            let member = members.iter().find(|m| m.staff_id == staff_id);
            return match member {
                // The core system's integration token is no one running a command.
                Some(m) if m.name == "core-system" && m.expires_at.is_none() => {
                    Err(format!("--as {staff_id}: that is the core system's integration token, not a person: name yourself"))
                }
                Some(m) if m.revoked_at.is_none() && m.disabled_at.is_none() && m.expires_at.is_none_or(|at| at > now) => {
                    Ok(Operator { stream: m.staff_id.clone(), actor: format!("staff:{}", m.staff_id), claimed_user })
                }
                _ => Err(format!(
                    "--as {staff_id}: no staff member with this staff_id and a token in force (`ledger staff list` shows them)"
                )),
            };
        }
        if app.config.run_mode == crate::config::RunMode::Production {
            return Err("in production a recorded command names who runs it: --as <staff_id> (`ledger staff list` shows them)".into());
        }
        Ok(Operator::this_process(claimed_user))
    }

    /// The operating system's user of this process (its real user ID, as
    /// the kernel reports it), for acts of the service itself at start.
    fn this_process(claimed_user: Option<String>) -> Operator {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status.lines().find_map(|l| l.strip_prefix("Uid:").and_then(|ids| ids.split_whitespace().next().map(str::to_string)))
            })
            .unwrap_or_else(|| "unknown".into());
        let actor = format!("operator:uid:{uid}");
        Operator { stream: actor.clone(), actor, claimed_user }
    }

    /// The metadata of an act on the command line.
    pub fn metadata(&self, app: &AppState) -> ledger_domain::EventMetadata {
        let user_agent = match &self.claimed_user {
            Some(user) => format!("ledger command line (USER={user})"),
            None => "ledger command line".into(),
        };
        let meta = RequestMeta {
            channel: ledger_domain::Channel::Web,
            ip: String::new(),
            user_agent,
            request_id: uuid::Uuid::new_v4().to_string(),
            hints: Default::default(),
        };
        let mut m = meta.metadata(&self.actor, app.clock.now());
        m.channel = Some("cli".into());
        m
    }
}

async fn audit(config: Config, command: AuditCommand, as_staff: Option<&str>) -> Result<(), String> {
    let app = App::start(config, Clock::default()).await?;
    let operator = Operator::named(&app, as_staff).await?;
    app.projector.settle(Duration::from_secs(30)).await.map_err(|e| e.to_string())?;
    match command {
        AuditCommand::Export { format, out, account_id, event_type, actor, channel, from, to } => {
            use futures_util::StreamExt;
            use std::io::Write;
            let given = crate::filters::GivenFilters { account: account_id, types: event_type, actor, channel, from, to };
            let filter = given.read(&app.store).await.map_err(|e| e.to_string())?;
            let format = crate::export::Format::parse(&format).ok_or("format must be csv or jsonl")?;
            let filters = crate::filters::recorded(&filter);
            app.staff_log
                .record(
                    &operator.stream,
                    StaffEvent::AuditTrailExported { format: format.extension().into(), filters },
                    operator.metadata(&app),
                )
                .await
                .map_err(|e| e.to_string())?;
            app.projector.catch_up().await.map_err(|e| e.to_string())?;
            let total = ledger_projections::audit::count(&app.db.any, &filter).await.map_err(|e| e.to_string())?;
            let path = out.unwrap_or_else(|| format!("audit-trail-{}.{}", app.clock.now().format("%Y%m%dT%H%M%SZ"), format.extension()));
            let mut sink: Box<dyn Write> = if path == "-" {
                Box::new(std::io::stdout().lock())
            } else {
                Box::new(std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| format!("{path}: {e}"))?))
            };
            let progress = move |sent: u64| {
                let pct = if total == 0 { 100 } else { sent * 100 / total.max(1) };
                eprint!("\rexported {sent} of {total} rows ({pct}%)");
            };
            let mut chunks = Box::pin(crate::export::stream(app.db.any.clone(), filter, format, progress));
            while let Some(chunk) = chunks.next().await {
                sink.write_all(&chunk.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            }
            sink.flush().map_err(|e| e.to_string())?;
            eprintln!();
            if path != "-" {
                eprintln!("written to {path}");
            }
            Ok(())
        }
        AuditCommand::Verify { against, key } => {
            let against = match against {
                Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?),
                None => None,
            };
            // A checkpoint kept elsewhere is checked against the rows too,
            // not only against the stored tree.
            let kept_elsewhere = match &against {
                Some(note) => {
                    let verifier = match &key {
                        Some(key) => ledger_projections::checkpoint::Verifier::parse(key).map_err(|e| format!("--key: {e}"))?,
                        None => app.log_key.verifier(),
                    };
                    let statement = verifier.open(note).map_err(|e| format!("the checkpoint: {e}"))?;
                    Some((statement.tree_size as i64, statement.root))
                }
                None => None,
            };
            let report =
                crate::proofs::verify_trail(&app, kept_elsewhere, |n| eprint!("\rchecked {n} rows")).await.map_err(|e| e.to_string())?;
            eprintln!();
            let event =
                StaffEvent::AuditTrailVerified { ok: report.ok, checked: report.checked, first_bad_position: report.first_bad_position };
            app.staff_log.record(&operator.stream, event, operator.metadata(&app)).await.map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
            let outside = match against {
                Some(note) => {
                    let outside = crate::proofs::against(&app, &note, key.as_deref()).await.map_err(|e| format!("the checkpoint: {e}"))?;
                    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "against": outside })).map_err(|e| e.to_string())?);
                    Some(outside)
                }
                None => None,
            };
            if !report.ok {
                let problem = report.problem.unwrap_or_default();
                return Err(match report.first_bad_position {
                    Some(position) => format!("the audit trail was altered: first bad position {position} ({problem})"),
                    None => format!("the audit trail does not verify: {problem}"),
                });
            }
            match outside {
                Some(outside) if !outside.ok => Err(format!("the checkpoint kept elsewhere: {}", outside.problem.unwrap_or_default())),
                _ => Ok(()),
            }
        }
        AuditCommand::Checkpoint => {
            // The refusal's own words: a rewritten trail is an alarm.
            let made = match ledger_projections::checkpoint::make(&app.db.any, &app.log_key).await.map_err(|e| e.to_string())? {
                ledger_projections::checkpoint::Made::New(made) | ledger_projections::checkpoint::Made::Unchanged(made) => Some(made),
                ledger_projections::checkpoint::Made::Empty => None,
            };
            // Timestamped at once when a time-stamp authority is configured.
            let latest = match made {
                Some(made) if made.timestamp.is_none() && app.config.tsa_url.is_some() => {
                    crate::proofs::stamp_pending(&app).await;
                    let again = ledger_projections::checkpoint::of_size(&app.db.any, made.tree_size).await.map_err(|e| e.to_string())?;
                    let again = again.unwrap_or(made);
                    if again.timestamp.is_none() {
                        eprintln!("the time-stamp authority did not stamp this checkpoint now (see the log); it is asked again at the next checkpoint round");
                    }
                    Some(again)
                }
                other => other,
            };
            let event = StaffEvent::AuditCheckpointRead { tree_size: latest.as_ref().map(|c| c.tree_size), timestamp: false };
            app.staff_log.record(&operator.stream, event, operator.metadata(&app)).await.map_err(|e| e.to_string())?;
            match latest {
                Some(latest) => {
                    print!("{}", latest.note);
                    Ok(())
                }
                None => Err("the audit trail is empty: there is nothing to sign yet".into()),
            }
        }
        AuditCommand::VerifierKey => {
            println!("{}", app.log_key.verifier_key());
            Ok(())
        }
        AuditCommand::Prove { leaf_index, tree_size } => {
            let proof = crate::proofs::inclusion(&app, leaf_index, tree_size).await.map_err(|e| e.messages().0.to_string())?;
            let event = StaffEvent::AuditInclusionProofRead { leaf_index, tree_size: proof.tree_size };
            app.staff_log.record(&operator.stream, event, operator.metadata(&app)).await.map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&proof).map_err(|e| e.to_string())?);
            Ok(())
        }
        AuditCommand::ProveConsistency { from_size, to_size } => {
            let proof = crate::proofs::consistency(&app, from_size, to_size).await.map_err(|e| e.messages().0.to_string())?;
            let event = StaffEvent::AuditConsistencyProofRead { from_size: proof.from_size, to_size: proof.to_size };
            app.staff_log.record(&operator.stream, event, operator.metadata(&app)).await.map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&proof).map_err(|e| e.to_string())?);
            Ok(())
        }
        AuditCommand::Head => {
            let head = ledger_projections::audit::head(&app.db.any).await.map_err(|e| e.to_string())?;
            let event = StaffEvent::AuditHeadRead { position: head.as_ref().map(|h| h.0) };
            app.staff_log.record(&operator.stream, event, operator.metadata(&app)).await.map_err(|e| e.to_string())?;
            match head {
                Some((position, hash)) => println!("{position} {hash}"),
                None => println!("0 {}", ledger_projections::audit::GENESIS),
            }
            Ok(())
        }
    }
}

/// How long a staff token lasts unless `--expires-in-days` says otherwise.
pub const STAFF_TOKEN_DAYS: u32 = 90;

/// Adds a staff member whose token lasts [`STAFF_TOKEN_DAYS`]; returns the token.
pub async fn add_staff(app: &AppState, name: &str, role: &str) -> Result<Secret, String> {
    Ok(add_staff_for(app, name, role, STAFF_TOKEN_DAYS).await?.1)
}

/// Adds a staff member whose token lasts `days`; returns their staff ID and
/// the token (only its hash is stored).
pub async fn add_staff_for(app: &AppState, name: &str, role: &str, days: u32) -> Result<(String, Secret), String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("--name must name the staff member".into());
    }
    let token = new_token();
    let now = app.clock.now();
    let staff_id = uuid::Uuid::new_v4().to_string();
    let staff = crate::storage::NewStaff {
        staff_id: &staff_id,
        name,
        role,
        token_hash: &token_hash(token.expose_secret()),
        created_at: now.timestamp_millis(),
        expires_at: Some((now + chrono::Duration::days(i64::from(days))).timestamp_millis()),
    };
    app.store.add_staff(staff).await.map_err(|e| e.to_string())?;
    Ok((staff_id, token))
}

/// Adds a staff member with no API token (`ledger staff token` gives
/// one); returns their staff ID.
pub async fn add_staff_without_token(app: &AppState, name: &str, role: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("--name must name the staff member".into());
    }
    let staff_id = uuid::Uuid::new_v4().to_string();
    let staff = crate::storage::NewStaff {
        staff_id: &staff_id,
        name,
        role,
        // Never the hash of anything presented: no token opens this member.
        token_hash: &format!("{NO_TOKEN}{staff_id}"),
        created_at: app.clock.now().timestamp_millis(),
        expires_at: None,
    };
    app.store.add_staff(staff).await.map_err(|e| e.to_string())?;
    Ok(staff_id)
}

/// What `staff.token_hash` holds for a member without an API token.
pub const NO_TOKEN: &str = "none:";

/// The member of a name (names are unique: `ledger staff add` refuses a taken one).
async fn member_named(app: &AppState, name: &str) -> Result<crate::storage::StaffRow, String> {
    let members = app.store.staff_members().await.map_err(|e| e.to_string())?;
    let mut found = members.into_iter().filter(|m| m.name == name.trim());
    match (found.next(), found.next()) {
        (Some(m), None) => Ok(m),
        (None, _) => Err(format!("--name {name:?}: no such staff member (`ledger staff list` shows them)")),
        (Some(_), Some(_)) => Err(format!("--name {name:?}: several staff members have this name")),
    }
}

/// A console enrolment link for a member, its issue on record.
pub async fn enrolment_link(app: &AppState, operator: &Operator, staff_id: &str, name: &str) -> Result<String, String> {
    let (link, expires_at) = crate::console::issue_link(app, staff_id).await.map_err(|e| e.to_string())?;
    let event = StaffEvent::StaffEnrolmentLinkIssued { staff_id: staff_id.to_string(), name: name.to_string(), expires_at };
    app.staff_log.record(&operator.stream, event, operator.metadata(app)).await.map_err(|e| e.to_string())?;
    Ok(link)
}

/// Makes the token in `path` the core system's admin token (staff member
/// `core-system`, no expiry), unless a staff member already has it; the
/// core system's earlier tokens are revoked, so replacing the file rotates
/// the token. Only its hash is stored.
pub async fn provision_admin_token(app: &AppState, path: &std::path::Path) -> Result<(), String> {
    let token = std::fs::read_to_string(path).map_err(|e| format!("LEDGER_ADMIN_TOKEN_FILE {}: {e}", path.display()))?;
    let token = token.trim();
    if token.len() < 32 {
        return Err(format!("LEDGER_ADMIN_TOKEN_FILE {}: the token must be at least 32 characters", path.display()));
    }
    let now = app.clock.now().timestamp_millis();
    match app.store.provision_core_system(&uuid::Uuid::new_v4().to_string(), &token_hash(token), now).await.map_err(|e| e.to_string())? {
        Some(rotated) => {
            // A rotation is on record like any revocation.
            for staff_id in rotated {
                tracing::info!(staff_id, "the core system's earlier admin token is revoked: LEDGER_ADMIN_TOKEN_FILE holds a new one");
                let event = ledger_domain::staff::StaffEvent::StaffTokenRevoked {};
                let operator = Operator::this_process(None);
                app.staff_log.record(&staff_id, event, operator.metadata(app)).await.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        None => Err(format!(
            "LEDGER_ADMIN_TOKEN_FILE {}: this token was revoked (replaced by a newer file, or by `ledger staff revoke-token`); deploy the current token file",
            path.display()
        )),
    }
}

/// `ledger staff list`: every staff member and their token's state, no token.
pub async fn list_staff(app: &AppState) -> Result<String, String> {
    let now = app.clock.now().timestamp_millis();
    let when = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| ledger_domain::japan::japan_time(t).format("%Y-%m-%d %H:%M JST").to_string())
            .unwrap_or_default()
    };
    let mut out = format!("{:<36}  {:<20}  {:<10}  {:<20}  {:<20}  {}\n", "staff_id", "name", "role", "issued", "expires", "token");
    for m in app.store.staff_members().await.map_err(|e| e.to_string())? {
        let state = match (m.disabled_at, m.revoked_at, m.expires_at) {
            (Some(at), _, _) => format!("disabled {}", when(at)),
            (None, Some(at), _) => format!("revoked {}", when(at)),
            _ if m.no_token == 1 => "no token".to_string(),
            (None, None, Some(at)) if at <= now => "expired".to_string(),
            _ => "in force".to_string(),
        };
        let expires = m.expires_at.map(when).unwrap_or_else(|| "never".into());
        out.push_str(&format!(
            "{:<36}  {:<20}  {:<10}  {:<20}  {:<20}  {state}\n",
            m.staff_id,
            m.name,
            m.role,
            when(m.created_at),
            expires
        ));
    }
    Ok(out)
}

/// `ledger staff revoke-token`: the member's token opens nothing from now
/// on, and the revocation is recorded in their stream.
pub async fn revoke_staff_token(app: &AppState, staff_id: &str, operator: &Operator) -> Result<(), String> {
    let now = app.clock.now();
    if !app.store.revoke_staff_token(staff_id, now.timestamp_millis()).await.map_err(|e| e.to_string())? {
        return Err(format!("no staff member {staff_id:?} with a token in force (`ledger staff list` shows them)"));
    }
    let event = ledger_domain::staff::StaffEvent::StaffTokenRevoked {};
    app.staff_log.record(staff_id, event, operator.metadata(app)).await.map_err(|e| e.to_string())?;
    Ok(())
}

async fn serve(config: Config) -> Result<(), String> {
    let bind = config.bind.clone();
    let app = App::start(config, Clock::default()).await?;
    if let Some(path) = app.config.admin_token_file.clone() {
        provision_admin_token(&app, &path).await?;
    }
    let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|e| format!("LEDGER_BIND {bind}: {e}"))?;
    // The address actually bound (port 0 picks a free one).
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or(bind);
    let c = &app.config;
    // The effective configuration, without a secret: what an operator
    // checks first when something behaves unexpectedly.
    tracing::info!(
        mode = ?c.run_mode,
        database = %c.database_url,
        mail = %c.mail,
        origin = %c.origin,
        rp_id = %c.rp_id,
        mail_from = %c.mail_from,
        brokerage = %c.brokerage_name,
        login_mode = ?c.policy.login_mode,
        code_destination = ?c.policy.code_destination,
        passkey_mandatory_from = ?c.policy.passkey_mandatory_from,
        registration_opens_at = ?c.policy.registration_opens_at,
        login_notice = ?c.login_notice,
        notice_all_addresses = c.notice_all_addresses,
        session_lifetime_secs = c.session_lifetime_secs,
        request_timeout_secs = c.request_timeout.as_secs(),
        admin_address = c.admin_bind.as_deref().unwrap_or("none"),
        public_staff_api = c.public_staff_api,
        metrics_token = c.metrics_token.is_some(),
        admin_token_file = c.admin_token_file.is_some(),
        trusted_proxies = c.trusted_proxies.len(),
        cors_origins = c.cors_origins.len(),
        secret_key = if c.secret_key_hex.is_some() { "LEDGER_SECRET_KEY" } else { "key file in the data folder" },
        "configuration"
    );
    tracing::info!(%address, origin = %app.config.origin, "passkey-ledger listening");
    println!("passkey-ledger listening on http://{address} (demo page at {})", app.config.origin);
    let admin = match app.config.admin_bind.clone() {
        Some(admin_bind) => {
            let admin = tokio::net::TcpListener::bind(&admin_bind).await.map_err(|e| format!("LEDGER_ADMIN_BIND {admin_bind}: {e}"))?;
            let at = admin.local_addr().map(|a| a.to_string()).unwrap_or(admin_bind);
            tracing::info!(address = %at, public_staff_api = app.config.public_staff_api, "admin address listening");
            Some(admin)
        }
        None => None,
    };
    serve_both(app, listener, admin).await?;
    tracing::info!("passkey-ledger stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM (what systemd, Docker and Kubernetes send to stop a
/// service): the server stops accepting, finishes the requests in flight,
/// and the process exits 0.
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM cannot be awaited; only Ctrl-C stops the service gracefully");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// Serves the API on `listener` until Ctrl-C or SIGTERM, projecting in the
/// background.
pub async fn serve_on(app: AppState, listener: tokio::net::TcpListener) -> Result<(), String> {
    serve_both(app, listener, None).await
}

/// [`serve_on`], and the admin address's listener when there is one.
pub async fn serve_both(app: AppState, listener: tokio::net::TcpListener, admin: Option<tokio::net::TcpListener>) -> Result<(), String> {
    // Ends with the server, however the server ends (aborted, too).
    let _projector = StopOnDrop(app.projector.clone().spawn(Duration::from_millis(200)));
    let _throttled = StopOnDrop(tokio::spawn(crate::throttle::record_every_window(app.clone())));
    let _sweeper = StopOnDrop(tokio::spawn(crate::storage::sweep_every(app.store.clone(), app.clock.clone(), Duration::from_secs(60))));
    let _checkpoints =
        app.config.checkpoint_every.map(|every| StopOnDrop(tokio::spawn(crate::proofs::checkpoint_every(app.clone(), every))));
    let instance = uuid::Uuid::new_v4().to_string();
    let streams = StopOnDrop(tokio::spawn(crate::streams::run(app.clone(), instance.clone())));
    let limits = crate::server::Limits {
        header_read_timeout: app.config.header_timeout,
        max_connections: app.config.max_connections,
        write_timeout: app.config.write_timeout,
    };
    let public = crate::server::serve(listener, crate::http::app(app.clone()), limits, shutdown_signal());
    match admin {
        Some(admin) => {
            let admin = crate::server::serve(admin, crate::http::admin_app(app.clone()), limits, shutdown_signal());
            tokio::try_join!(public, admin)?;
        }
        None => public.await?,
    }
    // The refusals of the minute under way are recorded before the stop.
    crate::throttle::record_window(&app).await;
    // Deliveries stop, and another instance takes them over at once (a
    // batch cut off in flight comes again under the same webhook-id).
    drop(streams);
    if let Err(e) = app.store.release_leases(&instance).await {
        tracing::warn!(error = %e, "cannot give up the subscriptions' leases; another instance takes them over when they run out");
    }
    Ok(())
}

/// A background task that ends when this is dropped.
struct StopOnDrop(tokio::task::JoinHandle<()>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        (
            "demo-010",
            HolderKind::Individual,
            Some("demo-010@example.jp"),
            false,
            "ready: deletes every passkey, then registers again from the status screen",
        ),
        (
            "demo-011",
            HolderKind::Individual,
            Some("demo-011@example.jp"),
            false,
            "ready: phone + PC, reports the PC's login from the phone",
        ),
        ("demo-012", HolderKind::Individual, Some("demo-012@example.jp"), false, "ready: a PC customer meeting every refusal"),
        ("demo-013", HolderKind::Individual, Some("demo-013@example.jp"), false, "ready: a phone customer meeting every refusal"),
    ];
    println!("Demo accounts (login password for all: demo-password, trading password: demo-trading):");
    for (login_id, holder_kind, email, temporary, note) in accounts {
        let body = OpenBody {
            login_id: login_id.into(),
            holder_kind,
            email: email.map(str::to_string),
            password: Secret::from("demo-password"),
            password_temporary: temporary,
            transaction_password: Secret::from("demo-trading"),
        };
        match open(&app, body, &meta, None).await {
            Ok(_) => println!("  {login_id:<9} {note}"),
            Err(e) if e.code == ErrorCode::LoginIdTaken => println!("  {login_id:<9} already there ({note})"),
            Err(e) => return Err(format!("{login_id}: {}", e.code.code())),
        }
    }
    println!("Open {} and register a passkey for demo-001; the e-mailed code is in {}.", app.config.origin, app.config.mail);
    Ok(())
}
