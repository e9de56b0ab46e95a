//! Host checks and the default gRPC options, for bindings to read.

use std::ffi::c_char;

use super::args::{self, out};
use super::result::{boundary, jina_net_result};

/// Whether `host` is this machine: `localhost`, `0.0.0.0` and loopback IPs are; other IPs are not;
/// any other name is `JINA_NET_INVALID_HOST` (as jina raises).
///
/// # Safety
/// `host` NUL-terminated; `out_local` writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_host_is_local(host: *const c_char, out_local: *mut bool) -> jina_net_result {
    boundary("jina_net_host_is_local", || {
        let o = out(out_local, "out_local")?;
        // SAFETY: NUL-terminated (caller's promise).
        *o = crate::host::host_is_local(unsafe { args::string(host, "host") }?)?;
        Ok(())
    })
}

/// jina's `is_remote_local_connection(first, second)`: true only when `first` is global and `second`
/// is private or loopback (or `localhost`).
///
/// # Safety
/// Strings NUL-terminated; `out_result` writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_is_remote_local_connection(
    first: *const c_char,
    second: *const c_char,
    out_result: *mut bool,
) -> jina_net_result {
    boundary("jina_net_is_remote_local_connection", || {
        let o = out(out_result, "out_result")?;
        // SAFETY: NUL-terminated (caller's promise).
        let (a, b) = unsafe { (args::string(first, "first")?, args::string(second, "second")?) };
        *o = crate::host::is_remote_local_connection(a, b);
        Ok(())
    })
}

/// One gRPC channel option, in gRPC core's naming.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_grpc_option {
    /// e.g. `"grpc.max_send_message_length"`, static.
    pub name: *const c_char,
    /// The value; -1 = unlimited.
    pub value: i64,
}

// SAFETY: the pointers are to static, immutable C strings.
unsafe impl Sync for jina_net_grpc_option {}

static DEFAULT_GRPC_OPTIONS: [jina_net_grpc_option; 2] = [
    jina_net_grpc_option {
        name: c"grpc.max_send_message_length".as_ptr(),
        value: -1,
    },
    jina_net_grpc_option {
        name: c"grpc.max_receive_message_length".as_ptr(),
        value: -1,
    },
];

/// jina's default gRPC options (unlimited message sizes), as a static array of `*out_len` entries.
/// Never NULL; nothing to free.
///
/// # Safety
/// `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_default_grpc_options(out_len: *mut usize) -> *const jina_net_grpc_option {
    super::result::boundary_value(DEFAULT_GRPC_OPTIONS.as_ptr(), || {
        // SAFETY: NULL or writable.
        if let Some(l) = unsafe { out_len.as_mut() } {
            *l = DEFAULT_GRPC_OPTIONS.len();
        }
        DEFAULT_GRPC_OPTIONS.as_ptr()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn static_options_match_the_core() {
        let core = crate::policy::default_grpc_options();
        assert_eq!(core.len(), super::DEFAULT_GRPC_OPTIONS.len());
        for (c, o) in core.iter().zip(super::DEFAULT_GRPC_OPTIONS.iter()) {
            // SAFETY: static C strings.
            assert_eq!(unsafe { std::ffi::CStr::from_ptr(o.name) }.to_str().unwrap(), c.0);
            assert_eq!(o.value, c.1);
        }
    }
}
