//! The health of a replica: passive outlier ejection (per [`OutlierPolicy`]: a replica that failed
//! recently is skipped while healthy ones exist, for an interval that grows with each ejection, and
//! comes back when a request to it succeeds again), and what liveness probing needs (calls
//! outstanding, when the replica last answered, whether it stopped answering; see
//! [`LivenessPolicy`](crate::policy::LivenessPolicy)). An unresponsive replica is skipped as an ejected
//! one is, until it answers a probe.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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
    /// It stopped answering (a probe went unanswered); cleared when one is answered.
    unresponsive: AtomicBool,
    /// Calls to it now.
    outstanding: AtomicU32,
    /// When it last answered anything ([`now_ms`]; 0 = never).
    heard_ms: AtomicU64,
    /// A liveness monitor runs for it.
    monitoring: AtomicBool,
    /// Its connection failed the last time it was used (refused, reset, TLS), and it has not
    /// answered since.
    failing: AtomicBool,
}

/// Where a replica's connection stands, as the routes listing and `wait_ready` see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Nothing answered on it yet: not connected, or connected and silent.
    Idle,
    /// It answered (a call or a probe), and its connection has not failed since.
    Ready,
    /// Its connection failed (refused, reset, TLS) and it has not answered since.
    Failing,
    /// It stopped answering (a liveness probe went unanswered).
    Unresponsive,
}

impl ReplicaState {
    /// `idle`, `ready`, `failing`, `unresponsive`.
    pub fn name(self) -> &'static str {
        match self {
            ReplicaState::Idle => "idle",
            ReplicaState::Ready => "ready",
            ReplicaState::Failing => "failing",
            ReplicaState::Unresponsive => "unresponsive",
        }
    }
}

impl Health {
    /// Whether the replica is to be avoided now: ejected, or unresponsive.
    pub fn is_ejected(&self) -> bool {
        if self.unresponsive.load(Ordering::Relaxed) {
            return true;
        }
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        until != 0 && now_ms() < until
    }

    /// Whether the replica stopped answering (its last probe went unanswered).
    pub fn is_unresponsive(&self) -> bool {
        self.unresponsive.load(Ordering::Relaxed)
    }

    /// Calls to the replica now.
    pub fn outstanding(&self) -> u32 {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// A call starts.
    pub(crate) fn call_started(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// A call ended; `answered` when the replica said something (a response or a status of its own),
    /// `connection_failed` when its connection failed.
    pub(crate) fn call_ended(&self, answered: bool, connection_failed: bool) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        if answered {
            self.heard();
        } else if connection_failed && !self.failing.load(Ordering::Relaxed) {
            self.failing.store(true, Ordering::Relaxed);
        }
    }

    /// The replica answered something now.
    pub(crate) fn heard(&self) {
        self.heard_ms.store(now_ms(), Ordering::Relaxed);
        if self.failing.load(Ordering::Relaxed) {
            self.failing.store(false, Ordering::Relaxed);
        }
    }

    /// Its connection failed without an answer (a probe on a refused connection).
    pub(crate) fn connection_failed(&self) {
        self.failing.store(true, Ordering::Relaxed);
    }

    /// Where the replica's connection stands.
    pub fn state(&self) -> ReplicaState {
        if self.unresponsive.load(Ordering::Relaxed) {
            ReplicaState::Unresponsive
        } else if self.failing.load(Ordering::Relaxed) {
            ReplicaState::Failing
        } else if self.heard_ms.load(Ordering::Relaxed) != 0 {
            ReplicaState::Ready
        } else {
            ReplicaState::Idle
        }
    }

    /// How long ago the replica last answered (`None` = never).
    pub(crate) fn silent_for(&self) -> Option<std::time::Duration> {
        match self.heard_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(std::time::Duration::from_millis(now_ms().saturating_sub(at))),
        }
    }

    /// Marks the replica unresponsive; true when it was not already.
    pub(crate) fn mark_unresponsive(&self) -> bool {
        !self.unresponsive.swap(true, Ordering::Relaxed)
    }

    /// The replica answered a probe: true when it was unresponsive until now.
    pub(crate) fn mark_responsive(&self) -> bool {
        self.unresponsive.swap(false, Ordering::Relaxed)
    }

    /// Claims the replica's liveness monitor: true when none ran.
    pub(crate) fn claim_monitor(&self) -> bool {
        !self.monitoring.swap(true, Ordering::AcqRel)
    }

    /// The monitor stops (nothing outstanding); true when it must go on after all (a call started
    /// meanwhile and found the monitor still claimed).
    pub(crate) fn release_monitor(&self) -> bool {
        self.monitoring.store(false, Ordering::Release);
        self.outstanding() > 0 && self.claim_monitor()
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
            eject_on_deadline: false,
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
