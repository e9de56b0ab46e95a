//! `jina_net_send_options`: the routing and settings of one send, and how many shards it goes to.

use std::ffi::c_char;

use super::args::JINA_NET_NO_SHARD;
use super::metadata::jina_net_metadata;
use super::result::{boundary, jina_net_result, jina_net_result::*, Failure};
use super::sized::{read_sized, write_sized, SizedStruct};
use crate::pool::Polling;

/// How many shards of a deployment a send goes to (`polling` in jina).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_shards {
    /// One target: the head, the given shard, or the deployment's shards in turn.
    JINA_NET_SHARDS_ANY = 0,
    /// One send per shard (head and shard id are ignored).
    JINA_NET_SHARDS_ALL = 1,
}

pub(super) fn polling(value: u32) -> Result<Polling, Failure> {
    match value {
        0 => Ok(Polling::Any),
        1 => Ok(Polling::All),
        other => Err(Failure::new(
            JINA_NET_INVALID_ARGUMENT,
            format!("unknown shards value {other} (0 = JINA_NET_SHARDS_ANY, 1 = JINA_NET_SHARDS_ALL)"),
        )),
    }
}

/// Routing and settings of one send. Initialise with `jina_net_send_options_init(&o, sizeof o)`, then
/// change what you need. `struct_size` says how many bytes of the struct the caller's header
/// declares: the library reads no more, and a field the caller's struct lacks takes its default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_send_options {
    /// `sizeof(jina_net_send_options)` in the caller's header; set by `jina_net_send_options_init`.
    pub struct_size: usize,
    /// A `jina_net_request_kind` (default `JINA_NET_REQUEST_DATA`).
    pub kind: u32,
    /// Send to the deployment's head (default false).
    pub head: bool,
    /// The shard (default `JINA_NET_NO_SHARD` = the deployment's shards in turn).
    pub shard_id: i64,
    /// A `jina_net_shards` (default `JINA_NET_SHARDS_ANY`).
    pub shards: u32,
    /// The `endpoint` metadata of data requests (default NULL = none). Borrowed for the call.
    pub endpoint: *const c_char,
    /// Deadline of the whole send, retries and hedges included, in ms (default 0 = the pool's).
    pub timeout_ms: u64,
    /// The send may be performed more than once (default false). Only idempotent sends are hedged,
    /// when the pool hedges (`jina_net_pool_options.max_hedges`); the callback still fires once.
    pub idempotent: bool,
    /// Request metadata sent with every attempt of the send (retries, fail-over, hedges): an
    /// authorization header, a request id, `traceparent` (default NULL). `metadata_len` entries,
    /// copied before the send function returns. Keys are lower-case ASCII (digits, a-z, `_`, `-`,
    /// `.`); a key ending in `-bin` takes any bytes (the library base64-encodes them), other values
    /// are printable ASCII and space. Reserved names (`grpc-*`, `te`, `content-type`, `user-agent`,
    /// HTTP/2 connection headers, and `endpoint` when the send sets `endpoint`) and invalid bytes are
    /// refused with `JINA_NET_INVALID_ARGUMENT` before anything is sent.
    pub metadata: *const jina_net_metadata,
    /// The number of `metadata` entries.
    pub metadata_len: usize,
}

// SAFETY: a `#[repr(C)]` struct starting with `struct_size`; integers, bools and pointers.
unsafe impl SizedStruct for jina_net_send_options {
    const NAME: &'static str = "jina_net_send_options";
    const INIT: &'static str = "jina_net_send_options_init";
}

/// Fills the caller's `struct_size` bytes at `options` with the defaults (data request, shard
/// rotation, ANY, no endpoint, the pool's timeout, not idempotent, no metadata) and sets
/// `options->struct_size`: `jina_net_send_options_init(&o, sizeof o)`. `JINA_NET_NULL_ARGUMENT` for
/// NULL, `JINA_NET_INVALID_ARGUMENT` when `struct_size` is smaller than a `size_t`.
///
/// # Safety
/// `options` must be NULL or point to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn jina_net_send_options_init(
    options: *mut jina_net_send_options,
    struct_size: usize,
) -> jina_net_result {
    boundary("jina_net_send_options_init", || {
        // SAFETY: the caller gives `struct_size` writable bytes.
        unsafe { write_sized(options, struct_size, defaults()) }
    })
}

/// The options a send runs with: the defaults when `options` is NULL, else the caller's struct.
///
/// # Safety
/// `options` is NULL or a struct with `struct_size` readable bytes.
pub(super) unsafe fn send_options(options: *const jina_net_send_options) -> Result<jina_net_send_options, Failure> {
    if options.is_null() {
        return Ok(defaults());
    }
    // SAFETY: the caller's promise.
    unsafe { read_sized(options, defaults()) }
}

pub(super) fn defaults() -> jina_net_send_options {
    jina_net_send_options {
        struct_size: std::mem::size_of::<jina_net_send_options>(),
        kind: 0,
        head: false,
        shard_id: JINA_NET_NO_SHARD,
        shards: 0,
        endpoint: std::ptr::null(),
        timeout_ms: 0,
        idempotent: false,
        metadata: std::ptr::null(),
        metadata_len: 0,
    }
}
