//! How the library tells a replica that stopped answering (a frozen or hung process, a dead node behind
//! a black hole: its TCP connection stays open) from one that is busy, and when it gives up on it.
//!
//! A replica with calls outstanding that has answered nothing for `probe_after` gets a liveness
//! probe on the same connection: a STATUS control request, which jina's runtimes answer at once even
//! while an executor computes (any gRPC answer counts, so peers without the control service pass
//! too). A probe not answered within `probe_timeout` marks the replica unresponsive: the calls
//! pending on it end with `UNAVAILABLE`, new sends avoid it, its connection is replaced, and it is
//! probed again every `probe_after` until it answers. A probe is an ordinary request, so it never
//! trips gRPC's ping policy (gRFC A8) the way frequent HTTP/2 PINGs do, and its answer (the server
//! sending data) resets the server's ping strikes, so the connection's HTTP/2 keepalive PINGs can be
//! frequent while calls are outstanding.

use std::time::Duration;

/// When a replica counts as unresponsive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessPolicy {
    /// Probe a replica that has calls outstanding and has answered nothing for this long; `None` =
    /// never probe.
    pub probe_after: Option<Duration>,
    /// A probe not answered within this marks the replica unresponsive.
    pub probe_timeout: Duration,
    /// A send whose call was pending on a replica that stopped answering goes on to another replica
    /// even when it is not marked idempotent. The replica may have received (and may yet run) the
    /// request, so this is off unless the caller allows it; idempotent sends always go on.
    pub fail_over_unanswered: bool,
}

impl Default for LivenessPolicy {
    /// Probe after 2 s without an answer, give up after 5 s more: no call waits for ever on a frozen
    /// replica, and a replica that is only slow to answer a probe is not cut off.
    fn default() -> Self {
        LivenessPolicy {
            probe_after: Some(Duration::from_secs(2)),
            probe_timeout: Duration::from_secs(5),
            fail_over_unanswered: false,
        }
    }
}

impl LivenessPolicy {
    /// Probe after 500 ms without an answer, give up after 1 s: a frozen replica is noticed within
    /// about 1.5 s.
    pub fn resilient() -> Self {
        LivenessPolicy {
            probe_after: Some(Duration::from_millis(500)),
            probe_timeout: Duration::from_secs(1),
            fail_over_unanswered: false,
        }
    }

    /// No probes (calls to a frozen replica wait for their deadline).
    pub fn off() -> Self {
        LivenessPolicy {
            probe_after: None,
            ..LivenessPolicy::default()
        }
    }
}
