//! One send to one replica set: the call, and on `UNAVAILABLE` the retries of the [`RetryPolicy`]:
//! on the next replica of the set (fail-over, skipping ejected replicas, every replica tried before
//! giving up) or, without fail-over or once every replica was tried, on a replica again after a
//! jittered exponential backoff. Each failure and success updates the replica's health.

use std::sync::Arc;

use tokio::time::Instant;

use crate::connection::{CallOptions, Connection, Response};
use crate::error::{Error, Result, RpcError};
use crate::health::OutlierPolicy;
use crate::request::{Method, Payload};
use crate::retry::RetryPolicy;

/// Sends `payload` to `replicas[start]`, retrying per `retry`. Returns the response, or the last
/// failure with the address it came from and the number of attempts.
pub(crate) async fn send_with_retries(
    replicas: &[Arc<Connection>],
    start: usize,
    payload: &Payload,
    method: Method,
    options: &CallOptions,
    retry: &RetryPolicy,
    outlier: &OutlierPolicy,
) -> Result<Response> {
    let n = replicas.len();
    let budget = retry.attempt_budget(n);
    let mut tried: Vec<bool> = Vec::new();
    let mut index = start.min(n.saturating_sub(1));
    let mut attempt = 1;
    loop {
        let replica = &replicas[index];
        let status = match replica.attempt(payload.clone(), method, options).await {
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
            replica.health().failure(outlier, ejected < outlier.max_ejected(n));
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
