//! Properties of the aggregate under random command sequences: whatever a
//! customer, support and the core system do in whatever order, no login
//! resting on the password is recorded while the login is locked (a
//! passkey login alone still is: DOMAIN.md 9, "passkeys remove the
//! lock-out worry"), a code is accepted at most once,
//! the account never holds more passkeys than the policy allows, and
//! replaying the events gives the state the commands built.
//!
//! `PROPTEST_CASES` sets the number of sequences (256 by default here; the
//! documented long run in `docs/testing.md` uses 20,000).

use std::collections::HashSet;

use cqrs_es::Aggregate;
use proptest::prelude::*;

use super::*;
use crate::Policy;

/// One thing that can happen to an account, with just enough choice for
/// the rules to meet each other.
#[derive(Debug, Clone)]
enum Step {
    /// A new flow's password step: registration or password login.
    Password {
        login: bool,
        matches: bool,
    },
    /// The current flow's code typed, right or wrong; or an earlier code.
    Code {
        matches: bool,
        earlier: bool,
    },
    Resend,
    NotDelivered,
    /// The current flow's passkey, one of a dozen credentials.
    Register {
        key: u8,
    },
    /// One more passkey from a session that logged in `ago` seconds before.
    Add {
        key: u8,
        ago: u16,
    },
    /// A passkey login with a counter `bump` past the last one seen (0: a
    /// replayed counter), or a refused assertion.
    Login {
        key: u8,
        bump: u8,
        verified: bool,
    },
    Delete {
        key: Option<u8>,
        trading_password_matches: bool,
    },
    Revoke {
        key: Option<u8>,
    },
    Unlock,
    Wait {
        secs: u16,
    },
    /// A whole first registration: password, code, passkey.
    RegisterFlow {
        key: u8,
    },
    /// Five wrong passwords in a row: the lock-out's threshold.
    Hammer,
}

impl Step {
    /// The single steps a composite one is made of.
    fn expand(self) -> Vec<Step> {
        match self {
            Step::RegisterFlow { key } => {
                vec![Step::Password { login: false, matches: true }, Step::Code { matches: true, earlier: false }, Step::Register { key }]
            }
            Step::Hammer => vec![Step::Password { login: true, matches: false }; 5],
            single => vec![single],
        }
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), prop::bool::weighted(0.6)).prop_map(|(login, matches)| Step::Password { login, matches }),
        (prop::bool::weighted(0.7), prop::bool::weighted(0.2)).prop_map(|(matches, earlier)| Step::Code { matches, earlier }),
        Just(Step::Resend),
        Just(Step::NotDelivered),
        (0u8..12).prop_map(|key| Step::Register { key }),
        (0u8..12, 0u16..900).prop_map(|(key, ago)| Step::Add { key, ago }),
        (0u8..12, 0u8..3, prop::bool::weighted(0.8)).prop_map(|(key, bump, verified)| Step::Login { key, bump, verified }),
        (prop::option::of(0u8..12), any::<bool>()).prop_map(|(key, ok)| Step::Delete { key, trading_password_matches: ok }),
        prop::option::of(0u8..12).prop_map(|key| Step::Revoke { key }),
        Just(Step::Unlock),
        (1u16..4000).prop_map(|secs| Step::Wait { secs }),
        (0u8..12).prop_map(|key| Step::RegisterFlow { key }),
        Just(Step::Hammer),
    ]
}

/// The driver: the account as the commands built it, and what it needs to
/// name flows, codes and credentials.
struct Run {
    account: Account,
    events: Vec<AccountEvent>,
    now: DateTime<Utc>,
    flows: u32,
    flow: String,
    codes: Vec<String>,
    verified_codes: HashSet<String>,
}

fn key_id(key: u8) -> String {
    format!("k{key}")
}

impl Run {
    fn new() -> Run {
        let mut run = Run {
            account: Account::default(),
            events: Vec::new(),
            now: t0(),
            flows: 0,
            flow: String::new(),
            codes: Vec::new(),
            verified_codes: HashSet::new(),
        };
        run.record(vec![opened()]);
        run
    }

    fn record(&mut self, events: Vec<AccountEvent>) {
        for event in events {
            if let AccountEvent::EmailCodeIssued { code_id, .. } = &event {
                self.codes.push(code_id.clone());
            }
            self.account.apply(event.clone());
            self.events.push(event);
        }
    }

    fn code(&self) -> IssuedCode {
        IssuedCode { code_id: format!("c{}", self.codes.len() + 1), expires_at: self.now + Duration::minutes(10) }
    }

    /// The command a single step sends (None for a wait or a composite).
    fn command(&mut self, step: &Step) -> Option<AccountCommand> {
        let at = self.now;
        Some(match step.clone() {
            Step::Password { login, matches } => {
                self.flows += 1;
                self.flow = format!("f{}", self.flows);
                AccountCommand::SubmitPassword {
                    flow_id: self.flow.clone(),
                    purpose: if login { FlowPurpose::PasswordLogin } else { FlowPurpose::Registration },
                    channel: Channel::Web,
                    password_matches: matches,
                    email_shared_with: vec![],
                    code: self.code(),
                    client: Some("192.0.2.1".into()),
                    pending_start: (!login).then_some(PendingStart { started_at: at, channel: Channel::Web }),
                    at,
                }
            }
            Step::Code { matches, earlier } => {
                let current = self.account.flows.get(&self.flow).and_then(|f| f.code.as_ref()).map(|c| c.code_id.clone());
                let code_id = match (earlier, current) {
                    (false, Some(current)) => current,
                    _ => self.codes.first().cloned().unwrap_or_else(|| "c0".into()),
                };
                AccountCommand::VerifyEmailCode {
                    flow_id: self.flow.clone(),
                    code_id,
                    matches,
                    channel: Channel::Web,
                    email_shared_with: vec![],
                    environment: None,
                    at,
                }
            }
            Step::Resend => AccountCommand::ResendEmailCode {
                flow_id: self.flow.clone(),
                code: self.code(),
                channel: Channel::Web,
                email_shared_with: vec![],
                at,
            },
            Step::NotDelivered => AccountCommand::RecordCodeNotDelivered {
                flow_id: self.flow.clone(),
                code_id: self.codes.last().cloned().unwrap_or_default(),
                at,
            },
            Step::Register { key } => AccountCommand::RegisterPasskey {
                flow_id: self.flow.clone(),
                passkey: new_passkey(&key_id(key)),
                channel: Channel::Web,
                email_shared_with: vec![],
                credential_taken: false,
                at,
            },
            Step::Add { key, ago } => AccountCommand::AddPasskey {
                passkey: new_passkey(&key_id(key)),
                logged_in_at: at - Duration::seconds(i64::from(ago)),
                session_method: "passkey".into(),
                session: "s1".into(),
                cross_device_sign_in: None,
                email_shared_with: vec![],
                credential_taken: false,
                at,
            },
            Step::Login { key, bump, verified } => {
                let id = key_id(key);
                let last = self.account.passkeys.iter().find(|p| p.passkey_id == id).map(|p| p.counter).unwrap_or(0);
                AccountCommand::RecordPasskeyLogin {
                    credential_id: format!("cred-{id}"),
                    assertion: if verified { Ok(assertion(last + u32::from(bump))) } else { Err("signature".into()) },
                    channel: Channel::Web,
                    environment: Some(windows_chrome()),
                    sign_in_id: format!("sign-in-{}", self.events.len()),
                    second_factor_flow: None,
                    at,
                }
            }
            Step::Delete { key, trading_password_matches } => {
                AccountCommand::DeletePasskeys { passkey_id: key.map(key_id), trading_password_matches, at }
            }
            Step::Revoke { key } => {
                AccountCommand::RevokePasskeysForCustomer { staff: staff(), passkey_id: key.map(key_id), reason: "device_lost".into(), at }
            }
            Step::Unlock => AccountCommand::Unlock { staff: staff(), reason: "called in".into(), at },
            Step::Wait { .. } | Step::RegisterFlow { .. } | Step::Hammer => return None,
        })
    }
}

/// What the aggregate decides for `command` given the events so far.
fn decide(events: &[AccountEvent], command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async { test().given(events.to_vec()).when_async(command).await.inspect_result() })
}

fn check(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let policy = Policy::default();
    let mut run = Run::new();
    for step in &steps.into_iter().flat_map(Step::expand).collect::<Vec<_>>() {
        if let Step::Wait { secs } = step {
            run.now += Duration::seconds(i64::from(*secs));
            continue;
        }
        run.now += Duration::seconds(1);
        let was_locked = run.account.locked;
        let Some(command) = run.command(step) else { continue };
        let Ok(events) = decide(&run.events, command) else { continue };
        for event in &events {
            match event {
                AccountEvent::PasswordLoginSucceeded { .. } | AccountEvent::PasskeyLoginSucceeded { second_factor_flow: Some(_), .. } => {
                    prop_assert!(!was_locked, "a password login recorded while the login was locked: {step:?} -> {events:?}");
                }
                AccountEvent::EmailCodeVerified { code_id, .. } => {
                    prop_assert!(run.verified_codes.insert(code_id.clone()), "code {code_id} accepted twice: {step:?}");
                }
                _ => {}
            }
        }
        run.record(events);
        let active = run.account.active_passkeys().count();
        prop_assert!(active <= policy.max_passkeys, "{active} passkeys, more than {}", policy.max_passkeys);
    }
    // The state the commands built is the state the log replays to.
    let mut replayed = Account::default();
    for event in run.events.iter().cloned() {
        replayed.apply(event);
    }
    prop_assert_eq!(serde_json::to_value(&replayed).expect("state"), serde_json::to_value(&run.account).expect("state"));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_command_sequences_keep_the_accounts_rules(steps in prop::collection::vec(step(), 1..60)) {
        check(steps)?;
    }
}
