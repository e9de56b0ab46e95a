//! The settings every send of a pool runs with: retries, ejection, and the optional send-path
//! features (p2c, in-flight limits, hedging, metrics).

use super::balance::Balance;
use super::budget::RetryBudgetPolicy;
use super::hedge::HedgePolicy;
use super::limit::InFlightLimit;
use super::outlier::OutlierPolicy;
use super::retry::RetryPolicy;

/// The optional send-path features of a pool, as the send path reads them. A pool with all of them
/// off has none (`SendPolicy::tuning` is `None`), so its sends touch none of their state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tuning {
    /// How a replica is picked.
    pub balance: Balance,
    /// In-flight limits (never with `max_per_replica` 0).
    pub limit: Option<InFlightLimit>,
    /// Hedging (never with `max_hedges` 0).
    pub hedge: Option<HedgePolicy>,
    /// Whether per-replica metrics are kept.
    pub metrics: bool,
}

impl Tuning {
    /// `None` when every feature is off (the default pool).
    pub fn new(
        balance: Balance,
        limit: Option<InFlightLimit>,
        hedge: Option<HedgePolicy>,
        metrics: bool,
    ) -> Option<Self> {
        let tuning = Tuning {
            balance,
            limit: limit.filter(|l| l.max_per_replica > 0),
            hedge: hedge.filter(|h| h.max_hedges > 0),
            metrics,
        };
        (tuning.tracks_load() || tuning.hedge.is_some()).then_some(tuning)
    }

    /// Whether replicas keep a load (calls in flight, latency estimate, metrics).
    pub fn tracks_load(&self) -> bool {
        self.metrics || self.limit.is_some() || self.balance.ewma().is_some()
    }
}

/// What a send runs with besides its own settings: the pool's retry, ejection and tuning settings.
/// Shared by every send of a pool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendPolicy {
    /// Retries and fail-over.
    pub retry: RetryPolicy,
    /// Passive outlier ejection.
    pub outlier: OutlierPolicy,
    /// The optional features; `None` when all are off.
    pub tuning: Option<Tuning>,
    /// Retry throttling per head or shard; `None` = none.
    pub budget: Option<RetryBudgetPolicy>,
    /// Sends not marked idempotent go on to another replica when theirs stopped answering.
    pub fail_over_unanswered: bool,
}

impl SendPolicy {
    /// The hedging policy, when the pool hedges.
    pub fn hedge(&self) -> Option<&HedgePolicy> {
        self.tuning.as_ref().and_then(|t| t.hedge.as_ref())
    }

    /// The in-flight limit, when the pool has one.
    pub fn limit(&self) -> Option<&InFlightLimit> {
        self.tuning.as_ref().and_then(|t| t.limit.as_ref())
    }
}
