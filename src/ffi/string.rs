//! Strings the library hands to C, and `jina_net_string_free`.

use std::ffi::{c_char, CString};

use super::result::boundary_void;

/// Frees a string the library returned. NULL is ignored.
///
/// # Safety
/// `s` must come from this library and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn jina_net_string_free(s: *mut c_char) {
    boundary_void(|| {
        if !s.is_null() {
            // SAFETY: the caller hands back a string the library made with CString::into_raw.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
