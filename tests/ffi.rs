//! The C ABI called from Rust with a Condvar-based callback collector, against real servers.

mod common;

use std::ffi::c_void;
use std::ptr;
use std::time::Duration;

use common::c_abi::*;
use common::*;
use jina_net::ffi::args::{jina_net_bytes, JINA_NET_NO_SHARD};
use jina_net::ffi::host::*;
use jina_net::ffi::oneshot::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::*;
use jina_net::ffi::response::*;
use jina_net::ffi::result::jina_net_result::{self, *};
use jina_net::ffi::result::*;
use jina_net::ffi::send::*;
use jina_net::ffi::string::*;
use prost::Message;

fn new_pool() -> *mut jina_net_pool {
    let mut pool = ptr::null_mut();
    assert_eq!(unsafe { jina_net_pool_new(ptr::null(), &mut pool) }, JINA_NET_OK);
    pool
}

fn add(pool: *mut jina_net_pool, dep: &str, addr: &str, head: bool, shard: i64) -> jina_net_result {
    unsafe { jina_net_pool_add_connection(pool, cs(dep).as_ptr(), cs(addr).as_ptr(), head, shard, ptr::null_mut()) }
}

fn send(
    pool: *mut jina_net_pool,
    req: &[u8],
    dep: &str,
    head: bool,
    shard: i64,
    polling: u32,
    c: &Collector,
) -> jina_net_result {
    let b = jina_net_bytes {
        data: req.as_ptr(),
        len: req.len(),
    };
    unsafe {
        jina_net_pool_send(
            pool,
            0,
            &b,
            1,
            cs(dep).as_ptr(),
            head,
            shard,
            polling,
            ptr::null(),
            0,
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        )
    }
}

fn req(id: &str) -> Vec<u8> {
    data_request(id, 0).encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_round_robin_all_and_head_through_the_c_abi() {
    let a = start("a", Role::Echo).await;
    let b = start("b", Role::Echo).await;
    let h = start("h", Role::Echo).await;
    let pool = new_pool();
    assert_eq!(add(pool, "enc", &a.address(), false, JINA_NET_NO_SHARD), JINA_NET_OK);
    assert_eq!(add(pool, "enc", &b.address(), false, 1), JINA_NET_OK);
    assert_eq!(add(pool, "enc", &h.address(), true, JINA_NET_NO_SHARD), JINA_NET_OK);
    let c = Collector::default();
    assert_eq!(send(pool, &req("x"), "enc", false, 0, 0, &c), JINA_NET_OK);
    assert_eq!(
        send(pool, &req("y"), "enc", false, JINA_NET_NO_SHARD, 1, &c),
        JINA_NET_OK
    );
    assert_eq!(
        send(pool, &req("z"), "enc", true, JINA_NET_NO_SHARD, 0, &c),
        JINA_NET_OK
    );
    let done = c.wait(3);
    for d in &done {
        assert_eq!(d.status, JINA_NET_OK, "{}", d.message);
        assert!(d
            .targets
            .iter()
            .all(|t| t.status == JINA_NET_OK && t.grpc_code == 0 && t.error_message.is_empty()));
    }
    let find = |id: &str| {
        done.iter()
            .find(|d| decode(&d.targets[0].body).header.unwrap().request_id == id)
            .unwrap()
            .clone()
    };
    let x = find("x");
    assert_eq!(
        (x.targets.len(), x.targets[0].shard_id, x.targets[0].address.clone()),
        (1, 0, a.address())
    );
    assert_eq!(x.targets[0].meta("replica").as_deref(), Some("a"));
    let y = find("y");
    let shards: Vec<i64> = y.targets.iter().map(|t| t.shard_id).collect();
    assert_eq!(shards, [0, 1]);
    let z = find("z");
    assert!(z.targets[0].head);
    assert_eq!(z.targets[0].shard_id, -1);
    unsafe { jina_net_pool_free(pool) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_deployment_address_and_status() {
    let u = start("u", Role::Unavailable).await;
    let pool = new_pool();
    add(pool, "dep-u", &u.address(), false, JINA_NET_NO_SHARD);
    let c = Collector::default();
    assert_eq!(
        send(pool, &req("x"), "dep-u", false, JINA_NET_NO_SHARD, 0, &c),
        JINA_NET_OK
    );
    let d = c.wait(1).remove(0);
    assert_eq!(d.status, JINA_NET_RPC_ERROR);
    assert_eq!(d.targets[0].grpc_code, 14);
    for m in [&d.message, &d.targets[0].error_message] {
        assert!(
            m.contains("dep-u") && m.contains(&u.address()) && m.contains("Unavailable"),
            "{m}"
        );
    }
    // routing errors are synchronous: no callback
    assert_eq!(
        send(pool, &req("x"), "nope", false, JINA_NET_NO_SHARD, 0, &c),
        JINA_NET_UNKNOWN_DEPLOYMENT
    );
    assert!(
        last_error().contains("jina_net_pool_send") && last_error().contains("nope"),
        "{}",
        last_error()
    );
    assert_eq!(
        send(pool, &req("x"), "dep-u", true, JINA_NET_NO_SHARD, 0, &c),
        JINA_NET_NO_REPLICAS
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        c.done.lock().unwrap().len(),
        1,
        "no callback for a send that returned an error"
    );
    unsafe { jina_net_pool_free(pool) };
}

#[test]
fn bad_input_gets_specific_codes_and_leaves_the_pool_working() {
    let pool = new_pool();
    let c = Collector::default();
    unsafe {
        let mut p = ptr::null_mut();
        assert_eq!(jina_net_pool_new(ptr::null(), ptr::null_mut()), JINA_NET_NULL_ARGUMENT);
        let mut opts = std::mem::zeroed::<jina_net_pool_options>();
        jina_net_pool_options_init(&mut opts, std::mem::size_of::<jina_net_pool_options>());
        assert_eq!(opts.max_attempts, 3);
        assert!(
            !opts.fail_over && opts.eject_after_failures == 0 && opts.initial_backoff_ms == 0,
            "jina's behaviour"
        );
        jina_net_pool_options_init_resilient(&mut opts, std::mem::size_of::<jina_net_pool_options>());
        assert!(opts.fail_over && opts.eject_after_failures == 1 && opts.max_ejection_percent == 50);
        opts.max_attempts = 0;
        assert_eq!(jina_net_pool_new(&opts, &mut p), JINA_NET_INVALID_ARGUMENT);
        assert!(p.is_null(), "out-parameter untouched on failure");
        assert_eq!(
            jina_net_pool_add_connection(
                ptr::null_mut(),
                cs("d").as_ptr(),
                cs("h:1").as_ptr(),
                false,
                -1,
                ptr::null_mut()
            ),
            JINA_NET_NULL_ARGUMENT
        );
        assert_eq!(
            jina_net_pool_add_connection(pool, ptr::null(), cs("h:1").as_ptr(), false, -1, ptr::null_mut()),
            JINA_NET_NULL_ARGUMENT
        );
        let bad_utf8 = [0xffu8, 0xfe, 0];
        assert_eq!(
            jina_net_pool_add_connection(
                pool,
                bad_utf8.as_ptr().cast(),
                cs("h:1").as_ptr(),
                false,
                -1,
                ptr::null_mut()
            ),
            JINA_NET_INVALID_UTF8
        );
        assert_eq!(add(pool, "d", "no-port", false, -1), JINA_NET_INVALID_ADDRESS);
        assert!(last_error().contains("no-port"), "{}", last_error());
        assert_eq!(add(pool, "d", "h:1", false, 1 << 40), JINA_NET_INVALID_ARGUMENT);
        let mut added = false;
        assert_eq!(
            jina_net_pool_add_connection(
                pool,
                cs("d").as_ptr(),
                cs("127.0.0.1:1").as_ptr(),
                false,
                -1,
                &mut added
            ),
            JINA_NET_OK
        );
        assert!(added);
        // garbage bytes, unknown kind, unknown polling, NULL callback, NULL requests
        let garbage = [0xffu8, 0xff, 0xff, 0xff];
        assert_eq!(send(pool, &garbage, "d", false, -1, 0, &c), JINA_NET_INVALID_REQUEST);
        let b = jina_net_bytes {
            data: garbage.as_ptr(),
            len: 0,
        };
        assert_eq!(
            jina_net_pool_send(
                pool,
                7,
                &b,
                1,
                cs("d").as_ptr(),
                false,
                -1,
                0,
                ptr::null(),
                0,
                Some(collect),
                c.ud(),
                ptr::null_mut()
            ),
            JINA_NET_INVALID_ARGUMENT
        );
        assert_eq!(
            jina_net_pool_send(
                pool,
                0,
                &b,
                1,
                cs("d").as_ptr(),
                false,
                -1,
                9,
                ptr::null(),
                0,
                Some(collect),
                c.ud(),
                ptr::null_mut()
            ),
            JINA_NET_INVALID_ARGUMENT
        );
        assert_eq!(
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
                0,
                None,
                c.ud(),
                ptr::null_mut()
            ),
            JINA_NET_NULL_ARGUMENT
        );
        assert_eq!(
            jina_net_pool_send(
                pool,
                0,
                ptr::null(),
                1,
                cs("d").as_ptr(),
                false,
                -1,
                0,
                ptr::null(),
                0,
                Some(collect),
                c.ud(),
                ptr::null_mut()
            ),
            JINA_NET_NULL_ARGUMENT
        );
        assert_eq!(
            jina_net_pool_send(
                pool,
                0,
                &b,
                0,
                cs("d").as_ptr(),
                false,
                -1,
                0,
                ptr::null(),
                0,
                Some(collect),
                c.ud(),
                ptr::null_mut()
            ),
            JINA_NET_INVALID_ARGUMENT
        );
        let nul_len = jina_net_bytes {
            data: ptr::null(),
            len: 5,
        };
        assert_eq!(
            jina_net_pool_send(
                pool,
                0,
                &nul_len,
                1,
                cs("d").as_ptr(),
                false,
                -1,
                0,
                ptr::null(),
                0,
                Some(collect),
                c.ud(),
                ptr::null_mut()
            ),
            JINA_NET_NULL_ARGUMENT
        );
        // two control requests cannot be combined
        let two = [b, b];
        assert_eq!(
            jina_net_pool_send(
                pool,
                1,
                two.as_ptr(),
                2,
                cs("d").as_ptr(),
                false,
                -1,
                0,
                ptr::null(),
                0,
                Some(collect),
                c.ud(),
                ptr::null_mut()
            ),
            JINA_NET_INVALID_REQUEST
        );
        assert_eq!(jina_net_pool_cancel(pool, 12345), JINA_NET_NOT_FOUND);
        // the pool still works after all that: a real send to a dead port completes with an error
        assert_eq!(send(pool, &req("ok"), "d", false, -1, 0, &c), JINA_NET_OK);
        assert_eq!(c.wait(1)[0].status, JINA_NET_RPC_ERROR);
        // closed pool
        assert_eq!(jina_net_pool_close(pool), JINA_NET_OK);
        assert_eq!(jina_net_pool_close(pool), JINA_NET_OK);
        assert_eq!(add(pool, "d", "h:2", false, -1), JINA_NET_POOL_CLOSED);
        assert_eq!(send(pool, &req("x"), "d", false, -1, 0, &c), JINA_NET_POOL_CLOSED);
        jina_net_pool_free(pool);
        jina_net_pool_free(ptr::null_mut());
        jina_net_response_free(ptr::null_mut());
        jina_net_string_free(ptr::null_mut());
        assert_eq!(
            s(jina_net_result_name(JINA_NET_POOL_CLOSED as u32)),
            "JINA_NET_POOL_CLOSED"
        );
        assert_eq!(s(jina_net_result_name(999)), "JINA_NET_UNKNOWN_RESULT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_and_cancel_complete_pending_sends_exactly_once() {
    let slow = start("slow", Role::Slow(Duration::from_secs(10))).await;
    let pool = new_pool();
    add(pool, "d", &slow.address(), false, -1);
    let c = Collector::default();
    let r = req("x");
    let b = jina_net_bytes {
        data: r.as_ptr(),
        len: r.len(),
    };
    let mut id = 0u64;
    unsafe {
        assert_eq!(
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
                0,
                Some(collect),
                c.ud(),
                &mut id
            ),
            JINA_NET_OK
        );
        assert_eq!(send(pool, &r, "d", false, -1, 0, &c), JINA_NET_OK);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(jina_net_pool_cancel(pool, id), JINA_NET_OK);
        assert_eq!(jina_net_pool_cancel(pool, id), JINA_NET_NOT_FOUND);
        let first = c.wait(1);
        assert_eq!(first[0].status, JINA_NET_CANCELLED);
        assert_eq!(first[0].targets[0].grpc_code, 1);
        jina_net_pool_free(pool);
    }
    let done = c.wait(2);
    assert_eq!(done[1].status, JINA_NET_POOL_CLOSED);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.done.lock().unwrap().len(), 2, "exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_helpers_and_control_plane() {
    let head = start(
        "head",
        Role::Head {
            deployment: "worker".into(),
            polling: jina_net::Polling::Any,
        },
    )
    .await;
    let w = start("w", Role::Echo).await;
    let c = Collector::default();
    let (head_addr, port) = (head.address(), w.addr.port());
    let h = head_addr.clone();
    // blocking ACTIVATE from a plain thread
    tokio::task::spawn_blocking(move || unsafe {
        let mut resp = ptr::null_mut();
        assert_eq!(
            jina_net_activate_worker_sync(cs("127.0.0.1").as_ptr(), port, cs(&h).as_ptr(), 0, 0, &mut resp),
            JINA_NET_OK
        );
        let (mut d, mut l) = (ptr::null(), 0usize);
        assert_eq!(jina_net_response_body(resp, &mut d, &mut l), JINA_NET_OK);
        let echo = jina_net::proto::ControlRequestProto::decode(std::slice::from_raw_parts(d, l)).unwrap();
        assert_eq!(echo.command, 1);
        assert_eq!(echo.related_entities[0].shard_id, Some(0));
        jina_net_response_free(resp);
    })
    .await
    .unwrap();
    // data through the head, blocking, with metadata access
    let h = head_addr.clone();
    tokio::task::spawn_blocking(move || unsafe {
        let r = req("via-head");
        let mut resp = ptr::null_mut();
        let opts = jina_net_oneshot_options {
            struct_size: std::mem::size_of::<jina_net_oneshot_options>(),
            timeout_ms: 0,
            tls: false,
            root_certificates_pem: ptr::null(),
            root_certificates_pem_len: 0,
            endpoint: c"/index".as_ptr(),
            tls_cert_chain_pem: ptr::null(),
            tls_cert_chain_pem_len: 0,
            tls_private_key_pem: ptr::null(),
            tls_private_key_pem_len: 0,
            tls_server_name: ptr::null(),
            compression: 0,
        };
        assert_eq!(
            jina_net_send_request_sync(0, r.as_ptr(), r.len(), cs(&h).as_ptr(), &opts, &mut resp),
            JINA_NET_OK,
            "{}",
            last_error()
        );
        let n = jina_net_response_metadata_count(resp);
        let mut found = false;
        for i in 0..n {
            let (mut k, mut v, mut l) = (ptr::null(), ptr::null(), 0usize);
            assert_eq!(jina_net_response_metadata(resp, i, &mut k, &mut v, &mut l), JINA_NET_OK);
            if s(k) == "replica" {
                found = std::slice::from_raw_parts(v, l) == b"w";
            }
        }
        assert!(found, "replica trailer of the worker behind the head");
        let (mut k, mut v, mut l) = (ptr::null(), ptr::null(), 0usize);
        assert_eq!(
            jina_net_response_metadata(resp, n, &mut k, &mut v, &mut l),
            JINA_NET_INVALID_ARGUMENT
        );
        assert_eq!(s(jina_net_response_address(resp)), h);
        jina_net_response_free(resp);
    })
    .await
    .unwrap();
    // async DEACTIVATE, then the head refuses
    unsafe {
        assert_eq!(
            jina_net_deactivate_worker(
                cs("127.0.0.1").as_ptr(),
                port,
                cs(&head_addr).as_ptr(),
                0,
                Some(collect),
                c.ud()
            ),
            JINA_NET_OK
        );
    }
    let d = c.wait(1).remove(0);
    assert_eq!(d.status, JINA_NET_OK, "{}", d.message);
    assert_eq!(
        jina_net::proto::ControlRequestProto::decode(&d.targets[0].body[..])
            .unwrap()
            .command,
        2
    );
    let r = req("refused");
    unsafe {
        assert_eq!(
            jina_net_send_request_async(
                0,
                r.as_ptr(),
                r.len(),
                cs(&head_addr).as_ptr(),
                ptr::null(),
                Some(collect),
                c.ud()
            ),
            JINA_NET_OK
        );
        assert_eq!(
            jina_net_activate_worker(
                cs("127.0.0.1").as_ptr(),
                port,
                cs("bad address").as_ptr(),
                -1,
                Some(collect),
                c.ud()
            ),
            JINA_NET_INVALID_ADDRESS
        );
    }
    let d = c.wait(2).remove(1);
    assert_eq!(d.status, JINA_NET_RPC_ERROR);
    assert_eq!(d.targets[0].grpc_code, 2, "UNKNOWN from a head without workers");
    assert_eq!(d.targets[0].shard_id, -1);
}

#[test]
fn host_checks_and_options() {
    unsafe {
        let mut b = false;
        assert_eq!(jina_net_host_is_local(cs("localhost").as_ptr(), &mut b), JINA_NET_OK);
        assert!(b);
        assert_eq!(
            jina_net_host_is_local(cs("jina.ai").as_ptr(), &mut b),
            JINA_NET_INVALID_HOST
        );
        assert_eq!(
            jina_net_is_remote_local_connection(cs("1.2.3.4").as_ptr(), cs("localhost").as_ptr(), &mut b),
            JINA_NET_OK
        );
        assert!(b);
        assert_eq!(
            jina_net_is_remote_local_connection(cs("1.2.3.4").as_ptr(), ptr::null(), &mut b),
            JINA_NET_NULL_ARGUMENT
        );
        let mut n = 0;
        let opts = jina_net_default_grpc_options(&mut n);
        assert_eq!(n, 2);
        assert_eq!(s((*opts).name), "grpc.max_send_message_length");
        assert_eq!((*opts.add(1)).value, -1);
        assert_eq!(s(jina_net::ffi::runtime::jina_net_version()), env!("CARGO_PKG_VERSION"));
        // the runtime has been started by now (or is about to be): a second init is refused once running
        let _ = jina_net::runtime::handle();
        assert_eq!(
            jina_net::ffi::runtime::jina_net_runtime_init(2),
            JINA_NET_ALREADY_STARTED
        );
        assert_eq!(
            jina_net::ffi::runtime::jina_net_runtime_init(0),
            JINA_NET_INVALID_ARGUMENT
        );
    }
}

static FREED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe extern "C" fn free_vec(ctx: *mut c_void, data: *const u8, len: usize) {
    // ctx is the boxed Vec the buffer came from
    let v = unsafe { Box::from_raw(ctx as *mut Vec<u8>) };
    assert_eq!((v.as_ptr(), v.len()), (data, len));
    FREED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// A request buffer handed over to the library: its pointer, length and the ctx that frees it.
fn handed_over(bytes: Vec<u8>) -> (jina_net_bytes, *mut c_void) {
    let boxed = Box::new(bytes);
    let b = jina_net_bytes {
        data: boxed.as_ptr(),
        len: boxed.len(),
    };
    (b, Box::into_raw(boxed) as *mut c_void)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_buffers_are_sent_without_copy_and_freed_exactly_once() {
    use std::sync::atomic::Ordering::SeqCst;
    let w = start("w", Role::Echo).await;
    let pool = new_pool();
    add(pool, "d", &w.address(), false, JINA_NET_NO_SHARD);
    let c = Collector::default();
    let freed = || FREED.load(SeqCst);
    let before = freed();
    unsafe {
        // success: freed once the send no longer needs it
        let (b, ctx) = handed_over(req("owned"));
        let r = jina_net_pool_send_owned(
            pool,
            0,
            &b,
            1,
            Some(free_vec),
            ctx,
            cs("d").as_ptr(),
            false,
            -1,
            0,
            ptr::null(),
            0,
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        );
        assert_eq!(r, JINA_NET_OK);
        let done = c.wait(1);
        assert_eq!(done[0].status, JINA_NET_OK);
        assert_eq!(decode(&done[0].targets[0].body).header.unwrap().request_id, "owned");
        let started = std::time::Instant::now();
        while freed() < before + 1 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(freed(), before + 1);
        // failures free the buffer before returning
        let (b, ctx) = handed_over(req("x"));
        let r = jina_net_pool_send_owned(
            pool,
            0,
            &b,
            1,
            Some(free_vec),
            ctx,
            cs("nope").as_ptr(),
            false,
            -1,
            0,
            ptr::null(),
            0,
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        );
        assert_eq!((r, freed()), (JINA_NET_UNKNOWN_DEPLOYMENT, before + 2));
        let (b, ctx) = handed_over(vec![0xff, 0xff, 0xff]);
        let r = jina_net_pool_send_owned(
            pool,
            0,
            &b,
            1,
            Some(free_vec),
            ctx,
            cs("d").as_ptr(),
            false,
            -1,
            0,
            ptr::null(),
            0,
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        );
        assert_eq!((r, freed()), (JINA_NET_INVALID_REQUEST, before + 3));
        let (b1, ctx1) = handed_over(req("a"));
        let (b2, ctx2) = handed_over(req("b"));
        // two buffers with two owners: the free function receives each one's ctx
        let r1 = jina_net_pool_send_owned(
            ptr::null_mut(),
            0,
            &b1,
            1,
            Some(free_vec),
            ctx1,
            cs("d").as_ptr(),
            false,
            -1,
            0,
            ptr::null(),
            0,
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        );
        assert_eq!(
            (r1, freed()),
            (JINA_NET_NULL_ARGUMENT, before + 4),
            "ownership was taken, so it is freed"
        );
        // NULL free_fn: nothing taken, the caller keeps the buffer
        let r2 = jina_net_pool_send_owned(
            pool,
            0,
            &b2,
            1,
            None,
            ctx2,
            cs("d").as_ptr(),
            false,
            -1,
            0,
            ptr::null(),
            0,
            Some(collect),
            c.ud(),
            ptr::null_mut(),
        );
        assert_eq!((r2, freed()), (JINA_NET_NULL_ARGUMENT, before + 4));
        free_vec(ctx2, b2.data, b2.len);
        jina_net_pool_free(pool);
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(c.done.lock().unwrap().len(), 1, "only the accepted send called back");
}
