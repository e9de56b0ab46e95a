//! Caller-driven pools: their connections live on a [`DrivenRuntime`] that the threads calling
//! `jina_net_pool_poll` drive, and their callbacks fire inside that call, on that thread. Such a pool
//! starts no thread; a send made and completed on the polling thread crosses no thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::args::out_optional;
use super::pool::jina_net_pool;
use super::pool::pool_ref;
use super::result::{boundary, jina_net_result, jina_net_result::*, Failure};
use crate::driven_runtime::DrivenRuntime;

/// The runtime of a caller-driven pool and the count of its completed sends.
pub(super) struct DrivenPool {
    pub(super) runtime: Arc<DrivenRuntime>,
    pub(super) sends: Arc<DrivenSends>,
}

impl DrivenPool {
    pub(super) fn new() -> Result<Self, Failure> {
        Ok(DrivenPool {
            runtime: Arc::new(DrivenRuntime::new()?),
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
    pub(super) fn completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// The pool was closed: polls stop waiting.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Ready when a send completed after `start` was read, or the pool is closed.
    async fn completed_since(&self, start: u64) {
        loop {
            let notified = self.notify.notified();
            if self.completed.load(Ordering::Relaxed) != start || self.closed.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
}

/// Polls a caller-driven pool (`caller_driven` in its options): runs its network I/O, timers and
/// the callbacks of its completed sends on the calling thread, until at least one send has
/// completed during this call (its callback ran), `timeout_ms` passed, or the pool is closed (then
/// it returns at once after running what is ready). `timeout_ms` 0 = only what
/// is ready now, without waiting; `UINT64_MAX` = no time limit. `*out_completed` (may be NULL) is the
/// number of sends completed during the call.
///
/// A caller-driven pool makes progress only while some thread polls it: its sends, retries,
/// deadlines and connections wait in between. Several threads may poll one pool; one at a time runs
/// it, the others wait for a completion or their timeout. Not from a callback (of any pool):
/// `JINA_NET_RUNTIME_ERROR`. `JINA_NET_INVALID_ARGUMENT` for a pool that is not caller-driven (its
/// library threads run it). The pool may be freed by a callback that runs inside this call.
///
/// # Safety
/// `pool` must be a live pool; `out_completed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_poll(
    pool: *mut jina_net_pool,
    timeout_ms: u64,
    out_completed: *mut usize,
) -> jina_net_result {
    boundary("jina_net_pool_poll", || {
        // SAFETY: caller passes a live pool.
        let pool = unsafe { pool_ref(pool) }?;
        let Some(driven) = &pool.driven else {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "the pool is not caller-driven (its library threads run it; set caller_driven in its options)",
            ));
        };
        // A callback inside may free the pool: from here on use only these.
        let (runtime, sends) = (driven.runtime.clone(), driven.sends.clone());
        let timeout = (timeout_ms != u64::MAX).then(|| Duration::from_millis(timeout_ms));
        let start = sends.completed.load(Ordering::Relaxed);
        runtime.drive(sends.completed_since(start), timeout)?;
        let completed = sends.completed.load(Ordering::Relaxed).wrapping_sub(start);
        drop(runtime); // the last reference when a callback freed the pool: drained and dropped here
        if let Some(o) = out_optional(out_completed) {
            *o = usize::try_from(completed).unwrap_or(usize::MAX);
        }
        Ok(())
    })
}
