//! p2c + PeakEWMA, in-flight limits, hedging and metrics against real test servers on 127.0.0.1.
//! Behaviour only (counts, codes, who answered); the timing figures are in the benchmark
//! (`jina-net-bench balance`, BENCHMARKS.md).

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use jina_net::{
    Balance, ConnectionPool, Error, HedgePolicy, InFlightLimit, PeakEwmaConfig, PoolOptions, RetryPolicy, SendOptions,
    To,
};

/// Sends `n` requests to deployment "d", `concurrency` at a time, and counts who answered.
async fn spread(pool: &ConnectionPool, n: usize, concurrency: usize) -> HashMap<String, usize> {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let send = pool
            .send_request(data(&format!("r{i}")), "d", To::AnyShard, &SendOptions::default())
            .unwrap();
        tasks.spawn(async move {
            let r = send.await.remove(0);
            drop(permit);
            r.result.expect("send succeeds").address.to_string()
        });
    }
    let mut counts = HashMap::new();
    while let Some(address) = tasks.join_next().await {
        *counts.entry(address.unwrap()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_sends_far_fewer_requests_to_a_slow_replica_than_round_robin() {
    let slow = start("slow", Role::Slow(Duration::from_millis(50))).await;
    let fast = [
        start("f1", Role::Echo).await,
        start("f2", Role::Echo).await,
        start("f3", Role::Echo).await,
    ];
    let pool = |balance| {
        let pool = ConnectionPool::new(PoolOptions {
            balance,
            ..Default::default()
        });
        pool.add_connection("d", &slow.address(), false, None).unwrap();
        for f in &fast {
            pool.add_connection("d", &f.address(), false, None).unwrap();
        }
        pool
    };
    let rr = spread(&pool(Balance::RoundRobin), 400, 8).await;
    let p2c = spread(&pool(Balance::p2c()), 400, 8).await;
    let p2c_fast_decay = spread(
        &pool(Balance::PeakEwma(PeakEwmaConfig {
            default_rtt: Duration::from_millis(1),
            decay: Duration::from_secs(1),
        })),
        400,
        8,
    )
    .await;
    let at_slow = |c: &HashMap<String, usize>| c.get(&slow.address()).copied().unwrap_or(0);
    println!(
        "requests answered by the slow replica (of 400): round robin {}, p2c {}, p2c (1 ms, 1 s) {}",
        at_slow(&rr),
        at_slow(&p2c),
        at_slow(&p2c_fast_decay)
    );
    assert_eq!(
        at_slow(&rr),
        100,
        "round robin gives each of 4 replicas a quarter: {rr:?}"
    );
    assert!(at_slow(&p2c) * 3 < at_slow(&rr), "p2c: {p2c:?}");
    assert!(at_slow(&p2c_fast_decay) * 3 < at_slow(&rr), "p2c: {p2c_fast_decay:?}");
    for f in &fast {
        assert!(
            p2c.get(&f.address()).copied().unwrap_or(0) > 0,
            "every fast replica is used: {p2c:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_skips_ejected_replicas() {
    let live = start("live", Role::Echo).await;
    let other = start("other", Role::Echo).await;
    let dead = dead_address();
    let pool = ConnectionPool::new(PoolOptions {
        balance: Balance::p2c(),
        ..PoolOptions::resilient()
    });
    for a in [&dead, &live.address(), &other.address()] {
        pool.add_connection("d", a, false, None).unwrap();
    }
    let counts = spread(&pool, 60, 1).await;
    assert_eq!(
        counts.values().sum::<usize>(),
        60,
        "fail-over answers every send: {counts:?}"
    );
    let calls = live.record.calls.load(Ordering::SeqCst) + other.record.calls.load(Ordering::SeqCst);
    assert_eq!(calls, 60, "the dead replica never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_limit_caps_each_replica_queues_then_refuses_naming_the_shard() {
    let a = start("a", Role::Slow(Duration::from_millis(150))).await;
    let b = start("b", Role::Slow(Duration::from_millis(150))).await;
    let pool = ConnectionPool::new(PoolOptions {
        in_flight_limit: Some(InFlightLimit {
            max_per_replica: 2,
            max_queued: 3,
        }),
        ..Default::default()
    });
    pool.add_connection("d", &a.address(), false, Some(1)).unwrap();
    pool.add_connection("d", &b.address(), false, Some(1)).unwrap();
    // 4 slots + 3 queued: 7 sends are served, the next 5 are refused at once.
    let sends: Vec<_> = (0..12)
        .map(|i| {
            pool.send_request(data(&format!("r{i}")), "d", To::Shard(1), &SendOptions::default())
                .unwrap()
        })
        .collect();
    let tasks: Vec<_> = sends
        .into_iter()
        .map(|s| {
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let r = s.await.remove(0);
                (r, started.elapsed())
            })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        let (r, took) = t.await.unwrap();
        match r.result {
            Ok(_) => ok += 1,
            Err(e @ Error::ResourceExhausted { .. }) => {
                refused += 1;
                let message = e.to_string();
                assert!(
                    message.contains("deployment \"d\"") && message.contains("shard 1"),
                    "{message}"
                );
                assert!(took < Duration::from_millis(100), "refused at once, not after {took:?}");
            }
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    assert_eq!((ok, refused), (7, 5));
    for s in [&a, &b] {
        assert!(
            s.record.max_in_flight.load(Ordering::SeqCst) <= 2,
            "limit held at {}",
            s.name
        );
    }
    assert_eq!(
        a.record.calls.load(Ordering::SeqCst) + b.record.calls.load(Ordering::SeqCst),
        7
    );
    let text = pool.metrics_text().unwrap();
    assert!(text.is_none(), "metrics are off unless asked for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_send_fails_at_its_deadline() {
    let a = start("a", Role::Slow(Duration::from_millis(600))).await;
    let pool = ConnectionPool::new(PoolOptions {
        in_flight_limit: Some(InFlightLimit {
            max_per_replica: 1,
            max_queued: 8,
        }),
        ..Default::default()
    });
    pool.add_connection("d", &a.address(), false, None).unwrap();
    let first = tokio::spawn(
        pool.send_request(data("first"), "d", To::AnyShard, &SendOptions::default())
            .unwrap()
            .run(),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = tokio::time::Instant::now();
    let second = pool
        .send_request(
            data("second"),
            "d",
            To::AnyShard,
            &SendOptions {
                timeout: Some(Duration::from_millis(100)),
                ..Default::default()
            },
        )
        .unwrap()
        .await
        .remove(0);
    let took = started.elapsed();
    let e = second.result.expect_err("the queued send times out");
    assert_eq!(e.grpc_code(), Some(tonic::Code::DeadlineExceeded), "{e}");
    assert!(
        took < Duration::from_millis(450),
        "failed at its deadline, not after the slot freed: {took:?}"
    );
    assert!(first.await.unwrap().remove(0).result.is_ok());
    assert_eq!(
        a.record.calls.load(Ordering::SeqCst),
        1,
        "the timed-out send never reached the replica"
    );
}

fn hedging_pool(slow: &TestServer, fast: &TestServer, metrics: bool) -> ConnectionPool {
    let pool = ConnectionPool::new(PoolOptions {
        hedge: Some(HedgePolicy {
            delay: Duration::from_millis(50),
            max_hedges: 1,
        }),
        metrics,
        ..Default::default()
    });
    pool.add_connection("d", &slow.address(), false, None).unwrap();
    pool.add_connection("d", &fast.address(), false, None).unwrap();
    pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_send_is_hedged_the_first_answer_wins_and_the_loser_is_cancelled() {
    let slow = start("slow", Role::Slow(Duration::from_millis(700))).await;
    let fast = start("fast", Role::Echo).await;
    let pool = hedging_pool(&slow, &fast, true);
    // Round robin picks the slow replica first.
    let started = tokio::time::Instant::now();
    let r = pool
        .send_request(
            data("h"),
            "d",
            To::AnyShard,
            &SendOptions {
                idempotent: true,
                ..Default::default()
            },
        )
        .unwrap()
        .await
        .remove(0);
    let took = started.elapsed();
    let response = r.result.expect("the hedge answers");
    assert_eq!(&*response.address, fast.address(), "the fast replica's answer won");
    assert_eq!(&*r.address, fast.address());
    assert!(
        took < Duration::from_millis(500),
        "no wait for the slow replica: {took:?}"
    );
    assert_eq!(
        slow.record.calls.load(Ordering::SeqCst),
        1,
        "the first attempt went to the slow replica"
    );
    assert_eq!(fast.record.calls.load(Ordering::SeqCst), 1);
    // The slow replica's call is cancelled: its handler never runs to its end.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        slow.record.completed.load(Ordering::SeqCst),
        0,
        "the losing attempt was cancelled"
    );
    assert_eq!(slow.record.in_flight.load(Ordering::SeqCst), 0);
    let text = pool.metrics_text().unwrap().unwrap();
    let fast_labels = format!("deployment=\"d\",shard=\"0\",address=\"{}\"", fast.address());
    assert!(
        text.contains(&format!("jina_net_hedges_total{{{fast_labels}}} 1\n")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_not_marked_idempotent_is_never_hedged() {
    let slow = start("slow", Role::Slow(Duration::from_millis(300))).await;
    let fast = start("fast", Role::Echo).await;
    let pool = hedging_pool(&slow, &fast, false);
    let r = pool
        .send_request(data("n"), "d", To::AnyShard, &SendOptions::default())
        .unwrap()
        .await
        .remove(0);
    assert_eq!(&*r.result.expect("the slow replica answers").address, slow.address());
    assert_eq!(
        fast.record.calls.load(Ordering::SeqCst),
        0,
        "no hedge went to the fast replica"
    );
    assert_eq!(slow.record.completed.load(Ordering::SeqCst), 1);
    // An explicit `idempotent: false` is the same.
    let r = pool
        .send_request(
            data("n2"),
            "d",
            To::AnyShard,
            &SendOptions {
                idempotent: false,
                ..Default::default()
            },
        )
        .unwrap()
        .await
        .remove(0);
    assert_eq!(&*r.result.unwrap().address, fast.address(), "round robin moved on");
    let r = pool
        .send_request(
            data("n3"),
            "d",
            To::AnyShard,
            &SendOptions {
                idempotent: false,
                ..Default::default()
            },
        )
        .unwrap()
        .await
        .remove(0);
    assert_eq!(&*r.result.unwrap().address, slow.address());
    assert_eq!(fast.record.calls.load(Ordering::SeqCst), 1);
    assert_eq!(slow.record.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_first_attempt_hedges_at_once() {
    let broken = start("broken", Role::Unavailable).await;
    let fast = start("fast", Role::Echo).await;
    let pool = ConnectionPool::new(PoolOptions {
        retry: RetryPolicy::none(),
        hedge: Some(HedgePolicy {
            delay: Duration::from_secs(5),
            max_hedges: 2,
        }),
        ..Default::default()
    });
    pool.add_connection("d", &broken.address(), false, None).unwrap();
    pool.add_connection("d", &fast.address(), false, None).unwrap();
    let started = tokio::time::Instant::now();
    let r = pool
        .send_request(
            data("x"),
            "d",
            To::AnyShard,
            &SendOptions {
                idempotent: true,
                ..Default::default()
            },
        )
        .unwrap()
        .await
        .remove(0);
    assert_eq!(&*r.result.expect("the hedge answers").address, fast.address());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no wait for the hedge delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_errors_retries_ejections_and_latency_per_replica() {
    let ok = start("ok", Role::Echo).await;
    let dead = dead_address();
    let pool = ConnectionPool::new(PoolOptions {
        metrics: true,
        ..PoolOptions::resilient()
    });
    pool.add_connection("d", &dead, false, None).unwrap();
    pool.add_connection("d", &ok.address(), false, None).unwrap();
    pool.add_connection("d", &ok.address(), true, None).unwrap();
    for i in 0..10 {
        let r = pool
            .send_request(data(&format!("m{i}")), "d", To::AnyShard, &SendOptions::default())
            .unwrap()
            .await
            .remove(0);
        r.result.expect("fail-over answers");
    }
    pool.send_request(data("h"), "d", To::Head, &SendOptions::default())
        .unwrap()
        .await
        .remove(0)
        .result
        .unwrap();
    let text = pool.metrics_text().unwrap().expect("metrics are on");
    println!("{text}");
    let ok_labels = format!("deployment=\"d\",shard=\"0\",address=\"{}\"", ok.address());
    let dead_labels = format!("deployment=\"d\",shard=\"0\",address=\"{dead}\"");
    let head_labels = format!("deployment=\"d\",shard=\"head\",address=\"{}\"", ok.address());
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .unwrap()
    };
    // Each of the 10 sends was answered by the live replica; the dead one was tried (and ejected)
    // at least once, and every call to it failed with UNAVAILABLE.
    assert_eq!(value(&format!("jina_sending_request_seconds_count{{{ok_labels}}}")), 10);
    assert_eq!(
        value(&format!(
            "jina_sending_request_seconds_bucket{{{ok_labels},le=\"+Inf\"}}"
        )),
        10
    );
    let dead_calls = value(&format!("jina_net_requests_total{{{dead_labels}}}"));
    assert!(dead_calls >= 1);
    assert_eq!(
        value(&format!("jina_net_errors_total{{{dead_labels},code=\"UNAVAILABLE\"}}")),
        dead_calls
    );
    assert!(value(&format!("jina_net_ejections_total{{{dead_labels}}}")) >= 1);
    assert!(
        value(&format!("jina_net_retries_total{{{ok_labels}}}")) >= 1,
        "fail-over calls are retries"
    );
    assert_eq!(value(&format!("jina_net_in_flight{{{ok_labels}}}")), 0);
    assert_eq!(value(&format!("jina_net_requests_total{{{head_labels}}}")), 1);
    assert!(text.contains("# TYPE jina_sending_request_seconds histogram"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_pool_keeps_no_load() {
    let a = start("a", Role::Echo).await;
    let pool = ConnectionPool::default();
    pool.add_connection("d", &a.address(), false, None).unwrap();
    let send = pool
        .send_request(data("x"), "d", To::AnyShard, &SendOptions::default())
        .unwrap();
    send.await.remove(0).result.unwrap();
    let route = pool.route("d", To::AnyShard).unwrap();
    assert!(route.1[0].1.replica().load().is_none(), "no load tracked by default");
    assert!(route.1[0].1.queue.is_none());
    assert!(pool.metrics_text().unwrap().is_none());
}
