//! Pool scale, in its own process (`jina-net-bench scale replicas=N routes=M`): the time to add N
//! replicas to one shard of a deployment, the memory they hold while idle (channels connect lazily, so
//! no connection is opened), and the time to route across them (`ConnectionPool::route`, round robin).
//! Addresses are distinct loopback addresses (127.1.x.y:9); nothing is sent.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jina_net::{ConnectionPool, To};

use crate::stats::{self, Args};

fn address(i: usize) -> String {
    format!("127.{}.{}.{}:9", 1 + i / 62_500, (i / 250) % 250, 1 + i % 250)
}

pub fn main(argv: &[String]) {
    let args = Args::parse(argv);
    let replicas = args.num("replicas") as usize;
    let routes = args.num("routes").max(1);

    // Start the runtime and open one channel first, so one-time costs are not counted per replica.
    jina_net::runtime::handle().expect("library runtime");
    let pool = ConnectionPool::default();
    pool.add_connection("warm", "127.0.0.1:9", false, None).expect("add");
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = stats::current_rss_kib();

    let t = Instant::now();
    for i in 0..replicas {
        pool.add_connection("scale", &address(i), false, None)
            .expect("add_connection");
    }
    let add_s = t.elapsed().as_secs_f64();
    // Let every channel's background task start and settle.
    std::thread::sleep(Duration::from_millis(300));
    let rss_after = stats::current_rss_kib();

    let t = Instant::now();
    for _ in 0..routes {
        black_box(pool.route("scale", To::AnyShard).expect("route"));
    }
    let route_ns = t.elapsed().as_nanos() as f64 / routes as f64;

    println!(
        "RESULT replicas={replicas} add_s={add_s:.6} rss_before_kib={rss_before} rss_after_kib={rss_after} per_replica_kib={:.2} route_ns={route_ns:.1} maxrss_kib={}",
        (rss_after.saturating_sub(rss_before)) as f64 / replicas.max(1) as f64,
        stats::peak_rss_kib()
    );
}
