//! The operator's metrics in Prometheus text format (metrics and
//! metrics-exporter-prometheus): requests by route and status with their
//! durations, mail sent and failed, the build, kept by the process; and a
//! census read at each scrape from small tables (events by type as the
//! projector counted them, projector lag and stall, the database pool,
//! accounts, passkeys, fraud signals). Counts only, nothing personal: a route is its template, never a
//! concrete path.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// Upper bounds of the request duration histogram, in seconds.
const DURATION_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The process's own recorder: each `App` has one, so several services in
/// one process (the tests) keep separate figures.
pub struct Metrics {
    recorder: PrometheusRecorder,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let builder = PrometheusBuilder::new();
        // Only a non-empty bucket list is refused; this one is not empty.
        let builder = builder.set_buckets(DURATION_BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        metrics::with_local_recorder(&recorder, || {
            describe_counter!("ledger_http_requests_total", "HTTP requests answered, by route template, method and status.");
            describe_histogram!("ledger_http_request_duration_seconds", Unit::Seconds, "Time to answer, by route template.");
            describe_counter!("ledger_mail_sent_total", "E-mails the relay accepted, by kind (code, notice).");
            describe_counter!("ledger_mail_failed_total", "E-mails the relay refused or did not answer, by kind.");
            // Present from the start at 0, so that "rising" alerts have a base.
            for kind in ["code", "notice"] {
                counter!("ledger_mail_sent_total", "kind" => kind).absolute(0);
                counter!("ledger_mail_failed_total", "kind" => kind).absolute(0);
            }
            describe_counter!("ledger_stream_events_total", "Events a subscription's receiver took (NATS, webhooks), by subscription.");
            describe_gauge!("ledger_build_info", "The running version.");
            gauge!("ledger_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        });
        Metrics { recorder }
    }
}

/// The ledger's state at the moment of a scrape.
pub struct Census {
    pub ledger: ledger_projections::read_models::Census,
    pub projector_lag: i64,
    pub projector_stalled_seconds: f64,
    pub projection_failures: i64,
    /// The database pool: connections open, and of them idle.
    pub connections: (u32, usize),
    /// The trail's subscribers (NATS, webhooks).
    pub subscriptions: Vec<crate::streams::manage::SubscriptionView>,
}

impl Metrics {
    /// One answered request.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        metrics::with_local_recorder(&self.recorder, || {
            let (route, method) = (route.to_string(), method.to_string());
            counter!("ledger_http_requests_total", "route" => route.clone(), "method" => method, "status" => status.to_string())
                .increment(1);
            histogram!("ledger_http_request_duration_seconds", "route" => route).record(seconds);
        });
    }

    /// Events a subscription's receiver took.
    pub fn streamed(&self, subscription: &str, events: u64) {
        metrics::with_local_recorder(&self.recorder, || {
            counter!("ledger_stream_events_total", "subscription" => subscription.to_string()).increment(events);
        });
    }

    /// One e-mail handed to the relay (`kind`: `code` or `notice`), or not.
    pub fn mail(&self, kind: &'static str, sent: bool) {
        metrics::with_local_recorder(&self.recorder, || {
            if sent {
                counter!("ledger_mail_sent_total", "kind" => kind).increment(1);
            } else {
                counter!("ledger_mail_failed_total", "kind" => kind).increment(1);
            }
        });
    }

    /// The text a scrape answers: the census, then the request figures.
    /// The census goes through a recorder of its own, made for this scrape,
    /// so a label set that no longer exists (a signal's old status) is not
    /// reported with its last value.
    pub fn render(&self, census: Census) -> String {
        let snapshot = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&snapshot, || {
            describe_counter!("ledger_events_total", "Events in the audit trail, by type.");
            for (event_type, n) in census.ledger.events_by_type {
                counter!("ledger_events_total", "type" => event_type).absolute(u64::try_from(n).unwrap_or_default());
            }
            describe_gauge!("ledger_projector_lag", "Logged events not yet in the read models.");
            gauge!("ledger_projector_lag").set(census.projector_lag as f64);
            describe_gauge!("ledger_projector_stalled_seconds", "Seconds the projector has been behind without moving on; 0 when current.");
            gauge!("ledger_projector_stalled_seconds").set(census.projector_stalled_seconds);
            describe_gauge!("ledger_db_connections", "Database connections of this instance's pool, by state.");
            let (open, idle) = census.connections;
            gauge!("ledger_db_connections", "state" => "idle").set(idle as f64);
            gauge!("ledger_db_connections", "state" => "in_use").set(f64::from(open).max(idle as f64) - idle as f64);
            describe_gauge!("ledger_projection_failures", "Events the projector skipped because the read models could not take them.");
            gauge!("ledger_projection_failures").set(census.projection_failures as f64);
            describe_gauge!("ledger_subscription_lag", "Trail events not yet delivered to a subscription (NATS, webhooks).");
            describe_gauge!("ledger_subscription_failures", "Failed deliveries in a row of a subscription.");
            describe_gauge!("ledger_subscription_active", "1 while a subscription delivers, 0 once disabled.");
            for s in &census.subscriptions {
                let labels = [("subscription", s.subscription_id.clone()), ("kind", s.kind.clone())];
                gauge!("ledger_subscription_lag", &labels).set(s.lag as f64);
                gauge!("ledger_subscription_failures", &labels).set(s.failures as f64);
                gauge!("ledger_subscription_active", &labels).set(if s.state == "active" { 1.0 } else { 0.0 });
            }
            describe_gauge!("ledger_accounts", "Accounts known to the ledger.");
            gauge!("ledger_accounts").set(census.ledger.accounts as f64);
            describe_gauge!("ledger_passkeys_active", "Passkeys bound and not deleted.");
            gauge!("ledger_passkeys_active").set(census.ledger.passkeys_active as f64);
            describe_gauge!("ledger_signals", "Fraud signals by kind and review status.");
            for (kind, status, n) in census.ledger.signals {
                gauge!("ledger_signals", "kind" => kind, "status" => status).set(n as f64);
            }
        });
        format!("{}{}", snapshot.handle().render(), self.recorder.handle().render())
    }
}
