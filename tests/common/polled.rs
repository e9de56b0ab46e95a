//! Pools whose callbacks run in `jina_net_pool_poll` (caller-driven pools, and pools with
//! `callbacks_in_poll`), from Rust tests: one deployment `dep`, sends that record their results, and
//! chains of sends made from callbacks.
#![allow(dead_code)]

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;

use jina_net::ffi::args::{jina_net_bytes, JINA_NET_NO_SHARD};
use jina_net::ffi::completion::{jina_net_send_result, jina_net_send_result_target};
use jina_net::ffi::poll::jina_net_pool_poll;
use jina_net::ffi::pool::{jina_net_pool, jina_net_pool_add_connection, jina_net_pool_free};
use jina_net::ffi::result::jina_net_result::{self, JINA_NET_OK, JINA_NET_RUNTIME_ERROR};
use jina_net::ffi::send::jina_net_pool_send;
use prost::Message;

use super::c_abi::cs;

/// A runtime for the test servers: the test threads stay outside any runtime, as a C program's are.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Adds `addr` to deployment `dep`, shard 0.
pub fn add(pool: *mut jina_net_pool, addr: &str) {
    let rc = unsafe {
        jina_net_pool_add_connection(
            pool,
            cs("dep").as_ptr(),
            cs(addr).as_ptr(),
            false,
            JINA_NET_NO_SHARD,
            ptr::null_mut(),
        )
    };
    assert_eq!(rc, JINA_NET_OK);
}

/// A small data request.
pub fn request(id: &str) -> Vec<u8> {
    super::data_request(id, 16).encode_to_vec()
}

/// Sends `req` to `dep` (ANY) with `timeout_ms` (0 = none).
///
/// # Safety
/// `pool` is live; `user_data` is what `callback` expects.
pub unsafe fn send(
    pool: *mut jina_net_pool,
    req: &[u8],
    timeout_ms: u64,
    callback: unsafe extern "C" fn(*mut c_void, *const jina_net_send_result),
    user_data: *mut c_void,
) -> jina_net_result {
    let b = jina_net_bytes {
        data: req.as_ptr(),
        len: req.len(),
    };
    unsafe {
        jina_net_pool_send(
            pool,
            0,
            &b,
            1,
            cs("dep").as_ptr(),
            false,
            JINA_NET_NO_SHARD,
            0,
            ptr::null(),
            timeout_ms,
            Some(callback),
            user_data,
            ptr::null_mut(),
        )
    }
}

/// One `jina_net_pool_poll`: its result and the count of completions it ran.
pub fn poll(pool: *mut jina_net_pool, timeout_ms: u64) -> (jina_net_result, usize) {
    let mut n = usize::MAX;
    let rc = unsafe { jina_net_pool_poll(pool, timeout_ms, &mut n) };
    (rc, n)
}

/// Records each callback: its status, the length of its one target's response, its thread.
#[derive(Default)]
pub struct Seen {
    pub results: Mutex<Vec<(jina_net_result, usize, ThreadId)>>,
}

impl Seen {
    pub fn user_data(&self) -> *mut c_void {
        self as *const Seen as *mut c_void
    }
}

/// # Safety
/// `user_data` points to a live [`Seen`].
pub unsafe extern "C" fn record(user_data: *mut c_void, result: *const jina_net_send_result) {
    let seen = unsafe { &*(user_data as *const Seen) };
    let r = unsafe { &*result };
    let len = if r.targets_len == 1 {
        unsafe { (*jina_net_send_result_target(r, 0)).response_len }
    } else {
        0
    };
    seen.results
        .lock()
        .unwrap()
        .push((r.status, len, std::thread::current().id()));
}

/// Chains: each callback sends the next request while sends are left (`left` counts those not yet
/// made); every callback must run on `thread` and may not poll.
pub struct Chain {
    pub pool: *mut jina_net_pool,
    pub req: Vec<u8>,
    pub left: AtomicIsize,
    pub ok: AtomicUsize,
    pub failed: AtomicUsize,
    pub thread: ThreadId,
}

impl Chain {
    pub fn user_data(&self) -> *mut c_void {
        self as *const Chain as *mut c_void
    }

    pub fn completed(&self) -> usize {
        self.ok.load(Ordering::SeqCst) + self.failed.load(Ordering::SeqCst)
    }
}

/// # Safety
/// `user_data` points to a live [`Chain`].
pub unsafe extern "C" fn chain_next(user_data: *mut c_void, result: *const jina_net_send_result) {
    let chain = unsafe { &*(user_data as *const Chain) };
    assert_eq!(
        std::thread::current().id(),
        chain.thread,
        "callbacks run on the polling thread"
    );
    if unsafe { (*result).status } == JINA_NET_OK {
        chain.ok.fetch_add(1, Ordering::SeqCst);
    } else {
        chain.failed.fetch_add(1, Ordering::SeqCst);
    }
    // Polling from a callback is refused, not a deadlock.
    assert_eq!(
        unsafe { jina_net_pool_poll(chain.pool, 0, ptr::null_mut()) },
        JINA_NET_RUNTIME_ERROR
    );
    if chain.left.fetch_sub(1, Ordering::SeqCst) > 0 {
        let rc = unsafe { send(chain.pool, &chain.req, 0, chain_next, user_data) };
        assert_eq!(rc, JINA_NET_OK);
    }
}

/// Frees the pool from the first callback; counts every callback.
pub struct FreeFromCallback {
    pub pool: Mutex<*mut jina_net_pool>,
    pub statuses: Mutex<Vec<jina_net_result>>,
}

impl FreeFromCallback {
    pub fn user_data(&self) -> *mut c_void {
        self as *const FreeFromCallback as *mut c_void
    }
}

/// # Safety
/// `user_data` points to a live [`FreeFromCallback`].
pub unsafe extern "C" fn free_on_first(user_data: *mut c_void, result: *const jina_net_send_result) {
    let f = unsafe { &*(user_data as *const FreeFromCallback) };
    f.statuses.lock().unwrap().push(unsafe { (*result).status });
    let pool = std::mem::replace(&mut *f.pool.lock().unwrap(), ptr::null_mut());
    unsafe { jina_net_pool_free(pool) }; // NULL after the first time
}

/// Waits (at most 20 s) until `server` has answered `n` data calls, then 300 ms more for the answers
/// to reach the pool: what a test needs before it expects completions queued for a poll.
pub fn wait_answered(server: &super::TestServer, n: usize) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.record.completed.load(Ordering::SeqCst) < n {
        assert!(
            std::time::Instant::now() < end,
            "the server answered fewer than {n} calls in 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
}
