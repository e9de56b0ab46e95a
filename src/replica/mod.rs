//! One replica's state: its address and the channel its three stubs (`process_single_data`,
//! `process_data`, `process_control`) share, its passive health, its load (calls in flight, PeakEWMA,
//! metrics), the queue of its list's sends waiting for a slot; and one call to it bounded by a deadline.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::address::Address;
use crate::error::{Error, Result, RpcError};
use crate::policy::{Compression, ConnectionOptions, TlsOptions};
use crate::request::{Method, Payload, Request};
use crate::transport::{compress, unary, Call, CallOptions};

mod budget;
mod conn;
mod health;
mod liveness;
mod load;
mod metrics;
mod peak_ewma;
mod queue;

use conn::{Conn, ConnSlot};

pub use budget::RetryBudget;
pub use health::{Health, ReplicaState};
pub use load::Load;
pub(crate) use load::{AttemptKind, CallGuard};
pub(crate) use metrics::LATENCY_BUCKETS;
pub use metrics::{Histogram, ReplicaMetrics};
pub use peak_ewma::PeakEwma;
pub use queue::Queue;

/// One response: who answered, the serialized response message and the trailing metadata
/// (workers set `is-error: true` when the executor raised; the error itself is in-band in the body).
#[derive(Debug, Clone)]
pub struct Response {
    /// `host:port` of the replica that answered.
    pub address: Arc<str>,
    /// The serialized `DataRequestProto` or `ControlRequestProto`.
    pub body: Bytes,
    /// Trailing metadata (without `grpc-status` / `grpc-message`).
    pub trailers: MetadataMap,
}

/// How replicas are opened: their connection options and the runtime their channels' I/O runs on.
#[derive(Debug, Clone, Default)]
pub struct ReplicaConfig {
    /// Channel options and TLS.
    pub connection: ConnectionOptions,
    /// The runtime the channels' background tasks run on; `None` = the library runtime.
    pub runtime: Option<Handle>,
}

impl ReplicaConfig {
    /// Opens (lazily) a replica at `address`.
    pub fn open(&self, address: Address) -> Result<Arc<Replica>> {
        self.open_with_load(address, None)
    }

    /// Opens (lazily) a replica at `address` that tracks `load`.
    pub(crate) fn open_with_load(&self, address: Address, load: Option<Box<Load>>) -> Result<Arc<Replica>> {
        self.open_with(address, load, None)
    }

    /// Opens (lazily) a replica at `address` that tracks `load`, its TLS server name overridden.
    pub(crate) fn open_with(
        &self,
        address: Address,
        load: Option<Box<Load>>,
        tls_server_name: Option<&str>,
    ) -> Result<Arc<Replica>> {
        let runtime = match &self.runtime {
            Some(handle) => handle.clone(),
            None => crate::runtime::handle()?,
        };
        match tls_server_name {
            None => Replica::open_with_load(&runtime, address, &self.connection, load),
            Some(name) => {
                let mut connection = self.connection.clone();
                connection.tls.server_name = Some(name.to_owned());
                Replica::open_with_load(&runtime, address, &connection, load)
            }
        }
    }
}

/// jina's `create_async_channel_stub(address, tls, root_certificates)`: the `process_single_data`,
/// `process_data` and `process_control` stubs of a replica, sharing one channel — here one
/// [`Replica`] whose calls pick the method from the request kinds.
pub fn create_async_channel_stub(
    address: &str,
    tls: bool,
    root_certificates_pem: Option<&[u8]>,
) -> Result<Arc<Replica>> {
    let connection = ConnectionOptions {
        tls: TlsOptions {
            force: tls,
            root_certificates_pem: root_certificates_pem.map(<[u8]>::to_vec),
            ..Default::default()
        },
        ..Default::default()
    };
    Replica::open_on(&crate::runtime::handle()?, Address::parse(address)?, &connection)
}

/// One replica: its address, the channel its three stubs share (one HTTP/2 connection, reconnected
/// by itself, and replaced when the replica stops answering), its health and, when the pool needs
/// it, its load. Calls run concurrently on it.
#[derive(Debug)]
pub struct Replica {
    address: Address,
    key: Arc<str>,
    /// The current connection; replaced (and the old one's calls ended) when the replica stopped
    /// answering. Also what a new connection is opened with, and where its I/O and the liveness
    /// monitor run.
    conns: ConnSlot,
    health: Health,
    max_send: usize,
    max_receive: usize,
    /// Kept only when a pool option needs it (p2c, in-flight limits, metrics).
    load: Option<Box<Load>>,
    /// The replica itself, for the liveness monitor it starts.
    me: Weak<Replica>,
    /// Cancelled when the replica is dropped: its liveness monitor stops at once.
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) struct AttemptError {
    /// The gRPC status the send reports.
    pub status: Status,
    /// The request reached the replica but no answer came: the replica stopped answering, or the
    /// attempt's own timeout passed. Running it again elsewhere could run it twice.
    pub unanswered: bool,
}

impl Replica {
    /// Opens (lazily) a channel to `address` whose background tasks run on `runtime`.
    pub fn open_on(runtime: &Handle, address: Address, options: &ConnectionOptions) -> Result<Arc<Replica>> {
        Self::open_with_load(runtime, address, options, None)
    }

    /// [`open_on`](Self::open_on) with a load to track (see [`Load`]).
    pub(crate) fn open_with_load(
        runtime: &Handle,
        address: Address,
        options: &ConnectionOptions,
        load: Option<Box<Load>>,
    ) -> Result<Arc<Replica>> {
        let conns = ConnSlot::open(runtime, address.clone(), options)?;
        Ok(Arc::new_cyclic(|me| Replica {
            key: Arc::from(address.key()),
            address,
            conns,
            health: Health::default(),
            max_send: options.channel.max_send_message_length.unwrap_or(usize::MAX),
            max_receive: options.channel.max_receive_message_length.unwrap_or(usize::MAX),
            load,
            me: me.clone(),
            stop: tokio_util::sync::CancellationToken::new(),
        }))
    }

    /// The replica's load, when the pool tracks it (p2c, in-flight limits or metrics).
    pub fn load(&self) -> Option<&Load> {
        self.load.as_deref()
    }

    /// The replica's address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// `host:port`, shared.
    pub fn key(&self) -> Arc<str> {
        self.key.clone()
    }

    /// The replica's health: ejection and liveness (see [`Health`]).
    pub fn health(&self) -> &Health {
        &self.health
    }

    fn conn(&self) -> Arc<Conn> {
        self.conns.get()
    }

    /// Connects (if need be) and asks the replica for its status (a liveness probe, on the pool's
    /// connection): true when it answered within `timeout`. An answer makes it ready.
    pub async fn probe(&self, timeout: Duration) -> bool {
        let conn = self.conn();
        match liveness::probe(self.max_receive, &conn, timeout).await {
            liveness::Probe::Answered => {
                self.health.heard();
                if self.health.mark_responsive() {
                    self.health.success();
                }
                true
            }
            liveness::Probe::Failed => {
                self.health.connection_failed();
                false
            }
            liveness::Probe::Silent => false,
        }
    }

    /// Sends `requests` once (see [`Payload::new`] for which method), without retry.
    pub async fn send_once(&self, requests: &[Request], options: &CallOptions) -> Result<Response> {
        let (payload, method) = Payload::new(requests)?;
        let payload = compress(payload, self.conns.options.channel.compression)?;
        self.attempt(payload, method, options, None)
            .await
            .map_err(|e| Error::Rpc(Box::new(RpcError::from_status(&self.key, &e.status, 1))))
    }

    /// One call, bounded by the send's deadline and `attempt_timeout`, and ended with `UNAVAILABLE`
    /// when the replica stops answering (its liveness monitor runs while calls are outstanding).
    pub(crate) async fn attempt(
        &self,
        payload: Payload,
        method: Method,
        options: &CallOptions,
        attempt_timeout: Option<Duration>,
    ) -> Result<Response, AttemptError> {
        let conn = self.conn();
        self.health.call_started();
        let liveness = &self.conns.options.liveness;
        if liveness.probe_after.is_some() && self.health.claim_monitor() {
            self.conns
                .runtime
                .spawn(liveness::monitor(self.me.clone(), *liveness, self.stop.clone()));
        }
        let attempt_deadline = attempt_timeout.map(|t| Instant::now() + t);
        let (deadline, own) = match (options.deadline, attempt_deadline) {
            (Some(d), Some(a)) if a < d => (Some(a), true),
            (None, Some(a)) => (Some(a), true),
            (d, _) => (d, false),
        };
        let result = tokio::select! {
            biased;
            r = self.call_until(&conn, payload, method, options, deadline) => r.map_err(|status| {
                let timed_out = own && status.code() == Code::DeadlineExceeded;
                AttemptError {
                    status: if timed_out {
                        Status::deadline_exceeded(format!(
                            "no answer within the attempt timeout ({:?})",
                            attempt_timeout.unwrap_or_default()
                        ))
                    } else {
                        status
                    },
                    unanswered: timed_out,
                }
            }),
            _ = conn.lost.fired() => Err(AttemptError {
                status: Status::unavailable(format!(
                    "the replica stopped answering (a liveness probe got no answer within {:?}); the call was ended",
                    liveness.probe_timeout
                )),
                unanswered: true,
            }),
        };
        let answered = match &result {
            Ok(_) => true,
            Err(e) => !e.unanswered && !matches!(e.status.code(), Code::Unavailable | Code::DeadlineExceeded),
        };
        let connection_failed = matches!(&result, Err(e) if !e.unanswered && e.status.code() == Code::Unavailable);
        self.health.call_ended(answered, connection_failed);
        result
    }

    /// One call on `conn`, bounded by `deadline`.
    async fn call_until(
        &self,
        conn: &Conn,
        payload: Payload,
        method: Method,
        options: &CallOptions,
        deadline: Option<Instant>,
    ) -> Result<Response, Status> {
        match deadline {
            None => self.call(conn, payload, method, options, None).await,
            Some(deadline) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let call = self.call(conn, payload, method, options, Some(remaining));
                match tokio::time::timeout_at(deadline, call).await {
                    Ok(Err(status)) if is_timeout(&status) => Err(deadline_exceeded()),
                    Ok(result) => result,
                    Err(_) => Err(deadline_exceeded()),
                }
            }
        }
    }

    async fn call(
        &self,
        conn: &Conn,
        payload: Payload,
        method: Method,
        options: &CallOptions,
        timeout: Option<Duration>,
    ) -> Result<Response, Status> {
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(deadline_exceeded());
        }
        let call = Call {
            method,
            endpoint: options.endpoint.as_ref(),
            // `grpc-timeout` holds at most 8 digits of hours; beyond a year it says nothing useful.
            timeout: timeout.filter(|t| *t < MAX_GRPC_TIMEOUT),
            metadata: options.metadata.as_ref(),
            accept_compressed: self.conns.options.channel.compression != Compression::None,
            max_send: self.max_send,
            max_receive: self.max_receive,
        };
        let (body, trailers) = unary(&conn.channel, payload, call).await.map_err(classify)?;
        Ok(Response {
            address: self.key.clone(),
            body,
            trailers,
        })
    }
}

const MAX_GRPC_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A tonic server's answer when the call's `grpc-timeout` passed there (`CANCELLED` "Timeout
/// expired", where gRPC's servers answer `DEADLINE_EXCEEDED`) is `DEADLINE_EXCEEDED`: it races the
/// call's own deadline, and either way the call timed out.
fn classify(status: Status) -> Status {
    match status.code() {
        Code::Cancelled if status.message().starts_with("Timeout expired") => deadline_exceeded(),
        _ => status,
    }
}

fn is_timeout(status: &Status) -> bool {
    status.code() == Code::DeadlineExceeded
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}

impl liveness::Watch for Replica {
    fn watched(&self) -> liveness::Watched<'_> {
        liveness::Watched {
            health: &self.health,
            conns: &self.conns,
            metrics: self.load().and_then(|l| l.metrics()),
            max_receive: self.max_receive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tonic_servers_own_timeout_is_a_deadline_exceeded() {
        assert_eq!(
            classify(Status::cancelled("Timeout expired")).code(),
            Code::DeadlineExceeded
        );
        assert_eq!(classify(Status::cancelled("gone")).code(), Code::Cancelled);
        assert_eq!(
            classify(Status::unavailable("Timeout expired")).code(),
            Code::Unavailable
        );
    }
}
