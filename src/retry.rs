//! The retry policy, in one place: which failures are retried, how often, and how long to wait between
//! attempts. The default is jina 3.1's: up to 3 attempts, on `UNAVAILABLE` only, without waiting.

use std::time::Duration;

/// When and how often a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_backoff: Duration,
    /// Factor applied to the wait after each further attempt.
    pub backoff_multiplier: f64,
    /// Upper bound of the wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::jina()
    }
}

impl RetryPolicy {
    /// jina 3.1.0: 3 attempts on `UNAVAILABLE`, back to back.
    pub fn jina() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::ZERO,
            backoff_multiplier: 1.0,
            max_backoff: Duration::ZERO,
        }
    }

    /// No retry at all (jina's `send_request_async`).
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::jina()
        }
    }

    /// Whether a call that failed with `code` on attempt `attempt` (1-based) is tried again.
    pub fn should_retry(&self, code: tonic::Code, attempt: u32) -> bool {
        code == tonic::Code::Unavailable && attempt < self.max_attempts.max(1)
    }

    /// How long to wait before attempt `attempt + 1`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        if self.initial_backoff.is_zero() {
            return Duration::ZERO;
        }
        let factor = self.backoff_multiplier.max(1.0).powi(attempt.saturating_sub(1) as i32);
        self.initial_backoff
            .mul_f64(factor)
            .min(self.max_backoff.max(self.initial_backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jina_default_retries_unavailable_three_times() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(tonic::Code::Unavailable, 1));
        assert!(p.should_retry(tonic::Code::Unavailable, 2));
        assert!(!p.should_retry(tonic::Code::Unavailable, 3));
        assert!(!p.should_retry(tonic::Code::Unknown, 1));
        assert!(!p.should_retry(tonic::Code::DeadlineExceeded, 1));
        assert_eq!(p.backoff(1), Duration::ZERO);
        assert!(!RetryPolicy::none().should_retry(tonic::Code::Unavailable, 1));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(10),
            backoff_multiplier: 2.0,
            max_backoff: Duration::from_millis(25),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(10));
        assert_eq!(p.backoff(2), Duration::from_millis(20));
        assert_eq!(p.backoff(3), Duration::from_millis(25));
    }
}
