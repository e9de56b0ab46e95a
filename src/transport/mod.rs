//! The wire: a channel (one HTTP/2 connection) per replica and its options, one unary call with
//! the bytes passed through, the gRPC framing of requests and responses, and the request metadata
//! callers add.

mod call;
mod channel;
mod coalesce;
mod compression;
mod framing;
mod http2;
mod metadata;
mod timer;
mod tls;

#[doc(hidden)]
pub use call::parse_response;
pub use call::CallOptions;
pub(crate) use call::{unary, Call};
pub use channel::{get_grpc_channel_on, GrpcChannel};
pub use compression::compress;
pub use metadata::Metadata;
pub use tls::check_tls;
