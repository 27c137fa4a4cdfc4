//! Attempts that belong to no account: a login ID that does not exist, a
//! passkey that no account holds. Each is its own one-event stream (no
//! contention under a flood), so the audit trail shows every attempt.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::account::{FlowPurpose, Line};

/// What happened outside any account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SystemEvent {
    /// A password step for a login ID no account has. The customer was told
    /// the same as for a wrong password. The ID is recorded as typed (an
    /// account number, not a secret).
    UnknownLoginIdRejected { login_id: String, purpose: FlowPurpose },
    /// A passkey assertion for a credential no account holds.
    UnknownCredentialRejected { credential_id: String },
    /// A client past its allowance of failed attempts was refused (429)
    /// `refused` times in one window: one event per client and window,
    /// however many attempts, instead of one each.
    AttemptsThrottled { client: String, refused: u64, window_secs: u64 },
    /// Password steps for one login ID (known or not) past its allowance of
    /// wrong passwords were refused (429) `refused` times in one window.
    LoginAttemptsThrottled { login_id: String, refused: u64, window_secs: u64 },
    /// A webhook subscription failed every delivery for longer than the
    /// deployment allows and was disabled; nothing is lost: a replay
    /// delivers from where it stopped.
    WebhookSubscriptionDisabledAfterFailures {
        subscription_id: String,
        failing_since: chrono::DateTime<chrono::Utc>,
        failures: u64,
        last_error: String,
        /// The last trail position the receiver took.
        position: i64,
    },
}

impl DomainEvent for SystemEvent {
    fn event_type(&self) -> String {
        match self {
            SystemEvent::UnknownLoginIdRejected { .. } => "UnknownLoginIdRejected",
            SystemEvent::UnknownCredentialRejected { .. } => "UnknownCredentialRejected",
            SystemEvent::AttemptsThrottled { .. } => "AttemptsThrottled",
            SystemEvent::LoginAttemptsThrottled { .. } => "LoginAttemptsThrottled",
            SystemEvent::WebhookSubscriptionDisabledAfterFailures { .. } => "WebhookSubscriptionDisabledAfterFailures",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The event as a readable line.
pub fn describe_system(event: &SystemEvent) -> Line {
    match event {
        SystemEvent::UnknownLoginIdRejected { login_id, .. } => Line {
            en: format!("A password was tried for login ID {login_id}, which no account has (answered as a wrong password)."),
            ja: format!("存在しないログインID {login_id} でパスワード入力がありました（パスワード誤りとして応答）。"),
        },
        SystemEvent::UnknownCredentialRejected { credential_id } => Line {
            en: format!("A passkey that no account holds was used to sign in (credential {credential_id})."),
            ja: format!("どの口座にも登録されていないパスキーでログインが試みられました（credential {credential_id}）。"),
        },
        SystemEvent::AttemptsThrottled { client, refused, window_secs } => Line {
            en: format!(
                "{refused} attempt(s) from {client} were refused within {window_secs} seconds: too many failed attempts from that client."
            ),
            ja: format!("接続元 {client} からの試行を{window_secs}秒間に{refused}件拒否しました（失敗した試行が多すぎるため）。"),
        },
        SystemEvent::LoginAttemptsThrottled { login_id, refused, window_secs } => Line {
            en: format!("{refused} password attempt(s) for login ID {login_id} were refused within {window_secs} seconds: too many wrong passwords for it."),
            ja: format!("ログインID {login_id} へのパスワード入力を{window_secs}秒間に{refused}件拒否しました（誤ったパスワードが多すぎるため）。"),
        },
        SystemEvent::WebhookSubscriptionDisabledAfterFailures { subscription_id, failing_since, failures, last_error, position } => Line {
            en: format!(
                "Webhook subscription {subscription_id} was disabled: {failures} deliveries failed since {} (last: {last_error}); delivered through position {position}.",
                crate::japan::japan_seconds(*failing_since)
            ),
            ja: format!(
                "Webhook購読 {subscription_id} を無効化しました：{} 以降の送信が{failures}回失敗（最後のエラー：{last_error}）。位置{position}まで送信済み。",
                crate::japan::japan_seconds(*failing_since)
            ),
        },
    }
}

/// A one-event stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemActivity {
    pub recorded: u64,
}

impl Aggregate for SystemActivity {
    const TYPE: &'static str = "system";
    type Command = SystemEvent;
    type Event = SystemEvent;
    type Error = crate::staff::NoError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _services: &Self::Services, sink: &EventSink<Self>) -> Result<(), Self::Error> {
        sink.write(command, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.recorded += 1;
    }
}
