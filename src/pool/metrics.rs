//! The pool's metrics as Prometheus text (exposition format 0.0.4): one set of series per replica,
//! labelled with deployment, head or shard, and address; with in-flight limits, the queue of each
//! head or shard.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::replica::{ReplicaMetrics, LATENCY_BUCKETS};

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

/// The retry budget of one head or shard.
pub(crate) struct BudgetRow<'a> {
    pub deployment: &'a str,
    pub shard: String,
    pub tokens: f64,
    pub throttled: u64,
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
pub(crate) fn render(rows: &[ReplicaRow<'_>], queues: &[QueueRow<'_>], budgets: &[BudgetRow<'_>]) -> String {
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
    if !budgets.is_empty() {
        let _ = writeln!(
            out,
            "# HELP jina_net_retry_budget_tokens Tokens left in the retry budget of a head or shard (retries stop at half).\n# TYPE jina_net_retry_budget_tokens gauge"
        );
        for b in budgets {
            let _ = writeln!(
                out,
                "jina_net_retry_budget_tokens{{deployment=\"{}\",shard=\"{}\"}} {}",
                escape(b.deployment),
                escape(&b.shard),
                b.tokens
            );
        }
        let _ = writeln!(
            out,
            "# HELP jina_net_throttled_retries_total Retries, fail-overs and hedges not started because the retry budget was low.\n# TYPE jina_net_throttled_retries_total counter"
        );
        for b in budgets {
            let _ = writeln!(
                out,
                "jina_net_throttled_retries_total{{deployment=\"{}\",shard=\"{}\"}} {}",
                escape(b.deployment),
                escape(&b.shard),
                b.throttled
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn labels_are_escaped_and_every_series_is_there() {
        let m = ReplicaMetrics::default();
        m.record(Duration::from_micros(300), None, false, false);
        m.record(Duration::from_millis(3), Some(tonic::Code::Unavailable), true, false);
        m.record(Duration::from_secs(20), None, false, true);
        let text = render(
            &[ReplicaRow {
                deployment: "a\"b",
                shard: "0".into(),
                address: "127.0.0.1:1",
                in_flight: 2,
                metrics: &m,
            }],
            &[],
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
