//! `jina_net_metadata`: one metadata entry, in both directions — request metadata a caller adds to a
//! send (`jina_net_send_options.metadata`) and the trailing metadata of a response.

use std::ffi::{c_char, CStr};

use super::args;
use super::result::{jina_net_result::*, Failure};
use crate::transport::Metadata;

/// One metadata entry: `key` is NUL-terminated and lower-case; `value` is not NUL-terminated. In a
/// response it is as on the wire (base64 for `-bin` keys); in a request it is the value itself (the
/// library base64-encodes `-bin` values). This struct never changes size (arrays of it are indexed).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_metadata {
    /// Lower-case key, NUL-terminated.
    pub key: *const c_char,
    /// Value bytes.
    pub value: *const u8,
    /// Number of value bytes.
    pub value_len: usize,
}

/// The request metadata of a send: `len` entries at `entries` (NULL only when `len` is 0), checked
/// (`JINA_NET_INVALID_ARGUMENT` names the entry and what is wrong). `None` when there are none.
///
/// # Safety
/// `entries` points to `len` readable entries whose keys are NUL-terminated and whose values hold
/// `value_len` readable bytes.
pub(super) unsafe fn request_metadata(
    entries: *const jina_net_metadata,
    len: usize,
) -> Result<Option<Metadata>, Failure> {
    // SAFETY: the caller's promise.
    let entries = unsafe { args::array(entries, len, "metadata") }?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut metadata = Metadata::new();
    for (i, e) in entries.iter().enumerate() {
        if e.key.is_null() {
            return Err(Failure::null(&format!("metadata[{i}].key")));
        }
        // SAFETY: a NUL-terminated key (the caller's promise).
        let key = unsafe { CStr::from_ptr(e.key) }
            .to_str()
            .map_err(|_| Failure::new(JINA_NET_INVALID_ARGUMENT, format!("metadata[{i}].key is not ASCII")))?;
        // SAFETY: `value_len` readable bytes (the caller's promise).
        let value = unsafe { args::bytes(e.value, e.value_len, format_args!("metadata[{i}].value")) }?;
        metadata
            .append(key, value)
            .map_err(|err| Failure::new(JINA_NET_INVALID_ARGUMENT, format!("metadata[{i}]: {err}")))?;
    }
    Ok(Some(metadata))
}
