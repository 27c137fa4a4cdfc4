//! The rules of DOMAIN.md and the seeds, each as given / when / then.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;

use super::*;
use crate::values::{Channel, EmailAddress, Environment, LoginId, PasskeyName, StaffMember};

type AccountTest = TestFramework<Account>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap()
}

fn secs(n: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(n)
}

fn test() -> AccountTest {
    TestFramework::with(AccountServices::default())
}

fn email() -> EmailAddress {
    EmailAddress::parse("taro@example.jp").unwrap()
}

fn opened() -> AccountEvent {
    AccountEvent::AccountOpened {
        login_id: LoginId::parse("1234567").unwrap(),
        holder_kind: HolderKind::Individual,
        email: Some(email()),
        password_temporary: false,
    }
}

fn started(flow: &str) -> AccountEvent {
    AccountEvent::RegistrationStarted { channel: Some(Channel::Web), session: None, flow_id: flow.into(), started_at: t0() }
}

fn code(id: &str, at: DateTime<Utc>) -> IssuedCode {
    IssuedCode { code_id: id.into(), expires_at: at + Duration::minutes(5) }
}

fn issued(flow: &str, id: &str, at: DateTime<Utc>, resend: bool) -> AccountEvent {
    AccountEvent::EmailCodeIssued {
        flow_id: flow.into(),
        code_id: id.into(),
        destination: "t***@example.jp".into(),
        slot: 1,
        issued_at: at,
        expires_at: at + Duration::minutes(5),
        resend,
    }
}

fn password(flow: &str, purpose: FlowPurpose, matches: bool, at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::SubmitPassword {
        flow_id: flow.into(),
        purpose,
        channel: Channel::Web,
        password_matches: matches,
        email_shared_with: vec![],
        code: code("c1", at),
        client: None,
        pending_start: None,
        at,
    }
}

fn verified_at(flow: &str, purpose: FlowPurpose, at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::PasswordVerified { channel: Some(Channel::Web), flow_id: flow.into(), purpose, at }
}

fn verified(flow: &str, purpose: FlowPurpose) -> AccountEvent {
    AccountEvent::PasswordVerified { channel: Some(Channel::Web), flow_id: flow.into(), purpose, at: t0() }
}

fn new_passkey(id: &str) -> NewPasskey {
    NewPasskey {
        passkey_id: id.into(),
        credential_id: format!("cred-{id}"),
        name: PasskeyName::parse("Chrome 148.0.0 / Windows 10.0.0").unwrap(),
        aaguid: "00000000-0000-0000-0000-000000000000".into(),
        provider: None,
        backup_eligible: true,
        backup_state: true,
        transports: vec!["internal".into(), "hybrid".into()],
        authenticator_attachment: Some("platform".into()),
        user_verified: true,
        counter: 0,
        public_key: serde_json::json!({}),
        environment: Some(windows_chrome()),
    }
}

fn windows_chrome() -> Environment {
    Environment {
        browser: "Chrome".into(),
        browser_version: "148.0.0".into(),
        os: "Windows".into(),
        os_version: "11 24H2".into(),
        device_type: "pc".into(),
        recommended: Some(true),
    }
}

fn iphone_safari() -> Environment {
    Environment {
        browser: "Safari".into(),
        browser_version: "18.6".into(),
        os: "iOS".into(),
        os_version: "18.6.2".into(),
        device_type: "smartphone".into(),
        recommended: Some(true),
    }
}

fn registered(id: &str) -> AccountEvent {
    AccountEvent::PasskeyRegistered {
        flow_id: Some("f-reg".into()),
        passkey: new_passkey(id),
        bound_by: aggregate::FIRST_PASSKEY_BINDING.into(),
    }
}

fn ready_for_code() -> Vec<AccountEvent> {
    vec![opened(), started("f"), verified("f", FlowPurpose::Registration), issued("f", "c1", t0(), false)]
}

fn assertion(counter: u32) -> PasskeyAssertion {
    PasskeyAssertion {
        counter,
        backup_state: true,
        backup_eligible: true,
        user_verified: true,
        authenticator_attachment: Some("platform".into()),
    }
}

fn refusal_of(events: &[AccountEvent]) -> Option<Refusal> {
    events.iter().find_map(AccountEvent::refusal)
}

async fn outcome(given: Vec<AccountEvent>, when: AccountCommand) -> Vec<AccountEvent> {
    test().given(given).when_async(when).await.inspect_result().expect("command accepted")
}

// --- Opening and core-system changes ---------------------------------------

#[tokio::test]
async fn the_core_system_opens_an_account_once() {
    let open = AccountCommand::OpenAccount {
        login_id: LoginId::parse("1234567").unwrap(),
        holder_kind: HolderKind::Individual,
        email: Some(email()),
        password_temporary: false,
        at: t0(),
    };
    test().given_no_previous_events().when_async(open.clone()).await.then_expect_events(vec![opened()]);
    test().given(vec![opened()]).when_async(open).await.then_expect_error(AccountError::AlreadyOpened);
}

#[tokio::test]
async fn commands_on_an_account_that_was_never_opened_are_refused() {
    test()
        .given_no_previous_events()
        .when_async(password("f", FlowPurpose::Registration, true, t0()))
        .await
        .then_expect_error(AccountError::AccountNotFound);
}

// --- Flow 1: first registration --------------------------------------------

#[tokio::test]
async fn the_right_password_sends_a_code_to_the_registered_address() {
    test()
        .given(vec![opened(), started("f")])
        .when_async(password("f", FlowPurpose::Registration, true, t0()))
        .await
        .then_expect_events(vec![verified("f", FlowPurpose::Registration), issued("f", "c1", t0(), false)]);
}

#[tokio::test]
async fn a_wrong_password_is_recorded_and_counted() {
    test().given(vec![opened(), started("f")]).when_async(password("f", FlowPurpose::Registration, false, t0())).await.then_expect_events(
        vec![AccountEvent::PasswordRejected {
            flow_id: "f".into(),
            purpose: FlowPurpose::Registration,
            consecutive_failures: 1,
            client: None,
        }],
    );
}

#[tokio::test]
async fn the_fifth_consecutive_wrong_password_locks_the_login() {
    let mut given = vec![opened(), started("f")];
    for n in 1..=4 {
        given.push(AccountEvent::PasswordRejected {
            flow_id: "f".into(),
            purpose: FlowPurpose::Registration,
            consecutive_failures: n,
            client: None,
        });
    }
    test().given(given).when_async(password("f", FlowPurpose::Registration, false, t0())).await.then_expect_events(vec![
        AccountEvent::PasswordRejected { flow_id: "f".into(), purpose: FlowPurpose::Registration, consecutive_failures: 5, client: None },
        AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] },
        // The lock ends the flows still open on the account, this one too.
        AccountEvent::OpenFlowsClosed { flow_ids: vec!["f".into()], because: FlowClosure::LoginLocked },
    ]);
}

/// The lock names the clients that caused it (API.md: lock-out is not a
/// denial-of-service tool; a fraud rule reads them).
#[tokio::test]
async fn the_lock_names_the_distinct_clients_of_the_wrong_passwords() {
    let mut given = vec![opened(), started("f")];
    for (n, client) in [(1, "203.0.113.1"), (2, "203.0.113.2"), (3, "203.0.113.1"), (4, "203.0.113.3")] {
        given.push(AccountEvent::PasswordRejected {
            flow_id: "f".into(),
            purpose: FlowPurpose::Registration,
            consecutive_failures: n,
            client: Some(client.into()),
        });
    }
    let mut cmd = password("f", FlowPurpose::Registration, false, t0());
    if let AccountCommand::SubmitPassword { client, .. } = &mut cmd {
        *client = Some("203.0.113.4".into());
    }
    let events = outcome(given.clone(), cmd.clone()).await;
    let clients = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"].map(String::from).to_vec();
    assert!(events.contains(&AccountEvent::LoginLocked { consecutive_failures: 5, clients }), "{events:?}");
    // A right password in between starts a new run.
    given.push(verified("f", FlowPurpose::Registration));
    given.push(started("g"));
    given.push(AccountEvent::PasswordRejected {
        flow_id: "g".into(),
        purpose: FlowPurpose::Registration,
        consecutive_failures: 1,
        client: Some("198.51.100.1".into()),
    });
    let mut services = AccountServices::default();
    services.policy.lock_after_failed_passwords = 2;
    if let AccountCommand::SubmitPassword { flow_id, .. } = &mut cmd {
        *flow_id = "g".into();
    }
    let events = TestFramework::<Account>::with(services).given(given).when_async(cmd).await.inspect_result().unwrap();
    let clients = vec!["198.51.100.1".to_string(), "203.0.113.4".to_string()];
    assert!(events.contains(&AccountEvent::LoginLocked { consecutive_failures: 2, clients }), "{events:?}");
}

/// A registration begun by typing the login ID is the account's only once
/// its password step passes: an anonymous start writes nothing to the
/// account, and a wrong password records the attempt without a flow.
#[tokio::test]
async fn a_registration_becomes_the_accounts_at_its_password_step() {
    let pending = |cmd: &mut AccountCommand, started_at, channel| {
        if let AccountCommand::SubmitPassword { pending_start, .. } = cmd {
            *pending_start = Some(PendingStart { started_at, channel });
        }
    };
    let mut right = password("f", FlowPurpose::Registration, true, t0() + chrono::Duration::minutes(1));
    pending(&mut right, t0(), Channel::Web);
    let events = outcome(vec![opened()], right.clone()).await;
    assert_eq!(
        events[..2],
        [
            AccountEvent::RegistrationStarted { flow_id: "f".into(), started_at: t0(), channel: Some(Channel::Web), session: None },
            verified_at("f", FlowPurpose::Registration, t0() + chrono::Duration::minutes(1)),
        ]
    );
    assert!(events.iter().any(|e| matches!(e, AccountEvent::EmailCodeIssued { .. })), "{events:?}");

    let mut wrong = password("f", FlowPurpose::Registration, false, t0());
    pending(&mut wrong, t0(), Channel::Web);
    let events = outcome(vec![opened()], wrong).await;
    assert_eq!(
        events,
        [AccountEvent::PasswordRejected { flow_id: "f".into(), purpose: FlowPurpose::Registration, consecutive_failures: 1, client: None }]
    );

    // Begun on another channel, or too long ago: refused, and still not the account's.
    let mut other_channel = password("f", FlowPurpose::Registration, true, t0());
    pending(&mut other_channel, t0(), Channel::MobileApp);
    assert_eq!(refusal_of(&outcome(vec![opened()], other_channel).await), Some(Refusal::WrongChannel));
    let mut late = password("f", FlowPurpose::Registration, true, t0() + chrono::Duration::hours(2));
    pending(&mut late, t0(), Channel::Web);
    let events = outcome(vec![opened()], late).await;
    assert_eq!(refusal_of(&events), Some(Refusal::FlowExpired));
    assert!(!events.iter().any(|e| matches!(e, AccountEvent::RegistrationStarted { .. })));

    // Without a pending start, an unknown flow is unknown.
    let mut account = Account::default();
    cqrs_es::Aggregate::apply(&mut account, opened());
    let decided = account.decide(password("x", FlowPurpose::Registration, true, t0()), &crate::Policy::default());
    assert!(matches!(decided, Err(AccountError::UnknownFlow)), "{decided:?}");
}

#[tokio::test]
async fn a_right_password_resets_the_failure_count() {
    let given = vec![
        opened(),
        started("f"),
        AccountEvent::PasswordRejected { flow_id: "f".into(), purpose: FlowPurpose::Registration, consecutive_failures: 4, client: None },
        verified("f", FlowPurpose::Registration),
        started("g"),
    ];
    let events = outcome(given, password("g", FlowPurpose::Registration, false, t0())).await;
    assert!(matches!(events[0], AccountEvent::PasswordRejected { consecutive_failures: 1, .. }));
}

#[tokio::test]
async fn the_lock_threshold_is_configurable() {
    let mut services = AccountServices::default();
    services.policy.lock_after_failed_passwords = 1;
    let events = TestFramework::<Account>::with(services)
        .given(vec![opened(), started("f")])
        .when_async(password("f", FlowPurpose::Registration, false, t0()))
        .await
        .inspect_result()
        .unwrap();
    assert!(events.contains(&AccountEvent::LoginLocked { consecutive_failures: 1, clients: vec![] }));
}

#[tokio::test]
async fn a_locked_login_refuses_even_the_right_password() {
    let given = vec![opened(), started("f"), AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] }];
    test()
        .given(given)
        .when_async(password("f", FlowPurpose::Registration, true, t0()))
        .await
        .then_expect_events(vec![AccountEvent::RegistrationRefused { flow_id: "f".into(), reason: Refusal::LoginLocked }]);
}

#[tokio::test]
async fn a_temporary_password_must_be_changed_before_registering() {
    let given = vec![opened(), AccountEvent::LoginPasswordChanged { temporary: true }, started("f")];
    let events = outcome(given, password("f", FlowPurpose::Registration, true, t0())).await;
    assert_eq!(refusal_of(&events), Some(Refusal::TemporaryPassword));
}

#[tokio::test]
async fn an_account_without_an_email_address_cannot_register() {
    let given = vec![
        AccountEvent::AccountOpened {
            login_id: LoginId::parse("1234567").unwrap(),
            holder_kind: HolderKind::Individual,
            email: None,
            password_temporary: false,
        },
        started("f"),
    ];
    let events = outcome(given, password("f", FlowPurpose::Registration, true, t0())).await;
    assert_eq!(refusal_of(&events), Some(Refusal::EmailUnreachable));
}

#[tokio::test]
async fn an_address_that_bounces_cannot_receive_the_code() {
    let given = vec![opened(), AccountEvent::EmailReachabilityChanged { reachable: false, slot: 1 }, started("f")];
    let events = outcome(given, password("f", FlowPurpose::Registration, true, t0())).await;
    assert_eq!(refusal_of(&events), Some(Refusal::EmailUnreachable));
}

#[tokio::test]
async fn an_address_shared_with_a_family_account_blocks_registration() {
    let mut cmd = password("f", FlowPurpose::Registration, true, t0());
    if let AccountCommand::SubmitPassword { email_shared_with, .. } = &mut cmd {
        email_shared_with.push("other-account".into());
    }
    let events = outcome(vec![opened(), started("f")], cmd).await;
    assert_eq!(
        events.last(),
        Some(&AccountEvent::RegistrationRefused { flow_id: "f".into(), reason: Refusal::EmailSharedWithOtherAccounts })
    );
}

#[tokio::test]
async fn an_account_with_a_passkey_is_past_first_registration() {
    let events = outcome(vec![opened(), registered("p1"), started("f")], password("f", FlowPurpose::Registration, true, t0())).await;
    assert_eq!(refusal_of(&events), Some(Refusal::PasskeyAlreadyRegistered));
}

#[tokio::test]
async fn a_changed_address_is_reachable_again_after_a_bounce() {
    let given = vec![
        opened(),
        AccountEvent::EmailReachabilityChanged { reachable: false, slot: 1 },
        AccountEvent::EmailAddressChanged { email: EmailAddress::parse("hanako@example.jp").unwrap(), slot: 1, previous: Some(email()) },
        started("f"),
    ];
    let events = outcome(given, password("f", FlowPurpose::Registration, true, t0())).await;
    assert!(matches!(&events[1], AccountEvent::EmailCodeIssued { destination, .. } if destination == "h***@example.jp"));
}

// --- E-mail codes ------------------------------------------------------------

#[tokio::test]
async fn the_right_code_opens_the_passkey_step() {
    let code = AccountCommand::VerifyEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code_id: "c1".into(),
        matches: true,
        environment: None,
        at: secs(60),
    };
    test().given(ready_for_code()).when_async(code).await.then_expect_events(vec![AccountEvent::EmailCodeVerified {
        flow_id: "f".into(),
        code_id: "c1".into(),
        factor: CodeFactor::EmailCode,
    }]);
}

#[tokio::test]
async fn a_wrong_code_says_how_many_attempts_are_left() {
    let code = AccountCommand::VerifyEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code_id: "c1".into(),
        matches: false,
        environment: None,
        at: secs(60),
    };
    test().given(ready_for_code()).when_async(code).await.then_expect_events(vec![AccountEvent::EmailCodeRejected {
        flow_id: "f".into(),
        code_id: "c1".into(),
        attempts_left: 4,
    }]);
}

#[tokio::test]
async fn the_fifth_wrong_code_kills_the_code_and_later_tries_are_refused() {
    let mut given = ready_for_code();
    for left in (1..=4).rev() {
        given.push(AccountEvent::EmailCodeRejected { flow_id: "f".into(), code_id: "c1".into(), attempts_left: left });
    }
    let wrong = AccountCommand::VerifyEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code_id: "c1".into(),
        matches: false,
        environment: None,
        at: secs(60),
    };
    let events = outcome(given.clone(), wrong).await;
    assert_eq!(events.last(), Some(&AccountEvent::EmailCodeExhausted { flow_id: "f".into(), code_id: "c1".into() }));

    given.extend(events);
    let right = AccountCommand::VerifyEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code_id: "c1".into(),
        matches: true,
        environment: None,
        at: secs(61),
    };
    let events = outcome(given, right).await;
    assert!(!events.iter().any(|e| matches!(e, AccountEvent::EmailCodeVerified { .. })));
    // API.md: the code's attempts are used up (429), not "wrong step".
    assert_eq!(refusal_of(&events), Some(Refusal::TooManyAttempts));
}

#[tokio::test]
async fn a_code_is_dead_after_its_lifetime() {
    let late = AccountCommand::VerifyEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code_id: "c1".into(),
        matches: true,
        environment: None,
        at: secs(5 * 60 + 1),
    };
    test()
        .given(ready_for_code())
        .when_async(late)
        .await
        .then_expect_events(vec![AccountEvent::EmailCodeExpired { flow_id: "f".into(), code_id: "c1".into() }]);
}

#[tokio::test]
async fn a_code_replaced_by_a_resend_no_longer_works() {
    let mut given = ready_for_code();
    given.push(issued("f", "c2", secs(61), true));
    let old = AccountCommand::VerifyEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code_id: "c1".into(),
        matches: true,
        environment: None,
        at: secs(62),
    };
    let events = outcome(given, old).await;
    assert_eq!(refusal_of(&events), Some(Refusal::InvalidCode));
}

#[tokio::test]
async fn a_resend_within_60_seconds_is_refused() {
    let resend = AccountCommand::ResendEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code: code("c2", secs(59)),
        at: secs(59),
    };
    test()
        .given(ready_for_code())
        .when_async(resend)
        .await
        .then_expect_events(vec![AccountEvent::EmailCodeResendRefused { flow_id: "f".into(), reason: Refusal::ResendTooSoon }]);
}

#[tokio::test]
async fn a_resend_after_60_seconds_issues_a_new_code() {
    let resend = AccountCommand::ResendEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code: code("c2", secs(60)),
        at: secs(60),
    };
    test().given(ready_for_code()).when_async(resend).await.then_expect_events(vec![issued("f", "c2", secs(60), true)]);
}

#[tokio::test]
async fn at_most_five_resends_an_hour() {
    let mut given = ready_for_code();
    for n in 1..=5 {
        given.push(issued("f", &format!("r{n}"), secs(n * 61), true));
    }
    let resend = AccountCommand::ResendEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code: code("r6", secs(6 * 61)),
        at: secs(6 * 61),
    };
    let events = outcome(given.clone(), resend).await;
    assert_eq!(refusal_of(&events), Some(Refusal::ResendLimitReached));

    let next_hour = secs(61 + 3600);
    let resend = AccountCommand::ResendEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "f".into(),
        code: code("r7", next_hour),
        at: next_hour,
    };
    let mut services = AccountServices::default();
    services.policy.flow_lifetime_secs = 10_000;
    let events = TestFramework::<Account>::with(services).given(given).when_async(resend).await.inspect_result().unwrap();
    assert!(matches!(events[0], AccountEvent::EmailCodeIssued { .. }));
}

// --- Passkey registration ------------------------------------------------------

fn code_verified() -> Vec<AccountEvent> {
    let mut given = ready_for_code();
    given.push(AccountEvent::EmailCodeVerified { flow_id: "f".into(), code_id: "c1".into(), factor: CodeFactor::EmailCode });
    given
}

#[tokio::test]
async fn a_verified_passkey_is_bound_on_password_plus_address_confirmation() {
    let register = AccountCommand::RegisterPasskey {
        channel: Channel::Web,
        email_shared_with: vec![],
        credential_taken: false,
        flow_id: "f".into(),
        passkey: new_passkey("p1"),
        at: secs(120),
    };
    test().given(code_verified()).when_async(register).await.then_expect_events(vec![AccountEvent::PasskeyRegistered {
        flow_id: Some("f".into()),
        passkey: new_passkey("p1"),
        bound_by: "login_password+email_address_confirmation".into(),
    }]);
}

#[tokio::test]
async fn a_passkey_cannot_be_registered_before_the_code_is_verified() {
    let register = AccountCommand::RegisterPasskey {
        channel: Channel::Web,
        email_shared_with: vec![],
        credential_taken: false,
        flow_id: "f".into(),
        passkey: new_passkey("p1"),
        at: secs(120),
    };
    let events = outcome(ready_for_code(), register).await;
    assert_eq!(refusal_of(&events), Some(Refusal::WrongStep));
}

#[tokio::test]
async fn a_flow_left_too_long_expires() {
    let late = secs(31 * 60);
    let register = AccountCommand::RegisterPasskey {
        channel: Channel::Web,
        email_shared_with: vec![],
        credential_taken: false,
        flow_id: "f".into(),
        passkey: new_passkey("p1"),
        at: late,
    };
    let events = outcome(code_verified(), register).await;
    assert_eq!(refusal_of(&events), Some(Refusal::FlowExpired));
}

#[tokio::test]
async fn a_registration_flow_is_used_once() {
    let mut given = code_verified();
    given.push(AccountEvent::PasskeyRegistered { flow_id: Some("f".into()), passkey: new_passkey("p1"), bound_by: "x".into() });
    let again = AccountCommand::RegisterPasskey {
        channel: Channel::Web,
        email_shared_with: vec![],
        credential_taken: false,
        flow_id: "f".into(),
        passkey: new_passkey("p2"),
        at: secs(130),
    };
    let events = outcome(given, again).await;
    assert_eq!(refusal_of(&events), Some(Refusal::WrongStep));
}

#[tokio::test]
async fn an_unknown_flow_is_an_error_not_an_event() {
    let register = AccountCommand::RegisterPasskey {
        channel: Channel::Web,
        email_shared_with: vec![],
        credential_taken: false,
        flow_id: "nope".into(),
        passkey: new_passkey("p1"),
        at: secs(120),
    };
    test().given(code_verified()).when_async(register).await.then_expect_error(AccountError::UnknownFlow);
}

// --- Password login ----------------------------------------------------------------

#[tokio::test]
async fn password_login_is_refused_on_every_channel_once_a_passkey_exists() {
    for channel in Channel::ALL {
        let cmd = AccountCommand::SubmitPassword {
            flow_id: "l".into(),
            purpose: FlowPurpose::PasswordLogin,
            channel,
            password_matches: true,
            email_shared_with: vec![],
            code: code("c", t0()),
            client: None,
            pending_start: None,
            at: t0(),
        };
        let events = outcome(vec![opened(), registered("p1")], cmd).await;
        assert_eq!(refusal_of(&events), Some(Refusal::PasskeyRequired), "channel {channel}");
    }
}

#[tokio::test]
async fn password_login_is_refused_on_the_app_after_its_mandatory_instant() {
    let cmd = |channel| AccountCommand::SubmitPassword {
        flow_id: "l".into(),
        purpose: FlowPurpose::PasswordLogin,
        channel,
        password_matches: true,
        email_shared_with: vec![],
        code: code("c", t0()),
        client: None,
        pending_start: None,
        at: t0(),
    };
    let app = outcome(vec![opened()], cmd(Channel::MobileApp)).await;
    // No passkey yet: the customer is told to register one (seed 000), under
    // the API's `passkey_required` code.
    assert_eq!(refusal_of(&app), Some(Refusal::PasskeyRegistrationRequired));
    assert_eq!(Refusal::PasskeyRegistrationRequired.code(), "passkey_required");
    let web = outcome(vec![opened()], cmd(Channel::Web)).await;
    assert!(matches!(web.last(), Some(AccountEvent::EmailCodeIssued { .. })));
}

#[tokio::test]
async fn a_wrong_password_on_login_says_invalid_credentials_even_with_a_passkey() {
    let events = outcome(vec![opened(), registered("p1")], password("l", FlowPurpose::PasswordLogin, false, t0())).await;
    assert_eq!(refusal_of(&events), Some(Refusal::InvalidCredentials));
}

#[tokio::test]
async fn password_plus_code_logs_in_where_policy_allows() {
    let given = vec![opened(), verified("l", FlowPurpose::PasswordLogin), issued("l", "c1", t0(), false)];
    let cmd = AccountCommand::VerifyEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: "l".into(),
        code_id: "c1".into(),
        matches: true,
        environment: None,
        at: secs(30),
    };
    test().given(given).when_async(cmd).await.then_expect_events(vec![
        AccountEvent::EmailCodeVerified { flow_id: "l".into(), code_id: "c1".into(), factor: CodeFactor::EmailCode },
        AccountEvent::PasswordLoginSucceeded { flow_id: "l".into(), environment: None, new_environment: false },
    ]);
}

// --- Passkey login ---------------------------------------------------------------------

fn login(credential: &str, assertion: Result<PasskeyAssertion, String>) -> AccountCommand {
    AccountCommand::RecordPasskeyLogin {
        credential_id: credential.into(),
        assertion,
        channel: Channel::Web,
        environment: Some(windows_chrome()),
        sign_in_id: "s1".into(),
        second_factor_flow: None,
        at: t0(),
    }
}

fn logged_in(passkey: &str, assertion: PasskeyAssertion) -> AccountEvent {
    AccountEvent::PasskeyLoginSucceeded {
        passkey_id: passkey.into(),
        credential_id: format!("cred-{passkey}"),
        assertion,
        authenticator: LoginAuthenticator::SameDevice,
        environment: Some(windows_chrome()),
        new_environment: false,
        second_factor_flow: None,
    }
}

#[tokio::test]
async fn a_verified_assertion_logs_in() {
    test()
        .given(vec![opened(), registered("p1")])
        .when_async(login("cred-p1", Ok(assertion(0))))
        .await
        .then_expect_events(vec![logged_in("p1", assertion(0))]);
}

#[tokio::test]
async fn a_locked_password_login_does_not_block_passkey_login() {
    let given = vec![opened(), registered("p1"), AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] }];
    let events = outcome(given, login("cred-p1", Ok(assertion(0)))).await;
    assert!(matches!(events[0], AccountEvent::PasskeyLoginSucceeded { .. }));
}

fn suspended(id: &str) -> AccountEvent {
    AccountEvent::PasskeySuspended {
        passkey_id: id.into(),
        credential_id: format!("cred-{id}"),
        name: Some(new_passkey(id).name),
        reason: Refusal::CounterRegression,
        with_passkey: None,
    }
}

#[tokio::test]
async fn a_passkey_added_after_a_sign_in_with_the_copied_one_is_suspended_with_it() {
    // The copy signs in cross-device and adds a passkey of its own on its
    // PC; then the customer's phone answers with a lower counter.
    let cross = AccountEvent::CrossDeviceSignInSucceeded {
        sign_in_id: "s9".into(),
        passkey_id: "p1".into(),
        credential_id: "cred-p1".into(),
        assertion: assertion(50),
        environment: Some(windows_chrome()),
        new_environment: true,
        second_factor_flow: None,
    };
    let added = AccountEvent::LocalPasskeyAdded { passkey: new_passkey("p2"), cross_device_sign_in: Some("s9".into()) };
    let other = AccountEvent::LocalPasskeyAdded { passkey: new_passkey("p3"), cross_device_sign_in: None };
    let given = vec![opened(), registered("p1"), logged_in("p1", assertion(1)), cross, added, other];
    let events = outcome(given.clone(), login("cred-p1", Ok(assertion(2)))).await;
    let mut with = suspended("p2");
    if let AccountEvent::PasskeySuspended { with_passkey, .. } = &mut with {
        *with_passkey = Some("p1".into());
    }
    assert_eq!(events[1..], [suspended("p1"), with], "{events:?}");
    let mut after = given;
    after.extend(events);
    let refused = outcome(after.clone(), login("cred-p2", Ok(assertion(3)))).await;
    assert_eq!(refusal_of(&refused), Some(Refusal::PasskeySuspended));
    let works = outcome(after, login("cred-p3", Ok(assertion(3)))).await;
    assert!(matches!(works[0], AccountEvent::PasskeyLoginSucceeded { .. }), "a passkey added otherwise keeps working");
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_suspends_the_passkey() {
    let given = vec![opened(), registered("p1"), logged_in("p1", assertion(7))];
    let events = outcome(given, login("cred-p1", Ok(assertion(7)))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::CounterRegression));
    assert_eq!(events[1], suspended("p1"), "{events:?}");
}

#[tokio::test]
async fn a_suspended_passkey_is_refused_even_with_a_counter_that_moves_on() {
    let given = vec![opened(), registered("p1"), logged_in("p1", assertion(7)), suspended("p1")];
    let events = outcome(given, login("cred-p1", Ok(assertion(8)))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::PasskeySuspended));
    assert_eq!(events.len(), 1, "suspended once, not again: {events:?}");
}

#[tokio::test]
async fn a_suspended_passkey_with_a_bad_signature_is_an_invalid_credential() {
    // Whoever holds only the credential ID learns nothing of the suspension.
    let given = vec![opened(), registered("p1"), logged_in("p1", assertion(7)), suspended("p1")];
    let events = outcome(given, login("cred-p1", Err("bad signature".into()))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::InvalidCredential));
}

#[tokio::test]
async fn where_the_deployment_does_not_suspend_a_counter_regression_is_refused_only() {
    let mut services = AccountServices::default();
    services.policy.suspend_on_counter_regression = false;
    let given = vec![opened(), registered("p1"), logged_in("p1", assertion(7))];
    let events = TestFramework::<Account>::with(services)
        .given(given)
        .when_async(login("cred-p1", Ok(assertion(7))))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(refusal_of(&events), Some(Refusal::CounterRegression));
}

#[tokio::test]
async fn support_reinstates_a_suspended_passkey_and_it_logs_in_again() {
    let mut given = vec![opened(), registered("p1"), logged_in("p1", assertion(7)), suspended("p1")];
    let reinstate =
        |id: &str| AccountCommand::ReinstatePasskey { staff: staff(), passkey_id: id.into(), reason: "customer called".into(), at: t0() };
    let events = outcome(given.clone(), reinstate("p1")).await;
    assert_eq!(
        events,
        vec![AccountEvent::PasskeyReinstated {
            passkey_id: "p1".into(),
            name: Some(new_passkey("p1").name),
            staff: staff(),
            reason: "customer called".into()
        }]
    );
    given.extend(events);
    test().given(given.clone()).when_async(reinstate("p1")).await.then_expect_error(AccountError::NotSuspended);
    test().given(given.clone()).when_async(reinstate("nope")).await.then_expect_error(AccountError::UnknownPasskey);
    // The genuine device's counter may be below the copy's: the first
    // answer after the reinstatement sets the counter anew.
    let events = outcome(given, login("cred-p1", Ok(assertion(3)))).await;
    assert!(matches!(events[0], AccountEvent::PasskeyLoginSucceeded { .. }), "{events:?}");
}

#[tokio::test]
async fn a_zero_counter_authenticator_keeps_working() {
    let given = vec![opened(), registered("p1"), logged_in("p1", assertion(0))];
    let events = outcome(given, login("cred-p1", Ok(assertion(0)))).await;
    assert!(matches!(events[0], AccountEvent::PasskeyLoginSucceeded { .. }));
}

#[tokio::test]
async fn a_failed_signature_is_recorded_as_an_invalid_credential() {
    let events = outcome(vec![opened(), registered("p1")], login("cred-p1", Err("bad signature".into()))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::InvalidCredential));
}

#[tokio::test]
async fn abandoned_flows_do_not_pile_up_in_the_account() {
    let mut account = Account::default();
    cqrs_es::Aggregate::apply(&mut account, opened());
    for n in 0..100 {
        let flow = AccountEvent::RegistrationStarted {
            channel: Some(Channel::Web),
            session: None,
            flow_id: format!("f{n:03}"),
            started_at: secs(n),
        };
        cqrs_es::Aggregate::apply(&mut account, flow);
    }
    assert_eq!(account.flows.len(), 20);
    assert!(account.flows.contains_key("f099"), "the newest flow is kept");
    assert!(!account.flows.contains_key("f000"));
}

// --- Cross-device sign-in, security keys, environments -----------------------------

fn from_pc(mut a: PasskeyAssertion) -> PasskeyAssertion {
    a.authenticator_attachment = Some("cross-platform".into());
    a
}

fn security_key(id: &str) -> AccountEvent {
    let mut passkey = new_passkey(id);
    passkey.transports = vec!["usb".into(), "nfc".into()];
    passkey.authenticator_attachment = Some("cross-platform".into());
    passkey.backup_eligible = false;
    passkey.backup_state = false;
    AccountEvent::PasskeyRegistered { flow_id: Some("f-reg".into()), passkey, bound_by: aggregate::FIRST_PASSKEY_BINDING.into() }
}

#[tokio::test]
async fn a_phone_passkey_answering_a_pc_over_hybrid_is_a_cross_device_sign_in() {
    let mut phone = new_passkey("p1");
    phone.environment = Some(iphone_safari());
    let given = vec![opened(), AccountEvent::PasskeyRegistered { flow_id: Some("f".into()), passkey: phone, bound_by: "x".into() }];
    let events = outcome(given, login("cred-p1", Ok(from_pc(assertion(1))))).await;
    assert_eq!(
        events,
        vec![AccountEvent::CrossDeviceSignInSucceeded {
            sign_in_id: "s1".into(),
            passkey_id: "p1".into(),
            credential_id: "cred-p1".into(),
            assertion: from_pc(assertion(1)),
            environment: Some(windows_chrome()),
            new_environment: true,
            second_factor_flow: None,
        }]
    );
}

#[tokio::test]
async fn a_security_key_is_told_apart_from_a_phone() {
    let mut key_assertion = from_pc(assertion(3));
    key_assertion.backup_state = false;
    key_assertion.backup_eligible = false;
    let events = outcome(vec![opened(), security_key("k1")], login("cred-k1", Ok(key_assertion))).await;
    assert!(matches!(&events[0], AccountEvent::PasskeyLoginSucceeded { authenticator: LoginAuthenticator::SecurityKey, .. }), "{events:?}");
}

#[tokio::test]
async fn only_a_login_from_an_environment_not_seen_before_is_new() {
    // Registered on Windows/Chrome: a login there is not new ...
    let events = outcome(vec![opened(), registered("p1")], login("cred-p1", Ok(assertion(1)))).await;
    assert!(matches!(&events[0], AccountEvent::PasskeyLoginSucceeded { new_environment: false, .. }));
    // ... a login from an iPhone is.
    let AccountCommand::RecordPasskeyLogin { credential_id, assertion: a, channel, sign_in_id, second_factor_flow, at, .. } =
        login("cred-p1", Ok(assertion(1)))
    else {
        panic!("login() builds a RecordPasskeyLogin")
    };
    let from_phone = AccountCommand::RecordPasskeyLogin {
        credential_id,
        assertion: a,
        channel,
        environment: Some(iphone_safari()),
        sign_in_id,
        second_factor_flow,
        at,
    };
    let events = outcome(vec![opened(), registered("p1")], from_phone).await;
    assert!(matches!(&events[0], AccountEvent::PasskeyLoginSucceeded { new_environment: true, .. }));
}

#[tokio::test]
async fn a_change_of_backup_state_is_recorded_with_the_login() {
    let mut device_bound = assertion(1);
    device_bound.backup_state = false;
    let events = outcome(vec![opened(), registered("p1")], login("cred-p1", Ok(device_bound))).await;
    assert_eq!(events[1], AccountEvent::PasskeyBackupStateChanged { passkey_id: "p1".into(), backup_state: false });
    let same = outcome(vec![opened(), registered("p1")], login("cred-p1", Ok(assertion(1)))).await;
    assert_eq!(same.len(), 1, "no change, no event");
}

// --- Adding a local passkey ------------------------------------------------------

fn add(id: &str, logged_in_at: DateTime<Utc>, at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::AddPasskey {
        session: "s1".into(),
        session_method: "passkey".into(),
        email_shared_with: vec![],
        credential_taken: false,
        passkey: new_passkey(id),
        logged_in_at,
        cross_device_sign_in: Some("s1".into()),
        at,
    }
}

#[tokio::test]
async fn a_local_passkey_after_cross_device_sign_in_names_that_sign_in() {
    let events = outcome(vec![opened(), registered("p1")], add("p2", t0(), secs(60))).await;
    assert_eq!(events, vec![AccountEvent::LocalPasskeyAdded { passkey: new_passkey("p2"), cross_device_sign_in: Some("s1".into()) }]);
}

#[tokio::test]
async fn adding_a_passkey_needs_a_login_within_ten_minutes() {
    let events = outcome(vec![opened(), registered("p1")], add("p2", t0(), secs(10 * 60 + 1))).await;
    assert_eq!(events, vec![AccountEvent::PasskeyAdditionRefused { reason: Refusal::RecentLoginRequired }]);
    let check =
        AccountCommand::CheckPasskeyAddition { session: "s1".into(), email_shared_with: vec![], logged_in_at: t0(), at: secs(11 * 60) };
    assert_eq!(refusal_of(&outcome(vec![opened(), registered("p1")], check).await), Some(Refusal::RecentLoginRequired));
    let fine = AccountCommand::CheckPasskeyAddition { session: "s1".into(), email_shared_with: vec![], logged_in_at: t0(), at: secs(60) };
    assert!(outcome(vec![opened(), registered("p1")], fine).await.is_empty());
}

#[tokio::test]
async fn an_account_holds_at_most_ten_passkeys() {
    let mut given = vec![opened(), registered("p0")];
    for n in 1..10 {
        given.push(AccountEvent::LocalPasskeyAdded { passkey: new_passkey(&format!("p{n}")), cross_device_sign_in: None });
    }
    let events = outcome(given, add("p10", t0(), secs(1))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::PasskeyLimitReached));
}

#[tokio::test]
async fn continuing_without_a_local_passkey_is_recorded() {
    let cmd = AccountCommand::DeclineLocalPasskey { cross_device_sign_in: Some("s1".into()), at: t0() };
    let events = outcome(vec![opened(), registered("p1")], cmd).await;
    assert_eq!(events, vec![AccountEvent::LocalPasskeyDeclined { cross_device_sign_in: Some("s1".into()) }]);
}

// --- Deletion ------------------------------------------------------------------------

fn delete(passkey: Option<&str>, right: bool) -> AccountCommand {
    AccountCommand::DeletePasskeys { passkey_id: passkey.map(str::to_string), trading_password_matches: right, at: t0() }
}

fn two_passkeys() -> Vec<AccountEvent> {
    vec![opened(), registered("p1"), AccountEvent::LocalPasskeyAdded { passkey: new_passkey("p2"), cross_device_sign_in: None }]
}

#[tokio::test]
async fn the_customer_deletes_all_passkeys_with_the_trading_password() {
    let events = outcome(two_passkeys(), delete(None, true)).await;
    let AccountEvent::PasskeysRevoked { passkeys, revoked_by } = &events[0] else { panic!("{events:?}") };
    assert_eq!(passkeys.iter().map(|p| p.passkey_id.as_str()).collect::<Vec<_>>(), ["p1", "p2"]);
    assert_eq!(*revoked_by, Revoker::Customer);
}

#[tokio::test]
async fn the_customer_deletes_one_passkey() {
    let events = outcome(two_passkeys(), delete(Some("p2"), true)).await;
    let AccountEvent::PasskeysRevoked { passkeys, .. } = &events[0] else { panic!("{events:?}") };
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].passkey_id, "p2");
    let unknown = test().given(two_passkeys()).when_async(delete(Some("nope"), true)).await;
    unknown.then_expect_error(AccountError::UnknownPasskey);
}

#[tokio::test]
async fn five_wrong_trading_passwords_lock_deletion_until_support_unlocks() {
    let mut given = two_passkeys();
    for n in 1..5 {
        given.push(AccountEvent::TradingPasswordRejected { consecutive_failures: n });
    }
    let events = outcome(given.clone(), delete(None, false)).await;
    assert_eq!(
        events,
        vec![
            AccountEvent::TradingPasswordRejected { consecutive_failures: 5 },
            AccountEvent::PasskeyDeletionLocked { consecutive_failures: 5 }
        ]
    );
    given.extend(events);
    assert_eq!(refusal_of(&outcome(given.clone(), delete(None, true)).await), Some(Refusal::DeletionLocked));
    given.push(AccountEvent::LoginUnlocked { staff: staff(), reason: "identity confirmed by phone".into() });
    assert!(matches!(outcome(given, delete(None, true)).await[0], AccountEvent::PasskeysRevoked { .. }));
}

#[tokio::test]
async fn after_deletion_password_login_is_back_and_the_old_credential_is_revoked() {
    let mut given = two_passkeys();
    given.extend(outcome(two_passkeys(), delete(None, true)).await);
    let events = outcome(given.clone(), password("l", FlowPurpose::PasswordLogin, true, t0())).await;
    assert!(matches!(events[1], AccountEvent::EmailCodeIssued { .. }), "{events:?}");
    let events = outcome(given.clone(), login("cred-p1", Ok(assertion(1)))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::RevokedCredential));
    // and first registration is open again
    given.push(started("f2"));
    let events = outcome(given, password("f2", FlowPurpose::Registration, true, t0())).await;
    assert!(matches!(events[1], AccountEvent::EmailCodeIssued { .. }), "{events:?}");
}

// --- Support -------------------------------------------------------------------------

fn staff() -> StaffMember {
    StaffMember { staff_id: "st1".into(), name: "Sato".into() }
}

#[tokio::test]
async fn support_deletes_passkeys_for_a_lost_device_naming_who_and_why() {
    let cmd = AccountCommand::RevokePasskeysForCustomer { staff: staff(), passkey_id: None, reason: "device_lost".into(), at: t0() };
    let events = outcome(two_passkeys(), cmd).await;
    let AccountEvent::PasskeysRevoked { passkeys, revoked_by } = &events[0] else { panic!("{events:?}") };
    assert_eq!(passkeys.len(), 2);
    assert_eq!(*revoked_by, Revoker::Staff { staff: staff(), reason: "device_lost".into() });
}

// --- "This wasn't me" ---------------------------------------------------------

fn report(event_id: &str, passkey_id: Option<&str>, sessions_ended: u32) -> AccountCommand {
    report_from(event_id, passkey_id, Some("p1"), sessions_ended)
}

fn report_from(event_id: &str, passkey_id: Option<&str>, reporting: Option<&str>, sessions_ended: u32) -> AccountCommand {
    AccountCommand::ReportActivity {
        event_id: event_id.into(),
        sequence: 3,
        event_type: "LocalPasskeyAdded".into(),
        passkey_id: passkey_id.map(str::to_string),
        reporting_passkey: reporting.map(str::to_string),
        note: Some("not me".into()),
        sessions_ended,
        at: t0(),
    }
}

#[tokio::test]
async fn a_report_revokes_the_passkey_the_event_used_ends_the_other_sessions_and_is_recorded() {
    let events = outcome(two_passkeys(), report("e-3", Some("p2"), 2)).await;
    let AccountEvent::PasskeysRevoked { passkeys, revoked_by } = &events[0] else { panic!("{events:?}") };
    assert_eq!(passkeys.iter().map(|p| p.passkey_id.as_str()).collect::<Vec<_>>(), ["p2"]);
    assert_eq!(*revoked_by, Revoker::ReportedByCustomer);
    assert_eq!(events[1], AccountEvent::SessionsEnded { sessions: 2, cause: SessionEndCause::ReportedByCustomer });
    let AccountEvent::SuspiciousActivityReported { event_id, sessions_ended, passkeys_revoked, note, .. } = &events[2] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (event_id.as_str(), *sessions_ended, passkeys_revoked.as_slice(), note.as_deref()),
        ("e-3", 2, ["p2".to_string()].as_slice(), Some("not me"))
    );
}

#[tokio::test]
async fn a_report_of_an_event_that_used_no_passkey_or_a_deleted_one_revokes_nothing() {
    let events = outcome(two_passkeys(), report("e-3", None, 0)).await;
    assert!(matches!(events.as_slice(), [AccountEvent::SuspiciousActivityReported { sessions_ended: 0, .. }]), "{events:?}");
    let mut given = two_passkeys();
    given.extend(outcome(two_passkeys(), delete(Some("p2"), true)).await);
    let events = outcome(given, report("e-3", Some("p2"), 0)).await;
    assert!(matches!(events.as_slice(), [AccountEvent::SuspiciousActivityReported { .. }]), "{events:?}");
}

/// The passkey the reported event used is revoked, whichever device holds
/// it (the phone reports the PC's, the PC the stolen phone's), but never the
/// one the reporting session was opened with.
#[tokio::test]
async fn a_report_revokes_the_reported_passkey_but_never_the_reporting_sessions_own() {
    let revoked = |events: &[AccountEvent]| events.iter().any(|e| matches!(e, AccountEvent::PasskeysRevoked { .. }));
    assert!(revoked(&outcome(two_passkeys(), report_from("e", Some("p2"), Some("p1"), 0)).await), "the PC's, from the phone");
    assert!(revoked(&outcome(two_passkeys(), report_from("e", Some("p1"), Some("p2"), 0)).await), "the phone's, from the PC");
    assert!(revoked(&outcome(two_passkeys(), report_from("e", Some("p2"), None, 0)).await), "from a password session");
    let events = outcome(two_passkeys(), report_from("e", Some("p2"), Some("p2"), 2)).await;
    assert!(
        matches!(events.as_slice(), [AccountEvent::SessionsEnded { .. }, AccountEvent::SuspiciousActivityReported { .. }]),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_same_event_reported_twice_records_one_report_and_keeps_the_first_outcome() {
    let mut given = two_passkeys();
    given.extend(outcome(two_passkeys(), report("e-3", Some("p2"), 1)).await);
    let again = outcome(given.clone(), report("e-3", Some("p1"), 4)).await;
    assert!(again.is_empty(), "{again:?}");
    let mut account = Account::default();
    for event in given {
        account.apply(event);
    }
    let first = account.report_of("e-3").expect("the first report");
    assert_eq!((first.sessions_ended, first.passkeys_revoked.as_slice()), (1, ["p2".to_string()].as_slice()));
    assert!(account.active_passkeys().any(|p| p.passkey_id == "p1"));
}

#[tokio::test]
async fn support_unlocks_a_locked_login() {
    let given = vec![opened(), AccountEvent::LoginLocked { consecutive_failures: 5, clients: vec![] }];
    let mut given = given;
    given.extend(outcome(given.clone(), AccountCommand::Unlock { staff: staff(), reason: "called in".into(), at: t0() }).await);
    given.push(started("f"));
    let events = outcome(given, password("f", FlowPurpose::Registration, true, t0())).await;
    assert!(matches!(events[1], AccountEvent::EmailCodeIssued { .. }), "{events:?}");
}

// --- Second-factor mode (seed 002) ------------------------------------------------

fn second_factor(flow: &str, assertion_: PasskeyAssertion, at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::RecordPasskeyLogin {
        credential_id: "cred-p1".into(),
        assertion: Ok(assertion_),
        channel: Channel::Web,
        environment: None,
        sign_in_id: "s1".into(),
        second_factor_flow: Some(flow.into()),
        at,
    }
}

#[tokio::test]
async fn in_second_factor_mode_the_right_password_asks_for_a_passkey() {
    let events = outcome(vec![opened(), registered("p1")], password("l", FlowPurpose::SecondFactorLogin, true, t0())).await;
    assert_eq!(events, vec![verified("l", FlowPurpose::SecondFactorLogin), AccountEvent::SecondFactorRequired { flow_id: "l".into() }]);
}

#[tokio::test]
async fn the_second_factor_passkey_completes_the_login_once() {
    let given = vec![
        opened(),
        registered("p1"),
        verified("l", FlowPurpose::SecondFactorLogin),
        AccountEvent::SecondFactorRequired { flow_id: "l".into() },
    ];
    let events = outcome(given.clone(), second_factor("l", assertion(1), secs(10))).await;
    assert!(matches!(&events[0], AccountEvent::PasskeyLoginSucceeded { second_factor_flow: Some(f), .. } if f == "l"), "{events:?}");
    let mut after = given;
    after.extend(events);
    let again = outcome(after, second_factor("l", assertion(2), secs(20))).await;
    assert_eq!(refusal_of(&again), Some(Refusal::WrongStep));
}

#[tokio::test]
async fn a_suspended_passkey_is_refused_as_the_second_factor_too_and_a_regression_there_suspends() {
    let given = vec![
        opened(),
        registered("p1"),
        logged_in("p1", assertion(7)),
        verified("l", FlowPurpose::SecondFactorLogin),
        AccountEvent::SecondFactorRequired { flow_id: "l".into() },
    ];
    let events = outcome(given.clone(), second_factor("l", assertion(7), secs(10))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::CounterRegression));
    assert_eq!(events[1], suspended("p1"), "{events:?}");
    let mut after = given;
    after.push(suspended("p1"));
    let events = outcome(after, second_factor("l", assertion(9), secs(20))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::PasskeySuspended));
}

#[tokio::test]
async fn a_second_factor_without_the_password_step_is_refused() {
    let given = vec![opened(), registered("p1"), verified("l", FlowPurpose::SecondFactorLogin)];
    let events = outcome(given, second_factor("l", assertion(1), secs(10))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::WrongStep));
}

#[tokio::test]
async fn in_second_factor_mode_an_account_without_passkey_gets_the_email_code() {
    let events = outcome(vec![opened()], password("l", FlowPurpose::SecondFactorLogin, true, t0())).await;
    assert!(matches!(events[1], AccountEvent::EmailCodeIssued { .. }), "{events:?}");
}

// --- Changes to the account close the flows still open on it -----------------

fn login_at_code() -> Vec<AccountEvent> {
    vec![opened(), verified("l", FlowPurpose::PasswordLogin), issued("l", "c1", t0(), false)]
}

fn code_step(flow: &str, channel: Channel, at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::VerifyEmailCode {
        flow_id: flow.into(),
        code_id: "c1".into(),
        matches: true,
        channel,
        email_shared_with: vec![],
        environment: None,
        at,
    }
}

async fn after(given: Vec<AccountEvent>, change: AccountCommand, then: AccountCommand) -> (Vec<AccountEvent>, Vec<AccountEvent>) {
    let changed = outcome(given.clone(), change).await;
    let later = outcome(given.into_iter().chain(changed.clone()).collect(), then).await;
    (changed, later)
}

fn closed(flow: &str, because: FlowClosure) -> AccountEvent {
    AccountEvent::OpenFlowsClosed { flow_ids: vec![flow.into()], because }
}

#[tokio::test]
async fn a_new_login_password_ends_a_login_whose_code_was_sent_before_it() {
    let change = AccountCommand::ChangeLoginPassword { temporary: false, at: secs(10) };
    let (changed, later) = after(login_at_code(), change, code_step("l", Channel::Web, secs(20))).await;
    assert_eq!(changed, vec![AccountEvent::LoginPasswordChanged { temporary: false }, closed("l", FlowClosure::LoginPasswordChanged)]);
    assert_eq!(refusal_of(&later), Some(Refusal::FlowClosed));
    assert!(!later.iter().any(|e| matches!(e, AccountEvent::PasswordLoginSucceeded { .. })));
}

#[tokio::test]
async fn a_lock_ends_a_login_already_past_its_password_step() {
    let mut given = login_at_code();
    given.push(AccountEvent::PasswordRejected {
        flow_id: "x".into(),
        purpose: FlowPurpose::PasswordLogin,
        consecutive_failures: 4,
        client: None,
    });
    let (changed, later) =
        after(given, password("x", FlowPurpose::PasswordLogin, false, secs(10)), code_step("l", Channel::Web, secs(20))).await;
    assert!(changed.contains(&closed("l", FlowClosure::LoginLocked)));
    assert_eq!(refusal_of(&later), Some(Refusal::LoginLocked));
}

#[tokio::test]
async fn a_registered_passkey_ends_an_older_password_login() {
    let mut given = login_at_code();
    given.extend([started("f"), verified("f", FlowPurpose::Registration), issued("f", "c2", t0(), false)]);
    given.push(AccountEvent::EmailCodeVerified { flow_id: "f".into(), code_id: "c2".into(), factor: CodeFactor::EmailCode });
    let register = AccountCommand::RegisterPasskey {
        flow_id: "f".into(),
        passkey: new_passkey("p1"),
        channel: Channel::Web,
        email_shared_with: vec![],
        credential_taken: false,
        at: secs(30),
    };
    let (changed, later) = after(given, register, code_step("l", Channel::Web, secs(40))).await;
    assert!(changed.contains(&closed("l", FlowClosure::PasskeyBound)), "{changed:?}");
    assert_eq!(refusal_of(&later), Some(Refusal::PasskeyRequired));
}

#[tokio::test]
async fn a_new_address_or_a_temporary_password_ends_a_registration_at_its_passkey_step() {
    let register = AccountCommand::RegisterPasskey {
        flow_id: "f".into(),
        passkey: new_passkey("p1"),
        channel: Channel::Web,
        email_shared_with: vec![],
        credential_taken: false,
        at: secs(90),
    };
    for change in [
        AccountCommand::ChangeEmail { email: EmailAddress::parse("hanako@example.jp").unwrap(), slot: 1, at: secs(80) },
        AccountCommand::ChangeLoginPassword { temporary: true, at: secs(80) },
        AccountCommand::SetEmailReachability { reachable: false, slot: 1, at: secs(80) },
    ] {
        let (changed, later) = after(code_verified(), change.clone(), register.clone()).await;
        assert!(changed.iter().any(|e| matches!(e, AccountEvent::OpenFlowsClosed { .. })), "{change:?}");
        assert!(refusal_of(&later).is_some(), "{change:?}: {later:?}");
        assert!(!later.iter().any(|e| matches!(e, AccountEvent::PasskeyRegistered { .. })), "{change:?}");
    }
}

#[tokio::test]
async fn a_flow_keeps_the_channel_it_began_on() {
    let later = outcome(login_at_code(), code_step("l", Channel::MobileApp, secs(20))).await;
    assert_eq!(refusal_of(&later), Some(Refusal::WrongChannel));
    let same = outcome(login_at_code(), code_step("l", Channel::Web, secs(20))).await;
    assert!(same.iter().any(|e| matches!(e, AccountEvent::PasswordLoginSucceeded { .. })));
}

#[tokio::test]
async fn a_first_passkey_from_a_session_is_a_registration_naming_the_session() {
    let add = AccountCommand::AddPasskey {
        session: "s1".into(),
        passkey: new_passkey("p1"),
        logged_in_at: secs(0),
        session_method: "password_and_email_code".into(),
        cross_device_sign_in: None,
        email_shared_with: vec![],
        credential_taken: false,
        at: secs(60),
    };
    let events = outcome(vec![opened(), stepped_up(secs(0))], add).await;
    assert!(matches!(
        &events[0],
        AccountEvent::PasskeyRegistered { flow_id: None, bound_by, .. }
            if bound_by == "signed_in_session:password_and_email_code+trading_password"
    ));
}

#[tokio::test]
async fn a_credential_deleted_from_this_account_is_not_bound_again() {
    let mut given = vec![opened(), registered("p1"), stepped_up(secs(0))];
    given.push(AccountEvent::PasskeysRevoked {
        passkeys: vec![RevokedPasskey { passkey_id: "p1".into(), credential_id: "cred-p1".into(), name: None }],
        revoked_by: Revoker::Customer,
    });
    let add = AccountCommand::AddPasskey {
        session: "s1".into(),
        passkey: new_passkey("p1"),
        logged_in_at: secs(0),
        session_method: "password_and_email_code".into(),
        cross_device_sign_in: None,
        email_shared_with: vec![],
        credential_taken: false,
        at: secs(60),
    };
    let events = outcome(given, add).await;
    assert_eq!(events, vec![AccountEvent::PasskeyAdditionRefused { reason: Refusal::CredentialAlreadyRegistered }]);
}

// --- Registration opens at the deployment's launch instant (seed 000) ---------

#[tokio::test]
async fn registration_before_the_launch_instant_is_refused_and_recorded() {
    let mut services = AccountServices::default();
    services.policy.registration_opens_at = Some(secs(3600));
    let start = |at| {
        let mut cmd = password("f", FlowPurpose::Registration, true, at);
        if let AccountCommand::SubmitPassword { pending_start, .. } = &mut cmd {
            *pending_start = Some(PendingStart { started_at: at, channel: Channel::Web });
        }
        cmd
    };
    let events =
        TestFramework::<Account>::with(services.clone()).given(vec![opened()]).when_async(start(secs(0))).await.inspect_result().unwrap();
    assert_eq!(refusal_of(&events), Some(Refusal::RegistrationNotOpen));
    let events =
        TestFramework::<Account>::with(services).given(vec![opened()]).when_async(start(secs(3600))).await.inspect_result().unwrap();
    assert_eq!(refusal_of(&events), None);
}

#[tokio::test]
async fn a_first_passkey_from_a_session_waits_for_the_launch_instant_too() {
    let mut services = AccountServices::default();
    services.policy.registration_opens_at = Some(secs(3600));
    let check =
        AccountCommand::CheckPasskeyAddition { session: "s1".into(), logged_in_at: secs(0), email_shared_with: vec![], at: secs(60) };
    let events = TestFramework::<Account>::with(services).given(vec![opened()]).when_async(check).await.inspect_result().unwrap();
    assert_eq!(events, vec![AccountEvent::PasskeyAdditionRefused { reason: Refusal::RegistrationNotOpen }]);
}

#[tokio::test]
async fn a_reissued_trading_password_lifts_the_deletion_lock_and_keeps_the_passkeys() {
    let given = vec![opened(), registered("p1"), AccountEvent::PasskeyDeletionLocked { consecutive_failures: 5 }];
    let changed = outcome(given.clone(), AccountCommand::ChangeTradingPassword { temporary: false, at: secs(10) }).await;
    assert_eq!(changed, vec![AccountEvent::TradingPasswordChanged { temporary: false }]);
    let mut account = Account::default();
    for e in given.into_iter().chain(changed) {
        cqrs_es::Aggregate::apply(&mut account, e);
    }
    assert!(!account.deletion_locked);
    assert_eq!(account.active_passkeys().count(), 1);
}

#[tokio::test]
async fn where_only_support_deletes_the_customer_is_told_so_and_nothing_is_deleted() {
    let mut services = AccountServices::default();
    services.policy.customer_deletion = false;
    let delete = AccountCommand::DeletePasskeys { passkey_id: None, trading_password_matches: true, at: secs(10) };
    let events =
        TestFramework::<Account>::with(services).given(vec![opened(), registered("p1")]).when_async(delete).await.inspect_result().unwrap();
    assert_eq!(events, vec![AccountEvent::PasskeyDeletionRefused { reason: Refusal::DeletionBySupportOnly }]);
}

#[tokio::test]
async fn an_abandoned_ceremony_is_recorded_on_its_flow() {
    let abandoned = AccountCommand::RecordCeremonyAbandoned { flow_id: Some("f".into()), reason: "NotAllowedError".into(), at: secs(90) };
    let events = outcome(code_verified(), abandoned).await;
    assert_eq!(events, vec![AccountEvent::PasskeyCeremonyAbandoned { flow_id: Some("f".into()), reason: "NotAllowedError".into() }]);
    let unknown = AccountCommand::RecordCeremonyAbandoned { flow_id: Some("nope".into()), reason: "AbortError".into(), at: secs(90) };
    assert!(test().given(code_verified()).when_async(unknown).await.inspect_result().is_err());
}

fn stepped_up(at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::SessionStepUpPassed { how: crate::policy::SessionStepUp::TradingPassword, at, session: "s1".into() }
}

fn add_first(at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::AddPasskey {
        session: "s1".into(),
        passkey: new_passkey("p1"),
        logged_in_at: at,
        session_method: "password_and_email_code".into(),
        cross_device_sign_in: None,
        email_shared_with: vec![],
        credential_taken: false,
        at,
    }
}

#[tokio::test]
async fn a_first_passkey_from_a_session_needs_the_trading_password_first() {
    let events = outcome(vec![opened()], add_first(secs(60))).await;
    assert_eq!(events, vec![AccountEvent::PasskeyAdditionRefused { reason: Refusal::StepUpRequired }]);
    let confirm = |matches| AccountCommand::ConfirmWithTradingPassword {
        trading_password_matches: matches,
        session: "s1".into(),
        logged_in_at: secs(0),
        at: secs(30),
    };
    let wrong = outcome(vec![opened()], confirm(false)).await;
    assert_eq!(refusal_of(&wrong), Some(Refusal::InvalidTransactionPassword));
    let right = outcome(vec![opened()], confirm(true)).await;
    assert_eq!(right, vec![stepped_up(secs(30))]);
    // Good for a few minutes, and for one passkey.
    let late = outcome(vec![opened(), stepped_up(secs(0))], add_first(secs(11 * 60))).await;
    assert_eq!(refusal_of(&late), Some(Refusal::StepUpRequired));
}

#[tokio::test]
async fn a_confirmation_serves_its_own_session_only() {
    let mut other = add_first(secs(60));
    if let AccountCommand::AddPasskey { session, .. } = &mut other {
        *session = "another-session".into();
    }
    let events = outcome(vec![opened(), stepped_up(secs(0))], other).await;
    assert_eq!(refusal_of(&events), Some(Refusal::StepUpRequired));
}

#[tokio::test]
async fn the_trading_password_lock_holds_for_registration_too() {
    let given = vec![opened(), AccountEvent::PasskeyDeletionLocked { consecutive_failures: 5 }];
    let events = outcome(
        given,
        AccountCommand::ConfirmWithTradingPassword {
            trading_password_matches: true,
            session: "s1".into(),
            logged_in_at: secs(0),
            at: secs(0),
        },
    )
    .await;
    assert_eq!(refusal_of(&events), Some(Refusal::TradingPasswordLocked));
}

#[tokio::test]
async fn where_a_code_confirms_a_first_passkey_from_a_session_it_binds_on_that_flow() {
    let mut services = AccountServices::default();
    services.policy.session_step_up = crate::policy::SessionStepUp::EmailCode;
    let ask = AccountCommand::RequestStepUpCode {
        flow_id: "s".into(),
        channel: Channel::Web,
        session: "s1".into(),
        logged_in_at: secs(0),
        slot: None,
        code: code("c1", secs(0)),
        email_shared_with: vec![],
        at: secs(0),
    };
    let issued = TestFramework::<Account>::with(services.clone()).given(vec![opened()]).when_async(ask).await.inspect_result().unwrap();
    assert!(matches!(issued.last(), Some(AccountEvent::EmailCodeIssued { flow_id, .. }) if flow_id == "s"));
    let mut given = vec![opened()];
    given.extend(issued);
    let without = TestFramework::<Account>::with(services.clone())
        .given(given.clone())
        .when_async(add_first(secs(30)))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(refusal_of(&without), Some(Refusal::StepUpRequired), "the code is not verified yet");
    given.push(AccountEvent::EmailCodeVerified { flow_id: "s".into(), code_id: "c1".into(), factor: CodeFactor::EmailCode });
    let bound = TestFramework::<Account>::with(services).given(given).when_async(add_first(secs(60))).await.inspect_result().unwrap();
    assert!(
        matches!(
            &bound[0],
            AccountEvent::PasskeyRegistered { flow_id: Some(f), bound_by, .. }
                if f == "s" && bound_by == "signed_in_session:password_and_email_code+email_code"
        ),
        "{bound:?}"
    );
}

// --- The OTP service instead of the e-mailed code (seed 004) ------------------

#[tokio::test]
async fn with_an_otp_device_the_code_step_asks_for_its_password_and_mails_nothing() {
    let device = AccountEvent::OtpDeviceRegistered { algorithm: "SHA1".into(), digits: 6, period: 30 };
    let given = vec![opened(), device, started("f")];
    let events = outcome(given.clone(), password("f", FlowPurpose::Registration, true, secs(10))).await;
    assert!(events.iter().any(|e| matches!(e, AccountEvent::OneTimePasswordRequested { .. })), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, AccountEvent::EmailCodeIssued { .. })));
    let mut at_code = given;
    at_code.extend(events);
    let verify = AccountCommand::VerifyEmailCode {
        flow_id: "f".into(),
        code_id: "c1".into(),
        matches: true,
        channel: Channel::Web,
        email_shared_with: vec![],
        environment: None,
        at: secs(20),
    };
    let verified = outcome(at_code.clone(), verify).await;
    assert_eq!(verified, vec![AccountEvent::EmailCodeVerified { flow_id: "f".into(), code_id: "c1".into(), factor: CodeFactor::Totp }]);
    let resend = AccountCommand::ResendEmailCode {
        flow_id: "f".into(),
        code: code("c2", secs(90)),
        channel: Channel::Web,
        email_shared_with: vec![],
        at: secs(90),
    };
    assert_eq!(refusal_of(&outcome(at_code, resend).await), Some(Refusal::WrongStep));
}

// --- Several registered addresses (seed 003, 004) ----------------------------

fn second_address() -> AccountEvent {
    AccountEvent::EmailAddressChanged { email: EmailAddress::parse("work@example.jp").unwrap(), slot: 2, previous: None }
}

#[tokio::test]
async fn codes_go_to_address_1_only_by_default_seed_003() {
    let given = vec![opened(), second_address(), AccountEvent::EmailReachabilityChanged { reachable: false, slot: 1 }, started("f")];
    let events = outcome(given, password("f", FlowPurpose::Registration, true, secs(10))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::EmailUnreachable), "address 2 does not stand in for address 1");
    let events = outcome(vec![opened(), second_address(), started("f")], password("f", FlowPurpose::Registration, true, secs(10))).await;
    assert!(events
        .iter()
        .any(|e| matches!(e, AccountEvent::EmailCodeIssued { slot: 1, destination, .. } if destination == "t***@example.jp")));
}

#[tokio::test]
async fn where_the_customer_chooses_the_code_goes_to_the_chosen_address_seed_004() {
    let mut services = AccountServices::default();
    services.policy.code_destination = crate::policy::CodeDestination::Choose;
    let run = |given: Vec<AccountEvent>, when: AccountCommand| {
        let services = services.clone();
        async move { TestFramework::<Account>::with(services).given(given).when_async(when).await.inspect_result().unwrap() }
    };
    let mut given = vec![opened(), second_address(), started("f")];
    let offered = run(given.clone(), password("f", FlowPurpose::Registration, true, secs(10))).await;
    let Some(AccountEvent::CodeDestinationsOffered { addresses, .. }) = offered.last() else { panic!("{offered:?}") };
    assert_eq!(
        addresses.iter().map(|a| (a.slot, a.destination.as_str())).collect::<Vec<_>>(),
        vec![(1, "t***@example.jp"), (2, "w***@example.jp")]
    );
    assert!(!offered.iter().any(|e| matches!(e, AccountEvent::EmailCodeIssued { .. })), "nothing sent before the choice");
    given.extend(offered);
    let send = |slot, at| AccountCommand::SendCode { flow_id: "f".into(), slot, code: code("c1", at), channel: Channel::Web, at };
    let sent = run(given.clone(), send(2, secs(20))).await;
    assert!(matches!(&sent[0], AccountEvent::EmailCodeIssued { slot: 2, resend: false, .. }), "{sent:?}");
    given.extend(sent);
    let resend = AccountCommand::ResendEmailCode {
        flow_id: "f".into(),
        code: code("c2", secs(90)),
        channel: Channel::Web,
        email_shared_with: vec![],
        at: secs(90),
    };
    let again = run(given.clone(), resend).await;
    assert!(
        matches!(&again[0], AccountEvent::EmailCodeIssued { slot: 2, resend: true, .. }),
        "a resend goes where the code went: {again:?}"
    );
    // An address that cannot receive mail is not offered, nor taken.
    let mut bounced = vec![opened(), second_address(), AccountEvent::EmailReachabilityChanged { reachable: false, slot: 2 }, started("g")];
    let offered = run(bounced.clone(), password("g", FlowPurpose::Registration, true, secs(10))).await;
    assert!(matches!(offered.last(), Some(AccountEvent::CodeDestinationsOffered { addresses, .. }) if addresses.len() == 1));
    bounced.extend(offered);
    let refused = run(
        bounced,
        AccountCommand::SendCode { flow_id: "g".into(), slot: 2, code: code("c1", secs(20)), channel: Channel::Web, at: secs(20) },
    )
    .await;
    assert_eq!(refusal_of(&refused), Some(Refusal::EmailUnreachable));
}

#[tokio::test]
async fn a_code_the_mail_server_did_not_take_is_void_and_another_may_be_asked_for_at_once() {
    let not_sent = AccountCommand::RecordCodeNotDelivered { flow_id: "f".into(), code_id: "c1".into(), at: secs(1) };
    let events = outcome(ready_for_code(), not_sent).await;
    assert_eq!(events, vec![AccountEvent::EmailCodeNotDelivered { flow_id: "f".into(), code_id: "c1".into() }]);
    let mut given = ready_for_code();
    given.extend(events);
    let resend = AccountCommand::ResendEmailCode {
        flow_id: "f".into(),
        code: code("c2", secs(2)),
        channel: Channel::Web,
        email_shared_with: vec![],
        at: secs(2),
    };
    let again = outcome(given.clone(), resend).await;
    assert!(matches!(&again[0], AccountEvent::EmailCodeIssued { code_id, .. } if code_id == "c2"), "no minute's wait: {again:?}");
    let typed = AccountCommand::VerifyEmailCode {
        flow_id: "f".into(),
        code_id: "c1".into(),
        matches: true,
        channel: Channel::Web,
        email_shared_with: vec![],
        environment: None,
        at: secs(3),
    };
    assert!(
        !outcome(given, typed).await.iter().any(|e| matches!(e, AccountEvent::EmailCodeVerified { .. })),
        "the void code verifies nothing"
    );
}

#[tokio::test]
async fn resends_the_mail_server_did_not_take_count_against_no_limit() {
    // More undelivered resends than the hour allows (five resends, ten
    // codes), each asked for at once after the one before.
    let mut given = ready_for_code();
    given.push(AccountEvent::EmailCodeNotDelivered { flow_id: "f".into(), code_id: "c1".into() });
    for i in 0..12 {
        let at = secs(2 + i);
        let code_id = format!("r{i}");
        let resend = AccountCommand::ResendEmailCode {
            flow_id: "f".into(),
            code: code(&code_id, at),
            channel: Channel::Web,
            email_shared_with: vec![],
            at,
        };
        let issued = outcome(given.clone(), resend).await;
        assert!(matches!(&issued[0], AccountEvent::EmailCodeIssued { resend: true, .. }), "resend {i}: {issued:?}");
        given.extend(issued);
        given.push(AccountEvent::EmailCodeNotDelivered { flow_id: "f".into(), code_id });
    }
}

mod lines;
mod matrix;
mod properties;

// --- Codes bounded per account, not only per code ----------------------------

/// A flow begun at `at` whose code got `wrong` wrong entries.
fn flow_with_wrong_codes(flow: &str, at: DateTime<Utc>, wrong: u32) -> Vec<AccountEvent> {
    let mut events = vec![
        AccountEvent::RegistrationStarted { channel: Some(Channel::Web), session: None, flow_id: flow.into(), started_at: at },
        AccountEvent::PasswordVerified { channel: Some(Channel::Web), flow_id: flow.into(), purpose: FlowPurpose::Registration, at },
        issued(flow, &format!("{flow}-c"), at, false),
    ];
    for i in 0..wrong {
        let attempts_left = crate::Policy::default().code_max_attempts.saturating_sub(i + 1);
        events.push(AccountEvent::EmailCodeRejected { flow_id: flow.into(), code_id: format!("{flow}-c"), attempts_left });
        if attempts_left == 0 {
            events.push(AccountEvent::EmailCodeExhausted { flow_id: flow.into(), code_id: format!("{flow}-c") });
        }
    }
    events
}

fn verify(flow: &str, matches: bool, at: DateTime<Utc>) -> AccountCommand {
    AccountCommand::VerifyEmailCode {
        channel: Channel::Web,
        email_shared_with: vec![],
        flow_id: flow.into(),
        code_id: format!("{flow}-c"),
        matches,
        environment: None,
        at,
    }
}

#[tokio::test]
async fn wrong_codes_across_flows_lock_code_entry_for_the_hour() {
    // Two codes used up in two flows: with the password, a third flow would
    // give five more guesses at a fresh code, and so on without end.
    let mut given = vec![opened()];
    given.extend(flow_with_wrong_codes("f1", secs(0), 5));
    given.extend(flow_with_wrong_codes("f2", secs(60), 5));
    given.extend(flow_with_wrong_codes("f3", secs(120), 0));
    let events = outcome(given.clone(), verify("f3", true, secs(180))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::TooManyAttempts), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, AccountEvent::EmailCodeVerified { .. })));
    // An hour after the flows began, code entry opens again.
    let mut later = vec![opened()];
    later.extend(flow_with_wrong_codes("f1", secs(0), 5));
    later.extend(flow_with_wrong_codes("f2", secs(60), 5));
    later.extend(flow_with_wrong_codes("f3", secs(3700), 0));
    let events = outcome(later, verify("f3", true, secs(3720))).await;
    assert!(events.iter().any(|e| matches!(e, AccountEvent::EmailCodeVerified { .. })), "{events:?}");
}

#[tokio::test]
async fn a_customer_who_mistypes_a_few_codes_still_gets_in() {
    let mut given = vec![opened()];
    given.extend(flow_with_wrong_codes("f1", secs(0), 3));
    given.extend(flow_with_wrong_codes("f2", secs(60), 2));
    let events = outcome(given, verify("f2", true, secs(90))).await;
    assert!(events.iter().any(|e| matches!(e, AccountEvent::EmailCodeVerified { .. })), "{events:?}");
}

#[tokio::test]
async fn codes_mailed_per_account_are_capped_per_hour_resends_or_not() {
    let cap = crate::Policy::default().codes_per_hour;
    let mut given = vec![opened()];
    for i in 0..cap {
        given.extend(flow_with_wrong_codes(&format!("f{i}"), secs(i64::from(i) * 60), 0));
    }
    given.push(started("next"));
    let events = outcome(given, password("next", FlowPurpose::Registration, true, secs(1200))).await;
    assert!(!events.iter().any(|e| matches!(e, AccountEvent::EmailCodeIssued { .. })), "{events:?}");
    assert_eq!(refusal_of(&events), Some(Refusal::ResendLimitReached));
}

#[tokio::test]
async fn starting_flows_cannot_push_the_count_of_wrong_codes_out() {
    // Only the 20 newest flows are kept; the count is the account's.
    let mut given = vec![opened()];
    given.extend(flow_with_wrong_codes("f1", secs(0), 5));
    given.extend(flow_with_wrong_codes("f2", secs(60), 5));
    for i in 0..25 {
        given.push(AccountEvent::RegistrationStarted {
            channel: Some(Channel::Web),
            session: None,
            flow_id: format!("filler-{i}"),
            started_at: secs(100 + i),
        });
    }
    given.extend(flow_with_wrong_codes("f3", secs(200), 0));
    let events = outcome(given, verify("f3", true, secs(220))).await;
    assert_eq!(refusal_of(&events), Some(Refusal::TooManyAttempts), "{events:?}");
}

/// The hour's mailed codes, one flow each, all within `cap`.
fn mailed_codes(cap: u32) -> Vec<AccountEvent> {
    let mut given = vec![opened()];
    for i in 0..cap {
        given.extend(flow_with_wrong_codes(&format!("f{i}"), secs(i64::from(i) * 60), 0));
    }
    given
}

#[tokio::test]
async fn the_hours_mailed_codes_cap_a_resend_too() {
    let cap = crate::Policy::default().codes_per_hour;
    // The last flow's code is old enough for a resend by the per-flow rule.
    let last = format!("f{}", cap - 1);
    let resend = AccountCommand::ResendEmailCode {
        flow_id: last,
        code: code("again", secs(1300)),
        channel: Channel::Web,
        email_shared_with: vec![],
        at: secs(1300),
    };
    let events = outcome(mailed_codes(cap), resend).await;
    assert!(!events.iter().any(|e| matches!(e, AccountEvent::EmailCodeIssued { .. })), "{events:?}");
    assert_eq!(refusal_of(&events), Some(Refusal::ResendLimitReached));
}

#[tokio::test]
async fn the_hours_mailed_codes_cap_a_code_asked_from_a_session_too() {
    let mut services = AccountServices::default();
    services.policy.session_step_up = crate::policy::SessionStepUp::EmailCode;
    let cap = services.policy.codes_per_hour;
    let ask = AccountCommand::RequestStepUpCode {
        flow_id: "s".into(),
        channel: Channel::Web,
        session: "s1".into(),
        logged_in_at: secs(1290),
        slot: None,
        code: code("c-s", secs(1300)),
        email_shared_with: vec![],
        at: secs(1300),
    };
    let events = TestFramework::<Account>::with(services).given(mailed_codes(cap)).when_async(ask).await.inspect_result().unwrap();
    assert!(!events.iter().any(|e| matches!(e, AccountEvent::EmailCodeIssued { .. })), "{events:?}");
    assert_eq!(refusal_of(&events), Some(Refusal::ResendLimitReached));
}
