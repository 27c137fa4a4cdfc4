//! What staff do outside any one account: reading, exporting and verifying
//! the audit trail, listing and reviewing fraud signals, reading the
//! adoption report. One stream per staff member (or per operator of the
//! command line), so every such act is on record in the same log.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::account::Line;

/// A compliance review's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    Confirmed,
    Dismissed,
}

/// Staff acts that are not about a single account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StaffEvent {
    AuditTrailQueried {
        filters: serde_json::Value,
    },
    AuditTrailExported {
        format: String,
        filters: serde_json::Value,
    },
    AuditTrailVerified {
        ok: bool,
        checked: u64,
        first_bad_position: Option<i64>,
    },
    SignalsListed {
        filters: serde_json::Value,
    },
    SignalReviewed {
        signal_id: String,
        outcome: ReviewOutcome,
        note: String,
    },
    AdoptionReportRead {
        from: String,
        to: String,
    },
    /// The chain head was read, to anchor it outside the ledger.
    AuditHeadRead {
        position: Option<i64>,
    },
    /// A signed checkpoint of the trail's Merkle tree was read (the newest
    /// when `tree_size` is the newest's), or its time-stamp token.
    AuditCheckpointRead {
        tree_size: Option<i64>,
        timestamp: bool,
    },
    /// The checkpoints with tree sizes `from ..= to` were listed.
    AuditCheckpointsListed {
        from: i64,
        to: i64,
    },
    /// The proof that a trail row is leaf `leaf_index` of the tree of
    /// `tree_size` leaves was handed out.
    AuditInclusionProofRead {
        leaf_index: i64,
        tree_size: i64,
    },
    /// The proof that the tree of `from_size` leaves is a prefix of the
    /// tree of `to_size` was handed out.
    AuditConsistencyProofRead {
        from_size: i64,
        to_size: i64,
    },
    /// An operator revoked this staff member's token (`ledger staff
    /// revoke-token`): it opens nothing from now on.
    StaffTokenRevoked {},
    /// This staff member's token was presented after it was revoked or
    /// after it expired, and refused.
    StaffTokenRefused {
        reason: TokenRefusal,
    },
    /// The staff member's role does not open what they asked for (403):
    /// a support agent reaching for the audit trail is on record.
    StaffAccessRefused {
        role: String,
        /// The method and path asked for (`GET /api/v1/audit/events`).
        request: String,
    },
    /// A staff member was added (`ledger staff add`); recorded in the
    /// stream of whoever added them. No token.
    StaffMemberAdded {
        staff_id: String,
        name: String,
        role: String,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// A one-time link to enrol a console passkey was issued for a member
    /// (`ledger staff add`, `ledger staff link`, or an administrator in the
    /// console); recorded in the stream of whoever issued it. No link.
    StaffEnrolmentLinkIssued {
        staff_id: String,
        name: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// A member was given a new API token (`ledger staff token`); recorded
    /// in the stream of whoever issued it. No token.
    StaffTokenIssued {
        staff_id: String,
        name: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// The member registered a passkey for the console from their link.
    ConsolePasskeyEnrolled {
        credential_id: String,
        provider: Option<String>,
    },
    /// The member signed in to the console with their passkey.
    ConsoleSignedIn {},
    /// A console sign-in with a passkey of this member was refused.
    ConsoleSignInRefused {
        reason: String,
    },
    /// The member's console session ended: `signed_out`, `idle` or
    /// `expired` (the absolute limit).
    ConsoleSignedOut {
        cause: String,
    },
    /// An administrator disabled a member: their token and console
    /// sessions stopped at once; recorded in the administrator's stream.
    StaffMemberDisabled {
        staff_id: String,
        name: String,
        sessions_ended: u64,
    },
    /// A webhook subscription of the trail was added (`ledger webhooks
    /// add` or the admin API); recorded in the stream of whoever added it.
    /// The URL without its query; no secret.
    WebhookSubscriptionAdded {
        subscription_id: String,
        url: String,
        format: String,
        /// The event types delivered; empty: all.
        types: Vec<String>,
        batch_size: u32,
        /// `masked` or `full`.
        personal_data: String,
        from_position: i64,
    },
    /// A webhook subscription was disabled: nothing more is delivered.
    WebhookSubscriptionDisabled {
        subscription_id: String,
    },
    /// A webhook subscription delivers again from a trail position.
    WebhookReplayRequested {
        subscription_id: String,
        from_position: i64,
    },
    /// A webhook subscription got a new signing secret; the previous one
    /// signs too until `previous_valid_until`. No secret.
    WebhookSecretRotated {
        subscription_id: String,
        previous_valid_until: chrono::DateTime<chrono::Utc>,
    },
}

/// Why a staff token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRefusal {
    Revoked,
    Expired,
}

impl DomainEvent for StaffEvent {
    fn event_type(&self) -> String {
        match self {
            StaffEvent::AuditTrailQueried { .. } => "AuditTrailQueried",
            StaffEvent::AuditTrailExported { .. } => "AuditTrailExported",
            StaffEvent::AuditTrailVerified { .. } => "AuditTrailVerified",
            StaffEvent::SignalsListed { .. } => "SignalsListed",
            StaffEvent::SignalReviewed { .. } => "SignalReviewed",
            StaffEvent::AdoptionReportRead { .. } => "AdoptionReportRead",
            StaffEvent::AuditHeadRead { .. } => "AuditHeadRead",
            StaffEvent::AuditCheckpointRead { .. } => "AuditCheckpointRead",
            StaffEvent::AuditCheckpointsListed { .. } => "AuditCheckpointsListed",
            StaffEvent::AuditInclusionProofRead { .. } => "AuditInclusionProofRead",
            StaffEvent::AuditConsistencyProofRead { .. } => "AuditConsistencyProofRead",
            StaffEvent::StaffTokenRevoked {} => "StaffTokenRevoked",
            StaffEvent::StaffTokenRefused { .. } => "StaffTokenRefused",
            StaffEvent::StaffAccessRefused { .. } => "StaffAccessRefused",
            StaffEvent::StaffMemberAdded { .. } => "StaffMemberAdded",
            StaffEvent::StaffEnrolmentLinkIssued { .. } => "StaffEnrolmentLinkIssued",
            StaffEvent::StaffTokenIssued { .. } => "StaffTokenIssued",
            StaffEvent::ConsolePasskeyEnrolled { .. } => "ConsolePasskeyEnrolled",
            StaffEvent::ConsoleSignedIn {} => "ConsoleSignedIn",
            StaffEvent::ConsoleSignInRefused { .. } => "ConsoleSignInRefused",
            StaffEvent::ConsoleSignedOut { .. } => "ConsoleSignedOut",
            StaffEvent::StaffMemberDisabled { .. } => "StaffMemberDisabled",
            StaffEvent::WebhookSubscriptionAdded { .. } => "WebhookSubscriptionAdded",
            StaffEvent::WebhookSubscriptionDisabled { .. } => "WebhookSubscriptionDisabled",
            StaffEvent::WebhookReplayRequested { .. } => "WebhookReplayRequested",
            StaffEvent::WebhookSecretRotated { .. } => "WebhookSecretRotated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The event as a readable line.
pub fn describe_staff(event: &StaffEvent) -> Line {
    let (en, ja) = match event {
        StaffEvent::AuditHeadRead { position } => {
            let (en, ja) = match position {
                Some(p) => (format!("position {p}"), format!("位置 {p}")),
                None => ("empty trail".to_string(), "証跡は空".to_string()),
            };
            (format!("The audit trail's chain head was read ({en})."), format!("監査証跡のチェーンヘッドを取得しました（{ja}）。"))
        }
        StaffEvent::AuditCheckpointRead { tree_size, timestamp } => {
            let (en, ja) = match tree_size {
                Some(n) => (format!("tree size {n}"), format!("ツリーサイズ {n}")),
                None => ("none made yet".to_string(), "未作成".to_string()),
            };
            if *timestamp {
                (
                    format!("A checkpoint's time-stamp token was read ({en})."),
                    format!("チェックポイントのタイムスタンプトークンを取得しました（{ja}）。"),
                )
            } else {
                (
                    format!("A signed checkpoint of the audit trail was read ({en})."),
                    format!("監査証跡の署名付きチェックポイントを取得しました（{ja}）。"),
                )
            }
        }
        StaffEvent::AuditCheckpointsListed { from, to } => (
            format!("The audit trail's checkpoints were listed (tree sizes {from} to {to})."),
            format!("監査証跡のチェックポイントを一覧しました（ツリーサイズ {from}〜{to}）。"),
        ),
        StaffEvent::AuditInclusionProofRead { leaf_index, tree_size } => (
            format!("An inclusion proof was read (leaf {leaf_index} in a tree of {tree_size})."),
            format!("包含証明を取得しました（リーフ {leaf_index}、ツリーサイズ {tree_size}）。"),
        ),
        StaffEvent::AuditConsistencyProofRead { from_size, to_size } => (
            format!("A consistency proof was read (tree size {from_size} to {to_size})."),
            format!("一貫性証明を取得しました（ツリーサイズ {from_size}→{to_size}）。"),
        ),
        StaffEvent::AuditTrailQueried { filters } => {
            let (en, ja) = crate::words::filter_words(filters);
            (format!("The audit trail was queried ({en})."), format!("監査証跡を照会しました（{ja}）。"))
        }
        StaffEvent::AuditTrailExported { format, filters } => {
            let (en, ja) = crate::words::filter_words(filters);
            let format = format.to_uppercase();
            (format!("The audit trail was exported as {format} ({en})."), format!("監査証跡を{format}形式でエクスポートしました（{ja}）。"))
        }
        StaffEvent::AuditTrailVerified { ok: true, checked, .. } => {
            (format!("The audit trail was verified: {checked} rows intact."), format!("監査証跡を検証しました：{checked}件、改ざんなし。"))
        }
        StaffEvent::AuditTrailVerified { ok: false, checked, first_bad_position } => {
            let at = first_bad_position.map(|p| p.to_string()).unwrap_or_default();
            (
                format!("The audit trail was verified: ALTERED at position {at} ({checked} rows checked)."),
                format!("監査証跡を検証しました：位置{at}で改ざんを検出（{checked}件確認）。"),
            )
        }
        StaffEvent::SignalsListed { filters } => {
            let (en, ja) = crate::words::filter_words(filters);
            (format!("Fraud signals were listed ({en})."), format!("不正検知シグナルを一覧しました（{ja}）。"))
        }
        StaffEvent::SignalReviewed { signal_id, outcome, note } => {
            let (o_en, o_ja) = match outcome {
                ReviewOutcome::Confirmed => ("confirmed", "確認（不正あり）"),
                ReviewOutcome::Dismissed => ("dismissed", "却下（問題なし）"),
            };
            // `<kind>:<subject>:<sequence>`: the kind in words, the subject
            // named (an account, or for credential stuffing the client or
            // network, whose IPv6 form has colons of its own).
            let (kind, subject) = signal_id.rsplit_once(':').and_then(|(rest, _)| rest.split_once(':')).unwrap_or((signal_id, ""));
            let (kind_en, kind_ja) = crate::words::signal_kind_words(kind);
            let (on_en, on_ja) = match subject {
                "" => (String::new(), String::new()),
                s if kind.starts_with("many_login_ids_from_one_") => {
                    let s = s.replace('-', "/");
                    (format!(" from {s}"), format!("（接続元 {s}）"))
                }
                a => (format!(" on account {a}"), format!("（口座 {a}）")),
            };
            (
                format!("A fraud signal ({kind_en}){on_en} was reviewed: {o_en}. Note: {note}"),
                format!("不正検知シグナル「{kind_ja}」{on_ja}をレビューしました：{o_ja}。メモ：{note}"),
            )
        }
        StaffEvent::StaffTokenRevoked {} => (
            "The staff member's token was revoked: it opens nothing from now on.".to_string(),
            "スタッフのトークンを失効させました。今後は使用できません。".to_string(),
        ),
        StaffEvent::StaffTokenRefused { reason: TokenRefusal::Revoked } => (
            "A revoked staff token was presented and refused.".to_string(),
            "失効済みのスタッフトークンが使用され、拒否しました。".to_string(),
        ),
        StaffEvent::StaffTokenRefused { reason: TokenRefusal::Expired } => (
            "An expired staff token was presented and refused.".to_string(),
            "有効期限切れのスタッフトークンが使用され、拒否しました。".to_string(),
        ),
        StaffEvent::StaffAccessRefused { role, request } => {
            let (role_en, role_ja) = role_words(role);
            (
                format!("Refused: the role {role_en} does not open {request}."),
                format!("{role_ja}の役割では {request} を利用できないため、拒否しました。"),
            )
        }
        StaffEvent::StaffMemberAdded { staff_id, name, role, expires_at } => {
            let (role_en, role_ja) = role_words(role);
            let (until_en, until_ja) = match expires_at {
                Some(at) => {
                    let (en, ja) = crate::japan::japan_time_words(*at);
                    (format!(", token valid until {en}"), format!("。トークンの有効期限 {ja}"))
                }
                None => (String::new(), String::new()),
            };
            (
                format!("Staff member {name} ({staff_id}) was added with the role {role_en}{until_en}."),
                format!("担当者 {name}（{staff_id}）を{role_ja}の役割で追加しました{until_ja}。"),
            )
        }
        StaffEvent::StaffEnrolmentLinkIssued { staff_id, name, expires_at } => {
            let (en, ja) = crate::japan::japan_time_words(*expires_at);
            (
                format!("A console enrolment link was issued for staff member {name} ({staff_id}), valid until {en}."),
                format!("担当者 {name}（{staff_id}）のコンソール登録用リンクを発行しました。有効期限 {ja}。"),
            )
        }
        StaffEvent::StaffTokenIssued { staff_id, name, expires_at } => {
            let (en, ja) = crate::japan::japan_time_words(*expires_at);
            (
                format!("A new API token was issued for staff member {name} ({staff_id}), valid until {en}."),
                format!("担当者 {name}（{staff_id}）に新しいAPIトークンを発行しました。有効期限 {ja}。"),
            )
        }
        StaffEvent::ConsolePasskeyEnrolled { provider, .. } => {
            let provider = provider.as_deref().unwrap_or("unknown provider");
            (
                format!("The staff member registered a passkey for the console ({provider})."),
                format!("担当者がコンソール用のパスキーを登録しました（{provider}）。"),
            )
        }
        StaffEvent::ConsoleSignedIn {} => (
            "The staff member signed in to the console with a passkey.".to_string(),
            "担当者がパスキーでコンソールにサインインしました。".to_string(),
        ),
        StaffEvent::ConsoleSignInRefused { reason } => {
            let (en, ja) = match reason.as_str() {
                "disabled" => ("the member is disabled", "担当者は無効化されています"),
                "unknown_passkey" => ("the passkey is not registered", "未登録のパスキーです"),
                "counter_regression" => {
                    ("the passkey's counter went backwards (a possible copy)", "パスキーのカウンターが戻りました（複製の疑い）")
                }
                _ => ("the passkey could not be verified", "パスキーを検証できませんでした"),
            };
            (format!("A console sign-in was refused: {en}."), format!("コンソールへのサインインを拒否しました：{ja}。"))
        }
        StaffEvent::ConsoleSignedOut { cause } => {
            let (en, ja) = match cause.as_str() {
                "idle" => ("after being idle too long", "一定時間操作がなかったため"),
                "expired" => ("at the session's time limit", "セッションの有効時間を過ぎたため"),
                _ => ("by signing out", "サインアウトにより"),
            };
            (format!("The staff member's console session ended {en}."), format!("担当者のコンソールセッションが{ja}終了しました。"))
        }
        StaffEvent::StaffMemberDisabled { staff_id, name, sessions_ended } => (
            format!("Staff member {name} ({staff_id}) was disabled; {sessions_ended} console session(s) ended."),
            format!("担当者 {name}（{staff_id}）を無効化しました。コンソールセッション{sessions_ended}件を終了しました。"),
        ),
        StaffEvent::WebhookSubscriptionAdded { subscription_id, url, format, types, personal_data, from_position, .. } => {
            let (types_en, types_ja) = if types.is_empty() {
                ("every event".to_string(), "すべてのイベント".to_string())
            } else {
                (types.join(", "), types.join("、"))
            };
            let (pd_en, pd_ja) = if personal_data == "full" { ("in full", "そのまま") } else { ("masked", "マスクして") };
            (
                format!("Webhook subscription {subscription_id} was added: {types_en} from position {from_position} to {url} as {format}, personal data {pd_en}."),
                format!("Webhook購読 {subscription_id} を追加しました：位置{from_position}以降の{types_ja}を{format}形式で {url} へ送信（個人データは{pd_ja}）。"),
            )
        }
        StaffEvent::WebhookSubscriptionDisabled { subscription_id } => {
            (format!("Webhook subscription {subscription_id} was disabled."), format!("Webhook購読 {subscription_id} を無効化しました。"))
        }
        StaffEvent::WebhookReplayRequested { subscription_id, from_position } => (
            format!("Webhook subscription {subscription_id} delivers again from position {from_position}."),
            format!("Webhook購読 {subscription_id} へ位置{from_position}から再送します。"),
        ),
        StaffEvent::WebhookSecretRotated { subscription_id, previous_valid_until } => (
            format!(
                "Webhook subscription {subscription_id} got a new signing secret; the previous one also signs until {}.",
                crate::japan::japan_seconds(*previous_valid_until)
            ),
            format!(
                "Webhook購読 {subscription_id} の署名用シークレットを更新しました。旧シークレットでの署名も {} まで併記します。",
                crate::japan::japan_seconds(*previous_valid_until)
            ),
        ),
        StaffEvent::AdoptionReportRead { from, to } => {
            (format!("The adoption report was read ({from} to {to})."), format!("パスキー利用状況レポートを閲覧しました（{from}〜{to}）。"))
        }
    };
    Line { en, ja }
}

/// A staff role in words.
fn role_words(role: &str) -> (&str, &str) {
    match role {
        "support" => ("support", "サポート"),
        "compliance" => ("compliance", "コンプライアンス"),
        "admin" => ("administrator", "管理者"),
        other => (other, other),
    }
}

/// A staff member's stream. It decides nothing: every act is recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StaffActivity {
    pub acts: u64,
}

/// Errors never happen: recording an act always succeeds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("never")]
pub struct NoError;

impl Aggregate for StaffActivity {
    const TYPE: &'static str = "staff";
    type Command = StaffEvent;
    type Event = StaffEvent;
    type Error = NoError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _services: &Self::Services, sink: &EventSink<Self>) -> Result<(), Self::Error> {
        sink.write(command, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.acts += 1;
    }
}
