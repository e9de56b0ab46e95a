//! `jina_net_log_set_callback` against real sends. A test binary of its own: the forwarding is
//! installed on the runtime's threads when the C ABI starts the runtime, which must happen here
//! first (no other test may start it from Rust).

mod common;

use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::sync::Mutex;
use std::time::Duration;

use common::c_abi::*;
use common::*;
use jina_net::ffi::args::jina_net_bytes;
use jina_net::ffi::log::jina_net_log_level::*;
use jina_net::ffi::log::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::result::jina_net_result::*;
use jina_net::ffi::send::*;
use prost::Message;

#[derive(Debug, Clone)]
struct Event {
    level: u32,
    target: String,
    message: String,
    thread: String,
    nested: u32,
}

static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_log(user_data: *mut c_void, level: u32, target: *const c_char, message: *const c_char) {
    assert_eq!(user_data as usize, 42, "user_data handed back");
    // Replacing the callback from inside it is refused.
    let nested = unsafe { jina_net_log_set_callback(None, ptr::null_mut(), 0) } as u32;
    EVENTS.lock().unwrap().push(Event {
        level,
        target: unsafe { CStr::from_ptr(target) }.to_string_lossy().into_owned(),
        message: unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned(),
        thread: std::thread::current().name().unwrap_or("").to_owned(),
        nested,
    });
}

fn send_to(pool: *mut jina_net_pool, c: &Collector) {
    let r = data_request("x", 0).encode_to_vec();
    let b = jina_net_bytes {
        data: r.as_ptr(),
        len: r.len(),
    };
    let rc = unsafe {
        jina_net_pool_send(
            pool,
            0,
            &b,
            1,
            cs("d").as_ptr(),
            false,
            -1,
            0,
            ptr::null(),
            0,
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        )
    };
    assert_eq!(rc, JINA_NET_OK);
}

fn retry_events() -> Vec<Event> {
    EVENTS
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.target == "jina_net::send" && e.message.contains("retrying"))
        .cloned()
        .collect()
}

#[test]
fn the_log_callback_gets_library_events_at_its_level_on_library_threads() {
    assert_eq!(
        unsafe { jina_net_log_set_callback(Some(on_log), 42 as *mut c_void, 6) },
        JINA_NET_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { jina_net_log_set_callback(Some(on_log), 42 as *mut c_void, JINA_NET_LOG_DEBUG as u32) },
        JINA_NET_OK
    );
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(ptr::null(), &mut pool) }, JINA_NET_OK);
    let dead = dead_address();
    assert_eq!(
        unsafe { jina_net_pool_add_connection(pool, cs("d").as_ptr(), cs(&dead).as_ptr(), false, -1, ptr::null_mut()) },
        JINA_NET_OK
    );
    let c = Collector::default();
    send_to(pool, &c);
    assert_eq!(
        c.wait(1)[0].targets[0].grpc_code,
        14,
        "UNAVAILABLE after jina's 3 attempts"
    );
    let events = retry_events();
    assert_eq!(events.len(), 2, "two retries logged: {:?}", EVENTS.lock().unwrap());
    for e in &events {
        assert_eq!(e.level, JINA_NET_LOG_DEBUG as u32);
        assert!(
            e.message.contains(&dead),
            "the message carries its fields: {}",
            e.message
        );
        assert!(
            e.thread.starts_with("jina-net"),
            "on a library thread, not {:?}",
            e.thread
        );
        assert_eq!(e.nested, JINA_NET_RUNTIME_ERROR as u32);
    }
    assert!(
        EVENTS.lock().unwrap().iter().all(|e| e.level <= 4),
        "nothing above DEBUG"
    );

    // WARN: the debug events stop.
    EVENTS.lock().unwrap().clear();
    assert_eq!(
        unsafe { jina_net_log_set_callback(Some(on_log), 42 as *mut c_void, JINA_NET_LOG_WARN as u32) },
        JINA_NET_OK
    );
    send_to(pool, &c);
    c.wait(2);
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        EVENTS.lock().unwrap().iter().all(|e| e.level <= 2),
        "{:?}",
        EVENTS.lock().unwrap()
    );
    assert!(retry_events().is_empty());

    // Removed: nothing at all.
    assert_eq!(
        unsafe { jina_net_log_set_callback(None, ptr::null_mut(), JINA_NET_LOG_TRACE as u32) },
        JINA_NET_OK
    );
    EVENTS.lock().unwrap().clear();
    send_to(pool, &c);
    c.wait(3);
    std::thread::sleep(Duration::from_millis(50));
    assert!(EVENTS.lock().unwrap().is_empty());

    // Back on: forwarded again.
    assert_eq!(
        unsafe { jina_net_log_set_callback(Some(on_log), 42 as *mut c_void, JINA_NET_LOG_TRACE as u32) },
        JINA_NET_OK
    );
    send_to(pool, &c);
    let done = c.wait(4);
    let ev: Vec<String> = EVENTS
        .lock()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e.level, e.target, e.message))
        .collect();
    assert_eq!(retry_events().len(), 2, "{:#?} {:?}", ev, done[3]);
    unsafe { jina_net_pool_free(pool) };

    // A caller-driven pool: its events come from the thread that polls it.
    EVENTS.lock().unwrap().clear();
    let mut options = std::mem::MaybeUninit::<jina_net::ffi::pool_options::jina_net_pool_options>::uninit();
    unsafe {
        jina_net::ffi::pool_options::jina_net_pool_options_init(
            options.as_mut_ptr(),
            std::mem::size_of::<jina_net::ffi::pool_options::jina_net_pool_options>(),
        )
    };
    let mut options = unsafe { options.assume_init() };
    options.caller_driven = true;
    let mut driven = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(&options, &mut driven) }, JINA_NET_OK);
    assert_eq!(
        unsafe {
            jina_net_pool_add_connection(driven, cs("d").as_ptr(), cs(&dead).as_ptr(), false, -1, ptr::null_mut())
        },
        JINA_NET_OK
    );
    let d = Collector::default();
    send_to(driven, &d);
    for _ in 0..200 {
        if d.done.lock().unwrap().len() == 1 {
            break;
        }
        let rc = unsafe { jina_net::ffi::poll::jina_net_pool_poll(driven, 50, ptr::null_mut()) };
        assert_eq!(rc, JINA_NET_OK);
    }
    assert_eq!(d.wait(1)[0].targets[0].grpc_code, 14);
    let me = std::thread::current().name().unwrap_or("").to_owned();
    let events = retry_events();
    assert_eq!(events.len(), 2, "{:?}", EVENTS.lock().unwrap());
    assert!(events.iter().all(|e| e.thread == me), "{events:?}");
    assert_eq!(
        unsafe { jina_net_log_set_callback(None, ptr::null_mut(), 0) },
        JINA_NET_OK
    );
    unsafe { jina_net_pool_free(driven) };
}
