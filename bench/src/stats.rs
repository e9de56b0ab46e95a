//! What every client measures and how it reports it: the `RESULT key=value ...` line (the C, Go and
//! Python clients print the same keys), percentiles, CPU time and memory of the process.

use std::collections::BTreeMap;

/// CPU seconds (user, system) of this process (`getrusage(RUSAGE_SELF)`, all threads) and its peak
/// RSS in KiB ([`peak_rss_kib`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub user_s: f64,
    pub sys_s: f64,
    pub maxrss_kib: u64,
}

pub fn rusage() -> Usage {
    // SAFETY: getrusage writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user_s: secs(ru.ru_utime),
        sys_s: secs(ru.ru_stime),
        maxrss_kib: peak_rss_kib(),
    }
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `VmRSS` (current resident memory) of this process in KiB, from /proc/self/status.
pub fn current_rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

/// `VmHWM` (peak resident memory) of this process in KiB. Not `ru_maxrss`: Linux carries the
/// parent's high-water mark over fork + exec into it, so a small client started by a bigger parent
/// would report the parent's peak.
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// The `p` quantile (0..1) of sorted samples, nearest rank: `sorted[ceil(p * n) - 1]`.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One measured phase of a closed-loop client.
#[derive(Debug, Default)]
pub struct Measured {
    /// Latency of each successful request, nanoseconds.
    pub latencies_ns: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub wall_s: f64,
    pub cpu: Usage,
}

/// The `RESULT` line every client prints (same keys and formats in C, Go and Python).
pub fn result_line(m: &mut Measured) -> String {
    m.latencies_ns.sort_unstable();
    let n = m.latencies_ns.len();
    let us = |ns: u64| ns as f64 / 1e3;
    let mean = if n == 0 {
        0.0
    } else {
        m.latencies_ns.iter().map(|&x| x as f64).sum::<f64>() / n as f64 / 1e3
    };
    format!(
        "RESULT n={} errors={} wall_s={:.6} user_s={:.6} sys_s={:.6} maxrss_kib={} p50_us={:.1} p99_us={:.1} p999_us={:.1} mean_us={:.1}",
        n,
        m.errors,
        m.wall_s,
        m.cpu.user_s,
        m.cpu.sys_s,
        m.cpu.maxrss_kib,
        us(percentile(&m.latencies_ns, 0.50)),
        us(percentile(&m.latencies_ns, 0.99)),
        us(percentile(&m.latencies_ns, 0.999)),
        mean
    )
}

/// Parses `key=value` words (a `RESULT` line, or command-line arguments).
pub fn parse_kv<'a>(words: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    words
        .into_iter()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Command-line arguments as `key=value`, with typed getters that exit on bad input.
pub struct Args(pub BTreeMap<String, String>);

impl Args {
    pub fn parse(args: &[String]) -> Args {
        for a in args {
            if !a.contains('=') {
                eprintln!("jina-net-bench: expected key=value, got {a:?}");
                std::process::exit(2);
            }
        }
        Args(parse_kv(args.iter().map(String::as_str)))
    }

    pub fn str(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or_else(|| {
            eprintln!("jina-net-bench: missing argument {key}=...");
            std::process::exit(2)
        })
    }

    pub fn num(&self, key: &str) -> u64 {
        self.str(key).parse().unwrap_or_else(|_| {
            eprintln!("jina-net-bench: {key} must be a number");
            std::process::exit(2)
        })
    }
}
