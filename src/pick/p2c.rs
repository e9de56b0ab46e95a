//! The power of two choices over PeakEWMA costs (tower-balance's and Linkerd's balancer): two
//! distinct replicas drawn at random (ejected ones skipped as round robin skips them), the one with
//! the lower `latency estimate * (calls in flight + 1)` wins.

use std::sync::Arc;

use crate::random::below;
use crate::replica::Replica;

/// The cost of a replica (lower is better); `None` when it cannot be used now (ejected, full under
/// an in-flight limit of `max`, or without a latency estimate).
pub(crate) fn cost(replica: &Replica, max: Option<u32>) -> Option<f64> {
    if replica.health().is_ejected() {
        return None;
    }
    let load = replica.load()?;
    if max.is_some_and(|m| load.in_flight() >= m) {
        return None;
    }
    load.cost()
}

/// The p2c pick among `replicas`; `None` when no drawn replica can be used (the caller then falls
/// back to round robin, which skips ejected replicas and otherwise takes any).
pub(crate) fn p2c(replicas: &[Arc<Replica>], max: Option<u32>) -> Option<usize> {
    let n = replicas.len();
    match n {
        0 => None,
        1 => cost(&replicas[0], max).map(|_| 0),
        _ => {
            // A few draws, so that an ejected or full replica rarely forces the fallback.
            for _ in 0..3 {
                let a = below(n);
                let mut b = below(n - 1);
                if b >= a {
                    b += 1;
                }
                match (cost(&replicas[a], max), cost(&replicas[b], max)) {
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

/// The cheapest replica among `candidates`, when any has a cost.
pub(crate) fn cheapest(replicas: &[Arc<Replica>], candidates: impl Iterator<Item = usize>) -> Option<usize> {
    candidates
        .filter_map(|i| Some((i, cost(&replicas[i], None)?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}
