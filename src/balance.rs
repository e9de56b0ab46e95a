//! How a replica is picked among those of a head or shard: jina's round robin (the default), or the
//! power of two choices over PeakEWMA costs (tower-balance's and Linkerd's balancer): two distinct
//! replicas drawn at random (ejected ones skipped as round robin skips them), the one with the lower
//! `latency estimate * (calls in flight + 1)` wins.

use std::cell::Cell;
use std::sync::Arc;

use crate::connection::Connection;
use crate::peak_ewma::PeakEwmaConfig;

/// The picking policy of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Balance {
    /// jina 3.1's round robin, in the order replicas were added (the default).
    #[default]
    RoundRobin,
    /// Power of two choices with PeakEWMA costs.
    PeakEwma(PeakEwmaConfig),
}

impl Balance {
    /// p2c with Linkerd's settings (30 ms default estimate, 10 s decay).
    pub fn p2c() -> Self {
        Balance::PeakEwma(PeakEwmaConfig::default())
    }
}

/// A cheap per-thread xorshift64* generator (seeded from the clock and the thread).
pub(crate) fn random_u64() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0x2545_f491, |d| d.as_nanos() as u64)
                ^ (&STATE as *const _ as u64).rotate_left(32))
                | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A random index below `n` (n > 0).
fn below(n: usize) -> usize {
    (((random_u64() >> 32) * n as u64) >> 32) as usize
}

/// The cost of replica `i` (lower is better); `None` when it cannot be used now (ejected, or full
/// under an in-flight limit of `max`).
fn cost(replica: &Connection, config: &PeakEwmaConfig, max: Option<u32>) -> Option<f64> {
    if replica.health().is_ejected() {
        return None;
    }
    let load = replica.load()?;
    let in_flight = load.in_flight();
    if max.is_some_and(|m| in_flight >= m) {
        return None;
    }
    let ewma = load.ewma()?;
    Some(ewma.cost(in_flight, config))
}

/// The p2c pick among `replicas`; `None` when no drawn replica can be used (the caller then falls
/// back to round robin, which skips ejected replicas and otherwise takes any).
pub(crate) fn p2c(replicas: &[Arc<Connection>], config: &PeakEwmaConfig, max: Option<u32>) -> Option<usize> {
    let n = replicas.len();
    match n {
        0 => None,
        1 => cost(&replicas[0], config, max).map(|_| 0),
        _ => {
            // A few draws, so that an ejected or full replica rarely forces the fallback.
            for _ in 0..3 {
                let a = below(n);
                let mut b = below(n - 1);
                if b >= a {
                    b += 1;
                }
                match (cost(&replicas[a], config, max), cost(&replicas[b], config, max)) {
                    (Some(ca), Some(cb)) => return Some(if cb < ca { b } else { a }),
                    (Some(_), None) => return Some(a),
                    (None, Some(_)) => return Some(b),
                    (None, None) => continue,
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_are_spread_over_the_range() {
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            seen[super::below(5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
    }
}
