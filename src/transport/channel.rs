//! gRPC channels to one address: jina's channel options, plaintext or TLS with rustls, a lazy
//! connection that reconnects by itself.

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
    endpoint = endpoint.tcp_nodelay(true);
    if let Some(t) = options.channel.connect_timeout {
        endpoint = endpoint.connect_timeout(t);
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
    let _guard = runtime.enter();
    Ok(endpoint.connect_lazy())
}
