//! Everything a pool is configured with.

use std::time::Duration;

use super::balance::Balance;
use super::budget::RetryBudgetPolicy;
use super::connection::ConnectionOptions;
use super::hedge::HedgePolicy;
use super::limit::InFlightLimit;
use super::liveness::LivenessPolicy;
use super::outlier::OutlierPolicy;
use super::retry::RetryPolicy;
use super::send::{SendPolicy, Tuning};

/// Everything a pool is configured with. The default behaves as jina 3.1.0's pool;
/// [`PoolOptions::resilient`] adds fail-over, backoff and outlier ejection.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolOptions {
    /// How connections are opened (channel options, TLS).
    pub connection: ConnectionOptions,
    /// The retry policy of every send.
    pub retry: RetryPolicy,
    /// When replicas that keep failing are skipped.
    pub outlier: OutlierPolicy,
    /// Deadline applied to sends that do not give their own; `None` = none.
    pub default_timeout: Option<Duration>,
    /// How a replica is picked: jina's round robin (default) or p2c over PeakEWMA costs.
    pub balance: Balance,
    /// At most this many calls in flight per replica, with a bounded queue when all are full
    /// (`None` = no limit, the default).
    pub in_flight_limit: Option<InFlightLimit>,
    /// Hedging of sends marked idempotent (`SendOptions::idempotent`); `None` = never (default).
    pub hedge: Option<HedgePolicy>,
    /// Keep per-replica metrics (`ConnectionPool::metrics_text`); off by default.
    pub metrics: bool,
    /// Retry throttling per head or shard (gRFC A6); `None` = none (the default, as jina).
    pub retry_budget: Option<RetryBudgetPolicy>,
    /// How often the names of `dns:///host:port` addresses are resolved again (also within a second
    /// when one of their replicas fails); `None` = never. Default 30 s.
    pub dns_refresh: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            connection: ConnectionOptions::default(),
            retry: RetryPolicy::default(),
            outlier: OutlierPolicy::default(),
            default_timeout: None,
            balance: Balance::default(),
            in_flight_limit: None,
            hedge: None,
            metrics: false,
            retry_budget: None,
            dns_refresh: Some(Duration::from_secs(30)),
        }
    }
}

impl PoolOptions {
    /// Fail-over to the next replica with jittered backoff ([`RetryPolicy::resilient`]), passive
    /// outlier ejection that counts deadlines too ([`OutlierPolicy::resilient`]), fast detection of a
    /// replica that stopped answering ([`LivenessPolicy::resilient`]) and a retry budget.
    pub fn resilient() -> Self {
        let mut options = PoolOptions {
            retry: RetryPolicy::resilient(),
            outlier: OutlierPolicy::resilient(),
            retry_budget: Some(RetryBudgetPolicy::default()),
            ..Default::default()
        };
        options.connection.liveness = LivenessPolicy::resilient();
        options
    }

    /// The settings every send of the pool runs with.
    pub fn send_policy(&self) -> SendPolicy {
        SendPolicy {
            retry: self.retry,
            outlier: self.outlier,
            tuning: Tuning::new(self.balance, self.in_flight_limit, self.hedge, self.metrics),
            budget: self.retry_budget,
            fail_over_unanswered: self.connection.liveness.fail_over_unanswered,
        }
    }
}
