//! `jina-net-bench balance`: round robin vs p2c + PeakEWMA, in-flight limits and hedging, against 4
//! echo replicas of the test server of which one answers `slow_ms` later (`slow:MS`). Each
//! configuration gets a fresh pool and a closed loop of `inflight` requests through the Rust API:
//! `warmup_ms` not measured (the latency estimates learn), then `duration_ms` measured. Prints a
//! markdown table: req/s, p50 / p99 / p99.9 latency, the share of requests the slow replica
//! answered, hedges sent, errors.
//!
//! ```text
//! jina-net-bench balance [inflight=16] [warmup_ms=2000] [duration_ms=5000] [slow_ms=20]
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jina_net::proto::{DataRequestProto, HeaderProto};
use jina_net::{
    Balance, ConnectionPool, HedgePolicy, InFlightLimit, PeakEwmaConfig, PoolOptions, Request, SendOptions, To,
};
use jina_net_testserver::{Role, TestServer};
use prost::Message;

use crate::stats::{parse_kv, percentile};

struct Config {
    name: &'static str,
    options: PoolOptions,
    idempotent: bool,
}

fn configs() -> Vec<Config> {
    let hedge = Some(HedgePolicy {
        delay: Duration::from_millis(2),
        max_hedges: 1,
    });
    let p2c_1ms = Balance::PeakEwma(PeakEwmaConfig {
        default_rtt: Duration::from_millis(1),
        ..Default::default()
    });
    vec![
        Config {
            name: "round robin (default, jina 3.1)",
            options: PoolOptions::default(),
            idempotent: false,
        },
        Config {
            name: "p2c + PeakEWMA (defaults: 30 ms, 10 s)",
            options: PoolOptions {
                balance: Balance::p2c(),
                ..Default::default()
            },
            idempotent: false,
        },
        Config {
            name: "p2c + PeakEWMA (default_rtt 1 ms)",
            options: PoolOptions {
                balance: p2c_1ms,
                ..Default::default()
            },
            idempotent: false,
        },
        Config {
            name: "round robin + in-flight limit 2/replica",
            options: PoolOptions {
                in_flight_limit: Some(InFlightLimit {
                    max_per_replica: 2,
                    max_queued: 1000,
                }),
                ..Default::default()
            },
            idempotent: false,
        },
        Config {
            name: "round robin + hedging (2 ms, 1 hedge), idempotent sends",
            options: PoolOptions {
                hedge,
                metrics: true,
                ..Default::default()
            },
            idempotent: true,
        },
        Config {
            name: "p2c + hedging (2 ms, 1 hedge), idempotent sends",
            options: PoolOptions {
                balance: Balance::p2c(),
                hedge,
                metrics: true,
                ..Default::default()
            },
            idempotent: true,
        },
        Config {
            name: "round robin + metrics (recording cost)",
            options: PoolOptions {
                metrics: true,
                ..Default::default()
            },
            idempotent: false,
        },
    ]
}

struct Outcome {
    latencies_ns: Vec<u64>,
    at_slow: u64,
    errors: u64,
    wall_s: f64,
}

fn request() -> Request {
    let message = DataRequestProto {
        header: Some(HeaderProto {
            request_id: "balance".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    Request::data(message.encode_to_vec())
}

async fn run(
    config: &Config,
    addresses: &[String],
    slow: &str,
    inflight: usize,
    warmup: Duration,
    measure: Duration,
) -> Outcome {
    let pool = ConnectionPool::new(config.options.clone());
    for a in addresses {
        pool.add_connection("d", a, false, None).expect("add_connection");
    }
    let request = request();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let at_slow = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let handle = jina_net::runtime::handle().expect("library runtime");
    let tasks: Vec<_> = (0..inflight)
        .map(|_| {
            let (pool, request, measuring, stop) = (pool.clone(), request.clone(), measuring.clone(), stop.clone());
            let (at_slow, errors, latencies, slow) =
                (at_slow.clone(), errors.clone(), latencies.clone(), slow.to_owned());
            let idempotent = config.idempotent;
            handle.spawn(async move {
                let mut mine = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let send = pool
                        .send_request(
                            request.clone(),
                            "d",
                            To::AnyShard,
                            &SendOptions {
                                idempotent,
                                ..Default::default()
                            },
                        )
                        .expect("route");
                    let result = send.await.remove(0);
                    let took = t.elapsed().as_nanos() as u64;
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    match result.result {
                        Ok(r) => {
                            mine.push(took);
                            if &*r.address == slow.as_str() {
                                at_slow.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    tokio::time::sleep(measure).await;
    measuring.store(false, Ordering::SeqCst);
    let wall_s = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    if let Ok(Some(text)) = pool.metrics_text() {
        let hedges: u64 = text
            .lines()
            .filter(|l| l.starts_with("jina_net_hedges_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        eprintln!("  {}: {hedges} hedges sent (warm-up included)", config.name);
    }
    pool.close();
    let mut latencies_ns = std::mem::take(&mut *latencies.lock().unwrap());
    latencies_ns.sort_unstable();
    Outcome {
        latencies_ns,
        at_slow: at_slow.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        wall_s,
    }
}

pub fn main(argv: &[String]) {
    let args = parse_kv(argv.iter().map(String::as_str));
    let num = |k: &str, d: u64| args.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let inflight = num("inflight", 16) as usize;
    let warmup = Duration::from_millis(num("warmup_ms", 2000));
    let measure = Duration::from_millis(num("duration_ms", 5000));
    let slow_ms = num("slow_ms", 20);

    // The servers run on a runtime of their own (1 thread); the pool on the library's.
    let servers_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let servers: Vec<TestServer> = servers_rt.block_on(async {
        let mut v = vec![TestServer::start("slow", Role::Slow(Duration::from_millis(slow_ms)), 0)
            .await
            .expect("slow server")];
        for i in 0..3 {
            v.push(
                TestServer::start(&format!("echo{i}"), Role::Echo, 0)
                    .await
                    .expect("echo server"),
            );
        }
        v
    });
    let addresses: Vec<String> = servers.iter().map(TestServer::address).collect();
    let slow = addresses[0].clone();
    println!(
        "4 echo replicas on 127.0.0.1, one (added first) {slow_ms} ms slower; {inflight} requests in flight, {} s warm-up, {} s measured per row\n",
        warmup.as_secs_f64(),
        measure.as_secs_f64()
    );
    println!("| configuration | req/s | p50 ms | p99 ms | p99.9 ms | answered by the slow replica | errors |");
    println!("|---|---|---|---|---|---|---|");
    let rt = jina_net::runtime::handle().expect("library runtime");
    for config in configs() {
        let o = rt.block_on(run(&config, &addresses, &slow, inflight, warmup, measure));
        let n = o.latencies_ns.len();
        let ms = |p: f64| percentile(&o.latencies_ns, p) as f64 / 1e6;
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} % | {} |",
            config.name,
            n as f64 / o.wall_s,
            ms(0.50),
            ms(0.99),
            ms(0.999),
            100.0 * o.at_slow as f64 / n.max(1) as f64,
            o.errors
        );
    }
    drop(servers);
    servers_rt.shutdown_timeout(Duration::from_secs(1));
}
