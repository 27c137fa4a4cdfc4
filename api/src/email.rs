//! E-mail: the one-time code message, in Japanese with an English line,
//! sent through SMTP or written as `.eml` files to a folder.

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, MailTransport};

/// Sends the ledger's messages.
pub enum Mailer {
    Folder(AsyncFileTransport<Tokio1Executor>, std::path::PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// A security notice to the customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    PasskeyAdded {
        name: String,
        at: DateTime<Utc>,
        environment: String,
    },
    PasskeysDeleted {
        names: String,
        at: DateTime<Utc>,
        by_support: bool,
    },
    Login {
        at: DateTime<Utc>,
        method: String,
        environment: String,
    },
    /// To the address that was replaced: it no longer gets the account's
    /// mail (a takeover often starts with a changed address).
    EmailChanged {
        at: DateTime<Utc>,
        to_masked: String,
    },
    /// A passkey answered with a signature counter that went backwards (a
    /// possible copy): it may not log in until support has checked it.
    PasskeySuspended {
        /// 「name」 of each, in a row.
        names: String,
        at: DateTime<Utc>,
        /// Whether another passkey still logs in.
        others_usable: bool,
    },
    /// Support lifted a passkey's suspension after checking with the customer.
    PasskeyReinstated {
        name: String,
        at: DateTime<Utc>,
    },
    /// The customer's "this wasn't me" report was received and acted on.
    ActivityReported {
        at: DateTime<Utc>,
        sessions_ended: u32,
        passkeys_revoked: usize,
    },
}

impl Notice {
    /// The kind as recorded in `SecurityNoticeSent`.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::PasskeyAdded { .. } => "passkey_added",
            Notice::PasskeysDeleted { .. } => "passkeys_deleted",
            Notice::Login { .. } => "login",
            Notice::EmailChanged { .. } => "email_changed",
            Notice::PasskeySuspended { .. } => "passkey_suspended",
            Notice::PasskeyReinstated { .. } => "passkey_reinstated",
            Notice::ActivityReported { .. } => "activity_reported",
        }
    }
}

/// A message could not be sent. The text never contains the code.
#[derive(Debug, thiserror::Error)]
#[error("e-mail: {0}")]
pub struct MailError(String);

/// Formats an instant in Japan Standard Time, as the customer reads it.
pub fn jst(at: DateTime<Utc>) -> String {
    ledger_domain::japan::japan_time(at).format("%Y年%m月%d日 %H:%M (JST)").to_string()
}

/// `smtp+starttls://host:587` (a common spelling) is lettre's
/// `smtp://host:587?tls=required`: STARTTLS, required.
fn starttls_alias(url: &str) -> String {
    match url.strip_prefix("smtp+starttls://") {
        Some(rest) if rest.contains("tls=") => format!("smtp://{rest}"),
        Some(rest) if rest.contains('?') => format!("smtp://{rest}&tls=required"),
        Some(rest) => format!("smtp://{rest}?tls=required"),
        None => url.to_string(),
    }
}

impl Mailer {
    /// The transport the configuration names.
    pub fn from_config(config: &Config) -> Result<Mailer, MailError> {
        match &config.mail {
            MailTransport::Folder(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| MailError(format!("{}: {e}", dir.display())))?;
                Ok(Mailer::Folder(AsyncFileTransport::new(dir), dir.clone()))
            }
            MailTransport::Smtp(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(&starttls_alias(url))
                .map(|b| Mailer::Smtp(b.timeout(Some(std::time::Duration::from_secs(config.smtp_timeout_secs))).build()))
                .map_err(|e| MailError(format!("LEDGER_SMTP_URL: {e}"))),
        }
    }

    /// Sends the one-time code to the registered address.
    pub async fn send_code(
        &self,
        config: &Config,
        to: &str,
        code: &crate::secrets::OtpCode,
        expires_at: DateTime<Utc>,
        purpose: ledger_domain::account::FlowPurpose,
    ) -> Result<(), MailError> {
        use ledger_domain::account::FlowPurpose;
        let (subject, what) = match purpose {
            FlowPurpose::Registration => (config.mail_subject.as_str(), "パスキー登録のための認証コード"),
            FlowPurpose::PasswordLogin | FlowPurpose::SecondFactorLogin => {
                (config.login_mail_subject.as_str(), "ログインのための認証コード")
            }
        };
        let body = format!(
            "{brokerage}をご利用いただきありがとうございます。\r\n\
             \r\n\
             {what}をお知らせします。\r\n\
             \r\n\
             認証コード:\r\n\
             {code}\r\n\
             \r\n\
             有効期限: {expiry}\r\n\
             \r\n\
             このコードを画面に入力してください。お心当たりのない場合は、このメールを破棄し、当社までご連絡ください。\r\n\
             当社がメールでパスワードの入力をお願いすることはありません。\r\n\
             \r\n\
             Your verification code is {code}. It expires at {expiry}.\r\n\
             We never ask for your password by e-mail.\r\n",
            brokerage = config.brokerage_name,
            code = code.for_mail(),
            expiry = jst(expires_at),
        );
        self.send(config, to, subject, body).await
    }

    /// Tells the customer, at the registered address (a channel independent
    /// of the action, NIST SP 800-63B rev 4 4.1.2.1), that passkeys were
    /// added or deleted, or that someone logged in. No link in it.
    pub async fn send_notice(&self, config: &Config, to: &str, notice: &Notice) -> Result<(), MailError> {
        let (subject, what_ja, what_en) = match notice {
            Notice::PasskeyAdded { name, at, environment } => (
                "【重要】パスキーが登録されました / A passkey was added",
                format!("お客様の口座にパスキー「{name}」が登録されました。\r\n日時: {}\r\n端末: {environment}", jst(*at)),
                format!("The passkey \"{name}\" was added to your account at {} ({environment}).", jst(*at)),
            ),
            Notice::PasskeysDeleted { names, at, by_support } => {
                let by_ja = if *by_support { "（カスタマーサポートによる削除）" } else { "" };
                let by_en = if *by_support { " by our support desk" } else { "" };
                (
                    "【重要】パスキーが削除されました / Passkeys were deleted",
                    format!("お客様の口座からパスキー {names} が削除されました{by_ja}。\r\n日時: {}", jst(*at)),
                    format!("The passkey(s) {names} were deleted from your account{by_en} at {}.", jst(*at)),
                )
            }
            Notice::Login { at, method, environment } => (
                "【ログインのお知らせ】 / New login to your account",
                format!("お客様の口座にログインがありました。\r\n日時: {}\r\n方法: {method}\r\n端末: {environment}", jst(*at)),
                format!("Your account was logged in to at {} ({method}, {environment}).", jst(*at)),
            ),
            Notice::EmailChanged { at, to_masked } => (
                "【重要】登録メールアドレスが変更されました / Your registered e-mail address was changed",
                format!(
                    "お客様の口座の登録メールアドレスが {to_masked} に変更されました。\r\n日時: {}\r\n今後、このアドレスには口座からのメールは届きません。",
                    jst(*at)
                ),
                format!(
                    "The e-mail address registered on your account was changed to {to_masked} at {}. This address will no longer receive the account's mail.",
                    jst(*at)
                ),
            ),
            Notice::PasskeySuspended { names, at, others_usable } => {
                let (next_ja, next_en) = if *others_usable {
                    (
                        "一時停止していない別のパスキーでは引き続きログインできます。停止したパスキーを再びご利用いただくには、カスタマーサポートまでご連絡ください。",
                        "Your passkeys that are not suspended still work. To use a suspended one again, please contact our support desk.",
                    )
                } else {
                    (
                        "ログインできるパスキーがないため、カスタマーサポートまでご連絡ください。ご本人確認のうえ、ログインできるようにいたします。",
                        "You have no other passkey to log in with: please contact our support desk, which will confirm your identity and restore your access.",
                    )
                };
                (
                    "【重要】パスキーを一時停止しました / A passkey was suspended",
                    format!(
                        "お客様のパスキー{names}から、複製された可能性を示す応答がありました。安全のため、ログインを一時停止しました。\r\n日時: {}\r\n{next_ja}",
                        jst(*at)
                    ),
                    format!(
                        "Your passkey(s) {names} answered in a way that suggests a copy exists. For your security, logins with them are suspended as of {}. {next_en}",
                        jst(*at)
                    ),
                )
            }
            Notice::PasskeyReinstated { name, at } => (
                "【ご案内】パスキーの一時停止を解除しました / Your passkey can be used again",
                format!("カスタマーサポートでの確認のうえ、パスキー「{name}」の一時停止を解除しました。\r\n日時: {}", jst(*at)),
                format!("After checking with you, our support desk lifted the suspension of your passkey \"{name}\" at {}.", jst(*at)),
            ),
            Notice::ActivityReported { at, sessions_ended, passkeys_revoked } => (
                "【重要】身に覚えのない操作のご報告を受け付けました / We received your report",
                format!(
                    "身に覚えのない操作のご報告を受け付けました。\r\n日時: {}\r\n安全のため、他の端末{sessions_ended}台をログアウトし、パスキー{passkeys_revoked}件を削除しました。当社で内容を確認し、必要に応じてご連絡いたします。",
                    jst(*at)
                ),
                format!(
                    "We received your report of activity you did not recognise at {}. For your security we signed out {sessions_ended} other device(s) and deleted {passkeys_revoked} passkey(s). We will look into it and contact you if needed.",
                    jst(*at)
                ),
            ),
        };
        let body = format!(
            "{brokerage}をご利用いただきありがとうございます。\r\n\
             \r\n\
             {what_ja}\r\n\
             \r\n\
             お心当たりのない場合は、至急カスタマーサポートまでお電話でご連絡ください。\r\n\
             当社がメールでパスワードの入力をお願いすることはありません。このメールにリンクはありません。\r\n\
             \r\n\
             {what_en}\r\n\
             If this was not you, please call our support desk at once. We never ask for your password by e-mail.\r\n",
            brokerage = config.brokerage_name,
        );
        self.send(config, to, subject, body).await
    }

    async fn send(&self, config: &Config, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let from: Mailbox = config.mail_from.parse().map_err(|e| MailError(format!("LEDGER_MAIL_FROM: {e}")))?;
        let to: Mailbox = to.parse().map_err(|e| MailError(format!("recipient: {e}")))?;
        // A Message-ID in the sender's domain: receivers down-score mail
        // without one, and the relay need not add its own.
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), from.email.domain());
        let message = Message::builder()
            .message_id(Some(message_id))
            .from(from)
            .to(to)
            .subject(subject)
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).header(ContentTransferEncoding::QuotedPrintable).body(body))
            .map_err(|e| MailError(e.to_string()))?;
        match self {
            Mailer::Folder(transport, dir) => {
                let id = transport.send(message).await.map_err(|e| MailError(e.to_string()))?;
                tracing::info!(path = %dir.join(format!("{id}.eml")).display(), "e-mail written to the outbox folder");
            }
            Mailer::Smtp(transport) => {
                // A relay that accepts the connection and then says nothing
                // must not hold the customer's request (nor a shutdown).
                let limit = std::time::Duration::from_secs(config.smtp_timeout_secs);
                match tokio::time::timeout(limit, transport.send(message)).await {
                    Ok(sent) => sent.map_err(|e| MailError(e.to_string()))?,
                    Err(_) => return Err(MailError(format!("the SMTP server did not answer within {} s", config.smtp_timeout_secs))),
                };
                tracing::info!("e-mail handed to the SMTP server");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiry_is_shown_in_japan_time() {
        let at = Utc.with_ymd_and_hms(2026, 6, 21, 9, 5, 0).unwrap();
        assert_eq!(jst(at), "2026年06月21日 18:05 (JST)");
    }
}

#[cfg(test)]
mod starttls_tests {
    #[test]
    fn smtp_starttls_is_smtp_with_tls_required() {
        assert_eq!(super::starttls_alias("smtp+starttls://u:p@mail.example.jp:587"), "smtp://u:p@mail.example.jp:587?tls=required");
        assert_eq!(super::starttls_alias("smtp+starttls://mail.example.jp?x=1"), "smtp://mail.example.jp?x=1&tls=required");
        assert_eq!(super::starttls_alias("smtps://mail.example.jp"), "smtps://mail.example.jp");
    }
}
