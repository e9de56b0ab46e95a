//! Checking what C hands in: pointers, strings, byte buffers, optional shard ids, enum values.

use std::ffi::{c_char, CStr};

use super::result::{jina_net_result::*, Failure};

/// "No shard id" for the `int64_t shard_id` parameters.
pub const JINA_NET_NO_SHARD: i64 = -1;

/// A borrowed byte buffer (`data` may be NULL only when `len` is 0).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_bytes {
    /// First byte.
    pub data: *const u8,
    /// Number of bytes.
    pub len: usize,
}

/// A required NUL-terminated UTF-8 string.
pub(crate) unsafe fn string<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::new(JINA_NET_NULL_ARGUMENT, format!("{what} is NULL")));
    }
    // SAFETY: the caller promises a NUL-terminated string that outlives the call.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map_err(|e| Failure::new(JINA_NET_INVALID_UTF8, format!("{what} is not valid UTF-8: {e}")))
}

/// An optional string: NULL is `None`.
pub(crate) unsafe fn optional_string<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: as for `string`.
        unsafe { string(ptr, what) }.map(Some)
    }
}

/// A byte buffer; `data` may be NULL only when `len` is 0. `what` names it in the error (formatted
/// only then).
pub(crate) unsafe fn bytes<'a>(data: *const u8, len: usize, what: impl std::fmt::Display) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Failure::new(
            JINA_NET_NULL_ARGUMENT,
            format!("{what} is NULL but its length is {len}"),
        ));
    }
    // SAFETY: the caller promises `len` readable bytes at `data` for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// An array of `n` items; NULL is refused unless `n` is 0.
pub(crate) unsafe fn array<'a, T>(ptr: *const T, n: usize, what: &str) -> Result<&'a [T], Failure> {
    if n == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::new(
            JINA_NET_NULL_ARGUMENT,
            format!("{what} is NULL but its count is {n}"),
        ));
    }
    // SAFETY: the caller promises `n` readable items at `ptr`.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// A required out-parameter.
pub(crate) fn out<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: a non-NULL out-parameter points to writable, properly aligned storage (caller's promise).
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::new(JINA_NET_NULL_ARGUMENT, format!("{what} is NULL")))
}

/// An optional out-parameter: NULL = not wanted.
pub(crate) fn out_optional<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    // SAFETY: a non-NULL out-parameter points to writable, properly aligned storage (caller's promise).
    unsafe { ptr.as_mut() }
}

/// `int64_t shard_id`: negative = none, else a `u32`.
pub(crate) fn shard_id(value: i64) -> Result<Option<u32>, Failure> {
    if value < 0 {
        return Ok(None);
    }
    u32::try_from(value).map(Some).map_err(|_| {
        Failure::new(
            JINA_NET_INVALID_ARGUMENT,
            format!("shard_id {value} is larger than 2^32-1"),
        )
    })
}

/// A millisecond count, 0 = `None`.
pub(crate) fn millis(value: u64) -> Option<std::time::Duration> {
    (value > 0).then(|| std::time::Duration::from_millis(value))
}
