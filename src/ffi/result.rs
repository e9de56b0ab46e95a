//! Result codes, the per-thread last error message, and the panic boundary.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

/// The outcome of a call (and of each target of a send): an `int32_t` in every C ABI.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_result {
    /// Success.
    JINA_NET_OK = 0,
    /// A required pointer argument was NULL.
    JINA_NET_NULL_ARGUMENT = 1,
    /// A string argument was not valid UTF-8.
    JINA_NET_INVALID_UTF8 = 2,
    /// An argument was out of range (unknown enum value, shard id, zero count, ...).
    JINA_NET_INVALID_ARGUMENT = 3,
    /// An address was not `host:port`, `[v6]:port`, `grpc://`, `https://` or `grpcs://host:port`.
    JINA_NET_INVALID_ADDRESS = 4,
    /// Request bytes were not protobuf, kinds were mixed, or the endpoint was not valid metadata.
    JINA_NET_INVALID_REQUEST = 5,
    /// The pool knows no such deployment.
    JINA_NET_UNKNOWN_DEPLOYMENT = 6,
    /// The deployment has no replica for the head / shard asked for.
    JINA_NET_NO_REPLICAS = 7,
    /// A gRPC call failed; the gRPC code and message say how.
    JINA_NET_RPC_ERROR = 8,
    /// The deadline passed before a response came.
    JINA_NET_DEADLINE_EXCEEDED = 9,
    /// The send was cancelled by the caller.
    JINA_NET_CANCELLED = 10,
    /// The pool was closed (before the call, or while the send was pending).
    JINA_NET_POOL_CLOSED = 11,
    /// TLS could not be set up (bad certificates or key), or a call's TLS handshake failed (the
    /// message says why: an untrusted or mismatched server certificate, a server that wants a client
    /// certificate, a server that does not speak TLS).
    JINA_NET_TLS_ERROR = 12,
    /// The runtime could not start, or was shut down.
    JINA_NET_RUNTIME_ERROR = 13,
    /// `jina_net_runtime_init` after the runtime had started.
    JINA_NET_ALREADY_STARTED = 14,
    /// A host that is neither an IP address nor `localhost`.
    JINA_NET_INVALID_HOST = 15,
    /// A server answered with bytes that are not the expected message.
    JINA_NET_INVALID_RESPONSE = 16,
    /// The feature is not available in this build.
    JINA_NET_UNSUPPORTED = 17,
    /// No such send (already completed, or never started) — from `jina_net_pool_cancel`.
    JINA_NET_NOT_FOUND = 18,
    /// The library caught a panic; the message says where. The library stays usable.
    JINA_NET_PANIC = 19,
    /// The Kubernetes API could not be used (kubeconfig, permissions, API server unreachable).
    JINA_NET_KUBERNETES_ERROR = 20,
    /// Every replica of the head or shard had its in-flight limit of calls (`max_in_flight_per_replica`)
    /// and the queue of sends waiting for a slot (`max_queued_sends`) was full; the message names the
    /// deployment and the shard. Nothing was sent for that target.
    JINA_NET_RESOURCE_EXHAUSTED = 21,
}

use jina_net_result::*;

impl jina_net_result {
    /// The code an error maps to.
    pub fn of(error: &Error) -> jina_net_result {
        match error {
            Error::InvalidAddress { .. } | Error::Unresolved { .. } => JINA_NET_INVALID_ADDRESS,
            Error::InvalidHost { .. } => JINA_NET_INVALID_HOST,
            Error::InvalidRequest(_) => JINA_NET_INVALID_REQUEST,
            Error::InvalidArgument(_) => JINA_NET_INVALID_ARGUMENT,
            Error::InvalidResponse { .. } => JINA_NET_INVALID_RESPONSE,
            Error::UnknownDeployment { .. } => JINA_NET_UNKNOWN_DEPLOYMENT,
            Error::NoReplicas { .. } => JINA_NET_NO_REPLICAS,
            Error::Rpc(e) if e.tls => JINA_NET_TLS_ERROR,
            Error::Rpc(e) => match e.code {
                tonic::Code::DeadlineExceeded => JINA_NET_DEADLINE_EXCEEDED,
                tonic::Code::Cancelled => JINA_NET_CANCELLED,
                _ => JINA_NET_RPC_ERROR,
            },
            Error::Tls { .. } | Error::TlsSetup(_) => JINA_NET_TLS_ERROR,
            Error::PoolClosed => JINA_NET_POOL_CLOSED,
            Error::NotReady { .. } => JINA_NET_DEADLINE_EXCEEDED,
            Error::Unsupported(_) => JINA_NET_UNSUPPORTED,
            Error::Runtime(_) => JINA_NET_RUNTIME_ERROR,
            Error::Kubernetes(_) => JINA_NET_KUBERNETES_ERROR,
            Error::Panic(_) => JINA_NET_PANIC,
            Error::ResourceExhausted { .. } => JINA_NET_RESOURCE_EXHAUSTED,
        }
    }

    fn name(self) -> &'static CStr {
        match self {
            JINA_NET_OK => c"JINA_NET_OK",
            JINA_NET_NULL_ARGUMENT => c"JINA_NET_NULL_ARGUMENT",
            JINA_NET_INVALID_UTF8 => c"JINA_NET_INVALID_UTF8",
            JINA_NET_INVALID_ARGUMENT => c"JINA_NET_INVALID_ARGUMENT",
            JINA_NET_INVALID_ADDRESS => c"JINA_NET_INVALID_ADDRESS",
            JINA_NET_INVALID_REQUEST => c"JINA_NET_INVALID_REQUEST",
            JINA_NET_UNKNOWN_DEPLOYMENT => c"JINA_NET_UNKNOWN_DEPLOYMENT",
            JINA_NET_NO_REPLICAS => c"JINA_NET_NO_REPLICAS",
            JINA_NET_RPC_ERROR => c"JINA_NET_RPC_ERROR",
            JINA_NET_DEADLINE_EXCEEDED => c"JINA_NET_DEADLINE_EXCEEDED",
            JINA_NET_CANCELLED => c"JINA_NET_CANCELLED",
            JINA_NET_POOL_CLOSED => c"JINA_NET_POOL_CLOSED",
            JINA_NET_TLS_ERROR => c"JINA_NET_TLS_ERROR",
            JINA_NET_RUNTIME_ERROR => c"JINA_NET_RUNTIME_ERROR",
            JINA_NET_ALREADY_STARTED => c"JINA_NET_ALREADY_STARTED",
            JINA_NET_INVALID_HOST => c"JINA_NET_INVALID_HOST",
            JINA_NET_INVALID_RESPONSE => c"JINA_NET_INVALID_RESPONSE",
            JINA_NET_UNSUPPORTED => c"JINA_NET_UNSUPPORTED",
            JINA_NET_NOT_FOUND => c"JINA_NET_NOT_FOUND",
            JINA_NET_PANIC => c"JINA_NET_PANIC",
            JINA_NET_KUBERNETES_ERROR => c"JINA_NET_KUBERNETES_ERROR",
            JINA_NET_RESOURCE_EXHAUSTED => c"JINA_NET_RESOURCE_EXHAUSTED",
        }
    }
}

/// A failure: its code, the message that goes with it and, for a failed call, its gRPC status code.
#[derive(Debug)]
pub struct Failure {
    pub code: jina_net_result,
    pub message: String,
    pub grpc_code: i32,
}

impl Failure {
    pub fn new(code: jina_net_result, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            grpc_code: -1,
        }
    }

    /// A NULL required argument.
    pub fn null(what: &str) -> Failure {
        Failure::new(JINA_NET_NULL_ARGUMENT, format!("{what} is NULL"))
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            code: jina_net_result::of(&error),
            message: error.to_string(),
            grpc_code: error.grpc_code().map_or(-1, |c| c as i32),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static LAST_GRPC_CODE: std::cell::Cell<i32> = const { std::cell::Cell::new(-1) };
}

pub(crate) fn set_last_error(message: &str, grpc_code: i32) {
    LAST_ERROR.with(|m| {
        let mut m = m.borrow_mut();
        m.clear();
        m.push_str(message);
    });
    LAST_GRPC_CODE.with(|c| c.set(grpc_code));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

/// Runs an `extern "C"` body: a failure sets the thread's last error and returns its code; a panic
/// is caught and becomes `JINA_NET_PANIC`.
pub(crate) fn boundary(function: &str, body: impl FnOnce() -> Result<(), Failure>) -> jina_net_result {
    super::alloc::enable();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => JINA_NET_OK,
        Ok(Err(failure)) => {
            set_last_error(&format!("{function}: {}", failure.message), failure.grpc_code);
            failure.code
        }
        Err(payload) => {
            set_last_error(&format!("{function}: panic: {}", panic_message(&*payload)), -1);
            JINA_NET_PANIC
        }
    }
}

/// Runs a body that returns nothing (the `_free` functions): a panic is caught and dropped.
pub(crate) fn boundary_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// Runs a body that returns a value, with `fallback` on panic.
pub(crate) fn boundary_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The name of a result code (`"JINA_NET_OK"`, ...), a static NUL-terminated string; never NULL
/// (`"JINA_NET_UNKNOWN_RESULT"` for a value that is not a code).
#[no_mangle]
pub extern "C" fn jina_net_result_name(result: u32) -> *const c_char {
    boundary_value(c"JINA_NET_UNKNOWN_RESULT".as_ptr(), || {
        let code = [
            JINA_NET_OK,
            JINA_NET_NULL_ARGUMENT,
            JINA_NET_INVALID_UTF8,
            JINA_NET_INVALID_ARGUMENT,
            JINA_NET_INVALID_ADDRESS,
            JINA_NET_INVALID_REQUEST,
            JINA_NET_UNKNOWN_DEPLOYMENT,
            JINA_NET_NO_REPLICAS,
            JINA_NET_RPC_ERROR,
            JINA_NET_DEADLINE_EXCEEDED,
            JINA_NET_CANCELLED,
            JINA_NET_POOL_CLOSED,
            JINA_NET_TLS_ERROR,
            JINA_NET_RUNTIME_ERROR,
            JINA_NET_ALREADY_STARTED,
            JINA_NET_INVALID_HOST,
            JINA_NET_INVALID_RESPONSE,
            JINA_NET_UNSUPPORTED,
            JINA_NET_NOT_FOUND,
            JINA_NET_PANIC,
            JINA_NET_KUBERNETES_ERROR,
            JINA_NET_RESOURCE_EXHAUSTED,
        ]
        .into_iter()
        .find(|c| *c as u32 == result);
        code.map_or(c"JINA_NET_UNKNOWN_RESULT".as_ptr(), |c| c.name().as_ptr())
    })
}

/// Copies the message of the last failed call made on this thread into `buf` (at most `len` bytes,
/// NUL included; truncated to fit, always NUL-terminated when `len > 0`) and returns the full length
/// of the message without its NUL (so a caller can size a buffer: call with `buf = NULL, len = 0`).
/// Returns 0 when no call has failed on this thread. The message names the function and, where it
/// applies, the deployment, the address and the gRPC status.
///
/// # Safety
/// `buf` must point to `len` writable bytes, or be NULL with `len == 0`.
#[no_mangle]
pub unsafe extern "C" fn jina_net_last_error_message(buf: *mut c_char, len: usize) -> usize {
    boundary_value(0, || {
        LAST_ERROR.with(|m| {
            let m = m.borrow();
            if !buf.is_null() && len > 0 {
                let n = m.len().min(len - 1);
                // SAFETY: the caller gives `len` writable bytes at `buf`; n + 1 <= len.
                unsafe {
                    std::ptr::copy_nonoverlapping(m.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            m.len()
        })
    })
}

/// The gRPC status code of the last failed call made on this thread, when that failure was a gRPC
/// call (e.g. `JINA_NET_RPC_ERROR` from `jina_net_send_request_sync`: 14 = UNAVAILABLE); -1 when it
/// was not, or when no call has failed on this thread.
#[no_mangle]
pub extern "C" fn jina_net_last_error_grpc_code() -> i32 {
    boundary_value(-1, || LAST_GRPC_CODE.with(|c| c.get()))
}
