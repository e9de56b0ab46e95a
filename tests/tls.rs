//! TLS with a certificate authority generated at test time: pool, sync and async one-shot helpers
//! trust it; a channel trusting another CA is refused.

mod common;

use common::*;
use jina_net::oneshot::{send_request_async, send_request_sync, OneShotOptions};
use jina_net::{ConnectionOptions, ConnectionPool, PoolOptions, SendOptions, TlsOptions, To};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

async fn tls_server(pki: &Pki) -> TestServer {
    TestServer::start_tls("secure", Role::Echo, 0, pki.cert_pem.as_bytes(), pki.key_pem.as_bytes())
        .await
        .unwrap()
}

fn pool_trusting(ca_pem: &str) -> ConnectionPool {
    ConnectionPool::new(PoolOptions {
        connection: ConnectionOptions {
            tls: TlsOptions {
                force: false,
                root_certificates_pem: Some(ca_pem.as_bytes().to_vec()),
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_sends_over_tls() {
    let pki = pki();
    let server = tls_server(&pki).await;
    let port = server.addr.port();
    let pool = pool_trusting(&pki.ca_pem);
    for address in [format!("grpcs://localhost:{port}"), format!("https://127.0.0.1:{port}")] {
        pool.add_connection(&address, &address, false, None).unwrap();
        let t = pool
            .send_request(data("x"), &address, To::AnyShard, &SendOptions::default())
            .unwrap()
            .await
            .remove(0);
        let r = t.result.unwrap_or_else(|e| panic!("{address}: {e}"));
        assert_eq!(trailer(&r, "replica").as_deref(), Some("secure"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_helpers_over_tls() {
    let pki = pki();
    let server = tls_server(&pki).await;
    let target = format!("localhost:{}", server.addr.port());
    let options = OneShotOptions {
        tls: true,
        root_certificates_pem: Some(pki.ca_pem.clone().into_bytes()),
        ..Default::default()
    };
    let r = send_request_async(data("async"), &target, &options).await.unwrap();
    assert_eq!(decode(&r.body).header.unwrap().request_id, "async");
    let (t, o) = (target.clone(), options.clone());
    let r = tokio::task::spawn_blocking(move || send_request_sync(data("sync"), &t, &o))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decode(&r.body).header.unwrap().request_id, "sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_rejected() {
    let pki = pki();
    let other = pki_other();
    let server = tls_server(&pki).await;
    let target = format!("localhost:{}", server.addr.port());
    let options = OneShotOptions {
        tls: true,
        root_certificates_pem: Some(other.into_bytes()),
        ..Default::default()
    };
    let e = send_request_async(data("x"), &target, &options).await.unwrap_err();
    assert_eq!(e.grpc_code(), Some(tonic::Code::Unavailable), "{e}");
    assert!(e.to_string().contains(&target), "{e}");
    // plaintext to a TLS server fails too
    let e = send_request_async(data("x"), &target, &OneShotOptions::default())
        .await
        .unwrap_err();
    assert!(e.grpc_code().is_some(), "{e}");
    assert_eq!(server.record.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

fn pki_other() -> String {
    pki().ca_pem
}
