//! One send to one replica list, with the retries of the pool's [`RetryPolicy`](crate::policy::RetryPolicy):
//! on `UNAVAILABLE`, the next replica of the list (fail-over, skipping ejected replicas, every replica
//! tried before giving up) or, without fail-over or once every replica was tried, a replica again
//! after a jittered exponential backoff. Each failure and success updates the replica's health;
//! with in-flight limits each attempt takes a slot first.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::plan::SendPlan;
use crate::error::{Error, Result, RpcError};
use crate::pick::{acquire, order, NoSlot, Pick};
use crate::policy::OutlierPolicy;
use crate::replica::{AttemptKind, CallGuard, Replica, Response};

/// Sends the plan's payload to `pick.replicas[start]`, retrying per the plan's policy. `hedge` says
/// whether this is a hedged attempt (for the metrics). Returns the response, or the last failure
/// with the address it came from and the number of attempts.
///
/// A failure is tried again when it may help and may be done: `UNAVAILABLE` (as jina), or an attempt
/// that got no answer (the replica stopped answering, or the attempt's own timeout passed) when the
/// send is idempotent or the pool allows it; within the attempts, the deadline and the retry budget.
/// An attempt that got no answer always goes on to another replica.
///
/// The budget (gRFC A6's token bucket, per head or shard) is kept per send, not per attempt: a send
/// that succeeds (after a fail-over too) gives back `token_ratio`, a send that fails for good although
/// its failure could be retried takes a token. A replica dying among live ones then costs no token (its sends
/// fail over and succeed, even a burst of them), while a brown-out, where sends keep failing, empties
/// the bucket within a few sends and stops every retry, fail-over and hedge until sends succeed again.
pub(crate) async fn send_with_retries(plan: &SendPlan, pick: &Pick, start: usize, hedge: bool) -> Result<Response> {
    let replicas = &pick.replicas[..];
    let policy = &*plan.policy;
    let retry = &policy.retry;
    let n = replicas.len();
    let max_attempts = retry.attempt_budget(n);
    let mut tried: Vec<bool> = Vec::new();
    let mut index = start.min(n.saturating_sub(1));
    let mut attempt = 1;
    loop {
        let guard = start_call(plan, pick, &mut index).await?;
        let replica = &replicas[index];
        let result = replica
            .attempt(plan.payload.clone(), plan.method, &plan.call, retry.per_attempt_timeout)
            .await;
        if let Some(guard) = &guard {
            let kind = AttemptKind {
                retry: attempt > 1,
                hedge: hedge && attempt == 1,
            };
            guard.finish(result.as_ref().err().map(|e| e.status.code()), kind);
        }
        drop(guard);
        let failure = match result {
            Ok(response) => {
                replica.health().success();
                if let Some(b) = &pick.budget {
                    b.record(true);
                }
                return Ok(response);
            }
            Err(failure) => failure,
        };
        let code = failure.status.code();
        // A TLS handshake that failed (an untrusted certificate, a missing client identity) fails
        // the same way again: not retried, although gRPC reports it as UNAVAILABLE.
        let tls = {
            use std::error::Error as _;
            failure
                .status
                .source()
                .is_some_and(|s| s.is::<crate::error::TlsFailure>())
        };
        let retryable = (code == tonic::Code::Unavailable && !tls) || failure.unanswered;
        let outlier = &policy.outlier;
        if code == tonic::Code::Unavailable || (code == tonic::Code::DeadlineExceeded && outlier.eject_on_deadline) {
            record_failure(replicas, replica, outlier);
        }
        let out_of_time = plan.call.deadline.is_some_and(|d| Instant::now() >= d);
        let may_run_again = !failure.unanswered || plan.idempotent || policy.fail_over_unanswered;
        let give_up = !retryable
            || attempt >= max_attempts
            || out_of_time
            || !may_run_again
            || pick.budget.as_ref().is_some_and(|b| !b.allows_retry());
        if give_up {
            if retryable && may_run_again {
                // The send failed although it could be retried: the way a brown-out fails sends. It
                // costs the budget a token. (A send that may not run again says nothing about
                // whether retrying helps.)
                if let Some(b) = &pick.budget {
                    b.record(false);
                }
            }
            return Err(Error::Rpc(Box::new(RpcError::from_status(
                replica.address().key(),
                &failure.status,
                attempt,
            ))));
        }
        if tried.is_empty() {
            tried = vec![false; n];
        }
        tried[index] = true;
        let next = if retry.fail_over || failure.unanswered {
            next_replica(replicas, index, &tried)
        } else {
            index
        };
        tracing::debug!(
            target: "jina_net::send",
            address = %replica.address(),
            next = %replicas[next].address(),
            attempt,
            "gRPC call failed with {}, retrying",
            crate::error::code_name(code)
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

/// The slot of a call to `replicas[index]` when the pool tracks load (or, when an in-flight limit
/// moves it, to another replica: `index` is updated); `None` for a pool that tracks nothing.
async fn start_call<'a>(plan: &SendPlan, pick: &'a Pick, index: &mut usize) -> Result<Option<CallGuard<'a>>> {
    let replicas = &pick.replicas[..];
    match (plan.policy.limit(), pick.queue.as_deref()) {
        (Some(limit), Some(queue)) => match acquire(replicas, *index, limit, queue, plan.call.deadline).await {
            Ok((i, guard)) => {
                *index = i;
                Ok(Some(guard))
            }
            Err(NoSlot::QueueFull) => Err(Error::ResourceExhausted {
                deployment: None,
                replica_set: None,
                replicas: replicas.len(),
                max_per_replica: limit.max_per_replica,
                max_queued: limit.max_queued,
            }),
            Err(NoSlot::DeadlineExceeded) => Err(Error::Rpc(Box::new(RpcError::from_status(
                replicas[*index].address().key(),
                &tonic::Status::deadline_exceeded("deadline exceeded while waiting for an in-flight slot"),
                1,
            )))),
        },
        _ => Ok(replicas[*index].load().map(|l| l.start())),
    }
}

/// A failure on `replica` (a connection failure, or with `eject_on_deadline` a deadline): its health
/// counts it, and it may be ejected (within the list's share of ejected replicas); the metrics count
/// a new ejection.
fn record_failure(replicas: &[std::sync::Arc<Replica>], replica: &Replica, outlier: &OutlierPolicy) {
    let ejected = if outlier.ejects() {
        replicas.iter().filter(|r| r.health().is_ejected()).count()
    } else {
        0
    };
    let metrics = replica.load().and_then(|l| l.metrics());
    let was_ejected = metrics.is_some() && replica.health().is_ejected();
    let now_ejected = replica
        .health()
        .failure(outlier, ejected < outlier.max_ejected(replicas.len()));
    if let (Some(m), true) = (metrics, now_ejected && !was_ejected) {
        m.ejections.fetch_add(1, Ordering::Relaxed);
    }
}

/// The replica after `current` to try: the first one not tried and not ejected, else the first not
/// tried, else (all tried) the first not ejected, else the next one.
fn next_replica(replicas: &[std::sync::Arc<Replica>], current: usize, tried: &[bool]) -> usize {
    let n = replicas.len();
    order::live(replicas, order::after(current, n).filter(|&i| !tried[i]))
        .next()
        .or_else(|| order::live(replicas, order::after(current, n)).next())
        .unwrap_or((current + 1) % n)
}
