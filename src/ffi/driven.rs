//! Caller-driven pools: their connections live on a [`DrivenRuntime`] that the threads calling
//! `jina_net_pool_poll` drive, and their callbacks fire inside that call, on that thread. Such a pool
//! starts no thread; a send made and completed on the polling thread crosses no thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::result::Failure;
use crate::runtime::DrivenRuntime;

/// The runtime of a caller-driven pool and the count of its completed sends.
pub(super) struct DrivenPool {
    pub(super) runtime: Arc<DrivenRuntime>,
    pub(super) sends: Arc<DrivenSends>,
}

impl DrivenPool {
    pub(super) fn new() -> Result<Self, Failure> {
        super::runtime::watch_for_fork();
        Ok(DrivenPool {
            runtime: Arc::new(DrivenRuntime::with_poll_guard(Some(super::runtime::contain_panic))?),
            sends: Arc::default(),
        })
    }
}

/// Completions of a caller-driven pool's sends, counted so that a poll knows when one happened.
#[derive(Default)]
pub(super) struct DrivenSends {
    completed: AtomicU64,
    closed: AtomicBool,
    notify: Notify,
}

impl DrivenSends {
    /// A send completed (its callback is about to run, on the polling thread).
    pub(super) fn count_completion(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// The pool was closed: polls stop waiting.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Sends completed so far.
    pub(super) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Ready when a send completed after `start` was read, or the pool is closed.
    pub(super) async fn completed_since(&self, start: u64) {
        loop {
            let notified = self.notify.notified();
            if self.completed.load(Ordering::Relaxed) != start || self.closed.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
}
