//! Passive health of replicas (outlier ejection): a replica that failed recently is skipped while
//! healthy ones exist, for an interval that grows with each ejection, and comes back when a request
//! to it succeeds again.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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
            ..OutlierPolicy::resilient()
        }
    }

    /// Eject after 1 connection failure, for 100 ms doubling up to 800 ms (a restarted replica is
    /// used again within that), at most half of a replica list at a time.
    pub fn resilient() -> Self {
        OutlierPolicy {
            consecutive_failures: 1,
            base_ejection: Duration::from_millis(100),
            max_ejection: Duration::from_millis(800),
            max_ejection_percent: 50,
        }
    }

    /// How many replicas of a list of `len` may be ejected at once.
    pub fn max_ejected(&self, len: usize) -> usize {
        len * usize::from(self.max_ejection_percent.min(100)) / 100
    }
}

fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // +1 so that 0 can mean "not ejected".
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// The health of one replica. All updates are lock-free.
#[derive(Debug, Default)]
pub struct Health {
    consecutive_failures: AtomicU32,
    ejections: AtomicU32,
    ejected_until_ms: AtomicU64,
}

impl Health {
    /// Whether the replica is ejected now.
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        until != 0 && now_ms() < until
    }

    /// A request succeeded: the replica is healthy again.
    pub fn success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 || self.ejected_until_ms.load(Ordering::Relaxed) != 0
        {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            self.ejections.store(0, Ordering::Relaxed);
            self.ejected_until_ms.store(0, Ordering::Relaxed);
        }
    }

    /// A connection failure. `may_eject` says whether the list's share of ejected replicas allows one
    /// more. Returns whether the replica is now ejected.
    pub fn failure(&self, policy: &OutlierPolicy, may_eject: bool) -> bool {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if policy.consecutive_failures == 0 || failures < policy.consecutive_failures || !may_eject {
            return false;
        }
        if self.is_ejected() {
            return true;
        }
        let n = self.ejections.fetch_add(1, Ordering::Relaxed).min(16);
        let interval = policy
            .base_ejection
            .saturating_mul(1 << n)
            .min(policy.max_ejection.max(policy.base_ejection));
        self.ejected_until_ms
            .store(now_ms() + interval.as_millis() as u64, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejection_grows_is_capped_and_clears_on_success() {
        let p = OutlierPolicy {
            consecutive_failures: 2,
            base_ejection: Duration::from_millis(30),
            max_ejection: Duration::from_millis(60),
            max_ejection_percent: 50,
        };
        let h = Health::default();
        assert!(!h.failure(&p, true), "one failure is not enough");
        assert!(h.failure(&p, true));
        assert!(h.is_ejected());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!h.is_ejected(), "the first ejection lasts 30 ms");
        assert!(h.failure(&p, true));
        std::thread::sleep(Duration::from_millis(40));
        assert!(h.is_ejected(), "the second lasts 60 ms");
        std::thread::sleep(Duration::from_millis(30));
        assert!(!h.is_ejected());
        h.success();
        assert!(!h.failure(&p, true), "success reset the count");
        assert!(!Health::default().failure(&p, false) && !Health::default().failure(&OutlierPolicy::disabled(), true));
        assert_eq!(OutlierPolicy::resilient().max_ejected(1), 0);
        assert_eq!(OutlierPolicy::resilient().max_ejected(3), 1);
        assert_eq!(
            OutlierPolicy::default().consecutive_failures,
            0,
            "off by default, as in jina"
        );
    }
}
