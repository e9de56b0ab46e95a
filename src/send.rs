//! One send to one replica set: the call, and on `UNAVAILABLE` the retries of the [`RetryPolicy`]:
//! on the next replica of the set (fail-over, skipping ejected replicas, every replica tried before
//! giving up) or, without fail-over or once every replica was tried, on a replica again after a
//! jittered exponential backoff. Each failure and success updates the replica's health.

use std::sync::Arc;

use tokio::time::Instant;

use crate::connection::{CallOptions, Connection, Response};
use crate::error::{Error, Result, RpcError};
use crate::health::OutlierPolicy;
use crate::limit::{InFlightLimit, NoSlot, Queue};
use crate::load::{CallGuard, Tuning};
use crate::replica_list::Pick;
use crate::request::{Method, Payload};
use crate::retry::RetryPolicy;

/// The optional features a send runs with (`None` for a pool with all of them off).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuned<'a> {
    pub tuning: &'a Tuning,
    /// The queue of the replica list, when in-flight limits are on.
    pub queue: Option<&'a Queue>,
    /// Whether this is a hedged attempt.
    pub hedge: bool,
}

/// Sends to one target: hedged when the pool hedges and the send is idempotent, else
/// [`send_with_retries`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_to_target(
    pick: &Pick,
    payload: &Payload,
    method: Method,
    options: &CallOptions,
    retry: &RetryPolicy,
    outlier: &OutlierPolicy,
    tuning: Option<&Tuning>,
    idempotent: bool,
) -> Result<Response> {
    let tuned = match tuning {
        Some(tuning) => {
            if let (Some(policy), true) = (&tuning.hedge, idempotent) {
                return crate::hedge::send_hedged(pick, payload, method, options, retry, outlier, tuning, policy).await;
            }
            Some(Tuned {
                tuning,
                queue: pick.queue.as_deref(),
                hedge: false,
            })
        }
        None => None,
    };
    send_with_retries(
        &pick.replicas,
        pick.index,
        payload,
        method,
        options,
        retry,
        outlier,
        tuned,
    )
    .await
}

/// A slot for a call to `replicas[index]` (or, when an in-flight limit moves it, to another replica).
async fn start_call<'a>(
    replicas: &'a [Arc<Connection>],
    index: &mut usize,
    options: &CallOptions,
    tuned: Tuned<'a>,
) -> Result<Option<CallGuard<'a>>> {
    match (&tuned.tuning.limit, tuned.queue) {
        (Some(limit), Some(queue)) => {
            match crate::limit::acquire(replicas, *index, limit, queue, options.deadline).await {
                Ok((i, guard)) => {
                    *index = i;
                    Ok(guard)
                }
                Err(NoSlot::QueueFull) => Err(exhausted(replicas.len(), limit)),
                Err(NoSlot::DeadlineExceeded) => Err(Error::Rpc(Box::new(RpcError::from_status(
                    replicas[*index].address().key(),
                    &tonic::Status::deadline_exceeded("deadline exceeded while waiting for an in-flight slot"),
                    1,
                )))),
            }
        }
        _ => Ok(replicas[*index].load().map(|l| l.start(None))),
    }
}

fn exhausted(replicas: usize, limit: &InFlightLimit) -> Error {
    Error::ResourceExhausted {
        deployment: None,
        replica_set: None,
        replicas,
        max_per_replica: limit.max_per_replica,
        max_queued: limit.max_queued,
    }
}

/// Sends `payload` to `replicas[start]`, retrying per `retry`. Returns the response, or the last
/// failure with the address it came from and the number of attempts.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_with_retries(
    replicas: &[Arc<Connection>],
    start: usize,
    payload: &Payload,
    method: Method,
    options: &CallOptions,
    retry: &RetryPolicy,
    outlier: &OutlierPolicy,
    tuned: Option<Tuned<'_>>,
) -> Result<Response> {
    let n = replicas.len();
    let budget = retry.attempt_budget(n);
    let mut tried: Vec<bool> = Vec::new();
    let mut index = start.min(n.saturating_sub(1));
    let mut attempt = 1;
    loop {
        let guard = match tuned {
            None => None,
            Some(t) => start_call(replicas, &mut index, options, t).await?,
        };
        let replica = &replicas[index];
        let result = replica.attempt(payload.clone(), method, options).await;
        if let (Some(guard), Some(t)) = (&guard, tuned) {
            let code = result.as_ref().err().map(|s| s.code());
            guard.finish(code, t.tuning, attempt > 1, t.hedge && attempt == 1);
        }
        drop(guard);
        let status = match result {
            Ok(response) => {
                replica.health().success();
                return Ok(response);
            }
            Err(status) => status,
        };
        if status.code() == tonic::Code::Unavailable {
            let ejected = if outlier.consecutive_failures == 0 {
                0
            } else {
                replicas.iter().filter(|r| r.health().is_ejected()).count()
            };
            let metrics = tuned.and_then(|_| replica.load()).and_then(|l| l.metrics());
            let was_ejected = metrics.is_some() && replica.health().is_ejected();
            let now_ejected = replica.health().failure(outlier, ejected < outlier.max_ejected(n));
            if let (Some(m), true) = (metrics, now_ejected && !was_ejected) {
                m.ejections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let out_of_time = options.deadline.is_some_and(|d| Instant::now() >= d);
        if !retry.should_retry(status.code(), attempt, budget) || out_of_time {
            return Err(Error::Rpc(Box::new(RpcError::from_status(
                replica.address().key(),
                &status,
                attempt,
            ))));
        }
        if tried.is_empty() {
            tried = vec![false; n];
        }
        tried[index] = true;
        let next = if retry.fail_over {
            next_replica(replicas, index, &tried)
        } else {
            index
        };
        tracing::debug!(
            address = %replica.address(),
            next = %replicas[next].address(),
            attempt,
            "gRPC call failed with {:?}, retrying",
            status.code()
        );
        if tried[next] {
            let wait = retry.backoff(attempt);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        index = next;
        attempt += 1;
    }
}

/// The replica after `current` to try: the first one not tried and not ejected, else the first not
/// tried, else (all tried) the first not ejected, else the next one.
fn next_replica(replicas: &[Arc<Connection>], current: usize, tried: &[bool]) -> usize {
    let n = replicas.len();
    let order = || (1..=n).map(|k| (current + k) % n);
    order()
        .find(|&i| !tried[i] && !replicas[i].health().is_ejected())
        .or_else(|| order().find(|&i| !tried[i]))
        .or_else(|| order().find(|&i| !replicas[i].health().is_ejected()))
        .unwrap_or((current + 1) % n)
}
