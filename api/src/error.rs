//! The one error type of the HTTP layer: a status, a stable snake_case code,
//! and an English and a Japanese message. Internal details are logged here
//! and never returned.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger_domain::Refusal;
use serde_json::{json, Map, Value};

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub message_ja: Cow<'static, str>,
    pub details: Map<String, Value>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: &'static str, message_ja: &'static str) -> ApiError {
        ApiError { status, code, message: message.into(), message_ja: message_ja.into(), details: Map::new() }
    }

    /// Adds a detail field beside the code (e.g. `attempts_left`).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// Registration before the deployment's launch instant (seed 000), with
    /// the opening time in Japan time.
    pub fn registration_not_open(opens_at: chrono::DateTime<chrono::Utc>) -> ApiError {
        let jst = crate::email::jst(opens_at);
        let mut error = ApiError::from(Refusal::RegistrationNotOpen);
        error.message = format!("Passkey registration opens at {jst}. It cannot be done in advance.").into();
        error.message_ja = format!("パスキーの登録は{jst}から受け付けます。事前の登録はできません。").into();
        error.with("opens_at", opens_at.with_timezone(&crate::email::japan()).to_rfc3339())
    }

    /// Something broke inside; the cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side. Please try again later.",
            "システムエラーが発生しました。しばらくしてから再度お試しください。",
        )
    }

    /// A request body or parameter that does not parse.
    pub fn bad_request(what: &'static str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", what, "入力内容に誤りがあります。")
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found.", "対象が見つかりません。")
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Please log in.", "ログインしてください。")
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", "You are not allowed to do this.", "この操作は許可されていません。")
    }

    pub fn conflict_retry() -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "concurrent_update",
            "The account was changed at the same moment. Please try again.",
            "同時に別の操作が行われました。もう一度お試しください。",
        )
    }

    pub fn ceremony_expired() -> ApiError {
        ApiError::new(
            StatusCode::GONE,
            "ceremony_expired",
            "The passkey request has expired or was already used. Please start again.",
            "パスキーの要求が期限切れか使用済みです。最初からやり直してください。",
        )
    }
}

impl From<Refusal> for ApiError {
    /// The one place where a domain refusal becomes an HTTP status.
    fn from(r: Refusal) -> ApiError {
        use StatusCode as S;
        let (status, en, ja) = match r {
            Refusal::InvalidCredentials => {
                (S::UNAUTHORIZED, "The login ID or password is incorrect.", "ログインIDまたはパスワードが正しくありません。")
            }
            Refusal::LoginLocked => (
                S::LOCKED,
                "Login is locked after too many wrong passwords. Please contact support.",
                "パスワードの誤入力が規定回数を超えたため、ログインがロックされています。サポートまでご連絡ください。",
            ),
            Refusal::TemporaryPassword => (
                S::FORBIDDEN,
                "Your login password is temporary. Please change it before registering a passkey.",
                "ログインパスワードが仮パスワードです。パスキー登録の前にパスワードを変更してください。",
            ),
            Refusal::EmailUnreachable => (
                S::CONFLICT,
                "No e-mail address that can receive our mail is registered. Please register one first.",
                "受信可能なメールアドレスが登録されていません。先にメールアドレスをご登録ください。",
            ),
            Refusal::EmailSharedWithOtherAccounts => (
                S::CONFLICT,
                "The same e-mail address is registered on another account. Each account needs a different address.",
                "ご家族の口座や法人口座で同じメールアドレスが登録されています。口座ごとに異なるメールアドレスをご登録ください。",
            ),
            Refusal::PasskeyAlreadyRegistered => (
                S::CONFLICT,
                "A passkey is already registered. Please log in with your passkey.",
                "パスキーは登録済みです。パスキーでログインしてください。",
            ),
            Refusal::PasskeyRequired => (
                S::FORBIDDEN,
                "Please log in with your passkey. Password login is no longer available for this account or channel.",
                "パスキーでログインしてください。パスワードとメール認証によるログインはご利用いただけません。",
            ),
            Refusal::InvalidCode => (S::UNAUTHORIZED, "The code is incorrect.", "認証コードが正しくありません。"),
            Refusal::CodeExpired => {
                (S::GONE, "The code has expired. Please request a new one.", "認証コードの有効期限が切れています。再送信してください。")
            }
            Refusal::TooManyAttempts => (
                S::TOO_MANY_REQUESTS,
                "Too many wrong codes. Please start again.",
                "認証コードの誤入力が規定回数を超えました。最初からやり直してください。",
            ),
            Refusal::ResendTooSoon => (
                S::TOO_MANY_REQUESTS,
                "Please wait a minute before requesting another code.",
                "認証コードの再送信は1分以上あけてお試しください。",
            ),
            Refusal::ResendLimitReached => (
                S::TOO_MANY_REQUESTS,
                "Too many codes requested this hour. Please try again later.",
                "1時間あたりの再送信回数の上限に達しました。しばらくしてからお試しください。",
            ),
            Refusal::FlowExpired => (
                S::GONE,
                "This registration has expired. Please start again.",
                "手続きの有効期限が切れました。最初からやり直してください。",
            ),
            Refusal::WrongStep => (
                S::CONFLICT,
                "This step is not available now. Please start again.",
                "この手順は現在ご利用いただけません。最初からやり直してください。",
            ),
            Refusal::InvalidCredential => (S::UNAUTHORIZED, "The passkey could not be verified.", "パスキーを確認できませんでした。"),
            Refusal::RevokedCredential => (
                S::UNAUTHORIZED,
                "This passkey has been deleted from your account. Please log in with your password and register a new passkey.",
                "このパスキーは削除されています。パスワードでログインし、パスキーを再登録してください。",
            ),
            Refusal::CounterRegression => (
                S::UNAUTHORIZED,
                "This passkey could not be trusted. Please contact support.",
                "このパスキーは安全性を確認できませんでした。サポートまでご連絡ください。",
            ),
            Refusal::RecentLoginRequired => (
                S::FORBIDDEN,
                "For your security, please log in again before adding a passkey.",
                "安全のため、パスキーを追加する前にもう一度ログインしてください。",
            ),
            Refusal::PasskeyLimitReached => (
                S::CONFLICT,
                "No more passkeys can be added to this account. Please delete one first.",
                "登録できるパスキーの上限に達しています。不要なパスキーを削除してから追加してください。",
            ),
            Refusal::InvalidTransactionPassword => {
                (S::UNAUTHORIZED, "The trading password is incorrect.", "執行パスワードが正しくありません。")
            }
            Refusal::TradingPasswordLocked => (
                S::LOCKED,
                "The trading password is locked after too many wrong entries. Please contact support.",
                "執行パスワードの誤りが続いたため、執行パスワードはロックされています。サポートまでご連絡ください。",
            ),
            Refusal::DeletionLocked => (
                S::LOCKED,
                "Passkey deletion is locked after too many wrong trading passwords. Please contact support.",
                "執行パスワードの誤りが続いたため、パスキーの削除はロックされています。サポートまでご連絡ください。",
            ),
            Refusal::CredentialAlreadyRegistered => (
                S::CONFLICT,
                "This passkey is already registered. Please create a new passkey on your device and try again.",
                "このパスキーは既に登録されています。端末で新しいパスキーを作成して、もう一度お試しください。",
            ),
            Refusal::WrongChannel => (
                S::CONFLICT,
                "This procedure was started in another app or browser. Please start again here.",
                "この手続きは別のアプリまたはブラウザで開始されています。こちらで最初からやり直してください。",
            ),
            Refusal::FlowClosed => (
                S::CONFLICT,
                "Your account details changed during this procedure. Please start again.",
                "手続き中にお客様の登録情報が変更されました。最初からやり直してください。",
            ),
            Refusal::RegistrationNotOpen => (
                S::FORBIDDEN,
                "Passkey registration has not opened yet. Please try again once it opens.",
                "パスキーの登録受付はまだ開始していません。受付開始後にお手続きください。",
            ),
            Refusal::PasskeyRegistrationRequired => (
                S::FORBIDDEN,
                "A passkey is now required to log in here. Please register a passkey (パスキー登録) first.",
                "こちらからのログインにはパスキーが必要になりました。先にパスキーの登録をお願いいたします。",
            ),
            Refusal::UnsupportedBrowser => (
                S::BAD_REQUEST,
                "Passkeys cannot be registered in an app's built-in browser (such as the Google app or the Yahoo! JAPAN app). Please open this page in your device's standard browser: Safari on iPhone and iPad, Chrome on Android.",
                "GoogleアプリやYahoo!JAPANアプリなど、アプリ内のブラウザではパスキーを登録できません。お使いの端末の標準ブラウザ（iPhone・iPadはSafari、AndroidはChrome）からアクセスしてください。",
            ),
            Refusal::DeletionBySupportOnly => (
                S::FORBIDDEN,
                "To delete a passkey, please contact our customer support.",
                "パスキーの削除をご希望の場合は当社カスタマーサポートまでお問い合わせください。",
            ),
            Refusal::StepUpRequired => (
                S::FORBIDDEN,
                "To register a passkey here, please first confirm with your trading password (or the code we e-mail you).",
                "パスキーを登録するには、先に執行パスワード（または当社からメールでお送りする認証コード）で確認してください。",
            ),
            Refusal::PasswordStepRequired => (
                S::FORBIDDEN,
                "Please log in with your login ID and password first; your passkey is asked for next.",
                "ログインIDとパスワードでログインしてください。続けてパスキーでの認証をお願いします。",
            ),
        };
        let error = ApiError::new(status, r.code(), en, ja);
        match r {
            // The page leads to registration rather than to a passkey login.
            Refusal::PasskeyRegistrationRequired => error.with("next", "register_passkey"),
            _ => error,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        error.insert("message_ja".into(), json!(self.message_ja));
        error.extend(self.details);
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<ledger_projections::DbError> for ApiError {
    fn from(e: ledger_projections::DbError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        ApiError::internal(e)
    }
}
