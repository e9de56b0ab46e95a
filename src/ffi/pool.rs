//! `jina_net_pool`: create, configure, add and remove replicas, send, cancel, close, free.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::args::{self, jina_net_bytes, out};
use super::completion::{jina_net_send_callback, Completion, OnComplete, Outcome};
use super::result::{boundary, boundary_void, jina_net_result, jina_net_result::*, Failure};
use crate::channel::TlsOptions;
use crate::connection::ConnectionConfig;
use crate::health::OutlierPolicy;
use crate::pool::{ConnectionPool, Polling, PoolOptions};
use crate::request::{Request, RequestKind};
use crate::retry::RetryPolicy;
use crate::runtime;

/// The kind of the request bytes given to a send.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_request_kind {
    /// Serialized `jina.DataRequestProto`s.
    JINA_NET_REQUEST_DATA = 0,
    /// One serialized `jina.ControlRequestProto`.
    JINA_NET_REQUEST_CONTROL = 1,
}

/// How many shards a send goes to.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum jina_net_polling {
    /// One target: the head, the given shard, or the deployment's shards in turn.
    JINA_NET_POLLING_ANY = 0,
    /// One send per shard (head and shard id are ignored).
    JINA_NET_POLLING_ALL = 1,
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

fn polling(value: u32) -> Result<Polling, Failure> {
    match value {
        0 => Ok(Polling::Any),
        1 => Ok(Polling::All),
        other => Err(Failure::new(
            JINA_NET_INVALID_ARGUMENT,
            format!("unknown polling {other} (0 = ANY, 1 = ALL)"),
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
            let bytes = unsafe { args::bytes(b.data, b.len, &format!("requests[{i}].data")) }?;
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

/// Options of a pool. Initialise with `jina_net_pool_options_init`, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct jina_net_pool_options {
    /// Attempts per send on `UNAVAILABLE`, the first included (default 3, as jina; 1 = no retry).
    /// With `fail_over`, at least one per replica of the shard.
    pub max_attempts: u32,
    /// Deadline of a send that gives none, in milliseconds (default 0 = none).
    pub default_timeout_ms: u64,
    /// Use TLS for every address, also those without `https://` / `grpcs://` (default false).
    pub tls: bool,
    /// PEM root certificates to trust for TLS instead of the system roots (default NULL). Copied
    /// by `jina_net_pool_new`.
    pub root_certificates_pem: *const u8,
    /// Length of `root_certificates_pem`.
    pub root_certificates_pem_len: usize,
    /// Retry on the next replica of the shard instead of the same one; every replica is tried before
    /// giving up (default false = jina 3.1's retries in place; true in the resilient settings).
    pub fail_over: bool,
    /// Backoff cap before a retry that goes back to a replica already tried, in ms (default 0,
    /// resilient 10); multiplied by `backoff_multiplier` per attempt (default 1.0, resilient 2.0) up
    /// to `max_backoff_ms` (default 0, resilient 1000). The wait is uniformly random in [0, cap]
    /// (gRFC A6).
    pub initial_backoff_ms: u64,
    /// See `initial_backoff_ms`.
    pub backoff_multiplier: f64,
    /// See `initial_backoff_ms`.
    pub max_backoff_ms: u64,
    /// Consecutive `UNAVAILABLE` failures that eject a replica (skipped while healthy ones exist)
    /// (default 0 = never eject, as jina; resilient 1).
    pub eject_after_failures: u32,
    /// First ejection in ms (100), doubling per consecutive ejection up to `max_ejection_ms` (800):
    /// a restarted replica is used again within that.
    pub base_ejection_ms: u64,
    /// See `base_ejection_ms`.
    pub max_ejection_ms: u64,
    /// At most this percentage of a replica list is ejected at once (default 50).
    pub max_ejection_percent: u32,
}

fn fill_options(options: *mut jina_net_pool_options, retry: RetryPolicy, outlier: OutlierPolicy) {
    boundary_void(|| {
        // SAFETY: the caller passes writable storage or NULL.
        if let Some(o) = unsafe { options.as_mut() } {
            *o = jina_net_pool_options {
                max_attempts: retry.max_attempts,
                default_timeout_ms: 0,
                tls: false,
                root_certificates_pem: std::ptr::null(),
                root_certificates_pem_len: 0,
                fail_over: retry.fail_over,
                initial_backoff_ms: retry.initial_backoff.as_millis() as u64,
                backoff_multiplier: retry.backoff_multiplier,
                max_backoff_ms: retry.max_backoff.as_millis() as u64,
                eject_after_failures: outlier.consecutive_failures,
                base_ejection_ms: outlier.base_ejection.as_millis() as u64,
                max_ejection_ms: outlier.max_ejection.as_millis() as u64,
                max_ejection_percent: u32::from(outlier.max_ejection_percent),
            };
        }
    })
}

/// Fills `options` with the defaults: jina 3.1.0's behaviour (3 attempts on `UNAVAILABLE` on the
/// same replica, no backoff, no ejection). NULL is ignored.
///
/// # Safety
/// `options` must be NULL or point to writable storage for the struct.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_options_init(options: *mut jina_net_pool_options) {
    fill_options(options, RetryPolicy::jina(), OutlierPolicy::disabled());
}

/// Fills `options` with the recommended settings for production: fail-over to the next replica of
/// the shard (every replica tried before giving up), jittered exponential backoff (10 ms doubling up
/// to 1 s) when a replica is tried again, and passive outlier ejection (after 1 failure, 100 ms
/// doubling up to 800 ms, at most half of a list). NULL is ignored.
///
/// # Safety
/// `options` must be NULL or point to writable storage for the struct.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_options_init_resilient(options: *mut jina_net_pool_options) {
    fill_options(options, RetryPolicy::resilient(), OutlierPolicy::resilient());
}

/// Sends in flight that can be cancelled, by id.
#[derive(Default)]
struct Registry {
    sends: Mutex<HashMap<u64, CancellationToken>>,
}

impl OnComplete for Registry {
    fn completed(&self, send_id: u64) {
        self.sends.lock().unwrap_or_else(|p| p.into_inner()).remove(&send_id);
    }
}

/// A connection pool. Create with `jina_net_pool_new`, free with `jina_net_pool_free`.
/// Safe to use from several threads at once (but not after, or during, `jina_net_pool_free`).
pub struct jina_net_pool {
    pool: ConnectionPool,
    handle: Handle,
    registry: Arc<Registry>,
    next_id: AtomicU64,
}

unsafe fn pool_ref<'a>(pool: *const jina_net_pool) -> Result<&'a jina_net_pool, Failure> {
    // SAFETY: the caller passes a live pool or NULL.
    unsafe { pool.as_ref() }.ok_or_else(|| Failure::null("pool"))
}

/// Creates a pool (`options` NULL = defaults) and writes it to `*out_pool`. Starts the library runtime
/// if it is not running.
///
/// # Safety
/// `options` must be NULL or a valid options struct; `out_pool` must be writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_new(
    options: *const jina_net_pool_options,
    out_pool: *mut *mut jina_net_pool,
) -> jina_net_result {
    boundary("jina_net_pool_new", || {
        let out_pool = out(out_pool, "out_pool")?;
        // SAFETY: the caller passes a valid struct or NULL.
        let options = unsafe { pool_options(options) }?;
        *out_pool = into_handle(ConnectionPool::new(options))?;
        Ok(())
    })
}

unsafe fn pool_options(options: *const jina_net_pool_options) -> Result<PoolOptions, Failure> {
    let mut pool_options = PoolOptions::default();
    // SAFETY: the caller passes a valid struct or NULL.
    if let Some(o) = unsafe { options.as_ref() } {
        if o.max_attempts == 0 {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "max_attempts must be at least 1",
            ));
        }
        if !(o.backoff_multiplier.is_finite() && o.backoff_multiplier >= 1.0) {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "backoff_multiplier must be a number >= 1",
            ));
        }
        if o.max_ejection_percent > 100 {
            return Err(Failure::new(
                JINA_NET_INVALID_ARGUMENT,
                "max_ejection_percent must be at most 100",
            ));
        }
        let ms = std::time::Duration::from_millis;
        pool_options.retry = RetryPolicy {
            max_attempts: o.max_attempts,
            fail_over: o.fail_over,
            initial_backoff: ms(o.initial_backoff_ms),
            backoff_multiplier: o.backoff_multiplier,
            max_backoff: ms(o.max_backoff_ms),
        };
        pool_options.outlier = OutlierPolicy {
            consecutive_failures: o.eject_after_failures,
            base_ejection: ms(o.base_ejection_ms),
            max_ejection: ms(o.max_ejection_ms),
            max_ejection_percent: o.max_ejection_percent as u8,
        };
        pool_options.default_timeout = args::millis(o.default_timeout_ms);
        // SAFETY: the struct promises `root_certificates_pem_len` readable bytes.
        let pem = unsafe {
            args::bytes(
                o.root_certificates_pem,
                o.root_certificates_pem_len,
                "root_certificates_pem",
            )
        }?;
        pool_options.connection = ConnectionConfig {
            tls: TlsOptions {
                force: o.tls,
                root_certificates_pem: (!pem.is_empty()).then(|| pem.to_vec()),
            },
            ..Default::default()
        };
    }
    Ok(pool_options)
}

fn into_handle(pool: ConnectionPool) -> Result<*mut jina_net_pool, Failure> {
    let handle = super::runtime_handle()?;
    Ok(Box::into_raw(Box::new(jina_net_pool {
        pool,
        handle,
        registry: Arc::default(),
        next_id: AtomicU64::new(1),
    })))
}

/// Creates a pool that follows the Jina pods of a Kubernetes namespace (labels
/// `jina_deployment_name`, `pod_type`, `shard_id`; address `podIP:port`) and writes it to
/// `*out_pool`. `kubeconfig_path` (may be NULL) is a kubeconfig file for use outside a cluster; NULL
/// = the in-cluster service account. `namespace` NULL = the kubeconfig's (or the pod's) namespace.
/// `port` 0 = 8080. Blocks until the first list of pods (at most 10 s): `JINA_NET_KUBERNETES_ERROR`
/// when it fails (bad kubeconfig, no permission, API server unreachable). Afterwards the table
/// follows the pods (read it with `jina_net_pool_routes`) and a lost API server is retried with
/// backoff. Everything else works as for `jina_net_pool_new`; `JINA_NET_UNSUPPORTED` in a build
/// without the `k8s` feature. Not from a callback.
///
/// # Safety
/// Strings NULL or NUL-terminated; `options` NULL or valid; `out_pool` writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_new_k8s(
    namespace: *const c_char,
    kubeconfig_path: *const c_char,
    port: u16,
    options: *const jina_net_pool_options,
    out_pool: *mut *mut jina_net_pool,
) -> jina_net_result {
    boundary("jina_net_pool_new_k8s", || {
        let out_pool = out(out_pool, "out_pool")?;
        // SAFETY: as documented.
        let (namespace, kubeconfig, options) = unsafe {
            (
                args::optional_string(namespace, "namespace")?,
                args::optional_string(kubeconfig_path, "kubeconfig_path")?,
                pool_options(options)?,
            )
        };
        #[cfg(feature = "k8s")]
        {
            super::runtime_handle()?;
            let pool = crate::k8s::k8s_connection_pool_blocking(
                namespace,
                kubeconfig.map(std::path::Path::new),
                port,
                options,
            )?;
            *out_pool = into_handle(pool)?;
            Ok(())
        }
        #[cfg(not(feature = "k8s"))]
        {
            let _ = (namespace, kubeconfig, port, options, out_pool);
            Err(Failure::new(JINA_NET_UNSUPPORTED, "built without the `k8s` feature"))
        }
    })
}

/// Closes the pool: connections are dropped, pending sends complete with `JINA_NET_POOL_CLOSED`,
/// later calls on it fail with `JINA_NET_POOL_CLOSED`. Closing twice is harmless. The pool must
/// still be freed.
///
/// # Safety
/// `pool` must be a live pool.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_close(pool: *mut jina_net_pool) -> jina_net_result {
    boundary("jina_net_pool_close", || {
        // SAFETY: the caller passes a live pool.
        unsafe { pool_ref(pool) }?.pool.close();
        Ok(())
    })
}

/// Closes (see `jina_net_pool_close`) and frees the pool. NULL is ignored. Does not wait: callbacks of
/// sends still pending fire (with `JINA_NET_POOL_CLOSED`) on a runtime thread shortly after, so
/// their `user_data` must stay valid until then.
///
/// # Safety
/// `pool` must be NULL or a live pool not used by any other thread during or after this call.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_free(pool: *mut jina_net_pool) {
    boundary_void(|| {
        if !pool.is_null() {
            // SAFETY: the caller hands back ownership of a pool the library boxed.
            let pool = unsafe { Box::from_raw(pool) };
            pool.pool.close();
        }
    })
}

/// Adds a replica at `address` to `deployment`: its head when `head` (head id 0), else shard
/// `shard_id` (`JINA_NET_NO_SHARD` = shard 0). A known address is not added again. `*out_added`
/// (may be NULL) says whether it was added.
///
/// # Safety
/// `pool` must be a live pool; strings NUL-terminated; `out_added` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_add_connection(
    pool: *mut jina_net_pool,
    deployment: *const c_char,
    address: *const c_char,
    head: bool,
    shard_id: i64,
    out_added: *mut bool,
) -> jina_net_result {
    boundary("jina_net_pool_add_connection", || {
        // SAFETY: caller's promises as documented.
        unsafe {
            change_replica(
                pool,
                deployment,
                address,
                head,
                shard_id,
                out_added,
                ConnectionPool::add_connection,
            )
        }
    })
}

/// The shared body of add and remove: checks the arguments, applies `change`, writes `*out` (may be NULL).
unsafe fn change_replica<T: Into<Changed>>(
    pool: *mut jina_net_pool,
    deployment: *const c_char,
    address: *const c_char,
    head: bool,
    shard_id: i64,
    out: *mut bool,
    change: impl FnOnce(&ConnectionPool, &str, &str, bool, Option<u32>) -> crate::Result<T>,
) -> Result<(), Failure> {
    // SAFETY: caller's promises as documented.
    let (pool, deployment, address) = unsafe {
        (
            pool_ref(pool)?,
            args::string(deployment, "deployment")?,
            args::string(address, "address")?,
        )
    };
    let changed: Changed = change(&pool.pool, deployment, address, head, args::shard_id(shard_id)?)?.into();
    // SAFETY: NULL or writable.
    if let Some(o) = unsafe { out.as_mut() } {
        *o = changed.0;
    }
    Ok(())
}

/// Whether an add or remove changed the pool.
struct Changed(bool);

impl From<bool> for Changed {
    fn from(added: bool) -> Self {
        Changed(added)
    }
}

impl From<Option<Arc<crate::connection::Connection>>> for Changed {
    fn from(removed: Option<Arc<crate::connection::Connection>>) -> Self {
        Changed(removed.is_some())
    }
}

/// Removes the replica at `address` from `deployment` (head, or shard `shard_id`). `*out_removed`
/// (may be NULL) says whether there was one. A head or shard left empty is dropped.
///
/// # Safety
/// As `jina_net_pool_add_connection`.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_remove_connection(
    pool: *mut jina_net_pool,
    deployment: *const c_char,
    address: *const c_char,
    head: bool,
    shard_id: i64,
    out_removed: *mut bool,
) -> jina_net_result {
    boundary("jina_net_pool_remove_connection", || {
        // SAFETY: caller's promises as documented.
        unsafe {
            change_replica(
                pool,
                deployment,
                address,
                head,
                shard_id,
                out_removed,
                ConnectionPool::remove_connection,
            )
        }
    })
}

/// Sends requests to a deployment and returns at once; `callback(user_data, result)` fires exactly
/// once when the send completes, on a library runtime thread.
///
/// - `kind`: a `jina_net_request_kind`. `requests[0..requests_len]` are serialized messages of that
///   kind, copied before the function returns: one data request goes to `process_single_data`,
///   several to `process_data` (one `DataRequestListProto`), one control request to `process_control`.
/// - Routing: `head` → the deployment's head; else shard `shard_id` (`JINA_NET_NO_SHARD` = the
///   deployment's shards in turn); `polling` (`jina_net_polling`) ALL = one send per shard.
/// - `endpoint` (may be NULL): the `endpoint` metadata of data requests.
/// - `timeout_ms`: deadline of the whole send, retries included; 0 = the pool's default.
/// - `out_send_id` (may be NULL): an id for `jina_net_pool_cancel`.
///
/// On any return other than `JINA_NET_OK` nothing was sent and the callback will not fire.
///
/// # Safety
/// `pool` live; `requests` points to `requests_len` buffers readable for the call; strings
/// NUL-terminated; `user_data` is handed back untouched on another thread.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_send(
    pool: *mut jina_net_pool,
    kind: u32,
    requests: *const jina_net_bytes,
    requests_len: usize,
    deployment: *const c_char,
    head: bool,
    shard_id: i64,
    polling: u32,
    endpoint: *const c_char,
    timeout_ms: u64,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    out_send_id: *mut u64,
) -> jina_net_result {
    boundary("jina_net_pool_send", || {
        // SAFETY: as documented.
        let requests = unsafe { self::requests(kind, requests, requests_len) }?;
        // SAFETY: as documented.
        unsafe {
            start_send(
                pool,
                requests,
                deployment,
                head,
                shard_id,
                polling,
                endpoint,
                timeout_ms,
                callback,
                user_data,
                out_send_id,
            )
        }
    })
}

/// Routes and starts a send of checked requests; the callback fires exactly once if this returns Ok.
#[allow(clippy::too_many_arguments)]
unsafe fn start_send(
    pool: *mut jina_net_pool,
    requests: Vec<Request>,
    deployment: *const c_char,
    head: bool,
    shard_id: i64,
    polling: u32,
    endpoint: *const c_char,
    timeout_ms: u64,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    out_send_id: *mut u64,
) -> Result<(), Failure> {
    // SAFETY: caller's promises as documented.
    let (pool, deployment, endpoint) = unsafe {
        (
            pool_ref(pool)?,
            args::string(deployment, "deployment")?,
            args::optional_string(endpoint, "endpoint")?,
        )
    };
    if callback.is_none() {
        return Err(Failure::null("callback"));
    }
    let (shard, polling) = (args::shard_id(shard_id)?, self::polling(polling)?);
    let send = pool.pool.send_requests(
        &requests,
        deployment,
        head,
        shard,
        polling,
        endpoint,
        args::millis(timeout_ms),
    )?;
    // After a runtime shutdown the task would be dropped at once and the callback would fire on
    // this thread, inside this call: refuse instead.
    runtime::ensure_not_shut_down()?;
    let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
    let cancel = (!out_send_id.is_null()).then(|| {
        let token = CancellationToken::new();
        pool.registry
            .sends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, token.clone());
        token
    });
    let hook: Option<Arc<dyn OnComplete>> = cancel.as_ref().map(|_| pool.registry.clone() as Arc<dyn OnComplete>);
    let completion = Completion::new(callback, user_data, id, hook)?;
    // SAFETY: NULL or writable (caller's promise).
    if let Some(o) = unsafe { out_send_id.as_mut() } {
        *o = id;
    }
    drop(requests); // the payload holds the bytes
    pool.handle.spawn(async move {
        let results = send.run_cancellable(cancel.as_ref()).await;
        completion.complete(Outcome::Targets(results));
    });
    Ok(())
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
unsafe fn owned_requests(
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

/// `jina_net_pool_send` without the copy of the request bytes: the library takes ownership of the
/// buffers and gives each back exactly once through `free_fn(free_ctx, data, len)` when it no longer
/// needs it — after the send completed (retries included), or before this function returns when it
/// fails. This holds for every return value except these two, where nothing was taken and the buffers
/// stay the caller's: `free_fn` is NULL, or `requests` is NULL while `requests_len` is not 0. Buffers
/// with a NULL `data` are not freed. Everything else is as for `jina_net_pool_send`.
///
/// # Safety
/// As `jina_net_pool_send`; the buffers must stay valid and unchanged until `free_fn` is called for them.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_send_owned(
    pool: *mut jina_net_pool,
    kind: u32,
    requests: *const jina_net_bytes,
    requests_len: usize,
    free_fn: jina_net_free_fn,
    free_ctx: *mut c_void,
    deployment: *const c_char,
    head: bool,
    shard_id: i64,
    polling: u32,
    endpoint: *const c_char,
    timeout_ms: u64,
    callback: jina_net_send_callback,
    user_data: *mut c_void,
    out_send_id: *mut u64,
) -> jina_net_result {
    boundary("jina_net_pool_send_owned", || {
        let free = free_fn.ok_or_else(|| Failure::null("free_fn"))?;
        // SAFETY: as documented.
        let requests = unsafe { owned_requests(kind, requests, requests_len, free, free_ctx) }?;
        // SAFETY: as documented.
        unsafe {
            start_send(
                pool,
                requests,
                deployment,
                head,
                shard_id,
                polling,
                endpoint,
                timeout_ms,
                callback,
                user_data,
                out_send_id,
            )
        }
    })
}

/// Cancels a pending send: its callback fires (once, as always) with `JINA_NET_CANCELLED` for the
/// targets still waiting. `JINA_NET_NOT_FOUND` when the send already completed or the id is unknown.
///
/// # Safety
/// `pool` must be a live pool.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_cancel(pool: *mut jina_net_pool, send_id: u64) -> jina_net_result {
    boundary("jina_net_pool_cancel", || {
        // SAFETY: caller passes a live pool.
        let pool = unsafe { pool_ref(pool) }?;
        let token = pool
            .registry
            .sends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&send_id);
        match token {
            Some(t) => {
                t.cancel();
                Ok(())
            }
            None => Err(Failure::new(
                JINA_NET_NOT_FOUND,
                format!("no pending send with id {send_id}"),
            )),
        }
    })
}

/// Writes the routing table as text to `*out_table` (free with `jina_net_string_free`): one line per
/// head or shard, `<deployment>\t<head|shard N>\t<address>,<address>...`, deployments sorted.
///
/// # Safety
/// `pool` must be a live pool; `out_table` writable.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_routes(
    pool: *mut jina_net_pool,
    out_table: *mut *mut c_char,
) -> jina_net_result {
    boundary("jina_net_pool_routes", || {
        // SAFETY: caller passes a live pool.
        let pool = unsafe { pool_ref(pool) }?;
        let out_table = out(out_table, "out_table")?;
        let mut text = String::new();
        for route in pool.pool.routing_table()? {
            text.push_str(&format!(
                "{}\t{}\t{}\n",
                route.deployment,
                route.replica_set,
                route.addresses.join(",")
            ));
        }
        let text = CString::new(text.replace('\0', "?")).map_err(|e| Failure::new(JINA_NET_PANIC, e.to_string()))?;
        *out_table = text.into_raw();
        Ok(())
    })
}

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
