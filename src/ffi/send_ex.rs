//! `jina_net_pool_send_ex` and `jina_net_pool_send_owned_ex`: `jina_net_pool_send` and
//! `jina_net_pool_send_owned` with their routing and per-send settings in a struct, which also
//! carries what their fixed signatures cannot (`idempotent`).

use std::ffi::{c_char, c_void};

use super::args::{jina_net_bytes, JINA_NET_NO_SHARD};
use super::completion::jina_net_send_callback;
use super::pool::jina_net_pool;
use super::requests::{jina_net_free_fn, owned_requests, requests};
use super::result::{boundary, boundary_void, jina_net_result, Failure};
use super::send::start_send;
use crate::request::Request;

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
    /// A `jina_net_polling` (default `JINA_NET_POLLING_ANY`).
    pub polling: u32,
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

fn defaults() -> jina_net_send_options {
    jina_net_send_options {
        kind: 0,
        head: false,
        shard_id: JINA_NET_NO_SHARD,
        polling: 0,
        endpoint: std::ptr::null(),
        timeout_ms: 0,
        idempotent: false,
    }
}

/// `jina_net_pool_send` with its settings in `options` (NULL = the defaults of
/// `jina_net_send_options_init`). Requests are copied before it returns; `callback` fires exactly
/// once when it returned `JINA_NET_OK`, never otherwise; `out_send_id` (may be NULL) is the id for
/// `jina_net_pool_cancel`.
///
/// # Safety
/// As `jina_net_pool_send`; `options` NULL or a valid struct whose `endpoint` is NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_send_ex(
    pool: *mut jina_net_pool,
    requests_ptr: *const jina_net_bytes,
    requests_len: usize,
    deployment: *const c_char,
    options: *const jina_net_send_options,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    out_send_id: *mut u64,
) -> jina_net_result {
    boundary("jina_net_pool_send_ex", || {
        // SAFETY: NULL or a valid struct (caller's promise).
        let o = unsafe { options.as_ref() }.copied().unwrap_or_else(defaults);
        // SAFETY: as documented.
        let requests = unsafe { requests(o.kind, requests_ptr, requests_len) }?;
        // SAFETY: as documented.
        unsafe { start_with_options(pool, requests, deployment, &o, callback, user_data, out_send_id) }
    })
}

/// `jina_net_pool_send_owned` with its settings in `options` (NULL = the defaults of
/// `jina_net_send_options_init`): the library takes the buffers and gives each back exactly once
/// through `free_fn(free_ctx, data, len)`, under the rules of `jina_net_pool_send_owned` (also before
/// this function returns when it fails, except when `free_fn` is NULL or `requests` is NULL while
/// `requests_len` is not 0). A hedged send (`idempotent`, on a pool that hedges) shares the buffers
/// among its attempts, without a copy, and they are freed once, after the last attempt let go of them.
/// `callback` fires exactly once when it returned `JINA_NET_OK`, never otherwise.
///
/// # Safety
/// As `jina_net_pool_send_owned`; `options` as for `jina_net_pool_send_ex`.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_send_owned_ex(
    pool: *mut jina_net_pool,
    requests_ptr: *const jina_net_bytes,
    requests_len: usize,
    free_fn: jina_net_free_fn,
    free_ctx: *mut c_void,
    deployment: *const c_char,
    options: *const jina_net_send_options,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    out_send_id: *mut u64,
) -> jina_net_result {
    boundary("jina_net_pool_send_owned_ex", || {
        let free = free_fn.ok_or_else(|| Failure::null("free_fn"))?;
        // SAFETY: NULL or a valid struct (caller's promise).
        let o = unsafe { options.as_ref() }.copied().unwrap_or_else(defaults);
        // SAFETY: as documented.
        let requests = unsafe { owned_requests(o.kind, requests_ptr, requests_len, free, free_ctx) }?;
        // SAFETY: as documented.
        unsafe { start_with_options(pool, requests, deployment, &o, callback, user_data, out_send_id) }
    })
}

/// `start_send` with the routing and settings of `o`.
///
/// # Safety
/// As `start_send`.
unsafe fn start_with_options(
    pool: *mut jina_net_pool,
    requests: Vec<Request>,
    deployment: *const c_char,
    o: &jina_net_send_options,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    out_send_id: *mut u64,
) -> Result<(), Failure> {
    // SAFETY: the caller's promises, passed on.
    unsafe {
        start_send(
            pool,
            requests,
            deployment,
            o.head,
            o.shard_id,
            o.polling,
            o.endpoint,
            o.timeout_ms,
            callback,
            user_data,
            out_send_id,
            o.idempotent,
        )
    }
}
