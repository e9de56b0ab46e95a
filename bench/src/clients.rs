//! The two Rust clients, each run in its own process (`jina-net-floor client kind=tonic ...`,
//! `jina-net-bench client kind=tonic|pool ...`):
//!
//! - `tonic`: the floor. A plain tonic client: one `Channel` per server, `Grpc::unary` to
//!   `process_single_data` with a bytes-in/bytes-out codec (what a generated stub does, minus prost),
//!   on a tokio runtime with one worker thread per core, or `threads=N` (1 = tokio's current_thread
//!   runtime). ALL = one call per server, joined.
//! - `pool`: libjina_net's Rust API: `ConnectionPool::send_requests(..).await`, driven by tasks on
//!   the library's own runtime, as a Rust gateway would (`pool_client.rs`).
//!
//! This file does not name libjina_net: it is also the `jina-net-floor` binary (`src/floor.rs`),
//! which runs the raw tonic client without linking the library (and so with the system's allocator
//! exactly as tonic has it, not the library's, `src/ffi/alloc.rs`).
//!
//! Both keep `inflight` requests in flight (closed loop: `inflight` tasks, each sending its next
//! request when the previous one completed): a warm-up phase of `warmup_ms`, then a measured phase
//! until `max_requests` were started or `duration_ms` passed. Prints one `RESULT` line.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use futures_util::future::join_all;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use crate::stats::{self, Args, Measured};

/// How long and how hard one phase runs.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub inflight: usize,
    pub duration: Duration,
    pub max_requests: u64,
}

/// Runs one closed-loop phase on the current tokio runtime. `send` performs one request and returns
/// the smallest response body length of its targets.
pub async fn run_phase<F, Fut>(phase: Phase, min_len: usize, send: Arc<F>) -> Measured
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<usize, String>> + Send + 'static,
{
    let started = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let deadline = t0 + phase.duration;
    let per_task = (phase.max_requests as usize / phase.inflight.max(1)).min(1 << 20) + 16;
    let workers: Vec<_> = (0..phase.inflight)
        .map(|_| {
            let (send, started) = (send.clone(), started.clone());
            tokio::spawn(async move {
                let mut m = Measured {
                    latencies_ns: Vec::with_capacity(per_task),
                    ..Default::default()
                };
                loop {
                    if started.fetch_add(1, Ordering::Relaxed) >= phase.max_requests {
                        break;
                    }
                    let t = Instant::now();
                    if t >= deadline {
                        break;
                    }
                    match send().await {
                        Ok(len) if len >= min_len => m.latencies_ns.push(t.elapsed().as_nanos() as u64),
                        Ok(len) => {
                            m.errors += 1;
                            m.first_error
                                .get_or_insert_with(|| format!("response of {len} bytes, expected >= {min_len}"));
                        }
                        Err(e) => {
                            m.errors += 1;
                            m.first_error.get_or_insert(e);
                        }
                    }
                }
                m
            })
        })
        .collect();
    let mut total = Measured::default();
    for w in join_all(workers).await {
        let m = w.expect("client task panicked");
        total.latencies_ns.extend(m.latencies_ns);
        total.errors += m.errors;
        if total.first_error.is_none() {
            total.first_error = m.first_error;
        }
    }
    total.wall_s = t0.elapsed().as_secs_f64();
    total
}

/// Warm-up, then the measured phase with CPU time around it; prints the `RESULT` line.
pub async fn warm_then_measure<F, Fut>(args: &Args, min_len: usize, send: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<usize, String>> + Send + 'static,
{
    let send = Arc::new(send);
    let inflight = args.num("inflight").max(1) as usize;
    let warm = run_phase(
        Phase {
            inflight,
            duration: Duration::from_millis(args.num("warmup_ms")),
            max_requests: u64::MAX,
        },
        min_len,
        send.clone(),
    )
    .await;
    if let Some(e) = &warm.first_error {
        eprintln!("warm-up error: {e}");
    }
    let before = stats::rusage();
    let mut m = run_phase(
        Phase {
            inflight,
            duration: Duration::from_millis(args.num("duration_ms")),
            max_requests: args.num("max_requests"),
        },
        min_len,
        send,
    )
    .await;
    let after = stats::rusage();
    m.cpu = stats::Usage {
        user_s: after.user_s - before.user_s,
        sys_s: after.sys_s - before.sys_s,
        maxrss_kib: after.maxrss_kib,
    };
    if let Some(e) = &m.first_error {
        eprintln!("error: {e}");
    }
    println!("{}", stats::result_line(&mut m));
}

/// What every client of a cell is given: `client kind=K addrs=A[,B...] polling=any|all payload=FILE
/// inflight=N warmup_ms=W duration_ms=D max_requests=M [tracing=none] [threads=N]`.
pub struct Setup {
    pub args: Args,
    pub kind: String,
    pub addrs: Vec<String>,
    /// polling=all: one call per address.
    pub all: bool,
    pub payload: Bytes,
    pub min_len: usize,
}

impl Setup {
    pub fn parse(argv: &[String]) -> Setup {
        let args = Args::parse(argv);
        if args.0.get("tracing").map(String::as_str) == Some("none") {
            // Diagnostic: with a global (no-op) dispatcher set, tracing skips its `log` fallback, which
            // the `log` feature (enabled by kube-client through libjina_net's default `k8s` feature)
            // runs for every span h2 makes when no subscriber is set.
            let _ = tracing::dispatcher::set_global_default(tracing::Dispatch::none());
        }
        let addrs: Vec<String> = args.str("addrs").split(',').map(str::to_owned).collect();
        let all = match args.str("polling") {
            "any" => false,
            "all" => true,
            other => {
                eprintln!("polling must be any or all, not {other}");
                std::process::exit(2)
            }
        };
        let payload = Bytes::from(std::fs::read(args.str("payload")).unwrap_or_else(|e| {
            eprintln!("cannot read the payload: {e}");
            std::process::exit(2)
        }));
        Setup {
            kind: args.str("kind").to_owned(),
            min_len: payload.len(),
            args,
            addrs,
            all,
            payload,
        }
    }
}

/// The raw tonic client (`kind=tonic`).
pub fn run_tonic(setup: Setup) {
    let Setup {
        args,
        addrs,
        all,
        payload,
        min_len,
        ..
    } = setup;
    // threads=1: tokio's current_thread runtime (the task, the channel's buffer worker and the
    // connection on one thread); threads=N: a multi-thread runtime with N workers; default: one
    // worker per core (tokio's default).
    let rt = match args.0.get("threads").map(|t| t.parse::<usize>()) {
        Some(Ok(1)) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(Ok(n)) if n > 1 => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        Some(_) => {
            eprintln!("threads must be a number >= 1");
            std::process::exit(2)
        }
    }
    .expect("tokio runtime");
    rt.block_on(async {
        let targets = if all { addrs.len() } else { 1 };
        let channels: Vec<Channel> = addrs[..targets]
            .iter()
            .map(|a| {
                Endpoint::from_shared(format!("http://{a}"))
                    .expect("address")
                    .tcp_nodelay(true)
                    // the frame size libjina_net's channels accept (src/transport/channel.rs)
                    .max_frame_size(2 * 1024 * 1024)
                    .connect_lazy()
            })
            .collect();
        let channels: Arc<[Channel]> = channels.into();
        warm_then_measure(&args, min_len, move || {
            let (channels, payload) = (channels.clone(), payload.clone());
            async move {
                let calls = channels.iter().map(|c| tonic_call(c.clone(), payload.clone()));
                let mut len = usize::MAX;
                for r in join_all(calls).await {
                    len = len.min(r.map_err(|s| s.to_string())?.len());
                }
                Ok(len)
            }
        })
        .await
    });
}

const PROCESS_SINGLE_DATA: &str = "/jina.JinaSingleDataRequestRPC/process_single_data";

/// One unary `process_single_data` call, as tonic's generated stub makes it.
async fn tonic_call(channel: Channel, payload: Bytes) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let response = grpc
        .unary(
            tonic::Request::new(payload),
            PathAndQuery::from_static(PROCESS_SINGLE_DATA),
            RawCodec,
        )
        .await?;
    Ok(response.into_inner())
}

/// Bytes in, bytes out: the request is written into tonic's frame buffer (one copy), the response
/// body is taken out of the receive buffer.
#[derive(Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}
