//! The one error type of the HTTP layer: a status, a stable snake_case code,
//! and an English and a Japanese message. Internal details are logged here
//! and never returned.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger_domain::Refusal;
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// Every error the API answers, each with one HTTP status and one pair of
/// messages, all in [`ErrorCode::spec`]: a handler names a code, never a
/// status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // The domain's refusals (see `From<Refusal>`).
    InvalidCredentials,
    LoginLocked,
    TemporaryPassword,
    EmailUnreachable,
    EmailSharedWithOtherAccounts,
    PasskeyAlreadyRegistered,
    PasskeyRequired,
    InvalidCode,
    CodeExpired,
    TooManyAttempts,
    ResendTooSoon,
    ResendLimitReached,
    FlowExpired,
    WrongStep,
    /// An assertion (login) that does not verify: 401.
    InvalidCredential,
    /// A new credential (registration, passkey addition) that does not
    /// verify: the same code, 400, as API.md has it for registration.
    InvalidNewCredential,
    RevokedCredential,
    CounterRegression,
    PasskeySuspended,
    RecentLoginRequired,
    PasskeyLimitReached,
    InvalidTransactionPassword,
    TradingPasswordLocked,
    DeletionLocked,
    CredentialAlreadyRegistered,
    WrongChannel,
    FlowClosed,
    RegistrationNotOpen,
    PasskeyRegistrationRequired,
    UnsupportedBrowser,
    DeletionBySupportOnly,
    StepUpRequired,
    PasswordStepRequired,
    // The HTTP layer's own.
    InternalError,
    InvalidRequest,
    NotFound,
    Unauthorized,
    TokenRevoked,
    TokenExpired,
    Forbidden,
    ConcurrentUpdate,
    CeremonyExpired,
    SessionEnded,
    InvalidChannel,
    InvalidPasskeyName,
    EmailNotSent,
    InvalidFilter,
    NotReportable,
    OutOfTree,
    WebhookUrlRefused,
    NoteRequired,
    ReasonRequired,
    AccountExists,
    NotLocked,
    NotSuspended,
    LoginIdTaken,
    InvalidEmail,
    InvalidPassword,
    InvalidSlot,
    InvalidOtpDevice,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests,
    Unavailable,
    ViewsBehind,
    Busy,
}

/// A code's row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The stable snake_case code of API.md.
    pub code: &'static str,
    pub status: StatusCode,
    pub en: &'static str,
    pub ja: &'static str,
}

impl ErrorCode {
    /// Every code, for the tests of the table and the API documents.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidCredentials,
        ErrorCode::LoginLocked,
        ErrorCode::TemporaryPassword,
        ErrorCode::EmailUnreachable,
        ErrorCode::EmailSharedWithOtherAccounts,
        ErrorCode::PasskeyAlreadyRegistered,
        ErrorCode::PasskeyRequired,
        ErrorCode::InvalidCode,
        ErrorCode::CodeExpired,
        ErrorCode::TooManyAttempts,
        ErrorCode::ResendTooSoon,
        ErrorCode::ResendLimitReached,
        ErrorCode::FlowExpired,
        ErrorCode::WrongStep,
        ErrorCode::InvalidCredential,
        ErrorCode::InvalidNewCredential,
        ErrorCode::RevokedCredential,
        ErrorCode::CounterRegression,
        ErrorCode::PasskeySuspended,
        ErrorCode::RecentLoginRequired,
        ErrorCode::PasskeyLimitReached,
        ErrorCode::InvalidTransactionPassword,
        ErrorCode::TradingPasswordLocked,
        ErrorCode::DeletionLocked,
        ErrorCode::CredentialAlreadyRegistered,
        ErrorCode::WrongChannel,
        ErrorCode::FlowClosed,
        ErrorCode::RegistrationNotOpen,
        ErrorCode::PasskeyRegistrationRequired,
        ErrorCode::UnsupportedBrowser,
        ErrorCode::DeletionBySupportOnly,
        ErrorCode::StepUpRequired,
        ErrorCode::PasswordStepRequired,
        ErrorCode::InternalError,
        ErrorCode::InvalidRequest,
        ErrorCode::NotFound,
        ErrorCode::Unauthorized,
        ErrorCode::TokenRevoked,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::ConcurrentUpdate,
        ErrorCode::CeremonyExpired,
        ErrorCode::SessionEnded,
        ErrorCode::InvalidChannel,
        ErrorCode::InvalidPasskeyName,
        ErrorCode::EmailNotSent,
        ErrorCode::InvalidFilter,
        ErrorCode::NotReportable,
        ErrorCode::OutOfTree,
        ErrorCode::WebhookUrlRefused,
        ErrorCode::NoteRequired,
        ErrorCode::ReasonRequired,
        ErrorCode::AccountExists,
        ErrorCode::NotLocked,
        ErrorCode::NotSuspended,
        ErrorCode::LoginIdTaken,
        ErrorCode::InvalidEmail,
        ErrorCode::InvalidPassword,
        ErrorCode::InvalidSlot,
        ErrorCode::InvalidOtpDevice,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::TooManyRequests,
        ErrorCode::Unavailable,
        ErrorCode::ViewsBehind,
        ErrorCode::Busy,
    ];

    /// The table: code, status, English and Japanese message.
    pub fn spec(self) -> Spec {
        use ErrorCode as E;
        use StatusCode as S;
        let (code, status, en, ja) = match self {
            E::InvalidCredentials => (
                "invalid_credentials",
                S::UNAUTHORIZED,
                "The login ID or password is incorrect.",
                "ログインIDまたはパスワードが正しくありません。",
            ),
            E::LoginLocked => (
                "login_locked",
                S::LOCKED,
                "Login is locked after too many wrong passwords. Please contact support.",
                "パスワードの誤入力が規定回数を超えたため、ログインがロックされています。サポートまでご連絡ください。",
            ),
            E::TemporaryPassword => (
                "temporary_password",
                S::FORBIDDEN,
                "Your login password is temporary. Please change it before registering a passkey.",
                "ログインパスワードが仮パスワードです。パスキー登録の前にパスワードを変更してください。",
            ),
            E::EmailUnreachable => (
                "email_unreachable",
                S::CONFLICT,
                "No e-mail address that can receive our mail is registered. Please register one first.",
                "受信可能なメールアドレスが登録されていません。先にメールアドレスをご登録ください。",
            ),
            E::EmailSharedWithOtherAccounts => (
                "email_shared_with_other_accounts",
                S::CONFLICT,
                "The same e-mail address is registered on another account. Each account needs a different address.",
                "ご家族の口座や法人口座で同じメールアドレスが登録されています。口座ごとに異なるメールアドレスをご登録ください。",
            ),
            E::PasskeyAlreadyRegistered => (
                "passkey_already_registered",
                S::CONFLICT,
                "A passkey is already registered. Please log in with your passkey.",
                "パスキーは登録済みです。パスキーでログインしてください。",
            ),
            E::PasskeyRequired => (
                "passkey_required",
                S::FORBIDDEN,
                "Please log in with your passkey. Password login is no longer available for this account or channel.",
                "パスキーでログインしてください。パスワードとメール認証によるログインはご利用いただけません。",
            ),
            E::InvalidCode => ("invalid_code", S::UNAUTHORIZED, "The code is incorrect.", "認証コードが正しくありません。"),
            E::CodeExpired => (
                "code_expired",
                S::GONE,
                "The code has expired. Please request a new one.",
                "認証コードの有効期限が切れています。再送信してください。",
            ),
            E::TooManyAttempts => (
                "too_many_attempts",
                S::TOO_MANY_REQUESTS,
                "Too many wrong codes. Please start again.",
                "認証コードの誤入力が規定回数を超えました。最初からやり直してください。",
            ),
            E::ResendTooSoon => (
                "resend_too_soon",
                S::TOO_MANY_REQUESTS,
                "Please wait a minute before requesting another code.",
                "認証コードの再送信は1分以上あけてお試しください。",
            ),
            E::ResendLimitReached => (
                "resend_limit_reached",
                S::TOO_MANY_REQUESTS,
                "Too many codes requested this hour. Please try again later.",
                "1時間あたりの再送信回数の上限に達しました。しばらくしてからお試しください。",
            ),
            E::FlowExpired => (
                "flow_expired",
                S::GONE,
                "This registration has expired. Please start again.",
                "手続きの有効期限が切れました。最初からやり直してください。",
            ),
            E::WrongStep => (
                "wrong_step",
                S::CONFLICT,
                "This step is not available now. Please start again.",
                "この手順は現在ご利用いただけません。最初からやり直してください。",
            ),
            E::InvalidCredential => {
                ("invalid_credential", S::UNAUTHORIZED, "The passkey could not be verified.", "パスキーを確認できませんでした。")
            }
            E::InvalidNewCredential => {
                ("invalid_credential", S::BAD_REQUEST, "The passkey could not be verified.", "パスキーを確認できませんでした。")
            }
            E::RevokedCredential => (
                "revoked_credential",
                S::UNAUTHORIZED,
                "This passkey has been deleted from your account. Please log in with your password and register a new passkey.",
                "このパスキーは削除されています。パスワードでログインし、パスキーを再登録してください。",
            ),
            E::CounterRegression => (
                "counter_regression",
                S::UNAUTHORIZED,
                "This passkey could not be trusted. Please contact support.",
                "このパスキーは安全性を確認できませんでした。サポートまでご連絡ください。",
            ),
            E::PasskeySuspended => (
                "passkey_suspended",
                S::UNAUTHORIZED,
                "This passkey is suspended for your security until our support desk has checked it. Please log in with another passkey or contact support.",
                "安全のため、このパスキーはサポート窓口の確認まで一時停止しています。別のパスキーでログインするか、サポートまでご連絡ください。",
            ),
            E::RecentLoginRequired => (
                "recent_login_required",
                S::FORBIDDEN,
                "For your security, please log in again before adding a passkey.",
                "安全のため、パスキーを追加する前にもう一度ログインしてください。",
            ),
            E::PasskeyLimitReached => (
                "passkey_limit_reached",
                S::CONFLICT,
                "No more passkeys can be added to this account. Please delete one first.",
                "登録できるパスキーの上限に達しています。不要なパスキーを削除してから追加してください。",
            ),
            E::InvalidTransactionPassword => (
                "invalid_transaction_password",
                S::UNAUTHORIZED,
                "The trading password is incorrect.",
                "執行パスワードが正しくありません。",
            ),
            E::TradingPasswordLocked => (
                "trading_password_locked",
                S::LOCKED,
                "The trading password is locked after too many wrong entries. Please contact support.",
                "執行パスワードの誤りが続いたため、執行パスワードはロックされています。サポートまでご連絡ください。",
            ),
            E::DeletionLocked => (
                "deletion_locked",
                S::LOCKED,
                "Passkey deletion is locked after too many wrong trading passwords. Please contact support.",
                "執行パスワードの誤りが続いたため、パスキーの削除はロックされています。サポートまでご連絡ください。",
            ),
            E::CredentialAlreadyRegistered => (
                "credential_already_registered",
                S::CONFLICT,
                "This passkey is already registered. Please create a new passkey on your device and try again.",
                "このパスキーは既に登録されています。端末で新しいパスキーを作成して、もう一度お試しください。",
            ),
            E::WrongChannel => (
                "wrong_channel",
                S::CONFLICT,
                "This procedure was started in another app or browser. Please start again here.",
                "この手続きは別のアプリまたはブラウザで開始されています。こちらで最初からやり直してください。",
            ),
            E::FlowClosed => (
                "flow_closed",
                S::CONFLICT,
                "Your account details changed during this procedure. Please start again.",
                "手続き中にお客様の登録情報が変更されました。最初からやり直してください。",
            ),
            E::RegistrationNotOpen => (
                "registration_not_open",
                S::FORBIDDEN,
                "Passkey registration has not opened yet. Please try again once it opens.",
                "パスキーの登録受付はまだ開始していません。受付開始後にお手続きください。",
            ),
            E::PasskeyRegistrationRequired => (
                "passkey_required",
                S::FORBIDDEN,
                "A passkey is now required to log in here. Please register a passkey (パスキー登録) first.",
                "こちらからのログインにはパスキーが必要になりました。先にパスキーの登録をお願いいたします。",
            ),
            E::UnsupportedBrowser => (
                "unsupported_browser",
                S::BAD_REQUEST,
                "Passkeys cannot be registered in an app's built-in browser (such as the Google app or the Yahoo! JAPAN app). Please open this page in your device's standard browser: Safari on iPhone and iPad, Chrome on Android.",
                "GoogleアプリやYahoo!JAPANアプリなど、アプリ内のブラウザではパスキーを登録できません。お使いの端末の標準ブラウザ（iPhone・iPadはSafari、AndroidはChrome）からアクセスしてください。",
            ),
            E::DeletionBySupportOnly => (
                "deletion_by_support_only",
                S::FORBIDDEN,
                "To delete a passkey, please contact our customer support.",
                "パスキーの削除をご希望の場合は当社カスタマーサポートまでお問い合わせください。",
            ),
            E::StepUpRequired => (
                "step_up_required",
                S::FORBIDDEN,
                "To register a passkey here, please first confirm with your trading password (or the code we e-mail you).",
                "パスキーを登録するには、先に執行パスワード（または当社からメールでお送りする認証コード）で確認してください。",
            ),
            E::PasswordStepRequired => (
                "password_step_required",
                S::FORBIDDEN,
                "Please log in with your login ID and password first; your passkey is asked for next.",
                "ログインIDとパスワードでログインしてください。続けてパスキーでの認証をお願いします。",
            ),
            E::InternalError => (
                "internal_error",
                S::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Please try again later.",
                "システムエラーが発生しました。しばらくしてから再度お試しください。",
            ),
            E::InvalidRequest => ("invalid_request", S::BAD_REQUEST, "The request is not valid.", "入力内容に誤りがあります。"),
            E::NotFound => ("not_found", S::NOT_FOUND, "Not found.", "対象が見つかりません。"),
            E::Unauthorized => ("unauthorized", S::UNAUTHORIZED, "Please log in.", "ログインしてください。"),
            E::TokenRevoked => (
                "token_revoked",
                S::UNAUTHORIZED,
                "This staff token was revoked. Ask your administrator for a new one.",
                "このスタッフトークンは失効しています。管理者に新しいトークンを依頼してください。",
            ),
            E::TokenExpired => (
                "token_expired",
                S::UNAUTHORIZED,
                "This staff token has expired. Ask your administrator for a new one.",
                "このスタッフトークンは有効期限が切れています。管理者に新しいトークンを依頼してください。",
            ),
            E::Forbidden => ("forbidden", S::FORBIDDEN, "You are not allowed to do this.", "この操作は許可されていません。"),
            E::ConcurrentUpdate => (
                "concurrent_update",
                S::CONFLICT,
                "The account was changed at the same moment. Please try again.",
                "同時に別の操作が行われました。もう一度お試しください。",
            ),
            E::CeremonyExpired => (
                "ceremony_expired",
                S::GONE,
                "The passkey request has expired or was already used. Please start again.",
                "パスキーの要求が期限切れか使用済みです。最初からやり直してください。",
            ),
            E::SessionEnded => (
                "session_ended",
                S::UNAUTHORIZED,
                "This session has ended. Please log in again.",
                "このセッションは終了しています。もう一度ログインしてください。",
            ),
            E::InvalidChannel => (
                "invalid_channel",
                S::BAD_REQUEST,
                "X-Channel must be web, mobile_web, mobile_app or desktop_app.",
                "X-Channel の値が正しくありません。",
            ),
            E::InvalidPasskeyName => (
                "invalid_passkey_name",
                S::BAD_REQUEST,
                "The passkey name must be 1 to 64 characters.",
                "パスキー名は1〜64文字で入力してください。",
            ),
            E::EmailNotSent => (
                "email_not_sent",
                S::SERVICE_UNAVAILABLE,
                "The e-mail could not be sent: no code went out, and this does not count against your limits. Please try again shortly.",
                "メールを送信できませんでした。コードは送信されておらず、送信回数の上限にも数えません。しばらくしてから再度お試しください。",
            ),
            E::InvalidFilter => {
                ("invalid_filter", S::BAD_REQUEST, "A search filter is not valid.", "検索条件の形式が正しくありません。")
            }
            E::NotReportable => (
                "not_reportable",
                S::CONFLICT,
                "This item cannot be reported: it is your own session's login, or a refusal that stopped an attempt. If you are worried, sign out the other devices and contact the support desk.",
                "この項目はご報告の対象ではありません（ご利用中のこの端末のログイン、または拒否された操作です）。ご不安な場合は、他の端末をログアウトし、サポートデスクへお問い合わせください。",
            ),
            E::OutOfTree => (
                "out_of_tree",
                S::BAD_REQUEST,
                "The leaf or tree size is outside the audit trail's tree (leaves are numbered from 0; a tree size is at most the tree's size now).",
                "リーフ番号またはツリーサイズが監査証跡のツリーの範囲外です（リーフ番号は0から、ツリーサイズは現在のサイズ以下）。",
            ),
            E::WebhookUrlRefused => (
                "webhook_url_refused",
                S::BAD_REQUEST,
                "The webhook URL is refused: it must be https and reach only public addresses.",
                "このWebhookのURLは使用できません（httpsで、公開アドレスのみに届くURLが必要です）。",
            ),
            E::NoteRequired => (
                "note_required",
                S::BAD_REQUEST,
                "A note (1 to 2000 characters) is required.",
                "メモ（1〜2000文字）を入力してください。",
            ),
            E::ReasonRequired => (
                "reason_required",
                S::BAD_REQUEST,
                "A reason (1 to 500 characters) is required: it goes on record with the action.",
                "理由（1〜500文字）を入力してください。操作とともに記録されます。",
            ),
            E::AccountExists => ("account_exists", S::CONFLICT, "The account already exists.", "口座は既に存在します。"),
            E::NotLocked => (
                "not_locked",
                S::CONFLICT,
                "The account is not locked: there is no lock to lift, and nothing was recorded.",
                "この口座はロックされていません。解除するロックはなく、何も記録していません。",
            ),
            E::NotSuspended => (
                "not_suspended",
                S::CONFLICT,
                "The passkey is not suspended: there is nothing to lift, and nothing was recorded.",
                "このパスキーは一時停止されていません。解除するものはなく、何も記録していません。",
            ),
            E::LoginIdTaken => {
                ("login_id_taken", S::CONFLICT, "An account with this login ID exists.", "このログインIDの口座は既に存在します。")
            }
            E::InvalidEmail => {
                ("invalid_email", S::BAD_REQUEST, "The e-mail address is not valid.", "メールアドレスの形式が正しくありません。")
            }
            E::InvalidPassword => (
                "invalid_password",
                S::BAD_REQUEST,
                "Passwords must be 8 to 128 characters.",
                "パスワードは8〜128文字で設定してください。",
            ),
            E::InvalidSlot => {
                ("invalid_slot", S::BAD_REQUEST, "slot must be 1 or 2.", "slot には 1 または 2 を指定してください。")
            }
            E::InvalidOtpDevice => (
                "invalid_otp_device",
                S::BAD_REQUEST,
                "The OTP device settings are not valid.",
                "ワンタイムパスワード機器の設定内容に誤りがあります。",
            ),
            E::MethodNotAllowed => (
                "method_not_allowed",
                S::METHOD_NOT_ALLOWED,
                "This method is not allowed here.",
                "この操作はここでは利用できません。",
            ),
            E::Busy => (
                "busy",
                S::SERVICE_UNAVAILABLE,
                "The service is busy. Please try again in a moment.",
                "ただいま混み合っています。しばらくしてから再度お試しください。",
            ),
            E::PayloadTooLarge => (
                "payload_too_large",
                S::PAYLOAD_TOO_LARGE,
                "The request body is too large.",
                "送信されたデータが大きすぎます。",
            ),
            E::Unavailable => (
                "unavailable",
                S::SERVICE_UNAVAILABLE,
                "The service cannot reach its database just now. Nothing was changed; please try again shortly.",
                "ただいまデータベースに接続できません。処理は行われていません。しばらくしてから再度お試しください。",
            ),
            E::ViewsBehind => (
                "views_behind",
                S::SERVICE_UNAVAILABLE,
                "The views have not caught up with the latest events yet. Please try again shortly.",
                "表示用データが最新の記録にまだ追いついていません。しばらくしてから再度お試しください。",
            ),
            E::TooManyRequests => (
                "too_many_requests",
                S::TOO_MANY_REQUESTS,
                "Too many failed attempts from your connection. Please wait a moment and try again.",
                "お使いの接続元からの失敗した試行が多すぎます。しばらく待ってから再度お試しください。",
            ),
            E::RequestTimeout => (
                "request_timeout",
                S::REQUEST_TIMEOUT,
                "The request took too long to arrive or to answer. Please try again.",
                "リクエストの処理に時間がかかりすぎました。もう一度お試しください。",
            ),
        };
        Spec { code, status, en, ja }
    }

    /// The stable code.
    pub fn code(self) -> &'static str {
        self.spec().code
    }
}

impl From<Refusal> for ErrorCode {
    /// The one place where a domain refusal becomes an error code.
    fn from(r: Refusal) -> ErrorCode {
        use ErrorCode as E;
        match r {
            Refusal::InvalidCredentials => E::InvalidCredentials,
            Refusal::LoginLocked => E::LoginLocked,
            Refusal::TemporaryPassword => E::TemporaryPassword,
            Refusal::EmailUnreachable => E::EmailUnreachable,
            Refusal::EmailSharedWithOtherAccounts => E::EmailSharedWithOtherAccounts,
            Refusal::PasskeyAlreadyRegistered => E::PasskeyAlreadyRegistered,
            Refusal::PasskeyRequired => E::PasskeyRequired,
            Refusal::InvalidCode => E::InvalidCode,
            Refusal::CodeExpired => E::CodeExpired,
            Refusal::TooManyAttempts => E::TooManyAttempts,
            Refusal::ResendTooSoon => E::ResendTooSoon,
            Refusal::ResendLimitReached => E::ResendLimitReached,
            Refusal::FlowExpired => E::FlowExpired,
            Refusal::WrongStep => E::WrongStep,
            Refusal::InvalidCredential => E::InvalidCredential,
            Refusal::RevokedCredential => E::RevokedCredential,
            Refusal::CounterRegression => E::CounterRegression,
            Refusal::PasskeySuspended => E::PasskeySuspended,
            Refusal::RecentLoginRequired => E::RecentLoginRequired,
            Refusal::PasskeyLimitReached => E::PasskeyLimitReached,
            Refusal::InvalidTransactionPassword => E::InvalidTransactionPassword,
            Refusal::TradingPasswordLocked => E::TradingPasswordLocked,
            Refusal::DeletionLocked => E::DeletionLocked,
            Refusal::CredentialAlreadyRegistered => E::CredentialAlreadyRegistered,
            Refusal::WrongChannel => E::WrongChannel,
            Refusal::FlowClosed => E::FlowClosed,
            Refusal::RegistrationNotOpen => E::RegistrationNotOpen,
            Refusal::PasskeyRegistrationRequired => E::PasskeyRegistrationRequired,
            Refusal::UnsupportedBrowser => E::UnsupportedBrowser,
            Refusal::DeletionBySupportOnly => E::DeletionBySupportOnly,
            Refusal::StepUpRequired => E::StepUpRequired,
            Refusal::PasswordStepRequired => E::PasswordStepRequired,
        }
    }
}

/// An error answer of the API: a code from the table, its messages (or,
/// for a few codes, messages that name a value), and details beside it.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    message: Cow<'static, str>,
    message_ja: Cow<'static, str>,
    details: Details,
}

/// What a few codes add beside the code and the messages.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Details {
    /// `invalid_code`: wrong entries left for this code.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_left: Option<u32>,
    /// `passkey_registration_required`: where the page leads
    /// (`register_passkey`).
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<&'static str>,
    /// `registration_not_open`: the opening instant, in Japan time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    opens_at: Option<String>,
    /// `too_many_requests`: seconds to wait (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> ApiError {
        let spec = code.spec();
        let mut error = ApiError { code, message: spec.en.into(), message_ja: spec.ja.into(), details: Details::default() };
        if code == ErrorCode::PasskeyRegistrationRequired {
            // The page leads to registration rather than to a passkey login.
            error.details.next = Some("register_passkey");
        }
        error
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        ErrorCode::from(r).into()
    }
}

impl ApiError {
    /// The HTTP status: the code's, always.
    /// The messages, English and Japanese.
    pub fn messages(&self) -> (&str, &str) {
        (&self.message, &self.message_ja)
    }

    pub fn status(&self) -> StatusCode {
        self.code.spec().status
    }

    /// A wrong code, with the entries left for it.
    /// A refusal to come back after `wait` (at least a second): the body
    /// says so and so does the `Retry-After` header.
    pub fn retry_after(mut self, wait: std::time::Duration) -> ApiError {
        self.details.retry_after_secs = Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
        self
    }

    pub fn with_attempts_left(mut self, left: u32) -> ApiError {
        self.details.attempts_left = Some(left);
        self
    }

    /// The code with an English message that says what exactly is wrong
    /// (a field, a filter); the Japanese message stays the table's.
    pub fn saying(code: ErrorCode, what: impl Into<Cow<'static, str>>) -> ApiError {
        let mut error = ApiError::from(code);
        error.message = what.into();
        error
    }

    /// Registration before the deployment's launch instant (seed 000), with
    /// the opening time in Japan time.
    pub fn registration_not_open(opens_at: chrono::DateTime<chrono::Utc>) -> ApiError {
        let (ja, en) = (crate::email::jst(opens_at), crate::email::jst_en(opens_at));
        let mut error = ApiError::from(ErrorCode::RegistrationNotOpen);
        error.message = format!("Passkey registration opens at {en}. It cannot be done in advance.").into();
        error.message_ja = format!("パスキーの登録は{ja}から受け付けます。事前の登録はできません。").into();
        error.details.opens_at = Some(ledger_domain::japan::japan_time(opens_at).to_rfc3339());
        error
    }

    /// Something broke inside; the cause goes to the log only.
    /// The database is out of reach: 503 `unavailable` with Retry-After,
    /// logged as a warning (the outage, not the request, is at fault).
    pub fn unavailable(cause: impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %cause, "database unavailable");
        ApiError::from(ErrorCode::Unavailable).retry_after(std::time::Duration::from_secs(5))
    }

    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ErrorCode::InternalError.into()
    }

    /// A request body or parameter that does not parse.
    pub fn bad_request(what: &'static str) -> ApiError {
        ApiError::saying(ErrorCode::InvalidRequest, what)
    }

    pub fn not_found() -> ApiError {
        ErrorCode::NotFound.into()
    }

    pub fn unauthorized() -> ApiError {
        ErrorCode::Unauthorized.into()
    }

    pub fn forbidden() -> ApiError {
        ErrorCode::Forbidden.into()
    }

    pub fn conflict_retry() -> ApiError {
        ErrorCode::ConcurrentUpdate.into()
    }

    pub fn ceremony_expired() -> ApiError {
        ErrorCode::CeremonyExpired.into()
    }
}

/// The body of every error answer: `{"error": {code, message, message_ja, ...details}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// A stable code, and what it means in English and Japanese; some codes
/// add details (`attempts_left`, `opens_at`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    code: ErrorCode,
    message: Cow<'static, str>,
    message_ja: Cow<'static, str>,
    #[serde(flatten)]
    details: Details,
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

/// In the OpenAPI document: a string, one of the table's codes.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let mut codes: Vec<&str> = Vec::new();
        for code in ErrorCode::ALL.iter().map(|c| c.code()) {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes)).into()
    }
}

impl ToSchema for ErrorCode {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.details.retry_after_secs;
        let body =
            ErrorBody { error: ErrorDetail { code: self.code, message: self.message, message_ja: self.message_ja, details: self.details } };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ledger_projections::DbError> for ApiError {
    fn from(e: ledger_projections::DbError) -> ApiError {
        if e.is_outage() {
            return ApiError::unavailable(e);
        }
        ApiError::internal(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        ApiError::from(ledger_projections::DbError::Sql(e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn every_code_has_one_status_and_both_messages() {
        let mut statuses: HashMap<&str, Vec<StatusCode>> = HashMap::new();
        for code in ErrorCode::ALL {
            let spec = code.spec();
            assert!(spec.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{spec:?}");
            assert!(spec.status.is_client_error() || spec.status.is_server_error(), "{spec:?}");
            assert!(!spec.en.is_empty() && spec.en.is_ascii() || spec.en.contains("パスキー登録"), "{spec:?}");
            assert!(!spec.ja.is_ascii(), "the Japanese message is Japanese: {spec:?}");
            let seen = statuses.entry(spec.code).or_default();
            if !seen.contains(&spec.status) {
                seen.push(spec.status);
            }
        }
        // One code, one status; API.md's single exception: a credential
        // that does not verify is 400 when registered, 401 when asserted.
        for (code, seen) in &statuses {
            match *code {
                "invalid_credential" => assert_eq!(seen, &[StatusCode::UNAUTHORIZED, StatusCode::BAD_REQUEST]),
                _ => assert_eq!(seen.len(), 1, "{code} answers {seen:?}"),
            }
        }
    }

    #[test]
    fn every_refusal_keeps_the_domain_s_code() {
        for refusal in Refusal::ALL {
            assert_eq!(ErrorCode::from(*refusal).code(), refusal.code(), "{refusal:?}");
            assert!(ErrorCode::ALL.contains(&ErrorCode::from(*refusal)));
        }
    }

    #[test]
    fn the_status_comes_from_the_code() {
        let error = ApiError::saying(ErrorCode::InvalidFilter, "from must be a date");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::from(Refusal::LoginLocked).status(), StatusCode::LOCKED);
        assert_eq!(ApiError::from(ErrorCode::InvalidNewCredential).code.code(), "invalid_credential");
    }
}
