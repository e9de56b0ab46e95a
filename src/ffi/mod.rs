//! The C ABI: the only place with `extern "C"`, raw pointers and `catch_unwind`.
//!
//! Conventions (see `include/jina_net.h` for the full contract of each function):
//! - every fallible function returns a [`result::jina_net_result`]; outputs go through out-parameters
//!   that are written only on `JINA_NET_OK`; the message of the last failure on the calling thread is
//!   read with `jina_net_last_error_message`;
//! - every pointer is checked, every string must be NUL-terminated UTF-8, enums arrive as `uint32_t`
//!   and are checked;
//! - every body runs inside a panic boundary: a panic becomes `JINA_NET_PANIC`, never an unwind into C;
//! - a send whose function returned `JINA_NET_OK` completes exactly once through its callback, on a
//!   library runtime thread (or, for a caller-driven pool, on the thread polling it).
#![allow(non_camel_case_types, clippy::missing_safety_doc)]

pub mod add;
mod alloc;
pub mod args;
mod cancel;
pub mod completion;
mod driven;
pub mod host;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod oneshot;
pub mod poll;
pub mod pool;
pub mod pool_options;
mod queued;
pub mod ready;
pub mod request_builder;
pub mod requests;
pub mod response;
pub mod result;
pub mod routes;
pub mod runtime;
pub mod send;
pub mod send_ex;
pub mod send_options;
mod sized;
pub mod string;
