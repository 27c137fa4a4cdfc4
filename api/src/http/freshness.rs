//! How current a staff read is. Support and compliance views are built by
//! the projector; a read first waits (within a bound) for it to reach every
//! event committed before the read began, and then says what it reflects:
//!
//! - `X-Ledger-Checkpoint`: the log position of the last event the view holds;
//! - `X-Ledger-Behind`: events in the log the view does not hold yet (0 when
//!   current). Above 0 after the wait when a transaction left open anywhere
//!   on the PostgreSQL server holds the projector back, or it is rebuilding.

use axum::http::HeaderValue;
use axum::response::{IntoResponseParts, ResponseParts};

use crate::error::ApiError;
use crate::state::AppState;

/// The longest a staff read waits for the projector before it answers with
/// what the views hold (and says how far behind they are).
pub const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a read reflects, sent as response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reflects {
    pub position: i64,
    pub behind: i64,
}

impl Reflects {
    /// Waits up to [`READ_WAIT`] for the views to reach every event
    /// committed so far, then reads where they are.
    pub async fn after_waiting(app: &AppState) -> Result<Reflects, ApiError> {
        let caught_up = app.projector.catch_up_to_now(READ_WAIT).await?;
        let (position, behind) = app.projector.reflects().await?;
        if !caught_up && behind > 0 {
            tracing::warn!(
                position,
                behind,
                "a staff read answers from views behind the log (a transaction open elsewhere on the database, or a rebuild)"
            );
        }
        Ok(Reflects { position, behind })
    }

    /// Waits up to [`READ_WAIT`] for the views to hold every event of one
    /// account (what a view of that account needs), then reads where they are.
    pub async fn for_account(app: &AppState, account_id: &str) -> Result<Reflects, ApiError> {
        if !app.projector.wait_for_account(account_id, READ_WAIT).await? {
            tracing::warn!(account_id, "a staff read answers from views behind the account's stream");
        }
        let (position, behind) = app.projector.reflects().await?;
        Ok(Reflects { position, behind })
    }

    /// The two headers, for a response built by hand.
    pub fn headers(&self) -> [(&'static str, HeaderValue); 2] {
        [("x-ledger-checkpoint", HeaderValue::from(self.position)), ("x-ledger-behind", HeaderValue::from(self.behind))]
    }
}

impl IntoResponseParts for Reflects {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Self::Error> {
        for (name, value) in self.headers() {
            parts.headers_mut().insert(name, value);
        }
        Ok(parts)
    }
}
