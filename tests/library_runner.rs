//! Sends on library threads when the library runtime has one worker: one task (the runner) polls
//! them all, with the tasks their connections spawn (`runtime/runner.rs`). Through the C ABI, against
//! real servers: sends complete on the library thread, sends made from callbacks and from several
//! threads at once complete, and at a runtime shutdown every send that was accepted, also one that
//! raced with the shutdown, completes exactly once. The runtime is process-wide and a shutdown is
//! final, so this file holds one test.

mod common;

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::c_abi::*;
use common::polled::*;
use common::*;
use jina_net::ffi::completion::jina_net_send_result;
use jina_net::ffi::pool::*;
use jina_net::ffi::result::jina_net_result::*;
use jina_net::ffi::runtime::{jina_net_runtime_init, jina_net_runtime_shutdown};

/// Waits (at most 60 s) until `seen` holds `n` results.
fn wait_for(seen: &Seen, n: usize) -> Vec<(jina_net::ffi::result::jina_net_result, usize, std::thread::ThreadId)> {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let results = seen.results.lock().unwrap().clone();
        if results.len() >= n {
            return results;
        }
        assert!(Instant::now() < end, "{} of {n} callbacks fired", results.len());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each callback makes one more send while `left` (the sends still to make from callbacks) is
/// above zero: `START` sends started from a thread make `START + left` callbacks in all.
struct Resend {
    pool: *mut jina_net_pool,
    req: Vec<u8>,
    left: AtomicIsize,
    seen: Seen,
}

const START: usize = 8;
const RESENDS: usize = 42;

unsafe extern "C" fn resend(user_data: *mut c_void, result: *const jina_net_send_result) {
    let r = unsafe { &*(user_data as *const Resend) };
    unsafe { record(r.seen.user_data(), result) };
    if r.left.fetch_sub(1, Ordering::SeqCst) > 0 {
        assert_eq!(unsafe { send(r.pool, &r.req, 10_000, resend, user_data) }, JINA_NET_OK);
    }
}

/// Counts callbacks by status (as a number).
#[derive(Default)]
struct Counts(std::sync::Mutex<HashMap<u32, usize>>);

unsafe extern "C" fn count(user_data: *mut c_void, result: *const jina_net_send_result) {
    let counts = unsafe { &*(user_data as *const Counts) };
    *counts
        .0
        .lock()
        .unwrap()
        .entry(unsafe { (*result).status } as u32)
        .or_default() += 1;
}

#[test]
fn one_worker_runner_completes_every_send_once_also_across_a_shutdown() {
    assert_eq!(jina_net_runtime_init(1), JINA_NET_OK);
    let rt = server_runtime();
    let fast = rt.block_on(start("fast", Role::Echo));
    let slow = rt.block_on(start("slow", Role::Slow(Duration::from_secs(30))));
    let pool = try_new_pool(&pool_options()).unwrap();
    add(pool, &fast.address());

    // From one thread, 64 at once: on the library thread, all answered.
    let seen = Seen::default();
    let req = request("lib");
    for _ in 0..64 {
        assert_eq!(
            unsafe { send(pool, &req, 10_000, record, seen.user_data()) },
            JINA_NET_OK
        );
    }
    let results = wait_for(&seen, 64);
    let me = std::thread::current().id();
    for (status, len, thread) in &results {
        assert_eq!(*status, JINA_NET_OK);
        assert!(*len > req.len(), "the echo answers with the request and one more route");
        assert_ne!(*thread, me, "callbacks run on the library thread");
    }
    let library_thread = results[0].2;
    assert!(
        results.iter().all(|r| r.2 == library_thread),
        "one worker runs them all"
    );

    // Sends made from callbacks (on the library thread, inside the runner's poll), started by 4
    // threads at once, 8 each.
    let chains: Vec<Box<Resend>> = (0..4)
        .map(|_| {
            Box::new(Resend {
                pool,
                req: request("chain"),
                left: AtomicIsize::new(RESENDS as isize),
                seen: Seen::default(),
            })
        })
        .collect();
    struct SendPtr(*const Resend);
    unsafe impl Send for SendPtr {}
    let threads: Vec<_> = chains
        .iter()
        .map(|c| {
            let c = SendPtr(&**c as *const Resend);
            std::thread::spawn(move || {
                let c = c;
                let r = unsafe { &*c.0 };
                for _ in 0..START {
                    let ud = c.0 as *mut c_void;
                    assert_eq!(unsafe { send(r.pool, &r.req, 10_000, resend, ud) }, JINA_NET_OK);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for c in &chains {
        let done = wait_for(&c.seen, START + RESENDS);
        assert!(done.iter().all(|r| r.0 == JINA_NET_OK), "{done:?}");
    }
    std::thread::sleep(Duration::from_millis(50));
    for c in &chains {
        assert_eq!(c.seen.results.lock().unwrap().len(), START + RESENDS, "once each");
    }

    // Pending sends at a shutdown, and sends racing it: each accepted send completes once.
    let slow_pool = try_new_pool(&pool_options()).unwrap();
    add(slow_pool, &slow.address());
    let pending = Seen::default();
    for _ in 0..5 {
        assert_eq!(
            unsafe { send(slow_pool, &req, 0, record, pending.user_data()) },
            JINA_NET_OK
        );
    }
    wait_answered_none(&pending);
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    struct PoolPtr(*mut jina_net_pool);
    unsafe impl Send for PoolPtr {}
    let racer = {
        let (stop, counts, p) = (stop.clone(), counts.clone(), PoolPtr(pool));
        std::thread::spawn(move || {
            let p = p;
            let req = request("race");
            let mut accepted = 0usize;
            let ud = Arc::as_ptr(&counts) as *mut c_void;
            while !stop.load(Ordering::SeqCst) {
                match unsafe { send(p.0, &req, 10_000, count, ud) } {
                    JINA_NET_OK => accepted += 1,
                    JINA_NET_RUNTIME_ERROR => break,
                    other => panic!("send racing a shutdown: {other:?}"),
                }
            }
            accepted
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(jina_net_runtime_shutdown(5000), JINA_NET_OK);
    stop.store(true, Ordering::SeqCst);
    let accepted = racer.join().unwrap();
    assert!(accepted > 0, "some sends were made before the shutdown");

    // The pending sends were dropped by the shutdown: RUNTIME_ERROR, once each.
    let dropped = wait_for(&pending, 5);
    assert!(dropped.iter().all(|r| r.0 == JINA_NET_RUNTIME_ERROR), "{dropped:?}");
    // Every accepted racing send called back (answered, or dropped by the shutdown).
    let end = Instant::now() + Duration::from_secs(60);
    let total = || counts.0.lock().unwrap().values().sum::<usize>();
    while total() < accepted {
        assert!(
            Instant::now() < end,
            "{} of {accepted} racing sends called back",
            total()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(total(), accepted, "no callback twice");
    assert_eq!(pending.results.lock().unwrap().len(), 5, "no callback twice");
    let statuses = counts.0.lock().unwrap().clone();
    assert!(
        statuses
            .keys()
            .all(|s| *s == JINA_NET_OK as u32 || *s == JINA_NET_RUNTIME_ERROR as u32),
        "{statuses:?}"
    );

    // After it, sends are refused and never call back.
    let late = Seen::default();
    assert_eq!(
        unsafe { send(pool, &req, 0, record, late.user_data()) },
        JINA_NET_RUNTIME_ERROR
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(late.results.lock().unwrap().is_empty());
    unsafe {
        jina_net_pool_free(slow_pool);
        jina_net_pool_free(pool);
    }
}

/// The slow server has not answered: nothing completed yet.
fn wait_answered_none(pending: &Seen) {
    std::thread::sleep(Duration::from_millis(100));
    assert!(pending.results.lock().unwrap().is_empty());
}
