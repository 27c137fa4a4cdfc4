//! The clock the ledger reads. Production reads the system clock; tests and
//! demos may move it to see codes expire and mandatory instants pass.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A clock whose offset from real time can be moved.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<Mutex<Duration>>,
}

impl Clock {
    /// Now, as the ledger sees it.
    pub fn now(&self) -> DateTime<Utc> {
        let offset = self.offset.lock().map(|o| *o).unwrap_or_else(|e| *e.into_inner());
        Utc::now() + offset
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
    }
}
