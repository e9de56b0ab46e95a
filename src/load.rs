//! The load of one replica, kept only when a pool option needs it (p2c picking, in-flight limits or
//! metrics): its calls in flight, its latency estimate and its metrics. A pool with none of these
//! options gives its connections no `Load` at all, so the default send path touches nothing here.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use crate::balance::Balance;
use crate::hedge::HedgePolicy;
use crate::limit::{InFlightLimit, Queue};
use crate::metrics::ReplicaMetrics;
use crate::peak_ewma::{PeakEwma, PeakEwmaConfig};

/// The optional send-path features of a pool (see [`PoolOptions`](crate::PoolOptions)), as the send
/// path reads them. A pool with all of them off has none (`Option<Arc<Tuning>>` is `None`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tuning {
    pub balance: Balance,
    pub limit: Option<InFlightLimit>,
    pub hedge: Option<HedgePolicy>,
    pub metrics: bool,
}

impl Tuning {
    /// `None` when every feature is off (the default pool).
    pub fn new(
        balance: Balance,
        limit: Option<InFlightLimit>,
        hedge: Option<HedgePolicy>,
        metrics: bool,
    ) -> Option<Self> {
        let tuning = Tuning {
            balance,
            limit: limit.filter(|l| l.max_per_replica > 0),
            hedge: hedge.filter(|h| h.max_hedges > 0),
            metrics,
        };
        (tuning.tracks_load() || tuning.hedge.is_some()).then_some(tuning)
    }

    /// Whether replicas need a [`Load`].
    pub fn tracks_load(&self) -> bool {
        self.metrics || self.limit.is_some() || matches!(self.balance, Balance::PeakEwma(_))
    }

    pub fn ewma(&self) -> Option<&PeakEwmaConfig> {
        match &self.balance {
            Balance::PeakEwma(c) => Some(c),
            Balance::RoundRobin => None,
        }
    }

    /// A new replica's load, or `None` when nothing is tracked.
    pub fn new_load(&self) -> Option<Box<Load>> {
        self.tracks_load().then(|| {
            Box::new(Load {
                in_flight: AtomicU32::new(0),
                ewma: self.ewma().map(PeakEwma::new),
                metrics: self.metrics.then(ReplicaMetrics::default),
            })
        })
    }
}

/// One replica's load.
#[derive(Debug)]
pub struct Load {
    in_flight: AtomicU32,
    ewma: Option<PeakEwma>,
    metrics: Option<ReplicaMetrics>,
}

impl Load {
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

    /// Starts a call (no limit).
    pub(crate) fn start<'a>(&'a self, queue: Option<&'a Queue>) -> CallGuard<'a> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        CallGuard::new(self, queue)
    }

    /// Starts a call if fewer than `max` are in flight.
    pub(crate) fn try_start<'a>(&'a self, max: u32, queue: Option<&'a Queue>) -> Option<CallGuard<'a>> {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| CallGuard::new(self, queue))
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

impl<'a> CallGuard<'a> {
    fn new(load: &'a Load, queue: Option<&'a Queue>) -> Self {
        CallGuard {
            load,
            queue,
            started: Instant::now(),
        }
    }

    /// Records the outcome of the call (`None` = OK): latency estimate and metrics.
    pub fn finish(&self, error: Option<tonic::Code>, tuning: &Tuning, retry: bool, hedge: bool) {
        let elapsed = self.started.elapsed();
        if let (Some(ewma), Some(config)) = (&self.load.ewma, tuning.ewma()) {
            // A refused connection answers fast: it must not make a dead replica look cheap
            // (ejection deals with those).
            if error != Some(tonic::Code::Unavailable) {
                ewma.observe(elapsed, config);
            }
        }
        if let Some(m) = &self.load.metrics {
            m.record(elapsed, error, retry, hedge);
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
