//! Metrics of a pool, per deployment, head or shard, and replica: calls, errors by gRPC code,
//! retries, hedges, ejections, calls in flight, and the latency histogram `jina_sending_request_seconds`
//! (jina's name for the time between sending a request to an executor or head and receiving its
//! response; jina 3.2+ exports it as a Prometheus summary, here it is a histogram, whose `_sum` and
//! `_count` series are the summary's). Recording is a handful of relaxed atomic additions on
//! fixed buckets: no lock, no allocation. The text exposition format is produced on demand
//! ([`ConnectionPool::metrics_text`](crate::ConnectionPool::metrics_text)).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus' defaults with finer steps below
/// 5 ms, where local replicas answer).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The gRPC status codes, by number.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// A latency histogram with fixed buckets ([`LATENCY_BUCKETS`] and +Inf).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Adds one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Their sum.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed))
    }

    /// Cumulative counts per bucket (the last one is +Inf).
    pub fn cumulative(&self) -> [u64; LATENCY_BUCKETS.len() + 1] {
        let mut out = [0; LATENCY_BUCKETS.len() + 1];
        let mut total = 0;
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            total += b.load(Ordering::Relaxed);
            *o = total;
        }
        out
    }
}

/// The metrics of one replica.
#[derive(Debug, Default)]
pub struct ReplicaMetrics {
    /// Calls sent (every attempt, retries and hedges included).
    pub requests: AtomicU64,
    /// Failed calls by gRPC code (index = code).
    pub errors: [AtomicU64; 17],
    /// Calls that were retries of a failed call.
    pub retries: AtomicU64,
    /// Calls that were hedges.
    pub hedges: AtomicU64,
    /// Times the replica was ejected.
    pub ejections: AtomicU64,
    /// Latency of every call that got an answer (a status or a response).
    pub latency: Histogram,
}

impl ReplicaMetrics {
    pub(crate) fn record(&self, elapsed: Duration, error: Option<tonic::Code>, retry: bool, hedge: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if retry {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        if hedge {
            self.hedges.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(code) = error {
            let i = (code as usize).min(16);
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency.observe(elapsed);
    }

    /// Failed calls with `code`.
    pub fn errors(&self, code: tonic::Code) -> u64 {
        self.errors[(code as usize).min(16)].load(Ordering::Relaxed)
    }
}

/// What the text exposition is built from: one entry per replica, and the queue of each list.
pub(crate) struct ReplicaRow<'a> {
    pub deployment: &'a str,
    pub shard: String,
    pub address: &'a str,
    pub in_flight: u32,
    pub metrics: &'a ReplicaMetrics,
}

pub(crate) struct QueueRow<'a> {
    pub deployment: &'a str,
    pub shard: String,
    pub waiting: usize,
    pub rejected: u64,
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The Prometheus text exposition (version 0.0.4) of `rows`.
pub(crate) fn render(rows: &[ReplicaRow<'_>], queues: &[QueueRow<'_>]) -> String {
    let mut out = String::new();
    let labels = |r: &ReplicaRow<'_>| {
        format!(
            "deployment=\"{}\",shard=\"{}\",address=\"{}\"",
            escape(r.deployment),
            escape(&r.shard),
            escape(r.address)
        )
    };
    let _ = writeln!(
        out,
        "# HELP jina_sending_request_seconds Time between sending a request to an Executor/Head replica and receiving its response.\n# TYPE jina_sending_request_seconds histogram"
    );
    for r in rows {
        let l = labels(r);
        let cumulative = r.metrics.latency.cumulative();
        for (b, c) in LATENCY_BUCKETS.iter().zip(&cumulative) {
            let _ = writeln!(out, "jina_sending_request_seconds_bucket{{{l},le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "jina_sending_request_seconds_bucket{{{l},le=\"+Inf\"}} {}",
            cumulative[LATENCY_BUCKETS.len()]
        );
        let _ = writeln!(
            out,
            "jina_sending_request_seconds_sum{{{l}}} {}",
            r.metrics.latency.sum().as_secs_f64()
        );
        let _ = writeln!(
            out,
            "jina_sending_request_seconds_count{{{l}}} {}",
            r.metrics.latency.count()
        );
    }
    type Counter = (&'static str, &'static str, fn(&ReplicaMetrics) -> u64);
    let counters: [Counter; 4] = [
        (
            "jina_net_requests_total",
            "Calls sent to a replica (retries and hedges included).",
            |m| m.requests.load(Ordering::Relaxed),
        ),
        (
            "jina_net_retries_total",
            "Calls to a replica that retried a failed call.",
            |m| m.retries.load(Ordering::Relaxed),
        ),
        ("jina_net_hedges_total", "Hedged calls sent to a replica.", |m| {
            m.hedges.load(Ordering::Relaxed)
        }),
        (
            "jina_net_ejections_total",
            "Times a replica was ejected (outlier detection).",
            |m| m.ejections.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for r in rows {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(r), value(r.metrics));
        }
    }
    let _ = writeln!(
        out,
        "# HELP jina_net_errors_total Failed calls to a replica, by gRPC status code.\n# TYPE jina_net_errors_total counter"
    );
    for r in rows {
        let l = labels(r);
        for (code, name) in CODES.iter().enumerate().skip(1) {
            let n = r.metrics.errors[code].load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "jina_net_errors_total{{{l},code=\"{name}\"}} {n}");
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP jina_net_in_flight Calls in flight to a replica.\n# TYPE jina_net_in_flight gauge"
    );
    for r in rows {
        let _ = writeln!(out, "jina_net_in_flight{{{}}} {}", labels(r), r.in_flight);
    }
    if !queues.is_empty() {
        let _ = writeln!(
            out,
            "# HELP jina_net_queued_sends Sends waiting for an in-flight slot on a head or shard.\n# TYPE jina_net_queued_sends gauge"
        );
        for q in queues {
            let _ = writeln!(
                out,
                "jina_net_queued_sends{{deployment=\"{}\",shard=\"{}\"}} {}",
                escape(q.deployment),
                escape(&q.shard),
                q.waiting
            );
        }
        let _ = writeln!(
            out,
            "# HELP jina_net_rejected_sends_total Sends refused with RESOURCE_EXHAUSTED because every replica and the queue were full.\n# TYPE jina_net_rejected_sends_total counter"
        );
        for q in queues {
            let _ = writeln!(
                out,
                "jina_net_rejected_sends_total{{deployment=\"{}\",shard=\"{}\"}} {}",
                escape(q.deployment),
                escape(&q.shard),
                q.rejected
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_labels_escaped() {
        let m = ReplicaMetrics::default();
        m.record(Duration::from_micros(300), None, false, false);
        m.record(Duration::from_millis(3), Some(tonic::Code::Unavailable), true, false);
        m.record(Duration::from_secs(20), None, false, true);
        let c = m.latency.cumulative();
        assert_eq!(c[0], 1);
        assert_eq!(c[3], 2, "3 ms is in the 5 ms bucket");
        assert_eq!(c[LATENCY_BUCKETS.len() - 1], 2);
        assert_eq!(c[LATENCY_BUCKETS.len()], 3);
        let text = render(
            &[ReplicaRow {
                deployment: "a\"b",
                shard: "0".into(),
                address: "127.0.0.1:1",
                in_flight: 2,
                metrics: &m,
            }],
            &[],
        );
        let l = r#"deployment="a\"b",shard="0",address="127.0.0.1:1""#;
        assert!(
            text.contains(&format!("jina_sending_request_seconds_count{{{l}}} 3\n")),
            "{text}"
        );
        assert!(text.contains(&format!("jina_sending_request_seconds_bucket{{{l},le=\"0.005\"}} 2\n")));
        assert!(text.contains(&format!("jina_sending_request_seconds_bucket{{{l},le=\"+Inf\"}} 3\n")));
        assert!(text.contains(&format!("jina_net_errors_total{{{l},code=\"UNAVAILABLE\"}} 1\n")));
        assert!(text.contains(&format!("jina_net_retries_total{{{l}}} 1\n")));
        assert!(text.contains(&format!("jina_net_hedges_total{{{l}}} 1\n")));
        assert!(text.contains(&format!("jina_net_in_flight{{{l}}} 2\n")));
        assert!(!text.contains("jina_net_queued_sends"));
    }
}
