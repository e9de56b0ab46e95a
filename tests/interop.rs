//! Interop with real jina 3.1.0 heads and workers, driven through the C ABI.
//!
//! Run by `tests/interop/run.sh`, which creates (once, cached) a Python venv with jina 3.1.0 and sets
//! `JINA_NET_INTEROP_PYTHON` to its interpreter. Without that variable (plain `cargo test`) every test
//! here returns at once and says so on stderr.
//!
//! Each test starts the Python runtimes it needs as child processes (`tests/interop/launcher.py`:
//! 127.0.0.1 only, free ports, killed by a Drop guard), then talks to them only through the
//! `extern "C"` functions of `jina_net::ffi`, with requests built from the prost types a gateway
//! would send. The last test replays the same scenario through jina's own `GrpcConnectionPool`
//! (`tests/interop/pool_compare.py`) and compares the response bytes.

use std::ffi::CStr;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jina_net::ffi::args::{jina_net_bytes, JINA_NET_NO_SHARD};
use jina_net::ffi::oneshot::*;
use jina_net::ffi::pool::*;
use jina_net::ffi::pool_options::{jina_net_compression, jina_net_pool_options, jina_net_pool_options_init};
use jina_net::ffi::ready::jina_net_pool_wait_ready;
use jina_net::ffi::response::*;
use jina_net::ffi::result::jina_net_result::{self, *};
use jina_net::ffi::routes::jina_net_pool_routes;
use jina_net::ffi::send::*;
use jina_net::ffi::send_ex::jina_net_pool_send_ex;
use jina_net::ffi::send_options::{jina_net_send_options, jina_net_send_options_init};
use jina_net::proto::docarray::{document_proto::Content, DocumentArrayProto, DocumentProto};
use jina_net::proto::jina::data_request_proto::{data_content_proto::Documents, DataContentProto};
use jina_net::proto::{Command as ControlCommand, ControlRequestProto, DataRequestProto, HeaderProto, StatusCode};
use prost::Message;

mod common;
use common::c_abi::*;

const DATA: u32 = 0;
const CONTROL: u32 = 1;
const ANY: u32 = 0;
const ALL: u32 = 1;

// ---------------------------------------------------------------------------------------------
// The environment: the venv's Python, the launcher, a scratch directory.
// ---------------------------------------------------------------------------------------------

/// Prints straight to the process's stderr (not captured by the test harness).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

struct Env {
    python: PathBuf,
    scripts: PathBuf,
    scratch: PathBuf,
}

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

impl Env {
    /// `None` (after saying so) when `JINA_NET_INTEROP_PYTHON` is unset: plain `cargo test`.
    fn get(test: &str) -> Option<Env> {
        let python = match std::env::var_os("JINA_NET_INTEROP_PYTHON") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                say(&format!(
                    "interop::{test}: skipped: run tests/interop/run.sh (JINA_NET_INTEROP_PYTHON is unset)"
                ));
                return None;
            }
        };
        assert!(
            python.exists(),
            "JINA_NET_INTEROP_PYTHON={} does not exist: the interop venv is broken (rerun tests/interop/run.sh)",
            python.display()
        );
        let scratch = std::env::temp_dir().join(format!(
            "jina-net-interop-{}-{}-{test}",
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&scratch).unwrap();
        Some(Env {
            python,
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop"),
            scratch,
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            say(&format!(
                "interop: logs of the failed test kept in {}",
                self.scratch.display()
            ));
        } else if std::env::var_os("JINA_NET_INTEROP_KEEP").is_some() {
            say(&format!(
                "interop: logs kept in {} (JINA_NET_INTEROP_KEEP)",
                self.scratch.display()
            ));
        } else {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

macro_rules! interop_env {
    ($name:literal) => {
        match Env::get($name) {
            Some(env) => env,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Real jina runtimes as child processes.
// ---------------------------------------------------------------------------------------------

/// What to start: `launcher.py <role> --name <name> <args...>` (the port is chosen here).
#[derive(Clone)]
struct Spec {
    role: &'static str,
    name: String,
    args: Vec<String>,
}

fn worker(name: &str) -> Spec {
    Spec {
        role: "worker",
        name: name.into(),
        args: vec![],
    }
}

fn shard_worker(name: &str, shard: u32, shards: u32) -> Spec {
    Spec {
        role: "worker",
        name: name.into(),
        args: vec![
            "--shard-id".into(),
            shard.to_string(),
            "--shards".into(),
            shards.to_string(),
        ],
    }
}

fn raiser(name: &str) -> Spec {
    Spec {
        role: "worker",
        name: name.into(),
        args: vec!["--uses".into(), "Raiser".into()],
    }
}

/// A worker whose executor computes for 9 s on `/sleep` (a synchronous method).
fn sleeper(name: &str) -> Spec {
    Spec {
        role: "worker",
        name: name.into(),
        args: vec!["--uses".into(), "Sleeper".into()],
    }
}

/// A head whose ACTIVATE registers workers into deployment `worker` (jina's default).
fn head(name: &str, polling: &str) -> Spec {
    Spec {
        role: "head",
        name: name.into(),
        args: vec!["--polling".into(), polling.into()],
    }
}

/// A running jina runtime; killed (and reaped) when dropped.
struct Runtime {
    child: Child,
    name: String,
    port: u16,
    log: PathBuf,
}

impl Runtime {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 127.0.0.1 port free now that this process never handed out before. The kernel may give a port
/// it just gave again; two runtimes started at once then both listened on it (grpc's servers bind
/// with SO_REUSEPORT) and shared its connections.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A 127.0.0.1 port nothing listens on (bound, then released): a replica that was never started.
fn never_port() -> u16 {
    free_port()
}

fn spawn(env: &Env, spec: &Spec, attempt: u32) -> Runtime {
    let port = free_port();
    let log = env.scratch.join(format!("{}-{attempt}.log", spec.name));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(&env.python)
        .arg(env.scripts.join("launcher.py"))
        .arg(spec.role)
        .args(["--port", &port.to_string(), "--name", &spec.name])
        .args(&spec.args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (is the interop venv broken?)", env.python.display()));
    Runtime {
        child,
        name: spec.name.clone(),
        port,
        log,
    }
}

/// Loopback addresses as /proc/net/tcp{,6} writes them (127.0.0.1 and ::ffff:127.0.0.1).
const LOOPBACK_HEX: [&str; 2] = ["0100007F", "0000000000000000FFFF00000100007F"];

/// The local addresses (hex, as in /proc/net/tcp{,6}) of sockets listening on `port`.
fn listening_on(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != "0A" {
                continue;
            }
            if let Some((addr, p)) = cols[1].split_once(':') {
                if u16::from_str_radix(p, 16).ok() == Some(port) {
                    found.push(addr.to_owned());
                }
            }
        }
    }
    found
}

/// The local ports of the established TCP connections to `port` on this machine.
fn connections_to(port: u16) -> Vec<u16> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != "01" {
                continue;
            }
            let port_of = |c: &str| c.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if port_of(cols[2]) == Some(port) {
                found.extend(port_of(cols[1]));
            }
        }
    }
    found.sort_unstable();
    found
}

/// Waits until the runtime accepts connections. `Err(true)` = the process exited (e.g. the port was
/// taken meanwhile: try again), `Err(false)` = timeout.
fn wait_ready(rt: &mut Runtime, timeout: Duration) -> Result<(), bool> {
    let deadline = Instant::now() + timeout;
    let addr: SocketAddr = rt.addr().parse().unwrap();
    loop {
        if let Ok(Some(_)) = rt.child.try_wait() {
            return Err(true);
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // The process must still be ours and alive (not some other listener on a reused port).
            if let Ok(Some(_)) = rt.child.try_wait() {
                return Err(true);
            }
            let listening = listening_on(rt.port);
            assert!(
                listening.iter().all(|a| LOOPBACK_HEX.contains(&a.as_str())),
                "{} listens on a non-loopback address: {listening:?}",
                rt.name
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts every runtime at once, then waits for each (up to 60 s); a runtime that exits before it
/// accepts connections is started again on another port (up to 3 attempts).
fn start(env: &Env, specs: &[Spec]) -> Vec<Runtime> {
    let t0 = Instant::now();
    let mut runtimes: Vec<Runtime> = specs.iter().map(|s| spawn(env, s, 1)).collect();
    for (i, spec) in specs.iter().enumerate() {
        let mut attempt = 1;
        loop {
            match wait_ready(&mut runtimes[i], Duration::from_secs(60)) {
                Ok(()) => break,
                Err(exited) => {
                    let rt = &runtimes[i];
                    if !exited || attempt == 3 {
                        panic!(
                            "jina runtime {} on {} did not come up ({}); its log:\n{}",
                            rt.name,
                            rt.addr(),
                            if exited { "it exited" } else { "timeout" },
                            rt.log_tail()
                        );
                    }
                    attempt += 1;
                    runtimes[i] = spawn(env, spec, attempt);
                }
            }
        }
    }
    say(&format!(
        "interop: started {} in {:.1} s",
        runtimes
            .iter()
            .map(|r| format!("{}@{}", r.name, r.port))
            .collect::<Vec<_>>()
            .join(", "),
        t0.elapsed().as_secs_f64()
    ));
    runtimes
}

// ---------------------------------------------------------------------------------------------
// Requests, as a gateway builds them.
// ---------------------------------------------------------------------------------------------

/// A DataRequestProto with `docs` (each: id, text "x") and `header.exec_endpoint`.
fn data_request(id: &str, exec_endpoint: &str, docs: &[&str]) -> Vec<u8> {
    DataRequestProto {
        header: Some(HeaderProto {
            request_id: id.to_owned(),
            exec_endpoint: Some(exec_endpoint.to_owned()),
            ..Default::default()
        }),
        data: Some(DataContentProto {
            documents: Some(Documents::Docs(DocumentArrayProto {
                docs: docs
                    .iter()
                    .map(|d| DocumentProto {
                        id: (*d).to_owned(),
                        content: Some(Content::Text("x".into())),
                        ..Default::default()
                    })
                    .collect(),
            })),
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn control_request(id: &str, command: ControlCommand) -> Vec<u8> {
    ControlRequestProto {
        header: Some(HeaderProto {
            request_id: id.to_owned(),
            ..Default::default()
        }),
        command: command as i32,
        related_entities: vec![],
    }
    .encode_to_vec()
}

fn decode(body: &[u8]) -> DataRequestProto {
    DataRequestProto::decode(body).expect("response is a DataRequestProto")
}

/// (id, text, tags["by"]) of each doc of a response.
fn docs(body: &[u8]) -> Vec<(String, String, Option<String>)> {
    let r = decode(body);
    let Some(Documents::Docs(da)) = r.data.and_then(|d| d.documents) else {
        return vec![];
    };
    da.docs
        .into_iter()
        .map(|d| {
            let text = match d.content {
                Some(Content::Text(t)) => t,
                _ => String::new(),
            };
            let by = d
                .tags
                .and_then(|t| t.fields.get("by").cloned())
                .and_then(|v| match v.kind {
                    Some(prost_types::value::Kind::StringValue(s)) => Some(s),
                    _ => None,
                });
            (d.id, text, by)
        })
        .collect()
}

fn doc_ids(body: &[u8]) -> Vec<String> {
    docs(body).into_iter().map(|d| d.0).collect()
}

/// The workers that answered, from the `from-<name>` docs the Tagger adds.
fn answered_by(body: &[u8]) -> Vec<String> {
    doc_ids(body)
        .into_iter()
        .filter_map(|id| id.strip_prefix("from-").map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The C ABI, with a Condvar-based callback collector (as tests/ffi.rs).
// ---------------------------------------------------------------------------------------------

fn shard_arg(shard: Option<u32>) -> i64 {
    shard.map_or(JINA_NET_NO_SHARD, i64::from)
}

/// A pool, freed on drop.
struct Pool(*mut jina_net_pool);

impl Pool {
    fn new() -> Pool {
        let mut pool = ptr::null_mut();
        assert_eq!(unsafe { jina_net_pool_new(ptr::null(), &mut pool) }, JINA_NET_OK);
        Pool(pool)
    }

    /// A pool with the defaults of `jina_net_pool_options_init` changed by `set`.
    fn with(set: impl FnOnce(&mut jina_net_pool_options)) -> Pool {
        let mut options = unsafe { std::mem::zeroed::<jina_net_pool_options>() };
        assert_eq!(
            unsafe { jina_net_pool_options_init(&mut options, std::mem::size_of::<jina_net_pool_options>()) },
            JINA_NET_OK
        );
        set(&mut options);
        let mut pool = ptr::null_mut();
        assert_eq!(
            unsafe { jina_net_pool_new(&options, &mut pool) },
            JINA_NET_OK,
            "{}",
            last_error()
        );
        Pool(pool)
    }

    /// `jina_net_pool_routes`.
    fn routes(&self) -> String {
        let mut text = ptr::null_mut();
        assert_eq!(unsafe { jina_net_pool_routes(self.0, &mut text) }, JINA_NET_OK);
        let out = unsafe { CStr::from_ptr(text) }.to_str().unwrap().to_owned();
        unsafe { jina_net::ffi::string::jina_net_string_free(text) };
        out
    }

    fn add(&self, deployment: &str, address: &str, head: bool, shard: Option<u32>) {
        let mut added = false;
        let r = unsafe {
            jina_net_pool_add_connection(
                self.0,
                cs(deployment).as_ptr(),
                cs(address).as_ptr(),
                head,
                shard_arg(shard),
                &mut added,
            )
        };
        assert_eq!(r, JINA_NET_OK, "{}", last_error());
    }

    fn remove(&self, deployment: &str, address: &str, head: bool, shard: Option<u32>) {
        let r = unsafe {
            jina_net_pool_remove_connection(
                self.0,
                cs(deployment).as_ptr(),
                cs(address).as_ptr(),
                head,
                shard_arg(shard),
                ptr::null_mut(),
            )
        };
        assert_eq!(r, JINA_NET_OK, "{}", last_error());
    }

    /// `jina_net_pool_send` and wait for its callback.
    fn send(&self, kind: u32, requests: &[Vec<u8>], deployment: &str, to: Route<'_>) -> Completed {
        let Route {
            head,
            shard,
            shards,
            endpoint,
        } = to;
        let c = Collector::default();
        let bufs: Vec<jina_net_bytes> = requests
            .iter()
            .map(|r| jina_net_bytes {
                data: r.as_ptr(),
                len: r.len(),
            })
            .collect();
        let endpoint = endpoint.map(cs);
        let r = unsafe {
            jina_net_pool_send(
                self.0,
                kind,
                bufs.as_ptr(),
                bufs.len(),
                cs(deployment).as_ptr(),
                head,
                shard_arg(shard),
                shards,
                endpoint.as_ref().map_or(ptr::null(), |e| e.as_ptr()),
                30_000,
                Some(collect),
                c.ud(),
                ptr::null_mut(),
            )
        };
        assert_eq!(r, JINA_NET_OK, "jina_net_pool_send: {}", last_error());
        c.wait(1).remove(0)
    }

    /// `jina_net_pool_send_ex` of one data request with request metadata, waited for.
    fn data_with_metadata(&self, request: &[u8], deployment: &str, metadata: &[(&str, &[u8])]) -> Completed {
        let c = Collector::default();
        let keys: Vec<_> = metadata.iter().map(|(k, _)| cs(k)).collect();
        let entries: Vec<jina_net::ffi::metadata::jina_net_metadata> = metadata
            .iter()
            .zip(&keys)
            .map(|((_, v), k)| jina_net::ffi::metadata::jina_net_metadata {
                key: k.as_ptr(),
                value: v.as_ptr(),
                value_len: v.len(),
            })
            .collect();
        let mut so = unsafe { std::mem::zeroed::<jina_net_send_options>() };
        assert_eq!(
            unsafe { jina_net_send_options_init(&mut so, std::mem::size_of::<jina_net_send_options>()) },
            JINA_NET_OK
        );
        so.metadata = entries.as_ptr();
        so.metadata_len = entries.len();
        so.timeout_ms = 30_000;
        let b = jina_net_bytes {
            data: request.as_ptr(),
            len: request.len(),
        };
        let r = unsafe {
            jina_net_pool_send_ex(
                self.0,
                &b,
                1,
                cs(deployment).as_ptr(),
                &so,
                Some(collect),
                c.ud(),
                ptr::null_mut(),
            )
        };
        assert_eq!(r, JINA_NET_OK, "jina_net_pool_send_ex: {}", last_error());
        c.wait(1).remove(0)
    }

    /// One data request to a deployment's shards (ANY, rotating) or its head.
    fn data(&self, request: &[u8], deployment: &str, head: bool, endpoint: Option<&str>) -> Completed {
        self.send(
            DATA,
            &[request.to_vec()],
            deployment,
            Route {
                head,
                shard: None,
                shards: ANY,
                endpoint,
            },
        )
    }
}

/// Where `Pool::send` routes: head, shard, `jina_net_shards`, endpoint.
#[derive(Clone, Copy)]
struct Route<'a> {
    head: bool,
    shard: Option<u32>,
    shards: u32,
    endpoint: Option<&'a str>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        unsafe { jina_net_pool_free(self.0) };
    }
}

/// A response owned by C, copied out.
#[derive(Debug, Clone)]
struct Owned {
    body: Vec<u8>,
    address: String,
    metadata: Vec<(String, Vec<u8>)>,
}

impl Owned {
    /// Copies everything out of a `jina_net_response` through its accessors, and frees it.
    fn take(resp: *mut jina_net_response) -> Owned {
        unsafe {
            let (mut d, mut l) = (ptr::null(), 0usize);
            assert_eq!(jina_net_response_body(resp, &mut d, &mut l), JINA_NET_OK);
            let body = std::slice::from_raw_parts(d, l).to_vec();
            let address = s(jina_net_response_address(resp));
            let n = jina_net_response_metadata_count(resp);
            let mut metadata = Vec::new();
            for i in 0..n {
                let (mut k, mut v, mut vl) = (ptr::null(), ptr::null(), 0usize);
                assert_eq!(
                    jina_net_response_metadata(resp, i, &mut k, &mut v, &mut vl),
                    JINA_NET_OK
                );
                metadata.push((s(k), std::slice::from_raw_parts(v, vl).to_vec()));
            }
            jina_net_response_free(resp);
            Owned {
                body,
                address,
                metadata,
            }
        }
    }

    fn meta(&self, key: &str) -> Option<String> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

type SyncResult = Result<Owned, (jina_net_result, String)>;

/// `jina_net_send_requests_sync` (one request: process_single_data / process_control; several:
/// process_data).
fn send_sync(kind: u32, requests: &[Vec<u8>], target: &str, endpoint: Option<&str>) -> SyncResult {
    let bufs: Vec<jina_net_bytes> = requests
        .iter()
        .map(|r| jina_net_bytes {
            data: r.as_ptr(),
            len: r.len(),
        })
        .collect();
    let endpoint = endpoint.map(cs);
    let opts = oneshot_options(30_000, endpoint.as_deref());
    let mut resp = ptr::null_mut();
    let r =
        unsafe { jina_net_send_requests_sync(kind, bufs.as_ptr(), bufs.len(), cs(target).as_ptr(), &opts, &mut resp) };
    if r == JINA_NET_OK {
        Ok(Owned::take(resp))
    } else {
        Err((r, last_error()))
    }
}

/// One-shot options from `jina_net_oneshot_options_init`, with a timeout and an endpoint.
fn oneshot_options(timeout_ms: u64, endpoint: Option<&CStr>) -> jina_net_oneshot_options {
    let mut opts = std::mem::MaybeUninit::<jina_net_oneshot_options>::zeroed();
    let opts = unsafe {
        assert_eq!(
            jina_net_oneshot_options_init(opts.as_mut_ptr(), std::mem::size_of::<jina_net_oneshot_options>()),
            JINA_NET_OK
        );
        opts.assume_init()
    };
    jina_net_oneshot_options {
        timeout_ms,
        endpoint: endpoint.map_or(ptr::null(), CStr::as_ptr),
        ..opts
    }
}

/// `jina_net_send_request_sync` with one request.
fn send_one_sync(kind: u32, request: &[u8], target: &str, endpoint: Option<&str>) -> SyncResult {
    let endpoint = endpoint.map(cs);
    let opts = oneshot_options(30_000, endpoint.as_deref());
    let mut resp = ptr::null_mut();
    let r = unsafe {
        jina_net_send_request_sync(
            kind,
            request.as_ptr(),
            request.len(),
            cs(target).as_ptr(),
            &opts,
            &mut resp,
        )
    };
    if r == JINA_NET_OK {
        Ok(Owned::take(resp))
    } else {
        Err((r, last_error()))
    }
}

/// `jina_net_send_request_async` (one attempt, 1 s) and wait for its callback.
fn send_async(kind: u32, request: &[u8], target: &str) -> Completed {
    let c = Collector::default();
    let r = unsafe {
        jina_net_send_request_async(
            kind,
            request.as_ptr(),
            request.len(),
            cs(target).as_ptr(),
            ptr::null(),
            Some(collect),
            c.ud(),
        )
    };
    assert_eq!(r, JINA_NET_OK, "{}", last_error());
    c.wait(1).remove(0)
}

fn activate_sync(port: u16, head: &str, shard: Option<u32>) -> SyncResult {
    let mut resp = ptr::null_mut();
    let r = unsafe {
        jina_net_activate_worker_sync(
            cs("127.0.0.1").as_ptr(),
            port,
            cs(head).as_ptr(),
            30_000,
            shard_arg(shard),
            &mut resp,
        )
    };
    if r == JINA_NET_OK {
        Ok(Owned::take(resp))
    } else {
        Err((r, last_error()))
    }
}

fn deactivate_sync(port: u16, head: &str, shard: Option<u32>) -> SyncResult {
    let mut resp = ptr::null_mut();
    let r = unsafe {
        jina_net_deactivate_worker_sync(
            cs("127.0.0.1").as_ptr(),
            port,
            cs(head).as_ptr(),
            30_000,
            shard_arg(shard),
            &mut resp,
        )
    };
    if r == JINA_NET_OK {
        Ok(Owned::take(resp))
    } else {
        Err((r, last_error()))
    }
}

/// The callback forms (jina's async `activate_worker` / `deactivate_worker`: one attempt, 1 s).
fn activate_async(port: u16, head: &str, shard: Option<u32>, activate: bool) -> Completed {
    let c = Collector::default();
    let f = if activate {
        jina_net_activate_worker
    } else {
        jina_net_deactivate_worker
    };
    let r = unsafe {
        f(
            cs("127.0.0.1").as_ptr(),
            port,
            cs(head).as_ptr(),
            shard_arg(shard),
            Some(collect),
            c.ud(),
        )
    };
    assert_eq!(r, JINA_NET_OK, "{}", last_error());
    c.wait(1).remove(0)
}

fn ok<T>(r: Result<T, (jina_net_result, String)>) -> T {
    match r {
        Ok(v) => v,
        Err((code, message)) => panic!("{code:?}: {message}"),
    }
}

/// Asserts a control echo: same command, one related entity for the worker at `port`.
fn assert_echo(body: &[u8], command: ControlCommand, port: u16, shard: Option<u32>) {
    let echo = ControlRequestProto::decode(body).expect("echo is a ControlRequestProto");
    assert_eq!(echo.command, command as i32);
    assert_eq!(echo.related_entities.len(), 1);
    let e = &echo.related_entities[0];
    assert_eq!(
        (e.id.as_str(), e.address.as_str(), e.port, e.shard_id),
        ("worker", "127.0.0.1", u32::from(port), shard)
    );
    let status = echo.header.unwrap().status.unwrap_or_default();
    assert_eq!(status.code, StatusCode::Success as i32, "{status:?}");
}

/// The gRPC error a head without registered workers answers a data request with.
fn assert_head_refuses(done: &Completed, head_name: &str) {
    assert_eq!(done.status, JINA_NET_RPC_ERROR, "{done:?}");
    let t = &done.targets[0];
    assert_eq!(t.grpc_code, 2, "UNKNOWN expected: {t:?}");
    assert!(
        t.grpc_message
            .contains(&format!("Head {head_name} did not receive a response")),
        "{}",
        t.grpc_message
    );
    assert!(t.error_message.contains("Unknown"), "{}", t.error_message);
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn data_to_a_worker_directly() {
    let env = interop_env!("data_to_a_worker_directly");
    let rts = start(&env, &[worker("w")]);
    let w = &rts[0];
    let pool = Pool::new();
    pool.add("enc", &w.addr(), false, None);

    // process_single_data through the pool
    let done = pool.data(&data_request("r1", "/", &["a", "b"]), "enc", false, None);
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    let t = &done.targets[0];
    assert_eq!((t.grpc_code, t.shard_id, t.head), (0, 0, false));
    assert_eq!(t.address, w.addr());
    assert!(t.error_message.is_empty() && t.grpc_message.is_empty());
    assert_eq!(t.meta("is-error"), None);
    let r = decode(&t.body);
    let header = r.header.clone().unwrap();
    assert_eq!(header.request_id, "r1");
    assert_eq!(header.exec_endpoint.as_deref(), Some("/"));
    assert_eq!(header.status.unwrap_or_default().code, StatusCode::Success as i32);
    assert_eq!(
        docs(&t.body),
        vec![
            ("a".into(), "x|w".into(), Some("w".into())),
            ("b".into(), "x|w".into(), Some("w".into())),
            ("from-w".into(), "w".into(), None),
        ]
    );

    // the blocking one-shot helper and the callback one-shot helper get the same bytes
    let sync = ok(send_one_sync(
        DATA,
        &data_request("r1", "/", &["a", "b"]),
        &w.addr(),
        None,
    ));
    assert_eq!(sync.body, t.body);
    assert_eq!(sync.address, w.addr());
    let asynced = send_async(DATA, &data_request("r1", "/", &["a", "b"]), &w.addr());
    assert_eq!(asynced.status, JINA_NET_OK, "{}", asynced.message);
    assert_eq!(asynced.targets[0].shard_id, -1);
    assert_eq!(asynced.targets[0].body, t.body);

    // the endpoint that the worker dispatches on is header.exec_endpoint
    let count = pool.data(&data_request("r2", "/count", &["a", "b"]), "enc", false, None);
    assert_eq!(docs(&count.ok_body()), vec![("count-w".into(), "2;a,b;2".into(), None)]);
}

#[test]
fn request_metadata_leaves_a_jina_workers_answer_byte_identical() {
    let env = interop_env!("request_metadata_leaves_a_jina_workers_answer_byte_identical");
    let rts = start(&env, &[worker("w")]);
    let pool = Pool::new();
    pool.add("enc", &rts[0].addr(), false, None);
    let request = data_request("md", "/", &["a", "b"]);
    let plain = pool.data_with_metadata(&request, "enc", &[]);
    let trace: &[u8] = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let with = pool.data_with_metadata(
        &request,
        "enc",
        &[
            ("authorization", b"Bearer t0k3n"),
            ("x-request-id", b"r-1"),
            ("traceparent", trace),
            ("trace-bin", &[0, 1, 2, 0xff]),
        ],
    );
    assert_eq!(plain.status, JINA_NET_OK, "{}", plain.message);
    assert_eq!(with.status, JINA_NET_OK, "{}", with.message);
    assert_eq!(with.targets[0].body, plain.targets[0].body, "the same response bytes");
    assert_eq!(
        with.targets[0].metadata, plain.targets[0].metadata,
        "the same trailing metadata"
    );
    assert_eq!(doc_ids(&with.targets[0].body), ["a", "b", "from-w"], "the executor ran");
}

/// A data request with one document of about 1 MiB of text.
fn text_request(id: &str) -> Vec<u8> {
    let words = [
        "jina",
        "serves",
        "documents",
        "through",
        "executors",
        "heads",
        "and",
        "gateways",
    ];
    let mut text = String::with_capacity(1 << 20);
    let mut i = 0usize;
    while text.len() < 1 << 20 {
        text.push_str(words[i % words.len()]);
        text.push(' ');
        i = i.wrapping_mul(31).wrapping_add(7) % 1_000_003;
    }
    DataRequestProto {
        header: Some(HeaderProto {
            request_id: id.to_owned(),
            exec_endpoint: Some("/".into()),
            ..Default::default()
        }),
        data: Some(DataContentProto {
            documents: Some(Documents::Docs(DocumentArrayProto {
                docs: vec![DocumentProto {
                    id: "text".into(),
                    content: Some(Content::Text(text)),
                    ..Default::default()
                }],
            })),
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn a_jina_worker_answers_gzip_and_deflate_requests_with_the_same_documents() {
    let env = interop_env!("a_jina_worker_answers_gzip_and_deflate_requests_with_the_same_documents");
    let rts = start(&env, &[worker("w")]);
    let request = text_request("zipped");
    let plain = Pool::new();
    plain.add("w", &rts[0].addr(), false, None);
    let expected = plain.data_with_metadata(&request, "w", &[]);
    assert_eq!(expected.status, JINA_NET_OK, "{}", expected.message);
    assert_eq!(doc_ids(&expected.targets[0].body), ["text", "from-w"]);
    for compression in [
        jina_net_compression::JINA_NET_COMPRESSION_GZIP,
        jina_net_compression::JINA_NET_COMPRESSION_DEFLATE,
    ] {
        let pool = Pool::with(|o| o.compression = compression as u32);
        pool.add("w", &rts[0].addr(), false, None);
        // warm-up through the C ABI: the replica answers a STATUS probe, and the routes say so
        let r = unsafe { jina_net_pool_wait_ready(pool.0, cs("w").as_ptr(), 30_000) };
        assert_eq!(r, JINA_NET_OK, "{}", last_error());
        let routes = pool.routes();
        assert!(routes.trim_end().ends_with("\tready"), "{routes:?}");
        let got = pool.data_with_metadata(&request, "w", &[]);
        assert_eq!(got.status, JINA_NET_OK, "{compression:?}: {}", got.message);
        assert_eq!(
            got.targets[0].body, expected.targets[0].body,
            "{compression:?}: the same answer, byte for byte"
        );
    }
    // jina's own name of the setting
    let mut code = 0u32;
    let r = unsafe { jina_net::ffi::pool_options::jina_net_compression_from_name(cs("Gzip").as_ptr(), &mut code) };
    assert_eq!(r, JINA_NET_OK);
    assert_eq!(code, jina_net_compression::JINA_NET_COMPRESSION_GZIP as u32);
}

/// One data request to `/sleep` through a pool of the Rust API with these channel and liveness
/// settings: its result.
fn long_call(
    address: &str,
    endpoint: &'static str,
    keepalive: Duration,
    liveness: jina_net::LivenessPolicy,
) -> jina_net::Result<jina_net::Response> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut options = jina_net::PoolOptions::default();
        options.connection.channel.http2_keepalive = Some(jina_net::Http2Keepalive {
            interval: keepalive,
            timeout: Duration::from_secs(20),
        });
        options.connection.liveness = liveness;
        options.retry = jina_net::RetryPolicy::none();
        let pool = jina_net::ConnectionPool::new(options);
        pool.add_connection("sleeper", address, false, None).unwrap();
        let request = jina_net::Request::data(data_request("long", endpoint, &["a"]));
        let options = jina_net::SendOptions {
            endpoint: Some(endpoint),
            ..Default::default()
        };
        let send = pool
            .send_request(request, "sleeper", jina_net::To::AnyShard, &options)
            .unwrap();
        send.await.remove(0).result
    })
}

#[test]
fn a_long_executor_call_is_not_killed_by_the_servers_ping_policy() {
    let env = interop_env!("a_long_executor_call_is_not_killed_by_the_servers_ping_policy");
    let rts = start(&env, &[sleeper("s")]);
    let address = rts[0].addr();
    // HTTP/2 keepalive every 2 s while the call is outstanding (gRPC's server allows a PING every
    // 5 min while it sends nothing, and sends GOAWAY too_many_pings after 2 strikes), with liveness
    // probes after 1 s of silence: each probe is answered at once, which proves the runtime alive
    // and resets the server's strikes, so the 9 s call completes.
    let probes = jina_net::LivenessPolicy {
        probe_after: Some(Duration::from_secs(1)),
        probe_timeout: Duration::from_secs(5),
        fail_over_unanswered: false,
    };
    let started = Instant::now();
    let r = long_call(&address, "/sleep", Duration::from_secs(2), probes).expect("the long call completes");
    assert!(started.elapsed() >= Duration::from_secs(9));
    assert_eq!(doc_ids(&r.body), ["a"]);
    // And with the library's defaults (PINGs every 5 min, probes after 2 s), the call completes too.
    long_call(
        &address,
        "/sleep",
        Duration::from_secs(300),
        jina_net::LivenessPolicy::default(),
    )
    .expect("defaults");
    // The same PINGs without probes: the server counts strikes and ends the connection after the
    // third (what a naive keepalive does to long executor calls), so the probes are what keeps the
    // call alive. A 30 s call (last: the worker stays busy with it), so that the strikes come well before its
    // end even on a busy machine.
    let started = Instant::now();
    let e = long_call(
        &address,
        "/sleep-long",
        Duration::from_secs(2),
        jina_net::LivenessPolicy::off(),
    )
    .expect_err("too_many_pings");
    say(&format!(
        "without probes the connection was closed after {:?}",
        started.elapsed()
    ));
    let message = e.to_string();
    assert!(
        message.contains("Unavailable") && message.contains("Too many pings"),
        "{message}"
    );
}

#[test]
fn an_idle_connection_is_not_killed_by_the_servers_ping_policy() {
    let env = interop_env!("an_idle_connection_is_not_killed_by_the_servers_ping_policy");
    let rts = start(&env, &[worker("w")]);
    let address = rts[0].addr();
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // PINGs every 2 s while calls are outstanding: an idle connection gets none, so the server's
        // strikes never start, and the connection stays up for the next call.
        let mut options = jina_net::PoolOptions::default();
        options.connection.channel.http2_keepalive = Some(jina_net::Http2Keepalive {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(20),
        });
        let pool = jina_net::ConnectionPool::new(options);
        pool.add_connection("w", &address, false, None).unwrap();
        let send = |id: &'static str| {
            let pool = pool.clone();
            async move {
                let request = jina_net::Request::data(data_request(id, "/", &["a"]));
                pool.send_request(request, "w", jina_net::To::AnyShard, &jina_net::SendOptions::default())
                    .unwrap()
                    .await
                    .remove(0)
                    .result
                    .expect("answered")
            }
        };
        send("first").await;
        let before = connections_to(port);
        assert_eq!(before.len(), 1, "one connection to the worker: {before:?}");
        tokio::time::sleep(Duration::from_secs(8)).await; // 4 keepalive intervals, idle
        assert_eq!(connections_to(port), before, "the idle connection is still up");
        send("after-idle").await;
        assert_eq!(connections_to(port), before, "and carries the next call");
    });
}

#[test]
fn status_control_is_echoed_by_workers_and_heads() {
    let env = interop_env!("status_control_is_echoed_by_workers_and_heads");
    let rts = start(&env, &[worker("w"), head("h", "ANY")]);
    let (w, h) = (&rts[0], &rts[1]);
    let pool = Pool::new();
    pool.add("enc", &w.addr(), false, None);
    pool.add("enc", &h.addr(), true, None);

    let status = control_request("status-1", ControlCommand::Status);
    for head in [false, true] {
        let done = pool.send(
            CONTROL,
            std::slice::from_ref(&status),
            "enc",
            Route {
                head,
                shard: None,
                shards: ANY,
                endpoint: None,
            },
        );
        assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
        assert_eq!(done.targets[0].head, head);
        let echo = ControlRequestProto::decode(&done.targets[0].body[..]).unwrap();
        assert_eq!(echo, ControlRequestProto::decode(&status[..]).unwrap());
        assert_eq!(done.targets[0].body, status, "the echo is the request, byte for byte");
    }
    for target in [w.addr(), h.addr()] {
        let echo = ok(send_one_sync(CONTROL, &status, &target, None));
        assert_eq!(echo.body, status);
        // the callback one-shot form
        let done = send_async(CONTROL, &status, &target);
        assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
        assert_eq!(done.targets[0].body, status);
    }

    // a worker refuses ACTIVATE in-band: the echo carries the error
    let activate = control_request("activate-1", ControlCommand::Activate);
    let done = pool.send(
        CONTROL,
        &[activate],
        "enc",
        Route {
            head: false,
            shard: None,
            shards: ANY,
            endpoint: None,
        },
    );
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    let echo = ControlRequestProto::decode(&done.targets[0].body[..]).unwrap();
    let st = echo.header.unwrap().status.unwrap();
    assert_eq!(st.code, StatusCode::Error as i32);
    let ex = st.exception.unwrap();
    assert_eq!(ex.name, "RuntimeError");
    assert_eq!(
        ex.args,
        vec!["WorkerRuntime received unsupported ControlRequest command ACTIVATE".to_owned()]
    );
    assert_eq!(ex.executor, "Tagger");
    assert!(!ex.stacks.is_empty());
}

#[test]
fn activate_route_deactivate_through_a_head() {
    let env = interop_env!("activate_route_deactivate_through_a_head");
    let rts = start(&env, &[head("h", "ANY"), worker("w")]);
    let (h, w) = (&rts[0], &rts[1]);
    let pool = Pool::new();
    pool.add("dep", &h.addr(), true, None);

    // no worker registered yet: the head answers UNKNOWN
    let req = data_request("via-head", "/", &["a"]);
    assert_head_refuses(&pool.data(&req, "dep", true, None), "h");

    // blocking ACTIVATE without a shard id
    let echo = ok(activate_sync(w.port, &h.addr(), None));
    assert_echo(&echo.body, ControlCommand::Activate, w.port, None);
    assert_eq!(echo.address, h.addr());

    // data through the head (pool, head = true) and through the one-shot helper
    let done = pool.data(&req, "dep", true, Some("/index"));
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    assert!(done.targets[0].head);
    assert_eq!(done.targets[0].shard_id, -1);
    assert_eq!(done.targets[0].address, h.addr());
    assert_eq!(answered_by(&done.targets[0].body), ["w"]);
    assert_eq!(decode(&done.targets[0].body).header.unwrap().request_id, "via-head");
    let sync = ok(send_one_sync(DATA, &req, &h.addr(), None));
    assert_eq!(sync.body, done.targets[0].body);

    // DEACTIVATE (callback form), and the head refuses again
    let d = activate_async(w.port, &h.addr(), None, false);
    assert_eq!(d.status, JINA_NET_OK, "{}", d.message);
    assert_echo(&d.targets[0].body, ControlCommand::Deactivate, w.port, None);
    assert_head_refuses(&pool.data(&req, "dep", true, None), "h");
    match send_one_sync(DATA, &req, &h.addr(), None) {
        Err((code, message)) => {
            assert_eq!(code, JINA_NET_RPC_ERROR);
            assert!(message.contains("did not receive a response"), "{message}");
        }
        Ok(o) => panic!("the head answered without workers: {:?}", docs(&o.body)),
    }

    // ACTIVATE again, now with shard 0 and the callback form; DEACTIVATE with the blocking form
    let a = activate_async(w.port, &h.addr(), Some(0), true);
    assert_eq!(a.status, JINA_NET_OK, "{}", a.message);
    assert_echo(&a.targets[0].body, ControlCommand::Activate, w.port, Some(0));
    assert_eq!(answered_by(&pool.data(&req, "dep", true, None).ok_body()), ["w"]);
    let echo = ok(deactivate_sync(w.port, &h.addr(), Some(0)));
    assert_echo(&echo.body, ControlCommand::Deactivate, w.port, Some(0));
    assert_head_refuses(&pool.data(&req, "dep", true, None), "h");
}

#[test]
fn head_with_two_shards_all_merges_any_alternates() {
    let env = interop_env!("head_with_two_shards_all_merges_any_alternates");
    let rts = start(
        &env,
        &[
            shard_worker("s0", 0, 2),
            shard_worker("s1", 1, 2),
            head("hall", "ALL"),
            head("hany", "ANY"),
        ],
    );
    let (s0, s1, hall, hany) = (&rts[0], &rts[1], &rts[2], &rts[3]);
    for h in [hall, hany] {
        ok(activate_sync(s0.port, &h.addr(), Some(0)));
        ok(activate_sync(s1.port, &h.addr(), Some(1)));
    }
    let pool = Pool::new();
    pool.add("all", &hall.addr(), true, None);
    pool.add("any", &hany.addr(), true, None);

    // ALL: both shards answer, the head merges (docs with equal ids are one; left-most shard wins)
    let body = pool
        .data(&data_request("all-1", "/", &["a", "b"]), "all", true, None)
        .ok_body();
    assert_eq!(
        docs(&body),
        vec![
            ("a".into(), "x|s0".into(), Some("s0".into())),
            ("b".into(), "x|s0".into(), Some("s0".into())),
            ("from-s0".into(), "s0".into(), None),
            ("from-s1".into(), "s1".into(), None),
        ]
    );
    assert_eq!(decode(&body).header.unwrap().request_id, "all-1");

    // ANY: one shard per request, alternating (jina bumps its counter first: shard 1 first)
    let seq: Vec<Vec<String>> = (0..4)
        .map(|i| {
            answered_by(
                &pool
                    .data(&data_request(&format!("any-{i}"), "/", &["a"]), "any", true, None)
                    .ok_body(),
            )
        })
        .collect();
    assert_eq!(
        seq,
        [["s1"], ["s0"], ["s1"], ["s0"]],
        "head ANY alternates over the shards"
    );

    // the same routing done by our pool over the two shards directly
    let direct = Pool::new();
    direct.add("shards", &s0.addr(), false, Some(0));
    direct.add("shards", &s1.addr(), false, Some(1));
    let all_shards = Route {
        head: false,
        shard: None,
        shards: ALL,
        endpoint: None,
    };
    let all = direct.send(DATA, &[data_request("d-all", "/", &["a"])], "shards", all_shards);
    assert_eq!(all.status, JINA_NET_OK, "{}", all.message);
    let per_shard: Vec<(i64, Vec<String>)> = all.targets.iter().map(|t| (t.shard_id, answered_by(&t.body))).collect();
    assert_eq!(per_shard, [(0, vec!["s0".to_owned()]), (1, vec!["s1".to_owned()])]);
    let seq: Vec<(i64, Vec<String>)> = (0..4)
        .map(|i| {
            let d = direct.data(&data_request(&format!("d-{i}"), "/", &["a"]), "shards", false, None);
            (d.targets[0].shard_id, answered_by(&d.ok_body()))
        })
        .collect();
    assert_eq!(
        seq,
        [
            (1, vec!["s1".to_owned()]),
            (0, vec!["s0".to_owned()]),
            (1, vec!["s1".to_owned()]),
            (0, vec!["s0".to_owned()])
        ]
    );
    let shard_1 = Route {
        head: false,
        shard: Some(1),
        shards: ANY,
        endpoint: None,
    };
    let one = direct.send(DATA, &[data_request("d-s1", "/", &["a"])], "shards", shard_1);
    assert_eq!(answered_by(&one.ok_body()), ["s1"]);
}

#[test]
fn executor_errors_come_back_in_band() {
    let env = interop_env!("executor_errors_come_back_in_band");
    let rts = start(&env, &[raiser("rz"), head("h", "ANY")]);
    let (rz, h) = (&rts[0], &rts[1]);
    let check = |body: &[u8]| {
        let r = decode(body);
        let header = r.header.unwrap();
        assert_eq!(header.request_id, "err-1");
        let st = header.status.expect("status set");
        assert_eq!(st.code, StatusCode::Error as i32);
        assert_eq!(st.code, 3);
        assert_eq!(st.description, "ValueError('boom from rz', 42)");
        let ex = st.exception.expect("exception filled");
        assert_eq!(ex.name, "ValueError");
        assert_eq!(ex.args, ["boom from rz", "42"]);
        assert_eq!(ex.executor, "Raiser");
        assert!(
            ex.stacks.first().is_some_and(|s| s.starts_with("Traceback")),
            "{:?}",
            ex.stacks
        );
        assert!(ex.stacks.iter().any(|s| s.contains("executors.py")), "{:?}", ex.stacks);
        // the request comes back with its docs untouched
        assert_eq!(docs(body), vec![("a".into(), "x".into(), None)]);
    };
    let req = data_request("err-1", "/", &["a"]);
    let pool = Pool::new();
    pool.add("rz", &rz.addr(), false, None);
    let done = pool.data(&req, "rz", false, None);
    // gRPC OK: the error is in the body and the `is-error` trailer, both surfaced to C
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    assert_eq!(done.targets[0].grpc_code, 0);
    assert_eq!(done.targets[0].meta("is-error").as_deref(), Some("true"));
    check(&done.targets[0].body);

    let sync = ok(send_one_sync(DATA, &req, &rz.addr(), None));
    assert_eq!(sync.meta("is-error").as_deref(), Some("true"), "{:?}", sync.metadata);
    check(&sync.body);

    // through a head: the head forwards the worker's trailer
    ok(activate_sync(rz.port, &h.addr(), None));
    pool.add("rz", &h.addr(), true, None);
    let done = pool.data(&req, "rz", true, None);
    assert_eq!(done.status, JINA_NET_OK, "{}", done.message);
    assert_eq!(done.targets[0].meta("is-error").as_deref(), Some("true"));
    check(&done.targets[0].body);
}

#[test]
fn a_dead_replica_next_to_a_live_one() {
    let env = interop_env!("a_dead_replica_next_to_a_live_one");
    let mut rts = start(&env, &[worker("w"), worker("gone"), head("h", "ANY")]);
    let killed = rts.remove(1);
    let gone_addr = killed.addr();
    let gone_port = killed.port;
    drop(killed); // killed: nothing listens there any more
    let (w, h) = (&rts[0], &rts[1]);
    let never = format!("127.0.0.1:{}", never_port());

    // shard 0 has three replicas; round robin: live, killed, never-started, live, ...
    let pool = Pool::new();
    pool.add("dep", &w.addr(), false, None);
    pool.add("dep", &gone_addr, false, None);
    pool.add("dep", &never, false, None);
    let outcomes: Vec<(jina_net_result, i32, String)> = (0..6)
        .map(|i| {
            let d = pool.data(&data_request(&format!("rr-{i}"), "/", &["a"]), "dep", false, None);
            (d.status, d.targets[0].grpc_code, d.targets[0].address.clone())
        })
        .collect();
    let expected_cycle = [
        (JINA_NET_OK, 0, w.addr()),
        (JINA_NET_RPC_ERROR, 14, gone_addr.clone()),
        (JINA_NET_RPC_ERROR, 14, never.clone()),
    ];
    let why = "jina 3.1 sends to the replica round robin picks, retries UNAVAILABLE 3 times on that same \
               replica and then fails with UNAVAILABLE: it never fails over to, nor skips to, another replica";
    assert_eq!(outcomes[..3], expected_cycle, "{why}");
    assert_eq!(outcomes[3..], expected_cycle, "{why}");

    // ALL over a live shard and a dead shard: the live answer is there, the send reports the failure
    let p2 = Pool::new();
    p2.add("dep", &w.addr(), false, Some(0));
    p2.add("dep", &never, false, Some(1));
    let d = p2.send(
        DATA,
        &[data_request("all", "/", &["a"])],
        "dep",
        Route {
            head: false,
            shard: None,
            shards: ALL,
            endpoint: None,
        },
    );
    assert_eq!(d.status, JINA_NET_RPC_ERROR);
    assert_eq!(d.targets.len(), 2);
    assert_eq!((d.targets[0].status, d.targets[0].shard_id), (JINA_NET_OK, 0));
    assert_eq!(answered_by(&d.targets[0].body), ["w"]);
    assert_eq!(
        (d.targets[1].status, d.targets[1].grpc_code, d.targets[1].shard_id),
        (JINA_NET_RPC_ERROR, 14, 1)
    );
    assert!(d.targets[1].body.is_empty());
    assert!(d.message.contains(&never), "{}", d.message);

    // a head with a live and a dead replica in one shard: jina's head alternates between them and
    // turns the dead one's UNAVAILABLE into UNKNOWN
    ok(activate_sync(w.port, &h.addr(), None));
    ok(activate_sync(gone_port, &h.addr(), None));
    let p3 = Pool::new();
    p3.add("dep", &h.addr(), true, None);
    let codes: Vec<i32> = (0..4)
        .map(|i| {
            p3.data(&data_request(&format!("h-{i}"), "/", &["a"]), "dep", true, None)
                .targets[0]
                .grpc_code
        })
        .collect();
    assert_eq!(codes, [0, 2, 0, 2]);
    let d = p3.data(&data_request("h-4", "/", &["a"]), "dep", true, None);
    assert_eq!(answered_by(&d.ok_body()), ["w"]);
    let d = p3.data(&data_request("h-5", "/", &["a"]), "dep", true, None);
    assert!(
        d.targets[0].grpc_message.contains("UNAVAILABLE"),
        "{}",
        d.targets[0].grpc_message
    );
}

#[test]
fn several_requests_in_one_process_data_call() {
    let env = interop_env!("several_requests_in_one_process_data_call");
    let rts = start(&env, &[worker("w"), head("h", "ANY")]);
    let (w, h) = (&rts[0], &rts[1]);
    let pool = Pool::new();
    pool.add("w", &w.addr(), false, None);
    ok(activate_sync(w.port, &h.addr(), None));
    pool.add("w", &h.addr(), true, None);

    let reqs = vec![
        data_request("m1", "/count", &["a", "b"]),
        data_request("m2", "/count", &["b", "c"]),
    ];
    // directly: one process_data call; the worker sees both requests (in reverse order) as one
    // DocumentArray plus a docs matrix of two, and answers with the first request
    let body = pool
        .send(
            DATA,
            &reqs,
            "w",
            Route {
                head: false,
                shard: None,
                shards: ANY,
                endpoint: None,
            },
        )
        .ok_body();
    assert_eq!(decode(&body).header.unwrap().request_id, "m1");
    assert_eq!(docs(&body), vec![("count-w".into(), "4;b,c,a,b;2,2".into(), None)]);
    let sync = ok(send_sync(DATA, &reqs, &w.addr(), None));
    assert_eq!(sync.body, body);

    // the Tagger: "b" is in both requests; the worker handles it as one document (tagged twice)
    let tag_reqs = vec![
        data_request("t1", "/", &["a", "b"]),
        data_request("t2", "/", &["b", "c"]),
    ];
    let body = pool
        .send(
            DATA,
            &tag_reqs,
            "w",
            Route {
                head: false,
                shard: None,
                shards: ANY,
                endpoint: None,
            },
        )
        .ok_body();
    assert_eq!(decode(&body).header.unwrap().request_id, "t1");
    assert_eq!(
        docs(&body),
        vec![
            ("b".into(), "x|w|w".into(), Some("w".into())),
            ("c".into(), "x|w".into(), Some("w".into())),
            ("a".into(), "x|w".into(), Some("w".into())),
            ("b".into(), "x|w|w".into(), Some("w".into())),
            ("from-w".into(), "w".into(), None),
        ]
    );

    // through a head: the head reduces the requests into one (docs with equal ids merged) first
    let body = pool
        .send(
            DATA,
            &reqs,
            "w",
            Route {
                head: true,
                shard: None,
                shards: ANY,
                endpoint: None,
            },
        )
        .ok_body();
    assert_eq!(decode(&body).header.unwrap().request_id, "m1");
    assert_eq!(docs(&body), vec![("count-w".into(), "3;a,b,c;3".into(), None)]);
    let sync = ok(send_sync(DATA, &reqs, &h.addr(), None));
    assert_eq!(sync.body, body);
}

#[test]
fn endpoint_metadata_selects_the_heads_polling() {
    let env = interop_env!("endpoint_metadata_selects_the_heads_polling");
    let rts = start(
        &env,
        &[
            shard_worker("s0", 0, 2),
            shard_worker("s1", 1, 2),
            head("hany", "ANY"),
            head("hall", "ALL"),
            head("hjson", r#"{"/custom": "ALL", "*": "ANY"}"#),
        ],
    );
    let (s0, s1) = (&rts[0], &rts[1]);
    let pool = Pool::new();
    for (i, h) in rts[2..].iter().enumerate() {
        ok(activate_sync(s0.port, &h.addr(), Some(0)));
        ok(activate_sync(s1.port, &h.addr(), Some(1)));
        pool.add(["any", "all", "json"][i], &h.addr(), true, None);
    }
    let n = std::cell::Cell::new(0);
    // how many shards answered a request sent with `endpoint` metadata and header.exec_endpoint
    let shards = |dep: &str, endpoint: Option<&str>, exec_endpoint: &str| {
        n.set(n.get() + 1);
        let req = data_request(&format!("ep-{}", n.get()), exec_endpoint, &["a"]);
        answered_by(&pool.data(&req, dep, true, endpoint).ok_body()).len()
    };
    // --polling ANY: /search -> ALL, /index -> ANY, others -> ANY
    assert_eq!(shards("any", None, "/"), 1);
    assert_eq!(shards("any", Some("/search"), "/"), 2);
    assert_eq!(shards("any", Some("/index"), "/"), 1);
    assert_eq!(shards("any", Some("/other"), "/"), 1);
    // header.exec_endpoint does not choose the polling, the metadata does
    assert_eq!(shards("any", None, "/search"), 1);
    assert_eq!(shards("any", Some("/search"), "/index"), 2);
    // --polling ALL: /index -> ANY
    assert_eq!(shards("all", None, "/"), 2);
    assert_eq!(shards("all", Some("/index"), "/"), 1);
    assert_eq!(shards("all", Some("/search"), "/"), 2);
    assert_eq!(shards("all", Some("/other"), "/"), 2);
    // --polling '{"/custom": "ALL", "*": "ANY"}'
    assert_eq!(shards("json", Some("/custom"), "/"), 2);
    assert_eq!(shards("json", Some("/other"), "/"), 1);
    assert_eq!(shards("json", None, "/custom"), 1);
    assert_eq!(shards("json", Some("/search"), "/"), 2);
    // the one-shot helper carries the endpoint too
    let one = |ep: Option<&str>| {
        n.set(n.get() + 1);
        let req = data_request(&format!("ep-{}", n.get()), "/", &["a"]);
        answered_by(&ok(send_one_sync(DATA, &req, &rts[2].addr(), ep)).body).len()
    };
    assert_eq!(one(Some("/search")), 2);
    assert_eq!(one(None), 1);
}

// ---------------------------------------------------------------------------------------------
// Byte comparison with jina's own GrpcConnectionPool.
// ---------------------------------------------------------------------------------------------

/// One step of a scenario, run once through our C ABI and once through jina's Python pool.
#[derive(Debug, Clone)]
enum Step {
    Add {
        dep: String,
        addr: String,
        head: bool,
        shard: Option<u32>,
    },
    Remove {
        dep: String,
        addr: String,
        head: bool,
        shard: Option<u32>,
    },
    Send {
        kind: u32,
        reqs: Vec<Vec<u8>>,
        dep: String,
        head: bool,
        shard: Option<u32>,
        polling: u32,
        endpoint: Option<String>,
    },
    SendSync {
        kind: u32,
        reqs: Vec<Vec<u8>>,
        target: String,
        endpoint: Option<String>,
    },
    Activate {
        port: u16,
        head: String,
        shard: Option<u32>,
    },
    Deactivate {
        port: u16,
        head: String,
        shard: Option<u32>,
    },
}

/// One response (or failure) at one target.
#[derive(Debug, Clone, PartialEq)]
enum Res {
    Ok {
        body: Vec<u8>,
        /// `None` when the API gives no trailing metadata (jina's one-shot helpers).
        meta: Option<Vec<(String, Vec<u8>)>>,
    },
    Err {
        /// -1 when only our result code is known (blocking helpers).
        code: i32,
        message: String,
    },
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_opt_str(s: &Option<String>) -> String {
    s.as_deref().map_or("null".into(), json_str)
}

fn json_opt_u32(v: Option<u32>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

fn json_reqs(reqs: &[Vec<u8>]) -> String {
    format!(
        "[{}]",
        reqs.iter().map(|r| json_str(&hex(r))).collect::<Vec<_>>().join(",")
    )
}

fn kind_name(kind: u32) -> &'static str {
    if kind == DATA {
        "data"
    } else {
        "control"
    }
}

impl Step {
    fn to_json(&self) -> String {
        match self {
            Step::Add { dep, addr, head, shard } | Step::Remove { dep, addr, head, shard } => format!(
                r#"{{"op":{},"deployment":{},"address":{},"head":{head},"shard":{}}}"#,
                json_str(if matches!(self, Step::Add { .. }) {
                    "add"
                } else {
                    "remove"
                }),
                json_str(dep),
                json_str(addr),
                json_opt_u32(*shard)
            ),
            Step::Send {
                kind,
                reqs,
                dep,
                head,
                shard,
                polling,
                endpoint,
            } => format!(
                r#"{{"op":"send","kind":{},"requests":{},"deployment":{},"head":{head},"shard":{},"polling":{},"endpoint":{}}}"#,
                json_str(kind_name(*kind)),
                json_reqs(reqs),
                json_str(dep),
                json_opt_u32(*shard),
                json_str(if *polling == ALL { "ALL" } else { "ANY" }),
                json_opt_str(endpoint)
            ),
            Step::SendSync {
                kind,
                reqs,
                target,
                endpoint,
            } => format!(
                r#"{{"op":"send_sync","kind":{},"requests":{},"target":{},"endpoint":{}}}"#,
                json_str(kind_name(*kind)),
                json_reqs(reqs),
                json_str(target),
                json_opt_str(endpoint)
            ),
            Step::Activate { port, head, shard } | Step::Deactivate { port, head, shard } => format!(
                r#"{{"op":{},"host":"127.0.0.1","port":{port},"head":{},"shard":{}}}"#,
                json_str(if matches!(self, Step::Activate { .. }) {
                    "activate"
                } else {
                    "deactivate"
                }),
                json_str(head),
                json_opt_u32(*shard)
            ),
        }
    }

    /// Whether the responses of this step are ControlRequestProtos.
    fn control(&self) -> bool {
        matches!(
            self,
            Step::Activate { .. }
                | Step::Deactivate { .. }
                | Step::Send { kind: CONTROL, .. }
                | Step::SendSync { kind: CONTROL, .. }
        )
    }

    fn describe(&self) -> String {
        match self {
            Step::Send {
                kind,
                reqs,
                dep,
                head,
                shard,
                polling,
                endpoint,
            } => format!(
                "send {} x{} to {dep} (head {head}, shard {shard:?}, polling {}, endpoint {endpoint:?})",
                kind_name(*kind),
                reqs.len(),
                if *polling == ALL { "ALL" } else { "ANY" }
            ),
            Step::SendSync {
                kind,
                reqs,
                target,
                endpoint,
            } => format!(
                "send_sync {} x{} to {target} (endpoint {endpoint:?})",
                kind_name(*kind),
                reqs.len()
            ),
            other => format!("{other:?}"),
        }
    }
}

fn res_of_target(t: &Target) -> Res {
    if t.status == JINA_NET_OK {
        Res::Ok {
            body: t.body.clone(),
            meta: Some(t.metadata.clone()),
        }
    } else {
        Res::Err {
            code: t.grpc_code,
            message: t.grpc_message.clone(),
        }
    }
}

fn res_of_sync(r: SyncResult) -> Res {
    match r {
        Ok(o) => Res::Ok {
            body: o.body,
            meta: None,
        },
        Err((_, message)) => Res::Err { code: -1, message },
    }
}

/// Runs a scenario through the C ABI: one entry per step that has an outcome.
fn run_ours(steps: &[Step]) -> Vec<(usize, Vec<Res>)> {
    let pool = Pool::new();
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let res = match step {
            Step::Add { dep, addr, head, shard } => {
                pool.add(dep, addr, *head, *shard);
                continue;
            }
            Step::Remove { dep, addr, head, shard } => {
                pool.remove(dep, addr, *head, *shard);
                continue;
            }
            Step::Send {
                kind,
                reqs,
                dep,
                head,
                shard,
                polling,
                endpoint,
            } => pool
                .send(
                    *kind,
                    reqs,
                    dep,
                    Route {
                        head: *head,
                        shard: *shard,
                        shards: *polling,
                        endpoint: endpoint.as_deref(),
                    },
                )
                .targets
                .iter()
                .map(res_of_target)
                .collect(),
            Step::SendSync {
                kind,
                reqs,
                target,
                endpoint,
            } => vec![res_of_sync(send_sync(*kind, reqs, target, endpoint.as_deref()))],
            Step::Activate { port, head, shard } => vec![res_of_sync(activate_sync(*port, head, *shard))],
            // jina's deactivate_worker is the async one (one attempt, 1 s): use the callback form
            Step::Deactivate { port, head, shard } => activate_async(*port, head, *shard, false)
                .targets
                .iter()
                .map(res_of_target)
                .map(|r| match r {
                    Res::Ok { body, .. } => Res::Ok { body, meta: None },
                    e => e,
                })
                .collect(),
        };
        out.push((i, res));
    }
    out
}

/// Runs the scenario through jina's own GrpcConnectionPool (tests/interop/pool_compare.py).
fn run_jinas(env: &Env, name: &str, steps: &[Step]) -> Vec<(usize, Vec<Res>)> {
    let scenario = env.scratch.join(format!("{name}.json"));
    let output = env.scratch.join(format!("{name}.out"));
    let json = format!(
        "{{\"steps\": [\n{}\n]}}\n",
        steps.iter().map(Step::to_json).collect::<Vec<_>>().join(",\n")
    );
    std::fs::write(&scenario, json).unwrap();
    let run = Command::new(&env.python)
        .arg(env.scripts.join("pool_compare.py"))
        .arg(&scenario)
        .arg(&output)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("JINA_LOG_LEVEL", "ERROR")
        .stdin(Stdio::null())
        .output()
        .expect("run pool_compare.py");
    assert!(
        run.status.success(),
        "pool_compare.py failed ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&output).unwrap();
    let mut out: Vec<(usize, Vec<Res>)> = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        match cols[0] {
            "STEP" => out.push((cols[1].parse().unwrap(), Vec::new())),
            "OK" => {
                let meta = (cols[2] != "-").then(|| {
                    let raw = unhex(cols[2]);
                    if raw.is_empty() {
                        return vec![];
                    }
                    let parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
                    parts
                        .chunks(2)
                        .map(|kv| (String::from_utf8_lossy(kv[0]).into_owned(), kv[1].to_vec()))
                        .collect()
                });
                out.last_mut().unwrap().1.push(Res::Ok {
                    body: unhex(cols[1]),
                    meta,
                });
            }
            "ERR" => out.last_mut().unwrap().1.push(Res::Err {
                code: cols[1].parse().unwrap(),
                message: String::from_utf8_lossy(&unhex(cols[2])).into_owned(),
            }),
            other => panic!("unexpected line from pool_compare.py: {other}"),
        }
    }
    out
}

/// `body` with every occurrence of its own header.request_id replaced by zeros (same length).
fn without_request_id(body: &[u8], control: bool) -> Vec<u8> {
    let id = if control {
        ControlRequestProto::decode(body)
            .ok()
            .and_then(|c| c.header)
            .map(|h| h.request_id)
    } else {
        DataRequestProto::decode(body)
            .ok()
            .and_then(|c| c.header)
            .map(|h| h.request_id)
    };
    let mut out = body.to_vec();
    if let Some(id) = id.filter(|id| !id.is_empty()) {
        let id = id.as_bytes();
        let mut i = 0;
        while i + id.len() <= out.len() {
            if &out[i..i + id.len()] == id {
                out[i..i + id.len()].fill(b'0');
                i += id.len();
            } else {
                i += 1;
            }
        }
    }
    out
}

/// A gRPC message without the parts that differ from call to call (grpc core's debug strings).
fn stable_message(m: &str) -> &str {
    m.split("debug_error_string").next().unwrap_or(m)
}

#[derive(Default, Debug)]
struct Tally {
    responses: usize,
    identical: usize,
    identical_modulo_request_id: usize,
    metadata_compared: usize,
    errors: usize,
    mismatches: Vec<String>,
}

fn compare(steps: &[Step], ours: &[(usize, Vec<Res>)], jinas: &[(usize, Vec<Res>)]) -> Tally {
    let mut t = Tally::default();
    assert_eq!(
        ours.iter().map(|o| o.0).collect::<Vec<_>>(),
        jinas.iter().map(|o| o.0).collect::<Vec<_>>(),
        "both runs have outcomes for the same steps"
    );
    for ((i, our), (_, their)) in ours.iter().zip(jinas) {
        let step = &steps[*i];
        let what = format!("step {i}: {}", step.describe());
        if our.len() != their.len() {
            t.mismatches.push(format!(
                "{what}: {} results from us, {} from jina",
                our.len(),
                their.len()
            ));
            continue;
        }
        for (k, (a, b)) in our.iter().zip(their).enumerate() {
            match (a, b) {
                (Res::Ok { body: ba, meta: ma }, Res::Ok { body: bb, meta: mb }) => {
                    t.responses += 1;
                    if ba == bb {
                        t.identical += 1;
                    } else if without_request_id(ba, step.control()) == without_request_id(bb, step.control())
                        && !matches!(step, Step::Send { kind: DATA, .. } | Step::SendSync { kind: DATA, .. })
                    {
                        // only the control helpers make their own (random) request ids
                        t.identical_modulo_request_id += 1;
                    } else {
                        t.mismatches.push(format!(
                            "{what} [{k}]: bodies differ\n  ours: {}\n  jina: {}",
                            hex(ba),
                            hex(bb)
                        ));
                    }
                    if let (Some(ma), Some(mb)) = (ma, mb) {
                        t.metadata_compared += 1;
                        let (mut ma, mut mb) = (ma.clone(), mb.clone());
                        ma.sort();
                        mb.sort();
                        if ma != mb {
                            t.mismatches.push(format!(
                                "{what} [{k}]: trailing metadata differs: ours {ma:?}, jina {mb:?}"
                            ));
                        }
                    }
                }
                (Res::Err { code: ca, message: xa }, Res::Err { code: cb, message: xb }) => {
                    t.errors += 1;
                    if *ca == -1 {
                        // a blocking helper failed: it gives our result code and message, no gRPC code to
                        // compare (both sides failing is what is compared)
                        continue;
                    }
                    if ca != cb {
                        t.mismatches
                            .push(format!("{what} [{k}]: gRPC code {ca} ({xa}) vs jina's {cb} ({xb})"));
                    } else if *ca != 14 && stable_message(xa) != stable_message(xb) {
                        // UNAVAILABLE messages come from the transports (grpc core vs ours) and differ
                        t.mismatches
                            .push(format!("{what} [{k}]: gRPC message {xa:?} vs jina's {xb:?}"));
                    }
                }
                (a, b) => t.mismatches.push(format!("{what} [{k}]: ours {a:?}, jina {b:?}")),
            }
        }
    }
    t
}

#[test]
fn responses_are_byte_identical_to_jinas_own_pool() {
    let env = interop_env!("responses_are_byte_identical_to_jinas_own_pool");
    let rts = start(
        &env,
        &[
            worker("w"),
            shard_worker("s0", 0, 2),
            shard_worker("s1", 1, 2),
            raiser("rz"),
            head("hall", "ALL"),
            head("hany", "ANY"),
            head("hmix", "ANY"),
        ],
    );
    let (w, s0, s1, rz, hall, hany, hmix) = (&rts[0], &rts[1], &rts[2], &rts[3], &rts[4], &rts[5], &rts[6]);
    let never_port: u16 = never_port();
    let never = format!("127.0.0.1:{never_port}");
    let add = |dep: &str, addr: &str, head: bool, shard: Option<u32>| Step::Add {
        dep: dep.into(),
        addr: addr.into(),
        head,
        shard,
    };
    let send = |reqs: Vec<Vec<u8>>, dep: &str, head: bool, polling: u32, endpoint: Option<&str>| Step::Send {
        kind: DATA,
        reqs,
        dep: dep.into(),
        head,
        shard: None,
        polling,
        endpoint: endpoint.map(str::to_owned),
    };
    let dr = data_request;
    let mut steps = vec![
        // a worker, directly: single, several (process_data), /count, STATUS, refused ACTIVATE
        add("w", &w.addr(), false, None),
        send(vec![dr("c1", "/", &["a", "b"])], "w", false, ANY, None),
        send(
            vec![dr("c2", "/", &["a", "b"]), dr("c3", "/", &["b", "c"])],
            "w",
            false,
            ANY,
            None,
        ),
        send(
            vec![dr("c4", "/count", &["a"]), dr("c5", "/count", &["b", "c"])],
            "w",
            false,
            ANY,
            Some("/x"),
        ),
        Step::Send {
            kind: CONTROL,
            reqs: vec![control_request("c6", ControlCommand::Status)],
            dep: "w".into(),
            head: false,
            shard: None,
            polling: ANY,
            endpoint: None,
        },
        Step::Send {
            kind: CONTROL,
            reqs: vec![control_request("c7", ControlCommand::Activate)],
            dep: "w".into(),
            head: false,
            shard: None,
            polling: ANY,
            endpoint: None,
        },
        // an executor that raises: in-band error + is-error trailer
        add("rz", &rz.addr(), false, None),
        send(vec![dr("c8", "/", &["a"])], "rz", false, ANY, None),
        // two shards: ALL (one result per shard, in shard order) and ANY rotating (shard 1 first)
        add("shards", &s0.addr(), false, Some(0)),
        add("shards", &s1.addr(), false, Some(1)),
        send(vec![dr("c9", "/", &["a"])], "shards", false, ALL, None),
        send(vec![dr("c10", "/", &["a"])], "shards", false, ANY, None),
        send(vec![dr("c11", "/", &["a"])], "shards", false, ANY, None),
        send(vec![dr("c12", "/", &["a"])], "shards", false, ANY, None),
        Step::Send {
            kind: DATA,
            reqs: vec![dr("c13", "/", &["a"])],
            dep: "shards".into(),
            head: false,
            shard: Some(0),
            polling: ANY,
            endpoint: None,
        },
        // a dead replica next to a live one: live, dead (UNAVAILABLE after the retries), live
        add("mixed", &w.addr(), false, None),
        add("mixed", &never, false, None),
        send(vec![dr("c14", "/", &["a"])], "mixed", false, ANY, None),
        send(vec![dr("c15", "/", &["a"])], "mixed", false, ANY, None),
        send(vec![dr("c16", "/", &["a"])], "mixed", false, ANY, None),
        Step::Remove {
            dep: "mixed".into(),
            addr: never.clone(),
            head: false,
            shard: None,
        },
        send(vec![dr("c17", "/", &["a"])], "mixed", false, ANY, None),
        // heads: refused without workers, then ACTIVATE, data (ALL / ANY / endpoints), DEACTIVATE
        add("hall", &hall.addr(), true, None),
        add("hany", &hany.addr(), true, None),
        send(vec![dr("c18", "/", &["a"])], "hany", true, ANY, None),
    ];
    for h in [hall, hany] {
        steps.push(Step::Activate {
            port: s0.port,
            head: h.addr(),
            shard: Some(0),
        });
        steps.push(Step::Activate {
            port: s1.port,
            head: h.addr(),
            shard: Some(1),
        });
    }
    steps.extend([
        send(vec![dr("c19", "/", &["a", "b"])], "hall", true, ANY, None),
        send(vec![dr("c20", "/", &["a"])], "hall", true, ANY, Some("/index")),
        send(vec![dr("c21", "/", &["a"])], "hall", true, ANY, Some("/index")),
        send(vec![dr("c22", "/", &["a"])], "hany", true, ANY, None),
        send(vec![dr("c23", "/", &["a"])], "hany", true, ANY, None),
        send(vec![dr("c24", "/", &["a"])], "hany", true, ANY, Some("/search")),
        send(
            vec![dr("c25", "/count", &["a", "b"]), dr("c26", "/count", &["b", "c"])],
            "hall",
            true,
            ANY,
            None,
        ),
        send(
            vec![dr("c27", "/", &["a", "b"]), dr("c28", "/", &["b", "c"])],
            "hall",
            true,
            ANY,
            None,
        ),
        // the blocking one-shot helpers
        Step::SendSync {
            kind: DATA,
            reqs: vec![dr("c29", "/", &["a"])],
            target: w.addr(),
            endpoint: None,
        },
        Step::SendSync {
            kind: DATA,
            reqs: vec![dr("c30", "/", &["a"]), dr("c31", "/", &["b"])],
            target: w.addr(),
            endpoint: None,
        },
        Step::SendSync {
            kind: DATA,
            reqs: vec![dr("c32", "/", &["a"])],
            target: hany.addr(),
            endpoint: Some("/search".into()),
        },
        Step::SendSync {
            kind: CONTROL,
            reqs: vec![control_request("c33", ControlCommand::Status)],
            target: hall.addr(),
            endpoint: None,
        },
    ]);
    for h in [hall, hany] {
        steps.push(Step::Deactivate {
            port: s0.port,
            head: h.addr(),
            shard: Some(0),
        });
        steps.push(Step::Deactivate {
            port: s1.port,
            head: h.addr(),
            shard: Some(1),
        });
    }
    steps.push(send(vec![dr("c34", "/", &["a"])], "hall", true, ANY, None));
    // a head with a live and a dead replica in one shard: OK, then UNKNOWN (the head's own
    // UNAVAILABLE from the dead one, re-raised), and the state restored afterwards
    steps.extend([
        add("hmix", &hmix.addr(), true, None),
        Step::Activate {
            port: w.port,
            head: hmix.addr(),
            shard: None,
        },
        Step::Activate {
            port: never_port,
            head: hmix.addr(),
            shard: None,
        },
        send(vec![dr("c35", "/", &["a"])], "hmix", true, ANY, None),
        send(vec![dr("c36", "/", &["a"])], "hmix", true, ANY, None),
        Step::Deactivate {
            port: w.port,
            head: hmix.addr(),
            shard: None,
        },
        Step::Deactivate {
            port: never_port,
            head: hmix.addr(),
            shard: None,
        },
    ]);

    let ours = run_ours(&steps);
    let jinas = run_jinas(&env, "scenario", &steps);

    let t = compare(&steps, &ours, &jinas);
    say(&format!(
        "interop byte comparison with jina's GrpcConnectionPool: {} responses: {} byte-identical, {} identical \
         modulo request id (control helpers' random ids); {} trailing-metadata sets compared; {} errors compared \
         (code + message); {} mismatches",
        t.responses,
        t.identical,
        t.identical_modulo_request_id,
        t.metadata_compared,
        t.errors,
        t.mismatches.len()
    ));
    assert!(t.mismatches.is_empty(), "mismatches:\n{}", t.mismatches.join("\n"));

    // sanity: the scenario did what it says (so equal bytes mean something)
    let step_of = |id: &str| {
        steps
            .iter()
            .position(|s| match s {
                Step::Send { kind: DATA, reqs, .. } => decode(&reqs[0]).header.unwrap().request_id == id,
                _ => false,
            })
            .unwrap()
    };
    let outcome = |id: &str| {
        let i = step_of(id);
        ours.iter().find(|o| o.0 == i).unwrap().1.clone()
    };
    let ok_body = |id: &str, k: usize| match &outcome(id)[k] {
        Res::Ok { body, .. } => body.clone(),
        e => panic!("{id}: {e:?}"),
    };
    assert_eq!(answered_by(&ok_body("c9", 0)), ["s0"]);
    assert_eq!(answered_by(&ok_body("c9", 1)), ["s1"]);
    assert_eq!(answered_by(&ok_body("c10", 0)), ["s1"]);
    assert_eq!(answered_by(&ok_body("c11", 0)), ["s0"]);
    assert_eq!(answered_by(&ok_body("c14", 0)), ["w"]);
    assert!(
        matches!(outcome("c15")[0], Res::Err { code: 14, .. }),
        "{:?}",
        outcome("c15")
    );
    assert!(
        matches!(outcome("c18")[0], Res::Err { code: 2, .. }),
        "{:?}",
        outcome("c18")
    );
    assert_eq!(answered_by(&ok_body("c19", 0)), ["s0", "s1"]);
    assert_eq!(answered_by(&ok_body("c20", 0)).len(), 1);
    assert_eq!(answered_by(&ok_body("c24", 0)), ["s0", "s1"]);
    assert!(
        matches!(outcome("c34")[0], Res::Err { code: 2, .. }),
        "{:?}",
        outcome("c34")
    );
    assert_eq!(answered_by(&ok_body("c35", 0)), ["w"]);
    assert!(
        matches!(outcome("c36")[0], Res::Err { code: 2, .. }),
        "{:?}",
        outcome("c36")
    );
    assert!(t.responses >= 30 && t.errors >= 4, "{t:?}");
}
