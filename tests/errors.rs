//! Messages as a user reads them, through the C ABI, one test per message: an unusable PEM in
//! `root_certificates_pem` is refused when the pool (or a one-shot send) is made, with
//! `JINA_NET_TLS_ERROR` naming the setting and what is wrong; TLS to a plaintext server is a TLS
//! error naming deployment and address; a server presenting a CA certificate is refused in words
//! (no Rust `Debug` text such as `Other(OtherError(CaUsedAsEndEntity))`); an unknown deployment is
//! said as unknown.

mod common;

use std::ptr;

use common::c_abi::*;
use common::*;
use jina_net::ffi::args::jina_net_bytes;
use jina_net::ffi::oneshot::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::response::jina_net_response;
use jina_net::ffi::result::jina_net_result::{self, *};
use jina_net::ffi::send::jina_net_pool_send;
use jina_net_testserver::ServeOptions;
use prost::Message;
use tonic::transport::{Identity, ServerTlsConfig};

/// Text that shows Rust's `Debug` of an enum rather than words.
fn assert_words(message: &str) {
    for debug in [
        "OtherError",
        "Other(",
        "InvalidContentType",
        "CaUsedAsEndEntity",
        "Some(",
        "AlertReceived",
        "BadEncoding",
        "InvalidCharacter",
    ] {
        assert!(!message.contains(debug), "Rust Debug text {debug:?} in {message:?}");
    }
}

fn pool_with_roots(roots: &[u8]) -> Result<*mut jina_net_pool, (jina_net_result, String)> {
    let mut o = pool_options();
    o.tls = true;
    o.root_certificates_pem = roots.as_ptr();
    o.root_certificates_pem_len = roots.len();
    try_new_pool(&o)
}

fn oneshot_with_roots(roots: &[u8], target: &str) -> (jina_net_result, String) {
    let mut so = unsafe { std::mem::zeroed::<jina_net_oneshot_options>() };
    unsafe { jina_net_oneshot_options_init(&mut so, std::mem::size_of::<jina_net_oneshot_options>()) };
    so.tls = true;
    so.timeout_ms = 5_000;
    so.root_certificates_pem = roots.as_ptr();
    so.root_certificates_pem_len = roots.len();
    let request = data_request("oneshot", 0).encode_to_vec();
    let mut out: *mut jina_net_response = ptr::null_mut();
    let r =
        unsafe { jina_net_send_request_sync(0, request.as_ptr(), request.len(), cs(target).as_ptr(), &so, &mut out) };
    assert!(out.is_null());
    (r, last_error())
}

/// Sends one request; `Err` with the code and message when the send is refused at once.
fn send(pool: *mut jina_net_pool, deployment: &str) -> Result<Completed, (jina_net_result, String)> {
    try_send_data(pool, deployment, "errors")
}

const NOT_PEM: &[u8] = b"not a pem";
const NO_CERTIFICATE: &[u8] = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
/// Base64 that decodes, but to bytes that are no X.509 certificate.
const BAD_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
/// A PEM block whose body is not base64.
const BAD_BASE64: &[u8] = b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";

#[test]
fn unusable_root_certificates_are_refused_when_the_pool_is_made() {
    for (pem, says) in [
        (NOT_PEM, "holds no PEM certificate"),
        (NO_CERTIFICATE, "holds no PEM certificate"),
        (
            BAD_CERTIFICATE,
            "is not a valid X.509 certificate: its DER encoding does not parse",
        ),
        (BAD_BASE64, "does not decode: its body is not valid base64"),
    ] {
        let (r, m) = pool_with_roots(pem).unwrap_err();
        assert_eq!(r, JINA_NET_TLS_ERROR, "{m}");
        assert!(m.contains("root_certificates_pem") && m.contains(says), "{m}");
        assert_words(&m);
    }
}

#[test]
fn unusable_root_certificates_are_refused_by_the_one_shot_helpers() {
    // nothing listens there: the PEM is refused before any connection is tried
    let target = dead_address();
    for (pem, says) in [
        (NOT_PEM, "holds no PEM certificate"),
        (BAD_CERTIFICATE, "is not a valid X.509 certificate"),
    ] {
        let (r, m) = oneshot_with_roots(pem, &target);
        assert_eq!(r, JINA_NET_TLS_ERROR, "{m}");
        assert!(m.contains("root_certificates_pem") && m.contains(says), "{m}");
        assert_words(&m);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plaintext_server_is_a_tls_error_naming_deployment_and_address() {
    let server = start("plain", Role::Echo).await;
    let ca = jina_net_testserver::pki::Ca::new();
    let pool = pool_with_roots(ca.pem.as_bytes()).unwrap();
    let address = format!("127.0.0.1:{}", server.addr.port());
    assert_eq!(add_connection(pool, "plain", &address), JINA_NET_OK);
    let done = tokio::task::block_in_place(|| send(pool, "plain")).unwrap();
    assert_eq!(done.status, JINA_NET_TLS_ERROR, "{}", done.message);
    let m = &done.targets[0].error_message;
    assert_eq!(done.targets[0].status, JINA_NET_TLS_ERROR, "{m}");
    assert!(m.contains("\"plain\"") && m.contains(&address), "{m}");
    assert!(m.contains("does not speak TLS"), "{m}");
    assert_words(m);
    unsafe { jina_net_pool_free(pool) };

    // the one-shot helpers say the same, naming the address
    let (r, m) = tokio::task::block_in_place(|| oneshot_with_roots(ca.pem.as_bytes(), &address));
    assert_eq!(r, JINA_NET_TLS_ERROR, "{m}");
    assert!(m.contains(&address) && m.contains("does not speak TLS"), "{m}");
    assert_words(&m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_presenting_a_ca_certificate_is_refused_in_words() {
    // a self-signed CA certificate for 127.0.0.1, used by the server as its own
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap().pem();
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(&cert, key.serialize_pem()));
    let server = TestServer::start_with(
        "ca-as-server",
        Role::Echo,
        0,
        ServeOptions {
            tls: Some(tls),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let pool = pool_with_roots(cert.as_bytes()).unwrap();
    let address = format!("127.0.0.1:{}", server.addr.port());
    assert_eq!(add_connection(pool, "ca", &address), JINA_NET_OK);
    let done = tokio::task::block_in_place(|| send(pool, "ca")).unwrap();
    assert_eq!(done.status, JINA_NET_TLS_ERROR, "{}", done.message);
    let m = &done.targets[0].error_message;
    assert!(m.contains(&address) && m.contains("is a CA certificate"), "{m}");
    assert_words(m);
    unsafe { jina_net_pool_free(pool) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_deployment_is_said_as_unknown() {
    let server = start("known", Role::Echo).await;
    let pool = try_new_pool(&pool_options()).unwrap();
    assert_eq!(
        add_connection(pool, "known", &format!("127.0.0.1:{}", server.addr.port())),
        JINA_NET_OK
    );
    let (r, m) = tokio::task::block_in_place(|| send(pool, "nope")).unwrap_err();
    assert_eq!(r, JINA_NET_UNKNOWN_DEPLOYMENT, "{m}");
    assert!(m.contains("unknown deployment \"nope\""), "{m}");
    assert!(!m.contains("no replicas available"), "{m}");
    let done = tokio::task::block_in_place(|| send(pool, "known")).unwrap();
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    unsafe { jina_net_pool_free(pool) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_request_bytes_are_said_in_words() {
    let server = start("garbage", Role::Echo).await;
    let pool = try_new_pool(&pool_options()).unwrap();
    assert_eq!(
        add_connection(pool, "d", &format!("127.0.0.1:{}", server.addr.port())),
        JINA_NET_OK
    );
    let garbage = [0xffu8, 0xff, 0xff];
    let b = jina_net_bytes {
        data: garbage.as_ptr(),
        len: garbage.len(),
    };
    let r = unsafe {
        jina_net_pool_send(
            pool,
            0,
            &b,
            1,
            cs("d").as_ptr(),
            false,
            -1,
            0,
            ptr::null(),
            1_000,
            Some(collect),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let m = last_error();
    assert_eq!(r, JINA_NET_INVALID_REQUEST, "{m}");
    assert!(m.contains("data request bytes are not protobuf"), "{m}");
    unsafe { jina_net_pool_free(pool) };
}
