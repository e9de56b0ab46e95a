//! `jina-net-test-server`: starts one or more test servers on 127.0.0.1 and prints where they listen.
//!
//! ```text
//! jina-net-test-server [OPTIONS] [ROLE[@PORT][=NAME] ...]     (installed as `jina-net-echo`; no ROLE = one echo)
//!   ROLE: echo | error | unavailable | flaky:N | slow:MS | hostile:KIND | head[:deployment] | head-all[:deployment]
//!   OPTIONS (for every server of the process):
//!     --exit-on-stdin-eof        stop when stdin is closed
//!     --tls-cert=FILE --tls-key=FILE
//!                                serve TLS with this certificate chain and key (PEM)
//!     --client-ca=FILE           with TLS: require client certificates signed by this CA (mTLS)
//!     --compress=gzip|deflate    compress responses when the client accepts it (requests in gzip
//!                                and deflate are always accepted)
//!     --unix=PATH                serve the (one) server on a Unix domain socket at PATH (plaintext)
//! jina-net-test-server pki DIR   write test certificates into DIR (see `pki.rs`) and exit
//! ```
//! Prints `PID <pid>`, then one `SERVER <name> <role> <address>` line per server (`127.0.0.1:<port>`,
//! or `unix:<path>`) and `READY`, then serves until SIGTERM/SIGINT (or, with `--exit-on-stdin-eof`,
//! until stdin is closed). On SIGUSR1 it prints `STATS read=<bytes> written=<bytes>`: what all its
//! servers read from and wrote to their TCP connections so far.

use std::io::Write;

use jina_net_testserver::{Role, ServeOptions, TestServer};
use tokio::io::AsyncReadExt;

/// `--help`: what a user reads (installed as `jina-net-echo`; README.md, "A worker to try against").
const HELP: &str = "\
Serves jina 3.1 workers and heads on 127.0.0.1 for trying libjina_net (installed as jina-net-echo;
the same program is target/<profile>/jina-net-test-server in the source tree).

usage: PROG [OPTIONS] [ROLE[@PORT][=NAME] ...]
       PROG pki DIR        write test certificates (CA, server, client; PEM) into DIR and exit

Each ROLE starts one server (on PORT, default a free port; named NAME, default server<i>).
Without a ROLE: one echo worker.
  echo                 answers process_single_data / process_data with the (first) request, its name
                       appended to routes[] (RouteProto.executor), and trailing metadata replica=NAME,
                       endpoint=<the endpoint metadata>, request-count=N and seen-<key> for every other
                       request metadata entry; process_control answers with the request
  error                as echo, but header.status is an executor error (ValueError), trailer is-error=true
  unavailable          every call fails with UNAVAILABLE
  flaky:N              the first N calls fail with UNAVAILABLE, then as echo
  slow:MS              as echo after MS milliseconds
  hostile:KIND         breaks the protocol: http503 html200 two truncated no-status rst-internal
                       rst-refused silent
  head[:DEPLOYMENT]    a head: ACTIVATE / DEACTIVATE control requests (RelatedEntity address, port,
                       shard_id) register workers into DEPLOYMENT (default worker) and take them out;
                       data requests go to them with libjina_net's pool (/search: ALL shards,
                       /index and others: ANY, round robin), NAME appended to routes[] of the
                       answer; with no worker registered, UNKNOWN
  head-all[:DEPLOYMENT] as head, but endpoints other than /index go to ALL shards

Options (for every server of the process):
  --exit-on-stdin-eof  stop when stdin is closed (a parent that dies takes the servers with it)
  --tls-cert=FILE --tls-key=FILE   serve TLS with this certificate chain and key (PEM)
  --client-ca=FILE     with TLS: require client certificates signed by this CA (mutual TLS)
  --compress=gzip|deflate          compress responses when the client accepts it (compressed
                       requests are always accepted)
  --unix=PATH          serve the (one) server on a Unix domain socket at PATH (plaintext)
  -h, --help           this text

Standard output, one line each, flushed before READY (parse it to find the servers):
  PID <pid>                        first, the process id
  SERVER <name> <role> <address>   one per ROLE, in order: 127.0.0.1:<port>, or unix:<path>
  READY                            every server listens; signal handlers are in place
  STATS read=<bytes> written=<bytes>   on SIGUSR1: bytes all servers read / wrote on TCP so far
It serves until SIGTERM or SIGINT (or stdin is closed, with --exit-on-stdin-eof), then exits 0.
Errors go to standard error: exit 2 for a usage error, 1 when a server cannot listen.

Example:
  $ PROG echo=encoder head:encoder@8080=gateway-head
  PID 4242
  SERVER encoder echo 127.0.0.1:40123
  SERVER gateway-head head:encoder 127.0.0.1:8080
  READY
";

/// The name the program was called by (`jina-net-echo` when installed).
fn program() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "jina-net-test-server".to_owned())
}

fn help() -> ! {
    print!("{}", HELP.replace("PROG", &program()));
    std::process::exit(0)
}

fn usage() -> ! {
    let prog = program();
    eprintln!("usage: {prog} [--exit-on-stdin-eof] [--tls-cert=FILE --tls-key=FILE [--client-ca=FILE]] [--compress=gzip|deflate] [--unix=PATH] [ROLE[@PORT][=NAME] ...]");
    eprintln!("  ROLE: echo | error | unavailable | flaky:N | slow:MS | hostile:KIND | head[:deployment] | head-all[:deployment]");
    eprintln!("       {prog} pki DIR");
    eprintln!("  {prog} --help: roles, options and the lines it prints");
    std::process::exit(2)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2)
    })
}

/// The settings every server of the process is made with.
#[derive(Default)]
struct Flags {
    exit_on_eof: bool,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    client_ca: Option<String>,
    compress: Option<tonic::codec::CompressionEncoding>,
    unix: Option<String>,
}

impl Flags {
    fn serve_options(&self) -> ServeOptions {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let identity = tonic::transport::Identity::from_pem(read(cert), read(key));
                let mut tls = tonic::transport::ServerTlsConfig::new().identity(identity);
                if let Some(ca) = &self.client_ca {
                    tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)));
                }
                Some(tls)
            }
            (None, None) if self.client_ca.is_none() => None,
            _ => usage(),
        };
        ServeOptions {
            tls,
            send_compressed: self.compress,
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("pki") {
        let Some(dir) = args.get(1) else { usage() };
        if let Err(e) = jina_net_testserver::pki::write(std::path::Path::new(dir)) {
            eprintln!("cannot write certificates into {dir}: {e}");
            std::process::exit(1)
        }
        return;
    }
    let mut flags = Flags::default();
    let mut specs = Vec::new();
    for arg in args {
        let (flag, value) = arg
            .split_once('=')
            .map_or((arg.as_str(), None), |(f, v)| (f, Some(v.to_owned())));
        match (flag, value) {
            ("--exit-on-stdin-eof", None) => flags.exit_on_eof = true,
            ("--tls-cert", Some(v)) => flags.tls_cert = Some(v),
            ("--tls-key", Some(v)) => flags.tls_key = Some(v),
            ("--client-ca", Some(v)) => flags.client_ca = Some(v),
            ("--compress", Some(v)) => {
                flags.compress = Some(match v.as_str() {
                    "gzip" => tonic::codec::CompressionEncoding::Gzip,
                    "deflate" => tonic::codec::CompressionEncoding::Deflate,
                    _ => usage(),
                })
            }
            ("--unix", Some(v)) => flags.unix = Some(v),
            ("-h" | "--help", None) => help(),
            (f, _) if f.starts_with("--") => usage(),
            _ => specs.push(arg),
        }
    }
    if specs.is_empty() {
        specs.push("echo".to_owned());
    }
    if flags.unix.is_some() && (specs.len() != 1 || flags.tls_cert.is_some()) {
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
        let started = match &flags.unix {
            Some(path) => TestServer::start_unix(&name, role, std::path::Path::new(path)),
            None => TestServer::start_with(&name, role, port, flags.serve_options()).await,
        };
        let server = started.unwrap_or_else(|e| {
            eprintln!("cannot listen ({}): {e}", flags.unix.as_deref().unwrap_or("127.0.0.1"));
            std::process::exit(1)
        });
        println!("SERVER {} {} {}", name, role_text, server.address());
        servers.push(server);
    }
    // The signal handlers are in place before READY: a signal right after it is handled.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    let mut usr1 =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).expect("SIGUSR1 handler");
    println!("READY");
    let _ = std::io::stdout().flush();
    let exit_on_eof = flags.exit_on_eof;
    let eof = async {
        if exit_on_eof {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
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
