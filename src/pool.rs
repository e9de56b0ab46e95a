//! The connection pool: deployment → head | shards → [`ReplicaList`], and the sends routed over it
//! (jina 3.1's `GrpcConnectionPool`).

use std::collections::{BTreeMap, HashMap};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::balance::Balance;
use crate::connection::{CallOptions, ConnectionConfig, Response};
use crate::error::{Error, ReplicaSet, Result};
use crate::health::OutlierPolicy;
use crate::hedge::HedgePolicy;
use crate::limit::InFlightLimit;
use crate::load::Tuning;
use crate::replica_list::{Pick, ReplicaList};
use crate::request::{Method, Payload, Request};
use crate::retry::RetryPolicy;
use crate::send::send_to_target;

/// How many replica lists a send goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Polling {
    /// One target: the head, the given shard, or the deployment's shards in turn.
    #[default]
    Any,
    /// One send per shard of the deployment (head and shard id are ignored).
    All,
}

/// Everything a pool is configured with. The default behaves as jina 3.1.0's pool;
/// [`PoolOptions::resilient`] adds fail-over, backoff and outlier ejection.
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    /// How connections are opened (channel options, TLS).
    pub connection: ConnectionConfig,
    /// The retry policy of every send.
    pub retry: RetryPolicy,
    /// When replicas that keep failing are skipped.
    pub outlier: OutlierPolicy,
    /// Deadline applied to sends that do not give their own; `None` = none.
    pub default_timeout: Option<Duration>,
    /// How a replica is picked: jina's round robin (default) or p2c over PeakEWMA costs.
    pub balance: Balance,
    /// At most this many calls in flight per replica, with a bounded queue when all are full
    /// (`None` = no limit, the default).
    pub in_flight_limit: Option<InFlightLimit>,
    /// Hedging of sends marked idempotent ([`RoutedSend::idempotent`]); `None` = never (default).
    pub hedge: Option<HedgePolicy>,
    /// Keep per-replica metrics ([`ConnectionPool::metrics_text`]); off by default.
    pub metrics: bool,
}

impl PoolOptions {
    /// Fail-over to the next replica with jittered backoff ([`RetryPolicy::resilient`]) and passive
    /// outlier ejection ([`OutlierPolicy::resilient`]).
    pub fn resilient() -> Self {
        PoolOptions {
            retry: RetryPolicy::resilient(),
            outlier: OutlierPolicy::resilient(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Default)]
struct Deployment {
    heads: BTreeMap<u32, ReplicaList>,
    shards: BTreeMap<u32, ReplicaList>,
    /// jina's per-deployment `_access_count`, rotating sends without a shard id over the shards.
    access_count: AtomicUsize,
}

impl Deployment {
    fn lists(&self, head: bool) -> &BTreeMap<u32, ReplicaList> {
        if head {
            &self.heads
        } else {
            &self.shards
        }
    }
}

struct Inner {
    table: RwLock<HashMap<Arc<str>, Deployment>>,
    options: PoolOptions,
    closed: CancellationToken,
    /// The optional send-path features; `None` when all are off.
    tuning: Option<Arc<Tuning>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// A routed target: the replica set and the replica picked in it.
pub type Target = (ReplicaSet, Pick);

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The deployment.
    pub deployment: String,
    /// Its head or one of its shards.
    pub replica_set: ReplicaSet,
    /// `host:port` of each replica, in round-robin order.
    pub addresses: Vec<String>,
}

/// A pool of gRPC connections to the heads and worker replicas of deployments.
///
/// Cheap to clone (all clones share the pool) and safe to use from any thread. Routing runs under
/// a short read lock that is never held across an await. Dropping the last clone closes the pool.
#[derive(Clone)]
pub struct ConnectionPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("routes", &self.routing_table().ok())
            .finish()
    }
}

impl Default for ConnectionPool {
    fn default() -> Self {
        ConnectionPool::new(PoolOptions::default())
    }
}

/// A pool reference that does not keep the pool alive (for background tasks such as the pod watcher).
#[derive(Clone)]
pub struct WeakPool {
    inner: std::sync::Weak<Inner>,
}

impl WeakPool {
    /// The pool, if it is still alive and open.
    pub fn upgrade(&self) -> Option<ConnectionPool> {
        self.inner
            .upgrade()
            .map(|inner| ConnectionPool { inner })
            .filter(|p| !p.is_closed())
    }
}

impl ConnectionPool {
    /// An empty pool.
    pub fn new(options: PoolOptions) -> Self {
        let tuning =
            Tuning::new(options.balance, options.in_flight_limit, options.hedge, options.metrics).map(Arc::new);
        ConnectionPool {
            inner: Arc::new(Inner {
                table: RwLock::default(),
                options,
                closed: CancellationToken::new(),
                tuning,
            }),
        }
    }

    /// A reference that does not keep the pool alive.
    pub fn downgrade(&self) -> WeakPool {
        WeakPool {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Cancelled when the pool is closed or dropped.
    pub fn closed_token(&self) -> CancellationToken {
        self.inner.closed.clone()
    }

    /// The pool's options.
    pub fn options(&self) -> &PoolOptions {
        &self.inner.options
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, HashMap<Arc<str>, Deployment>>> {
        if self.is_closed() {
            return Err(Error::PoolClosed);
        }
        Ok(self.inner.table.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, HashMap<Arc<str>, Deployment>>> {
        if self.is_closed() {
            return Err(Error::PoolClosed);
        }
        Ok(self.inner.table.write().unwrap_or_else(|p| p.into_inner()))
    }

    /// Adds a replica: to the deployment's head when `head` (head id 0), else to shard `shard_id`
    /// (`None` = shard 0). Adding a known address again does nothing. Returns whether it was added.
    pub fn add_connection(&self, deployment: &str, address: &str, head: bool, shard_id: Option<u32>) -> Result<bool> {
        let (head, id) = if head {
            (true, 0)
        } else {
            (false, shard_id.unwrap_or(0))
        };
        let parsed = crate::address::Address::parse(address)?;
        let known = |table: &HashMap<Arc<str>, Deployment>| {
            table
                .get(deployment)
                .and_then(|d| d.lists(head).get(&id))
                .is_some_and(|l| l.has_connection(parsed.key()))
        };
        if known(&*self.read()?) {
            tracing::debug!(deployment, address, "ignoring known address");
            return Ok(false);
        }
        // Open outside the lock (the channel connects lazily, but TLS setup reads certificates).
        let load = self.inner.tuning.as_ref().and_then(|t| t.new_load());
        let connection = Arc::new(self.inner.options.connection.open(parsed)?.with_load(load));
        let mut table = self.write()?;
        let entry = match table.get_mut(deployment) {
            Some(d) => d,
            None => table.entry(Arc::from(deployment)).or_default(),
        };
        let lists = if head { &mut entry.heads } else { &mut entry.shards };
        tracing::debug!(deployment, address, head, id, "adding connection");
        Ok(lists.entry(id).or_default().add(connection))
    }

    /// Removes a replica. Returns the removed connection, or `None` when the pool had none at that
    /// place. A replica list that becomes empty is dropped (and a deployment with no lists left).
    pub fn remove_connection(
        &self,
        deployment: &str,
        address: &str,
        head: bool,
        shard_id: Option<u32>,
    ) -> Result<Option<Arc<crate::connection::Connection>>> {
        let (head, id) = if head {
            (true, 0)
        } else {
            (false, shard_id.unwrap_or(0))
        };
        let mut table = self.write()?;
        let Some(entry) = table.get_mut(deployment) else {
            return Ok(None);
        };
        let lists = if head { &mut entry.heads } else { &mut entry.shards };
        let Some(list) = lists.get_mut(&id) else {
            return Ok(None);
        };
        let removed = list.remove_connection(address);
        if !list.has_connections() {
            lists.remove(&id);
        }
        if entry.heads.is_empty() && entry.shards.is_empty() {
            table.remove(deployment);
        }
        Ok(removed)
    }

    /// Whether the pool knows `deployment`.
    pub fn has_deployment(&self, deployment: &str) -> bool {
        self.read().is_ok_and(|t| t.contains_key(deployment))
    }

    /// The routing table, deployments sorted by name, heads before shards.
    pub fn routing_table(&self) -> Result<Vec<Route>> {
        let table = self.read()?;
        let mut names: Vec<&Arc<str>> = table.keys().collect();
        names.sort();
        let mut routes = Vec::new();
        for name in names {
            let d = &table[name];
            let sets = d
                .heads
                .values()
                .map(|l| (ReplicaSet::Head, l))
                .chain(d.shards.iter().map(|(id, l)| (ReplicaSet::Shard(*id), l)));
            for (replica_set, list) in sets {
                routes.push(Route {
                    deployment: name.to_string(),
                    replica_set,
                    addresses: list
                        .all_connections()
                        .iter()
                        .map(|c| c.address().key().to_owned())
                        .collect(),
                });
            }
        }
        Ok(routes)
    }

    /// Picks the targets of a send without sending: jina's routing of `send_requests`.
    pub fn route(
        &self,
        deployment: &str,
        head: bool,
        shard_id: Option<u32>,
        polling: Polling,
    ) -> Result<(Arc<str>, Vec<Target>)> {
        let table = self.read()?;
        let Some((name, d)) = table.get_key_value(deployment) else {
            tracing::debug!(deployment, "unknown deployment, no replicas available");
            return Err(Error::UnknownDeployment {
                deployment: deployment.to_owned(),
            });
        };
        let no_replicas = |target: String| Error::NoReplicas {
            deployment: deployment.to_owned(),
            target,
        };
        let set = |head: bool, id: u32| {
            if head {
                ReplicaSet::Head
            } else {
                ReplicaSet::Shard(id)
            }
        };
        let mut targets = Vec::new();
        match polling {
            Polling::All => {
                for (id, list) in &d.shards {
                    if let Some(pick) = self.pick(list) {
                        targets.push((ReplicaSet::Shard(*id), pick));
                    }
                }
                if targets.is_empty() {
                    return Err(no_replicas("all shards".into()));
                }
            }
            Polling::Any => {
                let lists = d.lists(head);
                let id = match (head, shard_id) {
                    (true, _) => Some(0),
                    (false, Some(id)) => Some(id),
                    (false, None) => None,
                };
                let picked = match id {
                    Some(id) => lists.get(&id).map(|l| (id, l)),
                    // Rotate over the shards as jina does: the counter is bumped first.
                    None if !lists.is_empty() => {
                        let n = d.access_count.fetch_add(1, Ordering::Relaxed).wrapping_add(1) % lists.len();
                        lists.iter().nth(n).map(|(id, l)| (*id, l))
                    }
                    None => None,
                };
                let what = match id {
                    Some(id) => set(head, id).to_string(),
                    None => "any shard".to_owned(),
                };
                let (id, list) = picked.ok_or_else(|| no_replicas(what.clone()))?;
                let pick = self.pick(list).ok_or_else(|| no_replicas(what))?;
                targets.push((set(head, id), pick));
            }
        }
        Ok((name.clone(), targets))
    }

    fn pick(&self, list: &ReplicaList) -> Option<Pick> {
        match &self.inner.tuning {
            None => list.pick(),
            Some(tuning) => list.pick_tuned(tuning),
        }
    }

    /// The pool's metrics in the Prometheus text exposition format (version 0.0.4): per deployment,
    /// head or shard (`shard="head"` or the shard id) and replica address, the latency histogram
    /// `jina_sending_request_seconds`, calls, retries, hedges, ejections, errors by gRPC code and
    /// calls in flight; with in-flight limits, the queued and rejected sends of each head or shard.
    /// `None` when the pool was created without [`PoolOptions::metrics`]. Replicas removed from the
    /// pool drop out of it.
    pub fn metrics_text(&self) -> Result<Option<String>> {
        if !self.inner.options.metrics {
            return Ok(None);
        }
        let table = self.read()?;
        let mut names: Vec<&Arc<str>> = table.keys().collect();
        names.sort();
        let mut rows = Vec::new();
        let mut queues = Vec::new();
        for name in names {
            let d = &table[name];
            let lists = d
                .heads
                .values()
                .map(|l| ("head".to_owned(), l))
                .chain(d.shards.iter().map(|(id, l)| (id.to_string(), l)));
            for (shard, list) in lists {
                if self
                    .inner
                    .options
                    .in_flight_limit
                    .is_some_and(|l| l.max_per_replica > 0)
                {
                    queues.push(crate::metrics::QueueRow {
                        deployment: name,
                        shard: shard.clone(),
                        waiting: list.queue().waiting(),
                        rejected: list.queue().rejected(),
                    });
                }
                for c in list.all_connections() {
                    if let Some(load) = c.load() {
                        if let Some(metrics) = load.metrics() {
                            rows.push(crate::metrics::ReplicaRow {
                                deployment: name,
                                shard: shard.clone(),
                                address: c.address().key(),
                                in_flight: load.in_flight(),
                                metrics,
                            });
                        }
                    }
                }
            }
        }
        Ok(Some(crate::metrics::render(&rows, &queues)))
    }

    /// Routes `requests` and returns the send, ready to be awaited (or spawned). Routing happens now,
    /// so the round-robin order is the call order. `endpoint` travels as the `endpoint` metadata of
    /// data requests; `timeout` (or the pool's default) bounds the whole send, retries included.
    #[allow(clippy::too_many_arguments)]
    pub fn send_requests(
        &self,
        requests: &[Request],
        deployment: &str,
        head: bool,
        shard_id: Option<u32>,
        polling: Polling,
        endpoint: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<RoutedSend> {
        let (payload, method) = Payload::new(requests)?;
        let options = CallOptions::new(endpoint, timeout.or(self.inner.options.default_timeout))?;
        let (deployment, targets) = self.route(deployment, head, shard_id, polling)?;
        Ok(RoutedSend {
            deployment,
            targets,
            payload,
            method,
            options,
            retry: self.inner.options.retry,
            outlier: self.inner.options.outlier,
            closed: self.inner.closed.clone(),
            tuning: self.inner.tuning.clone(),
            idempotent: false,
        })
    }

    /// [`send_requests`](Self::send_requests) with one request.
    #[allow(clippy::too_many_arguments)]
    pub fn send_request(
        &self,
        request: Request,
        deployment: &str,
        head: bool,
        shard_id: Option<u32>,
        polling: Polling,
        endpoint: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<RoutedSend> {
        self.send_requests(&[request], deployment, head, shard_id, polling, endpoint, timeout)
    }

    /// jina's `send_requests_once`: one target, the head or (rotating) a shard.
    pub fn send_requests_once(
        &self,
        requests: &[Request],
        deployment: &str,
        head: bool,
        endpoint: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<RoutedSend> {
        self.send_requests(requests, deployment, head, None, Polling::Any, endpoint, timeout)
    }

    /// jina's `send_request_once`.
    pub fn send_request_once(
        &self,
        request: Request,
        deployment: &str,
        head: bool,
        endpoint: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<RoutedSend> {
        self.send_requests_once(&[request], deployment, head, endpoint, timeout)
    }

    /// Closes the pool: every connection is dropped, sends still running complete with
    /// [`Error::PoolClosed`], and every later call fails with it. Closing twice is harmless.
    pub fn close(&self) {
        self.inner.closed.cancel();
        let mut table = self.inner.table.write().unwrap_or_else(|p| p.into_inner());
        table.clear();
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }
}

/// The result of a send at one target.
#[derive(Debug)]
pub struct TargetResult {
    /// The head or shard the send went to.
    pub replica_set: ReplicaSet,
    /// `host:port` of the replica that answered last (after a fail-over, not the first one picked).
    pub address: Arc<str>,
    /// The response, or what went wrong (with deployment, replica set, address and gRPC status).
    pub result: Result<Response>,
}

/// A routed send: its targets are fixed; await it (or [`run`](RoutedSend::run)) to perform the calls, one
/// per target, concurrently. It completes with one [`TargetResult`] per target, in target order.
#[must_use = "a send does nothing until it is awaited"]
pub struct RoutedSend {
    deployment: Arc<str>,
    targets: Vec<Target>,
    payload: Payload,
    method: Method,
    options: CallOptions,
    retry: RetryPolicy,
    outlier: OutlierPolicy,
    closed: CancellationToken,
    tuning: Option<Arc<Tuning>>,
    idempotent: bool,
}

impl std::fmt::Debug for RoutedSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedSend")
            .field("deployment", &self.deployment)
            .field("targets", &self.targets().collect::<Vec<_>>())
            .field("method", &self.method)
            .finish()
    }
}

impl RoutedSend {
    /// The deployment the send goes to.
    pub fn deployment(&self) -> &str {
        &self.deployment
    }

    /// The targets: replica set and address.
    pub fn targets(&self) -> impl Iterator<Item = (ReplicaSet, &str)> {
        self.targets.iter().map(|(s, p)| (*s, p.connection().address().key()))
    }

    /// The number of targets (jina's number of tasks).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the send has no target (never true for a send the pool returned).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The gRPC method the send calls.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Marks the send idempotent (or not): only idempotent sends are hedged, when the pool hedges
    /// ([`PoolOptions::hedge`]). Sends are not idempotent unless marked.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Performs the calls. If the pool is closed meanwhile, every target completes with
    /// [`Error::PoolClosed`]; if `cancel` fires, with a `CANCELLED` error naming the address.
    pub async fn run_cancellable(self, cancel: Option<&CancellationToken>) -> Vec<TargetResult> {
        let RoutedSend {
            deployment,
            targets,
            payload,
            method,
            options,
            retry,
            outlier,
            closed,
            tuning,
            idempotent,
        } = self;
        let tuning = tuning.as_deref();
        let call = |target| {
            call_target(
                target,
                &payload,
                method,
                &options,
                &retry,
                &outlier,
                tuning,
                idempotent,
                &deployment,
            )
        };
        let calls = async {
            match targets.as_slice() {
                // One target (polling ANY): no join machinery.
                [one] => vec![call(one).await],
                many => join_all(many.iter().map(call)).await,
            }
        };
        let cancelled = async {
            match cancel {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            biased;
            results = calls => Ok(results),
            _ = closed.cancelled() => Err(None),
            _ = cancelled => Err(Some(())),
        };
        match outcome {
            Ok(results) => targets
                .iter()
                .zip(results)
                .map(|((set, pick), result)| {
                    let address = match &result {
                        Ok(r) => r.address.clone(),
                        Err(Error::Rpc(e)) if e.address != pick.connection().address().key() => {
                            Arc::from(e.address.as_str())
                        }
                        Err(_) => pick.connection().key(),
                    };
                    TargetResult {
                        replica_set: *set,
                        address,
                        result,
                    }
                })
                .collect(),
            Err(cancelled) => targets
                .iter()
                .map(|(set, pick)| TargetResult {
                    replica_set: *set,
                    address: pick.connection().key(),
                    result: Err(match cancelled {
                        None => Error::PoolClosed,
                        Some(()) => Error::Rpc(Box::new(crate::error::RpcError {
                            deployment: Some(deployment.to_string()),
                            replica_set: Some(*set),
                            address: pick.connection().address().key().to_owned(),
                            code: tonic::Code::Cancelled,
                            message: "send cancelled by the caller".into(),
                            attempts: 1,
                            metadata: Default::default(),
                        })),
                    }),
                })
                .collect(),
        }
    }

    /// Performs the calls (see [`run_cancellable`](Self::run_cancellable)).
    pub async fn run(self) -> Vec<TargetResult> {
        self.run_cancellable(None).await
    }
}

/// One target of a send: the call with its retries; errors name the deployment and replica set.
#[allow(clippy::too_many_arguments)]
async fn call_target(
    (set, pick): &Target,
    payload: &Payload,
    method: Method,
    options: &CallOptions,
    retry: &RetryPolicy,
    outlier: &OutlierPolicy,
    tuning: Option<&Tuning>,
    idempotent: bool,
    deployment: &str,
) -> Result<Response> {
    // Boxed: the call's state (a few KiB of tonic and h2 futures) is built once on the heap when the
    // call starts, instead of making every send's task that large (a task is copied when spawned).
    Box::pin(send_to_target(
        pick, payload, method, options, retry, outlier, tuning, idempotent,
    ))
    .await
    .map_err(|e| e.in_deployment(deployment, *set))
}

impl IntoFuture for RoutedSend {
    type Output = Vec<TargetResult>;
    type IntoFuture = Pin<Box<dyn Future<Output = Vec<TargetResult>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
