//! The metrics of one replica: calls, errors by gRPC code, retries, hedges, ejections, and the
//! latency histogram behind `jina_sending_request_seconds` (jina's name for the time between sending
//! a request to an executor or head and receiving its response; jina 3.2+ exports it as a Prometheus
//! summary, here it is a histogram, whose `_sum` and `_count` series are the summary's). Recording
//! is a handful of relaxed atomic additions on fixed buckets: no lock, no allocation. The pool
//! renders them as text on demand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus' defaults with finer steps below
/// 5 ms, where local replicas answer).
pub(crate) const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = ReplicaMetrics::default();
        m.record(Duration::from_micros(300), None, false, false);
        m.record(Duration::from_millis(3), Some(tonic::Code::Unavailable), true, false);
        m.record(Duration::from_secs(20), None, false, true);
        let c = m.latency.cumulative();
        assert_eq!(c[0], 1);
        assert_eq!(c[3], 2, "3 ms is in the 5 ms bucket");
        assert_eq!(c[LATENCY_BUCKETS.len() - 1], 2);
        assert_eq!(c[LATENCY_BUCKETS.len()], 3);
        assert_eq!(m.errors(tonic::Code::Unavailable), 1);
        assert_eq!(m.latency.count(), 3);
    }
}
