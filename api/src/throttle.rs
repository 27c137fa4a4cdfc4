//! Failed attempts throttled per client. A client (an address, as the
//! request is recorded: see [`crate::client_ip`]) may fail a credential
//! step (a wrong password, an unknown ID, a wrong code, a passkey refused,
//! a locked login, an unknown flow) a number of times a minute; past it its
//! attempts are answered 429 `too_many_requests` with `Retry-After` before
//! they reach an account, until the allowance refills (a GCRA, governor's).
//! Only failures count, so customers who sign in fine behind one carrier
//! NAT are not slowed by each other. Refused attempts are summarised: one
//! `AttemptsThrottled` event per client and window, with the count.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// The window refused attempts are summarised over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Failed attempts per key: a client's address, or a login ID.
pub struct Throttle<K: Hash + Eq + Clone + Ord = IpAddr> {
    failures: Option<DefaultKeyedRateLimiter<K>>,
    clock: DefaultClock,
    /// Keys past their allowance, until when.
    blocked: Mutex<HashMap<K, Instant>>,
    /// Attempts refused in the current window, per key.
    refused: Mutex<HashMap<K, u64>>,
    /// Attempts under way, per key: a burst sent in parallel cannot slip
    /// past the count of failures, which only comes with the answers.
    in_flight: Mutex<HashMap<K, u32>>,
}

/// Attempts one key may have under way at once.
pub const MAX_IN_FLIGHT: u32 = 16;

/// An attempt under way; it ends when dropped.
pub struct InFlight<'a, K: Hash + Eq + Clone + Ord> {
    throttle: &'a Throttle<K>,
    key: K,
}

impl<K: Hash + Eq + Clone + Ord> Drop for InFlight<'_, K> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.throttle.in_flight.lock() {
            if let Some(n) = in_flight.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    in_flight.remove(&self.key);
                }
            }
        }
    }
}

impl<K: Hash + Eq + Clone + Ord> Throttle<K> {
    /// `per_minute` failed attempts per client (a burst of as many, then one
    /// every 60/`per_minute` seconds); 0 turns throttling off.
    pub fn new(per_minute: u32) -> Throttle<K> {
        Throttle {
            // The failure that uses the last of the allowance blocks what
            // follows: a burst of one less, so that exactly `per_minute`
            // failures go through before the first refusal (at least two:
            // a burst cannot be empty).
            failures: NonZeroU32::new(per_minute).map(|n| {
                let burst = NonZeroU32::new(n.get() - 1).unwrap_or(n);
                DefaultKeyedRateLimiter::keyed(Quota::per_minute(n).allow_burst(burst))
            }),
            clock: DefaultClock::default(),
            blocked: Mutex::default(),
            refused: Mutex::default(),
            in_flight: Mutex::default(),
        }
    }

    /// Starts an attempt for `key`: None (and a refusal counted) when it
    /// already has [`MAX_IN_FLIGHT`] under way.
    pub fn enter(&self, key: K) -> Option<InFlight<'_, K>> {
        if self.failures.is_none() {
            return Some(InFlight { throttle: self, key });
        }
        let mut in_flight = self.in_flight.lock().ok()?;
        let n = in_flight.entry(key.clone()).or_default();
        if *n >= MAX_IN_FLIGHT {
            drop(in_flight);
            if let Ok(mut refused) = self.refused.lock() {
                *refused.entry(key).or_default() += 1;
            }
            return None;
        }
        *n += 1;
        Some(InFlight { throttle: self, key })
    }

    /// Before an attempt: None when `client` may go on; else how long it
    /// must wait (and the refusal is counted).
    pub fn admit(&self, client: K) -> Option<Duration> {
        let now = Instant::now();
        let mut blocked = self.blocked.lock().ok()?;
        let until = *blocked.get(&client)?;
        if until <= now {
            blocked.remove(&client);
            return None;
        }
        drop(blocked);
        if let Ok(mut refused) = self.refused.lock() {
            *refused.entry(client).or_default() += 1;
        }
        Some(until - now)
    }

    /// After an attempt that failed: counts it; past the allowance, the
    /// client's next attempts are refused until it refills.
    pub fn failed(&self, client: K) {
        let Some(failures) = &self.failures else { return };
        if let Err(not_until) = failures.check_key(&client) {
            let wait = not_until.wait_time_from(self.clock.now());
            if let Ok(mut blocked) = self.blocked.lock() {
                blocked.insert(client, Instant::now() + wait.max(Duration::from_secs(1)));
            }
        }
    }

    /// The refusals of the window that ends now, per client; clients idle
    /// long enough are forgotten.
    pub fn end_window(&self) -> Vec<(K, u64)> {
        if let Some(failures) = &self.failures {
            failures.retain_recent();
            failures.shrink_to_fit();
        }
        let now = Instant::now();
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.retain(|_, until| *until > now);
        }
        let refused = self.refused.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
        let mut refused: Vec<(K, u64)> = refused.into_iter().collect();
        refused.sort();
        refused
    }
}

/// The key a client address is throttled under: an IPv4 address itself,
/// an IPv6 address its /64 network (one subscriber's allocation, whose
/// 2^64 addresses would otherwise each get an allowance of their own).
pub fn throttled_as(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

/// Records the window's refusals, one event per client and one per login
/// ID.
pub async fn record_window(app: &crate::state::AppState) {
    use ledger_domain::system::SystemEvent;
    let window_secs = WINDOW.as_secs();
    let clients = app.throttle.end_window().into_iter().map(|(client, refused)| SystemEvent::AttemptsThrottled {
        client: client.to_string(),
        refused,
        window_secs,
    });
    let login_ids = app.login_throttle.end_window().into_iter().map(|(login_id, refused)| SystemEvent::LoginAttemptsThrottled {
        login_id,
        refused,
        window_secs,
    });
    for event in clients.chain(login_ids).collect::<Vec<_>>() {
        let stream = uuid::Uuid::new_v4().to_string();
        if let Err(e) = app.system_log.record(&stream, event, ledger_domain::EventMetadata::system(app.clock.now())).await {
            tracing::warn!(error = %e, "recording throttled attempts failed");
        }
    }
}

/// Records every window, for as long as the service runs.
pub async fn record_every_window(app: crate::state::AppState) {
    let mut ticks = tokio::time::interval(WINDOW);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        record_window(&app).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_past_the_allowance_block_and_refusals_are_counted() {
        let throttle: Throttle = Throttle::new(3);
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(throttle.admit(a), None, "within the allowance");
            throttle.failed(a);
        }
        let wait = throttle.admit(a).expect("blocked");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(throttle.admit(a).is_some());
        assert_eq!(throttle.admit(b), None, "another client is not affected");
        assert_eq!(throttle.end_window(), vec![(a, 2)]);
        assert_eq!(throttle.end_window(), vec![], "a new window");
    }

    #[test]
    fn an_ipv6_subscriber_is_one_client() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttled_as(a), throttled_as(b));
        assert_eq!(throttled_as(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(throttled_as(a), throttled_as(other));
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(throttled_as(v4), v4);
    }

    #[test]
    fn zero_turns_it_off() {
        let throttle: Throttle = Throttle::new(0);
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        for _ in 0..100 {
            throttle.failed(a);
        }
        assert_eq!(throttle.admit(a), None);
    }
}
