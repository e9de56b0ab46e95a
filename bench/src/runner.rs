//! `jina-net-bench run [--quick] [--callgrind] [--only=KIND,..]`: builds the C, gRPC C++, Go and
//! grpc-go clients, checks that each sends the payload file's exact bytes (`verify`), runs every
//! cell (each client in its own process, against a fresh echo worker process per cell: the
//! project's `jina-net-test-server` of the same build profile), prints the markdown tables and
//! ratios, draws `target/bench/chart.svg`, and writes them to `target/bench/results.md` (raw client output: `target/bench/raw.txt`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jina_net::proto::jina::data_request_proto::data_content_proto::Documents;
use jina_net::proto::jina::data_request_proto::DataContentProto;
use jina_net::proto::{DataRequestProto, HeaderProto};
use prost::Message;

use crate::chart;
use crate::stats::parse_kv;
use crate::verify;

/// The client kinds, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// tonic alone: run with `tracing=none`, so h2's spans skip tracing's `log` fallback as they do in
    /// a build without kube (see BENCHMARKS.md); tokio's multi-thread runtime, one worker per core.
    Tonic,
    /// The same tonic client with `threads=1`: tokio's current_thread runtime. With `Tonic`, the floor
    /// (`FLOOR`: per cell the better of the two).
    Tonic1T,
    /// tonic as built here, next to the library: tracing's `log` feature on (from kube-client).
    TonicSameBuild,
    Pool,
    CAbi,
    /// The C client with threads=cores: `jina_net_runtime_init(cores)`, one library worker per core
    /// (the former default).
    CAbiCores,
    /// The C client with busy_poll_us=0: the library workers sleep at once (no busy polling).
    CNoPoll,
    /// The C client with pool=polled: library threads run the pool, its callbacks run in
    /// `jina_net_pool_poll` on the main thread (`callbacks_in_poll`).
    CPolled,
    /// The C client with drive=callback: the next send is made from the completion callback.
    CChained,
    /// The C client with drive=callback threads=cores.
    CChainedCores,
    /// The C client with send=owned: `jina_net_pool_send_owned`, the library does not copy requests.
    COwned,
    /// The C client with pool=driven: a caller-driven pool, the main thread sends and polls.
    CDriven,
    /// The C client with pool=driven drive=callback: caller-driven, the next send made in the callback.
    CDrivenChained,
    /// The C client with pool=driven send=owned: caller-driven, the request buffers handed over.
    CDrivenOwned,
    /// gRPC C++ (grpc++ 1.51, callback API), the stub generated from proto/.
    GrpcCpp,
    /// The same C++ client with grpc::GenericStub: the payload bytes as a ByteBuffer.
    GrpcCppGeneric,
    Go,
    /// The Go client with pool=threads: the binding's pools on the library threads (LibraryThreads).
    GoThreads,
    /// The Go client with pool=polled: library threads, `PoolOptions.CallbacksInPoll`.
    GoPolled,
    /// The Go client with send=view: `Pool.SendView`, large response bodies lent, not copied into Go.
    GoView,
    /// grpc-go 1.33 with a raw-bytes codec, one ClientConn.
    GrpcGo,
    /// The same grpc-go client with procs=1: `runtime.GOMAXPROCS(1)`.
    GrpcGo1P,
    Python,
}

const KINDS: [Kind; 23] = [
    Kind::Tonic,
    Kind::Tonic1T,
    Kind::TonicSameBuild,
    Kind::Pool,
    Kind::CAbi,
    Kind::CAbiCores,
    Kind::CNoPoll,
    Kind::CPolled,
    Kind::CChained,
    Kind::CChainedCores,
    Kind::COwned,
    Kind::CDriven,
    Kind::CDrivenChained,
    Kind::CDrivenOwned,
    Kind::GrpcCpp,
    Kind::GrpcCppGeneric,
    Kind::Go,
    Kind::GoThreads,
    Kind::GoPolled,
    Kind::GoView,
    Kind::GrpcGo,
    Kind::GrpcGo1P,
    Kind::Python,
];

/// The `--only` keys, for the usage line.
const KIND_KEYS: &str =
    "tonic,tonic-cores,tonic-log,pool,c,c-cores,c-nopoll,c-polled,c-chained,c-chained-cores,c-owned,c-driven,c-driven-chained,\
c-driven-owned,grpc-cpp,grpc-cpp-generic,go,go-threads,go-polled,go-view,grpc-go,grpc-go-1p,python";

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Tonic => "tonic",
            Kind::Tonic1T => "tonic-1t",
            Kind::TonicSameBuild => "tonic-log",
            Kind::Pool => "pool",
            Kind::CAbi => "c",
            Kind::CAbiCores => "c-cores",
            Kind::CNoPoll => "c-nopoll",
            Kind::CPolled => "c-polled",
            Kind::CChained => "c-chained",
            Kind::CChainedCores => "c-chained-cores",
            Kind::COwned => "c-owned",
            Kind::CDriven => "c-driven",
            Kind::CDrivenChained => "c-driven-chained",
            Kind::CDrivenOwned => "c-driven-owned",
            Kind::GrpcCpp => "grpc-cpp",
            Kind::GrpcCppGeneric => "grpc-cpp-generic",
            Kind::Go => "go",
            Kind::GoThreads => "go-threads",
            Kind::GoPolled => "go-polled",
            Kind::GoView => "go-view",
            Kind::GrpcGo => "grpc-go",
            Kind::GrpcGo1P => "grpc-go-1p",
            Kind::Python => "python",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Tonic => "raw tonic, one worker per core",
            Kind::Tonic1T => "raw tonic, 1 thread (current_thread)",
            Kind::TonicSameBuild => "raw tonic, library's build",
            Kind::Pool => "Rust pool API",
            Kind::CAbi => "C ABI + callbacks",
            Kind::CAbiCores => "C ABI + callbacks, one runtime worker per core",
            Kind::CNoPoll => "C ABI + callbacks, busy polling off",
            Kind::CPolled => "C ABI, library threads, callbacks in poll",
            Kind::CChained => "C ABI, resend in callback",
            Kind::CChainedCores => "C ABI, resend in callback, one runtime worker per core",
            Kind::COwned => "C ABI, owned buffers (no copy)",
            Kind::CDriven => "C ABI, caller-driven pool",
            Kind::CDrivenChained => "C ABI, caller-driven, resend in callback",
            Kind::CDrivenOwned => "C ABI, caller-driven, owned buffers",
            Kind::GrpcCpp => "gRPC C++ (generated stub)",
            Kind::GrpcCppGeneric => "gRPC C++, generic stub (bytes)",
            Kind::Go => "Go binding",
            Kind::GoThreads => "Go binding, library threads",
            Kind::GoPolled => "Go binding, library threads, callbacks in poll",
            Kind::GoView => "Go binding, SendView (bodies lent)",
            Kind::GrpcGo => "grpc-go (raw bytes)",
            Kind::GrpcGo1P => "grpc-go, GOMAXPROCS=1",
            Kind::Python => "jina 3.1.0 Python pool",
        }
    }

    /// A variant of another kind's client (same build, more arguments, separated by spaces).
    fn variant_of(self) -> Option<(Kind, &'static str)> {
        match self {
            Kind::Tonic1T => Some((Kind::Tonic, "threads=1")),
            Kind::CAbiCores => Some((Kind::CAbi, "threads=cores")),
            Kind::CNoPoll => Some((Kind::CAbi, "busy_poll_us=0")),
            Kind::CPolled => Some((Kind::CAbi, "pool=polled")),
            Kind::CChained => Some((Kind::CAbi, "drive=callback")),
            Kind::CChainedCores => Some((Kind::CAbi, "drive=callback threads=cores")),
            Kind::COwned => Some((Kind::CAbi, "send=owned")),
            Kind::CDriven => Some((Kind::CAbi, "pool=driven")),
            Kind::CDrivenChained => Some((Kind::CAbi, "pool=driven drive=callback")),
            Kind::CDrivenOwned => Some((Kind::CAbi, "pool=driven send=owned")),
            Kind::GrpcCppGeneric => Some((Kind::GrpcCpp, "stub=generic")),
            Kind::GoThreads => Some((Kind::Go, "pool=threads")),
            Kind::GoPolled => Some((Kind::Go, "pool=polled")),
            Kind::GoView => Some((Kind::Go, "send=view")),
            Kind::GrpcGo1P => Some((Kind::GrpcGo, "procs=1")),
            _ => None,
        }
    }
}

/// Durations and counts of one mode.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Runs of every cell, interleaved (round r runs every client once); the median run is shown.
    rounds: usize,
    warmup_ms: u64,
    small_ms: u64,
    large_ms: u64,
    all_ms: u64,
    max_small: u64,
    max_large: u64,
}

const FULL: Budget = Budget {
    rounds: 5,
    warmup_ms: 250,
    small_ms: 800,
    large_ms: 1200,
    all_ms: 500,
    max_small: 200_000,
    max_large: 20_000,
};

const QUICK: Budget = Budget {
    rounds: 1,
    warmup_ms: 100,
    small_ms: 250,
    large_ms: 250,
    all_ms: 250,
    max_small: 3_000,
    max_large: 200,
};

const SMALL: usize = 100;
const LARGE: usize = 1 << 20;

struct Env {
    root: PathBuf,
    profile_dir: PathBuf,
    work: PathBuf,
    self_exe: PathBuf,
    server: PathBuf,
    quick: bool,
    budget: Budget,
    /// Per kind: the command prefix to run it, or why it is not available.
    clients: BTreeMap<Kind, Result<Vec<String>, String>>,
    raw: std::fs::File,
    failures: Vec<String>,
    /// One line per target of the issue, with what was measured.
    targets: Vec<String>,
}

/// One run of one cell.
#[derive(Debug, Clone)]
struct CellResult {
    n: u64,
    errors: u64,
    wall_s: f64,
    cpu_s: f64,
    maxrss_kib: f64,
    p50: f64,
    p99: f64,
    p999: f64,
}

impl CellResult {
    fn rps(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.n as f64 / self.wall_s
        } else {
            0.0
        }
    }

    /// CPU seconds per 10k requests.
    fn cpu_10k(&self) -> f64 {
        if self.n > 0 {
            self.cpu_s / self.n as f64 * 10_000.0
        } else {
            f64::NAN
        }
    }
}

/// The runs of one cell: the median run (by req/s), the spread of req/s over the runs, and each
/// run with its round (for ratios taken round by round).
#[derive(Debug, Clone)]
struct Agg {
    median: CellResult,
    min_rps: f64,
    max_rps: f64,
    runs: usize,
    by_round: Vec<(usize, CellResult)>,
}

impl std::ops::Deref for Agg {
    type Target = CellResult;
    fn deref(&self) -> &CellResult {
        &self.median
    }
}

type Outcome = Result<Agg, String>;

/// What one cell runs.
#[derive(Debug, Clone, Copy)]
struct Spec {
    kind: Kind,
    payload: usize,
    inflight: usize,
    /// `None`: polling ANY to one echo worker; `Some(s)`: ALL over `s` shards.
    shards: Option<usize>,
    duration_ms: u64,
}

/// Runs every spec `rounds` times, interleaved (each round runs all of them, starting one further
/// along), so slow drifts of the machine hit every client alike; keeps the median run of each.
fn run_group(env: &mut Env, specs: &[Spec]) -> Vec<Outcome> {
    let rounds = env.budget.rounds;
    let mut runs: Vec<Vec<(usize, CellResult)>> = vec![Vec::new(); specs.len()];
    let mut errors: Vec<Option<String>> = vec![None; specs.len()];
    for round in 0..rounds {
        for k in 0..specs.len() {
            let i = (k + round) % specs.len();
            if let Err(why) = &env.clients[&specs[i].kind] {
                errors[i] = Some(why.clone());
                continue;
            }
            match cell(env, specs[i], round) {
                Ok(r) => runs[i].push((round, r)),
                Err(e) => errors[i] = Some(e),
            }
        }
    }
    runs.into_iter()
        .zip(errors)
        .map(|(by_round, e)| {
            if by_round.is_empty() {
                return Err(e.unwrap_or_else(|| "no run".into()));
            }
            let mut r: Vec<CellResult> = by_round.iter().map(|(_, c)| c.clone()).collect();
            r.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
            Ok(Agg {
                min_rps: r[0].rps(),
                max_rps: r[r.len() - 1].rps(),
                runs: r.len(),
                median: r[(r.len() - 1) / 2].clone(),
                by_round,
            })
        })
        .collect()
}

pub fn main(argv: &[String]) -> i32 {
    let mut quick = false;
    let mut callgrind = None;
    let mut only: Option<BTreeSet<String>> = None;
    let (mut verify, mut verify_only, mut require_all) = (true, false, false);
    for a in argv {
        match a.as_str() {
            "--quick" => quick = true,
            "--no-verify" => verify = false,
            "--verify-only" => verify_only = true,
            // Every client must be available (the test command installs all their tools).
            "--require-all" => require_all = true,
            "--callgrind" => callgrind = Some(true),
            "--no-callgrind" => callgrind = Some(false),
            s if s.starts_with("--only=") => {
                only = Some(s["--only=".len()..].split(',').map(str::to_owned).collect());
            }
            other => {
                eprintln!("usage: jina-net-bench run [--quick] [--callgrind|--no-callgrind] [--no-verify|--verify-only] [--require-all] [--only={KIND_KEYS}] (unknown {other:?})");
                return 2;
            }
        }
    }
    let self_exe = std::env::current_exe().expect("current exe");
    let profile_dir = self_exe.parent().expect("exe dir").to_path_buf();
    let root = find_root(&profile_dir);
    let work = root.join("target").join("bench");
    std::fs::create_dir_all(&work).expect("create target/bench");
    let server = profile_dir.join("jina-net-test-server");
    if !server.exists() {
        eprintln!(
            "{} is missing: build the workspace first (cargo build --release --workspace)",
            server.display()
        );
        return 1;
    }
    let raw = std::fs::File::create(work.join("raw.txt")).expect("raw.txt");
    let mut env = Env {
        root,
        profile_dir,
        work,
        self_exe,
        server,
        quick,
        budget: if quick { QUICK } else { FULL },
        clients: BTreeMap::new(),
        raw,
        failures: Vec::new(),
        targets: Vec::new(),
    };
    let started = Instant::now();
    for kind in KINDS {
        let prefix = if only.as_ref().is_some_and(|o| !o.contains(kind.key())) {
            Err("n/a (not selected)".to_owned())
        } else if let Some((base, extra)) = kind.variant_of() {
            // The base client again, with more arguments (its build is shared).
            let with = |c: Vec<String>| c.into_iter().chain(extra.split(' ').map(str::to_owned)).collect();
            match env.clients.get(&base) {
                Some(Ok(c)) => Ok(with(c.clone())),
                Some(Err(e)) if !e.contains("not selected") => Err(e.clone()),
                _ => prepare(&env, base).map(with),
            }
        } else {
            prepare(&env, kind)
        };
        match &prefix {
            Ok(_) => eprintln!("[bench] {}: ready", kind.label()),
            Err(why) => {
                eprintln!("[bench] {}: {why}", kind.label());
                // Absent tools are n/a; a client that is there but does not build is a failure.
                if why.contains("failed") && kind.variant_of().is_none() {
                    env.failures.push(format!("{}: {why}", kind.label()));
                }
            }
        }
        if require_all {
            if let Err(why) = &prefix {
                if !why.contains("not selected") && !why.contains("failed") {
                    env.failures.push(format!("{}: {why} (--require-all)", kind.label()));
                }
            }
        }
        env.clients.insert(kind, prefix);
    }
    for (len, name) in [(SMALL, "payload-100B.bin"), (LARGE, "payload-1MiB.bin")] {
        std::fs::write(env.work.join(name), payload(len)).expect("write payload");
    }

    let mut out = String::new();
    header(&env, &mut out);
    let mut body = String::new();
    if verify || verify_only {
        verify_bytes(&mut env, &mut body);
    }
    if verify_only {
        print!("{body}");
        for f in &env.failures {
            eprintln!("[bench] failed: {f}");
        }
        return i32::from(!env.failures.is_empty());
    }
    send_path(&mut env, &mut body);
    all_polling(&mut env, &mut body);
    pool_scale(&mut env, &mut body);
    // Part of the full run (about a minute); --callgrind adds it to --quick, --no-callgrind drops it.
    if callgrind.unwrap_or(!quick) {
        instructions(&mut env, &mut body);
    }
    let _ = writeln!(out, "## Targets (not asserted; ✓ met, ✗ missed)\n");
    for t in &env.targets {
        let _ = writeln!(out, "- {t}");
    }
    let _ = writeln!(out);
    out.push_str(&body);
    let _ = writeln!(out, "\nTotal benchmark time: {:.0} s.", started.elapsed().as_secs_f64());
    if !env.failures.is_empty() {
        let _ = writeln!(out, "\n**Failed cells:**\n");
        for f in &env.failures {
            let _ = writeln!(out, "- {f}");
        }
    }
    println!("{out}");
    let _ = std::fs::write(env.work.join("results.md"), &out);
    eprintln!("[bench] written to {}", env.work.join("results.md").display());
    if env.failures.is_empty() {
        0
    } else {
        1
    }
}

/// The repository root: the first ancestor of the executable's directory with include/jina_net.h.
fn find_root(profile_dir: &Path) -> PathBuf {
    profile_dir
        .ancestors()
        .find(|p| p.join("include/jina_net.h").exists() && p.join("bench").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// `DataRequestProto { header { request_id }, data { docs_bytes } }` of exactly `len` bytes: a valid
/// jina data request the echo worker decodes and sends back (plus its route), whatever the client.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    let make = |k: usize| {
        DataRequestProto {
            header: Some(HeaderProto {
                request_id: "jina-net-bench-0001".into(),
                ..Default::default()
            }),
            data: Some(DataContentProto {
                documents: Some(Documents::DocsBytes(vec![b'x'; k])),
            }),
            ..Default::default()
        }
        .encode_to_vec()
    };
    let mut k = len.saturating_sub(40);
    while k > 0 && make(k).len() > len {
        k -= 1;
    }
    while make(k + 1).len() <= len {
        k += 1;
    }
    make(k)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

fn run_quiet(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        eprintln!(
            "{what} failed:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        Err(format!("{what} failed"))
    }
}

/// Builds (C, Go) or finds (Python) a client; the command prefix that runs it.
fn prepare(env: &Env, kind: Kind) -> Result<Vec<String>, String> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    match kind {
        // The variants (Tonic1T, CAbiCores, ..) are prepared as their base kind, then given their arguments.
        // The floor: a binary without libjina_net (its allocator) linked.
        Kind::Tonic | Kind::Tonic1T => Ok(vec![
            s(&env.profile_dir.join("jina-net-floor")),
            "client".into(),
            "kind=tonic".into(),
            "tracing=none".into(),
        ]),
        Kind::TonicSameBuild | Kind::Pool => Ok(vec![
            s(&env.self_exe),
            "client".into(),
            format!("kind={}", if kind == Kind::Pool { "pool" } else { "tonic" }),
        ]),
        Kind::CAbi
        | Kind::CAbiCores
        | Kind::CNoPoll
        | Kind::CPolled
        | Kind::CChained
        | Kind::CChainedCores
        | Kind::COwned
        | Kind::CDriven
        | Kind::CDrivenChained
        | Kind::CDrivenOwned => {
            let lib = env.profile_dir.join("libjina_net.so");
            if !lib.exists() {
                return Err(format!("n/a (no {})", lib.display()));
            }
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            if which(&cc).is_none() && !Path::new(&cc).is_file() {
                return Err("n/a (no C compiler)".into());
            }
            let exe = env.work.join("c-client");
            run_quiet(
                Command::new(&cc)
                    .args(["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror"])
                    .arg(format!("-I{}", s(&env.root.join("include"))))
                    .arg(env.root.join("bench/c/bench_client.c"))
                    .arg("-o")
                    .arg(&exe)
                    .arg(format!("-L{}", s(&env.profile_dir)))
                    .arg("-ljina_net")
                    .arg(format!("-Wl,-rpath,{}", s(&env.profile_dir)))
                    .args(["-lpthread", "-lm"]),
                "cc bench/c/bench_client.c",
            )
            .map_err(|e| format!("n/a ({e})"))?;
            Ok(vec![s(&exe)])
        }
        Kind::Go | Kind::GoThreads | Kind::GoPolled | Kind::GoView => {
            if !env.root.join("bindings/go/go.mod").exists() {
                return Err("n/a (no Go binding)".into());
            }
            let Some(go) = which("go") else {
                return Err("n/a (go not installed)".into());
            };
            let exe = env.work.join("go-client");
            let mut cmd = Command::new(go);
            cmd.current_dir(env.root.join("bench/go"))
                .args(["build", "-o"])
                .arg(&exe)
                .arg(".")
                .env("GOPROXY", "off")
                .env("GOFLAGS", "-mod=mod")
                .env("GOTOOLCHAIN", "local")
                // Link this profile's library (the binding's own #cgo flags name target/debug).
                .env("CGO_LDFLAGS", format!("-L{}", s(&env.profile_dir)));
            if std::env::var_os("HOME").is_none() && std::env::var_os("GOCACHE").is_none() {
                cmd.env("GOCACHE", env.work.join("go-cache"));
            }
            run_quiet(&mut cmd, "go build bench/go").map_err(|e| format!("n/a ({e})"))?;
            Ok(vec![s(&exe)])
        }
        Kind::GrpcCpp | Kind::GrpcCppGeneric => build_grpc_cpp(env).map(|exe| vec![s(&exe)]),
        Kind::GrpcGo | Kind::GrpcGo1P => {
            let Some(go) = which("go") else {
                return Err("n/a (go not installed)".into());
            };
            let gocode = Path::new(DEBIAN_GOCODE);
            if !gocode.join("src/google.golang.org/grpc/call.go").exists() {
                return Err(format!(
                    "n/a (no grpc-go in {DEBIAN_GOCODE}: apt-get install golang-google-grpc-dev)"
                ));
            }
            let exe = env.work.join("grpc-go-client");
            let mut cmd = Command::new(go);
            // GOPATH mode against Debian's Go sources: no module proxy, no go.mod.
            cmd.current_dir(env.root.join("bench/grpc-go"))
                .args(["build", "-o"])
                .arg(&exe)
                .arg(".")
                .env("GO111MODULE", "off")
                .env("GOPATH", format!("{}:{}", s(&env.work.join("gopath")), DEBIAN_GOCODE))
                .env("GOFLAGS", "")
                .env("GOPROXY", "off")
                .env("GOTOOLCHAIN", "local");
            if std::env::var_os("HOME").is_none() && std::env::var_os("GOCACHE").is_none() {
                cmd.env("GOCACHE", env.work.join("go-cache"));
            }
            run_quiet(&mut cmd, "go build bench/grpc-go (GOPATH mode)").map_err(|e| format!("n/a ({e})"))?;
            Ok(vec![s(&exe)])
        }
        Kind::Python => {
            let python = python_path().ok_or_else(|| "n/a (no venv)".to_owned())?;
            let ok = Command::new(&python)
                .args([
                    "-c",
                    "import sys, jina; sys.exit(0 if jina.__version__ == '3.1.0' else 1)",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("n/a (venv has no jina 3.1.0)".into());
            }
            Ok(vec![s(&python), s(&env.root.join("bench/python/jina_pool_client.py"))])
        }
    }
}

/// Where Debian's golang-*-dev packages install Go sources (GOPATH layout).
const DEBIAN_GOCODE: &str = "/usr/share/gocode";

/// Modification time of a file (None when it is missing).
fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Whether `output` is missing or older than any of `inputs`.
fn stale(output: &Path, inputs: &[PathBuf]) -> bool {
    let Some(out) = mtime(output) else {
        return true;
    };
    inputs.iter().any(|i| mtime(i).is_none_or(|t| t > out))
}

/// Builds the gRPC C++ client in target/bench/grpc-cpp/: stubs generated from proto/ with protoc and
/// grpc_cpp_plugin, each translation unit compiled with `-O2` (only when its inputs changed; the
/// four compile in parallel), linked with `pkg-config --libs grpc++ protobuf`.
fn build_grpc_cpp(env: &Env) -> Result<PathBuf, String> {
    const APT: &str = "apt-get install libgrpc++-dev protobuf-compiler-grpc pkg-config";
    let mut tools = Vec::new();
    for tool in ["protoc", "grpc_cpp_plugin", "pkg-config"] {
        tools.push(which(tool).ok_or_else(|| format!("n/a ({tool} not installed: {APT})"))?);
    }
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    if which(&cxx).is_none() && !Path::new(&cxx).is_file() {
        return Err("n/a (no C++ compiler)".into());
    }
    let flags = |what: &str| -> Result<Vec<String>, String> {
        let out = Command::new(&tools[2])
            .args([what, "grpc++", "protobuf"])
            .output()
            .map_err(|e| format!("n/a (pkg-config: {e})"))?;
        if !out.status.success() {
            return Err(format!("n/a (no grpc++ development files: {APT})"));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    };
    let (cflags, libs) = (flags("--cflags")?, flags("--libs")?);
    let dir = env.work.join("grpc-cpp");
    let gen = dir.join("gen");
    std::fs::create_dir_all(&gen).map_err(|e| format!("n/a ({}: {e})", gen.display()))?;
    let protos = [env.root.join("proto/jina.proto"), env.root.join("proto/docarray.proto")];
    let generated: Vec<PathBuf> = [
        "jina.pb.cc",
        "jina.pb.h",
        "jina.grpc.pb.cc",
        "jina.grpc.pb.h",
        "docarray.pb.cc",
        "docarray.pb.h",
    ]
    .iter()
    .map(|f| gen.join(f))
    .collect();
    let gen_inputs: Vec<PathBuf> = protos.iter().cloned().chain(tools[..2].iter().cloned()).collect();
    if generated.iter().any(|g| stale(g, &gen_inputs)) {
        run_quiet(
            Command::new(&tools[0])
                .arg(format!("-I{}", env.root.join("proto").display()))
                .arg(format!("--cpp_out={}", gen.display()))
                .arg(format!("--grpc_out={}", gen.display()))
                .arg(format!("--plugin=protoc-gen-grpc={}", tools[1].display()))
                .args(&protos),
            "protoc (grpc_cpp_plugin) proto/jina.proto proto/docarray.proto",
        )
        .map_err(|e| format!("n/a ({e})"))?;
    }
    let client = env.root.join("bench/cpp/grpc_client.cc");
    let units = [
        (client.clone(), dir.join("grpc_client.o")),
        (gen.join("jina.pb.cc"), dir.join("jina.pb.o")),
        (gen.join("jina.grpc.pb.cc"), dir.join("jina.grpc.pb.o")),
        (gen.join("docarray.pb.cc"), dir.join("docarray.pb.o")),
    ];
    let mut compiles = Vec::new();
    for (src, obj) in &units {
        let mut inputs = generated.clone();
        inputs.push(src.clone());
        if !stale(obj, &inputs) {
            continue;
        }
        let mut cmd = Command::new(&cxx);
        cmd.args(["-std=c++17", "-O2", "-c"])
            .arg(format!("-I{}", gen.display()))
            .args(&cflags)
            .arg(src)
            .arg("-o")
            .arg(obj);
        if *src == client {
            cmd.args(["-Wall", "-Wextra", "-Werror"]);
        }
        let what = format!("{cxx} -c {}", src.display());
        compiles.push(std::thread::spawn(move || run_quiet(&mut cmd, &what)));
    }
    for c in compiles {
        c.join()
            .map_err(|_| "n/a (compile thread panicked)".to_owned())?
            .map_err(|e| format!("n/a ({e})"))?;
    }
    let exe = env.work.join("grpc-cpp-client");
    let objects: Vec<PathBuf> = units.iter().map(|(_, o)| o.clone()).collect();
    if stale(&exe, &objects) {
        run_quiet(
            Command::new(&cxx).args(&objects).arg("-o").arg(&exe).args(&libs),
            "link bench/cpp/grpc_client.cc",
        )
        .map_err(|e| format!("n/a ({e})"))?;
    }
    Ok(exe)
}

/// The interop venv's Python: `$JINA_NET_INTEROP_VENV` (the venv or its python), or
/// `$JINA_NET_INTEROP_PYTHON`, or `${XDG_CACHE_HOME:-$HOME/.cache}/jina-net/venv-jina-3.1.0/bin/python`.
fn python_path() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let candidate = if let Some(v) = var("JINA_NET_INTEROP_VENV") {
        if v.is_dir() {
            v.join("bin/python")
        } else {
            v
        }
    } else if let Some(p) = var("JINA_NET_INTEROP_PYTHON") {
        p
    } else {
        let cache = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?;
        cache.join("jina-net/venv-jina-3.1.0/bin/python")
    };
    candidate.exists().then_some(candidate)
}

/// A running test-server process.
struct Servers {
    child: Child,
    addresses: Vec<String>,
}

impl Servers {
    fn start(binary: &Path, echo_workers: usize) -> Result<Servers, String> {
        let specs: Vec<String> = (0..echo_workers).map(|i| format!("echo=s{i}")).collect();
        for spec in &specs {
            let role = spec.split('=').next().unwrap_or_default();
            role.parse::<jina_net_testserver::Role>()?;
        }
        let mut child = Command::new(binary)
            .arg("--exit-on-stdin-eof")
            .args(&specs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut addresses = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY") {
                    let _ = tx.send(Some(addresses));
                    return;
                }
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.len() == 4 && words[0] == "SERVER" {
                    addresses.push(words[3].to_owned());
                }
            }
            let _ = tx.send(None);
        });
        let mut servers = Servers {
            child,
            addresses: Vec::new(),
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(addresses)) if addresses.len() == echo_workers => {
                servers.addresses = addresses;
                Ok(servers)
            }
            _ => Err("the test server did not get ready".into()),
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client process to completion (bounded by `timeout`) and returns its `RESULT` fields.
fn run_client(
    env: &mut Env,
    label: &str,
    mut cmd: Command,
    timeout: Duration,
) -> Result<BTreeMap<String, String>, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the client: {e}"))?;
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    let _ = writeln!(env.raw, "## {label}\n{}{}", out, err);
    let result = out.lines().rev().find(|l| l.starts_with("RESULT "));
    match (status, result) {
        (None, _) => Err(format!("timed out after {} s", timeout.as_secs())),
        (Some(s), Some(line)) if s.success() => Ok(parse_kv(line.split_whitespace().skip(1))),
        (Some(s), _) => {
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
            Err(format!("exit {s}: {last}"))
        }
    }
}

fn num(fields: &BTreeMap<String, String>, key: &str) -> f64 {
    fields.get(key).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

/// One run of a closed-loop cell: `kind` sends `payload`-byte requests with `inflight` in flight,
/// ANY to one echo worker or ALL over `shards` echo workers (one per shard), for `duration_ms`.
fn cell(env: &mut Env, spec: Spec, round: usize) -> Result<CellResult, String> {
    let Spec {
        kind,
        payload,
        inflight,
        shards,
        duration_ms,
    } = spec;
    let prefix = env.clients[&kind].clone()?;
    let label = format!(
        "{} payload={payload} inflight={inflight} {} round={}",
        kind.key(),
        shards.map_or("ANY".to_owned(), |s| format!("ALL-{s}")),
        round + 1
    );
    eprintln!("[bench] {label}");
    let servers = Servers::start(&env.server, shards.unwrap_or(1))?;
    let (payload_file, max) = if payload == SMALL {
        ("payload-100B.bin", env.budget.max_small)
    } else {
        ("payload-1MiB.bin", env.budget.max_large)
    };
    let mut cmd = Command::new(&prefix[0]);
    cmd.args(&prefix[1..])
        .arg("mode=send")
        .arg(format!("addrs={}", servers.addresses.join(",")))
        .arg(format!("polling={}", if shards.is_some() { "all" } else { "any" }))
        .arg(format!("payload={}", env.work.join(payload_file).display()))
        .arg(format!("inflight={inflight}"))
        .arg(format!("warmup_ms={}", env.budget.warmup_ms))
        .arg(format!("duration_ms={duration_ms}"))
        .arg(format!("max_requests={max}"));
    if matches!(kind, Kind::Go | Kind::GoThreads | Kind::GoPolled | Kind::GoView) {
        // The binding's rpath names target/debug: load this profile's library instead.
        cmd.env("LD_LIBRARY_PATH", &env.profile_dir);
    }
    let timeout = Duration::from_millis(env.budget.warmup_ms + duration_ms) + Duration::from_secs(60);
    let fields = run_client(env, &label, cmd, timeout);
    drop(servers);
    let fields = fields.map_err(|e| {
        env.failures.push(format!("{label}: {e}"));
        e
    })?;
    if matches!(kind, Kind::Go | Kind::GoThreads | Kind::GoPolled | Kind::GoView) {
        if let Some(lib) = fields.get("lib") {
            if !Path::new(lib).starts_with(&env.profile_dir) {
                eprintln!("[bench] warning: the Go client loaded {lib}");
            }
        }
    }
    let r = CellResult {
        n: num(&fields, "n") as u64,
        errors: num(&fields, "errors") as u64,
        wall_s: num(&fields, "wall_s"),
        cpu_s: num(&fields, "user_s") + num(&fields, "sys_s"),
        maxrss_kib: num(&fields, "maxrss_kib"),
        p50: num(&fields, "p50_us"),
        p99: num(&fields, "p99_us"),
        p999: num(&fields, "p999_us"),
    };
    if r.errors > 0 || r.n == 0 {
        let e = format!("{} errors, {} successful requests", r.errors, r.n);
        env.failures.push(format!("{label}: {e}"));
        return Err(e);
    }
    Ok(r)
}

/// Every available client sends one request of each payload to a recording server (in this
/// process); its bytes must be the payload file's, on `process_single_data` (see `verify`).
fn verify_bytes(env: &mut Env, out: &mut String) {
    let _ = writeln!(out, "## Request bytes check\n");
    let _ = writeln!(
        out,
        "Each client sent one request of each payload to a recording gRPC server (raw bytes, no decoding); \
         the message bytes that arrived are compared with the payload file, and the method with \
         `process_single_data`.\n"
    );
    let _ = writeln!(out, "| client | 100 B | 1 MiB | content-type | user-agent |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    let recorder = match verify::Recorder::start() {
        Ok(r) => r,
        Err(e) => {
            env.failures.push(format!("request bytes check: {e}"));
            let _ = writeln!(out, "| all | failed: {e} | | | |\n");
            return;
        }
    };
    let (mut checked, mut same) = (0, 0);
    for kind in KINDS {
        let prefix = match env.clients[&kind].clone() {
            Ok(p) => p,
            Err(why) => {
                let _ = writeln!(out, "| {} | {why} | | | |", kind.label());
                continue;
            }
        };
        let mut cells = Vec::new();
        let (mut agent, mut content_type) = (String::new(), String::new());
        for (file, len) in [("payload-100B.bin", SMALL), ("payload-1MiB.bin", LARGE)] {
            let path = env.work.join(file);
            let expected = std::fs::read(&path).unwrap_or_default();
            let label = format!("{} verify-bytes payload={len}", kind.key());
            eprintln!("[bench] {label}");
            let mut cmd = Command::new(&prefix[0]);
            cmd.args(&prefix[1..])
                .arg("mode=send")
                .arg(format!("addrs={}", recorder.address))
                .arg("polling=any")
                .arg(format!("payload={}", path.display()))
                .args(["inflight=1", "warmup_ms=0", "duration_ms=60000", "max_requests=1"])
                .env("LD_LIBRARY_PATH", &env.profile_dir);
            let ran = run_client(env, &label, cmd, Duration::from_secs(90));
            let verdict = ran
                .and_then(|fields| match (num(&fields, "n"), num(&fields, "errors")) {
                    (n, e) if n == 1.0 && e == 0.0 => Ok(()),
                    (n, e) => Err(format!("client reported n={n} errors={e}")),
                })
                .and_then(|()| verify::compare(&recorder.take(), &expected));
            let _ = recorder.take();
            checked += 1;
            match verdict {
                Ok(r) => {
                    same += 1;
                    (agent, content_type) = (r.user_agent, r.content_type);
                    cells.push("✓ identical".to_owned());
                }
                Err(e) => {
                    env.failures.push(format!("request bytes check, {label}: {e}"));
                    cells.push(format!("✗ {e}"));
                }
            }
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{content_type}` | `{agent}` |",
            kind.label(),
            cells[0],
            cells[1]
        );
    }
    env.targets.push(format!(
        "every client sends the payload file's bytes to process_single_data: {} {same} of {checked} client × payload checks",
        if same == checked && checked > 0 { "✓" } else { "✗" }
    ));
    let _ = writeln!(out);
}

fn header(env: &Env, out: &mut String) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let b = env.budget;
    let _ = writeln!(
        out,
        "# libjina_net send-path benchmark{}\n",
        if env.quick {
            " (--quick smoke run: tiny counts, numbers not meaningful)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "Machine: {cores} cores ({cpu}), Linux {}. Build: `{}`. Echo worker: `jina-net-test-server` \
         (separate process, tokio with 2 worker threads, restarted for every cell, its accepted sockets have TCP_NODELAY), 127.0.0.1 only. \
         Each client runs in its own process; CPU = getrusage(RUSAGE_SELF) user+sys of the client process \
         over the measured phase; peak RSS = its VmHWM. Closed loop: N requests in flight, \
         {} ms warm-up, then {} ms (100 B) / {} ms (1 MiB) / {} ms (ALL sweep), at most {} (100 B) / {} (1 MiB) \
         requests. Latency = send call to completion seen by the caller. Every cell runs {} time(s), \
         interleaved with the other clients of its table section; the run with the median req/s is shown \
         (all its figures), with the range of req/s over the runs. Ratios between clients are taken round \
         by round (ours ÷ theirs within one round, then the median over the rounds), so that the \
         machine's swings between rounds cancel out.\n",
        kernel.trim(),
        env.profile_dir.file_name().map_or("?".into(), |n| n.to_string_lossy()),
        b.warmup_ms,
        b.small_ms,
        b.large_ms,
        b.all_ms,
        b.max_small,
        b.max_large,
        b.rounds
    );
    let _ = writeln!(out, "Clients:\n");
    let tonic_workers = format!(
        "tonic 0.14 `Grpc::unary` on one `Channel`, bytes codec (no prost), the channel accepting 2 MiB HTTP/2 \
         frames as libjina_net's do (`Endpoint::max_frame_size`; tonic's default is 16 KiB), tokio's multi-thread runtime with \
         one worker per core ({cores} here); a no-op tracing dispatcher is set, so it runs as a tonic-only build \
         does (see the profile notes); its own binary, `jina-net-floor`, which does not link libjina_net (the \
         system's allocator as tonic has it, not the library's)"
    );
    for kind in KINDS {
        let what = match kind {
            Kind::Tonic => tonic_workers.as_str(),
            Kind::Tonic1T => "the same tonic client (no-op dispatcher too) with `threads=1`: tokio's current_thread runtime, so the calls, the channel's buffer worker and the connection all run on the one thread",
            Kind::TonicSameBuild => "the same tonic client (one worker per core) without that dispatcher: as linked next to libjina_net's default build (the `k8s` feature's kube-client turns on tracing's `log` feature; without a subscriber every h2 span then takes tracing's log fallback). 100 B only",
            Kind::Pool => "`ConnectionPool::send_requests(..).await`, tasks on the library runtime (its default size: one worker here)",
            Kind::CAbi => "`bench/c/bench_client.c`: the main thread calls `jina_net_pool_send` when a semaphore slot is free; the completion callback (library thread) records the latency and frees the slot; the library runtime at its default size (half the cores, 1 to 4: one worker here)",
            Kind::CPolled => "the same C client with `pool=polled`: a pool with `callbacks_in_poll`, run by the library threads; the main thread sends while a slot is free and otherwise waits in `jina_net_pool_poll`, which runs the callbacks of every send completed since the last poll (one wake-up per burst of completions instead of a `sem_post` per callback: README, \"Callbacks in poll\")",
            Kind::CNoPoll => "the same C client with `busy_poll_us=0`: `jina_net_runtime_set_busy_poll_us(0)`, the library workers sleep as soon as they have nothing to run (the default busy-polls up to 100 µs first: README, \"Busy polling\")",
            Kind::CAbiCores => "the same C client with `threads=cores`: `jina_net_runtime_init(cores)` before the first pool, one library worker thread per core (the former default; the default now is half the cores, 1 to 4)",
            Kind::CChained => "the same C client with `drive=callback`: the completion callback makes the next send itself (no C-thread ↔ runtime hop per request; shows what that hop costs)",
            Kind::CChainedCores => "the same C client with `drive=callback threads=cores`: the next send made in the callback, one library worker thread per core",
            Kind::COwned => "the same C client with `send=owned`: `jina_net_pool_send_owned` hands the request buffer to the library (a no-op free function here), so the library does not copy it",
            Kind::CDriven => "the same C client with `pool=driven`: a caller-driven pool (`caller_driven = true`), no library thread; the main thread sends while a slot is free and otherwise calls `jina_net_pool_poll`, inside which the callbacks run",
            Kind::CDrivenChained => "the same C client with `pool=driven drive=callback`: caller-driven, and each callback (inside `jina_net_pool_poll`, on the main thread) makes the next send; no request crosses a thread",
            Kind::CDrivenOwned => "the same C client with `pool=driven send=owned`: caller-driven, and `jina_net_pool_send_owned` (no copy of the request into the library)",
            Kind::GrpcCpp => "`bench/cpp/grpc_client.cc`: grpc++ 1.51 (Debian), callback API on one channel, the stub protoc + grpc_cpp_plugin generated from `proto/` (`stub->async()->process_single_data`); the request is a `DataRequestProto` parsed once from the payload file and serialized by gRPC on every call; N chains, each starting its next call from the completion callback (as gRPC's callback qps client). It runs with gRPC's defaults: 1.51's callback API has no client thread knob (the threads that run the callbacks are gRPC's own), so it has no tuned-thread row",
            Kind::GrpcCppGeneric => "the same C++ client with `stub=generic`: `grpc::GenericStub` (`ByteBuffer` in and out) with the callback `UnaryCall`, so the payload bytes go out as they are, like every other client here",
            Kind::GrpcGo => "`bench/grpc-go`: grpc-go 1.33 (Debian's golang-google-grpc-dev, built in GOPATH mode), one `ClientConn`, a raw-bytes codec forced on every call, N goroutines calling `conn.Invoke`; Go's default GOMAXPROCS (one per core)",
            Kind::GrpcGo1P => "the same grpc-go client with `procs=1`: `runtime.GOMAXPROCS(1)` first thing in `main`, so Go code runs on one OS thread at a time (threads blocked in system calls aside)",
            Kind::Go => "`bench/go`: `Pool.Send` from N goroutines (bindings/go, cgo); the binding's default caller-driven pool, run by the goroutines waiting in `Send` (leader/follower)",
            Kind::GoPolled => "the same Go client with `pool=polled`: `PoolOptions{LibraryThreads: true, CallbacksInPoll: true}`, the pool on the library's threads, its callbacks run in `jina_net_pool_poll` by the goroutines waiting in `Send` (on a Go thread inside a cgo call, several per poll)",
            Kind::GoThreads => "the same Go client with `pool=threads`: `PoolOptions.LibraryThreads`, the pool on the library's threads, completions through cgo callbacks from them",
            Kind::GoView => "the same Go client with `send=view`: `Pool.SendView`, a response body of 64 KiB or more is lent to the caller's function as a view of the library's buffer (no copy into Go memory, no Go allocation), freed when it returns",
            Kind::Python => "`bench/python/jina_pool_client.py`: `GrpcConnectionPool.send_request` + await, N asyncio tasks, uvloop (as jina's runtimes)",
        };
        let state = match &env.clients[&kind] {
            Ok(_) => String::new(),
            Err(why) => format!(" — **{why}**"),
        };
        let _ = writeln!(out, "- {}: {what}{state}", kind.label());
    }
    let _ = writeln!(
        out,
        "\nThe floor, **best raw tonic**: in every cell (payload × in flight, and every row of the ALL sweep) the \
         better of the two raw tonic clients, {} and {}: for req/s the one with the higher median req/s, for \
         CPU per request the one with the lower median CPU per request (the two picks may differ within a cell; \
         the tables name the one taken, \"1 thread\" or \"{cores} workers\"). Ratios \"÷ best raw tonic\" are taken \
         round by round against the runs of the client picked for that cell. Likewise **best grpc-go**: {} or {}, \
         whichever is better in the cell. gRPC C++ keeps its defaults (no client thread knob).\n",
        Kind::Tonic1T.label(),
        Kind::Tonic.label(),
        Kind::GrpcGo.label(),
        Kind::GrpcGo1P.label()
    );
}

fn f1(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn payload_name(len: usize) -> &'static str {
    if len == SMALL {
        "100 B"
    } else {
        "1 MiB"
    }
}

fn row(out: &mut String, lead: &str, r: &Outcome) {
    match r {
        Ok(r) => {
            let spread = if r.runs > 1 {
                format!("{:.0}–{:.0}", r.min_rps, r.max_rps)
            } else {
                "-".into()
            };
            let _ = writeln!(
                out,
                "| {lead} | {:.0} | {spread} | {} | {} | {} | {:.3} | {:.1} | {} |",
                r.rps(),
                f1(r.p50),
                f1(r.p99),
                f1(r.p999),
                r.cpu_10k(),
                r.maxrss_kib / 1024.0,
                r.n,
            );
        }
        Err(why) => {
            let _ = writeln!(out, "| {lead} | {why} | | | | | | | |");
        }
    }
}

/// `f(a) / f(b)`, taken round by round: the median over the rounds both ran of the ratio of their
/// runs in that round (runs of one round were made minutes apart at most, so the machine's slow
/// swings cancel out). Without common rounds, the ratio of the median runs.
fn ratio(a: &Outcome, b: &Outcome, f: impl Fn(&CellResult) -> f64) -> Option<f64> {
    match (a, b) {
        (Ok(a), Ok(b)) if a.n > 0 && b.n > 0 => {
            let mut per_round: Vec<f64> = a
                .by_round
                .iter()
                .filter_map(|(round, x)| {
                    let (_, y) = b.by_round.iter().find(|(r, _)| r == round)?;
                    let v = f(x) / f(y);
                    (x.n > 0 && y.n > 0 && v.is_finite()).then_some(v)
                })
                .collect();
            if per_round.is_empty() {
                return Some(f(a) / f(b));
            }
            per_round.sort_by(f64::total_cmp);
            let mid = per_round.len() / 2;
            Some(if per_round.len() % 2 == 1 {
                per_round[mid]
            } else {
                (per_round[mid - 1] + per_round[mid]) / 2.0
            })
        }
        _ => None,
    }
}

fn show(r: Option<f64>, target: Option<(f64, bool)>) -> String {
    match r {
        None => "n/a".into(),
        Some(x) => match target {
            // (bound, higher_is_better)
            Some((t, true)) => format!("{x:.2} {}", if x >= t { "✓" } else { "✗" }),
            Some((t, false)) => format!("{x:.2} {}", if x <= t { "✓" } else { "✗" }),
            None => format!("{x:.2}"),
        },
    }
}

/// Whom a ratio is taken against: one client, or, cell by cell, the better of two runs of one client
/// with different thread counts (`pick`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Theirs {
    One(Kind),
    Best { a: Kind, b: Kind, name: &'static str },
}

/// The floor: the better of the two raw tonic clients, cell by cell.
const FLOOR: Theirs = Theirs::Best {
    a: Kind::Tonic,
    b: Kind::Tonic1T,
    name: "best raw tonic",
};

/// grpc-go with its default GOMAXPROCS or with GOMAXPROCS=1, the better in each cell.
const BEST_GRPC_GO: Theirs = Theirs::Best {
    a: Kind::GrpcGo,
    b: Kind::GrpcGo1P,
    name: "best grpc-go",
};

impl Theirs {
    fn label(self) -> &'static str {
        match self {
            Theirs::One(k) => k.label(),
            Theirs::Best { name, .. } => name,
        }
    }
}

/// Which of a `Theirs::Best` pair was taken, as the tables name it.
fn variant_name(kind: Kind) -> String {
    match kind {
        Kind::Tonic => format!(
            "{} workers",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        Kind::Tonic1T => "1 thread".into(),
        Kind::GrpcGo => "GOMAXPROCS default".into(),
        Kind::GrpcGo1P => "GOMAXPROCS=1".into(),
        k => k.key().into(),
    }
}

/// The better of two outcomes of one cell: by req/s (`cpu` false) the higher median req/s, by CPU the
/// lower median CPU per request; with one of them failed, the other; `None` when both failed.
fn better<'a>(a: (Kind, &'a Outcome), b: (Kind, &'a Outcome), cpu: bool) -> Option<(Kind, &'a Agg)> {
    match (a.1, b.1) {
        (Ok(x), Ok(y)) => {
            let a_wins = if cpu {
                x.cpu_10k() <= y.cpu_10k()
            } else {
                x.rps() >= y.rps()
            };
            Some(if a_wins { (a.0, x) } else { (b.0, y) })
        }
        (Ok(x), Err(_)) => Some((a.0, x)),
        (Err(_), Ok(y)) => Some((b.0, y)),
        (Err(_), Err(_)) => None,
    }
}

type Results = BTreeMap<(usize, usize, Kind), Outcome>;

fn get(results: &Results, p: usize, n: usize, k: Kind) -> Outcome {
    results
        .get(&(p, n, k))
        .cloned()
        .unwrap_or_else(|| Err("not run".into()))
}

/// `theirs` in one cell: for a `Best` pair the one picked by req/s (`cpu` false) or by CPU per
/// request (`cpu` true), and which that was.
fn pick(results: &Results, p: usize, n: usize, theirs: Theirs, cpu: bool) -> (Outcome, Option<Kind>) {
    match theirs {
        Theirs::One(k) => (get(results, p, n, k), None),
        Theirs::Best { a, b, .. } => {
            let (x, y) = (get(results, p, n, a), get(results, p, n, b));
            match better((a, &x), (b, &y), cpu) {
                Some((k, agg)) => (Ok(agg.clone()), Some(k)),
                None => (x, None),
            }
        }
    }
}

/// `ours ÷ theirs` in one cell, round by round: req/s (`cpu` false) or CPU per request (`cpu` true,
/// so below 1 means ours is cheaper); and which of a `Best` pair it was taken against.
fn ratio_to(
    results: &Results,
    p: usize,
    n: usize,
    ours: Kind,
    theirs: Theirs,
    cpu: bool,
) -> (Option<f64>, Option<Kind>) {
    let (t, which) = pick(results, p, n, theirs, cpu);
    let f = if cpu { CellResult::cpu_10k } else { CellResult::rps };
    (ratio(&get(results, p, n, ours), &t, f), which)
}

/// A target of the issue over the send-path cells: `ours ÷ theirs` in req/s ≥ `bound`, or in CPU per
/// request ≤ `bound`; over every payload × in-flight cell, or over one payload's.
#[derive(Debug, Clone, Copy)]
struct Goal {
    ours: Kind,
    theirs: Theirs,
    cpu: bool,
    bound: f64,
    /// The payload whose cells it covers; `None`: every payload.
    payload: Option<usize>,
}

impl Goal {
    fn covers(&self, p: usize) -> bool {
        self.payload.is_none_or(|q| q == p)
    }

    fn met(&self, x: f64) -> bool {
        if self.cpu {
            x <= self.bound
        } else {
            x >= self.bound
        }
    }
}

const TABLE_HEAD: &str =
    "req/s (median) | req/s range | p50 µs | p99 µs | p99.9 µs | CPU s / 10k req | peak RSS MiB | requests |";
const TABLE_RULE: &str = "---|---|---|---|---|---|---|---|";

fn send_path(env: &mut Env, out: &mut String) {
    let inflights: &[usize] = if env.quick { &[1, 16] } else { &[1, 16, 256] };
    let mut results: BTreeMap<(usize, usize, Kind), Outcome> = BTreeMap::new();
    for payload in [SMALL, LARGE] {
        for &inflight in inflights {
            if env.quick && payload == LARGE && inflight != 1 {
                continue;
            }
            let duration_ms = if payload == SMALL {
                env.budget.small_ms
            } else {
                env.budget.large_ms
            };
            let specs: Vec<Spec> = KINDS
                .iter()
                .filter(|&&k| !(k == Kind::TonicSameBuild && payload == LARGE))
                .map(|&kind| Spec {
                    kind,
                    payload,
                    inflight,
                    shards: None,
                    duration_ms,
                })
                .collect();
            for (spec, r) in specs.iter().zip(run_group(env, &specs)) {
                results.insert((payload, inflight, spec.kind), r);
            }
        }
    }
    let keys: BTreeSet<(usize, usize)> = results.keys().map(|(p, n, _)| (*p, *n)).collect();

    let _ = writeln!(out, "## Send path: polling ANY, one echo worker\n");
    side_by_side(out, &results, &keys);
    match write_chart(env, &results) {
        Ok(path) => {
            let _ = writeln!(
                out,
                "Chart of the 100 B rows (req/s and p50 against in flight, one line per client): `{}`; \
                 BENCHMARKS.md shows the committed copy `bench/results/chart.svg`.\n",
                path.strip_prefix(&env.root).unwrap_or(&path).display()
            );
        }
        Err(e) => env.failures.push(format!("chart: {e}")),
    }

    // The targets (#23) and the ones kept from before, cell by cell.
    let goal = |ours, theirs, cpu, bound, payload| Goal {
        ours,
        theirs,
        cpu,
        bound,
        payload,
    };
    let grpc_cpp = Theirs::One(Kind::GrpcCpp);
    let goals: Vec<(&str, Goal)> = vec![
        (
            "C ABI, caller-driven, 100 B",
            goal(Kind::CDriven, FLOOR, false, 0.95, Some(SMALL)),
        ),
        (
            "C ABI, caller-driven, 100 B",
            goal(Kind::CDriven, FLOOR, true, 1.05, Some(SMALL)),
        ),
        (
            "C ABI, caller-driven, 1 MiB: no slower",
            goal(Kind::CDriven, FLOOR, false, 1.0, Some(LARGE)),
        ),
        (
            "C ABI, caller-driven, resend in callback",
            goal(Kind::CDrivenChained, FLOOR, false, 0.95, None),
        ),
        (
            "C ABI, caller-driven, owned buffers",
            goal(Kind::CDrivenOwned, FLOOR, false, 0.95, None),
        ),
        (
            "C ABI + callbacks (library threads, default size) ahead of gRPC C++",
            goal(Kind::CAbi, grpc_cpp, false, 1.0, None),
        ),
        (
            "C ABI + callbacks (library threads, default size) ahead of grpc-go",
            goal(Kind::CAbi, BEST_GRPC_GO, false, 1.0, None),
        ),
        (
            "C ABI, library threads, callbacks in poll, ahead of gRPC C++",
            goal(Kind::CPolled, grpc_cpp, false, 1.0, None),
        ),
        (
            "C ABI, library threads, callbacks in poll, ahead of grpc-go",
            goal(Kind::CPolled, BEST_GRPC_GO, false, 1.0, None),
        ),
        (
            "C ABI, resend in callback (library threads) ahead of gRPC C++",
            goal(Kind::CChained, grpc_cpp, false, 1.0, None),
        ),
        (
            "C ABI, caller-driven, ahead of gRPC C++",
            goal(Kind::CDriven, grpc_cpp, false, 1.0, None),
        ),
        (
            "Go binding ahead of grpc-go",
            goal(Kind::Go, BEST_GRPC_GO, false, 1.0, None),
        ),
        (
            "Go binding, library threads, callbacks in poll, ahead of grpc-go",
            goal(Kind::GoPolled, BEST_GRPC_GO, false, 1.0, None),
        ),
        (
            "Go binding, SendView, ahead of grpc-go",
            goal(Kind::GoView, BEST_GRPC_GO, false, 1.0, None),
        ),
    ];
    for (what, g) in &goals {
        let v: Vec<(usize, usize, f64, Option<Kind>)> = keys
            .iter()
            .filter(|&&(p, _)| g.covers(p))
            .filter_map(|&(p, n)| {
                let (r, which) = ratio_to(&results, p, n, g.ours, g.theirs, g.cpu);
                r.map(|r| (p, n, r, which))
            })
            .collect();
        let met = v.iter().filter(|&&(_, _, x, _)| g.met(x)).count();
        let at = |&(p, n, x, which): &(usize, usize, f64, Option<Kind>)| {
            format!(
                "{} × {n}: {x:.2}{}",
                payload_name(p),
                which.map_or(String::new(), |k| format!(" ({})", variant_name(k)))
            )
        };
        let missed: Vec<String> = v.iter().filter(|c| !g.met(c.2)).map(at).collect();
        let (metric, how) = if g.cpu {
            (
                "client CPU per request",
                format!("{} ÷ {} ≤ {}", g.ours.label(), g.theirs.label(), g.bound),
            )
        } else {
            (
                "req/s",
                format!("{} ÷ {} ≥ {}", g.ours.label(), g.theirs.label(), g.bound),
            )
        };
        env.targets.push(if v.is_empty() {
            format!("{what}, {metric}: n/a")
        } else {
            format!(
                "{what}, {metric} ({how}): {} met in {met} of {} cells{}",
                if met == v.len() { "✓" } else { "✗" },
                v.len(),
                if missed.is_empty() {
                    String::new()
                } else {
                    format!("; missed at {}", missed.join(", "))
                }
            )
        });
    }

    let _ = writeln!(
        out,
        "### Ratios, round by round\n\nThe median over the rounds of ours ÷ theirs in the same round, req/s and client CPU per request \
         (for CPU below 1 means ours is cheaper); against a best-of pair, the run of the variant picked in that cell \
         (named in brackets). ✓/✗: the target of the column.\n"
    );
    // (title, ours, theirs, (req/s bound, CPU bound at 100 B))
    type Col = (&'static str, Kind, Theirs, Option<(f64, f64)>);
    let cols: [Col; 12] = [
        (
            "C ABI caller-driven ÷ best raw tonic",
            Kind::CDriven,
            FLOOR,
            Some((0.95, 1.05)),
        ),
        (
            "C ABI caller-driven resend ÷ best raw tonic",
            Kind::CDrivenChained,
            FLOOR,
            Some((0.95, 1.05)),
        ),
        (
            "C ABI caller-driven owned ÷ best raw tonic",
            Kind::CDrivenOwned,
            FLOOR,
            Some((0.95, 1.05)),
        ),
        ("C ABI ÷ best raw tonic", Kind::CAbi, FLOOR, None),
        (
            "C ABI one worker per core ÷ best raw tonic",
            Kind::CAbiCores,
            FLOOR,
            None,
        ),
        ("C ABI ÷ gRPC C++", Kind::CAbi, grpc_cpp, Some((1.0, f64::INFINITY))),
        (
            "C ABI ÷ best grpc-go",
            Kind::CAbi,
            BEST_GRPC_GO,
            Some((1.0, f64::INFINITY)),
        ),
        (
            "C ABI resend ÷ gRPC C++",
            Kind::CChained,
            grpc_cpp,
            Some((1.0, f64::INFINITY)),
        ),
        (
            "C ABI caller-driven ÷ gRPC C++",
            Kind::CDriven,
            grpc_cpp,
            Some((1.0, f64::INFINITY)),
        ),
        (
            "Go binding ÷ best grpc-go",
            Kind::Go,
            BEST_GRPC_GO,
            Some((1.0, f64::INFINITY)),
        ),
        (
            "Go SendView ÷ best grpc-go",
            Kind::GoView,
            BEST_GRPC_GO,
            Some((1.0, f64::INFINITY)),
        ),
        ("C ABI ÷ jina Python", Kind::CAbi, Theirs::One(Kind::Python), None),
    ];
    let mut head = String::from("| payload | in flight |");
    let mut rule = String::from("|---|---|");
    for (name, ..) in &cols {
        let _ = write!(head, " {name} req/s | CPU/req |");
        rule.push_str("---|---|");
    }
    let _ = writeln!(out, "{head} Rust pool ÷ best raw tonic req/s | Go ÷ C ABI req/s |");
    let _ = writeln!(out, "{rule}---|---|");
    for &(p, n) in &keys {
        let mut line = format!("| {} | {n} |", payload_name(p));
        for &(_, ours, theirs, bounds) in &cols {
            let cell = |cpu: bool| {
                let (r, which) = ratio_to(&results, p, n, ours, theirs, cpu);
                // The CPU bound applies to the 100 B cells only (the target); none where it is infinite.
                let target = bounds.and_then(|(rps, c)| {
                    if !cpu {
                        Some((rps, true))
                    } else {
                        (c.is_finite() && p == SMALL).then_some((c, false))
                    }
                });
                let mut s = show(r, target);
                if let (Some(_), Some(k)) = (r, which) {
                    let _ = write!(s, " ({})", variant_name(k));
                }
                s
            };
            let _ = write!(line, " {} | {} |", cell(false), cell(true));
        }
        let _ = writeln!(
            out,
            "{line} {} | {} |",
            show(ratio_to(&results, p, n, Kind::Pool, FLOOR, false).0, None),
            show(
                ratio_to(&results, p, n, Kind::Go, Theirs::One(Kind::CAbi), false).0,
                None
            ),
        );
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "### Every run's figures (median run of each cell)\n");
    let _ = writeln!(out, "| payload | in flight | client | {TABLE_HEAD}");
    let _ = writeln!(out, "|---|---|---|{TABLE_RULE}");
    for ((p, n, kind), r) in &results {
        row(out, &format!("{} | {n} | {}", payload_name(*p), kind.label()), r);
    }
    let _ = writeln!(out);
}

/// Writes `target/bench/chart.svg`: req/s and p50 against in flight for the 100 B rows, one line
/// per client that has results.
fn write_chart(env: &Env, results: &BTreeMap<(usize, usize, Kind), Outcome>) -> Result<PathBuf, String> {
    let series: Vec<chart::Series> = KINDS
        .iter()
        .filter_map(|&kind| {
            let points: Vec<(usize, f64, f64)> = results
                .iter()
                .filter(|((p, _, k), _)| *p == SMALL && *k == kind)
                .filter_map(|((_, n, _), r)| r.as_ref().ok().map(|a| (*n, a.rps(), a.p50)))
                .collect();
            (!points.is_empty()).then(|| chart::Series {
                label: kind.label().to_owned(),
                points,
                dashed: kind.variant_of().is_some() || kind == Kind::TonicSameBuild,
            })
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let subtitle = format!(
        "100 B requests, polling ANY, one echo worker; median of {} run(s) per cell; {cores} cores; build {}{}",
        env.budget.rounds,
        env.profile_dir.file_name().map_or("?".into(), |n| n.to_string_lossy()),
        if env.quick {
            "; --quick smoke run: numbers not meaningful"
        } else {
            ""
        }
    );
    let path = env.work.join("chart.svg");
    std::fs::write(
        &path,
        chart::svg(
            "libjina_net send path: req/s and p50 against requests in flight",
            &subtitle,
            &series,
        ),
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// One table per payload with every client side by side: req/s, client CPU per request and p50 at
/// each in-flight level (median runs).
fn side_by_side(out: &mut String, results: &BTreeMap<(usize, usize, Kind), Outcome>, keys: &BTreeSet<(usize, usize)>) {
    for payload in [SMALL, LARGE] {
        let levels: Vec<usize> = keys.iter().filter(|(p, _)| *p == payload).map(|(_, n)| *n).collect();
        if levels.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "**{}, every client side by side** (median runs; CPU = client CPU µs per request)\n",
            payload_name(payload)
        );
        let mut head = String::from("| client |");
        let mut rule = String::from("|---|");
        for what in ["req/s", "CPU µs/req", "p50 µs"] {
            for n in &levels {
                let _ = write!(head, " {what} @{n} |");
                rule.push_str("---|");
            }
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for kind in KINDS {
            let Some(cells): Option<Vec<&Outcome>> = levels.iter().map(|&n| results.get(&(payload, n, kind))).collect()
            else {
                continue;
            };
            let mut line = format!("| {} |", kind.label());
            if let Some(Err(why)) = cells.iter().find(|c| c.is_err()) {
                if cells.iter().all(|c| c.is_err()) {
                    let _ = writeln!(out, "{line} {why} |{}", " |".repeat(3 * levels.len() - 1));
                    continue;
                }
            }
            let fmt = |c: &Outcome, f: &dyn Fn(&CellResult) -> String| c.as_ref().map_or("-".to_owned(), |a| f(a));
            for c in &cells {
                let _ = write!(line, " {} |", fmt(c, &|a| format!("{:.0}", a.rps())));
            }
            for c in &cells {
                let _ = write!(line, " {} |", fmt(c, &|a| format!("{:.1}", a.cpu_10k() * 100.0)));
            }
            for c in &cells {
                let _ = write!(line, " {} |", fmt(c, &|a| f1(a.p50)));
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
    }
}

fn all_polling(env: &mut Env, out: &mut String) {
    let shard_counts: &[usize] = if env.quick { &[1, 2] } else { &[1, 2, 4, 8] };
    let last = *shard_counts.last().unwrap();
    let mut groups: Vec<(usize, Vec<Kind>)> = vec![(
        1,
        vec![
            Kind::Tonic,
            Kind::Tonic1T,
            Kind::Pool,
            Kind::CAbi,
            Kind::CDriven,
            Kind::GrpcCpp,
            Kind::Go,
            Kind::GrpcGo,
            Kind::Python,
        ],
    )];
    if !env.quick {
        groups.push((
            16,
            vec![Kind::Tonic, Kind::Tonic1T, Kind::CAbi, Kind::CDriven, Kind::GrpcCpp],
        ));
    }
    let _ = writeln!(
        out,
        "## Polling ALL over 1–{last} shards (one echo worker per shard, all in one server process), 100 B\n"
    );
    let _ = writeln!(
        out,
        "A send completes when every shard answered; req/s counts sends. Ratios: this row ÷ the same client's 1-shard row, round by round (median over the rounds).\n"
    );
    let _ = writeln!(
        out,
        "| client | in flight | shards | {TABLE_HEAD} p50 ÷ 1 shard | p99 ÷ 1 shard |"
    );
    let _ = writeln!(out, "|---|---|---|{TABLE_RULE}---|---|");
    let mut summary = Vec::new();
    for (inflight, kinds) in groups {
        let specs: Vec<Spec> = kinds
            .iter()
            .flat_map(|&kind| {
                shard_counts.iter().map(move |&s| Spec {
                    kind,
                    payload: SMALL,
                    inflight,
                    shards: Some(s),
                    duration_ms: 0,
                })
            })
            .map(|mut s| {
                s.duration_ms = env.budget.all_ms;
                s
            })
            .collect();
        let results = run_group(env, &specs);
        for (ki, kind) in kinds.iter().enumerate() {
            let base = results[ki * shard_counts.len()].clone();
            for (si, &s) in shard_counts.iter().enumerate() {
                let r = &results[ki * shard_counts.len() + si];
                let mut line = String::new();
                row(&mut line, &format!("{} | {inflight} | {s}", kind.label()), r);
                let line = line.trim_end().trim_end_matches('|').trim_end().to_owned();
                let _ = writeln!(
                    out,
                    "{line} | {} | {} |",
                    show(ratio(r, &base, |c| c.p50), None),
                    show(ratio(r, &base, |c| c.p99), None)
                );
                if s == last {
                    summary.push((*kind, inflight, ratio(r, &base, |c| c.p50), ratio(r, &base, |c| c.p99)));
                }
            }
        }
    }
    for (kind, n, p50, p99) in &summary {
        if *kind == Kind::CAbi {
            let tonic = |which: Kind| {
                summary
                    .iter()
                    .find(|(k, m, _, _)| *k == which && m == n)
                    .and_then(|(_, _, f, _)| *f)
            };
            env.targets.push(format!(
                "ALL over {last} shards ≤ 1.2× one shard (C ABI, {n} in flight, p50): {} (p99: {}; raw tonic p50, one worker per core: {}, 1 thread: {})",
                show(*p50, Some((1.2, false))),
                show(*p99, None),
                show(tonic(Kind::Tonic), None),
                show(tonic(Kind::Tonic1T), None)
            ));
        }
    }
    let _ = writeln!(out, "\n### ALL-{last} ÷ ALL-1 latency (target ≤ 1.2)\n");
    let _ = writeln!(out, "| client | in flight | p50 ratio | p99 ratio |");
    let _ = writeln!(out, "|---|---|---|---|");
    for (kind, n, p50, p99) in summary {
        let _ = writeln!(
            out,
            "| {} | {n} | {} | {} |",
            kind.label(),
            show(p50, Some((1.2, false))),
            show(p99, Some((1.2, false)))
        );
    }
    let _ = writeln!(out);
}

fn pool_scale(env: &mut Env, out: &mut String) {
    let sizes: &[u64] = if env.quick { &[100] } else { &[1_000, 10_000] };
    let _ = writeln!(
        out,
        "## Pool scale: N idle replicas in one shard (lazy channels, nothing sent; target ≤ 30 KiB per idle replica)\n"
    );
    let _ = writeln!(
        out,
        "| pool | replicas | time to add all (ms) | µs per add | RSS growth MiB | KiB per idle replica | route ns (round robin pick) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for kind in [Kind::Pool, Kind::Python] {
        for &n in sizes {
            let label = format!("{} scale replicas={n}", kind.key());
            let prefix = match env.clients[&kind].clone() {
                Ok(p) => p,
                Err(why) => {
                    let _ = writeln!(out, "| {} | {n} | {why} | | | | |", kind.label());
                    continue;
                }
            };
            eprintln!("[bench] {label}");
            let routes = if kind == Kind::Pool { 1_000_000 } else { 100_000 };
            let mut cmd = if kind == Kind::Pool {
                let mut c = Command::new(&env.self_exe);
                c.arg("scale");
                c
            } else {
                let mut c = Command::new(&prefix[0]);
                c.args(&prefix[1..]).arg("mode=scale");
                c
            };
            cmd.arg(format!("replicas={n}")).arg(format!("routes={routes}"));
            match run_client(env, &label, cmd, Duration::from_secs(120)) {
                Ok(f) => {
                    let add = num(&f, "add_s");
                    let growth = num(&f, "rss_after_kib") - num(&f, "rss_before_kib");
                    let per = num(&f, "per_replica_kib");
                    let mark = if per <= 30.0 { "✓" } else { "✗" };
                    if kind == Kind::Pool {
                        env.targets
                            .push(format!("≤ 30 KiB per idle replica ({n} replicas): {per:.1} KiB {mark}"));
                    }
                    let _ = writeln!(
                        out,
                        "| {} | {n} | {:.1} | {:.1} | {:.1} | {:.1} {} | {:.0} |",
                        kind.label(),
                        add * 1e3,
                        add * 1e6 / n as f64,
                        growth / 1024.0,
                        per,
                        if kind == Kind::Pool { mark } else { "" },
                        num(&f, "route_ns")
                    );
                }
                Err(e) => {
                    env.failures.push(format!("{label}: {e}"));
                    let _ = writeln!(out, "| {} | {n} | failed: {e} | | | | |", kind.label());
                }
            }
        }
    }
    let _ = writeln!(out);
    let _ = std::io::stdout().flush();
}

/// `--callgrind`: user-space instructions per request of the Rust and C clients (valgrind
/// --tool=callgrind), free of the scheduling noise of CPU times: each client sends 1000 and then 3000
/// requests (100 B, one in flight, no warm-up) and the difference is divided by 2000, so start-up and
/// connection set-up cancel out. Kernel time (syscalls, wake-ups) is not counted.
fn instructions(env: &mut Env, out: &mut String) {
    let _ = writeln!(
        out,
        "## User-space instructions per request (callgrind; 100 B, one in flight)\n"
    );
    if which("valgrind").is_none() {
        let _ = writeln!(out, "n/a (valgrind not installed)\n");
        return;
    }
    let _ = writeln!(out, "| client | instructions / request | ÷ best raw tonic |");
    let _ = writeln!(out, "|---|---|---|");
    // (client, instructions per request or why not); the floor: the fewer of the two raw tonic clients'.
    let mut rows: Vec<(Kind, Result<f64, String>)> = Vec::new();
    for kind in [
        Kind::Tonic,
        Kind::Tonic1T,
        Kind::TonicSameBuild,
        Kind::Pool,
        Kind::CAbi,
        Kind::CChained,
        Kind::CDriven,
        Kind::CDrivenChained,
        Kind::GrpcCpp,
    ] {
        let prefix = match env.clients[&kind].clone() {
            Ok(p) => p,
            Err(why) => {
                rows.push((kind, Err(why)));
                continue;
            }
        };
        let mut counts = Vec::new();
        for n in [1000u64, 3000] {
            eprintln!("[bench] callgrind {} n={n}", kind.key());
            let collected = Servers::start(&env.server, 1).and_then(|servers| {
                let result = Command::new("valgrind")
                    .arg("--tool=callgrind")
                    .arg(format!(
                        "--callgrind-out-file={}",
                        env.work.join(format!("callgrind.{}.{n}.out", kind.key())).display()
                    ))
                    .args(&prefix)
                    .arg("mode=send")
                    .arg(format!("addrs={}", servers.addresses[0]))
                    .arg("polling=any")
                    .arg(format!("payload={}", env.work.join("payload-100B.bin").display()))
                    .args(["inflight=1", "warmup_ms=0", "duration_ms=600000"])
                    .arg(format!("max_requests={n}"))
                    .env("LD_LIBRARY_PATH", &env.profile_dir)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("valgrind: {e}"))?;
                let stderr = String::from_utf8_lossy(&result.stderr);
                let _ = writeln!(env.raw, "## callgrind {} n={n}\n{}", kind.key(), stderr);
                stderr
                    .lines()
                    .find_map(|l| l.split("Collected : ").nth(1))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|_| result.status.success())
                    .ok_or_else(|| "callgrind gave no count".to_owned())
            });
            match collected {
                Ok(c) => counts.push(c),
                Err(e) => {
                    env.failures.push(format!("callgrind {}: {e}", kind.key()));
                    break;
                }
            }
        }
        rows.push((
            kind,
            match counts[..] {
                [a, b] => Ok((b - a) / 2000.0),
                _ => Err("failed".into()),
            },
        ));
    }
    let floor = rows
        .iter()
        .filter(|(k, _)| matches!(k, Kind::Tonic | Kind::Tonic1T))
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .reduce(f64::min);
    for (kind, r) in &rows {
        match (r, floor) {
            (Ok(per), Some(base)) => {
                if matches!(kind, Kind::CAbi | Kind::CDriven) {
                    env.targets.push(format!(
                        "user-space instructions per request (callgrind, 100 B, 1 in flight), {} ÷ best raw tonic: {:.2} ({per:.0} vs {base:.0})",
                        kind.label(),
                        per / base
                    ));
                }
                let _ = writeln!(out, "| {} | {per:.0} | {:.2} |", kind.label(), per / base);
            }
            (Ok(per), None) => {
                let _ = writeln!(out, "| {} | {per:.0} | n/a |", kind.label());
            }
            (Err(why), _) => {
                let _ = writeln!(out, "| {} | {why} | |", kind.label());
            }
        }
    }
    let _ = writeln!(out);
}
