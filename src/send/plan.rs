//! The send plan: everything one send needs, built once when the send is routed and passed by
//! reference down the send path.

use std::sync::Arc;

use crate::policy::SendPolicy;
use crate::request::{Method, Payload};
use crate::transport::CallOptions;

/// One send: the deployment it goes to, what it carries and how it runs. Its targets (the replica
/// picked in each head or shard) are kept beside it.
#[derive(Debug)]
pub(crate) struct SendPlan {
    /// The deployment, for error messages.
    pub deployment: Arc<str>,
    /// The message body, shared by every attempt without a copy.
    pub payload: Payload,
    /// The gRPC method.
    pub method: Method,
    /// The endpoint metadata and the deadline of the whole send.
    pub call: CallOptions,
    /// The pool's retry, ejection and tuning settings.
    pub policy: Arc<SendPolicy>,
    /// Whether the caller allows the send to be performed more than once (hedging).
    pub idempotent: bool,
}
