//! Settings only: plain data that says how the layers above behave (retries, ejection, picking,
//! limits, hedging, connections), with no state and no behaviour beyond reading them. The state they
//! tune lives with what it describes (`crate::replica`, `crate::pick`).

mod balance;
mod budget;
mod connection;
mod hedge;
mod limit;
mod liveness;
mod outlier;
mod pool;
mod retry;
mod send;

pub use balance::{Balance, PeakEwmaConfig};
pub use budget::RetryBudgetPolicy;
pub use connection::{
    default_grpc_options, ChannelOptions, Compression, ConnectionOptions, Http2Keepalive, TlsIdentity, TlsOptions,
};
pub use hedge::HedgePolicy;
pub use limit::InFlightLimit;
pub use liveness::LivenessPolicy;
pub use outlier::OutlierPolicy;
pub use pool::PoolOptions;
pub use retry::RetryPolicy;
pub use send::{SendPolicy, Tuning};
