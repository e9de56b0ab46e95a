//! What a production gateway sets on its connections, each against a real tonic server configured
//! for it: client certificates (mTLS), the TLS server-name override, Unix domain sockets,
//! compression, `wait_ready` with the routes' connection states, and `dns:` names with several
//! records.

mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use jina_net::oneshot::{send_request_async, OneShotOptions};
use jina_net::{
    AddOptions, ChannelOptions, Compression, ConnectionOptions, ConnectionPool, Error, PoolOptions, ReplicaState,
    Request, SendOptions, TlsIdentity, TlsOptions, To,
};
use jina_net_testserver::pki::Ca;
use jina_net_testserver::ServeOptions;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// A TLS echo server with a certificate for `names`; with `client_ca`, it requires client
/// certificates signed by it.
async fn tls_server(name: &str, ca: &Ca, names: &[&str], client_ca: Option<&Ca>) -> TestServer {
    let (cert, key) = ca.issue(names);
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(client_ca) = client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(&client_ca.pem));
    }
    let options = ServeOptions {
        tls: Some(tls),
        ..Default::default()
    };
    TestServer::start_with(name, Role::Echo, 0, options).await.unwrap()
}

fn pool_with(tls: TlsOptions, channel: ChannelOptions) -> ConnectionPool {
    ConnectionPool::new(PoolOptions {
        connection: ConnectionOptions {
            tls,
            channel,
            ..Default::default()
        },
        ..Default::default()
    })
}

fn trusting(ca: &Ca) -> TlsOptions {
    TlsOptions {
        root_certificates_pem: Some(ca.pem.clone().into_bytes()),
        ..Default::default()
    }
}

async fn send_one(pool: &ConnectionPool, deployment: &str, id: &str) -> Result<jina_net::Response, Error> {
    pool.send_request(data(id), deployment, To::AnyShard, &SendOptions::default())
        .unwrap()
        .await
        .remove(0)
        .result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_requiring_client_certificates_accepts_the_pool_with_one_and_refuses_it_without() {
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let server = tls_server("mtls", &server_ca, &["localhost"], Some(&client_ca)).await;
    let address = format!("grpcs://localhost:{}", server.addr.port());
    let (cert, key) = client_ca.issue(&["gateway"]);
    let identity = TlsIdentity {
        cert_chain_pem: cert.into_bytes(),
        private_key_pem: key.into_bytes(),
    };

    let with = pool_with(
        TlsOptions {
            identity: Some(identity.clone()),
            ..trusting(&server_ca)
        },
        ChannelOptions::default(),
    );
    with.add_connection("d", &address, false, None).unwrap();
    let r = send_one(&with, "d", "with-identity")
        .await
        .expect("the server accepts the client certificate");
    assert_eq!(trailer(&r, "replica").as_deref(), Some("mtls"));

    let without = pool_with(trusting(&server_ca), ChannelOptions::default());
    without.add_connection("d", &address, false, None).unwrap();
    let e = send_one(&without, "d", "without-identity").await.unwrap_err();
    let Error::Rpc(rpc) = &e else { panic!("{e}") };
    assert!(rpc.tls, "a TLS error: {e}");
    assert_eq!(rpc.attempts, 1, "a failed handshake is not retried: {e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("localhost:{}", server.addr.port())),
        "names the address: {text}"
    );
    assert!(text.contains("deployment \"d\""), "names the deployment: {text}");
    assert!(text.contains("certificate"), "says what the server wanted: {text}");

    // a certificate from a CA the server does not trust is refused too
    let (cert, key) = Ca::new().issue(&["intruder"]);
    let stranger = pool_with(
        TlsOptions {
            identity: Some(TlsIdentity {
                cert_chain_pem: cert.into_bytes(),
                private_key_pem: key.into_bytes(),
            }),
            ..trusting(&server_ca)
        },
        ChannelOptions::default(),
    );
    stranger.add_connection("d", &address, false, None).unwrap();
    let e = send_one(&stranger, "d", "stranger").await.unwrap_err();
    assert!(matches!(&e, Error::Rpc(r) if r.tls), "{e}");
    assert!(e.to_string().contains("refused the client's certificate"), "{e}");
    assert_eq!(
        server.record.calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "only the one with an identity got through"
    );

    // the one-shot helpers take an identity too
    let target = format!("localhost:{}", server.addr.port());
    let options = OneShotOptions {
        tls: true,
        root_certificates_pem: Some(server_ca.pem.clone().into_bytes()),
        identity: Some(identity),
        ..Default::default()
    };
    let r = send_request_async(data("oneshot"), &target, &options).await.unwrap();
    assert_eq!(decode(&r.body).header.unwrap().request_id, "oneshot");
    let e = send_request_async(
        data("oneshot-without"),
        &target,
        &OneShotOptions {
            identity: None,
            ..options
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, Error::Rpc(r) if r.tls), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pem_that_is_not_a_certificate_or_key_is_refused_when_the_pool_is_made() {
    let ca = Ca::new();
    let (cert, key) = ca.issue(&["gateway"]);
    let (_, other_key) = ca.issue(&["other"]);
    let cases = [
        ("garbage", key.clone(), "certificate"),
        (cert.as_str(), "not a key".to_owned(), "key"),
        (key.as_str(), cert.clone(), "certificate"),
        (cert.as_str(), other_key, "does not belong"),
    ];
    for (chain, key, word) in cases {
        let pool = pool_with(
            TlsOptions {
                identity: Some(TlsIdentity {
                    cert_chain_pem: chain.as_bytes().to_vec(),
                    private_key_pem: key.into_bytes(),
                }),
                ..Default::default()
            },
            ChannelOptions::default(),
        );
        let e = pool
            .add_connection("d", "grpcs://localhost:1", false, None)
            .unwrap_err();
        assert!(matches!(e, Error::TlsSetup(_)), "{e}");
        assert!(e.to_string().contains(word), "{word}: {e}");
    }
    let pool = pool_with(
        TlsOptions {
            root_certificates_pem: Some(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec()),
            ..Default::default()
        },
        ChannelOptions::default(),
    );
    let e = pool
        .add_connection("d", "grpcs://localhost:1", false, None)
        .unwrap_err();
    assert!(
        matches!(e, Error::TlsSetup(_)),
        "a root certificate that does not parse is refused: {e}"
    );
    // the one-shot helpers check the same way
    let e = send_request_async(
        data("x"),
        "localhost:1",
        &OneShotOptions {
            tls: true,
            identity: Some(TlsIdentity {
                cert_chain_pem: b"garbage".to_vec(),
                private_key_pem: b"garbage".to_vec(),
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::TlsSetup(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_name_override_checks_the_certificate_against_the_given_name() {
    let ca = Ca::new();
    // a pod reached by IP whose certificate names only the service
    let server = tls_server("pod", &ca, &["executor.jina.svc"], None).await;
    let address = format!("grpcs://127.0.0.1:{}", server.addr.port());

    let by_ip = pool_with(trusting(&ca), ChannelOptions::default());
    by_ip.add_connection("d", &address, false, None).unwrap();
    let e = send_one(&by_ip, "d", "by-ip").await.unwrap_err();
    assert!(
        matches!(&e, Error::Rpc(r) if r.tls),
        "the certificate does not name the IP: {e}"
    );
    assert!(
        e.to_string().contains(&format!("127.0.0.1:{}", server.addr.port())),
        "{e}"
    );

    let pool_wide = pool_with(
        TlsOptions {
            server_name: Some("executor.jina.svc".into()),
            ..trusting(&ca)
        },
        ChannelOptions::default(),
    );
    pool_wide.add_connection("d", &address, false, None).unwrap();
    let r = send_one(&pool_wide, "d", "pool-wide").await.unwrap();
    assert_eq!(trailer(&r, "replica").as_deref(), Some("pod"));

    // per address, over the pool's (wrong) name
    let per_address = pool_with(
        TlsOptions {
            server_name: Some("elsewhere.svc".into()),
            ..trusting(&ca)
        },
        ChannelOptions::default(),
    );
    let name_given = AddOptions {
        tls_server_name: Some("executor.jina.svc"),
        ..Default::default()
    };
    assert!(per_address.add_connection_with("d", &address, &name_given).unwrap());
    let r = send_one(&per_address, "d", "per-address").await.unwrap();
    assert_eq!(trailer(&r, "replica").as_deref(), Some("pod"));
    per_address.add_connection("other", &address, false, None).unwrap();
    let e = send_one(&per_address, "other", "pool-name").await.unwrap_err();
    assert!(matches!(&e, Error::Rpc(r) if r.tls), "{e}");

    // one-shot
    let options = OneShotOptions {
        tls: true,
        root_certificates_pem: Some(ca.pem.clone().into_bytes()),
        tls_server_name: Some("executor.jina.svc".into()),
        ..Default::default()
    };
    let target = format!("127.0.0.1:{}", server.addr.port());
    let r = send_request_async(data("oneshot"), &target, &options).await.unwrap();
    assert_eq!(decode(&r.body).header.unwrap().request_id, "oneshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_addresses_are_keyed_and_shown_as_given() {
    let dir = TempDir::new();
    let a = TestServer::start_unix("uds-a", Role::Echo, &dir.path().join("a.sock")).unwrap();
    let _b = TestServer::start_unix("uds-b", Role::Echo, &dir.path().join("b.sock")).unwrap();
    let a_address = a.address(); // unix:/tmp/.../a.sock
    let b_address = format!("unix://{}", dir.path().join("b.sock").display()); // unix:///tmp/.../b.sock
    assert!(b_address.starts_with("unix:///"));
    let pool = ConnectionPool::default();
    assert!(pool.add_connection("uds", &a_address, false, None).unwrap());
    assert!(pool.add_connection("uds", &b_address, false, None).unwrap());
    assert!(
        !pool.add_connection("uds", &a_address, false, None).unwrap(),
        "the same address once"
    );
    let table = pool.routing_table().unwrap();
    assert_eq!(table[0].addresses, vec![a_address.clone(), b_address.clone()]);
    let mut seen = Vec::new();
    for i in 0..4 {
        let r = send_one(&pool, "uds", &format!("u{i}")).await.unwrap();
        assert_eq!(&*r.address, if i % 2 == 0 { &a_address } else { &b_address });
        seen.push(trailer(&r, "replica").unwrap());
    }
    assert_eq!(seen, ["uds-a", "uds-b", "uds-a", "uds-b"]);
    let r = send_request_async(data("oneshot"), &b_address, &OneShotOptions::default())
        .await
        .unwrap();
    assert_eq!(decode(&r.body).header.unwrap().request_id, "oneshot");

    // a socket nobody listens on fails naming it
    let missing = format!("unix:{}", dir.path().join("missing.sock").display());
    pool.add_connection("gone", &missing, false, None).unwrap();
    let e = send_one(&pool, "gone", "x").await.unwrap_err();
    assert_eq!(e.grpc_code(), Some(tonic::Code::Unavailable), "{e}");
    assert!(e.to_string().contains(&missing), "{e}");
    // TLS over a Unix socket is refused up front
    let tls_pool = pool_with(
        TlsOptions {
            force: true,
            ..Default::default()
        },
        ChannelOptions::default(),
    );
    let e = tls_pool.add_connection("tls", &a_address, false, None).unwrap_err();
    assert!(e.to_string().contains(&a_address), "{e}");
    for bad in [
        "unix:",
        "unix://",
        "unix://relative/path",
        "unix:rel\0",
        "unix:/tmp/a,b.sock",
        "a,b:1",
        "host:1\t",
    ] {
        let e = pool.add_connection("bad", bad, false, None).unwrap_err();
        assert!(matches!(e, Error::InvalidAddress { .. }), "{bad:?}: {e}");
    }
    // deployment names: the routes text has one per line, tab-separated
    for bad in ["", "a\tb", "a\nb"] {
        let e = pool.add_connection(bad, &a_address, false, None).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}: {e}");
    }
}

/// A 1 MiB text-like request: compressible, as documents' text is.
fn text_request(id: &str) -> (Request, Vec<u8>) {
    use jina_net::proto::docarray::{document_proto::Content, DocumentArrayProto, DocumentProto};
    use jina_net::proto::jina::data_request_proto::{data_content_proto::Documents, DataContentProto};
    use prost::Message;
    let words = [
        "jina",
        "serves",
        "documents",
        "through",
        "executors",
        "and",
        "heads",
        "gateway",
    ];
    let mut text = String::new();
    let mut i = 0usize;
    while text.len() < 1 << 20 {
        text.push_str(words[i % words.len()]);
        text.push(if i % 13 == 12 { '\n' } else { ' ' });
        i = i.wrapping_mul(31).wrapping_add(7) % 1_000_003;
    }
    let mut proto = data_request(id, 0);
    proto.data = Some(DataContentProto {
        documents: Some(Documents::Docs(DocumentArrayProto {
            docs: vec![DocumentProto {
                id: format!("{id}-doc"),
                content: Some(Content::Text(text)),
                ..Default::default()
            }],
        })),
    });
    let bytes = proto.encode_to_vec();
    (Request::from(&proto), bytes)
}

fn docs_of(body: &[u8]) -> Vec<jina_net::proto::docarray::DocumentProto> {
    use jina_net::proto::jina::data_request_proto::data_content_proto::Documents;
    match decode(body).data.and_then(|d| d.documents) {
        Some(Documents::Docs(d)) => d.docs,
        other => panic!("no docs: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_compressed_as_asked_and_responses_decoded_in_any_encoding() {
    let (request, _) = text_request("c");
    let expected = docs_of(&{
        use prost::Message;
        let mut b = Vec::new();
        jina_net::proto::DataRequestProto::decode(request.bytes.clone())
            .unwrap()
            .encode(&mut b)
            .unwrap();
        b
    });
    for (pool_side, server_side) in [
        (Compression::Gzip, None),
        (Compression::Deflate, None),
        (Compression::Gzip, Some(CompressionEncoding::Deflate)),
        (Compression::Deflate, Some(CompressionEncoding::Gzip)),
        (Compression::None, Some(CompressionEncoding::Gzip)),
    ] {
        let server = TestServer::start_with(
            "z",
            Role::Echo,
            0,
            ServeOptions {
                send_compressed: server_side,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let pool = pool_with(
            TlsOptions::default(),
            ChannelOptions {
                compression: pool_side,
                ..Default::default()
            },
        );
        pool.add_connection("z", &server.address(), false, None).unwrap();
        let r = pool
            .send_request(request.clone(), "z", To::AnyShard, &SendOptions::default())
            .unwrap()
            .await
            .remove(0)
            .result
            .unwrap_or_else(|e| panic!("{pool_side:?}/{server_side:?}: {e}"));
        assert_eq!(docs_of(&r.body), expected, "{pool_side:?}/{server_side:?}");
        let headers = server.record.headers.lock().unwrap();
        let (_, h) = headers.last().unwrap();
        let encoding = h.get("grpc-encoding").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(encoding.as_deref(), pool_side.encoding(), "{pool_side:?}");
        let accepted = h.get("grpc-accept-encoding").map(|v| v.to_str().unwrap().to_owned());
        if pool_side == Compression::None {
            assert_eq!(accepted, None, "an uncompressed pool sends what jina 3.1 sends");
        } else {
            let accepted = accepted.unwrap_or_default();
            assert!(accepted.contains("gzip") && accepted.contains("deflate"), "{accepted}");
        }
    }
    // jina's names
    for (name, c) in [
        ("NoCompression", Compression::None),
        ("Gzip", Compression::Gzip),
        ("deflate", Compression::Deflate),
        ("none", Compression::None),
    ] {
        assert_eq!(Compression::from_name(name), Some(c), "{name}");
    }
    assert_eq!(Compression::from_name("zstd"), None);
    assert_eq!(Compression::from_name(""), None);
    assert_eq!(Compression::from_name("identity"), Some(Compression::None));
    assert_eq!(Compression::from_name("brotli"), None);

    // one-shot
    let server = start("one", Role::Echo).await;
    let options = OneShotOptions {
        channel: ChannelOptions {
            compression: Compression::Gzip,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = send_request_async(request.clone(), &server.address(), &options)
        .await
        .unwrap();
    assert_eq!(docs_of(&r.body), expected);
    let headers = server.record.headers.lock().unwrap();
    assert_eq!(headers[0].1.get("grpc-encoding").unwrap(), "gzip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ready_connects_every_replica_and_names_those_that_did_not_answer() {
    let a = start("a", Role::Echo).await;
    let b = start("b", Role::Echo).await;
    let dead = dead_address();
    let pool = ConnectionPool::default();
    pool.add_connection("up", &a.address(), false, None).unwrap();
    pool.add_connection("up", &b.address(), false, None).unwrap();
    pool.add_connection("up", &a.address(), true, None).unwrap();
    let states = |pool: &ConnectionPool, deployment: &str| -> Vec<Vec<ReplicaState>> {
        pool.routing_table()
            .unwrap()
            .into_iter()
            .filter(|r| r.deployment == deployment)
            .map(|r| r.states)
            .collect()
    };
    assert_eq!(
        states(&pool, "up"),
        vec![vec![ReplicaState::Idle], vec![ReplicaState::Idle, ReplicaState::Idle]]
    );
    pool.wait_ready(Some("up"), Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        states(&pool, "up"),
        vec![
            vec![ReplicaState::Ready],
            vec![ReplicaState::Ready, ReplicaState::Ready]
        ]
    );
    // with no time to ask, replicas that are ready are
    pool.wait_ready(Some("up"), Duration::ZERO).await.unwrap();
    // the probes were STATUS control requests on the connections (what jina's warmup does)
    assert!(a.record.calls.load(std::sync::atomic::Ordering::SeqCst) >= 2);

    pool.add_connection("half", &b.address(), false, Some(0)).unwrap();
    pool.add_connection("half", &dead, false, Some(1)).unwrap();
    let started = std::time::Instant::now();
    let e = pool.wait_ready(None, Duration::from_millis(800)).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(e.grpc_code(), None);
    let Error::NotReady { replicas, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(replicas.len(), 1, "{e}");
    assert!(
        replicas[0].contains("\"half\"") && replicas[0].contains("shard 1") && replicas[0].contains(&dead),
        "{e}"
    );
    assert!(replicas[0].contains("failing"), "{e}");
    assert_eq!(
        states(&pool, "half"),
        vec![vec![ReplicaState::Ready], vec![ReplicaState::Failing]]
    );
    // the ready deployment alone is ready
    pool.wait_ready(Some("up"), Duration::from_secs(1)).await.unwrap();
    let e = pool
        .wait_ready(Some("nobody"), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnknownDeployment { .. }), "{e}");
    // a replica that comes up while we wait makes it
    let late = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let late_address = late.local_addr().unwrap().to_string();
    drop(late);
    pool.add_connection("late", &late_address, false, None).unwrap();
    let waiting = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.wait_ready(Some("late"), Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _server = TestServer::start_at("late", Role::Echo, late_address.parse().unwrap())
        .await
        .unwrap();
    waiting.await.unwrap().unwrap();
    // closing the pool ends a wait at once
    let silent = start("silent", Role::Hostile(jina_net_testserver::Hostile::Silent)).await;
    pool.add_connection("silent", &silent.address(), false, None).unwrap();
    let waiting = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.wait_ready(Some("silent"), Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    pool.close();
    let e = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the wait ended when the pool closed")
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::PoolClosed), "{e}");
    let e = pool.wait_ready(None, Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(e, Error::PoolClosed), "{e}");
}

/// Two echo servers on the same port of 127.0.0.1 and 127.0.0.2.
async fn two_loopback_servers() -> (TestServer, TestServer, u16) {
    for _ in 0..20 {
        let one = start("one", Role::Echo).await;
        let port = one.addr.port();
        if let Ok(two) = TestServer::start_at("two", Role::Echo, ([127, 0, 0, 2], port).into()).await {
            return (one, two, port);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_name_with_two_records_is_two_replicas_and_is_followed() {
    let (one, two, port) = two_loopback_servers().await;
    let records: Arc<Mutex<Vec<IpAddr>>> = Arc::new(Mutex::new(vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([127, 0, 0, 2]),
    ]));
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let pool = ConnectionPool::new(PoolOptions {
        dns_refresh: Some(Duration::from_millis(300)),
        ..Default::default()
    });
    {
        let (records, asked) = (records.clone(), asked.clone());
        pool.set_resolver(Arc::new(move |host: &str| {
            asked.lock().unwrap().push(host.to_owned());
            if host == "replicas.test" {
                Ok(records.lock().unwrap().clone())
            } else {
                Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such name"))
            }
        }));
    }
    let name = format!("dns:///replicas.test:{port}");
    assert!(pool.add_connection("dns", &name, false, None).unwrap());
    assert!(
        !pool.add_connection("dns", &name, false, None).unwrap(),
        "the same name once"
    );
    assert_eq!(asked.lock().unwrap().as_slice(), ["replicas.test"]);
    let routes = pool.routing_table().unwrap();
    assert_eq!(
        routes[0].addresses,
        vec![format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")]
    );
    let mut answered = Vec::new();
    for i in 0..4 {
        let r = send_one(&pool, "dns", &format!("d{i}")).await.unwrap();
        answered.push(trailer(&r, "replica").unwrap());
    }
    answered.sort();
    assert_eq!(
        answered,
        ["one", "one", "two", "two"],
        "each record is a replica of its own"
    );

    // the name changes: the refresh follows it
    records.lock().unwrap().retain(|ip| *ip == IpAddr::from([127, 0, 0, 2]));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pool.routing_table().unwrap()[0].addresses.len() != 1 {
        assert!(std::time::Instant::now() < deadline, "the refresh dropped 127.0.0.1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        pool.routing_table().unwrap()[0].addresses,
        vec![format!("127.0.0.2:{port}")]
    );
    for i in 0..3 {
        let r = send_one(&pool, "dns", &format!("after{i}")).await.unwrap();
        assert_eq!(trailer(&r, "replica").as_deref(), Some("two"));
    }
    drop(one);
    records.lock().unwrap().insert(0, IpAddr::from([127, 0, 0, 1]));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pool.routing_table().unwrap()[0].addresses.len() != 2 {
        assert!(std::time::Instant::now() < deadline, "the refresh added 127.0.0.1 back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // a failing resolution keeps what the name had
    records.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(pool.routing_table().unwrap()[0].addresses.len(), 2);
    // removing the name removes its replicas
    assert!(pool.remove_connection("dns", &name, false, None).unwrap().is_some());
    assert!(!pool.has_deployment("dns"));
    // a name that does not resolve is refused naming it
    let e = pool
        .add_connection("dns", &format!("dns:///nowhere.test:{port}"), false, None)
        .unwrap_err();
    assert!(matches!(e, Error::Unresolved { .. }), "{e}");
    assert!(e.to_string().contains("nowhere.test"), "{e}");
    drop(two);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_name_is_re_resolved_soon_after_one_of_its_replicas_fails() {
    let (one, two, port) = two_loopback_servers().await;
    let records: Arc<Mutex<Vec<IpAddr>>> = Arc::new(Mutex::new(vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([127, 0, 0, 2]),
    ]));
    // an hour between regular refreshes: only the failure can trigger one; failed sends move on to
    // the other replica
    let pool = ConnectionPool::new(PoolOptions {
        dns_refresh: Some(Duration::from_secs(3600)),
        retry: jina_net::RetryPolicy {
            fail_over: true,
            ..Default::default()
        },
        ..Default::default()
    });
    {
        let records = records.clone();
        pool.set_resolver(Arc::new(move |_: &str| Ok(records.lock().unwrap().clone())));
    }
    pool.add_connection("dns", &format!("dns:///replicas.test:{port}"), false, None)
        .unwrap();
    // the pod behind 127.0.0.1 goes away (before any connection to it) and the name stops listing it
    one.stop().await;
    records.lock().unwrap().retain(|ip| *ip == IpAddr::from([127, 0, 0, 2]));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        // sends keep succeeding (retried on the other replica) and reveal the failure
        let r = send_one(&pool, "dns", "x").await.unwrap();
        assert_eq!(trailer(&r, "replica").as_deref(), Some("two"));
        if pool.routing_table().unwrap()[0].addresses == vec![format!("127.0.0.2:{port}")] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "re-resolved after the failure");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(two);
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "jina-net-uds-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
