//! `jina_net_pool_send_ex` and `jina_net_pool_send_owned_ex`: `jina_net_pool_send` and
//! `jina_net_pool_send_owned` with their routing and per-send settings in a struct, which also
//! carries what their fixed signatures cannot (`idempotent`).

use std::ffi::{c_char, c_void};

use super::args::jina_net_bytes;
use super::completion::jina_net_send_callback;
use super::pool::jina_net_pool;
use super::requests::{jina_net_free_fn, owned_requests, requests};
use super::result::{boundary, jina_net_result, Failure};
use super::send::{start, SendCall};
use super::send_options::{jina_net_send_options, send_options};

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
        let o = unsafe { send_options(options) }?;
        // SAFETY: as documented.
        let requests = unsafe { requests(o.kind, requests_ptr, requests_len) }?;
        let call = SendCall {
            pool,
            requests,
            deployment,
            options: o,
            callback,
            user_data,
            out_send_id,
        };
        // SAFETY: as documented.
        unsafe { start(call) }
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
        let o = unsafe { send_options(options) };
        // The buffers are taken before anything else can fail, so that every failure frees them.
        let kind = o.as_ref().map_or(0, |o| o.kind);
        // SAFETY: as documented.
        let requests = unsafe { owned_requests(kind, requests_ptr, requests_len, free, free_ctx) };
        let o = o?; // refused options: `requests` is dropped, its buffers freed
        let requests = requests?;
        let call = SendCall {
            pool,
            requests,
            deployment,
            options: o,
            callback,
            user_data,
            out_send_id,
        };
        // SAFETY: as documented.
        unsafe { start(call) }
    })
}
