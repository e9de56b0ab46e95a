//! One replica: its address and the channel its three stubs (`process_single_data`, `process_data`,
//! `process_control`) share, its passive health, and one call to it bounded by a deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::address::Address;
use crate::channel::{get_grpc_channel_on, ChannelOptions, TlsOptions};
use crate::error::{Error, Result, RpcError};
use crate::health::Health;
use crate::load::Load;
use crate::request::{Method, Payload, Request};

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

/// Per-send settings shared by every target of the send.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// The `endpoint` request metadata (data requests only).
    pub endpoint: Option<AsciiMetadataValue>,
    /// The time by which the whole send (retries included) must be done.
    pub deadline: Option<Instant>,
}

impl CallOptions {
    /// Options with an endpoint (checked to be a valid metadata value) and a timeout from now.
    pub fn new(endpoint: Option<&str>, timeout: Option<Duration>) -> Result<Self> {
        let endpoint = endpoint
            .map(|e| {
                AsciiMetadataValue::try_from(e)
                    .map_err(|_| Error::InvalidRequest(format!("endpoint {e:?} is not a valid gRPC metadata value")))
            })
            .transpose()?;
        Ok(CallOptions {
            endpoint,
            deadline: timeout.map(|t| Instant::now() + t),
        })
    }
}

/// How new connections are opened: channel options, TLS, and the runtime their I/O runs on.
#[derive(Debug, Clone, Default)]
pub struct ConnectionConfig {
    /// Channel options (message size limits, connect timeout).
    pub channel: ChannelOptions,
    /// TLS settings for addresses without a TLS scheme and the roots to trust.
    pub tls: TlsOptions,
    /// The runtime the channels' background tasks run on; `None` = the library runtime.
    pub runtime: Option<Handle>,
}

impl ConnectionConfig {
    /// Opens (lazily) a connection to `address`.
    pub fn open(&self, address: Address) -> Result<Connection> {
        let runtime = match &self.runtime {
            Some(handle) => handle.clone(),
            None => crate::runtime::handle()?,
        };
        Connection::open_on(
            &runtime,
            address,
            &self.channel,
            self.tls.force,
            self.tls.root_certificates_pem.as_deref(),
        )
    }
}

/// jina's `create_async_channel_stub(address, tls, root_certificates)`: the `process_single_data`,
/// `process_data` and `process_control` stubs of a replica, sharing one channel — here one
/// [`Connection`] whose calls pick the method from the request kinds.
pub fn create_async_channel_stub(address: &str, tls: bool, root_certificates_pem: Option<&[u8]>) -> Result<Connection> {
    Connection::open(
        Address::parse(address)?,
        &ChannelOptions::default(),
        tls,
        root_certificates_pem,
    )
}

/// A connection to one replica. Cloning the inner channel is cheap; calls run concurrently on it.
#[derive(Debug)]
pub struct Connection {
    address: Address,
    key: Arc<str>,
    channel: Channel,
    health: Health,
    max_send: usize,
    max_receive: usize,
    /// Kept only when a pool option needs it (p2c, in-flight limits, metrics).
    load: Option<Box<Load>>,
}

impl Connection {
    /// Opens (lazily) a channel to `address`, served by the library runtime.
    pub fn open(
        address: Address,
        options: &ChannelOptions,
        tls: bool,
        root_certificates_pem: Option<&[u8]>,
    ) -> Result<Connection> {
        Self::open_on(&crate::runtime::handle()?, address, options, tls, root_certificates_pem)
    }

    /// Opens (lazily) a channel to `address` whose background tasks run on `runtime`.
    pub fn open_on(
        runtime: &Handle,
        address: Address,
        options: &ChannelOptions,
        tls: bool,
        root_certificates_pem: Option<&[u8]>,
    ) -> Result<Connection> {
        let channel = get_grpc_channel_on(runtime, &address, options, tls, root_certificates_pem)?;
        Ok(Connection {
            key: Arc::from(address.key()),
            address,
            channel,
            health: Health::default(),
            max_send: options.max_send_message_length.unwrap_or(usize::MAX),
            max_receive: options.max_receive_message_length.unwrap_or(usize::MAX),
            load: None,
        })
    }

    /// The connection with a load to track (see [`crate::load`]).
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

    /// The replica's passive health (see [`crate::health`]).
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
        let call = crate::unary::Call {
            method,
            endpoint: options.endpoint.as_ref(),
            // `grpc-timeout` holds at most 8 digits of hours; beyond a year it says nothing useful.
            timeout: timeout.filter(|t| *t < MAX_GRPC_TIMEOUT),
            max_send: self.max_send,
            max_receive: self.max_receive,
        };
        let (body, trailers) = crate::unary::unary(&self.channel, payload, call)
            .await
            .map_err(classify)?;
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
