//! `jina_net_pool_wait_ready`: connect every replica and wait until each answers.

use std::ffi::c_char;
use std::time::Duration;

use super::args;
use super::pool::{jina_net_pool, pool_ref};
use super::result::{boundary, jina_net_result, jina_net_result::*, Failure};
use crate::runtime;

/// Connects every replica of `deployment` (NULL = of every deployment) and returns when each has
/// answered a STATUS control request on its connection, or when `timeout_ms` has passed: what a
/// gateway checks before it declares itself ready. `JINA_NET_OK` when all answered;
/// `JINA_NET_DEADLINE_EXCEEDED` when some did not, the message naming each (deployment, head or
/// shard, address, state); `JINA_NET_UNKNOWN_DEPLOYMENT`, `JINA_NET_POOL_CLOSED`. Blocks the calling
/// thread (a caller-driven pool runs on it meanwhile); not from a callback (`JINA_NET_RUNTIME_ERROR`).
/// `jina_net_pool_routes` shows each replica's state afterwards.
///
/// # Safety
/// `pool` must be a live pool; `deployment` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_wait_ready(
    pool: *mut jina_net_pool,
    deployment: *const c_char,
    timeout_ms: u64,
) -> jina_net_result {
    boundary("jina_net_pool_wait_ready", || {
        // SAFETY: the caller's promises.
        let (pool, deployment) = unsafe { (pool_ref(pool)?, args::optional_string(deployment, "deployment")?) };
        if runtime::in_library_context() {
            return Err(Failure::new(
                JINA_NET_RUNTIME_ERROR,
                "jina_net_pool_wait_ready blocks: not from a callback or while polling",
            ));
        }
        let timeout = Duration::from_millis(timeout_ms);
        let (core, deployment) = (pool.pool.clone(), deployment.map(str::to_owned));
        let wait = async move { core.wait_ready(deployment.as_deref(), timeout).await };
        let outcome = match &pool.driven {
            Some(driven) => driven
                .runtime
                .drive(wait, None)?
                .ok_or_else(|| Failure::new(JINA_NET_RUNTIME_ERROR, "the pool's runtime stopped"))?,
            None => {
                super::runtime::library_handle()?;
                runtime::block_on(wait)?
            }
        };
        outcome.map_err(Failure::from)
    })
}
