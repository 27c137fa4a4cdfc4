//! The ledger's codes in words, for lines staff read: event types, actors,
//! channels, signal kinds and the filters a staff member used. English and
//! Japanese; an unknown code is shown as it is (never hidden).

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Every event type the ledger records (the catalogue of `docs/events.md`),
/// with its name in words: English, Japanese.
pub const EVENT_TYPES: &[(&str, &str, &str)] = &[
    ("AccountOpened", "account opened", "口座開設"),
    ("EmailAddressChanged", "e-mail address changed", "メールアドレス変更"),
    ("EmailReachabilityChanged", "e-mail reachability changed", "メール受信可否の変更"),
    ("CodeDestinationsOffered", "code destinations offered", "認証コード送信先の選択"),
    ("LoginPasswordChanged", "login password changed", "ログインパスワード変更"),
    ("TradingPasswordChanged", "trading password reissued", "執行パスワード再発行"),
    ("RegistrationStarted", "passkey registration started", "パスキー登録開始"),
    ("PasswordVerified", "login password verified", "ログインパスワード確認"),
    ("OpenFlowsClosed", "open procedures ended", "進行中の手続きの終了"),
    ("PasswordRejected", "wrong login password", "ログインパスワード誤り"),
    ("LoginLocked", "login locked", "ログインロック"),
    ("RegistrationRefused", "passkey registration refused", "パスキー登録の拒否"),
    ("PasswordLoginRefused", "password login refused", "パスワードログインの拒否"),
    ("EmailCodeIssued", "code e-mailed", "認証コード送信"),
    ("EmailCodeNotDelivered", "code not delivered", "認証コード送信失敗"),
    ("EmailCodeVerified", "code verified", "認証コード確認"),
    ("OneTimePasswordRequested", "OTP device asked for", "ワンタイムパスワード要求"),
    ("OtpDeviceRegistered", "OTP device registered", "ワンタイムパスワードサービス登録"),
    ("OtpDeviceRemoved", "OTP device removed", "ワンタイムパスワードサービス解除"),
    ("EmailCodeRejected", "wrong code", "認証コード誤り"),
    ("EmailCodeExpired", "expired code", "認証コード期限切れ"),
    ("EmailCodeExhausted", "code attempts used up", "認証コード入力回数超過"),
    ("EmailCodeResendRefused", "new code refused", "認証コード再送の拒否"),
    ("FlowStepRefused", "procedure step refused", "手続きの操作の拒否"),
    ("PasskeyRegistered", "passkey registered", "パスキー登録"),
    ("PasskeyRegistrationRefused", "passkey creation refused", "パスキー作成の拒否"),
    ("PasskeyLoginSucceeded", "passkey login", "パスキーでのログイン"),
    ("CrossDeviceSignInSucceeded", "cross-device sign-in", "クロスデバイス認証"),
    ("PasskeyBackupStateChanged", "passkey backup changed", "パスキーのバックアップ状態の変更"),
    ("SecondFactorRequired", "passkey asked for after the password", "パスワード後のパスキー要求"),
    ("LocalPasskeyAdded", "passkey added", "パスキー追加"),
    ("PasskeyAdditionRefused", "passkey addition refused", "パスキー追加の拒否"),
    ("PasskeyCeremonyAbandoned", "passkey creation abandoned", "パスキー作成の中断"),
    ("SessionStepUpPassed", "trading password confirmed", "執行パスワード確認"),
    ("LocalPasskeyDeclined", "passkey on this device declined", "この端末へのパスキー作成の見送り"),
    ("TradingPasswordRejected", "wrong trading password", "執行パスワード誤り"),
    ("PasskeyDeletionLocked", "passkey deletion locked", "パスキー削除のロック"),
    ("PasskeyDeletionRefused", "passkey deletion refused", "パスキー削除の拒否"),
    ("PasskeysRevoked", "passkeys deleted", "パスキー削除"),
    ("PasskeySuspended", "passkey suspended", "パスキーの一時停止"),
    ("PasskeyReinstated", "passkey reinstated", "パスキーの一時停止解除"),
    ("LoginUnlocked", "login unlocked", "ロック解除"),
    ("SecurityNoticeSent", "security notice", "セキュリティ通知"),
    ("SessionsEnded", "sessions ended", "セッション終了"),
    ("AccountViewedByStaff", "viewed by staff", "担当者による閲覧"),
    ("PasskeyLoginFailed", "passkey login failed", "パスキーでのログイン失敗"),
    ("PasswordLoginSucceeded", "password + code login", "パスワード＋認証コードでのログイン"),
    ("SuspiciousActivityReported", "reported by the customer as not theirs", "お客様による不審な操作の報告"),
    ("AuditTrailQueried", "audit trail queried", "監査証跡の照会"),
    ("AuditTrailExported", "audit trail exported", "監査証跡のエクスポート"),
    ("AuditTrailVerified", "audit trail verified", "監査証跡の検証"),
    ("SignalsListed", "fraud signals listed", "不正検知シグナルの一覧"),
    ("SignalReviewed", "fraud signal reviewed", "不正検知シグナルのレビュー"),
    ("AdoptionReportRead", "adoption report read", "利用状況レポートの閲覧"),
    ("AuditHeadRead", "chain head read", "チェーンヘッドの取得"),
    ("AuditCheckpointRead", "checkpoint read", "チェックポイントの取得"),
    ("AuditCheckpointsListed", "checkpoints listed", "チェックポイントの一覧"),
    ("AuditInclusionProofRead", "inclusion proof read", "包含証明の取得"),
    ("AuditConsistencyProofRead", "consistency proof read", "一貫性証明の取得"),
    ("StaffTokenRevoked", "staff token revoked", "スタッフトークン失効"),
    ("StaffMemberAdded", "staff member added", "担当者の追加"),
    ("StaffTokenRefused", "staff token refused", "スタッフトークンの拒否"),
    ("StaffAccessRefused", "staff request refused for the role", "役割による担当者の操作の拒否"),
    ("StaffEnrolmentLinkIssued", "console enrolment link issued", "コンソール登録用リンクの発行"),
    ("StaffTokenIssued", "staff token issued", "スタッフトークンの発行"),
    ("ConsolePasskeyEnrolled", "console passkey registered", "コンソール用パスキーの登録"),
    ("ConsoleSignedIn", "console sign-in", "コンソールへのサインイン"),
    ("ConsoleSignInRefused", "console sign-in refused", "コンソールへのサインインの拒否"),
    ("ConsoleSignedOut", "console session ended", "コンソールセッションの終了"),
    ("StaffMemberDisabled", "staff member disabled", "担当者の無効化"),
    ("WebhookSubscriptionAdded", "webhook subscription added", "Webhook購読の追加"),
    ("WebhookSubscriptionDisabled", "webhook subscription disabled", "Webhook購読の無効化"),
    ("WebhookReplayRequested", "webhook replay", "Webhookの再送"),
    ("WebhookSecretRotated", "webhook secret rotated", "Webhookシークレットの更新"),
    ("WebhookSubscriptionDisabledAfterFailures", "webhook disabled after failures", "送信失敗によるWebhook購読の無効化"),
    ("UnknownLoginIdRejected", "unknown login ID", "存在しないログインID"),
    ("UnknownCredentialRejected", "unknown passkey", "未登録のパスキー"),
    ("AttemptsThrottled", "client throttled", "接続元の試行制限"),
    ("LoginAttemptsThrottled", "login ID throttled", "ログインIDの試行制限"),
];

/// An event type (`PasskeyRegistered`) in words.
pub fn event_type_words(event_type: &str) -> Option<(&'static str, &'static str)> {
    EVENT_TYPES.iter().find(|(name, _, _)| *name == event_type).map(|(_, en, ja)| (*en, *ja))
}

/// The catalogue's spelling of an event type given in any case.
pub fn event_type_named(given: &str) -> Option<&'static str> {
    EVENT_TYPES.iter().find(|(name, _, _)| name.eq_ignore_ascii_case(given)).map(|(name, _, _)| *name)
}

/// Who acted (`customer`, `core_system`, `system`, `staff`, `staff:<id>`), in words.
pub fn actor_words(actor: &str) -> (String, String) {
    match actor {
        "customer" => ("customers".into(), "お客様".into()),
        "core_system" => ("the core system".into(), "基幹システム".into()),
        "system" => ("the ledger itself".into(), "システム".into()),
        "staff" => ("staff".into(), "担当者".into()),
        other => match other.strip_prefix("staff:") {
            Some(id) => (format!("staff member {id}"), format!("担当者 {id}")),
            None => (other.to_string(), other.to_string()),
        },
    }
}

/// A channel (`web`, `mobile_web`, `mobile_app`, `desktop_app`, `cli`), in words.
pub fn channel_words(channel: &str) -> (&str, &str) {
    match channel {
        "web" => ("the web site", "Webサイト"),
        "mobile_web" => ("the smartphone web site", "スマートフォンサイト"),
        "mobile_app" => ("the smartphone app", "スマートフォンアプリ"),
        "desktop_app" => ("the desktop app", "PCアプリ"),
        "cli" => ("the command line", "コマンドライン"),
        "staff" => ("the staff's tools", "担当者の画面"),
        "integration" => ("the core system's integration", "基幹システム連携"),
        other => (other, other),
    }
}

/// Every kind of fraud signal the ledger raises.
pub const SIGNAL_KINDS: &[&str] = &[
    "shared_email",
    "many_wrong_codes",
    "repeated_code_requests",
    "passkey_after_email_change",
    "many_passkeys_added",
    "wipe_and_reregister",
    "lockout_from_many_clients",
    "wrong_passwords_from_many_clients",
    "repeated_lockouts",
    "revoked_credential_used",
    "counter_regression",
    "many_login_ids_from_one_client",
    "many_login_ids_from_one_network",
    "customer_reported_activity",
];

/// A fraud signal's kind, in words.
pub fn signal_kind_words(kind: &str) -> (&str, &str) {
    match kind {
        "shared_email" => ("one e-mail address on several accounts", "複数の口座で同じメールアドレス"),
        "many_wrong_codes" => ("many wrong codes", "認証コードの誤りが多い"),
        "repeated_code_requests" => ("repeated code requests", "認証コードの要求の繰り返し"),
        "passkey_after_email_change" => ("a passkey soon after an e-mail change", "メールアドレス変更直後のパスキー登録"),
        "many_passkeys_added" => ("many passkeys added", "多数のパスキー追加"),
        "wipe_and_reregister" => ("passkeys deleted and registered again", "パスキーの削除と再登録"),
        "lockout_from_many_clients" => ("a lock-out from many clients", "多数の接続元からのロック"),
        "wrong_passwords_from_many_clients" => ("wrong passwords from many clients", "多数の接続元からの誤ったパスワード"),
        "repeated_lockouts" => ("repeated lock-outs", "ロックの繰り返し"),
        "counter_regression" => ("a passkey's counter went backwards", "パスキーの署名カウンターの後退"),
        "revoked_credential_used" => ("a deleted passkey used", "削除済みパスキーの使用"),
        "many_login_ids_from_one_client" => ("many login IDs from one client", "1つの接続元から多数のログインID"),
        "many_login_ids_from_one_network" => ("many login IDs from one network", "1つのネットワークから多数のログインID"),
        "customer_reported_activity" => ("the customer reported activity as not theirs", "お客様からの不審な操作の報告"),
        other => (other, other),
    }
}

/// A signal's status filter (`open`, `confirmed`, `dismissed`), in words.
fn status_words(status: &str) -> (&str, &str) {
    match status {
        "open" => ("open", "未対応"),
        "confirmed" => ("confirmed", "不正あり"),
        "dismissed" => ("dismissed", "問題なし"),
        other => (other, other),
    }
}

/// An instant kept as epoch milliseconds, in Japan time to the second.
fn instant_words(at: &Value) -> (String, String) {
    let at = match at {
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
        other => other.as_i64().and_then(DateTime::<Utc>::from_timestamp_millis),
    };
    match at {
        Some(at) => crate::japan::japan_time_words(at),
        None => ("an unreadable instant".into(), "読めない日時".into()),
    }
}

/// The filters a staff member used (as recorded: `account_id`,
/// `event_type`, `actor`, `channel`, `from`, `to` in epoch milliseconds;
/// for signals `status`, `kind`, `account_id`), in words: "account X, type
/// passkey registered, from 2026-11-24 00:00:00 JST".
pub fn filter_words(filters: &Value) -> (String, String) {
    let Some(map) = filters.as_object() else { return ("no filters".into(), "条件なし".into()) };
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    let (mut en, mut ja) = (Vec::new(), Vec::new());
    for (key, value) in map.iter().filter(|(_, v)| !v.is_null()) {
        let value_text = text(value);
        let (e, j) = match key.as_str() {
            "account_id" => (format!("account {value_text}"), format!("口座 {value_text}")),
            "type" | "event_type" => {
                let names: Vec<String> = match value.as_array() {
                    Some(list) => list.iter().map(text).collect(),
                    None => vec![value_text.clone()],
                };
                let words: Vec<(&str, &str)> = names.iter().map(|n| event_type_words(n).unwrap_or((n.as_str(), n.as_str()))).collect();
                let en_list = words.iter().map(|(e, _)| format!("\"{e}\"")).collect::<Vec<_>>().join(" or ");
                let ja_list = words.iter().map(|(_, j)| format!("「{j}」")).collect::<Vec<_>>().join("・");
                (format!("type {en_list}"), format!("種別 {ja_list}"))
            }
            "actor" => {
                let (e, j) = actor_words(&value_text);
                (format!("by {e}"), format!("実行者 {j}"))
            }
            "channel" => {
                let (e, j) = channel_words(&value_text);
                (format!("channel \"{e}\""), format!("経路「{j}」"))
            }
            "from" => {
                let (e, j) = instant_words(value);
                (format!("from {e}"), format!("{j}から"))
            }
            "to" => {
                let (e, j) = instant_words(value);
                (format!("before {e}"), format!("{j}まで"))
            }
            "status" => {
                let (e, j) = status_words(&value_text);
                (format!("status {e}"), format!("状態 {j}"))
            }
            "kind" => {
                let (e, j) = signal_kind_words(&value_text);
                (format!("kind \"{e}\""), format!("種類「{j}」"))
            }
            other => (format!("{other} {value_text}"), format!("{other} {value_text}")),
        };
        en.push(e);
        ja.push(j);
    }
    if en.is_empty() {
        return ("no filters".into(), "条件なし".into());
    }
    (en.join(", "), ja.join("、"))
}
