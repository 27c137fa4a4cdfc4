//! Security notices after the fact: a passkey added or deleted (by anyone),
//! and logins per the deployment's setting. Sent to the registered address;
//! a notice that cannot be sent is logged, it does not undo what happened.

use ledger_domain::account::{RevokedPasskey, Revoker};
use ledger_domain::{AccountCommand, AccountEvent, EmailAddress, Environment, PasskeyName};

use crate::bus::Executed;
use crate::config::LoginNotice;
use crate::email::Notice;
use crate::state::AppState;

/// A passkey as the customer knows it: its name, or its ID when it has none.
fn shown<'a>(passkey_id: &'a str, name: &'a Option<PasskeyName>) -> &'a str {
    name.as_ref().map(PasskeyName::as_str).unwrap_or(passkey_id)
}

fn names(passkeys: &[RevokedPasskey]) -> Vec<String> {
    passkeys.iter().map(|p| shown(&p.passkey_id, &p.name).to_string()).collect()
}

/// The notices a command's events call for; `usable` is how many passkeys
/// the account can still log in with afterwards.
pub fn notices(events: &[AccountEvent], at: chrono::DateTime<chrono::Utc>, setting: LoginNotice, usable: usize) -> Vec<Notice> {
    let login = |method: &str, environment: &Option<Environment>, new: bool| {
        let wanted = match setting {
            LoginNotice::Every => true,
            LoginNotice::NewEnvironment => new,
            LoginNotice::Off => false,
        };
        wanted.then(|| Notice::Login { at, method: method.to_string(), environment: environment.clone() })
    };
    events
        .iter()
        .filter_map(|event| match event {
            AccountEvent::PasskeyRegistered { passkey, .. } | AccountEvent::LocalPasskeyAdded { passkey, .. } => {
                Some(Notice::PasskeyAdded { name: passkey.name.as_str().to_string(), at, environment: passkey.environment.clone() })
            }
            // The report's own notice says what it deleted.
            AccountEvent::PasskeysRevoked { revoked_by: Revoker::ReportedByCustomer, .. } => None,
            AccountEvent::SuspiciousActivityReported { sessions_ended, passkeys_revoked, .. } => {
                Some(Notice::ActivityReported { at, sessions_ended: *sessions_ended, passkeys_revoked: passkeys_revoked.len() })
            }
            AccountEvent::PasskeysRevoked { passkeys, revoked_by } => {
                Some(Notice::PasskeysDeleted { names: names(passkeys), at, by_support: matches!(revoked_by, Revoker::Staff { .. }) })
            }
            // One notice for all the passkeys one command suspended.
            AccountEvent::PasskeySuspended { with_passkey: None, .. } => {
                let names = events
                    .iter()
                    .filter_map(|e| match e {
                        AccountEvent::PasskeySuspended { passkey_id, name, .. } => Some(shown(passkey_id, name).to_string()),
                        _ => None,
                    })
                    .collect();
                Some(Notice::PasskeySuspended { names, at, others_usable: usable > 0 })
            }
            AccountEvent::PasskeyReinstated { passkey_id, name, .. } => {
                Some(Notice::PasskeyReinstated { name: shown(passkey_id, name).to_string(), at })
            }
            AccountEvent::PasskeyLoginSucceeded { environment, new_environment, .. } => login("passkey", environment, *new_environment),
            AccountEvent::CrossDeviceSignInSucceeded { environment, new_environment, .. } => {
                login("cross_device", environment, *new_environment)
            }
            AccountEvent::PasswordLoginSucceeded { environment, new_environment, .. } => {
                login("password_and_email_code", environment, *new_environment)
            }
            _ => None,
        })
        .collect()
}

/// Sends what `done` calls for to the account's registered address 1, or
/// to every reachable registered address (`LEDGER_NOTICE_ADDRESSES=all`).
pub async fn after(app: &AppState, account_id: &str, done: &Executed) {
    to_former_addresses(app, account_id, done).await;
    let usable = done.account.active_passkeys().filter(|p| !p.suspended).count();
    let notices = notices(&done.events, app.clock.now(), app.config.login_notice, usable);
    if notices.is_empty() {
        return;
    }
    let slots: &[u8] = if app.config.notice_all_addresses { &[1, 2] } else { &[1] };
    let mut recipients: Vec<EmailAddress> = slots.iter().filter_map(|s| done.account.reachable_address(*s).cloned()).collect();
    if recipients.is_empty() {
        // Address 1 bounces: a binding must still be notified (NIST SP
        // 800-63B 4.1.2.1), so to any address that receives.
        recipients.extend(done.account.reachable_address(2).cloned());
    }
    if recipients.is_empty() {
        tracing::warn!(account_id, "notice not sent: no reachable e-mail address");
        for notice in &notices {
            record_notice(app, account_id, notice.kind(), String::new(), false).await;
        }
        return;
    }
    let pairs: Vec<(&Notice, &EmailAddress)> = notices.iter().flat_map(|n| recipients.iter().map(move |to| (n, to))).collect();
    for (notice, to) in pairs {
        send_and_record(app, account_id, notice, to).await;
    }
}

/// Mails a notice to `to` and records whether it went out.
async fn send_and_record(app: &AppState, account_id: &str, notice: &Notice, to: &EmailAddress) {
    let sent = match app.mailer.send_notice(&app.config, to.as_str(), notice).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, account_id, kind = notice.kind(), "a security notice could not be sent");
            false
        }
    };
    app.metrics.mail("notice", sent);
    record_notice(app, account_id, notice.kind(), to.masked(), sent).await;
}

/// A changed address is told, at the address it replaced (the new one
/// has not been shown to belong to the customer).
async fn to_former_addresses(app: &AppState, account_id: &str, done: &Executed) {
    for event in &done.events {
        let AccountEvent::EmailAddressChanged { email, previous: Some(previous), .. } = event else { continue };
        let notice = Notice::EmailChanged { at: app.clock.now(), to_masked: email.masked() };
        send_and_record(app, account_id, &notice, previous).await;
    }
}

/// Records that a notice went (or could not go) out.
async fn record_notice(app: &AppState, account_id: &str, kind: &str, destination: String, sent: bool) {
    let now = app.clock.now();
    let command = AccountCommand::RecordNotice { kind: kind.into(), destination, sent, at: now };
    if let Err(e) = app.ledger.execute(account_id, command, crate::bus::system_metadata(now)).await {
        tracing::error!(error = %e, account_id, "a notice could not be recorded");
    }
}
