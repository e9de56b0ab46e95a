//! Gray failures, against real servers: answers that break the gRPC protocol are read as gRPC says
//! (hostile servers on a raw HTTP/2 stack), a replica that stops answering (SIGSTOP of its process)
//! does not stall sends and is used again after it thaws, an attempt's own timeout moves idempotent
//! sends on, and the retry budget stops a brown-out from multiplying the load.

mod common;

use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::*;
use jina_net::{ConnectionPool, Error, LivenessPolicy, PoolOptions, RetryBudgetPolicy, RetryPolicy, SendOptions, To};
use jina_net_testserver::Hostile as ServerHostile;

/// One send of a data request to deployment "d", its only target's result.
async fn send(pool: &ConnectionPool, id: &str, idempotent: bool) -> jina_net::Result<jina_net::Response> {
    let options = SendOptions {
        idempotent,
        ..Default::default()
    };
    pool.send_request(data(id), "d", To::AnyShard, &options)
        .unwrap()
        .await
        .remove(0)
        .result
}

fn rpc(result: jina_net::Result<jina_net::Response>) -> (tonic::Code, String, u32) {
    match result {
        Err(Error::Rpc(e)) => (e.code, e.message.clone(), e.attempts),
        other => panic!("expected a gRPC error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_break_the_protocol_are_read_as_grpc_says() {
    use tonic::Code;
    // kind, code, words the message must hold, attempts of jina's retry policy (UNAVAILABLE is retried)
    let cases: [(ServerHostile, Code, &str, u32); 7] = [
        (ServerHostile::Http503, Code::Unavailable, "HTTP status 503", 3),
        (ServerHostile::Html200, Code::Unknown, "content-type \"text/html\"", 1),
        (ServerHostile::TwoMessages, Code::Internal, "more than one message", 1),
        (ServerHostile::Truncated, Code::Internal, "truncated", 1),
        (ServerHostile::NoStatus, Code::Unknown, "missing grpc-status", 1),
        (ServerHostile::RstInternal, Code::Internal, "INTERNAL_ERROR", 1),
        (ServerHostile::RstRefused, Code::Unavailable, "REFUSED_STREAM", 3),
    ];
    for (kind, code, says, attempts) in cases {
        let server = start(&format!("{kind:?}"), Role::Hostile(kind)).await;
        let pool = ConnectionPool::default();
        pool.add_connection("d", &server.address(), false, None).unwrap();
        let (got, message, tries) = rpc(send(&pool, "x", false).await);
        assert_eq!(got, code, "{kind:?}: {message}");
        assert!(message.contains(says), "{kind:?}: {message}");
        assert_eq!(tries, attempts, "{kind:?}: attempts");
        assert_eq!(
            server.record.calls.load(std::sync::atomic::Ordering::SeqCst),
            attempts as usize,
            "{kind:?}: calls the server saw"
        );
    }
    // A proxy answering 503 in front of a restarting worker: a resilient pool fails over to a live one.
    let proxy = start("proxy", Role::Hostile(ServerHostile::Http503)).await;
    let live = start("live", Role::Echo).await;
    let pool = ConnectionPool::new(PoolOptions::resilient());
    pool.add_connection("d", &proxy.address(), false, None).unwrap();
    pool.add_connection("d", &live.address(), false, None).unwrap();
    for i in 0..4 {
        let r = send(&pool, &format!("f{i}"), false).await.expect("failed over");
        assert_eq!(trailer(&r, "replica").as_deref(), Some("live"));
    }
}

#[test]
fn hostile_kinds_parse() {
    assert_eq!("http503".parse::<ServerHostile>(), Ok(ServerHostile::Http503));
    assert!("nonsense".parse::<ServerHostile>().is_err());
}

/// A pool whose replicas are the two processes.
fn pool_of(options: PoolOptions, replicas: &[&ServerProcess]) -> ConnectionPool {
    let pool = ConnectionPool::new(options);
    for r in replicas {
        pool.add_connection("d", &r.address, false, None).unwrap();
    }
    pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_replica_is_detected_its_calls_end_and_it_is_used_again_after_it_thaws() {
    let frozen = ServerProcess::start("echo=frozen");
    let live = ServerProcess::start("echo=live");
    let pool = pool_of(PoolOptions::resilient(), &[&frozen, &live]);
    for i in 0..4 {
        send(&pool, &format!("warm{i}"), false).await.unwrap();
    }
    frozen.freeze();
    // Round robin sends every other call to the frozen replica: one of the first two waits there.
    let started = Instant::now();
    let (a, b) = tokio::join!(send(&pool, "n1", false), send(&pool, "n2", false));
    let waited = started.elapsed();
    let failed: Vec<_> = [a, b].into_iter().filter_map(|r| r.err()).collect();
    assert_eq!(
        failed.len(),
        1,
        "the send that went to the frozen replica fails, the other succeeds"
    );
    let message = failed[0].to_string();
    assert!(
        message.contains(&frozen.address) && message.contains("stopped answering") && message.contains("Unavailable"),
        "{message}"
    );
    let policy = LivenessPolicy::resilient();
    assert!(
        waited < policy.probe_after.unwrap() + policy.probe_timeout + Duration::from_millis(700),
        "detected after {waited:?}"
    );
    // It is avoided now: every send goes to the live replica, at once.
    let (_, targets) = pool.route("d", To::AnyShard).unwrap();
    let replicas = targets[0].1.replicas.clone();
    let frozen_replica = replicas.iter().find(|r| r.address().key() == frozen.address).unwrap();
    assert!(frozen_replica.health().is_unresponsive());
    let quick = Instant::now();
    for i in 0..6 {
        let r = send(&pool, &format!("after{i}"), false).await.unwrap();
        assert_eq!(trailer(&r, "replica").as_deref(), Some("live"));
    }
    assert!(
        quick.elapsed() < Duration::from_secs(1),
        "no send waits on the frozen replica"
    );
    // An idempotent send pending on a replica that freezes goes on to the live one.
    frozen.thaw();
    let back = Instant::now();
    while frozen_replica.health().is_unresponsive() {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "the thawed replica answers a probe again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen_frozen = false;
    for i in 0..4 {
        let r = send(&pool, &format!("thawed{i}"), false).await.unwrap();
        seen_frozen |= trailer(&r, "replica").as_deref() == Some("frozen");
    }
    assert!(seen_frozen, "the thawed replica is used again");
    frozen.freeze();
    let results = futures_util::future::join_all((0..4).map(|i| {
        let pool = pool.clone();
        async move { send(&pool, &format!("idem{i}"), true).await }
    }))
    .await;
    for r in results {
        let r = r.expect("idempotent sends go on to the live replica");
        assert_eq!(trailer(&r, "replica").as_deref(), Some("live"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_pool_lets_no_call_wait_for_ever_on_a_frozen_replica() {
    let frozen = ServerProcess::start("echo=frozen");
    let pool = pool_of(PoolOptions::default(), &[&frozen]);
    send(&pool, "warm", false).await.unwrap();
    frozen.freeze();
    let started = Instant::now();
    let (code, message, attempts) = rpc(send(&pool, "stuck", false).await);
    let policy = LivenessPolicy::default();
    assert_eq!(code, tonic::Code::Unavailable, "{message}");
    assert!(message.contains("stopped answering"), "{message}");
    assert_eq!(attempts, 1, "a send not marked idempotent is not run again");
    assert!(
        started.elapsed() < policy.probe_after.unwrap() + policy.probe_timeout + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_timeout_moves_idempotent_sends_on_and_ejects_the_slow_replica() {
    let slow = start("slow", Role::Slow(Duration::from_secs(3))).await;
    let fast = start("fast", Role::Echo).await;
    let mut options = PoolOptions::resilient();
    options.retry = RetryPolicy {
        per_attempt_timeout: Some(Duration::from_millis(200)),
        ..RetryPolicy::resilient()
    };
    let pool = ConnectionPool::new(options);
    pool.add_connection("d", &slow.address(), false, None).unwrap();
    pool.add_connection("d", &fast.address(), false, None).unwrap();
    // Round robin starts at the slow replica: the attempt times out and the send goes on.
    let started = Instant::now();
    let r = send(&pool, "idem", true).await.expect("went on to the fast replica");
    assert_eq!(trailer(&r, "replica").as_deref(), Some("fast"));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // The slow replica was ejected (a deadline counts toward ejection in the resilient preset): the
    // next sends do not wait on it.
    for i in 0..2 {
        let r = send(&pool, &format!("after{i}"), false).await.unwrap();
        assert_eq!(trailer(&r, "replica").as_deref(), Some("fast"));
    }
    // A send that is not idempotent is not run twice: its attempt's timeout ends it.
    tokio::time::sleep(Duration::from_millis(900)).await; // the ejection has passed
    let mut timed_out = None;
    for i in 0..2 {
        if let Err(e) = send(&pool, &format!("once{i}"), false).await {
            timed_out = Some(e.to_string());
        }
    }
    let message = timed_out.expect("one of two sends went to the slow replica");
    assert!(
        message.contains("attempt timeout") && message.contains("DeadlineExceeded"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_stops_fail_over_storms() {
    async fn storm(budget: Option<RetryBudgetPolicy>) -> (usize, u64, String) {
        let servers = [
            start("u1", Role::Unavailable).await,
            start("u2", Role::Unavailable).await,
            start("u3", Role::Unavailable).await,
        ];
        let options = PoolOptions {
            retry_budget: budget,
            metrics: true,
            ..PoolOptions::resilient()
        };
        let pool = ConnectionPool::new(options);
        for s in &servers {
            pool.add_connection("d", &s.address(), false, None).unwrap();
        }
        for i in 0..40 {
            assert!(send(&pool, &format!("b{i}"), false).await.is_err());
        }
        let calls = servers
            .iter()
            .map(|s| s.record.calls.load(std::sync::atomic::Ordering::SeqCst))
            .sum();
        let (_, targets) = pool.route("d", To::AnyShard).unwrap();
        let throttled = targets[0].1.budget.as_ref().map_or(0, |b| b.throttled());
        (calls, throttled, pool.metrics_text().unwrap().unwrap())
    }
    let (without, _, text) = storm(None).await;
    assert!(
        !text.contains("jina_net_throttled_retries_total"),
        "no budget, no budget series"
    );
    let (with, throttled, text) = storm(Some(RetryBudgetPolicy::default())).await;
    // Without a budget every send tries every replica; with one, 5 failed sends empty half the
    // bucket and the others make one attempt each.
    assert!(without >= 40 * 3, "{without} calls without a budget");
    assert!(with <= 5 * 3 + 35, "{with} calls with a budget");
    assert_eq!(throttled, 35, "the refused retries are counted");
    assert!(
        text.contains("jina_net_throttled_retries_total{deployment=\"d\",shard=\"0\"} 35\n"),
        "{text}"
    );
    assert!(
        text.contains("jina_net_retry_budget_tokens{deployment=\"d\",shard=\"0\"} 0\n"),
        "{text}"
    );
}
