//! `jina-net-test-server`: starts one or more test servers on 127.0.0.1 and prints where they listen.
//!
//! ```text
//! jina-net-test-server [--exit-on-stdin-eof] ROLE[@PORT][=NAME] ...
//!   ROLE: echo | error | unavailable | flaky:N | slow:MS | head[:deployment] | head-all[:deployment]
//! ```
//! Prints `PID <pid>`, then one `SERVER <name> <role> 127.0.0.1:<port>` line per server and `READY`,
//! then serves until SIGTERM/SIGINT (or, with `--exit-on-stdin-eof`, until stdin is closed). On
//! SIGUSR1 it prints `STATS read=<bytes> written=<bytes>`: what all its servers read from and wrote
//! to their TCP connections so far.

use jina_net_testserver::{Role, TestServer};
use tokio::io::AsyncReadExt;

fn usage() -> ! {
    eprintln!("usage: jina-net-test-server [--exit-on-stdin-eof] ROLE[@PORT][=NAME] ...");
    eprintln!("  ROLE: echo | error | unavailable | flaky:N | slow:MS | head[:deployment] | head-all[:deployment]");
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut exit_on_eof = false;
    let mut specs = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--exit-on-stdin-eof" => exit_on_eof = true,
            "-h" | "--help" => usage(),
            spec => specs.push(spec.to_owned()),
        }
    }
    if specs.is_empty() {
        usage();
    }
    println!("PID {}", std::process::id());
    let mut servers = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let (spec, name) = spec
            .split_once('=')
            .map_or((spec.as_str(), None), |(s, n)| (s, Some(n.to_owned())));
        let (role_text, port) = match spec.rsplit_once('@') {
            Some((r, p)) => (r, p.parse::<u16>().unwrap_or_else(|_| usage())),
            None => (spec, 0),
        };
        let role: Role = role_text.parse().unwrap_or_else(|e| {
            eprintln!("{e}");
            usage()
        });
        let name = name.unwrap_or_else(|| format!("server{i}"));
        let server = TestServer::start(&name, role, port).await.unwrap_or_else(|e| {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1)
        });
        println!("SERVER {} {} {}", name, role_text, server.address());
        servers.push(server);
    }
    println!("READY");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    let eof = async {
        if exit_on_eof {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).expect("SIGUSR1 handler");
    let records: Vec<_> = servers.iter().map(|s| s.record.clone()).collect();
    let stats = async {
        while usr1.recv().await.is_some() {
            let (mut read, mut written) = (0, 0);
            for r in &records {
                read += r.bytes_read.load(std::sync::atomic::Ordering::Relaxed);
                written += r.bytes_written.load(std::sync::atomic::Ordering::Relaxed);
            }
            println!("STATS read={read} written={written}");
            let _ = std::io::stdout().flush();
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = eof => {}
        _ = stats => {}
    }
    for server in servers {
        server.stop().await;
    }
}
