//! One rule, every path: each refusal tried against every command that can
//! open a session or bind a passkey (docs/rules.md keeps the same table).
//!
//! The account's state is changed after the flow passed its password step
//! (without the closing of open flows that the change commands add), so each
//! row proves that the step itself checks the rule.

use super::*;
use crate::policy::{LoginMode, Policy, SessionStepUp};
use cqrs_es::Aggregate;

/// The commands that lead to a session or a bound passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    RegistrationPassword,
    RegistrationCode,
    RegistrationPasskey,
    PasswordLoginCode,
    SessionFirstPasskey,
    SecondFactorPasskey,
    DiscoverablePasskey,
}

const PATHS: [Path; 7] = [
    Path::RegistrationPassword,
    Path::RegistrationCode,
    Path::RegistrationPasskey,
    Path::PasswordLoginCode,
    Path::SessionFirstPasskey,
    Path::SecondFactorPasskey,
    Path::DiscoverablePasskey,
];

/// The refusals of DOMAIN.md flow 2 and issue "one rule, every path".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Locked,
    TemporaryPassword,
    SharedAddress,
    UnreachableAddress,
    PasskeyExists,
    DuplicateCredential,
    SecondFactorMode,
    RegistrationNotOpen,
}

const RULES: [Rule; 8] = [
    Rule::Locked,
    Rule::TemporaryPassword,
    Rule::SharedAddress,
    Rule::UnreachableAddress,
    Rule::PasskeyExists,
    Rule::DuplicateCredential,
    Rule::SecondFactorMode,
    Rule::RegistrationNotOpen,
];

/// What `path` answers under `rule`: the refusal code, or None where the
/// rule does not concern the path (it must then succeed).
fn expected(rule: Rule, path: Path) -> Option<&'static str> {
    use Path as P;
    let binds_first = matches!(path, P::RegistrationPassword | P::RegistrationCode | P::RegistrationPasskey | P::SessionFirstPasskey);
    match rule {
        // A locked login does not block a passwordless passkey login (DOMAIN.md 9).
        Rule::Locked if path == P::DiscoverablePasskey => None,
        Rule::Locked => Some("login_locked"),
        Rule::TemporaryPassword if binds_first => Some("temporary_password"),
        Rule::SharedAddress if binds_first => Some("email_shared_with_other_accounts"),
        Rule::UnreachableAddress if binds_first || path == P::PasswordLoginCode => Some("email_unreachable"),
        Rule::PasskeyExists if path == P::PasswordLoginCode => Some("passkey_required"),
        Rule::PasskeyExists if path != P::SessionFirstPasskey && binds_first => Some("passkey_already_registered"),
        Rule::DuplicateCredential if matches!(path, P::RegistrationPasskey | P::SessionFirstPasskey) => {
            Some("credential_already_registered")
        }
        Rule::SecondFactorMode if path == P::DiscoverablePasskey => Some("password_step_required"),
        Rule::RegistrationNotOpen if binds_first => Some("registration_not_open"),
        _ => None,
    }
}

fn passkey_login(second_factor_flow: Option<&str>) -> AccountCommand {
    AccountCommand::RecordPasskeyLogin {
        credential_id: "cred-p1".into(),
        assertion: Ok(assertion(1)),
        channel: Channel::Web,
        environment: None,
        sign_in_id: "s".into(),
        second_factor_flow: second_factor_flow.map(str::to_string),
        at: secs(120),
    }
}

/// The history that brings `path` to its step, and the command of the step.
fn setup(path: Path, shared: Vec<String>, credential_taken: bool) -> (Vec<AccountEvent>, AccountCommand) {
    use AccountEvent as E;
    let reg = |stage: usize| {
        let mut given = vec![opened(), started("f"), verified("f", FlowPurpose::Registration), issued("f", "c1", t0(), false)];
        if stage > 1 {
            given.push(E::EmailCodeVerified { flow_id: "f".into(), code_id: "c1".into(), factor: CodeFactor::EmailCode });
        }
        given
    };
    match path {
        Path::RegistrationPassword => (vec![opened(), started("f")], {
            let mut c = password("f", FlowPurpose::Registration, true, secs(30));
            if let AccountCommand::SubmitPassword { email_shared_with, .. } = &mut c {
                *email_shared_with = shared;
            }
            c
        }),
        Path::RegistrationCode => (
            reg(1),
            AccountCommand::VerifyEmailCode {
                flow_id: "f".into(),
                code_id: "c1".into(),
                matches: true,
                channel: Channel::Web,
                email_shared_with: shared,
                environment: None,
                at: secs(60),
            },
        ),
        Path::RegistrationPasskey => (
            reg(2),
            AccountCommand::RegisterPasskey {
                flow_id: "f".into(),
                passkey: new_passkey("new"),
                channel: Channel::Web,
                email_shared_with: shared,
                credential_taken,
                at: secs(90),
            },
        ),
        Path::PasswordLoginCode => (
            vec![opened(), verified("l", FlowPurpose::PasswordLogin), issued("l", "c1", t0(), false)],
            AccountCommand::VerifyEmailCode {
                flow_id: "l".into(),
                code_id: "c1".into(),
                matches: true,
                channel: Channel::Web,
                email_shared_with: shared,
                environment: None,
                at: secs(60),
            },
        ),
        Path::SessionFirstPasskey => (
            vec![opened(), AccountEvent::SessionStepUpPassed { how: SessionStepUp::TradingPassword, at: secs(0), session: "s1".into() }],
            AccountCommand::AddPasskey {
                session: "s1".into(),
                passkey: new_passkey("new"),
                logged_in_at: secs(0),
                session_method: "password_and_email_code".into(),
                cross_device_sign_in: None,
                email_shared_with: shared,
                credential_taken,
                at: secs(60),
            },
        ),
        Path::SecondFactorPasskey => (
            vec![
                opened(),
                registered("p1"),
                verified("s", FlowPurpose::SecondFactorLogin),
                E::SecondFactorRequired { flow_id: "s".into() },
            ],
            passkey_login(Some("s")),
        ),
        Path::DiscoverablePasskey => (vec![opened(), registered("p1")], passkey_login(None)),
    }
}

fn decide(rule: Rule, path: Path) -> Vec<AccountEvent> {
    let shared = if rule == Rule::SharedAddress { vec!["other-account".to_string()] } else { vec![] };
    let (mut given, command) = setup(path, shared, rule == Rule::DuplicateCredential);
    let mut policy = Policy::default();
    match rule {
        Rule::Locked => given.push(AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] }),
        Rule::TemporaryPassword => given.push(AccountEvent::LoginPasswordChanged { temporary: true }),
        Rule::UnreachableAddress => given.push(AccountEvent::EmailReachabilityChanged { reachable: false, slot: 1 }),
        Rule::PasskeyExists if !given.iter().any(|e| matches!(e, AccountEvent::PasskeyRegistered { .. })) => {
            given.push(registered("existing"))
        }
        Rule::SecondFactorMode => policy.login_mode = LoginMode::SecondFactor,
        Rule::RegistrationNotOpen => policy.registration_opens_at = Some(secs(100_000)),
        _ => {}
    }
    let mut account = Account::default();
    for event in given {
        account.apply(event);
    }
    account.decide(command, &policy).expect("the command applies to this account")
}

fn succeeded(events: &[AccountEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            AccountEvent::EmailCodeIssued { .. }
                | AccountEvent::EmailCodeVerified { .. }
                | AccountEvent::PasskeyRegistered { .. }
                | AccountEvent::LocalPasskeyAdded { .. }
                | AccountEvent::PasswordLoginSucceeded { .. }
                | AccountEvent::PasskeyLoginSucceeded { .. }
        )
    })
}

#[test]
fn every_refusal_holds_on_every_path_that_opens_a_session_or_binds_a_passkey() {
    let mut wrong = vec![];
    for rule in RULES {
        for path in PATHS {
            let events = decide(rule, path);
            let got = refusal_of(&events).map(Refusal::code);
            let want = expected(rule, path);
            let ok = match want {
                Some(code) => got == Some(code) && !succeeded(&events),
                None => got.is_none() && succeeded(&events),
            };
            if !ok {
                wrong.push(format!("{rule:?} x {path:?}: expected {want:?}, got {got:?} from {events:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{} cells of the matrix are wrong:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn with_no_rule_broken_every_path_succeeds() {
    for path in PATHS {
        let (given, command) = setup(path, vec![], false);
        let mut account = Account::default();
        for event in given {
            account.apply(event);
        }
        let events = account.decide(command, &Policy::default()).unwrap();
        assert!(succeeded(&events) && refusal_of(&events).is_none(), "{path:?}: {events:?}");
    }
}
