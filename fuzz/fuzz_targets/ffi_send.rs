//! `jina_net_pool_send` (and the routing and request checks behind it) with arbitrary arguments
//! through the C ABI: it must return a code (never JINA_NET_PANIC), and every accepted send must
//! complete exactly once. Accepted sends go to 127.0.0.1:1, where nothing listens.
#![no_main]

use std::ffi::{c_void, CString};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use jina_net::ffi::args::jina_net_bytes;
use jina_net::ffi::completion::jina_net_send_result;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::*;
use jina_net::ffi::send::*;
use jina_net::ffi::result::jina_net_result;
use libfuzzer_sys::fuzz_target;

struct Pool(*mut jina_net_pool);
// SAFETY: the pool handle is thread-safe (documented); the fuzzer only uses it from its own thread.
unsafe impl Send for Pool {}
unsafe impl Sync for Pool {}

static POOL: OnceLock<Pool> = OnceLock::new();
static DONE: Mutex<u64> = Mutex::new(0);
static CV: Condvar = Condvar::new();

fn pool() -> *mut jina_net_pool {
    POOL.get_or_init(|| unsafe {
        let mut p = std::ptr::null_mut();
        let mut o = std::mem::zeroed::<jina_net_pool_options>();
        jina_net_pool_options_init(&mut o, std::mem::size_of::<jina_net_pool_options>());
        o.max_attempts = 1;
        o.default_timeout_ms = 1000;
        assert_eq!(jina_net_pool_new(&o, &mut p), jina_net_result::JINA_NET_OK);
        for (dep, head, shard) in [("d", false, 0), ("d", false, 1), ("d", true, -1), ("e", false, 0)] {
            let (d, a) = (CString::new(dep).unwrap(), CString::new("127.0.0.1:1").unwrap());
            jina_net_pool_add_connection(p, d.as_ptr(), a.as_ptr(), head, shard, std::ptr::null_mut());
        }
        Pool(p)
    })
    .0
}

unsafe extern "C" fn on_done(_user_data: *mut c_void, _result: *const jina_net_send_result) {
    *DONE.lock().unwrap() += 1;
    CV.notify_all();
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let pool = pool();
    let kind = u32::from(data[0] % 3);
    let polling = u32::from(data[1] % 3);
    let head = data[2] & 1 == 1;
    let shard = i64::from(data[3] as i8);
    let deployment = match data[4] % 4 {
        0 => c"d",
        1 => c"e",
        2 => c"unknown",
        _ => c"",
    };
    // the rest: an optional endpoint (up to the first 0xff) and 1..3 requests
    let rest = &data[5..];
    let (endpoint, body) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (CString::new(rest[..i].iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>()).ok(), &rest[i + 1..]),
        None => (None, rest),
    };
    let parts: Vec<jina_net_bytes> = body
        .chunks((body.len() / (1 + usize::from(data[0] % 3))).max(1))
        .map(|c| jina_net_bytes { data: c.as_ptr(), len: c.len() })
        .collect();
    let before = *DONE.lock().unwrap();
    let mut id = 0u64;
    let r = unsafe {
        jina_net_pool_send(
            pool,
            kind,
            parts.as_ptr(),
            parts.len(),
            deployment.as_ptr(),
            head,
            shard,
            polling,
            endpoint.as_ref().map_or(std::ptr::null(), |e| e.as_ptr()),
            500,
            Some(on_done),
            std::ptr::null_mut(),
            if data[2] & 2 == 2 { &mut id } else { std::ptr::null_mut() },
        )
    };
    assert_ne!(r, jina_net_result::JINA_NET_PANIC, "a panic was caught at the boundary");
    if r == jina_net_result::JINA_NET_OK {
        let done = DONE.lock().unwrap();
        let (done, timeout) = CV.wait_timeout_while(done, Duration::from_secs(5), |d| *d == before).unwrap();
        assert!(!timeout.timed_out(), "an accepted send did not complete");
        assert_eq!(*done, before + 1, "exactly one completion");
    } else {
        std::thread::sleep(Duration::from_micros(0));
        assert_eq!(*DONE.lock().unwrap(), before, "a refused send never calls back");
    }
});
