//! The console's layout and the helpers its pages share.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::auth::ConsoleStaff;
use crate::error::ApiError;
use crate::http::extract::Role;

/// A label in Japanese with the English beside it.
pub fn both(ja: &str, en: &str) -> Markup {
    html! { (ja) " " span.en lang="en" { (en) } }
}

/// A time in Japan time, to the second.
pub fn jst(at: DateTime<Utc>) -> String {
    ledger_domain::japan::japan_time(at).format("%Y-%m-%d %H:%M:%S JST").to_string()
}

/// An RFC 3339 Japan time (as the API gives it) shortened for a table.
pub fn jst_text(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339).map(|t| jst(t.with_timezone(&Utc))).unwrap_or_else(|_| rfc3339.to_string())
}

/// The whole page: header with the member and the sign-out, navigation by
/// role, then `body`.
pub fn layout(title_ja: &str, title_en: &str, staff: Option<&ConsoleStaff>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ja" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title_ja) " / " (title_en) " — パスキー台帳コンソール" }
                link rel="stylesheet" href="/console/console.css";
                script src="/console/console.js" defer {}
            }
            body {
                a.skip href="#main" { "本文へ移動 / Skip to content" }
                header.top {
                    div.brand { a href="/console" { "パスキー台帳 コンソール" } span.en lang="en" { "Ledger console" } }
                    @if let Some(staff) = staff {
                        nav aria-label="メニュー / Menu" {
                            ul {
                                @if staff.may(&[Role::Support, Role::Compliance]) {
                                    li { a href="/console/accounts" { (both("口座検索", "Accounts")) } }
                                }
                                @if staff.may(&[Role::Compliance]) {
                                    li { a href="/console/audit" { (both("監査証跡", "Audit trail")) } }
                                    li { a href="/console/proofs" { (both("証明", "Proofs")) } }
                                    li { a href="/console/signals?status=open" { (both("不正検知", "Fraud signals")) } }
                                    li { a href="/console/adoption" { (both("利用状況", "Adoption")) } }
                                }
                                @if staff.may(&[]) {
                                    li { a href="/console/staff" { (both("担当者管理", "Staff")) } }
                                    li { a href="/console/streams" { (both("配信", "Streams")) } }
                                }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            span.who { (staff.staff.name) " (" (role_words(staff.staff.role).0) " / " (role_words(staff.staff.role).1) ")" }
                            input type="hidden" name="csrf" value=(staff.csrf);
                            button type="submit" { (both("サインアウト", "Sign out")) }
                        }
                    }
                }
                main #main {
                    h1 { (title_ja) " " span.en lang="en" { (title_en) } }
                    (body)
                }
            }
        }
    }
}

/// A role in Japanese and English.
pub fn role_words(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::Admin => ("管理者", "admin"),
        Role::Support => ("サポート", "support"),
        Role::Compliance => ("コンプライアンス", "compliance"),
    }
}

/// The confirmation step of an action: what it will do (`what`), then a
/// form that posts `fields` again with `confirmed=yes` to `action`, and a
/// way back to `cancel`.
pub fn confirmation(
    staff: &ConsoleStaff,
    what: Markup,
    action: &str,
    fields: &[(&str, &str)],
    button: (&str, &str),
    cancel: &str,
) -> Response {
    let body = html! {
        section.card.confirm {
            (what)
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(staff.csrf);
                @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
                input type="hidden" name="confirmed" value="yes";
                button #confirm type="submit" { (both(button.0, button.1)) }
                " " a href=(cancel) { (both("やめる", "Cancel")) }
            }
        }
    };
    page(layout("確認", "Confirm", Some(staff), body))
}

/// A console page as a response.
pub fn page(markup: Markup) -> Response {
    (StatusCode::OK, markup).into_response()
}

/// What a console request answers when it fails: a page in both
/// languages, with the status and the stable code of the API's error.
pub struct ConsoleError {
    /// The form's CSRF token was not this session's (an old tab, another
    /// session): not a role refusal.
    pub stale_form: bool,
    pub error: Box<ApiError>,
    pub staff: Option<Box<ConsoleStaff>>,
}

impl From<ApiError> for ConsoleError {
    fn from(error: ApiError) -> Self {
        ConsoleError { stale_form: false, error: Box::new(error), staff: None }
    }
}

impl From<crate::storage::DbError> for ConsoleError {
    fn from(error: crate::storage::DbError) -> Self {
        ConsoleError { stale_form: false, error: Box::new(error.into()), staff: None }
    }
}

/// Attaches the signed-in member to an error, so its page keeps the menu.
pub trait ForStaff<T> {
    fn for_staff(self, staff: &ConsoleStaff) -> Result<T, ConsoleError>;
}

impl<T> ForStaff<T> for Result<T, ApiError> {
    fn for_staff(self, staff: &ConsoleStaff) -> Result<T, ConsoleError> {
        self.map_err(|error| ConsoleError { stale_form: false, error: Box::new(error), staff: Some(Box::new(staff.clone())) })
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if self.stale_form {
            let body = html! {
                div.error role="alert" {
                    p { "このフォームは古くなったか、このセッションのものではありません（サインアウトや時間切れの後など）。何も実行していません。画面を開き直してください。" }
                    p lang="en" { "This form has expired or belongs to another session (after a sign-out or a timeout). Nothing was done; open the page again." }
                    p.code { "code: " code { "stale_form" } }
                }
                p { a href="/console" { (both("コンソールのトップへ", "Back to the console")) } }
            };
            return (StatusCode::FORBIDDEN, layout("フォームの有効期限切れ", "Form expired", self.staff.as_deref(), body)).into_response();
        }
        let status = self.error.status();
        let (en, ja) = self.error.messages();
        let code = self.error.code.code();
        let (title_ja, title_en) = match status {
            StatusCode::FORBIDDEN => ("この画面は利用できません", "Not open to your role"),
            StatusCode::NOT_FOUND => ("見つかりません", "Not found"),
            s if s.is_server_error() => ("処理できませんでした", "Could not be done"),
            _ => ("入力を確認してください", "Please check the request"),
        };
        let body = html! {
            div.error role="alert" {
                p { (ja) }
                p lang="en" { (en) }
                @if status == StatusCode::FORBIDDEN {
                    p { "この操作はあなたの役割では許可されていません。記録されました。" }
                    p lang="en" { "Your role does not allow this; the attempt was recorded." }
                }
                p.code { "code: " code { (code) } }
            }
            p { a href="/console" { (both("コンソールのトップへ", "Back to the console")) } }
        };
        (status, layout(title_ja, title_en, self.staff.as_deref(), body)).into_response()
    }
}

/// The provider's icon: its initial on a colour derived from its name,
/// drawn as SVG (no image is fetched from anywhere).
pub fn provider_icon(provider: Option<&str>) -> Markup {
    let name = provider.unwrap_or("?");
    let initial: String = name.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_else(|| "?".into());
    let hue = name.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 360;
    let svg = format!(
        "<svg class=\"icon\" width=\"24\" height=\"24\" viewBox=\"0 0 24 24\" role=\"img\" aria-label=\"{label}\">\
         <rect width=\"24\" height=\"24\" rx=\"6\" fill=\"hsl({hue},55%,42%)\"/>\
         <text x=\"12\" y=\"16.5\" font-size=\"13\" text-anchor=\"middle\" fill=\"#fff\" font-family=\"sans-serif\">{initial}</text></svg>",
        label = escape(name),
        initial = escape(&initial),
    );
    PreEscaped(svg)
}

/// Escapes text for markup built by hand.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query string from pairs, leaving out empty values.
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.append_pair(k, v);
        }
    }
    out.finish()
}
