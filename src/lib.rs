//! # libjina_net
//!
//! The networking of a Jina 3.1 serving system, wire-compatible with jina 3.1.0 heads and workers:
//! a pool of gRPC connections to the heads and worker replicas of every deployment, routing (round
//! robin over replicas, one shard or all shards), the control plane (ACTIVATE / DEACTIVATE) and
//! one-shot helpers. The C ABI lives in [`ffi`]; everything else is plain Rust.
//!
//! All network work runs on one process-wide tokio runtime owned by the library ([`runtime`]).

pub mod address;
pub mod balance;
pub mod channel;
pub mod connection;
pub mod control;
pub mod driven_runtime;
pub mod error;
pub mod health;
pub mod hedge;
pub mod host;
#[cfg(feature = "k8s")]
pub mod k8s;
pub mod limit;
pub mod load;
pub mod log;
pub mod metrics;
pub mod oneshot;
pub mod peak_ewma;
pub mod pool;
pub mod pool_factory;
pub mod proto;
pub mod replica_list;
pub mod request;
pub mod retry;
pub mod runtime;
mod send;
mod unary;
pub mod wire;

pub mod ffi;

pub use address::Address;
pub use balance::Balance;
pub use channel::{default_grpc_options, get_grpc_channel, ChannelOptions, TlsOptions};
pub use connection::{create_async_channel_stub, CallOptions, Connection, ConnectionConfig, Response};
pub use control::{activate_worker, activate_worker_sync, deactivate_worker};
pub use driven_runtime::DrivenRuntime;
pub use error::{Error, ReplicaSet, Result, RpcError};
pub use health::OutlierPolicy;
pub use hedge::HedgePolicy;
pub use host::{host_is_local, is_remote_local_connection};
pub use limit::InFlightLimit;
pub use oneshot::{send_request_async, send_request_sync, send_requests_sync, OneShotOptions};
pub use peak_ewma::PeakEwmaConfig;
pub use pool::{ConnectionPool, Polling, PoolOptions, Route, RoutedSend, TargetResult};
pub use pool_factory::create_connection_pool;
pub use replica_list::ReplicaList;
pub use request::{Request, RequestKind};
pub use retry::RetryPolicy;
