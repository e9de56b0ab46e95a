//! gRPC channels to one address: jina's channel options, plaintext or TLS with rustls, a lazy
//! connection that reconnects by itself, and the connection's own failure detection (a connect
//! timeout, TCP_USER_TIMEOUT, HTTP/2 keepalive PINGs while calls are outstanding).

use hyper_util::client::legacy::connect::HttpConnector;
use tokio::runtime::Handle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::address::{Address, Kind};
use crate::error::{Error, Result};
use crate::policy::{ConnectionOptions, TlsOptions};

/// Creates a channel to `address` whose background tasks (its request buffer and HTTP/2
/// connection) run on `runtime`. The channel connects lazily (on the first call) and reconnects by
/// itself; TLS is used when `options.tls.force` is set or the address says `https://` / `grpcs://`,
/// trusting `options.tls.root_certificates_pem` instead of the system roots when given, with the
/// client identity and the server-name override of `options.tls`. A `unix:` address connects to its
/// socket (plaintext only).
/// Checks the PEM of TLS settings before any connection uses them: root certificates and an
/// identity's chain must hold certificates that parse, an identity's key a private key. An unusable
/// PEM is `Error::TlsSetup` naming the setting and what is wrong (instead of every handshake failing
/// later with an unknown issuer).
pub fn check_tls(tls: &TlsOptions) -> Result<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificates = |what: &str, pem: &[u8]| -> Result<()> {
        let mut store = rustls::RootCertStore::empty();
        let mut count = 0;
        for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let cert =
                cert.map_err(|e| Error::TlsSetup(format!("{what}: PEM block {} does not decode: {e}", i + 1)))?;
            store.add(cert).map_err(|e| {
                Error::TlsSetup(format!(
                    "{what}: certificate {} is not a valid X.509 certificate: {e}",
                    i + 1
                ))
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(Error::TlsSetup(format!(
                "{what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            )));
        }
        Ok(())
    };
    if let Some(pem) = &tls.root_certificates_pem {
        certificates("root_certificates_pem", pem)?;
    }
    if let Some(identity) = &tls.identity {
        certificates("the identity's certificate chain", &identity.cert_chain_pem)?;
        PrivateKeyDer::from_pem_slice(&identity.private_key_pem).map_err(|e| {
            Error::TlsSetup(format!(
                "the identity's private key holds no usable PEM private key: {e}"
            ))
        })?;
    }
    if let Some(name) = &tls.server_name {
        rustls::pki_types::ServerName::try_from(name.as_str()).map_err(|_| {
            Error::TlsSetup(format!(
                "tls server name {name:?} is neither a DNS name nor an IP address"
            ))
        })?;
    }
    Ok(())
}

pub fn get_grpc_channel_on(runtime: &Handle, address: &Address, options: &ConnectionOptions) -> Result<Channel> {
    let unix = address.kind() == Kind::Unix;
    let use_tls = options.tls.force || address.tls();
    if unix && use_tls {
        return Err(Error::Tls {
            address: address.to_string(),
            reason: "TLS over a Unix domain socket is not supported".into(),
        });
    }
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
        let tls = &options.tls;
        check_tls(tls)?;
        let name = tls.server_name.as_deref().unwrap_or(address.host());
        let mut config = ClientTlsConfig::new().domain_name(name);
        config = match &tls.root_certificates_pem {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        if let Some(identity) = &tls.identity {
            config = config.identity(Identity::from_pem(&identity.cert_chain_pem, &identity.private_key_pem));
        }
        endpoint = endpoint.tls_config(config).map_err(|e| Error::Tls {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    }
    let _guard = runtime.enter();
    if unix {
        return Ok(endpoint.connect_lazy());
    }
    // tonic's own connector, with TCP_USER_TIMEOUT, which tonic does not expose (TLS is still tonic's).
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(channel.connect_timeout);
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    http.set_tcp_user_timeout(channel.tcp_user_timeout);
    Ok(endpoint.connect_with_connector_lazy(http))
}
