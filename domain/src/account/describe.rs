//! Every event as a line a support operator or an auditor can read, in
//! English and Japanese. Never includes a secret: events hold none.

use super::events::{AccountEvent, FlowClosure, FlowPurpose, HolderKind, LoginAuthenticator, RevokedPasskey, Revoker, SessionEndCause};
use crate::japan::japan_time_words;
use crate::values::Environment;

/// A readable line in both languages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    pub en: String,
    pub ja: String,
}

fn line(en: impl Into<String>, ja: impl Into<String>) -> Line {
    Line { en: en.into(), ja: ja.into() }
}

fn purpose(p: FlowPurpose) -> (&'static str, &'static str) {
    match p {
        FlowPurpose::Registration => ("passkey registration", "パスキー登録"),
        FlowPurpose::PasswordLogin => ("password + e-mail code login", "パスワード＋メール認証コードでのログイン"),
        FlowPurpose::SecondFactorLogin => ("login with passkey as second factor", "パスキーを第二要素とするログイン"),
    }
}

/// One passkey by its name, or its ID when it has none.
fn named(passkey_id: &str, name: &Option<crate::values::PasskeyName>) -> String {
    name.as_ref().map(|n| format!("\"{}\"", n.as_str())).unwrap_or_else(|| passkey_id.to_string())
}

fn names(passkeys: &[RevokedPasskey]) -> String {
    passkeys.iter().map(|p| named(&p.passkey_id, &p.name)).collect::<Vec<_>>().join(", ")
}

fn env(e: &Option<Environment>) -> String {
    match e {
        Some(e) => {
            let flag = match e.recommended {
                Some(true) => "",
                Some(false) => ", not a recommended environment",
                None => ", recommended environment unknown",
            };
            format!(" from {}{flag}", e.describe())
        }
        None => String::new(),
    }
}

fn env_ja(e: &Option<Environment>) -> String {
    match e {
        Some(e) => {
            let flag = match e.recommended {
                Some(true) => "",
                Some(false) => "・推奨環境外",
                None => "・推奨環境か判定不可",
            };
            format!("（{}{flag}）", e.describe())
        }
        None => String::new(),
    }
}

/// How a session was opened, in words.
pub fn login_words(method: &str) -> (&'static str, &'static str) {
    match method {
        "password_and_email_code" => ("password + e-mail code", "パスワード＋メール認証コード"),
        "password_and_otp_device" => ("password + OTP device", "パスワード＋ワンタイムパスワード"),
        "passkey" | "passkey_registration" => ("a passkey", "パスキー"),
        "cross_device" => ("a cross-device sign-in", "クロスデバイス認証"),
        "security_key" => ("a security key", "セキュリティキー"),
        "password_and_passkey" => ("password + passkey", "パスワード＋パスキー"),
        _ => ("another method", "その他の方法"),
    }
}

/// A step of a procedure, as `FlowStepRefused` names it, in words.
fn step_words(step: &str) -> (&str, &str) {
    match step {
        "password" => ("login password", "ログインパスワードの入力"),
        "send_code" => ("sending the code", "認証コードの送信"),
        "email_code" => ("entering the code", "認証コードの入力"),
        "email_code_resend" => ("sending the code again", "認証コードの再送"),
        "passkey" => ("passkey", "パスキーの操作"),
        other => (other, other),
    }
}

/// The DOMException names `navigator.credentials.create` rejects with: the
/// only reasons a page may report for an abandoned passkey creation.
pub const CEREMONY_ERRORS: &[&str] = &[
    "NotAllowedError",
    "AbortError",
    "InvalidStateError",
    "SecurityError",
    "NotSupportedError",
    "ConstraintError",
    "TimeoutError",
    "UnknownError",
];

/// Why the browser ended passkey creation (its error's name), in words.
fn ceremony_words(reason: &str) -> (&str, &str) {
    match reason {
        "NotAllowedError" => ("cancelled, or timed out", "キャンセルまたは時間切れ"),
        "AbortError" => ("stopped by the page", "画面により中止"),
        "InvalidStateError" => ("the device already holds a passkey for this account", "この端末には既にこの口座のパスキーがある"),
        "SecurityError" => ("refused by the browser's security checks", "ブラウザのセキュリティ確認で拒否"),
        "NotSupportedError" => ("the device or browser does not support it", "端末またはブラウザが非対応"),
        "ConstraintError" => ("the device cannot meet the requirements", "端末が要件を満たさない"),
        "UnknownError" => ("an error in the device", "端末内のエラー"),
        "TimeoutError" => ("timed out", "時間切れ"),
        other => (other, other),
    }
}

/// A security notice's kind, in words.
fn notice_words(kind: &str) -> (&str, &str) {
    match kind {
        "passkey_added" => ("passkey added", "パスキーの登録"),
        "passkeys_deleted" => ("passkeys deleted", "パスキーの削除"),
        "login" => ("login", "ログイン"),
        "email_changed" => ("e-mail address changed", "メールアドレスの変更"),
        "passkey_suspended" => ("passkey suspended", "パスキーの一時停止"),
        "passkey_reinstated" => ("passkey suspension lifted", "パスキーの一時停止の解除"),
        "activity_reported" => ("the customer's report received", "不審な操作のご報告の受付"),
        other => (other, other),
    }
}

/// A reason support gave: the suggested ones in words, any other as typed.
fn staff_reason_words(reason: &str) -> (&str, &str) {
    match reason {
        "device_lost" => ("the device was lost", "端末の紛失"),
        "device_replaced" => ("the device was replaced", "端末の機種変更"),
        "device_stolen" => ("the device was stolen", "端末の盗難"),
        other => (other, other),
    }
}

/// What a staff member read, in words.
fn view_words(view: &str) -> (&str, &str) {
    match view {
        "status" => ("status", "口座の状況"),
        "history" => ("history", "操作履歴"),
        "search" => ("entry in a search", "検索結果の口座情報"),
        other => (other, other),
    }
}

/// The event as one line in English and Japanese.
pub fn describe(event: &AccountEvent) -> Line {
    use AccountEvent as E;
    match event {
        E::AccountOpened { login_id, holder_kind, email, password_temporary } => {
            let (kind_en, kind_ja) = match holder_kind {
                HolderKind::Individual => ("individual", "個人"),
                HolderKind::Family => ("family", "家族"),
                HolderKind::Corporate => ("corporate", "法人"),
            };
            let mail = if email.is_some() { "with an e-mail address" } else { "without an e-mail address" };
            let temp = if *password_temporary { ", temporary password" } else { "" };
            line(
                format!("Account {} opened by the core system ({kind_en}, {mail}{temp}).", login_id.as_str()),
                format!(
                    "基幹システムが口座 {} を開設しました（{kind_ja}、{}{}）。",
                    login_id.as_str(),
                    if email.is_some() { "メールアドレスあり" } else { "メールアドレスなし" },
                    if *password_temporary { "、仮パスワード" } else { "" }
                ),
            )
        }
        E::EmailAddressChanged { email, slot, previous: Some(previous) } => line(
            format!("Registered e-mail address {slot} was changed from {} to {}.", previous.masked(), email.masked()),
            format!("登録メールアドレス{slot}が {} から {} に変更されました。", previous.masked(), email.masked()),
        ),
        E::EmailAddressChanged { email, slot, previous: None } => line(
            format!("Registered e-mail address {slot} was changed to {}.", email.masked()),
            format!("登録メールアドレス{slot}が {} に変更されました。", email.masked()),
        ),
        E::EmailReachabilityChanged { reachable: true, slot } => {
            line(format!("E-mail address {slot} receives mail again."), format!("メールアドレス{slot}が再び受信可能になりました。"))
        }
        E::EmailReachabilityChanged { reachable: false, slot } => line(
            format!("E-mail address {slot} was reported as unable to receive mail."),
            format!("メールアドレス{slot}が受信不能と報告されました。"),
        ),
        E::CodeDestinationsOffered { addresses, .. } => {
            let list = addresses.iter().map(|a| format!("{}: {}", a.slot, a.destination)).collect::<Vec<_>>().join(", ");
            line(
                format!("The customer was asked which address the code goes to ({list})."),
                format!("認証コードの送信先メールアドレスの選択を求めました（{list}）。"),
            )
        }
        E::LoginPasswordChanged { temporary } => {
            if *temporary {
                line("A temporary login password was issued.", "仮ログインパスワードが発行されました。")
            } else {
                line("The login password was changed.", "ログインパスワードが変更されました。")
            }
        }
        E::TradingPasswordChanged { temporary } => line(
            format!(
                "The trading password was reissued by the core system{}; passkeys unchanged, passkey deletion unlocked.",
                if *temporary { " (temporary)" } else { "" }
            ),
            format!(
                "基幹システムが執行パスワードを再発行しました{}。パスキーはそのまま、削除のロックは解除されました。",
                if *temporary { "（仮パスワード）" } else { "" }
            ),
        ),
        E::RegistrationStarted { session: Some(_), .. } => line(
            "Passkey registration from the signed-in session started (a code was asked for).",
            "ログイン中の画面からパスキー登録を開始しました（認証コードの送信を依頼）。",
        ),
        E::RegistrationStarted { .. } => {
            line("Passkey registration started (login ID entered).", "パスキー登録を開始しました（ログインID入力）。")
        }
        E::PasswordVerified { purpose: p, .. } => {
            let (en, ja) = purpose(*p);
            line(format!("Login password verified for {en}."), format!("{ja}のためのログインパスワードを確認しました。"))
        }
        E::PasswordRejected { consecutive_failures, purpose: p, .. } => {
            let (en, ja) = purpose(*p);
            line(
                format!("Wrong login password for {en} ({consecutive_failures} in a row)."),
                format!("{ja}でログインパスワードが誤っていました（連続{consecutive_failures}回目）。"),
            )
        }
        E::LoginLocked { consecutive_failures, clients } => {
            let (from_en, from_ja) = if clients.is_empty() {
                (String::new(), String::new())
            } else {
                (format!(" (from {})", clients.join(", ")), format!("（接続元 {}）", clients.join("、")))
            };
            line(
                format!("Login locked after {consecutive_failures} wrong passwords{from_en}."),
                format!("パスワードの誤りが{consecutive_failures}回続いたため、ログインをロックしました{from_ja}。"),
            )
        }
        E::RegistrationRefused { reason, .. } => {
            let (en, ja) = reason.words();
            line(format!("Passkey registration refused: {en}."), format!("パスキー登録を受け付けませんでした（{ja}）。"))
        }
        E::PasswordLoginRefused { reason, .. } => {
            let (en, ja) = reason.words();
            line(format!("Password login refused: {en}."), format!("パスワードでのログインを受け付けませんでした（{ja}）。"))
        }
        E::EmailCodeIssued { destination, expires_at, resend, .. } => {
            let again = if *resend { " again" } else { "" };
            let (until_en, until_ja) = japan_time_words(*expires_at);
            line(
                format!("A one-time code was e-mailed{again} to {destination}, valid until {until_en}."),
                format!("認証コードを {destination} に{}送信しました（有効期限 {until_ja}）。", if *resend { "再" } else { "" }),
            )
        }
        E::EmailCodeVerified { factor: super::events::CodeFactor::Totp, .. } => line(
            "The one-time password of the customer's OTP device was entered correctly.",
            "ワンタイムパスワード（OTPサービス）が正しく入力されました。",
        ),
        E::EmailCodeVerified { .. } => line(
            "The e-mailed code was entered correctly (the address is confirmed; not an authentication factor).",
            "メールの認証コードが正しく入力されました（メールアドレスの確認であり、認証要素ではありません）。",
        ),
        E::EmailCodeRejected { attempts_left, .. } => line(
            format!("A wrong code was entered ({attempts_left} attempts left)."),
            format!("誤った認証コードが入力されました（残り{attempts_left}回）。"),
        ),
        E::EmailCodeExpired { .. } => line("A code was entered after it expired.", "有効期限切れの認証コードが入力されました。"),
        E::EmailCodeExhausted { .. } => {
            line("The code's attempts were used up; the flow was closed.", "認証コードの入力回数の上限に達したため、手続きを終了しました。")
        }
        E::EmailCodeResendRefused { reason, .. } => {
            let (en, ja) = reason.words();
            line(format!("A new code was refused: {en}."), format!("認証コードの再送を受け付けませんでした（{ja}）。"))
        }
        E::FlowStepRefused { step, reason, .. } => {
            let (step_en, step_ja) = step_words(step);
            let (en, ja) = reason.words();
            line(format!("The step \"{step_en}\" was refused: {en}."), format!("「{step_ja}」を受け付けませんでした（{ja}）。"))
        }
        E::PasskeyRegistered { passkey, bound_by, .. } => {
            let (how_en, how_ja) = match bound_by.strip_prefix(super::aggregate::SESSION_BINDING_PREFIX) {
                Some(rest) => {
                    let (method, confirmed) = rest.split_once('+').unwrap_or((rest, ""));
                    let (login_en, login_ja) = login_words(method);
                    let (by_en, by_ja) = match confirmed {
                        "trading_password" => ("the trading password", "執行パスワード"),
                        "email_code" => ("an e-mailed code", "メールの認証コード"),
                        "otp_device" => ("the OTP device", "ワンタイムパスワード（OTPサービス）"),
                        _ => ("no further confirmation", "追加の確認なし"),
                    };
                    (
                        format!("from a session opened by {login_en}, confirmed by {by_en}"),
                        format!("{login_ja}でのログイン中に、{by_ja}で確認"),
                    )
                }
                None if bound_by == super::aggregate::OTP_DEVICE_BINDING => {
                    ("login password + the OTP device".to_string(), "ログインパスワード＋ワンタイムパスワード（OTPサービス）".to_string())
                }
                None => ("login password + e-mail address confirmation".to_string(), "ログインパスワード＋メールアドレス確認".to_string()),
            };
            line(
                format!(
                    "Passkey \"{}\" registered (first passkey, bound on {how_en}){}.",
                    passkey.name.as_str(),
                    env(&passkey.environment)
                ),
                format!("パスキー「{}」を登録しました（初回登録：{how_ja}）{}。", passkey.name.as_str(), env_ja(&passkey.environment)),
            )
        }
        E::EmailCodeNotDelivered { .. } => line(
            "The code's e-mail could not be handed to the mail server: no code went out, and it is void.",
            "認証コードのメールをメールサーバーに渡せませんでした。コードは送信されておらず、無効です。",
        ),
        E::OneTimePasswordRequested { .. } => line(
            "The one-time password of the customer's OTP device was asked for (no e-mail sent).",
            "お客様のワンタイムパスワード（OTPサービス）の入力を求めました（メール送信なし）。",
        ),
        E::OtpDeviceRegistered { algorithm, digits, period } => line(
            format!("The core system registered the customer's OTP device ({algorithm}, {digits} digits, {period} s)."),
            format!("基幹システムがワンタイムパスワードサービスを登録しました（{algorithm}、{digits}桁、{period}秒）。"),
        ),
        E::OtpDeviceRemoved {} => {
            line("The core system removed the customer's OTP device.", "基幹システムがワンタイムパスワードサービスの登録を解除しました。")
        }
        E::SessionStepUpPassed { .. } => line(
            "Trading password confirmed, to register a passkey from the signed-in session.",
            "パスキー登録のため、ログイン中に執行パスワードを確認しました。",
        ),
        E::PasskeyCeremonyAbandoned { reason, .. } => {
            let (en, ja) = ceremony_words(reason);
            line(
                format!("The browser's passkey creation ended without a passkey ({en}), as the page reported it."),
                format!("ブラウザでのパスキー作成が完了せずに中断されました（{ja}、画面からの報告）。"),
            )
        }
        E::OpenFlowsClosed { flow_ids, because } => {
            let (en, ja) = match because {
                FlowClosure::LoginPasswordChanged => ("a new login password was set", "ログインパスワードが変更された"),
                FlowClosure::LoginLocked => ("the login was locked", "ログインがロックされた"),
                FlowClosure::EmailAddressChanged => ("the e-mail address was changed", "メールアドレスが変更された"),
                FlowClosure::EmailUnreachable => ("the e-mail address cannot receive mail", "メールアドレスが受信不能になった"),
                FlowClosure::PasskeyBound => ("a passkey was registered", "パスキーが登録された"),
                FlowClosure::CodeExhausted => ("every entry of the code was wrong", "認証コードの入力をすべて誤った"),
            };
            let n = flow_ids.len();
            line(
                format!("{n} open procedure(s) (registration or login) ended because {en}."),
                format!("{ja}ため、進行中の手続き（登録・ログイン）{n}件を終了しました。"),
            )
        }
        E::PasskeyRegistrationRefused { reason, .. } => {
            let (en, ja) = reason.words();
            line(format!("Passkey creation refused: {en}."), format!("パスキーの作成を受け付けませんでした（{ja}）。"))
        }
        E::PasskeyLoginSucceeded { authenticator, environment, second_factor_flow, .. } => {
            let (how_en, how_ja) = match authenticator {
                LoginAuthenticator::SameDevice => ("a passkey on this device", "この端末のパスキー"),
                LoginAuthenticator::SecurityKey => ("a security key", "セキュリティキー"),
                LoginAuthenticator::NotReported => ("a passkey", "パスキー"),
            };
            let (mode_en, mode_ja) = if second_factor_flow.is_some() {
                (" after the login password", "（パスワード認証後の第二要素）")
            } else {
                ("", "")
            };
            line(
                format!("Logged in with {how_en}{mode_en}{}.", env(environment)),
                format!("{how_ja}でログインしました{mode_ja}{}。", env_ja(environment)),
            )
        }
        E::CrossDeviceSignInSucceeded { environment, .. } => line(
            format!("Cross-device sign-in: the phone's passkey answered over QR code/Bluetooth{}.", env(environment)),
            format!("クロスデバイス認証：スマートフォンのパスキーでQRコード経由でログインしました{}。", env_ja(environment)),
        ),
        E::PasskeyLoginFailed { reason, .. } => {
            let (en, ja) = reason.words();
            line(format!("Passkey login failed: {en}."), format!("パスキーでのログインに失敗しました（{ja}）。"))
        }
        E::PasswordLoginSucceeded { environment, .. } => line(
            format!("Logged in with password + e-mail code (not phishing-resistant){}.", env(environment)),
            format!("パスワード＋メール認証コードでログインしました（フィッシング耐性なし）{}。", env_ja(environment)),
        ),
        E::PasskeyBackupStateChanged { backup_state: true, .. } => {
            line("The passkey is now backed up (synced).", "パスキーがバックアップ（同期）されるようになりました。")
        }
        E::PasskeyBackupStateChanged { backup_state: false, .. } => {
            line("The passkey is no longer backed up.", "パスキーがバックアップされなくなりました。")
        }
        E::SecondFactorRequired { .. } => {
            line("Password verified; a passkey is asked for next.", "パスワードを確認しました。続いてパスキー認証を求めます。")
        }
        E::LocalPasskeyAdded { passkey, cross_device_sign_in } => {
            let after = if cross_device_sign_in.is_some() { " after a cross-device sign-in" } else { "" };
            line(
                format!("Local passkey \"{}\" added{after}{}.", passkey.name.as_str(), env(&passkey.environment)),
                format!(
                    "{}ローカルパスキー「{}」を追加しました{}。",
                    if cross_device_sign_in.is_some() { "クロスデバイス認証の後、" } else { "" },
                    passkey.name.as_str(),
                    env_ja(&passkey.environment)
                ),
            )
        }
        E::PasskeyAdditionRefused { reason } => {
            let (en, ja) = reason.words();
            line(format!("Adding a passkey refused: {en}."), format!("パスキーの追加を受け付けませんでした（{ja}）。"))
        }
        E::LocalPasskeyDeclined { .. } => {
            line("Continued without creating a passkey on this device.", "この端末にパスキーを作成せずに続行しました。")
        }
        E::TradingPasswordRejected { consecutive_failures } => line(
            format!("Wrong trading password ({consecutive_failures} in a row)."),
            format!("執行パスワードが誤っていました（連続{consecutive_failures}回目）。"),
        ),
        E::PasskeyDeletionLocked { consecutive_failures } => line(
            format!("Passkey deletion locked after {consecutive_failures} wrong trading passwords."),
            format!("執行パスワードの誤りが{consecutive_failures}回続いたため、パスキーの削除をロックしました。"),
        ),
        E::PasskeyDeletionRefused { reason } => {
            let (en, ja) = reason.words();
            line(format!("Passkey deletion refused: {en}."), format!("パスキーの削除を受け付けませんでした（{ja}）。"))
        }
        E::PasskeysRevoked { passkeys, revoked_by: Revoker::Customer } => line(
            format!("The customer deleted passkey(s) {} with the trading password.", names(passkeys)),
            format!("お客様が執行パスワードでパスキー {} を削除しました。", names(passkeys)),
        ),
        E::PasskeysRevoked { passkeys, revoked_by: Revoker::ReportedByCustomer } => line(
            format!("Passkey(s) {} deleted: the customer reported their use as not theirs.", names(passkeys)),
            format!("お客様の不審な操作の報告により、パスキー {} を削除しました。", names(passkeys)),
        ),
        E::PasskeysRevoked { passkeys, revoked_by: Revoker::Staff { staff, reason } } => {
            let (en, ja) = staff_reason_words(reason);
            line(
                format!("Support ({}) deleted passkey(s) {}: {en}.", staff.name, names(passkeys)),
                format!("サポート担当（{}）がパスキー {} を削除しました。理由：{ja}", staff.name, names(passkeys)),
            )
        }
        E::PasskeySuspended { passkey_id, name, reason, with_passkey: None, .. } => {
            let (en, ja) = reason.words();
            let passkey = named(passkey_id, name);
            line(
                format!("Passkey {passkey} was suspended until support has checked it: {en}."),
                format!("パスキー {passkey} をサポートの確認まで一時停止しました。理由：{ja}。"),
            )
        }
        E::PasskeySuspended { passkey_id, name, with_passkey: Some(with), .. } => {
            let passkey = named(passkey_id, name);
            line(
                format!("Passkey {passkey} was suspended with passkey {with}: it was added on a device that signed in with that passkey."),
                format!(
                    "パスキー {passkey} を、パスキー {with} とともに一時停止しました（そのパスキーでログインした端末で追加されたため）。"
                ),
            )
        }
        E::PasskeyReinstated { passkey_id, name, staff, reason } => {
            let (en, ja) = staff_reason_words(reason);
            let passkey = named(passkey_id, name);
            line(
                format!("Support ({}) lifted the suspension of passkey {passkey}: {en}.", staff.name),
                format!("サポート担当（{}）がパスキー {passkey} の一時停止を解除しました。理由：{ja}", staff.name),
            )
        }
        E::LoginUnlocked { staff, reason } => {
            let (en, ja) = staff_reason_words(reason);
            line(
                format!("Support ({}) unlocked the login: {en}.", staff.name),
                format!("サポート担当（{}）がロックを解除しました。理由：{ja}", staff.name),
            )
        }
        E::SecurityNoticeSent { kind, destination, sent } => {
            let (en, ja) = notice_words(kind);
            let (to_en, to_ja) = if destination.is_empty() {
                ("no address that receives mail".to_string(), "受信可能なメールアドレスがないため".to_string())
            } else {
                (destination.clone(), format!("{destination} に"))
            };
            if *sent {
                line(
                    format!("A security notice ({en}) was e-mailed to {to_en}."),
                    format!("セキュリティ通知（{ja}）を {destination} にメールで送信しました。"),
                )
            } else {
                line(
                    format!("A security notice ({en}) could not be sent to {to_en}."),
                    format!("セキュリティ通知（{ja}）を{to_ja}送信できませんでした。"),
                )
            }
        }
        E::SessionsEnded { sessions, cause } => {
            let (en, ja) = match cause {
                SessionEndCause::LoginPasswordChanged => ("the login password was changed", "ログインパスワードの変更"),
                SessionEndCause::EmailChanged => ("the e-mail address was changed", "メールアドレスの変更"),
                SessionEndCause::LoginLocked => ("the login was locked", "ログインのロック"),
                SessionEndCause::PasskeysRevokedBySupport => ("support deleted passkeys", "サポート担当によるパスキーの削除"),
                SessionEndCause::PasskeyDeleted => ("the passkey they were signed in with was deleted", "ログインに使ったパスキーの削除"),
                SessionEndCause::PasskeySuspended => {
                    ("the passkey they were signed in with was suspended", "ログインに使ったパスキーの一時停止")
                }
                SessionEndCause::EndedByCustomer => ("the customer signed them out", "お客様によるログアウト操作"),
                SessionEndCause::ReportedByCustomer => ("the customer reported activity as not theirs", "お客様による不審な操作の報告"),
            };
            line(
                format!("{sessions} signed-in session(s) ended: {en}."),
                format!("ログイン中のセッション{sessions}件を終了しました（{ja}）。"),
            )
        }
        E::SuspiciousActivityReported { event_type, sequence, sessions_ended, passkeys_revoked, note, .. } => {
            let (what_en, what_ja) = crate::words::event_type_words(event_type).unwrap_or((event_type.as_str(), event_type.as_str()));
            let note_en = note.as_deref().map(|n| format!(" Their note: \"{n}\"")).unwrap_or_default();
            let note_ja = note.as_deref().map(|n| format!("お客様のコメント：「{n}」")).unwrap_or_default();
            line(
                format!(
                    "The customer reported event #{sequence} ({what_en}) as not theirs: {sessions_ended} other session(s) ended, {} passkey(s) deleted.{note_en}",
                    passkeys_revoked.len()
                ),
                format!(
                    "お客様が操作 #{sequence}（{what_ja}）を身に覚えのないものとして報告しました。他のセッション{sessions_ended}件を終了し、パスキー{}件を削除しました。{note_ja}",
                    passkeys_revoked.len()
                ),
            )
        }
        E::AccountViewedByStaff { staff, view } => {
            let (en, ja) = view_words(view);
            line(format!("Staff member {} viewed the account's {en}.", staff.name), format!("担当者 {} が{ja}を閲覧しました。", staff.name))
        }
    }
}
