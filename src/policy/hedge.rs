//! Hedging, with gRPC's hedging-policy semantics: a send the caller marked idempotent that has no
//! answer after `delay` is sent again to another replica of the same head or shard, up to
//! `max_hedges` more times.

use std::time::Duration;

/// The hedging policy of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HedgePolicy {
    /// How long to wait for an answer before sending the next hedge (0 = all at once).
    pub delay: Duration,
    /// Hedges at most, beyond the first attempt (0 = no hedging; gRPC's `maxAttempts - 1`).
    pub max_hedges: u32,
}
