//! # libjina_net
//!
//! The networking of a Jina 3.1 serving system, wire-compatible with jina 3.1.0 heads and workers:
//! a pool of gRPC connections to the heads and worker replicas of every deployment, routing (round
//! robin or p2c over replicas, one shard or all shards), the control plane (ACTIVATE / DEACTIVATE)
//! and one-shot helpers. The C ABI lives in [`ffi`]; everything else is plain Rust.
//!
//! The modules are layers, each importing only from those below it (checked by `tests/layout.rs`):
//! leaves ([`error`], [`address`], [`host`], [`proto`], [`wire`], [`request`], [`log`]) →
//! [`policy`] (settings only) → [`runtime`] (library threads, caller-driven runtimes) →
//! [`transport`] (the wire) → [`replica`] (one replica's state) → [`pick`] (choosing a replica) →
//! `send` (plain, retried or hedged) → [`pool`], [`oneshot`], [`control`] → [`k8s`] → [`ffi`].
//! Network work runs on the process-wide runtime of library threads, or on a caller-driven runtime
//! that the caller's threads run ([`runtime::DrivenRuntime`]).

#![deny(unsafe_code)]

pub mod address;
pub mod control;
pub mod data_request;
pub mod error;
pub mod host;
#[cfg(feature = "k8s")]
pub mod k8s;
pub mod log;
pub mod oneshot;
pub mod pick;
pub mod policy;
pub mod pool;
pub mod pool_factory;
pub mod proto;
mod random;
pub mod replica;
pub mod request;
pub mod runtime;
mod send;
pub mod transport;
pub mod wire;

#[allow(unsafe_code)]
pub mod ffi;

pub use address::Address;
pub use control::{activate_worker, activate_worker_sync, deactivate_worker};
pub use error::{Error, ReplicaSet, Result, RpcError};
pub use host::{host_is_local, is_remote_local_connection};
pub use oneshot::{send_request_async, send_request_sync, send_requests_sync, OneShotOptions};
pub use pick::{Pick, ReplicaList};
pub use policy::{
    default_grpc_options, Balance, ChannelOptions, Compression, ConnectionOptions, HedgePolicy, Http2Keepalive,
    InFlightLimit, LivenessPolicy, OutlierPolicy, PeakEwmaConfig, PoolOptions, RetryBudgetPolicy, RetryPolicy,
    TlsIdentity, TlsOptions,
};
pub use pool::{AddOptions, ConnectionPool, Polling, Resolver, Route, RoutedSend, SendOptions, TargetResult, To};
pub use pool_factory::create_connection_pool;
pub use replica::{create_async_channel_stub, Replica, ReplicaConfig, ReplicaState, Response};
pub use request::{Request, RequestKind};
pub use runtime::DrivenRuntime;
pub use transport::{CallOptions, Metadata};
