//! The new pool options through the C ABI, against real servers: in-flight limits and hedging under
//! many concurrent sends (every callback exactly once), `jina_net_pool_send_ex`, metrics text.

mod common;

use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::c_abi::*;
use common::*;
use jina_net::ffi::args::jina_net_bytes;
use jina_net::ffi::completion::{jina_net_send_result, jina_net_send_result_target};
use jina_net::ffi::metrics::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::*;
use jina_net::ffi::requests::jina_net_free_fn;
use jina_net::ffi::result::jina_net_result::{self, *};
use jina_net::ffi::result::*;
use jina_net::ffi::send_ex::*;
use jina_net::ffi::send_options::*;
use jina_net::ffi::string::*;
use prost::Message;

fn pool_with(options: &jina_net_pool_options) -> *mut jina_net_pool {
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(options, &mut pool) }, JINA_NET_OK);
    pool
}

fn add(pool: *mut jina_net_pool, addr: &str) {
    let r =
        unsafe { jina_net_pool_add_connection(pool, cs("d").as_ptr(), cs(addr).as_ptr(), false, 0, ptr::null_mut()) };
    assert_eq!(r, JINA_NET_OK);
}

fn req(id: &str) -> Vec<u8> {
    data_request(id, 0).encode_to_vec()
}

fn metrics_text(pool: *mut jina_net_pool) -> Result<String, jina_net_result> {
    let mut text = ptr::null_mut();
    let r = unsafe { jina_net_pool_metrics_text(pool, &mut text) };
    if r != JINA_NET_OK {
        assert!(text.is_null(), "out-parameter untouched on failure");
        return Err(r);
    }
    let s = common::c_abi::s(text);
    unsafe { jina_net_string_free(text) };
    Ok(s)
}

/// What the callbacks of the stress test saw: callbacks per send (index = user_data) and statuses.
struct Seen {
    calls: Vec<AtomicU32>,
    total: AtomicUsize,
    statuses: Mutex<HashMap<u32, usize>>,
    messages: Mutex<Vec<String>>,
}

static SEEN: OnceLock<Seen> = OnceLock::new();

unsafe extern "C" fn count(user_data: *mut c_void, result: *const jina_net_send_result) {
    let seen = SEEN.get().unwrap();
    let r = unsafe { &*result };
    seen.calls[user_data as usize].fetch_add(1, Ordering::SeqCst);
    *seen.statuses.lock().unwrap().entry(r.status as u32).or_default() += 1;
    if r.status == JINA_NET_RESOURCE_EXHAUSTED {
        let mut m = seen.messages.lock().unwrap();
        if m.len() < 4 {
            m.push(s(r.error_message));
        }
    }
    seen.total.fetch_add(1, Ordering::SeqCst);
}

const THREADS: usize = 4;
const PER_THREAD: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_hedging_under_load_complete_every_send_exactly_once() {
    let servers = [
        start("s1", Role::Slow(Duration::from_millis(4))).await,
        start("s2", Role::Slow(Duration::from_millis(4))).await,
        start("e", Role::Echo).await,
    ];
    let n = THREADS * PER_THREAD;
    SEEN.get_or_init(|| Seen {
        calls: (0..n).map(|_| AtomicU32::new(0)).collect(),
        total: AtomicUsize::new(0),
        statuses: Mutex::default(),
        messages: Mutex::default(),
    });
    let mut o = unsafe { std::mem::zeroed::<jina_net_pool_options>() };
    unsafe { jina_net_pool_options_init(&mut o, std::mem::size_of::<jina_net_pool_options>()) };
    o.balance = jina_net_balance::JINA_NET_BALANCE_P2C_PEAK_EWMA as u32;
    o.max_in_flight_per_replica = 2;
    o.max_queued_sends = 64;
    o.hedge_delay_ms = 2;
    o.max_hedges = 1;
    o.metrics = true;
    let pool = pool_with(&o);
    for s in &servers {
        add(pool, &s.address());
    }
    let pool_addr = pool as usize;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let pool = pool_addr as *mut jina_net_pool;
                let mut started = 0;
                for i in 0..PER_THREAD {
                    let index = t * PER_THREAD + i;
                    let bytes = req(&format!("s{index}"));
                    let b = jina_net_bytes {
                        data: bytes.as_ptr(),
                        len: bytes.len(),
                    };
                    let mut so = unsafe { std::mem::zeroed::<jina_net_send_options>() };
                    unsafe { jina_net_send_options_init(&mut so, std::mem::size_of::<jina_net_send_options>()) };
                    so.idempotent = index % 2 == 0;
                    so.timeout_ms = if index % 5 == 0 { 15 } else { 0 };
                    let r = unsafe {
                        jina_net_pool_send_ex(
                            pool,
                            &b,
                            1,
                            cs("d").as_ptr(),
                            &so,
                            Some(count),
                            index as *mut c_void,
                            ptr::null_mut(),
                        )
                    };
                    assert_eq!(r, JINA_NET_OK);
                    started += 1;
                    // Bursts of 4 x 50 sends (more than 6 slots and 64 queued), then time to drain.
                    if i % 50 == 49 {
                        std::thread::sleep(Duration::from_millis(60));
                    }
                }
                started
            })
        })
        .collect();
    let started: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(started, n);
    let seen = SEEN.get().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.total.load(Ordering::SeqCst) < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Late duplicates would show up here.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statuses = seen.statuses.lock().unwrap().clone();
    println!("statuses (code -> sends): {statuses:?}");
    for (i, c) in seen.calls.iter().enumerate() {
        assert_eq!(c.load(Ordering::SeqCst), 1, "send {i}: callbacks");
    }
    assert_eq!(seen.total.load(Ordering::SeqCst), n);
    let allowed = [JINA_NET_OK, JINA_NET_RESOURCE_EXHAUSTED, JINA_NET_DEADLINE_EXCEEDED].map(|c| c as u32);
    assert!(statuses.keys().all(|k| allowed.contains(k)), "{statuses:?}");
    assert!(statuses.get(&(JINA_NET_OK as u32)).copied().unwrap_or(0) > n / 10);
    assert!(
        statuses
            .get(&(JINA_NET_RESOURCE_EXHAUSTED as u32))
            .copied()
            .unwrap_or(0)
            > 0,
        "the queue overflowed at least once: {statuses:?}"
    );
    for m in seen.messages.lock().unwrap().iter() {
        assert!(
            m.contains("deployment \"d\"") && m.contains("shard 0") && m.contains("resource exhausted"),
            "{m}"
        );
    }
    // (The limit as a replica sees it is checked in tests/balance.rs, without cancellations: here a
    // cancelled call (deadline, lost hedge) frees its slot at once, a moment before the replica
    // sees the stream reset.)
    let text = metrics_text(pool).unwrap();
    assert!(
        text.contains("jina_net_rejected_sends_total{deployment=\"d\",shard=\"0\"}"),
        "{text}"
    );
    assert!(
        text.contains("jina_net_queued_sends{deployment=\"d\",shard=\"0\"} 0\n"),
        "{text}"
    );
    for s in &servers {
        let labels = format!("deployment=\"d\",shard=\"0\",address=\"{}\"", s.address());
        assert!(text.contains(&format!("jina_net_in_flight{{{labels}}} 0\n")), "{text}");
    }
    unsafe { jina_net_pool_free(pool) };
}

#[derive(Default)]
struct One {
    done: Mutex<Vec<(jina_net_result, String, String)>>,
}

unsafe extern "C" fn one(user_data: *mut c_void, result: *const jina_net_send_result) {
    let o = unsafe { &*(user_data as *const One) };
    let r = unsafe { &*result };
    let replica = if r.targets_len == 1 {
        s(unsafe { &*jina_net_send_result_target(r, 0) }.address)
    } else {
        String::new()
    };
    o.done.lock().unwrap().push((r.status, s(r.error_message), replica));
}

fn wait(o: &One, n: usize) -> Vec<(jina_net_result, String, String)> {
    for _ in 0..500 {
        if o.done.lock().unwrap().len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    o.done.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_ex_hedges_idempotent_sends_only_and_calls_back_once() {
    let slow = start("slow", Role::Slow(Duration::from_millis(400))).await;
    let fast = start("fast", Role::Echo).await;
    let mut o = unsafe { std::mem::zeroed::<jina_net_pool_options>() };
    unsafe { jina_net_pool_options_init(&mut o, std::mem::size_of::<jina_net_pool_options>()) };
    assert_eq!(o.balance, 0);
    assert_eq!(
        (o.max_in_flight_per_replica, o.max_hedges, o.metrics),
        (0, 0, false),
        "all off by default"
    );
    o.hedge_delay_ms = 30;
    o.max_hedges = 1;
    let pool = pool_with(&o);
    add(pool, &slow.address());
    add(pool, &fast.address());
    let bytes = req("h");
    let b = jina_net_bytes {
        data: bytes.as_ptr(),
        len: bytes.len(),
    };
    let c = One::default();
    let mut so = unsafe { std::mem::zeroed::<jina_net_send_options>() };
    unsafe { jina_net_send_options_init(&mut so, std::mem::size_of::<jina_net_send_options>()) };
    assert!(!so.idempotent && so.shard_id == -1 && so.timeout_ms == 0);
    so.idempotent = true;
    let mut id = 0;
    let send = |so: *const jina_net_send_options, id: &mut u64| unsafe {
        jina_net_pool_send_ex(
            pool,
            &b,
            1,
            cs("d").as_ptr(),
            so,
            Some(one),
            &c as *const One as *mut c_void,
            id,
        )
    };
    assert_eq!(send(&so, &mut id), JINA_NET_OK);
    assert!(id > 0);
    let done = wait(&c, 1);
    assert_eq!(done[0].0, JINA_NET_OK, "{}", done[0].1);
    assert_eq!(done[0].2, fast.address(), "the hedge to the fast replica won");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.done.lock().unwrap().len(), 1, "one callback");
    assert_eq!(
        slow.record.completed.load(Ordering::SeqCst),
        0,
        "the slow attempt was cancelled"
    );
    // NULL options: the defaults, not idempotent. Round robin goes on with the fast replica, then
    // comes back to the slow one, which answers itself (no hedge).
    assert_eq!(send(ptr::null(), &mut id), JINA_NET_OK);
    assert_eq!(wait(&c, 2)[1].2, fast.address());
    assert_eq!(send(ptr::null(), &mut id), JINA_NET_OK);
    let done = wait(&c, 3);
    assert_eq!(done[2].0, JINA_NET_OK);
    assert_eq!(done[2].2, slow.address(), "not hedged");
    assert_eq!(fast.record.calls.load(Ordering::SeqCst), 2);
    assert_eq!(slow.record.completed.load(Ordering::SeqCst), 1);
    // Bad input: no callback, own codes.
    so.shards = 7;
    assert_eq!(send(&so, &mut id), JINA_NET_INVALID_ARGUMENT);
    so.shards = 0;
    so.kind = 9;
    assert_eq!(send(&so, &mut id), JINA_NET_INVALID_ARGUMENT);
    assert_eq!(metrics_text(pool), Err(JINA_NET_INVALID_ARGUMENT), "metrics off");
    assert_eq!(
        unsafe { jina_net_pool_metrics_text(pool, ptr::null_mut()) },
        JINA_NET_NULL_ARGUMENT
    );
    unsafe { jina_net_pool_free(pool) };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.done.lock().unwrap().len(), 3);
}

#[test]
fn option_checks_and_the_new_result_code() {
    let name = unsafe { std::ffi::CStr::from_ptr(jina_net_result_name(21)) };
    assert_eq!(name.to_str().unwrap(), "JINA_NET_RESOURCE_EXHAUSTED");
    let mut o = unsafe { std::mem::zeroed::<jina_net_pool_options>() };
    unsafe { jina_net_pool_options_init_resilient(&mut o, std::mem::size_of::<jina_net_pool_options>()) };
    assert_eq!(
        (o.p2c_default_rtt_ms, o.p2c_decay_ms, o.max_queued_sends),
        (30, 10_000, 1000)
    );
    let mut pool = ptr::null_mut();
    o.balance = 2;
    assert_eq!(unsafe { jina_net_pool_new(&o, &mut pool) }, JINA_NET_INVALID_ARGUMENT);
    assert!(pool.is_null());
    o.balance = 1;
    o.p2c_decay_ms = 0;
    assert_eq!(unsafe { jina_net_pool_new(&o, &mut pool) }, JINA_NET_INVALID_ARGUMENT);
    o.p2c_decay_ms = 100;
    o.metrics = true;
    assert_eq!(unsafe { jina_net_pool_new(&o, &mut pool) }, JINA_NET_OK);
    let text = metrics_text(pool).unwrap();
    assert!(text.starts_with("# HELP jina_sending_request_seconds"), "{text}");
    unsafe { jina_net_pool_free(pool) };
}

/// Counts the frees of owned buffers (ctx: an `AtomicUsize`); the bytes are a leaked `Vec` of the test.
unsafe extern "C" fn count_free(ctx: *mut c_void, _data: *const u8, _len: usize) {
    unsafe { &*(ctx as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_owned_ex_hedges_owned_buffers_and_frees_them_once() {
    let slow = start("slow", Role::Slow(Duration::from_millis(400))).await;
    let fast = start("fast", Role::Echo).await;
    let mut o = unsafe { std::mem::zeroed::<jina_net_pool_options>() };
    unsafe { jina_net_pool_options_init(&mut o, std::mem::size_of::<jina_net_pool_options>()) };
    o.hedge_delay_ms = 30;
    o.max_hedges = 1;
    let pool = pool_with(&o);
    add(pool, &slow.address());
    add(pool, &fast.address());
    let bytes: &'static [u8] = Vec::leak(req("owned-hedge"));
    let b = jina_net_bytes {
        data: bytes.as_ptr(),
        len: bytes.len(),
    };
    let frees = AtomicUsize::new(0);
    let frees_ctx = &frees as *const AtomicUsize as *mut c_void;
    let c = One::default();
    let mut so = unsafe { std::mem::zeroed::<jina_net_send_options>() };
    unsafe { jina_net_send_options_init(&mut so, std::mem::size_of::<jina_net_send_options>()) };
    so.idempotent = true;
    let send = |so: *const jina_net_send_options, free: jina_net_free_fn| unsafe {
        jina_net_pool_send_owned_ex(
            pool,
            &b,
            1,
            free,
            frees_ctx,
            cs("d").as_ptr(),
            so,
            Some(one),
            &c as *const One as *mut c_void,
            ptr::null_mut(),
        )
    };
    // Round robin starts with the slow replica: after 30 ms the hedge goes to the fast one and wins.
    assert_eq!(send(&so, Some(count_free)), JINA_NET_OK);
    let done = wait(&c, 1);
    assert_eq!(done[0].0, JINA_NET_OK, "{}", done[0].1);
    assert_eq!(done[0].2, fast.address(), "the hedge to the fast replica won");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.done.lock().unwrap().len(), 1, "one callback");
    assert_eq!(
        frees.load(Ordering::SeqCst),
        1,
        "the buffer shared by both attempts is freed once"
    );
    assert_eq!(fast.record.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        slow.record.completed.load(Ordering::SeqCst),
        0,
        "the slow attempt was cancelled"
    );

    // Refused sends: freed once before the call returns, no callback; a NULL free_fn takes nothing.
    so.kind = 9;
    assert_eq!(send(&so, Some(count_free)), JINA_NET_INVALID_ARGUMENT);
    assert_eq!(frees.load(Ordering::SeqCst), 2);
    so.kind = 0;
    so.shards = 7;
    assert_eq!(send(&so, Some(count_free)), JINA_NET_INVALID_ARGUMENT);
    assert_eq!(frees.load(Ordering::SeqCst), 3);
    assert_eq!(send(&so, None), JINA_NET_NULL_ARGUMENT);
    assert_eq!(frees.load(Ordering::SeqCst), 3, "nothing taken without free_fn");
    // NULL options: the defaults (not idempotent, not hedged).
    assert_eq!(send(ptr::null(), Some(count_free)), JINA_NET_OK);
    assert_eq!(wait(&c, 2)[1].0, JINA_NET_OK);
    unsafe { jina_net_pool_free(pool) };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(frees.load(Ordering::SeqCst), 4);
    assert_eq!(c.done.lock().unwrap().len(), 2);
}
