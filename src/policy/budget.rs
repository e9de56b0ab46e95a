//! Retry throttling after gRFC A6: per head or shard, a token count that failed sends take from and
//! successful ones give back to. While it is at or below half its maximum, no retry, fail-over or
//! hedge is started: when every replica of a shard fails (a brown-out), the load the library adds
//! on top of the sends themselves stays small instead of multiplying by the attempts of every send.
//! Unlike gRPC, which counts attempts, the library counts sends: a replica dying among live ones
//! (its calls fail over and succeed) costs nothing, however many calls it had in flight.

/// The settings of a retry budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetPolicy {
    /// The tokens of a full budget (gRPC's `maxTokens`, 1..=1000).
    pub max_tokens: u32,
    /// What a successful send gives back (gRPC's `tokenRatio`, > 0); a failed one takes 1.
    pub token_ratio: f64,
}

impl Default for RetryBudgetPolicy {
    /// gRPC's example: 10 tokens, 0.1 per success. From a full budget, a shard whose every send fails
    /// stops retrying after 5 failed sends (those in flight then still run their attempts), and
    /// retries again once 10 successes per missing token have refilled it above half.
    fn default() -> Self {
        RetryBudgetPolicy {
            max_tokens: 10,
            token_ratio: 0.1,
        }
    }
}
