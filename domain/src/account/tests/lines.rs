//! Every event's readable line, in both languages, is in words: no raw
//! code (`login_locked`), no JSON, no UTC time in the Japanese line, and
//! the catalogue (`docs/events.md`) has no event without a line here.

use std::collections::BTreeSet;

use cqrs_es::DomainEvent;

use super::*;
use crate::staff::{describe_staff, ReviewOutcome, StaffEvent, TokenRefusal};
use crate::system::{describe_system, SystemEvent};

fn staff() -> StaffMember {
    StaffMember { staff_id: "s-1".into(), name: "Sato Hanako".into() }
}

fn linux() -> Environment {
    Environment {
        browser: "Firefox".into(),
        browser_version: "0".into(),
        os: "Linux".into(),
        os_version: "0".into(),
        device_type: "pc".into(),
        recommended: None,
    }
}

/// One event of every kind, and every value of the fields that are codes.
fn every_account_event() -> Vec<AccountEvent> {
    use AccountEvent as E;
    let mut events = vec![
        opened(),
        E::AccountOpened {
            login_id: LoginId::parse("7654321").unwrap(),
            holder_kind: HolderKind::Corporate,
            email: None,
            password_temporary: true,
        },
        E::EmailAddressChanged { email: email(), slot: 2, previous: None },
        E::EmailAddressChanged { email: email(), slot: 1, previous: Some(EmailAddress::parse("old@example.jp").unwrap()) },
        E::EmailReachabilityChanged { reachable: false, slot: 1 },
        E::EmailReachabilityChanged { reachable: true, slot: 1 },
        E::CodeDestinationsOffered {
            flow_id: "f".into(),
            addresses: vec![OfferedAddress { slot: 1, destination: "t***@example.jp".into() }],
        },
        E::LoginPasswordChanged { temporary: true },
        E::LoginPasswordChanged { temporary: false },
        E::TradingPasswordChanged { temporary: true },
        started("f"),
        E::RegistrationStarted { flow_id: "f".into(), started_at: t0(), session: Some("s".into()), channel: Some(Channel::Web) },
        E::PasswordRejected { flow_id: "f".into(), purpose: FlowPurpose::PasswordLogin, consecutive_failures: 2, client: None },
        E::LoginLocked { consecutive_failures: 5, clients: vec!["192.0.2.1".into()] },
        issued("f", "c1", t0(), true),
        E::EmailCodeNotDelivered { flow_id: "f".into(), code_id: "c".into() },
        E::EmailCodeVerified { flow_id: "f".into(), code_id: "c".into(), factor: CodeFactor::EmailCode },
        E::EmailCodeVerified { flow_id: "f".into(), code_id: "c".into(), factor: CodeFactor::Totp },
        E::OneTimePasswordRequested { flow_id: "f".into(), code_id: "c".into(), expires_at: t0() },
        E::OtpDeviceRegistered { algorithm: "SHA1".into(), digits: 6, period: 30 },
        E::OtpDeviceRemoved {},
        E::EmailCodeRejected { flow_id: "f".into(), code_id: "c".into(), attempts_left: 2 },
        E::EmailCodeExpired { flow_id: "f".into(), code_id: "c".into() },
        E::EmailCodeExhausted { flow_id: "f".into(), code_id: "c".into() },
        registered("p1"),
        E::PasskeyRegistered {
            flow_id: None,
            passkey: new_passkey("p2"),
            bound_by: format!("{}passkey+trading_password", aggregate::SESSION_BINDING_PREFIX),
        },
        E::PasskeyRegistered { flow_id: None, passkey: new_passkey("p3"), bound_by: aggregate::OTP_DEVICE_BINDING.into() },
        E::CrossDeviceSignInSucceeded {
            sign_in_id: "x".into(),
            passkey_id: "p1".into(),
            credential_id: "c".into(),
            assertion: assertion(1),
            environment: Some(linux()),
            new_environment: true,
            second_factor_flow: None,
        },
        E::PasskeyBackupStateChanged { passkey_id: "p1".into(), backup_state: true },
        E::PasskeyBackupStateChanged { passkey_id: "p1".into(), backup_state: false },
        E::SecondFactorRequired { flow_id: "f".into() },
        E::LocalPasskeyAdded { passkey: new_passkey("p4"), cross_device_sign_in: Some("x".into()) },
        E::SessionStepUpPassed { how: crate::policy::SessionStepUp::TradingPassword, at: t0(), session: "s".into() },
        E::LocalPasskeyDeclined { cross_device_sign_in: None },
        E::TradingPasswordRejected { consecutive_failures: 1 },
        E::PasskeyDeletionLocked { consecutive_failures: 3 },
        E::PasskeysRevoked {
            passkeys: vec![RevokedPasskey { passkey_id: "p1".into(), credential_id: "c".into(), name: None }],
            revoked_by: Revoker::Customer,
        },
        E::PasskeysRevoked {
            passkeys: vec![RevokedPasskey {
                passkey_id: "p1".into(),
                credential_id: "c".into(),
                name: Some(PasskeyName::parse("iPhone").unwrap()),
            }],
            revoked_by: Revoker::Staff { staff: staff(), reason: "lost phone".into() },
        },
        E::LoginUnlocked { staff: staff(), reason: "identity confirmed".into() },
        E::LoginUnlocked { staff: staff(), reason: "device_replaced".into() },
        E::PasskeySuspended {
            passkey_id: "p1".into(),
            credential_id: "c".into(),
            name: Some(PasskeyName::parse("iPhone").unwrap()),
            reason: Refusal::CounterRegression,
            with_passkey: None,
        },
        E::PasskeySuspended {
            passkey_id: "p2".into(),
            credential_id: "c".into(),
            name: None,
            reason: Refusal::CounterRegression,
            with_passkey: Some("p1".into()),
        },
        E::PasskeyReinstated {
            passkey_id: "p1".into(),
            name: Some(PasskeyName::parse("iPhone").unwrap()),
            staff: staff(),
            reason: "the customer's own phone".into(),
        },
        E::PasskeysRevoked {
            passkeys: vec![RevokedPasskey { passkey_id: "p1".into(), credential_id: "c".into(), name: None }],
            revoked_by: Revoker::Staff { staff: staff(), reason: "device_lost".into() },
        },
        E::PasswordLoginSucceeded { flow_id: "f".into(), environment: Some(iphone_safari()), new_environment: false },
    ];
    for purpose in [FlowPurpose::Registration, FlowPurpose::PasswordLogin, FlowPurpose::SecondFactorLogin] {
        events.push(verified("f", purpose));
    }
    for authenticator in [LoginAuthenticator::SameDevice, LoginAuthenticator::SecurityKey, LoginAuthenticator::NotReported] {
        events.push(E::PasskeyLoginSucceeded {
            passkey_id: "p1".into(),
            credential_id: "c".into(),
            assertion: assertion(2),
            authenticator,
            environment: Some(windows_chrome()),
            new_environment: false,
            second_factor_flow: Some("f".into()),
        });
    }
    for because in [
        FlowClosure::LoginPasswordChanged,
        FlowClosure::LoginLocked,
        FlowClosure::EmailAddressChanged,
        FlowClosure::EmailUnreachable,
        FlowClosure::PasskeyBound,
        FlowClosure::CodeExhausted,
    ] {
        events.push(E::OpenFlowsClosed { flow_ids: vec!["f".into()], because });
    }
    for cause in [
        SessionEndCause::LoginPasswordChanged,
        SessionEndCause::EmailChanged,
        SessionEndCause::LoginLocked,
        SessionEndCause::PasskeysRevokedBySupport,
        SessionEndCause::PasskeyDeleted,
        SessionEndCause::PasskeySuspended,
        SessionEndCause::EndedByCustomer,
        SessionEndCause::ReportedByCustomer,
    ] {
        events.push(E::SessionsEnded { sessions: 2, cause });
    }
    events.push(E::PasskeysRevoked {
        passkeys: vec![RevokedPasskey {
            passkey_id: "p4".into(),
            credential_id: "c".into(),
            name: Some(PasskeyName::parse("Office PC").unwrap()),
        }],
        revoked_by: Revoker::ReportedByCustomer,
    });
    events.push(E::SuspiciousActivityReported {
        event_id: "0d5f1f7e-33c4-8a21-9b3e-1c2d3e4f5a6b".into(),
        sequence: 14,
        event_type: "PasskeyLoginSucceeded".into(),
        note: Some("I was asleep".into()),
        sessions_ended: 1,
        passkeys_revoked: vec!["p4".into()],
    });
    events.push(E::SuspiciousActivityReported {
        event_id: "0d5f1f7e-33c4-8a21-9b3e-1c2d3e4f5a6c".into(),
        sequence: 15,
        event_type: "EmailCodeIssued".into(),
        note: None,
        sessions_ended: 0,
        passkeys_revoked: vec![],
    });
    for kind in
        ["passkey_added", "passkeys_deleted", "login", "email_changed", "passkey_suspended", "passkey_reinstated", "activity_reported"]
    {
        events.push(E::SecurityNoticeSent { kind: kind.into(), destination: "t***@example.jp".into(), sent: true });
        events.push(E::SecurityNoticeSent { kind: kind.into(), destination: String::new(), sent: false });
    }
    for view in ["status", "history", "search"] {
        events.push(E::AccountViewedByStaff { staff: staff(), view: view.into() });
    }
    for reason in CEREMONY_ERRORS {
        events.push(E::PasskeyCeremonyAbandoned { flow_id: None, reason: reason.to_string() });
    }
    for step in ["password", "send_code", "email_code", "email_code_resend", "passkey"] {
        events.push(E::FlowStepRefused { flow_id: "f".into(), step: step.into(), reason: Refusal::WrongStep });
    }
    for &reason in Refusal::ALL {
        events.push(E::RegistrationRefused { flow_id: "f".into(), reason });
        events.push(E::PasswordLoginRefused { flow_id: "f".into(), reason });
        events.push(E::EmailCodeResendRefused { flow_id: "f".into(), reason });
        events.push(E::PasskeyRegistrationRefused { flow_id: "f".into(), reason, detail: "webauthn detail".into() });
        events.push(E::PasskeyLoginFailed { passkey_id: None, credential_id: "c".into(), reason, detail: String::new() });
        events.push(E::PasskeyAdditionRefused { reason });
        events.push(E::PasskeyDeletionRefused { reason });
    }
    events
}

fn every_staff_event() -> Vec<StaffEvent> {
    let filters = serde_json::json!({
        "account_id": "3f1c", "type": ["PasskeyRegistered", "LoginLocked"], "actor": "staff:s-1", "channel": "mobile_app",
        "from": 1795446000000_i64, "to": 1795532400000_i64,
    });
    vec![
        StaffEvent::AuditTrailQueried { filters: filters.clone() },
        StaffEvent::AuditTrailQueried { filters: serde_json::json!({}) },
        StaffEvent::AuditTrailQueried { filters: serde_json::json!({ "type": "PasskeyRegistered" }) },
        StaffEvent::AuditTrailExported { format: "csv".into(), filters },
        StaffEvent::AuditTrailVerified { ok: true, checked: 10, first_bad_position: None },
        StaffEvent::AuditTrailVerified { ok: false, checked: 10, first_bad_position: Some(4) },
        StaffEvent::SignalsListed { filters: serde_json::json!({ "status": "open", "kind": "shared_email", "account_id": null }) },
        StaffEvent::SignalReviewed {
            signal_id: "many_wrong_codes:3f1c:5".into(),
            outcome: ReviewOutcome::Confirmed,
            note: "family account".into(),
        },
        StaffEvent::SignalReviewed { signal_id: "sig-1".into(), outcome: ReviewOutcome::Dismissed, note: "known".into() },
        StaffEvent::SignalReviewed {
            signal_id: "many_login_ids_from_one_network:2001:db8:7::-48:40".into(),
            outcome: ReviewOutcome::Dismissed,
            note: "our pen test".into(),
        },
        StaffEvent::AdoptionReportRead { from: "2026-11-01".into(), to: "2026-11-30".into() },
        StaffEvent::AuditHeadRead { position: Some(12) },
        StaffEvent::AuditHeadRead { position: None },
        StaffEvent::AuditCheckpointRead { tree_size: Some(40), timestamp: false },
        StaffEvent::AuditCheckpointRead { tree_size: None, timestamp: true },
        StaffEvent::AuditCheckpointsListed { from: 1, to: 40 },
        StaffEvent::AuditInclusionProofRead { leaf_index: 3, tree_size: 40 },
        StaffEvent::AuditConsistencyProofRead { from_size: 20, to_size: 40 },
        StaffEvent::StaffTokenRevoked {},
        StaffEvent::StaffMemberAdded {
            staff_id: "s-2".into(),
            name: "Kato".into(),
            role: "compliance".into(),
            expires_at: Some(Utc.with_ymd_and_hms(2027, 2, 22, 3, 0, 0).unwrap()),
        },
        StaffEvent::StaffTokenRefused { reason: TokenRefusal::Revoked },
        StaffEvent::StaffTokenRefused { reason: TokenRefusal::Expired },
        StaffEvent::StaffAccessRefused { role: "support".into(), request: "GET /api/v1/audit/events".into() },
        StaffEvent::StaffAccessRefused { role: "compliance".into(), request: "POST /api/v1/staff/accounts/a1/unlock".into() },
        StaffEvent::StaffEnrolmentLinkIssued {
            staff_id: "s-3".into(),
            name: "Sato".into(),
            expires_at: Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap(),
        },
        StaffEvent::StaffTokenIssued {
            staff_id: "s-3".into(),
            name: "Sato".into(),
            expires_at: Utc.with_ymd_and_hms(2027, 2, 22, 3, 0, 0).unwrap(),
        },
        StaffEvent::ConsolePasskeyEnrolled { credential_id: "AbC".into(), provider: Some("Google Password Manager".into()) },
        StaffEvent::ConsolePasskeyEnrolled { credential_id: "AbC".into(), provider: None },
        StaffEvent::ConsoleSignedIn {},
        StaffEvent::ConsoleSignInRefused { reason: "disabled".into() },
        StaffEvent::ConsoleSignInRefused { reason: "unknown_passkey".into() },
        StaffEvent::ConsoleSignInRefused { reason: "counter_regression".into() },
        StaffEvent::ConsoleSignInRefused { reason: "invalid".into() },
        StaffEvent::ConsoleSignedOut { cause: "signed_out".into() },
        StaffEvent::ConsoleSignedOut { cause: "idle".into() },
        StaffEvent::ConsoleSignedOut { cause: "expired".into() },
        StaffEvent::StaffMemberDisabled { staff_id: "s-3".into(), name: "Sato".into(), sessions_ended: 2 },
        StaffEvent::WebhookSubscriptionAdded {
            subscription_id: "wh-1a2b".into(),
            url: "https://siem.example.jp/...".into(),
            format: "cloudevents".into(),
            types: vec![],
            batch_size: 100,
            personal_data: "masked".into(),
            from_position: 1,
        },
        StaffEvent::WebhookSubscriptionAdded {
            subscription_id: "wh-1a2c".into(),
            url: "https://siem.example.jp/".into(),
            format: "ocsf".into(),
            types: vec!["PasskeyLoginSucceeded".into()],
            batch_size: 10,
            personal_data: "full".into(),
            from_position: 40,
        },
        StaffEvent::WebhookSubscriptionDisabled { subscription_id: "wh-1a2b".into() },
        StaffEvent::WebhookReplayRequested { subscription_id: "wh-1a2b".into(), from_position: 7 },
        StaffEvent::WebhookSecretRotated {
            subscription_id: "wh-1a2b".into(),
            previous_valid_until: chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default(),
        },
    ]
}

fn every_system_event() -> Vec<SystemEvent> {
    serde_json::from_value(serde_json::json!([
        { "UnknownLoginIdRejected": { "login_id": "9999999", "purpose": "password_login" } },
        { "UnknownCredentialRejected": { "credential_id": "AbC" } },
        { "AttemptsThrottled": { "client": "192.0.2.7", "refused": 3, "window_secs": 60 } },
        { "LoginAttemptsThrottled": { "login_id": "9999999", "refused": 3, "window_secs": 60 } },
        { "WebhookSubscriptionDisabledAfterFailures": { "subscription_id": "wh-1a2b", "failing_since": "2026-11-20T00:00:00Z",
          "failures": 412, "last_error": "HTTP 503", "position": 1200 } },
    ]))
    .expect("the system events' shapes")
}

/// What a line in words may not contain.
fn raw_parts(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    if line.contains('{') || line.contains('}') {
        found.push("JSON".to_string());
    }
    for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.contains('_') {
            found.push(word.to_string());
        }
    }
    for code in ["Error", "1795", "(pc)"] {
        if line.contains(code) {
            found.push(code.to_string());
        }
    }
    found
}

#[test]
fn every_events_line_is_in_words_in_both_languages() {
    let mut lines: Vec<(String, Line)> = every_account_event().iter().map(|e| (e.event_type(), describe(e))).collect();
    lines.extend(every_staff_event().iter().map(|e| (e.event_type(), describe_staff(e))));
    lines.extend(every_system_event().iter().map(|e| (e.event_type(), describe_system(e))));
    let mut problems = Vec::new();
    for (event_type, line) in &lines {
        for raw in raw_parts(&line.en).into_iter().chain(raw_parts(&line.ja)) {
            problems.push(format!("{event_type}: {raw:?} in {line:?}"));
        }
        if line.ja.contains("UTC")
            || !line.ja.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{4e00}'..='\u{9fff}').contains(&c))
        {
            problems.push(format!("{event_type}: the Japanese line is not Japanese time and words: {}", line.ja));
        }
        if line.en.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)) {
            problems.push(format!("{event_type}: kana in the English line: {}", line.en));
        }
        if crate::words::event_type_words(event_type).is_none() {
            problems.push(format!("{event_type}: no words for the type"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The catalogue lists no event this test does not describe.
    let described: BTreeSet<&str> = lines.iter().map(|(t, _)| t.as_str()).collect();
    let catalogue = include_str!("../../../../docs/events.md");
    let listed: BTreeSet<&str> = catalogue
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| l.split(" | ").next().unwrap_or_default().split(" / "))
        .map(|name| name.trim_matches('`'))
        .filter(|name| name.chars().next().is_some_and(char::is_uppercase))
        .collect();
    let missing: Vec<_> = listed.difference(&described).collect();
    assert!(listed.len() > 50 && missing.is_empty(), "events without a line here: {missing:?}");
}

/// The customer's activity shows what happened to their account, phrased
/// for them: never a staff member's name, never a raw code, Japanese in the
/// Japanese line; the staff's reads and the ledger's bookkeeping not at all.
#[test]
fn the_customers_activity_is_in_their_words_and_leaves_out_staff_reads() {
    use crate::account::activity::{for_customer, Terms, CUSTOMER_EVENT_TYPES, KINDS};
    let terms = Terms::default();
    let mut problems = Vec::new();
    let mut shown = BTreeSet::new();
    for event in every_account_event() {
        let event_type = event.event_type();
        let item = for_customer(&event, &terms);
        if item.is_some() != CUSTOMER_EVENT_TYPES.contains(&event_type.as_str()) {
            problems.push(format!("{event_type}: shown: {}", item.is_some()));
        }
        let Some(item) = item else { continue };
        shown.insert(event_type.clone());
        if !KINDS.contains(&item.kind) {
            problems.push(format!("{event_type}: kind {} is not listed", item.kind));
        }
        for line in [&item.line.en, &item.line.ja] {
            if line.contains("Sato") || line.contains("s-1") {
                problems.push(format!("{event_type}: a staff member named: {line}"));
            }
            for raw in raw_parts(line) {
                problems.push(format!("{event_type}: {raw:?} in {line}"));
            }
        }
        if !item.line.ja.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)) {
            problems.push(format!("{event_type}: the Japanese line has no kana: {}", item.line.ja));
        }
        if item.line.en.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c) && !item.line.en.contains("パソコン")) {
            problems.push(format!("{event_type}: kana in the English line: {}", item.line.en));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let listed: BTreeSet<String> = CUSTOMER_EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(shown, listed, "every listed type has a sample here");
}

#[test]
fn the_trading_password_is_named_as_the_deployment_names_it() {
    use crate::account::activity::{for_customer, Terms};
    let terms = Terms { trading_password_en: "trading PIN".into(), trading_password_ja: "取引パスワード".into() };
    let item = for_customer(&AccountEvent::TradingPasswordRejected { consecutive_failures: 1 }, &terms).unwrap();
    assert_eq!(item.line.ja, "誤った取引パスワードが入力されました。");
    assert_eq!(item.line.en, "A wrong trading PIN was entered.");
    // Also in a refusal's words, shared with the support desk's lines.
    let refused = for_customer(&AccountEvent::PasskeyAdditionRefused { reason: Refusal::TradingPasswordLocked }, &terms).unwrap();
    assert!(refused.line.ja.contains("取引パスワード") && !refused.line.ja.contains("執行パスワード"), "{}", refused.line.ja);
}

#[test]
fn a_device_is_named_as_people_name_it() {
    assert_eq!(windows_chrome().device_words(), ("Windows PC (Chrome)".to_string(), "Windows のパソコン（Chrome）".to_string()));
    assert_eq!(iphone_safari().device_words(), ("iPhone (Safari)".to_string(), "iPhone（Safari）".to_string()));
    let login = AccountEvent::PasswordLoginSucceeded { flow_id: "f".into(), environment: Some(iphone_safari()), new_environment: false };
    let item = crate::account::activity::for_customer(&login, &Default::default()).unwrap();
    assert_eq!(item.line.ja, "パスワードとメール認証コードでログインしました（iPhone（Safari））。");
}

#[test]
fn times_in_lines_are_japan_time_to_the_second() {
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 17, 22, 37).unwrap();
    let line = describe(&AccountEvent::EmailCodeIssued {
        flow_id: "f".into(),
        code_id: "c".into(),
        destination: "t***@example.jp".into(),
        slot: 1,
        issued_at: at,
        expires_at: at,
        resend: false,
    });
    assert!(line.en.contains("2026-11-24 02:22:37 JST"), "{}", line.en);
    assert!(line.ja.contains("有効期限 2026-11-24 02:22:37（日本時間）"), "{}", line.ja);
    let queried = describe_staff(&StaffEvent::AuditTrailQueried { filters: serde_json::json!({ "from": 1795446000000_i64 }) });
    assert_eq!(queried.ja, "監査証跡を照会しました（2026-11-24 00:00:00（日本時間）から）。");
    assert_eq!(queried.en, "The audit trail was queried (from 2026-11-24 00:00:00 JST).");
}

#[test]
fn a_browser_that_reports_no_version_reads_without_one() {
    assert_eq!(linux().describe(), "Firefox / Linux (PC)");
    assert_eq!(windows_chrome().describe(), "Chrome 148.0.0 / Windows 11 24H2 (PC)");
}

#[test]
fn a_review_of_a_spray_names_where_it_came_from_not_an_account() {
    let reviewed = describe_staff(&StaffEvent::SignalReviewed {
        signal_id: "many_login_ids_from_one_network:2001:db8:7::-48:40".into(),
        outcome: ReviewOutcome::Dismissed,
        note: "our pen test".into(),
    });
    assert!(reviewed.en.contains("(many login IDs from one network) from 2001:db8:7::/48 was reviewed"), "{}", reviewed.en);
    assert!(reviewed.ja.contains("（接続元 2001:db8:7::/48）"), "{}", reviewed.ja);
    let account = describe_staff(&StaffEvent::SignalReviewed {
        signal_id: "many_wrong_codes:3f1c:5".into(),
        outcome: ReviewOutcome::Confirmed,
        note: "n".into(),
    });
    assert!(account.en.contains("on account 3f1c"), "{}", account.en);
}
