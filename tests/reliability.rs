//! Fail-over, backoff, outlier ejection, reconnect, deadlines and cancellation, against real servers.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use jina_net::{ConnectionPool, OutlierPolicy, PoolOptions, RetryPolicy, SendOptions, To};

fn calls(s: &TestServer) -> usize {
    s.record.calls.load(Ordering::SeqCst)
}

async fn send(pool: &ConnectionPool, deployment: &str) -> jina_net::TargetResult {
    pool.send_request(
        data("r"),
        deployment,
        To::AnyShard,
        &SendOptions {
            timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    )
    .unwrap()
    .await
    .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_among_live_ones_costs_no_failed_request() {
    let live = start("live", Role::Echo).await;
    let dead = dead_address();
    let pool = ConnectionPool::new(PoolOptions::resilient());
    pool.add_connection("d", &dead, false, None).unwrap();
    pool.add_connection("d", &live.address(), false, None).unwrap();
    for _ in 0..20 {
        let t = send(&pool, "d").await;
        let r = t.result.expect("fail-over reaches the live replica");
        assert_eq!(trailer(&r, "replica").as_deref(), Some("live"));
        assert_eq!(
            &*t.address,
            live.address(),
            "the result names the replica that answered"
        );
    }
    assert_eq!(calls(&live), 20);

    // the default is jina's behaviour: the dead replica is retried in place and the request fails
    // whenever round robin lands on it
    let pool = ConnectionPool::default();
    pool.add_connection("d", &dead, false, None).unwrap();
    pool.add_connection("d", &live.address(), false, None).unwrap();
    let failures = {
        let mut n = 0;
        for _ in 0..4 {
            n += usize::from(send(&pool, "d").await.result.is_err());
        }
        n
    };
    assert_eq!(failures, 2, "without fail-over every other request fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_is_tried_before_giving_up() {
    let mut servers = Vec::new();
    let pool = ConnectionPool::new(PoolOptions::resilient());
    for i in 0..5 {
        let s = start(&format!("u{i}"), Role::Unavailable).await;
        pool.add_connection("d", &s.address(), false, None).unwrap();
        servers.push(s);
    }
    let t = send(&pool, "d").await;
    let Err(jina_net::Error::Rpc(e)) = t.result else {
        panic!("all replicas are down")
    };
    assert_eq!((e.code, e.attempts), (tonic::Code::Unavailable, 5));
    let per_server: Vec<usize> = servers.iter().map(calls).collect();
    assert_eq!(per_server, [1, 1, 1, 1, 1]);
    assert!(
        e.to_string().contains("\"d\"") && e.to_string().contains("after 5 attempts"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_replicas_are_ejected_and_probed_back() {
    let live = start("live", Role::Echo).await;
    let sick = start("sick", Role::Flaky(3)).await; // fails its first 3 calls, then answers
    let policy = OutlierPolicy {
        consecutive_failures: 1,
        base_ejection: Duration::from_millis(200),
        max_ejection: Duration::from_millis(200),
        max_ejection_percent: 50,
        eject_on_deadline: false,
    };
    let pool = ConnectionPool::new(PoolOptions {
        outlier: policy,
        ..PoolOptions::resilient()
    });
    pool.add_connection("d", &sick.address(), false, None).unwrap();
    pool.add_connection("d", &live.address(), false, None).unwrap();
    // the first send fails over from sick to live and ejects sick
    assert!(send(&pool, "d").await.result.is_ok());
    assert_eq!(calls(&sick), 1);
    for _ in 0..10 {
        assert_eq!(
            trailer(&send(&pool, "d").await.result.unwrap(), "replica").as_deref(),
            Some("live")
        );
    }
    assert_eq!(
        calls(&sick),
        1,
        "an ejected replica is skipped while a healthy one exists"
    );
    // after the ejection interval it is probed again (and fails twice more, being re-ejected)...
    let mut answered_by_sick = false;
    let started = Instant::now();
    while !answered_by_sick && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = send(&pool, "d").await.result.expect("no request fails");
        answered_by_sick = trailer(&r, "replica").as_deref() == Some("sick");
    }
    // ...until it answers: then it is back in the rotation
    assert!(answered_by_sick, "a replica that recovered is used again");
    assert_eq!(calls(&sick), 4);
    let names: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(trailer(&send(&pool, "d").await.result.unwrap(), "replica").unwrap());
        }
        v
    };
    assert!(
        names.contains(&"sick".to_owned()) && names.contains(&"live".to_owned()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_is_used_again_within_a_second() {
    let first = start("before", Role::Echo).await;
    let port = first.addr.port();
    let address = first.address();
    let other = start("other", Role::Echo).await;
    let pool = ConnectionPool::new(PoolOptions::resilient());
    pool.add_connection("d", &address, false, None).unwrap();
    pool.add_connection("d", &other.address(), false, None).unwrap();
    assert!(send(&pool, "d").await.result.is_ok());
    first.stop().await;
    // while it is down, nothing fails
    let down_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < down_until {
        assert!(send(&pool, "d").await.result.is_ok());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = TestServer::start("after", Role::Echo, port)
        .await
        .expect("same port is free again");
    let restarted = Instant::now();
    let mut back = None;
    while restarted.elapsed() < Duration::from_secs(5) {
        let r = send(&pool, "d").await.result.expect("no request fails");
        if trailer(&r, "replica").as_deref() == Some("after") {
            back = Some(restarted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let back = back.expect("the restarted replica answers again");
    println!("reconnect: restarted replica used again after {} ms", back.as_millis());
    assert!(back < Duration::from_secs(1), "took {back:?}");
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_spaces_retries_on_the_same_replica() {
    let u = start("u", Role::Unavailable).await;
    let retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(100),
        backoff_multiplier: 2.0,
        max_backoff: Duration::from_millis(400),
        ..RetryPolicy::resilient()
    };
    let pool = ConnectionPool::new(PoolOptions {
        retry,
        ..Default::default()
    });
    pool.add_connection("d", &u.address(), false, None).unwrap();
    let started = Instant::now();
    let e = send(&pool, "d").await.result.unwrap_err();
    let took = started.elapsed();
    assert_eq!(calls(&u), 4);
    assert!(matches!(e, jina_net::Error::Rpc(ref r) if r.attempts == 4), "{e}");
    // full jitter: each wait is in [0, cap]; caps 100 + 200 + 400 ms
    assert!(took < Duration::from_millis(700 + 500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_and_cancellation_stop_retries() {
    let u = start("u", Role::Unavailable).await;
    let retry = RetryPolicy {
        max_attempts: 10_000,
        initial_backoff: Duration::from_millis(20),
        backoff_multiplier: 1.0,
        max_backoff: Duration::from_millis(20),
        ..RetryPolicy::resilient()
    };
    let pool = ConnectionPool::new(PoolOptions {
        retry,
        ..Default::default()
    });
    pool.add_connection("d", &u.address(), false, None).unwrap();
    let started = Instant::now();
    let t = pool
        .send_request(
            data("x"),
            "d",
            To::AnyShard,
            &SendOptions {
                timeout: Some(Duration::from_millis(300)),
                ..Default::default()
            },
        )
        .unwrap()
        .await
        .remove(0);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(
        t.result.unwrap_err().grpc_code(),
        Some(tonic::Code::DeadlineExceeded | tonic::Code::Unavailable)
    ));

    let before = calls(&u);
    let cancel = tokio_util::sync::CancellationToken::new();
    let send = pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap();
    let c = cancel.clone();
    let task = tokio::spawn(async move { send.run_cancellable(Some(&c)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    let results = task.await.unwrap();
    assert_eq!(
        results[0].result.as_ref().unwrap_err().grpc_code(),
        Some(tonic::Code::Cancelled)
    );
    // A call already on the wire when the cancel came may still reach the server: let it land.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let at_cancel = calls(&u);
    assert!(at_cancel > before, "it was retrying");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls(&u), at_cancel, "no retry after cancellation");
}
