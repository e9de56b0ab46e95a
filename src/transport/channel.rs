//! gRPC channels to one address: jina's channel options, plaintext or TLS with rustls, a lazy
//! connection that reconnects by itself, and the connection's own failure detection (a connect
//! timeout, TCP_USER_TIMEOUT, HTTP/2 keepalive PINGs while calls are outstanding).

use hyper_util::client::legacy::connect::HttpConnector;
use tokio::runtime::Handle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::address::Address;
use crate::error::{Error, Result};
use crate::policy::ConnectionOptions;

/// Creates a channel to `address` whose background tasks (its request buffer and HTTP/2
/// connection) run on `runtime`. The channel connects lazily (on the first call) and reconnects by
/// itself; TLS is used when `options.tls.force` is set or the address says `https://` / `grpcs://`,
/// trusting `options.tls.root_certificates_pem` instead of the system roots when given.
pub fn get_grpc_channel_on(runtime: &Handle, address: &Address, options: &ConnectionOptions) -> Result<Channel> {
    let use_tls = options.tls.force || address.tls();
    let mut endpoint = Endpoint::from_shared(address.uri(use_tls)).map_err(|_| Error::InvalidAddress {
        address: address.to_string(),
        reason: "not a valid URI authority",
    })?;
    let channel = &options.channel;
    endpoint = endpoint.tcp_nodelay(true);
    if let Some(t) = channel.connect_timeout {
        endpoint = endpoint.connect_timeout(t);
    }
    if let Some(k) = channel.http2_keepalive {
        endpoint = endpoint
            .http2_keep_alive_interval(k.interval)
            .keep_alive_timeout(k.timeout)
            .keep_alive_while_idle(false);
    }
    if use_tls {
        let mut config = ClientTlsConfig::new().domain_name(address.host());
        config = match &options.tls.root_certificates_pem {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        endpoint = endpoint.tls_config(config).map_err(|e| Error::Tls {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    }
    // tonic's own connector, with TCP_USER_TIMEOUT, which tonic does not expose (TLS is still tonic's).
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(channel.connect_timeout);
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    http.set_tcp_user_timeout(channel.tcp_user_timeout);
    let _guard = runtime.enter();
    Ok(endpoint.connect_with_connector_lazy(http))
}
