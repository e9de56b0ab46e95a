//! Certificates for TLS tests, made at test time (rcgen): `jina-net-test-server pki DIR` writes them
//! for the binding suites, which have no certificate tooling of their own.
//!
//! - `server-ca.pem`: the CA of the servers;
//! - `server.pem`, `server.key`: a server certificate for `localhost` and `127.0.0.1`;
//! - `svc.pem`, `svc.key`: a server certificate for `executor.jina.svc` only (a pod reached by IP
//!   whose certificate names its service: the server-name override's case);
//! - `client-ca.pem`: the CA whose client certificates an mTLS server accepts;
//! - `client.pem`, `client.key`: a client certificate it signed;
//! - `stranger.pem`, `stranger.key`: a client certificate from another CA.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A certificate authority.
pub struct Ca {
    /// Its certificate, PEM.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new self-signed CA, with a name of its own (certificates of different CAs must not look
    /// as if one issued the other's).
    pub fn new() -> Ca {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = KeyPair::generate().expect("a key pair");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(
            DnType::CommonName,
            format!("jina-net test CA {n} (pid {})", std::process::id()),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).expect("a self-signed CA").pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses) and its private key, PEM.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("a key pair");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        let cert = params.signed_by(&key, &self.issuer).expect("a signed certificate");
        (cert.pem(), key.serialize_pem())
    }
}

impl Default for Ca {
    fn default() -> Ca {
        Ca::new()
    }
}

/// Writes the files listed in the module documentation into `dir` (created if needed).
pub fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let put = |name: &str, text: &str| std::fs::write(dir.join(name), text);
    let servers = Ca::new();
    let clients = Ca::new();
    put("server-ca.pem", &servers.pem)?;
    put("client-ca.pem", &clients.pem)?;
    let (cert, key) = servers.issue(&["localhost", "127.0.0.1"]);
    put("server.pem", &cert)?;
    put("server.key", &key)?;
    let (cert, key) = servers.issue(&["executor.jina.svc"]);
    put("svc.pem", &cert)?;
    put("svc.key", &key)?;
    let (cert, key) = clients.issue(&["gateway"]);
    put("client.pem", &cert)?;
    put("client.key", &key)?;
    let (cert, key) = Ca::new().issue(&["stranger"]);
    put("stranger.pem", &cert)?;
    put("stranger.key", &key)?;
    Ok(())
}
