//! TLS to a replica with rustls: the pool's trust roots, client identity (mutual TLS) and
//! server-name override, ALPN `h2`; and what went wrong, in words. The handshake runs in the
//! channel's connector, so a failure there is a connect error with the rustls error as its cause.
//! A server that refuses the client's certificate under TLS 1.3 does so after the client's handshake
//! has finished: the connection then breaks on its first read or write, which [`TlsIo`] reads back
//! as the TLS failure it is and records in the channel's [`TlsVerdict`] (HTTP/2 passes the
//! connection's I/O error on to the calls as text, or not at all when the connection was closed
//! before they started).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::policy::TlsOptions;

/// How a TLS failure reads in a call's status message; `transport_status` recognises it after
/// HTTP/2 has turned the connection's I/O error into text.
pub(crate) const TLS_FAILED: &str = "TLS handshake failed: ";

/// What a server that does not accept the client's certificate made of the connection.
const REFUSED_CERTIFICATE: &str =
    "the server refused the client's certificate (is it signed by a CA the server trusts?)";

/// Checks the PEM of TLS settings before any connection uses them: root certificates and an
/// identity's chain must hold certificates that parse, an identity's key a private key. An unusable
/// PEM is `Error::TlsSetup` naming the setting and what is wrong (instead of every handshake failing
/// later with an unknown issuer).
pub fn check_tls(tls: &TlsOptions) -> Result<()> {
    if let Some(pem) = &tls.root_certificates_pem {
        certificates("root_certificates_pem", pem)?;
    }
    if let Some(identity) = &tls.identity {
        certified_key(identity, &provider())?;
    }
    if let Some(name) = &tls.server_name {
        server_name(name)?;
    }
    Ok(())
}

fn certificates(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let mut store = RootCertStore::empty();
    let mut out = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| {
            Error::TlsSetup(format!(
                "{what}: PEM block {} does not decode: {}",
                i + 1,
                pem_problem(&e)
            ))
        })?;
        store.add(cert.clone()).map_err(|e| {
            Error::TlsSetup(format!(
                "{what}: certificate {} is not a valid X.509 certificate: {}",
                i + 1,
                certificate_parse_problem(&e)
            ))
        })?;
        out.push(cert);
    }
    if out.is_empty() {
        return Err(Error::TlsSetup(format!(
            "{what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(out)
}

/// What is wrong with a PEM text, in words.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as P;
    match e {
        P::MissingSectionEnd { end_marker } => {
            format!("its END line ({}) is missing", String::from_utf8_lossy(end_marker))
        }
        P::IllegalSectionStart { line } => format!("malformed BEGIN line {:?}", String::from_utf8_lossy(line)),
        P::Base64Decode(_) => "its body is not valid base64".to_owned(),
        P::SectionTooLarge => "the block is larger than 256 MB".to_owned(),
        other => in_words(&other.to_string()),
    }
}

/// Why a certificate given as a trust root cannot be used, in words.
fn certificate_parse_problem(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::BadEncoding) => "its DER encoding does not parse".to_owned(),
        rustls::Error::InvalidCertificate(C::Other(other)) => in_words(&other.0.to_string()),
        rustls::Error::InvalidCertificate(other) => in_words(&format!("{other:?}")),
        other => in_words(&other.to_string()),
    }
}

/// The crypto provider: the process's default if one was installed, else ring.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// A client identity, checked: certificates that parse, a key the provider can use, and a key that
/// belongs to the leaf certificate.
fn certified_key(
    identity: &crate::policy::TlsIdentity,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey> {
    let chain = certificates("the identity's certificate chain", &identity.cert_chain_pem)?;
    let key = private_key(&identity.private_key_pem)?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            Error::TlsSetup("the identity's private key does not belong to the first certificate of its chain".into())
        }
        other => Error::TlsSetup(format!("the identity's private key cannot be used: {other}")),
    })
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        Error::TlsSetup(format!(
            "the identity's private key holds no usable PEM private key: {e}"
        ))
    })
}

fn server_name(name: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned()).map_err(|_| {
        Error::TlsSetup(format!(
            "tls server name {name:?} is neither a DNS name nor an IP address"
        ))
    })
}

/// Why the TLS connection of a channel failed, until one is accepted: the connector writes it, the
/// calls that fail read it.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsVerdict(Arc<Mutex<Option<String>>>);

impl TlsVerdict {
    fn set(&self, why: Option<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// The failure of the channel's last TLS connection, if it failed before the server sent any
    /// byte.
    pub(crate) fn failure(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The TLS side of one replica's connector: a client configuration built once, and the name the
/// server's certificate must carry.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
    identity: Option<Arc<CertifiedKey>>,
    server_name: ServerName<'static>,
    verdict: TlsVerdict,
}

impl TlsConnector {
    /// A connector to `host` (or to `tls.server_name` when set) with the settings of `tls`.
    pub fn new(tls: &TlsOptions, host: &str) -> Result<TlsConnector> {
        check_tls(tls)?;
        let provider = provider();
        let mut roots = RootCertStore::empty();
        match &tls.root_certificates_pem {
            Some(pem) => {
                for cert in certificates("root_certificates_pem", pem)? {
                    roots
                        .add(cert)
                        .map_err(|e| Error::TlsSetup(format!("root_certificates_pem: {e}")))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    return Err(Error::TlsSetup(format!(
                        "no system root certificates found ({} errors); set the root certificates",
                        found.errors.len()
                    )));
                }
                roots.add_parsable_certificates(found.certs);
            }
        }
        let identity = match &tls.identity {
            Some(identity) => Some(Arc::new(certified_key(identity, &provider)?)),
            None => None,
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsSetup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(TlsConnector {
            config: Arc::new(config),
            identity,
            server_name: server_name(tls.server_name.as_deref().unwrap_or(host))?,
            verdict: TlsVerdict::default(),
        })
    }

    /// Where the failures of this connector's connections are recorded.
    pub fn verdict(&self) -> TlsVerdict {
        self.verdict.clone()
    }

    /// The TLS handshake over `tcp`. Its errors carry the rustls error as their cause.
    pub async fn connect(&self, tcp: TcpStream) -> io::Result<TlsIo> {
        // A configuration per connection (a cheap copy) whose client-certificate resolver records
        // whether this server asked for a certificate.
        let asked = Arc::new(AtomicBool::new(false));
        let mut config = (*self.config).clone();
        config.client_auth_cert_resolver = Arc::new(Identity {
            key: self.identity.clone(),
            asked: asked.clone(),
        });
        let stream = match tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(self.server_name.clone(), tcp)
            .await
        {
            Ok(stream) => stream,
            Err(e) => {
                self.verdict.set(tls_failure(&e));
                return Err(e);
            }
        };
        if let Some(protocol) = stream.get_ref().1.alpn_protocol() {
            if protocol != b"h2" {
                let why = format!(
                    "the server negotiated {:?} instead of HTTP/2 (h2)",
                    String::from_utf8_lossy(protocol)
                );
                self.verdict.set(Some(why.clone()));
                return Err(io::Error::new(io::ErrorKind::InvalidData, TlsRefusal(why)));
            }
        }
        Ok(TlsIo {
            stream,
            asked_for_certificate: asked.load(Ordering::Acquire),
            sent_certificate: self.identity.is_some(),
            heard: false,
            verdict: self.verdict.clone(),
        })
    }
}

/// The client's certificate, if it has one; notes that the server asked for it.
#[derive(Debug)]
struct Identity {
    key: Option<Arc<CertifiedKey>>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for Identity {
    fn resolve(&self, _issuers: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Release);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// A TLS failure described in words, as the cause of an I/O error.
#[derive(Debug)]
struct TlsRefusal(String);

impl std::fmt::Display for TlsRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{TLS_FAILED}{}", self.0)
    }
}

impl std::error::Error for TlsRefusal {}

/// A TLS connection that reads a failure before the server's first bytes as the TLS failure it is:
/// the server's alert, or, when the connection breaks after the server asked for a client
/// certificate, a refused (or missing) client certificate.
pub(crate) struct TlsIo {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    asked_for_certificate: bool,
    sent_certificate: bool,
    /// The server has sent application data: the connection was accepted.
    heard: bool,
    verdict: TlsVerdict,
}

impl TlsIo {
    fn explain(&self, e: io::Error) -> io::Error {
        if self.heard {
            return e;
        }
        if let Some(r) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            use rustls::AlertDescription as A;
            // Alerts a server sends when it does not accept the client's certificate (a signature
            // it cannot verify comes as DecryptError).
            let refused = matches!(
                r,
                rustls::Error::AlertReceived(
                    A::DecryptError | A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::AccessDenied
                )
            );
            let why = if refused && self.sent_certificate {
                REFUSED_CERTIFICATE.to_owned()
            } else {
                describe(r)
            };
            self.verdict.set(Some(why.clone()));
            return io::Error::new(e.kind(), TlsRefusal(why));
        }
        let broke = matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
        );
        if broke && self.asked_for_certificate {
            let why = if self.sent_certificate {
                REFUSED_CERTIFICATE
            } else {
                "the server requires a client certificate (mutual TLS) and none is set: set a TLS identity"
            };
            self.verdict.set(Some(why.to_owned()));
            return io::Error::new(e.kind(), TlsRefusal(why.to_owned()));
        }
        e
    }
}

impl AsyncRead for TlsIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    if !self.heard {
                        self.heard = true;
                        self.verdict.set(None);
                    }
                } else if !self.heard && self.asked_for_certificate {
                    // a clean close before any byte: the server hung up on the client certificate
                    let e = io::Error::from(io::ErrorKind::UnexpectedEof);
                    return Poll::Ready(Err(self.explain(e)));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explain(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explain(e))),
            other => other,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explain(e))),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explain(e))),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// What went wrong in a TLS handshake, in words (not rustls's enum names), if that is what failed:
/// a rustls error among the causes, or a failure [`TlsIo`] described (which HTTP/2 passes on as
/// text).
pub(crate) fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        let rustls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(r) = rustls {
            return Some(describe(r));
        }
        let text = e.to_string();
        if let Some(at) = text.find(TLS_FAILED) {
            return Some(text[at + TLS_FAILED.len()..].to_owned());
        }
        cause = e.source();
    }
    None
}

/// A rustls error in words (never rustls's or webpki's enum names as Rust prints them).
fn describe(error: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E, InvalidMessage as M};
    match error {
        E::InvalidCertificate(C::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted root (set the root certificates)".into()
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for the name it was reached by (use the server-name override)".into()
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "the server's certificate has expired".into(),
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet".into()
        }
        E::InvalidCertificate(C::BadEncoding) => "the server's certificate is malformed".into(),
        E::InvalidCertificate(C::Revoked) => "the server's certificate is revoked".into(),
        E::InvalidCertificate(C::BadSignature) => "the server's certificate has a bad signature".into(),
        E::InvalidCertificate(C::InvalidPurpose | C::InvalidPurposeContext { .. }) => {
            "the server's certificate is not for TLS servers (extended key usage)".into()
        }
        E::InvalidCertificate(C::Other(other)) => certificate_problem(&other.0.to_string()),
        E::InvalidCertificate(other) => {
            format!(
                "the server's certificate is refused: {}",
                in_words(&format!("{other:?}"))
            )
        }
        E::AlertReceived(A::CertificateRequired) => {
            "the server requires a client certificate (mutual TLS) and none is set: set a TLS identity".into()
        }
        E::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateUnknown) => REFUSED_CERTIFICATE.into(),
        E::AlertReceived(A::HandshakeFailure) => {
            "the server ended the handshake: no TLS version or cipher suite in common".into()
        }
        E::AlertReceived(alert) => {
            format!(
                "the server ended the handshake (alert: {})",
                in_words(&format!("{alert:?}"))
            )
        }
        E::InvalidMessage(M::InvalidContentType) | E::InvalidMessage(M::InvalidEmptyPayload) => {
            "the server does not speak TLS (it answered in plaintext)".into()
        }
        E::InvalidMessage(m) => format!(
            "the server sent a malformed TLS message ({})",
            in_words(&format!("{m:?}"))
        ),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server sent a TLS message out of order".into()
        }
        E::PeerMisbehaved(p) => format!("the server broke the TLS protocol ({})", in_words(&format!("{p:?}"))),
        E::PeerIncompatible(p) => format!(
            "the server's TLS is not compatible with this client ({})",
            in_words(&format!("{p:?}"))
        ),
        E::NoApplicationProtocol => "the server does not offer HTTP/2 over TLS (ALPN h2)".into(),
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        E::General(text) => text.clone(),
        other => in_words(&other.to_string()),
    }
}

/// A certificate problem rustls leaves to webpki (`CertificateError::Other`), in words.
fn certificate_problem(webpki: &str) -> String {
    let name = innermost(webpki);
    let why = match name {
        "CaUsedAsEndEntity" => {
            "it is a CA certificate, not a server certificate (the server must present a certificate its CA issued)"
                .to_owned()
        }
        "EndEntityUsedAsCa" => "a certificate of its chain that issued it is not a CA certificate".to_owned(),
        "UnsupportedCertVersion" => "it is not an X.509 v3 certificate".to_owned(),
        "UnsupportedSignatureAlgorithm" | "UnsupportedSignatureAlgorithmForPublicKey" => {
            "it is signed with an algorithm this client does not support".to_owned()
        }
        "RequiredEkuNotFound" => "it is not for TLS servers (extended key usage)".to_owned(),
        "PathLenConstraintViolated" => "its chain is longer than a CA allows".to_owned(),
        "NameConstraintViolation" => "its name is outside what its CA may issue".to_owned(),
        _ => in_words(webpki),
    };
    format!("the server's certificate is refused: {why}")
}

/// The innermost name of a Rust `Debug` text: `Other(OtherError(CaUsedAsEndEntity))` →
/// `CaUsedAsEndEntity`; `ExpiredContext { .. }` → `ExpiredContext`.
fn innermost(debug: &str) -> &str {
    let head = debug.split([')', '{', ',']).next().unwrap_or(debug);
    head.rsplit('(').next().unwrap_or(head).trim()
}

/// A Rust enum name said in words: `CaUsedAsEndEntity` → `ca used as end entity`. Text that is
/// already words stays as it is.
fn in_words(text: &str) -> String {
    let name = innermost(text);
    if name.is_empty() || name.contains(' ') || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return text.to_owned();
    }
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        let prev_lower = i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
        if c.is_ascii_uppercase() && i > 0 && (prev_lower || next_lower) {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_are_said_in_words() {
        assert_eq!(innermost("Other(OtherError(CaUsedAsEndEntity))"), "CaUsedAsEndEntity");
        assert_eq!(
            in_words("Other(OtherError(CaUsedAsEndEntity))"),
            "ca used as end entity"
        );
        assert_eq!(in_words("HandshakeFailure"), "handshake failure");
        assert_eq!(in_words("the server said no"), "the server said no");
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            std::sync::Arc::new(std::io::Error::other("CaUsedAsEndEntity")),
        )));
        let text = describe(&e);
        assert!(text.contains("CA certificate") && !text.contains("CaUsed"), "{text}");
    }
}
