//! E-mail: the one-time code message, in Japanese with an English line,
//! sent through SMTP or written as `.eml` files to a folder.

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use ledger_domain::Environment;

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
        environment: Option<Environment>,
    },
    PasskeysDeleted {
        names: Vec<String>,
        at: DateTime<Utc>,
        by_support: bool,
    },
    Login {
        at: DateTime<Utc>,
        /// How the session was opened (`passkey`, `cross_device`, ...).
        method: String,
        environment: Option<Environment>,
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
        names: Vec<String>,
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

/// An instant in Japan time, as the Japanese part of a mail gives it.
pub fn jst(at: DateTime<Utc>) -> String {
    ledger_domain::japan::japan_time(at).format("%Y年%m月%d日 %H:%M（日本時間）").to_string()
}

/// The same instant, as the English part gives it.
pub fn jst_en(at: DateTime<Utc>) -> String {
    ledger_domain::japan::japan_time(at).format("%Y-%m-%d %H:%M (JST)").to_string()
}

/// What divides a mail's Japanese part from its English part.
pub const ENGLISH_PART: &str = "-------- English --------";

/// A mail's own words: its subject, and what it says in each language.
struct Letter {
    subject: String,
    ja: String,
    en: String,
}

/// What closes a mail: for a code, the warning against handing it over
/// (real-time phishing asks for it on the telephone); for a notice, what to
/// do if it was not the customer.
#[derive(Clone, Copy, PartialEq)]
enum Closing {
    Code,
    Notice,
}

/// The whole mail, the same frame for every kind: salutation, the
/// brokerage's greeting, the letter, the warning, no link (and where to
/// look instead), and the brokerage's signature with its registration and
/// support desk; then the same in English.
fn compose(config: &Config, letter: Letter, closing: Closing) -> (String, String) {
    let b = &config.brokerage;
    let (closing_ja, closing_en) = match closing {
        Closing::Code => (
            "このコードを他人に教えないでください。当社社員がお電話などでコードをお伺いすることはありません。\r\n\
             お心当たりのない場合は、このメールを破棄し、サポートデスクまでご連絡ください。",
            "Do not tell this code to anyone: our staff will never ask you for it, by telephone or otherwise.\r\n\
             If you did not ask for it, please delete this e-mail and call our support desk.",
        ),
        Closing::Notice => (
            "お心当たりのない場合は、当社サイトまたはアプリの「セキュリティ履歴」で、その操作の「身に覚えがない」を押してください（24時間受け付けます）。他の端末はすぐにログアウトされ、使われたパスキーがあれば削除されます。あわせてサポートデスクまでお電話ください。",
            "If this was not you, press \"This wasn't me\" on it in \"Security activity\" on our site or app (any time, day or night): your other devices are signed out at once, and the passkey it used is deleted if there was one. Please also call our support desk.",
        ),
    };
    let look = match closing {
        Closing::Notice => (
            "ご確認の際は、ブックマークまたは公式アプリからお客様ご自身で当社サイトを開き、「セキュリティ履歴」をご覧ください。",
            " To check, open our site or app yourself (from your bookmark or the official app) and look at \"Security activity\".",
        ),
        Closing::Code => ("", ""),
    };
    let body = format!(
        "お客様\r\n\
         \r\n\
         いつも{name_ja}をご利用いただき、誠にありがとうございます。\r\n\
         \r\n\
         {ja}\r\n\
         \r\n\
         {closing_ja}\r\n\
         当社がメールやお電話でパスワード・認証コードをお尋ねすることはありません。\r\n\
         このメールにリンクはありません。{look_ja}\r\n\
         \r\n\
         ――――――――――――――――――――\r\n\
         {name_ja}\r\n\
         {registration}\r\n\
         サポートデスク：{phone}（{hours_ja}）\r\n\
         このメールは送信専用です。ご返信いただいてもお答えできません。\r\n\
         \r\n\
         {english}\r\n\
         \r\n\
         Dear customer,\r\n\
         \r\n\
         Thank you for using {name_en}.\r\n\
         \r\n\
         {en}\r\n\
         \r\n\
         {closing_en}\r\n\
         We never ask you to tell us your password or a code, by e-mail or telephone.\r\n\
         This e-mail contains no links.{look_en}\r\n\
         \r\n\
         {name_en}\r\n\
         {registration_en}\r\n\
         Support desk: {phone} ({hours_en})\r\n\
         This address does not receive replies.\r\n",
        name_ja = b.name_ja,
        name_en = b.name_en,
        ja = letter.ja,
        en = letter.en,
        look_ja = look.0,
        look_en = look.1,
        registration = b.registration,
        registration_en = b.registration_en,
        phone = b.support_phone,
        hours_ja = b.support_hours_ja,
        hours_en = b.support_hours_en,
        english = ENGLISH_PART,
    );
    (letter.subject, body)
}

/// The one-time code mail: subject and body.
pub fn code_mail(config: &Config, code: &str, expires_at: DateTime<Utc>, purpose: ledger_domain::account::FlowPurpose) -> (String, String) {
    use ledger_domain::account::FlowPurpose;
    let (subject, what_ja, what_en) = match purpose {
        FlowPurpose::Registration => (config.mail_subject.as_str(), "パスキー登録のための認証コード", "passkey registration"),
        FlowPurpose::PasswordLogin | FlowPurpose::SecondFactorLogin => {
            (config.login_mail_subject.as_str(), "ログインのための認証コード", "login")
        }
    };
    let letter = Letter {
        subject: subject.to_string(),
        ja: format!(
            "{what_ja}をお知らせします。画面に入力してください。\r\n\
             \r\n\
             認証コード:\r\n\
             {code}\r\n\
             \r\n\
             有効期限: {}",
            jst(expires_at)
        ),
        en: format!("Your verification code for {what_en} is {code}. Please enter it on the screen. It expires at {}.", jst_en(expires_at)),
    };
    compose(config, letter, Closing::Code)
}

/// Passkey names in each language's quotes: 「A」「B」, "A", "B".
fn quoted(names: &[String]) -> (String, String) {
    (names.iter().map(|n| format!("「{n}」")).collect(), names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "))
}

/// A device, or "unknown", in each language.
fn device(environment: &Option<Environment>) -> (String, String) {
    match environment {
        Some(e) => {
            let (en, ja) = e.device_words();
            (format!("{ja}、{}", e.versions()), format!("{en}, {}", e.versions()))
        }
        None => ("不明".into(), "unknown".into()),
    }
}

/// A notice mail: subject and body.
pub fn notice_mail(config: &Config, notice: &Notice) -> (String, String) {
    let b = &config.brokerage;
    let letter = match notice {
        Notice::PasskeyAdded { name, at, environment } => {
            let (device_ja, device_en) = device(environment);
            Letter {
                subject: "【重要】パスキーが登録されました / A passkey was added to your account".into(),
                ja: format!("お客様の口座にパスキー「{name}」が登録されました。\r\n日時: {}\r\n端末: {device_ja}", jst(*at)),
                en: format!("The passkey \"{name}\" was added to your account at {} ({device_en}).", jst_en(*at)),
            }
        }
        Notice::PasskeysDeleted { names, at, by_support } => {
            let (names_ja, names_en) = quoted(names);
            let by_ja = if *by_support { "（サポートデスクによる削除）" } else { "" };
            let by_en = if *by_support { " by our support desk" } else { "" };
            Letter {
                subject: "【重要】パスキーが削除されました / Passkeys were deleted from your account".into(),
                ja: format!("お客様の口座からパスキー{names_ja}が削除されました{by_ja}。\r\n日時: {}", jst(*at)),
                en: format!("The passkey(s) {names_en} were deleted from your account{by_en} at {}.", jst_en(*at)),
            }
        }
        Notice::Login { at, method, environment } => {
            let (method_en, method_ja) = ledger_domain::account::login_words(method);
            let (device_ja, device_en) = device(environment);
            Letter {
                subject: format!("【重要】{}へのログインがありました / New login to your {} account", b.name_ja, b.name_en),
                ja: format!(
                    "お客様の口座にログインがありました。\r\n日時: {}\r\n方法: {method_ja}\r\n端末: {device_ja}",
                    jst(*at)
                ),
                en: format!("Your account was logged in to at {} with {method_en}, from {device_en}.", jst_en(*at)),
            }
        }
        Notice::EmailChanged { at, to_masked } => Letter {
            subject: "【重要】登録メールアドレスが変更されました / Your registered e-mail address was changed".into(),
            ja: format!(
                "お客様の口座の登録メールアドレスが {to_masked} に変更されました。\r\n日時: {}\r\n今後、このアドレスには口座からのメールは届きません。",
                jst(*at)
            ),
            en: format!(
                "The e-mail address registered on your account was changed to {to_masked} at {}. This address will no longer receive the account's mail.",
                jst_en(*at)
            ),
        },
        Notice::PasskeySuspended { names, at, others_usable } => {
            let (names_ja, names_en) = quoted(names);
            let (next_ja, next_en) = if *others_usable {
                (
                    "一時停止していない別のパスキーでは引き続きログインできます。停止したパスキーを再びご利用いただくには、サポートデスクまでご連絡ください。",
                    "Your passkeys that are not suspended still work. To use a suspended one again, please contact our support desk.",
                )
            } else {
                (
                    "ログインできるパスキーがないため、サポートデスクまでご連絡ください。ご本人確認のうえ、ログイン方法をご案内いたします。",
                    "You have no other passkey to log in with: please contact our support desk, which will confirm your identity and help you log in again.",
                )
            };
            Letter {
                subject: "【重要】パスキーを一時停止しました / A passkey was suspended".into(),
                ja: format!(
                    "お客様のパスキー{names_ja}について、不正に複製された可能性を検知しました。安全のため、このパスキーによるログインを一時停止しました。\r\n日時: {}\r\n{next_ja}",
                    jst(*at)
                ),
                en: format!(
                    "Your passkey(s) {names_en} answered in a way that suggests a copy exists. For your security, logins with them are suspended as of {}. {next_en}",
                    jst_en(*at)
                ),
            }
        }
        Notice::PasskeyReinstated { name, at } => Letter {
            subject: "【ご案内】パスキーの一時停止を解除しました / Your passkey can be used again".into(),
            ja: format!("サポートデスクでの確認のうえ、パスキー「{name}」の一時停止を解除しました。\r\n日時: {}", jst(*at)),
            en: format!("After checking with you, our support desk lifted the suspension of your passkey \"{name}\" at {}.", jst_en(*at)),
        },
        Notice::ActivityReported { at, sessions_ended, passkeys_revoked } => {
            let mut done_ja = Vec::new();
            let mut done_en = Vec::new();
            if *sessions_ended > 0 {
                done_ja.push(format!("他の端末{sessions_ended}台をログアウトしました"));
                done_en.push(format!("signed out {sessions_ended} other device(s)"));
            }
            if *passkeys_revoked > 0 {
                done_ja.push(format!("その操作に使われたパスキー{passkeys_revoked}件を削除しました"));
                done_en.push(format!("deleted the {passkeys_revoked} passkey(s) it used"));
            }
            let (done_ja, done_en) = if done_ja.is_empty() {
                (String::new(), String::new())
            } else {
                (format!("安全のため、{}。", done_ja.join("。また、")), format!(" For your security we {}.", done_en.join(" and ")))
            };
            Letter {
                subject: "【重要】身に覚えのない操作のご報告を受け付けました / We received your report".into(),
                ja: format!(
                    "身に覚えのない操作のご報告を受け付けました。\r\n日時: {}\r\n{done_ja}当社で内容を確認し、必要に応じてご連絡いたします。\r\nログインパスワードや認証コードを他人に知られた可能性がある場合は、ログインパスワードを変更してください。",
                    jst(*at)
                ),
                en: format!(
                    "We received your report of activity you did not recognise at {}.{done_en} We will look into it and contact you if needed. If someone may know your login password or a code, please change your login password.",
                    jst_en(*at)
                ),
            }
        }
    };
    compose(config, letter, Closing::Notice)
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
        let (subject, body) = code_mail(config, code.for_mail(), expires_at, purpose);
        self.send(config, to, &subject, body).await
    }

    /// Tells the customer, at the registered address (a channel independent
    /// of the action, NIST SP 800-63B rev 4 4.1.2.1), that passkeys were
    /// added or deleted, or that someone logged in. No link in it.
    pub async fn send_notice(&self, config: &Config, to: &str, notice: &Notice) -> Result<(), MailError> {
        let (subject, body) = notice_mail(config, notice);
        self.send(config, to, &subject, body).await
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
    use ledger_domain::account::FlowPurpose;

    #[test]
    fn times_are_shown_in_japan_time_in_each_languages_way() {
        let at = Utc.with_ymd_and_hms(2026, 6, 21, 9, 5, 0).unwrap();
        assert_eq!(jst(at), "2026年06月21日 18:05（日本時間）");
        assert_eq!(jst_en(at), "2026-06-21 18:05 (JST)");
    }

    fn windows() -> Option<Environment> {
        Some(Environment {
            browser: "Chrome".into(),
            browser_version: "148".into(),
            os: "Windows".into(),
            os_version: "11 24H2".into(),
            device_type: "pc".into(),
            recommended: Some(true),
        })
    }

    /// Whether `text` holds two English words in a row (a phrase left in
    /// English), product and device names aside.
    fn english_phrase(text: &str) -> Option<String> {
        let words: Vec<&str> = text.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| w.len() > 1).collect();
        let names = ["Chrome", "Windows", "Safari", "iPhone", "Office", "PC", "Laptop", "Android"];
        words
            .windows(2)
            .find(|w| !names.contains(&w[0]) && !names.contains(&w[1]) && !w.iter().any(|x| x.contains("example")))
            .map(|w| w.join(" "))
    }

    /// Every kind of mail, read in both languages: the Japanese part in
    /// Japanese, the English part in English, each with the salutation, the
    /// warning, "no links" and the brokerage's signature with its
    /// registration and support desk; times in Japan time; no link.
    #[test]
    fn every_mail_reads_in_each_language_with_the_brokerages_signature() {
        let mut config = Config::from_env().unwrap();
        config.brokerage.name_ja = "みらい証券".into();
        config.brokerage.name_en = "Mirai Securities".into();
        config.brokerage.registration = "金融商品取引業者 関東財務局長（金商）第9999号".into();
        config.brokerage.registration_en = "FIBO No. 9999".into();
        config.brokerage.support_phone = "0120-123-456".into();
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 14, 5, 0).unwrap();
        let notices = [
            Notice::PasskeyAdded { name: "Office PC".into(), at, environment: windows() },
            Notice::PasskeysDeleted { names: vec!["Office PC".into(), "iPhone（Safari）".into()], at, by_support: true },
            Notice::Login { at, method: "cross_device".into(), environment: windows() },
            Notice::EmailChanged { at, to_masked: "t***@example.jp".into() },
            Notice::PasskeySuspended { names: vec!["Office PC".into()], at, others_usable: false },
            Notice::PasskeyReinstated { name: "Office PC".into(), at },
            Notice::ActivityReported { at, sessions_ended: 2, passkeys_revoked: 1 },
            Notice::ActivityReported { at, sessions_ended: 0, passkeys_revoked: 0 },
        ];
        let mut mails: Vec<(String, String, String)> = notices
            .iter()
            .map(|n| {
                let (s, b) = notice_mail(&config, n);
                (n.kind().to_string(), s, b)
            })
            .collect();
        for purpose in [FlowPurpose::Registration, FlowPurpose::PasswordLogin] {
            let (s, b) = code_mail(&config, "123456", at, purpose);
            mails.push((format!("code {purpose:?}"), s, b));
        }
        for (kind, subject, body) in &mails {
            let (ja, en) = body.split_once(ENGLISH_PART).unwrap_or_else(|| panic!("{kind}: two parts: {body}"));
            assert!(subject.contains(" / ") && !subject.ends_with('】'), "{kind}: a subject in both languages: {subject}");
            assert!(ja.starts_with("お客様\r\n") && ja.contains("いつもみらい証券をご利用いただき"), "{kind}: {ja}");
            assert!(en.contains("Dear customer,") && en.contains("Thank you for using Mirai Securities."), "{kind}: {en}");
            for part in [ja, en] {
                assert!(part.contains("0120-123-456"), "{kind}: the support desk's number: {part}");
                assert!(!part.contains("http") && !part.contains("www."), "{kind}: no link: {part}");
            }
            assert!(ja.contains("第9999号") && ja.contains("このメールにリンクはありません"), "{kind}: {ja}");
            assert!(en.contains("FIBO No. 9999") && en.contains("This e-mail contains no links."), "{kind}: {en}");
            assert!(ja.contains("2026年11月24日 23:05（日本時間）"), "{kind}: {ja}");
            assert!(en.contains("2026-11-24 23:05 (JST)"), "{kind}: {en}");
            // A passkey's name is the customer's, in whatever language: quoted.
            let unquoted: String = en.split('"').step_by(2).collect();
            assert!(
                !unquoted.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{4e00}'..='\u{9fff}').contains(&c) || c == '「'),
                "{kind}: Japanese in the English part: {en}"
            );
            assert!(!ja.contains("0台") && !ja.contains("0件") && !en.contains(" 0 "), "{kind}: nothing done is not told as zero: {body}");
            if let Some(phrase) = english_phrase(ja) {
                panic!("{kind}: English ({phrase:?}) in the Japanese part: {ja}");
            }
            if kind.starts_with("code") {
                assert!(
                    ja.contains("このコードを他人に教えないでください。当社社員がお電話などでコードをお伺いすることはありません"),
                    "{ja}"
                );
                assert!(en.contains("Do not tell this code to anyone"), "{en}");
            } else {
                assert!(ja.contains("「セキュリティ履歴」をご覧ください"), "{kind}: where to look, without a link: {ja}");
                assert!(en.contains("\"Security activity\""), "{kind}: {en}");
            }
        }
        let login = &mails.iter().find(|(k, _, _)| k == "login").unwrap().2;
        assert!(
            login.contains("方法: クロスデバイス認証")
                && login.contains("端末: Windows のパソコン（Chrome）、Chrome 148 / Windows 11 24H2"),
            "{login}"
        );
        assert!(login.contains("with a cross-device sign-in, from Windows PC (Chrome)"), "{login}");
        assert!(mails.iter().find(|(k, _, _)| k == "login").unwrap().1.contains("みらい証券へのログインがありました"));
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
