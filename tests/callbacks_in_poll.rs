//! Pools with `callbacks_in_poll` through the C ABI, against real servers: the library threads run
//! the pool, its callbacks run inside `jina_net_pool_poll` on the polling thread (every send
//! completed since the last poll, each exactly once), never unpolled; polling from a callback is
//! refused; close wakes a waiting poll and the sends it ends complete in the next poll; free runs
//! the queued callbacks on the freeing thread and sends still pending complete on a library thread.
//!
//! The servers run on a runtime of their own; the test threads stay outside any runtime, as a C
//! program's threads are.

mod common;

use std::ptr;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::c_abi::*;
use common::polled::*;
use common::*;
use jina_net::ffi::args::JINA_NET_NO_SHARD;
use jina_net::ffi::poll::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::*;
use jina_net::ffi::result::jina_net_result::*;

fn polled_pool() -> *mut jina_net_pool {
    let mut options = std::mem::MaybeUninit::<jina_net_pool_options>::uninit();
    unsafe { jina_net_pool_options_init(options.as_mut_ptr(), std::mem::size_of::<jina_net_pool_options>()) };
    let mut options = unsafe { options.assume_init() };
    assert!(!options.callbacks_in_poll, "off by default");
    options.callbacks_in_poll = true;
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(&options, &mut pool) }, JINA_NET_OK);
    pool
}

#[test]
fn callbacks_run_only_in_poll_on_the_polling_thread_each_once_and_together() {
    let rt = server_runtime();
    let server = rt.block_on(start("w", Role::Echo));
    let pool = polled_pool();
    add(pool, &server.address());
    let seen = Seen::default();
    let req = request("polled");
    for _ in 0..20 {
        assert_eq!(unsafe { send(pool, &req, 0, record, seen.user_data()) }, JINA_NET_OK);
    }
    // The library threads run the sends meanwhile; their callbacks wait for a poll.
    wait_answered(&server, 20);
    assert!(
        seen.results.lock().unwrap().is_empty(),
        "no callback runs while nobody polls"
    );
    // The sends completed meanwhile: one poll that does not wait runs every callback.
    let (rc, n) = poll(pool, 0);
    assert_eq!(rc, JINA_NET_OK);
    assert_eq!(n, 20, "one poll runs the callbacks of every send completed before it");
    let results = seen.results.lock().unwrap().clone();
    assert_eq!(results.len(), 20);
    for (status, len, thread) in &results {
        assert_eq!(*status, JINA_NET_OK);
        assert!(*len > req.len(), "the echo answers with the request and one more route");
        assert_eq!(
            *thread,
            std::thread::current().id(),
            "callbacks run on the polling thread"
        );
    }
    // Nothing pending: a zero-timeout poll returns at once with 0, a timed one after its timeout.
    assert_eq!(poll(pool, 0), (JINA_NET_OK, 0));
    let started = Instant::now();
    assert_eq!(poll(pool, 100), (JINA_NET_OK, 0));
    assert!(started.elapsed() >= Duration::from_millis(90));
    // A poll without a time limit waits for the next completion.
    assert_eq!(unsafe { send(pool, &req, 0, record, seen.user_data()) }, JINA_NET_OK);
    let (rc, n) = poll(pool, u64::MAX);
    assert_eq!((rc, n), (JINA_NET_OK, 1));
    unsafe { jina_net_pool_free(pool) };
    assert_eq!(
        seen.results.lock().unwrap().len(),
        21,
        "each send completed exactly once"
    );
}

#[test]
fn sends_made_from_callbacks_complete_once_each_with_64_in_flight() {
    let rt = server_runtime();
    let server = rt.block_on(start("w", Role::Echo));
    let pool = polled_pool();
    add(pool, &server.address());
    const TOTAL: isize = 3000;
    const IN_FLIGHT: isize = 64;
    let chain = Chain {
        pool,
        req: request("polled"),
        left: AtomicIsize::new(TOTAL - IN_FLIGHT),
        ok: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        thread: std::thread::current().id(),
    };
    let user_data = chain.user_data();
    for _ in 0..IN_FLIGHT {
        assert_eq!(unsafe { send(pool, &chain.req, 0, chain_next, user_data) }, JINA_NET_OK);
    }
    let end = Instant::now() + Duration::from_secs(60);
    let (mut polls, mut completed) = (0usize, 0usize);
    while chain.completed() < TOTAL as usize {
        assert!(Instant::now() < end, "the chains did not end within 60 s");
        let (rc, n) = poll(pool, 1000);
        assert_eq!(rc, JINA_NET_OK);
        polls += 1;
        completed += n;
    }
    assert_eq!(chain.failed.load(Ordering::SeqCst), 0);
    assert_eq!(chain.ok.load(Ordering::SeqCst), TOTAL as usize);
    assert_eq!(completed, TOTAL as usize, "the polls counted every completion once");
    assert!(
        polls < completed,
        "polls ran several callbacks each ({polls} polls, {completed} completions)"
    );
    unsafe { jina_net_pool_free(pool) };
}

#[test]
fn close_wakes_a_waiting_poll_and_the_sends_it_ends_complete_in_the_next_poll() {
    let rt = server_runtime();
    let slow = rt.block_on(start("slow", Role::Slow(Duration::from_secs(30))));
    let pool = polled_pool();
    add(pool, &slow.address());
    let seen = Seen::default();
    for _ in 0..3 {
        assert_eq!(
            unsafe { send(pool, &request("polled"), 0, record, seen.user_data()) },
            JINA_NET_OK
        );
    }
    struct SendPtr(*mut jina_net_pool);
    unsafe impl Send for SendPtr {}
    let p = SendPtr(pool);
    let poller = std::thread::spawn(move || {
        let p = p;
        let started = Instant::now();
        let mut n = usize::MAX;
        let rc = unsafe { jina_net_pool_poll(p.0, u64::MAX, &mut n) };
        (rc, n, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(unsafe { jina_net_pool_close(pool) }, JINA_NET_OK);
    let (rc, _, waited) = poller.join().unwrap();
    assert_eq!(rc, JINA_NET_OK);
    assert!(waited >= Duration::from_millis(250), "the poll waited until the close");
    // The close ends the pending sends with POOL_CLOSED; their callbacks run in polls.
    let end = Instant::now() + Duration::from_secs(10);
    while seen.results.lock().unwrap().len() < 3 {
        assert!(Instant::now() < end, "the closed pool's sends did not complete");
        assert_eq!(poll(pool, 100).0, JINA_NET_OK);
    }
    for (status, _, _) in seen.results.lock().unwrap().iter() {
        assert_eq!(*status, JINA_NET_POOL_CLOSED);
    }
    assert_eq!(
        poll(pool, u64::MAX),
        (JINA_NET_OK, 0),
        "a closed pool's poll does not wait"
    );
    unsafe { jina_net_pool_free(pool) };
    assert_eq!(
        seen.results.lock().unwrap().len(),
        3,
        "each send completed exactly once"
    );
}

#[test]
fn free_runs_the_queued_callbacks_on_the_freeing_thread_and_pending_sends_complete_later() {
    let rt = server_runtime();
    let fast = rt.block_on(start("fast", Role::Echo));
    let slow = rt.block_on(start("slow", Role::Slow(Duration::from_secs(30))));
    let pool = polled_pool();
    add(pool, &fast.address());
    let fast_seen = Seen::default();
    for _ in 0..4 {
        assert_eq!(
            unsafe { send(pool, &request("polled"), 0, record, fast_seen.user_data()) },
            JINA_NET_OK
        );
    }
    // The fast sends complete and wait for a poll.
    wait_answered(&fast, 4);
    assert!(fast_seen.results.lock().unwrap().is_empty());
    // A send pending on the slow replica when the pool is freed.
    let slow_seen: &'static Seen = Box::leak(Box::default());
    unsafe {
        jina_net_pool_remove_connection(
            pool,
            cs("dep").as_ptr(),
            cs(&fast.address()).as_ptr(),
            false,
            JINA_NET_NO_SHARD,
            ptr::null_mut(),
        );
    }
    add(pool, &slow.address());
    assert_eq!(
        unsafe { send(pool, &request("polled"), 0, record, slow_seen.user_data()) },
        JINA_NET_OK
    );
    std::thread::sleep(Duration::from_millis(200));
    unsafe { jina_net_pool_free(pool) };
    let results = fast_seen.results.lock().unwrap().clone();
    assert_eq!(results.len(), 4, "the queued callbacks ran inside free");
    for (status, _, thread) in results {
        assert_eq!(status, JINA_NET_OK);
        assert_eq!(thread, std::thread::current().id(), "on the freeing thread");
    }
    // The send still pending completes (POOL_CLOSED) on a library thread, exactly once.
    let end = Instant::now() + Duration::from_secs(10);
    while slow_seen.results.lock().unwrap().is_empty() {
        assert!(Instant::now() < end, "the pending send did not complete after free");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let slow_results = slow_seen.results.lock().unwrap().clone();
    assert_eq!(slow_results.len(), 1);
    assert_eq!(slow_results[0].0, JINA_NET_POOL_CLOSED);
    assert_ne!(slow_results[0].2, std::thread::current().id());
}

#[test]
fn polling_a_pool_whose_callbacks_run_on_library_threads_is_refused() {
    let mut options = std::mem::MaybeUninit::<jina_net_pool_options>::uninit();
    unsafe { jina_net_pool_options_init(options.as_mut_ptr(), std::mem::size_of::<jina_net_pool_options>()) };
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(options.as_ptr(), &mut pool) }, JINA_NET_OK);
    assert_eq!(poll(pool, 0).0, JINA_NET_INVALID_ARGUMENT);
    unsafe { jina_net_pool_free(pool) };
}

#[test]
fn a_callback_may_free_its_pool_and_every_send_still_completes_once() {
    let rt = server_runtime();
    let fast = rt.block_on(start("fast", Role::Echo));
    let pool = polled_pool();
    add(pool, &fast.address());
    let f: &'static FreeFromCallback = Box::leak(Box::new(FreeFromCallback {
        pool: Mutex::new(pool),
        statuses: Mutex::new(Vec::new()),
    }));
    let user_data = f.user_data();
    for _ in 0..5 {
        assert_eq!(
            unsafe { send(pool, &request("polled"), 0, free_on_first, user_data) },
            JINA_NET_OK
        );
    }
    // The sends complete and wait for a poll. The poll's first callback frees the pool; the poll
    // still runs the others it had taken.
    wait_answered(&fast, 5);
    let (rc, n) = poll(pool, 0);
    assert_eq!((rc, n), (JINA_NET_OK, 5));
    let statuses = f.statuses.lock().unwrap().clone();
    assert_eq!(statuses, vec![JINA_NET_OK; 5], "each send completed exactly once");
}
