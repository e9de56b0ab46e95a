//! One-shot sends to an address (no pool) and the control plane: blocking and callback forms.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;

use super::args::{self, jina_net_bytes, out};
use super::completion::{jina_net_send_callback, Completion, Outcome};
use super::pool_options::{compression, identity};
use super::requests::requests;
use super::response::jina_net_response;
use super::result::{boundary, jina_net_result, Failure};
use super::sized::{read_sized, write_sized, SizedStruct};
use crate::control::worker_control_request;
use crate::oneshot::{send_request_async, send_with_fresh_channels, OneShotOptions};
use crate::proto::Command;
use crate::replica::Response;
use crate::request::Request;
use crate::runtime;
use crate::transport::check_tls;

/// Options of the one-shot helpers (NULL = defaults). Initialise with
/// `jina_net_oneshot_options_init(&o, sizeof o)`, then change what you need; `struct_size` says how
/// many bytes the caller's header declares (see `jina_net_pool_options`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_oneshot_options {
    /// `sizeof(jina_net_oneshot_options)` in the caller's header; set by `jina_net_oneshot_options_init`.
    pub struct_size: usize,
    /// Deadline in milliseconds; 0 = the helper's default (100 s blocking, 1 s callback form).
    pub timeout_ms: u64,
    /// Use TLS even without an `https://` / `grpcs://` address.
    pub tls: bool,
    /// PEM root certificates to trust instead of the system roots (NULL = system roots).
    pub root_certificates_pem: *const u8,
    /// Length of `root_certificates_pem`.
    pub root_certificates_pem_len: usize,
    /// The `endpoint` metadata of data requests (NULL = none).
    pub endpoint: *const c_char,
    // ---- 0.2.2: appended after 0.2.0 ----
    /// A client certificate chain for mutual TLS, PEM (NULL = none); with `tls_private_key_pem`.
    pub tls_cert_chain_pem: *const u8,
    /// Length of `tls_cert_chain_pem`.
    pub tls_cert_chain_pem_len: usize,
    /// The private key of the client certificate, PEM (NULL = none).
    pub tls_private_key_pem: *const u8,
    /// Length of `tls_private_key_pem`.
    pub tls_private_key_pem_len: usize,
    /// The name the server's certificate must carry instead of the target's host (NULL = the host).
    pub tls_server_name: *const c_char,
    /// A `jina_net_compression` for the request (default NONE).
    pub compression: u32,
}

// SAFETY: a `#[repr(C)]` struct starting with `struct_size`; integers, bools and pointers.
unsafe impl SizedStruct for jina_net_oneshot_options {
    const NAME: &'static str = "jina_net_oneshot_options";
    const INIT: &'static str = "jina_net_oneshot_options_init";
}

fn defaults() -> jina_net_oneshot_options {
    jina_net_oneshot_options {
        struct_size: std::mem::size_of::<jina_net_oneshot_options>(),
        timeout_ms: 0,
        tls: false,
        root_certificates_pem: std::ptr::null(),
        root_certificates_pem_len: 0,
        endpoint: std::ptr::null(),
        tls_cert_chain_pem: std::ptr::null(),
        tls_cert_chain_pem_len: 0,
        tls_private_key_pem: std::ptr::null(),
        tls_private_key_pem_len: 0,
        tls_server_name: std::ptr::null(),
        compression: 0,
    }
}

/// Fills the caller's `struct_size` bytes at `options` with the defaults (the helper's timeout,
/// plaintext unless the address says TLS, system roots, no endpoint) and sets
/// `options->struct_size`: `jina_net_oneshot_options_init(&o, sizeof o)`.
///
/// # Safety
/// `options` must be NULL or point to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn jina_net_oneshot_options_init(
    options: *mut jina_net_oneshot_options,
    struct_size: usize,
) -> jina_net_result {
    boundary("jina_net_oneshot_options_init", || {
        // SAFETY: the caller gives `struct_size` writable bytes.
        unsafe { write_sized(options, struct_size, defaults()) }
    })
}

unsafe fn oneshot_options(options: *const jina_net_oneshot_options) -> Result<OneShotOptions, Failure> {
    if options.is_null() {
        return Ok(OneShotOptions::default());
    }
    // SAFETY: a struct with `struct_size` readable bytes (caller's promise).
    let o = &unsafe { read_sized(options, defaults()) }?;
    // SAFETY: the struct promises its buffers.
    let pem = unsafe {
        args::bytes(
            o.root_certificates_pem,
            o.root_certificates_pem_len,
            "root_certificates_pem",
        )
    }?;
    // SAFETY: NULL or NUL-terminated strings; buffers of their lengths.
    let (endpoint, chain, key, name) = unsafe {
        (
            args::optional_string(o.endpoint, "endpoint")?,
            args::bytes(o.tls_cert_chain_pem, o.tls_cert_chain_pem_len, "tls_cert_chain_pem")?,
            args::bytes(o.tls_private_key_pem, o.tls_private_key_pem_len, "tls_private_key_pem")?,
            args::optional_string(o.tls_server_name, "tls_server_name")?,
        )
    };
    let mut options = OneShotOptions {
        timeout: args::millis(o.timeout_ms),
        tls: o.tls,
        root_certificates_pem: (!pem.is_empty()).then(|| pem.to_vec()),
        endpoint: endpoint.map(str::to_owned),
        identity: identity(chain, key)?,
        tls_server_name: name.map(str::to_owned),
        ..Default::default()
    };
    options.channel.compression = compression(o.compression)?;
    check_tls(&crate::policy::TlsOptions {
        force: options.tls,
        root_certificates_pem: options.root_certificates_pem.clone(),
        identity: options.identity.clone(),
        server_name: options.tls_server_name.clone(),
    })?;
    Ok(options)
}

fn blocking(
    future: impl std::future::Future<Output = crate::error::Result<Response>> + Send + 'static,
    out_response: *mut *mut jina_net_response,
) -> Result<(), Failure> {
    super::runtime::library_handle()?;
    let response = runtime::block_on(future)??;
    // SAFETY: NULL or writable (checked by the caller of this helper where required).
    if let Some(o) = unsafe { out_response.as_mut() } {
        *o = Box::into_raw(jina_net_response::new(response));
    }
    Ok(())
}

/// Sends `requests` (of `kind`; several data requests go as one `process_data` call) to `target`
/// and blocks until the response: up to 3 attempts on `UNAVAILABLE`, each on a fresh channel.
/// `*out_response` (required) receives the response; free it with `jina_net_response_free`.
/// Fails with `JINA_NET_RUNTIME_ERROR` when called from a completion callback.
///
/// # Safety
/// Buffers readable for the call; strings NUL-terminated; `out_response` writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_send_requests_sync(
    kind: u32,
    requests: *const jina_net_bytes,
    requests_len: usize,
    target: *const c_char,
    options: *const jina_net_oneshot_options,
    out_response: *mut *mut jina_net_response,
) -> jina_net_result {
    boundary("jina_net_send_requests_sync", || {
        out(out_response, "out_response")?;
        // SAFETY: as documented.
        let (requests, target, options) = unsafe {
            (
                self::requests(kind, requests, requests_len)?,
                args::string(target, "target")?,
                oneshot_options(options)?,
            )
        };
        let target = target.to_owned();
        blocking(
            async move { send_with_fresh_channels(&requests, &target, &options).await },
            out_response,
        )
    })
}

/// `jina_net_send_requests_sync` with one request.
///
/// # Safety
/// As `jina_net_send_requests_sync`.
#[no_mangle]
pub unsafe extern "C" fn jina_net_send_request_sync(
    kind: u32,
    request: *const u8,
    request_len: usize,
    target: *const c_char,
    options: *const jina_net_oneshot_options,
    out_response: *mut *mut jina_net_response,
) -> jina_net_result {
    let one = jina_net_bytes {
        data: request,
        len: request_len,
    };
    // SAFETY: as documented; `one` lives across the call.
    unsafe { jina_net_send_requests_sync(kind, &one, 1, target, options, out_response) }
}

fn spawn_oneshot(
    name: &str,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    target: &str,
    future: impl std::future::Future<Output = crate::error::Result<Response>> + Send + 'static,
) -> Result<(), Failure> {
    // Everything that can fail comes before the completion exists: a send that returns an error never
    // calls back.
    let handle = super::runtime::library_handle()?;
    runtime::ensure_not_shut_down()?;
    let completion = Completion::new(callback, user_data, 0, None, false)?;
    let address: Arc<str> = crate::address::Address::parse(target)
        .map(|a| Arc::from(a.key()))
        .unwrap_or_else(|_| Arc::from(target));
    tracing::trace!(name, target, "one-shot send");
    handle.spawn(async move {
        let result = future.await;
        completion.complete(Outcome::Single { address, result });
    });
    Ok(())
}

/// Sends one request to `target` without retry (timeout 1 s by default) and returns at once;
/// `callback` fires exactly once on a library runtime thread with one target (`shard_id` -1).
///
/// # Safety
/// Buffers readable for the call; strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn jina_net_send_request_async(
    kind: u32,
    request: *const u8,
    request_len: usize,
    target: *const c_char,
    options: *const jina_net_oneshot_options,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
) -> jina_net_result {
    boundary("jina_net_send_request_async", || {
        let one = jina_net_bytes {
            data: request,
            len: request_len,
        };
        // SAFETY: as documented.
        let (mut requests, target, options) = unsafe {
            (
                self::requests(kind, &one, 1)?,
                args::string(target, "target")?,
                oneshot_options(options)?,
            )
        };
        crate::address::Address::parse(target)?;
        let request = requests.remove(0);
        let owned_target = target.to_owned();
        spawn_oneshot("send_request_async", callback, user_data, target, async move {
            send_request_async(request, &owned_target, &options).await
        })
    })
}

unsafe fn control_args<'a>(
    worker_host: *const c_char,
    target_head: *const c_char,
    shard_id: i64,
) -> Result<(&'a str, &'a str, Option<u32>), Failure> {
    // SAFETY: NUL-terminated strings (caller's promise).
    let (host, head) = unsafe {
        (
            args::string(worker_host, "worker_host")?,
            args::string(target_head, "target_head")?,
        )
    };
    crate::address::Address::parse(head)?;
    Ok((host, head, args::shard_id(shard_id)?))
}

unsafe fn control_async(
    command: Command,
    worker_host: *const c_char,
    worker_port: u16,
    target_head: *const c_char,
    shard_id: i64,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
) -> Result<(), Failure> {
    // SAFETY: as documented by the callers.
    let (host, head, shard) = unsafe { control_args(worker_host, target_head, shard_id) }?;
    let request = Request::control(worker_control_request(command, host, worker_port, shard).encode_to_vec());
    let owned_head = head.to_owned();
    spawn_oneshot("control", callback, user_data, head, async move {
        send_request_async(request, &owned_head, &OneShotOptions::default()).await
    })
}

/// Registers the worker `worker_host:worker_port` (shard `shard_id`, or `JINA_NET_NO_SHARD` to send
/// none) with the head at `target_head` (ACTIVATE; one attempt, 1 s). `callback` fires once with the
/// head's echo of the control request as the response of its one target.
///
/// # Safety
/// Strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn jina_net_activate_worker(
    worker_host: *const c_char,
    worker_port: u16,
    target_head: *const c_char,
    shard_id: i64,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
) -> jina_net_result {
    boundary("jina_net_activate_worker", || unsafe {
        control_async(
            Command::Activate,
            worker_host,
            worker_port,
            target_head,
            shard_id,
            callback,
            user_data,
        )
    })
}

/// DEACTIVATE: takes the worker out of the head; otherwise as `jina_net_activate_worker`.
///
/// # Safety
/// Strings NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn jina_net_deactivate_worker(
    worker_host: *const c_char,
    worker_port: u16,
    target_head: *const c_char,
    shard_id: i64,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
) -> jina_net_result {
    boundary("jina_net_deactivate_worker", || unsafe {
        control_async(
            Command::Deactivate,
            worker_host,
            worker_port,
            target_head,
            shard_id,
            callback,
            user_data,
        )
    })
}

unsafe fn control_sync(
    command: Command,
    worker_host: *const c_char,
    worker_port: u16,
    target_head: *const c_char,
    timeout_ms: u64,
    shard_id: i64,
    out_response: *mut *mut jina_net_response,
) -> Result<(), Failure> {
    // SAFETY: as documented by the callers.
    let (host, head, shard) = unsafe { control_args(worker_host, target_head, shard_id) }?;
    let request = Request::control(worker_control_request(command, host, worker_port, shard).encode_to_vec());
    let options = OneShotOptions {
        timeout: args::millis(timeout_ms).or(Some(Duration::from_secs(100))),
        ..Default::default()
    };
    let head = head.to_owned();
    blocking(
        async move { send_with_fresh_channels(&[request], &head, &options).await },
        out_response,
    )
}

/// Blocking ACTIVATE (timeout `timeout_ms`, 0 = 100 s; up to 3 attempts on `UNAVAILABLE`).
/// `*out_response` (may be NULL) receives the head's echo; free it with `jina_net_response_free`.
///
/// # Safety
/// Strings NUL-terminated; `out_response` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_activate_worker_sync(
    worker_host: *const c_char,
    worker_port: u16,
    target_head: *const c_char,
    timeout_ms: u64,
    shard_id: i64,
    out_response: *mut *mut jina_net_response,
) -> jina_net_result {
    boundary("jina_net_activate_worker_sync", || unsafe {
        control_sync(
            Command::Activate,
            worker_host,
            worker_port,
            target_head,
            timeout_ms,
            shard_id,
            out_response,
        )
    })
}

/// Blocking DEACTIVATE; otherwise as `jina_net_activate_worker_sync`.
///
/// # Safety
/// As `jina_net_activate_worker_sync`.
#[no_mangle]
pub unsafe extern "C" fn jina_net_deactivate_worker_sync(
    worker_host: *const c_char,
    worker_port: u16,
    target_head: *const c_char,
    timeout_ms: u64,
    shard_id: i64,
    out_response: *mut *mut jina_net_response,
) -> jina_net_result {
    boundary("jina_net_deactivate_worker_sync", || unsafe {
        control_sync(
            Command::Deactivate,
            worker_host,
            worker_port,
            target_head,
            timeout_ms,
            shard_id,
            out_response,
        )
    })
}
