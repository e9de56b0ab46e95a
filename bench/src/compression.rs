//! `jina-net-bench compression`: what request compression costs and saves, markdown on stdout.
//!
//! One data request carrying a document of `size_kib` KiB of text (random words of a 4096-word
//! vocabulary drawn with Zipf frequencies: gzip at the library's level 1 halves it), sent in a closed
//! loop of `inflight` sends through the Rust API to an echo `jina-net-test-server` in its own
//! process, once per compression (none, gzip, deflate). Per cell: requests per second, the bytes the
//! server read and wrote per request (counted on its TCP connections: HTTP/2 framing included), and
//! the CPU per request of the client process and of the server. The echo server answers with the
//! request's documents, uncompressed (it does not compress responses), so only the request
//! direction changes.
//!
//! ```text
//! jina-net-bench compression [size_kib=1024] [inflight=1,16] [warmup_s=1] [duration_s=5]
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jina_net::proto::docarray::{document_proto::Content, DocumentArrayProto, DocumentProto};
use jina_net::proto::jina::data_request_proto::{data_content_proto::Documents, DataContentProto};
use jina_net::proto::{DataRequestProto, HeaderProto};
use jina_net::{ChannelOptions, Compression, ConnectionOptions, ConnectionPool, PoolOptions, Request, SendOptions, To};
use prost::Message;

use crate::process::Process;
use crate::stats::{parse_kv, rusage};

/// A text of `len` bytes: words of a fixed pseudo-random vocabulary, Zipf-distributed.
pub fn text(len: usize) -> String {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let vocabulary: Vec<String> = (0..4096)
        .map(|_| {
            let n = 2 + (next() % 9) as usize;
            (0..n).map(|_| (b'a' + (next() % 26) as u8) as char).collect()
        })
        .collect();
    // Zipf (s = 1): rank r with weight 1/r, drawn by inverting the cumulative weights.
    let cumulative: Vec<f64> = vocabulary
        .iter()
        .enumerate()
        .scan(0.0, |sum, (r, _)| {
            *sum += 1.0 / (r + 1) as f64;
            Some(*sum)
        })
        .collect();
    let total = *cumulative.last().unwrap();
    let mut out = String::with_capacity(len + 16);
    let mut on_line = 0usize;
    while out.len() < len {
        let x = (next() % 1_000_000) as f64 / 1_000_000.0 * total;
        let r = cumulative.partition_point(|c| *c < x).min(vocabulary.len() - 1);
        out.push_str(&vocabulary[r]);
        on_line += 1;
        if on_line == 12 {
            on_line = 0;
            out.push('\n');
        } else {
            out.push(' ');
        }
    }
    out.truncate(len);
    out
}

fn request(size: usize) -> Vec<u8> {
    DataRequestProto {
        header: Some(HeaderProto {
            request_id: "compression".into(),
            exec_endpoint: Some("/".into()),
            ..Default::default()
        }),
        data: Some(DataContentProto {
            documents: Some(Documents::Docs(DocumentArrayProto {
                docs: vec![DocumentProto {
                    id: "text".into(),
                    content: Some(Content::Text(text(size))),
                    ..Default::default()
                }],
            })),
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

struct Cell {
    requests: u64,
    seconds: f64,
    read_per_request: f64,
    written_per_request: f64,
    client_cpu_s: f64,
    server_cpu_s: f64,
}

fn cell(compression: Compression, payload: &[u8], inflight: usize, warmup: Duration, duration: Duration) -> Cell {
    let mut server = Process::start("echo=z");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = ConnectionPool::new(PoolOptions {
            connection: ConnectionOptions {
                channel: ChannelOptions {
                    compression,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        });
        pool.add_connection("z", &server.address, false, None).unwrap();
        let request = Request::data(payload.to_vec());
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let loops: Vec<_> = (0..inflight)
            .map(|_| {
                let (pool, request) = (pool.clone(), request.clone());
                let (measuring, stop, done) = (measuring.clone(), stop.clone(), done.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let send = pool
                            .send_request(request.clone(), "z", To::AnyShard, &SendOptions::default())
                            .unwrap();
                        let result = send.await.remove(0).result;
                        if let Err(e) = result {
                            panic!("{compression:?}: {e}");
                        }
                        if measuring.load(Ordering::Relaxed) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(warmup).await;
        let (read0, written0) = server.io();
        let (server0, client0) = (server.cpu_s(), rusage());
        let started = Instant::now();
        measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(duration).await;
        measuring.store(false, Ordering::Relaxed);
        let seconds = started.elapsed().as_secs_f64();
        let requests = done.load(Ordering::Relaxed);
        let (read1, written1) = server.io();
        let (server1, client1) = (server.cpu_s(), rusage());
        stop.store(true, Ordering::Relaxed);
        for l in loops {
            let _ = l.await;
        }
        // The loops that were mid-send when measuring stopped are counted by their bytes but not
        // as requests: with `inflight` at most a few, against thousands measured.
        let n = requests.max(1) as f64;
        Cell {
            requests,
            seconds,
            read_per_request: (read1 - read0) as f64 / n,
            written_per_request: (written1 - written0) as f64 / n,
            client_cpu_s: (client1.user_s + client1.sys_s) - (client0.user_s + client0.sys_s),
            server_cpu_s: server1 - server0,
        }
    })
}

pub fn main(args: &[String]) {
    let kv = parse_kv(args.iter().map(String::as_str));
    let get = |k: &str, d: &str| kv.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let size_kib: usize = get("size_kib", "1024").parse().expect("size_kib=N");
    let inflights: Vec<usize> = get("inflight", "1,16")
        .split(',')
        .map(|v| v.parse().expect("inflight=N[,M]"))
        .collect();
    let warmup = Duration::from_secs_f64(get("warmup_s", "1").parse().expect("warmup_s=S"));
    let duration = Duration::from_secs_f64(get("duration_s", "5").parse().expect("duration_s=S"));
    let payload = request(size_kib * 1024);
    println!(
        "Request: one document of {size_kib} KiB of text ({} bytes serialized). Server: `jina-net-test-server echo=z`, its own process.\n",
        payload.len(),
    );
    println!("| compression | in flight | req/s | request bytes on the wire / req | response bytes / req | client CPU ms / req | server CPU ms / req |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &inflight in &inflights {
        for compression in [Compression::None, Compression::Gzip, Compression::Deflate] {
            let c = cell(compression, &payload, inflight, warmup, duration);
            let n = c.requests.max(1) as f64;
            println!(
                "| {} | {inflight} | {:.1} | {:.0} | {:.0} | {:.2} | {:.2} |",
                compression.encoding().unwrap_or("none"),
                c.requests as f64 / c.seconds,
                c.read_per_request,
                c.written_per_request,
                c.client_cpu_s / n * 1000.0,
                c.server_cpu_s / n * 1000.0,
            );
        }
    }
}
