//! Request bytes for the common case, built without a protobuf library on the caller's side:
//! `jina_net_request_builder_*` (a `DataRequestProto` from documents' text or bytes, an endpoint,
//! parameters as JSON) and `jina_net_control_request_build` (STATUS / ACTIVATE / DEACTIVATE). The
//! encoding is `crate::data_request`'s and `crate::control`'s; this file only checks and wraps.

use std::ffi::c_char;

use prost::Message;

use super::args::{self, out};
use super::result::{boundary, boundary_void, jina_net_result, jina_net_result::*, Failure};
use crate::control::{control_request, worker_control_request};
use crate::data_request::DataRequestBuilder;
use crate::proto::Command;

/// The command of a control request (`jina.ControlRequestProto.Command`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_control_command {
    /// Is the runtime there? Answered by every head and worker.
    JINA_NET_CONTROL_STATUS = 0,
    /// Register a worker with a head.
    JINA_NET_CONTROL_ACTIVATE = 1,
    /// Take a worker out of a head.
    JINA_NET_CONTROL_DEACTIVATE = 2,
}

/// A `jina.DataRequestProto` being built: documents, endpoint, parameters, request id. Made by
/// `jina_net_request_builder_new`, freed with `jina_net_request_builder_free`. Not thread-safe: use
/// one builder from one thread at a time.
pub struct jina_net_request_builder {
    inner: DataRequestBuilder,
}

/// Hands bytes to C as a boxed slice: freed by `jina_net_request_bytes_free(data, len)`.
fn hand_out(bytes: Vec<u8>, out_data: &mut *mut u8, out_len: &mut usize) {
    let boxed = bytes.into_boxed_slice();
    *out_len = boxed.len();
    *out_data = Box::into_raw(boxed).cast::<u8>();
}

unsafe fn builder_mut<'a>(builder: *mut jina_net_request_builder) -> Result<&'a mut DataRequestBuilder, Failure> {
    // SAFETY: the caller passes a live builder or NULL.
    unsafe { builder.as_mut() }
        .map(|b| &mut b.inner)
        .ok_or_else(|| Failure::null("builder"))
}

/// Makes an empty data request builder in `*out_builder`: no documents, no endpoint, no parameters,
/// a random request id. Free it with `jina_net_request_builder_free`.
///
/// # Safety
/// `out_builder` must be writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_builder_new(
    out_builder: *mut *mut jina_net_request_builder,
) -> jina_net_result {
    boundary("jina_net_request_builder_new", || {
        let out_builder = out(out_builder, "out_builder")?;
        *out_builder = Box::into_raw(Box::new(jina_net_request_builder {
            inner: DataRequestBuilder::new(),
        }));
        Ok(())
    })
}

/// Appends a document whose content is `text` (`DocumentProto.text`, NUL-terminated UTF-8); its id
/// is 32 random hex digits, as docarray's.
///
/// # Safety
/// `builder` must be a live builder; `text` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_builder_add_text(
    builder: *mut jina_net_request_builder,
    text: *const c_char,
) -> jina_net_result {
    boundary("jina_net_request_builder_add_text", || {
        // SAFETY: the caller's promises above.
        let builder = unsafe { builder_mut(builder) }?;
        let text = unsafe { args::string(text, "text") }?;
        builder.add_text(text);
        Ok(())
    })
}

/// Appends a document whose content is `len` bytes at `data` (`DocumentProto.blob`, copied; `data`
/// may be NULL when `len` is 0), with `mime_type` (e.g. `"image/png"`; NULL = none) and a random id.
///
/// # Safety
/// `builder` must be a live builder; `data` readable for `len` bytes; `mime_type` NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_builder_add_bytes(
    builder: *mut jina_net_request_builder,
    data: *const u8,
    len: usize,
    mime_type: *const c_char,
) -> jina_net_result {
    boundary("jina_net_request_builder_add_bytes", || {
        // SAFETY: the caller's promises above.
        let builder = unsafe { builder_mut(builder) }?;
        let bytes = unsafe { args::bytes(data, len, "data") }?;
        let mime_type = unsafe { args::optional_string(mime_type, "mime_type") }?;
        builder.add_bytes(bytes, mime_type);
        Ok(())
    })
}

/// Sets the executor endpoint (`header.exec_endpoint`, e.g. `"/index"`) the request is for; NULL =
/// none (jina's default endpoint). Give the send the same endpoint (`endpoint` of
/// `jina_net_pool_send`), so heads see it too.
///
/// # Safety
/// `builder` must be a live builder; `endpoint` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_builder_set_endpoint(
    builder: *mut jina_net_request_builder,
    endpoint: *const c_char,
) -> jina_net_result {
    boundary("jina_net_request_builder_set_endpoint", || {
        // SAFETY: the caller's promises above.
        let builder = unsafe { builder_mut(builder) }?;
        let endpoint = unsafe { args::optional_string(endpoint, "endpoint") }?;
        builder.endpoint(endpoint);
        Ok(())
    })
}

/// Sets the executor's `parameters` (a `google.protobuf.Struct`, the `parameters` argument of a jina
/// executor method) from the text of a JSON object, e.g. `{"top_k": 3, "filter": {"tag": "a"}}`;
/// numbers become doubles, as in protobuf's JSON mapping. NULL = no parameters.
/// `JINA_NET_INVALID_ARGUMENT` when the text is not JSON or not an object (the builder is unchanged).
///
/// # Safety
/// `builder` must be a live builder; `json` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_builder_set_parameters_json(
    builder: *mut jina_net_request_builder,
    json: *const c_char,
) -> jina_net_result {
    boundary("jina_net_request_builder_set_parameters_json", || {
        // SAFETY: the caller's promises above.
        let builder = unsafe { builder_mut(builder) }?;
        let json = unsafe { args::optional_string(json, "json") }?;
        builder.parameters_json(json)?;
        Ok(())
    })
}

/// Sets `header.request_id`; NULL (the default) = 32 random hex digits, new at each build.
///
/// # Safety
/// `builder` must be a live builder; `request_id` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_builder_set_request_id(
    builder: *mut jina_net_request_builder,
    request_id: *const c_char,
) -> jina_net_result {
    boundary("jina_net_request_builder_set_request_id", || {
        // SAFETY: the caller's promises above.
        let builder = unsafe { builder_mut(builder) }?;
        let request_id = unsafe { args::optional_string(request_id, "request_id") }?;
        builder.request_id(request_id);
        Ok(())
    })
}

/// Serializes the request: `*out_data` / `*out_len` receive the bytes of a `jina.DataRequestProto`
/// (send them with `JINA_NET_REQUEST_DATA`), to free with `jina_net_request_bytes_free(data, len)`.
/// The builder is unchanged and may build again (each build has a new random request id unless one
/// is set).
///
/// # Safety
/// `builder` must be a live builder; out-parameters writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_builder_build(
    builder: *const jina_net_request_builder,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> jina_net_result {
    boundary("jina_net_request_builder_build", || {
        // SAFETY: the caller passes a live builder or NULL.
        let builder = unsafe { builder.as_ref() }.ok_or_else(|| Failure::null("builder"))?;
        let (d, l) = (out(out_data, "out_data")?, out(out_len, "out_len")?);
        hand_out(builder.inner.encode(), d, l);
        Ok(())
    })
}

/// Frees a builder. NULL is ignored.
///
/// # Safety
/// `builder` must come from `jina_net_request_builder_new` and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_builder_free(builder: *mut jina_net_request_builder) {
    boundary_void(|| {
        if !builder.is_null() {
            // SAFETY: the caller hands back a builder made by jina_net_request_builder_new.
            drop(unsafe { Box::from_raw(builder) });
        }
    })
}

/// Serializes a `jina.ControlRequestProto` with a random request id: `command` is a
/// `jina_net_control_command`. STATUS takes no worker (`worker_host` NULL). ACTIVATE and DEACTIVATE
/// name the worker a head registers or removes: `worker_host`, `worker_port`, and `shard_id` (or
/// `JINA_NET_NO_SHARD`), as `jina_net_activate_worker` sends them. Send the bytes with
/// `JINA_NET_REQUEST_CONTROL`; free them with `jina_net_request_bytes_free(data, len)`.
/// `JINA_NET_INVALID_ARGUMENT` for an unknown command or a worker given with STATUS;
/// `JINA_NET_NULL_ARGUMENT` when ACTIVATE or DEACTIVATE get no `worker_host`.
///
/// # Safety
/// `worker_host` NULL or a NUL-terminated string; out-parameters writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_control_request_build(
    command: u32,
    worker_host: *const c_char,
    worker_port: u16,
    shard_id: i64,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> jina_net_result {
    boundary("jina_net_control_request_build", || {
        let (d, l) = (out(out_data, "out_data")?, out(out_len, "out_len")?);
        let command = match command {
            0 => Command::Status,
            1 => Command::Activate,
            2 => Command::Deactivate,
            other => {
                return Err(Failure::new(
                    JINA_NET_INVALID_ARGUMENT,
                    format!("unknown control command {other} (0 = STATUS, 1 = ACTIVATE, 2 = DEACTIVATE)"),
                ))
            }
        };
        // SAFETY: the caller's promise above.
        let worker_host = unsafe { args::optional_string(worker_host, "worker_host") }?;
        let shard_id = args::shard_id(shard_id)?;
        let message = match (command, worker_host) {
            (Command::Status, None) => control_request(Command::Status),
            (Command::Status, Some(_)) => {
                return Err(Failure::new(
                    JINA_NET_INVALID_ARGUMENT,
                    "STATUS names no worker: worker_host must be NULL",
                ))
            }
            (_, None) => {
                return Err(Failure::new(
                    JINA_NET_NULL_ARGUMENT,
                    "worker_host is NULL: ACTIVATE and DEACTIVATE name the worker",
                ))
            }
            (command, Some(host)) => worker_control_request(command, host, worker_port, shard_id),
        };
        hand_out(message.encode_to_vec(), d, l);
        Ok(())
    })
}

/// Frees request bytes made by `jina_net_request_builder_build` or `jina_net_control_request_build`,
/// given the pointer and length they returned. NULL is ignored.
///
/// # Safety
/// `data` / `len` must be exactly what one of those functions returned, freed once.
#[no_mangle]
pub unsafe extern "C" fn jina_net_request_bytes_free(data: *mut u8, len: usize) {
    boundary_void(|| {
        if !data.is_null() {
            // SAFETY: the caller hands back a boxed slice of `len` bytes made by `hand_out`.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)) });
        }
    })
}
