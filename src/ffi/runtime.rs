//! The library runtime and version.

use std::ffi::c_char;

use super::result::{boundary, jina_net_result, Failure};
use crate::error::Error;

/// Major version of the library (also `jina_net_version()`).
pub const JINA_NET_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const JINA_NET_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const JINA_NET_VERSION_PATCH: u32 = 0;

static VERSION: &std::ffi::CStr = c"0.1.0";

/// The library version, `"MAJOR.MINOR.PATCH"` (static; never NULL).
#[no_mangle]
pub extern "C" fn jina_net_version() -> *const c_char {
    VERSION.as_ptr()
}

/// Sets the number of worker threads of the library runtime (default: one per core). Only before
/// the runtime starts (the first pool, send or helper starts it): afterwards
/// `JINA_NET_ALREADY_STARTED`. 0 is `JINA_NET_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn jina_net_runtime_init(worker_threads: u32) -> jina_net_result {
    boundary("jina_net_runtime_init", || {
        if worker_threads == 0 {
            return Err(Failure::new(
                jina_net_result::JINA_NET_INVALID_ARGUMENT,
                "worker_threads must be at least 1",
            ));
        }
        if crate::runtime::is_running() {
            return Err(Failure::new(
                jina_net_result::JINA_NET_ALREADY_STARTED,
                "the runtime is already running",
            ));
        }
        crate::runtime::configure(worker_threads as usize).map_err(|e| match e {
            Error::Runtime(m) if crate::runtime::is_running() => {
                Failure::new(jina_net_result::JINA_NET_ALREADY_STARTED, m)
            }
            other => other.into(),
        })
    })
}

/// Shuts the library runtime down: pending sends complete (their callbacks fire, on this thread if
/// need be, with `JINA_NET_RUNTIME_ERROR`), worker threads are joined for at most `timeout_ms`.
/// Afterwards every call that needs the runtime fails with `JINA_NET_RUNTIME_ERROR`; pools must
/// still be freed. Must not be called from a callback. Calling it twice is harmless.
#[no_mangle]
pub extern "C" fn jina_net_runtime_shutdown(timeout_ms: u64) -> jina_net_result {
    boundary("jina_net_runtime_shutdown", || {
        if crate::runtime::in_library_context() {
            return Err(Failure::new(
                jina_net_result::JINA_NET_RUNTIME_ERROR,
                "jina_net_runtime_shutdown called on a library thread (from a callback)",
            ));
        }
        crate::runtime::shutdown(std::time::Duration::from_millis(timeout_ms)).map_err(Failure::from)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_constants_match_cargo() {
        let v = format!(
            "{}.{}.{}",
            super::JINA_NET_VERSION_MAJOR,
            super::JINA_NET_VERSION_MINOR,
            super::JINA_NET_VERSION_PATCH
        );
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        assert_eq!(super::VERSION.to_str().unwrap(), v);
    }
}
