//! `jina_net_pool_send` and `jina_net_pool_send_owned`: route a send and start it (its callback fires
//! exactly once); `jina_net_pool_cancel`. The `_ex` forms (`send_ex.rs`) take the same settings in a
//! struct; every form starts its send through [`start`].

use std::ffi::{c_char, c_void};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::args::{self, jina_net_bytes};
use super::completion::{drop_after_panic, jina_net_send_callback, Completion, Handoff, OnComplete, Outcome};
use super::metadata::request_metadata;
use super::pool::{jina_net_pool, pool_ref};
use super::requests::{jina_net_free_fn, owned_requests, requests};
use super::result::{boundary, jina_net_result, jina_net_result::*, Failure};
use super::send_options::{defaults, jina_net_send_options, polling};
use crate::pool::{SendOptions, To};
use crate::request::Request;
use crate::runtime;

/// A send as C asked for it: the pool, the requests already checked, the routing and settings, and
/// how it completes.
pub(super) struct SendCall {
    pub pool: *mut jina_net_pool,
    pub requests: Vec<Request>,
    pub deployment: *const c_char,
    pub options: jina_net_send_options,
    pub callback: jina_net_send_callback,
    pub user_data: *mut c_void,
    pub out_send_id: *mut u64,
}

/// Routes and starts a send; its callback fires exactly once if this returns Ok, never otherwise.
///
/// # Safety
/// `call.pool` is a live pool or NULL; `call.deployment` and `call.options.endpoint` NULL or
/// NUL-terminated; `call.out_send_id` NULL or writable.
pub(super) unsafe fn start(call: SendCall) -> Result<(), Failure> {
    let o = &call.options;
    // SAFETY: the caller's promises as documented.
    let (pool, deployment, endpoint) = unsafe {
        (
            pool_ref(call.pool)?,
            args::string(call.deployment, "deployment")?,
            args::optional_string(o.endpoint, "endpoint")?,
        )
    };
    if call.callback.is_none() {
        return Err(Failure::null("callback"));
    }
    let to = To::jina(o.head, args::shard_id(o.shard_id)?, polling(o.shards)?);
    // SAFETY: the caller's promise: `metadata_len` readable entries.
    let metadata = unsafe { request_metadata(o.metadata, o.metadata_len) }?;
    let options = SendOptions {
        endpoint,
        timeout: args::millis(o.timeout_ms),
        idempotent: o.idempotent,
        metadata: metadata.as_ref(),
    };
    let send = pool.pool.send_requests(&call.requests, deployment, to, &options)?;
    // After a runtime shutdown the task would be dropped at once and the callback would fire on
    // this thread, inside this call: refuse instead. (A caller-driven pool has its own runtime.)
    if pool.driven.is_none() {
        runtime::ensure_not_shut_down()?;
    } else {
        runtime::ensure_not_forked()?;
    }
    let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
    let cancel = (!call.out_send_id.is_null()).then(|| pool.hooks.registry.register(id));
    let registered = cancel.is_some();
    let hook = (registered || pool.driven.is_some()).then(|| pool.hooks.clone() as Arc<dyn OnComplete>);
    let completion = Completion::new(call.callback, call.user_data, id, hook, registered)?
        .handed_over_to(pool.hooks.queue.clone().map(|q| q as Arc<dyn Handoff>));
    // SAFETY: NULL or writable (caller's promise).
    if let Some(o) = unsafe { call.out_send_id.as_mut() } {
        *o = id;
    }
    drop(call.requests); // the payload holds the bytes
    let task = Contained(Some(async move {
        let results = send.run_cancellable(cancel.as_ref()).await;
        completion.complete(Outcome::Targets(results));
    }));
    match &pool.driven {
        // Between two polls the send waits for the next one (no wake-up per send).
        Some(driven) => driven.runtime.spawn(task),
        None => runtime::spawn_send(&pool.handle, task),
    }
    Ok(())
}

/// A send's task behind a panic boundary: a panic inside the send (a library bug) ends that send
/// alone, its callback fired with `JINA_NET_PANIC`, instead of unwinding into the runtime (where, on
/// a caller-driven pool, one task polls every send: `runtime::DrivenRuntime::spawn`).
struct Contained<F>(Option<F>);

impl<F: Future<Output = ()>> Future for Contained<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the task is pinned with `self` (structural pinning): it is never moved out of
        // the `Option`, only dropped in place.
        let slot = unsafe { &mut self.get_unchecked_mut().0 };
        let Some(task) = slot.as_mut() else {
            return Poll::Ready(());
        };
        // SAFETY: as above.
        let task = unsafe { Pin::new_unchecked(task) };
        match catch_unwind(AssertUnwindSafe(|| task.poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                // Dropped in place (pinning allows that, not a move): its completion fires with
                // the panic.
                drop_after_panic(|| *slot = None);
                Poll::Ready(())
            }
        }
    }
}

/// The settings of the plain send functions, as a `jina_net_send_options`.
fn plain_options(
    kind: u32,
    head: bool,
    shard_id: i64,
    shards: u32,
    endpoint: *const c_char,
    timeout_ms: u64,
) -> jina_net_send_options {
    jina_net_send_options {
        kind,
        head,
        shard_id,
        shards,
        endpoint,
        timeout_ms,
        ..defaults()
    }
}

/// Sends requests to a deployment and returns at once; `callback(user_data, result)` fires exactly
/// once when the send completes, on a library runtime thread (a caller-driven pool: on the thread
/// polling it).
///
/// - `kind`: a `jina_net_request_kind`. `requests[0..requests_len]` are serialized messages of that
///   kind, copied before the function returns: one data request goes to `process_single_data`,
///   several to `process_data` (one `DataRequestListProto`), one control request to `process_control`.
/// - Routing: `head` → the deployment's head; else shard `shard_id` (`JINA_NET_NO_SHARD` = the
///   deployment's shards in turn); `shards` (`jina_net_shards`) ALL = one send per shard.
/// - `endpoint` (may be NULL): the `endpoint` metadata of data requests.
/// - `timeout_ms`: deadline of the whole send, retries included; 0 = the pool's default.
/// - `out_send_id` (may be NULL): an id for `jina_net_pool_cancel`.
///
/// On any return other than `JINA_NET_OK` nothing was sent and the callback will not fire.
///
/// # Safety
/// `pool` live; `requests` points to `requests_len` buffers readable for the call; strings
/// NUL-terminated; `user_data` is handed back untouched on another thread.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_send(
    pool: *mut jina_net_pool,
    kind: u32,
    requests: *const jina_net_bytes,
    requests_len: usize,
    deployment: *const c_char,
    head: bool,
    shard_id: i64,
    shards: u32,
    endpoint: *const c_char,
    timeout_ms: u64,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    out_send_id: *mut u64,
) -> jina_net_result {
    boundary("jina_net_pool_send", || {
        // SAFETY: as documented.
        let requests = unsafe { self::requests(kind, requests, requests_len) }?;
        let call = SendCall {
            pool,
            requests,
            deployment,
            options: plain_options(kind, head, shard_id, shards, endpoint, timeout_ms),
            callback,
            user_data,
            out_send_id,
        };
        // SAFETY: as documented.
        unsafe { start(call) }
    })
}

/// `jina_net_pool_send` without the copy of the request bytes: the library takes ownership of the
/// buffers and gives each back exactly once through `free_fn(free_ctx, data, len)` when it no longer
/// needs it — after the send completed (retries included), or before this function returns when it
/// fails. This holds for every return value except these two, where nothing was taken and the buffers
/// stay the caller's: `free_fn` is NULL, or `requests` is NULL while `requests_len` is not 0. Buffers
/// with a NULL `data` are not freed. Everything else is as for `jina_net_pool_send`.
///
/// # Safety
/// As `jina_net_pool_send`; the buffers must stay valid and unchanged until `free_fn` is called for them.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_send_owned(
    pool: *mut jina_net_pool,
    kind: u32,
    requests: *const jina_net_bytes,
    requests_len: usize,
    free_fn: jina_net_free_fn,
    free_ctx: *mut c_void,
    deployment: *const c_char,
    head: bool,
    shard_id: i64,
    shards: u32,
    endpoint: *const c_char,
    timeout_ms: u64,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    out_send_id: *mut u64,
) -> jina_net_result {
    boundary("jina_net_pool_send_owned", || {
        let free = free_fn.ok_or_else(|| Failure::null("free_fn"))?;
        // SAFETY: as documented.
        let requests = unsafe { owned_requests(kind, requests, requests_len, free, free_ctx) }?;
        let call = SendCall {
            pool,
            requests,
            deployment,
            options: plain_options(kind, head, shard_id, shards, endpoint, timeout_ms),
            callback,
            user_data,
            out_send_id,
        };
        // SAFETY: as documented.
        unsafe { start(call) }
    })
}

/// Cancels a pending send: its callback fires (once, as always) with `JINA_NET_CANCELLED` for the
/// targets still waiting. `JINA_NET_NOT_FOUND` when the send already completed or the id is unknown.
///
/// # Safety
/// `pool` must be a live pool.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_cancel(pool: *mut jina_net_pool, send_id: u64) -> jina_net_result {
    boundary("jina_net_pool_cancel", || {
        // SAFETY: caller passes a live pool.
        let pool = unsafe { pool_ref(pool) }?;
        if pool.hooks.registry.cancel(send_id) {
            Ok(())
        } else {
            Err(Failure::new(
                JINA_NET_NOT_FOUND,
                format!("no pending send with id {send_id}"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::completion::jina_net_send_result;
    use std::ffi::CStr;
    use std::sync::Mutex;

    /// What the callback saw: (status, error message).
    type Seen = Mutex<Vec<(jina_net_result, String)>>;

    unsafe extern "C" fn record(user_data: *mut c_void, result: *const jina_net_send_result) {
        // SAFETY: the test passes a `Seen` and the library a live result.
        let (seen, result) = unsafe { (&*(user_data as *const Seen), &*result) };
        // SAFETY: a result's message is NUL-terminated and lives across the call.
        let message = unsafe { CStr::from_ptr(result.error_message) };
        let message = message.to_string_lossy().into_owned();
        seen.lock().unwrap().push((result.status, message));
    }

    #[test]
    fn a_send_that_panics_completes_alone_with_jina_net_panic() {
        let seen = Seen::default();
        let user_data = &seen as *const Seen as *mut c_void;
        let completion = Completion::new(Some(record), user_data, 7, None, false).unwrap();
        let mut task = Box::pin(Contained(Some(async move {
            std::future::ready(()).await;
            let _completion = completion;
            panic!("a bug in a send");
        })));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(task.as_mut().poll(&mut cx).is_ready(), "the panic ends the task");
        assert!(task.as_mut().poll(&mut cx).is_ready(), "and it stays ended");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "the callback fired once: {seen:?}");
        assert_eq!(seen[0].0, JINA_NET_PANIC);
        assert!(
            seen[0].1.contains("panicked while the send was running"),
            "{}",
            seen[0].1
        );
        drop(seen);
        // A completion dropped later on this thread, without a panic, is not blamed on one.
        let seen = Seen::default();
        let user_data = &seen as *const Seen as *mut c_void;
        drop(Completion::new(Some(record), user_data, 8, None, false).unwrap());
        assert_eq!(seen.lock().unwrap()[0].0, JINA_NET_RUNTIME_ERROR);
    }
}
