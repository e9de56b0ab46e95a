//! The liveness monitor of a replica (see [`LivenessPolicy`]): a task that runs while the replica has
//! calls outstanding, or while it is unresponsive. When the replica has answered nothing for
//! `probe_after`, it sends a probe on the replica's connection: a STATUS control request. An answer
//! (any gRPC answer) is life. No answer within `probe_timeout` (a frozen or hung replica) marks the
//! replica unresponsive, ends the calls pending on that connection (`UNAVAILABLE`) and replaces the
//! connection; a connection that fails (the replica is down) marks it unresponsive too, and its calls
//! fail by themselves. An unresponsive replica is probed every `probe_after` until it answers.

use std::sync::{OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::time::Instant;
use tonic::Code;

use super::conn::{Conn, ConnSlot};
use super::health::Health;
use super::metrics::ReplicaMetrics;
use crate::policy::LivenessPolicy;
use crate::proto::{Command, ControlRequestProto, HeaderProto};
use crate::request::{Payload, Request};
use crate::transport::{unary, Call};

/// The probe: a serialized STATUS control request (built once).
fn probe_payload() -> Payload {
    static BYTES: OnceLock<Bytes> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| {
        ControlRequestProto {
            header: Some(HeaderProto {
                request_id: "jina-net-liveness-probe".into(),
                ..Default::default()
            }),
            command: Command::Status as i32,
            related_entities: Vec::new(),
        }
        .encode_to_vec()
        .into()
    });
    Payload::new(&[Request::control(bytes.clone())])
        .expect("one control request is a payload")
        .0
}

/// What the monitor watches of a replica.
pub(crate) struct Watched<'a> {
    pub health: &'a Health,
    pub conns: &'a ConnSlot,
    pub metrics: Option<&'a ReplicaMetrics>,
    pub max_receive: usize,
}

/// A replica the monitor can watch.
pub(crate) trait Watch: Send + Sync + 'static {
    fn watched(&self) -> Watched<'_>;
}

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The replica answered (any gRPC answer of its own).
    Answered,
    /// The connection failed (refused, reset): the replica is down, and the calls on the connection
    /// fail by themselves.
    Failed,
    /// No answer within the timeout: the replica is frozen or hung, and so are the calls on it.
    Silent,
}

/// Probes the replica on `conn`.
pub(crate) async fn probe(max_receive: usize, conn: &Conn, timeout: Duration) -> Probe {
    let (payload, method) = (probe_payload(), crate::request::Method::ProcessControl);
    let call = Call {
        method,
        endpoint: None,
        timeout: Some(timeout),
        metadata: None,
        accept_compressed: false,
        max_send: usize::MAX,
        max_receive,
    };
    match tokio::time::timeout(timeout, unary(&conn.channel, payload, call)).await {
        Ok(Ok(_)) => Probe::Answered,
        Ok(Err(status)) => match status.code() {
            Code::Unavailable => Probe::Failed,
            Code::DeadlineExceeded | Code::Cancelled => Probe::Silent,
            // Any other status is the server's own answer.
            _ => Probe::Answered,
        },
        Err(_) => Probe::Silent,
    }
}

/// Runs until the replica is gone, or has no call outstanding and answers.
pub(crate) async fn monitor<R: Watch>(
    replica: Weak<R>,
    policy: LivenessPolicy,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::select! {
        biased;
        _ = stop.cancelled() => {}
        _ = watch(replica, policy) => {}
    }
}

async fn watch<R: Watch>(replica: Weak<R>, policy: LivenessPolicy) {
    let Some(after) = policy.probe_after else { return };
    let started = Instant::now();
    loop {
        // Sleep until the replica has been silent for `after`.
        let wait = {
            let Some(r) = replica.upgrade() else { return };
            let h = r.watched().health;
            if !h.is_unresponsive() && h.outstanding() == 0 {
                if h.release_monitor() {
                    continue;
                }
                return;
            }
            let silent = h.silent_for().unwrap_or_else(|| started.elapsed());
            if h.is_unresponsive() {
                after
            } else {
                after.saturating_sub(silent)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let Some(r) = replica.upgrade() else { return };
        let w = r.watched();
        let h = w.health;
        let silent = h.silent_for().unwrap_or_else(|| started.elapsed());
        if !h.is_unresponsive() && (h.outstanding() == 0 || silent < after) {
            continue;
        }
        let conn = w.conns.get();
        let found = probe(w.max_receive, &conn, policy.probe_timeout).await;
        if found == Probe::Answered {
            h.heard();
            if h.mark_responsive() {
                h.success();
                tracing::info!(address = %w.conns.address, "the replica answers again");
            }
            continue;
        }
        if found == Probe::Failed {
            h.connection_failed();
        }
        if h.mark_unresponsive() {
            if let Some(m) = w.metrics {
                m.ejections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            tracing::warn!(
                address = %w.conns.address,
                "the replica stopped answering ({}): sends avoid it until it answers a probe again",
                if found == Probe::Silent {
                    format!("no answer to a liveness probe within {:?}; its pending calls end", policy.probe_timeout)
                } else {
                    "its connection fails".to_owned()
                }
            );
        }
        if found == Probe::Silent {
            // The calls on this connection wait for an answer that is not coming: end them, and open
            // a new connection for what follows.
            w.conns.replace(&conn);
        }
    }
}
