//! The service's working tables, beside the event log: what a request must
//! keep between two calls (flows, one-time codes, WebAuthn ceremonies,
//! sessions) and the secrets the core system hands over (password hashes).
//! HTTP handlers ask here and never write SQL themselves; nothing here
//! knows about HTTP. Times are passed in, so the caller's clock decides.

mod ceremonies;
mod codes;
mod console;
mod flows;
mod secrets;
mod sessions;
mod staff;
mod subscriptions;
mod sweep;
mod unknown;

pub use ceremonies::Ceremony;
pub use console::{ConsoleSession, SessionRefusal};
pub use flows::{Flow, NewFlow};
pub use secrets::Kept;
pub use sessions::{NewSession, OpenSession, OpenedFrom, SessionRow};
pub use staff::{NewStaff, StaffRow};
pub use subscriptions::{NewSubscription, Subscription};
pub use sweep::{sweep_every, Swept, GRACE};

use sqlx::AnyPool;

pub use ledger_projections::DbError;

/// The working tables, over the database's `Any` pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    pub fn new(pool: AnyPool) -> Store {
        Store { pool }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    async fn store() -> Store {
        let db = ledger_projections::db::Database::connect("sqlite::memory:").await.expect("database");
        db.migrate().await.expect("migrations");
        Store::new(db.any.clone())
    }

    #[tokio::test]
    async fn a_ceremony_is_taken_once_and_never_after_it_expired() {
        let store = store().await;
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("time");
        store.save_ceremony("c1", "login", None, "{state}", None, now + Duration::minutes(5)).await.expect("saved");
        assert!(store.take_ceremony("c1", "registration", now).await.expect("read").is_none(), "another kind does not take it");
        let taken = store.take_ceremony("c1", "login", now).await.expect("read").expect("taken");
        assert_eq!(taken.state, "{state}");
        assert!(store.take_ceremony("c1", "login", now).await.expect("read").is_none(), "a replay finds nothing");

        store.save_ceremony("c2", "login", None, "{state}", None, now + Duration::minutes(5)).await.expect("saved");
        assert!(store.take_ceremony("c2", "login", now + Duration::minutes(6)).await.expect("read").is_none());
    }

    #[tokio::test]
    async fn an_ended_session_says_so_and_an_expired_one_is_gone() {
        let store = store().await;
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("time");
        let session = |token_hash| NewSession {
            token_hash,
            account_id: "a1",
            method: "passkey",
            created_at: now,
            expires_at: now + Duration::hours(1),
            sign_in_id: None,
            passkey_id: None,
            from: OpenedFrom { channel: "web", ip: "192.0.2.1", environment: None, opened_by: Some(3) },
        };
        store.start_session(session("t1")).await.expect("started");
        store.start_session(session("t2")).await.expect("started");
        assert!(!store.session("t1", now).await.expect("read").expect("live").ended);
        assert!(store.session("t1", now + Duration::hours(2)).await.expect("read").is_none());
        let open = store.open_sessions("a1", now).await.expect("listed");
        assert_eq!(
            open.iter().map(|s| (s.channel.as_deref(), s.ip.as_deref(), s.last_seen_at)).collect::<Vec<_>>(),
            [(Some("web"), Some("192.0.2.1"), Some(now)); 2]
        );
        store.session_seen("t1", Some(now), now + Duration::seconds(30)).await.expect("seen");
        assert_eq!(store.session("t1", now).await.expect("read").expect("live").last_seen_at, Some(now), "not within a minute");
        store.session_seen("t1", Some(now), now + Duration::seconds(61)).await.expect("seen");
        assert_eq!(store.session("t1", now).await.expect("read").expect("live").last_seen_at, Some(now + Duration::seconds(61)));
        assert_eq!(store.end_sessions("a1", now).await.expect("ended"), 2);
        assert!(store.session("t2", now).await.expect("read").expect("kept").ended);
    }

    #[tokio::test]
    async fn expired_working_rows_are_swept_a_day_after_they_expired() {
        let store = store().await;
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("time");
        let session = |token_hash, expires_at| NewSession {
            token_hash,
            account_id: "a1",
            method: "passkey",
            created_at: now - Duration::days(3),
            expires_at,
            sign_in_id: None,
            passkey_id: None,
            from: OpenedFrom { channel: "web", ip: "192.0.2.1", environment: None, opened_by: Some(3) },
        };
        store.start_session(session("old", now - GRACE - Duration::minutes(1))).await.expect("started");
        store.start_session(session("recent", now - Duration::minutes(1))).await.expect("started");
        store.save_ceremony("old", "login", None, "{}", None, now - GRACE - Duration::minutes(1)).await.expect("saved");
        store.save_ceremony("live", "login", None, "{}", None, now + Duration::minutes(5)).await.expect("saved");
        let swept = store.sweep(now).await.expect("swept");
        assert_eq!(swept, Swept { ceremonies: 1, sessions: 1, ..Swept::default() });
        assert!(store.take_ceremony("live", "login", now).await.expect("read").is_some(), "a live ceremony stays");
        // Expired but within the grace period: still answers as ended.
        assert!(store.session("recent", now - Duration::minutes(2)).await.expect("read").is_some());
        assert_eq!(store.sweep(now).await.expect("swept").total(), 0);
    }

    #[tokio::test]
    async fn a_login_id_belongs_to_one_account() {
        let store = store().await;
        assert!(matches!(store.keep_new_account("a1", "u1", "h", "t").await.expect("kept"), Kept::Yes));
        assert!(matches!(store.keep_new_account("a2", "u1", "h", "t").await.expect("kept"), Kept::LoginIdTaken));
        assert_eq!(store.login("u1").await.expect("read").map(|(a, _)| a).as_deref(), Some("a1"));
        assert!(store.set_password_hash("a1", "h2").await.expect("set"));
        assert!(!store.set_password_hash("nobody", "h2").await.expect("set"));
        assert_eq!(store.password_hash("a1").await.expect("read").as_deref(), Some("h2"));
    }
}
