//! PeakEWMA: a replica's latency estimate, as tower-balance's `PeakEwma` (and Linkerd's balancer)
//! keep it. A response slower than the estimate raises it at once (the peak); a faster one moves it
//! down as an exponentially weighted moving average whose weight grows with the time since the last
//! update; and the estimate decays towards zero while no response comes (so a replica that was slow
//! is tried again after a while). The cost of a replica is `estimate * (in_flight + 1)`.
//!
//! Lock-free: the estimate and its time stamp are atomics; two responses landing at the same
//! instant may lose one update, which an estimate can afford.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The settings of the estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakEwmaConfig {
    /// The estimate of a replica that has not answered yet (Linkerd: 30 ms). Must not be zero: a
    /// zero cost would draw every send to a new replica until its first answer.
    pub default_rtt: Duration,
    /// The decay time constant: a past response weighs `exp(-elapsed / decay)` (Linkerd: 10 s).
    pub decay: Duration,
}

impl Default for PeakEwmaConfig {
    /// Linkerd's defaults: 30 ms and 10 s.
    fn default() -> Self {
        PeakEwmaConfig {
            default_rtt: Duration::from_millis(30),
            decay: Duration::from_secs(10),
        }
    }
}

/// Nanoseconds since a process-wide epoch (never 0).
pub(crate) fn now_ns() -> u64 {
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
}

impl PeakEwma {
    /// An estimate starting at `config.default_rtt`.
    pub fn new(config: &PeakEwmaConfig) -> Self {
        PeakEwma {
            rtt_ns: AtomicU64::new((config.default_rtt.as_nanos() as f64).max(1.0).to_bits()),
            stamp_ns: AtomicU64::new(now_ns()),
        }
    }

    /// The estimate now (decayed since its last update), in nanoseconds.
    pub fn estimate_ns(&self, config: &PeakEwmaConfig) -> f64 {
        self.estimate_at(now_ns(), config)
    }

    fn estimate_at(&self, now: u64, config: &PeakEwmaConfig) -> f64 {
        let rtt = f64::from_bits(self.rtt_ns.load(Ordering::Relaxed));
        let elapsed = now.saturating_sub(self.stamp_ns.load(Ordering::Relaxed)) as f64;
        rtt * decay_weight(elapsed, config)
    }

    /// The cost of sending one more request: `estimate * (in_flight + 1)`.
    pub fn cost(&self, in_flight: u32, config: &PeakEwmaConfig) -> f64 {
        self.estimate_ns(config) * (f64::from(in_flight) + 1.0)
    }

    /// A response took `rtt`: a peak is taken as it is, a faster response is averaged in.
    pub fn observe(&self, rtt: Duration, config: &PeakEwmaConfig) {
        let now = now_ns();
        let rtt = rtt.as_nanos() as f64;
        let elapsed = now.saturating_sub(self.stamp_ns.load(Ordering::Relaxed)) as f64;
        let mut current = self.rtt_ns.load(Ordering::Relaxed);
        loop {
            let old = f64::from_bits(current);
            let next = if old < rtt {
                rtt
            } else {
                let decay = decay_weight(elapsed, config);
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
}

fn decay_weight(elapsed_ns: f64, config: &PeakEwmaConfig) -> f64 {
    let decay_ns = (config.decay.as_nanos() as f64).max(1.0);
    (-elapsed_ns / decay_ns).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_taken_at_once_and_fast_answers_averaged_in() {
        let config = PeakEwmaConfig {
            default_rtt: Duration::from_millis(1),
            decay: Duration::from_millis(50),
        };
        let e = PeakEwma::new(&config);
        let start = e.estimate_ns(&config);
        assert!(start <= 1e6 && start > 0.9e6, "{start}");
        e.observe(Duration::from_millis(20), &config);
        let peak = e.estimate_ns(&config);
        assert!(
            peak > 19e6 && peak <= 20e6,
            "a slower answer is taken as the peak: {peak}"
        );
        std::thread::sleep(Duration::from_millis(50));
        e.observe(Duration::from_millis(1), &config);
        let after = e.estimate_ns(&config);
        assert!(after < 15e6 && after > 1e6, "a faster answer is averaged in: {after}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            e.estimate_ns(&config) < after / 10.0,
            "the estimate decays while nothing answers"
        );
        assert!(e.cost(3, &config) > 3.9 * e.estimate_ns(&config));
    }
}
