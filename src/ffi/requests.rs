//! Request buffers from C: their kind, and the checked `Request`s made from them, either copied
//! (`jina_net_pool_send`, the one-shot helpers) or taken over without a copy (`jina_net_pool_send_owned`).

use std::ffi::c_void;

use bytes::Bytes;

use super::args::{self, jina_net_bytes};
use super::result::{jina_net_result::*, Failure};
use crate::request::{Request, RequestKind};

/// The kind of the request bytes given to a send.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_request_kind {
    /// Serialized `jina.DataRequestProto`s.
    JINA_NET_REQUEST_DATA = 0,
    /// One serialized `jina.ControlRequestProto`.
    JINA_NET_REQUEST_CONTROL = 1,
}

pub(crate) fn request_kind(kind: u32) -> Result<RequestKind, Failure> {
    match kind {
        0 => Ok(RequestKind::Data),
        1 => Ok(RequestKind::Control),
        other => Err(Failure::new(
            JINA_NET_INVALID_ARGUMENT,
            format!("unknown request kind {other} (0 = data, 1 = control)"),
        )),
    }
}

/// Copies C's request buffers into owned, checked requests (the one copy of the send path).
pub(crate) unsafe fn requests(kind: u32, items: *const jina_net_bytes, n: usize) -> Result<Vec<Request>, Failure> {
    let kind = request_kind(kind)?;
    // SAFETY: the caller passes `n` readable items.
    let items = unsafe { args::array(items, n, "requests") }?;
    if items.is_empty() {
        return Err(Failure::new(
            JINA_NET_INVALID_ARGUMENT,
            "no request given (requests_len is 0)",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, b)| {
            // SAFETY: each item promises `len` readable bytes.
            let bytes = unsafe { args::bytes(b.data, b.len, format_args!("requests[{i}].data")) }?;
            let request = Request {
                kind,
                bytes: Bytes::copy_from_slice(bytes),
            };
            request
                .check()
                .map_err(|e| Failure::new(JINA_NET_INVALID_REQUEST, format!("requests[{i}]: {e}")))?;
            Ok(request)
        })
        .collect()
}

/// Frees a request buffer handed to `jina_net_pool_send_owned`: called exactly once per buffer, with
/// the `free_ctx`, data pointer and length given, on whichever thread releases it last (a library
/// runtime thread, or the thread calling `jina_net_pool_send_owned` when it fails). Must be thread-safe
/// and must not call back into the library.
pub type jina_net_free_fn = Option<unsafe extern "C" fn(free_ctx: *mut c_void, data: *const u8, len: usize)>;

/// A request buffer the library owns: freed through the caller's function when the last reference
/// (the payload, a retry) is gone.
struct OwnedBuffer {
    data: *const u8,
    len: usize,
    free: unsafe extern "C" fn(*mut c_void, *const u8, usize),
    ctx: *mut c_void,
}

// SAFETY: the caller hands the buffer over (it does not touch it until `free` is called) and promises
// that `free` may be called from any thread.

unsafe impl Send for OwnedBuffer {}

// SAFETY: the buffer is only read while owned.
unsafe impl Sync for OwnedBuffer {}

impl AsRef<[u8]> for OwnedBuffer {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            &[]
        } else {
            // SAFETY: the caller gave `len` readable bytes at `data`, valid until `free`.
            unsafe { std::slice::from_raw_parts(self.data, self.len) }
        }
    }
}

impl Drop for OwnedBuffer {
    fn drop(&mut self) {
        // SAFETY: called exactly once, as the caller's contract asks.
        unsafe { (self.free)(self.ctx, self.data, self.len) }
    }
}

/// Takes ownership of every non-NULL buffer first, so that whatever fails afterwards frees each of
/// them exactly once; then checks kinds and bytes as `requests` does, without copying.
pub(super) unsafe fn owned_requests(
    kind: u32,
    items: *const jina_net_bytes,
    n: usize,
    free: unsafe extern "C" fn(*mut c_void, *const u8, usize),
    ctx: *mut c_void,
) -> Result<Vec<Request>, Failure> {
    // SAFETY: the caller passes `n` readable items.
    let items = unsafe { args::array(items, n, "requests") }?;
    let owned: Vec<Option<Bytes>> = items
        .iter()
        .map(|b| {
            (!b.data.is_null()).then(|| {
                Bytes::from_owner(OwnedBuffer {
                    data: b.data,
                    len: b.len,
                    free,
                    ctx,
                })
            })
        })
        .collect();
    let kind = request_kind(kind)?;
    if owned.is_empty() {
        return Err(Failure::new(
            JINA_NET_INVALID_ARGUMENT,
            "no request given (requests_len is 0)",
        ));
    }
    owned
        .into_iter()
        .zip(items)
        .enumerate()
        .map(|(i, (bytes, item))| {
            let bytes = match bytes {
                Some(b) => b,
                None if item.len == 0 => Bytes::new(),
                None => {
                    return Err(Failure::new(
                        JINA_NET_NULL_ARGUMENT,
                        format!("requests[{i}].data is NULL but its length is {}", item.len),
                    ))
                }
            };
            let request = Request { kind, bytes };
            request
                .check()
                .map_err(|e| Failure::new(JINA_NET_INVALID_REQUEST, format!("requests[{i}]: {e}")))?;
            Ok(request)
        })
        .collect()
}
