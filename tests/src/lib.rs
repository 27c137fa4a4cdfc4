//! Test support: a software passkey authenticator that makes real WebAuthn
//! registrations and assertions (P-256, CBOR), an SMTP server on loopback
//! that keeps what it receives, and the ledger served on an ephemeral port
//! over a fresh SQLite or PostgreSQL database.

pub mod authenticator;
pub mod devices;
pub mod harness;
pub mod openapi;
pub mod process;
pub mod smtp;
pub mod tsa;

pub use authenticator::SoftPasskey;
pub use harness::{Backend, TestApp};

/// Runs each named scenario `async fn name(app: TestApp)` once on SQLite and
/// once on PostgreSQL (skipped loudly when PostgreSQL is unreachable and not
/// required).
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(app) = $crate::TestApp::spawn($crate::Backend::Sqlite).await {
                    super::$name(app).await;
                }
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(app) = $crate::TestApp::spawn($crate::Backend::Postgres).await {
                    super::$name(app).await;
                }
            })*
        }
    };
}
