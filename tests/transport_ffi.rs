//! The transport options through the C ABI, against real tonic servers: mTLS identity and server
//! name (pool and one-shot), `jina_net_pool_add_connection_ex`, `unix:` and `dns:` addresses,
//! compression, `jina_net_pool_wait_ready` and the states in `jina_net_pool_routes`; bad input gets
//! its own result code and leaves out-parameters alone.

mod common;

use std::ptr;

use common::c_abi::*;
use common::*;
use jina_net::ffi::add::*;
use jina_net::ffi::oneshot::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::*;
use jina_net::ffi::ready::jina_net_pool_wait_ready;
use jina_net::ffi::response::*;
use jina_net::ffi::result::jina_net_result::*;
use jina_net::ffi::routes::jina_net_pool_routes;
use jina_net::ffi::string::jina_net_string_free;
use jina_net_testserver::pki::Ca;
use jina_net_testserver::ServeOptions;
use prost::Message;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

fn send(pool: *mut jina_net_pool, deployment: &str, id: &str) -> Completed {
    try_send_data(pool, deployment, id).unwrap_or_else(|(r, e)| panic!("send refused: {r:?}: {e}"))
}

fn routes(pool: *mut jina_net_pool) -> String {
    let mut text = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_routes(pool, &mut text) }, JINA_NET_OK);
    let out = s(text);
    unsafe { jina_net_string_free(text) };
    out
}

async fn mtls_server(ca: &Ca, client_ca: &Ca, names: &[&str]) -> TestServer {
    let (cert, key) = ca.issue(names);
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(&client_ca.pem));
    let options = ServeOptions {
        tls: Some(tls),
        ..Default::default()
    };
    TestServer::start_with("mtls", Role::Echo, 0, options).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_and_server_name_through_the_pool_options() {
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    // a certificate that names the service, not the address
    let server = mtls_server(&server_ca, &client_ca, &["executor.jina.svc"]).await;
    let address = format!("grpcs://127.0.0.1:{}", server.addr.port());
    let (cert, key) = client_ca.issue(&["gateway"]);
    let name = cs("executor.jina.svc");

    let mut o = pool_options();
    o.root_certificates_pem = server_ca.pem.as_ptr();
    o.root_certificates_pem_len = server_ca.pem.len();
    o.tls_cert_chain_pem = cert.as_ptr();
    o.tls_cert_chain_pem_len = cert.len();
    o.tls_private_key_pem = key.as_ptr();
    o.tls_private_key_pem_len = key.len();
    o.tls_server_name = name.as_ptr();
    let pool = try_new_pool(&o).unwrap();
    assert_eq!(add_connection(pool, "d", &address), JINA_NET_OK);
    let done = send(pool, "d", "mtls");
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    assert_eq!(done.targets[0].meta("replica").as_deref(), Some("mtls"));
    unsafe { jina_net_pool_free(pool) };

    // without the identity: a TLS error naming the deployment and the address
    o.tls_cert_chain_pem = ptr::null();
    o.tls_cert_chain_pem_len = 0;
    o.tls_private_key_pem = ptr::null();
    o.tls_private_key_pem_len = 0;
    let pool = try_new_pool(&o).unwrap();
    assert_eq!(add_connection(pool, "d", &address), JINA_NET_OK);
    let done = send(pool, "d", "no-identity");
    assert_eq!(done.status, JINA_NET_TLS_ERROR, "{}", done.message);
    let t = &done.targets[0];
    assert_eq!(t.status, JINA_NET_TLS_ERROR);
    assert_eq!(t.grpc_code, tonic::Code::Unavailable as i32);
    let port = server.addr.port().to_string();
    assert!(
        t.error_message.contains(&port) && t.error_message.contains("\"d\""),
        "{}",
        t.error_message
    );
    assert!(t.error_message.contains("client certificate"), "{}", t.error_message);
    unsafe { jina_net_pool_free(pool) };

    // without the server name: the certificate does not name 127.0.0.1; with it per address, it does
    o.tls_server_name = ptr::null();
    o.tls_cert_chain_pem = cert.as_ptr();
    o.tls_cert_chain_pem_len = cert.len();
    o.tls_private_key_pem = key.as_ptr();
    o.tls_private_key_pem_len = key.len();
    let pool = try_new_pool(&o).unwrap();
    assert_eq!(add_connection(pool, "by-ip", &address), JINA_NET_OK);
    let done = send(pool, "by-ip", "by-ip");
    assert_eq!(done.status, JINA_NET_TLS_ERROR, "{}", done.message);
    assert!(
        done.targets[0].error_message.contains("name"),
        "{}",
        done.targets[0].error_message
    );
    let mut a = unsafe { std::mem::zeroed::<jina_net_add_options>() };
    assert_eq!(
        unsafe { jina_net_add_options_init(&mut a, std::mem::size_of::<jina_net_add_options>()) },
        JINA_NET_OK
    );
    assert_eq!((a.head, a.shard_id, a.tls_server_name), (false, -1, ptr::null()));
    a.tls_server_name = name.as_ptr();
    let mut added = false;
    let r =
        unsafe { jina_net_pool_add_connection_ex(pool, cs("named").as_ptr(), cs(&address).as_ptr(), &a, &mut added) };
    assert_eq!((r, added), (JINA_NET_OK, true), "{}", last_error());
    let done = send(pool, "named", "named");
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    // a server name that is no name
    let bad = cs("not a name!");
    a.tls_server_name = bad.as_ptr();
    let r = unsafe {
        jina_net_pool_add_connection_ex(pool, cs("bad").as_ptr(), cs(&address).as_ptr(), &a, ptr::null_mut())
    };
    assert_eq!(r, JINA_NET_TLS_ERROR, "{}", last_error());
    unsafe { jina_net_pool_free(pool) };

    // the one-shot helpers take the same
    let target = format!("127.0.0.1:{}", server.addr.port());
    let request = data_request("oneshot", 0).encode_to_vec();
    let oneshot = |with_identity: bool| {
        let mut so = unsafe { std::mem::zeroed::<jina_net_oneshot_options>() };
        unsafe { jina_net_oneshot_options_init(&mut so, std::mem::size_of::<jina_net_oneshot_options>()) };
        so.tls = true;
        so.root_certificates_pem = server_ca.pem.as_ptr();
        so.root_certificates_pem_len = server_ca.pem.len();
        so.tls_server_name = name.as_ptr();
        so.compression = jina_net_compression::JINA_NET_COMPRESSION_GZIP as u32;
        if with_identity {
            so.tls_cert_chain_pem = cert.as_ptr();
            so.tls_cert_chain_pem_len = cert.len();
            so.tls_private_key_pem = key.as_ptr();
            so.tls_private_key_pem_len = key.len();
        }
        let (target, request, out) = (target.clone(), request.clone(), ptr::null_mut::<jina_net_response>());
        let mut out = out;
        let r = unsafe {
            jina_net_send_request_sync(0, request.as_ptr(), request.len(), cs(&target).as_ptr(), &so, &mut out)
        };
        (r, out, last_error())
    };
    let (r, resp, message) = tokio::task::block_in_place(|| oneshot(true));
    assert_eq!(r, JINA_NET_OK, "{message}");
    unsafe { jina_net_response_free(resp) };
    let (r, resp, message) = tokio::task::block_in_place(|| oneshot(false));
    assert_eq!(r, JINA_NET_TLS_ERROR, "{message}");
    assert!(resp.is_null());
    assert!(message.contains(&target), "{message}");
}

#[test]
fn bad_tls_and_compression_settings_are_refused_when_the_pool_is_made() {
    let ca = Ca::new();
    let (cert, key) = ca.issue(&["gateway"]);
    let garbage = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    let mut o = pool_options();
    // a chain without a key
    o.tls_cert_chain_pem = cert.as_ptr();
    o.tls_cert_chain_pem_len = cert.len();
    let (r, m) = try_new_pool(&o).unwrap_err();
    assert_eq!(r, JINA_NET_TLS_ERROR, "{m}");
    assert!(m.contains("tls_private_key_pem"), "{m}");
    // a key that is not one
    o.tls_private_key_pem = cert.as_ptr();
    o.tls_private_key_pem_len = cert.len();
    let (r, m) = try_new_pool(&o).unwrap_err();
    assert_eq!(r, JINA_NET_TLS_ERROR, "{m}");
    assert!(m.contains("private key"), "{m}");
    // a chain that is not one
    o.tls_cert_chain_pem = garbage.as_ptr();
    o.tls_cert_chain_pem_len = garbage.len();
    o.tls_private_key_pem = key.as_ptr();
    o.tls_private_key_pem_len = key.len();
    let (r, m) = try_new_pool(&o).unwrap_err();
    assert_eq!(r, JINA_NET_TLS_ERROR, "{m}");
    assert!(m.contains("certificate chain"), "{m}");
    // a NULL pointer with a length
    o.tls_cert_chain_pem = ptr::null();
    o.tls_cert_chain_pem_len = 10;
    let (r, _) = try_new_pool(&o).unwrap_err();
    assert_eq!(r, JINA_NET_NULL_ARGUMENT);
    // unknown compression
    let mut o = pool_options();
    assert_eq!(o.compression, 0);
    assert_eq!(o.dns_refresh_ms, 30_000);
    o.compression = 3;
    let (r, m) = try_new_pool(&o).unwrap_err();
    assert_eq!(r, JINA_NET_INVALID_ARGUMENT, "{m}");
    assert!(m.contains("compression"), "{m}");
    // invalid UTF-8 in the server name
    let mut o = pool_options();
    let bad = [0xffu8, 0xfe, 0];
    o.tls_server_name = bad.as_ptr().cast();
    let (r, _) = try_new_pool(&o).unwrap_err();
    assert_eq!(r, JINA_NET_INVALID_UTF8);

    // names of compressions
    let from = |name: &str| {
        let mut out = 77u32;
        let r = unsafe { jina_net_compression_from_name(cs(name).as_ptr(), &mut out) };
        (r, out)
    };
    assert_eq!(from("NoCompression"), (JINA_NET_OK, 0));
    assert_eq!(from("Gzip"), (JINA_NET_OK, 1));
    assert_eq!(from("DEFLATE"), (JINA_NET_OK, 2));
    assert_eq!(from("zstd"), (JINA_NET_INVALID_ARGUMENT, 77), "out-parameter untouched");
    let mut out = 0u32;
    assert_eq!(
        unsafe { jina_net_compression_from_name(ptr::null(), &mut out) },
        JINA_NET_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { jina_net_compression_from_name(cs("gzip").as_ptr(), ptr::null_mut()) },
        JINA_NET_NULL_ARGUMENT
    );
    // add options: NULL, too small, unknown bytes beyond
    assert_eq!(
        unsafe { jina_net_add_options_init(ptr::null_mut(), std::mem::size_of::<jina_net_add_options>()) },
        JINA_NET_NULL_ARGUMENT
    );
    let mut a = unsafe { std::mem::zeroed::<jina_net_add_options>() };
    assert_eq!(
        unsafe { jina_net_add_options_init(&mut a, 4) },
        JINA_NET_INVALID_ARGUMENT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_dns_compression_and_wait_ready_through_the_c_abi() {
    let dir = std::env::temp_dir().join(format!("jina-net-ffi-uds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unix = TestServer::start_unix("uds", Role::Echo, &dir.join("w.sock")).unwrap();
    let tcp = start("tcp", Role::Echo).await;
    let mut o = pool_options();
    o.compression = jina_net_compression::JINA_NET_COMPRESSION_DEFLATE as u32;
    let pool = try_new_pool(&o).unwrap();
    assert_eq!(add_connection(pool, "uds", &unix.address()), JINA_NET_OK);
    let dns = format!("dns:///localhost:{}", tcp.addr.port());
    let mut added = false;
    let r = unsafe {
        jina_net_pool_add_connection_ex(pool, cs("dns").as_ptr(), cs(&dns).as_ptr(), ptr::null(), &mut added)
    };
    assert_eq!((r, added), (JINA_NET_OK, true), "{}", last_error());
    let table = routes(pool);
    assert_eq!(
        table,
        format!(
            "dns\tshard 0\t127.0.0.1:{}\tidle\nuds\tshard 0\t{}\tidle\n",
            tcp.addr.port(),
            unix.address()
        )
    );
    let r = tokio::task::block_in_place(|| unsafe { jina_net_pool_wait_ready(pool, ptr::null(), 5_000) });
    assert_eq!(r, JINA_NET_OK, "{}", last_error());
    assert_eq!(
        routes(pool),
        format!(
            "dns\tshard 0\t127.0.0.1:{}\tready\nuds\tshard 0\t{}\tready\n",
            tcp.addr.port(),
            unix.address()
        )
    );
    for deployment in ["uds", "dns"] {
        let done = tokio::task::block_in_place(|| send(pool, deployment, deployment));
        assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
        let expected = if deployment == "uds" {
            unix.address()
        } else {
            tcp.address()
        };
        assert_eq!(done.targets[0].address, expected);
    }
    let headers = unix.record.headers.lock().unwrap().clone();
    assert!(headers
        .iter()
        .any(|(_, h)| h.get("grpc-encoding").is_some_and(|v| v == "deflate")));

    // a replica that is not there: the deadline, naming it
    let dead = dead_address();
    assert_eq!(add_connection(pool, "dead", &dead), JINA_NET_OK);
    let r = tokio::task::block_in_place(|| unsafe { jina_net_pool_wait_ready(pool, cs("dead").as_ptr(), 300) });
    assert_eq!(r, JINA_NET_DEADLINE_EXCEEDED);
    let m = last_error();
    assert!(
        m.contains(&dead) && m.contains("\"dead\"") && m.contains("failing"),
        "{m}"
    );
    assert!(routes(pool).contains(&format!("dead\tshard 0\t{dead}\tfailing")));
    // bad input
    let r = unsafe { jina_net_pool_wait_ready(pool, cs("nobody").as_ptr(), 100) };
    assert_eq!(r, JINA_NET_UNKNOWN_DEPLOYMENT);
    assert_eq!(
        unsafe { jina_net_pool_wait_ready(ptr::null_mut(), ptr::null(), 100) },
        JINA_NET_NULL_ARGUMENT
    );
    let r = unsafe {
        jina_net_pool_add_connection_ex(
            pool,
            cs("x").as_ptr(),
            cs("dns:///nowhere.invalid:1").as_ptr(),
            ptr::null(),
            &mut added,
        )
    };
    assert_eq!(r, JINA_NET_INVALID_ADDRESS);
    assert!(last_error().contains("nowhere.invalid"), "{}", last_error());
    for bad in ["unix:", "unix://relative", "dns:///nohost", "dns://authority/host:1"] {
        let r = add_connection(pool, "x", bad);
        assert_eq!(r, JINA_NET_INVALID_ADDRESS, "{bad}: {}", last_error());
    }
    unsafe { jina_net_pool_free(pool) };
    drop(unix);
    let _ = std::fs::remove_dir_all(&dir);
}
