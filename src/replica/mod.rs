//! One replica's state: its address and the channel its three stubs (`process_single_data`,
//! `process_data`, `process_control`) share, its passive health, its load (calls in flight, PeakEWMA,
//! metrics), the queue of its list's sends waiting for a slot; and one call to it bounded by a deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::address::Address;
use crate::error::{Error, Result, RpcError};
use crate::policy::{ConnectionOptions, TlsOptions};
use crate::request::{Method, Payload, Request};
use crate::transport::{get_grpc_channel_on, unary, Call, CallOptions};

mod health;
mod load;
mod metrics;
mod peak_ewma;
mod queue;

pub use health::Health;
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
    pub fn open(&self, address: Address) -> Result<Replica> {
        let runtime = match &self.runtime {
            Some(handle) => handle.clone(),
            None => crate::runtime::handle()?,
        };
        Replica::open_on(&runtime, address, &self.connection)
    }
}

/// jina's `create_async_channel_stub(address, tls, root_certificates)`: the `process_single_data`,
/// `process_data` and `process_control` stubs of a replica, sharing one channel — here one
/// [`Replica`] whose calls pick the method from the request kinds.
pub fn create_async_channel_stub(address: &str, tls: bool, root_certificates_pem: Option<&[u8]>) -> Result<Replica> {
    let connection = ConnectionOptions {
        tls: TlsOptions {
            force: tls,
            root_certificates_pem: root_certificates_pem.map(<[u8]>::to_vec),
        },
        ..Default::default()
    };
    Replica::open_on(&crate::runtime::handle()?, Address::parse(address)?, &connection)
}

/// One replica: its address, the channel its three stubs share (one HTTP/2 connection, reconnected
/// by itself), its health and, when the pool needs it, its load. Calls run concurrently on it.
#[derive(Debug)]
pub struct Replica {
    address: Address,
    key: Arc<str>,
    channel: Channel,
    health: Health,
    max_send: usize,
    max_receive: usize,
    /// Kept only when a pool option needs it (p2c, in-flight limits, metrics).
    load: Option<Box<Load>>,
}

impl Replica {
    /// Opens (lazily) a channel to `address` whose background tasks run on `runtime`.
    pub fn open_on(runtime: &Handle, address: Address, options: &ConnectionOptions) -> Result<Replica> {
        let channel = get_grpc_channel_on(runtime, &address, options)?;
        Ok(Replica {
            key: Arc::from(address.key()),
            address,
            channel,
            health: Health::default(),
            max_send: options.channel.max_send_message_length.unwrap_or(usize::MAX),
            max_receive: options.channel.max_receive_message_length.unwrap_or(usize::MAX),
            load: None,
        })
    }

    /// The replica with a load to track (see [`Load`]).
    pub(crate) fn with_load(mut self, load: Option<Box<Load>>) -> Self {
        self.load = load;
        self
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

    /// The underlying tonic channel (shared by the three stubs).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The replica's passive health (see [`Health`]).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Sends `requests` once (see [`Payload::new`] for which method), without retry.
    pub async fn send_once(&self, requests: &[Request], options: &CallOptions) -> Result<Response> {
        let (payload, method) = Payload::new(requests)?;
        self.attempt(payload, method, options)
            .await
            .map_err(|status| Error::Rpc(Box::new(RpcError::from_status(&self.key, &status, 1))))
    }

    /// One call, bounded by the deadline.
    pub(crate) async fn attempt(
        &self,
        payload: Payload,
        method: Method,
        options: &CallOptions,
    ) -> Result<Response, Status> {
        match options.deadline {
            None => self.call(payload, method, options, None).await,
            Some(deadline) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout_at(deadline, self.call(payload, method, options, Some(remaining))).await {
                    Ok(Err(status)) if is_timeout(&status) => Err(deadline_exceeded()),
                    Ok(result) => result,
                    Err(_) => Err(deadline_exceeded()),
                }
            }
        }
    }

    async fn call(
        &self,
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
            max_send: self.max_send,
            max_receive: self.max_receive,
        };
        let (body, trailers) = unary(&self.channel, payload, call).await.map_err(classify)?;
        Ok(Response {
            address: self.key.clone(),
            body,
            trailers,
        })
    }
}

const MAX_GRPC_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// How the library reads a failed call:
/// - its own deadline (tonic's "Timeout expired" `CANCELLED`) is `DEADLINE_EXCEEDED`;
/// - a connection that broke during the call (reset, closed, refused stream, a request dropped by
///   the connection's dispatcher) is `UNAVAILABLE`, as gRPC core (and so jina's Python runtimes)
///   report it, where tonic says `UNKNOWN`, `INTERNAL` or `CANCELLED`. A status the server sent has
///   no error source and is kept as it is.
fn classify(status: Status) -> Status {
    use std::error::Error as _;
    match status.code() {
        Code::Cancelled if status.message().starts_with("Timeout expired") => deadline_exceeded(),
        Code::Unknown | Code::Internal | Code::Cancelled if status.source().is_some() => {
            Status::unavailable(format!("connection lost: {}", status.message()))
        }
        _ => status,
    }
}

fn is_timeout(status: &Status) -> bool {
    status.code() == Code::DeadlineExceeded
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}
