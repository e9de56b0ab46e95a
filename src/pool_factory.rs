//! jina's `create_connection_pool`: a plain pool, or one that follows Kubernetes pods. It sits above
//! both [`crate::pool`] and [`crate::k8s`], so the pool itself knows nothing of Kubernetes.

use crate::error::Result;
use crate::policy::PoolOptions;
use crate::pool::ConnectionPool;

/// jina's `create_connection_pool(k8s, namespace)`: with `k8s`, a pool that follows the pods of
/// `namespace` (default: the pod's own) with the in-cluster service account (see [`crate::k8s`];
/// blocking until the first list of pods); else a plain pool.
pub fn create_connection_pool(k8s: bool, namespace: Option<&str>, options: PoolOptions) -> Result<ConnectionPool> {
    if !k8s {
        return Ok(ConnectionPool::new(options));
    }
    #[cfg(feature = "k8s")]
    {
        crate::k8s::k8s_connection_pool_blocking(namespace, None, crate::k8s::K8S_PORT, ConnectionPool::new(options))
    }
    #[cfg(not(feature = "k8s"))]
    {
        let _ = namespace;
        Err(crate::error::Error::Unsupported(
            "the Kubernetes connection pool (built without the `k8s` feature)",
        ))
    }
}
