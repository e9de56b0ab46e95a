//! Passive health of a replica (outlier ejection, per [`OutlierPolicy`]): a replica that failed
//! recently is skipped while healthy ones exist, for an interval that grows with each ejection, and
//! comes back when a request to it succeeds again.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use crate::policy::OutlierPolicy;

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
        let interval = policy.ejection_interval(self.ejections.fetch_add(1, Ordering::Relaxed));
        self.ejected_until_ms
            .store(now_ms() + interval.as_millis() as u64, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    }
}
