//! Real sends through the pool to in-process test servers on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::*;
use jina_net::proto::StatusCode;
use jina_net::{ConnectionPool, Error, PoolOptions, ReplicaSet, Request, RetryPolicy, SendOptions, To};

fn ok(results: Vec<jina_net::TargetResult>) -> Vec<jina_net::Response> {
    results
        .into_iter()
        .map(|t| t.result.unwrap_or_else(|e| panic!("send failed: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_across_two_real_replicas() {
    let a = start("a", Role::Echo).await;
    let b = start("b", Role::Echo).await;
    let pool = ConnectionPool::default();
    pool.add_connection("encoder", &a.address(), false, None).unwrap();
    pool.add_connection("encoder", &b.address(), false, None).unwrap();
    let mut answered = Vec::new();
    for i in 0..4 {
        let send = pool
            .send_request(data(&format!("r{i}")), "encoder", To::AnyShard, &SendOptions::default())
            .unwrap();
        let response = ok(send.await).remove(0);
        assert_eq!(decode(&response.body).header.unwrap().request_id, format!("r{i}"));
        assert_eq!(
            trailer(&response, "replica").as_deref(),
            route_names(&response.body).last().map(String::as_str)
        );
        answered.push(route_names(&response.body).pop().unwrap());
        assert_eq!(&*response.address, if i % 2 == 0 { a.address() } else { b.address() });
    }
    assert_eq!(answered, ["a", "b", "a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_metadata_reaches_the_server_and_trailers_come_back() {
    let w = start("w", Role::Echo).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let r = ok(pool
        .send_request(
            data("x"),
            "d",
            To::AnyShard,
            &SendOptions {
                endpoint: Some("/search"),
                ..Default::default()
            },
        )
        .unwrap()
        .await)
    .remove(0);
    assert_eq!(trailer(&r, "endpoint").as_deref(), Some("/search"));
    assert_eq!(trailer(&r, "replica").as_deref(), Some("w"));
    assert!(r.trailers.get("grpc-status").is_none(), "status is not metadata");
    let r = ok(pool
        .send_request(data("y"), "d", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await)
    .remove(0);
    assert_eq!(trailer(&r, "endpoint").as_deref(), Some(""));
    let control = Request::from(&jina_net::control::control_request(jina_net::proto::Command::Status));
    ok(pool
        .send_request(
            control,
            "d",
            To::AnyShard,
            &SendOptions {
                endpoint: Some("/index"),
                ..Default::default()
            },
        )
        .unwrap()
        .await);
    let calls = w.record.data_calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            ("process_single_data", Some("/search".to_owned())),
            ("process_single_data", None)
        ]
    );
    assert_eq!(
        w.record.control.lock().unwrap().len(),
        1,
        "the control request reached process_control"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_requests_go_as_one_process_data_call() {
    let w = start("w", Role::Echo).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let reqs = [data("one"), data("two"), data("three")];
    let r = ok(pool
        .send_requests(
            &reqs,
            "d",
            To::AnyShard,
            &SendOptions {
                endpoint: Some("/index"),
                ..Default::default()
            },
        )
        .unwrap()
        .await)
    .remove(0);
    assert_eq!(trailer(&r, "request-count").as_deref(), Some("3"));
    assert_eq!(
        w.record.data_calls.lock().unwrap().clone(),
        vec![("process_data", Some("/index".to_owned()))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_polling_reaches_every_shard() {
    let s0 = start("s0", Role::Echo).await;
    let s1 = start("s1", Role::Echo).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &s0.address(), false, Some(0)).unwrap();
    pool.add_connection("d", &s1.address(), false, Some(1)).unwrap();
    let results = pool
        .send_request(data("x"), "d", To::AllShards, &SendOptions::default())
        .unwrap()
        .await;
    let sets: Vec<ReplicaSet> = results.iter().map(|t| t.replica_set).collect();
    assert_eq!(sets, [ReplicaSet::Shard(0), ReplicaSet::Shard(1)]);
    let names: Vec<String> = ok(results).iter().map(|r| trailer(r, "replica").unwrap()).collect();
    assert_eq!(names, ["s0", "s1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_is_retried_three_times_then_reported() {
    let u = start("u", Role::Unavailable).await;
    let pool = ConnectionPool::default();
    pool.add_connection("flaky-dep", &u.address(), false, None).unwrap();
    let t = pool
        .send_request(data("x"), "flaky-dep", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await
        .remove(0);
    let Err(Error::Rpc(e)) = t.result else {
        panic!("expected an RPC error")
    };
    assert_eq!(e.code, tonic::Code::Unavailable);
    assert_eq!(e.attempts, 3);
    assert_eq!(u.record.calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    let msg = Error::Rpc(e).to_string();
    assert!(
        msg.contains("\"flaky-dep\"") && msg.contains("shard 0") && msg.contains(&u.address()),
        "{msg}"
    );
    assert!(msg.contains("Unavailable") && msg.contains("after 3 attempts"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_count_is_configurable_and_recovers() {
    let f = start("f", Role::Flaky(2)).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &f.address(), false, None).unwrap();
    ok(pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await);
    assert_eq!(f.record.calls.load(std::sync::atomic::Ordering::SeqCst), 3);

    let f = start("f", Role::Flaky(1)).await;
    let pool = ConnectionPool::new(PoolOptions {
        retry: RetryPolicy::none(),
        ..Default::default()
    });
    pool.add_connection("d", &f.address(), false, None).unwrap();
    let t = pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await
        .remove(0);
    assert_eq!(t.result.unwrap_err().grpc_code(), Some(tonic::Code::Unavailable));
    assert_eq!(f.record.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_address_fails_with_unavailable_naming_it() {
    let dead = dead_address();
    let pool = ConnectionPool::default();
    pool.add_connection("d", &dead, false, None).unwrap();
    let t = pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await
        .remove(0);
    let e = t.result.unwrap_err();
    assert_eq!(e.grpc_code(), Some(tonic::Code::Unavailable));
    assert_eq!(e.address(), Some(dead.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_errors_are_in_band_with_is_error_trailer() {
    let w = start("boom", Role::Error).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let r = ok(pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await)
    .remove(0);
    assert_eq!(trailer(&r, "is-error").as_deref(), Some("true"));
    let status = decode(&r.body).header.unwrap().status.unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.code, 3);
    assert_eq!(status.exception.unwrap().name, "ValueError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_each_way() {
    let w = start("big", Role::Echo).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let request = data_request("big", 16 << 20);
    let r = ok(pool
        .send_request(Request::from(&request), "d", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await)
    .remove(0);
    assert!(r.body.len() > 16 << 20, "response is {} bytes", r.body.len());
    let back = decode(&r.body);
    assert_eq!(back.data, request.data, "16 MiB of documents came back intact");
}

/// Eight requests of about 1 MiB in flight together on one connection to a server that takes 16 KiB
/// frames (tonic's default): the connection gathers their frames into few writes
/// (`transport::coalesce`); each response is its own request's bytes, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_in_flight_together_come_back_intact() {
    use jina_net::proto::docarray::document_proto::Content;
    use jina_net::proto::jina::data_request_proto::data_content_proto::Documents;
    let w = start("big", Role::Echo).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let requests: Vec<_> = (0..8usize)
        .map(|i| {
            let mut request = data_request(&format!("big-{i}"), 1);
            let len = (1 << 20) + i * 4099;
            let blob = (0..len).map(|k| (k * 31 + i * 7 + k / 16384) as u8).collect();
            if let Some(Documents::Docs(docs)) = request.data.as_mut().and_then(|d| d.documents.as_mut()) {
                docs.docs[0].content = Some(Content::Blob(blob));
            }
            request
        })
        .collect();
    let sends: Vec<_> = requests
        .iter()
        .map(|r| {
            pool.send_request(Request::from(r), "d", To::AnyShard, &SendOptions::default())
                .unwrap()
        })
        .collect();
    for (request, send) in requests.iter().zip(sends) {
        let r = ok(send.await).remove(0);
        let back = decode(&r.body);
        assert!(
            back.data == request.data,
            "request {:?} came back intact",
            request.header
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_exceeded_names_the_address() {
    let w = start("slow", Role::Slow(Duration::from_secs(3))).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let started = Instant::now();
    let t = pool
        .send_request(
            data("x"),
            "d",
            To::AnyShard,
            &SendOptions {
                timeout: Some(Duration::from_millis(200)),
                ..Default::default()
            },
        )
        .unwrap()
        .await
        .remove(0);
    assert!(started.elapsed() < Duration::from_secs(2));
    let e = t.result.unwrap_err();
    assert_eq!(e.grpc_code(), Some(tonic::Code::DeadlineExceeded), "{e}");
    assert!(e.to_string().contains(&w.address()), "{e}");

    let pool = ConnectionPool::new(PoolOptions {
        default_timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    });
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let t = pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await
        .remove(0);
    assert_eq!(t.result.unwrap_err().grpc_code(), Some(tonic::Code::DeadlineExceeded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_pool_completes_pending_sends() {
    let w = start("slow", Role::Slow(Duration::from_secs(5))).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let send = pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap();
    let pending = tokio::spawn(send.run());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    pool.close();
    let results = pending.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(matches!(results[0].result, Err(Error::PoolClosed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_send_completes_it_with_cancelled() {
    let w = start("slow", Role::Slow(Duration::from_secs(5))).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &w.address(), false, None).unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let send = pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap();
    let c = cancel.clone();
    let pending = tokio::spawn(async move { send.run_cancellable(Some(&c)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    cancel.cancel();
    let results = pending.await.unwrap();
    let e = results.into_iter().next().unwrap().result.unwrap_err();
    assert_eq!(e.grpc_code(), Some(tonic::Code::Cancelled));
    assert!(e.to_string().contains("\"d\""), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_replica_is_no_longer_used() {
    let a = start("a", Role::Echo).await;
    let b = start("b", Role::Echo).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &a.address(), false, None).unwrap();
    pool.add_connection("d", &b.address(), false, None).unwrap();
    pool.remove_connection("d", &a.address(), false, None).unwrap().unwrap();
    for _ in 0..3 {
        let r = ok(pool
            .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
            .unwrap()
            .await)
        .remove(0);
        assert_eq!(trailer(&r, "replica").as_deref(), Some("b"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_channel_serves_the_three_stubs() {
    let w = start("w", Role::Echo).await;
    let stub = jina_net::create_async_channel_stub(&w.address(), false, None).unwrap();
    let options = jina_net::CallOptions::new(Some("/x"), None).unwrap();
    let status = Request::from(&jina_net::control::control_request(jina_net::proto::Command::Status));
    stub.send_once(&[data("one")], &options).await.unwrap();
    stub.send_once(&[data("a"), data("b")], &options).await.unwrap();
    stub.send_once(&[status], &options).await.unwrap();
    let calls = w.record.data_calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            ("process_single_data", Some("/x".to_owned())),
            ("process_data", Some("/x".to_owned()))
        ]
    );
    assert_eq!(w.record.control.lock().unwrap().len(), 1);
    assert!(jina_net::create_async_channel_stub("no port", false, None).is_err());
}
