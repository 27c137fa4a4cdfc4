//! The support desk: search, the account page (status, locks, signals,
//! history as a timeline), and its actions, each with a reason and a
//! confirmation step.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use ledger_domain::AccountId;
use ledger_projections::read_models::PasskeyView;
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::ConsoleStaff;
use super::page::{both, confirmation, jst, jst_text, layout, page, provider_icon, query, ConsoleError, ForStaff};
use crate::error::ApiError;
use crate::http::extract::Role;
use crate::http::staff as desk;
use crate::state::AppState;

/// The console's first page: what the member's role opens.
pub async fn home(staff: ConsoleStaff) -> Response {
    let body = html! {
        ul.tiles {
            @if staff.may(&[Role::Support, Role::Compliance]) {
                li { a href="/console/accounts" { strong { "口座検索" } span.en lang="en" { "Find an account" } }
                     p { "ログインID・メールアドレス・パスキーのクレデンシャルIDで検索" } }
            }
            @if staff.may(&[Role::Compliance]) {
                li { a href="/console/audit" { strong { "監査証跡" } span.en lang="en" { "Audit trail" } }
                     p { "絞り込み・エクスポート・改ざん検証" } }
                li { a href="/console/signals?status=open" { strong { "不正検知シグナル" } span.en lang="en" { "Fraud signals" } }
                     p { "未レビューのシグナルの確認とレビュー" } }
                li { a href="/console/adoption" { strong { "パスキー利用状況" } span.en lang="en" { "Adoption report" } }
                     p { "日別・チャネル別の集計とグラフ" } }
            }
            @if staff.may(&[]) {
                li { a href="/console/staff" { strong { "担当者管理" } span.en lang="en" { "Staff members" } }
                     p { "担当者の一覧・無効化・登録用リンクの発行" } }
            }
        }
    };
    page(layout("コンソール", "Console", Some(&staff), body))
}

#[derive(Deserialize, Default)]
pub struct SearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    q: String,
}

/// The search form.
pub async fn search_page(State(app): State<AppState>, staff: ConsoleStaff) -> Result<Response, ConsoleError> {
    search_for(&app, &staff, "").await
}

/// Search by login ID (exact or prefix), e-mail address, or a passkey's
/// credential ID: a form posted, so that no address or login ID is left in
/// a URL (history, proxies, logs).
pub async fn search(State(app): State<AppState>, staff: ConsoleStaff, Form(form): Form<SearchForm>) -> Result<Response, ConsoleError> {
    staff.check_csrf(&form.csrf)?;
    search_for(&app, &staff, &form.q).await
}

async fn search_for(app: &AppState, staff: &ConsoleStaff, text: &str) -> Result<Response, ConsoleError> {
    let (app, staff) = (app.clone(), staff.clone());
    staff.staff.require(desk::READERS).await.for_staff(&staff)?;
    let text = text.trim();
    let mut found = Vec::new();
    let mut searched = false;
    if !text.is_empty() {
        searched = true;
        // A passkey's credential ID names one account (the command side's
        // claim): its page at once.
        if let Ok(id) = ledger_domain::CredentialId::parse(text) {
            let claim = ledger_projections::claims::credential_claim(&app.db.any, &id).await.map_err(ApiError::from).for_staff(&staff)?;
            if let Some(claim) = claim {
                return Ok(Redirect::to(&format!("/console/accounts/{}", claim.account_id)).into_response());
            }
        }
        found = desk::find_accounts(&app, &staff.staff, staff.staff.meta(), text).await.for_staff(&staff)?.1;
    }
    let body = html! {
        form.search method="post" action="/console/accounts" role="search" {
            input type="hidden" name="csrf" value=(staff.csrf);
            label for="q" { (both("ログインID・メールアドレス・クレデンシャルID", "Login ID, e-mail address or credential ID")) }
            input #q type="search" name="q" value=(text) required autofocus;
            button type="submit" { (both("検索", "Search")) }
        }
        @if searched {
            p.count { (found.len()) "件 " span.en lang="en" { (found.len()) " found" } }
            @if !found.is_empty() {
                table {
                    thead { tr {
                        th { (both("ログインID", "Login ID")) } th { (both("名義", "Holder")) } th { (both("メール", "E-mail")) }
                        th { (both("状態", "State")) } th { (both("パスキー", "Passkeys")) }
                    } }
                    tbody {
                        @for a in &found {
                            tr {
                                td { a href={ "/console/accounts/" (a.account_id) } { (a.login_id) } }
                                td { (holder_words(&a.holder_kind)) }
                                td { (a.email.as_deref().map(mask).unwrap_or_default()) }
                                td { @if a.locked { span.badge.warn { "ロック中 / locked" } } @else { "—" } }
                                td { (a.passkeys) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(layout("口座検索", "Find an account", Some(&staff), body)))
}

fn mask(email: &str) -> String {
    ledger_domain::EmailAddress::parse(email).map(|e| e.masked()).unwrap_or_else(|_| "***".into())
}

fn holder_words(kind: &str) -> &'static str {
    match kind {
        "individual" => "個人 / individual",
        "family" => "家族 / family",
        "corporate" => "法人 / corporate",
        _ => "—",
    }
}

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    /// Older history than this sequence (ignored unless a number).
    before: Option<String>,
    /// `1`: the history shows the staff's own reads of the account too.
    views: Option<String>,
    /// What was just done (shown once above the page).
    done: Option<String>,
}

const HISTORY_PAGE: i64 = 30;

/// The account page: status, locks, signals, history (newest first, paged).
pub async fn account(
    State(app): State<AppState>,
    staff: ConsoleStaff,
    Path(account_id): Path<String>,
    q: Result<Query<AccountQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let account_id = AccountId::parse(&account_id).map_err(|_| ApiError::not_found()).for_staff(&staff)?;
    let (_, status) = desk::account_status(&app, &staff.staff, staff.staff.meta(), &account_id).await.for_staff(&staff)?;
    // The staff's own reads would push the customer's events off the page:
    // left out unless asked for.
    let with_views = q.views.as_deref() == Some("1");
    let except = if with_views { Vec::new() } else { vec!["AccountViewedByStaff".to_string()] };
    let types = ledger_projections::projector::EventTypes { only: Vec::new(), except };
    let before = q.before.as_deref().and_then(|b| b.parse::<i64>().ok());
    let history =
        desk::account_history(&app, &staff.staff, staff.staff.meta(), &account_id, before, HISTORY_PAGE, &types).await.for_staff(&staff)?;
    let view = &status.view;
    let support = staff.may(&[Role::Support]);
    let done = q.done.as_deref().map(done_words);
    let body = html! {
        @if let Some((ja, en)) = done {
            p.done role="status" { (ja) " " span.en lang="en" { (en) } }
        }
        @if !status.open_reports.is_empty() {
            section.card.alert #reports aria-labelledby="reports-h" {
                h2 #reports-h { (both("お客様からの不審な操作の報告", "Reported by the customer as not theirs")) }
                ul {
                    @for r in &status.open_reports {
                        li {
                            p.warn { (jst_text(&r.at)) "・" (r.line.ja) }
                            p lang="en" { (r.line.en) }
                            p { "接続元 / from: " (r.ip) " · " (r.channel) }
                            @if let Some(note) = &r.note { p { "お客様のコメント / note: 「" (note) "」" } }
                            p { "対応済み：他のセッション" (r.sessions_ended) "件を終了、パスキー" (r.passkeys_revoked.len()) "件を削除"
                                span.en lang="en" { " Done: " (r.sessions_ended) " other session(s) ended, " (r.passkeys_revoked.len()) " passkey(s) deleted." } }
                            @if staff.may(&[Role::Compliance]) { p { a href={ "/console/signals/" (r.signal_id) } { "シグナルを確認 / review the signal" } } }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="status-h" {
            h2 #status-h { (both("状態", "Status")) }
            dl.facts {
                dt { (both("ログインID", "Login ID")) } dd { (view.login_id) }
                dt { (both("名義", "Holder")) } dd { (holder_words(&view.holder_kind)) }
                dt { (both("メールアドレス", "E-mail")) } dd { (view.email.as_deref().unwrap_or("—")) @if !view.email_reachable { " " span.badge.warn { "不達 / bouncing" } } }
                dt { (both("ログイン方法", "Login method")) } dd { @let (en, ja) = ledger_domain::account::login_words(&view.login_method); (ja) " " span.en lang="en" { (en) } }
                dt { (both("最終ログイン", "Last login")) } dd {
                    (view.last_login_at.map(jst).unwrap_or_else(|| "—".into()))
                    @if let Some(env) = &view.last_login_environment { " · " (env) }
                }
                dt { (both("概要", "Summary")) } dd { (view.summary.ja) br; span.en lang="en" { (view.summary.en) } }
            }
        }
        section.card aria-labelledby="locks-h" {
            h2 #locks-h { (both("ロック", "Locks")) }
            @if !view.locked && !view.deletion_locked { p { "ロックはありません。" span.en lang="en" { "No lock." } } }
            @if let Some(lock) = &status.lock {
                p.warn { "ログインがロックされています（" (jst_text(&lock.since)) "から）。" } p lang="en" { (lock.line.en) }
                p { (lock.line.ja) }
            }
            @if view.deletion_locked { p.warn { "パスキーの削除がロックされています。" span.en lang="en" { "Passkey deletion is locked." } } }
            @if support && view.locked { (action_form(&staff, &account_id, "unlock_login", None, "ログインのロック解除", "Unlock login")) }
            @if support && view.deletion_locked { (action_form(&staff, &account_id, "unlock_deletion", None, "パスキー削除のロック解除", "Unlock passkey deletion")) }
        }
        section.card aria-labelledby="passkeys-h" {
            h2 #passkeys-h { (both("パスキー", "Passkeys")) }
            ul.passkeys {
                @for p in &view.passkeys { (passkey_item(&staff, &account_id, p, support, false)) }
                @for p in status.view.revoked_passkeys.iter().flatten() { (passkey_item(&staff, &account_id, p, false, true)) }
            }
            @if view.passkeys.is_empty() { p { "登録されたパスキーはありません。" span.en lang="en" { "No passkey registered." } } }
            @if support && view.passkeys.len() > 1 {
                (action_form(&staff, &account_id, "revoke_all", None, "すべてのパスキーを削除（端末紛失）", "Delete all passkeys (lost device)"))
            }
        }
        section.card aria-labelledby="signals-h" {
            h2 #signals-h { (both("不正検知シグナル", "Fraud signals")) }
            @let open: Vec<_> = status.signals.iter().filter(|s| s.status == "open").collect();
            @if open.is_empty() { p { "未レビューのシグナルはありません。" span.en lang="en" { "No open signal." } } }
            ul { @for s in open {
                li { span.badge.(s.severity) { (s.severity) } " " (s.summary.ja) br; span.en lang="en" { (s.summary.en) }
                     @if staff.may(&[Role::Compliance]) { " " a href={ "/console/signals/" (s.signal_id) } { "詳細 / detail" } } }
            } }
        }
        section.card aria-labelledby="history-h" {
            h2 #history-h { (both("履歴（新しい順）", "History, newest first")) }
            p {
                @if with_views { a href={ "/console/accounts/" (account_id) } { (both("担当者の閲覧記録を隠す", "Hide staff reads")) } }
                @else { a href={ "/console/accounts/" (account_id) "?views=1" } { (both("担当者の閲覧記録も表示", "Show staff reads too")) } }
            }
            ol.timeline {
                @for e in &history.events {
                    li {
                        time { (jst_text(&e.at)) }
                        span.meta { (channel_words(&e.channel)) " · " (actor_words(&e.actor, e.actor_name.as_deref())) @if !e.ip.is_empty() { " · " (e.ip) } }
                        p { (e.line.ja) } p.en lang="en" { (e.line.en) }
                        @if let Some(env) = environment_of(&e.user_agent) { p.env { (env) } }
                    }
                }
            }
            nav.pager aria-label="履歴のページ / History pages" {
                @if before.is_some() { a href={ "/console/accounts/" (account_id) } { (both("最新へ", "Newest")) } " " }
                @if let Some(next) = &history.next_cursor { a href={ "/console/accounts/" (account_id) "?" (query(&[("before", Some(next))])) } { (both("さらに古い履歴", "Older")) } }
            }
        }
    };
    Ok(page(layout(&format!("口座 {}", view.login_id), "Account", Some(&staff), body)))
}

fn done_words(done: &str) -> (&'static str, &'static str) {
    match done {
        "revoked" => ("パスキーを削除しました。お客様に通知しました。", "The passkey was deleted; the customer was notified."),
        "nothing" => ("削除するパスキーはありませんでした。何も変わっていません。", "There was no passkey to delete; nothing changed."),
        "unlocked" => ("ロックを解除しました。", "The lock was lifted."),
        "reinstated" => {
            ("パスキーの一時停止を解除しました。お客様に通知しました。", "The passkey was reinstated; the customer was notified.")
        }
        _ => ("完了しました。", "Done."),
    }
}

fn channel_words(channel: &str) -> String {
    if channel.is_empty() {
        return "—".into();
    }
    let (en, ja) = ledger_domain::words::channel_words(channel);
    format!("{ja} / {en}")
}

fn actor_words(actor: &str, name: Option<&str>) -> String {
    match (actor, name) {
        ("customer", _) => "お客様 / customer".into(),
        (_, Some(name)) => format!("担当者 {name} / staff"),
        ("core_system", _) => "基幹システム / core system".into(),
        ("system", _) => "システム / system".into(),
        (other, None) => {
            let (en, ja) = ledger_domain::words::actor_words(other);
            format!("{ja} / {en}")
        }
    }
}

fn environment_of(user_agent: &str) -> Option<String> {
    // A browser's name and system; nothing for a client that is no browser.
    let named = crate::environment::agent_line(user_agent);
    (named.contains(" / ")).then_some(named)
}

fn passkey_item(staff: &ConsoleStaff, account_id: &str, p: &PasskeyView, actions: bool, deleted: bool) -> Markup {
    html! {
        li.passkey.deleted[deleted] {
            (provider_icon(p.provider.as_deref()))
            div {
                strong { (p.name) } " "
                span { (p.provider.as_deref().unwrap_or("提供元不明 / unknown provider")) }
                " · " @if p.synced { "同期 / synced" } @else { "端末固有 / device-bound" }
                @if let Some(false) = p.environment_recommended { " · " span.badge.warn { "推奨環境外 / not recommended" } }
                @if p.suspended_at.is_some() { " " span.badge.high { "一時停止中 / suspended" } }
                @if deleted { " " span.badge { "削除済み / deleted" } }
                br;
                small {
                    "登録 / registered " (jst(p.registered_at))
                    " · 最終利用 / last used " (p.last_used_at.map(jst).unwrap_or_else(|| "—".into()))
                    @if let Some(env) = &p.registered_environment { " · " (env) }
                    @if let Some(at) = p.revoked_at { " · 削除 / deleted " (jst(at)) }
                }
                @if actions {
                    (action_form(staff, account_id, "revoke", Some(&p.id), "このパスキーを削除", "Delete this passkey"))
                    @if p.suspended_at.is_some() { (action_form(staff, account_id, "reinstate", Some(&p.id), "一時停止を解除", "Reinstate")) }
                }
            }
        }
    }
}

/// An action's form: a required reason, then a confirmation page.
fn action_form(staff: &ConsoleStaff, account_id: &str, action: &str, passkey_id: Option<&str>, ja: &str, en: &str) -> Markup {
    let field = format!("reason-{action}-{}", passkey_id.unwrap_or("all"));
    html! {
        form.action method="post" action={ "/console/accounts/" (account_id) "/actions" } {
            input type="hidden" name="csrf" value=(staff.csrf);
            input type="hidden" name="action" value=(action);
            @if let Some(id) = passkey_id { input type="hidden" name="passkey_id" value=(id); }
            label for=(field) { "理由 " span.en lang="en" { "Reason" } }
            input id=(field) type="text" name="reason" required maxlength="500";
            button type="submit" { (ja) " " span.en lang="en" { (en) } }
        }
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    action: String,
    passkey_id: Option<String>,
    #[serde(default)]
    reason: String,
    /// Set by the confirmation page.
    confirmed: Option<String>,
}

/// An action: first a confirmation page, then (confirmed) the act, and
/// back to the account page.
pub async fn action(
    State(app): State<AppState>,
    staff: ConsoleStaff,
    Path(account_id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, ConsoleError> {
    staff.check_csrf(&form.csrf)?;
    let account_id = AccountId::parse(&account_id).map_err(|_| ApiError::not_found()).for_staff(&staff)?;
    let (ja, en) = match form.action.as_str() {
        "revoke" => ("パスキーを削除します", "Delete the passkey"),
        "revoke_all" => ("すべてのパスキーを削除します", "Delete every passkey"),
        "unlock_login" | "unlock_deletion" => {
            ("ロック（ログインとパスキー削除）を解除します", "Lift the locks (login and passkey deletion)")
        }
        "reinstate" => ("パスキーの一時停止を解除します", "Reinstate the passkey"),
        _ => return Err(ApiError::bad_request("Unknown action.")).for_staff(&staff),
    };
    // The role is checked before the confirmation, as the act would be.
    staff.staff.require(&[Role::Support]).await.for_staff(&staff)?;
    if form.reason.trim().is_empty() || form.reason.trim().chars().count() > 500 {
        return Err(ApiError::from(crate::error::ErrorCode::ReasonRequired)).for_staff(&staff);
    }
    if form.confirmed.as_deref() != Some("yes") {
        let notifies = matches!(form.action.as_str(), "revoke" | "revoke_all" | "reinstate");
        let what = html! {
            p { "口座 / Account: " strong { (account_id) } @if let Some(id) = &form.passkey_id { " · パスキー / passkey: " code { (id) } } }
            p { (ja) "。よろしいですか？" @if notifies { " お客様には通知が送られます。" } }
            p lang="en" { (en) ". Are you sure?" @if notifies { " The customer will be notified." } }
            p { "理由 / Reason: " strong { (form.reason) } }
        };
        let mut fields = vec![("action", form.action.as_str()), ("reason", form.reason.as_str())];
        if let Some(id) = &form.passkey_id {
            fields.push(("passkey_id", id.as_str()));
        }
        let action = format!("/console/accounts/{account_id}/actions");
        return Ok(confirmation(&staff, what, &action, &fields, ("実行する", "Confirm"), &format!("/console/accounts/{account_id}")));
    }
    let meta = staff.staff.meta().clone();
    let done = match form.action.as_str() {
        "revoke" | "revoke_all" => {
            let one = if form.action == "revoke" { form.passkey_id.clone() } else { None };
            match desk::revoke_passkeys(&app, &staff.staff, &meta, &account_id, one, &form.reason).await.for_staff(&staff)? {
                0 => "nothing",
                _ => "revoked",
            }
        }
        "reinstate" => {
            let id = form.passkey_id.clone().unwrap_or_default();
            desk::reinstate_passkey(&app, &staff.staff, &meta, &account_id, id, &form.reason).await.for_staff(&staff)?;
            "reinstated"
        }
        _ => {
            desk::unlock_login(&app, &staff.staff, &meta, &account_id, &form.reason).await.for_staff(&staff)?;
            "unlocked"
        }
    };
    Ok(Redirect::to(&format!("/console/accounts/{account_id}?done={done}")).into_response())
}
