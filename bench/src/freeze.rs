//! `jina-net-bench freeze`: gray failures measured. Two scenarios, markdown on stdout:
//!
//! - **freeze**: `replicas` echo replicas, each a `jina-net-test-server` process; a closed loop of
//!   `inflight` sends through the Rust API; after `before_s`, one replica is frozen (SIGSTOP: the
//!   process hangs, its TCP connections stay open and the kernel still acknowledges) for `freeze_s`,
//!   then thawed (SIGCONT) and measured `after_s` more. Per pool configuration: requests per second
//!   each second, the longest wait of any send, errors (and what they said), the sends still pending
//!   when the replica came back, and the throughput during the freeze against what the live replicas
//!   give alone (the same configuration, same closed loop, without the frozen replica, measured
//!   `freeze_s` in the same run).
//! - **brown-out**: every replica of a shard answers `UNAVAILABLE` (`unavailable` test servers);
//!   closed loops of sends with the resilient preset with and without the retry budget: calls the
//!   servers saw per send.
//!
//! ```text
//! jina-net-bench freeze [replicas=2,4] [inflight=16,256] [before_s=2] [freeze_s=10] [after_s=3]
//!                       [brownout_s=5]
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jina_net::proto::{DataRequestProto, HeaderProto};
use jina_net::{Balance, ConnectionPool, PoolOptions, Request, RetryBudgetPolicy, SendOptions, To};
use jina_net_testserver::{Role, TestServer};
use prost::Message;

use crate::process::Process;
use crate::stats::parse_kv;

struct Config {
    name: &'static str,
    options: PoolOptions,
    idempotent: bool,
}

fn configs() -> Vec<Config> {
    let mut no_probes = PoolOptions::default();
    no_probes.connection.liveness = jina_net::LivenessPolicy::off();
    vec![
        Config {
            name: "default pool, no liveness probes (0.2.0)",
            options: no_probes,
            idempotent: false,
        },
        Config {
            name: "default pool",
            options: PoolOptions::default(),
            idempotent: false,
        },
        Config {
            name: "resilient preset",
            options: PoolOptions::resilient(),
            idempotent: false,
        },
        Config {
            name: "resilient preset, idempotent sends",
            options: PoolOptions::resilient(),
            idempotent: true,
        },
        Config {
            name: "p2c (default pool + p2c)",
            options: PoolOptions {
                balance: Balance::p2c(),
                ..Default::default()
            },
            idempotent: false,
        },
    ]
}

fn request() -> Request {
    Request::data(
        DataRequestProto {
            header: Some(HeaderProto {
                request_id: "freeze".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

/// What a closed loop saw.
#[derive(Default)]
struct Loop {
    /// Completed sends per second since the loop's measurement started.
    per_second: Mutex<Vec<u64>>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    longest_wait_ns: AtomicU64,
    /// Start times (ns since the loop's epoch) of the sends in flight, by slot.
    started_ns: Vec<AtomicU64>,
    completions: AtomicU64,
}

impl Loop {
    fn new(inflight: usize) -> Arc<Loop> {
        Arc::new(Loop {
            started_ns: (0..inflight).map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        })
    }

    /// Sends in flight for longer than `age` at `now_ns`.
    fn waiting_longer_than(&self, age: Duration, now_ns: u64) -> usize {
        self.started_ns
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&s| s != 0 && now_ns.saturating_sub(s) > age.as_nanos() as u64)
            .count()
    }
}

/// Runs a closed loop of one send per slot of `state` on `pool` until `stop`; `epoch` is time zero.
async fn closed_loop(
    pool: ConnectionPool,
    state: Arc<Loop>,
    idempotent: bool,
    epoch: Instant,
    stop: Arc<AtomicBool>,
) -> Arc<Loop> {
    let inflight = state.started_ns.len();
    let request = request();
    let handle = jina_net::runtime::handle().expect("library runtime");
    let tasks: Vec<_> = (0..inflight)
        .map(|slot| {
            let (pool, request, stop, state) = (pool.clone(), request.clone(), stop.clone(), state.clone());
            handle.spawn(async move {
                let options = SendOptions {
                    idempotent,
                    ..Default::default()
                };
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    state.started_ns[slot].store((t - epoch).as_nanos() as u64 + 1, Ordering::Relaxed);
                    let send = pool
                        .send_request(request.clone(), "d", To::AnyShard, &options)
                        .expect("route");
                    let result = send.await.remove(0).result;
                    let done = Instant::now();
                    state.started_ns[slot].store(0, Ordering::Relaxed);
                    state
                        .longest_wait_ns
                        .fetch_max((done - t).as_nanos() as u64, Ordering::Relaxed);
                    state.completions.fetch_add(1, Ordering::Relaxed);
                    let second = (done - epoch).as_secs() as usize;
                    {
                        let mut v = state.per_second.lock().unwrap();
                        if v.len() <= second {
                            v.resize(second + 1, 0);
                        }
                        v[second] += 1;
                    }
                    if let Err(e) = result {
                        state.errors.fetch_add(1, Ordering::Relaxed);
                        state.first_error.lock().unwrap().get_or_insert_with(|| e.to_string());
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    state
}

/// Requests per second the live replicas give alone (no frozen replica in the pool).
async fn baseline(config: &Config, addresses: &[String], inflight: usize, seconds: u64) -> f64 {
    let pool = ConnectionPool::new(config.options.clone());
    for a in addresses {
        pool.add_connection("d", a, false, None).expect("add");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let run = tokio::spawn(closed_loop(
        pool.clone(),
        Loop::new(inflight),
        config.idempotent,
        epoch,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1 + seconds)).await;
    stop.store(true, Ordering::SeqCst);
    let state = run.await.expect("loop");
    pool.close();
    let v = state.per_second.lock().unwrap();
    // whole seconds after the first (warm-up)
    let measured: Vec<u64> = v.iter().skip(1).take(seconds as usize).copied().collect();
    measured.iter().sum::<u64>() as f64 / measured.len().max(1) as f64
}

struct Timing {
    before: u64,
    freeze: u64,
    after: u64,
}

/// One freeze cell; prints its row and returns nothing.
async fn freeze_cell(config: &Config, processes: &[Process], inflight: usize, t: &Timing) {
    let live: Vec<String> = processes[1..].iter().map(|p| p.address.clone()).collect();
    let alone = baseline(config, &live, inflight, t.freeze.min(5)).await;
    let pool = ConnectionPool::new(config.options.clone());
    for p in processes {
        pool.add_connection("d", &p.address, false, None).expect("add");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let watched = Loop::new(inflight);
    let run = tokio::spawn(closed_loop(
        pool.clone(),
        watched.clone(),
        config.idempotent,
        epoch,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(t.before)).await;
    processes[0].signal(libc::SIGSTOP);
    let frozen_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(t.freeze)).await;
    // Sends still pending when the replica comes back: in flight for more than a second.
    let stuck = watched.waiting_longer_than(Duration::from_secs(1), (Instant::now() - epoch).as_nanos() as u64);
    processes[0].signal(libc::SIGCONT);
    let thawed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(t.after)).await;
    stop.store(true, Ordering::SeqCst);
    let state = run.await.expect("loop");
    pool.close();
    let per_second = state.per_second.lock().unwrap().clone();
    let freeze_from = (frozen_at - epoch).as_secs() as usize + 1;
    let freeze_to = ((thawed_at - epoch).as_secs() as usize).min(per_second.len());
    let during: Vec<u64> = per_second
        .get(freeze_from..freeze_to)
        .map(<[u64]>::to_vec)
        .unwrap_or_default();
    let mean = during.iter().sum::<u64>() as f64 / during.len().max(1) as f64;
    let series: Vec<String> = per_second.iter().map(|n| n.to_string()).collect();
    println!(
        "| {} | {} | {inflight} | {} | {:.0} | {:.0} % | {:.2} s | {} | {} |",
        config.name,
        processes.len(),
        series.join(" "),
        alone,
        100.0 * mean / alone.max(1.0),
        state.longest_wait_ns.load(Ordering::Relaxed) as f64 / 1e9,
        state.errors.load(Ordering::Relaxed),
        stuck,
    );
    let first_error = state.first_error.lock().unwrap().clone();
    if let Some(e) = first_error {
        eprintln!(
            "    {} ({} replicas, {inflight} in flight): first error: {e}",
            config.name,
            processes.len()
        );
    }
}

/// The brown-out: every replica answers UNAVAILABLE; calls the servers saw per send.
async fn brownout(seconds: u64) {
    println!("\n### Brown-out: every replica of the shard answers UNAVAILABLE (3 replicas, 16 sends in flight, {seconds} s)\n");
    println!("| configuration | sends | calls the servers saw | calls per send | retries refused by the budget |");
    println!("|---|---|---|---|---|");
    for (name, budget) in [
        ("resilient preset without a retry budget", None),
        (
            "resilient preset (retry budget 10 tokens, 0.1)",
            Some(RetryBudgetPolicy::default()),
        ),
    ] {
        let mut servers = Vec::new();
        for i in 0..3 {
            servers.push(
                TestServer::start(&format!("u{i}"), Role::Unavailable, 0)
                    .await
                    .expect("server"),
            );
        }
        let pool = ConnectionPool::new(PoolOptions {
            retry_budget: budget,
            ..PoolOptions::resilient()
        });
        for s in &servers {
            pool.add_connection("d", &s.address(), false, None).expect("add");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let run = tokio::spawn(closed_loop(
            pool.clone(),
            Loop::new(16),
            false,
            Instant::now(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::SeqCst);
        let state = run.await.expect("loop");
        let sends = state.completions.load(Ordering::Relaxed);
        let calls: usize = servers.iter().map(|s| s.record.calls.load(Ordering::SeqCst)).sum();
        let (_, targets) = pool.route("d", To::AnyShard).expect("route");
        let throttled = targets[0].1.budget.as_ref().map_or(0, |b| b.throttled());
        println!(
            "| {name} | {sends} | {calls} | {:.2} | {throttled} |",
            calls as f64 / sends.max(1) as f64
        );
        pool.close();
        for s in servers {
            s.stop().await;
        }
    }
}

pub fn main(argv: &[String]) {
    let args = parse_kv(argv.iter().map(String::as_str));
    let list = |k: &str, d: &str| -> Vec<usize> {
        args.get(k)
            .map_or(d, String::as_str)
            .split(',')
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    let num = |k: &str, d: u64| args.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let timing = Timing {
        before: num("before_s", 2),
        freeze: num("freeze_s", 10),
        after: num("after_s", 3),
    };
    let rt = jina_net::runtime::handle().expect("library runtime");
    println!(
        "### Freeze: one replica SIGSTOPped for {} s ({} s before, {} s after), closed loop of sends not marked idempotent unless said\n",
        timing.freeze, timing.before, timing.after
    );
    println!("| configuration | replicas | in flight | completed sends per second (each second) | live replicas alone, req/s | during the freeze ÷ alone | longest wait | errors | pending at thaw |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for replicas in list("replicas", "2,4") {
        for inflight in list("inflight", "16,256") {
            for config in configs() {
                let processes: Vec<Process> = (0..replicas).map(|i| Process::start(&format!("echo=r{i}"))).collect();
                rt.block_on(freeze_cell(&config, &processes, inflight, &timing));
            }
        }
    }
    rt.block_on(brownout(num("brownout_s", 5)));
}
