//! gRPC channels to one address: options (jina sets unlimited message sizes), plaintext or TLS with
//! rustls, and the stubs that share one channel.

use std::time::Duration;

use tokio::runtime::Handle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::address::Address;
use crate::error::{Error, Result};
use crate::runtime;

/// Channel options. The defaults are jina 3.1's: no limit on the size of messages sent or received
/// (`grpc.max_send_message_length = grpc.max_receive_message_length = -1`), where tonic alone would
/// refuse responses over 4 MiB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelOptions {
    /// Largest request accepted for sending; `None` = unlimited.
    pub max_send_message_length: Option<usize>,
    /// Largest response accepted; `None` = unlimited.
    pub max_receive_message_length: Option<usize>,
    /// Time allowed to establish a connection; `None` = no separate limit.
    pub connect_timeout: Option<Duration>,
}

impl ChannelOptions {
    /// The options in gRPC's core naming, as jina's `get_default_grpc_options()` lists them
    /// (`-1` = unlimited).
    pub fn as_grpc_options(&self) -> Vec<(&'static str, i64)> {
        let size = |v: Option<usize>| v.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        vec![
            ("grpc.max_send_message_length", size(self.max_send_message_length)),
            ("grpc.max_receive_message_length", size(self.max_receive_message_length)),
        ]
    }
}

/// jina's `GrpcConnectionPool.get_default_grpc_options()`.
pub fn default_grpc_options() -> Vec<(&'static str, i64)> {
    ChannelOptions::default().as_grpc_options()
}

/// How to secure a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Use TLS even when the address has no `https://`/`grpcs://` scheme.
    pub force: bool,
    /// PEM-encoded root certificates to trust; `None` = the system's roots.
    pub root_certificates_pem: Option<Vec<u8>>,
}

/// Creates a channel to `address`. The channel connects lazily (on the first call) and reconnects
/// by itself; TLS is used when `tls` is true or the address says `https://` / `grpcs://`.
/// `root_certificates_pem` are trusted instead of the system roots when given.
pub fn get_grpc_channel(
    address: &Address,
    options: &ChannelOptions,
    tls: bool,
    root_certificates_pem: Option<&[u8]>,
) -> Result<Channel> {
    get_grpc_channel_on(&runtime::handle()?, address, options, tls, root_certificates_pem)
}

/// [`get_grpc_channel`] with the channel's background tasks (its request buffer and HTTP/2
/// connection) on `runtime` instead of the library runtime, e.g. a [`crate::DrivenRuntime`].
pub fn get_grpc_channel_on(
    runtime: &Handle,
    address: &Address,
    options: &ChannelOptions,
    tls: bool,
    root_certificates_pem: Option<&[u8]>,
) -> Result<Channel> {
    let use_tls = tls || address.tls();
    let mut endpoint = Endpoint::from_shared(address.uri(use_tls)).map_err(|_| Error::InvalidAddress {
        address: address.to_string(),
        reason: "not a valid URI authority",
    })?;
    endpoint = endpoint.tcp_nodelay(true);
    if let Some(t) = options.connect_timeout {
        endpoint = endpoint.connect_timeout(t);
    }
    if use_tls {
        let mut config = ClientTlsConfig::new().domain_name(address.host());
        config = match root_certificates_pem {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        endpoint = endpoint.tls_config(config).map_err(|e| Error::Tls {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    }
    let _guard = runtime.enter();
    Ok(endpoint.connect_lazy())
}
