//! gRPC channels to one address: jina's channel options, plaintext or TLS with rustls, a lazy
//! connection that reconnects by itself, and the connection's own failure detection (a connect
//! timeout, TCP_USER_TIMEOUT, HTTP/2 keepalive PINGs while calls are outstanding).

use hyper_util::client::legacy::connect::HttpConnector;
use tokio::runtime::Handle;
use tonic::transport::{Channel, Endpoint};

use super::coalesce::Coalescing;
use super::tls::{TlsConnector, TlsIo, TlsVerdict};
use crate::address::{Address, Kind};
use crate::error::{Error, Result};
use crate::policy::ConnectionOptions;
use crate::runtime::{making_channel, ChannelExecutor};

/// The largest HTTP/2 frame the channel accepts (its SETTINGS_MAX_FRAME_SIZE; the protocol's default,
/// and hyper's, is 16 KiB): the size of the client's stream window, so a response up to that size can
/// come in one DATA frame, read in a few large reads and handed over without being reassembled. With
/// 16 KiB frames a 1 MiB response took 129 reads of 8 KiB and a copy into one buffer; with this, 3
/// reads and none (BENCHMARKS.md). The server still picks each frame's size (jina 3.1.0's gRPC
/// server and tonic send larger frames when allowed); the memory held per frame is what its stream
/// window already allowed.
const MAX_RECEIVED_FRAME: u32 = 2 * 1024 * 1024;

/// Creates a channel to `address` whose background tasks (its request buffer and HTTP/2
/// connection) run on `runtime`. The channel connects lazily (on the first call) and reconnects by
/// itself; TLS is used when `options.tls.force` is set or the address says `https://` / `grpcs://`,
/// trusting `options.tls.root_certificates_pem` instead of the system roots when given, with the
/// client identity and the server-name override of `options.tls`. A `unix:` address connects to its
/// socket (plaintext only).
pub fn get_grpc_channel_on(runtime: &Handle, address: &Address, options: &ConnectionOptions) -> Result<GrpcChannel> {
    let unix = address.kind() == Kind::Unix;
    let use_tls = options.tls.force || address.tls();
    if unix && use_tls {
        return Err(Error::Tls {
            address: address.to_string(),
            reason: "TLS over a Unix domain socket is not supported".into(),
        });
    }
    let invalid = || Error::InvalidAddress {
        address: address.to_string(),
        reason: "not a valid URI authority",
    };
    // Over TLS the connector dials `http://host:port` and runs the handshake itself (rustls, as
    // tonic's TLS does); requests still say `https` (the origin), as they do over tonic's TLS.
    let mut endpoint = Endpoint::from_shared(address.uri(false)).map_err(|_| invalid())?;
    if use_tls {
        endpoint = endpoint.origin(address.uri(true).parse().map_err(|_| invalid())?);
    }
    let channel = &options.channel;
    endpoint = endpoint
        .tcp_nodelay(true)
        .max_frame_size(MAX_RECEIVED_FRAME)
        .executor(Spawner(ChannelExecutor::new(runtime)));
    if let Some(t) = channel.connect_timeout {
        endpoint = endpoint.connect_timeout(t);
    }
    if let Some(k) = channel.http2_keepalive {
        endpoint = endpoint
            .http2_keep_alive_interval(k.interval)
            .keep_alive_timeout(k.timeout)
            .keep_alive_while_idle(false);
    }
    let _guard = runtime.enter();
    if unix {
        return Ok(GrpcChannel::plain(making_channel(|| endpoint.connect_lazy())));
    }
    // tonic's own TCP connector, with TCP_USER_TIMEOUT, which tonic does not expose.
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(channel.connect_timeout);
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    http.set_tcp_user_timeout(channel.tcp_user_timeout);
    if !use_tls {
        return Ok(GrpcChannel::plain(making_channel(|| {
            endpoint.connect_with_connector_lazy(Coalescing(http))
        })));
    }
    let tls = TlsConnector::new(&options.tls, address.host())?;
    let verdict = tls.verdict();
    Ok(GrpcChannel {
        channel: making_channel(|| endpoint.connect_with_connector_lazy(Coalescing(TlsOverTcp { tcp: http, tls }))),
        tls: Some(verdict),
    })
}

/// A tonic channel, and for TLS, why its last connection failed in TLS (if it did).
#[derive(Clone, Debug)]
pub struct GrpcChannel {
    pub(crate) channel: Channel,
    pub(crate) tls: Option<TlsVerdict>,
}

impl GrpcChannel {
    fn plain(channel: Channel) -> GrpcChannel {
        GrpcChannel { channel, tls: None }
    }
}

/// The channel's tasks spawned by the library's executor (the connection runs after the sends ready
/// together: `runtime::ChannelExecutor`).
#[derive(Clone)]
struct Spawner(ChannelExecutor);

impl hyper::rt::Executor<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> for Spawner {
    fn execute(&self, task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
        self.0.spawn(task);
    }
}

/// The connector of a TLS channel: TCP (with the channel's socket options), then the handshake.
#[derive(Clone)]
struct TlsOverTcp {
    tcp: HttpConnector,
    tls: TlsConnector,
}

impl tower_service::Service<http::Uri> for TlsOverTcp {
    type Response = hyper_util::rt::TokioIo<TlsIo>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connect = self.tcp.call(uri);
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connect.await?.into_inner();
            Ok(hyper_util::rt::TokioIo::new(tls.connect(tcp).await?))
        })
    }
}
