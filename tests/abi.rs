//! The C ABI can grow: options structs carry their size (`struct_size`), the library reads and
//! writes only the bytes the caller's header declares, and results are read through accessors; the
//! first option through it is per-send request metadata, checked before anything is sent and sent on
//! every attempt (retries, fail-over, hedges), seen by a real server.

mod common;

use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::ptr;
use std::time::Duration;

use common::c_abi::*;
use common::*;
use jina_net::ffi::args::jina_net_bytes;
use jina_net::ffi::completion::*;
use jina_net::ffi::metadata::jina_net_metadata;
use jina_net::ffi::oneshot::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::*;
use jina_net::ffi::ready::jina_net_pool_wait_ready;
use jina_net::ffi::result::jina_net_result::{self, *};
use jina_net::ffi::runtime::*;
use jina_net::ffi::send_ex::*;
use jina_net::ffi::send_options::*;
use prost::Message;

const GUARD: u8 = 0xa5;

/// A struct of `size` bytes with guard bytes after it, as an older (smaller) or newer (larger)
/// header would lay it out in the caller's memory.
struct Guarded {
    buf: Vec<u8>,
    size: usize,
}

impl Guarded {
    fn new(size: usize) -> Self {
        Guarded {
            buf: vec![GUARD; size + 64 + 8],
            size,
        }
    }
    /// The struct, 8-byte aligned inside the buffer.
    fn ptr<T>(&mut self) -> *mut T {
        let base = self.buf.as_mut_ptr();
        let pad = base.align_offset(8);
        unsafe { base.add(pad) }.cast()
    }
    fn bytes(&mut self) -> &[u8] {
        let pad = self.buf.as_ptr().align_offset(8);
        &self.buf[pad..pad + self.size + 64]
    }
    fn guard_intact(&mut self) -> bool {
        let size = self.size;
        self.bytes()[size..].iter().all(|&b| b == GUARD)
    }
}

#[test]
fn init_writes_only_the_callers_bytes_and_zeroes_what_it_does_not_know() {
    let own = size_of::<jina_net_pool_options>();
    // An older header: the struct ends before `metrics`.
    let old = offset_of!(jina_net_pool_options, metrics);
    let mut g = Guarded::new(old);
    assert_eq!(unsafe { jina_net_pool_options_init(g.ptr(), old) }, JINA_NET_OK);
    assert!(g.guard_intact(), "init wrote past the caller's struct");
    let o = g.ptr::<jina_net_pool_options>();
    assert_eq!(unsafe { (*o).struct_size }, old);
    assert_eq!(unsafe { (*o).max_attempts }, 3);
    // A newer header: 32 more bytes, which this library does not know: zeroed.
    let mut g = Guarded::new(own + 32);
    assert_eq!(
        unsafe { jina_net_pool_options_init_resilient(g.ptr(), own + 32) },
        JINA_NET_OK
    );
    assert!(g.guard_intact());
    assert!(g.bytes()[own..own + 32].iter().all(|&b| b == 0));
    assert_eq!(unsafe { (*g.ptr::<jina_net_pool_options>()).struct_size }, own + 32);
    assert!(unsafe { (*g.ptr::<jina_net_pool_options>()).fail_over });
    // Too small to be a struct, or NULL.
    let mut g = Guarded::new(4);
    assert_eq!(
        unsafe { jina_net_pool_options_init(g.ptr(), 4) },
        JINA_NET_INVALID_ARGUMENT
    );
    assert!(g.bytes().iter().all(|&b| b == GUARD), "nothing written");
    assert!(last_error().contains("jina_net_pool_options_init(&options, sizeof options)"));
    assert_eq!(
        unsafe { jina_net_pool_options_init(ptr::null_mut(), own) },
        JINA_NET_NULL_ARGUMENT
    );
    for size in [
        size_of::<jina_net_send_options>(),
        offset_of!(jina_net_send_options, metadata),
    ] {
        let mut g = Guarded::new(size);
        assert_eq!(unsafe { jina_net_send_options_init(g.ptr(), size) }, JINA_NET_OK);
        assert!(g.guard_intact());
    }
    let size = size_of::<jina_net_oneshot_options>();
    let mut g = Guarded::new(size);
    assert_eq!(unsafe { jina_net_oneshot_options_init(g.ptr(), size) }, JINA_NET_OK);
    assert!(g.guard_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_past_the_callers_size_take_their_defaults_and_unknown_settings_are_refused() {
    let own = size_of::<jina_net_pool_options>();
    // An older caller: everything from `max_in_flight_per_replica` on is missing. The bytes there
    // hold garbage (the guard), which the library must not read: the pool gets the defaults.
    let old = offset_of!(jina_net_pool_options, max_in_flight_per_replica);
    let mut g = Guarded::new(old);
    assert_eq!(unsafe { jina_net_pool_options_init(g.ptr(), old) }, JINA_NET_OK);
    unsafe { (*g.ptr::<jina_net_pool_options>()).max_attempts = 1 };
    let mut pool = ptr::null_mut();
    assert_eq!(
        unsafe { jina_net_pool_new(g.ptr(), &mut pool) },
        JINA_NET_OK,
        "{}",
        last_error()
    );
    // metrics (past the caller's struct) defaulted to off; caller_driven too (sends run on library threads).
    let mut text = ptr::null_mut();
    assert_eq!(
        unsafe { jina_net::ffi::metrics::jina_net_pool_metrics_text(pool, &mut text) },
        JINA_NET_INVALID_ARGUMENT
    );
    let w = start("w", Role::Flaky(1)).await;
    unsafe {
        jina_net_pool_add_connection(
            pool,
            cs("d").as_ptr(),
            cs(&w.address()).as_ptr(),
            false,
            0,
            ptr::null_mut(),
        )
    };
    let done = send_ex(pool, "m", None);
    assert_eq!(done.status, JINA_NET_RPC_ERROR, "max_attempts = 1 was read: no retry");
    unsafe { jina_net_pool_free(pool) };

    // A newer caller whose unknown bytes are zero works; one that set one of them is refused.
    let mut g = Guarded::new(own + 16);
    assert_eq!(unsafe { jina_net_pool_options_init(g.ptr(), own + 16) }, JINA_NET_OK);
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(g.ptr(), &mut pool) }, JINA_NET_OK);
    unsafe { jina_net_pool_free(pool) };
    unsafe { *g.ptr::<u8>().add(own + 9) = 1 };
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(g.ptr(), &mut pool) }, JINA_NET_UNSUPPORTED);
    assert!(pool.is_null(), "out-parameter untouched on failure");
    let e = last_error();
    assert!(
        e.contains("jina_net_pool_options") && e.contains(&format!("byte {}", own + 9)),
        "{e}"
    );
    // struct_size 0: not initialised.
    let mut o = unsafe { std::mem::zeroed::<jina_net_pool_options>() };
    o.max_attempts = 3;
    assert_eq!(unsafe { jina_net_pool_new(&o, &mut pool) }, JINA_NET_INVALID_ARGUMENT);
    assert!(last_error().contains("struct_size is 0"), "{}", last_error());
}

/// `jina_net_pool_send_ex` of one data request to deployment "d", waited for.
fn send_ex(pool: *mut jina_net_pool, id: &str, options: Option<&jina_net_send_options>) -> Completed {
    let bytes = data_request(id, 0).encode_to_vec();
    let b = jina_net_bytes {
        data: bytes.as_ptr(),
        len: bytes.len(),
    };
    let c = Collector::default();
    let r = unsafe {
        jina_net_pool_send_ex(
            pool,
            &b,
            1,
            cs("d").as_ptr(),
            options.map_or(ptr::null(), |o| o as *const _),
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        )
    };
    assert_eq!(r, JINA_NET_OK, "{}", last_error());
    c.wait(1).remove(0)
}

fn entry(key: &std::ffi::CString, value: &[u8]) -> jina_net_metadata {
    jina_net_metadata {
        key: key.as_ptr(),
        value: value.as_ptr(),
        value_len: value.len(),
    }
}

fn send_options() -> jina_net_send_options {
    let mut o = unsafe { std::mem::zeroed::<jina_net_send_options>() };
    assert_eq!(
        unsafe { jina_net_send_options_init(&mut o, size_of::<jina_net_send_options>()) },
        JINA_NET_OK
    );
    o
}

fn resilient_pool(hedge: bool) -> *mut jina_net_pool {
    let mut o = unsafe { std::mem::zeroed::<jina_net_pool_options>() };
    unsafe { jina_net_pool_options_init_resilient(&mut o, size_of::<jina_net_pool_options>()) };
    if hedge {
        o.max_hedges = 1;
        o.hedge_delay_ms = 0;
    }
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(&o, &mut pool) }, JINA_NET_OK);
    pool
}

/// The custom request headers of every call a server saw, as `(key, value)` (values as on the wire).
fn seen(server: &jina_net_testserver::TestServer) -> Vec<Vec<(String, String)>> {
    server
        .record
        .headers
        .lock()
        .unwrap()
        .iter()
        .map(|(_, h)| {
            h.iter()
                .filter(|(k, _)| ["authorization", "x-request-id", "traceparent", "trace-bin"].contains(&k.as_str()))
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metadata_goes_with_every_attempt_and_comes_back_from_the_echo_worker() {
    let flaky = start("flaky", Role::Flaky(1)).await; // fails the first call: fail-over
    let slow = start("slow", Role::Slow(Duration::from_millis(300))).await;
    // The echo worker answers after 100 ms: a hedge's two attempts start at once, and an answer
    // within a round trip cancelled the slow replica's attempt before its request reached it (1 run
    // in 15-30).
    let echo = start("echo", Role::Slow(Duration::from_millis(100))).await;
    let pool = resilient_pool(true);
    for s in [&flaky, &echo] {
        unsafe {
            jina_net_pool_add_connection(
                pool,
                cs("d").as_ptr(),
                cs(&s.address()).as_ptr(),
                false,
                0,
                ptr::null_mut(),
            )
        };
    }
    let keys = [
        cs("authorization"),
        cs("x-request-id"),
        cs("traceparent"),
        cs("trace-bin"),
        cs("x-request-id"),
    ];
    let trace = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let entries = [
        entry(&keys[0], b"Bearer t0k3n"),
        entry(&keys[1], b"r-1"),
        entry(&keys[2], trace),
        entry(&keys[3], &[0, 1, 2, 0xff]),
        entry(&keys[4], b"r-2"),
    ];
    let mut o = send_options();
    o.metadata = entries.as_ptr();
    o.metadata_len = entries.len();
    o.endpoint = c"/index".as_ptr();
    let expected: Vec<(String, String)> = [
        ("authorization", "Bearer t0k3n"),
        ("x-request-id", "r-1"),
        ("x-request-id", "r-2"),
        ("traceparent", std::str::from_utf8(trace).unwrap()),
        ("trace-bin", "AAEC/w"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sorted = |mut v: Vec<(String, String)>| {
        v.sort();
        v
    };
    // Round robin starts at the flaky replica: its UNAVAILABLE fails over to the echo worker; both
    // attempts carried the metadata.
    let done = send_ex(pool, "md", Some(&o));
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    let t = &done.targets[0];
    assert_eq!(t.meta("replica").as_deref(), Some("echo"));
    assert_eq!(t.meta("seen-authorization").as_deref(), Some("Bearer t0k3n"));
    assert_eq!(t.meta("seen-trace-bin").as_deref(), Some("AAEC/w"));
    assert_eq!(t.meta("endpoint").as_deref(), Some("/index"), "the endpoint still goes");
    assert_eq!(seen(&flaky).len(), 1);
    assert_eq!(
        sorted(seen(&flaky)[0].clone()),
        sorted(expected.clone()),
        "the failed attempt"
    );
    assert_eq!(
        sorted(seen(&echo)[0].clone()),
        sorted(expected.clone()),
        "the fail-over"
    );
    // Hedges: the slow replica is picked first, the hedge goes to the echo worker; both carry it.
    unsafe {
        jina_net_pool_remove_connection(
            pool,
            cs("d").as_ptr(),
            cs(&flaky.address()).as_ptr(),
            false,
            0,
            ptr::null_mut(),
        )
    };
    unsafe {
        jina_net_pool_add_connection(
            pool,
            cs("d").as_ptr(),
            cs(&slow.address()).as_ptr(),
            false,
            0,
            ptr::null_mut(),
        )
    };
    // Connected first: with a hedge delay of 0 both attempts start at once, and a slow replica still
    // connecting would see its attempt cancelled (the echo worker answered) before the request reached it.
    let ready = unsafe { jina_net_pool_wait_ready(pool, cs("d").as_ptr(), 10_000) };
    assert_eq!(ready, JINA_NET_OK, "{}", last_error());
    o.idempotent = true;
    let before = seen(&echo).len();
    let before_slow = seen(&slow).len(); // wait_ready's STATUS probe, which carries no metadata
    let mut hedged = false;
    for i in 0..2 {
        let done = send_ex(pool, &format!("h{i}"), Some(&o));
        assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
        hedged |= seen(&slow).len() > before_slow;
    }
    assert!(hedged, "one of the two sends started on the slow replica");
    for call in seen(&slow)
        .into_iter()
        .skip(before_slow)
        .chain(seen(&echo).into_iter().skip(before))
    {
        assert_eq!(sorted(call), sorted(expected.clone()));
    }
    unsafe { jina_net_pool_free(pool) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_names_and_invalid_bytes_are_refused_before_anything_is_sent() {
    let echo = start("echo", Role::Echo).await;
    let pool = resilient_pool(false);
    unsafe {
        jina_net_pool_add_connection(
            pool,
            cs("d").as_ptr(),
            cs(&echo.address()).as_ptr(),
            false,
            0,
            ptr::null_mut(),
        )
    };
    let bytes = data_request("x", 0).encode_to_vec();
    let b = jina_net_bytes {
        data: bytes.as_ptr(),
        len: bytes.len(),
    };
    let cases: [(&str, &[u8], bool, &str); 10] = [
        ("grpc-timeout", b"1S", false, "reserved for gRPC"),
        ("te", b"trailers", false, "reserved"),
        ("content-type", b"text/html", false, "reserved"),
        ("Authorization", b"x", false, "lower-case"),
        (":authority", b"x", false, "not allowed"),
        ("x-ok", b"a\r\nb", false, "0x0d"),
        ("x-ok", &[0xc3, 0xa9], false, "0xc3"),
        ("endpoint", b"/other", true, "sets its endpoint"),
        ("connection", b"close", false, "reserved"),
        ("", b"x", false, "empty key"),
    ];
    for (key, value, with_endpoint, says) in cases {
        let k = cs(key);
        let e = [entry(&k, value)];
        let mut o = send_options();
        o.metadata = e.as_ptr();
        o.metadata_len = 1;
        if with_endpoint {
            o.endpoint = c"/index".as_ptr();
        }
        let mut id = 7u64;
        let r = unsafe {
            jina_net_pool_send_ex(
                pool,
                &b,
                1,
                cs("d").as_ptr(),
                &o,
                Some(collect),
                ptr::null_mut(),
                &mut id,
            )
        };
        assert_eq!(r, JINA_NET_INVALID_ARGUMENT, "{key:?}");
        assert_eq!(id, 7, "out-parameter untouched");
        let message = last_error();
        assert!(
            message.contains("metadata") && message.contains(&format!("{key:?}")) && message.contains(says),
            "{key:?}: {message}"
        );
    }
    // NULL key, NULL array with a length.
    let e = [jina_net_metadata {
        key: ptr::null(),
        value: ptr::null(),
        value_len: 0,
    }];
    let mut o = send_options();
    o.metadata = e.as_ptr();
    o.metadata_len = 1;
    let r = unsafe {
        jina_net_pool_send_ex(
            pool,
            &b,
            1,
            cs("d").as_ptr(),
            &o,
            Some(collect),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    assert_eq!(r, JINA_NET_NULL_ARGUMENT);
    o.metadata = ptr::null();
    o.metadata_len = 2;
    let r = unsafe {
        jina_net_pool_send_ex(
            pool,
            &b,
            1,
            cs("d").as_ptr(),
            &o,
            Some(collect),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    assert_eq!(r, JINA_NET_NULL_ARGUMENT);
    // `endpoint` as metadata is fine when the send sets none; nothing of the refused sends arrived.
    let k = cs("endpoint");
    let e = [entry(&k, b"/from-metadata")];
    let mut o = send_options();
    o.metadata = e.as_ptr();
    o.metadata_len = 1;
    let done = send_ex(pool, "ep", Some(&o));
    assert_eq!(done.targets[0].meta("endpoint").as_deref(), Some("/from-metadata"));
    assert_eq!(
        echo.record.headers.lock().unwrap().len(),
        1,
        "only the last send reached the server"
    );
    unsafe { jina_net_pool_free(pool) };
}

unsafe extern "C" fn inspect(user_data: *mut c_void, result: *const jina_net_send_result) {
    let out = unsafe { &mut *(user_data as *mut Vec<String>) };
    let r = unsafe { &*result };
    out.push(format!(
        "struct_size {}",
        r.struct_size == size_of::<jina_net_send_result>()
    ));
    let t = unsafe { jina_net_send_result_target(r, 0) };
    out.push(format!("target0 {}", !t.is_null()));
    out.push(format!(
        "target1 {}",
        unsafe { jina_net_send_result_target(r, 1) }.is_null()
    ));
    out.push(format!(
        "null result {}",
        unsafe { jina_net_send_result_target(ptr::null(), 0) }.is_null()
    ));
    let t = unsafe { &*t };
    out.push(format!(
        "target size {}",
        t.struct_size == size_of::<jina_net_target_result>()
    ));
    let m = unsafe { jina_net_target_result_metadata(t, 0) };
    out.push(format!("meta0 {}", !m.is_null()));
    out.push(format!(
        "meta past end {}",
        unsafe { jina_net_target_result_metadata(t, t.metadata_len) }.is_null()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_read_through_accessors_that_check_their_index() {
    let echo = start("echo", Role::Echo).await;
    let pool = resilient_pool(false);
    unsafe {
        jina_net_pool_add_connection(
            pool,
            cs("d").as_ptr(),
            cs(&echo.address()).as_ptr(),
            false,
            0,
            ptr::null_mut(),
        )
    };
    let bytes = data_request("x", 0).encode_to_vec();
    let b = jina_net_bytes {
        data: bytes.as_ptr(),
        len: bytes.len(),
    };
    let mut out: Vec<String> = Vec::new();
    let o = send_options();
    let r = unsafe {
        jina_net_pool_send_ex(
            pool,
            &b,
            1,
            cs("d").as_ptr(),
            &o,
            Some(inspect),
            &mut out as *mut Vec<String> as *mut c_void,
            ptr::null_mut(),
        )
    };
    assert_eq!(r, JINA_NET_OK);
    for _ in 0..200 {
        if out.len() == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    unsafe { jina_net_pool_free(pool) };
    assert_eq!(
        out,
        [
            "struct_size true",
            "target0 true",
            "target1 true",
            "null result true",
            "target size true",
            "meta0 true",
            "meta past end true"
        ]
    );
}

#[test]
fn version_function_and_macros_agree() {
    let v = unsafe { std::ffi::CStr::from_ptr(jina_net_version()) }
        .to_str()
        .unwrap();
    assert_eq!(
        v,
        format!("{JINA_NET_VERSION_MAJOR}.{JINA_NET_VERSION_MINOR}.{JINA_NET_VERSION_PATCH}")
    );
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    let _: jina_net_result = JINA_NET_OK;
    assert_eq!(size_of::<jina_net_result>(), 4, "the result type is an int32_t");
}

static FREED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe extern "C" fn count_free(_ctx: *mut c_void, data: *const u8, len: usize) {
    drop(unsafe { Vec::from_raw_parts(data as *mut u8, len, len) });
    FREED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn owned_buffers_are_freed_when_the_options_are_refused() {
    let pool = resilient_pool(false);
    let own = size_of::<jina_net_send_options>();
    for (size, unknown_byte, expected) in [
        (4usize, false, JINA_NET_INVALID_ARGUMENT),
        (own + 8, true, JINA_NET_UNSUPPORTED),
    ] {
        let before = FREED.load(std::sync::atomic::Ordering::SeqCst);
        let mut bytes = data_request("owned", 0).encode_to_vec();
        bytes.shrink_to_fit();
        let b = jina_net_bytes {
            data: bytes.as_ptr(),
            len: bytes.len(),
        };
        std::mem::forget(bytes);
        let mut g = Guarded::new(size.max(own + 8));
        let _ = unsafe { jina_net_send_options_init(g.ptr(), own + 8) };
        unsafe { (*g.ptr::<jina_net_send_options>()).struct_size = size };
        if unknown_byte {
            unsafe { *g.ptr::<u8>().add(own + 3) = 7 };
        }
        let r = unsafe {
            jina_net::ffi::send_ex::jina_net_pool_send_owned_ex(
                pool,
                &b,
                1,
                Some(count_free),
                ptr::null_mut(),
                cs("d").as_ptr(),
                g.ptr(),
                Some(collect),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        assert_eq!(r, expected, "{}", last_error());
        assert_eq!(
            FREED.load(std::sync::atomic::Ordering::SeqCst),
            before + 1,
            "the buffer is freed once before the call returns"
        );
    }
    unsafe { jina_net_pool_free(pool) };
}
