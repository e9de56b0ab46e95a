//! How connections to replicas are opened: channel options (jina sets unlimited message sizes) and TLS.

use std::time::Duration;

/// Channel options. Message sizes default to jina 3.1's: no limit on the size of messages sent or
/// received (`grpc.max_send_message_length = grpc.max_receive_message_length = -1`), where tonic
/// alone would refuse responses over 4 MiB. The connection's failure detection is on by default: a
/// connect timeout, TCP_USER_TIMEOUT, and HTTP/2 keepalive PINGs while calls are outstanding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOptions {
    /// Largest request accepted for sending; `None` = unlimited.
    pub max_send_message_length: Option<usize>,
    /// Largest response accepted; `None` = unlimited.
    pub max_receive_message_length: Option<usize>,
    /// Time allowed to establish a connection (TCP, and TLS); `None` = no limit. Default 5 s.
    pub connect_timeout: Option<Duration>,
    /// TCP_USER_TIMEOUT (Linux): a connection whose sent data stays unacknowledged this long is
    /// closed by the kernel, so a peer behind a black hole fails its calls; `None` = the system's.
    /// Default 20 s.
    pub tcp_user_timeout: Option<Duration>,
    /// HTTP/2 PINGs while calls are outstanding (never on an idle connection); `None` = none.
    /// Default: every 5 min (what gRPC servers accept without strikes when they have sent nothing;
    /// see `LivenessPolicy` for the fast detection of a peer that stopped answering).
    pub http2_keepalive: Option<Http2Keepalive>,
    /// How requests are compressed (responses are decoded whatever their encoding). Default none,
    /// as jina 3.1.
    pub compression: Compression,
}

/// The compression of request messages (gRPC's `grpc-encoding`; jina 3.2's `compression` option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed (jina's `NoCompression`).
    #[default]
    None,
    /// gzip (jina's `Gzip`).
    Gzip,
    /// deflate, zlib-wrapped as gRPC's `deflate` is (jina's `Deflate`).
    Deflate,
}

impl Compression {
    /// From a name: `none`, `gzip`, `deflate`, or jina's `NoCompression`, `Gzip`, `Deflate` (any
    /// case; `identity` is none).
    pub fn from_name(name: &str) -> Option<Compression> {
        match name.to_ascii_lowercase().as_str() {
            "none" | "nocompression" | "identity" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "deflate" => Some(Compression::Deflate),
            _ => None,
        }
    }

    /// The `grpc-encoding` name (`None` for no compression).
    pub fn encoding(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Deflate => Some("deflate"),
        }
    }
}

/// HTTP/2 keepalive: a PING every `interval` while calls are outstanding; a PING not acknowledged
/// within `timeout` closes the connection and fails its calls with `UNAVAILABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Keepalive {
    /// Time between PINGs (at least 10 s, gRFC A8's minimum for clients).
    pub interval: Duration,
    /// Time a PING may stay unacknowledged.
    pub timeout: Duration,
}

impl Default for Http2Keepalive {
    /// Every 5 minutes, 20 s to answer.
    fn default() -> Self {
        Http2Keepalive {
            interval: Duration::from_secs(300),
            timeout: Duration::from_secs(20),
        }
    }
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            max_send_message_length: None,
            max_receive_message_length: None,
            connect_timeout: Some(Duration::from_secs(5)),
            tcp_user_timeout: Some(Duration::from_secs(20)),
            http2_keepalive: Some(Http2Keepalive::default()),
            compression: Compression::None,
        }
    }
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
    /// The client's own identity for mutual TLS; `None` = none.
    pub identity: Option<TlsIdentity>,
    /// The name the server's certificate must carry (and the SNI sent) instead of the address's host:
    /// gRPC's `grpc.ssl_target_name_override`, for replicas reached by IP (Kubernetes pods) whose
    /// certificates name a service.
    pub server_name: Option<String>,
}

/// A client certificate chain and its private key, PEM-encoded (mutual TLS).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsIdentity {
    /// The certificate chain, leaf first.
    pub cert_chain_pem: Vec<u8>,
    /// The private key of the leaf certificate.
    pub private_key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_chain_pem", &format_args!("{} bytes", self.cert_chain_pem.len()))
            .field("private_key_pem", &"<hidden>")
            .finish()
    }
}

/// How a pool opens the connection of each replica, and watches it: channel options, TLS, liveness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// Channel options (message size limits, timeouts, keepalive).
    pub channel: ChannelOptions,
    /// TLS settings for addresses without a TLS scheme and the roots to trust.
    pub tls: TlsOptions,
    /// When a replica that stopped answering is given up on.
    pub liveness: super::liveness::LivenessPolicy,
}
