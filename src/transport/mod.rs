//! The wire: a tonic channel per replica and its options, one unary call with the bytes passed
//! through, and the gRPC framing of requests and responses.

mod call;
mod channel;
mod framing;

pub use call::CallOptions;
pub(crate) use call::{unary, Call};
pub use channel::get_grpc_channel_on;
