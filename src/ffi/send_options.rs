//! `jina_net_send_options`: the routing and settings of one send, and how many shards it goes to.

use std::ffi::c_char;

use super::args::JINA_NET_NO_SHARD;
use super::result::{boundary_void, jina_net_result::*, Failure};
use crate::pool::Polling;

/// How many shards of a deployment a send goes to (`polling` in jina).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_shards {
    /// One target: the head, the given shard, or the deployment's shards in turn.
    JINA_NET_SHARDS_ANY = 0,
    /// One send per shard (head and shard id are ignored).
    JINA_NET_SHARDS_ALL = 1,
}

pub(super) fn polling(value: u32) -> Result<Polling, Failure> {
    match value {
        0 => Ok(Polling::Any),
        1 => Ok(Polling::All),
        other => Err(Failure::new(
            JINA_NET_INVALID_ARGUMENT,
            format!("unknown shards value {other} (0 = JINA_NET_SHARDS_ANY, 1 = JINA_NET_SHARDS_ALL)"),
        )),
    }
}

/// Routing and settings of one send. Initialise with `jina_net_send_options_init`, then change what
/// you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_send_options {
    /// A `jina_net_request_kind` (default `JINA_NET_REQUEST_DATA`).
    pub kind: u32,
    /// Send to the deployment's head (default false).
    pub head: bool,
    /// The shard (default `JINA_NET_NO_SHARD` = the deployment's shards in turn).
    pub shard_id: i64,
    /// A `jina_net_shards` (default `JINA_NET_SHARDS_ANY`).
    pub shards: u32,
    /// The `endpoint` metadata of data requests (default NULL = none). Borrowed for the call.
    pub endpoint: *const c_char,
    /// Deadline of the whole send, retries and hedges included, in ms (default 0 = the pool's).
    pub timeout_ms: u64,
    /// The send may be performed more than once (default false). Only idempotent sends are hedged,
    /// when the pool hedges (`jina_net_pool_options.max_hedges`); the callback still fires once.
    pub idempotent: bool,
}

/// Fills `options` with the defaults (data request, shard rotation, ANY, no endpoint, the pool's
/// timeout, not idempotent). NULL is ignored.
///
/// # Safety
/// `options` must be NULL or point to writable storage for the struct.
#[no_mangle]
pub unsafe extern "C" fn jina_net_send_options_init(options: *mut jina_net_send_options) {
    boundary_void(|| {
        // SAFETY: the caller passes writable storage or NULL.
        if let Some(o) = unsafe { options.as_mut() } {
            *o = defaults();
        }
    })
}

pub(super) fn defaults() -> jina_net_send_options {
    jina_net_send_options {
        kind: 0,
        head: false,
        shard_id: JINA_NET_NO_SHARD,
        shards: 0,
        endpoint: std::ptr::null(),
        timeout_ms: 0,
        idempotent: false,
    }
}
