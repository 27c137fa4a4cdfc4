//! An account's events as its customer sees them: "recent security
//! activity" (最近のセキュリティ履歴). The same events as the support
//! desk's timeline, phrased for the customer: "you", the device as people
//! name it, the support desk never by a staff member's name. Staff reads of
//! the account and the ledger's own bookkeeping (procedure steps, closed
//! flows, reachability) are not shown.

use super::describe::{login_words, Line};
use super::events::{AccountEvent, LoginAuthenticator, Revoker, SessionEndCause};
use crate::values::Environment;

/// Words a deployment chooses for its customers: the trading password is
/// 執行パスワード at one brokerage (seed 000) and 取引パスワード at others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub trading_password_en: String,
    pub trading_password_ja: String,
}

impl Default for Terms {
    fn default() -> Self {
        Terms { trading_password_en: "trading password".into(), trading_password_ja: "執行パスワード".into() }
    }
}

/// One event of the customer's activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerActivity {
    /// `login`, `login_failed`, `code_issued`, `passkey_added`, ... (the
    /// list in [`KINDS`]).
    pub kind: &'static str,
    pub line: Line,
    /// The customer may say "this wasn't me" about it: something that
    /// happened on the account, not a refusal that stopped an attempt.
    pub reportable: bool,
    /// The passkey the event logged in with or added: what a report revokes.
    pub passkey_id: Option<String>,
    /// The device, when the event tells it.
    pub environment: Option<Environment>,
}

/// Every kind an activity item may have.
pub const KINDS: &[&str] = &[
    "login",
    "login_failed",
    "locked",
    "unlocked",
    "code_issued",
    "code_failed",
    "passkey_added",
    "passkey_not_added",
    "passkey_declined",
    "passkey_deleted",
    "passkey_suspended",
    "passkey_reinstated",
    "email_changed",
    "password_changed",
    "trading_password",
    "otp_device",
    "notice_sent",
    "sessions_ended",
    "reported",
];

/// The event types a customer's activity shows (the others are the
/// ledger's bookkeeping or staff reads).
pub const CUSTOMER_EVENT_TYPES: &[&str] = &[
    "EmailAddressChanged",
    "LoginPasswordChanged",
    "TradingPasswordChanged",
    "PasswordRejected",
    "LoginLocked",
    "PasswordLoginRefused",
    "EmailCodeIssued",
    "EmailCodeNotDelivered",
    "OneTimePasswordRequested",
    "OtpDeviceRegistered",
    "OtpDeviceRemoved",
    "EmailCodeRejected",
    "EmailCodeExpired",
    "EmailCodeExhausted",
    "PasskeyRegistered",
    "PasskeyRegistrationRefused",
    "PasskeyLoginSucceeded",
    "PasskeyLoginFailed",
    "PasswordLoginSucceeded",
    "CrossDeviceSignInSucceeded",
    "LocalPasskeyAdded",
    "PasskeyAdditionRefused",
    "LocalPasskeyDeclined",
    "TradingPasswordRejected",
    "PasskeyDeletionLocked",
    "PasskeysRevoked",
    "PasskeySuspended",
    "PasskeyReinstated",
    "LoginUnlocked",
    "SecurityNoticeSent",
    "SessionsEnded",
    "SuspiciousActivityReported",
];

fn line(en: impl Into<String>, ja: impl Into<String>) -> Line {
    Line { en: en.into(), ja: ja.into() }
}

/// " from iPhone (Safari)", "（iPhone（Safari））".
fn from_device(environment: &Option<Environment>) -> (String, String) {
    match environment {
        Some(e) => {
            let (en, ja) = e.device_words();
            (format!(" from {en}"), format!("（{ja}）"))
        }
        None => (String::new(), String::new()),
    }
}

fn passkey_named(name: &Option<crate::values::PasskeyName>) -> (String, String) {
    match name {
        Some(n) => (format!(" \"{}\"", n.as_str()), format!("「{}」", n.as_str())),
        None => (String::new(), String::new()),
    }
}

/// The event as the customer's activity shows it; None for what it leaves out.
pub fn for_customer(event: &AccountEvent, terms: &Terms) -> Option<CustomerActivity> {
    // A refusal's words are shared with the support desk's lines, which
    // name the trading password as seed 000 does: in the deployment's term here.
    phrased(event, terms).map(|mut item| {
        item.line.ja = item.line.ja.replace("執行パスワード", &terms.trading_password_ja);
        item.line.en = item.line.en.replace("trading password", &terms.trading_password_en);
        item
    })
}

fn phrased(event: &AccountEvent, terms: &Terms) -> Option<CustomerActivity> {
    use AccountEvent as E;
    let item =
        |kind: &'static str, line: Line, reportable: bool| CustomerActivity { kind, line, reportable, passkey_id: None, environment: None };
    let (tp_en, tp_ja) = (terms.trading_password_en.as_str(), terms.trading_password_ja.as_str());
    Some(match event {
        E::PasskeyLoginSucceeded { passkey_id, authenticator, environment, second_factor_flow, .. } => {
            let (how_en, how_ja) = match (authenticator, second_factor_flow) {
                (_, Some(_)) => login_words("password_and_passkey"),
                (LoginAuthenticator::SecurityKey, _) => login_words("security_key"),
                _ => login_words("passkey"),
            };
            let (d_en, d_ja) = from_device(environment);
            CustomerActivity {
                passkey_id: Some(passkey_id.clone()),
                environment: environment.clone(),
                ..item("login", line(format!("You logged in with {how_en}{d_en}."), format!("{how_ja}でログインしました{d_ja}。")), true)
            }
        }
        E::CrossDeviceSignInSucceeded { passkey_id, environment, .. } => {
            let (d_en, d_ja) = from_device(environment);
            CustomerActivity {
                passkey_id: Some(passkey_id.clone()),
                environment: environment.clone(),
                ..item(
                    "login",
                    line(
                        format!("You logged in{d_en} with your smartphone's passkey (cross-device sign-in)."),
                        format!("スマートフォンのパスキーでログインしました（クロスデバイス認証）{d_ja}。"),
                    ),
                    true,
                )
            }
        }
        E::PasswordLoginSucceeded { environment, .. } => {
            let (d_en, d_ja) = from_device(environment);
            CustomerActivity {
                environment: environment.clone(),
                ..item(
                    "login",
                    line(
                        format!("You logged in with your password and an e-mailed code{d_en}."),
                        format!("パスワードとメール認証コードでログインしました{d_ja}。"),
                    ),
                    true,
                )
            }
        }
        E::PasskeyLoginFailed { reason, .. } => {
            let (en, ja) = reason.words();
            item(
                "login_failed",
                line(format!("A passkey login was refused: {en}."), format!("パスキーでのログインを受け付けませんでした（{ja}）。")),
                false,
            )
        }
        E::PasswordRejected { .. } => {
            item("login_failed", line("A wrong login password was entered.", "誤ったログインパスワードが入力されました。"), false)
        }
        E::PasswordLoginRefused { reason, .. } => {
            let (en, ja) = reason.words();
            item(
                "login_failed",
                line(format!("A password login was refused: {en}."), format!("パスワードでのログインを受け付けませんでした（{ja}）。")),
                false,
            )
        }
        E::LoginLocked { .. } => item(
            "locked",
            line(
                "Login was locked after wrong passwords. Please contact the support desk.",
                "誤ったパスワードが続いたため、ログインをロックしました。サポートデスクへお問い合わせください。",
            ),
            false,
        ),
        E::PasskeyDeletionLocked { .. } => item(
            "locked",
            line(
                format!("Passkey deletion was locked after wrong {tp_en}s."),
                format!("{tp_ja}の誤りが続いたため、パスキーの削除をロックしました。"),
            ),
            false,
        ),
        E::LoginUnlocked { .. } => {
            item("unlocked", line("The support desk lifted the lock.", "サポートデスクにてロックを解除しました。"), false)
        }
        E::EmailCodeIssued { destination, resend, .. } => {
            let again = if *resend { " again" } else { "" };
            item(
                "code_issued",
                line(
                    format!("A confirmation code was e-mailed{again} to {destination}."),
                    format!("認証コードを {destination} へ送信しました。"),
                ),
                true,
            )
        }
        E::OneTimePasswordRequested { .. } => item(
            "code_issued",
            line("A one-time password from your OTP device was asked for.", "ワンタイムパスワードの入力を求めました。"),
            true,
        ),
        E::EmailCodeNotDelivered { .. } => {
            item("code_failed", line("A confirmation code could not be e-mailed.", "認証コードをメールで送信できませんでした。"), false)
        }
        E::EmailCodeRejected { .. } => {
            item("code_failed", line("A wrong confirmation code was entered.", "誤った認証コードが入力されました。"), false)
        }
        E::EmailCodeExpired { .. } => {
            item("code_failed", line("An expired confirmation code was entered.", "有効期限切れの認証コードが入力されました。"), false)
        }
        E::EmailCodeExhausted { .. } => item(
            "code_failed",
            line("A confirmation code was entered wrongly too many times.", "認証コードの入力誤りが上限に達しました。"),
            false,
        ),
        E::PasskeyRegistered { passkey, .. } | E::LocalPasskeyAdded { passkey, .. } => {
            let (n_en, n_ja) = passkey_named(&Some(passkey.name.clone()));
            let (d_en, d_ja) = from_device(&passkey.environment);
            CustomerActivity {
                passkey_id: Some(passkey.passkey_id.clone()),
                environment: passkey.environment.clone(),
                ..item(
                    "passkey_added",
                    line(format!("Passkey{n_en} was registered{d_en}."), format!("パスキー{n_ja}を登録しました{d_ja}。")),
                    true,
                )
            }
        }
        E::PasskeyRegistrationRefused { reason, .. } | E::PasskeyAdditionRefused { reason } => {
            let (en, ja) = reason.words();
            item(
                "passkey_not_added",
                line(format!("A passkey was not registered: {en}."), format!("パスキーを登録できませんでした（{ja}）。")),
                false,
            )
        }
        E::LocalPasskeyDeclined { .. } => item(
            "passkey_declined",
            line("You chose not to create a passkey on the device you logged in with.", "ログインした端末でのパスキー作成を見送りました。"),
            false,
        ),
        E::PasskeysRevoked { passkeys, revoked_by } => {
            let names: Vec<String> = passkeys.iter().map(|p| passkey_named(&p.name).1).collect();
            let names_en: Vec<String> = passkeys.iter().map(|p| passkey_named(&p.name).0).collect();
            let n = passkeys.len();
            let (en, ja) = match revoked_by {
                Revoker::Customer => {
                    (format!("You deleted {n} passkey(s){}.", names_en.join(",")), format!("パスキー{}を削除しました。", names.join("、")))
                }
                Revoker::Staff { .. } => (
                    format!("The support desk deleted {n} passkey(s){}.", names_en.join(",")),
                    format!("サポートデスクにてパスキー{}を削除しました。", names.join("、")),
                ),
                Revoker::ReportedByCustomer => (
                    format!("After your report, we deleted passkey(s){}.", names_en.join(",")),
                    format!("ご報告を受けて、パスキー{}を削除しました。", names.join("、")),
                ),
            };
            item("passkey_deleted", line(en, ja), false)
        }
        E::PasskeySuspended { name, .. } => {
            let (n_en, n_ja) = passkey_named(name);
            item(
                "passkey_suspended",
                line(
                    format!("Passkey{n_en} was suspended for your safety. Please contact the support desk."),
                    format!("安全のため、パスキー{n_ja}を一時停止しました。サポートデスクへお問い合わせください。"),
                ),
                false,
            )
        }
        E::PasskeyReinstated { name, .. } => {
            let (n_en, n_ja) = passkey_named(name);
            item(
                "passkey_reinstated",
                line(
                    format!("The support desk lifted the suspension of passkey{n_en}."),
                    format!("サポートデスクにてパスキー{n_ja}の一時停止を解除しました。"),
                ),
                false,
            )
        }
        E::EmailAddressChanged { slot, .. } => {
            let which = if *slot == 2 { "2" } else { "" };
            item(
                "email_changed",
                line(
                    format!("Your registered e-mail address{} was changed.", if *slot == 2 { " 2" } else { "" }),
                    format!("登録メールアドレス{which}が変更されました。"),
                ),
                true,
            )
        }
        E::LoginPasswordChanged { .. } => {
            item("password_changed", line("Your login password was changed.", "ログインパスワードが変更されました。"), true)
        }
        E::TradingPasswordChanged { .. } => {
            item("trading_password", line(format!("Your {tp_en} was changed."), format!("{tp_ja}が変更されました。")), true)
        }
        E::TradingPasswordRejected { .. } => {
            item("trading_password", line(format!("A wrong {tp_en} was entered."), format!("誤った{tp_ja}が入力されました。")), false)
        }
        E::OtpDeviceRegistered { .. } => {
            item("otp_device", line("The one-time password service was set up.", "ワンタイムパスワードサービスを登録しました。"), true)
        }
        E::OtpDeviceRemoved { .. } => {
            item("otp_device", line("The one-time password service was removed.", "ワンタイムパスワードサービスを解除しました。"), true)
        }
        E::SecurityNoticeSent { kind, destination, sent } => {
            let (what_en, what_ja) = notice_words(kind);
            let (en, ja) = if *sent {
                (
                    format!("A notice ({what_en}) was e-mailed to {destination}."),
                    format!("お知らせ（{what_ja}）を {destination} へ送信しました。"),
                )
            } else {
                (
                    format!("A notice ({what_en}) could not be e-mailed to {destination}."),
                    format!("お知らせ（{what_ja}）を {destination} へ送信できませんでした。"),
                )
            };
            item("notice_sent", line(en, ja), false)
        }
        E::SessionsEnded { sessions, cause } => {
            let (en, ja) = match cause {
                SessionEndCause::LoginPasswordChanged => ("your login password was changed", "ログインパスワードの変更"),
                SessionEndCause::EmailChanged => ("your e-mail address was changed", "メールアドレスの変更"),
                SessionEndCause::LoginLocked => ("login was locked", "ログインのロック"),
                SessionEndCause::PasskeysRevokedBySupport => ("the support desk deleted passkeys", "サポートデスクによるパスキーの削除"),
                SessionEndCause::PasskeyDeleted => ("the passkey they used was deleted", "ログインに使ったパスキーの削除"),
                SessionEndCause::PasskeySuspended => ("the passkey they used was suspended", "ログインに使ったパスキーの一時停止"),
                SessionEndCause::EndedByCustomer => ("you signed them out", "ログアウト操作"),
                SessionEndCause::ReportedByCustomer => ("you reported activity as not yours", "身に覚えのない操作のご報告"),
            };
            item(
                "sessions_ended",
                line(
                    format!("{sessions} signed-in device(s) were signed out: {en}."),
                    format!("ログイン中の端末{sessions}台をログアウトしました（{ja}）。"),
                ),
                false,
            )
        }
        E::SuspiciousActivityReported { sessions_ended, passkeys_revoked, .. } => {
            let (mut ja, mut en) =
                ("身に覚えのない操作をご報告いただきました。".to_string(), "You reported activity as not yours.".to_string());
            if *sessions_ended > 0 {
                ja.push_str(&format!("他の端末{sessions_ended}台をログアウトしました。"));
                en.push_str(&format!(" {sessions_ended} other device(s) were logged out."));
            }
            if !passkeys_revoked.is_empty() {
                ja.push_str(&format!("使われたパスキー{}件を削除しました。", passkeys_revoked.len()));
                en.push_str(&format!(" {} passkey(s) it used were deleted.", passkeys_revoked.len()));
            }
            ja.push_str("内容は当社で確認いたします。");
            en.push_str(" We will look into it.");
            item("reported", line(en, ja), false)
        }
        E::AccountOpened { .. }
        | E::EmailReachabilityChanged { .. }
        | E::CodeDestinationsOffered { .. }
        | E::RegistrationStarted { .. }
        | E::PasswordVerified { .. }
        | E::OpenFlowsClosed { .. }
        | E::RegistrationRefused { .. }
        | E::EmailCodeVerified { .. }
        | E::EmailCodeResendRefused { .. }
        | E::FlowStepRefused { .. }
        | E::PasskeyBackupStateChanged { .. }
        | E::SecondFactorRequired { .. }
        | E::PasskeyCeremonyAbandoned { .. }
        | E::SessionStepUpPassed { .. }
        | E::PasskeyDeletionRefused { .. }
        | E::AccountViewedByStaff { .. } => return None,
    })
}

/// A security notice's kind, in the customer's words.
fn notice_words(kind: &str) -> (&str, &str) {
    match kind {
        "passkey_added" => ("passkey registered", "パスキーの登録"),
        "passkeys_deleted" => ("passkeys deleted", "パスキーの削除"),
        "login" => ("new login", "ログイン"),
        "email_changed" => ("e-mail address changed", "メールアドレスの変更"),
        "passkey_suspended" => ("passkey suspended", "パスキーの一時停止"),
        "passkey_reinstated" => ("passkey suspension lifted", "パスキーの一時停止の解除"),
        "activity_reported" => ("your report received", "ご報告の受付"),
        _ => ("security", "セキュリティ"),
    }
}
