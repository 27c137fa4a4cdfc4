//! `ledger webhooks`: the trail's webhook subscriptions from the command
//! line, recorded in the operator's stream like the admin API's calls.

use clap::Subcommand;

use super::Operator;
use crate::secrets::ExposeSecret;
use crate::state::AppState;
use crate::streams::manage::{self, Actor, ManageError, NewWebhook, SubscriptionView};

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Adds a subscription; prints its ID and, on the last line, its
    /// signing secret (`whsec_...`, shown once).
    Add {
        /// Where batches are POSTed: https on the public internet (see
        /// LEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS).
        #[arg(long)]
        url: String,
        /// `cloudevents` (the trail row as data) or `ocsf` (OCSF 1.3).
        #[arg(long, default_value = "cloudevents", value_parser = ["cloudevents", "ocsf"])]
        format: String,
        /// Only these event types, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Events per request (1 to 1000).
        #[arg(long, default_value_t = manage::DEFAULT_BATCH)]
        batch: u32,
        /// E-mail and IP addresses, User-Agents and login IDs: `masked` or `full`.
        #[arg(long, default_value = "masked", value_parser = ["masked", "full"])]
        personal_data: String,
        /// The first trail position delivered (default 1: the whole trail).
        #[arg(long, default_value_t = 1)]
        from_position: i64,
    },
    /// Lists subscriptions with their position, lag and last error.
    List,
    /// Stops a subscription's deliveries.
    Disable { subscription_id: String },
    /// Delivers again from a trail position (a disabled subscription
    /// becomes active again).
    Replay {
        subscription_id: String,
        #[arg(long)]
        from_position: i64,
    },
    /// A new signing secret, printed on the last line; the previous one
    /// signs too for 24 hours.
    RotateSecret { subscription_id: String },
}

fn said(e: ManageError) -> String {
    match e {
        ManageError::UrlRefused(why) => format!("--url refused: {why}"),
        ManageError::NotFound => "no webhook subscription with this ID (`ledger webhooks list` shows them)".to_string(),
        other => other.to_string(),
    }
}

/// One subscription in a few lines.
pub fn describe(s: &SubscriptionView) -> String {
    let types = if s.types.is_empty() { "all events".to_string() } else { s.types.join(",") };
    let mut out = format!(
        "{}  {} {}  {}\n  format {}, {types}, {} per request, personal data {}\n  delivered through position {} (lag {})",
        s.subscription_id, s.kind, s.state, s.target, s.format, s.batch_size, s.personal_data, s.position, s.lag
    );
    if let Some(reason) = &s.disabled_reason {
        out.push_str(&format!("\n  disabled: {reason}"));
    }
    if s.failures > 0 {
        out.push_str(&format!("\n  {} failed attempt(s) in a row; last error: {}", s.failures, s.last_error.as_deref().unwrap_or("")));
        if let Some(next) = s.next_attempt_at {
            out.push_str(&format!("\n  next attempt at {}", next.to_rfc3339()));
        }
    }
    if let Some(until) = s.previous_secret_until {
        out.push_str(&format!("\n  the previous secret signs too until {}", until.to_rfc3339()));
    }
    out
}

pub async fn run(app: &AppState, command: WebhooksCommand, as_staff: Option<&str>) -> Result<(), String> {
    if let WebhooksCommand::List = command {
        let listed = manage::list(app).await.map_err(|e| e.to_string())?;
        if listed.is_empty() {
            println!("no subscriptions (`ledger webhooks add --url URL` adds one)");
        }
        for s in listed {
            println!("{}", describe(&s));
        }
        return Ok(());
    }
    let operator = Operator::named(app, as_staff).await?;
    let actor = Actor { stream: operator.stream.clone(), metadata: operator.metadata(app) };
    match command {
        WebhooksCommand::Add { url, format, types, batch, personal_data, from_position } => {
            let new = NewWebhook {
                url,
                format: Some(format),
                types,
                batch: Some(batch),
                personal_data: Some(personal_data),
                from_position: Some(from_position),
            };
            let added = manage::add(app, new, &actor).await.map_err(said)?;
            println!("webhook subscription {} added", added.subscription.subscription_id);
            println!("{}", describe(&added.subscription));
            println!("its signing secret (shown once; the receiver verifies webhook-signature with it):");
            println!("{}", added.secret.expose_secret());
        }
        WebhooksCommand::Disable { subscription_id } => {
            let s = manage::disable(app, &subscription_id, &actor).await.map_err(said)?;
            println!("{}", describe(&s));
        }
        WebhooksCommand::Replay { subscription_id, from_position } => {
            let s = manage::replay(app, &subscription_id, from_position, &actor).await.map_err(said)?;
            println!("delivering again from position {from_position}");
            println!("{}", describe(&s));
        }
        WebhooksCommand::RotateSecret { subscription_id } => {
            let rotated = manage::rotate_secret(app, &subscription_id, &actor).await.map_err(said)?;
            println!("{}", describe(&rotated.subscription));
            println!("its new signing secret (shown once; the previous one signs too for 24 hours):");
            println!("{}", rotated.secret.expose_secret());
        }
        WebhooksCommand::List => {}
    }
    Ok(())
}
