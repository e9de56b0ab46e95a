//! How connections to replicas are opened: channel options (jina sets unlimited message sizes) and TLS.

use std::time::Duration;

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

/// How a pool opens the connection of each replica: channel options and TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// Channel options (message size limits, connect timeout).
    pub channel: ChannelOptions,
    /// TLS settings for addresses without a TLS scheme and the roots to trust.
    pub tls: TlsOptions,
}
