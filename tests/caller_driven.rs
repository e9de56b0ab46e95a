//! Caller-driven pools through the C ABI (`caller_driven` + `jina_net_pool_poll`), against real
//! servers: callbacks run inside the poll on the polling thread, nothing runs unpolled, chains sent
//! from callbacks, deadlines, free with pending sends and free from a callback; no library thread.
//!
//! The servers run on a runtime of their own; the test threads stay outside any runtime, as a C
//! program's threads are. No test here uses a pool run by library threads, so none may exist.

mod common;

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::c_abi::*;
use common::polled::*;
use common::*;
use jina_net::ffi::args::jina_net_bytes;
use jina_net::ffi::poll::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::*;
use jina_net::ffi::result::jina_net_result::*;
use jina_net::ffi::send::*;

fn driven_pool() -> *mut jina_net_pool {
    let mut options = std::mem::MaybeUninit::<jina_net_pool_options>::uninit();
    unsafe { jina_net_pool_options_init(options.as_mut_ptr(), std::mem::size_of::<jina_net_pool_options>()) };
    let mut options = unsafe { options.assume_init() };
    options.caller_driven = true;
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(&options, &mut pool) }, JINA_NET_OK);
    pool
}

/// Polls until `done()` or 20 s.
fn poll_until(pool: *mut jina_net_pool, done: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            Instant::now() < end,
            "the sends did not complete within 20 s of polling"
        );
        assert_eq!(poll(pool, 100).0, JINA_NET_OK);
    }
}

fn library_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "jina-net")
        .count()
}

#[test]
fn callbacks_run_inside_poll_on_the_polling_thread_and_only_when_polled() {
    let rt = server_runtime();
    let server = rt.block_on(start("w", Role::Echo));
    let pool = driven_pool();
    add(pool, &server.address());
    let seen = Seen::default();
    let req = request("driven");
    for _ in 0..20 {
        assert_eq!(unsafe { send(pool, &req, 0, record, seen.user_data()) }, JINA_NET_OK);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        seen.results.lock().unwrap().is_empty(),
        "a caller-driven pool must not complete anything while nobody polls it"
    );
    let mut polled = 0;
    poll_until(pool, || seen.results.lock().unwrap().len() == 20);
    let results = seen.results.lock().unwrap().clone();
    for (status, len, thread) in &results {
        assert_eq!(*status, JINA_NET_OK);
        assert!(*len > req.len(), "the echo answers with the request and one more route");
        assert_eq!(
            *thread,
            std::thread::current().id(),
            "callbacks run on the polling thread"
        );
    }
    // Nothing pending: a zero-timeout poll returns at once with 0 completions.
    let (rc, n) = poll(pool, 0);
    assert_eq!((rc, n), (JINA_NET_OK, 0));
    polled += n;
    assert_eq!(polled, 0);
    unsafe { jina_net_pool_free(pool) };
    assert_eq!(results.len(), 20, "each send completed exactly once");
    assert_eq!(library_threads(), 0, "a caller-driven pool starts no library thread");
}

#[test]
fn freeing_a_pool_whose_sends_are_done_does_not_wait_for_its_background_tasks() {
    // The liveness monitor a send starts sleeps until its first probe (2 s by default): freeing the
    // pool must stop it, not drive the runtime until the drain limit (500 ms) runs out.
    let rt = server_runtime();
    let server = rt.block_on(start("w", Role::Echo));
    let pool = driven_pool();
    add(pool, &server.address());
    let seen = Seen::default();
    let req = request("driven");
    assert_eq!(unsafe { send(pool, &req, 0, record, seen.user_data()) }, JINA_NET_OK);
    poll_until(pool, || seen.results.lock().unwrap().len() == 1);
    let started = std::time::Instant::now();
    unsafe { jina_net_pool_free(pool) };
    let took = started.elapsed();
    assert!(took < Duration::from_millis(250), "jina_net_pool_free took {took:?}");
}

#[test]
fn sends_made_from_callbacks_complete_once_each() {
    let rt = server_runtime();
    let server = rt.block_on(start("w", Role::Echo));
    let pool = driven_pool();
    add(pool, &server.address());
    const CHAINS: usize = 8;
    const TOTAL: usize = 2000;
    let chain = Chain {
        pool,
        req: request("driven"),
        left: AtomicIsize::new(TOTAL as isize),
        ok: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        thread: std::thread::current().id(),
    };
    chain.left.fetch_sub(CHAINS as isize, Ordering::SeqCst); // each chain's first send is made here
    for _ in 0..CHAINS {
        let rc = unsafe { send(pool, &chain.req, 0, chain_next, &chain as *const Chain as *mut c_void) };
        assert_eq!(rc, JINA_NET_OK);
    }
    let completed = || chain.ok.load(Ordering::SeqCst) + chain.failed.load(Ordering::SeqCst);
    poll_until(pool, || completed() == TOTAL);
    // Every send was answered; no callback fired twice (the count would overshoot).
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(poll(pool, 0), (JINA_NET_OK, 0));
    assert_eq!(chain.failed.load(Ordering::SeqCst), 0);
    assert_eq!(chain.ok.load(Ordering::SeqCst), TOTAL);
    unsafe { jina_net_pool_free(pool) };
    assert_eq!(library_threads(), 0);
}

#[test]
fn deadlines_run_while_polled_and_poll_times_out() {
    let rt = server_runtime();
    let slow = rt.block_on(start("slow", Role::Slow(Duration::from_secs(5))));
    let pool = driven_pool();
    add(pool, &slow.address());
    let seen = Seen::default();
    let started = Instant::now();
    assert_eq!(
        unsafe { send(pool, &request("driven"), 50, record, seen.user_data()) },
        JINA_NET_OK
    );
    // A poll with a timeout and nothing completing returns after it, with 0.
    let (rc, n) = poll(pool, 10);
    assert_eq!((rc, n), (JINA_NET_OK, 0));
    poll_until(pool, || !seen.results.lock().unwrap().is_empty());
    let results = seen.results.lock().unwrap().clone();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, JINA_NET_DEADLINE_EXCEEDED);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the deadline, not the server, ended the send"
    );
    unsafe { jina_net_pool_free(pool) };
}

#[test]
fn free_completes_pending_sends_on_the_freeing_thread() {
    let rt = server_runtime();
    let slow = rt.block_on(start("slow", Role::Slow(Duration::from_secs(30))));
    let pool = driven_pool();
    add(pool, &slow.address());
    let seen = Seen::default();
    for _ in 0..5 {
        assert_eq!(
            unsafe { send(pool, &request("driven"), 0, record, seen.user_data()) },
            JINA_NET_OK
        );
    }
    // Let the requests reach the server.
    assert_eq!(poll(pool, 50), (JINA_NET_OK, 0));
    unsafe { jina_net_pool_free(pool) };
    let results = seen.results.lock().unwrap().clone();
    assert_eq!(results.len(), 5, "every pending send completed inside free");
    for (status, _, thread) in results {
        assert_eq!(status, JINA_NET_POOL_CLOSED);
        assert_eq!(thread, std::thread::current().id());
    }
}

#[test]
fn free_completes_sends_that_were_never_polled() {
    // Sends made and never polled wait for a drive; free is that drive. They complete with
    // POOL_CLOSED, not as dropped (a close once marked the runner that had not started yet as
    // started: they were never polled, and were dropped after the drain's 500 ms).
    let rt = server_runtime();
    let fast = rt.block_on(start("fast", Role::Echo));
    let pool = driven_pool();
    add(pool, &fast.address());
    let seen = Seen::default();
    for _ in 0..5 {
        assert_eq!(
            unsafe { send(pool, &request("never polled"), 0, record, seen.user_data()) },
            JINA_NET_OK
        );
    }
    unsafe { jina_net_pool_free(pool) };
    let results = seen.results.lock().unwrap().clone();
    assert_eq!(results.len(), 5, "every send completed inside free");
    for (status, _, thread) in results {
        // A send dropped at the drain's limit would say JINA_NET_RUNTIME_ERROR.
        assert_eq!(status, JINA_NET_POOL_CLOSED);
        assert_eq!(thread, std::thread::current().id());
    }
}

#[test]
fn a_callback_may_free_its_pool() {
    let rt = server_runtime();
    let fast = rt.block_on(start("fast", Role::Echo));
    let slow = rt.block_on(start("slow", Role::Slow(Duration::from_secs(30))));
    let pool = driven_pool();
    add(pool, &fast.address());
    let f = FreeFromCallback {
        pool: Mutex::new(pool),
        statuses: Mutex::default(),
    };
    let ud = &f as *const FreeFromCallback as *mut c_void;
    // Shard 1 is slow: its sends stay pending when the fast one's callback frees the pool.
    let rc = unsafe {
        jina_net_pool_add_connection(
            pool,
            cs("dep").as_ptr(),
            cs(&slow.address()).as_ptr(),
            false,
            1,
            ptr::null_mut(),
        )
    };
    assert_eq!(rc, JINA_NET_OK);
    let req = request("driven");
    let b = jina_net_bytes {
        data: req.as_ptr(),
        len: req.len(),
    };
    for shard in [1, 1, 0] {
        let rc = unsafe {
            jina_net_pool_send(
                pool,
                0,
                &b,
                1,
                cs("dep").as_ptr(),
                false,
                shard,
                0,
                ptr::null(),
                0,
                Some(free_on_first),
                ud,
                ptr::null_mut(),
            )
        };
        assert_eq!(rc, JINA_NET_OK);
    }
    // One poll runs the fast callback, which frees the pool; the poll drains the rest before it returns.
    let mut n = 0usize;
    let rc = unsafe { jina_net_pool_poll(pool, 10_000, &mut n) };
    assert_eq!(rc, JINA_NET_OK);
    let statuses = f.statuses.lock().unwrap().clone();
    assert_eq!(statuses, vec![JINA_NET_OK, JINA_NET_POOL_CLOSED, JINA_NET_POOL_CLOSED]);
}

#[test]
fn close_wakes_a_poll_that_waits_without_a_time_limit() {
    let pool = driven_pool();
    struct SendPtr(*mut jina_net_pool);
    unsafe impl Send for SendPtr {}
    let p = SendPtr(pool);
    let poller = std::thread::spawn(move || {
        let p = p;
        let started = Instant::now();
        let mut rounds = 0;
        // Polls without a time limit until the pool is closed (a poll then returns at once).
        loop {
            let mut n = 0usize;
            let rc = unsafe { jina_net_pool_poll(p.0, u64::MAX, &mut n) };
            assert_eq!(rc, JINA_NET_OK);
            rounds += 1;
            if unsafe {
                jina_net_pool_add_connection(
                    p.0,
                    cs("d").as_ptr(),
                    cs("127.0.0.1:1").as_ptr(),
                    false,
                    -1,
                    ptr::null_mut(),
                )
            } == JINA_NET_POOL_CLOSED
            {
                return (rounds, started.elapsed());
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(unsafe { jina_net_pool_close(pool) }, JINA_NET_OK);
    let (rounds, waited) = poller.join().unwrap();
    assert_eq!(rounds, 1, "the poll waited until the close, then returned");
    assert!(waited >= Duration::from_millis(150));
    assert_eq!(
        poll(pool, u64::MAX),
        (JINA_NET_OK, 0),
        "a closed pool's poll does not wait"
    );
    unsafe { jina_net_pool_free(pool) };
}
