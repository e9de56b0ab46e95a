//! `jina-net-bench`: the send path of libjina_net measured side by side with a raw tonic client, the C
//! ABI (driven from C), gRPC C++, the Go binding, grpc-go and jina 3.1.0's own Python
//! `GrpcConnectionPool`, against the project's echo worker. See BENCHMARKS.md.
//!
//! ```text
//! jina-net-bench run [--quick] [--callgrind|--no-callgrind] [--no-verify|--verify-only] [--require-all]
//!                    [--only=KIND,..]
//!                                     the whole benchmark, markdown on stdout (KIND: tonic, tonic-log,
//!                                     pool, c, c-chained, c-owned, grpc-cpp, grpc-cpp-generic, go,
//!                                     grpc-go, python); first the request-bytes check of every client
//! jina-net-bench client kind=tonic|pool addrs=.. polling=any|all payload=FILE inflight=N
//!                       warmup_ms=W duration_ms=D max_requests=M [tracing=none]
//!                                     one closed-loop cell (RESULT line)
//! jina-net-bench scale replicas=N routes=M                         pool scale (RESULT line)
//! jina-net-bench balance [inflight=16] [warmup_ms=2000] [duration_ms=5000] [slow_ms=20]
//!                                     round robin vs p2c, limits, hedging (markdown table)
//! jina-net-bench freeze [replicas=2,4] [inflight=16,256] [before_s=2] [freeze_s=10] [after_s=3] [brownout_s=5]
//!                                     a replica frozen (SIGSTOP) under load; a brown-out with and
//!                                     without the retry budget (markdown tables)
//! jina-net-bench compression [size_kib=1024] [inflight=1,16] [warmup_s=1] [duration_s=5]
//!                                     1 MiB of text uncompressed, gzip, deflate: bytes on the wire,
//!                                     req/s, CPU (markdown table)
//! ```

mod balance;
mod chart;
mod clients;
mod compression;
mod freeze;
mod pool_client;
mod process;
mod runner;
mod scale;
mod stats;
mod verify;

fn usage() -> ! {
    eprintln!("usage: jina-net-bench run [--quick] [--callgrind|--no-callgrind] [--no-verify|--verify-only] [--require-all] [--only=tonic,tonic-log,pool,c,c-chained,c-owned,grpc-cpp,grpc-cpp-generic,go,grpc-go,python]");
    eprintln!("       jina-net-bench client kind=tonic|pool addrs=A[,B..] polling=any|all payload=FILE inflight=N warmup_ms=W duration_ms=D max_requests=M [tracing=none]");
    eprintln!("       jina-net-bench scale replicas=N routes=M");
    eprintln!("       jina-net-bench balance [inflight=16] [warmup_ms=2000] [duration_ms=5000] [slow_ms=20]");
    eprintln!("       jina-net-bench freeze [replicas=2,4] [inflight=16,256] [before_s=2] [freeze_s=10] [after_s=3] [brownout_s=5]");
    eprintln!("       jina-net-bench compression [size_kib=1024] [inflight=1,16] [warmup_s=1] [duration_s=5]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => std::process::exit(runner::main(&args[1..])),
        Some("client") => {
            let setup = clients::Setup::parse(&args[1..]);
            match setup.kind.as_str() {
                "tonic" => clients::run_tonic(setup),
                "pool" => pool_client::run(setup),
                other => {
                    eprintln!("unknown client kind {other} (tonic, pool)");
                    std::process::exit(2)
                }
            }
        }
        Some("scale") => scale::main(&args[1..]),
        Some("balance") => balance::main(&args[1..]),
        Some("freeze") => freeze::main(&args[1..]),
        Some("compression") => compression::main(&args[1..]),
        _ => usage(),
    }
}
