//! `dns:///host:port` addresses: a name whose every A/AAAA record becomes a replica of its own (gRPC's
//! DNS resolver; a headless Service, docker-compose replicas), re-resolved while the pool lives.
//! This file resolves and tells what changed; the pool adds and removes the replicas.

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use crate::address::Address;
use crate::error::{Error, Result};

/// A resolver: the addresses of a host name (the system's by default; a test or an embedder may set
/// its own with [`ConnectionPool::set_resolver`](super::ConnectionPool::set_resolver)).
pub type Resolver = Arc<dyn Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync>;

/// The system's resolution of `host` (getaddrinfo), every distinct address once, in its order.
pub(crate) fn system_resolve(host: &str) -> std::io::Result<Vec<IpAddr>> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in (host, 0).to_socket_addrs()? {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    Ok(ips)
}

/// Resolves `address` (a `dns:` one) with `resolver`, or fails naming it.
pub(crate) fn resolve(resolver: Option<&Resolver>, address: &Address) -> Result<Vec<IpAddr>> {
    let found = match resolver {
        Some(r) => r(address.host()),
        None => system_resolve(address.host()),
    };
    let ips = found.map_err(|e| Error::Unresolved {
        address: address.key().to_owned(),
        reason: e.to_string(),
    })?;
    if ips.is_empty() {
        return Err(Error::Unresolved {
            address: address.key().to_owned(),
            reason: "no address".into(),
        });
    }
    Ok(ips)
}

/// A `dns:` address added to a head or shard, and the records it resolved to last.
#[derive(Debug, Clone)]
pub(crate) struct DnsEntry {
    pub deployment: Arc<str>,
    pub head: bool,
    pub id: u32,
    pub address: Address,
    /// The per-address TLS server name it was added with.
    pub tls_server_name: Option<String>,
    pub records: Vec<IpAddr>,
    pub resolved_at: Instant,
}

impl DnsEntry {
    /// The replica addresses of `records`.
    pub fn replicas(&self, records: &[IpAddr]) -> Vec<Address> {
        records.iter().map(|ip| self.address.resolved(*ip)).collect()
    }

    /// What a new resolution changes: the records gone and the new ones.
    pub fn diff(&self, now: &[IpAddr]) -> (Vec<IpAddr>, Vec<IpAddr>) {
        let gone = self.records.iter().filter(|ip| !now.contains(ip)).copied().collect();
        let new = now.iter().filter(|ip| !self.records.contains(ip)).copied().collect();
        (gone, new)
    }
}
