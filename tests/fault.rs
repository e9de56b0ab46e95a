//! The fault test: a long stream of sends through the C ABI while replicas are killed (SIGKILL) and
//! restarted, or frozen (SIGSTOP: the process hangs, its connections stay open) and thawed, at random,
//! with at least one live, answering replica per shard at every moment. Every send must complete
//! exactly once, none lost or doubled. None may fail, except a send not marked idempotent whose call
//! was pending on a replica when it froze: it ends with UNAVAILABLE "stopped answering" (it may have
//! been received, so it is not run again); those are counted and their message checked. Idempotent
//! sends (a third of them) go on to a live replica and never fail. Replicas are separate
//! `jina-net-test-server` processes (`cargo build --workspace` builds it). The number of sends is
//! `JINA_NET_FAULT_SENDS` (default 100000); the run is bounded in time (240 s per 100,000 sends).

use std::ffi::{c_void, CString};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use jina_net::ffi::args::{jina_net_bytes, JINA_NET_NO_SHARD};
use jina_net::ffi::completion::jina_net_send_result;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::*;
use jina_net::ffi::result::jina_net_result::{self, JINA_NET_OK};
use jina_net::ffi::send_ex::jina_net_pool_send_ex;
use jina_net::ffi::send_options::{jina_net_send_options, jina_net_send_options_init};
use prost::Message;

fn server_binary() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("debug/jina-net-test-server");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

struct Replica {
    name: String,
    shard: u32,
    port: u16,
    child: Option<Child>,
    /// Frozen (SIGSTOP) until then.
    frozen_until: Option<Instant>,
}

impl Replica {
    fn start(name: &str, shard: u32, port: u16) -> Replica {
        let mut r = Replica {
            name: name.to_owned(),
            shard,
            port,
            child: None,
            frozen_until: None,
        };
        r.restart();
        r
    }

    fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    fn freeze(&mut self, until: Instant) {
        self.signal(libc::SIGSTOP);
        self.frozen_until = Some(until);
    }

    fn thaw(&mut self) {
        self.signal(libc::SIGCONT);
        self.frozen_until = None;
    }

    /// Running and answering.
    fn serving(&self) -> bool {
        self.alive() && self.frozen_until.is_none()
    }

    /// Starts the process (port 0 = any, remembered for restarts) and waits until it listens.
    fn restart(&mut self) {
        for _ in 0..50 {
            let mut child = Command::new(server_binary())
                .arg(format!("echo@{}={}", self.port, self.name))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("test server starts");
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let mut ready = false;
            for line in lines.by_ref() {
                let line = line.unwrap_or_default();
                if let Some(rest) = line.strip_prefix("SERVER ") {
                    let addr = rest.rsplit(' ').next().unwrap();
                    self.port = addr.rsplit(':').next().unwrap().parse().unwrap();
                }
                if line == "READY" {
                    ready = true;
                    break;
                }
            }
            if ready {
                self.child = Some(child);
                return;
            }
            // the port was not free yet (a killed process's socket): try again shortly
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("replica {} could not restart on port {}", self.name, self.port);
    }

    fn kill(&mut self) {
        self.frozen_until = None;
        if let Some(mut child) = self.child.take() {
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Ledger {
    completions: Vec<AtomicU32>,
    failures: AtomicU64,
    /// Failures of sends not marked idempotent whose replica froze under them.
    frozen_failures: AtomicU64,
    first_failure: Mutex<Option<String>>,
    in_flight: Mutex<usize>,
    cv: Condvar,
}

unsafe extern "C" fn on_done(user_data: *mut c_void, result: *const jina_net_send_result) {
    let (ledger, index) = unsafe { &*(user_data as *const (Arc<Ledger>, usize)) };
    let r = unsafe { &*result };
    ledger.completions[*index].fetch_add(1, Ordering::SeqCst);
    if r.status != JINA_NET_OK {
        let msg = unsafe { std::ffi::CStr::from_ptr(r.error_message) }
            .to_string_lossy()
            .into_owned();
        let idempotent = is_idempotent(*index);
        if !idempotent && msg.contains("gRPC Unavailable: the replica stopped answering") {
            ledger.frozen_failures.fetch_add(1, Ordering::SeqCst);
        } else {
            ledger.failures.fetch_add(1, Ordering::SeqCst);
            ledger.first_failure.lock().unwrap().get_or_insert(msg);
        }
    }
    let mut n = ledger.in_flight.lock().unwrap();
    *n -= 1;
    ledger.cv.notify_all();
}

/// Which sends are marked idempotent (a third of them).
fn is_idempotent(index: usize) -> bool {
    index % 3 == 0
}

/// Tiny xorshift for the chaos schedule.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn sends_survive_random_kills_and_restarts() {
    let total: usize = std::env::var("JINA_NET_FAULT_SENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // 240 s per 100,000 sends (the time bound grows with JINA_NET_FAULT_SENDS)
    let budget = Duration::from_secs(240 * (total as u64).div_ceil(100_000).max(1));
    let replicas: Arc<Mutex<Vec<Replica>>> = Arc::new(Mutex::new(
        (0..6)
            .map(|i| Replica::start(&format!("s{}r{}", i / 3, i % 3), (i / 3) as u32, 0))
            .collect(),
    ));

    let mut pool: *mut jina_net_pool = std::ptr::null_mut();
    unsafe {
        let mut options = std::mem::zeroed::<jina_net_pool_options>();
        jina_net_pool_options_init_resilient(&mut options, std::mem::size_of::<jina_net_pool_options>());
        options.max_attempts = 12; // a send may meet several replicas dying in turn
        options.default_timeout_ms = 20_000;
        assert_eq!(jina_net_pool_new(&options, &mut pool), JINA_NET_OK);
        let dep = CString::new("fault").unwrap();
        for r in replicas.lock().unwrap().iter() {
            let addr = CString::new(r.address()).unwrap();
            assert_eq!(
                jina_net_pool_add_connection(
                    pool,
                    dep.as_ptr(),
                    addr.as_ptr(),
                    false,
                    i64::from(r.shard),
                    std::ptr::null_mut()
                ),
                JINA_NET_OK
            );
        }
    }

    // chaos: kill a random replica whose shard keeps another live one, restart it a little later
    let stop = Arc::new(AtomicBool::new(false));
    let (kills, restarts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let freezes = Arc::new(AtomicU64::new(0));
    let chaos = {
        let (replicas, stop, kills, restarts) = (replicas.clone(), stop.clone(), kills.clone(), restarts.clone());
        let freezes = freezes.clone();
        std::thread::spawn(move || {
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            let mut down: Vec<(usize, Instant)> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20 + next(&mut seed) % 60));
                let mut rs = replicas.lock().unwrap();
                let now = Instant::now();
                for r in rs.iter_mut() {
                    if r.frozen_until.is_some_and(|t| t <= now) {
                        r.thaw();
                    }
                }
                down.retain(|(i, at)| {
                    if *at <= now {
                        rs[*i].restart();
                        restarts.fetch_add(1, Ordering::SeqCst);
                        false
                    } else {
                        true
                    }
                });
                let victim = (next(&mut seed) % rs.len() as u64) as usize;
                let shard = rs[victim].shard;
                let serving_in_shard = rs.iter().filter(|r| r.shard == shard && r.serving()).count();
                if rs[victim].serving() && serving_in_shard >= 2 {
                    if next(&mut seed) % 4 == 0 {
                        // a freeze: 0.3 to 2 s, longer than detection takes
                        rs[victim].freeze(now + Duration::from_millis(300 + next(&mut seed) % 1700));
                        freezes.fetch_add(1, Ordering::SeqCst);
                    } else {
                        rs[victim].kill();
                        kills.fetch_add(1, Ordering::SeqCst);
                        down.push((victim, now + Duration::from_millis(50 + next(&mut seed) % 250)));
                    }
                }
            }
        })
    };

    let ledger = Arc::new(Ledger {
        completions: (0..total).map(|_| AtomicU32::new(0)).collect(),
        failures: AtomicU64::new(0),
        frozen_failures: AtomicU64::new(0),
        first_failure: Mutex::new(None),
        in_flight: Mutex::new(0),
        cv: Condvar::new(),
    });
    let contexts: Vec<(Arc<Ledger>, usize)> = (0..total).map(|i| (ledger.clone(), i)).collect();
    let request = jina_net::proto::DataRequestProto {
        header: Some(jina_net::proto::HeaderProto {
            request_id: "fault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let dep = CString::new("fault").unwrap();
    let started = Instant::now();
    let mut refused = 0u64;
    for (i, context) in contexts.iter().enumerate() {
        {
            let mut n = ledger.in_flight.lock().unwrap();
            while *n >= 128 {
                n = ledger.cv.wait(n).unwrap();
            }
            *n += 1;
        }
        let bytes = jina_net_bytes {
            data: request.as_ptr(),
            len: request.len(),
        };
        let polling = if i % 4 == 0 { 1 } else { 0 }; // every fourth send goes to ALL shards
        let shard = if polling == 1 {
            JINA_NET_NO_SHARD
        } else {
            (i % 2) as i64
        };
        let mut so = unsafe { std::mem::zeroed::<jina_net_send_options>() };
        unsafe { jina_net_send_options_init(&mut so, std::mem::size_of::<jina_net_send_options>()) };
        so.shard_id = shard;
        so.shards = polling;
        so.idempotent = is_idempotent(i);
        let r: jina_net_result = unsafe {
            jina_net_pool_send_ex(
                pool,
                &bytes,
                1,
                dep.as_ptr(),
                &so,
                Some(on_done),
                context as *const _ as *mut c_void,
                std::ptr::null_mut(),
            )
        };
        if r != JINA_NET_OK {
            refused += 1;
            *ledger.in_flight.lock().unwrap() -= 1;
        }
        assert!(started.elapsed() < budget, "the run is bounded in time");
    }
    {
        let n = ledger.in_flight.lock().unwrap();
        let (_n, timeout) = ledger
            .cv
            .wait_timeout_while(n, Duration::from_secs(60), |n| *n > 0)
            .unwrap();
        assert!(!timeout.timed_out(), "sends still pending after 60 s");
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    chaos.join().unwrap();
    std::thread::sleep(Duration::from_millis(200)); // a double completion would show up here
    unsafe { jina_net_pool_free(pool) };

    let counts: Vec<u32> = ledger.completions.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let once = counts.iter().filter(|&&c| c == 1).count();
    let lost = counts.iter().filter(|&&c| c == 0).count();
    let doubled = counts.iter().filter(|&&c| c > 1).count();
    let failed = ledger.failures.load(Ordering::SeqCst);
    let frozen_failed = ledger.frozen_failures.load(Ordering::SeqCst);
    println!(
        "fault test: {total} sends in {:.1} s ({:.0}/s), {once} completed exactly once, {lost} lost, {doubled} doubled, \
         {failed} failed, {frozen_failed} not idempotent and ended by a freeze, {refused} refused; {} kills, {} restarts, {} freezes",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        kills.load(Ordering::SeqCst),
        restarts.load(Ordering::SeqCst),
        freezes.load(Ordering::SeqCst)
    );
    assert_eq!(refused, 0);
    assert_eq!((lost, doubled), (0, 0));
    assert_eq!(once, total);
    assert_eq!(failed, 0, "first failure: {:?}", ledger.first_failure.lock().unwrap());
    assert!(kills.load(Ordering::SeqCst) > 10, "the replicas were really killed");
    assert!(freezes.load(Ordering::SeqCst) > 2, "the replicas were really frozen");
}
