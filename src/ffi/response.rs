//! `jina_net_response`: a response owned by C (from the blocking helpers, or retained from a callback).
//! Its body is shared with the receive buffer, not copied.

use std::ffi::{c_char, CString};

use super::args::out;
use super::result::{boundary, boundary_void, jina_net_result, Failure};
use crate::replica::Response;

/// An owned response: body, trailing metadata and the address that answered.
/// Free with `jina_net_response_free`.
pub struct jina_net_response {
    pub(crate) inner: Response,
    address: CString,
    keys: Vec<CString>,
    values: Vec<Vec<u8>>,
}

impl jina_net_response {
    pub(crate) fn new(inner: Response) -> Box<jina_net_response> {
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for entry in inner.trailers.iter() {
            let (key, value) = match entry {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => (k.as_str(), v.as_encoded_bytes().to_vec()),
                tonic::metadata::KeyAndValueRef::Binary(k, v) => (k.as_str(), v.as_encoded_bytes().to_vec()),
            };
            keys.push(CString::new(key).unwrap_or_default());
            values.push(value);
        }
        let address = CString::new(inner.address.as_bytes()).unwrap_or_default();
        Box::new(jina_net_response {
            inner,
            address,
            keys,
            values,
        })
    }
}

/// The response body (a serialized `DataRequestProto` or `ControlRequestProto`): `*out_data` points
/// into the response and stays valid until `jina_net_response_free`.
///
/// # Safety
/// `response` must be a live response; out-parameters must be writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_response_body(
    response: *const jina_net_response,
    out_data: *mut *const u8,
    out_len: *mut usize,
) -> jina_net_result {
    boundary("jina_net_response_body", || {
        // SAFETY: the caller passes a live response or NULL.
        let response = unsafe { response.as_ref() }.ok_or_else(|| Failure::null("response"))?;
        let (d, l) = (out(out_data, "out_data")?, out(out_len, "out_len")?);
        *d = response.inner.body.as_ptr();
        *l = response.inner.body.len();
        Ok(())
    })
}

/// `host:port` of the replica that answered (NUL-terminated, owned by the response); NULL if
/// `response` is NULL.
///
/// # Safety
/// `response` must be a live response or NULL.
#[no_mangle]
pub unsafe extern "C" fn jina_net_response_address(response: *const jina_net_response) -> *const c_char {
    // SAFETY: the caller passes a live response or NULL.
    super::result::boundary_value(std::ptr::null(), || {
        unsafe { response.as_ref() }.map_or(std::ptr::null(), |r| r.address.as_ptr())
    })
}

/// The number of trailing metadata entries (0 if `response` is NULL).
///
/// # Safety
/// `response` must be a live response or NULL.
#[no_mangle]
pub unsafe extern "C" fn jina_net_response_metadata_count(response: *const jina_net_response) -> usize {
    // SAFETY: the caller passes a live response or NULL.
    super::result::boundary_value(0, || unsafe { response.as_ref() }.map_or(0, |r| r.keys.len()))
}

/// Trailing metadata entry `index`: `*out_key` is a NUL-terminated lower-case key, `*out_value` /
/// `*out_value_len` its value as on the wire (base64 for `-bin` keys; not NUL-terminated). Both stay valid until
/// `jina_net_response_free`. `JINA_NET_INVALID_ARGUMENT` when `index` is out of range.
///
/// # Safety
/// `response` must be a live response; out-parameters must be writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_response_metadata(
    response: *const jina_net_response,
    index: usize,
    out_key: *mut *const c_char,
    out_value: *mut *const u8,
    out_value_len: *mut usize,
) -> jina_net_result {
    boundary("jina_net_response_metadata", || {
        // SAFETY: the caller passes a live response or NULL.
        let response = unsafe { response.as_ref() }.ok_or_else(|| Failure::null("response"))?;
        let (k, v, l) = (
            out(out_key, "out_key")?,
            out(out_value, "out_value")?,
            out(out_value_len, "out_value_len")?,
        );
        let (key, value) = response
            .keys
            .get(index)
            .zip(response.values.get(index))
            .ok_or_else(|| {
                Failure::new(
                    jina_net_result::JINA_NET_INVALID_ARGUMENT,
                    format!("metadata index {index} out of range (count {})", response.keys.len()),
                )
            })?;
        *k = key.as_ptr();
        *v = value.as_ptr();
        *l = value.len();
        Ok(())
    })
}

/// Frees a response. NULL is ignored.
///
/// # Safety
/// `response` must come from this library and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn jina_net_response_free(response: *mut jina_net_response) {
    boundary_void(|| {
        if !response.is_null() {
            // SAFETY: the caller hands back ownership of a response the library boxed.
            drop(unsafe { Box::from_raw(response) });
        }
    })
}
