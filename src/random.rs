//! Cheap per-thread random numbers for jitter and p2c draws (xorshift64*, seeded per thread from the
//! clock and std's per-thread hash keys). Not for anything that must be unpredictable.

use std::cell::Cell;
use std::hash::BuildHasher;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x2545_f491, |d| d.as_nanos() as u64);
    // `RandomState` keys differ per thread and per process: two threads started in the same
    // nanosecond still draw different sequences.
    std::collections::hash_map::RandomState::new().hash_one(clock) | 1
}

/// A random `u64`.
pub(crate) fn random_u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A random index below `n` (`n > 0`).
pub(crate) fn below(n: usize) -> usize {
    (((random_u64() >> 32) * n as u64) >> 32) as usize
}

/// A random number in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
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
        let units: Vec<f64> = (0..1000).map(|_| super::unit()).collect();
        assert!(units.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(units.iter().any(|u| *u < 0.1) && units.iter().any(|u| *u > 0.9));
    }
}
