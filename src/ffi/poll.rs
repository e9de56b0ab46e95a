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
