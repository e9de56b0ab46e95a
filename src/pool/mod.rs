//! The connection pool: deployment → head | shards → [`ReplicaList`], and the sends routed over it
//! (jina 3.1's `GrpcConnectionPool`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::address::Kind;
use crate::error::{Error, ReplicaSet, Result};
use crate::pick::{Pick, ReplicaList};
use crate::policy::{PoolOptions, SendPolicy};
use crate::replica::{Load, Replica, ReplicaConfig, ReplicaState};
use crate::request::{Payload, Request};
use crate::runtime::Signal;
use crate::send::SendPlan;
use crate::transport::{compress, CallOptions, Metadata};

mod dns;
mod metrics;
mod routed;

use dns::DnsEntry;
pub use dns::Resolver;

pub use routed::{RoutedSend, RoutedTarget, TargetResult};

/// How many replica lists a send goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Polling {
    /// One target: the head, the given shard, or the deployment's shards in turn.
    #[default]
    Any,
    /// One send per shard of the deployment (head and shard id are ignored).
    All,
}

/// Where a send goes within its deployment (jina's `head`, `shard_id` and `polling_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum To {
    /// The deployment's head (head id 0).
    Head,
    /// One shard.
    Shard(u32),
    /// The deployment's shards in turn (jina's `shard_id=None`); the default.
    #[default]
    AnyShard,
    /// One send per shard of the deployment (jina's `polling_type=ALL`).
    AllShards,
}

impl To {
    /// jina's arguments: with polling ALL every shard (head and shard id are ignored); else the
    /// head when `head`, else shard `shard_id`, or the shards in turn when it is `None`.
    pub fn jina(head: bool, shard_id: Option<u32>, polling: Polling) -> To {
        match (polling, head, shard_id) {
            (Polling::All, _, _) => To::AllShards,
            (Polling::Any, true, _) => To::Head,
            (Polling::Any, false, Some(id)) => To::Shard(id),
            (Polling::Any, false, None) => To::AnyShard,
        }
    }
}

/// Per-send settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions<'a> {
    /// The `endpoint` metadata of data requests.
    pub endpoint: Option<&'a str>,
    /// Deadline of the whole send, retries and hedges included; `None` = the pool's default.
    pub timeout: Option<Duration>,
    /// The send may be performed more than once: only idempotent sends are hedged, when the pool
    /// hedges ([`PoolOptions::hedge`]). Sends are not idempotent unless marked.
    pub idempotent: bool,
    /// Request metadata sent with every attempt (see [`Metadata`]).
    pub metadata: Option<&'a Metadata>,
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
    /// How replicas are opened (the options' connection settings and the pool's runtime).
    replicas: ReplicaConfig,
    closed: Signal,
    /// The settings every send runs with.
    policy: Arc<SendPolicy>,
    /// The `dns:` addresses added, and what they resolved to.
    dns: Mutex<Vec<DnsEntry>>,
    /// A resolver set by the embedder; `None` = the system's.
    resolver: RwLock<Option<Resolver>>,
    /// The task that re-resolves the `dns:` addresses runs.
    refreshing: AtomicBool,
}

/// Where a replica is added, and how it is reached.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddOptions<'a> {
    /// The deployment's head (head id 0) instead of a shard.
    pub head: bool,
    /// The shard (`None` = shard 0); ignored for a head.
    pub shard_id: Option<u32>,
    /// The name the replica's TLS certificate must carry instead of the address's host (gRPC's
    /// `grpc.ssl_target_name_override`); `None` = the pool's setting.
    pub tls_server_name: Option<&'a str>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.fire();
    }
}

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The deployment.
    pub deployment: String,
    /// Its head or one of its shards.
    pub replica_set: ReplicaSet,
    /// `host:port` of each replica, in round-robin order.
    pub addresses: Vec<String>,
    /// Where the connection of each replica stands, in the same order.
    pub states: Vec<ReplicaState>,
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
    /// An empty pool whose connections run on the library runtime.
    pub fn new(options: PoolOptions) -> Self {
        Self::on_runtime(options, None)
    }

    /// An empty pool whose connections' background tasks run on `runtime` (for instance a
    /// [`DrivenRuntime`](crate::runtime::DrivenRuntime)'s) instead of the library runtime.
    pub fn with_runtime(options: PoolOptions, runtime: Handle) -> Self {
        Self::on_runtime(options, Some(runtime))
    }

    fn on_runtime(options: PoolOptions, runtime: Option<Handle>) -> Self {
        ConnectionPool {
            inner: Arc::new(Inner {
                table: RwLock::default(),
                replicas: ReplicaConfig {
                    connection: options.connection.clone(),
                    runtime,
                },
                policy: Arc::new(options.send_policy()),
                options,
                closed: Signal::new(),
                dns: Mutex::default(),
                resolver: RwLock::default(),
                refreshing: AtomicBool::new(false),
            }),
        }
    }

    /// A reference that does not keep the pool alive.
    pub fn downgrade(&self) -> WeakPool {
        WeakPool {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Fired when the pool is closed or dropped.
    pub fn closed_signal(&self) -> Signal {
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
    /// A `dns:///host:port` address adds one replica per address the name resolves to, and follows
    /// the name while the pool lives (see [`PoolOptions::dns_refresh`]).
    pub fn add_connection(&self, deployment: &str, address: &str, head: bool, shard_id: Option<u32>) -> Result<bool> {
        let options = AddOptions {
            head,
            shard_id,
            tls_server_name: None,
        };
        self.add_connection_with(deployment, address, &options)
    }

    /// [`add_connection`](Self::add_connection) with the settings of `options`.
    pub fn add_connection_with(&self, deployment: &str, address: &str, options: &AddOptions<'_>) -> Result<bool> {
        if deployment.is_empty() || deployment.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(format!(
                "deployment name {deployment:?}: empty or with a control character"
            )));
        }
        let (head, id) = if options.head {
            (true, 0)
        } else {
            (false, options.shard_id.unwrap_or(0))
        };
        let parsed = crate::address::Address::parse(address)?;
        if parsed.kind() == Kind::Dns {
            return self.add_dns(deployment, head, id, parsed, options.tls_server_name);
        }
        self.add_replica(deployment, head, id, parsed, options.tls_server_name)
    }

    fn add_replica(
        &self,
        deployment: &str,
        head: bool,
        id: u32,
        address: crate::address::Address,
        tls_server_name: Option<&str>,
    ) -> Result<bool> {
        let known = |table: &HashMap<Arc<str>, Deployment>| {
            table
                .get(deployment)
                .and_then(|d| d.lists(head).get(&id))
                .is_some_and(|l| l.has_connection(address.key()))
        };
        if known(&*self.read()?) {
            tracing::debug!(deployment, address = %address, "ignoring known address");
            return Ok(false);
        }
        // Open outside the lock (the channel connects lazily, but TLS setup reads certificates).
        let load = Load::for_tuning(self.inner.policy.tuning.as_ref());
        let key = address.key().to_owned();
        let replica = self.inner.replicas.open_with(address, load, tls_server_name)?;
        let mut table = self.write()?;
        let entry = match table.get_mut(deployment) {
            Some(d) => d,
            None => table.entry(Arc::from(deployment)).or_default(),
        };
        let lists = if head { &mut entry.heads } else { &mut entry.shards };
        tracing::debug!(deployment, address = %key, head, id, "adding connection");
        let budget = self.inner.policy.budget.as_ref();
        Ok(lists
            .entry(id)
            .or_insert_with(|| ReplicaList::with_budget(budget))
            .add(replica))
    }

    /// Adds the replicas a `dns:` address resolves to, and remembers the name to follow it.
    fn add_dns(
        &self,
        deployment: &str,
        head: bool,
        id: u32,
        address: crate::address::Address,
        tls_server_name: Option<&str>,
    ) -> Result<bool> {
        let same = |e: &DnsEntry| &*e.deployment == deployment && e.head == head && e.id == id && e.address == address;
        if self.dns_entries().iter().any(same) {
            return Ok(false);
        }
        let resolver = self.inner.resolver.read().unwrap_or_else(|p| p.into_inner()).clone();
        let records = dns::resolve(resolver.as_ref(), &address)?;
        // Its replicas are reached by IP: over TLS their certificates are checked against the name
        // (as gRPC's DNS resolver does), unless the caller or the pool names another.
        let tls = &self.inner.replicas.connection.tls;
        let tls_server_name = match tls_server_name {
            Some(name) => Some(name.to_owned()),
            None if tls.server_name.is_none() && (address.tls() || tls.force) => Some(address.host().to_owned()),
            None => None,
        };
        let entry = DnsEntry {
            deployment: Arc::from(deployment),
            head,
            id,
            address,
            tls_server_name,
            records: records.clone(),
            resolved_at: std::time::Instant::now(),
        };
        let mut added = false;
        for a in entry.replicas(&records) {
            added |= self.add_replica(deployment, head, id, a, entry.tls_server_name.as_deref())?;
        }
        tracing::debug!(deployment, address = %entry.address, records = records.len(), "following a dns: address");
        self.dns_entries().push(entry);
        self.start_dns_refresh();
        Ok(added)
    }

    fn dns_entries(&self) -> std::sync::MutexGuard<'_, Vec<DnsEntry>> {
        self.inner.dns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the resolver of `dns:` addresses (the system's by default), for those added later and the
    /// re-resolutions of all.
    pub fn set_resolver(&self, resolver: Resolver) {
        *self.inner.resolver.write().unwrap_or_else(|p| p.into_inner()) = Some(resolver);
    }

    /// Starts (once) the task that re-resolves the `dns:` addresses: every `dns_refresh`, and within a
    /// second when one of a name's replicas fails or stops answering.
    fn start_dns_refresh(&self) {
        let Some(refresh) = self.inner.options.dns_refresh else {
            return;
        };
        if self.inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = self.downgrade();
        let closed = self.closed_signal();
        let spawn = |handle: &tokio::runtime::Handle| {
            handle.spawn(async move {
                let tick = refresh.min(std::time::Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = closed.fired() => return,
                        _ = tokio::time::sleep(tick) => {}
                    }
                    let Some(pool) = weak.upgrade() else { return };
                    pool.refresh_dns(refresh);
                }
            });
        };
        match &self.inner.replicas.runtime {
            Some(handle) => spawn(handle),
            None => {
                if let Ok(handle) = crate::runtime::handle() {
                    spawn(&handle);
                }
            }
        }
    }

    /// Re-resolves the `dns:` addresses that are due, and adds and removes their replicas.
    fn refresh_dns(&self, refresh: std::time::Duration) {
        let due: Vec<DnsEntry> = {
            let entries = self.dns_entries();
            entries
                .iter()
                .filter(|e| {
                    let age = e.resolved_at.elapsed();
                    age >= refresh || (age >= std::time::Duration::from_secs(1) && self.dns_replicas_failing(e))
                })
                .cloned()
                .collect()
        };
        let resolver = self.inner.resolver.read().unwrap_or_else(|p| p.into_inner()).clone();
        for entry in due {
            let now = match dns::resolve(resolver.as_ref(), &entry.address) {
                Ok(now) => now,
                Err(e) => {
                    tracing::warn!(address = %entry.address, "re-resolving: {e}; keeping the replicas it had");
                    self.mark_resolved(&entry, &entry.records);
                    continue;
                }
            };
            let (gone, new) = entry.diff(&now);
            let tls = entry.tls_server_name.as_deref();
            for a in entry.replicas(&new) {
                let _ = self.add_replica(&entry.deployment, entry.head, entry.id, a, tls);
            }
            for a in entry.replicas(&gone) {
                let _ = self.remove_replica(&entry.deployment, a.key(), entry.head, entry.id);
            }
            if !gone.is_empty() || !new.is_empty() {
                tracing::info!(address = %entry.address, added = new.len(), removed = gone.len(), "a dns: address resolves differently");
            }
            self.mark_resolved(&entry, &now);
        }
    }

    fn mark_resolved(&self, entry: &DnsEntry, records: &[std::net::IpAddr]) {
        let mut entries = self.dns_entries();
        if let Some(e) = entries.iter_mut().find(|e| {
            e.deployment == entry.deployment && e.head == entry.head && e.id == entry.id && e.address == entry.address
        }) {
            e.records = records.to_vec();
            e.resolved_at = std::time::Instant::now();
        }
    }

    /// Whether a replica of a `dns:` address is failing or unresponsive.
    fn dns_replicas_failing(&self, entry: &DnsEntry) -> bool {
        let Ok(table) = self.read() else { return false };
        let Some(list) = table
            .get(&*entry.deployment)
            .and_then(|d| d.lists(entry.head).get(&entry.id))
        else {
            return false;
        };
        let keys: Vec<String> = entry
            .replicas(&entry.records)
            .iter()
            .map(|a| a.key().to_owned())
            .collect();
        list.replicas().iter().any(|r| {
            keys.iter().any(|k| k == r.address().key())
                && matches!(r.health().state(), ReplicaState::Failing | ReplicaState::Unresponsive)
        })
    }

    /// Removes a replica. Returns it, or `None` when the pool had none at that place. A replica list
    /// that becomes empty is dropped (and a deployment with no lists left).
    pub fn remove_connection(
        &self,
        deployment: &str,
        address: &str,
        head: bool,
        shard_id: Option<u32>,
    ) -> Result<Option<Arc<Replica>>> {
        let (head, id) = if head {
            (true, 0)
        } else {
            (false, shard_id.unwrap_or(0))
        };
        if let Ok(parsed) = crate::address::Address::parse(address) {
            if parsed.kind() == Kind::Dns {
                // A `dns:` address: forget the name and remove every replica it resolved to.
                let entry = {
                    let mut entries = self.dns_entries();
                    let i = entries.iter().position(|e| {
                        &*e.deployment == deployment && e.head == head && e.id == id && e.address == parsed
                    });
                    i.map(|i| entries.remove(i))
                };
                let Some(entry) = entry else { return Ok(None) };
                let mut last = None;
                for a in entry.replicas(&entry.records) {
                    last = self.remove_replica(deployment, a.key(), head, id)?.or(last);
                }
                return Ok(last);
            }
        }
        self.remove_replica(deployment, address, head, id)
    }

    fn remove_replica(&self, deployment: &str, address: &str, head: bool, id: u32) -> Result<Option<Arc<Replica>>> {
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
                    addresses: list.replicas().iter().map(|r| r.address().key().to_owned()).collect(),
                    states: list.replicas().iter().map(|r| r.health().state()).collect(),
                });
            }
        }
        Ok(routes)
    }

    /// Connects every replica of `deployment` (of every deployment when `None`) and waits until each
    /// answers (a STATUS control request on its connection, as liveness probes do): what a gateway
    /// checks before it declares itself ready (gRPC's `WaitForConnected`, later jina's warm-up).
    /// Fails with [`Error::NotReady`] naming the replicas that did not answer within `timeout`, and
    /// with [`Error::UnknownDeployment`] for a deployment the pool does not know.
    pub async fn wait_ready(&self, deployment: Option<&str>, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let replicas: Vec<(String, Arc<Replica>)> = {
            let table = self.read()?;
            if let Some(d) = deployment {
                if !table.contains_key(d) {
                    return Err(Error::UnknownDeployment {
                        deployment: d.to_owned(),
                    });
                }
            }
            table
                .iter()
                .filter(|(name, _)| deployment.map_or(true, |d| d == &***name))
                .flat_map(|(name, d)| {
                    let heads = d.heads.values().map(move |l| (ReplicaSet::Head, l));
                    let shards = d.shards.iter().map(|(id, l)| (ReplicaSet::Shard(*id), l));
                    heads.chain(shards).flat_map(move |(set, list)| {
                        list.replicas()
                            .iter()
                            .map(move |r| (format!("deployment {name:?} {set} at {}", r.address()), r.clone()))
                    })
                })
                .collect()
        };
        let waits = replicas.into_iter().map(|(what, replica)| async move {
            let mut asked = false;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    // With no time to ask at all (a zero timeout), a replica that is ready is.
                    let state = replica.health().state();
                    let ready = !asked && state == ReplicaState::Ready;
                    return (!ready).then(|| format!("{what} ({})", state.name()));
                }
                asked = true;
                if replica.probe(left).await {
                    return None;
                }
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            }
        });
        let closed = self.closed_signal();
        let all = futures_util::future::join_all(waits);
        let outcomes = tokio::select! {
            outcomes = all => outcomes,
            _ = closed.fired() => return Err(Error::PoolClosed),
        };
        let mut not_ready: Vec<String> = outcomes.into_iter().flatten().collect();
        if not_ready.is_empty() {
            return Ok(());
        }
        not_ready.sort();
        Err(Error::NotReady {
            waited: timeout,
            replicas: not_ready,
        })
    }

    /// Picks the targets of a send without sending: jina's routing of `send_requests`.
    pub fn route(&self, deployment: &str, to: To) -> Result<(Arc<str>, Vec<RoutedTarget>)> {
        let table = self.read()?;
        let Some((name, d)) = table.get_key_value(deployment) else {
            tracing::debug!(deployment, "unknown deployment");
            return Err(Error::UnknownDeployment {
                deployment: deployment.to_owned(),
            });
        };
        let no_replicas = |target: String| Error::NoReplicas {
            deployment: deployment.to_owned(),
            target,
        };
        let mut targets = Vec::new();
        match to {
            To::AllShards => {
                for (id, list) in &d.shards {
                    if let Some(pick) = self.pick(list) {
                        targets.push((ReplicaSet::Shard(*id), pick));
                    }
                }
                if targets.is_empty() {
                    return Err(no_replicas("all shards".into()));
                }
            }
            To::Head | To::Shard(_) => {
                let (set, list) = match to {
                    To::Shard(id) => (ReplicaSet::Shard(id), d.shards.get(&id)),
                    _ => (ReplicaSet::Head, d.heads.get(&0)),
                };
                let pick = list
                    .and_then(|l| self.pick(l))
                    .ok_or_else(|| no_replicas(set.to_string()))?;
                targets.push((set, pick));
            }
            To::AnyShard => {
                // Rotate over the shards as jina does: the counter is bumped first.
                let lists = &d.shards;
                let picked = (!lists.is_empty())
                    .then(|| {
                        let n = d.access_count.fetch_add(1, Ordering::Relaxed).wrapping_add(1) % lists.len();
                        lists.iter().nth(n)
                    })
                    .flatten();
                let (id, list) = picked.ok_or_else(|| no_replicas("any shard".to_owned()))?;
                let pick = self.pick(list).ok_or_else(|| no_replicas("any shard".to_owned()))?;
                targets.push((ReplicaSet::Shard(*id), pick));
            }
        }
        Ok((name.clone(), targets))
    }

    fn pick(&self, list: &ReplicaList) -> Option<Pick> {
        match &self.inner.policy.tuning {
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
        let limited = self.inner.policy.limit().is_some();
        let mut rows = Vec::new();
        let mut queues = Vec::new();
        let mut budgets = Vec::new();
        for name in names {
            let d = &table[name];
            let lists = d
                .heads
                .values()
                .map(|l| ("head".to_owned(), l))
                .chain(d.shards.iter().map(|(id, l)| (id.to_string(), l)));
            for (shard, list) in lists {
                if limited {
                    queues.push(metrics::QueueRow {
                        deployment: name,
                        shard: shard.clone(),
                        waiting: list.queue().waiting(),
                        rejected: list.queue().rejected(),
                    });
                }
                if let Some(budget) = list.budget() {
                    budgets.push(metrics::BudgetRow {
                        deployment: name,
                        shard: shard.clone(),
                        tokens: budget.tokens(),
                        throttled: budget.throttled(),
                    });
                }
                for replica in list.replicas() {
                    let Some(load) = replica.load() else { continue };
                    if let Some(metrics) = load.metrics() {
                        rows.push(metrics::ReplicaRow {
                            deployment: name,
                            shard: shard.clone(),
                            address: replica.address().key(),
                            in_flight: load.in_flight(),
                            metrics,
                        });
                    }
                }
            }
        }
        Ok(Some(metrics::render(&rows, &queues, &budgets)))
    }

    /// Routes `requests` to `to` in `deployment` and returns the send, ready to be awaited (or
    /// spawned). Routing happens now, so the round-robin order is the call order. One data request
    /// goes to `process_single_data`, several to `process_data`, a control request to
    /// `process_control`; `options.endpoint` travels as the `endpoint` metadata of data requests;
    /// `options.timeout` (or the pool's default) bounds the whole send, retries included.
    pub fn send_requests(
        &self,
        requests: &[Request],
        deployment: &str,
        to: To,
        options: &SendOptions<'_>,
    ) -> Result<RoutedSend> {
        let (payload, method) = Payload::new(requests)?;
        let payload = compress(payload, self.inner.options.connection.channel.compression)?;
        let call = CallOptions::new(options.endpoint, options.timeout.or(self.inner.options.default_timeout))?
            .with_metadata(options.metadata, method)?;
        let (deployment, targets) = self.route(deployment, to)?;
        let plan = SendPlan {
            deployment,
            payload,
            method,
            call,
            policy: self.inner.policy.clone(),
            idempotent: options.idempotent,
        };
        Ok(RoutedSend::new(plan, targets, self.inner.closed.clone()))
    }

    /// [`send_requests`](Self::send_requests) with one request.
    pub fn send_request(
        &self,
        request: Request,
        deployment: &str,
        to: To,
        options: &SendOptions<'_>,
    ) -> Result<RoutedSend> {
        self.send_requests(&[request], deployment, to, options)
    }

    /// jina's `send_requests_once`: one target, the head or (rotating) a shard.
    pub fn send_requests_once(
        &self,
        requests: &[Request],
        deployment: &str,
        head: bool,
        options: &SendOptions<'_>,
    ) -> Result<RoutedSend> {
        let to = if head { To::Head } else { To::AnyShard };
        self.send_requests(requests, deployment, to, options)
    }

    /// jina's `send_request_once`.
    pub fn send_request_once(
        &self,
        request: Request,
        deployment: &str,
        head: bool,
        options: &SendOptions<'_>,
    ) -> Result<RoutedSend> {
        self.send_requests_once(&[request], deployment, head, options)
    }

    /// Closes the pool: every connection is dropped, sends still running complete with
    /// [`Error::PoolClosed`], and every later call fails with it. Closing twice is harmless.
    pub fn close(&self) {
        self.inner.closed.fire();
        let mut table = self.inner.table.write().unwrap_or_else(|p| p.into_inner());
        table.clear();
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_fired()
    }
}
