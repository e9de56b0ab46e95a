//! The C ABI from Rust tests: a Condvar-based collector of completion callbacks and string helpers.
#![allow(dead_code)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use jina_net::ffi::completion::{
    jina_net_send_result, jina_net_send_result_target, jina_net_target_result, jina_net_target_result_metadata,
};
use jina_net::ffi::result::jina_net_last_error_message;
use jina_net::ffi::result::jina_net_result::{self, JINA_NET_OK};

#[derive(Debug, Clone)]
pub struct Target {
    pub status: jina_net_result,
    pub grpc_code: i32,
    pub shard_id: i64,
    pub head: bool,
    pub address: String,
    pub grpc_message: String,
    pub error_message: String,
    pub body: Vec<u8>,
    pub metadata: Vec<(String, Vec<u8>)>,
}

impl Target {
    pub fn meta(&self, key: &str) -> Option<String> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

#[derive(Debug, Clone)]
pub struct Completed {
    pub status: jina_net_result,
    pub message: String,
    pub targets: Vec<Target>,
}

impl Completed {
    /// The body of the only target, which must have succeeded.
    pub fn ok_body(&self) -> Vec<u8> {
        assert_eq!(self.status, JINA_NET_OK, "{}", self.message);
        assert_eq!(self.targets.len(), 1);
        self.targets[0].body.clone()
    }
}

#[derive(Default)]
pub struct Collector {
    pub done: Mutex<Vec<Completed>>,
    pub cv: Condvar,
}

impl Collector {
    pub fn wait(&self, n: usize) -> Vec<Completed> {
        let guard = self.done.lock().unwrap();
        let (guard, timeout) = self
            .cv
            .wait_timeout_while(guard, Duration::from_secs(60), |d| d.len() < n)
            .unwrap();
        assert!(!timeout.timed_out(), "only {} of {n} callbacks fired", guard.len());
        guard.clone()
    }
    pub fn ud(&self) -> *mut c_void {
        self as *const Collector as *mut c_void
    }
}

pub fn s(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

pub unsafe extern "C" fn collect(user_data: *mut c_void, result: *const jina_net_send_result) {
    let c = unsafe { &*(user_data as *const Collector) };
    let r = unsafe { &*result };
    let targets = (0..r.targets_len)
        .map(|i| {
            let t = unsafe { &*jina_net_send_result_target(r, i) };
            assert!(t.struct_size >= std::mem::size_of::<jina_net_target_result>());
            let metadata = (0..t.metadata_len)
                .map(|j| {
                    let m = unsafe { &*jina_net_target_result_metadata(t, j) };
                    let v = unsafe { std::slice::from_raw_parts(m.value, m.value_len) };
                    (s(m.key), v.to_vec())
                })
                .collect();
            Target {
                status: t.status,
                grpc_code: t.grpc_code,
                shard_id: t.shard_id,
                head: t.head,
                address: s(t.address),
                grpc_message: s(t.grpc_message),
                error_message: s(t.error_message),
                body: if t.response.is_null() {
                    vec![]
                } else {
                    unsafe { std::slice::from_raw_parts(t.response, t.response_len) }.to_vec()
                },
                metadata,
            }
        })
        .collect();
    c.done.lock().unwrap().push(Completed {
        status: r.status,
        message: s(r.error_message),
        targets,
    });
    c.cv.notify_all();
}

pub fn cs(s: &str) -> CString {
    CString::new(s).unwrap()
}

pub fn last_error() -> String {
    let n = unsafe { jina_net_last_error_message(ptr::null_mut(), 0) };
    let mut buf = vec![0 as c_char; n + 1];
    unsafe { jina_net_last_error_message(buf.as_mut_ptr(), buf.len()) };
    s(buf.as_ptr())
}

/// Sends one data request (`data_request(id, 0)`) to `deployment` with `jina_net_pool_send` (ANY,
/// 10 s deadline) and waits for its callback; `Err` with the code and the last error message when
/// the send is refused at once (no callback then).
pub fn try_send_data(
    pool: *mut jina_net::ffi::pool::jina_net_pool,
    deployment: &str,
    id: &str,
) -> Result<Completed, (jina_net_result, String)> {
    use prost::Message;
    let bytes = super::data_request(id, 0).encode_to_vec();
    let b = jina_net::ffi::args::jina_net_bytes {
        data: bytes.as_ptr(),
        len: bytes.len(),
    };
    let c = Collector::default();
    let r = unsafe {
        jina_net::ffi::send::jina_net_pool_send(
            pool,
            0,
            &b,
            1,
            cs(deployment).as_ptr(),
            false,
            -1,
            0,
            ptr::null(),
            10_000,
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        )
    };
    if r != JINA_NET_OK {
        return Err((r, last_error()));
    }
    Ok(c.wait(1).remove(0))
}

/// `jina_net_pool_options` with the defaults (`jina_net_pool_options_init`).
pub fn pool_options() -> jina_net::ffi::pool_options::jina_net_pool_options {
    use jina_net::ffi::pool_options::{jina_net_pool_options, jina_net_pool_options_init};
    let mut o = unsafe { std::mem::zeroed::<jina_net_pool_options>() };
    assert_eq!(
        unsafe { jina_net_pool_options_init(&mut o, std::mem::size_of::<jina_net_pool_options>()) },
        JINA_NET_OK
    );
    o
}

/// `jina_net_pool_new`; on failure the code and message, having checked the out-parameter was left alone.
pub fn try_new_pool(
    o: &jina_net::ffi::pool_options::jina_net_pool_options,
) -> Result<*mut jina_net::ffi::pool::jina_net_pool, (jina_net_result, String)> {
    let mut pool = ptr::null_mut();
    match unsafe { jina_net::ffi::pool::jina_net_pool_new(o, &mut pool) } {
        JINA_NET_OK => Ok(pool),
        r => {
            assert!(pool.is_null(), "out-parameter untouched on failure");
            Err((r, last_error()))
        }
    }
}

/// `jina_net_pool_add_connection` of a replica of shard 0 (no head).
pub fn add_connection(
    pool: *mut jina_net::ffi::pool::jina_net_pool,
    deployment: &str,
    address: &str,
) -> jina_net_result {
    unsafe {
        jina_net::ffi::pool::jina_net_pool_add_connection(
            pool,
            cs(deployment).as_ptr(),
            cs(address).as_ptr(),
            false,
            0,
            ptr::null_mut(),
        )
    }
}
