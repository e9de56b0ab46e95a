//! In-flight slot acquisition (with a pool's [`InFlightLimit`]): a call whose replica is full goes to
//! another replica of the same head or shard with a free slot (skipping ejected replicas while
//! healthy ones exist); when every replica is full the send waits in the list's queue for a slot, up
//! to its deadline. The queue is bounded: a send that finds it full fails at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::order;
use crate::policy::InFlightLimit;
use crate::replica::{CallGuard, Queue, Replica};

/// Why no slot was had.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// Every replica is full and so is the queue (`max_queued` sends wait).
    QueueFull,
    /// The deadline passed while waiting.
    DeadlineExceeded,
}

/// A slot on `replicas[preferred]` or, when it is full, on another replica of the list (in order
/// after it; ejected ones only when every replica is ejected); else waits in `queue`. Returns the
/// index of the replica and its slot.
pub(crate) async fn acquire<'a>(
    replicas: &'a [Arc<Replica>],
    preferred: usize,
    limit: &InFlightLimit,
    queue: &'a Queue,
    deadline: Option<Instant>,
) -> Result<(usize, CallGuard<'a>), NoSlot> {
    // Sends already waiting go first: a new send takes a free slot at once only when none waits.
    let others_waiting = queue.waiting() > 0;
    if !others_waiting {
        if let Some(slot) = try_any(replicas, preferred, limit.max_per_replica, queue) {
            return Ok(slot);
        }
    }
    let Some(_place) = queue.join(limit.max_queued) else {
        // With others waiting, a free slot may still be there for the taking when the queue is full.
        if others_waiting {
            if let Some(slot) = try_any(replicas, preferred, limit.max_per_replica, queue) {
                return Ok(slot);
            }
        }
        queue.reject();
        return Err(NoSlot::QueueFull);
    };
    // A send that queued behind others waits for a wake-up (or the re-check) before it tries.
    let mut wait_first = others_waiting;
    loop {
        let notified = queue.notified();
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

/// A free slot on the preferred replica, else on the first live one after it.
fn try_any<'a>(
    replicas: &'a [Arc<Replica>],
    preferred: usize,
    max: u32,
    queue: &'a Queue,
) -> Option<(usize, CallGuard<'a>)> {
    std::iter::once(preferred)
        .chain(order::live(replicas, order::after(preferred, replicas.len())))
        .find_map(|i| Some((i, replicas[i].load()?.try_start(max, queue)?)))
}
