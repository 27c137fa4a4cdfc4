//! Compliance in the browser: the audit trail with its filters in the URL,
//! the export of the current filter, chain verification with the head,
//! fraud signals and their review, the adoption report with its chart.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use ledger_domain::staff::ReviewOutcome;
use ledger_projections::adoption::DayRow;
use ledger_projections::merkle;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use super::auth::ConsoleStaff;
use super::page::{both, jst, layout, page, query, ConsoleError, ForStaff};
use crate::error::ApiError;
use crate::http::compliance::{self as api, FilterQuery, ReportQuery, SignalQuery};
use crate::state::AppState;

const TRAIL_PAGE: i64 = 50;

fn filter_pairs(q: &FilterQuery) -> Vec<(&'static str, Option<&str>)> {
    vec![
        ("account_id", q.account_id.as_deref()),
        ("type", q.event_type.as_deref()),
        ("actor", q.actor.as_deref()),
        ("channel", q.channel.as_deref()),
        ("from", q.from.as_deref()),
        ("to", q.to.as_deref()),
    ]
}

/// The filter as the API reads it: the console's "to" is a day included
/// (as the adoption report's), the API's an exclusive bound.
fn for_api(q: &FilterQuery) -> FilterQuery {
    let mut q = q.clone();
    if let Some(day) = q.to.as_deref().and_then(|t| chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").ok()) {
        q.to = day.succ_opt().map(|d| d.format("%Y-%m-%d").to_string());
    }
    q
}

/// Empty fields of a submitted filter form mean "any".
fn cleaned(mut q: FilterQuery) -> FilterQuery {
    for f in [&mut q.account_id, &mut q.event_type, &mut q.actor, &mut q.channel, &mut q.from, &mut q.to, &mut q.cursor, &mut q.format] {
        if f.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *f = None;
        }
    }
    q
}

#[derive(Deserialize, Default)]
pub struct CountParam {
    /// `1`: count the rows of the filter (the whole filtered trail is read).
    count: Option<String>,
}

/// The trail, filtered, 50 rows a page, oldest first from the cursor.
pub async fn trail(
    State(app): State<AppState>,
    staff: ConsoleStaff,
    Query(q): Query<FilterQuery>,
    Query(counting): Query<CountParam>,
) -> Result<Response, ConsoleError> {
    let mut q = cleaned(q);
    q.limit = Some(TRAIL_PAGE);
    q.format = None;
    let (_, trail) = api::trail_page(&app, &staff.staff, staff.staff.meta(), &for_api(&q)).await.for_staff(&staff)?;
    let pairs = filter_pairs(&q);
    let filters = query(&pairs);
    let total = if counting.count.as_deref() == Some("1") {
        let filter = for_api(&q).filter(&app).await.for_staff(&staff)?;
        Some(ledger_projections::audit::count(&app.db.any, &filter).await.map_err(ApiError::from).for_staff(&staff)?)
    } else {
        None
    };
    let body = html! {
        form.filters method="get" action="/console/audit" {
            (field("account_id", "口座（IDまたはログインID）", "Account (ID or login ID)", q.account_id.as_deref(), "text"))
            (field("type", "イベント種別（カンマ区切り）", "Event types (comma-separated)", q.event_type.as_deref(), "text"))
            (field("actor", "実行者", "Actor", q.actor.as_deref(), "text"))
            (field("channel", "チャネル", "Channel", q.channel.as_deref(), "text"))
            (field("from", "開始日（JST）", "From (JST day)", q.from.as_deref(), "date"))
            (field("to", "終了日（JST、この日を含む）", "To (JST day, included)", q.to.as_deref(), "date"))
            button type="submit" { (both("絞り込む", "Filter")) }
            " " a href="/console/audit" { (both("条件をクリア", "Clear")) }
        }
        p.exports {
            (both("この条件でエクスポート", "Export this filter")) ": "
            a #export-csv href={ "/console/audit/export?" (query(&[pairs.as_slice(), &[("format", Some("csv"))]].concat())) } download { "CSV (Excel)" }
            " · "
            a #export-jsonl href={ "/console/audit/export?" (query(&[pairs.as_slice(), &[("format", Some("jsonl"))]].concat())) } download { "JSON Lines" }
            " · "
            a href="/console/audit/verify" { (both("改ざん検証", "Verify the chain")) }
            " · "
            a href="/console/proofs" { (both("証明とチェックポイント", "Proofs and checkpoints")) }
        }
        p.count {
            "このページ " (trail.events.len()) "件 " span.en lang="en" { (trail.events.len()) " rows on this page" }
            " · "
            @match total {
                Some(n) => { span #row-count { "この条件の全件数（エクスポートされる行数）: " strong { (n) } "件 " span.en lang="en" { (n) " rows match (the export's rows)" } } }
                None => { a #count-rows href={ "/console/audit?" (query(&[pairs.as_slice(), &[("count", Some("1"))]].concat())) } { (both("この条件の全件数を数える", "Count every matching row")) } }
            }
        }
        table.trail {
            thead { tr {
                th { (both("位置", "Pos.")) } th { (both("日時（JST）", "When (JST)")) } th { (both("口座", "Account")) }
                th { (both("種別", "Type")) } th { (both("実行者", "Actor")) } th { (both("チャネル", "Channel")) } th { (both("内容", "What")) }
            } }
            tbody {
                @for r in &trail.events {
                    tr {
                        td { a href={ "/console/proofs?position=" (r.position) } title="包含証明 / Inclusion proof" { (r.position) } }
                        td { (jst(r.at)) }
                        td { @if let Some(id) = &r.account_id { a href={ "/console/accounts/" (id) } { (r.login_id.as_deref().unwrap_or(id)) } } @else { "—" } }
                        td { code { (r.event_type) } }
                        td { (r.actor_name.as_deref().unwrap_or(&r.actor)) }
                        td { (r.channel) }
                        td { (r.line.ja) br; span.en lang="en" { (r.line.en) } }
                    }
                }
            }
        }
        nav.pager aria-label="ページ / Pages" {
            @if q.cursor.is_some() { a href={ "/console/audit?" (filters) } { (both("最初から", "From the start")) } " " }
            @if let Some(next) = &trail.next_cursor {
                a href={ "/console/audit?" (query(&[pairs.as_slice(), &[("cursor", Some(next.as_str()))]].concat())) } { (both("次のページ", "Next page")) }
            }
        }
    };
    Ok(page(layout("監査証跡", "Audit trail", Some(&staff), body)))
}

fn field(name: &str, ja: &str, en: &str, value: Option<&str>, kind: &str) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field {
            label for=(id) { (ja) " " span.en lang="en" { (en) } }
            input id=(id) type=(kind) name=(name) value=(value.unwrap_or_default());
        }
    }
}

/// The current filter as CSV or JSON Lines, streamed as a download.
/// A checkpoint's RFC 3161 time-stamp reply, to hand to an auditor.
pub async fn timestamp(State(app): State<AppState>, staff: ConsoleStaff, Path(tree_size): Path<i64>) -> Result<Response, ConsoleError> {
    api::timestamp_response(&app, &staff.staff, staff.staff.meta(), tree_size).await.for_staff(&staff)
}

pub async fn export(State(app): State<AppState>, staff: ConsoleStaff, Query(q): Query<FilterQuery>) -> Result<Response, ConsoleError> {
    let q = for_api(&cleaned(q));
    api::export_response(&app, &staff.staff, staff.staff.meta(), &q).await.for_staff(&staff)
}

/// The whole chain recomputed, and the head to copy for anchoring.
pub async fn verify(State(app): State<AppState>, staff: ConsoleStaff) -> Result<Response, ConsoleError> {
    let (_, result) = api::verification(&app, &staff.staff, staff.staff.meta()).await.for_staff(&staff)?;
    let (_, head) = api::chain_head(&app, &staff.staff, staff.staff.meta()).await.for_staff(&staff)?;
    let body = html! {
        @if result.ok {
            p.ok #verdict role="status" { "改ざんはありません（" (result.checked) "件を確認）。" span.en lang="en" { "Intact: " (result.checked) " rows checked." } }
        } @else if let Some(position) = result.first_bad_position {
            p.error #verdict role="alert" {
                "改ざんを検出しました。最初の不一致の位置: " strong { (position) }
                span.en lang="en" { " ALTERED. First bad position: " (position) }
            }
        } @else {
            p.error #verdict role="alert" {
                "検証に失敗しました。" span.en lang="en" { " Does not verify." }
            }
        }
        @if let Some(problem) = &result.problem { p #problem { code { (problem) } } }
        @if result.timestamps_checked + result.timestamps_unchecked > 0 {
            p #timestamps {
                (both(
                    &format!("チェックポイントのタイムスタンプ: {} 件を認証局の証明書で確認、{} 件は証明書未設定のため対象メッセージのみ確認。", result.timestamps_checked, result.timestamps_unchecked),
                    &format!("Checkpoint timestamps: {} checked against the authority's certificate, {} only against their note (no LEDGER_TSA_CA_FILE).", result.timestamps_checked, result.timestamps_unchecked),
                ))
            }
        }
        section.card {
            h2 { (both("現在のチェーンヘッド（外部に控える値）", "Current chain head (to anchor elsewhere)")) }
            dl.facts {
                dt { (both("位置", "Position")) } dd { (head.position.map(|p| p.to_string()).unwrap_or_else(|| "—".into())) }
                dt { (both("ハッシュ", "Hash")) } dd { code #head-hash { (head.hash.as_deref().unwrap_or("—")) } }
            }
            @if head.hash.is_some() { button type="button" data-copy="head-hash" { (both("ハッシュをコピー", "Copy the hash")) } }
        }
    };
    Ok(page(layout("改ざん検証", "Chain verification", Some(&staff), body)))
}

#[derive(Deserialize, Default)]
pub struct SignalsQuery {
    status: Option<String>,
    kind: Option<String>,
    severity: Option<String>,
}

/// Signals by status, kind and severity.
pub async fn signals(State(app): State<AppState>, staff: ConsoleStaff, Query(q): Query<SignalsQuery>) -> Result<Response, ConsoleError> {
    let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let sq = SignalQuery { status: nonempty(&q.status), kind: nonempty(&q.kind), account_id: None };
    let (_, list) = api::signal_list(&app, &staff.staff, staff.staff.meta(), &sq).await.for_staff(&staff)?;
    let severity = nonempty(&q.severity);
    let list: Vec<_> = list.into_iter().filter(|s| severity.as_deref().is_none_or(|v| s.severity == v)).collect();
    let select = |name: &str, ja: &str, en: &str, options: &[&str], current: Option<&str>| {
        let id = format!("f-{name}");
        html! {
            div.field {
                label for=(id) { (ja) " " span.en lang="en" { (en) } }
                select id=(id) name=(name) {
                    option value="" { "すべて / all" }
                    @for o in options { option value=(o) selected[current == Some(*o)] { (o) } }
                }
            }
        }
    };
    let body = html! {
        form.filters method="get" action="/console/signals" {
            (select("status", "状態", "Status", &["open", "confirmed", "dismissed"], sq.status.as_deref()))
            (select("kind", "種類", "Kind", ledger_domain::words::SIGNAL_KINDS, sq.kind.as_deref()))
            (select("severity", "重大度", "Severity", &["high", "medium", "low"], severity.as_deref()))
            button type="submit" { (both("絞り込む", "Filter")) }
        }
        p.count { (list.len()) "件 " span.en lang="en" { (list.len()) " signals" } }
        table {
            thead { tr { th { (both("発生（JST）", "Raised (JST)")) } th { (both("重大度", "Severity")) } th { (both("種類", "Kind")) } th { (both("概要", "Summary")) } th { (both("状態", "Status")) } } }
            tbody {
                @for s in &list {
                    @let (kind_en, kind_ja) = ledger_domain::words::signal_kind_words(&s.kind);
                    tr {
                        td { (jst(s.raised_at)) }
                        td { span.badge.(s.severity) { (s.severity) } }
                        td { (kind_ja) br; span.en lang="en" { (kind_en) } }
                        td { a href={ "/console/signals/" (s.signal_id) } { (s.summary.ja) } br; span.en lang="en" { (s.summary.en) } }
                        td { (s.status) }
                    }
                }
            }
        }
    };
    Ok(page(layout("不正検知シグナル", "Fraud signals", Some(&staff), body)))
}

/// One signal: its accounts, evidence and reviews, and the review form.
pub async fn signal(State(app): State<AppState>, staff: ConsoleStaff, Path(signal_id): Path<String>) -> Result<Response, ConsoleError> {
    let (_, list) = api::signal_list(&app, &staff.staff, staff.staff.meta(), &SignalQuery::default()).await.for_staff(&staff)?;
    let s = list.into_iter().find(|s| s.signal_id == signal_id).ok_or_else(ApiError::not_found).for_staff(&staff)?;
    let (kind_en, kind_ja) = ledger_domain::words::signal_kind_words(&s.kind);
    let evidence: Vec<serde_json::Value> = match &s.evidence {
        serde_json::Value::Array(items) => items.clone(),
        serde_json::Value::Object(o) => o.get("events").and_then(|e| e.as_array()).cloned().unwrap_or_else(|| vec![s.evidence.clone()]),
        other => vec![other.clone()],
    };
    let body = html! {
        section.card {
            p { span.badge.(s.severity) { (s.severity) } " " (kind_ja) " / " (kind_en) " · " (s.status) }
            p { (s.summary.ja) } p.en lang="en" { (s.summary.en) }
            p { "発生 / raised " (jst(s.raised_at)) }
            h2 { (both("口座", "Accounts")) }
            ul { @for a in &s.account_details { li { a href={ "/console/accounts/" (a.account_id) } { (a.login_id.as_deref().unwrap_or(&a.account_id)) } " (" (a.holder_kind.as_deref().unwrap_or("—")) ")" } } }
            h2 { (both("根拠となるイベント", "Evidence")) }
            ol.evidence { @for e in &evidence { li { (evidence_line(e)) } } }
            @if !s.reviews.is_empty() {
                h2 { (both("レビュー履歴", "Reviews")) }
                ul { @for r in &s.reviews { li { (serde_json::to_string(r).unwrap_or_default()) } } }
            }
        }
        section.card {
            h2 { (both("レビュー", "Review")) }
            form method="post" action={ "/console/signals/" (s.signal_id) "/review" } {
                input type="hidden" name="csrf" value=(staff.csrf);
                fieldset {
                    legend { (both("判定", "Outcome")) }
                    label { input type="radio" name="outcome" value="confirmed" required; " 確認（不正あり） / confirmed" }
                    label { input type="radio" name="outcome" value="dismissed"; " 却下（問題なし） / dismissed" }
                }
                label for="note" { (both("メモ（必須）", "Note (required)")) }
                textarea #note name="note" required maxlength="2000" {}
                button type="submit" { (both("レビューを記録", "Record the review")) }
            }
        }
    };
    Ok(page(layout("シグナル詳細", "Signal", Some(&staff), body)))
}

fn evidence_line(e: &serde_json::Value) -> Markup {
    let text = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let line_ja = e.pointer("/line/ja").and_then(|v| v.as_str()).map(str::to_string);
    let line_en = e.pointer("/line/en").and_then(|v| v.as_str()).map(str::to_string);
    html! {
        @let at = text("at");
        @if !at.is_empty() { time { (at) } " " }
        @let kind = text("type");
        @if !kind.is_empty() { code { (kind) } " " }
        @match (line_ja, line_en) {
            (Some(ja), Some(en)) => { (ja) br; span.en lang="en" { (en) } }
            _ => { code { (e.to_string()) } }
        }
    }
}

#[derive(Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    outcome: Option<String>,
    #[serde(default)]
    note: String,
}

/// Records a review and shows the signal again.
pub async fn review(
    State(app): State<AppState>,
    staff: ConsoleStaff,
    Path(signal_id): Path<String>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, ConsoleError> {
    staff.check_csrf(&form.csrf)?;
    let outcome = match form.outcome.as_deref() {
        Some("confirmed") => ReviewOutcome::Confirmed,
        Some("dismissed") => ReviewOutcome::Dismissed,
        _ => return Err(ApiError::bad_request("Choose confirmed or dismissed.")).for_staff(&staff),
    };
    api::review_signal(&app, &staff.staff, staff.staff.meta(), &signal_id, outcome, &form.note).await.for_staff(&staff)?;
    Ok(Redirect::to(&format!("/console/signals/{signal_id}")).into_response())
}

/// The adoption report: a chart per JST day and the table under it.
pub async fn adoption(State(app): State<AppState>, staff: ConsoleStaff, Query(q): Query<ReportQuery>) -> Result<Response, ConsoleError> {
    let q = ReportQuery { from: q.from.filter(|v| !v.is_empty()), to: q.to.filter(|v| !v.is_empty()) };
    let (_, report) = api::adoption_report(&app, &staff.staff, staff.staff.meta(), q).await.for_staff(&staff)?;
    let logins = |d: &DayRow| d.figures.logins.values().sum::<i64>();
    let body = html! {
        form.filters method="get" action="/console/adoption" {
            (field("from", "開始日（JST）", "From (JST day)", Some(&report.from), "date"))
            (field("to", "終了日（JST）", "To (JST day)", Some(&report.to), "date"))
            button type="submit" { (both("表示", "Show")) }
        }
        figure {
            (chart(&report.days, &report.from, &report.to))
            figcaption { (both("日別のパスキー登録数（棒）とログイン数（線）", "Passkey registrations per day (bars) and logins (line)")) }
        }
        table {
            thead { tr {
                th { (both("日付", "Day")) } th { (both("チャネル", "Channel")) } th { (both("登録", "Registrations")) }
                th { (both("ログイン", "Logins")) } th { (both("別端末サインイン", "Cross-device")) } th { (both("追加", "Added")) }
                th { (both("削除", "Deleted")) } th { (both("サポート削除", "Deleted by support")) } th { (both("パスキー利用率", "Passkey share")) }
            } }
            tbody {
                @for d in &report.days {
                    tr {
                        td { (d.day) } td { (d.channel) } td { (d.figures.registrations) } td { (logins(d)) }
                        td { (d.figures.cross_device_sign_ins) } td { (d.figures.local_passkeys_added) }
                        td { (d.figures.passkeys_deleted) } td { (d.figures.passkeys_deleted_by_support) }
                        td { (format!("{:.0}%", d.figures.passkey_login_share * 100.0)) }
                    }
                }
            }
            tfoot {
                @for t in &report.totals {
                    tr { th { "合計 / total" } th { (t.channel) } td { (t.figures.registrations) } td { (t.figures.logins.values().sum::<i64>()) }
                         td { (t.figures.cross_device_sign_ins) } td { (t.figures.local_passkeys_added) } td { (t.figures.passkeys_deleted) }
                         td { (t.figures.passkeys_deleted_by_support) } td { (format!("{:.0}%", t.figures.passkey_login_share * 100.0)) } }
                }
            }
        }
    };
    Ok(page(layout("パスキー利用状況", "Adoption report", Some(&staff), body)))
}

/// Registrations per day as bars, logins as a line, drawn as SVG here.
fn chart(days: &[DayRow], from: &str, to: &str) -> Markup {
    use std::collections::BTreeMap;
    let mut per_day: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    if let (Ok(mut d), Ok(end)) = (chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d"), chrono::NaiveDate::parse_from_str(to, "%Y-%m-%d")) {
        while d <= end && per_day.len() < 400 {
            per_day.insert(d.format("%Y-%m-%d").to_string(), (0, 0));
            d = d.succ_opt().unwrap_or(end + chrono::Duration::days(1));
        }
    }
    for r in days {
        let e = per_day.entry(r.day.clone()).or_default();
        e.0 += r.figures.registrations;
        e.1 += r.figures.logins.values().sum::<i64>();
    }
    let (w, h, pad) = (720.0_f64, 220.0_f64, 30.0_f64);
    let n = per_day.len().max(1) as f64;
    let max = per_day.values().map(|(r, l)| (*r).max(*l)).max().unwrap_or(0).max(1) as f64;
    let step = (w - 2.0 * pad) / n;
    let y = |v: i64| h - pad - (v as f64 / max) * (h - 2.0 * pad);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"日別の登録数とログイン数 / registrations and logins per day\">\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/>\
         <text x=\"4\" y=\"{t}\" font-size=\"11\" fill=\"#444\">{max}</text><text x=\"4\" y=\"{b}\" font-size=\"11\" fill=\"#444\">0</text>",
        b = h - pad,
        r = w - pad,
        t = pad + 4.0,
        max = max as i64
    );
    let mut line = String::new();
    for (i, (day, (regs, logins))) in per_day.iter().enumerate() {
        let x = pad + i as f64 * step;
        let top = y(*regs);
        svg.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2f6fb3\"><title>{day}: {regs}</title></rect>",
            x + step * 0.15,
            (step * 0.7).max(1.0),
            (h - pad - top).max(0.0)
        ));
        line.push_str(&format!("{}{:.1},{:.1}", if i == 0 { "" } else { " " }, x + step / 2.0, y(*logins)));
        if per_day.len() <= 14 || i % 7 == 0 {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#444\" text-anchor=\"middle\">{}</text>",
                x + step / 2.0,
                h - 12.0,
                day.get(5..).unwrap_or(day)
            ));
        }
    }
    svg.push_str(&format!("<polyline points=\"{line}\" fill=\"none\" stroke=\"#d9822b\" stroke-width=\"2\"/></svg>"));
    PreEscaped(svg)
}

#[derive(Deserialize, Default)]
pub struct ProofQuery {
    /// An audit trail row's position.
    position: Option<String>,
}

/// The newest signed checkpoint and the verifier key to hand to auditors;
/// with a row's position, its inclusion proof checked against that
/// checkpoint here, from the row's own content.
pub async fn proofs(State(app): State<AppState>, staff: ConsoleStaff, Query(q): Query<ProofQuery>) -> Result<Response, ConsoleError> {
    let (_, latest) = api::newest_checkpoint(&app, &staff.staff, staff.staff.meta()).await.for_staff(&staff)?;
    let position = q.position.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let checked = match (position, &latest) {
        (Some(text), Some(latest)) => Some(match text.parse::<i64>() {
            Ok(position) if position >= 1 && position <= latest.tree_size => {
                let (_, proof) =
                    api::inclusion(&app, &staff.staff, staff.staff.meta(), position - 1, Some(latest.tree_size)).await.for_staff(&staff)?;
                let row = ledger_projections::audit::query(&app.db.any, &Default::default(), position - 1, 1)
                    .await
                    .map_err(ApiError::from)
                    .for_staff(&staff)?
                    .into_iter()
                    .next();
                Ok((proof, row))
            }
            _ => Err(latest.tree_size),
        }),
        _ => None,
    };
    // The root as the note states it, under this log's signature (the
    // `root_hash` column is only the ledger's index of it).
    let stated = latest.as_ref().and_then(|l| app.log_key.verifier().open(&l.note).ok());
    let leaf_of = |row: &ledger_projections::audit::AuditRow| {
        merkle::leaf_hash(
            ledger_projections::audit::canonical_event(
                &row.stream,
                &row.stream_id,
                row.sequence,
                &row.event_type,
                &row.event_version,
                &row.event,
                &row.metadata,
            )
            .as_bytes(),
        )
    };
    let verdict = |proof: &crate::proofs::Inclusion, row: &ledger_projections::audit::AuditRow| {
        let path: Vec<merkle::Hash> = proof.proof.iter().filter_map(|h| merkle::decode(h)).collect();
        stated.as_ref().is_some_and(|s| {
            s.tree_size as i64 == proof.tree_size
                && merkle::verify_inclusion(proof.leaf_index as u64, s.tree_size, &leaf_of(row), &path, &s.root)
        })
    };
    let body = html! {
        @match &latest {
            None => p { (both("監査証跡はまだ空です。チェックポイントはありません。", "The audit trail is empty: there is no checkpoint yet.")) }
            Some(latest) => {
                section.card {
                    h2 { (both("最新のチェックポイント（署名付き）", "Newest signed checkpoint")) }
                    dl.facts {
                        dt { (both("ツリーサイズ", "Tree size")) } dd #tree-size { (latest.tree_size) }
                        dt { (both("ルートハッシュ（署名済み）", "Root hash (as signed)")) }
                        dd { code { (stated.as_ref().map(|s| merkle::encode(&s.root)).unwrap_or_else(|| "署名を検証できません / the signature does not verify".into())) } }
                        dt { (both("作成日時", "Made at")) } dd { (jst(latest.created_at)) }
                        dt { (both("タイムスタンプ（RFC 3161）", "Timestamp (RFC 3161)")) }
                        dd #timestamp {
                            @match (&latest.timestamp, app.config.tsa_url.is_some()) {
                                (Some(stamp), _) => {
                                    (jst(stamp.time)) " · " (both("シリアル", "serial")) " " code { (stamp.serial) } " · "
                                    a href=(format!("/console/proofs/{}/timestamp", latest.tree_size)) download { (both("トークンをダウンロード", "Download the token")) }
                                }
                                (None, true) => (both("時刻認証局の応答待ち（次のチェックポイントで再試行）", "Awaiting the time-stamp authority (asked again at the next checkpoint)")),
                                (None, false) => (both("時刻認証局が設定されていません（LEDGER_TSA_URL）", "No time-stamp authority configured (LEDGER_TSA_URL)")),
                            }
                        }
                    }
                    pre #checkpoint-note { (latest.note) }
                    button type="button" data-copy="checkpoint-note" { (both("チェックポイントをコピー", "Copy the checkpoint")) }
                }
                section.card {
                    h2 { (both("監査人に渡す検証鍵", "Verifier key for auditors")) }
                    p { (both("監査人には一度だけ、台帳とは別の経路で渡し、以後はその鍵で検証してもらってください。", "Hand it to auditors once, by a channel other than the ledger; they check every checkpoint with the key they were given.")) }
                    p { code #verifier-key { (app.log_key.verifier_key()) } }
                    button type="button" data-copy="verifier-key" { (both("検証鍵をコピー", "Copy the verifier key")) }
                }
                section.card {
                    h2 { (both("1件の証跡の包含証明", "One row's inclusion proof")) }
                    form method="get" action="/console/proofs" {
                        label for="position" { (both("証跡の位置", "Trail position")) }
                        input #position name="position" inputmode="numeric" required value=(position.unwrap_or_default());
                        button type="submit" { (both("証明して検証", "Prove and check")) }
                    }
                    @match &checked {
                        Some(Err(size)) => p.error role="alert" {
                            "位置は1〜" (size) "で指定してください。" span.en lang="en" { " Give a position from 1 to " (size) " (the checkpoint's tree)." }
                        }
                        Some(Ok((proof, Some(row)))) => {
                            @if verdict(proof, row) {
                                p.ok #proof-verdict role="status" {
                                    "位置" (row.position) "の証跡は、署名付きチェックポイント（ツリーサイズ" (latest.tree_size) "）に含まれています。"
                                    span.en lang="en" { " Row " (row.position) " is in the signed tree of " (latest.tree_size) " leaves." }
                                }
                            } @else {
                                p.error #proof-verdict role="alert" {
                                    "位置" (row.position) "の証跡は、署名付きチェックポイントと一致しません（改ざんの可能性）。"
                                    span.en lang="en" { " Row " (row.position) " does NOT match the signed checkpoint: it may have been altered." }
                                }
                            }
                            dl.facts {
                                dt { (both("イベント", "Event")) } dd { (row.line.ja) span.en lang="en" { (row.line.en) } }
                                dt { (both("リーフ番号", "Leaf index")) } dd { (proof.leaf_index) }
                                dt { (both("リーフハッシュ（証跡の内容から計算）", "Leaf hash (computed from the row)")) } dd { code { (merkle::encode(&leaf_of(row))) } }
                                dt { (both("証明", "Proof")) } dd { ol.proof { @for h in &proof.proof { li { code { (h) } } } } }
                            }
                        }
                        Some(Ok((_, None))) => p.error role="alert" { (both("その位置の証跡はありません。", "There is no row at that position.")) }
                        None => {}
                    }
                }
                p { (both("監査人は docs/audit-proofs.md の手順で、台帳を使わずに同じ検証ができます。", "An auditor can check the same without the ledger: docs/audit-proofs.md.")) }
            }
        }
    };
    Ok(page(layout("証明", "Proofs", Some(&staff), body)))
}
