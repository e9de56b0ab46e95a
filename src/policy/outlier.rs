//! When replicas that keep failing are ejected (skipped while healthy ones exist), and for how long.

use std::time::Duration;

/// When replicas are ejected and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlierPolicy {
    /// Consecutive connection failures (`UNAVAILABLE`) that eject a replica; 0 = never eject.
    pub consecutive_failures: u32,
    /// The first ejection lasts this long; each further consecutive one twice as long...
    pub base_ejection: Duration,
    /// ...up to this (it bounds how long a restarted replica waits to be used again).
    pub max_ejection: Duration,
    /// At most this share of a replica list (percent, rounded down) is ejected at a time.
    pub max_ejection_percent: u8,
    /// Attempts that end `DEADLINE_EXCEEDED` (the send's deadline or the attempt's own timeout)
    /// count as failures too: a replica that stopped answering is ejected like one that refuses.
    pub eject_on_deadline: bool,
}

impl Default for OutlierPolicy {
    /// No ejection, as jina 3.1 ([`OutlierPolicy::disabled`]); see [`OutlierPolicy::resilient`].
    fn default() -> Self {
        OutlierPolicy::disabled()
    }
}

impl OutlierPolicy {
    /// No ejection (jina 3.1 picks replicas round robin whatever happened to them).
    pub fn disabled() -> Self {
        OutlierPolicy {
            consecutive_failures: 0,
            eject_on_deadline: false,
            ..OutlierPolicy::resilient()
        }
    }

    /// Eject after 1 failure (a connection failure, or a deadline exceeded), for 100 ms doubling up
    /// to 800 ms (a restarted replica is used again within that), at most half of a replica list at
    /// a time.
    pub fn resilient() -> Self {
        OutlierPolicy {
            consecutive_failures: 1,
            base_ejection: Duration::from_millis(100),
            max_ejection: Duration::from_millis(800),
            max_ejection_percent: 50,
            eject_on_deadline: true,
        }
    }

    /// Whether replicas are ever ejected.
    pub fn ejects(&self) -> bool {
        self.consecutive_failures > 0
    }

    /// How many replicas of a list of `len` may be ejected at once.
    pub fn max_ejected(&self, len: usize) -> usize {
        len * usize::from(self.max_ejection_percent.min(100)) / 100
    }

    /// How long the `n`-th consecutive ejection (0-based) lasts: `base * 2^n`, at most `max`.
    pub fn ejection_interval(&self, n: u32) -> Duration {
        self.base_ejection
            .saturating_mul(1 << n.min(16))
            .min(self.max_ejection.max(self.base_ejection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_intervals() {
        assert_eq!(OutlierPolicy::resilient().max_ejected(1), 0);
        assert_eq!(OutlierPolicy::resilient().max_ejected(3), 1);
        assert!(!OutlierPolicy::default().ejects(), "off by default, as in jina");
        let p = OutlierPolicy::resilient();
        assert_eq!(p.ejection_interval(0), Duration::from_millis(100));
        assert_eq!(p.ejection_interval(2), Duration::from_millis(400));
        assert_eq!(p.ejection_interval(30), Duration::from_millis(800));
    }
}
