//! `jina-net-floor client kind=tonic ...`: the benchmark's floor, the raw tonic client, in a binary
//! that does not link libjina_net, so that it allocates exactly as a tonic program does (the library
//! sets its own global allocator, `src/ffi/alloc.rs`; a program that links it gets it). The client's
//! code is `clients.rs`, shared with `jina-net-bench`'s "raw tonic, library's build" row.

#[path = "clients.rs"]
mod clients;
// Shared with jina-net-bench, some of whose helpers this binary does not need.
#[allow(dead_code)]
#[path = "stats.rs"]
mod stats;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("client") {
        eprintln!("usage: jina-net-floor client kind=tonic addrs=A[,B..] polling=any|all payload=FILE inflight=N warmup_ms=W duration_ms=D max_requests=M [tracing=none] [threads=N]");
        std::process::exit(2)
    }
    let setup = clients::Setup::parse(&args[1..]);
    match setup.kind.as_str() {
        "tonic" => clients::run_tonic(setup),
        other => {
            eprintln!("jina-net-floor runs kind=tonic only, not {other}");
            std::process::exit(2)
        }
    }
}
