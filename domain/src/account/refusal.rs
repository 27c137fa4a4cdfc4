use serde::{Deserialize, Serialize};

/// Why the ledger said no. Each refusal is recorded in an event and has a
/// stable snake_case code that the HTTP API returns (API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Wrong login password (or unknown login ID: the API does not tell them apart).
    InvalidCredentials,
    /// Too many consecutive wrong passwords.
    LoginLocked,
    /// The login password is a temporary one ("仮パスワード", seed 003 §5).
    TemporaryPassword,
    /// No e-mail address, or one that cannot receive mail (seed 000).
    EmailUnreachable,
    /// Another account has the same normalised address (seed 000, in bold).
    EmailSharedWithOtherAccounts,
    /// The account already has a passkey: first registration is over.
    PasskeyAlreadyRegistered,
    /// Password login is closed: a passkey exists, or the channel's
    /// passkey-mandatory instant has passed.
    PasskeyRequired,
    /// A wrong e-mail code.
    InvalidCode,
    /// The e-mail code is past its lifetime.
    CodeExpired,
    /// The code's attempts are used up.
    TooManyAttempts,
    /// A new code was asked for too soon after the last.
    ResendTooSoon,
    /// Too many codes asked for within the hour.
    ResendLimitReached,
    /// The flow is past its lifetime.
    FlowExpired,
    /// The step does not follow from where the flow is.
    WrongStep,
    /// The WebAuthn data did not verify.
    InvalidCredential,
    /// The credential was deleted from this account (it stays on the device).
    RevokedCredential,
    /// The authenticator's signature counter went backwards: a possible clone.
    CounterRegression,
    /// Adding a passkey needs a login within the last few minutes.
    RecentLoginRequired,
    /// The account holds the most passkeys the brokerage allows.
    PasskeyLimitReached,
    /// A wrong trading password ("執行パスワード") when deleting passkeys.
    InvalidTransactionPassword,
    /// Too many wrong trading passwords: deletion is locked until the
    /// trading password is reissued or support unlocks it.
    DeletionLocked,
    /// The credential ID is already bound, to this account or another, now
    /// or before: a credential is bound at most once, ever (WebAuthn §7.1
    /// step 22: "credentialId is not yet registered for any user").
    CredentialAlreadyRegistered,
    /// A step of a flow came through another channel than the flow began on.
    WrongChannel,
    /// The flow was closed by a change to the account (a new login
    /// password, a new e-mail address): start again.
    FlowClosed,
    /// Second-factor mode (seed 002): a passkey logs in only after the
    /// login ID and password.
    PasswordStepRequired,
    /// Passkey registration has not opened yet (seed 000: no registration
    /// before the launch instant).
    RegistrationNotOpen,
    /// The account has no passkey and the channel requires one: register
    /// one first (the API code stays `passkey_required`).
    PasskeyRegistrationRequired,
    /// An app's built-in browser (Google app, Yahoo! JAPAN app) cannot
    /// register a passkey (seed 001): open the device's standard browser.
    UnsupportedBrowser,
    /// The deployment lets only support delete passkeys (seed 002).
    DeletionBySupportOnly,
    /// Too many wrong trading passwords: the trading password is locked
    /// (the same lock as deletion's) until reissued or unlocked by support.
    TradingPasswordLocked,
    /// A first passkey from a signed-in session needs the deployment's
    /// confirmation first (trading password or e-mailed code).
    StepUpRequired,
    /// The passkey is suspended (its counter went backwards) until support
    /// has looked at it.
    PasskeySuspended,
}

impl Refusal {
    /// Every refusal.
    pub const ALL: &'static [Refusal] = &[
        Refusal::InvalidCredentials,
        Refusal::LoginLocked,
        Refusal::TemporaryPassword,
        Refusal::EmailUnreachable,
        Refusal::EmailSharedWithOtherAccounts,
        Refusal::PasskeyAlreadyRegistered,
        Refusal::PasskeyRequired,
        Refusal::InvalidCode,
        Refusal::CodeExpired,
        Refusal::TooManyAttempts,
        Refusal::ResendTooSoon,
        Refusal::ResendLimitReached,
        Refusal::FlowExpired,
        Refusal::WrongStep,
        Refusal::InvalidCredential,
        Refusal::RevokedCredential,
        Refusal::CounterRegression,
        Refusal::RecentLoginRequired,
        Refusal::PasskeyLimitReached,
        Refusal::InvalidTransactionPassword,
        Refusal::DeletionLocked,
        Refusal::CredentialAlreadyRegistered,
        Refusal::WrongChannel,
        Refusal::FlowClosed,
        Refusal::PasswordStepRequired,
        Refusal::RegistrationNotOpen,
        Refusal::PasskeyRegistrationRequired,
        Refusal::UnsupportedBrowser,
        Refusal::DeletionBySupportOnly,
        Refusal::TradingPasswordLocked,
        Refusal::StepUpRequired,
        Refusal::PasskeySuspended,
    ];

    /// The refusal in words, for readable lines (English, Japanese).
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Refusal::InvalidCredentials => ("wrong login ID or password", "ログインIDまたはパスワードの誤り"),
            Refusal::LoginLocked => ("the login is locked", "ログインがロック中"),
            Refusal::TemporaryPassword => ("the login password is a temporary one", "ログインパスワードが仮パスワード"),
            Refusal::EmailUnreachable => ("no registered e-mail address can receive mail", "受信可能なメールアドレスが登録されていない"),
            Refusal::EmailSharedWithOtherAccounts => {
                ("the e-mail address is registered on other accounts too", "メールアドレスが他の口座にも登録されている")
            }
            Refusal::PasskeyAlreadyRegistered => ("a passkey is already registered", "パスキーが登録済み"),
            Refusal::PasskeyRequired => ("logins need a passkey now", "パスキーでのログインが必要"),
            Refusal::InvalidCode => ("wrong code", "認証コードの誤り"),
            Refusal::CodeExpired => ("the code had expired", "認証コードの有効期限切れ"),
            Refusal::TooManyAttempts => ("the code's attempts were used up", "認証コードの入力回数の上限"),
            Refusal::ResendTooSoon => ("a new code was asked for too soon", "認証コードの再送の間隔が短すぎる"),
            Refusal::ResendLimitReached => ("too many codes within the hour", "1時間あたりの認証コード送信回数の上限"),
            Refusal::FlowExpired => ("the procedure had expired", "手続きの有効期限切れ"),
            Refusal::WrongStep => ("not the next step of the procedure", "手続きの順序と異なる操作"),
            Refusal::InvalidCredential => ("the passkey's answer did not verify", "パスキーの応答を検証できない"),
            Refusal::RevokedCredential => ("the passkey was deleted from the account", "削除済みのパスキー"),
            Refusal::CounterRegression => {
                ("the passkey's signature counter went backwards (a possible copy)", "パスキーの署名カウンターが後退（複製の疑い）")
            }
            Refusal::RecentLoginRequired => ("a recent login is needed", "直近のログインが必要"),
            Refusal::PasskeyLimitReached => ("the account holds the most passkeys allowed", "パスキーの登録数の上限"),
            Refusal::InvalidTransactionPassword => ("wrong trading password", "執行パスワードの誤り"),
            Refusal::DeletionLocked => ("passkey deletion is locked", "パスキーの削除がロック中"),
            Refusal::CredentialAlreadyRegistered => ("that passkey is already registered", "同じパスキーが登録済み"),
            Refusal::WrongChannel => {
                ("the procedure began on another channel (web or app)", "手続きを開始したチャネル（Web・アプリ）と異なる")
            }
            Refusal::FlowClosed => ("the procedure was closed by a change to the account", "口座の変更により手続きが終了済み"),
            Refusal::PasswordStepRequired => ("the login password comes first", "先にログインパスワードの入力が必要"),
            Refusal::RegistrationNotOpen => ("passkey registration has not opened yet", "パスキー登録の受付開始前"),
            Refusal::PasskeyRegistrationRequired => ("a passkey must be registered first", "先にパスキーの登録が必要"),
            Refusal::UnsupportedBrowser => {
                ("an app's built-in browser cannot register a passkey", "アプリ内ブラウザではパスキーを登録できない")
            }
            Refusal::DeletionBySupportOnly => ("only support deletes passkeys", "パスキーの削除はサポート窓口のみ"),
            Refusal::TradingPasswordLocked => ("the trading password is locked", "執行パスワードがロック中"),
            Refusal::StepUpRequired => ("a confirmation is needed first", "先に本人確認が必要"),
            Refusal::PasskeySuspended => {
                ("the passkey is suspended until support has checked it", "パスキーがサポートの確認まで一時停止中")
            }
        }
    }

    /// The stable code the API answers with.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::InvalidCredentials => "invalid_credentials",
            Refusal::LoginLocked => "login_locked",
            Refusal::TemporaryPassword => "temporary_password",
            Refusal::EmailUnreachable => "email_unreachable",
            Refusal::EmailSharedWithOtherAccounts => "email_shared_with_other_accounts",
            Refusal::PasskeyAlreadyRegistered => "passkey_already_registered",
            Refusal::PasskeyRequired => "passkey_required",
            Refusal::InvalidCode => "invalid_code",
            Refusal::CodeExpired => "code_expired",
            Refusal::TooManyAttempts => "too_many_attempts",
            Refusal::ResendTooSoon => "resend_too_soon",
            Refusal::ResendLimitReached => "resend_limit_reached",
            Refusal::FlowExpired => "flow_expired",
            Refusal::WrongStep => "wrong_step",
            Refusal::InvalidCredential => "invalid_credential",
            Refusal::RevokedCredential => "revoked_credential",
            Refusal::CounterRegression => "counter_regression",
            Refusal::RecentLoginRequired => "recent_login_required",
            Refusal::PasskeyLimitReached => "passkey_limit_reached",
            Refusal::InvalidTransactionPassword => "invalid_transaction_password",
            Refusal::DeletionLocked => "deletion_locked",
            Refusal::CredentialAlreadyRegistered => "credential_already_registered",
            Refusal::WrongChannel => "wrong_channel",
            Refusal::FlowClosed => "flow_closed",
            Refusal::PasswordStepRequired => "password_step_required",
            Refusal::RegistrationNotOpen => "registration_not_open",
            Refusal::PasskeyRegistrationRequired => "passkey_required",
            Refusal::UnsupportedBrowser => "unsupported_browser",
            Refusal::DeletionBySupportOnly => "deletion_by_support_only",
            Refusal::StepUpRequired => "step_up_required",
            Refusal::TradingPasswordLocked => "trading_password_locked",
            Refusal::PasskeySuspended => "passkey_suspended",
        }
    }
}
