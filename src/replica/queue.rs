//! The queue of sends waiting for an in-flight slot on one replica list (one per head or shard, used
//! only with in-flight limits): how many wait, how many were refused, and the wake-up of a waiting
//! send when a call ends.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Sends waiting for an in-flight slot on one head or shard.
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

    /// A call on one of the list's replicas ended: a waiting send may take its slot.
    pub(crate) fn slot_freed(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    /// Joins the queue unless `max` sends wait already; the send stays in it until the returned
    /// place is dropped.
    pub(crate) fn join(&self, max: u32) -> Option<Place<'_>> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= max as usize {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Place(self))
    }

    /// Counts a send refused because the queue was full.
    pub(crate) fn reject(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// A wake-up for the next freed slot.
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

/// A send's place in a [`Queue`]: it leaves the queue when dropped.
#[derive(Debug)]
pub(crate) struct Place<'q>(&'q Queue);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}
