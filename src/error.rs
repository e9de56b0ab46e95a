//! The library's one error type: every variant says what failed and where (deployment, replica set,
//! address, gRPC status), so a message can be shown to an operator as it is.

use std::fmt;

use tonic::metadata::MetadataMap;

/// Which replica list of a deployment a send went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplicaSet {
    /// The deployment's head (jina always uses head id 0).
    Head,
    /// One shard of the deployment's workers.
    Shard(u32),
}

impl fmt::Display for ReplicaSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaSet::Head => f.write_str("head"),
            ReplicaSet::Shard(id) => write!(f, "shard {id}"),
        }
    }
}

/// A failed gRPC call, with where it went.
#[derive(Debug)]
pub struct RpcError {
    /// The deployment the call was routed to; `None` for the one-shot helpers that take an address.
    pub deployment: Option<String>,
    /// The replica list the call was routed to; `None` for the one-shot helpers.
    pub replica_set: Option<ReplicaSet>,
    /// `host:port` of the replica that answered last.
    pub address: String,
    /// The gRPC status code.
    pub code: tonic::Code,
    /// The gRPC status message.
    pub message: String,
    /// How many attempts were made (retries included).
    pub attempts: u32,
    /// Metadata that came with the error status (e.g. `is-error`).
    pub metadata: MetadataMap,
    /// The call failed in the TLS handshake (the message says how).
    pub tls: bool,
}

impl RpcError {
    pub(crate) fn from_status(address: &str, status: &tonic::Status, attempts: u32) -> Self {
        use std::error::Error as _;
        RpcError {
            deployment: None,
            replica_set: None,
            address: address.to_owned(),
            code: status.code(),
            message: status.message().to_owned(),
            attempts,
            metadata: status.metadata().clone(),
            tls: status.source().is_some_and(|s| s.is::<TlsFailure>()),
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(deployment) = &self.deployment {
            write!(f, "deployment {deployment:?} ")?;
        }
        if let Some(set) = &self.replica_set {
            write!(f, "{set} ")?;
        }
        write!(
            f,
            "at {}: gRPC {}: {}",
            self.address,
            code_name(self.code),
            self.message
        )?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

/// The name of a gRPC status code as messages show it (`Unavailable`, `DeadlineExceeded`: the names
/// of grpc-go's and tonic's codes), spelled out rather than taken from a `Debug` implementation.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "Ok",
        C::Cancelled => "Cancelled",
        C::Unknown => "Unknown",
        C::InvalidArgument => "InvalidArgument",
        C::DeadlineExceeded => "DeadlineExceeded",
        C::NotFound => "NotFound",
        C::AlreadyExists => "AlreadyExists",
        C::PermissionDenied => "PermissionDenied",
        C::ResourceExhausted => "ResourceExhausted",
        C::FailedPrecondition => "FailedPrecondition",
        C::Aborted => "Aborted",
        C::OutOfRange => "OutOfRange",
        C::Unimplemented => "Unimplemented",
        C::Internal => "Internal",
        C::Unavailable => "Unavailable",
        C::DataLoss => "DataLoss",
        C::Unauthenticated => "Unauthenticated",
    }
}

/// The source of a call's status when the call failed in the TLS handshake.
#[derive(Debug)]
pub(crate) struct TlsFailure;

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TLS handshake failed")
    }
}

impl std::error::Error for TlsFailure {}

/// Everything that can go wrong in libjina_net.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address that is not `host:port`, `[v6]:port`, `grpc://host:port`, `https://host:port` or
    /// `grpcs://host:port`.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `dns:` address whose name does not resolve.
    #[error("invalid address {address:?}: the name does not resolve: {reason}")]
    Unresolved {
        /// The address as given.
        address: String,
        /// What the resolver said.
        reason: String,
    },
    /// A host name that is neither an IP address nor `localhost` (see `host_is_local`).
    #[error("invalid host {host:?}: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An argument the library cannot use (request metadata with a reserved name or invalid bytes).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Request bytes or request kinds that cannot be sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The pool knows no such deployment (none of its replicas was ever added, or all were removed).
    #[error("unknown deployment {deployment:?}: the pool has no such deployment")]
    UnknownDeployment {
        /// The deployment asked for.
        deployment: String,
    },
    /// A server answered with bytes that are not the expected message.
    #[error("invalid response from {address}: {reason}")]
    InvalidResponse {
        /// `host:port` of the server.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// The deployment is known but has no replica for the target asked for.
    #[error("deployment {deployment:?} has no replica for {target}")]
    NoReplicas {
        /// The deployment asked for.
        deployment: String,
        /// What was asked for: `head`, `shard N`, `any shard`.
        target: String,
    },
    /// A gRPC call failed (including deadline exceeded and cancellation).
    #[error("{0}")]
    Rpc(Box<RpcError>),
    /// Every replica of the head or shard had its in-flight limit of calls and the queue of sends
    /// waiting for a slot was full (see [`InFlightLimit`](crate::policy::InFlightLimit)).
    #[error(
        "{}{}: resource exhausted: each of the {replicas} replicas has {max_per_replica} calls in flight and {max_queued} sends are queued",
        deployment.as_ref().map(|d| format!("deployment {d:?} ")).unwrap_or_default(),
        replica_set.map_or_else(|| "replica set".to_owned(), |s| s.to_string())
    )]
    ResourceExhausted {
        /// The deployment.
        deployment: Option<String>,
        /// Its head or shard.
        replica_set: Option<ReplicaSet>,
        /// The number of replicas of the head or shard.
        replicas: usize,
        /// The limit per replica.
        max_per_replica: u32,
        /// The bound of the queue.
        max_queued: u32,
    },
    /// TLS could not be set up for an address.
    #[error("TLS setup for {address}: {reason}")]
    Tls {
        /// The address the channel was for.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// Replicas that did not answer within the time `wait_ready` was given.
    #[error("not ready after {waited:?}: {}", replicas.join("; "))]
    NotReady {
        /// The time waited.
        waited: std::time::Duration,
        /// Each replica that did not answer: deployment, head or shard, address, state.
        replicas: Vec<String>,
    },
    /// TLS settings that cannot be used (PEM without a certificate, a certificate that does not
    /// parse, a key that is not one).
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// The pool was closed before or while the operation ran.
    #[error("connection pool closed")]
    PoolClosed,
    /// A feature that is not available.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// The Kubernetes API could not be used (configuration, permissions, connection).
    #[error("kubernetes: {0}")]
    Kubernetes(String),
    /// The library panicked while doing the work (a bug; the library stays usable).
    #[error("libjina_net panicked: {0}")]
    Panic(String),
    /// The library runtime cannot be used (already started, shut down, or failed to start).
    #[error("runtime: {0}")]
    Runtime(String),
}

impl Error {
    /// The gRPC code of an `Rpc` error.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        match self {
            Error::Rpc(e) => Some(e.code),
            _ => None,
        }
    }

    /// The `host:port` an error is about, where it is about one.
    pub fn address(&self) -> Option<&str> {
        match self {
            Error::Rpc(e) => Some(&e.address),
            Error::InvalidAddress { address, .. } | Error::Unresolved { address, .. } | Error::Tls { address, .. } => {
                Some(address)
            }
            _ => None,
        }
    }

    pub(crate) fn in_deployment(self, deployment: &str, set: ReplicaSet) -> Self {
        match self {
            Error::Rpc(mut e) => {
                e.deployment = Some(deployment.to_owned());
                e.replica_set = Some(set);
                Error::Rpc(e)
            }
            Error::ResourceExhausted {
                replicas,
                max_per_replica,
                max_queued,
                ..
            } => Error::ResourceExhausted {
                deployment: Some(deployment.to_owned()),
                replica_set: Some(set),
                replicas,
                max_per_replica,
                max_queued,
            },
            other => other,
        }
    }
}

/// `Result` with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
