//! How a replica is picked among those of a head or shard, and the settings of the PeakEWMA latency
//! estimate p2c compares.

use std::time::Duration;

/// The picking policy of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Balance {
    /// jina 3.1's round robin, in the order replicas were added (the default).
    #[default]
    RoundRobin,
    /// Power of two choices with PeakEWMA costs (tower-balance's and Linkerd's balancer): two
    /// distinct replicas drawn at random (ejected ones skipped as round robin skips them), the one
    /// with the lower `latency estimate * (calls in flight + 1)` wins.
    PeakEwma(PeakEwmaConfig),
}

impl Balance {
    /// p2c with Linkerd's settings (30 ms default estimate, 10 s decay).
    pub fn p2c() -> Self {
        Balance::PeakEwma(PeakEwmaConfig::default())
    }

    /// The settings of the latency estimate, when p2c is the policy.
    pub fn ewma(&self) -> Option<&PeakEwmaConfig> {
        match self {
            Balance::PeakEwma(c) => Some(c),
            Balance::RoundRobin => None,
        }
    }
}

/// The settings of a replica's PeakEWMA latency estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakEwmaConfig {
    /// The estimate of a replica that has not answered yet (Linkerd: 30 ms). Must not be zero: a
    /// zero cost would draw every send to a new replica until its first answer.
    pub default_rtt: Duration,
    /// The decay time constant: a past response weighs `exp(-elapsed / decay)` (Linkerd: 10 s).
    pub decay: Duration,
}

impl Default for PeakEwmaConfig {
    /// Linkerd's defaults: 30 ms and 10 s.
    fn default() -> Self {
        PeakEwmaConfig {
            default_rtt: Duration::from_millis(30),
            decay: Duration::from_secs(10),
        }
    }
}
