//! The Kubernetes connection pool: a [`ConnectionPool`] whose routing follows the namespace's Jina pods
//! through the API server (jina 3.1's `K8sGrpcConnectionPool`, without its flaws).
//!
//! A pod counts when it has the labels `jina_deployment_name`, `pod_type` and `shard_id`. `pod_type`
//! `head` (any case) is the deployment's head; otherwise `shard_id` (empty = 0) is its shard. Its
//! address is `status.podIP:<port>`. It is routed while it has an IP, is `Running`, every container is
//! ready and it is not being deleted. Every watch event counts (jina 3.1 only looked at MODIFIED and lost
//! pods that were ADDED ready or DELETED outright), and each (re-)list is reconciled with the table:
//! what is gone is removed, what is new is added. A lost API server is retried with backoff.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::policy::PoolOptions;
use crate::pool::{ConnectionPool, WeakPool};
use crate::runtime;

/// The port of a Jina pod's runtime.
pub const K8S_PORT: u16 = 8080;
/// The port of the `uses_before` container.
pub const K8S_PORT_USES_BEFORE: u16 = 8081;
/// The port of the `uses_after` container.
pub const K8S_PORT_USES_AFTER: u16 = 8082;

/// Settings of a Kubernetes pool.
#[derive(Debug, Clone)]
pub struct K8sOptions {
    /// The namespace whose pods are followed.
    pub namespace: String,
    /// The port pods are reached on (default [`K8S_PORT`]).
    pub port: u16,
    /// How long construction waits for the first list of pods.
    pub sync_timeout: Duration,
    /// The pool's own options.
    pub pool: PoolOptions,
}

impl K8sOptions {
    /// Defaults for `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        K8sOptions {
            namespace: namespace.into(),
            port: K8S_PORT,
            sync_timeout: Duration::from_secs(10),
            pool: PoolOptions::default(),
        }
    }
}

/// Where one ready Jina pod is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodRoute {
    deployment: String,
    head: bool,
    shard: u32,
    address: String,
}

/// The route of a pod, or `None` when it is not a Jina pod or not ready.
fn route_of(pod: &Pod, port: u16) -> Option<PodRoute> {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let labels = pod.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let (Some(deployment), Some(pod_type), Some(shard_id)) =
        (label("jina_deployment_name"), label("pod_type"), label("shard_id"))
    else {
        tracing::debug!(pod = name, "ignoring pod without the jina labels");
        return None;
    };
    let shard = if shard_id.is_empty() {
        0
    } else {
        match shard_id.parse::<u32>() {
            Ok(s) => s,
            Err(_) => {
                tracing::debug!(pod = name, shard_id, "ignoring pod with an invalid shard_id label");
                return None;
            }
        }
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    if containers.is_empty() || !containers.iter().all(|c| c.ready) {
        return None;
    }
    let address = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    Some(PodRoute {
        deployment: deployment.to_owned(),
        head: pod_type.eq_ignore_ascii_case("head"),
        shard,
        address,
    })
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// The routes the watcher put into the pool, by pod.
#[derive(Default)]
struct Table {
    routes: HashMap<String, PodRoute>,
    /// Routes collected during a (re-)list.
    relist: Option<HashMap<String, PodRoute>>,
}

impl Table {
    fn add(pool: &ConnectionPool, r: &PodRoute) {
        let shard = (!r.head).then_some(r.shard);
        match pool.add_connection(&r.deployment, &r.address, r.head, shard) {
            Ok(true) => {
                tracing::debug!(deployment = %r.deployment, address = %r.address, head = r.head, shard = r.shard, "k8s: route added")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("k8s: cannot add {} to {}: {e}", r.address, r.deployment),
        }
    }

    /// Removes a route unless another pod still maps to it.
    fn remove(&self, pool: &ConnectionPool, r: &PodRoute) {
        if self.routes.values().any(|other| other == r) {
            return;
        }
        let shard = (!r.head).then_some(r.shard);
        if let Ok(Some(_)) = pool.remove_connection(&r.deployment, &r.address, r.head, shard) {
            tracing::debug!(deployment = %r.deployment, address = %r.address, "k8s: route removed");
        }
    }

    fn set(&mut self, pool: &ConnectionPool, key: String, new: Option<PodRoute>) {
        let old = match &new {
            Some(route) => self.routes.insert(key, route.clone()),
            None => self.routes.remove(&key),
        };
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.remove(pool, &old);
        }
        if let Some(new) = new {
            Table::add(pool, &new);
        }
    }

    fn handle(&mut self, pool: &ConnectionPool, event: Event<Pod>, port: u16) -> bool {
        match event {
            Event::Apply(pod) => self.set(pool, pod_key(&pod), route_of(&pod, port)),
            Event::Delete(pod) => self.set(pool, pod_key(&pod), None),
            Event::Init => self.relist = Some(HashMap::new()),
            Event::InitApply(pod) => {
                if let (Some(relist), Some(route)) = (self.relist.as_mut(), route_of(&pod, port)) {
                    relist.insert(pod_key(&pod), route);
                }
            }
            Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                let gone: Vec<String> = self
                    .routes
                    .keys()
                    .filter(|k| !listed.contains_key(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    self.set(pool, key, None);
                }
                for (key, route) in listed {
                    self.set(pool, key, Some(route));
                }
                return true;
            }
        }
        false
    }
}

/// Builds a client from a kubeconfig file (outside a cluster).
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| Error::Kubernetes(format!("cannot read kubeconfig {}: {e}", path.display())))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| Error::Kubernetes(format!("invalid kubeconfig {}: {e}", path.display())))?;
    Client::try_from(config)
        .map_err(|e| Error::Kubernetes(format!("cannot build a client from {}: {e}", path.display())))
}

/// Builds a client from the in-cluster service account; returns it with the pod's namespace.
pub fn in_cluster_client() -> Result<(Client, String)> {
    let config =
        kube::Config::incluster().map_err(|e| Error::Kubernetes(format!("no in-cluster configuration: {e}")))?;
    let namespace = config.default_namespace.clone();
    let client =
        Client::try_from(config).map_err(|e| Error::Kubernetes(format!("cannot build an in-cluster client: {e}")))?;
    Ok((client, namespace))
}

/// Creates a pool that follows the Jina pods of `options.namespace`. Waits for the first list of
/// pods (up to `options.sync_timeout`) so the table is filled when it returns; a first list that
/// fails is an error (wrong kubeconfig, no permission, API server unreachable). Later failures are
/// retried with backoff and every re-list is reconciled. Closing or dropping the pool stops the watch.
pub async fn k8s_connection_pool(client: Client, options: K8sOptions) -> Result<ConnectionPool> {
    let pool = ConnectionPool::new(options.pool.clone());
    follow_pods(client, &options, pool).await
}

/// [`k8s_connection_pool`] with a pool made by the caller (for instance one whose connections run
/// on a caller-driven runtime); `options.pool` is not used. The pool should be empty.
pub async fn follow_pods(client: Client, options: &K8sOptions, pool: ConnectionPool) -> Result<ConnectionPool> {
    let api: Api<Pod> = Api::namespaced(client, &options.namespace);
    let (synced_tx, synced_rx) = oneshot::channel::<std::result::Result<(), String>>();
    let weak = pool.downgrade();
    let closed = pool.closed_signal();
    let port = options.port;
    let namespace = options.namespace.clone();
    runtime::handle()?.spawn(watch(weak, api, port, namespace, closed, synced_tx));
    match tokio::time::timeout(options.sync_timeout, synced_rx).await {
        Ok(Ok(Ok(()))) => Ok(pool),
        Ok(Ok(Err(message))) => {
            pool.close();
            Err(Error::Kubernetes(format!(
                "cannot list pods in namespace {:?}: {message}",
                options.namespace
            )))
        }
        Ok(Err(_)) => Err(Error::Kubernetes(
            "the pod watcher stopped before the first list".into(),
        )),
        Err(_) => {
            pool.close();
            Err(Error::Kubernetes(format!(
                "no list of pods in namespace {:?} within {:?}",
                options.namespace, options.sync_timeout
            )))
        }
    }
}

async fn watch(
    weak: WeakPool,
    api: Api<Pod>,
    port: u16,
    namespace: String,
    closed: crate::runtime::Signal,
    synced: oneshot::Sender<std::result::Result<(), String>>,
) {
    let mut synced = Some(synced);
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut table = Table::default();
    loop {
        let next = tokio::select! {
            _ = closed.fired() => break,
            next = stream.next() => next,
        };
        match next {
            None => break,
            Some(Ok(event)) => {
                let Some(pool) = weak.upgrade() else { break };
                if table.handle(&pool, event, port) {
                    if let Some(tx) = synced.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!(namespace = %namespace, "k8s: pod watch failed, retrying with backoff: {e}");
                if let Some(tx) = synced.take() {
                    let _ = tx.send(Err(e.to_string()));
                    break;
                }
            }
        }
    }
    tracing::debug!(namespace = %namespace, "k8s: pod watch stopped");
}

/// Blocking form for the C ABI: `pool` (empty) following `namespace`, with a client from
/// `kubeconfig` (a path) or, without one, from the in-cluster service account.
pub fn k8s_connection_pool_blocking(
    namespace: Option<&str>,
    kubeconfig: Option<&Path>,
    port: u16,
    pool: ConnectionPool,
) -> Result<ConnectionPool> {
    let namespace = namespace.map(str::to_owned);
    let kubeconfig = kubeconfig.map(Path::to_path_buf);
    runtime::block_on(async move {
        let (client, default_ns) = match kubeconfig {
            Some(path) => {
                let client = client_from_kubeconfig(&path).await?;
                let ns = client.default_namespace().to_owned();
                (client, ns)
            }
            None => in_cluster_client()?,
        };
        let mut options = K8sOptions::new(namespace.unwrap_or(default_ns));
        options.port = if port == 0 { K8S_PORT } else { port };
        follow_pods(client, &options, pool).await
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(labels: &[(&str, &str)], ip: Option<&str>, phase: &str, ready: &[bool]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                pod_ip: ip.map(Into::into),
                container_statuses: Some(
                    ready
                        .iter()
                        .map(|r| ContainerStatus {
                            ready: *r,
                            name: "c".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const JINA: &[(&str, &str)] = &[
        ("jina_deployment_name", "enc"),
        ("pod_type", "WORKER"),
        ("shard_id", ""),
    ];

    #[test]
    fn routes_of_pods() {
        let r = route_of(&pod(JINA, Some("10.1.2.3"), "Running", &[true, true]), 8080).unwrap();
        assert_eq!(
            r,
            PodRoute {
                deployment: "enc".into(),
                head: false,
                shard: 0,
                address: "10.1.2.3:8080".into()
            }
        );
        let head = [("jina_deployment_name", "enc"), ("pod_type", "Head"), ("shard_id", "")];
        assert!(
            route_of(&pod(&head, Some("10.0.0.1"), "Running", &[true]), 1)
                .unwrap()
                .head
        );
        let shard = [
            ("jina_deployment_name", "enc"),
            ("pod_type", "WORKER"),
            ("shard_id", "2"),
        ];
        assert_eq!(
            route_of(&pod(&shard, Some("fd00::1"), "Running", &[true]), 9)
                .unwrap()
                .address,
            "[fd00::1]:9"
        );
        assert_eq!(
            route_of(&pod(&shard, Some("1.1.1.1"), "Running", &[true]), 9)
                .unwrap()
                .shard,
            2
        );
        // not ready / not running / no IP / not jina / bad shard
        assert!(route_of(&pod(JINA, Some("10.1.2.3"), "Running", &[true, false]), 1).is_none());
        assert!(route_of(&pod(JINA, Some("10.1.2.3"), "Running", &[]), 1).is_none());
        assert!(route_of(&pod(JINA, Some("10.1.2.3"), "Pending", &[true]), 1).is_none());
        assert!(route_of(&pod(JINA, None, "Running", &[true]), 1).is_none());
        assert!(route_of(&pod(&[("app", "nginx")], Some("10.1.2.3"), "Running", &[true]), 1).is_none());
        let bad = [
            ("jina_deployment_name", "enc"),
            ("pod_type", "WORKER"),
            ("shard_id", "x"),
        ];
        assert!(route_of(&pod(&bad, Some("10.1.2.3"), "Running", &[true]), 1).is_none());
        let mut deleting = pod(JINA, Some("10.1.2.3"), "Running", &[true]);
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()));
        assert!(route_of(&deleting, 1).is_none());
    }
}
