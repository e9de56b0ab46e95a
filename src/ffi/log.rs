//! `jina_net_log_set_callback`: the library's `tracing` events, forwarded to C.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use tracing::level_filters::LevelFilter;
use tracing::Level;

use super::result::{boundary, jina_net_result, Failure};
use crate::log::{set_sink, LogSink};

/// Log levels, most severe first (`max_level` of `jina_net_log_set_callback`, `level` of the callback).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_log_level {
    /// No events (as `max_level`: removes the callback).
    JINA_NET_LOG_OFF = 0,
    /// Errors.
    JINA_NET_LOG_ERROR = 1,
    /// Warnings.
    JINA_NET_LOG_WARN = 2,
    /// Information.
    JINA_NET_LOG_INFO = 3,
    /// Debugging (the library's retries and hedges, tonic's and h2's connection events).
    JINA_NET_LOG_DEBUG = 4,
    /// Everything, down to h2 frames.
    JINA_NET_LOG_TRACE = 5,
}

/// A log callback: `level` (a `jina_net_log_level`), `target` (the module that emitted the event,
/// e.g. `jina_net::send`, `h2::proto::connection`) and `message` (the event's message followed by
/// its fields as ` name=value`), NUL-terminated and valid only during the call.
pub type jina_net_log_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: u32, target: *const c_char, message: *const c_char)>;

struct CSink {
    callback: unsafe extern "C" fn(*mut c_void, u32, *const c_char, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: the header documents that the callback is called from library threads, several at once.
unsafe impl Send for CSink {}
// SAFETY: as above; the library never dereferences user_data.
unsafe impl Sync for CSink {}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

impl LogSink for CSink {
    fn log(&self, level: Level, target: &str, message: &str) {
        let level = match level {
            Level::ERROR => 1,
            Level::WARN => 2,
            Level::INFO => 3,
            Level::DEBUG => 4,
            Level::TRACE => 5,
        };
        let (target, message) = (c_string(target), c_string(message));
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: checked non-NULL when set; the strings live across the call.
            unsafe { (self.callback)(self.user_data, level, target.as_ptr(), message.as_ptr()) }
        });
    }
}

/// Sets the log callback: `callback(user_data, level, target, message)` receives the library's
/// `tracing` events (its own, tonic's, h2's, hyper's) at `max_level` (a `jina_net_log_level`) and
/// more severe. `callback` NULL or `max_level` `JINA_NET_LOG_OFF` removes it; with no callback set,
/// events cost nothing. One callback per process; setting one replaces the previous one. When this
/// returns, the previous callback is no longer called and no call to it is running.
///
/// Threads: the callback runs synchronously on the library runtime thread that emitted the event
/// (so on several threads at once), or for a caller-driven pool on the thread inside
/// `jina_net_pool_poll`, and must return promptly; it must not call
/// `jina_net_log_set_callback` (that fails there with `JINA_NET_RUNTIME_ERROR`) nor the blocking
/// `_sync` functions; events emitted while it runs on the same thread are dropped. Events of
/// threads that are not the library's (the caller's, inside a library call) are not forwarded.
/// The forwarding is installed on the runtime's threads when the C ABI starts the runtime and the
/// process has no Rust `tracing` subscriber of its own (always so for C, C++ and Go programs).
/// `max_level` above `JINA_NET_LOG_TRACE` is `JINA_NET_INVALID_ARGUMENT`.
///
/// # Safety
/// `callback` NULL or a function safe to call from any thread until it is replaced; `user_data` is
/// handed back untouched.
#[no_mangle]
pub unsafe extern "C" fn jina_net_log_set_callback(
    callback: jina_net_log_callback,
    user_data: *mut c_void,
    max_level: u32,
) -> jina_net_result {
    boundary("jina_net_log_set_callback", || {
        let level = match max_level {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            5 => LevelFilter::TRACE,
            other => {
                return Err(Failure::new(
                    jina_net_result::JINA_NET_INVALID_ARGUMENT,
                    format!("unknown max_level {other} (0 = OFF .. 5 = TRACE)"),
                ))
            }
        };
        // The forwarding is what the runtime's threads get when the C ABI starts it.
        crate::runtime::silence_tracing_on_library_threads();
        let sink = callback.map(|callback| Arc::new(CSink { callback, user_data }) as Arc<dyn LogSink>);
        if set_sink(sink, level) {
            Ok(())
        } else {
            Err(Failure::new(
                jina_net_result::JINA_NET_RUNTIME_ERROR,
                "jina_net_log_set_callback called from the log callback",
            ))
        }
    })
}
