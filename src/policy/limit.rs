//! Per-replica in-flight limits: at most `max_per_replica` calls to a replica at once, with a
//! bounded queue of sends waiting for a slot per head or shard.

/// The limit of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightLimit {
    /// Calls in flight per replica at most (0 = no limit).
    pub max_per_replica: u32,
    /// Sends waiting for a slot per head or shard at most; one more fails at once with
    /// `RESOURCE_EXHAUSTED` (0 = no waiting: fail as soon as every replica is full).
    pub max_queued: u32,
}
