//! The control plane against a real head: ACTIVATE registers a worker, data flows through the head,
//! DEACTIVATE takes it out again; the request's wire form matches jina's.

mod common;

use common::*;
use jina_net::control::{activate_worker, activate_worker_sync, deactivate_worker, worker_control_request};
use jina_net::oneshot::{send_request_async, send_request_sync, send_requests_sync, OneShotOptions};
use jina_net::proto::{Command, ControlRequestProto};
use jina_net::Request;
use prost::Message;

#[test]
fn activate_request_wire_form() {
    let r = worker_control_request(Command::Activate, "10.0.0.7", 8081, None);
    assert_eq!(r.command, 1);
    let id = &r.header.as_ref().unwrap().request_id;
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let e = &r.related_entities[0];
    assert_eq!(
        (e.id.as_str(), e.address.as_str(), e.port, e.shard_id),
        ("worker", "10.0.0.7", 8081, None)
    );
    // shard_id absent on the wire unless given; present (even 0) when given
    let bytes = r.encode_to_vec();
    let with = worker_control_request(Command::Deactivate, "10.0.0.7", 8081, Some(0));
    assert_eq!(with.command, 2);
    assert_eq!(
        with.encode_to_vec().len(),
        bytes.len() + 2,
        "the optional shard_id=0 costs its two bytes"
    );
    assert_ne!(
        worker_control_request(Command::Activate, "h", 1, None)
            .header
            .unwrap()
            .request_id,
        *id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_route_deactivate_through_a_head() {
    let head = start(
        "head",
        Role::Head {
            deployment: "worker".into(),
            polling: jina_net::Polling::Any,
        },
    )
    .await;
    let w0 = start("w0", Role::Echo).await;
    let w1 = start("w1", Role::Echo).await;

    // No worker yet: the head answers UNKNOWN, not retried.
    let e = send_request_async(data("early"), &head.address(), &OneShotOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.grpc_code(), Some(tonic::Code::Unknown), "{e}");
    assert!(e.to_string().contains("did not receive a response"), "{e}");

    let echoed = activate_worker("127.0.0.1", w0.addr.port(), &head.address(), None)
        .await
        .unwrap();
    assert_eq!(echoed.command, Command::Activate as i32);
    let (h, p) = (head.address(), w1.addr.port());
    let echoed_sync = tokio::task::spawn_blocking(move || activate_worker_sync("127.0.0.1", p, &h, None, Some(0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed_sync.related_entities[0].shard_id, Some(0));
    let log: Vec<ControlRequestProto> = head.record.control.lock().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0], echoed, "the head received exactly what was sent");
    assert_eq!(log[0].related_entities[0].port, u32::from(w0.addr.port()));

    let mut replicas = Vec::new();
    for i in 0..4 {
        let r = send_request_async(data(&format!("d{i}")), &head.address(), &OneShotOptions::default())
            .await
            .unwrap();
        replicas.push(trailer(&r, "replica").unwrap());
        assert_eq!(route_names(&r.body).last().map(String::as_str), Some("head"));
    }
    assert_eq!(replicas, ["w0", "w1", "w0", "w1"]);

    deactivate_worker("127.0.0.1", w0.addr.port(), &head.address(), None)
        .await
        .unwrap();
    let r = send_request_async(data("after"), &head.address(), &OneShotOptions::default())
        .await
        .unwrap();
    assert_eq!(trailer(&r, "replica").as_deref(), Some("w1"));
    deactivate_worker("127.0.0.1", w1.addr.port(), &head.address(), Some(0))
        .await
        .unwrap();
    let e = send_request_async(data("late"), &head.address(), &OneShotOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.grpc_code(), Some(tonic::Code::Unknown), "{e}");
    assert!(!head.head_pool().unwrap().has_deployment("worker"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_control_and_one_shot_helpers() {
    let w = start("w", Role::Echo).await;
    let status = jina_net::control::control_request(Command::Status);
    let r = send_request_async(Request::from(&status), &w.address(), &OneShotOptions::default())
        .await
        .unwrap();
    assert_eq!(ControlRequestProto::decode(r.body).unwrap(), status);

    let target = w.address();
    let options = OneShotOptions {
        endpoint: Some("/foo".into()),
        ..Default::default()
    };
    let r = tokio::task::spawn_blocking(move || {
        let one = send_request_sync(data("one"), &target, &options)?;
        let many = send_requests_sync(vec![data("a"), data("b")], &target, &options)?;
        Ok::<_, jina_net::Error>((one, many))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(trailer(&r.0, "endpoint").as_deref(), Some("/foo"));
    assert_eq!(trailer(&r.1, "request-count").as_deref(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_helper_retries_unavailable_on_fresh_channels() {
    let u = start("u", Role::Unavailable).await;
    let target = u.address();
    let e = tokio::task::spawn_blocking(move || send_request_sync(data("x"), &target, &OneShotOptions::default()))
        .await
        .unwrap()
        .unwrap_err();
    let jina_net::Error::Rpc(rpc) = e else {
        panic!("rpc error expected")
    };
    assert_eq!((rpc.code, rpc.attempts), (tonic::Code::Unavailable, 3));
    assert_eq!(u.record.calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    // the async helper does not retry
    let u2 = start("u2", Role::Unavailable).await;
    send_request_async(data("x"), &u2.address(), &OneShotOptions::default())
        .await
        .unwrap_err();
    assert_eq!(u2.record.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn blocking_helper_refuses_library_threads() {
    let (tx, rx) = std::sync::mpsc::channel();
    jina_net::runtime::handle().unwrap().spawn(async move {
        tx.send(send_request_sync(data("x"), "127.0.0.1:1", &OneShotOptions::default()))
            .unwrap();
    });
    let e = rx.recv().unwrap().unwrap_err();
    assert!(matches!(e, jina_net::Error::Runtime(_)), "{e}");
    assert!(e.to_string().contains("callback"), "{e}");
}
