//! Busy polling of the library workers (`jina_net_runtime_set_busy_poll_us`), through the C ABI
//! against real tonic servers over TCP, TLS and a Unix socket. The setting is process-wide, so this
//! is its own test binary, and one test.
//!
//! The poll is set to 30 s (through the Rust API; the C ABI takes at most 10 ms), far longer than
//! any answer here takes: sends made one after another from a thread of the test still complete
//! at once. So a worker's poll ends when an answer's socket becomes readable (each kind of
//! connection is watched) and when another thread queues a send, instead of running to its length;
//! were either broken, the first send would wait the 30 s. (The bound asserted, 20 s for all the
//! sends, is behaviour, not speed: the sends take milliseconds.)

mod common;

use std::time::{Duration, Instant};

use common::c_abi::*;
use common::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::result::jina_net_result::*;
use jina_net::ffi::runtime::jina_net_runtime_set_busy_poll_us;
use jina_net_testserver::pki::Ca;
use jina_net_testserver::ServeOptions;
use tonic::transport::{Identity, ServerTlsConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_poll_ends_when_an_answer_or_a_send_arrives_over_tcp_tls_and_unix_sockets() {
    // the C ABI's bounds: 0 (off) to 10 ms; a refused value names itself and changes nothing
    assert_eq!(jina_net_runtime_set_busy_poll_us(0), JINA_NET_OK);
    assert_eq!(jina_net::runtime::busy_poll(), Duration::ZERO);
    assert_eq!(jina_net_runtime_set_busy_poll_us(10_000), JINA_NET_OK);
    assert_eq!(jina_net::runtime::busy_poll(), Duration::from_millis(10));
    assert_eq!(jina_net_runtime_set_busy_poll_us(10_001), JINA_NET_INVALID_ARGUMENT);
    assert!(last_error().contains("10001"), "{}", last_error());
    assert_eq!(jina_net::runtime::busy_poll(), Duration::from_millis(10));

    let dir = std::env::temp_dir().join(format!("jina-net-busy-poll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unix = TestServer::start_unix("uds", Role::Echo, &dir.join("w.sock")).unwrap();
    let tcp = start("tcp", Role::Echo).await;
    let ca = Ca::new();
    let (cert, key) = ca.issue(&["127.0.0.1"]);
    let options = ServeOptions {
        tls: Some(ServerTlsConfig::new().identity(Identity::from_pem(cert, key))),
        ..Default::default()
    };
    let tls = TestServer::start_with("tls", Role::Echo, 0, options).await.unwrap();

    jina_net::runtime::set_busy_poll(Duration::from_secs(30));
    let mut o = pool_options();
    o.root_certificates_pem = ca.pem.as_ptr();
    o.root_certificates_pem_len = ca.pem.len();
    let pool = try_new_pool(&o).unwrap();
    let tls_address = format!("grpcs://127.0.0.1:{}", tls.addr.port());
    for (deployment, address) in [("tcp", tcp.address()), ("tls", tls_address), ("uds", unix.address())] {
        assert_eq!(
            add_connection(pool, deployment, &address),
            JINA_NET_OK,
            "{}",
            last_error()
        );
    }
    // the pool started the library runtime, and its reactor was found: the workers do busy-poll
    assert!(jina_net::runtime::busy_polling());
    let start = Instant::now();
    tokio::task::block_in_place(|| {
        for round in 0..5 {
            for deployment in ["tcp", "tls", "uds"] {
                let done = try_send_data(pool, deployment, &format!("{deployment}-{round}"))
                    .unwrap_or_else(|(r, e)| panic!("send refused: {r:?}: {e}"));
                assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
                assert_eq!(done.targets[0].meta("replica").as_deref(), Some(deployment));
            }
        }
    });
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "15 sends took {took:?}: a poll ran to its length"
    );
    jina_net::runtime::set_busy_poll(Duration::ZERO);
    unsafe { jina_net_pool_free(pool) };
    let _ = std::fs::remove_dir_all(&dir);
}
