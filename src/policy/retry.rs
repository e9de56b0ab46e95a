//! The retry policy, in one place: which failures are retried, how often, where (the same replica or
//! the next one of the shard: fail-over) and how long to wait between attempts (gRFC A6 shape:
//! exponential backoff with full jitter).

use std::time::Duration;

/// When, where and how often a failed call is tried again. Only `UNAVAILABLE` (which includes a
/// connection that could not be made or was lost) is retried, as in jina 3.1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1). With `fail_over`, every replica of the
    /// shard is tried at least once before giving up, even when that takes more attempts.
    pub max_attempts: u32,
    /// Retry on the next replica of the same shard (skipping ejected ones) instead of the same one.
    pub fail_over: bool,
    /// Backoff cap before the first retry that goes back to a replica already tried.
    pub initial_backoff: Duration,
    /// Factor applied to the cap after each further attempt.
    pub backoff_multiplier: f64,
    /// Upper bound of the cap.
    pub max_backoff: Duration,
    /// Time one attempt may take before the send gives up on it and, where it may, tries another
    /// replica (gRPC's per-attempt timeout); `None` = only the send's deadline bounds an attempt.
    pub per_attempt_timeout: Option<Duration>,
}

impl Default for RetryPolicy {
    /// jina 3.1.0's observable behaviour ([`RetryPolicy::jina`]); see [`RetryPolicy::resilient`].
    fn default() -> Self {
        RetryPolicy::jina()
    }
}

impl RetryPolicy {
    /// Fail-over: on `UNAVAILABLE` the next replica of the shard is tried (every replica before
    /// giving up, at least 3 attempts), and a replica tried again waits a jittered backoff of 10 ms
    /// doubling up to 1 s. One dead replica among live ones then costs no failed request.
    pub fn resilient() -> Self {
        RetryPolicy {
            max_attempts: 3,
            fail_over: true,
            initial_backoff: Duration::from_millis(10),
            backoff_multiplier: 2.0,
            max_backoff: Duration::from_secs(1),
            per_attempt_timeout: None,
        }
    }

    /// jina 3.1.0 exactly: 3 attempts on `UNAVAILABLE` on the same replica, back to back.
    pub fn jina() -> Self {
        RetryPolicy {
            max_attempts: 3,
            fail_over: false,
            initial_backoff: Duration::ZERO,
            backoff_multiplier: 1.0,
            max_backoff: Duration::ZERO,
            per_attempt_timeout: None,
        }
    }

    /// No retry at all (jina's `send_request_async`).
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::jina()
        }
    }

    /// The attempts a send over `replicas` replicas may make.
    pub fn attempt_budget(&self, replicas: usize) -> u32 {
        let n = u32::try_from(replicas).unwrap_or(u32::MAX);
        let budget = if self.fail_over {
            self.max_attempts.max(n)
        } else {
            self.max_attempts
        };
        budget.max(1)
    }

    /// Whether a call that failed with `code` on attempt `attempt` (1-based) is tried again.
    pub fn should_retry(&self, code: tonic::Code, attempt: u32, budget: u32) -> bool {
        code == tonic::Code::Unavailable && attempt < budget
    }

    /// The backoff cap before attempt `attempt + 1`: `min(initial * multiplier^(attempt-1), max)`.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        if self.initial_backoff.is_zero() {
            return Duration::ZERO;
        }
        let factor = self
            .backoff_multiplier
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(64) as i32);
        let cap = self.max_backoff.max(self.initial_backoff);
        Duration::try_from_secs_f64(self.initial_backoff.as_secs_f64() * factor).map_or(cap, |d| d.min(cap))
    }

    /// The wait before attempt `attempt + 1`: uniformly random in `[0, backoff_cap(attempt)]`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt);
        if cap.is_zero() {
            return cap;
        }
        cap.mul_f64(crate::random::unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn jina_policy_retries_unavailable_three_times_in_place() {
        let p = RetryPolicy::jina();
        let budget = p.attempt_budget(5);
        assert_eq!(budget, 3, "no fail-over: the budget ignores the replicas");
        assert!(p.should_retry(Code::Unavailable, 1, budget));
        assert!(p.should_retry(Code::Unavailable, 2, budget));
        assert!(!p.should_retry(Code::Unavailable, 3, budget));
        assert!(!p.should_retry(Code::Unknown, 1, budget));
        assert!(!p.should_retry(Code::DeadlineExceeded, 1, budget));
        assert_eq!(p.backoff(1), Duration::ZERO);
        assert!(!RetryPolicy::none().should_retry(Code::Unavailable, 1, RetryPolicy::none().attempt_budget(1)));
    }

    #[test]
    fn fail_over_tries_every_replica() {
        assert_eq!(RetryPolicy::default(), RetryPolicy::jina());
        let p = RetryPolicy::resilient();
        assert_eq!(p.attempt_budget(1), 3);
        assert_eq!(p.attempt_budget(7), 7);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            backoff_multiplier: 2.0,
            max_backoff: Duration::from_millis(25),
            ..RetryPolicy::resilient()
        };
        assert_eq!(p.backoff_cap(1), Duration::from_millis(10));
        assert_eq!(p.backoff_cap(2), Duration::from_millis(20));
        assert_eq!(p.backoff_cap(3), Duration::from_millis(25));
        assert_eq!(p.backoff_cap(200), Duration::from_millis(25));
        let waits: Vec<Duration> = (0..100).map(|_| p.backoff(3)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(25)));
        assert!(waits.iter().any(|w| *w != waits[0]), "jittered");
    }
}
