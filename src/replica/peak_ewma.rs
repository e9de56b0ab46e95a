//! PeakEWMA: a replica's latency estimate, as tower-balance's `PeakEwma` (and Linkerd's balancer)
//! keep it. A response slower than the estimate raises it at once (the peak); a faster one moves it
//! down as an exponentially weighted moving average whose weight grows with the time since the last
//! update; and the estimate decays towards zero while no response comes (so a replica that was slow
//! is tried again after a while). The cost of a replica is `estimate * (in_flight + 1)`. The estimate
//! keeps its own decay, as tower's does.
//!
//! Lock-free: the estimate and its time stamp are atomics; two responses landing at the same
//! instant may lose one update, which an estimate can afford.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::policy::PeakEwmaConfig;

/// Nanoseconds since a process-wide epoch (never 0).
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// One replica's latency estimate.
#[derive(Debug)]
pub struct PeakEwma {
    /// The estimate in nanoseconds, as `f64` bits.
    rtt_ns: AtomicU64,
    /// When it was last updated ([`now_ns`]).
    stamp_ns: AtomicU64,
    /// The decay time constant in nanoseconds (at least 1).
    decay_ns: f64,
}

impl PeakEwma {
    /// An estimate starting at `config.default_rtt` that decays with `config.decay`.
    pub fn new(config: &PeakEwmaConfig) -> Self {
        PeakEwma {
            rtt_ns: AtomicU64::new((config.default_rtt.as_nanos() as f64).max(1.0).to_bits()),
            stamp_ns: AtomicU64::new(now_ns()),
            decay_ns: (config.decay.as_nanos() as f64).max(1.0),
        }
    }

    /// The estimate now (decayed since its last update), in nanoseconds.
    pub fn estimate_ns(&self) -> f64 {
        let rtt = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let elapsed = now_ns().saturating_sub(self.stamp_ns.load(Ordering::Relaxed)) as f64;
        rtt * self.decay_weight(elapsed)
    }

    /// The cost of sending one more request: `estimate * (in_flight + 1)`.
    pub fn cost(&self, in_flight: u32) -> f64 {
        self.estimate_ns() * (f64::from(in_flight) + 1.0)
    }

    /// A response took `rtt`: a peak is taken as it is, a faster response is averaged in.
    pub fn observe(&self, rtt: Duration) {
        let now = now_ns();
        let rtt = rtt.as_nanos() as f64;
        let elapsed = now.saturating_sub(self.stamp_ns.load(Ordering::Relaxed)) as f64;
        let mut current = self.rtt_ns.load(Ordering::Relaxed);
        loop {
            let old = f64::from_bits(current);
            let next = if old < rtt {
                rtt
            } else {
                let decay = self.decay_weight(elapsed);
                old * decay + rtt * (1.0 - decay)
            };
            // Keep the estimate positive: a zero cost would attract every send.
            let next = next.max(1.0);
            match self
                .rtt_ns
                .compare_exchange_weak(current, next.to_bits(), Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        self.stamp_ns.store(now, Ordering::Relaxed);
    }

    fn decay_weight(&self, elapsed_ns: f64) -> f64 {
        (-elapsed_ns / self.decay_ns).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_taken_at_once_and_fast_answers_averaged_in() {
        let e = PeakEwma::new(&PeakEwmaConfig {
            default_rtt: Duration::from_millis(1),
            decay: Duration::from_millis(50),
        });
        let start = e.estimate_ns();
        assert!(start <= 1e6 && start > 0.9e6, "{start}");
        e.observe(Duration::from_millis(20));
        let peak = e.estimate_ns();
        assert!(
            peak > 19e6 && peak <= 20e6,
            "a slower answer is taken as the peak: {peak}"
        );
        std::thread::sleep(Duration::from_millis(50));
        e.observe(Duration::from_millis(1));
        let after = e.estimate_ns();
        assert!(after < 15e6 && after > 1e6, "a faster answer is averaged in: {after}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            e.estimate_ns() < after / 10.0,
            "the estimate decays while nothing answers"
        );
        assert!(e.cost(3) > 3.9 * e.estimate_ns());
    }
}
