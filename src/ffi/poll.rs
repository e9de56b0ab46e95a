//! `jina_net_pool_poll`: runs a caller-driven pool (see [`super::driven`]) on the calling thread.

use std::time::Duration;

use super::args::out_optional;
use super::pool::{jina_net_pool, pool_ref};
use super::result::{boundary, jina_net_result, jina_net_result::*, Failure};

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
/// `JINA_NET_RUNTIME_ERROR`. `JINA_NET_INVALID_ARGUMENT` for a pool that is neither caller-driven
/// nor has `callbacks_in_poll` (its library threads run its callbacks). The pool may be freed by a
/// callback that runs inside this call.
///
/// A pool with `callbacks_in_poll` runs on the library threads whether polled or not; the poll waits
/// (as above) until a send has completed, then runs the callbacks of every send completed since the
/// last poll, on the calling thread, in the order they completed. Several threads may poll it at
/// once; each completion's callback runs in exactly one of them.
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
        let timeout = (timeout_ms != u64::MAX).then(|| Duration::from_millis(timeout_ms));
        let Some(driven) = &pool.driven else {
            let Some(queue) = pool.hooks.queue.clone() else {
                return Err(Failure::new(
                    JINA_NET_INVALID_ARGUMENT,
                    "the pool's callbacks run on its library threads (set caller_driven or callbacks_in_poll in its options to poll it)",
                ));
            };
            // A callback inside may free the pool: `queue` is this call's own reference.
            let completed = queue.poll(timeout)?;
            if let Some(o) = out_optional(out_completed) {
                *o = completed;
            }
            return Ok(());
        };
        // A callback inside may free the pool: from here on use only these.
        let (runtime, sends) = (driven.runtime.clone(), driven.sends.clone());
        let start = sends.completed();
        runtime.drive(sends.completed_since(start), timeout)?;
        let completed = sends.completed().wrapping_sub(start);
        drop(runtime); // the last reference when a callback freed the pool: drained and dropped here
        if let Some(o) = out_optional(out_completed) {
            *o = usize::try_from(completed).unwrap_or(usize::MAX);
        }
        Ok(())
    })
}
