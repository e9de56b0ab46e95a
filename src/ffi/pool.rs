//! `jina_net_pool`: create (plain or Kubernetes), close, free, add and remove replicas.

use std::ffi::c_char;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::runtime::Handle;

use super::args::{self, out};
use super::cancel::Registry;
use super::completion::OnComplete;
use super::driven::{DrivenPool, DrivenSends};
use super::pool_options::{jina_net_pool_options, pool_options, Delivery};
use super::queued::CompletionQueue;
use super::result::{boundary, boundary_void, jina_net_result, Failure};
use crate::policy::PoolOptions;
use crate::pool::ConnectionPool;
use crate::replica::Replica;

/// A connection pool. Create with `jina_net_pool_new`, free with `jina_net_pool_free`.
/// Safe to use from several threads at once (but not after, or during, `jina_net_pool_free`).
pub struct jina_net_pool {
    pub(super) pool: ConnectionPool,
    /// Where sends run: the library runtime, or the pool's caller-driven runtime.
    pub(super) handle: Handle,
    pub(super) hooks: Arc<SendHooks>,
    pub(super) next_id: AtomicU64,
    /// Set for a caller-driven pool (`jina_net_pool_poll`). Dropped after `pool` (field order), so
    /// that the closed pool's sends complete while its runtime drains.
    pub(super) driven: Option<DrivenPool>,
}

/// What the pool does when one of its sends completes.
#[derive(Default)]
pub(super) struct SendHooks {
    pub(super) registry: Registry,
    pub(super) driven: Option<Arc<DrivenSends>>,
    /// Set for a pool with `callbacks_in_poll`: where its callbacks wait for `jina_net_pool_poll`.
    pub(super) queue: Option<Arc<CompletionQueue>>,
}

impl OnComplete for SendHooks {
    fn completed(&self, send_id: u64, registered: bool) {
        if registered {
            self.registry.completed(send_id);
        }
        if let Some(driven) = &self.driven {
            driven.count_completion();
        }
    }
}

pub(super) unsafe fn pool_ref<'a>(pool: *const jina_net_pool) -> Result<&'a jina_net_pool, Failure> {
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
        let (options, delivery) = unsafe { pool_options(options) }?;
        let (pool, driven) = empty_pool(options, delivery)?;
        *out_pool = into_handle(pool, driven, delivery)?;
        Ok(())
    })
}

/// An empty pool; a caller-driven one with its runtime, which the pool's connections then use.
fn empty_pool(options: PoolOptions, delivery: Delivery) -> Result<(ConnectionPool, Option<DrivenPool>), Failure> {
    if delivery != Delivery::CallerDriven {
        return Ok((ConnectionPool::new(options), None));
    }
    let driven = DrivenPool::new()?;
    Ok((
        ConnectionPool::with_runtime(options, driven.runtime.handle().clone()),
        Some(driven),
    ))
}

fn into_handle(
    pool: ConnectionPool,
    driven: Option<DrivenPool>,
    delivery: Delivery,
) -> Result<*mut jina_net_pool, Failure> {
    let handle = match &driven {
        Some(d) => {
            crate::runtime::silence_tracing_on_library_threads();
            d.runtime.handle().clone()
        }
        None => super::runtime::library_handle()?,
    };
    Ok(Box::into_raw(Box::new(jina_net_pool {
        pool,
        handle,
        hooks: Arc::new(SendHooks {
            registry: Registry::default(),
            driven: driven.as_ref().map(|d| d.sends.clone()),
            queue: (delivery == Delivery::InPoll).then(CompletionQueue::new),
        }),
        next_id: AtomicU64::new(1),
        driven,
    })))
}

/// The port of a Jina pod's runtime (jina's `K8S_PORT`): the default of `jina_net_pool_new_k8s`.
pub const JINA_NET_K8S_PORT: u16 = 8080;
/// The port of a Jina pod's `uses_before` container (jina's `K8S_PORT_USES_BEFORE`).
pub const JINA_NET_K8S_PORT_USES_BEFORE: u16 = 8081;
/// The port of a Jina pod's `uses_after` container (jina's `K8S_PORT_USES_AFTER`).
pub const JINA_NET_K8S_PORT_USES_AFTER: u16 = 8082;

/// Creates a pool that follows the Jina pods of a Kubernetes namespace (labels
/// `jina_deployment_name`, `pod_type`, `shard_id`; address `podIP:port`) and writes it to
/// `*out_pool`. `kubeconfig_path` (may be NULL) is a kubeconfig file for use outside a cluster; NULL
/// = the in-cluster service account. `namespace` NULL = the kubeconfig's (or the pod's) namespace.
/// `port` 0 = `JINA_NET_K8S_PORT` (8080). Blocks until the first list of pods (at most 10 s): `JINA_NET_KUBERNETES_ERROR`
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
        let (namespace, kubeconfig, (options, delivery)) = unsafe {
            (
                args::optional_string(namespace, "namespace")?,
                args::optional_string(kubeconfig_path, "kubeconfig_path")?,
                pool_options(options)?,
            )
        };
        #[cfg(feature = "k8s")]
        {
            super::runtime::library_handle()?; // the pod watcher runs on the library runtime
            let (pool, driven) = empty_pool(options, delivery)?;
            let pool =
                crate::k8s::k8s_connection_pool_blocking(namespace, kubeconfig.map(std::path::Path::new), port, pool)?;
            *out_pool = into_handle(pool, driven, delivery)?;
            Ok(())
        }
        #[cfg(not(feature = "k8s"))]
        {
            let _ = (namespace, kubeconfig, port, options, delivery, out_pool);
            Err(Failure::new(
                jina_net_result::JINA_NET_UNSUPPORTED,
                "built without the `k8s` feature",
            ))
        }
    })
}

/// Closes the pool: connections are dropped, pending sends complete with `JINA_NET_POOL_CLOSED`,
/// later calls on it fail with `JINA_NET_POOL_CLOSED`. Closing twice is harmless. The pool must
/// still be freed. A caller-driven pool's pending sends complete in the next `jina_net_pool_poll`
/// (a pool with `callbacks_in_poll`: their callbacks run there); closing also makes every
/// `jina_net_pool_poll` of the pool return once it has run what is ready, waiting for nothing (so a
/// thread that polls in a loop can see the pool closed and stop).
///
/// # Safety
/// `pool` must be a live pool.
#[no_mangle]
pub unsafe extern "C" fn jina_net_pool_close(pool: *mut jina_net_pool) -> jina_net_result {
    boundary("jina_net_pool_close", || {
        // SAFETY: the caller passes a live pool.
        let pool = unsafe { pool_ref(pool) }?;
        pool.pool.close();
        if let Some(driven) = &pool.driven {
            driven.sends.close();
        }
        if let Some(queue) = &pool.hooks.queue {
            queue.close();
        }
        Ok(())
    })
}

/// Closes (see `jina_net_pool_close`) and frees the pool. NULL is ignored. Does not wait: callbacks of
/// sends still pending fire (with `JINA_NET_POOL_CLOSED`) on a runtime thread shortly after, so
/// their `user_data` must stay valid until then. A caller-driven pool is different: this call drives
/// it until its pending sends have completed (at most 500 ms; a send still pending then completes
/// with `JINA_NET_RUNTIME_ERROR`), so their callbacks fire inside it, on the calling thread; freed
/// from one of its own callbacks, they fire when the `jina_net_pool_poll` running it returns. A pool
/// with `callbacks_in_poll`: the callbacks queued for a poll run inside this call, on the calling
/// thread (freed from a callback: inside that callback's call to this function, after which the poll
/// running it finishes the callbacks it had taken); sends still pending complete on a library thread.
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
            if let Some(queue) = &pool.hooks.queue {
                queue.shut();
            }
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
    change: impl FnOnce(&ConnectionPool, &str, &str, bool, Option<u32>) -> crate::error::Result<T>,
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

impl From<Option<Arc<Replica>>> for Changed {
    fn from(removed: Option<Arc<Replica>>) -> Self {
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

#[cfg(all(test, feature = "k8s"))]
mod tests {
    #[test]
    fn k8s_ports_match_the_core() {
        assert_eq!(super::JINA_NET_K8S_PORT, crate::k8s::K8S_PORT);
        assert_eq!(super::JINA_NET_K8S_PORT_USES_BEFORE, crate::k8s::K8S_PORT_USES_BEFORE);
        assert_eq!(super::JINA_NET_K8S_PORT_USES_AFTER, crate::k8s::K8S_PORT_USES_AFTER);
    }
}
