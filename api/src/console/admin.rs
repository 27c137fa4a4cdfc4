//! Administration: the staff list, disabling a member (their token and
//! console sessions stop at once), and a new enrolment link for a member
//! who lost their passkey. Each an event in the administrator's stream.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use ledger_domain::staff::StaffEvent;
use maud::html;
use serde::Deserialize;

use super::auth::{issue_link, ConsoleStaff};
use super::page::{both, confirmation, jst, layout, page, role_words, ConsoleError, ForStaff};
use crate::error::ApiError;
use crate::http::extract::Role;
use crate::state::AppState;

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(jst).unwrap_or_default()
}

/// Every staff member, with their console passkeys and state.
pub async fn staff(State(app): State<AppState>, staff: ConsoleStaff) -> Result<Response, ConsoleError> {
    staff.staff.require(&[]).await.for_staff(&staff)?;
    let members = app.store.staff_members().await.map_err(ApiError::from).for_staff(&staff)?;
    let passkeys = app.store.staff_passkey_counts().await.map_err(ApiError::from).for_staff(&staff)?;
    let body = html! {
        table {
            thead { tr {
                th { (both("名前", "Name")) } th { (both("役割", "Role")) } th { (both("追加日時", "Added")) }
                th { (both("パスキー", "Passkeys")) } th { (both("状態", "State")) } th { (both("操作", "Actions")) }
            } }
            tbody {
                @for m in &members {
                    @let role = Role::parse(&m.role).map(role_words).unwrap_or((m.role.as_str(), m.role.as_str()));
                    tr {
                        td { (m.name) br; small { code { (m.staff_id) } } }
                        td { (role.0) " / " (role.1) }
                        td { (when(m.created_at)) }
                        td { (passkeys.get(&m.staff_id).copied().unwrap_or(0)) }
                        td { @if let Some(at) = m.disabled_at { span.badge.warn { "無効 / disabled" } " " (when(at)) } @else { "有効 / active" } }
                        td {
                            @if m.disabled_at.is_none() && m.staff_id != staff.staff.staff_id {
                                form.inline method="post" action={ "/console/staff/" (m.staff_id) "/link" } {
                                    input type="hidden" name="csrf" value=(staff.csrf);
                                    button type="submit" { (both("パスキー紛失：登録用リンクを発行", "Lost passkey: new enrolment link")) }
                                }
                                form.inline.danger method="post" action={ "/console/staff/" (m.staff_id) "/disable" } {
                                    input type="hidden" name="csrf" value=(staff.csrf);
                                    button type="submit" { (both("無効化", "Disable")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { "新しい担当者は " code { "ledger staff add --name 名前 --role support|compliance|admin" } " で追加します。" }
        p lang="en" { "Add a member with " code { "ledger staff add --name NAME --role support|compliance|admin" } "." }
    };
    Ok(page(layout("担当者管理", "Staff members", Some(&staff), body)))
}

/// The trail's subscribers (NATS, webhooks): how far each got, how far
/// behind it is, and why it fails.
pub async fn streams(State(app): State<AppState>, staff: ConsoleStaff) -> Result<Response, ConsoleError> {
    staff.staff.require(&[]).await.for_staff(&staff)?;
    let listed = crate::streams::manage::list(&app).await.map_err(ApiError::from).for_staff(&staff)?;
    let at = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(jst).unwrap_or_else(|| "–".into());
    let body = html! {
        @if listed.is_empty() {
            p { "配信先はまだありません。" }
            p lang="en" { "No subscriptions yet." }
        } @else {
            table {
                thead { tr {
                    th { (both("配信先", "Subscription")) } th { (both("形式", "Format")) } th { (both("状態", "State")) }
                    th { (both("送信済み位置", "Delivered through")) } th { (both("遅れ", "Lag")) }
                    th { (both("最終送信", "Last delivery")) } th { (both("エラー", "Errors")) }
                } }
                tbody {
                    @for s in &listed {
                        tr {
                            td { code { (s.subscription_id) } br; small { (s.kind) ": " (s.target) } }
                            td {
                                (s.format) br;
                                small {
                                    @if s.types.is_empty() { "全イベント / all events" } @else { (s.types.join(", ")) }
                                    br;
                                    @if s.personal_data == "full" { "個人データ：そのまま / personal data in full" }
                                    @else { "個人データ：マスク / personal data masked" }
                                }
                            }
                            td {
                                @if s.state == "active" { "有効 / active" }
                                @else { span.badge.warn { "無効 / disabled" } br; small { (s.disabled_reason.as_deref().unwrap_or("")) } }
                            }
                            td { (s.position) }
                            td { @if s.lag > 0 { span.badge.warn { (s.lag) } } @else { "0" } }
                            td { (at(s.last_delivered_at)) }
                            td {
                                @if s.failures > 0 {
                                    span.badge.warn { (s.failures) " 回連続失敗 / failures in a row" } br;
                                    small { (s.last_error.as_deref().unwrap_or("")) } br;
                                    small { "次回 / next attempt: " (at(s.next_attempt_at)) }
                                } @else { "–" }
                            }
                        }
                    }
                }
            }
        }
        p { "追加・無効化・再送・シークレット更新は " code { "ledger webhooks add|disable|replay|rotate-secret" } " または管理API（" code { "/api/v1/admin/webhooks" } "）で行います。詳細は docs/streams.md。" }
        p lang="en" {
            "Add, disable, replay or rotate a secret with " code { "ledger webhooks add|disable|replay|rotate-secret" }
            " or the admin API (" code { "/api/v1/admin/webhooks" } "); see docs/streams.md."
        }
    };
    Ok(page(layout("配信", "Streams", Some(&staff), body)))
}

#[derive(Deserialize)]
pub struct AdminForm {
    #[serde(default)]
    csrf: String,
    confirmed: Option<String>,
}

async fn member_of(app: &AppState, staff: &ConsoleStaff, staff_id: &str) -> Result<crate::storage::StaffRow, ConsoleError> {
    app.store
        .staff_member(staff_id)
        .await
        .map_err(ApiError::from)
        .and_then(|m| m.filter(|m| m.disabled_at.is_none()).ok_or_else(ApiError::not_found))
        .for_staff(staff)
}

/// An administrator does not disable or re-enrol themselves here: the
/// last administrator could lock everyone out.
fn not_yourself(staff: &ConsoleStaff, member: &crate::storage::StaffRow) -> Result<(), ConsoleError> {
    if member.staff_id == staff.staff.staff_id {
        return Err(ApiError::bad_request(
            "Administrators cannot disable or re-enrol themselves here; another administrator (or `ledger staff link`) can.",
        ))
        .for_staff(staff);
    }
    Ok(())
}

/// The member an administrator's posted form acts on: the form is the
/// session's, the caller an administrator, the member another one.
async fn acted_on(
    app: &AppState,
    staff: &ConsoleStaff,
    form: &AdminForm,
    staff_id: &str,
) -> Result<crate::storage::StaffRow, ConsoleError> {
    staff.check_csrf(&form.csrf)?;
    staff.staff.require(&[]).await.for_staff(staff)?;
    let member = member_of(app, staff, staff_id).await?;
    not_yourself(staff, &member)?;
    Ok(member)
}

/// Disables a member after a confirmation.
pub async fn disable(
    State(app): State<AppState>,
    staff: ConsoleStaff,
    Path(staff_id): Path<String>,
    Form(form): Form<AdminForm>,
) -> Result<Response, ConsoleError> {
    let member = acted_on(&app, &staff, &form, &staff_id).await?;
    if form.confirmed.as_deref() != Some("yes") {
        let what = html! {
            p { (member.name) " さんを無効化します。APIトークンとコンソールのセッションはすぐに使えなくなります。" }
            p lang="en" { "Disable " (member.name) ": their token and console sessions stop at once." }
        };
        let action = format!("/console/staff/{}/disable", member.staff_id);
        return Ok(confirmation(&staff, what, &action, &[], ("無効化する", "Disable"), "/console/staff"));
    }
    let now = app.clock.now();
    let ended = app.store.disable_staff(&member.staff_id, now.timestamp_millis()).await.map_err(ApiError::from).for_staff(&staff)?;
    let Some(sessions_ended) = ended else { return Err(ApiError::not_found()).for_staff(&staff) };
    let event = StaffEvent::StaffMemberDisabled { staff_id: member.staff_id.clone(), name: member.name.clone(), sessions_ended };
    let recorded = staff.staff.meta().metadata(&staff.staff.actor(), now);
    app.staff_log.record(&staff.staff.staff_id, event, recorded).await.map_err(ApiError::internal).for_staff(&staff)?;
    let body = html! {
        p.done role="status" { (member.name) " さんを無効化しました（終了したセッション " (sessions_ended) "件）。"
            span.en lang="en" { (member.name) " is disabled (" (sessions_ended) " session(s) ended)." } }
        p { a href="/console/staff" { (both("担当者一覧へ", "Back to the staff list")) } }
    };
    Ok(page(layout("無効化しました", "Disabled", Some(&staff), body)))
}

/// A new enrolment link for a member (a lost passkey), shown once.
pub async fn link(
    State(app): State<AppState>,
    staff: ConsoleStaff,
    Path(staff_id): Path<String>,
    Form(form): Form<AdminForm>,
) -> Result<Response, ConsoleError> {
    let member = acted_on(&app, &staff, &form, &staff_id).await?;
    if form.confirmed.as_deref() != Some("yes") {
        let what = html! {
            p { (member.name) " さんのパスキーを紛失扱いにします。これまでのコンソール用パスキーは使えなくなり、セッションは終了し、新しい登録用リンクを発行します。" }
            p lang="en" { "Treat " (member.name) "'s passkey as lost: their console passkeys stop working, their sessions end, and a new enrolment link is issued." }
        };
        let action = format!("/console/staff/{}/link", member.staff_id);
        return Ok(confirmation(&staff, what, &action, &[], ("発行する", "Issue the link"), "/console/staff"));
    }
    let now = app.clock.now();
    // The lost passkey opens nothing from now on.
    app.store.remove_staff_passkeys(&member.staff_id, now.timestamp_millis()).await.map_err(ApiError::from).for_staff(&staff)?;
    let (link, expires_at) = issue_link(&app, &member.staff_id).await.map_err(ApiError::from).for_staff(&staff)?;
    let event = StaffEvent::StaffEnrolmentLinkIssued { staff_id: member.staff_id.clone(), name: member.name.clone(), expires_at };
    let recorded = staff.staff.meta().metadata(&staff.staff.actor(), now);
    app.staff_log.record(&staff.staff.staff_id, event, recorded).await.map_err(ApiError::internal).for_staff(&staff)?;
    let body = html! {
        p { (member.name) " さんの登録用リンクです。一度だけ使え、" (jst(expires_at)) " まで有効です。これまでのパスキーは使えなくなりました。本人にだけ渡してください。この画面を閉じると再表示できません。" }
        p lang="en" { "The enrolment link for " (member.name) ": single use, valid until " (jst(expires_at)) ". Their earlier passkeys no longer open the console. Give it to them alone; it is not shown again." }
        p { code #link { (link) } }
        button type="button" data-copy="link" { (both("リンクをコピー", "Copy the link")) }
        p { a href="/console/staff" { (both("担当者一覧へ", "Back to the staff list")) } }
    };
    Ok(page(layout("登録用リンク", "Enrolment link", Some(&staff), body)))
}
