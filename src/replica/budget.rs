//! The retry budget of one head or shard (gRFC A6 throttling, see
//! [`RetryBudgetPolicy`]): a token count in thousandths, lock-free.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::policy::RetryBudgetPolicy;

/// The tokens of one head or shard.
#[derive(Debug)]
pub struct RetryBudget {
    /// Tokens × 1000 (gRPC keeps three decimals).
    milli: AtomicU32,
    max: u32,
    ratio: u32,
    throttled: AtomicU64,
}

impl RetryBudget {
    /// A full budget.
    pub fn new(policy: &RetryBudgetPolicy) -> Self {
        let max = policy.max_tokens.clamp(1, 1000) * 1000;
        RetryBudget {
            milli: AtomicU32::new(max),
            max,
            ratio: ((policy.token_ratio * 1000.0).round() as u32).max(1),
            throttled: AtomicU64::new(0),
        }
    }

    /// A send ended: a success gives `token_ratio` back, a failure that could have been retried takes 1.
    pub(crate) fn record(&self, success: bool) {
        let _ = self.milli.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
            Some(if success {
                (m + self.ratio).min(self.max)
            } else {
                m.saturating_sub(1000)
            })
        });
    }

    /// Whether a retry, fail-over or hedge may start now (more than half the tokens left); a refusal
    /// is counted.
    pub(crate) fn allows_retry(&self) -> bool {
        let ok = self.milli.load(Ordering::Relaxed) > self.max / 2;
        if !ok {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// The tokens left.
    pub fn tokens(&self) -> f64 {
        f64::from(self.milli.load(Ordering::Relaxed)) / 1000.0
    }

    /// Retries, fail-overs and hedges not started because the budget was low, so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_take_successes_give_back_and_half_stops_retries() {
        let b = RetryBudget::new(&RetryBudgetPolicy::default());
        assert_eq!(b.tokens(), 10.0);
        for _ in 0..4 {
            b.record(false);
        }
        assert!(b.allows_retry(), "6 tokens left");
        b.record(false);
        assert!(!b.allows_retry(), "5 = half: throttled");
        assert_eq!(b.throttled(), 1);
        b.record(true);
        assert!(b.allows_retry(), "5.1 is more than half");
        for _ in 0..100 {
            b.record(true);
        }
        assert_eq!(b.tokens(), 10.0, "capped at the maximum");
        for _ in 0..100 {
            b.record(false);
        }
        assert_eq!(b.tokens(), 0.0, "never below zero");
    }
}
