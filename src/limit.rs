//! Per-replica in-flight limits: at most `max_per_replica` calls to a replica at once. A call whose
//! replica is full goes to another replica of the same head or shard with a free slot (skipping
//! ejected replicas while healthy ones exist); when every replica is full the send waits in the
//! shard's queue for a slot, up to its deadline. The queue is bounded: a send that finds it full
//! fails at once with [`Error::ResourceExhausted`](crate::Error::ResourceExhausted), naming the
//! deployment and the shard.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::connection::Connection;
use crate::load::CallGuard;

/// The limit of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightLimit {
    /// Calls in flight per replica at most (0 = no limit).
    pub max_per_replica: u32,
    /// Sends waiting for a slot per head or shard at most; one more fails at once with
    /// `RESOURCE_EXHAUSTED` (0 = no waiting: fail as soon as every replica is full).
    pub max_queued: u32,
}

/// The queue of sends waiting for a slot on one replica list (one per head or shard).
#[derive(Debug, Default)]
pub struct Queue {
    waiting: AtomicUsize,
    notify: Notify,
    rejected: AtomicU64,
}

impl Queue {
    /// Sends waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Sends refused because the queue was full, so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    pub(crate) fn slot_freed(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }
}

/// Why no slot was had.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// Every replica is full and so is the queue (`max_queued` sends wait).
    QueueFull,
    /// The deadline passed while waiting.
    DeadlineExceeded,
}

/// A slot on `replicas[preferred]` or, when it is full, on another replica of the list (in order
/// after it; ejected ones only when every replica is ejected); else waits in `queue`.
pub(crate) async fn acquire<'a>(
    replicas: &'a [Arc<Connection>],
    preferred: usize,
    limit: &InFlightLimit,
    queue: &'a Queue,
    deadline: Option<Instant>,
) -> Result<(usize, Option<CallGuard<'a>>), NoSlot> {
    // Sends already waiting go first: a new send takes a free slot at once only when none waits.
    let others_waiting = queue.waiting() > 0;
    if !others_waiting {
        if let Some(slot) = try_any(replicas, preferred, limit.max_per_replica, queue) {
            return Ok(slot);
        }
    }
    if queue.waiting.fetch_add(1, Ordering::SeqCst) >= limit.max_queued as usize {
        queue.waiting.fetch_sub(1, Ordering::SeqCst);
        // With others waiting, a free slot may still be there for the taking when the queue is full.
        if others_waiting {
            if let Some(slot) = try_any(replicas, preferred, limit.max_per_replica, queue) {
                return Ok(slot);
            }
        }
        queue.rejected.fetch_add(1, Ordering::Relaxed);
        return Err(NoSlot::QueueFull);
    }
    struct Waiting<'q>(&'q Queue);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _waiting = Waiting(queue);
    // A send that queued behind others waits for a wake-up (or the re-check) before it tries.
    let mut wait_first = others_waiting;
    loop {
        let notified = queue.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !wait_first {
            if let Some(slot) = try_any(replicas, preferred, limit.max_per_replica, queue) {
                return Ok(slot);
            }
        }
        wait_first = false;
        // Re-check now and then as well, so no lost wake-up can strand a send.
        let mut wake = Instant::now() + RECHECK;
        if let Some(d) = deadline {
            if d <= Instant::now() {
                return Err(NoSlot::DeadlineExceeded);
            }
            wake = wake.min(d);
        }
        let _ = tokio::time::timeout_at(wake, notified).await;
    }
}

const RECHECK: Duration = Duration::from_millis(20);

fn try_any<'a>(
    replicas: &'a [Arc<Connection>],
    preferred: usize,
    max: u32,
    queue: &'a Queue,
) -> Option<(usize, Option<CallGuard<'a>>)> {
    if let Some(g) = replicas[preferred].load()?.try_start(max, Some(queue)) {
        return Some((preferred, Some(g)));
    }
    let n = replicas.len();
    let all_ejected = replicas.iter().all(|r| r.health().is_ejected());
    (1..n)
        .map(|k| (preferred + k) % n)
        .filter(|&i| all_ejected || !replicas[i].health().is_ejected())
        .find_map(|i| {
            let load = replicas[i].load()?;
            load.try_start(max, Some(queue)).map(|g| (i, Some(g)))
        })
}
