//! A routed send: its targets are fixed when it is made; running it performs one call per target,
//! concurrently, and gives one result per target.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ReplicaSet, Result, RpcError};
use crate::pick::Pick;
use crate::replica::Response;
use crate::request::Method;
use crate::runtime::{SendInFlight, Signal};
use crate::send::{send_to_target, SendPlan};

/// A routed target: the replica set and the replica picked in it.
pub type RoutedTarget = (ReplicaSet, Pick);

/// The result of a send at one target.
#[derive(Debug)]
pub struct TargetResult {
    /// The head or shard the send went to.
    pub replica_set: ReplicaSet,
    /// `host:port` of the replica that answered last (after a fail-over, not the first one picked).
    pub address: Arc<str>,
    /// The response, or what went wrong (with deployment, replica set, address and gRPC status).
    pub result: Result<Response>,
}

/// A routed send: its targets are fixed; await it (or [`run`](RoutedSend::run)) to perform the calls,
/// one per target, concurrently. It completes with one [`TargetResult`] per target, in target order.
#[must_use = "a send does nothing until it is awaited"]
pub struct RoutedSend {
    plan: SendPlan,
    targets: Vec<RoutedTarget>,
    closed: Signal,
    /// Counts the send among those in flight until it completes (the library runtime's channels
    /// batch writes while more than one is: `runtime::ChannelExecutor`).
    in_flight: SendInFlight,
}

impl std::fmt::Debug for RoutedSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedSend")
            .field("deployment", &self.plan.deployment)
            .field("targets", &self.targets().collect::<Vec<_>>())
            .field("method", &self.plan.method)
            .finish()
    }
}

impl RoutedSend {
    pub(super) fn new(plan: SendPlan, targets: Vec<RoutedTarget>, closed: Signal) -> Self {
        RoutedSend {
            plan,
            targets,
            closed,
            in_flight: SendInFlight::new(),
        }
    }

    /// The deployment the send goes to.
    pub fn deployment(&self) -> &str {
        &self.plan.deployment
    }

    /// The targets: replica set and address.
    pub fn targets(&self) -> impl Iterator<Item = (ReplicaSet, &str)> {
        self.targets.iter().map(|(s, p)| (*s, p.replica().address().key()))
    }

    /// The number of targets (jina's number of tasks).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the send has no target (never true for a send the pool returned).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The gRPC method the send calls.
    pub fn method(&self) -> Method {
        self.plan.method
    }

    /// Performs the calls. If the pool is closed meanwhile, every target completes with
    /// [`Error::PoolClosed`]; if `cancel` fires, with a `CANCELLED` error naming the address.
    pub async fn run_cancellable(self, cancel: Option<&CancellationToken>) -> Vec<TargetResult> {
        // `_in_flight` lives until the send completes.
        let RoutedSend {
            plan,
            targets,
            closed,
            in_flight: _in_flight,
        } = self;
        let calls = async {
            match targets.as_slice() {
                // One target (a head or one shard): no join machinery.
                [one] => Calls::One(call_target(&plan, one).await),
                many => Calls::Many(join_all(many.iter().map(|t| call_target(&plan, t))).await),
            }
        };
        let cancelled = async {
            match cancel {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            biased;
            results = calls => Ok(results),
            _ = closed.fired() => Err(None),
            _ = cancelled => Err(Some(())),
        };
        match outcome {
            // One target: its result goes straight into the send's (one allocation, not two).
            Ok(Calls::One(result)) => vec![target_result(&targets[0], result)],
            Ok(Calls::Many(results)) => targets
                .iter()
                .zip(results)
                .map(|(target, result)| target_result(target, result))
                .collect(),
            Err(cancelled) => targets
                .iter()
                .map(|(set, pick)| TargetResult {
                    replica_set: *set,
                    address: pick.replica().key(),
                    result: Err(match cancelled {
                        None => Error::PoolClosed,
                        Some(()) => Error::Rpc(Box::new(RpcError {
                            deployment: Some(plan.deployment.to_string()),
                            replica_set: Some(*set),
                            address: pick.replica().address().key().to_owned(),
                            code: tonic::Code::Cancelled,
                            message: "send cancelled by the caller".into(),
                            attempts: 1,
                            metadata: Default::default(),
                            tls: false,
                        })),
                    }),
                })
                .collect(),
        }
    }

    /// Performs the calls (see [`run_cancellable`](Self::run_cancellable)).
    pub async fn run(self) -> Vec<TargetResult> {
        self.run_cancellable(None).await
    }
}

/// The results of a send's calls.
enum Calls {
    One(Result<Response>),
    Many(Vec<Result<Response>>),
}

/// A target's result, with the address that answered (or failed).
fn target_result((set, pick): &RoutedTarget, result: Result<Response>) -> TargetResult {
    let address = match &result {
        Ok(r) => r.address.clone(),
        Err(Error::Rpc(e)) if e.address != pick.replica().address().key() => Arc::from(e.address.as_str()),
        Err(_) => pick.replica().key(),
    };
    TargetResult {
        replica_set: *set,
        address,
        result,
    }
}

/// One target of a send: the call with its retries; errors name the deployment and replica set.
async fn call_target(plan: &SendPlan, (set, pick): &RoutedTarget) -> Result<Response> {
    // Boxed: the call's state (a few KiB of tonic and h2 futures) is built once on the heap when the
    // call starts, instead of making every send's task that large (a task is copied when spawned).
    Box::pin(send_to_target(plan, pick))
        .await
        .map_err(|e| e.in_deployment(&plan.deployment, *set))
}

impl IntoFuture for RoutedSend {
    type Output = Vec<TargetResult>;
    type IntoFuture = Pin<Box<dyn Future<Output = Vec<TargetResult>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
