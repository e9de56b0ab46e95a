//! The load of one replica, kept only when a pool option needs it (p2c picking, in-flight limits or
//! metrics): its calls in flight, its latency estimate and its metrics. A pool with none of these
//! options gives its replicas no `Load` at all, so the default send path touches nothing here.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use super::metrics::ReplicaMetrics;
use super::peak_ewma::PeakEwma;
use super::queue::Queue;
use crate::policy::Tuning;

/// One replica's load.
#[derive(Debug)]
pub struct Load {
    in_flight: AtomicU32,
    ewma: Option<PeakEwma>,
    metrics: Option<ReplicaMetrics>,
}

impl Load {
    /// A new replica's load under `tuning`, or `None` when nothing is tracked.
    pub fn for_tuning(tuning: Option<&Tuning>) -> Option<Box<Load>> {
        let tuning = tuning.filter(|t| t.tracks_load())?;
        Some(Box::new(Load {
            in_flight: AtomicU32::new(0),
            ewma: tuning.balance.ewma().map(PeakEwma::new),
            metrics: tuning.metrics.then(ReplicaMetrics::default),
        }))
    }

    /// Calls in flight to the replica now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The replica's latency estimate, when p2c is on.
    pub fn ewma(&self) -> Option<&PeakEwma> {
        self.ewma.as_ref()
    }

    /// The replica's metrics, when metrics are on.
    pub fn metrics(&self) -> Option<&ReplicaMetrics> {
        self.metrics.as_ref()
    }

    /// The p2c cost of one more call (`estimate * (in flight + 1)`), when p2c is on.
    pub fn cost(&self) -> Option<f64> {
        Some(self.ewma.as_ref()?.cost(self.in_flight()))
    }

    /// Starts a call (no limit).
    pub(crate) fn start(&self) -> CallGuard<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        CallGuard::new(self, None)
    }

    /// Starts a call if fewer than `max` are in flight; `queue` is told when it ends.
    pub(crate) fn try_start<'a>(&'a self, max: u32, queue: &'a Queue) -> Option<CallGuard<'a>> {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| CallGuard::new(self, Some(queue)))
    }
}

/// One call in flight to a replica: counted until dropped; [`finish`](CallGuard::finish) records its
/// outcome. Dropping it frees the replica's slot and wakes a send queued for one.
#[derive(Debug)]
pub(crate) struct CallGuard<'a> {
    load: &'a Load,
    queue: Option<&'a Queue>,
    started: Instant,
}

/// What kind of attempt a call was, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AttemptKind {
    /// A retry (or fail-over) of a failed call.
    pub retry: bool,
    /// The first call of a hedge.
    pub hedge: bool,
}

impl<'a> CallGuard<'a> {
    fn new(load: &'a Load, queue: Option<&'a Queue>) -> Self {
        CallGuard {
            load,
            queue,
            started: Instant::now(),
        }
    }

    /// Records the outcome of the call (`None` = OK): latency estimate and metrics.
    pub fn finish(&self, error: Option<tonic::Code>, kind: AttemptKind) {
        let elapsed = self.started.elapsed();
        if let Some(ewma) = &self.load.ewma {
            // A refused connection answers fast: it must not make a dead replica look cheap
            // (ejection deals with those).
            if error != Some(tonic::Code::Unavailable) {
                ewma.observe(elapsed);
            }
        }
        if let Some(m) = &self.load.metrics {
            m.record(elapsed, error, kind.retry, kind.hedge);
        }
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.load.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(queue) = self.queue {
            queue.slot_freed();
        }
    }
}
